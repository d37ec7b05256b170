/// Double back-propagation: attributions that are input gradients, and the gradient of a function of
/// them with respect to the network's parameters (the engine of the attribution priors).
///
/// The attributions of a batch of N examples are φ_n = (1/k) Σ_j w_nj ⊙ ∇_x h_n(p_nj) at k points p_nj
/// per example, with h_n a scalar function of the network output:
///
/// - Expected Gradients of target t_n: p_nj = r_nj + α_nj (x_n − r_nj), w_nj = x_n − r_nj, h_n = f_{t_n};
/// - the input gradient of Σ_c log softmax(f(x))_c (Ross et al.): k = 1, p = x, w = 1.
///
/// For a cotangent u = ∂P/∂φ (N × d) the chain rule gives ∂P/∂θ = ∂/∂θ Σ_nj ⟨v_nj, ∇_x h_n(p_nj)⟩ with
/// v_nj = u_n ⊙ w_nj / k: the parameter gradient of the directional derivative ḣ(p; v) = ∇h(p)·v
/// (reverse-over-forward). The engine runs, over all N·k points at once and node by node as GEMMs:
///
/// 1. forward: the values z of every node, f′ and f″ of every activation, the argmax of every max-pool;
/// 2. backward from h′(f): the gradient g at every value (g at the input gives φ); kept;
///
/// and, per cotangent (``AttributionPullback/parameterGradients(_:)``):
///
/// 3. forward from v: the tangent ż of every value (the nodes' linear parts, without biases; activations ż′ = f′ ⊙ ż,
///    max-pools through the recorded argmax, Softmax by its Jacobian);
/// 4. backward: the adjoint z̄ of the primal values, seeded by H_h ḟ at the output (zero for a target)
///    and fed by the curvature of every node: an activation adds f″(z) ⊙ ż ⊙ g_out, a Softmax H_g ż; the
///    tangents' adjoint is g itself (the gradient pass of step 2), so it is not recomputed. A node with
///    parameters receives ∂/∂W = z̄_outᵀ z_in + g_outᵀ ż_in (Linear; convolutions the same on im2col
///    matrices), the bias Σ z̄_out, BatchNorm's γ Σ (z̄ (z − μ) + g ż)/√(σ² + ε) and β Σ z̄.
///
/// In a network whose activations are all piecewise linear (ReLU, LeakyReLU, max-pool) and a target
/// output, z̄ is zero everywhere: step 4 is then one GEMM per parametrised node, g_outᵀ ż_in.
///
/// Every node kind of ``Layer`` has its rule: the LSTM's (reverse-over-forward through the unrolled
/// recurrence) and the Embedding's are in AttributionGradients+Recurrent.swift. A token network (an Embedding
/// first) is attributed at the embedding output, summed over the embedding axis (one φ per token, as every
/// token attribution of the library), and the penalty's gradient reaches the embedding table through the
/// points and the weights w. BatchNorm is in inference semantics, as the trainer's.

/// The scalar of the network output whose input gradient is the attribution, per example.
public enum AttributionFunctional: Sendable, Equatable {
    /// f_t(x) with t the example's target: one class index per example.
    case target([Int])
    /// Σ_c f_c(x): every output (a regression's single output, or the sum of several).
    case outputSum
    /// Σ_c log softmax(f(x))_c with f the logits (the input of a final Softmax, if any): Ross et al.'s
    /// "right for the right reasons" functional.
    case logSoftmaxSum
}

/// The references and α's of Expected Gradients for a batch: point (n, j) is r + α (x_n − r) with
/// r = references row `referenceIndex[n·k + j]` (or, with `fromBatch`, batch row that index) and
/// α = `alphas[n·k + j]`.
public struct ExpectedGradientsDraws: Sendable, Equatable {
    /// References per example.
    public var k: Int
    /// n·k + j → the row of the reference set (`fromBatch`: of the batch) that is reference j of example n.
    public var referenceIndex: [Int]
    /// n·k + j → α in [0, 1).
    public var alphas: [Float]

    public init(k: Int, referenceIndex: [Int], alphas: [Float]) {
        self.k = k
        self.referenceIndex = referenceIndex
        self.alphas = alphas
    }

    /// Philox `sample` word of the prior draws ("EGPR").
    static let stream: UInt32 = 0x4547_5052

