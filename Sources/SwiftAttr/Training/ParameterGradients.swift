/// Trainable parameters and their gradients.
///
/// Every node kind's parameters, in PyTorch's order and shapes (each parametrised node's weight, then its
/// bias; nodes in topological order), so `net.parameters` lines up with `list(module.parameters())` of
/// the model it came from. A Linear or convolution built without a bias has a zero bias here, which
/// training learns. BatchNorm's parameters are γ (weight) and β (bias) in **inference semantics**: the
/// running mean and variance stay fixed (they are statistics, not parameters) and each example is
/// normalised by them, as `module.eval()` does in PyTorch; training never updates them, and no batch
/// statistics are used (so a mini-batch's examples do not interact).
extension Layer {
    /// Shapes of the layer's parameters (weight, then bias); empty for kinds without parameters.
    public var parameterShapes: [[Int]] {
        switch self {
        case .dense(let d): [[d.outFeatures, d.inFeatures], [d.outFeatures]]
        case .conv1d(let c), .conv2d(let c): [[c.outChannels, c.inChannels] + c.kernel, [c.outChannels]]
        case .batchNorm(let b): [[b.channels], [b.channels]]
        case .embedding(let e): [[e.vocabularySize, e.dimension]]
        case .lstm(let l): [[4 * l.hiddenSize, l.inputSize], [4 * l.hiddenSize, l.hiddenSize], [4 * l.hiddenSize], [4 * l.hiddenSize]]
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat: []
        }
    }

    /// The layer's parameters (weight, then bias), in the order and shapes of ``parameterShapes``.
    public var parameters: [[Float]] {
        switch self {
        case .dense(let d): [d.weight, d.bias]
        case .conv1d(let c), .conv2d(let c): [c.weight, c.bias]
        case .batchNorm(let b): [b.gamma, b.beta]
        case .embedding(let e): [e.weight]
        case .lstm(let l): [l.weightIH, l.weightHH, l.biasIH, l.biasHH]
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat: []
        }
    }

    /// The same layer with parameters `p` (as many arrays as ``parameterShapes``, each of its size; the
    /// layer's initialiser checks them, finiteness included).
    public func replacingParameters(_ p: [[Float]]) throws -> Layer {
        switch self {
        case .dense(let d):
            return .dense(try .init(weight: p[0], bias: p[1], outFeatures: d.outFeatures, inFeatures: d.inFeatures))
        case .conv1d(let c), .conv2d(let c):
            let new = try Layer.Convolution(weight: p[0], bias: p[1], outChannels: c.outChannels, inChannels: c.inChannels,
                                            kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
            if case .conv1d = self { return .conv1d(new) }
            return .conv2d(new)
        case .batchNorm(let b):
            return .batchNorm(try .init(gamma: p[0], beta: p[1], runningMean: b.runningMean, runningVar: b.runningVar, eps: b.eps))
        case .embedding(let e):
            return .embedding(try .init(weight: p[0], vocabularySize: e.vocabularySize, dimension: e.dimension))
        case .lstm(let l):
            return .lstm(try .init(weightIH: p[0], weightHH: p[1], biasIH: p[2], biasHH: p[3], inputSize: l.inputSize,
                                   hiddenSize: l.hiddenSize, returnSequences: l.returnSequences))
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat:
            return self
        }
    }

    /// Number of parameter arrays (``parameterShapes``' count, without building the shapes).
    var parameterCount: Int {
        switch self {
        case .dense, .conv1d, .conv2d, .batchNorm: 2
        case .embedding: 1
        case .lstm: 4
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat: 0
        }
    }

    /// ``replacingParameters(_:)`` for arrays known to have the layer's sizes and finite values (see
    /// ``Network/withTrustedParameters(_:)``): Linear and convolution layers take them without a pass over
    /// the values; the other kinds (small, or with derived statistics) go through their checked initialiser.
    func replacingTrustedParameters(_ p: ArraySlice<[Float]>) throws -> Layer {
        let p = Array(p)
        switch self {
        case .dense(let d):
            return .dense(Dense(trustedWeight: p[0], bias: p[1], like: d))
        case .conv1d(let c):
            return .conv1d(Convolution(trustedWeight: p[0], bias: p[1], like: c))
        case .conv2d(let c):
            return .conv2d(Convolution(trustedWeight: p[0], bias: p[1], like: c))
        case .batchNorm, .embedding, .lstm, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat:
            return try replacingParameters(p)
        }
    }

    /// PyTorch's default initialisation of the layer's parameters (see ``Network/initialized(seed:)``);
    /// `draw(k, count, bound)` returns `count` uniforms on (−bound, bound) for parameter array `k`.
    func defaultParameters(_ draw: (Int, Int, Float) -> [Float]) -> [[Float]] {
        switch self {
        case .dense(let d):
            let bound = 1 / Float(d.inFeatures).squareRoot()
            return [draw(0, d.weight.count, bound), draw(1, d.bias.count, bound)]
        case .conv1d(let c), .conv2d(let c):
            let bound = 1 / Float(c.inChannels * c.kernel.reduce(1, *)).squareRoot()
            return [draw(0, c.weight.count, bound), draw(1, c.bias.count, bound)]
        case .batchNorm(let b):
            return [[Float](repeating: 1, count: b.channels), [Float](repeating: 0, count: b.channels)]
        case .embedding(let e):
            // PyTorch: N(0, 1). Here uniform with the same variance, U(−√3, √3) (the draws are uniforms).
            return [draw(0, e.weight.count, Float(3).squareRoot())]
        case .lstm(let l):
            // PyTorch: every LSTM parameter U(−1/√H, 1/√H).
            let bound = 1 / Float(l.hiddenSize).squareRoot()
            return [draw(0, l.weightIH.count, bound), draw(1, l.weightHH.count, bound), draw(2, l.biasIH.count, bound),
                    draw(3, l.biasHH.count, bound)]
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat:
            return []
        }
    }
}

extension Network {
    /// Shapes of every parameter array, in PyTorch's order (see ``Layer/parameterShapes``).
    public var parameterShapes: [[Int]] { layers.flatMap(\.parameterShapes) }

