import SwiftAttr

// C exports of RATE and the Bayesian last layer (swiftattr.h, section "RATE"). Each checks its pointers and
// sizes, calls SwiftAttr, and maps errors to status codes through `guarded`.

/// Reads the options shared by every RATE export.
private func rateOptions(exactKLD: Int32, nullify: UnsafePointer<Int64>?, nullifyCount: Int64,
                         groupMembers: UnsafePointer<Int64>?, groupOffsets: UnsafePointer<Int64>?, groupCount: Int64,
                         jitter: Double) throws -> RATEOptions {
    guard exactKLD == 0 || exactKLD == 1 else { throw SwiftAttrError(.invalidArgument, "exact_kld must be 0 or 1 (got \(exactKLD))") }
    guard jitter.isFinite && jitter >= 0 else { throw SwiftAttrError(.invalidArgument, "jitter must be finite and non-negative (got \(jitter))") }
    let nNullify = try checkCount(nullifyCount, "nullify_count", allowZero: true)
    var nullified: [Int] = []
    if nNullify > 0 {
        let pointer = try nonNull(nullify, "nullify")
        nullified = (0..<nNullify).map { Int(clamping: pointer[$0]) }
    }
    let nGroups = try checkCount(groupCount, "group_count", allowZero: true)
    var groups: [[Int]]? = nil
    if nGroups > 0 {
        let offsets = try nonNull(groupOffsets, "group_offsets")
        guard offsets[0] == 0 else { throw SwiftAttrError(.invalidArgument, "group_offsets[0] must be 0 (got \(offsets[0]))") }
        let total = offsets[nGroups]
        guard total >= 0, total <= Int64(Int32.max) else {
            throw SwiftAttrError(.invalidArgument, "group_offsets[\(nGroups)] = \(total) is not a valid member count")
        }
        let members = try nonNull(groupMembers, "group_members")
        var list: [[Int]] = []
        for g in 0..<nGroups {
            let start = offsets[g], end = offsets[g + 1]
            guard end >= start, end <= total else {
                throw SwiftAttrError(.invalidArgument, "group_offsets must be non-decreasing and at most group_offsets[\(nGroups)] (at \(g + 1))")
            }
            guard end > start else { throw SwiftAttrError(.invalidArgument, "groups[\(g)] is empty") }
            list.append((Int(start)..<Int(end)).map { Int(clamping: members[$0]) })
        }
        groups = list
    }
    return RATEOptions(exactKLD: exactKLD == 1, nullify: nullified, groups: groups, jitter: jitter)
}

private func projectionValue(_ raw: Int32) throws -> EffectSizeProjection {
    guard let value = EffectSizeProjection(rawValue: raw) else {
        throw SwiftAttrError(.unknownEnum, "projection: unknown sa_projection value \(raw)")
    }
    return value
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
    _ exactKLD: Int32, _ nullify: UnsafePointer<Int64>?, _ nullifyCount: Int64,
    _ groupMembers: UnsafePointer<Int64>?, _ groupOffsets: UnsafePointer<Int64>?, _ groupCount: Int64, _ jitter: Double,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let pp = try checkCount(p, "p")
        let covCount = try checkedProduct(c, try checkedProduct(pp, pp, "esa_cov"), "esa_cov")
        let mean = try doubles(esaMean, c * pp, "esa_mean", finite: false)
        let cov = try doubles(esaCov, covCount, "esa_cov", finite: false)
        let options = try rateOptions(exactKLD: exactKLD, nullify: nullify, nullifyCount: nullifyCount,
                                      groupMembers: groupMembers, groupOffsets: groupOffsets, groupCount: groupCount, jitter: jitter)
        try requireOutputs(rate, kld, delta, ess)
        var results: [RATEResult] = []
        for k in 0..<c {
            let name = c > 1 ? "[\(k)]" : ""
            results.append(try RATE.fromEffectSizePosterior(
                mean: UnsafeBufferPointer(rebasing: mean[(k * pp)..<((k + 1) * pp)]),
                covariance: UnsafeBufferPointer(rebasing: cov[(k * pp * pp)..<((k + 1) * pp * pp)]),
                variables: pp, options: options, meanName: "esa_mean" + name, covarianceName: "esa_cov" + name))
        }
        try writeResults(results, p: pp, options: options, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: nil)
    }
}

@_cdecl("sa_rate_from_gaussian")
public func sa_rate_from_gaussian(
    _ classes: Int64, _ n: Int64, _ p: Int64, _ X: UnsafePointer<Double>?, _ meanF: UnsafePointer<Double>?,
    _ covF: UnsafePointer<Double>?, _ projection: Int32, _ rank: Int64,
    _ exactKLD: Int32, _ nullify: UnsafePointer<Int64>?, _ nullifyCount: Int64,
    _ groupMembers: UnsafePointer<Int64>?, _ groupOffsets: UnsafePointer<Int64>?, _ groupCount: Int64, _ jitter: Double,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X", finite: false)
        let m = try doubles(meanF, try checkedProduct(c, nn, "M_F"), "M_F", finite: false)
        let v = try doubles(covF, try checkedProduct(c, try checkedProduct(nn, nn, "V_F"), "V_F"), "V_F", finite: false)
        let proj = try projectionValue(projection)
        let r = try checkCount(rank, "rank", allowZero: true)
        let options = try rateOptions(exactKLD: exactKLD, nullify: nullify, nullifyCount: nullifyCount,
                                      groupMembers: groupMembers, groupOffsets: groupOffsets, groupCount: groupCount, jitter: jitter)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .gaussian(mean: m, covariance: v), projection: proj,
                                           rank: r == 0 ? nil : r, options: options)
        try writeResults(results, p: pp, options: options, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: esaMean)
    }
}

