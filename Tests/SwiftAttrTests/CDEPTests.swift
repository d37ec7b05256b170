import XCTest
@testable import SwiftAttr

/// CDEP (Sources/SwiftAttr/Training/CDEPPenalty.swift): the penalty and its parameter gradient against an
/// independent float64 Contextual Decomposition written here from acd's rules (plain loops, the linear
/// maps through TestSupport's float64 reference forward of a bias-free copy of each layer), with central
/// finite differences on top of it; the value against the engine's own CD; argument errors; training.
final class CDEPTests: XCTestCase {
    // MARK: Float64 reference CD (acd's rules)

    struct CDReference {
        let net: Network
        /// The smallest |·| argument of a share (|r|, |s|, the activation differences) and max-pool gap, exact
        /// zeros excepted (a part that is identically zero stays zero under any weight perturbation).
        var kink = Double.infinity

        init(_ net: Network) { self.net = net }

        private mutating func track(_ v: Double) { if v != 0 { kink = min(kink, abs(v)) } }

        /// acd's split of a bias b between r and s, proportion (|r| + 1e-20) : (|s| + 1e-20).
        private mutating func split(_ r: Double, _ s: Double, _ b: Double) -> (Double, Double) {
            track(r); track(s)
            let pr = abs(r) + 1e-20, ps = abs(s) + 1e-20
            return (r + b * pr / (pr + ps), s + b * ps / (pr + ps))
        }

        static func f(_ layer: Layer, _ v: Double) -> Double {
            switch layer {
            case .relu: return max(v, 0)
            case .leakyReLU(let a): return v > 0 ? v : Double(a) * v
            case .elu(let a): return v > 0 ? v : Double(a) * (exp(v) - 1)
            case .softplus(let b): return log(1 + exp(Double(b) * v)) / Double(b)
            case .sigmoid: return 1 / (1 + exp(-v))
            case .tanh: return tanh(v)
            default: fatalError("not an activation")
            }
        }

        /// A layer's bias-free map on one example, by the float64 reference forward.
        static func linear(_ layer: Layer, _ x: [Double], _ shape: [Int]) -> [Double] {
            var r = Reference(try! Network(inputShape: shape, layers: [layer]))
            return r.forward(x)
        }

