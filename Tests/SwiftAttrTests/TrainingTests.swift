import XCTest
@testable import SwiftAttr

/// The trainer (Sources/SwiftAttr/Training): parameter gradients against float64 central differences of
/// the independent reference forward of TestSupport.swift, the optimisers against hand-computed updates,
/// seeded shuffling, convergence, repeatability, divergence and early stopping.
final class TrainingTests: XCTestCase {
    // MARK: Float64 reference losses (written from PyTorch's definitions, independently of Losses.swift)

    /// The mean loss of reference outputs `f` (rows × width). `probabilities`: `f` is the output of a final
    /// Softmax (cross-entropy) or Sigmoid (binary cross-entropy), so the loss is taken of its log.
    static func referenceLoss(_ f: [Double], rows: Int, labels: TrainingLabels, loss: Loss, probabilities: Bool = false) -> Double {
        let width = f.count / rows
        switch (loss, labels) {
        case (.crossEntropy, .classes(let c)):
            var total = 0.0
            for n in 0..<rows {
                let z = Array(f[(n * width)..<((n + 1) * width)])
                if probabilities { total -= log(z[c[n]]); continue }
                let lse = log(z.map { exp($0) }.reduce(0, +))
                total += lse - z[c[n]]
            }
            return total / Double(rows)
        case (.mse, .values(let y)):
            return zip(f, y).map { ($0 - Double($1)) * ($0 - Double($1)) }.reduce(0, +) / Double(f.count)
        case (.binaryCrossEntropy, .values(let y)):
            return zip(f, y).map { z, t in
                let p = probabilities ? z : 1 / (1 + exp(-z))
                return -(Double(t) * log(p) + (1 - Double(t)) * log(1 - p))
            }.reduce(0, +) / Double(f.count)
        default:
            fatalError("labels do not fit the loss")
        }
    }

    /// Checks the loss and every parameter gradient of `net` against the float64 reference: the loss to
    /// 1e-5 relative and the gradient to 1e-4 of its largest entry. Finite differences perturb each float32
    /// parameter by h = 1e-3·max(1, |p|) and divide by the difference of the stored perturbed values, so the
    /// only error of the FD quotient is truncation, O(h²·f''') ≈ 1e-6 for these O(1) functions, while the
    /// engine's float32 gradient is accurate to ~1e-6 relative (a few hundred float32 operations per entry):
    /// 1e-4 leaves two orders of margin, and a wrong index, term or factor is off by O(1).
    func checkGradients(_ net: Network, _ x: [Float], rows: Int, labels: TrainingLabels, loss: Loss, probabilities: Bool = false,
                        _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (value, gradients) = try net.lossAndGradients(x, rows: rows, labels: labels, loss: loss)
        XCTAssertEqual(gradients.map(\.count), net.parameterShapes.map { $0.reduce(1, *) }, what, file: file, line: line)
        func reference(_ n: Network) -> Double {
            var r = Reference(n)
            return Self.referenceLoss(r.forwardBatch(x, rows: rows), rows: rows, labels: labels, loss: loss, probabilities: probabilities)
        }
        var ref = Reference(net)
        _ = ref.forwardBatch(x, rows: rows)
        XCTAssertGreaterThan(ref.kink, 1e-2, "\(what): the point lies near a kink", file: file, line: line)
        let expected = reference(net)
        XCTAssertEqual(value, expected, accuracy: 1e-5 * max(1, abs(expected)), "\(what) loss", file: file, line: line)
        var fd: [Double] = []
        let p = net.parameters
        for k in p.indices {
            for e in p[k].indices {
                var q = p
                let w = p[k][e], h = 1e-3 * max(1, abs(w))
                q[k][e] = w + h
                let wp = q[k][e], fp = reference(try net.withParameters(q))
                q[k][e] = w - h
                let wm = q[k][e], fm = reference(try net.withParameters(q))
                fd.append((fp - fm) / (Double(wp) - Double(wm)))
            }
        }
        XCTAssertGreaterThan(maxAbs(fd), 1e-3, "\(what): degenerate gradient", file: file, line: line)
        assertClose(gradients.flatMap { $0 }, fd, rel: 1e-4, "\(what) parameter gradients", file: file, line: line)
    }

