import XCTest
@testable import SwiftAttr

/// Contextual Decomposition: the issue's hand vector and three-part linearisation, agreement of the engine
/// (β carried per mask, γ implicit as the ordinary forward minus β, many masks batched) with a plain
/// float64 transcription of the acd package's rules that carries both parts, β + γ = the network's value
/// for every node kind, the full and empty masks, and many masks in one call against one at a time.
final class ContextualDecompositionTests: XCTestCase {
    // MARK: a plain reference (float64, β and γ both carried, acd's formulas with m(·) a one-layer network)

    /// CD of one example and one mask as the acd package writes it: every layer is applied to β and γ
    /// separately through `m(·)` (the float64 reference forward of a one-layer network), affine layers take
    /// b = m(0), r = m(β) − b, s = m(γ) − b and split b in proportion (|r| + 1e-20) : (|s| + 1e-20);
    /// batch-norm gives β r + |r|/(|r| + |s|)·b (NaN → 0) and γ the rest of m(β + γ); max-pooling gathers
    /// both at the argmax of β + γ; activations f with f(0) = 0 take β' = f(β), γ' = f(β + γ) − f(β)
    /// (ReLU-like) or the average over both orders (sigmoid, tanh), and a constant f(0) ≠ 0 is split as
    /// a bias. Returns (β, γ) at the attributed value (the logits of a final Softmax).
    static func referenceCD(_ n: Network, x: [Float], mask: [Float]) -> (beta: [Double], gamma: [Double]) {
        let top = n.endsWithSoftmax ? n.inputs[n.layers.count - 1][0] : n.layers.count
        var beta: [[Double]] = [zip(mask, x).map { Double($0) * Double($1) }]
        var gamma: [[Double]] = [zip(mask, x).map { (1 - Double($0)) * Double($1) }]
        func share(_ r: Double, _ s: Double) -> Double {
            let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20
            return pr / (pr + ps)
        }
        for i in 0..<top {
            let reads = n.inputs[i]
            let layer = n.layers[i]
            switch layer {
            case .add:
                var b = beta[reads[0]], g = gamma[reads[0]]
                for r in reads.dropFirst() {
                    for k in b.indices { b[k] += beta[r][k]; g[k] += gamma[r][k] }
                }
                beta.append(b); gamma.append(g)
                continue
            case .concat:
                beta.append(reads.flatMap { beta[$0] }); gamma.append(reads.flatMap { gamma[$0] })
                continue
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
                 .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm:
                break
            }
            let one = net(n.shapes[reads[0]], [layer])
            var ref = Reference(one)
            func m(_ v: [Double]) -> [Double] { ref.forward(v) }
            let b = beta[reads[0]], g = gamma[reads[0]]
            let sum = zip(b, g).map(+)
            let zero = [Double](repeating: 0, count: b.count)
            var nb: [Double], ng: [Double]
            switch layer {
            case .dense, .conv1d, .conv2d:
                let bias = m(zero)
                let r = zip(m(b), bias).map(-), s = zip(m(g), bias).map(-)
                nb = r.indices.map { r[$0] + share(r[$0], s[$0]) * bias[$0] }
                ng = r.indices.map { s[$0] + share(s[$0], r[$0]) * bias[$0] }
            case .batchNorm:
                let bias = m(zero), full = m(sum)
                let r = zip(m(b), bias).map(-), s = zip(m(g), bias).map(-)
                nb = r.indices.map { k in
                    var p = abs(r[k]) / (abs(r[k]) + abs(s[k]))
                    if p.isNaN { p = 0 }
                    return r[k] + p * bias[k]
                }
                ng = zip(full, nb).map(-)
            case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout:
                nb = m(b); ng = m(g)
            case .maxPool1d, .maxPool2d:
                let tape = one.record(sum.map { Float($0) }, rows: 1)
                let at = tape.argmax[0].map(Int.init)
                nb = at.map { b[$0] }; ng = at.map { g[$0] }
            case .relu, .leakyReLU, .elu, .softplus:
                let f0 = m(zero), fb = m(b), fh = m(sum)
                nb = []; ng = []
                for k in b.indices {
                    let db = fb[k] - f0[k], dg = fh[k] - fb[k]
                    nb.append(db + share(db, dg) * f0[k]); ng.append(dg + share(dg, db) * f0[k])
                }
            case .sigmoid, .tanh:
                let f0 = m(zero), fb = m(b), fg = m(g), fh = m(sum)
                nb = []; ng = []
                for k in b.indices {
                    let db = 0.5 * ((fb[k] - f0[k]) + (fh[k] - fg[k])), dg = 0.5 * ((fg[k] - f0[k]) + (fh[k] - fb[k]))
                    nb.append(db + share(db, dg) * f0[k]); ng.append(dg + share(dg, db) * f0[k])
                }
            case .softmax, .add, .concat, .embedding, .lstm:
                preconditionFailure("not reached")
            }
            beta.append(nb); gamma.append(ng)
        }
        return (beta[top], gamma[top])
    }