        /// (β, γ) at the CD output (the logits before a final Softmax) of one example (ids for a token network).
        mutating func parts(_ x: [Double], mask m: [Double]) -> ([Double], [Double]) {
            let top = net.endsWithSoftmax ? net.layers.count - 1 : net.layers.count
            var start = 0
            var x0 = x, per = 1
            if case .embedding(let e) = net.layers[0] {
                start = 1
                per = e.dimension
                x0 = x.flatMap { id in (0..<e.dimension).map { Double(e.weight[Int(id) * e.dimension + $0]) } }
            }
            var beta = [[Double]](repeating: [], count: top + 1), gamma = beta
            beta[start] = x0.indices.map { m[$0 / per] * x0[$0] }
            gamma[start] = x0.indices.map { (1 - m[$0 / per]) * x0[$0] }
            for i in start..<top {
                let v = net.inputs[i][0], shape = net.shapes[v], b = beta[v], g = gamma[v]
                var nb: [Double], ng: [Double]
                switch net.layers[i] {
                case .dense(let l):
                    let free = Layer.dense(try! .init(weight: l.weight, bias: nil, outFeatures: l.outFeatures, inFeatures: l.inFeatures))
                    let r = Self.linear(free, b, shape), s = Self.linear(free, g, shape)
                    (nb, ng) = ([], [])
                    for j in r.indices { let (p, q) = split(r[j], s[j], Double(l.bias[j])); nb.append(p); ng.append(q) }
                case .conv1d(let c), .conv2d(let c):
                    let w = try! Layer.Convolution(weight: c.weight, bias: nil, outChannels: c.outChannels, inChannels: c.inChannels,
                                                   kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
                    let free: Layer = c.kernel.count == 1 ? .conv1d(w) : .conv2d(w)
                    let r = Self.linear(free, b, shape), s = Self.linear(free, g, shape), plane = r.count / c.outChannels
                    (nb, ng) = ([], [])
                    for j in r.indices { let (p, q) = split(r[j], s[j], Double(c.bias[j / plane])); nb.append(p); ng.append(q) }
                case .batchNorm(let bn):
                    let plane = b.count / bn.channels
                    (nb, ng) = (b, g)
                    for ch in 0..<bn.channels {
                        let a = Double(bn.gamma[ch]) / (Double(bn.runningVar[ch]) + Double(bn.eps)).squareRoot()
                        let shift = Double(bn.beta[ch]) - Double(bn.runningMean[ch]) * a
                        for k in (ch * plane)..<((ch + 1) * plane) {
                            let r = a * b[k], s = a * g[k]
                            track(r); track(s)
                            let p = abs(r) + abs(s) > 0 ? abs(r) / (abs(r) + abs(s)) : 0
                            nb[k] = r + p * shift
                            ng[k] = s + (1 - p) * shift
                        }
                    }
                case .maxPool2d(let p):
                    let (ch, h, w) = (shape[0], shape[1], shape[2])
                    let ho = Reference.outLength(h, k: p.kernel[0], s: p.stride[0], p: p.padding[0], d: 1)
                    let wo = Reference.outLength(w, k: p.kernel[1], s: p.stride[1], p: p.padding[1], d: 1)
                    (nb, ng) = ([], [])
                    for c in 0..<ch {
                        for a in 0..<ho {
                            for bb in 0..<wo {
                                var window: [(Double, Int)] = []
                                for u in 0..<p.kernel[0] {
                                    let r = a * p.stride[0] - p.padding[0] + u
                                    for t in 0..<p.kernel[1] {
                                        let q = bb * p.stride[1] - p.padding[1] + t
                                        if r < 0 || r >= h || q < 0 || q >= w { continue }
                                        let k = (c * h + r) * w + q
                                        window.append((b[k] + g[k], k))
                                    }
                                }
                                window.sort { $0.0 > $1.0 }
                                if window.count > 1 { track(window[0].0 - window[1].0) }
                                nb.append(b[window[0].1])
                                ng.append(g[window[0].1])
                            }
                        }
                    }
                case .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .dropout:
                    (nb, ng) = (Self.linear(net.layers[i], b, shape), Self.linear(net.layers[i], g, shape))
                case .add:
                    (nb, ng) = (b, g)
                    for u in net.inputs[i].dropFirst() { for k in nb.indices { nb[k] += beta[u][k]; ng[k] += gamma[u][k] } }
                case .concat:
                    (nb, ng) = (net.inputs[i].flatMap { beta[$0] }, net.inputs[i].flatMap { gamma[$0] })
                case .relu, .leakyReLU, .elu, .softplus:
                    let layer = net.layers[i], f0 = Self.f(layer, 0)
                    (nb, ng) = ([], [])
                    for k in b.indices {
                        let fb = Self.f(layer, b[k]), fh = Self.f(layer, b[k] + g[k])
                        if case .relu = layer { track(b[k]); track(b[k] + g[k]) }
                        if f0 == 0 {
                            nb.append(fb); ng.append(fh - fb)
                        } else {
                            let (p, q) = split(fb - f0, fh - fb, f0); nb.append(p); ng.append(q)
                        }
                    }
                case .sigmoid, .tanh:
                    let layer = net.layers[i], f0 = Self.f(layer, 0)
                    (nb, ng) = ([], [])
                    for k in b.indices {
                        let fb = Self.f(layer, b[k]), fg = Self.f(layer, g[k]), fh = Self.f(layer, b[k] + g[k])
                        let db = 0.5 * ((fb - f0) + (fh - fg)), dg = 0.5 * ((fg - f0) + (fh - fb))
                        if f0 == 0 {
                            nb.append(db); ng.append(dg)
                        } else {
                            let (p, q) = split(db, dg, f0); nb.append(p); ng.append(q)
                        }
                    }
                case .lstm(let l):
                    (nb, ng) = lstm(l, b, g, length: shape[0], mask: v == start ? m : nil)
                case .maxPool1d, .softmax, .embedding:
                    fatalError("not in the reference")
                }
                beta[i + 1] = nb
                gamma[i + 1] = ng
            }
            return (beta[top], gamma[top])
        }

        /// acd's `propagate_three`: a's and b's shares of f(a + b + c) and the bias's f(c).
        static func three(_ f: (Double) -> Double, _ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double) {
            (0.5 * (f(a + c) - f(c) + f(a + b + c) - f(b + c)), 0.5 * (f(b + c) - f(c) + f(a + b + c) - f(a + c)), f(c))
        }

        /// acd's `cd_text` LSTM on both parts (see ContextualDecomposition.swift): w_t the mask's mean over
        /// position t where `mask` is given (the LSTM reads the start value), else the ℓ1 share of the step's parts.
        private mutating func lstm(_ l: Layer.LSTM, _ b: [Double], _ g: [Double], length L: Int, mask: [Double]?) -> ([Double], [Double]) {
            let E = l.inputSize, H = l.hiddenSize
            func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
            var hr = [Double](repeating: 0, count: H), hi = hr, cr = hr, ci = hr
            var outR: [Double] = [], outI: [Double] = []
            for t in 0..<L {
                var zr = [Double](repeating: 0, count: 4 * H), zs = zr
                for row in 0..<(4 * H) {
                    for k in 0..<E {
                        zr[row] += Double(l.weightIH[row * E + k]) * b[t * E + k]
                        zs[row] += Double(l.weightIH[row * E + k]) * g[t * E + k]
                    }
                    for j in 0..<H {
                        zr[row] += Double(l.weightHH[row * H + j]) * hr[j]
                        zs[row] += Double(l.weightHH[row * H + j]) * hi[j]
                    }
                }
                let w: Double
                if let mask {
                    let q = mask.count / L
                    w = mask[(t * q)..<((t + 1) * q)].reduce(0, +) / Double(q)
                } else {
                    var rel = 0.0, irr = 0.0
                    for k in 0..<E { rel += abs(b[t * E + k]); irr += abs(g[t * E + k]); track(b[t * E + k]); track(g[t * E + k]) }
                    w = (rel + 1e-20) / (rel + irr + 2e-20)
                }
                var nr = [Double](repeating: 0, count: H), ni = nr
                for j in 0..<H {
                    let bias = { (k: Int) in Double(l.biasIH[k]) + Double(l.biasHH[k]) }
                    let i = Self.three(sig, zr[j], zs[j], bias(j))
                    let gg = Self.three(tanh, zr[2 * H + j], zs[2 * H + j], bias(2 * H + j))
                    var rel = i.0 * (gg.0 + gg.2) + i.2 * gg.0 + w * i.2 * gg.2
                    var irr = i.1 * (gg.0 + gg.1 + gg.2) + (i.0 + i.2) * gg.1 + (1 - w) * i.2 * gg.2
                    if t > 0 {
                        let f = Self.three(sig, zr[H + j], zs[H + j], bias(H + j))
                        rel += (f.0 + f.2) * cr[j]
                        irr += (f.0 + f.1 + f.2) * ci[j] + f.1 * cr[j]
                    }
                    let o = sig(zr[3 * H + j] + zs[3 * H + j] + bias(3 * H + j))
                    cr[j] = rel; ci[j] = irr
                    nr[j] = o * 0.5 * (tanh(rel) + tanh(rel + irr) - tanh(irr))
                    ni[j] = o * 0.5 * (tanh(irr) + tanh(rel + irr) - tanh(rel))
                }
                hr = nr; hi = ni
                outR += hr; outI += hi
            }
            return l.returnSequences ? (outR, outI) : (hr, hi)
        }

        /// λ Σ_k mean_nc σ(β − γ) over `rows` examples and `count` masks (per example: example n's set of
        /// `count` masks starts at mask n·count).
        mutating func penalty(_ x: [Float], rows: Int, masks: [Float], count: Int, lam: Double, perExample: Bool = false) -> Double {
            let d = net.inputSize
            var total = 0.0, classes = 0
            for n in 0..<rows {
                for k in 0..<count {
                    let m = ((perExample ? n * count : 0) + k) * d
                    let (b, g) = parts(x[(n * d)..<((n + 1) * d)].map(Double.init), mask: masks[m..<(m + d)].map(Double.init))
                    classes = b.count
                    for c in b.indices { total += 1 / (1 + exp(-(b[c] - g[c]))) }
                }
            }
            return lam * total / Double(rows * classes)
        }
    }

