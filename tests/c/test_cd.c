/*
 * test_cd.c — Contextual Decomposition through the C interface: the hand vector, relevant +
 * irrelevant = the output, many masks in one call against one at a time, argument errors, and a token
 * model (Embedding + LSTM + Linear) with masks per position.
 */
#include "check.h"

#include <math.h>

#define D 3

static sa_model *hand_model(void) {
    const float w1[2 * D] = {1, -2, 0.5f, 0.5f, 1, -1}, b1[2] = {0.1f, -0.2f}, w2[2] = {2, -1}, b2[1] = {0.3f};
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, 2, D, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, 1, 2, b2));
    return m;
}

#define V 10
#define L 5
#define E 3
#define H 4

/* Embedding(V, E) -> LSTM(E, H) last state -> Linear(H, 2) */
static sa_model *token_model(void) {
    float emb[V * E], wih[4 * H * E], whh[4 * H * H], bih[4 * H], bhh[4 * H], w[2 * H], b[2];
    fill(emb, V * E, 1); fill(wih, 4 * H * E, 0.5f); fill(whh, 4 * H * H, 0.5f); fill(bih, 4 * H, 0.3f);
    fill(bhh, 4 * H, 0.3f); fill(w, 2 * H, 0.5f); fill(b, 2, 0.3f);
    int64_t shape[1] = {L};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_embedding(m, emb, V, E));
    EXPECT_OK(sa_model_add_lstm(m, wih, whh, bih, bhh, E, H, 0));
    EXPECT_OK(sa_model_add_dense(m, w, 2, H, b));
    return m;
}

/* Token model: one mask value per position (L floats); relevant + irrelevant = the logits; the whole
 * sequence leaves irrelevant only the 1e-20 share of the output bias, the empty one relevant; many masks in
 * one call equal one at a time; a non-id input is an error naming its index. */
static void token_checks(void) {
    sa_model *m = token_model();
    const float ids[2 * L] = {1, 4, 0, 9, 3, 7, 7, 2, 5, 8};
    const float masks[4 * L] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0.5f, 0, 1, 0.25f, 1};
    float rel[2 * 4 * 2], irr[2 * 4 * 2], out[2 * 2];
    EXPECT_OK(sa_contextual_decomposition(m, ids, 2, masks, 4, 0, rel, irr));
    EXPECT_OK(sa_forward(m, ids, 2, out));
    for (int e = 0; e < 2; e++) {
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < 2; j++) {
                int at = (e * 4 + k) * 2 + j;
                float s = rel[at] + irr[at];
                /* float32 rounding of 5 LSTM steps and the head on values of order 1 */
                CHECK(fabsf(s - out[e * 2 + j]) <= 1e-5f * (1 + fabsf(out[e * 2 + j])), "token e%d mask %d: %g vs %g", e, k, s,
                      out[e * 2 + j]);
                float r1[2 * 2], i1[2 * 2];
                EXPECT_OK(sa_contextual_decomposition(m, ids, 2, masks + k * L, 1, 1, r1, i1));
                CHECK(fabsf(r1[e * 2 + j] - rel[at]) <= 1e-6f, "token one at a time, e%d mask %d", e, k);
                CHECK(fabsf(i1[e * 2 + j] - irr[at]) <= 1e-6f, "token one at a time, e%d mask %d", e, k);
            }
            if (k < 2) {
                const float *zero = k == 0 ? irr : rel;
                CHECK(fabsf(zero[(e * 4 + k) * 2]) <= 1e-18f && fabsf(zero[(e * 4 + k) * 2 + 1]) <= 1e-18f,
                      "token %s mask: %s = 0", k == 0 ? "full" : "empty", k == 0 ? "irrelevant" : "relevant");
            }
        }
    }
    const float bad_ids[L] = {1, 2, 10, 0, 0};
    EXPECT_ERROR(sa_contextual_decomposition(m, bad_ids, 1, masks, 1, 0, rel, irr), SA_ERR_OUT_OF_RANGE, "x[2]");
    sa_model_free(m);
}

