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
    func targetCotangents(at start: Int, _ h: [Float], rows: Int, targets: [Int], weights: [Float]? = nil) -> [Float] {
        let tape = record(h, rows: rows, from: start)
        let out = outputSize
        var seed = [Float](repeating: 0, count: rows * out)
        for r in 0..<rows { seed[r * out + targets[r]] = weights?[r] ?? 1 }
        return pullback(tape, cotangent: seed)
    }

    /// Gradients `∇_x f_{targets[i]}(x_i)` for `rows` examples, chunked by `chunk` rows.
    func targetGradients(_ x: [Float], rows: Int, targets: [Int], chunk: Int) -> [Float] {
        let p = affinePrefixLength
        let d = inputSize
        var result = [Float]()
        result.reserveCapacity(rows * d)
        for begin in stride(from: 0, to: rows, by: chunk) {
            let end = min(rows, begin + chunk), n = end - begin
            let xs = Array(x[(begin * d)..<(end * d)])
            let z = forward(xs, rows: n, from: 0, to: p)
            let g = targetCotangents(at: p, z, rows: n, targets: Array(targets[begin..<end]))
            result.append(contentsOf: pullbackAffine(g, rows: n, from: p, to: 0))
        }
        return result
    }

    /// One point of a path batch: example `example`, on the segment from reference row `reference` of
    /// `zReference` to `zInput[example]` at position `alpha`, with quadrature weight `weight`.
    struct PathPoint {
        var example: Int
        var reference: Int
        var alpha: Float
        var weight: Float
    }

    /// For each point, the weighted cotangent at the output of the affine prefix (layer `p` input):
    /// `weight · ∇_h f_t(h)` at h = (1 − α)·zReference[reference] + α·zInput[example]. Points are
    /// processed in chunks of `chunk`; `consume(points, cotangents)` receives each chunk's result.
    func pathCotangents(
        prefix p: Int, zInput: [Float], zReference: [Float], points: [PathPoint], targets: [Int], chunk: Int,
        consume: (ArraySlice<PathPoint>, [Float]) -> Void
    ) {
        let dp = size(at: p)
        for begin in stride(from: 0, to: points.count, by: chunk) {
            let slice = points[begin..<min(points.count, begin + chunk)]
            let n = slice.count
            let h = uninitializedFloats(n * dp) { hp in
                zInput.withUnsafeBufferPointer { zi in
                    zReference.withUnsafeBufferPointer { zr in
                        for (r, point) in slice.enumerated() {
                            let a = point.alpha, b = 1 - point.alpha
                            let xi = zi.baseAddress! + point.example * dp, xr = zr.baseAddress! + point.reference * dp
                            let out = hp + r * dp
                            for k in 0..<dp { out[k] = b * xr[k] + a * xi[k] }
                        }
                    }
                }
            }
            let g = targetCotangents(at: p, h, rows: n, targets: slice.map { targets[$0.example] }, weights: slice.map(\.weight))
            consume(slice, g)
        }
    }
}
