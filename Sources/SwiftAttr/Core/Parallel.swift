import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Chunk-level parallelism.
///
/// Work is split into chunks of rows that are independent (path points, examples, references); chunks run
/// on `workerCount` threads at once, each calling single-threaded GEMMs, so the elementwise, gather and
/// scatter work between GEMMs runs in parallel too and no thread waits on another inside a layer. While
/// such a region runs, OpenBLAS is set to one thread (and restored after); a call with a single chunk keeps
/// OpenBLAS's own threading.
enum Parallel {
    /// Worker threads: the number of online processors (at most 16).
    static let workerCount: Int = max(1, min(16, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    private static var mutex: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()
    nonisolated(unsafe) private static var activeRegions = 0
    nonisolated(unsafe) private static var savedThreads: Int32 = 1

    /// Runs `body(chunkIndex, rows, worker)` over `count` rows split into equal chunks of at most `chunk`
    /// rows, their number a multiple of the worker count so the threads finish together. `worker` in
    /// 0..<``workers(count:chunk:)`` identifies the thread (for per-worker accumulators).
    static func forEachChunk(count: Int, chunk: Int, _ body: (Int, Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        _ = allocatorTuned
        let size = balancedChunk(count: count, chunk: chunk)
        let chunks = (count + size - 1) / size
        let workers = Self.workers(count: count, chunk: chunk)
        if workers <= 1 {
            for c in 0..<chunks { body(c, (c * size)..<min(count, (c + 1) * size), 0) }
            return
        }
        singleThreadedBLAS {
            withoutActuallyEscaping(body) { body in
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    var c = w
                    while c < chunks {
                        body(c, (c * size)..<min(count, (c + 1) * size), w)
                        c += workers
                    }
                }
            }
        }
    }

    /// Chunked passes allocate and free buffers of a few MB per layer and chunk. glibc serves blocks above its
    /// mmap threshold (128 kB at first) with fresh zeroed pages and returns them on free, so every chunk
    /// would pay page faults; keeping blocks up to 32 MB in the heap (and not trimming below 128 MB) makes
    /// them reusable. This is set once, on first use, for the whole process.
    static let allocatorTuned: Void = {
        #if os(Linux)
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 32 << 20)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 128 << 20)
        #endif
    }()

    /// Number of workers ``forEachChunk(count:chunk:_:)`` uses for this split.
    static func workers(count: Int, chunk: Int) -> Int {
        min(workerCount, (count + max(1, chunk) - 1) / max(1, chunk), count)
    }

    /// The chunk size actually used: at most `chunk`, with a number of chunks that is a multiple of the
    /// worker count (and at least one chunk per worker when `count` allows).
    static func balancedChunk(count: Int, chunk: Int) -> Int {
        let workers = max(1, min(workerCount, count))
        var chunks = (count + max(1, chunk) - 1) / max(1, chunk)
        chunks = ((chunks + workers - 1) / workers) * workers
        return max(1, (count + chunks - 1) / chunks)
    }

    /// Runs `body` with OpenBLAS on one thread (restored afterwards; regions nest and may overlap across
    /// threads): the library's own workers provide the parallelism, and OpenBLAS's threads are not woken.
    static func singleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        enterSingleThreadedBLAS()
        defer { leaveSingleThreadedBLAS() }
        return try body()
    }

    private static func enterSingleThreadedBLAS() {
        pthread_mutex_lock(&mutex)
        if activeRegions == 0 {
            savedThreads = openblas_get_num_threads()
            openblas_set_num_threads(1)
        }
        activeRegions += 1
        pthread_mutex_unlock(&mutex)
    }

    private static func leaveSingleThreadedBLAS() {
        pthread_mutex_lock(&mutex)
        activeRegions -= 1
        if activeRegions == 0 { openblas_set_num_threads(savedThreads) }
        pthread_mutex_unlock(&mutex)
    }
}

#if os(Linux)
/// glibc's `int mallopt(int param, int value)` (declared in <malloc.h>, which Glibc's module map omits).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