    // MARK: Gradient checks

    /// The penalty against the float64 reference (1e-5 relative), and its gradient and that of task loss +
    /// penalty against central differences of the reference. Error analysis: each parameter (float32) is
    /// moved by h = 1e-5·max(1, |p|) and the quotient divides by the difference of the stored values, so
    /// the FD error is float64 rounding (≈ 1e-16/h = 1e-11) plus truncation O(h²·f‴). The penalty is smooth
    /// except where a share argument (|r|, |s|, an activation difference, a max-pool gap) crosses 0; the test
    /// asserts every one is at least 1e-3 from 0 (`kink`), while moving one weight by h moves them by
    /// ≲ h·|x| ≈ 1e-5, so no stencil straddles a kink, and f‴ ≲ |b|/t³ of a share with t ≳ 1e-3 keeps the
    /// truncation ≲ 1e-10·1e9·|b|·(that unit's weight in the penalty) in the worst unit, far below it for the
    /// typical t ~ 1. The engine's float32 gradient rounds each of a few hundred operations per entry at
    /// u = 6e-8, ≈ 1e-5 of the scale, and the shares' derivatives amplify the absolute rounding of r, s
    /// (≈ 1e-7·Σ|w||x|) by 1/t ≲ 1e3 only in those near-kink units. Hence 1e-3 of the largest entry: an
    /// order of margin, while a wrong rule, sign or index is off by O(1) of an entry.
    /// `perExample`: `masks` holds a set of `count` masks per example (row n's set n).
    func checkCDEP(_ net: Network, _ x: [Float], rows: Int, masks: [Float], count: Int, labels: TrainingLabels? = nil,
                   perExample: Bool = false, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let lam = 0.7
        let penalty = try CDEPPenalty(masks: masks, maskCount: count, exampleCount: perExample ? rows : nil, lam: lam)
        let (value, gradients) = try net.contextualDecompositionPenalty(x, rows: rows, penalty: penalty)
        XCTAssertEqual(gradients.map(\.count), net.parameterShapes.map { $0.reduce(1, *) }, what, file: file, line: line)
        var ref = CDReference(net)
        let expected = ref.penalty(x, rows: rows, masks: masks, count: count, lam: lam, perExample: perExample)
        XCTAssertGreaterThan(ref.kink, 1e-3, "\(what): the point lies near a kink of a share", file: file, line: line)
        XCTAssertEqual(value, expected, accuracy: 1e-5 * abs(expected), "\(what) penalty", file: file, line: line)

        if !perExample {
            // The engine's own CD gives the same penalty (it carries one part, so rounding differs: 1e-5).
            let cd = try net.contextualDecomposition(x, rows: rows, masks: masks, maskCount: count)
            let fromCD = lam * zip(cd.relevant, cd.irrelevant).map { 1 / (1 + exp(-Double($0 - $1))) }.reduce(0, +) / Double(cd.relevant.count / count)
            XCTAssertEqual(value, fromCD, accuracy: 1e-5 * abs(expected), "\(what) penalty from contextualDecomposition", file: file, line: line)
        }

        let taskLoss: ((Network) -> Double)? = labels.map { labels in
            { n in
                var r = Reference(n)
                return TrainingTests.referenceLoss(r.forwardBatch(x, rows: rows), rows: rows, labels: labels, loss: .crossEntropy,
                                                   probabilities: n.endsWithSoftmax)
            }
        }
        var fdPenalty: [Double] = [], fdTotal: [Double] = []
        let p = net.parameters
        for k in p.indices {
            for e in p[k].indices {
                var q = p
                let w = p[k][e], h = 1e-5 * max(1, abs(w))
                q[k][e] = w + h
                let wp = q[k][e], np = try net.withParameters(q)
                q[k][e] = w - h
                let wm = q[k][e], nm = try net.withParameters(q)
                var rp = CDReference(np), rm = CDReference(nm)
                let pp = rp.penalty(x, rows: rows, masks: masks, count: count, lam: lam, perExample: perExample)
                let pm = rm.penalty(x, rows: rows, masks: masks, count: count, lam: lam, perExample: perExample)
                fdPenalty.append((pp - pm) / (Double(wp) - Double(wm)))
                if let taskLoss { fdTotal.append((pp + taskLoss(np) - pm - taskLoss(nm)) / (Double(wp) - Double(wm))) }
            }
        }
        XCTAssertGreaterThan(maxAbs(fdPenalty), 1e-4, "\(what): degenerate gradient", file: file, line: line)
        assertClose(gradients.flatMap { $0 }, fdPenalty, rel: 1e-3, "\(what) penalty gradients", file: file, line: line)
        if let labels {
            let (_, task) = try net.lossAndGradients(x, rows: rows, labels: labels, loss: .crossEntropy)
            let total = zip(task, gradients).flatMap { zip($0, $1).map { $0 + $1 } }
            assertClose(total, fdTotal, rel: 1e-3, "\(what) task loss + penalty gradients", file: file, line: line)
        }
    }

