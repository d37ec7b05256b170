/*
 * kernels.c — the loops of swiftattr_kernels.h, written once as plain C the compiler vectorises, compiled
 * per instruction set and dispatched once (see the header).
 *
 * Contraction into FMA is off: the AVX2 and AVX-512 variants then round exactly as the baseline does, so
 * every variant gives the same bits (the Winograd transforms add and subtract only; their order is that
 * of Winograd.swift's error analysis: left to right as written).
 */
#include "swiftattr_kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

#define BODY static inline __attribute__((always_inline))

/* `for (ptrdiff_t i = lo; i < hi; i++) body` for the short loops over one row (a row of tiles or of
 * outputs: 4 to 32 entries): vectorised at the widest of 16, 8 or 4 lanes that divides the trip count, so a
 * row of 8 does not fall through a 16-lane loop into its scalar remainder. */
#define ROW_LOOP(i, lo, hi, ...)                                                                                        \
    do {                                                                                                                \
        const ptrdiff_t row_lo_ = (lo), row_hi_ = (hi), row_n_ = row_hi_ - row_lo_;                                     \
        if (row_n_ % 16 == 0) {                                                                                         \
            _Pragma("clang loop vectorize_width(16) interleave_count(1)")                                              \
            for (ptrdiff_t i = row_lo_; i < row_hi_; i++) __VA_ARGS__                                                  \
        } else if (row_n_ % 8 == 0) {                                                                                   \
            _Pragma("clang loop vectorize_width(8) interleave_count(1)")                                               \
            for (ptrdiff_t i = row_lo_; i < row_hi_; i++) __VA_ARGS__                                                  \
        } else {                                                                                                        \
            _Pragma("clang loop vectorize_width(4) interleave_count(1)")                                               \
            for (ptrdiff_t i = row_lo_; i < row_hi_; i++) __VA_ARGS__                                                  \
        }                                                                                                               \
    } while (0)

/* --- the loops --- */

/* n floats of zeros (no call for none). */
BODY void zero(float *p, ptrdiff_t n) {
    if (n > 0) memset(p, 0, (size_t)n * sizeof(float));
}

BODY void winograd_input_body(const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t th,
                              ptrdiff_t tw, float *v, ptrdiff_t xs, float *scratch) {
    /* The zero-padded plane's 2·th + 2 rows of L = 2·tw + 2 columns, split by row parity (P0: even rows, P1:
     * odd rows) and then by column parity (X_pe, X_po: rows of n1 = tw + 1), so that every step below but
     * the last is one long contiguous loop over a whole plane (the loops stay long whatever the plane's
     * width, which keeps wide vectors busy). The arithmetic, and its order, is that of Winograd.swift. */
    const ptrdiff_t L = 2 * tw + 2, n1 = tw + 1, rows = th + 1, count = rows * n1;
    float *P0 = scratch, *P1 = P0 + rows * L;
    float *X = P1 + rows * L;                 /* X + (2p + q)·(count + 1): row parity p, column parity q */
    float *R = X + 4 * (count + 1);           /* R + (2j + p)·count: R_j of the rows of parity p */
    for (ptrdiff_t r = 0; r < 2 * th + 2; r++) {
        float *dst = ((r & 1) ? P1 : P0) + (r >> 1) * L;
        const ptrdiff_t ih = r - ph;
        if (ih < 0 || ih >= H) { memset(dst, 0, (size_t)L * sizeof(float)); continue; }
        const ptrdiff_t left = pw < L ? pw : L, right = pw + W < L ? pw + W : L;
        memset(dst, 0, (size_t)left * sizeof(float));
        if (right > left) memcpy(dst + left, x + ih * W + (left - pw), (size_t)(right - left) * sizeof(float));
        memset(dst + right, 0, (size_t)(L - right) * sizeof(float));
    }
    for (ptrdiff_t p = 0; p < 2; p++) {
        const float *restrict src = p ? P1 : P0;
        float *restrict e = X + 2 * p * (count + 1), *restrict o = e + count + 1;
        for (ptrdiff_t k = 0; k < count; k++) {
            e[k] = src[2 * k];
            o[k] = src[2 * k + 1];
        }
        e[count] = 0;
        o[count] = 0;
    }
    /* B along each padded row: tile b's four column combinations of the row's entries q0..q3 (columns
     * 2b ..< 2b + 4: even[b], odd[b], even[b + 1], odd[b + 1]) are q0 − q2, q1 + q2, q2 − q1, q1 − q3 (R_j).
     * Column tw of each row of R is not a tile (it reads the next row): never read below. */
    for (ptrdiff_t p = 0; p < 2; p++) {
        const float *restrict e = X + 2 * p * (count + 1), *restrict o = e + count + 1;
        float *restrict R0 = R + p * count, *restrict R1 = R + (2 + p) * count;
        float *restrict R2 = R + (4 + p) * count, *restrict R3 = R + (6 + p) * count;
        for (ptrdiff_t k = 0; k < count; k++) {
            const float q0 = e[k], q1 = o[k], q2 = e[k + 1], q3 = o[k + 1];
            R0[k] = q0 - q2;
            R1[k] = q1 + q2;
            R2[k] = q2 - q1;
            R3[k] = q1 - q3;
        }
    }
    /* Bᵀ down the four rows under tile row a (d0..d3: R_j of padded rows 2a ..< 2a + 4, i.e. rows a and
     * a + 1 of the even and the odd plane): V_{4i+j} = d0 − d2, d1 + d2, d2 − d1, d1 − d3. */
    for (ptrdiff_t j = 0; j < 4; j++) {
        const float *Ej = R + 2 * j * count, *Oj = Ej + count;
        for (ptrdiff_t a = 0; a < th; a++) {
            const float *restrict r0 = Ej + a * n1, *restrict r1 = Oj + a * n1;
            const float *restrict r2 = r0 + n1, *restrict r3 = r1 + n1;
            float *restrict v0 = v + j * xs + a * tw, *restrict v1 = v + (4 + j) * xs + a * tw;
            float *restrict v2 = v + (8 + j) * xs + a * tw, *restrict v3 = v + (12 + j) * xs + a * tw;
            ROW_LOOP(b, 0, tw, {
                const float d0 = r0[b], d1 = r1[b], d2 = r2[b], d3 = r3[b];
                v0[b] = d0 - d2;
                v1[b] = d1 + d2;
                v2[b] = d2 - d1;
                v3[b] = d1 - d3;
            });
        }
    }
}

