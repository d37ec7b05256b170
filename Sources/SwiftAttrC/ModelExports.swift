import SwiftAttr
#if canImport(Glibc)
import Glibc
#endif

/// The object behind an `sa_model *`: a network that grows while it is built and freezes at first use.
final class ModelHandle {
    private var network: Network
    private var frozen = false
    /// The value the next single-input node reads (`sa_model_set_input`); nil: the last one.
    private var nextInput: Int?
    private var mutex = pthread_mutex_t()

    init(_ network: Network, frozen: Bool = false) {
        self.network = network
        self.frozen = frozen
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Appends a node unless the model is frozen. It reads `inputs` when given (add, concat), else the value
    /// chosen by ``select(input:)``, else the last value.
    func append(inputs: [Int]? = nil, _ layer: () throws -> Layer) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard !frozen else { throw SwiftAttrError(.frozen, "model: it has been used for a computation and can no longer be changed") }
        let reads = inputs ?? [nextInput ?? network.layers.count]
        nextInput = nil
        try network.append(try layer(), inputs: reads)
    }

    /// Makes the next single-input node read value `value` (0: the input, j + 1: the output of node j).
    func select(input value: Int) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard !frozen else { throw SwiftAttrError(.frozen, "model: it has been used for a computation and can no longer be changed") }
        guard value >= 0, value <= network.layers.count else {
            throw SwiftAttrError(.outOfRange, "value: \(value) does not exist (values 0...\(network.layers.count): 0 is the input, j + 1 the output of node j)")
        }
        nextInput = value
    }

    /// The network for a computation; freezes the model.
    func use() -> Network {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        frozen = true
        return network
    }

    /// The network for an inspection that does not freeze the model.
    func peek() -> Network {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return network
    }
}

/// The handle behind a non-NULL `sa_model *`, or a null-pointer error naming `model`.
func handle(_ model: OpaquePointer?) throws -> ModelHandle {
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(try nonNull(model, "model"))).takeUnretainedValue()
}

func publish(_ network: Network, frozen: Bool = false, to out: UnsafeMutablePointer<OpaquePointer?>?) throws {
    let out = try nonNull(out, "out_model")
    out.pointee = OpaquePointer(Unmanaged.passRetained(ModelHandle(network, frozen: frozen)).toOpaque())
}

func int(_ v: Int64, _ name: String) throws -> Int {
    guard v >= Int64(Int32.min), v <= Int64(Int32.max) else { throw SwiftAttrError(.invalidArgument, "\(name) is out of range (got \(v))") }
    return Int(v)
}

@_cdecl("sa_model_create")
public func sa_model_create(_ inputShape: UnsafePointer<Int64>?, _ ndim: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let shape = try readDims(inputShape, ndim, "input_shape")
        try publish(try Network(inputShape: shape), to: out)
    }
}

@_cdecl("sa_model_free")
public func sa_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("sa_model_add_dense")
public func sa_model_add_dense(_ model: OpaquePointer?, _ weight: UnsafePointer<Float>?, _ outFeatures: Int64, _ inFeatures: Int64, _ bias: UnsafePointer<Float>?) -> Int32 {
    guarded {
        let m = try handle(model)
        let o = try checkCount(outFeatures, "out_features"), i = try checkCount(inFeatures, "in_features")
        let w = try Allocation.copy(try floats(weight, try checkedProduct(o, i, "weight", factors: ["out_features", "in_features"]), "weight", finite: false), "weight")
        let b = try bias.map { try Allocation.copy(try floats($0, o, "bias", finite: false), "bias") }
        try m.append { .dense(try .init(weight: w, bias: b, outFeatures: o, inFeatures: i)) }
    }
}

