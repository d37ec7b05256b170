/*
 * test_sequence.c — a token classifier built through the C interface: Embedding(V, E) → LSTM(E, H, last
 * state) → Dense(H, C). Checks the id checks, sa_embed, the embedding-level model, that every attribution
 * call writes one value per token (the embedding-level result summed over E), DeepLIFT's
 * summation-to-delta through the LSTM, IG completeness, and a save/load round trip.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

enum { V = 9, E = 3, H = 4, C = 2, L = 5, N = 3 };

static sa_model *classifier(void) {
    static float emb[V * E], wih[4 * H * E], whh[4 * H * H], bih[4 * H], bhh[4 * H], wout[C * H], bout[C];
    fill(emb, V * E, 1.0f);
    fill(wih, 4 * H * E, 0.6f);
    fill(whh, 4 * H * H, 0.5f);
    fill(bih, 4 * H, 0.3f);
    fill(bhh, 4 * H, 0.3f);
    fill(wout, C * H, 0.8f);
    fill(bout, C, 0.2f);
    const int64_t shape[1] = {L};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_ERROR(sa_model_add_lstm(m, wih, whh, bih, bhh, E, H, 2), SA_ERR_INVALID_ARGUMENT, "return_sequences");
    EXPECT_OK(sa_model_add_embedding(m, emb, V, E));
    EXPECT_ERROR(sa_model_add_embedding(m, emb, V, E), SA_ERR_INVALID_ARGUMENT, "node 0");
    EXPECT_ERROR(sa_model_add_lstm(m, wih, whh, bih, bhh, E + 1, H, 0), SA_ERR_SHAPE, "LSTM expects");
    EXPECT_OK(sa_model_add_lstm(m, wih, whh, bih, bhh, E, H, 0));
    EXPECT_OK(sa_model_add_dense(m, wout, C, H, bout));
    return m;
}

int main(void) {
    sa_model *m = classifier();
    const float x[N * L] = {1, 2, 3, 4, 5, 8, 7, 6, 5, 4, 0, 3, 0, 3, 8};
    const float pad[L] = {0, 0, 0, 0, 0};
    int64_t target = 1, kind = -1;
    int k = -1;
    EXPECT_OK(sa_model_layer_kind(m, 1, &k));
    kind = k;
    CHECK(kind == SA_LAYER_LSTM, "layer 1 kind %lld", (long long)kind);

    float y[N * C], out[N * L], delta[N];
    EXPECT_OK(sa_forward(m, x, N, y));

    /* Out-of-range and fractional ids are errors naming the argument and the flat index. */
    float bad[N * L];
    memcpy(bad, x, sizeof bad);
    bad[7] = V;
    EXPECT_ERROR(sa_forward(m, bad, N, y), SA_ERR_OUT_OF_RANGE, "x[7]");
    bad[7] = 1.5f;
    EXPECT_ERROR(sa_saliency(m, bad, N, &target, 1, 0, out), SA_ERR_OUT_OF_RANGE, "x[7]");
    EXPECT_ERROR(sa_embed(m, bad, N, out), SA_ERR_OUT_OF_RANGE, "x[7]");

    /* The embedding-level model reproduces the outputs from sa_embed's vectors. */
    float e[N * L * E], y2[N * C], g[N * L * E];
    EXPECT_OK(sa_embed(m, x, N, e));
    sa_model *rest = NULL;
    EXPECT_OK(sa_model_embedding_rest(m, &rest));
    EXPECT_ERROR(sa_model_embedding_rest(rest, &rest), SA_ERR_INVALID_ARGUMENT, "not an Embedding");
    EXPECT_OK(sa_forward(rest, e, N, y2));
    for (int i = 0; i < N * C; i++) CHECK(y[i] == y2[i], "rest forward %d: %g vs %g", i, y[i], y2[i]);

    /* Token saliency = the embedding-level gradient summed over E (the same computation: bit-exact). */
    EXPECT_OK(sa_saliency(m, x, N, &target, 1, 0, out));
    EXPECT_OK(sa_saliency(rest, e, N, &target, 1, 0, g));
    for (int i = 0; i < N * L; i++) {
        float s = 0;
        for (int j = 0; j < E; j++) s += g[i * E + j];
        CHECK(out[i] == s, "saliency token %d: %g vs %g", i, out[i], s);
    }

    /* DeepLIFT through the LSTM: summation-to-delta to float32 rounding (1e-4 absolute on outputs of O(1)). */
    EXPECT_OK(sa_deeplift(m, x, N, pad, 1, &target, 1, SA_DEEPLIFT_RESCALE, SA_MAXPOOL_CROSSMAX, 1, 0, out, delta));
    for (int i = 0; i < N; i++) CHECK(fabsf(delta[i]) < 1e-4f, "deeplift delta %d: %g", i, delta[i]);
    /* RevealCancel: no nonlinearity follows the LSTM here (its gates always take Rescale), so it is DeepLIFT too. */
    EXPECT_OK(sa_deeplift(m, x, N, pad, 1, &target, 1, SA_DEEPLIFT_REVEALCANCEL, SA_MAXPOOL_CROSSMAX, 1, 0, out, delta));
    for (int i = 0; i < N; i++) CHECK(fabsf(delta[i]) < 1e-4f, "revealcancel delta %d: %g", i, delta[i]);
    /* IG from the pad ids: complete to the quadrature error (≪ 1e-4 with 64 nodes). */
    EXPECT_OK(sa_integrated_gradients(m, x, N, pad, 1, &target, 1, 64, SA_IG_GAUSS_LEGENDRE, 0, out, delta));
    for (int i = 0; i < N; i++) CHECK(fabsf(delta[i]) < 1e-4f, "ig delta %d: %g", i, delta[i]);
    float bad_pad[L] = {0, 0, 0, 0, 99};
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, bad_pad, 1, &target, 1, 8, SA_IG_GAUSS_LEGENDRE, 0, out, delta),
                 SA_ERR_OUT_OF_RANGE, "baselines[4]");
    EXPECT_OK(sa_expected_gradients(m, x, N, x, N, &target, 1, 8, 7, 0, 0, out));
    EXPECT_OK(sa_smoothgrad(m, x, N, &target, 1, SA_NT_SMOOTHGRAD, 4, 0.1f, 7, 0, 0, out));
    EXPECT_OK(sa_deepshap(m, x, N, x, N, &target, 1, SA_DEEPLIFT_RESCALE, SA_MAXPOOL_CROSSMAX, 1, 0, out, delta));
    for (int i = 0; i < N; i++) CHECK(fabsf(delta[i]) < 1e-4f, "deepshap delta %d: %g", i, delta[i]);

    /* The Hessian calls reject LSTM models. */
    float gamma[N * L * L];
    EXPECT_ERROR(sa_integrated_hessians(m, x, N, NULL, 0, &target, 1, 8, SA_IH_GAUSS_LEGENDRE, 0.0f, -1, 0, gamma),
                 SA_ERR_INVALID_ARGUMENT, "not supported for LSTM layers yet");

    /* Save and load: the same outputs, bit for bit. */
    char path[] = "/tmp/swiftattr_seq_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    EXPECT_OK(sa_model_save(m, path));
    sa_model *back = NULL;
    EXPECT_OK(sa_model_load(path, &back));
    close(fd);
    remove(path);
    EXPECT_OK(sa_forward(back, x, N, y2));
    for (int i = 0; i < N * C; i++) CHECK(y[i] == y2[i], "loaded forward %d", i);

    sa_model_free(back);
    sa_model_free(rest);
    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