/* y[2b] = even[b], y[2b + 1] = odd[b] for the first `count` entries of y. */
BODY void interleave(const float *restrict even, const float *restrict odd, float *restrict y, ptrdiff_t count) {
    ROW_LOOP(b, 0, count / 2, {
        y[2 * b] = even[b];
        y[2 * b + 1] = odd[b];
    });
    if (count % 2 == 1) y[count - 1] = even[count / 2];
}

BODY void winograd_output_body(const float *m, ptrdiff_t xs, ptrdiff_t th, ptrdiff_t tw, ptrdiff_t Ho, ptrdiff_t Wo,
                               float bias, float *y, float *scratch) {
    /* Y = Aᵀ M A per tile over all th·tw tiles at once: s0 = m0 + m1 + m2 and s1 = m1 − m2 − m3 down the
     * rows, then the same along the columns, plus the bias; then each tile row's two output rows
     * interleaved into y, cropped to Ho × Wo. */
    const ptrdiff_t tiles = th * tw;
    float *restrict y00 = scratch, *restrict y01 = scratch + tiles;
    float *restrict y10 = scratch + 2 * tiles, *restrict y11 = scratch + 3 * tiles;
    const float *restrict m0 = m, *restrict m1 = m + xs, *restrict m2 = m + 2 * xs, *restrict m3 = m + 3 * xs;
    const float *restrict m4 = m + 4 * xs, *restrict m5 = m + 5 * xs, *restrict m6 = m + 6 * xs, *restrict m7 = m + 7 * xs;
    const float *restrict m8 = m + 8 * xs, *restrict m9 = m + 9 * xs, *restrict m10 = m + 10 * xs, *restrict m11 = m + 11 * xs;
    const float *restrict m12 = m + 12 * xs, *restrict m13 = m + 13 * xs, *restrict m14 = m + 14 * xs,
                *restrict m15 = m + 15 * xs;
    for (ptrdiff_t t = 0; t < tiles; t++) {
        const float s00 = m0[t] + m4[t] + m8[t], s01 = m1[t] + m5[t] + m9[t];
        const float s02 = m2[t] + m6[t] + m10[t], s03 = m3[t] + m7[t] + m11[t];
        const float s10 = m4[t] - m8[t] - m12[t], s11 = m5[t] - m9[t] - m13[t];
        const float s12 = m6[t] - m10[t] - m14[t], s13 = m7[t] - m11[t] - m15[t];
        y00[t] = s00 + s01 + s02 + bias;
        y01[t] = s01 - s02 - s03 + bias;
        y10[t] = s10 + s11 + s12 + bias;
        y11[t] = s11 - s12 - s13 + bias;
    }
    for (ptrdiff_t a = 0; a < th; a++) {
        float *top = y + 2 * a * Wo;
        interleave(y00 + a * tw, y01 + a * tw, top, Wo);
        if (2 * a + 1 < Ho) interleave(y10 + a * tw, y11 + a * tw, top + Wo, Wo);
    }
}

/* d[ow] = x[base + ow·sw] for ow in [ow0, ow1); `sw` is a constant where the caller passes one. */
BODY void gather_row(const float *restrict x, ptrdiff_t base, ptrdiff_t sw, ptrdiff_t ow0, ptrdiff_t ow1, float *restrict d) {
    if (sw != 1) {
        /* Strided: scalar (AVX-512's gather is slower than scalar loads here). */
        _Pragma("clang loop vectorize(disable)")
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) d[ow] = x[base + ow * sw];
        return;
    }
    ROW_LOOP(ow, ow0, ow1, { d[ow] = x[base + ow]; });
}

