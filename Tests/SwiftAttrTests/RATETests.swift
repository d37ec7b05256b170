import XCTest
@testable import SwiftAttr

/// RATE (Crawford et al. 2019; Ish-Horowicz et al. 2019): the DESIGN.md vector, a direct implementation
/// (condition the Gaussian, KL of two Gaussians), the low-rank path, draws, bad input, the last layer.
final class RATETests: XCTestCase {
    let mu: [Double] = [1, 0.5, -0.2]
    let sigma: [Double] = [1, 0.5, 0.2, 0.5, 1, 0.3, 0.2, 0.3, 1]

    func testDesignVector() throws {
        let r = try RATE.fromEffectSizePosterior(mean: mu, covariance: sigma)
        let expected = [0.759577, 0.231176, 0.009247]
        let alpha = [0.338235, 0.411765, 0.102941]
        for j in 0..<3 {
            XCTAssertEqual(r.rate[j], expected[j], accuracy: 1e-6)
            XCTAssertEqual(2 * r.kld[j] / (mu[j] * mu[j]), alpha[j], accuracy: 1e-6)
        }
        XCTAssertEqual(r.delta, 0.507851, accuracy: 1e-6)
        XCTAssertEqual(r.ess, 66.3195, accuracy: 1e-4)
        XCTAssertFalse(r.usedPseudoInverse)
        let e = try RATE.fromEffectSizePosterior(mean: mu, covariance: sigma, options: .init(exactKLD: true))
        for (j, v) in [0.682759, 0.301146, 0.016095].enumerated() { XCTAssertEqual(e.rate[j], v, accuracy: 1e-6) }
    }

    // MARK: direct implementation

    /// Solves A X = B (A k×k, B k×m) by Gaussian elimination with partial pivoting.
    func solve(_ a: [Double], _ b: [Double], _ k: Int, _ m: Int) -> [Double] {
        var a = a, b = b
        for col in 0..<k {
            var pivot = col
            for r in col..<k where abs(a[r * k + col]) > abs(a[pivot * k + col]) { pivot = r }
            for c in 0..<k { a.swapAt(col * k + c, pivot * k + c) }
            for c in 0..<m { b.swapAt(col * m + c, pivot * m + c) }
            for r in (col + 1)..<max(col + 1, k) {
                let f = a[r * k + col] / a[col * k + col]
                for c in col..<k { a[r * k + c] -= f * a[col * k + c] }
                for c in 0..<m { b[r * m + c] -= f * b[col * m + c] }
            }
        }
        for col in stride(from: k - 1, through: 0, by: -1) {
            for c in 0..<m {
                var s = b[col * m + c]
                for r in (col + 1)..<max(col + 1, k) { s -= a[col * k + r] * b[r * m + c] }
                b[col * m + c] = s / a[col * k + col]
            }
        }
        return b
    }

    func logDet(_ a: [Double], _ k: Int) -> Double {
        var a = a
        var total = 0.0
        for col in 0..<k {
            var pivot = col
            for r in col..<k where abs(a[r * k + col]) > abs(a[pivot * k + col]) { pivot = r }
            for c in 0..<k { a.swapAt(col * k + c, pivot * k + c) }
            total += log(abs(a[col * k + col]))
            for r in (col + 1)..<max(col + 1, k) {
                let f = a[r * k + col] / a[col * k + col]
                for c in col..<k { a[r * k + c] -= f * a[col * k + c] }
            }
        }
        return total
    }

