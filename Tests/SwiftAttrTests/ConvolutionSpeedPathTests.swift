import XCTest
@testable import SwiftAttr

/// The convolution and pooling fast paths (per-example GEMMs writing NCHW, padded stride-1 im2col/col2im,
/// the unrolled 2×2 max-pool) against plain-loop definitions, on the geometries where a fast path can go
/// wrong: padding at every border, padding wider than the kernel, 1-row outputs, odd sizes, planes on both
/// sides of ``WindowGeometry/perExampleGEMMPlane``.
final class ConvolutionSpeedPathTests: XCTestCase {
    /// (shape [C, H, W] or [C, L], kernel, stride, padding, dilation)
    static let geometries: [([Int], [Int], [Int], [Int], [Int])] = [
        ([2, 5, 7], [3, 3], [1, 1], [1, 1], [1, 1]),   // padded stride 1, odd sizes
        ([1, 1, 9], [3, 3], [1, 1], [1, 1], [1, 1]),   // 1-row input and output
        ([2, 4, 3], [3, 3], [1, 1], [2, 2], [1, 1]),   // output larger than the input
        ([3, 3, 4], [2, 2], [1, 1], [1, 1], [1, 1]),   // even kernel
        ([1, 2, 2], [3, 3], [1, 1], [3, 3], [1, 1]),   // whole taps in the padding
        ([2, 6, 6], [5, 5], [1, 1], [2, 2], [1, 1]),
        ([2, 7, 5], [3, 3], [1, 1], [1, 2], [2, 1]),   // dilated, padded, stride 1
        ([2, 5, 6], [3, 3], [1, 1], [2, 2], [2, 2]),   // dilated "same": output as wide as the input
        ([2, 3, 1], [3, 3], [1, 1], [1, 1], [1, 1]),   // 1-column "same": the first patch entry reads no input
        ([2, 3, 8], [3, 1], [1, 1], [0, 1], [1, 1]),   // padding in one direction only
        ([2, 7, 7], [3, 3], [2, 2], [1, 1], [1, 1]),   // strided (general path)
        ([2, 6, 5], [1, 1], [1, 1], [0, 0], [1, 1]),   // dense 1×1
        ([2, 6, 5], [3, 3], [1, 1], [0, 0], [1, 1]),   // dense 3×3
        ([2, 9, 9], [3, 3], [1, 1], [1, 1], [1, 1]),   // plane 81: per-example GEMMs
        ([2, 9], [3], [1], [1], [1]),                  // 1-D
        ([1, 70], [3], [1], [2], [1]),                 // 1-D, plane ≥ perExampleGEMMPlane
        ([4, 7, 9], [3, 5], [1, 1], [0, 0], [1, 1]),   // dense, C·kw = 20: by kernel rows (plane 25)
        ([8, 6, 10], [2, 2], [1, 1], [0, 0], [1, 1]),  // by kernel rows, C·kw = 16 exactly, even kernel
        ([4, 9, 9], [5, 5], [1, 1], [0, 0], [1, 1]),   // by kernel rows, 5×5 as in the benchmark CNN
    ]

    static func geometry(_ t: ([Int], [Int], [Int], [Int], [Int])) -> WindowGeometry {
        WindowGeometry(shape: t.0, kernel: t.1, stride: t.2, padding: t.3, dilation: t.4)
    }

    /// im2col copies values, so it must equal the definition exactly; col2im adds at most kh·kw float32
    /// terms per input (relative error ≤ kh·kw·2⁻²⁴ of their absolute sum, < 1e-5 of the scale here).
    func testIm2colAndCol2imEqualTheirDefinitions() {
        for (index, t) in Self.geometries.enumerated() {
            let g = Self.geometry(t), rows = 3, P = g.outputPlane, columns = rows * P
            var gen = Gen(300 + UInt64(index))
            let x = gen.normals(rows * g.inputSize)
            let c = gen.normals(g.patchSize * columns)
            let (expected, adjoint) = im2colDefinition(g, x, cotangent: c, rows: rows, adjointIn: Double.self)
            let what = "geometry \(t)"
            let cols = uninitializedFloats(g.patchSize * columns) { out in
                x.withUnsafeBufferPointer { g.im2col($0.baseAddress!, rows: rows, into: out) }
            }
            XCTAssertEqual(cols, expected, "\(what): im2col")
            // col2im must overwrite whatever the buffer held (and may scribble on its scratch copy of c).
            var dx = [Float](repeating: .nan, count: rows * g.inputSize), scratch = c
            dx.withUnsafeMutableBufferPointer { d in
                scratch.withUnsafeMutableBufferPointer { g.col2im($0.baseAddress!, rows: rows, into: d.baseAddress!) }
            }
            assertClose(dx, adjoint, rel: 1e-5, floor: 1, "\(what): col2im")
        }
    }

    /// Forward against the float64 reference and the pullback against its central differences, on both
    /// sides of the per-example GEMM threshold and by kernel rows (``WindowGeometry/kernelRows``), for
    /// several and for single rows (the tolerances of
    /// LayerPullbackTests: float32 sums of ≤ 50 terms against float64).
    func testConvolutionNetworksOnBothGEMMPaths() throws {
        for (index, t) in Self.geometries.enumerated() {
            let g = Self.geometry(t)
            var gen = Gen(400 + UInt64(index))
            let layer = gen.conv(3, t.0[0], kernel: t.1, stride: t.2, padding: t.3, dilation: t.4, bias: true)
            let n = net(t.0, [layer])
            for rows in [1, 3] {
                let what = "geometry \(t) (plane \(g.outputPlane)), rows \(rows)"
                let x = gen.normals(rows * g.inputSize)
                var ref = Reference(n)
                assertClose(n.forward(x, rows: rows), ref.forwardBatch(x, rows: rows), rel: 1e-5, floor: 1, "\(what) forward")
                let cotangent = gen.normals(rows * n.outputSize)
                let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: cotangent)
                let grad = try n.gradient(x, rows: rows, cotangent: cotangent)
                assertClose(grad, fd, rel: 1e-4, "\(what) pullback")
                let one = try n.gradient(x, rows: rows, cotangent: cotangent, internalBatchSize: 1)
                assertClose(one, grad, rel: 1e-6, "\(what) pullback, internalBatchSize 1")
            }
        }
        XCTAssert(Self.geometries.contains { Self.geometry($0).outputPlane >= WindowGeometry.perExampleGEMMPlane })
        XCTAssert(Self.geometries.contains { Self.geometry($0).outputPlane < WindowGeometry.perExampleGEMMPlane })
        XCTAssert(Self.geometries.contains { Self.geometry($0).kernelRows != nil })
        XCTAssert(Self.geometries.contains { Self.geometry($0).isDenseWindow && Self.geometry($0).kernelRows == nil })
    }
}