    /// The draws of step `globalStep` of a run seeded `seed`, for a batch of `rows` examples: draw j of
    /// example n is Philox block (seed, example = globalStep, sample = "EGPR", block = n·k + j), whose first
    /// uniform u₀ picks the reference and whose second is α. With `referenceCount` R the reference is row
    /// ⌊u₀R⌋ of the reference set; without (nil), it is one of the *other* examples of the batch, uniformly:
    /// batch row (n + 1 + ⌊u₀(N − 1)⌋) mod N (a batch of one example is its own reference, so its φ is 0).
    /// So the draws depend only on (seed, step, the example's row in the batch, j).
    public static func draw(rows: Int, k: Int, referenceCount: Int?, seed: UInt64, globalStep: Int) -> ExpectedGradientsDraws {
        var index = [Int](repeating: 0, count: rows * k), alphas = [Float](repeating: 0, count: rows * k)
        for n in 0..<rows {
            for j in 0..<k {
                let b = n * k + j
                let (u0, u1) = CounterRandom.uniforms(seed: seed, example: UInt64(globalStep), sample: stream, block: UInt32(truncatingIfNeeded: b))
                if let r = referenceCount {
                    index[b] = CounterRandom.index(u0, r)
                } else {
                    index[b] = rows == 1 ? n : (n + 1 + CounterRandom.index(u0, rows - 1)) % rows
                }
                alphas[b] = min(Float(u1), Float(1).nextDown)
            }
        }
        return ExpectedGradientsDraws(k: k, referenceIndex: index, alphas: alphas)
    }
}

/// Attributions φ of a batch and their pullback to the parameters (see the file's introduction). Made
/// by ``Network/expectedGradientsWithPullback(_:rows:functional:draws:references:)`` or
/// ``Network/inputGradientWithPullback(_:rows:)``; holds the forward records and the gradients of steps
/// 1–2, so any number of cotangents can be pulled back.
///
/// A penalty on attributions (DAPr's λ mean_nd |g(m_d) − |φ_nd||, say) uses it as the priors of
/// AttributionPriors.swift do:
///
///     let a = try sampling.attributions(network: net, batch: x, rows: n, labels: y, step: step)  // EG, per step
///     let (value, u) = myPenalty(a.attributions)                                          // P and ∂P/∂φ (n × d)
///     return (value, try a.parameterGradients(u))                                         // ∂P/∂θ
///
/// The examples are split by ``TrainingChunks`` (one chunk with its GEMMs split over the workers, or chunks
/// of examples on the workers with single-threaded GEMMs); the chunks' parameter gradients are summed in
/// chunk order, so for a fixed thread count the results repeat bit for bit.
public struct AttributionPullback {
    /// N × d: φ_n = (1/k) Σ_j w_nj ⊙ ∇_x h_n(p_nj).
    public let attributions: [Float]
    /// Examples N and points per example k.
    public let rows: Int
    public let k: Int
    let network: Network
    /// Node i's convolution without its bias (tangents carry none), for convolutions not run by Winograd.
    let bareConvolutions: [Layer.Convolution?]
    let end: Int
    let functional: AttributionFunctional
    /// How the examples were split (the pullback runs on the same split).
    let split: TrainingChunks
    let chunks: [AttributionChunk]
    /// A token network's ids and references: `network` is then the network after the embedding, φ is per
    /// token and the embedding table's gradient comes first (AttributionGradients+Recurrent.swift).
    var tokens: TokenAttributionPoints? = nil

    /// ∂/∂θ Σ_nd u_nd φ_nd: the gradient with respect to every parameter (the order and shapes of
    /// ``Network/parameters``) of the attributions contracted with `cotangent` (N × d, e.g. ∂P/∂φ of a
    /// penalty P). One tangent forward pass and one backward pass over the N·k points.
    public func parameterGradients(_ cotangent: [Float]) throws -> [[Float]] {
        var gradients: [[Float]] = []
        try parameterGradients(cotangent, adding: &gradients)
        return gradients
    }