    /// KL(p(β_−q) ‖ p(β_−q | β_q = 0)) by conditioning the Gaussian N(mu, s) explicitly.
    func directKLD(_ mu: [Double], _ s: [Double], _ p: Int, _ q: [Int], exact: Bool) -> Double {
        let rest = (0..<p).filter { !q.contains($0) }
        let k = q.count, m = rest.count
        let sqq = q.flatMap { a in q.map { b in s[a * p + b] } }
        let srq = rest.flatMap { a in q.map { b in s[a * p + b] } }   // m×k
        let srr = rest.flatMap { a in rest.map { b in s[a * p + b] } }
        let muq = q.map { mu[$0] }
        let t = solve(sqq, muq, k, 1)
        let qr = q.flatMap { a in rest.map { b in s[a * p + b] } }     // k×m
        let u = solve(sqq, qr, k, m)                                     // Σ_qq⁻¹ Σ_qr
        var sc = srr
        var d = [Double](repeating: 0, count: m)
        for i in 0..<m {
            for c in 0..<k { d[i] -= srq[i * k + c] * t[c] }
            for j in 0..<m { for c in 0..<k { sc[i * m + j] -= srq[i * k + c] * u[c * m + j] } }
        }
        let w = solve(sc, d, m, 1)
        var kl = 0.0
        for i in 0..<m { kl += d[i] * w[i] }
        kl *= 0.5
        if exact {
            let x = solve(sc, srr, m, m)
            var trace = 0.0
            for i in 0..<m { trace += x[i * m + i] }
            kl += 0.5 * (trace - Double(m) + logDet(sc, m) - logDet(srr, m))
        }
        return kl
    }

    func randomProblem(_ p: Int, _ rng: inout RandomSource) -> ([Double], [Double]) {
        let a = (0..<(p * p)).map { _ in rng.normal() }
        var s = [Double](repeating: 0, count: p * p)
        for i in 0..<p { for j in 0..<p {
            var v = 0.0
            for k in 0..<p { v += a[i * p + k] * a[j * p + k] }
            s[i * p + j] = v / Double(p) + (i == j ? 0.1 : 0)
        } }
        return ((0..<p).map { _ in rng.normal() }, s)
    }

    func assertRelative(_ a: [Double], _ b: [Double], _ tol: Double, file: StaticString = #filePath, line: UInt = #line) {
        let scale = b.map(abs).max() ?? 1
        for (x, y) in zip(a, b) {
            XCTAssertLessThanOrEqual(abs(x - y), tol * abs(y) + 1e-13 * scale, "\(x) vs \(y)", file: file, line: line)
        }
    }

    func testPlainNullifyGroupAgainstDirect() throws {
        var rng = RandomSource(seed: 42)
        for exact in [false, true] {
            for p in [4, 17, 30] {
                let (m, s) = randomProblem(p, &rng)
                let r = try RATE.fromEffectSizePosterior(mean: m, covariance: s, options: .init(exactKLD: exact))
                assertRelative(r.kld, (0..<p).map { directKLD(m, s, p, [$0], exact: exact) }, 1e-8)
            }
            let p = 24
            let (m, s) = randomProblem(p, &rng)
            let l = [2, 9, 20]
            let rn = try RATE.fromEffectSizePosterior(mean: m, covariance: s, options: .init(exactKLD: exact, nullify: l))
            let want = (0..<p).map { l.contains($0) ? 0 : directKLD(m, s, p, Array(Set(l + [$0])).sorted(), exact: exact) }
            assertRelative(rn.kld, want, 1e-8)
            XCTAssertEqual(rn.rate.reduce(0, +), 1, accuracy: 1e-12)
            let groups = [[0, 1], [3], [5, 6, 7, 15], Array(10..<14)]
            let rg = try RATE.fromEffectSizePosterior(mean: m, covariance: s, options: .init(exactKLD: exact, groups: groups))
            assertRelative(rg.kld, groups.map { directKLD(m, s, p, $0, exact: exact) }, 1e-8)
            let rgn = try RATE.fromEffectSizePosterior(mean: m, covariance: s, options: .init(exactKLD: exact, nullify: [20], groups: groups))
            assertRelative(rgn.kld, groups.map { directKLD(m, s, p, ($0 + [20]).sorted(), exact: exact) }, 1e-8)
        }
    }

    // MARK: from X

