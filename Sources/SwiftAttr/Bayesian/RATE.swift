/// RATE — RelATive cEntrality — global variable importance for Bayesian models
/// (Crawford, Flaxman, Runcie & West 2019, Ann. Appl. Stat.; Ish-Horowicz et al. 2019, "Interpreting deep
/// neural networks through variable importance").
///
/// Given a Gaussian posterior β̃ ∼ N(μ, Σ) of the effect-size analogue (see `EffectSize.swift`) and
/// Λ = Σ⁻¹, the importance of variable j is the Kullback–Leibler divergence between the marginal of the
/// other effects and their distribution conditioned on β̃_j = 0:
///
///     KLD_j = ½ μ_j² α_j,   α_j = λ_jᵀ Λ_{−j,−j}⁻¹ λ_j = Λ_jj − 1/Σ_jj          (Schur complement)
///     exact KLD_j = ½ [Σ_jjΛ_jj − 1 − log(Σ_jjΛ_jj)] + ½ μ_j² α_j
///     RATE_j = KLD_j / Σ_k KLD_k,   Δ = Σ_j RATE_j log(p·RATE_j),   ESS = 100/(1+Δ) %.
///
/// One factorisation of Σ gives every α_j: the authors' code spends O(p²) per variable instead.
/// Conditional RATE (`nullify` = l) and group RATE (group g) condition on a set q = {j} ∪ l or g ∪ l:
/// KLD_q = ½ μ_qᵀ(Λ_qq − Σ_qq⁻¹)μ_q (+ ½[tr(Σ_qqΛ_qq) − |q| − log det(Σ_qqΛ_qq)] when exact).
///
/// Singular Σ (rank t < p: fewer draws than variables, n < p, a low-rank path) has no inverse; Λ is then
/// the Moore–Penrose pseudo-inverse and α_q = Λ_{q,−q} Λ_{−q,−q}⁺ Λ_{−q,q} as in the authors' code
/// (`lstsq`). With Σ = G D Gᵀ (G p×t orthonormal) this is α_q = Λ⁺_qq − C (CᵀΣ_qqC)⁻¹ Cᵀ, where the columns
/// of C span the eigenvectors of G_qG_qᵀ with eigenvalue 1 (directions of β̃_q no other variable carries):
/// C = I for a full-rank Σ (the Schur formula), C empty in the generic rank-deficient case (α_q = Λ⁺_qq).
public enum RATE {
    /// Leverage above which a direction of β̃_q counts as carried by q alone (see the type's comment).
    static let leverageOne = 1 - 1e-6

    /// RATE of one output class from the effect-size posterior N(`mean`, `covariance`) (p, p×p row-major).
    public static func fromEffectSizePosterior(
        mean: UnsafeBufferPointer<Double>, covariance: UnsafeBufferPointer<Double>, variables p: Int,
        options: RATEOptions = .init(), meanName: String = "esa_mean", covarianceName: String = "esa_cov"
    ) throws -> RATEResult {
        try Check.positive(p, "p")
        guard mean.count == p else { throw SwiftAttrError.shape("\(meanName): expected \(p) values, got \(mean.count)") }
        guard try covariance.count == Check.count([p, p], covarianceName) else {
            throw SwiftAttrError.shape("\(covarianceName): expected \(p)×\(p) = \(p * p) values, got \(covariance.count)")
        }
        try Check.finite(mean, meanName)
        try Check.finite(covariance, covarianceName)
        try RATEValidation.symmetric(covariance, n: p, covarianceName)
        let plan = try RATEPlan(p: p, options: options)
        let factor = try CovarianceFactor.dense(Array(covariance), p: p, jitter: options.jitter, name: covarianceName)
        return try compute(mean: Array(mean), factor: factor, plan: plan, exactKLD: options.exactKLD)
    }

    /// Convenience overload on arrays.
    public static func fromEffectSizePosterior(mean: [Double], covariance: [Double], options: RATEOptions = .init()) throws -> RATEResult {
        try mean.withUnsafeBufferPointer { m in
            try covariance.withUnsafeBufferPointer { c in
                try fromEffectSizePosterior(mean: m, covariance: c, variables: mean.count, options: options)
            }
        }
    }

