/* yaml_json.c: YAML as JSON for tine test's cases: the core schema's
 * scalars, quoted strings stay strings, mappings carry their line, errors
 * name file:line:col. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text, char *err, size_t errlen)
{
    return cli_yaml_load("t.yaml", text, strlen(text), err, errlen);
}

static void test_values(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *j = load("- name: a\n  n: 12\n  r: 1.5\n  s: \"12\"\n  t: true\n  z: ~\n  l: [1, two]\n", err, sizeof err);
    assert_non_null(j);
    json_t *c = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "a");
    assert_int_equal(json_integer_value(json_object_get(c, "n")), 12);
    assert_true(json_is_real(json_object_get(c, "r")));
    assert_string_equal(json_string_value(json_object_get(c, "s")), "12");
    assert_true(json_is_true(json_object_get(c, "t")));
    assert_true(json_is_null(json_object_get(c, "z")));
    assert_int_equal(json_array_size(json_object_get(c, "l")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "l"), 1)), "two");
    /* The mapping's line, under a key no YAML text can write by accident. */
    assert_int_equal(json_integer_value(json_object_get(c, CLI_YAML_LINE_KEY)), 1);
    json_decref(j);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(load("- a: [1, 2\n", err, sizeof err));
    assert_non_null(strstr(err, "t.yaml:2:1: "));
    assert_null(load("a: &x 1\nb: *x\n", err, sizeof err));
    assert_string_equal(err, "t.yaml:2:4: aliases (*name) are not supported here");
    assert_null(load("? [1]\n: x\n", err, sizeof err));
    assert_non_null(strstr(err, "a mapping key must be a scalar"));
    json_t *empty = load("", err, sizeof err);
    assert_true(json_is_null(empty));
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