BODY void im2col_body(const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw,
                      ptrdiff_t shift_h, ptrdiff_t shift_w, ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1,
                      float *dst) {
    if (oh0 >= oh1 || ow0 >= ow1) {
        zero(dst, out_h * out_w);
        return;
    }
    zero(dst, oh0 * out_w);
    zero(dst + oh1 * out_w, (out_h - oh1) * out_w);
    for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
        float *d = dst + oh * out_w;
        const ptrdiff_t base = (oh * sh + shift_h) * width + shift_w;
        for (ptrdiff_t ow = 0; ow < ow0; ow++) d[ow] = 0;
        if (sw == 1) gather_row(x, base, 1, ow0, ow1, d);
        else if (sw == 2) gather_row(x, base, 2, ow0, ow1, d);
        else gather_row(x, base, sw, ow0, ow1, d);
        for (ptrdiff_t ow = ow1; ow < out_w; ow++) d[ow] = 0;
    }
}

/* The patch matrix of `rows` examples for a dense window (stride 1, no padding, no dilation): patch row
 * k = (c·kh + i)·kw + j of example n at dst + k·ldk + n·out_h·out_w holds x[n·input_size + c·H·W + (oh + i)·W
 * + ow + j] over the out_h × out_w outputs. Loops over (c, i) and each output row once, and copies that input
 * row's kw shifted runs, so every input row is read from L1. */
BODY void im2col_dense_body(const float *x, ptrdiff_t rows, ptrdiff_t input_size, ptrdiff_t channels, ptrdiff_t H,
                            ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t out_h, ptrdiff_t out_w, float *dst,
                            ptrdiff_t ldk) {
    const ptrdiff_t P = out_h * out_w;
    for (ptrdiff_t n = 0; n < rows; n++) {
        for (ptrdiff_t c = 0; c < channels; c++) {
            for (ptrdiff_t i = 0; i < kh; i++) {
                const float *plane = x + n * input_size + c * H * W + i * W;
                float *patch = dst + (c * kh + i) * kw * ldk + n * P;
                for (ptrdiff_t oh = 0; oh < out_h; oh++) {
                    const float *restrict src = plane + oh * W;
                    for (ptrdiff_t j = 0; j < kw; j++) {
                        float *restrict d = patch + j * ldk + oh * out_w;
                        ROW_LOOP(ow, 0, out_w, { d[ow] = src[ow + j]; });
                    }
                }
            }
        }
    }
}

/* dx[base + ow·sw] += s[ow] for ow in [ow0, ow1). */
BODY void scatter_add_row(const float *restrict s, ptrdiff_t base, ptrdiff_t sw, ptrdiff_t ow0, ptrdiff_t ow1, float *restrict dx) {
    if (sw != 1) {
        _Pragma("clang loop vectorize(disable)")
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) dx[base + ow * sw] += s[ow];
        return;
    }
    ROW_LOOP(ow, ow0, ow1, { dx[base + ow] += s[ow]; });
}

BODY void col2im_body(const float *src, ptrdiff_t width, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t shift_h,
                      ptrdiff_t shift_w, ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, float *dx) {
    if (ow0 >= ow1) return;
    for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
        const float *s = src + oh * out_w;
        const ptrdiff_t base = (oh * sh + shift_h) * width + shift_w;
        if (sw == 1) scatter_add_row(s, base, 1, ow0, ow1, dx);
        else if (sw == 2) scatter_add_row(s, base, 2, ow0, ow1, dx);
        else scatter_add_row(s, base, sw, ow0, ow1, dx);
    }
}

/* Outputs o of `count` whose input position o·stride + shift lies inside [0, extent): [*first, *last). */
BODY void valid_range(ptrdiff_t shift, ptrdiff_t stride, ptrdiff_t extent, ptrdiff_t count, ptrdiff_t *first, ptrdiff_t *last) {
    const ptrdiff_t f = shift >= 0 ? 0 : (-shift + stride - 1) / stride, limit = extent - shift;
    ptrdiff_t l = limit <= 0 ? 0 : (limit + stride - 1) / stride;
    if (l > count) l = count;
    *first = f;
    *last = l > f ? l : f;
}

/* The columns of one H × W plane split by parity: even (rows of we = ⌈W/2⌉) and odd (rows of wo = ⌊W/2⌋). */
BODY void split_columns(const float *restrict x, ptrdiff_t H, ptrdiff_t W, float *restrict even, float *restrict odd) {
    const ptrdiff_t we = (W + 1) / 2, wo = W / 2;
    if (W % 2 == 0) {
        for (ptrdiff_t t = 0; t < H * wo; t++) {
            even[t] = x[2 * t];
            odd[t] = x[2 * t + 1];
        }
        return;
    }
    for (ptrdiff_t r = 0; r < H; r++) {
        for (ptrdiff_t q = 0; q < wo; q++) {
            even[r * we + q] = x[r * W + 2 * q];
            odd[r * wo + q] = x[r * W + 2 * q + 1];
        }
        even[r * we + wo] = x[r * W + W - 1];
    }
}