@_cdecl("sa_model_add_conv1d")
public func sa_model_add_conv1d(
    _ model: OpaquePointer?, _ weight: UnsafePointer<Float>?, _ outChannels: Int64, _ inChannels: Int64, _ kernel: Int64,
    _ bias: UnsafePointer<Float>?, _ stride: Int64, _ padding: Int64, _ dilation: Int64
) -> Int32 {
    guarded {
        let m = try handle(model)
        let o = try checkCount(outChannels, "out_channels"), i = try checkCount(inChannels, "in_channels"), k = try checkCount(kernel, "kernel_size")
        let w = try Allocation.copy(try floats(weight, try checkedProduct(try checkedProduct(o, i, "weight"), k, "weight"), "weight", finite: false), "weight")
        let b = try bias.map { try Allocation.copy(try floats($0, o, "bias", finite: false), "bias") }
        let conv = try Layer.Convolution(
            weight: w, bias: b, outChannels: o, inChannels: i, kernel: [k],
            stride: [try int(stride, "stride")], padding: [try int(padding, "padding")], dilation: [try int(dilation, "dilation")])
        try m.append { .conv1d(conv) }
    }
}

@_cdecl("sa_model_add_conv2d")
public func sa_model_add_conv2d(
    _ model: OpaquePointer?, _ weight: UnsafePointer<Float>?, _ outChannels: Int64, _ inChannels: Int64,
    _ kernelH: Int64, _ kernelW: Int64, _ bias: UnsafePointer<Float>?,
    _ strideH: Int64, _ strideW: Int64, _ paddingH: Int64, _ paddingW: Int64, _ dilationH: Int64, _ dilationW: Int64
) -> Int32 {
    guarded {
        let m = try handle(model)
        let o = try checkCount(outChannels, "out_channels"), i = try checkCount(inChannels, "in_channels")
        let kh = try checkCount(kernelH, "kernel_h"), kw = try checkCount(kernelW, "kernel_w")
        let n = try checkedProduct(try checkedProduct(o, i, "weight"), try checkedProduct(kh, kw, "weight"), "weight")
        let w = try Allocation.copy(try floats(weight, n, "weight", finite: false), "weight")
        let b = try bias.map { try Allocation.copy(try floats($0, o, "bias", finite: false), "bias") }
        let conv = try Layer.Convolution(
            weight: w, bias: b, outChannels: o, inChannels: i, kernel: [kh, kw],
            stride: [try int(strideH, "stride_h"), try int(strideW, "stride_w")],
            padding: [try int(paddingH, "padding_h"), try int(paddingW, "padding_w")],
            dilation: [try int(dilationH, "dilation_h"), try int(dilationW, "dilation_w")])
        try m.append { .conv2d(conv) }
    }
}

/// Appends a max or average pool; `names` are the C argument names (kernel, stride, padding per dimension).
private func addPool(_ model: OpaquePointer?, max: Bool, kernel: [Int64], stride: [Int64], padding: [Int64], names: [String]) -> Int32 {
    guarded {
        let m = try handle(model)
        let d = kernel.count
        let p = try Layer.Pooling(
            kernel: try kernel.enumerated().map { try int($1, names[$0]) },
            stride: try stride.enumerated().map { try int($1, names[d + $0]) },
            padding: try padding.enumerated().map { try int($1, names[2 * d + $0]) })
        try m.append {
            switch (max, d) {
            case (true, 1): .maxPool1d(p)
            case (true, _): .maxPool2d(p)
            case (false, 1): .avgPool1d(p)
            case (false, _): .avgPool2d(p)
            }
        }
    }
}

private let poolNames1d = ["kernel_size", "stride", "padding"]
private let poolNames2d = ["kernel_h", "kernel_w", "stride_h", "stride_w", "padding_h", "padding_w"]

@_cdecl("sa_model_add_maxpool1d")
public func sa_model_add_maxpool1d(_ model: OpaquePointer?, _ kernel: Int64, _ stride: Int64, _ padding: Int64) -> Int32 {
    addPool(model, max: true, kernel: [kernel], stride: [stride], padding: [padding], names: poolNames1d)
}

@_cdecl("sa_model_add_maxpool2d")
public func sa_model_add_maxpool2d(_ model: OpaquePointer?, _ kh: Int64, _ kw: Int64, _ sh: Int64, _ sw: Int64, _ ph: Int64, _ pw: Int64) -> Int32 {
    addPool(model, max: true, kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw], names: poolNames2d)
}

