/// Straight paths through a piecewise-linear section: the linear node after the first nonlinearity runs
/// once per example plus once per change, not once per step.
///
/// After the affine prefix P, a path point is z(α) = (1 − α)·z' + α·z (z' = P(x'), z = P(x)). When the nodes
/// after P up to a linear node L (Dense or a convolution) only select and scale — ReLU, LeakyReLU,
/// max-pooling, views — every element of L's input is h_e(α) = s_e·z_{r_e}(α), one entry r_e of z scaled by
/// s_e ∈ {0, 1, slope}: a *piece* (r_e, s_e) that stays the same while α moves between the points where the
/// selection changes. So with a_e = s_e·z'_{r_e} and b_e = s_e·z_{r_e},
///
///     L(h(α)) = (1 − α)·(W a + bias) + α·(W b + bias),
///
/// and moving to the next step changes W a and W b only by W's columns of the elements whose piece changed
/// (at most the window size + 1 pieces per element over the whole path for ReLU∘max-pooling, which is
/// convex in α: the benchmark CNN's IG sees 590 changes per example among 2,304 elements × 50 steps).
/// Backwards, Σ_k R_kᵀ Wᵀ g_k (R_k: step k's pieces, g_k: the weighted cotangent at L's output) splits
/// over each element's runs of steps with one piece: with prefix sums G_j = Σ_{k<j} g_k, a run [j₀, j₁)
/// of piece (r, s) adds s·(Wᵀ(G_{j₁} − G_{j₀}))_e to the cotangent of z_r. One transposed pass Wᵀ G_K per
/// example gives every final run; each change needs one entry (Wᵀ G_j)_e, the dot product of a column of W.
///
/// When other nodes read L's input too (the shortcut of a residual block), the rest of the network runs
/// per step from that input with L's output supplied and L severed in the pullback; the other readers'
/// cotangents d_k at the input are summed the same way (prefix sums D_j), and a run adds
/// s·((Wᵀ(G_{j₁} − G_{j₀}))_e + D_{j₁,e} − D_{j₀,e}).
///
/// Steps are taken in increasing α, so the changes are few. With fewer examples than workers, an example's
/// steps split into consecutive segments, one per worker, each from its own dense start: the runs cut at a
/// segment's ends add up to the same sums. A step with many changes (more than 1/8 of L's
/// inputs) recomputes W a, W b or Wᵀ G_j densely. The results equal the per-step computation up to float32
/// rounding: the running sums W a are updated in float32 (each update adds one rounding of a product),
/// and the prefix sums are kept in Double. An example's steps (or each of its segments) run on one worker in
/// a fixed order, so which worker ran what never matters; the chunk size (the tail's GEMM shapes) and, with
/// fewer examples than workers, the thread count (where segments start) change only float32 roundings.
extension Network {
    /// Nodes `start..<linear` select and scale (ReLU, LeakyReLU, max-pooling, views) and node `linear` is a
    /// Dense layer or a convolution, in a chain whose values are each read once — except the linear node's
    /// input, which other nodes may read as well (a residual block's shortcut) when it is a cut.
    struct PiecewiseLinearSection {
        let start: Int
        let linear: Int
        /// Nodes after the linear one read its input, or an earlier value than its output.
        let fansOut: Bool
    }

    /// The piecewise-linear section beginning at value `start` (the affine prefix's end), or nil.
    func piecewiseLinearSection(from start: Int) -> PiecewiseLinearSection? {
        var i = start
        while i < layers.count {
            guard inputs[i] == [i] else { return nil }
            switch layers[i] {
            case .relu, .leakyReLU, .maxPool1d, .maxPool2d, .flatten, .reshape, .dropout:
                guard consumers[i] == 1 else { return nil }
                i += 1
            case .dense, .conv1d, .conv2d:
                guard i > start, cut[i] else { return nil }
                return PiecewiseLinearSection(start: start, linear: i, fansOut: consumers[i] > 1 || !cut[i + 1])
            case .avgPool1d, .avgPool2d, .globalAvgPool, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .add, .concat,
                 .embedding, .lstm:
                return nil
            }
        }
        return nil
    }

