import Foundation
import XCTest
@testable import SwiftAttr

/// The fast paths of the second-order methods: the fused activation kernel (one exp per element) against
/// the separate formulas, float64 closed forms and finite differences; the quadratic-form pass for the full
/// interaction matrix and the affine prefix of Expected Hessians against the direction-block path.
final class HessianSpeedPathTests: XCTestCase {
    // MARK: Kernels

    /// Over a dense grid of [−87.3, 0] (where softplus and sigmoid call it) the measured worst relative error
    /// against float64 exp is 8.2e-8 (under 1.5 float32 ulps: the polynomial's own 1e-8 plus the roundings of
    /// the reduction and of the product with 2ⁿ); 2.5e-7 allows two roundings more and fails any wrong coefficient.
    func testFastExp() {
        var worst = 0.0
        var x: Float = 0
        while x > -87.3 {
            let e = Double(Activation.fastExp(x)), r = exp(Double(x))
            worst = max(worst, abs(e - r) / r)
            x -= 1.0e-4 * (1 + abs(x))
        }
        XCTAssertLessThan(worst, 2.5e-7, "fastExp relative error")
        XCTAssertEqual(Activation.fastExp(0), 1)
        XCTAssertEqual(Activation.fastExp(-87.4), 0)
        XCTAssertEqual(Activation.fastExp(-1000), 0)
        XCTAssertEqual(Activation.fastExp(-.infinity), 0)
    }

    /// log1p on [0, 1] by the atanh series: truncation ≤ 1.4e-9, plus a few roundings of the division and of
    /// Horner's rule (each ≤ ½ ulp relative; measured worst 2.1e-7): 3e-7 relative, including u far below ε₃₂
    /// where 1 + u rounds to 1.
    func testLog1pUnit() {
        var worst = 0.0
        var u: Float = 1
        while u > 1e-30 {
            let r = log1p(Double(u))
            worst = max(worst, abs(Double(Activation.log1pUnit(u)) - r) / r)
            u *= 0.999
        }
        XCTAssertLessThan(worst, 3e-7, "log1pUnit relative error")
        XCTAssertEqual(Activation.log1pUnit(0), 0)
    }

    static let kinds: [Activation.Kind] = [.relu, .leakyReLU(slope: 0.1), .elu(alpha: 0.7), .softplus(beta: 10), .softplus(beta: 1),
                                           .softplus(beta: 0.5), .sigmoid, .tanh]

    /// z from −60 to 60 (large |z| included, where e^{−β|z|} underflows) densely, plus zero and tiny values.
    static func grid() -> [Float] {
        var z: [Float] = [0, 1e-30, -1e-30, 1e-7, -1e-7, 1e-3, -1e-3]
        var v: Float = -60
        while v <= 60 { z.append(v); v += 0.0137 }
        return z
    }

    /// Float64 closed forms of (f, f′, f″) for the smooth kinds.
    static func reference(_ kind: Activation.Kind, _ z: Double) -> (Double, Double, Double)? {
        switch kind {
        case .softplus(let b):
            // e^{−β|z|} of the float32 product −β|z| as the kernel forms it: that rounding (relative ε₃₂/2 of
            // β|z|, so up to 2e-6 of e^{−β|z|} at β|z| = 70) is the argument's, the same in every float32 formula.
            let beta = Double(b), u = exp(Double(-b * Float(abs(z)))), r = 1 / (1 + u)
            return (max(z, 0) + log1p(u) / beta, (z >= 0 ? 1 : u) * r, beta * u * r * r)
        case .sigmoid:
            let u = exp(-abs(z)), r = 1 / (1 + u), s = (z >= 0 ? 1 : u) * r
            return (s, u * r * r, u * r * r * (1 - 2 * s))
        case .relu, .leakyReLU, .elu, .tanh:
            return nil
        }
    }

