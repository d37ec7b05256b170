import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// Winograd minimal filtering F(2×2, 3×3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
/// Networks") for stride-1, dilation-1 3×3 two-dimensional convolutions.
///
/// Each 2×2 output tile of one channel pair is `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` over the 4×4 input tile d
/// under it: 16 multiplications instead of 36. Over channels the elementwise products become 16 GEMMs
/// `M_ξ (K × T) = U_ξ (K × C) · V_ξ (C × T)`, ξ = 4·i + j, with `U = G g Gᵀ` (transformed once per layer, at
/// plan time: ``ConvolutionPlan``) and `V = Bᵀ d B` for the T tiles of every example of a block. The GEMMs
/// then do 16·K·C multiply-adds per 4 outputs instead of 9·K·C per output (2.25× fewer), and the
/// input and output transforms replace im2col's 9-fold patch matrix with a 4-fold one.
///
/// The input-gradient of such a convolution (its transpose) is again a stride-1 3×3 convolution: of the
/// output cotangent, with the kernel flipped in both axes and its in/out channels exchanged, and padding
/// 2 − p (so padding up to 2). Both directions run the same kernel here.
///
/// Why F(2×2, 3×3) and not F(4×4, 3×3) (36 GEMMs, 4× fewer multiplications): F(4,3)'s transforms use the
/// points ±2 and carry entries up to 8 (Bᵀ: 4, −5; G: 1/6, 1/12, 1/24, inexact in binary; Aᵀ: 8). Its float32
/// error bound (below) is 29.3² = 860 ‖d‖∞‖g‖₁-units per output against 4² = 16 for F(2,3), 54× larger;
/// measured on random C = 64 tiles against float64, F(4×4) reached 2e-6 relative error (median) and 1.4e-5
/// (worst of 200), F(2×2) 2.7e-7 and 1.5e-6, as good as a direct float32 convolution. Attribution tests
/// compare with Captum at 1e-5-level tolerances and the Hessian passes take differences of gradients, so
/// the accurate variant is used: every coefficient of F(2,3)'s transforms is 0, ±1 or ±½ (exact in binary).
///
/// Float32 error of one output (first order, u = 2⁻²⁴): the transforms and the GEMM round each term at
/// most C + 11 times (filter transform 4, input transform 2, the product 1, the GEMM's sum over C, output
/// transform 4), and the absolute values of all terms sum to at most 16·Σ_c ‖d_c‖∞·‖g_kc‖₁ (d_c: the 4×4
/// input tile of channel c; per axis the weights |Aᵀ|·|G|·Σ|Bᵀ| reach 4 per kernel tap). So
/// |ŷ − y| ≤ (C + 11)·u·16·Σ_c ‖d_c‖∞·‖g_kc‖₁; the tests use this bound.
enum Winograd {
    /// The 16 transformed filters of one direction: `u[(ξ·K + k)·C + c]` = (G g_{k,c} Gᵀ)_ξ for output
    /// channel k and input channel c.
    struct Filters: Sendable, Equatable {
        let u: [Float]
        let outChannels: Int
        let inChannels: Int

        /// Filters of a convolution with `weight` (out × in × 3 × 3, PyTorch's layout). `transposed`: those of
        /// its transpose (out and in channels exchanged, each 3×3 kernel rotated by 180°), whose output
        /// channels are the convolution's input channels.
        init(weight: [Float], outChannels: Int, inChannels: Int, transposed: Bool) {
            let K = transposed ? inChannels : outChannels, C = transposed ? outChannels : inChannels
            self.outChannels = K
            self.inChannels = C
            u = uninitializedFloats(16 * K * C) { u in
                weight.withUnsafeBufferPointer { w in
                    for k in 0..<K {
                        for c in 0..<C {
                            // g(i, j): the kernel from input channel c to output channel k of this direction.
                            func g(_ i: Int, _ j: Int) -> Float {
                                transposed ? w[((c * inChannels + k) * 3 + 2 - i) * 3 + 2 - j] : w[((k * inChannels + c) * 3 + i) * 3 + j]
                            }
                            // G g (4×3): rows g0, (g0 + g1 + g2)/2, (g0 − g1 + g2)/2, g2; then the same along the
                            // columns of each of its rows.
                            for j in 0..<3 {
                                let a = g(0, j), b = g(1, j), e = g(2, j)
                                let column = (a, 0.5 * (a + b + e), 0.5 * (a - b + e), e)
                                // Stash G g in u's first 12 entries of this (k, c): (ξ = 4·i + j) slots are
                                // rewritten below in an order that reads each before overwriting it.
                                u[((0 + j) * K + k) * C + c] = column.0
                                u[((4 + j) * K + k) * C + c] = column.1
                                u[((8 + j) * K + k) * C + c] = column.2
                                u[((12 + j) * K + k) * C + c] = column.3
                            }
                            for i in 0..<4 {
                                let a = u[((4 * i) * K + k) * C + c], b = u[((4 * i + 1) * K + k) * C + c]
                                let e = u[((4 * i + 2) * K + k) * C + c]
                                u[((4 * i) * K + k) * C + c] = a
                                u[((4 * i + 1) * K + k) * C + c] = 0.5 * (a + b + e)
                                u[((4 * i + 2) * K + k) * C + c] = 0.5 * (a - b + e)
                                u[((4 * i + 3) * K + k) * C + c] = e
                            }
                        }
                    }
                }
            }
        }
    }

