import XCTest
@testable import SwiftAttr

/// Integrated Gradients: closed forms, Captum's test vector, completeness, the order of each quadrature
/// rule, the Gauss–Legendre rule itself, baselines and targets, the affine-prefix optimisation and chunking.
final class IntegratedGradientsTests: XCTestCase {
    static let methods = PathQuadrature.allCases

    /// A smooth 3-layer MLP (tanh, softplus), 10 → 3.
    static func smoothMLP(_ g: inout Gen) -> Network {
        net([10], [g.dense(16, 10), .tanh, g.dense(12, 16), .softplus(beta: 1), g.dense(3, 12)])
    }

    /// A small smooth CNN: conv, softplus, average pool, dense.
    static func smoothCNN(_ g: inout Gen) -> Network {
        net([1, 6, 6], [g.conv(3, 1, kernel: [3, 3], padding: [1, 1]), .softplus(beta: 1), .avgPool2d(pool([2, 2])), .flatten, g.dense(3, 27)])
    }

    // MARK: Closed forms and test vectors

    func testLinearModelEqualsWeightTimesDelta() throws {
        var g = Gen(200)
        let w = g.normals(3 * 4), b = g.normals(3)
        let n = net([4], [.dense(try .init(weight: w, bias: b, outFeatures: 3, inFeatures: 4))])
        let rows = 2
        let x = g.normals(rows * 4, scale: 2), base = g.normals(rows * 4)
        let targets = [2, 0]
        for method in Self.methods {
            for steps in [2, 7, 50] {
                let ig = try n.integratedGradients(x, rows: rows, baselines: base, targets: targets, steps: steps, method: method)
                var expected = [Float]()
                for r in 0..<rows {
                    for i in 0..<4 { expected.append(w[targets[r] * 4 + i] * (x[r * 4 + i] - base[r * 4 + i])) }
                }
                // Only float rounding separates these: the quadrature weights sum to 1 for every rule.
                assertClose(ig.attributions, expected, rel: 2e-6, "linear IG \(method.name) n=\(steps)")
                for (r, delta) in ig.delta.enumerated() {
                    XCTAssertLessThan(abs(delta), 1e-5, "linear IG \(method.name) n=\(steps) delta[\(r)]")
                }
            }
        }
    }

    /// Captum's test: f(x1, x2) = ReLU(ReLU(x1) − 1 − ReLU(x2)), x = (3, 1), baseline 0 → (1.5, −0.5).
    func testCaptumMultivariableVector() throws {
        let inner = Layer.dense(try .init(weight: [1, -1], bias: [-1], outFeatures: 1, inFeatures: 2))
        let n = net([2], [.relu, inner, .relu])
        // Along the path (3α, α) the gradient is (1, −1) for α > ½ and 0 below, so IG = (1.5, −0.5) · 2·Q
        // where Q is the rule's weight on nodes α > ½. Q = ½ exactly for Gauss–Legendre (symmetric, even
        // n), middle (even n), right (the node at ½ has zero gradient) and trapezoid (even n);
        // left gets ½ − 1/n.
        for steps in [50, 20] {
            for method in Self.methods {
                let ig = try n.integratedGradients([3, 1], rows: 1, targets: [0], steps: steps, method: method)
                let q = method == .riemannLeft ? 0.5 - 1 / Double(steps) : 0.5
                assertClose(ig.attributions, [3 * q, -q], rel: 1e-6, "Captum vector \(method.name) n=\(steps)")
            }
        }
        let ig = try n.integratedGradients([3, 1], rows: 1, targets: [0])  // defaults: 50 Gauss–Legendre steps
        XCTAssertEqual(Double(ig.attributions[0]), 1.5, accuracy: 1e-6)
        XCTAssertEqual(Double(ig.attributions[1]), -0.5, accuracy: 1e-6)
        XCTAssertEqual(Double(ig.delta[0]), 0, accuracy: 1e-6)  // f(x) = 1, f(0) = 0
    }