    /// Fused against the separate scalar formulas and float64. Softplus and sigmoid use fastExp (≤ 2 ulp),
    /// one reciprocal, one product or log1pUnit (≤ 3e-7): each output is within 1e-6 relative of float64,
    /// plus 1e-36 absolute where e^{−β|z|} is flushed to 0 below the normal floats (β·2⁻¹²⁶ ≤ 1.2e-37 here). The separate formulas (library exp, and for
    /// f″ = βσ(1 − σ) the cancellation of 1 − σ) agree with float64 only to ~ε₃₂/σ(−β|z|) relative, so the
    /// comparison with them is to 1e-6 of the largest value of each function over the grid. The other kinds
    /// evaluate exactly the separate formulas once: equal bit for bit.
    func testFusedActivationDerivativesMatchSeparateFormulasAndFloat64() {
        let z = Self.grid()
        for kind in Self.kinds {
            let f = Activation(kind)
            let (y, d1, d2) = f.valueAndDerivatives(z)
            let separate = (z.map { f.value($0) }, z.indices.map { f.derivative(at: z[$0], output: f.value(z[$0])) },
                            z.indices.map { f.secondDerivative(at: z[$0], output: f.value(z[$0])) })
            if Self.reference(kind, 0) == nil {
                XCTAssertEqual(y, separate.0, "\(kind) value")
                XCTAssertEqual(d1, separate.1, "\(kind) f′")
                XCTAssertEqual(d2, separate.2, "\(kind) f″")
                continue
            }
            assertClose(y, separate.0, rel: 1e-6, "\(kind) value vs separate")
            assertClose(d1, separate.1, rel: 1e-6, "\(kind) f′ vs separate")
            assertClose(d2, separate.2, rel: 1e-6, "\(kind) f″ vs separate")
            for (k, v) in z.enumerated() {
                let (ry, r1, r2) = Self.reference(kind, Double(v))!
                XCTAssertEqual(Double(y[k]), ry, accuracy: 1e-6 * abs(ry) + 1e-36, "\(kind) value at \(v)")
                XCTAssertEqual(Double(d1[k]), r1, accuracy: 1e-6 * abs(r1) + 1e-36, "\(kind) f′ at \(v)")
                // Sigmoid's f″ = f′(1 − 2σ): near z = 0 the factor 1 − 2σ cancels, leaving an absolute error of
                // 2·|δσ| ≤ 1e-6 times f′ (of the same size in the separate formula).
                let cancellation = kind == .sigmoid ? 1e-6 * abs(r1) : 0
                XCTAssertEqual(Double(d2[k]), r2, accuracy: 1e-6 * abs(r2) + cancellation + 1e-36, "\(kind) f″ at \(v)")
            }
        }
    }

    /// Central differences of the fused kernel's own float32 outputs, with h = 1e-2/β: truncation h²/6·max|f‴|
    /// (f‴ ≤ β²/10 for softplus, ≤ 1/8 for sigmoid, ≤ 2 for tanh and ELU) is at most 2e-5 of the derivative's
    /// scale, rounding 2·(2 ulp)·max|f|/(2h) on the window |z| ≤ 4/β where |f| ≤ 4/β is at most 5e-5 of it; 2e-4
    /// of the scale (β for f″ of softplus, 1 otherwise) fails any wrong derivative by orders of magnitude.
    func testFusedActivationDerivativesMatchFiniteDifferences() {
        for kind in Self.kinds {
            let beta: Float
            switch kind {
            case .softplus(let b): beta = b
            case .relu, .leakyReLU, .elu, .sigmoid, .tanh: beta = 1
            }
            let h = 1e-2 / beta
            // Avoid the kinks of ReLU, LeakyReLU and ELU at 0.
            let z = stride(from: -4 / beta, through: 4 / beta, by: 0.0311 / beta).filter { abs($0) > 2 * h }
            let f = Activation(kind)
            let (_, d1, d2) = f.valueAndDerivatives(z)
            let (yp, d1p, _) = f.valueAndDerivatives(z.map { $0 + h })
            let (ym, d1m, _) = f.valueAndDerivatives(z.map { $0 - h })
            let scale1: Double = 1, scale2 = Double(beta)
            for k in z.indices {
                XCTAssertEqual(Double(yp[k] - ym[k]) / Double(2 * h), Double(d1[k]), accuracy: 2e-4 * scale1, "\(kind) f′ at \(z[k])")
                XCTAssertEqual(Double(d1p[k] - d1m[k]) / Double(2 * h), Double(d2[k]), accuracy: 2e-4 * scale2, "\(kind) f″ at \(z[k])")
            }
        }
    }

    // MARK: Quadratic-form pass against direction blocks

