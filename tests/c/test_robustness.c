/*
 * test_robustness.c — nothing a caller does aborts, hangs or silently lies (issue 8).
 *
 * Each risky case runs in a forked child, so an abort, a hang (alarm) or a crash is a failure of that
 * case rather than of the whole program: allocation under an address-space limit (RLIMIT_AS), large and
 * non-model files, a FIFO, saving to /dev/full and under a file-size limit (RLIMIT_FSIZE), RATE edge
 * cases (and LAPACK printing nothing), and messages that name the C argument.
 *
 * Build and run: tests/c/run.sh. Prints "N passed, M failed" last; exits non-zero on any failure.
 */
#define _GNU_SOURCE /* MAP_NORESERVE, mkdtemp */

#include "swiftattr.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

/* In a child: 1 when rc == code and the message mentions `mention`, else prints why and returns 0. */
static int child_expect(int rc, int code, const char *mention, const char *what) {
    if (getenv("SA_TEST_VERBOSE")) fprintf(stderr, "    %s -> %d\n", what, rc);
    const char *msg = sa_last_error();
    if (rc == code && (mention == NULL || strstr(msg, mention) != NULL)) return 1;
    fprintf(stderr, "    %s: returned %d (want %d), message '%s' (want it to mention '%s')\n", what, rc, code, msg,
            mention ? mention : "");
    return 0;
}

/* In the parent: counts a pass when rc == code and the message mentions `mention`. */
static void expect_error_line(int rc, int code, const char *mention, const char *what) {
    if (child_expect(rc, code, mention, what)) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s\n", what);
    }
}

/* Runs `body` in a forked child with an alarm of `seconds`; the child's exit status 0 is a pass. */
static void in_child(const char *name, int seconds, int (*body)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)seconds);
        _exit(body() ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
    } else {
        failed++;
        if (WIFSIGNALED(status))
            fprintf(stderr, "FAIL %s: child killed by signal %d%s\n", name, WTERMSIG(status),
                    WTERMSIG(status) == SIGALRM ? " (it hung)" : WTERMSIG(status) == SIGABRT ? " (it aborted)" : "");
        else
            fprintf(stderr, "FAIL %s: child exited with %d\n", name, WEXITSTATUS(status));
    }
}

/* Bytes of address space the process maps now (from /proc/self/statm). */
static size_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Limits the address space to what is mapped now plus `extra` bytes. */
static void limit_address_space(size_t extra) {
    struct rlimit r;
    r.rlim_cur = r.rlim_max = mapped_bytes() + extra;
    setrlimit(RLIMIT_AS, &r);
}