    /// Networks without a nonlinearity at all (no layers; only affine layers): IG is exact for any rule.
    func testEmptyAndPurelyAffineNetworks() throws {
        let empty = net([3], [])
        let ig = try empty.integratedGradients([1, 2, 3], rows: 1, baselines: [0.5, 0.5, 0.5], targets: [1], steps: 5, method: .riemannLeft)
        assertClose(ig.attributions, [0, 1.5, 0], rel: 1e-6, "identity network")
        var g = Gen(205)
        let affine = net([2, 4], [g.conv(2, 2, kernel: [2]), g.batchNorm(2), .avgPool1d(pool([3])), .flatten, g.dense(2, 2)])
        XCTAssertEqual(affine.affinePrefixLength, affine.layers.count)
        let x = g.normals(2 * 8), base = g.normals(8)
        let a = try affine.integratedGradients(x, rows: 2, baselines: base, targets: [1], steps: 3, method: .riemannRight)
        for (r, delta) in a.delta.enumerated() { XCTAssertEqual(Double(delta), 0, accuracy: 1e-5, "affine network delta \(r)") }
    }

    // MARK: Completeness

    func checkCompleteness(_ n: Network, _ g: inout Gen, _ what: String) throws {
        let rows = 3, d = n.inputSize
        let x = g.normals(rows * d, scale: 1.5), base = g.normals(rows * d, scale: 0.5)
        let targets = [0, 2, 1]
        let ig = try n.integratedGradients(x, rows: rows, baselines: base, targets: targets, steps: 50, method: .gaussLegendre)
        let fx = n.forward(x, rows: rows), fb = n.forward(base, rows: rows)
        let out = n.outputSize
        for r in 0..<rows {
            let change = Double(fx[r * out + targets[r]]) - Double(fb[r * out + targets[r]])
            XCTAssertGreaterThan(abs(change), 0.05, "\(what): f(x) − f(x') too small for a meaningful test")
            let sum = ig.attributions[(r * d)..<((r + 1) * d)].reduce(0.0) { $0 + Double($1) }
            XCTAssertLessThanOrEqual(abs(sum - change), 1e-3 * abs(change), "\(what) completeness, example \(r)")
            XCTAssertEqual(Double(ig.delta[r]), sum - change, accuracy: 1e-5 * max(1, abs(change)), "\(what) delta, example \(r)")
        }
    }

    func testCompletenessSmoothMLP() throws {
        var g = Gen(212)
        try checkCompleteness(Self.smoothMLP(&g), &g, "MLP")
    }

    func testCompletenessCNN() throws {
        var g = Gen(262)
        try checkCompleteness(Self.smoothCNN(&g), &g, "CNN")
    }

    // MARK: Order of convergence

    /// Least-squares slope of log(error) against log(n).
    func slope(_ ns: [Int], _ errors: [Double]) -> Double {
        let xs = ns.map { log(Double($0)) }, ys = errors.map { log($0) }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        var num = 0.0, den = 0.0
        for (x, y) in zip(xs, ys) { num += (x - mx) * (y - my); den += (x - mx) * (x - mx) }
        return num / den
    }

