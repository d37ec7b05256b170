/// Vector–Jacobian products: the pullback of a cotangent at a node's output to the values it reads,
/// walked by the propagation driver (fan-out cotangents are summed).
extension Network {
    /// Pulls `cotangent` (rows × size(at: tape.end)) back through the recorded nodes, returning the
    /// cotangent at value `tape.start` (zeros when the output does not depend on it).
    func pullback(_ tape: Tape, cotangent: [Float]) -> [Float] {
        walkBackward(from: tape.end, to: tape.start, seed: cotangent, node: { i, dy in
            pullbackNode(i, dy, rows: tape.rows, reads: inputs[i].map { tape.value($0) }, output: tape.value(i + 1),
                         argmax: tape.argmax[i - tape.start])
        }, accumulate: addInPlace) ?? [Float](repeating: 0, count: tape.rows * size(at: tape.start))
    }

    /// Pulls a cotangent back through nodes `start..<end` that are all affine (their Jacobian does not
    /// depend on the input, so no tape is needed).
    func pullbackAffine(_ cotangent: [Float], rows: Int, from end: Int, to start: Int) -> [Float] {
        walkBackward(from: end, to: start, seed: cotangent, node: { i, dy in
            precondition(layers[i].isAffine)
            return pullbackNode(i, dy, rows: rows, reads: [], output: [], argmax: [])
        }, accumulate: addInPlace) ?? [Float](repeating: 0, count: rows * size(at: start))
    }

    /// The cotangents of the values node `i` reads, from `dy` at its output (`reads`/`output`: the recorded
    /// values, unused by affine nodes).
    func pullbackNode(_ i: Int, _ dy: [Float], rows: Int, reads: [[Float]], output: [Float], argmax: [Int32]) -> [[Float]] {
        switch layers[i] {
        case .add:
            return inputs[i].map { _ in dy }
        case .concat:
            let parts = inputs[i].map { size(at: $0) }, total = size(at: i + 1)
            var offset = 0
            return parts.map { part in
                defer { offset += part }
                return uninitializedFloats(rows * part) { dx in
                    dy.withUnsafeBufferPointer { g in
                        for n in 0..<rows { (dx + n * part).update(from: g.baseAddress! + n * total + offset, count: part) }
                    }
                }
            }
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout:
            return [pullback(layer: i, dy, rows: rows, input: reads.first ?? [], output: output, argmax: argmax)]
        }
    }

    /// `dx = J_iᵀ dy` for single-input node `i` at the recorded `input`/`output` (unused by affine layers).
    func pullback(layer i: Int, _ dy: [Float], rows: Int, input x: [Float], output y: [Float], argmax: [Int32]) -> [Float] {
        let inShape = shapes[input(of: i)]
        let inSize = size(at: input(of: i)), outSize = size(at: i + 1)
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
            if let filters = convolutionPlans[i]?.transposed { return Winograd.transposed(filters, g, dy, rows: rows) }
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
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            return Activation(layers[i])!.pullback(dy, input: x, output: y)
        case .add, .concat:
            preconditionFailure("\(layers[i].name) reads several values: pullbackNode pulls it back")
        }
    }

    /// Adjoint of ``convolve``: `cols (K × rows·P) = Wᵀ · dY`, then col2im. With large output planes one GEMM
    /// per example reads its NCHW block of `dy` in place and writes its P columns (ldc = rows·P); with small
    /// planes the cotangents are first gathered to (O × rows·P) for one GEMM over the whole chunk. `cols` is
    /// col2im's scratch.
    func convolveTransposed(_ c: Layer.Convolution, _ g: WindowGeometry, _ dy: [Float], rows: Int) -> [Float] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
        var cols: [Float]
        if rows == 1 || P >= WindowGeometry.perExampleGEMMPlane {
            cols = uninitializedFloats(K * columns) { cp in
                dy.withUnsafeBufferPointer { d in
                    c.weight.withUnsafeBufferPointer { w in
                        for n in 0..<rows {
                            BLAS.sgemm(transA: true, m: K, n: P, k: O, a: w.baseAddress!, b: d.baseAddress! + n * O * P,
                                       c: cp + n * P, ldc: columns)
                        }
                    }
                }
            }
        } else {
            let gathered = uninitializedFloats(O * columns) { t in
                dy.withUnsafeBufferPointer { d in
                    for n in 0..<rows {
                        for o in 0..<O {
                            (t + o * columns + n * P).update(from: d.baseAddress! + (n * O + o) * P, count: P)
                        }
                    }
                }
            }
            cols = uninitializedFloats(K * columns) { cp in
                gathered.withUnsafeBufferPointer { t in
                    c.weight.withUnsafeBufferPointer { w in
                        BLAS.sgemm(transA: true, m: K, n: columns, k: O, a: w.baseAddress!, b: t.baseAddress!, c: cp)
                    }
                }
            }
        }
        return uninitializedFloats(rows * g.inputSize) { dx in
            cols.withUnsafeMutableBufferPointer { g.col2im($0.baseAddress!, rows: rows, into: dx) }
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
