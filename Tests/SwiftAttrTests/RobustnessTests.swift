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

    // MARK: RATE at the edge of semi-definiteness

    /// RATE from a last layer on n×p inputs with the given W_cov (h×h, one class).
    private func lastLayerRATE(x: [Double], n: Int, p: Int, features: [Double], h: Int, wMean: [Double], wCov: [Double],
                               rank: Int? = nil) throws -> [RATEResult] {
        try x.withUnsafeBufferPointer { xp in
            try features.withUnsafeBufferPointer { hp in
                try wMean.withUnsafeBufferPointer { mp in
                    try wCov.withUnsafeBufferPointer { cp in
                        try RATE.fromOutputs(X: xp, examples: n, variables: p, classes: 1,
                                             posterior: .lastLayer(features: hp, hidden: h, weightMean: mp, weightCovariance: cp, bias: nil),
                                             rank: rank)
                    }
                }
            }
        }
    }

    /// LAPACK's dsyevd rejects lda = 0 (info −6, and its xerbla prints to stderr): an empty problem is
    /// answered without calling it.
    func testEmptyEigenproblemDoesNotCallLAPACK() throws {
        var empty: [Double] = [0]
        let values = try empty.withUnsafeMutableBufferPointer { try LAPACK.syevd($0.baseAddress!, n: 0, what: "empty") }
        XCTAssertEqual(values, [])
    }

    /// W_cov = 0 is positive semi-definite: no variable has posterior variance, so each carries no
    /// information (KLD 0) and RATE is uniform with rank 0 — not a LAPACK failure (it was info −6).
    func testZeroWeightCovarianceGivesUniformRATE() throws {
        var rng = RandomSource(seed: 71)
        let n = 12, p = 3, h = 2
        let x = (0..<(n * p)).map { _ in rng.normal() }
        let features = (0..<(n * h)).map { _ in rng.normal() }
        let zero = [Double](repeating: 0, count: h * h)
        for rank in [nil, 2] as [Int?] {
            let r = try lastLayerRATE(x: x, n: n, p: p, features: features, h: h, wMean: [1, -1], wCov: zero, rank: rank)[0]
            XCTAssertEqual(r.rate, [Double](repeating: 1.0 / 3, count: 3))
            XCTAssertEqual(r.kld, [0, 0, 0])
            XCTAssertEqual(r.rank, 0)
            XCTAssertEqual(r.delta, 0)
            XCTAssertEqual(r.ess, 100)
        }
        // A semi-definite W_cov of rank 1 is valid and gives a finite RATE that sums to 1.
        let r = try lastLayerRATE(x: x, n: n, p: p, features: features, h: h, wMean: [1, -1], wCov: [1, 0, 0, 0])
        XCTAssertEqual(r[0].rate.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssert(r[0].rate.allSatisfy(\.isFinite))
        XCTAssertEqual(r[0].rank, 1)
    }

    /// A variable with zero posterior variance (a semi-definite Σ with a zero row) carries no information:
    /// its KLD and RATE are 0 and the others are ranked as if it were absent.
    func testVariableWithoutVarianceGetsZeroRATE() throws {
        let full = try RATE.fromEffectSizePosterior(mean: [1, 0.5], covariance: [1, 0.5, 0.5, 1])
        let padded = try RATE.fromEffectSizePosterior(mean: [1, 3, 0.5], covariance: [1, 0, 0.5, 0, 0, 0, 0.5, 0, 1])
        XCTAssertEqual(padded.rate[1], 0)
        XCTAssertEqual(padded.rate[0], full.rate[0], accuracy: 1e-12)
        XCTAssertEqual(padded.rate[2], full.rate[1], accuracy: 1e-12)
    }

    /// Covariances with an eigenvalue below −1e-8·max|eigenvalue| are not covariances: rejected, naming the
    /// argument (they used to give RATE [0.5, 0.5]).
    func testIndefiniteCovarianceIsRejected() throws {
        for cov: [Double] in [[-1, 0, 0, -1], [1, 0, 0, -1], [1, 2, 2, 1], [1, 0.5, 0.5, 0]] {
            assertError(.invalidArgument, mentioning: "esa_cov is not positive semi-definite") {
                try RATE.fromEffectSizePosterior(mean: [1, 2], covariance: cov)
            }
        }
        var rng = RandomSource(seed: 72)
        let n = 12, p = 3, h = 2
        let x = (0..<(n * p)).map { _ in rng.normal() }
        let features = (0..<(n * h)).map { _ in rng.normal() }
        assertError(.invalidArgument, mentioning: "W_cov is not positive semi-definite") {
            try self.lastLayerRATE(x: x, n: n, p: p, features: features, h: h, wMean: [1, -1], wCov: [-1, 0, 0, -1])
        }
        // V_F indefinite (dense and low-rank paths).
        let m = (0..<n).map { _ in rng.normal() }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = -1 }
        for rank in [nil, 2] as [Int?] {
            assertError(.invalidArgument, mentioning: "V_F is not positive semi-definite") {
                try x.withUnsafeBufferPointer { xp in
                    try m.withUnsafeBufferPointer { mp in
                        try v.withUnsafeBufferPointer { vp in
                            try RATE.fromOutputs(X: xp, examples: n, variables: p, classes: 1, posterior: .gaussian(mean: mp, covariance: vp), rank: rank)
                        }
                    }
                }
            }
        }
    }

    // MARK: Results are finite or an error

    /// X ~ 1e200 overflows the effect-size mean (cov(x, f) ~ 1e400): a numerical error, never NaN/Inf with
    /// success, whatever V_F. Identical draws of ~1e300 have Σ = 0: uniform RATE, rank 0, nothing
    /// non-finite (their running mean cannot overflow).
    func testOverflowingRATEIsANumericalError() throws {
        var rng = RandomSource(seed: 73)
        let n = 6, p = 3
        let x = (0..<(n * p)).map { _ in 1e200 * rng.normal() }
        let m = (0..<n).map { _ in 1e200 * rng.normal() }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for vf in [v, [Double](repeating: 0, count: n * n)] {
            for rank in [nil, 2] as [Int?] {
                assertError(.numerical, mentioning: "overflowed") {
                    try x.withUnsafeBufferPointer { xp in
                        try m.withUnsafeBufferPointer { mp in
                            try vf.withUnsafeBufferPointer { vp in
                                try RATE.fromOutputs(X: xp, examples: n, variables: p, classes: 1,
                                                     posterior: .gaussian(mean: mp, covariance: vp), rank: rank)
                            }
                        }
                    }
                }
            }
        }
        let xs = (0..<(n * p)).map { _ in rng.normal() }
        for value in [1e300, 1.7e308] {
            let draws = [Double](repeating: value, count: 4 * n)
            for rank in [nil, 2] as [Int?] {
                do {
                    let r = try xs.withUnsafeBufferPointer { xp in
                        try draws.withUnsafeBufferPointer { dp in
                            try RATE.fromOutputs(X: xp, examples: n, variables: p, classes: 1, posterior: .draws(dp, count: 4), rank: rank)
                        }
                    }[0]
                    XCTAssert((r.rate + r.kld + r.effectSizeMean + [r.delta, r.ess]).allSatisfy(\.isFinite), "draws \(value): \(r)")
                    XCTAssertEqual(r.rank, 0)
                    XCTAssertEqual(r.rate, [Double](repeating: 1.0 / 3, count: 3))
                } catch let e as SwiftAttrError {
                    XCTAssertEqual(e.code, .numerical, e.message)
                    XCTAssert(e.message.contains("overflowed"), e.message)
                }
            }
        }
    }

    // MARK: Allocation, model files, messages

    /// An allocation no machine grants is `.outOfMemory` naming the argument, not a trap.
    func testFailedAllocationIsAnError() {
        assertError(.outOfMemory, mentioning: "weight: cannot allocate") { try Allocation.zeros(1 << 60, of: Float.self, "weight") }
        assertError(.outOfMemory, mentioning: "x") { try Allocation.reserve(Int.max / 2, of: Double.self, "x") }
    }

    /// The file and byte parsers check the magic before anything else and a tensor's size against the
    /// rest of the file before allocating it.
    func testModelBytesAreCheckedBeforeAllocating() throws {
        let n = net([4], [.dense(try .init(weight: [Float](repeating: 0.5, count: 8), bias: nil, outFeatures: 2, inFeatures: 4))])
        var bytes = n.serialized()
        XCTAssertEqual(try Network(serialized: bytes).serialized(), bytes)
        var junk = bytes
        junk[0] = UInt8(ascii: "X")
        assertError(.format, mentioning: "bad magic") { try Network(serialized: junk) }
        assertError(.format, mentioning: "shorter than the magic") { try Network(serialized: Array(bytes.prefix(5))) }
        // Claim a 2^40-float weight: rejected as larger than the file, without trying to allocate it.
        let countOffset = 8 + 4 + 8 + 4 + 4 + 4 + 16 + 4 + 4
        XCTAssertEqual(bytes[countOffset], 8)
        bytes.replaceSubrange(countOffset..<(countOffset + 8), with: withUnsafeBytes(of: (UInt64(1) << 40).littleEndian, Array.init))
        assertError(.format, mentioning: "truncated: tensor 0 of layer 0 declares 1099511627776 floats") { try Network(serialized: bytes) }
        assertError(.format, mentioning: "truncated") { try Network(serialized: Array(n.serialized().dropLast(3))) }
    }

    /// Saving replaces the file atomically; a failed save (a missing directory) leaves nothing behind and
    /// names the path; a FIFO is refused at once when loading.
    func testSaveIsAtomicAndLoadRefusesNonRegularFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sa-robust-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.sam").path
        let a = net([3], [.dense(try .init(weight: [1, 2, 3], bias: [4], outFeatures: 1, inFeatures: 3))])
        let b = net([2], [.relu])
        try a.save(to: path)
        try b.save(to: path)
        XCTAssertEqual(try Network.load(from: path).serialized(), b.serialized())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.sam"])
        assertError(.io, mentioning: dir.path + "/nope/m.sam") { try a.save(to: dir.path + "/nope/m.sam") }
        assertError(.io, mentioning: "/dev/full") { try a.save(to: "/dev/full") }
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertError(.io, mentioning: "not a regular file") { try Network.load(from: fifo) }
    }

    /// Window parameters are named as the C and Python arguments are (stride_w, not "conv stride").
    func testWindowMessagesNameTheArgument() {
        assertError(.invalidArgument, mentioning: "conv stride must be positive (stride_w = -3)") {
            try Layer.Convolution(weight: [Float](repeating: 0, count: 9), bias: nil, outChannels: 1, inChannels: 1, kernel: [3, 3],
                                  stride: [1, -3], padding: [0, 0], dilation: [1, 1])
        }
        assertError(.invalidArgument, mentioning: "conv kernel_size must be at most 65536 (kernel_size = 70000)") {
            try Layer.Convolution(weight: [], bias: nil, outChannels: 1, inChannels: 1, kernel: [70000], stride: [1], padding: [0], dilation: [1])
        }
        assertError(.invalidArgument, mentioning: "pool padding must be non-negative (padding_h = -1)") {
            try Layer.Pooling(kernel: [2, 2], stride: [2, 2], padding: [-1, 0])
        }
        assertError(.invalidArgument, mentioning: "more than the 137438953408") { try Check.count([1 << 36, 4], "x") }
    }
}