    func testRiemannRulesConvergeAtTheirOrder() throws {
        // One input, an asymmetric smooth path (the end-point derivatives differ, so no error term cancels):
        // f(x) = softplus(2x) read out by a dense layer; x' = −1, x = 2.
        let n = net([1], [.dense(try .init(weight: [2], bias: [0], outFeatures: 1, inFeatures: 1)), .softplus(beta: 1),
                          .dense(try .init(weight: [1.5], bias: [0.2], outFeatures: 1, inFeatures: 1))])
        let x: [Float] = [2], base: [Float] = [-1]
        let reference = Double(try n.integratedGradients(x, rows: 1, baselines: base, targets: [0], steps: 64, method: .gaussLegendre).attributions[0])
        let ns = [8, 16, 32, 64]
        let orders: [(PathQuadrature, Double)] = [(.riemannLeft, 1), (.riemannRight, 1), (.riemannMiddle, 2), (.riemannTrapezoid, 2)]
        for (method, order) in orders {
            let errors = try ns.map { steps -> Double in
                let v = try n.integratedGradients(x, rows: 1, baselines: base, targets: [0], steps: steps, method: method).attributions[0]
                return abs(Double(v) - reference)
            }
            XCTAssertGreaterThan(errors.last!, 1e-5, "\(method.name): error at n=64 is in float32 rounding; the fit would be meaningless")
            let s = slope(ns, errors)
            XCTAssertEqual(s, -order, accuracy: 0.15, "\(method.name): error slope \(s), errors \(errors)")
        }
        // Gauss–Legendre converges faster than any of them: 8 nodes already beat the 64-step Riemann rules.
        let gl8 = Double(try n.integratedGradients(x, rows: 1, baselines: base, targets: [0], steps: 8, method: .gaussLegendre).attributions[0])
        XCTAssertLessThan(abs(gl8 - reference), 1e-5)
    }

    // MARK: The Gauss–Legendre rule

    func testGaussLegendreKnownValues() throws {
        let (x2, w2) = try PathQuadrature.gaussLegendre.rule(2)
        let r = 1 / 3.0.squareRoot()
        XCTAssertEqual(x2[0], (1 - r) / 2, accuracy: 1e-14)
        XCTAssertEqual(x2[1], (1 + r) / 2, accuracy: 1e-14)
        XCTAssertEqual(w2[0], 0.5, accuracy: 1e-14)
        XCTAssertEqual(w2[1], 0.5, accuracy: 1e-14)

        // n = 5 on [−1, 1]: 0, ±⅓√(5 ∓ 2√(10/7)); weights 128/225, (322 ± 13√70)/900.
        let (x5, w5) = try PathQuadrature.gaussLegendre.rule(5)
        let a = (5 - 2 * (10.0 / 7).squareRoot()).squareRoot() / 3, b = (5 + 2 * (10.0 / 7).squareRoot()).squareRoot() / 3
        let nodes = [-b, -a, 0, a, b].map { ($0 + 1) / 2 }
        let wa = (322 + 13 * 70.0.squareRoot()) / 900, wb = (322 - 13 * 70.0.squareRoot()) / 900
        let weights = [wb, wa, 128.0 / 225, wa, wb].map { $0 / 2 }
        for k in 0..<5 {
            XCTAssertEqual(x5[k], nodes[k], accuracy: 1e-12, "node \(k)")
            XCTAssertEqual(w5[k], weights[k], accuracy: 1e-12, "weight \(k)")
        }

        let (x1, w1) = try PathQuadrature.gaussLegendre.rule(1)
        XCTAssertEqual(x1[0], 0.5, accuracy: 1e-14)
        XCTAssertEqual(w1[0], 1, accuracy: 1e-14)
    }

