/*
 * test_layers.c — the layer and neuron attributions and NoiseTunnel through the C interface: closed forms on
 * a linear model (flatten, dense), the GradCAM shape query, noisy copies and their aggregation, and argument
 * errors naming the argument.
 */
#include "check.h"

#include <math.h>

#define D 16
#define K 2

int main(void) {
    float w[K * D], bias[K], x[2 * D], b[D], out[2 * D], delta[2];
    fill(w, K * D, 1.0f);
    fill(bias, K, 0.5f);
    fill(x, 2 * D, 1.0f);
    fill(b, D, 0.3f);
    int64_t shape[3] = {1, 4, 4};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 3, &m));
    EXPECT_OK(sa_model_add_flatten(m));
    EXPECT_OK(sa_model_add_dense(m, w, K, D, bias));
    int64_t target[2] = {1, 0};

    /* At the flatten's output (node 0) f is linear: a * grad = x * w_t; layer IG = (x - b) * w_t, delta 0.
     * float32: a few roundings of terms of magnitude <= 1. */
    EXPECT_OK(sa_layer_gradient_x_activation(m, x, 2, target, 2, 0, 0, out));
    double worst = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < D; j++) worst = fmax(worst, fabs(out[i * D + j] - x[i * D + j] * w[target[i] * D + j]));
    CHECK(worst < 1e-6, "layer gradient x activation: error %g", worst);
    EXPECT_OK(sa_layer_integrated_gradients(m, x, 2, b, 1, target, 2, 0, 5, SA_IG_GAUSS_LEGENDRE, 0, out, delta));
    worst = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < D; j++) worst = fmax(worst, fabs(out[i * D + j] - (x[i * D + j] - b[j]) * w[target[i] * D + j]));
    CHECK(worst < 1e-5 && fabs(delta[0]) < 1e-5 && fabs(delta[1]) < 1e-5, "layer IG: error %g, delta %g %g", worst,
          delta[0], delta[1]);

    /* Neuron 1 of the dense output: IG = (x - b) * w_1 for every example. */
    EXPECT_OK(sa_neuron_integrated_gradients(m, x, 2, b, 1, 1, 1, 5, SA_IG_GAUSS_LEGENDRE, 0, out, NULL));
    worst = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < D; j++) worst = fmax(worst, fabs(out[i * D + j] - (x[i * D + j] - b[j]) * w[D + j]));
    CHECK(worst < 1e-5, "neuron IG: error %g", worst);

    /* GradCAM of a layer without spatial axes: one value per example. */
    int64_t cam_shape[3] = {0}, ndim = 0;
    EXPECT_OK(sa_grad_cam_shape(m, 0, SA_UPSAMPLE_NEAREST, cam_shape, &ndim));
    CHECK(ndim == 1 && cam_shape[0] == 1, "grad cam shape: ndim %lld, [%lld]", (long long)ndim, (long long)cam_shape[0]);
    float cam[2];
    EXPECT_OK(sa_grad_cam(m, x, 2, target, 2, 0, 0, SA_UPSAMPLE_NEAREST, 0, cam));

    /* Noisy copies: stdev 0 copies the rows; their aggregate is the row (mean, mean of squares) or 0. */
    float copies[2 * 3 * D], agg[2 * D];
    EXPECT_OK(sa_noise_tunnel_inputs(x, 2, D, 3, 0.0f, 7, 0, copies));
    CHECK(memcmp(copies + 3 * D, x + D, D * sizeof(float)) == 0, "stdev 0 copies");
    EXPECT_OK(sa_noise_tunnel_aggregate(copies, 2, 3, D, SA_NT_SMOOTHGRAD, agg));
    CHECK(memcmp(agg, x, sizeof agg) == 0, "mean of equal copies");
    EXPECT_OK(sa_noise_tunnel_aggregate(copies, 2, 3, D, SA_NT_VARGRAD, agg));
    worst = 0;
    for (int j = 0; j < 2 * D; j++) worst = fmax(worst, fabs(agg[j]));
    CHECK(worst < 1e-6, "variance of equal copies %g", worst);
    /* Keyed by (seed, first_example + i, s): row 1 alone with first_example 1 draws the same noise. */
    float tail[3 * D];
    EXPECT_OK(sa_noise_tunnel_inputs(x, 2, D, 3, 0.5f, 7, 0, copies));
    EXPECT_OK(sa_noise_tunnel_inputs(x + D, 1, D, 3, 0.5f, 7, 1, tail));
    CHECK(memcmp(copies + 3 * D, tail, sizeof tail) == 0, "noise keyed by the example index");
    int64_t draws[6];
    EXPECT_OK(sa_noise_tunnel_baseline_draws(2, 3, 4, 7, 0, draws));
    int in_range = 1;
    for (int k = 0; k < 6; k++) in_range &= draws[k] >= 0 && draws[k] < 4;
    CHECK(in_range, "baseline draws in range");

    /* Errors name the argument. */
    EXPECT_ERROR(sa_layer_saliency(m, x, 2, target, 2, 2, 1, 0, out), SA_ERR_OUT_OF_RANGE, "layer = 2 is out of range");
    EXPECT_ERROR(sa_layer_conductance(m, x, 2, b, 1, target, 2, -1, 5, SA_IG_GAUSS_LEGENDRE, 0, out, NULL),
                 SA_ERR_OUT_OF_RANGE, "layer = -1");
    EXPECT_ERROR(sa_neuron_integrated_gradients(m, x, 2, b, 1, 1, 2, 5, SA_IG_GAUSS_LEGENDRE, 0, out, NULL),
                 SA_ERR_OUT_OF_RANGE, "neuron = 2");
    EXPECT_ERROR(sa_grad_cam(m, x, 2, target, 2, 0, 1, 9, 0, cam), SA_ERR_UNKNOWN_ENUM, "upsample");
    EXPECT_ERROR(sa_layer_deeplift(m, x, 2, b, 1, target, 2, 0, 0, 0, 1, 0, NULL, NULL), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_noise_tunnel_aggregate(copies, 2, 3, D, 7, agg), SA_ERR_UNKNOWN_ENUM, "nt_type");
    EXPECT_ERROR(sa_noise_tunnel_inputs(x, 2, D, 0, 0.5f, 7, 0, copies), SA_ERR_INVALID_ARGUMENT, "nt_samples");

    /* A NaN in the caller's rows is reported with its argument and its index in the whole buffer. */
    float bad[2 * D];
    memcpy(bad, x, sizeof bad);
    bad[D + 3] = NAN;
    EXPECT_ERROR(sa_layer_integrated_gradients(m, bad, 2, b, 1, target, 2, 0, 5, SA_IG_GAUSS_LEGENDRE, 0, out, NULL),
                 SA_ERR_NON_FINITE, "x");
    EXPECT_ERROR(sa_grad_cam(m, bad, 2, target, 2, 0, 1, SA_UPSAMPLE_NONE, 0, cam), SA_ERR_NON_FINITE, "19");
    EXPECT_ERROR(sa_noise_tunnel_inputs(bad, 2, D, 3, 0.5f, 7, 0, copies), SA_ERR_NON_FINITE, "19");

    sa_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