/* `bytes` of zero pages that cost no memory until written (read-only unless `writable`). */
static void *zero_pages(size_t bytes, int writable) {
    void *p = mmap(NULL, bytes, PROT_READ | (writable ? PROT_WRITE : 0), MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* 4 -> 3 -> ReLU -> 2 (or 1 output when `one_output`). */
static sa_model *small_mlp(int one_output) {
    int64_t shape[1] = {4};
    float w1[12], b1[3], w2[6], b2[2];
    for (int i = 0; i < 12; i++) w1[i] = 0.1f * (float)(i % 5) - 0.2f;
    for (int i = 0; i < 6; i++) w2[i] = 0.3f - 0.1f * (float)i;
    b1[0] = 0.1f; b1[1] = -0.1f; b1[2] = 0.2f; b2[0] = 0.5f; b2[1] = -0.5f;
    sa_model *m = NULL;
    if (sa_model_create(shape, 1, &m) != SA_OK) return NULL;
    sa_model_add_dense(m, w1, 3, 4, b1);
    sa_model_add_activation(m, SA_LAYER_RELU, 0);
    sa_model_add_dense(m, w2, one_output ? 1 : 2, 3, b2);
    return m;
}

/* ------------------------------------------------------------------------------------------------ */
/* Memory: bounded chunks under an address-space limit, SA_ERR_OUT_OF_MEMORY instead of an abort.     */

#define BIG_N ((int64_t)1 << 24) /* 16 Mi rows x 4 floats = 256 MiB of input */

static int forward_under_limit(void) {
    sa_model *m = small_mlp(0);
    float *x = zero_pages((size_t)BIG_N * 4 * sizeof(float), 0);
    float *out = zero_pages((size_t)BIG_N * 4 * sizeof(float), 1);
    float *delta = zero_pages((size_t)BIG_N * sizeof(float), 1);
    int64_t target = 1;
    if (!m || !x || !out || !delta) return 0;
    /* glibc reserves 64-128 MiB of address space for each new per-thread arena, more than the headroom
     * below: use one arena, so the limit measures what the library allocates. */
    mallopt(M_ARENA_MAX, 1);
    /* Start the library's threads first: their stacks are mapped once. */
    float small[8] = {0}, so[8];
    sa_forward(m, small, 2, so);
    sa_saliency(m, small, 2, &target, 1, 1, so);
    limit_address_space((size_t)160 << 20); /* less than one copy of x */
    int ok = 1;
    ok &= child_expect(sa_forward(m, x, BIG_N, out), SA_OK, NULL, "sa_forward");
    ok &= child_expect(sa_forward_to_layer(m, x, BIG_N, 1, out), SA_OK, NULL, "sa_forward_to_layer");
    ok &= child_expect(sa_saliency(m, x, BIG_N, &target, 1, 0, out), SA_OK, NULL, "sa_saliency");
    ok &= child_expect(sa_input_x_gradient(m, x, BIG_N, &target, 1, out), SA_OK, NULL, "sa_input_x_gradient");
    ok &= child_expect(sa_gradient(m, x, BIG_N / 2, x, out), SA_OK, NULL, "sa_gradient");
    ok &= child_expect(sa_integrated_gradients(m, x, BIG_N / 8, NULL, 0, &target, 1, 2, SA_IG_RIEMANN_MIDDLE, 0, out, delta),
                       SA_OK, NULL, "sa_integrated_gradients");
    ok &= child_expect(sa_deeplift(m, x, BIG_N / 8, NULL, 0, &target, 1, 0, 0, 1, 0, out, delta), SA_OK, NULL, "sa_deeplift");
    ok &= child_expect(sa_deepshap(m, x, BIG_N / 8, small, 2, &target, 1, 0, 0, 1, 0, out, delta), SA_OK, NULL, "sa_deepshap");
    /* The seeded methods chunk the caller's rows too (each chunk with its first_example offset). */
    ok &= child_expect(sa_expected_gradients(m, x, BIG_N / 8, small, 2, &target, 1, 1, 7, 0, 0, out), SA_OK, NULL,
                       "sa_expected_gradients");
    ok &= child_expect(sa_smoothgrad(m, x, BIG_N / 8, &target, 1, SA_NT_SMOOTHGRAD, 1, 0.1f, 7, 0, 0, out), SA_OK, NULL,
                       "sa_smoothgrad");
    return ok;
}

/* A 2^16 x 2^17 weight (32 GiB) cannot be copied under the limit: SA_ERR_OUT_OF_MEMORY naming it. */
static int dense_too_large(void) {
    int64_t shape[1] = {(int64_t)1 << 17};
    sa_model *m = NULL;
    if (sa_model_create(shape, 1, &m) != SA_OK) return 0;
    size_t count = (size_t)1 << 33;
    float *w = zero_pages(count * sizeof(float), 0);
    if (!w) return 0;
    limit_address_space((size_t)1 << 30);
    return child_expect(sa_model_add_dense(m, w, (int64_t)1 << 16, (int64_t)1 << 17, NULL), SA_ERR_OUT_OF_MEMORY, "weight",
                        "sa_model_add_dense 2^16 x 2^17");
}

/* ------------------------------------------------------------------------------------------------ */
/* Model files.                                                                                      */

static char dir[256];

static void path_in_dir(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

/* A 2 GiB sparse file that is not a model fails at its magic, without reading it whole. */
static int big_non_model(void) {
    char path[512];
    path_in_dir(path, sizeof path, "junk.sam");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)2 << 30) != 0) return 0;
    close(fd);
    limit_address_space((size_t)256 << 20);
    sa_model *m = NULL;
    return child_expect(sa_model_load(path, &m), SA_ERR_FORMAT, "bad magic", "load 2 GiB of zeros");
}

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }

