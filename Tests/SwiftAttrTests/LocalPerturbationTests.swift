import XCTest
@testable import SwiftAttr

/// Network+LocalPerturbation.swift: a first convolution of inputs that differ from a reference in a box
/// reuses the reference's output and recomputes only the outputs whose windows meet the box.
final class LocalPerturbationTests: XCTestCase {
    private func dense(_ w: [Float], out: Int, in n: Int) throws -> Layer {
        .dense(try .init(weight: w, bias: nil, outFeatures: out, inFeatures: n))
    }

    /// Rows near two references — unchanged, a box at a corner, at an edge, inside, one element, the whole
    /// input changed, in every channel or in channel 0 only — through the shared forward pass, with each row
    /// near its reference and as chains of rows each near the one before, and through the plain one.
    private func assertSharedForwardEqualsPlain(_ net: Network, _ shape: [Int], _ g: inout Gen, _ name: String) throws {
        let d = net.inputSize, references = g.normals(2 * d)
        let (H, W) = shape.count == 3 ? (shape[1], shape[2]) : (1, shape[1])
        let C = shape[0]
        // Boxes (h0, h1, w0, w1) of changed elements, in every channel or in channel 0 only.
        let boxes: [(Int, Int, Int, Int, Bool)] = [
            (0, 1, 0, 1, true), (H - 2, H - 1, W - 3, W - 1, false), (H / 2, H / 2 + 1, 0, 2, true),
            (H / 3, H / 3, W / 2, W / 2, false), (0, H - 1, 0, W - 1, true),
        ]
        var rows: [Float] = [], referenceIndex: [Int] = []
        for ref in 0..<2 {
            rows += references[(ref * d)..<((ref + 1) * d)]
            referenceIndex.append(ref)
            for (a0, a1, b0, b1, all) in boxes {
                // (Clamped to the input: a 1-D input has one row.)
                let h0 = max(0, a0), h1 = min(H - 1, max(h0, a1)), w0 = max(0, b0), w1 = min(W - 1, max(w0, b1))
                var row = Array(references[(ref * d)..<((ref + 1) * d)])
                for c in 0..<(all ? C : 1) {
                    for h in h0...h1 { for w in w0...w1 { row[(c * H + h) * W + w] += 0.5 + Float(h + w) } }
                }
                rows += row
                referenceIndex.append(ref)
            }
        }
        let count = referenceIndex.count
        let plain = net.forward(rows, rows: count)
        let shared = references.withUnsafeBufferPointer { net.forward(rows, rows: count, nearReferences: $0.baseAddress!) { .reference(referenceIndex[$0]) } }
        let scale = plain.map(abs).max()!
        assertClose(shared, plain, rel: 1e-5, name)
        XCTAssertGreaterThan(scale, 0, name)
        // As chains: each reference's own row from the reference, every later row from the row before it (then
        // two boxes differ, its own and the last row's; the whole-input row changes everything after it).
        let chained = references.withUnsafeBufferPointer {
            net.forward(rows, rows: count, nearReferences: $0.baseAddress!) { r in
                r == 0 || referenceIndex[r] != referenceIndex[r - 1] ? .reference(referenceIndex[r]) : .previousRow
            }
        }
        assertClose(chained, plain, rel: 1e-5, "\(name), chained")
    }

    /// Rows near two references give the outputs of the plain forward pass, for every first-layer geometry: padding,
    /// stride 2, dilation 2, several channels, 1-D. The recomputed outputs come from a GEMM of another shape,
    /// so they agree to float32 rounding (1e-5 of the scale); a wrong box, crop or copy is off by O(1).
    func testEqualsThePlainForwardPass() throws {
        var g = Gen(11)
        func conv2d(_ cin: Int, _ cout: Int, _ k: [Int], stride: [Int], padding: [Int], dilation: [Int]) throws -> Layer {
            .conv2d(try .init(weight: g.normals(cout * cin * k[0] * k[1]), bias: g.normals(cout), outChannels: cout, inChannels: cin,
                              kernel: k, stride: stride, padding: padding, dilation: dilation))
        }
        let cases: [(String, [Int], Layer)] = [
            ("5×5", [1, 12, 12], try conv2d(1, 4, [5, 5], stride: [1, 1], padding: [0, 0], dilation: [1, 1])),
            ("3×3 padded, 3 channels", [3, 10, 9], try conv2d(3, 5, [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1])),
            ("stride 2, padding 2", [2, 11, 13], try conv2d(2, 3, [5, 3], stride: [2, 2], padding: [2, 1], dilation: [1, 1])),
            ("dilation 2", [1, 12, 12], try conv2d(1, 2, [3, 3], stride: [1, 2], padding: [2, 0], dilation: [2, 2])),
            ("1-D", [2, 17], .conv1d(try .init(weight: g.normals(3 * 2 * 4), bias: g.normals(3), outChannels: 3, inChannels: 2,
                                               kernel: [4], stride: [2], padding: [1], dilation: [1]))),
        ]
        for (name, shape, first) in cases {
            let probe = try Network(inputShape: shape, layers: [first])
            let net = try Network(inputShape: shape, layers: [first, .relu, .flatten, try dense(g.normals(3 * probe.outputSize), out: 3, in: probe.outputSize)])
            XCTAssertTrue(net.sharesFirstConvolution, name)
            try assertSharedForwardEqualsPlain(net, shape, &g, name)
        }
    }

