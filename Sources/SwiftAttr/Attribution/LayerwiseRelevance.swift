/// Layer-wise relevance propagation (Bach et al. 2015, "On pixel-wise explanations for non-linear classifier
/// decisions by layer-wise relevance propagation"; Montavon et al. 2017 and 2019), as Captum's `LRP` defines it.
///
/// Relevance starts at the target output, R = f_t(x)·e_t (a final Softmax: at the target logit, since a
/// probability is no sum of its inputs' shares; Captum refuses a Softmax), and walks back to the input through
/// the propagation driver; each node redistributes the relevance at its output over the values it reads.
/// With s = R ⊘ stab(z), stab(z) = z + e·sign(z) (sign 0 taken as +1, as Captum):
///
/// - ε-rule (Linear, Conv): R_i = a_i Σ_j w_ij s_j with z = Wa + b, e = ε (Captum's default 1e-9).
/// - γ-rule (Linear, Conv): the same with W + γW⁺ and the bias unchanged (Captum's GammaRule), e = 1e-9.
/// - α-β rule (Linear, Conv; α − β = 1, β ≥ 0): R_i = a_i [α Σ_j w⁺_ij s⁺_j − β Σ_j w⁻_ij s⁻_j] with
///   z⁺ = W⁺a + b and z⁻ = W⁻a, e = 1e-9: at α = 1, β = 0 Captum's Alpha1_Beta0_Rule (weights clamped at
///   0, the bias kept, so the bias sits in the positive part); after a ReLU (a ≥ 0) W±a are the sums of the
///   positive and negative contributions (a_i w_ij)±, Bach et al.'s rule.
/// - z^B (a Linear or Conv reading the network input, through Flatten/Reshape/Dropout only, with bounds
///   l ≤ x ≤ h): z = Wx − W⁺l − W⁻h (no bias), R_i = x_i (Wᵀs)_i − l_i (W⁺ᵀs)_i − h_i (W⁻ᵀs)_i, e = 1e-9.
///   Captum has no z^B; it is Montavon et al.'s rule for bounded inputs.
/// - BatchNorm, max- and average pooling, GlobalAvgPool and Add take the ε-rule on their own map (Captum's
///   defaults): R_in = a ⊙ Jᵀ(R ⊘ stab(y)) at the recorded output y, so max-pooling gives its window's winner
///   R·y/stab(y) and Add gives each input x_k ⊙ R ⊘ stab(Σx). BatchNorm may take the identity rule
///   (Captum's IdentityRule) instead.
/// - Every elementwise activation, Dropout, Flatten and Reshape pass relevance through unchanged (Captum does
///   so for ReLU, Tanh and Dropout and refuses the other activations: the activation's input and output are
///   one neuron, so its relevance is one number). Concat gives each input its slice (Captum has no Concat).
/// - Conv1d, the 1-D pools and BatchNorm over `[C, L]`, which Captum refuses (its table lists the 2-D kinds
///   only), take the rules of their 2-D kinds. A value read by several nodes (fan-out) receives the sum of
///   its readers' relevances (the driver's fan-out sum), so conservation holds through residual graphs.
/// - LSTM: refused (no rule here; Arras et al.'s LSTM rules are not implemented). Token networks (an
///   Embedding first) are attributed at the embedding output, summed over the embedding axis.
/// - A denominator that is exactly 0 (ε = 0 at z = 0: a dead unit, an all-zero pooling window) passes nothing.
///
/// Composite (the common choice, e.g. Montavon et al. 2019 and Zennit's EpsilonGammaBox): z^B for the input
/// layer, γ for the other convolutions, ε for the other Linear layers. Per-node rules override the preset.
///
/// With zero biases and e → 0 every rule conserves relevance: Σ R_in = Σ R_out at every node (LRP-0 on a ReLU
/// network: Σ R = f_t(x)). The convergence delta is Captum's: f_t(x) − Σ R.
///
/// Batched: a chunk of examples runs forward once (one GEMM per layer), and its relevance runs backward as
/// one GEMM per layer (the rules are a forward and a transposed product with modified weights).
public enum RelevanceRule: Int32, Sendable, CaseIterable {
    case epsilon = 0
    case gamma = 1
    case alphaBeta = 2
    /// z^B: input layer only, needs bounds.
    case zB = 3
    /// Relevance passed through unchanged (BatchNorm and the pass-through nodes).
    case identity = 4