    /// The quadratic-form pass (one gradient and one tangent pass, Σ_n T_n C_n T_nᵀ) against the direction-block
    /// pass (tangent back-propagation, directionBlock forces it): the same exact Hessian with float32 roundings in
    /// a different order (tangents relative ~ε₃₂·depth ≈ 1e-6, sums in Double), so 2e-5 of max|Γ|.
    func assertFormsMatchBlocks(_ n: Network, rows: Int, seed: UInt64, chunk: Int? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        var g = Gen(seed)
        let p = n.inputSize
        let x = g.normals(rows * p), base = g.normals(p, scale: 0.3)
        let blocks = try n.integratedHessians(x, rows: rows, baselines: base, targets: [0], steps: 16, method: .gaussLegendre,
                                              softplusBeta: nil, interactionIndex: nil, internalBatchSize: nil, directionBlock: p)
        XCTAssertGreaterThan(maxAbs(blocks), 1e-3, file: file, line: line)
        // Both bases: the identity at the prefix output (left-scaled tangents after an activation, Pᵀ S P) and
        // P·diag(Δx); nil lets the cost model choose.
        for identity in [true, false, nil] as [Bool?] {
            let forms = try n.integratedHessians(x, rows: rows, baselines: base, targets: [0], steps: 16, method: .gaussLegendre,
                                                 softplusBeta: nil, interactionIndex: nil, internalBatchSize: chunk, directionBlock: nil,
                                                 identityBasis: identity)
            assertClose(forms, blocks, rel: 2e-5, "quadratic forms (identity basis: \(String(describing: identity))) vs direction blocks",
                        file: file, line: line)
        }
    }

    func testFormsMatchBlocksOnChainsWithBothBases() throws {
        var g = Gen(50)
        // Prefix output wider than the input, final Softmax (its H_u term).
        try assertFormsMatchBlocks(HessianTests.smoothChain(&g, softmax: true), rows: 3, seed: 51)
        // Prefix output narrower than the input, points split across chunks.
        var h = Gen(52)
        let narrow = net([9], [h.dense(4, 9), .softplus(beta: 3), h.dense(5, 4), .tanh, h.dense(2, 5)])
        try assertFormsMatchBlocks(narrow, rows: 3, seed: 53)
        try assertFormsMatchBlocks(narrow, rows: 3, seed: 53, chunk: 5)
        // No affine prefix (the activation reads the input).
        var k = Gen(54)
        try assertFormsMatchBlocks(net([4], [.sigmoid, k.dense(3, 4), .elu(alpha: 0.7), k.dense(1, 3)]), rows: 2, seed: 55)
    }

    func testFormsMatchBlocksOnCNNAndGraphs() throws {
        var g = Gen(56)
        try assertFormsMatchBlocks(HessianTests.smoothCNN(&g), rows: 2, seed: 57)
        var h = Gen(58)
        try assertFormsMatchBlocks(GraphFixtures.residualConcat(&h, smooth: true), rows: 2, seed: 59)
        var k = Gen(60)
        try assertFormsMatchBlocks(GraphFixtures.affineBranches(&k), rows: 2, seed: 61, chunk: 7)
        var m = Gen(62)
        try assertFormsMatchBlocks(GraphFixtures.twoBranchSoftmax(&m), rows: 2, seed: 63)
    }

    /// Expected Hessians with the affine prefix and quadratic forms against the direction blocks of the whole
    /// network on the same draws (several references, so several groups per example): 2e-5 of max|Γ| as above.
    func testExpectedHessiansPrefixMatchesDirectionBlocks() throws {
        var g = Gen(64)
        let wide = HessianTests.analyticMLP(&g)
        var h = Gen(65)
        let narrow = net([9], [h.dense(4, 9), .softplus(beta: 3), h.dense(5, 4), .tanh, h.dense(2, 5)])
        for (n, chunk) in [(wide, nil), (narrow, nil), (narrow, 3)] as [(Network, Int?)] {
            let p = n.inputSize
            let x = g.normals(3 * p), refs = g.normals(5 * p)
            let fast = try n.expectedHessians(x, rows: 3, references: refs, referenceCount: 5, targets: [1], samples: 24, seed: 4,
                                              exampleOffset: 0, softplusBeta: nil, interactionIndex: nil, internalBatchSize: chunk,
                                              directionBlocks: false)
            let blocks = try n.expectedHessians(x, rows: 3, references: refs, referenceCount: 5, targets: [1], samples: 24, seed: 4,
                                                exampleOffset: 0, softplusBeta: nil, interactionIndex: nil, internalBatchSize: nil,
                                                directionBlocks: true)
            XCTAssertGreaterThan(maxAbs(blocks), 1e-3)
            assertClose(fast, blocks, rel: 2e-5, "expected Hessians: prefix and forms vs direction blocks")
            for r in 0..<3 { for i in 0..<p { for j in 0..<p { XCTAssertEqual(fast[(r * p + i) * p + j], fast[(r * p + j) * p + i]) } } }
        }
    }
}
