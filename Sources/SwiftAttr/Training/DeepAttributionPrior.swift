#if canImport(Glibc)
import Glibc
#endif

/// The Deep Attribution Prior (DAPr; Weinberger, Janizek, Lee, "Learning deep attribution priors based on
/// prior knowledge", NeurIPS 2020): a second network g maps each input feature's meta-features m_d (for
/// genes: driver status, pathway membership; in the authors' synthetic study each feature's training-set
/// standard deviation and mean) to a predicted importance, and is trained jointly with the model so that
/// the model's attributions follow it:
///
///     P = λ mean_nd ρ(g(m_d) − |φ_nd|),   ρ(r) = |r| (the authors' choice) or r² (`squared`)
///
/// with φ the Expected Gradients attributions of the batch's labels (``ExpectedGradientsSampling``: k
/// references and α's per example, one each by default, as the authors' code). The model's gradient of P
/// comes from double back-propagation (``AttributionPullback``) with ∂P/∂φ_nd = −λ/(N d) ρ′(r_nd) sign(φ_nd);
/// g's gradient from its own backward pass with ∂P/∂g(m_d) = λ/(N d) Σ_n ρ′(r_nd). Every training step steps
/// g with its optimiser (the authors step both networks on the same loss), inside ``lossAndGradient``:
/// the prior is therefore stateful (a class); ``priorNetwork`` is the learned g, which tells which
/// meta-features drive importance. Under early stopping the model returns to its best epoch, g keeps its
/// last state. The derivative of |·| at 0 is taken as 0 (PyTorch's).
public final class DeepAttributionPrior: SampledTrainingPenalty, CheckedTrainingPenalty, @unchecked Sendable {
    /// d × m meta-features, row d for input element d.
    public let metaFeatures: [Float]
    public let metaCount: Int
    public let lambda: Double
    public let squared: Bool
    public let sampling: ExpectedGradientsSampling
    public let optimizerSettings: OptimizerSettings
    private let initialNetwork: Network
    private var network: Network
    private var optimizer: OptimizerState
    private var mutex = pthread_mutex_t()

    /// - Parameters:
    ///   - priorNetwork: g, any network with input size m (the meta-features per input element) and one output.
    ///   - metaFeatures: d × m floats (finite).
    ///   - optimizer: g's optimiser (the authors: Adam, lr 1e-3).
    public init(priorNetwork: Network, metaFeatures: [Float], lambda: Double, squared: Bool = false,
                sampling: ExpectedGradientsSampling = .init(), optimizer: OptimizerSettings = .init()) throws {
        guard lambda.isFinite, lambda >= 0 else { throw SwiftAttrError.invalid("lam must be finite and non-negative (got \(lambda))") }
        try Check.positive(sampling.k, "k")
        let m = priorNetwork.inputSize
        guard priorNetwork.outputSize == 1 else {
            throw SwiftAttrError.shape("prior_network: g must have one output (a predicted importance per feature), it has \(priorNetwork.outputSize)")
        }
        guard !metaFeatures.isEmpty, metaFeatures.count % m == 0 else {
            throw SwiftAttrError.shape("meta_features: expected rows of \(m) values (g's input size), got \(metaFeatures.count) values")
        }
        guard !priorNetwork.parameterShapes.isEmpty else { throw SwiftAttrError.invalid("prior_network: g has no parameters to train") }
        try Check.finite(metaFeatures, "meta_features")
        self.metaFeatures = metaFeatures
        self.metaCount = m
        self.lambda = lambda
        self.squared = squared
        self.sampling = sampling
        self.optimizerSettings = optimizer
        self.initialNetwork = priorNetwork
        self.network = priorNetwork
        self.optimizer = try OptimizerState(optimizer)
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// The number of input elements d the meta-features describe.
    public var featureCount: Int { metaFeatures.count / metaCount }

    /// The current g (the learned prior after training).
    public var priorNetwork: Network {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return network
    }

    /// g's predicted importance of every input element: d values.
    public func predictedImportance() throws -> [Float] { try priorNetwork.predict(metaFeatures, rows: featureCount) }

    /// Puts g back to the network it was made with and clears its optimiser (a new run starts fresh).
    public func reset() throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        network = initialNetwork
        optimizer = try OptimizerState(optimizerSettings)
    }

    public func withSampling(_ sampling: ExpectedGradientsSampling) throws -> DeepAttributionPrior {
        try DeepAttributionPrior(priorNetwork: initialNetwork, metaFeatures: metaFeatures, lambda: lambda, squared: squared,
                                 sampling: sampling, optimizer: optimizerSettings)
    }

    public func check(_ model: Network) throws {
        guard featureCount == model.inputSize else {
            throw SwiftAttrError.shape("meta_features: \(featureCount) rows, but the model has \(model.inputSize) input elements (one row each)")
        }
        try sampling.check(model)
    }

    public func lossAndGradient(network model: Network, batch: [Float], rows: Int, labels: TrainingLabels,
                                step: TrainingStep) throws -> (Double, [[Float]]) {
        try check(model)
        let pull = try sampling.attributions(network: model, batch: batch, rows: rows, labels: labels, step: step)
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let d = featureCount
        let tape = network.record(metaFeatures, rows: d, from: 0, to: network.layers.count)
        let predicted = tape.output
        let phi = pull.attributions
        let scale = lambda / Double(rows * d)
        var total: Double = 0
        var phiCotangent = [Float](repeating: 0, count: rows * d)
        var priorCotangent = [Double](repeating: 0, count: d)
        for n in 0..<rows {
            for e in 0..<d {
                let p = phi[n * d + e]
                let r = Double(predicted[e]) - Double(abs(p))
                let slope: Double
                if squared {
                    total += r * r
                    slope = 2 * r
                } else {
                    total += abs(r)
                    slope = r > 0 ? 1 : (r < 0 ? -1 : 0)
                }
                priorCotangent[e] += scale * slope
                let signPhi: Double = p > 0 ? 1 : (p < 0 ? -1 : 0)
                phiCotangent[n * d + e] = Float(-scale * slope * signPhi)
            }
        }
        let modelGradients = try pull.parameterGradients(phiCotangent)
        let priorGradients = network.parameterGradients(tape, cotangent: priorCotangent.map { Float($0) }).parameters
        var parameters = network.parameters
        let findings = optimizer.update(&parameters, gradients: priorGradients)
        let at = "at epoch \(step.epoch), step \(step.step)"
        if let k = findings.nonFiniteGradient {
            throw SwiftAttrError(.numerical, "DAPr: the gradient of the prior network's \(network.parameterNames[k]) is not finite \(at)")
        }
        if let k = findings.nonFiniteParameter {
            throw SwiftAttrError(.numerical, "DAPr: the prior network's \(network.parameterNames[k]) became non-finite \(at); lower its lr")
        }
        network = try network.withTrustedParameters(parameters)
        return (scale * total, modelGradients)
    }
}
