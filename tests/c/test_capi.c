/*
 * test_capi.c — the C interface of libswiftattr.so, exercised from C exactly as a user would.
 *
 * Builds an MLP and small CNNs layer by layer, runs the forward pass and the gradient methods, checks
 * Captum's Integrated Gradients test vector, every error path (status code and a message naming the
 * argument), save/load, and concurrent use of one model from four threads.
 *
 * Build and run: tests/c/run.sh. Prints "N passed, M failed" last; exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include "swiftattr.h"
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

/* ------------------------------------------------------------------------------------------------ */
/* MLP 4 -> 8 -> ReLU -> 3, with a plain C reference forward.                                        */

static float W1[8 * 4], B1[8], W2[3 * 8], B2[3];

static sa_model *build_mlp(void) {
    int64_t shape[1] = {4};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, W1, 8, 4, B1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, W2, 3, 8, B2));
    return m;
}

static void mlp_reference(const float *x, double *y) {
    double h[8];
    for (int o = 0; o < 8; o++) {
        double s = B1[o];
        for (int i = 0; i < 4; i++) s += (double)W1[o * 4 + i] * x[i];
        h[o] = s > 0 ? s : 0;
    }
    for (int o = 0; o < 3; o++) {
        double s = B2[o];
        for (int i = 0; i < 8; i++) s += (double)W2[o * 8 + i] * h[i];
        y[o] = s;
    }
}

static void test_mlp(void) {
    fill(W1, 32, 0.6f); fill(B1, 8, 0.3f); fill(W2, 24, 0.5f); fill(B2, 3, 0.3f);
    sa_model *m = build_mlp();
    int64_t count = -1, size = -1, shape[3] = {0, 0, 0}, ndim = 0;
    int kind = -1;
    EXPECT_OK(sa_model_num_layers(m, &count));
    CHECK(count == 3, "num_layers = %lld", (long long)count);
    EXPECT_OK(sa_model_size_at(m, 0, &size));
    CHECK(size == 4, "input size %lld", (long long)size);
    EXPECT_OK(sa_model_size_at(m, 3, &size));
    CHECK(size == 3, "output size %lld", (long long)size);
    EXPECT_OK(sa_model_input_shape(m, shape, &ndim));
    CHECK(ndim == 1 && shape[0] == 4, "input shape");
    EXPECT_OK(sa_model_layer_kind(m, 1, &kind));
    CHECK(kind == SA_LAYER_RELU, "layer kind %d", kind);
    CHECK(sa_version() == SA_VERSION, "sa_version() = %d, SA_VERSION = %d", sa_version(), SA_VERSION);

    enum { N = 5 };
    float x[N * 4], y[N * 3];
    fill(x, N * 4, 1.5f);
    EXPECT_OK(sa_forward(m, x, N, y));
    double worst = 0;
    for (int r = 0; r < N; r++) {
        double ref[3];
        mlp_reference(x + 4 * r, ref);
        for (int o = 0; o < 3; o++) worst = fmax(worst, fabs(ref[o] - y[r * 3 + o]));
    }
    CHECK(worst < 1e-5, "MLP forward differs from the C reference by %g", worst);

    float hidden[N * 8];
    EXPECT_OK(sa_forward_to_layer(m, x, N, 2, hidden));
    float all[N * 3];
    EXPECT_OK(sa_forward_to_layer(m, x, N, 3, all));
    /* Bit-exact only where the same computation repeats: forward twice. forward_to_layer runs the same
     * layers through another chunking (other GEMM shapes, so OpenBLAS may pick other kernels): there the
     * float32 bound is K·u·Σ|w||x| per layer (K ≤ 8, u = 6e-8), below 1e-5 of the activations' scale. */
    float again[N * 3];
    EXPECT_OK(sa_forward(m, x, N, again));
    CHECK(memcmp(again, y, sizeof y) == 0, "forward repeats bit for bit");
    double scale = 1;
    for (int i = 0; i < N * 3; i++) scale = fmax(scale, fabs(y[i]));
    CHECK(max_abs_diff(all, y, N * 3) <= 1e-5 * scale, "forward_to_layer(num_layers) == forward within float32 rounding");

    /* Saliency = gradient with a one-hot cotangent; input x gradient = x * saliency. Finite differences
     * of the C reference check the gradient itself. */
    int64_t target[N] = {0, 1, 2, 1, 0};
    float cot[N * 3] = {0}, grad[N * 4], sal[N * 4], sal_abs[N * 4], ixg[N * 4];
    for (int r = 0; r < N; r++) cot[r * 3 + target[r]] = 1;
    EXPECT_OK(sa_gradient(m, x, N, cot, grad));
    EXPECT_OK(sa_saliency(m, x, N, target, N, 0, sal));
    EXPECT_OK(sa_saliency(m, x, N, target, N, 1, sal_abs));
    EXPECT_OK(sa_input_x_gradient(m, x, N, target, N, ixg));
    CHECK(max_abs_diff(grad, sal, N * 4) < 1e-6, "saliency == gradient with one-hot cotangent");
    int ok_abs = 1, ok_ixg = 1;
    for (int i = 0; i < N * 4; i++) {
        if (fabsf(sal_abs[i] - fabsf(sal[i])) > 1e-7f) ok_abs = 0;
        if (fabsf(ixg[i] - x[i] * sal[i]) > 1e-6f) ok_ixg = 0;
    }
    CHECK(ok_abs, "saliency abs");
    CHECK(ok_ixg, "input x gradient");
    worst = 0;
    for (int r = 0; r < N; r++) {
        for (int i = 0; i < 4; i++) {
            float xp[4], xm[4];
            double yp[3], ym[3];
            memcpy(xp, x + 4 * r, sizeof xp);
            memcpy(xm, x + 4 * r, sizeof xm);
            xp[i] += 1e-3f;
            xm[i] -= 1e-3f;
            mlp_reference(xp, yp);
            mlp_reference(xm, ym);
            double fd = (yp[target[r]] - ym[target[r]]) / ((double)xp[i] - (double)xm[i]);
            worst = fmax(worst, fabs(fd - grad[r * 4 + i]));
        }
    }
    CHECK(worst < 1e-4, "gradient vs finite differences: %g", worst);

    /* Integrated Gradients: completeness (delta) on the MLP, delta may be NULL. */
    float ig[N * 4], delta[N], ig2[N * 4];
    EXPECT_OK(sa_integrated_gradients(m, x, N, NULL, 0, target, N, 200, SA_IG_GAUSS_LEGENDRE, 0, ig, delta));
    EXPECT_OK(sa_integrated_gradients(m, x, N, NULL, 0, target, N, 200, SA_IG_GAUSS_LEGENDRE, 7, ig2, NULL));
    CHECK(max_abs_diff(ig, ig2, N * 4) < 1e-5, "IG independent of internal_batch_size");
    int methods_ok = 1;
    for (int method = SA_IG_RIEMANN_LEFT; method <= SA_IG_GAUSS_LEGENDRE; method++)
        if (sa_integrated_gradients(m, x, N, x, 1, target, 1, 16, method, 0, ig2, NULL) != SA_OK) methods_ok = 0;
    CHECK(methods_ok, "every sa_ig_method runs");

    /* Expected Gradients and SmoothGrad: seeded. */
    float refs[3 * 4], eg1[N * 4], eg2[N * 4], eg3[N * 4], sg1[N * 4], sg2[N * 4];
    fill(refs, 12, 1.0f);
    EXPECT_OK(sa_expected_gradients(m, x, N, refs, 3, target, N, 50, 42, 0, 0, eg1));
    EXPECT_OK(sa_expected_gradients(m, x, N, refs, 3, target, N, 50, 42, 0, 13, eg2));
    EXPECT_OK(sa_expected_gradients(m, x, N, refs, 3, target, N, 50, 43, 0, 0, eg3));
    CHECK(max_abs_diff(eg1, eg2, N * 4) < 1e-6, "EG same seed, other chunk: same numbers");
    CHECK(max_abs_diff(eg1, eg3, N * 4) > 1e-5, "EG different seeds differ");
    for (int nt = SA_NT_SMOOTHGRAD; nt <= SA_NT_VARGRAD; nt++) {
        EXPECT_OK(sa_smoothgrad(m, x, N, target, N, nt, 20, 0.3f, 7, 0, 0, sg1));
        EXPECT_OK(sa_smoothgrad(m, x, N, target, N, nt, 20, 0.3f, 7, 0, 0, sg2));
        CHECK(memcmp(sg1, sg2, sizeof sg1) == 0, "smoothgrad nt_type %d: same seed, same numbers", nt);
    }
    sa_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
/* Captum's test vector through C: f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2)), x = (3, 1) -> (1.5, -0.5). */

static void test_captum_vector(void) {
    int64_t shape[1] = {2};
    sa_model *m = NULL;
    float w[2] = {1, -1}, b[1] = {-1};
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_dense(m, w, 1, 2, b));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    float x[2] = {3, 1}, zero[2] = {0, 0}, out[2], delta[1];
    int64_t target = 0;
    EXPECT_OK(sa_integrated_gradients(m, x, 1, NULL, 0, &target, 1, 50, SA_IG_GAUSS_LEGENDRE, 0, out, delta));
    CHECK(fabsf(out[0] - 1.5f) < 1e-5f && fabsf(out[1] + 0.5f) < 1e-5f, "Captum vector: got (%g, %g)", out[0], out[1]);
    CHECK(fabsf(delta[0]) < 1e-5f, "Captum vector delta %g", delta[0]);
    EXPECT_OK(sa_integrated_gradients(m, x, 1, zero, 1, &target, 1, 50, SA_IG_RIEMANN_MIDDLE, 0, out, NULL));
    CHECK(fabsf(out[0] - 1.5f) < 1e-5f && fabsf(out[1] + 0.5f) < 1e-5f, "Captum vector (middle): got (%g, %g)", out[0], out[1]);
    sa_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
/* CNNs: 2-D conv / ReLU / max pool / flatten / dense, and a 1-D one with every remaining kind.        */

static float CW1[2 * 1 * 3 * 3], CB1[2], CW2[3 * 18], CB2[3];

static sa_model *build_cnn(void) {
    int64_t shape[3] = {1, 6, 6};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 3, &m));
    EXPECT_OK(sa_model_add_conv2d(m, CW1, 2, 1, 3, 3, CB1, 1, 1, 1, 1, 1, 1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));
    EXPECT_OK(sa_model_add_maxpool2d(m, 2, 2, 2, 2, 0, 0));
    EXPECT_OK(sa_model_add_flatten(m));
    EXPECT_OK(sa_model_add_dense(m, CW2, 3, 18, CB2));
    return m;
}

