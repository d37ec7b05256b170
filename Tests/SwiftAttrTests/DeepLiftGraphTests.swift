import XCTest
@testable import SwiftAttr

/// DeepLIFT and DeepSHAP on graph networks (add, concat, fan-out): summation-to-delta for every rule on
/// graphs that together hold every node kind, DeepSHAP as the mean of DeepLIFT, equality with the same
/// function written as a chain, and Rescale = input×gradient where that identity holds.
final class DeepLiftGraphTests: XCTestCase {
    // MARK: helpers

    /// The attributed value: the logits for a final Softmax, else the output.
    private func attributedValue(_ n: Network) -> Int { n.endsWithSoftmax ? n.inputs[n.layers.count - 1][0] : n.layers.count }

    /// f_t(x) − f_t(x⁰) from the plain forward pass (minus the mean over classes after a Softmax).
    private func targetDifference(_ n: Network, _ x: [Float], _ x0: [Float], target: Int) throws -> Double {
        let top = attributedValue(n)
        let fx = try n.activations(x, rows: 1, atInputOf: top), f0 = try n.activations(x0, rows: 1, atInputOf: top)
        var value = Double(fx[target] - f0[target])
        if n.endsWithSoftmax { value -= zip(fx, f0).reduce(0) { $0 + Double($1.0 - $1.1) } / Double(fx.count) }
        return value
    }

    /// `rows` examples (and per-example baselines unless `baseline` is shared), each with the target whose
    /// |Δt| is largest and at least 0.1: Σφ and Δt carry float32 rounding of about 1e-7·|f|, so a 1e-5
    /// relative test needs Δt well above that.
    private func cases(_ n: Network, rows: Int, _ g: inout Gen, baseline: [Float]? = nil) throws -> (x: [Float], b: [Float], t: [Int]) {
        let d = n.inputSize
        var x = [Float](), b = [Float](), t = [Int]()
        var attempts = 0
        while t.count < rows {
            attempts += 1
            precondition(attempts < 50 * rows, "the test network is too insensitive to its inputs")
            let xi = g.normals(d), bi = baseline ?? g.normals(d)
            let deltas = try (0..<n.outputSize).map { abs(try targetDifference(n, xi, bi, target: $0)) }
            let best = deltas.indices.max { deltas[$0] < deltas[$1] }!
            guard deltas[best] >= 0.1 else { continue }
            x += xi
            if baseline == nil { b += bi }
            t.append(best)
        }
        return (x, baseline ?? b, t)
    }

    private func assertSummationToDelta(_ n: Network, _ name: String, rule: DeepLiftRule, maxPool: MaxPoolRule, x: [Float], b: [Float],
                                        targets: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let d = n.inputSize, rows = targets.count
        let r = try n.deepLift(x, rows: rows, baselines: b, targets: targets, rule: rule, maxPool: maxPool)
        for i in 0..<rows {
            let xi = Array(x[(i * d)..<((i + 1) * d)]), bi = b.count == d ? b : Array(b[(i * d)..<((i + 1) * d)])
            let expected = try targetDifference(n, xi, bi, target: targets[i])
            let total = r.attributions[(i * d)..<((i + 1) * d)].reduce(0) { $0 + Double($1) }
            XCTAssertEqual(total, expected, accuracy: 1e-5 * abs(expected), "\(name) \(rule.name) \(maxPool.name) example \(i)", file: file, line: line)
            XCTAssertEqual(Double(r.delta[i]), total - expected, accuracy: 1e-5 * max(1, abs(expected)), file: file, line: line)
        }
    }

    // MARK: summation-to-delta

    /// Every rule on graphs that together hold every node kind (conv, BN, dense, avg- and max-pool, flatten,
    /// every activation family, add, concat, fan-out, a final Softmax). The cross-max rule is exact for
    /// any reference; RevealCancel's split passes through add (a sum), concat and fan-out values.
    func testSummationToDeltaOnGraphs() throws {
        var g = Gen(1900)
        let graphs: [(String, Network)] = [
            ("residualConcat", GraphFixtures.residualConcat(&g)), ("residualConcat smooth", GraphFixtures.residualConcat(&g, smooth: true)),
            ("affineBranches", GraphFixtures.affineBranches(&g)), ("denseNetConcat", GraphFixtures.denseNetConcat(&g)),
            ("twoBranchSoftmax", GraphFixtures.twoBranchSoftmax(&g)),
        ]
        for (name, n) in graphs {
            XCTAssertFalse(n.isChain)
            let c = try cases(n, rows: 4, &g)
            for rule in DeepLiftRule.allCases {
                try assertSummationToDelta(n, name, rule: rule, maxPool: .crossMax, x: c.x, b: c.b, targets: c.t)
            }
            let shared = try cases(n, rows: 3, &g, baseline: g.normals(n.inputSize))
            try assertSummationToDelta(n, name + " shared baseline", rule: .revealCancel, maxPool: .crossMax, x: shared.x, b: shared.b, targets: shared.t)
        }
    }

