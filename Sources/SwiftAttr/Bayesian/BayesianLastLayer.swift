import CBLAS

/// A Gaussian posterior over a trained network's last Dense layer, fitted on its penultimate features H
/// (n×h), so that RATE applies to an ordinary network (Ish-Horowicz et al. 2019 use a Bayesian final layer;
/// this is its post-hoc "last-layer" version).
///
/// - Regression: y = H w + b + ε, ε ∼ N(0, 1/β), w ∼ N(0, I/α). With H and y centred (b absorbs the means),
///   the posterior is w ∼ N(m, S), S = (αI + βHᵀH)⁻¹, m = βSHᵀy, and α, β maximise the evidence by MacKay's
///   fixed point (MacKay 1992; Bishop 2006, §3.5.2): γ = Σ_i βλ_i/(α+βλ_i), α = γ/‖m‖²,
///   β = (n − 1 − γ)/‖y − Hm‖², with λ_i the eigenvalues of HᵀH (one eigendecomposition for all iterations).
/// - Classification: softmax regression on [H, 1] with prior N(0, I/α) on the weights and N(0, 1/(10⁻⁴α)) on
///   the biases; the MAP by Newton's method with a backtracking line search; the Laplace covariance is the
///   inverse Hessian of the negative log posterior at the MAP (Bishop 2006, §4.5). Each class's weight block
///   of that covariance is returned.
public enum BayesianLastLayer {
    /// Posterior over W (h×outputs) and b.
    public struct Posterior: Sendable {
        /// Posterior mean of W, h×outputs row-major.
        public var weightMean: [Double]
        /// Posterior covariance of each column of W, outputs×h×h.
        public var weightCovariance: [Double]
        /// Bias (point estimate), one per output.
        public var bias: [Double]
        /// Evidence-maximised noise precision β per output (regression; empty for classification).
        public var noisePrecision: [Double]
        /// Prior precision α per output (evidence-maximised for regression; as given for classification).
        public var priorPrecision: [Double]

        /// A posterior whose every value is finite (`.numerical` otherwise: the fit overflowed).
        static func checked(_ weightMean: [Double], _ weightCovariance: [Double], _ bias: [Double], _ noise: [Double], _ prior: [Double]) throws -> Posterior {
            try Check.finiteResult(weightMean, "W_mean", hint: "; rescale H or y")
            try Check.finiteResult(weightCovariance, "W_cov", hint: "; rescale H or y")
            try Check.finiteResult(bias, "b", hint: "; rescale H or y")
            try Check.finiteResult(noise, "noise_precision", hint: "; rescale H or y")
            try Check.finiteResult(prior, "prior_precision", hint: "; rescale H or y")
            return Posterior(weightMean: weightMean, weightCovariance: weightCovariance, bias: bias, noisePrecision: noise, priorPrecision: prior)
        }
    }

