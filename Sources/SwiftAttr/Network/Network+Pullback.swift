/// Vector–Jacobian products: the pullback of a cotangent at a layer's output to its input.
extension Network {
    /// Pulls `cotangent` (rows × size(at: tape.end)) back through the recorded layers, returning the
    /// cotangent at the input of layer `tape.start`.
    func pullback(_ tape: Tape, cotangent: [Float]) -> [Float] {
        var dy = cotangent
        for i in stride(from: tape.end - 1, through: tape.start, by: -1) {
            let k = i - tape.start
            dy = pullback(layer: i, dy, rows: tape.rows, input: tape.values[k], output: tape.values[k + 1], argmax: tape.argmax[k])
        }
        return dy
    }

    /// Pulls a cotangent back through layers `start..<end` that are all affine (their Jacobian does not
    /// depend on the input, so no tape is needed).
    func pullbackAffine(_ cotangent: [Float], rows: Int, from end: Int, to start: Int) -> [Float] {
        var dy = cotangent
        for i in stride(from: end - 1, through: start, by: -1) {
            precondition(layers[i].isAffine)
            dy = pullback(layer: i, dy, rows: rows, input: [], output: [], argmax: [])
        }
        return dy
    }

    /// `dx = J_iᵀ dy` for layer `i` at the recorded `input`/`output` (unused by affine layers).
    func pullback(layer i: Int, _ dy: [Float], rows: Int, input x: [Float], output y: [Float], argmax: [Int32]) -> [Float] {
        let inShape = shapes[i]
        let inSize = size(at: i), outSize = size(at: i + 1)
        let count = rows * inSize
        switch layers[i] {
        case .flatten, .dropout:
            return dy
        case .dense(let d):
            return uninitializedFloats(count) { dx in
                dy.withUnsafeBufferPointer { g in
                    d.weight.withUnsafeBufferPointer { w in
                        BLAS.sgemm(m: rows, n: d.inFeatures, k: d.outFeatures, a: g.baseAddress!, b: w.baseAddress!, c: dx)
                    }
                }
            }
        case .conv1d(let c), .conv2d(let c):
            let g = WindowGeometry(convolution: c, input: inShape)
            return convolveTransposed(c, g, dy, rows: rows)
        case .maxPool1d, .maxPool2d:
            var dx = [Float](repeating: 0, count: count)
            dx.withUnsafeMutableBufferPointer { dxp in
                argmax.withUnsafeBufferPointer { a in
                    for n in 0..<rows {
                        let base = dxp.baseAddress! + n * inSize
                        for o in 0..<outSize { base[Int(a[n * outSize + o])] += dy[n * outSize + o] }
                    }
                }
            }
            return dx
        case .avgPool1d(let p), .avgPool2d(let p):
            let g = WindowGeometry(pooling: p, input: inShape)
            let scale = 1 / Float(g.kh * g.kw)
            var dx = [Float](repeating: 0, count: count)
            dx.withUnsafeMutableBufferPointer { dxp in
                dy.withUnsafeBufferPointer { gp in
                    for nc in 0..<(rows * g.channels) {
                        g.sumPoolAdjoint(gp.baseAddress! + nc * g.outputPlane, dxp.baseAddress! + nc * g.inputPlane, scale: scale)
                    }
                }
            }
            return dx
        case .globalAvgPool:
            let plane = inSize / inShape[0]
            let inv = 1 / Float(plane)
            return uninitializedFloats(count) { dx in
                for nc in 0..<(rows * inShape[0]) {
                    let share = dy[nc] * inv
                    (dx + nc * plane).update(repeating: share, count: plane)
                }
            }
        case .batchNorm(let b):
            let plane = inSize / b.channels
            return uninitializedFloats(count) { dx in
                dy.withUnsafeBufferPointer { g in
                    for n in 0..<rows {
                        for c in 0..<b.channels {
                            let s = b.scale[c], off = n * inSize + c * plane
                            for k in 0..<plane { dx[off + k] = s * g[off + k] }
                        }
                    }
                }
            }
        case .softmax:
            return uninitializedFloats(count) { dx in
                for n in 0..<rows {
                    let off = n * inSize
                    var dot: Float = 0
                    for k in 0..<inSize { dot += dy[off + k] * y[off + k] }
                    for k in 0..<inSize { dx[off + k] = y[off + k] * (dy[off + k] - dot) }
                }
            }
        case .relu:
            return zipMap(dy, x) { g, v in v > 0 ? g : 0 }
        case .leakyReLU(let slope):
            return zipMap(dy, x) { g, v in v > 0 ? g : slope * g }
        case .elu(let alpha):
            // dy/dx = 1 for x > 0, α·eˣ = y + α otherwise. The branch must test the input: with α < 0
            // the output is positive for negative x.
            return uninitializedFloats(count) { dx in
                dy.withUnsafeBufferPointer { g in
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeBufferPointer { yp in
                            for k in 0..<count { dx[k] = xp[k] > 0 ? g[k] : g[k] * (yp[k] + alpha) }
                        }
                    }
                }
            }
        case .softplus(let beta):
            return zipMap(dy, x) { g, v in g * Activation.sigmoid(beta * v) }
        case .sigmoid:
            return zipMap(dy, y) { g, s in g * s * (1 - s) }
        case .tanh:
            return zipMap(dy, y) { g, t in g * (1 - t * t) }
        }
    }

    /// Adjoint of ``convolve``: gather NCHW cotangents to (O × rows·P), one GEMM `Wᵀ · dY`, then col2im.
    private func convolveTransposed(_ c: Layer.Convolution, _ g: WindowGeometry, _ dy: [Float], rows: Int) -> [Float] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
        let gathered = uninitializedFloats(O * columns) { t in
            dy.withUnsafeBufferPointer { d in
                for n in 0..<rows {
                    for o in 0..<O {
                        (t + o * columns + n * P).update(from: d.baseAddress! + (n * O + o) * P, count: P)
                    }
                }
            }
        }
        let cols = uninitializedFloats(K * columns) { cp in
            gathered.withUnsafeBufferPointer { t in
                c.weight.withUnsafeBufferPointer { w in
                    BLAS.sgemm(transA: true, m: K, n: columns, k: O, a: w.baseAddress!, b: t.baseAddress!, c: cp)
                }
            }
        }
        return uninitializedFloats(rows * g.inputSize) { dx in
            cols.withUnsafeBufferPointer { g.col2im($0.baseAddress!, rows: rows, into: dx) }
        }
    }
}

/// Elementwise `f(a[i], b[i])` into a new array.
@inline(__always)
func zipMap(_ a: [Float], _ b: [Float], _ f: (Float, Float) -> Float) -> [Float] {
    uninitializedFloats(a.count) { out in
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                for i in 0..<ap.count { out[i] = f(ap[i], bp[i]) }
            }
        }
    }
}
