/// Double back-propagation through the LSTM and through a token network's Embedding: the rules of the
/// engine's steps 2–4 (AttributionGradients.swift) for these two node kinds.
///
/// **LSTM**: reverse-over-forward through the unrolled recurrence, for all N·k points at once. With the step
/// record of ``Network/lstmForward`` and the coefficients of ``Network/lstmGradientCoefficients`` (s the
/// gates' derivatives, a_o = τ = tanh c_t, a_c = o (1 − τ²), a_i = g, a_g = i, a_f = c_{t−1}, a_carry = f):
///
/// - step 2, the gradient: the BPTT of ``Network/lstmGateCotangents`` from g at the output, recording every
///   step's gate cotangents g_z and total cotangents g_h, g_c of h_t and c_t;
/// - step 3, the tangent (JVP): ż_t = W_ih ẋ_t + W_hh ḣ_{t−1} (one GEMM over all N·k·L rows for the input
///   part, one per step for the recurrent part), Δgate = s ż, ċ_t = a_carry ċ_{t−1} + a_f Δf + a_i Δi + a_g Δg,
///   ḣ_t = a_o Δo + a_c ċ_t, recorded for every step;
/// - step 4, the primal adjoint z̄: the transposed recurrence of the gradient (the same
///   ``Network/lstmGateCotangents``) from z̄ at the output, plus per step the curvature of every elementwise
///   operation, differentiated at the recorded tangents and gradients:
///
///       h = o τ:            z̄_o += g_h τ̇,  z̄_τ += g_h Δo           (τ̇ = (1 − τ²) ċ)
///       τ = tanh c:         z̄_c += −2 τ (1 − τ²) ċ · o g_h
///       c = f c₋ + i g:     z̄_f += g_c ċ₋,  z̄_c₋ += g_c Δf,  z̄_i += g_c Δg,  z̄_g += g_c Δi
///       gate = σ(z), tanh:  z̄_z += σ″(z) ż ḡ   (ḡ = g_c g, g_c c₋, g_c i, g_h τ for i, f, g, o;
///                                               σ″ = s (1 − 2σ), tanh″ = −2 g s)
///
///   (``lstmCurvatureSources``, the recurrence's `sources`); then z̄_x = z̄_z W_ih (one GEMM), and
///   dW_ih = z̄_zᵀX + g_zᵀẊ, dW_hh = z̄_zᵀH₋ + g_zᵀḢ₋, db_ih = db_hh = Σ z̄_z
///   (``Network/lstmParameterGradients(_:_:input:previous:tangentTerm:)``, GEMMs over all N·k·L rows).
///
/// **Embedding** (a token network: node 0 reads the token ids). Ids have no input gradient, so the
/// attributions are taken at the embedding output and summed over the embedding axis, the convention of every
/// token attribution of the library (Network+Tokens.swift; Captum's LayerIntegratedGradients on the
/// embedding): with e(·) the embedding rows of a sequence of ids,
///
///     φ_nl = (1/k) Σ_j Σ_e w_nj,le ∂h_n/∂p_le (p_nj),  p_nj = e(r_nj) + α_nj w_nj,  w_nj = e(x_n) − e(r_nj)
///
/// with r_nj token ids (of the reference set, or of the batch); the input gradient is φ_nl = Σ_e ∂h/∂p_le at
/// p = e(x_n). φ has one value per token, the network's input size L, so a prior's mask, adjacency or DAPr's
/// meta-features are per token as for any other input — what a user of a text model expects, and what
/// `sa.attributions` of the same model returns. (Per-coordinate penalties on rows × L × E: run the prior on
/// ``Network/embeddingSplit``'s rest with embedded inputs.) The engine runs on the network after the embedding
/// with the cotangent ũ = u repeated over the embedding axis (so v = ũ ⊙ w / k), and the embedding table T
/// receives, per point, through p: α z̄₀ at the rows of x's ids and (1 − α) z̄₀ at the reference's (z̄₀ = H_h v,
/// the primal adjoint at the points), and through w: ũ ⊙ g₀ / k at x's rows and −ũ ⊙ g₀ / k at the
/// reference's (g₀ the gradient at the points) — ``TokenAttributionPoints/tableGradient``.

