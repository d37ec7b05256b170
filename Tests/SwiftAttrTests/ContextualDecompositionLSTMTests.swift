import XCTest
@testable import SwiftAttr

/// Contextual Decomposition through Embedding and LSTM (Murdoch, Liu, Yu 2018; the acd package's `cd_text`):
/// agreement with a float64 transcription of `cd_text` for both LSTM outputs, β + γ = the output for random
/// masks (token masks per position, per-element masks on a float sequence input, a stacked LSTM), the full
/// and the empty sequence, many masks against one at a time, and token-mask shape errors.
final class ContextualDecompositionLSTMTests: XCTestCase {
    // MARK: a float64 transcription of acd's cd_text

    static func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }

    /// acd's `propagate_three(a, b, c, f)`.
    static func three(_ a: Double, _ b: Double, _ c: Double, _ f: (Double) -> Double) -> (Double, Double, Double) {
        (0.5 * (f(a + c) - f(c) + f(a + b + c) - f(b + c)), 0.5 * (f(b + c) - f(c) + f(a + b + c) - f(a + c)), f(c))
    }

    /// `cd_text`'s loop, step by step, in float64: the input parts β_t, γ_t (L × E) replace its
    /// "W_i x_t to rel inside the span, else to irrel" (for a 0/1 position mask they are x_t and 0, or 0 and
    /// x_t), and `w[t]` (1 inside the span, 0 outside: cd_text; fractional in between) is the share of the
    /// term i_b·g_b that goes to rel. Returns the relevant and irrelevant hidden states of every step.
    static func cdText(_ l: Layer.LSTM, beta: [[Double]], gamma: [[Double]], w: [Double]) -> (rel: [[Double]], irr: [[Double]]) {
        let H = l.hiddenSize, E = l.inputSize, L = beta.count
        func wih(_ r: Int, _ k: Int) -> Double { Double(l.weightIH[r * E + k]) }
        func whh(_ r: Int, _ k: Int) -> Double { Double(l.weightHH[r * H + k]) }
        var relH = [[Double]](), irrH = [[Double]]()
        var relC = [Double](repeating: 0, count: H), irrC = relC
        for t in 0..<L {
            let prevRel = t > 0 ? relH[t - 1] : [Double](repeating: 0, count: H)
            let prevIrr = t > 0 ? irrH[t - 1] : [Double](repeating: 0, count: H)
            var rel = [Double](repeating: 0, count: 4 * H), irr = rel, full = rel
            for r in 0..<(4 * H) {
                for k in 0..<H { rel[r] += whh(r, k) * prevRel[k]; irr[r] += whh(r, k) * prevIrr[k] }
                for k in 0..<E { rel[r] += wih(r, k) * beta[t][k]; irr[r] += wih(r, k) * gamma[t][k] }
                full[r] = Double(l.bias[r])
                for k in 0..<E { full[r] += wih(r, k) * (beta[t][k] + gamma[t][k]) }
                for k in 0..<H { full[r] += whh(r, k) * (prevRel[k] + prevIrr[k]) }
            }
            var newRelC = relC, newIrrC = irrC, hr = relC, hi = relC
            for j in 0..<H {
                let (ir, ii, ib) = three(rel[j], irr[j], Double(l.bias[j]), sig)
                let (gr, gi, gb) = three(rel[2 * H + j], irr[2 * H + j], Double(l.bias[2 * H + j]), tanh)
                var cr = ir * (gr + gb) + ib * gr
                var ci = ii * (gr + gi + gb) + (ir + ib) * gi
                cr += w[t] * ib * gb
                ci += (1 - w[t]) * ib * gb
                if t > 0 {
                    let (fr, fi, fb) = three(rel[H + j], irr[H + j], Double(l.bias[H + j]), sig)
                    cr += (fr + fb) * relC[j]
                    ci += (fr + fi + fb) * irrC[j] + fi * relC[j]
                }
                let o = sig(full[3 * H + j])
                newRelC[j] = cr; newIrrC[j] = ci
                hr[j] = o * 0.5 * (tanh(cr) + (tanh(cr + ci) - tanh(ci)))
                hi[j] = o * 0.5 * (tanh(ci) + (tanh(cr + ci) - tanh(cr)))
            }
            relC = newRelC; irrC = newIrrC
            relH.append(hr); irrH.append(hi)
        }
        return (relH, irrH)
    }

    /// acd's affine rule in float64: r = W β, s = W γ, the bias split (|r| + 1e-20) : (|s| + 1e-20).
    static func dense(_ d: Layer.Dense, _ beta: [Double], _ gamma: [Double]) -> ([Double], [Double]) {
        var nb = [Double](), ng = [Double]()
        for o in 0..<d.outFeatures {
            var r = 0.0, s = 0.0
            for k in 0..<d.inFeatures { r += Double(d.weight[o * d.inFeatures + k]) * beta[k]; s += Double(d.weight[o * d.inFeatures + k]) * gamma[k] }
            let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20, b = Double(d.bias[o])
            nb.append(r + b * pr / (pr + ps)); ng.append(s + b * ps / (pr + ps))
        }
        return (nb, ng)
    }

    /// The reference CD of one example of a chain [Embedding] → LSTM(s) → [Flatten] → [Dense] for one mask:
    /// per position for a token network (β₀ = m_t·e(x_t)), per element otherwise. The share w_t of the
    /// i_b·g_b term is the mask's mean over the position when the LSTM reads the network input (the
    /// embedding output for tokens), and the ℓ1 share of β in the step's input, (Σ|β_t| + 1e-20) :
    /// (Σ|γ_t| + 1e-20), for an LSTM deeper in the chain.
    static func reference(_ n: Network, x: [Float], mask: [Float]) -> (beta: [Double], gamma: [Double]) {
        var beta: [Double], gamma: [Double], first = 0
        var L = n.inputShape[0]
        if case .embedding(let e) = n.layers[0] {
            beta = []; gamma = []
            for t in 0..<L {
                for k in 0..<e.dimension {
                    let v = Double(e.weight[Int(x[t]) * e.dimension + k])
                    beta.append(Double(mask[t]) * v); gamma.append((1 - Double(mask[t])) * v)
                }
            }
            first = 1
        } else {
            beta = zip(mask, x).map { Double($0) * Double($1) }
            gamma = zip(mask, x).map { (1 - Double($0)) * Double($1) }
        }
        var readsInput = true
        for i in first..<n.layers.count {
            switch n.layers[i] {
            case .lstm(let l):
                let E = l.inputSize
                let bt = (0..<L).map { Array(beta[($0 * E)..<(($0 + 1) * E)]) }, gt = (0..<L).map { Array(gamma[($0 * E)..<(($0 + 1) * E)]) }
                let w: [Double] = (0..<L).map { t in
                    if readsInput {
                        let per = mask.count / L
                        return (0..<per).reduce(0.0) { $0 + Double(mask[t * per + $1]) } / Double(per)
                    }
                    let pb = bt[t].reduce(0.0) { $0 + abs($1) } + 1e-20, pg = gt[t].reduce(0.0) { $0 + abs($1) } + 1e-20
                    return pb / (pb + pg)
                }
                let (rel, irr) = cdText(l, beta: bt, gamma: gt, w: w)
                beta = l.returnSequences ? rel.flatMap { $0 } : rel[L - 1]
                gamma = l.returnSequences ? irr.flatMap { $0 } : irr[L - 1]
                if !l.returnSequences { L = 0 }
            case .flatten:
                break
            case .dense(let d):
                (beta, gamma) = dense(d, beta, gamma)
            case .embedding, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .reshape, .relu,
                 .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat:
                preconditionFailure("the reference covers Embedding → LSTM → Flatten → Dense chains")
            }
            readsInput = false
        }
        return (beta, gamma)
    }

    // MARK: networks

    static let length = 7

    /// Embedding(20, 8) → LSTM(8, 6) last state → Linear(6, 2): the fixture classifier's shape.
    static func lastState(_ g: inout Gen) -> Network {
        net([length], [SequenceModelTests.embedding(&g, vocab: 20, dim: 8), SequenceModelTests.lstm(&g, input: 8, hidden: 6, sequences: false),
                       g.dense(2, 6)])
    }

    /// Embedding(20, 5) → LSTM(5, 4) every state → Flatten → Linear(L·4, 3).
    static func everyState(_ g: inout Gen) -> Network {
        net([length], [SequenceModelTests.embedding(&g, vocab: 20, dim: 5), SequenceModelTests.lstm(&g, input: 5, hidden: 4, sequences: true),
                       .flatten, g.dense(3, length * 4)])
    }

    /// Embedding → LSTM every state → LSTM last state → Linear: the second LSTM's bias-term share comes from
    /// its input parts.
    static func stacked(_ g: inout Gen) -> Network {
        net([length], [SequenceModelTests.embedding(&g, vocab: 20, dim: 4), SequenceModelTests.lstm(&g, input: 4, hidden: 5, sequences: true),
                       SequenceModelTests.lstm(&g, input: 5, hidden: 3, sequences: false), g.dense(2, 3)])
    }

    /// A float sequence input [L, 3] → LSTM last state → Linear: per-element masks.
    static func floatInput(_ g: inout Gen) -> Network {
        net([length, 3], [SequenceModelTests.lstm(&g, input: 3, hidden: 4, sequences: false), g.dense(2, 4)])
    }

    static func networks(_ g: inout Gen) -> [(String, Network)] {
        [("lastState", lastState(&g)), ("everyState", everyState(&g)), ("stacked", stacked(&g)), ("floatInput", floatInput(&g))]
    }

    private func tokens(_ g: inout Gen, _ n: Network, rows: Int) -> [Float] {
        if case .embedding(let e) = n.layers[0] {
            return (0..<(rows * n.inputSize)).map { _ in Float(Int(g.rng.uniform() * Double(e.vocabularySize)) % e.vocabularySize) }
        }
        return g.normals(rows * n.inputSize)
    }

    /// Spans (start...stop) as position masks, a random 0/1 mask and a fractional one, all of size inputSize.
    private func masks(_ g: inout Gen, _ n: Network) -> [[Float]] {
        let d = n.inputSize, per = d / Self.length
        func span(_ a: Int, _ b: Int) -> [Float] { (0..<d).map { (a...b).contains($0 / per) ? 1 : 0 } }
        return [span(0, 0), span(2, 4), span(6, 6), (0..<d).map { _ in g.rng.uniform() < 0.5 ? 1 : 0 }, g.uniforms(d, 0, 1)]
    }

    // MARK: tests

    /// The engine equals the float64 cd_text transcription (with acd's affine rule at the head) for both
    /// LSTM outputs, a stacked LSTM and a float input. Tolerance: the engine is float32; every step rounds
    /// its GEMMs (E + H ≤ 13 terms of order 1: a few 1e-7) and the σ/tanh differences of propagate_three
    /// (ulps of values ≤ 1), and the LSTM contracts errors from step to step (|f| < 1, |σ'|, |tanh'| ≤ 1),
    /// so the hidden-state parts are within about 1e-6 of the reference; the Dense heads (≤ 28 inputs,
    /// weights ≤ 1) and the bias split (no unit here with both products tiny next to its bias) keep the
    /// logits' parts within a few 1e-6: 1e-6 at the LSTM output, 1e-5 relative to the largest part at the logits.
    func testAgreesWithCdTextTranscription() throws {
        var g = Gen(11)
        for (name, n) in Self.networks(&g) {
            let rows = 2, d = n.inputSize, out = n.outputSize
            let x = tokens(&g, n, rows: rows)
            let ms = masks(&g, n)
            let r = try n.contextualDecomposition(x, rows: rows, masks: ms.flatMap { $0 }, maskCount: ms.count)
            // The LSTM output alone (the network cut before its head).
            let lstmAt = n.layers.lastIndex { if case .lstm = $0 { return true } else { return false } }!
            var body = net(n.inputShape, [])
            for i in 0...lstmAt { try body.append(n.layers[i], inputs: n.inputs[i]) }
            let rb = try body.contextualDecomposition(x, rows: rows, masks: ms.flatMap { $0 }, maskCount: ms.count)
            let bo = body.outputSize
            for e in 0..<rows {
                let xe = Array(x[(e * d)..<((e + 1) * d)])
                for (m, mask) in ms.enumerated() {
                    let expected = Self.reference(n, x: xe, mask: mask), inner = Self.reference(body, x: xe, mask: mask)
                    let o = (e * ms.count + m) * out, ob = (e * ms.count + m) * bo
                    let scale = max(maxAbs(expected.beta), maxAbs(expected.gamma), 1e-3)
                    assertClose(Array(rb.relevant[ob..<(ob + bo)]), inner.beta, rel: 1e-6, floor: 1, "\(name) LSTM β, example \(e) mask \(m)")
                    assertClose(Array(rb.irrelevant[ob..<(ob + bo)]), inner.gamma, rel: 1e-6, floor: 1, "\(name) LSTM γ, example \(e) mask \(m)")
                    assertClose(Array(r.relevant[o..<(o + out)]), expected.beta, rel: 1e-5, floor: scale, "\(name) β, example \(e) mask \(m)")
                    assertClose(Array(r.irrelevant[o..<(o + out)]), expected.gamma, rel: 1e-5, floor: scale, "\(name) γ, example \(e) mask \(m)")
                }
            }
        }
    }

    /// β + γ equals the output to 1e-5 relative for random masks (the engine's other part is the forward
    /// value minus the carried one: one float32 subtraction and addition), for every network above.
    func testConservesForRandomMasks() throws {
        var g = Gen(12)
        for (name, n) in Self.networks(&g) {
            let rows = 3, d = n.inputSize, out = n.outputSize, count = 6
            let x = tokens(&g, n, rows: rows)
            let ms = (0..<(count * d)).map { _ in g.rng.uniform() < 0.4 ? Float(1) : 0 }
            let r = try n.contextualDecomposition(x, rows: rows, masks: ms, maskCount: count)
            let f = n.forward(x, rows: rows)
            for e in 0..<rows {
                let fe = Array(f[(e * out)..<((e + 1) * out)])
                for m in 0..<count {
                    let o = (e * count + m) * out
                    let sum = (0..<out).map { r.relevant[o + $0] + r.irrelevant[o + $0] }
                    assertClose(sum, fe, rel: 1e-5, floor: 1e-3, "\(name) β + γ = f, example \(e) mask \(m)")
                }
            }
        }
    }

    /// The whole sequence as the group: γ is exactly 0 at the LSTM output (every irrelevant input, gate part
    /// and cell is an exact 0 in cd_text's rules), so the Dense head gives γ only the 1e-20 share of its
    /// bias and β = the logits; acd's `cd_text` scores W_out h_rel without the bias, so "CD of the whole
    /// sequence equals the logits minus the output bias" is β − b_out = W_out h here (checked against the
    /// float64 forward of the LSTM output; float32 rounding of the LSTM and the head, 1e-5 relative). The
    /// empty mask mirrors it: β = 0 exactly at the LSTM output and 1e-20 of the bias at the logits.
    func testFullAndEmptySequence() throws {
        var g = Gen(13)
        for (name, n) in [("lastState", Self.lastState(&g)), ("everyState", Self.everyState(&g))] {
            let rows = 2, d = n.inputSize, out = n.outputSize
            let x = tokens(&g, n, rows: rows)
            let full = [Float](repeating: 1, count: d), empty = [Float](repeating: 0, count: d)
            let r = try n.contextualDecomposition(x, rows: rows, masks: full + empty, maskCount: 2)
            var body = net(n.inputShape, [])
            for i in 0..<(n.layers.count - 1) { try body.append(n.layers[i], inputs: n.inputs[i]) }
            let rb = try body.contextualDecomposition(x, rows: rows, masks: full + empty, maskCount: 2)
            let bo = body.outputSize
            guard case .dense(let head) = n.layers.last! else { return XCTFail("no head") }
            var ref = Reference(body)
            let f = n.forward(x, rows: rows)
            for e in 0..<rows {
                XCTAssertEqual(Array(rb.irrelevant[(e * 2 * bo)..<((e * 2 + 1) * bo)]), [Float](repeating: 0, count: bo), "\(name) full: γ = 0 at the LSTM")
                XCTAssertEqual(Array(rb.relevant[((e * 2 + 1) * bo)..<((e * 2 + 2) * bo)]), [Float](repeating: 0, count: bo), "\(name) empty: β = 0 at the LSTM")
                let h = ref.forward(x[(e * d)..<((e + 1) * d)].map(Double.init))
                let wh = (0..<out).map { o in (0..<head.inFeatures).reduce(0.0) { $0 + Double(head.weight[o * head.inFeatures + $1]) * h[$1] } }
                let fo = e * 2 * out, eo = (e * 2 + 1) * out
                let beta = (0..<out).map { Double(r.relevant[fo + $0]) - Double(head.bias[$0]) }
                assertClose(beta, wh, rel: 1e-5, floor: 1e-3, "\(name) full: β − b_out = W_out h (cd_text's score)")
                assertClose(Array(r.relevant[fo..<(fo + out)]), Array(f[(e * out)..<((e + 1) * out)]), rel: 1e-6, floor: 1e-3, "\(name) full: β = the logits")
                for j in 0..<out {
                    XCTAssertLessThanOrEqual(abs(r.irrelevant[fo + j]), 1e-18, "\(name) full: γ = 1e-20 of the bias")
                    XCTAssertLessThanOrEqual(abs(r.relevant[eo + j]), 1e-18, "\(name) empty: β = 1e-20 of the bias")
                }
            }
        }
    }

    /// Many masks in one call equal one call per mask and every chunking (float32 rounding of differently
    /// shaped GEMMs: 1e-6 relative); the same call twice is bit-for-bit the same.
    func testManyMasksEqualOneAtATime() throws {
        var g = Gen(14)
        for (name, n) in Self.networks(&g) {
            let rows = 3, out = n.outputSize
            let x = tokens(&g, n, rows: rows)
            let ms = masks(&g, n), count = ms.count
            let all = try n.contextualDecomposition(x, rows: rows, masks: ms.flatMap { $0 }, maskCount: count)
            let again = try n.contextualDecomposition(x, rows: rows, masks: ms.flatMap { $0 }, maskCount: count)
            XCTAssertEqual(all.relevant, again.relevant, "\(name): repeatable")
            XCTAssertEqual(all.irrelevant, again.irrelevant, "\(name): repeatable")
            let scale = max(maxAbs(all.relevant), maxAbs(all.irrelevant), 1e-3)
            for (m, mask) in ms.enumerated() {
                let one = try n.contextualDecomposition(x, rows: rows, masks: mask, maskCount: 1)
                for e in 0..<rows {
                    let o = (e * count + m) * out
                    assertClose(Array(all.relevant[o..<(o + out)]), Array(one.relevant[(e * out)..<((e + 1) * out)]), rel: 1e-6, floor: scale, "\(name) β mask \(m)")
                    assertClose(Array(all.irrelevant[o..<(o + out)]), Array(one.irrelevant[(e * out)..<((e + 1) * out)]), rel: 1e-6, floor: scale, "\(name) γ mask \(m)")
                }
            }
            for batch in [1, 4, 7] {
                let chunked = try n.contextualDecomposition(x, rows: rows, masks: ms.flatMap { $0 }, maskCount: count, internalBatchSize: batch)
                assertClose(chunked.relevant, all.relevant, rel: 1e-6, floor: scale, "\(name) β internal_batch_size \(batch)")
                assertClose(chunked.irrelevant, all.irrelevant, rel: 1e-6, floor: scale, "\(name) γ internal_batch_size \(batch)")
            }
        }
    }

    /// A token network takes one mask value per position (size L, not L·E); ids are checked.
    func testTokenMaskShapeAndIds() throws {
        var g = Gen(15)
        let n = Self.lastState(&g)
        let x = tokens(&g, n, rows: 1)
        assertError(.shapeMismatch, mentioning: "mask: expected 1 masks of one value per position") {
            try n.contextualDecomposition(x, rows: 1, masks: [Float](repeating: 1, count: Self.length * 8), maskCount: 1)
        }
        var bad = x
        bad[3] = 20
        assertError(.outOfRange, mentioning: "inputs[3]") {
            try n.contextualDecomposition(bad, rows: 1, masks: [Float](repeating: 1, count: Self.length), maskCount: 1)
        }
    }
}
