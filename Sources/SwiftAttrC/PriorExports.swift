import CSwiftAttr
import SwiftAttr
#if canImport(Glibc)
import Glibc
#endif

// The C interface of the attribution priors (swiftattr.h, section Attribution priors): the one place an
// `any TrainingPenalty` is boxed behind an `sa_prior *`. A prior's constructor builds its Swift penalty
// and hands it to ``publishPrior(_:to:)``; sa_train and sa_loss_and_gradients read the handles back with
// ``priorPenalties(_:_:for:)``. New priors (CDEP, DAPr) add only their constructor.

/// The object behind an `sa_prior *`: a penalty, changeable (sa_prior_set_sampling) until first used.
final class PriorHandle {
    private var penalty: any TrainingPenalty
    /// The input size the sampling's references were given for (sa_prior_set_sampling), to count their rows.
    private var referenceSize: Int?
    private var frozen = false
    private var mutex = pthread_mutex_t()

    init(_ penalty: any TrainingPenalty) {
        self.penalty = penalty
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// The penalty for a computation with `network` (checked against it when it can check itself); freezes
    /// the prior.
    func use(for network: Network, _ name: String) throws -> any TrainingPenalty {
        pthread_mutex_lock(&mutex)
        frozen = true
        let p = penalty, size = referenceSize
        pthread_mutex_unlock(&mutex)
        do {
            if let size, size != network.inputSize {
                throw SwiftAttrError(.shapeMismatch, "references: given with reference_size \(size), but the model's input size is \(network.inputSize)")
            }
            if let checked = p as? any CheckedTrainingPenalty { try checked.check(network) }
        } catch let error as SwiftAttrError {
            throw SwiftAttrError(error.code, "\(name): \(error.message)")
        }
        return p
    }

    /// The penalty itself (for a stateful one's accessors, e.g. DAPr's learned prior network).
    var current: any TrainingPenalty {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return penalty
    }

    /// Replaces the sampling of a sampled penalty (before first use).
    func setSampling(_ sampling: ExpectedGradientsSampling, referenceSize size: Int?) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard !frozen else { throw SwiftAttrError(.frozen, "prior: it has been used for a computation and can no longer be changed") }
        guard let sampled = penalty as? any SampledTrainingPenalty else {
            throw SwiftAttrError(.invalidArgument, "prior: \(type(of: penalty)) does not sample references (k and references do not apply)")
        }
        penalty = try sampled.withSampling(sampling)
        referenceSize = size
    }

    /// The sampling of a sampled penalty and the reference row size, or an error.
    func sampling() throws -> (ExpectedGradientsSampling, Int?) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard let sampled = penalty as? any SampledTrainingPenalty, sampled.sampling.k > 0 else {
            throw SwiftAttrError(.invalidArgument, "prior: \(type(of: penalty)) does not sample references")
        }
        if case .inputGradient = (penalty as? AttributionPrior)?.kind {
            throw SwiftAttrError(.invalidArgument, "prior: InputGradient draws no references")
        }
        return (sampled.sampling, referenceSize)
    }
}

/// The handle behind a non-NULL `sa_prior *`, or a null-pointer error naming `name`.
func priorHandle(_ prior: OpaquePointer?, _ name: String = "prior") throws -> PriorHandle {
    Unmanaged<PriorHandle>.fromOpaque(UnsafeRawPointer(try nonNull(prior, name))).takeUnretainedValue()
}

/// Boxes `penalty` as a new `sa_prior *` in `*out` (the one place a penalty becomes a handle).
func publishPrior(_ penalty: any TrainingPenalty, to out: UnsafeMutablePointer<OpaquePointer?>?) throws {
    let out = try nonNull(out, "out_prior")
    out.pointee = OpaquePointer(Unmanaged.passRetained(PriorHandle(penalty)).toOpaque())
}

