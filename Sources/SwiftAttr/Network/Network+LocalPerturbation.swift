/// Forward passes of inputs that differ from a reference input only inside a small box — an occluded
/// window, an ablated feature — when the network starts with a convolution.
///
/// A convolution's output at position o depends only on the inputs under its window, so y(x̃) = y(x)
/// except at the outputs whose windows meet the box where x̃ ≠ x. Those are recomputed from a crop of x̃
/// (its rows o₀·s − p ..< o₁·s − p + (k − 1)·d + 1, zero outside the image): a convolution of the crop
/// without padding gives exactly the outputs o₀…o₁ along each dimension. The rest is copied from the
/// reference's output, computed once per example. Which outputs are recomputed depends only on the row and
/// its reference, never on how rows are chunked, so results do not depend on chunks or threads.
///
/// When a second convolution follows on the chain (after activations and pooling, say: LeNet's conv → ReLU
/// → pool → conv) and runs by kernel rows (``WindowGeometry/kernelRows``), its input differs from the
/// reference's only in a band of rows, and the convolution is linear: y(ã) = y(a) + W ∗ (ã − a), where the
/// difference is zero outside rows r₀…r₁. Kernel row i then meets the band only at output rows r₀ − i…r₁ − i,
/// so each of its GEMMs covers those rows alone — for a 4×4 occlusion of the benchmark CNN about half the
/// second convolution's work.
extension Network {
    /// Whether ``forward(_:rows:nearReferences:referenceOf:)`` shares node 0's work: node 0 is a 1-D or 2-D
    /// convolution of the input, and nothing after it reads the input.
    var sharesFirstConvolution: Bool {
        guard let first = layers.first, inputs[0] == [0], cut.count > 1, cut[1] else { return false }
        switch first {
        case .conv1d, .conv2d:
            return true
        case .dense, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU,
             .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
            return false
        }
    }

    /// The input a perturbed row is close to: row `index` of the references, or the row just before it in
    /// the same batch (a chain of perturbations that each change a little more, as Shapley value sampling's
    /// coalitions do).
    enum PerturbationReference: Equatable {
        case reference(Int)
        case previousRow
    }

