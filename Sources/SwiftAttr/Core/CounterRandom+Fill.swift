import CKernels

/// Bulk seeded draws for callers that need the noise itself (the faithfulness metrics perturb inputs with
/// it): row i of n rows, `count` floats, is a pure function of (seed, firstExample + i, stream), so a batch
/// drawn in pieces with each piece's `firstExample` equals the one-call draws bit for bit.
extension CounterRandom {
    /// The distribution of ``fill(_:seed:firstExample:rows:count:stream:distribution:)``.
    public enum Distribution: Sendable {
        /// Standard normal (Box–Muller, ``normals(seed:example:sample:block:)``, rounded to float32; CKernels'
        /// vectorised `swiftattr_normals`).
        case normal
        /// Uniform on [lo, hi) (lo < hi, both finite): lo + (hi − lo)·u in double, rounded to float32 and
        /// kept below hi.
        case uniform(lo: Float, hi: Float)
    }

    /// The largest `count` one row may have: element j uses block j / 2, and blocks are 32-bit.
    public static let maximumRowCount = 2 * (Int(UInt32.max) + 1)

    /// Fills `out` (rows · count floats, row-major) with draws: element j of row i is word j mod 2 of block
    /// j / 2 of (seed, example firstExample + i, sample `stream`). Rows are drawn on the library's threads;
    /// the values do not depend on the thread count.
    public static func fill(_ out: UnsafeMutableBufferPointer<Float>, seed: UInt64, firstExample: UInt64, rows: Int,
                            count: Int, stream: UInt32, distribution: Distribution) {
        precondition(rows >= 0 && count >= 0 && count <= maximumRowCount && out.count >= rows * count)
        guard rows > 0, count > 0, let base = out.baseAddress else { return }
        Parallel.forEachChunk(count: rows, chunk: max(1, 65_536 / count)) { _, range, _ in
            for i in range {
                let example = firstExample &+ UInt64(i)
                let row = base + i * count
                switch distribution {
                case .normal:
                    swiftattr_normals(seed, example, stream, 0, count, row)
                case .uniform(let lo, let hi):
                    let width = Double(hi) - Double(lo)
                    func below(_ u: Double) -> Float { min(Float(Double(lo) + width * u), hi.nextDown) }
                    var j = 0
                    while j < count {
                        let (u0, u1) = uniforms(seed: seed, example: example, sample: stream, block: UInt32(truncatingIfNeeded: j / 2))
                        row[j] = below(u0)
                        if j + 1 < count { row[j + 1] = below(u1) }
                        j += 2
                    }
                }
            }
        }
    }
}
