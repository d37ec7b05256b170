import XCTest
@testable import SwiftAttr

/// The second-order pass (exact Hessians and Hessian–vector products) against float64 finite differences,
/// and Integrated / Expected Hessians against DESIGN.md's vectors, completeness and seeded draws.
final class HessianTests: XCTestCase {
    // MARK: Fixtures

    /// Dense → Softplus → Dense → Tanh → Dense → Sigmoid → Dense → ELU → Dense (→ Softmax): every smooth
    /// activation on a chain.
    static func smoothChain(_ g: inout Gen, softmax: Bool) -> Network {
        var layers: [Layer] = [g.dense(7, 5), .softplus(beta: 2), g.dense(6, 7), .tanh, g.dense(6, 6), .sigmoid,
                               g.dense(5, 6), .elu(alpha: 0.7), g.dense(3, 5)]
        if softmax { layers.append(.softmax) }
        return net([5], layers)
    }

    /// Dense → Softplus → Dense → Tanh → Dense → Sigmoid → Dense: infinitely differentiable, so path
    /// integrals converge at the quadrature's full order (ELU with α ≠ 1 has a kink at 0, which the Hessian
    /// cannot see).
    static func analyticMLP(_ g: inout Gen) -> Network {
        net([5], [g.dense(7, 5), .softplus(beta: 2), g.dense(6, 7), .tanh, g.dense(6, 6), .sigmoid, g.dense(3, 6)])
    }

