/// Vector–Jacobian products: the pullback of a cotangent at a node's output to the values it reads,
/// walked by the propagation driver (fan-out cotangents are summed).
extension Network {
    /// Pulls `cotangent` (rows × size(at: tape.end)) back through the recorded nodes, returning the
    /// cotangent at value `to` (default `tape.start`; zeros when the output does not depend on it). A value
    /// that is not a cut gets the partial derivative, every earlier value held fixed (a layer attribution).
    ///
    /// `severing`: a node whose output cotangent is handed to `received` and that passes nothing back (the
    /// caller accounts for its inputs' share; see ``piecewiseLinearPathCotangents``).
    func pullback(_ tape: Tape, cotangent: [Float], to value: Int? = nil, severing severed: Int? = nil,
                  received: ([Float]) -> Void = { _ in }) -> [Float] {
        let start = value ?? tape.start
        precondition(start >= tape.start, "a pullback ends inside its tape")
        return walkBackward(from: tape.end, to: start, seed: cotangent, holdingFixed: !cut[start], node: { i, dy in
            if i == severed {
                received(dy)
                return []
            }
            return pullbackNode(i, dy, rows: tape.rows, reads: inputs[i].map { tape.value($0) }, output: tape.value(i + 1),
                                argmax: tape.argmax[i - tape.start], steps: tape.steps[i - tape.start])
        }, accumulate: addInPlace) ?? [Float](repeating: 0, count: tape.rows * size(at: start))
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
    func pullbackNode(_ i: Int, _ dy: [Float], rows: Int, reads: [[Float]], output: [Float], argmax: [Int32], steps: [Float] = []) -> [[Float]] {
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
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm:
            return [pullback(layer: i, dy, rows: rows, input: reads.first ?? [], output: output, argmax: argmax, steps: steps)]
        }
    }

    /// `dx = J_iᵀ dy` for single-input node `i` at the recorded `input`/`output` (unused by affine layers);
    /// an LSTM reads its step record `steps` (``Tape/steps``).
    func pullback(layer i: Int, _ dy: [Float], rows: Int, input x: [Float], output y: [Float], argmax: [Int32], steps: [Float] = []) -> [Float] {
        let inShape = shapes[input(of: i)]
        let inSize = size(at: input(of: i)), outSize = size(at: i + 1)
        let count = rows * inSize
        switch layers[i] {
        case .flatten, .reshape, .dropout:
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
        case .embedding:
            // The output is piecewise constant in the ids: zero gradient. Token attributions are taken at
            // the embedding output instead (``embeddingSplit``).
            return [Float](repeating: 0, count: count)
        case .lstm(let l):
            let L = inShape[0]
            return lstmBackward(l, coefficients: lstmGradientCoefficients(l, steps, rows: rows, length: L), dy, rows: rows, length: L)
        case .add, .concat:
            preconditionFailure("\(layers[i].name) reads several values: pullbackNode pulls it back")
        }
    }

