/// CDEP, Contextual Decomposition Explanation Penalization (Rieger, Singh, Murdoch, Yu 2020): a training
/// penalty on the CD importance of input regions known to be irrelevant.
///
/// With (β_nc, γ_nc) the CD parts (``Network/contextualDecomposition(_:rows:masks:maskCount:internalBatchSize:)``,
/// acd's rules) of region k at class c of example n, the penalty is
///
///     λ Σ_k mean_nc softmax([β_nkc, γ_nkc])₀ = λ Σ_k mean_nc σ(β_nkc − γ_nkc),
///
/// at the logits (CD stops at a final Softmax's input). Several regions are summed, each averaged over
/// the examples and classes: the authors' ColorMNIST code (laura-rieger/deep-explanation-penalization,
/// `train_mnist_color.py`) adds one such mean per sampled blob. Their DecoyMNIST code penalises the four
/// corners as *one* region (the union mask), which is what a single mask of the union gives here.
///
/// The gradient is taken through the CD propagation itself: a forward walk carries both parts of every
/// (example, region) pair explicitly, stacked as 2P rows (β of pair p in row p, γ in row P + p), recording
/// what each rule needs; a reverse walk applies, per node kind, the exact derivative of that forward rule.
/// The rules are the file ContextualDecomposition.swift's (see its header), written here on both parts:
///
/// - Dense, Conv: r = W β, s = W γ (one GEMM over the 2P rows of the bias-free layer), bias b split by
///   ``contextualSplit(_:_:bias:)``; reverse: ``contextualSplitPullback(_:_:bias:_:_:)`` to (dr, ds, db),
///   then the layer's ordinary pullback and weight gradient on the stacked rows (dW = drᵀβ + dsᵀγ).
/// - BatchNorm: r = aβ, s = aγ, β' = r + p·shift, γ' = s + (1 − p)·shift, p = |r|/(|r| + |s|) (0 at 0/0).
/// - Pooling, Flatten, Reshape, Dropout, Add, Concat: linear, the same map on both parts (max-pooling at
///   the argmax of β + γ, recorded by the forward walk).
/// - ReLU, LeakyReLU, ELU, Softplus: β' = f(β) − f(0), γ' = f(β + γ) − f(β), f(0) split as a bias.
/// - Sigmoid, Tanh: β' = ½[f(β) − f(0) + f(β + γ) − f(γ)], γ' symmetric, f(0) split as a bias.
/// - Embedding (node 0 of a token network): β₀ = m_t e(x_t), γ₀ = (1 − m_t) e(x_t); the embedding rows
///   receive m_t dβ₀ + (1 − m_t) dγ₀.
/// - LSTM (acd's `cd_text`, as ContextualDecomposition.swift): both parts carried through the steps; the
///   gate shares (``Activation/contextualShares(_:_:bias:)``) reversed by ``contextualSharesPullback(_:_:_:bias:_:_:_:)``,
///   the output gate o = σ(z^β_o + z^γ_o + b_o) (the forward's, as the parts sum to the forward value), the
///   bias term's weight w_t the mask's mean over position t where the LSTM reads the start value, else the
///   ℓ1 share of the step's input parts (differentiated too); back-propagation through time over all pairs,
///   one GEMM per step for the recurrence and one each for dW_ih and dW_hh.
///
/// Per-example masks (``exampleCount`` set): mask set e (maskCount masks) belongs to training example e, and
/// each batch row uses the set of the training example it holds (``TrainingStep/examples``; outside the
/// trainer row n uses set n), as the authors' ISIC experiment segments the band-aid patches per image.
///
/// Every node kind CD supports has its reverse here (the switches are exhaustive), so no kind is refused.
/// In exact arithmetic the forward parts equal ``Network/contextualDecomposition(_:rows:masks:maskCount:internalBatchSize:)``'s;
/// in float32 they differ by rounding only (that method carries one part and takes the other as h minus it).
/// Derivatives at the kinks (|·| at 0, ReLU at 0) are torch's: sign(0) = 0, ReLU′(0) = 0.
public struct CDEPPenalty: CheckedTrainingPenalty, Sendable {
    /// (exampleCount ?? 1) × maskCount × inputSize values in [0, 1]; 1 marks the region (for a token
    /// network, one value per position).
    public let masks: [Float]
    public let maskCount: Int
    /// nil: one set of `maskCount` masks shared by every example; n: a set per training example (n sets, set e
    /// for example e), so the training set (or the batch of ``Network/lossAndGradients(_:rows:labels:loss:penalties:seed:)``)
    /// must have n rows.
    public let exampleCount: Int?
    /// λ.
    public let lam: Double

