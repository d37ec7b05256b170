/// Integrated Hessians and Expected Hessians (Janizek, Sturmfels, Lee 2020):
///
///     Γ_ij = Δx_i Δx_j ∫₀¹∫₀¹ αβ ∂²_ij f(x' + αβΔx) dα dβ + δ_ij Δx_i ∫₀¹∫₀¹ ∂_i f(x' + αβΔx) dα dβ,
///
/// so Σ_j Γ_ij = IG_i. The product t = αβ of two uniforms has density −ln t, so both double integrals are
/// ∫₀¹ h(t)(−ln t) dt; with t = e^(−u) they are Gauss–Laguerre integrals of weight u e^(−u) (DESIGN.md).
/// Every point's gradient and Hessian come from exact second-order passes: the full Γ from the quadratic-form
/// pass (``Network/hessianForms``: one gradient and one tangent pass per point, Γ's Hessian part as Σ T C Tᵀ
/// GEMMs), one row (interaction_index), and any network whose tangents exceed the memory budget, from
/// Hessian–direction products (``Network/secondOrder``) in direction blocks.
/// Token networks (an Embedding first) are explained at the embedding output: the methods run on
/// ``Network/embeddingSplit``'s rest at the embedded inputs and Γ is summed over both embedding axes
/// (L × L per example; baselines and references are token ids, none = zero embedding vectors).

/// Quadrature rules for ∫₀¹∫₀¹ h(αβ) dα dβ = ∫₀¹ h(t)(−ln t) dt: nodes t_k with weights for the gradient
/// term (Σ w h(t_k)) and for the Hessian term (Σ w t_k H(t_k)).
///
/// The default is Gauss–Legendre after t = v²: ∫₀¹ h(v²)·4v(−ln v) dv, whose nodes cluster at both ends of
/// the path. Measured on sharp integrands (h = σ(β(t − c)) and its derivative, β = 10, c ∈ {0.3, 0.6, 0.9}),
/// 32 nodes give relative errors below 1e-7 where Gauss–Laguerre (t = e^(−u)) gives 2e-3 to 1.4e-2: its
/// nodes crowd near t = 0 (only ~3 of 32 in t > ½), so a softplus(β = 10) network's curvature is missed
/// (completeness error 2.5e-2 at 32 nodes on the test MLP, 1e-4 only at 128).
public enum HessianQuadrature: Int32, Sendable, CaseIterable {
    /// Gauss–Legendre in v on [0, 1] after t = v² (weight 4v(−ln v) folded into the weights).
    case gaussLegendre = 0
    /// Generalised Gauss–Laguerre (weight u e^(−u)) after t = e^(−u); exact for h(t) a polynomial in ln t of
    /// degree < 2n. One node set serves both terms.
    case gaussLaguerre = 1
    /// path_explain's grid: s = ⌈√n⌉ points linspace(0, 1, s) for α and β, the s² products flattened, n of
    /// them kept at indices round(linspace(0, s² − 1, n)) (round half to even, as numpy), each weighted 1/n.
    case grid = 2

    public var name: String {
        switch self {
        case .gaussLegendre: "gausslegendre"
        case .gaussLaguerre: "gausslaguerre"
        case .grid: "grid"
        }
    }

    /// Nodes t_k and weights of the `n`-point rule (gradient weights w_k; Hessian weights w_k t_k).
    public func rule(_ n: Int) throws -> (t: [Double], gradientWeights: [Double], hessianWeights: [Double]) {
        try Check.positive(n, "n_steps")
        try Check.atMost(n, Check.maximumSteps, "n_steps")
        switch self {
        case .gaussLegendre:
            try Check.atMost(n, Check.maximumGaussLegendreSteps, "n_steps", " for gausslegendre")
            let (x, w) = PathQuadrature.gaussLegendreNodes(n)
            let v = x.map { ($0 + 1) / 2 }
            let weights = zip(v, w).map { v, w in (w / 2) * 4 * v * -_log(v) }
            let t = v.map { $0 * $0 }
            return (t, weights, zip(weights, t).map { $0 * $1 })
        case .gaussLaguerre:
            try Check.atMost(n, 256, "n_steps", " for gausslaguerre")
            let (u, w) = try Self.laguerreNodes(n)
            let t = u.map { _exp(-$0) }
            return (t, w, zip(w, t).map { $0 * $1 })
        case .grid:
            var s = Int(Double(n).squareRoot().rounded(.up))
            while s * s < n { s += 1 }
            let points = s == 1 ? [1.0] : (0..<s).map { Double($0) / Double(s - 1) }
            var products = [Double]()
            for a in points { for b in points { products.append(a * b) } }
            let last = Double(s * s - 1)
            let t = (0..<n).map { k -> Double in
                let position = n == 1 ? 0 : Double(k) * last / Double(n - 1)
                return products[Int(position.rounded(.toNearestOrEven))]
            }
            let w = [Double](repeating: 1 / Double(n), count: n)
            return (t, w, t.map { $0 / Double(n) })
        }
    }

