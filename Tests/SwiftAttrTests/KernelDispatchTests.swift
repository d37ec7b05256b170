import CKernels
import Foundation
import XCTest
@testable import SwiftAttr

/// CKernels (Sources/CKernels): the Winograd transforms, im2col/col2im, 2×2 max-pooling, seeded normals and
/// the optimisers' steps, compiled per instruction set and chosen at run time.
///
/// Every variant runs the same float operations in the same order (FMA contraction is off in kernels.c),
/// so each must return exactly the bits of the baseline ("default") variant: the same computation
/// repeated, hence bit-for-bit assertions. The stride-2 im2col copies values, so it equals its definition
/// exactly; its col2im adds each input's terms in patch order starting from zero, as the definition here
/// does in Float, so it too must match bit for bit.
final class KernelDispatchTests: XCTestCase {
    /// The variants this CPU runs, baseline first.
    static var variants: [String] { ["default", "avx2", "avx512f"].filter { swiftattr_kernels_supported($0) == 1 } }

    /// Runs `body` once per variant and returns its results (the variant in use is restored afterwards).
    func perVariant<T>(_ body: () -> T) -> [(String, T)] {
        let original = String(cString: swiftattr_kernels_isa())
        defer { _ = swiftattr_kernels_select(original) }
        return Self.variants.map { isa in
            XCTAssertEqual(swiftattr_kernels_select(isa).map { String(cString: $0) }, isa)
            return (isa, body())
        }
    }

    func assertSameBits(_ results: [(String, [Float])], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let (_, base) = results.first else { return XCTFail("no variant", file: file, line: line) }
        for (isa, r) in results.dropFirst() {
            XCTAssertEqual(r.count, base.count, "\(what): \(isa) count", file: file, line: line)
            if let i = r.indices.first(where: { i in i < base.count && r[i].bitPattern != base[i].bitPattern }) {
                XCTFail("\(what): \(isa) entry \(i) is \(r[i]), default gives \(base[i])", file: file, line: line)
            }
        }
    }

    func testSelectionAndBuildInfo() {
        XCTAssertEqual(swiftattr_kernels_supported("default"), 1)
        XCTAssertEqual(swiftattr_kernels_supported("sse9"), 0)
        let original = String(cString: swiftattr_kernels_isa())
        XCTAssertTrue(Self.variants.contains(original), original)
        XCTAssertNil(swiftattr_kernels_select("sse9"), "an unknown name selects nothing")
        XCTAssertEqual(String(cString: swiftattr_kernels_isa()), original)
        // A request wider than the CPU runs is capped to the widest it runs.
        XCTAssertEqual(swiftattr_kernels_select("avx512f").map { String(cString: $0) }, Self.variants.last)
        XCTAssertEqual(swiftattr_kernels_select("default").map { String(cString: $0) }, "default")
        XCTAssertEqual(BuildInfo.kernels, "default")
        XCTAssertTrue(BuildInfo.json.contains("\"kernels\": \"default\""), BuildInfo.json)
        _ = swiftattr_kernels_select(original)
        XCTAssertEqual(BuildInfo.kernels, original)
        #if arch(x86_64)
        if BuildInfo.cpuHasAVX2 { XCTAssertTrue(Self.variants.contains("avx2")) }
        #else
        XCTAssertEqual(Self.variants, ["default"])
        #endif
    }

    /// Winograd forward and transposed passes on planes whose tile rows hold 1 to 17 tiles (the row loops
    /// run 16, 8 or 4 lanes wide by the row's length), every padding up to 2, odd and even sizes.
    func testWinogradVariantsGiveTheSameBits() {
        var gen = Gen(41)
        for (H, W) in [(3, 3), (4, 9), (8, 8), (9, 16), (16, 18), (17, 33), (32, 32), (5, 26)] {
            for p in 0...2 where H + 2 * p - 2 >= 1 && W + 2 * p - 2 >= 1 {
                let C = 3, K = 2, rows = 2
                let c = try! Layer.Convolution(weight: gen.normals(K * C * 9), bias: gen.normals(K), outChannels: K, inChannels: C,
                                               kernel: [3, 3], stride: [1, 1], padding: [p, p], dilation: [1, 1])
                let g = WindowGeometry(convolution: c, input: [C, H, W])
                let forward = Winograd.Filters(weight: c.weight, outChannels: K, inChannels: C, transposed: false)
                let transposed = Winograd.Filters(weight: c.weight, outChannels: K, inChannels: C, transposed: true)
                let x = gen.normals(rows * C * H * W), dy = gen.normals(rows * K * g.outputPlane)
                let what = "\(H)×\(W), padding \(p)"
                assertSameBits(perVariant { Winograd.forward(forward, g, x, bias: c.bias, rows: rows) }, "\(what): forward")
                assertSameBits(perVariant { Winograd.transposed(transposed, g, dy, rows: rows) }, "\(what): transposed")
            }
        }
    }

