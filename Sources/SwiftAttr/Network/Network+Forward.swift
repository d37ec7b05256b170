/// Batched forward evaluation, node by node, as GEMMs (im2col for convolutions).
extension Network {
    /// The values of nodes `start..<end` for one chunk of `rows` examples, kept for a pullback.
    struct Tape {
        let start: Int
        let end: Int
        let rows: Int
        /// `values[v − start]`: value v (in a chain, the input of layer v); `values[end − start]`: the output.
        var values: [[Float]]
        /// Per recorded node (index `i − start`): for max-pooling, the flat in-example index of each
        /// output's argmax.
        var argmax: [[Int32]]
        /// Per recorded node (index `i − start`): for an LSTM, its step record (``Network/lstmForward``), one
        /// row of 10H floats per (example n, step t), row n·L + t:
        ///
        ///     [ z_i z_f z_g z_o | i f g o | c_t | h_t ]   (each block H floats)
        ///
        /// z: the gate pre-activations W_ih x_t + W_hh h_{t−1} + b_ih + b_hh; i, f, o = σ(z), g = tanh(z_g);
        /// the cell and hidden states after step t (c_{t−1} is the row before, zero at t = 0). Empty for
        /// every other kind. The pullback, DeepLIFT and Contextual Decomposition read it.
        var steps: [[Float]] = []
        /// The values below `start` the recorded nodes read, when `start` is not a cut (a layer attribution's
        /// walk from an interior value; ``Network/walkForward``'s `given`).
        var given: [Int: [Float]] = [:]

        var output: [Float] { values[values.count - 1] }
        /// Value `v`.
        func value(_ v: Int) -> [Float] { v >= start ? values[v - start] : given[v]! }
    }

    /// Output of the network for `rows` examples (`x`: rows × inputSize).
    public func forward(_ x: [Float], rows: Int) -> [Float] {
        forward(x, rows: rows, from: 0, to: layers.count)
    }

    /// Runs nodes `start..<end` on `x` (rows × size(at: start), value `start`, a cut) and returns value
    /// `end`, releasing every other value once nothing more reads it.
    func forward(_ x: [Float], rows: Int, from start: Int, to end: Int) -> [Float] {
        walkForward(x, from: start, to: end, keep: false) { i, reads in
            applyNode(i, reads, rows: rows, argmax: nil)
        }[end - start]!
    }

    /// Runs nodes `start..<end` keeping every value for ``pullback(_:cotangent:)``; `given`: the earlier
    /// values the nodes read when `start` is not a cut (see ``walkForward``); `computed`: a node whose
    /// output the caller has already computed, used as given (a Dense layer or convolution: nothing else is
    /// recorded for it).
    func record(_ x: [Float], rows: Int, from start: Int = 0, to end: Int? = nil, given: [Int: [Float]] = [:],
                computed: (node: Int, output: [Float])? = nil) -> Tape {
        let end = end ?? layers.count
        var argmax = [[Int32]](repeating: [], count: end - start)
        var steps = [[Float]](repeating: [], count: end - start)
        let values = walkForward(x, from: start, to: end, keep: true, given: given) { i, reads -> [Float] in
            if let computed, computed.node == i { return computed.output }
            switch layers[i] {
            case .lstm(let l):
                var record: [Float]? = []
                let y = lstmForward(l, reads[0], rows: rows, length: shapes[input(of: i)][0], record: &record)
                steps[i - start] = record!
                return y
            case .maxPool1d, .maxPool2d:
                let (y, positions) = applyRecordingArgmax(i, reads, rows: rows)
                argmax[i - start] = positions
                return y
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding:
                return applyNode(i, reads, rows: rows, argmax: nil)
            }
        }
        return Tape(start: start, end: end, rows: rows, values: values.map { $0 ?? [] }, argmax: argmax, steps: steps, given: given)
    }

    /// Node `i` applied to the values it reads (`reads`, in the order of ``inputs``).
    /// A max-pool node's output and the input position of every output's maximum (recorded for pullbacks).
    func applyRecordingArgmax(_ i: Int, _ reads: [[Float]], rows: Int) -> (output: [Float], argmax: [Int32]) {
        var positions = [Int32](repeating: 0, count: rows * size(at: i + 1))
        let y = positions.withUnsafeMutableBufferPointer { applyNode(i, reads, rows: rows, argmax: $0.baseAddress) }
        return (y, positions)
    }

    func applyNode(_ i: Int, _ reads: [[Float]], rows: Int, argmax: UnsafeMutablePointer<Int32>?) -> [Float] {
        switch layers[i] {
        case .add:
            var sum = reads[0]
            for r in reads.dropFirst() { addInPlace(&sum, r) }
            return sum
        case .concat:
            let parts = inputs[i].map { size(at: $0) }, total = size(at: i + 1)
            return uninitializedFloats(rows * total) { y in
                for n in 0..<rows {
                    var offset = n * total
                    for (part, r) in zip(parts, reads) {
                        r.withUnsafeBufferPointer { (y + offset).update(from: $0.baseAddress! + n * part, count: part) }
                        offset += part
                    }
                }
            }
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm:
            return apply(layer: i, to: reads[0], rows: rows, argmax: argmax)
        }
    }

