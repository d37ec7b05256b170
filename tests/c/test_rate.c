/*
 * test_rate.c — the RATE part of the C interface, called from C as a user would: sa_rate_options and its
 * defaults, the four RATE functions against each other and DESIGN.md's test vector, the options' error
 * paths, the Bayesian last layer, and the header's version.
 *
 * Build and run: tests/c/run.sh. Prints "N passed, M failed" last; exits non-zero on any failure.
 */
#include "swiftattr.h"
#include "check.h"

#include <math.h>
#include <stdint.h>

#ifndef SA_API
#error "swiftattr.h must define SA_API"
#endif

/* Largest |a - b| / max(|b|, floor) over n values. */
static double max_rel_diff(const double *a, const double *b, size_t n, double floor) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double scale = fabs(b[i]) > floor ? fabs(b[i]) : floor;
        double d = fabs(a[i] - b[i]) / scale;
        if (!(d <= worst)) worst = d; /* NaN propagates */
    }
    return worst;
}


static const double MU[3] = {1.0, 0.5, -0.2};
static const double SIGMA[9] = {1, .5, .2, .5, 1, .3, .2, .3, 1};

static void test_version_and_defaults(void) {
    CHECK(sa_version() == SA_VERSION, "sa_version() = %d, SA_VERSION = %d", sa_version(), SA_VERSION);
    sa_rate_options o = sa_rate_default_options();
    CHECK(o.struct_size == sizeof(sa_rate_options), "struct_size %zu, sizeof %zu", o.struct_size, sizeof(sa_rate_options));
    CHECK(o.exact_kld == 0 && o.projection == SA_PROJECTION_COVARIANCE && o.rank == 0 && o.jitter == 0.0,
          "default options");
    CHECK(o.nullify == NULL && o.nullify_count == 0 && o.group_members == NULL && o.group_offsets == NULL &&
              o.group_count == 0,
          "default sets");
}

/* DESIGN.md's vector, with NULL options and with explicit defaults (bit-identical: the same computation). */
static void test_design_vector(void) {
    double rate[3], kld[3], delta, ess, rate2[3], kld2[3], delta2, ess2;
    int64_t info[2] = {-1, -1};
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, NULL, rate, kld, &delta, &ess, info));
    const double want[3] = {0.759577, 0.231176, 0.009247};
    for (int j = 0; j < 3; j++) CHECK(fabs(rate[j] - want[j]) <= 1e-6, "rate[%d] = %.7f, want %.6f", j, rate[j], want[j]);
    CHECK(fabs(delta - 0.507851) <= 1e-6 && fabs(ess - 66.3195) <= 1e-4, "delta %.7f ess %.5f", delta, ess);
    CHECK(info[0] == 3 && info[1] == 0, "info %lld %lld", (long long)info[0], (long long)info[1]);

    sa_rate_options o = sa_rate_default_options();
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate2, kld2, &delta2, &ess2, NULL));
    CHECK(memcmp(rate, rate2, sizeof rate) == 0 && memcmp(kld, kld2, sizeof kld) == 0 && delta == delta2 && ess == ess2,
          "NULL options = default options");

    o.exact_kld = 1;
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL));
    const double exact[3] = {0.682759, 0.301146, 0.016095};
    for (int j = 0; j < 3; j++) CHECK(fabs(rate[j] - exact[j]) <= 1e-6, "exact rate[%d] = %.7f", j, rate[j]);
}

/* Conditional and group RATE through the struct: nullifying variable 2 gives it RATE 0, and one group
 * {0, 1} per variable-pair scores as the struct says (m = group_count outputs). */
static void test_nullify_and_groups(void) {
    double rate[3], kld[3], delta, ess;
    sa_rate_options o = sa_rate_default_options();
    const int64_t null2[1] = {2};
    o.nullify = null2;
    o.nullify_count = 1;
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL));
    CHECK(rate[2] == 0 && kld[2] == 0 && fabs(rate[0] + rate[1] - 1) <= 1e-12, "nullified rate %g %g %g", rate[0], rate[1], rate[2]);

    o = sa_rate_default_options();
    const int64_t members[3] = {0, 1, 2}, offsets[3] = {0, 2, 3};
    o.group_members = members;
    o.group_offsets = offsets;
    o.group_count = 2;
    double grate[2], gkld[2];
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, &o, grate, gkld, &delta, &ess, NULL));
    CHECK(fabs(grate[0] + grate[1] - 1) <= 1e-12 && grate[0] > grate[1], "group rate %g %g", grate[0], grate[1]);
    /* The group {2} alone is variable 2's KLD (another code path: 1e-10 relative is rounding of a 3×3 solve). */
    EXPECT_OK(sa_rate_from_esa(1, 3, MU, SIGMA, NULL, rate, kld, &delta, &ess, NULL));
    CHECK(fabs(gkld[1] - kld[2]) <= 1e-10 * fabs(kld[2]), "group {2} KLD %.17g vs %.17g", gkld[1], kld[2]);
}