    /// The coefficients of the LSTM's linearised step, one row of 10H floats per (n, t) (row n·L + t):
    ///
    ///     [ s_i s_f s_g s_o | a_o | a_c | a_i | a_g | a_f | a_carry ]
    ///
    /// so that, with Δ a change (a tangent, or DeepLIFT's difference from reference),
    ///
    ///     Δz = W_ih Δx_t + W_hh Δh_{t−1};  Δi = s_i Δz_i, Δf = s_f Δz_f, Δg = s_g Δz_g, Δo = s_o Δz_o
    ///     Δc_t = a_carry Δc_{t−1} + a_f Δf + a_i Δi + a_g Δg;  Δh_t = a_o Δo + a_c Δc_t
    ///
    /// For the gradient (this function): s = σ′ or tanh′ at z, a_o = tanh c_t, a_c = o (1 − tanh² c_t),
    /// a_i = g, a_g = i, a_f = c_{t−1}, a_carry = f. DeepLIFT fills the same layout with its multipliers
    /// (``DeepLiftPlan``), so both run the one backward pass ``lstmBackward``.
    func lstmGradientCoefficients(_ l: Layer.LSTM, _ steps: [Float], rows N: Int, length L: Int) -> [Float] {
        let H = l.hiddenSize, W = 10 * H
        return uninitializedFloats(N * L * W) { k in
            steps.withUnsafeBufferPointer { sp in
                for r in 0..<(N * L) {
                    let s = sp.baseAddress! + r * W, out = k + r * W
                    let first = r % L == 0
                    for j in 0..<H {
                        let i = s[4 * H + j], f = s[5 * H + j], g = s[6 * H + j], o = s[7 * H + j]
                        let tc = _tanh(s[8 * H + j])
                        out[j] = i * (1 - i); out[H + j] = f * (1 - f); out[2 * H + j] = 1 - g * g; out[3 * H + j] = o * (1 - o)
                        out[4 * H + j] = tc
                        out[5 * H + j] = o * (1 - tc * tc)
                        out[6 * H + j] = g
                        out[7 * H + j] = i
                        out[8 * H + j] = first ? 0 : s[8 * H + j - W]
                        out[9 * H + j] = f
                    }
                }
            }
        }
    }

    /// The transpose of the linearised LSTM (``lstmGradientCoefficients``): back-propagation through time
    /// for all rows at once. `dy`: rows × H (last state) or rows × L × H. Per step from the last, the
    /// elementwise rules give dz_t (rows × 4H, stored for every step), then one GEMM dh_{t−1} = dz_t W_hh;
    /// finally dx = dz W_ih for every step is one GEMM over rows·L rows. Returns rows × L × E.
    func lstmBackward(_ l: Layer.LSTM, coefficients: [Float], _ dy: [Float], rows N: Int, length L: Int) -> [Float] {
        lstmInputCotangent(l, lstmGateCotangents(l, coefficients: coefficients, dy, rows: N, length: L), steps: N * L)
    }

    /// dx = dz W_ih for every step (`steps` rows of gate cotangents, rows·L of them): one GEMM.
    func lstmInputCotangent(_ l: Layer.LSTM, _ dz: [Float], steps: Int) -> [Float] {
        uninitializedFloats(steps * l.inputSize) { dx in
            dz.withUnsafeBufferPointer { d in
                l.weightIH.withUnsafeBufferPointer { w in
                    BLAS.sgemm(m: steps, n: l.inputSize, k: 4 * l.hiddenSize, a: d.baseAddress!, b: w.baseAddress!, c: dx)
                }
            }
        }
    }

