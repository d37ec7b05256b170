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

    /// The forward record of a second-order pass: the tape, and for every activation node (index i − start)
    /// f′ and f″ at its input, computed with the value in one pass (``Activation/valueAndDerivatives(_:)``).
    struct SecondOrderTape {
        var tape: Tape
        var first: [[Float]]
        var second: [[Float]]
    }

    /// Runs nodes `start..<layers.count` on `h` keeping what a second-order pass reads.
    func recordSecondOrder(_ h: [Float], rows: Int, from start: Int) -> SecondOrderTape {
        let end = layers.count
        var argmax = [[Int32]](repeating: [], count: end - start)
        var first = [[Float]](repeating: [], count: end - start), second = first
        let values = walkForward(h, from: start, to: end, keep: true) { i, reads -> [Float] in
            switch layers[i] {
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let (y, d1, d2) = Activation(layers[i])!.valueAndDerivatives(reads[0])
                first[i - start] = d1
                second[i - start] = d2
                return y
            case .maxPool1d, .maxPool2d:
                let (y, positions) = applyRecordingArgmax(i, reads, rows: rows)
                argmax[i - start] = positions
                return y
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .softmax, .batchNorm, .dropout,
                 .add, .concat:
                return applyNode(i, reads, rows: rows, argmax: nil)
            case .embedding, .lstm:
                preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
            }
        }
        return SecondOrderTape(tape: Tape(start: start, end: end, rows: rows, values: values.map { $0 ?? [] }, argmax: argmax),
                               first: first, second: second)
    }

    /// Gradient and Hessian–direction products of output `targets[r]` at `rows` points `h` of value `start` (a
    /// cut; rows × size(at: start)), with respect to that value. `directions`: rows × k × size(at: start) (k
    /// directions per point). Returns `gradient` (rows × size) and `hv` (rows × k × size, entry (r, d) =
    /// H(h_r) v_{r,d}). `linear` must be ``linearPart``.
    func secondOrder(
        _ h: [Float], rows: Int, directions: [Float], k: Int, targets: [Int], linear: Network, from start: Int = 0
    ) -> (gradient: [Float], hv: [Float]) {
        let record = recordSecondOrder(h, rows: rows, from: start)
        let end = layers.count
        let tangents = walkForward(directions, from: start, to: end, keep: true) { i, reads -> [Float] in
            tangentNode(i, reads, record: record, k: k, linear: linear)
        }.map { $0 ?? [] }

        typealias Signal = (g: [Float], gd: [Float])
        let out = outputSize
        let seed0: Signal = (targetSeeds(rows: rows, targets: targets), [Float](repeating: 0, count: rows * k * out))
        let result = walkBackward(from: end, to: start, seed: seed0, node: { i, signal -> [Signal] in
            backwardNode(i, signal.g, signal.gd, record: record, tangents: tangents, k: k)
        }, accumulate: { a, b in addInPlace(&a.g, b.g); addInPlace(&a.gd, b.gd) })
        let p = size(at: start)
        return result.map { ($0.g, $0.gd) }
            ?? ([Float](repeating: 0, count: rows * p), [Float](repeating: 0, count: rows * k * p))
    }

    /// The tangents (rows × k × size(i + 1)) of node i's output from those of the values it reads.
    private func tangentNode(_ i: Int, _ reads: [[Float]], record: SecondOrderTape, k: Int, linear: Network) -> [Float] {
        let tape = record.tape, rows = tape.rows
        switch layers[i] {
        case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
            return linear.applyNode(i, reads, rows: rows * k, argmax: nil)
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            return scaleTangents(reads[0], by: record.first[i - tape.start], rows: rows, k: k, source: { $0 })
        case .maxPool1d, .maxPool2d:
            return poolTangents(i, reads[0], argmax: tape.argmax[i - tape.start], rows: rows, k: k, source: { $0 })
        case .embedding, .lstm:
            preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
        case .softmax:
            return softmaxTangents(reads[0], softmax: tape.value(i + 1), rows: rows, k: k, source: { $0 })
        }
    }

    /// out[r, d, m] = slope[r, m] · t[source(r), d, m]: an activation's tangents (`source` maps a row to the
    /// block of `t` it reads, for tangents shared by several rows).
    private func scaleTangents(_ t: [Float], by slope: [Float], rows: Int, k: Int, source: (Int) -> Int) -> [Float] {
        let size = slope.count / max(rows, 1)
        return uninitializedFloats(rows * k * size) { out in
            t.withUnsafeBufferPointer { tp in
                slope.withUnsafeBufferPointer { sp in
                    for r in 0..<rows {
                        let s = sp.baseAddress! + r * size, src = tp.baseAddress! + source(r) * k * size
                        for d in 0..<k {
                            let o = out + (r * k + d) * size, a = src + d * size
                            for m in 0..<size { o[m] = s[m] * a[m] }
                        }
                    }
                }
            }
        }
    }

    /// A max-pool's tangents: each output takes the tangent of its recorded argmax.
    private func poolTangents(_ i: Int, _ t: [Float], argmax: [Int32], rows: Int, k: Int, source: (Int) -> Int) -> [Float] {
        let inSize = size(at: input(of: i)), outSize = size(at: i + 1)
        return uninitializedFloats(rows * k * outSize) { out in
            for r in 0..<rows {
                for d in 0..<k {
                    let src = (source(r) * k + d) * inSize, dst = (r * k + d) * outSize
                    for o in 0..<outSize { out[dst + o] = t[src + Int(argmax[r * outSize + o])] }
                }
            }
        }
    }

    /// Softmax tangents J ż = s ⊙ (ż − ż·s).
    private func softmaxTangents(_ t: [Float], softmax s: [Float], rows: Int, k: Int, source: (Int) -> Int) -> [Float] {
        let size = s.count / max(rows, 1)
        return uninitializedFloats(rows * k * size) { out in
            for r in 0..<rows {
                for d in 0..<k {
                    let src = (source(r) * k + d) * size, dst = (r * k + d) * size
                    var dot: Float = 0
                    for m in 0..<size { dot += t[src + m] * s[r * size + m] }
                    for m in 0..<size { out[dst + m] = s[r * size + m] * (t[src + m] - dot) }
                }
            }
        }
    }

    /// (g, ġ) at the values node i reads from (g, ġ) at its output.
    private func backwardNode(_ i: Int, _ g: [Float], _ gd: [Float], record: SecondOrderTape, tangents: [[Float]], k: Int) -> [(g: [Float], gd: [Float])] {
        let tape = record.tape, rows = tape.rows, outSize = size(at: i + 1)
        switch layers[i] {
        case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
            let gIn = pullbackNode(i, g, rows: rows, reads: [], output: [], argmax: [])
            let gdIn = pullbackNode(i, gd, rows: rows * k, reads: [], output: [], argmax: [])
            return zip(gIn, gdIn).map { ($0, $1) }
        case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
            let slope = record.first[i - tape.start], second = record.second[i - tape.start]
            let t = tangents[input(of: i) - tape.start]
            let gIn = zipMap(g, slope) { $0 * $1 }
            let gdIn = uninitializedFloats(rows * k * outSize) { out in
                for r in 0..<rows {
                    for m in 0..<outSize {
                        let e = r * outSize + m
                        let s = slope[e], curvature = second[e] * g[e]
                        for d in 0..<k { let j = (r * k + d) * outSize + m; out[j] = s * gd[j] + curvature * t[j] }
                    }
                }
            }
            return [(gIn, gdIn)]
        case .maxPool1d, .maxPool2d:
            let inSize = size(at: input(of: i)), argmax = tape.argmax[i - tape.start]
            let gIn = pullbackNode(i, g, rows: rows, reads: [], output: [], argmax: argmax)
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
            let gIn = pullbackNode(i, g, rows: rows, reads: [], output: s, argmax: [])
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

    // MARK: Quadratic forms (the full interaction matrix)

    /// How many rows one block of forms-pass tangents serves: one block for all rows, one per group, one per
    /// row, or one block S for all rows scaled per row on the left (row r's tangents are diag(scale_r)·S).
    enum TangentSharing { case shared, perGroup, perRow, leftScaled }

    /// Tangents of a forms pass: blocks of k × size. `identity`: the shared block is the identity (an
    /// activation then gives diag(f′)·I, left-scaled, and the next linear node maps S once: no GEMM per row).
    private struct SharedTangent {
        var data: [Float]
        var sharing: TangentSharing
        var identity = false
        /// For `.leftScaled`: rows × k.
        var scale = [Float]()
    }

    /// Estimated multiply–adds per point of ``hessianForms`` with k directions starting shared-identity or per
    /// group, following the same sharing rules (linear nodes on non-per-row tangents and the activation on the
    /// identity cost nothing per point; a curved node contracts k²·size, every other per-row node k·its work).
    func formsCost(k: Int, identity: Bool, from start: Int) -> Int {
        var sharing = [TangentSharing](repeating: .perRow, count: layers.count - start + 1)
        var isIdentity = [Bool](repeating: false, count: layers.count - start + 1)
        sharing[0] = identity ? .shared : .perGroup
        isIdentity[0] = identity
        var cost = 0
        for i in start..<layers.count {
            let reads = inputs[i].map { $0 - start }, out = i + 1 - start, size = self.size(at: input(of: i))
            switch layers[i] {
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
                if reads.count == 1 && sharing[reads[0]] != .perRow {
                    sharing[out] = sharing[reads[0]]
                } else if reads.allSatisfy({ sharing[$0] == .shared || sharing[$0] == .perGroup }) {
                    sharing[out] = reads.allSatisfy { sharing[$0] == .shared } ? .shared : .perGroup
                } else {
                    let work: Int
                    switch layers[i] {
                    case .dense(let d): work = d.inFeatures * d.outFeatures
                    case .conv1d(let c), .conv2d(let c):
                        work = WindowGeometry(convolution: c, input: shapes[input(of: i)]).patchSize * self.size(at: i + 1)
                    case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat, .maxPool1d,
                         .maxPool2d, .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax:
                        work = self.size(at: i + 1)
                    case .embedding, .lstm:
                        preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
                    }
                    cost += k * work
                }
            case .elu, .softplus, .sigmoid, .tanh, .softmax, .relu, .leakyReLU, .maxPool1d, .maxPool2d:
                if Self.isCurved(layers[i]) { cost += k * k * size }
                if isIdentity[reads[0]], Activation(layers[i]) != nil { sharing[out] = .leftScaled } else { cost += k * size }
            case .embedding, .lstm:
                preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
            }
        }
        return cost
    }

    /// Smooth activations and Softmax: the nodes with curvature.
    static func isCurved(_ layer: Layer) -> Bool {
        switch layer {
        case .elu, .softplus, .sigmoid, .tanh, .softmax: true
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu,
             .leakyReLU, .batchNorm, .dropout, .add, .concat: false
        case .embedding, .lstm: false
        }
    }

    /// Path sums of Integrated and Expected Hessians as quadratic forms. The `rows` points `h` (at value
    /// `start`, a cut) come in consecutive groups `segments`, group g sharing k directions B_g at `start`
    /// (`basis`: groups × k × size(start); with `identityBasis`, the identity for every group, k = size(start)). Returns per
    /// group Σ_r wg_r ∇f(h_r) (groups × size(start)) and Σ_r wh_r B_g H(h_r) B_gᵀ (groups × k × k).
    ///
    /// Every node other than a smooth activation or Softmax is linear or piecewise linear, so the Hessian is
    /// Σ_n J_nᵀ C_n J_n over those curved nodes n: J_n the Jacobian of n's input, C_n the Hessian of
    /// g_nᵀ·node(z) with g_n the gradient at n's output (diag(f″(z) ⊙ g_n) for an activation, H_u with u = g_n
    /// for Softmax). Hence B H Bᵀ = Σ_n T_n C_n T_nᵀ with T_n = J_n B the forward tangents: one gradient pass, one
    /// tangent pass to the last curved node, and per curved node one GEMM over (points × size) per group —
    /// no tangent back-propagation. Tangents stay shared or per group through linear nodes (their GEMM runs on
    /// k or groups·k rows); a curved node reading such tangents contracts once per group, with its coefficients
    /// summed over the group's rows first.
    func hessianForms(
        _ h: [Float], rows: Int, segments: [Range<Int>], basis: [Float], identityBasis: Bool, k: Int, targets: [Int],
        gradientWeights: [Float], hessianWeights: [Float], linear: Network, from start: Int
    ) -> (gradient: [Double], forms: [Double]) {
        let record = recordSecondOrder(h, rows: rows, from: start)
        let tape = record.tape, end = layers.count, groups = segments.count, p = size(at: start)
        var groupOf = [Int](repeating: 0, count: rows)
        for (g, range) in segments.enumerated() { for r in range { groupOf[r] = g } }

        // Gradient pass, keeping each curved node's coefficients (activation: f″ ⊙ g; Softmax: g).
        var coefficients = [[Float]?](repeating: nil, count: end - start)
        let gradientAtStart = walkBackward(from: end, to: start, seed: targetSeeds(rows: rows, targets: targets), node: { i, gOut -> [[Float]] in
            switch layers[i] {
            case .elu, .softplus, .sigmoid, .tanh:
                coefficients[i - start] = zipMap(record.second[i - start], gOut) { $0 * $1 }
                return [zipMap(gOut, record.first[i - start]) { $0 * $1 }]
            case .relu, .leakyReLU:
                return [zipMap(gOut, record.first[i - start]) { $0 * $1 }]
            case .softmax:
                coefficients[i - start] = gOut
                return pullbackNode(i, gOut, rows: rows, reads: [], output: tape.value(i + 1), argmax: [])
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
                 .batchNorm, .dropout, .add, .concat:
                return pullbackNode(i, gOut, rows: rows, reads: [], output: [], argmax: tape.argmax[i - start])
            case .embedding, .lstm:
                preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
            }
        }, accumulate: addInPlace)
        var gradient = [Double](repeating: 0, count: groups * p)
        if let g = gradientAtStart {
            for (group, range) in segments.enumerated() {
                for r in range {
                    let w = Double(gradientWeights[r])
                    for m in 0..<p { gradient[group * p + m] += w * Double(g[r * p + m]) }
                }
            }
        }
        var forms = [Double](repeating: 0, count: groups * k * k)
        guard let last = (start..<end).last(where: { coefficients[$0 - start] != nil }) else { return (gradient, forms) }

        func block(_ sharing: TangentSharing, _ r: Int) -> Int {
            switch sharing {
            case .shared, .leftScaled: 0
            case .perGroup: groupOf[r]
            case .perRow: r
            }
        }
        /// `t` with one block per group or per row (from fewer).
        func expand(_ t: SharedTangent, to sharing: TangentSharing, size: Int) -> [Float] {
            let n = sharing == .perGroup ? groups : rows, width = k * size
            return uninitializedFloats(n * width) { o in
                t.data.withUnsafeBufferPointer { src in
                    for b in 0..<n {
                        if t.sharing == .leftScaled {
                            for d in 0..<k {
                                let c = t.scale[b * k + d], from = src.baseAddress! + d * size, to = o + b * width + d * size
                                for m in 0..<size { to[m] = c * from[m] }
                            }
                            continue
                        }
                        let from = t.sharing == .shared ? 0 : (sharing == .perGroup ? b : groupOf[b])
                        (o + b * width).update(from: src.baseAddress! + from * width, count: width)
                    }
                }
            }
        }
        func perRow(_ t: SharedTangent, size: Int) -> SharedTangent {
            t.sharing == .perRow ? t : SharedTangent(data: expand(t, to: .perRow, size: size), sharing: .perRow)
        }
        var a = [Float](), w = [Float](), sum = [Float](), product = [Float](repeating: 0, count: k * k)
        /// forms[g] += wh · T diag(c) Tᵀ over group g's rows (T: k × size per row): T gathered to A (k × n, the
        /// group's rows side by side) and W = A scaled by wh·c, then one GEMM A·Wᵀ per group.
        func contract(_ t: SharedTangent, _ c: [Float], size: Int) {
            let perRowBlocks = t.sharing == .perRow || t.sharing == .leftScaled
            let widest = perRowBlocks ? (segments.map(\.count).max() ?? 0) * size : size
            if a.count < k * widest { a = [Float](repeating: 0, count: k * widest); w = a }
            if sum.count < size { sum = [Float](repeating: 0, count: size) }
            t.data.withUnsafeBufferPointer { tp in
                c.withUnsafeBufferPointer { cp in
                    a.withUnsafeMutableBufferPointer { ap in
                        w.withUnsafeMutableBufferPointer { wp in
                            sum.withUnsafeMutableBufferPointer { sp in
                                product.withUnsafeMutableBufferPointer { qp in
                                    let tp = tp.baseAddress!, cp = cp.baseAddress!, ap = ap.baseAddress!, wp = wp.baseAddress!
                                    let sp = sp.baseAddress!, qp = qp.baseAddress!
                                    for (group, range) in segments.enumerated() where !range.isEmpty {
                                        let n: Int
                                        if t.sharing == .perRow {
                                            n = range.count * size
                                            for (q, r) in range.enumerated() {
                                                let wr = hessianWeights[r], cr = cp + r * size
                                                for d in 0..<k {
                                                    let src = tp + (r * k + d) * size, dst = d * n + q * size
                                                    let ad = ap + dst, wd = wp + dst
                                                    for m in 0..<size { let v = src[m]; ad[m] = v; wd[m] = v * (wr * cr[m]) }
                                                }
                                            }
                                        } else if t.sharing == .leftScaled {
                                            n = range.count * size
                                            for (q, r) in range.enumerated() {
                                                let wr = hessianWeights[r], cr = cp + r * size
                                                for d in 0..<k {
                                                    let src = tp + d * size, dst = d * n + q * size, sc = t.scale[r * k + d]
                                                    let ad = ap + dst, wd = wp + dst
                                                    for m in 0..<size { let v = sc * src[m]; ad[m] = v; wd[m] = v * (wr * cr[m]) }
                                                }
                                            }
                                        } else {
                                            // Tangents shared by the group's rows: sum the coefficients first.
                                            n = size
                                            sp.update(repeating: 0, count: size)
                                            for r in range {
                                                let wr = hessianWeights[r], cr = cp + r * size
                                                for m in 0..<size { sp[m] += wr * cr[m] }
                                            }
                                            let src = tp + block(t.sharing, range.lowerBound) * k * size
                                            for d in 0..<k {
                                                let sd = src + d * size, ad = ap + d * size, wd = wp + d * size
                                                for m in 0..<size { let v = sd[m]; ad[m] = v; wd[m] = v * sp[m] }
                                            }
                                        }
                                        // A·Wᵀ is symmetric: with A = [A₁; A₂] its blocks A₁W₁ᵀ, A₁W₂ᵀ, A₂W₂ᵀ (¾ of the work).
                                        let h = k / 2, l = k - h
                                        if h >= 8 {
                                            BLAS.sgemm(transB: true, m: h, n: k, k: n, a: ap, lda: n, b: wp, ldb: n, c: qp, ldc: k)
                                            BLAS.sgemm(transB: true, m: l, n: l, k: n, a: ap + h * n, lda: n, b: wp + h * n, ldb: n,
                                                       c: qp + h * k + h, ldc: k)
                                            for d in h..<k { for e in 0..<h { qp[d * k + e] = qp[e * k + d] } }
                                        } else {
                                            BLAS.sgemm(transB: true, m: k, n: k, k: n, a: ap, b: wp, c: qp)
                                        }
                                        forms.withUnsafeMutableBufferPointer { fp in
                                            for e in 0..<(k * k) { fp[group * k * k + e] += Double(qp[e]) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        var seedTangent = SharedTangent(data: basis, sharing: .perGroup)
        if identityBasis {
            seedTangent = SharedTangent(data: [Float](repeating: 0, count: p * p), sharing: .shared, identity: true)
            for m in 0..<p { seedTangent.data[m * p + m] = 1 }
        }
        _ = walkForward(seedTangent, from: start, to: last + 1, keep: false) { i, reads -> SharedTangent in
            let inSize = size(at: input(of: i))
            switch layers[i] {
            case .elu, .softplus, .sigmoid, .tanh:
                contract(reads[0], coefficients[i - start]!, size: inSize)
            case .softmax:
                // H_u = diag(a) − a sᵀ − s aᵀ with a = s ⊙ (u − u·s): the diagonal part as for an activation,
                // then T H_u Tᵀ −= wh (α σᵀ + σ αᵀ) per row, α = T a and σ = T s.
                let u = coefficients[i - start]!, s = tape.value(i + 1)
                var coefficient = [Float](repeating: 0, count: rows * inSize)
                for r in 0..<rows {
                    var us: Float = 0
                    for m in 0..<inSize { us += u[r * inSize + m] * s[r * inSize + m] }
                    for m in 0..<inSize { coefficient[r * inSize + m] = s[r * inSize + m] * (u[r * inSize + m] - us) }
                }
                let t = reads[0].sharing == .leftScaled ? perRow(reads[0], size: inSize) : reads[0]
                contract(t, coefficient, size: inSize)
                var alpha = [Double](repeating: 0, count: k), sigma = alpha
                for r in 0..<rows {
                    let src = block(t.sharing, r) * k * inSize, wr = Double(hessianWeights[r]), base = groupOf[r] * k * k
                    for d in 0..<k {
                        var x: Float = 0, y: Float = 0
                        for m in 0..<inSize { x += t.data[src + d * inSize + m] * coefficient[r * inSize + m]; y += t.data[src + d * inSize + m] * s[r * inSize + m] }
                        alpha[d] = Double(x); sigma[d] = Double(y)
                    }
                    for d in 0..<k { for e in 0..<k { forms[base + d * k + e] -= wr * (alpha[d] * sigma[e] + sigma[d] * alpha[e]) } }
                }
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
                 .batchNorm, .dropout, .add, .concat, .relu, .leakyReLU:
                break
            case .embedding, .lstm:
                preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
            }
            guard i < last else { return SharedTangent(data: [], sharing: .perRow) }
            switch layers[i] {
            case .dense, .conv1d, .conv2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .batchNorm, .dropout, .add, .concat:
                if reads.count == 1, reads[0].sharing == .leftScaled {
                    // diag(scale_r)·S through a linear map L: diag(scale_r)·(S Lᵀ), one product for all rows.
                    var t = reads[0]
                    t.data = linear.applyNode(i, [t.data], rows: k, argmax: nil)
                    return t
                }
                let sharing: TangentSharing = reads.allSatisfy { $0.sharing == .shared } ? .shared
                    : reads.allSatisfy { $0.sharing == .shared || $0.sharing == .perGroup } ? .perGroup : .perRow
                let n = sharing == .shared ? 1 : sharing == .perGroup ? groups : rows
                let data = zip(inputs[i], reads).map { v, t in t.sharing == sharing ? t.data : expand(t, to: sharing, size: self.size(at: v)) }
                return SharedTangent(data: linear.applyNode(i, data, rows: n * k, argmax: nil), sharing: sharing)
            case .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh:
                let t = reads[0], slope = record.first[i - start]
                if t.sharing == .shared && t.identity {
                    // I·diag(f′_r) = diag(f′_r)·I.
                    return SharedTangent(data: t.data, sharing: .leftScaled, scale: slope)
                }
                if t.sharing == .leftScaled {
                    // out[r, d, m] = scale[r, d]·S[d, m]·f′[r, m].
                    let data = uninitializedFloats(rows * k * inSize) { out in
                        t.data.withUnsafeBufferPointer { sp in
                            slope.withUnsafeBufferPointer { fp in
                                t.scale.withUnsafeBufferPointer { cp in
                                    for r in 0..<rows {
                                        let f = fp.baseAddress! + r * inSize
                                        for d in 0..<k {
                                            let c = cp[r * k + d], src = sp.baseAddress! + d * inSize, o = out + (r * k + d) * inSize
                                            for m in 0..<inSize { o[m] = c * src[m] * f[m] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    return SharedTangent(data: data, sharing: .perRow)
                }
                return SharedTangent(data: scaleTangents(t.data, by: slope, rows: rows, k: k, source: { block(t.sharing, $0) }),
                                     sharing: .perRow)
            case .maxPool1d, .maxPool2d:
                let t = reads[0].sharing == .leftScaled ? perRow(reads[0], size: inSize) : reads[0]
                return SharedTangent(data: poolTangents(i, t.data, argmax: tape.argmax[i - start], rows: rows, k: k,
                                                        source: { block(t.sharing, $0) }), sharing: .perRow)
            case .softmax:
                let t = reads[0].sharing == .leftScaled ? perRow(reads[0], size: inSize) : reads[0]
                return SharedTangent(data: softmaxTangents(t.data, softmax: tape.value(i + 1), rows: rows, k: k,
                                                           source: { block(t.sharing, $0) }), sharing: .perRow)
            case .embedding, .lstm:
                preconditionFailure("\(layers[i].name): the second-order entry points reject it (checkSecondOrderSupport)")
            }
        }
        return (gradient, forms)
    }
}
