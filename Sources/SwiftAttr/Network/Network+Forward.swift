/// Batched forward evaluation, layer by layer, as GEMMs (im2col for convolutions).
extension Network {
    /// The activations of layers `start..<end` for one chunk of `rows` examples, kept for a pullback.
    struct Tape {
        let start: Int
        let end: Int
        let rows: Int
        /// `values[k]`: input of layer `start + k`; `values[end - start]`: output of layer `end − 1`.
        var values: [[Float]]
        /// Per recorded layer: for max-pooling, the flat in-example index of each output's argmax.
        var argmax: [[Int32]]

        var output: [Float] { values[values.count - 1] }
        func input(ofLayer i: Int) -> [Float] { values[i - start] }
    }

    /// Output of the network for `rows` examples (`x`: rows × inputSize).
    public func forward(_ x: [Float], rows: Int) -> [Float] {
        forward(x, rows: rows, from: 0, to: layers.count)
    }

    /// Runs layers `start..<end` on `x` (rows × size(at: start)).
    func forward(_ x: [Float], rows: Int, from start: Int, to end: Int) -> [Float] {
        var current = x
        for i in start..<end {
            current = apply(layer: i, to: current, rows: rows, argmax: nil)
        }
        return current
    }

    /// Runs layers `start..<end` keeping every intermediate value for ``pullback(_:cotangent:to:)``.
    func record(_ x: [Float], rows: Int, from start: Int = 0, to end: Int? = nil) -> Tape {
        let end = end ?? layers.count
        var values = [x]
        var argmax = [[Int32]]()
        values.reserveCapacity(end - start + 1)
        for i in start..<end {
            var positions = [Int32]()
            switch layers[i] {
            case .maxPool1d, .maxPool2d:
                positions = [Int32](repeating: 0, count: rows * size(at: i + 1))
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout:
                break
            }
            let y = positions.isEmpty
                ? apply(layer: i, to: values[values.count - 1], rows: rows, argmax: nil)
                : positions.withUnsafeMutableBufferPointer { apply(layer: i, to: values[values.count - 1], rows: rows, argmax: $0.baseAddress) }
            values.append(y)
            argmax.append(positions)
        }
        return Tape(start: start, end: end, rows: rows, values: values, argmax: argmax)
    }

    /// Layer `i` applied to `rows` examples; for max-pooling, `argmax` (if given) receives the winners.
    func apply(layer i: Int, to x: [Float], rows: Int, argmax: UnsafeMutablePointer<Int32>?) -> [Float] {
        let inShape = shapes[i]
        let inSize = size(at: i), outSize = size(at: i + 1)
        let count = rows * outSize
        switch layers[i] {
        case .flatten, .dropout:
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
            return uninitializedFloats(count) { y in
                x.withUnsafeBufferPointer { xp in
                    for n in 0..<rows {
                        let xi = xp.baseAddress! + n * inSize, yi = y + n * inSize
                        var m = -Float.infinity
                        for k in 0..<inSize { m = max(m, xi[k]) }
                        var sum: Float = 0
                        for k in 0..<inSize { yi[k] = _exp(xi[k] - m); sum += yi[k] }
                        let inv = 1 / sum
                        for k in 0..<inSize { yi[k] *= inv }
                    }
                }
            }
        case .relu:
            return mapFloats(x) { max($0, 0) }
        case .leakyReLU(let slope):
            return mapFloats(x) { $0 > 0 ? $0 : slope * $0 }
        case .elu(let alpha):
            return mapFloats(x) { $0 > 0 ? $0 : alpha * _expm1($0) }
        case .softplus(let beta):
            return mapFloats(x) { Activation.softplus($0, beta: beta) }
        case .sigmoid:
            return mapFloats(x) { Activation.sigmoid($0) }
        case .tanh:
            return mapFloats(x) { _tanh($0) }
        }
    }

    /// Convolution as one GEMM over the whole chunk: `W (O×K) · cols (K × rows·P)`, then each output
    /// channel's run of P values is copied to NCHW with the bias added.
    private func convolve(_ c: Layer.Convolution, _ g: WindowGeometry, _ x: [Float], rows: Int) -> [Float] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
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

/// Scalar activation functions shared by the forward pass and the attribution rules.
enum Activation {
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + _exp(-x)) : { let e = _exp(x); return e / (1 + e) }()
    }

    /// `log(1 + e^{βx})/β`, computed without overflow as `max(x, 0) + log1p(e^{−β|x|})/β`.
    @inline(__always)
    static func softplus(_ x: Float, beta: Float) -> Float {
        max(x, 0) + _log1p(_exp(-beta * abs(x))) / beta
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