    // MARK: networks holding every node kind

    /// [2, 16] → conv1d (padded) → BN → LeakyReLU → max-pool (padded, k3 s2) → dropout → sigmoid → avg-pool →
    /// conv1d 1×1 → ELU(α = 0.7) → global average pool → dense → Softplus(2) → dense: the 1-D kinds and
    /// the activations the graph fixtures lack.
    static func chain1d(_ g: inout Gen) -> Network {
        net([2, 16], [
            g.conv(3, 2, kernel: [3], padding: [1]), g.batchNorm(3), .leakyReLU(slope: 0.1),
            .maxPool1d(pool([3], stride: [2], padding: [1])), .dropout(p: 0.3), .sigmoid, .avgPool1d(pool([2])),
            g.conv(4, 3, kernel: [1]), .elu(alpha: 0.7), .globalAvgPool, g.dense(5, 4), .softplus(beta: 2), g.dense(3, 5),
        ])
    }

    /// The benchmark-style CNN, small: [1, 16, 16] → conv 5×5 → ReLU → max-pool → conv 3×3 → ReLU → max-pool
    /// → flatten → dense → ReLU → dense.
    static func cnn(_ g: inout Gen) -> Network {
        net([1, 16, 16], [
            g.conv(4, 1, kernel: [5, 5]), .relu, .maxPool2d(pool([2, 2])), g.conv(6, 4, kernel: [3, 3]), .relu,
            .maxPool2d(pool([2, 2])), .flatten, g.dense(8, 24), .relu, g.dense(4, 8),
        ])
    }

    static func networks(_ g: inout Gen) -> [(String, Network)] {
        [
            ("chain1d", chain1d(&g)), ("cnn", cnn(&g)),
            ("residualConcat", GraphFixtures.residualConcat(&g)), ("residualConcat smooth", GraphFixtures.residualConcat(&g, smooth: true)),
            ("affineBranches", GraphFixtures.affineBranches(&g)), ("denseNetConcat", GraphFixtures.denseNetConcat(&g)),
            ("twoBranchSoftmax", GraphFixtures.twoBranchSoftmax(&g)),
        ]
    }

    /// Every node kind appears in `networks` (so a new kind must be added here too).
    func testNetworksHoldEveryNodeKind() {
        var g = Gen(1)
        let names = Set(Self.networks(&g).flatMap { $0.1.layers.map(\.name) })
        for kind in ["Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool", "Flatten",
                     "ReLU", "LeakyReLU", "ELU", "Softplus", "Sigmoid", "Tanh", "Softmax", "BatchNorm", "Dropout", "Add", "Concat"] {
            XCTAssert(names.contains(kind), kind)
        }
    }

    /// `n` without a final Softmax (the network of its logits), else `n`.
    static func logits(_ n: Network) -> Network {
        guard n.endsWithSoftmax else { return n }
        var m = net(n.inputShape, [])
        for i in 0..<(n.layers.count - 1) { try! m.append(n.layers[i], inputs: n.inputs[i]) }
        return m
    }

    /// The attributed value of `n` (the logits of a final Softmax) for `rows` examples.
    private func attributed(_ n: Network, _ x: [Float], rows: Int) throws -> [Float] {
        try n.activations(x, rows: rows, atInputOf: n.endsWithSoftmax ? n.inputs[n.layers.count - 1][0] : n.layers.count)
    }

