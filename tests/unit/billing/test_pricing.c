/* Tests of billing/pricing.c: 100 ms rounding with the timeout cap, exact
 * GB-seconds, costs in whole picodollars, price parsing, and that totals
 * of many records are exactly the sums of the records; and of the number
 * formatter every amount and record goes through (tine_fmt_u64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "billing.h"
#include "tine_common.h"

#define MS(x) ((uint64_t)(x) * 1000000ull)

static bill_prices_t default_prices(void)
{
    bill_prices_t p;
    char err[256];
    assert_int_equal(bill_parse_price(BILL_DEFAULT_PRICE_GB_S, &p.gb_s_pusd, err, sizeof err), 0);
    assert_int_equal(bill_parse_price(BILL_DEFAULT_PRICE_REQUEST, &p.request_pusd, err, sizeof err), 0);
    return p;
}

static void test_rounds_up_to_100ms_units(void **state)
{
    (void)state;
    assert_int_equal(bill_billed_ms(0, 0), 100);
    assert_int_equal(bill_billed_ms(1, 0), 100);
    assert_int_equal(bill_billed_ms(MS(30), 0), 100);
    assert_int_equal(bill_billed_ms(MS(100), 0), 100);
    assert_int_equal(bill_billed_ms(MS(100) + 1, 0), 200);
    assert_int_equal(bill_billed_ms(MS(230), 0), 300);
    assert_int_equal(bill_billed_ms(MS(299) + 999999, 0), 300);
    assert_int_equal(bill_billed_ms(MS(900000), 0), 900000);
    assert_int_equal(bill_billed_ms(MS(30), 3000), 100);
}

static void test_a_timeout_bills_up_to_the_timeout(void **state)
{
    (void)state;
    /* killed a little after its 300 ms timeout: bills 300, not 400 */
    assert_int_equal(bill_billed_ms(MS(300) + 750000, 300), 300);
    assert_int_equal(bill_billed_ms(MS(5000), 300), 300);
    /* a 250 ms timeout rounds up to the unit */
    assert_int_equal(bill_billed_ms(MS(260), 250), 300);
    assert_int_equal(bill_billed_ms(MS(9000), 1), 100);
}

