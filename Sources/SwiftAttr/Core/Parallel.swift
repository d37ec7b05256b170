import CBLAS
import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Chunk-level parallelism and the library's thread setting.
///
/// Work is split into chunks of rows that are independent (path points, examples, references); chunks run
/// on ``workerCount`` threads at once, each calling single-threaded GEMMs, so the elementwise, gather and
/// scatter work between GEMMs runs in parallel too and no thread waits on another inside a layer.
///
/// The thread count is the library's own setting (``threadCount``: `SWIFTATTR_NUM_THREADS`, else the
/// online processors; changed by ``setThreadCount(_:)``). The BLAS this library links is its own copy
/// (see `Sources/CBLAS`), whose thread count is switched only by ``BLASThreading``: one mode at a time,
/// so a RATE factorisation running on BLAS threads never sees another thread's chunked region switch
/// OpenBLAS to one thread under it. For a fixed thread count, every call is bit-for-bit repeatable.
///
/// Chunks run on the calling thread and the library's own threads (``WorkerPool``), which poll briefly
/// between regions; the pool is fork-safe: see ``WorkerPool`` for how.
public enum Parallel {
    /// The largest thread count accepted by ``setThreadCount(_:)`` (and `SWIFTATTR_NUM_THREADS`).
    public static let maximumThreads = 256

    /// The number of online processors.
    public static let processorCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// The default thread count: `SWIFTATTR_NUM_THREADS` when it is an integer in 1...256, else
    /// ``processorCount``.
    public static let defaultThreadCount: Int = {
        if let text = getenv("SWIFTATTR_NUM_THREADS").map({ String(cString: $0) }),
           let n = Int(text.trimmingWhitespace()), n >= 1, n <= maximumThreads {
            return n
        }
        return processorCount
    }()

    /// Whether `SWIFTATTR_NUM_THREADS` is set but is not an integer in 1...256 (and so was ignored).
    public static var threadEnvironmentIgnored: Bool {
        guard let raw = getenv("SWIFTATTR_NUM_THREADS") else { return false }
        let text = String(cString: raw).trimmingWhitespace()
        guard let n = Int(text) else { return true }
        return n < 1 || n > maximumThreads
    }

    private static let state = LockedState()

    /// The library's thread count (chunk workers, and the BLAS threads of unchunked calls such as RATE).
    public static var threadCount: Int { state.withLock { $0.threads } }

    /// Sets the library's thread count (1...256) for calls that start afterwards; a call already running
    /// keeps the count it started with.
    public static func setThreadCount(_ n: Int) throws {
        guard n >= 1, n <= maximumThreads else {
            throw SwiftAttrError.invalid("n_threads must be in 1...\(maximumThreads) (got \(n))")
        }
        state.withLock { $0.threads = n }
    }

    /// Worker threads of the current call: the thread count the enclosing region started with (see
    /// ``withRegion(_:)``), or ``threadCount`` outside one.
    static var workerCount: Int { ThreadContext.current.pointee.threads ?? threadCount }