    /// [2, 5, 5] → conv → BatchNorm → Softplus → max-pool → conv → Tanh → avg-pool → flatten → dense → Softmax.
    static func smoothCNN(_ g: inout Gen) -> Network {
        net([2, 5, 5], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), g.batchNorm(3), .softplus(beta: 3),
                        .maxPool2d(pool([2, 2], stride: [1, 1])), g.conv(2, 3, kernel: [2, 2]), .tanh,
                        .avgPool2d(pool([3, 3])), .flatten, g.dense(3, 2), .softmax])
    }

    /// 1-D [2, 6] → conv1d → Sigmoid → global average pool → dense.
    static func smoothConv1d(_ g: inout Gen) -> Network {
        net([2, 6], [g.conv(3, 2, kernel: [3], padding: [1]), .sigmoid, .globalAvgPool, g.dense(2, 3)])
    }

    /// Central second differences of the float64 reference in every pair of input coordinates: error
    /// O(h²·f⁗) + O(ε₆₄/h²) ≈ 1e-8 at h = 1e-4, far below the float32 tolerance of the comparison.
    static func finiteDifferenceHessian(_ n: Network, _ x: [Float], target: Int, h: Double = 1e-4) -> (hessian: [Double], kink: Double) {
        var reference = Reference(n)
        let p = n.inputSize
        let base = x.map(Double.init)
        func f(_ v: [Double]) -> Double { reference.forward(v)[target] }
        var hessian = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in i..<p {
                var pp = base, pm = base, mp = base, mm = base
                pp[i] += h; pp[j] += h; pm[i] += h; pm[j] -= h; mp[i] -= h; mp[j] += h; mm[i] -= h; mm[j] -= h
                let value = (f(pp) - f(pm) - f(mp) + f(mm)) / (4 * h * h)
                hessian[i * p + j] = value
                hessian[j * p + i] = value
            }
        }
        _ = reference.forward(base)
        return (hessian, reference.kink)
    }

    /// Asserts the engine's Hessian of every example equals finite differences: float32 forward values and
    /// tangents carry relative errors of a few ε₃₂·depth (≈1e-6), and the curvature terms add products of
    /// O(1) factors, so 1e-3 of max|H| leaves two orders of margin while catching any wrong term.
    func assertHessianMatches(_ n: Network, rows: Int, target: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        var g = Gen(seed)
        let p = n.inputSize
        let x = g.normals(rows * p, scale: 0.8)
        let engine = try n.hessians(x, rows: rows, targets: [target])
        for r in 0..<rows {
            let (expected, kink) = Self.finiteDifferenceHessian(n, Array(x[(r * p)..<((r + 1) * p)]), target: target)
            XCTAssertGreaterThan(kink, 1e-3, "point too close to a kink for finite differences", file: file, line: line)
            assertClose(Array(engine[(r * p * p)..<((r + 1) * p * p)]), expected, rel: 1e-3, "Hessian of example \(r)", file: file, line: line)
        }
        // Hessian–vector products are the same pass with one direction.
        let v = g.normals(rows * p)
        let hv = try n.hessianVectorProducts(x, rows: rows, vectors: v, targets: [target])
        var expected = [Float](repeating: 0, count: rows * p)
        for r in 0..<rows { for i in 0..<p { for j in 0..<p { expected[r * p + i] += engine[r * p * p + i * p + j] * v[r * p + j] } } }
        assertClose(hv, expected, rel: 1e-4, "Hessian–vector products", file: file, line: line)
    }

    // MARK: Hessians

    func testHessianOfSmoothChainMatchesFiniteDifferences() throws {
        var g = Gen(1)
        try assertHessianMatches(Self.smoothChain(&g, softmax: false), rows: 3, target: 1, seed: 11)
    }

    func testHessianThroughFinalSoftmaxMatchesFiniteDifferences() throws {
        var g = Gen(2)
        try assertHessianMatches(Self.smoothChain(&g, softmax: true), rows: 2, target: 2, seed: 12)
    }

    func testHessianOfSmoothCNNWithPoolingMatchesFiniteDifferences() throws {
        var g = Gen(3)
        try assertHessianMatches(Self.smoothCNN(&g), rows: 2, target: 0, seed: 13)
        var h = Gen(4)
        try assertHessianMatches(Self.smoothConv1d(&h), rows: 2, target: 1, seed: 14)
    }

    func testHessianOnGraphsMatchesFiniteDifferences() throws {
        var g = Gen(5)
        try assertHessianMatches(GraphFixtures.residualConcat(&g, smooth: true), rows: 1, target: 3, seed: 15)
        var h = Gen(6)
        try assertHessianMatches(GraphFixtures.affineBranches(&h), rows: 2, target: 0, seed: 16)
        var k = Gen(7)
        try assertHessianMatches(GraphFixtures.twoBranchSoftmax(&k), rows: 2, target: 1, seed: 17)
    }

    func testReLUNetworkHasNoCurvatureAndWithSoftplusReplacesEveryReLU() throws {
        var g = Gen(8)
        let n = net([4], [g.dense(6, 4), .relu, g.dense(5, 6), .relu, g.dense(2, 5)])
        let x = g.normals(8)
        XCTAssertEqual(maxAbs(try n.hessians(x, rows: 2, targets: [0])), 0)
        let s = try n.withSoftplus(beta: 10)
        XCTAssertEqual(s.layers.filter { $0 == .softplus(beta: 10) }.count, 2)
        XCTAssertFalse(s.layers.contains(.relu))
        XCTAssertEqual(s.inputs, n.inputs)
        XCTAssertGreaterThan(maxAbs(try s.hessians(x, rows: 2, targets: [0])), 0)
        assertError(.invalidArgument, mentioning: "softplus_beta") { try n.withSoftplus(beta: 0) }
    }

    // MARK: Quadrature core on closed forms

    /// Γ of a closed-form f (gradient g, Hessian H on R²) from a rule: the quadrature core alone.
    static func gamma(_ rule: (t: [Double], gradientWeights: [Double], hessianWeights: [Double]), x: [Double],
                      gradient: ([Double]) -> [Double], hessian: ([Double]) -> [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: 4)
        for k in rule.t.indices {
            let point = x.map { rule.t[k] * $0 }
            let gk = gradient(point), hk = hessian(point)
            for i in 0..<2 {
                for j in 0..<2 { out[i * 2 + j] += rule.hessianWeights[k] * x[i] * x[j] * hk[i * 2 + j] }
                out[i * 2 + i] += rule.gradientWeights[k] * x[i] * gk[i]
            }
        }
        return out
    }

    func testQuadratureCoreOnDesignVectors() throws {
        for method in [HessianQuadrature.gaussLegendre, .gaussLaguerre] { try checkDesignVectors(method.rule(32)) }
    }

    func checkDesignVectors(_ rule: (t: [Double], gradientWeights: [Double], hessianWeights: [Double])) throws {
        // Σw = Γ(2) = 1 and Σw·t = ∫₀¹ t(−ln t) dt = 1/4.
        XCTAssertEqual(rule.gradientWeights.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(rule.hessianWeights.reduce(0, +), 0.25, accuracy: 1e-4)
        // f = x₁x₂ at (a, b), baseline 0: every Γ = ab/4.
        let a = 1.5, b = -2.0
        let product = Self.gamma(rule, x: [a, b], gradient: { [$0[1], $0[0]] }, hessian: { _ in [0, 1, 1, 0] })
        for v in product { XCTAssertEqual(v, a * b / 4, accuracy: 1e-4 * abs(a * b)) }
        // f = x₁²x₂ at (2, 3): [[16/3, 8/3], [8/3, 4/3]].
        let cubic = Self.gamma(rule, x: [2, 3], gradient: { [2 * $0[0] * $0[1], $0[0] * $0[0]] },
                               hessian: { [2 * $0[1], 2 * $0[0], 2 * $0[0], 0] })
        for (v, e) in zip(cubic, [16.0 / 3, 8.0 / 3, 8.0 / 3, 4.0 / 3]) { XCTAssertEqual(v, e, accuracy: 1e-4 * e) }
    }

    func testGridReproducesPathExplainSampling() throws {
        // n = 4: s = 2, products [0, 0, 0, 1], indices [0, 1, 2, 3].
        XCTAssertEqual(try HessianQuadrature.grid.rule(4).t, [0, 0, 0, 1])
        // n = 3: indices round([0, 1.5, 3]) = [0, 2, 3] (half to even).
        XCTAssertEqual(try HessianQuadrature.grid.rule(3).t, [0, 0, 1])
        // n = 5: s = 3, p = [0, ½, 1], products [0,0,0, 0,¼,½, 0,½,1], indices [0, 2, 4, 6, 8].
        let five = try HessianQuadrature.grid.rule(5)
        XCTAssertEqual(five.t, [0, 0, 0.25, 0, 1])
        XCTAssertEqual(five.gradientWeights, [Double](repeating: 0.2, count: 5))
        XCTAssertEqual(five.hessianWeights, five.t.map { $0 / 5 })
    }

    // MARK: Integrated Hessians on networks

    /// Asserts Σ_j Γ_ij = IG_i within 1e-4 of max|IG| (IG at its default 50 Gauss–Legendre steps, accurate to
    /// ~1e-7 on these smooth functions), Γ symmetric, and the interaction_index row equal to the matrix row.
    func assertCompleteness(_ n: Network, rows: Int, seed: UInt64, softplusBeta: Float? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        var g = Gen(seed)
        let p = n.inputSize
        let x = g.normals(rows * p), base = g.normals(p, scale: 0.3)
        let gamma = try n.integratedHessians(x, rows: rows, baselines: base, targets: [0], softplusBeta: softplusBeta)
        let ig = try (softplusBeta.map { try n.withSoftplus(beta: $0) } ?? n).integratedGradients(x, rows: rows, baselines: base, targets: [0]).attributions
        var sums = [Double](repeating: 0, count: rows * p)
        for r in 0..<rows {
            for i in 0..<p {
                for j in 0..<p {
                    sums[r * p + i] += Double(gamma[(r * p + i) * p + j])
                    XCTAssertEqual(gamma[(r * p + i) * p + j], gamma[(r * p + j) * p + i], "Γ symmetric", file: file, line: line)
                }
            }
        }
        assertClose(sums, ig, rel: 1e-4, "completeness Σ_j Γ_ij = IG_i", file: file, line: line)
        // One row in O(p) memory: the same quantity by Hessian–vector products (different GEMM shapes:
        // float32 roundings of the terms only, 1e-4 of the row's scale).
        let index = p / 2
        let row = try n.integratedHessians(x, rows: rows, baselines: base, targets: [0], softplusBeta: softplusBeta, interactionIndex: index)
        var expected = [Float]()
        for r in 0..<rows { expected += gamma[((r * p + index) * p)..<((r * p + index + 1) * p)] }
        assertClose(row, expected, rel: 1e-4, "interaction_index row", file: file, line: line)
    }

    func testCompletenessOnSoftplusMLP() throws {
        var g = Gen(20)
        let n = net([10], [g.dense(16, 10), .relu, g.dense(16, 16), .relu, g.dense(2, 16)])
        try assertCompleteness(n, rows: 3, seed: 21, softplusBeta: 10)
    }

    /// Average pooling: completeness needs a gradient continuous along the path, which a max-pool breaks
    /// where its argmax switches (the Hessian is blind to that jump, as it is to ReLU's kink).
    func testCompletenessOnSoftplusCNN() throws {
        var g = Gen(22)
        let n = net([1, 6, 6], [g.conv(3, 1, kernel: [3, 3]), .softplus(beta: 5), .avgPool2d(pool([2, 2])),
                                .flatten, g.dense(2, 12)])
        try assertCompleteness(n, rows: 2, seed: 23)
    }

    func testCompletenessOnResidualGraph() throws {
        var g = Gen(24)
        try assertCompleteness(GraphFixtures.residualConcat(&g, smooth: true), rows: 1, seed: 25)
        var h = Gen(26)
        try assertCompleteness(GraphFixtures.affineBranches(&h), rows: 2, seed: 27)
    }

    func testIntegratedHessiansChunkingAndErrors() throws {
        var g = Gen(30)
        let n = Self.analyticMLP(&g)
        let x = g.normals(10)
        let whole = try n.integratedHessians(x, rows: 2, targets: [1])
        let chunked = try n.integratedHessians(x, rows: 2, targets: [1], internalBatchSize: 3)
        // Chunks change GEMM shapes only: float32 roundings of each term (Double sums).
        assertClose(chunked, whole, rel: 1e-5, "chunked vs whole")
        // Directions in blocks of 2 (5 = 2 + 2 + 1): the same passes on fewer tangent rows.
        let blocked = try n.integratedHessians(x, rows: 2, baselines: [], targets: [1], steps: 32, method: .gaussLegendre,
                                               softplusBeta: nil, interactionIndex: nil, internalBatchSize: 5, directionBlock: 2)
        assertClose(blocked, whole, rel: 1e-5, "direction blocks vs whole")
        // Grid: many samples approach the exact value slowly (path_explain's error is first order in 1/√n:
        // measured 2.9e-2 of max|Γ| at 400 samples here), so only a gross error fails at 6e-2.
        let grid = try n.integratedHessians(x, rows: 2, targets: [1], steps: 400, method: .grid)
        assertClose(grid, whole, rel: 6e-2, "grid vs Gauss–Legendre")
        // Gauss–Laguerre converges to the same value (on this gentle network; measured agreement 3e-7).
        let laguerre = try n.integratedHessians(x, rows: 2, targets: [1], steps: 64, method: .gaussLaguerre)
        assertClose(laguerre, whole, rel: 1e-5, "Gauss–Laguerre vs Gauss–Legendre")
        assertError(.outOfRange, mentioning: "interaction_index") { try n.integratedHessians(x, rows: 2, targets: [1], interactionIndex: 5) }
        assertError(.invalidArgument, mentioning: "n_steps") { try n.integratedHessians(x, rows: 2, targets: [1], steps: 0) }
        assertError(.outOfRange, mentioning: "target") { try n.integratedHessians(x, rows: 2, targets: [3]) }
    }

    // MARK: Expected Hessians

    func testExpectedHessiansSeededAndSplitInvariant() throws {
        var g = Gen(40)
        let n = Self.analyticMLP(&g)
        let x = g.normals(15), refs = g.normals(20)
        let a = try n.expectedHessians(x, rows: 3, references: refs, referenceCount: 4, targets: [0], samples: 16, seed: 7)
        let b = try n.expectedHessians(x, rows: 3, references: refs, referenceCount: 4, targets: [0], samples: 16, seed: 7)
        XCTAssertEqual(a, b)
        let c = try n.expectedHessians(x, rows: 3, references: refs, referenceCount: 4, targets: [0], samples: 16, seed: 8)
        XCTAssertNotEqual(a, c)
        // The last example alone, called with its index in the batch, draws the same samples. One row instead of
        // three is another GEMM shape (rows are chunked together), which a BLAS kernel may round differently:
        // the same draws then agree to float32 rounding of sums of 16 samples, 1e-5 of the scale as in
        // ForkAndSeedTests; other draws differ by O(1).
        let last = try n.expectedHessians(Array(x[10...]), rows: 1, references: refs, referenceCount: 4, targets: [0], samples: 16,
                                          seed: 7, exampleOffset: 2)
        assertClose(last, Array(a[50...]), rel: 1e-5, "the last example alone, with its index")
    }

    /// A wide hidden layer makes one point's tangents exceed the 2²² float budget, so the full matrix is built
    /// from direction blocks (here 69 + 31 of 100); its rows must equal the unblocked one-row computation
    /// (same draws; different GEMM shapes only, so 1e-4 of the row's scale).
    func testExpectedHessiansDirectionBlocksMatchRows() throws {
        var g = Gen(42)
        let n = net([100], [g.dense(30000, 100), .softplus(beta: 1), g.dense(1, 30000)])
        let x = g.normals(100), refs = g.normals(200)
        let full = try n.expectedHessians(x, rows: 1, references: refs, referenceCount: 2, targets: [0], samples: 2, seed: 9)
        for index in [0, 68, 69, 99] {
            let row = try n.expectedHessians(x, rows: 1, references: refs, referenceCount: 2, targets: [0], samples: 2, seed: 9,
                                             interactionIndex: index)
            assertClose(Array(full[(index * 100)..<((index + 1) * 100)]), row, rel: 1e-4, "row \(index)")
        }
    }

    /// Brute force with the same draws: per sample, the exact Hessian and the gradient at the drawn point.
    /// With one reference the mean converges to Integrated Hessians; the tolerance is 5 standard errors
    /// of the per-sample terms (a false failure has probability < 1e-6 per entry).
    func testExpectedHessiansEqualBruteForceAndConvergeToIntegratedHessians() throws {
        var g = Gen(41)
        let n = net([3], [g.dense(5, 3), .softplus(beta: 1), g.dense(4, 5), .tanh, g.dense(1, 4)])
        let x = g.normals(3), ref = g.normals(3)
        let samples = 2000
        let eh = try n.expectedHessians(x, rows: 1, references: ref, referenceCount: 1, targets: [0], samples: samples, seed: 3)
        var mean = [Double](repeating: 0, count: 9), square = [Double](repeating: 0, count: 9)
        let delta = zip(x, ref).map { Double($0 - $1) }
        for k in 0..<samples {
            let (a, b) = CounterRandom.uniforms(seed: 3, example: 0, sample: UInt32(k), block: 0)
            let t = a * b
            let point = zip(ref, delta).map { $0 + Float(t) * Float($1) }
            let h = try n.hessians(point, rows: 1, targets: [0])
            let grad = try n.gradient(point, rows: 1, cotangent: [1])
            for i in 0..<3 {
                for j in 0..<3 {
                    var term = t * delta[i] * delta[j] * Double(h[i * 3 + j])
                    if i == j { term += delta[i] * Double(grad[i]) }
                    mean[i * 3 + j] += term / Double(samples)
                    square[i * 3 + j] += term * term / Double(samples)
                }
            }
        }
        assertClose(eh, mean, rel: 1e-4, "expected Hessians vs brute force with the same draws")
        let ih = try n.integratedHessians(x, rows: 1, baselines: ref, targets: [0], steps: 64)
        for e in 0..<9 {
            let standardError = ((square[e] - mean[e] * mean[e]) / Double(samples)).squareRoot()
            XCTAssertLessThan(abs(Double(eh[e]) - Double(ih[e])), 5 * standardError + 1e-6, "entry \(e)")
        }
    }
}
