/*
 * test.h - the unit-test harness: a few assertion macros and a runner.
 *
 * A unit test file is tests/unit/<module>_test.c and tests src/<module>.c.
 * It #includes "../../src/<module>.c" so it can reach the module's statics
 * (the Makefile links every other source file beside it, but not that one).
 *
 * Each test is a `static void test_xxx(void)` run by TEST_RUN(test_xxx).
 * An assertion that fails prints both sides with file:line and marks the
 * current test failed; the test goes on to its end (so one run shows every
 * broken case). The output is TAP-like, one line per test:
 *     ok - test_name
 *     not ok - test_name
 * which tests/run.sh counts. TEST_MAIN_END returns non-zero if any failed.
 * Every test binary is run under an alarm (TEST_TIMEOUT_S) so none can hang.
 */
#ifndef COURANT_TEST_H
#define COURANT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 60
#endif

static int test__failed_current; /* assertions failed in the running test */
static int test__failed_total;   /* tests failed so far */
static int test__passed_total;   /* tests passed so far */

#define TEST_FAIL_AT(...)                                 \
    do {                                                  \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                     \
        fputc('\n', stderr);                              \
        test__failed_current++;                           \
    } while (0)

#define ASSERT(cond)                                     \
    do {                                                 \
        if (!(cond))                                     \
            TEST_FAIL_AT("assertion failed: %s", #cond); \
    } while (0)

#define ASSERT_EQ(a, b)                                             \
    do {                                                            \
        intmax_t a__ = (intmax_t)(a), b__ = (intmax_t)(b);          \
        if (a__ != b__)                                             \
            TEST_FAIL_AT("%s == %s: %jd != %jd", #a, #b, a__, b__); \
    } while (0)

#define ASSERT_UEQ(a, b)                                            \
    do {                                                            \
        uintmax_t a__ = (uintmax_t)(a), b__ = (uintmax_t)(b);       \
        if (a__ != b__)                                             \
            TEST_FAIL_AT("%s == %s: %ju != %ju", #a, #b, a__, b__); \
    } while (0)

/* Compare a (pointer, length) pair with a NUL-terminated expectation. */
#define ASSERT_MEM_STR(ptr, len, str)                                                                       \
    do {                                                                                                    \
        const char *p__ = (const char *)(ptr);                                                              \
        size_t l__ = (size_t)(len);                                                                         \
        const char *s__ = (str);                                                                            \
        if (l__ != strlen(s__) || (l__ && memcmp(p__, s__, l__) != 0))                                      \
            TEST_FAIL_AT("%s: got \"%.*s\" (%zu bytes), want \"%s\"", #ptr, (int)l__, p__ ? p__ : "(null)", \
                         l__, s__);                                                                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                                 \
    do {                                                                                                    \
        const char *a__ = (a), *b__ = (b);                                                                  \
        if (!a__ || !b__ || strcmp(a__, b__) != 0)                                                          \
            TEST_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, a__ ? a__ : "(null)", b__ ? b__ : "(null)"); \
    } while (0)

#define TEST_RUN(fn)                      \
    do {                                  \
        test__failed_current = 0;         \
        fn();                             \
        if (test__failed_current) {       \
            test__failed_total++;         \
            printf("not ok - %s\n", #fn); \
        } else {                          \
            test__passed_total++;         \
            printf("ok - %s\n", #fn);     \
        }                                 \
        fflush(stdout);                   \
    } while (0)

#define TEST_MAIN_BEGIN() alarm(TEST_TIMEOUT_S)
#define TEST_MAIN_END() return test__failed_total ? 1 : 0

#endif
