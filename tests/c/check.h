/*
 * check.h — the assertion macros shared by the C test programs (each program has its own counters).
 */
#ifndef SWIFTATTR_TEST_CHECK_H
#define SWIFTATTR_TEST_CHECK_H

#include "swiftattr.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* A call must fail with `code` and a message containing `mention`. */
static inline void expect_error(int rc, int code, const char *mention, const char *call, int line) {
    const char *msg = sa_last_error();
    if (rc == code && msg != NULL && strstr(msg, mention) != NULL) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL line %d: %s\n    returned %d (want %d), message '%s' (want it to mention '%s')\n", line, call,
                rc, code, msg ? msg : "(null)", mention);
    }
}
#define EXPECT_ERROR(call, code, mention) expect_error((call), (code), (mention), #call, __LINE__)
#define EXPECT_OK(call)                                                                         \
    do {                                                                                        \
        int rc_ = (call);                                                                       \
        CHECK(rc_ == SA_OK, "%s returned %d: %s", #call, rc_, sa_last_error());                 \
    } while (0)

/* Deterministic data: a 64-bit LCG mapped to [-1, 1), seeded with 12345 unless seed_rnd says otherwise. */
static inline uint64_t *rnd_state(void) {
    static uint64_t state = 12345;
    return &state;
}
static inline void seed_rnd(uint64_t seed) { *rnd_state() = seed; }
static inline double rnd_double(void) {
    uint64_t *s = rnd_state();
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
}
static inline float rnd(void) { return (float)rnd_double(); }
static inline void fill(float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) v[i] = scale * rnd();
}

#endif /* SWIFTATTR_TEST_CHECK_H */
