import SwiftAttr

// The C layer walks the caller's buffers in row chunks: a per-example method (forward, gradients,
// saliency, input×gradient, IG, DeepLIFT) is run on a bounded copy of a few rows at a time and its result
// written straight into the caller's output, so memory stays bounded whatever n. SwiftAttr checks the
// values (NaN/Inf) once, chunk by chunk; when it rejects one, `locatingRejectedValue` finds it in the
// caller's whole buffer, so the message names the C argument and the index an unchunked call would
// report. Class indices are range-checked as they are read (int64 → Int), with SwiftAttr's message.

/// A caller's row-major float32 buffer of `rows` rows × `width` floats, named after its C argument.
struct CallerRows {
    let base: UnsafePointer<Float>
    let rows: Int
    let width: Int
    let name: String

    /// Checks the pointer and that rows × width fits one array (`countName` names the row count).
    init(_ pointer: UnsafePointer<Float>?, rows: Int, width: Int, _ name: String, countName: String, widthName: String = "input_size") throws {
        _ = try checkedProduct(rows, width, name, factors: [countName, widthName])
        base = try nonNull(pointer, name)
        self.rows = rows
        self.width = width
        self.name = name
    }

    /// Rows `range` in a new array (failable allocation).
    func copy(_ range: Range<Int>) throws -> [Float] {
        try Allocation.copy(UnsafeBufferPointer(start: base + range.lowerBound * width, count: range.count * width), name)
    }

    /// Every row in a new array (failable allocation).
    func copyAll() throws -> [Float] { try copy(0..<rows) }

    /// Throws the first non-finite value, with its flat index in the caller's buffer.
    func checkFinite() throws { try Check.finite(UnsafeBufferPointer(start: base, count: rows * width), name) }
}

/// Baselines of a path or DeepLIFT method: none (zeros), one broadcast example, or one per example.
enum CallerBaselines {
    case zeros
    case broadcast([Float])
    case perRow(CallerRows)

    /// `count` 0 (zeros, the pointer may be NULL), 1 (broadcast) or `rows`.
    init(_ net: Network, _ p: UnsafePointer<Float>?, _ count: Int64, rows: Int, name: String, countName: String) throws {
        guard count == 0 || count == 1 || count == Int64(rows) else {
            throw SwiftAttrError(.shapeMismatch, "\(countName): expected 0 (zeros), 1 (broadcast) or \(rows) (one per example), got \(count)")
        }
        switch count {
        case 0: self = .zeros
        case 1: self = .broadcast(try CallerRows(p, rows: 1, width: net.inputSize, name, countName: countName).copyAll())
        default: self = .perRow(try CallerRows(p, rows: rows, width: net.inputSize, name, countName: countName))
        }
    }

    /// The baselines for the examples `range`, as SwiftAttr takes them.
    func slice(_ range: Range<Int>) throws -> [Float] {
        switch self {
        case .zeros: []
        case .broadcast(let values): values
        case .perRow(let rows): try rows.copy(range)
        }
    }

    var callerRows: CallerRows? {
        switch self {
        case .zeros, .broadcast: nil
        case .perRow(let rows): rows
        }
    }
}

/// The caller's class indices: 1 (for every example) or one per example, read chunk by chunk and checked
/// against the model's outputs with their index in the caller's array.
struct CallerTargets {
    let base: UnsafePointer<Int64>
    let count: Int
    let outputs: Int
    let net: Network

    init(_ net: Network, _ target: UnsafePointer<Int64>?, _ count: Int64, rows: Int) throws {
        guard count == 1 || count == Int64(rows) else {
            throw SwiftAttrError(.shapeMismatch, "n_target: expected 1 or \(rows) class indices (one per example), got \(count)")
        }
        base = try nonNull(target, "target")
        self.count = Int(count)
        outputs = net.outputSize
        self.net = net
        if count == 1 { _ = try slice(0..<1) }
    }

    /// The targets of the examples `range` (one index for all when the caller gave one).
    func slice(_ range: Range<Int>) throws -> [Int] {
        if count == 1 { return [try value(0)] }
        return try range.map(value)
    }

    private func value(_ i: Int) throws -> Int {
        let t = base[i]
        guard t >= 0, t < Int64(outputs) else { throw net.targetOutOfRange(t, at: count > 1 ? i : nil) }
        return Int(t)
    }
}

/// `passes` forward passes of one example (a backward pass counts as two), saturating.
func work(_ net: Network, passes: Int) -> Int {
    let (w, overflow) = net.forwardWork.multipliedReportingOverflow(by: max(1, passes))
    return overflow ? Int.max : w
}