/* Every error that the options struct can carry, with its code and the argument named. */
static void test_option_errors(void) {
    double rate[3], kld[3], delta, ess;
    sa_rate_options o = sa_rate_default_options();
    o.struct_size = sizeof(sa_rate_options) - 8;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "struct_size");
    sa_rate_options zero;
    memset(&zero, 0, sizeof zero); /* not started from the defaults */
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &zero, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT,
                 "sa_rate_default_options");
    o = sa_rate_default_options();
    o.exact_kld = 2;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "exact_kld");
    o = sa_rate_default_options();
    o.projection = 7;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_UNKNOWN_ENUM, "projection");
    o = sa_rate_default_options();
    o.rank = 2;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "rank needs X");
    o.rank = -1;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "rank");
    o = sa_rate_default_options();
    o.jitter = NAN;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "jitter");
    o.jitter = -1;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "jitter");
    o = sa_rate_default_options();
    o.nullify_count = 1;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_NULL_POINTER, "nullify");
    const int64_t far[1] = {3};
    o.nullify = far;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_OUT_OF_RANGE, "nullify[0]");
    o = sa_rate_default_options();
    const int64_t members[3] = {0, 1, 2}, empty[3] = {0, 0, 3}, decreasing[3] = {0, 2, 1};
    o.group_members = members;
    o.group_offsets = empty;
    o.group_count = 2;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "groups[0] is empty");
    o.group_offsets = decreasing;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_INVALID_ARGUMENT, "group_offsets");
    o.group_offsets = NULL;
    EXPECT_ERROR(sa_rate_from_esa(1, 3, MU, SIGMA, &o, rate, kld, &delta, &ess, NULL), SA_ERR_NULL_POINTER, "group_offsets");
    /* The X-based functions read the same struct. */
    double X[6] = {1, 0, 0, 1, 1, 1}, M[3] = {1, 2, 3}, V[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    o = sa_rate_default_options();
    o.projection = -1;
    EXPECT_ERROR(sa_rate_from_gaussian(1, 3, 2, X, M, V, &o, rate, kld, &delta, &ess, NULL, NULL), SA_ERR_UNKNOWN_ENUM,
                 "projection");
    o = sa_rate_default_options();
    o.struct_size = 0;
    EXPECT_ERROR(sa_rate_from_draws(1, 3, 3, 2, X, V, &o, rate, kld, &delta, &ess, NULL, NULL), SA_ERR_INVALID_ARGUMENT,
                 "struct_size");
    EXPECT_ERROR(sa_rate_last_layer(1, 3, 2, 1, X, M, M, V, NULL, &o, rate, kld, &delta, &ess, NULL, NULL),
                 SA_ERR_INVALID_ARGUMENT, "struct_size");
}

/* The four functions agree: from a Gaussian over the outputs, from its effect-size posterior computed here
 * (covariance projection P = X_cᵀ/(n−1)), from a last layer whose output posterior is that Gaussian, and
 * from draws whose sample moments are computed here. Tolerance: every path is float64 with O(n + p)-term
 * sums of O(1) values and a 3×3 factorisation of a well-conditioned Σ, so differences in summation order
 * give relative errors of a few ε·(n + p)·cond(Σ) ≈ 1e-13; 1e-9 (relative to the largest KLD) is far
 * above that and far below any change of method. */
