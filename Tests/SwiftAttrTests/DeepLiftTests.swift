import XCTest
@testable import SwiftAttr

/// DeepLIFT and DeepSHAP (Shrikumar, Greenside, Kundaje 2017): summation-to-delta on networks that use
/// every layer kind, Captum's published vectors, a RevealCancel case worked by hand, and consistency of
/// DeepSHAP with DeepLIFT.
final class DeepLiftTests: XCTestCase {
    private var worstRelativeError: Double = 0

    override func tearDown() {
        if worstRelativeError > 0 { print("worst relative summation-to-delta error: \(worstRelativeError)") }
        worstRelativeError = 0
    }
    // MARK: helpers

    private func uniform(_ count: Int, _ rng: inout RandomSource, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in scale * Float(2 * rng.uniform() - 1) }
    }

    private func dense(_ out: Int, _ inp: Int, _ rng: inout RandomSource, gain: Float = 1.5) throws -> Layer {
        .dense(try .init(weight: uniform(out * inp, &rng, scale: gain / Float(inp).squareRoot()), bias: uniform(out, &rng, scale: 0.3),
                         outFeatures: out, inFeatures: inp))
    }

    private func conv(_ out: Int, _ inp: Int, kernel: [Int], stride: [Int], padding: [Int], dilation: [Int], _ rng: inout RandomSource) throws -> Layer {
        let k = kernel.reduce(1, *)
        let c = try Layer.Convolution(weight: uniform(out * inp * k, &rng, scale: 1.5 / Float(inp * k).squareRoot()), bias: uniform(out, &rng, scale: 0.3),
                                      outChannels: out, inChannels: inp, kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        return kernel.count == 1 ? .conv1d(c) : .conv2d(c)
    }

    private func batchNorm(_ c: Int, _ rng: inout RandomSource) throws -> Layer {
        // Some negative scales, so the positive and negative parts swap.
        .batchNorm(try .init(gamma: uniform(c, &rng, scale: 1.5), beta: uniform(c, &rng, scale: 0.5), runningMean: uniform(c, &rng, scale: 0.3),
                             runningVar: (0..<c).map { _ in 0.5 + Float(rng.uniform()) }, eps: 1e-5))
    }

    /// Images [2, 9, 9]: Conv2d (padding), BatchNorm, ReLU, overlapping MaxPool2d with padding, dilated Conv2d,
    /// LeakyReLU, AvgPool2d, ELU, Flatten, Dense, Dropout, Softplus, Dense, Sigmoid, Dense, Tanh, Dense.
    private func imageNetwork(seed: UInt64, softmax: Bool = false) throws -> Network {
        var rng = RandomSource(seed: seed)
        var layers: [Layer] = [
            try conv(4, 2, kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], &rng),
            try batchNorm(4, &rng), .relu,
            .maxPool2d(try .init(kernel: [3, 3], stride: [2, 2], padding: [1, 1])),
            try conv(3, 4, kernel: [2, 2], stride: [1, 1], padding: [0, 0], dilation: [2, 2], &rng),
            .leakyReLU(slope: 0.2),
            .avgPool2d(try .init(kernel: [2, 2], stride: [1, 1])),
            .elu(alpha: 0.7), .flatten,
            try dense(10, 12, &rng, gain: 3), .dropout(p: 0.3), .softplus(beta: 1.5),
            try dense(8, 10, &rng, gain: 2), .sigmoid,
            try dense(6, 8, &rng, gain: 3), .tanh,
            try dense(4, 6, &rng, gain: 4),
        ]
        if softmax { layers.append(.softmax) }
        return try Network(inputShape: [2, 9, 9], layers: layers)
    }

    /// Sequences [3, 16]: Conv1d, Tanh, MaxPool1d, strided Conv1d, BatchNorm, Sigmoid, AvgPool1d with padding,
    /// ReLU, GlobalAvgPool, Dense, Softmax.
    private func sequenceNetwork(seed: UInt64) throws -> Network {
        var rng = RandomSource(seed: seed)
        return try Network(inputShape: [3, 16], layers: [
            try conv(4, 3, kernel: [3], stride: [1], padding: [1], dilation: [1], &rng), .tanh,
            .maxPool1d(try .init(kernel: [2])),
            try conv(5, 4, kernel: [3], stride: [2], padding: [1], dilation: [1], &rng),
            try batchNorm(5, &rng), .leakyReLU(slope: -0.1),
            .avgPool1d(try .init(kernel: [2], stride: [1], padding: [1])),
            .relu, .globalAvgPool,
            try dense(3, 5, &rng, gain: 6), .softmax,
        ])
    }

    /// f_t(x) − f_t(x⁰) computed independently of DeepLIFT (at the logits minus their mean for a final Softmax).
    private func targetDifference(_ net: Network, _ x: [Float], _ x0: [Float], target: Int) throws -> Double {
        let top = net.endsWithSoftmax ? net.layers.count - 1 : net.layers.count
        let fx = try net.activations(x, rows: 1, atInputOf: top), f0 = try net.activations(x0, rows: 1, atInputOf: top)
        var value = Double(fx[target] - f0[target])
        if net.endsWithSoftmax {
            value -= zip(fx, f0).reduce(0) { $0 + Double($1.0 - $1.1) } / Double(fx.count)
        }
        return value
    }

    /// Per example, the class whose Δt is largest in magnitude: a relative test of Σφ = Δt needs Δt well
    /// above the float32 rounding of f itself (about 1e-7·|f|), which a near-zero Δt is not.
    private func clearestTargets(_ net: Network, _ x: [Float], _ baselines: [Float], rows: Int) throws -> [Int] {
        let d = net.inputSize
        return try (0..<rows).map { i in
            let xi = Array(x[(i * d)..<((i + 1) * d)])
            let bi = baselines.count == d ? baselines : Array(baselines[(i * d)..<((i + 1) * d)])
            let deltas = try (0..<net.outputSize).map { abs(try targetDifference(net, xi, bi, target: $0)) }
            return deltas.indices.max { deltas[$0] < deltas[$1] }!
        }
    }

    /// `rows` random examples and baselines (uniform on ±`scale`) with targets whose |Δt| ≥ 0.1: Σφ and Δt
    /// both carry float32 rounding of about 1e-7·|f|, so a 1e-5 relative test needs Δt well above that.
    private func wellConditionedCases(_ net: Network, rows: Int, _ rng: inout RandomSource, scale: Float = 2,
                                      sharedBaseline: [Float]? = nil) throws -> (x: [Float], baselines: [Float], targets: [Int]) {
        let d = net.inputSize
        var x = [Float](), baselines = [Float](), targets = [Int]()
        var attempts = 0
        while targets.count < rows {
            attempts += 1
            precondition(attempts < 50 * rows, "the test network is too insensitive to its inputs")
            let xi = uniform(d, &rng, scale: scale), bi = sharedBaseline ?? uniform(d, &rng, scale: scale)
            let t = try clearestTargets(net, xi, bi, rows: 1)[0]
            guard abs(try targetDifference(net, xi, bi, target: t)) >= 0.1 else { continue }
            x += xi
            if sharedBaseline == nil { baselines += bi }
            targets.append(t)
        }
        return (x, sharedBaseline ?? baselines, targets)
    }

    /// Asserts Σ_i φ_i = Δt to `tolerance` relative, example by example, against an independent forward pass.
    private func assertSummationToDelta(_ net: Network, rule: DeepLiftRule, maxPool: MaxPoolRule, x: [Float], baselines: [Float], rows: Int,
                                        targets: [Int], tolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        let d = net.inputSize
        let result = try net.deepLift(x, rows: rows, baselines: baselines, targets: targets, rule: rule, maxPool: maxPool)
        for i in 0..<rows {
            let xi = Array(x[(i * d)..<((i + 1) * d)])
            let bi = baselines.count == d ? baselines : Array(baselines[(i * d)..<((i + 1) * d)])
            let expected = try targetDifference(net, xi, bi, target: targets[i])
            let total = result.attributions[(i * d)..<((i + 1) * d)].reduce(0) { $0 + Double($1) }
            let fx = try net.activations(xi, rows: 1, atInputOf: net.endsWithSoftmax ? net.layers.count - 1 : net.layers.count)
            worstRelativeError = max(worstRelativeError, abs(total - expected) / abs(expected))
            XCTAssertEqual(total, expected, accuracy: tolerance * abs(expected),
                           "rule \(rule.name), maxpool \(maxPool.name), example \(i), input \(net.inputShape), tape delta \(result.delta[i]), f(x) \(fx)", file: file, line: line)
            XCTAssertEqual(Double(result.delta[i]), total - expected, accuracy: 1e-5 * max(1, abs(expected)), file: file, line: line)
        }
    }

    // MARK: summation-to-delta

    func testSummationToDeltaEveryRuleEveryLayerKind() throws {
        for seed: UInt64 in [1, 2, 3] {
            var rng = RandomSource(seed: 100 + seed)
            let rows = 6
            for net in [try imageNetwork(seed: seed), try imageNetwork(seed: seed, softmax: true), try sequenceNetwork(seed: seed)] {
                let (x, baselines, targets) = try wellConditionedCases(net, rows: rows, &rng)
                for rule in DeepLiftRule.allCases {
                    try assertSummationToDelta(net, rule: rule, maxPool: .crossMax, x: x, baselines: baselines, rows: rows, targets: targets)
                }
            }
        }
    }

    func testSummationToDeltaSharedBaseline() throws {
        var rng = RandomSource(seed: 7)
        let net = try imageNetwork(seed: 4)
        let rows = 5
        let (x, baseline, targets) = try wellConditionedCases(net, rows: rows, &rng, sharedBaseline: uniform(net.inputSize, &rng, scale: 2))
        for rule in DeepLiftRule.allCases {
            try assertSummationToDelta(net, rule: rule, maxPool: .crossMax, x: x, baselines: baseline, rows: rows, targets: targets)
        }
    }

    /// The argmax-of-input rule is exact when the references are equal within each pooling window (its authors'
    /// condition): a channel-constant baseline through an unpadded convolution gives channel-constant references.
    func testGradientMaxPoolExactWhenReferencesEqualWithinWindows() throws {
        for seed: UInt64 in [5, 6] {
            var rng = RandomSource(seed: seed)
            let net = try Network(inputShape: [2, 8, 8], layers: [
                try conv(3, 2, kernel: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1], &rng), .relu,
                .maxPool2d(try .init(kernel: [2, 2])), .flatten,
                try dense(6, 27, &rng), .elu(alpha: 1), try dense(3, 6, &rng),
            ])
            let rows = 4
            var baseline = [Float](repeating: 0.4, count: 64)
            baseline += [Float](repeating: -0.7, count: 64)
            let (x, _, targets) = try wellConditionedCases(net, rows: rows, &rng, sharedBaseline: baseline)
            for rule in DeepLiftRule.allCases {
                try assertSummationToDelta(net, rule: rule, maxPool: .gradient, x: x, baselines: baseline, rows: rows, targets: targets)
            }
        }
    }

    func testDeepShapSummationAndMeanOfDeepLift() throws {
        var rng = RandomSource(seed: 11)
        let net = try sequenceNetwork(seed: 9)
        let rows = 3, refs = 5, d = net.inputSize
        let x = uniform(rows * d, &rng, scale: 2), references = uniform(refs * d, &rng, scale: 2)
        for rule in DeepLiftRule.allCases {
            let shap = try net.deepShap(x, rows: rows, references: references, referenceCount: refs, targets: [1], rule: rule)
            let chunked = try net.deepShap(x, rows: rows, references: references, referenceCount: refs, targets: [1], rule: rule, internalBatchSize: 2)
            for i in 0..<rows {
                let xi = Array(x[(i * d)..<((i + 1) * d)])
                var mean = [Double](repeating: 0, count: d)
                var expected: Double = 0
                for r in 0..<refs {
                    let ref = Array(references[(r * d)..<((r + 1) * d)])
                    let one = try net.deepLift(xi, rows: 1, baselines: ref, targets: [1], rule: rule)
                    for k in 0..<d { mean[k] += Double(one.attributions[k]) / Double(refs) }
                    expected += try targetDifference(net, xi, ref, target: 1) / Double(refs)
                }
                for k in 0..<d {
                    XCTAssertEqual(Double(shap.attributions[i * d + k]), mean[k], accuracy: 1e-5)
                    XCTAssertEqual(chunked.attributions[i * d + k], shap.attributions[i * d + k], accuracy: 1e-6)
                }
                let total = shap.attributions[(i * d)..<((i + 1) * d)].reduce(0) { $0 + Double($1) }
                XCTAssertEqual(total, expected, accuracy: 1e-5 * abs(expected))
                XCTAssertEqual(Double(shap.delta[i]), total - expected, accuracy: 1e-5)
            }
        }
    }

    func testChunkingDoesNotChangeResults() throws {
        var rng = RandomSource(seed: 21)
        let net = try imageNetwork(seed: 8)
        let rows = 7
        let x = uniform(rows * net.inputSize, &rng), b = uniform(rows * net.inputSize, &rng)
        for rule in DeepLiftRule.allCases {
            let whole = try net.deepLift(x, rows: rows, baselines: b, targets: [3], rule: rule)
            let again = try net.deepLift(x, rows: rows, baselines: b, targets: [3], rule: rule)
            let pieces = try net.deepLift(x, rows: rows, baselines: b, targets: [3], rule: rule, internalBatchSize: 3)
            // The same computation repeats bit for bit.
            XCTAssertEqual(whole.attributions, again.attributions, "\(rule)")
            // Other chunks are other GEMM shapes, which OpenBLAS may run on other kernels. Every contribution is
            // a difference of activations carried through ≤ 6 layers whose GEMMs round at K·u·Σ|w||x|
            // (K ≤ 18, u = 6e-8: ≤ 1.1e-6 of the activations' scale per layer); Rescale's m = Δy/Δx only turns
            // an absolute error of Δy into one of m·Δx = Δy, so errors stay at that scale of max|φ|:
            // 2e-5 · max|φ| is that bound over six layers with a factor of 3 for the elementwise rounding.
            let scale = whole.attributions.map(abs).max() ?? 0
            let worst = zip(whole.attributions, pieces.attributions).map { abs($0 - $1) }.max() ?? 0
            print("chunked DeepLIFT \(rule): worst \(worst / max(scale, 1e-30)) of max|φ|")
            XCTAssertLessThanOrEqual(worst, 2e-5 * scale, "\(rule): chunked differs by \(worst) (scale \(scale))")
            XCTAssertEqual(whole.delta.count, pieces.delta.count)
        }
    }

    // MARK: Captum's test vectors

    /// 2·ReLU(x1) + 2·ReLU(x2 − 1.5) at (1, 2), baseline 0 → (2, 1); multipliers (2, 0.5).
    func testCaptumTwoReLUs() throws {
        let net = try Network(inputShape: [2], layers: [
            .dense(try .init(weight: [1, 0, 0, 1], bias: [0, -1.5], outFeatures: 2, inFeatures: 2)), .relu,
            .dense(try .init(weight: [2, 2], bias: nil, outFeatures: 1, inFeatures: 2)),
        ])
        let c = try net.deepLift([1, 2], rows: 1, targets: [0])
        XCTAssertEqual(c.attributions, [2, 1])
        XCTAssertEqual(c.delta[0], 0, accuracy: 1e-6)
        XCTAssertEqual(try net.deepLift([1, 2], rows: 1, targets: [0], multiplyByInputs: false).attributions, [2, 0.5])
    }

    /// ReLU(ReLU(x1) − 1 − ReLU(x2)) at (3, 1), baseline 0 → (1.5, −0.5).
    func testCaptumNestedReLU() throws {
        let net = try Network(inputShape: [2], layers: [
            .relu, .dense(try .init(weight: [1, -1], bias: [-1], outFeatures: 1, inFeatures: 2)), .relu,
        ])
        let c = try net.deepLift([3, 1], rows: 1, targets: [0])
        XCTAssertEqual(c.attributions[0], 1.5, accuracy: 1e-6)
        XCTAssertEqual(c.attributions[1], -0.5, accuracy: 1e-6)
    }

    /// Identity layer, MaxPool over 4, inputs all ones, baselines [[1,2,3,9],[4,8,6,7]]: cross-max gives
    /// [[0,0,0,−8],[0,−7,0,0]] (Captum); the argmax of the input (index 0 for ties) gives [[0,0,0,0],[−3,0,0,0]].
    func testMaxPoolVectors() throws {
        let pool = try Network(inputShape: [1, 4], layers: [.maxPool1d(try .init(kernel: [4])), .flatten])
        let x: [Float] = [1, 1, 1, 1, 1, 1, 1, 1], b: [Float] = [1, 2, 3, 9, 4, 8, 6, 7]
        let cross = try pool.deepLift(x, rows: 2, baselines: b, targets: [0], maxPool: .crossMax)
        XCTAssertEqual(cross.attributions, [0, 0, 0, -8, 0, -7, 0, 0])
        XCTAssertEqual(cross.delta, [0, 0])
        let gradient = try pool.deepLift(x, rows: 2, baselines: b, targets: [0], maxPool: .gradient)
        XCTAssertEqual(gradient.attributions, [0, 0, 0, 0, -3, 0, 0, 0])
        XCTAssertEqual(gradient.delta, [8, 4])
    }

    // MARK: RevealCancel worked by hand

    /// y = ReLU(x1 − x2) from a Dense layer, x = (3, 1), x⁰ = 0: Δz = 2 with Δz⁺ = 3 (from x1) and Δz⁻ = −1
    /// (from x2). Rescale: m = Δy/Δz = 1 → (3, −1). RevealCancel: Δy⁺ = ½[f(3) − f(0)] + ½[f(2) − f(−1)] = 2.5,
    /// Δy⁻ = ½[f(−1) − f(0)] + ½[f(2) − f(3)] = −0.5 → m⁺ = 2.5/3, m⁻ = 0.5 → (2.5, −0.5).
    func testRevealCancelByHand() throws {
        let net = try Network(inputShape: [2], layers: [.dense(try .init(weight: [1, -1], bias: nil, outFeatures: 1, inFeatures: 2)), .relu])
        let rescale = try net.deepLift([3, 1], rows: 1, targets: [0], rule: .rescale)
        XCTAssertEqual(rescale.attributions[0], 3, accuracy: 1e-6)
        XCTAssertEqual(rescale.attributions[1], -1, accuracy: 1e-6)
        for rule in [DeepLiftRule.revealCancel, .genomics] {
            let rc = try net.deepLift([3, 1], rows: 1, targets: [0], rule: rule)
            XCTAssertEqual(rc.attributions[0], 2.5, accuracy: 1e-6)
            XCTAssertEqual(rc.attributions[1], -0.5, accuracy: 1e-6)
            let m = try net.deepLift([3, 1], rows: 1, targets: [0], rule: rule, multiplyByInputs: false)
            XCTAssertEqual(m.attributions[0], 2.5 / 3, accuracy: 1e-6)
            XCTAssertEqual(m.attributions[1], -0.5, accuracy: 1e-6)
        }
    }

    /// The paper's min network (§3.5.3), y = ReLU(x1) − ReLU(x1 − x2) = min(x1, x2) for x1 > 0, at x = (5, 2)
    /// from 0. h = ReLU(x1 − x2): Δz = 3, Δz⁺ = 5, Δz⁻ = −2; Rescale m = 1; RevealCancel Δh⁺ = ½(5 + 3) = 4,
    /// Δh⁻ = ½(0 + (3 − 5)) = −1, m⁺ = 0.8, m⁻ = 0.5.
    /// Rescale: C(x1) = 5 − 5 = 0, C(x2) = 0 − (−1)(2) = 2. RevealCancel: C(x1) = 5 − 0.8·5 = 1, C(x2) = 0.5·2 = 1.
    func testRevealCancelMinNetwork() throws {
        let net = try Network(inputShape: [2], layers: [
            .dense(try .init(weight: [1, 0, 1, -1], bias: nil, outFeatures: 2, inFeatures: 2)),
            .relu,  // ReLU(x1) (x1 > 0 here) and ReLU(x1 − x2)
            .dense(try .init(weight: [1, -1], bias: nil, outFeatures: 1, inFeatures: 2)),
        ])
        let rescale = try net.deepLift([5, 2], rows: 1, targets: [0], rule: .rescale).attributions
        XCTAssertEqual(rescale[0], 0, accuracy: 1e-6)
        XCTAssertEqual(rescale[1], 2, accuracy: 1e-6)
        let rc = try net.deepLift([5, 2], rows: 1, targets: [0], rule: .revealCancel).attributions
        XCTAssertEqual(rc[0], 1, accuracy: 1e-6)
        XCTAssertEqual(rc[1], 1, accuracy: 1e-6)
    }

    // MARK: errors

    func testBadInputs() throws {
        let net = try sequenceNetwork(seed: 1)
        let x = [Float](repeating: 0.5, count: 2 * net.inputSize)
        XCTAssertThrowsError(try net.deepLift(x, rows: 2, baselines: [1, 2, 3], targets: [0])) { error in
            XCTAssertEqual((error as? SwiftAttrError)?.code, .shapeMismatch)
        }
        XCTAssertThrowsError(try net.deepShap(x, rows: 2, references: [], referenceCount: 0, targets: [0])) { error in
            XCTAssertEqual((error as? SwiftAttrError)?.code, .invalidArgument)
            XCTAssertTrue((error as? SwiftAttrError)?.message.contains("references") ?? false)
        }
        XCTAssertThrowsError(try net.deepShap(x, rows: 2, references: [1, 2], referenceCount: 1, targets: [0])) { error in
            XCTAssertEqual((error as? SwiftAttrError)?.code, .shapeMismatch)
        }
        XCTAssertThrowsError(try net.deepLift(x, rows: 2, targets: [7])) { error in
            XCTAssertEqual((error as? SwiftAttrError)?.code, .outOfRange)
        }
        XCTAssertThrowsError(try net.deepLift(x, rows: 2, targets: [0], internalBatchSize: 0)) { error in
            XCTAssertEqual((error as? SwiftAttrError)?.code, .invalidArgument)
        }
    }
}