/* A 10 GiB model file (one 2^16 x 2^15 Dense layer: an 8 GiB weight) under a 1 GiB limit. */
static int huge_model_file(void) {
    char path[512];
    path_in_dir(path, sizeof path, "huge.sam");
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite("SAMODEL1", 1, 8, f);
    put_u32(f, 1);
    put_u64(f, (uint64_t)1 << 15);
    put_u32(f, 1);          /* layers */
    put_u32(f, 0);          /* dense */
    put_u32(f, 2);          /* ints */
    put_u64(f, (uint64_t)1 << 16);
    put_u64(f, (uint64_t)1 << 15);
    put_u32(f, 0);          /* scalars */
    put_u32(f, 2);          /* tensors */
    put_u64(f, (uint64_t)1 << 31);
    fclose(f);
    if (truncate(path, (off_t)10 << 30) != 0) return 0;
    limit_address_space((size_t)1 << 30);
    sa_model *m = NULL;
    return child_expect(sa_model_load(path, &m), SA_ERR_OUT_OF_MEMORY, "tensor 0", "load a 10 GiB model under a 1 GiB limit");
}

/* A FIFO is not a regular file: an error at once, not a wait for a writer. */
static int fifo_load(void) {
    char path[512];
    path_in_dir(path, sizeof path, "fifo");
    if (mkfifo(path, 0600) != 0) return 0;
    sa_model *m = NULL;
    return child_expect(sa_model_load(path, &m), SA_ERR_IO, "not a regular file", "load a FIFO");
}

static int save_dev_full(void) {
    sa_model *m = small_mlp(0);
    return child_expect(sa_model_save(m, "/dev/full"), SA_ERR_IO, "/dev/full", "save to /dev/full");
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Entries of `dir` other than . and .. whose name starts with `prefix`. */
static int entries_with_prefix(const char *prefix) {
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) count++;
    if (d) closedir(d);
    return count;
}

/* Under a file-size limit the save fails with SA_ERR_IO and the old file stays whole. */
static int save_under_fsize_limit(void) {
    char path[512];
    path_in_dir(path, sizeof path, "kept.sam");
    sa_model *small = small_mlp(1);
    if (sa_model_save(small, path) != SA_OK) return 0;
    long before = file_size(path);
    sa_model *check = NULL;
    if (sa_model_load(path, &check) != SA_OK) return 0;
    /* A model larger than the limit. */
    int64_t shape[1] = {256};
    sa_model *big = NULL;
    static float w[256 * 256];
    sa_model_create(shape, 1, &big);
    sa_model_add_dense(big, w, 256, 256, NULL);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {(rlim_t)before + 16, (rlim_t)before + 16};
    setrlimit(RLIMIT_FSIZE, &r);
    int ok = child_expect(sa_model_save(big, path), SA_ERR_IO, path, "save under RLIMIT_FSIZE");
    if (file_size(path) != before) {
        fprintf(stderr, "    the old file changed size: %ld -> %ld\n", before, file_size(path));
        ok = 0;
    }
    sa_model *again = NULL;
    if (sa_model_load(path, &again) != SA_OK) {
        fprintf(stderr, "    the old file no longer loads: %s\n", sa_last_error());
        ok = 0;
    }
    if (entries_with_prefix("kept.sam") != 1) {
        fprintf(stderr, "    a temporary file was left behind\n");
        ok = 0;
    }
    return ok;
}

/* Saving replaces a file atomically and the result loads; a failed save to a missing directory says so. */
static int save_roundtrip(void) {
    char path[512];
    path_in_dir(path, sizeof path, "roundtrip.sam");
    sa_model *m = small_mlp(0);
    int ok = child_expect(sa_model_save(m, path), SA_OK, NULL, "save");
    ok &= child_expect(sa_model_save(m, path), SA_OK, NULL, "save over an existing file");
    sa_model *back = NULL;
    ok &= child_expect(sa_model_load(path, &back), SA_OK, NULL, "load what was saved");
    float x[4] = {0.5f, -1, 2, 0.25f}, y1[2], y2[2];
    sa_forward(m, x, 1, y1);
    sa_forward(back, x, 1, y2);
    if (memcmp(y1, y2, sizeof y1) != 0) ok = 0;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.sam", dir);
    ok &= child_expect(sa_model_save(m, missing), SA_ERR_IO, missing, "save into a missing directory");
    return ok;
}

/* ------------------------------------------------------------------------------------------------ */
/* RATE edge cases: errors, never NaN with status 0, and LAPACK prints nothing.                      */

