import XCTest
@testable import SwiftAttr

// Shared helpers of the numerics tests: seeded data, layer factories, and an independent float64
// reference forward pass written from PyTorch's definitions (plain loops; it shares no code with the
// engine's GEMM/im2col implementation) with central finite differences on top of it.

// MARK: - Seeded data

struct Gen {
    var rng: RandomSource
    init(_ seed: UInt64) { rng = RandomSource(seed: seed) }

    mutating func normals(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in scale * Float(rng.normal()) }
    }

    mutating func uniforms(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * Float(rng.uniform()) }
    }

    /// Values whose magnitudes are at least `gap` (away from the kink of ReLU-like layers).
    mutating func awayFromZero(_ n: Int, gap: Float = 0.1, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in
            let m = gap + scale * Float(rng.uniform())
            return rng.uniform() < 0.5 ? -m : m
        }
    }

    /// A random permutation of n well-separated values (spacing ≥ 0.05): max-pooling without ties.
    mutating func distinct(_ n: Int) -> [Float] {
        var values = (0..<n).map { Float($0) * 0.1 - Float(n) * 0.05 + 0.03 * Float(rng.uniform()) }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, rng.index(i + 1)) }
        return values
    }

    mutating func dense(_ out: Int, _ inp: Int, bias: Bool = true) -> Layer {
        let s = 1 / Float(inp).squareRoot()
        return .dense(try! .init(weight: normals(out * inp, scale: s), bias: bias ? normals(out, scale: 0.3) : nil, outFeatures: out, inFeatures: inp))
    }

    mutating func conv(_ out: Int, _ inp: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil, dilation: [Int]? = nil, bias: Bool = true) -> Layer {
        let fan = inp * kernel.reduce(1, *)
        let c = try! Layer.Convolution(
            weight: normals(out * fan, scale: 1 / Float(fan).squareRoot()), bias: bias ? normals(out, scale: 0.3) : nil,
            outChannels: out, inChannels: inp, kernel: kernel,
            stride: stride ?? kernel.map { _ in 1 }, padding: padding ?? kernel.map { _ in 0 }, dilation: dilation ?? kernel.map { _ in 1 })
        return kernel.count == 1 ? .conv1d(c) : .conv2d(c)
    }

    mutating func batchNorm(_ c: Int) -> Layer {
        .batchNorm(try! .init(gamma: uniforms(c, 0.5, 1.5), beta: normals(c, scale: 0.3), runningMean: normals(c, scale: 0.5),
                              runningVar: uniforms(c, 0.3, 2), eps: 1e-5))
    }
}

func pool(_ kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil) -> Layer.Pooling {
    try! Layer.Pooling(kernel: kernel, stride: stride, padding: padding)
}

// MARK: - Float64 reference forward (PyTorch definitions)

/// The reference value of one example, plus the distance of the point to the nearest kink (ReLU-like
/// input at 0, a tie in a max-pool window) so tests can assert their finite differences are meaningful.
struct Reference {
    let net: Network
    /// Smallest distance to a kink seen by the last forward call.
    var kink = Double.infinity

    init(_ net: Network) { self.net = net }

    /// PyTorch's output length of a sliding window: ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1.
    static func outLength(_ l: Int, k: Int, s: Int, p: Int, d: Int) -> Int {
        (l + 2 * p - d * (k - 1) - 1) / s + 1
    }

    /// ∂scalar(f)/∂x at `p` by central differences of ``forward(_:)`` with step h (truncation h²·f‴/6,
    /// rounding ≈ 1e-16/h).
    mutating func gradient(at p: [Double], h: Double, _ scalar: ([Double]) -> Double) -> [Double] {
        p.indices.map { i in
            var a = p, b = p
            a[i] += h
            b[i] -= h
            return (scalar(forward(a)) - scalar(forward(b))) / (2 * h)
        }
    }

    mutating func forward(_ x: [Double]) -> [Double] {
        var values = [x]
        for (i, layer) in net.layers.enumerated() {
            let reads = net.inputs[i]
            var v: [Double], shape: [Int]
            switch layer {
            case .add:
                v = values[reads[0]]
                for r in reads.dropFirst() { for k in v.indices { v[k] += values[r][k] } }
                shape = net.shapes[reads[0]]
            case .concat:
                // Per-example layouts are channel-first, so joining along the first axis joins the flat values.
                v = reads.flatMap { values[$0] }
                shape = net.shapes[reads[0]]
                shape[0] = reads.reduce(0) { $0 + net.shapes[$1][0] }
            case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
                 .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .embedding, .lstm:
                (v, shape) = apply(layer, values[reads[0]], net.shapes[reads[0]])
            }
            precondition(shape == net.shapes[i + 1], "reference shape \(shape) != engine shape \(net.shapes[i + 1]) at node \(i)")
            values.append(v)
        }
        return values[values.count - 1]
    }

