import SwiftAttr

// C exports of Agglomerative Contextual Decomposition (swiftattr.h, section "ACD"): the hierarchy of one
// example scored by CD of a model (sa_acd_1d, sa_acd_2d) or by the caller's batched scorer
// (sa_acd_1d_scored, sa_acd_2d_scored), written into buffers sized by sa_acd_capacity.

/// `int (*sa_group_scorer)(void *context, const float *masks, int64_t n_masks, int64_t mask_size, float *scores)`.
public typealias GroupScorerCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<Float>?, Int64, Int64,
                                                       UnsafeMutablePointer<Float>?) -> Int32

/// The grid of units and the largest number of levels of a hierarchy over `dims` ([L] or [H, W]).
/// `blockSize` is positive (checkCount).
private func acdCapacity(_ dims: [Int], blockSize: Int) throws -> (units: Int, maxLevels: Int) {
    let units = try Check.count(dims.map { ($0 + blockSize - 1) / blockSize }, "dims")
    // 1-D: every iteration selects at least one unit, and the last covers all; 2-D: at most one iteration
    // per unit, then at most units − 1 merges.
    return (units, dims.count == 1 ? units : 2 * units - 1)
}

/// The agglomeration options from the C arguments (`max_iterations` 0: no limit).
private func acdOptions(_ percentile: Double, _ blockSize: Int64, _ maxIterations: Int64) throws -> ACDOptions {
    let iterations = try checkCount(maxIterations, "max_iterations", allowZero: true)
    return ACDOptions(percentileInclude: percentile, blockSize: try checkCount(blockSize, "block_size"),
                      maxIterations: iterations == 0 ? nil : iterations)
}

/// The caller's scorer as a ``GroupScorer``: a non-zero status from it stops the agglomeration.
private func callerScorer(_ scorer: GroupScorerCallback?, _ context: UnsafeMutableRawPointer?, inputSize: Int) throws -> GroupScorer {
    let f = try nonNull(scorer, "scorer")
    return GroupScorer(inputSize: inputSize) { masks, m in
        var out = [Float](repeating: .nan, count: m)
        let status = masks.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer { op in f(context, mp.baseAddress, Int64(m), Int64(inputSize), op.baseAddress) }
        }
        guard status == 0 else { throw SwiftAttrError(.invalidArgument, "scorer returned status \(status)") }
        return out
    }
}

/// `scorer`, telling the progress handler after each batch of groups it scores how many batches are done
/// (of total 0: how many there will be is not known in advance); a cancel stops the agglomeration.
private func reporting(_ scorer: GroupScorer, call: String = #function) -> GroupScorer {
    var done = 0
    return GroupScorer(inputSize: scorer.inputSize) { masks, m in
        let scores = try scorer.score(masks, m)
        done += 1
        try reportProgress(done, of: 0, call: call)
        return scores
    }
}

/// The model's scorer for example `x` (one example) and `target`.
private func modelScorer(_ net: Network, _ x: UnsafePointer<Float>?, _ target: Int64, _ scoreRule: Int32) throws -> GroupScorer {
    let xs = try CallerRows(x, rows: 1, width: net.inputSize, "x", countName: "n")
    try xs.checkFinite()
    guard let rule = ACDScoreRule(rawValue: scoreRule) else {
        throw SwiftAttrError(.unknownEnum, "score_rule: \(scoreRule) is not an sa_acd_score_rule (0 auto, 1 target, 2 target_minus_other)")
    }
    guard target >= 0, target < Int64(net.outputSize) else {
        throw SwiftAttrError(.outOfRange, "target must be in 0..<\(net.outputSize) (got \(target))")
    }
    return try .contextualDecomposition(network: net, x: try xs.copyAll(), target: Int(target), rule: rule)
}

