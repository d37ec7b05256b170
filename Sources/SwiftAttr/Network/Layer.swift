/// The closed set of layer kinds a ``Network`` is made of.
///
/// Weights use PyTorch's memory layouts, so they copy over from `torch.nn` unchanged: Dense `W` is
/// out×in, convolutions `W` are out×in×k (1-D) or out×in×kh×kw (2-D), Embedding vocab×dim, LSTM
/// `weight_ih` 4H×E and `weight_hh` 4H×H. Per-example shapes are channel first: `[F]` for feature vectors,
/// `[C, L]` for sequences, `[C, H, W]` for images; token networks take ids `[L]`, and an LSTM reads
/// `[L, E]` (time first, PyTorch's batch-first layout without the batch axis), as an Embedding writes it.
///
/// Every method family switches over this enum exhaustively (no `default:`), so adding a kind makes the
/// compiler point at every method that must learn it.
public enum Layer: Sendable, Equatable {
    /// `y = W x + b`, `W`: out×in.
    case dense(Dense)
    /// 1-D cross-correlation over `[C, L]` (PyTorch `Conv1d`).
    case conv1d(Convolution)
    /// 2-D cross-correlation over `[C, H, W]` (PyTorch `Conv2d`).
    case conv2d(Convolution)
    /// Max over windows of `[C, L]` (padding counts as −∞, as in PyTorch).
    case maxPool1d(Pooling)
    /// Max over windows of `[C, H, W]`.
    case maxPool2d(Pooling)
    /// Mean over windows of `[C, L]` (padding counted in the divisor, PyTorch's default).
    case avgPool1d(Pooling)
    /// Mean over windows of `[C, H, W]`.
    case avgPool2d(Pooling)
    /// Mean over every position of each channel: `[C, …] → [C]`.
    case globalAvgPool
    /// Reshape an example to one dimension.
    case flatten
    /// The same values viewed under another per-example shape of equal size (`nn.Unflatten`, `view`,
    /// ONNX `Reshape`): identity on the buffer, so every rule passes signals through unchanged.
    case reshape(shape: [Int])
    /// `max(x, 0)`.
    case relu
    /// `x` for x > 0, `slope·x` otherwise.
    case leakyReLU(slope: Float)
    /// `x` for x > 0, `α(eˣ − 1)` otherwise.
    case elu(alpha: Float)
    /// `log(1 + e^{βx}) / β`.
    case softplus(beta: Float)
    /// `1 / (1 + e^{−x})`.
    case sigmoid
    /// `tanh x`.
    case tanh
    /// `e^{x_i} / Σ_j e^{x_j}` over the example; allowed as the final layer only.
    case softmax
    /// Per-channel affine map with inference statistics: `γ (x − μ)/√(σ² + ε) + β`.
    case batchNorm(BatchNorm)
    /// Identity at inference (`p` is kept for the record only).
    case dropout(p: Float)
    /// Elementwise sum of two or more values of one shape (a residual connection).
    case add
    /// Concatenation of two or more values along the first per-example axis: the features of `[F]`
    /// values, the channels of `[C, L]` and `[C, H, W]` values (the other axes must agree).
    case concat
    /// Token ids to vectors (PyTorch `Embedding`, weight vocab×dim): `[L]` → `[L, E]`. The ids arrive as
    /// float32 values, exact below 2²⁴; every entry point checks they are integers in `0..<vocab`.
    /// Allowed only as node 0, reading the network input, and nothing else may read the ids: value 1 (the
    /// embedding output) is then a cut, and token attributions are taken there (see ``Network/embeddingSplit``).
    case embedding(Embedding)
    /// One-layer unidirectional LSTM, batch first (PyTorch `LSTM`, gate order i, f, g, o): `[L, E]` →
    /// `[H]` (the last hidden state) or `[L, H]` (every hidden state).
    case lstm(LSTM)

    /// Embedding parameters.
    public struct Embedding: Sendable, Equatable {
        public let weight: [Float]  // vocab × dim
        public let vocabularySize: Int
        public let dimension: Int