    /// The columns of a Dense layer or convolution as scatters and gathers over an output stored position
    /// major (P positions × O channels), so that a column's entries at one output position are contiguous.
    /// A Dense layer is the 1 × 1 convolution of a 1 × 1 image with `in` channels.
    struct LinearColumns {
        let geometry: WindowGeometry
        let outChannels: Int
        /// `taps[((c·kh + i)·kw + j)·O + o] = W[o, c, i, j]`.
        let taps: [Float]

        init(_ layer: Layer, input shape: [Int]) {
            let weight: [Float]
            switch layer {
            case .dense(let d):
                geometry = WindowGeometry(shape: [d.inFeatures, 1, 1], kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1])
                outChannels = d.outFeatures
                weight = d.weight
            case .conv1d(let c), .conv2d(let c):
                geometry = WindowGeometry(convolution: c, input: shape)
                outChannels = c.outChannels
                weight = c.weight
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
                preconditionFailure("LinearColumns: \(layer.name) is not a Dense layer or a convolution")
            }
            let o = outChannels, patch = geometry.patchSize
            taps = uninitializedFloats(patch * o) { t in
                weight.withUnsafeBufferPointer { w in
                    // Blocks of 16 × 16, so that reads and writes both stay within a few cache lines.
                    for k0 in stride(from: 0, to: patch, by: 16) {
                        for o0 in stride(from: 0, to: o, by: 16) {
                            for oc in o0..<min(o, o0 + 16) { for k in k0..<min(patch, k0 + 16) { t[k * o + oc] = w[oc * patch + k] } }
                        }
                    }
                }
            }
        }

        var positions: Int { geometry.outputPlane }

        /// Calls `body(tap, position)` for every output position that input element `e` (flat, channel first)
        /// reaches, with the offset of its weights in ``taps`` and of the position in the output.
        @inline(__always)
        func forEachReach(of e: Int, _ body: (Int, Int) -> Void) {
            let g = geometry, plane = g.inputPlane
            let c = e / plane, y = (e % plane) / g.width, x = e % g.width
            for i in 0..<g.kh {
                let rowShift = y + g.ph - i * g.dh
                guard rowShift >= 0, rowShift % g.sh == 0 else { continue }
                let oy = rowShift / g.sh
                guard oy < g.outHeight else { continue }
                for j in 0..<g.kw {
                    let columnShift = x + g.pw - j * g.dw
                    guard columnShift >= 0, columnShift % g.sw == 0 else { continue }
                    let ox = columnShift / g.sw
                    guard ox < g.outWidth else { continue }
                    body(((c * g.kh + i) * g.kw + j) * outChannels, (oy * g.outWidth + ox) * outChannels)
                }
            }
        }

        /// `a += da·W[:, e]`, `b += db·W[:, e]` (position-major outputs).
        func scatter(_ e: Int, _ da: Float, _ db: Float, into a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>) {
            let o = outChannels
            taps.withUnsafeBufferPointer { t in
                forEachReach(of: e) { tap, position in
                    let w = t.baseAddress! + tap, pa = a + position, pb = b + position
                    for k in 0..<o { pa[k] += da * w[k]; pb[k] += db * w[k] }
                }
            }
        }