static sa_model *build_cnn1d(void) {
    int64_t shape[2] = {2, 10};
    sa_model *m = NULL;
    float w[3 * 2 * 3], b[3], g[3] = {1, 0.5f, 2}, beta[3] = {0, 0.1f, -0.1f}, mean[3] = {0.1f, 0, -0.2f},
          var[3] = {1, 2, 0.5f}, w2[2 * 3];
    fill(w, 18, 0.5f); fill(b, 3, 0.2f); fill(w2, 6, 0.5f);
    EXPECT_OK(sa_model_create(shape, 2, &m));
    EXPECT_OK(sa_model_add_conv1d(m, w, 3, 2, 3, b, 1, 1, 2));
    EXPECT_OK(sa_model_add_batchnorm(m, 3, g, beta, mean, var, 1e-5f));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_LEAKY_RELU, 0.1f));
    EXPECT_OK(sa_model_add_maxpool1d(m, 2, 2, 0));
    EXPECT_OK(sa_model_add_avgpool1d(m, 3, 1, 1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_ELU, 1.0f));
    EXPECT_OK(sa_model_add_global_avgpool(m));
    EXPECT_OK(sa_model_add_dropout(m, 0.5f));
    EXPECT_OK(sa_model_add_dense(m, w2, 2, 3, NULL));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_SOFTPLUS, 2.0f));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_SIGMOID, 0));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_SOFTMAX, 0));
    return m;
}