    /// Every parameter array, in the order of ``parameterShapes``.
    public var parameters: [[Float]] { layers.flatMap(\.parameters) }

    /// Total number of parameter floats.
    public var parameterCount: Int { parameterShapes.reduce(0) { $0 + $1.reduce(1, *) } }

    /// For messages: "layer 3 (Linear) bias" for each parameter array.
    public var parameterNames: [String] {
        layers.enumerated().flatMap { i, layer in
            layer.parameterShapes.indices.map { k in "layer \(i) (\(layer.name)) \(k == 0 ? "weight" : "bias")" }
        }
    }

    /// The same graph with parameters `p` (the order and shapes of ``parameterShapes``), checked: the count
    /// of arrays, each array's size, finiteness.
    public func withParameters(_ p: [[Float]]) throws -> Network {
        let shapes = parameterShapes
        guard p.count == shapes.count else {
            throw SwiftAttrError.shape("parameters: the network has \(shapes.count) parameter arrays, got \(p.count)")
        }
        let names = parameterNames
        for (k, (array, shape)) in zip(p, shapes).enumerated() where array.count != shape.reduce(1, *) {
            throw SwiftAttrError.shape("parameters[\(k)] (\(names[k])): expected \(shape.map(String.init).joined(separator: "×")) = \(shape.reduce(1, *)) values, got \(array.count)")
        }
        var net = try Network(inputShape: inputShape)
        var offset = 0
        for (i, layer) in layers.enumerated() {
            let n = layer.parameterShapes.count
            let replaced: Layer
            do {
                replaced = n == 0 ? layer : try layer.replacingParameters(Array(p[offset..<(offset + n)]))
            } catch let error as SwiftAttrError {
                throw SwiftAttrError(error.code, "parameters of layer \(i) (\(layer.name)): \(error.message)")
            }
            try net.append(replaced, inputs: inputs[i])
            offset += n
        }
        return net
    }

    /// The same graph with PyTorch's default initialisation, seeded: weights by `kaiming_uniform_(a=√5)`
    /// and biases by U(−1/√fan_in, 1/√fan_in) — both uniform on (−1/√fan_in, 1/√fan_in), fan_in the
    /// inputs of one output (Linear: in_features; convolution: in_channels·∏kernel) — and BatchNorm γ = 1,
    /// β = 0 (running statistics unchanged). The draws are Philox uniforms of (seed, parameter array,
    /// element) (``CounterRandom``, stream "INIT"), so they depend on nothing else; they are not torch's
    /// random numbers (only their distribution is torch's).
    public func initialized(seed: UInt64) throws -> Network {
        var arrays: [[Float]] = []
        for layer in layers {
            let first = arrays.count
            arrays += layer.defaultParameters { k, count, bound in
                let array = UInt64(first + k)
                return (0..<count).map { e in
                    let u = CounterRandom.uniforms(seed: seed, example: array, sample: Self.initializationStream, block: UInt32(e / 2))
                    return Float((2 * (e % 2 == 0 ? u.0 : u.1) - 1) * Double(bound))
                }
            }
        }
        return try withParameters(arrays)
    }

