/// The second-order pass: exact Hessian–matrix products `H V` of one output with respect to the input,
/// for `rows` points at once, by forward-over-reverse differentiation (Pearlmutter 1994), walked by the
/// propagation driver like every other pass.
///
/// Forward: the ordinary values and, for each of the k directions in V, the tangent `T_v = J_v V` of every
/// value (the node's linear part applied to the k tangent rows; activations multiply by f′(z), max-pools
/// route by the recorded argmax, Softmax by its Jacobian). Backward: the gradient g and its tangent
/// ġ = d/dε ∇f(x + εV) together: through an affine node both by its transpose; through an activation
/// ġ_in = f′(z) ġ_out + f″(z) g_out ⊙ ż; through a final Softmax with cotangent u (s = softmax(z)),
/// ġ_in = J ġ_out + H_u ż where H_u = diag(a) − a sᵀ − s aᵀ, a = s ⊙ (u − u·s) is the Hessian of u·s.
/// Piecewise-linear nodes (ReLU, LeakyReLU, max-pool) contribute no curvature, add and concat are linear.
/// The signal at the input is (∇f, H V): k = inputSize with V = diag(Δx) gives the whole scaled Hessian, k = 1
/// a Hessian–vector product in O(size) memory per point. Every product of k tangent rows is one GEMM over
/// rows·k rows (the linear part of a node, run on the bias-free copy ``linearPart``).
extension Network {
    /// The same graph with every bias and batch-norm shift removed: its nodes apply the linear part of
    /// each affine node (tangents carry no bias).
    var linearPart: Network {
        var copy = try! Network(inputShape: inputShape)
        for (i, layer) in layers.enumerated() {
            let linear: Layer
            switch layer {
            case .dense(let d):
                linear = .dense(try! .init(weight: d.weight, bias: nil, outFeatures: d.outFeatures, inFeatures: d.inFeatures))
            case .conv1d(let c), .conv2d(let c):
                let bare = try! Layer.Convolution(weight: c.weight, bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                                  kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
                linear = c.kernel.count == 1 ? .conv1d(bare) : .conv2d(bare)
            case .batchNorm(let b):
                // scale / √(1 + 0) is the scale exactly; the shift β − μ·scale is 0.
                linear = .batchNorm(try! .init(gamma: b.scale, beta: nil, runningMean: .init(repeating: 0, count: b.channels),
                                               runningVar: .init(repeating: 1, count: b.channels), eps: 0))
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu, .softplus,
                 .sigmoid, .tanh, .softmax, .dropout, .add, .concat, .embedding, .lstm:
                // Embedding and LSTM: the second-order entry points reject them (checkSecondOrderSupport).
                linear = layer
            }
            try! copy.append(linear, inputs: inputs[i])
        }
        return copy
    }

    /// The same network with every ReLU replaced by Softplus(β) (Janizek et al.'s substitution, so that a
    /// ReLU network has curvature; β = 10 in their examples).
    public func withSoftplus(beta: Float) throws -> Network {
        guard beta.isFinite, beta > 0 else { throw SwiftAttrError.invalid("softplus_beta must be positive and finite (got \(beta))") }
        var copy = try Network(inputShape: inputShape)
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .relu: try copy.append(.softplus(beta: beta), inputs: inputs[i])
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .leakyReLU,
                 .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
                try copy.append(layer, inputs: inputs[i])
            }
        }
        return copy
    }

    /// Gradient and Hessian–direction products of output `targets[r]` at `rows` points `h` of value `start` (a
    /// cut; rows × size(at: start)), with respect to that value. `directions`: rows × k × size(at: start) (k
    /// directions per point). Returns `gradient` (rows × size) and `hv` (rows × k × size, entry (r, d) =
    /// H(h_r) v_{r,d}). `linear` must be ``linearPart``.
    func secondOrder(
        _ h: [Float], rows: Int, directions: [Float], k: Int, targets: [Int], linear: Network, from start: Int = 0
    ) -> (gradient: [Float], hv: [Float]) {
        let tape = record(h, rows: rows, from: start)
        let end = layers.count
        let tangents = walkForward(directions, from: start, to: end, keep: true) { i, reads -> [Float] in
            tangentNode(i, reads, tape: tape, k: k, linear: linear)
        }.map { $0 ?? [] }

        typealias Signal = (g: [Float], gd: [Float])
        let out = outputSize
        var seed = [Float](repeating: 0, count: rows * out)
        for r in 0..<rows { seed[r * out + targets[r]] = 1 }
        let seed0: Signal = (seed, [Float](repeating: 0, count: rows * k * out))
        let result = walkBackward(from: end, to: start, seed: seed0, node: { i, signal -> [Signal] in
            backwardNode(i, signal.g, signal.gd, tape: tape, tangents: tangents, k: k)
        }, accumulate: { a, b in addInPlace(&a.g, b.g); addInPlace(&a.gd, b.gd) })
        let p = size(at: start)
        return result.map { ($0.g, $0.gd) }
            ?? ([Float](repeating: 0, count: rows * p), [Float](repeating: 0, count: rows * k * p))
    }

    /// The tangents (rows × k × size(i + 1)) of node i's output from those of the values it reads.
    private func tangentNode(_ i: Int, _ reads: [[Float]], tape: Tape, k: Int, linear: Network) -> [Float] {
        let rows = tape.rows, outSize = size(at: i + 1)
        switch layers[i] {
        case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
            return linear.applyNode(i, reads, rows: rows * k, argmax: nil)
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            let f = Activation(layers[i])!
            let z = tape.value(input(of: i)), y = tape.value(i + 1), t = reads[0]
            return uninitializedFloats(rows * k * outSize) { out in
                for r in 0..<rows {
                    for m in 0..<outSize {
                        let slope = f.derivative(at: z[r * outSize + m], output: y[r * outSize + m])
                        for d in 0..<k { let j = (r * k + d) * outSize + m; out[j] = slope * t[j] }
                    }
                }
            }
        case .maxPool1d, .maxPool2d:
            let inSize = size(at: input(of: i)), argmax = tape.argmax[i - tape.start], t = reads[0]
            return uninitializedFloats(rows * k * outSize) { out in
                for r in 0..<rows {
                    for d in 0..<k {
                        let src = (r * k + d) * inSize, dst = (r * k + d) * outSize
                        for o in 0..<outSize { out[dst + o] = t[src + Int(argmax[r * outSize + o])] }
                    }
                }
            }
        case .embedding, .lstm:
            preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
        case .softmax:
            let s = tape.value(i + 1), t = reads[0]
            return uninitializedFloats(rows * k * outSize) { out in
                for r in 0..<rows {
                    for d in 0..<k {
                        let base = (r * k + d) * outSize
                        var dot: Float = 0
                        for m in 0..<outSize { dot += t[base + m] * s[r * outSize + m] }
                        for m in 0..<outSize { out[base + m] = s[r * outSize + m] * (t[base + m] - dot) }
                    }
                }
            }
        }
    }

    /// (g, ġ) at the values node i reads from (g, ġ) at its output.
    private func backwardNode(_ i: Int, _ g: [Float], _ gd: [Float], tape: Tape, tangents: [[Float]], k: Int) -> [(g: [Float], gd: [Float])] {
        let rows = tape.rows, outSize = size(at: i + 1)
        let reads = inputs[i].map { tape.value($0) }
        let gIn = pullbackNode(i, g, rows: rows, reads: reads, output: tape.value(i + 1), argmax: tape.argmax[i - tape.start])
        switch layers[i] {
        case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
            let gdIn = pullbackNode(i, gd, rows: rows * k, reads: [], output: [], argmax: [])
            return zip(gIn, gdIn).map { ($0, $1) }
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            let f = Activation(layers[i])!
            let z = reads[0], y = tape.value(i + 1), t = tangents[input(of: i) - tape.start]
            let gdIn = uninitializedFloats(rows * k * outSize) { out in
                for r in 0..<rows {
                    for m in 0..<outSize {
                        let e = r * outSize + m
                        let slope = f.derivative(at: z[e], output: y[e])
                        let curvature = f.secondDerivative(at: z[e], output: y[e]) * g[e]
                        for d in 0..<k { let j = (r * k + d) * outSize + m; out[j] = slope * gd[j] + curvature * t[j] }
                    }
                }
            }
            return [(gIn[0], gdIn)]
        case .maxPool1d, .maxPool2d:
            let inSize = size(at: input(of: i)), argmax = tape.argmax[i - tape.start]
            var gdIn = [Float](repeating: 0, count: rows * k * inSize)
            for r in 0..<rows {
                for d in 0..<k {
                    let src = (r * k + d) * outSize, dst = (r * k + d) * inSize
                    for o in 0..<outSize { gdIn[dst + Int(argmax[r * outSize + o])] += gd[src + o] }
                }
            }
            return [(gIn[0], gdIn)]
        case .embedding, .lstm:
            preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
        case .softmax:
            let s = tape.value(i + 1), t = tangents[input(of: i) - tape.start]
            var gdIn = [Float](repeating: 0, count: rows * k * outSize)
            var a = [Float](repeating: 0, count: outSize)
            for r in 0..<rows {
                let sr = r * outSize
                var us: Float = 0
                for m in 0..<outSize { us += g[sr + m] * s[sr + m] }
                for m in 0..<outSize { a[m] = s[sr + m] * (g[sr + m] - us) }
                for d in 0..<k {
                    let base = (r * k + d) * outSize
                    var gs: Float = 0, ts: Float = 0, ta: Float = 0
                    for m in 0..<outSize {
                        gs += gd[base + m] * s[sr + m]; ts += t[base + m] * s[sr + m]; ta += t[base + m] * a[m]
                    }
                    for m in 0..<outSize {
                        gdIn[base + m] = s[sr + m] * (gd[base + m] - gs) + a[m] * t[base + m] - a[m] * ts - s[sr + m] * ta
                    }
                }
            }
            return [(gIn[0], gdIn)]
        }
    }
}