/// What a token network's pullback adds to the engine run on the network after its embedding.
struct TokenAttributionPoints {
    let embedding: Layer.Embedding
    /// Tokens per example, L.
    let length: Int
    /// rows × L token ids of the batch.
    let ids: [Float]
    /// Expected Gradients: the token ids the draws index (the reference set, or the batch) and the draws;
    /// both nil for the input gradient (points e(x), weights 1).
    let references: [Float]?
    let draws: ExpectedGradientsDraws?

    /// u (rows × L) repeated over the embedding axis: the cotangent at the embedding level.
    func expanded(_ u: [Float]) -> [Float] {
        let E = embedding.dimension
        return uninitializedFloats(u.count * E) { o in
            for t in 0..<u.count { (o + t * E).update(repeating: u[t], count: E) }
        }
    }

    /// The embedding table's gradient from one chunk: z̄₀ (`zbar`, the chunk's points × L·E; empty for zero)
    /// through the points, and ũ ⊙ g₀ / k through the weights (`u`: the cotangent at the embedding level).
    func tableGradient(_ chunk: AttributionChunk, k: Int, cotangent u: [Float], zbar: [Float]) -> [Float] {
        let E = embedding.dimension, L = length, D = L * E, M = chunk.examples.count * k, first = chunk.examples.lowerBound
        var dT = [Float](repeating: 0, count: embedding.weight.count)
        dT.withUnsafeMutableBufferPointer { tp in
            let t = tp.baseAddress!
            for m in 0..<M {
                let b = first * k + m, n = b / k
                for l in 0..<L {
                    let x = t + Int(ids[n * L + l]) * E, at = m * D + l * E
                    guard let draws, let references else {
                        if !zbar.isEmpty { for e in 0..<E { x[e] += zbar[at + e] } }
                        continue
                    }
                    let r = t + Int(references[draws.referenceIndex[b] * L + l]) * E, alpha = draws.alphas[b], g = chunk.pointGradients!
                    let scale = 1 / Float(k)
                    for e in 0..<E {
                        let z = zbar.isEmpty ? 0 : zbar[at + e], gw = u[n * D + l * E + e] * g[at + e] * scale
                        x[e] += alpha * z + gw
                        r[e] += (1 - alpha) * z - gw
                    }
                }
            }
        }
        return dT
    }
}

extension Network {
    /// Attributions of a token network at the embedding output summed over it (see the file's introduction),
    /// with their pullback to every parameter, the embedding table's first. `source`: the token ids the draws
    /// index (nil with nil draws: the input gradient of Σ_c log softmax). Arguments are checked by the caller.
    func tokenAttributionPullback(
        _ x: [Float], rows: Int, k: Int, functional: AttributionFunctional, source: [Float]?, draws: ExpectedGradientsDraws?
    ) throws -> AttributionPullback {
        let (e, rest) = embeddingSplit!
        let L = inputSize, E = e.dimension, D = L * E
        let inner = try rest.attributionPullback(rows: rows, k: k, functional: functional, repeatingTargets: draws != nil,
                                                 keepsPointGradients: draws != nil) { examples in
            let M = examples.count * k
            guard let draws, let source else {
                return (embed(e, Array(x[(examples.lowerBound * L)..<(examples.upperBound * L)]), count: examples.count * L), nil)
            }
            var points = [Float](repeating: 0, count: M * D), weights = points
            e.weight.withUnsafeBufferPointer { tp in
                for m in 0..<M {
                    let b = examples.lowerBound * k + m, n = b / k, a = draws.alphas[b], r = draws.referenceIndex[b]
                    for l in 0..<L {
                        let xe = tp.baseAddress! + Int(x[n * L + l]) * E, re = tp.baseAddress! + Int(source[r * L + l]) * E
                        for c in 0..<E {
                            let delta = xe[c] - re[c]
                            weights[m * D + l * E + c] = delta
                            points[m * D + l * E + c] = re[c] + a * delta
                        }
                    }
                }
            }
            return (points, weights)
        }
        // φ per token: the sum over the embedding axis.
        let phi = uninitializedFloats(rows * L) { out in
            inner.attributions.withUnsafeBufferPointer { a in
                for t in 0..<(rows * L) {
                    var s: Float = 0
                    for c in 0..<E { s += a[t * E + c] }
                    out[t] = s
                }
            }
        }
        return AttributionPullback(attributions: phi, rows: rows, k: k, network: rest, bareConvolutions: inner.bareConvolutions, end: inner.end,
                                   functional: functional, split: inner.split, chunks: inner.chunks,
                                   tokens: TokenAttributionPoints(embedding: e, length: L, ids: x, references: source, draws: draws))
    }