@_cdecl("sa_model_add_avgpool1d")
public func sa_model_add_avgpool1d(_ model: OpaquePointer?, _ kernel: Int64, _ stride: Int64, _ padding: Int64) -> Int32 {
    addPool(model, max: false, kernel: [kernel], stride: [stride], padding: [padding], names: poolNames1d)
}

@_cdecl("sa_model_add_avgpool2d")
public func sa_model_add_avgpool2d(_ model: OpaquePointer?, _ kh: Int64, _ kw: Int64, _ sh: Int64, _ sw: Int64, _ ph: Int64, _ pw: Int64) -> Int32 {
    addPool(model, max: false, kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw], names: poolNames2d)
}

@_cdecl("sa_model_add_global_avgpool")
public func sa_model_add_global_avgpool(_ model: OpaquePointer?) -> Int32 {
    guarded { try handle(model).append { .globalAvgPool } }
}

@_cdecl("sa_model_add_flatten")
public func sa_model_add_flatten(_ model: OpaquePointer?) -> Int32 {
    guarded { try handle(model).append { .flatten } }
}

@_cdecl("sa_model_add_reshape")
public func sa_model_add_reshape(_ model: OpaquePointer?, _ shape: UnsafePointer<Int64>?, _ ndim: Int64) -> Int32 {
    guarded {
        let m = try handle(model)
        let dims = try readDims(shape, ndim, "shape")
        try m.append { .reshape(shape: dims) }
    }
}

@_cdecl("sa_model_transformed")
public func sa_model_transformed(
    _ model: OpaquePointer?, _ inverse: UnsafePointer<Float>?, _ coefficients: Int64, _ useResidual: Int32,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let k = try checkCount(coefficients, "coefficients")
        guard useResidual == 0 || useResidual == 1 else {
            throw SwiftAttrError(.invalidArgument, "use_residual must be 0 or 1 (got \(useResidual))")
        }
        let count = try checkedProduct(net.inputSize, k, "inverse", factors: ["input_size", "coefficients"])
        let inv = try Allocation.copy(try floats(inverse, count, "inverse"), "inverse")
        _ = try nonNull(out, "out_model")
        try publish(try net.transformed(inverse: inv, coefficients: k, residual: useResidual == 1), to: out)
    }
}

@_cdecl("sa_model_add_activation")
public func sa_model_add_activation(_ model: OpaquePointer?, _ kind: Int32, _ parameter: Float) -> Int32 {
    guarded {
        let m = try handle(model)
        let layer: Layer
        switch Layer.Kind(rawValue: UInt32(bitPattern: kind)) {
        case .relu: layer = .relu
        case .leakyReLU: layer = .leakyReLU(slope: parameter)
        case .elu: layer = .elu(alpha: parameter)
        case .softplus: layer = .softplus(beta: parameter)
        case .sigmoid: layer = .sigmoid
        case .tanh: layer = .tanh
        case .softmax: layer = .softmax
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout,
             .add, .concat, .embedding, .lstm, nil:
            throw SwiftAttrError(.unknownEnum, "kind: \(kind) is not an activation (SA_LAYER_RELU … SA_LAYER_SOFTMAX)")
        }
        try m.append { layer }
    }
}

@_cdecl("sa_model_add_batchnorm")
public func sa_model_add_batchnorm(
    _ model: OpaquePointer?, _ channels: Int64, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ runningMean: UnsafePointer<Float>?, _ runningVar: UnsafePointer<Float>?, _ eps: Float
) -> Int32 {
    guarded {
        let m = try handle(model)
        let c = try checkCount(channels, "channels")
        let g = try weight.map { try Allocation.copy(try floats($0, c, "weight", finite: false), "weight") }
        let b = try bias.map { try Allocation.copy(try floats($0, c, "bias", finite: false), "bias") }
        let mean = try Allocation.copy(try floats(runningMean, c, "running_mean", finite: false), "running_mean")
        let variance = try Allocation.copy(try floats(runningVar, c, "running_var", finite: false), "running_var")
        let layer = Layer.batchNorm(try .init(gamma: g, beta: b, runningMean: mean, runningVar: variance, eps: eps))
        try m.append { layer }
    }
}

