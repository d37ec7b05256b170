#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
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
            return Self.elementwise(&parameters, gradients, &first, &second, SGDRule(lr: s.learningRate, mu: s.momentum, lambda: lambda))
        case .adam:
            let b1 = s.beta1, b2 = s.beta2, eps = s.eps
            let c1 = 1 - Self.power(Double(b1), step), c2 = 1 - Self.power(Double(b2), step)
            let stepSize = Float(Double(s.learningRate) / c1), rootC2 = Float(c2.squareRoot())
            return Self.elementwise(&parameters, gradients, &first, &second,
                                    AdamRule(b1: b1, b2: b2, eps: eps, stepSize: stepSize, rootC2: rootC2, lambda: lambda))
        }
    }

    /// Runs `rule` over every array, split by ``forEachPart(ofArrays:_:)``, reporting per array whether a
    /// gradient or an updated value was not finite.
    private static func elementwise<Rule: UpdateRule>(
        _ parameters: inout [[Float]], _ gradients: [[Float]], _ first: inout [[Float]], _ second: inout [[Float]], _ rule: Rule
    ) -> UpdateFindings {
        let arrays = parameters.count
        // Unique buffers (copy-on-write resolved here, before any worker writes) whose addresses stay valid
        // while the arrays are not resized, which nothing below does.
        let P = (0..<arrays).map { k in parameters[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        let A = (0..<arrays).map { k in first[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        let B = (0..<arrays).map { k in second[k].withUnsafeMutableBufferPointer { $0.baseAddress } }
        // bad[k]: (gradient, parameter) non-finite somewhere in array k; each part writes its own flags.
        let counts = gradients.map(\.count)
        let parts = partCount(ofArrays: counts)
        var bad = [(Bool, Bool)](repeating: (false, false), count: parts * arrays)
        bad.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            forEachPart(ofArrays: counts) { c, k, range in
                gradients[k].withUnsafeBufferPointer { g in
                    let lo = range.lowerBound
                    out[c * arrays + k] = elementwise(P[k]! + lo, g.baseAddress! + lo, A[k]! + lo, B[k]! + lo, count: range.count, rule)
                }
            }
        }
        var findings = UpdateFindings()
        for k in 0..<arrays {
            for c in 0..<parts {
                let (g, p) = bad[c * arrays + k]
                if g, findings.nonFiniteGradient == nil { findings.nonFiniteGradient = k }
                if p, findings.nonFiniteParameter == nil { findings.nonFiniteParameter = k }
            }
        }
        return findings
    }

    /// Runs `rule` over `n` elements of a parameter array, its gradient and two state arrays, eight lanes at
    /// a time (SIMD8: the compiler cannot prove the four buffers disjoint and would otherwise go element by
    /// element), then the remainder with the same rule on one live lane. The square roots of a block of 64
    /// elements are taken in one pass over a private buffer (see ``squareRoots(_:count:)``). Every lane computes exactly the scalar formula. Returns whether
    /// some gradient and some updated parameter is not finite: x·0 is ±0 for finite x and NaN otherwise, so
    /// a sum of them is NaN exactly when one is not finite (in any order).
    @inline(__always)
    private static func elementwise<Rule: UpdateRule>(
        _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
        count n: Int, _ rule: Rule
    ) -> (Bool, Bool) {
        let P = UnsafeMutableRawPointer(p), G = UnsafeRawPointer(g), A = UnsafeMutableRawPointer(a), B = UnsafeMutableRawPointer(b)
        var gCheck = SIMD8<Float>(repeating: 0), pCheck = SIMD8<Float>(repeating: 0)
        let block = 64
        var e = 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { t in
            let T = UnsafeMutableRawPointer(t.baseAddress!), roots = t.baseAddress!
            while e + 8 <= n {
                let length = min(block, (n - e) & ~7)
                var j = 0
                while j < length {
                    let o = 4 * (e + j)
                    let pv = P.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    var av = A.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    var bv = B.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let gv = G.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let r = rule.prepare(pv, gv, &av, &bv)
                    gCheck += gv * 0
                    A.storeBytes(of: av, toByteOffset: o, as: SIMD8<Float>.self)
                    B.storeBytes(of: bv, toByteOffset: o, as: SIMD8<Float>.self)
                    T.storeBytes(of: r, toByteOffset: 4 * j, as: SIMD8<Float>.self)
                    j += 8
                }
                if Rule.usesRoot { squareRoots(roots, count: length) }
                j = 0
                while j < length {
                    let o = 4 * (e + j)
                    var pv = P.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    rule.finish(&pv, A.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), T.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self))
                    pCheck += pv * 0
                    P.storeBytes(of: pv, toByteOffset: o, as: SIMD8<Float>.self)
                    j += 8
                }
                e += length
            }
        }
        var gRest: Float = 0, pRest: Float = 0
        while e < n {
            var pv = SIMD8<Float>(repeating: p[e]), av = SIMD8<Float>(repeating: a[e]), bv = SIMD8<Float>(repeating: b[e])
            let r = rule.prepare(pv, SIMD8<Float>(repeating: g[e]), &av, &bv)
            rule.finish(&pv, av, SIMD8<Float>(repeating: r[0].squareRoot()))
            p[e] = pv[0]; a[e] = av[0]; b[e] = bv[0]
            gRest += g[e] * 0
            pRest += pv[0] * 0
            e += 1
        }
        return ((gCheck.sum() + gRest).isNaN, (pCheck.sum() + pRest).isNaN)
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

/// One optimiser's element rule on eight lanes, in two halves around a square root (a generic parameter
/// rather than closures, so it is specialised and inlined into the loop): `prepare` updates the state a, b
/// from parameter p and gradient g and returns the value whose square root `finish` receives (when
/// `usesRoot`), `finish` updates p.
private protocol UpdateRule {
    static var usesRoot: Bool { get }
    func prepare(_ p: SIMD8<Float>, _ g: SIMD8<Float>, _ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>) -> SIMD8<Float>
    func finish(_ p: inout SIMD8<Float>, _ a: SIMD8<Float>, _ root: SIMD8<Float>)
}

/// torch.optim.SGD: d = g + λp; v = μv + d (v = d when μ = 0); p −= lr·v.
private struct SGDRule: UpdateRule {
    let lr: Float, mu: Float, lambda: Float
    static var usesRoot: Bool { false }
    @inline(__always)
    func prepare(_ p: SIMD8<Float>, _ g: SIMD8<Float>, _ v: inout SIMD8<Float>, _ unused: inout SIMD8<Float>) -> SIMD8<Float> {
        let d = g + lambda * p
        v = mu == 0 ? d : mu * v + d
        return SIMD8(repeating: 0)
    }
    @inline(__always)
    func finish(_ p: inout SIMD8<Float>, _ v: SIMD8<Float>, _ unused: SIMD8<Float>) {
        p -= lr * v
    }
}

/// torch.optim.Adam: d = g + λp; m = β₁m + (1−β₁)d; v = β₂v + (1−β₂)d²; p −= stepSize·m / (√v/√c₂ + ε).
private struct AdamRule: UpdateRule {
    let b1: Float, b2: Float, eps: Float, stepSize: Float, rootC2: Float, lambda: Float
    static var usesRoot: Bool { true }
    @inline(__always)
    func prepare(_ p: SIMD8<Float>, _ g: SIMD8<Float>, _ m: inout SIMD8<Float>, _ v: inout SIMD8<Float>) -> SIMD8<Float> {
        let d = g + lambda * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        return v
    }
    @inline(__always)
    func finish(_ p: inout SIMD8<Float>, _ m: SIMD8<Float>, _ root: SIMD8<Float>) {
        p -= stepSize * m / (root / rootC2 + eps)
    }
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

/// `p[i] = √p[i]` for `count` (a multiple of 4) floats. `Float.squareRoot()` compiles to a scalar `sqrtss`
/// with a libm fallback (C's errno semantics), which no loop vectorises, so on x86-64 this takes four at a
/// time with SSE's `sqrtps`; both are IEEE square roots, correctly rounded, so the results are the same bits.
@inline(__always)
private func squareRoots(_ p: UnsafeMutablePointer<Float>, count: Int) {
    #if arch(x86_64) && canImport(_Builtin_intrinsics)
    var i = 0
    while i < count {
        _mm_storeu_ps(p + i, _mm_sqrt_ps(_mm_loadu_ps(p + i)))
        i += 4
    }
    #else
    for i in 0..<count { p[i] = p[i].squareRoot() }
    #endif
}