@_cdecl("sa_rate_from_draws")
public func sa_rate_from_draws(
    _ classes: Int64, _ draws: Int64, _ n: Int64, _ p: Int64, _ X: UnsafePointer<Double>?, _ fDraws: UnsafePointer<Double>?,
    _ projection: Int32, _ rank: Int64,
    _ exactKLD: Int32, _ nullify: UnsafePointer<Int64>?, _ nullifyCount: Int64,
    _ groupMembers: UnsafePointer<Int64>?, _ groupOffsets: UnsafePointer<Int64>?, _ groupCount: Int64, _ jitter: Double,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let s = try checkCount(draws, "draws")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X", finite: false)
        let f = try doubles(fDraws, try checkedProduct(c, try checkedProduct(s, nn, "f_draws"), "f_draws"), "f_draws", finite: false)
        let proj = try projectionValue(projection)
        let r = try checkCount(rank, "rank", allowZero: true)
        let options = try rateOptions(exactKLD: exactKLD, nullify: nullify, nullifyCount: nullifyCount,
                                      groupMembers: groupMembers, groupOffsets: groupOffsets, groupCount: groupCount, jitter: jitter)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .draws(f, count: s), projection: proj,
                                           rank: r == 0 ? nil : r, options: options)
        try writeResults(results, p: pp, options: options, rate: rate, kld: kld, delta: delta,
                         ess: ess, info: info, esaMean: esaMean)
    }
}

@_cdecl("sa_rate_last_layer")
public func sa_rate_last_layer(
    _ classes: Int64, _ n: Int64, _ p: Int64, _ h: Int64, _ X: UnsafePointer<Double>?, _ H: UnsafePointer<Double>?,
    _ wMean: UnsafePointer<Double>?, _ wCov: UnsafePointer<Double>?, _ bias: UnsafePointer<Double>?,
    _ projection: Int32, _ rank: Int64,
    _ exactKLD: Int32, _ nullify: UnsafePointer<Int64>?, _ nullifyCount: Int64,
    _ groupMembers: UnsafePointer<Int64>?, _ groupOffsets: UnsafePointer<Int64>?, _ groupCount: Int64, _ jitter: Double,
    _ rate: UnsafeMutablePointer<Double>?, _ kld: UnsafeMutablePointer<Double>?,
    _ delta: UnsafeMutablePointer<Double>?, _ ess: UnsafeMutablePointer<Double>?, _ info: UnsafeMutablePointer<Int64>?,
    _ esaMean: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let c = try checkCount(classes, "classes")
        let nn = try checkCount(n, "n")
        let pp = try checkCount(p, "p")
        let hh = try checkCount(h, "h")
        let x = try doubles(X, try checkedProduct(nn, pp, "X"), "X", finite: false)
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H", finite: false)
        let mean = try doubles(wMean, try checkedProduct(hh, c, "W_mean"), "W_mean", finite: false)
        let cov = try doubles(wCov, try checkedProduct(c, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov", finite: false)
        let b = bias.map { UnsafeBufferPointer(start: $0, count: c) }
        let proj = try projectionValue(projection)
        let r = try checkCount(rank, "rank", allowZero: true)
        let options = try rateOptions(exactKLD: exactKLD, nullify: nullify, nullifyCount: nullifyCount,
                                      groupMembers: groupMembers, groupOffsets: groupOffsets, groupCount: groupCount, jitter: jitter)
        try requireOutputs(rate, kld, delta, ess)
        let results = try RATE.fromOutputs(X: x, examples: nn, variables: pp, classes: c,
                                           posterior: .lastLayer(features: features, hidden: hh, weightMean: mean,
                                                                 weightCovariance: cov, bias: b),
                                           projection: proj, rank: r == 0 ? nil : r, options: options)
        try writeResults(results, p: pp, options: options, rate: rate, kld: kld, delta: delta,
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
        let iterations = try checkCount(maxIter, "max_iter")
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H", finite: false)
        let targets = try doubles(y, try checkedProduct(nn, k, "y"), "y", finite: false)
        let meanOut = try output(wMean, try checkedProduct(hh, k, "W_mean"), "W_mean")
        let covOut = try output(wCov, try checkedProduct(k, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov")
        let biasOut = try output(bias, k, "b")
        let noiseOut = try output(noisePrecision, k, "noise_precision")
        let priorOut = try output(priorPrecision, k, "prior_precision")
        let post = try BayesianLastLayer.regression(features: features, examples: nn, hidden: hh, targets: targets, outputs: k,
                                                    maxIterations: iterations, tolerance: tol)
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
        let iterations = try checkCount(maxIter, "max_iter")
        let features = try doubles(H, try checkedProduct(nn, hh, "H"), "H", finite: false)
        let y = UnsafeBufferPointer(start: try nonNull(labels, "labels"), count: nn)
        let meanOut = try output(wMean, try checkedProduct(hh, k, "W_mean"), "W_mean")
        let covOut = try output(wCov, try checkedProduct(k, try checkedProduct(hh, hh, "W_cov"), "W_cov"), "W_cov")
        let biasOut = try output(bias, k, "b")
        let post = try BayesianLastLayer.classification(features: features, examples: nn, hidden: hh, labels: y, classes: k,
                                                        priorPrecision: priorPrecision, maxIterations: iterations, tolerance: tol)
        for i in 0..<meanOut.count { meanOut[i] = post.weightMean[i] }
        for i in 0..<covOut.count { covOut[i] = post.weightCovariance[i] }
        for i in 0..<k { biasOut[i] = post.bias[i] }
    }
}
