import XCTest
@testable import SwiftAttr

/// Attribution priors on networks with an LSTM node and on token networks (Embedding first), issue 12's
/// "double back-propagation for every node kind" (Training/AttributionGradients+Recurrent.swift): the
/// penalised loss and its parameter gradient against the float64 reference of AttributionPriorTests
/// (``AttributionPriorTests/checkPrior``: central differences of a float64 loss that shares no code with the
/// engine, with the tolerance argued there), for an LSTM after a Dense layer, an LSTM first on sequence input
/// and an Embedding → LSTM → Linear text classifier.
///
/// A token network's attributions are taken at the embedding output and summed over the embedding axis, as
/// the library's token attributions are (Network+Tokens.swift): ``tokenReferenceAttributions`` computes them
/// in float64 from the reference forward of the network after the embedding, at points interpolated between
/// the embedded example and the embedded reference tokens.
extension AttributionPriorTests {
    /// φ (rows × L) of a token network in float64: the reference forward of ``Network/embeddingSplit``'s rest,
    /// input gradients by central differences (h = 1e-4, as ``referenceAttributions``) at the embedding level,
    /// summed over the embedding axis per token.
    static func tokenReferenceAttributions(_ net: Network, _ x: [Float], rows: Int, labels: [Int], prior: AttributionPrior, seed: UInt64) -> [Double] {
        let (e, rest) = net.embeddingSplit!
        var ref = Reference(rest)
        let L = net.inputSize, E = e.dimension, D = L * E, h = 1e-4
        func embedded(_ n: Int) -> [Double] {
            (0..<D).map { Double(e.weight[Int(x[n * L + $0 / E]) * E + $0 % E]) }
        }
        func gradient(_ p: [Double], _ scalar: ([Double]) -> Double) -> [Double] { ref.gradient(at: p, h: h, scalar) }
        var phi = [Double](repeating: 0, count: rows * L)
        switch prior.kind {
        case .inputGradient:
            for n in 0..<rows {
                let g = gradient(embedded(n)) { f in
                    let m = f.max()!, lse = m + log(f.map { exp($0 - m) }.reduce(0, +))
                    return f.map { $0 - lse }.reduce(0, +)
                }
                for i in 0..<D { phi[n * L + i / E] += g[i] }
            }
        case .l1, .gini, .graph, .totalVariation:
            let k = prior.sampling.k
            let draws = ExpectedGradientsDraws.draw(rows: rows, k: k, referenceCount: nil, seed: seed, globalStep: 0)
            for n in 0..<rows {
                let xn = embedded(n)
                for j in 0..<k {
                    let b = n * k + j, rn = embedded(draws.referenceIndex[b]), a = Double(draws.alphas[b])
                    let g = gradient((0..<D).map { rn[$0] + a * (xn[$0] - rn[$0]) }) { f in f[labels[n]] }
                    for i in 0..<D { phi[n * L + i / E] += (xn[i] - rn[i]) * g[i] / Double(k) }
                }
            }
        }
        return phi
    }

    /// The priors the recurrent networks are checked with: L1 (k = 1 and k = 2), Gini, Graph and InputGradient.
    func recurrentPriors(_ d: Int, seed: UInt64) throws -> [(AttributionPrior, String)] {
        var g = Gen(seed)
        let adjacency = (0..<(d * d)).map { e in e / d == e % d ? Float(0) : g.uniforms(1, 0, 1)[0] }
        return [
            (try AttributionPrior(.l1, lambda: 2), "L1"),
            (try AttributionPrior(.l1, lambda: 2, sampling: .init(k: 2)), "L1 with k = 2"),
            (try AttributionPrior(.gini, lambda: 1), "Gini"),
            (try AttributionPrior(.graph(adjacency: adjacency), lambda: 10), "Graph"),
            (try AttributionPrior(.inputGradient(mask: g.uniforms(d, 0.2, 1.5)), lambda: 10), "InputGradient"),
        ]
    }

    /// (a) Dense → tanh → reshape to a sequence → LSTM (last state) → Dense.
    func testDenseThenLSTMThenDense() throws {
        var g = Gen(31)
        let model = net([5], [g.dense(8, 5), .tanh, .reshape(shape: [4, 2]), SequenceModelTests.lstm(&g, input: 2, hidden: 3, sequences: false),
                              g.dense(3, 3)])
        let x = g.normals(4 * 5), labels = [0, 2, 1, 1]
        for (prior, name) in try recurrentPriors(5, seed: 32) { try checkPrior(model, x, rows: 4, labels: labels, prior, "Dense→LSTM \(name)") }
    }