    private func bernoulliMasks(_ g: inout Gen, _ count: Int, _ d: Int) -> [Float] {
        (0..<(count * d)).map { _ in g.rng.uniform() < 0.5 ? 1 : 0 }
    }

    // MARK: the issue's numbers

    /// W₁ = [[1, −2, .5], [.5, 1, −1]], b₁ = [.1, −.2], ReLU, W₂ = [[2, −1]], b₂ = .3, x = (1, .5, −1), group
    /// {x₀}: by hand with acd's split (b·(|r| + 1e-20)/(|r| + |s| + 2e-20)), layer 1 gives β = (1.04, .45),
    /// γ = (−1.44, 1.35); ReLU β = (1.04, .45), γ = (−1.04, 1.35); layer 2 r = 1.63, s = −3.43, so
    /// β = 1.63 + .3·1.63/5.06 = 1.72664 and γ = −3.43 + .3·3.43/5.06 = −3.22664 (β + γ = −1.5 = f(x)).
    func testHandVector() throws {
        let n = net([3], [
            .dense(try .init(weight: [1, -2, 0.5, 0.5, 1, -1], bias: [0.1, -0.2], outFeatures: 2, inFeatures: 3)), .relu,
            .dense(try .init(weight: [2, -1], bias: [0.3], outFeatures: 1, inFeatures: 2)),
        ])
        let r = try n.contextualDecomposition([1, 0.5, -1], rows: 1, masks: [1, 0, 0], maskCount: 1)
        XCTAssertEqual(r.relevant[0], 1.72664, accuracy: 2e-6)
        XCTAssertEqual(r.irrelevant[0], -3.22664, accuracy: 2e-6)
        let reference = Self.referenceCD(n, x: [1, 0.5, -1], mask: [1, 0, 0])
        XCTAssertEqual(reference.beta[0], 1.72664, accuracy: 1e-5)
        XCTAssertEqual(reference.gamma[0], -3.22664, accuracy: 1e-5)
    }

    /// acd's `propagate_three` through σ with a = .7, b = −.4 and the bias c = .2: a's share
    /// ½[σ(.9) − σ(.2) + σ(.5) − σ(−.2)] = 0.166704, b's ½[σ(−.2) − σ(.2) + σ(.5) − σ(.9)] = −0.094079, and
    /// σ(.2) = 0.549834 to the bias; the three sum to σ(a + b + c).
    func testThreePartLinearisation() {
        let parts = Activation(.sigmoid).contextualShares(0.7, -0.4, bias: 0.2)
        XCTAssertEqual(parts.a, 0.166704, accuracy: 1e-6)
        XCTAssertEqual(parts.b, -0.094079, accuracy: 1e-6)
        XCTAssertEqual(parts.bias, 0.549834, accuracy: 1e-6)
        XCTAssertEqual(parts.a + parts.b + parts.bias, Activation.sigmoid(0.5), accuracy: 1e-6)
        let t = Activation(.tanh).contextualShares(0.3, 0.8, bias: -0.5)
        XCTAssertEqual(t.a + t.b + t.bias, _tanh(0.6), accuracy: 1e-6)
        XCTAssertEqual(t.bias, _tanh(-0.5), accuracy: 1e-7)
    }

    // MARK: agreement with the reference and β + γ = f