    public var name: String {
        switch self {
        case .epsilon: "epsilon"
        case .gamma: "gamma"
        case .alphaBeta: "alpha_beta"
        case .zB: "zb"
        case .identity: "identity"
        }
    }
}

/// The rule every Linear and convolution takes unless a per-node rule overrides it (BatchNorm, pooling and
/// Add always default to ε).
public enum RelevancePreset: Int32, Sendable, CaseIterable {
    case epsilon = 0
    case gamma = 1
    case alphaBeta = 2
    /// z^B for the input layer, γ for the other convolutions, ε for the other Linear layers.
    case composite = 5

    public var name: String {
        switch self {
        case .epsilon: "epsilon"
        case .gamma: "gamma"
        case .alphaBeta: "alpha_beta"
        case .composite: "composite"
        }
    }
}

/// The stabiliser of Captum's γ and α-β rules (`PropagationRule.STABILITY_FACTOR`), also used by z^B.
let relevanceStabilizer: Float = 1e-9

/// Options of ``Network/lrp(_:rows:targets:options:internalBatchSize:)``.
public struct RelevanceOptions: Sendable, Equatable {
    public var rule: RelevancePreset
    /// Per node index: a rule overriding the preset.
    public var nodeRules: [Int: RelevanceRule]
    /// ε of the ε-rule (every node that takes it: Linear, Conv, BatchNorm, pooling, Add).
    public var epsilon: Float
    public var gamma: Float
    /// Per node index: its own ε or γ instead of `epsilon` / `gamma` (as Captum's `EpsilonRule(ε)` and
    /// `GammaRule(γ)` set per module).
    public var nodeEpsilon: [Int: Float]
    public var nodeGamma: [Int: Float]
    public var alpha: Float
    public var beta: Float
    /// z^B bounds: one value for every input element, or one per element (inputSize); empty when unused.
    public var low: [Float]
    public var high: [Float]

    public init(rule: RelevancePreset = .epsilon, nodeRules: [Int: RelevanceRule] = [:], epsilon: Float = 1e-9, gamma: Float = 0.25,
                nodeEpsilon: [Int: Float] = [:], nodeGamma: [Int: Float] = [:], alpha: Float = 1, beta: Float = 0,
                low: [Float] = [], high: [Float] = []) {
        self.rule = rule
        self.nodeRules = nodeRules
        self.epsilon = epsilon
        self.gamma = gamma
        self.nodeEpsilon = nodeEpsilon
        self.nodeGamma = nodeGamma
        self.alpha = alpha
        self.beta = beta
        self.low = low
        self.high = high
    }
}

extension Network {
    /// LRP result.
    public struct RelevanceAttributions: Sendable {
        /// rows × inputSize relevances.
        public var attributions: [Float]
        /// Per example: f_t(x) − Σ R (Captum's convergence delta; the target logit after a final Softmax).
        public var delta: [Float]
    }

