import SwiftAttr

// Seeded draws (swiftattr.h, section "seeded draws"): the counter-based generator of the stochastic
// methods, exposed so that callers drawing their own noise (the Python metrics) draw it the same way.

/// Checks the shared arguments of the two exports and returns the output view and the first example.
private func randomRows(_ firstExample: Int64, _ n: Int64, _ count: Int64,
                        _ out: UnsafeMutablePointer<Float>?) throws -> (UnsafeMutableBufferPointer<Float>, UInt64, Int, Int) {
    let rows = try checkCount(n, "n")
    let columns = try checkCount(count, "count")
    guard columns <= CounterRandom.maximumRowCount else {
        throw SwiftAttrError(.invalidArgument, "count must be at most \(CounterRandom.maximumRowCount) (2^33) per row (got \(count))")
    }
    let first = try exampleOffset(firstExample, rows: rows)
    let total = try checkedProduct(rows, columns, "out", factors: ["n", "count"])
    return (try output(out, total, "out"), UInt64(first), rows, columns)
}

/// `int sa_random_normal(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
/// float *out)`: n × count standard normals, row i keyed by (seed, first_example + i, stream).
@_cdecl("sa_random_normal")
public func sa_random_normal(_ seed: UInt64, _ firstExample: Int64, _ n: Int64, _ count: Int64, _ stream: UInt32,
                             _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let (buffer, first, rows, columns) = try randomRows(firstExample, n, count, out)
        CounterRandom.fill(buffer, seed: seed, firstExample: first, rows: rows, count: columns, stream: stream,
                           distribution: .normal)
    }
}

/// `int sa_random_uniform(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
/// float lo, float hi, float *out)`: n × count uniforms on [lo, hi), keyed as sa_random_normal.
@_cdecl("sa_random_uniform")
public func sa_random_uniform(_ seed: UInt64, _ firstExample: Int64, _ n: Int64, _ count: Int64, _ stream: UInt32,
                              _ lo: Float, _ hi: Float, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        guard lo.isFinite else { throw SwiftAttrError(.nonFinite, "lo must be finite (got \(lo))") }
        guard hi.isFinite else { throw SwiftAttrError(.nonFinite, "hi must be finite (got \(hi))") }
        guard lo < hi else { throw SwiftAttrError(.invalidArgument, "lo must be less than hi (got lo = \(lo), hi = \(hi))") }
        let (buffer, first, rows, columns) = try randomRows(firstExample, n, count, out)
        CounterRandom.fill(buffer, seed: seed, firstExample: first, rows: rows, count: columns, stream: stream,
                           distribution: .uniform(lo: lo, hi: hi))
    }
}