    /// A mask over `shape` (C×H×W) that is `inside` on the h×w corner blocks given and `outside` elsewhere.
    static func cornerMask(_ shape: [Int], block: Int, corners: [(Bool, Bool)], inside: Float = 1, outside: Float = 0) -> [Float] {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        var m = [Float](repeating: outside, count: c * h * w)
        for ch in 0..<c {
            for (bottom, right) in corners {
                for i in 0..<block {
                    for j in 0..<block {
                        let r = bottom ? h - 1 - i : i, q = right ? w - 1 - j : j
                        m[(ch * h + r) * w + q] = inside
                    }
                }
            }
        }
        return m
    }

    /// An MLP with smooth activations, three examples and two masks whose points lie away from every kink
    /// (``testMLPGradient`` checks that for each example with each mask).
    func smoothMLP() -> (net: Network, x: [Float], masks: [Float]) {
        var g = Gen(55)
        // tanh (f(0) = 0), softplus and sigmoid (f(0) ≠ 0: the bias-split path), ELU (monotone, f(0) = 0).
        let mlp = net([6], [g.dense(5, 6), .tanh, g.dense(6, 5), .softplus(beta: 2), g.dense(5, 6), .sigmoid, g.dense(4, 5), .elu(alpha: 1),
                            g.dense(3, 4)])
        return (mlp, g.normals(3 * 6), [1, 1, 0, 0, 0, 0, 0, 0, 0.5, 1, 0, 0.25])
    }