        /// `(Wᵀ g)_e` for a position-major `g` (eight partial sums over the channels).
        func gather(_ e: Int, from g: UnsafePointer<Float>) -> Float {
            let o = outChannels, blocks = o / 8
            var partial = SIMD8<Float>(), total: Float = 0
            taps.withUnsafeBufferPointer { t in
                forEachReach(of: e) { tap, position in
                    let w = UnsafeRawPointer(t.baseAddress! + tap), pg = UnsafeRawPointer(g + position)
                    for k in 0..<blocks {
                        partial += w.loadUnaligned(fromByteOffset: 32 * k, as: SIMD8<Float>.self)
                            * pg.loadUnaligned(fromByteOffset: 32 * k, as: SIMD8<Float>.self)
                    }
                    let wf = t.baseAddress! + tap, gf = g + position
                    for k in (8 * blocks)..<o { total += wf[k] * gf[k] }
                }
            }
            return total + partial.sum()
        }
    }

    /// The pieces of every element of node `s.linear`'s input for `rows` rows `h` of value `s.start`: the
    /// entry of the row each element copies (−1 where its scale is 0), the scale, and — only when the section
    /// fans out, for the other readers — the values themselves (empty otherwise).
    func pieces(_ s: PiecewiseLinearSection, _ h: [Float], rows: Int) -> (entry: [Int32], scale: [Float], values: [Float]) {
        var values = h
        var entry: [Int32]? = nil  // nil: the identity
        var scale: [Float]? = nil  // nil: all 1
        for i in s.start..<s.linear {
            let inSize = size(at: i), outSize = size(at: i + 1)
            switch layers[i] {
            case .flatten, .reshape, .dropout:
                continue
            case .relu, .leakyReLU:
                let slope: Float
                if case .leakyReLU(let a) = layers[i] { slope = a } else { slope = 0 }
                let count = rows * inSize
                scale = uninitializedFloats(count) { out in
                    values.withUnsafeBufferPointer { v in
                        if let old = scale {
                            old.withUnsafeBufferPointer { o in for k in 0..<count { out[k] = v[k] > 0 ? o[k] : slope * o[k] } }
                        } else {
                            for k in 0..<count { out[k] = v[k] > 0 ? 1 : slope }
                        }
                    }
                }
                if i + 1 < s.linear || s.fansOut { values = apply(layer: i, to: values, rows: rows, argmax: nil) }
            case .maxPool1d, .maxPool2d:
                let (y, winners) = applyRecordingArgmax(i, [values], rows: rows)
                let count = rows * outSize
                // Winners are in-example positions; make them row positions, then look entry and scale up.
                var at = winners
                at.withUnsafeMutableBufferPointer { w in
                    for n in 0..<rows { let offset = Int32(n * inSize); for o in 0..<outSize { w[n * outSize + o] += offset } }
                }
                if let old = entry {
                    entry = uninitializedInt32s(count) { out in
                        old.withUnsafeBufferPointer { e in at.withUnsafeBufferPointer { w in for k in 0..<count { out[k] = e[Int(w[k])] } } }
                    }
                } else {
                    entry = winners
                }
                if let old = scale {
                    scale = uninitializedFloats(count) { out in
                        old.withUnsafeBufferPointer { sc in at.withUnsafeBufferPointer { w in for k in 0..<count { out[k] = sc[Int(w[k])] } } }
                    }
                }
                values = y
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .elu, .softplus, .sigmoid, .tanh, .softmax,
                 .batchNorm, .add, .concat, .embedding, .lstm:
                preconditionFailure("pieces: \(layers[i].name) is not piecewise linear")
            }
        }
        let m = size(at: s.linear), count = rows * m
        let scales = scale ?? [Float](repeating: 1, count: count)
        let entries = uninitializedInt32s(count) { out in
            scales.withUnsafeBufferPointer { sc in
                if let entry {
                    entry.withUnsafeBufferPointer { e in for k in 0..<count { out[k] = sc[k] == 0 ? -1 : e[k] } }
                } else {
                    for n in 0..<rows { for k in 0..<m { out[n * m + k] = sc[n * m + k] == 0 ? -1 : Int32(k) } }
                }
            }
        }
        return (entries, scales, s.fansOut ? values : [])
    }

    /// For `rows` rows `h` of the linear node's input and its outputs `z` there: the cotangent at its output
    /// and, when other nodes read its input, the cotangent at the input through them alone (the linear
    /// node severed), for the seeds `weights[r]·e_{targets[r]}`.
    func sectionTailCotangents(_ s: PiecewiseLinearSection, h: [Float], z: [Float], rows: Int, targets: [Int], weights: [Float])
        -> (output: [Float], input: [Float]?) {
        let q = s.linear
        guard s.fansOut else { return (targetCotangents(at: q + 1, z, rows: rows, targets: targets, weights: weights), nil) }
        let tape = record(h, rows: rows, from: q, computed: (q, z))
        var atOutput = [Float]()
        let atInput = pullback(tape, cotangent: targetSeeds(rows: rows, targets: targets, weights: weights), to: q, severing: q) {
            atOutput = $0
        }
        if atOutput.isEmpty { atOutput = [Float](repeating: 0, count: rows * size(at: q + 1)) }
        return (atOutput, atInput)
    }

    /// One example's running state along its path, carried from one block of steps to the next. It owns
    /// its buffers (freed with it), so the loops below read and write them side by side through pointers.
    private final class PathState {
        /// W a and W b at the last step run forward, position-major (P × O).
        let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
        /// The pieces at the last step run forward, and those the backward's current runs hold.
        let forwardEntry: UnsafeMutablePointer<Int32>, forwardScale: UnsafeMutablePointer<Float>
        let runEntry: UnsafeMutablePointer<Int32>, runScale: UnsafeMutablePointer<Float>
        /// Σ_{k<j} g_k, channel-major, before the next step run backward.
        let sum: UnsafeMutablePointer<Double>
        /// Σ_{k<j} d_k: the other readers' cotangents at the linear node's input (fan-out only).
        let direct: UnsafeMutablePointer<Double>
        /// (Wᵀ G_{run start})_e + D_{run start, e} of every element's current run.
        let last: UnsafeMutablePointer<Double>
        /// The cotangent at value `start` so far.
        let cotangent: UnsafeMutablePointer<Double>

        init(inputs m: Int, outputs m2: Int, prefix dp: Int) {
            func zeros<T: Numeric>(_ count: Int, _ value: T = 0) -> UnsafeMutablePointer<T> {
                let p = UnsafeMutablePointer<T>.allocate(capacity: count)
                p.initialize(repeating: value, count: count)
                return p
            }
            a = zeros(m2)
            b = zeros(m2)
            forwardEntry = zeros(m, -1)
            forwardScale = zeros(m)
            runEntry = zeros(m, -1)
            runScale = zeros(m)
            sum = zeros(m2)
            direct = zeros(m)
            last = zeros(m)
            cotangent = zeros(dp)
        }

        deinit {
            for p in [a, b, forwardScale, runScale] { p.deallocate() }
            for p in [forwardEntry, runEntry] { p.deallocate() }
            for p in [sum, direct, last, cotangent] { p.deallocate() }
        }
    }

    /// Σ_k w_k ∇_z f_t(z(α_k)) for each example at the output of the affine prefix (value `s.start`), as
    /// ``pathCotangents(prefix:zInput:zReference:count:point:targets:chunk:consume:)`` would sum it, computed
    /// through the section's pieces (see the extension's documentation). `chunk` bounds the path points
    /// evaluated at once: whole examples when it holds all their steps, else blocks of one example's steps
    /// (each example's state carries over). `denseChanges`: a step with more changes than this recomputes
    /// densely (default 1/8 of the linear node's inputs; the tests vary it).
    func piecewiseLinearPathCotangents(
        _ s: PiecewiseLinearSection, zInput: [Float], zReference: [Float], rows: Int, alphas: [Float], weights: [Float],
        targets: [Int], chunk: Int, denseChanges: Int? = nil
    ) -> [Float] {
        let dp = size(at: s.start), m = size(at: s.linear), q = s.linear, m2 = size(at: q + 1)
        guard rows > 0, !alphas.isEmpty else { return [Float](repeating: 0, count: max(0, rows) * dp) }
        let columns = LinearColumns(layers[q], input: shapes[q])
        let channels = columns.outChannels, positions = columns.positions
        let order = alphas.indices.sorted { alphas[$0] < alphas[$1] }
        let steps = order.count
        let sortedAlphas = order.map { alphas[$0] }, sortedWeights = order.map { weights[$0] }
        let denseChanges = denseChanges ?? max(1, m / 8)
        // Whole examples per chunk: as many as `chunk` points hold, but with their states (≈ 4·m2 + 7·m + 2·dp
        // floats each, nine buffers) within the same 4 MB budget and at most 256 of them (a tiny network's
        // chunk of 2¹⁷ points would otherwise make half a million small buffers).
        let stateFloats = 4 * m2 + 7 * m + 2 * dp + 64
        let examplesPerChunk = max(1, min(chunk / steps, 256, (1 << 20) / stateFloats)), stepsPerBlock = max(1, min(steps, chunk))
        var result = [Float](repeating: 0, count: rows * dp)

        /// Calls `body(o·P + p, p·O + o)` (the channel-major and position-major offsets of entry (o, p)) for
        /// every entry: blocks of 16 positions, channels inside, so both sides stay within a few cache lines.
        @inline(__always)
        func forEachEntry(_ body: (Int, Int) -> Void) {
            if positions == 1 {
                for o in 0..<channels { body(o, o) }
                return
            }
            var p0 = 0
            while p0 < positions {
                let p1 = min(positions, p0 + 16)
                for o in 0..<channels { for p in p0..<p1 { body(o * positions + p, p * channels + o) } }
                p0 = p1
            }
        }
        /// Channel-major out = u·a + v·b of position-major a and b.
        func combine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ u: Float, _ v: Float, into out: UnsafeMutablePointer<Float>) {
            forEachEntry { c, pm in out[c] = u * a[pm] + v * b[pm] }
        }
        /// Channel-major `x` to position-major `out`.
        func positionMajor<T>(_ x: UnsafePointer<T>, into out: UnsafeMutablePointer<Float>, _ convert: (T) -> Float) {
            forEachEntry { c, pm in out[pm] = convert(x[c]) }
        }

        /// Steps `js` of the examples `examples` (example-major rows), advancing their states.
        func run(_ examples: [Int], _ js: Range<Int>, from first: Int, _ states: [PathState]) {
            let blockSteps = js.count, n = examples.count * blockSteps
            let h = uninitializedFloats(n * dp) { hp in
                zInput.withUnsafeBufferPointer { zi in
                    zReference.withUnsafeBufferPointer { zr in
                        for (e, example) in examples.enumerated() {
                            for (t, j) in js.enumerated() {
                                pathPoint(zr.baseAddress! + example * dp, zi.baseAddress! + example * dp, alpha: sortedAlphas[j],
                                          count: dp, into: hp + (e * blockSteps + t) * dp)
                            }
                        }
                    }
                }
            }
            let (entry, scale, values) = pieces(s, h, rows: n)
            // Forward: L's output at every point from the running W a, W b; the changes of every step
            // (`changes[offsets[row] ..< offsets[row + 1]]`).
            var changes = [Int32](), offsets = [Int](repeating: 0, count: n + 1)
            var z2 = [Float](unsafeUninitializedCapacity: n * m2) { _, initialized in initialized = n * m2 }  // every row written below
            entry.withUnsafeBufferPointer { entryBuffer in
                scale.withUnsafeBufferPointer { scaleBuffer in
                    zInput.withUnsafeBufferPointer { ziBuffer in
                        zReference.withUnsafeBufferPointer { zrBuffer in
                            /// The rows a (at `out`) and b (at `out + m`) of step `row`'s pieces for `example`.
                            func fillEnds(_ row: Int, _ example: Int, into out: UnsafeMutablePointer<Float>) {
                                let zr = zrBuffer.baseAddress! + example * dp, zi = ziBuffer.baseAddress! + example * dp
                                for k in 0..<m {
                                    (out[k], out[m + k]) = endpoints(entryBuffer[row * m + k], scaleBuffer[row * m + k], zr, zi)
                                }
                            }
                            /// L at the ends of `pairs` (state, row, example) in one pass, into the states' W a, W b.
                            func recompute(_ pairs: [(PathState, Int, Int)]) {
                                let ends = uninitializedFloats(2 * pairs.count * m) { out in
                                    for (u, (_, row, example)) in pairs.enumerated() { fillEnds(row, example, into: out + 2 * u * m) }
                                }
                                let y = apply(layer: q, to: ends, rows: 2 * pairs.count, argmax: nil)
                                y.withUnsafeBufferPointer { yp in
                                    for (u, (state, _, _)) in pairs.enumerated() {
                                        positionMajor(yp.baseAddress! + 2 * u * m2, into: state.a) { $0 }
                                        positionMajor(yp.baseAddress! + (2 * u + 1) * m2, into: state.b) { $0 }
                                    }
                                }
                            }
                            if js.lowerBound == first {
                                // The first step of every example: W a and W b of all of them in one pass of L.
                                recompute(examples.enumerated().map { (states[$0.offset], $0.offset * blockSteps, $0.element) })
                            }
                            for (e, example) in examples.enumerated() {
                                let state = states[e], before = state.forwardEntry, beforeScale = state.forwardScale
                                let zr = zrBuffer.baseAddress! + example * dp, zi = ziBuffer.baseAddress! + example * dp
                                for (t, j) in js.enumerated() {
                                    let row = e * blockSteps + t
                                    let now = entryBuffer.baseAddress! + row * m, nowScale = scaleBuffer.baseAddress! + row * m
                                    if j > first {
                                        let firstChange = changes.count
                                        appendChanges(now, before, nowScale, beforeScale, count: m, to: &changes)
                                        if changes.count - firstChange > denseChanges {
                                            recompute([(state, row, example)])
                                        } else {
                                            for c in firstChange..<changes.count {
                                                let k = Int(changes[c])
                                                let (newA, newB) = endpoints(now[k], nowScale[k], zr, zi)
                                                let (oldA, oldB) = endpoints(before[k], beforeScale[k], zr, zi)
                                                columns.scatter(k, newA - oldA, newB - oldB, into: state.a, state.b)
                                            }
                                        }
                                    }
                                    before.update(from: now, count: m)
                                    beforeScale.update(from: nowScale, count: m)
                                    offsets[row + 1] = changes.count
                                    let alpha = sortedAlphas[j]
                                    z2.withUnsafeMutableBufferPointer { combine(state.a, state.b, 1 - alpha, alpha, into: $0.baseAddress! + row * m2) }
                                }
                            }
                        }
                    }
                }
            }
            let rowTargets = examples.flatMap { example in [Int](repeating: targets[example], count: blockSteps) }
            let rowWeights = (0..<n).map { sortedWeights[js.lowerBound + $0 % blockSteps] }
            let (g, direct) = sectionTailCotangents(s, h: values, z: z2, rows: n, targets: rowTargets, weights: rowWeights)
            // Backward: each element's runs of one piece, from the prefix sums of g.
            var snapshot = [Float](repeating: 0, count: m2)
            entry.withUnsafeBufferPointer { entryBuffer in
                scale.withUnsafeBufferPointer { scaleBuffer in
                    g.withUnsafeBufferPointer { gp in
                        for (e, state) in states.enumerated() {
                            let sum = state.sum, directSum = state.direct, cotangent = state.cotangent, last = state.last
                            let current = state.runEntry, currentScale = state.runScale
                            for (t, j) in js.enumerated() {
                                let row = e * blockSteps + t
                                let now = entryBuffer.baseAddress! + row * m, nowScale = scaleBuffer.baseAddress! + row * m
                                if j == first {
                                    current.update(from: now, count: m)
                                    currentScale.update(from: nowScale, count: m)
                                }
                                let list = offsets[row]..<offsets[row + 1]
                                if !list.isEmpty {
                                    let dense: [Float]?
                                    if list.count > denseChanges {
                                        snapshot.withUnsafeMutableBufferPointer { out in for k in 0..<m2 { out[k] = Float(sum[k]) } }
                                        dense = pullbackAffine(snapshot, rows: 1, from: q + 1, to: q)
                                    } else {
                                        snapshot.withUnsafeMutableBufferPointer { positionMajor(UnsafePointer(sum), into: $0.baseAddress!) { Float($0) } }
                                        dense = nil
                                    }
                                    snapshot.withUnsafeBufferPointer { sp in
                                        for c in list {
                                            let k = Int(changes[c])
                                            let v = Double(dense?[k] ?? columns.gather(k, from: sp.baseAddress!)) + directSum[k]
                                            if current[k] >= 0 {
                                                cotangent[Int(current[k])] += Double(currentScale[k]) * (v - last[k])
                                            }
                                            last[k] = v
                                            current[k] = now[k]
                                            currentScale[k] = nowScale[k]
                                        }
                                    }
                                }
                                if let direct {
                                    // The other readers' cotangent at the linear node's input: summed like g, it
                                    // joins each run's difference.
                                    direct.withUnsafeBufferPointer { directBuffer in
                                        let d = directBuffer.baseAddress! + row * m
                                        for k in 0..<m { directSum[k] += Double(d[k]) }
                                    }
                                }
                                let gRow = gp.baseAddress! + row * m2
                                for k in 0..<m2 { sum[k] += Double(gRow[k]) }
                            }
                        }
                    }
                }
            }
        }

        // Work units: an example's steps, or — when there are fewer examples than workers — consecutive
        // segments of them, each from its own dense start (runs split at a segment's ends add up the same).
        let segments = rows >= Parallel.workerCount ? 1 : min(steps, (Parallel.workerCount + rows - 1) / rows)
        let bounds = (0...segments).map { $0 * steps / segments }
        let segmented = segments > 1
        var unitCotangents = [Double](repeating: 0, count: segmented ? rows * segments * dp : 1)
        result.withUnsafeMutableBufferPointer { resultBuffer in
            unitCotangents.withUnsafeMutableBufferPointer { unitBuffer in
                let resultBase = resultBuffer.baseAddress!, unitBase = unitBuffer.baseAddress!
                Parallel.forEachChunk(count: rows * segments, chunk: segmented ? 1 : examplesPerChunk) { _, range, _ in
                    let examples = range.map { $0 / segments }
                    let states = examples.map { _ in PathState(inputs: m, outputs: m2, prefix: dp) }
                    let first = bounds[range.lowerBound % segments], end = bounds[range.lowerBound % segments + 1]
                    var j0 = first
                    while j0 < end {
                        let j1 = examples.count > 1 ? end : min(end, j0 + stepsPerBlock)
                        run(examples, j0..<j1, from: first, states)
                        j0 = j1
                    }
                    // Every element's last run ends at G_end: (Wᵀ G_end)_e − (Wᵀ G_start)_e, Wᵀ G_end of all
                    // the chunk's examples in one pass.
                    let sums = uninitializedFloats(examples.count * m2) { out in
                        for e in examples.indices { for k in 0..<m2 { out[e * m2 + k] = Float(states[e].sum[k]) } }
                    }
                    let totals = pullbackAffine(sums, rows: examples.count, from: q + 1, to: q)
                    for (e, example) in examples.enumerated() {
                        let state = states[e]
                        let cotangent = state.cotangent
                        for k in 0..<m where state.runEntry[k] >= 0 {
                            cotangent[Int(state.runEntry[k])] += Double(state.runScale[k]) * (Double(totals[e * m + k]) + state.direct[k] - state.last[k])
                        }
                        if segmented {
                            (unitBase + (range.lowerBound + e) * dp).update(from: cotangent, count: dp)
                        } else {
                            let out = resultBase + example * dp
                            for k in 0..<dp { out[k] = Float(cotangent[k]) }
                        }
                    }
                }
                if segmented {
                    // Segments summed in order, so the result does not depend on which worker ran which.
                    for example in 0..<rows {
                        let out = resultBase + example * dp
                        for k in 0..<dp {
                            var total = 0.0
                            for segment in 0..<segments { total += unitBase[(example * segments + segment) * dp + k] }
                            out[k] = Float(total)
                        }
                    }
                }
            }
        }
        return result
    }
}

