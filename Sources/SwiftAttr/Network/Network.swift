/// A feed-forward network: a directed acyclic graph of nodes over the closed set of ``Layer`` kinds,
/// whose shapes have been checked to fit together.
///
/// Values are numbered: value 0 is the network's input and value `i + 1` is the output of node `i`. Node
/// `i` reads the values `inputs[i]`, all produced before it, so the nodes are stored in topological
/// order; the network's output is the last value. A chain (every node reads the value before it) is the
/// commonest case and costs nothing extra: every walk over the graph takes a straight path through it.
/// Fan-out (a value read by several nodes) is allowed; a node whose output nothing reads is dead weight
/// (its cotangent is zero).
///
/// A `Network` is a value: once built it never changes, and any number of threads may compute with it
/// at once. Build one with ``init(inputShape:layers:)``, by ``append(_:)`` (a chain) or by
/// ``append(_:inputs:)`` (a graph).
public struct Network: Sendable, Equatable {
    /// Per-example input shape (`[F]`, `[C, L]` or `[C, H, W]`).
    public let inputShape: [Int]
    /// The node kinds, in topological order.
    public private(set) var layers: [Layer]
    /// `inputs[i]`: the values node `i` reads (each below `i + 1`).
    public private(set) var inputs: [[Int]]
    /// `shapes[v]`: the per-example shape of value `v`; `shapes[layers.count]` is the output shape. In a
    /// chain, `shapes[i]` is the input shape of layer `i`.
    public private(set) var shapes: [[Int]]
    /// `cut[v]`: no node from `v` on reads a value before `v`, so value `v` alone carries everything the
    /// nodes `v..<layers.count` need (every value of a chain is a cut).
    private(set) var cut: [Bool]
    /// `consumers[v]`: how many node inputs read value `v`.
    private(set) var consumers: [Int]
    /// `convolutionPlans[i]`: node i's Winograd filters, where its convolution runs by ``Winograd``.
    private(set) var convolutionPlans: [ConvolutionPlan?]

    public init(inputShape: [Int], layers: [Layer] = []) throws {
        guard !inputShape.isEmpty, inputShape.count <= 3 else {
            throw SwiftAttrError.shape("input_shape must have 1 to 3 dimensions ([F], [C, L] or [C, H, W]), got \(inputShape)")
        }
        _ = try Check.count(inputShape, "input_shape")
        self.inputShape = inputShape
        self.layers = []
        self.inputs = []
        self.shapes = [inputShape]
        self.cut = [true]
        self.consumers = [0]
        self.convolutionPlans = []
        for layer in layers { try append(layer) }
    }

    /// Appends `layer` reading the current output (a chain).
    public mutating func append(_ layer: Layer) throws {
        try append(layer, inputs: [layers.count])
    }

