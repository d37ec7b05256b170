import XCTest
@testable import SwiftAttr

/// Layer and neuron attributions and NoiseTunnel: against independent computations (the upper network's own
/// gradient and IG at a cut, finite differences inside a residual block), completeness, torch's interpolation
/// on hand-computed values, the shared noise of SmoothGrad, and argument errors. (Captum equality is
/// python/tests/test_layers.py's.)
final class LayerAttributionTests: XCTestCase {
    /// [6] → dense → tanh → dense → softplus → dense(3): every value a cut.
    private func chain(_ g: inout Gen) -> Network {
        net([6], [g.dense(5, 6), .tanh, g.dense(4, 5), .softplus(beta: 2), g.dense(3, 4)])
    }

    /// The network after node `layer` of a chain, reading that node's output.
    private func upper(_ n: Network, after layer: Int) -> Network {
        net(n.shapes[layer + 1], Array(n.layers[(layer + 1)...]))
    }

    func testLayerGradientAtACutIsTheUpperNetworksGradient() throws {
        var g = Gen(1)
        let n = chain(&g)
        let x = g.normals(4 * 6), targets = [0, 2, 1, 2]
        for layer in 0..<4 {
            let r = try n.layerGradients(x, rows: 4, layer: layer, targets: targets)
            let a = try n.activations(x, rows: 4, atInputOf: layer + 1)
            // Bit for bit: the same nodes, the same GEMM shapes, from the same activations.
            XCTAssertEqual(r.activations, a)
            let expected = try upper(n, after: layer).saliency(a, rows: 4, targets: targets, absolute: false)
            assertClose(r.gradients, expected, rel: 1e-6, "layer \(layer)")
            let ixg = try n.layerGradientXActivation(x, rows: 4, layer: layer, targets: targets)
            XCTAssertEqual(ixg, zip(a, r.gradients).map { $0 * $1 })
        }
        // At the output node the gradient is the one-hot seed.
        let top = try n.layerGradients(x, rows: 4, layer: 4, targets: targets).gradients
        XCTAssertEqual(top, n.targetSeed(targets))
    }

    func testLayerIntegratedGradientsAtACutIsIGOfTheUpperNetwork() throws {
        var g = Gen(2)
        let n = chain(&g)
        let x = g.normals(3 * 6), b = g.normals(3 * 6, scale: 0.3), targets = [1, 0, 2]
        for layer in 0..<4 {
            let r = try n.layerIntegratedGradients(x, rows: 3, baselines: b, layer: layer, targets: targets, steps: 16)
            let a = try n.activations(x, rows: 3, atInputOf: layer + 1), ab = try n.activations(b, rows: 3, atInputOf: layer + 1)
            let expected = try upper(n, after: layer).integratedGradients(a, rows: 3, baselines: ab, targets: targets, steps: 16)
            // Differently shaped GEMMs and a different affine-prefix split: float32 rounding of the terms.
            assertClose(r.attributions, expected.attributions, rel: 1e-5, "layer \(layer)")
            // Completeness at a cut: Gauss–Legendre with 16 nodes on a smooth (tanh, softplus) path.
            for i in 0..<3 { XCTAssertEqual(r.delta[i], 0, accuracy: 1e-4, "layer \(layer), example \(i)") }
        }
    }

    func testLayerGradientInsideAResidualBlockHoldsTheSkipFixed() throws {
        var g = Gen(3)
        let n = GraphFixtures.residualConcat(&g, smooth: true)
        let x = g.normals(2 * n.inputSize), targets = [1, 3]
        // Node 3 (value 4): the conv whose output the add joins with value 1; node 6 reads value 3 too.
        XCTAssertFalse(n.cut[4])
        XCTAssertEqual(n.valuesRead(below: 4, to: n.layers.count), [1, 3])
        let r = try n.layerGradients(x, rows: 2, layer: 3, targets: targets)
        let values = n.values(x, rows: 2, at: [1, 3, 4], chunk: 2)
        let size = n.size(at: 4)
        // Central differences of F(h) = f_t with value 4 replaced by h and values 1 and 3 those of x; the
        // network is smooth (softplus, tanh), h = 1e-2: truncation ~h²·|F'''| ≈ 1e-4, float32 rounding of F
        // ~1e-7/h = 1e-5, relative to max|∂F/∂h|.
        func F(_ h: [Float], row: Int) -> Float {
            let given = [1: Array(values[0][(row * n.size(at: 1))..<((row + 1) * n.size(at: 1))]),
                         3: Array(values[1][(row * n.size(at: 3))..<((row + 1) * n.size(at: 3))])]
            return n.record(h, rows: 1, from: 4, given: given).output[targets[row]]
        }
        var fd = [Float](repeating: 0, count: 2 * size)
        for row in 0..<2 {
            let h0 = Array(values[2][(row * size)..<((row + 1) * size)])
            for k in 0..<size {
                var hp = h0, hm = h0
                hp[k] += 1e-2
                hm[k] -= 1e-2
                fd[row * size + k] = (F(hp, row: row) - F(hm, row: row)) / 2e-2
            }
        }
        assertClose(r.gradients, fd, rel: 2e-3, "gradient at value 4")
        XCTAssertEqual(r.activations, values[2])
    }

    func testLayerDeepLiftSumsToDeltaAtACut() throws {
        var g = Gen(4)
        let n = chain(&g)
        let x = g.normals(3 * 6), b = g.normals(3 * 6, scale: 0.3)
        for layer in 0..<4 {
            let r = try n.layerDeepLift(x, rows: 3, baselines: b, layer: layer, targets: [2])
            // Float32 sums of a few products of magnitude ≤ |Δf| ≈ 1.
            for i in 0..<3 { XCTAssertEqual(r.delta[i], 0, accuracy: 1e-5, "layer \(layer)") }
        }
    }

