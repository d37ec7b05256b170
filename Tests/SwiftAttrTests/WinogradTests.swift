import XCTest
@testable import SwiftAttr

/// Winograd F(2×2, 3×3) convolutions (Winograd.swift): the forward pass and the input-gradient
/// (transposed) pass against the im2col path and a float64 definition, on odd and even planes, every
/// padding up to 2, 1, 3 and 16 channels each way, one and several examples; the plan heuristic; and the
/// pullback of networks that run by Winograd against finite differences.
///
/// Tolerances (float32, u = 2⁻²⁴), per output, from the analysis in Winograd.swift:
/// - Winograd: |ŷ − y| ≤ (C + 11)·u·16·Σ_c ‖d_c‖∞·‖g_kc‖₁ + u·|y| (d_c: the 4×4 input tile under the
///   output's 2×2 tile, zero-padded; C: the direction's input channels; the last term: the bias add);
/// - im2col: a GEMM over 9·C products (forward) or K products then col2im's ≤ 9 sums (transposed):
///   |ŷ − y| ≤ (9·C + 9)·u·Σ|w|·|x| over the window, + u·|y|;
/// - so the two paths may differ by the sum of their bounds. Both bounds get a factor 2 of slack for the
///   second-order terms; a wrong index or coefficient gives errors of the size of y itself.
final class WinogradTests: XCTestCase {
    static let u = 1.0 / Double(1 << 24)

    /// A 3×3 stride-1 convolution with random weights (every value nonzero) and a bias.
    func convolution(_ out: Int, _ inp: Int, padding: [Int], seed: UInt64) -> Layer.Convolution {
        var gen = Gen(seed)
        return try! Layer.Convolution(weight: gen.normals(out * inp * 9, scale: 1 / Float(3 * inp).squareRoot()),
                                      bias: gen.normals(out, scale: 0.5), outChannels: out, inChannels: inp,
                                      kernel: [3, 3], stride: [1, 1], padding: padding, dilation: [1, 1])
    }

    /// The float64 stride-1 3×3 cross-correlation of `x` (rows × C × H × W, padding ph, pw) with kernel
    /// `g(k, c, i, j)` plus `bias`, with the Winograd and im2col error bounds of each output.
    func reference(
        _ x: [Float], rows: Int, C: Int, H: Int, W: Int, K: Int, padding ph: Int, _ pw: Int, bias: [Float]?,
        im2colTerms: Int, _ g: (Int, Int, Int, Int) -> Float
    ) -> (y: [Double], winograd: [Double], im2col: [Double]) {
        let Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2, u = Self.u
        func at(_ n: Int, _ c: Int, _ r: Int, _ s: Int) -> Double {
            r >= 0 && r < H && s >= 0 && s < W ? Double(x[((n * C + c) * H + r) * W + s]) : 0
        }
        var y = [Double](), wino = [Double](), im2col = [Double]()
        for n in 0..<rows {
            for k in 0..<K {
                for oh in 0..<Ho {
                    for ow in 0..<Wo {
                        var sum = Double(bias?[k] ?? 0), absolute = 0.0, tiles = 0.0
                        for c in 0..<C {
                            var kernelNorm = 0.0, tileMax = 0.0
                            for i in 0..<3 {
                                for j in 0..<3 {
                                    let w = Double(g(k, c, i, j)), v = at(n, c, oh - ph + i, ow - pw + j)
                                    sum += w * v
                                    absolute += abs(w * v)
                                    kernelNorm += abs(w)
                                }
                            }
                            let top = 2 * (oh / 2) - ph, left = 2 * (ow / 2) - pw
                            for r in 0..<4 { for s in 0..<4 { tileMax = max(tileMax, abs(at(n, c, top + r, left + s))) } }
                            tiles += tileMax * kernelNorm
                        }
                        y.append(sum)
                        wino.append(2 * (Double(C + 11) * u * 16 * tiles + u * abs(sum)))
                        im2col.append(2 * (Double(im2colTerms) * u * absolute + u * abs(sum)))
                    }
                }
            }
        }
        return (y, wino, im2col)
    }

