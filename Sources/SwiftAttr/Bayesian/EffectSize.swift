/// Effect-size analogues: from a posterior over a model's outputs f (n examples) to the Gaussian
/// posterior of β̃ = P f (Crawford et al. 2019, §2.2; Ish-Horowicz et al. 2019, eq. 3).
///
/// - covariance projection P = X_cᵀ/(n−1): β̃_j = cov(x_j, f), suited to collinear inputs (default);
/// - pseudoinverse projection P = X⁺ = V S⁻¹ Uᵀ (numerical-rank cutoff max(n,p)·ε·s₁).
///
/// From N(M_F, V_F): μ = P M_F, Σ = P V_F Pᵀ; from S draws: their sample mean and covariance
/// (Σ = BᵀB with B = (F − f̄) Pᵀ/√(S−1), never an n×n covariance); from a Bayesian last layer
/// f = H w + b with w ∼ N(m_W, Σ_W): μ = P(H m_W + b), Σ = (PH) Σ_W (PH)ᵀ (never n×n).
///
/// Low-rank path (n < p or a rank r given): with the truncated SVD X_c ≈ U_r S_r V_rᵀ,
/// P ≈ V_r diag(w) U_rᵀ (w = s/(n−1) or 1/s), so Σ = V_r K V_rᵀ with the r×r core
/// K = diag(w) U_rᵀ V_F U_r diag(w): O(p r²) time and O(p r) memory, no p×p matrix.
public enum EffectSizeProjection: Int32, Sendable, CaseIterable {
    /// β̃ = X_cᵀ(f − f̄)/(n−1).
    case covariance = 0
    /// β̃ = X⁺ f.
    case pseudoinverse = 1
}

/// A posterior over the outputs f (classes × n) of a Bayesian model.
public enum OutputPosterior {
    /// f_c ∼ N(mean[c], covariance[c]): mean C×n, covariance C×n×n (row-major).
    case gaussian(mean: UnsafeBufferPointer<Double>, covariance: UnsafeBufferPointer<Double>)
    /// Posterior draws, C×S×n.
    case draws(UnsafeBufferPointer<Double>, count: Int)
    /// f_c = H w_c + b_c, w_c ∼ N(weightMean[:, c], weightCovariance[c]): H n×h, weightMean h×C,
    /// weightCovariance C×h×h, bias C (nil: 0).
    case lastLayer(features: UnsafeBufferPointer<Double>, hidden: Int, weightMean: UnsafeBufferPointer<Double>,
                   weightCovariance: UnsafeBufferPointer<Double>, bias: UnsafeBufferPointer<Double>?)
}

extension RATE {
    /// RATE for every output class from the inputs X (n×p row-major) and a posterior over f.
    ///
    /// `rank`: nil chooses the dense path when n ≥ p and the low-rank path (r = numerical rank) when
    /// n < p; a value forces the low-rank path with at most that many singular directions of X.
    public static func fromOutputs(
        X: UnsafeBufferPointer<Double>, examples n: Int, variables p: Int, classes: Int,
        posterior: OutputPosterior, projection: EffectSizeProjection = .covariance, rank: Int? = nil,
        options: RATEOptions = .init()
    ) throws -> [RATEResult] {
        try Check.positive(n, "n")
        try Check.positive(p, "p")
        try Check.positive(classes, "classes")
        guard try X.count == Check.count([n, p], "X") else { throw SwiftAttrError.shape("X: expected \(n)×\(p) = \(n * p) values, got \(X.count)") }
        if projection == .covariance && n < 2 { throw SwiftAttrError.invalid("X: the covariance projection needs n ≥ 2 examples (got \(n))") }
        if let rank { guard rank >= 1 else { throw SwiftAttrError.invalid("rank must be positive (got \(rank))") } }
        try Check.finite(X, "X")
        try validate(posterior, n: n, classes: classes)
        let plan = try RATEPlan(p: p, options: options)
        let lowRank = rank != nil || n < p
        var results: [RATEResult] = []
        if lowRank {
            let lr = try LowRankProjection(X: X, n: n, p: p, projection: projection, rank: rank)
            for c in 0..<classes {
                let (m, core) = lr.core(posterior, n: n, classIndex: c, classes: classes)
                let mean = lr.rightBasis(m, 1)
                let factor = try CovarianceFactor.fromCore(core, r: lr.r, p: p, jitter: options.jitter,
                                                           name: covarianceName(posterior, classIndex: c, classes: classes), basis: lr.rightBasis)
                results.append(try compute(mean: mean, factor: factor, plan: plan, exactKLD: options.exactKLD))
            }
        } else {
            let pt = try denseProjectionTransposed(X: X, n: n, p: p, projection: projection)
            for c in 0..<classes {
                let (mean, factor) = try denseClass(posterior, pt: pt, n: n, p: p, classIndex: c, classes: classes, jitter: options.jitter)
                results.append(try compute(mean: mean, factor: factor, plan: plan, exactKLD: options.exactKLD))
            }
        }
        return results
    }

