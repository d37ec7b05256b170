/// DeepLIFT (Shrikumar, Greenside, Kundaje 2017, "Learning Important Features Through Propagating
/// Activation Differences") and DeepSHAP (its average over a distribution of references).
///
/// Every neuron's difference from reference Δy = y − y⁰ is explained by contributions C that sum to it
/// (summation-to-delta). Multipliers m = C/Δx propagate backwards by the chain rule
/// m_{x,t} = Σ_y m_{x,y} m_{y,t}, so one backward pass of multipliers gives every input's contribution
/// C = m·Δx to the target. This file holds the rule of every node kind (§3.5 of the paper):
///
/// - Linear rule (Dense, Conv, BatchNorm, pooling by averages, Flatten, Dropout): m = the weight. When a
///   RevealCancel nonlinearity needs it, the layer's Δy is split into Δy⁺ = W⁺Δx⁺ + W⁻Δx⁻ and
///   Δy⁻ = W⁺Δx⁻ + W⁻Δx⁺, where Δx⁺ = max(Δx, 0), Δx⁻ = min(Δx, 0) are the parts of the layer's input
///   difference (the paper's Δy⁺ = Σ_i 1{w_iΔx_i > 0} w_iΔx_i, as in the authors' package), computed as
///   ½(WΔx ± |W||Δx|); backwards, m_x = ½Wᵀ(m⁺ + m⁻) + ½ sign(Δx) |W|ᵀ(m⁺ − m⁻).
/// - Rescale (every elementwise nonlinearity): m = Δy/Δx, the derivative at the reference when |Δx| < 1e-7.
/// - RevealCancel: Δy⁺ = ½[f(x⁰+Δx⁺) − f(x⁰)] + ½[f(x⁰+Δx⁻+Δx⁺) − f(x⁰+Δx⁻)], Δy⁻ symmetric,
///   m⁺ = Δy⁺/Δx⁺, m⁻ = Δy⁻/Δx⁻ (positive and negative parts keep separate multipliers).
/// - Max-pooling: `.gradient` routes the multiplier to the argmax of the input (the authors' package;
///   exact when the references in a window are equal; what Captum's DeepLift computes after a ReLU);
///   `.crossMax` (the rule of shap's DeepExplainer, and of Captum for a pool that reads the input) splits
///   Δy = (max(y, y⁰) − y⁰) + (y − max(y, y⁰)) between the argmax of the input and that of the reference,
///   exact for any reference.
/// - Add and concat (graphs): linear with weights 0 or 1, so summation-to-delta stays exact. Backwards, add
///   passes (m⁺, m⁻) to every input and concat gives each input its slice; forwards, the split
///   s = Δ⁺ − Δ⁻ of an add is the sum of its inputs' (the layer [I I] over already-split inputs), that of
///   a concat their concatenation. A value read by several nodes has one s, and its multipliers are the
///   sum of its readers' (m⁻ ?? m⁺ where only some carry a separate m⁻).
/// - LSTM (one layer): Rescale on every gate's σ or tanh and on tanh(c_t); the products f ⊙ c_{t−1},
///   i ⊙ g and o ⊙ tanh(c_t) split exactly by the Shapley rule for two factors,
///   Δ(ab) = b̄ Δa + ā Δb with ā = (a + a⁰)/2 (the average of the two orderings; e.g. Ancona et al. 2018,
///   "Towards better understanding of gradient-based attribution methods", and the DeepLIFT paper's
///   discussion of gated units), which holds exactly: ab − a⁰b⁰ = ½(b + b⁰)(a − a⁰) + ½(a + a⁰)(b − b⁰).
///   The step becomes a linear map of the differences with the coefficients of
///   ``Network/lstmGradientCoefficients``' layout, pulled back by the one BPTT ``Network/lstmBackward``,
///   so summation-to-delta stays exact. RevealCancel after an LSTM is not supported (its output has no
///   positive/negative split): such a plan throws.
/// - Token networks (an Embedding first): contributions of the embedding output, summed over the
///   embedding axis (``Network/embeddingSplit``); baselines are token ids, none = zero vectors.
/// - A final Softmax (§3.6): attribute the logits and subtract from each contribution its mean over
///   the classes, i.e. seed the logits with e_t − 1/n.
///
/// Every pass walks the network through the propagation driver (``Network/walkForward`` for the plan's
/// genomics rule and the split pass, ``Network/walkBackward`` for the plan's split needs and the
/// multipliers); on a chain that is the straight walk over the layers, with the same GEMMs in the same order.
/// Everything is batched: the inputs and their references run forward stacked (one GEMM per layer), and
/// the multipliers of a chunk of (example, reference) pairs run backward as one GEMM per layer.
public enum DeepLiftRule: Int32, Sendable, CaseIterable {
    /// Rescale after every nonlinearity (Captum's DeepLift).
    case rescale = 0
    /// RevealCancel after every nonlinearity.
    case revealCancel = 1
    /// The authors' genomics default: Rescale after convolutions, RevealCancel after dense layers (the
    /// nearest Dense or Conv upstream decides, followed along the first input of every add or concat;
    /// a nonlinearity with neither before it uses Rescale; an LSTM counts as a convolution: Rescale).
    /// Inside an LSTM every rule uses Rescale with the Shapley split of the gate products.
    case genomics = 2

    public var name: String {
        switch self {
        case .rescale: "rescale"
        case .revealCancel: "revealcancel"
        case .genomics: "genomics"
        }
    }
}

/// How DeepLIFT propagates multipliers through max-pooling.
public enum MaxPoolRule: Int32, Sendable, CaseIterable {
    /// To the argmax of the input, as the gradient does (the authors' package; Captum's DeepLift and
    /// DeepLiftShap after a ReLU).
    case gradient = 0
    /// The cross-max rule (shap's DeepExplainer; Captum's only for a pool reading the model input): exact
    /// summation-to-delta for any reference.
    case crossMax = 1