    /// Layer-wise relevance propagation of output `targets` (one, or one per example); see ``RelevanceRule``.
    public func lrp(_ x: [Float], rows: Int, targets: [Int], options: RelevanceOptions = .init(), internalBatchSize: Int? = nil) throws
        -> RelevanceAttributions {
        if let t = try tokenCall(x, rows: rows) {
            // Node k of this network is node k − 1 of the rest (the Embedding takes no rule).
            func shift<V>(_ values: [Int: V], _ name: String) throws -> [Int: V] {
                var out = [Int: V]()
                for (k, v) in values {
                    try checkRelevanceNode(k, name)
                    guard k > 0 else { throw SwiftAttrError.invalid("\(name): node 0 is the Embedding, which takes no rule (token relevance is taken at its output)") }
                    out[k - 1] = v
                }
                return out
            }
            var shifted = options
            shifted.nodeRules = try shift(options.nodeRules, "node_rules")
            shifted.nodeEpsilon = try shift(options.nodeEpsilon, "node_epsilon")
            shifted.nodeGamma = try shift(options.nodeGamma, "node_gamma")
            var r = try t.rest.lrp(t.x, rows: rows, targets: targets, options: shifted, internalBatchSize: internalBatchSize)
            r.attributions = t.summed(r.attributions)
            return r
        }
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let plan = try RelevancePlan(self, options)
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        let d = inputSize, w = d + 1
        // Each chunk's row carries its relevances and, last, its delta.
        let packed = mapRowChunks(x, rows: rows, inSize: d, outSize: w, chunk: chunk) { xs, range in
            let n = range.count
            let tape = record(xs, rows: n, from: 0, to: plan.top)
            let out = size(at: plan.top), top = tape.values[plan.top]
            var seed = [Float](repeating: 0, count: n * out)
            for p in 0..<n { seed[p * out + targets[range.lowerBound + p]] = top[p * out + targets[range.lowerBound + p]] }
            let r = plan.propagate(self, tape, seed, rows: n)
            return uninitializedFloats(n * w) { o in
                for p in 0..<n {
                    var total: Double = 0
                    for k in 0..<d {
                        o[p * w + k] = r[p * d + k]
                        total += Double(r[p * d + k])
                    }
                    o[p * w + d] = Float(Double(seed[p * out + targets[range.lowerBound + p]]) - total)
                }
            }
        }
        var attributions = [Float](repeating: 0, count: rows * d), delta = [Float](repeating: 0, count: rows)
        for p in 0..<rows {
            for k in 0..<d { attributions[p * d + k] = packed[p * w + k] }
            delta[p] = packed[p * w + d]
        }
        return RelevanceAttributions(attributions: attributions, delta: delta)
    }

    /// Throws `.outOfRange` unless `k` is a node index.
    func checkRelevanceNode(_ k: Int, _ name: String = "node_rules") throws {
        guard k >= 0, k < layers.count else {
            throw SwiftAttrError(.outOfRange, "\(name): node \(k) does not exist (the model has nodes 0..<\(layers.count))")
        }
    }
}

/// What one node does to the relevance at its output.
enum RelevanceStep {
    /// The ε-rule on the node's own map: a ⊙ Jᵀ(R ⊘ stab(y)) at the recorded output y.
    case ratio(epsilon: Float)
    /// A Linear or Conv with modified weights (γ): a ⊙ W′ᵀ(R ⊘ stab(W′a + b)).
    case modified(Network)
    /// α-β: a ⊙ (α W⁺ᵀ(R ⊘ stab(W⁺a + b)) − β W⁻ᵀ(R ⊘ stab(W⁻a))); `minus` is nil when β = 0.
    case alphaBeta(plus: Network, minus: Network?, alpha: Float, beta: Float)
    /// z^B with the node's bounds: `lowOut` = W⁺l, `highOut` = W⁻h (one row each).
    case bounded(plus: Network, minus: Network, low: [Float], high: [Float], lowOut: [Float], highOut: [Float], bias: [Float])
    /// Relevance unchanged.
    case pass
    /// Concat: each input its slice.
    case split
}

/// The rule of every node for one LRP call, checked once.
struct RelevancePlan {
    /// The value relevance starts at: the logits a final Softmax reads, else the output.
    let top: Int
    let steps: [RelevanceStep?]

