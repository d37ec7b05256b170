import CKernels

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

    /// Output planes of at least this many positions make convolutions run one GEMM per example, writing
    /// NCHW directly (see `Network.convolve`). Per-example calls repack W each time, an overhead that grows
    /// as 1/P, so smaller planes keep one GEMM over the whole chunk plus a copy (per-example GEMMs measured
    /// no more instructions at P = 64, the CIFAR ResNet's smallest plane; smaller P was not measured).
    static let perExampleGEMMPlane = 64

    /// The row-unrolled form of a dense 2-D window with several kernel rows and at least 16 entries per
    /// kernel row (C·kw): the convolution runs from the patch matrix of a 1 × kw window over all H input rows,
    /// R (C·kw × H·outW), R[(c, j), r·outW + ow] = x[c, r, ow + j]. Output p = oh·outW + ow under kernel row
    /// i reads R's column (oh + i)·outW + ow = i·outW + p, so Y = Σᵢ Wᵢ · R[:, i·outW ..< i·outW + P], kh
    /// GEMMs reading R in place (ldb = H·outW), with Wᵢ (O × C·kw) kernel row i's weights. R is kh·outH/H
    /// times smaller than im2col's matrix (the benchmark CNN's second layer: 30 KB instead of 100 KB, in L1),
    /// and its col2im adds kh times fewer entries. Nil for other windows.
    var kernelRows: WindowGeometry? {
        guard isDenseWindow, kh > 1, channels * kw >= 16 else { return nil }
        return WindowGeometry(shape: [channels, height, width], kernel: [1, kw], stride: [1, 1], padding: [0, 0], dilation: [1, 1])
    }

    var inputPlane: Int { height * width }
    var outputPlane: Int { outHeight * outWidth }
    var inputSize: Int { channels * inputPlane }
    /// Columns of the im2col matrix: C·kh·kw.
    var patchSize: Int { channels * kh * kw }

    /// Stride 1, no padding, no dilation: the common case im2col/col2im handle without bounds checks.
    var isDenseWindow: Bool { sh == 1 && sw == 1 && ph == 0 && pw == 0 && dh == 1 && dw == 1 }

    /// Calls `body(k, c, i, j)` for each patch entry k = (c·kh + i)·kw + j.
    @inline(__always)
    private func forEachPatchEntry(_ body: (Int, Int, Int, Int) -> Void) {
        var k = 0
        for c in 0..<channels { for i in 0..<kh { for j in 0..<kw { body(k, c, i, j); k += 1 } } }
    }

    /// Stride 1 and an output row as wide as the input row (padding `dw·(kw − 1) / 2` on each side, the
    /// "same" convolution): a patch entry then shifts the whole plane by one offset, so its valid part is one
    /// contiguous run in both the input and the patch row, except for the columns that wrap into a
    /// neighbouring row, which im2col and col2im set to zero.
    var isSameWidthStrideOne: Bool { sh == 1 && sw == 1 && outWidth == width }

    /// Outputs o (of `count`) whose input position o·stride + shift lies inside [0, extent).
    @inline(__always)
    private static func valid(shift: Int, stride: Int, extent: Int, count: Int) -> Range<Int> {
        let first = shift >= 0 ? 0 : (-shift + stride - 1) / stride
        let limit = extent - shift  // need o·stride < limit
        let last = limit <= 0 ? 0 : min(count, (limit + stride - 1) / stride)
        return first..<max(first, last)
    }

    /// Range of output columns ow whose input column ow·sw − pw + j·dw lies inside [0, width).
    @inline(__always)
    private func validColumns(_ j: Int) -> Range<Int> {
        Self.valid(shift: j * dw - pw, stride: sw, extent: width, count: outWidth)
    }

    /// Range of output rows oh whose input row oh·sh − ph + i·dh lies inside [0, height).
    @inline(__always)
    private func validRows(_ i: Int) -> Range<Int> {
        Self.valid(shift: i * dh - ph, stride: sh, extent: height, count: outHeight)
    }

    /// For a same-width stride-1 patch entry with valid `rowsIn` × `columnsIn` (both non-empty): the run
    /// `first..<last` of the flattened output plane between its first and last valid entries.
    @inline(__always)
    private func run(rows rowsIn: Range<Int>, columns columnsIn: Range<Int>) -> Range<Int> {
        (rowsIn.lowerBound * outWidth + columnsIn.lowerBound)..<((rowsIn.upperBound - 1) * outWidth + columnsIn.upperBound)
    }

    /// Sets to zero the wrapped entries inside the run of a same-width patch entry: between row oh's last
    /// valid column and row oh + 1's first lie `outWidth − columnsIn.count` entries (usually one: a loop the
    /// compiler does not turn into a memset call per row).
    @inline(__always)
    private func zeroWrapped(_ dst: UnsafeMutablePointer<Float>, rows rowsIn: Range<Int>, columns columnsIn: Range<Int>) {
        let gap = outWidth - columnsIn.count
        guard gap > 0 else { return }
        var at = rowsIn.lowerBound * outWidth + columnsIn.upperBound
        for _ in rowsIn.dropLast() {
            if gap == 1 { dst[at] = 0 } else { (dst + at).update(repeating: 0, count: gap) }
            at += outWidth
        }
    }

    /// The patch matrix in "K × (rows·P)" layout: entry (k, n·P + p) is the input under patch position
    /// k = (c, i, j) of output position p of example n (zero over the padding). Then the convolution of the
    /// whole chunk is one GEMM `W (O×K) · cols`, and runs of output columns copy contiguously.
    func im2col(_ x: UnsafePointer<Float>, rows: Int, into cols: UnsafeMutablePointer<Float>) {
        let P = outputPlane, columns = rows * P
        if isDenseWindow {
            // Stride 1, no padding, no dilation: every run is a whole output row read straight from the input
            // (CKernels copies each input row's kw shifted runs while it is in L1).
            swiftattr_im2col_dense(x, rows, inputSize, channels, height, width, kh, kw, outHeight, outWidth, cols, columns)
            return
        }
        if sw == 2 {
            // Column stride 2 (the strided 3×3 and 1×1 convolutions): CKernels splits each channel plane into
            // its even and odd columns once, and every patch row copies contiguous runs of one of them.
            var scratch = uninitializedFloats(inputPlane) { _ in }
            scratch.withUnsafeMutableBufferPointer { sp in
                for c in 0..<channels {
                    for n in 0..<rows {
                        swiftattr_im2col_stride2(x + n * inputSize + c * inputPlane, height, width, kh, kw, sh, ph, pw, dh, dw,
                                                 outHeight, outWidth, cols + c * kh * kw * columns + n * P, columns, sp.baseAddress!)
                    }
                }
            }
            return
        }
        let sameWidth = isSameWidthStrideOne
        forEachPatchEntry { k, c, i, j in
            let validW = validColumns(j), validH = validRows(i)
            let shiftW = j * dw - pw, shiftH = i * dh - ph
            for n in 0..<rows {
                let xc = x + n * inputSize + c * inputPlane
                let dst = cols + k * columns + n * P
                guard !validW.isEmpty, !validH.isEmpty else { dst.update(repeating: 0, count: P); continue }
                if sameWidth {
                    // One run from the first valid entry of the first valid row to the last valid entry of the
                    // last one (input offset shiftH·width + shiftW throughout), then the wrapped columns zeroed.
                    let r = run(rows: validH, columns: validW)
                    let d = dst + r.lowerBound, s = xc + (r.lowerBound + shiftH * width + shiftW)
                    for p in 0..<r.count { d[p] = s[p] }
                    zeroWrapped(dst, rows: validH, columns: validW)
                    dst.update(repeating: 0, count: r.lowerBound)
                    (dst + r.upperBound).update(repeating: 0, count: P - r.upperBound)
                    continue
                }
                // Padded or strided windows: CKernels gathers the rows.
                swiftattr_im2col_plane(xc, width, outHeight, outWidth, sh, sw, shiftH, shiftW,
                                       validH.lowerBound, validH.upperBound, validW.lowerBound, validW.upperBound, dst)
            }
        }
    }

    /// The adjoint of ``im2col(_:rows:into:)``: sums every patch entry back onto `rows` inputs, overwriting
    /// `dx`. `cols` is scratch: the same-width stride-1 path zeroes its entries over the padding (which
    /// contribute nothing) so that each patch entry adds as one contiguous run.
    func col2im(_ cols: UnsafeMutablePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        let P = outputPlane, columns = rows * P
        if isSameWidthStrideOne {
            // Each plane's first patch entry (i = j = 0) writes instead of adding: the run covers its valid
            // inputs, the zeroed wrapped entries write the inputs it does not reach inside the run, and the
            // rest of the plane is zeroed. The order of the sums is that of zero-fill-then-add.
            forEachPatchEntry { k, c, i, j in
                let validW = validColumns(j), validH = validRows(i)
                let offset = (i * dh - ph) * width + (j * dw - pw)
                let isFirst = i == 0 && j == 0
                for n in 0..<rows {
                    let dxc = dx + n * inputSize + c * inputPlane
                    let src = cols + k * columns + n * P
                    guard !validW.isEmpty, !validH.isEmpty else {
                        if isFirst { dxc.update(repeating: 0, count: inputPlane) }
                        continue
                    }
                    zeroWrapped(src, rows: validH, columns: validW)
                    let r = run(rows: validH, columns: validW)
                    let s = src + r.lowerBound, d = dxc + (r.lowerBound + offset)
                    if isFirst {
                        dxc.update(repeating: 0, count: r.lowerBound + offset)
                        for p in 0..<r.count { d[p] = s[p] }
                        let end = r.upperBound + offset
                        (dxc + end).update(repeating: 0, count: inputPlane - end)
                    } else {
                        for p in 0..<r.count { d[p] += s[p] }
                    }
                }
            }
            return
        }
        if sw == 2 {
            // The adjoint of im2col's stride-2 path, summing in patch order (the order of the loop below).
            var scratch = uninitializedFloats(inputPlane) { _ in }
            scratch.withUnsafeMutableBufferPointer { sp in
                for c in 0..<channels {
                    for n in 0..<rows {
                        swiftattr_col2im_stride2(cols + c * kh * kw * columns + n * P, height, width, kh, kw, sh, ph, pw, dh, dw,
                                                 outHeight, outWidth, columns, dx + n * inputSize + c * inputPlane, sp.baseAddress!)
                    }
                }
            }
            return
        }
        dx.update(repeating: 0, count: rows * inputSize)
        if isDenseWindow {
            forEachPatchEntry { k, c, i, j in
                for n in 0..<rows {
                    let dst = dx + n * inputSize + c * inputPlane + i * width + j
                    let src = cols + k * columns + n * P
                    for oh in 0..<outHeight {
                        let d = dst + oh * width, s = src + oh * outWidth
                        for ow in 0..<outWidth { d[ow] += s[ow] }
                    }
                }
            }
            return
        }
        forEachPatchEntry { k, c, i, j in
            let validW = validColumns(j), validH = validRows(i)
            guard !validW.isEmpty else { return }
            let shiftW = j * dw - pw, shiftH = i * dh - ph
            for n in 0..<rows {
                swiftattr_col2im_plane(cols + k * columns + n * P, width, outWidth, sh, sw, shiftH, shiftW,
                                       validH.lowerBound, validH.upperBound, validW.lowerBound, validW.upperBound,
                                       dx + n * inputSize + c * inputPlane)
            }
        }
    }

    /// Max over each window of one channel plane (positions in the padding are skipped, i.e. −∞);
    /// `argmax` (if given) receives the in-plane index of each window's first maximum.
    @inline(__always)
    func maxPool(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, offset: Int32) {
        if ph == 0 && pw == 0 && kh == 2 && kw == 2 && dh == 1 && dw == 1 {
            // The common 2×2 window (CKernels); ties keep the first position in row-major order.
            swiftattr_maxpool2x2_plane(x, width, outHeight, outWidth, sh, sw, y, argmax, offset)
            return
        }
        if ph == 0 && pw == 0 {
            // Every window lies inside the input: no bounds checks.
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    let corner = oh * sh * width + ow * sw
                    var best = x[corner], at = corner
                    for i in 0..<kh {
                        let row = corner + i * dh * width
                        for j in 0..<kw where x[row + j * dw] > best {
                            best = x[row + j * dw]
                            at = row + j * dw
                        }
                    }
                    y[oh * outWidth + ow] = best
                    argmax?[oh * outWidth + ow] = offset + Int32(at)
                }
            }
            return
        }
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                var best = -Float.infinity, at = -1
                for i in 0..<kh {
                    let ih = oh * sh - ph + i * dh
                    guard ih >= 0 && ih < height else { continue }
                    for j in 0..<kw {
                        let iw = ow * sw - pw + j * dw
                        guard iw >= 0 && iw < width else { continue }
                        let v = x[ih * width + iw]
                        if at < 0 || v > best { best = v; at = ih * width + iw }
                    }
                }
                y[oh * outWidth + ow] = best
                argmax?[oh * outWidth + ow] = offset + Int32(at)
            }
        }
    }

    /// Sum over each window of one channel plane times `scale` (padding contributes zeros).
    @inline(__always)
    func sumPool(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, scale: Float) {
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                var sum: Float = 0
                for i in 0..<kh {
                    let ih = oh * sh - ph + i * dh
                    guard ih >= 0 && ih < height else { continue }
                    for j in 0..<kw {
                        let iw = ow * sw - pw + j * dw
                        guard iw >= 0 && iw < width else { continue }
                        sum += x[ih * width + iw]
                    }
                }
                y[oh * outWidth + ow] = sum * scale
            }
        }
    }

    /// Adjoint of ``sumPool(_:_:scale:)``: adds `scale·dy[o]` to every input position of window o.
    @inline(__always)
    func sumPoolAdjoint(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, scale: Float) {
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                let share = dy[oh * outWidth + ow] * scale
                for i in 0..<kh {
                    let ih = oh * sh - ph + i * dh
                    guard ih >= 0 && ih < height else { continue }
                    for j in 0..<kw {
                        let iw = ow * sw - pw + j * dw
                        guard iw >= 0 && iw < width else { continue }
                        dx[ih * width + iw] += share
                    }
                }
            }
        }
    }
}