    /// Runs `body(chunkIndex, rows, worker)` over `count` rows split into equal chunks of at most `chunk`
    /// rows, their number a multiple of the worker count so the threads finish together. `worker` in
    /// 0..<``workers(count:chunk:)`` identifies the thread (for per-worker accumulators). Chunk `c` always
    /// goes to worker `c mod workers`, so per-worker sums are repeatable for a fixed thread count.
    static func forEachChunk(count: Int, chunk: Int, _ body: (Int, Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        _ = allocatorTuned
        singleThreadedBLAS {
            let size = balancedChunk(count: count, chunk: chunk)
            let chunks = (count + size - 1) / size
            let workers = Self.workers(count: count, chunk: chunk)
            if workers <= 1 {
                for c in 0..<chunks { body(c, (c * size)..<min(count, (c + 1) * size), 0) }
                return
            }
            let threads = workerCount
            WorkerPool.run(workers: workers) { w in
                // A worker inherits the region: its BLAS calls run single-threaded, its thread count is the
                // caller's.
                ThreadContext.enter(threads: threads)
                defer { ThreadContext.leave() }
                var c = w
                while c < chunks {
                    body(c, (c * size)..<min(count, (c + 1) * size), w)
                    c += workers
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

    /// Runs `body` with OpenBLAS on one thread: the library's own workers provide the parallelism. The
    /// thread count is fixed for everything `body` runs. Regions nest and may overlap across threads.
    static func singleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        try BLASThreading.run(.single, body)
    }

    /// Runs `body` on the calling thread with, when `split`, every large single-precision GEMM it calls
    /// (``BLAS/sgemm``) cut into blocks of the output, one per worker, each a single-threaded GEMM: the
    /// parallelism of a pass that runs a whole batch as one chunk. A block of C is computed from the same
    /// rows and columns of A and B as unsplit, and the split is fixed for a fixed thread count, so results
    /// repeat bit for bit. The workers' own GEMMs are never split again.
    static func splittingGEMMs<T>(_ split: Bool, _ body: () throws -> T) rethrows -> T {
        let context = ThreadContext.current
        let saved = context.pointee.splitsGEMMs
        context.pointee.splitsGEMMs = split
        defer { context.pointee.splitsGEMMs = saved }
        return try body()
    }

    /// Runs `body` with OpenBLAS on ``threadCount`` threads (factorisations, large unchunked GEMMs).
    static func threadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        try BLASThreading.run(.threaded, body)
    }

    /// The mutable settings, behind one mutex.
    private final class LockedState: @unchecked Sendable {
        struct Values { var threads = Parallel.defaultThreadCount }
        private var values = Values()
        private var mutex = pthread_mutex_t()
        init() { pthread_mutex_init(&mutex, nil) }
        func withLock<T>(_ body: (inout Values) -> T) -> T {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return body(&values)
        }
        func lock() { pthread_mutex_lock(&mutex) }
        func unlock() { pthread_mutex_unlock(&mutex) }
        /// In a fork child: only the forking thread exists and it holds the mutex (taken by the prepare handler).
        func reinitialize() { pthread_mutex_init(&mutex, nil) }
    }

    /// `pthread_atfork` handlers, installed before the first region runs (so before any pool thread exists).
    /// Prepare waits until no region runs anywhere and then holds every library lock, so the child copies
    /// them free and no pool thread mid-chunk; the parent releases them; the child re-initialises them and
    /// empties the pool (its threads did not survive fork; the next region creates new ones).
    static let forkHandlers: Void = {
        pthread_atfork(
            { CallGate.prepareForFork(); BLASThreading.prepareForFork(); WorkerPool.prepareForFork(); Parallel.state.lock() },
            { Parallel.state.unlock(); WorkerPool.parentAfterFork(); BLASThreading.parentAfterFork(); CallGate.parentAfterFork() },
            { Parallel.state.reinitialize(); WorkerPool.childAfterFork(); BLASThreading.childAfterFork(); CallGate.childAfterFork() })
    }()
}

/// Library calls in flight. Every C export runs inside ``run(_:)``; a fork waits until none is in flight
/// (and new ones wait until it is done), so no thread of the parent is inside the library — holding a
/// Swift runtime lock while it checks arguments or allocates outside a parallel region — when the address
/// space is copied. (Swift callers of SwiftAttr may use it the same way; the C interface always does.)
public enum CallGate {
    nonisolated(unsafe) private static var mutex: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()
    nonisolated(unsafe) private static var changed: pthread_cond_t = {
        var c = pthread_cond_t()
        pthread_cond_init(&c, nil)
        return c
    }()
    nonisolated(unsafe) private static var active = 0
    nonisolated(unsafe) private static var forking = false

    /// Runs one library call (not re-entrant across a fork: a call must not fork).
    public static func run<T>(_ body: () throws -> T) rethrows -> T {
        _ = Parallel.forkHandlers
        pthread_mutex_lock(&mutex)
        while forking { pthread_cond_wait(&changed, &mutex) }
        active += 1
        pthread_mutex_unlock(&mutex)
        defer {
            pthread_mutex_lock(&mutex)
            active -= 1
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
        }
        return try body()
    }

    static func prepareForFork() {
        pthread_mutex_lock(&mutex)
        forking = true
        while active > 0 { pthread_cond_wait(&changed, &mutex) }
    }

    static func parentAfterFork() {
        forking = false
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    static func childAfterFork() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        forking = false
        active = 0
    }
}

/// The library's worker threads: they run the chunks of every parallel region, beside the calling thread.
///
/// **Hand-off.** The thread that opens a region runs unit 0 itself and then any unit no pool thread has
/// claimed yet, so a region of w units wakes at most w − 1 pool threads, and a unit whose pool thread is
/// slow to start (or whose virtual CPU the host has descheduled) is taken by the caller. A pool thread that
/// finishes a unit, and a caller waiting for the last units, poll for up to ``spinNanoseconds`` before they
/// sleep on a condition: a training step or a path method opens dozens of regions a few hundred
/// microseconds apart, and on a virtual machine waking a sleeping thread (an idle virtual CPU) costs about
/// as much as such a region — with every hand-off through a condition, two threads were 3× slower than one.
/// At most ``Parallel/processorCount`` − 1 pool threads poll at a time, and the poll is bounded, so an idle
/// process stops using the processors within a fraction of a millisecond.
///
/// **Fork safety: why not libdispatch, and why one thread never helps.** The Swift runtime's `once` lock
/// (lazy globals, prespecialized generic metadata: `swift_once`, reached for example from
/// `swift_getCanonicalPrespecializedGenericMetadata` when DeepLIFT first builds its dictionaries) is a
/// priority-inheritance futex that holds its owner's thread id, and the runtime caches that id per thread.
/// After `fork()` the child's one thread keeps its parent's cached id. When it takes such a lock and another
/// thread contends, the kernel queues the waiter behind the parent's thread (the id in the lock word) and
/// the child's unlock fails with EPERM, which the runtime retries forever: a hang, with the lock "owned" by
/// a thread that is not in the child (gdb: the child's thread spinning on FUTEX_UNLOCK_PI, a worker in
/// FUTEX_LOCK_PI on `_DictionaryStorage`'s token, the lock word holding the parent's thread id; 1 in 400 to
/// 2,000 forked children with `DispatchQueue.concurrentPerform`, up to 30 % on a busy machine).
///
/// So in a fork child the thread that survived fork (``forkSurvivor``) never runs a unit: its chunks run
/// only on pool threads, which the child creates afresh (with their own ids), while it waits; inside the
/// library no thread ever contends with the thread whose id is stale. Every other thread — any thread of a
/// process that did not fork, and threads a fork child creates — has a correct id and helps. The
/// `pthread_atfork` handlers (``Parallel/forkHandlers``) keep the pool consistent across fork. A pool thread
/// that opens a nested region runs units of it too (so nesting cannot exhaust the pool). Worker index `w` of
/// a region is a unit of work, run by whichever thread claims it; chunk `c` always belongs to unit
/// `c mod workers`, so per-worker accumulators are repeatable whichever thread runs them.
enum WorkerPool {
    /// One region: units `0..<end`, run by `run(w)`; lives on the stack of the thread that waits for it.
    struct Job {
        let run: (Int) -> Void
        var next = 0
        let end: Int
        var unfinished: Int
        var link: UnsafeMutablePointer<Job>?
    }

    /// Threads beyond this wait for a free one (progress is guaranteed: units never wait on queued units).
    static let maximumPoolThreads = 4 * Parallel.maximumThreads

    /// How long an idle pool thread, or a caller waiting for the last units of its region, polls before it
    /// sleeps (200 µs: longer than the gaps between the regions of one call, short next to a call).
    static let spinNanoseconds = 200_000

    nonisolated(unsafe) private static var mutex = newMutex()
    /// Signalled when units are queued.
    nonisolated(unsafe) private static var work = newCondition()
    /// Broadcast when a job's last unit finishes.
    nonisolated(unsafe) private static var finished = newCondition()
    nonisolated(unsafe) private static var head: UnsafeMutablePointer<Job>?
    nonisolated(unsafe) private static var tail: UnsafeMutablePointer<Job>?
    /// Units queued and not yet claimed.
    nonisolated(unsafe) private static var queued = 0
    nonisolated(unsafe) private static var threads = 0
    /// Pool threads running a unit.
    nonisolated(unsafe) private static var busy = 0
    /// Pool threads polling for work (at most ``Parallel/processorCount`` − 1), and sleeping on `work`.
    nonisolated(unsafe) private static var spinning = 0
    nonisolated(unsafe) private static var sleeping = 0
    /// In a fork child: the thread that called fork (its cached runtime thread id is its parent's).
    nonisolated(unsafe) private static var forkSurvivor: pthread_t?

    /// What pollers read without the mutex: `queued`, and a count of finished units (both changed under it).
    private static let polled = PolledCounters()

    private static func newMutex() -> pthread_mutex_t {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }

    private static func newCondition() -> pthread_cond_t {
        var c = pthread_cond_t()
        pthread_cond_init(&c, nil)
        return c
    }

    /// Runs `body(w)` for w in 0..<workers and returns when all have finished: the calling thread runs unit 0
    /// and any unit still unclaimed when it is done; pool threads run the others. Only the thread that
    /// survived a fork (see ``WorkerPool``) runs none — unless no pool thread could be started.
    static func run(workers: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var job = Job(run: body, end: workers, unfinished: workers)
            withUnsafeMutablePointer(to: &job) { job in
                pthread_mutex_lock(&mutex)
                let survivor = forkSurvivor.map { pthread_equal($0, pthread_self()) != 0 } ?? false
                let poolThread = ThreadContext.current.pointee.poolThread
                let runsUnitZero = poolThread || !survivor
                if runsUnitZero { job.pointee.next = 1 }
                if job.pointee.next < workers { enqueue(job) }
                wakeSleepers()
                if runsUnitZero {
                    pthread_mutex_unlock(&mutex)
                    job.pointee.run(0)
                    pthread_mutex_lock(&mutex)
                    job.pointee.unfinished -= 1
                }
                // The survivor of a fork claims units only when no pool thread could be started.
                if runsUnitZero || threads == 0 {
                    while job.pointee.next < job.pointee.end {
                        let w = claim(job)
                        pthread_mutex_unlock(&mutex)
                        job.pointee.run(w)
                        pthread_mutex_lock(&mutex)
                        job.pointee.unfinished -= 1
                    }
                }
                finish(job)
                pthread_mutex_unlock(&mutex)
            }
        }
    }

    /// Waits (under `mutex`, which it releases while it polls or sleeps) until every unit of `job` has finished.
    private static func finish(_ job: UnsafeMutablePointer<Job>) {
        let counters = polled  // read once: each access to a static is a `swift_once` call
        while job.pointee.unfinished > 0 {
            let seen = counters.finished.load(ordering: .acquiring)
            pthread_mutex_unlock(&mutex)
            let changed = poll { counters.finished.load(ordering: .acquiring) != seen }
            pthread_mutex_lock(&mutex)
            if !changed && job.pointee.unfinished > 0 { pthread_cond_wait(&finished, &mutex) }
        }
    }

    /// Polls `ready` for up to ``spinNanoseconds`` (not at all on one processor); whether it became true.
    private static func poll(_ ready: () -> Bool) -> Bool {
        guard Parallel.processorCount > 1 else { return ready() }
        var start = timespec(), now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        while true {
            for _ in 0..<64 {
                if ready() { return true }
                swiftattr_cpu_relax()
            }
            clock_gettime(CLOCK_MONOTONIC, &now)
            if (now.tv_sec - start.tv_sec) * 1_000_000_000 + (now.tv_nsec - start.tv_nsec) >= spinNanoseconds {
                return ready()
            }
        }
    }

    /// Appends `job` (its units from `next` on) and starts threads until every queued unit has a thread that
    /// is not busy. Under `mutex`.
    private static func enqueue(_ job: UnsafeMutablePointer<Job>) {
        if let last = tail { last.pointee.link = job } else { head = job }
        tail = job
        queued += job.pointee.end - job.pointee.next
        polled.queued.store(queued, ordering: .releasing)
        while threads - busy < queued && threads < maximumPoolThreads && startThread() { threads += 1 }
    }

    /// Wakes sleeping pool threads for the queued units the polling ones will not take. Under `mutex`.
    private static func wakeSleepers() {
        let wanted = queued - spinning
        guard sleeping > 0, wanted > 0 else { return }
        if wanted > 1 { pthread_cond_broadcast(&work) } else { pthread_cond_signal(&work) }
    }

    /// Takes the next unit of `job`, unlinking the job once all its units are taken. Under `mutex`.
    private static func claim(_ job: UnsafeMutablePointer<Job>) -> Int {
        let w = job.pointee.next
        job.pointee.next += 1
        queued -= 1
        polled.queued.store(queued, ordering: .releasing)
        if job.pointee.next == job.pointee.end {
            var previous: UnsafeMutablePointer<Job>? = nil
            var p = head
            while let q = p, q != job { previous = q; p = q.pointee.link }
            if let previous { previous.pointee.link = job.pointee.link } else { head = job.pointee.link }
            if tail == job { tail = previous }
            job.pointee.link = nil
        }
        return w
    }

    /// Starts one detached pool thread with every asynchronous signal blocked (signals go to the caller's
    /// threads, as with libdispatch's workers).
    private static func startThread() -> Bool {
        var all = sigset_t(), saved = sigset_t()
        sigfillset(&all)
        for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP] { sigdelset(&all, s) }
        pthread_sigmask(SIG_SETMASK, &all, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        return pthread_create(&thread, &attributes, { _ in WorkerPool.serve() }, nil) == 0
    }

    /// A pool thread's life: claim a unit, run it, report it finished; when the queue is empty, poll for a
    /// while (if fewer than processorCount − 1 threads poll), then sleep until units are queued.
    private static func serve() -> Never {
        ThreadContext.current.pointee.poolThread = true
        let counters = polled, pollers = Parallel.processorCount - 1
        pthread_mutex_lock(&mutex)
        var mayPoll = true
        while true {
            while head == nil {
                if mayPoll && spinning < pollers {
                    spinning += 1
                    pthread_mutex_unlock(&mutex)
                    _ = poll { counters.queued.load(ordering: .acquiring) > 0 }
                    pthread_mutex_lock(&mutex)
                    spinning -= 1
                    mayPoll = false
                    continue
                }
                sleeping += 1
                pthread_cond_wait(&work, &mutex)
                sleeping -= 1
                mayPoll = true
            }
            let job = head!
            let w = claim(job)
            busy += 1
            pthread_mutex_unlock(&mutex)
            job.pointee.run(w)
            pthread_mutex_lock(&mutex)
            busy -= 1
            job.pointee.unfinished -= 1
            counters.finished.add(1, ordering: .releasing)
            // The job may be gone once its owner wakes: it is not touched after this.
            if job.pointee.unfinished == 0 { pthread_cond_broadcast(&finished) }
            mayPoll = true
        }
    }

    /// Fork, prepare (after ``BLASThreading/prepareForFork()``: no region runs, so every pool thread polls or
    /// waits on `work`): hold the pool's mutex across fork.
    static func prepareForFork() { pthread_mutex_lock(&mutex) }

    static func parentAfterFork() { pthread_mutex_unlock(&mutex) }

    /// Fork, child: no pool thread exists here; the pool starts empty and grows again on demand, and the
    /// forking thread is remembered as the one that never runs units.
    static func childAfterFork() {
        mutex = newMutex()
        work = newCondition()
        finished = newCondition()
        head = nil
        tail = nil
        queued = 0
        threads = 0
        busy = 0
        spinning = 0
        sleeping = 0
        forkSurvivor = pthread_self()
        polled.queued.store(0, ordering: .relaxed)
    }

    /// The counters pollers read without the pool's mutex.
    private final class PolledCounters: Sendable {
        let queued = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
    }
}

/// What the library remembers per thread: how deep it is inside BLAS regions, the thread count the
/// outermost region started with, and whether the thread is one of the ``WorkerPool``'s.
struct ThreadContext {
    var depth = 0
    var threads: Int?
    var poolThread = false
    /// Inside ``Parallel/splittingGEMMs(_:_:)``: large GEMMs are split over the workers (``BLAS/sgemm``).
    var splitsGEMMs = false

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { $0.map { UnsafeMutableRawPointer($0).deallocate() } }
        return key
    }()

    /// The calling thread's context (created on first use, freed when the thread exits).
    static var current: UnsafeMutablePointer<ThreadContext> {
        if let p = pthread_getspecific(key) { return p.assumingMemoryBound(to: ThreadContext.self) }
        let p = UnsafeMutablePointer<ThreadContext>.allocate(capacity: 1)
        p.initialize(to: ThreadContext())
        pthread_setspecific(key, p)
        return p
    }

    /// Enters a region on this thread; the outermost one fixes the thread count (`threads`, or the
    /// library's current setting).
    static func enter(threads: Int? = nil) {
        let c = current
        if c.pointee.depth == 0 { c.pointee.threads = threads ?? Parallel.threadCount }
        c.pointee.depth += 1
    }

    static func leave() {
        let c = current
        c.pointee.depth -= 1
        if c.pointee.depth == 0 { c.pointee.threads = nil }
    }
}

/// The two ways the library runs OpenBLAS: on one thread inside chunked regions (the chunks are the
/// parallelism), or on the library's thread count for unchunked work. OpenBLAS's thread count is global
/// to the library's BLAS, so the two modes exclude each other: a call waits until the other mode's calls
/// have finished (taking turns when both wait), and the count is switched only while nobody runs. Nested
/// regions on one thread, and the workers of a region, run in the mode of the outermost region. While a
/// thread forks, no region starts (see ``prepareForFork()``).
enum BLASThreading {
    enum Mode { case single, threaded }

