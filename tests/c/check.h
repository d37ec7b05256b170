/*
 * check.h — the assertion macros shared by the C test programs (each program has its own counters).
 */
#ifndef SWIFTATTR_TEST_CHECK_H
#define SWIFTATTR_TEST_CHECK_H

#include "swiftattr.h"

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

#endif /* SWIFTATTR_TEST_CHECK_H */