        public init(weight: [Float], vocabularySize: Int, dimension: Int) throws {
            try Check.positive(vocabularySize, "embedding num_embeddings")
            try Check.positive(dimension, "embedding embedding_dim")
            guard vocabularySize < 1 << 24 else {
                throw SwiftAttrError.invalid("embedding num_embeddings must be below 2^24 = 16777216 (ids travel as exact float32 values), got \(vocabularySize)")
            }
            guard weight.count == (try Check.count([vocabularySize, dimension], "embedding weight")) else {
                throw SwiftAttrError.shape("embedding weight: expected \(vocabularySize)×\(dimension) values, got \(weight.count)")
            }
            try Check.finite(weight, "embedding weight")
            self.weight = weight
            self.vocabularySize = vocabularySize
            self.dimension = dimension
        }
    }

    /// LSTM parameters in PyTorch's layout (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`),
    /// gate blocks stacked in the order i, f, g, o:
    ///
    ///     i = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)   f = σ(…)   g = tanh(…)   o = σ(…)
    ///     c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t),   h_{−1} = c_{−1} = 0
    public struct LSTM: Sendable, Equatable {
        public let weightIH: [Float]  // 4H × E
        public let weightHH: [Float]  // 4H × H
        public let biasIH: [Float]  // 4H
        public let biasHH: [Float]  // 4H
        public let inputSize: Int
        public let hiddenSize: Int
        /// true: every hidden state `[L, H]` (PyTorch's `output`); false: the last one `[H]` (`h_n[-1]`,
        /// `output[:, -1]`).
        public let returnSequences: Bool
        /// `b_ih + b_hh`, added once per step.
        public let bias: [Float]

        public init(
            weightIH: [Float], weightHH: [Float], biasIH: [Float]?, biasHH: [Float]?, inputSize: Int, hiddenSize: Int,
            returnSequences: Bool
        ) throws {
            try Check.positive(inputSize, "lstm input_size")
            try Check.positive(hiddenSize, "lstm hidden_size")
            let g = try Check.count([4, hiddenSize], "lstm hidden_size")
            guard weightIH.count == (try Check.count([g, inputSize], "lstm weight_ih")) else {
                throw SwiftAttrError.shape("lstm weight_ih: expected \(g)×\(inputSize) values (4·hidden_size × input_size), got \(weightIH.count)")
            }
            guard weightHH.count == (try Check.count([g, hiddenSize], "lstm weight_hh")) else {
                throw SwiftAttrError.shape("lstm weight_hh: expected \(g)×\(hiddenSize) values (4·hidden_size × hidden_size), got \(weightHH.count)")
            }
            try Check.finite(weightIH, "lstm weight_ih")
            try Check.finite(weightHH, "lstm weight_hh")
            for (b, name) in [(biasIH, "lstm bias_ih"), (biasHH, "lstm bias_hh")] {
                guard let b else { continue }
                guard b.count == g else { throw SwiftAttrError.shape("\(name): expected \(g) values (4·hidden_size), got \(b.count)") }
                try Check.finite(b, name)
            }
            self.weightIH = weightIH
            self.weightHH = weightHH
            self.biasIH = biasIH ?? [Float](repeating: 0, count: g)
            self.biasHH = biasHH ?? [Float](repeating: 0, count: g)
            self.inputSize = inputSize
            self.hiddenSize = hiddenSize
            self.returnSequences = returnSequences
            self.bias = zip(self.biasIH, self.biasHH).map { $0 + $1 }
        }
    }

    /// Dense layer parameters.
    public struct Dense: Sendable, Equatable {
        public let weight: [Float]  // out × in
        public let bias: [Float]  // out
        public let inFeatures: Int
        public let outFeatures: Int

        public init(weight: [Float], bias: [Float]?, outFeatures: Int, inFeatures: Int) throws {
            try Check.positive(outFeatures, "dense out_features")
            try Check.positive(inFeatures, "dense in_features")
            guard weight.count == (try Check.count([outFeatures, inFeatures], "dense weight")) else {
                throw SwiftAttrError.shape("dense weight: expected \(outFeatures)×\(inFeatures) values, got \(weight.count)")
            }
            try Check.finite(weight, "dense weight")
            if let bias {
                guard bias.count == outFeatures else { throw SwiftAttrError.shape("dense bias: expected \(outFeatures) values, got \(bias.count)") }
                try Check.finite(bias, "dense bias")
            }
            self.weight = weight
            self.bias = bias ?? [Float](repeating: 0, count: outFeatures)
            self.inFeatures = inFeatures
            self.outFeatures = outFeatures
        }
    }