    /// ``parameterGradients(_:)`` added to `sum` (the parameters' arrays; empty: set to them). With one
    /// chunk, each Linear weight's gradient GEMM accumulates straight into its array of `sum` (β = 1), where
    /// a separate gradient would be written and then added: the trainer adds a prior's gradient to the task
    /// loss's this way.
    func parameterGradients(_ cotangent: [Float], adding sum: inout [[Float]]) throws {
        let d = tokens?.length ?? network.inputSize
        guard cotangent.count == rows * d else {
            throw SwiftAttrError.shape("cotangent: expected \(rows)×\(d) = \(rows * d) values (the attributions' shape), got \(cotangent.count)")
        }
        try Check.finite(cotangent, "cotangent")
        let cotangent = tokens?.expanded(cotangent) ?? cotangent
        if chunks.count == 1 && !sum.isEmpty {
            split.forEachRecorded { _ in network.attributionParameterGradients(self, chunks[0], cotangent: cotangent, adding: &sum) }
            return
        }
        var parts = [[[Float]]?](repeating: nil, count: chunks.count)
        parts.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            split.forEachRecorded { c in
                var g: [[Float]] = []
                network.attributionParameterGradients(self, chunks[c], cotangent: cotangent, adding: &g)
                out[c] = g
            }
        }
        var gradients = (sum.isEmpty ? [] : [sum]) + parts.map { $0! }
        parts = []
        sum = []
        sum = sumInChunkOrder(&gradients)
    }

    /// v_nj = u_n ⊙ w_nj / k for the points of `chunk`.
    func directions(_ u: [Float], _ chunk: AttributionChunk) -> [Float] {
        let d = network.inputSize, M = chunk.examples.count * k, first = chunk.examples.lowerBound, scale = 1 / Float(k)
        return uninitializedFloats(M * d) { out in
            u.withUnsafeBufferPointer { up in
                for m in 0..<M {
                    let un = up.baseAddress! + (first + m / k) * d, o = out + m * d
                    if let w = chunk.weights {
                        w.withUnsafeBufferPointer { wp in
                            let wm = wp.baseAddress! + m * d
                            for e in 0..<d { o[e] = un[e] * wm[e] * scale }
                        }
                    } else {
                        for e in 0..<d { o[e] = un[e] * scale }
                    }
                }
            }
        }
    }
}

/// The record of steps 1–2 for one chunk of examples (their k points each, consecutive).
struct AttributionChunk {
    let examples: Range<Int>
    /// points × d: the weights w of the points (nil: all ones).
    let weights: [Float]?
    let tape: Network.Tape
    /// Per node: f′ and f″ of an activation (f″ only when curved); `second` of an LSTM, its gradient record
    /// (``Network/lstmAttributionGradient``).
    let first: [[Float]]
    let second: [[Float]]
    /// g at node i's output (index i).
    let gradients: [[Float]]
    /// For the functional Σ_c log softmax: softmax of the output rows (points × width), which seeds both the
    /// gradient pass and every cotangent's adjoint; otherwise nil.
    let softmax: [Float]?
    /// points × d: g at the points, kept when asked (a token network's embedding table needs it); else nil.
    var pointGradients: [Float]? = nil
}

extension Network {
    /// Expected-gradients attributions of `functional` for the batch `x` (rows × inputSize) at the points of
    /// `draws` (references from `references`, R × inputSize, or from the batch itself when nil), with their
    /// pullback to the parameters.
    public func expectedGradientsWithPullback(
        _ x: [Float], rows: Int, functional: AttributionFunctional, draws: ExpectedGradientsDraws, references: [Float]? = nil
    ) throws -> AttributionPullback {
        try checkInputs(x, rows: rows)
        let d = inputSize, k = draws.k
        try Check.positive(k, "k")
        guard draws.referenceIndex.count == rows * k, draws.alphas.count == rows * k else {
            throw SwiftAttrError.shape("draws: expected \(rows)×\(k) reference indices and alphas, got \(draws.referenceIndex.count) and \(draws.alphas.count)")
        }
        let source = references ?? x
        let available = source.count / d
        if let references { try checkInputs(references, rows: available, name: "references") }
        for (b, r) in draws.referenceIndex.enumerated() where r < 0 || r >= available {
            throw SwiftAttrError(.outOfRange, "draws: reference index \(r) (draw \(b)) is out of range 0..<\(available)")
        }
        if tokenEmbedding != nil { return try tokenAttributionPullback(x, rows: rows, k: k, functional: functional, source: source, draws: draws) }
        return try attributionPullback(rows: rows, k: k, functional: functional, repeatingTargets: true) { examples in
            let M = examples.count * k
            var points = [Float](repeating: 0, count: M * d), weights = points
            points.withUnsafeMutableBufferPointer { pp in
                weights.withUnsafeMutableBufferPointer { wp in
                    x.withUnsafeBufferPointer { xp in
                        source.withUnsafeBufferPointer { sp in
                            for m in 0..<M {
                                let b = examples.lowerBound * k + m
                                let xn = xp.baseAddress! + (b / k) * d, r = sp.baseAddress! + draws.referenceIndex[b] * d
                                let a = draws.alphas[b], p = pp.baseAddress! + m * d, w = wp.baseAddress! + m * d
                                for e in 0..<d { let delta = xn[e] - r[e]; w[e] = delta; p[e] = r[e] + a * delta }
                            }
                        }
                    }
                }
            }
            return (points, weights)
        }
    }

