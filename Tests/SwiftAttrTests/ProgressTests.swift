import XCTest
@testable import SwiftAttr

/// ``CallProgress``: a perturbation call long enough for several pieces of work reports increasing counts
/// up to its total, gives the numbers of a direct evaluation (so every piece lands where it belongs) with or
/// without an observer, and an error the observer throws stops it and reaches the caller.
final class ProgressTests: XCTestCase {
    struct Stop: Error {}

    /// 64 → 256 → tanh → 4 on 512 examples: feature ablation evaluates 512 · 65 inputs of about 17,700
    /// multiply–adds each, several pieces of 2²⁷.
    func setUpCall() -> (Network, [Float], rows: Int) {
        var g = Gen(1500)
        let n = net([64], [g.dense(256, 64), .tanh, g.dense(4, 256)])
        return (n, g.normals(512 * 64), 512)
    }

    func testPiecesReportIncreasingCountsAndGiveTheDirectNumbers() throws {
        let (n, x, rows) = setUpCall()
        var reports = [(Int, Int)]()
        let observed = try CallProgress.observing({ reports.append(($0, $1)) }) {
            try n.featureAblation(x, rows: rows, targets: [2])
        }
        XCTAssertGreaterThanOrEqual(reports.count, 3)
        XCTAssertEqual(reports.last?.0, rows * 65)
        XCTAssertTrue(reports.allSatisfy { $0.1 == rows * 65 })
        XCTAssertTrue(zip(reports, reports.dropFirst()).allSatisfy { $0.0 < $1.0 })
        // The pieces do not depend on the observer: the same computation, bit for bit.
        XCTAssertEqual(try n.featureAblation(x, rows: rows, targets: [2]), observed)
        // φ_ij = f_2(x_i) − f_2(x_i with element j zeroed), evaluated directly for a few examples. Both sides are
        // float32 forward passes of other GEMM shapes: each output differs by a few roundings of the 256-term
        // dot products (~1e-6 of the output scale), so 1e-4 of it separates them from any misplaced piece (O(1)).
        for i in [0, 137, 511] {
            let xi = Array(x[(i * 64)..<((i + 1) * 64)])
            var batch = xi
            for j in 0..<64 { var z = xi; z[j] = 0; batch += z }
            let y = n.forward(batch, rows: 65)
            let scale = max(1, y.map { abs($0) }.max()!)
            for j in 0..<64 {
                XCTAssertEqual(observed[i * 64 + j], y[2] - y[(j + 1) * 4 + 2], accuracy: 1e-4 * scale, "example \(i), feature \(j)")
            }
        }
    }

    func testAThrowingObserverStopsTheCall() throws {
        let (n, x, rows) = setUpCall()
        var reports = 0
        XCTAssertThrowsError(try CallProgress.observing({ _, _ in reports += 1; throw Stop() }) {
            try n.featureAblation(x, rows: rows, targets: [1])
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(reports, 1)
        // The observer is gone after the call: a long call afterwards reports to nobody, and runs.
        XCTAssertEqual(try n.featureAblation(x, rows: rows, targets: [1]).count, rows * 64)
        XCTAssertEqual(reports, 1)
    }
}
