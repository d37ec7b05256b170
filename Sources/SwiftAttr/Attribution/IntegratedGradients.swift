/// Integrated Gradients (Sundararajan, Taly, Yan 2017):
///
///     φ_i = (x_i − x'_i) ∫₀¹ ∂_i f(x' + α(x − x')) dα ≈ (x_i − x'_i) Σ_k w_k ∂_i f(x' + α_k(x − x'))
///
/// with the nodes and weights of a ``PathQuadrature`` rule. Completeness: Σ_i φ_i = f(x) − f(x'); the
/// convergence delta reported is Σ_i φ_i − (f(x) − f(x')).
extension Network {
    public struct IntegratedGradients: Sendable {
        /// rows × inputSize attributions.
        public var attributions: [Float]
        /// Per example: Σφ − (f_t(x) − f_t(x')).
        public var delta: [Float]
        /// rows × inputSize: ∫₀¹ ∇f(x' + α(x − x')) dα (the attributions before the product with x − x').
        var pathGradient: [Float] = []
    }

    /// Integrated Gradients of output `targets` (one, or one per example) for `rows` examples `x`.
    ///
    /// - Parameters:
    ///   - baselines: empty (zeros), one example (broadcast), or one per example.
    ///   - steps: number of quadrature nodes (Captum's `n_steps`).
    ///   - internalBatchSize: path points per chunk (memory bound); nil picks one for a 64 MB budget.
    ///   - multiplyByInputs: false returns the path-integrated gradient ∫₀¹ ∇f(x' + α(x − x')) dα itself,
    ///     not multiplied by x − x' (Captum's `multiply_by_inputs=False`); the delta is still that of the
    ///     attributions (x − x') ⊙ ∫∇f.
    public func integratedGradients(
        _ x: [Float], rows: Int, baselines: [Float] = [], targets: [Int], steps: Int = 50,
        method: PathQuadrature = .gaussLegendre, internalBatchSize: Int? = nil, multiplyByInputs: Bool = true
    ) throws -> IntegratedGradients {
        if let t = try tokenCall(x, rows: rows) {
            // Token networks: the path runs between embedding vectors (baselines: token ids, none = zero
            // vectors); attributions summed over the embedding axis, the delta unchanged.
            guard multiplyByInputs else {
                throw SwiftAttrError.invalid("multiply_by_inputs: the path-integrated gradient of a token model is taken at the embedding (call it on the network after the embedding)")
            }
            var r = try t.rest.integratedGradients(
                t.x, rows: rows, baselines: try t.baselines(baselines), targets: targets, steps: steps, method: method,
                internalBatchSize: internalBatchSize)
            r.attributions = t.summed(r.attributions)
            return r
        }
        if let equivalent = gradientEquivalent {
            return try equivalent.integratedGradients(
                x, rows: rows, baselines: baselines, targets: targets, steps: steps, method: method, internalBatchSize: internalBatchSize,
                multiplyByInputs: multiplyByInputs)
        }
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let base = try expandBaselines(baselines, rows: rows)
        let (alphas, weights) = try method.rule(steps)
        let chunk = try chunkRows(from: affinePrefixLength, requested: internalBatchSize)

        let rowChunk = try chunkRows(from: 0, requested: nil)
        var r = Parallel.singleThreadedBLAS {
            integratedGradients(x, rows: rows, base: base, targets: targets, alphas: alphas, weights: weights, chunk: chunk, rowChunk: rowChunk)
        }
        if !multiplyByInputs { r.attributions = r.pathGradient }
        return r
    }

    /// `throughPieces`: take a piecewise-linear section after the prefix through its pieces
    /// (``piecewiseLinearPathCotangents(_:zInput:zReference:rows:alphas:weights:targets:chunk:)``) when there
    /// is one; false evaluates every step through it (the tests compare the two).
    func integratedGradients(
        _ x: [Float], rows: Int, base: [Float], targets: [Int], alphas: [Double], weights: [Double], chunk: Int, rowChunk: Int,
        throughPieces: Bool = true
    ) -> IntegratedGradients {
        let p = affinePrefixLength, steps = alphas.count
        let d = inputSize, dp = size(at: p)
        let zInput = forwardRows(x, rows: rows, from: 0, to: p, chunk: rowChunk)
        let zBase = forwardRows(base, rows: rows, from: 0, to: p, chunk: rowChunk)
        let alphas = alphas.map(Float.init), weights = weights.map(Float.init)
        let count = rows * steps
        let point = { (j: Int) -> PathPoint in
            let i = j / steps, k = j % steps
            return PathPoint(example: i, reference: i, alpha: alphas[k], weight: weights[k])
        }
        // Σ_k w_k ∇_h f(h_k) per example at the prefix output, then Pᵀ once per example.
        let summed: [Float]
        if throughPieces, steps > 1, let section = piecewiseLinearSection(from: p) {
            summed = piecewiseLinearPathCotangents(
                section, zInput: zInput, zReference: zBase, rows: rows, alphas: alphas, weights: weights, targets: targets, chunk: chunk)
        } else {
            let accumulators = WorkerAccumulators<Double>(count: rows * dp, workers: Parallel.workers(count: count, chunk: chunk))
            defer { accumulators.release() }
            pathCotangents(prefix: p, zInput: zInput, zReference: zBase, count: count, point: point, targets: targets, chunk: chunk) { slice, g, worker in
                let acc = accumulators[worker]
                g.withUnsafeBufferPointer { gp in
                    for (r, point) in slice.enumerated() {
                        let dst = acc + point.example * dp, src = gp.baseAddress! + r * dp
                        for k in 0..<dp { dst[k] += Double(src[k]) }
                    }
                }
            }
            summed = accumulators.floatSum()
        }
        let gradients = pullbackAffineRows(summed, rows: rows, from: p, to: 0, chunk: rowChunk)
        var attributions = [Float](repeating: 0, count: rows * d)
        for j in 0..<(rows * d) { attributions[j] = (x[j] - base[j]) * gradients[j] }

        let fx = forwardRows(zInput, rows: rows, from: p, to: layers.count, chunk: rowChunk)
        let fb = forwardRows(zBase, rows: rows, from: p, to: layers.count, chunk: rowChunk)
        let out = outputSize
        let delta = (0..<rows).map { i -> Float in
            var total: Double = 0
            for j in 0..<d { total += Double(attributions[i * d + j]) }
            return Float(total - Double(fx[i * out + targets[i]] - fb[i * out + targets[i]]))
        }
        return IntegratedGradients(attributions: attributions, delta: delta, pathGradient: gradients)
    }
}