    /// Step 2 for an LSTM: the input cotangent from g at its output (`gOut`), and the record step 4 reads,
    /// [g_z (rows·L × 4H) | g_h, g_c (rows·L × 2H)].
    func lstmAttributionGradient(_ l: Layer.LSTM, _ gOut: [Float], steps: [Float], rows N: Int, length L: Int) -> (input: [Float], record: [Float]) {
        let R = N * L, H = l.hiddenSize
        var states = [Float](repeating: 0, count: R * 2 * H)
        let coefficients = lstmGradientCoefficients(l, steps, rows: N, length: L)
        let dz = states.withUnsafeMutableBufferPointer {
            lstmGateCotangents(l, coefficients: coefficients, gOut, rows: N, length: L, states: $0.baseAddress!)
        }
        return (lstmInputCotangent(l, dz, steps: R), dz + states)
    }

    /// Step 3 for an LSTM: the tangent of its output from the tangent `xdot` of its input (rows × L × E), and
    /// the per-step record step 4 reads, one row of 6H floats per (n, t): [ ż (4H) | ċ_t | ḣ_t ].
    func lstmAttributionTangent(_ l: Layer.LSTM, _ xdot: [Float], steps: [Float], rows N: Int, length L: Int) -> (output: [Float], record: [Float]) {
        let H = l.hiddenSize, G = 4 * H, W = 6 * H, R = N * L, C = 10 * H
        let k = lstmGradientCoefficients(l, steps, rows: N, length: L)
        var record = uninitializedFloats(R * W) { z in
            xdot.withUnsafeBufferPointer { xp in
                l.weightIH.withUnsafeBufferPointer { w in
                    BLAS.sgemm(transB: true, m: R, n: G, k: l.inputSize, a: xp.baseAddress!, b: w.baseAddress!, c: z, ldc: W)
                }
            }
        }
        record.withUnsafeMutableBufferPointer { rp in
            k.withUnsafeBufferPointer { kp in
                l.weightHH.withUnsafeBufferPointer { w in
                    let base = rp.baseAddress!
                    for t in 0..<L {
                        if t > 0 {
                            BLAS.sgemm(transB: true, m: N, n: G, k: H, a: base + (t - 1) * W + 5 * H, lda: L * W, b: w.baseAddress!, beta: 1,
                                       c: base + t * W, ldc: L * W)
                        }
                        for n in 0..<N {
                            let r = n * L + t, z = base + r * W, c = kp.baseAddress! + r * C
                            for j in 0..<H {
                                let di = c[j] * z[j], df = c[H + j] * z[H + j], dg = c[2 * H + j] * z[2 * H + j], dO = c[3 * H + j] * z[3 * H + j]
                                let previous = t > 0 ? z[4 * H + j - W] : 0
                                let cell = c[9 * H + j] * previous + c[8 * H + j] * df + c[6 * H + j] * di + c[7 * H + j] * dg
                                z[4 * H + j] = cell
                                z[5 * H + j] = c[4 * H + j] * dO + c[5 * H + j] * cell
                            }
                        }
                    }
                }
            }
        }
        let output = uninitializedFloats(l.returnSequences ? R * H : N * H) { o in
            record.withUnsafeBufferPointer { rp in
                if l.returnSequences {
                    for r in 0..<R { (o + r * H).update(from: rp.baseAddress! + r * W + 5 * H, count: H) }
                } else {
                    for n in 0..<N { (o + n * H).update(from: rp.baseAddress! + (n * L + L - 1) * W + 5 * H, count: H) }
                }
            }
        }
        return (output, record)
    }