    /// The caller's name of the argument class c's effect-size covariance comes from, for messages.
    static func covarianceName(_ posterior: OutputPosterior, classIndex c: Int, classes: Int) -> String {
        let suffix = classes > 1 ? "[\(c)]" : ""
        switch posterior {
        case .gaussian: return "V_F" + suffix
        case .draws: return "f_draws" + suffix
        case .lastLayer: return "W_cov" + suffix
        }
    }

    /// Shape, finiteness and symmetry checks of a posterior over f.
    static func validate(_ posterior: OutputPosterior, n: Int, classes: Int) throws {
        switch posterior {
        case .gaussian(let mean, let covariance):
            guard try mean.count == Check.count([classes, n], "M_F") else { throw SwiftAttrError.shape("M_F: expected \(classes)×\(n) values, got \(mean.count)") }
            guard try covariance.count == Check.count([classes, n, n], "V_F") else {
                throw SwiftAttrError.shape("V_F: expected \(classes)×\(n)×\(n) = \(classes * n * n) values, got \(covariance.count)")
            }
            try Check.finite(mean, "M_F")
            try Check.finite(covariance, "V_F")
            for c in 0..<classes {
                try RATEValidation.symmetric(UnsafeBufferPointer(rebasing: covariance[(c * n * n)..<((c + 1) * n * n)]), n: n,
                                             classes > 1 ? "V_F[\(c)]" : "V_F")
            }
        case .draws(let draws, let count):
            guard count >= 2 else { throw SwiftAttrError.invalid("f_draws: at least 2 draws are needed (got \(count))") }
            guard try draws.count == Check.count([classes, count, n], "f_draws") else {
                throw SwiftAttrError.shape("f_draws: expected \(classes)×\(count)×\(n) = \(classes * count * n) values, got \(draws.count)")
            }
            try Check.finite(draws, "f_draws")
        case .lastLayer(let features, let hidden, let weightMean, let weightCovariance, let bias):
            try Check.positive(hidden, "h")
            guard try features.count == Check.count([n, hidden], "H") else { throw SwiftAttrError.shape("H: expected \(n)×\(hidden) values, got \(features.count)") }
            guard try weightMean.count == Check.count([hidden, classes], "W_mean") else {
                throw SwiftAttrError.shape("W_mean: expected \(hidden)×\(classes) values, got \(weightMean.count)")
            }
            guard try weightCovariance.count == Check.count([classes, hidden, hidden], "W_cov") else {
                throw SwiftAttrError.shape("W_cov: expected \(classes)×\(hidden)×\(hidden) values, got \(weightCovariance.count)")
            }
            try Check.finite(features, "H")
            try Check.finite(weightMean, "W_mean")
            try Check.finite(weightCovariance, "W_cov")
            if let bias {
                guard bias.count == classes else { throw SwiftAttrError.shape("b: expected \(classes) values, got \(bias.count)") }
                try Check.finite(bias, "b")
            }
            let hh = hidden * hidden
            for c in 0..<classes {
                try RATEValidation.symmetric(UnsafeBufferPointer(rebasing: weightCovariance[(c * hh)..<((c + 1) * hh)]), n: hidden,
                                             classes > 1 ? "W_cov[\(c)]" : "W_cov")
            }
        }
    }

