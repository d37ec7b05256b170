import XCTest
@testable import SwiftAttr

/// Integrated Gradients through a piecewise-linear section (PathGradients+PiecewiseLinear.swift): which
/// networks have one, and that the attributions through the pieces equal the per-step evaluation.
///
/// Tolerance: both evaluate the same quadrature sum; they differ in float32 rounding only — the running
/// W a, W b take one rounding per change (a few per element) where the per-step GEMM rounds each dot
/// product once, and the backward splits each element's sum into differences of Double prefix sums. The
/// networks after the linear node are smooth (tanh, softplus), so no mask or max-pooling winner after it
/// can flip on a rounding (a flip would change one step's gradient by O(1); the benchmark CNN's ReLU tail
/// has such near-ties, a max-pool gap of 1e-8 in one example in 64). With magnitudes O(1), sums of at most
/// a few hundred terms and 50 steps, 2e-5 of max|φ| is ~100 float32 ulps of the largest terms: loose for
/// rounding, tight for any wrong piece (a missed change shifts a step's contribution by O(w_k) ≈ 1e-2).
final class PiecewiseLinearPathTests: XCTestCase {
    /// IG both ways on `n` (the internal entry, so the network is used as built — no gradient equivalent).
    func compare(_ n: Network, rows: Int, steps: Int = 20, method: PathQuadrature = .gaussLegendre, seed: UInt64, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        var g = Gen(seed)
        let x = g.normals(rows * n.inputSize), base = g.normals(rows * n.inputSize, scale: 0.3)
        let targets = (0..<rows).map { $0 % n.outputSize }
        let (alphas, weights) = try method.rule(steps)
        XCTAssertNotNil(n.piecewiseLinearSection(from: n.affinePrefixLength), "\(what): expected a piecewise-linear section", file: file, line: line)
        let plain = n.integratedGradients(x, rows: rows, base: base, targets: targets, alphas: alphas, weights: weights, chunk: 64,
                                          rowChunk: 64, throughPieces: false)
        for chunk in [1, steps, 3 * steps + 1] {
            let pieces = n.integratedGradients(x, rows: rows, base: base, targets: targets, alphas: alphas, weights: weights, chunk: chunk,
                                               rowChunk: 64, throughPieces: true)
            assertClose(pieces.attributions, plain.attributions, rel: 2e-5, "\(what) chunk \(chunk)", file: file, line: line)
            assertClose(pieces.delta, plain.delta, rel: 2e-5, floor: 1e-3, "\(what) delta, chunk \(chunk)", file: file, line: line)
        }
        // Every step dense, and every step sparse, give the same sums.
        let p = n.affinePrefixLength, section = n.piecewiseLinearSection(from: p)!
        let zi = n.forward(x, rows: rows, from: 0, to: p), zb = n.forward(base, rows: rows, from: 0, to: p)
        let a = alphas.map(Float.init), w = weights.map(Float.init)
        let sparse = n.piecewiseLinearPathCotangents(section, zInput: zi, zReference: zb, rows: rows, alphas: a, weights: w, targets: targets,
                                                     chunk: steps, denseChanges: .max)
        let dense = n.piecewiseLinearPathCotangents(section, zInput: zi, zReference: zb, rows: rows, alphas: a, weights: w, targets: targets,
                                                    chunk: steps, denseChanges: 0)
        assertClose(sparse, dense, rel: 2e-5, "\(what): sparse against dense updates", file: file, line: line)
    }

    func testDenseNetworks() throws {
        var g = Gen(1)
        try compare(net([12], [g.dense(24, 12), .relu, g.dense(16, 24), .tanh, g.dense(3, 16)]), rows: 5, seed: 2, "ReLU → Dense")
        try compare(net([12], [g.dense(24, 12), .leakyReLU(slope: 0.2), .dropout(p: 0.5), g.dense(16, 24), .softplus(beta: 2), g.dense(3, 16)]),
                    rows: 4, seed: 3, "LeakyReLU → Dropout → Dense")
        // The linear node is the last one (no nodes after it).
        try compare(net([12], [g.dense(24, 12), .relu, g.dense(4, 24)]), rows: 3, seed: 4, "ReLU → final Dense")
        // Any quadrature rule (nodes in any order; Riemann left includes α = 0).
        for method in PathQuadrature.allCases {
            try compare(net([6], [g.dense(10, 6), .relu, g.dense(5, 10), .tanh, g.dense(2, 5)]), rows: 3, steps: 9, method: method, seed: 5,
                        "ReLU MLP, \(method.name)")
        }
    }