    /// Stride-2 geometries (the CKernels even/odd column path), dense ones (CKernels' dense-window path), plus
    /// padded and general ones.
    static let geometries: [([Int], [Int], [Int], [Int], [Int])] = [
        ([2, 32, 32], [3, 3], [2, 2], [1, 1], [1, 1]),   // the ResNet's strided 3×3
        ([3, 16, 16], [1, 1], [2, 2], [0, 0], [1, 1]),   // its strided 1×1 downsample
        ([2, 7, 7], [3, 3], [2, 2], [1, 1], [1, 1]),     // odd width
        ([2, 6, 9], [3, 3], [1, 2], [2, 0], [1, 1]),     // column stride 2 only, odd width
        ([1, 9, 8], [3, 2], [2, 2], [2, 2], [2, 1]),     // dilated, padding wider than half the kernel
        ([2, 5, 4], [2, 3], [2, 2], [0, 2], [1, 2]),     // a tap column entirely in the padding
        ([2, 1, 11], [1, 3], [1, 2], [0, 1], [1, 1]),    // one row
        ([2, 13], [3], [2], [1], [1]),                   // 1-D, stride 2
        ([2, 28, 28], [5, 5], [1, 1], [0, 0], [1, 1]),   // the benchmark CNN's dense 5×5
        ([2, 12, 12], [5, 5], [1, 1], [0, 0], [1, 1]),
        ([3, 10, 11], [2, 4], [1, 1], [0, 0], [1, 1]),   // dense, non-square kernel, rows of 8
        ([2, 20], [4], [1], [0], [1]),                   // 1-D dense: rows of 17
        ([2, 9, 10], [3, 3], [3, 3], [1, 1], [1, 1]),    // stride 3 (scalar rows)
        ([2, 5, 7], [3, 3], [1, 1], [1, 1], [1, 1]),     // padded stride 1 ("same" width)
        ([2, 7, 5], [3, 3], [1, 1], [1, 2], [2, 1]),     // padded stride 1, not same width
    ]

    func testIm2colAndCol2imEqualTheirDefinitionsOnEveryVariant() {
        for (index, t) in Self.geometries.enumerated() {
            let g = WindowGeometry(shape: t.0, kernel: t.1, stride: t.2, padding: t.3, dilation: t.4)
            let rows = 2, P = g.outputPlane, columns = rows * P
            var gen = Gen(700 + UInt64(index))
            let x = gen.normals(rows * g.inputSize), c = gen.normals(g.patchSize * columns)
            let (expected, adjoint) = im2colDefinition(g, x, cotangent: c, rows: rows, adjointIn: Float.self)
            let what = "geometry \(t)"
            let cols = perVariant {
                uninitializedFloats(g.patchSize * columns) { out in
                    out.update(repeating: .nan, count: g.patchSize * columns)
                    x.withUnsafeBufferPointer { g.im2col($0.baseAddress!, rows: rows, into: out) }
                }
            }
            for (isa, r) in cols { XCTAssertEqual(r, expected, "\(what): im2col, \(isa)") }
            let dx = perVariant { () -> [Float] in
                var dx = [Float](repeating: .nan, count: rows * g.inputSize), scratch = c
                dx.withUnsafeMutableBufferPointer { d in
                    scratch.withUnsafeMutableBufferPointer { g.col2im($0.baseAddress!, rows: rows, into: d.baseAddress!) }
                }
                return dx
            }
            assertSameBits(dx, "\(what): col2im")
            // The stride-2 and dense paths add in patch order from zero, as the definition: the same bits.
            // (The same-width stride-1 path sums in the same order too, after zeroing its scratch.)
            for (isa, r) in dx { XCTAssertEqual(r, adjoint, "\(what): col2im, \(isa)") }
        }
    }