    /// RATE from a factored posterior; shared by every input kind.
    /// A variable without posterior variance carries no information and gets KLD 0; so when Σ = 0
    /// altogether (W_cov = 0, V_F = 0, identical draws) every KLD is 0, RATE is uniform and the result's
    /// rank is 0. Every result is checked finite (`.numerical` otherwise).
    static func compute(mean: [Double], factor: CovarianceFactor, plan: RATEPlan, exactKLD: Bool) throws -> RATEResult {
        let p = plan.p
        try Check.finiteResult(mean, "the effect-size mean", hint: "; rescale X or the outputs")
        var kld = [Double](repeating: 0, count: plan.outputCount)
        if plan.singleVariables {
            for j in 0..<p {
                kld[j] = singleKLD(mu: mean[j], sigma: factor.sigmaDiag[j], lambda: factor.lambdaDiag[j],
                                   leverage: factor.leverage[j], exact: exactKLD)
            }
        } else if let l = plan.nullifiedOnly {
            // Conditional RATE: the l×l blocks are shared by every q = l ∪ {j}; only row j is new.
            let shared = factor.blocks(l)
            let m = l.count, k = m + 1
            for j in plan.outputIndex {
                let cross = factor.crossBlocks(l, [j])
                var sigma = [Double](repeating: 0, count: k * k)
                var lambda = [Double](repeating: 0, count: k * k)
                let needLeverage = shared.leverage != nil || cross.leverage != nil
                var leverage = [Double](repeating: 0, count: needLeverage ? k * k : 0)
                for x in 0..<m {
                    for y in 0..<m {
                        sigma[x * k + y] = shared.sigma[x * m + y]
                        lambda[x * k + y] = shared.lambda[x * m + y]
                        if needLeverage { leverage[x * k + y] = shared.leverage?[x * m + y] ?? (x == y ? 1 : 0) }
                    }
                    sigma[x * k + m] = cross.sigma[x]; sigma[m * k + x] = cross.sigma[x]
                    lambda[x * k + m] = cross.lambda[x]; lambda[m * k + x] = cross.lambda[x]
                    if needLeverage {
                        let e = cross.leverage?[x] ?? 0
                        leverage[x * k + m] = e; leverage[m * k + x] = e
                    }
                }
                sigma[m * k + m] = factor.sigmaDiag[j]
                lambda[m * k + m] = factor.lambdaDiag[j]
                if needLeverage { leverage[m * k + m] = factor.leverage[j] }
                kld[j] = try kldFromBlocks(sigma: sigma, lambda: lambda, leverage: needLeverage ? leverage : nil,
                                           mu: l.map { mean[$0] } + [mean[j]], exact: exactKLD)
            }
        } else {
            for (item, q) in plan.sets.enumerated() {
                kld[plan.outputIndex[item]] = try blockKLD(q: q, mean: mean, factor: factor, exact: exactKLD)
            }
        }
        // Rounding can leave a KLD a hair below zero; KLDs are non-negative by definition.
        for i in kld.indices where kld[i] < 0 { kld[i] = 0 }
        for i in kld.indices where !kld[i].isFinite {
            throw SwiftAttrError(.numerical, "KLD of entry \(i) overflowed (\(kld[i])); rescale the outputs or the inputs")
        }
        let (rate, delta, ess) = normalise(kld: kld, scored: plan.outputIndex)
        try Check.finiteResult(rate, "RATE")
        try Check.finiteResult([delta, ess], "delta and ESS")
        return RATEResult(rate: rate, kld: kld, delta: delta, ess: ess, effectSizeMean: mean,
                          rank: factor.rank, usedPseudoInverse: factor.usedPseudoInverse)
    }