/// The penalties of the `count` handles at `priors` (NULL with count 0: none), each checked against
/// `network`; messages name `name`[i].
func priorPenalties(_ priors: UnsafePointer<OpaquePointer?>?, _ count: Int64, for network: Network, _ name: String) throws -> [any TrainingPenalty] {
    guard count >= 0, count <= 1 << 20 else { throw SwiftAttrError(.invalidArgument, "n_priors must be in 0...\(1 << 20) (got \(count))") }
    guard count > 0 else { return [] }
    let p = try nonNull(priors, name)
    return try (0..<Int(count)).map { i in try priorHandle(p[i], "\(name)[\(i)]").use(for: network, "\(name)[\(i)]") }
}

/// λ from C: finite and non-negative (AttributionPrior checks it too; here the C name).
private func lambda(_ lam: Double) throws -> Double {
    guard lam.isFinite, lam >= 0 else { throw SwiftAttrError(.invalidArgument, "lam must be finite and non-negative (got \(lam))") }
    return lam
}

@_cdecl("sa_prior_free")
public func sa_prior_free(_ prior: OpaquePointer?) {
    guard let prior else { return }
    Unmanaged<PriorHandle>.fromOpaque(UnsafeRawPointer(prior)).release()
}

@_cdecl("sa_prior_l1")
public func sa_prior_l1(_ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { try publishPrior(try AttributionPrior(.l1, lambda: try lambda(lam)), to: out) }
}

@_cdecl("sa_prior_gini")
public func sa_prior_gini(_ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { try publishPrior(try AttributionPrior(.gini, lambda: try lambda(lam)), to: out) }
}

@_cdecl("sa_prior_total_variation")
public func sa_prior_total_variation(_ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { try publishPrior(try AttributionPrior(.totalVariation, lambda: try lambda(lam)), to: out) }
}

@_cdecl("sa_prior_graph")
public func sa_prior_graph(_ adjacency: UnsafePointer<Float>?, _ d: Int64, _ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let n = try checkCount(d, "d")
        let a = try Allocation.copy(try floats(adjacency, try checkedProduct(n, n, "adjacency", factors: ["d", "d"]), "adjacency"), "adjacency")
        try publishPrior(try AttributionPrior(.graph(adjacency: a), lambda: try lambda(lam)), to: out)
    }
}

@_cdecl("sa_prior_input_gradient")
public func sa_prior_input_gradient(_ mask: UnsafePointer<Float>?, _ d: Int64, _ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let n = try checkCount(d, "d")
        let m = try Allocation.copy(try floats(mask, n, "mask"), "mask")
        try publishPrior(try AttributionPrior(.inputGradient(mask: m), lambda: try lambda(lam)), to: out)
    }
}

// --- CDEP (Training/CDEPPenalty.swift) ---

@_cdecl("sa_prior_cdep")
public func sa_prior_cdep(_ masks: UnsafePointer<Float>?, _ nMasks: Int64, _ d: Int64, _ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let k = try checkCount(nMasks, "n_masks"), n = try checkCount(d, "d")
        let m = try Allocation.copy(try floats(masks, try checkedProduct(k, n, "masks", factors: ["n_masks", "d"]), "masks"), "masks")
        try publishPrior(try CDEPPenalty(masks: m, maskCount: k, lam: try lambda(lam)), to: out)
    }
}

// --- CDEP per-example masks (Training/CDEPPenalty.swift, exampleCount) ---

@_cdecl("sa_prior_cdep_per_example")
public func sa_prior_cdep_per_example(
    _ masks: UnsafePointer<Float>?, _ nExamples: Int64, _ nMasks: Int64, _ d: Int64, _ lam: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        let e = try checkCount(nExamples, "n_examples"), k = try checkCount(nMasks, "n_masks"), n = try checkCount(d, "d")
        let sets = try checkedProduct(e, k, "masks", factors: ["n_examples", "n_masks"])
        let m = try Allocation.copy(try floats(masks, try checkedProduct(sets, n, "masks", factors: ["n_examples · n_masks", "d"]), "masks"), "masks")
        try publishPrior(try CDEPPenalty(masks: m, maskCount: k, exampleCount: e, lam: try lambda(lam)), to: out)
    }
}

