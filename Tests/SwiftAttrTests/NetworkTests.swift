import XCTest
import Dispatch
@testable import SwiftAttr

/// Shape inference and its messages, the model file (round trip, corrupt files), every error case of
/// the Swift API, and thread safety.
final class NetworkTests: XCTestCase {
    // MARK: Shape inference

    func testShapeInference() throws {
        var g = Gen(400)
        let n = net([3, 28, 28], [
            g.conv(8, 3, kernel: [5, 5]), .relu, .maxPool2d(pool([2, 2])),                      // 8×24×24 → 8×12×12
            g.conv(4, 8, kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [2, 2]),   // (12 + 2 − 4 − 1)/2 + 1 = 5
            .avgPool2d(pool([3, 3], stride: [1, 1], padding: [1, 1])),                          // 5
            .flatten, g.dense(10, 100), .softmax,
        ])
        XCTAssertEqual(n.shapes, [[3, 28, 28], [8, 24, 24], [8, 24, 24], [8, 12, 12], [4, 5, 5], [4, 5, 5], [100], [10], [10]])
        XCTAssertEqual(n.outputSize, 10)
        XCTAssertEqual(n.inputSize, 3 * 28 * 28)
        XCTAssertEqual(n.affinePrefixLength, 1)
        let seq = net([2, 20], [g.conv(3, 2, kernel: [4], stride: [3], padding: [2], dilation: [1]), .maxPool1d(pool([2], stride: [1], padding: [1])), .globalAvgPool])
        XCTAssertEqual(seq.shapes, [[2, 20], [3, 7], [3, 8], [3]])  // (20 + 4 − 3 − 1)/3 + 1 = 7; 7 + 2 − 1 = 8
    }