    init(_ net: Network, _ o: RelevanceOptions) throws {
        guard o.epsilon.isFinite, o.epsilon >= 0 else { throw SwiftAttrError.invalid("epsilon must be finite and non-negative (got \(o.epsilon))") }
        guard o.gamma.isFinite, o.gamma >= 0 else { throw SwiftAttrError.invalid("gamma must be finite and non-negative (got \(o.gamma))") }
        for k in o.nodeRules.keys.sorted() { try net.checkRelevanceNode(k) }
        for (values, name) in [(o.nodeEpsilon, "node_epsilon"), (o.nodeGamma, "node_gamma")] {
            for k in values.keys.sorted() {
                try net.checkRelevanceNode(k, name)
                guard values[k]!.isFinite, values[k]! >= 0 else {
                    throw SwiftAttrError.invalid("\(name)[\(k)] must be finite and non-negative (got \(values[k]!))")
                }
            }
        }
        let usesAlphaBeta = o.rule == .alphaBeta || o.nodeRules.values.contains(.alphaBeta)
        if usesAlphaBeta {
            guard o.alpha.isFinite, o.beta.isFinite, o.beta >= 0, abs(o.alpha - o.beta - 1) <= 1e-6 else {
                throw SwiftAttrError.invalid("alpha and beta must satisfy alpha − beta = 1 with beta ≥ 0 (got alpha = \(o.alpha), beta = \(o.beta))")
            }
        }
        let d = net.inputSize
        func bounds(_ v: [Float], _ name: String) throws -> [Float] {
            guard v.count == 1 || v.count == d else {
                throw SwiftAttrError.shape("\(name): expected 1 value or one per input element (\(d)), got \(v.count)")
            }
            try Check.finite(v, name)
            return v.count == 1 ? [Float](repeating: v[0], count: d) : v
        }
        var low: [Float]? = nil, high: [Float]? = nil
        if !o.low.isEmpty || !o.high.isEmpty {
            let l = try bounds(o.low, "low"), h = try bounds(o.high, "high")
            for k in 0..<d where l[k] > h[k] {
                throw SwiftAttrError.invalid("low and high: low must not exceed high (low[\(k)] = \(l[k]) > high[\(k)] = \(h[k]))")
            }
            low = l
            high = h
        }
        top = net.endsWithSoftmax ? net.input(of: net.layers.count - 1) : net.layers.count
        // inputView[v]: value v is the network input seen through Flatten/Reshape/Dropout (the same buffer).
        let inputView = net.walkForward(true, from: 0, to: net.layers.count, keep: true) { i, reads -> Bool in
            switch net.layers[i] {
            case .flatten, .reshape, .dropout: reads[0]
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .add, .concat, .embedding, .lstm: false
            }
        }.map { $0 ?? false }
        var steps = [RelevanceStep?](repeating: nil, count: net.layers.count)
        for i in 0..<top {
            let layer = net.layers[i], explicit = o.nodeRules[i]
            let epsilon = o.nodeEpsilon[i] ?? o.epsilon, gamma = o.nodeGamma[i] ?? o.gamma
            let label = "node_rules: node \(i) (\(layer.name))"
            func refuse(_ why: String) -> SwiftAttrError { SwiftAttrError.invalid("\(label): rule \(explicit!.name) \(why)") }
            switch layer {
            case .dense, .conv1d, .conv2d:
                let readsInput = inputView[net.input(of: i)]
                let rule: RelevanceRule = explicit ?? {
                    switch o.rule {
                    case .epsilon: return .epsilon
                    case .gamma: return .gamma
                    case .alphaBeta: return .alphaBeta
                    case .composite:
                        if readsInput { return .zB }
                        if case .dense = layer { return .epsilon }
                        return .gamma
                    }
                }()
                let inShape = net.shapes[net.input(of: i)]
                switch rule {
                case .epsilon:
                    steps[i] = .ratio(epsilon: epsilon)
                case .gamma:
                    steps[i] = .modified(try reweighted(layer, inShape, bias: true) { $0 + gamma * max($0, 0) })
                case .alphaBeta:
                    let plus = try reweighted(layer, inShape, bias: true) { max($0, 0) }
                    let minus = o.beta == 0 ? nil : try reweighted(layer, inShape, bias: false) { min($0, 0) }
                    steps[i] = .alphaBeta(plus: plus, minus: minus, alpha: o.alpha, beta: o.beta)
                case .zB:
                    guard readsInput else {
                        throw SwiftAttrError.invalid("\(explicit == nil ? "rule composite" : label): z^B applies only to a Linear or convolution reading the network input (through Flatten/Reshape/Dropout only); node \(i) reads value \(net.input(of: i))")
                    }
                    guard let low, let high else {
                        throw SwiftAttrError.invalid("low and high: the z^B rule (node \(i)\(explicit == nil ? ", from rule composite" : "")) needs the input bounds")
                    }
                    let plus = try reweighted(layer, inShape, bias: false) { max($0, 0) }
                    let minus = try reweighted(layer, inShape, bias: false) { min($0, 0) }
                    var bias: [Float] = []
                    if case .dense(let l) = layer { bias = l.bias }
                    if case .conv1d(let c) = layer { bias = c.bias }
                    if case .conv2d(let c) = layer { bias = c.bias }
                    steps[i] = .bounded(plus: plus, minus: minus, low: low, high: high,
                                        lowOut: plus.apply(layer: 0, to: low, rows: 1, argmax: nil),
                                        highOut: minus.apply(layer: 0, to: high, rows: 1, argmax: nil), bias: bias)
                case .identity:
                    throw refuse("needs a node whose input and output are the same neurons; a \(layer.name) takes epsilon, gamma, alpha_beta or zb")
                }
            case .batchNorm:
                switch explicit {
                case nil, .epsilon?: steps[i] = .ratio(epsilon: epsilon)
                case .identity?: steps[i] = .pass
                case .gamma?, .alphaBeta?, .zB?: throw refuse("does not apply: a BatchNorm takes epsilon or identity")
                }
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .add:
                switch explicit {
                case nil, .epsilon?: steps[i] = .ratio(epsilon: epsilon)
                case .gamma?, .alphaBeta?, .zB?, .identity?: throw refuse("does not apply: pooling and Add take the epsilon rule")
                }
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .dropout, .flatten, .reshape:
                switch explicit {
                case nil, .identity?: steps[i] = .pass
                case .epsilon?, .gamma?, .alphaBeta?, .zB?: throw refuse("does not apply: a \(layer.name) passes relevance through (identity)")
                }
            case .concat:
                guard explicit == nil else { throw refuse("does not apply: a Concat gives each input its slice and takes no rule") }
                steps[i] = .split
            case .lstm:
                throw SwiftAttrError.invalid("lrp: no propagation rule for an LSTM (node \(i)); use integrated gradients or DeepLIFT for recurrent models")
            case .embedding:
                preconditionFailure("token networks are attributed at the embedding output (tokenCall)")
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, which LRP does not propagate through")
            }
        }
        for (k, _) in o.nodeRules where k >= top {
            throw SwiftAttrError.invalid("node_rules: node \(k) is the final Softmax, which takes no rule (relevance starts at its logits)")
        }
        self.steps = steps
    }

