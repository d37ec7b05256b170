import XCTest
@testable import SwiftAttr

/// Saliency, input × gradient, Expected Gradients and SmoothGrad: finite differences, closed forms on
/// linear models, seeding and chunk independence.
final class GradientMethodTests: XCTestCase {
    /// A network with ReLU and max-pool (test points checked away from kinks) and smooth layers.
    func mixedNet(_ g: inout Gen) -> Network {
        net([7], [g.dense(9, 7), .relu, g.dense(6, 9), .tanh, g.dense(4, 6)])
    }

    func oneHot(_ targets: [Int], rows: Int, outputs: Int) -> [Float] {
        var c = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows { c[r * outputs + targets[r % targets.count]] = 1 }
        return c
    }

    // MARK: Saliency and input × gradient

    func testSaliencyAndInputXGradientAgainstFiniteDifferences() throws {
        var g = Gen(300)
        let n = mixedNet(&g)
        let rows = 3
        let x = g.normals(rows * 7)
        let targets = [3, 0, 2]
        var ref = Reference(n)
        let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: oneHot(targets, rows: rows, outputs: 4))
        XCTAssertGreaterThan(ref.kink, 1e-4, "finite differences cross a ReLU kink")
        XCTAssertGreaterThan(maxAbs(fd), 1e-2)

        let signed = try n.saliency(x, rows: rows, targets: targets, absolute: false)
        assertClose(signed, fd, rel: 1e-4, "saliency (signed)")
        let absolute = try n.saliency(x, rows: rows, targets: targets)  // Captum's default abs=True
        assertClose(absolute, fd.map(abs), rel: 1e-4, "saliency (abs)")
        XCTAssert(absolute.allSatisfy { $0 >= 0 })
        let ixg = try n.inputXGradient(x, rows: rows, targets: targets)
        assertClose(ixg, zip(x, fd).map { Double($0) * $1 }, rel: 1e-4, "input × gradient")