    /// The outputs of `rows` inputs (`x`, rows × inputSize) where row r is close to `referenceOf(r)` (a row
    /// of `references`, or row r − 1; row 0 needs a row of `references`): node 0 from the reference's output
    /// plus the outputs whose windows meet the changed box (see the extension's note), the other nodes as in
    /// ``forward(_:rows:)``. Equal to ``forward(_:rows:)`` up to float32 rounding (the recomputed outputs come
    /// from a GEMM of another shape; along a chain of previous rows a banded convolution adds one rounded
    /// difference per row). Requires ``sharesFirstConvolution``.
    func forward(_ x: [Float], rows: Int, nearReferences references: UnsafePointer<Float>,
                 referenceOf: (Int) -> PerturbationReference) -> [Float] {
        let c: Layer.Convolution
        switch layers[0] {
        case .conv1d(let conv), .conv2d(let conv):
            c = conv
        case .dense, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU,
             .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
            preconditionFailure("forward(_:rows:nearReferences:referenceOf:) needs a convolution as node 0")
        }
        let d = inputSize, g = WindowGeometry(convolution: c, input: shapes[0])
        let C = g.channels, H = g.height, W = g.width, O = c.outChannels
        let OH = g.outHeight, OW = g.outWidth, plane = OH * OW, outSize = O * plane
        // Node 0 of each reference once (by the node's own path, Winograd included).
        var referenceOutputs: [Int: [Float]] = [:]
        let first = uninitializedFloats(rows * outSize) { y in
            x.withUnsafeBufferPointer { xb in
                for r in 0..<rows {
                    let row = xb.baseAddress! + r * d, yr = y + r * outSize, base: UnsafePointer<Float>
                    switch referenceOf(r) {
                    case .reference(let ref):
                        base = references + ref * d
                        if referenceOutputs[ref] == nil {
                            referenceOutputs[ref] = apply(layer: 0, to: Array(UnsafeBufferPointer(start: base, count: d)), rows: 1, argmax: nil)
                        }
                        referenceOutputs[ref]!.withUnsafeBufferPointer { yr.update(from: $0.baseAddress!, count: outSize) }
                    case .previousRow:
                        precondition(r > 0, "row 0 has no previous row")
                        base = row - d
                        yr.update(from: yr - outSize, count: outSize)
                    }
                    // The box of input rows and columns where the row differs from its reference.
                    var h0 = H, h1 = -1, w0 = W, w1 = -1
                    for ch in 0..<C {
                        for h in 0..<H {
                            let off = (ch * H + h) * W
                            for w in 0..<W where row[off + w].bitPattern != base[off + w].bitPattern {
                                h0 = min(h0, h); h1 = max(h1, h); w0 = min(w0, w); w1 = max(w1, w)
                            }
                        }
                    }
                    guard h1 >= 0 else { continue }
                    // Outputs whose windows meet the box, per dimension: o·s − p ≤ hi and o·s − p + (k − 1)·d ≥ lo.
                    func affected(_ lo: Int, _ hi: Int, s: Int, p: Int, k: Int, dil: Int, out: Int) -> (Int, Int) {
                        let a = lo + p - (k - 1) * dil
                        let low = a <= 0 ? 0 : (a + s - 1) / s
                        return (low, min(out - 1, (hi + p) / s))
                    }
                    let (oh0, oh1) = affected(h0, h1, s: g.sh, p: g.ph, k: g.kh, dil: g.dh, out: OH)
                    let (ow0, ow1) = affected(w0, w1, s: g.sw, p: g.pw, k: g.kw, dil: g.dw, out: OW)
                    guard oh0 <= oh1, ow0 <= ow1 else { continue }
                    // The crop those outputs read (zero outside the image), convolved without padding.
                    let top = oh0 * g.sh - g.ph, left = ow0 * g.sw - g.pw
                    let ch = (oh1 - oh0) * g.sh + (g.kh - 1) * g.dh + 1, cw = (ow1 - ow0) * g.sw + (g.kw - 1) * g.dw + 1
                    let crop = [Float](unsafeUninitializedCapacity: C * ch * cw) { buffer, initialized in
                        let out = buffer.baseAddress!
                        for k in 0..<C {
                            for i in 0..<ch {
                                let h = top + i, dst = out + (k * ch + i) * cw
                                guard h >= 0 && h < H else { dst.update(repeating: 0, count: cw); continue }
                                for j in 0..<cw {
                                    let w = left + j
                                    dst[j] = w >= 0 && w < W ? row[(k * H + h) * W + w] : 0
                                }
                            }
                        }
                        initialized = C * ch * cw
                    }
                    let is1D = c.kernel.count == 1
                    let cropGeometry = WindowGeometry(shape: is1D ? [C, cw] : [C, ch, cw], kernel: c.kernel, stride: c.stride,
                                                      padding: c.padding.map { _ in 0 }, dilation: c.dilation)
                    let part = convolve(c, cropGeometry, crop, rows: 1)
                    let bh = oh1 - oh0 + 1, bw = ow1 - ow0 + 1
                    part.withUnsafeBufferPointer { pb in
                        for o in 0..<O {
                            for i in 0..<bh {
                                (yr + o * plane + (oh0 + i) * OW + ow0).update(from: pb.baseAddress! + (o * bh + i) * bw, count: bw)
                            }
                        }
                    }
                }
            }
        }
        guard let k = bandedConvolution else { return forward(first, rows: rows, from: 1, to: layers.count) }
        let mid = forward(first, rows: rows, from: 1, to: k)
        let referenceMids = referenceOutputs.mapValues { forward($0, rows: 1, from: 1, to: k) }
        let banded = convolve(layer: k, mid, rows: rows, nearReferences: referenceMids, referenceOf: referenceOf)
        return forward(banded, rows: rows, from: k + 1, to: layers.count)
    }

    /// The node k > 1 that ``forward(_:rows:nearReferences:referenceOf:)`` runs by bands: the first node after
    /// node 0 that is not elementwise or pooling, when it is a 2-D convolution that runs by kernel rows and
    /// nodes 1...k form a chain (each reads only the one before it, and nothing later reads further back).
    var bandedConvolution: Int? {
        guard sharesFirstConvolution else { return nil }
        for k in 1..<layers.count {
            guard inputs[k] == [k], cut[k], cut[k + 1] else { return nil }
            switch layers[k] {
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .maxPool2d, .avgPool2d, .batchNorm, .dropout:
                continue
            case .conv2d(let c):
                return WindowGeometry(convolution: c, input: shapes[k]).kernelRows != nil ? k : nil
            case .dense, .conv1d, .maxPool1d, .avgPool1d, .globalAvgPool, .flatten, .reshape, .softmax, .add, .concat,
                 .embedding, .lstm:
                return nil
            }
        }
        return nil
    }