    /// Pᵀ (n×p row-major) of the dense path.
    static func denseProjectionTransposed(X: UnsafeBufferPointer<Double>, n: Int, p: Int, projection: EffectSizeProjection) throws -> [Double] {
        switch projection {
        case .covariance:
            let means = columnMeans(X, n: n, p: p)
            var pt = [Double](repeating: 0, count: n * p)
            let scale = 1 / Double(n - 1)
            for i in 0..<n { for j in 0..<p { pt[i * p + j] = (X[i * p + j] - means[j]) * scale } }
            return pt
        case .pseudoinverse:
            var a = Array(X)
            let (u, s, vt) = try a.withUnsafeMutableBufferPointer { try LAPACK.gesddRowMajor($0.baseAddress!, m: n, n: p, what: "X") }
            let k = min(n, p)
            let cut = (s.first ?? 0) * Double(max(n, p)) * Double.ulpOfOne
            // Pᵀ = U diag(1/s) Vᵀ over the kept singular values.
            var us = [Double](repeating: 0, count: n * k)
            for i in 0..<n { for c in 0..<k where s[c] > cut && s[c] > 0 { us[i * k + c] = u[i * k + c] / s[c] } }
            var pt = [Double](repeating: 0, count: n * p)
            BLAS.dgemm(m: n, n: p, k: k, a: us, b: vt, c: &pt)
            return pt
        }
    }

    /// μ and the factored Σ of one class on the dense path.
    static func denseClass(_ posterior: OutputPosterior, pt: [Double], n: Int, p: Int, classIndex c: Int, classes: Int,
                           jitter: Double) throws -> ([Double], CovarianceFactor) {
        let name = covarianceName(posterior, classIndex: c, classes: classes)
        switch posterior {
        case .gaussian(let meanF, let covF):
            var mean = [Double](repeating: 0, count: p)
            BLAS.dgemm(transA: true, m: p, n: 1, k: n, a: pt, b: meanF.baseAddress! + c * n, c: &mean)
            // Σ = P V_F Pᵀ. When V_F = L Lᵀ is positive definite: Σ = WᵀW with W = Lᵀ Pᵀ
            // (n³/3 + n²p + np² flops instead of 2n²p + 2np²).
            var factor = Array(UnsafeBufferPointer(rebasing: covF[(c * n * n)..<((c + 1) * n * n)]))
            if factor.withUnsafeMutableBufferPointer({ LAPACK.potrfLower($0.baseAddress!, n: n) }) == 0 {
                // Column-major L is the row-major upper-triangular Lᵀ.
                var w = pt
                factor.withUnsafeBufferPointer { u in
                    w.withUnsafeMutableBufferPointer { LAPACK.trmmUpperLeft(n: n, m: p, alpha: 1, u: u.baseAddress!, b: $0.baseAddress!) }
                }
                var sigma = [Double](repeating: 0, count: p * p)
                w.withUnsafeBufferPointer { wp in
                    sigma.withUnsafeMutableBufferPointer { s in
                        LAPACK.syrkUpper(trans: true, n: p, k: n, a: wp.baseAddress!, lda: p, beta: 0, c: s.baseAddress!)
                        LAPACK.symmetrizeFromUpper(s.baseAddress!, n: p)
                    }
                }
                return (mean, try CovarianceFactor.dense(sigma, p: p, jitter: jitter, name: name))
            }
            factor = []
            var t = [Double](repeating: 0, count: n * p)
            BLAS.dgemm(m: n, n: p, k: n, a: covF.baseAddress! + c * n * n, b: pt, c: &t)
            var sigma = [Double](repeating: 0, count: p * p)
            BLAS.dgemm(transA: true, m: p, n: p, k: n, a: pt, b: t, c: &sigma)
            symmetrizeAverage(&sigma, p)
            return (mean, try CovarianceFactor.dense(sigma, p: p, jitter: jitter, name: name))
        case .draws(let draws, let s):
            let (centred, fbar) = centreDraws(draws, s: s, n: n, classIndex: c)
            var mean = [Double](repeating: 0, count: p)
            BLAS.dgemm(transA: true, m: p, n: 1, k: n, a: pt, b: fbar, c: &mean)
            var b = [Double](repeating: 0, count: s * p)
            BLAS.dgemm(m: s, n: p, k: n, alpha: 1 / Double(s - 1).squareRoot(), a: centred, b: pt, c: &b)
            return (mean, try CovarianceFactor.thin(b, k: s, p: p, jitter: jitter, name: name))
        case .lastLayer(let h, let hidden, let wMean, let wCov, let bias):
            let f = lastLayerMean(h, hidden: hidden, weightMean: wMean, bias: bias, n: n, classIndex: c, classes: classes)
            var mean = [Double](repeating: 0, count: p)
            BLAS.dgemm(transA: true, m: p, n: 1, k: n, a: pt, b: f, c: &mean)
            // Aᵀ = Hᵀ Pᵀ (h×p); Σ = A Σ_W Aᵀ = BᵀB with B = Rᵀ Aᵀ, Σ_W = R Rᵀ.
            var at = [Double](repeating: 0, count: hidden * p)
            BLAS.dgemm(transA: true, m: hidden, n: p, k: n, a: h.baseAddress!, b: pt, c: &at)
            let (rt, rows) = try squareRootTransposed(wCov.baseAddress! + c * hidden * hidden, hidden: hidden, name: name)
            var b = [Double](repeating: 0, count: rows * p)
            BLAS.dgemm(m: rows, n: p, k: hidden, a: rt, b: at, c: &b)
            return (mean, try CovarianceFactor.thin(b, k: rows, p: p, jitter: jitter, name: name))
        }
    }