/// Writes `h` into the caller's buffers (capacities from sa_acd_capacity): labels and scores
/// max_levels × units (scores by label − 1, NaN where a label is absent), unit_scores units, merges
/// (units − 1) × 2 and merge_gains units − 1 (both may be NULL for 1-D).
private func writeHierarchy(_ h: ACDHierarchy, labels: UnsafeMutablePointer<Int32>?, scores: UnsafeMutablePointer<Float>?,
                            unitScores: UnsafeMutablePointer<Float>?, fullScore: UnsafeMutablePointer<Float>?,
                            merges: UnsafeMutablePointer<Int32>?, mergeGains: UnsafeMutablePointer<Float>?,
                            nLevels: UnsafeMutablePointer<Int64>?, nIterationLevels: UnsafeMutablePointer<Int64>?) throws {
    let u = h.unitScores.count
    let lab = try output(labels, h.levels.count * u, "labels"), sc = try output(scores, h.levels.count * u, "scores")
    let us = try output(unitScores, u, "unit_scores"), fs = try nonNull(fullScore, "full_score"), nl = try nonNull(nLevels, "n_levels")
    for (t, level) in h.levels.enumerated() {
        for i in 0..<u { lab[t * u + i] = Int32(level.labels[i]); sc[t * u + i] = .nan }
        for (k, label) in level.components.enumerated() {
            guard label >= 1, label <= u else { throw SwiftAttrError(.internal, "ACD: component label \(label) outside 1...\(u)") }
            sc[t * u + label - 1] = level.scores[k]
        }
    }
    for i in 0..<u { us[i] = h.unitScores[i] }
    fs.pointee = h.fullScore
    nl.pointee = Int64(h.levels.count)
    if let n = nIterationLevels { n.pointee = Int64(h.iterationLevels) }
    if !h.merges.isEmpty {
        let m = try output(merges, 2 * h.merges.count, "merges"), g = try output(mergeGains, h.merges.count, "merge_gains")
        for (k, merge) in h.merges.enumerated() { m[2 * k] = Int32(merge.kept); m[2 * k + 1] = Int32(merge.absorbed); g[k] = merge.gain }
    }
}

/// `int sa_acd_capacity(int64_t ndim, const int64_t *dims, int64_t block_size, int64_t *n_units, int64_t *max_levels)`.
@_cdecl("sa_acd_capacity")
public func sa_acd_capacity(_ ndim: Int64, _ dims: UnsafePointer<Int64>?, _ blockSize: Int64,
                            _ nUnits: UnsafeMutablePointer<Int64>?, _ maxLevels: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let d = try readDims(dims, ndim, "dims", maxCount: 2)
        let c = try acdCapacity(d, blockSize: try checkCount(blockSize, "block_size"))
        try nonNull(nUnits, "n_units").pointee = Int64(c.units)
        try nonNull(maxLevels, "max_levels").pointee = Int64(c.maxLevels)
    }
}

/// The sequence of a model input: [L] or [C, L].
private func sequenceShape(_ net: Network) throws -> (length: Int, channels: Int) {
    switch net.inputShape.count {
    case 1: return (net.inputShape[0], 1)
    case 2: return (net.inputShape[1], net.inputShape[0])
    default: throw SwiftAttrError(.shapeMismatch, "model: sa_acd_1d needs an input of shape [L] or [C, L] (the model's is \(net.inputShape))")
    }
}

@_cdecl("sa_acd_1d")
public func sa_acd_1d(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ target: Int64, _ scoreRule: Int32,
    _ percentile: Double, _ blockSize: Int64, _ maxIterations: Int64,
    _ labels: UnsafeMutablePointer<Int32>?, _ scores: UnsafeMutablePointer<Float>?, _ unitScores: UnsafeMutablePointer<Float>?,
    _ fullScore: UnsafeMutablePointer<Float>?, _ nLevels: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (length, channels) = try sequenceShape(net)
        let options = try acdOptions(percentile, blockSize, maxIterations)
        let scorer = try modelScorer(net, x, target, scoreRule)
        let h = try ACD.agglomerate1D(length: length, channels: channels, scorer: reporting(scorer), options: options)
        try writeHierarchy(h, labels: labels, scores: scores, unitScores: unitScores, fullScore: fullScore,
                           merges: nil, mergeGains: nil, nLevels: nLevels, nIterationLevels: nil)
    }
}