static void test_cnn(void) {
    fill(CW1, 18, 0.5f); fill(CB1, 2, 0.2f); fill(CW2, 54, 0.4f); fill(CB2, 3, 0.2f);
    sa_model *m = build_cnn();
    int64_t size = 0;
    EXPECT_OK(sa_model_size_at(m, 1, &size));
    CHECK(size == 2 * 6 * 6, "conv output size %lld", (long long)size);
    EXPECT_OK(sa_model_size_at(m, 3, &size));
    CHECK(size == 2 * 3 * 3, "pool output size %lld", (long long)size);
    int64_t vshape[3] = {0, 0, 0}, vndim = 0;
    EXPECT_OK(sa_model_shape_at(m, 3, vshape, &vndim));
    CHECK(vndim == 3 && vshape[0] == 2 && vshape[1] == 3 && vshape[2] == 3, "pool output shape");
    enum { N = 3 };
    float x[N * 36], y[N * 3], ig[N * 36], delta[N];
    fill(x, N * 36, 1.0f);
    EXPECT_OK(sa_forward(m, x, N, y));
    int finite = 1;
    for (int i = 0; i < N * 3; i++) finite &= isfinite(y[i]) != 0;
    CHECK(finite, "CNN forward is finite");
    int64_t target[1] = {1};
    EXPECT_OK(sa_integrated_gradients(m, x, N, NULL, 0, target, 1, 50, SA_IG_GAUSS_LEGENDRE, 0, ig, delta));
    sa_model_free(m);

    sa_model *m1 = build_cnn1d();
    float x1[N * 20], y1[N * 2];
    fill(x1, N * 20, 1.0f);
    EXPECT_OK(sa_forward(m1, x1, N, y1));
    int sums = 1;
    for (int r = 0; r < N; r++) sums &= fabsf(y1[2 * r] + y1[2 * r + 1] - 1) < 1e-6f;
    CHECK(sums, "softmax outputs sum to 1");
    sa_model_free(m1);
}

/* ------------------------------------------------------------------------------------------------ */
/* Every error path.                                                                                  */

