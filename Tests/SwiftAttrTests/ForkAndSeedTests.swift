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

    // MARK: Seeded draws

    /// Random123's known-answer vectors for philox4x32 with 10 rounds (counter, key → output).
    func testPhiloxKnownAnswers() {
        let cases: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), (UInt32, UInt32, UInt32, UInt32))] = [
            ((0, 0, 0, 0), (0, 0), (0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8)),
            ((.max, .max, .max, .max), (.max, .max), (0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD)),
            ((0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), (0xA409_3822, 0x299F_31D0),
             (0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1)),
        ]
        for (counter, key, expected) in cases {
            let out = CounterRandom.philox(counter: counter, key: key)
            XCTAssert(out == expected, "philox(\(counter), \(key)) = \(out), expected \(expected)")
        }
        // The key is the seed (low word first), the counter (example low, example high, sample, block).
        let b = CounterRandom.block(seed: 0x299F_31D0_A409_3822, example: 0x85A3_08D3_243F_6A88, sample: 0x1319_8A2E, block: 0x0370_7344)
        XCTAssert(b == cases[2].2, "block() packs seed and counter as documented")
    }

    /// Uniforms lie in [0, 1); the normals of 20,000 blocks have mean 0 and variance 1 within 5 standard
    /// errors (√(1/n) and √(2/n)), and their two halves are uncorrelated.
    func testCounterDrawsAreUniformAndNormal() {
        var sum = 0.0, squares = 0.0, cross = 0.0, n = 0.0
        for e in 0..<100 {
            for s in 0..<100 {
                for b in 0..<2 {
                    let (u, v) = CounterRandom.uniforms(seed: 9, example: UInt64(e), sample: UInt32(s), block: UInt32(b))
                    XCTAssert(u >= 0 && u < 1 && v >= 0 && v < 1)
                    let (z0, z1) = CounterRandom.normals(seed: 9, example: UInt64(e), sample: UInt32(s), block: UInt32(b))
                    sum += z0 + z1
                    squares += z0 * z0 + z1 * z1
                    cross += z0 * z1
                    n += 2
                }
            }
        }
        XCTAssertEqual(sum / n, 0, accuracy: 5 / n.squareRoot())
        XCTAssertEqual(squares / n, 1, accuracy: 5 * (2 / n).squareRoot())
        XCTAssertEqual(cross / (n / 2), 0, accuracy: 5 / (n / 2).squareRoot())
    }

    private func seededNet(_ g: inout Gen) -> Network {
        net([6], [g.dense(12, 6), .relu, g.dense(10, 12), .tanh, g.dense(3, 10)])
    }

    /// Largest difference of `a` from `b` relative to max|b| over each example's row (`width` values).
    private func worstPerExample(_ a: [Float], _ b: [Float], width: Int) -> Double {
        var worst = 0.0
        for start in stride(from: 0, to: b.count, by: width) {
            let scale = max(b[start..<(start + width)].map { Double(abs($0)) }.max()!, 1e-30)
            for k in start..<(start + width) { worst = max(worst, Double(abs(a[k] - b[k])) / scale) }
        }
        return worst
    }

    /// Tolerance of the comparisons below that change chunk shapes: each sample's gradient comes from
    /// GEMMs of depth K ≤ 12 whose rounding depends on the GEMM shape (≤ K·u·Σ|w||h| per product, u = 6e-8,
    /// so ≤ 1e-6 of the gradient's scale through three layers); the per-example mean over samples keeps that
    /// bound, and the Double accumulators add nothing at float32 precision. 1e-5 of the example's max|φ|
    /// leaves a margin of 10 for the scale of intermediate sums. A seed change moves φ by Monte Carlo error,
    /// far above it (asserted > 1e-2).
    private let roundingTolerance = 1e-5

    /// 64 rows in one call equal four calls of 16 with exampleOffset 0, 16, 32, 48 (before: the streams were
    /// keyed by the row's index in the call, and the pieces differed by 26 % relative); the offset matters;
    /// seeds still matter.
    func testSplitBatchesReproduceOneCall() throws {
        var g = Gen(801)
        let n = seededNet(&g)
        let rows = 64, d = 6
        let x = g.normals(rows * d), refs = g.normals(9 * d)
        let targets = (0..<rows).map { $0 % 3 }
        func eg(_ r: Range<Int>, offset: Int, seed: UInt64 = 5) throws -> [Float] {
            try n.expectedGradients(Array(x[(r.lowerBound * d)..<(r.upperBound * d)]), rows: r.count, references: refs, referenceCount: 9,
                                    targets: Array(targets[r]), samples: 40, seed: seed, exampleOffset: offset)
        }
        func sg(_ r: Range<Int>, offset: Int, aggregation: Network.NoiseAggregation, seed: UInt64 = 5) throws -> [Float] {
            try n.smoothGrad(Array(x[(r.lowerBound * d)..<(r.upperBound * d)]), rows: r.count, targets: Array(targets[r]),
                             aggregation: aggregation, samples: 30, stdev: 0.4, seed: seed, exampleOffset: offset)
        }
        let pieces = [0..<16, 16..<32, 32..<48, 48..<64]
        let whole = try eg(0..<64, offset: 0)
        let split = try pieces.flatMap { try eg($0, offset: $0.lowerBound) }
        XCTAssertLessThan(worstPerExample(split, whole, width: d), roundingTolerance, "EG: four calls of 16 vs one call of 64")
        let unshifted = try pieces.flatMap { try eg($0, offset: 0) }
        XCTAssertGreaterThan(worstPerExample(unshifted, whole, width: d), 1e-2, "EG: the example offset selects the streams")
        XCTAssertGreaterThan(worstPerExample(try eg(0..<64, offset: 0, seed: 6), whole, width: d), 1e-2, "EG: seeds matter")
        for aggregation in Network.NoiseAggregation.allCases {
            let whole = try sg(0..<64, offset: 0, aggregation: aggregation)
            let split = try pieces.flatMap { try sg($0, offset: $0.lowerBound, aggregation: aggregation) }
            XCTAssertLessThan(worstPerExample(split, whole, width: d), roundingTolerance, "\(aggregation.name): four calls of 16 vs one call of 64")
            let unshifted = try pieces.flatMap { try sg($0, offset: 0, aggregation: aggregation) }
            XCTAssertGreaterThan(worstPerExample(unshifted, whole, width: d), 1e-2, "\(aggregation.name): the example offset selects the streams")
            XCTAssertGreaterThan(worstPerExample(try sg(0..<64, offset: 0, aggregation: aggregation, seed: 6), whole, width: d), 1e-2,
                                 "\(aggregation.name): seeds matter")
        }
        assertError(.invalidArgument, mentioning: "first_example") { try eg(0..<4, offset: -1) }
        assertError(.invalidArgument, mentioning: "first_example") { try eg(0..<4, offset: Int.max - 2) }
    }

    /// internal_batch_size and the thread count change nothing but rounding (tolerance as above), and one
    /// setting repeats bit for bit.
    func testChunkingAndThreadsChangeOnlyRounding() throws {
        var g = Gen(802)
        let n = seededNet(&g)
        let rows = 10, d = 6
        let x = g.normals(rows * d), refs = g.normals(7 * d)
        try Parallel.setThreadCount(1)
        let eg0 = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 7, targets: [2], samples: 33, seed: 3)
        let sg0 = try n.smoothGrad(x, rows: rows, targets: [1], aggregation: .varGrad, samples: 21, stdev: 0.5, seed: 3)
        for threads in [1, 2, 3] {
            try Parallel.setThreadCount(threads)
            for chunk in [nil, 1, 7, 64, 1000] {
                let eg = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 7, targets: [2], samples: 33, seed: 3, internalBatchSize: chunk)
                let sg = try n.smoothGrad(x, rows: rows, targets: [1], aggregation: .varGrad, samples: 21, stdev: 0.5, seed: 3, internalBatchSize: chunk)
                XCTAssertLessThan(worstPerExample(eg, eg0, width: d), roundingTolerance, "EG, \(threads) threads, chunk \(String(describing: chunk))")
                XCTAssertLessThan(worstPerExample(sg, sg0, width: d), roundingTolerance, "vargrad, \(threads) threads, chunk \(String(describing: chunk))")
                XCTAssertEqual(eg, try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 7, targets: [2], samples: 33, seed: 3, internalBatchSize: chunk),
                               "EG repeats bit for bit")
            }
        }
    }

    /// Path sums do not depend on the chunking. On a linear model every term is exact (IG: the quadrature
    /// weight w_k in the target's slot; EG with one Dense layer: (x − x')_j · w_tj / S, one float32 product),
    /// so only the order of the additions could differ; the accumulators add in Double, which is exact here
    /// (terms within 2^12 of each other: 24 + 12 + log2(50) < 53 bits), so every chunking and thread count
    /// must give the same floats. Before, float32 accumulators rounded differently per chunking.
    func testPathSumsDoNotDependOnChunking() throws {
        var g = Gen(803)
        let d = 5, rows = 4
        let w = g.awayFromZero(3 * d, gap: 0.5)
        let n = net([d], [.dense(try .init(weight: w, bias: [0.1, 0.2, 0.3], outFeatures: 3, inFeatures: d))])
        let x = g.awayFromZero(rows * d, gap: 1, scale: 1), base = g.normals(rows * d, scale: 0.1)
        let refs = g.normals(6 * d, scale: 0.1)
        try Parallel.setThreadCount(1)
        let ig0 = try n.integratedGradients(x, rows: rows, baselines: base, targets: [0, 1, 2, 1], steps: 50).attributions
        let eg0 = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 6, targets: [2], samples: 50, seed: 1)
        for threads in [1, 2, 3] {
            try Parallel.setThreadCount(threads)
            for chunk in [1, 2, 3, 7, 13, 64] {
                let ig = try n.integratedGradients(x, rows: rows, baselines: base, targets: [0, 1, 2, 1], steps: 50, internalBatchSize: chunk).attributions
                XCTAssertEqual(ig, ig0, "IG of a linear model, \(threads) threads, chunk \(chunk)")
                let eg = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 6, targets: [2], samples: 50, seed: 1, internalBatchSize: chunk)
                XCTAssertEqual(eg, eg0, "EG of a linear model, \(threads) threads, chunk \(chunk)")
            }
        }
    }
}