    /// The input gradient φ_n = ∇_x Σ_c log softmax(f(x_n))_c of every example (f: the logits, the input of a
    /// final Softmax if any), with its pullback to the parameters.
    public func inputGradientWithPullback(_ x: [Float], rows: Int) throws -> AttributionPullback {
        try checkInputs(x, rows: rows)
        if tokenEmbedding != nil { return try tokenAttributionPullback(x, rows: rows, k: 1, functional: .logSoftmaxSum, source: nil, draws: nil) }
        let d = inputSize
        return try attributionPullback(rows: rows, k: 1, functional: .logSoftmaxSum, repeatingTargets: false) { examples in
            (examples.count == rows ? x : Array(x[(examples.lowerBound * d)..<(examples.upperBound * d)]), nil)
        }
    }

    /// Steps 1 and 2 of the engine, per chunk of examples: `points(examples)` gives the chunk's points
    /// (examples.count·k × inputSize, example-major) and their weights (nil: ones); `keepsPointGradients`: keep
    /// g at the points in the chunks.
    func attributionPullback(
        rows: Int, k: Int, functional: AttributionFunctional, repeatingTargets: Bool, keepsPointGradients: Bool = false,
        points: (Range<Int>) -> (points: [Float], weights: [Float]?)
    ) throws -> AttributionPullback {
        let end = functional == .logSoftmaxSum && endsWithSoftmax ? layers.count - 1 : layers.count
        let width = size(at: end), d = inputSize
        if case .target(let t) = functional {
            guard t.count == rows else { throw SwiftAttrError.shape("targets: expected \(rows) class indices (one per example), got \(t.count)") }
            for (n, c) in t.enumerated() where c < 0 || c >= width {
                throw SwiftAttrError(.outOfRange, "targets[\(n)] = \(c) is out of range 0..<\(width) (the network has \(width) outputs)")
            }
        }
        // A point keeps about three tapes: values, gradients, tangents.
        let split = TrainingChunks(self, rows: rows, pointsPerExample: k, tapesPerPoint: 3)
        var chunks = [AttributionChunk?](repeating: nil, count: split.count)
        var phi = [Float](repeating: 0, count: rows * d)
        chunks.withUnsafeMutableBufferPointer { out in
            phi.withUnsafeMutableBufferPointer { phiBuffer in
                let out = out.baseAddress!, phiBase = phiBuffer.baseAddress!
                split.forEach(rows: rows) { c, examples in
                    let (p, w) = points(examples)
                    let record = attributionRecord(p, examples: examples, k: k, weights: w, functional: functional, end: end,
                                                   repeatingTargets: repeatingTargets, keepsPointGradients: keepsPointGradients)
                    out[c] = record.chunk
                    (phiBase + examples.lowerBound * d).update(from: record.phi, count: record.phi.count)
                }
            }
        }
        let bare = layers.indices.map { i -> Layer.Convolution? in
            switch layers[i] {
            case .conv1d(let c), .conv2d(let c):
                guard convolutionPlans[i]?.forward == nil else { return nil }
                return try? Layer.Convolution(weight: c.weight, bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                              kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
            case .dense, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
                return nil
            }
        }
        return AttributionPullback(attributions: phi, rows: rows, k: k, network: self, bareConvolutions: bare, end: end,
                                   functional: functional, split: split, chunks: chunks.map { $0! })
    }

    /// Steps 1 and 2 for the points of one chunk of examples; returns its record and its rows of φ.
    private func attributionRecord(
        _ points: [Float], examples: Range<Int>, k: Int, weights: [Float]?, functional: AttributionFunctional, end: Int,
        repeatingTargets: Bool, keepsPointGradients: Bool
    ) -> (chunk: AttributionChunk, phi: [Float]) {
        let M = examples.count * k, width = size(at: end), d = inputSize
        // 1. Forward record.
        var argmax = [[Int32]](repeating: [], count: end)
        var first = [[Float]](repeating: [], count: end), second = first, steps = first
        let values = walkForward(points, from: 0, to: end, keep: true) { i, reads -> [Float] in
            switch layers[i] {
            case .lstm(let l):
                var record: [Float]? = []
                let y = lstmForward(l, reads[0], rows: M, length: shapes[input(of: i)][0], record: &record)
                steps[i] = record!
                return y
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let (y, d1, d2) = Activation(layers[i])!.valueAndDerivatives(reads[0])
                first[i] = d1
                if Network.isCurved(layers[i]) { second[i] = d2 }
                return y
            case .maxPool1d, .maxPool2d:
                let (y, positions) = applyRecordingArgmax(i, reads, rows: M)
                argmax[i] = positions
                return y
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .softmax, .batchNorm, .dropout,
                 .add, .concat, .embedding:
                return applyNode(i, reads, rows: M, argmax: nil)
            }
        }
        let tape = Tape(start: 0, end: end, rows: M, values: values.map { $0 ?? [] }, argmax: argmax, steps: steps)
        let softmax = functional == .logSoftmaxSum ? Network.softmaxRows(tape.output, rows: M, width: width) : nil
        // 2. Gradient pass from h′(f), keeping g at every node's output.
        var seed = [Float](repeating: 0, count: M * width)
        switch functional {
        case .target(let t):
            for m in 0..<M {
                let n = examples.lowerBound + m / k
                seed[m * width + t[repeatingTargets ? n : examples.lowerBound + m]] = 1
            }
        case .outputSum:
            for e in seed.indices { seed[e] = 1 }
        case .logSoftmaxSum:
            // ∂/∂f_j Σ_c log s_c = 1 − K s_j.
            let s = softmax!
            for e in seed.indices { seed[e] = 1 - Float(width) * s[e] }
        }
        var gradients = [[Float]](repeating: [], count: end)
        let gIn = walkBackward(from: end, to: 0, seed: seed, node: { i, gOut -> [[Float]] in
            gradients[i] = gOut
            switch layers[i] {
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                return [zipMap(gOut, first[i]) { $0 * $1 }]
            case .lstm(let l):
                // `second` keeps the LSTM's gradient record for step 4.
                let step = lstmAttributionGradient(l, gOut, steps: tape.steps[i], rows: M, length: shapes[input(of: i)][0])
                second[i] = step.record
                return [step.input]
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .softmax,
                 .batchNorm, .dropout, .add, .concat, .embedding:
                return pullbackNode(i, gOut, rows: M, reads: inputs[i].map { tape.value($0) }, output: tape.value(i + 1), argmax: argmax[i])
            }
        }, accumulate: addInPlace) ?? [Float](repeating: 0, count: M * d)
        // φ_n = (1/k) Σ_j w_nj ⊙ g_nj.
        let scale = 1 / Float(k)
        var phi = [Float](repeating: 0, count: examples.count * d)
        phi.withUnsafeMutableBufferPointer { out in
            gIn.withUnsafeBufferPointer { g in
                for m in 0..<M {
                    let o = out.baseAddress! + (m / k) * d, gm = g.baseAddress! + m * d
                    if let w = weights {
                        w.withUnsafeBufferPointer { wp in
                            let wm = wp.baseAddress! + m * d
                            for e in 0..<d { o[e] += wm[e] * gm[e] * scale }
                        }
                    } else {
                        for e in 0..<d { o[e] += gm[e] * scale }
                    }
                }
            }
        }
        return (AttributionChunk(examples: examples, weights: weights, tape: tape, first: first, second: second, gradients: gradients,
                                 softmax: softmax, pointGradients: keepsPointGradients ? gIn : nil), phi)
    }

    /// Steps 3 and 4 of the engine for one chunk and the cotangent `u` of φ (rows × inputSize; the directions
    /// are v = u ⊙ w / k). A token network's pullback also forms z̄ at the points, for the embedding table.
    /// Adds the chunk's parameter gradients to `sum` (the parameters' arrays in order; empty: sets them).
    func attributionParameterGradients(_ a: AttributionPullback, _ chunk: AttributionChunk, cotangent u: [Float], adding sum: inout [[Float]]) {
        let tape = chunk.tape, M = tape.rows, end = a.end
        // 3. Tangents of every value (an LSTM also records its steps' tangents).
        var recurrent = [[Float]](repeating: [], count: end)
        let tangents = walkForward(a.directions(u, chunk), from: 0, to: end, keep: true) { i, reads -> [Float] in
            attributionTangent(i, reads, a, chunk, record: &recurrent[i])
        }.map { $0 ?? [] }
        // 4. Adjoint of the primal values; [] stands for a zero signal.
        var seed: [Float] = []
        if a.functional == .logSoftmaxSum {
            // H_h ḟ = −K s ⊙ (ḟ − s·ḟ) for h = Σ_c log softmax_c.
            let width = size(at: end), s = chunk.softmax!, fd = tangents[end]
            seed = [Float](repeating: 0, count: M * width)
            for r in 0..<M {
                var dot: Float = 0
                for c in 0..<width { dot += s[r * width + c] * fd[r * width + c] }
                for c in 0..<width { seed[r * width + c] = -Float(width) * s[r * width + c] * (fd[r * width + c] - dot) }
            }
        }
        // Node i's first parameter array in `sum` (a token network's embedding table comes first).
        var first = [Int](repeating: 0, count: layers.count)
        var next = a.tokens == nil ? 0 : 1
        for (i, layer) in layers.enumerated() { first[i] = next; next += layer.parameterShapes.count }
        let adds = !sum.isEmpty
        var perNode = [[[Float]]?](repeating: nil, count: layers.count)
        let zbar0 = withUnsafeMutablePointer(to: &sum) { sum in
            walkBackward(from: end, to: 0, seed: seed, node: { i, zbar -> [[Float]] in
                // A Linear weight's gradient GEMM accumulates into its array of `sum` when there is one.
                var weight: UnsafeMutablePointer<Float>? = nil
                if adds, case .dense = layers[i] { weight = sum.pointee[first[i]].withUnsafeMutableBufferPointer { $0.baseAddress } }
                let step = attributionAdjoint(i, zbar, chunk, tangents: tangents, recurrent: recurrent, formsInput: a.tokens != nil,
                                              addingWeightGradientTo: weight)
                perNode[i] = step.parameters
                return step.inputs
            }, accumulate: { x, y in
                if x.isEmpty { x = y } else if !y.isEmpty { addInPlace(&x, y) }
            })
        }
        var gradients: [[Float]] = []
        if let t = a.tokens { gradients.append(t.tableGradient(chunk, k: a.k, cotangent: u, zbar: zbar0 ?? [])) }
        for (i, layer) in layers.enumerated() {
            gradients += perNode[i] ?? layer.parameterShapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) }
        }
        guard adds else { sum = gradients; return }
        // [] marks a weight gradient already accumulated into `sum`.
        for (j, g) in gradients.enumerated() where !g.isEmpty { addInPlace(&sum[j], g) }
    }

    /// Node i's tangent from the tangents of the values it reads (step 3); an LSTM leaves its steps'
    /// tangents in `record`.
    private func attributionTangent(_ i: Int, _ reads: [[Float]], _ a: AttributionPullback, _ chunk: AttributionChunk, record: inout [Float]) -> [Float] {
        let M = chunk.tape.rows
        switch layers[i] {
        case .dense(let d):
            // W ż without the bias.
            return uninitializedFloats(M * d.outFeatures) { y in
                reads[0].withUnsafeBufferPointer { t in
                    d.weight.withUnsafeBufferPointer { w in
                        BLAS.sgemm(transB: true, m: M, n: d.outFeatures, k: d.inFeatures, a: t.baseAddress!, b: w.baseAddress!, c: y)
                    }
                }
            }
        case .conv1d(let c), .conv2d(let c):
            let g = WindowGeometry(convolution: c, input: shapes[input(of: i)])
            if let filters = convolutionPlans[i]?.forward {
                return Winograd.forward(filters, g, reads[0], bias: [Float](repeating: 0, count: c.outChannels), rows: M)
            }
            return convolve(a.bareConvolutions[i]!, g, reads[0], rows: M)
        case .batchNorm(let b):
            // scale ⊙ ż per channel (the shift is the bias).
            let size = self.size(at: input(of: i)), plane = size / b.channels, t = reads[0]
            return uninitializedFloats(M * size) { y in
                for n in 0..<M {
                    for ch in 0..<b.channels {
                        let s = b.scale[ch], off = n * size + ch * plane
                        for e in 0..<plane { y[off + e] = s * t[off + e] }
                    }
                }
            }
        case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout, .add, .concat:
            return applyNode(i, reads, rows: M, argmax: nil)
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            return zipMap(reads[0], chunk.first[i]) { $0 * $1 }
        case .maxPool1d, .maxPool2d:
            let inSize = size(at: input(of: i)), outSize = size(at: i + 1), argmax = chunk.tape.argmax[i]
            return uninitializedFloats(M * outSize) { out in
                reads[0].withUnsafeBufferPointer { t in
                    for r in 0..<M {
                        for o in 0..<outSize { out[r * outSize + o] = t[r * inSize + Int(argmax[r * outSize + o])] }
                    }
                }
            }
        case .softmax:
            // J ż = s ⊙ (ż − ż·s).
            let s = chunk.tape.value(i + 1), n = size(at: i + 1), t = reads[0]
            return uninitializedFloats(M * n) { out in
                for r in 0..<M {
                    var dot: Float = 0
                    for c in 0..<n { dot += t[r * n + c] * s[r * n + c] }
                    for c in 0..<n { out[r * n + c] = s[r * n + c] * (t[r * n + c] - dot) }
                }
            }
        case .lstm(let l):
            let step = lstmAttributionTangent(l, reads[0], steps: chunk.tape.steps[i], rows: M, length: shapes[input(of: i)][0])
            record = step.record
            return step.output
        case .embedding:
            preconditionFailure("an Embedding is node 0 of a token network, whose engine runs on the network after it")
        }
    }

    /// Node i's step 4: the primal adjoints z̄ of the values it reads ([] for zero; never formed for value
    /// 0 unless `formsInput`) and its parameter gradients, from z̄ at its output (`zbar`, [] for zero), g at its
    /// output and the recorded values and tangents (`recurrent`: the LSTMs' step tangents).
    private func attributionAdjoint(
        _ i: Int, _ zbar: [Float], _ a: AttributionChunk, tangents: [[Float]], recurrent: [[Float]], formsInput: Bool,
        addingWeightGradientTo weightSum: UnsafeMutablePointer<Float>? = nil
    ) -> (inputs: [[Float]], parameters: [[Float]]?) {
        let tape = a.tape, M = tape.rows, g = a.gradients[i]
        let reads = inputs[i], skipped = formsInput ? -1 : 0
        // z̄ through the node's linear(ised) part, for the values other than the input (unless `formsInput`).
        func linearAdjoint() -> [[Float]] {
            guard !zbar.isEmpty, reads.contains(where: { $0 != skipped }) else { return reads.map { _ in [] } }
            let back = pullbackNode(i, zbar, rows: M, reads: reads.map { tape.value($0) }, output: tape.value(i + 1), argmax: tape.argmax[i])
            return zip(reads, back).map { $0 == skipped ? [] : $1 }
        }
        switch layers[i] {
        case .dense(let d):
            // dW = gᵀẋ + z̄ᵀx as one GEMM over 2M rows, [g; z̄]ᵀ·[ẋ; x]: dW (out × in, the largest matrix of
            // the step) is written once, where two GEMMs of M rows would each stream it.
            // With `weightSum`, dW is added to it (β = 1) and [] returned in its place.
            let x = tape.value(reads[0]), t = tangents[reads[0]]
            let (left, right, depth) = zbar.isEmpty ? (g, t, M) : (g + zbar, t + x, 2 * M)
            func weightGradient(_ w: UnsafeMutablePointer<Float>, beta: Float) {
                left.withUnsafeBufferPointer { lp in
                    right.withUnsafeBufferPointer { rp in
                        BLAS.sgemm(transA: true, m: d.outFeatures, n: d.inFeatures, k: depth, a: lp.baseAddress!, b: rp.baseAddress!, beta: beta, c: w)
                    }
                }
            }
            let dW: [Float]
            if let weightSum { weightGradient(weightSum, beta: 1); dW = [] } else { dW = uninitializedFloats(d.outFeatures * d.inFeatures) { weightGradient($0, beta: 0) } }
            return (linearAdjoint(), [dW, columnSums(zbar, rows: M, width: d.outFeatures)])
        case .conv1d(let c), .conv2d(let c):
            let geometry = WindowGeometry(convolution: c, input: shapes[reads[0]])
            var p = convolutionParameterGradients(c, geometry, g, input: tangents[reads[0]], rows: M)
            if zbar.isEmpty {
                p[1] = [Float](repeating: 0, count: c.outChannels)
            } else {
                let q = convolutionParameterGradients(c, geometry, zbar, input: tape.value(reads[0]), rows: M)
                addInPlace(&p[0], q[0])
                p[1] = q[1]
            }
            return (linearAdjoint(), p)
        case .batchNorm(let b):
            let size = self.size(at: reads[0]), plane = size / b.channels
            let x = tape.value(reads[0]), t = tangents[reads[0]]
            var dGamma = [Double](repeating: 0, count: b.channels), dBeta = dGamma
            for n in 0..<M {
                for ch in 0..<b.channels {
                    let mean = b.runningMean[ch], inv = 1 / (b.runningVar[ch] + b.eps).squareRoot(), off = n * size + ch * plane
                    var sg: Float = 0, sb: Float = 0
                    for e in 0..<plane {
                        sg += g[off + e] * t[off + e]
                        if !zbar.isEmpty { sg += zbar[off + e] * (x[off + e] - mean); sb += zbar[off + e] }
                    }
                    dGamma[ch] += Double(sg * inv)
                    dBeta[ch] += Double(sb)
                }
            }
            return (linearAdjoint(), [dGamma.map { Float($0) }, dBeta.map { Float($0) }])
        case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout, .add, .concat, .maxPool1d, .maxPool2d:
            return (linearAdjoint(), nil)
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            guard reads[0] != skipped else { return ([[]], nil) }
            let curved = !a.second[i].isEmpty
            if zbar.isEmpty && !curved { return ([[]], nil) }
            let d1 = a.first[i], d2 = a.second[i], t = tangents[reads[0]]
            let out = uninitializedFloats(g.count) { o in
                for e in 0..<g.count {
                    var s: Float = zbar.isEmpty ? 0 : d1[e] * zbar[e]
                    if curved { s += d2[e] * t[e] * g[e] }
                    o[e] = s
                }
            }
            return ([out], nil)
        case .softmax:
            guard reads[0] != skipped else { return ([[]], nil) }
            // J z̄ + H_g ż with H_u ż = a ⊙ ż − a (s·ż) − s (a·ż), a = s ⊙ (u − u·s).
            let s = tape.value(i + 1), n = size(at: i + 1), t = tangents[reads[0]]
            let out = uninitializedFloats(M * n) { o in
                var aa = [Float](repeating: 0, count: n)
                for r in 0..<M {
                    let base = r * n
                    var us: Float = 0, zs: Float = 0
                    for c in 0..<n { us += g[base + c] * s[base + c]; if !zbar.isEmpty { zs += zbar[base + c] * s[base + c] } }
                    var ts: Float = 0, ta: Float = 0
                    for c in 0..<n {
                        aa[c] = s[base + c] * (g[base + c] - us)
                        ts += t[base + c] * s[base + c]; ta += t[base + c] * aa[c]
                    }
                    for c in 0..<n {
                        let j = zbar.isEmpty ? 0 : s[base + c] * (zbar[base + c] - zs)
                        o[base + c] = j + aa[c] * t[base + c] - aa[c] * ts - s[base + c] * ta
                    }
                }
            }
            return ([out], nil)
        case .lstm(let l):
            let step = lstmAttributionAdjoint(l, zbar, input: tape.value(reads[0]), inputTangent: tangents[reads[0]], steps: tape.steps[i],
                                              gradient: a.second[i], tangent: recurrent[i], rows: M, length: shapes[reads[0]][0],
                                              formsInput: reads[0] != skipped)
            return ([step.input], step.parameters)
        case .embedding:
            preconditionFailure("an Embedding is node 0 of a token network, whose engine runs on the network after it")
        }
    }
}