    /// For every node kind (over the networks above, graphs included), random 0/1 masks and one fractional
    /// mask: the engine's β and γ equal the float64 reference's, and β + γ equals the attributed value —
    /// for the reference (the conservation of the rules themselves) and for the engine.
    ///
    /// Tolerances. The reference carries γ itself, in float64, so its β + γ differs from its own float64
    /// forward only by float64 rounding (1e-12 relative). The engine computes in float32: each layer's
    /// GEMMs and the split add a few ulps (1e-7 relative to the magnitudes |W||v| involved); the bias split
    /// b·(|r| + ε)/(|r| + |s| + 2ε) amplifies an error δ of r or s by |b|/(|r| + |s|), which stays below
    /// about 100 in these networks (no unit with both parts tiny next to its bias), so 1e-4 of the
    /// largest magnitude among β, γ and f covers ten layers with margin. The engine's β + γ is the
    /// ordinary forward up to one float32 subtraction and addition (γ = f − β), so 1e-5 relative holds.
    func testAgreesWithReferenceAndConserves() throws {
        var g = Gen(2024)
        for (name, n) in Self.networks(&g) {
            let d = n.inputSize, rows = 2, out = n.outputSize
            let x = g.normals(rows * d)
            var masks = bernoulliMasks(&g, 3, d)
            masks += g.uniforms(d, 0, 1)
            let maskCount = 4
            let r = try n.contextualDecomposition(x, rows: rows, masks: masks, maskCount: maskCount)
            XCTAssertEqual(r.relevant.count, rows * maskCount * out)
            let f = try attributed(n, x, rows: rows)
            var ref = Reference(Self.logits(n))
            for e in 0..<rows {
                let xe = Array(x[(e * d)..<((e + 1) * d)])
                let full = ref.forward(xe.map(Double.init))
                for m in 0..<maskCount {
                    let mask = Array(masks[(m * d)..<((m + 1) * d)])
                    let expected = Self.referenceCD(n, x: xe, mask: mask)
                    let o = (e * maskCount + m) * out
                    let beta = Array(r.relevant[o..<(o + out)]), gamma = Array(r.irrelevant[o..<(o + out)])
                    let fe = Array(f[(e * out)..<((e + 1) * out)])
                    let scale = max(maxAbs(expected.beta), maxAbs(expected.gamma), maxAbs(fe), 1e-3)
                    assertClose(beta, expected.beta, rel: 1e-4, floor: scale, "\(name) β example \(e) mask \(m)")
                    assertClose(gamma, expected.gamma, rel: 1e-4, floor: scale, "\(name) γ example \(e) mask \(m)")
                    assertClose(zip(expected.beta, expected.gamma).map(+), full, rel: 1e-5, "\(name) reference β + γ = f, example \(e) mask \(m)")
                    assertClose(zip(beta, gamma).map(+), fe, rel: 1e-5, floor: scale, "\(name) engine β + γ = f, example \(e) mask \(m)")
                }
            }
        }
    }

    /// A full mask leaves γ ≈ 0 and an empty mask β ≈ 0, up to the bias shares: the 1e-20 share of each
    /// bias, and — acd's rule — half the bias of a unit whose two products r and s are both 0 (every input
    /// a dead ReLU), which the reference reproduces. So: the engine equals the reference for both masks
    /// (tolerance as above), and in the networks without ReLU, where no unit's inputs are all exactly 0,
    /// γ (full) and β (empty) vanish to float32 rounding of γ = f − β (1e-5 of the output).
    func testFullAndEmptyMasks() throws {
        var g = Gen(77)
        for (name, n) in Self.networks(&g) {
            let d = n.inputSize, rows = 3
            let x = g.normals(rows * d)
            let full = [Float](repeating: 1, count: d), empty = [Float](repeating: 0, count: d)
            let r = try n.contextualDecomposition(x, rows: rows, masks: full + empty, maskCount: 2)
            let f = try attributed(n, x, rows: rows)
            let out = n.outputSize
            let exactZeros = n.layers.contains { if case .relu = $0 { return true } else { return false } }
            for e in 0..<rows {
                let fe = Array(f[(e * out)..<((e + 1) * out)]), xe = Array(x[(e * d)..<((e + 1) * d)])
                let scale = max(maxAbs(fe), 1e-3)
                for (k, mask) in [full, empty].enumerated() {
                    let o = (e * 2 + k) * out
                    let beta = Array(r.relevant[o..<(o + out)]), gamma = Array(r.irrelevant[o..<(o + out)])
                    let expected = Self.referenceCD(n, x: xe, mask: mask)
                    let bound = max(scale, maxAbs(expected.beta), maxAbs(expected.gamma))
                    assertClose(beta, expected.beta, rel: 1e-4, floor: bound, "\(name) \(k == 0 ? "full" : "empty") mask β")
                    assertClose(gamma, expected.gamma, rel: 1e-4, floor: bound, "\(name) \(k == 0 ? "full" : "empty") mask γ")
                }
                guard !exactZeros else { continue }
                let fo = (e * 2) * out, eo = (e * 2 + 1) * out
                XCTAssertLessThanOrEqual(maxAbs(Array(r.irrelevant[fo..<(fo + out)])), 1e-5 * scale, "\(name) full mask γ ≈ 0")
                XCTAssertLessThanOrEqual(maxAbs(Array(r.relevant[eo..<(eo + out)])), 1e-5 * scale, "\(name) empty mask β ≈ 0")
            }
        }
    }