    /// (b) An LSTM first on (N, L, F) inputs, returning every state, then sigmoid, flatten and Dense.
    func testLSTMFirstOnSequenceInput() throws {
        var g = Gen(33)
        let model = net([3, 2], [SequenceModelTests.lstm(&g, input: 2, hidden: 3, sequences: true), .sigmoid, .flatten, g.dense(2, 9)])
        let x = g.normals(4 * 6), labels = [1, 0, 0, 1]
        for (prior, name) in try recurrentPriors(6, seed: 34) { try checkPrior(model, x, rows: 4, labels: labels, prior, "LSTM-first \(name)") }
    }

    /// (c) Embedding → LSTM → Dense: φ per token at the embedding output; the penalty's gradient reaches the
    /// embedding table through the points and through w = e(x) − e(r).
    func testEmbeddingLSTMDense() throws {
        var g = Gen(35)
        let model = SequenceModelTests.classifier(&g, vocab: 6, length: 4, dim: 3, hidden: 3, classes: 3)
        let x: [Float] = [0, 3, 5, 1, 2, 2, 4, 0, 5, 1, 0, 3, 1, 4, 2, 5]
        let labels = [2, 0, 1, 1]
        for (prior, name) in try recurrentPriors(4, seed: 36) { try checkPrior(model, x, rows: 4, labels: labels, prior, "Embedding→LSTM \(name)") }
    }

    /// A token network with a reference set of token ids: φ equals the float64 reference at those references
    /// (so the reference ids are embedded, not used as vectors), and references that are not ids are refused.
    func testTokenNetworkReferenceSet() throws {
        var g = Gen(37)
        let model = net([3], [SequenceModelTests.embedding(&g, vocab: 5, dim: 2), .flatten, g.dense(4, 6), .tanh, g.dense(2, 4)])
        let x: [Float] = [0, 1, 2, 3, 4, 0, 2, 2, 1], refs: [Float] = [4, 4, 4, 0, 3, 1]
        let draws = ExpectedGradientsDraws.draw(rows: 3, k: 2, referenceCount: 2, seed: 3, globalStep: 0)
        let a = try model.expectedGradientsWithPullback(x, rows: 3, functional: .target([1, 0, 1]), draws: draws, references: refs)
        let (e, rest) = model.embeddingSplit!
        var ref = Reference(rest)
        var expected = [Double](repeating: 0, count: 9)
        for n in 0..<3 {
            for j in 0..<2 {
                let b = n * 2 + j, alpha = Double(draws.alphas[b]), r = draws.referenceIndex[b]
                let xe = (0..<6).map { Double(e.weight[Int(x[n * 3 + $0 / 2]) * 2 + $0 % 2]) }
                let re = (0..<6).map { Double(e.weight[Int(refs[r * 3 + $0 / 2]) * 2 + $0 % 2]) }
                for i in 0..<6 {
                    var p = (0..<6).map { re[$0] + alpha * (xe[$0] - re[$0]) }, q = p
                    p[i] += 1e-4
                    q[i] -= 1e-4
                    let d = (ref.forward(p)[[1, 0, 1][n]] - ref.forward(q)[[1, 0, 1][n]]) / 2e-4
                    expected[n * 3 + i / 2] += (xe[i] - re[i]) * d / 2
                }
            }
        }
        assertClose(a.attributions, expected, rel: 1e-4, "token EG with a reference set")
        assertError(.outOfRange, mentioning: "references") {
            try model.expectedGradientsWithPullback(x, rows: 3, functional: .target([1, 0, 1]), draws: draws, references: [4, 4, 0.5, 0, 3, 1])
        }
        // The cotangent of a token network's φ has one value per token.
        assertError(.shapeMismatch, mentioning: "cotangent") { try a.parameterGradients([Float](repeating: 1, count: 18)) }
    }

    /// Training a token classifier with the L1 prior runs, changes the weights, and repeats bit for bit.
    func testTrainingTokenLSTMWithAPrior() throws {
        var g = Gen(38)
        let model = try SequenceModelTests.classifier(&g, vocab: 7, length: 5, dim: 3, hidden: 4, classes: 2).initialized(seed: 2)
        let rows = 40
        var x = [Float](), y = [Int]()
        for _ in 0..<rows {
            let ids = (0..<5).map { _ in Float(Int(g.uniforms(1, 0, 6.999)[0])) }
            x += ids
            y.append(ids.contains(3) ? 1 : 0)
        }
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 16
        o.seed = 5
        let prior = try AttributionPrior(.l1, lambda: 1)
        let a = try model.train(x, rows: rows, labels: .classes(y), options: o, penalties: [prior]).network
        let b = try model.train(x, rows: rows, labels: .classes(y), options: o, penalties: [prior]).network
        XCTAssertEqual(a.parameters, b.parameters)
        let plain = try model.train(x, rows: rows, labels: .classes(y), options: o).network
        XCTAssertNotEqual(a.parameters[0], plain.parameters[0], "the prior changes the embedding table's training")
    }
}
