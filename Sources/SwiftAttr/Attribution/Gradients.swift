/// Gradient-based attributions: saliency (Simonyan et al. 2014), input × gradient (Shrikumar et al. 2016),
/// SmoothGrad and its variants (Smilkov et al. 2017; Adebayo et al. 2018), and Expected Gradients
/// (Erion et al., attribution priors).
extension Network {
    /// `∇_x ⟨c, f(x)⟩` for a full output cotangent `c` (rows × outputSize): the vector–Jacobian product.
    /// Token networks: the gradient at the embedding output, summed over the embedding axis.
    public func gradient(_ x: [Float], rows: Int, cotangent: [Float], internalBatchSize: Int? = nil) throws -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            return t.summed(try t.rest.gradient(t.x, rows: rows, cotangent: cotangent, internalBatchSize: internalBatchSize))
        }
        if let equivalent = gradientEquivalent {
            return try equivalent.gradient(x, rows: rows, cotangent: cotangent, internalBatchSize: internalBatchSize)
        }
        try checkInputs(x, rows: rows)
        guard cotangent.count == rows * outputSize else {
            throw SwiftAttrError.shape("cotangent: expected \(rows)×\(outputSize) values, got \(cotangent.count)")
        }
        try Check.finite(cotangent, "cotangent")
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        let d = inputSize, out = outputSize
        return Parallel.singleThreadedBLAS {
            mapRowChunks(x, rows: rows, inSize: d, outSize: d, chunk: chunk) { xs, range in
                pullback(record(xs, rows: range.count), cotangent: Array(cotangent[(range.lowerBound * out)..<(range.upperBound * out)]))
            }
        }
    }

    /// Saliency: `∂f_t/∂x` at x, or its absolute value when `absolute` (Captum's default).
    /// Token networks: at the embedding output, summed over the embedding axis (of |∂f/∂e| when absolute).
    public func saliency(_ x: [Float], rows: Int, targets: [Int], absolute: Bool = true, internalBatchSize: Int? = nil) throws -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            return t.summed(try t.rest.saliency(t.x, rows: rows, targets: targets, absolute: absolute, internalBatchSize: internalBatchSize))
        }
        if let equivalent = gradientEquivalent {
            return try equivalent.saliency(x, rows: rows, targets: targets, absolute: absolute, internalBatchSize: internalBatchSize)
        }
        try checkInputs(x, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let chunk = try chunkRows(from: affinePrefixLength, requested: internalBatchSize)
        let g = Parallel.singleThreadedBLAS { targetGradients(x, rows: rows, targets: targets, chunk: chunk) }
        return absolute ? g.map(abs) : g
    }

    /// Input × gradient: `x ⊙ ∂f_t/∂x`.
    /// Token networks: e ⊙ ∂f/∂e at the embedding output e, summed over the embedding axis.
    public func inputXGradient(_ x: [Float], rows: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            return t.summed(try t.rest.inputXGradient(t.x, rows: rows, targets: targets, internalBatchSize: internalBatchSize))
        }
        let g = try saliency(x, rows: rows, targets: targets, absolute: false, internalBatchSize: internalBatchSize)
        return zipMap(x, g) { $0 * $1 }
    }

    /// Expected Gradients: φ = E_{x'∼D, α∼U(0,1)} [(x − x') ⊙ ∇f_t(x' + α(x − x'))], estimated with
    /// `samples` draws per example of a reference (uniform over the `referenceCount` rows of
    /// `references`) and of α.
    ///
    /// Sample s of example i draws both from block 0 of ``CounterRandom`` at (seed, exampleOffset + i, s),
    /// so the draws depend on nothing else: not on chunking or threads, and a batch split into calls with
    /// `exampleOffset` set to each piece's first row reproduces the one-call numbers up to rounding.
    public func expectedGradients(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], samples: Int = 200,
        seed: UInt64 = 0, exampleOffset: Int = 0, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            // Token networks: references are token ids, embedded; attributions at the embedding output, summed.
            try checkInputs(references, rows: referenceCount, name: "references")
            let r = try embedTokens(references, rows: referenceCount, name: "references")
            return t.summed(try t.rest.expectedGradients(
                t.x, rows: rows, references: r, referenceCount: referenceCount, targets: targets, samples: samples, seed: seed,
                exampleOffset: exampleOffset, internalBatchSize: internalBatchSize))
        }
        if let equivalent = gradientEquivalent {
            return try equivalent.expectedGradients(
                x, rows: rows, references: references, referenceCount: referenceCount, targets: targets, samples: samples,
                seed: seed, exampleOffset: exampleOffset, internalBatchSize: internalBatchSize)
        }
        try checkInputs(x, rows: rows)
        try checkInputs(references, rows: referenceCount, name: "references")
        try Check.positive(samples, "n_samples")
        try Check.atMost(samples, Check.maximumSteps, "n_samples")
        try checkExampleOffset(exampleOffset, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let p = affinePrefixLength
        let chunk = try chunkRows(from: p, requested: internalBatchSize)

        let weight = 1 / Float(samples)
        let point = { (j: Int) -> PathPoint in
            let i = j / samples
            let (u, v) = CounterRandom.uniforms(seed: seed, example: UInt64(exampleOffset + i), sample: UInt32(j % samples), block: 0)
            return PathPoint(example: i, reference: CounterRandom.index(u, referenceCount), alpha: Float(v), weight: weight)
        }
        let rowChunk = try chunkRows(from: 0, requested: nil)
        return Parallel.singleThreadedBLAS {
            expectedGradients(
                x, rows: rows, references: references, referenceCount: referenceCount, targets: targets, samples: samples,
                point: point, chunk: chunk, rowChunk: rowChunk)
        }
    }

    private func expectedGradients(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], samples: Int,
        point: (Int) -> PathPoint, chunk: Int, rowChunk: Int
    ) -> [Float] {
        let p = affinePrefixLength, d = inputSize
        let zInput = forwardRows(x, rows: rows, from: 0, to: p, chunk: rowChunk)
        let zReference = forwardRows(references, rows: referenceCount, from: 0, to: p, chunk: rowChunk)
        let accumulators = WorkerAccumulators<Double>(count: rows * d, workers: Parallel.workers(count: rows * samples, chunk: chunk))
        defer { accumulators.release() }
        pathCotangents(prefix: p, zInput: zInput, zReference: zReference, count: rows * samples, point: point, targets: targets, chunk: chunk) { slice, g, worker in
            let grads = pullbackAffine(g, rows: slice.count, from: p, to: 0)
            let acc = accumulators[worker]
            for (r, point) in slice.enumerated() {
                let xi = point.example * d, xr = point.reference * d, gr = r * d
                for k in 0..<d { acc[xi + k] += Double((x[xi + k] - references[xr + k]) * grads[gr + k]) }
            }
        }
        return accumulators.floatSum()
    }

    /// `first_example` (the index in the whole batch of this call's first row) must be non-negative, and the
    /// last row's index must fit in 64 bits.
    private func checkExampleOffset(_ offset: Int, rows: Int) throws {
        try Check.nonNegative(offset, "first_example")
        guard offset <= Int.max - rows else {
            throw SwiftAttrError.invalid("first_example + n overflows (first_example = \(offset), n = \(rows))")
        }
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
    ///
    /// The noise of sample s of example i, features 2b and 2b + 1, is the pair of normals of block b of
    /// ``CounterRandom`` at (seed, exampleOffset + i, s): the draws depend on nothing else (not on chunking
    /// or threads), and a batch split into calls with `exampleOffset` set to each piece's first row
    /// reproduces the one-call numbers up to rounding.
    public func smoothGrad(
        _ x: [Float], rows: Int, targets: [Int], aggregation: NoiseAggregation = .smoothGrad, samples: Int = 5,
        stdev: Float = 1, seed: UInt64 = 0, exampleOffset: Int = 0, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        if let t = try tokenCall(x, rows: rows) {
            // Token networks: the noise is added to the embedding vectors (L·E features per example).
            return t.summed(try t.rest.smoothGrad(
                t.x, rows: rows, targets: targets, aggregation: aggregation, samples: samples, stdev: stdev, seed: seed,
                exampleOffset: exampleOffset, internalBatchSize: internalBatchSize))
        }
        if let equivalent = gradientEquivalent {
            return try equivalent.smoothGrad(
                x, rows: rows, targets: targets, aggregation: aggregation, samples: samples, stdev: stdev, seed: seed,
                exampleOffset: exampleOffset, internalBatchSize: internalBatchSize)
        }
        try checkInputs(x, rows: rows)
        try Check.positive(samples, "n_samples")
        try Check.atMost(samples, Check.maximumSteps, "n_samples")
        try checkExampleOffset(exampleOffset, rows: rows)
        guard stdev.isFinite, stdev >= 0 else { throw SwiftAttrError.invalid("stdevs must be finite and non-negative (got \(stdev))") }
        let targets = try expandTargets(targets, rows: rows)
        let chunk = try chunkRows(from: affinePrefixLength, requested: internalBatchSize)
        let d = inputSize
        let total = rows * samples
        let p = affinePrefixLength
        return Parallel.singleThreadedBLAS {
            // Inside the region: the worker count is fixed for the whole call.
            let workers = Parallel.workers(count: total, chunk: chunk)
            let sums = WorkerAccumulators<Double>(count: rows * d, workers: workers)
            let squares = WorkerAccumulators<Double>(count: rows * d, workers: workers)
            defer { sums.release(); squares.release() }
            Parallel.forEachChunk(count: total, chunk: chunk) { _, range, worker in
                let n = range.count
                let noisy = uninitializedFloats(n * d) { out in
                    x.withUnsafeBufferPointer { xp in
                        for (r, row) in range.enumerated() {
                            let i = row / samples
                            NoiseTunnel.addNoise(xp.baseAddress! + i * d, out + r * d, width: d, stdev: stdev, seed: seed,
                                                 example: UInt64(exampleOffset + i), sample: UInt32(row % samples))
                        }
                    }
                }
                let z = forward(noisy, rows: n, from: 0, to: p)
                let g = pullbackAffine(targetCotangents(at: p, z, rows: n, targets: range.map { targets[$0 / samples] }), rows: n, from: p, to: 0)
                let sum = sums[worker], square = squares[worker]
                for (r, row) in range.enumerated() {
                    let xi = (row / samples) * d
                    for k in 0..<d {
                        let v = Double(g[r * d + k])
                        sum[xi + k] += v
                        square[xi + k] += v * v
                    }
                }
            }
            let sum = sums.sum(), sumSquares = squares.sum()
            let s = Double(samples)
            switch aggregation {
            case .smoothGrad: return sum.map { Float($0 / s) }
            case .smoothGradSquared: return sumSquares.map { Float($0 / s) }
            case .varGrad: return zip(sum, sumSquares).map { Float(max(0, $1 / s - ($0 / s) * ($0 / s))) }
            }
        }
    }
}