    /// Single-input node `i` applied to `rows` examples of the value it reads; for max-pooling, `argmax`
    /// (if given) receives the winners. Multi-input nodes go through ``applyNode(_:_:rows:argmax:)``.
    func apply(layer i: Int, to x: [Float], rows: Int, argmax: UnsafeMutablePointer<Int32>?) -> [Float] {
        let inShape = shapes[input(of: i)]
        let inSize = size(at: input(of: i)), outSize = size(at: i + 1)
        let count = rows * outSize
        switch layers[i] {
        case .flatten, .reshape, .dropout:
            return x
        case .dense(let d):
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    d.weight.withUnsafeBufferPointer { w in
                        for r in 0..<rows { (y + r * outSize).update(from: d.bias, count: outSize) }
                        BLAS.sgemm(transB: true, m: rows, n: d.outFeatures, k: d.inFeatures,
                                   a: xp.baseAddress!, b: w.baseAddress!, beta: 1, c: y)
                    }
                }
            }
        case .conv1d(let c), .conv2d(let c):
            let g = WindowGeometry(convolution: c, input: inShape)
            if let filters = convolutionPlans[i]?.forward { return Winograd.forward(filters, g, x, bias: c.bias, rows: rows) }
            return convolve(c, g, x, rows: rows)
        case .maxPool1d(let p), .maxPool2d(let p):
            let g = WindowGeometry(pooling: p, input: inShape)
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    for nc in 0..<(rows * g.channels) {
                        g.maxPool(xp.baseAddress! + nc * g.inputPlane, y + nc * g.outputPlane,
                                  argmax: argmax.map { $0 + nc * g.outputPlane }, offset: Int32((nc % g.channels) * g.inputPlane))
                    }
                }
            }
        case .avgPool1d(let p), .avgPool2d(let p):
            let g = WindowGeometry(pooling: p, input: inShape)
            let scale = 1 / Float(g.kh * g.kw)
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    for nc in 0..<(rows * g.channels) {
                        g.sumPool(xp.baseAddress! + nc * g.inputPlane, y + nc * g.outputPlane, scale: scale)
                    }
                }
            }
        case .globalAvgPool:
            let plane = inSize / inShape[0]
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    for nc in 0..<(rows * inShape[0]) {
                        var sum: Float = 0
                        let base = xp.baseAddress! + nc * plane
                        for k in 0..<plane { sum += base[k] }
                        y[nc] = sum / Float(plane)
                    }
                }
            }
        case .batchNorm(let b):
            let plane = inSize / b.channels
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    for n in 0..<rows {
                        for c in 0..<b.channels {
                            let s = b.scale[c], t = b.shift[c]
                            let off = n * inSize + c * plane
                            for k in 0..<plane { y[off + k] = s * xp[off + k] + t }
                        }
                    }
                }
            }
        case .softmax:
            return Network.softmaxRows(x, rows: rows, width: inSize)
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            return Activation(layers[i])!.apply(x)
        case .embedding(let e):
            return embed(e, x, count: rows * inSize)
        case .lstm(let l):
            var none: [Float]? = nil
            return lstmForward(l, x, rows: rows, length: inShape[0], record: &none)
        case .add, .concat:
            preconditionFailure("\(layers[i].name) reads several values: applyNode applies it")
        }
    }

    /// The embedding rows of `count` ids. Entry points check the ids (``checkTokenIds(_:name:)``); an id
    /// that is not an integer in 0..<vocab (only reachable through the unchecked ``forward(_:rows:)``)
    /// gives a row of NaN, never an out-of-bounds read.
    /// Row-wise softmax of a rows × width matrix, shifted by each row's maximum (the Softmax node's forward).
    static func softmaxRows(_ x: [Float], rows: Int, width: Int) -> [Float] {
        uninitializedFloats(rows * width) { y in
            x.withUnsafeBufferPointer { xp in
                for n in 0..<rows {
                    let xi = xp.baseAddress! + n * width, yi = y + n * width
                    var m = -Float.infinity
                    for k in 0..<width { m = max(m, xi[k]) }
                    var sum: Float = 0
                    for k in 0..<width { yi[k] = _exp(xi[k] - m); sum += yi[k] }
                    let inv = 1 / sum
                    for k in 0..<width { yi[k] *= inv }
                }
            }
        }
    }

    func embed(_ e: Layer.Embedding, _ ids: [Float], count: Int) -> [Float] {
        let E = e.dimension
        return uninitializedFloats(count * E) { y in
            e.weight.withUnsafeBufferPointer { w in
                for k in 0..<count {
                    let v = ids[k]
                    if v >= 0, v < Float(e.vocabularySize), v.rounded(.towardZero) == v {
                        (y + k * E).update(from: w.baseAddress! + Int(v) * E, count: E)
                    } else {
                        (y + k * E).update(repeating: .nan, count: E)
                    }
                }
            }
        }
    }

    /// LSTM forward over `rows` sequences of `length` steps (`x`: rows × length × E). The input projection
    /// of every step is one GEMM over rows·length rows, X·W_ihᵀ + b (b = b_ih + b_hh); each step then adds
    /// h_{t−1}·W_hhᵀ for all rows with one GEMM and applies the gates. With `record` non-nil, the step
    /// record of ``Tape/steps`` (10H floats per row n·L + t) is written there, the GEMMs writing straight
    /// into its z columns. Returns rows × H (last state) or rows × length × H.
    func lstmForward(_ l: Layer.LSTM, _ x: [Float], rows N: Int, length L: Int, record: inout [Float]?) -> [Float] {
        let H = l.hiddenSize, E = l.inputSize, G = 4 * H
        let recording = record != nil
        let width = recording ? 10 * H : G
        var buffer = uninitializedFloats(N * L * width) { z in
            for r in 0..<(N * L) { (z + r * width).update(from: l.bias, count: G) }
            x.withUnsafeBufferPointer { xp in
                l.weightIH.withUnsafeBufferPointer { w in
                    BLAS.sgemm(transB: true, m: N * L, n: G, k: E, a: xp.baseAddress!, b: w.baseAddress!, beta: 1, c: z, ldc: width)
                }
            }
        }
        var h = [Float](repeating: 0, count: N * H), c = h
        var out = [Float](repeating: 0, count: l.returnSequences ? N * L * H : 0)
        buffer.withUnsafeMutableBufferPointer { bp in
            h.withUnsafeMutableBufferPointer { hp in
                c.withUnsafeMutableBufferPointer { cp in
                    out.withUnsafeMutableBufferPointer { op in
                        l.weightHH.withUnsafeBufferPointer { w in
                            let z0 = bp.baseAddress!, hs = hp.baseAddress!, cs = cp.baseAddress!
                            for t in 0..<L {
                                if t > 0 {
                                    BLAS.sgemm(transB: true, m: N, n: G, k: H, a: hs, b: w.baseAddress!, beta: 1,
                                               c: z0 + t * width, ldc: L * width)
                                }
                                for n in 0..<N {
                                    let z = z0 + (n * L + t) * width, hn = hs + n * H, cn = cs + n * H
                                    for j in 0..<H {
                                        let ig = Activation.sigmoid(z[j]), fg = Activation.sigmoid(z[H + j])
                                        let gg = _tanh(z[2 * H + j]), og = Activation.sigmoid(z[3 * H + j])
                                        let cell = fg * cn[j] + ig * gg
                                        let hidden = og * _tanh(cell)
                                        cn[j] = cell
                                        hn[j] = hidden
                                        if recording {
                                            z[G + j] = ig; z[G + H + j] = fg; z[G + 2 * H + j] = gg; z[G + 3 * H + j] = og
                                            z[8 * H + j] = cell; z[9 * H + j] = hidden
                                        }
                                    }
                                    if l.returnSequences { (op.baseAddress! + (n * L + t) * H).update(from: hn, count: H) }
                                }
                            }
                        }
                    }
                }
            }
        }
        if recording { record = buffer }
        return l.returnSequences ? out : h
    }

    /// Convolution as GEMMs on the im2col matrix `cols (K × rows·P)`. With large output planes, one GEMM per
    /// example `W (O×K) · cols[:, nP..<(n+1)P]` writes straight into that example's NCHW block, onto the bias
    /// already stored there (beta = 1): no product buffer, no copy pass. With small planes, where per-call
    /// overhead and repacking W would dominate, one GEMM over the whole chunk and a copy to NCHW with the bias.
    /// (Stride-1 3×3 convolutions with enough channels run by ``Winograd`` instead: see ``ConvolutionPlan``.)
    func convolve(_ c: Layer.Convolution, _ g: WindowGeometry, _ x: [Float], rows: Int) -> [Float] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
        if let r = g.kernelRows {
            // Per example: the row-unrolled patch matrix R, then one GEMM per kernel row onto the bias.
            let Kr = r.patchSize, ldr = r.outputPlane
            let byRow = c.weightsByKernelRow(kh: g.kh, kw: g.kw)
            var R = uninitializedFloats(Kr * ldr) { _ in }
            return uninitializedFloats(rows * O * P) { y in
                R.withUnsafeMutableBufferPointer { rp in
                    x.withUnsafeBufferPointer { xp in
                        byRow.withUnsafeBufferPointer { w in
                            for n in 0..<rows {
                                r.im2col(xp.baseAddress! + n * g.inputSize, rows: 1, into: rp.baseAddress!)
                                let yn = y + n * O * P
                                for o in 0..<O { (yn + o * P).update(repeating: c.bias[o], count: P) }
                                for i in 0..<g.kh {
                                    BLAS.sgemm(m: O, n: P, k: Kr, a: w.baseAddress! + i * O * Kr, b: rp.baseAddress! + i * g.outWidth,
                                               ldb: ldr, beta: 1, c: yn)
                                }
                            }
                        }
                    }
                }
            }
        }
        if rows == 1 || P >= WindowGeometry.perExampleGEMMPlane {
            // Per example: its patch matrix (K × P, in cache) and at once its GEMM. A patch matrix of the
            // whole chunk (K × rows·P, megabytes) would be written to memory and read back.
            var cols = uninitializedFloats(K * P) { _ in }
            return uninitializedFloats(rows * O * P) { y in
                cols.withUnsafeMutableBufferPointer { cp in
                    x.withUnsafeBufferPointer { xp in
                        c.weight.withUnsafeBufferPointer { w in
                            for n in 0..<rows {
                                g.im2col(xp.baseAddress! + n * g.inputSize, rows: 1, into: cp.baseAddress!)
                                let yn = y + n * O * P
                                for o in 0..<O { (yn + o * P).update(repeating: c.bias[o], count: P) }
                                BLAS.sgemm(m: O, n: P, k: K, a: w.baseAddress!, b: cp.baseAddress!, beta: 1, c: yn)
                            }
                        }
                    }
                }
            }
        }
        let cols = uninitializedFloats(K * columns) { cp in
            x.withUnsafeBufferPointer { g.im2col($0.baseAddress!, rows: rows, into: cp) }
        }
        let product = uninitializedFloats(O * columns) { t in
            cols.withUnsafeBufferPointer { cp in
                c.weight.withUnsafeBufferPointer { w in
                    BLAS.sgemm(m: O, n: columns, k: K, a: w.baseAddress!, b: cp.baseAddress!, c: t)
                }
            }
        }
        return uninitializedFloats(rows * O * P) { y in
            product.withUnsafeBufferPointer { t in
                for o in 0..<O {
                    let b = c.bias[o]
                    for n in 0..<rows {
                        let src = t.baseAddress! + o * columns + n * P, dst = y + (n * O + o) * P
                        for p in 0..<P { dst[p] = src[p] + b }
                    }
                }
            }
        }
    }
}

