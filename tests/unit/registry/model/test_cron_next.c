/* Tests of reg_cron_next (registry/model/cron.c): the next firing time of a
 * schedule, in UTC, strictly after a given instant. Expected instants were
 * computed independently (Python's calendar.timegm). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "app_model.h"
#include "tine_common.h"

#define T_2026_01_01_000030 1767225630000LL /* Thu */
#define T_2026_01_01_000100 1767225660000LL
#define T_2026_01_01_000500 1767225900000LL
#define T_2026_01_03_100000 1767434400000LL /* Sat */
#define T_2026_01_05_090000 1767603600000LL /* Mon */
#define T_2026_03_01_000000 1772323200000LL
#define T_2028_02_29_000000 1835395200000LL
#define T_2026_01_01_005959 1767229199000LL
#define T_2026_01_01_010000 1767229200000LL
#define T_2026_04_01_000000 1775001600000LL
#define T_2026_05_31_000000 1780185600000LL
#define T_2026_02_01_000000 1769904000000LL /* Sun */
#define T_2026_02_06_000000 1770336000000LL /* Fri */
#define T_2026_02_13_000000 1770940800000LL /* Fri */
#define T_2026_12_31_235900 1798761540000LL
#define T_2027_01_01_000000 1798761600000LL

static void expect_next(const char *expr, int64_t after, int64_t want)
{
    int64_t got = -1;
    int rc = reg_cron_next(expr, after, &got);
    if (rc != 0)
        fail_msg("'%s' after %lld: error %d", expr, (long long)after, rc);
    if (got != want)
        fail_msg("'%s' after %lld: got %lld, want %lld", expr, (long long)after, (long long)got, (long long)want);
}

static void test_five_fields(void **state)
{
    (void)state;
    expect_next("* * * * *", T_2026_01_01_000030, T_2026_01_01_000100);
    /* Strictly after: at a tick, the next one. */
    expect_next("* * * * *", T_2026_01_01_000100, T_2026_01_01_000100 + 60000);
    expect_next("*/5 * * * *", T_2026_01_01_000100, T_2026_01_01_000500);
    expect_next("0 9 * * mon-fri", T_2026_01_03_100000, T_2026_01_05_090000);
    expect_next("0 9 * * 1-5", T_2026_01_03_100000, T_2026_01_05_090000);
    expect_next("0 0 31 * *", T_2026_04_01_000000, T_2026_05_31_000000);
    expect_next("0 0 29 2 *", T_2026_03_01_000000, T_2028_02_29_000000);
}

static void test_shorthands_and_every(void **state)
{
    (void)state;
    expect_next("@hourly", T_2026_01_01_005959, T_2026_01_01_010000);
    expect_next("@yearly", T_2026_12_31_235900, T_2027_01_01_000000);
    expect_next("@daily", T_2026_12_31_235900, T_2027_01_01_000000);
    /* @every ticks on whole multiples of the interval since the epoch. */
    expect_next("@every 30s", 12345, 30000);
    expect_next("@every 30s", 30000, 60000);
    expect_next("@every 1m30s", T_2026_01_01_000030, (T_2026_01_01_000030 / 90000 + 1) * 90000);
}

static void test_day_of_month_or_week(void **state)
{
    (void)state;
    /* Both restricted: either fires (the 13th or any Friday). */
    expect_next("0 0 13 * fri", T_2026_02_01_000000, T_2026_02_06_000000);
    expect_next("0 0 13 * fri", T_2026_02_06_000000 + 1, T_2026_02_13_000000);
    /* One of them '*': the other decides. */
    expect_next("0 0 13 * *", T_2026_02_01_000000, T_2026_02_13_000000);
    expect_next("0 0 * * 5", T_2026_02_01_000000, T_2026_02_06_000000);
    expect_next("0 0 */1 * 5", T_2026_02_01_000000, T_2026_02_06_000000);
    /* 7 is Sunday too. */
    expect_next("0 0 * * 7", T_2026_01_03_100000, T_2026_01_03_100000 + 14 * 3600000LL);
}

static void test_every_result_matches_its_fields(void **state)
{
    (void)state;
    /* Walking 2000 ticks of a busy expression: each is on a minute, after
     * the previous one, and within the fields. */
    int64_t t = T_2026_01_01_000030;
    for (int i = 0; i < 2000; i++) {
        int64_t n = 0;
        assert_int_equal(reg_cron_next("*/7 1-3,22 * * tue,sat", t, &n), 0);
        assert_true(n > t);
        assert_int_equal(n % 60000, 0);
        time_t s = (time_t)(n / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        assert_int_equal(tm.tm_min % 7, 0);
        assert_true((tm.tm_hour >= 1 && tm.tm_hour <= 3) || tm.tm_hour == 22);
        assert_true(tm.tm_wday == 2 || tm.tm_wday == 6);
        t = n;
    }
}

static void test_refuses_bad_expressions(void **state)
{
    (void)state;
    int64_t n = 0;
    assert_int_equal(reg_cron_next("61 * * * *", 0, &n), TINE_EINVAL);
    assert_int_equal(reg_cron_next("@every", 0, &n), TINE_EINVAL);
    assert_int_equal(reg_cron_next(NULL, 0, &n), TINE_EINVAL);
    assert_int_equal(reg_cron_next("0 0 30 2 *", 0, &n), TINE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_fields),
        cmocka_unit_test(test_shorthands_and_every),
        cmocka_unit_test(test_day_of_month_or_week),
        cmocka_unit_test(test_every_result_matches_its_fields),
        cmocka_unit_test(test_refuses_bad_expressions),
    };
    return cmocka_run_group_tests_name("registry/model/cron next", tests, NULL, NULL);
}
