/// Layer and neuron attributions, as Captum defines them with `attribute_to_layer_input=False`: the
/// attributions belong to the output of one node (the "layer", value `layer + 1`), and the rest of the
/// network sees that value as a hook replacing it would — every other value the later nodes read (a skip
/// connection around the layer) keeps its value at the actual input.
///
/// - Layer gradient (Captum's LayerGradientXActivation with `multiply_by_inputs=False`): ∂f_t/∂a at the
///   layer's activation a(x), the partial derivative with the skip values held fixed; × a(x) for
///   LayerGradientXActivation.
/// - Layer Integrated Gradients (LayerIntegratedGradients): the path runs between the layer's activations
///   a(x') and a(x), φ = (a(x) − a(x')) ⊙ Σ_k w_k ∂f_t/∂a at a(x') + α_k(a(x) − a(x')), the nodes after
///   the layer evaluated there with the skip values of x. Delta: Σφ − (f_t(x) − f_t(x')), exact up to
///   quadrature when the layer is a cut (no skip around it).
/// - Layer conductance (LayerConductance): the input path x' + α_k(x − x') at the n + 1 nodes of the rule,
///   φ = Σ_{k<n} ∂f_t/∂a(α_k) ⊙ (a(α_{k+1}) − a(α_k)).
/// - GradCAM (LayerGradCam): weights w_c = the mean over the layer's spatial axes of ∂f_t/∂a_c, the map
///   Σ_c w_c a_c (ReLU'd when asked), optionally upsampled to the input's spatial size as Captum's
///   LayerAttribution.interpolate (torch's F.interpolate, nearest or (bi)linear with align_corners=False).
/// - Neuron Integrated Gradients (NeuronIntegratedGradients): IG of one element of the layer's output,
///   the network truncated after the layer.
///
/// Every pass goes through the propagation driver: forward from the input to the layer, forward from the
/// layer's value (interior) with the skip values given, backward from the output to the layer holding
/// earlier values fixed. The network is used as built (``Network/gradientEquivalent`` would move or fold
/// the very node whose output is attributed). Token networks take token ids as inputs and baselines
/// (none: id 0, as Captum's zero baseline tensor).
extension Network {
    /// Value index of node `layer`'s output, or an out-of-range error naming `layer`.
    func layerValue(_ layer: Int) throws -> Int {
        guard layer >= 0, layer < layers.count else {
            throw SwiftAttrError(.outOfRange, "layer = \(layer) is out of range: the model has \(layers.count) nodes (0..<\(layers.count))")
        }
        return layer + 1
    }

    /// Per-example shape of node `layer`'s output (checked).
    public func layerShape(_ layer: Int) throws -> [Int] { shapes[try layerValue(layer)] }

    /// One-hot output cotangents (rows × outputSize): `weights[r]` (default 1) at `targets[r]`.
    func targetSeed(_ targets: [Int], weights: [Float]? = nil) -> [Float] {
        let out = outputSize
        var seed = [Float](repeating: 0, count: targets.count * out)
        for (r, t) in targets.enumerated() { seed[r * out + t] = weights?[r] ?? 1 }
        return seed
    }

    /// The checked inputs of a layer call: the value attributed, the targets and (when `baselines` is not
    /// nil) the baselines, one per example (token networks: ids).
    private func layerCall(_ x: [Float], rows: Int, layer: Int, targets: [Int], baselines: [Float]? = nil) throws
        -> (value: Int, targets: [Int], baselines: [Float]) {
        let v = try layerValue(layer)
        try checkInputs(x, rows: rows)
        let t = try expandTargets(targets, rows: rows)
        guard let baselines else { return (v, t, []) }
        let base = try expandBaselines(baselines, rows: rows)
        try checkInputs(base, rows: rows, name: "baselines")
        return (v, t, base)
    }

