/* Tests of allow_outbound in registry/model/manifest.c: the hosts tine.http may
 * reach. Entries are normalized (lower case, IPv6 brackets dropped), the key's
 * absence is told apart from an empty list, and every bad entry is refused
 * with a one-line message naming file, line, column and index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app_model.h"
#include "tine_common.h"

static char err[1024];

/* A manifest with one function and the given allow_outbound line ("" for none). */
static int parse_with(const char *filename, const char *line, reg_manifest_t **m)
{
    char text[16384];
    if (strcmp(filename, "tine.json") == 0)
        snprintf(text, sizeof text, "{\"app\": \"a\", %s%s \"functions\": {\"f\": {\"handler\": \"f.lua#m\"}}}", line,
                 line[0] ? "," : "");
    else
        snprintf(text, sizeof text, "app: a\n%s%sfunctions: { f: { handler: f.lua#m } }\n", line, line[0] ? "\n" : "");
    *m = NULL;
    return reg_manifest_parse(filename, text, strlen(text), m, err, sizeof err);
}

static void test_absent_means_unset(void **state)
{
    (void)state;
    reg_manifest_t *m;
    assert_int_equal(parse_with("tine.yaml", "", &m), 0);
    assert_false(m->allow_outbound_set);
    assert_int_equal(m->allow_outbound_len, 0);
    assert_null(m->allow_outbound);
    reg_manifest_free(m);
}

static void test_empty_list_allows_nothing(void **state)
{
    (void)state;
    reg_manifest_t *m;
    assert_int_equal(parse_with("tine.yaml", "allow_outbound: []", &m), 0);
    assert_true(m->allow_outbound_set);
    assert_int_equal(m->allow_outbound_len, 0);
    reg_manifest_free(m);
}

static void test_entries_are_normalized(void **state)
{
    (void)state;
    static const char *const want[] = {"api.example.com", "*.example.org", "10.0.0.7", "::1", "*", "fe80::1"};
    const char *files[] = {"tine.yaml", "tine.json"};
    const char *lines[] = {
        "allow_outbound: [ API.Example.com, \"*.example.org\", 10.0.0.7, \"[::1]\", \"*\", \"FE80::1\" ]",
        "\"allow_outbound\": [\"API.Example.com\", \"*.example.org\", \"10.0.0.7\", \"[::1]\", \"*\", \"FE80::1\"]",
    };
    for (size_t f = 0; f < 2; f++) {
        reg_manifest_t *m;
        int rc = parse_with(files[f], lines[f], &m);
        if (rc != 0)
            fail_msg("%s: %s", files[f], err);
        assert_true(m->allow_outbound_set);
        assert_int_equal(m->allow_outbound_len, 6);
        for (size_t i = 0; i < 6; i++)
            assert_string_equal(m->allow_outbound[i], want[i]);
        reg_manifest_free(m);
    }
}

static void test_bad_entries(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *error;
    } cases[] = {
        {"allow_outbound: api.example.com",
         "tine.yaml:2:17: allow_outbound: expected a list of hosts such as [api.example.com, \"*.example.org\"], got "
         "'api.example.com'"},
        {"allow_outbound:",
         "tine.yaml:2:16: allow_outbound: expected a list of hosts such as [api.example.com, \"*.example.org\"], got "
         "nothing (null)"},
        {"allow_outbound: [ \"http://x.com/\" ]",
         "tine.yaml:2:19: allow_outbound[0]: 'http://x.com/' is not a host: give a host name or an IP address without "
         "a port or scheme"},
        {"allow_outbound: [ \"x.com:443\" ]",
         "tine.yaml:2:19: allow_outbound[0]: 'x.com:443' is not a host: give a host name or an IP address without a "
         "port or scheme"},
        {"allow_outbound: [ x.com/api ]",
         "tine.yaml:2:19: allow_outbound[0]: 'x.com/api' is not a host name: only letters, digits, '-' and '.' are "
         "allowed (no scheme, port or path)"},
        {"allow_outbound: [ ok.com, \"a*.com\" ]",
         "tine.yaml:2:27: allow_outbound[1]: 'a*.com' may use '*' only as a whole first label, as in \"*.example.com\""},
        {"allow_outbound: [ \"*.\" ]",
         "tine.yaml:2:19: allow_outbound[0]: '*.' may use '*' only as a whole first label, as in \"*.example.com\""},
        {"allow_outbound: [ -bad.com ]",
         "tine.yaml:2:19: allow_outbound[0]: '-bad.com' is not a valid hostname: a label starts or ends with '-'"},
        {"allow_outbound: [ 443 ]",
         "tine.yaml:2:19: allow_outbound[0]: expected a host such as api.example.com, \"*.example.com\" or \"*\", got "
         "the number 443 (quote it to make it a string)"},
        {"allow_outbound: [ \"\" ]", "tine.yaml:2:19: allow_outbound[0]: '' must be 1..253 characters long"},
        {"allow_outbound: [ \"a..b\" ]", "tine.yaml:2:19: allow_outbound[0]: 'a..b' is not a valid hostname: empty label"},
        {"allow_outbound: [ \"::g\" ]",
         "tine.yaml:2:19: allow_outbound[0]: '::g' is not a host: give a host name or an IP address without a port or "
         "scheme"},
        {"allow_outbound: { a: b }",
         "tine.yaml:2:17: allow_outbound: expected a list of hosts such as [api.example.com, \"*.example.org\"], got a "
         "mapping"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reg_manifest_t *m = NULL;
        int rc = parse_with("tine.yaml", cases[i].line, &m);
        if (rc != TINE_EINVAL || strcmp(err, cases[i].error) != 0)
            fail_msg("for %s\nexpected: %s\n     got: %s (rc %d)", cases[i].line, cases[i].error, err, rc);
        assert_null(m);
    }
}

static void test_too_many_entries(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_appendf(&b, "allow_outbound: [");
    for (int i = 0; i < 257; i++)
        tine_buf_appendf(&b, "%sh%d.example.com", i ? ", " : "", i);
    tine_buf_appendf(&b, "]");
    reg_manifest_t *m = NULL;
    assert_int_equal(parse_with("tine.yaml", b.data, &m), TINE_EINVAL);
    assert_string_equal(err, "tine.yaml:2:17: allow_outbound: 257 hosts; at most 256 are allowed");
    tine_buf_dispose(&b);
}

/* A bad allow_outbound after an app env: the env read first is freed with
 * the refused manifest (found by fuzz_manifest; the ASan build checks it). */
static void test_bad_entry_after_env(void **state)
{
    (void)state;
    reg_manifest_t *m = NULL;
    assert_int_equal(parse_with("tine.yaml", "env: { A: 1, B: two }\nallow_outbound: i[ x.com ]", &m), TINE_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err, "allow_outbound"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_means_unset),
        cmocka_unit_test(test_empty_list_allows_nothing),
        cmocka_unit_test(test_entries_are_normalized),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_too_many_entries),
        cmocka_unit_test(test_bad_entry_after_env),
    };
    return cmocka_run_group_tests_name("registry/model/manifest allow_outbound", tests, NULL, NULL);
}
