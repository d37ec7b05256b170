import SwiftAttr

/// Reads a batch of `n` inputs for `net` from caller memory, naming the argument `name`.
func batch(_ net: Network, _ x: UnsafePointer<Float>?, _ n: Int64, _ name: String = "x", countName: String = "n") throws -> (values: [Float], rows: Int) {
    let rows = try checkCount(n, countName)
    let values = Array(try floats(x, try checkedProduct(rows, net.inputSize, name), name))
    return (values, rows)
}

/// Reads `count` class indices (1 or one per example).
func targets(_ target: UnsafePointer<Int64>?, _ count: Int64, rows: Int) throws -> [Int] {
    guard count == 1 || count == Int64(rows) else {
        throw SwiftAttrError(.shapeMismatch, "n_target: expected 1 or \(rows) class indices (one per example), got \(count)")
    }
    let p = try nonNull(target, "target")
    return try (0..<Int(count)).map { i in
        // The range against the model's outputs is checked (and reported with the range) by SwiftAttr.
        guard p[i] >= Int64(Int32.min), p[i] <= Int64(Int32.max) else {
            throw SwiftAttrError(.outOfRange, "target\(count > 1 ? "[\(i)]" : "") = \(p[i]) is out of range")
        }
        return Int(p[i])
    }
}

/// The common arguments of a per-class attribution call, checked in order: the model (frozen for use), the
/// batch `x` of `n` examples, the class targets, and the output buffer `out` (checked before any work).
func attributionCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ out: UnsafeMutablePointer<Float>?
) throws -> (net: Network, values: [Float], rows: Int, targets: [Int]) {
    let net = try handle(model).use()
    let (values, rows) = try batch(net, x, n)
    let t = try targets(target, nTarget, rows: rows)
    _ = try nonNull(out, "out")
    return (net, values, rows, t)
}

/// nil for a non-positive internal batch size ("choose for me"), the value otherwise.
func chunk(_ internalBatchSize: Int64) throws -> Int? {
    internalBatchSize <= 0 ? nil : try checkCount(internalBatchSize, "internal_batch_size")
}

/// Copies `values` into the caller's buffer `out`, which the header documents as `count` floats. A
/// non-finite value (the model's arithmetic overflowed float32) is an `SA_ERR_NUMERICAL` error, never
/// returned silently; a count mismatch is a bug in the library and reported as such.
func write(_ values: [Float], to out: UnsafeMutablePointer<Float>?, count: Int, _ name: String = "out") throws {
    guard values.count == count else {
        throw SwiftAttrError(.internal, "\(name): computed \(values.count) values for a buffer of \(count) (please report this bug)")
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw SwiftAttrError(.numerical, "\(name): the result is not finite (\(values[i]) at flat index \(i)); the model's float32 arithmetic overflowed for these inputs")
    }
    let buffer = try output(out, count, name)
    _ = buffer.initialize(from: values)
}

@_cdecl("sa_forward")
public func sa_forward(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        _ = try nonNull(out, "out")
        try write(net.forward(values, rows: rows), to: out, count: rows * net.outputSize)
    }
}

@_cdecl("sa_forward_to_layer")
public func sa_forward_to_layer(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ layer: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        guard layer >= 0, layer <= Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range 0...\(net.layers.count)")
        }
        _ = try nonNull(out, "out")
        try write(net.activations(values, rows: rows, atInputOf: Int(layer)), to: out, count: rows * net.size(at: Int(layer)))
    }
}

@_cdecl("sa_gradient")
public func sa_gradient(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ cotangent: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        let c = Array(try floats(cotangent, try checkedProduct(rows, net.outputSize, "cotangent"), "cotangent"))
        _ = try nonNull(out, "out")
        try write(try net.gradient(values, rows: rows, cotangent: c), to: out, count: rows * net.inputSize)
    }
}

@_cdecl("sa_saliency")
public func sa_saliency(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ absolute: Int32, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, values, rows, t) = try attributionCall(model, x, n, target, nTarget, out)
        try write(try net.saliency(values, rows: rows, targets: t, absolute: absolute != 0), to: out, count: rows * net.inputSize)
    }
}

@_cdecl("sa_input_x_gradient")
public func sa_input_x_gradient(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, values, rows, t) = try attributionCall(model, x, n, target, nTarget, out)
        try write(try net.inputXGradient(values, rows: rows, targets: t), to: out, count: rows * net.inputSize)
    }
}

@_cdecl("sa_integrated_gradients")
public func sa_integrated_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        let base = try baselineValues(net, baselines, nBaselines, rows: rows, name: "baselines", countName: "n_baselines")
        let t = try targets(target, nTarget, rows: rows)
        guard let rule = PathQuadrature(rawValue: method) else {
            throw SwiftAttrError(.unknownEnum, "method: \(method) is not an sa_ig_method (0…\(PathQuadrature.allCases.count - 1))")
        }
        let steps = try checkCount(nSteps, "n_steps")
        _ = try nonNull(out, "out")
        let result = try net.integratedGradients(values, rows: rows, baselines: base, targets: t, steps: steps, method: rule, internalBatchSize: try chunk(internalBatchSize))
        try write(result.attributions, to: out, count: rows * net.inputSize)
        if let delta { try write(result.delta, to: delta, count: rows, "delta") }
    }
}

/// Baselines: `count` 0 (zeros, pointer may be NULL), 1 (broadcast) or `rows`.
func baselineValues(_ net: Network, _ p: UnsafePointer<Float>?, _ count: Int64, rows: Int, name: String, countName: String) throws -> [Float] {
    guard count == 0 || count == 1 || count == Int64(rows) else {
        throw SwiftAttrError(.shapeMismatch, "\(countName): expected 0 (zeros), 1 (broadcast) or \(rows) (one per example), got \(count)")
    }
    if count == 0 { return [] }
    return Array(try floats(p, try checkedProduct(Int(count), net.inputSize, name), name))
}

@_cdecl("sa_expected_gradients")
public func sa_expected_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ references: UnsafePointer<Float>?, _ nReferences: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSamples: Int64, _ seed: UInt64, _ firstExample: Int64, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        let (refs, refRows) = try batch(net, references, nReferences, "references", countName: "n_references")
        let t = try targets(target, nTarget, rows: rows)
        let samples = try checkCount(nSamples, "n_samples")
        _ = try nonNull(out, "out")
        try write(try net.expectedGradients(values, rows: rows, references: refs, referenceCount: refRows, targets: t, samples: samples, seed: seed, exampleOffset: Int(firstExample), internalBatchSize: try chunk(internalBatchSize)), to: out, count: rows * net.inputSize)
    }
}

@_cdecl("sa_smoothgrad")
public func sa_smoothgrad(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ ntType: Int32, _ nSamples: Int64, _ stdev: Float, _ seed: UInt64, _ firstExample: Int64, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let (values, rows) = try batch(net, x, n)
        let t = try targets(target, nTarget, rows: rows)
        guard let kind = Network.NoiseAggregation(rawValue: ntType) else {
            throw SwiftAttrError(.unknownEnum, "nt_type: \(ntType) is not an sa_nt_type (0 smoothgrad, 1 smoothgrad_sq, 2 vargrad)")
        }
        let samples = try checkCount(nSamples, "n_samples")
        _ = try nonNull(out, "out")
        try write(try net.smoothGrad(values, rows: rows, targets: t, aggregation: kind, samples: samples, stdev: stdev, seed: seed, exampleOffset: Int(firstExample), internalBatchSize: try chunk(internalBatchSize)), to: out, count: rows * net.inputSize)
    }
}
