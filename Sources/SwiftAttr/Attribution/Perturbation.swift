#if canImport(Glibc)
import Glibc
#endif

/// Perturbation attributions, which need forward passes only: occlusion (Zeiler & Fergus 2014), feature
/// ablation and permutation, Shapley value sampling (Castro, Gómez, Tejada 2009), KernelSHAP (Lundberg &
/// Lee 2017) and LIME (Ribeiro, Singh, Guestrin 2016), with Captum's definitions.
///
/// Every method lists the perturbed inputs it needs, per example, and evaluates them through
/// ``perturbedOutputs(rows:perExample:targets:chunk:reports:fill:)``: chunks of at most `chunk` rows, each built in
/// place and run forward on one worker, chunks in parallel. Draws (permutations, coalitions) come from
/// ``CounterRandom`` keyed by (seed, exampleOffset + example, sample), so they depend neither on chunking
/// nor on threads.

/// Groups of input elements ("features") of a perturbation method: Captum's `feature_mask`, one id per
/// input element, shared by the batch (one row) or one row per example. Ids are 0..<count, each used.
public struct FeatureGroups: Sendable {
    /// Number of features M.
    public let count: Int
    /// Mask rows: 1 (shared by the batch) or one per example.
    public let rows: Int
    /// `offsets[r * (count + 1) + f] ..< offsets[r * (count + 1) + f + 1]`: feature f's elements in `elements`.
    let offsets: [Int]
    /// Per mask row, the flat element indices grouped by feature.
    let elements: [Int32]
    /// Elements per example.
    let size: Int

    /// Every element its own feature (Captum's default mask).
    init(singletons size: Int) {
        count = size
        rows = 1
        offsets = Array(0...size)
        elements = (0..<size).map { Int32($0) }
        self.size = size
    }

    /// Groups from `mask` (`maskRows` × `size` ids) for a batch of `batch` examples.
    init(mask: [Int], maskRows: Int, size: Int, batch: Int) throws {
        guard maskRows == 1 || maskRows == batch else {
            throw SwiftAttrError.shape("feature_mask: expected 1 row (shared by the batch) or \(batch) rows (one per example), got \(maskRows)")
        }
        guard mask.count == maskRows * size else {
            throw SwiftAttrError.shape("feature_mask: expected \(maskRows) × \(size) ids, got \(mask.count)")
        }
        var largest = -1
        for (i, id) in mask.enumerated() {
            guard id >= 0 else { throw SwiftAttrError.invalid("feature_mask: ids must be non-negative (got \(id) at flat index \(i))") }
            largest = max(largest, id)
        }
        let m = largest + 1
        guard m <= Int(Int32.max) else { throw SwiftAttrError.invalid("feature_mask: ids must be below 2^31 (got \(largest))") }
        var counts = [Int](repeating: 0, count: maskRows * (m + 1))
        for r in 0..<maskRows {
            for k in 0..<size { counts[r * (m + 1) + mask[r * size + k] + 1] += 1 }
        }
        for f in 0..<m where !(0..<maskRows).contains(where: { counts[$0 * (m + 1) + f + 1] > 0 }) {
            throw SwiftAttrError.invalid("feature_mask: ids must be contiguous 0..<\(m) (the number of features); id \(f) is not used")
        }
        var offsets = [Int](repeating: 0, count: maskRows * (m + 1))
        for r in 0..<maskRows {
            let o = r * (m + 1)
            offsets[o] = r * size
            for f in 0..<m { offsets[o + f + 1] = offsets[o + f] + counts[o + f + 1] }
        }
        var next = offsets
        var elements = [Int32](repeating: 0, count: maskRows * size)
        for r in 0..<maskRows {
            for k in 0..<size {
                let slot = r * (m + 1) + mask[r * size + k]
                elements[next[slot]] = Int32(k)
                next[slot] += 1
            }
        }
        self.count = m
        self.rows = maskRows
        self.offsets = offsets
        self.elements = elements
        self.size = size
    }

    /// The elements of feature `f` for example `example`.
    @inline(__always)
    func members(_ example: Int, _ f: Int) -> ArraySlice<Int32> {
        let o = (rows == 1 ? 0 : example) * (count + 1)
        return elements[offsets[o + f]..<offsets[o + f + 1]]
    }

    /// Per-element feature ids of `example` (for spreading feature scores over the input).
    func spread(_ scores: UnsafePointer<Double>, example: Int, into out: UnsafeMutablePointer<Float>) {
        for f in 0..<count {
            let v = Float(scores[f])
            for k in members(example, f) { out[Int(k)] = v }
        }
    }
}

/// LIME's distance between an input and a perturbed copy (Captum's `get_exp_kernel_similarity_function`).
public enum LimeDistance: Int32, Sendable, CaseIterable {
    /// 1 − cos(x, x̃).
    case cosine = 0
    /// ‖x − x̃‖₂.
    case euclidean = 1
}

/// LIME's interpretable surrogate, fitted with an intercept on the weighted samples.
public enum LimeSurrogate: Int32, Sendable, CaseIterable {
    /// L1-penalised least squares, scikit-learn's `Lasso` objective (1/(2Σw)) Σ w r² + α‖β‖₁ (Captum's default).
    case lasso = 0
    /// Weighted least squares (minimum-norm solution, scikit-learn's `LinearRegression`).
    case linear = 1
}

extension Network {
    /// The mask's groups, or singletons when `mask` is nil.
    func featureGroups(_ mask: [Int]?, maskRows: Int, rows: Int) throws -> FeatureGroups {
        guard let mask else { return FeatureGroups(singletons: inputSize) }
        return try FeatureGroups(mask: mask, maskRows: maskRows, size: inputSize, batch: rows)
    }

