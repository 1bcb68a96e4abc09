/* Tests of registry/model/cron.c: reg_cron_validate accepts the documented forms
 * and refuses everything else with an exact message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "app_model.h"
#include "tine_common.h"

static void test_accepts_valid_expressions(void **state)
{
    (void)state;
    const char *good[] = {
        "* * * * *",
        "*/5 * * * *",
        "0 0 1 1 *",
        "59 23 31 12 7",
        "0 9 * * mon-fri",
        "0 9 * * MON-FRI",
        "0 9 * * Sun,sat",
        "0 0 * jan-mar,oct *",
        "0,15,30,45 * * * *",
        "0-30/10 8-18/2 1-31/3 */2 0-7",
        "5/15 * * * *",
        "0 0 29 2 *",
        "0 0 31 * mon",
        "0 0 31 feb mon",
        "  0   12\t* * *  ",
        "*/60 */24 */31 */12 */8",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@every 1s",
        "@every 30s",
        "@every 1h30m",
        "@every   2m ",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char err[256] = "untouched";
        if (reg_cron_validate(good[i], err, sizeof err) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
        assert_string_equal(err, "");
    }
}

static void test_refuses_with_exact_messages(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"", "empty cron expression; expected 5 fields (minute hour day-of-month month day-of-week) or @every "
             "<duration>"},
        {"   ", "empty cron expression; expected 5 fields (minute hour day-of-month month day-of-week) or @every "
                "<duration>"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
        {"0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
        {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
        {"0 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
        {"0 0 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
        {"0 0 32 * *", "field 3 (day of month): 32 is out of range 1-31"},
        {"0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"},
        {"0 0 * 0 *", "field 4 (month): 0 is out of range 1-12"},
        {"0 0 * * 8", "field 5 (day of week): 8 is out of range 0-7"},
        {"99999999999 * * * *", "field 1 (minute): 99999999999 is out of range 0-59"},
        {"0 0 * foo *", "field 4 (month): 'foo' is neither a number 1-12 nor a name jan..dec"},
        {"0 0 * * monday", "field 5 (day of week): 'monday' is neither a number 0-7 nor a name sun..sat"},
        {"0 mon * * *", "field 2 (hour): 'mon' is not a number; expected *, N or N-M (or a comma-separated list of "
                        "them), each with an optional /step"},
        {"1x * * * *", "field 1 (minute): '1x' is not a number"},
        {"*/0 * * * *", "field 1 (minute): step must be a number 1-60, got '0'"},
        {"*/61 * * * *", "field 1 (minute): step must be a number 1-60, got '61'"},
        {"*/ * * * *", "field 1 (minute): step must be a number 1-60, got ''"},
        {"*/a * * * *", "field 1 (minute): step must be a number 1-60, got 'a'"},
        {"0 */25 * * *", "field 2 (hour): step must be a number 1-24, got '25'"},
        {"30-10 * * * *", "field 1 (minute): range '30-10' goes backwards"},
        {"0 0 * * fri-mon", "field 5 (day of week): range 'fri-mon' goes backwards"},
        {"1,,2 * * * *", "field 1 (minute): empty item in list '1,,2'"},
        {"1, * * * *", "field 1 (minute): empty item in list '1,'"},
        {"-5 * * * *", "field 1 (minute): a number is missing; expected *, N or N-M (or a comma-separated list of "
                       "them), each with an optional /step"},
        {"5- * * * *", "field 1 (minute): a number is missing; expected *, N or N-M (or a comma-separated list of "
                       "them), each with an optional /step"},
        {"? * * * *", "field 1 (minute): '?' is not allowed; expected *, N or N-M (or a comma-separated list of "
                      "them), each with an optional /step"},
        {"0 0 L * *", "field 3 (day of month): 'L' is not a number; expected *, N or N-M (or a comma-separated list "
                      "of them), each with an optional /step"},
        {"0 0 * * 5#3", "field 5 (day of week): '#' is not allowed; expected *, N or N-M (or a comma-separated list "
                        "of them), each with an optional /step"},
        {"** * * * *", "field 1 (minute): '**' is not a number; expected *, N or N-M (or a comma-separated list of "
                       "them), each with an optional /step"},
        {"0 0 30 2 *", "never fires: day of month '30' does not occur in month '2'"},
        {"0 0 31 apr,jun *", "never fires: day of month '31' does not occur in month 'apr,jun'"},
        {"@every", "@every needs a duration such as 30s, 5m or 1h30m"},
        {"@every 500ms", "@every: 500ms is shorter than the minimum of 1s"},
        {"@every 0s", "@every: 0s is shorter than the minimum of 1s"},
        {"@every 30", "@every: '30' is not a duration such as 30s or 5m (units h, m, s, ms)"},
        {"@every 1d", "@every: '1d' is not a duration such as 30s or 5m (units h, m, s, ms)"},
        {"@every 1m 30s", "@every takes one duration, found more after '1m'"},
        {"@daily 0", "@daily takes no fields, found '0'"},
        {"@reboot", "unknown shorthand '@reboot'; expected @every <duration>, @hourly, @daily, @midnight, @weekly, "
                    "@monthly, @yearly or @annually"},
        {"@Daily", "unknown shorthand '@Daily'; expected @every <duration>, @hourly, @daily, @midnight, @weekly, "
                   "@monthly, @yearly or @annually"},
        {"0 0\n* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        int rc = reg_cron_validate(cases[i][0], err, sizeof err);
        if (rc != TINE_EINVAL)
            fail_msg("'%s' accepted (rc %d)", cases[i][0], rc);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("for '%s'\nexpected: %s\n     got: %s", cases[i][0], cases[i][1], err);
    }
}

/* NULL input and small or absent error buffers are handled. */
static void test_api_edges(void **state)
{
    (void)state;
    char err[16];
    assert_int_equal(reg_cron_validate(NULL, err, sizeof err), TINE_EINVAL);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_int_equal(reg_cron_validate("61 * * * *", NULL, 0), TINE_EINVAL);
    assert_int_equal(reg_cron_validate("0 * * * *", NULL, 0), 0);
    char one[1] = {'x'};
    assert_int_equal(reg_cron_validate("bad", one, sizeof one), TINE_EINVAL);
    assert_int_equal(one[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid_expressions),
        cmocka_unit_test(test_refuses_with_exact_messages),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests_name("registry/model/cron", tests, NULL, NULL);
}