static void test_errors(void) {
    float w[64];
    fill(w, 64, 1);
    int64_t shape1[1] = {4}, shape3[3] = {1, 6, 6}, bad[1] = {0}, four[4] = {1, 2, 3, 4};
    sa_model *m = NULL;

    /* Model creation. */
    EXPECT_ERROR(sa_model_create(NULL, 1, &m), SA_ERR_NULL_POINTER, "input_shape");
    EXPECT_ERROR(sa_model_create(shape1, 0, &m), SA_ERR_INVALID_ARGUMENT, "input_shape");
    EXPECT_ERROR(sa_model_create(shape1, -1, &m), SA_ERR_INVALID_ARGUMENT, "input_shape");
    EXPECT_ERROR(sa_model_create(bad, 1, &m), SA_ERR_INVALID_ARGUMENT, "input_shape");
    EXPECT_ERROR(sa_model_create(four, 4, &m), SA_ERR_SHAPE, "input_shape");
    EXPECT_ERROR(sa_model_create(shape1, 1, NULL), SA_ERR_NULL_POINTER, "out_model");

    /* Adding layers. */
    EXPECT_OK(sa_model_create(shape1, 1, &m));
    EXPECT_ERROR(sa_model_add_dense(NULL, w, 8, 4, NULL), SA_ERR_NULL_POINTER, "model");
    EXPECT_ERROR(sa_model_add_dense(m, NULL, 8, 4, NULL), SA_ERR_NULL_POINTER, "weight");
    EXPECT_ERROR(sa_model_add_dense(m, w, 0, 4, NULL), SA_ERR_INVALID_ARGUMENT, "out_features");
    EXPECT_ERROR(sa_model_add_dense(m, w, 8, -4, NULL), SA_ERR_INVALID_ARGUMENT, "in_features");
    EXPECT_ERROR(sa_model_add_dense(m, w, INT64_MAX, INT64_MAX, NULL), SA_ERR_INVALID_ARGUMENT, "out_features");
    EXPECT_ERROR(sa_model_add_dense(m, w, 8, 3, NULL), SA_ERR_SHAPE, "input features");
    {
        float nan_w[8 * 4];
        memcpy(nan_w, w, sizeof nan_w);
        nan_w[5] = NAN;
        EXPECT_ERROR(sa_model_add_dense(m, nan_w, 8, 4, NULL), SA_ERR_NON_FINITE, "weight");
        float nan_b[8] = {0, 0, INFINITY, 0, 0, 0, 0, 0};
        EXPECT_ERROR(sa_model_add_dense(m, w, 8, 4, nan_b), SA_ERR_NON_FINITE, "bias");
    }
    EXPECT_ERROR(sa_model_add_activation(m, 99, 0), SA_ERR_UNKNOWN_ENUM, "kind");
    EXPECT_ERROR(sa_model_add_activation(m, -1, 0), SA_ERR_UNKNOWN_ENUM, "kind");
    EXPECT_ERROR(sa_model_add_activation(m, SA_LAYER_DENSE, 0), SA_ERR_UNKNOWN_ENUM, "kind");
    EXPECT_ERROR(sa_model_add_activation(m, SA_LAYER_SOFTPLUS, 0), SA_ERR_INVALID_ARGUMENT, "beta");
    EXPECT_ERROR(sa_model_add_activation(m, SA_LAYER_LEAKY_RELU, NAN), SA_ERR_NON_FINITE, "slope");
    EXPECT_ERROR(sa_model_add_dropout(m, 1.5f), SA_ERR_INVALID_ARGUMENT, "Dropout p");
    EXPECT_ERROR(sa_model_add_maxpool1d(m, 2, 2, 0), SA_ERR_SHAPE, "MaxPool1d");
    EXPECT_ERROR(sa_model_add_global_avgpool(m), SA_ERR_SHAPE, "GlobalAvgPool");
    {
        float ones[4] = {1, 1, 1, 1}, zeros[4] = {0, 0, 0, 0}, negative[4] = {1, -2, 1, 1};
        EXPECT_ERROR(sa_model_add_batchnorm(m, 4, NULL, NULL, NULL, ones, 1e-5f), SA_ERR_NULL_POINTER, "running_mean");
        EXPECT_ERROR(sa_model_add_batchnorm(m, 4, NULL, NULL, zeros, NULL, 1e-5f), SA_ERR_NULL_POINTER, "running_var");
        EXPECT_ERROR(sa_model_add_batchnorm(m, 4, NULL, NULL, zeros, negative, 1e-5f), SA_ERR_INVALID_ARGUMENT, "running_var");
        EXPECT_ERROR(sa_model_add_batchnorm(m, 3, NULL, NULL, zeros, ones, 1e-5f), SA_ERR_SHAPE, "BatchNorm");
        EXPECT_ERROR(sa_model_add_batchnorm(m, 0, NULL, NULL, zeros, ones, 1e-5f), SA_ERR_INVALID_ARGUMENT, "channels");
    }
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_SOFTMAX, 0));
    EXPECT_ERROR(sa_model_add_activation(m, SA_LAYER_RELU, 0), SA_ERR_INVALID_ARGUMENT, "Softmax");
    sa_model_free(m);
    sa_model_free(NULL); /* ignored */

    /* Convolutions and pools. */
    EXPECT_OK(sa_model_create(shape3, 3, &m));
    EXPECT_ERROR(sa_model_add_conv2d(m, NULL, 2, 1, 3, 3, NULL, 1, 1, 0, 0, 1, 1), SA_ERR_NULL_POINTER, "weight");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 0, 1, 0, 0, 1, 1), SA_ERR_INVALID_ARGUMENT, "stride");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 1, 1, -1, 0, 1, 1), SA_ERR_INVALID_ARGUMENT, "padding");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 1, 1, 0, 0, 1, 0), SA_ERR_INVALID_ARGUMENT, "dilation");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 2, 1, 0, 3, NULL, 1, 1, 0, 0, 1, 1), SA_ERR_INVALID_ARGUMENT, "kernel_h");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 2, 3, 3, 3, NULL, 1, 1, 0, 0, 1, 1), SA_ERR_SHAPE, "input channels");
    EXPECT_ERROR(sa_model_add_conv2d(m, w, 1, 1, 7, 3, NULL, 1, 1, 0, 0, 1, 1), SA_ERR_SHAPE, "kernel extent");
    EXPECT_ERROR(sa_model_add_conv1d(m, w, 2, 1, 3, NULL, 1, 0, 1), SA_ERR_SHAPE, "Conv1d");
    EXPECT_ERROR(sa_model_add_maxpool2d(m, 2, 2, 2, 2, 2, 0), SA_ERR_INVALID_ARGUMENT, "padding");
    EXPECT_ERROR(sa_model_add_avgpool2d(m, 2, 2, 0, 2, 0, 0), SA_ERR_INVALID_ARGUMENT, "stride");
    EXPECT_OK(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 1, 1, 0, 0, 1, 1));
    EXPECT_ERROR(sa_model_add_dense(m, w, 1, 32, NULL), SA_ERR_SHAPE, "Flatten"); /* dense after conv, no Flatten */
    sa_model_free(m);

    /* Computations. */
    m = build_mlp();
    enum { N = 3 };
    float x[N * 4], out[N * 4], y[N * 3], delta[N], refs[2 * 4];
    fill(x, N * 4, 1);
    fill(refs, 8, 1);
    int64_t t1[1] = {2}, t3[3] = {0, 1, 2}, t_bad[3] = {0, 3, 1}, t_neg[1] = {-1};

    EXPECT_ERROR(sa_forward(NULL, x, N, y), SA_ERR_NULL_POINTER, "model");
    EXPECT_ERROR(sa_forward(m, NULL, N, y), SA_ERR_NULL_POINTER, "x");
    EXPECT_ERROR(sa_forward(m, x, N, NULL), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_forward(m, x, 0, y), SA_ERR_INVALID_ARGUMENT, "n");
    EXPECT_ERROR(sa_forward(m, x, -2, y), SA_ERR_INVALID_ARGUMENT, "n");
    EXPECT_ERROR(sa_forward(m, x, INT64_MAX, y), SA_ERR_INVALID_ARGUMENT, "n");
    {
        float xn[N * 4];
        memcpy(xn, x, sizeof xn);
        xn[7] = NAN;
        EXPECT_ERROR(sa_forward(m, xn, N, y), SA_ERR_NON_FINITE, "x");
        EXPECT_ERROR(sa_integrated_gradients(m, xn, N, NULL, 0, t1, 1, 10, 4, 0, out, NULL), SA_ERR_NON_FINITE, "x");
        xn[7] = -INFINITY;
        EXPECT_ERROR(sa_saliency(m, xn, N, t1, 1, 1, out), SA_ERR_NON_FINITE, "x");
        float base[4] = {0, 0, NAN, 0}; /* n_baselines = 1: one example of 4 floats */
        EXPECT_ERROR(sa_integrated_gradients(m, x, N, base, 1, t1, 1, 10, 4, 0, out, NULL), SA_ERR_NON_FINITE, "baselines");
        EXPECT_ERROR(sa_integrated_gradients(m, x, N, xn, N, t1, 1, 10, 4, 0, out, NULL), SA_ERR_NON_FINITE, "baselines");
    }
    EXPECT_ERROR(sa_forward_to_layer(m, x, N, 4, y), SA_ERR_OUT_OF_RANGE, "layer");
    EXPECT_ERROR(sa_forward_to_layer(m, x, N, -1, y), SA_ERR_OUT_OF_RANGE, "layer");
    EXPECT_ERROR(sa_gradient(m, x, N, NULL, out), SA_ERR_NULL_POINTER, "cotangent");

    /* Targets. */
    EXPECT_ERROR(sa_saliency(m, x, N, NULL, 1, 1, out), SA_ERR_NULL_POINTER, "target");
    EXPECT_ERROR(sa_saliency(m, x, N, t3, 2, 1, out), SA_ERR_SHAPE, "n_target");
    EXPECT_ERROR(sa_saliency(m, x, N, t3, 0, 1, out), SA_ERR_SHAPE, "n_target");
    EXPECT_ERROR(sa_saliency(m, x, N, t_bad, 3, 1, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_saliency(m, x, N, t_neg, 1, 1, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_input_x_gradient(m, x, N, t_bad, 3, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_saliency(m, x, N, t1, 1, 1, NULL), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t_bad, 3, 10, 4, 0, out, delta), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t3, 2, 10, 4, 0, out, delta), SA_ERR_SHAPE, "n_target");

    /* Integrated Gradients arguments. */
    EXPECT_ERROR(sa_integrated_gradients(NULL, x, N, NULL, 0, t1, 1, 10, 4, 0, out, delta), SA_ERR_NULL_POINTER, "model");
    EXPECT_ERROR(sa_integrated_gradients(m, NULL, N, NULL, 0, t1, 1, 10, 4, 0, out, delta), SA_ERR_NULL_POINTER, "x");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, 10, 4, 0, NULL, delta), SA_ERR_NULL_POINTER, "out");
    EXPECT_ERROR(sa_integrated_gradients(m, x, 0, NULL, 0, t1, 1, 10, 4, 0, out, delta), SA_ERR_INVALID_ARGUMENT, "n");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, 10, 5, 0, out, delta), SA_ERR_UNKNOWN_ENUM, "method");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, 10, -1, 0, out, delta), SA_ERR_UNKNOWN_ENUM, "method");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, 0, 4, 0, out, delta), SA_ERR_INVALID_ARGUMENT, "n_steps");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, -5, 4, 0, out, delta), SA_ERR_INVALID_ARGUMENT, "n_steps");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 0, t1, 1, 1, SA_IG_RIEMANN_TRAPEZOID, 0, out, delta), SA_ERR_INVALID_ARGUMENT, "n_steps");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, NULL, 1, t1, 1, 10, 4, 0, out, delta), SA_ERR_NULL_POINTER, "baselines");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, x, 2, t1, 1, 10, 4, 0, out, delta), SA_ERR_SHAPE, "n_baselines");
    EXPECT_ERROR(sa_integrated_gradients(m, x, N, x, -1, t1, 1, 10, 4, 0, out, delta), SA_ERR_SHAPE, "n_baselines");

    /* Expected Gradients and SmoothGrad arguments. */
    EXPECT_ERROR(sa_expected_gradients(m, x, N, NULL, 2, t1, 1, 10, 1, 0, 0, out), SA_ERR_NULL_POINTER, "references");
    EXPECT_ERROR(sa_expected_gradients(m, x, N, refs, 0, t1, 1, 10, 1, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "n_references");
    EXPECT_ERROR(sa_expected_gradients(m, x, N, refs, 2, t1, 1, 0, 1, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "n_samples");
    EXPECT_ERROR(sa_expected_gradients(m, x, N, refs, 2, t_bad, 3, 10, 1, 0, 0, out), SA_ERR_OUT_OF_RANGE, "target");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, t1, 1, 3, 10, 0.1f, 1, 0, 0, out), SA_ERR_UNKNOWN_ENUM, "nt_type");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, t1, 1, -1, 10, 0.1f, 1, 0, 0, out), SA_ERR_UNKNOWN_ENUM, "nt_type");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, t1, 1, 0, 0, 0.1f, 1, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "n_samples");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, t1, 1, 0, 10, -0.1f, 1, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "stdevs");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, t1, 1, 0, 10, NAN, 1, 0, 0, out), SA_ERR_INVALID_ARGUMENT, "stdevs");
    EXPECT_ERROR(sa_smoothgrad(m, x, N, NULL, 1, 0, 10, 0.1f, 1, 0, 0, out), SA_ERR_NULL_POINTER, "target");

    /* Inspection. */
    int64_t v = 0;
    int kind = 0;
    EXPECT_ERROR(sa_model_size_at(m, 4, &v), SA_ERR_OUT_OF_RANGE, "layer");
    EXPECT_ERROR(sa_model_size_at(m, 0, NULL), SA_ERR_NULL_POINTER, "size");
    int64_t sh[3];
    EXPECT_ERROR(sa_model_shape_at(m, 4, sh, &v), SA_ERR_OUT_OF_RANGE, "value");
    EXPECT_ERROR(sa_model_shape_at(m, 0, NULL, &v), SA_ERR_NULL_POINTER, "shape");
    EXPECT_ERROR(sa_model_shape_at(m, 0, sh, NULL), SA_ERR_NULL_POINTER, "ndim");
    EXPECT_ERROR(sa_model_layer_kind(m, 3, &kind), SA_ERR_OUT_OF_RANGE, "layer");
    EXPECT_ERROR(sa_model_num_layers(NULL, &v), SA_ERR_NULL_POINTER, "model");
    EXPECT_ERROR(sa_model_input_shape(m, NULL, &v), SA_ERR_NULL_POINTER, "shape");

    /* A used model is frozen. */
    EXPECT_OK(sa_forward(m, x, N, y));
    EXPECT_ERROR(sa_model_add_activation(m, SA_LAYER_TANH, 0), SA_ERR_FROZEN, "model");
    EXPECT_ERROR(sa_model_add_dense(m, w, 2, 3, NULL), SA_ERR_FROZEN, "model");
    sa_model_free(m);

    /* The message is per thread and survives successful calls. */
    EXPECT_ERROR(sa_forward(NULL, x, N, y), SA_ERR_NULL_POINTER, "model");
    CHECK(sa_version() == SA_VERSION && strstr(sa_last_error(), "model") != NULL, "last error kept after a successful call");
}