int main(void) {
    token_checks();
    sa_model *m = hand_model();
    const float x[2 * D] = {1, 0.5f, -1, -0.3f, 0.8f, 0.2f};
    const float masks[3 * D] = {1, 0, 0, 0, 1, 1, 1, 0, 1};
    float rel[2 * 3], irr[2 * 3], out[2];

    /* W1 = [[1, -2, .5], [.5, 1, -1]], b1 = [.1, -.2], ReLU, W2 = [[2, -1]], b2 = .3, x = (1, .5, -1), {x0} */
    EXPECT_OK(sa_contextual_decomposition(m, x, 1, masks, 1, 0, rel, irr));
    CHECK(fabsf(rel[0] - 1.72664f) < 2e-6f, "hand vector relevant %g", rel[0]);
    CHECK(fabsf(irr[0] + 3.22664f) < 2e-6f, "hand vector irrelevant %g", irr[0]);

    /* three masks for two examples in one call: each sums to the output, and equals a one-mask call */
    EXPECT_OK(sa_contextual_decomposition(m, x, 2, masks, 3, 0, rel, irr));
    EXPECT_OK(sa_forward(m, x, 2, out));
    for (int e = 0; e < 2; e++) {
        for (int k = 0; k < 3; k++) {
            float s = rel[e * 3 + k] + irr[e * 3 + k];
            /* float32 rounding of a few operations on values of order 1 */
            CHECK(fabsf(s - out[e]) <= 1e-5f * (1 + fabsf(out[e])), "example %d mask %d: %g vs %g", e, k, s, out[e]);
            float r1[2], i1[2];
            EXPECT_OK(sa_contextual_decomposition(m, x, 2, masks + k * D, 1, 1, r1, i1));
            CHECK(fabsf(r1[e] - rel[e * 3 + k]) <= 1e-6f, "one at a time, example %d mask %d", e, k);
            CHECK(fabsf(i1[e] - irr[e * 3 + k]) <= 1e-6f, "one at a time, example %d mask %d", e, k);
        }
    }

    /* errors name the argument */
    const float bad[D] = {1, NAN, 0};
    const float bad_x[D] = {1, INFINITY, 0};
    EXPECT_ERROR(sa_contextual_decomposition(NULL, x, 1, masks, 1, 0, rel, irr), SA_ERR_NULL_POINTER, "model");
    EXPECT_ERROR(sa_contextual_decomposition(m, NULL, 1, masks, 1, 0, rel, irr), SA_ERR_NULL_POINTER, "x");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 0, masks, 1, 0, rel, irr), SA_ERR_INVALID_ARGUMENT, "n");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, NULL, 1, 0, rel, irr), SA_ERR_NULL_POINTER, "mask");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, masks, 0, 0, rel, irr), SA_ERR_INVALID_ARGUMENT, "n_masks");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, masks, -3, 0, rel, irr), SA_ERR_INVALID_ARGUMENT, "n_masks");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, bad, 1, 0, rel, irr), SA_ERR_NON_FINITE, "mask");
    EXPECT_ERROR(sa_contextual_decomposition(m, bad_x, 1, masks, 1, 0, rel, irr), SA_ERR_NON_FINITE, "x");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, masks, 1, 0, NULL, irr), SA_ERR_NULL_POINTER, "relevant");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, masks, 1, 0, rel, NULL), SA_ERR_NULL_POINTER, "irrelevant");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, INT64_MAX, masks, 1, 0, rel, irr), SA_ERR_INVALID_ARGUMENT, "n");
    EXPECT_ERROR(sa_contextual_decomposition(m, x, 1, masks, INT64_MAX / 2, 0, rel, irr), SA_ERR_INVALID_ARGUMENT, "n_masks");

    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