    /// Target outputs f_t(x̃) of `rows × perExample` perturbed inputs; `fill(i, s, row)` writes input s of
    /// example i (all `inputSize` floats of `row`). Chunks of at most `chunk` rows run forward in parallel, in
    /// pieces of whole rounds of chunks (the chunks of one region over all inputs) of about
    /// ``CallProgress/workPerPiece`` multiply–adds; with `reports`, the calling thread's progress observer is
    /// told after each piece how many perturbed inputs are done (and may stop the call by throwing).
    ///
    /// `nearReferences` (rows × inputSize; nil: none): when every input of example i differs from its row i
    /// in a small box (occlusion, feature ablation) and the network starts with a convolution, node 0 is
    /// computed from the reference's output plus the outputs the box reaches
    /// (``forward(_:rows:nearReferences:referenceOf:)``). With `chains` c > 1, input j of an example is
    /// instead close to input j − 1 unless c divides j (Shapley value sampling's coalitions, each one feature
    /// more than the last): chunks then hold whole chains (at least one, even when a chain is longer than
    /// `chunk`), so every input's result is computed along the same chain whatever the chunk size.
    func perturbedOutputs(
        rows: Int, perExample: Int, targets: [Int], chunk: Int, reports: Bool = true, nearReferences: [Float]? = nil,
        chains: Int = 1, fill: (Int, Int, UnsafeMutablePointer<Float>) -> Void
    ) throws -> [Double] {
        let total = rows * perExample
        guard total > 0 else { return [] }
        precondition(chains >= 1 && perExample % chains == 0, "chains must divide perExample")
        // Max-pooling after ReLU commutes (and is exact): the forward pass then runs the ReLU on the pooled tensor.
        let net = gradientEquivalent ?? self
        let d = inputSize, out = outputSize
        // Work is split in whole chains (units of `chains` rows; one row each without chains): the chunks of
        // one region over every input, `size` units each, in rounds of one chunk per worker.
        let units = total / chains, unitChunk = max(1, chunk / chains)
        let size = Parallel.balancedChunk(count: units, chunk: unitChunk)
        let round = size * max(1, min(Parallel.workerCount, units))
        let (roundWork, overflow) = (round * chains).multipliedReportingOverflow(by: net.forwardWork)
        let piece = round * max(1, overflow ? 1 : CallProgress.workPerPiece / max(1, roundWork))
        var result = [Double](repeating: 0, count: total)
        try result.withUnsafeMutableBufferPointer { buffer in
            let res = buffer.baseAddress!
            var start = 0
            while start < units {
                let first = start, count = min(piece, units - start)
                // One piece: the region as it always was; a full piece of several: the same chunks of `size` units.
                Parallel.forEachChunk(count: count, chunk: count == units ? unitChunk : size) { _, local, _ in
                    let range = ((first + local.lowerBound) * chains)..<((first + local.upperBound) * chains)
                    let batch = uninitializedFloats(range.count * d) { p in
                        for (r, j) in range.enumerated() { fill(j / perExample, j % perExample, p + r * d) }
                    }
                    let y = nearReferences.flatMap { references in
                        net.sharesFirstConvolution ? references.withUnsafeBufferPointer {
                            net.forward(batch, rows: range.count, nearReferences: $0.baseAddress!) { r in
                                let j = range.lowerBound + r
                                return j % chains == 0 ? .reference(j / perExample) : .previousRow
                            }
                        } : nil
                    } ?? net.forward(batch, rows: range.count)
                    for (r, j) in range.enumerated() { res[j] = Double(y[r * out + targets[j / perExample]]) }
                }
                start += count
                if reports { try CallProgress.report(start * chains, of: total) }
            }
        }
        return result
    }

    /// f_t(x_i) and f_t(b_i) for every example, as (input, baseline) pairs.
    private func endpointOutputs(_ x: [Float], _ b: [Float], rows: Int, targets: [Int], chunk: Int) throws -> (x: [Double], b: [Double]) {
        let d = inputSize
        let y = try perturbedOutputs(rows: rows, perExample: 2, targets: targets, chunk: chunk, reports: false) { i, s, row in
            (s == 0 ? x : b).withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
        }
        return (stride(from: 0, to: y.count, by: 2).map { y[$0] }, stride(from: 1, to: y.count, by: 2).map { y[$0] })
    }

    /// The common checks of the perturbation methods: inputs, baselines (expanded), targets, chunk rows.
    private func perturbationArguments(
        _ x: [Float], rows: Int, baselines: [Float], targets: [Int], internalBatchSize: Int?
    ) throws -> (b: [Float], targets: [Int], chunk: Int) {
        try checkInputs(x, rows: rows)
        let b = try expandBaselines(baselines, rows: rows)
        let targets = try expandTargets(targets, rows: rows)
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        return (b, targets, chunk)
    }

    private func checkSamples(_ samples: Int, _ name: String = "n_samples") throws {
        try Check.positive(samples, name)
        try Check.atMost(samples, Check.maximumSteps, name)
    }

    private func checkOffset(_ offset: Int, rows: Int) throws {
        try Check.nonNegative(offset, "first_example")
        guard offset <= Int.max - rows else {
            throw SwiftAttrError.invalid("first_example + n overflows (first_example = \(offset), n = \(rows))")
        }
    }

    // MARK: Occlusion and feature ablation