/// The two ends (a, b) = (s·z'_r, s·z_r) of piece (r, s) of an element; (0, 0) where it is zero (r < 0).
@inline(__always)
private func endpoints(_ r: Int32, _ s: Float, _ zReference: UnsafePointer<Float>, _ zInput: UnsafePointer<Float>) -> (Float, Float) {
    r < 0 ? (0, 0) : (s * zReference[Int(r)], s * zInput[Int(r)])
}

/// Appends to `changes` every k < count where (entry, scale) differs between `now` and `before` (bit
/// patterns compared, blocks of 16 tested at once).
private func appendChanges(
    _ now: UnsafePointer<Int32>, _ before: UnsafePointer<Int32>, _ nowScale: UnsafePointer<Float>, _ beforeScale: UnsafePointer<Float>,
    count: Int, to changes: inout [Int32]
) {
    let nowBits = UnsafeRawPointer(nowScale).assumingMemoryBound(to: UInt32.self)
    let beforeBits = UnsafeRawPointer(beforeScale).assumingMemoryBound(to: UInt32.self)
    var start = 0
    while start < count {
        let end = min(count, start + 16)
        var differ: UInt32 = 0
        for k in start..<end { differ |= UInt32(bitPattern: now[k] ^ before[k]) | (nowBits[k] ^ beforeBits[k]) }
        if differ != 0 {
            for k in start..<end where now[k] != before[k] || nowBits[k] != beforeBits[k] { changes.append(Int32(k)) }
        }
        start = end
    }
}

/// An Int32 array of `count` elements, every one written by `body`.
func uninitializedInt32s(_ count: Int, _ body: (UnsafeMutablePointer<Int32>) -> Void) -> [Int32] {
    [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
        body(buffer.baseAddress!)
        initialized = count
    }
}