    /// KLD of one variable from Σ_jj, Λ_jj (Λ⁺_jj when singular) and its leverage h_j = (GGᵀ)_jj.
    @inline(__always)
    static func singleKLD(mu: Double, sigma: Double, lambda: Double, leverage: Double, exact: Bool) -> Double {
        // A variable without posterior variance (e.g. a constant column) carries no information.
        guard sigma > 0, lambda > 0 else { return 0 }
        let alpha = leverage > leverageOne ? lambda - 1 / sigma : lambda
        var kld = 0.5 * mu * mu * alpha
        if exact {
            let x = sigma * lambda
            kld += 0.5 * (x - 1 - _log(x))
        }
        return kld
    }

    /// KLD of a set q (sorted variable indices): ½ μ_qᵀ α_q μ_q, α_q = Λ_qq − C(CᵀΣ_qqC)⁻¹Cᵀ.
    /// O(|q|³ + p|q|²): every product of the |q|×|q| blocks goes through GEMM.
    static func blockKLD(q: [Int], mean: [Double], factor: CovarianceFactor, exact: Bool) throws -> Double {
        let k = q.count
        if k == 1 {
            let j = q[0]
            return singleKLD(mu: mean[j], sigma: factor.sigmaDiag[j], lambda: factor.lambdaDiag[j],
                             leverage: factor.leverage[j], exact: exact)
        }
        let (sigma, lambda, leverage) = factor.blocks(q)
        return try kldFromBlocks(sigma: sigma, lambda: lambda, leverage: leverage, mu: q.map { mean[$0] }, exact: exact)
    }

    /// ½ μᵀ α μ (+ the exact terms) from the k×k blocks Σ_qq, Λ_qq and the leverage block (nil: I).
    static func kldFromBlocks(sigma: [Double], lambda: [Double], leverage: [Double]?, mu muq: [Double], exact: Bool) throws -> Double {
        let k = muq.count
        var alpha = lambda
        // C (k×c, row-major): the directions of β̃_q with leverage 1; I for a full-rank Σ.
        var c = 0
        var directions: [Double] = []
        if let leverage {
            let (values, vectors) = try SmallSymmetric.eigen(leverage, k: k)
            let kept = (0..<k).filter { values[$0] > leverageOne }
            c = kept.count
            directions = [Double](repeating: 0, count: k * c)
            for (col, i) in kept.enumerated() { for row in 0..<k { directions[row * c + col] = vectors[i * k + row] } }
        } else {
            c = k
            directions = [Double](repeating: 0, count: k * k)
            for i in 0..<k { directions[i * k + i] = 1 }
        }
        if c > 0 {
            // M = CᵀΣ_qqC = V diag(w) Vᵀ; α −= (CV) diag(1/w) (CV)ᵀ over w > 0.
            let sc = matmul(sigma, directions, k, k, c)
            let m = matmul(directions, sc, c, k, c, transA: true)
            let (w, v) = try SmallSymmetric.eigen(m, k: c)
            let top = w.last ?? 0
            let keep = (0..<c).filter { w[$0] > top * 1e-14 && w[$0] > 0 }
            if !keep.isEmpty {
                // V_kept scaled by w^{-1/2} (c×t), then U = C · that (k×t), α −= U Uᵀ.
                let t = keep.count
                var vs = [Double](repeating: 0, count: c * t)
                for (col, e) in keep.enumerated() {
                    let scale = 1 / w[e].squareRoot()
                    for row in 0..<c { vs[row * t + col] = v[e * c + row] * scale }
                }
                let u = matmul(directions, vs, k, c, t)
                let uu = matmul(u, u, k, t, k, transB: true)
                for i in 0..<(k * k) { alpha[i] -= uu[i] }
            }
        }
        let alphaMu = matmul(alpha, muq, k, k, 1)
        var kld = 0.0
        for i in 0..<k { kld += muq[i] * alphaMu[i] }
        kld *= 0.5
        if exact { kld += 0.5 * (try traceLogDetTerm(sigma: sigma, lambda: lambda, k: k)) }
        return kld
    }