    /// Occlusion (Captum's `Occlusion`): a window of shape `window` slides over the input (per-example
    /// shape, every dimension) with steps `strides`; for each position the window is set to the baseline,
    /// and an element's attribution is the mean over the windows covering it of f_t(x) − f_t(x occluded).
    ///
    /// Positions per dimension: ⌈(dim − window)/stride⌉ + 1 starting at multiples of the stride; the last
    /// one is cut at the edge when the stride does not divide dim − window (Captum pads the window by a
    /// negative amount there). A stride may exceed its window only where the window spans the dimension.
    public func occlusion(
        _ x: [Float], rows: Int, window: [Int], strides: [Int]? = nil, baselines: [Float] = [], targets: [Int],
        internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (b, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: baselines, targets: targets, internalBatchSize: internalBatchSize)
        let dims = inputShape, rank = dims.count
        guard window.count == rank else {
            throw SwiftAttrError.shape("sliding_window_shapes: expected \(rank) sizes (one per input dimension \(dims)), got \(window.count)")
        }
        let strides = strides ?? [Int](repeating: 1, count: rank)
        guard strides.count == rank else {
            throw SwiftAttrError.shape("strides: expected \(rank) steps (one per input dimension \(dims)), got \(strides.count)")
        }
        var counts = [Int]()
        for k in 0..<rank {
            guard window[k] >= 1 else { throw SwiftAttrError.invalid("sliding_window_shapes[\(k)] must be positive (got \(window[k]))") }
            guard window[k] <= dims[k] else {
                throw SwiftAttrError.invalid("sliding_window_shapes[\(k)] = \(window[k]) exceeds the input dimension \(dims[k]) (input shape \(dims))")
            }
            guard strides[k] >= 1 else { throw SwiftAttrError.invalid("strides[\(k)] must be positive (got \(strides[k]))") }
            guard strides[k] <= window[k] || window[k] == dims[k] else {
                throw SwiftAttrError.invalid("strides[\(k)] = \(strides[k]) exceeds sliding_window_shapes[\(k)] = \(window[k]): some elements would never be occluded")
            }
            let rest = dims[k] - window[k]
            counts.append((rest + strides[k] - 1) / strides[k] + 1)
        }
        let positions = counts.reduce(1, *)
        try Check.atMost(positions, Check.maximumSteps, "the number of window positions")
        // Per-dimension element strides of the row-major input.
        var pitch = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { pitch[k] = pitch[k + 1] * dims[k + 1] }
        /// The box of position p: per dimension, lower and upper bounds (Captum's order: dimension 0 fastest).
        func box(_ p: Int) -> [(Int, Int)] {
            var rest = p
            return (0..<rank).map { k in
                let start = (rest % counts[k]) * strides[k]
                rest /= counts[k]
                return (start, min(dims[k], start + window[k]))
            }
        }
        /// Calls `body(flat index)` for every element of box `bx`.
        func forEachElement(_ bx: [(Int, Int)], _ body: (Int) -> Void) {
            switch rank {
            case 1: for a in bx[0].0..<bx[0].1 { body(a) }
            case 2: for a in bx[0].0..<bx[0].1 { for c in bx[1].0..<bx[1].1 { body(a * pitch[0] + c) } }
            default:
                for a in bx[0].0..<bx[0].1 {
                    for c in bx[1].0..<bx[1].1 { for e in bx[2].0..<bx[2].1 { body(a * pitch[0] + c * pitch[1] + e) } }
                }
            }
        }
        let boxes = (0..<positions).map(box)
        let d = inputSize
        return try Parallel.singleThreadedBLAS {
            let y = try perturbedOutputs(rows: rows, perExample: positions + 1, targets: targets, chunk: chunk, nearReferences: x) { i, s, row in
                x.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
                guard s < positions else { return }
                forEachElement(boxes[s]) { row[$0] = b[i * d + $0] }
            }
            var cover = [Double](repeating: 0, count: d)
            for bx in boxes { forEachElement(bx) { cover[$0] += 1 } }
            var total = [Double](repeating: 0, count: d)
            var result = [Float](repeating: 0, count: rows * d)
            for i in 0..<rows {
                for k in 0..<d { total[k] = 0 }
                let base = y[i * (positions + 1) + positions]
                for (s, bx) in boxes.enumerated() {
                    let diff = base - y[i * (positions + 1) + s]
                    forEachElement(bx) { total[$0] += diff }
                }
                for k in 0..<d { result[i * d + k] = Float(total[k] / cover[k]) }
            }
            return result
        }
    }

    /// Feature ablation (Captum's `FeatureAblation`): each feature of `mask` in turn is set to the
    /// baseline; its elements get f_t(x) − f_t(x with the feature ablated). `mask` (nil: every element its
    /// own feature) has one row shared by the batch or one row per example.
    public func featureAblation(
        _ x: [Float], rows: Int, baselines: [Float] = [], mask: [Int]? = nil, maskRows: Int = 1, targets: [Int],
        internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (b, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: baselines, targets: targets, internalBatchSize: internalBatchSize)
        let groups = try featureGroups(mask, maskRows: maskRows, rows: rows)
        let m = groups.count, d = inputSize
        return try Parallel.singleThreadedBLAS {
            let y = try perturbedOutputs(rows: rows, perExample: m + 1, targets: targets, chunk: chunk, nearReferences: x) { i, s, row in
                x.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
                guard s < m else { return }
                for k in groups.members(i, s) { row[Int(k)] = b[i * d + Int(k)] }
            }
            return scoresToInput(rows: rows, groups: groups) { i, f in y[i * (m + 1) + m] - y[i * (m + 1) + f] }
        }
    }

    /// rows × inputSize attributions: element k of example i gets `score(i, feature of k)`.
    private func scoresToInput(rows: Int, groups: FeatureGroups, _ score: (Int, Int) -> Double) -> [Float] {
        let d = inputSize, m = groups.count
        var scores = [Double](repeating: 0, count: m)
        return uninitializedFloats(rows * d) { out in
            for i in 0..<rows {
                for f in 0..<m { scores[f] = score(i, f) }
                scores.withUnsafeBufferPointer { groups.spread($0.baseAddress!, example: i, into: out + i * d) }
            }
        }
    }

