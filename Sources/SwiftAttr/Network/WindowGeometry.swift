/// The geometry of a sliding window over `[C, H, W]` (1-D layers use H = 1 and a 1×k window), shared by
/// convolutions and pooling: im2col/col2im and window iteration live here once.
struct WindowGeometry {
    let channels: Int
    let height: Int, width: Int
    let kh: Int, kw: Int
    let sh: Int, sw: Int
    let ph: Int, pw: Int
    let dh: Int, dw: Int
    let outHeight: Int, outWidth: Int

    /// Geometry for per-example input `shape` (`[C, L]` or `[C, H, W]`) and 1- or 2-entry parameters.
    init(shape: [Int], kernel: [Int], stride: [Int], padding: [Int], dilation: [Int]) {
        channels = shape[0]
        if kernel.count == 1 {
            height = 1; width = shape[1]
            kh = 1; kw = kernel[0]; sh = 1; sw = stride[0]; ph = 0; pw = padding[0]; dh = 1; dw = dilation[0]
        } else {
            height = shape[1]; width = shape[2]
            kh = kernel[0]; kw = kernel[1]; sh = stride[0]; sw = stride[1]
            ph = padding[0]; pw = padding[1]; dh = dilation[0]; dw = dilation[1]
        }
        outHeight = (height + 2 * ph - dh * (kh - 1) - 1) / sh + 1
        outWidth = (width + 2 * pw - dw * (kw - 1) - 1) / sw + 1
    }

    init(convolution c: Layer.Convolution, input shape: [Int]) {
        self.init(shape: shape, kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
    }

    init(pooling p: Layer.Pooling, input shape: [Int]) {
        self.init(shape: shape, kernel: p.kernel, stride: p.stride, padding: p.padding, dilation: p.kernel.map { _ in 1 })
    }

    var inputPlane: Int { height * width }
    var outputPlane: Int { outHeight * outWidth }
    var inputSize: Int { channels * inputPlane }
    /// Columns of the im2col matrix: C·kh·kw.
    var patchSize: Int { channels * kh * kw }

    /// Writes, for `rows` examples, the patch matrix of shape (rows·outputPlane) × patchSize: row
    /// (n, oh, ow) holds the input values under the window at (oh, ow), zero where it hangs over the padding.
    func im2col(_ x: UnsafePointer<Float>, rows: Int, into cols: UnsafeMutablePointer<Float>) {
        let P = outputPlane, K = patchSize
        parallelFor(rows) { n in
            let xn = x + n * inputSize
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var dst = cols + (n * P + oh * outWidth + ow) * K
                    for c in 0..<channels {
                        let xc = xn + c * inputPlane
                        for i in 0..<kh {
                            let ih = oh * sh - ph + i * dh
                            if ih < 0 || ih >= height {
                                dst.update(repeating: 0, count: kw)
                                dst += kw
                                continue
                            }
                            let row = xc + ih * width
                            for j in 0..<kw {
                                let iw = ow * sw - pw + j * dw
                                dst.pointee = (iw >= 0 && iw < width) ? row[iw] : 0
                                dst += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of ``im2col``: scatters-adds the patch matrix back onto `rows` zero-initialised inputs.
    func col2im(_ cols: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        let P = outputPlane, K = patchSize
        parallelFor(rows) { n in
            let dxn = dx + n * inputSize
            dxn.update(repeating: 0, count: inputSize)
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var src = cols + (n * P + oh * outWidth + ow) * K
                    for c in 0..<channels {
                        let dxc = dxn + c * inputPlane
                        for i in 0..<kh {
                            let ih = oh * sh - ph + i * dh
                            if ih < 0 || ih >= height { src += kw; continue }
                            let row = dxc + ih * width
                            for j in 0..<kw {
                                let iw = ow * sw - pw + j * dw
                                if iw >= 0 && iw < width { row[iw] += src.pointee }
                                src += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls `body(outputIndex, inputIndices)` for every output position of one channel plane, with the
    /// in-plane indices of the window's positions that lie inside the input (padding excluded).
    @inline(__always)
    func forEachWindow(_ body: (Int, UnsafeBufferPointer<Int32>) -> Void) {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: kh * kw) { buffer in
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var count = 0
                    for i in 0..<kh {
                        let ih = oh * sh - ph + i * dh
                        guard ih >= 0 && ih < height else { continue }
                        for j in 0..<kw {
                            let iw = ow * sw - pw + j * dw
                            guard iw >= 0 && iw < width else { continue }
                            buffer[count] = Int32(ih * width + iw)
                            count += 1
                        }
                    }
                    body(oh * outWidth + ow, UnsafeBufferPointer(rebasing: buffer[0..<count]))
                }
            }
        }
    }

    /// Window index lists for a whole plane, computed once: `windows[o]` are the input positions of output `o`.
    func windows() -> [[Int32]] {
        var result = [[Int32]](repeating: [], count: outputPlane)
        forEachWindow { o, idx in result[o] = Array(idx) }
        return result
    }
}
