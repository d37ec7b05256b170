/// The covariance Σ (p×p) of the effect-size analogue, factored once for every α_j of RATE.
///
/// Two forms:
/// - Cholesky: Σ = L Lᵀ with an acceptable condition number. The p×p column-major buffer keeps Σ in its
///   strictly upper triangle and L⁻¹ in its lower triangle, so Λ = L⁻ᵀL⁻¹ gives Λ_jj = ‖L⁻¹e_j‖² (a
///   contiguous column) and Λ_qq from columns, without forming Λ.
/// - Spectral: Σ = Σ_k d_k g_k g_kᵀ with orthonormal g_k (rows of `basisT`, t×p) and d_k > 0: a
///   singular, ill-conditioned or low-rank Σ. Λ⁺ = Σ_k g_k g_kᵀ/d_k (Moore–Penrose pseudo-inverse).
final class CovarianceFactor {
    enum Form {
        case cholesky(buffer: [Double])
        case spectral(basisT: [Double], d: [Double])
        /// Σ restricted to the variables with posterior variance (`active`, ascending), factored in
        /// `inner`; the others have Σ_jj = 0 and KLD 0.
        case embedded(inner: CovarianceFactor, active: [Int], position: [Int])
    }

    let p: Int
    let form: Form
    /// Σ_jj (after jitter).
    let sigmaDiag: [Double]
    /// Λ_jj, or Λ⁺_jj in the spectral form.
    let lambdaDiag: [Double]
    /// h_j = (GGᵀ)_jj: 1 for a full-rank Σ, the share of e_j inside Σ's range otherwise.
    let leverage: [Double]
    /// Dimension of the range of Σ used.
    let rank: Int
    let usedPseudoInverse: Bool

    private init(p: Int, form: Form, sigmaDiag: [Double], lambdaDiag: [Double], leverage: [Double], rank: Int, pinv: Bool) {
        self.p = p
        self.form = form
        self.sigmaDiag = sigmaDiag
        self.lambdaDiag = lambdaDiag
        self.leverage = leverage
        self.rank = rank
        self.usedPseudoInverse = pinv
    }

    /// Relative eigenvalue cutoff of the pseudo-inverse and the reciprocal condition number below which
    /// a successful Cholesky factorisation is still not trusted: 10·dim·ε.
    static func cutoff(_ dim: Int) -> Double { 10 * Double(max(dim, 1)) * Double.ulpOfOne }

    /// Relative tolerance of the semi-definiteness test: an eigenvalue below −1e-8·max|eigenvalue| is a
    /// covariance error, not rounding (rounding leaves O(dim·ε) relative).
    static let definiteTolerance = 1e-8

    /// Throws `.invalidArgument` naming `name` when the eigenvalues `values` (ascending) of a symmetric
    /// matrix show it is not positive semi-definite.
    static func checkSemiDefinite(_ values: [Double], _ name: String) throws {
        guard let low = values.first, let high = values.last else { return }
        let scale = max(abs(low), abs(high))
        if low < -definiteTolerance * scale {
            throw SwiftAttrError.invalid("\(name) is not positive semi-definite (eigenvalue \(low), largest magnitude \(scale))")
        }
    }

    /// Factors the symmetric p×p matrix `sigma` (either layout; consumed). `jitter` adds
    /// jitter·mean(diag Σ) to the diagonal. Cholesky first; when it fails or the reciprocal condition
    /// number is below ``cutoff(_:)``, the eigendecomposition pseudo-inverse. Throws `.invalidArgument`
    /// naming `name` (the caller's argument Σ comes from) when Σ is not positive semi-definite.
    static func dense(_ sigma: [Double], p: Int, jitter: Double, name: String) throws -> CovarianceFactor {
        // Variables without posterior variance (a constant column of X, say) would make Σ singular and
        // push every variable onto the slower pseudo-inverse path: set them aside first. A semi-definite
        // Σ has a non-negative diagonal and zero rows where the diagonal is zero (|Σ_ij|² ≤ Σ_ii Σ_jj).
        try Check.finiteResult(sigma, "the effect-size covariance from \(name)", hint: "; rescale X or the outputs")
        var largest = 0.0
        for j in 0..<p { largest = max(largest, abs(sigma[j * p + j])) }
        for j in 0..<p where sigma[j * p + j] < -definiteTolerance * largest {
            throw SwiftAttrError.invalid("\(name) is not positive semi-definite (diagonal entry \(j) of the effect-size covariance is \(sigma[j * p + j]))")
        }
        let active = (0..<p).filter { sigma[$0 * p + $0] > largest * 1e-24 }
        for j in 0..<p where sigma[j * p + j] <= largest * 1e-24 {
            for i in 0..<p where abs(sigma[i * p + j]) > definiteTolerance * largest {
                throw SwiftAttrError.invalid("\(name) is not positive semi-definite (effect-size variance \(j) is 0 but its covariance with \(i) is \(sigma[i * p + j]))")
            }
        }
        guard !active.isEmpty, active.count < p else { return try denseFactor(sigma, p: p, jitter: jitter, name: name) }
        let m = active.count
        var reduced = [Double](repeating: 0, count: m * m)
        for (x, i) in active.enumerated() { for (y, j) in active.enumerated() { reduced[x * m + y] = sigma[i * p + j] } }
        let inner = try denseFactor(reduced, p: m, jitter: jitter, name: name)
        var position = [Int](repeating: -1, count: p)
        var sigmaDiag = [Double](repeating: 0, count: p)
        var lambdaDiag = [Double](repeating: 0, count: p)
        var leverage = [Double](repeating: 0, count: p)
        for (x, i) in active.enumerated() {
            position[i] = x
            sigmaDiag[i] = inner.sigmaDiag[x]
            lambdaDiag[i] = inner.lambdaDiag[x]
            leverage[i] = inner.leverage[x]
        }
        return CovarianceFactor(p: p, form: .embedded(inner: inner, active: active, position: position), sigmaDiag: sigmaDiag,
                                lambdaDiag: lambdaDiag, leverage: leverage, rank: inner.rank, pinv: true)
    }

