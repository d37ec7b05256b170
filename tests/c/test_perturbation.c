/*
 * test_perturbation.c — the perturbation methods through the C interface: closed forms on a linear model
 * (occlusion, feature ablation), efficiency of Shapley sampling and KernelSHAP, exact KernelSHAP by
 * enumeration against Shapley sampling over every permutation, seeded draws independent of
 * internal_batch_size, and argument errors.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define C 1
#define HH 4
#define WW 4
#define D (C * HH * WW)
#define K 2

/* Linear model on 1x4x4: flatten, dense 16 -> 2. */
static sa_model *linear(float *w, float *bias) {
    int64_t shape[3] = {C, HH, WW};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 3, &m));
    EXPECT_OK(sa_model_add_flatten(m));
    EXPECT_OK(sa_model_add_dense(m, w, K, D, bias));
    return m;
}

/* Nonlinear model on 4 features: dense 4 -> 6, tanh, dense 6 -> 2. */
static sa_model *small_mlp(void) {
    float w1[6 * 4], b1[6], w2[2 * 6];
    for (int i = 0; i < 24; i++) w1[i] = (float)sin(0.9 * i + 0.3);
    for (int i = 0; i < 6; i++) b1[i] = 0.2f * (float)cos(i);
    for (int i = 0; i < 12; i++) w2[i] = (float)cos(0.5 * i + 0.1);
    int64_t shape[1] = {4};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, 6, 4, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, 2, 6, NULL));
    return m;
}