    /// Rᵀ (rows×h) with Σ_W = R Rᵀ from Σ_W's eigendecomposition, dropping null directions. Throws when
    /// Σ_W has a clearly negative eigenvalue.
    static func squareRootTransposed(_ cov: UnsafePointer<Double>, hidden h: Int, name: String) throws -> ([Double], Int) {
        var a = Array(UnsafeBufferPointer(start: cov, count: h * h))
        let values = try a.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: h, what: name) }
        try CovarianceFactor.checkSemiDefinite(values, name)
        let top = max(values.last ?? 0, 0)
        var rows: [Int] = []
        for i in 0..<h where values[i] > top * CovarianceFactor.cutoff(h) { rows.append(i) }
        var rt = [Double](repeating: 0, count: rows.count * h)
        for (r, i) in rows.enumerated() {
            let s = values[i].squareRoot()
            for j in 0..<h { rt[r * h + j] = a[i * h + j] * s }
        }
        return (rt, rows.count)
    }

    /// f = H w_c + b_c for class c (n values).
    static func lastLayerMean(_ h: UnsafeBufferPointer<Double>, hidden: Int, weightMean: UnsafeBufferPointer<Double>,
                              bias: UnsafeBufferPointer<Double>?, n: Int, classIndex c: Int, classes: Int) -> [Double] {
        var f = [Double](repeating: bias?[c] ?? 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for k in 0..<hidden { s += h[i * hidden + k] * weightMean[k * classes + c] }
            f[i] += s
        }
        return f
    }

    /// Draws of class c centred over draws (S×n) and their mean (n).
    static func centreDraws(_ draws: UnsafeBufferPointer<Double>, s: Int, n: Int, classIndex c: Int) -> ([Double], [Double]) {
        let base = c * s * n
        // Running mean (m += (x − m)/(d+1)): a sum of S draws near the float64 limit would overflow.
        var mean = [Double](repeating: 0, count: n)
        for d in 0..<s { for i in 0..<n { mean[i] += (draws[base + d * n + i] - mean[i]) / Double(d + 1) } }
        var centred = [Double](repeating: 0, count: s * n)
        for d in 0..<s { for i in 0..<n { centred[d * n + i] = draws[base + d * n + i] - mean[i] } }
        return (centred, mean)
    }

    static func columnMeans(_ x: UnsafeBufferPointer<Double>, n: Int, p: Int) -> [Double] {
        var means = [Double](repeating: 0, count: p)
        for i in 0..<n { for j in 0..<p { means[j] += x[i * p + j] } }
        for j in 0..<p { means[j] /= Double(n) }
        return means
    }

    static func symmetrizeAverage(_ a: inout [Double], _ p: Int) {
        let tile = 64
        a.withUnsafeMutableBufferPointer { b in
            var i0 = 0
            while i0 < p {
                var j0 = i0
                while j0 < p {
                    for i in i0..<min(i0 + tile, p) {
                        for j in max(j0, i + 1)..<max(max(j0, i + 1), min(j0 + tile, p)) {
                            let v = 0.5 * (b[i * p + j] + b[j * p + i])
                            b[i * p + j] = v
                            b[j * p + i] = v
                        }
                    }
                    j0 += tile
                }
                i0 += tile
            }
        }
    }
}