@_cdecl("sa_model_add_embedding")
public func sa_model_add_embedding(_ model: OpaquePointer?, _ weight: UnsafePointer<Float>?, _ numEmbeddings: Int64, _ embeddingDim: Int64) -> Int32 {
    guarded {
        let m = try handle(model)
        let v = try checkCount(numEmbeddings, "num_embeddings"), e = try checkCount(embeddingDim, "embedding_dim")
        let w = try Allocation.copy(try floats(weight, try checkedProduct(v, e, "weight", factors: ["num_embeddings", "embedding_dim"]), "weight", finite: false), "weight")
        let layer = Layer.embedding(try .init(weight: w, vocabularySize: v, dimension: e))
        try m.append { layer }
    }
}

@_cdecl("sa_model_add_lstm")
public func sa_model_add_lstm(
    _ model: OpaquePointer?, _ weightIH: UnsafePointer<Float>?, _ weightHH: UnsafePointer<Float>?, _ biasIH: UnsafePointer<Float>?,
    _ biasHH: UnsafePointer<Float>?, _ inputSize: Int64, _ hiddenSize: Int64, _ returnSequences: Int32
) -> Int32 {
    guarded {
        let m = try handle(model)
        let e = try checkCount(inputSize, "input_size"), h = try checkCount(hiddenSize, "hidden_size")
        guard returnSequences == 0 || returnSequences == 1 else {
            throw SwiftAttrError(.invalidArgument, "return_sequences must be 0 (the last hidden state) or 1 (every state), got \(returnSequences)")
        }
        let g = try checkedProduct(4, h, "hidden_size", factors: ["4", "hidden_size"])
        let wi = try Allocation.copy(try floats(weightIH, try checkedProduct(g, e, "weight_ih", factors: ["4·hidden_size", "input_size"]), "weight_ih", finite: false), "weight_ih")
        let wh = try Allocation.copy(try floats(weightHH, try checkedProduct(g, h, "weight_hh", factors: ["4·hidden_size", "hidden_size"]), "weight_hh", finite: false), "weight_hh")
        let bi = try biasIH.map { try Allocation.copy(try floats($0, g, "bias_ih", finite: false), "bias_ih") }
        let bh = try biasHH.map { try Allocation.copy(try floats($0, g, "bias_hh", finite: false), "bias_hh") }
        let layer = Layer.lstm(try .init(weightIH: wi, weightHH: wh, biasIH: bi, biasHH: bh, inputSize: e, hiddenSize: h,
                                         returnSequences: returnSequences == 1))
        try m.append { layer }
    }
}

@_cdecl("sa_model_embedding_rest")
public func sa_model_embedding_rest(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        guard let (_, rest) = net.embeddingSplit else {
            throw SwiftAttrError(.invalidArgument, "model: its first layer is not an Embedding, so it has no embedding-level network")
        }
        try publish(rest, frozen: true, to: out)
    }
}

@_cdecl("sa_embed")
public func sa_embed(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        guard let e = net.tokenEmbedding else {
            throw SwiftAttrError(.invalidArgument, "model: its first layer is not an Embedding, so it takes no token ids")
        }
        let rows = try checkCount(n, "n")
        let ids = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let output = try nonNull(out, "out")
        _ = try checkedProduct(rows, net.inputSize * e.dimension, "out", factors: ["n", "L·embedding_dim"])
        // The output holds n·L·E floats anyway: one call, so an error names the caller's flat index.
        let y = try net.embedTokens(try ids.copyAll(), rows: rows, name: "x")
        output.update(from: y, count: y.count)
    }
}

@_cdecl("sa_model_set_input")
public func sa_model_set_input(_ model: OpaquePointer?, _ value: Int64) -> Int32 {
    guarded { try handle(model).select(input: try int(value, "value")) }
}

/// The value indices of `values[0..<count]` for a multi-input node.
private func readValues(_ values: UnsafePointer<Int64>?, _ count: Int64) throws -> [Int] {
    guard count >= 2 else { throw SwiftAttrError(.invalidArgument, "n_inputs must be at least 2 (got \(count))") }
    guard count <= 1 << 16 else { throw SwiftAttrError(.invalidArgument, "n_inputs must be at most 65536 (got \(count))") }
    let p = try nonNull(values, "inputs")
    return try (0..<Int(count)).map { try int(p[$0], "inputs[\($0)]") }
}

