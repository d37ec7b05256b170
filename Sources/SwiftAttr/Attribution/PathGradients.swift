/// The gradient engine every gradient method shares.
///
/// Structure used for speed (DESIGN.md, "Speed comes from structure"): the network's leading affine
/// layers P (Dense, Conv, BatchNorm, pooling by averages, Flatten, Dropout) map a straight path
/// x' + α(x − x') to the straight path (1 − α)P(x') + αP(x), so P runs once per example instead of once
/// per step; and since Pᵀ is linear, a step-weighted sum of cotangents at P's output is pulled back
/// through P once per example.
extension Network {
    /// Cotangents at the input of layer `start` for `rows` activation rows `h` (rows × size(at: start)):
    /// row r receives `weights[r] · ∇_h f_{targets[r]}(h_r)` (weights default to 1).
    ///
    /// When the network ends in a Dense layer reading the value before it, the one-hot seed's pullback
    /// through it is `weight · W[t, :]`, a row of W: the layer is neither run forward nor pulled back by a
    /// GEMM (both are skinny, K or N = the class count). The result is bit-identical: the GEMM would add
    /// zeros to the one product.
    func targetCotangents(at start: Int, _ h: [Float], rows: Int, targets: [Int], weights: [Float]? = nil) -> [Float] {
        let last = layers.count - 1
        if last >= start, inputs[last] == [last], case .dense(let d) = layers[last] {
            let tape = record(h, rows: rows, from: start, to: last)
            let width = d.inFeatures
            let seed = uninitializedFloats(rows * width) { s in
                d.weight.withUnsafeBufferPointer { w in
                    for r in 0..<rows {
                        let scale = weights?[r] ?? 1, row = w.baseAddress! + targets[r] * width, dst = s + r * width
                        for k in 0..<width { dst[k] = scale * row[k] }
                    }
                }
            }
            return pullback(tape, cotangent: seed)
        }
        let tape = record(h, rows: rows, from: start)
        return pullback(tape, cotangent: targetSeeds(rows: rows, targets: targets, weights: weights))
    }

    /// Seeds at the output for `rows` rows: row r is `weights[r]` (default 1) at output `targets[r]`, zero
    /// elsewhere.
    func targetSeeds(rows: Int, targets: [Int], weights: [Float]? = nil) -> [Float] {
        let out = outputSize
        var seed = [Float](repeating: 0, count: rows * out)
        for r in 0..<rows { seed[r * out + targets[r]] = weights?[r] ?? 1 }
        return seed
    }

