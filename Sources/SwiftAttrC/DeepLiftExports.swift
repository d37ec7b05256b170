import SwiftAttr

// C exports of DeepLIFT and DeepSHAP (swiftattr.h, section "DeepLIFT").

/// The rule for `rule` (an sa_deeplift_rule), or an unknown-enum error naming the argument.
func deepLiftRule(_ rule: Int32) throws -> DeepLiftRule {
    guard let r = DeepLiftRule(rawValue: rule) else {
        throw SwiftAttrError(.unknownEnum, "rule: \(rule) is not an sa_deeplift_rule (0 rescale, 1 revealcancel, 2 genomics)")
    }
    return r
}

/// The max-pooling rule for `maxpool` (an sa_maxpool_rule), or an unknown-enum error naming the argument.
func maxPoolRule(_ maxpool: Int32) throws -> MaxPoolRule {
    guard let r = MaxPoolRule(rawValue: maxpool) else {
        throw SwiftAttrError(.unknownEnum, "maxpool: \(maxpool) is not an sa_maxpool_rule (0 gradient, 1 crossmax)")
    }
    return r
}

@_cdecl("sa_deeplift")
public func sa_deeplift(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ rule: Int32, _ maxpool: Int32, _ multiplyByInputs: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, _, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let r = try deepLiftRule(rule), m = try maxPoolRule(maxpool)
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        try perExampleWithDelta(net, xs, baselines: base, passes: 4, out: out, delta: delta) { values, rows, base, range in
            let result = try net.deepLift(values, rows: rows, baselines: base, targets: try t.slice(range), rule: r, maxPool: m,
                                          multiplyByInputs: multiplyByInputs != 0, internalBatchSize: batchSize)
            return (result.attributions, result.delta)
        }
    }
}

@_cdecl("sa_deepshap")
public func sa_deepshap(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ references: UnsafePointer<Float>?, _ nReferences: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ rule: Int32, _ maxpool: Int32, _ multiplyByInputs: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        guard nReferences != 0 else { throw SwiftAttrError(.invalidArgument, "n_references: the reference set is empty (got 0)") }
        let refRows = try checkCount(nReferences, "n_references")
        let rs = try CallerRows(references, rows: refRows, width: net.inputSize, "references", countName: "n_references")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        let r = try deepLiftRule(rule), m = try maxPoolRule(maxpool)
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        // The references are shared by every example (one copy); the examples are walked in chunks.
        let refs = try rs.copyAll()
        let d = net.inputSize
        try forEachRowChunk(rows: rows, width: d, work: work(net, passes: 4 * refRows), inputs: [xs, rs]) { range in
            let result = try net.deepShap(try xs.copy(range), rows: range.count, references: refs, referenceCount: refRows,
                                          targets: try t.slice(range), rule: r, maxPool: m,
                                          multiplyByInputs: multiplyByInputs != 0, internalBatchSize: batchSize)
            try write(result.attributions, to: advanced(out, range.lowerBound * d), at: range.lowerBound * d, count: range.count * d)
            if let delta { try write(result.delta, to: delta + range.lowerBound, at: range.lowerBound, count: range.count, "delta") }
        }
    }
}