    /// Row-major product op(A)·op(B), op(A) m×k, op(B) k×n.
    static func matmul(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int,
                       transA: Bool = false, transB: Bool = false) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        BLAS.dgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, c: &out)
        return out
    }

    /// Σ_i (x_i − 1 − log x_i) over the positive eigenvalues x_i of Σ_qq Λ_qq, i.e.
    /// tr(Σ_qqΛ_qq) − |q| − log det(Σ_qqΛ_qq) when both are non-singular.
    static func traceLogDetTerm(sigma: [Double], lambda: [Double], k: Int) throws -> Double {
        // Symmetric form: with Σ_qq = W Ω Wᵀ and R = W Ω^{1/2} (positive Ω only), x = eig(RᵀΛ_qqR).
        let (omega, w) = try SmallSymmetric.eigen(sigma, k: k)
        let top = omega.last ?? 0
        let keep = (0..<k).filter { omega[$0] > top * 1e-14 && omega[$0] > 0 }
        let r = keep.count
        guard r > 0 else { return 0 }
        var root = [Double](repeating: 0, count: k * r)
        for (col, i) in keep.enumerated() {
            let s = omega[i].squareRoot()
            for row in 0..<k { root[row * r + col] = w[i * k + row] * s }
        }
        let lr = matmul(lambda, root, k, k, r)
        let m = matmul(root, lr, r, k, r, transA: true)
        let (x, _) = try SmallSymmetric.eigen(m, k: r)
        let xmax = x.last ?? 0
        var total = 0.0
        for v in x where v > xmax * 1e-14 && v > 0 { total += v - 1 - _log(v) }
        return total
    }

    /// RATE = KLD/ΣKLD over the scored entries, Δ = Σ RATE log(m·RATE) (0 log 0 = 0) with m the number of
    /// scored entries, ESS = 100/(1+Δ). When every KLD is 0 (no signal at all) RATE is uniform, Δ = 0.
    static func normalise(kld: [Double], scored: [Int]) -> (rate: [Double], delta: Double, ess: Double) {
        var rate = [Double](repeating: 0, count: kld.count)
        let m = Double(scored.count)
        var total = 0.0
        for i in scored { total += kld[i] }
        var delta = 0.0
        if total > 0 && total.isFinite {
            for i in scored {
                let r = kld[i] / total
                rate[i] = r
                if r > 0 { delta += r * _log(m * r) }
            }
        } else {
            for i in scored { rate[i] = 1 / m }
        }
        if delta < 0 { delta = 0 }  // Δ ≥ 0 (Gibbs); only rounding makes it negative
        return (rate, delta, 100 / (1 + delta))
    }
}

/// Options shared by every RATE entry point.
public struct RATEOptions: Sendable {
    /// Add the trace and log-determinant terms of the Gaussian KL divergence (exact KLD).
    public var exactKLD: Bool
    /// Variables l to condition on as well (β̃_l = 0): conditional RATE; their RATE is reported as 0.
    public var nullify: [Int]
    /// Groups of variables: one score per group (group RATE). Groups may not contain nullified variables.
    public var groups: [[Int]]?
    /// Ridge added to Σ's diagonal before factorising, relative to the mean of that diagonal
    /// (dense path); in the low-rank path relative to the mean eigenvalue of the r-dimensional core. 0: none.
    public var jitter: Double

    public init(exactKLD: Bool = false, nullify: [Int] = [], groups: [[Int]]? = nil, jitter: Double = 0) {
        self.exactKLD = exactKLD
        self.nullify = nullify
        self.groups = groups
        self.jitter = jitter
    }
}

/// RATE of one output class.
public struct RATEResult: Sendable {
    /// RATE per variable (p) or per group; nullified variables have 0. Sums to 1.
    public var rate: [Double]
    /// KLD per variable or group (same layout as `rate`).
    public var kld: [Double]
    /// Δ = Σ RATE_j log(m·RATE_j), the entropic deviation from uniform (m = number of scored entries).
    public var delta: Double
    /// Effective sample size 100/(1+Δ), in percent.
    public var ess: Double
    /// Posterior mean μ of the effect-size analogue (p).
    public var effectSizeMean: [Double]
    /// Dimension of the range of Σ that was used (p when Σ is full rank).
    public var rank: Int
    /// True when Σ was singular or ill-conditioned and the eigendecomposition pseudo-inverse was used.
    public var usedPseudoInverse: Bool
}