    /// Applies `transform(rowsOfInput, range)` to chunks of `rows` rows of `input` (`inSize` floats each) in
    /// parallel, gathering the `outSize`-float results in row order.
    func mapRowChunks(
        _ input: [Float], rows: Int, inSize: Int, outSize: Int, chunk: Int, _ transform: ([Float], Range<Int>) -> [Float]
    ) -> [Float] {
        var result = [Float](repeating: 0, count: rows * outSize)
        result.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            Parallel.forEachChunk(count: rows, chunk: chunk) { _, range, _ in
                let y = transform(Array(input[(range.lowerBound * inSize)..<(range.upperBound * inSize)]), range)
                (out + range.lowerBound * outSize).update(from: y, count: y.count)
            }
        }
        return result
    }

    /// Gradients `∇_x f_{targets[i]}(x_i)` for `rows` examples, chunked by `chunk` rows (chunks in parallel).
    func targetGradients(_ x: [Float], rows: Int, targets: [Int], chunk: Int) -> [Float] {
        let p = affinePrefixLength
        return mapRowChunks(x, rows: rows, inSize: inputSize, outSize: inputSize, chunk: chunk) { xs, range in
            let z = forward(xs, rows: range.count, from: 0, to: p)
            let g = targetCotangents(at: p, z, rows: range.count, targets: Array(targets[range]))
            return pullbackAffine(g, rows: range.count, from: p, to: 0)
        }
    }

    /// Layers `start..<end` applied to `rows` rows, chunks of rows in parallel.
    func forwardRows(_ x: [Float], rows: Int, from start: Int, to end: Int, chunk: Int) -> [Float] {
        guard start < end else { return x }
        return mapRowChunks(x, rows: rows, inSize: size(at: start), outSize: size(at: end), chunk: chunk) { xs, range in
            forward(xs, rows: range.count, from: start, to: end)
        }
    }

    /// ``pullbackAffine(_:rows:from:to:)`` with chunks of rows in parallel.
    func pullbackAffineRows(_ cotangent: [Float], rows: Int, from end: Int, to start: Int, chunk: Int) -> [Float] {
        guard start < end else { return cotangent }
        return mapRowChunks(cotangent, rows: rows, inSize: size(at: end), outSize: size(at: start), chunk: chunk) { g, range in
            pullbackAffine(g, rows: range.count, from: end, to: start)
        }
    }

    /// One point of a path batch: example `example`, on the segment from reference row `reference` of
    /// `zReference` to `zInput[example]` at position `alpha`, with quadrature weight `weight`.
    struct PathPoint {
        var example: Int
        var reference: Int
        var alpha: Float
        var weight: Float
    }

    /// For each of `count` path points `point(j)`, the weighted cotangent at the output of the affine prefix
    /// (layer `p` input): `weight · ∇_h f_t(h)` at h = (1 − α)·zReference[reference] + α·zInput[example].
    /// Points are made per chunk (memory stays bounded however many there are) and processed in chunks of
    /// `chunk`, chunks in parallel; `consume(points, cotangents, worker)` receives each chunk's result on
    /// worker `worker` (0..<``Parallel/workers(count:chunk:)``), so callers accumulate into per-worker buffers.
    func pathCotangents(
        prefix p: Int, zInput: [Float], zReference: [Float], count: Int, point: (Int) -> PathPoint, targets: [Int], chunk: Int,
        consume: ([PathPoint], [Float], Int) -> Void
    ) {
        let dp = size(at: p)
        Parallel.forEachChunk(count: count, chunk: chunk) { _, range, worker in
            let slice = range.map(point)
            let n = slice.count
            let h = uninitializedFloats(n * dp) { hp in
                zInput.withUnsafeBufferPointer { zi in
                    zReference.withUnsafeBufferPointer { zr in
                        for (r, point) in slice.enumerated() {
                            pathPoint(zr.baseAddress! + point.reference * dp, zi.baseAddress! + point.example * dp, alpha: point.alpha,
                                      count: dp, into: hp + r * dp)
                        }
                    }
                }
            }
            let g = targetCotangents(at: p, h, rows: n, targets: slice.map { targets[$0.example] }, weights: slice.map(\.weight))
            consume(slice, g, worker)
        }
    }
}

/// The path point (1 − α)·reference + α·input of `count` floats: the one formula every path evaluation uses,
/// so the piecewise-linear sections decide their pieces on the same floats as the per-step evaluation.
@inline(__always)
func pathPoint(_ reference: UnsafePointer<Float>, _ input: UnsafePointer<Float>, alpha a: Float, count: Int,
                 into out: UnsafeMutablePointer<Float>) {
    let b = 1 - a
    for k in 0..<count { out[k] = b * reference[k] + a * input[k] }
}

/// Zeroed accumulators, one block of `count` values per worker of a chunked pass, so workers add without
/// sharing memory; ``sum()`` adds the blocks. The caller deallocates with ``release()``.
///
/// Path methods accumulate in Double (``floatSum()`` rounds once at the end): which points a worker adds,
/// and in which order, depends on internal_batch_size and the thread count, and float32 accumulators made
/// the sums depend on them by a few float32 roundings of Σ|terms| (measured: 2.5e-7 of max|φ| on the
/// benchmark MLP, 1e-4 relative on entries near 1e-3·max|φ|). Double sums of float32 terms round to the same
/// float whatever the order, up to a float32 rounding of the terms' own (GEMM-shape-dependent) values.
struct WorkerAccumulators<Element: FloatingPoint> {
    let count: Int
    let workers: Int
    let base: UnsafeMutablePointer<Element>

    init(count: Int, workers: Int) {
        self.count = count
        self.workers = max(1, workers)
        base = .allocate(capacity: count * self.workers)
        base.initialize(repeating: 0, count: count * self.workers)
    }

    /// The block of worker `w`.
    subscript(_ w: Int) -> UnsafeMutablePointer<Element> { base + w * count }

    /// Element-wise sum over the workers' blocks.
    func sum() -> [Element] {
        var total = Array(UnsafeBufferPointer(start: base, count: count))
        for w in 1..<workers {
            let block = self[w]
            for k in 0..<count { total[k] += block[k] }
        }
        return total
    }

    func release() { base.deallocate() }
}

extension WorkerAccumulators where Element == Double {
    /// The element-wise sum over the workers' blocks, rounded to float32 once.
    func floatSum() -> [Float] {
        uninitializedFloats(count) { out in
            for k in 0..<count {
                var total = base[k]
                for w in 1..<workers { total += base[w * count + k] }
                out[k] = Float(total)
            }
        }
    }
}
