import CSwiftAttr
import SwiftAttr

// C exports of RATE and the Bayesian last layer (swiftattr.h, section "RATE"). Each checks its pointers and
// the sizes that define its buffers, reads sa_rate_options, calls SwiftAttr (which checks every value:
// finiteness, symmetry, ranges, iteration limits), and maps errors to status codes through `guarded`.

/// The options of one RATE call, read from the caller's `sa_rate_options` (the header's own struct).
private struct RATECallOptions {
    var rate: RATEOptions
    var projection: EffectSizeProjection
    /// nil: automatic (options->rank == 0).
    var rank: Int?
}

/// `sa_rate_options sa_rate_default_options(void)`: the defaults are SwiftAttr's (``RATEOptions``,
/// ``EffectSizeProjection/covariance``, automatic rank), so they live in one place.
@_cdecl("sa_rate_default_options")
public func sa_rate_default_options() -> sa_rate_options {
    let d = RATEOptions()
    return sa_rate_options(struct_size: MemoryLayout<sa_rate_options>.size, exact_kld: d.exactKLD ? 1 : 0,
                           projection: EffectSizeProjection.covariance.rawValue, rank: 0, jitter: d.jitter,
                           nullify: nil, nullify_count: 0, group_members: nil, group_offsets: nil, group_count: 0)
}

/// Reads `options` (NULL: the defaults): checks struct_size, the pointers and the CSR offsets (what C alone
/// can get wrong), converts; SwiftAttr checks the values (index ranges, empty groups, jitter).
/// `usesX` is false for sa_rate_from_esa, which has no X for the projection or a low rank.
private func rateOptions(_ pointer: UnsafePointer<sa_rate_options>?, usesX: Bool) throws -> RATECallOptions {
    let o = pointer?.pointee ?? sa_rate_default_options()
    let size = MemoryLayout<sa_rate_options>.size
    guard o.struct_size == size else {
        throw SwiftAttrError(.invalidArgument, "options->struct_size is \(o.struct_size), but this library's sa_rate_options has \(size) bytes "
                             + "(SA_VERSION \(BuildInfo.abiVersion)): start from sa_rate_default_options() and compile against the library's swiftattr.h")
    }
    guard o.exact_kld == 0 || o.exact_kld == 1 else { throw SwiftAttrError(.invalidArgument, "exact_kld must be 0 or 1 (got \(o.exact_kld))") }
    guard let projection = EffectSizeProjection(rawValue: o.projection) else {
        throw SwiftAttrError(.unknownEnum, "projection: unknown sa_projection value \(o.projection)")
    }
    let rank = try checkCount(o.rank, "rank", allowZero: true)
    guard usesX || rank == 0 else {
        throw SwiftAttrError(.invalidArgument, "rank needs X: the low-rank path works from the SVD of X (sa_rate_from_esa takes rank 0)")
    }
    let nNullify = try checkCount(o.nullify_count, "nullify_count", allowZero: true)
    var nullified: [Int] = []
    if nNullify > 0 {
        let indices = try nonNull(o.nullify, "nullify")
        nullified = (0..<nNullify).map { Int(indices[$0]) }
    }
    let nGroups = try checkCount(o.group_count, "group_count", allowZero: true)
    var groups: [[Int]]? = nil
    if nGroups > 0 {
        let offsets = try nonNull(o.group_offsets, "group_offsets")
        guard offsets[0] == 0 else { throw SwiftAttrError(.invalidArgument, "group_offsets[0] must be 0 (got \(offsets[0]))") }
        let total = offsets[nGroups]
        guard total >= 0, total <= Int64(Int32.max) else {
            throw SwiftAttrError(.invalidArgument, "group_offsets[\(nGroups)] = \(total) is not a valid member count")
        }
        let members = try nonNull(o.group_members, "group_members")
        var list: [[Int]] = []
        for g in 0..<nGroups {
            let start = offsets[g], end = offsets[g + 1]
            guard end >= start, end <= total else {
                throw SwiftAttrError(.invalidArgument, "group_offsets must be non-decreasing and at most group_offsets[\(nGroups)] (at \(g + 1))")
            }
            list.append((Int(start)..<Int(end)).map { Int(members[$0]) })  // an empty group is reported by SwiftAttr
        }
        groups = list
    }
    return RATECallOptions(rate: RATEOptions(exactKLD: o.exact_kld == 1, nullify: nullified, groups: groups, jitter: o.jitter),
                           projection: projection, rank: rank == 0 ? nil : rank)
}