static int rate_edge_cases(void) {
    /* stderr to a file, to check that nothing (LAPACK's xerbla) is printed. */
    char log[512];
    path_in_dir(log, sizeof log, "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);

    enum { N = 8, P = 3, H = 2 };
    double X[N * P], Hf[N * H], wmean[H] = {1, -1}, wcov[H * H] = {0, 0, 0, 0};
    for (int i = 0; i < N * P; i++) X[i] = sin(1.0 + i);
    for (int i = 0; i < N * H; i++) Hf[i] = cos(2.0 + i);
    double rate[P], kld[P], delta[1], ess[1], esa[P];
    int64_t info[2];
    int rc1 = sa_rate_last_layer(1, N, P, H, X, Hf, wmean, wcov, NULL, NULL,
                                 rate, kld, delta, ess, info, esa);
    char m1[512];
    snprintf(m1, sizeof m1, "%s", sa_last_error());
    double rate1[P], ess1 = ess[0];
    memcpy(rate1, rate, sizeof rate1);
    double neg[4] = {-1, 0, 0, -1}, mu[2] = {1, 2};
    int rc2 = sa_rate_from_esa(1, 2, mu, neg, NULL, rate, kld, delta, ess, info);
    char m2[512];
    snprintf(m2, sizeof m2, "%s", sa_last_error());
    /* X ~ 1e200 with V_F = 0: the effect-size mean overflows (it used to come back with status 0). */
    double Xb[N * P], MF[N], VF[N * N];
    for (int i = 0; i < N * P; i++) Xb[i] = 1e200 * sin(3.0 + i);
    for (int i = 0; i < N; i++) MF[i] = 1e200 * cos(1.0 + i);
    memset(VF, 0, sizeof VF);
    int rc3 = sa_rate_from_gaussian(1, N, P, Xb, MF, VF, NULL, rate, kld, delta,
                                    ess, info, esa);
    /* Identical draws of 1e300. */
    double draws[4 * N];
    for (int i = 0; i < 4 * N; i++) draws[i] = 1e300;
    int rc4 = sa_rate_from_draws(1, 4, N, P, X, draws, NULL, rate, kld, delta,
                                 ess, info, esa);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    int ok = 1;
    /* W_cov = 0: no variable has posterior variance, every KLD is 0, RATE is uniform with rank 0. */
    if (!(rc1 == SA_OK && info[0] == 0 && rate1[0] == 1.0 / 3 && rate1[1] == 1.0 / 3 && rate1[2] == 1.0 / 3 && ess1 == 100)) {
        fprintf(stderr, "    W_cov = 0: %d '%s' rank %lld rate %g %g %g\n", rc1, m1, (long long)info[0], rate1[0], rate1[1], rate1[2]);
        ok = 0;
    }
    if (!(rc2 == SA_ERR_INVALID_ARGUMENT && strstr(m2, "esa_cov is not positive semi-definite"))) {
        fprintf(stderr, "    negative-definite esa_cov: %d '%s'\n", rc2, m2);
        ok = 0;
    }
    if (rc3 != SA_ERR_NUMERICAL) {
        fprintf(stderr, "    X ~ 1e160, V_F = 0: %d (esa_mean %g %g %g)\n", rc3, esa[0], esa[1], esa[2]);
        ok = 0;
    }
    /* Identical draws: Σ = 0, uniform RATE, finite μ. */
    if (!(rc4 == SA_OK && info[0] == 0 && isfinite(esa[0]) && isfinite(esa[1]) && isfinite(esa[2]) && rate[0] == 1.0 / 3)) {
        fprintf(stderr, "    identical draws: %d '%s' (rate %g %g %g)\n", rc4, sa_last_error(), rate[0], rate[1], rate[2]);
        ok = 0;
    }
    long printed = file_size(log);
    if (printed != 0) {
        fprintf(stderr, "    the library printed %ld bytes to stderr\n", printed);
        ok = 0;
    }
    return ok;
}

/* ------------------------------------------------------------------------------------------------ */
/* Messages.                                                                                         */

static void test_messages(void) {
    int64_t shape[3] = {1, 8, 8};
    sa_model *m = NULL;
    sa_model_create(shape, 3, &m);
    float w[2 * 9] = {0};
    expect_error_line(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 1, -3, 0, 0, 1, 1), SA_ERR_INVALID_ARGUMENT, "stride_w = -3",
                      "conv stride_w = -3");
    expect_error_line(sa_model_add_conv2d(m, w, 2, 1, 3, 3, NULL, 1, 1, 0, 0, 1, 0), SA_ERR_INVALID_ARGUMENT, "dilation_w = 0",
                      "conv dilation_w = 0");
    expect_error_line(sa_model_add_maxpool2d(m, 2, 2, 0, 2, 0, 0), SA_ERR_INVALID_ARGUMENT, "stride_h = 0", "pool stride_h = 0");
    sa_model_free(m);

    sa_model *mlp = small_mlp(0);
    float x[8] = {0}, out[8];
    /* n = 2^36 rows of 4: what overflows and the limit. */
    expect_error_line(sa_forward(mlp, x, (int64_t)1 << 36, out), SA_ERR_INVALID_ARGUMENT, "n × input_size", "n = 2^36 (names n × input_size)");
    expect_error_line(sa_forward(mlp, x, (int64_t)1 << 36, out), SA_ERR_INVALID_ARGUMENT, "137438953408", "n = 2^36 (says the limit)");
    /* Huge targets are reported as given. */
    int64_t huge[2] = {INT64_MAX, INT64_MIN};
    expect_error_line(sa_saliency(mlp, x, 1, huge, 1, 1, out), SA_ERR_OUT_OF_RANGE, "target = 9223372036854775807", "target INT64_MAX");
    expect_error_line(sa_saliency(mlp, x, 2, huge, 2, 1, out), SA_ERR_OUT_OF_RANGE, "target[0] = 9223372036854775807", "target[0]");
    int64_t second[2] = {1, INT64_MIN};
    expect_error_line(sa_saliency(mlp, x, 2, second, 2, 1, out), SA_ERR_OUT_OF_RANGE, "target[1] = -9223372036854775808", "target[1]");
    sa_model_free(mlp);
}