static void test_paths_agree(void) {
    enum { N = 8, P = 3, H = 2, S = 5 };
    double X[N * P], Hf[N * H], Wm[H], Wc[H * H] = {0.7, 0.2, 0.2, 0.4}, b[1] = {0.3};
    for (int i = 0; i < N * P; i++) X[i] = rnd_double();
    for (int i = 0; i < N * H; i++) Hf[i] = rnd_double();
    Wm[0] = 1.2; Wm[1] = -0.6;
    /* Output posterior of the last layer: M_F = H w + b, V_F = H Σ_W Hᵀ. */
    double MF[N], VF[N * N];
    for (int i = 0; i < N; i++) {
        MF[i] = b[0];
        for (int k = 0; k < H; k++) MF[i] += Hf[i * H + k] * Wm[k];
        for (int j = 0; j < N; j++) {
            double v = 0;
            for (int k = 0; k < H; k++)
                for (int l = 0; l < H; l++) v += Hf[i * H + k] * Wc[k * H + l] * Hf[j * H + l];
            VF[i * N + j] = v;
        }
    }
    /* Add a diagonal so that Σ = P V_F Pᵀ has full rank P (the last layer's has rank H < P). */
    double VFg[N * N];
    memcpy(VFg, VF, sizeof VF);
    for (int i = 0; i < N; i++) VFg[i * N + i] += 0.5;
    double mean[P], Pm[P * N];
    for (int j = 0; j < P; j++) {
        mean[j] = 0;
        for (int i = 0; i < N; i++) mean[j] += X[i * P + j] / N;
    }
    for (int j = 0; j < P; j++)
        for (int i = 0; i < N; i++) Pm[j * N + i] = (X[i * P + j] - mean[j]) / (N - 1);
    double mu[P], sigma[P * P];
    for (int j = 0; j < P; j++) {
        mu[j] = 0;
        for (int i = 0; i < N; i++) mu[j] += Pm[j * N + i] * MF[i];
        for (int k = 0; k < P; k++) {
            double v = 0;
            for (int i = 0; i < N; i++)
                for (int l = 0; l < N; l++) v += Pm[j * N + i] * VFg[i * N + l] * Pm[k * N + l];
            sigma[j * P + k] = v;
        }
    }
    double r_esa[P], k_esa[P], d_esa, e_esa, r_g[P], k_g[P], d_g, e_g, esa_g[P];
    int64_t info[2];
    EXPECT_OK(sa_rate_from_esa(1, P, mu, sigma, NULL, r_esa, k_esa, &d_esa, &e_esa, NULL));
    EXPECT_OK(sa_rate_from_gaussian(1, N, P, X, MF, VFg, NULL, r_g, k_g, &d_g, &e_g, info, esa_g));
    CHECK(max_rel_diff(k_g, k_esa, P, k_esa[0] + k_esa[1] + k_esa[2]) <= 1e-9, "gaussian vs esa KLD");
    CHECK(max_rel_diff(esa_g, mu, P, 1e-3) <= 1e-9, "esa_mean output is P M_F");
    CHECK(info[0] == P && info[1] == 0, "gaussian info %lld %lld", (long long)info[0], (long long)info[1]);

    /* Last layer vs Gaussian on its own output posterior (rank H: both take the pseudo-inverse). */
    double r_l[P], k_l[P], d_l, e_l, r_lg[P], k_lg[P], d_lg, e_lg;
    int64_t info_l[2], info_lg[2];
    EXPECT_OK(sa_rate_last_layer(1, N, P, H, X, Hf, Wm, Wc, b, NULL, r_l, k_l, &d_l, &e_l, info_l, NULL));
    EXPECT_OK(sa_rate_from_gaussian(1, N, P, X, MF, VF, NULL, r_lg, k_lg, &d_lg, &e_lg, info_lg, NULL));
    CHECK(max_rel_diff(k_l, k_lg, P, k_lg[0] + k_lg[1] + k_lg[2]) <= 1e-9, "last layer vs gaussian KLD");
    CHECK(info_l[0] == info_lg[0] && info_l[1] == info_lg[1], "last layer info");

    /* Draws: RATE of the sample moments of β̃ = P f. */
    double F[S * N], beta[S * P], dm[P] = {0, 0, 0}, dc[P * P];
    for (int i = 0; i < S * N; i++) F[i] = rnd_double();
    for (int s = 0; s < S; s++)
        for (int j = 0; j < P; j++) {
            beta[s * P + j] = 0;
            for (int i = 0; i < N; i++) beta[s * P + j] += Pm[j * N + i] * F[s * N + i];
            dm[j] += beta[s * P + j] / S;
        }
    for (int j = 0; j < P; j++)
        for (int k = 0; k < P; k++) {
            double v = 0;
            for (int s = 0; s < S; s++) v += (beta[s * P + j] - dm[j]) * (beta[s * P + k] - dm[k]);
            dc[j * P + k] = v / (S - 1);
        }
    double r_d[P], k_d[P], d_d, e_d, k_dm[P], r_dm[P], d_dm, e_dm;
    EXPECT_OK(sa_rate_from_draws(1, S, N, P, X, F, NULL, r_d, k_d, &d_d, &e_d, NULL, NULL));
    EXPECT_OK(sa_rate_from_esa(1, P, dm, dc, NULL, r_dm, k_dm, &d_dm, &e_dm, NULL));
    CHECK(max_rel_diff(k_d, k_dm, P, k_dm[0] + k_dm[1] + k_dm[2]) <= 1e-9, "draws vs sample moments KLD");

    /* The options reach every path: nullify variable 0 in the X-based functions. */
    sa_rate_options o = sa_rate_default_options();
    const int64_t zero[1] = {0};
    o.nullify = zero;
    o.nullify_count = 1;
    EXPECT_OK(sa_rate_from_gaussian(1, N, P, X, MF, VFg, &o, r_g, k_g, &d_g, &e_g, NULL, NULL));
    CHECK(r_g[0] == 0 && fabs(r_g[1] + r_g[2] - 1) <= 1e-12, "gaussian nullify");
    EXPECT_OK(sa_rate_from_draws(1, S, N, P, X, F, &o, r_d, k_d, &d_d, &e_d, NULL, NULL));
    CHECK(r_d[0] == 0, "draws nullify");
    EXPECT_OK(sa_rate_last_layer(1, N, P, H, X, Hf, Wm, Wc, b, &o, r_l, k_l, &d_l, &e_l, NULL, NULL));
    CHECK(r_l[0] == 0, "last layer nullify");
    /* rank = 1 forces the low-rank path (reported as a pseudo-inverse of rank 1). */
    o = sa_rate_default_options();
    o.rank = 1;
    EXPECT_OK(sa_rate_from_gaussian(1, N, P, X, MF, VFg, &o, r_g, k_g, &d_g, &e_g, info, NULL));
    CHECK(info[0] <= 1 && info[1] == 1, "low-rank info %lld %lld", (long long)info[0], (long long)info[1]);
}

