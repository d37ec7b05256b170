import XCTest
@testable import SwiftAttr
final class SmokeTests: XCTestCase { func testRNG() { var r = RandomSource(seed: 1); XCTAssert(r.uniform() < 1) } }