    /// Values `wanted` (rows × size each) for `rows` examples, forward in chunks of `chunk` rows.
    func values(_ x: [Float], rows: Int, at wanted: [Int], chunk: Int) -> [[Float]] {
        let top = wanted.max() ?? 0, d = inputSize
        let buffers = wanted.map { UnsafeMutablePointer<Float>.allocate(capacity: rows * size(at: $0)) }
        defer { for b in buffers { b.deallocate() } }
        Parallel.forEachChunk(count: rows, chunk: chunk) { _, range, _ in
            let xs = Array(x[(range.lowerBound * d)..<(range.upperBound * d)])
            let walked = walkForward(xs, from: 0, to: top, keep: true) { i, reads in applyNode(i, reads, rows: range.count, argmax: nil) }
            for (k, v) in wanted.enumerated() {
                let width = size(at: v)
                (buffers[k] + range.lowerBound * width).initialize(from: walked[v]!, count: range.count * width)
            }
        }
        return wanted.indices.map { Array(UnsafeBufferPointer(start: buffers[$0], count: rows * size(at: wanted[$0]))) }
    }

    /// Rows `examples[r]` of `rows`-row blocks (`width` floats each), gathered in order.
    func gatherRows(_ values: [Float], width: Int, _ examples: [Int]) -> [Float] {
        uninitializedFloats(examples.count * width) { out in
            values.withUnsafeBufferPointer { vp in
                for (r, e) in examples.enumerated() { (out + r * width).update(from: vp.baseAddress! + e * width, count: width) }
            }
        }
    }

    // MARK: layer gradients

    /// The gradient ∂f_t/∂a of the target output with respect to node `layer`'s output a, and a itself
    /// (both rows × size of the layer's output).
    public struct LayerGradients: Sendable {
        public var gradients: [Float]
        public var activations: [Float]
    }

    /// Gradients at node `layer`'s output (see ``LayerGradients``), chunks of rows in parallel.
    public func layerGradients(_ x: [Float], rows: Int, layer: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> LayerGradients {
        let dv = size(at: try layerValue(layer))
        var gradients = [Float](repeating: 0, count: rows * dv), activations = gradients
        try gradients.withUnsafeMutableBufferPointer { gp in
            try activations.withUnsafeMutableBufferPointer { ap in
                let g = gp.baseAddress!, a = ap.baseAddress!
                try forEachLayerChunk(x, rows: rows, layer: layer, targets: targets, internalBatchSize: internalBatchSize) { range, back, act in
                    (g + range.lowerBound * dv).update(from: back, count: range.count * dv)
                    (a + range.lowerBound * dv).update(from: act, count: range.count * dv)
                }
            }
        }
        return LayerGradients(gradients: gradients, activations: activations)
    }

    /// The one forward-and-pullback loop of the layer methods: chunks of rows in parallel, each handed to
    /// `body` as (its rows, ∂f_t/∂a, a), both range.count × the size of node `layer`'s output, so that a
    /// method reduces them per chunk without gathering full copies first.
    func forEachLayerChunk(
        _ x: [Float], rows: Int, layer: Int, targets: [Int], internalBatchSize: Int?,
        _ body: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>) -> Void
    ) throws {
        let (v, targets, _) = try layerCall(x, rows: rows, layer: layer, targets: targets)
        let chunk = try chunkRows(from: 0, requested: internalBatchSize)
        let d = inputSize
        Parallel.forEachChunk(count: rows, chunk: chunk) { _, range, _ in
            let tape = record(Array(x[(range.lowerBound * d)..<(range.upperBound * d)]), rows: range.count)
            let back = pullback(tape, cotangent: targetSeed(Array(targets[range])), to: v)
            let act = tape.value(v)
            back.withUnsafeBufferPointer { bp in act.withUnsafeBufferPointer { body(range, bp.baseAddress!, $0.baseAddress!) } }
        }
    }

    /// Layer saliency: ∂f_t/∂a at node `layer`'s output (its absolute value when `absolute`).
    public func layerSaliency(_ x: [Float], rows: Int, layer: Int, targets: [Int], absolute: Bool = true, internalBatchSize: Int? = nil) throws -> [Float] {
        let g = try layerGradients(x, rows: rows, layer: layer, targets: targets, internalBatchSize: internalBatchSize).gradients
        return absolute ? g.map(abs) : g
    }