/// The sets q for which a KLD is computed, after validating `nullify` and `groups`.
struct RATEPlan {
    let p: Int
    /// One sorted set per scored entry.
    let sets: [[Int]]
    /// Output position of each set.
    let outputIndex: [Int]
    /// Length of the output (p, or the number of groups).
    let outputCount: Int
    /// True for plain RATE (every set is one variable, index = position): the vectorised path.
    let singleVariables: Bool
    /// The nullified set l for conditional RATE without groups (sets are l ∪ {j}, j = outputIndex).
    let nullifiedOnly: [Int]?

    init(p: Int, options: RATEOptions) throws {
        self.p = p
        guard options.jitter >= 0 && options.jitter.isFinite else {
            throw SwiftAttrError.invalid("jitter must be finite and non-negative (got \(options.jitter))")
        }
        var nullified = Set<Int>()
        for (i, j) in options.nullify.enumerated() {
            guard j >= 0 && j < p else {
                throw SwiftAttrError(.outOfRange, "nullify[\(i)] = \(j) is out of range 0..<\(p)")
            }
            nullified.insert(j)
        }
        let l = nullified.sorted()
        if let groups = options.groups {
            guard !groups.isEmpty else { throw SwiftAttrError.invalid("groups: no groups given") }
            var sets: [[Int]] = []
            for (g, group) in groups.enumerated() {
                guard !group.isEmpty else { throw SwiftAttrError.invalid("groups[\(g)] is empty") }
                var members = Set<Int>()
                for (i, j) in group.enumerated() {
                    guard j >= 0 && j < p else {
                        throw SwiftAttrError(.outOfRange, "groups[\(g)][\(i)] = \(j) is out of range 0..<\(p)")
                    }
                    guard !nullified.contains(j) else {
                        throw SwiftAttrError.invalid("groups[\(g)] contains variable \(j), which is nullified")
                    }
                    members.insert(j)
                }
                sets.append(members.union(nullified).sorted())
            }
            self.sets = sets
            outputIndex = Array(0..<groups.count)
            outputCount = groups.count
            singleVariables = false
            nullifiedOnly = nil
        } else {
            guard l.count < p else { throw SwiftAttrError.invalid("nullify lists every variable (\(p)); nothing is left to rank") }
            if l.isEmpty {
                sets = []
                outputIndex = Array(0..<p)
                singleVariables = true
                nullifiedOnly = nil
            } else {
                var s: [[Int]] = []
                var o: [Int] = []
                for j in 0..<p where !nullified.contains(j) {
                    s.append(Set(l + [j]).sorted())
                    o.append(j)
                }
                sets = s
                outputIndex = o
                singleVariables = false
                nullifiedOnly = l
            }
            outputCount = p
        }
    }
}

/// Shared input checks of the RATE entry points.
enum RATEValidation {
    /// Throws `.invalidArgument` naming `name` when the n×n row-major `a` is not symmetric to a relative
    /// tolerance of 1e-8 (entries) plus 1e-12 of the largest magnitude.
    static func symmetric(_ a: UnsafeBufferPointer<Double>, n: Int, _ name: String) throws {
        var largest = 0.0
        for v in a { largest = max(largest, abs(v)) }
        let floor = 1e-12 * largest
        // Tiles of 64×64 keep both the row and the column reads in cache.
        let tile = 64
        var i0 = 0
        while i0 < n {
            var j0 = i0
            while j0 < n {
                for i in i0..<min(i0 + tile, n) {
                    for j in max(j0, i + 1)..<max(max(j0, i + 1), min(j0 + tile, n)) {
                        let x = a[i * n + j], y = a[j * n + i]
                        if abs(x - y) > floor + 1e-8 * max(abs(x), abs(y)) {
                            throw SwiftAttrError.invalid("\(name) is not symmetric: [\(i),\(j)] = \(x) but [\(j),\(i)] = \(y)")
                        }
                    }
                }
                j0 += tile
            }
            i0 += tile
        }
    }
}