    /// Nodes (ascending) and weights of the n-point Gauss rule for ∫₀^∞ g(u) u e^(−u) du (generalised
    /// Laguerre, α = 1) by Golub–Welsch: the eigenvalues of the Jacobi matrix (diagonal 2j + 2,
    /// off-diagonal √(j(j + 1))) are the nodes, Γ(2) = 1 times the squared first eigenvector entries the weights.
    static func laguerreNodes(_ n: Int) throws -> ([Double], [Double]) {
        var a = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            a[j * n + j] = 2 * Double(j) + 2
            if j + 1 < n {
                let b = (Double(j + 1) * Double(j + 2)).squareRoot()
                a[j * n + j + 1] = b
                a[(j + 1) * n + j] = b
            }
        }
        let nodes = try a.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: n, what: "Gauss–Laguerre nodes") }
        let weights = (0..<n).map { a[$0 * n] * a[$0 * n] }
        return (nodes, weights)
    }
}

extension Network {
    /// One point of a Hessian path: the network is evaluated at `h`; `delta` is Δx of its segment.
    private struct HessianPoint {
        var h: [Float]
        var delta: [Float]
        var gradientWeight: Double
        var hessianWeight: Double
    }

    /// Σ over `count` points `point(j)` of one example of `gradientWeight·δ_ij Δx_i ∂_i f + hessianWeight·Δx_i Δx_j ∂²_ij f`:
    /// the p×p matrix (row-major, symmetrised), or row `row` alone (p values, one Hessian–vector product per
    /// point). Points are evaluated `chunk` at a time; sums are in Double.
    private func interactionSum(
        count: Int, point: (Int) -> HessianPoint, target: Int, row: Int?, chunk: Int, directionBlock: Int, linear: Network
    ) -> [Float] {
        let p = inputSize
        var acc = [Double](repeating: 0, count: row == nil ? p * p : p)
        // Columns (directions e_j Δx_j) in blocks, so one point's tangents stay bounded; points are re-evaluated
        // per block (cheap beside the tangents).
        let columnBlocks: [Range<Int>] = row.map { [$0..<($0 + 1)] }
            ?? stride(from: 0, to: p, by: directionBlock).map { $0..<min(p, $0 + directionBlock) }
        for columns in columnBlocks {
            let k = columns.count
            var begin = 0
            while begin < count {
                let end = min(count, begin + chunk), n = end - begin
                let points = (begin..<end).map(point)
                var h = [Float](), directions = [Float](repeating: 0, count: n * k * p)
                h.reserveCapacity(n * p)
                for (r, q) in points.enumerated() {
                    h.append(contentsOf: q.h)
                    for (c, j) in columns.enumerated() { directions[(r * k + c) * p + j] = q.delta[j] }
                }
                let (g, hv) = secondOrder(h, rows: n, directions: directions, k: k, targets: [Int](repeating: target, count: n), linear: linear)
                for (r, q) in points.enumerated() {
                    let wg = q.gradientWeight, wh = q.hessianWeight
                    if let row {
                        // hv_j = H_{j,row} Δx_row: Γ_{row,j} += wh Δx_j hv_j.
                        for j in 0..<p { acc[j] += wh * Double(q.delta[j]) * Double(hv[r * p + j]) }
                        acc[row] += wg * Double(q.delta[row]) * Double(g[r * p + row])
                    } else {
                        // hv[c][i] = H_{i,j} Δx_j (j = columns[c]): Γ_{i,j} += wh Δx_i hv[c][i].
                        for (c, j) in columns.enumerated() {
                            let base = (r * k + c) * p
                            for i in 0..<p { acc[i * p + j] += wh * Double(q.delta[i]) * Double(hv[base + i]) }
                        }
                        if columns.lowerBound == 0 {
                            for i in 0..<p { acc[i * p + i] += wg * Double(q.delta[i]) * Double(g[r * p + i]) }
                        }
                    }
                }
                begin = end
            }
        }
        guard row == nil else { return acc.map(Float.init) }
        // Exact Hessians are symmetric; the two float32 evaluations of H_ij and H_ji differ by roundings only.
        var out = [Float](repeating: 0, count: p * p)
        for i in 0..<p { for j in 0..<p { out[i * p + j] = Float((acc[i * p + j] + acc[j * p + i]) / 2) } }
        return out
    }

    /// Points per chunk of the second-order pass with k directions: `requested`, or a 2²² float budget.
    private func hessianChunk(directions k: Int, requested: Int?, from start: Int = 0) throws -> Int {
        if let requested {
            try Check.positive(requested, "internal_batch_size")
            return requested
        }
        return max(1, (1 << 22) / max(1, (k + 1) * workingFloatsPerRow(from: start)))
    }

    /// Directions per second-order pass: as many as keep one point's tangents within 2²² floats (16 MiB).
    private func directionBlock(from start: Int) -> Int {
        max(1, min(inputSize, (1 << 22) / max(1, workingFloatsPerRow(from: start))))
    }

    /// The basis of the quadratic-form pass (``hessianForms``) at the prefix output, the cheaper by
    /// ``formsCost(k:identity:from:)``: the identity there (k = its size; Γ then needs Pᵀ S P per path group,
    /// and an activation right after the prefix turns it into left-scaled tangents that skip the next GEMM), or
    /// P·diag(Δx) (k = the input size, giving Γ's Hessian part directly). nil when one point's tangents would
    /// exceed the 2²² float budget either way (the direction-block path then builds Γ).
    /// `force` picks the basis (tests).
    private func formsPlan(from prefix: Int, force: Bool? = nil) -> (k: Int, identity: Bool)? {
        let working = workingFloatsPerRow(from: prefix)
        var best: (k: Int, identity: Bool, cost: Int)?
        for (k, identity) in [(size(at: prefix), true), (inputSize, false)]
        where (k + 1) * working <= 1 << 22 && (force.map { $0 == identity } ?? true) {
            let cost = formsCost(k: k, identity: identity, from: prefix)
            if best.map({ cost < $0.cost }) ?? true { best = (k, identity, cost) }
        }
        return best.map { ($0.k, $0.identity) }
    }