@_cdecl("sa_model_add_add")
public func sa_model_add_add(_ model: OpaquePointer?, _ values: UnsafePointer<Int64>?, _ count: Int64) -> Int32 {
    guarded {
        let m = try handle(model)
        try m.append(inputs: try readValues(values, count)) { .add }
    }
}

@_cdecl("sa_model_add_concat")
public func sa_model_add_concat(_ model: OpaquePointer?, _ values: UnsafePointer<Int64>?, _ count: Int64) -> Int32 {
    guarded {
        let m = try handle(model)
        try m.append(inputs: try readValues(values, count)) { .concat }
    }
}

@_cdecl("sa_model_node_inputs")
public func sa_model_node_inputs(
    _ model: OpaquePointer?, _ node: Int64, _ out: UnsafeMutablePointer<Int64>?, _ capacity: Int64, _ count: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        guard node >= 0, node < Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "node = \(node) is out of range 0..<\(net.layers.count)")
        }
        let reads = net.inputs[Int(node)]
        let countOut = try nonNull(count, "count")
        countOut.pointee = Int64(reads.count)
        guard capacity >= Int64(reads.count) else {
            throw SwiftAttrError(.bufferTooSmall, "capacity: node \(node) reads \(reads.count) values, capacity is \(capacity)")
        }
        let o = try nonNull(out, "out")
        for (k, v) in reads.enumerated() { o[k] = Int64(v) }
    }
}

@_cdecl("sa_model_add_dropout")
public func sa_model_add_dropout(_ model: OpaquePointer?, _ p: Float) -> Int32 {
    guarded { try handle(model).append { .dropout(p: p) } }
}

@_cdecl("sa_model_input_shape")
public func sa_model_input_shape(_ model: OpaquePointer?, _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        let shapeOut = try output(shape, 3, "shape")
        let ndimOut = try nonNull(ndim, "ndim")
        ndimOut.pointee = Int64(net.inputShape.count)
        for (i, d) in net.inputShape.enumerated() { shapeOut[i] = Int64(d) }
    }
}

@_cdecl("sa_model_num_layers")
public func sa_model_num_layers(_ model: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { try nonNull(count, "count").pointee = Int64(try handle(model).peek().layers.count) }
}

/// Per-example size at the input of layer `layer` (layer == count: the output).
@_cdecl("sa_model_size_at")
public func sa_model_size_at(_ model: OpaquePointer?, _ layer: Int64, _ size: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        guard layer >= 0, layer <= Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range 0...\(net.layers.count)")
        }
        try nonNull(size, "size").pointee = Int64(net.size(at: Int(layer)))
    }
}

/// Per-example shape of value `value` (0 = the model input, j + 1 = the output of node j, num_layers = the
/// output): what `sa_forward` writes per example is the output's shape, e.g. [C, H, W] for an image.
@_cdecl("sa_model_shape_at")
public func sa_model_shape_at(
    _ model: OpaquePointer?, _ value: Int64, _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        guard value >= 0, value <= Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "value = \(value) is out of range 0...\(net.layers.count)")
        }
        let shapeOut = try output(shape, 3, "shape")
        let ndimOut = try nonNull(ndim, "ndim")
        let s = net.shapes[Int(value)]
        ndimOut.pointee = Int64(s.count)
        for (i, d) in s.enumerated() { shapeOut[i] = Int64(d) }
    }
}

@_cdecl("sa_model_layer_kind")
public func sa_model_layer_kind(_ model: OpaquePointer?, _ layer: Int64, _ kind: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        guard layer >= 0, layer < Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range 0..<\(net.layers.count)")
        }
        try nonNull(kind, "kind").pointee = Int32(net.layers[Int(layer)].kind.rawValue)
    }
}

@_cdecl("sa_model_save")
public func sa_model_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded { try handle(model).peek().save(to: String(cString: try nonNull(path, "path"))) }
}

@_cdecl("sa_model_load")
public func sa_model_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let p = String(cString: try nonNull(path, "path"))
        _ = try nonNull(out, "out_model")
        try publish(try Network.load(from: p), to: out)
    }
}
