/*
 * test_fork.c — the library in forked children (Python multiprocessing's fork start method, Dask and Ray
 * workers do this): no child may hang, and every child's result equals the parent's.
 *
 * Three phases of SA_FORK_CHILDREN children each (default 400), at most 8 alive at once:
 *   cold: the parent has built the model and run only a forward pass; each child makes the process's
 *         first Integrated Gradients, RevealCancel DeepLIFT, DeepSHAP, Expected Gradients and SmoothGrad calls;
 *   warm: the parent has made the same calls before forking;
 *   busy: a second parent thread makes calls without pause while the main thread forks.
 * Every call runs on 8 workers (sa_set_num_threads(8)) with small chunks, so the pool is always used.
 * A child that has not finished after 20 s is killed by SIGALRM (alarm) and counted as hung; the parent
 * also kills (SIGKILL) any child still alive 60 s after it was forked. Results are written to shared
 * memory and compared with the parent's bit for bit (the same computation on the same thread count
 * repeats exactly).
 *
 * Also: seeded draws keyed by the example's index in the whole batch (first_example), so a batch computed
 * in four calls equals one call up to float32 rounding.
 *
 * Build and run: tests/c/run.sh. Prints "N passed, M failed" last; exits non-zero on any failure.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, usleep */

#include "swiftattr.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* More workers than the machine's cores: preemption inside the runtime's locks makes a hang likelier. */
enum { THREADS = 8, SPINNERS = 4 };
enum { D = 24, H = 48, C = 4, N = 16, R = 6, SAMPLES = 8, OUT = N * D, METHODS = 5, MAX_ALIVE = 8 };


static float W1[H * D], B1[H], W2[H * H], B2[H], W3[C * H], B3[C];
static float X[N * D], REFS[R * D];
static int64_t TARGET[N];
static sa_model *model;

/* D -> H -> ReLU -> H -> Tanh -> C: RevealCancel at both nonlinearities. */
static sa_model *build_model(void) {
    int64_t shape[1] = {D};
    sa_model *m = NULL;
    if (sa_model_create(shape, 1, &m) != SA_OK) return NULL;
    if (sa_model_add_dense(m, W1, H, D, B1) != SA_OK || sa_model_add_activation(m, SA_LAYER_RELU, 0) != SA_OK ||
        sa_model_add_dense(m, W2, H, H, B2) != SA_OK || sa_model_add_activation(m, SA_LAYER_TANH, 0) != SA_OK ||
        sa_model_add_dense(m, W3, C, H, B3) != SA_OK) {
        sa_model_free(m);
        return NULL;
    }
    return m;
}

/* The calls every child makes, each in chunks small enough that every worker has several: Integrated
 * Gradients, RevealCancel DeepLIFT, DeepSHAP, Expected Gradients and SmoothGrad. out: METHODS * OUT floats. Returns the first
 * non-zero status. */
static int compute(float *out) {
    /* Integrated Gradients first: its workers are then running when the other methods start. */
    int rc = sa_integrated_gradients(model, X, N, NULL, 0, TARGET, N, 32, SA_IG_GAUSS_LEGENDRE, 8, out + 4 * OUT, NULL);
    if (rc == SA_OK)
        rc = sa_deeplift(model, X, N, NULL, 0, TARGET, N, SA_DEEPLIFT_REVEALCANCEL, SA_MAXPOOL_GRADIENT, 1, 2,
                         out, NULL);
    if (rc == SA_OK)
        rc = sa_deepshap(model, X, N, REFS, R, TARGET, N, SA_DEEPLIFT_RESCALE, SA_MAXPOOL_GRADIENT, 1, 6, out + OUT,
                         NULL);
    if (rc == SA_OK) rc = sa_expected_gradients(model, X, N, REFS, R, TARGET, N, SAMPLES, 7, 0, 8, out + 2 * OUT);
    if (rc == SA_OK) rc = sa_smoothgrad(model, X, N, TARGET, N, 2, SAMPLES, 0.3f, 11, 0, 8, out + 3 * OUT);
    return rc;
}

/* One child's slot in shared memory. */
typedef struct {
    int status;
    float out[METHODS * OUT];
} slot;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static volatile int keep_running = 0;

/* Burns CPU without the library (cold phase). */
static void *spin(void *arg) {
    (void)arg;
    volatile uint64_t x = 0;
    while (keep_running) x++;
    return NULL;
}

/* A background thread's endless calls (busy phase). */
static void *busy_caller(void *arg) {
    (void)arg;
    static float out[METHODS * OUT];
    while (keep_running) (void)compute(out);
    return NULL;
}

