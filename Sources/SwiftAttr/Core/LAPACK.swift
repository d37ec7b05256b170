import CBLAS

/// LAPACKE's `lapack_int` (a C macro, so not imported): 32-bit in the LP64 OpenBLAS build we link.
typealias LapackInt = Int32

/// Thin float64 wrappers over LAPACKE and the level-2/3 BLAS calls that ``BLAS`` does not cover.
///
/// Every routine here works on **column-major** storage. A symmetric matrix stored row-major is the same
/// buffer, so the RATE code hands its symmetric row-major matrices to these routines unchanged; the
/// triangle named "lower" in column-major is the upper triangle of the row-major view.
enum LAPACK {
    @inline(__always) private static func flag(_ c: Character) -> CChar { CChar(c.asciiValue!) }

    /// Cholesky factorisation `A = L Lᵀ` of the n×n column-major `a`, in place (lower triangle only;
    /// the strictly upper triangle is left untouched). Returns LAPACK's `info` (0: success, k > 0: the
    /// leading minor of order k is not positive definite).
    static func potrfLower(_ a: UnsafeMutablePointer<Double>, n: Int) -> Int {
        Parallel.threadedBLAS { Int(LAPACKE_dpotrf(LAPACK_COL_MAJOR, flag("L"), LapackInt(n), a, LapackInt(n))) }
    }

    /// Inverse of the lower-triangular non-unit n×n factor in `a`, in place (lower triangle only).
    static func trtriLower(_ a: UnsafeMutablePointer<Double>, n: Int) -> Int {
        Parallel.threadedBLAS { Int(LAPACKE_dtrtri(LAPACK_COL_MAJOR, flag("L"), flag("N"), LapackInt(n), a, LapackInt(n))) }
    }

    /// Reciprocal 1-norm condition number estimate of `A` from its Cholesky factor in `a`
    /// (`anorm` = ‖A‖₁ computed before factorising). Returns 0 when the estimate fails.
    static func poconLower(_ a: UnsafePointer<Double>, n: Int, anorm: Double) -> Double {
        var rcond = 0.0
        let info = Parallel.threadedBLAS { LAPACKE_dpocon(LAPACK_COL_MAJOR, flag("L"), LapackInt(n), a, LapackInt(n), anorm, &rcond) }
        return info == 0 ? rcond : 0
    }

    /// Symmetric eigendecomposition `A = Q diag(w) Qᵀ` of the n×n column-major `a` (lower triangle read)
    /// by divide and conquer. On return `a` holds Q (eigenvector k in column k, i.e. contiguous at
    /// `a + k·n`) and the result holds the eigenvalues in ascending order. Throws `.numerical` when LAPACK
    /// fails to converge.
    static func syevd(_ a: UnsafeMutablePointer<Double>, n: Int, what: String) throws -> [Double] {
        // An empty problem has no eigenvalues; LAPACK would reject its lda = 0 (info −6, printed by xerbla).
        guard n > 0 else { return [] }
        var w = [Double](repeating: 0, count: n)
        let info = w.withUnsafeMutableBufferPointer { w in
            Parallel.threadedBLAS { LAPACKE_dsyevd(LAPACK_COL_MAJOR, flag("V"), flag("L"), LapackInt(n), a, LapackInt(n), w.baseAddress!) }
        }
        guard info == 0 else {
            throw SwiftAttrError(.numerical, "\(what): symmetric eigendecomposition failed (LAPACK info \(info))")
        }
        return w
    }

    /// Thin SVD `A = U diag(s) Vᵀ` of the m×n **row-major** `a` (destroyed). Returns U (m×k row-major),
    /// s (k, descending) and Vᵀ (k×n row-major) with k = min(m, n).
    static func gesddRowMajor(_ a: UnsafeMutablePointer<Double>, m: Int, n: Int, what: String) throws
        -> (u: [Double], s: [Double], vt: [Double])
    {
        let k = min(m, n)
        var u = [Double](repeating: 0, count: m * k)
        var s = [Double](repeating: 0, count: k)
        var vt = [Double](repeating: 0, count: k * n)
        let info = u.withUnsafeMutableBufferPointer { up in
            s.withUnsafeMutableBufferPointer { sp in
                vt.withUnsafeMutableBufferPointer { vp in
                    Parallel.threadedBLAS {
                        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, flag("S"), LapackInt(m), LapackInt(n), a, LapackInt(n),
                                       sp.baseAddress!, up.baseAddress!, LapackInt(k), vp.baseAddress!, LapackInt(n))
                    }
                }
            }
        }
        guard info == 0 else {
            throw SwiftAttrError(.numerical, "\(what): singular value decomposition failed (LAPACK info \(info))")
        }
        return (u, s, vt)
    }

    /// Symmetric rank-k update on row-major storage: `C ← α·AᵀA + β·C` (trans) or `C ← α·AAᵀ + β·C`,
    /// C n×n, only the upper triangle of the row-major C is written.
    static func syrkUpper(trans: Bool, n: Int, k: Int, alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
                          beta: Double, c: UnsafeMutablePointer<Double>) {
        guard n > 0 else { return }
        Parallel.threadedBLAS {
            cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, blasint(n), blasint(k),
                        alpha, a, blasint(lda), beta, c, blasint(n))
        }
    }

    /// `B ← α·U·B` with U the n×n upper-triangular (non-unit) row-major matrix in `u` and B n×m row-major.
    static func trmmUpperLeft(n: Int, m: Int, alpha: Double, u: UnsafePointer<Double>, b: UnsafeMutablePointer<Double>) {
        guard n > 0, m > 0 else { return }
        Parallel.threadedBLAS {
            cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, blasint(n), blasint(m), alpha,
                        u, blasint(n), b, blasint(m))
        }
    }

    /// Copies the upper triangle of the row-major n×n `c` into its lower triangle.
    static func symmetrizeFromUpper(_ c: UnsafeMutablePointer<Double>, n: Int) {
        let tile = 64
        var i0 = 0
        while i0 < n {
            var j0 = 0
            while j0 <= i0 {
                for i in i0..<min(i0 + tile, n) {
                    for j in j0..<min(j0 + tile, i) { c[i * n + j] = c[j * n + i] }
                }
                j0 += tile
            }
            i0 += tile
        }
    }
}

/// Small dense symmetric helpers for the |q|×|q| blocks of nullify and group RATE.
enum SmallSymmetric {
    /// Eigen-decomposition of the k×k symmetric `a` (row-major = column-major); returns (values
    /// ascending, vectors with vector i contiguous at `i·k`).
    static func eigen(_ a: [Double], k: Int) throws -> (values: [Double], vectors: [Double]) {
        var v = a
        let w = try v.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: k, what: "block") }
        return (w, v)
    }
}
