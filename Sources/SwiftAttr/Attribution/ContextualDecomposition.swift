/// Contextual Decomposition (Murdoch, Liu, Yu 2018, "Beyond Word Importance"; Singh, Murdoch, Yu 2019 for
/// CNNs): every value v of the network is split into a part β due to a group of input features (the mask)
/// and the rest γ, with β + γ = v, starting from β₀ = mask·x, γ₀ = (1 − mask)·x. The rules per node kind
/// follow the `acd` package (csinva/hierarchical-dnn-interpretations, `cd_propagate.py`):
///
/// - Dense, Conv: r = W β, s = W γ (the layer without its bias), and the bias b = m(0) goes to both in
///   proportion (|r| + 1e-20) : (|s| + 1e-20) elementwise: β' = r + b·(|r| + 1e-20)/(|r| + |s| + 2e-20).
///   Where r = s = 0 (a unit all of whose inputs are dead ReLUs) each part takes b/2, as in acd, so even
///   a full mask leaves γ those halves (and an empty mask β).
/// - BatchNorm (affine with its own bias b = shift): β' = r + |r|/(|r| + |s|)·b, the proportion 0 where it
///   is 0/0 (acd's NaN rule), γ' = m(β + γ) − β'.
/// - Average pooling, global average pooling, Flatten, Dropout: linear without bias, applied to both.
/// - Max-pooling: both parts gathered at the argmax of β + γ.
/// - Add: the parts add; Concat: the parts concatenate.
/// - ReLU, LeakyReLU, ELU, Softplus (monotone): β' = f(β) − f(0), γ' = f(β + γ) − f(β), the constant f(0)
///   then split as a bias. For f(0) = 0 (ReLU, LeakyReLU, ELU) that is acd's β' = f(β) exactly; for
///   Softplus it keeps β ≈ 0 for an empty mask.
/// - Sigmoid, Tanh: the average over both orders (acd's `propagate_tanh_two`, a two-player Shapley value):
///   β' = ½[f(β) − f(0) + f(β + γ) − f(γ)], γ' symmetric, f(0) split as a bias (σ(0) = ½; tanh(0) = 0).
///   ``Activation/contextualShares(_:_:bias:)`` is the three-part form (acd's `propagate_three`) that the
///   LSTM rule uses.
/// - A final Softmax: CD stops at its input, so the parts returned are those of the logits (acd scores
///   logits too).
/// - Embedding (node 0 of a token network): the mask is per position (size L); β₀ = m_t·e(x_t), the
///   embedding vector of position t scaled by its mask value, and γ₀ = (1 − m_t)·e(x_t). The walk starts
///   at the embedding output.
/// - LSTM (Murdoch 2018, acd's `cd_text`): with β_t, γ_t the parts of the step's input and h^β, h^γ those of
///   the previous hidden state, the gate pre-activations split into W_ih β_t + W_hh h^β, W_ih γ_t + W_hh h^γ
///   and the bias b = b_ih + b_hh (cd_text puts the whole W_ih x_t in the relevant part inside the span and
///   in the irrelevant one outside: the same for 0/1 position masks). Gates i, g and f through
///   ``Activation/contextualShares(_:_:bias:)`` (parts r, s, b); c^β = i_r(g_r + g_b) + i_b g_r + w_t·i_b g_b,
///   c^γ = i_s(g_r + g_s + g_b) + (i_r + i_b) g_s + (1 − w_t)·i_b g_b, and for t > 0 c^β += (f_r + f_b) c^β_{t−1},
///   c^γ += (f_r + f_s + f_b) c^γ_{t−1} + f_s c^β_{t−1}; the output gate whole, o = σ(z_o) of the forward;
///   h^β = o·½[tanh c^β + tanh(c^β + c^γ) − tanh c^γ], h^γ symmetric. w_t, the share of the bias term
///   i_b g_b, is cd_text's "inside the span" generalised: where the LSTM reads the network input (the
///   embedding output of a token network, or a float [L, E] input) the mean of the mask over position t
///   (1 inside, 0 outside the span: cd_text exactly; fractional masks split it linearly); deeper in a graph,
///   where no mask lies on the positions, the ℓ1 share (Σ|β_t| + 1e-20) : (Σ|γ_t| + 1e-20) of the step's
///   input. Both outputs (last state, every state) return the parts of the states they output.
///
/// How it is computed. β + γ is the ordinary forward value h at every node (each rule hands γ exactly what
/// β does not take of h), so only one part is carried per (example, mask) pair; h, recorded once per
/// example by the ordinary forward and shared by all its masks, gives the other part as h minus the
/// carried one wherever a rule needs it, and the argmax of every max-pool. An affine layer's other
/// product is then (z − b) − (W c) with z the recorded output: every affine layer is one GEMM over all
/// pairs of a chunk, instead of acd's three (m(0), m(β), m(γ)).
///
/// Why the carried part is the smaller one (β for a small group, γ for a group covering most of the
/// input, decided per pair by Σ|β₀| ≤ Σ|γ₀|). In float32 the carried part c is computed as acd computes
/// it, W c directly, with rounding relative to its own magnitude; the other part, h − c, carries the
/// rounding of h (a few ulps of |h|), as acd's γ' = f(β + γ) − f(β) does after every activation. A bias is
/// split by the ratio of the two products, so a unit whose carried product is as small as that rounding
/// has its share decided by noise: carrying the larger part would give the smaller one (say γ for a
/// nearly full mask, exactly 0 in acd) an absolute error of a few ulps of |h| at every layer, and a unit
/// whose pre-bias output r ≈ 0 a bias share anywhere between 0 and 1 where acd gives all of it to β.
/// Carrying the smaller part keeps it as exact as acd's (a full mask leaves γ = 0 up to the 1e-20 shares)
/// while the larger part has a relative error of a few ulps. Only a max-pool window whose two largest
/// values tie to within rounding may pick another argmax than acd's β + γ does.
///
/// The LSTM's rules are not symmetric in the two parts, and its parts' trajectories are not the recorded
/// ones, so inside the LSTM both parts are carried (the other input part is the recorded input minus the
/// carried one; every step is one GEMM over both parts of every pair of the chunk), and only the carried
/// part leaves it: downstream the other part is again h minus it.
///
/// The walk goes through the propagation driver (``Network/walkForward``): one rule per node kind in an
/// exhaustive switch.
extension Network {
    /// Contextual Decomposition of every output for `rows` examples and `maskCount` masks.
    ///
    /// - Parameters:
    ///   - x: rows × inputSize (token ids, rows × L, for a token network).
    ///   - masks: maskCount × inputSize, shared by every example; 1 marks the group (fractional values split
    ///     an input linearly between the parts). For a token network inputSize = L: one value per position,
    ///     applied to the whole embedding vector there.
    ///   - internalBatchSize: (example, mask) pairs per chunk (memory bound); nil picks one for an 8 MB
    ///     budget per worker.
    /// - Returns: β (`relevant`) and γ (`irrelevant`) at the output, each rows × maskCount × outputSize
    ///   (example-major; at the logits for a network ending in Softmax), with β + γ = the output.
    public func contextualDecomposition(
        _ x: [Float], rows: Int, masks: [Float], maskCount: Int, internalBatchSize: Int? = nil
    ) throws -> (relevant: [Float], irrelevant: [Float]) {
        try checkInputs(x, rows: rows)
        guard maskCount > 0 else { throw SwiftAttrError.invalid("n_masks must be positive (got \(maskCount))") }
        let d = inputSize
        let (expected, overflow) = maskCount.multipliedReportingOverflow(by: d)
        let what = tokenEmbedding == nil ? "of shape \(inputShape)" : "of one value per position, shape \(inputShape) (token network)"
        guard !overflow, masks.count == expected else {
            throw SwiftAttrError.shape("mask: expected \(maskCount) masks \(what) = \(expected) values, got \(masks.count)")
        }
        try Check.finite(masks, "mask")
        let plan = try ContextualDecompositionPlan(self)
        let out = size(at: plan.top)
        let total = try Check.count([rows, maskCount, out], "relevant")
        let pairs = rows * maskCount
        let chunk = try plan.pairChunk(self, requested: internalBatchSize, pairs: pairs, masks: maskCount)
        var relevant = try Allocation.zeros(total, of: Float.self, "relevant")
        var irrelevant = try Allocation.zeros(total, of: Float.self, "irrelevant")
        relevant.withUnsafeMutableBufferPointer { relevantBuffer in
            irrelevant.withUnsafeMutableBufferPointer { irrelevantBuffer in
                let betaOut = relevantBuffer.baseAddress!, gammaOut = irrelevantBuffer.baseAddress!
                Parallel.forEachChunk(count: pairs, chunk: chunk) { _, range, _ in
                    // The examples this chunk of pairs touches run forward once; pair p reads tape row example[p].
                    let first = range.lowerBound / maskCount, last = (range.upperBound - 1) / maskCount
                    let tape = record(Array(x[(first * d)..<((last + 1) * d)]), rows: last - first + 1, from: 0, to: plan.top)
                    let example = range.map { $0 / maskCount - first }
                    let maskOf = range.map { $0 % maskCount }
                    // The walk starts at value plan.start: the input, or the embedding output of a token network,
                    // where mask entry k / per covers element k (per = E for tokens, 1 otherwise).
                    let input = tape.values[plan.start], ds = size(at: plan.start), per = ds / d
                    // Per pair, the smaller part at the input is carried (see above): β₀ = mask·x or γ₀ = (1 − mask)·x.
                    var carriesIrrelevant = [Bool](repeating: false, count: range.count)
                    let carried0 = uninitializedFloats(range.count * ds) { c in
                        for p in 0..<range.count {
                            let xe = example[p] * ds, mo = maskOf[p] * d, co = p * ds
                            var relevantMass: Float = 0, irrelevantMass: Float = 0
                            for k in 0..<ds {
                                relevantMass += abs(masks[mo + k / per] * input[xe + k])
                                irrelevantMass += abs((1 - masks[mo + k / per]) * input[xe + k])
                            }
                            let irrelevant = irrelevantMass < relevantMass
                            carriesIrrelevant[p] = irrelevant
                            for k in 0..<ds {
                                let m = masks[mo + k / per]
                                c[co + k] = (irrelevant ? 1 - m : m) * input[xe + k]
                            }
                        }
                    }
                    // The mean mask value over position t of pair p (an LSTM reading value plan.start: its w_t).
                    let positionMask = { (p: Int, t: Int, length: Int) -> Float in
                        let q = d / length, mo = maskOf[p] * d + t * q
                        var total: Float = 0
                        for k in 0..<q { total += masks[mo + k] }
                        return total / Float(q)
                    }
                    let carried = plan.carriedPart(self, carried0, tape: tape, example: example, irrelevant: carriesIrrelevant,
                                                   positionMask: positionMask)
                    let h = tape.values[plan.top]
                    for p in 0..<range.count {
                        let o = (range.lowerBound + p) * out, co = p * out, ho = example[p] * out
                        let (mine, other) = carriesIrrelevant[p] ? (gammaOut, betaOut) : (betaOut, gammaOut)
                        for j in 0..<out {
                            mine[o + j] = carried[co + j]
                            other[o + j] = h[ho + j] - carried[co + j]
                        }
                    }
                }
            }
        }
        return (relevant, irrelevant)
    }
}

