/* Tests of registry/model/app_version.c: a loaded version (its route table
 * built from the manifest, reference counted) and the map of versions by app
 * name that the live table and the events module keep. */
#include <inttypes.h>
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

/* A loaded version of app `name` with one function and one route. */
static reg_app_version_t *version_of(const char *name, uint64_t n)
{
    char *yaml = xasprintf("app: %s\n"
                           "functions: { hello: { handler: f.lua#main } }\n"
                           "routes: [ { method: GET, path: /items/:id, function: hello } ]\n",
                           name);
    reg_manifest_t *m = NULL;
    int rc = reg_manifest_parse("tine.yaml", yaml, strlen(yaml), &m, err, sizeof err);
    free(yaml);
    if (rc != 0)
        fail_msg("%s", err);
    reg_app_version_t *v = NULL;
    assert_int_equal(
        reg_app_version_new(name, n, m, xasprintf("/state/bundles/%s/%" PRIu64, name, n), &v, err, sizeof err), 0);
    return v;
}

static void test_version_routes(void **state)
{
    (void)state;
    reg_app_version_t *v = version_of("shop", 3);
    assert_int_equal(v->refcnt, 1);
    assert_string_equal(v->app, "shop");
    assert_int_equal(v->version, 3);
    assert_string_equal(v->bundle_dir, "/state/bundles/shop/3");
    reg_route_param_t params[REG_ROUTE_MAX_PARAMS];
    size_t nparams = 0;
    int path_matched = 0;
    const reg_route_t *r = reg_route_table_match(v->routes, "GET", 3, "/items/42", 9, params, &nparams, &path_matched);
    assert_non_null(r);
    assert_ptr_equal(r, &v->manifest->routes[0]);
    assert_int_equal(nparams, 1);
    assert_memory_equal(params[0].value, "42", 2);
    reg_app_version_retain(v);
    assert_int_equal(v->refcnt, 2);
    reg_app_version_release(v);
    reg_app_version_release(v);
    reg_app_version_release(NULL);
}

static void test_map_empty(void **state)
{
    (void)state;
    reg_app_map_t m;
    reg_app_map_init(&m);
    assert_null(reg_app_map_get(&m, "a", 1));
    assert_null(reg_app_map_get(&m, "", 0));
    assert_null(reg_app_map_take(&m, "a", 1));
    assert_int_equal(m.len, 0);
    reg_app_map_dispose(&m);
}

/* Apps put in any order are found by name and walked in name order; names
 * that are prefixes of each other or a byte apart stay distinct. */
static void test_map_put_get_walk(void **state)
{
    (void)state;
    static const char *const names[] = {"shop", "a", "ab", "abc", "b", "shop-2", "shoq", "zz", "shop1", "aa"};
    /* The map's order: shorter names first, then bytewise. */
    static const char *const sorted[] = {"a", "b", "aa", "ab", "zz", "abc", "shop", "shoq", "shop1", "shop-2"};
    const size_t n = sizeof(names) / sizeof(names[0]);
    reg_app_map_t m;
    reg_app_map_init(&m);
    for (size_t i = 0; i < n; i++)
        assert_null(reg_app_map_put(&m, version_of(names[i], i + 1)));
    assert_int_equal(m.len, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(m.entries[i].v->app, sorted[i]);
        assert_int_equal(m.entries[i].app_len, strlen(sorted[i]));
        reg_app_version_t *v = reg_app_map_get(&m, names[i], strlen(names[i]));
        assert_non_null(v);
        assert_string_equal(v->app, names[i]);
        assert_int_equal(v->version, i + 1);
    }
    /* A name given by length, not ended by a NUL (the gateway's path). */
    reg_app_version_t *v = reg_app_map_get(&m, "shop/items/1", 4);
    assert_non_null(v);
    assert_string_equal(v->app, "shop");
    assert_null(reg_app_map_get(&m, "sho", 3));
    assert_null(reg_app_map_get(&m, "shop-", 5));
    assert_null(reg_app_map_get(&m, "abcd", 4));
    assert_null(reg_app_map_get(&m, "", 0));
    assert_null(reg_app_map_get(&m, "zzz", 3));
    assert_null(reg_app_map_get(&m, "0", 1));
    reg_app_map_dispose(&m);
    assert_int_equal(m.len, 0);
    assert_null(m.entries);
}