    func testShapeErrors() throws {
        var g = Gen(401)
        assertError(.shapeMismatch, mentioning: "Flatten") { try Network(inputShape: [1, 6, 6], layers: [g.conv(2, 1, kernel: [3, 3]), g.dense(3, 32)]) }
        assertError(.shapeMismatch, mentioning: "layer 1 (Linear)") { try Network(inputShape: [1, 6, 6], layers: [g.conv(2, 1, kernel: [3, 3]), g.dense(3, 32)]) }
        assertError(.shapeMismatch, mentioning: "input features") { try Network(inputShape: [5], layers: [g.dense(3, 4)]) }
        assertError(.shapeMismatch, mentioning: "input channels") { try Network(inputShape: [2, 6, 6], layers: [g.conv(2, 3, kernel: [3, 3])]) }
        assertError(.shapeMismatch, mentioning: "input channels") { try Network(inputShape: [2, 9], layers: [g.conv(2, 1, kernel: [3])]) }
        assertError(.shapeMismatch, mentioning: "kernel extent") { try Network(inputShape: [1, 5], layers: [g.conv(1, 1, kernel: [7])]) }
        assertError(.shapeMismatch, mentioning: "kernel extent") { try Network(inputShape: [1, 5, 5], layers: [g.conv(1, 1, kernel: [3, 3], dilation: [3, 1])]) }
        assertError(.shapeMismatch, mentioning: "kernel extent") { try Network(inputShape: [1, 3, 3], layers: [.maxPool2d(pool([4, 4]))]) }
        assertError(.shapeMismatch, mentioning: "dimensions") { try Network(inputShape: [1, 5], layers: [g.conv(1, 1, kernel: [3, 3])]) }
        assertError(.shapeMismatch, mentioning: "dimensions") { try Network(inputShape: [6], layers: [.maxPool1d(pool([2]))]) }
        assertError(.shapeMismatch, mentioning: "GlobalAvgPool") { try Network(inputShape: [6], layers: [.globalAvgPool]) }
        assertError(.shapeMismatch, mentioning: "BatchNorm expects 3 channels") { try Network(inputShape: [2, 4], layers: [g.batchNorm(3)]) }
        assertError(.invalidArgument, mentioning: "Softmax must be the final layer") { try Network(inputShape: [4], layers: [.softmax, g.dense(2, 4)]) }
        assertError(.invalidArgument, mentioning: "Softmax must be the final layer") { try Network(inputShape: [4], layers: [.softmax, .relu]) }
        assertError(.shapeMismatch, mentioning: "input_shape") { try Network(inputShape: []) }
        assertError(.shapeMismatch, mentioning: "input_shape") { try Network(inputShape: [1, 2, 3, 4]) }
        assertError(.invalidArgument, mentioning: "input_shape") { try Network(inputShape: [3, 0]) }
        assertError(.invalidArgument, mentioning: "input_shape") { try Network(inputShape: [-2]) }
        // Layer parameter checks.
        assertError(.invalidArgument, mentioning: "Softplus beta") { try Network(inputShape: [4], layers: [.softplus(beta: 0)]) }
        assertError(.invalidArgument, mentioning: "Dropout p") { try Network(inputShape: [4], layers: [.dropout(p: 1)]) }
        assertError(.nonFinite, mentioning: "LeakyReLU") { try Network(inputShape: [4], layers: [.leakyReLU(slope: .nan)]) }
        assertError(.nonFinite, mentioning: "ELU alpha") { try Network(inputShape: [4], layers: [.elu(alpha: .infinity)]) }
        assertError(.shapeMismatch, mentioning: "dense weight") { try Layer.Dense(weight: [1, 2, 3], bias: nil, outFeatures: 2, inFeatures: 2) }
        assertError(.shapeMismatch, mentioning: "dense bias") { try Layer.Dense(weight: [1, 2, 3, 4], bias: [1], outFeatures: 2, inFeatures: 2) }
        assertError(.nonFinite, mentioning: "dense weight") { try Layer.Dense(weight: [1, .nan, 3, 4], bias: nil, outFeatures: 2, inFeatures: 2) }
        assertError(.invalidArgument, mentioning: "out_features") { try Layer.Dense(weight: [], bias: nil, outFeatures: 0, inFeatures: 2) }
        assertError(.shapeMismatch, mentioning: "conv weight") {
            try Layer.Convolution(weight: [1, 2], bias: nil, outChannels: 1, inChannels: 1, kernel: [3], stride: [1], padding: [0], dilation: [1])
        }
        assertError(.invalidArgument, mentioning: "conv stride") {
            try Layer.Convolution(weight: [1, 2, 3], bias: nil, outChannels: 1, inChannels: 1, kernel: [3], stride: [0], padding: [0], dilation: [1])
        }
        assertError(.invalidArgument, mentioning: "conv padding") {
            try Layer.Convolution(weight: [1, 2, 3], bias: nil, outChannels: 1, inChannels: 1, kernel: [3], stride: [1], padding: [-1], dilation: [1])
        }
        assertError(.invalidArgument, mentioning: "pool padding") { try Layer.Pooling(kernel: [2], padding: [2]) }
        assertError(.invalidArgument, mentioning: "batchnorm running_var") {
            try Layer.BatchNorm(gamma: nil, beta: nil, runningMean: [0], runningVar: [-1], eps: 1e-5)
        }
    }

    // MARK: Model file