/// acd's proportion of a bias that goes with the part r rather than s: (|r| + 1e-20)/((|r| + 1e-20) + (|s| + 1e-20))
/// (½ when both are 0).
@inline(__always)
func contextualShare(_ r: Float, _ s: Float) -> Float {
    let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20
    return pr / (pr + ps)
}

extension Activation {
    /// CD's linearisation of f over three parts a, b and a bias c (acd's `propagate_three`): a's share
    /// ½[(f(a + c) − f(c)) + (f(a + b + c) − f(b + c))], b's symmetric, and f(c) to the bias, so the three sum
    /// to f(a + b + c) — the average over the orders in which a and b join the bias.
    public func contextualShares(_ a: Float, _ b: Float, bias c: Float) -> (a: Float, b: Float, bias: Float) {
        let fc = value(c), fac = value(a + c), fbc = value(b + c), fabc = value(a + b + c)
        return (0.5 * ((fac - fc) + (fabc - fbc)), 0.5 * ((fbc - fc) + (fabc - fac)), fc)
    }
}

/// What one CD call decides once: the attributed value, each affine layer without its bias, and each
/// affine layer's bias b = m(0) per element of one example.
struct ContextualDecompositionPlan {
    /// The attributed value: the logits a final Softmax reads, else the output; nodes start..<top are walked.
    let top: Int
    /// Where the walk starts: 0, or 1 (the embedding output) for a token network.
    let start: Int
    /// The same graph with every Dense and Conv bias zero: `linear.apply(layer: i, …)` is r = W β.
    let linear: Network
    /// Per Dense or Conv node: its bias at every element of its output (one example); nil elsewhere.
    let bias: [[Float]?]