    /// Bayesian linear regression of each column of `targets` (n×outputs) on `features` (n×h).
    public static func regression(features: UnsafeBufferPointer<Double>, examples n: Int, hidden h: Int,
                                  targets: UnsafeBufferPointer<Double>, outputs: Int,
                                  maxIterations: Int = 1000, tolerance: Double = 1e-8) throws -> Posterior {
        try Check.positive(n, "n")
        try Check.positive(h, "h")
        try Check.positive(outputs, "outputs")
        try Check.positive(maxIterations, "max_iter")
        guard tolerance > 0 && tolerance.isFinite else { throw SwiftAttrError.invalid("tol must be positive and finite (got \(tolerance))") }
        guard n >= 3 else { throw SwiftAttrError.invalid("H: regression needs at least 3 examples (got \(n))") }
        guard try features.count == Check.count([n, h], "H") else { throw SwiftAttrError.shape("H: expected \(n)×\(h) values, got \(features.count)") }
        guard try targets.count == Check.count([n, outputs], "y") else { throw SwiftAttrError.shape("y: expected \(n)×\(outputs) values, got \(targets.count)") }
        try Check.finite(features, "H")
        try Check.finite(targets, "y")

        let hMeans = RATE.columnMeans(features, n: n, p: h)
        var hc = [Double](repeating: 0, count: n * h)
        for i in 0..<n { for k in 0..<h { hc[i * h + k] = features[i * h + k] - hMeans[k] } }
        var gram = [Double](repeating: 0, count: h * h)
        hc.withUnsafeBufferPointer { a in
            gram.withUnsafeMutableBufferPointer { g in
                LAPACK.syrkUpper(trans: true, n: h, k: n, a: a.baseAddress!, lda: h, beta: 0, c: g.baseAddress!)
                LAPACK.symmetrizeFromUpper(g.baseAddress!, n: h)
            }
        }
        var lambda = try gram.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: h, what: "HᵀH") }
        for i in 0..<h where lambda[i] < 0 { lambda[i] = 0 }
        // gram now holds Q: eigenvector i contiguous at i·h.
        var weightMean = [Double](repeating: 0, count: h * outputs)
        var weightCovariance = [Double](repeating: 0, count: outputs * h * h)
        var bias = [Double](repeating: 0, count: outputs)
        var noise = [Double](repeating: 0, count: outputs)
        var prior = [Double](repeating: 0, count: outputs)
        let dof = Double(n - 1)
        for o in 0..<outputs {
            var ybar = 0.0
            for i in 0..<n { ybar += targets[i * outputs + o] }
            ybar /= Double(n)
            var yc = [Double](repeating: 0, count: n)
            var yy = 0.0
            for i in 0..<n { yc[i] = targets[i * outputs + o] - ybar; yy += yc[i] * yc[i] }
            // z = Qᵀ Hcᵀ yc.
            var hty = [Double](repeating: 0, count: h)
            BLAS.dgemm(transA: true, m: h, n: 1, k: n, a: hc, b: yc, c: &hty)
            var z = [Double](repeating: 0, count: h)
            for i in 0..<h { var s = 0.0; for k in 0..<h { s += gram[i * h + k] * hty[k] }; z[i] = s }
            let scale = max(yy / dof, Double.leastNormalMagnitude)
            var alpha = 1.0
            var beta = 1 / scale
            var converged = false
            var mt = [Double](repeating: 0, count: h)
            for _ in 0..<maxIterations {
                var gamma = 0.0, norm2 = 0.0, cross = 0.0, quad = 0.0
                for i in 0..<h {
                    let denom = alpha + beta * lambda[i]
                    mt[i] = beta * z[i] / denom
                    gamma += beta * lambda[i] / denom
                    norm2 += mt[i] * mt[i]
                    cross += mt[i] * z[i]
                    quad += lambda[i] * mt[i] * mt[i]
                }
                let residual = max(yy - 2 * cross + quad, yy * 1e-15 + Double.leastNormalMagnitude)
                let newAlpha = min(max(gamma / max(norm2, Double.leastNormalMagnitude), 1e-12), 1e12 * max(1, 1 / scale))
                let newBeta = min(max((dof - gamma) / residual, 1e-12 / scale), 1e15 / scale)
                let change = max(abs(newAlpha - alpha) / alpha, abs(newBeta - beta) / beta)
                alpha = newAlpha
                beta = newBeta
                if change < tolerance { converged = true; break }
            }
            guard converged else {
                throw SwiftAttrError(.numerical, "y: the evidence maximisation did not converge in \(maxIterations) iterations (output \(o))")
            }
            // Final posterior at the converged (α, β).
            var invDiag = [Double](repeating: 0, count: h)
            for i in 0..<h {
                invDiag[i] = 1 / (alpha + beta * lambda[i])
                mt[i] = beta * z[i] * invDiag[i]
            }
            var hbarM = 0.0
            for k in 0..<h {
                var s = 0.0
                for i in 0..<h { s += gram[i * h + k] * mt[i] }
                weightMean[k * outputs + o] = s
                hbarM += hMeans[k] * s
            }
            bias[o] = ybar - hbarM
            // S = Q diag(invDiag) Qᵀ = Σ_i invDiag_i q_i q_iᵀ.
            var scaled = gram
            for i in 0..<h { for k in 0..<h { scaled[i * h + k] *= invDiag[i] } }
            weightCovariance.withUnsafeMutableBufferPointer { out in
                BLAS.dgemm(transA: true, m: h, n: h, k: h, a: scaled, b: gram, c: out.baseAddress! + o * h * h)
            }
            noise[o] = beta
            prior[o] = alpha
        }
        return try Posterior.checked(weightMean, weightCovariance, bias, noise, prior)
    }

    /// Laplace approximation of softmax regression of `labels` (n, values in 0..<classes) on `features`.
    /// Newton's method stops when the Newton decrement satisfies λ²/2 ≤ `tolerance`·(1 + |loss|), λ² = gᵀH⁻¹g.
    public static func classification(features: UnsafeBufferPointer<Double>, examples n: Int, hidden h: Int,
                                      labels: UnsafeBufferPointer<Int64>, classes: Int, priorPrecision: Double = 1,
                                      maxIterations: Int = 100, tolerance: Double = 1e-8) throws -> Posterior {
        try Check.positive(n, "n")
        try Check.positive(h, "h")
        try Check.positive(maxIterations, "max_iter")
        guard classes >= 2 else { throw SwiftAttrError.invalid("classes must be at least 2 (got \(classes))") }
        guard priorPrecision > 0 && priorPrecision.isFinite else {
            throw SwiftAttrError.invalid("prior_precision must be positive and finite (got \(priorPrecision))")
        }
        guard tolerance > 0 && tolerance.isFinite else { throw SwiftAttrError.invalid("tol must be positive and finite (got \(tolerance))") }
        guard try features.count == Check.count([n, h], "H") else { throw SwiftAttrError.shape("H: expected \(n)×\(h) values, got \(features.count)") }
        guard labels.count == n else { throw SwiftAttrError.shape("y: expected \(n) labels, got \(labels.count)") }
        try Check.finite(features, "H")
        for i in 0..<n where labels[i] < 0 || labels[i] >= Int64(classes) {
            throw SwiftAttrError(.outOfRange, "y[\(i)] = \(labels[i]) is out of range 0..<\(classes)")
        }
        let d = h + 1, k = classes, dim = d * k
        // Augmented features [H, 1] (n×d).
        var ha = [Double](repeating: 1, count: n * d)
        for i in 0..<n { for j in 0..<h { ha[i * d + j] = features[i * h + j] } }
        var priorDiag = [Double](repeating: priorPrecision, count: d)
        priorDiag[h] = 1e-4 * priorPrecision
        var theta = [Double](repeating: 0, count: d * k)  // row-major d×k: θ[r, c]

        func probabilities(_ theta: [Double]) -> (p: [Double], loss: Double) {
            var z = [Double](repeating: 0, count: n * k)
            BLAS.dgemm(m: n, n: k, k: d, a: ha, b: theta, c: &z)
            var loss = 0.0
            for i in 0..<n {
                var top = -Double.infinity
                for c in 0..<k { top = max(top, z[i * k + c]) }
                var s = 0.0
                for c in 0..<k { let e = _exp(z[i * k + c] - top); z[i * k + c] = e; s += e }
                for c in 0..<k { z[i * k + c] /= s }
                loss -= _log(max(z[i * k + Int(labels[i])], Double.leastNormalMagnitude))
            }
            for r in 0..<d { for c in 0..<k { loss += 0.5 * priorDiag[r] * theta[r * k + c] * theta[r * k + c] } }
            return (z, loss)
        }

        /// Gradient (class-major vector, index c·d + r) and Hessian (dim×dim) at θ.
        func derivatives(_ theta: [Double], _ prob: [Double]) -> ([Double], [Double]) {
            var residual = prob
            for i in 0..<n { residual[i * k + Int(labels[i])] -= 1 }
            var g = [Double](repeating: 0, count: d * k)  // d×k
            BLAS.dgemm(transA: true, m: d, n: k, k: n, a: ha, b: residual, c: &g)
            var grad = [Double](repeating: 0, count: dim)
            for c in 0..<k { for r in 0..<d { grad[c * d + r] = g[r * k + c] + priorDiag[r] * theta[r * k + c] } }
            var hess = [Double](repeating: 0, count: dim * dim)
            var weighted = [Double](repeating: 0, count: n * d)
            var block = [Double](repeating: 0, count: d * d)
            for a in 0..<k {
                for b in a..<k {
                    for i in 0..<n {
                        let w = prob[i * k + a] * ((a == b ? 1 : 0) - prob[i * k + b])
                        for j in 0..<d { weighted[i * d + j] = w * ha[i * d + j] }
                    }
                    BLAS.dgemm(transA: true, m: d, n: d, k: n, a: weighted, b: ha, c: &block)
                    for r in 0..<d {
                        for s in 0..<d {
                            hess[(a * d + r) * dim + b * d + s] = block[r * d + s]
                            hess[(b * d + s) * dim + a * d + r] = block[r * d + s]
                        }
                    }
                }
                for r in 0..<d { hess[(a * d + r) * dim + a * d + r] += priorDiag[r] }
            }
            return (grad, hess)
        }

        var (prob, loss) = probabilities(theta)
        var converged = false
        for _ in 0..<maxIterations {
            let (grad, hess) = derivatives(theta, prob)
            // Newton step: solve Hess·Δ = grad by Cholesky.
            var factor = hess
            var step = grad
            let info = factor.withUnsafeMutableBufferPointer { f in
                step.withUnsafeMutableBufferPointer { s in
                    Parallel.threadedBLAS {
                        LAPACKE_dposv(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), LapackInt(dim), 1, f.baseAddress!, LapackInt(dim),
                                      s.baseAddress!, LapackInt(dim))
                    }
                }
            }
            guard info == 0 else { throw SwiftAttrError(.numerical, "H: the Hessian of the softmax posterior is not positive definite") }
            // The Newton decrement λ² = gᵀH⁻¹g: λ²/2 estimates loss − min loss (Boyd & Vandenberghe §9.5),
            // independent of the scaling of H. The stopping test is relative to the objective's size, which
            // float64 can meet; an absolute gradient test cannot be met once Σ_i over n examples rounds.
            var decrease = 0.0
            for i in 0..<dim { decrease += grad[i] * step[i] }
            let small = 0.5 * decrease <= tolerance * (1 + abs(loss))
            var t = 1.0
            var accepted = false
            for _ in 0..<60 {
                var trial = theta
                for c in 0..<k { for r in 0..<d { trial[r * k + c] -= t * step[c * d + r] } }
                let (p2, l2) = probabilities(trial)
                if l2 <= loss - 1e-4 * t * decrease || (l2 <= loss && (small || t < 1e-6)) {
                    theta = trial; prob = p2; loss = l2; accepted = true
                    break
                }
                if small { break }  // already at the optimum to working precision: keep θ
                t *= 0.5
            }
            // Near the optimum the (accepted) full step squares the remaining error, so stop after it.
            if small { converged = true; break }
            // No decrease is possible at working precision yet the decrement is not small: give up.
            if !accepted { break }
        }
        guard converged else {
            throw SwiftAttrError(.numerical, "y: Newton's method for the softmax MAP did not converge in \(maxIterations) iterations")
        }
        // Laplace covariance: inverse Hessian at the MAP.
        let (_, hess) = derivatives(theta, prob)
        var inverse = hess
        let info = inverse.withUnsafeMutableBufferPointer { f -> Int32 in Parallel.threadedBLAS {
            let a = LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), LapackInt(dim), f.baseAddress!, LapackInt(dim))
            if a != 0 { return a }
            return LAPACKE_dpotri(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), LapackInt(dim), f.baseAddress!, LapackInt(dim))
        } }
        guard info == 0 else { throw SwiftAttrError(.numerical, "H: the Hessian at the softmax MAP is not invertible") }
        // Column-major lower triangle holds the inverse: element (i, j), i ≥ j, at j·dim + i.
        func inv(_ i: Int, _ j: Int) -> Double { i >= j ? inverse[j * dim + i] : inverse[i * dim + j] }
        var weightMean = [Double](repeating: 0, count: h * k)
        var weightCovariance = [Double](repeating: 0, count: k * h * h)
        var bias = [Double](repeating: 0, count: k)
        for c in 0..<k {
            for r in 0..<h { weightMean[r * k + c] = theta[r * k + c] }
            bias[c] = theta[h * k + c]
            for r in 0..<h { for s in 0..<h { weightCovariance[c * h * h + r * h + s] = inv(c * d + r, c * d + s) } }
        }
        return try Posterior.checked(weightMean, weightCovariance, bias, [], [Double](repeating: priorPrecision, count: k))
    }
}