extension Layer.Convolution {
    /// The weights regrouped by kernel row for ``WindowGeometry/kernelRows``: Wᵢ (O × C·kw) at i·O·C·kw,
    /// Wᵢ[o, c·kw + j] = W[o, c, i, j].
    func weightsByKernelRow(kh: Int, kw: Int) -> [Float] {
        let O = outChannels, C = inChannels
        return uninitializedFloats(weight.count) { out in
            weight.withUnsafeBufferPointer { w in
                for o in 0..<O {
                    for c in 0..<C {
                        for i in 0..<kh {
                            (out + (i * O + o) * C * kw + c * kw).update(from: w.baseAddress! + ((o * C + c) * kh + i) * kw, count: kw)
                        }
                    }
                }
            }
        }
    }
}

/// Elementwise `f(x[i])` into a new array (a plain pointer loop the compiler vectorises).
@inline(__always)
func mapFloats(_ x: [Float], _ f: (Float) -> Float) -> [Float] {
    uninitializedFloats(x.count) { out in
        x.withUnsafeBufferPointer { xp in
            for i in 0..<xp.count { out[i] = f(xp[i]) }
        }
    }
}

/// An array of `count` floats whose every element `body` writes.
@inline(__always)
func uninitializedFloats(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count > 0 { body(buffer.baseAddress!) }
        initialized = count
    }
}

extension Network {
    /// Activations at the input of layer `layer` (layer == layers.count: the output) for `rows` examples,
    /// computed in chunks (bounded memory) on all cores.
    public func activations(_ x: [Float], rows: Int, atInputOf layer: Int) throws -> [Float] {
        try checkInputs(x, rows: rows)
        guard layer >= 0, layer <= layers.count else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range 0...\(layers.count)")
        }
        let chunk = try chunkRows(from: 0, requested: nil)
        return Parallel.singleThreadedBLAS { forwardRows(x, rows: rows, from: 0, to: layer, chunk: chunk) }
    }

    /// Output of the network for `rows` checked examples.
    public func predict(_ x: [Float], rows: Int) throws -> [Float] {
        try activations(x, rows: rows, atInputOf: layers.count)
    }
}
