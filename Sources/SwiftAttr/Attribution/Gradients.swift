/// Gradient-based attributions: saliency (Simonyan et al. 2014), input × gradient (Shrikumar et al. 2016),
/// SmoothGrad and its variants (Smilkov et al. 2017; Adebayo et al. 2018), and Expected Gradients
/// (Erion et al., attribution priors).
extension Network {
    /// `∇_x ⟨c, f(x)⟩` for a full output cotangent `c` (rows × outputSize): the vector–Jacobian product.
    public func gradient(_ x: [Float], rows: Int, cotangent: [Float], internalBatchSize: Int? = nil) throws -> [Float] {
        try checkInputs(x, rows: rows)
        guard cotangent.count == rows * outputSize else {
            throw SwiftAttrError.shape("cotangent: expected \(rows)×\(outputSize) values, got \(cotangent.count)")
        }
        try Check.finite(cotangent, "cotangent")
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        let d = inputSize, out = outputSize
        var result = [Float]()
        result.reserveCapacity(rows * d)
        for begin in stride(from: 0, to: rows, by: chunk) {
            let end = min(rows, begin + chunk)
            let tape = record(Array(x[(begin * d)..<(end * d)]), rows: end - begin)
            result.append(contentsOf: pullback(tape, cotangent: Array(cotangent[(begin * out)..<(end * out)])))
        }
        return result
    }

    /// Saliency: `∂f_t/∂x` at x, or its absolute value when `absolute` (Captum's default).
    public func saliency(_ x: [Float], rows: Int, targets: [Int], absolute: Bool = true, internalBatchSize: Int? = nil) throws -> [Float] {
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let g = targetGradients(x, rows: rows, targets: targets, chunk: try chunkRows(from: affinePrefixLength, requested: internalBatchSize))
        return absolute ? g.map(abs) : g
    }

    /// Input × gradient: `x ⊙ ∂f_t/∂x`.
    public func inputXGradient(_ x: [Float], rows: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        let g = try saliency(x, rows: rows, targets: targets, absolute: false, internalBatchSize: internalBatchSize)
        return zipMap(x, g) { $0 * $1 }
    }

    /// Expected Gradients: φ = E_{x'∼D, α∼U(0,1)} [(x − x') ⊙ ∇f_t(x' + α(x − x'))], estimated with
    /// `samples` draws per example of a reference (uniform over the `referenceCount` rows of
    /// `references`) and of α. Deterministic for a given `seed`.
    public func expectedGradients(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], samples: Int = 200,
        seed: UInt64 = 0, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        try checkInputs(x, rows: rows)
        try checkInputs(references, rows: referenceCount, name: "references")
        try Check.positive(samples, "n_samples")
        let targets = try expandTargets(targets, rows: rows)
        let p = affinePrefixLength
        let chunk = try chunkRows(from: p, requested: internalBatchSize)
        let d = inputSize

        var rng = RandomSource(seed: seed)
        let weight = 1 / Float(samples)
        var points = [PathPoint]()
        points.reserveCapacity(rows * samples)
        for i in 0..<rows {
            for _ in 0..<samples {
                let r = rng.index(referenceCount)
                points.append(PathPoint(example: i, reference: r, alpha: Float(rng.uniform()), weight: weight))
            }
        }
        let zInput = forward(x, rows: rows, from: 0, to: p)
        let zReference = forward(references, rows: referenceCount, from: 0, to: p)
        var attributions = [Float](repeating: 0, count: rows * d)
        pathCotangents(prefix: p, zInput: zInput, zReference: zReference, points: points, targets: targets, chunk: chunk) { slice, g in
            let grads = pullbackAffine(g, rows: slice.count, from: p, to: 0)
            for (r, point) in slice.enumerated() {
                let xi = point.example * d, xr = point.reference * d, gr = r * d
                for k in 0..<d { attributions[xi + k] += (x[xi + k] - references[xr + k]) * grads[gr + k] }
            }
        }
        return attributions
    }

    /// How SmoothGrad aggregates the gradients at noisy copies of the input.
    public enum NoiseAggregation: Int32, Sendable, CaseIterable {
        /// Mean of the gradients.
        case smoothGrad = 0
        /// Mean of the squared gradients.
        case smoothGradSquared = 1
        /// Variance of the gradients: E[g²] − E[g]².
        case varGrad = 2

        public var name: String {
            switch self {
            case .smoothGrad: "smoothgrad"
            case .smoothGradSquared: "smoothgrad_sq"
            case .varGrad: "vargrad"
            }
        }
    }

    /// SmoothGrad: aggregates `∇f_t(x + ε)`, ε ∼ N(0, stdev² I), over `samples` draws per example.
    /// Deterministic for a given `seed`.
    public func smoothGrad(
        _ x: [Float], rows: Int, targets: [Int], aggregation: NoiseAggregation = .smoothGrad, samples: Int = 5,
        stdev: Float = 1, seed: UInt64 = 0, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        try checkInputs(x, rows: rows)
        try Check.positive(samples, "n_samples")
        guard stdev.isFinite, stdev >= 0 else { throw SwiftAttrError.invalid("stdevs must be finite and non-negative (got \(stdev))") }
        let targets = try expandTargets(targets, rows: rows)
        let chunk = try chunkRows(from: affinePrefixLength, requested: internalBatchSize)
        let d = inputSize
        var rng = RandomSource(seed: seed)
        var sum = [Double](repeating: 0, count: rows * d)
        var sumSquares = [Double](repeating: 0, count: rows * d)
        let total = rows * samples
        for begin in stride(from: 0, to: total, by: chunk) {
            let end = min(total, begin + chunk), n = end - begin
            var noisy = [Float](repeating: 0, count: n * d)
            for r in 0..<n {
                let i = (begin + r) / samples
                for k in 0..<d { noisy[r * d + k] = x[i * d + k] + stdev * Float(rng.normal()) }
            }
            let g = targetGradients(noisy, rows: n, targets: (begin..<end).map { targets[$0 / samples] }, chunk: n)
            for r in 0..<n {
                let i = (begin + r) / samples
                for k in 0..<d {
                    let v = Double(g[r * d + k])
                    sum[i * d + k] += v
                    sumSquares[i * d + k] += v * v
                }
            }
        }
        let s = Double(samples)
        switch aggregation {
        case .smoothGrad: return sum.map { Float($0 / s) }
        case .smoothGradSquared: return sumSquares.map { Float($0 / s) }
        case .varGrad: return zip(sum, sumSquares).map { Float(max(0, $1 / s - ($0 / s) * ($0 / s))) }
        }
    }
}
