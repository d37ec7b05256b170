/*
 * test_priors.c — attribution priors through the C interface: every constructor; the gradient of
 * cross-entropy plus each prior against central differences of the penalised loss (through
 * sa_model_with_parameters); the draws; repeatable training with priors; argument errors.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define D 4
#define H 5
#define K 3
#define N 6
#define P (H * D + H + K * H + K)

static sa_model *mlp(const float *params) {
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, params, H, D, params + H * D));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_dense(m, params + H * D + H, K, H, params + H * D + H + K * H));
    return m;
}

static double penalised(const float *params, const float *x, const int64_t *y, const sa_prior *prior, float *grads) {
    sa_model *m = mlp(params);
    double loss = 0;
    float scratch[P];
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, &prior, 1, 5, &loss, grads ? grads : scratch, P));
    sa_model_free(m);
    return loss;
}

/* The prior's gradient against central differences. The loss (O(1)) is a float64 sum of float32 network values,
 * rounded to ~1e-7 relative; with h = 3e-3 the difference quotient's rounding error is about 1e-7/h = 3e-5 and
 * its truncation error h^2 L'''/6 about 1e-5 (a larger h meets the kinks of |phi| and of Gini's pair
 * differences), so 2e-3 of the largest gradient entry (0.2 to 2 here) bounds both with a margin, while a wrong
 * term is off by O(scale). */
static void check_gradient(const char *what, const float *params, const float *x, const int64_t *y, const sa_prior *prior) {
    float grads[P];
    double base = penalised(params, x, y, prior, grads);
    CHECK(isfinite(base), "%s: loss %g", what, base);
    double worst = 0, scale = 0;
    for (int k = 0; k < P; k++) scale = fmax(scale, fabs(grads[k]));
    for (int k = 0; k < P; k++) {
        float q[P];
        memcpy(q, params, sizeof q);
        const float h = 3e-3f;
        q[k] = params[k] + h;
        double up = penalised(q, x, y, prior, NULL);
        q[k] = params[k] - h;
        double down = penalised(q, x, y, prior, NULL);
        double fd = (up - down) / (2.0 * h);
        worst = fmax(worst, fabs(fd - grads[k]));
    }
    CHECK(worst <= 2e-3 * scale, "%s: gradient vs central differences, max error %g of scale %g", what, worst, scale);
}