    /// The gradient max-pool rule is exact when the references are equal within each window: without biases
    /// every value of the DenseNet-style graph is 0 at a zero input.
    func testGradientMaxPoolExactOnGraph() throws {
        var g = Gen(1901)
        let n = GraphFixtures.denseNetConcat(&g, bias: false)
        let c = try cases(n, rows: 4, &g, baseline: [Float](repeating: 0, count: n.inputSize))
        for rule in DeepLiftRule.allCases {
            try assertSummationToDelta(n, "denseNetConcat", rule: rule, maxPool: .gradient, x: c.x, b: c.b, targets: c.t)
        }
    }

    // MARK: DeepSHAP

    func testDeepShapIsMeanOfDeepLiftOnGraphs() throws {
        var g = Gen(1902)
        for n in [GraphFixtures.denseNetConcat(&g), GraphFixtures.twoBranchSoftmax(&g)] {
            let rows = 3, refs = 4, d = n.inputSize
            let x = g.normals(rows * d), references = g.normals(refs * d)
            for rule in DeepLiftRule.allCases {
                let shap = try n.deepShap(x, rows: rows, references: references, referenceCount: refs, targets: [1], rule: rule)
                let chunked = try n.deepShap(x, rows: rows, references: references, referenceCount: refs, targets: [1], rule: rule, internalBatchSize: 3)
                var mean = [Double](repeating: 0, count: rows * d)
                for i in 0..<rows {
                    let xi = Array(x[(i * d)..<((i + 1) * d)])
                    for r in 0..<refs {
                        let one = try n.deepLift(xi, rows: 1, baselines: Array(references[(r * d)..<((r + 1) * d)]), targets: [1], rule: rule)
                        for k in 0..<d { mean[i * d + k] += Double(one.attributions[k]) / Double(refs) }
                    }
                }
                // Per pair the same rules on other GEMM shapes (1 pair vs a block): float32 rounding of the
                // activations (≤ 1e-6 relative per layer over ≤ 6 layers) carried into the contributions.
                assertClose(shap.attributions, mean, rel: 1e-5, "DeepSHAP = mean of DeepLIFT, \(rule.name)")
                assertClose(chunked.attributions, shap.attributions, rel: 1e-5, "DeepSHAP chunked, \(rule.name)")
            }
        }
    }

    // MARK: graphs equal to chains

    private func denseLayer(_ w: [Float], _ b: [Float], out: Int, inp: Int) -> Layer {
        .dense(try! .init(weight: w, bias: b, outFeatures: out, inFeatures: inp))
    }

    /// A residual add of a zero-weight branch changes nothing: DeepLIFT on
    /// dense → (+ zero dense) → ReLU → dense → tanh → dense equals the chain without the branch, for every rule.
    func testZeroBranchAddEqualsChain() throws {
        var g = Gen(1903)
        let first = g.dense(5, 6), second = g.dense(4, 5), last = g.dense(3, 4)
        let chain = net([6], [first, .relu, second, .tanh, last])
        var graph = net([6], [])
        try graph.append(first, inputs: [0])                                                               // v1
        try graph.append(denseLayer([Float](repeating: 0, count: 30), [Float](repeating: 0, count: 5), out: 5, inp: 6), inputs: [0])  // v2
        try graph.append(.add, inputs: [1, 2])                                                              // v3
        try graph.append(.relu, inputs: [3])
        try graph.append(second, inputs: [4])
        try graph.append(.tanh, inputs: [5])
        try graph.append(last, inputs: [6])
        let rows = 5
        let x = g.normals(rows * 6), b = g.normals(rows * 6)
        for rule in DeepLiftRule.allCases {
            let c = try chain.deepLift(x, rows: rows, baselines: b, targets: [2], rule: rule)
            let a = try graph.deepLift(x, rows: rows, baselines: b, targets: [2], rule: rule)
            // The same GEMMs plus exact zeros (0·x summed, then added): only the order of the additions of
            // zeros differs, so the results agree to float32 rounding of one layer.
            assertClose(a.attributions, c.attributions, rel: 1e-6, "zero branch, \(rule.name)")
        }
    }