    /// Convolution parameters; 1-D layers use `kernel.count == 1`, 2-D `kernel.count == 2`
    /// (and likewise `stride`, `padding`, `dilation`).
    public struct Convolution: Sendable, Equatable {
        public let weight: [Float]  // out × in × k…
        public let bias: [Float]  // out
        public let outChannels: Int
        public let inChannels: Int
        public let kernel: [Int]
        public let stride: [Int]
        public let padding: [Int]
        public let dilation: [Int]

        public init(
            weight: [Float], bias: [Float]?, outChannels: Int, inChannels: Int,
            kernel: [Int], stride: [Int], padding: [Int], dilation: [Int]
        ) throws {
            try Check.positive(outChannels, "conv out_channels")
            try Check.positive(inChannels, "conv in_channels")
            guard !kernel.isEmpty, kernel.count <= 2, stride.count == kernel.count, padding.count == kernel.count, dilation.count == kernel.count else {
                throw SwiftAttrError.invalid("conv: kernel, stride, padding and dilation must each have 1 (Conv1d) or 2 (Conv2d) entries")
            }
            for (i, k) in kernel.enumerated() { try Check.windowEntry(k, "conv kernel_size", "kernel", i, of: kernel.count, minimum: 1) }
            for (i, s) in stride.enumerated() { try Check.windowEntry(s, "conv stride", "stride", i, of: stride.count, minimum: 1) }
            for (i, p) in padding.enumerated() { try Check.windowEntry(p, "conv padding", "padding", i, of: padding.count, minimum: 0) }
            for (i, d) in dilation.enumerated() { try Check.windowEntry(d, "conv dilation", "dilation", i, of: dilation.count, minimum: 1) }
            let expected = try Check.count([outChannels, inChannels] + kernel, "conv weight")
            guard weight.count == expected else {
                throw SwiftAttrError.shape("conv weight: expected \(([outChannels, inChannels] + kernel).map(String.init).joined(separator: "×")) = \(expected) values, got \(weight.count)")
            }
            try Check.finite(weight, "conv weight")
            if let bias {
                guard bias.count == outChannels else { throw SwiftAttrError.shape("conv bias: expected \(outChannels) values, got \(bias.count)") }
                try Check.finite(bias, "conv bias")
            }
            self.weight = weight
            self.bias = bias ?? [Float](repeating: 0, count: outChannels)
            self.outChannels = outChannels
            self.inChannels = inChannels
            self.kernel = kernel
            self.stride = stride
            self.padding = padding
            self.dilation = dilation
        }
    }

    /// Pooling window parameters (1 or 2 entries each, as for convolutions).
    public struct Pooling: Sendable, Equatable {
        public let kernel: [Int]
        public let stride: [Int]
        public let padding: [Int]

        public init(kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil) throws {
            let stride = stride ?? kernel
            let padding = padding ?? kernel.map { _ in 0 }
            guard !kernel.isEmpty, kernel.count <= 2, stride.count == kernel.count, padding.count == kernel.count else {
                throw SwiftAttrError.invalid("pool: kernel, stride and padding must each have 1 or 2 entries")
            }
            for (i, k) in kernel.enumerated() { try Check.windowEntry(k, "pool kernel_size", "kernel", i, of: kernel.count, minimum: 1) }
            for (i, s) in stride.enumerated() { try Check.windowEntry(s, "pool stride", "stride", i, of: stride.count, minimum: 1) }
            for (i, (p, k)) in zip(padding, kernel).enumerated() {
                try Check.windowEntry(p, "pool padding", "padding", i, of: padding.count, minimum: 0)
                guard 2 * p <= k else { throw SwiftAttrError.invalid("pool padding (\(p)) must be at most half the kernel size (\(k))") }
            }
            self.kernel = kernel
            self.stride = stride
            self.padding = padding
        }
    }

    /// Batch normalisation with inference statistics, folded into `y = scale·x + shift` per channel.
    public struct BatchNorm: Sendable, Equatable {
        public let gamma: [Float]
        public let beta: [Float]
        public let runningMean: [Float]
        public let runningVar: [Float]
        public let eps: Float
        /// `γ / √(σ² + ε)`.
        public let scale: [Float]
        /// `β − μ·scale`.
        public let shift: [Float]
        public var channels: Int { gamma.count }

