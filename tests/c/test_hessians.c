/*
 * test_hessians.c — Integrated and Expected Hessians through the C interface: completeness against
 * sa_integrated_gradients, symmetry, one interaction row, the ReLU→Softplus substitution, seeded draws and
 * argument errors.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define D 3
#define H 5

static sa_model *relu_mlp(void) {
    float w1[H * D], b1[H], w2[H];
    for (int i = 0; i < H * D; i++) w1[i] = (float)sin(1.3 * i + 0.2);
    for (int i = 0; i < H; i++) { b1[i] = 0.1f * (float)cos(i); w2[i] = (float)cos(0.7 * i + 0.4); }
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, H, D, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, 1, H, NULL));
    return m;
}

/* A token model: Embedding(5, 2) on 3 tokens → Flatten → Dense(4) → ReLU → Dense(1). */
enum { TV = 5, TE = 2, TL = 3, TH = 4 };

static void token_model_checks(void) {
    float emb[TV * TE], w1[TH * TL * TE], b1[TH], w2[TH];
    fill(emb, TV * TE, 1.0f);
    fill(w1, TH * TL * TE, 0.7f);
    fill(b1, TH, 0.2f);
    fill(w2, TH, 0.9f);
    int64_t shape[1] = {TL};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_embedding(m, emb, TV, TE));
    EXPECT_OK(sa_model_add_flatten(m));
    EXPECT_OK(sa_model_add_dense(m, w1, TH, TL * TE, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, 1, TH, NULL));
    sa_model *soft = NULL;
    EXPECT_OK(sa_model_with_softplus(m, 10.0f, &soft));
    const float ids[2 * TL] = {1, 4, 2, 3, 0, 1}, pad[TL] = {0, 0, 0};
    int64_t target = 0;
    float gamma[2 * TL * TL], row[2 * TL], ig[2 * TL], delta[2], eh[2 * TL * TL];
    /* Token models: n * L * L floats (summed over both embedding axes), rows sum to the token-level IG. */
    EXPECT_OK(sa_integrated_hessians(m, ids, 2, pad, 1, &target, 1, 32, SA_IH_GAUSS_LEGENDRE, 10.0f, -1, 0, gamma));
    EXPECT_OK(sa_integrated_gradients(soft, ids, 2, pad, 1, &target, 1, 64, SA_IG_GAUSS_LEGENDRE, 0, ig, delta));
    float scale = 0;
    for (int i = 0; i < 2 * TL; i++) scale = fmaxf(scale, fabsf(ig[i]));
    for (int r = 0; r < 2 * TL; r++) {
        float s = 0;
        for (int j = 0; j < TL; j++) s += gamma[r * TL + j];
        CHECK(fabsf(s - ig[r]) <= 1e-4f * scale, "token completeness row %d: %g vs %g", r, s, ig[r]);
    }
    /* One token's row: n * L floats. */
    EXPECT_OK(sa_integrated_hessians(m, ids, 2, pad, 1, &target, 1, 32, SA_IH_GAUSS_LEGENDRE, 10.0f, 1, 0, row));
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < TL; j++)
            CHECK(fabsf(row[r * TL + j] - gamma[(r * TL + 1) * TL + j]) <= 1e-5f * scale, "token row %d %d", r, j);
    EXPECT_ERROR(sa_integrated_hessians(m, ids, 2, pad, 1, &target, 1, 32, 0, 10.0f, TL, 0, row), SA_ERR_OUT_OF_RANGE,
                 "interaction_index");
    EXPECT_OK(sa_expected_hessians(m, ids, 2, ids, 2, &target, 1, 8, 3, 0, 10.0f, -1, 0, eh));
    const float bad[TL] = {0, TV, 0};
    EXPECT_ERROR(sa_integrated_hessians(m, ids, 2, bad, 1, &target, 1, 32, 0, 10.0f, -1, 0, gamma), SA_ERR_OUT_OF_RANGE,
                 "baselines[1]");
    sa_model_free(soft);
    sa_model_free(m);
}

