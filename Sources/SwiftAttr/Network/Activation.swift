/// An elementwise nonlinearity: its value, its first and its second derivative — the one place these
/// formulas live. The forward pass, the pullback, DeepLIFT's rules and second-order methods all use them.
///
/// | kind | f(x) | f′(x) (y = f(x)) | f″(x) |
/// | --- | --- | --- | --- |
/// | ReLU | max(x, 0) | 1{x > 0} | 0 |
/// | LeakyReLU(a) | x > 0 ? x : a·x | x > 0 ? 1 : a | 0 |
/// | ELU(α) | x > 0 ? x : α(eˣ − 1) | x > 0 ? 1 : y + α | x > 0 ? 0 : y + α |
/// | Softplus(β) | log(1 + e^{βx})/β | σ(βx) | β σ(βx)(1 − σ(βx)) |
/// | Sigmoid | σ(x) = 1/(1 + e^{−x}) | y(1 − y) | y(1 − y)(1 − 2y) |
/// | Tanh | tanh x | 1 − y² | −2y(1 − y²) |
///
/// At the kinks of ReLU and LeakyReLU (x = 0) the derivative taken is the left one, as PyTorch does.
public struct Activation: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case relu
        case leakyReLU(slope: Float)
        case elu(alpha: Float)
        case softplus(beta: Float)
        case sigmoid
        case tanh
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// The activation of an elementwise layer, or nil for every other node kind.
    public init?(_ layer: Layer) {
        switch layer {
        case .relu: kind = .relu
        case .leakyReLU(let slope): kind = .leakyReLU(slope: slope)
        case .elu(let alpha): kind = .elu(alpha: alpha)
        case .softplus(let beta): kind = .softplus(beta: beta)
        case .sigmoid: kind = .sigmoid
        case .tanh: kind = .tanh
        case .dense, .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape,
             .softmax, .batchNorm, .dropout, .add, .concat, .embedding, .lstm:
            return nil
        }
    }

    // MARK: Scalar formulas

    /// f(v).
    @inline(__always)
    public func value(_ v: Float) -> Float {
        switch kind {
        case .relu: Self.relu(v)
        case .leakyReLU(let slope): Self.leakyReLU(v, slope)
        case .elu(let alpha): Self.elu(v, alpha)
        case .softplus(let beta): Self.softplus(v, beta: beta)
        case .sigmoid: Self.sigmoid(v)
        case .tanh: _tanh(v)
        }
    }

    /// f′(v) given y = f(v).
    @inline(__always)
    public func derivative(at v: Float, output y: Float) -> Float {
        switch kind {
        case .relu: v > 0 ? 1 : 0
        case .leakyReLU(let slope): v > 0 ? 1 : slope
        case .elu(let alpha): Self.eluDerivative(v, y, alpha)
        case .softplus(let beta): Self.sigmoid(beta * v)
        case .sigmoid: y * (1 - y)
        case .tanh: 1 - y * y
        }
    }

    /// f″(v) given y = f(v).
    @inline(__always)
    public func secondDerivative(at v: Float, output y: Float) -> Float {
        switch kind {
        case .relu, .leakyReLU: 0
        case .elu(let alpha): v > 0 ? 0 : y + alpha
        case .softplus(let beta):
            { let s = Self.sigmoid(beta * v); return beta * s * (1 - s) }()
        case .sigmoid: y * (1 - y) * (1 - 2 * y)
        case .tanh: -2 * y * (1 - y * y)
        }
    }

    @inline(__always) static func relu(_ x: Float) -> Float { max(x, 0) }
    @inline(__always) static func leakyReLU(_ x: Float, _ slope: Float) -> Float { x > 0 ? x : slope * x }
    @inline(__always) static func elu(_ x: Float, _ alpha: Float) -> Float { x > 0 ? x : alpha * _expm1(x) }
    /// ELU's derivative tests the input: with α < 0 the output is positive for negative x.
    @inline(__always) static func eluDerivative(_ x: Float, _ y: Float, _ alpha: Float) -> Float { x > 0 ? 1 : y + alpha }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + _exp(-x)) : { let e = _exp(x); return e / (1 + e) }()
    }

    /// `log(1 + e^{βx})/β`, computed without overflow as `max(x, 0) + log1p(e^{−β|x|})/β`.
    @inline(__always)
    static func softplus(_ x: Float, beta: Float) -> Float {
        max(x, 0) + _log1p(_exp(-beta * abs(x))) / beta
    }

    // MARK: Fused value and derivatives (second-order passes)

    /// f(z), f′(z) and f″(z) of every element of `z` in one pass (the kind dispatched once): each
    /// transcendental is evaluated once per element, and Softplus and Sigmoid run branch-free loops over
    /// ``fastExp(_:)`` that the compiler vectorises. Softplus with u = e^{−β|z|}, r = 1/(1 + u):
    /// f = z⁺ + log1p(u)/β, f′ = σ(βz) = (z ≥ 0 ? 1 : u)·r, f″ = β·u·r² (= βσ(1 − σ) without the
    /// cancellation of 1 − σ). Sigmoid with u = e^{−|z|}: f = (z ≥ 0 ? 1 : u)·r, f′ = u·r², f″ = f′(1 − 2f).
    /// Agrees with ``value(_:)``, ``derivative(at:output:)`` and ``secondDerivative(at:output:)`` to a few
    /// float32 ulps (HessianSpeedPathTests).
    func valueAndDerivatives(_ z: [Float]) -> (value: [Float], first: [Float], second: [Float]) {
        let n = z.count
        var first = [Float](), second = [Float]()
        let value = uninitializedFloats(n) { y in
            first = uninitializedFloats(n) { d1 in
                second = uninitializedFloats(n) { d2 in
                    z.withUnsafeBufferPointer { zp in
                        let zp = zp.baseAddress!
                        switch kind {
                        case .relu:
                            for k in 0..<n { let v = zp[k]; y[k] = Self.relu(v); d1[k] = v > 0 ? 1 : 0; d2[k] = 0 }
                        case .leakyReLU(let slope):
                            for k in 0..<n { let v = zp[k]; y[k] = Self.leakyReLU(v, slope); d1[k] = v > 0 ? 1 : slope; d2[k] = 0 }
                        case .elu(let alpha):
                            for k in 0..<n {
                                let v = zp[k], f = Self.elu(v, alpha)
                                y[k] = f; d1[k] = Self.eluDerivative(v, f, alpha); d2[k] = v > 0 ? 0 : f + alpha
                            }
                        case .softplus(let beta):
                            let inverse = 1 / beta
                            for k in 0..<n {
                                let v = zp[k]
                                let u = Self.fastExp(-beta * abs(v)), r = 1 / (1 + u)
                                y[k] = max(v, 0) + Self.log1pUnit(u) * inverse
                                d1[k] = (v >= 0 ? 1 : u) * r
                                d2[k] = beta * u * r * r
                            }
                        case .sigmoid:
                            for k in 0..<n {
                                let v = zp[k]
                                let u = Self.fastExp(-abs(v)), r = 1 / (1 + u)
                                let s = (v >= 0 ? 1 : u) * r, ds = u * r * r
                                y[k] = s; d1[k] = ds; d2[k] = ds * (1 - 2 * s)
                            }
                        case .tanh:
                            for k in 0..<n {
                                let t = _tanh(zp[k]), dt = 1 - t * t
                                y[k] = t; d1[k] = dt; d2[k] = -2 * t * dt
                            }
                        }
                    }
                }
            }
        }
        return (value, first, second)
    }

    /// e^x for x ≤ 0 (0 below −87.3, where e^x leaves the normal floats), branch-free so loops vectorise:
    /// x = n·ln 2 + r with n = round(x/ln 2) (by the 1.5·2²³ shift) and |r| ≤ ln2/2 (ln 2 split in two for an
    /// exact reduction), e^r by Cephes' degree-7 expf polynomial, 2ⁿ built in the exponent bits. Measured max
    /// relative error against float64 exp over [−87.3, 0]: 8.2e-8, under 1.5 ulp (HessianSpeedPathTests.testFastExp).
    @inline(__always)
    static func fastExp(_ x: Float) -> Float {
        let clamped = max(x, -87.3)
        let shifted = clamped * 1.442695041 + 12582912
        let n = shifted - 12582912
        let r = (clamped - n * 0.693359375) + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let er = (p * r * r + r) + 1
        // The low mantissa bits of `shifted` hold n (two's complement); the exponent field of 2ⁿ is n + 127.
        let scale = Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23)
        return x < -87.3 ? 0 : er * scale
    }

    /// log(1 + u) for u ∈ [0, 1] as 2·atanh(s), s = u/(2 + u) ∈ [0, ⅓]: the odd series to s¹⁵ (truncation
    /// below (1/9)⁸/17 ≈ 1.4e-9 relative), with no cancellation for small u (log1p(u) ≈ u stays accurate).
    @inline(__always)
    static func log1pUnit(_ u: Float) -> Float {
        let s = u / (2 + u), s2 = s * s
        var p: Float = 1 / 15
        p = p * s2 + 1 / 13
        p = p * s2 + 1 / 11
        p = p * s2 + 1 / 9
        p = p * s2 + 1 / 7
        p = p * s2 + 1 / 5
        p = p * s2 + 1 / 3
        return 2 * s * (p * s2 + 1)
    }

    // MARK: Batched forms (the kind is dispatched once, outside the loop)

    /// f applied to every element of `x`.
    func apply(_ x: [Float]) -> [Float] {
        switch kind {
        case .relu: mapFloats(x, Self.relu)
        case .leakyReLU(let slope): mapFloats(x) { Self.leakyReLU($0, slope) }
        case .elu(let alpha): mapFloats(x) { Self.elu($0, alpha) }
        case .softplus(let beta): mapFloats(x) { Self.softplus($0, beta: beta) }
        case .sigmoid: mapFloats(x, Self.sigmoid)
        case .tanh: mapFloats(x) { _tanh($0) }
        }
    }

    /// `dy ⊙ f′(x)` with y = f(x) the recorded output.
    func pullback(_ dy: [Float], input x: [Float], output y: [Float]) -> [Float] {
        switch kind {
        case .relu: zipMap(dy, x) { g, v in v > 0 ? g : 0 }
        case .leakyReLU(let slope): zipMap(dy, x) { g, v in v > 0 ? g : slope * g }
        case .elu(let alpha):
            uninitializedFloats(dy.count) { dx in
                dy.withUnsafeBufferPointer { g in
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeBufferPointer { yp in
                            for k in 0..<g.count { dx[k] = g[k] * Self.eluDerivative(xp[k], yp[k], alpha) }
                        }
                    }
                }
            }
        case .softplus(let beta): zipMap(dy, x) { g, v in g * Self.sigmoid(beta * v) }
        case .sigmoid: zipMap(dy, y) { g, s in g * s * (1 - s) }
        case .tanh: zipMap(dy, y) { g, t in g * (1 - t * t) }
        }
    }
}
