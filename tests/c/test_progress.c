/*
 * test_progress.c — the progress handler (sa_set_progress_handler): a long row-chunked call reports
 * increasing counts ending at n; a non-zero return cancels it with SA_ERR_CANCELLED, a message naming the
 * call, and no further report; the model then gives the same numbers as before (bit for bit: the same
 * computation repeats on the same thread count); the handler belongs to the thread that installed it;
 * the perturbation methods report from SwiftAttr's evaluation loop; sa_train reports epochs and a cancel
 * returns no model.
 */
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#define D 64
#define HID 256
#define K 4
#define N 256
#define STEPS 64

typedef struct {
    int calls;
    int cancel_at;        /* return non-zero on this call (0: never) */
    int64_t last_done;
    int64_t total;
    int increasing;       /* every done greater than the one before */
} recorder;

static int record(void *user_data, int64_t done, int64_t total) {
    recorder *r = user_data;
    r->calls++;
    if (done <= r->last_done) r->increasing = 0;
    r->last_done = done;
    r->total = total;
    return r->cancel_at != 0 && r->calls >= r->cancel_at;
}

static recorder fresh(int cancel_at) {
    recorder r = {0, cancel_at, 0, -1, 1};
    return r;
}

/* An MLP D -> HID -> tanh -> K: IG with STEPS steps costs about 3 * STEPS * (D * HID + HID * K) multiply-adds
 * per example, so N examples are several chunks of the C layer's row loop (2^27 multiply-adds each). */
static sa_model *mlp(void) {
    static float w1[HID * D], b1[HID], w2[K * HID];
    fill(w1, HID * D, 0.2f);
    fill(b1, HID, 0.1f);
    fill(w2, K * HID, 0.2f);
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    EXPECT_OK(sa_model_create(shape, 1, &m));
    EXPECT_OK(sa_model_add_dense(m, w1, HID, D, b1));
    EXPECT_OK(sa_model_add_activation(m, SA_LAYER_TANH, 0));
    EXPECT_OK(sa_model_add_dense(m, w2, K, HID, NULL));
    return m;
}

static int ig(const sa_model *m, const float *x, float *out) {
    int64_t target = 1;
    return sa_integrated_gradients(m, x, N, NULL, 0, &target, 1, STEPS, SA_IG_GAUSS_LEGENDRE, 0, out, NULL);
}

typedef struct {
    const sa_model *model;
    const float *x;
    float *out;
    int rc;
} job;

static void *run_ig(void *arg) {
    job *j = arg;
    j->rc = ig(j->model, j->x, j->out);
    return NULL;
}