    /// Checks what can be checked without the network: `maskCount` (and `exampleCount`, when given)
    /// positive, `masks` a whole number of mask sets, every value finite and in [0, 1], `lam` finite and
    /// non-negative. The mask size is checked against the network, and the example count against the
    /// examples, on every call.
    public init(masks: [Float], maskCount: Int, exampleCount: Int? = nil, lam: Double) throws {
        try Check.positive(maskCount, "n_masks")
        if let exampleCount { try Check.positive(exampleCount, "n_examples") }
        guard lam.isFinite, lam >= 0 else { throw SwiftAttrError.invalid("lam must be finite and non-negative (got \(lam))") }
        let sets = exampleCount ?? 1
        guard !masks.isEmpty, masks.count % (maskCount * sets) == 0 else {
            let what = exampleCount.map { "\($0) examples × \(maskCount)" } ?? "\(maskCount)"
            throw SwiftAttrError.shape("mask: \(masks.count) values do not make \(what) masks of one size")
        }
        try Check.finite(masks, "mask")
        if let i = masks.firstIndex(where: { !(0...1).contains($0) }) {
            throw SwiftAttrError(.outOfRange, "mask: CDEP masks take values in [0, 1] (1 marks the penalised region); got \(masks[i]) at flat index \(i)")
        }
        self.masks = masks
        self.maskCount = maskCount
        self.exampleCount = exampleCount
        self.lam = lam
    }

    public func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]]) {
        try network.contextualDecompositionPenalty(batch, rows: rows, penalty: self, examples: step.examples, exampleCount: step.exampleCount)
    }

    /// Throws unless the masks have the network's input size (one value per position for a token network).
    public func check(_ network: Network) throws {
        let d = network.inputSize, sets = exampleCount ?? 1
        guard masks.count == sets * maskCount * d else {
            let what = network.tokenEmbedding == nil ? "of shape \(network.inputShape)" : "of one value per position, shape \(network.inputShape) (token network)"
            let count = exampleCount.map { "\($0) examples × \(maskCount)" } ?? "\(maskCount)"
            throw SwiftAttrError.shape("mask: expected \(count) masks \(what) = \(sets * maskCount * d) values, got \(masks.count)")
        }
    }

    /// The mask set of each of the batch's `rows` (nil: the shared set), from the batch's training-set rows
    /// `examples` (nil: rows 0..<rows) of a training set of `total` rows (nil: `rows`). Per-example masks need
    /// `total` to be their example count: a shape error naming the mask otherwise.
    func maskSets(rows: Int, examples: [Int]?, total: Int?) throws -> [Int]? {
        guard let n = exampleCount else { return nil }
        let total = total ?? rows
        guard total == n else {
            throw SwiftAttrError.shape("mask: per-example masks for \(n) examples, but the training examples are \(total) rows (one mask set per row of the inputs)")
        }
        guard let examples else { return Array(0..<rows) }
        guard examples.count == rows, examples.allSatisfy({ (0..<n).contains($0) }) else {
            throw SwiftAttrError.invalid("examples: \(examples.count) training-set rows in 0..<\(n) expected for a batch of \(rows)")
        }
        return examples
    }
}

extension Network {
    /// The CDEP penalty of `penalty` on the examples `x` (rows × inputSize) and its gradient with respect to
    /// every parameter (the order and shapes of ``parameters``). With per-example masks, row r of `x` is
    /// training example `examples[r]` of a set of `exampleCount` rows (nil: row r is example r of `rows`).
    /// Examples are split by ``TrainingChunks`` (an example is 2K rows of the pass, β and γ for each of its K
    /// masks, each keeping its values and their cotangents); the chunks' values and gradients are summed in
    /// chunk order (repeatable for a fixed thread count).
    public func contextualDecompositionPenalty(
        _ x: [Float], rows: Int, penalty: CDEPPenalty, examples: [Int]? = nil, exampleCount: Int? = nil
    ) throws -> (value: Double, gradients: [[Float]]) {
        try checkInputs(x, rows: rows)
        try penalty.check(self)
        let d = inputSize
        let sets = try penalty.maskSets(rows: rows, examples: examples, total: exampleCount)
        let pass = try CDEPPass(self, penalty: penalty, totalRows: rows)
        let split = TrainingChunks(self, rows: rows, pointsPerExample: 2 * penalty.maskCount, tapesPerPoint: 2)
        var parts = [(value: Double, gradients: [[Float]])?](repeating: nil, count: split.count)
        parts.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            split.forEach(rows: rows) { c, range in
                let xs = range.count == rows ? x : Array(x[(range.lowerBound * d)..<(range.upperBound * d)])
                out[c] = pass.run(xs, rows: range.count, maskSets: sets.map { Array($0[range]) })
            }
        }
        var total = parts[0]!.value
        for part in parts.dropFirst() { total += part!.value }
        var gradients = parts.map { $0!.gradients }
        parts = []
        return (total, sumInChunkOrder(&gradients))
    }
}

/// acd's split of a bias b between the parts r and s: in proportion (|r| + 1e-20) : (|s| + 1e-20), so
/// (r + b·q, s + b·(1 − q)) with both shares computed as acd computes them.
@inline(__always)
func contextualSplit(_ r: Float, _ s: Float, bias b: Float) -> (Float, Float) {
    let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20, t = pr + ps
    return (r + b * (pr / t), s + b * (ps / t))
}