/// The truncated SVD of X (centred for the covariance projection) behind the low-rank path.
struct LowRankProjection {
    let n: Int, p: Int, r: Int
    /// U_r, n×r row-major.
    let u: [Double]
    /// Singular values s (r, descending).
    let s: [Double]
    /// Projection weights: s/(n−1) (covariance) or 1/s (pseudoinverse).
    let w: [Double]
    /// V_rᵀ (r×p) when it was computed explicitly (n > p); otherwise V_r = X_cᵀU_r S⁻¹ is applied lazily.
    let vt: [Double]?
    let x: UnsafeBufferPointer<Double>
    /// Column means when centring.
    let means: [Double]?

    static let blockWidth = 512

    init(X: UnsafeBufferPointer<Double>, n: Int, p: Int, projection: EffectSizeProjection, rank: Int?) throws {
        self.n = n
        self.p = p
        self.x = X
        let centre: Bool
        switch projection {
        case .covariance: centre = true
        case .pseudoinverse: centre = false
        }
        let means = centre ? RATE.columnMeans(X, n: n, p: p) : nil
        self.means = means
        let small = min(n, p)
        var gram = [Double](repeating: 0, count: small * small)
        var centredCopy: [Double] = []
        if n <= p {
            // X_c X_cᵀ accumulated over centred column blocks.
            var first = true
            gram.withUnsafeMutableBufferPointer { g in
                LowRankProjection.forEachBlock(X, n: n, p: p, means: means) { _, width, block, ld in
                    LAPACK.syrkUpper(trans: false, n: n, k: width, a: block, lda: ld, beta: first ? 0 : 1, c: g.baseAddress!)
                    first = false
                }
                LAPACK.symmetrizeFromUpper(g.baseAddress!, n: n)
            }
        } else {
            centredCopy = Array(X)
            if let means { for i in 0..<n { for j in 0..<p { centredCopy[i * p + j] -= means[j] } } }
            centredCopy.withUnsafeBufferPointer { xc in
                gram.withUnsafeMutableBufferPointer { g in
                    LAPACK.syrkUpper(trans: true, n: p, k: n, a: xc.baseAddress!, lda: p, beta: 0, c: g.baseAddress!)
                    LAPACK.symmetrizeFromUpper(g.baseAddress!, n: p)
                }
            }
        }
        try Check.finiteResult(gram, "the Gram matrix of X", hint: "; rescale X")
        let values = try gram.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: small, what: "X") }
        let top = values.last ?? 0
        var kept: [Int] = []
        if top > 0 {
            for i in stride(from: small - 1, through: 0, by: -1) where values[i] > top * CovarianceFactor.cutoff(max(n, p)) {
                kept.append(i)
            }
        }
        if let rank, kept.count > rank { kept = Array(kept.prefix(rank)) }
        guard !kept.isEmpty else { throw SwiftAttrError(.numerical, "X has no variation (numerical rank 0)") }
        let r = kept.count
        self.r = r
        let s = kept.map { values[$0].squareRoot() }
        self.s = s
        w = centre ? s.map { $0 / Double(n - 1) } : s.map { 1 / $0 }
        var u = [Double](repeating: 0, count: n * r)
        if n <= p {
            for (c, i) in kept.enumerated() { for row in 0..<n { u[row * r + c] = gram[i * n + row] } }
            vt = nil
        } else {
            var v = [Double](repeating: 0, count: r * p)
            for (c, i) in kept.enumerated() { for j in 0..<p { v[c * p + j] = gram[i * p + j] } }
            // U_r = X_c V_r S⁻¹.
            BLAS.dgemm(transB: true, m: n, n: r, k: p, a: centredCopy, b: v, c: &u)
            for row in 0..<n { for c in 0..<r { u[row * r + c] /= s[c] } }
            vt = v
        }
        self.u = u
    }

    /// Calls `body(start, width, pointer, ld)` for column blocks of X_c (centred copies) or, without
    /// centring, once for X itself.
    static func forEachBlock(_ x: UnsafeBufferPointer<Double>, n: Int, p: Int, means: [Double]?,
                             _ body: (Int, Int, UnsafePointer<Double>, Int) -> Void) {
        guard let means else {
            body(0, p, x.baseAddress!, p)
            return
        }
        let width = min(blockWidth, p)
        var buffer = [Double](repeating: 0, count: n * width)
        var start = 0
        while start < p {
            let b = min(width, p - start)
            buffer.withUnsafeMutableBufferPointer { buf in
                for i in 0..<n {
                    let src = x.baseAddress! + i * p + start
                    let dst = buf.baseAddress! + i * b
                    for j in 0..<b { dst[j] = src[j] - means[start + j] }
                }
                body(start, b, UnsafePointer(buf.baseAddress!), b)
            }
            start += b
        }
    }

    /// (V_r Q)ᵀ, t×p, for the r×t row-major coefficients Q.
    func rightBasis(_ q: [Double], _ t: Int) -> [Double] {
        var out = [Double](repeating: 0, count: t * p)
        guard t > 0 else { return out }
        if let vt {
            BLAS.dgemm(transA: true, m: t, n: p, k: r, a: q, b: vt, c: &out)
            return out
        }
        // V_r Q = X_cᵀ M with M = U_r S⁻¹ Q (n×t): rows of the result are Mᵀ X_c, block by block.
        var m = [Double](repeating: 0, count: n * t)
        var us = u
        for row in 0..<n { for c in 0..<r { us[row * r + c] /= s[c] } }
        BLAS.dgemm(m: n, n: t, k: r, a: us, b: q, c: &m)
        out.withUnsafeMutableBufferPointer { o in
            m.withUnsafeBufferPointer { mp in
                LowRankProjection.forEachBlock(x, n: n, p: p, means: means) { start, width, block, ld in
                    BLAS.dgemm(transA: true, m: t, n: width, k: n, a: mp.baseAddress!, b: block, ldb: ld,
                               c: o.baseAddress! + start, ldc: p)
                }
            }
        }
        return out
    }

    /// The r-dimensional mean m and core K of class c: β̃ ≈ V_r z with z ∼ N(m, K).
    func core(_ posterior: OutputPosterior, n: Int, classIndex c: Int, classes: Int) -> ([Double], [Double]) {
        // Weighted left vectors Uw = U_r diag(w) (n×r).
        var uw = u
        for row in 0..<n { for k in 0..<r { uw[row * r + k] *= w[k] } }
        var m = [Double](repeating: 0, count: r)
        var k = [Double](repeating: 0, count: r * r)
        switch posterior {
        case .gaussian(let meanF, let covF):
            BLAS.dgemm(transA: true, m: r, n: 1, k: n, a: uw, b: meanF.baseAddress! + c * n, c: &m)
            var t = [Double](repeating: 0, count: n * r)
            BLAS.dgemm(m: n, n: r, k: n, a: covF.baseAddress! + c * n * n, b: uw, c: &t)
            BLAS.dgemm(transA: true, m: r, n: r, k: n, a: uw, b: t, c: &k)
        case .draws(let draws, let s):
            let (centred, fbar) = RATE.centreDraws(draws, s: s, n: n, classIndex: c)
            BLAS.dgemm(transA: true, m: r, n: 1, k: n, a: uw, b: fbar, c: &m)
            var b = [Double](repeating: 0, count: s * r)
            BLAS.dgemm(m: s, n: r, k: n, alpha: 1 / Double(s - 1).squareRoot(), a: centred, b: uw, c: &b)
            BLAS.dgemm(transA: true, m: r, n: r, k: s, a: b, b: b, c: &k)
        case .lastLayer(let h, let hidden, let wMean, let wCov, let bias):
            let f = RATE.lastLayerMean(h, hidden: hidden, weightMean: wMean, bias: bias, n: n, classIndex: c, classes: classes)
            BLAS.dgemm(transA: true, m: r, n: 1, k: n, a: uw, b: f, c: &m)
            // A = Uwᵀ H (r×h); K = A Σ_W Aᵀ.
            var a = [Double](repeating: 0, count: r * hidden)
            BLAS.dgemm(transA: true, m: r, n: hidden, k: n, a: uw, b: h.baseAddress!, c: &a)
            var t = [Double](repeating: 0, count: r * hidden)
            BLAS.dgemm(m: r, n: hidden, k: hidden, a: a, b: wCov.baseAddress! + c * hidden * hidden, c: &t)
            BLAS.dgemm(transB: true, m: r, n: r, k: hidden, a: t, b: a, c: &k)
        }
        RATE.symmetrizeAverage(&k, r)
        return (m, k)
    }
}
