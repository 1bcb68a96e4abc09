/* Tests of events/filter.c: log filter patterns (terms, "phrases",
 * -exclusions, ?any-of, key=value on JSON lines / given fields / logfmt
 * text) and their error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "events_internal.h"
#include "tine_common.h"

static bool matches(const char *pattern, const char *line)
{
    ev_filter_t *f = NULL;
    char err[256];
    if (ev__filter_compile(pattern, &f, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", pattern, err);
    bool m = ev__filter_match(f, line, strlen(line), NULL);
    ev__filter_free(f);
    return m;
}

static void test_terms_phrases_exclusions(void **state)
{
    (void)state;
    assert_true(matches(NULL, "anything"));
    assert_true(matches("", ""));
    assert_true(matches("   ", "x"));
    assert_true(matches("ERROR", "2026 ERROR disk full"));
    assert_false(matches("ERROR", "2026 error disk full")); /* case-sensitive */
    assert_true(matches("ERROR disk", "disk ERROR"));       /* all terms, any order */
    assert_false(matches("ERROR disk", "ERROR net"));
    assert_true(matches("\"disk full\"", "ERROR disk full now"));
    assert_false(matches("\"disk full\"", "full disk"));
    assert_true(matches("\"say \\\"hi\\\"\"", "they say \"hi\" loudly"));
    assert_true(matches("ERROR -debug", "ERROR in prod"));
    assert_false(matches("ERROR -debug", "ERROR in debug mode"));
    assert_false(matches("-\"health check\"", "GET /health check ok"));
    assert_true(matches("?ERROR ?WARN", "WARN low disk"));
    assert_true(matches("?ERROR ?WARN", "ERROR"));
    assert_false(matches("?ERROR ?WARN", "INFO"));
    assert_true(matches("disk ?ERROR ?WARN", "disk WARN"));
    assert_false(matches("disk ?ERROR ?WARN", "net WARN"));
    assert_true(matches("a", "a"));
    assert_false(matches("ab", "a"));
}

static void test_key_value(void **state)
{
    (void)state;
    assert_true(matches("level=error", "{\"level\":\"error\",\"msg\":\"x\"}"));
    assert_false(matches("level=error", "{\"level\":\"info\",\"msg\":\"level=error\"}"));
    assert_true(matches("level!=info", "{\"level\":\"error\"}"));
    assert_false(matches("level!=info", "{\"level\":\"info\"}"));
    assert_true(matches("level!=info", "{\"msg\":\"no level\"}"));
    assert_true(matches("http.status=5*", "  {\"http\":{\"status\":503}}"));
    assert_false(matches("http.status=5*", "{\"http\":{\"status\":404}}"));
    assert_true(matches("$.user.name=\"ada l\"", "{\"user\":{\"name\":\"ada l\"}}"));
    assert_true(matches("ok=true n=2.5", "{\"ok\":true,\"n\":2.5}"));
    assert_true(matches("level=error timeout", "{\"level\":\"error\",\"msg\":\"timeout\"}"));
    /* Not JSON: the literal text key=value (logfmt lines). */
    assert_true(matches("level=error", "ts=1 level=error msg=boom"));
    assert_false(matches("level=error", "ts=1 level=info msg=boom"));
    assert_true(matches("level!=error", "ts=1 level=info"));
    /* The source's fields when the line is not JSON. */
    ev_filter_t *f = NULL;
    char err[256];
    assert_int_equal(ev__filter_compile("level=error disk", &f, err, sizeof err), 0);
    json_t *fields = json_pack("{s:s}", "level", "error");
    assert_true(ev__filter_match(f, "disk gone", 9, fields));
    json_object_set_new(fields, "level", json_string("info"));
    assert_false(ev__filter_match(f, "disk gone", 9, fields));
    json_decref(fields);
    ev__filter_free(f);
}

static void expect_error(const char *pattern, const char *message)
{
    ev_filter_t *f = (ev_filter_t *)0x1;
    char err[256] = "";
    int rc = ev__filter_compile(pattern, &f, err, sizeof err);
    if (rc != TINE_EINVAL || strcmp(err, message) != 0)
        fail_msg("'%s': got %d '%s', want '%s'", pattern, rc, err, message);
}

static void test_errors_name_the_column(void **state)
{
    (void)state;
    expect_error("ERROR \"disk", "unterminated quote starting at column 7");
    expect_error("a -", "'-' at column 3 must be followed by a term or a \"phrase\"");
    expect_error("? b", "'?' at column 1 must be followed by a term or a \"phrase\"");
    expect_error("\"\"", "empty phrase at column 1");
    expect_error("\"a\"b", "column 4: expected a space after the closing quote");
    expect_error("=error", "column 1: key=value needs a key before '='");
    expect_error("x !=error", "column 3: key=value needs a key before '!='");
    expect_error("le/vel=error", "column 3: '/' is not allowed in a key");
    expect_error("-level=error", "column 1: key=value cannot start with '-' or '?' (use key!=value)");
    expect_error("level=\"x", "unterminated quote starting at column 7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_phrases_exclusions),
        cmocka_unit_test(test_key_value),
        cmocka_unit_test(test_errors_name_the_column),
    };
    return cmocka_run_group_tests_name("events/filter", tests, NULL, NULL);
}
