import XCTest
@testable import SwiftAttr

/// Perturbation methods: closed forms on linear models, efficiency, convergence of Shapley sampling and
/// exactness of enumerated KernelSHAP against brute-force Shapley values, seeded draws independent of
/// chunking, and argument errors.
final class PerturbationTests: XCTestCase {
    /// A 6-feature nonlinear model (tanh and ReLU, so features interact).
    func sixFeatureNet(_ g: inout Gen) -> Network {
        net([6], [g.dense(10, 6), .tanh, g.dense(8, 10), .relu, g.dense(3, 8)])
    }

    /// Exact Shapley values of f_t at x against b (every element its own feature), in double: the
    /// weighted sum over all subsets S ∌ j of f(S ∪ j) − f(S).
    func bruteForceShapley(_ n: Network, x: [Float], b: [Float], target: Int) throws -> [Double] {
        let m = x.count
        var values = [Double](repeating: 0, count: 1 << m)
        var inputs = [Float]()
        for s in 0..<(1 << m) { for k in 0..<m { inputs.append((s >> k) & 1 == 1 ? x[k] : b[k]) } }
        let y = n.forward(inputs, rows: 1 << m)
        for s in 0..<(1 << m) { values[s] = Double(y[s * n.outputSize + target]) }
        func factorial(_ k: Int) -> Double { k <= 1 ? 1 : Double(k) * factorial(k - 1) }
        var phi = [Double](repeating: 0, count: m)
        for j in 0..<m {
            for s in 0..<(1 << m) where (s >> j) & 1 == 0 {
                let size = s.nonzeroBitCount
                phi[j] += factorial(size) * factorial(m - size - 1) / factorial(m) * (values[s | (1 << j)] - values[s])
            }
        }
        return phi
    }

    func testShapleySamplingIsEfficientAndConvergesToExactShapleyValues() throws {
        var g = Gen(900)
        let n = sixFeatureNet(&g)
        let x = g.normals(6), b = g.normals(6, scale: 0.3)
        let exact = try bruteForceShapley(n, x: x, b: b, target: 1)
        let y = n.forward(x + b, rows: 2)
        let delta = Double(y[1] - y[n.outputSize + 1])
        XCTAssertGreaterThan(abs(delta), 0.05)
        // Efficiency holds for every sample count: each permutation telescopes (double sums of float32
        // outputs of magnitude ≤ ~2: 1e-6).
        for samples in [1, 3, 17] {
            let phi = try n.shapleyValueSampling(x, rows: 1, baselines: b, targets: [1], samples: samples, seed: 5)
            XCTAssertEqual(phi.reduce(0.0) { $0 + Double($1) }, delta, accuracy: 1e-5, "efficiency, \(samples) permutations")
        }
        let few = try n.shapleyValueSampling(x, rows: 1, baselines: b, targets: [1], samples: 20, seed: 5)
        let many = try n.shapleyValueSampling(x, rows: 1, baselines: b, targets: [1], samples: 5000, seed: 5)
        let errorFew = zip(few, exact).map { abs(Double($0) - $1) }.max()!
        let errorMany = zip(many, exact).map { abs(Double($0) - $1) }.max()!
        // Monte-Carlo error ∝ 1/√samples: 250× the samples should cut it by ~16×; asserted: 4× and 2 % of max|φ|.
        XCTAssertLessThan(errorMany, 0.02 * maxAbs(exact), "5000 permutations: error \(errorMany)")
        XCTAssertLessThan(errorMany * 4, errorFew, "error does not shrink: \(errorFew) → \(errorMany)")
        // All 720 permutations of 6 features, passed explicitly: exactly the Shapley values.
        var all = [[Int]]()
        func permute(_ prefix: [Int], _ rest: [Int]) {
            if rest.isEmpty { all.append(prefix); return }
            for (k, v) in rest.enumerated() { var r = rest; r.remove(at: k); permute(prefix + [v], r) }
        }
        permute([], Array(0..<6))
        let full = try n.shapleyValueSampling(x, rows: 1, baselines: b, targets: [1], permutations: all.flatMap { $0 })
        assertClose(full, exact, rel: 1e-5, "all permutations")
    }