    func testConvolutionalNetworks() throws {
        var g = Gen(10)
        // LeNet-like: conv, max-pool, ReLU (the gradient equivalent's order), conv, smooth tail.
        try compare(net([1, 12, 12], [g.conv(4, 1, kernel: [3, 3]), .maxPool2d(pool([2, 2])), .relu, g.conv(6, 4, kernel: [3, 3]), .tanh,
                                      .flatten, g.dense(3, 6 * 3 * 3)]), rows: 4, seed: 11, "conv → maxpool → ReLU → conv")
        // ReLU before the pool, overlapping windows (stride 1: an entry reaches several elements) with padding,
        // then a strided, padded, dilated convolution.
        try compare(net([2, 9, 9], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), .relu, .maxPool2d(pool([3, 3], stride: [1, 1], padding: [1, 1])),
                                    g.conv(4, 3, kernel: [3, 2], stride: [2, 1], padding: [1, 2], dilation: [2, 1]), .softplus(beta: 1), .flatten,
                                    g.dense(2, 4 * 4 * 12)]), rows: 3, seed: 12, "ReLU → overlapping maxpool → strided dilated conv")
        // 1-D: LeakyReLU, max-pool, a view, Conv1d.
        try compare(net([2, 16], [g.conv(3, 2, kernel: [3]), .leakyReLU(slope: 0.1), .maxPool1d(pool([2])), .reshape(shape: [3, 7]),
                                  g.conv(4, 3, kernel: [3], padding: [1]), .tanh, .flatten, g.dense(2, 28)]), rows: 4, seed: 13, "Conv1d section")
        // ReLU → flatten → Dense after a convolution.
        try compare(net([1, 6, 6], [g.conv(2, 1, kernel: [3, 3]), .relu, .flatten, g.dense(5, 32), .tanh, g.dense(2, 5)]), rows: 3, seed: 14,
                    "conv → ReLU → flatten → Dense")
    }

    /// Residual graphs: the linear node's input is also read by the shortcut add (and, in the second, by a
    /// concat further on), so the tail runs from that input with the linear node severed.
    func testResidualGraphs() throws {
        var g = Gen(40)
        // stem conv → ReLU → h; h → conv → tanh → conv → add(h, ·) → softplus → global average → Dense.
        var block = net([2, 6, 6], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), .relu])
        try block.append(g.conv(3, 3, kernel: [3, 3], padding: [1, 1]), inputs: [2])
        try block.append(.tanh, inputs: [3])
        try block.append(g.conv(3, 3, kernel: [3, 3], padding: [1, 1]), inputs: [4])
        try block.append(.add, inputs: [2, 5])
        try block.append(.softplus(beta: 1), inputs: [6])
        try block.append(.globalAvgPool, inputs: [7])
        try block.append(g.dense(2, 3), inputs: [8])
        XCTAssertEqual(block.piecewiseLinearSection(from: block.affinePrefixLength)?.fansOut, true)
        try compare(block, rows: 3, seed: 41, "residual block")
        // Dense: h read by the linear node and by a concat after it.
        var wide = net([5], [g.dense(8, 5), .leakyReLU(slope: 0.3)])
        try wide.append(g.dense(4, 8), inputs: [2])
        try wide.append(.tanh, inputs: [3])
        try wide.append(.concat, inputs: [4, 2])
        try wide.append(g.dense(3, 12), inputs: [5])
        try compare(wide, rows: 4, seed: 42, "concat of the section's output")
    }

    /// Fewer examples than workers: each example's steps split into segments (one per worker), each from
    /// its own dense start; the sums equal the per-step evaluation's.
    func testSegmentsOfOneExample() throws {
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        var g = Gen(50)
        let lenet = net([1, 10, 10], [g.conv(3, 1, kernel: [3, 3]), .maxPool2d(pool([2, 2])), .relu, g.conv(4, 3, kernel: [2, 2]), .tanh,
                                      .flatten, g.dense(2, 36)])
        var block = net([2, 5, 5], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), .relu])
        try block.append(g.conv(3, 3, kernel: [3, 3], padding: [1, 1]), inputs: [2])
        try block.append(.add, inputs: [2, 3])
        try block.append(.tanh, inputs: [4])
        try block.append(.flatten, inputs: [5])
        try block.append(g.dense(2, 75), inputs: [6])
        for threads in [1, 3, 4] {
            try Parallel.setThreadCount(threads)
            try compare(lenet, rows: 1, seed: 51, "one example, \(threads) workers")
            try compare(lenet, rows: 2, seed: 52, "two examples, \(threads) workers")
            try compare(block, rows: 1, seed: 53, "residual block, one example, \(threads) workers")
        }
    }

    /// Through the public entry (which takes the gradient equivalent: the ReLU moves after the pool), a
    /// ReLU-tailed CNN of the benchmark's shape, small: completeness up to the quadrature error.
    func testPublicEntryOnReLUCNN() throws {
        var g = Gen(20)
        let n = net([1, 10, 10], [g.conv(4, 1, kernel: [3, 3]), .relu, .maxPool2d(pool([2, 2])), g.conv(6, 4, kernel: [3, 3]), .relu,
                                  .flatten, g.dense(8, 6 * 2 * 2), .relu, g.dense(3, 8)])
        XCTAssertNotNil(n.gradientEquivalent.map { $0.piecewiseLinearSection(from: $0.affinePrefixLength) } ?? nil)
        let rows = 6
        let x = g.uniforms(rows * 100, 0, 1)
        let ig = try n.integratedGradients(x, rows: rows, targets: [1], steps: 200)
        let fx = n.forward(x, rows: rows), f0 = n.forward([Float](repeating: 0, count: 100), rows: 1)
        for r in 0..<rows {
            let change = Double(fx[r * 3 + 1] - f0[1])
            // 200 Gauss–Legendre nodes on a piecewise-linear path: the quadrature error is small but not zero.
            XCTAssertLessThan(abs(Double(ig.delta[r])), 0.02 * max(abs(change), 0.1), "completeness, row \(r)")
        }
    }

    func testSectionDetection() {
        var g = Gen(30)
        let tanhFirst = net([4], [g.dense(5, 4), .tanh, g.dense(3, 5)])
        XCTAssertNil(tanhFirst.piecewiseLinearSection(from: tanhFirst.affinePrefixLength), "tanh is not piecewise linear")
        let averaged = net([1, 6, 6], [g.conv(2, 1, kernel: [3, 3]), .relu, .avgPool2d(pool([2, 2])), .flatten, g.dense(2, 8)])
        XCTAssertNil(averaged.piecewiseLinearSection(from: averaged.affinePrefixLength), "average pooling ends the section")
        let noLinear = net([4], [g.dense(5, 4), .relu, .sigmoid])
        XCTAssertNil(noLinear.piecewiseLinearSection(from: noLinear.affinePrefixLength), "no linear node")
        // Fan-out of the linear node's input (the ReLU output, read by the Dense layer and by an add): a section.
        var graph = net([4], [g.dense(4, 4), .relu])
        try! graph.append(g.dense(4, 4), inputs: [2])
        try! graph.append(.add, inputs: [2, 3])
        try! graph.append(g.dense(2, 4), inputs: [4])
        XCTAssertEqual(graph.piecewiseLinearSection(from: graph.affinePrefixLength)?.fansOut, true)
        XCTAssertEqual(net([4], [g.dense(4, 4), .relu, g.dense(2, 4)]).piecewiseLinearSection(from: 1)?.fansOut, false)
        // Fan-out inside the section (the ReLU output read by the max-pool and by an add further on): none.
        var inside = net([1, 4, 4], [g.conv(2, 1, kernel: [1, 1]), .relu, .maxPool2d(pool([2, 2], stride: [1, 1]))])
        try! inside.append(g.conv(2, 2, kernel: [2, 2], padding: [1, 1]), inputs: [3])
        try! inside.append(.add, inputs: [2, 4])
        try! inside.append(.flatten, inputs: [5])
        try! inside.append(g.dense(2, 32), inputs: [6])
        XCTAssertNil(inside.piecewiseLinearSection(from: inside.affinePrefixLength), "a section value read twice")
        let lenet = net([1, 8, 8], [g.conv(2, 1, kernel: [3, 3]), .maxPool2d(pool([2, 2])), .relu, g.conv(2, 2, kernel: [2, 2]), .relu,
                                    .flatten, g.dense(2, 8)])
        let s = lenet.piecewiseLinearSection(from: lenet.affinePrefixLength)
        XCTAssertEqual(s?.start, 1)
        XCTAssertEqual(s?.linear, 3)
    }
}