    /// Feature permutation (Captum's `FeaturePermutation`): for each feature f, its values are permuted
    /// across the batch by a permutation π_f (never the identity), and example i's elements of f get
    /// f_t(x_i) − f_t(x_i with feature f taken from x_{π_f(i)}).
    ///
    /// `permutations` (M × rows, row f a permutation of 0..<rows) fixes the π_f; otherwise π_f is a
    /// Fisher–Yates shuffle from ``CounterRandom`` at (seed, example 0, sample f), redrawn (next blocks)
    /// while it is the identity. Needs at least two examples.
    public func featurePermutation(
        _ x: [Float], rows: Int, mask: [Int]? = nil, maskRows: Int = 1, targets: [Int], seed: UInt64 = 0,
        permutations: [Int]? = nil, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (_, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: [], targets: targets, internalBatchSize: internalBatchSize)
        guard rows >= 2 else { throw SwiftAttrError.invalid("inputs: feature permutation permutes across the batch and needs at least 2 examples (got \(rows))") }
        let groups = try featureGroups(mask, maskRows: maskRows, rows: rows)
        let m = groups.count, d = inputSize
        let pi: [Int]
        if let permutations {
            try checkPermutations(permutations, count: m, length: rows, name: "permutations", what: "features")
            pi = permutations
        } else {
            var all = [Int]()
            all.reserveCapacity(m * rows)
            for f in 0..<m {
                var attempt = 0
                while true {
                    let p = Self.shuffle(rows, seed: seed, example: 0, sample: UInt32(truncatingIfNeeded: f), firstBlock: UInt32(attempt * ((rows + 1) / 2)))
                    if p != Array(0..<rows) { all += p; break }
                    attempt += 1
                }
            }
            pi = all
        }
        return try Parallel.singleThreadedBLAS {
            let y = try perturbedOutputs(rows: rows, perExample: m + 1, targets: targets, chunk: chunk) { i, s, row in
                x.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
                guard s < m else { return }
                let source = pi[s * rows + i] * d
                for k in groups.members(i, s) { row[Int(k)] = x[source + Int(k)] }
            }
            return scoresToInput(rows: rows, groups: groups) { i, f in y[i * (m + 1) + m] - y[i * (m + 1) + f] }
        }
    }

    /// Checks that `values` holds `count` permutations of 0..<length.
    private func checkPermutations(_ values: [Int], count: Int, length: Int, name: String, what: String) throws {
        guard values.count == count * length else {
            throw SwiftAttrError.shape("\(name): expected \(count) rows of \(length) entries (a permutation of 0..<\(length) per \(what == "features" ? "feature" : "sample")), got \(values.count) values")
        }
        var seen = [Bool](repeating: false, count: length)
        for r in 0..<count {
            for k in 0..<length { seen[k] = false }
            for k in 0..<length {
                let v = values[r * length + k]
                guard v >= 0, v < length, !seen[v] else {
                    throw SwiftAttrError.invalid("\(name)[\(r)] is not a permutation of 0..<\(length) (entry \(k) = \(v))")
                }
                seen[v] = true
            }
        }
    }

    /// A uniform permutation of 0..<n (Fisher–Yates) from blocks `firstBlock...` of (seed, example, sample).
    static func shuffle(_ n: Int, seed: UInt64, example: UInt64, sample: UInt32, firstBlock: UInt32 = 0) -> [Int] {
        var p = Array(0..<n)
        var k = n - 1, block = firstBlock
        while k > 0 {
            let (u0, u1) = CounterRandom.uniforms(seed: seed, example: example, sample: sample, block: block)
            block &+= 1
            p.swapAt(k, CounterRandom.index(u0, k + 1))
            k -= 1
            if k > 0 { p.swapAt(k, CounterRandom.index(u1, k + 1)); k -= 1 }
        }
        return p
    }

    // MARK: Shapley value sampling