    func testKernelShapEnumerationIsExactAndSampledKernelShapIsEfficient() throws {
        var g = Gen(901)
        let n = sixFeatureNet(&g)
        let x = g.normals(12), b = g.normals(6, scale: 0.3)
        let exact0 = try bruteForceShapley(n, x: Array(x[0..<6]), b: b, target: 2)
        let exact1 = try bruteForceShapley(n, x: Array(x[6..<12]), b: b, target: 0)
        // 2^6 − 2 = 62 coalitions cover all: exact (least squares in double on float32 outputs: 1e-5).
        let phi = try n.kernelShap(x, rows: 2, baselines: b, targets: [2, 0], samples: 62)
        assertClose(Array(phi[0..<6]), exact0, rel: 1e-5, "enumerated KernelSHAP, example 0")
        assertClose(Array(phi[6..<12]), exact1, rel: 1e-5, "enumerated KernelSHAP, example 1")
        // The same 62 coalitions passed with their kernel weights (as shap's KernelExplainer would): the same fit.
        var bits = [UInt8](), weights = [Double]()
        func choose(_ n: Int, _ k: Int) -> Double { k == 0 ? 1 : choose(n - 1, k - 1) * Double(n) / Double(k) }
        for z in 1..<63 {
            for f in 0..<6 { bits.append(UInt8((z >> f) & 1)) }
            let k = z.nonzeroBitCount
            weights.append(5 / (choose(6, k) * Double(k) * Double(6 - k)))
        }
        let passed = try n.kernelShap(x, rows: 2, baselines: b, targets: [2, 0], coalitions: bits, coalitionWeights: weights)
        assertClose(passed, phi, rel: 1e-6, "enumeration passed as coalitions with weights")
        // Sampled: not exact, but efficient.
        let sampled = try n.kernelShap(x, rows: 2, baselines: b, targets: [2, 0], samples: 20, seed: 3)
        let y = n.forward(x + b, rows: 3)
        let delta0 = Double(y[2] - y[2 * n.outputSize + 2])
        XCTAssertEqual(sampled[0..<6].reduce(0.0) { $0 + Double($1) }, delta0, accuracy: 1e-5)
    }

    func testOcclusionAndAblationOnALinearModelAreWindowSumsOfWTimesDelta() throws {
        var g = Gen(902)
        let dense = g.dense(2, 30)
        let n = net([1, 6, 5], [.flatten, dense])
        guard case .dense(let d) = dense else { return XCTFail() }
        let x = g.normals(60), b = g.normals(30, scale: 0.5)
        let target = [1, 0]
        // w_k (x_k − b_k) per element: a linear model's output change when an element is occluded.
        func contribution(_ i: Int, _ k: Int) -> Double { Double(d.weight[target[i] * 30 + k]) * Double(x[i * 30 + k] - b[k]) }
        for (window, strides) in [([1, 2, 2], [1, 2, 2]), ([1, 3, 3], [1, 1, 1]), ([1, 4, 2], [1, 3, 1])] {
            let phi = try n.occlusion(x, rows: 2, window: window, strides: strides, baselines: b, targets: target)
            var expected = [Double](repeating: 0, count: 60)
            // Positions ⌈(dim − window)/stride⌉ + 1 from 0 in steps of the stride, cut at the edge.
            let rowsH = (6 - window[1] + strides[1] - 1) / strides[1] + 1, colsW = (5 - window[2] + strides[2] - 1) / strides[2] + 1
            for i in 0..<2 {
                var sum = [Double](repeating: 0, count: 30), cover = sum
                for p in 0..<rowsH {
                    for q in 0..<colsW {
                        let h0 = p * strides[1], w0 = q * strides[2]
                        let hs = h0..<min(6, h0 + window[1]), ws = w0..<min(5, w0 + window[2])
                        var s = 0.0
                        for h in hs { for w in ws { s += contribution(i, h * 5 + w) } }
                        for h in hs { for w in ws { sum[h * 5 + w] += s; cover[h * 5 + w] += 1 } }
                    }
                }
                for k in 0..<30 { expected[i * 30 + k] = sum[k] / cover[k] }
            }
            assertClose(phi, expected, rel: 1e-5, "occlusion \(window) stride \(strides)")
        }
        // Feature ablation with a mask of three bands: each band's Σ w (x − b) on its elements.
        let mask = (0..<30).map { ($0 / 5) / 2 }
        let phi = try n.featureAblation(x, rows: 2, baselines: b, mask: mask, targets: target)
        var expected = [Double](repeating: 0, count: 60)
        for i in 0..<2 {
            for f in 0..<3 {
                let s = (0..<30).filter { mask[$0] == f }.reduce(0.0) { $0 + contribution(i, $1) }
                for k in 0..<30 where mask[k] == f { expected[i * 30 + k] = s }
            }
        }
        assertClose(phi, expected, rel: 1e-5, "feature ablation")
    }

