/// The propagation driver: the only code that walks a network's graph. Forward walks visit the nodes in
/// topological order, each computed from the values it reads; backward walks visit them in reverse,
/// each turning the signal at its output into one signal per value it reads, summed where a value
/// fans out. Every method family supplies only its rule per node kind (the gradient's pullback,
/// DeepLIFT's multipliers, …); the driver owns the order, the fan-out sums and the bookkeeping.
///
/// A walk covers the nodes `start..<end` where value `start` is a cut (``Network/cut``): nothing in the
/// range reads a value before it, so the walk needs value `start` only. In a chain every walk is a
/// straight line and no signal is ever summed. Layer attributions start or end a walk at an interior value
/// instead: forward with the earlier values the range reads supplied (`given`), backward holding them fixed
/// (the partial derivative with respect to value `start`, as a hook replacing that value sees it).
extension Network {
    /// Runs nodes `start..<end` forward from `input` (value `start`). `node(i, values)` computes node i from
    /// the values it reads, in the order of ``inputs``. With `keep`, every value `start...end` is returned
    /// (index `v − start`); otherwise each value is released after its last reader and only the output
    /// (value `end`) is kept. When `start` is not a cut, `given` holds every value below `start` that a node
    /// in the range reads (``valuesRead(below:to:)``); they are read, never released or returned.
    func walkForward<Value>(
        _ input: Value, from start: Int, to end: Int, keep: Bool, given: [Int: Value] = [:], node: (Int, [Value]) -> Value
    ) -> [Value?] {
        precondition(cut[start] || !given.isEmpty, "a forward walk must start at a cut or be given the earlier values it reads")
        var values = [Value?](repeating: nil, count: end - start + 1)
        values[0] = input
        guard start < end else { return values }
        var remaining = keep ? [] : readers(from: start, to: end)
        for i in start..<end {
            let reads = inputs[i].map { $0 >= start ? values[$0 - start]! : given[$0]! }
            values[i + 1 - start] = node(i, reads)
            if !keep {
                for v in inputs[i] where v >= start {
                    remaining[v - start] -= 1
                    if remaining[v - start] == 0 { values[v - start] = nil }
                }
            }
        }
        return values
    }

    /// Runs nodes `end − 1` down to `start`, from `seed` at value `end`. `node(i, signal)` turns the
    /// signal at node i's output into one signal per value it reads, or none (it passes nothing back);
    /// signals meeting at a value are combined by `accumulate`. Nodes whose output receives no signal (not on
    /// a path to value `end`) are skipped. Returns the signal at value `start`, or nil when no path reaches it. With `holdingFixed`,
    /// `start` need not be a cut: signals to values below it are dropped, so the result is the partial
    /// derivative with respect to value `start` with every earlier value held fixed.
    func walkBackward<Signal>(
        from end: Int, to start: Int, seed: Signal, holdingFixed: Bool = false, node: (Int, Signal) -> [Signal],
        accumulate: (inout Signal, Signal) -> Void
    ) -> Signal? {
        precondition(cut[start] || holdingFixed, "a backward walk must end at a cut")
        var signals = [Signal?](repeating: nil, count: end - start + 1)
        signals[end - start] = seed
        var i = end - 1
        while i >= start {
            defer { i -= 1 }
            guard let signal = signals[i + 1 - start] else { continue }
            signals[i + 1 - start] = nil
            let back = node(i, signal)
            guard !back.isEmpty else { continue }
            for (k, v) in inputs[i].enumerated() where v >= start {
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
        for i in start..<end { for v in inputs[i] where v >= start { count[v - start] += 1 } }
        count[end - start] += 1
        return count
    }

    /// The values below `start` that nodes `start..<end` read: what a forward walk from the interior value
    /// `start` must be given (empty when `start` is a cut).
    func valuesRead(below start: Int, to end: Int) -> [Int] {
        var seen = Set<Int>()
        for i in start..<end { for v in inputs[i] where v < start { seen.insert(v) } }
        return seen.sorted()
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