    private mutating func apply(_ layer: Layer, _ x: [Double], _ shape: [Int]) -> ([Double], [Int]) {
        switch layer {
        case .dense(let d):
            var y = [Double](repeating: 0, count: d.outFeatures)
            for o in 0..<d.outFeatures {
                var s = Double(d.bias[o])
                for i in 0..<d.inFeatures { s += Double(d.weight[o * d.inFeatures + i]) * x[i] }
                y[o] = s
            }
            return (y, [d.outFeatures])
        case .conv1d(let c):
            let (cin, l) = (shape[0], shape[1])
            let k = c.kernel[0], s = c.stride[0], p = c.padding[0], dl = c.dilation[0]
            let lo = Self.outLength(l, k: k, s: s, p: p, d: dl)
            var y = [Double](repeating: 0, count: c.outChannels * lo)
            for o in 0..<c.outChannels {
                for t in 0..<lo {
                    var acc = Double(c.bias[o])
                    for ci in 0..<cin {
                        for j in 0..<k {
                            let pos = t * s - p + j * dl
                            if pos < 0 || pos >= l { continue }
                            acc += Double(c.weight[(o * cin + ci) * k + j]) * x[ci * l + pos]
                        }
                    }
                    y[o * lo + t] = acc
                }
            }
            return (y, [c.outChannels, lo])
        case .conv2d(let c):
            let (cin, h, w) = (shape[0], shape[1], shape[2])
            let (kh, kw) = (c.kernel[0], c.kernel[1])
            let ho = Self.outLength(h, k: kh, s: c.stride[0], p: c.padding[0], d: c.dilation[0])
            let wo = Self.outLength(w, k: kw, s: c.stride[1], p: c.padding[1], d: c.dilation[1])
            var y = [Double](repeating: 0, count: c.outChannels * ho * wo)
            for o in 0..<c.outChannels {
                for a in 0..<ho {
                    for b in 0..<wo {
                        var acc = Double(c.bias[o])
                        for ci in 0..<cin {
                            for i in 0..<kh {
                                let r = a * c.stride[0] - c.padding[0] + i * c.dilation[0]
                                if r < 0 || r >= h { continue }
                                for j in 0..<kw {
                                    let q = b * c.stride[1] - c.padding[1] + j * c.dilation[1]
                                    if q < 0 || q >= w { continue }
                                    acc += Double(c.weight[((o * cin + ci) * kh + i) * kw + j]) * x[(ci * h + r) * w + q]
                                }
                            }
                        }
                        y[(o * ho + a) * wo + b] = acc
                    }
                }
            }
            return (y, [c.outChannels, ho, wo])
        case .maxPool1d(let p), .avgPool1d(let p):
            var isMax = false
            if case .maxPool1d = layer { isMax = true }
            let (ch, l) = (shape[0], shape[1])
            let k = p.kernel[0], s = p.stride[0], pad = p.padding[0]
            let lo = Self.outLength(l, k: k, s: s, p: pad, d: 1)
            var y = [Double](repeating: 0, count: ch * lo)
            for c in 0..<ch {
                for t in 0..<lo {
                    var window = [Double]()
                    var sum = 0.0
                    for j in 0..<k {
                        let pos = t * s - pad + j
                        if pos < 0 || pos >= l { continue }  // −∞ for max, 0 for the (padded) average
                        window.append(x[c * l + pos])
                        sum += x[c * l + pos]
                    }
                    y[c * lo + t] = isMax ? maxTrackingTies(window) : sum / Double(k)
                }
            }
            return (y, [ch, lo])
        case .maxPool2d(let p), .avgPool2d(let p):
            var isMax = false
            if case .maxPool2d = layer { isMax = true }
            let (ch, h, w) = (shape[0], shape[1], shape[2])
            let ho = Self.outLength(h, k: p.kernel[0], s: p.stride[0], p: p.padding[0], d: 1)
            let wo = Self.outLength(w, k: p.kernel[1], s: p.stride[1], p: p.padding[1], d: 1)
            var y = [Double](repeating: 0, count: ch * ho * wo)
            for c in 0..<ch {
                for a in 0..<ho {
                    for b in 0..<wo {
                        var window = [Double]()
                        var sum = 0.0
                        for i in 0..<p.kernel[0] {
                            let r = a * p.stride[0] - p.padding[0] + i
                            if r < 0 || r >= h { continue }
                            for j in 0..<p.kernel[1] {
                                let q = b * p.stride[1] - p.padding[1] + j
                                if q < 0 || q >= w { continue }
                                window.append(x[(c * h + r) * w + q])
                                sum += x[(c * h + r) * w + q]
                            }
                        }
                        y[(c * ho + a) * wo + b] = isMax ? maxTrackingTies(window) : sum / Double(p.kernel[0] * p.kernel[1])
                    }
                }
            }
            return (y, [ch, ho, wo])
        case .globalAvgPool:
            let ch = shape[0], plane = x.count / ch
            return ((0..<ch).map { c in x[(c * plane)..<((c + 1) * plane)].reduce(0, +) / Double(plane) }, [ch])
        case .flatten:
            return (x, [x.count])
        case .reshape(let to):
            return (x, to)
        case .dropout:
            return (x, shape)
        case .add, .concat:
            preconditionFailure("multi-input nodes are evaluated in forward(_:)")
        case .relu:
            return (x.map { v in trackKink(v); return v > 0 ? v : 0 }, shape)
        case .leakyReLU(let slope):
            return (x.map { v in trackKink(v); return v >= 0 ? v : Double(slope) * v }, shape)
        case .elu(let alpha):
            return (x.map { v in
                if alpha != 1 { trackKink(v) }
                return v > 0 ? v : Double(alpha) * (exp(v) - 1)
            }, shape)
        case .softplus(let beta):
            let b = Double(beta)
            return (x.map { log(1 + exp(b * $0)) / b }, shape)
        case .sigmoid:
            return (x.map { 1 / (1 + exp(-$0)) }, shape)
        case .tanh:
            return (x.map { tanh($0) }, shape)
        case .softmax:
            let e = x.map { exp($0) }
            let z = e.reduce(0, +)
            return (e.map { $0 / z }, shape)
        case .embedding(let e):
            // Ids index rows of the weight (PyTorch's Embedding).
            let y = x.flatMap { id in (0..<e.dimension).map { Double(e.weight[Int(id) * e.dimension + $0]) } }
            return (y, [x.count, e.dimension])
        case .lstm(let l):
            // PyTorch's LSTM equations, step by step, in float64 (gate rows i, f, g, o of the stacked weights).
            let L = shape[0], E = l.inputSize, H = l.hiddenSize
            var h = [Double](repeating: 0, count: H), c = h, all = [Double]()
            func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
            for t in 0..<L {
                var z = [Double](repeating: 0, count: 4 * H)
                for r in 0..<(4 * H) {
                    var acc = Double(l.biasIH[r]) + Double(l.biasHH[r])
                    for j in 0..<E { acc += Double(l.weightIH[r * E + j]) * x[t * E + j] }
                    for j in 0..<H { acc += Double(l.weightHH[r * H + j]) * h[j] }
                    z[r] = acc
                }
                for j in 0..<H {
                    c[j] = sig(z[H + j]) * c[j] + sig(z[j]) * tanh(z[2 * H + j])
                    h[j] = sig(z[3 * H + j]) * tanh(c[j])
                }
                all += h
            }
            return l.returnSequences ? (all, [L, H]) : (h, [H])
        case .batchNorm(let bn):
            let plane = x.count / bn.channels
            var y = x
            for c in 0..<bn.channels {
                let sd = (Double(bn.runningVar[c]) + Double(bn.eps)).squareRoot()
                for k in 0..<plane {
                    y[c * plane + k] = Double(bn.gamma[c]) * (x[c * plane + k] - Double(bn.runningMean[c])) / sd + Double(bn.beta[c])
                }
            }
            return (y, shape)
        }
    }