    /// Shapley value sampling (Castro et al. 2009; Captum's `ShapleyValueSampling`): for each of `samples`
    /// permutations of the M features, the features are switched from the baseline to the input one by one
    /// in that order, and each receives the change of f_t it caused; φ is the mean over permutations. Every
    /// permutation sums to f_t(x) − f_t(b) (efficiency): its last step evaluates x itself, computed once.
    ///
    /// `permutations` (samples × M, shared by the batch, as Captum draws them) fixes the orders; otherwise
    /// permutation s of example i is a Fisher–Yates shuffle from ``CounterRandom`` at (seed,
    /// exampleOffset + i, s).
    public func shapleyValueSampling(
        _ x: [Float], rows: Int, baselines: [Float] = [], mask: [Int]? = nil, maskRows: Int = 1, targets: [Int],
        samples: Int = 25, seed: UInt64 = 0, exampleOffset: Int = 0, permutations: [Int]? = nil,
        internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (b, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: baselines, targets: targets, internalBatchSize: internalBatchSize)
        let groups = try featureGroups(mask, maskRows: maskRows, rows: rows)
        let m = groups.count, d = inputSize
        let samples = try permutations.map { p -> Int in
            guard m > 0, p.count % m == 0, !p.isEmpty else {
                throw SwiftAttrError.shape("permutations: expected a multiple of the \(m) features (one permutation per sample), got \(p.count) values")
            }
            return p.count / m
        } ?? samples
        try checkSamples(samples)
        try checkOffset(exampleOffset, rows: rows)
        try Check.atMost(samples * m, Check.maximumSteps, "n_samples × the number of features")
        let orders: [Int32]
        if let permutations {
            try checkPermutations(permutations, count: samples, length: m, name: "permutations", what: "samples")
            orders = permutations.map { Int32($0) }
        } else {
            var all = [Int32](repeating: 0, count: rows * samples * m)
            for i in 0..<rows {
                for s in 0..<samples {
                    let p = Self.shuffle(m, seed: seed, example: UInt64(exampleOffset + i), sample: UInt32(s))
                    for k in 0..<m { all[(i * samples + s) * m + k] = Int32(p[k]) }
                }
            }
            orders = all
        }
        let shared = permutations != nil
        @inline(__always) func order(_ i: Int, _ s: Int) -> Int { (shared ? s : i * samples + s) * m }
        let steps = m - 1
        return try Parallel.singleThreadedBLAS {
            let ends = try endpointOutputs(x, b, rows: rows, targets: targets, chunk: chunk)
            // Input (s, k) of example i: the baseline with the first k + 1 features of permutation s from x.
            // Each coalition adds one feature to the one before it: forward passes along each permutation's chain.
            let y = try perturbedOutputs(rows: rows, perExample: samples * steps, targets: targets, chunk: chunk, nearReferences: b,
                                         chains: steps) { i, j, row in
                let s = j / steps, k = j % steps, o = order(i, s)
                b.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
                for q in 0...k {
                    for e in groups.members(i, Int(orders[o + q])) { row[Int(e)] = x[i * d + Int(e)] }
                }
            }
            var phi = [Double](repeating: 0, count: m)
            return scoresToInputBatch(rows: rows, groups: groups) { i in
                for f in 0..<m { phi[f] = 0 }
                for s in 0..<samples {
                    var previous = ends.b[i]
                    let o = order(i, s)
                    for k in 0..<m {
                        let current = k < steps ? y[(i * samples + s) * steps + k] : ends.x[i]
                        phi[Int(orders[o + k])] += current - previous
                        previous = current
                    }
                }
                return phi.map { $0 / Double(samples) }
            }
        }
    }

    /// rows × inputSize attributions from one score vector (M values) per example.
    private func scoresToInputBatch(rows: Int, groups: FeatureGroups, _ scores: (Int) throws -> [Double]) rethrows -> [Float] {
        let d = inputSize
        var result = [Float](repeating: 0, count: rows * d)
        try result.withUnsafeMutableBufferPointer { out in
            for i in 0..<rows {
                let v = try scores(i)
                v.withUnsafeBufferPointer { groups.spread($0.baseAddress!, example: i, into: out.baseAddress! + i * d) }
            }
        }
        return result
    }

    // MARK: KernelSHAP and LIME

    /// Coalitions for example i: `samples` rows of M bits each.
    private struct Coalitions {
        /// rows (1: shared, or one per example) × samples × M.
        let bits: [UInt8]
        let rows: Int
        let samples: Int
        let m: Int
        /// Per coalition weight (rows × samples, like `bits`: KernelSHAP's enumeration or the caller's), nil: 1 each.
        let weights: [Double]?

        @inline(__always) func row(_ i: Int, _ s: Int) -> Int { ((rows == 1 ? 0 : i) * samples + s) * m }
        @inline(__always) func weight(_ i: Int, _ s: Int) -> Double { weights?[(rows == 1 ? 0 : i) * samples + s] ?? 1 }
    }