    /// Step 4 for an LSTM: from z̄ at its output (`zbar`, [] for zero), the primal adjoint of its input
    /// (`formsInput`; else []) and its parameter gradients. `x`/`xdot`: the recorded input and its tangent;
    /// `gradient`: step 2's record; `tangent`: step 3's.
    func lstmAttributionAdjoint(
        _ l: Layer.LSTM, _ zbar: [Float], input x: [Float], inputTangent xdot: [Float], steps: [Float], gradient: [Float], tangent: [Float],
        rows N: Int, length L: Int, formsInput: Bool
    ) -> (input: [Float], parameters: [[Float]]) {
        let H = l.hiddenSize, R = N * L
        let k = lstmGradientCoefficients(l, steps, rows: N, length: L)
        let gz = Array(gradient[0..<(R * 4 * H)]), states = Array(gradient[(R * 4 * H)...])
        let sources = lstmCurvatureSources(l, coefficients: k, steps: steps, states: states, tangent: tangent, rows: R, length: L)
        let dy = zbar.isEmpty ? [Float](repeating: 0, count: (l.returnSequences ? R : N) * H) : zbar
        let dz = lstmGateCotangents(l, coefficients: k, dy, rows: N, length: L, sources: sources)
        let previous = lstmPreviousRows(steps, width: 10 * H, offset: 9 * H, count: H, rows: R, length: L)
        let previousTangent = lstmPreviousRows(tangent, width: 6 * H, offset: 5 * H, count: H, rows: R, length: L)
        return (formsInput ? lstmInputCotangent(l, dz, steps: R) : [],
                lstmParameterGradients(l, dz, input: x, previous: previous, tangentTerm: (gz, xdot, previousTangent)))
    }

    /// The curvature terms of step 4 (the file's introduction) in the layout of ``lstmGateCotangents``'
    /// `sources`, one row of 6H floats per (n, t): [ q_i q_f q_g q_o | q_c | q_carry ], q_gate the sources of
    /// the gate's value times its derivative plus σ″(z) ż ḡ, q_c the source of c_t, q_carry of c_{t−1}.
    private func lstmCurvatureSources(
        _ l: Layer.LSTM, coefficients: [Float], steps: [Float], states: [Float], tangent: [Float], rows R: Int, length L: Int
    ) -> [Float] {
        let H = l.hiddenSize, C = 10 * H, T = 6 * H
        return uninitializedFloats(R * 6 * H) { q in
            coefficients.withUnsafeBufferPointer { kp in
                steps.withUnsafeBufferPointer { sp in
                    states.withUnsafeBufferPointer { gp in
                        tangent.withUnsafeBufferPointer { tp in
                            for r in 0..<R {
                                let c = kp.baseAddress! + r * C, s = sp.baseAddress! + r * C, g = gp.baseAddress! + r * 2 * H
                                let t = tp.baseAddress! + r * T, o = q + r * 6 * H, first = r % L == 0
                                for j in 0..<H {
                                    let si = c[j], sf = c[H + j], sg = c[2 * H + j], so = c[3 * H + j]
                                    let tau = c[4 * H + j], ac = c[5 * H + j], gate = c[6 * H + j], input = c[7 * H + j], cPrevious = c[8 * H + j]
                                    let forget = c[9 * H + j], output = s[7 * H + j]
                                    let zi = t[j], zf = t[H + j], zg = t[2 * H + j], zo = t[3 * H + j], cell = t[4 * H + j]
                                    let cellPrevious = first ? 0 : t[4 * H + j - T]
                                    let gh = g[j], gc = g[H + j]
                                    let di = si * zi, df = sf * zf, dg = sg * zg, dO = so * zo, slope = 1 - tau * tau
                                    o[j] = si * (gc * dg + (1 - 2 * input) * zi * gc * gate)
                                    o[H + j] = sf * (gc * cellPrevious + (1 - 2 * forget) * zf * gc * cPrevious)
                                    o[2 * H + j] = sg * (gc * di - 2 * gate * zg * gc * input)
                                    o[3 * H + j] = so * (gh * slope * cell + (1 - 2 * output) * zo * gh * tau)
                                    o[4 * H + j] = gh * (slope * dO - 2 * tau * ac * cell)
                                    o[5 * H + j] = gc * df
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
