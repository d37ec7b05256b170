/// A feed-forward network: a per-example input shape and a sequence of ``Layer``s whose shapes have been
/// checked to fit together.
///
/// A `Network` is a value: once built it never changes, and any number of threads may compute with it
/// at once. Build one with ``init(inputShape:layers:)`` or by ``appending(_:)`` layers one at a time.
public struct Network: Sendable, Equatable {
    /// Per-example input shape (`[F]`, `[C, L]` or `[C, H, W]`).
    public let inputShape: [Int]
    public private(set) var layers: [Layer]
    /// `shapes[i]` is the per-example input shape of layer `i`; `shapes[layers.count]` the output shape.
    public private(set) var shapes: [[Int]]

    public init(inputShape: [Int], layers: [Layer] = []) throws {
        guard !inputShape.isEmpty, inputShape.count <= 3 else {
            throw SwiftAttrError.shape("input_shape must have 1 to 3 dimensions ([F], [C, L] or [C, H, W]), got \(inputShape)")
        }
        _ = try Check.count(inputShape, "input_shape")
        self.inputShape = inputShape
        self.layers = []
        self.shapes = [inputShape]
        for layer in layers { try append(layer) }
    }

    /// Appends `layer` after checking that it fits the current output shape.
    public mutating func append(_ layer: Layer) throws {
        let index = layers.count
        if let last = layers.last, case .softmax = last {
            throw SwiftAttrError.invalid("layer \(index) (\(layer.name)): Softmax must be the final layer; nothing may follow it")
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
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten,
             .relu, .sigmoid, .tanh, .softmax, .batchNorm:
            break
        }
        let out: [Int]
        do {
            out = try layer.outputShape(for: shapes[index])
        } catch let error as SwiftAttrError {
            throw SwiftAttrError(error.code, "layer \(index) (\(layer.name)): \(error.message)")
        }
        let outCount = try Check.count(out, "layer \(index) (\(layer.name)) output")
        guard outCount <= Network.maximumFloatsPerRow else {
            throw SwiftAttrError(.outOfMemory, "layer \(index) (\(layer.name)): its output \(out) has \(outCount) values per example, more than the limit of \(Network.maximumFloatsPerRow)")
        }
        layers.append(layer)
        shapes.append(out)
    }

    /// A copy with `layer` appended.
    public func appending(_ layer: Layer) throws -> Network {
        var copy = self
        try copy.append(layer)
        return copy
    }

    /// Floats per example at the input.
    public var inputSize: Int { inputShape.reduce(1, *) }
    /// Floats per example at the output.
    public var outputShape: [Int] { shapes[layers.count] }
    public var outputSize: Int { outputShape.reduce(1, *) }
    /// Floats per example at the input of layer `i` (`i == layers.count`: the output).
    public func size(at i: Int) -> Int { shapes[i].reduce(1, *) }

    /// Number of leading layers that are affine: the network's input enters a nonlinearity only after them.
    public var affinePrefixLength: Int {
        layers.firstIndex { !$0.isAffine } ?? layers.count
    }

    /// True when the final layer is a Softmax.
    public var endsWithSoftmax: Bool {
        if case .softmax = layers.last { return true }
        return false
    }

    /// For gradient computations: the same function with every `ReLU`/`LeakyReLU` that feeds a max-pool
    /// moved after it, or nil when there is no such pair. A monotone non-decreasing activation commutes with
    /// a max (maxpool(σ(z)) = σ(maxpool(z))), and the gradients agree wherever they are defined, while the
    /// activation then runs on the pooled, several times smaller tensor. Attribution rules that are not
    /// gradients (DeepLIFT, CD) must use the network as built.
    var gradientEquivalent: Network? {
        var layers = self.layers, shapes = self.shapes
        var changed = false
        var i = 0
        while i + 1 < layers.count {
            switch (layers[i], layers[i + 1]) {
            case (.relu, .maxPool1d), (.relu, .maxPool2d), (.leakyReLU, .maxPool1d), (.leakyReLU, .maxPool2d):
                layers.swapAt(i, i + 1)
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
        return copy
    }
}