    /// Philox `sample` words that keep the trainer's random streams apart.
    static let initializationStream: UInt32 = 0x494E_4954  // "INIT"
    static let shuffleStream: UInt32 = 0x5348_5546  // "SHUF"
}

// MARK: - Reverse pass to the parameters

extension Network {
    /// The gradient of ⟨`cotangent`, value `tape.end`⟩ with respect to every parameter (the order of
    /// ``parameters``; zeros for nodes outside the tape or off every path to its end) and, when
    /// `inputCotangent`, with respect to value `tape.start`. Walked by the propagation driver, one
    /// ``backward(node:_:tape:inputCotangent:)`` per node. Without `inputCotangent` the cotangent of value
    /// `tape.start` is never formed: nodes that read only it compute their parameter gradients alone (for
    /// a first Linear layer, a third of its backward work).
    func parameterGradients(_ tape: Tape, cotangent: [Float], inputCotangent: Bool = false) -> (parameters: [[Float]], input: [Float]?) {
        var perNode = [[[Float]]?](repeating: nil, count: layers.count)
        let dx = walkBackward(from: tape.end, to: tape.start, seed: cotangent, node: { i, dy in
            let reads = inputs[i]
            let needed = inputCotangent || reads.contains { $0 != tape.start }
            let step = backward(node: i, dy, tape: tape, inputCotangent: needed)
            perNode[i] = step.parameters
            // Value tape.start gets an empty signal from every reader when its cotangent is not wanted
            // (empty signals sum to empty under addInPlace).
            return inputCotangent ? step.inputs : zip(reads, step.inputs).map { $0 == tape.start ? [] : $1 }
        }, accumulate: addInPlace)
        var gradients: [[Float]] = []
        for (i, layer) in layers.enumerated() {
            gradients += perNode[i] ?? layer.parameterShapes.map { [Float](repeating: 0, count: $0.reduce(1, *)) }
        }
        guard inputCotangent else { return (gradients, nil) }
        return (gradients, dx ?? [Float](repeating: 0, count: tape.rows * size(at: tape.start)))
    }

    /// One node's reverse step from `dy` at its output: the cotangents of the values it reads (the input
    /// pullback, ``pullbackNode(_:_:rows:reads:output:argmax:)``; empty arrays unless `inputCotangent`) and
    /// of its parameters (in ``Layer/parameterShapes`` order), batched over the tape's rows as GEMMs:
    /// Linear `dW = dYᵀ·X`, convolutions `dW = dY·colsᵀ` on the im2col matrix of the recorded input.
    func backward(node i: Int, _ dy: [Float], tape: Tape, inputCotangent: Bool) -> (inputs: [[Float]], parameters: [[Float]]) {
        let rows = tape.rows
        let reads = inputs[i].map { tape.value($0) }
        let steps = tape.steps[i - tape.start]
        var dx: [[Float]] {
            inputCotangent
                ? pullbackNode(i, dy, rows: rows, reads: reads, output: tape.value(i + 1), argmax: tape.argmax[i - tape.start], steps: steps)
                : inputs[i].map { _ in [Float]() }
        }
        switch layers[i] {
        case .dense(let d):
            return (dx, denseParameterGradients(d, dy, input: reads[0], rows: rows))
        case .conv1d(let c), .conv2d(let c):
            let g = WindowGeometry(convolution: c, input: shapes[input(of: i)])
            return (dx, convolutionParameterGradients(c, g, dy, input: reads[0], rows: rows))
        case .batchNorm(let b):
            return (dx, batchNormParameterGradients(b, dy, input: reads[0], rows: rows, size: size(at: input(of: i))))
        case .embedding(let e):
            return (dx, [embeddingParameterGradient(e, dy, ids: reads[0])])
        case .lstm(let l):
            // One backward recurrence gives the gate cotangents for both the input and the parameters.
            let L = shapes[input(of: i)][0]
            let dz = lstmGateCotangents(l, coefficients: lstmGradientCoefficients(l, steps, rows: rows, length: L), dy, rows: rows, length: L)
            return ([inputCotangent ? lstmInputCotangent(l, dz, steps: rows * L) : []],
                    lstmParameterGradients(l, dz, input: reads[0], steps: steps, rows: rows, length: L))
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
             .softplus, .sigmoid, .tanh, .softmax, .dropout, .add, .concat:
            return (dx, [])
        }
    }