    func testSeededDrawsDependOnSeedExampleAndSampleOnly() throws {
        var g = Gen(903)
        let n = sixFeatureNet(&g)
        let rows = 5
        let x = g.normals(rows * 6), b = g.normals(6, scale: 0.3)
        let targets = [0, 1, 2, 0, 1]
        let methods: [(String, (Int?, Int, Int) throws -> [Float])] = [
            ("shapley", { chunk, first, count in
                try n.shapleyValueSampling(Array(x[(first * 6)..<((first + count) * 6)]), rows: count, baselines: b,
                                           targets: Array(targets[first..<(first + count)]), samples: 7, seed: 11,
                                           exampleOffset: first, internalBatchSize: chunk) }),
            ("kernel_shap", { chunk, first, count in
                try n.kernelShap(Array(x[(first * 6)..<((first + count) * 6)]), rows: count, baselines: b,
                                 targets: Array(targets[first..<(first + count)]), samples: 30, seed: 11,
                                 exampleOffset: first, internalBatchSize: chunk) }),
            ("lime", { chunk, first, count in
                try n.lime(Array(x[(first * 6)..<((first + count) * 6)]), rows: count, baselines: b,
                           targets: Array(targets[first..<(first + count)]), samples: 40, seed: 11, exampleOffset: first,
                           surrogate: .linear, internalBatchSize: chunk) }),
        ]
        for (name, call) in methods {
            let whole = try call(nil, 0, rows)
            XCTAssertEqual(whole, try call(nil, 0, rows), "\(name): the same call repeats bit for bit")
            // Other chunkings evaluate the same inputs in other GEMM shapes (float32 rounding: 1e-5 of max).
            for chunk in [1, 3, 64] { assertClose(try call(chunk, 0, rows), whole, rel: 1e-5, "\(name), chunk \(chunk)") }
            // A batch split into calls with first_example set reproduces the one-call numbers.
            let split = try call(nil, 0, 2) + (try call(nil, 2, 3))
            assertClose(split, whole, rel: 1e-5, "\(name), split batch")
        }
        // Feature permutation: chunk independence (its draws are keyed by the feature).
        let p1 = try n.featurePermutation(x, rows: rows, targets: targets, seed: 4)
        assertClose(try n.featurePermutation(x, rows: rows, targets: targets, seed: 4, internalBatchSize: 2), p1, rel: 1e-5, "permutation chunks")
        XCTAssertNotEqual(try n.featurePermutation(x, rows: rows, targets: targets, seed: 5), p1)
    }

    func testLimeSurrogates() throws {
        var g = Gen(905)
        let n = sixFeatureNet(&g)
        let x = g.normals(12), b = g.normals(6, scale: 0.3)
        // With alpha = 0 the Lasso's minimiser is the least-squares fit (coordinate descent to 1e-12: 1e-6).
        let linear = try n.lime(x, rows: 2, baselines: b, targets: [1, 2], samples: 60, seed: 2, surrogate: .linear)
        let lasso0 = try n.lime(x, rows: 2, baselines: b, targets: [1, 2], samples: 60, seed: 2, surrogate: .lasso, alpha: 0)
        assertClose(lasso0, linear, rel: 1e-5, "lasso with alpha 0 = linear")
        // A large alpha zeroes every coefficient; a moderate one shrinks the fit (smaller L1 norm).
        let zero = try n.lime(x, rows: 2, baselines: b, targets: [1, 2], samples: 60, seed: 2, alpha: 1e3)
        XCTAssert(zero.allSatisfy { $0 == 0 })
        let shrunk = try n.lime(x, rows: 2, baselines: b, targets: [1, 2], samples: 60, seed: 2, alpha: 0.01)
        XCTAssertLessThan(shrunk.reduce(0) { $0 + abs($1) }, linear.reduce(0) { $0 + abs($1) })
        // On a linear model with every coalition of a 4-feature input, the linear surrogate recovers w ⊙ (x − b).
        let dense = g.dense(1, 4)
        guard case .dense(let d) = dense else { return XCTFail() }
        let lin = net([4], [dense])
        let x4 = g.normals(4), b4 = g.normals(4)
        var bits = [UInt8]()
        for z in 0..<16 { for f in 0..<4 { bits.append(UInt8((z >> f) & 1)) } }
        let phi = try lin.lime(x4, rows: 1, baselines: b4, targets: [0], coalitions: bits, distance: .euclidean, surrogate: .linear)
        assertClose(phi, (0..<4).map { Double(d.weight[$0]) * Double(x4[$0] - b4[$0]) }, rel: 1e-5, "linear LIME on a linear model")
    }