    /// Caller coalitions (`coalitionRows` × samples × M, 0/1 entries) and optional weights (`coalitionRows` ×
    /// samples, finite and non-negative) checked.
    private func callerCoalitions(_ c: [UInt8], coalitionRows: Int, rows: Int, m: Int, weights: [Double]? = nil) throws -> Coalitions {
        guard coalitionRows == 1 || coalitionRows == rows else {
            throw SwiftAttrError.shape("coalitions: expected 1 set (shared by the batch) or \(rows) sets (one per example), got \(coalitionRows)")
        }
        guard m > 0, !c.isEmpty, c.count % (coalitionRows * m) == 0 else {
            throw SwiftAttrError.shape("coalitions: expected \(coalitionRows) × n_samples × \(m) (the number of features) entries, got \(c.count)")
        }
        if let i = c.firstIndex(where: { $0 > 1 }) {
            throw SwiftAttrError.invalid("coalitions: entries must be 0 or 1 (got \(c[i]) at flat index \(i))")
        }
        let samples = c.count / (coalitionRows * m)
        try Check.atMost(samples, Check.maximumSteps, "the number of coalitions")
        if let weights {
            guard weights.count == coalitionRows * samples else {
                throw SwiftAttrError.shape("coalition_weights: expected \(coalitionRows * samples) weights (one per coalition), got \(weights.count)")
            }
            if let i = weights.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                throw SwiftAttrError.invalid("coalition_weights must be finite and non-negative (got \(weights[i]) at index \(i))")
            }
        }
        return Coalitions(bits: c, rows: coalitionRows, samples: samples, m: m, weights: weights)
    }

    /// Coalition bits (rows × samples × M bytes) and one example's regression design (samples × M doubles) must
    /// fit in memory: at most 2³¹ bytes and 2²⁷ doubles (1 GiB), else `.outOfMemory` naming what to reduce.
    private func checkCoalitionMemory(rows: Int, samples: Int, m: Int) throws {
        let (perExample, o1) = samples.multipliedReportingOverflow(by: m)
        let (all, o2) = perExample.multipliedReportingOverflow(by: rows)
        guard !o1, !o2, all <= 1 << 31, perExample <= 1 << 27 else {
            throw SwiftAttrError(.outOfMemory, "n_samples × features = \(samples) × \(m) coalition entries per example is too many to fit (at most 2^27 per example and 2^31 in all); group input elements with feature_mask or use fewer samples")
        }
    }

    /// Binary inputs: b + z ⊙ (x − b) feature by feature, for coalition s of example i.
    private func fillCoalition(_ c: Coalitions, _ groups: FeatureGroups, _ x: [Float], _ b: [Float], _ i: Int, _ s: Int, _ row: UnsafeMutablePointer<Float>) {
        let d = inputSize, o = c.row(i, s)
        b.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + i * d, count: d) }
        for f in 0..<c.m where c.bits[o + f] != 0 {
            for e in groups.members(i, f) { row[Int(e)] = x[i * d + Int(e)] }
        }
    }

    /// KernelSHAP (Lundberg & Lee 2017): the Shapley values as the weighted least-squares fit of
    /// f_t(b + z⊙(x − b)) − f_t(b) ≈ z·φ over coalitions z with the Shapley kernel weight
    /// π(z) = (M − 1) / (C(M, |z|) |z| (M − |z|)), under the efficiency constraint Σφ = f_t(x) − f_t(b),
    /// solved exactly by eliminating φ_M (shap's KernelExplainer): a weighted least-squares problem in M − 1
    /// unknowns, solved by SVD (minimum-norm when it is underdetermined).
    ///
    /// When `samples` ≥ 2^M − 2 every non-trivial coalition is enumerated with weight π(z), and φ are the
    /// exact Shapley values. Otherwise `samples` coalitions are drawn per example with π as a distribution
    /// (size k with probability ∝ (M − 1)/(k(M − k)), then a uniform subset: Captum's and shap's sampling)
    /// and weight 1 each; draw s of example i uses ``CounterRandom`` at (seed, exampleOffset + i, s).
    /// `coalitions` (1 or rows × K × M bits) passes the samples instead, with `coalitionWeights` (1 or rows × K;
    /// nil: 1 each, as for drawn samples; shap's KernelExplainer passes its `kernelWeights`); empty and full
    /// coalitions among them are skipped (the constraint holds them exactly).
    public func kernelShap(
        _ x: [Float], rows: Int, baselines: [Float] = [], mask: [Int]? = nil, maskRows: Int = 1, targets: [Int],
        samples: Int = 25, seed: UInt64 = 0, exampleOffset: Int = 0, coalitions: [UInt8]? = nil, coalitionRows: Int = 1,
        coalitionWeights: [Double]? = nil, internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (b, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: baselines, targets: targets, internalBatchSize: internalBatchSize)
        let groups = try featureGroups(mask, maskRows: maskRows, rows: rows)
        let m = groups.count
        try checkOffset(exampleOffset, rows: rows)
        let c: Coalitions
        if let coalitions {
            c = try callerCoalitions(coalitions, coalitionRows: coalitionRows, rows: rows, m: m, weights: coalitionWeights)
        } else {
            guard coalitionWeights == nil else { throw SwiftAttrError.invalid("coalition_weights: given without coalitions") }
            try checkSamples(samples)
            let enumerates = m < 31 && samples >= (1 << m) - 2
            try checkCoalitionMemory(rows: enumerates ? 1 : rows, samples: enumerates ? (1 << m) - 2 : samples, m: m)
            c = Self.kernelCoalitions(m: m, rows: rows, samples: samples, seed: seed, exampleOffset: exampleOffset)
        }
        return try Parallel.singleThreadedBLAS {
            let ends = try endpointOutputs(x, b, rows: rows, targets: targets, chunk: chunk)
            let y = try perturbedOutputs(rows: rows, perExample: c.samples, targets: targets, chunk: chunk) { i, s, row in
                fillCoalition(c, groups, x, b, i, s, row)
            }
            return try scoresToInputBatch(rows: rows, groups: groups) { i in
                try Self.constrainedShapley(c, example: i, outputs: y, base: ends.b[i], total: ends.x[i] - ends.b[i])
            }
        }
    }

    /// KernelSHAP's coalitions: all 2^M − 2 non-trivial ones with the kernel weight when `samples` covers
    /// them, else `samples` draws per example.
    private static func kernelCoalitions(m: Int, rows: Int, samples: Int, seed: UInt64, exampleOffset: Int) -> Coalitions {
        if m <= 1 { return Coalitions(bits: [], rows: 1, samples: 0, m: m, weights: nil) }
        if m < 31, samples >= (1 << m) - 2 {
            let count = (1 << m) - 2
            var bits = [UInt8](repeating: 0, count: count * m), weights = [Double](repeating: 0, count: count)
            for z in 1...count {
                var size = 0
                for f in 0..<m where (z >> f) & 1 == 1 { bits[(z - 1) * m + f] = 1; size += 1 }
                weights[z - 1] = Double(m - 1) / (binomial(m, size) * Double(size) * Double(m - size))
            }
            return Coalitions(bits: bits, rows: 1, samples: count, m: m, weights: weights)
        }
        // Sizes 1..<m with probability ∝ (M − 1)/(k(M − k)): the kernel summed over the C(M, k) coalitions of size k.
        var cumulative = [Double](), sum = 0.0
        for k in 1..<m { sum += 1 / Double(k * (m - k)); cumulative.append(sum) }
        var bits = [UInt8](repeating: 0, count: rows * samples * m)
        var order = [Int](repeating: 0, count: m)
        for i in 0..<rows {
            for s in 0..<samples {
                let example = UInt64(exampleOffset + i), sample = UInt32(s)
                let (u, _) = CounterRandom.uniforms(seed: seed, example: example, sample: sample, block: 0)
                let size = min(m - 1, (cumulative.firstIndex { u * sum < $0 } ?? (m - 2)) + 1)
                // A uniform subset of that size: the first `size` entries of a partial Fisher–Yates shuffle.
                for f in 0..<m { order[f] = f }
                var block: UInt32 = 1, k = 0
                while k < size {
                    let (v0, v1) = CounterRandom.uniforms(seed: seed, example: example, sample: sample, block: block)
                    block += 1
                    order.swapAt(k, k + CounterRandom.index(v0, m - k)); k += 1
                    if k < size { order.swapAt(k, k + CounterRandom.index(v1, m - k)); k += 1 }
                }
                for q in 0..<size { bits[(i * samples + s) * m + order[q]] = 1 }
            }
        }
        return Coalitions(bits: bits, rows: rows, samples: samples, m: m, weights: nil)
    }

    private static func binomial(_ n: Int, _ k: Int) -> Double {
        var r = 1.0
        for j in 0..<min(k, n - k) { r = r * Double(n - j) / Double(j + 1) }
        return r
    }

    /// φ minimising Σ w (y − f(b) − z·φ)² subject to Σφ = `total`, for example `example`: φ_M = total − Σ_{j<M} φ_j
    /// turns it into weighted least squares in M − 1 unknowns (rows √w (z_j − z_M), right side √w (y − f(b) − z_M·total)).
    private static func constrainedShapley(_ c: Coalitions, example i: Int, outputs y: [Double], base: Double, total: Double) throws -> [Double] {
        let m = c.m
        if m == 1 { return [total] }
        var a = [Double](), rhs = [Double]()
        for s in 0..<c.samples {
            let o = c.row(i, s)
            var size = 0
            for f in 0..<m { size += Int(c.bits[o + f]) }
            guard size > 0, size < m else { continue }
            let w = c.weight(i, s).squareRoot(), last = Double(c.bits[o + m - 1])
            for f in 0..<(m - 1) { a.append(w * (Double(c.bits[o + f]) - last)) }
            rhs.append(w * (y[i * c.samples + s] - base - last * total))
        }
        let beta = try leastSquares(&a, rows: rhs.count, columns: m - 1, rhs: rhs)
        return beta + [total - beta.reduce(0, +)]
    }

    /// Minimum-norm least-squares solution of the row-major rows × columns `a` (destroyed) against `rhs`, by SVD:
    /// singular values below max(rows, columns)·ε·s_max are treated as zero (numpy's `lstsq` default).
    static func leastSquares(_ a: inout [Double], rows: Int, columns: Int, rhs: [Double]) throws -> [Double] {
        guard rows > 0 else { return [Double](repeating: 0, count: columns) }
        let (u, s, vt) = try a.withUnsafeMutableBufferPointer {
            try LAPACK.gesddRowMajor($0.baseAddress!, m: rows, n: columns, what: "least squares")
        }
        let k = min(rows, columns)
        let cutoff = (s.first ?? 0) * Double(max(rows, columns)) * Double.ulpOfOne
        var beta = [Double](repeating: 0, count: columns)
        for q in 0..<k where s[q] > cutoff {
            var dot = 0.0
            for r in 0..<rows { dot += u[r * k + q] * rhs[r] }
            let scale = dot / s[q]
            for j in 0..<columns { beta[j] += scale * vt[q * columns + j] }
        }
        return beta
    }

    /// LIME (Ribeiro et al. 2016; Captum's `Lime` with its defaults): `samples` binary coalitions z per
    /// example (each feature kept with probability ½; bit f of sample s of example i from block f/2 of
    /// ``CounterRandom`` at (seed, exampleOffset + i, s)), the model at b + z⊙(x − b), each weighted by
    /// exp(−D²/(2·kernelWidth²)) with D the cosine distance 1 − cos(x, x̃) or the euclidean ‖x − x̃‖ in
    /// input space, and an interpretable linear model with intercept fitted to them (``LimeSurrogate``);
    /// its coefficients are the attributions. `coalitions` passes the samples instead.
    public func lime(
        _ x: [Float], rows: Int, baselines: [Float] = [], mask: [Int]? = nil, maskRows: Int = 1, targets: [Int],
        samples: Int = 25, seed: UInt64 = 0, exampleOffset: Int = 0, coalitions: [UInt8]? = nil, coalitionRows: Int = 1,
        kernelWidth: Double = 1, distance: LimeDistance = .cosine, surrogate: LimeSurrogate = .lasso, alpha: Double = 0.01,
        internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let (b, targets, chunk) = try perturbationArguments(x, rows: rows, baselines: baselines, targets: targets, internalBatchSize: internalBatchSize)
        let groups = try featureGroups(mask, maskRows: maskRows, rows: rows)
        let m = groups.count, d = inputSize
        try checkOffset(exampleOffset, rows: rows)
        guard kernelWidth.isFinite, kernelWidth > 0 else { throw SwiftAttrError.invalid("similarity (kernel width) must be positive and finite (got \(kernelWidth))") }
        guard alpha.isFinite, alpha >= 0 else { throw SwiftAttrError.invalid("alpha must be non-negative and finite (got \(alpha))") }
        let c: Coalitions
        if let coalitions {
            c = try callerCoalitions(coalitions, coalitionRows: coalitionRows, rows: rows, m: m)
        } else {
            try checkSamples(samples)
            try checkCoalitionMemory(rows: rows, samples: samples, m: m)
            var bits = [UInt8](repeating: 0, count: rows * samples * m)
            for i in 0..<rows {
                for s in 0..<samples {
                    for f in stride(from: 0, to: m, by: 2) {
                        let (u0, u1) = CounterRandom.uniforms(seed: seed, example: UInt64(exampleOffset + i), sample: UInt32(s), block: UInt32(f / 2))
                        bits[(i * samples + s) * m + f] = u0 < 0.5 ? 1 : 0
                        if f + 1 < m { bits[(i * samples + s) * m + f + 1] = u1 < 0.5 ? 1 : 0 }
                    }
                }
            }
            c = Coalitions(bits: bits, rows: rows, samples: samples, m: m, weights: nil)
        }
        return try Parallel.singleThreadedBLAS {
            let y = try perturbedOutputs(rows: rows, perExample: c.samples, targets: targets, chunk: chunk) { i, s, row in
                fillCoalition(c, groups, x, b, i, s, row)
            }
            // Per-feature sums of x², b², x·b and (x − b)² give each sample's distance without forming it.
            var xx = [Double](repeating: 0, count: m), bb = xx, xb = xx, dd = xx
            return try scoresToInputBatch(rows: rows, groups: groups) { i in
                for f in 0..<m {
                    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                    for e in groups.members(i, f) {
                        let xv = Double(x[i * d + Int(e)]), bv = Double(b[i * d + Int(e)])
                        s0 += xv * xv; s1 += bv * bv; s2 += xv * bv; s3 += (xv - bv) * (xv - bv)
                    }
                    xx[f] = s0; bb[f] = s1; xb[f] = s2; dd[f] = s3
                }
                let norm = xx.reduce(0, +).squareRoot()
                var weights = [Double](repeating: 0, count: c.samples)
                var design = [Double](repeating: 0, count: c.samples * m)
                for s in 0..<c.samples {
                    let o = c.row(i, s)
                    var dot = 0.0, pp = 0.0, gap = 0.0
                    for f in 0..<m {
                        let on = c.bits[o + f] != 0
                        design[s * m + f] = on ? 1 : 0
                        dot += on ? xx[f] : xb[f]
                        pp += on ? xx[f] : bb[f]
                        gap += on ? 0 : dd[f]
                    }
                    let dist: Double
                    switch distance {
                    case .cosine:
                        // torch's CosineSimilarity: x·x̃ / (max(‖x‖, ε) · max(‖x̃‖, ε)), ε = 1e-8.
                        dist = 1 - dot / (max(norm, 1e-8) * max(pp.squareRoot(), 1e-8))
                    case .euclidean:
                        dist = gap.squareRoot()
                    }
                    weights[s] = exp(-dist * dist / (2 * kernelWidth * kernelWidth))
                }
                let targetsRow = (0..<c.samples).map { y[i * c.samples + $0] }
                return try Self.fitSurrogate(design, rows: c.samples, columns: m, y: targetsRow, weights: weights, surrogate: surrogate, alpha: alpha)
            }
        }
    }

    /// Coefficients of the weighted linear model with intercept: centre X and y at their weighted means
    /// (which removes the intercept), then least squares on √w-scaled rows or Lasso coordinate descent.
    static func fitSurrogate(
        _ x: [Double], rows: Int, columns m: Int, y: [Double], weights w: [Double], surrogate: LimeSurrogate, alpha: Double
    ) throws -> [Double] {
        let total = w.reduce(0, +)
        guard total > 0 else { throw SwiftAttrError(.numerical, "lime: every sample has zero similarity weight; increase the kernel width (similarity)") }
        var meanX = [Double](repeating: 0, count: m), meanY = 0.0
        for r in 0..<rows {
            meanY += w[r] * y[r]
            for j in 0..<m { meanX[j] += w[r] * x[r * m + j] }
        }
        meanY /= total
        for j in 0..<m { meanX[j] /= total }
        switch surrogate {
        case .linear:
            var a = [Double](repeating: 0, count: rows * m), rhs = [Double](repeating: 0, count: rows)
            for r in 0..<rows {
                let s = w[r].squareRoot()
                rhs[r] = s * (y[r] - meanY)
                for j in 0..<m { a[r * m + j] = s * (x[r * m + j] - meanX[j]) }
            }
            return try leastSquares(&a, rows: rows, columns: m, rhs: rhs)
        case .lasso:
            // Cyclic coordinate descent on ½‖t − Aβ‖² + α‖β‖₁ with a_rj = √(w_r/Σw)(x_rj − x̄_j),
            // t_r = √(w_r/Σw)(y_r − ȳ): scikit-learn's Lasso objective on the weighted, centred data. The
            // residual is updated in place (no M × M Gram matrix: M may be every pixel of an image).
            var a = [Double](repeating: 0, count: m * rows), residual = [Double](repeating: 0, count: rows)
            var norms = [Double](repeating: 0, count: m)
            for r in 0..<rows {
                let s = (w[r] / total).squareRoot()
                residual[r] = s * (y[r] - meanY)
                for j in 0..<m {
                    let v = s * (x[r * m + j] - meanX[j])
                    a[j * rows + r] = v
                    norms[j] += v * v
                }
            }
            var beta = [Double](repeating: 0, count: m)
            // Until no coefficient moves by more than 1e-12 of the largest (or 100 000 sweeps).
            for _ in 0..<100_000 {
                var change = 0.0, largest = 0.0
                for j in 0..<m where norms[j] > 0 {
                    let column = j * rows
                    var rho = norms[j] * beta[j]
                    for r in 0..<rows { rho += a[column + r] * residual[r] }
                    let updated = (rho > alpha ? rho - alpha : rho < -alpha ? rho + alpha : 0) / norms[j]
                    let step = updated - beta[j]
                    if step != 0 {
                        for r in 0..<rows { residual[r] -= a[column + r] * step }
                        beta[j] = updated
                    }
                    change = max(change, abs(step))
                    largest = max(largest, abs(updated))
                }
                if change <= 1e-12 * largest || change == 0 { break }
            }
            return beta
        }
    }
}