int main(void) {
    token_model_checks();
    sa_model *m = relu_mlp();
    const float x[2 * D] = {0.5f, -1.0f, 0.8f, 1.2f, 0.3f, -0.4f};
    int64_t target = 0;
    float gamma[2 * D * D], row[2 * D], ig[2 * D];

    EXPECT_OK(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, SA_IH_GAUSS_LEGENDRE, 10.0f, -1, 0, gamma));
    sa_model *soft = NULL;
    EXPECT_OK(sa_model_with_softplus(m, 10.0f, &soft));
    EXPECT_OK(sa_integrated_gradients(soft, x, 2, NULL, 0, &target, 1, 50, SA_IG_GAUSS_LEGENDRE, 0, ig, NULL));
    float scale = 0;
    for (int i = 0; i < 2 * D; i++) scale = fmaxf(scale, fabsf(ig[i]));
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < D; i++) {
            float sum = 0;
            for (int j = 0; j < D; j++) {
                sum += gamma[(r * D + i) * D + j];
                CHECK(gamma[(r * D + i) * D + j] == gamma[(r * D + j) * D + i], "symmetric at %d,%d,%d", r, i, j);
            }
            /* completeness to 1e-4 of max|IG| (quadrature ~1e-7, float32 sums of D terms) */
            CHECK(fabsf(sum - ig[r * D + i]) <= 1e-4f * scale, "completeness row %d,%d: %g vs %g", r, i, sum, ig[r * D + i]);
        }
    }
    /* the explicit Softplus network gives the same numbers as softplus_beta */
    float direct[2 * D * D];
    EXPECT_OK(sa_integrated_hessians(soft, x, 2, NULL, 0, &target, 1, 32, SA_IH_GAUSS_LEGENDRE, 0, -1, 0, direct));
    CHECK(memcmp(direct, gamma, sizeof gamma) == 0, "softplus_beta equals sa_model_with_softplus");
    EXPECT_OK(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, SA_IH_GAUSS_LEGENDRE, 10.0f, 1, 0, row));
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < D; j++)
            CHECK(fabsf(row[r * D + j] - gamma[(r * D + 1) * D + j]) <= 1e-4f * scale, "interaction row %d,%d", r, j);

    /* Expected Hessians: same seed, same bits; a split batch with first_example gives the same rows */
    float a[2 * D * D], b[2 * D * D], tail[D * D];
    EXPECT_OK(sa_expected_hessians(m, x, 2, x, 2, &target, 1, 8, 42, 0, 10.0f, -1, 0, a));
    EXPECT_OK(sa_expected_hessians(m, x, 2, x, 2, &target, 1, 8, 42, 0, 10.0f, -1, 0, b));
    CHECK(memcmp(a, b, sizeof a) == 0, "seeded reproducibility");
    EXPECT_OK(sa_expected_hessians(m, x + D, 1, x, 2, &target, 1, 8, 42, 1, 10.0f, -1, 0, tail));
    CHECK(memcmp(tail, a + D * D, sizeof tail) == 0, "first_example split");

    /* errors name the argument */
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 7, 0, -1, 0, gamma), SA_ERR_UNKNOWN_ENUM, "method");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 0, -2.0f, -1, 0, gamma), SA_ERR_INVALID_ARGUMENT, "softplus_beta");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 0, NAN, -1, 0, gamma), SA_ERR_INVALID_ARGUMENT, "softplus_beta");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 0, 0, D, 0, gamma), SA_ERR_OUT_OF_RANGE, "interaction_index");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 0, 0, -2, 0, gamma), SA_ERR_OUT_OF_RANGE, "interaction_index");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 0, 0, 0, -1, 0, gamma), SA_ERR_INVALID_ARGUMENT, "n_steps");
    EXPECT_ERROR(sa_integrated_hessians(m, x, 2, NULL, 0, &target, 1, 32, 0, 0, -1, 0, NULL), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_expected_hessians(m, x, 2, NULL, 2, &target, 1, 8, 1, 0, 0, -1, 0, a), SA_ERR_NULL_POINTER, "references");
    EXPECT_ERROR(sa_expected_hessians(m, x, 2, x, 2, &target, 1, 8, 1, -1, 0, -1, 0, a), SA_ERR_INVALID_ARGUMENT, "first_example");
    EXPECT_ERROR(sa_model_with_softplus(m, 0, &soft), SA_ERR_INVALID_ARGUMENT, "beta");
    EXPECT_ERROR(sa_model_with_softplus(NULL, 1, &soft), SA_ERR_NULL_POINTER, "model");

    sa_model_free(soft);
    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