    func testArgumentErrorsNameTheArgument() throws {
        var g = Gen(904)
        let image = net([2, 4, 4], [.flatten, g.dense(3, 32)])
        let x = g.normals(2 * 32)
        assertError(.invalidArgument, mentioning: "sliding_window_shapes[1]") {
            try image.occlusion(x, rows: 2, window: [1, 5, 2], targets: [0])
        }
        assertError(.shapeMismatch, mentioning: "sliding_window_shapes") { try image.occlusion(x, rows: 2, window: [2, 2], targets: [0]) }
        assertError(.invalidArgument, mentioning: "strides[2]") {
            try image.occlusion(x, rows: 2, window: [1, 2, 2], strides: [1, 1, 3], targets: [0])
        }
        assertError(.shapeMismatch, mentioning: "feature_mask") {
            try image.featureAblation(x, rows: 2, mask: [Int](repeating: 0, count: 31), targets: [0])
        }
        assertError(.shapeMismatch, mentioning: "feature_mask") {
            try image.featureAblation(x, rows: 2, mask: [Int](repeating: 0, count: 96), maskRows: 3, targets: [0])
        }
        assertError(.invalidArgument, mentioning: "contiguous") {
            try image.featureAblation(x, rows: 2, mask: (0..<32).map { $0 < 16 ? 0 : 2 }, targets: [0])
        }
        assertError(.invalidArgument, mentioning: "feature_mask") {
            try image.featureAblation(x, rows: 2, mask: [-1] + [Int](repeating: 0, count: 31), targets: [0])
        }
        assertError(.invalidArgument, mentioning: "n_samples") { try image.shapleyValueSampling(x, rows: 2, targets: [0], samples: 0) }
        assertError(.invalidArgument, mentioning: "n_samples") { try image.kernelShap(x, rows: 2, targets: [0], samples: 0) }
        assertError(.invalidArgument, mentioning: "n_samples") { try image.lime(x, rows: 2, targets: [0], samples: 0) }
        assertError(.invalidArgument, mentioning: "similarity") { try image.lime(x, rows: 2, targets: [0], kernelWidth: .nan) }
        assertError(.invalidArgument, mentioning: "permutations[0]") {
            try image.shapleyValueSampling(x, rows: 2, mask: (0..<32).map { $0 / 16 }, targets: [0], permutations: [1, 1])
        }
        assertError(.invalidArgument, mentioning: "coalitions") {
            try image.kernelShap(x, rows: 2, mask: (0..<32).map { $0 / 16 }, targets: [0], coalitions: [0, 2])
        }
        assertError(.invalidArgument, mentioning: "at least 2") { try image.featurePermutation(Array(x[0..<32]), rows: 1, targets: [0]) }
        // Coalitions that cannot fit: 2^27 entries per example at most (KernelSHAP and LIME).
        let wide = net([1 << 12], [g.dense(1, 1 << 12)])
        let wx = g.normals(1 << 12)
        assertError(.outOfMemory, mentioning: "feature_mask") { try wide.lime(wx, rows: 1, targets: [0], samples: 1 << 16) }
        assertError(.outOfMemory, mentioning: "feature_mask") { try wide.kernelShap(wx, rows: 1, targets: [0], samples: 1 << 16) }
        var bad = x
        bad[7] = .nan
        assertError(.nonFinite, mentioning: "inputs") { try image.featureAblation(bad, rows: 2, targets: [0]) }
        assertError(.nonFinite, mentioning: "baselines") {
            try image.occlusion(x, rows: 2, window: [1, 2, 2], baselines: [Float](repeating: .infinity, count: 32), targets: [0])
        }
        assertError(.outOfRange, mentioning: "target") { try image.featureAblation(x, rows: 2, targets: [3]) }
    }
}