    /// Straight paths at the prefix output, in groups: group g runs from `from[g]` to `to[g]` (the points
    /// (1 − t)·from + t·to), its Δx is `delta[g]`, it adds to example `owner[g]` of the result and explains
    /// output `target[g]`; its nodes are `t[nodeStart[g]..<nodeStart[g + 1]]` with their weights.
    struct HessianPaths {
        let examples: Int, startSize: Int, inputSize: Int
        var from = [Float](), to = [Float](), delta = [Float]()
        var owner = [Int](), target = [Int]()
        var nodeStart = [0]
        var t = [Float](), gradientWeights = [Float](), hessianWeights = [Float]()

        init(examples: Int, startSize: Int, inputSize: Int) {
            self.examples = examples
            self.startSize = startSize
            self.inputSize = inputSize
        }

        var count: Int { owner.count }

        mutating func append<C: Collection, D: Collection>(
            from a: C, to b: C, delta dx: D, owner e: Int, target: Int, t nodes: [Double], gradientWeights wg: [Double],
            hessianWeights wh: [Double]
        ) where C.Element == Float, D.Element == Float {
            from.append(contentsOf: a); to.append(contentsOf: b); delta.append(contentsOf: dx)
            owner.append(e); self.target.append(target)
            t.append(contentsOf: nodes.map(Float.init))
            gradientWeights.append(contentsOf: wg.map(Float.init))
            hessianWeights.append(contentsOf: wh.map(Float.init))
            nodeStart.append(t.count)
        }
    }

    /// Γ (paths.examples × d × d) of the grouped paths by the quadratic-form pass ``hessianForms``: the path
    /// points (group, node) `chunk` at a time, each group's sums of gradients and of B H Bᵀ pulled back through
    /// the prefix P once the group is complete: Γ_ij += Δx_i Δx_j M_ij + δ_ij Δx_i (Pᵀ ḡ)_i with M = Pᵀ S P for
    /// the identity basis at the prefix output, M = S for the basis P·diag(Δx) (where S already carries Δx).
    /// Sums are in Double; M is symmetrised, so Γ is exactly symmetric.
    private func interactionsByForms(_ paths: HessianPaths, identity: Bool, prefix: Int, chunk: Int, linear: Network) -> [Float] {
        let d = inputSize, dp = size(at: prefix), groups = paths.count
        let k = identity ? dp : d
        var eye = [Float]()
        if identity {
            eye = [Float](repeating: 0, count: dp * dp)
            for m in 0..<dp { eye[m * dp + m] = 1 }
        }
        var acc = [Double](repeating: 0, count: paths.examples * d * d)
        var pendingGradient = [Int: [Double]](), pendingForms = [Int: [Double]]()

        func finish(_ done: [Int]) {
            guard !done.isEmpty else { return }
            let n = done.count
            let gradient = pullbackAffine(done.flatMap { pendingGradient[$0]!.map(Float.init) }, rows: n, from: prefix, to: 0)
            var m = done.flatMap { pendingForms[$0]!.map(Float.init) }
            if identity {
                // Rows of S pulled back: X = S·P (dp × d per group); the rows of Xᵀ pulled back: Pᵀ S P.
                let xs = pullbackAffine(m, rows: n * dp, from: prefix, to: 0)
                var xt = [Float](repeating: 0, count: n * d * dp)
                for f in 0..<n { for i in 0..<dp { for j in 0..<d { xt[(f * d + j) * dp + i] = xs[(f * dp + i) * d + j] } } }
                m = pullbackAffine(xt, rows: n * d, from: prefix, to: 0)
            }
            for (f, g) in done.enumerated() {
                let dx = paths.delta[(g * d)..<((g + 1) * d)].map(Double.init), o = paths.owner[g] * d * d, b = f * d * d
                // The basis P·diag(Δx) already carries Δx in M.
                let scale = identity ? dx : [Double](repeating: 1, count: d)
                for i in 0..<d {
                    for j in 0..<d {
                        acc[o + i * d + j] += scale[i] * scale[j] * (Double(m[b + i * d + j]) + Double(m[b + j * d + i])) / 2
                    }
                    acc[o + i * d + i] += dx[i] * Double(gradient[f * d + i])
                }
                pendingGradient[g] = nil
                pendingForms[g] = nil
            }
        }

        let total = paths.nodeStart[groups]
        var first = 0, begin = 0
        while begin < total {
            let end = min(total, begin + chunk), n = end - begin
            while paths.nodeStart[first + 1] <= begin { first += 1 }
            var segments = [Range<Int>](), members = [Int]()
            var g = first
            while g < groups && paths.nodeStart[g] < end {
                segments.append((max(paths.nodeStart[g], begin) - begin)..<(min(paths.nodeStart[g + 1], end) - begin))
                members.append(g)
                g += 1
            }
            var h = [Float](repeating: 0, count: n * dp), targets = [Int](repeating: 0, count: n)
            for (range, group) in zip(segments, members) {
                for r in range {
                    let tq = paths.t[begin + r], sq = 1 - tq
                    for m in 0..<dp { h[r * dp + m] = sq * paths.from[group * dp + m] + tq * paths.to[group * dp + m] }
                    targets[r] = paths.target[group]
                }
            }
            var basis = eye
            if !identity {
                // P·diag(Δx) of each group in the chunk: the prefix's linear part on the directions e_j Δx_j.
                var directions = [Float](repeating: 0, count: members.count * d * d)
                for (c, group) in members.enumerated() { for j in 0..<d { directions[(c * d + j) * d + j] = paths.delta[group * d + j] } }
                basis = linear.forward(directions, rows: members.count * d, from: 0, to: prefix)
            }
            let (gradient, forms) = hessianForms(
                h, rows: n, segments: segments, basis: basis, identityBasis: identity, k: k, targets: targets,
                gradientWeights: Array(paths.gradientWeights[begin..<end]), hessianWeights: Array(paths.hessianWeights[begin..<end]),
                linear: linear, from: prefix)
            var done = [Int]()
            for (c, group) in members.enumerated() {
                pendingGradient[group, default: [Double](repeating: 0, count: dp)].withUnsafeMutableBufferPointer { p in
                    for m in 0..<dp { p[m] += gradient[c * dp + m] }
                }
                pendingForms[group, default: [Double](repeating: 0, count: k * k)].withUnsafeMutableBufferPointer { p in
                    for e in 0..<(k * k) { p[e] += forms[c * k * k + e] }
                }
                if paths.nodeStart[group + 1] <= end { done.append(group) }
            }
            finish(done)
            begin = end
        }
        return acc.map(Float.init)
    }