/// The reverse of ``contextualSplit(_:_:bias:)``: from the cotangents (gr, gs) of its two outputs, those of
/// r, s and b. With q = pr/t, ∂q/∂r = sign(r)·ps/t² and ∂q/∂s = −sign(s)·pr/t² (sign(0) = 0, torch's |·|′).
@inline(__always)
func contextualSplitPullback(_ r: Float, _ s: Float, bias b: Float, _ gr: Float, _ gs: Float) -> (Float, Float, Float) {
    let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20, t = pr + ps
    let diff = b * (gr - gs)
    return (gr + diff * signum(r) * ((ps / t) / t), gs - diff * signum(s) * ((pr / t) / t), gr * (pr / t) + gs * (ps / t))
}

/// acd's batch-norm split of the shift: p = |r|/(|r| + |s|), 0 where that is 0/0; (r + p·shift, s + (1 − p)·shift).
@inline(__always)
func batchNormSplit(_ r: Float, _ s: Float, shift: Float) -> (Float, Float, Float) {
    let t = abs(r) + abs(s), p = t > 0 ? abs(r) / t : 0
    return (r + p * shift, s + (1 - p) * shift, p)
}

@inline(__always)
private func signum(_ v: Float) -> Float { v > 0 ? 1 : (v < 0 ? -1 : 0) }

/// One CDEP evaluation: the plan of the network, the masks and the scale λ/(N·C).
struct CDEPPass {
    let net: Network
    let plan: ContextualDecompositionPlan
    let masks: [Float]
    let maskCount: Int
    /// λ / (examples of the whole batch × classes).
    let scale: Float

    init(_ net: Network, penalty: CDEPPenalty, totalRows: Int) throws {
        self.net = net
        plan = try ContextualDecompositionPlan(net)
        masks = penalty.masks
        maskCount = penalty.maskCount
        scale = Float(penalty.lam / Double(totalRows * net.size(at: plan.top)))
    }