    static func classes(_ rows: Int, _ k: Int, seed: UInt64) -> [Int] {
        var r = RandomSource(seed: seed)
        return (0..<rows).map { _ in r.index(k) }
    }

    // MARK: Parameter gradients

    func testMLPGradientsForEachLoss() throws {
        var g = Gen(1)
        let hidden: [Layer] = [g.dense(5, 4), .tanh, g.dense(6, 5), .softplus(beta: 2), g.dense(5, 6), .elu(alpha: 0.7)]
        let x = g.normals(3 * 4)
        let ce = net([4], hidden + [g.dense(3, 5)])
        try checkGradients(ce, x, rows: 3, labels: .classes([2, 0, 1]), loss: .crossEntropy, "MLP cross-entropy")
        let mse = net([4], hidden + [g.dense(2, 5)])
        try checkGradients(mse, x, rows: 3, labels: .values(g.normals(6)), loss: .mse, "MLP mse")
        let bce = net([4], hidden + [g.dense(1, 5)])
        try checkGradients(bce, x, rows: 3, labels: .values([1, 0, 0.3]), loss: .binaryCrossEntropy, "MLP binary cross-entropy")
        // A final Softmax / Sigmoid: the loss is taken on the logits before it, the same function.
        try checkGradients(try ce.appending(.softmax), x, rows: 3, labels: .classes([2, 0, 1]), loss: .crossEntropy, probabilities: true,
                           "MLP ending in Softmax, cross-entropy")
        try checkGradients(try bce.appending(.sigmoid), x, rows: 3, labels: .values([1, 0, 0.3]), loss: .binaryCrossEntropy,
                           probabilities: true, "MLP ending in Sigmoid, binary cross-entropy")
        // MSE after a Softmax goes through it.
        let soft = try net([4], hidden + [g.dense(3, 5)]).appending(.softmax)
        try checkGradients(soft, x, rows: 3, labels: .values(g.uniforms(9, 0, 1)), loss: .mse, "MLP ending in Softmax, mse")
    }

