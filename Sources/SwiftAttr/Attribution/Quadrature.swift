/// Quadrature rules on [0, 1] for path integrals ∫₀¹ g(α) dα ≈ Σ_k w_k g(α_k).
public enum PathQuadrature: Int32, Sendable, CaseIterable {
    /// α_k = k/n, w_k = 1/n (first order).
    case riemannLeft = 0
    /// α_k = (k+1)/n, w_k = 1/n (first order).
    case riemannRight = 1
    /// α_k = (k+½)/n, w_k = 1/n (second order).
    case riemannMiddle = 2
    /// α_k = k/(n−1), w_k = 1/(n−1) with halved end weights (second order; needs n ≥ 2). Captum uses
    /// weights 1/n here, which sum to 1 − 1/n; this is the correct trapezoid rule.
    case riemannTrapezoid = 3
    /// Gauss–Legendre nodes and weights mapped to [0, 1] (order 2n; Captum's default).
    case gaussLegendre = 4

    /// Captum's spelling of the method name.
    public var name: String {
        switch self {
        case .riemannLeft: "riemann_left"
        case .riemannRight: "riemann_right"
        case .riemannMiddle: "riemann_middle"
        case .riemannTrapezoid: "riemann_trapezoid"
        case .gaussLegendre: "gausslegendre"
        }
    }

    /// Nodes α_k and weights w_k of the `n`-point rule.
    public func rule(_ n: Int) throws -> (alphas: [Double], weights: [Double]) {
        try Check.positive(n, "n_steps")
        try Check.atMost(n, Check.maximumSteps, "n_steps")
        let step = 1 / Double(n)
        switch self {
        case .riemannLeft:
            return ((0..<n).map { Double($0) * step }, Array(repeating: step, count: n))
        case .riemannRight:
            return ((0..<n).map { Double($0 + 1) * step }, Array(repeating: step, count: n))
        case .riemannMiddle:
            return ((0..<n).map { (Double($0) + 0.5) * step }, Array(repeating: step, count: n))
        case .riemannTrapezoid:
            guard n >= 2 else { throw SwiftAttrError.invalid("n_steps must be at least 2 for riemann_trapezoid (got \(n))") }
            let h = 1 / Double(n - 1)
            var weights = Array(repeating: h, count: n)
            weights[0] = h / 2
            weights[n - 1] = h / 2
            return ((0..<n).map { Double($0) * h }, weights)
        case .gaussLegendre:
            try Check.atMost(n, Check.maximumGaussLegendreSteps, "n_steps", " for gausslegendre; use a Riemann rule for more steps")
            let (x, w) = Self.gaussLegendreNodes(n)
            return (x.map { ($0 + 1) / 2 }, w.map { $0 / 2 })
        }
    }

    /// Gauss–Legendre nodes (ascending) and weights on [−1, 1]: Newton's method on P_n from the guess
    /// cos(π(k + ¾)/(n + ½)); weights w = 2 / ((1 − x²) P_n'(x)²). Double precision for any practical n.
    static func gaussLegendreNodes(_ n: Int) -> ([Double], [Double]) {
        /// (P_n(x), P_n'(x)) by the three-term recurrence (j+1) P_{j+1} = (2j+1) x P_j − j P_{j−1}.
        func legendre(_ x: Double) -> (Double, Double) {
            var previous = 1.0, current = x
            for j in stride(from: 1, to: n, by: 1) {
                let next = ((2 * Double(j) + 1) * x * current - Double(j) * previous) / Double(j + 1)
                previous = current
                current = next
            }
            return (current, Double(n) * (x * current - previous) / (x * x - 1))
        }
        var nodes = [Double](repeating: 0, count: n)
        var weights = [Double](repeating: 0, count: n)
        for k in 0..<(n + 1) / 2 {
            var x = _cos(Double.pi * (Double(k) + 0.75) / (Double(n) + 0.5))
            for _ in 0..<100 {
                let (p, dp) = legendre(x)
                let dx = p / dp
                x -= dx
                if abs(dx) < 1e-15 { break }
            }
            let dp = legendre(x).1
            let w = 2 / ((1 - x * x) * dp * dp)
            nodes[k] = -x
            nodes[n - 1 - k] = x
            weights[k] = w
            weights[n - 1 - k] = w
        }
        return (nodes, weights)
    }
}