    /// The penalty of `rows` examples (their share of the batch mean) and its parameter gradients; example e
    /// uses mask set `maskSets[e]` (nil: the shared set 0).
    func run(_ x: [Float], rows n: Int, maskSets: [Int]?) -> (value: Double, gradients: [[Float]]) {
        let K = maskCount, P = n * K, d = net.inputSize
        // Where pair p's mask starts in `masks`: set (of example p / K) × K + region p % K, times d.
        let maskAt = (0..<P).map { p in ((maskSets?[p / K] ?? 0) * K + p % K) * d }
        let start = plan.start, top = plan.top
        let input = start == 0 ? x : net.apply(layer: 0, to: x, rows: n, argmax: nil)
        let ds = net.size(at: start), per = ds / d
        // The parts at the start value: β₀ = m·x in row p, γ₀ = (1 − m)·x in row P + p, pair p = (example p / K, mask p % K).
        let x0 = uninitializedFloats(2 * P * ds) { y in
            for p in 0..<P {
                let xe = (p / K) * ds, mo = maskAt[p]
                for j in 0..<ds {
                    let m = masks[mo + j / per], v = input[xe + j]
                    y[p * ds + j] = m * v
                    y[(P + p) * ds + j] = (1 - m) * v
                }
            }
        }
        var products = [[Float]?](repeating: nil, count: top - start)
        var argmax = [[Int32]](repeating: [], count: top - start)
        var recurrences = [LSTMRecord?](repeating: nil, count: top - start)
        let values = net.walkForward(x0, from: start, to: top, keep: true) { i, reads -> [Float] in
            if case .lstm(let l) = net.layers[i] {
                return lstmForward(l, node: i, reads[0], pairs: P, maskAt: maskAt, record: &recurrences[i - start])
            }
            return forward(node: i, reads, pairs: P, products: &products[i - start], argmax: &argmax[i - start])
        }.map { $0! }

        // σ(β − γ) per (pair, class); its derivative seeds dβ = scale·σ(1 − σ), dγ = −dβ.
        let C = net.size(at: top), out = values[top - start]
        var value: Double = 0
        var seed = [Float](repeating: 0, count: 2 * P * C)
        for k in 0..<(P * C) {
            let sigma = Activation.sigmoid(out[k] - out[P * C + k])
            value += Double(sigma)
            seed[k] = scale * sigma * (1 - sigma)
            seed[P * C + k] = -seed[k]
        }
        value *= Double(scale)

        let tape = Network.Tape(start: start, end: top, rows: 2 * P, values: values, argmax: argmax,
                                steps: [[Float]](repeating: [], count: top - start))
        var perNode = [[[Float]]?](repeating: nil, count: net.layers.count)
        let wantInput = start > 0
        let dx0 = net.walkBackward(from: top, to: start, seed: seed, node: { i, dy in
            let step: (inputs: [[Float]], parameters: [[Float]])
            if case .lstm(let l) = net.layers[i] {
                step = lstmBackward(l, node: i, dy, input: tape.value(net.inputs[i][0]), record: recurrences[i - start]!, pairs: P)
            } else {
                step = backward(node: i, dy, tape: tape, pairs: P, products: products[i - start], wantInput: wantInput)
            }
            perNode[i] = step.parameters
            return wantInput ? step.inputs : zip(net.inputs[i], step.inputs).map { $0 == start ? [] : $1 }
        }, accumulate: addInPlace)
        if case .embedding(let e) = net.layers[0], start == 1, let dx0 {
            // dW[id(x_t)] += m_t dβ₀ + (1 − m_t) dγ₀.
            var dW = [Float](repeating: 0, count: e.weight.count)
            let E = e.dimension
            for p in 0..<P {
                let xe = (p / K) * d, mo = maskAt[p]
                for t in 0..<d {
                    let m = masks[mo + t], row = Int(x[xe + t]) * E, at = t * E
                    for j in 0..<E { dW[row + j] += m * dx0[p * ds + at + j] + (1 - m) * dx0[(P + p) * ds + at + j] }
                }
            }
            perNode[0] = [dW]
        }
        var gradients: [[Float]] = []
        for (i, layer) in net.layers.enumerated() {
            gradients += perNode[i] ?? layer.parameterShapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) }
        }
        return (value, gradients)
    }

    /// Node i's CD rule on the stacked parts `reads` (each 2P rows). Dense and Conv keep their bias-free
    /// products [r; s] in `products`; max-pooling its stacked argmax in `argmax`.
    func forward(node i: Int, _ reads: [[Float]], pairs P: Int, products: inout [Float]?, argmax: inout [Int32]) -> [Float] {
        let v = net.inputs[i][0], n = net.size(at: v), o = net.size(at: i + 1)
        switch net.layers[i] {
        case .dense, .conv1d, .conv2d:
            let rs = plan.linear.apply(layer: i, to: reads[0], rows: 2 * P, argmax: nil)
            products = rs
            let b = plan.bias[i]!
            return uninitializedFloats(2 * P * o) { y in
                for p in 0..<P {
                    for j in 0..<o {
                        let (beta, gamma) = contextualSplit(rs[p * o + j], rs[(P + p) * o + j], bias: b[j])
                        y[p * o + j] = beta
                        y[(P + p) * o + j] = gamma
                    }
                }
            }
        case .batchNorm(let bn):
            let plane = n / bn.channels, c = reads[0]
            return uninitializedFloats(2 * P * n) { y in
                for p in 0..<P {
                    for ch in 0..<bn.channels {
                        let a = bn.scale[ch], shift = bn.shift[ch], off = p * n + ch * plane, offG = (P + p) * n + ch * plane
                        for k in 0..<plane {
                            let (beta, gamma, _) = batchNormSplit(a * c[off + k], a * c[offG + k], shift: shift)
                            y[off + k] = beta
                            y[offG + k] = gamma
                        }
                    }
                }
            }
        case .maxPool1d, .maxPool2d:
            // The argmax of β + γ, both parts gathered there.
            let c = reads[0]
            let sum = uninitializedFloats(P * n) { s in for k in 0..<(P * n) { s[k] = c[k] + c[P * n + k] } }
            let at = net.applyRecordingArgmax(i, [sum], rows: P).argmax
            argmax = at + at
            return uninitializedFloats(2 * P * o) { y in
                for q in 0..<(2 * P) {
                    let e = (q % P) * o
                    for j in 0..<o { y[q * o + j] = c[q * n + Int(at[e + j])] }
                }
            }
        case .avgPool1d, .avgPool2d, .globalAvgPool:
            return net.apply(layer: i, to: reads[0], rows: 2 * P, argmax: nil)
        case .flatten, .reshape, .dropout:
            return reads[0]
        case .add, .concat:
            return net.applyNode(i, reads, rows: 2 * P, argmax: nil)
        case .relu, .leakyReLU, .elu, .softplus:
            let f = Activation(net.layers[i])!, f0 = f.value(0), c = reads[0]
            return uninitializedFloats(2 * P * n) { y in
                for k in 0..<(P * n) {
                    let fb = f.value(c[k]), fh = f.value(c[k] + c[P * n + k])
                    let (beta, gamma) = f0 == 0 ? (fb, fh - fb) : contextualSplit(fb - f0, fh - fb, bias: f0)
                    y[k] = beta
                    y[P * n + k] = gamma
                }
            }
        case .sigmoid, .tanh:
            let f = Activation(net.layers[i])!, f0 = f.value(0), c = reads[0]
            return uninitializedFloats(2 * P * n) { y in
                for k in 0..<(P * n) {
                    let fb = f.value(c[k]), fg = f.value(c[P * n + k]), fh = f.value(c[k] + c[P * n + k])
                    let db = 0.5 * ((fb - f0) + (fh - fg)), dg = 0.5 * ((fg - f0) + (fh - fb))
                    let (beta, gamma) = f0 == 0 ? (db, dg) : contextualSplit(db, dg, bias: f0)
                    y[k] = beta
                    y[P * n + k] = gamma
                }
            }
        case .embedding, .softmax:
            preconditionFailure("CDEP walks neither an Embedding (node 0) nor a final Softmax")
        case .lstm:
            preconditionFailure("an LSTM has its own forward and reverse (lstmForward, lstmBackward)")
        }
    }

    /// The reverse of node i's rule: from `dy` (the cotangents of β' in rows 0..<P and γ' in rows P..<2P) the
    /// cotangents of the parts it read and of its parameters.
    func backward(node i: Int, _ dy: [Float], tape: Network.Tape, pairs P: Int, products: [Float]?, wantInput: Bool) -> (inputs: [[Float]], parameters: [[Float]]) {
        let v = net.inputs[i][0], n = net.size(at: v), o = net.size(at: i + 1)
        let needed = wantInput || net.inputs[i].contains { $0 != tape.start }
        switch net.layers[i] {
        case .dense, .conv1d, .conv2d:
            // (dβ', dγ') → (dr, ds, db), then the bias-free layer's pullback and weight gradient on the stacked rows.
            let rs = products!, b = plan.bias[i]!
            var db = [Double](repeating: 0, count: o)
            let drs = uninitializedFloats(2 * P * o) { g in
                for p in 0..<P {
                    for j in 0..<o {
                        let (dr, ds, dbj) = contextualSplitPullback(rs[p * o + j], rs[(P + p) * o + j], bias: b[j], dy[p * o + j], dy[(P + p) * o + j])
                        g[p * o + j] = dr
                        g[(P + p) * o + j] = ds
                        db[j] += Double(dbj)
                    }
                }
            }
            var step = plan.linear.backward(node: i, drs, tape: tape, inputCotangent: needed)
            // The bias gradient per output channel: Dense one per element, Conv the sum over the channel's plane.
            let channels = step.parameters[1].count, perChannel = o / channels
            step.parameters[1] = (0..<channels).map { ch in
                var s: Double = 0
                for k in 0..<perChannel { s += db[ch * perChannel + k] }
                return Float(s)
            }
            return step
        case .batchNorm(let bn):
            let plane = n / bn.channels, c = tape.value(v)
            var dScale = [Double](repeating: 0, count: bn.channels), dShift = dScale
            let dx = uninitializedFloats(2 * P * n) { g in
                for p in 0..<P {
                    for ch in 0..<bn.channels {
                        let a = bn.scale[ch], shift = bn.shift[ch], off = p * n + ch * plane, offG = (P + p) * n + ch * plane
                        var sa: Float = 0, ss: Float = 0
                        for k in 0..<plane {
                            let xb = c[off + k], xg = c[offG + k], r = a * xb, s = a * xg
                            let (_, _, q) = batchNormSplit(r, s, shift: shift)
                            let gb = dy[off + k], gg = dy[offG + k], t = abs(r) + abs(s)
                            let diff = shift * (gb - gg)
                            let dr = t > 0 ? gb + diff * signum(r) * ((abs(s) / t) / t) : gb
                            let ds = t > 0 ? gg - diff * signum(s) * ((abs(r) / t) / t) : gg
                            g[off + k] = a * dr
                            g[offG + k] = a * ds
                            sa += dr * xb + ds * xg
                            ss += gb * q + gg * (1 - q)
                        }
                        dScale[ch] += Double(sa)
                        dShift[ch] += Double(ss)
                    }
                }
            }
            // a = γ/√(σ² + ε), shift = β − μ·a: dγ = (da − μ·dshift)/√(σ² + ε), dβ = dshift.
            let dGamma = (0..<bn.channels).map { ch in
                Float((dScale[ch] - Double(bn.runningMean[ch]) * dShift[ch]) / Double(bn.runningVar[ch] + bn.eps).squareRoot())
            }
            return ([needed ? dx : []], [dGamma, dShift.map { Float($0) }])
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout, .add, .concat:
            return plan.linear.backward(node: i, dy, tape: tape, inputCotangent: needed)
        case .relu, .leakyReLU, .elu, .softplus:
            guard needed else { return ([[]], []) }
            let f = Activation(net.layers[i])!, f0 = f.value(0), c = tape.value(v)
            let dx = uninitializedFloats(2 * P * n) { g in
                for k in 0..<(P * n) {
                    let u = c[k], h = u + c[P * n + k], fb = f.value(u), fh = f.value(h)
                    var gA = dy[k], gG = dy[P * n + k]
                    if f0 != 0 { (gA, gG, _) = contextualSplitPullback(fb - f0, fh - fb, bias: f0, gA, gG) }
                    let du = f.derivative(at: u, output: fb), dh = f.derivative(at: h, output: fh)
                    g[k] = gA * du + gG * (dh - du)
                    g[P * n + k] = gG * dh
                }
            }
            return ([dx], [])
        case .sigmoid, .tanh:
            guard needed else { return ([[]], []) }
            let f = Activation(net.layers[i])!, f0 = f.value(0), c = tape.value(v)
            let dx = uninitializedFloats(2 * P * n) { g in
                for k in 0..<(P * n) {
                    let b = c[k], e = c[P * n + k], h = b + e
                    let fb = f.value(b), fg = f.value(e), fh = f.value(h)
                    var gB = dy[k], gG = dy[P * n + k]
                    if f0 != 0 {
                        let db = 0.5 * ((fb - f0) + (fh - fg)), dg = 0.5 * ((fg - f0) + (fh - fb))
                        (gB, gG, _) = contextualSplitPullback(db, dg, bias: f0, gB, gG)
                    }
                    let d1b = f.derivative(at: b, output: fb), d1g = f.derivative(at: e, output: fg), d1h = f.derivative(at: h, output: fh)
                    g[k] = 0.5 * (gB * (d1b + d1h) + gG * (d1h - d1b))
                    g[P * n + k] = 0.5 * (gB * (d1h - d1g) + gG * (d1g + d1h))
                }
            }
            return ([dx], [])
        case .embedding, .softmax:
            preconditionFailure("CDEP walks neither an Embedding (node 0) nor a final Softmax")
        case .lstm:
            preconditionFailure("an LSTM has its own forward and reverse (lstmForward, lstmBackward)")
        }
    }
}