    /// Token networks: Γ of the network after the embedding at the embedded inputs (`run(index)`: that method on
    /// `call.rest` for its interaction index, nil for the whole L·E × L·E matrix), summed over both embedding axes,
    /// Γ_tok[i, j] = Σ_{a∈i, b∈j} Γ[a, b] (rows × L × L), so rows sum to the token-level Integrated Gradients of
    /// the same path. `interactionIndex` is a token position i: Σ_{a∈i} Γ[a, ·] from the E rows of token i
    /// (Hessian–vector products, O(L·E) memory per example), then summed over b's embedding axis (rows × L).
    /// `sumEmbedding` false keeps the embedding coordinates (rows × L·E × L·E, or rows × L·E). Sums in Double.
    private func tokenInteractions(
        _ call: TokenCall, method: String, interactionIndex: Int?, sumEmbedding: Bool, run: (Int?) throws -> [Float]
    ) throws -> [Float] {
        try call.rest.checkSecondOrderSupport(method)
        let rows = call.rows, L = call.length, E = call.dimension, p = L * E
        guard let i = interactionIndex else {
            let gamma = try run(nil)
            guard sumEmbedding else { return gamma }
            return uninitializedFloats(rows * L * L) { out in
                gamma.withUnsafeBufferPointer { g in
                    for r in 0..<rows {
                        for ti in 0..<L {
                            for tj in 0..<L {
                                var total = 0.0
                                for a in 0..<E {
                                    let base = r * p * p + (ti * E + a) * p + tj * E
                                    for b in 0..<E { total += Double(g[base + b]) }
                                }
                                out[(r * L + ti) * L + tj] = Float(total)
                            }
                        }
                    }
                }
            }
        }
        guard i >= 0, i < L else {
            throw SwiftAttrError(.outOfRange, "interaction_index = \(i) is out of range for \(L) tokens (0..<\(L))")
        }
        var acc = [Double](repeating: 0, count: rows * p)
        for a in 0..<E {
            let row = try run(i * E + a)
            for k in 0..<(rows * p) { acc[k] += Double(row[k]) }
        }
        guard sumEmbedding else { return acc.map(Float.init) }
        return (0..<(rows * L)).map { k in Float((0..<E).reduce(0.0) { $0 + acc[k * E + $1] }) }
    }

    private func checkInteractionIndex(_ index: Int?) throws {
        if let index, index < 0 || index >= inputSize {
            throw SwiftAttrError(.outOfRange, "interaction_index = \(index) is out of range for an input of \(inputSize) features (0..<\(inputSize))")
        }
    }

    /// Integrated Hessians of output `targets` for `rows` examples: rows × p × p over the flattened input (p =
    /// inputSize), or rows × p (row `interactionIndex` of each Γ) when an index is given.
    ///
    /// - Parameters:
    ///   - baselines: empty (zeros), one example (broadcast), or one per example.
    ///   - steps: quadrature nodes (default 32 nodes of the default rule: completeness error below 1e-4 relative on softplus(β = 10) networks).
    ///   - softplusBeta: compute with every ReLU replaced by Softplus(β).
    ///   - internalBatchSize: path points per second-order pass (memory bound).
    ///   - sumEmbedding: token networks only (see ``tokenInteractions(_:method:interactionIndex:sumEmbedding:run:)``):
    ///     false gives Γ over the embedding coordinates (rows × L·E × L·E, or rows × L·E for a token index).
    public func integratedHessians(
        _ x: [Float], rows: Int, baselines: [Float] = [], targets: [Int], steps: Int = 32,
        method: HessianQuadrature = .gaussLegendre, softplusBeta: Float? = nil, interactionIndex: Int? = nil,
        internalBatchSize: Int? = nil, sumEmbedding: Bool = true
    ) throws -> [Float] {
        try integratedHessians(x, rows: rows, baselines: baselines, targets: targets, steps: steps, method: method,
                               softplusBeta: softplusBeta, interactionIndex: interactionIndex,
                               internalBatchSize: internalBatchSize, directionBlock: nil, sumEmbedding: sumEmbedding)
    }