/// Rows per chunk when an export walks the caller's buffers: about 2²⁰ floats (4 MiB) of the widest
/// per-row buffer — a method holds a few such arrays at once — and about ``CallProgress/workPerPiece``
/// multiply–adds (`work` per row; 2²⁷, tens of milliseconds, so the progress handler is called and a cancel
/// takes effect about that often), but enough rows for every thread. Small calls are one chunk.
func rowsPerChunk(width: Int, work: Int = 1) -> Int {
    max(min((1 << 20) / max(1, width), CallProgress.workPerPiece / max(1, work)), 4 * Parallel.threadCount, 1)
}

/// Calls `body` for consecutive row ranges covering 0..<rows (see ``rowsPerChunk(width:work:)``; `work` is
/// an estimate of one row's multiply–adds, e.g. ``work(_:passes:)``), telling the progress handler
/// after each how many rows are done (`call` names the export in a cancel message). When SwiftAttr rejects a
/// value, the caller's whole buffers `inputs` (in the order SwiftAttr checks them) are scanned so the error
/// names the argument and the caller's index.
func forEachRowChunk(rows: Int, width: Int, work: Int = 1, inputs: [CallerRows], call: String = #function,
                     _ body: (Range<Int>) throws -> Void) throws {
    let step = rowsPerChunk(width: width, work: work)
    var start = 0
    while start < rows {
        let range = start..<min(rows, start + step)
        try locatingRejectedValue(inputs) { try body(range) }
        start = range.upperBound
        try reportProgress(start, of: rows, call: call)
    }
}

/// Runs `body`; when SwiftAttr rejects a non-finite value, scans the caller's buffers `inputs` (in the
/// order SwiftAttr checks them) so the error names the C argument and the index in the caller's array.
/// Only the error path scans: on success each input is scanned once, by SwiftAttr.
func locatingRejectedValue<T>(_ inputs: [CallerRows], _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as SwiftAttrError where error.code == .nonFinite {
        for buffer in inputs { try buffer.checkFinite() }
        throw error
    } catch let error as SwiftAttrError where error.tokenVocabulary != nil {
        // A token id out of range: the same scan over the caller's id buffers (x, baselines, references).
        for buffer in inputs {
            try buffer.checkFinite()
            try Check.tokenIds(UnsafeBufferPointer(start: buffer.base, count: buffer.rows * buffer.width), vocabulary: error.tokenVocabulary!, buffer.name)
        }
        throw error
    }
}

/// `first_example` checked: non-negative, and first_example + n representable.
func exampleOffset(_ firstExample: Int64, rows: Int) throws -> Int {
    guard firstExample >= 0 else { throw SwiftAttrError(.invalidArgument, "first_example must be non-negative (got \(firstExample))") }
    guard firstExample <= Int64.max - Int64(rows) else {
        throw SwiftAttrError(.invalidArgument, "first_example + n overflows (first_example = \(firstExample), n = \(rows))")
    }
    return Int(firstExample)
}

/// nil for a non-positive internal batch size ("choose for me"), the value otherwise.
func chunk(_ internalBatchSize: Int64) throws -> Int? {
    internalBatchSize <= 0 ? nil : try checkCount(internalBatchSize, "internal_batch_size")
}

/// Copies `values` into the caller's buffer `out` at element `offset` (`count` floats are expected). A
/// non-finite value (the model's arithmetic overflowed float32) is an `SA_ERR_NUMERICAL` error, reported
/// with its index in the caller's buffer, never returned silently; a count mismatch is a library bug.
func write(_ values: [Float], to out: UnsafeMutablePointer<Float>?, at offset: Int = 0, count: Int, _ name: String = "out") throws {
    guard values.count == count else {
        throw SwiftAttrError(.internal, "\(name): computed \(values.count) values for a buffer of \(count) (please report this bug)")
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw SwiftAttrError(.numerical, "\(name): the result is not finite (\(values[i]) at flat index \(offset + i)); the model's float32 arithmetic overflowed for these inputs")
    }
    _ = try output(out, count, name).initialize(from: values)
}

/// `out + offset`, for chunk writes (the pointer has been checked non-NULL).
@inline(__always)
func advanced<T>(_ p: UnsafeMutablePointer<T>?, _ offset: Int) -> UnsafeMutablePointer<T>? { p.map { $0 + offset } }

/// The common arguments of a per-class attribution call, checked in order: the model (frozen for use), the
/// batch `x` of `n` examples, the class targets, and the output buffer `out` (checked before any work).
func attributionCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ out: UnsafeMutablePointer<Float>?
) throws -> (net: Network, x: CallerRows, targets: CallerTargets) {
    let net = try handle(model).use()
    let rows = try checkCount(n, "n")
    let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
    let t = try CallerTargets(net, target, nTarget, rows: rows)
    _ = try nonNull(out, "out")
    return (net, xs, t)
}