    func testNeuronIntegratedGradientsIsIGOfTheTruncatedNetwork() throws {
        var g = Gen(5)
        let n = chain(&g)
        let x = g.normals(2 * 6)
        let r = try n.neuronIntegratedGradients(x, rows: 2, layer: 1, neuron: 3, steps: 12)
        let truncated = net([6], Array(n.layers[0...1]))
        let expected = try truncated.integratedGradients(x, rows: 2, targets: [3], steps: 12)
        XCTAssertEqual(r.attributions, expected.attributions)
    }

    func testConductanceSumsOverTheLayerToIG() throws {
        // Σ_j conductance_j telescopes to Σ_k ∇f·Δa along the path: the input IG's total up to quadrature.
        var g = Gen(6)
        let n = chain(&g)
        let x = g.normals(2 * 6), b = g.normals(2 * 6, scale: 0.3)
        let c = try n.layerConductance(x, rows: 2, baselines: b, layer: 1, targets: [0], steps: 64, method: .riemannTrapezoid)
        for i in 0..<2 { XCTAssertEqual(c.delta[i], 0, accuracy: 2e-3) }
    }

    func testInterpolationMatchesTorchsDefinitions() {
        // Nearest 2 → 5: source ⌊dst·2/5⌋ = 0, 0, 0, 1, 1.
        XCTAssertEqual(Network.interpolate([1, 2], planes: 1, from: [2], to: [5], mode: .nearest), [1, 1, 1, 2, 2])
        // Linear, align_corners=False, 2 → 4: sources −0.25 → 0, 0.25, 0.75, 1.25 (clamped to the last).
        XCTAssertEqual(Network.interpolate([0, 4], planes: 1, from: [2], to: [4], mode: .linear), [0, 1, 3, 4])
        // Bilinear 2×2 → 4×4 is the outer product of the two axes' weights.
        let m = Network.interpolate([0, 4, 8, 12], planes: 1, from: [2, 2], to: [4, 4], mode: .linear)
        XCTAssertEqual(Array(m[0..<4]), [0, 1, 3, 4])
        XCTAssertEqual(Array(m[4..<8]), [2, 3, 5, 6])
        XCTAssertEqual(Array(m[12..<16]), [8, 9, 11, 12])
    }

    func testGradCAMIsTheChannelWeightedMap() throws {
        var g = Gen(7)
        let n = net([2, 4, 4], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), .relu, .flatten, g.dense(2, 48)])
        let x = g.normals(2 * 32)
        let cam = try n.gradCAM(x, rows: 2, layer: 1, targets: [1], reluAttributions: false, upsampling: .none)
        let r = try n.layerGradients(x, rows: 2, layer: 1, targets: [1])
        for row in 0..<2 {
            for k in 0..<16 {
                var s: Float = 0
                for c in 0..<3 {
                    let w = (0..<16).reduce(Float(0)) { $0 + r.gradients[(row * 3 + c) * 16 + $1] } / 16
                    s += w * r.activations[(row * 3 + c) * 16 + k]
                }
                XCTAssertEqual(cam[row * 16 + k], s, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(try n.gradCAMShape(layer: 1, upsampling: .nearest), [1, 4, 4])
        XCTAssertEqual(try n.gradCAMShape(layer: 3, upsampling: .nearest), [1])
    }

    func testNoiseTunnelCopiesAreSmoothGradsNoise() throws {
        var g = Gen(8)
        let n = chain(&g)
        let x = g.normals(3 * 6)
        let noisy = try NoiseTunnel.noisyCopies(x, rows: 3, width: 6, samples: 4, stdev: 0.5, seed: 9)
        let grads = try n.saliency(noisy, rows: 12, targets: [1], absolute: false)
        for kind in Network.NoiseAggregation.allCases {
            let tunnel = try NoiseTunnel.aggregate(grads, rows: 3, samples: 4, width: 6, kind)
            let smooth = try n.smoothGrad(x, rows: 3, targets: [1], aggregation: kind, samples: 4, stdev: 0.5, seed: 9)
            assertClose(tunnel, smooth, rel: 1e-5, kind.name)
        }
        // Keyed by the example's index in the whole batch.
        let tail = try NoiseTunnel.noisyCopies(Array(x[6...]), rows: 2, width: 6, samples: 4, stdev: 0.5, seed: 9, exampleOffset: 1)
        XCTAssertEqual(tail, Array(noisy[24...]))
    }

    func testErrorsNameTheArgument() throws {
        var g = Gen(9)
        let n = chain(&g)
        let x = g.normals(6)
        assertError(.outOfRange, mentioning: "layer = 5 is out of range") { try n.layerGradients(x, rows: 1, layer: 5, targets: [0]) }
        assertError(.outOfRange, mentioning: "layer = -1") { try n.layerIntegratedGradients(x, rows: 1, layer: -1, targets: [0]) }
        assertError(.outOfRange, mentioning: "neuron = 5") { try n.neuronIntegratedGradients(x, rows: 1, layer: 0, neuron: 5) }
        assertError(.outOfRange, mentioning: "target") { try n.layerConductance(x, rows: 1, layer: 0, targets: [3]) }
        assertError(.invalidArgument, mentioning: "nt_samples") { try NoiseTunnel.noisyCopies(x, rows: 1, width: 6, samples: 0, stdev: 1, seed: 0) }
    }
}