        public init(gamma: [Float]?, beta: [Float]?, runningMean: [Float], runningVar: [Float], eps: Float) throws {
            let c = runningMean.count
            try Check.positive(c, "batchnorm channels")
            guard runningVar.count == c else { throw SwiftAttrError.shape("batchnorm running_var: expected \(c) values, got \(runningVar.count)") }
            let gamma = gamma ?? [Float](repeating: 1, count: c)
            let beta = beta ?? [Float](repeating: 0, count: c)
            guard gamma.count == c else { throw SwiftAttrError.shape("batchnorm weight: expected \(c) values, got \(gamma.count)") }
            guard beta.count == c else { throw SwiftAttrError.shape("batchnorm bias: expected \(c) values, got \(beta.count)") }
            try Check.finite(gamma, "batchnorm weight")
            try Check.finite(beta, "batchnorm bias")
            try Check.finite(runningMean, "batchnorm running_mean")
            try Check.finite(runningVar, "batchnorm running_var")
            guard eps.isFinite, eps >= 0 else { throw SwiftAttrError.invalid("batchnorm eps must be finite and non-negative (got \(eps))") }
            for (i, v) in runningVar.enumerated() where v + eps <= 0 {
                throw SwiftAttrError.invalid("batchnorm running_var[\(i)] + eps must be positive (got \(v + eps))")
            }
            self.gamma = gamma
            self.beta = beta
            self.runningMean = runningMean
            self.runningVar = runningVar
            self.eps = eps
            self.scale = (0..<c).map { gamma[$0] / (runningVar[$0] + eps).squareRoot() }
            self.shift = (0..<c).map { i in beta[i] - runningMean[i] * (gamma[i] / (runningVar[i] + eps).squareRoot()) }
        }
    }
}

extension Layer {
    /// A short name for messages (PyTorch's class names).
    public var name: String {
        switch self {
        case .dense: "Linear"
        case .conv1d: "Conv1d"
        case .conv2d: "Conv2d"
        case .maxPool1d: "MaxPool1d"
        case .maxPool2d: "MaxPool2d"
        case .avgPool1d: "AvgPool1d"
        case .avgPool2d: "AvgPool2d"
        case .globalAvgPool: "GlobalAvgPool"
        case .flatten: "Flatten"
        case .reshape: "Reshape"
        case .relu: "ReLU"
        case .leakyReLU: "LeakyReLU"
        case .elu: "ELU"
        case .softplus: "Softplus"
        case .sigmoid: "Sigmoid"
        case .tanh: "Tanh"
        case .softmax: "Softmax"
        case .batchNorm: "BatchNorm"
        case .dropout: "Dropout"
        case .add: "Add"
        case .concat: "Concat"
        case .embedding: "Embedding"
        case .lstm: "LSTM"
        }
    }

    /// How many values the node reads: `nil` for any number from two on (add, concat), else one.
    public var arity: Int? {
        switch self {
        case .add, .concat: nil
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm: 1
        }
    }

    /// True when the layer is an affine map of its input (so a path x' + αΔx maps to a straight path).
    public var isAffine: Bool {
        switch self {
        case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add,
             .concat: true
        case .maxPool1d, .maxPool2d, .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .lstm: false
        // A lookup of ids, not differentiable in them (token attributions are taken at its output).
        case .embedding: false
        }
    }

    /// The per-example output shape for the per-example shapes of the values the node reads, or an error
    /// that says why they do not fit.
    public func outputShape(for inputs: [[Int]]) throws -> [Int] {
        switch self {
        case .add:
            guard inputs.count >= 2 else { throw SwiftAttrError.invalid("Add needs at least two inputs (got \(inputs.count))") }
            for (k, shape) in inputs.enumerated() where shape != inputs[0] {
                throw SwiftAttrError.shape("Add needs inputs of one shape: input 0 has shape \(inputs[0]), input \(k) has \(shape)")
            }
            return inputs[0]
        case .concat:
            guard inputs.count >= 2 else { throw SwiftAttrError.invalid("Concat needs at least two inputs (got \(inputs.count))") }
            for (k, shape) in inputs.enumerated() where shape.count != inputs[0].count || shape.dropFirst() != inputs[0].dropFirst() {
                throw SwiftAttrError.shape("Concat joins along the first axis, so the other axes must agree: input 0 has shape \(inputs[0]), input \(k) has \(shape)")
            }
            var out = inputs[0]
            out[0] = inputs.reduce(0) { $0 + $1[0] }
            return out
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm:
            guard inputs.count == 1 else { throw SwiftAttrError.invalid("\(name) reads exactly one input (got \(inputs.count))") }
            return try outputShape(for: inputs[0])
        }
    }