    /// A model with every layer kind.
    func everyKind(_ g: inout Gen) -> [Network] {
        [
            net([6], [g.dense(8, 6), .relu, g.dense(8, 8, bias: false), .leakyReLU(slope: 0.1), .elu(alpha: 0.7), g.batchNorm(8), .dropout(p: 0.25),
                      .softplus(beta: 3), .sigmoid, g.dense(4, 8), .tanh, .softmax]),
            net([2, 12], [g.conv(3, 2, kernel: [3], stride: [1], padding: [1], dilation: [2]), .maxPool1d(pool([2])), .avgPool1d(pool([3], stride: [1], padding: [1])),
                          g.batchNorm(3), .globalAvgPool, g.dense(2, 3)]),
            net([1, 7, 7], [g.conv(2, 1, kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], bias: false), .maxPool2d(pool([2, 2], stride: [1, 1], padding: [1, 1])),
                            .avgPool2d(pool([2, 2])), .flatten, g.dense(3, 2 * 2 * 3)]),
            net([12], [.reshape(shape: [3, 4]), g.conv(2, 3, kernel: [2]), .flatten, g.dense(2, 6)]),
            GraphFixtures.residualConcat(&g),
            // Token ids in: Embedding, an LSTM writing every state, one writing the last state.
            net([4], [SequenceModelTests.embedding(&g, vocab: 5, dim: 3), SequenceModelTests.lstm(&g, input: 3, hidden: 2, sequences: true),
                      SequenceModelTests.lstm(&g, input: 2, hidden: 2, sequences: false), g.dense(2, 2)]),
        ]
    }

    func testModelFileRoundTrip() throws {
        var g = Gen(410)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftattr-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var kinds = Set<UInt32>()
        for (i, n) in everyKind(&g).enumerated() {
            n.layers.forEach { kinds.insert($0.kind.rawValue) }
            // Token networks take ids (integers below the vocabulary size), every other network reals.
            let x = n.tokenEmbedding.map { e in (0..<(3 * n.inputSize)).map { Float($0 % e.vocabularySize) } } ?? g.normals(3 * n.inputSize)
            let bytes = n.serialized()
            XCTAssertEqual(Array(bytes.prefix(8)), Array((n.isChain ? "SAMODEL1" : "SAMODEL2").utf8))
            let back = try Network(serialized: bytes)
            XCTAssertEqual(back, n)
            XCTAssertEqual(back.forward(x, rows: 3), n.forward(x, rows: 3))
            XCTAssertEqual(back.serialized(), bytes)
            let path = dir.appendingPathComponent("model\(i).sam").path
            try n.save(to: path)
            let loaded = try Network.load(from: path)
            XCTAssertEqual(loaded, n)
            XCTAssertEqual(loaded.forward(x, rows: 3), n.forward(x, rows: 3))
            XCTAssertEqual(try loaded.integratedGradients(x, rows: 3, targets: [1]).attributions, try n.integratedGradients(x, rows: 3, targets: [1]).attributions)
        }
        XCTAssertEqual(kinds.count, Layer.Kind.allCases.count, "the round trip covers every layer kind")
        assertError(.io, mentioning: "path") { try Network.load(from: dir.appendingPathComponent("missing.sam").path) }
        assertError(.io, mentioning: "path") { try everyKind(&g)[0].save(to: dir.appendingPathComponent("no/such/dir/m.sam").path) }
    }

    func testTruncatedFilesAreFormatErrors() throws {
        var g = Gen(420)
        for n in everyKind(&g) {
            let bytes = n.serialized()
            for length in 0..<bytes.count {
                assertError(.format, mentioning: "model file") { try Network(serialized: Array(bytes.prefix(length))) }
            }
            assertError(.format, mentioning: "trailing") { try Network(serialized: bytes + [0]) }
        }
    }

    func testCorruptFilesAreFormatErrorsNeverCrashes() throws {
        var g = Gen(430)
        for n in everyKind(&g) {
            let bytes = n.serialized()
            var failures = 0
            for position in 0..<bytes.count {
                for value: UInt8 in [bytes[position] ^ 0x01, bytes[position] ^ 0x80, 0xFF, 0x00, 0x7F] where value != bytes[position] {
                    var corrupt = bytes
                    corrupt[position] = value
                    do {
                        _ = try Network(serialized: corrupt)  // a flipped weight bit can still be a valid model
                    } catch let error as SwiftAttrError {
                        failures += 1
                        XCTAssertEqual(error.code, .format, "byte \(position) = \(value): \(error.message)")
                        XCTAssert(error.message.hasPrefix("model file"), "byte \(position) = \(value): \(error.message)")
                    }
                }
            }
            XCTAssertGreaterThan(failures, bytes.count / 10)
        }
        assertError(.format, mentioning: "bad magic") { try Network(serialized: Array("SAMODEL9".utf8) + [1, 0, 0, 0]) }
    }

    /// Hand-written records with hostile integers: huge dimensions must be errors, not overflow traps.
    func testHostileRecords() throws {
        func file(shape: [Int64], kind: UInt32, ints: [Int64], scalars: [Float] = [], tensors: [[Float]] = [], tensorCounts: [UInt64]? = nil) -> [UInt8] {
            var b = Array("SAMODEL1".utf8)
            func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
            func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
            u32(UInt32(shape.count)); shape.forEach { u64(UInt64(bitPattern: $0)) }
            u32(1); u32(kind)
            u32(UInt32(ints.count)); ints.forEach { u64(UInt64(bitPattern: $0)) }
            u32(UInt32(scalars.count)); scalars.forEach { u32($0.bitPattern) }
            u32(UInt32(tensors.count))
            for (i, t) in tensors.enumerated() { u64(tensorCounts?[i] ?? UInt64(t.count)); t.forEach { u32($0.bitPattern) } }
            return b
        }
        let big = Int64(Int32.max)
        // Conv2d whose out × in × kh × kw overflows 64 bits.
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [2, 5, 5], kind: 2, ints: [big, big, big, big, 1, 1, 0, 0, 1, 1], tensors: [[], []])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [2, 5], kind: 1, ints: [big, big, big, 1, 0, 1], tensors: [[], []])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [big, big, big], kind: 8, ints: [])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 0, ints: [big, big], tensors: [[], []])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 0, ints: [2, 2], tensors: [[1, 2, 3, 4], [0, 0]], tensorCounts: [UInt64.max, 2])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [-4], kind: 9, ints: [])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 99, ints: [])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 12, ints: [], scalars: [.nan])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [2, 6], kind: 3, ints: [big, 1, 0])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [2, 6], kind: 3, ints: [-1, 1, 0])) }
        // Embedding with vocab × dim overflowing, or a vocabulary beyond exact float32 ids; LSTM with 4H × E overflowing.
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 20, ints: [big, big], tensors: [[]])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4], kind: 20, ints: [1 << 24, 1], tensors: [[]])) }
        assertError(.format, mentioning: "model file") { try Network(serialized: file(shape: [4, 3], kind: 21, ints: [big, big, 0], tensors: [[], [], [], []])) }
    }

    // MARK: Errors of the Swift API

    func testAPIErrors() throws {
        var g = Gen(440)
        let n = net([3], [g.dense(4, 3), .tanh, g.dense(2, 4)])
        let x = g.normals(2 * 3)
        // Inputs.
        assertError(.invalidArgument, mentioning: "inputs") { try n.predict([], rows: 0) }
        assertError(.invalidArgument, mentioning: "inputs") { try n.saliency([], rows: 0, targets: [0]) }
        assertError(.invalidArgument, mentioning: "inputs") { try n.integratedGradients(x, rows: -1, targets: [0]) }
        assertError(.shapeMismatch, mentioning: "inputs") { try n.predict(x, rows: 3) }
        assertError(.shapeMismatch, mentioning: "inputs") { try n.integratedGradients(Array(x.dropLast()), rows: 2, targets: [0]) }
        assertError(.nonFinite, mentioning: "inputs") { try n.integratedGradients([1, .nan, 2], rows: 1, targets: [0]) }
        assertError(.nonFinite, mentioning: "inputs") { try n.saliency([1, 2, .infinity], rows: 1, targets: [0]) }
        assertError(.nonFinite, mentioning: "inputs") { try n.gradient([1, 2, -.infinity], rows: 1, cotangent: [1, 0]) }
        assertError(.nonFinite, mentioning: "inputs") { try n.smoothGrad([.nan, 2, 3], rows: 1, targets: [0]) }
        assertError(.nonFinite, mentioning: "inputs") { try n.expectedGradients([.nan, 2, 3], rows: 1, references: x, referenceCount: 2, targets: [0]) }
        // Targets.
        assertError(.outOfRange, mentioning: "target") { try n.integratedGradients(x, rows: 2, targets: [2]) }
        assertError(.outOfRange, mentioning: "target") { try n.integratedGradients(x, rows: 2, targets: [-1]) }
        assertError(.outOfRange, mentioning: "target[1]") { try n.saliency(x, rows: 2, targets: [0, 5]) }
        assertError(.shapeMismatch, mentioning: "target") { try n.saliency(x, rows: 2, targets: [0, 1, 1]) }
        assertError(.shapeMismatch, mentioning: "target") { try n.integratedGradients(x, rows: 2, targets: []) }
        assertError(.outOfRange, mentioning: "target") { try n.expectedGradients(x, rows: 2, references: x, referenceCount: 2, targets: [7]) }
        assertError(.outOfRange, mentioning: "target") { try n.smoothGrad(x, rows: 2, targets: [2]) }
        assertError(.outOfRange, mentioning: "target") { try n.inputXGradient(x, rows: 2, targets: [2]) }
        // Baselines.
        assertError(.shapeMismatch, mentioning: "baselines") { try n.integratedGradients(x, rows: 2, baselines: [0, 0], targets: [0]) }
        assertError(.shapeMismatch, mentioning: "baselines") { try n.integratedGradients(x, rows: 2, baselines: g.normals(9), targets: [0]) }
        assertError(.nonFinite, mentioning: "baselines") { try n.integratedGradients(x, rows: 2, baselines: [0, .nan, 0], targets: [0]) }
        // Steps and methods.
        assertError(.invalidArgument, mentioning: "n_steps") { try n.integratedGradients(x, rows: 2, targets: [0], steps: 0) }
        assertError(.invalidArgument, mentioning: "n_steps") { try n.integratedGradients(x, rows: 2, targets: [0], steps: -3) }
        assertError(.invalidArgument, mentioning: "n_steps") { try n.integratedGradients(x, rows: 2, targets: [0], steps: 1, method: .riemannTrapezoid) }
        XCTAssertNoThrow(try n.integratedGradients(x, rows: 2, targets: [0], steps: 1, method: .riemannMiddle))
        // Chunks.
        assertError(.invalidArgument, mentioning: "internal_batch_size") { try n.integratedGradients(x, rows: 2, targets: [0], internalBatchSize: 0) }
        assertError(.invalidArgument, mentioning: "internal_batch_size") { try n.saliency(x, rows: 2, targets: [0], internalBatchSize: -1) }
        assertError(.invalidArgument, mentioning: "internal_batch_size") { try n.gradient(x, rows: 2, cotangent: [1, 0, 0, 1], internalBatchSize: 0) }
        assertError(.invalidArgument, mentioning: "internal_batch_size") { try n.smoothGrad(x, rows: 2, targets: [0], internalBatchSize: 0) }
        assertError(.invalidArgument, mentioning: "internal_batch_size") { try n.expectedGradients(x, rows: 2, references: x, referenceCount: 2, targets: [0], internalBatchSize: 0) }
        // SmoothGrad.
        assertError(.invalidArgument, mentioning: "stdevs") { try n.smoothGrad(x, rows: 2, targets: [0], stdev: -0.1) }
        assertError(.invalidArgument, mentioning: "stdevs") { try n.smoothGrad(x, rows: 2, targets: [0], stdev: .nan) }
        assertError(.invalidArgument, mentioning: "stdevs") { try n.smoothGrad(x, rows: 2, targets: [0], stdev: .infinity) }
        assertError(.invalidArgument, mentioning: "n_samples") { try n.smoothGrad(x, rows: 2, targets: [0], samples: 0) }
        // Expected Gradients.
        assertError(.invalidArgument, mentioning: "n_samples") { try n.expectedGradients(x, rows: 2, references: x, referenceCount: 2, targets: [0], samples: 0) }
        assertError(.invalidArgument, mentioning: "references") { try n.expectedGradients(x, rows: 2, references: [], referenceCount: 0, targets: [0]) }
        assertError(.shapeMismatch, mentioning: "references") { try n.expectedGradients(x, rows: 2, references: x, referenceCount: 3, targets: [0]) }
        assertError(.nonFinite, mentioning: "references") { try n.expectedGradients(x, rows: 2, references: [0, 0, .nan], referenceCount: 1, targets: [0]) }
        // Cotangents and layers.
        assertError(.shapeMismatch, mentioning: "cotangent") { try n.gradient(x, rows: 2, cotangent: [1, 0]) }
        assertError(.nonFinite, mentioning: "cotangent") { try n.gradient(x, rows: 2, cotangent: [1, 0, .nan, 1]) }
        assertError(.outOfRange, mentioning: "layer") { try n.activations(x, rows: 2, atInputOf: 4) }
        assertError(.outOfRange, mentioning: "layer") { try n.activations(x, rows: 2, atInputOf: -1) }
        XCTAssertEqual(try n.activations(x, rows: 2, atInputOf: 0), x)
        XCTAssertEqual(try n.activations(x, rows: 2, atInputOf: 3), try n.predict(x, rows: 2))
    }

    // MARK: Threads

    func testConcurrentUseGivesSerialNumbers() throws {
        var g = Gen(450)
        let n = net([1, 8, 8], [g.conv(4, 1, kernel: [3, 3], padding: [1, 1]), .relu, .maxPool2d(pool([2, 2])), .flatten, g.dense(10, 64), .tanh, g.dense(3, 10)])
        let rows = 6
        let inputs = (0..<4).map { _ in g.normals(rows * 64) }
        let serial = try inputs.map { try n.integratedGradients($0, rows: rows, targets: [0, 1, 2, 0, 1, 2], steps: 24, internalBatchSize: 40).attributions }
        let serialEG = try inputs.map { try n.expectedGradients($0, rows: rows, references: inputs[0], referenceCount: rows, targets: [1], samples: 30, seed: 4) }
        for _ in 0..<3 {
            var results = [[Float]](repeating: [], count: 8)
            var eg = [[Float]](repeating: [], count: 8)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let r = try! n.integratedGradients(inputs[i % 4], rows: rows, targets: [0, 1, 2, 0, 1, 2], steps: 24, internalBatchSize: 40).attributions
                let e = try! n.expectedGradients(inputs[i % 4], rows: rows, references: inputs[0], referenceCount: rows, targets: [1], samples: 30, seed: 4)
                lock.lock(); results[i] = r; eg[i] = e; lock.unlock()
            }
            for i in 0..<8 {
                XCTAssertEqual(results[i], serial[i % 4], "thread \(i): IG differs from the serial result")
                XCTAssertEqual(eg[i], serialEG[i % 4], "thread \(i): EG differs from the serial result")
            }
        }
    }

    /// GEMMs large enough for OpenBLAS to use its own threads, called from several threads at once.
    func testConcurrentUseWithThreadedGEMM() throws {
        var g = Gen(451)
        let n = net([96], [g.dense(160, 96), .relu, g.dense(64, 160), .tanh, g.dense(10, 64)])
        let rows = 16
        let inputs = (0..<4).map { _ in g.normals(rows * 96) }
        let serial = try inputs.map { try n.integratedGradients($0, rows: rows, targets: [3], steps: 50).attributions }
        var results = [[Float]](repeating: [], count: 4)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            var r = [Float]()
            for _ in 0..<3 { r = try! n.integratedGradients(inputs[i], rows: rows, targets: [3], steps: 50).attributions }
            lock.lock(); results[i] = r; lock.unlock()
        }
        for i in 0..<4 { XCTAssertEqual(results[i], serial[i], "thread \(i): IG differs from the serial result") }
    }
}