    /// Linear: `dW (out×in) = dYᵀ·X` over the rows, `db = Σ_rows dY`.
    private func denseParameterGradients(_ d: Layer.Dense, _ dy: [Float], input x: [Float], rows: Int) -> [[Float]] {
        let dW = uninitializedFloats(d.outFeatures * d.inFeatures) { w in
            dy.withUnsafeBufferPointer { g in
                x.withUnsafeBufferPointer { xp in
                    BLAS.sgemm(transA: true, m: d.outFeatures, n: d.inFeatures, k: rows, a: g.baseAddress!, b: xp.baseAddress!, c: w)
                }
            }
        }
        return [dW, columnSums(dy, rows: rows, width: d.outFeatures)]
    }

    /// Convolution: with `cols (K × rows·P)` the im2col matrix of the recorded input and `dY` gathered to
    /// (O × rows·P), `dW (O×K) = dY·colsᵀ` in one GEMM and `db = Σ dY` per channel.
    func convolutionParameterGradients(_ c: Layer.Convolution, _ g: WindowGeometry, _ dy: [Float], input x: [Float], rows: Int) -> [[Float]] {
        let P = g.outputPlane, K = g.patchSize, O = c.outChannels, columns = rows * P
        let cols = uninitializedFloats(K * columns) { cp in
            x.withUnsafeBufferPointer { g.im2col($0.baseAddress!, rows: rows, into: cp) }
        }
        let gathered = rows == 1 ? dy : uninitializedFloats(O * columns) { t in
            dy.withUnsafeBufferPointer { d in
                for n in 0..<rows {
                    for o in 0..<O { (t + o * columns + n * P).update(from: d.baseAddress! + (n * O + o) * P, count: P) }
                }
            }
        }
        let dW = uninitializedFloats(O * K) { w in
            gathered.withUnsafeBufferPointer { t in
                cols.withUnsafeBufferPointer { cp in
                    BLAS.sgemm(transB: true, m: O, n: K, k: columns, a: t.baseAddress!, b: cp.baseAddress!, c: w)
                }
            }
        }
        let db = gathered.withUnsafeBufferPointer { t in
            (0..<O).map { o -> Float in
                var s: Double = 0
                for k in 0..<columns { s += Double(t[o * columns + k]) }
                return Float(s)
            }
        }
        return [dW, db]
    }

    /// BatchNorm in inference semantics, `y = γ·x̂ + β` with `x̂ = (x − μ)/√(σ² + ε)` from the fixed
    /// running statistics: `dγ_c = Σ dy·x̂`, `dβ_c = Σ dy` over the rows and the channel's positions.
    private func batchNormParameterGradients(_ b: Layer.BatchNorm, _ dy: [Float], input x: [Float], rows: Int, size: Int) -> [[Float]] {
        let plane = size / b.channels
        var dGamma = [Double](repeating: 0, count: b.channels), dBeta = [Double](repeating: 0, count: b.channels)
        dy.withUnsafeBufferPointer { g in
            x.withUnsafeBufferPointer { xp in
                for n in 0..<rows {
                    for c in 0..<b.channels {
                        let mean = b.runningMean[c], inv = 1 / (b.runningVar[c] + b.eps).squareRoot()
                        let off = n * size + c * plane
                        var sg: Float = 0, sb: Float = 0
                        for k in 0..<plane {
                            sg += g[off + k] * ((xp[off + k] - mean) * inv)
                            sb += g[off + k]
                        }
                        dGamma[c] += Double(sg)
                        dBeta[c] += Double(sb)
                    }
                }
            }
        }
        return [dGamma.map { Float($0) }, dBeta.map { Float($0) }]
    }

    /// Embedding: the cotangent of each output row is added to the weight row of its id (ids checked when
    /// the tape was recorded).
    private func embeddingParameterGradient(_ e: Layer.Embedding, _ dy: [Float], ids: [Float]) -> [Float] {
        var dW = [Float](repeating: 0, count: e.weight.count)
        let E = e.dimension
        dW.withUnsafeMutableBufferPointer { w in
            dy.withUnsafeBufferPointer { g in
                for (r, id) in ids.enumerated() {
                    let row = w.baseAddress! + Int(id) * E, src = g.baseAddress! + r * E
                    for k in 0..<E { row[k] += src[k] }
                }
            }
        }
        return dW
    }