    /// ``integratedHessians(_:rows:baselines:targets:steps:method:softplusBeta:interactionIndex:internalBatchSize:)``
    /// with `directionBlock` directions per second-order pass (nil: the quadratic-form pass when it fits, else a
    /// 16 MiB budget; tests force small blocks), and `identityBasis` forcing the forms pass's basis (tests).
    func integratedHessians(
        _ x: [Float], rows: Int, baselines: [Float], targets: [Int], steps: Int, method: HessianQuadrature,
        softplusBeta: Float?, interactionIndex: Int?, internalBatchSize: Int?, directionBlock requestedBlock: Int?,
        identityBasis: Bool? = nil, sumEmbedding: Bool = true
    ) throws -> [Float] {
        if let call = try tokenCall(x, rows: rows) {
            let base = try call.baselines(baselines)
            return try tokenInteractions(call, method: "integrated_hessians", interactionIndex: interactionIndex,
                                         sumEmbedding: sumEmbedding) { index in
                try call.rest.integratedHessians(
                    call.x, rows: rows, baselines: base, targets: targets, steps: steps, method: method,
                    softplusBeta: softplusBeta, interactionIndex: index, internalBatchSize: internalBatchSize,
                    directionBlock: requestedBlock, identityBasis: identityBasis)
            }
        }
        if let softplusBeta {
            return try withSoftplus(beta: softplusBeta).integratedHessians(
                x, rows: rows, baselines: baselines, targets: targets, steps: steps, method: method, softplusBeta: nil,
                interactionIndex: interactionIndex, internalBatchSize: internalBatchSize, directionBlock: requestedBlock,
                identityBasis: identityBasis)
        }
        try checkInputs(x, rows: rows)
        try checkSecondOrderSupport("integrated_hessians")
        let targets = try expandTargets(targets, rows: rows)
        let base = try expandBaselines(baselines, rows: rows)
        try checkInteractionIndex(interactionIndex)
        let (t, wg, wh) = try method.rule(steps)
        let d = inputSize, width = interactionIndex == nil ? d * d : d
        let prefix = affinePrefixLength
        let forms = interactionIndex == nil && requestedBlock == nil ? formsPlan(from: prefix, force: identityBasis) : nil
        let block = interactionIndex == nil ? (requestedBlock ?? directionBlock(from: prefix)) : 1
        let chunk = try hessianChunk(directions: forms?.k ?? block, requested: internalBatchSize, from: prefix)
        try Allocation.reserve(rows * width, of: Float.self, "integrated Hessians result")
        let linear = linearPart
        let rowChunk = try chunkRows(from: 0, requested: nil)
        var result = [Float](repeating: 0, count: rows * width)
        Parallel.singleThreadedBLAS {
            let zInput = forwardRows(x, rows: rows, from: 0, to: prefix, chunk: rowChunk)
            let zBase = forwardRows(base, rows: rows, from: 0, to: prefix, chunk: rowChunk)
            // Groups of examples share each second-order pass (its GEMMs run over examples × points × k rows),
            // as many as fill a chunk of points, and at least one group per worker.
            let dp = size(at: prefix)
            let group = Parallel.balancedChunk(count: rows, chunk: max(1, chunk / max(1, t.count)))
            result.withUnsafeMutableBufferPointer { out in
                let out = out.baseAddress!
                Parallel.forEachChunk(count: rows, chunk: group) { _, range, _ in
                    if forms != nil {
                        var paths = HessianPaths(examples: range.count, startSize: dp, inputSize: d)
                        for (e, i) in range.enumerated() {
                            paths.append(from: zBase[(i * dp)..<((i + 1) * dp)], to: zInput[(i * dp)..<((i + 1) * dp)],
                                         delta: (i * d..<(i + 1) * d).map { x[$0] - base[$0] }, owner: e, target: targets[i],
                                         t: t, gradientWeights: wg, hessianWeights: wh)
                        }
                        let gamma = interactionsByForms(paths, identity: forms!.identity, prefix: prefix, chunk: chunk, linear: linear)
                        (out + range.lowerBound * width).update(from: gamma, count: range.count * width)
                        return
                    }
                    let gamma = integratedHessiansOfExamples(
                        delta: (range.lowerBound * d..<range.upperBound * d).map { x[$0] - base[$0] },
                        zInput: Array(zInput[(range.lowerBound * dp)..<(range.upperBound * dp)]),
                        zBase: Array(zBase[(range.lowerBound * dp)..<(range.upperBound * dp)]), prefix: prefix,
                        rule: (t, wg, wh), targets: Array(targets[range]), row: interactionIndex, chunk: chunk,
                        directionBlock: block, linear: linear)
                    (out + range.lowerBound * width).update(from: gamma, count: range.count * width)
                }
            }
        }
        return result
    }

