import SwiftAttr

// C exports of the layer and neuron attributions and of NoiseTunnel (swiftattr.h, section "layer
// attributions"). Every call walks the caller's rows in chunks (forEachRowChunk), so memory stays bounded
// whatever n; each chunk's attributions go straight into the caller's buffer.

/// Node index `layer`, checked against the model (the message names `layer`).
func layerIndex(_ net: Network, _ layer: Int64) throws -> Int {
    guard layer >= 0, layer < Int64(net.layers.count) else {
        throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range: the model has \(net.layers.count) nodes (0..<\(net.layers.count))")
    }
    return Int(layer)
}

/// Runs a layer method chunk by chunk: `method(x, rows, baselines, range)` returns rows × `width` floats
/// (and, when the method has one, a delta per example), written to `out` and `delta` (if not NULL).
func perExampleLayer(_ x: CallerRows, baselines: CallerBaselines?, width: Int, out: UnsafeMutablePointer<Float>?,
                     delta: UnsafeMutablePointer<Float>? = nil,
                     _ method: ([Float], Int, [Float], Range<Int>) throws -> (attributions: [Float], delta: [Float]?)) throws {
    _ = try nonNull(out, "out")
    let callerInputs = [x] + (baselines?.callerRows.map { [$0] } ?? [])
    try forEachRowChunk(rows: x.rows, width: max(x.width, width), inputs: callerInputs) { range in
        let result = try method(try x.copy(range), range.count, try baselines?.slice(range) ?? [], range)
        try write(result.attributions, to: advanced(out, range.lowerBound * width), at: range.lowerBound * width, count: range.count * width)
        if let delta, let d = result.delta { try write(d, to: delta + range.lowerBound, at: range.lowerBound, count: range.count, "delta") }
    }
}

@_cdecl("sa_layer_saliency")
public func sa_layer_saliency(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ layer: Int64, _ absolute: Int32, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        let l = try layerIndex(net, layer), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: nil, width: try net.layerShape(l).reduce(1, *), out: out) { values, rows, _, range in
            (try net.layerSaliency(values, rows: rows, layer: l, targets: try t.slice(range), absolute: absolute != 0,
                                   internalBatchSize: batchSize), nil)
        }
    }
}

@_cdecl("sa_layer_gradient_x_activation")
public func sa_layer_gradient_x_activation(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ layer: Int64, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        let l = try layerIndex(net, layer), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: nil, width: try net.layerShape(l).reduce(1, *), out: out) { values, rows, _, range in
            (try net.layerGradientXActivation(values, rows: rows, layer: l, targets: try t.slice(range), internalBatchSize: batchSize), nil)
        }
    }
}

@_cdecl("sa_layer_integrated_gradients")
public func sa_layer_integrated_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ layer: Int64, _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, _, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let l = try layerIndex(net, layer), rule = try quadrature(method)
        let steps = try checkCount(nSteps, "n_steps"), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: base, width: try net.layerShape(l).reduce(1, *), out: out, delta: delta) { values, rows, b, range in
            let r = try net.layerIntegratedGradients(values, rows: rows, baselines: b, layer: l, targets: try t.slice(range), steps: steps,
                                                     method: rule, internalBatchSize: batchSize)
            return (r.attributions, r.delta)
        }
    }
}

@_cdecl("sa_layer_conductance")
public func sa_layer_conductance(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ layer: Int64, _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, _, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let l = try layerIndex(net, layer), rule = try quadrature(method)
        let steps = try checkCount(nSteps, "n_steps"), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: base, width: try net.layerShape(l).reduce(1, *), out: out, delta: delta) { values, rows, b, range in
            let r = try net.layerConductance(values, rows: rows, baselines: b, layer: l, targets: try t.slice(range), steps: steps,
                                             method: rule, internalBatchSize: batchSize)
            return (r.attributions, r.delta)
        }
    }
}

@_cdecl("sa_layer_deeplift")
public func sa_layer_deeplift(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ layer: Int64, _ rule: Int32, _ maxpool: Int32, _ multiplyByInputs: Int32,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, _, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let l = try layerIndex(net, layer)
        let r = try deepLiftRule(rule), m = try maxPoolRule(maxpool), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: base, width: try net.layerShape(l).reduce(1, *), out: out, delta: delta) { values, rows, b, range in
            let result = try net.layerDeepLift(values, rows: rows, baselines: b, layer: l, targets: try t.slice(range), rule: r, maxPool: m,
                                               multiplyByInputs: multiplyByInputs != 0, internalBatchSize: batchSize)
            return (result.attributions, result.delta)
        }
    }
}

/// The upsampling for `upsample` (an sa_upsample), or an unknown-enum error naming the argument.
func upsampling(_ upsample: Int32) throws -> Network.Upsampling {
    guard let u = Network.Upsampling(rawValue: upsample) else {
        throw SwiftAttrError(.unknownEnum, "upsample: \(upsample) is not an sa_upsample (0 none, 1 nearest, 2 bilinear)")
    }
    return u
}

@_cdecl("sa_grad_cam_shape")
public func sa_grad_cam_shape(
    _ model: OpaquePointer?, _ layer: Int64, _ upsample: Int32, _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        let s = try net.gradCAMShape(layer: try layerIndex(net, layer), upsampling: try upsampling(upsample))
        let shapeOut = try output(shape, 3, "shape")
        let ndimOut = try nonNull(ndim, "ndim")
        ndimOut.pointee = Int64(s.count)
        for (i, d) in s.enumerated() { shapeOut[i] = Int64(d) }
    }
}