/* Column stride 2: each patch entry's row reads every other input column, i.e. a contiguous run of the
 * plane's even or odd columns (by the parity of its column shift), so the plane is split once and every
 * entry copies runs (no gathers). */
BODY void im2col_stride2_body(const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh,
                              ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t out_h, ptrdiff_t out_w,
                              float *dst, ptrdiff_t ldk, float *scratch) {
    const ptrdiff_t we = (W + 1) / 2, wo = W / 2;
    float *even = scratch, *odd = scratch + H * we;
    split_columns(x, H, W, even, odd);
    for (ptrdiff_t i = 0; i < kh; i++) {
        ptrdiff_t oh0, oh1;
        const ptrdiff_t shift_h = i * dh - ph;
        valid_range(shift_h, sh, H, out_h, &oh0, &oh1);
        for (ptrdiff_t j = 0; j < kw; j++) {
            float *d = dst + (i * kw + j) * ldk;
            ptrdiff_t ow0, ow1;
            const ptrdiff_t shift_w = j * dw - pw;
            valid_range(shift_w, 2, W, out_w, &ow0, &ow1);
            if (oh0 >= oh1 || ow0 >= ow1) {
                zero(d, out_h * out_w);
                continue;
            }
            zero(d, oh0 * out_w);
            zero(d + oh1 * out_w, (out_h - oh1) * out_w);
            /* input column 2·ow + shift_w = 2·(ow + half) + parity */
            const ptrdiff_t parity = shift_w & 1, half = (shift_w - parity) / 2, width = parity ? wo : we;
            const float *plane = parity ? odd : even;
            for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
                float *restrict row = d + oh * out_w;
                /* from ow0, so no pointer before the plane is formed (half < 0 with padding ≥ 2) */
                const float *restrict src = plane + (oh * sh + shift_h) * width + (half + ow0);
                float *restrict dst = row + ow0;
                for (ptrdiff_t ow = 0; ow < ow0; ow++) row[ow] = 0;
                ROW_LOOP(ow, 0, ow1 - ow0, { dst[ow] = src[ow]; });
                for (ptrdiff_t ow = ow1; ow < out_w; ow++) row[ow] = 0;
            }
        }
    }
}

/* The adjoint: sums every patch entry of the channel onto its even and odd columns, in patch order (the
 * order of the plain col2im, so the same bits), then interleaves them into dx (overwritten). */
BODY void col2im_stride2_body(const float *src, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh,
                              ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t out_h, ptrdiff_t out_w,
                              ptrdiff_t ldk, float *dx, float *scratch) {
    const ptrdiff_t we = (W + 1) / 2, wo = W / 2;
    float *even = scratch, *odd = scratch + H * we;
    zero(scratch, H * W);
    for (ptrdiff_t i = 0; i < kh; i++) {
        ptrdiff_t oh0, oh1;
        const ptrdiff_t shift_h = i * dh - ph;
        valid_range(shift_h, sh, H, out_h, &oh0, &oh1);
        for (ptrdiff_t j = 0; j < kw; j++) {
            const float *s = src + (i * kw + j) * ldk;
            ptrdiff_t ow0, ow1;
            const ptrdiff_t shift_w = j * dw - pw;
            valid_range(shift_w, 2, W, out_w, &ow0, &ow1);
            if (ow0 >= ow1) continue;
            const ptrdiff_t parity = shift_w & 1, half = (shift_w - parity) / 2, width = parity ? wo : we;
            float *plane = parity ? odd : even;
            for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
                const float *restrict row = s + oh * out_w + ow0;
                float *restrict d = plane + (oh * sh + shift_h) * width + (half + ow0);
                ROW_LOOP(ow, 0, ow1 - ow0, { d[ow] += row[ow]; });
            }
        }
    }
    if (W % 2 == 0) {
        const float *restrict e = even, *restrict o = odd;
        float *restrict y = dx;
        for (ptrdiff_t t = 0; t < H * wo; t++) {
            y[2 * t] = e[t];
            y[2 * t + 1] = o[t];
        }
        return;
    }
    for (ptrdiff_t r = 0; r < H; r++) {
        for (ptrdiff_t q = 0; q < wo; q++) {
            dx[r * W + 2 * q] = even[r * we + q];
            dx[r * W + 2 * q + 1] = odd[r * wo + q];
        }
        dx[r * W + W - 1] = even[r * we + wo];
    }
}