    /// Concat of two denses followed by ReLU and a dense equals the chain with the stacked dense; concat of
    /// two convs along channels followed by ReLU and max-pooling equals the chain with the stacked conv.
    func testConcatEqualsStackedChain() throws {
        var g = Gen(1904)
        // Vectors.
        let wa = g.normals(4 * 6, scale: 0.4), wb = g.normals(3 * 6, scale: 0.4), ba = g.normals(4, scale: 0.3), bb = g.normals(3, scale: 0.3)
        let top = g.dense(2, 7)
        let chain = net([6], [denseLayer(wa + wb, ba + bb, out: 7, inp: 6), .relu, top])
        var graph = net([6], [])
        try graph.append(denseLayer(wa, ba, out: 4, inp: 6), inputs: [0])
        try graph.append(denseLayer(wb, bb, out: 3, inp: 6), inputs: [0])
        try graph.append(.concat, inputs: [1, 2])
        try graph.append(.relu, inputs: [3])
        try graph.append(top, inputs: [4])
        // Images: conv channels stacked along the output-channel axis (PyTorch layout out × in × kh × kw).
        let ka = g.normals(2 * 2 * 9, scale: 0.3), kb = g.normals(3 * 2 * 9, scale: 0.3), ca = g.normals(2, scale: 0.3), cb = g.normals(3, scale: 0.3)
        func conv(_ w: [Float], _ b: [Float], _ out: Int) -> Layer {
            .conv2d(try! .init(weight: w, bias: b, outChannels: out, inChannels: 2, kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1]))
        }
        let head = g.dense(3, 5 * 9)
        let imageChain = net([2, 6, 6], [conv(ka + kb, ca + cb, 5), .relu, .maxPool2d(pool([2, 2])), .flatten, head])
        var imageGraph = net([2, 6, 6], [])
        try imageGraph.append(conv(ka, ca, 2), inputs: [0])
        try imageGraph.append(conv(kb, cb, 3), inputs: [0])
        try imageGraph.append(.concat, inputs: [1, 2])
        try imageGraph.append(.relu, inputs: [3])
        try imageGraph.append(.maxPool2d(pool([2, 2])), inputs: [4])
        try imageGraph.append(.flatten, inputs: [5])
        try imageGraph.append(head, inputs: [6])
        for (c, a) in [(chain, graph), (imageChain, imageGraph)] {
            let rows = 4, d = c.inputSize
            let x = g.normals(rows * d), b = g.normals(rows * d)
            for rule in DeepLiftRule.allCases {
                for maxPool in MaxPoolRule.allCases {
                    let expected = try c.deepLift(x, rows: rows, baselines: b, targets: [1], rule: rule, maxPool: maxPool)
                    let got = try a.deepLift(x, rows: rows, baselines: b, targets: [1], rule: rule, maxPool: maxPool)
                    // Other GEMM shapes (two small ones against one stacked): each activation rounds at
                    // K·u·Σ|w||x| with K ≤ 45, u = 6e-8 (≤ 3e-6 of the scale); Rescale/RevealCancel turn an
                    // error of Δy into one of m·Δx of the same size, so 2e-5 of max|φ| bounds three layers.
                    assertClose(got.attributions, expected.attributions, rel: 2e-5, "concat = stacked, \(rule.name), \(maxPool.name), \(c.inputShape)")
                }
            }
        }
    }

    // MARK: Rescale = input×gradient

    /// Without biases and with a zero reference every value of a ReLU network is 0 at the reference, so
    /// Rescale's Δy/Δx of a ReLU is its gradient (1 or 0): DeepLIFT equals input×gradient on a graph with
    /// add, concat and fan-out (no max-pool, whose cross-max rule is not the gradient; no BatchNorm, whose
    /// shift moves the reference).
    func testRescaleEqualsInputTimesGradientOnBiasFreeReLUGraph() throws {
        var g = Gen(1905)
        var n = net([2, 6, 6], [])
        try n.append(g.conv(3, 2, kernel: [3, 3], padding: [1, 1], bias: false), inputs: [0])  // v1
        try n.append(.relu, inputs: [1])                                                         // v2
        try n.append(g.conv(3, 3, kernel: [3, 3], padding: [1, 1], bias: false), inputs: [2])  // v3
        try n.append(.add, inputs: [3, 1])                                                       // v4
        try n.append(.relu, inputs: [4])                                                         // v5
        try n.append(.concat, inputs: [5, 2])                                                    // v6: [6, 6, 6]
        try n.append(.avgPool2d(pool([2, 2])), inputs: [6])
        try n.append(.flatten, inputs: [7])
        try n.append(g.dense(5, 54, bias: false), inputs: [8])
        try n.append(.relu, inputs: [9])
        try n.append(g.dense(3, 5, bias: false), inputs: [10])
        let rows = 4
        let x = g.normals(rows * n.inputSize)
        let dl = try n.deepLift(x, rows: rows, targets: [0, 1, 2, 1], rule: .rescale)
        let ixg = try n.inputXGradient(x, rows: rows, targets: [0, 1, 2, 1])
        // The same products in another order (Rescale multiplies y/x, the gradient 1{x>0}): float32 rounding.
        assertClose(dl.attributions, ixg, rel: 1e-5, "Rescale DeepLIFT = input×gradient")
    }

    // MARK: float64 brute force

    /// Rescale DeepLIFT on a ReLU graph of dense, add, concat and fan-out, against a float64 reference
    /// written from the definition with plain loops (no GEMM, no propagation driver): forward x and x⁰,
    /// each ReLU's multiplier Δy/Δx, multipliers summed backwards over every path, φ = m·Δx.
    func testRescaleEqualsFloat64BruteForceOnReLUGraph() throws {
        var g = Gen(1906)
        var n = net([6], [])
        try n.append(g.dense(8, 6), inputs: [0])     // v1
        try n.append(.relu, inputs: [1])             // v2
        try n.append(g.dense(5, 6), inputs: [0])     // v3
        try n.append(.relu, inputs: [3])             // v4
        try n.append(.concat, inputs: [2, 4])        // v5: [13]
        try n.append(g.dense(6, 13), inputs: [5])    // v6
        try n.append(g.dense(6, 8), inputs: [2])     // v7: fan-out of v2
        try n.append(.add, inputs: [6, 7])           // v8
        try n.append(.relu, inputs: [8])             // v9
        try n.append(.add, inputs: [9, 7])           // v10: fan-out of v7
        try n.append(g.dense(3, 6), inputs: [10])    // v11
        func forward(_ x: [Double]) -> [[Double]] {
            var values = [x]
            for i in n.layers.indices {
                let reads = n.inputs[i].map { values[$0] }
                switch n.layers[i] {
                case .dense(let d):
                    values.append((0..<d.outFeatures).map { o in
                        (0..<d.inFeatures).reduce(Double(d.bias[o])) { $0 + Double(d.weight[o * d.inFeatures + $1]) * reads[0][$1] }
                    })
                case .relu: values.append(reads[0].map { max($0, 0) })
                case .add: values.append(reads[0].indices.map { k in reads.reduce(0) { $0 + $1[k] } })
                case .concat: values.append(reads.flatMap { $0 })
                case .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .leakyReLU, .elu,
                     .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm: preconditionFailure("not in this test graph")
                }
            }
            return values
        }
        let rows = 6, d = n.inputSize
        let x = g.normals(rows * d), b = g.normals(rows * d)
        let targets = [0, 1, 2, 0, 1, 2]
        let engine = try n.deepLift(x, rows: rows, baselines: b, targets: targets, rule: .rescale)
        var expected = [Double]()
        for r in 0..<rows {
            let xs = forward(x[(r * d)..<((r + 1) * d)].map(Double.init)), bs = forward(b[(r * d)..<((r + 1) * d)].map(Double.init))
            var m = n.shapes.indices.map { [Double](repeating: 0, count: n.size(at: $0)) }
            m[n.layers.count][targets[r]] = 1
            for i in n.layers.indices.reversed() {
                let out = m[i + 1]
                switch n.layers[i] {
                case .dense(let l):
                    for o in 0..<l.outFeatures { for j in 0..<l.inFeatures { m[n.inputs[i][0]][j] += Double(l.weight[o * l.inFeatures + j]) * out[o] } }
                case .relu:
                    let v = n.inputs[i][0]
                    for j in out.indices {
                        let dx = xs[v][j] - bs[v][j]
                        let slope = abs(dx) >= 1e-7 ? (xs[i + 1][j] - bs[i + 1][j]) / dx : (bs[v][j] > 0 ? 1 : 0)
                        m[v][j] += slope * out[j]
                    }
                case .add:
                    for v in n.inputs[i] { for j in out.indices { m[v][j] += out[j] } }
                case .concat:
                    var offset = 0
                    for v in n.inputs[i] { for j in m[v].indices { m[v][j] += out[offset + j] }; offset += m[v].count }
                case .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .leakyReLU, .elu,
                     .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm: preconditionFailure("not in this test graph")
                }
            }
            expected += (0..<d).map { m[0][$0] * (xs[0][$0] - bs[0][$0]) }
        }
        // float32 against float64: each activation rounds at K·u·Σ|w||x| (K ≤ 13, u = 6e-8: ≤ 1e-6 of the
        // scale); Rescale turns an error of Δy into one of m·Δx of the same size, so 1e-5 of max|φ| bounds
        // the three nonlinear layers with room for the elementwise rounding.
        assertClose(engine.attributions, expected, rel: 1e-5, "Rescale vs float64 brute force")
    }
}