    private mutating func trackKink(_ v: Double) { kink = min(kink, abs(v)) }

    private mutating func maxTrackingTies(_ window: [Double]) -> Double {
        let sorted = window.sorted(by: >)
        // A tie between exact zeros comes from ReLU clamps upstream: every tied input then has zero
        // derivative (the ReLU kink distance is tracked separately), so the tie is harmless.
        if sorted.count > 1, !(sorted[0] == 0 && sorted[1] == 0) { kink = min(kink, sorted[0] - sorted[1]) }
        return sorted[0]
    }

    /// Forward of `rows` examples stored row-major.
    mutating func forwardBatch(_ x: [Float], rows: Int) -> [Double] {
        let d = net.inputSize
        return (0..<rows).flatMap { r in forward(x[(r * d)..<((r + 1) * d)].map(Double.init)) }
    }

    /// Central finite differences in float64 of ⟨c, f(x)⟩ for every input coordinate of every example.
    mutating func finiteDifferenceGradient(_ x: [Float], rows: Int, cotangent: [Float], h: Double = 1e-5) -> [Double] {
        let d = net.inputSize, out = net.outputSize
        var g = [Double](repeating: 0, count: rows * d)
        for r in 0..<rows {
            let base = x[(r * d)..<((r + 1) * d)].map(Double.init)
            let c = cotangent[(r * out)..<((r + 1) * out)].map(Double.init)
            for i in 0..<d {
                var xp = base, xm = base
                xp[i] += h
                xm[i] -= h
                let fp = forward(xp), fm = forward(xm)
                var s = 0.0
                for k in 0..<out { s += c[k] * (fp[k] - fm[k]) }
                g[r * d + i] = s / (2 * h)
            }
        }
        return g
    }
}