/* One output row of 2×2 max-pooling (rows r0 and r0 + width of the window). */
BODY void maxpool_row(const float *restrict r0, ptrdiff_t width, ptrdiff_t base, ptrdiff_t out_w, ptrdiff_t sw,
                      float *restrict y, int32_t *restrict argmax, int32_t offset) {
    const float *restrict r1 = r0 + width;
    if (argmax) {
        ROW_LOOP(ow, 0, out_w, {
            const ptrdiff_t i = ow * sw;
            float best = r0[i];
            int32_t at = (int32_t)(base + i);
            const float b = r0[i + 1], c = r1[i], d = r1[i + 1];
            if (b > best) { best = b; at = (int32_t)(base + i + 1); }
            if (c > best) { best = c; at = (int32_t)(base + i + width); }
            if (d > best) { best = d; at = (int32_t)(base + i + width + 1); }
            y[ow] = best;
            argmax[ow] = offset + at;
        });
    } else {
        ROW_LOOP(ow, 0, out_w, {
            const ptrdiff_t i = ow * sw;
            float best = r0[i];
            const float b = r0[i + 1], c = r1[i], d = r1[i + 1];
            best = b > best ? b : best;
            best = c > best ? c : best;
            best = d > best ? d : best;
            y[ow] = best;
        });
    }
}

BODY void maxpool_body(const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw,
                       float *y, int32_t *argmax, int32_t offset) {
    for (ptrdiff_t oh = 0; oh < out_h; oh++) {
        const ptrdiff_t base = oh * sh * width;
        int32_t *a = argmax ? argmax + oh * out_w : NULL;
        if (sw == 2) maxpool_row(x + base, width, base, out_w, 2, y + oh * out_w, a, offset);
        else maxpool_row(x + base, width, base, out_w, sw, y + oh * out_w, a, offset);
    }
}

/* --- seeded standard normals: Philox4x32-10 and Box–Muller, one block per loop iteration --- */

/* An integer 0 ≤ m < 2⁵³ as a double, exactly (x86-64 has no vector uint64 → double conversion below
 * AVX-512DQ): m's low 52 bits under the exponent of 2⁵², minus 2⁵², plus 2⁵² when bit 52 is set. */
BODY double exact_double(uint64_t m) {
    union { uint64_t u; double d; } v = { .u = (m & 0x000FFFFFFFFFFFFFull) | 0x4330000000000000ull };
    return (v.d - 0x1p52) + (double)(int32_t)(m >> 52) * 0x1p52;
}

/* ln y for 2⁻⁵³ ≤ y ≤ 1: y = 2ᵉ·m with m in [√½, √2), ln y = e·ln 2 + 2 atanh(s), s = (m − 1)/(m + 1),
 * |s| ≤ 0.1716, atanh by its series to s¹⁹ (truncation below 2⁻⁵² relative); ln 2 in two parts.
 * Relative error a few ulps of double. */