/// The model, the batch, its baselines and its targets of a path or reference method (IG, DeepLIFT, Integrated
/// Hessians), checked in that order.
func baselineCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64
) throws -> (net: Network, rows: Int, x: CallerRows, baselines: CallerBaselines, targets: CallerTargets) {
    let net = try handle(model).use()
    let rows = try checkCount(n, "n")
    let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
    let base = try CallerBaselines(net, baselines, nBaselines, rows: rows, name: "baselines", countName: "n_baselines")
    return (net, rows, xs, base, try CallerTargets(net, target, nTarget, rows: rows))
}

/// Runs a per-example method chunk by chunk: `method(x, rows, range)` returns rows × `width` floats for
/// the examples `range`, written to `out` in place; `work` estimates one example's multiply–adds.
func perExample(_ x: CallerRows, width: Int, work: Int = 1, inputs: [CallerRows]? = nil, out: UnsafeMutablePointer<Float>?,
                call: String = #function, _ method: ([Float], Int, Range<Int>) throws -> [Float]) throws {
    try forEachRowChunk(rows: x.rows, width: max(x.width, width), work: work, inputs: inputs ?? [x], call: call) { range in
        let values = try method(try x.copy(range), range.count, range)
        try write(values, to: advanced(out, range.lowerBound * width), at: range.lowerBound * width, count: range.count * width)
    }
}

@_cdecl("sa_forward")
public func sa_forward(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let xs = try CallerRows(x, rows: try checkCount(n, "n"), width: net.inputSize, "x", countName: "n")
        _ = try nonNull(out, "out")
        try perExample(xs, width: net.outputSize, work: work(net, passes: 1), out: out) { values, rows, _ in try net.predict(values, rows: rows) }
    }
}

@_cdecl("sa_forward_to_layer")
public func sa_forward_to_layer(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ layer: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let xs = try CallerRows(x, rows: try checkCount(n, "n"), width: net.inputSize, "x", countName: "n")
        guard layer >= 0, layer <= Int64(net.layers.count) else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range 0...\(net.layers.count)")
        }
        _ = try nonNull(out, "out")
        try perExample(xs, width: net.size(at: Int(layer)), work: work(net, passes: 1), out: out) { values, rows, _ in
            try net.activations(values, rows: rows, atInputOf: Int(layer))
        }
    }
}

@_cdecl("sa_gradient")
public func sa_gradient(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ cotangent: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let c = try CallerRows(cotangent, rows: rows, width: net.outputSize, "cotangent", countName: "n", widthName: "output_size")
        _ = try nonNull(out, "out")
        try perExample(xs, width: net.inputSize, work: work(net, passes: 3), inputs: [xs, c], out: out) { values, rows, range in
            try net.gradient(values, rows: rows, cotangent: try c.copy(range))
        }
    }
}

@_cdecl("sa_saliency")
public func sa_saliency(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ absolute: Int32, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        try perExample(xs, width: net.inputSize, work: work(net, passes: 3), out: out) { values, rows, range in
            try net.saliency(values, rows: rows, targets: try t.slice(range), absolute: absolute != 0)
        }
    }
}

@_cdecl("sa_input_x_gradient")
public func sa_input_x_gradient(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let (net, xs, t) = try attributionCall(model, x, n, target, nTarget, out)
        try perExample(xs, width: net.inputSize, work: work(net, passes: 3), out: out) { values, rows, range in
            try net.inputXGradient(values, rows: rows, targets: try t.slice(range))
        }
    }
}

/// The rule for `method` (an sa_ig_method), or an unknown-enum error naming the argument.
func quadrature(_ method: Int32) throws -> PathQuadrature {
    guard let rule = PathQuadrature(rawValue: method) else {
        throw SwiftAttrError(.unknownEnum, "method: \(method) is not an sa_ig_method (0…\(PathQuadrature.allCases.count - 1))")
    }
    return rule
}

