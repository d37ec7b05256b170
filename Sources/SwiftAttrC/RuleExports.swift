import CSwiftAttr
import SwiftAttr

// C exports of the propagation rules (swiftattr.h, section "propagation rules"): LRP with its options
// struct, guided backpropagation and deconvolution, each walking the caller's rows in chunks.

/// `sa_lrp_options sa_lrp_default_options(void)`: SwiftAttr's ``RelevanceOptions`` defaults, each float as
/// the double with the same shortest decimal form (1e-9, not 9.999999717180685e-10).
@_cdecl("sa_lrp_default_options")
public func sa_lrp_default_options() -> sa_lrp_options {
    let d = RelevanceOptions()
    func decimal(_ f: Float) -> Double { Double("\(f)")! }
    return sa_lrp_options(
        struct_size: MemoryLayout<sa_lrp_options>.size, rule: d.rule.rawValue, n_nodes: 0, node_rules: nil,
        epsilon: decimal(d.epsilon), gamma: decimal(d.gamma), node_epsilon: nil, node_gamma: nil, alpha: decimal(d.alpha), beta: decimal(d.beta),
        low: nil, n_low: 0, high: nil, n_high: 0, internal_batch_size: 0)
}

/// A float option: finite and representable as float32.
private func lrpFloat(_ value: Double, _ name: String) throws -> Float {
    guard value.isFinite, abs(value) <= Double(Float.greatestFiniteMagnitude) else {
        throw SwiftAttrError(.invalidArgument, "options->\(name) must be finite (got \(value))")
    }
    return Float(value)
}

/// Reads `options` (NULL: the defaults) for `net`: struct_size, the enums, the node-rule array and the
/// bound pointers; SwiftAttr checks the values.
private func relevanceOptions(_ pointer: UnsafePointer<sa_lrp_options>?, _ net: Network) throws -> (RelevanceOptions, Int?) {
    let o = pointer?.pointee ?? sa_lrp_default_options()
    let size = MemoryLayout<sa_lrp_options>.size
    guard o.struct_size == size else {
        throw SwiftAttrError(.invalidArgument, "options->struct_size is \(o.struct_size), but this library's sa_lrp_options has \(size) bytes "
                             + "(SA_VERSION \(BuildInfo.abiVersion)): start from sa_lrp_default_options() and compile against the library's swiftattr.h")
    }
    var r = RelevanceOptions()
    guard let preset = RelevancePreset(rawValue: o.rule) else {
        throw SwiftAttrError(.unknownEnum, "options->rule: \(o.rule) is not an sa_lrp_rule preset (0 epsilon, 1 gamma, 2 alpha_beta, 5 composite)")
    }
    r.rule = preset
    let perNode = o.node_rules != nil || o.node_epsilon != nil || o.node_gamma != nil
    if o.n_nodes != 0 || perNode {
        guard o.n_nodes == Int64(net.layers.count) else {
            throw SwiftAttrError(.shapeMismatch, "options->n_nodes: expected the model's node count (\(net.layers.count)) with node_rules, node_epsilon or node_gamma, got \(o.n_nodes)")
        }
        guard perNode else { throw SwiftAttrError(.nullPointer, "options->node_rules, node_epsilon and node_gamma are all NULL but n_nodes is \(o.n_nodes)") }
    }
    if let rules = o.node_rules {
        for k in 0..<net.layers.count where rules[k] != -1 {
            guard let rule = RelevanceRule(rawValue: rules[k]) else {
                throw SwiftAttrError(.unknownEnum, "options->node_rules[\(k)]: \(rules[k]) is not an sa_lrp_rule for a node (-1 default, 0 epsilon, 1 gamma, 2 alpha_beta, 3 zb, 4 identity)")
            }
            r.nodeRules[k] = rule
        }
    }
    /// Entry k of a per-node parameter array, NaN meaning the call's value.
    func perNodeValues(_ p: UnsafePointer<Double>?, _ name: String) throws -> [Int: Float] {
        guard let p else { return [:] }
        var values = [Int: Float]()
        for k in 0..<net.layers.count where !p[k].isNaN { values[k] = try lrpFloat(p[k], "\(name)[\(k)]") }
        return values
    }
    r.nodeEpsilon = try perNodeValues(o.node_epsilon, "node_epsilon")
    r.nodeGamma = try perNodeValues(o.node_gamma, "node_gamma")
    r.epsilon = try lrpFloat(o.epsilon, "epsilon")
    r.gamma = try lrpFloat(o.gamma, "gamma")
    r.alpha = try lrpFloat(o.alpha, "alpha")
    r.beta = try lrpFloat(o.beta, "beta")
    func bounds(_ p: UnsafePointer<Float>?, _ count: Int64, _ name: String) throws -> [Float] {
        if p == nil && count == 0 { return [] }
        guard count == 1 || count == Int64(net.inputSize) else {
            throw SwiftAttrError(.shapeMismatch, "options->n_\(name): expected 1 or input_size (\(net.inputSize)) values, got \(count)")
        }
        return Array(try floats(p, Int(count), "options->\(name)"))
    }
    r.low = try bounds(o.low, o.n_low, "low")
    r.high = try bounds(o.high, o.n_high, "high")
    guard r.low.isEmpty == r.high.isEmpty else {
        throw SwiftAttrError(.invalidArgument, "options->low and options->high: give both bounds or neither")
    }
    return (r, try chunk(o.internal_batch_size))
}

@_cdecl("sa_lrp")
public func sa_lrp(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ options: UnsafePointer<sa_lrp_options>?, _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        let (o, batchSize) = try relevanceOptions(options, net)
        let d = net.inputSize
        try forEachRowChunk(rows: xs.rows, width: d, inputs: [xs]) { range in
            let r = try net.lrp(try xs.copy(range), rows: range.count, targets: try t.slice(range), options: o, internalBatchSize: batchSize)
            try write(r.attributions, to: advanced(out, range.lowerBound * d), at: range.lowerBound * d, count: range.count * d)
            if let delta { try write(r.delta, to: delta + range.lowerBound, at: range.lowerBound, count: range.count, "delta") }
        }
    }
}

/// Guided backpropagation or deconvolution, chunk by chunk.
private func modifiedReLU(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?, _ rule: ReLUBackwardRule
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        let batchSize = try chunk(internalBatchSize)
        try perExample(xs, width: net.inputSize, out: out) { values, rows, range in
            try net.modifiedReLUGradient(values, rows: rows, targets: try t.slice(range), rule: rule, internalBatchSize: batchSize)
        }
    }
}

@_cdecl("sa_guided_backprop")
public func sa_guided_backprop(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    modifiedReLU(model, x, n, target, nTarget, internalBatchSize, out, .guided)
}

@_cdecl("sa_deconvolution")
public func sa_deconvolution(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    modifiedReLU(model, x, n, target, nTarget, internalBatchSize, out, .deconvolution)
}