    func gaussianProblem(n: Int, p: Int, _ rng: inout RandomSource) -> (x: [Double], m: [Double], v: [Double]) {
        let x = (0..<(n * p)).map { _ in rng.normal() }
        let m = (0..<n).map { _ in rng.normal() }
        let b = (0..<(n * n)).map { _ in rng.normal() / Double(n).squareRoot() }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for k in 0..<n { s += b[i * n + k] * b[j * n + k] }
            v[i * n + j] = s + (i == j ? 0.05 : 0)
        } }
        return (x, m, v)
    }

    func rate(_ x: [Double], n: Int, p: Int, m: [Double], v: [Double], projection: EffectSizeProjection = .covariance,
              rank: Int? = nil, options: RATEOptions = .init()) throws -> RATEResult {
        try x.withUnsafeBufferPointer { xb in
            try m.withUnsafeBufferPointer { mb in
                try v.withUnsafeBufferPointer { vb in
                    try RATE.fromOutputs(X: xb, examples: n, variables: p, classes: 1,
                                         posterior: .gaussian(mean: mb, covariance: vb), projection: projection,
                                         rank: rank, options: options)[0]
                }
            }
        }
    }

    func testLowRankEqualsDenseAtFullRank() throws {
        var rng = RandomSource(seed: 7)
        let n = 50, p = 20
        let (x, m, v) = gaussianProblem(n: n, p: p, &rng)
        for projection in EffectSizeProjection.allCases {
            let dense = try rate(x, n: n, p: p, m: m, v: v, projection: projection)
            let low = try rate(x, n: n, p: p, m: m, v: v, projection: projection, rank: p)
            XCTAssertFalse(dense.usedPseudoInverse)
            XCTAssertEqual(low.rank, p)
            assertRelative(low.kld, dense.kld, 1e-7)
            assertRelative(low.effectSizeMean, dense.effectSizeMean, 1e-9)
        }
    }

    func testDrawsConvergeToClosedForm() throws {
        var rng = RandomSource(seed: 11)
        let n = 30, p = 5
        var (x, m, v) = gaussianProblem(n: n, p: p, &rng)
        m = m.map { 3 * $0 }
        let exact = try rate(x, n: n, p: p, m: m, v: v).rate
        // Cholesky of V by hand for sampling.
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i {
            var s = v[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = i == j ? s.squareRoot() : s / l[j * n + j]
        } }
        var errors: [Double] = []
        for draws in [100, 10_000] {
            var f = [Double](repeating: 0, count: draws * n)
            for d in 0..<draws {
                let z = (0..<n).map { _ in rng.normal() }
                for i in 0..<n {
                    var s = m[i]
                    for k in 0...i { s += l[i * n + k] * z[k] }
                    f[d * n + i] = s
                }
            }
            let r = try x.withUnsafeBufferPointer { xb in
                try f.withUnsafeBufferPointer { fb in
                    try RATE.fromOutputs(X: xb, examples: n, variables: p, classes: 1, posterior: .draws(fb, count: draws))[0]
                }
            }
            errors.append(zip(r.rate, exact).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThan(errors[1], errors[0])
        XCTAssertLessThan(errors[1], 0.01)
    }

    func testSingularCovarianceReportsPseudoInverse() throws {
        // Σ = a aᵀ + b bᵀ (rank 2) in 4 variables: no NaN, pseudo-inverse flagged, rank 2.
        let a: [Double] = [1, 2, 0, 1], b: [Double] = [0, 1, 1, -1]
        var s = [Double](repeating: 0, count: 16)
        for i in 0..<4 { for j in 0..<4 { s[i * 4 + j] = a[i] * a[j] + b[i] * b[j] } }
        let r = try RATE.fromEffectSizePosterior(mean: [1, 3, 1, 0], covariance: s)
        XCTAssertTrue(r.usedPseudoInverse)
        XCTAssertEqual(r.rank, 2)
        XCTAssertTrue(r.rate.allSatisfy { $0.isFinite && $0 >= 0 })
        XCTAssertEqual(r.rate.reduce(0, +), 1, accuracy: 1e-12)
    }

    func testDrivingVariablesGetTopRATE() throws {
        var rng = RandomSource(seed: 5)
        let n = 300, p = 20
        let x = (0..<(n * p)).map { _ in rng.normal() }
        let causal = [3, 12]
        let m = (0..<n).map { 2 * x[$0 * p + 3] - 1.5 * x[$0 * p + 12] }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 0.05 }
        let r = try rate(x, n: n, p: p, m: m, v: v)
        let top = r.rate.indices.sorted { r.rate[$0] > r.rate[$1] }.prefix(2)
        XCTAssertEqual(Set(top), Set(causal))
    }

    // MARK: bad input

    func assertThrows(_ code: SwiftAttrError.Code, _ words: String, _ body: () throws -> Void,
                      file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let e as SwiftAttrError {
            XCTAssertEqual(e.code, code, e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(words), e.message, file: file, line: line)
        } catch { XCTFail("\(error)", file: file, line: line) }
    }

    func testBadInput() throws {
        var bad = sigma
        bad[1] = 0.9
        assertThrows(.invalidArgument, "not symmetric") { _ = try RATE.fromEffectSizePosterior(mean: self.mu, covariance: bad) }
        var nan = sigma
        nan[4] = .nan
        assertThrows(.nonFinite, "esa_cov") { _ = try RATE.fromEffectSizePosterior(mean: self.mu, covariance: nan) }
        assertThrows(.outOfRange, "nullify[0]") {
            _ = try RATE.fromEffectSizePosterior(mean: self.mu, covariance: self.sigma, options: .init(nullify: [3]))
        }
        assertThrows(.invalidArgument, "groups[1] is empty") {
            _ = try RATE.fromEffectSizePosterior(mean: self.mu, covariance: self.sigma, options: .init(groups: [[0], []]))
        }
        assertThrows(.shapeMismatch, "esa_cov") {
            _ = try RATE.fromEffectSizePosterior(mean: self.mu, covariance: Array(self.sigma.prefix(4)))
        }
        var rng = RandomSource(seed: 3)
        let (x, m, v) = gaussianProblem(n: 10, p: 3, &rng)
        assertThrows(.shapeMismatch, "M_F") { _ = try self.rate(x, n: 10, p: 3, m: Array(m.prefix(9)), v: v) }
        var vs = v
        vs[1] += 1
        assertThrows(.invalidArgument, "V_F is not symmetric") { _ = try self.rate(x, n: 10, p: 3, m: m, v: vs) }
        var xn = x
        xn[5] = .infinity
        assertThrows(.nonFinite, "X") { _ = try self.rate(xn, n: 10, p: 3, m: m, v: v) }
        assertThrows(.invalidArgument, "rank") { _ = try self.rate(x, n: 10, p: 3, m: m, v: v, rank: 0) }
    }

    // MARK: Bayesian last layer

    func testBayesianLastLayerRegressionFixedPoint() throws {
        var rng = RandomSource(seed: 9)
        let n = 200, h = 6
        let hf = (0..<(n * h)).map { _ in max(rng.normal(), 0) }
        let w = (0..<h).map { _ in rng.normal() }
        let y = (0..<n).map { i in (0..<h).reduce(0.5) { $0 + hf[i * h + $1] * w[$1] } + 0.1 * rng.normal() }
        let post = try hf.withUnsafeBufferPointer { hb in
            try y.withUnsafeBufferPointer { yb in
                try BayesianLastLayer.regression(features: hb, examples: n, hidden: h, targets: yb, outputs: 1)
            }
        }
        let alpha = post.priorPrecision[0], beta = post.noisePrecision[0]
        // (αI + βHcᵀHc) S = I and m = β S Hcᵀ yc.
        let means = (0..<h).map { k in (0..<n).reduce(0) { $0 + hf[$1 * h + k] } / Double(n) }
        let ybar = y.reduce(0, +) / Double(n)
        var a = [Double](repeating: 0, count: h * h)
        var hty = [Double](repeating: 0, count: h)
        for i in 0..<n { for r in 0..<h {
            hty[r] += (hf[i * h + r] - means[r]) * (y[i] - ybar)
            for c in 0..<h { a[r * h + c] += beta * (hf[i * h + r] - means[r]) * (hf[i * h + c] - means[c]) }
        } }
        for r in 0..<h { a[r * h + r] += alpha }
        for r in 0..<h { for c in 0..<h {
            var s = 0.0
            for k in 0..<h { s += a[r * h + k] * post.weightCovariance[k * h + c] }
            XCTAssertEqual(s, r == c ? 1 : 0, accuracy: 1e-9)
        } }
        let m = solve(a, hty.map { $0 * beta }, h, 1)
        for r in 0..<h { XCTAssertEqual(post.weightMean[r], m[r], accuracy: 1e-9 * max(1, abs(m[r]))) }
        // MacKay fixed point: α‖m‖² = γ = h − α tr S.
        var trace = 0.0
        for r in 0..<h { trace += post.weightCovariance[r * h + r] }
        let norm2 = m.reduce(0) { $0 + $1 * $1 }
        XCTAssertEqual(alpha * norm2, Double(h) - alpha * trace, accuracy: 1e-5 * Double(h))
    }
}

