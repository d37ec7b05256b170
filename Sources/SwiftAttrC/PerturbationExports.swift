import SwiftAttr

// Perturbation methods (occlusion, feature ablation and permutation, Shapley value sampling, KernelSHAP,
// LIME). Each runs on the whole batch in one SwiftAttr call: feature permutation mixes examples, and the
// others bound their memory by chunking the perturbed inputs inside SwiftAttr (internal_batch_size), which
// reports its progress between pieces of those chunks (see ``CallProgress``).

/// The batch, its baselines and targets, checked in the header's order; the output pointer is checked
/// before any work.
private func perturbationCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ out: UnsafeMutablePointer<Float>?
) throws -> (net: Network, x: CallerRows, xs: [Float], b: [Float], targets: [Int]) {
    let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
    let b = try CallerBaselines(net, baselines, nBaselines, rows: xs.rows, name: "baselines", countName: "n_baselines")
    return (net, xs, try xs.copyAll(), try b.slice(0..<xs.rows), try t.slice(0..<xs.rows))
}

/// The caller's feature mask: NULL (every element its own feature; mask_rows ignored) or mask_rows (1 or n)
/// × input_size int64 ids; `features` is the number of features (the largest id + 1, SwiftAttr checks that the
/// ids are contiguous).
private func featureMask(_ mask: UnsafePointer<Int64>?, _ maskRows: Int64, net: Network, rows: Int) throws -> (ids: [Int]?, rows: Int, features: Int) {
    guard let mask else { return (nil, 1, net.inputSize) }
    guard maskRows == 1 || maskRows == Int64(rows) else {
        throw SwiftAttrError(.shapeMismatch, "mask_rows: expected 1 (shared by the batch) or \(rows) (one per example), got \(maskRows)")
    }
    let count = try checkedProduct(Int(maskRows), net.inputSize, "feature_mask", factors: ["mask_rows", "input_size"])
    var ids = [Int](repeating: 0, count: count)
    for i in 0..<count {
        let v = mask[i]
        guard v >= 0, v <= Int64(Int32.max) else {
            throw SwiftAttrError(.invalidArgument, "feature_mask: ids must be in 0...\(Int32.max) (got \(v) at flat index \(i))")
        }
        ids[i] = Int(v)
    }
    return (ids, Int(maskRows), (ids.max() ?? -1) + 1)
}

/// `count` int64 permutation entries (NULL: nil), read as Ints (SwiftAttr checks that they are permutations).
private func permutationEntries(_ p: UnsafePointer<Int64>?, _ count: Int) -> [Int]? {
    guard let p else { return nil }
    return (0..<count).map { i in Int(clamping: p[i]) }
}

/// `count` coalition bits (NULL: nil).
private func coalitionBits(_ c: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8]? {
    guard let c else { return nil }
    return Array(UnsafeBufferPointer(start: c, count: count))
}

/// Runs the SwiftAttr call `body` on the batch `x`: its evaluation loop reports to the calling thread's
/// progress handler (perturbed inputs done of total; a cancel stops it), and a rejected value is located
/// in the caller's buffer. `call` names the export.
private func evaluating<T>(_ x: CallerRows, call: String = #function, _ body: () throws -> T) throws -> T {
    try CallProgress.observing({ done, total in try reportProgress(done, of: total, call: call) }) {
        try locatingRejectedValue([x], body)
    }
}

/// Writes the batch's attributions to `out`.
private func finish(_ values: [Float], _ net: Network, rows: Int, _ out: UnsafeMutablePointer<Float>?) throws {
    try write(values, to: out, count: rows * net.inputSize)
}

@_cdecl("sa_occlusion")
public func sa_occlusion(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ window: UnsafePointer<Int64>?, _ strides: UnsafePointer<Int64>?,
    _ ndim: Int64, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let call = try perturbationCall(model, x, n, baselines, nBaselines, target, nTarget, out)
        let rank = call.net.inputShape.count
        guard ndim == Int64(rank) else {
            throw SwiftAttrError(.shapeMismatch, "ndim: expected \(rank) (the input's dimensions \(call.net.inputShape)), got \(ndim)")
        }
        let w = try nonNull(window, "sliding_window_shapes")
        let windowSizes = (0..<rank).map { Int(clamping: w[$0]) }
        let steps = strides.map { s in (0..<rank).map { Int(clamping: s[$0]) } }
        try evaluating(call.x) {
            try finish(call.net.occlusion(call.xs, rows: call.x.rows, window: windowSizes, strides: steps, baselines: call.b,
                                          targets: call.targets, internalBatchSize: try chunk(internalBatchSize)), call.net, rows: call.x.rows, out)
        }
    }
}