    /// Node k (a 2-D convolution by kernel rows) of `rows` inputs `a`, row r near its reference's input (in
    /// `referenceInputs`, or row r − 1 of `a`): the reference's output plus, per kernel row i, Wᵢ times the
    /// difference's row-unrolled band over the output rows that band reaches (see the extension's note).
    private func convolve(layer k: Int, _ a: [Float], rows: Int, nearReferences referenceInputs: [Int: [Float]],
                          referenceOf: (Int) -> PerturbationReference) -> [Float] {
        guard case .conv2d(let c) = layers[k] else { preconditionFailure("node \(k) is not a 2-D convolution") }
        let g = WindowGeometry(convolution: c, input: shapes[k])
        let C = g.channels, H = g.height, W = g.width, O = c.outChannels, OH = g.outHeight, OW = g.outWidth
        let P = g.outputPlane, inSize = g.inputSize, outSize = O * P, Kr = C * g.kw
        let byRow = c.weightsByKernelRow(kh: g.kh, kw: g.kw)
        let referenceOutputs = referenceInputs.mapValues { apply(layer: k, to: $0, rows: 1, argmax: nil) }
        return uninitializedFloats(rows * outSize) { y in
            a.withUnsafeBufferPointer { ab in
                byRow.withUnsafeBufferPointer { w in
                    for r in 0..<rows {
                        let yr = y + r * outSize, row = ab.baseAddress! + r * inSize
                        // Adds Wᵢ times the band where the row differs from `base`, its reference's input.
                        func addBand(from base: UnsafePointer<Float>) {
                            var r0 = H, r1 = -1
                            for ch in 0..<C {
                                for h in 0..<H where h < r0 || h > r1 {
                                    let off = (ch * H + h) * W
                                    for j in 0..<W where row[off + j].bitPattern != base[off + j].bitPattern {
                                        r0 = min(r0, h); r1 = max(r1, h)
                                        break
                                    }
                                }
                            }
                            guard r1 >= 0 else { return }
                            let bandRows = r1 - r0 + 1
                            let difference = uninitializedFloats(C * bandRows * W) { dp in
                                for ch in 0..<C {
                                    let off = (ch * H + r0) * W, count = bandRows * W
                                    for j in 0..<count { dp[ch * count + j] = row[off + j] - base[off + j] }
                                }
                            }
                            let band = WindowGeometry(shape: [C, bandRows, W], kernel: [1, g.kw], stride: [1, 1], padding: [0, 0],
                                                      dilation: [1, 1])
                            let unrolled = uninitializedFloats(Kr * band.outputPlane) { up in
                                difference.withUnsafeBufferPointer { band.im2col($0.baseAddress!, rows: 1, into: up) }
                            }
                            unrolled.withUnsafeBufferPointer { up in
                                for i in 0..<g.kh {
                                    // Output rows oh with oh + i in r0...r1.
                                    let lo = max(0, r0 - i), hi = min(OH - 1, r1 - i)
                                    guard lo <= hi else { continue }
                                    BLAS.sgemm(m: O, n: (hi - lo + 1) * OW, k: Kr, a: w.baseAddress! + i * O * Kr,
                                               b: up.baseAddress! + (lo + i - r0) * OW, ldb: band.outputPlane, beta: 1,
                                               c: yr + lo * OW, ldc: P)
                                }
                            }
                        }
                        switch referenceOf(r) {
                        case .reference(let ref):
                            referenceOutputs[ref]!.withUnsafeBufferPointer { yr.update(from: $0.baseAddress!, count: outSize) }
                            referenceInputs[ref]!.withUnsafeBufferPointer { addBand(from: $0.baseAddress!) }
                        case .previousRow:
                            precondition(r > 0, "row 0 has no previous row")
                            yr.update(from: yr - outSize, count: outSize)
                            addBand(from: row - inSize)
                        }
                    }
                }
            }
        }
    }
}