/* ------------------------------------------------------------------------------------------------ */
/* Save, load, corrupt files.                                                                         */

static void test_files(void) {
    char dir[] = "/tmp/swiftattr-capi-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], corrupt[256], missing[256], truncated[256];
    snprintf(path, sizeof path, "%s/model.sam", dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.sam", dir);
    snprintf(missing, sizeof missing, "%s/missing.sam", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.sam", dir);

    sa_model *models[2] = {build_cnn(), build_cnn1d()};
    int64_t sizes[2] = {36, 20};
    for (int k = 1; k >= 0; k--) { /* the CNN last: its file, ending in a bias, is corrupted below */
        sa_model *m = models[k], *loaded = NULL;
        EXPECT_OK(sa_model_save(m, path));
        EXPECT_OK(sa_model_load(path, &loaded));
        int64_t a = 0, b = 0;
        EXPECT_OK(sa_model_num_layers(m, &a));
        EXPECT_OK(sa_model_num_layers(loaded, &b));
        CHECK(a == b, "layer count after load");
        enum { N = 4 };
        float x[N * 36], y1[N * 3], y2[N * 3], g1[N * 36], g2[N * 36];
        int64_t target = 1;
        fill(x, (size_t)(N * sizes[k]), 1);
        EXPECT_OK(sa_forward(m, x, N, y1));
        EXPECT_OK(sa_forward(loaded, x, N, y2));
        int64_t outs = 0, layers = 0;
        EXPECT_OK(sa_model_num_layers(m, &layers));
        EXPECT_OK(sa_model_size_at(m, layers, &outs));
        CHECK(memcmp(y1, y2, (size_t)(N * outs) * sizeof(float)) == 0, "model %d: identical outputs after save/load", k);
        EXPECT_OK(sa_integrated_gradients(m, x, N, NULL, 0, &target, 1, 20, 4, 0, g1, NULL));
        EXPECT_OK(sa_integrated_gradients(loaded, x, N, NULL, 0, &target, 1, 20, 4, 0, g2, NULL));
        CHECK(memcmp(g1, g2, (size_t)(N * sizes[k]) * sizeof(float)) == 0, "model %d: identical IG after save/load", k);
        sa_model_free(loaded);
    }

    /* A corrupt file (bad magic), a truncated one, a file with a NaN weight, a missing one. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "reopen saved model");
    unsigned char bytes[1 << 16];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    CHECK(n > 100 && n < sizeof bytes, "model file size %zu", n);

    f = fopen(truncated, "wb");
    fwrite(bytes, 1, n / 2, f);
    fclose(f);
    sa_model *loaded = NULL;
    EXPECT_ERROR(sa_model_load(truncated, &loaded), SA_ERR_FORMAT, "model file");

    unsigned char copy[1 << 16];
    memcpy(copy, bytes, n);
    copy[0] = 'X';
    f = fopen(corrupt, "wb");
    fwrite(copy, 1, n, f);
    fclose(f);
    EXPECT_ERROR(sa_model_load(corrupt, &loaded), SA_ERR_FORMAT, "model file");

    memcpy(copy, bytes, n);
    const float nan_value = NAN;
    memcpy(copy + n - 4, &nan_value, 4); /* the last float of the file: a weight or bias */
    f = fopen(corrupt, "wb");
    fwrite(copy, 1, n, f);
    fclose(f);
    EXPECT_ERROR(sa_model_load(corrupt, &loaded), SA_ERR_FORMAT, "model file");

    f = fopen(corrupt, "wb");
    fputs("hello, I am not a model", f);
    fclose(f);
    EXPECT_ERROR(sa_model_load(corrupt, &loaded), SA_ERR_FORMAT, "model file");

    EXPECT_ERROR(sa_model_load(missing, &loaded), SA_ERR_IO, "path");
    EXPECT_ERROR(sa_model_load(NULL, &loaded), SA_ERR_NULL_POINTER, "path");
    EXPECT_ERROR(sa_model_load(path, NULL), SA_ERR_NULL_POINTER, "out_model");
    EXPECT_ERROR(sa_model_save(models[0], NULL), SA_ERR_NULL_POINTER, "path");
    EXPECT_ERROR(sa_model_save(NULL, path), SA_ERR_NULL_POINTER, "model");
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.sam", dir);
    EXPECT_ERROR(sa_model_save(models[0], nodir), SA_ERR_IO, "path");

    for (int k = 0; k < 2; k++) sa_model_free(models[k]);
    unlink(path); unlink(corrupt); unlink(truncated);
    rmdir(dir);
}

/* ------------------------------------------------------------------------------------------------ */
/* One model, four threads.                                                                           */

enum { TN = 8, TSTEPS = 32 };
typedef struct {
    const sa_model *model;
    const float *x;
    float out[TN * 36];
    float delta[TN];
    int status;
    int error_ok;
} job;

static void *run_job(void *arg) {
    job *j = (job *)arg;
    int64_t target[TN] = {0, 1, 2, 0, 1, 2, 0, 1};
    for (int rep = 0; rep < 5 && j->status == SA_OK; rep++)
        j->status = sa_integrated_gradients(j->model, j->x, TN, NULL, 0, target, TN, TSTEPS, SA_IG_GAUSS_LEGENDRE, 50, j->out, j->delta);
    /* This thread's error message is its own. */
    int rc = sa_forward(j->model, NULL, 1, j->out + 0);
    j->error_ok = rc == SA_ERR_NULL_POINTER && strstr(sa_last_error(), "x is NULL") != NULL;
    /* Recompute (the failed call above wrote nothing). */
    if (j->status == SA_OK)
        j->status = sa_integrated_gradients(j->model, j->x, TN, NULL, 0, target, TN, TSTEPS, SA_IG_GAUSS_LEGENDRE, 50, j->out, j->delta);
    return NULL;
}

static void test_threads(void) {
    fill(CW1, 18, 0.5f); fill(CB1, 2, 0.2f); fill(CW2, 54, 0.4f); fill(CB2, 3, 0.2f);
    sa_model *m = build_cnn();
    float x[TN * 36];
    fill(x, TN * 36, 1);
    job serial = {.model = m, .x = x, .status = SA_OK};
    run_job(&serial);
    CHECK(serial.status == SA_OK, "serial IG: %s", sa_last_error());
    job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){.model = m, .x = x, .status = SA_OK};
        CHECK(pthread_create(&threads[i], NULL, run_job, &jobs[i]) == 0, "pthread_create");
    }
    /* Meanwhile this thread fails on its own argument. */
    EXPECT_ERROR(sa_forward(m, x, -7, serial.delta), SA_ERR_INVALID_ARGUMENT, "n must be positive");
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    CHECK(strstr(sa_last_error(), "n must be positive") != NULL, "main thread's message unchanged by the workers: '%s'", sa_last_error());
    for (int i = 0; i < 4; i++) {
        CHECK(jobs[i].status == SA_OK, "thread %d status %d", i, jobs[i].status);
        CHECK(jobs[i].error_ok, "thread %d saw its own error message", i);
        CHECK(memcmp(jobs[i].out, serial.out, sizeof serial.out) == 0, "thread %d: IG equals the serial result bit for bit", i);
        CHECK(memcmp(jobs[i].delta, serial.delta, sizeof serial.delta) == 0, "thread %d: delta equals the serial result bit for bit", i);
    }
    sa_model_free(m);
}

