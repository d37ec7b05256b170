import XCTest
@testable import SwiftAttr

/// LRP's rules, guided backpropagation and deconvolution on tiny networks with closed forms (the Captum
/// comparisons live in python/tests/test_rules.py). Tolerances: every case is a few float32 products and
/// sums of O(1) values, exact to a few ulps (1e-5 absolute).
final class PropagationRuleTests: XCTestCase {
    private func dense(_ w: [Float], out: Int, in n: Int, bias: [Float]? = nil) throws -> Layer {
        .dense(try .init(weight: w, bias: bias, outFeatures: out, inFeatures: n))
    }

    private func assertNear(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: tolerance, "\(a) vs \(b)", file: file, line: line) }
    }

    /// W = [[1, 2], [3, −1]], ReLU, [1, 1] (no biases).
    private func tiny() throws -> Network {
        try Network(inputShape: [2], layers: [try dense([1, 2, 3, -1], out: 2, in: 2), .relu, try dense([1, 1], out: 1, in: 2)])
    }

    func testEpsilonRuleClosedFormAndDelta() throws {
        // x = (1, 1): z = (3, 2), R = (1, 2) + (3, −1); x = (1, −1): only unit 1 (z = 4) is alive, R = (3, 1).
        let r = try tiny().lrp([1, 1, 1, -1], rows: 2, targets: [0])
        assertNear(r.attributions, [4, 1, 3, 1])
        assertNear(r.delta, [0, 0])
        // ε = 1 absorbs relevance: the last layer gives a_j·R/(5 + 1), and delta = f − ΣR is what is absorbed.
        let e = try tiny().lrp([1, 1], rows: 1, targets: [0], options: .init(epsilon: 1))
        let top: [Float] = [3 * 5 / 6.0, 2 * 5 / 6.0]
        let expected: [Float] = [top[0] / 4 * 1 + top[1] / 3 * 3, top[0] / 4 * 2 - top[1] / 3]
        assertNear(e.attributions, expected)
        assertNear(e.delta, [5 - expected[0] - expected[1]])
    }

    func testPerNodeParameters() throws {
        // ε = 1 on node 2 only: the last layer gives a·5/6, node 0 keeps 1e-9 (as testEpsilonRuleClosedFormAndDelta
        // with the ε of node 0 back at 1e-9).
        let r = try tiny().lrp([1, 1], rows: 1, targets: [0], options: .init(nodeEpsilon: [2: 1]))
        let top: [Float] = [2.5, 5 / 3.0]
        assertNear(r.attributions, [top[0] / 3 + 3 * top[1] / 2, 2 * top[0] / 3 - top[1] / 2])
        // γ per node: node 0 with γ = 1 while the call's γ is 0 (the ε-rule on node 2 either way).
        let g = try tiny().lrp([1, -1], rows: 1, targets: [0], options: .init(nodeRules: [0: .gamma], gamma: 0, nodeGamma: [0: 1]))
        assertNear(g.attributions, [24 / 7.0, 4 / 7.0])
        XCTAssertThrowsError(try tiny().lrp([1, 1], rows: 1, targets: [0], options: .init(nodeEpsilon: [5: 1]))) { error in
            XCTAssertEqual((error as! SwiftAttrError).code, .outOfRange)
            XCTAssertTrue((error as! SwiftAttrError).message.contains("node_epsilon"))
        }
        XCTAssertThrowsError(try tiny().lrp([1, 1], rows: 1, targets: [0], options: .init(nodeGamma: [0: -1]))) { error in
            XCTAssertEqual((error as! SwiftAttrError).code, .invalidArgument)
        }
    }

    func testGammaAndAlphaBetaClosedForms() throws {
        // One Linear [1, −2, 3] at x = (2, 1, 1): contributions (2, −2, 3), f = 3.
        let net = try Network(inputShape: [3], layers: [try dense([1, -2, 3], out: 1, in: 3)])
        let x: [Float] = [2, 1, 1]
        // γ = 0.5: W + γW⁺ = (1.5, −2, 4.5), z′ = 5.5.
        let g = try net.lrp(x, rows: 1, targets: [0], options: .init(rule: .gamma, gamma: 0.5))
        assertNear(g.attributions, [3, -2, 4.5].map { $0 * 3 / 5.5 })
        // α = 2, β = 1: z⁺ = 5, z⁻ = −2: R = (2·2/5·3, −1·(−2/−2)·3, 2·3/5·3) = (2.4, −3, 3.6), Σ = 3 (conserved).
        let ab = try net.lrp(x, rows: 1, targets: [0], options: .init(rule: .alphaBeta, alpha: 2, beta: 1))
        assertNear(ab.attributions, [2.4, -3, 3.6])
        assertNear(ab.delta, [0])
        // α = 1, β = 0 (Captum's Alpha1_Beta0): only W⁺ = (1, 0, 3), z⁺ = 5: (2, 0, 3)·3/5.
        let a1 = try net.lrp(x, rows: 1, targets: [0], options: .init(rule: .alphaBeta))
        assertNear(a1.attributions, [1.2, 0, 1.8])
    }

    func testZBRuleUsesTheBoundsAndConserves() throws {
        // A Flatten before the Linear still counts as the input layer. [1, −2] at x = (0.5, 0.5), l = −1, h = 2:
        // terms x w − l w⁺ − h w⁻ = (0.5 + 1, −1 + 4) = (1.5, 3), z = 4.5; R = f = −0.5 (the bias 0.2 is ignored
        // by z^B but part of f).
        let net = try Network(inputShape: [1, 2], layers: [.flatten, try dense([1, -2], out: 1, in: 2, bias: [0.2])])
        let r = try net.lrp([0.5, 0.5], rows: 1, targets: [0], options: .init(nodeRules: [1: .zB], low: [-1], high: [2]))
        let f: Float = 0.5 - 1 + 0.2
        assertNear(r.attributions, [1.5 * f / 4.5, 3 * f / 4.5])
        assertNear(r.delta, [0])
        // Per-element bounds give the same when they repeat the scalar.
        let same = try net.lrp([0.5, 0.5], rows: 1, targets: [0], options: .init(rule: .composite, low: [-1, -1], high: [2, 2]))
        assertNear(same.attributions, r.attributions)
    }

    func testPoolingBatchNormAddAndConcatRules() throws {
        // Max-pool: the window's winner takes the relevance (ε-rule on the pool's own map).
        let pool = try Network(inputShape: [1, 4], layers: [.maxPool1d(try .init(kernel: [2])), .flatten, try dense([1, 1], out: 1, in: 2)])
        assertNear(try pool.lrp([1, 3, 2, 0.5], rows: 1, targets: [0]).attributions, [0, 3, 2, 0])
        // ε = 0 and an all-zero window (y = 0, R = 0): nothing passes there, not 0/0.
        assertNear(try pool.lrp([0, 0, 2, 0.5], rows: 1, targets: [0], options: .init(epsilon: 0)).attributions, [0, 0, 2, 0])
        // BatchNorm y = 2x + 1: ε-rule R_in = x·2·R/y; identity passes R.
        let bn = try Network(inputShape: [1, 2], layers: [
            .batchNorm(try .init(gamma: [2], beta: [1], runningMean: [0], runningVar: [1], eps: 0)), .flatten, try dense([1, 1], out: 1, in: 2)])
        assertNear(try bn.lrp([1, 1], rows: 1, targets: [0]).attributions, [2, 2])
        assertNear(try bn.lrp([1, 1], rows: 1, targets: [0], options: .init(nodeRules: [0: .identity])).attributions, [3, 3])
        // Add: each input x_k R/Σx; the input fans out to both branches and sums.
        var add = try Network(inputShape: [2])
        try add.append(try dense([1, 0, 0, 1], out: 2, in: 2), inputs: [0])
        try add.append(try dense([2, 0, 0, 2], out: 2, in: 2), inputs: [0])
        try add.append(.add, inputs: [1, 2])
        try add.append(try dense([1, 1], out: 1, in: 2), inputs: [3])
        assertNear(try add.lrp([1, 1], rows: 1, targets: [0]).attributions, [3, 3])
        // Concat: each input its slice.
        var cat = try Network(inputShape: [2])
        try cat.append(try dense([1, 0], out: 1, in: 2), inputs: [0])
        try cat.append(try dense([0, 1], out: 1, in: 2), inputs: [0])
        try cat.append(.concat, inputs: [1, 2])
        try cat.append(.tanh, inputs: [3])
        try cat.append(try dense([1, 1], out: 1, in: 2), inputs: [4])
        let c = try cat.lrp([2, 3], rows: 1, targets: [0])
        let f = Float(tanh(2.0) + tanh(3.0))
        assertNear(c.attributions, [Float(tanh(2.0)), Float(tanh(3.0))])
        assertNear(c.delta, [f - c.attributions.reduce(0, +)])
    }

    func testSoftmaxStartsAtTheLogitAndLSTMIsRefused() throws {
        let plain = try tiny(), soft = try tiny().appending(.softmax)
        let x: [Float] = [1, 1, 1, -1]
        assertNear(try soft.lrp(x, rows: 2, targets: [0]).attributions, try plain.lrp(x, rows: 2, targets: [0]).attributions)
        let lstm = try Network(inputShape: [3, 2], layers: [
            .lstm(try .init(weightIH: [Float](repeating: 0.1, count: 8 * 2), weightHH: [Float](repeating: 0.1, count: 8 * 2), biasIH: nil, biasHH: nil,
                            inputSize: 2, hiddenSize: 2, returnSequences: false)), try dense([1, 1], out: 1, in: 2)])
        XCTAssertThrowsError(try lstm.lrp([Float](repeating: 1, count: 6), rows: 1, targets: [0])) { error in
            XCTAssertTrue((error as! SwiftAttrError).message.contains("LSTM"))
        }
    }

    func testBadRulesAndBoundsAreRefused() throws {
        let net = try tiny()
        func code(_ o: RelevanceOptions) -> SwiftAttrError.Code? {
            do { _ = try net.lrp([1, 1], rows: 1, targets: [0], options: o); return nil } catch { return (error as! SwiftAttrError).code }
        }
        XCTAssertEqual(code(.init(nodeRules: [3: .epsilon])), .outOfRange)
        XCTAssertEqual(code(.init(nodeRules: [-1: .epsilon])), .outOfRange)
        XCTAssertEqual(code(.init(nodeRules: [1: .gamma])), .invalidArgument)
        XCTAssertEqual(code(.init(nodeRules: [0: .identity])), .invalidArgument)
        XCTAssertEqual(code(.init(nodeRules: [2: .zB], low: [0], high: [1])), .invalidArgument)
        XCTAssertEqual(code(.init(rule: .composite)), .invalidArgument)
        XCTAssertEqual(code(.init(rule: .composite, low: [1], high: [0])), .invalidArgument)
        XCTAssertEqual(code(.init(rule: .composite, low: [0, 0, 0], high: [1])), .shapeMismatch)
        XCTAssertEqual(code(.init(rule: .composite, low: [.nan], high: [1])), .nonFinite)
        XCTAssertEqual(code(.init(rule: .alphaBeta, alpha: 1.5, beta: 0)), .invalidArgument)
        XCTAssertEqual(code(.init(rule: .alphaBeta, alpha: 0, beta: -1)), .invalidArgument)
        XCTAssertEqual(code(.init(gamma: -1)), .invalidArgument)
        XCTAssertEqual(code(.init(epsilon: .infinity)), .invalidArgument)
    }

    func testGuidedBackpropAndDeconvolutionClosedForms() throws {
        // x = (1, −1): unit 0 is dead. Guided: (0, 1) → Wᵀ = (3, −1); deconvolution ignores the mask: (1, 1) → (4, 1).
        let net = try tiny()
        assertNear(try net.guidedBackprop([1, 1, 1, -1], rows: 2, targets: [0]), [4, 1, 3, -1])
        assertNear(try net.deconvolution([1, 1, 1, -1], rows: 2, targets: [0]), [4, 1, 4, 1])
        // A negative gradient at a live ReLU is cut by both: last layer [−1, 1] at x = (1, 1).
        let neg = try Network(inputShape: [2], layers: [try dense([1, 2, 3, -1], out: 2, in: 2), .relu, try dense([-1, 1], out: 1, in: 2)])
        assertNear(try neg.guidedBackprop([1, 1], rows: 1, targets: [0]), [3, -1])
        assertNear(try neg.deconvolution([1, 1], rows: 1, targets: [0]), [3, -1])
        // Other activations keep their derivative (Captum hooks only ReLU): a Tanh network's guided
        // backpropagation is its gradient.
        let t = try Network(inputShape: [2], layers: [try dense([1, 2, 3, -1], out: 2, in: 2), .tanh, try dense([-1, 1], out: 1, in: 2)])
        assertNear(try t.guidedBackprop([0.3, -0.2], rows: 1, targets: [0]), try t.saliency([0.3, -0.2], rows: 1, targets: [0], absolute: false))
    }

    func testChunksAgree() throws {
        // Chunks of one row run other GEMM shapes: float32 rounding, 1e-5 of the scale.
        var g = Gen(7)
        let net = try Network(inputShape: [1, 6, 6], layers: [
            .conv2d(try .init(weight: g.normals(3 * 9), bias: g.normals(3), outChannels: 3, inChannels: 1, kernel: [3, 3], stride: [1, 1],
                              padding: [1, 1], dilation: [1, 1])),
            .relu, .maxPool2d(try .init(kernel: [2, 2])), .flatten, try dense(g.normals(4 * 27), out: 4, in: 27)])
        let x = g.normals(5 * 36)
        for o in [RelevanceOptions(), RelevanceOptions(rule: .gamma), RelevanceOptions(rule: .composite, low: [-4], high: [4])] {
            let whole = try net.lrp(x, rows: 5, targets: [0, 1, 2, 3, 0], options: o).attributions
            let split = try net.lrp(x, rows: 5, targets: [0, 1, 2, 3, 0], options: o, internalBatchSize: 1).attributions
            let scale = whole.map(abs).max()!
            assertNear(split, whole, 1e-5 * scale)
        }
    }

    func testRuleNumberingMatchesTheHeader() throws {
        // sa_lrp_rule holds SA_LRP_DEFAULT (-1), the per-node rules and the presets, one raw value per name.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("CInclude/swiftattr.h")
        let text = try String(contentsOf: url, encoding: .utf8)
        let open = try XCTUnwrap(text.range(of: "typedef enum sa_lrp_rule {"))
        let close = try XCTUnwrap(text.range(of: "} sa_lrp_rule;", range: open.upperBound..<text.endIndex))
        var header: [String: Int] = [:]
        for entry in text[open.upperBound..<close.lowerBound].split(separator: ",") {
            let parts = entry.split(separator: "=").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            header[parts[0]] = Int(parts[1])
        }
        var swift = ["SA_LRP_DEFAULT": -1]
        for r in RelevanceRule.allCases { swift["SA_LRP_" + r.name.uppercased()] = Int(r.rawValue) }
        for p in RelevancePreset.allCases { swift["SA_LRP_" + p.name.uppercased()] = Int(p.rawValue) }
        XCTAssertEqual(header, swift)
        XCTAssertEqual(ReLUBackwardRule.allCases.map(\.name), ["guided_backprop", "deconvolution"])
    }
}