    func assertWithin(_ a: [Float], _ b: [Double], _ bound: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): counts", file: file, line: line)
        guard a.count == b.count else { return }
        for i in a.indices where !(abs(Double(a[i]) - b[i]) <= bound[i]) {
            XCTFail("\(what): entry \(i) is \(a[i]), expected \(b[i]) within \(bound[i])", file: file, line: line)
            return
        }
    }

    func assertWithin(_ a: [Float], _ b: [Float], _ bound: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        assertWithin(a, b.map(Double.init), bound, what, file: file, line: line)
    }

    func testForwardAndTransposedEqualIm2colAndFloat64() {
        let planes = [(5, 7), (6, 4), (2, 3), (1, 1), (8, 8)]
        let paddings = [(0, 0), (1, 1), (2, 2), (0, 2), (1, 0)]
        let channels = [1, 3, 16]
        var case_ = 0
        for (H, W) in planes {
            for (ph, pw) in paddings where H + 2 * ph - 2 >= 1 && W + 2 * pw - 2 >= 1 {
                for C in channels {
                    for K in channels {
                        case_ += 1
                        let rows = case_ % 2 == 0 ? 1 : 3
                        let what = "C \(C) → K \(K), \(H)×\(W), padding (\(ph), \(pw)), rows \(rows)"
                        let c = convolution(K, C, padding: [ph, pw], seed: 500 + UInt64(case_))
                        let network = net([C, H, W], [.conv2d(c)])
                        let g = WindowGeometry(convolution: c, input: [C, H, W])
                        var gen = Gen(900 + UInt64(case_))
                        let x = gen.normals(rows * C * H * W)
                        let w = c.weight

                        let forward = Winograd.Filters(weight: w, outChannels: K, inChannels: C, transposed: false)
                        let yWinograd = Winograd.forward(forward, g, x, bias: c.bias, rows: rows)
                        let yIm2col = network.convolve(c, g, x, rows: rows)
                        let ref = reference(x, rows: rows, C: C, H: H, W: W, K: K, padding: ph, pw, bias: c.bias, im2colTerms: 9 * C) { k, ch, i, j in
                            w[((k * C + ch) * 3 + i) * 3 + j]
                        }
                        assertWithin(yWinograd, ref.y, ref.winograd, "\(what): Winograd forward vs float64")
                        assertWithin(yIm2col, ref.y, ref.im2col, "\(what): im2col forward vs float64 (the bound itself)")
                        assertWithin(yWinograd, yIm2col, zip(ref.winograd, ref.im2col).map(+), "\(what): Winograd vs im2col forward")

                        // The transpose: dx = Σ_k w[k, c] ⋆ᵀ dy[k], i.e. a convolution of dy (K channels, Ho × Wo)
                        // with the kernel rotated by 180° and in/out exchanged, padding 2 − p.
                        let Ho = g.outHeight, Wo = g.outWidth
                        let dy = gen.normals(rows * K * Ho * Wo)
                        let transposed = Winograd.Filters(weight: w, outChannels: K, inChannels: C, transposed: true)
                        let dxWinograd = Winograd.transposed(transposed, g, dy, rows: rows)
                        let dxIm2col = network.convolveTransposed(c, g, dy, rows: rows)
                        let tref = reference(dy, rows: rows, C: K, H: Ho, W: Wo, K: C, padding: 2 - ph, 2 - pw, bias: nil,
                                             im2colTerms: K + 9) { ch, k, i, j in
                            w[((k * C + ch) * 3 + 2 - i) * 3 + 2 - j]
                        }
                        assertWithin(dxWinograd, tref.y, tref.winograd, "\(what): Winograd transposed vs float64")
                        assertWithin(dxIm2col, tref.y, tref.im2col, "\(what): im2col transposed vs float64 (the bound itself)")
                        assertWithin(dxWinograd, dxIm2col, zip(tref.winograd, tref.im2col).map(+), "\(what): Winograd vs im2col transposed")
                    }
                }
            }
        }
        XCTAssertGreaterThan(case_, 150)
    }

    /// A chunk of several blocks of examples (blocks of 2 here; ``Winograd/blockFloats`` sets them in use)
    /// gives each example its own convolution, the last block a partial one.
    func testManyExamplesSpanSeveralBlocks() {
        let C = 5, K = 4, H = 7, W = 6, rows = 5
        let c = convolution(K, C, padding: [1, 2], seed: 77)
        let filters = Winograd.Filters(weight: c.weight, outChannels: K, inChannels: C, transposed: false)
        var gen = Gen(78)
        let x = gen.normals(rows * C * H * W)
        let ref = reference(x, rows: rows, C: C, H: H, W: W, K: K, padding: 1, 2, bias: c.bias, im2colTerms: 9 * C) { k, ch, i, j in
            c.weight[((k * C + ch) * 3 + i) * 3 + j]
        }
        for perBlock in [1, 2, 5, 8] {
            let y = uninitializedFloats(ref.y.count) { y in
                x.withUnsafeBufferPointer { xp in
                    c.bias.withUnsafeBufferPointer { bp in
                        Winograd.convolve(xp.baseAddress!, rows: rows, height: H, width: W, padding: 1, 2, filters: filters,
                                          bias: bp.baseAddress!, into: y, examplesPerBlock: perBlock)
                    }
                }
            }
            assertWithin(y, ref.y, ref.winograd, "\(rows) examples in blocks of \(perBlock)")
        }
    }

    /// Where Winograd runs: 2-D stride-1 dilation-1 3×3 convolutions with ≥ 16 channels each way; the
    /// transpose only for padding ≤ 2. The plan is made when the node is added.
    func testPlanHeuristic() {
        func plan(_ inp: Int, _ out: Int, stride: Int = 1, padding: Int = 1, dilation: Int = 1, kernel: Int = 3) -> ConvolutionPlan? {
            var gen = Gen(5)
            let layer = gen.conv(out, inp, kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation])
            let network = net([inp, 12, 12], [layer])
            return network.convolutionPlans[0]
        }
        XCTAssertNotNil(plan(16, 16)?.forward)
        XCTAssertNotNil(plan(16, 16)?.transposed)
        XCTAssertNotNil(plan(16, 32, padding: 0)?.transposed)
        XCTAssertNil(plan(8, 16), "8 channels: measured slower than im2col")
        XCTAssertNotNil(plan(16, 16, padding: 3)?.forward)
        XCTAssertNil(plan(16, 16, padding: 3)?.transposed, "padding 3: the transpose would need padding −1")
        XCTAssertNil(plan(3, 16), "the stem of an RGB network: too few channels")
        XCTAssertNil(plan(16, 8))
        XCTAssertNil(plan(16, 16, stride: 2))
        XCTAssertNil(plan(16, 16, dilation: 2))
        XCTAssertNil(plan(16, 16, padding: 2, kernel: 5))
        var gen = Gen(6)
        XCTAssertNil(net([16, 12], [gen.conv(16, 16, kernel: [3], padding: [1])]).convolutionPlans[0], "Conv1d")
        XCTAssertNil(net([16], [gen.dense(4, 16)]).convolutionPlans[0])
    }

    /// Forward and pullback of networks whose convolutions run by Winograd against the float64 reference
    /// and its central differences (the tolerances of LayerPullbackTests), including a max-pool after a
    /// ReLU, where gradients run on ``Network/gradientEquivalent`` (nodes swapped: the plans must follow).
    func testNetworksThroughWinogradMatchReferenceAndFiniteDifferences() throws {
        var g = Gen(34)
        let cases: [(String, Network, Int)] = [
            ("conv p1 → ReLU → conv p0", net([16, 5, 4], [g.conv(16, 16, kernel: [3, 3], padding: [1, 1]), .relu,
                                                          g.conv(17, 16, kernel: [3, 3], padding: [0, 0])]), 1),
            ("conv p2 → tanh → ReLU → max-pool → conv p1 → flatten → dense",
             net([16, 4, 4], [g.conv(16, 16, kernel: [3, 3], padding: [2, 2]), .tanh, .relu, .maxPool2d(pool([2, 2])),
                              g.conv(16, 16, kernel: [3, 3], padding: [1, 1]), .flatten, g.dense(3, 144)]), 1),
            ("conv p1 → batch-norm (folded) → ELU → conv p1 → flatten → dense → batch-norm (folded)",
             net([16, 4, 4], [g.conv(16, 16, kernel: [3, 3], padding: [1, 1]), g.batchNorm(16), .elu(alpha: 1),
                              g.conv(16, 16, kernel: [3, 3], padding: [1, 1]), .flatten, g.dense(3, 256), g.batchNorm(3)]), 2),
        ]
        for (what, network, rows) in cases {
            for (i, layer) in network.layers.enumerated() {
                if case .conv2d = layer { XCTAssertNotNil(network.convolutionPlans[i]?.transposed, "\(what): node \(i) runs by Winograd") }
            }
            XCTAssertEqual(network.gradientEquivalent != nil, what.contains("max-pool") || what.contains("folded"),
                           "\(what): ReLU → max-pool is swapped, batch-norm folded")
            if what.contains("folded") {
                let kinds = network.gradientEquivalent!.layers.map(\.name)
                XCTAssertFalse(kinds.contains("BatchNorm"), "\(what): every batch-norm folded (\(kinds))")
            }
            if let equivalent = network.gradientEquivalent {
                for (i, layer) in equivalent.layers.enumerated() {
                    if case .conv2d = layer {
                        XCTAssertEqual(equivalent.convolutionPlans[i],
                                       ConvolutionPlan(layer, input: equivalent.shapes[equivalent.input(of: i)]), "\(what): node \(i)")
                    } else {
                        XCTAssertNil(equivalent.convolutionPlans[i], "\(what): node \(i) of the gradient-equivalent network")
                    }
                }
            }
            var ref = Reference(network)
            let x = g.normals(rows * network.inputSize)
            let expected = ref.forwardBatch(x, rows: rows)
            assertClose(network.forward(x, rows: rows), expected, rel: 1e-5, floor: 1, "\(what) forward")
            let cotangent = g.normals(rows * network.outputSize)
            ref.kink = .infinity
            let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: cotangent)
            XCTAssertGreaterThan(ref.kink, 1e-4, "\(what): finite differences cross a kink")
            let grad = try network.gradient(x, rows: rows, cotangent: cotangent)
            assertClose(grad, fd, rel: 1e-4, "\(what) pullback")
        }
    }
}
