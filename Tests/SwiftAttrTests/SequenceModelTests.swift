import XCTest
@testable import SwiftAttr

/// Embedding and LSTM: forward against the float64 reference of TestSupport.swift (PyTorch's equations),
/// the BPTT pullback against central differences at the embedding output, token attributions (taken at
/// the embedding output and summed over it), DeepLIFT's summation-to-delta through the gates, id checks,
/// and model files.
final class SequenceModelTests: XCTestCase {
    static func lstm(_ g: inout Gen, input: Int, hidden: Int, sequences: Bool, biasHH: Bool = true) -> Layer {
        let s = 1 / Float(hidden).squareRoot()
        return .lstm(try! .init(
            weightIH: g.normals(4 * hidden * input, scale: s), weightHH: g.normals(4 * hidden * hidden, scale: s),
            biasIH: g.normals(4 * hidden, scale: 0.3), biasHH: biasHH ? g.normals(4 * hidden, scale: 0.3) : nil,
            inputSize: input, hiddenSize: hidden, returnSequences: sequences))
    }

    static func embedding(_ g: inout Gen, vocab: Int, dim: Int) -> Layer {
        .embedding(try! .init(weight: g.normals(vocab * dim), vocabularySize: vocab, dimension: dim))
    }

    /// A token classifier: Embedding(vocab, E) → LSTM(E, H) → last state → Linear(H, classes).
    static func classifier(_ g: inout Gen, vocab: Int = 13, length: Int = 6, dim: Int = 4, hidden: Int = 5, classes: Int = 3) -> Network {
        net([length], [embedding(&g, vocab: vocab, dim: dim), lstm(&g, input: dim, hidden: hidden, sequences: false), g.dense(classes, hidden)])
    }

