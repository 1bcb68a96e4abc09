/* Tests of limits in registry/model/manifest.c: an app's tine.kv quotas
 * (kv_value_max, kv_keys_max, kv_bytes_max). Sizes take an integer of bytes
 * or binary units, every key is optional (0: the node's default), and every
 * bad value is refused with a one-line message naming file, line, column
 * and key path. */
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

/* A manifest with one function and the given limits line ("" for none). */
static int parse_with(const char *filename, const char *line, reg_manifest_t **m)
{
    char text[4096];
    if (strcmp(filename, "tine.json") == 0)
        snprintf(text, sizeof text, "{\"app\": \"a\", %s%s \"functions\": {\"f\": {\"handler\": \"f.lua#m\"}}}", line,
                 line[0] ? "," : "");
    else
        snprintf(text, sizeof text, "app: a\n%s%sfunctions: { f: { handler: f.lua#m } }\n", line, line[0] ? "\n" : "");
    *m = NULL;
    return reg_manifest_parse(filename, text, strlen(text), m, err, sizeof err);
}

static void test_absent_means_the_node_decides(void **state)
{
    (void)state;
    reg_manifest_t *m;
    assert_int_equal(parse_with("tine.yaml", "", &m), 0);
    assert_int_equal(m->kv_value_max, 0);
    assert_int_equal(m->kv_keys_max, 0);
    assert_int_equal(m->kv_bytes_max, 0);
    reg_manifest_free(m);
    assert_int_equal(parse_with("tine.yaml", "limits: { kv_keys_max: 5 }", &m), 0);
    assert_int_equal(m->kv_value_max, 0);
    assert_int_equal(m->kv_keys_max, 5);
    assert_int_equal(m->kv_bytes_max, 0);
    reg_manifest_free(m);
}

static void test_values_and_units(void **state)
{
    (void)state;
    static const struct {
        const char *file, *line;
        uint64_t value, keys, bytes;
    } cases[] = {
        {"tine.yaml", "limits: { kv_value_max: 1Mi, kv_keys_max: 10000, kv_bytes_max: 64Mi }", 1u << 20, 10000,
         64u << 20},
        {"tine.json", "\"limits\": {\"kv_value_max\": 1000, \"kv_keys_max\": 1, \"kv_bytes_max\": \"1Gi\"}", 1000, 1,
         1u << 30},
        {"tine.yaml", "limits: { kv_value_max: 512Ki, kv_bytes_max: 1Ti }", 512u << 10, 0, 1ull << 40},
        {"tine.yaml", "limits: { kv_value_max: 6MiB, kv_bytes_max: 2GB }", 6u << 20, 0, 2ull << 30},
        {"tine.yaml", "limits: { kv_value_max: 1KB, kv_keys_max: 1000000000, kv_bytes_max: 1TB }", 1024, 1000000000,
         1ull << 40},
        {"tine.yaml", "limits: {}", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reg_manifest_t *m;
        if (parse_with(cases[i].file, cases[i].line, &m) != 0)
            fail_msg("%s: %s", cases[i].line, err);
        assert_int_equal(m->kv_value_max, cases[i].value);
        assert_int_equal(m->kv_keys_max, cases[i].keys);
        assert_int_equal(m->kv_bytes_max, cases[i].bytes);
        reg_manifest_free(m);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *error;
    } cases[] = {
        {"limits: 64Mi", "tine.yaml:2:9: limits: expected a mapping of kv_value_max, kv_keys_max, kv_bytes_max, got "
                         "'64Mi'"},
        {"limits: { kv_quota: 1 }",
         "tine.yaml:2:11: limits.kv_quota: unknown key; expected one of kv_value_max, kv_keys_max, kv_bytes_max"},
        {"limits: { kv_value_max: 7Mi }", "tine.yaml:2:25: limits.kv_value_max: '7Mi' is out of range 1..6Mi"},
        {"limits: { kv_value_max: 0 }", "tine.yaml:2:25: limits.kv_value_max: '0' is out of range 1..6Mi"},
        {"limits: { kv_bytes_max: 2Ti }", "tine.yaml:2:25: limits.kv_bytes_max: '2Ti' is out of range 1..1Ti"},
        {"limits: { kv_bytes_max: 99999999999999999999Mi }",
         "tine.yaml:2:25: limits.kv_bytes_max: '99999999999999999999Mi' is out of range 1..1Ti"},
        {"limits: { kv_bytes_max: lots }",
         "tine.yaml:2:25: limits.kv_bytes_max: expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or "
         "1Gi, got 'lots'"},
        {"limits: { kv_bytes_max: 1.5Mi }",
         "tine.yaml:2:25: limits.kv_bytes_max: expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or "
         "1Gi, got '1.5Mi'"},
        {"limits: { kv_bytes_max: 64mi }",
         "tine.yaml:2:25: limits.kv_bytes_max: expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or "
         "1Gi, got '64mi'"},
        {"limits: { kv_bytes_max: 1.5 }",
         "tine.yaml:2:25: limits.kv_bytes_max: expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or "
         "1Gi, got 1.5"},
        {"limits: { kv_bytes_max: -1 }",
         "tine.yaml:2:25: limits.kv_bytes_max: expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or "
         "1Gi, got -1"},
        {"limits: { kv_keys_max: 0 }", "tine.yaml:2:24: limits.kv_keys_max: 0 is out of range 1..1000000000"},
        {"limits: { kv_keys_max: many }",
         "tine.yaml:2:24: limits.kv_keys_max: expected an integer 1..1000000000, got 'many'"},
        {"limits: { kv_keys_max: 1000000001 }",
         "tine.yaml:2:24: limits.kv_keys_max: 1000000001 is out of range 1..1000000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reg_manifest_t *m = NULL;
        int rc = parse_with("tine.yaml", cases[i].line, &m);
        if (rc != TINE_EINVAL || strcmp(err, cases[i].error) != 0)
            fail_msg("for %s\nexpected: %s\n     got: %s (rc %d)", cases[i].line, cases[i].error, err, rc);
        assert_null(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_means_the_node_decides),
        cmocka_unit_test(test_values_and_units),
        cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests_name("registry/model/manifest limits", tests, NULL, NULL);
}