/// The reverse of ``Activation/contextualShares(_:_:bias:)``: from the cotangents of the three shares (a's,
/// b's, the bias's f(c)) those of a, b and c.
@inline(__always)
func contextualSharesPullback(_ f: Activation, _ a: Float, _ b: Float, bias c: Float, _ ga: Float, _ gb: Float, _ gc: Float) -> (Float, Float, Float) {
    let d = { (v: Float) -> Float in f.derivative(at: v, output: f.value(v)) }
    let dc = d(c), dac = d(a + c), dbc = d(b + c), dabc = d(a + b + c)
    return (0.5 * (ga * (dac + dabc) + gb * (dabc - dac)),
            0.5 * (ga * (dabc - dbc) + gb * (dbc + dabc)),
            0.5 * (ga * ((dac - dc) + (dabc - dbc)) + gb * ((dbc - dc) + (dabc - dac))) + gc * dc)
}

/// What the LSTM rule's reverse reads, per pair-row q (β rows 0..<P, γ rows P..<2P) and step t at row q·L + t.
struct LSTMRecord {
    /// Gate pre-activations of each part without the bias (2P·L × 4H).
    var z: [Float]
    /// The parts of the hidden and cell states after each step (2P·L × H).
    var h: [Float]
    var c: [Float]
    /// The output gate (P·L × H; the same for both parts).
    var o: [Float]
    /// The bias term's weight w_t per (pair, step) (P·L).
    var w: [Float]
    /// w_t is the mask's (a constant) rather than the ℓ1 share of the input parts.
    var fromMask: Bool
}

