import CBLAS

/// Row-major GEMM wrappers over OpenBLAS. Outside a chunked region a call runs on the library's thread
/// count (``Parallel/threadedBLAS(_:)``); inside one, single-threaded; inside
/// ``Parallel/splittingGEMMs(_:_:)``, a large sgemm is cut into blocks of C on the library's workers.
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
        let lda = lda ?? (transA ? m : k), ldb = ldb ?? (transB ? k : n), ldc = ldc ?? n
        if ThreadContext.current.pointee.splitsGEMMs,
           splitSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
            return
        }
        Parallel.threadedBLAS {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// The fewest multiply–adds (m·n·k) a GEMM needs to be split over the workers (below, the hand-off to
    /// the pool costs more than the second thread gains).
    static let splitGEMMWork = 1 << 20
    /// Split blocks are multiples of this many rows or columns of C (the kernels' register tiles).
    static let splitGEMMBlock = 16

    /// Inside ``Parallel/splittingGEMMs(_:_:)``: C cut along its larger dimension into one block per worker
    /// (multiples of ``splitGEMMBlock``), block p = a single-threaded GEMM of the matching rows of op(A) or
    /// columns of op(B) on worker p. Each worker packs only its part of the larger operand — for a Linear
    /// layer the weight matrix — which batch-row chunks would each pack whole. Returns false (and does
    /// nothing) when the GEMM is too small to split.
    private static func splitSgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        guard let (alongColumns, block, parts) = splitPlan(m: m, n: n, k: k, workers: Parallel.workerCount) else { return false }
        let extent = alongColumns ? n : m
        Parallel.forEachChunk(count: parts, chunk: 1) { p, _, _ in
            let lo = p * block, width = min(extent, lo + block) - lo
            // Columns lo..<lo+width of op(B) and C, or rows of op(A) and C.
            let ap = alongColumns ? a : (transA ? a + lo : a + lo * lda)
            let bp = alongColumns ? (transB ? b + lo * ldb : b + lo) : b
            let cp = alongColumns ? c + lo : c + lo * ldc
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(alongColumns ? m : width), Int32(alongColumns ? width : n), Int32(k), alpha,
                ap, Int32(lda), bp, Int32(ldb), beta, cp, Int32(ldc))
        }
        return true
    }

    /// How ``splitSgemm`` cuts an m×n×k GEMM over `workers`: along C's columns (n ≥ m) or rows, in blocks of
    /// `block` (a multiple of ``splitGEMMBlock``), `parts` of them; nil when it is not split (too small, or
    /// fewer than two blocks).
    static func splitPlan(m: Int, n: Int, k: Int, workers: Int) -> (alongColumns: Bool, block: Int, parts: Int)? {
        let alongColumns = n >= m, extent = alongColumns ? n : m
        let workers = min(workers, extent / splitGEMMBlock)
        guard workers > 1, m * n * k >= splitGEMMWork else { return nil }
        let block = ((extent + workers - 1) / workers + splitGEMMBlock - 1) / splitGEMMBlock * splitGEMMBlock
        return (alongColumns, block, (extent + block - 1) / block)
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
