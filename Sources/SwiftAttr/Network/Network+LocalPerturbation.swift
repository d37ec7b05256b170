/// Forward passes of inputs that differ from a reference input only inside a small box — an occluded
/// window, an ablated feature — when the network starts with a convolution.
///
/// A convolution's output at position o depends only on the inputs under its window, so y(x̃) = y(x)
/// except at the outputs whose windows meet the box where x̃ ≠ x. Those are recomputed from a crop of x̃
/// (its rows o₀·s − p ..< o₁·s − p + (k − 1)·d + 1, zero outside the image): a convolution of the crop
/// without padding gives exactly the outputs o₀…o₁ along each dimension. The rest is copied from the
/// reference's output, computed once per example. Which outputs are recomputed depends only on the row and
/// its reference, never on how rows are chunked, so results do not depend on chunks or threads.
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

    /// The outputs of `rows` inputs (`x`, rows × inputSize) where row r is close to reference row
    /// `referenceOf(r)` of `references`: node 0 from the reference's output plus the outputs whose windows
    /// meet the changed box (see the extension's note), the other nodes as in ``forward(_:rows:)``. Equal
    /// to ``forward(_:rows:)`` up to float32 rounding (the recomputed outputs come from a GEMM of another
    /// shape). Requires ``sharesFirstConvolution``.
    func forward(_ x: [Float], rows: Int, nearReferences references: UnsafePointer<Float>, referenceOf: (Int) -> Int) -> [Float] {
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
                    let ref = referenceOf(r), row = xb.baseAddress! + r * d, base = references + ref * d
                    if referenceOutputs[ref] == nil {
                        referenceOutputs[ref] = apply(layer: 0, to: Array(UnsafeBufferPointer(start: base, count: d)), rows: 1, argmax: nil)
                    }
                    let yr = y + r * outSize
                    referenceOutputs[ref]!.withUnsafeBufferPointer { yr.update(from: $0.baseAddress!, count: outSize) }
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
        return forward(first, rows: rows, from: 1, to: layers.count)
    }
}