    /// The direction-block path: Γ (or row `row`) of `targets.count` examples, using the affine prefix P (DESIGN.md, "Speed comes from
    /// structure"): the path's points at P's output are (1 − t)·P(x') + t·P(x), the tangents there P_lin·V are
    /// the same for every point of an example, and since Pᵀ is linear the weighted sums of gradients and
    /// Hessian–direction products are formed at P's output and pulled back through P once per example.
    /// Pairs (example, node) are evaluated `chunk` at a time; sums are in Double.
    private func integratedHessiansOfExamples(
        delta: [Float], zInput: [Float], zBase: [Float], prefix: Int,
        rule: (t: [Double], gradientWeights: [Double], hessianWeights: [Double]),
        targets: [Int], row: Int?, chunk: Int, directionBlock: Int, linear: Network
    ) -> [Float] {
        let examples = targets.count, d = inputSize
        // Directions e_j Δx_j in blocks (memory: the tangents of a block at every value), hv assembled per example.
        var gradient = [Float](), hv: [Float]
        if let row {
            (gradient, hv) = pathSecondOrder(delta: delta, columns: row..<(row + 1), zInput: zInput, zBase: zBase, prefix: prefix,
                                             rule: rule, targets: targets, chunk: chunk, linear: linear)
        } else {
            hv = [Float](repeating: 0, count: examples * d * d)
            var j0 = 0
            while j0 < d {
                let j1 = min(d, j0 + directionBlock), kb = j1 - j0
                let (g, block) = pathSecondOrder(delta: delta, columns: j0..<j1, zInput: zInput, zBase: zBase, prefix: prefix,
                                                 rule: rule, targets: targets, chunk: chunk, linear: linear)
                if j0 == 0 { gradient = g }
                for e in 0..<examples {
                    for c in 0..<kb { for i in 0..<d { hv[(e * d + j0 + c) * d + i] = block[(e * kb + c) * d + i] } }
                }
                j0 = j1
            }
        }
        let width = row == nil ? d * d : d, k = row == nil ? d : 1
        var out = [Float](repeating: 0, count: examples * width)
        for e in 0..<examples {
            let dx = e * d, o = e * width, hb = e * k * d
            if let row {
                // hv_j = Σ w t H_{j,row} Δx_row: Γ_{row,j} = Δx_j hv_j.
                for j in 0..<d { out[o + j] = delta[dx + j] * hv[hb + j] }
                out[o + row] += delta[dx + row] * gradient[dx + row]
                continue
            }
            // hv[j][i] = Σ w t H_{i,j} Δx_j: Γ_{i,j} = Δx_i hv[j][i], symmetrised (exact Hessians are symmetric;
            // the two float32 evaluations differ by roundings only).
            for i in 0..<d {
                for j in i..<d {
                    let v = (Double(delta[dx + i]) * Double(hv[hb + j * d + i]) + Double(delta[dx + j]) * Double(hv[hb + i * d + j])) / 2
                    out[o + i * d + j] = Float(v)
                    out[o + j * d + i] = Float(v)
                }
                out[o + i * d + i] += delta[dx + i] * gradient[dx + i]
            }
        }
        return out
    }

    /// For the directions e_j Δx_j, j ∈ `columns`, of each example: the rule-weighted sums over its path of the
    /// gradient (examples × d) and of the Hessian–direction products H e_j Δx_j (examples × |columns| × d), both
    /// formed at the prefix output and pulled back through it once.
    private func pathSecondOrder(
        delta: [Float], columns: Range<Int>, zInput: [Float], zBase: [Float], prefix: Int,
        rule: (t: [Double], gradientWeights: [Double], hessianWeights: [Double]),
        targets: [Int], chunk: Int, linear: Network
    ) -> (gradient: [Float], hv: [Float]) {
        let examples = targets.count, d = inputSize, dp = size(at: prefix), k = columns.count
        var directions = [Float](repeating: 0, count: examples * k * d)
        for e in 0..<examples {
            for (c, j) in columns.enumerated() { directions[(e * k + c) * d + j] = delta[e * d + j] }
        }
        let tangents = linear.forward(directions, rows: examples * k, from: 0, to: prefix)
        var gradientSum = [Double](repeating: 0, count: examples * dp), hvSum = [Double](repeating: 0, count: examples * k * dp)
        let steps = rule.t.count, count = examples * steps
        var begin = 0
        while begin < count {
            let end = min(count, begin + chunk), n = end - begin
            var h = [Float](), repeated = [Float]()
            h.reserveCapacity(n * dp)
            repeated.reserveCapacity(n * k * dp)
            for j in begin..<end {
                let e = j / steps, tq = Float(rule.t[j % steps]), sq = 1 - tq
                for m in 0..<dp { h.append(sq * zBase[e * dp + m] + tq * zInput[e * dp + m]) }
                repeated.append(contentsOf: tangents[(e * k * dp)..<((e + 1) * k * dp)])
            }
            let (g, hv) = secondOrder(h, rows: n, directions: repeated, k: k, targets: (begin..<end).map { targets[$0 / steps] },
                                      linear: linear, from: prefix)
            gradientSum.withUnsafeMutableBufferPointer { gs in
                hvSum.withUnsafeMutableBufferPointer { hs in
                    for (r, j) in (begin..<end).enumerated() {
                        let e = j / steps, q = j % steps
                        let wg = rule.gradientWeights[q], wh = rule.hessianWeights[q]
                        for m in 0..<dp { gs[e * dp + m] += wg * Double(g[r * dp + m]) }
                        let src = r * k * dp, dst = e * k * dp
                        for m in 0..<(k * dp) { hs[dst + m] += wh * Double(hv[src + m]) }
                    }
                }
            }
            begin = end
        }
        return (pullbackAffine(gradientSum.map(Float.init), rows: examples, from: prefix, to: 0),
                pullbackAffine(hvSum.map(Float.init), rows: examples * k, from: prefix, to: 0))
    }