@_cdecl("sa_grad_cam")
public func sa_grad_cam(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ layer: Int64, _ reluAttributions: Int32, _ upsample: Int32, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        let l = try layerIndex(net, layer), u = try upsampling(upsample), batchSize = try chunk(internalBatchSize)
        let width = try net.gradCAMShape(layer: l, upsampling: u).reduce(1, *)
        try perExampleLayer(xs, baselines: nil, width: width, out: out) { values, rows, _, range in
            (try net.gradCAM(values, rows: rows, layer: l, targets: try t.slice(range), reluAttributions: reluAttributions != 0,
                             upsampling: u, internalBatchSize: batchSize), nil)
        }
    }
}

@_cdecl("sa_neuron_integrated_gradients")
public func sa_neuron_integrated_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ layer: Int64, _ neuron: Int64, _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let base = try CallerBaselines(net, baselines, nBaselines, rows: rows, name: "baselines", countName: "n_baselines")
        let l = try layerIndex(net, layer), rule = try quadrature(method)
        let size = try net.layerShape(l).reduce(1, *)
        guard neuron >= 0, neuron < Int64(size) else {
            throw SwiftAttrError(.outOfRange, "neuron = \(neuron) is out of range for layer \(l)'s output of shape \(try net.layerShape(l)) (flat indices 0..<\(size))")
        }
        let steps = try checkCount(nSteps, "n_steps"), batchSize = try chunk(internalBatchSize)
        try perExampleLayer(xs, baselines: base, width: net.inputSize, out: out, delta: delta) { values, rows, b, _ in
            let r = try net.neuronIntegratedGradients(values, rows: rows, baselines: b, layer: l, neuron: Int(neuron), steps: steps,
                                                      method: rule, internalBatchSize: batchSize)
            return (r.attributions, r.delta)
        }
    }
}

@_cdecl("sa_noise_tunnel_inputs")
public func sa_noise_tunnel_inputs(
    _ x: UnsafePointer<Float>?, _ n: Int64, _ width: Int64, _ ntSamples: Int64, _ stdev: Float, _ seed: UInt64, _ firstExample: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let rows = try checkCount(n, "n"), d = try checkCount(width, "width"), samples = try checkCount(ntSamples, "nt_samples")
        let xs = try CallerRows(x, rows: rows, width: d, "x", countName: "n", widthName: "width")
        let offset = try exampleOffset(firstExample, rows: rows)
        let total = try checkedProduct(try checkedProduct(rows, samples, "out", factors: ["n", "nt_samples"]), d, "out", factors: ["n·nt_samples", "width"])
        _ = try output(out, total, "out")
        try forEachRowChunk(rows: rows, width: samples * d, inputs: [xs]) { range in
            let noisy = try NoiseTunnel.noisyCopies(try xs.copy(range), rows: range.count, width: d, samples: samples, stdev: stdev, seed: seed,
                                                    exampleOffset: offset + range.lowerBound)
            let at = range.lowerBound * samples * d
            try write(noisy, to: advanced(out, at), at: at, count: range.count * samples * d)
        }
    }
}

@_cdecl("sa_noise_tunnel_baseline_draws")
public func sa_noise_tunnel_baseline_draws(
    _ n: Int64, _ ntSamples: Int64, _ nBaselines: Int64, _ seed: UInt64, _ firstExample: Int64, _ out: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let rows = try checkCount(n, "n"), samples = try checkCount(ntSamples, "nt_samples"), refs = try checkCount(nBaselines, "n_baselines")
        let offset = try exampleOffset(firstExample, rows: rows)
        let draws = try NoiseTunnel.referenceDraws(rows: rows, samples: samples, references: refs, seed: seed, exampleOffset: offset)
        let o = try output(out, try checkedProduct(rows, samples, "out", factors: ["n", "nt_samples"]), "out")
        for (k, v) in draws.enumerated() { o[k] = Int64(v) }
    }
}

@_cdecl("sa_noise_tunnel_aggregate")
public func sa_noise_tunnel_aggregate(
    _ attributions: UnsafePointer<Float>?, _ n: Int64, _ ntSamples: Int64, _ width: Int64, _ ntType: Int32, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let rows = try checkCount(n, "n"), samples = try checkCount(ntSamples, "nt_samples"), d = try checkCount(width, "width")
        guard let kind = Network.NoiseAggregation(rawValue: ntType) else {
            throw SwiftAttrError(.unknownEnum, "nt_type: \(ntType) is not an sa_nt_type (0 smoothgrad, 1 smoothgrad_sq, 2 vargrad)")
        }
        let a = try CallerRows(attributions, rows: try checkedProduct(rows, samples, "attributions", factors: ["n", "nt_samples"]), width: d,
                               "attributions", countName: "n·nt_samples", widthName: "width")
        _ = try output(out, try checkedProduct(rows, d, "out", factors: ["n", "width"]), "out")
        try forEachRowChunk(rows: rows, width: samples * d, inputs: [a]) { range in
            let block = try Allocation.copy(UnsafeBufferPointer(start: a.base + range.lowerBound * samples * d, count: range.count * samples * d),
                                            "attributions")
            let r = try NoiseTunnel.aggregate(block, rows: range.count, samples: samples, width: d, kind)
            try write(r, to: advanced(out, range.lowerBound * d), at: range.lowerBound * d, count: range.count * d)
        }
    }
}
