/* check.h - the tiny test harness every tests/test_*.c uses.
 *
 * A test file defines functions `static void test_xxx(void)` and calls
 * RUN(test_xxx) from main, then `return check_summary();`.
 * Each RUN prints "ok   name" or "FAIL name" (after the failing CHECK lines);
 * check_summary prints "#summary <passed> <failed>" which tests/run.sh sums
 * into the one closing line "N passed, M failed". A binary that crashes or
 * prints no summary counts as one failure there.
 */
#ifndef SRLM_CHECK_H
#define SRLM_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed, check_case_failed;

#define CHECK(cond, ...) do { if (!(cond)) { check_case_failed = 1; \
    printf("  check failed %s:%d: %s: ", __FILE__, __LINE__, #cond); printf(__VA_ARGS__); printf("\n"); \
    fflush(stdout); } } while (0)

#define RUN(fn) do { check_case_failed = 0; fn(); \
    if (check_case_failed) { check_failed++; printf("FAIL %s\n", #fn); } \
    else { check_passed++; printf("ok   %s\n", #fn); } fflush(stdout); } while (0)

/* a visible skip: counted neither as pass nor fail */
#define SKIP(fn, why) do { printf("SKIP: %s: %s\n", #fn, why); } while (0)

static int check_summary(void) {
    printf("#summary %d %d\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}
#endif