/* Forks `count` children (at most MAX_ALIVE alive at once) that each call compute() and store the result;
 * returns how many hung. Failed or mismatching children are reported through CHECK. */
static int run_children(const char *phase, int count, const float *ref) {
    slot *slots = mmap(NULL, sizeof(slot) * (size_t)count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(slots != MAP_FAILED, "%s: mmap", phase);
    if (slots == MAP_FAILED) return count;
    pid_t *pids = calloc((size_t)count, sizeof(pid_t));
    double *started = calloc((size_t)count, sizeof(double));
    int hung = 0, crashed = 0, bad_status = 0, mismatched = 0, next = 0, alive = 0, done = 0;
    for (int i = 0; i < count; i++) slots[i].status = 1;
    while (done < count) {
        while (alive < MAX_ALIVE && next < count) {
            pid_t pid = fork();
            if (pid == 0) {
                alarm(20);
                slots[next].status = compute(slots[next].out);
                _exit(0);
            }
            CHECK(pid > 0, "%s: fork failed: %s", phase, strerror(errno));
            if (pid < 0) return count;
            pids[next] = pid;
            started[next] = now();
            next++;
            alive++;
        }
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0) {
            /* The parent's own deadline, in case a child's alarm cannot fire. */
            for (int i = 0; i < next; i++)
                if (pids[i] > 0 && now() - started[i] > 60) kill(pids[i], SIGKILL);
            usleep(1000);
            continue;
        }
        if (pid < 0) break;
        int i = 0;
        while (i < next && pids[i] != pid) i++;
        if (i == next) continue;
        pids[i] = -1;
        alive--;
        done++;
        if (WIFSIGNALED(status)) {
            if (WTERMSIG(status) == SIGALRM || WTERMSIG(status) == SIGKILL) {
                hung++;
            } else {
                crashed++;
            }
        } else if (slots[i].status != SA_OK) {
            bad_status++;
        } else if (ref != NULL && memcmp(slots[i].out, ref, sizeof slots[i].out) != 0) {
            mismatched++;
        }
    }
    CHECK(hung == 0, "%s: %d of %d forked children hung", phase, hung, count);
    CHECK(crashed == 0, "%s: %d of %d forked children crashed", phase, crashed, count);
    CHECK(bad_status == 0, "%s: %d of %d forked children returned an error", phase, bad_status, count);
    CHECK(mismatched == 0, "%s: %d of %d forked children differ from the parent", phase, mismatched, count);
    printf("%s: %d children, %d hung, %d crashed, %d errors, %d differ\n", phase, count, hung, crashed, bad_status,
           mismatched);
    fflush(stdout);
    if (ref == NULL) {
        /* The cold phase's children ran before the parent made the calls: compare them now. */
        static float parent[METHODS * OUT];
        CHECK(compute(parent) == SA_OK, "%s: parent call: %s", phase, sa_last_error());
        int differ = 0;
        for (int j = 0; j < count; j++)
            if (slots[j].status == SA_OK && memcmp(slots[j].out, parent, sizeof parent) != 0) differ++;
        CHECK(differ == 0, "%s: %d of %d forked children differ from the parent", phase, differ, count);
    }
    munmap(slots, sizeof(slot) * (size_t)count);
    free(pids);
    free(started);
    return hung;
}

/* Largest |a - b| over each example's row of D values, relative to that row's max |b|. */
static double worst_per_example(const float *a, const float *b, int rows) {
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        double scale = 1e-30;
        for (int k = 0; k < D; k++) scale = fmax(scale, fabs((double)b[r * D + k]));
        for (int k = 0; k < D; k++) worst = fmax(worst, fabs((double)a[r * D + k] - (double)b[r * D + k]) / scale);
    }
    return worst;
}

/* 64 rows in one call vs four calls of 16 with first_example 0, 16, 32, 48. The pieces' GEMMs have other
 * shapes, so only float32 rounding may differ: K <= 48 products per layer at u = 6e-8 give <= 3e-6 of
 * the scale through three layers; 1e-5 of the example's max |phi| leaves a margin. Without the offsets,
 * or with another seed, the Monte Carlo draws differ (far above 1e-2). */
