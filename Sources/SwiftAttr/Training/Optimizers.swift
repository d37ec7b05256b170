#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels

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

    /// One update of `parameters` with `gradients` (the same arrays' shapes), in place, and what it found:
    /// the first array whose gradient, and the first whose updated values, hold a non-finite value (found
    /// in the same pass as the update, so no separate scan of either runs).
    ///
    /// Large updates are split over the library's workers by element ranges; every element's result is the
    /// same scalar formula whatever the split, so the update is bit-for-bit the same for any thread count.
    @discardableResult
    public mutating func update(_ parameters: inout [[Float]], gradients: [[Float]]) -> UpdateFindings {
        precondition(parameters.count == gradients.count)
        if first.isEmpty {
            first = parameters.map { [Float](repeating: 0, count: $0.count) }
            second = first  // Adam's second moment; unused by SGD
        }
        step += 1
        let s = settings, lambda = s.weightDecay
        switch s.kind {
        case .sgd:
            let lr = s.learningRate, mu = s.momentum
            return Self.elementwise(&parameters, gradients, &first, &second) { p, g, u, _, n in
                swiftattr_sgd(p, g, u, n, lr, mu, lambda)
            }
        case .adam:
            let b1 = s.beta1, b2 = s.beta2, eps = s.eps
            let c1 = 1 - Self.power(Double(b1), step), c2 = 1 - Self.power(Double(b2), step)
            let stepSize = Float(Double(s.learningRate) / c1), rootC2 = Float(c2.squareRoot())
            return Self.elementwise(&parameters, gradients, &first, &second) { p, g, m, v, n in
                swiftattr_adam(p, g, m, v, n, b1, b2, eps, stepSize, rootC2, lambda)
            }
        }
    }

    /// Runs `step(p, g, a, b, count)` — a CKernels rule (`swiftattr_adam`, `swiftattr_sgd`: each element
    /// alone, vectorised per instruction set) returning bit 0 for a non-finite gradient and bit 1 for a
    /// non-finite updated parameter — over every array, split by ``forEachPart(ofArrays:_:)``, and reports
    /// per array what it found.
    private static func elementwise(
        _ parameters: inout [[Float]], _ gradients: [[Float]], _ first: inout [[Float]], _ second: inout [[Float]],
        _ step: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Int32
    ) -> UpdateFindings {
        let arrays = parameters.count
        // Unique buffers (copy-on-write resolved here, before any worker writes) whose addresses stay valid
        // while the arrays are not resized, which nothing below does.
        let P = (0..<arrays).map { k in parameters[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        let A = (0..<arrays).map { k in first[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        let B = (0..<arrays).map { k in second[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        // bad[c · arrays + k]: what part c of array k found; each part writes its own entries.
        let counts = gradients.map(\.count)
        let parts = partCount(ofArrays: counts)
        var bad = [Int32](repeating: 0, count: parts * arrays)
        bad.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            forEachPart(ofArrays: counts) { c, k, range in
                gradients[k].withUnsafeBufferPointer { g in
                    let lo = range.lowerBound
                    out[c * arrays + k] = step(P[k]! + lo, g.baseAddress! + lo, A[k]! + lo, B[k]! + lo, range.count)
                }
            }
        }
        var findings = UpdateFindings()
        for k in 0..<arrays {
            for c in 0..<parts {
                let found = bad[c * arrays + k]
                if found & 1 != 0, findings.nonFiniteGradient == nil { findings.nonFiniteGradient = k }
                if found & 2 != 0, findings.nonFiniteParameter == nil { findings.nonFiniteParameter = k }
            }
        }
        return findings
    }

    /// `b^t` in float64 (torch computes the bias corrections in Python floats, with C's pow).
    private static func power(_ b: Double, _ t: Int) -> Double { pow(b, Double(t)) }
}

/// What an ``OptimizerState/update(_:gradients:)`` found: the index of the first parameter array whose
/// gradient held a NaN or ±∞, and of the first whose updated values do (nil: none).
public struct UpdateFindings: Sendable, Equatable {
    public var nonFiniteGradient: Int?
    public var nonFiniteParameter: Int?
}

/// Below this many floats in all, ``forEachPart(ofArrays:_:)`` runs on the calling thread (a worker
/// hand-off costs more than it saves).
let parallelElementwiseFloats = 1 << 15

/// How many parts ``forEachPart(ofArrays:_:)`` cuts arrays of these sizes into: the worker count, or 1.
func partCount(ofArrays counts: [Int]) -> Int {
    counts.reduce(0, +) >= parallelElementwiseFloats ? max(1, Parallel.workerCount) : 1
}

/// Elementwise work over several arrays on the library's workers: array k (of `counts[k]` elements) is cut
/// into ``partCount(ofArrays:)`` element ranges (inner boundaries at multiples of 8, for 8-lane loops), and
/// `body(c, k, range)` runs for part c of every non-empty range, parts in parallel. For work whose every
/// element is computed alone, the result does not depend on the split.
func forEachPart(ofArrays counts: [Int], _ body: (Int, Int, Range<Int>) -> Void) {
    let parts = partCount(ofArrays: counts)
    func run(_ c: Int) {
        for (k, n) in counts.enumerated() {
            let lo = c == 0 ? 0 : (n * c / parts) & ~7, hi = c == parts - 1 ? n : (n * (c + 1) / parts) & ~7
            if lo < hi { body(c, k, lo..<hi) }
        }
    }
    if parts == 1 {
        run(0)
    } else {
        Parallel.forEachChunk(count: parts, chunk: 1) { c, _, _ in run(c) }
    }
}