    /// Appends a node of kind `layer` reading the values `inputs` (0: the network input, `j + 1`: the
    /// output of node `j`), after checking that they exist and that their shapes fit the node.
    public mutating func append(_ layer: Layer, inputs: [Int]) throws {
        let index = layers.count
        let label = "layer \(index) (\(layer.name))"
        if let last = layers.last, case .softmax = last {
            throw SwiftAttrError.invalid("\(label): Softmax must be the final layer; nothing may follow it")
        }
        switch layer.arity {
        case 1?:
            guard inputs.count == 1 else { throw SwiftAttrError.invalid("\(label): reads exactly one value (got \(inputs.count))") }
        case nil:
            guard inputs.count >= 2 else { throw SwiftAttrError.invalid("\(label): needs at least two input values (got \(inputs.count))") }
        case let n?:
            guard inputs.count == n else { throw SwiftAttrError.invalid("\(label): reads \(n) values (got \(inputs.count))") }
        }
        for v in inputs where v < 0 || v > index {
            throw SwiftAttrError(.outOfRange, "\(label): input value \(v) does not exist yet (values 0...\(index): 0 is the network input, j + 1 the output of node j)")
        }
        switch layer {
        case .leakyReLU(let slope):
            guard slope.isFinite else { throw SwiftAttrError(.nonFinite, "LeakyReLU negative_slope must be finite (got \(slope))") }
        case .elu(let alpha):
            guard alpha.isFinite else { throw SwiftAttrError(.nonFinite, "ELU alpha must be finite (got \(alpha))") }
        case .softplus(let beta):
            guard beta.isFinite, beta > 0 else { throw SwiftAttrError.invalid("Softplus beta must be positive and finite (got \(beta))") }
        case .dropout(let p):
            guard p >= 0, p < 1 else { throw SwiftAttrError.invalid("Dropout p must be in [0, 1) (got \(p))") }
        case .embedding:
            guard index == 0, inputs == [0] else {
                throw SwiftAttrError.invalid("\(label): an Embedding may only be node 0, reading the network input (token ids)")
            }
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .sigmoid, .tanh, .softmax, .batchNorm, .add, .concat, .lstm:
            break
        }
        if index > 0, case .embedding = layers[0], inputs.contains(0) {
            throw SwiftAttrError.invalid("\(label): only the Embedding (node 0) may read the token ids (value 0); read its output, value 1")
        }
        let out: [Int]
        do {
            out = try layer.outputShape(for: inputs.map { shapes[$0] })
        } catch let error as SwiftAttrError {
            throw SwiftAttrError(error.code, "\(label): \(error.message)")
        }
        let outCount = try Check.count(out, "\(label) output")
        guard outCount <= Network.maximumFloatsPerRow else {
            throw SwiftAttrError(.outOfMemory, "\(label): its output \(out) has \(outCount) values per example, more than the limit of \(Network.maximumFloatsPerRow)")
        }
        layers.append(layer)
        self.inputs.append(inputs)
        convolutionPlans.append(ConvolutionPlan(layer, input: shapes[inputs[0]]))
        shapes.append(out)
        for v in inputs { consumers[v] += 1 }
        consumers.append(0)
        // Value index + 1 is a cut (nothing after reads before it); earlier cuts break where this node reads
        // across them.
        let lowest = inputs.min()!
        for v in (lowest + 1)..<cut.count { cut[v] = false }
        cut.append(true)
    }

    /// A copy with `layer` appended (a chain).
    public func appending(_ layer: Layer) throws -> Network {
        var copy = self
        try copy.append(layer)
        return copy
    }

    /// True when every node reads the value before it.
    public var isChain: Bool { inputs.indices.allSatisfy { inputs[$0] == [$0] } }

    /// Floats per example at the input.
    public var inputSize: Int { inputShape.reduce(1, *) }
    /// Floats per example at the output.
    public var outputShape: [Int] { shapes[layers.count] }
    public var outputSize: Int { outputShape.reduce(1, *) }
    /// Floats per example of value `v` (in a chain: at the input of layer `v`; `layers.count`: the output).
    public func size(at v: Int) -> Int { shapes[v].reduce(1, *) }

    /// The value node `i` reads, for nodes that read one.
    func input(of i: Int) -> Int { inputs[i][0] }

    /// Number of leading nodes that are affine and end at a cut: the network's input enters a
    /// nonlinearity only after them, on every path.
    public var affinePrefixLength: Int {
        var p = 0
        for i in layers.indices {
            guard layers[i].isAffine else { break }
            if cut[i + 1] { p = i + 1 }
        }
        return p
    }

    /// True when the final node is a Softmax.
    public var endsWithSoftmax: Bool {
        if case .softmax = layers.last { return true }
        return false
    }

