/// DeepLIFT (Shrikumar, Greenside, Kundaje 2017, "Learning Important Features Through Propagating
/// Activation Differences") and DeepSHAP (its average over a distribution of references).
///
/// Every neuron's difference from reference Δy = y − y⁰ is explained by contributions C that sum to it
/// (summation-to-delta). Multipliers m = C/Δx propagate backwards by the chain rule
/// m_{x,t} = Σ_y m_{x,y} m_{y,t}, so one backward pass of multipliers gives every input's contribution
/// C = m·Δx to the target. This file holds the rule of every layer kind (§3.5 of the paper):
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
/// - A final Softmax (§3.6): attribute the logits and subtract from each contribution its mean over
///   the classes, i.e. seed the logits with e_t − 1/n.
///
/// Everything is batched: the inputs and their references run forward stacked (one GEMM per layer), and
/// the multipliers of a chunk of (example, reference) pairs run backward as one GEMM per layer.
public enum DeepLiftRule: Int32, Sendable, CaseIterable {
    /// Rescale after every nonlinearity (Captum's DeepLift).
    case rescale = 0
    /// RevealCancel after every nonlinearity.
    case revealCancel = 1
    /// The authors' genomics default: Rescale after convolutions, RevealCancel after dense layers (the
    /// nearest preceding Dense or Conv decides; a nonlinearity with neither before it uses Rescale).
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
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let d = inputSize
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
        let chunk = try plan.pairChunk(self, requested: internalBatchSize, rows: rows)
        let targetsPerRow = targets