int main(void) {
    /* Chunks hold at least 4 rows per thread: fix the thread count so the number of chunks is known. */
    EXPECT_OK(sa_set_num_threads(2));
    sa_model *m = mlp();
    float *x = malloc(sizeof(float) * N * D), *out = malloc(sizeof(float) * N * D), *again = malloc(sizeof(float) * N * D);
    fill(x, (size_t)N * D, 1.0f);

    /* Without a handler: the reference result. */
    EXPECT_OK(ig(m, x, out));

    /* Increasing counts, total n, the last report at n. */
    recorder r = fresh(0);
    EXPECT_OK(sa_set_progress_handler(record, &r));
    EXPECT_OK(ig(m, x, again));
    CHECK(r.calls >= 3, "IG over %d examples reported %d times (want several chunks)", N, r.calls);
    CHECK(r.increasing, "the reported counts did not increase");
    CHECK(r.total == N && r.last_done == N, "last report %lld of %lld, want %d of %d", (long long)r.last_done,
          (long long)r.total, N, N);
    CHECK(memcmp(out, again, sizeof(float) * N * D) == 0, "a handler changed the result");

    /* Cancel on the second report: SA_ERR_CANCELLED naming the call, and no report after it. */
    r = fresh(2);
    EXPECT_ERROR(ig(m, x, again), SA_ERR_CANCELLED, "sa_integrated_gradients");
    CHECK(strstr(sa_last_error(), "cancelled") != NULL, "message: %s", sa_last_error());
    CHECK(r.calls == 2, "the call went on after the cancel (%d reports)", r.calls);
    CHECK(r.last_done < N, "cancelled at %lld of %d", (long long)r.last_done, N);

    /* DeepSHAP (its own chunk loop) reports and cancels too. */
    r = fresh(1);
    int64_t target = 0;
    EXPECT_ERROR(sa_deepshap(m, x, N, x, 64, &target, 1, SA_DEEPLIFT_RESCALE, SA_MAXPOOL_CROSSMAX, 1, 0, again, NULL),
                 SA_ERR_CANCELLED, "sa_deepshap");
    CHECK(r.calls == 1, "DeepSHAP: %d reports after a cancel at the first", r.calls);

    /* Perturbation methods report perturbed inputs (Shapley sampling: n * n_samples * (features - 1) of them,
     * here about four pieces of 2^27 multiply-adds) from SwiftAttr's evaluation loop, with the same numbers. */
    {
        enum { SN = 8, SS = 50 };
        static float phi[SN * D], phi2[SN * D];
        int64_t t = 3;
        EXPECT_OK(sa_set_progress_handler(NULL, NULL));
        EXPECT_OK(sa_shapley_value_sampling(m, x, SN, NULL, 0, &t, 1, NULL, 0, SS, 7, 0, NULL, 0, phi));
        r = fresh(0);
        EXPECT_OK(sa_set_progress_handler(record, &r));
        EXPECT_OK(sa_shapley_value_sampling(m, x, SN, NULL, 0, &t, 1, NULL, 0, SS, 7, 0, NULL, 0, phi2));
        CHECK(r.calls >= 3 && r.increasing && r.total == SN * SS * (D - 1) && r.last_done == r.total,
              "Shapley sampling: %d reports, last %lld of %lld", r.calls, (long long)r.last_done, (long long)r.total);
        CHECK(memcmp(phi, phi2, sizeof phi) == 0, "a handler changed Shapley sampling's result");
        /* Every piece was evaluated where it belongs: efficiency, sum_j phi_j = f_t(x) - f_t(0), holds per example.
         * Each phi_j is a mean of differences of float32 outputs (summed in double), so the sum is exact to a
         * few float32 roundings of |f| (~1e-6 of it); a missing or misplaced piece is off by O(|f|). */
        static float y[SN * K], y0[K], zero[D];
        EXPECT_OK(sa_forward(m, x, SN, y));
        EXPECT_OK(sa_forward(m, zero, 1, y0));
        for (int i = 0; i < SN; i++) {
            double sum = 0;
            for (int j = 0; j < D; j++) sum += phi[i * D + j];
            double want = (double)y[i * K + 3] - (double)y0[3], tol = 1e-4 * (1.0 + fabs(want));
            CHECK(fabs(sum - want) <= tol, "example %d: sum of Shapley values %.7g, f(x) - f(0) = %.7g", i, sum, want);
        }
        r = fresh(1);
        EXPECT_ERROR(sa_shapley_value_sampling(m, x, SN, NULL, 0, &t, 1, NULL, 0, SS, 7, 0, NULL, 0, phi2), SA_ERR_CANCELLED,
                     "sa_shapley_value_sampling");
        CHECK(r.calls == 1, "Shapley sampling went on after the cancel (%d reports)", r.calls);
        EXPECT_OK(sa_set_progress_handler(NULL, NULL));
        EXPECT_OK(sa_shapley_value_sampling(m, x, SN, NULL, 0, &t, 1, NULL, 0, SS, 7, 0, NULL, 0, phi2));
        CHECK(memcmp(phi, phi2, sizeof phi) == 0, "Shapley sampling after a cancel differs");
    }

    /* The model still works, and gives the same numbers. */
    EXPECT_OK(sa_set_progress_handler(NULL, NULL));
    EXPECT_OK(ig(m, x, again));
    CHECK(memcmp(out, again, sizeof(float) * N * D) == 0, "the result after a cancel differs");

    /* The handler is the installing thread's: a call on another thread neither reports nor cancels. */
    r = fresh(1);
    EXPECT_OK(sa_set_progress_handler(record, &r));
    job j = {m, x, again, -1};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, run_ig, &j) == 0, "pthread_create");
    pthread_join(thread, NULL);
    CHECK(j.rc == SA_OK && r.calls == 0, "another thread's call: status %d, %d reports", j.rc, r.calls);

    /* Training reports epochs; a cancel returns SA_ERR_CANCELLED and no model. */
    int64_t labels[N];
    for (int i = 0; i < N; i++) labels[i] = i % K;
    sa_train_options o = sa_train_default_options();
    o.epochs = 5;
    o.batch_size = 64;
    sa_model *trained = NULL;
    r = fresh(0);
    EXPECT_OK(sa_train(m, x, N, labels, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &trained, NULL, 0, NULL));
    CHECK(r.calls == 5 && r.total == 5 && r.last_done == 5 && r.increasing, "training: %d reports, last %lld of %lld",
          r.calls, (long long)r.last_done, (long long)r.total);
    sa_model_free(trained);
    trained = NULL;
    r = fresh(2);
    EXPECT_ERROR(sa_train(m, x, N, labels, NULL, NULL, 0, NULL, NULL, &o, NULL, NULL, &trained, NULL, 0, NULL),
                 SA_ERR_CANCELLED, "sa_train");
    CHECK(trained == NULL && r.calls == 2, "training after a cancel: model %p, %d reports", (void *)trained, r.calls);
    EXPECT_OK(sa_set_progress_handler(NULL, NULL));
    EXPECT_OK(ig(m, x, again));
    CHECK(memcmp(out, again, sizeof(float) * N * D) == 0, "the result after a cancelled training differs");

    sa_model_free(m);
    free(x);
    free(out);
    free(again);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