    /// The cotangents dz_t of the gate pre-activations (rows·L × 4H, row n·L + t, gates i, f, g, o) for the
    /// cotangent `dy` at the LSTM's output: the backward recurrence of ``lstmBackward`` (which applies
    /// W_ih to them), shared with the parameter gradients (dW_ih = dzᵀX, dW_hh = Σ_t dz_tᵀh_{t−1}, db = Σ dz).
    ///
    /// Double back-propagation (AttributionGradients+Recurrent.swift) runs the same recurrence with
    /// `sources`, one row of 6H floats per (n, t), [ q_i q_f q_g q_o | q_c | q_carry ]: dc_t gets q_c, dz_t
    /// gets q_gate and the carry to dc_{t−1} gets q_carry (the curvature terms, so the recurrence stays one
    /// affine pass); and `states` (nil, or 2H floats per row) receives every step's total [ dh_t | dc_t ].
    func lstmGateCotangents(
        _ l: Layer.LSTM, coefficients: [Float], _ dy: [Float], rows N: Int, length L: Int, sources: [Float]? = nil,
        states: UnsafeMutablePointer<Float>? = nil
    ) -> [Float] {
        let H = l.hiddenSize, G = 4 * H, W = 10 * H
        var dz = [Float](repeating: 0, count: N * L * G)
        var dh = l.returnSequences ? [Float](repeating: 0, count: N * H) : dy
        var dc = [Float](repeating: 0, count: N * H)
        dz.withUnsafeMutableBufferPointer { dzp in
            dh.withUnsafeMutableBufferPointer { dhp in
                dc.withUnsafeMutableBufferPointer { dcp in
                    coefficients.withUnsafeBufferPointer { kp in
                        dy.withUnsafeBufferPointer { gp in
                            (sources ?? []).withUnsafeBufferPointer { qp in
                                l.weightHH.withUnsafeBufferPointer { w in
                                    let source = sources == nil ? nil : qp.baseAddress
                                    for t in stride(from: L - 1, through: 0, by: -1) {
                                        if t < L - 1 {
                                            BLAS.sgemm(m: N, n: H, k: G, a: dzp.baseAddress! + (t + 1) * G, lda: L * G, b: w.baseAddress!,
                                                       c: dhp.baseAddress!)
                                        }
                                        for n in 0..<N {
                                            let r = n * L + t, k = kp.baseAddress! + r * W, d = dzp.baseAddress! + r * G
                                            let hn = dhp.baseAddress! + n * H, cn = dcp.baseAddress! + n * H
                                            let seq = l.returnSequences ? gp.baseAddress! + r * H : nil
                                            let q = source.map { $0 + r * 6 * H }, state = states.map { $0 + r * 2 * H }
                                            for j in 0..<H {
                                                let gh = hn[j] + (seq?[j] ?? 0)
                                                let gc = cn[j] + gh * k[5 * H + j] + (q?[4 * H + j] ?? 0)
                                                d[j] = gc * k[6 * H + j] * k[j] + (q?[j] ?? 0)
                                                d[H + j] = gc * k[8 * H + j] * k[H + j] + (q?[H + j] ?? 0)
                                                d[2 * H + j] = gc * k[7 * H + j] * k[2 * H + j] + (q?[2 * H + j] ?? 0)
                                                d[3 * H + j] = gh * k[4 * H + j] * k[3 * H + j] + (q?[3 * H + j] ?? 0)
                                                cn[j] = gc * k[9 * H + j] + (q?[5 * H + j] ?? 0)
                                                if let state { state[j] = gh; state[H + j] = gc }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dz
    }

    /// Adjoint of ``convolve``: `cols (K × rows·P) = Wᵀ · dY`, then col2im. With large output planes one GEMM
    /// per example reads its NCHW block of `dy` in place and writes its P columns (ldc = rows·P); with small
    /// planes the cotangents are first gathered to (O × rows·P) for one GEMM over the whole chunk. `cols` is
    /// col2im's scratch.
    func convolveTransposed(_ c: Layer.Convolution, _ g: WindowGeometry, _ dy: [Float], rows: Int) -> [Float] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
        if let r = g.kernelRows {
            // Per example: dR = Σᵢ Wᵢᵀ · dY into R's columns i·outW ..< i·outW + P (overlapping views, added in
            // kernel-row order), then R's col2im.
            let Kr = r.patchSize, ldr = r.outputPlane
            let byRow = c.weightsByKernelRow(kh: g.kh, kw: g.kw)
            var dR = uninitializedFloats(Kr * ldr) { _ in }
            return uninitializedFloats(rows * g.inputSize) { dx in
                dR.withUnsafeMutableBufferPointer { rp in
                    dy.withUnsafeBufferPointer { d in
                        byRow.withUnsafeBufferPointer { w in
                            for n in 0..<rows {
                                rp.update(repeating: 0)
                                for i in 0..<g.kh {
                                    BLAS.sgemm(transA: true, m: Kr, n: P, k: O, a: w.baseAddress! + i * O * Kr, lda: Kr,
                                               b: d.baseAddress! + n * O * P, beta: 1, c: rp.baseAddress! + i * g.outWidth, ldc: ldr)
                                }
                                r.col2im(rp.baseAddress!, rows: 1, into: dx + n * g.inputSize)
                            }
                        }
                    }
                }
            }
        }
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
