/// The training losses, each the mean over the mini-batch (PyTorch's `reduction="mean"`).
///
/// - `mse`: mean over the N·K outputs of (f − y)² (`nn.MSELoss`); labels: N·K floats.
/// - `crossEntropy`: mean over the N examples of −log softmax(f)_y on the logits f (`nn.CrossEntropyLoss`),
///   computed as logsumexp(f) − f_y with the maximum subtracted (stable for any logit size); labels: N
///   class indices in 0..<K.
/// - `binaryCrossEntropy`: on logits (`nn.BCEWithLogitsLoss`), mean over the N·K outputs of
///   max(f, 0) − f·y + log(1 + e^{−|f|}), which never overflows; labels: N·K floats in [0, 1] (K = 1: one
///   logit per example).
///
/// Which value the loss reads: a network that ends in Softmax is trained with cross-entropy on the
/// logits before it (the Softmax's input: the same loss, computed stably), and one that ends in Sigmoid
/// with binary cross-entropy on the logit before it; the returned network keeps its final layer. MSE
/// reads the network's output as it is. Binary cross-entropy after a Softmax is rejected (the Softmax of
/// one logit is the constant 1).
public enum Loss: Int32, Sendable, CaseIterable {
    case mse = 0
    case crossEntropy = 1
    case binaryCrossEntropy = 2

    /// The names of the C and Python interfaces.
    public var name: String {
        switch self {
        case .mse: "mse"
        case .crossEntropy: "cross_entropy"
        case .binaryCrossEntropy: "binary_cross_entropy"
        }
    }

    /// Whether classification accuracy is defined: argmax for cross-entropy, f > 0 against y ≥ ½ for
    /// binary cross-entropy.
    public var hasAccuracy: Bool {
        switch self {
        case .mse: false
        case .crossEntropy, .binaryCrossEntropy: true
        }
    }
}

/// Training targets: class indices (cross-entropy) or values (MSE, binary cross-entropy).
public enum TrainingLabels: Sendable, Equatable {
    case classes([Int])
    case values([Float])

    /// The labels of examples `indices` (their order).
    func gather<C: Collection>(_ indices: C, width: Int) -> TrainingLabels where C.Element == Int {
        switch self {
        case .classes(let c):
            return .classes(indices.map { c[$0] })
        case .values(let v):
            var out: [Float] = []
            out.reserveCapacity(indices.count * width)
            for i in indices { out.append(contentsOf: v[(i * width)..<((i + 1) * width)]) }
            return .values(out)
        }
    }
}

extension Loss {
    /// Checks `labels` (named `name`) for `rows` examples of `width` outputs (see
    /// ``Network/lossWidth(_:)``).
    public func check(_ labels: TrainingLabels, rows: Int, width: Int, _ name: String) throws {
        switch (self, labels) {
        case (.crossEntropy, .classes(let c)):
            guard c.count == rows else { throw SwiftAttrError.shape("\(name): expected \(rows) class indices (one per example), got \(c.count)") }
            for (i, k) in c.enumerated() where k < 0 || k >= width {
                throw SwiftAttrError(.outOfRange, "\(name)[\(i)] = \(k) is out of range 0..<\(width) (the network has \(width) outputs)")
            }
        case (.mse, .values(let v)), (.binaryCrossEntropy, .values(let v)):
            guard v.count == rows * width else {
                throw SwiftAttrError.shape("\(name): expected \(rows)×\(width) = \(rows * width) values (examples × outputs), got \(v.count)")
            }
            try Check.finite(v, name)
            if self == .binaryCrossEntropy {
                for (i, y) in v.enumerated() where y < 0 || y > 1 {
                    throw SwiftAttrError(.outOfRange, "\(name)[\(i)] = \(y): binary cross-entropy targets must lie in [0, 1]")
                }
            }
        case (.crossEntropy, .values):
            throw SwiftAttrError.invalid("\(name): cross_entropy takes class indices (int64), not float values")
        case (.mse, .classes), (.binaryCrossEntropy, .classes):
            throw SwiftAttrError.invalid("\(name): \(self.name) takes float targets, not class indices")
        }
    }