BODY double log_unit(double y) {
    union { double d; uint64_t u; } v = { .d = y };
    int64_t e = (int64_t)((v.u >> 52) & 0x7FF) - 1023;
    v.u = (v.u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull; /* m in [1, 2) */
    double m = v.d;
    const int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    e += big;
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 19;
    p = p * s2 + 1.0 / 17; p = p * s2 + 1.0 / 15; p = p * s2 + 1.0 / 13; p = p * s2 + 1.0 / 11;
    p = p * s2 + 1.0 / 9; p = p * s2 + 1.0 / 7; p = p * s2 + 1.0 / 5; p = p * s2 + 1.0 / 3;
    const double ed = (double)e;
    return ed * 6.93147180369123816490e-01 + (ed * 1.90821492927058770002e-10 + (2 * s + 2 * s * (s2 * p)));
}

/* The two standard normals of block `block` of (seed, example, stream): uniforms u₀, u₁ of 53 bits from the
 * block's words, r = √(−2 ln(1 − u₀)), θ = 2π u₁, (r cos θ, r sin θ). The angle is reduced exactly: 4u₁ = q + f
 * with q the nearest integer and |f| ≤ ½, θ = (π/2)(q + f), sin and cos of a = (π/2) f (|a| ≤ π/4) by their
 * Taylor series to a¹⁷ and a¹⁸ (truncation below 2⁻⁵⁴), then rotated by the quadrant q mod 4. Only IEEE
 * operations in a fixed order (no libm): the same bits on every CPU and in every variant. */
BODY void normal_pair(uint64_t seed, uint64_t example, uint32_t stream, uint32_t block, double *z0, double *z1) {
    uint32_t c[4] = { (uint32_t)example, (uint32_t)(example >> 32), stream, block };
    swiftattr_philox4x32(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    const double u0 = exact_double(((uint64_t)c[0] << 32 | c[1]) >> 11) * 0x1p-53;
    const double u1 = exact_double(((uint64_t)c[2] << 32 | c[3]) >> 11) * 0x1p-53;
    const double r = __builtin_elementwise_sqrt(-2.0 * log_unit(1.0 - u0)); /* IEEE sqrt, no errno */
    const double t = 4.0 * u1;
    const double q = (t + 0x1.8p52) - 0x1.8p52; /* nearest integer, ties to even */
    const double a = (t - q) * 1.57079632679489661923, a2 = a * a;
    double sp = 1.0 / 355687428096000.0;                               /* 1/17! */
    sp = sp * a2 - 1.0 / 1307674368000.0; sp = sp * a2 + 1.0 / 6227020800.0; sp = sp * a2 - 1.0 / 39916800.0;
    sp = sp * a2 + 1.0 / 362880.0; sp = sp * a2 - 1.0 / 5040.0; sp = sp * a2 + 1.0 / 120.0; sp = sp * a2 - 1.0 / 6.0;
    const double sin_a = a + a * (a2 * sp);
    double cp = 1.0 / 6402373705728000.0;                              /* 1/18! */
    cp = cp * a2 - 1.0 / 20922789888000.0; cp = cp * a2 + 1.0 / 87178291200.0; cp = cp * a2 - 1.0 / 479001600.0;
    cp = cp * a2 + 1.0 / 3628800.0; cp = cp * a2 - 1.0 / 40320.0; cp = cp * a2 + 1.0 / 720.0; cp = cp * a2 - 1.0 / 24.0;
    cp = cp * a2 + 0.5;
    const double cos_a = 1.0 - a2 * cp;
    const int quadrant = (int)q & 3;
    const double cos_t = quadrant == 0 ? cos_a : quadrant == 1 ? -sin_a : quadrant == 2 ? -cos_a : sin_a;
    const double sin_t = quadrant == 0 ? sin_a : quadrant == 1 ? cos_a : quadrant == 2 ? -sin_a : -cos_a;
    *z0 = r * cos_t;
    *z1 = r * sin_t;
}

/* count normals: out[j] = (float) word j mod 2 of block first_block + j/2 (the blocks' pairs in order). */
BODY void normals_body(uint64_t seed, uint64_t example, uint32_t stream, uint32_t first_block, ptrdiff_t count,
                       float *out) {
    enum { GROUP = 256 };
    const ptrdiff_t pairs = count / 2;
    for (ptrdiff_t g = 0; g < pairs; g += GROUP) {
        const ptrdiff_t n = pairs - g < GROUP ? pairs - g : GROUP;
        float a[GROUP], b[GROUP];
        for (ptrdiff_t i = 0; i < n; i++) {
            double z0, z1;
            normal_pair(seed, example, stream, first_block + (uint32_t)(g + i), &z0, &z1);
            a[i] = (float)z0;
            b[i] = (float)z1;
        }
        float *restrict o = out + 2 * g;
        for (ptrdiff_t i = 0; i < n; i++) {
            o[2 * i] = a[i];
            o[2 * i + 1] = b[i];
        }
    }
    if (count & 1) {
        double z0, z1;
        normal_pair(seed, example, stream, first_block + (uint32_t)pairs, &z0, &z1);
        out[count - 1] = (float)z0;
    }
}

/* --- optimiser steps (torch.optim's rules), one element at a time in a fixed operation order --- */

/* 1 when x is ±∞ or NaN (its exponent bits all set): an integer test, so the flag's reduction vectorises. */
BODY int32_t non_finite(float x) {
    union { float f; uint32_t u; } v = { .f = x };
    return (v.u & 0x7F800000u) == 0x7F800000u;
}

/* torch.optim.Adam: d = g + λp; m = β₁m + (1 − β₁)d; v = β₂v + (1 − β₂)d·d; p = p − s·m / (√v / √c₂ + ε),
 * s = lr / c₁. Bit 0 of the result: some g is not finite; bit 1: some updated p is not finite. */
BODY int adam_body(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, ptrdiff_t n,
                   float b1, float b2, float eps, float step_size, float root_c2, float lambda) {
    int32_t g_bad = 0, p_bad = 0;
    const float a1 = 1 - b1, a2 = 1 - b2;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float gi = g[i], pi = p[i];
        const float d = gi + lambda * pi;
        const float mi = b1 * m[i] + a1 * d;
        const float vi = b2 * v[i] + a2 * d * d;
        m[i] = mi;
        v[i] = vi;
        const float updated = pi - step_size * mi / (__builtin_elementwise_sqrt(vi) / root_c2 + eps);
        p[i] = updated;
        g_bad |= non_finite(gi);
        p_bad |= non_finite(updated);
    }
    return (g_bad ? 1 : 0) | (p_bad ? 2 : 0);
}

/* torch.optim.SGD (dampening 0, no Nesterov): d = g + λp; u = μu + d (u = d when μ = 0); p = p − lr·u. */
BODY int sgd_body(float *restrict p, const float *restrict g, float *restrict u, ptrdiff_t n, float lr, float mu,
                  float lambda) {
    int32_t g_bad = 0, p_bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float gi = g[i], pi = p[i];
        const float d = gi + lambda * pi;
        const float ui = mu == 0 ? d : mu * u[i] + d;
        u[i] = ui;
        const float updated = pi - lr * ui;
        p[i] = updated;
        g_bad |= non_finite(gi);
        p_bad |= non_finite(updated);
    }
    return (g_bad ? 1 : 0) | (p_bad ? 2 : 0);
}

/* --- one instance of every loop per instruction set --- */

#define WINOGRAD_INPUT_ARGS const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t th, ptrdiff_t tw, \
    float *v, ptrdiff_t xs, float *scratch
#define WINOGRAD_OUTPUT_ARGS const float *m, ptrdiff_t xs, ptrdiff_t th, ptrdiff_t tw, ptrdiff_t Ho, ptrdiff_t Wo, float bias, \
    float *y, float *scratch
