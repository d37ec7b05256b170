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
/// Steps are taken in increasing α, so the changes are few. A step with many changes (more than 1/8 of L's
/// inputs) recomputes W a, W b or Wᵀ G_j densely. The results equal the per-step computation up to float32
/// rounding: the running sums W a are updated in float32 (each update adds one rounding of a product),
/// and the prefix sums are kept in Double. Every example's steps run on one worker in a fixed order, so the
/// attributions do not depend on chunking or the thread count.
extension Network {
    /// Nodes `start..<linear` select and scale (ReLU, LeakyReLU, max-pooling, views) and node `linear` is a
    /// Dense layer or a convolution, in a chain whose values are each read once.
    struct PiecewiseLinearSection {
        let start: Int
        let linear: Int
    }

    /// The piecewise-linear section beginning at value `start` (the affine prefix's end), or nil.
    func piecewiseLinearSection(from start: Int) -> PiecewiseLinearSection? {
        var i = start
        while i < layers.count {
            guard inputs[i] == [i], consumers[i] == 1 else { return nil }
            switch layers[i] {
            case .relu, .leakyReLU, .maxPool1d, .maxPool2d, .flatten, .reshape, .dropout:
                i += 1
            case .dense, .conv1d, .conv2d:
                guard i > start, cut[i + 1] else { return nil }
                return PiecewiseLinearSection(start: start, linear: i)
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
                for oc in 0..<o { for k in 0..<patch { t[k * o + oc] = weight[oc * patch + k] } }
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
    /// entry of the row each element copies (−1 where its scale is 0) and the scale.
    func pieces(_ s: PiecewiseLinearSection, _ h: [Float], rows: Int) -> (entry: [Int32], scale: [Float]) {
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
                if i + 1 < s.linear { values = apply(layer: i, to: values, rows: rows, argmax: nil) }
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
        return (entries, scales)
    }

    /// Σ_k w_k ∇_z f_t(z(α_k)) for each example at the output of the affine prefix (value `s.start`), as
    /// ``pathCotangents(prefix:zInput:zReference:count:point:targets:chunk:consume:)`` would sum it, computed
    /// through the section's pieces (see the extension's documentation). `chunk`: path points per chunk
    /// (whole examples: at least one example's steps). `denseChanges`: a step with more changes than this
    /// recomputes densely (default 1/8 of the linear node's inputs; the tests vary it).
    func piecewiseLinearPathCotangents(
        _ s: PiecewiseLinearSection, zInput: [Float], zReference: [Float], rows: Int, alphas: [Float], weights: [Float],
        targets: [Int], chunk: Int, denseChanges: Int? = nil
    ) -> [Float] {
        let dp = size(at: s.start), m = size(at: s.linear), q = s.linear, m2 = size(at: q + 1)
        let columns = LinearColumns(layers[q], input: shapes[q])
        let channels = columns.outChannels, positions = columns.positions
        let order = alphas.indices.sorted { alphas[$0] < alphas[$1] }
        let steps = order.count
        let sortedAlphas = order.map { alphas[$0] }, sortedWeights = order.map { weights[$0] }
        let denseChanges = denseChanges ?? max(1, m / 8)
        var result = [Float](repeating: 0, count: rows * dp)
        /// Position-major `a` (P × O) to channel-major rows, combined: out[o·P + p] = u·a[p·O + o] + v·b[p·O + o].
        func combine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ u: Float, _ v: Float, into out: UnsafeMutablePointer<Float>) {
            for p in 0..<positions {
                for o in 0..<channels { out[o * positions + p] = u * a[p * channels + o] + v * b[p * channels + o] }
            }
        }
        func positionMajor(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
            for o in 0..<channels { for p in 0..<positions { out[p * channels + o] = x[o * positions + p] } }
        }
        result.withUnsafeMutableBufferPointer { resultBuffer in
            let resultBase = resultBuffer.baseAddress!
            Parallel.forEachChunk(count: rows, chunk: max(1, chunk / max(1, steps))) { _, range, _ in
                let examples = range.count, n = examples * steps
                // Path points, example-major, steps in increasing α.
                let h = uninitializedFloats(n * dp) { hp in
                    zInput.withUnsafeBufferPointer { zi in
                        zReference.withUnsafeBufferPointer { zr in
                            for (e, example) in range.enumerated() {
                                let xi = zi.baseAddress! + example * dp, xr = zr.baseAddress! + example * dp
                                for j in 0..<steps {
                                    let a = sortedAlphas[j], b = 1 - a, out = hp + (e * steps + j) * dp
                                    for k in 0..<dp { out[k] = b * xr[k] + a * xi[k] }
                                }
                            }
                        }
                    }
                }
                let (entry, scale) = pieces(s, h, rows: n)
                // Forward: L's output at every point from the running W a, W b; the changes of every step
                // (`changes[offsets[row] ..< offsets[row + 1]]`).
                var changes = [Int32](), offsets = [Int](repeating: 0, count: n + 1)
                var z2 = [Float](unsafeUninitializedCapacity: n * m2) { _, initialized in initialized = n * m2 }  // every row written below
                var a = [Float](repeating: 0, count: positions * channels), b = a, ends = [Float](repeating: 0, count: 2 * m)
                entry.withUnsafeBufferPointer { entryBuffer in
                    scale.withUnsafeBufferPointer { scaleBuffer in
                        zInput.withUnsafeBufferPointer { ziBuffer in
                            zReference.withUnsafeBufferPointer { zrBuffer in
                                let entryBase = entryBuffer.baseAddress!, scaleBase = scaleBuffer.baseAddress!
                                for (e, example) in range.enumerated() {
                                    let zr = zrBuffer.baseAddress! + example * dp, zi = ziBuffer.baseAddress! + example * dp
                                    @inline(__always) func endpoints(_ row: Int, _ k: Int) -> (Float, Float) {
                                        let r = Int(entryBase[row * m + k]), c = scaleBase[row * m + k]
                                        return r < 0 ? (0, 0) : (c * zr[r], c * zi[r])
                                    }
                                    func recompute(_ row: Int) {
                                        for k in 0..<m { (ends[k], ends[m + k]) = endpoints(row, k) }
                                        let y = apply(layer: q, to: ends, rows: 2, argmax: nil)
                                        y.withUnsafeBufferPointer { yp in
                                            a.withUnsafeMutableBufferPointer { positionMajor(yp.baseAddress!, into: $0.baseAddress!) }
                                            b.withUnsafeMutableBufferPointer { positionMajor(yp.baseAddress! + m2, into: $0.baseAddress!) }
                                        }
                                    }
                                    let row0 = e * steps
                                    recompute(row0)
                                    for j in 0..<steps {
                                        let row = row0 + j
                                        if j > 0 {
                                            let first = changes.count
                                            let now = entryBase + row * m, before = now - m
                                            let nowScale = scaleBase + row * m, beforeScale = nowScale - m
                                            appendChanges(now, before, nowScale, beforeScale, count: m, to: &changes)
                                            let count = changes.count - first
                                            if count > denseChanges {
                                                recompute(row)
                                            } else if count > 0 {
                                                a.withUnsafeMutableBufferPointer { ap in
                                                    b.withUnsafeMutableBufferPointer { bp in
                                                        for c in first..<changes.count {
                                                            let k = Int(changes[c])
                                                            let (newA, newB) = endpoints(row, k), (oldA, oldB) = endpoints(row - 1, k)
                                                            columns.scatter(k, newA - oldA, newB - oldB, into: ap.baseAddress!, bp.baseAddress!)
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                        offsets[row + 1] = changes.count
                                        let alpha = sortedAlphas[j]
                                        z2.withUnsafeMutableBufferPointer { combine(a, b, 1 - alpha, alpha, into: $0.baseAddress! + row * m2) }
                                    }
                                }
                            }
                        }
                    }
                }
                let rowTargets = range.flatMap { example in [Int](repeating: targets[example], count: steps) }
                let rowWeights = (0..<n).map { sortedWeights[$0 % steps] }
                let g = targetCotangents(at: q + 1, z2, rows: n, targets: rowTargets, weights: rowWeights)
                // Backward: each element's runs of one piece, from the prefix sums of g.
                var sum = [Double](repeating: 0, count: m2)  // Σ_{k<j} g_k
                var snapshot = [Float](repeating: 0, count: m2)
                var cotangent = [Double](repeating: 0, count: dp)
                var last = [Float](repeating: 0, count: m)  // (Wᵀ G_{run start})_k
                var current = [Int32](repeating: 0, count: m), currentScale = [Float](repeating: 0, count: m)
                func snapshotSum(channelMajor: Bool) {
                    sum.withUnsafeBufferPointer { sp in
                        snapshot.withUnsafeMutableBufferPointer { out in
                            if channelMajor {
                                for k in 0..<m2 { out[k] = Float(sp[k]) }
                            } else {
                                for o in 0..<channels { for p in 0..<positions { out[p * channels + o] = Float(sp[o * positions + p]) } }
                            }
                        }
                    }
                }
                entry.withUnsafeBufferPointer { entryBuffer in
                    scale.withUnsafeBufferPointer { scaleBuffer in
                        g.withUnsafeBufferPointer { gp in
                            let entryBase = entryBuffer.baseAddress!, scaleBase = scaleBuffer.baseAddress!
                            for (e, example) in range.enumerated() {
                                let row0 = e * steps
                                for k in 0..<dp { cotangent[k] = 0 }
                                for k in 0..<m { last[k] = 0; current[k] = entryBase[row0 * m + k]; currentScale[k] = scaleBase[row0 * m + k] }
                                for k in 0..<m2 { sum[k] = 0 }
                                for j in 0..<steps {
                                    let row = row0 + j, list = offsets[row]..<offsets[row + 1]
                                    if !list.isEmpty {
                                        let dense: [Float]?
                                        if list.count > denseChanges {
                                            snapshotSum(channelMajor: true)
                                            dense = pullbackAffine(snapshot, rows: 1, from: q + 1, to: q)
                                        } else {
                                            snapshotSum(channelMajor: false)
                                            dense = nil
                                        }
                                        snapshot.withUnsafeBufferPointer { sp in
                                            for c in list {
                                                let k = Int(changes[c])
                                                let v = dense?[k] ?? columns.gather(k, from: sp.baseAddress!)
                                                if current[k] >= 0 {
                                                    cotangent[Int(current[k])] += Double(currentScale[k]) * (Double(v) - Double(last[k]))
                                                }
                                                last[k] = v
                                                current[k] = entryBase[row * m + k]
                                                currentScale[k] = scaleBase[row * m + k]
                                            }
                                        }
                                    }
                                    let gRow = gp.baseAddress! + row * m2
                                    sum.withUnsafeMutableBufferPointer { sp in for k in 0..<m2 { sp[k] += Double(gRow[k]) } }
                                }
                                snapshotSum(channelMajor: true)
                                let total = pullbackAffine(snapshot, rows: 1, from: q + 1, to: q)
                                for k in 0..<m where current[k] >= 0 {
                                    cotangent[Int(current[k])] += Double(currentScale[k]) * (Double(total[k]) - Double(last[k]))
                                }
                                let out = resultBase + example * dp
                                for k in 0..<dp { out[k] = Float(cotangent[k]) }
                            }
                        }
                    }
                }
            }
        }
        return result
    }
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