@_cdecl("sa_feature_ablation")
public func sa_feature_ablation(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ mask: UnsafePointer<Int64>?, _ maskRows: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let call = try perturbationCall(model, x, n, baselines, nBaselines, target, nTarget, out)
        let m = try featureMask(mask, maskRows, net: call.net, rows: call.x.rows)
        try evaluating(call.x) {
            try finish(call.net.featureAblation(call.xs, rows: call.x.rows, baselines: call.b, mask: m.ids, maskRows: m.rows,
                                                targets: call.targets, internalBatchSize: try chunk(internalBatchSize)), call.net, rows: call.x.rows, out)
        }
    }
}

@_cdecl("sa_feature_permutation")
public func sa_feature_permutation(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ mask: UnsafePointer<Int64>?, _ maskRows: Int64, _ seed: UInt64, _ permutations: UnsafePointer<Int64>?,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let call = try perturbationCall(model, x, n, nil, 0, target, nTarget, out)
        let m = try featureMask(mask, maskRows, net: call.net, rows: call.x.rows)
        let p = permutationEntries(permutations, try checkedProduct(m.features, call.x.rows, "permutations", factors: ["features", "n"]))
        try evaluating(call.x) {
            try finish(call.net.featurePermutation(call.xs, rows: call.x.rows, mask: m.ids, maskRows: m.rows, targets: call.targets,
                                                   seed: seed, permutations: p, internalBatchSize: try chunk(internalBatchSize)), call.net, rows: call.x.rows, out)
        }
    }
}

@_cdecl("sa_shapley_value_sampling")
public func sa_shapley_value_sampling(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ mask: UnsafePointer<Int64>?, _ maskRows: Int64, _ nSamples: Int64,
    _ seed: UInt64, _ firstExample: Int64, _ permutations: UnsafePointer<Int64>?, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let call = try perturbationCall(model, x, n, baselines, nBaselines, target, nTarget, out)
        let m = try featureMask(mask, maskRows, net: call.net, rows: call.x.rows)
        let samples = try checkCount(nSamples, "n_samples")
        let p = permutationEntries(permutations, try checkedProduct(samples, m.features, "permutations", factors: ["n_samples", "features"]))
        let offset = try exampleOffset(firstExample, rows: call.x.rows)
        try evaluating(call.x) {
            try finish(call.net.shapleyValueSampling(call.xs, rows: call.x.rows, baselines: call.b, mask: m.ids, maskRows: m.rows,
                                                     targets: call.targets, samples: samples, seed: seed, exampleOffset: offset,
                                                     permutations: p, internalBatchSize: try chunk(internalBatchSize)), call.net, rows: call.x.rows, out)
        }
    }
}

/// Caller coalitions: NULL, or coalition_rows (1 or n) × n_samples × features bytes.
private func callerCoalitions(_ c: UnsafePointer<UInt8>?, _ coalitionRows: Int64, samples: Int, features: Int, rows: Int) throws -> (bits: [UInt8]?, rows: Int) {
    guard c != nil else { return (nil, 1) }
    guard coalitionRows == 1 || coalitionRows == Int64(rows) else {
        throw SwiftAttrError(.shapeMismatch, "coalition_rows: expected 1 (shared by the batch) or \(rows) (one per example), got \(coalitionRows)")
    }
    let perRow = try checkedProduct(samples, features, "coalitions", factors: ["n_samples", "features"])
    let count = try checkedProduct(Int(coalitionRows), perRow, "coalitions", factors: ["coalition_rows", "n_samples × features"])
    return (coalitionBits(c, count), Int(coalitionRows))
}

