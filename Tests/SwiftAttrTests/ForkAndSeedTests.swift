#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import SwiftAttr

/// A global whose first use takes the Swift runtime's `once` lock for 20 ms: in a fork child, the thread
/// that forked holds that lock under its parent's cached thread id, so any thread contending for it then
/// hangs (see ``WorkerPool``). Each child process initialises its own copy.
private enum SlowOnce {
    static let value: Int = {
        usleep(20_000)
        return 42
    }()
}

/// A global whose initializer a chunk is running (300 ms) while the test forks.
private enum SlowOnceInRegion {
    static let value: Int = {
        usleep(300_000)
        return 7
    }()
}

/// A stop flag and a round counter shared by a test and its background thread.
private final class BusyState: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var count = 0, done = false
    init() { pthread_mutex_init(&mutex, nil) }
    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
    var rounds: Int { locked { count } }
    var stopped: Bool { locked { done } }
    func finishRound() { locked { count += 1 } }
    func stop() { locked { done = true } }
}

/// Fork safety of the worker pool, and seeded draws that depend only on (seed, example, sample).
final class ForkAndSeedTests: XCTestCase {
    override func tearDown() {
        try? Parallel.setThreadCount(Parallel.defaultThreadCount)
    }

    // MARK: Fork

    /// Forks `count` children that each run `child` (returning an exit status) under a 10 s alarm;
    /// returns (hung, failed) children. The parent kills a child still alive after 60 s.
    private func forkChildren(_ count: Int, _ child: () -> Int32) -> (hung: Int, failed: Int) {
        var hung = 0, failed = 0
        for _ in 0..<count {
            let pid = fork()
            if pid == 0 {
                alarm(10)
                _exit(child())
            }
            XCTAssertGreaterThan(pid, 0, "fork")
            let start = Date()
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date().timeIntervalSince(start) > 60 { kill(pid, SIGKILL) }
                usleep(1000)
            }
            let signalled = status & 0x7f
            if signalled == SIGALRM || signalled == SIGKILL {
                hung += 1
            } else if signalled != 0 || (status >> 8) & 0xff != 0 {
                failed += 1
            }
        }
        return (hung, failed)
    }

    /// A chunk that first touches a lazy global in a fork child: before the fix the forking thread ran chunk
    /// 0, took the global's once lock under its parent's thread id, and the workers contending for it hung
    /// the child. Now the calling thread only waits, so every chunk runs on a pool thread born in the child.
    /// The parent has used the pool first, so the child must also rebuild it (its threads are gone).
    func testForkedChildRunsChunksOnFreshThreadsAndDoesNotHang() throws {
        try Parallel.setThreadCount(4)
        Parallel.singleThreadedBLAS { Parallel.forEachChunk(count: 8, chunk: 1) { _, _, _ in usleep(100) } }
        let result = forkChildren(6) {
            let caller = pthread_self()
            let ranOnCaller = UnsafeMutablePointer<Int>.allocate(capacity: 8)
            ranOnCaller.initialize(repeating: -1, count: 8)
            let sums = UnsafeMutablePointer<Int>.allocate(capacity: 8)
            sums.initialize(repeating: 0, count: 8)
            Parallel.singleThreadedBLAS {
                Parallel.forEachChunk(count: 8, chunk: 1) { c, _, _ in
                    sums[c] = SlowOnce.value
                    ranOnCaller[c] = pthread_equal(pthread_self(), caller) != 0 ? 1 : 0
                }
            }
            if (0..<8).contains(where: { ranOnCaller[$0] != 0 }) { return 3 }
            return (0..<8).allSatisfy { sums[$0] == 42 } ? 0 : 4
        }
        XCTAssertEqual(result.hung, 0, "forked children hung")
        XCTAssertEqual(result.failed, 0, "forked children ran a chunk on the forking thread or lost a chunk")
    }

    /// Forking while a pool thread is inside the Swift runtime's once lock (a lazy global's initializer, as
    /// metadata instantiation is on first use): before the fix fork copied the lock held by a thread that
    /// does not exist in the child, and the child's first use of that global hung. Now fork waits until no
    /// region runs, so the child sees the global initialised.
    func testForkWaitsForRegionsInsideTheRuntimesLocks() throws {
        try Parallel.setThreadCount(2)
        let state = BusyState()
        let region = Thread {
            Parallel.singleThreadedBLAS {
                Parallel.forEachChunk(count: 2, chunk: 1) { c, _, _ in
                    if c == 0 { state.finishRound() }
                    _ = SlowOnceInRegion.value
                }
            }
            state.stop()
        }
        region.start()
        while state.rounds == 0 { usleep(100) }
        usleep(20_000)  // a chunk is now inside the initializer
        let result = forkChildren(1) { SlowOnceInRegion.value == 7 ? 0 : 6 }
        XCTAssertEqual(result.hung, 0, "the forked child hung on a lock copied from inside a region")
        XCTAssertEqual(result.failed, 0, "the forked child failed")
        while !state.stopped { usleep(1000) }
    }

    /// Forking while another thread is inside a region: fork waits for the region to end, so the child
    /// copies no lock held and no chunk in flight; the child's own regions work, and so do the parent's.
    func testForkWhileAnotherThreadRunsRegions() throws {
        try Parallel.setThreadCount(3)
        let state = BusyState()
        let busy = Thread {
            while !state.stopped {
                Parallel.singleThreadedBLAS { Parallel.forEachChunk(count: 6, chunk: 1) { _, _, _ in usleep(200) } }
                state.finishRound()
            }
        }
        busy.start()
        while state.rounds == 0 { usleep(100) }
        let result = forkChildren(20) {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: 6)
            hits.initialize(repeating: 0, count: 6)
            Parallel.singleThreadedBLAS { Parallel.forEachChunk(count: 6, chunk: 1) { c, _, _ in hits[c] += 1 } }
            return (0..<6).allSatisfy { hits[$0] == 1 } ? 0 : 5
        }
        let before = state.rounds
        usleep(50_000)
        XCTAssertGreaterThan(state.rounds, before, "the parent's regions continue after fork")
        state.stop()
        while !busy.isFinished { usleep(1000) }
        XCTAssertEqual(result.hung, 0, "forked children hung")
        XCTAssertEqual(result.failed, 0, "forked children computed wrong chunks")
    }
}
