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
            if settings.kind == .adam { second = first }
        }
        step += 1
        let s = settings, lambda = s.weightDecay
        switch s.kind {
        case .sgd:
            let mu = s.momentum, lr = s.learningRate
            for k in parameters.indices {
                parameters[k].withUnsafeMutableBufferPointer { p in
                    gradients[k].withUnsafeBufferPointer { g in
                        first[k].withUnsafeMutableBufferPointer { v in
                            for e in 0..<p.count {
                                let d = g[e] + lambda * p[e]
                                let m = mu == 0 ? d : mu * v[e] + d
                                v[e] = m
                                p[e] -= lr * m
                            }
                        }
                    }
                }
            }
        case .adam:
            let b1 = s.beta1, b2 = s.beta2, eps = s.eps
            let c1 = 1 - Self.power(Double(b1), step), c2 = 1 - Self.power(Double(b2), step)
            let stepSize = Float(Double(s.learningRate) / c1), rootC2 = Float(c2.squareRoot())
            for k in parameters.indices {
                parameters[k].withUnsafeMutableBufferPointer { p in
                    gradients[k].withUnsafeBufferPointer { g in
                        first[k].withUnsafeMutableBufferPointer { m in
                            second[k].withUnsafeMutableBufferPointer { v in
                                for e in 0..<p.count {
                                    let d = g[e] + lambda * p[e]
                                    m[e] = b1 * m[e] + (1 - b1) * d
                                    v[e] = b2 * v[e] + (1 - b2) * d * d
                                    p[e] -= stepSize * m[e] / (v[e].squareRoot() / rootC2 + eps)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `b^t` in float64 (torch computes the bias corrections in Python floats, with C's pow).
    private static func power(_ b: Double, _ t: Int) -> Double { pow(b, Double(t)) }
}