    /// A second convolution by kernel rows after activations and pooling runs by bands of rows
    /// (``Network/bandedConvolution``): LeNet-like chains with and without pooling, a batch norm between,
    /// and the same boxes, against the plain forward pass (float32 rounding: the reference's output plus a
    /// GEMM of the difference instead of one GEMM). A second convolution that does not run by kernel rows,
    /// or a chain the input re-enters, runs as before.
    func testASecondConvolutionRunsByBands() throws {
        var g = Gen(23)
        func conv2d(_ cin: Int, _ cout: Int, _ k: Int, padding: Int = 0) throws -> Layer {
            .conv2d(try .init(weight: g.normals(cout * cin * k * k, scale: 1 / Float(cin * k * k).squareRoot()), bias: g.normals(cout),
                              outChannels: cout, inChannels: cin, kernel: [k, k], stride: [1, 1], padding: [padding, padding], dilation: [1, 1]))
        }
        func pool() throws -> Layer { .maxPool2d(try .init(kernel: [2, 2], stride: [2, 2], padding: [0, 0])) }
        let bn = Layer.batchNorm(try .init(gamma: g.uniforms(6, 0.5, 1.5), beta: g.normals(6, scale: 0.3), runningMean: g.normals(6, scale: 0.5),
                                          runningVar: g.uniforms(6, 0.5, 2), eps: 1e-5))
        let chains: [(String, [Int], [Layer])] = [
            ("conv, relu, pool, conv 5×5", [1, 28, 28], [try conv2d(1, 6, 5), .relu, try pool(), try conv2d(6, 8, 5), .relu]),
            ("padded conv, tanh, conv 3×3", [2, 11, 12], [try conv2d(2, 6, 3, padding: 1), .tanh, try conv2d(6, 4, 3)]),
            ("conv, batch norm, relu, pool, conv", [3, 16, 14], [try conv2d(3, 6, 3), bn, .relu, try pool(), try conv2d(6, 5, 3)]),
        ]
        for (name, shape, layers) in chains {
            let probe = try Network(inputShape: shape, layers: layers)
            let net = try Network(inputShape: shape, layers: layers + [.flatten, try dense(g.normals(3 * probe.outputSize), out: 3, in: probe.outputSize)])
            XCTAssertEqual(net.bandedConvolution, layers.count - (layers.last == .relu ? 2 : 1), name)
            try assertSharedForwardEqualsPlain(net, shape, &g, name)
        }
        let padded = try Network(inputShape: [1, 12, 12], layers: [try conv2d(1, 6, 3), .relu, try conv2d(6, 4, 3, padding: 1)])
        XCTAssertNil(padded.bandedConvolution, "a padded second convolution does not run by kernel rows")
        XCTAssertTrue(padded.sharesFirstConvolution)
        var reentrant = try Network(inputShape: [1, 8, 8])
        try reentrant.append(try conv2d(1, 6, 3), inputs: [0])
        try reentrant.append(.relu, inputs: [1])
        try reentrant.append(try conv2d(6, 6, 3), inputs: [2])
        try reentrant.append(try conv2d(6, 6, 3), inputs: [2])
        try reentrant.append(.add, inputs: [3, 4])
        XCTAssertTrue(reentrant.sharesFirstConvolution)
        XCTAssertNil(reentrant.bandedConvolution, "the second convolution's input is read again after it")
        var skipping = try Network(inputShape: [1, 8, 8])
        try skipping.append(try conv2d(1, 6, 3), inputs: [0])
        try skipping.append(.relu, inputs: [1])
        try skipping.append(try conv2d(6, 6, 3), inputs: [1])
        XCTAssertNil(skipping.bandedConvolution, "the second convolution does not read the node before it")
    }