    /// Layer input × gradient (Captum's LayerGradientXActivation): a ⊙ ∂f_t/∂a at node `layer`'s output a.
    public func layerGradientXActivation(_ x: [Float], rows: Int, layer: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        let g = try layerGradients(x, rows: rows, layer: layer, targets: targets, internalBatchSize: internalBatchSize)
        return zipMap(g.activations, g.gradients, *)
    }

    /// Layer DeepLIFT (Captum's LayerDeepLift): multipliers at node `layer`'s output a from the rules of the
    /// nodes after it, times a(x) − a(x⁰) (or the multipliers alone when not `multiplyByInputs`); the delta
    /// is Σφ − Δt, exact summation-to-delta when the layer is a cut. Baselines are inputs (none: zeros).
    public func layerDeepLift(
        _ x: [Float], rows: Int, baselines: [Float] = [], layer: Int, targets: [Int], rule: DeepLiftRule = .rescale,
        maxPool: MaxPoolRule = .crossMax, multiplyByInputs: Bool = true, internalBatchSize: Int? = nil
    ) throws -> DeepLiftAttributions {
        let v = try layerValue(layer)
        return try deepLift(x, rows: rows, baselines: baselines, targets: targets, rule: rule, maxPool: maxPool,
                            multiplyByInputs: multiplyByInputs, internalBatchSize: internalBatchSize, at: v)
    }

    // MARK: layer Integrated Gradients

    /// Layer Integrated Gradients of node `layer`'s output (Captum's LayerIntegratedGradients; see the
    /// type's notes): rows × size of the layer's output, and the delta Σφ − (f_t(x) − f_t(x')).
    /// `internalBatchSize`: path points per chunk.
    public func layerIntegratedGradients(
        _ x: [Float], rows: Int, baselines: [Float] = [], layer: Int, targets: [Int], steps: Int = 50,
        method: PathQuadrature = .gaussLegendre, internalBatchSize: Int? = nil
    ) throws -> IntegratedGradients {
        let (v, targets, base) = try layerCall(x, rows: rows, layer: layer, targets: targets, baselines: baselines)
        let (alphas, weights) = try method.rule(steps)
        let chunk = try chunkRows(from: v, requested: internalBatchSize)
        let rowChunk = try chunkRows(from: 0, requested: nil)
        return Parallel.singleThreadedBLAS {
            layerIntegratedGradients(x, rows: rows, base: base, value: v, targets: targets, alphas: alphas.map(Float.init),
                                     weights: weights.map(Float.init), chunk: chunk, rowChunk: rowChunk)
        }
    }

    private func layerIntegratedGradients(
        _ x: [Float], rows: Int, base: [Float], value v: Int, targets: [Int], alphas: [Float], weights: [Float], chunk: Int, rowChunk: Int
    ) -> IntegratedGradients {
        let steps = alphas.count, dv = size(at: v)
        let fixed = valuesRead(below: v, to: layers.count)
        let atInput = values(x, rows: rows, at: [v] + fixed, chunk: rowChunk)
        let aX = atInput[0], aB = values(base, rows: rows, at: [v], chunk: rowChunk)[0]
        let count = rows * steps
        let accumulators = WorkerAccumulators<Double>(count: rows * dv, workers: Parallel.workers(count: count, chunk: chunk))
        defer { accumulators.release() }
        Parallel.forEachChunk(count: count, chunk: chunk) { _, range, worker in
            let examples = range.map { $0 / steps }
            // a(x') + α(a(x) − a(x')), as Captum scales the layer's values.
            let h = uninitializedFloats(range.count * dv) { hp in
                aX.withUnsafeBufferPointer { xp in
                    aB.withUnsafeBufferPointer { bp in
                        for (r, j) in range.enumerated() {
                            let i = j / steps, a = alphas[j % steps]
                            let xi = xp.baseAddress! + i * dv, bi = bp.baseAddress! + i * dv, out = hp + r * dv
                            for k in 0..<dv { out[k] = bi[k] + a * (xi[k] - bi[k]) }
                        }
                    }
                }
            }
            var given = [Int: [Float]]()
            for (k, u) in fixed.enumerated() { given[u] = gatherRows(atInput[k + 1], width: size(at: u), examples) }
            let tape = record(h, rows: range.count, from: v, given: given)
            let g = pullback(tape, cotangent: targetSeed(examples.map { targets[$0] }, weights: range.map { weights[$0 % steps] }))
            let acc = accumulators[worker]
            g.withUnsafeBufferPointer { gp in
                for (r, i) in examples.enumerated() {
                    let dst = acc + i * dv, src = gp.baseAddress! + r * dv
                    for k in 0..<dv { dst[k] += Double(src[k]) }
                }
            }
        }
        let summed = accumulators.floatSum()
        var attributions = [Float](repeating: 0, count: rows * dv)
        for j in 0..<(rows * dv) { attributions[j] = (aX[j] - aB[j]) * summed[j] }
        let delta = completenessDelta(attributions, width: dv, x: x, base: base, rows: rows, targets: targets, chunk: rowChunk)
        return IntegratedGradients(attributions: attributions, delta: delta)
    }