    /// The mean loss over the batch of outputs `f` (rows × width) and its cotangent ∂loss/∂f. Labels must
    /// have passed ``check(_:rows:width:_:)``. With `batchRows`, `f` is part of a batch of that many rows:
    /// the sums are divided by the whole batch's count, so the parts' results add up to the batch's.
    func evaluate(_ f: [Float], rows: Int, width: Int, labels: TrainingLabels, batchRows: Int? = nil) -> (loss: Double, cotangent: [Float]) {
        let batch = batchRows ?? rows
        var total: Double = 0
        var grad = [Float](repeating: 0, count: rows * width)
        f.withUnsafeBufferPointer { z in
            grad.withUnsafeMutableBufferPointer { g in
                switch (self, labels) {
                case (.crossEntropy, .classes(let c)):
                    let scale = 1 / Float(batch)
                    for n in 0..<rows {
                        let zi = z.baseAddress! + n * width, gi = g.baseAddress! + n * width
                        var m = -Float.infinity
                        for k in 0..<width { m = max(m, zi[k]) }
                        var sum: Double = 0
                        for k in 0..<width { let e = _exp(Double(zi[k] - m)); gi[k] = Float(e); sum += e }
                        total += Double(m) + _log(sum) - Double(zi[c[n]])
                        let inv = Float(1 / sum)
                        for k in 0..<width { gi[k] = gi[k] * inv * scale }
                        gi[c[n]] -= scale
                    }
                    total /= Double(batch)
                case (.mse, .values(let y)):
                    let count = rows * width, scale = 2 / Float(batch * width)
                    for k in 0..<count {
                        let r = z[k] - y[k]
                        total += Double(r) * Double(r)
                        g[k] = scale * r
                    }
                    total /= Double(batch * width)
                case (.binaryCrossEntropy, .values(let y)):
                    let count = rows * width, scale = 1 / Float(batch * width)
                    for k in 0..<count {
                        let v = Double(z[k]), t = Double(y[k])
                        total += max(v, 0) - v * t + _log1p(_exp(-abs(v)))
                        let s = v >= 0 ? 1 / (1 + _exp(-v)) : _exp(v) / (1 + _exp(v))
                        g[k] = Float(s - t) * scale
                    }
                    total /= Double(batch * width)
                case (.crossEntropy, .values), (.mse, .classes), (.binaryCrossEntropy, .classes):
                    preconditionFailure("labels were not checked")
                }
            }
        }
        return (total, grad)
    }

    /// Fraction of examples classified right: argmax f = label (cross-entropy), or (f > 0) = (y ≥ ½) over
    /// every output (binary cross-entropy); nil for MSE.
    func accuracy(_ f: [Float], rows: Int, width: Int, labels: TrainingLabels) -> Double? {
        switch (self, labels) {
        case (.crossEntropy, .classes(let c)):
            var right = 0
            for n in 0..<rows {
                var best = 0
                for k in 1..<max(width, 1) where f[n * width + k] > f[n * width + best] { best = k }
                if best == c[n] { right += 1 }
            }
            return Double(right) / Double(rows)
        case (.binaryCrossEntropy, .values(let y)):
            var right = 0
            for k in 0..<(rows * width) where (f[k] > 0) == (y[k] >= 0.5) { right += 1 }
            return Double(right) / Double(rows * width)
        case (.mse, _), (.crossEntropy, .values), (.binaryCrossEntropy, .classes):
            return nil
        }
    }
}