    /// LSTM parameters from the gate cotangents dz (rows·L × 4H): dW_ih = dzᵀX (X: rows·L × E),
    /// dW_hh = dzᵀH₋ with H₋ the previous hidden state of every step (0 at t = 0, h_{t−1} from the tape's
    /// step records), and db_ih = db_hh = Σ dz — three GEMMs' worth of work for the whole batch.
    private func lstmParameterGradients(_ l: Layer.LSTM, _ dz: [Float], input x: [Float], steps: [Float], rows: Int, length L: Int) -> [[Float]] {
        let H = l.hiddenSize
        return lstmParameterGradients(l, dz, input: x, previous: lstmPreviousRows(steps, width: 10 * H, offset: 9 * H, count: H, rows: rows * L, length: L))
    }

    /// dW_ih = dzᵀX, dW_hh = dzᵀH₋ and db_ih = db_hh = Σ dz from gate cotangents dz, inputs X and previous
    /// hidden states H₋ (rows·L rows each). With `tangentTerm` (double back-propagation's g_z, Ẋ, Ḣ₋) the
    /// weights also receive g_zᵀẊ and g_zᵀḢ₋, accumulated by a second GEMM each; the biases nothing.
    func lstmParameterGradients(
        _ l: Layer.LSTM, _ dz: [Float], input x: [Float], previous: [Float], tangentTerm: (dz: [Float], input: [Float], previous: [Float])? = nil
    ) -> [[Float]] {
        let H = l.hiddenSize, G = 4 * H, E = l.inputSize, R = dz.count / G
        func weight(_ columns: Int, _ terms: [(dz: [Float], values: [Float])]) -> [Float] {
            uninitializedFloats(G * columns) { w in
                for (t, term) in terms.enumerated() {
                    term.dz.withUnsafeBufferPointer { d in
                        term.values.withUnsafeBufferPointer { v in
                            BLAS.sgemm(transA: true, m: G, n: columns, k: R, a: d.baseAddress!, b: v.baseAddress!, beta: t == 0 ? 0 : 1, c: w)
                        }
                    }
                }
            }
        }
        let tangent = tangentTerm.map { [$0] } ?? []
        let dWih = weight(E, [(dz, x)] + tangent.map { ($0.dz, $0.input) })
        let dWhh = weight(H, [(dz, previous)] + tangent.map { ($0.dz, $0.previous) })
        let db = columnSums(dz, rows: R, width: G)
        return [dWih, dWhh, db, db]
    }

    /// The `count` floats at `offset` of each row's previous step (rows n·L + t of `width` floats; zeros at
    /// t = 0): H₋ from the hidden states of a step record.
    func lstmPreviousRows(_ records: [Float], width: Int, offset: Int, count: Int, rows R: Int, length L: Int) -> [Float] {
        uninitializedFloats(R * count) { hp in
            records.withUnsafeBufferPointer { s in
                for r in 0..<R {
                    if r % L == 0 {
                        (hp + r * count).update(repeating: 0, count: count)
                    } else {
                        (hp + r * count).update(from: s.baseAddress! + (r - 1) * width + offset, count: count)
                    }
                }
            }
        }
    }

    /// Sums over the rows of a rows × width matrix (float64 accumulation); zeros for an empty `m`.
    func columnSums(_ m: [Float], rows: Int, width: Int) -> [Float] {
        var s = [Double](repeating: 0, count: width)
        guard !m.isEmpty else { return [Float](repeating: 0, count: width) }
        m.withUnsafeBufferPointer { p in
            for r in 0..<rows { for k in 0..<width { s[k] += Double(p[r * width + k]) } }
        }
        return s.map { Float($0) }
    }
}

extension Layer.Dense {
    /// `d` with the weight and bias replaced by arrays of its sizes with finite values (unchecked).
    init(trustedWeight weight: [Float], bias: [Float], like d: Layer.Dense) {
        self.weight = weight
        self.bias = bias
        self.inFeatures = d.inFeatures
        self.outFeatures = d.outFeatures
    }
}

extension Layer.Convolution {
    /// `c` with the weight and bias replaced by arrays of its sizes with finite values (unchecked).
    init(trustedWeight weight: [Float], bias: [Float], like c: Layer.Convolution) {
        self.weight = weight
        self.bias = bias
        self.outChannels = c.outChannels
        self.inChannels = c.inChannels
        self.kernel = c.kernel
        self.stride = c.stride
        self.padding = c.padding
        self.dilation = c.dilation
    }
}