        // One target for every example equals per-example targets all set to it.
        let single = try n.saliency(x, rows: rows, targets: [1], absolute: false)
        let repeated = try n.saliency(x, rows: rows, targets: [1, 1, 1], absolute: false)
        XCTAssertEqual(single, repeated)
        // Chunking.
        assertClose(try n.saliency(x, rows: rows, targets: targets, absolute: false, internalBatchSize: 1), signed, rel: 1e-6, "saliency chunk 1")
    }

    func testSaliencyThroughSoftmaxAndConvolution() throws {
        var g = Gen(301)
        let n = net([2, 6], [g.conv(3, 2, kernel: [3], padding: [1]), g.batchNorm(3), .softplus(beta: 3), .flatten, g.dense(4, 18), .softmax])
        let rows = 2
        let x = g.normals(rows * 12)
        var ref = Reference(n)
        let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: oneHot([2, 1], rows: rows, outputs: 4))
        assertClose(try n.saliency(x, rows: rows, targets: [2, 1], absolute: false), fd, rel: 1e-4, "saliency through softmax (prefix of 2 affine layers)")
    }

    // MARK: Expected Gradients

    func testExpectedGradientsSeeding() throws {
        var g = Gen(310)
        let n = mixedNet(&g)
        let x = g.normals(2 * 7), refs = g.normals(5 * 7)
        let a = try n.expectedGradients(x, rows: 2, references: refs, referenceCount: 5, targets: [1], samples: 40, seed: 7)
        let b = try n.expectedGradients(x, rows: 2, references: refs, referenceCount: 5, targets: [1], samples: 40, seed: 7)
        let c = try n.expectedGradients(x, rows: 2, references: refs, referenceCount: 5, targets: [1], samples: 40, seed: 8)
        XCTAssertEqual(a, b, "same seed, same numbers")
        XCTAssertNotEqual(a, c, "different seeds differ")
        XCTAssertGreaterThan(zip(a, c).map { abs($0 - $1) }.max()!, 1e-4)
        // Chunk size does not change the draws.
        for chunk in [1, 3, 17] {
            let d = try n.expectedGradients(x, rows: 2, references: refs, referenceCount: 5, targets: [1], samples: 40, seed: 7, internalBatchSize: chunk)
            assertClose(d, a, rel: 1e-6, "EG internalBatchSize \(chunk)")
        }
    }

    func testExpectedGradientsLinearClosedForm() throws {
        // f = W x + b: φ = E[(x − x')] ⊙ w_t = (x − mean(R)) ⊙ w_t; the Monte Carlo error of the reference
        // draw has standard deviation |w_j| sd_j(R) / √S.
        var g = Gen(320)
        let w = g.normals(2 * 4)
        let n = net([4], [.dense(try .init(weight: w, bias: [0.3, -0.2], outFeatures: 2, inFeatures: 4))])
        let m = 6, rows = 2, samples = 20000
        let refs = g.normals(m * 4, scale: 1.5), x = g.normals(rows * 4)
        let targets = [1, 0]
        let eg = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: m, targets: targets, samples: samples, seed: 11)
        for j in 0..<4 {
            let column = (0..<m).map { Double(refs[$0 * 4 + j]) }
            let mean = column.reduce(0, +) / Double(m)
            let sd = (column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)).squareRoot()
            for r in 0..<rows {
                let wj = Double(w[targets[r] * 4 + j])
                let expected = (Double(x[r * 4 + j]) - mean) * wj
                let se = abs(wj) * sd / Double(samples).squareRoot()
                XCTAssertEqual(Double(eg[r * 4 + j]), expected, accuracy: 4.5 * se + 1e-5, "EG linear, example \(r) feature \(j)")
            }
        }
    }

    func testExpectedGradientsWithOneReferenceApproachesIG() throws {
        // With a single reference only α is random: EG → IG with that baseline as samples grow.
        var g = Gen(330)
        let n = net([5], [g.dense(6, 5), .tanh, g.dense(3, 6)])
        let x = g.normals(5, scale: 1.5), r = g.normals(5, scale: 0.5)
        let ig = try n.integratedGradients(x, rows: 1, baselines: r, targets: [2], steps: 64).attributions
        let eg = try n.expectedGradients(x, rows: 1, references: r, referenceCount: 1, targets: [2], samples: 20000, seed: 3)
        assertClose(eg, ig, rel: 0.02, "EG with one reference vs IG")
    }

    // MARK: SmoothGrad

    func testSmoothGradLinearClosedForms() throws {
        var g = Gen(340)
        let w = g.normals(3 * 5)
        let n = net([5], [.dense(try .init(weight: w, bias: nil, outFeatures: 3, inFeatures: 5))])
        let rows = 2
        let x = g.normals(rows * 5)
        let wt = (0..<rows).flatMap { r in (0..<5).map { w[([2, 0][r]) * 5 + $0] } }
        let sg = try n.smoothGrad(x, rows: rows, targets: [2, 0], aggregation: .smoothGrad, samples: 25, stdev: 0.7, seed: 1)
        XCTAssertEqual(sg, wt, "smoothgrad of a linear model is w exactly")
        let sq = try n.smoothGrad(x, rows: rows, targets: [2, 0], aggregation: .smoothGradSquared, samples: 25, stdev: 0.7, seed: 1)
        assertClose(sq, wt.map { $0 * $0 }, rel: 1e-6, "smoothgrad_sq of a linear model is w²")
        let vg = try n.smoothGrad(x, rows: rows, targets: [2, 0], aggregation: .varGrad, samples: 25, stdev: 0.7, seed: 1)
        for (v, wv) in zip(vg, wt) { XCTAssertEqual(Double(v), 0, accuracy: 1e-6 * Double(wv * wv) + 1e-12, "vargrad of a linear model is 0") }
    }

    func testSmoothGradNonlinear() throws {
        var g = Gen(350)
        let n = net([6], [g.dense(8, 6), .softplus(beta: 2), g.dense(5, 8), .tanh, g.dense(3, 5)])
        let rows = 2
        let x = g.normals(rows * 6)
        func run(_ a: Network.NoiseAggregation, seed: UInt64 = 5, chunk: Int? = nil, stdev: Float = 0.5) throws -> [Float] {
            try n.smoothGrad(x, rows: rows, targets: [1], aggregation: a, samples: 30, stdev: stdev, seed: seed, internalBatchSize: chunk)
        }
        let sg = try run(.smoothGrad), sq = try run(.smoothGradSquared), vg = try run(.varGrad)
        XCTAssert(vg.allSatisfy { $0 >= 0 }, "vargrad is a variance")
        XCTAssertGreaterThan(vg.max()!, 1e-4, "the gradient of a nonlinear model varies under noise")
        // vargrad = E[g²] − E[g]² with the same draws.
        assertClose(vg, zip(sq, sg).map { Double($0) - Double($1) * Double($1) }, rel: 1e-4, "vargrad = sq − sg²")
        XCTAssertEqual(try run(.smoothGrad), sg, "same seed, same numbers")
        XCTAssertNotEqual(try run(.smoothGrad, seed: 6), sg, "different seeds differ")
        for chunk in [1, 7, 60, 1000] {
            assertClose(try run(.smoothGrad, chunk: chunk), sg, rel: 1e-6, "smoothgrad internalBatchSize \(chunk)")
            assertClose(try run(.varGrad, chunk: chunk), vg, rel: 1e-5, "vargrad internalBatchSize \(chunk)")
        }
        // stdev 0: every sample is x itself.
        assertClose(try run(.smoothGrad, stdev: 0), try n.saliency(x, rows: rows, targets: [1], absolute: false), rel: 1e-6, "smoothgrad with stdev 0")
    }

    func testSmoothGradMeanApproachesGaussianSmoothedGradient() throws {
        // One input through f(x) = softplus(x): smoothgrad → E[σ(x + ε)], ε ∼ N(0, s²), computed by quadrature.
        let n = net([1], [.softplus(beta: 1)])
        let s = 0.8, x0 = 0.4
        let sg = try n.smoothGrad([Float(x0)], rows: 1, targets: [0], samples: 40000, stdev: Float(s), seed: 9)
        var expected = 0.0, mass = 0.0
        for k in -4000...4000 {
            let e = Double(k) * 0.002
            let p = exp(-e * e / (2 * s * s))
            expected += p / (1 + exp(-(x0 + e)))
            mass += p
        }
        expected /= mass
        XCTAssertEqual(Double(sg[0]), expected, accuracy: 0.005)  // MC s.e. ≈ 0.2/200 = 0.001
    }
}