/* A NaN deep inside a large batch (a later chunk) is reported with its index in the caller's array, once. */
static void test_nan_index(void) {
    sa_model *mlp = small_mlp(0);
    int64_t n = (int64_t)1 << 21, target = 0;
    float *x = calloc((size_t)n * 4, sizeof(float)), *out = malloc((size_t)n * 4 * sizeof(float));
    float *base = calloc((size_t)n * 4, sizeof(float));
    x[(size_t)4 * 2000000 + 1] = NAN;
    expect_error_line(sa_saliency(mlp, x, n, &target, 1, 1, out), SA_ERR_NON_FINITE, "x contains a non-finite value (nan) at flat index 8000001",
                      "NaN in a later chunk (saliency)");
    expect_error_line(sa_forward(mlp, x, n, out), SA_ERR_NON_FINITE, "x contains a non-finite value (nan) at flat index 8000001",
                      "NaN in a later chunk (forward)");
    x[(size_t)4 * 2000000 + 1] = 0;
    base[(size_t)4 * 1500000 + 3] = INFINITY;
    expect_error_line(sa_integrated_gradients(mlp, x, n, base, n, &target, 1, 1, SA_IG_RIEMANN_MIDDLE, 0, out, NULL), SA_ERR_NON_FINITE,
                      "baselines contains a non-finite value (inf) at flat index 6000003", "Inf in a later chunk of the baselines");
    free(x);
    free(out);
    free(base);
    sa_model_free(mlp);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/swiftattr_robust_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    in_child("forward and attributions in bounded chunks under RLIMIT_AS", 120, forward_under_limit);
    in_child("sa_model_add_dense 2^16 x 2^17 under RLIMIT_AS", 30, dense_too_large);
    in_child("loading a 2 GiB non-model file under RLIMIT_AS", 30, big_non_model);
    in_child("loading a 10 GiB model file under RLIMIT_AS", 30, huge_model_file);
    in_child("loading a FIFO", 10, fifo_load);
    in_child("saving to /dev/full", 10, save_dev_full);
    in_child("saving under RLIMIT_FSIZE", 10, save_under_fsize_limit);
    in_child("save and load", 10, save_roundtrip);
    in_child("RATE edge cases", 30, rate_edge_cases);
    test_messages();
    test_nan_index();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