@_cdecl("sa_prior_set_sampling")
public func sa_prior_set_sampling(
    _ prior: OpaquePointer?, _ k: Int64, _ references: UnsafePointer<Float>?, _ nReferences: Int64, _ referenceSize: Int64
) -> Int32 {
    guarded {
        let h = try priorHandle(prior)
        guard k > 0, k <= 1 << 16 else { throw SwiftAttrError(.invalidArgument, "k must be in 1...65536 (got \(k))") }
        var sampling = ExpectedGradientsSampling(k: Int(k))
        var size: Int?
        if nReferences != 0 || references != nil {
            let rows = try checkCount(nReferences, "n_references")
            let width = try checkCount(referenceSize, "reference_size")
            let count = try checkedProduct(rows, width, "references", factors: ["n_references", "reference_size"])
            sampling.references = try Allocation.copy(try floats(references, count, "references"), "references")
            size = width
        }
        try h.setSampling(sampling, referenceSize: size)
    }
}

@_cdecl("sa_prior_draws")
public func sa_prior_draws(
    _ prior: OpaquePointer?, _ n: Int64, _ seed: UInt64, _ globalStep: Int64, _ outIndex: UnsafeMutablePointer<Int64>?,
    _ outAlphas: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    guarded {
        let (sampling, size) = try priorHandle(prior).sampling()
        let rows = try checkCount(n, "n")
        guard globalStep >= 0 else { throw SwiftAttrError(.invalidArgument, "global_step must be non-negative (got \(globalStep))") }
        let total = try checkedProduct(rows, sampling.k, "out_reference_index", factors: ["n", "k"])
        guard capacity >= Int64(total) else {
            throw SwiftAttrError(.bufferTooSmall, "capacity: the draws need n·k = \(total) entries, capacity is \(capacity)")
        }
        let index = try output(outIndex, total, "out_reference_index"), alphas = try output(outAlphas, total, "out_alphas")
        let step = TrainingStep(seed: seed, globalStep: Int(globalStep))
        let draws = sampling.draws(rows: rows, inputSize: size ?? 1, step: step)
        for b in 0..<total {
            index[b] = Int64(draws.referenceIndex[b])
            alphas[b] = draws.alphas[b]
        }
    }
}

@_cdecl("sa_prior_dapr")
public func sa_prior_dapr(
    _ priorNetwork: OpaquePointer?, _ metaFeatures: UnsafePointer<Float>?, _ d: Int64, _ m: Int64, _ lam: Double,
    _ squared: Int32, _ lr: Float, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        _ = try nonNull(priorNetwork, "prior_network")
        let g = try handle(priorNetwork).use()
        let rows = try checkCount(d, "d"), width = try checkCount(m, "m")
        guard squared == 0 || squared == 1 else { throw SwiftAttrError(.invalidArgument, "squared must be 0 or 1 (got \(squared))") }
        guard width == g.inputSize else {
            throw SwiftAttrError(.shapeMismatch, "m = \(width), but prior_network's input size is \(g.inputSize)")
        }
        let meta = try Allocation.copy(try floats(metaFeatures, try checkedProduct(rows, width, "meta_features", factors: ["d", "m"]),
                                                  "meta_features"), "meta_features")
        var optimizer = OptimizerSettings()
        optimizer.learningRate = lr
        try publishPrior(try DeepAttributionPrior(priorNetwork: g, metaFeatures: meta, lambda: try lambda(lam),
                                                  squared: squared == 1, optimizer: optimizer), to: out)
    }
}

@_cdecl("sa_prior_dapr_network")
public func sa_prior_dapr_network(_ prior: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let dapr = try priorHandle(prior).current as? DeepAttributionPrior else {
            throw SwiftAttrError(.invalidArgument, "prior: not a DAPr prior (sa_prior_dapr)")
        }
        _ = try nonNull(out, "out_model")
        try publish(dapr.priorNetwork, to: out)
    }
}