// MARK: - Assertions

func maxAbs<T: BinaryFloatingPoint>(_ v: [T]) -> Double { v.reduce(0.0) { max($0, abs(Double($1))) } }

/// Asserts |a_i − b_i| ≤ rel · max(‖b‖∞, floor) for every i, reporting the worst index.
func assertClose<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(
    _ a: [A], _ b: [B], rel: Double, floor: Double = 1e-6, _ what: String, file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.count, b.count, "\(what): counts differ", file: file, line: line)
    guard a.count == b.count else { return }
    let scale = max(maxAbs(b), floor)
    var worst = 0.0, at = -1
    for i in a.indices {
        let e = abs(Double(a[i]) - Double(b[i]))
        if e.isNaN { worst = .nan; at = i; break }
        if e > worst || at < 0 { worst = e; at = i }
    }
    XCTAssert(worst <= rel * scale, "\(what): max error \(worst) at \(at) (\(at >= 0 ? Double(a[at]) : 0) vs \(at >= 0 ? Double(b[at]) : 0)) exceeds \(rel) × \(scale)", file: file, line: line)
}

/// Runs `body`, asserting it throws a SwiftAttrError with `code` whose message contains `mention`.
func assertError<T>(
    _ code: SwiftAttrError.Code, mentioning mention: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected a \(code) error mentioning '\(mention)', got success", file: file, line: line)
    } catch let error as SwiftAttrError {
        XCTAssertEqual(error.code, code, "wrong code for: \(error.message)", file: file, line: line)
        XCTAssert(error.message.contains(mention), "message '\(error.message)' does not mention '\(mention)'", file: file, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Net from an input shape and layers (test helper: traps on a shape error).
func net(_ shape: [Int], _ layers: [Layer]) -> Network {
    do { return try Network(inputShape: shape, layers: layers) } catch { fatalError("test network does not build: \(error)") }
}

/// The im2col matrix of `x` (rows × inputSize) by its definition — patch entry k = (c, i, j) of output
/// position p of example n at (k, n·P + p), zero over the padding — and the col2im of `c` (the same
/// layout) accumulated in `T` in patch order from zero, as the library's col2im adds.
func im2colDefinition<T: BinaryFloatingPoint>(_ g: WindowGeometry, _ x: [Float], cotangent c: [Float], rows: Int,
                                              adjointIn _: T.Type) -> (cols: [Float], adjoint: [T]) {
    let P = g.outputPlane, columns = rows * P
    var cols = [Float](repeating: 0, count: g.patchSize * columns)
    var adjoint = [T](repeating: 0, count: rows * g.inputSize)
    for n in 0..<rows {
        for ch in 0..<g.channels {
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let k = (ch * g.kh + i) * g.kw + j
                    for oh in 0..<g.outHeight {
                        for ow in 0..<g.outWidth {
                            let ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw
                            guard ih >= 0, ih < g.height, iw >= 0, iw < g.width else { continue }
                            let at = k * columns + n * P + oh * g.outWidth + ow, to = n * g.inputSize + ch * g.inputPlane + ih * g.width + iw
                            cols[at] = x[to]
                            adjoint[to] += T(c[at])
                        }
                    }
                }
            }
        }
    }
    return (cols, adjoint)
}
