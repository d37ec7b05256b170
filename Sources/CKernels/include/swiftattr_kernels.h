/*
 * swiftattr_kernels.h — the hot non-GEMM loops of the library (Winograd transforms, im2col/col2im, 2×2
 * max-pooling, seeded standard normals, the optimisers' steps), compiled for several instruction sets and
 * chosen once at run time.
 *
 * The library is built for baseline x86-64 (SSE2), so Swift's SIMD code runs at SSE width on every CPU.
 * kernels.c compiles each loop three times on x86-64 — for AVX-512 (F, VL, BW, DQ: x86-64-v4), for AVX2
 * with FMA, and for the baseline — and the first call picks the widest the CPU supports
 * (`__builtin_cpu_supports`). `SWIFTATTR_ISA=default|avx2|avx512f` in the environment caps the choice
 * (a request the CPU cannot run falls back to the widest it can), so the baseline path can be tested on
 * any machine. Elsewhere (aarch64) only the portable build exists: "default".
 *
 * Every variant computes the same operations in the same order (kernels.c disables FMA contraction), so
 * all of them return the same bits: the choice changes speed only.
 */
#ifndef SWIFTATTR_KERNELS_H
#define SWIFTATTR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define SWIFTATTR_KERNELS_HIDDEN __attribute__((visibility("hidden")))

/* The instruction set the kernels run ("avx512f", "avx2" or "default"). */
SWIFTATTR_KERNELS_HIDDEN const char *swiftattr_kernels_isa(void);

/* Selects `isa` ("avx512f", "avx2", "default"; capped to what the CPU runs) for all later calls and
 * returns the name now in use, or NULL (nothing changed) when `isa` names no variant. For tests. */
SWIFTATTR_KERNELS_HIDDEN const char *swiftattr_kernels_select(const char *isa);

/* 1 when this CPU and build can run `isa`, else 0. */
SWIFTATTR_KERNELS_HIDDEN int swiftattr_kernels_supported(const char *isa);

/* Winograd F(2×2, 3×3) input transform of one channel plane `x` (H × W, zero-padded by ph rows and pw
 * columns) into its th × tw tiles: V_ξ[a·tw + b] = (Bᵀ d B)_ξ of the 4×4 input tile at padded rows
 * 2a ..< 2a + 4, columns 2b ..< 2b + 4, written to v + ξ·xi_stride + a·tw + b for ξ = 0 ..< 16.
 * `scratch`: at least swiftattr_winograd_input_scratch(th, tw) floats. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_winograd_input(const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw,
                                                       ptrdiff_t th, ptrdiff_t tw, float *v, ptrdiff_t xi_stride, float *scratch);
SWIFTATTR_KERNELS_HIDDEN ptrdiff_t swiftattr_winograd_input_scratch(ptrdiff_t th, ptrdiff_t tw);

/* Winograd F(2×2, 3×3) output transform of one output channel: from M_ξ[t] at m + ξ·xi_stride + t
 * (t = a·tw + b over the th × tw tiles), Y = Aᵀ M A + bias per tile, written to the Ho × Wo plane y
 * (tiles cropped to Ho × Wo). `scratch`: at least swiftattr_winograd_output_scratch(th, tw) floats. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_winograd_output(const float *m, ptrdiff_t xi_stride, ptrdiff_t th, ptrdiff_t tw,
                                                        ptrdiff_t Ho, ptrdiff_t Wo, float bias, float *y, float *scratch);
SWIFTATTR_KERNELS_HIDDEN ptrdiff_t swiftattr_winograd_output_scratch(ptrdiff_t th, ptrdiff_t tw);

/* One im2col patch row of one example: dst (out_h × out_w) gets x[(oh·sh + shift_h)·width + shift_w + ow·sw]
 * for oh in [oh0, oh1), ow in [ow0, ow1) (the positions inside the input), zero elsewhere. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_im2col_plane(const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w,
                                                     ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t shift_h, ptrdiff_t shift_w,
                                                     ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, float *dst);

/* The adjoint of swiftattr_im2col_plane: adds src[oh·out_w + ow] to dx[(oh·sh + shift_h)·width + shift_w +
 * ow·sw] over the same ranges. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_col2im_plane(const float *src, ptrdiff_t width, ptrdiff_t out_w,
                                                     ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t shift_h, ptrdiff_t shift_w,
                                                     ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, float *dx);

/* im2col of one channel plane x (H × W) of one example for column stride 2, every patch entry (i, j) of a
 * kh × kw window (row stride sh, padding ph, pw, dilation dh, dw): patch row (i, j) (out_h × out_w, the
 * entries of swiftattr_im2col_plane) at dst + (i·kw + j)·ldk. `scratch`: H·W floats. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_im2col_stride2(const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                                       ptrdiff_t sh, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw,
                                                       ptrdiff_t out_h, ptrdiff_t out_w, float *dst, ptrdiff_t ldk, float *scratch);

/* The patch matrix of `rows` examples (each input_size floats apart, channels × H × W) for a dense kh × kw
 * window (stride 1, no padding, no dilation; out_h = H − kh + 1, out_w = W − kw + 1): patch row
 * k = (c·kh + i)·kw + j of example n, at dst + k·ldk + n·out_h·out_w, holds the input under entry (i, j)
 * of every output position. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_im2col_dense(const float *x, ptrdiff_t rows, ptrdiff_t input_size, ptrdiff_t channels,
                                                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t out_h,
                                                     ptrdiff_t out_w, float *dst, ptrdiff_t ldk);

/* Its adjoint: dx (H × W, overwritten) = the sum over the patch rows at src + (i·kw + j)·ldk of their
 * entries at their input positions, added in patch order. `scratch`: H·W floats. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_col2im_stride2(const float *src, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                                       ptrdiff_t sh, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw,
                                                       ptrdiff_t out_h, ptrdiff_t out_w, ptrdiff_t ldk, float *dx, float *scratch);

/* 2×2 max-pooling of one plane without padding or dilation, strides sh, sw: y[oh·out_w + ow] = the first
 * maximum in row-major order of the window at (oh·sh, ow·sw) (a later entry wins only when greater, so a
 * NaN in the first position stays), and argmax (when not NULL) its in-plane index plus `offset`. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_maxpool2x2_plane(const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w,
                                                         ptrdiff_t sh, ptrdiff_t sw, float *y, int32_t *argmax, int32_t offset);

/* count seeded standard normals: out[j] = word j mod 2 of block first_block + j/2 of Philox4x32-10 at counter
 * (example low, example high, stream, block) under key (seed low, seed high), through Box–Muller on the
 * block's two 53-bit uniforms, rounded to float. Computed with IEEE operations only (no libm), so every
 * variant and CPU gives the same bits; swiftattr_normal_pair gives the same pair in double. */