    /// Shapley value sampling on a LeNet-like CNN runs each permutation's coalitions as a chain (each near
    /// the one before): its attributions equal the definition evaluated with plain forward passes, and any
    /// chunk size (1, 4, 7 rows: none a whole number of chains, which the chunks round up to) gives the same
    /// numbers up to float32 rounding of the other GEMM shapes (1e-5 of the largest).
    func testShapleyAlongChainsEqualsItsDefinition() throws {
        var g = Gen(31)
        func conv2d(_ cin: Int, _ cout: Int, _ k: Int) throws -> Layer {
            .conv2d(try .init(weight: g.normals(cout * cin * k * k, scale: 1 / Float(cin * k * k).squareRoot()), bias: g.normals(cout),
                              outChannels: cout, inChannels: cin, kernel: [k, k], stride: [1, 1], padding: [0, 0], dilation: [1, 1]))
        }
        let layers = [try conv2d(1, 6, 3), .relu, .maxPool2d(try .init(kernel: [2, 2], stride: [2, 2], padding: [0, 0])),
                      try conv2d(6, 4, 3), .relu, .flatten]
        let probe = try Network(inputShape: [1, 14, 14], layers: layers)
        let net = try Network(inputShape: [1, 14, 14], layers: layers + [try dense(g.normals(3 * probe.outputSize, scale: 0.2), out: 3, in: probe.outputSize)])
        XCTAssertEqual(net.bandedConvolution, 3)
        let rows = 2, d = 196, m = 4, samples = 3
        // Four 7×7 superpixels; three permutations shared by both examples.
        let mask = (0..<d).map { (($0 / 14) / 7) * 2 + ($0 % 14) / 7 }
        let permutations = [0, 1, 2, 3, 2, 0, 3, 1, 3, 2, 1, 0]
        let x = g.normals(rows * d), b = g.normals(rows * d, scale: 0.3), targets = [1, 2]
        var expected = [Float](repeating: 0, count: rows * d)
        for i in 0..<rows {
            var phi = [Double](repeating: 0, count: m)
            for s in 0..<samples {
                var row = Array(b[(i * d)..<((i + 1) * d)])
                var previous = Double(net.forward(row, rows: 1)[targets[i]])
                for k in 0..<m {
                    let f = permutations[s * m + k]
                    for e in 0..<d where mask[e] == f { row[e] = x[i * d + e] }
                    let current = Double(net.forward(row, rows: 1)[targets[i]])
                    phi[f] += (current - previous) / Double(samples)
                    previous = current
                }
            }
            for e in 0..<d { expected[i * d + e] = Float(phi[mask[e]]) }
        }
        func shapley(_ chunk: Int?) throws -> [Float] {
            try net.shapleyValueSampling(x, rows: rows, baselines: b, mask: mask, targets: targets, permutations: permutations,
                                         internalBatchSize: chunk)
        }
        let whole = try shapley(nil)
        // Each φ is a sum of output differences ~1 computed in float32 (outputs ~3): 1e-5 of the largest φ.
        assertClose(whole, expected, rel: 1e-5, "Shapley along chains against its definition")
        for chunk in [1, 4, 7] { assertClose(try shapley(chunk), whole, rel: 1e-5, "chunk \(chunk)") }
    }

    /// Networks whose input is read again after node 0, or that do not start with a convolution, do not share.
    func testOnlyAFirstConvolutionOfTheInputShares() throws {
        var g = Gen(3)
        let conv = Layer.conv2d(try .init(weight: g.normals(9), bias: [0], outChannels: 1, inChannels: 1, kernel: [3, 3], stride: [1, 1],
                                          padding: [1, 1], dilation: [1, 1]))
        XCTAssertFalse(try Network(inputShape: [4], layers: [try dense(g.normals(8), out: 2, in: 4)]).sharesFirstConvolution)
        var residual = try Network(inputShape: [1, 4, 4])
        try residual.append(conv, inputs: [0])
        try residual.append(.add, inputs: [1, 0])
        XCTAssertFalse(residual.sharesFirstConvolution)
        XCTAssertTrue(try Network(inputShape: [1, 4, 4], layers: [conv, .relu]).sharesFirstConvolution)
    }
}