extension RATETests {
    func testBayesianLastLayerClassificationIsAMAP() throws {
        var rng = RandomSource(seed: 21)
        let n = 150, h = 4, k = 3
        let features = (0..<(n * h)).map { _ in rng.normal() }
        let labels: [Int64] = (0..<n).map { i in
            let score = (0..<k).map { c in features[i * h + c] * 2 + rng.normal() }
            return Int64(score.indices.max { score[$0] < score[$1] }!)
        }
        let alpha = 0.5
        let post = try features.withUnsafeBufferPointer { f in
            try labels.withUnsafeBufferPointer { y in
                try BayesianLastLayer.classification(features: f, examples: n, hidden: h, labels: y, classes: k, priorPrecision: alpha)
            }
        }
        // ∇ = Hᵀ(P − Y) + αW = 0 at the MAP.
        var grad = [Double](repeating: 0, count: h * k)
        for i in 0..<n {
            var z = (0..<k).map { c in post.bias[c] + (0..<h).reduce(0) { $0 + features[i * h + $1] * post.weightMean[$1 * k + c] } }
            let top = z.max()!
            z = z.map { exp($0 - top) }
            let total = z.reduce(0, +)
            for c in 0..<k {
                let r = z[c] / total - (Int64(c) == labels[i] ? 1 : 0)
                for j in 0..<h { grad[j * k + c] += features[i * h + j] * r }
            }
        }
        for j in 0..<(h * k) { XCTAssertEqual(grad[j] + alpha * post.weightMean[j], 0, accuracy: 1e-6) }
        // Each class's covariance block is symmetric positive definite.
        for c in 0..<k {
            for a in 0..<h {
                XCTAssertGreaterThan(post.weightCovariance[c * h * h + a * h + a], 0)
                for b in 0..<h {
                    XCTAssertEqual(post.weightCovariance[c * h * h + a * h + b], post.weightCovariance[c * h * h + b * h + a], accuracy: 1e-12)
                }
            }
        }
        // A label outside 0..<k is out of range.
        var bad = labels
        bad[7] = 3
        assertThrows(.outOfRange, "y[7]") {
            _ = try features.withUnsafeBufferPointer { f in
                try bad.withUnsafeBufferPointer { y in
                    try BayesianLastLayer.classification(features: f, examples: n, hidden: h, labels: y, classes: k)
                }
            }
        }
    }
}