#define IM2COL_ARGS const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw, \
    ptrdiff_t shift_h, ptrdiff_t shift_w, ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, float *dst
#define COL2IM_ARGS const float *src, ptrdiff_t width, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t shift_h, \
    ptrdiff_t shift_w, ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, float *dx
#define STRIDE2_ARGS const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t ph, \
    ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t out_h, ptrdiff_t out_w
#define DENSE_ARGS const float *x, ptrdiff_t rows, ptrdiff_t input_size, ptrdiff_t channels, ptrdiff_t H, ptrdiff_t W, \
    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t out_h, ptrdiff_t out_w, float *dst, ptrdiff_t ldk
#define ADAM_ARGS float *p, const float *g, float *m, float *v, ptrdiff_t n, float b1, float b2, float eps, \
    float step_size, float root_c2, float lambda
#define SGD_ARGS float *p, const float *g, float *u, ptrdiff_t n, float lr, float mu, float lambda
#define NORMALS_ARGS uint64_t seed, uint64_t example, uint32_t stream, uint32_t first_block, ptrdiff_t count, float *out
#define MAXPOOL_ARGS const float *x, ptrdiff_t width, ptrdiff_t out_h, ptrdiff_t out_w, ptrdiff_t sh, ptrdiff_t sw, float *y, \
    int32_t *argmax, int32_t offset

typedef struct {
    const char *name;
    void (*winograd_input)(WINOGRAD_INPUT_ARGS);
    void (*winograd_output)(WINOGRAD_OUTPUT_ARGS);
    void (*im2col)(IM2COL_ARGS);
    void (*col2im)(COL2IM_ARGS);
    void (*maxpool)(MAXPOOL_ARGS);
    void (*im2col_stride2)(STRIDE2_ARGS, float *dst, ptrdiff_t ldk, float *scratch);
    void (*col2im_stride2)(STRIDE2_ARGS, ptrdiff_t ldk, float *dx, float *scratch);
    void (*normals)(NORMALS_ARGS);
    void (*im2col_dense)(DENSE_ARGS);
    int (*adam)(ADAM_ARGS);
    int (*sgd)(SGD_ARGS);
} kernel_table;

#define VARIANT(suffix, attributes)                                                                                     \
    attributes static void winograd_input_##suffix(WINOGRAD_INPUT_ARGS) {                                               \
        winograd_input_body(x, H, W, ph, pw, th, tw, v, xs, scratch);                                                   \
    }                                                                                                                   \
    attributes static void winograd_output_##suffix(WINOGRAD_OUTPUT_ARGS) {                                             \
        winograd_output_body(m, xs, th, tw, Ho, Wo, bias, y, scratch);                                                  \
    }                                                                                                                   \
    attributes static void im2col_##suffix(IM2COL_ARGS) {                                                               \
        im2col_body(x, width, out_h, out_w, sh, sw, shift_h, shift_w, oh0, oh1, ow0, ow1, dst);                         \
    }                                                                                                                   \
    attributes static void col2im_##suffix(COL2IM_ARGS) {                                                               \
        col2im_body(src, width, out_w, sh, sw, shift_h, shift_w, oh0, oh1, ow0, ow1, dx);                               \
    }                                                                                                                   \
    attributes static void maxpool_##suffix(MAXPOOL_ARGS) { maxpool_body(x, width, out_h, out_w, sh, sw, y, argmax, offset); } \
    attributes static void im2col_stride2_##suffix(STRIDE2_ARGS, float *dst, ptrdiff_t ldk, float *scratch) {           \
        im2col_stride2_body(x, H, W, kh, kw, sh, ph, pw, dh, dw, out_h, out_w, dst, ldk, scratch);                      \
    }                                                                                                                   \
    attributes static void col2im_stride2_##suffix(STRIDE2_ARGS, ptrdiff_t ldk, float *dx, float *scratch) {           \
        col2im_stride2_body(x, H, W, kh, kw, sh, ph, pw, dh, dw, out_h, out_w, ldk, dx, scratch);                       \
    }                                                                                                                   \
    attributes static void normals_##suffix(NORMALS_ARGS) { normals_body(seed, example, stream, first_block, count, out); } \
    attributes static void im2col_dense_##suffix(DENSE_ARGS) {                                                          \
        im2col_dense_body(x, rows, input_size, channels, H, W, kh, kw, out_h, out_w, dst, ldk);                         \
    }                                                                                                                   \
    attributes static int adam_##suffix(ADAM_ARGS) { return adam_body(p, g, m, v, n, b1, b2, eps, step_size, root_c2, lambda); } \
    attributes static int sgd_##suffix(SGD_ARGS) { return sgd_body(p, g, u, n, lr, mu, lambda); }

