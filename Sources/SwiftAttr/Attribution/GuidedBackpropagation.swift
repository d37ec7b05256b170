/// Guided backpropagation (Springenberg et al. 2015, "Striving for simplicity: the all convolutional net")
/// and deconvolution (Zeiler & Fergus 2014), as Captum's `GuidedBackprop` and `Deconvolution` define them:
/// the gradient of the target output, with the backward rule of every ReLU replaced.
///
/// - Guided backpropagation: a ReLU passes max(g · 1[x > 0], 0), the gradient's positive part where the
///   ReLU was active (Captum: `relu(grad_input)`).
/// - Deconvolution: a ReLU passes max(g, 0), ignoring the forward mask (Captum: `relu(grad_output)`).
/// - Every other node kind takes its ordinary gradient (its pullback), as in Captum, which hooks only
///   `nn.ReLU`: LeakyReLU, ELU, Softplus, Sigmoid and Tanh keep their derivatives, max-pooling routes to its
///   argmax (the deconvnet's "switches"), an LSTM and a final Softmax are differentiated as they are.
/// - Token networks (an Embedding first): at the embedding output, summed over the embedding axis.
///
/// The network is used as built (no gradient-equivalent rewriting: these are not gradients). A chunk of
/// examples runs forward once and backward as one GEMM per layer, through the propagation driver.
public enum ReLUBackwardRule: Int32, Sendable, CaseIterable {
    case guided = 0
    case deconvolution = 1

    public var name: String {
        switch self {
        case .guided: "guided_backprop"
        case .deconvolution: "deconvolution"
        }
    }
}

extension Network {
    /// Guided backpropagation of output `targets` (one, or one per example): rows × inputSize.
    public func guidedBackprop(_ x: [Float], rows: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        try modifiedReLUGradient(x, rows: rows, targets: targets, rule: .guided, internalBatchSize: internalBatchSize)
    }

    /// Deconvolution of output `targets` (one, or one per example): rows × inputSize.
    public func deconvolution(_ x: [Float], rows: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        try modifiedReLUGradient(x, rows: rows, targets: targets, rule: .deconvolution, internalBatchSize: internalBatchSize)
    }

    /// The gradient of f_t with every ReLU's backward replaced by `rule`.
    public func modifiedReLUGradient(_ x: [Float], rows: Int, targets: [Int], rule: ReLUBackwardRule, internalBatchSize: Int? = nil) throws
        -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            return t.summed(try t.rest.modifiedReLUGradient(t.x, rows: rows, targets: targets, rule: rule, internalBatchSize: internalBatchSize))
        }
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        let d = inputSize, out = outputSize, end = layers.count
        return mapRowChunks(x, rows: rows, inSize: d, outSize: d, chunk: chunk) { xs, range in
            let n = range.count
            let tape = record(xs, rows: n)
            var seed = [Float](repeating: 0, count: n * out)
            for p in 0..<n { seed[p * out + targets[range.lowerBound + p]] = 1 }
            return walkBackward(from: end, to: 0, seed: seed, node: { i, g -> [[Float]] in
                switch layers[i] {
                case .relu:
                    let a = tape.value(input(of: i))
                    switch rule {
                    case .guided: return [zipMap(g, a) { $1 > 0 ? max($0, 0) : 0 }]
                    case .deconvolution: return [g.map { max($0, 0) }]
                    }
                case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
                     .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
                    return pullbackNode(i, g, rows: n, reads: inputs[i].map { tape.value($0) }, output: tape.value(i + 1),
                                        argmax: tape.argmax[i], steps: tape.steps[i])
                }
            }, accumulate: addInPlace) ?? [Float](repeating: 0, count: n * d)
        }
    }
}