    func testGaussLegendreWeightsSumToOneAndExactForPolynomials() throws {
        for n in [1, 2, 3, 4, 7, 10, 16, 33, 50, 64, 100, 200] {
            let (x, w) = try PathQuadrature.gaussLegendre.rule(n)
            XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-13, "n=\(n) weights sum")
            XCTAssertEqual(x, x.sorted(), "n=\(n) nodes ascending")
            XCTAssert(x.allSatisfy { $0 > 0 && $0 < 1 }, "n=\(n) nodes inside (0, 1)")
            XCTAssert(w.allSatisfy { $0 > 0 }, "n=\(n) weights positive")
            // Exact for polynomials of degree ≤ 2n − 1: ∫₀¹ α^k dα = 1/(k + 1).
            for k in stride(from: 0, through: min(2 * n - 1, 30), by: 1) {
                let q = zip(x, w).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(k)) }
                XCTAssertEqual(q, 1 / Double(k + 1), accuracy: 1e-12, "n=\(n) degree \(k)")
            }
        }
    }

    func testRiemannRules() throws {
        let n = 4
        let (l, wl) = try PathQuadrature.riemannLeft.rule(n)
        XCTAssertEqual(l, [0, 0.25, 0.5, 0.75]); XCTAssertEqual(wl, [0.25, 0.25, 0.25, 0.25])
        let (r, wr) = try PathQuadrature.riemannRight.rule(n)
        XCTAssertEqual(r, [0.25, 0.5, 0.75, 1]); XCTAssertEqual(wr, wl)
        let (m, wm) = try PathQuadrature.riemannMiddle.rule(n)
        XCTAssertEqual(m, [0.125, 0.375, 0.625, 0.875]); XCTAssertEqual(wm, wl)
        let (t, wt) = try PathQuadrature.riemannTrapezoid.rule(5)
        XCTAssertEqual(t, [0, 0.25, 0.5, 0.75, 1]); XCTAssertEqual(wt, [0.125, 0.25, 0.25, 0.25, 0.125])
        for method in Self.methods {
            for steps in [2, 3, 9, 50] {
                XCTAssertEqual(try method.rule(steps).weights.reduce(0, +), 1, accuracy: 1e-13, "\(method.name) n=\(steps)")
                XCTAssertEqual(try method.rule(steps).alphas.count, steps)
            }
        }
        assertError(.invalidArgument, mentioning: "n_steps") { try PathQuadrature.riemannTrapezoid.rule(1) }
        for method in Self.methods { assertError(.invalidArgument, mentioning: "n_steps") { try method.rule(0) } }
    }

    // MARK: Baselines and targets

    func testBaselinesBroadcastAndZeros() throws {
        var g = Gen(220)
        let n = Self.smoothMLP(&g)
        let rows = 3
        let x = g.normals(rows * 10), one = g.normals(10)
        let broadcast = try n.integratedGradients(x, rows: rows, baselines: one, targets: [1], steps: 12)
        let repeated = try n.integratedGradients(x, rows: rows, baselines: Array([[Float]](repeating: one, count: rows).joined()), targets: [1], steps: 12)
        XCTAssertEqual(broadcast.attributions, repeated.attributions)
        XCTAssertEqual(broadcast.delta, repeated.delta)

        let none = try n.integratedGradients(x, rows: rows, targets: [1], steps: 12)
        let zeros = try n.integratedGradients(x, rows: rows, baselines: [Float](repeating: 0, count: rows * 10), targets: [1], steps: 12)
        XCTAssertEqual(none.attributions, zeros.attributions)

        // Per-example baselines: each row equals the single-example computation with its own baseline.
        let per = g.normals(rows * 10)
        let batch = try n.integratedGradients(x, rows: rows, baselines: per, targets: [1], steps: 12)
        for r in 0..<rows {
            let single = try n.integratedGradients(Array(x[(r * 10)..<((r + 1) * 10)]), rows: 1, baselines: Array(per[(r * 10)..<((r + 1) * 10)]), targets: [1], steps: 12)
            assertClose(Array(batch.attributions[(r * 10)..<((r + 1) * 10)]), single.attributions, rel: 1e-6, "per-example baseline row \(r)")
        }
    }

    func testPerExampleTargets() throws {
        var g = Gen(221)
        let n = Self.smoothMLP(&g)
        let rows = 3
        let x = g.normals(rows * 10)
        let targets = [2, 0, 1]
        let batch = try n.integratedGradients(x, rows: rows, targets: targets, steps: 16)
        for r in 0..<rows {
            let all = try n.integratedGradients(x, rows: rows, targets: [targets[r]], steps: 16)
            assertClose(Array(batch.attributions[(r * 10)..<((r + 1) * 10)]), Array(all.attributions[(r * 10)..<((r + 1) * 10)]), rel: 1e-6, "target row \(r)")
            XCTAssertEqual(Double(batch.delta[r]), Double(all.delta[r]), accuracy: 1e-6)
        }
    }

    // MARK: The affine-prefix optimisation and chunking

    /// IG computed naively: Δx ⊙ Σ_k w_k ∇f_t(x' + α_k Δx), one full network gradient per step.
    func naiveIG(_ n: Network, _ x: [Float], _ base: [Float], rows: Int, target: Int, steps: Int, method: PathQuadrature) throws -> [Float] {
        let (alphas, weights) = try method.rule(steps)
        let d = n.inputSize
        var total = [Double](repeating: 0, count: rows * d)
        var cot = [Float](repeating: 0, count: rows * n.outputSize)
        for r in 0..<rows { cot[r * n.outputSize + target] = 1 }
        for (a, w) in zip(alphas, weights) {
            let point = (0..<(rows * d)).map { base[$0] + Float(a) * (x[$0] - base[$0]) }
            let grad = try n.gradient(point, rows: rows, cotangent: cot)
            for j in 0..<(rows * d) { total[j] += w * Double(grad[j]) }
        }
        return (0..<(rows * d)).map { Float(Double(x[$0] - base[$0]) * total[$0]) }
    }

    func testPrefixOptimisationMatchesNaivePath() throws {
        var g = Gen(230)
        // Long affine prefixes: dense + batchnorm + dropout; conv + batchnorm + avgpool + flatten + dense.
        let mlp = net([6], [g.dense(8, 6), g.batchNorm(8), .dropout(p: 0.1), .tanh, g.dense(5, 8), .softplus(beta: 2), g.dense(3, 5)])
        XCTAssertEqual(mlp.affinePrefixLength, 3)
        let cnn = net([2, 6, 6], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), g.batchNorm(3), .avgPool2d(pool([2, 2])), .flatten,
                                   g.dense(6, 27), .sigmoid, g.dense(3, 6), .softmax])
        XCTAssertEqual(cnn.affinePrefixLength, 5)
        let nonAffineFirst = net([6], [.softplus(beta: 1), g.dense(4, 6), .tanh, g.dense(3, 4)])
        XCTAssertEqual(nonAffineFirst.affinePrefixLength, 0)
        for (what, n) in [("MLP", mlp), ("CNN", cnn), ("non-affine first layer", nonAffineFirst)] {
            let rows = 2, d = n.inputSize
            let x = g.normals(rows * d), base = g.normals(rows * d, scale: 0.3)
            for method in [PathQuadrature.gaussLegendre, .riemannTrapezoid] {
                let fast = try n.integratedGradients(x, rows: rows, baselines: base, targets: [1], steps: 9, method: method)
                let naive = try naiveIG(n, x, base, rows: rows, target: 1, steps: 9, method: method)
                assertClose(fast.attributions, naive, rel: 2e-5, "\(what) \(method.name): prefix path vs naive")
            }
        }
    }

    func testInternalBatchSizeDoesNotChangeResults() throws {
        var g = Gen(240)
        for n in [Self.smoothMLP(&g), net([2, 5, 5], [g.conv(3, 2, kernel: [3, 3]), .relu, .maxPool2d(pool([3, 3])), .flatten, g.dense(3, 3)])] {
            let rows = 3, d = n.inputSize
            let x = g.normals(rows * d), base = g.normals(d, scale: 0.2)
            let reference = try n.integratedGradients(x, rows: rows, baselines: base, targets: [0, 1, 2], steps: 20)
            for chunk in [1, 7, 1000] {
                let other = try n.integratedGradients(x, rows: rows, baselines: base, targets: [0, 1, 2], steps: 20, internalBatchSize: chunk)
                assertClose(other.attributions, reference.attributions, rel: 1e-6, "internalBatchSize \(chunk)")
                assertClose(other.delta, reference.delta, rel: 1e-6, floor: 1, "delta, internalBatchSize \(chunk)")
            }
        }
    }
}