    /// V_ξ and M_ξ of one block take at most this many floats: one core's L2 cache (`sysconf`'s
    /// `_SC_LEVEL2_CACHE_SIZE`; 4 MB when it is unknown), at least 256 KB. The GEMMs then read what the input
    /// transform just wrote from L2, while a block still holds enough tiles (T) that the 16 GEMM calls per
    /// block are long. The block size changes which examples share a GEMM (and so, through the GEMM's shape,
    /// possibly the rounding of its sums: the tests compare blocks within float32 tolerances), so results can
    /// differ in the last bits between CPUs with different L2 sizes. Measured on a Zen 3 guest (512 KB L2), IG on the
    /// issue-9 ResNet, alternating in the same minutes: 4 MB blocks 0.55–0.68 s against 512 KB blocks
    /// 0.53–0.63 s (means 0.62 and 0.57); in a second comparison of whole builds 0.55–0.65 against 0.57–0.58 s.
    static let blockFloats: Int = {
        #if os(Linux)
        let l2 = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        #else
        let l2 = -1
        #endif
        return l2 > 0 ? max(1 << 16, l2 / MemoryLayout<Float>.size) : 1 << 20
    }()

    /// `y` (rows × K × Ho × Wo, Ho = H + 2·ph − 2, Wo = W + 2·pw − 2) = the stride-1 3×3 cross-correlation of
    /// `x` (rows × C × H × W, zero-padded by ph rows and pw columns on each side) with the filters `f`, plus
    /// `bias[k]` when given. `examplesPerBlock` overrides the block size of ``blockFloats`` (for tests).
    ///
    /// The transforms are CKernels' `swiftattr_winograd_input` (per input plane, into V) and
    /// `swiftattr_winograd_output` (per output plane, from M), compiled for AVX-512, AVX2 and the baseline
    /// and chosen at run time (``BuildInfo/kernels``); every variant computes the operations of the error
    /// analysis above in the same order, so all return the same bits.
    static func convolve(
        _ x: UnsafePointer<Float>, rows: Int, height H: Int, width W: Int, padding ph: Int, _ pw: Int,
        filters f: Filters, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, examplesPerBlock: Int? = nil
    ) {
        let C = f.inChannels, K = f.outChannels
        let Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2
        precondition(Ho >= 1 && Wo >= 1, "Winograd.convolve: empty output")
        let th = (Ho + 1) / 2, tw = (Wo + 1) / 2, tiles = th * tw
        let perBlock = max(1, min(rows, examplesPerBlock ?? blockFloats / (16 * (C + K) * tiles)))
        // One leading dimension for every block; its 4 floats of slack keep the 16 rows of V and M that one
        // tile's transform touches off power-of-two strides (cache-set conflicts).
        let ld = perBlock * tiles + 4
        var V = uninitializedFloats(16 * C * ld) { _ in }
        var M = uninitializedFloats(16 * K * ld) { _ in }
        var scratch = uninitializedFloats(max(swiftattr_winograd_input_scratch(th, tw), swiftattr_winograd_output_scratch(th, tw))) { _ in }
        V.withUnsafeMutableBufferPointer { vb in
        M.withUnsafeMutableBufferPointer { mb in
        scratch.withUnsafeMutableBufferPointer { sb in
        f.u.withUnsafeBufferPointer { ub in
            let V = vb.baseAddress!, M = mb.baseAddress!, U = ub.baseAddress!, work = sb.baseAddress!
            var n0 = 0
            while n0 < rows {
                let nb = min(perBlock, rows - n0), T = nb * tiles
                for e in 0..<nb {
                    for c in 0..<C {
                        swiftattr_winograd_input(x + ((n0 + e) * C + c) * H * W, H, W, ph, pw, th, tw,
                                                 V + c * ld + e * tiles, C * ld, work)
                    }
                }
                for xi in 0..<16 {
                    BLAS.sgemm(m: K, n: T, k: C, a: U + xi * K * C, b: V + xi * C * ld, ldb: ld, c: M + xi * K * ld, ldc: ld)
                }
                for e in 0..<nb {
                    for k in 0..<K {
                        swiftattr_winograd_output(M + k * ld + e * tiles, K * ld, th, tw, Ho, Wo, bias?[k] ?? 0,
                                                  y + ((n0 + e) * K + k) * Ho * Wo, work)
                    }
                }
                n0 += nb
            }
        }
        }
        }
        }
    }
}