SWIFTATTR_KERNELS_HIDDEN void swiftattr_normals(uint64_t seed, uint64_t example, uint32_t stream, uint32_t first_block,
                                                ptrdiff_t count, float *out);
SWIFTATTR_KERNELS_HIDDEN void swiftattr_normal_pair(uint64_t seed, uint64_t example, uint32_t stream, uint32_t block,
                                                    double *z);

/* One optimiser step over n elements, in place: parameters p, gradients g and the state (Adam's moments m and
 * v; SGD's momentum buffer u). Adam (torch.optim.Adam): d = g + λp; m = β₁m + (1 − β₁)d;
 * v = β₂v + (1 − β₂)d·d; p = p − step_size·m / (√v / root_c2 + ε). SGD: d = g + λp; u = μu + d (u = d when
 * μ = 0); p = p − lr·u. Each element alone, in that order: the same bits for any split and variant. Returns
 * bit 0 set when some gradient, bit 1 when some updated parameter is not finite. */
SWIFTATTR_KERNELS_HIDDEN int swiftattr_adam(float *p, const float *g, float *m, float *v, ptrdiff_t n, float b1, float b2,
                                            float eps, float step_size, float root_c2, float lambda);
SWIFTATTR_KERNELS_HIDDEN int swiftattr_sgd(float *p, const float *g, float *u, ptrdiff_t n, float lr, float mu, float lambda);

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC 2011; Random123's constants) of the counter c[0..3] under the
 * key (k0, k1), in place: the one definition behind every seeded draw (Swift's CounterRandom.philox and the
 * normals above call it). Inline, so it costs no call from Swift or C. */
static inline void swiftattr_philox4x32(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n1 = (uint32_t)p1;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1, n3 = (uint32_t)p0;
        c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
    }
}

/* One spin-wait step (x86 `pause`, aarch64 `yield`): tells the core a thread is polling a flag, so a
 * sibling hyperthread runs faster and the loop draws less power. Used by the worker pool's bounded spin. */
static inline void swiftattr_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