#define TABLE(suffix, label)                                                                                            \
    { label, winograd_input_##suffix, winograd_output_##suffix, im2col_##suffix, col2im_##suffix, maxpool_##suffix,     \
      im2col_stride2_##suffix, col2im_stride2_##suffix, normals_##suffix,            \
      im2col_dense_##suffix, adam_##suffix, sgd_##suffix }

VARIANT(baseline, )
#if defined(__x86_64__)
VARIANT(avx2, __attribute__((target("avx2,fma"))))
VARIANT(avx512, __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))))
/* Index order: each entry needs everything the one before it needs. */
static const kernel_table tables[] = { TABLE(baseline, "default"), TABLE(avx2, "avx2"), TABLE(avx512, "avx512f") };
#else
static const kernel_table tables[] = { TABLE(baseline, "default") };
#endif
enum { TABLE_COUNT = sizeof(tables) / sizeof(tables[0]) };

/* --- dispatch --- */

/* The widest table this CPU runs. */
static int widest_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

static int table_index(const char *isa) {
    if (!isa) return -1;
    for (int i = 0; i < TABLE_COUNT; i++)
        if (strcmp(tables[i].name, isa) == 0) return i;
#if !defined(__x86_64__)
    /* The x86 names are valid everywhere (a portable SWIFTATTR_ISA setting); they cap to "default". */
    if (strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512f") == 0) return 0;
#endif
    return -1;
}

static _Atomic(const kernel_table *) active = NULL;

static const kernel_table *current(void) {
    const kernel_table *t = atomic_load_explicit(&active, memory_order_acquire);
    if (t) return t;
    /* Racing first calls compute the same table. An unknown SWIFTATTR_ISA is ignored. */
    int chosen = widest_supported(), requested = table_index(getenv("SWIFTATTR_ISA"));
    if (requested >= 0 && requested < chosen) chosen = requested;
    t = &tables[chosen];
    atomic_store_explicit(&active, t, memory_order_release);
    return t;
}

const char *swiftattr_kernels_isa(void) { return current()->name; }

const char *swiftattr_kernels_select(const char *isa) {
    int requested = table_index(isa), widest = widest_supported();
    if (requested < 0) return NULL;
    const kernel_table *t = &tables[requested < widest ? requested : widest];
    atomic_store_explicit(&active, t, memory_order_release);
    return t->name;
}

int swiftattr_kernels_supported(const char *isa) {
    int i = table_index(isa);
    return i >= 0 && i <= widest_supported() && strcmp(tables[i].name, isa) == 0;
}

/* --- the entry points --- */

ptrdiff_t swiftattr_winograd_input_scratch(ptrdiff_t th, ptrdiff_t tw) {
    return 2 * (th + 1) * (2 * tw + 2) + 4 * ((th + 1) * (tw + 1) + 1) + 8 * (th + 1) * (tw + 1);
}

ptrdiff_t swiftattr_winograd_output_scratch(ptrdiff_t th, ptrdiff_t tw) { return 4 * th * tw; }

void swiftattr_winograd_input(WINOGRAD_INPUT_ARGS) { current()->winograd_input(x, H, W, ph, pw, th, tw, v, xs, scratch); }

void swiftattr_winograd_output(WINOGRAD_OUTPUT_ARGS) { current()->winograd_output(m, xs, th, tw, Ho, Wo, bias, y, scratch); }

void swiftattr_im2col_plane(IM2COL_ARGS) {
    current()->im2col(x, width, out_h, out_w, sh, sw, shift_h, shift_w, oh0, oh1, ow0, ow1, dst);
}

void swiftattr_col2im_plane(COL2IM_ARGS) {
    current()->col2im(src, width, out_w, sh, sw, shift_h, shift_w, oh0, oh1, ow0, ow1, dx);
}

void swiftattr_im2col_stride2(STRIDE2_ARGS, float *dst, ptrdiff_t ldk, float *scratch) {
    current()->im2col_stride2(x, H, W, kh, kw, sh, ph, pw, dh, dw, out_h, out_w, dst, ldk, scratch);
}

void swiftattr_col2im_stride2(STRIDE2_ARGS, ptrdiff_t ldk, float *dx, float *scratch) {
    current()->col2im_stride2(x, H, W, kh, kw, sh, ph, pw, dh, dw, out_h, out_w, ldk, dx, scratch);
}

void swiftattr_maxpool2x2_plane(MAXPOOL_ARGS) { current()->maxpool(x, width, out_h, out_w, sh, sw, y, argmax, offset); }

void swiftattr_normals(NORMALS_ARGS) { current()->normals(seed, example, stream, first_block, count, out); }

void swiftattr_normal_pair(uint64_t seed, uint64_t example, uint32_t stream, uint32_t block, double *z) {
    normal_pair(seed, example, stream, block, &z[0], &z[1]);
}

void swiftattr_im2col_dense(DENSE_ARGS) {
    current()->im2col_dense(x, rows, input_size, channels, H, W, kh, kw, out_h, out_w, dst, ldk);
}

int swiftattr_adam(ADAM_ARGS) { return current()->adam(p, g, m, v, n, b1, b2, eps, step_size, root_c2, lambda); }

int swiftattr_sgd(SGD_ARGS) { return current()->sgd(p, g, u, n, lr, mu, lambda); }