    /// Expected Hessians: the same sum with x' drawn uniformly from `references` (refRows rows) and α, β ~ U(0, 1),
    /// averaged over `samples` draws. Draw k of example i is keyed by (seed, exampleOffset + i, k): block 0 gives
    /// (α, β), block 1 the reference index, so the result does not depend on chunking or batch splits.
    public func expectedHessians(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], samples: Int = 64,
        seed: UInt64 = 0, exampleOffset: Int = 0, softplusBeta: Float? = nil, interactionIndex: Int? = nil,
        internalBatchSize: Int? = nil, sumEmbedding: Bool = true
    ) throws -> [Float] {
        try expectedHessians(x, rows: rows, references: references, referenceCount: referenceCount, targets: targets,
                             samples: samples, seed: seed, exampleOffset: exampleOffset, softplusBeta: softplusBeta,
                             interactionIndex: interactionIndex, internalBatchSize: internalBatchSize, directionBlocks: false,
                             sumEmbedding: sumEmbedding)
    }

    /// ``expectedHessians(_:rows:references:referenceCount:targets:samples:seed:exampleOffset:softplusBeta:interactionIndex:internalBatchSize:)``;
    /// `directionBlocks` forces the full matrix through direction blocks of the whole network (no affine prefix,
    /// no quadratic forms: tests compare the two).
    func expectedHessians(
        _ x: [Float], rows: Int, references: [Float], referenceCount: Int, targets: [Int], samples: Int, seed: UInt64,
        exampleOffset: Int, softplusBeta: Float?, interactionIndex: Int?, internalBatchSize: Int?, directionBlocks: Bool,
        sumEmbedding: Bool = true
    ) throws -> [Float] {
        if let call = try tokenCall(x, rows: rows) {
            // References are token ids, embedded; the draws are those of the rest network's call.
            try checkInputs(references, rows: referenceCount, name: "references")
            let embedded = try embedTokens(references, rows: referenceCount, name: "references")
            return try tokenInteractions(call, method: "expected_hessians", interactionIndex: interactionIndex,
                                         sumEmbedding: sumEmbedding) { index in
                try call.rest.expectedHessians(
                    call.x, rows: rows, references: embedded, referenceCount: referenceCount, targets: targets, samples: samples,
                    seed: seed, exampleOffset: exampleOffset, softplusBeta: softplusBeta, interactionIndex: index,
                    internalBatchSize: internalBatchSize, directionBlocks: directionBlocks)
            }
        }
        if let softplusBeta {
            return try withSoftplus(beta: softplusBeta).expectedHessians(
                x, rows: rows, references: references, referenceCount: referenceCount, targets: targets, samples: samples,
                seed: seed, exampleOffset: exampleOffset, softplusBeta: nil, interactionIndex: interactionIndex,
                internalBatchSize: internalBatchSize, directionBlocks: directionBlocks)
        }
        try checkInputs(x, rows: rows)
        try checkSecondOrderSupport("expected_hessians")
        try checkInputs(references, rows: referenceCount, name: "references")
        let targets = try expandTargets(targets, rows: rows)
        try checkInteractionIndex(interactionIndex)
        try Check.positive(samples, "n_samples")
        try Check.atMost(samples, Check.maximumSteps, "n_samples")
        try Check.nonNegative(exampleOffset, "first_example")
        let p = inputSize, width = interactionIndex == nil ? p * p : p
        let prefix = affinePrefixLength
        let forms = interactionIndex == nil && !directionBlocks ? formsPlan(from: prefix) : nil
        let block = interactionIndex == nil ? directionBlock(from: 0) : 1
        let chunk = try forms.map { try hessianChunk(directions: $0.k, requested: internalBatchSize, from: prefix) }
            ?? hessianChunk(directions: block, requested: internalBatchSize)
        try Allocation.reserve(rows * width, of: Float.self, "expected Hessians result")
        let linear = linearPart
        let weight = 1 / Double(samples)
        var result = [Float](repeating: 0, count: rows * width)
        Parallel.singleThreadedBLAS {
            // The affine prefix P (DESIGN.md, "Speed comes from structure"): P(x' + tΔx) = (1 − t)·P(x') + t·P(x), so
            // P runs once per example and per reference, not per sample.
            let rowChunk = forms == nil ? 1 : (try? chunkRows(from: 0, requested: nil)) ?? 1
            let zInput = forms == nil ? [] : forwardRows(x, rows: rows, from: 0, to: prefix, chunk: rowChunk)
            let zReference = forms == nil ? [] : forwardRows(references, rows: referenceCount, from: 0, to: prefix, chunk: rowChunk)
            let dp = size(at: prefix)
            result.withUnsafeMutableBufferPointer { out in
                let out = out.baseAddress!
                Parallel.forEachChunk(count: rows, chunk: 1) { _, range, _ in
                    for i in range where forms != nil {
                        // The draws grouped by reference (stable, so the sums' order depends on the draws only):
                        // one group per (example, reference) shares the tangents P·diag(Δx).
                        let example = UInt64(exampleOffset + i)
                        let draws = (0..<samples).map { k -> (reference: Int, t: Double) in
                            let (a, b) = CounterRandom.uniforms(seed: seed, example: example, sample: UInt32(k), block: 0)
                            let u = CounterRandom.uniforms(seed: seed, example: example, sample: UInt32(k), block: 1).0
                            return (CounterRandom.index(u, referenceCount), a * b)
                        }
                        let order = draws.indices.sorted { (draws[$0].reference, $0) < (draws[$1].reference, $1) }
                        var paths = HessianPaths(examples: 1, startSize: dp, inputSize: p)
                        var k = 0
                        while k < order.count {
                            let r = draws[order[k]].reference
                            var nodes = [Double]()
                            while k < order.count && draws[order[k]].reference == r { nodes.append(draws[order[k]].t); k += 1 }
                            paths.append(from: zReference[(r * dp)..<((r + 1) * dp)], to: zInput[(i * dp)..<((i + 1) * dp)],
                                         delta: (0..<p).map { x[i * p + $0] - references[r * p + $0] }, owner: 0, target: targets[i],
                                         t: nodes, gradientWeights: nodes.map { _ in weight }, hessianWeights: nodes.map { weight * $0 })
                        }
                        let gamma = interactionsByForms(paths, identity: forms!.identity, prefix: prefix, chunk: chunk, linear: linear)
                        (out + i * width).update(from: gamma, count: width)
                    }
                    for i in range where forms == nil {
                        let xi = Array(x[(i * p)..<((i + 1) * p)])
                        let gamma = interactionSum(count: samples, point: { k in
                            let example = UInt64(exampleOffset + i)
                            let (a, b) = CounterRandom.uniforms(seed: seed, example: example, sample: UInt32(k), block: 0)
                            let u = CounterRandom.uniforms(seed: seed, example: example, sample: UInt32(k), block: 1).0
                            let r = CounterRandom.index(u, referenceCount)
                            let ref = references[(r * p)..<((r + 1) * p)]
                            let delta = zip(xi, ref).map { $0 - $1 }
                            let t = a * b, tf = Float(t)
                            return HessianPoint(h: zip(ref, delta).map { $0 + tf * $1 }, delta: delta,
                                                gradientWeight: weight, hessianWeight: weight * t)
                        }, target: targets[i], row: interactionIndex, chunk: chunk, directionBlock: block, linear: linear)
                        (out + i * width).update(from: gamma, count: width)
                    }
                }
            }
        }
        return result
    }

    /// Exact Hessians ∂²f_t/∂x∂x (rows × p × p over the flattened input) at `rows` examples (one example's p
    /// directions are propagated at once: for checks and small inputs).
    public func hessians(_ x: [Float], rows: Int, targets: [Int], internalBatchSize: Int? = nil) throws -> [Float] {
        try checkInputs(x, rows: rows)
        try checkSecondOrderSupport("hessians")
        let targets = try expandTargets(targets, rows: rows)
        let p = inputSize
        let chunk = try hessianChunk(directions: p, requested: internalBatchSize)
        try Allocation.reserve(rows * p * p, of: Float.self, "Hessians result")
        let linear = linearPart
        var identity = [Float](repeating: 0, count: p * p)
        for d in 0..<p { identity[d * p + d] = 1 }
        var result = [Float]()
        result.reserveCapacity(rows * p * p)
        try Parallel.singleThreadedBLAS {
            var begin = 0
            while begin < rows {
                let end = min(rows, begin + chunk), n = end - begin
                var directions = [Float]()
                for _ in 0..<n { directions.append(contentsOf: identity) }
                let hv = secondOrder(Array(x[(begin * p)..<(end * p)]), rows: n, directions: directions, k: p,
                                     targets: Array(targets[begin..<end]), linear: linear).hv
                try Check.finiteResult(hv, "Hessians")
                result.append(contentsOf: hv)
                begin = end
            }
        }
        return result
    }

    /// Hessian–vector products H(x_r) v_r (rows × p) at `rows` examples (`v`: rows × p).
    public func hessianVectorProducts(_ x: [Float], rows: Int, vectors v: [Float], targets: [Int]) throws -> [Float] {
        try gradientsAndHessianVectorProducts(x, rows: rows, vectors: v, targets: targets).hv
    }

    /// The gradients ∇f_t(x_r) and the Hessian–vector products H(x_r) v_r (each rows × p) of output
    /// `targets[r]` at `rows` examples, from one forward-over-reverse pass (Pearlmutter 1994): exact, in O(p)
    /// memory per example. ReLU networks have H = 0 almost everywhere (use ``withSoftplus(beta:)``).
    /// Networks with an Embedding or an LSTM are refused (no second-order pass for them yet).
    public func gradientsAndHessianVectorProducts(
        _ x: [Float], rows: Int, vectors v: [Float], targets: [Int]
    ) throws -> (gradient: [Float], hv: [Float]) {
        try checkInputs(x, rows: rows)
        try checkInputs(v, rows: rows, name: "vectors")
        try checkSecondOrderSupport("hessian_vector_product")
        let targets = try expandTargets(targets, rows: rows)
        let result = Parallel.singleThreadedBLAS {
            secondOrder(x, rows: rows, directions: v, k: 1, targets: targets, linear: linearPart)
        }
        try Check.finiteResult(result.hv, "Hessian-vector products")
        return result
    }
}