extension CDEPPass {
    /// The LSTM rule (ContextualDecomposition.swift's, acd's `cd_text`) on the stacked parts `x` of its input,
    /// recording what ``lstmBackward(_:node:_:input:record:pairs:)`` needs; pair p's mask starts at `maskAt[p]`.
    func lstmForward(_ l: Layer.LSTM, node i: Int, _ x: [Float], pairs P: Int, maskAt: [Int], record: inout LSTMRecord?) -> [Float] {
        let v = net.inputs[i][0], L = net.shapes[v][0], E = l.inputSize, H = l.hiddenSize, G = 4 * H, n = L * E
        let d = net.inputSize, fromMask = v == plan.start
        let w = uninitializedFloats(P * L) { wp in
            for p in 0..<P {
                for t in 0..<L {
                    if fromMask {
                        let q = d / L, mo = maskAt[p] + t * q
                        var total: Float = 0
                        for k in 0..<q { total += masks[mo + k] }
                        wp[p * L + t] = total / Float(q)
                    } else {
                        var rel: Float = 0, irr: Float = 0
                        for k in 0..<E { rel += abs(x[p * n + t * E + k]); irr += abs(x[(P + p) * n + t * E + k]) }
                        wp[p * L + t] = contextualShare(rel, irr)
                    }
                }
            }
        }
        var z = uninitializedFloats(2 * P * L * G) { zp in
            x.withUnsafeBufferPointer { xp in
                l.weightIH.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transB: true, m: 2 * P * L, n: G, k: E, a: xp.baseAddress!, b: wp.baseAddress!, c: zp)
                }
            }
        }
        var h = [Float](repeating: 0, count: 2 * P * L * H), c = h
        var o = [Float](repeating: 0, count: P * L * H)
        let sigmoid = Activation(Activation.Kind.sigmoid), hyperbolic = Activation(Activation.Kind.tanh)
        for t in 0..<L {
            if t > 0 {
                z.withUnsafeMutableBufferPointer { zp in
                    h.withUnsafeBufferPointer { hp in
                        l.weightHH.withUnsafeBufferPointer { whh in
                            BLAS.sgemm(transB: true, m: 2 * P, n: G, k: H, a: hp.baseAddress! + (t - 1) * H, lda: L * H, b: whh.baseAddress!,
                                       beta: 1, c: zp.baseAddress! + t * G, ldc: L * G)
                        }
                    }
                }
            }
            for p in 0..<P {
                let zr = (p * L + t) * G, zs = ((P + p) * L + t) * G, wt = w[p * L + t]
                let sr = (p * L + t) * H, ss = ((P + p) * L + t) * H
                for j in 0..<H {
                    let ig = sigmoid.contextualShares(z[zr + j], z[zs + j], bias: l.bias[j])
                    let gg = hyperbolic.contextualShares(z[zr + 2 * H + j], z[zs + 2 * H + j], bias: l.bias[2 * H + j])
                    var rel = ig.a * (gg.a + gg.bias) + ig.bias * gg.a + wt * ig.bias * gg.bias
                    var irr = ig.b * (gg.a + gg.b + gg.bias) + (ig.a + ig.bias) * gg.b + (1 - wt) * ig.bias * gg.bias
                    if t > 0 {
                        let fg = sigmoid.contextualShares(z[zr + H + j], z[zs + H + j], bias: l.bias[H + j])
                        let cr = c[sr - H + j], ci = c[ss - H + j]
                        rel += (fg.a + fg.bias) * cr
                        irr += (fg.a + fg.b + fg.bias) * ci + fg.b * cr
                    }
                    let og = Activation.sigmoid(z[zr + 3 * H + j] + z[zs + 3 * H + j] + l.bias[3 * H + j])
                    let both = _tanh(rel + irr), tr = _tanh(rel), ti = _tanh(irr)
                    c[sr + j] = rel
                    c[ss + j] = irr
                    o[(p * L + t) * H + j] = og
                    h[sr + j] = og * (0.5 * (tr + (both - ti)))
                    h[ss + j] = og * (0.5 * (ti + (both - tr)))
                }
            }
        }
        record = LSTMRecord(z: z, h: h, c: c, o: o, w: w, fromMask: fromMask)
        if l.returnSequences { return h }
        return uninitializedFloats(2 * P * H) { y in
            for q in 0..<(2 * P) { for j in 0..<H { y[q * H + j] = h[(q * L + L - 1) * H + j] } }
        }
    }

    /// The reverse of ``lstmForward(_:node:_:pairs:maskAt:record:)``: back-propagation through time of the parts
    /// over all pairs; returns the cotangent of the stacked input parts and [dW_ih, dW_hh, db_ih, db_hh].
    func lstmBackward(_ l: Layer.LSTM, node i: Int, _ dy: [Float], input x: [Float], record r: LSTMRecord, pairs P: Int) -> (inputs: [[Float]], parameters: [[Float]]) {
        let v = net.inputs[i][0], L = net.shapes[v][0], E = l.inputSize, H = l.hiddenSize, G = 4 * H, n = L * E
        let sigmoid = Activation(Activation.Kind.sigmoid), hyperbolic = Activation(Activation.Kind.tanh)
        var dz = [Float](repeating: 0, count: 2 * P * L * G)
        var dh = [Float](repeating: 0, count: 2 * P * H), dc = dh
        var db = [Double](repeating: 0, count: G)
        var dw = [Float](repeating: 0, count: P * L)
        let z = r.z, c = r.c
        for t in stride(from: L - 1, through: 0, by: -1) {
            for q in 0..<(2 * P) {
                if l.returnSequences {
                    for j in 0..<H { dh[q * H + j] += dy[(q * L + t) * H + j] }
                } else if t == L - 1 {
                    for j in 0..<H { dh[q * H + j] += dy[q * H + j] }
                }
            }
            for p in 0..<P {
                let zr = (p * L + t) * G, zs = ((P + p) * L + t) * G, wt = r.w[p * L + t]
                let sr = (p * L + t) * H, ss = ((P + p) * L + t) * H
                var dwt: Float = 0
                for j in 0..<H {
                    let rel = c[sr + j], irr = c[ss + j], og = r.o[(p * L + t) * H + j]
                    let tr = _tanh(rel), ti = _tanh(irr), tb = _tanh(rel + irr)
                    let dtr = 1 - tr * tr, dti = 1 - ti * ti, dtb = 1 - tb * tb
                    let ghr = dh[p * H + j], ghi = dh[(P + p) * H + j]
                    let dog = ghr * 0.5 * (tr + tb - ti) + ghi * 0.5 * (ti + tb - tr)
                    let drel = dc[p * H + j] + og * 0.5 * (ghr * (dtr + dtb) + ghi * (dtb - dtr))
                    let dirr = dc[(P + p) * H + j] + og * 0.5 * (ghr * (dtb - dti) + ghi * (dti + dtb))
                    let dzo = dog * og * (1 - og)
                    dz[zr + 3 * H + j] = dzo
                    dz[zs + 3 * H + j] = dzo
                    db[3 * H + j] += Double(dzo)
                    let ig = sigmoid.contextualShares(z[zr + j], z[zs + j], bias: l.bias[j])
                    let gg = hyperbolic.contextualShares(z[zr + 2 * H + j], z[zs + 2 * H + j], bias: l.bias[2 * H + j])
                    // rel = i_a(g_a + g_c) + i_c g_a + w i_c g_c [+ (f_a + f_c) c^β₋];
                    // irr = i_b(g_a + g_b + g_c) + (i_a + i_c) g_b + (1 − w) i_c g_c [+ (f_a + f_b + f_c) c^γ₋ + f_b c^β₋].
                    let dia = drel * (gg.a + gg.bias) + dirr * gg.b
                    let dib = dirr * (gg.a + gg.b + gg.bias)
                    let dic = drel * (gg.a + wt * gg.bias) + dirr * (gg.b + (1 - wt) * gg.bias)
                    let dga = drel * (ig.a + ig.bias) + dirr * ig.b
                    let dgb = dirr * (ig.b + ig.a + ig.bias)
                    let dgc = drel * (ig.a + wt * ig.bias) + dirr * (ig.b + (1 - wt) * ig.bias)
                    dwt += (drel - dirr) * ig.bias * gg.bias
                    let (zia, zib, zic) = contextualSharesPullback(sigmoid, z[zr + j], z[zs + j], bias: l.bias[j], dia, dib, dic)
                    let (zga, zgb, zgc) = contextualSharesPullback(hyperbolic, z[zr + 2 * H + j], z[zs + 2 * H + j], bias: l.bias[2 * H + j],
                                                                   dga, dgb, dgc)
                    dz[zr + j] = zia; dz[zs + j] = zib; db[j] += Double(zic)
                    dz[zr + 2 * H + j] = zga; dz[zs + 2 * H + j] = zgb; db[2 * H + j] += Double(zgc)
                    if t > 0 {
                        let fg = sigmoid.contextualShares(z[zr + H + j], z[zs + H + j], bias: l.bias[H + j])
                        let cr = c[sr - H + j], ci = c[ss - H + j]
                        let (zfa, zfb, zfc) = contextualSharesPullback(sigmoid, z[zr + H + j], z[zs + H + j], bias: l.bias[H + j],
                                                                       drel * cr + dirr * ci, dirr * (ci + cr), drel * cr + dirr * ci)
                        dz[zr + H + j] = zfa; dz[zs + H + j] = zfb; db[H + j] += Double(zfc)
                        dc[p * H + j] = drel * (fg.a + fg.bias) + dirr * fg.b
                        dc[(P + p) * H + j] = dirr * (fg.a + fg.b + fg.bias)
                    }
                }
                dw[p * L + t] = dwt
            }
            // The recurrence: dh_{t−1} = dz_t · W_hh over all part-rows.
            if t > 0 {
                dz.withUnsafeBufferPointer { dzp in
                    l.weightHH.withUnsafeBufferPointer { whh in
                        dh.withUnsafeMutableBufferPointer { dhp in
                            BLAS.sgemm(m: 2 * P, n: H, k: G, a: dzp.baseAddress! + t * G, lda: L * G, b: whh.baseAddress!, c: dhp.baseAddress!)
                        }
                    }
                }
            }
        }
        var dx = [Float](repeating: 0, count: 2 * P * n)
        let previous = uninitializedFloats(2 * P * L * H) { hp in
            for row in 0..<(2 * P * L) {
                for j in 0..<H { hp[row * H + j] = row % L == 0 ? 0 : r.h[(row - 1) * H + j] }
            }
        }
        var dWih = [Float](repeating: 0, count: G * E), dWhh = [Float](repeating: 0, count: G * H)
        dz.withUnsafeBufferPointer { dzp in
            l.weightIH.withUnsafeBufferPointer { wih in
                dx.withUnsafeMutableBufferPointer { dxp in
                    BLAS.sgemm(m: 2 * P * L, n: E, k: G, a: dzp.baseAddress!, b: wih.baseAddress!, c: dxp.baseAddress!)
                }
            }
            x.withUnsafeBufferPointer { xp in
                dWih.withUnsafeMutableBufferPointer { w in
                    BLAS.sgemm(transA: true, m: G, n: E, k: 2 * P * L, a: dzp.baseAddress!, b: xp.baseAddress!, c: w.baseAddress!)
                }
            }
            previous.withUnsafeBufferPointer { hp in
                dWhh.withUnsafeMutableBufferPointer { w in
                    BLAS.sgemm(transA: true, m: G, n: H, k: 2 * P * L, a: dzp.baseAddress!, b: hp.baseAddress!, c: w.baseAddress!)
                }
            }
        }
        if !r.fromMask {
            // w_t = share(Σ|β_t|, Σ|γ_t|): ∂w/∂β_tk = sign(β_tk)·(S + ε)/T², ∂w/∂γ_tk = −sign(γ_tk)·(R + ε)/T².
            for p in 0..<P {
                for t in 0..<L {
                    var rel: Float = 0, irr: Float = 0
                    for k in 0..<E { rel += abs(x[p * n + t * E + k]); irr += abs(x[(P + p) * n + t * E + k]) }
                    let pr = rel + 1e-20, ps = irr + 1e-20, total = pr + ps
                    let g = dw[p * L + t], toRel = g * ((ps / total) / total), toIrr = -g * ((pr / total) / total)
                    for k in 0..<E {
                        dx[p * n + t * E + k] += toRel * signum(x[p * n + t * E + k])
                        dx[(P + p) * n + t * E + k] += toIrr * signum(x[(P + p) * n + t * E + k])
                    }
                }
            }
        }
        let bias = db.map { Float($0) }
        return ([dx], [dWih, dWhh, bias, bias])
    }
}