    public var name: String {
        switch self {
        case .gradient: "gradient"
        case .crossMax: "crossmax"
        }
    }
}

/// |Δx| below which a multiplier falls back to the derivative at the reference.
let deepLiftNearZero: Float = 1e-7

extension Network {
    /// DeepLIFT or DeepSHAP result.
    public struct DeepLiftAttributions: Sendable {
        /// rows × inputSize: contributions C = m·Δx, or the multipliers m when not multiplied by inputs.
        public var attributions: [Float]
        /// Per example: Σ C − Δt, where Δt = f_t(x) − f_t(x⁰) (DeepSHAP: minus the mean over references;
        /// final Softmax: the logit difference minus its mean over classes). Always from contributions.
        public var delta: [Float]
    }

    /// DeepLIFT contributions of every input to output `targets` (one, or one per example).
    ///
    /// - Parameters:
    ///   - baselines: empty (zeros), one example (shared by all, run forward once) or one per example.
    ///   - multiplyByInputs: false returns the multipliers m (Captum's `multiply_by_inputs=False`).
    ///   - internalBatchSize: examples per chunk (memory bound); nil picks one for an 8 MB budget per worker.
    public func deepLift(
        _ x: [Float], rows: Int, baselines: [Float] = [], targets: [Int], rule: DeepLiftRule = .rescale,
        maxPool: MaxPoolRule = .crossMax, multiplyByInputs: Bool = true, internalBatchSize: Int? = nil
    ) throws -> DeepLiftAttributions {
        if let t = try tokenCall(x, rows: rows) {
            var r = try t.rest.deepLift(
                t.x, rows: rows, baselines: try t.baselines(baselines), targets: targets, rule: rule, maxPool: maxPool,
                multiplyByInputs: multiplyByInputs, internalBatchSize: internalBatchSize)
            r.attributions = t.summed(r.attributions)
            return r
        }
        return try deepLift(x, rows: rows, baselines: baselines, targets: targets, rule: rule, maxPool: maxPool,
                            multiplyByInputs: multiplyByInputs, internalBatchSize: internalBatchSize, at: 0)
    }

    /// DeepLIFT contributions of value `attributed` (0: the input; j + 1: node j's output, Captum's
    /// LayerDeepLift), rows × size(at: attributed); baselines are inputs, run forward with the examples.
    func deepLift(
        _ x: [Float], rows: Int, baselines: [Float], targets: [Int], rule: DeepLiftRule, maxPool: MaxPoolRule,
        multiplyByInputs: Bool, internalBatchSize: Int?, at attributed: Int
    ) throws -> DeepLiftAttributions {
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let d = inputSize, da = size(at: attributed)
        let shared: Bool
        var base = baselines
        if baselines.isEmpty {
            base = [Float](repeating: 0, count: d)
            shared = true
        } else {
            try Check.finite(baselines, "baselines")
            if baselines.count == d {
                shared = true
            } else if baselines.count == rows * d {
                shared = false
            } else {
                throw SwiftAttrError.shape("baselines: expected none, one example of shape \(inputShape) (\(d) values) or \(rows) examples (\(rows * d) values), got \(baselines.count) values")
            }
        }
        let plan = try DeepLiftPlan(self, rule: rule, maxPool: maxPool)
        guard attributed <= plan.top else {
            throw SwiftAttrError(.outOfRange, "layer = \(attributed - 1): DeepLIFT attributes the logits a final Softmax reads (node \(plan.top - 1) at the latest), not the Softmax itself")
        }
        let chunk = try plan.pairChunk(self, requested: internalBatchSize, rows: rows)
        let targetsPerRow = targets

        var attributions = [Float](repeating: 0, count: rows * da)
        var delta = [Float](repeating: 0, count: rows)
        attributions.withUnsafeMutableBufferPointer { attributionBuffer in
            delta.withUnsafeMutableBufferPointer { deltaBuffer in
                let out = attributionBuffer.baseAddress!, deltaOut = deltaBuffer.baseAddress!
                Parallel.forEachChunk(count: rows, chunk: chunk) { _, range, _ in
                    let begin = range.lowerBound, n = range.count
                    // Inputs and references stacked: one forward GEMM per layer.
                    var stacked = Array(x[(begin * d)..<(range.upperBound * d)])
                    stacked.append(contentsOf: shared ? base : Array(base[(begin * d)..<(range.upperBound * d)]))
                    let tape = record(stacked, rows: shared ? n + 1 : 2 * n, from: 0, to: plan.top)
                    let pairs = PairRows(example: Array(0..<n), reference: shared ? Array(repeating: n, count: n) : Array(n..<(2 * n)))
                    let chunkTargets = Array(targetsPerRow[range])
                    let m = plan.inputMultipliers(self, examples: tape, references: tape, pairs: pairs, targets: chunkTargets, to: attributed)
                    let ends = plan.targetDifferences(self, examples: tape, references: tape, pairs: pairs, targets: chunkTargets)
                    let input = tape.values[attributed]
                    for p in 0..<n {
                        let row = out + (begin + p) * da, xo = p * da, ro = pairs.reference[p] * da
                        var total: Double = 0
                        for k in 0..<da {
                            let c = m[p * da + k] * (input[xo + k] - input[ro + k])
                            total += Double(c)
                            row[k] = multiplyByInputs ? c : m[p * da + k]
                        }
                        deltaOut[begin + p] = Float(total - Double(ends[p]))
                    }
                }
            }
        }
        return DeepLiftAttributions(attributions: attributions, delta: delta)
    }

