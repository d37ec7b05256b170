import Dispatch

/// Number of worker threads for elementwise and gather/scatter loops (GEMMs use OpenBLAS's own threads).
let workerCount: Int = {
    #if canImport(Glibc)
    return max(1, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    #else
    return 2
    #endif
}()

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(i)` for i in 0..<count, split into contiguous blocks over the worker threads when the
/// count makes it worthwhile. `body` must write disjoint memory for different i.
@inline(__always)
func parallelFor(_ count: Int, minimumPerThread: Int = 4, _ body: (Int) -> Void) {
    let workers = min(workerCount, count / max(1, minimumPerThread))
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = count * w / workers, end = count * (w + 1) / workers
            for i in start..<end { body(i) }
        }
    }
}
