#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The optimisers, with PyTorch's update rules (`torch.optim.SGD`, `torch.optim.Adam`), so a run can be
/// compared step by step with torch.
public enum OptimizerKind: Int32, Sendable, CaseIterable {
    /// `g ← g + λp; v ← μv + g; p ← p − lr·v` (dampening 0, no Nesterov; μ = 0: plain SGD).
    case sgd = 0
    /// `g ← g + λp; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε)` — torch's Adam: weight decay as an L2 term added to the
    /// gradient (not AdamW's decoupled decay), ε added after the bias-corrected square root.
    case adam = 1

    public var name: String {
        switch self {
        case .sgd: "sgd"
        case .adam: "adam"
        }
    }
}

/// Hyper-parameters of an optimiser (defaults: PyTorch's, with lr = 1e-3).
public struct OptimizerSettings: Sendable, Equatable {
    public var kind: OptimizerKind = .adam
    public var learningRate: Float = 1e-3
    /// SGD momentum μ ≥ 0.
    public var momentum: Float = 0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    /// L2 coefficient λ ≥ 0, added to the gradient as λp (every parameter, biases included, as
    /// `optimizer(model.parameters(), weight_decay=λ)` does).
    public var weightDecay: Float = 0

    public init() {}

    func validate() throws {
        guard learningRate.isFinite, learningRate > 0 else { throw SwiftAttrError.invalid("lr must be positive and finite (got \(learningRate))") }
        guard momentum.isFinite, momentum >= 0 else { throw SwiftAttrError.invalid("momentum must be finite and non-negative (got \(momentum))") }
        guard beta1.isFinite, beta1 >= 0, beta1 < 1 else { throw SwiftAttrError.invalid("betas[0] must be in [0, 1) (got \(beta1))") }
        guard beta2.isFinite, beta2 >= 0, beta2 < 1 else { throw SwiftAttrError.invalid("betas[1] must be in [0, 1) (got \(beta2))") }
        guard eps.isFinite, eps >= 0 else { throw SwiftAttrError.invalid("eps must be finite and non-negative (got \(eps))") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw SwiftAttrError.invalid("weight_decay must be finite and non-negative (got \(weightDecay))") }
    }
}

/// An optimiser's state over one list of parameter arrays: the step count and, per array, SGD's
/// momentum buffer or Adam's two moment estimates (allocated at the first step).
public struct OptimizerState: Sendable {
    public let settings: OptimizerSettings
    public private(set) var step = 0
    private var first: [[Float]] = []
    private var second: [[Float]] = []

    public init(_ settings: OptimizerSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    /// One update of `parameters` with `gradients` (the same arrays' shapes), in place.
    public mutating func update(_ parameters: inout [[Float]], gradients: [[Float]]) {
        precondition(parameters.count == gradients.count)
        if first.isEmpty {
            first = parameters.map { [Float](repeating: 0, count: $0.count) }
            second = first  // Adam's second moment; unused by SGD
        }
        step += 1
        let s = settings, lambda = s.weightDecay
        switch s.kind {
        case .sgd:
            let mu = s.momentum, lr = s.learningRate
            for k in parameters.indices {
                Self.elementwise(&parameters[k], gradients[k], &first[k], &second[k], SGDRule(lr: lr, mu: mu, lambda: lambda))
            }
        case .adam:
            let b1 = s.beta1, b2 = s.beta2, eps = s.eps
            let c1 = 1 - Self.power(Double(b1), step), c2 = 1 - Self.power(Double(b2), step)
            let stepSize = Float(Double(s.learningRate) / c1), rootC2 = Float(c2.squareRoot())
            for k in parameters.indices {
                Self.elementwise(&parameters[k], gradients[k], &first[k], &second[k],
                                 AdamRule(b1: b1, b2: b2, eps: eps, stepSize: stepSize, rootC2: rootC2, lambda: lambda))
            }
        }
    }

    /// Runs `rule(p, g, a, b)` over the elements of one parameter array, its gradient and two state arrays,
    /// eight lanes at a time (SIMD8, so sqrt and division vectorise: the compiler cannot prove the four
    /// buffers disjoint and would otherwise go element by element), then the remainder with the same rule
    /// on one live lane. Every lane computes exactly the scalar formula.
    @inline(__always)
    private static func elementwise<Rule: UpdateRule>(_ p: inout [Float], _ g: [Float], _ a: inout [Float], _ b: inout [Float], _ rule: Rule) {
        let n = p.count
        guard n > 0 else { return }
        p.withUnsafeMutableBufferPointer { pp in
            g.withUnsafeBufferPointer { gp in
                a.withUnsafeMutableBufferPointer { ap in
                    b.withUnsafeMutableBufferPointer { bp in
                        let P = UnsafeMutableRawPointer(pp.baseAddress!), G = UnsafeRawPointer(gp.baseAddress!)
                        let A = UnsafeMutableRawPointer(ap.baseAddress!), B = UnsafeMutableRawPointer(bp.baseAddress!)
                        var e = 0
                        while e + 8 <= n {
                            let o = 4 * e
                            var pv = P.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                            var av = A.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                            var bv = B.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                            rule.apply(&pv, G.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), &av, &bv)
                            P.storeBytes(of: pv, toByteOffset: o, as: SIMD8<Float>.self)
                            A.storeBytes(of: av, toByteOffset: o, as: SIMD8<Float>.self)
                            B.storeBytes(of: bv, toByteOffset: o, as: SIMD8<Float>.self)
                            e += 8
                        }
                        while e < n {
                            var pv = SIMD8<Float>(repeating: pp[e]), av = SIMD8<Float>(repeating: ap[e]), bv = SIMD8<Float>(repeating: bp[e])
                            rule.apply(&pv, SIMD8<Float>(repeating: gp[e]), &av, &bv)
                            pp[e] = pv[0]; ap[e] = av[0]; bp[e] = bv[0]
                            e += 1
                        }
                    }
                }
            }
        }
    }

    /// `b^t` in float64 (torch computes the bias corrections in Python floats, with C's pow).
    private static func power(_ b: Double, _ t: Int) -> Double { pow(b, Double(t)) }
}

/// One optimiser's element rule on eight lanes: parameter p, gradient g, state a and b (a generic
/// parameter rather than a closure, so it is specialised and inlined into the loop).
private protocol UpdateRule {
    func apply(_ p: inout SIMD8<Float>, _ g: SIMD8<Float>, _ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>)
}

/// torch.optim.SGD: d = g + λp; v = μv + d (v = d when μ = 0); p −= lr·v.
private struct SGDRule: UpdateRule {
    let lr: Float, mu: Float, lambda: Float
    @inline(__always)
    func apply(_ p: inout SIMD8<Float>, _ g: SIMD8<Float>, _ v: inout SIMD8<Float>, _ unused: inout SIMD8<Float>) {
        let d = g + lambda * p
        let m = mu == 0 ? d : mu * v + d
        v = m
        p -= lr * m
    }
}

/// torch.optim.Adam: d = g + λp; m = β₁m + (1−β₁)d; v = β₂v + (1−β₂)d²; p −= stepSize·m / (√v/√c₂ + ε).
private struct AdamRule: UpdateRule {
    let b1: Float, b2: Float, eps: Float, stepSize: Float, rootC2: Float, lambda: Float
    @inline(__always)
    func apply(_ p: inout SIMD8<Float>, _ g: SIMD8<Float>, _ m: inout SIMD8<Float>, _ v: inout SIMD8<Float>) {
        let d = g + lambda * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        p -= stepSize * m / (v.squareRoot() / rootC2 + eps)
    }
}