    /// The per-example output shape for a per-example input shape, or an error that says why they do not fit.
    public func outputShape(for input: [Int]) throws -> [Int] {
        func spatial(_ kind: String, _ kernel: [Int], _ stride: [Int], _ padding: [Int], _ dilation: [Int], channels: Int?) throws -> [Int] {
            let dims = kernel.count
            guard input.count == dims + 1 else {
                throw SwiftAttrError.shape("\(kind) expects a per-example input of \(dims + 1) dimensions ([C, \(dims == 1 ? "L" : "H, W")]), got \(input)")
            }
            if let channels, input[0] != channels {
                throw SwiftAttrError.shape("\(kind) expects \(channels) input channels, got \(input[0]) (input shape \(input))")
            }
            var out = [input[0]]
            for d in 0..<dims {
                let span = dilation[d] * (kernel[d] - 1) + 1
                let size = input[d + 1] + 2 * padding[d] - span
                guard size >= 0 else {
                    throw SwiftAttrError.shape("\(kind): kernel extent \(span) exceeds the padded input size \(input[d + 1] + 2 * padding[d]) (input shape \(input))")
                }
                out.append(size / stride[d] + 1)
            }
            return out
        }
        switch self {
        case .dense(let l):
            guard input.count == 1 else { throw SwiftAttrError.shape("Linear expects a flat per-example input, got shape \(input); add a Flatten layer before it") }
            guard input[0] == l.inFeatures else { throw SwiftAttrError.shape("Linear expects \(l.inFeatures) input features, got \(input[0])") }
            return [l.outFeatures]
        case .conv1d(let c), .conv2d(let c):
            var out = try spatial(name, c.kernel, c.stride, c.padding, c.dilation, channels: c.inChannels)
            out[0] = c.outChannels
            return out
        case .maxPool1d(let p), .maxPool2d(let p), .avgPool1d(let p), .avgPool2d(let p):
            return try spatial(name, p.kernel, p.stride, p.padding, p.kernel.map { _ in 1 }, channels: nil)
        case .globalAvgPool:
            guard input.count >= 2 else { throw SwiftAttrError.shape("GlobalAvgPool expects [C, …] with at least one spatial dimension, got \(input)") }
            return [input[0]]
        case .flatten:
            return [input.reduce(1, *)]
        case .reshape(let shape):
            guard !shape.isEmpty, shape.count <= 3, shape.allSatisfy({ $0 > 0 }) else {
                throw SwiftAttrError.shape("Reshape needs 1 to 3 positive dimensions, got \(shape)")
            }
            guard shape.reduce(1, *) == input.reduce(1, *) else {
                throw SwiftAttrError.shape("Reshape to \(shape) needs \(shape.reduce(1, *)) values per example, the input \(input) has \(input.reduce(1, *))")
            }
            return shape
        case .batchNorm(let b):
            guard input[0] == b.channels else { throw SwiftAttrError.shape("BatchNorm expects \(b.channels) channels, got \(input[0]) (input shape \(input))") }
            return input
        case .embedding(let e):
            guard input.count == 1 else { throw SwiftAttrError.shape("Embedding expects a per-example input of token ids [L], got shape \(input)") }
            return [input[0], e.dimension]
        case .lstm(let l):
            guard input.count == 2, input[1] == l.inputSize else {
                throw SwiftAttrError.shape("LSTM expects a per-example input [L, \(l.inputSize)] (sequence length × input_size, batch first), got shape \(input)")
            }
            return l.returnSequences ? [input[0], l.hiddenSize] : [l.hiddenSize]
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat:
            return input
        }
    }
}