    init(_ net: Network) throws {
        top = net.endsWithSoftmax ? net.input(of: net.layers.count - 1) : net.layers.count
        start = net.tokenEmbedding == nil ? 0 : 1
        var linear = try Network(inputShape: net.inputShape)
        var bias = [[Float]?](repeating: nil, count: top)
        for i in 0..<top {
            var layer = net.layers[i]
            switch layer {
            case .dense(let l):
                bias[i] = l.bias
                layer = .dense(try .init(weight: l.weight, bias: nil, outFeatures: l.outFeatures, inFeatures: l.inFeatures))
            case .conv1d(let c), .conv2d(let c):
                let plane = net.size(at: i + 1) / c.outChannels
                bias[i] = c.bias.flatMap { [Float](repeating: $0, count: plane) }
                let w = try Layer.Convolution(weight: c.weight, bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                              kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
                layer = c.kernel.count == 1 ? .conv1d(w) : .conv2d(w)
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
                break
            }
            try linear.append(layer, inputs: net.inputs[i])
        }
        self.linear = linear
        self.bias = bias
    }

    /// Pairs per chunk: `requested` when given; otherwise as many as fit 2²¹ floats (8 MB) per worker — a
    /// pair's input and output parts, the largest node's working set (its inputs, its output and, for a
    /// convolution, the patch matrix and product) and its share of the tape of the examples — and no more
    /// than an even share of the pairs over the workers.
    func pairChunk(_ net: Network, requested: Int?, pairs: Int, masks: Int) throws -> Int {
        if let requested {
            try Check.positive(requested, "internal_batch_size")
            return requested
        }
        var tape = 0
        for v in 0...top { tape += net.size(at: v) }
        var work = 0
        for i in start..<top {
            var w = net.inputs[i].reduce(0) { $0 + net.size(at: $1) } + 2 * net.size(at: i + 1)
            switch net.layers[i] {
            case .conv1d(let c), .conv2d(let c):
                let g = WindowGeometry(convolution: c, input: net.shapes[net.input(of: i)])
                w += g.outputPlane * g.patchSize
            case .lstm(let l):
                // Both input parts, both parts' gate pre-activations for every step, and the states; the step
                // record of the forward (10H per step) in the tape.
                let length = net.shapes[net.input(of: i)][0], h = l.hiddenSize
                w += net.size(at: net.input(of: i)) + 8 * length * h + 4 * h
                tape += 10 * length * h
            case .dense, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU,
                 .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding:
                break
            }
            work = max(work, w)
        }
        let perPair = net.size(at: start) + 2 * net.size(at: top) + work + tape / masks + 1
        let share = (pairs + Parallel.workerCount - 1) / Parallel.workerCount
        return max(1, min(share, (1 << 21) / perPair))
    }

    /// The carried part at the attributed value for every pair (pairs × size(at: top)), from its value at the
    /// input: a forward walk of the rule of every node kind. Pair p belongs to tape row `example[p]`, whose
    /// recorded values are h = β + γ, and carries γ when `irrelevant[p]`, else β. Affine, pooling, add,
    /// concat, sigmoid and tanh rules treat the two parts alike; BatchNorm and the monotone activations
    /// (where acd's rule favours β) compute β' from β = h − γ when γ is carried, then hand on γ' = h' − β';
    /// the LSTM carries both parts inside and hands on the carried one. `positionMask(p, t, L)` is pair p's
    /// mean mask value over position t of the starting value (read by an LSTM there).
    func carriedPart(
        _ net: Network, _ carried0: [Float], tape: Network.Tape, example: [Int], irrelevant: [Bool],
        positionMask: (Int, Int, Int) -> Float
    ) -> [Float] {
        let count = example.count
        let anyIrrelevant = irrelevant.contains(true)
        return net.walkForward(carried0, from: start, to: top, keep: false) { i, reads -> [Float] in
            let v = net.inputs[i][0], n = net.size(at: v), o = net.size(at: i + 1)
            switch net.layers[i] {
            case .dense, .conv1d, .conv2d:
                // c' = W c + b·share(W c, W c̄), the other product W c̄ = (z − b) − W c with z the recorded output.
                var r = linear.apply(layer: i, to: reads[0], rows: count, argmax: nil)
                let z = tape.values[i + 1], b = bias[i]!
                r.withUnsafeMutableBufferPointer { rp in
                    z.withUnsafeBufferPointer { zp in
                        b.withUnsafeBufferPointer { bp in
                            for p in 0..<count {
                                let row = rp.baseAddress! + p * o, ze = zp.baseAddress! + example[p] * o
                                for j in 0..<o {
                                    let rj = row[j], s = (ze[j] - bp[j]) - rj
                                    row[j] = rj + bp[j] * contextualShare(rj, s)
                                }
                            }
                        }
                    }
                }
                return r
            case .batchNorm(let bn):
                // acd: β' = r + p·shift with p = |r|/(|r| + |s|) (0 where 0/0); γ' = s + (1 − p)·shift.
                let plane = n / bn.channels, z = tape.values[i + 1], c = reads[0]
                return uninitializedFloats(count * n) { y in
                    for p in 0..<count {
                        let gamma = irrelevant[p]
                        for ch in 0..<bn.channels {
                            let scale = bn.scale[ch], shift = bn.shift[ch]
                            let off = p * n + ch * plane, zo = example[p] * n + ch * plane
                            for k in 0..<plane {
                                let mine = scale * c[off + k], other = (z[zo + k] - shift) - mine
                                let (r, s) = gamma ? (other, mine) : (mine, other)
                                let proportion = abs(r) / (abs(r) + abs(s))
                                let toRelevant = proportion.isNaN ? 0 : proportion
                                y[off + k] = gamma ? s + (1 - toRelevant) * shift : r + toRelevant * shift
                            }
                        }
                    }
                }
            case .avgPool1d, .avgPool2d, .globalAvgPool:
                return net.apply(layer: i, to: reads[0], rows: count, argmax: nil)
            case .flatten, .reshape, .dropout:
                return reads[0]
            case .embedding:
                preconditionFailure("an Embedding is node 0 of a token network, whose walk starts at its output")
            case .lstm(let l):
                return lstmPart(net, l, node: i, reads[0], tape: tape, example: example, irrelevant: irrelevant,
                                positionMask: positionMask, readsInput: v == start)
            case .add, .concat:
                return net.applyNode(i, reads, rows: count, argmax: nil)
            case .maxPool1d, .maxPool2d:
                let at = tape.argmax[i], c = reads[0]
                return uninitializedFloats(count * o) { y in
                    for p in 0..<count {
                        let e = example[p] * o, b = p * n
                        for j in 0..<o { y[p * o + j] = c[b + Int(at[e + j])] }
                    }
                }
            case .relu, .leakyReLU, .elu, .softplus:
                // β' = f(β) − f(0) and γ' = f(h) − f(β), then f(0) split as a bias; f(0) = 0 with β carried: acd's
                // β' = f(β), batched.
                let f = Activation(net.layers[i])!, f0 = f.value(0)
                if f0 == 0 && !anyIrrelevant { return f.apply(reads[0]) }
                let h = tape.values[v], y = tape.values[i + 1], c = reads[0]
                return uninitializedFloats(count * n) { out in
                    for p in 0..<count {
                        let e = example[p] * n, b = p * n, gamma = irrelevant[p]
                        for k in 0..<n {
                            let beta = gamma ? h[e + k] - c[b + k] : c[b + k]
                            let fb = f.value(beta)
                            let db = fb - f0, dg = y[e + k] - fb
                            if f0 == 0 {
                                out[b + k] = gamma ? dg : db
                            } else {
                                out[b + k] = gamma ? dg + f0 * contextualShare(dg, db) : db + f0 * contextualShare(db, dg)
                            }
                        }
                    }
                }
            case .sigmoid, .tanh:
                // c' = ½[f(c) − f(0) + f(h) − f(h − c)], f(0) split as a bias (the same for either part).
                let f = Activation(net.layers[i])!, f0 = f.value(0)
                let h = tape.values[v], y = tape.values[i + 1], c = reads[0]
                return uninitializedFloats(count * n) { out in
                    for p in 0..<count {
                        let e = example[p] * n, b = p * n
                        for k in 0..<n {
                            let ck = c[b + k], fc = f.value(ck), fo = f.value(h[e + k] - ck), fh = y[e + k]
                            let dc = 0.5 * ((fc - f0) + (fh - fo))
                            if f0 == 0 {
                                out[b + k] = dc
                            } else {
                                let dother = 0.5 * ((fo - f0) + (fh - fc))
                                out[b + k] = dc + f0 * contextualShare(dc, dother)
                            }
                        }
                    }
                }
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, whose input CD returns")
            }
        }[top - start]!
    }

    /// The LSTM rule (acd's `cd_text`, see the file's header) for every pair of a chunk: both parts are
    /// carried through the steps, rows 0..<P of every buffer holding the relevant part of pair p and rows
    /// P..<2P the irrelevant one, so the input projection of all steps is one GEMM over 2P·L rows and each
    /// step's recurrent product one GEMM over 2P rows. Returns the carried part of the output (P × H, or
    /// P × L × H for every state). w_t is `positionMask` where the LSTM reads the network input
    /// (`readsInput`), else the ℓ1 share of β in the step's input.
    func lstmPart(
        _ net: Network, _ l: Layer.LSTM, node i: Int, _ c: [Float], tape: Network.Tape, example: [Int], irrelevant: [Bool],
        positionMask: (Int, Int, Int) -> Float, readsInput: Bool
    ) -> [Float] {
        let P = example.count, v = net.input(of: i), L = net.shapes[v][0]
        let E = l.inputSize, H = l.hiddenSize, G = 4 * H, n = L * E
        let x = tape.values[v], record = tape.steps[i]
        // The input parts: β_x rows 0..<P, γ_x rows P..<2P, the other part the recorded input minus the carried one.
        let parts = uninitializedFloats(2 * P * n) { y in
            for p in 0..<P {
                let co = p * n, xo = example[p] * n
                let (mine, other) = irrelevant[p] ? (y + (P + p) * n, y + p * n) : (y + p * n, y + (P + p) * n)
                for k in 0..<n {
                    mine[k] = c[co + k]
                    other[k] = x[xo + k] - c[co + k]
                }
            }
        }
        // w_t per (pair, step): the share of the bias term i_b·g_b that goes to the relevant cell.
        let w = uninitializedFloats(P * L) { wp in
            for p in 0..<P {
                for t in 0..<L {
                    if readsInput {
                        wp[p * L + t] = positionMask(p, t, L)
                    } else {
                        var rel: Float = 0, irr: Float = 0
                        for k in 0..<E { rel += abs(parts[p * n + t * E + k]); irr += abs(parts[(P + p) * n + t * E + k]) }
                        wp[p * L + t] = contextualShare(rel, irr)
                    }
                }
            }
        }
        // Gate pre-activations without the bias, row (q·L + t) for part-row q: W_ih·part first, W_hh·h added per step.
        var z = uninitializedFloats(2 * P * L * G) { z in
            parts.withUnsafeBufferPointer { xp in
                l.weightIH.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transB: true, m: 2 * P * L, n: G, k: E, a: xp.baseAddress!, b: wp.baseAddress!, c: z)
                }
            }
        }
        var hidden = [Float](repeating: 0, count: 2 * P * H), cell = hidden
        let outWidth = l.returnSequences ? L * H : H
        var out = [Float](repeating: 0, count: P * outWidth)
        let sigmoid = Activation(Activation.Kind.sigmoid), hyperbolic = Activation(Activation.Kind.tanh)
        z.withUnsafeMutableBufferPointer { zp in
            hidden.withUnsafeMutableBufferPointer { hp in
                cell.withUnsafeMutableBufferPointer { cp in
                    l.weightHH.withUnsafeBufferPointer { whh in
                        let z0 = zp.baseAddress!, hs = hp.baseAddress!, cs = cp.baseAddress!
                        for t in 0..<L {
                            if t > 0 {
                                BLAS.sgemm(transB: true, m: 2 * P, n: G, k: H, a: hs, b: whh.baseAddress!, beta: 1,
                                           c: z0 + t * G, ldc: L * G)
                            }
                            for p in 0..<P {
                                let zr = z0 + (p * L + t) * G, zs = z0 + ((P + p) * L + t) * G
                                let o = (example[p] * L + t) * 10 * H + G + 3 * H, wt = w[p * L + t]
                                let hr = hs + p * H, hi = hs + (P + p) * H, cr = cs + p * H, ci = cs + (P + p) * H
                                for j in 0..<H {
                                    let ig = sigmoid.contextualShares(zr[j], zs[j], bias: l.bias[j])
                                    let gg = hyperbolic.contextualShares(zr[2 * H + j], zs[2 * H + j], bias: l.bias[2 * H + j])
                                    var rel = ig.a * (gg.a + gg.bias) + ig.bias * gg.a
                                    var irr = ig.b * (gg.a + gg.b + gg.bias) + (ig.a + ig.bias) * gg.b
                                    rel += wt * ig.bias * gg.bias
                                    irr += (1 - wt) * ig.bias * gg.bias
                                    if t > 0 {
                                        let fg = sigmoid.contextualShares(zr[H + j], zs[H + j], bias: l.bias[H + j])
                                        rel += (fg.a + fg.bias) * cr[j]
                                        irr += (fg.a + fg.b + fg.bias) * ci[j] + fg.b * cr[j]
                                    }
                                    let og = record[o + j], both = _tanh(rel + irr)
                                    let tr = _tanh(rel), ti = _tanh(irr)
                                    cr[j] = rel; ci[j] = irr
                                    hr[j] = og * (0.5 * (tr + (both - ti)))
                                    hi[j] = og * (0.5 * (ti + (both - tr)))
                                }
                                if l.returnSequences || t == L - 1 {
                                    let carried = irrelevant[p] ? hi : hr
                                    let at = p * outWidth + (l.returnSequences ? t * H : 0)
                                    for j in 0..<H { out[at + j] = carried[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
