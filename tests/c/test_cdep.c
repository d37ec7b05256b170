/*
 * test_cdep.c — the CDEP prior through the C interface: sa_prior_cdep's argument errors, the penalty added by
 * sa_loss_and_gradients (in (0, lam·n_masks) and additive over regions), a mask of the wrong size refused when
 * used, a training run with it, and per-example masks (sa_prior_cdep_per_example).
 */
#include "check.h"

#include <math.h>

#define D 4
#define H 5
#define K 3
#define N 16

int main(void) {
    float w1[H * D], b1[H], w2[K * H], b2[K], x[N * D];
    int64_t y[N], shape[1] = {D};
    seed_rnd(3);
    fill(w1, H * D, 0.6f); fill(b1, H, 0.2f); fill(w2, K * H, 0.6f); fill(b2, K, 0.2f); fill(x, N * D, 1.0f);
    for (int i = 0; i < N; i++) y[i] = i % K;
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, H, D, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, K, H, b2));

    float masks[2 * D] = {1, 1, 0, 0, 0, 0, 0.5f, 1};
    sa_prior *both = NULL, *first = NULL, *second = NULL, *p = NULL;
    EXPECT_OK(sa_prior_cdep(masks, 2, D, 0.5, &both));
    EXPECT_OK(sa_prior_cdep(masks, 1, D, 0.5, &first));
    EXPECT_OK(sa_prior_cdep(masks + D, 1, D, 0.5, &second));
    EXPECT_ERROR(sa_prior_cdep(NULL, 1, D, 0.5, &p), SA_ERR_NULL_POINTER, "masks");
    EXPECT_ERROR(sa_prior_cdep(masks, 0, D, 0.5, &p), SA_ERR_INVALID_ARGUMENT, "n_masks");
    EXPECT_ERROR(sa_prior_cdep(masks, 1, D, -1, &p), SA_ERR_INVALID_ARGUMENT, "lam");
    EXPECT_ERROR(sa_prior_cdep(masks, 1, D, 0.5, NULL), SA_ERR_NULL_POINTER, "out_prior");
    float bad[D] = {1, 2, 0, 0};
    EXPECT_ERROR(sa_prior_cdep(bad, 1, D, 0.5, &p), SA_ERR_OUT_OF_RANGE, "[0, 1]");
    bad[1] = NAN;
    EXPECT_ERROR(sa_prior_cdep(bad, 1, D, 0.5, &p), SA_ERR_NON_FINITE, "masks");

    const sa_prior *list_both[1] = {both}, *list_first[1] = {first}, *list_second[1] = {second};
    float grads[64], with[64];
    double base = 0, loss = 0, l1 = 0, l2 = 0;
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &base, grads, 64));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_both, 1, 0, &loss, with, 64));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_first, 1, 0, &l1, with, 64));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_second, 1, 0, &l2, with, 64));
    CHECK(loss - base > 0 && loss - base < 1.0, "penalty %g in (0, lam · 2)", loss - base);
    CHECK(fabs((loss - base) - ((l1 - base) + (l2 - base))) < 1e-5, "regions add: %g vs %g", loss - base, (l1 - base) + (l2 - base));
    double diff = 0;
    for (int i = 0; i < H * D + H + K * H + K; i++) diff += fabs(with[i] - grads[i]);
    CHECK(diff > 1e-6, "the prior changes the gradients");

    /* A mask of another size than the model's input: refused when used, naming the mask. */
    sa_prior *wide = NULL;
    float five[5] = {1, 0, 0, 0, 0};
    EXPECT_OK(sa_prior_cdep(five, 1, 5, 0.5, &wide));
    const sa_prior *list_wide[1] = {wide};
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_wide, 1, 0, &loss, with, 64), SA_ERR_SHAPE, "mask");

    sa_train_options o = sa_train_default_options();
    o.epochs = 2;
    o.batch_size = 8;
    o.priors = list_both;
    o.n_priors = 1;
    sa_model *trained = NULL;
    double history[2 * SA_TRAIN_HISTORY_COLUMNS];
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &trained, history, 2 * SA_TRAIN_HISTORY_COLUMNS, NULL));
    CHECK(trained != NULL && isfinite(history[0]), "a run with CDEP");

    /* Per-example masks (sa_prior_cdep_per_example): every example given the shared set gives the shared
     * prior's loss and gradients bit for bit (the same computation); a set count other than the rows of x is
     * refused, naming the mask, by sa_loss_and_gradients and by sa_train. */
    float each[N * 2 * D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 2 * D; j++) each[i * 2 * D + j] = masks[j];
    sa_prior *per = NULL, *short_per = NULL;
    EXPECT_OK(sa_prior_cdep_per_example(each, N, 2, D, 0.5, &per));
    EXPECT_OK(sa_prior_cdep_per_example(each, N - 1, 2, D, 0.5, &short_per));
    EXPECT_ERROR(sa_prior_cdep_per_example(each, 0, 2, D, 0.5, &p), SA_ERR_INVALID_ARGUMENT, "n_examples");
    EXPECT_ERROR(sa_prior_cdep_per_example(NULL, N, 2, D, 0.5, &p), SA_ERR_NULL_POINTER, "masks");
    each[5] = 3;
    EXPECT_ERROR(sa_prior_cdep_per_example(each, N, 2, D, 0.5, &p), SA_ERR_OUT_OF_RANGE, "[0, 1]");
    each[5] = masks[5];
    const sa_prior *list_per[1] = {per}, *list_short[1] = {short_per};
    float shared_g[64], per_g[64];
    double shared_l = 0, per_l = 0;
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_both, 1, 0, &shared_l, shared_g, 64));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_per, 1, 0, &per_l, per_g, 64));
    int same = shared_l == per_l;
    for (int i = 0; i < H * D + H + K * H + K; i++) same = same && shared_g[i] == per_g[i];
    CHECK(same, "per-example masks all equal to the shared set: the same bits (%.9g vs %.9g)", per_l, shared_l);
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, list_short, 1, 0, &loss, with, 64), SA_ERR_SHAPE, "mask");
    o.priors = list_short;
    sa_model *none = NULL;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &none, NULL, 0, NULL), SA_ERR_SHAPE, "mask");
    CHECK(none == NULL, "no model from a refused run");
    sa_prior_free(per);
    sa_prior_free(short_per);

    sa_model_free(trained);
    sa_prior_free(wide);
    sa_prior_free(both);
    sa_prior_free(first);
    sa_prior_free(second);
    sa_model_free(m);
    printf("  %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