@_cdecl("sa_acd_1d_scored")
public func sa_acd_1d_scored(
    _ scorer: GroupScorerCallback?, _ context: UnsafeMutableRawPointer?, _ length: Int64, _ channels: Int64,
    _ percentile: Double, _ blockSize: Int64, _ maxIterations: Int64,
    _ labels: UnsafeMutablePointer<Int32>?, _ scores: UnsafeMutablePointer<Float>?, _ unitScores: UnsafeMutablePointer<Float>?,
    _ fullScore: UnsafeMutablePointer<Float>?, _ nLevels: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let l = try checkCount(length, "length"), c = try checkCount(channels, "channels")
        let options = try acdOptions(percentile, blockSize, maxIterations)
        let s = try callerScorer(scorer, context, inputSize: try checkedProduct(l, c, "mask_size", factors: ["length", "channels"]))
        let h = try ACD.agglomerate1D(length: l, channels: c, scorer: reporting(s), options: options)
        try writeHierarchy(h, labels: labels, scores: scores, unitScores: unitScores, fullScore: fullScore,
                           merges: nil, mergeGains: nil, nLevels: nLevels, nIterationLevels: nil)
    }
}

@_cdecl("sa_acd_2d")
public func sa_acd_2d(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ target: Int64, _ scoreRule: Int32,
    _ percentile: Double, _ blockSize: Int64, _ maxIterations: Int64,
    _ labels: UnsafeMutablePointer<Int32>?, _ scores: UnsafeMutablePointer<Float>?, _ unitScores: UnsafeMutablePointer<Float>?,
    _ fullScore: UnsafeMutablePointer<Float>?, _ merges: UnsafeMutablePointer<Int32>?, _ mergeGains: UnsafeMutablePointer<Float>?,
    _ nLevels: UnsafeMutablePointer<Int64>?, _ nIterationLevels: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        guard net.inputShape.count == 3 else {
            throw SwiftAttrError(.shapeMismatch, "model: sa_acd_2d needs an input of shape [C, H, W] (the model's is \(net.inputShape))")
        }
        let options = try acdOptions(percentile, blockSize, maxIterations)
        let scorer = try modelScorer(net, x, target, scoreRule)
        let h = try ACD.agglomerate2D(height: net.inputShape[1], width: net.inputShape[2], channels: net.inputShape[0],
                                      scorer: reporting(scorer), options: options)
        try writeHierarchy(h, labels: labels, scores: scores, unitScores: unitScores, fullScore: fullScore,
                           merges: merges, mergeGains: mergeGains, nLevels: nLevels, nIterationLevels: nIterationLevels)
    }
}

@_cdecl("sa_acd_2d_scored")
public func sa_acd_2d_scored(
    _ scorer: GroupScorerCallback?, _ context: UnsafeMutableRawPointer?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ percentile: Double, _ blockSize: Int64, _ maxIterations: Int64,
    _ labels: UnsafeMutablePointer<Int32>?, _ scores: UnsafeMutablePointer<Float>?, _ unitScores: UnsafeMutablePointer<Float>?,
    _ fullScore: UnsafeMutablePointer<Float>?, _ merges: UnsafeMutablePointer<Int32>?, _ mergeGains: UnsafeMutablePointer<Float>?,
    _ nLevels: UnsafeMutablePointer<Int64>?, _ nIterationLevels: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let h = try checkCount(height, "height"), w = try checkCount(width, "width"), c = try checkCount(channels, "channels")
        let options = try acdOptions(percentile, blockSize, maxIterations)
        let size = try checkedProduct(try checkedProduct(h, w, "mask_size", factors: ["height", "width"]), c, "mask_size")
        let s = try callerScorer(scorer, context, inputSize: size)
        let result = try ACD.agglomerate2D(height: h, width: w, channels: c, scorer: reporting(s), options: options)
        try writeHierarchy(result, labels: labels, scores: scores, unitScores: unitScores, fullScore: fullScore,
                           merges: merges, mergeGains: mergeGains, nLevels: nLevels, nIterationLevels: nIterationLevels)
    }
}
