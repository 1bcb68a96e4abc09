/* Tests of common/trace.c: W3C traceparent parsing (good values, case,
 * padding, later versions; bad lengths, separators, digits, all-zero ids,
 * version ff), span ids of invocation ids and the header tine sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN "00f067aa0ba902b7"

static bool parse(const char *s, char trace[33], char span[17])
{
    return tine_traceparent_parse(s, strlen(s), trace, span);
}

static void test_parse_good(void **state)
{
    (void)state;
    char t[33] = "", sp[17] = "";
    assert_true(parse("00-" TRACE "-" SPAN "-01", t, sp));
    assert_string_equal(t, TRACE);
    assert_string_equal(sp, SPAN);
    assert_true(parse(" 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00 ", t, sp));
    assert_string_equal(t, TRACE); /* lower case */
    assert_string_equal(sp, SPAN);
    assert_true(parse("01-" TRACE "-" SPAN "-01-later-fields", t, sp));
}

static void test_parse_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00-" TRACE "-" SPAN,                                         /* no flags */
        "00-" TRACE "-" SPAN "-01-x",                                 /* 00 has no more fields */
        "ff-" TRACE "-" SPAN "-01",                                   /* version ff */
        "0g-" TRACE "-" SPAN "-01",                                   /* not hex */
        "00-00000000000000000000000000000000-" SPAN "-01",            /* zero trace */
        "00-" TRACE "-0000000000000000-01",                           /* zero span */
        "00_" TRACE "-" SPAN "-01",                                   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473z-" SPAN "-01",            /* digit */
        "00-" TRACE "-" SPAN "-0x",                                   /* flags */
        "01-" TRACE "-" SPAN "-01x",                                  /* later version, no dash */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[33] = "keep", sp[17] = "keep";
        assert_false(parse(bad[i], t, sp));
        assert_string_equal(t, "keep");
    }
}

static void test_format_and_span(void **state)
{
    (void)state;
    char a[17], b[17], out[56];
    tine_trace_span_of("0123456789abcdef0000000000000001", a);
    tine_trace_span_of("0123456789abcdef0000000000000002", b);
    assert_int_equal(strlen(a), 16);
    assert_true(tine_trace_hex_ok(a, 16));
    assert_string_not_equal(a, b);
    tine_traceparent_format(TRACE, "0123456789abcdef0000000000000001", out);
    char t[33], sp[17];
    assert_true(parse(out, t, sp));
    assert_string_equal(t, TRACE);
    assert_string_equal(sp, a);
    assert_true(tine_trace_hex_ok(TRACE, 32));
    assert_false(tine_trace_hex_ok("ABCD", 4));
    assert_false(tine_trace_hex_ok("0000", 4));
    assert_false(tine_trace_hex_ok("abcde", 4)); /* longer */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format_and_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