    /// For gradient computations: the same function with every `ReLU`/`LeakyReLU` that feeds only a
    /// max-pool moved after it, and every BatchNorm that alone reads a Linear or convolution folded into
    /// it, or nil when there is no such pair. A monotone non-decreasing activation commutes with a max
    /// (maxpool(σ(z)) = σ(maxpool(z))), and the gradients agree wherever they are defined, while the
    /// activation then runs on the pooled, several times smaller tensor. BatchNorm after an affine layer
    /// is affine: γ(Wx + b − μ)/√(σ² + ε) + β = (s·W)x + (s·b + t) with s = γ/√(σ² + ε), t = β − μs per
    /// output channel, so the pair becomes one layer and an identity view (no pass over the data forward or
    /// backward); the results change only by float32 rounding. Attribution rules that are not gradients
    /// (DeepLIFT, CD) must use the network as built.
    var gradientEquivalent: Network? {
        var layers = self.layers, shapes = self.shapes, plans = convolutionPlans
        var changed = false
        for i in 0..<max(layers.count - 1, 0) {
            guard case .batchNorm(let bn) = layers[i + 1], inputs[i + 1] == [i + 1], consumers[i + 1] == 1,
                  let folded = Self.folding(bn, into: layers[i]) else { continue }
            layers[i] = folded
            layers[i + 1] = .reshape(shape: shapes[i + 2])
            plans[i] = ConvolutionPlan(folded, input: shapes[inputs[i][0]])
            plans[i + 1] = nil
            changed = true
        }
        var i = 0
        while i + 1 < layers.count {
            // Node i + 1 must read only node i's output, which nothing else reads.
            let adjacent = inputs[i + 1] == [i + 1] && consumers[i + 1] == 1
            switch (layers[i], layers[i + 1]) {
            case (.relu, .maxPool1d), (.relu, .maxPool2d), (.leakyReLU, .maxPool1d), (.leakyReLU, .maxPool2d):
                guard adjacent else { i += 1; continue }
                layers.swapAt(i, i + 1)
                plans.swapAt(i, i + 1)
                shapes[i + 1] = shapes[i + 2]
                changed = true
                i += 2
            default:
                i += 1
            }
        }
        guard changed else { return nil }
        var copy = self
        copy.layers = layers
        copy.shapes = shapes
        copy.convolutionPlans = plans
        return copy
    }

    /// `affine` followed by `bn` as one layer (see ``gradientEquivalent``), or nil when `affine` is not a
    /// Linear or convolution whose outputs are `bn`'s channels.
    private static func folding(_ bn: Layer.BatchNorm, into affine: Layer) -> Layer? {
        func scaled(_ weight: [Float], _ bias: [Float], outputs: Int) -> ([Float], [Float]) {
            let per = weight.count / outputs
            var w = weight
            for o in 0..<outputs { for k in 0..<per { w[o * per + k] *= bn.scale[o] } }
            return (w, (0..<outputs).map { bias[$0] * bn.scale[$0] + bn.shift[$0] })
        }
        switch affine {
        case .dense(let d) where d.outFeatures == bn.channels:
            let (w, b) = scaled(d.weight, d.bias, outputs: d.outFeatures)
            return try? .dense(.init(weight: w, bias: b, outFeatures: d.outFeatures, inFeatures: d.inFeatures))
        case .conv1d(let c) where c.outChannels == bn.channels, .conv2d(let c) where c.outChannels == bn.channels:
            let (w, b) = scaled(c.weight, c.bias, outputs: c.outChannels)
            guard let folded = try? Layer.Convolution(weight: w, bias: b, outChannels: c.outChannels, inChannels: c.inChannels,
                                                      kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
            else { return nil }
            if case .conv1d = affine { return .conv1d(folded) }
            return .conv2d(folded)
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat,
             .embedding, .lstm:
            return nil
        }
    }
}

extension Network {
    /// ``withParameters(_:)`` for arrays already known to have this network's count and sizes and finite
    /// values (the trainer's, which the optimiser checks as it writes them): the nodes keep their checked
    /// structure and only take the new arrays (no validation pass over the values), and only convolution
    /// nodes recompute their plans. The result equals ``withParameters(_:)``'s.
    func withTrustedParameters(_ p: [[Float]]) throws -> Network {
        var copy = self
        var offset = 0
        for i in layers.indices {
            let n = layers[i].parameterCount
            guard n > 0 else { continue }
            copy.layers[i] = try layers[i].replacingTrustedParameters(p[offset..<(offset + n)])
            copy.convolutionPlans[i] = ConvolutionPlan(copy.layers[i], input: shapes[inputs[i][0]])
            offset += n
        }
        return copy
    }
}