/// The arguments KernelSHAP and LIME share, checked in the header's order: the batch, baselines and targets,
/// the feature mask, n_samples, the caller's coalitions and first_example.
private func coalitionCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ mask: UnsafePointer<Int64>?, _ maskRows: Int64, _ nSamples: Int64,
    _ firstExample: Int64, _ coalitions: UnsafePointer<UInt8>?, _ coalitionRows: Int64, _ out: UnsafeMutablePointer<Float>?
) throws -> (call: (net: Network, x: CallerRows, xs: [Float], b: [Float], targets: [Int]), mask: (ids: [Int]?, rows: Int, features: Int),
             samples: Int, coalitions: (bits: [UInt8]?, rows: Int), offset: Int) {
    let call = try perturbationCall(model, x, n, baselines, nBaselines, target, nTarget, out)
    let m = try featureMask(mask, maskRows, net: call.net, rows: call.x.rows)
    let samples = try checkCount(nSamples, "n_samples")
    let c = try callerCoalitions(coalitions, coalitionRows, samples: samples, features: m.features, rows: call.x.rows)
    return (call, m, samples, c, try exampleOffset(firstExample, rows: call.x.rows))
}

@_cdecl("sa_kernel_shap")
public func sa_kernel_shap(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ mask: UnsafePointer<Int64>?, _ maskRows: Int64, _ nSamples: Int64,
    _ seed: UInt64, _ firstExample: Int64, _ coalitions: UnsafePointer<UInt8>?, _ coalitionRows: Int64,
    _ coalitionWeights: UnsafePointer<Double>?, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (call, m, samples, c, offset) = try coalitionCall(model, x, n, baselines, nBaselines, target, nTarget, mask, maskRows,
                                                              nSamples, firstExample, coalitions, coalitionRows, out)
        let weights = try coalitionWeights.map { w -> [Double] in
            guard c.bits != nil else { throw SwiftAttrError(.invalidArgument, "coalition_weights: given without coalitions") }
            return Array(try doubles(w, c.rows * samples, "coalition_weights"))
        }
        try evaluating(call.x) {
            try finish(call.net.kernelShap(call.xs, rows: call.x.rows, baselines: call.b, mask: m.ids, maskRows: m.rows,
                                           targets: call.targets, samples: samples, seed: seed, exampleOffset: offset,
                                           coalitions: c.bits, coalitionRows: c.rows, coalitionWeights: weights,
                                           internalBatchSize: try chunk(internalBatchSize)),
                       call.net, rows: call.x.rows, out)
        }
    }
}

@_cdecl("sa_lime")
public func sa_lime(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ mask: UnsafePointer<Int64>?, _ maskRows: Int64, _ nSamples: Int64,
    _ seed: UInt64, _ firstExample: Int64, _ coalitions: UnsafePointer<UInt8>?, _ coalitionRows: Int64,
    _ kernelWidth: Double, _ distance: Int32, _ surrogate: Int32, _ alpha: Double, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (call, m, samples, c, offset) = try coalitionCall(model, x, n, baselines, nBaselines, target, nTarget, mask, maskRows,
                                                              nSamples, firstExample, coalitions, coalitionRows, out)
        guard let mode = LimeDistance(rawValue: distance) else {
            throw SwiftAttrError(.unknownEnum, "distance: \(distance) is not an sa_lime_distance (0…\(LimeDistance.allCases.count - 1))")
        }
        guard let model = LimeSurrogate(rawValue: surrogate) else {
            throw SwiftAttrError(.unknownEnum, "surrogate: \(surrogate) is not an sa_lime_surrogate (0…\(LimeSurrogate.allCases.count - 1))")
        }
        try evaluating(call.x) {
            try finish(call.net.lime(call.xs, rows: call.x.rows, baselines: call.b, mask: m.ids, maskRows: m.rows,
                                     targets: call.targets, samples: samples, seed: seed, exampleOffset: offset,
                                     coalitions: c.bits, coalitionRows: c.rows, kernelWidth: kernelWidth, distance: mode,
                                     surrogate: model, alpha: alpha, internalBatchSize: try chunk(internalBatchSize)),
                       call.net, rows: call.x.rows, out)
        }
    }
}