static void test_gb_seconds_are_exact(void **state)
{
    (void)state;
    char out[48];
    struct {
        uint32_t mb;
        uint64_t ms;
        const char *gb_s;
    } cases[] = {
        {128, 100, "0.0125"},      {512, 100, "0.05"},        {1024, 100, "0.1"},
        {128, 300, "0.0375"},      {512, 300, "0.15"},        {1024, 300, "0.3"},
        {1024, 1000, "1"},         {10240, 900000, "9000"},   {1, 100, "0.00009765625"},
        {100, 100, "0.009765625"}, {3, 700, "0.00205078125"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t mb_ms = bill_mb_ms(cases[i].mb, cases[i].ms);
        assert_int_equal(mb_ms, (uint64_t)cases[i].mb * cases[i].ms);
        bill_format_gb_s(mb_ms, out);
        assert_string_equal(out, cases[i].gb_s);
    }
    bill_format_gb_s(1, out); /* the smallest step: 1/1024000 */
    assert_string_equal(out, "0.0000009765625");
}

static void test_cost_follows_the_formula(void **state)
{
    (void)state;
    bill_prices_t p = default_prices();
    assert_int_equal(p.gb_s_pusd, 16666700);
    assert_int_equal(p.request_pusd, 200000);
    char out[32];
    /* 128 MB, 100 ms: 0.0125 GB-s * 0.0000166667 = 0.00000020833375 -> 208334 p$, + 200000 */
    assert_int_equal(bill_cost_pusd(&p, bill_mb_ms(128, 100)), 408334);
    bill_format_pusd(408334, out);
    assert_string_equal(out, "0.000000408334");
    /* 512 MB, 100 ms: 0.05 * 16666700 = 833335 exactly */
    assert_int_equal(bill_cost_pusd(&p, bill_mb_ms(512, 100)), 1033335);
    /* 1024 MB, 300 ms: 0.3 * 16666700 = 5000010 */
    assert_int_equal(bill_cost_pusd(&p, bill_mb_ms(1024, 300)), 5200010);
    /* 1024 MB, 1 s at 1 $/GB-s and no request price: 1 dollar */
    bill_prices_t one = {1000000000000ull, 0};
    assert_int_equal(bill_cost_pusd(&one, bill_mb_ms(1024, 1000)), 1000000000000ull);
    bill_format_pusd(1000000000000ull, out);
    assert_string_equal(out, "1.000000000000");
    /* rounding half up: 1 MB-ms at 1.024 p$ per... 1024000 p$/GB-s gives 1 p$ per MB-ms */
    bill_prices_t unit = {1024000, 0};
    assert_int_equal(bill_cost_pusd(&unit, 7), 7);
    bill_prices_t half = {512000, 0}; /* 0.5 p$ per MB-ms */
    assert_int_equal(bill_cost_pusd(&half, 1), 1);
    assert_int_equal(bill_cost_pusd(&half, 2), 1);
    assert_int_equal(bill_cost_pusd(&half, 3), 2);
    /* no overflow at the extremes: saturates */
    bill_prices_t max = {1000000000000000ull, UINT64_MAX};
    assert_int_equal(bill_cost_pusd(&max, UINT64_MAX), UINT64_MAX);
}

/* Parses a decimal dollar string back into picodollars, exactly. */
static uint64_t parse_money(const char *s)
{
    uint64_t v = 0;
    char err[128];
    assert_int_equal(bill_parse_price(s, &v, err, sizeof err), 0);
    return v;
}

static void test_totals_are_the_sums_of_the_records(void **state)
{
    (void)state;
    bill_prices_t p = default_prices();
    static const uint32_t mems[] = {128, 512, 1024, 64, 3000};
    uint64_t sum_cost = 0, sum_mb_ms = 0, sum_billed = 0, sum_cost_from_text = 0;
    unsigned seed = 7;
    __extension__ typedef unsigned __int128 u128;
    u128 exact_num = 0; /* sum of exact costs times 1024000 */
    for (int i = 0; i < 1000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t dur = (uint64_t)(seed % 2000000u) * 1000u; /* up to 2 s */
        uint64_t billed = bill_billed_ms(dur, 0);
        uint64_t mb_ms = bill_mb_ms(mems[i % 5], billed);
        uint64_t cost = bill_cost_pusd(&p, mb_ms);
        char text[32];
        bill_format_pusd(cost, text);
        sum_cost_from_text += parse_money(text); /* what a reader of the records adds up */
        sum_cost += cost;
        sum_mb_ms += mb_ms;
        sum_billed += billed;
        exact_num += (u128)mb_ms * p.gb_s_pusd + (u128)p.request_pusd * 1024000u;
        /* each record is within half a picodollar of the exact cost */
        u128 scaled = (u128)cost * 1024000u;
        u128 exact = (u128)mb_ms * p.gb_s_pusd + (u128)p.request_pusd * 1024000u;
        assert_true((scaled > exact ? scaled - exact : exact - scaled) <= 512000u);
    }
    assert_int_equal(sum_cost_from_text, sum_cost);
    char total[32];
    bill_format_pusd(sum_cost, total);
    assert_int_equal(parse_money(total), sum_cost);
    /* the total's rounding error stays under half a picodollar per record */
    u128 scaled = (u128)sum_cost * 1024000u;
    u128 diff = scaled > exact_num ? scaled - exact_num : exact_num - scaled;
    assert_true(diff <= (u128)512000u * 1000u);
    char gb[48];
    bill_format_gb_s(sum_mb_ms, gb);
    assert_true(strlen(gb) > 0);
    assert_int_equal(sum_billed % 100, 0);
}

static void test_prices_parse_exactly_or_say_why(void **state)
{
    (void)state;
    uint64_t v = 0;
    char err[256];
    assert_int_equal(bill_parse_price("0.0000166667", &v, err, sizeof err), 0);
    assert_int_equal(v, 16666700);
    assert_int_equal(bill_parse_price("2", &v, err, sizeof err), 0);
    assert_int_equal(v, 2000000000000ull);
    assert_int_equal(bill_parse_price(".5", &v, err, sizeof err), 0);
    assert_int_equal(v, 500000000000ull);
    assert_int_equal(bill_parse_price("0.000000000001", &v, err, sizeof err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(bill_parse_price("1000", &v, err, sizeof err), 0);
    assert_int_equal(bill_parse_price("0", &v, err, sizeof err), 0);
    assert_int_equal(v, 0);

    assert_int_equal(bill_parse_price("0.0000000000001", &v, err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "more than 12 digits"));
    assert_int_equal(bill_parse_price("1e-5", &v, err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "'1e-5': expected a decimal number"));
    static const char *bad[] = {"", ".", "-1", "+1", "1,5", " 1", "1 ", "0x10", "abc", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(bill_parse_price(bad[i], &v, err, sizeof err), TINE_EINVAL);
        assert_non_null(strstr(err, "expected a decimal number"));
    }
    assert_int_equal(bill_parse_price("1000.000000000001", &v, err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "over the largest price"));
    assert_int_equal(bill_parse_price("99999999999999999999999", &v, err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "over the largest price"));
}

static void test_numbers_format_like_printf(void **state)
{
    (void)state;
    uint64_t v[64];
    size_t n = 0;
    v[n++] = 0;
    v[n++] = UINT64_MAX;
    for (uint64_t p = 1; p <= 10000000000000000000ull && n + 3 <= 64; p *= 10) {
        v[n++] = p - 1;
        v[n++] = p;
        v[n++] = p + 1;
        if (p == 10000000000000000000ull)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t width = 1; width <= 22; width += 7) {
            char want[32], got[32];
            snprintf(want, sizeof want, "%0*" PRIu64, (int)width, v[i]);
            size_t len = tine_fmt_u64(got, v[i], width);
            assert_string_equal(got, want);
            assert_int_equal(len, strlen(want));
        }
    }
}

static void test_days_are_utc(void **state)
{
    (void)state;
    char d[11];
    bill_day(0, d);
    assert_string_equal(d, "1970-01-01");
    bill_day(86400000ull - 1, d);
    assert_string_equal(d, "1970-01-01");
    bill_day(1795330753283ull, d);
    assert_string_equal(d, "2026-11-22");
    /* The records' `start` (added when read) is the same UTC instant. */
    char t[32];
    tine_fmt_rfc3339_ms(1795330753283ull, t);
    assert_string_equal(t, "2026-11-22T06:59:13.283Z");
    tine_fmt_rfc3339_ms(5, t);
    assert_string_equal(t, "1970-01-01T00:00:00.005Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds_up_to_100ms_units),
        cmocka_unit_test(test_a_timeout_bills_up_to_the_timeout),
        cmocka_unit_test(test_gb_seconds_are_exact),
        cmocka_unit_test(test_cost_follows_the_formula),
        cmocka_unit_test(test_totals_are_the_sums_of_the_records),
        cmocka_unit_test(test_prices_parse_exactly_or_say_why),
        cmocka_unit_test(test_days_are_utc),
        cmocka_unit_test(test_numbers_format_like_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