    /// ``dense(_:p:jitter:)`` without setting variables aside.
    private static func denseFactor(_ sigma: [Double], p: Int, jitter: Double, name: String) throws -> CovarianceFactor {
        var a = sigma
        var diag = [Double](repeating: 0, count: p)
        var trace = 0.0
        for j in 0..<p { trace += a[j * p + j] }
        let ridge = jitter > 0 ? jitter * trace / Double(p) : 0
        for j in 0..<p {
            a[j * p + j] += ridge
            diag[j] = a[j * p + j]
        }
        // ‖Σ‖₁ for the condition estimate.
        var anorm = 0.0
        for j in 0..<p {
            var s = 0.0
            for i in 0..<p { s += abs(a[j * p + i]) }
            anorm = max(anorm, s)
        }
        let choleskyInfo = a.withUnsafeMutableBufferPointer { LAPACK.potrfLower($0.baseAddress!, n: p) }
        if choleskyInfo == 0 {
            let rcond = a.withUnsafeBufferPointer { LAPACK.poconLower($0.baseAddress!, n: p, anorm: anorm) }
            if rcond > cutoff(p) {
                let info = a.withUnsafeMutableBufferPointer { LAPACK.trtriLower($0.baseAddress!, n: p) }
                if info == 0 {
                    var lambda = [Double](repeating: 0, count: p)
                    a.withUnsafeBufferPointer { b in
                        for j in 0..<p {
                            var s = 0.0
                            let col = b.baseAddress! + j * p
                            for i in j..<p { s += col[i] * col[i] }
                            lambda[j] = s
                        }
                    }
                    return CovarianceFactor(p: p, form: .cholesky(buffer: a), sigmaDiag: diag, lambdaDiag: lambda,
                                            leverage: [Double](repeating: 1, count: p), rank: p, pinv: false)
                }
            }
        }
        // Restore Σ's lower triangle (column-major) from the untouched upper triangle.
        for j in 0..<p {
            a[j * p + j] = diag[j]
            for i in (j + 1)..<max(j + 1, p) { a[j * p + i] = a[i * p + j] }
        }
        let values = try a.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: p, what: "effect-size covariance") }
        try checkSemiDefinite(values, name)
        // Eigenvector k is the contiguous column k of `a`.
        let top = values.last ?? 0
        var kept: [Int] = []
        if top > 0 { for k in 0..<p where values[k] > top * cutoff(p) { kept.append(k) } }
        var basisT = [Double](repeating: 0, count: kept.count * p)
        for (row, k) in kept.enumerated() {
            for i in 0..<p { basisT[row * p + i] = a[k * p + i] }
        }
        return spectral(basisT: basisT, d: kept.map { values[$0] }, p: p, pinv: true)
    }

    /// The spectral form from orthonormal rows `basisT` (t×p) and positive `d` (t).
    static func spectral(basisT: [Double], d: [Double], p: Int, pinv: Bool) -> CovarianceFactor {
        let t = d.count
        var sigma = [Double](repeating: 0, count: p)
        var lambda = [Double](repeating: 0, count: p)
        var leverage = [Double](repeating: 0, count: p)
        basisT.withUnsafeBufferPointer { g in
            for k in 0..<t {
                let row = g.baseAddress! + k * p
                let dk = d[k], inv = 1 / d[k]
                for j in 0..<p {
                    let v = row[j] * row[j]
                    sigma[j] += dk * v
                    lambda[j] += inv * v
                    leverage[j] += v
                }
            }
        }
        return CovarianceFactor(p: p, form: .spectral(basisT: basisT, d: d), sigmaDiag: sigma, lambdaDiag: lambda,
                                leverage: leverage, rank: t, pinv: pinv || t < p)
    }

    /// Σ = BᵀB from the k×p row-major `b` (consumed): dense when k ≥ p, otherwise the spectral form from
    /// the k×k Gram matrix BBᵀ = U diag(d) Uᵀ, g_k = Bᵀu_k/√d_k. Never forms p×p when k < p.
    static func thin(_ b: [Double], k: Int, p: Int, jitter: Double, name: String) throws -> CovarianceFactor {
        if k >= p {
            var sigma = [Double](repeating: 0, count: p * p)
            b.withUnsafeBufferPointer { bp in
                sigma.withUnsafeMutableBufferPointer { s in
                    LAPACK.syrkUpper(trans: true, n: p, k: k, a: bp.baseAddress!, lda: p, beta: 0, c: s.baseAddress!)
                    LAPACK.symmetrizeFromUpper(s.baseAddress!, n: p)
                }
            }
            return try dense(sigma, p: p, jitter: jitter, name: name)
        }
        var gram = [Double](repeating: 0, count: k * k)
        b.withUnsafeBufferPointer { bp in
            gram.withUnsafeMutableBufferPointer { g in
                LAPACK.syrkUpper(trans: false, n: k, k: p, a: bp.baseAddress!, lda: p, beta: 0, c: g.baseAddress!)
                LAPACK.symmetrizeFromUpper(g.baseAddress!, n: k)
            }
        }
        return try fromCore(gram, r: k, p: p, jitter: jitter, name: name, basis: { coefficients, t in
            // g = Bᵀ u / √d: rows of basisT = (U diag(d^{-1/2}))ᵀ B, with the scaling folded into the
            // coefficients by the caller below.
            var out = [Double](repeating: 0, count: t * p)
            coefficients.withUnsafeBufferPointer { c in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { o in
                        BLAS.dgemm(transA: true, m: t, n: p, k: k, a: c.baseAddress!, b: bp.baseAddress!, c: o.baseAddress!)
                    }
                }
            }
            return out
        }, gramCore: true)
    }

    /// Σ = V K Vᵀ with the r×r symmetric core K (consumed) and a basis map: `basis(Q, t)` returns the t×p
    /// rows (V Q)ᵀ for the r×t row-major coefficients Q. With `gramCore`, K is instead the Gram matrix
    /// BBᵀ of a thin factor and the rows are Bᵀu/√d (the map receives U diag(d^{-1/2})).
    static func fromCore(_ core: [Double], r: Int, p: Int, jitter: Double, name: String,
                         basis: ([Double], Int) -> [Double], gramCore: Bool = false) throws -> CovarianceFactor {
        try Check.finiteResult(core, "the effect-size covariance from \(name)", hint: "; rescale X or the outputs")
        var k = core
        if jitter > 0 {
            var trace = 0.0
            for i in 0..<r { trace += k[i * r + i] }
            for i in 0..<r { k[i * r + i] += jitter * trace / Double(r) }
        }
        let values = try k.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: r, what: "effect-size covariance core") }
        try checkSemiDefinite(values, name)
        let top = values.last ?? 0
        var kept: [Int] = []
        if top > 0 { for i in stride(from: r - 1, through: 0, by: -1) where values[i] > top * cutoff(max(r, p)) { kept.append(i) } }
        let t = kept.count
        // Q (r×t row-major): column c = eigenvector kept[c] (contiguous column of k in column-major).
        var q = [Double](repeating: 0, count: r * t)
        for (c, i) in kept.enumerated() {
            let scale = gramCore ? 1 / values[i].squareRoot() : 1
            for row in 0..<r { q[row * t + c] = k[i * r + row] * scale }
        }
        let basisT = basis(q, t)
        return spectral(basisT: basisT, d: kept.map { values[$0] }, p: p, pinv: t < p)
    }

    /// Rectangular blocks Σ_ab, Λ_ab (Λ⁺_ab) and (GGᵀ)_ab for index lists a and b (|a|×|b| row-major);
    /// the leverage block is nil for the Cholesky form, where it is the identity ([a_x == b_y]).
    func crossBlocks(_ a: [Int], _ b: [Int]) -> (sigma: [Double], lambda: [Double], leverage: [Double]?) {
        let ka = a.count, kb = b.count
        var s = [Double](repeating: 0, count: ka * kb)
        var l = [Double](repeating: 0, count: ka * kb)
        switch form {
        case .cholesky(let buffer):
            buffer.withUnsafeBufferPointer { buf in
                for x in 0..<ka {
                    for y in 0..<kb {
                        let u = a[x], v = b[y]
                        s[x * kb + y] = u == v ? sigmaDiag[u] : buf[max(u, v) * p + min(u, v)]
                        let colU = buf.baseAddress! + u * p, colV = buf.baseAddress! + v * p
                        var lv = 0.0
                        for i in max(u, v)..<p { lv += colU[i] * colV[i] }
                        l[x * kb + y] = lv
                    }
                }
            }
            return (s, l, nil)
        case .spectral(let basisT, let d):
            var e = [Double](repeating: 0, count: ka * kb)
            basisT.withUnsafeBufferPointer { g in
                for t in 0..<d.count {
                    let row = g.baseAddress! + t * p
                    for x in 0..<ka {
                        let gx = row[a[x]]
                        if gx == 0 { continue }
                        for y in 0..<kb {
                            let v = gx * row[b[y]]
                            s[x * kb + y] += d[t] * v
                            l[x * kb + y] += v / d[t]
                            e[x * kb + y] += v
                        }
                    }
                }
            }
            return (s, l, e)
        case .embedded(let inner, _, let position):
            let ia = (0..<ka).filter { position[a[$0]] >= 0 }
            let ib = (0..<kb).filter { position[b[$0]] >= 0 }
            let (si, li, ei) = inner.crossBlocks(ia.map { position[a[$0]] }, ib.map { position[b[$0]] })
            let mb = ib.count
            var e = [Double](repeating: 0, count: ka * kb)
            for (x, u) in ia.enumerated() {
                for (y, v) in ib.enumerated() {
                    s[u * kb + v] = si[x * mb + y]
                    l[u * kb + v] = li[x * mb + y]
                    e[u * kb + v] = ei?[x * mb + y] ?? (a[u] == b[v] ? 1 : 0)
                }
            }
            return (s, l, e)
        }
    }

    /// Σ_qq, Λ_qq (Λ⁺_qq) and the leverage block G_qG_qᵀ (nil for the Cholesky form, where it is I),
    /// each |q|×|q| row-major.
    func blocks(_ q: [Int]) -> (sigma: [Double], lambda: [Double], leverage: [Double]?) {
        let k = q.count
        var s = [Double](repeating: 0, count: k * k)
        var l = [Double](repeating: 0, count: k * k)
        switch form {
        case .cholesky(let buffer):
            buffer.withUnsafeBufferPointer { b in
                for x in 0..<k {
                    for y in x..<k {
                        let a = q[x], c = q[y]
                        // Σ_ac: column-major (min, max) lies in the upper triangle.
                        let sv = a == c ? sigmaDiag[a] : b[max(a, c) * p + min(a, c)]
                        let colA = b.baseAddress! + a * p, colC = b.baseAddress! + c * p
                        var lv = 0.0
                        for i in max(a, c)..<p { lv += colA[i] * colC[i] }
                        s[x * k + y] = sv; s[y * k + x] = sv
                        l[x * k + y] = lv; l[y * k + x] = lv
                    }
                }
            }
            return (s, l, nil)
        case .spectral(let basisT, let d):
            var e = [Double](repeating: 0, count: k * k)
            basisT.withUnsafeBufferPointer { g in
                for t in 0..<d.count {
                    let row = g.baseAddress! + t * p
                    for x in 0..<k {
                        let gx = row[q[x]]
                        if gx == 0 { continue }
                        for y in x..<k {
                            let v = gx * row[q[y]]
                            s[x * k + y] += d[t] * v
                            l[x * k + y] += v / d[t]
                            e[x * k + y] += v
                        }
                    }
                }
            }
            for x in 0..<k {
                for y in 0..<x {
                    s[x * k + y] = s[y * k + x]; l[x * k + y] = l[y * k + x]; e[x * k + y] = e[y * k + x]
                }
            }
            return (s, l, e)
        case .embedded(let inner, _, let position):
            // Rows and columns of variables without variance stay zero (leverage 0: never in C).
            let inside = (0..<k).filter { position[q[$0]] >= 0 }
            let (si, li, ei) = inner.blocks(inside.map { position[q[$0]] })
            let m = inside.count
            var e = [Double](repeating: 0, count: k * k)
            for (x, a) in inside.enumerated() {
                for (y, b) in inside.enumerated() {
                    s[a * k + b] = si[x * m + y]
                    l[a * k + b] = li[x * m + y]
                    e[a * k + b] = ei?[x * m + y] ?? (x == y ? 1 : 0)
                }
            }
            return (s, l, e)
        }
    }
}
