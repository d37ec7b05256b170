import XCTest
@testable import SwiftAttr

/// The trainer's fast paths: the optimiser's finiteness findings (which replace separate scans of the
/// gradients and a checked rebuild of the network), its update split over workers, the gradient parts summed
/// on workers, and the unchecked rebuild of a network from trusted parameters.
final class TrainingSpeedPathTests: XCTestCase {
    /// A penalty adding `gradient(step)` (nil: zeros) to the task's gradients.
    final class InjectedGradient: TrainingPenalty {
        let gradient: (TrainingStep, [[Int]]) -> [[Float]]?
        init(_ gradient: @escaping (TrainingStep, [[Int]]) -> [[Float]]?) { self.gradient = gradient }
        func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]]) {
            let shapes = network.parameterShapes
            return (0, gradient(step, shapes) ?? shapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) })
        }
    }

    func testTrustedParametersGiveTheCheckedNetwork() throws {
        var g = Gen(21)
        // 16 → 16 channels, 3×3 stride 1: a Winograd plan, which must follow the new weights.
        let n = net([16, 6, 6], [g.conv(16, 16, kernel: [3, 3], padding: [1, 1]), g.batchNorm(16), .relu, .flatten, g.dense(3, 576)])
        var p = n.parameters
        for k in p.indices { p[k] = g.normals(p[k].count) }
        let checked = try n.withParameters(p), trusted = try n.withTrustedParameters(p)
        XCTAssertEqual(trusted, checked, "layers and convolution plans")
        XCTAssertNotNil(trusted.convolutionPlans[0]?.forward)
        XCTAssertNotEqual(trusted.convolutionPlans[0], n.convolutionPlans[0])
    }

    func testUpdateFindsNonFiniteGradientsAndWeights() throws {
        var s = OptimizerSettings()
        s.kind = .sgd
        s.learningRate = 1e38
        var opt = try OptimizerState(s)
        var p: [[Float]] = [[1, 2, 3], [0.5], Array(repeating: 1, count: 11)]
        var grad: [[Float]] = [[0, 0, 0], [0], Array(repeating: 0, count: 11)]
        XCTAssertEqual(opt.update(&p, gradients: grad), UpdateFindings())
        grad[2][10] = .nan  // the scalar remainder of an 8-lane loop
        grad[1][0] = .infinity
        XCTAssertEqual(opt.update(&p, gradients: grad), UpdateFindings(nonFiniteGradient: 1, nonFiniteParameter: 1))
        // Finite gradients, weights that overflow: 0 − 1e38·(−1e-30) is finite, −3e38 − 1e38·4 is not.
        var q: [[Float]] = [Array(repeating: 0, count: 9), [-3e38]]
        var opt2 = try OptimizerState(s)
        XCTAssertEqual(opt2.update(&q, gradients: [Array(repeating: -1e-30, count: 9), [4]]), UpdateFindings(nonFiniteGradient: nil, nonFiniteParameter: 1))
    }

    /// The update of each element is the same scalar formula whatever the split, so 1, 2 and 3 workers give
    /// identical bits (the arrays are large enough to be split; their sizes are not multiples of 8).
    func testSplitUpdateIsBitIdenticalAcrossThreadCounts() throws {
        var g = Gen(22)
        let sizes = [40_003, 17, 9_001]
        let start = sizes.map { g.normals($0) }
        let grads = (0..<3).map { _ in sizes.map { g.normals($0) } }
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        var results: [[[Float]]] = []
        for threads in [1, 2, 3] {
            try Parallel.setThreadCount(threads)
            XCTAssertEqual(partCount(ofArrays: sizes), threads)
            var s = OptimizerSettings()
            s.weightDecay = 0.01
            var opt = try OptimizerState(s)
            var p = start
            for step in grads { XCTAssertEqual(opt.update(&p, gradients: step), UpdateFindings()) }
            results.append(p)
        }
        XCTAssertEqual(results[1], results[0])
        XCTAssertEqual(results[2], results[0])
        XCTAssertNotEqual(results[0], start)
    }

    /// forEachPart covers every element of every array exactly once.
    func testPartsCoverEveryElementOnce() throws {
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(3)
        let counts = [0, 5, 1 << 15, 13]
        var seen = counts.map { [Int](repeating: 0, count: $0) }
        let lock = NSLock()
        forEachPart(ofArrays: counts) { _, k, range in
            lock.lock()
            for e in range { seen[k][e] += 1 }
            lock.unlock()
        }
        XCTAssertEqual(seen, counts.map { [Int](repeating: 1, count: $0) })
    }

    func testNonFiniteGradientAndWeightsStopNamingTheArrayAndStep() throws {
        var g = Gen(23)
        let n = net([3], [g.dense(4, 3), .tanh, g.dense(2, 4)])
        let x = g.normals(40 * 3), y = (0..<40).map { $0 % 2 }
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 10
        let nan = InjectedGradient { step, shapes in
            guard step.epoch == 2, step.step == 3 else { return nil }
            var z = shapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) }
            z[2][5] = .nan
            return z
        }
        assertError(.numerical, mentioning: "the gradient of layer 2 (Linear) weight is not finite at epoch 2, step 3") {
            try n.train(x, rows: 40, labels: .classes(y), options: o, penalties: [nan])
        }
        o.optimizer.kind = .sgd
        o.optimizer.learningRate = 10
        // A finite gradient −1e38 on one bias at step 2: b − 10·(−1e38) overflows.
        let huge = InjectedGradient { step, shapes in
            var z = shapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) }
            z[1][0] = step.step == 2 ? -1e38 : 0
            return z
        }
        assertError(.numerical, mentioning: "the weights became non-finite at epoch 1, step 2 (layer 0 (Linear) bias") {
            try n.train(x, rows: 40, labels: .classes(y), options: o, penalties: [huge])
        }
    }

    /// A batch split over workers sums its parts' gradients on the workers, per element in chunk order: the
    /// same bits as the sequential sum of the parts.
    func testSummedGradientPartsEqualTheSequentialSum() throws {
        var g = Gen(24)
        // 40·300 + 40 + … floats: enough to split the sum over workers. The pooling node (kernel 1: the
        // identity) makes the network one that trains in chunks of rows (TrainingChunks).
        let n = net([1, 300], [.avgPool1d(pool([1])), .flatten, g.dense(40, 300), .relu, g.dense(3, 40)])
        XCTAssertFalse(n.trainsAsOneChunk)
        let rows = 64, x = g.normals(rows * 300), y = (0..<rows).map { $0 % 3 }
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(2)
        let whole = try n.lossAndGradients(x, rows: rows, labels: .classes(y), loss: .crossEntropy)
        // The two chunks the batch is split into (32 rows each), each alone on one thread, summed in order.
        try Parallel.setThreadCount(1)
        var expected: [[Float]]?
        for half in 0..<2 {
            let part = try n.lossAndGradients(Array(x[(half * 32 * 300)..<((half + 1) * 32 * 300)]), rows: 32,
                                              labels: .classes(Array(y[(half * 32)..<((half + 1) * 32)])), loss: .crossEntropy)
            // A part alone divides its loss cotangent by 32, the batch's chunk by 64: a power of two, so every
            // product and sum downstream scales exactly (no subnormals here) and halving restores the bits.
            let scaled = part.gradients.map { $0.map { $0 * 0.5 } }
            if expected == nil { expected = scaled } else { for k in scaled.indices { addInPlace(&expected![k], scaled[k]) } }
        }
        XCTAssertEqual(whole.gradients, expected!)
    }

    // MARK: The split of a training pass (TrainingChunks)

    /// The one rule: a network of GEMMs and elementwise nodes runs a batch within the budget as one chunk
    /// with split GEMMs; other networks, and batches over the budget, run chunks of rows on the workers, at
    /// least 16 points each.
    func testTrainingChunkRule() throws {
        var g = Gen(25)
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(2)
        let mlp = net([784], [g.dense(64, 784), .relu, g.dense(10, 64)])
        XCTAssertTrue(mlp.trainsAsOneChunk)
        let whole = TrainingChunks(mlp, rows: 64)
        XCTAssertEqual([whole.count, whole.size], [1, 64])
        XCTAssertTrue(whole.splitsGEMMs)
        // Over the budget (2²⁰ floats of tape per worker: 922 per row here, so 1,137 rows, 379 points of
        // three tapes; one chunk may hold two workers' 758): chunks of rows, one or more per worker, none
        // larger than a worker's budget.
        let big = TrainingChunks(mlp, rows: 1000, tapesPerPoint: 3)
        XCTAssertFalse(big.splitsGEMMs)
        XCTAssertEqual([big.count, big.size], [4, 250])
        XCTAssertTrue(TrainingChunks(mlp, rows: 700, tapesPerPoint: 3).splitsGEMMs, "700 points of three tapes fit two workers' budgets")
        XCTAssertTrue(TrainingChunks(mlp, rows: 1000).splitsGEMMs, "one tape per point: within the budget")
        XCTAssertTrue(TrainingChunks(mlp, rows: 64, pointsPerExample: 4, tapesPerPoint: 3).splitsGEMMs, "k = 4 references")
        // A convolution: one chunk per worker (of examples with their k points each).
        let cnn = net([1, 6, 6], [g.conv(2, 1, kernel: [3, 3]), .relu, .flatten, g.dense(3, 32)])
        XCTAssertFalse(cnn.trainsAsOneChunk)
        let rows = TrainingChunks(cnn, rows: 64)
        XCTAssertEqual([rows.count, rows.size], [2, 32])
        XCTAssertFalse(rows.splitsGEMMs)
        XCTAssertEqual(TrainingChunks(cnn, rows: 12, pointsPerExample: 4).size, 6)
        // One thread: one chunk, nothing split.
        try Parallel.setThreadCount(1)
        let one = TrainingChunks(mlp, rows: 64)
        XCTAssertEqual(one.count, 1)
        XCTAssertFalse(one.splitsGEMMs)
    }

    /// Split GEMMs (blocks of C on the workers, along its larger dimension, every transposition) equal the
    /// unsplit GEMM up to float32 rounding and repeat bit for bit. Each entry of C is the same k-term dot
    /// product either way; only the kernel's register tile may differ at block edges, so the differences are
    /// a few ulps of |A||B| (k = 70 terms of magnitude ≤ 4·4: 1e-5 of the scale is ample).
    func testSplitGEMMsEqualTheUnsplitGEMM() throws {
        var g = Gen(26)
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(3)
        for (m, n) in [(70, 300), (300, 70)] {
            let k = 70
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = g.normals(m * k), b = g.normals(k * n), c0 = g.normals(m * n)
                    XCTAssertGreaterThanOrEqual(m * n * k, BLAS.splitGEMMWork)
                    // The GEMM is really cut (else the comparison below compares the unsplit GEMM with itself).
                    let plan = try XCTUnwrap(BLAS.splitPlan(m: m, n: n, k: k, workers: Parallel.workerCount))
                    XCTAssertGreaterThan(plan.parts, 1)
                    XCTAssertEqual(plan.alongColumns, n >= m)
                    func run(_ split: Bool) -> [Float] {
                        var c = c0
                        a.withUnsafeBufferPointer { ap in
                            b.withUnsafeBufferPointer { bp in
                                c.withUnsafeMutableBufferPointer { cp in
                                    Parallel.singleThreadedBLAS {
                                        Parallel.splittingGEMMs(split) {
                                            BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!,
                                                       b: bp.baseAddress!, beta: 0.25, c: cp.baseAddress!)
                                        }
                                    }
                                }
                            }
                        }
                        return c
                    }
                    let plain = run(false), split = run(true)
                    assertClose(split, plain, rel: 1e-5, "\(m)×\(n) transA \(transA) transB \(transB)")
                    XCTAssertEqual(run(true), split, "repeats")
                }
            }
        }
    }

    /// A dense network's step runs as one chunk with split GEMMs: its loss and gradients (with and without an
    /// expected-gradients prior) equal the chunked computation of one thread up to float32 rounding (sums over
    /// the rows in another grouping: a few ulps, 1e-5 of the scale is ample), and repeat bit for bit.
    func testOneChunkStepsAgreeWithOneThreadAndRepeat() throws {
        var g = Gen(27)
        let n = net([200], [g.dense(96, 200), .relu, g.dense(48, 96), .relu, g.dense(3, 48)])
        let rows = 64, x = g.normals(rows * 200), y = (0..<rows).map { $0 % 3 }
        let prior = try AttributionPrior(.l1, lambda: 0.5)
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(1)
        let one = try n.lossAndGradients(x, rows: rows, labels: .classes(y), loss: .crossEntropy, penalties: [prior], seed: 3)
        try Parallel.setThreadCount(2)
        XCTAssertTrue(TrainingChunks(n, rows: rows, tapesPerPoint: 3).splitsGEMMs)
        // The first layer's GEMMs (64 × 96 × 200 forward, 96 × 200 × 64 for its weight gradient) are cut.
        XCTAssertGreaterThan(try XCTUnwrap(BLAS.splitPlan(m: rows, n: 96, k: 200, workers: Parallel.workerCount)).parts, 1)
        XCTAssertGreaterThan(try XCTUnwrap(BLAS.splitPlan(m: 96, n: 200, k: rows, workers: Parallel.workerCount)).parts, 1)
        let two = try n.lossAndGradients(x, rows: rows, labels: .classes(y), loss: .crossEntropy, penalties: [prior], seed: 3)
        let again = try n.lossAndGradients(x, rows: rows, labels: .classes(y), loss: .crossEntropy, penalties: [prior], seed: 3)
        XCTAssertEqual(two.loss, one.loss, accuracy: 1e-6 * one.loss)
        for k in one.gradients.indices { assertClose(two.gradients[k], one.gradients[k], rel: 1e-5, "gradient \(k), split vs one thread") }
        XCTAssertEqual(again.loss, two.loss)
        XCTAssertEqual(again.gradients, two.gradients)
    }
}