    nonisolated(unsafe) private static var mutex: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()
    nonisolated(unsafe) private static var changed: pthread_cond_t = {
        var c = pthread_cond_t()
        pthread_cond_init(&c, nil)
        return c
    }()
    nonisolated(unsafe) private static var holders = (single: 0, threaded: 0)
    nonisolated(unsafe) private static var waiting = (single: 0, threaded: 0)
    nonisolated(unsafe) private static var blasThreads: Int32 = -1
    /// A thread is forking: regions wait to start until it has.
    nonisolated(unsafe) private static var forking = false

    static func run<T>(_ mode: Mode, _ body: () throws -> T) rethrows -> T {
        let context = ThreadContext.current
        if context.pointee.depth > 0 {
            ThreadContext.enter()
            defer { ThreadContext.leave() }
            return try body()
        }
        _ = Parallel.forkHandlers
        ThreadContext.enter()
        defer { ThreadContext.leave() }
        acquire(mode, threads: context.pointee.threads ?? 1)
        defer { release(mode) }
        return try body()
    }

    private static func acquire(_ mode: Mode, threads: Int) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let want: Int32 = mode == .single ? 1 : Int32(threads)
        switch mode {
        case .single:
            waiting.single += 1
            // Wait while the other mode runs, or while it waits and this mode already has its turn.
            while forking || holders.threaded > 0 || (waiting.threaded > 0 && holders.single > 0) {
                pthread_cond_wait(&changed, &mutex)
            }
            waiting.single -= 1
            if holders.single == 0 && blasThreads != want { openblas_set_num_threads(want); blasThreads = want }
            holders.single += 1
        case .threaded:
            waiting.threaded += 1
            // Threaded calls with different counts also exclude each other (the count is global).
            while forking || holders.single > 0 || (holders.threaded > 0 && blasThreads != want)
                || (waiting.single > 0 && holders.threaded > 0) {
                pthread_cond_wait(&changed, &mutex)
            }
            waiting.threaded -= 1
            if holders.threaded == 0 && blasThreads != want { openblas_set_num_threads(want); blasThreads = want }
            holders.threaded += 1
        }
    }

    private static func release(_ mode: Mode) {
        pthread_mutex_lock(&mutex)
        switch mode {
        case .single: holders.single -= 1
        case .threaded: holders.threaded -= 1
        }
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Fork, prepare: wait until no region runs (so no library thread is inside the Swift runtime or a
    /// chunk when the address space is copied), then keep the mutex until the parent or child handler.
    static func prepareForFork() {
        pthread_mutex_lock(&mutex)
        forking = true
        while holders.single > 0 || holders.threaded > 0 { pthread_cond_wait(&changed, &mutex) }
    }

    static func parentAfterFork() {
        forking = false
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Fork, child: the threads that waited for a turn did not survive fork. OpenBLAS keeps its thread count.
    static func childAfterFork() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        forking = false
        holders = (0, 0)
        waiting = (0, 0)
    }

}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

#if os(Linux)
/// glibc's `int mallopt(int param, int value)` (declared in <malloc.h>, which Glibc's module map omits).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