    /// 2×2 max-pooling, strides 2 and 1, with ties (the first position in row-major order wins), a NaN in a
    /// window's first position (kept: nothing compares greater) and in a later one (ignored), on rows of 1 to
    /// 17 outputs.
    func testMaxPoolEqualsItsDefinitionOnEveryVariant() {
        var gen = Gen(55)
        for (H, W) in [(2, 2), (4, 9), (6, 16), (3, 34), (8, 24), (5, 33)] {
            for s in [1, 2] {
                let g = WindowGeometry(shape: [1, H, W], kernel: [2, 2], stride: [s, s], padding: [0, 0], dilation: [1, 1])
                var x = gen.normals(H * W).map { ($0 * 2).rounded() / 2 }   // many ties
                x[0] = .nan
                x[W / 2] = .nan
                var expected = [Float](), expectedAt = [Int32]()
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        let corner = oh * s * W + ow * s
                        var best = x[corner], at = corner
                        for q in [corner + 1, corner + W, corner + W + 1] where x[q] > best { best = x[q]; at = q }
                        expected.append(best)
                        expectedAt.append(Int32(at) + 7)
                    }
                }
                let what = "\(H)×\(W), stride \(s)"
                let results = perVariant { () -> ([Float], [Float], [Int32]) in
                    var y = [Float](repeating: 0, count: g.outputPlane), y2 = y, at = [Int32](repeating: -1, count: g.outputPlane)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { g.maxPool(xp.baseAddress!, $0.baseAddress!, argmax: nil, offset: 0) }
                        y2.withUnsafeMutableBufferPointer { yp in
                            at.withUnsafeMutableBufferPointer { g.maxPool(xp.baseAddress!, yp.baseAddress!, argmax: $0.baseAddress!, offset: 7) }
                        }
                    }
                    return (y, y2, at)
                }
                for (isa, (y, y2, at)) in results {
                    XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), "\(what): values, \(isa)")
                    XCTAssertEqual(y2.map(\.bitPattern), expected.map(\.bitPattern), "\(what): values with argmax, \(isa)")
                    XCTAssertEqual(at, expectedAt, "\(what): argmax, \(isa)")
                }
            }
        }
    }
    /// Seeded normals: every variant gives the bits of the baseline (integer Philox, then IEEE operations in
    /// a fixed order), rows drawn whole equal the scalar pairs rounded to float, and the pairs are the
    /// Box–Muller transform of the block's uniforms to a few ulps of double: compared with libm's log, cos
    /// and sin in double, |Δz| ≤ 3e-14·(1 + |z|). The reference itself is off by up to r·|δθ|: θ = 2π·u₁
    /// rounded (|δθ| ≤ 2 ulps of 2π, 1.8e-15) times r ≤ 8.6 (the largest radius 53-bit uniforms give) is
    /// 1.5e-14; libm's few-ulp errors and ours add well under 1e-15.
    func testNormalsAreTheSameOnEveryVariantAndMatchBoxMuller() {
        for count in [0, 1, 2, 7, 8, 9, 255, 512, 513, 1000] {
            let draws = perVariant { () -> [Float] in
                var out = [Float](repeating: .nan, count: count + 1)
                out.withUnsafeMutableBufferPointer { swiftattr_normals(0x0123_4567_89AB_CDEF, 77, 5, 3, count, $0.baseAddress!) }
                XCTAssertTrue(out[count].isNaN, "count \(count): nothing written past the end")
                return Array(out[..<count])
            }
            assertSameBits(draws, "normals, count \(count)")
            for (j, z) in draws[0].1.enumerated() {
                let pair = CounterRandom.normals(seed: 0x0123_4567_89AB_CDEF, example: 77, sample: 5, block: UInt32(3 + j / 2))
                XCTAssertEqual(z.bitPattern, Float(j % 2 == 0 ? pair.0 : pair.1).bitPattern, "count \(count), entry \(j)")
            }
        }
        var worst = 0.0
        for e in 0..<200 {
            for b in 0..<100 {
                let (u0, u1) = CounterRandom.uniforms(seed: 3, example: UInt64(e), sample: 1, block: UInt32(b))
                let r = (-2 * Foundation.log(1 - u0)).squareRoot(), theta = 2 * Double.pi * u1
                let (z0, z1) = CounterRandom.normals(seed: 3, example: UInt64(e), sample: 1, block: UInt32(b))
                worst = max(worst, abs(z0 - r * Foundation.cos(theta)) / (1 + abs(z0)), abs(z1 - r * Foundation.sin(theta)) / (1 + abs(z1)))
            }
        }
        XCTAssertLessThan(worst, 3e-14)
    }
    /// The optimiser steps: every variant gives the bits of the scalar rule in Swift (the same IEEE operations
    /// in the same order: Swift does not contract into FMA either), on lengths around the vector widths, with
    /// weight decay and momentum; and they flag a non-finite gradient (bit 0) and a non-finite updated
    /// parameter (bit 1).
    func testOptimizerStepsGiveTheScalarRuleOnEveryVariant() {
        var gen = Gen(77)
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8, stepSize: Float = 1.7e-3, rootC2: Float = 0.05, lambda: Float = 0.01
        for n in [1, 7, 8, 9, 31, 64, 100] {
            let p0 = gen.normals(n), g = gen.normals(n), m0 = gen.normals(n, scale: 0.1), v0 = gen.normals(n, scale: 0.1).map { $0 * $0 }
            var p = p0, m = m0, v = v0
            for i in 0..<n {
                let d = g[i] + lambda * p[i]
                m[i] = b1 * m[i] + (1 - b1) * d
                v[i] = b2 * v[i] + (1 - b2) * d * d
                p[i] = p[i] - stepSize * m[i] / (v[i].squareRoot() / rootC2 + eps)
            }
            let adam = perVariant { () -> [Float] in
                var q = p0, a = m0, b = v0
                XCTAssertEqual(swiftattr_adam(&q, g, &a, &b, n, b1, b2, eps, stepSize, rootC2, lambda), 0)
                return q + a + b
            }
            XCTAssertEqual(adam[0].1.map(\.bitPattern), (p + m + v).map(\.bitPattern), "Adam, n = \(n)")
            assertSameBits(adam, "Adam, n = \(n)")
            for mu: Float in [0, 0.9] {
                var q = p0, u = m0
                for i in 0..<n {
                    let d = g[i] + lambda * q[i]
                    u[i] = mu == 0 ? d : mu * u[i] + d
                    q[i] = q[i] - 0.01 * u[i]
                }
                let sgd = perVariant { () -> [Float] in
                    var r = p0, w = m0
                    XCTAssertEqual(swiftattr_sgd(&r, g, &w, n, 0.01, mu, lambda), 0)
                    return r + w
                }
                XCTAssertEqual(sgd[0].1.map(\.bitPattern), (q + u).map(\.bitPattern), "SGD μ = \(mu), n = \(n)")
                assertSameBits(sgd, "SGD μ = \(mu), n = \(n)")
            }
        }
        let original = String(cString: swiftattr_kernels_isa())
        defer { _ = swiftattr_kernels_select(original) }
        for isa in Self.variants {
            _ = swiftattr_kernels_select(isa)
            var p: [Float] = Array(repeating: 1, count: 20), m = [Float](repeating: 0, count: 20), v = m
            var g = [Float](repeating: 0.5, count: 20)
            g[13] = .nan
            XCTAssertEqual(swiftattr_adam(&p, g, &m, &v, 20, b1, b2, eps, stepSize, rootC2, 0) & 1, 1, "\(isa): NaN gradient")
            g[13] = 0.5
            p[17] = .greatestFiniteMagnitude
            XCTAssertEqual(swiftattr_sgd(&p, g, &m, 20, -1e38, 0, 0), 2, "\(isa): an update that overflows")
        }
    }
}