    /// DeepSHAP: DeepLIFT averaged over `referenceCount` references for each example,
    /// φ = (1/R) Σ_r C(x, r). Pairs (example, reference) run in chunks of `internalBatchSize` (nil: an
    /// 8 MB budget per worker), so memory is bounded by the chunk whatever the number of references; each
    /// reference block runs forward once for all examples.
    public func deepShap(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], rule: DeepLiftRule = .rescale,
        maxPool: MaxPoolRule = .crossMax, multiplyByInputs: Bool = true, internalBatchSize: Int? = nil
    ) throws -> DeepLiftAttributions {
        if let t = try tokenCall(x, rows: rows) {
            guard referenceCount > 0 else { throw SwiftAttrError.invalid("references: the reference set is empty (n_references = \(referenceCount))") }
            let r = try embedTokens(references, rows: referenceCount, name: "references")
            var result = try t.rest.deepShap(
                t.x, rows: rows, references: r, referenceCount: referenceCount, targets: targets, rule: rule, maxPool: maxPool,
                multiplyByInputs: multiplyByInputs, internalBatchSize: internalBatchSize)
            result.attributions = t.summed(result.attributions)
            return result
        }
        try checkInputs(x, rows: rows)
        guard referenceCount > 0 else { throw SwiftAttrError.invalid("references: the reference set is empty (n_references = \(referenceCount))") }
        try checkInputs(references, rows: referenceCount, name: "references")
        let targets = try expandTargets(targets, rows: rows)
        let plan = try DeepLiftPlan(self, rule: rule, maxPool: maxPool)
        let chunk = try plan.pairChunk(self, requested: internalBatchSize, rows: rows * referenceCount)
        let d = inputSize
        // Reference blocks of balanced size (each runs forward once); example blocks fill a chunk of pairs.
        let referenceBlocks = (referenceCount + chunk - 1) / chunk
        let referenceBlock = (referenceCount + referenceBlocks - 1) / referenceBlocks
        let exampleBlock = max(1, chunk / referenceBlock)
        let scale = 1 / Float(referenceCount)
        let targetsPerRow = targets

        var attributions = [Float](repeating: 0, count: rows * d)
        var contributionSums = [Double](repeating: 0, count: rows)
        var targetSums = [Double](repeating: 0, count: rows)
        // One single-threaded-BLAS region for the whole call: the workers provide the parallelism.
        Parallel.singleThreadedBLAS {
        for rBegin in stride(from: 0, to: referenceCount, by: referenceBlock) {
            let rEnd = min(referenceCount, rBegin + referenceBlock), nr = rEnd - rBegin
            // Each reference block runs forward once, for every example block.
            let referenceTape = record(Array(references[(rBegin * d)..<(rEnd * d)]), rows: nr, from: 0, to: plan.top)
            attributions.withUnsafeMutableBufferPointer { attributionBuffer in
                contributionSums.withUnsafeMutableBufferPointer { sums in
                    targetSums.withUnsafeMutableBufferPointer { targetBuffer in
                        let out = attributionBuffer.baseAddress!, sumOut = sums.baseAddress!, targetOut = targetBuffer.baseAddress!
                        Parallel.forEachChunk(count: rows, chunk: exampleBlock) { _, range, _ in
                            let begin = range.lowerBound, n = range.count
                            let exampleTape = record(Array(x[(begin * d)..<(range.upperBound * d)]), rows: n, from: 0, to: plan.top)
                            var pairs = PairRows(example: [], reference: [])
                            pairs.example.reserveCapacity(n * nr)
                            pairs.reference.reserveCapacity(n * nr)
                            var pairTargets = [Int]()
                            pairTargets.reserveCapacity(n * nr)
                            for i in 0..<n {
                                for r in 0..<nr {
                                    pairs.example.append(i)
                                    pairs.reference.append(r)
                                    pairTargets.append(targetsPerRow[begin + i])
                                }
                            }
                            let m = plan.inputMultipliers(self, examples: exampleTape, references: referenceTape, pairs: pairs, targets: pairTargets)
                            let ends = plan.targetDifferences(self, examples: exampleTape, references: referenceTape, pairs: pairs, targets: pairTargets)
                            let xs = exampleTape.values[0], rs = referenceTape.values[0]
                            m.withUnsafeBufferPointer { mp in
                                for i in 0..<n {
                                    let row = out + (begin + i) * d, xi = i * d
                                    var total: Double = 0, targetTotal: Double = 0
                                    for r in 0..<nr {
                                        let p = i * nr + r, ro = r * d, mo = mp.baseAddress! + p * d
                                        var pairTotal: Float = 0
                                        for k in 0..<d {
                                            let c = mo[k] * (xs[xi + k] - rs[ro + k])
                                            pairTotal += c
                                            row[k] += scale * (multiplyByInputs ? c : mo[k])
                                        }
                                        total += Double(pairTotal)
                                        targetTotal += Double(ends[p])
                                    }
                                    sumOut[begin + i] += total
                                    targetOut[begin + i] += targetTotal
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        let delta = (0..<rows).map { Float((contributionSums[$0] - targetSums[$0]) / Double(referenceCount)) }
        return DeepLiftAttributions(attributions: attributions, delta: delta)
    }
}

/// (example row, reference row) per row of a backward pass; rows index the two forward tapes.
struct PairRows {
    var example: [Int]
    var reference: [Int]
    var count: Int { example.count }
}

/// The rule of an elementwise nonlinearity in one DeepLIFT pass.
enum NonlinearRule {
    case rescale
    case revealCancel
}

extension Activation {
    /// DeepLIFT's Rescale multiplier Δy/Δx, or f'(x⁰) when |Δx| < 1e-7.
    @inline(__always)
    func rescale(input x: Float, reference x0: Float, output y: Float, referenceOutput y0: Float) -> Float {
        let dx = x - x0
        return abs(dx) >= deepLiftNearZero ? (y - y0) / dx : derivative(at: x0, output: y0)
    }
}

/// Max-pooling as a linear map of Δx for one pair: each output o takes `firstWeight·Δx[first] +
/// secondWeight·Δx[second]` (flat in-example indices). `.gradient`: the input's argmax, weight 1;
/// `.crossMax`: the input's argmax with (max(y, y⁰) − y⁰)/Δx and the reference's with (y − max(y, y⁰))/Δx,
/// falling back to the gradient where |Δx| < 1e-7 (Captum's rule).
struct MaxPoolRouting {
    var first: [Int32]
    var firstWeight: [Float]
    var second: [Int32]
    var secondWeight: [Float]
}

/// |W| of a Dense or Conv layer, for the Linear rule's positive/negative split: Δy⁺ − Δy⁻ = |W||Δx|.
enum AbsoluteWeights {
    case dense([Float], outFeatures: Int, inFeatures: Int)
    case network(Network)

    /// |W| v for `rows` rows.
    func apply(_ v: [Float], rows: Int) -> [Float] {
        switch self {
        case .dense(let w, let out, let inp):
            return uninitializedFloats(rows * out) { y in
                v.withUnsafeBufferPointer { vp in
                    w.withUnsafeBufferPointer { wp in
                        BLAS.sgemm(transB: true, m: rows, n: out, k: inp, a: vp.baseAddress!, b: wp.baseAddress!, c: y)
                    }
                }
            }
        case .network(let net):
            return net.apply(layer: 0, to: v, rows: rows, argmax: nil)
        }
    }

    /// |W|ᵀ g for `rows` rows.
    func pullback(_ g: [Float], rows: Int) -> [Float] {
        switch self {
        case .dense(let w, let out, let inp):
            return uninitializedFloats(rows * inp) { y in
                g.withUnsafeBufferPointer { gp in
                    w.withUnsafeBufferPointer { wp in
                        BLAS.sgemm(m: rows, n: inp, k: out, a: gp.baseAddress!, b: wp.baseAddress!, c: y)
                    }
                }
            }
        case .network(let net):
            return net.pullback(layer: 0, g, rows: rows, input: [], output: [], argmax: [])
        }
    }
}

/// Everything a DeepLIFT pass decides once per call: the attributed value, each nonlinearity's rule,
/// where the positive/negative split is needed, and |W| for the layers that split. Decided by walks of
/// the propagation driver, so a graph is planned exactly as a chain.
struct DeepLiftPlan {
    /// The attributed value: the logits a final Softmax reads, else the output. Nodes 0..<top are recorded
    /// (in a chain: layers 0..<top).
    let top: Int
    let softmax: Bool
    let maxPool: MaxPoolRule
    /// Per node: the rule of an elementwise nonlinearity on a path to `top` (nil for other kinds and for
    /// nodes nothing attributed reads).
    let nonlinear: [NonlinearRule?]
    /// splitAt[v]: the pair Δ⁺ − Δ⁻ (written s) is needed at value v (v in 0...top). A value read by several
    /// nodes has one s.
    let splitAt: [Bool]
    /// Per Dense/Conv node whose output is split: |W| (Dense), or a one-layer network with weights |W|
    /// and no bias (Conv).
    let absolute: [AbsoluteWeights?]
    /// The last RevealCancel node: the split pass runs nodes 0...lastRevealCancel.
    let lastRevealCancel: Int?

    init(_ net: Network, rule: DeepLiftRule, maxPool: MaxPoolRule) throws {
        softmax = net.endsWithSoftmax
        top = softmax ? net.input(of: net.layers.count - 1) : net.layers.count
        self.maxPool = maxPool
        // Genomics: every value carries the rule its nearest Dense (RevealCancel) or Conv (Rescale) upstream
        // decides, followed along the first input of each node. For add and concat that is the first input
        // — the residual body (not the skip connection) when written `add(body, skip)` as in torch's
        // `out = block(x) + x`; for concat, the first part. Nothing upstream: Rescale.
        let nearest: [NonlinearRule??]
        switch rule {
        case .rescale, .revealCancel:
            nearest = []
        case .genomics:
            nearest = net.walkForward(NonlinearRule?.none, from: 0, to: top, keep: true) { i, reads -> NonlinearRule? in
                switch net.layers[i] {
                case .dense: .revealCancel
                case .conv1d, .conv2d, .lstm: .rescale
                case .embedding: nil
                case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                     .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat: reads[0]
                }
            }
        }
        // Backwards from the attributed value: s is needed at the input of an RC node, and below it through
        // every node that propagates the split (all but Dense/Conv, which recompute it from the total Δx of
        // their input); add and concat need it at every input. Fan-out: needed by any reader.
        var rules = [NonlinearRule?](repeating: nil, count: net.layers.count)
        var split = [Bool](repeating: false, count: top + 1)
        var absolute = [AbsoluteWeights?](repeating: nil, count: net.layers.count)
        var lastRC: Int? = nil
        var failure: Error? = nil
        let atInput = net.walkBackward(from: top, to: 0, seed: false, node: { i, needOut -> [Bool] in
            split[i + 1] = needOut
            switch net.layers[i] {
            case .dense(let l):
                if needOut {
                    let magnitudes = uninitializedFloats(l.weight.count) { w in
                        l.weight.withUnsafeBufferPointer { for j in $0.indices { w[j] = abs($0[j]) } }
                    }
                    absolute[i] = .dense(magnitudes, outFeatures: l.outFeatures, inFeatures: l.inFeatures)
                }
                return [false]
            case .conv1d(let c), .conv2d(let c):
                if needOut {
                    do {
                        let w = try Layer.Convolution(weight: c.weight.map(abs), bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                                      kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
                        let layer: Layer = c.kernel.count == 1 ? .conv1d(w) : .conv2d(w)
                        absolute[i] = .network(try Network(inputShape: net.shapes[net.input(of: i)], layers: [layer]))
                    } catch { failure = error }
                }
                return [false]
            case .lstm:
                if needOut {
                    failure = SwiftAttrError.invalid("deeplift: RevealCancel after an LSTM (layer \(i)) is not supported: the LSTM's output has no positive/negative split; use rule 'rescale', or 'genomics' with a Dense before the RevealCancel nonlinearity")
                }
                return [false]
            case .embedding:
                return [false]
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let decided: NonlinearRule = switch rule {
                case .rescale: .rescale
                case .revealCancel: .revealCancel
                case .genomics: nearest[net.input(of: i)]! ?? .rescale
                }
                rules[i] = decided
                guard decided == .revealCancel else { return [needOut] }
                if lastRC == nil { lastRC = i }
                return [true]
            case .add, .concat:
                return net.inputs[i].map { _ in needOut }
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .softmax:
                return [needOut]
            }
        }, accumulate: { $0 = $0 || $1 })
        if let failure { throw failure }
        split[0] = atInput ?? false
        nonlinear = rules
        splitAt = split
        self.absolute = absolute
        lastRevealCancel = lastRC
    }

    /// Pairs per chunk: `requested` when given; otherwise as many as fit a budget of 2²¹ floats (8 MB) per
    /// worker (two tape rows per pair plus the backward's working set), and no more than an even share of
    /// `rows` pairs over the workers, so every worker has a chunk.
    func pairChunk(_ net: Network, requested: Int?, rows: Int) throws -> Int {
        if let requested {
            try Check.positive(requested, "internal_batch_size")
            return requested
        }
        let share = (rows + Parallel.workerCount - 1) / Parallel.workerCount
        return max(1, min(share, budgetChunk(net)))
    }

    private func budgetChunk(_ net: Network) -> Int {
        var tape = 0
        for v in 0...top { tape += net.size(at: v) }
        var work = 0
        for i in 0..<top {
            var w = 4 * (net.inputs[i].reduce(0) { $0 + net.size(at: $1) } + net.size(at: i + 1))
            switch net.layers[i] {
            case .conv1d(let c), .conv2d(let c):
                let g = WindowGeometry(convolution: c, input: net.shapes[net.input(of: i)])
                w += 2 * g.outputPlane * g.patchSize
            case .maxPool1d, .maxPool2d:
                w += 4 * net.size(at: i + 1)
            case .lstm(let l):
                // Two step records per pair, the coefficients and the gate cotangents.
                w += 34 * net.shapes[net.input(of: i)][0] * l.hiddenSize
            case .embedding:
                break
            case .dense, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu, .softplus, .sigmoid,
                 .tanh, .softmax, .batchNorm, .dropout, .add, .concat:
                break
            }
            work = max(work, w)
        }
        var stored = 0
        for i in 0..<top where nonlinear[i] == .revealCancel { stored += 2 * net.size(at: net.input(of: i)) }
        return max(1, (1 << 21) / max(1, 2 * tape + work + stored))
    }

    // MARK: forward quantities per pair

    /// Δt per pair: f_t(x) − f_t(x⁰) at the attributed output (minus the mean over classes for a Softmax).
    func targetDifferences(_ net: Network, examples: Network.Tape, references: Network.Tape, pairs: PairRows, targets: [Int]) -> [Float] {
        let out = net.size(at: top)
        let fx = examples.values[top], fr = references.values[top]
        return (0..<pairs.count).map { p in
            let xo = pairs.example[p] * out, ro = pairs.reference[p] * out
            var value = fx[xo + targets[p]] - fr[ro + targets[p]]
            if softmax {
                var mean: Double = 0
                for j in 0..<out { mean += Double(fx[xo + j] - fr[ro + j]) }
                value -= Float(mean / Double(out))
            }
            return value
        }
    }

    /// Δx (or |Δx|) at value v for every pair (pairs × size(at: v)).
    func differences(_ net: Network, at v: Int, examples: Network.Tape, references: Network.Tape, pairs: PairRows, absolute: Bool = false) -> [Float] {
        let n = net.size(at: v)
        let xs = examples.values[v], rs = references.values[v]
        return uninitializedFloats(pairs.count * n) { out in
            xs.withUnsafeBufferPointer { xp in
                rs.withUnsafeBufferPointer { rp in
                    for p in 0..<pairs.count {
                        let a = xp.baseAddress! + pairs.example[p] * n, b = rp.baseAddress! + pairs.reference[p] * n
                        let o = out + p * n
                        if absolute {
                            for j in 0..<n { o[j] = abs(a[j] - b[j]) }
                        } else {
                            for j in 0..<n { o[j] = a[j] - b[j] }
                        }
                    }
                }
            }
        }
    }

    /// The max-pooling routing of node i for every pair (see ``MaxPoolRouting``).
    func routing(_ net: Network, node i: Int, examples: Network.Tape, references: Network.Tape, pairs: PairRows) -> MaxPoolRouting {
        let v = net.input(of: i)
        let n = net.size(at: v), o = net.size(at: i + 1), count = pairs.count * o
        var r = MaxPoolRouting(first: [Int32](repeating: 0, count: count), firstWeight: [Float](repeating: 1, count: count),
                               second: [Int32](repeating: 0, count: count), secondWeight: [Float](repeating: 0, count: count))
        let xs = examples.values[v], rs = references.values[v]
        let ys = examples.values[i + 1], y0s = references.values[i + 1]
        let xArg = examples.argmax[i], rArg = references.argmax[i]
        let crossMax = maxPool == .crossMax
        r.first.withUnsafeMutableBufferPointer { f in
            r.firstWeight.withUnsafeMutableBufferPointer { fw in
                r.second.withUnsafeMutableBufferPointer { s in
                    r.secondWeight.withUnsafeMutableBufferPointer { sw in
                        for p in 0..<pairs.count {
                            let e = pairs.example[p], ref = pairs.reference[p]
                            for j in 0..<o {
                                let q = p * o + j
                                let j1 = xArg[e * o + j], j2 = rArg[ref * o + j]
                                f[q] = j1
                                s[q] = j2
                                guard crossMax else { continue }
                                let y = ys[e * o + j], y0 = y0s[ref * o + j], top = max(y, y0)
                                let dx1 = xs[e * n + Int(j1)] - rs[ref * n + Int(j1)]
                                if j1 == j2 {
                                    fw[q] = 1
                                    continue
                                }
                                let dx2 = xs[e * n + Int(j2)] - rs[ref * n + Int(j2)]
                                fw[q] = abs(dx1) >= deepLiftNearZero ? (top - y0) / dx1 : 1
                                sw[q] = abs(dx2) >= deepLiftNearZero ? (y - top) / dx2 : 0
                            }
                        }
                    }
                }
            }
        }
        return r
    }

    /// Applies a routing forwards: out[o] = w₁·v[first] + w₂·v[second] per pair.
    func route(_ r: MaxPoolRouting, _ v: [Float], pairs: Int, inSize n: Int, outSize o: Int) -> [Float] {
        uninitializedFloats(pairs * o) { out in
            for p in 0..<pairs {
                for j in 0..<o {
                    let q = p * o + j
                    out[q] = r.firstWeight[q] * v[p * n + Int(r.first[q])] + r.secondWeight[q] * v[p * n + Int(r.second[q])]
                }
            }
        }
    }

    /// Applies a routing's transpose: in[first] += w₁·g[o], in[second] += w₂·g[o] per pair.
    func routeBack(_ r: MaxPoolRouting, _ g: [Float], pairs: Int, inSize n: Int, outSize o: Int) -> [Float] {
        var result = [Float](repeating: 0, count: pairs * n)
        result.withUnsafeMutableBufferPointer { out in
            g.withUnsafeBufferPointer { gp in
                for p in 0..<pairs {
                    let base = out.baseAddress! + p * n
                    for j in 0..<o {
                        let q = p * o + j, v = gp[q]
                        base[Int(r.first[q])] += r.firstWeight[q] * v
                        base[Int(r.second[q])] += r.secondWeight[q] * v
                    }
                }
            }
        }
        return result
    }

    /// The positive/negative split pass (Linear rule with the split, then RevealCancel), a forward walk of
    /// s = Δ⁺ − Δ⁻ per value (nil where not needed): per pair, for every RevealCancel node i, its
    /// multipliers (m⁺, m⁻) = (Δy⁺/Δx⁺, Δy⁻/Δx⁻). Add is the linear layer [I I] over already-split inputs,
    /// so its s is the sum of theirs; concat's s is theirs concatenated.
    func revealCancelMultipliers(_ net: Network, examples: Network.Tape, references: Network.Tape, pairs: PairRows) -> [Int: (plus: [Float], minus: [Float])] {
        guard let last = lastRevealCancel else { return [:] }
        var result = [Int: (plus: [Float], minus: [Float])]()
        let count = pairs.count
        let atInput: [Float]? = splitAt[0] ? differences(net, at: 0, examples: examples, references: references, pairs: pairs, absolute: true) : nil
        _ = net.walkForward(atInput, from: 0, to: last + 1, keep: false) { i, reads -> [Float]? in
            let needOut = splitAt[i + 1]
            let rc = nonlinear[i] == .revealCancel
            guard needOut || rc else { return nil }
            switch net.layers[i] {
            case .dense, .conv1d, .conv2d:
                let magnitude = differences(net, at: net.input(of: i), examples: examples, references: references, pairs: pairs, absolute: true)
                return absolute[i]!.apply(magnitude, rows: count)
            case .batchNorm(let b):
                let n = net.size(at: net.input(of: i)), plane = n / b.channels, v = reads[0]!
                return uninitializedFloats(count * n) { out in
                    for p in 0..<count {
                        for c in 0..<b.channels {
                            let a = abs(b.scale[c]), off = p * n + c * plane
                            for j in 0..<plane { out[off + j] = a * v[off + j] }
                        }
                    }
                }
            case .avgPool1d, .avgPool2d, .globalAvgPool:
                return net.apply(layer: i, to: reads[0]!, rows: count, argmax: nil)
            case .flatten, .reshape, .dropout:
                return reads[0]
            case .add, .concat:
                return net.applyNode(i, reads.map { $0! }, rows: count, argmax: nil)
            case .maxPool1d, .maxPool2d:
                let r = routing(net, node: i, examples: examples, references: references, pairs: pairs)
                return route(r, reads[0]!, pairs: count, inSize: net.size(at: net.input(of: i)), outSize: net.size(at: i + 1))
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let f = Activation(net.layers[i])!
                let v = net.input(of: i), n = net.size(at: v)
                let xs = examples.values[v], rs = references.values[v], ys = examples.values[i + 1], y0s = references.values[i + 1]
                let sIn = reads[0]!
                var next = [Float](repeating: 0, count: needOut ? count * n : 0)
                var plus = [Float](repeating: 0, count: rc ? count * n : 0)
                var minus = [Float](repeating: 0, count: rc ? count * n : 0)
                next.withUnsafeMutableBufferPointer { sOut in
                    plus.withUnsafeMutableBufferPointer { mp in
                        minus.withUnsafeMutableBufferPointer { mm in
                            for p in 0..<count {
                                let e = pairs.example[p] * n, ref = pairs.reference[p] * n
                                for j in 0..<n {
                                    let x = xs[e + j], x0 = rs[ref + j], y = ys[e + j], y0 = y0s[ref + j]
                                    let q = p * n + j
                                    if rc {
                                        let dx = x - x0, sj = sIn[q]
                                        let dPlus = 0.5 * (dx + sj), dMinus = 0.5 * (dx - sj)
                                        let a = f.value(x0 + dPlus), b = f.value(x0 + dMinus)
                                        let yPlus = 0.5 * ((a - y0) + (y - b)), yMinus = 0.5 * ((b - y0) + (y - a))
                                        let slope = f.derivative(at: x0, output: y0)
                                        mp[q] = abs(dPlus) >= deepLiftNearZero ? yPlus / dPlus : slope
                                        mm[q] = abs(dMinus) >= deepLiftNearZero ? yMinus / dMinus : slope
                                        if needOut { sOut[q] = yPlus - yMinus }
                                    } else {
                                        sOut[q] = f.rescale(input: x, reference: x0, output: y, referenceOutput: y0) * sIn[q]
                                    }
                                }
                            }
                        }
                    }
                }
                if rc { result[i] = (plus, minus) }
                return needOut ? next : nil
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, which DeepLIFT does not propagate through")
            case .embedding, .lstm:
                preconditionFailure("the plan never asks for the split through an \(net.layers[i].name) (it throws instead)")
            }
        }
        return result
    }

    /// The LSTM's DeepLIFT multipliers per pair, in the layout of ``Network/lstmGradientCoefficients``
    /// (one row of 10H per (pair p, step t), row p·L + t), from the step records of the example and of
    /// the reference: s = Rescale multipliers (Δσ/Δz, Δtanh/Δz; the derivative at the reference when
    /// |Δz| < 1e-7), and for each product the Shapley averages a_o = mean of tanh c_t, a_c = ō·(Δtanh c/Δc),
    /// a_i = ḡ, a_g = ī, a_f = mean of c_{t−1}, a_carry = f̄.
    func lstmCoefficients(_ l: Layer.LSTM, examples: [Float], references: [Float], pairs: PairRows, length L: Int) -> [Float] {
        let H = l.hiddenSize, W = 10 * H
        let sigmoid = Activation(Activation.Kind.sigmoid), tanh = Activation(Activation.Kind.tanh)
        return uninitializedFloats(pairs.count * L * W) { k in
            examples.withUnsafeBufferPointer { xp in
                references.withUnsafeBufferPointer { rp in
                    for p in 0..<pairs.count {
                        for t in 0..<L {
                            let a = xp.baseAddress! + (pairs.example[p] * L + t) * W, b = rp.baseAddress! + (pairs.reference[p] * L + t) * W
                            let out = k + (p * L + t) * W
                            for j in 0..<H {
                                for gate in 0..<4 {
                                    let f = gate == 2 ? tanh : sigmoid, q = gate * H + j
                                    out[q] = f.rescale(input: a[q], reference: b[q], output: a[4 * H + q], referenceOutput: b[4 * H + q])
                                }
                                let c = a[8 * H + j], c0 = b[8 * H + j], tc = _tanh(c), tc0 = _tanh(c0)
                                let o = 0.5 * (a[7 * H + j] + b[7 * H + j])
                                out[4 * H + j] = 0.5 * (tc + tc0)
                                out[5 * H + j] = o * tanh.rescale(input: c, reference: c0, output: tc, referenceOutput: tc0)
                                out[6 * H + j] = 0.5 * (a[6 * H + j] + b[6 * H + j])
                                out[7 * H + j] = 0.5 * (a[4 * H + j] + b[4 * H + j])
                                out[8 * H + j] = t == 0 ? 0 : 0.5 * (a[8 * H + j - W] + b[8 * H + j - W])
                                out[9 * H + j] = 0.5 * (a[5 * H + j] + b[5 * H + j])
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: backward pass of multipliers

    /// The multipliers at one value: m⁺ for Δx⁺ and m⁻ for Δx⁻ (nil: m⁻ = m⁺, as everywhere except
    /// between a RevealCancel node and the Dense/Conv nodes below it).
    typealias Multipliers = (plus: [Float], minus: [Float]?)

    /// Input multipliers (pairs × inputSize) of output `targets[p]` for every pair: the chain rule over the
    /// rules of every node, a backward walk from the seed at the attributed value down to the input (or to
    /// value `start`, every earlier value held fixed: a layer's multipliers, pairs × size(at: start)).
    /// Add passes (m⁺, m⁻) to every input and concat gives each input its slice (both linear with weights
    /// 0 or 1, so the positive and negative parts keep their multipliers); where a value fans out, its
    /// readers' multipliers are summed (m⁻ ?? m⁺ where only some readers carry a separate m⁻).
    func inputMultipliers(_ net: Network, examples: Network.Tape, references: Network.Tape, pairs: PairRows, targets: [Int], to start: Int = 0) -> [Float] {
        let count = pairs.count
        let revealCancel = revealCancelMultipliers(net, examples: examples, references: references, pairs: pairs)
        let out = net.size(at: top)
        // Seed: e_t, or e_t − 1/n for a final Softmax (contributions minus their mean over classes).
        var seed = [Float](repeating: softmax ? -1 / Float(out) : 0, count: count * out)
        for p in 0..<count { seed[p * out + targets[p]] += 1 }
        let atInput = net.walkBackward(from: top, to: start, seed: Multipliers(seed, nil), holdingFixed: !net.cut[start], node: { i, signal -> [Multipliers] in
            var (plus, minus) = signal
            switch net.layers[i] {
            case .add, .concat:
                let p = net.pullbackNode(i, plus, rows: count, reads: [], output: [], argmax: [])
                let m = minus.map { net.pullbackNode(i, $0, rows: count, reads: [], output: [], argmax: []) }
                return p.indices.map { (p[$0], m?[$0]) }
            case .dense, .conv1d, .conv2d:
                if let m = minus {
                    let n = net.size(at: net.input(of: i))
                    let sum = zipMap(plus, m, +), difference = zipMap(plus, m, -)
                    let gSum = net.pullback(layer: i, sum, rows: count, input: [], output: [], argmax: [])
                    let gDifference = absolute[i]!.pullback(difference, rows: count)
                    let dx = differences(net, at: net.input(of: i), examples: examples, references: references, pairs: pairs)
                    plus = uninitializedFloats(count * n) { r in
                        for q in 0..<(count * n) {
                            let sign: Float = dx[q] > 0 ? 1 : (dx[q] < 0 ? -1 : 0)
                            r[q] = 0.5 * (gSum[q] + sign * gDifference[q])
                        }
                    }
                    minus = nil
                } else {
                    plus = net.pullback(layer: i, plus, rows: count, input: [], output: [], argmax: [])
                }
            case .batchNorm(let b):
                if let m = minus {
                    let n = net.size(at: net.input(of: i)), plane = n / b.channels
                    var newPlus = [Float](repeating: 0, count: count * n), newMinus = newPlus
                    for p in 0..<count {
                        for c in 0..<b.channels {
                            let a = b.scale[c], off = p * n + c * plane
                            for j in 0..<plane {
                                if a >= 0 {
                                    newPlus[off + j] = a * plus[off + j]
                                    newMinus[off + j] = a * m[off + j]
                                } else {
                                    newPlus[off + j] = a * m[off + j]
                                    newMinus[off + j] = a * plus[off + j]
                                }
                            }
                        }
                    }
                    plus = newPlus
                    minus = newMinus
                } else {
                    plus = net.pullback(layer: i, plus, rows: count, input: [], output: [], argmax: [])
                }
            case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout:
                plus = net.pullback(layer: i, plus, rows: count, input: [], output: [], argmax: [])
                minus = minus.map { net.pullback(layer: i, $0, rows: count, input: [], output: [], argmax: []) }
            case .maxPool1d, .maxPool2d:
                let r = routing(net, node: i, examples: examples, references: references, pairs: pairs)
                let n = net.size(at: net.input(of: i)), o = net.size(at: i + 1)
                plus = routeBack(r, plus, pairs: count, inSize: n, outSize: o)
                minus = minus.map { routeBack(r, $0, pairs: count, inSize: n, outSize: o) }
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                if let (mPlus, mMinus) = revealCancel[i] {
                    let m = minus ?? plus
                    minus = zipMap(m, mMinus, *)
                    plus = zipMap(plus, mPlus, *)
                } else {
                    let f = Activation(net.layers[i])!
                    let v = net.input(of: i), n = net.size(at: v)
                    let xs = examples.values[v], rs = references.values[v], ys = examples.values[i + 1], y0s = references.values[i + 1]
                    let factors = uninitializedFloats(count * n) { r in
                        xs.withUnsafeBufferPointer { xp in
                            rs.withUnsafeBufferPointer { rp in
                                ys.withUnsafeBufferPointer { yp in
                                    y0s.withUnsafeBufferPointer { y0p in
                                        for p in 0..<count {
                                            let e = pairs.example[p] * n, ref = pairs.reference[p] * n, row = r + p * n
                                            for j in 0..<n {
                                                row[j] = f.rescale(input: xp[e + j], reference: rp[ref + j], output: yp[e + j], referenceOutput: y0p[ref + j])
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    plus = zipMap(plus, factors, *)
                    minus = minus.map { zipMap($0, factors, *) }
                }
            case .lstm(let l):
                let L = net.shapes[net.input(of: i)][0]
                let k = lstmCoefficients(l, examples: examples.steps[i - examples.start], references: references.steps[i - references.start],
                                         pairs: pairs, length: L)
                plus = net.lstmBackward(l, coefficients: k, plus, rows: count, length: L)
                minus = minus.map { net.lstmBackward(l, coefficients: k, $0, rows: count, length: L) }
            case .embedding:
                // Ids are not attributed through (token networks are attributed at the embedding output).
                plus = [Float](repeating: 0, count: count * net.size(at: 0))
                minus = nil
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, which DeepLIFT does not propagate through")
            }
            return [(plus, minus)]
        }, accumulate: { a, b in
            if a.minus != nil || b.minus != nil {
                var m = a.minus ?? a.plus
                addInPlace(&m, b.minus ?? b.plus)
                a.minus = m
            }
            addInPlace(&a.plus, b.plus)
        })
        let width = net.size(at: start)
        guard let (plus, minus) = atInput else { return [Float](repeating: 0, count: count * width) }
        // At the input, Δx⁺ and Δx⁻ are the parts of Δx: each input takes the multiplier of its sign.
        guard let m = minus else { return plus }
        let dx = differences(net, at: start, examples: examples, references: references, pairs: pairs)
        return uninitializedFloats(count * width) { r in
            for q in 0..<(count * width) {
                r[q] = dx[q] > 0 ? plus[q] : (dx[q] < 0 ? m[q] : 0.5 * (plus[q] + m[q]))
            }
        }
    }
}
