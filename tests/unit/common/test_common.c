/* Tests of common/common.c: tine_buf_append_printable, what every text a
 * function writes goes through before tined's log, a record or an API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tine_common.h"

/* The printable form of n bytes of s. */
static void check_printable(const char *s, size_t n, const char *want)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "", 0);
    tine_buf_append_printable(&b, s, n);
    if (strcmp(b.data, want) != 0)
        fail_msg("for %zu bytes\nexpected: %s\n     got: %s", n, want, b.data);
    assert_true(tine_utf8_valid(b.data, b.len));
    for (size_t i = 0; i < b.len; i++) /* no control byte is left but TAB */
        assert_true((unsigned char)b.data[i] >= 0x20 || b.data[i] == '\t');
    tine_buf_dispose(&b);
}

#define CHECK(lit, want) check_printable(lit, sizeof(lit) - 1, want)

static void test_plain_text_is_kept(void **state)
{
    (void)state;
    CHECK("", "");
    CHECK("hello 42 nil", "hello 42 nil");
    CHECK("tab\tkept", "tab\tkept");
    CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK("back\\slash \"quoted\"", "back\\slash \"quoted\"");
    CHECK("\xc2\xa0nbsp", "\xc2\xa0nbsp"); /* U+00A0 is not a control character */
}

static void test_line_breaks_are_escaped(void **state)
{
    (void)state;
    CHECK("a\nb", "a\\nb");
    CHECK("a\r\nb\n", "a\\r\\nb\\n");
    CHECK("\n{\"level\":\"error\"}", "\\n{\"level\":\"error\"}");
}

static void test_control_characters_are_escaped(void **state)
{
    (void)state;
    CHECK("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    CHECK("nul\0here", "nul\\x00here");
    CHECK("bell\x07 del\x7f", "bell\\x07 del\\x7f");
    CHECK("c1 \xc2\x9b"
          "31m \xc2\x85",
          "c1 \\u009b31m \\u0085"); /* CSI and NEL as UTF-8 */
}

static void test_invalid_utf8_becomes_replacement(void **state)
{
    (void)state;
    CHECK("\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd");
    CHECK("cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd");         /* a sequence cut short */
    CHECK("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                 /* overlong '/' */
    CHECK("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    CHECK("\x9b"
          "31m",
          "\xef\xbf\xbd"
          "31m"); /* a raw 8-bit CSI */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_is_kept),
        cmocka_unit_test(test_line_breaks_are_escaped),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement),
    };
    return cmocka_run_group_tests_name("common/common printable", tests, NULL, NULL);
}
