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

    /// V_ξ and M_ξ of one block take at most this many floats (4 MB): the GEMMs then read what the input
    /// transform just wrote from the 4 MB L2 cache, while a block still holds enough tiles (T) that the
    /// 16 GEMM calls per block are long.
    static let blockFloats = 1 << 20

    /// `y` (rows × K × Ho × Wo, Ho = H + 2·ph − 2, Wo = W + 2·pw − 2) = the stride-1 3×3 cross-correlation of
    /// `x` (rows × C × H × W, zero-padded by ph rows and pw columns on each side) with the filters `f`, plus
    /// `bias[k]` when given. `examplesPerBlock` overrides the block size of ``blockFloats`` (for tests).
    static func convolve(
        _ x: UnsafePointer<Float>, rows: Int, height H: Int, width W: Int, padding ph: Int, _ pw: Int,
        filters f: Filters, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, examplesPerBlock: Int? = nil
    ) {
        let C = f.inChannels, K = f.outChannels
        let Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2
        precondition(Ho >= 1 && Wo >= 1, "Winograd.convolve: empty output")
        let th = (Ho + 1) / 2, tw = (Wo + 1) / 2, tiles = th * tw
        let perBlock = max(1, min(rows, examplesPerBlock ?? blockFloats / (16 * (C + K) * tiles)))
        // A padded input row: columns −pw ..< 2·tw + 2 − pw (always covers the W inputs).
        let Wp = 2 * tw + 2
        var V = [Float](repeating: 0, count: 16 * C * perBlock * tiles)
        var M = [Float](repeating: 0, count: 16 * K * perBlock * tiles)
        var rowBuffer = [Float](repeating: 0, count: 8 * Wp)
        var outBuffer = [Float](repeating: 0, count: 4 * tw)
        V.withUnsafeMutableBufferPointer { vb in
        M.withUnsafeMutableBufferPointer { mb in
        rowBuffer.withUnsafeMutableBufferPointer { rb in
        outBuffer.withUnsafeMutableBufferPointer { ob in
        f.u.withUnsafeBufferPointer { ub in
            let V = vb.baseAddress!, M = mb.baseAddress!, d = rb.baseAddress!, t = d + 4 * Wp, out = ob.baseAddress!
            let U = ub.baseAddress!
            var n0 = 0
            while n0 < rows {
                let nb = min(perBlock, rows - n0), T = nb * tiles
                // V_ξ[c][tile] = (Bᵀ d B)_ξ, one tile row at a time: the four input rows, then Bᵀ down the
                // rows (t0 = d0 − d2, t1 = d1 + d2, t2 = d2 − d1, t3 = d1 − d3), then B along the columns.
                for e in 0..<nb {
                    for c in 0..<C {
                        let plane = x + ((n0 + e) * C + c) * H * W
                        for a in 0..<th {
                            for r in 0..<4 {
                                let ih = 2 * a - ph + r, dr = d + r * Wp
                                if ih >= 0 && ih < H {
                                    let src = plane + ih * W
                                    for q in 0..<pw { dr[q] = 0 }
                                    for q in 0..<W { dr[pw + q] = src[q] }
                                    for q in (pw + W)..<Wp { dr[q] = 0 }
                                } else {
                                    for q in 0..<Wp { dr[q] = 0 }
                                }
                            }
                            for q in 0..<Wp {
                                let d0 = d[q], d1 = d[Wp + q], d2 = d[2 * Wp + q], d3 = d[3 * Wp + q]
                                t[q] = d0 - d2
                                t[Wp + q] = d1 + d2
                                t[2 * Wp + q] = d2 - d1
                                t[3 * Wp + q] = d1 - d3
                            }
                            let column = e * tiles + a * tw
                            for i in 0..<4 {
                                let ti = t + i * Wp
                                let v0 = V + ((4 * i) * C + c) * T + column, v1 = v0 + C * T, v2 = v1 + C * T, v3 = v2 + C * T
                                for b in 0..<tw {
                                    let p0 = ti[2 * b], p1 = ti[2 * b + 1], p2 = ti[2 * b + 2], p3 = ti[2 * b + 3]
                                    v0[b] = p0 - p2
                                    v1[b] = p1 + p2
                                    v2[b] = p2 - p1
                                    v3[b] = p1 - p3
                                }
                            }
                        }
                    }
                }
                for xi in 0..<16 {
                    BLAS.sgemm(m: K, n: T, k: C, a: U + xi * K * C, b: V + xi * C * T, c: M + xi * K * T)
                }
                // Y = Aᵀ M A per tile: s0 = m0 + m1 + m2 and s1 = m1 − m2 − m3 down the rows, then the same along
                // the columns; two output rows at a time through `out`, cropped to Ho × Wo.
                for e in 0..<nb {
                    for k in 0..<K {
                        let plane = y + ((n0 + e) * K + k) * Ho * Wo
                        let shift = bias?[k] ?? 0
                        for a in 0..<th {
                            let m = M + k * T + e * tiles + a * tw, s = K * T
                            for b in 0..<tw {
                                let m00 = m[b], m01 = m[s + b], m02 = m[2 * s + b], m03 = m[3 * s + b]
                                let m10 = m[4 * s + b], m11 = m[5 * s + b], m12 = m[6 * s + b], m13 = m[7 * s + b]
                                let m20 = m[8 * s + b], m21 = m[9 * s + b], m22 = m[10 * s + b], m23 = m[11 * s + b]
                                let m30 = m[12 * s + b], m31 = m[13 * s + b], m32 = m[14 * s + b], m33 = m[15 * s + b]
                                let s00 = m00 + m10 + m20, s01 = m01 + m11 + m21, s02 = m02 + m12 + m22, s03 = m03 + m13 + m23
                                let s10 = m10 - m20 - m30, s11 = m11 - m21 - m31, s12 = m12 - m22 - m32, s13 = m13 - m23 - m33
                                out[2 * b] = s00 + s01 + s02 + shift
                                out[2 * b + 1] = s01 - s02 - s03 + shift
                                out[2 * tw + 2 * b] = s10 + s11 + s12 + shift
                                out[2 * tw + 2 * b + 1] = s11 - s12 - s13 + shift
                            }
                            let top = plane + 2 * a * Wo
                            for q in 0..<Wo { top[q] = out[q] }
                            if 2 * a + 1 < Ho {
                                let bottom = top + Wo
                                for q in 0..<Wo { bottom[q] = out[2 * tw + q] }
                            }
                        }
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
}

/// How a convolution node runs, fixed when the node is added to a network (so a ``Network`` stays an
/// immutable value with no cache to lock): the Winograd filters of its forward pass and of its input
/// gradient where ``Winograd`` applies and wins, nil where the im2col path runs.
struct ConvolutionPlan: Sendable, Equatable {
    let forward: Winograd.Filters?
    let transposed: Winograd.Filters?

    /// Winograd runs only where both channel counts of the direction reach this: with fewer, the GEMMs
    /// (k = C, m = K) are too thin for the transforms to pay (measured on the issue-9 ResNet's stem, C = 3).
    static let minimumChannels = 8

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