    /// Per example: Σ_j φ_j − (f_t(x) − f_t(x')) (Captum's convergence delta of the layer methods).
    private func completenessDelta(_ phi: [Float], width: Int, x: [Float], base: [Float], rows: Int, targets: [Int], chunk: Int) -> [Float] {
        let fx = forwardRows(x, rows: rows, from: 0, to: layers.count, chunk: chunk)
        let fb = forwardRows(base, rows: rows, from: 0, to: layers.count, chunk: chunk)
        let out = outputSize
        return (0..<rows).map { i -> Float in
            var total: Double = 0
            for j in 0..<width { total += Double(phi[i * width + j]) }
            return Float(total - Double(fx[i * out + targets[i]] - fb[i * out + targets[i]]))
        }
    }

    // MARK: layer conductance

    /// Layer conductance of node `layer`'s output (Captum's LayerConductance): the input path at the
    /// `steps + 1` nodes α_0 < … < α_n of `method`, φ = Σ_{k<n} ∂f_t/∂a(α_k) ⊙ (a(α_{k+1}) − a(α_k)); the
    /// delta is Σφ − (f_t(x) − f_t(x')). `internalBatchSize`: path points per chunk (whole examples).
    public func layerConductance(
        _ x: [Float], rows: Int, baselines: [Float] = [], layer: Int, targets: [Int], steps: Int = 50,
        method: PathQuadrature = .gaussLegendre, internalBatchSize: Int? = nil
    ) throws -> IntegratedGradients {
        let (v, targets, base) = try layerCall(x, rows: rows, layer: layer, targets: targets, baselines: baselines)
        try Check.atMost(steps, Check.maximumSteps - 1, "n_steps")
        try Check.positive(steps, "n_steps")
        let alphas = try method.rule(steps + 1).alphas.map(Float.init)
        let points = steps + 1
        let chunk = max(1, try chunkRows(from: 0, requested: internalBatchSize) / points)
        let rowChunk = try chunkRows(from: 0, requested: nil)
        let d = inputSize, dv = size(at: v)
        var attributions = [Float](repeating: 0, count: rows * dv)
        Parallel.singleThreadedBLAS {
            attributions.withUnsafeMutableBufferPointer { ap in
                let out = ap.baseAddress!
                Parallel.forEachChunk(count: rows, chunk: chunk) { _, range, _ in
                    let n = range.count * points
                    let path = uninitializedFloats(n * d) { p in
                        for (r, i) in range.enumerated() {
                            for k in 0..<points {
                                let a = alphas[k], o = p + (r * points + k) * d
                                for j in 0..<d { o[j] = base[i * d + j] + a * (x[i * d + j] - base[i * d + j]) }
                            }
                        }
                    }
                    let tape = record(path, rows: n)
                    let g = pullback(tape, cotangent: targetSeed(range.flatMap { Array(repeating: targets[$0], count: points) }), to: v)
                    let a = tape.value(v)
                    for (r, i) in range.enumerated() {
                        let row = out + i * dv
                        for j in 0..<dv {
                            var total: Double = 0
                            for k in 0..<steps {
                                let q = (r * points + k) * dv + j
                                total += Double(g[q] * (a[q + dv] - a[q]))
                            }
                            row[j] = Float(total)
                        }
                    }
                }
            }
        }
        let delta = Parallel.singleThreadedBLAS {
            completenessDelta(attributions, width: dv, x: x, base: base, rows: rows, targets: targets, chunk: rowChunk)
        }
        return IntegratedGradients(attributions: attributions, delta: delta)
    }

