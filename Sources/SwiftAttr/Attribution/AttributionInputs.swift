/// Argument checks and expansions shared by every attribution method: the batch of inputs, the class
/// targets, the baselines, and the chunk size that bounds memory.
extension Network {
    /// Checks that `x` holds `rows` finite examples of the input shape.
    func checkInputs(_ x: [Float], rows: Int, name: String = "inputs") throws {
        guard rows > 0 else { throw SwiftAttrError.invalid("\(name): the batch must hold at least one example (got \(rows))") }
        let (expected, overflow) = rows.multipliedReportingOverflow(by: inputSize)
        guard !overflow, x.count == expected else {
            throw SwiftAttrError.shape("\(name): expected \(rows) examples of shape \(inputShape) = \(expected) values, got \(x.count)")
        }
        try Check.finite(x, name)
        try checkTokenIds(x, name: name)
        try checkWorkingMemory()
    }

    /// Expands `targets` (one index for all, or one per example) to one per example, checking the range.
    func expandTargets(_ targets: [Int], rows: Int) throws -> [Int] {
        guard targets.count == 1 || targets.count == rows else {
            throw SwiftAttrError.shape("target: expected 1 or \(rows) class indices (one per example), got \(targets.count)")
        }
        for (i, t) in targets.enumerated() where t < 0 || t >= outputSize {
            throw targetOutOfRange(Int64(t), at: targets.count > 1 ? i : nil)
        }
        return targets.count == 1 ? Array(repeating: targets[0], count: rows) : targets
    }

    /// The error for class index `value` (at `index` of a per-example list; nil: one target for all).
    public func targetOutOfRange(_ value: Int64, at index: Int?) -> SwiftAttrError {
        SwiftAttrError(.outOfRange, "target\(index.map { "[\($0)]" } ?? "") = \(value) is out of range for a model with \(outputSize) outputs (0..<\(outputSize))")
    }

    /// Expands baselines to one per example: empty → zeros, one example → broadcast, `rows` examples → as is.
    func expandBaselines(_ baselines: [Float], rows: Int, name: String = "baselines") throws -> [Float] {
        let d = inputSize
        if baselines.isEmpty { return [Float](repeating: 0, count: rows * d) }
        try Check.finite(baselines, name)
        if baselines.count == d {
            var out = [Float]()
            out.reserveCapacity(rows * d)
            for _ in 0..<rows { out.append(contentsOf: baselines) }
            return out
        }
        guard baselines.count == rows * d else {
            throw SwiftAttrError.shape("\(name): expected none, one example of shape \(inputShape) (\(d) values) or \(rows) examples (\(rows * d) values), got \(baselines.count) values")
        }
        return baselines
    }

    /// Working floats one example may need (2³⁰ floats, 4 GiB) before a call fails with `.outOfMemory`.
    static let maximumFloatsPerRow = 1 << 30

    /// Floats of tape and patch matrices one row needs in a pass over layers `start...`.
    func workingFloatsPerRow(from start: Int) -> Int {
        var perRow = 0
        for i in start...layers.count { perRow += size(at: i) }
        for i in start..<layers.count {
            switch layers[i] {
            case .conv1d(let c), .conv2d(let c):
                let g = WindowGeometry(convolution: c, input: shapes[input(of: i)])
                perRow += 2 * g.outputPlane * g.patchSize + 2 * size(at: i + 1)
            case .lstm(let l):
                // The step record and the backward's gate cotangents.
                perRow += 14 * shapes[input(of: i)][0] * l.hiddenSize
            case .dense, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU,
                 .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding:
                break
            }
        }
        return perRow
    }

    /// Throws `.outOfMemory` when one example needs more working memory than ``maximumFloatsPerRow``.
    func checkWorkingMemory() throws {
        let perRow = workingFloatsPerRow(from: 0)
        guard perRow <= Self.maximumFloatsPerRow else {
            throw SwiftAttrError(.outOfMemory, "model: one example needs \(perRow) floats (\(perRow >> 28) GiB) of working memory, more than the \(Self.maximumFloatsPerRow >> 28) GiB limit")
        }
    }

    /// Rows per chunk for passes that start at layer `start`: `requested` when given, otherwise as many
    /// as fit a budget of 2²⁰ floats (4 MB) of tape and patch matrices per worker — small enough to stay
    /// in cache, large enough for efficient GEMMs.
    func chunkRows(from start: Int, requested: Int?) throws -> Int {
        if let requested {
            try Check.positive(requested, "internal_batch_size")
            return requested
        }
        return max(1, (1 << 20) / max(1, workingFloatsPerRow(from: start)))
    }
}
