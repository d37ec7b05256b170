/// Attribution in a transformed domain (TRIM: Singh, Ha, Yu et al., "Transformation importance with
/// applications to cosmology", 2020; csinva/transformation-importance).
///
/// For a linear transform s = T x with a (pseudo-)inverse T⁻¹ (p × k: p input values, k coefficients), the
/// network g(s, r) = f(T⁻¹ s + r) takes the coefficients as its input; r = x − T⁻¹T x is the part of x the
/// coefficients do not reconstruct. Every method run on g attributes to s: gradients are (T⁻¹)ᵀ∇f, path
/// methods integrate along s' + α(s − s'), CD splits s by a mask over coefficients.
extension Network {
    /// The network s ↦ f(T⁻¹ s) (input [k]) or, with `residual`, [s, r] ↦ f(T⁻¹ s + r) (input [k + p]): a
    /// Linear node with weight T⁻¹ (or [T⁻¹ | I]) and no bias, a Reshape to this network's input shape when
    /// it is not flat, then every node of this network. The residual enters as inputs rather than as a
    /// bias because it differs per example; give r the same value in an example and its baseline, so its
    /// Δ is zero and path methods and DeepLIFT attribute nothing to it.
    ///
    /// - Parameters:
    ///   - inverse: T⁻¹, row-major p × k (Linear's out × in layout), p = ``inputSize``.
    ///   - coefficients: k ≥ 1.
    public func transformed(inverse: [Float], coefficients k: Int, residual: Bool) throws -> Network {
        let p = inputSize
        try Check.positive(k, "coefficients")
        let expected = try Check.count([p, k], "inverse (input_size × coefficients)")
        guard inverse.count == expected else {
            throw SwiftAttrError.shape("inverse must hold input_size × coefficients = \(p) × \(k) = \(expected) values, got \(inverse.count)")
        }
        let width = residual ? k + p : k
        var weight = inverse
        if residual {
            weight = [Float](repeating: 0, count: try Check.count([p, width], "inverse with residual"))
            for j in 0..<p {
                for c in 0..<k { weight[j * width + c] = inverse[j * k + c] }
                weight[j * width + k + j] = 1
            }
        }
        var net = try Network(inputShape: [width])
        try net.append(.dense(try Layer.Dense(weight: weight, bias: nil, outFeatures: p, inFeatures: width)))
        if inputShape.count > 1 { try net.append(.reshape(shape: inputShape)) }
        // Value v of this network is value v + offset of the new one (value 0, the input, is the transform's output).
        let offset = net.layers.count
        for (i, layer) in layers.enumerated() {
            try net.append(layer, inputs: inputs[i].map { $0 + offset })
        }
        return net
    }
}