    func testMLPGradient() throws {
        let (mlp, x, masks) = smoothMLP()
        try checkCDEP(mlp, x, rows: 3, masks: masks, count: 2, labels: .classes([2, 0, 1]), "MLP, two masks")
        // A final Softmax: the penalty is on the logits, the same function of the weights.
        try checkCDEP(try mlp.appending(.softmax), x, rows: 3, masks: Array(masks[0..<6]), count: 1, labels: .classes([1, 1, 0]),
                      "MLP ending in Softmax")
    }

    func testCNNGradient() throws {
        var g = Gen(47)
        // Conv2d (padding) → BatchNorm → ELU → MaxPool → Conv2d → Sigmoid → AvgPool → Flatten → Linear → Tanh → Linear.
        let cnn = net([2, 6, 6], [
            g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), g.batchNorm(3), .elu(alpha: 1), .maxPool2d(pool([2, 2])),
            g.conv(3, 3, kernel: [2, 2]), .sigmoid, .avgPool2d(pool([2, 2], stride: [1, 1])), .flatten, g.dense(4, 3), .tanh, g.dense(3, 4),
        ])
        var x = g.distinct(2 * 72)
        for i in x.indices { x[i] *= 0.5 }
        // The four 2×2 corners as one region (the authors' DecoyMNIST union), softened so every input has a
        // relevant part (no identically-zero products whose tiny bias shares sit at a kink).
        let corners = Self.cornerMask([2, 6, 6], block: 2, corners: [(false, false), (false, true), (true, false), (true, true)],
                                      inside: 0.9, outside: 0.15)
        try checkCDEP(cnn, x, rows: 2, masks: corners, count: 1, labels: .classes([1, 2]), "CNN, corner region")
        // Conv1d, GlobalAvgPool, Dropout, Reshape over [C, L].
        let seq = net([2, 7], [
            g.conv(4, 2, kernel: [3], stride: [2], padding: [1]), g.batchNorm(4), .tanh, .dropout(p: 0.2), .reshape(shape: [4, 4]),
            g.conv(3, 4, kernel: [2], dilation: [2]), .softplus(beta: 1), .globalAvgPool, g.dense(2, 3),
        ])
        let m1 = (0..<14).map { Float($0 % 7 < 3 ? 0.8 : 0.1) }
        try checkCDEP(seq, g.normals(2 * 14), rows: 2, masks: m1, count: 1, "Conv1d net")
    }

    func testResidualGraphGradient() throws {
        var g = Gen(50)
        var n = try Network(inputShape: [5])
        try n.append(g.dense(5, 5), inputs: [0])  // 1, read by the tanh and the add
        try n.append(.tanh, inputs: [1])  // 2
        try n.append(g.dense(5, 5), inputs: [2])  // 3
        try n.append(.add, inputs: [3, 1])  // 4: residual
        try n.append(.concat, inputs: [4, 2, 0])  // 5: the input fans out to it and to node 0
        try n.append(.softplus(beta: 1), inputs: [5])  // 6
        try n.append(g.dense(3, 15), inputs: [6])  // 7
        let x = g.normals(3 * 5)
        try checkCDEP(n, x, rows: 3, masks: [0, 1, 1, 0, 0, 1, 0, 0, 0, 0.5], count: 2, labels: .classes([0, 2, 1]), "residual graph")
    }

    /// Embedding (node 0): the walk starts at its output, the table receives m_t dβ₀ + (1 − m_t) dγ₀.
    func testTokenNetworkGradient() throws {
        var g = Gen(34)
        let vocab = 6, L = 4
        let tokens = net([L], [SequenceModelTests.embedding(&g, vocab: vocab, dim: 3), .flatten, g.dense(5, 12), .tanh, g.dense(3, 5)])
        let ids: [Float] = [1, 4, 2, 4, 0, 3, 3, 5]
        try checkCDEP(tokens, ids, rows: 2, masks: [0, 1, 1, 0], count: 1, labels: .classes([2, 0]), "Embedding network")
    }

    // MARK: Repeatability and threads