static void test_split_batches(void) {
    enum { ROWS = 64, PIECE = 16 };
    static float x[ROWS * D], whole[ROWS * D], split[ROWS * D], unshifted[ROWS * D], reseeded[ROWS * D];
    static int64_t target[ROWS];
    fill(x, ROWS * D, 1.0f);
    for (int i = 0; i < ROWS; i++) target[i] = i % C;
    for (int method = 0; method < 2; method++) {
        const char *name = method == 0 ? "expected gradients" : "smoothgrad";
        int ok = 1;
        for (int pass = 0; pass < 4 && ok; pass++) {
            for (int p = 0; p < (pass < 2 ? ROWS / PIECE : 1); p++) {
                /* pass 0: pieces without offsets; 1: pieces with offsets; 2: one call; 3: one call, another seed */
                int64_t first = pass < 2 ? (int64_t)p * PIECE : 0, n = pass < 2 ? PIECE : ROWS;
                int64_t offset = pass == 1 ? first : 0;
                uint64_t seed = pass == 3 ? 8 : 7;
                float *out = (pass == 0 ? unshifted : pass == 1 ? split : pass == 2 ? whole : reseeded) + first * D;
                int rc = method == 0
                    ? sa_expected_gradients(model, x + first * D, n, REFS, R, target + first, n, 40, seed, offset, 0, out)
                    : sa_smoothgrad(model, x + first * D, n, target + first, n, 0, 30, 0.4f, seed, offset, 0, out);
                if (rc != SA_OK) {
                    CHECK(0, "%s: %s", name, sa_last_error());
                    ok = 0;
                    break;
                }
            }
        }
        if (!ok) continue;
        double split_diff = worst_per_example(split, whole, ROWS);
        CHECK(split_diff < 1e-5, "%s: four calls of 16 differ from one call of 64 by %g", name, split_diff);
        CHECK(worst_per_example(unshifted, whole, ROWS) > 1e-2, "%s: first_example selects the streams", name);
        CHECK(worst_per_example(reseeded, whole, ROWS) > 1e-2, "%s: seeds matter", name);
    }
    float out[D];
    int rc = sa_expected_gradients(model, X, 1, REFS, R, TARGET, 1, 4, 1, -1, 0, out);
    CHECK(rc == SA_ERR_INVALID_ARGUMENT && strstr(sa_last_error(), "first_example") != NULL,
          "first_example = -1: %d '%s'", rc, sa_last_error());
    rc = sa_smoothgrad(model, X, 2, TARGET, 2, 0, 4, 0.1f, 1, INT64_MAX - 1, 0, out);
    CHECK(rc == SA_ERR_INVALID_ARGUMENT && strstr(sa_last_error(), "first_example") != NULL,
          "first_example + n overflowing: %d '%s'", rc, sa_last_error());
}

int main(void) {
    const char *env = getenv("SA_FORK_CHILDREN");
    int count = env ? atoi(env) : 400;
    if (count < 1) count = 400;
    seed_rnd(2024);
    fill(W1, H * D, 0.4f); fill(B1, H, 0.2f); fill(W2, H * H, 0.3f); fill(B2, H, 0.2f);
    fill(W3, C * H, 0.4f); fill(B3, C, 0.1f);
    fill(X, N * D, 1.0f); fill(REFS, R * D, 1.0f);
    for (int i = 0; i < N; i++) TARGET[i] = i % C;
    model = build_model();
    CHECK(model != NULL, "build the model: %s", sa_last_error());
    if (model == NULL) return 1;
    CHECK(sa_set_num_threads(THREADS) == SA_OK, "sa_set_num_threads(%d)", THREADS);
    float y[N * C];
    CHECK(sa_forward(model, X, N, y) == SA_OK, "forward: %s", sa_last_error());

    /* A busy machine: spinning threads compete with the children for the cores, so a child is often
     * preempted inside the runtime's locks. They use no library code, so the parent stays cold. */
    pthread_t spinners[SPINNERS];
    keep_running = 1;
    for (int i = 0; i < SPINNERS; i++) CHECK(pthread_create(&spinners[i], NULL, spin, NULL) == 0, "pthread_create");
    run_children("cold", count, NULL);
    keep_running = 0;
    for (int i = 0; i < SPINNERS; i++) pthread_join(spinners[i], NULL);

    static float ref[METHODS * OUT];
    CHECK(compute(ref) == SA_OK, "parent call: %s", sa_last_error());
    run_children("warm", count, ref);

    pthread_t thread;
    keep_running = 1;
    CHECK(pthread_create(&thread, NULL, busy_caller, NULL) == 0, "pthread_create");
    run_children("busy", count, ref);
    keep_running = 0;
    pthread_join(thread, NULL);

    test_split_batches();
    sa_model_free(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