    // MARK: GradCAM

    /// How GradCAM's map is brought to the input's spatial size (Captum's LayerAttribution.interpolate,
    /// which is torch's F.interpolate with a target size).
    public enum Upsampling: Int32, Sendable, CaseIterable {
        /// The map at the layer's resolution.
        case none = 0
        /// Nearest neighbour: source index ⌊dst · in/out⌋ (torch's "nearest", Captum's default).
        case nearest = 1
        /// Linear along each spatial axis, align_corners=False (torch's "linear" for 1-D, "bilinear" for 2-D).
        case linear = 2

        public var name: String {
            switch self {
            case .none: "none"
            case .nearest: "nearest"
            case .linear: "bilinear"
            }
        }
    }

    /// Per-example shape of ``gradCAM(_:rows:layer:targets:reluAttributions:upsampling:internalBatchSize:)``'s
    /// result: [1, spatial…] of the layer's output ([1] for a layer without spatial axes), or of the input
    /// when upsampled.
    public func gradCAMShape(layer: Int, upsampling: Upsampling) throws -> [Int] {
        let shape = try layerShape(layer)
        let spatial = Array(shape.dropFirst())
        switch upsampling {
        case .none:
            return [1] + spatial
        case .nearest, .linear:
            guard !spatial.isEmpty else { return [1] }
            let target = Array(inputShape.dropFirst())
            guard target.count == spatial.count else {
                throw SwiftAttrError.invalid("upsample: layer \(layer)'s output \(shape) has \(spatial.count) spatial axes and the input \(inputShape) has \(target.count); pass upsample=False (or 'none')")
            }
            return [1] + target
        }
    }

    /// GradCAM (Selvaraju et al. 2017; Captum's LayerGradCam): Σ_c w_c a_c with w_c the spatial mean of
    /// ∂f_t/∂a_c at node `layer`'s output, ReLU'd when `reluAttributions`, upsampled as `upsampling` says.
    /// Rows × the size of ``gradCAMShape(layer:upsampling:)``.
    public func gradCAM(
        _ x: [Float], rows: Int, layer: Int, targets: [Int], reluAttributions: Bool = true, upsampling: Upsampling = .nearest,
        internalBatchSize: Int? = nil
    ) throws -> [Float] {
        let outShape = try gradCAMShape(layer: layer, upsampling: upsampling)
        let shape = shapes[layer + 1]
        let channels = shape[0], plane = shape.dropFirst().reduce(1, *)
        // Per chunk, in parallel: the same sums in the same order as a serial pass over the rows.
        var cam = [Float](repeating: 0, count: rows * plane)
        try cam.withUnsafeMutableBufferPointer { cp in
            let camBase = cp.baseAddress!
            try forEachLayerChunk(x, rows: rows, layer: layer, targets: targets, internalBatchSize: internalBatchSize) { range, g, a in
                for r in 0..<range.count {
                    let row = camBase + (range.lowerBound + r) * plane
                    for c in 0..<channels {
                        let off = (r * channels + c) * plane
                        var mean: Float = 0
                        for k in 0..<plane { mean += g[off + k] }
                        mean /= Float(plane)
                        for k in 0..<plane { row[k] += mean * a[off + k] }
                    }
                    if reluAttributions { for k in 0..<plane { row[k] = max(row[k], 0) } }
                }
            }
        }
        guard outShape.count > 1, upsampling != .none else { return cam }
        return Self.interpolate(cam, planes: rows, from: Array(shape.dropFirst()), to: Array(outShape.dropFirst()), mode: upsampling)
    }