    /// The relevance at the input (rows × inputSize) for `seed` at value `top`, from the chunk's forward tape.
    func propagate(_ net: Network, _ tape: Network.Tape, _ seed: [Float], rows n: Int) -> [Float] {
        net.walkBackward(from: top, to: 0, seed: seed, node: { i, r -> [[Float]] in
            switch steps[i]! {
            case .pass:
                return [r]
            case .split:
                return net.pullbackNode(i, r, rows: n, reads: [], output: [], argmax: [])
            case .ratio(let e):
                let c = net.pullbackNode(i, quotient(r, tape.value(i + 1), e), rows: n, reads: [], output: [], argmax: tape.argmax[i])
                return zip(net.inputs[i], c).map { v, g in zipMap(tape.value(v), g, *) }
            case .modified(let m):
                let a = tape.value(net.input(of: i))
                let s = quotient(r, m.apply(layer: 0, to: a, rows: n, argmax: nil), relevanceStabilizer)
                return [zipMap(a, m.pullback(layer: 0, s, rows: n, input: [], output: [], argmax: []), *)]
            case .alphaBeta(let plus, let minus, let alpha, let beta):
                let a = tape.value(net.input(of: i))
                let sp = quotient(r, plus.apply(layer: 0, to: a, rows: n, argmax: nil), relevanceStabilizer)
                var c = plus.pullback(layer: 0, sp, rows: n, input: [], output: [], argmax: [])
                if let minus {
                    let sm = quotient(r, minus.apply(layer: 0, to: a, rows: n, argmax: nil), relevanceStabilizer)
                    c = zipMap(c, minus.pullback(layer: 0, sm, rows: n, input: [], output: [], argmax: [])) { alpha * $0 - beta * $1 }
                } else if alpha != 1 {
                    c = c.map { alpha * $0 }
                }
                return [zipMap(a, c, *)]
            case .bounded(let plus, let minus, let low, let high, let lowOut, let highOut, let bias):
                let x = tape.value(net.input(of: i)), y = tape.value(i + 1)
                let m = lowOut.count, d = low.count, plane = m / bias.count
                // z = Wx − W⁺l − W⁻h, with Wx the recorded output minus the bias.
                let z = uninitializedFloats(n * m) { out in
                    for p in 0..<n {
                        for j in 0..<m { out[p * m + j] = y[p * m + j] - bias[j / plane] - lowOut[j] - highOut[j] }
                    }
                }
                let s = quotient(r, z, relevanceStabilizer)
                let g = net.pullback(layer: i, s, rows: n, input: [], output: [], argmax: [])
                let gp = plus.pullback(layer: 0, s, rows: n, input: [], output: [], argmax: [])
                let gm = minus.pullback(layer: 0, s, rows: n, input: [], output: [], argmax: [])
                return [uninitializedFloats(n * d) { out in
                    for p in 0..<n {
                        for k in 0..<d {
                            let q = p * d + k
                            out[q] = x[q] * g[q] - low[k] * gp[q] - high[k] * gm[q]
                        }
                    }
                }]
            }
        }, accumulate: addInPlace) ?? [Float](repeating: 0, count: n * net.inputSize)
    }
}