/// Writes per-class results into the caller's buffers (rate, kld: classes×m; delta, ess: classes; info:
/// 2·classes or NULL; esa_mean: classes×p or NULL).
/// `options` gives the output length: p, or the number of groups for group RATE.
private func writeResults(_ results: [RATEResult], p: Int, options: RATEOptions,
                          rate: UnsafeMutablePointer<Double>?, kld: UnsafeMutablePointer<Double>?,
                          delta: UnsafeMutablePointer<Double>?, ess: UnsafeMutablePointer<Double>?,
                          info: UnsafeMutablePointer<Int64>?, esaMean: UnsafeMutablePointer<Double>?) throws {
    let classes = results.count
    let m = options.groups?.count ?? p
    let rateOut = try output(rate, classes * m, "rate")
    let kldOut = try output(kld, classes * m, "kld")
    let deltaOut = try output(delta, classes, "delta")
    let essOut = try output(ess, classes, "ess")
    for (c, result) in results.enumerated() {
        for i in 0..<m {
            rateOut[c * m + i] = result.rate[i]
            kldOut[c * m + i] = result.kld[i]
        }
        deltaOut[c] = result.delta
        essOut[c] = result.ess
        if let info {
            info[2 * c] = Int64(result.rank)
            info[2 * c + 1] = result.usedPseudoInverse ? 1 : 0
        }
        if let esaMean { for j in 0..<p { esaMean[c * p + j] = result.effectSizeMean[j] } }
    }
}

/// Checks that outputs are present before doing the work.
private func requireOutputs(_ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
                            _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?) throws {
    _ = try nonNull(rate, "rate")
    _ = try nonNull(kld, "kld")
    _ = try nonNull(delta, "delta")
    _ = try nonNull(ess, "ess")
}

@_cdecl("sa_rate_from_esa")
public func sa_rate_from_esa(
    _ classes: Int64, _ p: Int64, _ esaMean: UnsafePointer<Double>?, _ esaCov: UnsafePointer<Double>?,
    _ options: UnsafePointer<sa_rate_options>?,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let pp = try checkCount(p, "p")
        let covCount = try checkedProduct(c, try checkedProduct(pp, pp, "esa_cov"), "esa_cov")
        let mean = try doubles(esaMean, c * pp, "esa_mean")
        let cov = try doubles(esaCov, covCount, "esa_cov")
        let opts = try rateOptions(options, usesX: false)
        try requireOutputs(rate, kld, delta, ess)
        var results: [RATEResult] = []
        for k in 0..<c {
            let name = c > 1 ? "[\(k)]" : ""
            results.append(try RATE.fromEffectSizePosterior(
                mean: UnsafeBufferPointer(rebasing: mean[(k * pp)..<((k + 1) * pp)]),
                covariance: UnsafeBufferPointer(rebasing: cov[(k * pp * pp)..<((k + 1) * pp * pp)]),
                variables: pp, options: opts.rate, meanName: "esa_mean" + name, covarianceName: "esa_cov" + name))
        }
        try writeResults(results, p: pp, options: opts.rate, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: nil)
    }
}

@_cdecl("sa_rate_from_gaussian")
public func sa_rate_from_gaussian(
    _ classes: Int64, _ n: Int64, _ p: Int64, _ X: UnsafePointer<Double>?, _ meanF: UnsafePointer<Double>?,
    _ covF: UnsafePointer<Double>?, _ options: UnsafePointer<sa_rate_options>?,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X")
        let m = try doubles(meanF, try checkedProduct(c, nn, "M_F"), "M_F")
        let v = try doubles(covF, try checkedProduct(c, try checkedProduct(nn, nn, "V_F"), "V_F"), "V_F")
        let opts = try rateOptions(options, usesX: true)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .gaussian(mean: m, covariance: v), projection: opts.projection,
                                           rank: opts.rank, options: opts.rate)
        try writeResults(results, p: pp, options: opts.rate, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: esaMean)
    }
}

@_cdecl("sa_rate_from_draws")
public func sa_rate_from_draws(
    _ classes: Int64, _ draws: Int64, _ n: Int64, _ p: Int64, _ X: UnsafePointer<Double>?, _ fDraws: UnsafePointer<Double>?,
    _ options: UnsafePointer<sa_rate_options>?,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let s = try checkCount(draws, "draws")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X")
        let f = try doubles(fDraws, try checkedProduct(c, try checkedProduct(s, nn, "f_draws"), "f_draws"), "f_draws")
        let opts = try rateOptions(options, usesX: true)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .draws(f, count: s), projection: opts.projection,
                                           rank: opts.rank, options: opts.rate)
        try writeResults(results, p: pp, options: opts.rate, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: esaMean)
    }
}