    func testCNNGradients() throws {
        var g = Gen(2)
        // Conv2d (padding, stride) → BatchNorm → ELU → MaxPool → Conv2d → Sigmoid → AvgPool → Flatten → Linear.
        let cnn = net([2, 6, 6], [
            g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), g.batchNorm(3), .elu(alpha: 1), .maxPool2d(pool([2, 2])),
            g.conv(2, 3, kernel: [2, 2], stride: [1, 1], dilation: [1, 1]), .sigmoid, .avgPool2d(pool([2, 2], stride: [1, 1])),
            .flatten, g.dense(3, 2),
        ])
        var x = g.distinct(2 * 72)
        for i in x.indices { x[i] *= 0.5 }
        try checkGradients(cnn, x, rows: 2, labels: .classes([1, 2]), loss: .crossEntropy, "CNN cross-entropy")
        try checkGradients(cnn, x, rows: 2, labels: .values(g.normals(6)), loss: .mse, "CNN mse")
        // Conv1d, GlobalAvgPool, Dropout and BatchNorm over [C, L].
        let seq = net([2, 7], [
            g.conv(4, 2, kernel: [3], stride: [2], padding: [1]), g.batchNorm(4), .tanh, .dropout(p: 0.2),
            g.conv(3, 4, kernel: [2], dilation: [2]), .softplus(beta: 1), .globalAvgPool, g.dense(1, 3),
        ])
        try checkGradients(seq, g.normals(3 * 14), rows: 3, labels: .values([0, 1, 1]), loss: .binaryCrossEntropy, "Conv1d net binary cross-entropy")
    }

    func testResidualGraphGradients() throws {
        var g = Gen(3)
        var n = try Network(inputShape: [5])
        try n.append(g.dense(5, 5), inputs: [0])  // value 1, read by the tanh and the add (fan-out)
        try n.append(.tanh, inputs: [1])  // 2
        try n.append(g.dense(5, 5), inputs: [2])  // 3
        try n.append(.add, inputs: [3, 1])  // 4: residual
        try n.append(.concat, inputs: [4, 2, 0])  // 5: 15 features, the input fans out to it and to node 0
        try n.append(.softplus(beta: 1), inputs: [5])  // 6
        try n.append(g.dense(3, 15), inputs: [6])  // 7
        let x = g.normals(3 * 5)
        try checkGradients(n, x, rows: 3, labels: .classes([0, 2, 1]), loss: .crossEntropy, "residual graph cross-entropy")
        try checkGradients(n, x, rows: 3, labels: .values(g.normals(9)), loss: .mse, "residual graph mse")
        try checkGradients(n, x, rows: 3, labels: .values(g.uniforms(9, 0, 1)), loss: .binaryCrossEntropy, "residual graph binary cross-entropy")
    }

    /// Embedding and LSTM parameters (the embedding table, W_ih, W_hh, b_ih, b_hh) on a token classifier
    /// with every state read (Embedding → LSTM every state → Flatten → Linear) and with the last state, a
    /// repeated id in each sequence (its embedding row sums two cotangents) and an unused id (zero row).
    func testTokenModelGradients() throws {
        var g = Gen(21)
        let vocab = 7, L = 5
        let every = net([L], [SequenceModelTests.embedding(&g, vocab: vocab, dim: 3),
                              SequenceModelTests.lstm(&g, input: 3, hidden: 4, sequences: true), .flatten, g.dense(2, L * 4)])
        let last = SequenceModelTests.classifier(&g, vocab: vocab, length: L, dim: 3, hidden: 4, classes: 3)
        let ids: [Float] = [1, 4, 2, 4, 0, 3, 3, 5, 1, 0]  // id 6 never occurs
        try checkGradients(every, ids, rows: 2, labels: .classes([1, 0]), loss: .crossEntropy, "Embedding + LSTM (every state)")
        try checkGradients(last, ids, rows: 2, labels: .values(g.normals(6)), loss: .mse, "Embedding + LSTM (last state) mse")
        let (_, grads) = try last.lossAndGradients(ids, rows: 2, labels: .classes([2, 1]), loss: .crossEntropy)
        XCTAssertEqual(Array(grads[0][(6 * 3)..<(7 * 3)]), [0, 0, 0], "an unused id's embedding row gets no gradient")
        XCTAssertEqual(last.parameterShapes, [[7, 3], [16, 3], [16, 4], [16], [16], [3, 4], [3]])
        XCTAssertThrowsError(try last.lossAndGradients([1, 4, 2, 4, 9, 3, 3, 5, 1, 0], rows: 2, labels: .classes([0, 1]), loss: .crossEntropy))
        // Training runs on token models and the initialised LSTM draws in U(−1/√H, 1/√H).
        let initial = try last.initialized(seed: 3)
        XCTAssertLessThanOrEqual(maxAbs(initial.parameters[2]), 0.5)
    }

    /// The input cotangent the parameter walk can also return equals the plain pullback's (the two share
    /// the per-node input rule).
    func testParameterWalkInputCotangentEqualsPullback() throws {
        var g = Gen(4)
        let n = net([2, 5, 5], [g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), .tanh, .flatten, g.dense(4, 75)])
        let x = g.normals(2 * 50), c = g.normals(2 * 4)
        let tape = n.record(x, rows: 2)
        let both = n.parameterGradients(tape, cotangent: c, inputCotangent: true)
        XCTAssertEqual(both.input!, n.pullback(tape, cotangent: c))
        XCTAssertEqual(both.parameters, n.parameterGradients(tape, cotangent: c).parameters)
    }

    /// A step's batch is split into one chunk of rows per worker: the chunks' sums equal the one-chunk
    /// result up to float32 rounding (each gradient entry is a sum over the rows in a different grouping:
    /// relative differences of a few ulps, 1e-5 of the scale is ample), and repeat bit for bit. (The pooling
    /// node, kernel 1, is the identity; it makes the network one that trains in chunks of rows, see
    /// TrainingChunks.)
    func testChunkedStepsAgreeAcrossThreadCountsAndRepeat() throws {
        var g = Gen(10)
        let n = net([1, 6], [.avgPool1d(pool([1])), .flatten, g.dense(16, 6), .tanh, g.dense(3, 16)])
        XCTAssertFalse(n.trainsAsOneChunk)
        let x = g.normals(64 * 6), y = Self.classes(64, 3, seed: 9)
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        try Parallel.setThreadCount(1)
        let one = try n.lossAndGradients(x, rows: 64, labels: .classes(y), loss: .crossEntropy)
        try Parallel.setThreadCount(4)
        let four = try n.lossAndGradients(x, rows: 64, labels: .classes(y), loss: .crossEntropy)
        let again = try n.lossAndGradients(x, rows: 64, labels: .classes(y), loss: .crossEntropy)
        XCTAssertEqual(four.loss, one.loss, accuracy: 1e-6 * one.loss)
        for k in one.gradients.indices { assertClose(four.gradients[k], one.gradients[k], rel: 1e-5, "gradient \(k), 4 threads vs 1") }
        XCTAssertEqual(again.loss, four.loss)
        XCTAssertEqual(again.gradients, four.gradients)
    }

    // MARK: Parameters

    func testParametersOrderShapesAndRoundTrip() throws {
        var g = Gen(5)
        let n = net([2, 4, 4], [g.conv(3, 2, kernel: [3, 3]), g.batchNorm(3), .relu, .flatten, g.dense(2, 12, bias: false)])
        XCTAssertEqual(n.parameterShapes, [[3, 2, 3, 3], [3], [3], [3], [2, 12], [2]])
        XCTAssertEqual(n.parameterNames[5], "layer 4 (Linear) bias")
        XCTAssertEqual(n.parameters[5], [0, 0], "a Linear without bias has a zero bias")
        XCTAssertEqual(try n.withParameters(n.parameters), n)
        var p = n.parameters
        p[4][0] = 7
        XCTAssertEqual(try n.withParameters(p).parameters[4][0], 7)
        assertError(.shapeMismatch, mentioning: "parameters[1] (layer 0 (Conv2d) bias)") { try n.withParameters([p[0], [1]] + p[2...]) }
        assertError(.shapeMismatch, mentioning: "6 parameter arrays") { try n.withParameters(Array(p.dropLast())) }
        p[2][1] = .nan
        assertError(.nonFinite, mentioning: "layer 1 (BatchNorm)") { try n.withParameters(p) }
    }

    func testDefaultInitialization() throws {
        let zero = try Layer.Dense(weight: [Float](repeating: 0, count: 400 * 100), bias: nil, outFeatures: 400, inFeatures: 100)
        let n = net([100], [.dense(zero), .relu, g2()])
        let a = try n.initialized(seed: 3), b = try n.initialized(seed: 3), c = try n.initialized(seed: 4)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.parameters[0], c.parameters[0])
        // U(−1/√fan_in, 1/√fan_in): bound 0.1 for fan_in 100; mean 0, variance bound²/3.
        let w = a.parameters[0].map(Double.init)
        XCTAssert(w.allSatisfy { abs($0) < 0.1 })
        XCTAssertEqual(w.reduce(0, +) / Double(w.count), 0, accuracy: 0.002)  // 4σ of the mean: 4·0.0577/√40000 = 0.0012
        XCTAssertEqual(w.map { $0 * $0 }.reduce(0, +) / Double(w.count), 0.01 / 3, accuracy: 0.0002)
        XCTAssert(a.parameters[1].allSatisfy { abs($0) < 0.1 } && Set(a.parameters[1]).count == 400)
        XCTAssert(a.parameters[2].allSatisfy { abs($0) < 1 / Float(400).squareRoot() })
    }

    private func g2() -> Layer { var g = Gen(9); return g.dense(3, 400) }

    // MARK: Losses

    func testLossesAreStableAtLargeLogits() throws {
        let f: [Float] = [1000, -1000, 0]
        let ce = Loss.crossEntropy.evaluate(f, rows: 1, width: 3, labels: .classes([1]))
        XCTAssertEqual(ce.loss, 2000, accuracy: 1e-9)
        XCTAssertEqual(ce.cotangent, [1, -1, 0])
        let bce = Loss.binaryCrossEntropy.evaluate([80, -80], rows: 2, width: 1, labels: .values([0, 0]))
        XCTAssertEqual(bce.loss, 40, accuracy: 1e-9)
        XCTAssertEqual(bce.cotangent[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(bce.cotangent[1], 0, accuracy: 1e-30)
        XCTAssert(bce.cotangent.allSatisfy(\.isFinite))
    }

    func testLabelErrors() throws {
        var g = Gen(6)
        let n = net([3], [g.dense(4, 3)])
        let x = g.normals(6)
        assertError(.outOfRange, mentioning: "labels[1] = 4 is out of range 0..<4") { try n.lossAndGradients(x, rows: 2, labels: .classes([0, 4]), loss: .crossEntropy) }
        assertError(.shapeMismatch, mentioning: "labels: expected 2 class indices") { try n.lossAndGradients(x, rows: 2, labels: .classes([0]), loss: .crossEntropy) }
        assertError(.shapeMismatch, mentioning: "2×4 = 8 values") { try n.lossAndGradients(x, rows: 2, labels: .values([0, 1]), loss: .mse) }
        assertError(.invalidArgument, mentioning: "class indices") { try n.lossAndGradients(x, rows: 2, labels: .values([0, 1]), loss: .crossEntropy) }
        assertError(.outOfRange, mentioning: "[0, 1]") { try n.lossAndGradients(x, rows: 2, labels: .values([Float](repeating: 2, count: 8)), loss: .binaryCrossEntropy) }
        assertError(.invalidArgument, mentioning: "ends in Softmax") { try n.appending(.softmax).lossAndGradients(x, rows: 2, labels: .values([0, 1]), loss: .binaryCrossEntropy) }
        var o = TrainingOptions()
        o.loss = .mse
        o.metric = .accuracy
        assertError(.invalidArgument, mentioning: "metric") { try n.train(x, rows: 2, labels: .values([Float](repeating: 0, count: 8)), options: o) }
        o = TrainingOptions()
        o.patience = 2
        assertError(.invalidArgument, mentioning: "validation set") { try n.train(x, rows: 2, labels: .classes([0, 1]), options: o) }
        o = TrainingOptions()
        o.batchSize = 0
        assertError(.invalidArgument, mentioning: "batch_size") { try n.train(x, rows: 2, labels: .classes([0, 1]), options: o) }
        o = TrainingOptions()
        o.optimizer.learningRate = -1
        assertError(.invalidArgument, mentioning: "lr") { try n.train(x, rows: 2, labels: .classes([0, 1]), options: o) }
        assertError(.outOfRange, mentioning: "validation labels[0] = 9") {
            try n.train(x, rows: 2, labels: .classes([0, 1]), validation: ValidationSet(x: x, rows: 2, labels: .classes([9, 1])))
        }
    }

    // MARK: Optimisers

    func testSGDWithMomentumAndWeightDecayMatchesHandComputedSteps() throws {
        var s = OptimizerSettings()
        s.kind = .sgd
        s.learningRate = 0.1
        s.momentum = 0.9
        s.weightDecay = 0.01
        var opt = try OptimizerState(s)
        var p: [[Float]] = [[1, -2], [0.5]]
        // Step 1: d = g + 0.01p; v = d; p −= 0.1 v.
        opt.update(&p, gradients: [[0.3, 0.1], [-1]])
        // d = [0.31, 0.08], [-0.995]; p = [0.969, -2.008], [0.5995]
        XCTAssertEqual(p[0][0], 0.969, accuracy: 1e-6)
        XCTAssertEqual(p[0][1], -2.008, accuracy: 1e-6)
        XCTAssertEqual(p[1][0], 0.5995, accuracy: 1e-6)
        // Step 2: d = g + 0.01p = [0.2 + 0.00969, 0.1 − 0.02008]; v = 0.9·[0.31, 0.08] + d; p −= 0.1 v.
        opt.update(&p, gradients: [[0.2, 0.1], [0]])
        XCTAssertEqual(p[0][0], Float(0.969 - 0.1 * (0.9 * 0.31 + 0.2 + 0.00969)), accuracy: 1e-6)
        XCTAssertEqual(p[0][1], Float(-2.008 - 0.1 * (0.9 * 0.08 + 0.1 - 0.02008)), accuracy: 1e-6)
        XCTAssertEqual(p[1][0], Float(0.5995 - 0.1 * (0.9 * -0.995 + 0.005995)), accuracy: 1e-6)
    }

    func testAdamMatchesHandComputedSteps() throws {
        var s = OptimizerSettings()
        s.learningRate = 0.01
        s.weightDecay = 0.1
        var opt = try OptimizerState(s)
        var p: [[Float]] = [[1, -0.5]]
        let grads: [[Float]] = [[0.2, -0.4], [0.1, 0.3], [-0.3, 0.05]]
        // Textbook Adam with L2 in double: m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), p −= lr m̂/(√v̂ + ε).
        var q: [Double] = [1, -0.5], m: [Double] = [0, 0], v: [Double] = [0, 0]
        for (t, g) in grads.enumerated() {
            opt.update(&p, gradients: [g])
            for e in 0..<2 {
                let d = Double(g[e]) + 0.1 * q[e]
                m[e] = 0.9 * m[e] + 0.1 * d
                v[e] = 0.999 * v[e] + 0.001 * d * d
                let mh = m[e] / (1 - pow(0.9, Double(t + 1))), vh = v[e] / (1 - pow(0.999, Double(t + 1)))
                q[e] -= 0.01 * mh / (vh.squareRoot() + 1e-8)
            }
            XCTAssertEqual(p[0][0], Float(q[0]), accuracy: 1e-6, "step \(t + 1)")
            XCTAssertEqual(p[0][1], Float(q[1]), accuracy: 1e-6, "step \(t + 1)")
        }
        XCTAssertEqual(opt.step, 3)
    }

    // MARK: Shuffling

    func testPermutationIsSeededAndAPermutation() {
        let a = Network.trainingPermutation(count: 1000, seed: 7, epoch: 1)
        XCTAssertEqual(a.sorted(), Array(0..<1000))
        XCTAssertEqual(a, Network.trainingPermutation(count: 1000, seed: 7, epoch: 1))
        XCTAssertNotEqual(a, Network.trainingPermutation(count: 1000, seed: 7, epoch: 2))
        XCTAssertNotEqual(a, Network.trainingPermutation(count: 1000, seed: 8, epoch: 1))
        XCTAssertNotEqual(a, Array(0..<1000))
        // Every position is reachable: over 400 epochs of 5 items, each item lands first about 80 times.
        var first = [Int](repeating: 0, count: 5)
        for e in 1...400 { first[Network.trainingPermutation(count: 5, seed: 1, epoch: e)[0]] += 1 }
        XCTAssert(first.allSatisfy { $0 > 40 && $0 < 120 }, "\(first)")  // binomial(400, 0.2): σ = 8
    }

    /// Records the mini-batches the trainer hands to penalties (adds nothing).
    final class BatchRecorder: TrainingPenalty {
        var batches: [[Float]] = []
        var steps: [TrainingStep] = []
        var failAt: (epoch: Int, step: Int)?
        func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]]) {
            batches.append(batch)
            steps.append(step)
            let value: Double = failAt.map { $0.epoch == step.epoch && $0.step == step.step } == true ? .nan : 0
            return (value, network.parameterShapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) })
        }
    }

    func testShufflingIsReproducibleAndIndependentOfThreadCount() throws {
        var g = Gen(7)
        let n = net([3], [g.dense(4, 3), .tanh, g.dense(2, 4)])
        let x = g.normals(50 * 3), y = Self.classes(50, 2, seed: 1)
        var o = TrainingOptions()
        o.epochs = 3
        o.batchSize = 8
        o.seed = 11
        let saved = Parallel.threadCount
        defer { try? Parallel.setThreadCount(saved) }
        var runs: [[[Float]]] = []
        for threads in [1, 2, 1] {
            try Parallel.setThreadCount(threads)
            let r = BatchRecorder()
            _ = try n.train(x, rows: 50, labels: .classes(y), options: o, penalties: [r])
            XCTAssertEqual(r.steps.count, 3 * 7)
            // The last batch holds the training rows 48 and 49 of epoch 3's permutation, which the penalty is told.
            let last = Array(Network.trainingPermutation(count: 50, seed: 11, epoch: 3)[48..<50])
            XCTAssertEqual(r.steps.last, TrainingStep(epoch: 3, step: 7, globalStep: 20, seed: 11, examples: last, exampleCount: 50))
            runs.append(r.batches)
        }
        XCTAssertEqual(runs[0], runs[1])
        XCTAssertEqual(runs[0], runs[2])
        // The batches of epoch 1 are the rows of the seeded permutation, in order.
        let order = Network.trainingPermutation(count: 50, seed: 11, epoch: 1)
        XCTAssertEqual(runs[0][0], order[0..<8].flatMap { x[($0 * 3)..<($0 * 3 + 3)] })
        XCTAssertEqual(runs[0][6].count, 2 * 3, "the last batch holds the remaining 2 examples")
        // Without shuffling the batches are the rows in order.
        o.shuffle = false
        let r = BatchRecorder()
        _ = try n.train(x, rows: 50, labels: .classes(y), options: o, penalties: [r])
        XCTAssertEqual(r.batches[1], Array(x[24..<48]))
    }

    // MARK: Whole runs

    /// Two Gaussian blobs in 2-D separated by a margin, labels by side of the line x₀ + x₁ = 0.
    static func separable(_ rows: Int, seed: UInt64) -> ([Float], [Int]) {
        var g = Gen(seed)
        var x: [Float] = [], y: [Int] = []
        while y.count < rows {
            let p = g.normals(2)
            let s = p[0] + p[1]
            guard abs(s) > 0.5 else { continue }
            x += p
            y.append(s > 0 ? 1 : 0)
        }
        return (x, y)
    }

    func testSmallMLPSeparatesALinearlySeparableProblemAndRepeatsBitForBit() throws {
        let (x, y) = Self.separable(200, seed: 3)
        let zeros = try Layer.Dense(weight: [Float](repeating: 0, count: 16), bias: nil, outFeatures: 8, inFeatures: 2)
        let zeros2 = try Layer.Dense(weight: [Float](repeating: 0, count: 16), bias: nil, outFeatures: 2, inFeatures: 8)
        let n = net([2], [.dense(zeros), .tanh, .dense(zeros2)])
        var o = TrainingOptions()
        o.initialize = true
        o.epochs = 30
        o.batchSize = 16
        o.seed = 5
        o.optimizer.learningRate = 0.02
        var epochs: [Int] = []
        let (trained, history) = try n.train(x, rows: 200, labels: .classes(y), options: o, onEpoch: { epochs.append($0.epoch); return false })
        XCTAssertEqual(epochs, Array(1...30))
        XCTAssertEqual(history.epochs.count, 30)
        XCTAssertLessThan(history.epochs.last!.trainLoss, history.epochs.first!.trainLoss)
        let f = try trained.predict(x, rows: 200)
        XCTAssertEqual(Loss.crossEntropy.accuracy(f, rows: 200, width: 2, labels: .classes(y)), 1, "training accuracy")
        let again = try n.train(x, rows: 200, labels: .classes(y), options: o)
        XCTAssertEqual(again.network.parameters, trained.parameters, "same seed, same weights, bit for bit")
        XCTAssertEqual(again.history, history)
        o.seed = 6
        XCTAssertNotEqual(try n.train(x, rows: 200, labels: .classes(y), options: o).network.parameters, trained.parameters)
        // SGD with momentum also separates it.
        o.optimizer.kind = .sgd
        o.optimizer.learningRate = 0.1
        o.optimizer.momentum = 0.9
        let sgd = try n.train(x, rows: 200, labels: .classes(y), options: o).network
        XCTAssertEqual(Loss.crossEntropy.accuracy(try sgd.predict(x, rows: 200), rows: 200, width: 2, labels: .classes(y)), 1)
        // The callback stops the run.
        let stopped = try n.train(x, rows: 200, labels: .classes(y), options: o, onEpoch: { $0.epoch == 4 })
        XCTAssertEqual(stopped.history.epochs.count, 4)
        XCTAssertTrue(stopped.history.stoppedByCallback)
    }

    func testNonFiniteLossStopsNamingEpochAndStep() throws {
        var g = Gen(8)
        let n = net([3], [g.dense(4, 3), .tanh, g.dense(2, 4)])
        let x = g.normals(40 * 3), y = Self.classes(40, 2, seed: 2)
        var o = TrainingOptions()
        o.epochs = 3
        o.batchSize = 10
        let r = BatchRecorder()
        r.failAt = (2, 3)
        assertError(.numerical, mentioning: "at epoch 2, step 3") { try n.train(x, rows: 40, labels: .classes(y), options: o, penalties: [r]) }
        // A diverging run: SGD with an absurd learning rate on MSE overflows.
        o.loss = .mse
        o.optimizer.kind = .sgd
        o.optimizer.learningRate = 1e30
        assertError(.numerical, mentioning: "at epoch 1, step ") { try n.train(x, rows: 40, labels: .values(g.normals(80, scale: 100)), options: o) }
    }

    func testEarlyStoppingRestoresTheBestWeights() throws {
        // Few noisy training examples, many epochs: the validation loss turns up and early stopping
        // returns the weights of its best epoch — those of a run of exactly that many epochs.
        var g = Gen(9)
        let n = net([10], [g.dense(32, 10), .tanh, g.dense(2, 32)])
        let x = g.normals(30 * 10), y = Self.classes(30, 2, seed: 4)
        let vx = g.normals(60 * 10), vy = Self.classes(60, 2, seed: 5)
        var o = TrainingOptions()
        o.epochs = 60
        o.batchSize = 10
        o.optimizer.learningRate = 0.01
        o.patience = 5
        o.seed = 2
        let validation = ValidationSet(x: vx, rows: 60, labels: .classes(vy))
        let (stopped, history) = try n.train(x, rows: 30, labels: .classes(y), options: o, validation: validation)
        XCTAssertTrue(history.stoppedEarly, "random labels: the validation loss must turn up within 60 epochs")
        let best = try XCTUnwrap(history.bestEpoch)
        XCTAssertEqual(history.epochs.count, best + 5)
        let losses = history.epochs.map { $0.validationLoss! }
        XCTAssertEqual(losses.min(), losses[best - 1])
        XCTAssert(history.epochs.allSatisfy { $0.validationAccuracy != nil })
        o.patience = nil
        o.epochs = best
        let exact = try n.train(x, rows: 30, labels: .classes(y), options: o).network
        XCTAssertEqual(stopped.parameters, exact.parameters)
        // On accuracy: the best epoch has the highest validation accuracy (the first such epoch).
        o.epochs = 60
        o.patience = 5
        o.metric = .accuracy
        let acc = try n.train(x, rows: 30, labels: .classes(y), options: o, validation: validation).history
        let accuracies = acc.epochs.map { $0.validationAccuracy! }
        XCTAssertEqual(acc.bestEpoch, accuracies.firstIndex(of: accuracies.max()!)! + 1)
    }
}