        var attributions = [Float](repeating: 0, count: rows * d)
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
                    let m = plan.inputMultipliers(self, examples: tape, references: tape, pairs: pairs, targets: chunkTargets)
                    let ends = plan.targetDifferences(self, examples: tape, references: tape, pairs: pairs, targets: chunkTargets)
                    let input = tape.values[0]
                    for p in 0..<n {
                        let row = out + (begin + p) * d, xo = p * d, ro = pairs.reference[p] * d
                        var total: Double = 0
                        for k in 0..<d {
                            let c = m[p * d + k] * (input[xo + k] - input[ro + k])
                            total += Double(c)
                            row[k] = multiplyByInputs ? c : m[p * d + k]
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

/// Everything a DeepLIFT pass decides once per call: the attributed layers, each nonlinearity's rule,
/// where the positive/negative split is needed, and |W| for the layers that split.
struct DeepLiftPlan {
    /// Layers 0..<top are attributed; top is the index of a final Softmax, or layers.count.
    let top: Int
    let softmax: Bool
    let maxPool: MaxPoolRule
    /// Per layer: the rule of an elementwise nonlinearity (nil for other kinds).
    let nonlinear: [NonlinearRule?]
    /// splitAt[k]: the pair Δ⁺ − Δ⁻ (written s) is needed at the input of layer k (k in 0...top).
    let splitAt: [Bool]
    /// Per Dense/Conv layer whose output is split: |W| (Dense), or a one-layer network with weights |W|
    /// and no bias (Conv).
    let absolute: [AbsoluteWeights?]
    let lastRevealCancel: Int?

    static let chainOnly = "DeepLIFT plans are made for chains only (checked in init)"

    init(_ net: Network, rule: DeepLiftRule, maxPool: MaxPoolRule) throws {
        guard net.isChain else {
            throw SwiftAttrError.invalid("model: DeepLIFT does not yet support networks with add or concat nodes")
        }
        softmax = net.endsWithSoftmax
        top = softmax ? net.layers.count - 1 : net.layers.count
        self.maxPool = maxPool
        var rules = [NonlinearRule?](repeating: nil, count: net.layers.count)
        for (k, layer) in net.layers.enumerated() where Activation(layer) != nil {
            switch rule {
            case .rescale: rules[k] = .rescale
            case .revealCancel: rules[k] = .revealCancel
            case .genomics:
                var j = k - 1
                var decided: NonlinearRule = .rescale
                search: while j >= 0 {
                    switch net.layers[j] {
                    case .dense: decided = .revealCancel; break search
                    case .conv1d, .conv2d: decided = .rescale; break search
                    case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .relu, .leakyReLU,
                         .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout: j -= 1
                    case .add, .concat: preconditionFailure(Self.chainOnly)
                    }
                }
                rules[k] = decided
            }
        }
        nonlinear = rules
        // s is needed at the input of an RC layer, and below it through every layer that propagates the
        // split (all but Dense/Conv, which recompute it from the total Δx of their input).
        var split = [Bool](repeating: false, count: top + 1)
        var absolute = [AbsoluteWeights?](repeating: nil, count: net.layers.count)
        var lastRC: Int? = nil
        for k in stride(from: top - 1, through: 0, by: -1) {
            let needOut = split[k + 1]
            switch net.layers[k] {
            case .dense(let l):
                if needOut {
                    let magnitudes = uninitializedFloats(l.weight.count) { w in
                        l.weight.withUnsafeBufferPointer { for j in $0.indices { w[j] = abs($0[j]) } }
                    }
                    absolute[k] = .dense(magnitudes, outFeatures: l.outFeatures, inFeatures: l.inFeatures)
                }
            case .conv1d(let c), .conv2d(let c):
                if needOut {
                    let w = try Layer.Convolution(weight: c.weight.map(abs), bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                                  kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
                    let layer: Layer = c.kernel.count == 1 ? .conv1d(w) : .conv2d(w)
                    absolute[k] = .network(try Network(inputShape: net.shapes[k], layers: [layer]))
                }
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                if rules[k] == .revealCancel {
                    split[k] = true
                    if lastRC == nil { lastRC = k }
                } else {
                    split[k] = needOut
                }
            case .add, .concat:
                preconditionFailure(Self.chainOnly)
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .batchNorm, .dropout, .softmax:
                split[k] = needOut
            }
        }
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
        for k in 0...top { tape += net.size(at: k) }
        var work = 0
        for k in 0..<top {
            var w = 4 * (net.size(at: k) + net.size(at: k + 1))
            switch net.layers[k] {
            case .conv1d(let c), .conv2d(let c):
                let g = WindowGeometry(convolution: c, input: net.shapes[k])
                w += 2 * g.outputPlane * g.patchSize
            case .maxPool1d, .maxPool2d:
                w += 4 * net.size(at: k + 1)
            case .dense, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .relu, .leakyReLU, .elu, .softplus, .sigmoid,
                 .tanh, .softmax, .batchNorm, .dropout, .add, .concat:
                break
            }
            work = max(work, w)
        }
        var stored = 0
        for k in 0..<top where nonlinear[k] == .revealCancel { stored += 2 * net.size(at: k) }
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

    /// Δx at the input of layer k for every pair (pairs × size(at: k)).
    func differences(_ net: Network, at k: Int, examples: Network.Tape, references: Network.Tape, pairs: PairRows, absolute: Bool = false) -> [Float] {
        let n = net.size(at: k)
        let xs = examples.values[k], rs = references.values[k]
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

    /// The max-pooling routing of layer k for every pair (see ``MaxPoolRouting``).
    func routing(_ net: Network, layer k: Int, examples: Network.Tape, references: Network.Tape, pairs: PairRows) -> MaxPoolRouting {
        let n = net.size(at: k), o = net.size(at: k + 1), count = pairs.count * o
        var r = MaxPoolRouting(first: [Int32](repeating: 0, count: count), firstWeight: [Float](repeating: 1, count: count),
                               second: [Int32](repeating: 0, count: count), secondWeight: [Float](repeating: 0, count: count))
        let xs = examples.values[k], rs = references.values[k]
        let ys = examples.values[k + 1], y0s = references.values[k + 1]
        let xArg = examples.argmax[k], rArg = references.argmax[k]
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

    /// The positive/negative split pass (Linear rule with the split, then RevealCancel): per pair, for every
    /// RevealCancel layer k, its multipliers (m⁺, m⁻) = (Δy⁺/Δx⁺, Δy⁻/Δx⁻).
    func revealCancelMultipliers(_ net: Network, examples: Network.Tape, references: Network.Tape, pairs: PairRows) -> [Int: (plus: [Float], minus: [Float])] {
        guard let last = lastRevealCancel else { return [:] }
        var result = [Int: (plus: [Float], minus: [Float])]()
        let count = pairs.count
        // s = Δ⁺ − Δ⁻ at the input of layer k (nil where not needed).
        var s: [Float]? = splitAt[0] ? differences(net, at: 0, examples: examples, references: references, pairs: pairs, absolute: true) : nil
        for k in 0...last {
            let n = net.size(at: k), o = net.size(at: k + 1)
            let needOut = splitAt[k + 1]
            let rc = nonlinear[k] == .revealCancel
            guard needOut || rc else { s = nil; continue }
            switch net.layers[k] {
            case .dense, .conv1d, .conv2d:
                let magnitude = differences(net, at: k, examples: examples, references: references, pairs: pairs, absolute: true)
                s = absolute[k]!.apply(magnitude, rows: count)
            case .batchNorm(let b):
                let plane = n / b.channels, v = s!
                s = uninitializedFloats(count * n) { out in
                    for p in 0..<count {
                        for c in 0..<b.channels {
                            let a = abs(b.scale[c]), off = p * n + c * plane
                            for j in 0..<plane { out[off + j] = a * v[off + j] }
                        }
                    }
                }
            case .avgPool1d, .avgPool2d, .globalAvgPool:
                s = net.apply(layer: k, to: s!, rows: count, argmax: nil)
            case .flatten, .dropout:
                break
            case .maxPool1d, .maxPool2d:
                let r = routing(net, layer: k, examples: examples, references: references, pairs: pairs)
                s = route(r, s!, pairs: count, inSize: n, outSize: o)
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let f = Activation(net.layers[k])!
                let xs = examples.values[k], rs = references.values[k], ys = examples.values[k + 1], y0s = references.values[k + 1]
                let sIn = s!
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
                if rc { result[k] = (plus, minus) }
                s = needOut ? next : nil
            case .add, .concat:
                preconditionFailure(DeepLiftPlan.chainOnly)
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, which DeepLIFT does not propagate through")
            }
        }
        return result
    }

    // MARK: backward pass of multipliers

    /// Input multipliers (pairs × inputSize) of output `targets[p]` for every pair: the chain rule over the
    /// rules of every layer, from the seed at the attributed output down to the input.
    func inputMultipliers(_ net: Network, examples: Network.Tape, references: Network.Tape, pairs: PairRows, targets: [Int]) -> [Float] {
        let count = pairs.count
        let revealCancel = revealCancelMultipliers(net, examples: examples, references: references, pairs: pairs)
        let out = net.size(at: top)
        // Seed: e_t, or e_t − 1/n for a final Softmax (contributions minus their mean over classes).
        var plus = [Float](repeating: softmax ? -1 / Float(out) : 0, count: count * out)
        for p in 0..<count { plus[p * out + targets[p]] += 1 }
        // m⁻ differs from m⁺ only between a RevealCancel layer and the Dense/Conv below it.
        var minus: [Float]? = nil
        for k in stride(from: top - 1, through: 0, by: -1) {
            let n = net.size(at: k), o = net.size(at: k + 1)
            switch net.layers[k] {
            case .dense, .conv1d, .conv2d:
                if let m = minus {
                    let sum = zipMap(plus, m, +), difference = zipMap(plus, m, -)
                    let gSum = net.pullback(layer: k, sum, rows: count, input: [], output: [], argmax: [])
                    let gDifference = absolute[k]!.pullback(difference, rows: count)
                    let dx = differences(net, at: k, examples: examples, references: references, pairs: pairs)
                    plus = uninitializedFloats(count * n) { r in
                        for q in 0..<(count * n) {
                            let sign: Float = dx[q] > 0 ? 1 : (dx[q] < 0 ? -1 : 0)
                            r[q] = 0.5 * (gSum[q] + sign * gDifference[q])
                        }
                    }
                    minus = nil
                } else {
                    plus = net.pullback(layer: k, plus, rows: count, input: [], output: [], argmax: [])
                }
            case .batchNorm(let b):
                if let m = minus {
                    let plane = n / b.channels
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
                    plus = net.pullback(layer: k, plus, rows: count, input: [], output: [], argmax: [])
                }
            case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .dropout:
                plus = net.pullback(layer: k, plus, rows: count, input: [], output: [], argmax: [])
                minus = minus.map { net.pullback(layer: k, $0, rows: count, input: [], output: [], argmax: []) }
            case .maxPool1d, .maxPool2d:
                let r = routing(net, layer: k, examples: examples, references: references, pairs: pairs)
                plus = routeBack(r, plus, pairs: count, inSize: n, outSize: o)
                minus = minus.map { routeBack(r, $0, pairs: count, inSize: n, outSize: o) }
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                if let (mPlus, mMinus) = revealCancel[k] {
                    let m = minus ?? plus
                    minus = zipMap(m, mMinus, *)
                    plus = zipMap(plus, mPlus, *)
                } else {
                    let f = Activation(net.layers[k])!
                    let xs = examples.values[k], rs = references.values[k], ys = examples.values[k + 1], y0s = references.values[k + 1]
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
            case .add, .concat:
                preconditionFailure(DeepLiftPlan.chainOnly)
            case .softmax:
                preconditionFailure("a Softmax is only ever the final layer, which DeepLIFT does not propagate through")
            }
        }
        // At the input, Δx⁺ and Δx⁻ are the parts of Δx: each input takes the multiplier of its sign.
        guard let m = minus else { return plus }
        let dx = differences(net, at: 0, examples: examples, references: references, pairs: pairs)
        return uninitializedFloats(count * net.inputSize) { r in
            for q in 0..<(count * net.inputSize) {
                r[q] = dx[q] > 0 ? plus[q] : (dx[q] < 0 ? m[q] : 0.5 * (plus[q] + m[q]))
            }
        }
    }
}
