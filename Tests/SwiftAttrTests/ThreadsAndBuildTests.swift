import Dispatch
import XCTest
@testable import SwiftAttr

/// The build information, the library's thread setting, and the promise that comes with it: one thread
/// count repeats bit for bit, other counts change only float32 rounding, and no call changes another's
/// BLAS threading.
final class ThreadsAndBuildTests: XCTestCase {
    override func tearDown() {
        try? Parallel.setThreadCount(Parallel.defaultThreadCount)
    }

    func testBuildInfoNamesTheBLASAndItsKernel() throws {
        print("build info: \(BuildInfo.json)")
        XCTAssert(["scipy-openblas32", "system-openblas"].contains(BuildInfo.blas), BuildInfo.blas)
        XCTAssert(BuildInfo.blasVersion.first?.isNumber == true, "blas_version \(BuildInfo.blasVersion)")
        XCTAssertFalse(BuildInfo.blasCore.isEmpty)
        XCTAssertNotEqual(BuildInfo.blasCore, "unknown")
        for key in ["\"version\"", "\"blas\"", "\"blas_version\"", "\"blas_core\"", "\"threads\"", "\"cpu\""] {
            XCTAssert(BuildInfo.json.contains(key), "build info lacks \(key)")
        }
        // A generic kernel is flagged only on a CPU that has AVX2.
        if !BuildInfo.cpuHasAVX2 { XCTAssertFalse(BuildInfo.blasKernelIsGeneric) }
        XCTAssert(BuildInfo.genericCores.contains("prescott"))
        XCTAssertFalse(BuildInfo.genericCores.contains("skylakex"))
    }

    func testThreadCountIsChecked() throws {
        XCTAssertGreaterThanOrEqual(Parallel.threadCount, 1)
        try Parallel.setThreadCount(1)
        XCTAssertEqual(Parallel.threadCount, 1)
        try Parallel.setThreadCount(3)
        XCTAssertEqual(Parallel.threadCount, 3)
        for bad in [0, -1, Parallel.maximumThreads + 1] {
            assertError(.invalidArgument, mentioning: "n_threads") { try Parallel.setThreadCount(bad) }
        }
        XCTAssertEqual(Parallel.threadCount, 3)
    }

    /// Thread counts change the chunking (other GEMM shapes, other per-worker sums), so only float32
    /// rounding may differ: path gradients summed over 32 steps of a 2-layer smooth CNN, each GEMM rounding
    /// at K·u·Σ|w||x| (K ≤ 27, u = 6e-8) and the step sums at 32·u, stay below 1e-5 of max|φ|.
    /// The same count repeats bit for bit.
    func testThreadCountChangesOnlyRounding() throws {
        var g = Gen(7)
        let n = IntegratedGradientsTests.smoothCNN(&g)
        let rows = 9
        let x = g.normals(rows * n.inputSize)
        var results: [Int: [Float]] = [:]
        for threads in [1, 2, 3, 5] {
            try Parallel.setThreadCount(threads)
            let a = try n.integratedGradients(x, rows: rows, targets: [1], steps: 32).attributions
            let b = try n.integratedGradients(x, rows: rows, targets: [1], steps: 32).attributions
            XCTAssertEqual(a, b, "\(threads) threads: not repeatable")
            results[threads] = a
        }
        for threads in [2, 3, 5] { assertClose(results[threads]!, results[1]!, rel: 1e-5, "\(threads) threads vs 1") }
    }

    /// A RATE factorisation runs on BLAS threads; attribution calls on other threads run chunked regions
    /// with single-threaded BLAS. Neither may change the other's BLAS threading: RATE computed while
    /// attributions run equals the serial RATE bit for bit (the same computation repeats).
    func testRATEIsNotChangedByConcurrentAttributions() throws {
        try Parallel.setThreadCount(2)
        let p = 400
        var g = Gen(11)
        let a = g.normals(p * p).map(Double.init)
        var cov = [Double](repeating: 0, count: p * p)
        a.withUnsafeBufferPointer { ap in
            cov.withUnsafeMutableBufferPointer { cp in
                BLAS.dgemm(transB: true, m: p, n: p, k: p, alpha: 1 / Double(p), a: ap.baseAddress!, b: ap.baseAddress!, c: cp.baseAddress!)
            }
        }
        for i in 0..<p { cov[i * p + i] += 0.5 }
        let mean = g.normals(p).map(Double.init)
        let serial = try RATE.fromEffectSizePosterior(mean: mean, covariance: cov)
        let n = IntegratedGradientsTests.smoothCNN(&g)
        let x = g.normals(8 * n.inputSize)
        let rounds = 12
        var results = [[Double]](repeating: [], count: rounds)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2 * rounds) { i in
            if i % 2 == 0 {
                let r = try! RATE.fromEffectSizePosterior(mean: mean, covariance: cov)
                lock.lock(); results[i / 2] = r.rate; lock.unlock()
            } else {
                _ = try! n.integratedGradients(x, rows: 8, targets: [0], steps: 64)
            }
        }
        let differing = results.filter { $0 != serial.rate }.count
        XCTAssertEqual(differing, 0, "\(differing) of \(rounds) concurrent RATE results differ from the serial one")
    }
}
