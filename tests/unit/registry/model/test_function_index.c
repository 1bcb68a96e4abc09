/* Tests of registry/model/function_index.c: the index of a manifest's
 * function names that reg_manifest_parse builds once, and every lookup by
 * name goes through (hits, misses, names a byte apart, lengths that do not
 * end at a NUL, an empty manifest, the most functions a manifest may have). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model_internal.h"
#include "tine_common.h"

static char err[1024];

static reg_manifest_t *parse_ok(const char *yaml)
{
    reg_manifest_t *m = NULL;
    int rc = reg_manifest_parse("tine.yaml", yaml, strlen(yaml), &m, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got %d: %s", rc, err);
    return m;
}

/* Whether `name` (NUL-terminated) is found, at *index. */
static bool find(const reg_manifest_t *m, const char *name, size_t *index)
{
    return reg_manifest_function_index(m, name, strlen(name), index);
}

/* A manifest of `n` functions named by `fmt` (one %zu) and a route to each. */
static reg_manifest_t *parse_functions(size_t n, const char *fmt)
{
    tine_buf_t y;
    tine_buf_init(&y);
    tine_buf_appendf(&y, "app: many\nfunctions:\n");
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, fmt, i);
        tine_buf_appendf(&y, "  %s: { handler: f.lua#main }\n", name);
    }
    tine_buf_appendf(&y, "routes:\n");
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, fmt, i);
        tine_buf_appendf(&y, "  - { method: GET, path: /r%zu, function: %s }\n", i, name);
    }
    reg_manifest_t *m = parse_ok(y.data);
    tine_buf_dispose(&y);
    return m;
}

static void test_hits_and_misses(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: shop\n"
                                 "functions:\n"
                                 "  list: { handler: f.lua#list }\n"
                                 "  get: { handler: f.lua#get }\n"
                                 "  get_item: { handler: f.lua#get_item }\n"
                                 "  alert: { handler: f.lua#alert }\n");
    size_t idx = 99;
    const char *names[] = {"list", "get", "get_item", "alert"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(find(m, names[i], &idx));
        assert_int_equal(idx, i);
        assert_string_equal(m->functions[idx].name, names[i]);
    }
    idx = 99;
    assert_false(find(m, "nope", &idx));
    assert_false(find(m, "", &idx));
    assert_false(find(m, "ge", &idx));        /* a prefix of two names */
    assert_false(find(m, "get_", &idx));      /* between two names */
    assert_false(find(m, "get_items", &idx)); /* longer */
    assert_false(find(m, "LIST", &idx));      /* case matters */
    assert_int_equal(idx, 99);                /* untouched on a miss */
    /* A length that does not end at a NUL: the first bytes of a longer buffer. */
    assert_true(reg_manifest_function_index(m, "get_item_and_more", 3, &idx));
    assert_int_equal(idx, 1);
    assert_true(reg_manifest_function_index(m, "get_item_and_more", 8, &idx));
    assert_int_equal(idx, 2);
    /* A NUL inside the length is part of the name, which no function has. */
    assert_false(reg_manifest_function_index(m, "get\0item", 8, &idx));
    assert_false(reg_manifest_function_index(m, "get\0", 4, &idx));
    assert_false(reg_manifest_function_index(m, NULL, 0, &idx));
    assert_false(reg_manifest_function_index(NULL, "get", 3, &idx));
    reg_manifest_free(m);
}

/* Names one byte apart, in every position, land on distinct entries. */
static void test_names_a_byte_apart(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "functions:\n"
                                 "  fn_a: { handler: f.lua#main }\n"
                                 "  fn_b: { handler: f.lua#main }\n"
                                 "  fn_c: { handler: f.lua#main }\n"
                                 "  gn_a: { handler: f.lua#main }\n"
                                 "  fo_a: { handler: f.lua#main }\n"
                                 "  fn-a: { handler: f.lua#main }\n"
                                 "  fn_a0: { handler: f.lua#main }\n"
                                 "  fn_: { handler: f.lua#main }\n");
    for (size_t i = 0; i < m->functions_len; i++) {
        size_t idx = 99;
        assert_true(find(m, m->functions[i].name, &idx));
        assert_int_equal(idx, i);
    }
    size_t idx;
    assert_false(find(m, "fn_d", &idx));
    assert_false(find(m, "fn_A", &idx));
    assert_false(find(m, "hn_a", &idx));
    assert_false(find(m, "fn.a", &idx));
    assert_false(find(m, "fn_a1", &idx));
    assert_false(find(m, "fn", &idx));
    reg_manifest_free(m);
}

/* A manifest without functions (reg_manifest_parse refuses one, but the
 * index must still answer): never found, with or without its table. */
static void test_empty_manifest(void **state)
{
    (void)state;
    reg_manifest_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    size_t idx = 7;
    assert_false(find(m, "anything", &idx)); /* no index built */
    assert_int_equal(reg__manifest_index_functions(m), 0);
    assert_non_null(m->_fn_slots);
    assert_false(find(m, "anything", &idx));
    assert_false(find(m, "", &idx));
    assert_int_equal(idx, 7);
    reg_manifest_free(m);
}

/* The most functions a manifest may declare (1000): every one found at its
 * place, names that differ from them in their last digits not. */
static void test_many_functions(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_functions(1000, "f%zu");
    assert_int_equal(m->functions_len, 1000);
    assert_true(m->_fn_mask + 1 >= 2000); /* at least twice the slots: probes stay short */
    for (size_t i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu", i);
        size_t idx = SIZE_MAX;
        assert_true(find(m, name, &idx));
        assert_int_equal(idx, i);
        /* Routes were resolved through the same index. */
        assert_int_equal(m->routes[i].function_index, i);
        snprintf(name, sizeof name, "f%zu", i + 1000);
        assert_false(find(m, name, &idx));
        snprintf(name, sizeof name, "g%zu", i);
        assert_false(find(m, name, &idx));
    }
    reg_manifest_free(m);
}

/* Every table size on the way (1, 2, 3 ... 70 functions) finds all its names. */
static void test_every_small_size(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 70; n++) {
        reg_manifest_t *m = parse_functions(n, "fn%zu");
        for (size_t i = 0; i < n; i++) {
            size_t idx = SIZE_MAX;
            assert_true(find(m, m->functions[i].name, &idx));
            assert_int_equal(idx, i);
        }
        size_t idx;
        assert_false(find(m, "fn", &idx));
        reg_manifest_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_misses),  cmocka_unit_test(test_names_a_byte_apart),
        cmocka_unit_test(test_empty_manifest),   cmocka_unit_test(test_many_functions),
        cmocka_unit_test(test_every_small_size),
    };
    return cmocka_run_group_tests_name("registry/model/function_index", tests, NULL, NULL);
}
