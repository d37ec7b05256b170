/// Attribution priors (Erion et al.; Ross et al.): penalties on attributions computed inside training,
/// each a ``TrainingPenalty`` whose gradient comes from double back-propagation
/// (``AttributionPullback``).
///
/// With a mini-batch of N examples, d input elements, φ the attributions of the batch and
/// φ̄_d = mean_n |φ_nd|:
///
/// | prior | penalty |
/// | --- | --- |
/// | L1 | λ mean_nd \|φ_nd\| |
/// | Gini | −λ Gini(φ̄), Gini(v) = ½ mean_jk \|v_j − v_k\| / mean(v) (0 when φ̄ = 0) |
/// | Graph(A) | λ φ̄ᵀ(D − A)φ̄, D = diag of A's row sums |
/// | TotalVariation | λ mean_n Σ_c Σ \|φ differences between vertical and horizontal neighbours\| (input [C, H, W]) |
/// | InputGradient(mask A) | λ mean_n Σ_d (A_d ∂/∂x_nd Σ_c log softmax(f(x_n))_c)² |
///
/// φ for the first four is Expected Gradients of the label's output (class labels; for float labels the
/// sum of the outputs) of the network's output, with ``ExpectedGradientsSampling`` (k references and α's
/// per example, drawn per step from the run's seed). The derivative of |·| at 0 is taken as 0 (PyTorch's).

/// How Expected Gradients draws its points inside training.
public struct ExpectedGradientsSampling: Sendable, Equatable {
    /// References (and α's) per example (default 1, the authors' default).
    public var k: Int
    /// R × inputSize reference rows; nil: the other examples of the same mini-batch
    /// (see ``ExpectedGradientsDraws/draw(rows:k:referenceCount:seed:globalStep:)``).
    public var references: [Float]?

    public init(k: Int = 1, references: [Float]? = nil) {
        self.k = k
        self.references = references
    }

    /// Checks k and the references against `network`.
    public func check(_ network: Network) throws {
        try Check.positive(k, "k")
        guard let references else { return }
        let d = network.inputSize
        guard !references.isEmpty, references.count % d == 0 else {
            throw SwiftAttrError.shape("references: expected rows of \(d) values (the model's input size \(network.inputShape)), got \(references.count) values")
        }
        try Check.finite(references, "references")
    }

    /// The draws of one step for `rows` examples of `network`.
    public func draws(rows: Int, network: Network, step: TrainingStep) -> ExpectedGradientsDraws {
        draws(rows: rows, inputSize: network.inputSize, step: step)
    }

    /// The draws of one step for `rows` examples of `inputSize` floats (which counts the reference rows).
    public func draws(rows: Int, inputSize: Int, step: TrainingStep) -> ExpectedGradientsDraws {
        ExpectedGradientsDraws.draw(rows: rows, k: k, referenceCount: references.map { $0.count / inputSize },
                                    seed: step.seed, globalStep: step.globalStep)
    }

    /// Expected-gradients attributions of the batch's labels at this step's draws, with their pullback
    /// (for priors built on φ, such as DAPr).
    public func attributions(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> AttributionPullback {
        try check(network)
        let functional: AttributionFunctional
        switch labels {
        case .classes(let c): functional = .target(c)
        case .values: functional = .outputSum
        }
        return try network.expectedGradientsWithPullback(batch, rows: rows, functional: functional,
                                                         draws: draws(rows: rows, network: network, step: step), references: references)
    }
}

/// A penalty whose attributions Expected Gradients samples: the C interface sets its sampling
/// (`sa_prior_set_sampling`) through this.
public protocol SampledTrainingPenalty: TrainingPenalty {
    var sampling: ExpectedGradientsSampling { get }
    /// The same penalty with `sampling`, or an error when the penalty does not sample.
    func withSampling(_ sampling: ExpectedGradientsSampling) throws -> Self
}

/// A penalty that checks its arrays' shapes against a network; the C and Python entry points call it
/// before training, so a bad shape fails at once with a message naming the argument.
public protocol CheckedTrainingPenalty: TrainingPenalty {
    func check(_ network: Network) throws
}

/// The closed set of attribution priors of this file.
public enum AttributionPriorKind: Sendable, Equatable {
    case l1
    case gini
    /// A d × d adjacency matrix (row-major) over the input elements.
    case graph(adjacency: [Float])
    case totalVariation
    /// d mask values A over the input elements (no sampling: the penalty is on the input gradient).
    case inputGradient(mask: [Float])

