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