    /// torch's F.interpolate(size: to) of `planes` planes of shape `from` (1 or 2 axes): nearest, source
    /// ⌊dst · in/out⌋ (float32 scale, as torch); linear with align_corners=False, source
    /// max(0, (dst + ½) · in/out − ½) between ⌊src⌋ and the next index (clamped), separably per axis.
    static func interpolate(_ maps: [Float], planes: Int, from: [Int], to: [Int], mode: Upsampling) -> [Float] {
        /// For each output index along one axis: (i0, i1, λ0, λ1).
        func axis(_ input: Int, _ output: Int) -> [(Int, Int, Float, Float)] {
            let scale = Float(input) / Float(output)
            return (0..<output).map { o in
                switch mode {
                case .none, .nearest:
                    let i = min(Int((Float(o) * scale).rounded(.down)), input - 1)
                    return (i, i, 1, 0)
                case .linear:
                    let src = max(0, scale * (Float(o) + 0.5) - 0.5)
                    let i0 = min(Int(src), input - 1), i1 = i0 + (i0 < input - 1 ? 1 : 0)
                    let l1 = src - Float(i0)
                    return (i0, i1, 1 - l1, l1)
                }
            }
        }
        let rowsIn = from.count == 2 ? from[0] : 1, colsIn = from.last!
        let rowsOut = to.count == 2 ? to[0] : 1, colsOut = to.last!
        let ys = from.count == 2 ? axis(rowsIn, rowsOut) : [(0, 0, Float(1), Float(0))], xs = axis(colsIn, colsOut)
        let inPlane = rowsIn * colsIn, outPlane = rowsOut * colsOut
        if mode != .linear {
            // Nearest: a gather (what the blend below computes with weights 1 and 0, for finite values).
            let rowIndex = ys.map { $0.0 * colsIn }, colIndex = xs.map { $0.0 }
            return maps.withUnsafeBufferPointer { mp in
                uninitializedFloats(planes * outPlane) { out in
                    for p in 0..<planes {
                        let src = mp.baseAddress! + p * inPlane, dst = out + p * outPlane
                        for r in 0..<rowsOut {
                            let line = src + rowIndex[r], o = dst + r * colsOut
                            for c in 0..<colsOut { o[c] = line[colIndex[c]] }
                        }
                    }
                }
            }
        }
        return uninitializedFloats(planes * outPlane) { out in
            for p in 0..<planes {
                let src = p * inPlane
                for (r, (y0, y1, a0, a1)) in ys.enumerated() {
                    for (c, (x0, x1, b0, b1)) in xs.enumerated() {
                        let top = b0 * maps[src + y0 * colsIn + x0] + b1 * maps[src + y0 * colsIn + x1]
                        let bottom = b0 * maps[src + y1 * colsIn + x0] + b1 * maps[src + y1 * colsIn + x1]
                        out[p * outPlane + r * colsOut + c] = a0 * top + a1 * bottom
                    }
                }
            }
        }
    }

    // MARK: neuron Integrated Gradients

    /// The network's nodes `0..<layer + 1`: its output is node `layer`'s.
    func truncated(after layer: Int) throws -> Network {
        var net = try Network(inputShape: inputShape)
        for i in 0...layer { try net.append(layers[i], inputs: inputs[i]) }
        return net
    }

    /// Neuron Integrated Gradients (Captum's NeuronIntegratedGradients): IG of element `neuron` (flat index
    /// into one example's output of node `layer`) with respect to the input; the delta is Σφ minus the
    /// neuron's difference between x and x'.
    public func neuronIntegratedGradients(
        _ x: [Float], rows: Int, baselines: [Float] = [], layer: Int, neuron: Int, steps: Int = 50,
        method: PathQuadrature = .gaussLegendre, internalBatchSize: Int? = nil
    ) throws -> IntegratedGradients {
        let v = try layerValue(layer)
        guard neuron >= 0, neuron < size(at: v) else {
            throw SwiftAttrError(.outOfRange, "neuron = \(neuron) is out of range for layer \(layer)'s output of shape \(shapes[v]) (flat indices 0..<\(size(at: v)))")
        }
        return try truncated(after: layer).integratedGradients(
            x, rows: rows, baselines: baselines, targets: [neuron], steps: steps, method: method, internalBatchSize: internalBatchSize)
    }
}