    /// Forward equals the float64 reference; the pullback equals its central differences (h = 1e-5).
    /// Tolerances: the float32 forward rounds each of L steps at ~(E + H)·u·scale (u = 6e-8), a few
    /// 1e-6 relative after 7 steps, so 1e-5; central differences of the float64 reference have truncation
    /// error O(h²·f‴) ≈ 1e-10 and the engine's float32 BPTT rounds each of the L steps' GEMMs and gate
    /// products, ≤ 1e-5 of the gradient's scale: 1e-4 leaves room and still catches a wrong gate, index
    /// or missing term (each an O(1) relative error).
    func checkPullback(_ net: Network, _ x: [Float], rows: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var ref = Reference(net)
        assertClose(net.forward(x, rows: rows), ref.forwardBatch(x, rows: rows), rel: 1e-5, floor: 1, "\(what) forward", file: file, line: line)
        var g = Gen(7)
        let cotangent = g.normals(rows * net.outputSize)
        let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: cotangent)
        XCTAssertGreaterThan(maxAbs(fd), 1e-3, "\(what): degenerate gradient", file: file, line: line)
        let grad = try net.gradient(x, rows: rows, cotangent: cotangent)
        assertClose(grad, fd, rel: 1e-4, "\(what) pullback", file: file, line: line)
        // One example per chunk: other GEMM shapes, the same numbers up to their rounding.
        assertClose(try net.gradient(x, rows: rows, cotangent: cotangent, internalBatchSize: 1), grad, rel: 1e-5, "\(what) chunked",
                    file: file, line: line)
    }

    func testLSTMLastStatePullbackMatchesFiniteDifferences() throws {
        var g = Gen(1)
        let n = net([7, 4], [Self.lstm(&g, input: 4, hidden: 5, sequences: false), g.dense(3, 5)])
        XCTAssertEqual(n.outputShape, [3])
        try checkPullback(n, g.normals(3 * 28), rows: 3, "LSTM last state")
    }

    func testLSTMEveryStatePullbackMatchesFiniteDifferences() throws {
        var g = Gen(2)
        let n = net([5, 3], [Self.lstm(&g, input: 3, hidden: 4, sequences: true, biasHH: false), .flatten, g.dense(2, 20)])
        XCTAssertEqual(n.shapes[1], [5, 4])
        try checkPullback(n, g.normals(2 * 15), rows: 2, "LSTM every state")
        // Two stacked LSTMs (every state feeds the next), ending in the last state.
        let stacked = net([4, 3], [Self.lstm(&g, input: 3, hidden: 4, sequences: true), Self.lstm(&g, input: 4, hidden: 3, sequences: false)])
        try checkPullback(stacked, g.normals(3 * 12), rows: 3, "stacked LSTMs")
    }

    func testEmbeddingForwardAndTokenGradientsAtTheEmbeddingOutput() throws {
        var g = Gen(3)
        let n = Self.classifier(&g)
        let ids: [Float] = [0, 3, 12, 5, 5, 1, 7, 2, 9, 11, 0, 4]
        guard case .embedding(let e) = n.layers[0], let (_, rest) = n.embeddingSplit else { return XCTFail("no embedding") }
        var ref = Reference(n)
        assertClose(n.forward(ids, rows: 2), ref.forwardBatch(ids, rows: 2), rel: 1e-5, floor: 1, "token forward")
        let embedded = try n.embedTokens(ids, rows: 2)
        XCTAssertEqual(Array(embedded[(2 * 4)..<(3 * 4)]), Array(e.weight[(12 * 4)..<(13 * 4)]), "row of id 12 (a copy: bit-exact)")
        XCTAssertEqual(rest.inputShape, [6, 4])
        XCTAssertEqual(rest.forward(embedded, rows: 2), n.forward(ids, rows: 2), "the rest at the embedded inputs is the network (same GEMMs)")
        // Saliency of a token network = the gradient at the embedding output summed over the embedding axis.
        let atEmbedding = try rest.saliency(embedded, rows: 2, targets: [1], absolute: false)
        var fd = Reference(rest)
        let cot = [Float]([0, 1, 0, 0, 1, 0])
        assertClose(atEmbedding, fd.finiteDifferenceGradient(embedded, rows: 2, cotangent: cot), rel: 1e-4, "embedding-level gradient vs differences")
        let tokens = try n.saliency(ids, rows: 2, targets: [1], absolute: false)
        XCTAssertEqual(tokens.count, 12)
        let summed = (0..<12).map { k in (0..<4).reduce(Float(0)) { $0 + atEmbedding[k * 4 + $1] } }
        XCTAssertEqual(tokens, summed, "token saliency is the embedding saliency summed (the same computation)")
    }

    func testTokenIntegratedGradientsComplete() throws {
        var g = Gen(4)
        let n = Self.classifier(&g)
        let ids: [Float] = [1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1]
        let pad: [Float] = [0, 0, 0, 0, 0, 0]
        let ig = try n.integratedGradients(ids, rows: 2, baselines: pad, targets: [0, 2], steps: 64)
        XCTAssertEqual(ig.attributions.count, 12)
        // Σφ = f(x) − f(pad) up to the quadrature error of 64 Gauss–Legendre nodes on a smooth path
        // (≪ 1e-4 here) plus float32 rounding (1e-6).
        for d in ig.delta { XCTAssertLessThan(abs(d), 1e-4) }
        let fx = n.forward(ids, rows: 2), fb = n.forward(pad + pad, rows: 2)
        XCTAssertEqual(Double(ig.attributions[0..<6].reduce(0, +)), Double(fx[0] - fb[0]), accuracy: 1e-4)
        // No baselines: zero embedding vectors (not id 0).
        let zero = try n.integratedGradients(ids, rows: 2, targets: [0], steps: 64)
        guard let (_, rest) = n.embeddingSplit else { return XCTFail() }
        let f0 = rest.forward([Float](repeating: 0, count: 24), rows: 1)
        XCTAssertEqual(Double(zero.attributions[0..<6].reduce(0, +)), Double(fx[0] - f0[0]), accuracy: 1e-4)
        // Every other gradient method runs and returns one value per token.
        XCTAssertEqual(try n.inputXGradient(ids, rows: 2, targets: [1]).count, 12)
        XCTAssertEqual(try n.smoothGrad(ids, rows: 2, targets: [1], samples: 3, stdev: 0.1, seed: 1).count, 12)
        XCTAssertEqual(try n.expectedGradients(ids, rows: 2, references: pad + ids[0..<6], referenceCount: 2, targets: [1], samples: 8).count, 12)
    }

    /// DeepLIFT through the LSTM (Rescale on every σ/tanh, Shapley averages for the gate products) is an
    /// exact linear decomposition: Σ contributions = Δt. float32: every step rounds the forward values and
    /// the multipliers at ~(E + H)·u relative, so the sum misses Δt by ~1e-6 of the scale: 1e-4 absolute.
    func testDeepLiftSummationToDeltaThroughLSTM() throws {
        var g = Gen(5)
        let n = Self.classifier(&g)
        let ids: [Float] = [1, 2, 3, 4, 5, 6, 12, 11, 10, 9, 8, 7, 0, 0, 3, 3, 0, 0]
        let base: [Float] = [0, 0, 0, 0, 0, 0]
        for target in 0..<3 {
            let r = try n.deepLift(ids, rows: 3, baselines: base, targets: [target])
            XCTAssertEqual(r.attributions.count, 18)
            for (i, d) in r.delta.enumerated() { XCTAssertLessThan(abs(d), 1e-4, "example \(i), target \(target)") }
            let fx = n.forward(ids, rows: 3), fb = n.forward(base, rows: 1)
            XCTAssertEqual(Double(r.attributions[0..<6].reduce(0, +)), Double(fx[target] - fb[target]), accuracy: 1e-4)
        }
        // Every state into a Tanh and a Dense: the Rescale of the Tanh on top of the LSTM's multipliers.
        var h = Gen(6)
        let seq = net([5, 3], [Self.lstm(&h, input: 3, hidden: 4, sequences: true), .tanh, .flatten, h.dense(2, 20)])
        let x = h.normals(4 * 15), b = h.normals(4 * 15)
        let r = try seq.deepLift(x, rows: 4, baselines: b, targets: [1])
        for d in r.delta { XCTAssertLessThan(abs(d), 1e-4) }
        // DeepSHAP with token references: the mean over references, still complete.
        let shap = try n.deepShap(ids, rows: 3, references: base + ids[0..<6], referenceCount: 2, targets: [2])
        for d in shap.delta { XCTAssertLessThan(abs(d), 1e-4) }
    }

    /// As the reference approaches the input, every Rescale multiplier and Shapley average tends to the
    /// derivative, so DeepLIFT's multipliers tend to the gradient: a wrong coefficient in the gate rules
    /// (swapped ā/b̄, a missing carry) would leave an O(1) difference. With Δ = 1e-3 the multipliers differ
    /// from the gradient by O(Δ) ≈ 1e-3 relative; 1e-2 of the scale.
    func testDeepLiftMultipliersTendToTheGradient() throws {
        var g = Gen(8)
        let n = net([6, 3], [Self.lstm(&g, input: 3, hidden: 4, sequences: false), g.dense(2, 4)])
        let x = g.normals(2 * 18)
        // Seeded offsets of 1e-3·U(0.5, 1): the multipliers differ from the gradient by O(Δ) (the curvature
        // of the gates, ≲ 1e-3 relative) plus float32 rounding of Δy/Δx at each gate (u·|y|/|Δx|, with
        // pre-activation differences ≳ 1e-4: ≲ 1e-3 relative): 1e-2 leaves margin, and a wrong gate rule
        // is off by O(1).
        let offsets = g.uniforms(x.count, 0.5, 1)
        let b = zip(x, offsets).map { $0 - 1e-3 * $1 }
        let m = try n.deepLift(x, rows: 2, baselines: b, targets: [1], multiplyByInputs: false).attributions
        let grad = try n.saliency(x, rows: 2, targets: [1], absolute: false)
        assertClose(m, grad, rel: 1e-2, "multipliers → gradient")
    }

    func testTokenIdsAreChecked() {
        var g = Gen(9)
        let n = Self.classifier(&g, vocab: 10)
        func expectOutOfRange(_ what: String, _ name: String, _ body: () throws -> Void) {
            do {
                try body()
                XCTFail("\(what): no error")
            } catch let e as SwiftAttrError {
                XCTAssertEqual(e.code, .outOfRange, what)
                XCTAssertTrue(e.message.contains(name), "\(what): \(e.message)")
            } catch { XCTFail("\(error)") }
        }
        var ids = [Float](repeating: 1, count: 12)
        ids[7] = 10
        expectOutOfRange("id = vocab", "inputs[7]") { _ = try n.saliency(ids, rows: 2, targets: [0]) }
        ids[7] = -1
        expectOutOfRange("negative id", "inputs[7]") { _ = try n.predict(ids, rows: 2) }
        ids[7] = 2.5
        expectOutOfRange("fractional id", "inputs[7]") { _ = try n.deepLift(ids, rows: 2, targets: [0]) }
        let good = [Float](repeating: 1, count: 12)
        expectOutOfRange("baseline id", "baselines[3]") {
            _ = try n.integratedGradients(good, rows: 2, baselines: [0, 0, 0, 99, 0, 0], targets: [0])
        }
        expectOutOfRange("reference id", "references[2]") {
            _ = try n.expectedGradients(good, rows: 2, references: [0, 0, 11, 0, 0, 0], referenceCount: 1, targets: [0])
        }
        // The unchecked forward never reads out of bounds: a bad id gives NaN.
        XCTAssertTrue(n.forward(ids, rows: 2)[3].isNaN)
    }

    func testStructureAndUnsupportedMethodsAreErrors() throws {
        var g = Gen(10)
        let emb = Self.embedding(&g, vocab: 5, dim: 3)
        var n = try Network(inputShape: [4], layers: [emb])
        XCTAssertThrowsError(try n.append(emb)) { XCTAssertTrue("\($0)".contains("node 0")) }
        XCTAssertThrowsError(try n.append(.relu, inputs: [0])) { XCTAssertTrue("\($0)".contains("token ids")) }
        XCTAssertThrowsError(try Network(inputShape: [4, 3], layers: [emb]))
        XCTAssertThrowsError(try Network(inputShape: [4, 2], layers: [Self.lstm(&g, input: 3, hidden: 2, sequences: false)])) {
            XCTAssertEqual(($0 as? SwiftAttrError)?.code, .shapeMismatch)
        }
        let c = Self.classifier(&g)
        let ids = [Float](repeating: 1, count: 6)
        XCTAssertThrowsError(try c.integratedHessians(ids, rows: 1, targets: [0])) {
            XCTAssertTrue("\($0)".contains("not supported for LSTM"), "\($0)")
        }
        let lstmOnly = net([3, 2], [Self.lstm(&g, input: 2, hidden: 2, sequences: false), g.dense(1, 2)])
        XCTAssertThrowsError(try lstmOnly.hessians(g.normals(6), rows: 1, targets: [0])) { XCTAssertTrue("\($0)".contains("LSTM")) }
        // RevealCancel needs the positive/negative split of the LSTM's output: an error, not a wrong answer.
        let rc = net([3, 2], [Self.lstm(&g, input: 2, hidden: 2, sequences: false), .tanh, g.dense(1, 2)])
        XCTAssertThrowsError(try rc.deepLift(g.normals(6), rows: 1, targets: [0], rule: .revealCancel)) { XCTAssertTrue("\($0)".contains("LSTM")) }
    }

    func testModelFileRoundTrip() throws {
        var g = Gen(11)
        let n = Self.classifier(&g)
        let bytes = n.serialized()
        XCTAssertEqual(Array(bytes[0..<8]), Array("SAMODEL1".utf8), "a chain stays in the first format")
        let back = try Network(serialized: bytes)
        XCTAssertEqual(back, n)
        let ids: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(back.forward(ids, rows: 1), n.forward(ids, rows: 1))
        let seq = net([5, 3], [Self.lstm(&g, input: 3, hidden: 4, sequences: true), .flatten, g.dense(2, 20)])
        XCTAssertEqual(try Network(serialized: seq.serialized()), seq)
        // A corrupt return_sequences flag is a format error, not a crash.
        var corrupt = seq.serialized()
        let flagOffset = 8 + 4 + 2 * 8 + 4 + 4 + 4 + 2 * 8  // magic, ndim, shape, count, kind, n ints, two ints
        corrupt[flagOffset] = 7
        XCTAssertThrowsError(try Network(serialized: corrupt)) { XCTAssertEqual(($0 as? SwiftAttrError)?.code, .format) }
    }
}