/* Build information and the library's thread setting: one count repeats bit for bit; another count
 * changes the chunking (other GEMM shapes and per-worker sums), so only float32 rounding may differ:
 * IG over 16 steps of a 2-layer CNN (K ≤ 18, u = 6e-8) stays below 1e-5 of max|phi|. */
static void test_build_info_and_threads(void) {
    const char *info = sa_build_info();
    CHECK(info != NULL && strstr(info, "\"blas_core\"") != NULL && strstr(info, "\"threads\"") != NULL,
          "sa_build_info names the BLAS kernel and threads: %s", info ? info : "(null)");
    printf("build info: %s\n", info);
    int saved = sa_get_num_threads();
    CHECK(saved >= 1, "default thread count %d", saved);
    EXPECT_ERROR(sa_set_num_threads(0), SA_ERR_INVALID_ARGUMENT, "n_threads");
    EXPECT_ERROR(sa_set_num_threads(257), SA_ERR_INVALID_ARGUMENT, "n_threads");
    CHECK(sa_get_num_threads() == saved, "a rejected count leaves the setting");

    fill(CW1, 18, 0.5f); fill(CB1, 2, 0.2f); fill(CW2, 54, 0.4f); fill(CB2, 3, 0.2f);
    sa_model *m = build_cnn();
    float x[TN * 36], one[TN * 36], one_again[TN * 36], three[TN * 36], delta[TN];
    int64_t target[1] = {1};
    fill(x, TN * 36, 1);
    EXPECT_OK(sa_set_num_threads(1));
    CHECK(sa_get_num_threads() == 1, "thread count set to 1");
    EXPECT_OK(sa_integrated_gradients(m, x, TN, NULL, 0, target, 1, 16, SA_IG_GAUSS_LEGENDRE, 16, one, delta));
    EXPECT_OK(sa_integrated_gradients(m, x, TN, NULL, 0, target, 1, 16, SA_IG_GAUSS_LEGENDRE, 16, one_again, delta));
    CHECK(memcmp(one, one_again, sizeof one) == 0, "one thread count repeats bit for bit");
    EXPECT_OK(sa_set_num_threads(3));
    EXPECT_OK(sa_integrated_gradients(m, x, TN, NULL, 0, target, 1, 16, SA_IG_GAUSS_LEGENDRE, 16, three, delta));
    double scale = 0;
    for (int i = 0; i < TN * 36; i++) scale = fmax(scale, fabs(one[i]));
    CHECK(max_abs_diff(one, three, TN * 36) <= 1e-5 * scale, "3 threads vs 1: %g of %g", max_abs_diff(one, three, TN * 36), scale);
    EXPECT_OK(sa_set_num_threads(saved));
    sa_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
/* A graph built node by node: x → dense(4→4) → relu → dense(4→4) → add(·, x) → concat(·, relu out)  */
/* → dense(8→2); forward against a plain C reference, gradients against finite differences, node     */
/* inputs, save/load (SAMODEL2) and the graph errors.                                                 */

static float GW1[16], GB1[4], GW2[16], GB2[4], GW3[16], GB3[2];

static void graph_reference(const float *x, double *y) {
    double h1[4], r[4], h2[4], s[4], c[8];
    for (int o = 0; o < 4; o++) {
        h1[o] = GB1[o];
        for (int i = 0; i < 4; i++) h1[o] += (double)GW1[o * 4 + i] * x[i];
        r[o] = h1[o] > 0 ? h1[o] : 0;
    }
    for (int o = 0; o < 4; o++) {
        h2[o] = GB2[o];
        for (int i = 0; i < 4; i++) h2[o] += (double)GW2[o * 4 + i] * r[i];
        s[o] = h2[o] + x[o];
    }
    for (int o = 0; o < 4; o++) { c[o] = s[o]; c[4 + o] = r[o]; }
    for (int o = 0; o < 2; o++) {
        y[o] = GB3[o];
        for (int i = 0; i < 8; i++) y[o] += (double)GW3[o * 8 + i] * c[i];
    }
}

static sa_model *build_graph(void) {
    int64_t shape[1] = {4};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, GW1, 4, 4, GB1));               /* value 1 */
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_RELU, 0));       /* value 2 */
    EXPECT_OK(sa_model_add_dense(m, GW2, 4, 4, GB2));               /* value 3 */
    int64_t residual[2] = {3, 0};
    EXPECT_OK(sa_model_add_add(m, residual, 2));                    /* value 4 */
    int64_t joined[2] = {4, 2};
    EXPECT_OK(sa_model_add_concat(m, joined, 2));                   /* value 5: [8] */
    EXPECT_OK(sa_model_add_dense(m, GW3, 2, 8, GB3));               /* value 6 */
    return m;
}