/// R ⊘ (z + e·sign z), sign 0 taken as +1 (Captum's stabiliser); 0 where the denominator is 0 (only with
/// e = 0, at a neuron whose z is exactly 0: a dead unit or an all-zero pooling window, which passes nothing
/// instead of 0/0).
func quotient(_ r: [Float], _ z: [Float], _ e: Float) -> [Float] {
    zipMap(r, z) { r, z in
        let d = z + (z >= 0 ? e : -e)
        return d == 0 ? 0 : r / d
    }
}

/// A one-node network computing Linear or Conv `layer` with weights f(W) (and its bias, or none), for the
/// rules that need a forward and a transposed product with modified weights.
func reweighted(_ layer: Layer, _ inputShape: [Int], bias: Bool, _ f: (Float) -> Float) throws -> Network {
    let modified: Layer
    switch layer {
    case .dense(let l):
        modified = .dense(try .init(weight: l.weight.map(f), bias: bias ? l.bias : nil, outFeatures: l.outFeatures, inFeatures: l.inFeatures))
    case .conv1d(let c), .conv2d(let c):
        let w = try Layer.Convolution(weight: c.weight.map(f), bias: bias ? c.bias : nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                      kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
        modified = c.kernel.count == 1 ? .conv1d(w) : .conv2d(w)
    case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu, .softplus,
         .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
        preconditionFailure("only a Linear or convolution has weights to modify (\(layer.name))")
    }
    return try Network(inputShape: inputShape, layers: [modified])
}