    public var name: String {
        switch self {
        case .l1: "L1"
        case .gini: "Gini"
        case .graph: "Graph"
        case .totalVariation: "TotalVariation"
        case .inputGradient: "InputGradient"
        }
    }
}

/// One attribution prior with its weight λ (a ``TrainingPenalty``).
public struct AttributionPrior: SampledTrainingPenalty, CheckedTrainingPenalty, GradientAccumulatingPenalty, Sendable, Equatable {
    public var kind: AttributionPriorKind
    public var lambda: Double
    public var sampling: ExpectedGradientsSampling

    /// Checks λ (finite, ≥ 0), the kind's own arrays (finite) and the sampling; shapes against a network
    /// are checked by ``check(_:)``.
    public init(_ kind: AttributionPriorKind, lambda: Double, sampling: ExpectedGradientsSampling = .init()) throws {
        guard lambda.isFinite, lambda >= 0 else { throw SwiftAttrError.invalid("lam must be finite and non-negative (got \(lambda))") }
        try Check.positive(sampling.k, "k")
        switch kind {
        case .graph(let a): try Check.finite(a, "adjacency")
        case .inputGradient(let m): try Check.finite(m, "mask")
        case .l1, .gini, .totalVariation: break
        }
        if let r = sampling.references { try Check.finite(r, "references") }
        self.kind = kind
        self.lambda = lambda
        self.sampling = sampling
    }

    public func withSampling(_ sampling: ExpectedGradientsSampling) throws -> AttributionPrior {
        if case .inputGradient = kind {
            throw SwiftAttrError.invalid("InputGradient penalises the input gradient itself: it draws no references (k and references do not apply)")
        }
        return try AttributionPrior(kind, lambda: lambda, sampling: sampling)
    }

    /// Checks the prior's shapes against `network`: adjacency d × d, mask d values, total variation on an
    /// image input [C, H, W], references rows of d values.
    public func check(_ network: Network) throws {
        let d = network.inputSize
        switch kind {
        case .graph(let a):
            guard a.count == d * d else {
                throw SwiftAttrError.shape("adjacency: expected \(d)×\(d) = \(d * d) values (the model's \(d) input elements squared), got \(a.count)")
            }
        case .inputGradient(let m):
            guard m.count == d else {
                throw SwiftAttrError.shape("mask: expected \(d) values (the model's input shape \(network.inputShape)), got \(m.count)")
            }
        case .totalVariation:
            guard network.inputShape.count == 3 else {
                throw SwiftAttrError.shape("TotalVariation needs image inputs [C, H, W], but the model's input shape is \(network.inputShape)")
            }
        case .l1, .gini:
            break
        }
        switch kind {
        case .inputGradient:
            break
        case .l1, .gini, .graph, .totalVariation:
            try sampling.check(network)
        }
    }