/// Runs a per-example method that also returns one delta per example (`passes` forward and backward passes
/// per example), chunk by chunk, writing the attributions to `out` and (when `delta` is not NULL) the deltas to `delta`.
func perExampleWithDelta(_ net: Network, _ x: CallerRows, baselines: CallerBaselines, passes: Int,
                         out: UnsafeMutablePointer<Float>?, delta: UnsafeMutablePointer<Float>?, call: String = #function,
                         _ method: ([Float], Int, [Float], Range<Int>) throws -> (attributions: [Float], delta: [Float])) throws {
    let d = net.inputSize
    try forEachRowChunk(rows: x.rows, width: d, work: work(net, passes: passes), inputs: [x] + (baselines.callerRows.map { [$0] } ?? []),
                        call: call) { range in
        let result = try method(try x.copy(range), range.count, try baselines.slice(range), range)
        try write(result.attributions, to: advanced(out, range.lowerBound * d), at: range.lowerBound * d, count: range.count * d)
        if let delta { try write(result.delta, to: delta + range.lowerBound, at: range.lowerBound, count: range.count, "delta") }
    }
}

/// sa_integrated_gradients and sa_path_integrated_gradients: one body, the product with x − x' or not.
private func integratedGradientsCall(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64, _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?, multiplyByInputs: Bool, call: String
) -> Int32 {
    guarded {
        let (net, _, xs, base, t) = try baselineCall(model, x, n, baselines, nBaselines, target, nTarget)
        let rule = try quadrature(method)
        let steps = try checkCount(nSteps, "n_steps")
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        try perExampleWithDelta(net, xs, baselines: base, passes: 3 * steps, out: out, delta: delta, call: call) { values, rows, base, range in
            let r = try net.integratedGradients(values, rows: rows, baselines: base, targets: try t.slice(range), steps: steps,
                                                method: rule, internalBatchSize: batchSize, multiplyByInputs: multiplyByInputs)
            return (r.attributions, r.delta)
        }
    }
}

@_cdecl("sa_integrated_gradients")
public func sa_integrated_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    integratedGradientsCall(model, x, n, baselines, nBaselines, target, nTarget, nSteps, method, internalBatchSize, out, delta,
                            multiplyByInputs: true, call: #function)
}

@_cdecl("sa_path_integrated_gradients")
public func sa_path_integrated_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ baselines: UnsafePointer<Float>?, _ nBaselines: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSteps: Int64, _ method: Int32, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ delta: UnsafeMutablePointer<Float>?
) -> Int32 {
    integratedGradientsCall(model, x, n, baselines, nBaselines, target, nTarget, nSteps, method, internalBatchSize, out, delta,
                            multiplyByInputs: false, call: #function)
}

@_cdecl("sa_expected_gradients")
public func sa_expected_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ references: UnsafePointer<Float>?, _ nReferences: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ nSamples: Int64, _ seed: UInt64, _ firstExample: Int64, _ internalBatchSize: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n"), refRows = try checkCount(nReferences, "n_references")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let rs = try CallerRows(references, rows: refRows, width: net.inputSize, "references", countName: "n_references")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        let samples = try checkCount(nSamples, "n_samples")
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        // The stream of example i is keyed by first_example + i, so chunks of the caller's rows with their own
        // offsets give the one-call numbers (bounded memory whatever n).
        let refs = try rs.copyAll()
        let offset = try exampleOffset(firstExample, rows: rows)
        try perExample(xs, width: net.inputSize, work: work(net, passes: 3 * samples), inputs: [xs, rs], out: out) { values, rows, range in
            try net.expectedGradients(values, rows: rows, references: refs, referenceCount: refRows, targets: try t.slice(range),
                                      samples: samples, seed: seed, exampleOffset: offset + range.lowerBound,
                                      internalBatchSize: batchSize)
        }
    }
}

@_cdecl("sa_smoothgrad")
public func sa_smoothgrad(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ target: UnsafePointer<Int64>?, _ nTarget: Int64,
    _ ntType: Int32, _ nSamples: Int64, _ stdev: Float, _ seed: UInt64, _ firstExample: Int64, _ internalBatchSize: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let t = try CallerTargets(net, target, nTarget, rows: rows)
        guard let kind = Network.NoiseAggregation(rawValue: ntType) else {
            throw SwiftAttrError(.unknownEnum, "nt_type: \(ntType) is not an sa_nt_type (0 smoothgrad, 1 smoothgrad_sq, 2 vargrad)")
        }
        let samples = try checkCount(nSamples, "n_samples")
        let batchSize = try chunk(internalBatchSize)
        _ = try nonNull(out, "out")
        let offset = try exampleOffset(firstExample, rows: rows)
        try perExample(xs, width: net.inputSize, work: work(net, passes: 3 * samples), out: out) { values, rows, range in
            try net.smoothGrad(values, rows: rows, targets: try t.slice(range), aggregation: kind, samples: samples, stdev: stdev,
                               seed: seed, exampleOffset: offset + range.lowerBound, internalBatchSize: batchSize)
        }
    }
}