static void test_graph(void) {
    fill(GW1, 16, 0.6f); fill(GB1, 4, 0.2f); fill(GW2, 16, 0.6f); fill(GB2, 4, 0.2f); fill(GW3, 16, 0.5f); fill(GB3, 2, 0.1f);
    sa_model *m = build_graph();
    int64_t reads[4], count = 0, layers = 0;
    EXPECT_OK(sa_model_num_layers(m, &layers));
    CHECK(layers == 6, "graph nodes %lld", (long long)layers);
    EXPECT_OK(sa_model_node_inputs(m, 4, reads, 4, &count));
    CHECK(count == 2 && reads[0] == 4 && reads[1] == 2, "concat reads values 4 and 2 (got %lld values)", (long long)count);
    EXPECT_ERROR(sa_model_node_inputs(m, 4, reads, 1, &count), SA_ERR_BUFFER_TOO_SMALL, "capacity");
    CHECK(count == 2, "count is set even when the buffer is too small");

    enum { N = 6 };
    float x[N * 4], y[N * 2];
    fill(x, N * 4, 1.5f);
    EXPECT_OK(sa_forward(m, x, N, y));
    double worst = 0;
    for (int r = 0; r < N; r++) {
        double ref[2];
        graph_reference(x + 4 * r, ref);
        for (int o = 0; o < 2; o++) worst = fmax(worst, fabs(ref[o] - y[r * 2 + o]));
    }
    /* Three layers of K ≤ 8 products in float32 (u = 6e-8) on values of order 1: below 1e-5. */
    CHECK(worst < 1e-5, "graph forward differs from the C reference by %g", worst);

    /* The gradient through add (both inputs), concat (each its slice) and fan-out (value 2 read twice, the
     * input read twice) against central differences of the float64 reference. */
    float cot[N * 2], grad[N * 4];
    fill(cot, N * 2, 1);
    EXPECT_OK(sa_gradient(m, x, N, cot, grad));
    double worst_g = 0;
    for (int r = 0; r < N; r++) {
        for (int i = 0; i < 4; i++) {
            float xp[4], xm[4];
            memcpy(xp, x + 4 * r, sizeof xp);
            memcpy(xm, x + 4 * r, sizeof xm);
            xp[i] += 1e-3f; xm[i] -= 1e-3f;
            double yp[2], ym[2];
            graph_reference(xp, yp);
            graph_reference(xm, ym);
            double fd = 0;
            for (int o = 0; o < 2; o++) fd += cot[r * 2 + o] * (yp[o] - ym[o]) / (double)(xp[i] - xm[i]);
            worst_g = fmax(worst_g, fabs(fd - grad[r * 4 + i]));
        }
    }
    CHECK(worst_g < 1e-3, "graph gradient differs from finite differences by %g", worst_g);

    /* Save and load: a graph is written as SAMODEL2 and comes back bit for bit. */
    char dir[] = "/tmp/swiftattr-graph-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[64];
    snprintf(path, sizeof path, "%s/graph.sam", dir);
    EXPECT_OK(sa_model_save(m, path));
    FILE *f = fopen(path, "rb");
    char magic[9] = {0};
    CHECK(f != NULL && fread(magic, 1, 8, f) == 8 && strcmp(magic, "SAMODEL2") == 0, "graph file magic '%s'", magic);
    if (f) fclose(f);
    sa_model *back = NULL;
    EXPECT_OK(sa_model_load(path, &back));
    float y2[N * 2];
    EXPECT_OK(sa_forward(back, x, N, y2));
    CHECK(memcmp(y, y2, sizeof y) == 0, "loaded graph computes the same outputs bit for bit");
    remove(path);
    rmdir(dir);
    sa_model_free(back);
    sa_model_free(m);

    /* Errors name the node and the value. */
    int64_t shape[1] = {4};
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, GW3, 2, 4, NULL));
    int64_t mismatched[2] = {1, 0};
    EXPECT_ERROR(sa_model_add_add(m, mismatched, 2), SA_ERR_SHAPE, "Add needs inputs of one shape");
    int64_t one[1] = {1};
    EXPECT_ERROR(sa_model_add_add(m, one, 1), SA_ERR_INVALID_ARGUMENT, "n_inputs");
    EXPECT_ERROR(sa_model_add_concat(m, NULL, 2), SA_ERR_NULL_POINTER, "inputs");
    int64_t missing[2] = {0, 7};
    EXPECT_ERROR(sa_model_add_concat(m, missing, 2), SA_ERR_OUT_OF_RANGE, "does not exist");
    EXPECT_ERROR(sa_model_set_input(m, 9), SA_ERR_OUT_OF_RANGE, "value");
    EXPECT_OK(sa_model_set_input(m, 0));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));       /* value 2 reads the input */
    int64_t both[2] = {2, 0};
    EXPECT_OK(sa_model_add_concat(m, both, 2));
    int64_t size = 0;
    EXPECT_OK(sa_model_size_at(m, 3, &size));
    CHECK(size == 8, "concat of two [4] values has 8 features (got %lld)", (long long)size);
    sa_model_free(m);
}