/// How a convolution node runs, fixed when the node is added to a network (so a ``Network`` stays an
/// immutable value with no cache to lock): the Winograd filters of its forward pass and of its input
/// gradient where ``Winograd`` applies and wins, nil where the im2col path runs.
struct ConvolutionPlan: Sendable, Equatable {
    let forward: Winograd.Filters?
    let transposed: Winograd.Filters?

    /// Winograd runs only where both channel counts of the direction reach this: with fewer, the GEMMs
    /// (k = C, m = K) are too thin for the transforms to pay. Measured per example, one thread, single
    /// padded 3×3 convolution layers (forward / input gradient, µs, im2col → Winograd; a busy machine, so
    /// ±15 %): 16→16 at 32×32: 195–258 → 200–207 / 487–526 → 365–372; 32→32 at 16×16: 175 → 132 /
    /// 300–336 → 226–248; 64→64 at 8×8: 108–121 → 92–102 / 244–249 → 161–163; 64→64 at 4×4: 38 → 34–44 /
    /// 71–76 → 66–74; but 8→8 at 32×32: 72–88 → 101–105 / 152–174 → 169–188, and 8→8 at 8×8 7 → 9 / 15 → 16.
    static let minimumChannels = 16

    /// The plan of node `layer` reading per-example `shape`; nil for nodes that are not a 2-D
    /// stride-1, dilation-1 3×3 convolution, or where neither direction qualifies.
    init?(_ layer: Layer, input shape: [Int]) {
        guard case .conv2d(let c) = layer, c.kernel == [3, 3], c.stride == [1, 1], c.dilation == [1, 1], shape.count == 3 else {
            return nil
        }
        let minimum = Self.minimumChannels
        let useForward = c.inChannels >= minimum && c.outChannels >= minimum
        // The transpose has padding 2 − p, so p ≤ 2.
        let useTransposed = useForward && c.padding.allSatisfy { $0 <= 2 }
        guard useForward || useTransposed else { return nil }
        forward = useForward ? Winograd.Filters(weight: c.weight, outChannels: c.outChannels, inChannels: c.inChannels, transposed: false) : nil
        transposed = useTransposed ? Winograd.Filters(weight: c.weight, outChannels: c.outChannels, inChannels: c.inChannels, transposed: true) : nil
    }
}

extension Winograd {
    /// A convolution node's output (rows × K × outputPlane) for `rows` examples `x` of geometry `g`.
    static func forward(_ f: Filters, _ g: WindowGeometry, _ x: [Float], bias: [Float], rows: Int) -> [Float] {
        uninitializedFloats(rows * f.outChannels * g.outputPlane) { y in
            x.withUnsafeBufferPointer { xp in
                bias.withUnsafeBufferPointer { bp in
                    convolve(xp.baseAddress!, rows: rows, height: g.height, width: g.width, padding: g.ph, g.pw,
                             filters: f, bias: bp.baseAddress!, into: y)
                }
            }
        }
    }

    /// The input cotangent (rows × C × inputPlane) from the output cotangent `dy` of a convolution of
    /// geometry `g`: the convolution of `dy` with the transposed filters `f`, padding 2 − p.
    static func transposed(_ f: Filters, _ g: WindowGeometry, _ dy: [Float], rows: Int) -> [Float] {
        uninitializedFloats(rows * f.outChannels * g.inputPlane) { dx in
            dy.withUnsafeBufferPointer { d in
                convolve(d.baseAddress!, rows: rows, height: g.outHeight, width: g.outWidth, padding: 2 - g.ph, 2 - g.pw,
                         filters: f, bias: nil, into: dx)
            }
        }
    }
}
