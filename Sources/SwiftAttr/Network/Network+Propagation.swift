/// The propagation driver: the only code that walks a network's graph. Forward walks visit the nodes in
/// topological order, each computed from the values it reads; backward walks visit them in reverse,
/// each turning the signal at its output into one signal per value it reads, summed where a value
/// fans out. Every method family supplies only its rule per node kind (the gradient's pullback,
/// DeepLIFT's multipliers, …); the driver owns the order, the fan-out sums and the bookkeeping.
///
/// A walk covers the nodes `start..<end` where value `start` is a cut (``Network/cut``): nothing in the
/// range reads a value before it, so the walk needs value `start` only. In a chain every walk is a
/// straight line and no signal is ever summed.
extension Network {
    /// Runs nodes `start..<end` forward from `input` (value `start`). `node(i, values)` computes node i from
    /// the values it reads, in the order of ``inputs``. With `keep`, every value `start...end` is returned
    /// (index `v − start`); otherwise each value is released after its last reader and only the output
    /// (value `end`) is kept.
    func walkForward<Value>(
        _ input: Value, from start: Int, to end: Int, keep: Bool, node: (Int, [Value]) -> Value
    ) -> [Value?] {
        precondition(cut[start], "a forward walk must start at a cut")
        var values = [Value?](repeating: nil, count: end - start + 1)
        values[0] = input
        guard start < end else { return values }
        var remaining = keep ? [] : readers(from: start, to: end)
        for i in start..<end {
            let reads = inputs[i].map { values[$0 - start]! }
            values[i + 1 - start] = node(i, reads)
            if !keep {
                for v in inputs[i] {
                    remaining[v - start] -= 1
                    if remaining[v - start] == 0 { values[v - start] = nil }
                }
            }
        }
        return values
    }

    /// Runs nodes `end − 1` down to `start`, from `seed` at value `end`. `node(i, signal)` turns the
    /// signal at node i's output into one signal per value it reads; signals meeting at a value are
    /// combined by `accumulate`. Nodes whose output receives no signal (not on a path to value `end`) are
    /// skipped. Returns the signal at value `start`, or nil when no path reaches it.
    func walkBackward<Signal>(
        from end: Int, to start: Int, seed: Signal, node: (Int, Signal) -> [Signal],
        accumulate: (inout Signal, Signal) -> Void
    ) -> Signal? {
        precondition(cut[start], "a backward walk must end at a cut")
        var signals = [Signal?](repeating: nil, count: end - start + 1)
        signals[end - start] = seed
        var i = end - 1
        while i >= start {
            defer { i -= 1 }
            guard let signal = signals[i + 1 - start] else { continue }
            signals[i + 1 - start] = nil
            let back = node(i, signal)
            for (k, v) in inputs[i].enumerated() {
                if signals[v - start] == nil {
                    signals[v - start] = back[k]
                } else {
                    accumulate(&signals[v - start]!, back[k])
                }
            }
        }
        return signals[0]
    }

    /// For each value `start...end`, how many node inputs in `start..<end` read it (the output: one more,
    /// so it is never released).
    private func readers(from start: Int, to end: Int) -> [Int] {
        var count = [Int](repeating: 0, count: end - start + 1)
        for i in start..<end { for v in inputs[i] { count[v - start] += 1 } }
        count[end - start] += 1
        return count
    }
}

/// `a += b` elementwise (the fan-out sum of float signals).
@inline(__always)
func addInPlace(_ a: inout [Float], _ b: [Float]) {
    a.withUnsafeMutableBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            for k in 0..<ap.count { ap[k] += bp[k] }
        }
    }
}