/* Reshape is a view, and sa_model_transformed computes f(T^-1 s + r): with T a permutation (T^-1 = T^T), the
 * transformed model on [T x, 0] equals the model on x, and its gradient over s is T grad f. */
static void test_reshape_and_transform(void) {
    int64_t flat[1] = {8}, view[3] = {2, 2, 2}, bad[2] = {3, 3};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(flat, 1, &m));
    EXPECT_ERROR(sa_model_add_reshape(m, bad, 2), SA_ERR_SHAPE, "Reshape");
    EXPECT_ERROR(sa_model_add_reshape(m, NULL, 2), SA_ERR_NULL_POINTER, "shape");
    EXPECT_ERROR(sa_model_add_reshape(m, view, 0), SA_ERR_INVALID_ARGUMENT, "shape");
    EXPECT_OK(sa_model_add_reshape(m, view, 3));
    float w[2 * 2 * 2 * 2];
    fill(w, 16, 0.5f);
    EXPECT_OK(sa_model_add_conv2d(m, w, 2, 2, 2, 2, NULL, 1, 1, 0, 0, 1, 1));  /* [2,2,2] -> [2,1,1] */
    EXPECT_OK(sa_model_add_flatten(m));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    int kind = -1;
    EXPECT_OK(sa_model_layer_kind(m, 0, &kind));
    CHECK(kind == SA_LAYER_RESHAPE, "layer 0 is a reshape (kind %d)", kind);

    float perm[8 * 8] = {0};  /* T^-1: x_j = s_{(j + 3) mod 8} */
    for (int j = 0; j < 8; j++) perm[j * 8 + (j + 3) % 8] = 1;
    sa_model *g = NULL;
    EXPECT_ERROR(sa_model_transformed(m, perm, 8, 2, &g), SA_ERR_INVALID_ARGUMENT, "use_residual");
    EXPECT_ERROR(sa_model_transformed(m, NULL, 8, 1, &g), SA_ERR_NULL_POINTER, "inverse");
    EXPECT_ERROR(sa_model_transformed(m, perm, 0, 1, &g), SA_ERR_INVALID_ARGUMENT, "coefficients");
    EXPECT_OK(sa_model_transformed(m, perm, 8, 1, &g));
    int64_t in_shape[3], ndim = 0;
    EXPECT_OK(sa_model_input_shape(g, in_shape, &ndim));
    CHECK(ndim == 1 && in_shape[0] == 16, "transformed input is [k + p] = [16]");
    enum { N = 3 };
    float x[N * 8], z[N * 16], y[N * 2], yz[N * 2];
    fill(x, N * 8, 1.0f);
    for (int r = 0; r < N; r++) {
        for (int c = 0; c < 8; c++) z[r * 16 + (c + 3) % 8] = 0;
        for (int j = 0; j < 8; j++) z[r * 16 + (j + 3) % 8] = x[r * 8 + j];  /* s = T x */
        for (int j = 0; j < 8; j++) z[r * 16 + 8 + j] = 0;                  /* r = 0 */
    }
    EXPECT_OK(sa_forward(m, x, N, y));
    EXPECT_OK(sa_forward(g, z, N, yz));
    double worst = 0;
    for (int i = 0; i < N * 2; i++) worst = fmax(worst, fabs(y[i] - yz[i]));
    /* A permutation through a Linear layer of 1.0 weights is exact: the same sums in the same order. */
    CHECK(worst == 0, "transformed model differs by %g", worst);
    sa_model_free(g);
    sa_model_free(m);
}

int main(void) {
    test_build_info_and_threads();
    test_mlp();
    test_captum_vector();
    test_cnn();
    test_errors();
    test_files();
    test_threads();
    test_graph();
    test_reshape_and_transform();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