/* The Bayesian last layer feeds sa_rate_last_layer. */
static void test_bayesian_last_layer(void) {
    enum { N = 12, H = 2, P = 3 };
    double X[N * P], Hf[N * H], y[N], Wm[H], Wc[H * H], b[1], noise[1], prior[1];
    int64_t labels[N];
    for (int i = 0; i < N * P; i++) X[i] = rnd_double();
    for (int i = 0; i < N; i++) {
        Hf[i * H] = rnd_double();
        Hf[i * H + 1] = rnd_double();
        y[i] = 2 * Hf[i * H] - Hf[i * H + 1] + 0.1 * rnd_double();
        labels[i] = Hf[i * H] + 0.3 * rnd_double() > 0 ? 1 : 0;
    }
    EXPECT_OK(sa_bayesian_last_layer_regression(N, H, 1, Hf, y, 1000, 1e-8, Wm, Wc, b, noise, prior));
    CHECK(fabs(Wm[0] - 2) < 0.5 && fabs(Wm[1] + 1) < 0.5 && noise[0] > 0 && prior[0] > 0, "regression fit %g %g", Wm[0], Wm[1]);
    double rate[P], kld[P], delta, ess;
    EXPECT_OK(sa_rate_last_layer(1, N, P, H, X, Hf, Wm, Wc, b, NULL, rate, kld, &delta, &ess, NULL, NULL));
    CHECK(fabs(rate[0] + rate[1] + rate[2] - 1) <= 1e-12, "rate sums to 1");
    double cWm[H * 2], cWc[2 * H * H], cb[2];
    EXPECT_OK(sa_bayesian_last_layer_classification(N, H, 2, Hf, labels, 1.0, 100, 1e-8, cWm, cWc, cb));
    EXPECT_ERROR(sa_bayesian_last_layer_regression(N, H, 1, Hf, y, 0, 1e-8, Wm, Wc, b, noise, prior), SA_ERR_INVALID_ARGUMENT,
                 "max_iter");
}

int main(void) {
    seed_rnd(99);
    test_version_and_defaults();
    test_design_vector();
    test_nullify_and_groups();
    test_option_errors();
    test_paths_agree();
    test_bayesian_last_layer();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
