import XCTest
@testable import SwiftAttr

// Robustness of the numerics (issue 8): stopping tests that float64 can meet, covariances at the edge
// of positive semi-definiteness, and results that never come back non-finite with success.

final class RobustnessTests: XCTestCase {
    /// A seeded softmax-regression problem: n examples, h features N(0, 1), labels from noisy scores.
    private func softmaxProblem(_ rng: inout RandomSource) -> (features: [Double], labels: [Int64], n: Int, h: Int, k: Int) {
        let n = 30 + rng.index(170), h = 2 + rng.index(7), k = 2 + rng.index(4)
        let features = (0..<(n * h)).map { _ in rng.normal() }
        let w = (0..<(h * k)).map { _ in 1.5 * rng.normal() }
        let labels: [Int64] = (0..<n).map { i in
            let score = (0..<k).map { c in (0..<h).reduce(0.0) { $0 + features[i * h + $1] * w[$1 * k + c] } + rng.normal() }
            return Int64(score.indices.max { score[$0] < score[$1] }!)
        }
        return (features, labels, n, h, k)
    }

    /// The penalised softmax objective (the negative log posterior) and its gradient at (W, b), written
    /// independently of the library: Σ_i −log p_{i,y_i} + ½α‖W‖² + ½·10⁻⁴α‖b‖².
    private func objective(_ f: [Double], _ y: [Int64], n: Int, h: Int, k: Int, alpha: Double, w: [Double], b: [Double])
        -> (loss: Double, grad: [Double])
    {
        var loss = 0.0
        var grad = [Double](repeating: 0, count: (h + 1) * k)
        for i in 0..<n {
            var z = (0..<k).map { c in b[c] + (0..<h).reduce(0.0) { $0 + f[i * h + $1] * w[$1 * k + c] } }
            let top = z.max()!
            z = z.map { exp($0 - top) }
            let total = z.reduce(0, +)
            loss -= log(z[Int(y[i])] / total)
            for c in 0..<k {
                let r = z[c] / total - (Int64(c) == y[i] ? 1 : 0)
                for j in 0..<h { grad[j * k + c] += f[i * h + j] * r }
                grad[h * k + c] += r
            }
        }
        for j in 0..<(h * k) { loss += 0.5 * alpha * w[j] * w[j]; grad[j] += alpha * w[j] }
        for c in 0..<k { loss += 0.5e-4 * alpha * b[c] * b[c]; grad[h * k + c] += 1e-4 * alpha * b[c] }
        return (loss, grad)
    }

    /// 300 random well-conditioned problems all converge with the default tolerance, and each result is
    /// the optimum: the objective is smooth and strictly convex, so at the minimum the Newton decrement
    /// gᵀH⁻¹g ≤ ‖g‖²/λ_min(H) with λ_min(H) ≥ α; we check ‖g‖² / α ≤ 1e-9·(1 + loss), i.e. the objective is
    /// within 1e-9 relative of its minimum (float64 evaluates the loss of these sizes to ~1e-14 relative).
    func testBayesianLastLayerClassificationConvergesOnRandomProblems() throws {
        var rng = RandomSource(seed: 8_300)
        var failures: [String] = []
        for trial in 0..<300 {
            let (f, y, n, h, k) = softmaxProblem(&rng)
            let alpha = 1.0
            do {
                let post = try f.withUnsafeBufferPointer { fp in
                    try y.withUnsafeBufferPointer { yp in
                        try BayesianLastLayer.classification(features: fp, examples: n, hidden: h, labels: yp, classes: k, priorPrecision: alpha)
                    }
                }
                let (loss, grad) = objective(f, y, n: n, h: h, k: k, alpha: alpha, w: post.weightMean, b: post.bias)
                let g2 = grad.reduce(0) { $0 + $1 * $1 }
                if g2 / (1e-4 * alpha) > 1e-9 * (1 + loss) { failures.append("trial \(trial): ‖g‖² = \(g2) at loss \(loss)") }
            } catch {
                failures.append("trial \(trial) (n \(n), h \(h), k \(k)): \(error)")
            }
        }
        XCTAssert(failures.isEmpty, "\(failures.count) of 300 problems failed:\n" + failures.prefix(10).joined(separator: "\n"))
    }
}