@_cdecl("sa_rate_last_layer")
public func sa_rate_last_layer(
    _ classes: Int64, _ n: Int64, _ p: Int64, _ h: Int64, _ X: UnsafePointer<Double>?, _ H: UnsafePointer<Double>?,
    _ wMean: UnsafePointer<Double>?, _ wCov: UnsafePointer<Double>?, _ bias: UnsafePointer<Double>?,
    _ options: UnsafePointer<sa_rate_options>?,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let hh = try checkCount(h, "h")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X")
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H")
        let mean = try doubles(wMean, try checkedProduct(hh, c, "W_mean"), "W_mean")
        let cov = try doubles(wCov, try checkedProduct(c, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov")
        let b = bias.map { UnsafeBufferPointer(start: $0, count: c) }
        let opts = try rateOptions(options, usesX: true)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .lastLayer(features: features, hidden: hh, weightMean: mean,
                                                                 weightCovariance: cov, bias: b),
                                           projection: opts.projection, rank: opts.rank, options: opts.rate)
        try writeResults(results, p: pp, options: opts.rate, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: esaMean)
    }
}

@_cdecl("sa_bayesian_last_layer_regression")
public func sa_bayesian_last_layer_regression(
    _ n: Int64, _ h: Int64, _ outputs: Int64, _ H: UnsafePointer<Double>?, _ y: UnsafePointer<Double>?,
    _ maxIter: Int64, _ tol: Double,
    _ wMean: UnsafeMutablePointer<Double>?, _ wCov: UnsafeMutablePointer<Double>?, _ bias: UnsafeMutablePointer<Double>?,
    _ noisePrecision: UnsafeMutablePointer<Double>?, _ priorPrecision: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let nn = try checkCount(n, "n")
        let hh = try checkCount(h, "h")
        let k = try checkCount(outputs, "outputs")
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H")
        let targets = try doubles(y, try checkedProduct(nn, k, "y"), "y")
        let meanOut = try output(wMean, try checkedProduct(hh, k, "W_mean"), "W_mean")
        let covOut = try output(wCov, try checkedProduct(k, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov")
        let biasOut = try output(bias, k, "b")
        let noiseOut = try output(noisePrecision, k, "noise_precision")
        let priorOut = try output(priorPrecision, k, "prior_precision")
        let post = try BayesianLastLayer.regression(features: features, examples: nn, hidden: hh, targets: targets, outputs: k,
                                                    maxIterations: Int(maxIter), tolerance: tol)
        for i in 0..<meanOut.count { meanOut[i] = post.weightMean[i] }
        for i in 0..<covOut.count { covOut[i] = post.weightCovariance[i] }
        for i in 0..<k {
            biasOut[i] = post.bias[i]
            noiseOut[i] = post.noisePrecision[i]
            priorOut[i] = post.priorPrecision[i]
        }
    }
}

@_cdecl("sa_bayesian_last_layer_classification")
public func sa_bayesian_last_layer_classification(
    _ n: Int64, _ h: Int64, _ classes: Int64, _ H: UnsafePointer<Double>?, _ labels: UnsafePointer<Int64>?,
    _ priorPrecision: Double, _ maxIter: Int64, _ tol: Double,
    _ wMean: UnsafeMutablePointer<Double>?, _ wCov: UnsafeMutablePointer<Double>?, _ bias: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let nn = try checkCount(n, "n")
        let hh = try checkCount(h, "h")
        let k = try checkCount(classes, "classes")
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H")
        let y = UnsafeBufferPointer(start: try nonNull(labels, "labels"), count: nn)
        let meanOut = try output(wMean, try checkedProduct(hh, k, "W_mean"), "W_mean")
        let covOut = try output(wCov, try checkedProduct(k, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov")
        let biasOut = try output(bias, k, "b")
        let post = try BayesianLastLayer.classification(features: features, examples: nn, hidden: hh, labels: y, classes: k,
                                                        priorPrecision: priorPrecision, maxIterations: Int(maxIter), tolerance: tol)
        for i in 0..<meanOut.count { meanOut[i] = post.weightMean[i] }
        for i in 0..<covOut.count { covOut[i] = post.weightCovariance[i] }
        for i in 0..<k { biasOut[i] = post.bias[i] }
    }
}