    /// Chunks over the examples sum in chunk order: one thread and two give the same values up to float32
    /// rounding of a sum in another grouping (1e-5 of the scale), and a call repeats bit for bit.
    func testChunkedPenaltyRepeatsAndAgreesAcrossThreadCounts() throws {
        var g = Gen(35)
        let mlp = net([6], [g.dense(8, 6), .relu, g.dense(4, 8)])
        let x = g.normals(64 * 6)
        let penalty = try CDEPPenalty(masks: [1, 1, 0, 0, 0, 0], maskCount: 1, lam: 1)
        let a = try mlp.contextualDecompositionPenalty(x, rows: 64, penalty: penalty)
        let b = try mlp.contextualDecompositionPenalty(x, rows: 64, penalty: penalty)
        XCTAssertEqual(a.value, b.value)
        XCTAssertEqual(a.gradients, b.gradients)
        let old = Parallel.threadCount
        defer { try? Parallel.setThreadCount(old) }
        try Parallel.setThreadCount(1)
        let one = try mlp.contextualDecompositionPenalty(x, rows: 64, penalty: penalty)
        try Parallel.setThreadCount(2)
        let two = try mlp.contextualDecompositionPenalty(x, rows: 64, penalty: penalty)
        XCTAssertEqual(one.value, two.value, accuracy: 1e-6)
        assertClose(one.gradients.flatMap { $0 }, two.gradients.flatMap { $0 }, rel: 1e-5, "threads")
    }

    // MARK: Errors