int main(void) {
    float params[P], x[N * D];
    int64_t y[N] = {0, 1, 2, 1, 0, 2};
    seed_rnd(3);
    fill(params, P, 0.8f);
    fill(x, N * D, 1.0f);

    float adjacency[D * D], mask[D] = {1.0f, 0.5f, 0.0f, 2.0f};
    for (int i = 0; i < D * D; i++) adjacency[i] = (i / D == i % D) ? 0.0f : 0.5f + 0.1f * (float)(i % 3);

    sa_prior *l1 = NULL, *gini = NULL, *graph = NULL, *tv = NULL, *ig = NULL, *l1k = NULL;
    EXPECT_OK(sa_prior_l1(1.0, &l1));
    EXPECT_OK(sa_prior_gini(1.0, &gini));
    EXPECT_OK(sa_prior_graph(adjacency, D, 1.0, &graph));
    EXPECT_OK(sa_prior_total_variation(1.0, &tv));
    EXPECT_OK(sa_prior_input_gradient(mask, D, 5.0, &ig));
    EXPECT_OK(sa_prior_l1(1.0, &l1k));
    EXPECT_OK(sa_prior_set_sampling(l1k, 3, x, 2, D));

    check_gradient("L1", params, x, y, l1);
    check_gradient("Gini", params, x, y, gini);
    check_gradient("Graph", params, x, y, graph);
    check_gradient("InputGradient", params, x, y, ig);
    check_gradient("L1, k = 3, reference set", params, x, y, l1k);

    /* The priors add up and the prior matters. */
    sa_model *m = mlp(params);
    double plain = 0, one = 0, two = 0;
    float g[P];
    const sa_prior *both[2] = {l1, ig};
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 0, 0, &plain, g, P));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, both, 1, 5, &one, g, P));
    EXPECT_OK(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, both, 2, 5, &two, g, P));
    CHECK(one > plain + 1e-3 && two > one + 1e-3, "losses %g < %g < %g", plain, one, two);

    /* Draws: in range, other examples of the batch, repeatable, per step. */
    int64_t index[2 * N], index2[2 * N];
    float alpha[2 * N], alpha2[2 * N];
    EXPECT_OK(sa_prior_draws(l1, N, 9, 0, index, alpha, N));
    EXPECT_OK(sa_prior_draws(l1, N, 9, 0, index2, alpha2, N));
    int fine = 1;
    for (int i = 0; i < N; i++) fine &= index[i] >= 0 && index[i] < N && index[i] != i && alpha[i] >= 0 && alpha[i] < 1;
    CHECK(fine, "batch draws are other examples, alphas in [0, 1)");
    CHECK(memcmp(index, index2, sizeof(int64_t) * N) == 0 && memcmp(alpha, alpha2, sizeof(float) * N) == 0, "draws repeat");
    EXPECT_OK(sa_prior_draws(l1, N, 9, 1, index2, alpha2, N));
    CHECK(memcmp(alpha, alpha2, sizeof(float) * N) != 0, "draws change with the step");
    EXPECT_OK(sa_prior_draws(l1k, N, 9, 0, index, alpha, 3 * N));
    fine = 1;
    for (int i = 0; i < 3 * N; i++) fine &= index[i] >= 0 && index[i] < 2;
    CHECK(fine, "reference-set draws index the 2 references");
    EXPECT_ERROR(sa_prior_draws(l1k, N, 9, 0, index, alpha, N), SA_ERR_BUFFER_TOO_SMALL, "capacity");
    EXPECT_ERROR(sa_prior_draws(ig, N, 9, 0, index, alpha, N), SA_ERR_INVALID_ARGUMENT, "draws no references");

    /* Training with priors: the same seed gives the same weights; the priors change them. */
    sa_train_options o = sa_train_default_options();
    CHECK(o.priors == NULL && o.n_priors == 0, "no priors by default");
    o.epochs = 3;
    o.batch_size = 4;
    o.seed = 2;
    o.learning_rate = 0.05;
    sa_model *t1 = NULL, *t2 = NULL, *t3 = NULL;
    const sa_prior *priors[2] = {gini, ig};
    o.priors = priors;
    o.n_priors = 2;
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t1, NULL, 0, NULL));
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t2, NULL, 0, NULL));
    o.n_priors = 0;
    EXPECT_OK(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t3, NULL, 0, NULL));
    float p1[P], p2[P], p3[P];
    EXPECT_OK(sa_model_parameters(t1, p1, P));
    EXPECT_OK(sa_model_parameters(t2, p2, P));
    EXPECT_OK(sa_model_parameters(t3, p3, P));
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "same seed, same weights with priors");
    CHECK(memcmp(p1, p3, sizeof p1) != 0, "the priors change training");
    sa_model_free(t1);
    sa_model_free(t2);
    sa_model_free(t3);

    /* Errors. */
    sa_prior *bad = NULL;
    EXPECT_ERROR(sa_prior_l1(-1.0, &bad), SA_ERR_INVALID_ARGUMENT, "lam");
    EXPECT_ERROR(sa_prior_gini(NAN, &bad), SA_ERR_INVALID_ARGUMENT, "lam");
    EXPECT_ERROR(sa_prior_l1(1.0, NULL), SA_ERR_NULL_POINTER, "out_prior");
    EXPECT_ERROR(sa_prior_graph(NULL, D, 1.0, &bad), SA_ERR_NULL_POINTER, "adjacency");
    EXPECT_ERROR(sa_prior_graph(adjacency, 0, 1.0, &bad), SA_ERR_INVALID_ARGUMENT, "d");
    float nan_mask[D] = {1, NAN, 1, 1};
    EXPECT_ERROR(sa_prior_input_gradient(nan_mask, D, 1.0, &bad), SA_ERR_NON_FINITE, "mask");
    sa_prior *fresh = NULL;
    EXPECT_OK(sa_prior_input_gradient(mask, D, 1.0, &fresh));
    EXPECT_ERROR(sa_prior_set_sampling(fresh, 2, NULL, 0, 0), SA_ERR_INVALID_ARGUMENT, "no references");
    sa_prior_free(fresh);
    EXPECT_ERROR(sa_prior_set_sampling(l1, 0, NULL, 0, 0), SA_ERR_INVALID_ARGUMENT, "k");
    EXPECT_ERROR(sa_prior_set_sampling(l1, 1, x, 2, D), SA_ERR_FROZEN, "used");
    EXPECT_ERROR(sa_prior_set_sampling(NULL, 1, NULL, 0, 0), SA_ERR_NULL_POINTER, "prior");

    /* Shapes are checked against the model when the prior is used. */
    sa_prior *mask3 = NULL, *graph3 = NULL, *refs3 = NULL;
    EXPECT_OK(sa_prior_input_gradient(mask, 3, 1.0, &mask3));
    EXPECT_OK(sa_prior_graph(adjacency, 3, 1.0, &graph3));
    EXPECT_OK(sa_prior_l1(1.0, &refs3));
    EXPECT_OK(sa_prior_set_sampling(refs3, 1, x, 2, 3));
    double loss;
    const sa_prior *one_prior[1];
    one_prior[0] = mask3;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, g, P), SA_ERR_SHAPE, "priors[0]: mask");
    one_prior[0] = graph3;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, g, P), SA_ERR_SHAPE, "adjacency");
    one_prior[0] = tv;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, g, P), SA_ERR_SHAPE, "TotalVariation needs image inputs");
    one_prior[0] = refs3;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, g, P), SA_ERR_SHAPE, "reference_size");
    one_prior[0] = NULL;
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, g, P), SA_ERR_NULL_POINTER, "priors[0]");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, NULL, 1, 0, &loss, g, P), SA_ERR_NULL_POINTER, "priors");
    EXPECT_ERROR(sa_loss_and_gradients(m, x, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, -1, 0, &loss, g, P), SA_ERR_INVALID_ARGUMENT, "n_priors");
    o.priors = (const sa_prior *const *)&tv;
    o.n_priors = 1;
    EXPECT_ERROR(sa_train(m, x, N, y, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &t1, NULL, 0, NULL), SA_ERR_SHAPE, "options->priors[0]");

    /* A convolutional model takes TotalVariation; NaN inputs are refused. */
    int64_t image[3] = {1, 3, 3};
    sa_model *cnn = NULL;
    float w[2 * 9], b[2] = {0.1f, -0.2f}, w2[K * 2 * 3 * 3], b2[K] = {0};
    fill(w, 18, 0.5f);
    fill(w2, (size_t)K * 18, 0.3f);
    EXPECT_OK(sa_model_create(image, 3, &cnn));
    EXPECT_OK(sa_model_add_conv2d(cnn, w, 2, 1, 3, 3, b, 1, 1, 1, 1, 1, 1));
    EXPECT_OK(sa_model_add_activation(cnn, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_flatten(cnn));
    EXPECT_OK(sa_model_add_dense(cnn, w2, K, 18, b2));
    float images[N * 9];
    fill(images, N * 9, 1.0f);
    float cg[2 * 9 + 2 + K * 18 + K];
    one_prior[0] = tv;
    EXPECT_OK(sa_loss_and_gradients(cnn, images, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, cg, 2 * 9 + 2 + K * 18 + K));
    images[4] = NAN;
    EXPECT_ERROR(sa_loss_and_gradients(cnn, images, N, y, NULL, SA_LOSS_CROSS_ENTROPY, one_prior, 1, 0, &loss, cg, 2 * 9 + 2 + K * 18 + K), SA_ERR_NON_FINITE, "x");

    sa_model_free(cnn);
    sa_model_free(m);
    sa_prior_free(l1);
    sa_prior_free(gini);
    sa_prior_free(graph);
    sa_prior_free(tv);
    sa_prior_free(ig);
    sa_prior_free(l1k);
    sa_prior_free(mask3);
    sa_prior_free(graph3);
    sa_prior_free(refs3);
    sa_prior_free(NULL);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
