import CKernels

/// NoiseTunnel (Captum's NoiseTunnel; Smilkov et al. 2017, Adebayo et al. 2018) over any attribution
/// method: the method runs once on a batch of noisy copies x_i + ε_is (example-major: row i·S + s, as
/// Captum's repeat_interleave), and the copies' attributions are aggregated per example by a
/// ``Network/NoiseAggregation``.
///
/// The noise of sample s of example i, features 2b and 2b + 1, is the pair of normals of block b of
/// ``CounterRandom`` at (seed, exampleOffset + i, s) — the draws SmoothGrad makes, so a noise tunnel over
/// the plain gradient is SmoothGrad. A reference drawn for the copy (Captum's `draw_baseline_from_distrib`)
/// takes the first uniform of block 2³² − 1 of the same counter, a block no feature's noise uses.
public enum NoiseTunnel {
    /// Block of the reference draws (features use blocks 0..<⌈d/2⌉ < 2³² − 1).
    static let referenceBlock = UInt32.max

    /// Writes x + stdev·ε(seed, example, sample) for one row of `width` floats (`x` → `out`).
    @inline(__always)
    static func addNoise(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, width d: Int, stdev: Float,
                         seed: UInt64, example: UInt64, sample: UInt32) {
        swiftattr_normals(seed, example, sample, 0, d, out)
        for k in 0..<d { out[k] = x[k] + stdev * out[k] }
    }

    /// `samples` noisy copies of each of the `rows` rows of `x` (`width` floats each): rows·samples rows,
    /// row i·samples + s = x_i + stdev·ε(seed, exampleOffset + i, s).
    public static func noisyCopies(
        _ x: [Float], rows: Int, width d: Int, samples: Int, stdev: Float, seed: UInt64, exampleOffset: Int = 0
    ) throws -> [Float] {
        try checkNoise(rows: rows, width: d, count: x.count, samples: samples, stdev: stdev, exampleOffset: exampleOffset)
        try Check.finite(x, "inputs")
        return uninitializedFloats(rows * samples * d) { out in
            x.withUnsafeBufferPointer { xp in
                for i in 0..<rows {
                    for s in 0..<samples {
                        addNoise(xp.baseAddress! + i * d, out + (i * samples + s) * d, width: d, stdev: stdev, seed: seed,
                                 example: UInt64(exampleOffset + i), sample: UInt32(s))
                    }
                }
            }
        }
    }

    /// For each of the rows·samples copies, the index of its reference among `references` (uniform,
    /// keyed by (seed, exampleOffset + i, s) like the noise).
    public static func referenceDraws(rows: Int, samples: Int, references: Int, seed: UInt64, exampleOffset: Int = 0) throws -> [Int] {
        try checkNoise(rows: rows, width: 1, count: rows, samples: samples, stdev: 0, exampleOffset: exampleOffset)
        try Check.positive(references, "n_baselines")
        return (0..<(rows * samples)).map { j in
            let (u, _) = CounterRandom.uniforms(seed: seed, example: UInt64(exampleOffset + j / samples), sample: UInt32(j % samples),
                                                block: referenceBlock)
            return CounterRandom.index(u, references)
        }
    }

    /// The aggregate per example of the copies' attributions `a` (rows·samples rows of `width`, example-major):
    /// their mean, mean of squares, or variance E[a²] − E[a]² (Captum's, unclamped), summed in Double.
    public static func aggregate(_ a: [Float], rows: Int, samples: Int, width: Int, _ aggregation: Network.NoiseAggregation) throws -> [Float] {
        try Check.positive(rows, "n")
        try Check.positive(samples, "nt_samples")
        guard a.count == rows * samples * width else {
            throw SwiftAttrError.shape("attributions: expected \(rows)·\(samples) rows of \(width) values, got \(a.count) values")
        }
        try Check.finite(a, "attributions")
        let s = Double(samples)
        return uninitializedFloats(rows * width) { out in
            for i in 0..<rows {
                for k in 0..<width {
                    var sum: Double = 0, squares: Double = 0
                    for j in 0..<samples {
                        let v = Double(a[(i * samples + j) * width + k])
                        sum += v
                        squares += v * v
                    }
                    let mean = sum / s, meanSquare = squares / s
                    out[i * width + k] = switch aggregation {
                    case .smoothGrad: Float(mean)
                    case .smoothGradSquared: Float(meanSquare)
                    case .varGrad: Float(meanSquare - mean * mean)
                    }
                }
            }
        }
    }

    private static func checkNoise(rows: Int, width: Int, count: Int, samples: Int, stdev: Float, exampleOffset: Int) throws {
        try Check.positive(rows, "n")
        try Check.positive(samples, "nt_samples")
        try Check.atMost(samples, Check.maximumSteps, "nt_samples")
        guard stdev.isFinite, stdev >= 0 else { throw SwiftAttrError.invalid("stdevs must be finite and non-negative (got \(stdev))") }
        guard exampleOffset >= 0, exampleOffset <= Int.max - rows else {
            throw SwiftAttrError.invalid("first_example must be non-negative and first_example + n representable (got \(exampleOffset))")
        }
        let (total, overflow) = rows.multipliedReportingOverflow(by: samples)
        let (floats, overflow2) = total.multipliedReportingOverflow(by: width)
        guard !overflow, !overflow2, floats <= Network.maximumFloatsPerRow else {
            throw SwiftAttrError(.outOfMemory, "nt_samples: \(rows) examples × \(samples) samples × \(width) values is too large for one call; pass fewer examples")
        }
        guard count == rows * width else { throw SwiftAttrError.shape("inputs: expected \(rows) rows of \(width) values, got \(count)") }
    }
}