    // MARK: batching

    /// Many masks in one call equal one call per mask, and every chunking gives the same numbers up to
    /// float32 rounding (the GEMMs change shape with the chunk: 1e-6 of the magnitudes, amplified by the
    /// bias split as above, so 1e-5); the same call twice is bit-for-bit the same.
    func testManyMasksEqualOneAtATime() throws {
        var g = Gen(5)
        for (name, n) in Self.networks(&g) {
            let d = n.inputSize, rows = 3, maskCount = 5, out = n.outputSize
            let x = g.normals(rows * d)
            let masks = bernoulliMasks(&g, maskCount, d)
            let all = try n.contextualDecomposition(x, rows: rows, masks: masks, maskCount: maskCount)
            let again = try n.contextualDecomposition(x, rows: rows, masks: masks, maskCount: maskCount)
            XCTAssertEqual(all.relevant, again.relevant, "\(name): repeatable")
            XCTAssertEqual(all.irrelevant, again.irrelevant, "\(name): repeatable")
            let scale = max(maxAbs(all.relevant), maxAbs(all.irrelevant), 1e-3)
            for m in 0..<maskCount {
                let one = try n.contextualDecomposition(x, rows: rows, masks: Array(masks[(m * d)..<((m + 1) * d)]), maskCount: 1)
                for e in 0..<rows {
                    let o = (e * maskCount + m) * out
                    assertClose(Array(all.relevant[o..<(o + out)]), Array(one.relevant[(e * out)..<((e + 1) * out)]), rel: 1e-5, floor: scale, "\(name) β mask \(m)")
                    assertClose(Array(all.irrelevant[o..<(o + out)]), Array(one.irrelevant[(e * out)..<((e + 1) * out)]), rel: 1e-5, floor: scale, "\(name) γ mask \(m)")
                }
            }
            for batch in [1, 4, 7] {
                let chunked = try n.contextualDecomposition(x, rows: rows, masks: masks, maskCount: maskCount, internalBatchSize: batch)
                assertClose(chunked.relevant, all.relevant, rel: 1e-5, floor: scale, "\(name) β internal_batch_size \(batch)")
                assertClose(chunked.irrelevant, all.irrelevant, rel: 1e-5, floor: scale, "\(name) γ internal_batch_size \(batch)")
            }
        }
    }

    // MARK: errors

    func testArgumentErrors() throws {
        var g = Gen(9)
        let n = Self.cnn(&g)
        let d = n.inputSize, x = g.normals(2 * d), mask = [Float](repeating: 1, count: d)
        assertError(.shapeMismatch, mentioning: "mask") { try n.contextualDecomposition(x, rows: 2, masks: Array(mask.dropLast()), maskCount: 1) }
        assertError(.shapeMismatch, mentioning: "mask") { try n.contextualDecomposition(x, rows: 2, masks: mask, maskCount: 2) }
        assertError(.invalidArgument, mentioning: "n_masks") { try n.contextualDecomposition(x, rows: 2, masks: [], maskCount: 0) }
        var bad = mask
        bad[7] = .nan
        assertError(.nonFinite, mentioning: "mask") { try n.contextualDecomposition(x, rows: 2, masks: bad, maskCount: 1) }
        assertError(.shapeMismatch, mentioning: "inputs") { try n.contextualDecomposition(Array(x.dropLast()), rows: 2, masks: mask, maskCount: 1) }
        assertError(.invalidArgument, mentioning: "internal_batch_size") {
            try n.contextualDecomposition(x, rows: 2, masks: mask, maskCount: 1, internalBatchSize: 0)
        }
    }
}
