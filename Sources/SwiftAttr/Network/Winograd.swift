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
    ///
    /// The transforms run four tiles at a time (SIMD4, the baseline SSE width). The input transform takes
    /// B along each (zero-padded) input row once, into its four per-tile column combinations R_j, and then
    /// Bᵀ down the four rows under each tile row (every input row serves two tile rows); the output
    /// transform interleaves each output tile's two columns in registers. Vector loops may run up to 3
    /// lanes past a row's end: V and M rows have 4 floats of slack (leading dimension: a full block's T + 4)
    /// and the scratch rows 8 or more, so those lanes land in scratch.
    static func convolve(
        _ x: UnsafePointer<Float>, rows: Int, height H: Int, width W: Int, padding ph: Int, _ pw: Int,
        filters f: Filters, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, examplesPerBlock: Int? = nil
    ) {
        let C = f.inChannels, K = f.outChannels
        let Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2
        precondition(Ho >= 1 && Wo >= 1, "Winograd.convolve: empty output")
        let th = (Ho + 1) / 2, tw = (Wo + 1) / 2, tiles = th * tw
        let perBlock = max(1, min(rows, examplesPerBlock ?? blockFloats / (16 * (C + K) * tiles)))
        // One leading dimension for every block; the slack of M is zeroed (a partial last block's extra lanes
        // read the previous block's finite values).
        let ld = perBlock * tiles + 4
        // Scratch: one padded input row (input columns −pw ..< 2·tw + 2 − pw cover the W inputs, + 8 of
        // slack), R_j for the 2·th + 2 padded rows (rows of `span` floats), and 4 output rows.
        let span = tw + 8, paddedRow = 2 * tw + 2, rowRows = 2 * th + 2
        var V = uninitializedFloats(16 * C * ld) { _ in }
        var M = uninitializedFloats(16 * K * ld) { m in for row in 0..<(16 * K) { (m + row * ld + ld - 4).update(repeating: 0, count: 4) } }
        var scratch = [Float](repeating: 0, count: paddedRow + 8 + (4 * rowRows + 4) * span)
        V.withUnsafeMutableBufferPointer { vb in
        M.withUnsafeMutableBufferPointer { mb in
        scratch.withUnsafeMutableBufferPointer { sb in
        f.u.withUnsafeBufferPointer { ub in
            let V = vb.baseAddress!, M = mb.baseAddress!
            let U = ub.baseAddress!
            // row: the padded input row; R: R_j of padded row r at R + (4r + j)·span; out: 4 output rows.
            let row = sb.baseAddress!, R = row + paddedRow + 8, out = R + 4 * rowRows * span
            var n0 = 0
            while n0 < rows {
                let nb = min(perBlock, rows - n0), T = nb * tiles
                for e in 0..<nb {
                    for c in 0..<C {
                        let plane = x + ((n0 + e) * C + c) * H * W
                        // B along each padded row r (input row r − ph): with E/O its even/odd columns, tile b's
                        // four values are E[b] − E[b+1], O[b] + E[b+1], E[b+1] − O[b], O[b] − O[b+1].
                        for r in 0..<rowRows {
                            let ih = r - ph, R0 = R + 4 * r * span, R1 = R0 + span, R2 = R1 + span, R3 = R2 + span
                            guard ih >= 0 && ih < H else {
                                for j in 0..<4 { (R0 + j * span).update(repeating: 0, count: tw) }
                                continue
                            }
                            let src = plane + ih * W
                            let left = min(pw, paddedRow), right = min(paddedRow, pw + W)
                            for q in 0..<left { row[q] = 0 }
                            for q in left..<right { row[q] = src[q - pw] }
                            for q in right..<paddedRow { row[q] = 0 }
                            var b = 0
                            while b < tw {
                                let x0 = load4(row + 2 * b), x1 = load4(row + 2 * b + 4), x2 = load4(row + 2 * b + 8)
                                let e0 = SIMD4(x0[0], x0[2], x1[0], x1[2]), o0 = SIMD4(x0[1], x0[3], x1[1], x1[3])
                                let e1 = SIMD4(x0[2], x1[0], x1[2], x2[0]), o1 = SIMD4(x0[3], x1[1], x1[3], x2[1])
                                store4(e0 - e1, R0 + b)
                                store4(o0 + e1, R1 + b)
                                store4(e1 - o0, R2 + b)
                                store4(o0 - o1, R3 + b)
                                b += 4
                            }
                        }
                        // Bᵀ down the four rows under tile row a: V_{4i+j} from R_j of rows 2a ..< 2a + 4:
                        // r0 − r2, r1 + r2, r2 − r1, r1 − r3.
                        for a in 0..<th {
                            let column = e * tiles + a * tw
                            for j in 0..<4 {
                                let r0 = R + (8 * a + j) * span, r1 = r0 + 4 * span, r2 = r1 + 4 * span, r3 = r2 + 4 * span
                                let v0 = V + (j * C + c) * ld + column, v1 = v0 + 4 * C * ld, v2 = v1 + 4 * C * ld, v3 = v2 + 4 * C * ld
                                var b = 0
                                while b < tw {
                                    let d0 = load4(r0 + b), d1 = load4(r1 + b), d2 = load4(r2 + b), d3 = load4(r3 + b)
                                    store4(d0 - d2, v0 + b)
                                    store4(d1 + d2, v1 + b)
                                    store4(d2 - d1, v2 + b)
                                    store4(d1 - d3, v3 + b)
                                    b += 4
                                }
                            }
                        }
                    }
                }
                for xi in 0..<16 {
                    BLAS.sgemm(m: K, n: T, k: C, a: U + xi * K * C, b: V + xi * C * ld, ldb: ld, c: M + xi * K * ld, ldc: ld)
                }
                // Y = Aᵀ M A per tile: s0 = m0 + m1 + m2 and s1 = m1 − m2 − m3 down the rows, then the same along
                // the columns, four tiles at a time, stored interleaved into y (a row's last partial group
                // through `out`, cropped to Ho × Wo).
                for e in 0..<nb {
                    for k in 0..<K {
                        let plane = y + ((n0 + e) * K + k) * Ho * Wo
                        let shift = SIMD4<Float>(repeating: bias?[k] ?? 0)
                        for a in 0..<th {
                            let m = M + k * ld + e * tiles + a * tw, s = K * ld
                            var b = 0
                            while b < tw {
                                let p = m + b
                                let m00 = load4(p), m01 = load4(p + s), m02 = load4(p + 2 * s), m03 = load4(p + 3 * s)
                                let m10 = load4(p + 4 * s), m11 = load4(p + 5 * s), m12 = load4(p + 6 * s), m13 = load4(p + 7 * s)
                                let m20 = load4(p + 8 * s), m21 = load4(p + 9 * s), m22 = load4(p + 10 * s), m23 = load4(p + 11 * s)
                                let m30 = load4(p + 12 * s), m31 = load4(p + 13 * s), m32 = load4(p + 14 * s), m33 = load4(p + 15 * s)
                                let s00 = m00 + m10 + m20, s01 = m01 + m11 + m21, s02 = m02 + m12 + m22, s03 = m03 + m13 + m23
                                let s10 = m10 - m20 - m30, s11 = m11 - m21 - m31, s12 = m12 - m22 - m32, s13 = m13 - m23 - m33
                                let y00 = s00 + s01 + s02 + shift, y01 = s01 - s02 - s03 + shift
                                let y10 = s10 + s11 + s12 + shift, y11 = s11 - s12 - s13 + shift
                                let top = plane + 2 * a * Wo + 2 * b, bottom = top + Wo
                                if 2 * b + 8 <= Wo {
                                    store4(SIMD4(y00[0], y01[0], y00[1], y01[1]), top)
                                    store4(SIMD4(y00[2], y01[2], y00[3], y01[3]), top + 4)
                                    if 2 * a + 1 < Ho {
                                        store4(SIMD4(y10[0], y11[0], y10[1], y11[1]), bottom)
                                        store4(SIMD4(y10[2], y11[2], y10[3], y11[3]), bottom + 4)
                                    }
                                } else {
                                    // The row's last (partial) group of tiles, cropped to Wo.
                                    store4(y00, out)
                                    store4(y01, out + span)
                                    store4(y10, out + 2 * span)
                                    store4(y11, out + 3 * span)
                                    interleave(out, out + span, into: top, count: Wo - 2 * b)
                                    if 2 * a + 1 < Ho { interleave(out + 2 * span, out + 3 * span, into: bottom, count: Wo - 2 * b) }
                                }
                                b += 4
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

    /// `y[2b] = even[b]`, `y[2b + 1] = odd[b]` for the first `count` entries of y.
    @inline(__always)
    private static func interleave(_ even: UnsafePointer<Float>, _ odd: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<(count / 2) {
            y[2 * b] = even[b]
            y[2 * b + 1] = odd[b]
        }
        if count % 2 == 1 { y[count - 1] = even[count / 2] }
    }

    @inline(__always)
    private static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always)
    private static func load4(_ p: UnsafeMutablePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always)
    private static func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
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
