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
        // 40·300 + 40 + … floats: enough to split the sum over workers.
        let n = net([300], [g.dense(40, 300), .relu, g.dense(3, 40)])
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
}
