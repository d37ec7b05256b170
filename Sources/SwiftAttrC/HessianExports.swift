import SwiftAttr

// Integrated and Expected Hessians: per-example methods, run on chunks of the caller's rows (each chunk's
// p×p or p results written straight into `out`), like the gradient exports. Token models need nothing more
// here: their input size is L (token ids), so p = L gives the widths of the token-level results (L×L, or L
// for a token position), and the library moves the call to the embedding output.

/// The checked sa_ih_method.
private func hessianQuadrature(_ method: Int32) throws -> HessianQuadrature {
    guard let rule = HessianQuadrature(rawValue: method) else {
        throw SwiftAttrError(.unknownEnum, "method: \(method) is not an sa_ih_method (0 gausslegendre, 1 gausslaguerre, 2 grid)")
    }
    return rule
}

/// softplus_beta: 0 for none, otherwise positive and finite.
private func softplusOption(_ beta: Float) throws -> Float? {
    if beta == 0 { return nil }
    guard beta.isFinite, beta > 0 else {
        throw SwiftAttrError(.invalidArgument, "softplus_beta must be 0 (no substitution) or positive and finite (got \(beta))")
    }
    return beta
}

/// Floats per example of an interaction result: p² for the whole matrix, p for one row (`out` must hold
/// n times that, which must not overflow).
private func interactionWidth(_ net: Network, rows: Int, index: Int?) throws -> Int {
    let p = net.inputSize
    let width = index == nil ? try checkedProduct(p, p, "out", factors: ["input_size", "input_size"]) : p
    _ = try checkedProduct(rows, width, "out", factors: ["n", "interaction width"])
    return width
}

/// interaction_index: −1 for the whole matrix, otherwise 0..<input_size (checked by SwiftAttr).
private func interactionOption(_ index: Int64, _ net: Network) throws -> Int? {
    if index == -1 { return nil }
    guard index >= 0, index < Int64(net.inputSize) else {
        throw SwiftAttrError(.outOfRange, "interaction_index = \(index) is out of range for an input of \(net.inputSize) features (-1 for the whole matrix, or 0..<\(net.inputSize))")
    }
    return Int(index)
}

@_cdecl("sa_integrated_hessians")
public func sa_integrated_hessians(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSteps: Int64, _ method: Int32, _ softplusBeta: Float, _ interactionIndex: Int64, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, rows, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let steps = try checkCount(nSteps, "n_steps")
        let rule = try hessianQuadrature(method)
        let beta = try softplusOption(softplusBeta)
        let index = try interactionOption(interactionIndex, net)
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        let width = try interactionWidth(net, rows: rows, index: index)
        try perExample(xs, width: width, work: work(net, passes: 3 * steps * (width / net.inputSize)),
                       inputs: [xs] + (base.callerRows.map { [$0] } ?? []), out: out) { values, rows, range in
            try net.integratedHessians(values, rows: rows, baselines: try base.slice(range), targets: try t.slice(range),
                                       steps: steps, method: rule, softplusBeta: beta, interactionIndex: index,
                                       internalBatchSize: batchSize)
        }
    }
}

@_cdecl("sa_expected_hessians")
public func sa_expected_hessians(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ references: UnsafePointer<Float>?, _ nReferences: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSamples: Int64, _ seed: UInt64, _ firstExample: Int64, _ softplusBeta: Float, _ interactionIndex: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n"), refRows = try checkCount(nReferences, "n_references")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let rs = try CallerRows(references, rows: refRows, width: net.inputSize, "references", countName: "n_references")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        let samples = try checkCount(nSamples, "n_samples")
        let offset = try exampleOffset(firstExample, rows: rows)
        let beta = try softplusOption(softplusBeta)
        let index = try interactionOption(interactionIndex, net)
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        let refs = try rs.copyAll()
        let width = try interactionWidth(net, rows: rows, index: index)
        // Example i's draws are keyed by first_example + i, so row chunks give the one-call numbers.
        try perExample(xs, width: width, work: work(net, passes: 3 * samples * (width / net.inputSize)), inputs: [xs, rs], out: out) { values, rows, range in
            try net.expectedHessians(values, rows: rows, references: refs, referenceCount: refRows,
                                     targets: try t.slice(range), samples: samples, seed: seed,
                                     exampleOffset: offset + range.lowerBound, softplusBeta: beta, interactionIndex: index,
                                     internalBatchSize: batchSize)
        }
    }
}

@_cdecl("sa_model_with_softplus")
public func sa_model_with_softplus(_ model: OpaquePointer?, _ beta: Float, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        _ = try nonNull(out, "out_model")
        try publish(try net.withSoftplus(beta: beta), to: out)
    }
}

@_cdecl("sa_hessian_vector_product")
public func sa_hessian_vector_product(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ v: UnsafePointer<Float>?,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ outGradient: UnsafeMutablePointer<Float>?, _ outHV: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let vs = try CallerRows(v, rows: rows, width: net.inputSize, "v", countName: "n")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        _ = try nonNull(outHV, "out_hv")
        let d = net.inputSize
        try forEachRowChunk(rows: rows, width: d, inputs: [xs, vs]) { range in
            let r = try net.gradientsAndHessianVectorProducts(try xs.copy(range), rows: range.count, vectors: try vs.copy(range),
                                                              targets: try t.slice(range))
            try write(r.hv, to: advanced(outHV, range.lowerBound * d), at: range.lowerBound * d, count: range.count * d, "out_hv")
            if let outGradient {
                try write(r.gradient, to: outGradient + range.lowerBound * d, at: range.lowerBound * d, count: range.count * d,
                          "out_gradient")
            }
        }
    }
}

@_cdecl("sa_hessian")
public func sa_hessian(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        let width = try interactionWidth(net, rows: rows, index: nil)
        try perExample(xs, width: width, inputs: [xs], out: out) { values, rows, range in
            try net.hessians(values, rows: rows, targets: try t.slice(range), internalBatchSize: batchSize)
        }
    }
}