/* Put replaces an app's version and hands the old one back; take removes. */
static void test_map_replace_and_take(void **state)
{
    (void)state;
    reg_app_map_t m;
    reg_app_map_init(&m);
    reg_app_version_t *v1 = version_of("shop", 1);
    reg_app_version_t *v2 = version_of("shop", 2);
    assert_null(reg_app_map_put(&m, version_of("blog", 1)));
    assert_null(reg_app_map_put(&m, v1));
    assert_null(reg_app_map_put(&m, version_of("zoo", 1)));
    reg_app_version_retain(v1); /* the test's own reference */
    assert_ptr_equal(reg_app_map_put(&m, v2), v1);
    assert_int_equal(v1->refcnt, 2); /* the map's reference came back, not dropped */
    reg_app_version_release(v1);
    reg_app_version_release(v1);
    assert_int_equal(m.len, 3);
    assert_ptr_equal(reg_app_map_get(&m, "shop", 4), v2);

    assert_null(reg_app_map_take(&m, "shoe", 4));
    reg_app_version_t *taken = reg_app_map_take(&m, "shop", 4);
    assert_ptr_equal(taken, v2);
    reg_app_version_release(taken);
    assert_int_equal(m.len, 2);
    assert_string_equal(m.entries[0].v->app, "zoo");
    assert_string_equal(m.entries[1].v->app, "blog");
    assert_null(reg_app_map_get(&m, "shop", 4));
    taken = reg_app_map_take(&m, "blog", 4); /* the last one */
    assert_non_null(taken);
    reg_app_version_release(taken);
    taken = reg_app_map_take(&m, "zoo", 3); /* the first one */
    assert_non_null(taken);
    reg_app_version_release(taken);
    assert_int_equal(m.len, 0);
    assert_null(reg_app_map_put(&m, version_of("again", 1)));
    assert_int_equal(m.len, 1);
    reg_app_map_dispose(&m);
}

/* Many apps, put and taken in a shuffled order: the map stays sorted and
 * finds exactly what it holds. */
static void test_map_many(void **state)
{
    (void)state;
    enum { N = 300 };
    reg_app_map_t m;
    reg_app_map_init(&m);
    size_t order[N];
    for (size_t i = 0; i < N; i++)
        order[i] = (i * 7919) % N; /* 7919 is prime: a permutation */
    char name[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "app%zu", order[i]);
        assert_null(reg_app_map_put(&m, version_of(name, order[i])));
    }
    for (size_t i = 1; i < m.len; i++) {
        const char *a = m.entries[i - 1].v->app, *b = m.entries[i].v->app;
        assert_true(strlen(a) < strlen(b) || (strlen(a) == strlen(b) && strcmp(a, b) < 0));
    }
    for (size_t i = 0; i < N; i += 2) { /* take the even ones */
        snprintf(name, sizeof name, "app%zu", i);
        reg_app_version_t *v = reg_app_map_take(&m, name, strlen(name));
        assert_non_null(v);
        assert_int_equal(v->version, i);
        reg_app_version_release(v);
    }
    assert_int_equal(m.len, N / 2);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "app%zu", i);
        reg_app_version_t *v = reg_app_map_get(&m, name, strlen(name));
        if (i % 2)
            assert_true(v != NULL && v->version == i);
        else
            assert_null(v);
    }
    reg_app_map_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_routes),   cmocka_unit_test(test_map_empty),
        cmocka_unit_test(test_map_put_get_walk), cmocka_unit_test(test_map_replace_and_take),
        cmocka_unit_test(test_map_many),
    };
    return cmocka_run_group_tests_name("registry/model/app_version", tests, NULL, NULL);
}
