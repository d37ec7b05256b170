import XCTest
@testable import SwiftAttr

/// ``CounterRandom/fill(_:seed:firstExample:rows:count:stream:distribution:)``: the documented counter layout,
/// independence of the thread count and of how rows are split, and uniform draws kept below `hi`.
final class CounterRandomFillTests: XCTestCase {
    override func tearDown() {
        try? Parallel.setThreadCount(Parallel.defaultThreadCount)
        super.tearDown()
    }

    private func draw(_ rows: Int, _ count: Int, first: UInt64 = 0, stream: UInt32 = 7,
                      _ distribution: CounterRandom.Distribution) -> [Float] {
        var out = [Float](repeating: .nan, count: rows * count)
        out.withUnsafeMutableBufferPointer {
            CounterRandom.fill($0, seed: 42, firstExample: first, rows: rows, count: count, stream: stream,
                               distribution: distribution)
        }
        return out
    }

    func testElementJOfRowIIsWordJMod2OfBlockJOver2() {
        let rows = 3, count = 5, first: UInt64 = 10
        let z = draw(rows, count, first: first, .normal)
        let u = draw(rows, count, first: first, .uniform(lo: -2, hi: 6))
        for i in 0..<rows {
            for j in 0..<count {
                let n = CounterRandom.normals(seed: 42, example: first + UInt64(i), sample: 7, block: UInt32(j / 2))
                let v = CounterRandom.uniforms(seed: 42, example: first + UInt64(i), sample: 7, block: UInt32(j / 2))
                XCTAssertEqual(z[i * count + j], Float(j % 2 == 0 ? n.0 : n.1))
                XCTAssertEqual(u[i * count + j], Float(-2 + 8 * (j % 2 == 0 ? v.0 : v.1)))
            }
        }
    }

    func testPiecesAndThreadCountsGiveTheSameBits() throws {
        try Parallel.setThreadCount(1)
        let one = draw(40, 3000, .normal)
        try Parallel.setThreadCount(3)
        XCTAssertEqual(draw(40, 3000, .normal), one)
        let tail = draw(15, 3000, first: 25, .normal)
        XCTAssertEqual(Array(one[(25 * 3000)...]), tail)
    }

    func testUniformDrawsStayBelowHi() {
        let hi: Float = 1e-3
        let u = draw(50, 2000, .uniform(lo: -hi, hi: hi))
        XCTAssertTrue(u.allSatisfy { $0 >= -hi && $0 < hi })
        let lo: Float = 1
        let tight = draw(4, 100, .uniform(lo: lo, hi: lo.nextUp))  // rounding would reach hi half the time
        XCTAssertTrue(tight.allSatisfy { $0 == lo })
    }
}
