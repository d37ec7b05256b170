import Foundation
import XCTest
@testable import SwiftAttr

/// The worker pool (Core/Parallel.swift): the calling thread runs unit 0 and any unit still unclaimed,
/// idle threads poll before they sleep. A lost wake-up would hang these tests (and XCTest's time-out would
/// fail them); a unit run twice or never, or a worker index out of range, fails the counts.
final class WorkerPoolTests: XCTestCase {
    override func tearDown() {
        try? Parallel.setThreadCount(Parallel.defaultThreadCount)
    }

    /// Many short regions in a row (each hand-off between polling and sleeping threads), with 1 to 5 units:
    /// every unit runs exactly once, and a region returns only after all of its units have finished.
    func testEveryUnitRunsOnceAndTheRegionWaitsForAll() {
        for workers in 1...5 {
            for round in 0..<400 {
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: workers)
                counts.initialize(repeating: 0, count: workers)
                defer { counts.deallocate() }
                WorkerPool.run(workers: workers) { w in
                    // Some units take longer, so the caller often finishes first and waits.
                    if w == workers - 1 && round % 3 == 0 { usleep(50) }
                    counts[w] += 1
                }
                for w in 0..<workers { XCTAssertEqual(counts[w], 1, "workers \(workers), round \(round), unit \(w)") }
            }
        }
    }

    /// Regions separated by pauses longer than the poll (200 µs), so the pool's threads have gone to sleep
    /// and must be woken.
    func testRegionsAfterThePoolSleeps() {
        for round in 0..<20 {
            usleep(round % 2 == 0 ? 1_000 : 300)
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            counts.initialize(repeating: 0, count: 2)
            defer { counts.deallocate() }
            WorkerPool.run(workers: 2) { w in counts[w] += 1 }
            XCTAssertEqual([counts[0], counts[1]], [1, 1], "round \(round)")
        }
    }

    /// Four threads open regions at once, each of whose units opens a nested region (run by pool threads and
    /// by the unit's own thread): every nested unit runs once, nothing deadlocks.
    func testConcurrentCallersAndNestedRegions() {
        let callers = 4, outer = 3, inner = 3, rounds = 50
        let total = UnsafeMutablePointer<Int>.allocate(capacity: callers * outer * inner)
        total.initialize(repeating: 0, count: callers * outer * inner)
        defer { total.deallocate() }
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<rounds {
                WorkerPool.run(workers: outer) { o in
                    WorkerPool.run(workers: inner) { i in
                        lock.lock()
                        total[(caller * outer + o) * inner + i] += 1
                        lock.unlock()
                    }
                }
            }
        }
        for k in 0..<(callers * outer * inner) { XCTAssertEqual(total[k], rounds, "slot \(k)") }
    }

    /// forEachChunk with more workers than processors: chunk c goes to worker c mod workers, every chunk
    /// exactly once, and per-worker sums repeat bit for bit.
    func testChunksGoToTheirWorkersWithMoreThreadsThanProcessors() throws {
        try Parallel.setThreadCount(Parallel.processorCount + 2)
        let count = 1_000, chunk = 7
        func run() -> ([Int], [Float]) {
            let workers = Parallel.workers(count: count, chunk: chunk)
            var owner = [Int](repeating: -1, count: count)
            var sums = [Float](repeating: 0, count: workers)
            owner.withUnsafeMutableBufferPointer { o in
                sums.withUnsafeMutableBufferPointer { s in
                    let o = o.baseAddress!, s = s.baseAddress!
                    Parallel.forEachChunk(count: count, chunk: chunk) { c, rows, w in
                        XCTAssertEqual(c % workers, w)
                        for r in rows {
                            XCTAssertEqual(o[r], -1, "row \(r) twice")
                            o[r] = w
                            s[w] += Float(r).squareRoot()
                        }
                    }
                }
            }
            return (owner, sums)
        }
        let (owner, sums) = run()
        XCTAssertFalse(owner.contains(-1), "a row was never run")
        for _ in 0..<5 {
            let (again, sumsAgain) = run()
            XCTAssertEqual(again, owner)
            XCTAssertEqual(sumsAgain.map(\.bitPattern), sums.map(\.bitPattern))
        }
    }
}