int main(void) {
    float w[K * D], bias[K], x[2 * D], b[D], out[2 * D], out2[2 * D];
    fill(w, K * D, 1.0f);
    fill(bias, K, 0.5f);
    fill(x, 2 * D, 1.0f);
    fill(b, D, 0.3f);
    sa_model *m = linear(w, bias);
    int64_t target[2] = {1, 0};

    /* Occlusion with 2x2 windows, stride 2: each element is in one window, whose sum of w (x - b) it gets. */
    int64_t window[3] = {1, 2, 2}, strides[3] = {1, 2, 2};
    EXPECT_OK(sa_occlusion(m, x, 2, b, 1, target, 2, window, strides, 3, 0, out));
    for (int i = 0; i < 2; i++) {
        for (int h = 0; h < HH; h++) {
            for (int v = 0; v < WW; v++) {
                double s = 0;
                for (int p = h / 2 * 2; p < h / 2 * 2 + 2; p++)
                    for (int q = v / 2 * 2; q < v / 2 * 2 + 2; q++)
                        s += (double)w[target[i] * D + p * WW + q] * (x[i * D + p * WW + q] - b[p * WW + q]);
                /* float32 forward of 16 terms of magnitude <= 2: 1e-5 */
                CHECK(fabs(out[i * D + h * WW + v] - s) <= 1e-5, "occlusion %d,%d,%d: %g vs %g", i, h, v, out[i * D + h * WW + v], s);
            }
        }
    }
    /* Feature ablation with the same 2x2 blocks as a shared mask equals that occlusion. */
    int64_t mask[D];
    for (int h = 0; h < HH; h++)
        for (int v = 0; v < WW; v++) mask[h * WW + v] = h / 2 * 2 + v / 2;
    EXPECT_OK(sa_feature_ablation(m, x, 2, b, 1, target, 2, mask, 1, 0, out2));
    for (int i = 0; i < 2 * D; i++) CHECK(fabsf(out2[i] - out[i]) <= 1e-5f, "ablation = occlusion at %d", i);

    /* Shapley sampling: efficiency, and every permutation of a linear model gives w (x - b) per feature. */
    float fx[2 * K], fb[K];
    EXPECT_OK(sa_forward(m, x, 2, fx));
    EXPECT_OK(sa_forward(m, b, 1, fb));
    EXPECT_OK(sa_shapley_value_sampling(m, x, 2, b, 1, target, 2, mask, 1, 3, 7, 0, NULL, 0, out));
    for (int i = 0; i < 2 * D; i++) CHECK(fabsf(out2[i] - out[i]) <= 1e-5f, "linear Shapley = ablation at %d", i);

    /* KernelSHAP on 4 features: 14 coalitions enumerate all, equal to Shapley over all 24 permutations. */
    sa_model *mlp = small_mlp();
    float x4[2 * 4] = {0.5f, -1.0f, 0.8f, 1.2f, 0.3f, -0.4f, 0.9f, -0.7f}, b4[4] = {0.1f, 0.2f, -0.1f, 0.0f};
    float ks[8], sv[8], ks2[8];
    int64_t perms[24 * 4];
    int count = 0;
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++)
            for (int d = 0; d < 4; d++)
                for (int e = 0; e < 4; e++)
                    if (a != c && a != d && a != e && c != d && c != e && d != e) {
                        perms[count * 4] = a; perms[count * 4 + 1] = c; perms[count * 4 + 2] = d; perms[count * 4 + 3] = e;
                        count++;
                    }
    CHECK(count == 24, "24 permutations");
    EXPECT_OK(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 14, 0, 0, NULL, 1, NULL, 0, ks));
    EXPECT_OK(sa_shapley_value_sampling(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 24, 0, 0, perms, 0, sv));
    for (int i = 0; i < 8; i++) CHECK(fabsf(ks[i] - sv[i]) <= 1e-5f, "exact KernelSHAP = exact Shapley at %d: %g vs %g", i, ks[i], sv[i]);
    /* sampled KernelSHAP is efficient */
    float y[2 * 2], yb[2];
    EXPECT_OK(sa_forward(mlp, x4, 2, y));
    EXPECT_OK(sa_forward(mlp, b4, 1, yb));
    EXPECT_OK(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 9, 5, 0, NULL, 1, NULL, 0, ks));
    for (int i = 0; i < 2; i++) {
        float s = ks[i * 4] + ks[i * 4 + 1] + ks[i * 4 + 2] + ks[i * 4 + 3];
        CHECK(fabsf(s - (y[i * 2 + target[i]] - yb[target[i]])) <= 1e-5f, "efficiency %d", i);
    }
    /* seeded: chunking does not change the draws; passing the drawn coalitions back is the same fit */
    EXPECT_OK(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 9, 5, 0, NULL, 1, NULL, 1, ks2));
    for (int i = 0; i < 8; i++) CHECK(fabsf(ks[i] - ks2[i]) <= 1e-5f, "chunk 1 = default at %d", i);
    EXPECT_OK(sa_lime(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 30, 9, 0, NULL, 1, 1.0, SA_LIME_COSINE, SA_LIME_LINEAR, 0, 0, ks));
    EXPECT_OK(sa_lime(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 30, 9, 0, NULL, 1, 1.0, SA_LIME_COSINE, SA_LIME_LINEAR, 0, 2, ks2));
    for (int i = 0; i < 8; i++) CHECK(fabsf(ks[i] - ks2[i]) <= 1e-5f, "lime chunk 2 = default at %d", i);
    uint8_t coalitions[3 * 4] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0};
    EXPECT_OK(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 3, 0, 0, coalitions, 1, NULL, 0, ks));
    EXPECT_OK(sa_feature_permutation(mlp, x4, 2, target, 2, NULL, 1, 3, NULL, 0, out));

    /* argument errors name the argument */
    int64_t big[3] = {1, 5, 2}, bad_stride[3] = {1, 1, 3};
    EXPECT_ERROR(sa_occlusion(m, x, 2, b, 1, target, 2, big, NULL, 3, 0, out), SA_ERR_INVALID_ARGUMENT, "sliding_window_shapes[1]");
    EXPECT_ERROR(sa_occlusion(m, x, 2, b, 1, target, 2, window, bad_stride, 3, 0, out), SA_ERR_INVALID_ARGUMENT, "strides[2]");
    EXPECT_ERROR(sa_occlusion(m, x, 2, b, 1, target, 2, window, NULL, 2, 0, out), SA_ERR_SHAPE, "ndim");
    EXPECT_ERROR(sa_occlusion(m, x, 2, b, 1, target, 2, NULL, NULL, 3, 0, out), SA_ERR_NULL_POINTER, "sliding_window_shapes");
    int64_t gap[D];
    for (int i = 0; i < D; i++) gap[i] = i < 8 ? 0 : 2;
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, target, 2, gap, 1, 0, out), SA_ERR_INVALID_ARGUMENT, "contiguous");
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, target, 2, mask, 3, 0, out), SA_ERR_SHAPE, "mask_rows");
    gap[3] = -1;
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, target, 2, gap, 1, 0, out), SA_ERR_INVALID_ARGUMENT, "feature_mask");
    EXPECT_ERROR(sa_shapley_value_sampling(m, x, 2, b, 1, target, 2, mask, 1, 0, 1, 0, NULL, 0, out), SA_ERR_INVALID_ARGUMENT, "n_samples");
    EXPECT_ERROR(sa_kernel_shap(m, x, 2, b, 1, target, 2, mask, 1, 0, 1, 0, NULL, 1, NULL, 0, out), SA_ERR_INVALID_ARGUMENT, "n_samples");
    EXPECT_ERROR(sa_lime(m, x, 2, b, 1, target, 2, mask, 1, 10, 1, 0, NULL, 1, 1.0, 7, 0, 0, 0, out), SA_ERR_UNKNOWN_ENUM, "distance");
    EXPECT_ERROR(sa_lime(m, x, 2, b, 1, target, 2, mask, 1, 10, 1, 0, NULL, 1, 1.0, 0, 9, 0, 0, out), SA_ERR_UNKNOWN_ENUM, "surrogate");
    EXPECT_ERROR(sa_lime(m, x, 2, b, 1, target, 2, mask, 1, 10, 1, 0, NULL, 1, -1.0, 0, 0, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "similarity");
    EXPECT_ERROR(sa_feature_permutation(m, x, 1, target, 1, mask, 1, 1, NULL, 0, out), SA_ERR_INVALID_ARGUMENT, "at least 2");
    uint8_t two[4] = {0, 2, 1, 0};
    EXPECT_ERROR(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 1, 0, 0, two, 1, NULL, 0, ks), SA_ERR_INVALID_ARGUMENT, "coalitions");
    EXPECT_ERROR(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 1, 0, 0, two, 3, NULL, 0, ks), SA_ERR_SHAPE, "coalition_rows");
    double weights[3] = {1.0, NAN, 2.0};
    EXPECT_ERROR(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 3, 0, 0, coalitions, 1, weights, 0, ks), SA_ERR_INVALID_ARGUMENT, "coalition_weights");
    EXPECT_ERROR(sa_kernel_shap(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 3, 0, 0, NULL, 1, weights, 0, ks), SA_ERR_INVALID_ARGUMENT, "coalition_weights");
    int64_t notperm[4] = {0, 0, 1, 2};
    EXPECT_ERROR(sa_shapley_value_sampling(mlp, x4, 2, b4, 1, target, 2, NULL, 1, 1, 0, 0, notperm, 0, sv), SA_ERR_INVALID_ARGUMENT, "permutations");
    x[5] = NAN;
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, target, 2, mask, 1, 0, out), SA_ERR_NON_FINITE, "x");
    x[5] = 0;
    int64_t bad_target = 2;
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, &bad_target, 1, mask, 1, 0, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_feature_ablation(m, x, 2, b, 1, target, 2, mask, 1, 0, NULL), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_feature_ablation(NULL, x, 2, b, 1, target, 2, mask, 1, 0, out), SA_ERR_NULL_POINTER, "model");

    sa_model_free(mlp);
    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
