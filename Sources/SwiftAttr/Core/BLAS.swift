import CBLAS

/// Row-major GEMM wrappers over OpenBLAS. Outside a chunked region a call runs on the library's thread
/// count (``Parallel/threadedBLAS(_:)``); inside one, single-threaded.
///
/// `C ← α·op(A)·op(B) + β·C` with `op(A)` of shape m×k and `op(B)` of shape k×n; leading dimensions
/// default to the dense row-major ones.
enum BLAS {
    @inline(__always)
    static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 { c.update(repeating: 0, count: m * (ldc ?? n)) }
            return
        }
        Parallel.threadedBLAS {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? (transA ? m : k)),
            b, Int32(ldb ?? (transB ? k : n)),
            beta, c, Int32(ldc ?? n))
        }
    }

    @inline(__always)
    static func dgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Double = 1, a: UnsafePointer<Double>, lda: Int? = nil,
        b: UnsafePointer<Double>, ldb: Int? = nil,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 { c.update(repeating: 0, count: m * (ldc ?? n)) }
            return
        }
        Parallel.threadedBLAS {
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? (transA ? m : k)),
            b, Int32(ldb ?? (transB ? k : n)),
            beta, c, Int32(ldc ?? n))
        }
    }
}
