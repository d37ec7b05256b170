/*
 * test_rules.c — LRP, guided backpropagation and deconvolution through the C interface: closed forms on a
 * 2 → 2 → ReLU → 1 network, the options struct, per-node rules, z^B bounds, and argument errors.
 */
#include "check.h"

#include <math.h>

/* dense W = [[1, 2], [3, -1]] (no bias), ReLU, dense [1, 1]. */
static sa_model *tiny(void) {
    float w1[4] = {1, 2, 3, -1}, w2[2] = {1, 1};
    int64_t shape[1] = {2};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, 2, 2, NULL));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, 1, 2, NULL));
    return m;
}

static int near(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > 1e-5f) return 0;
    return 1;
}

int main(void) {
    sa_model *m = tiny();
    /* x = (1, 1): z = (3, 2), f = 5, R = (1 + 3, 2 - 1); x = (1, -1): z = (-1, 4), f = 4, R = (3, 1). */
    float x[4] = {1, 1, 1, -1}, out[4], delta[2];
    int64_t target = 0;
    EXPECT_OK(sa_lrp(m, x, 2, &target, 1, NULL, out, delta));
    float lrp0[4] = {4, 1, 3, 1};
    CHECK(near(out, lrp0, 4), "lrp epsilon: got %g %g %g %g", out[0], out[1], out[2], out[3]);
    CHECK(fabsf(delta[0]) < 1e-5f && fabsf(delta[1]) < 1e-5f, "lrp delta: %g %g", delta[0], delta[1]);

    /* Guided backprop masks the dead unit and keeps positive gradients; deconvolution only keeps positive ones. */
    EXPECT_OK(sa_guided_backprop(m, x, 2, &target, 1, 0, out));
    float guided[4] = {4, 1, 3, -1};
    CHECK(near(out, guided, 4), "guided: got %g %g %g %g", out[0], out[1], out[2], out[3]);
    EXPECT_OK(sa_deconvolution(m, x, 2, &target, 1, 1, out));
    float deconv[4] = {4, 1, 4, 1};
    CHECK(near(out, deconv, 4), "deconvolution: got %g %g %g %g", out[0], out[1], out[2], out[3]);

    /* Composite: z^B on node 0 with bounds [-1, 1]. Example 2: z = 4 + 3 + 1 = 8, R = (6, 2) * 4 / 8. Example 1:
     * unit 0: w = (1, 2), z = 3 + 1 + 2 = 6, terms (2, 4) * 3 / 6; unit 1: z = 2 + 3 + 1 = 6, terms (6, 0) * 2 / 6. */
    sa_lrp_options o = sa_lrp_default_options();
    float lo = -1, hi = 1;
    o.rule = SA_LRP_COMPOSITE;
    o.low = &lo;
    o.n_low = 1;
    o.high = &hi;
    o.n_high = 1;
    EXPECT_OK(sa_lrp(m, x, 2, &target, 1, &o, out, NULL));
    float zb[4] = {1 + 2, 2 + 0, 3, 1};
    CHECK(near(out, zb, 4), "lrp composite: got %g %g %g %g", out[0], out[1], out[2], out[3]);

    /* Per-node rules: gamma = 1 on node 0 (W + W+ = [[2, 4], [6, -1]]), the preset elsewhere. Example 2:
     * z = (-2, 7), only unit 1: (6, 1) * 4 / 7. */
    int rules[3] = {SA_LRP_GAMMA, SA_LRP_DEFAULT, SA_LRP_DEFAULT};
    o = sa_lrp_default_options();
    o.node_rules = rules;
    o.n_nodes = 3;
    o.gamma = 1;
    EXPECT_OK(sa_lrp(m, x + 2, 1, &target, 1, &o, out, NULL));
    float gamma[2] = {24.0f / 7, 4.0f / 7};
    CHECK(near(out, gamma, 2), "lrp gamma node rule: got %g %g", out[0], out[1]);

    /* Per-node epsilon (NaN: the call's): epsilon = 1 on node 2 only. Example 1: the last layer gives
     * a * 5 / 6 = (2.5, 5 / 3), node 0 takes epsilon 1e-9: (2.5 / 3 + 3 * (5 / 3) / 2, 2 * 2.5 / 3 - (5 / 3) / 2). */
    double eps[3] = {NAN, NAN, 1};
    o = sa_lrp_default_options();
    o.node_epsilon = eps;
    o.n_nodes = 3;
    EXPECT_OK(sa_lrp(m, x, 1, &target, 1, &o, out, delta));
    float pe[2] = {2.5f / 3 + 2.5f, 5.0f / 3 - 2.5f / 3};
    CHECK(near(out, pe, 2), "lrp node epsilon: got %g %g", out[0], out[1]);
    CHECK(fabsf(delta[0] - (5 - 2.5f - 5.0f / 3)) < 1e-5f, "lrp node epsilon delta: %g", delta[0]);
    eps[0] = -1;
    EXPECT_ERROR(sa_lrp(m, x, 1, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "node_epsilon[0]");
    o.node_epsilon = NULL;
    EXPECT_ERROR(sa_lrp(m, x, 1, &target, 1, &o, out, NULL), SA_ERR_NULL_POINTER, "n_nodes");

    /* Errors name the argument. */
    o = sa_lrp_default_options();
    o.rule = SA_LRP_ZB;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_UNKNOWN_ENUM, "options->rule");
    o.rule = 42;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_UNKNOWN_ENUM, "options->rule");
    o = sa_lrp_default_options();
    o.node_rules = rules;
    o.n_nodes = 2;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_SHAPE, "n_nodes");
    o.n_nodes = 3;
    rules[2] = 17;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_UNKNOWN_ENUM, "node_rules[2]");
    rules[2] = SA_LRP_DEFAULT;
    rules[1] = SA_LRP_GAMMA;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "node 1 (ReLU)");
    rules[1] = SA_LRP_DEFAULT;
    rules[2] = SA_LRP_ZB;
    o.low = &lo;
    o.n_low = 1;
    o.high = &hi;
    o.n_high = 1;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "z^B");
    o = sa_lrp_default_options();
    o.rule = SA_LRP_COMPOSITE;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "low and high");
    o.low = &hi;
    o.n_low = 1;
    o.high = &lo;
    o.n_high = 1;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "low");
    o.n_low = 3;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_SHAPE, "n_low");
    o = sa_lrp_default_options();
    o.alpha = 2;
    o.rule = SA_LRP_ALPHA_BETA;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "alpha");
    o = sa_lrp_default_options();
    o.struct_size = 8;
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, &o, out, NULL), SA_ERR_INVALID_ARGUMENT, "struct_size");
    EXPECT_ERROR(sa_lrp(m, x, 2, &target, 1, NULL, NULL, NULL), SA_ERR_NULL_POINTER, "out");
    int64_t bad = 1;
    EXPECT_ERROR(sa_guided_backprop(m, x, 2, &bad, 1, 0, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_deconvolution(NULL, x, 2, &target, 1, 0, out), SA_ERR_NULL_POINTER, "model");

    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