    /// The attributions this prior penalises for the batch, with their pullback.
    public func attributions(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> AttributionPullback {
        try check(network)
        switch kind {
        case .inputGradient:
            return try network.inputGradientWithPullback(batch, rows: rows)
        case .l1, .gini, .graph, .totalVariation:
            return try sampling.attributions(network: network, batch: batch, rows: rows, labels: labels, step: step)
        }
    }

    public func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]]) {
        var gradients: [[Float]] = []
        let value = try loss(network: network, batch: batch, rows: rows, labels: labels, step: step, addingGradientTo: &gradients)
        return (value, gradients)
    }

    /// The penalty's value, its gradient added to `gradients` in place (see ``AttributionPullback``).
    func loss(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep,
              addingGradientTo gradients: inout [[Float]]) throws -> Double {
        let a = try attributions(network: network, batch: batch, rows: rows, labels: labels, step: step)
        let (value, u) = penalty(a.attributions, rows: rows, shape: network.inputShape)
        try a.parameterGradients(u, adding: &gradients)
        return value
    }

    /// The penalty of attributions `phi` (rows × ∏shape) and its cotangent ∂P/∂φ (float64 sums).
    public func penalty(_ phi: [Float], rows: Int, shape: [Int]) -> (value: Double, cotangent: [Float]) {
        let d = shape.reduce(1, *), N = Double(rows), lam = lambda
        var u = [Float](repeating: 0, count: phi.count)
        @inline(__always) func sign(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
        /// φ̄_j = mean_n |φ_nj|.
        func meanAbs() -> [Double] {
            var m = [Double](repeating: 0, count: d)
            for n in 0..<rows { for j in 0..<d { m[j] += Double(abs(phi[n * d + j])) } }
            return m.map { $0 / N }
        }
        /// u_nj = c_j sign(φ_nj) / N for a penalty of φ̄ with gradient c.
        func throughMeanAbs(_ c: [Double]) {
            for n in 0..<rows { for j in 0..<d { u[n * d + j] = Float(c[j] / N) * sign(phi[n * d + j]) } }
        }
        switch kind {
        case .l1:
            var s: Double = 0
            for v in phi { s += Double(abs(v)) }
            let scale = lam / (N * Double(d))
            for e in phi.indices { u[e] = Float(scale) * sign(phi[e]) }
            return (scale * s, u)
        case .gini:
            let v = meanAbs(), S = v.reduce(0, +)
            guard S > 0 else { return (0, u) }
            // Sorted ascending, Σ_jk |v_j − v_k| = 2 Σ_i (2i − d + 1) v_(i); ∂/∂v_j of it = 2 (#less − #greater).
            let order = v.indices.sorted { v[$0] < v[$1] }
            var pairs: Double = 0
            for (i, j) in order.enumerated() { pairs += 2 * Double(2 * i - d + 1) * v[j] }
            let G = pairs / (2 * Double(d) * S)
            var c = [Double](repeating: 0, count: d)
            var i = 0
            while i < d {
                var e = i
                while e + 1 < d && v[order[e + 1]] == v[order[i]] { e += 1 }
                let less = Double(i), greater = Double(d - 1 - e)
                for t in i...e { c[order[t]] = -lam * ((2 * (less - greater)) / (2 * Double(d) * S) - G / S) }
                i = e + 1
            }
            throughMeanAbs(c)
            return (-lam * G, u)
        case .graph(let a):
            let v = meanAbs()
            var value: Double = 0
            var c = [Double](repeating: 0, count: d)
            // φ̄ᵀ(D − A)φ̄ = Σ_jk A_jk v_j (v_j − v_k); gradient (L + Lᵀ)v.
            for j in 0..<d {
                var rowSum: Double = 0, av: Double = 0, colV: Double = 0
                for k in 0..<d {
                    let ajk = Double(a[j * d + k]), akj = Double(a[k * d + j])
                    rowSum += ajk; av += ajk * v[k]; colV += akj * v[k]
                }
                value += v[j] * (rowSum * v[j] - av)
                c[j] = 2 * rowSum * v[j] - av - colV  // ((L + Lᵀ) v)_j
            }
            throughMeanAbs(c.map { lam * $0 })
            return (lam * value, u)
        case .totalVariation:
            let C = shape[0], H = shape[1], W = shape[2]
            var s: Double = 0
            let scale = Float(lam / N)
            for n in 0..<rows {
                for ch in 0..<C {
                    let base = n * d + ch * H * W
                    for h in 0..<H {
                        for w in 0..<W {
                            let e = base + h * W + w
                            if h + 1 < H {
                                let delta = phi[e + W] - phi[e]
                                s += Double(abs(delta)); u[e + W] += scale * sign(delta); u[e] -= scale * sign(delta)
                            }
                            if w + 1 < W {
                                let delta = phi[e + 1] - phi[e]
                                s += Double(abs(delta)); u[e + 1] += scale * sign(delta); u[e] -= scale * sign(delta)
                            }
                        }
                    }
                }
            }
            return (lam * s / N, u)
        case .inputGradient(let mask):
            var s: Double = 0
            for n in 0..<rows {
                for j in 0..<d {
                    let m = Double(mask[j]), q = m * Double(phi[n * d + j])
                    s += q * q
                    u[n * d + j] = Float(2 * lam * m * q / N)
                }
            }
            return (lam * s / N, u)
        }
    }
}

extension TrainingStep {
    /// Step `globalStep` (from 0) of a run seeded `seed`, numbered as epoch `epoch`, step `step`: for
    /// evaluating penalties outside the trainer (draws depend on the seed and the global step only).
    public init(seed: UInt64, globalStep: Int, epoch: Int = 1, step: Int = 1) {
        self.init(epoch: epoch, step: step, globalStep: globalStep, seed: seed)
    }
}

extension Network {
    /// The mean `loss` over the batch `x` plus every penalty, and the gradient of that sum with respect to
    /// every parameter (the order and shapes of ``parameters``), the penalties evaluated as at the first
    /// step of a run seeded `seed` (epoch 1, step 1, global step 0).
    public func lossAndGradients(
        _ x: [Float], rows: Int, labels: TrainingLabels, loss: Loss, penalties: [any TrainingPenalty], seed: UInt64
    ) throws -> (loss: Double, gradients: [[Float]]) {
        var (value, gradients) = try lossAndGradients(x, rows: rows, labels: labels, loss: loss)
        try addPenalties(penalties, batch: x, rows: rows, labels: labels, step: TrainingStep(epoch: 1, step: 1, globalStep: 0, seed: seed),
                         context: "", loss: &value, gradients: &gradients)
        return (value, gradients)
    }
}
