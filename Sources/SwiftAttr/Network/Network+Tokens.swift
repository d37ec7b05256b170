/// Token networks: node 0 is an ``Layer/embedding(_:)`` reading the token ids, and nothing else reads
/// them, so value 1 (the embedding output, rows × L × E) is a cut. Attributions of token inputs are taken
/// there, as Captum's `LayerIntegratedGradients(model, model.embedding)` does: every method runs on the
/// network after the embedding (``embeddingSplit``) at the embedded inputs, and sums over the embedding
/// axis, giving one value per token (rows × L). Baselines and references of a token network are token ids
/// (one example or one per example); none means zero embedding vectors. For attributions per embedding
/// coordinate (rows × L × E) or baselines given as embedding vectors, call the method on
/// `embeddingSplit.rest` with ``embedTokens(_:rows:name:)`` of the inputs.
extension Network {
    /// The Embedding of a token network (node 0), or nil.
    public var tokenEmbedding: Layer.Embedding? {
        if case .embedding(let e) = layers.first { return e }
        return nil
    }

    /// For a token network: its Embedding and the network after it, whose input (value 0) is the
    /// embedding output `[L, E]` (value v + 1 of this network is value v of `rest`).
    public var embeddingSplit: (embedding: Layer.Embedding, rest: Network)? {
        guard let e = tokenEmbedding else { return nil }
        // The nodes were validated in this network with the same shapes, so rebuilding cannot fail.
        var rest = try! Network(inputShape: shapes[1])
        for i in 1..<layers.count { try! rest.append(layers[i], inputs: inputs[i].map { $0 - 1 }) }
        return (e, rest)
    }

    /// Throws `.outOfRange` naming `name` and the flat index when an entry of `x` is not a token id of the
    /// network's Embedding (an integer in 0..<vocab); does nothing for other networks.
    func checkTokenIds(_ x: [Float], name: String) throws {
        guard let e = tokenEmbedding else { return }
        try x.withUnsafeBufferPointer { try Check.tokenIds($0, vocabulary: e.vocabularySize, name) }
    }

    /// The embedding vectors (rows × L × E) of `rows` examples of checked token ids (rows × L).
    public func embedTokens(_ ids: [Float], rows: Int, name: String = "inputs") throws -> [Float] {
        guard let e = tokenEmbedding else {
            throw SwiftAttrError.invalid("\(name): the model has no Embedding as its first layer, so it takes no token ids")
        }
        try checkInputs(ids, rows: rows, name: name)
        return embed(e, ids, count: ids.count)
    }

    /// A method call on a token network, moved to the embedding output.
    struct TokenCall {
        /// The network after the embedding.
        let rest: Network
        /// The embedded inputs, rows × L × E.
        let x: [Float]
        let rows: Int
        let length: Int
        let dimension: Int
        let network: Network

        /// Baselines given as ids (none, one example or one per example) at the embedding level: none
        /// stays none (zero vectors).
        func baselines(_ ids: [Float], name: String = "baselines") throws -> [Float] {
            if ids.isEmpty { return [] }
            if ids.count == length { return try network.embedTokens(ids, rows: 1, name: name) }
            guard ids.count == rows * length else {
                throw SwiftAttrError.shape("\(name): expected none (zero embedding vectors), one example of \(length) token ids or \(rows) examples (\(rows * length) ids), got \(ids.count) values")
            }
            return try network.embedTokens(ids, rows: rows, name: name)
        }

        /// Attributions at the embedding output (n × L × E) summed over the embedding axis: n × L.
        func summed(_ a: [Float]) -> [Float] {
            let E = dimension
            return uninitializedFloats(a.count / E) { out in
                a.withUnsafeBufferPointer { ap in
                    for k in 0..<(a.count / E) {
                        var total: Float = 0
                        for j in 0..<E { total += ap[k * E + j] }
                        out[k] = total
                    }
                }
            }
        }
    }

    /// For a token network, the checked call moved to the embedding output (nil for other networks).
    func tokenCall(_ x: [Float], rows: Int) throws -> TokenCall? {
        guard let (e, rest) = embeddingSplit else { return nil }
        let embedded = try embedTokens(x, rows: rows)
        return TokenCall(rest: rest, x: embedded, rows: rows, length: inputShape[0], dimension: e.dimension, network: self)
    }

    /// Throws for the second-order methods on networks with a node kind they do not support yet.
    func checkSecondOrderSupport(_ method: String) throws {
        for layer in layers {
            switch layer {
            case .embedding, .lstm:
                throw SwiftAttrError.invalid("\(method): not supported for \(layer.name) layers yet (second-order pass)")
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu,
                 .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat:
                continue
            }
        }
    }
}

extension Check {
    /// Throws `.outOfRange` naming `name[k]` for the first entry of `x` that is not an integer in
    /// 0..<vocabulary (NaN included); the error carries ``SwiftAttrError/tokenVocabulary``.
    public static func tokenIds(_ x: UnsafeBufferPointer<Float>, vocabulary: Int, _ name: String) throws {
        let limit = Float(vocabulary)
        for k in x.indices {
            let v = x[k]
            guard v >= 0, v < limit, v.rounded(.towardZero) == v else {
                var error = SwiftAttrError(.outOfRange, "\(name)[\(k)] = \(v) is not a token id: ids must be integers in 0..<\(vocabulary) (the Embedding's num_embeddings)")
                error.tokenVocabulary = vocabulary
                throw error
            }
        }
    }
}