extension Network {
    /// The value a loss reads: the logits before a final Softmax (cross-entropy) or Sigmoid (binary
    /// cross-entropy), else the output. See ``Loss``.
    func lossValue(_ loss: Loss) throws -> Int {
        guard !layers.isEmpty else { throw SwiftAttrError.invalid("model: it has no layers, so nothing to train") }
        switch layers[layers.count - 1] {
        case .softmax:
            switch loss {
            case .crossEntropy: return layers.count - 1
            case .mse: return layers.count
            case .binaryCrossEntropy:
                throw SwiftAttrError.invalid("loss: binary_cross_entropy needs a logit, but the model ends in Softmax; drop the Softmax or use cross_entropy")
            }
        case .sigmoid:
            return loss == .binaryCrossEntropy ? layers.count - 1 : layers.count
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .tanh, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
            return layers.count
        }
    }

    /// Outputs per example the loss reads (the width of its labels).
    public func lossWidth(_ loss: Loss) throws -> Int { size(at: try lossValue(loss)) }

    /// The mean `loss` over the batch `x` (rows examples) and its gradient with respect to every parameter
    /// (the order and shapes of ``parameters``): a forward tape and one reverse walk per chunk of rows, on
    /// the library's threads (see ``batchLossAndGradients(_:rows:labels:loss:end:)``).
    public func lossAndGradients(_ x: [Float], rows: Int, labels: TrainingLabels, loss: Loss) throws -> (loss: Double, gradients: [[Float]]) {
        try checkInputs(x, rows: rows)
        let end = try lossValue(loss)
        try loss.check(labels, rows: rows, width: size(at: end), "labels")
        return batchLossAndGradients(x, rows: rows, labels: labels, loss: loss, end: end)
    }

    /// ``lossAndGradients(_:rows:labels:loss:)`` on checked arguments, the loss reading value `end`.
    ///
    /// The batch is split by ``TrainingChunks`` (one chunk with split GEMMs, or chunks of rows on the
    /// workers); each chunk's tape is recorded and walked back, and the chunks' losses and gradients (each
    /// divided by the whole batch's count) are summed in chunk order. No BLAS threads spin on a loaded
    /// machine, and for a fixed thread count the result is bit-for-bit repeatable.
    func batchLossAndGradients(_ x: [Float], rows: Int, labels: TrainingLabels, loss: Loss, end: Int) -> (loss: Double, gradients: [[Float]]) {
        let width = size(at: end), d = inputSize
        let split = TrainingChunks(self, rows: rows)
        var parts = [(loss: Double, gradients: [[Float]])?](repeating: nil, count: split.count)
        parts.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            split.forEach(rows: rows) { c, range in
                let xs = range.count == rows ? x : Array(x[(range.lowerBound * d)..<(range.upperBound * d)])
                let ys = range.count == rows ? labels : labels.gather(range, width: width)
                let tape = record(xs, rows: range.count, from: 0, to: end)
                let (value, cotangent) = loss.evaluate(tape.output, rows: range.count, width: width, labels: ys, batchRows: rows)
                out[c] = (value, parameterGradients(tape, cotangent: cotangent).parameters)
            }
        }
        var total = parts[0]!.loss
        for part in parts.dropFirst() { total += part!.loss }
        var gradients = parts.map { $0!.gradients }
        parts = []  // the chunks' arrays now have one owner each, so the sum writes into the first in place
        return (total, sumInChunkOrder(&gradients))
    }
}

/// The sum of per-chunk parameter gradients (`parts[c]`: chunk c's arrays, in parameter order), per element in
/// chunk order — the order of a sequential sum, so the result does not depend on how the elements are split —
/// with the arrays' element ranges on the workers. Sums into the first chunk's arrays, which it takes from
/// `parts` (unshared, they are written in place rather than copied).
func sumInChunkOrder(_ parts: inout [[[Float]]]) -> [[Float]] {
    var gradients = parts[0]
    parts[0] = []
    guard parts.count > 1 else { return gradients }
    let sums = (0..<gradients.count).map { k in gradients[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
    forEachPart(ofArrays: gradients.map(\.count)) { _, k, range in
        let s = sums[k]!
        for part in parts.dropFirst() {
            part[k].withUnsafeBufferPointer { g in
                for e in range { s[e] += g[e] }
            }
        }
    }
    return gradients
}