    func testBadMasks() throws {
        var g = Gen(36)
        let mlp = net([4], [g.dense(3, 4), .relu, g.dense(2, 3)])
        let x = g.normals(2 * 4)
        func code(_ body: () throws -> Void) -> SwiftAttrError.Code? {
            do { try body(); return nil } catch let e as SwiftAttrError { return e.code } catch { return .internal }
        }
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 0, lam: 1) }, .invalidArgument)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, 0, 0], maskCount: 2, lam: 1) }, .shapeMismatch)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [], maskCount: 1, lam: 1) }, .shapeMismatch)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, .nan, 0, 0], maskCount: 1, lam: 1) }, .nonFinite)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, 2, 0, 0], maskCount: 1, lam: 1) }, .outOfRange)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, -0.5, 0, 0], maskCount: 1, lam: 1) }, .outOfRange)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 1, lam: -1) }, .invalidArgument)
        XCTAssertEqual(code { _ = try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 1, lam: .infinity) }, .invalidArgument)
        // A mask of another size than the input.
        let five = try CDEPPenalty(masks: [1, 0, 0, 0, 0], maskCount: 1, lam: 1)
        XCTAssertThrowsError(try mlp.contextualDecompositionPenalty(x, rows: 2, penalty: five)) { error in
            let e = error as! SwiftAttrError
            XCTAssertEqual(e.code, .shapeMismatch)
            XCTAssert(e.message.contains("mask"), e.message)
        }
    }

    /// LSTMs: over an Embedding (w_t from the position mask, last state), over a float [L, E] input with a
    /// fractional mask (every state), and deeper in a graph (after a Conv1d and a Reshape: w_t the ℓ1 share
    /// of the step's parts, differentiated too).
    func testLSTMGradient() throws {
        var g = Gen(38)
        let tokens = net([4], [SequenceModelTests.embedding(&g, vocab: 6, dim: 3), SequenceModelTests.lstm(&g, input: 3, hidden: 4, sequences: false),
                               g.dense(3, 4)])
        try checkCDEP(tokens, [1, 4, 2, 4, 0, 3, 3, 5], rows: 2, masks: [0, 1, 1, 0, 1, 0, 0, 0], count: 2, labels: .classes([2, 0]),
                      "Embedding + LSTM (last state)")
        let float = net([3, 2], [SequenceModelTests.lstm(&g, input: 2, hidden: 3, sequences: true), .flatten, g.dense(2, 9)])
        try checkCDEP(float, g.normals(2 * 6), rows: 2, masks: [1, 0.5, 0, 0, 0.25, 1], count: 1, labels: .classes([1, 0]),
                      "LSTM (every state) over a float input")
        let deep = net([2, 6], [g.conv(3, 2, kernel: [3], padding: [1]), .tanh, .reshape(shape: [6, 3]),
                                SequenceModelTests.lstm(&g, input: 3, hidden: 3, sequences: false), g.dense(2, 3)])
        try checkCDEP(deep, g.normals(2 * 12), rows: 2, masks: (0..<12).map { Float($0 % 6 < 2 ? 0.9 : 0.2) }, count: 1,
                      labels: .classes([0, 1]), "Conv1d → Reshape → LSTM (ℓ1 share)")
    }

    // MARK: Training

    /// A decoy feature equal to the label's sign: with a strong CDEP penalty on it the trained model's CD
    /// importance of that feature (the penalty per unit λ) ends lower than without.
    func testTrainingWithCDEPLowersTheRegionsImportance() throws {
        var g = Gen(37)
        let rows = 128
        var x = g.normals(rows * 4), labels: [Int] = []
        for n in 0..<rows {
            let y = x[n * 4 + 1] + x[n * 4 + 2] > 0 ? 1 : 0
            labels.append(y)
            x[n * 4] = y == 1 ? 2 : -2  // the decoy
        }
        let model = net([4], [g.dense(8, 4), .relu, g.dense(2, 8)])
        var options = TrainingOptions()
        options.epochs = 30
        options.seed = 5
        options.initialize = true
        let measure = try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 1, lam: 1)
        let plain = try model.train(x, rows: rows, labels: .classes(labels), options: options).network
        let penalised = try model.train(x, rows: rows, labels: .classes(labels), options: options,
                                        penalties: [try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 1, lam: 5)]).network
        let before = try plain.contextualDecompositionPenalty(x, rows: rows, penalty: measure).value
        let after = try penalised.contextualDecompositionPenalty(x, rows: rows, penalty: measure).value
        XCTAssertLessThan(after, before - 0.05, "CDEP should lower the decoy's CD share (\(before) → \(after))")
    }

    // MARK: Per-example masks

    /// Per-example masks that are all one shared set run the same computation (the same mask values read at
    /// the same places): the same bits as the shared masks, for the penalty and for a training run.
    func testPerExampleMasksEqualToTheSharedMasksGiveTheSameBits() throws {
        var g = Gen(60)
        let mlp = net([6], [g.dense(5, 6), .tanh, g.dense(6, 5), .softplus(beta: 2), g.dense(3, 6)])
        let rows = 40
        let x = g.normals(rows * 6), labels = TrainingTests.classes(rows, 3, seed: 4)
        let shared: [Float] = [1, 1, 0, 0, 0, 0, 0, 0, 0.5, 1, 0, 0.25]
        let one = try CDEPPenalty(masks: shared, maskCount: 2, lam: 0.7)
        let each = try CDEPPenalty(masks: Array([[Float]](repeating: shared, count: rows).joined()), maskCount: 2, exampleCount: rows, lam: 0.7)
        let a = try mlp.contextualDecompositionPenalty(x, rows: rows, penalty: one)
        let b = try mlp.contextualDecompositionPenalty(x, rows: rows, penalty: each)
        XCTAssertEqual(a.value, b.value)
        XCTAssertEqual(a.gradients, b.gradients)
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 8
        options.seed = 3
        let ta = try mlp.train(x, rows: rows, labels: .classes(labels), options: options, penalties: [one])
        let tb = try mlp.train(x, rows: rows, labels: .classes(labels), options: options, penalties: [each])
        XCTAssertEqual(ta.network.parameters, tb.network.parameters)
        XCTAssertEqual(ta.history, tb.history)
    }

    /// Distinct masks per example (one and two regions, an MLP and a CNN): the float64 reference with row n's
    /// masks, and central differences (the error analysis of ``checkCDEP``).
    func testPerExampleMaskGradient() throws {
        // testMLPGradient's points with its masks a and b chosen per example: every (example, mask) pair is one
        // it checks away from the kinks, while the rows' masks differ.
        let (mlp, x, shared) = smoothMLP()
        let a = Array(shared[0..<6]), b = Array(shared[6..<12])
        try checkCDEP(mlp, x, rows: 3, masks: a + b + a, count: 1, labels: .classes([2, 0, 1]), perExample: true,
                      "MLP, one mask per example")
        try checkCDEP(mlp, x, rows: 3, masks: a + b + b + a + b + b, count: 2, labels: .classes([0, 0, 2]), perExample: true,
                      "MLP, two masks per example")
        var g = Gen(88)  // a seed whose points lie ≥ 1e-2 from every kink with these masks
        let cnn = net([1, 4, 4], [g.conv(2, 1, kernel: [2, 2]), .elu(alpha: 1), .flatten, g.dense(3, 18)])
        var xc = g.distinct(2 * 16)
        for i in xc.indices { xc[i] *= 0.5 }
        let corners = Self.cornerMask([1, 4, 4], block: 2, corners: [(false, false)], inside: 0.9, outside: 0.15)
            + Self.cornerMask([1, 4, 4], block: 2, corners: [(true, true)], inside: 0.85, outside: 0.2)
        try checkCDEP(cnn, xc, rows: 2, masks: corners, count: 1, labels: .classes([1, 2]), perExample: true, "CNN, a corner per image")
    }

    /// Records, at every training step, the CDEP penalty the trainer added and the same penalty computed
    /// explicitly: the step's network on the batch, with the masks of the batch's training rows gathered by
    /// hand (``Network/trainingPermutation(count:seed:epoch:)``) as per-example masks of the batch alone.
    final class PerExampleCheck: TrainingPenalty {
        let inner: CDEPPenalty
        let masks: [Float], d: Int, seed: UInt64, batchSize: Int
        var steps: [(trained: (Double, [[Float]]), explicit: (Double, [[Float]]), unshuffled: Double)] = []

        init(_ inner: CDEPPenalty, masks: [Float], d: Int, seed: UInt64, batchSize: Int) {
            (self.inner, self.masks, self.d, self.seed, self.batchSize) = (inner, masks, d, seed, batchSize)
        }

        func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]]) {
            let trained = try inner.lossAndGradient(network: network, batch: batch, rows: rows, labels: labels, step: step)
            let n = inner.exampleCount!
            let order = Network.trainingPermutation(count: n, seed: seed, epoch: step.epoch)
            let first = (step.step - 1) * batchSize, members = order[first..<min(n, first + rows)]
            let gathered = try CDEPPenalty(masks: members.flatMap { masks[($0 * d)..<(($0 + 1) * d)] }, maskCount: 1, exampleCount: rows, lam: inner.lam)
            let explicit = try network.contextualDecompositionPenalty(batch, rows: rows, penalty: gathered)
            // The masks of rows first..<first + rows without the shuffle: what a mix-up of indices would use.
            let wrong = try CDEPPenalty(masks: Array(masks[(first * d)..<((first + rows) * d)]), maskCount: 1, exampleCount: rows, lam: inner.lam)
            let unshuffled = try network.contextualDecompositionPenalty(batch, rows: rows, penalty: wrong).value
            steps.append((trained, explicit, unshuffled))
            return trained
        }
    }

    func testTrainingUsesEachExamplesMaskUnderShuffling() throws {
        var g = Gen(62)
        let rows = 20, d = 4
        let model = net([d], [g.dense(6, d), .tanh, g.dense(2, 6)])
        let x = g.normals(rows * d), labels = TrainingTests.classes(rows, 2, seed: 8)
        // Row e's mask marks feature e % 4 only: distinct neighbours, so a wrong index changes the value.
        let masks = (0..<rows).flatMap { e in (0..<d).map { Float($0 == e % d ? 1 : 0) } }
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 6
        options.seed = 21
        let check = PerExampleCheck(try CDEPPenalty(masks: masks, maskCount: 1, exampleCount: rows, lam: 2), masks: masks, d: d,
                                    seed: options.seed, batchSize: options.batchSize)
        _ = try model.train(x, rows: rows, labels: .classes(labels), options: options, penalties: [check])
        XCTAssertEqual(check.steps.count, 2 * 4)
        for (k, s) in check.steps.enumerated() {
            XCTAssertEqual(s.trained.0, s.explicit.0, "step \(k): the value")
            XCTAssertEqual(s.trained.1, s.explicit.1, "step \(k): the gradients")
        }
        XCTAssert(check.steps.contains { abs($0.unshuffled - $0.trained.0) > 1e-4 }, "the unshuffled masks should give other values")
    }

    func testPerExampleMasksOfTheWrongRowCountAreRefused() throws {
        var g = Gen(63)
        let mlp = net([4], [g.dense(3, 4), .relu, g.dense(2, 3)])
        let x = g.normals(3 * 4)
        func error(_ body: () throws -> Void) -> SwiftAttrError? {
            do { try body(); return nil } catch let e as SwiftAttrError { return e } catch { return SwiftAttrError(.internal, "\(error)") }
        }
        // Not a whole number of examples × masks; a non-positive example count.
        XCTAssertEqual(error { _ = try CDEPPenalty(masks: [Float](repeating: 0, count: 10), maskCount: 1, exampleCount: 4, lam: 1) }?.code, .shapeMismatch)
        XCTAssertEqual(error { _ = try CDEPPenalty(masks: [1, 0, 0, 0], maskCount: 1, exampleCount: 0, lam: 1) }?.code, .invalidArgument)
        // Masks for 2 examples against 3 rows, directly, through lossAndGradients and through training.
        let two = try CDEPPenalty(masks: [Float](repeating: 0.5, count: 2 * 4), maskCount: 1, exampleCount: 2, lam: 1)
        for e in [error { _ = try mlp.contextualDecompositionPenalty(x, rows: 3, penalty: two) },
                  error { _ = try mlp.lossAndGradients(x, rows: 3, labels: .classes([0, 1, 0]), loss: .crossEntropy, penalties: [two], seed: 0) },
                  error { _ = try mlp.train(x, rows: 3, labels: .classes([0, 1, 0]), penalties: [two]) }] {
            XCTAssertEqual(e?.code, .shapeMismatch)
            XCTAssert(e?.message.contains("mask") == true && e?.message.contains("2 examples") == true, e?.message ?? "no error")
        }
        // Masks for 3 examples of another size than the input.
        let wide = try CDEPPenalty(masks: [Float](repeating: 0.5, count: 3 * 5), maskCount: 1, exampleCount: 3, lam: 1)
        XCTAssertEqual(error { _ = try mlp.contextualDecompositionPenalty(x, rows: 3, penalty: wide) }?.code, .shapeMismatch)
    }
}
