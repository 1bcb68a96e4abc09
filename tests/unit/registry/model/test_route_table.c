/* Unit tests for registry/model/route_table.c: path validation, priorities,
 * backtracking, methods, conflicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_model.h"
#include "tine_common.h"

/* Route data are small tags so a test can tell which route matched. */
static char R1[] = "r1", R2[] = "r2", R3[] = "r3", R4[] = "r4", R5[] = "r5";

typedef struct {
    reg_route_param_t params[REG_ROUTE_MAX_PARAMS];
    size_t n;
    int path_matched;
} result_t;

static void *match(const reg_route_table_t *t, const char *method, const char *path, result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->path_matched = -1;
    return reg_route_table_match(t, method, strlen(method), path, strlen(path), r->params, &r->n,
                                 &r->path_matched);
}

/* Returns the value of param `name` as a fresh string, or NULL. */
static char *param(const result_t *r, const char *name)
{
    static char buf[256];
    for (size_t i = 0; i < r->n; i++)
        if (r->params[i].name_len == strlen(name) && memcmp(r->params[i].name, name, r->params[i].name_len) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)r->params[i].value_len, r->params[i].value);
            return buf;
        }
    return NULL;
}

static void add_ok(reg_route_table_t *t, const char *method, const char *path, void *data)
{
    char err[256] = "";
    int rc = reg_route_table_add(t, method, path, data, err, sizeof(err));
    if (rc != 0)
        fail_msg("add %s %s: %d %s", method, path, rc, err);
}

static void check_invalid(const char *path, const char *want)
{
    char err[256] = "";
    int rc = reg_route_path_validate(path, err, sizeof(err));
    if (rc != TINE_EINVAL)
        fail_msg("%s: rc %d, want TINE_EINVAL", path, rc);
    assert_string_equal(err, want);
    /* The table applies the same rules. */
    reg_route_table_t *t = reg_route_table_new();
    err[0] = '\0';
    assert_int_equal(reg_route_table_add(t, "GET", path, R1, err, sizeof(err)), TINE_EINVAL);
    assert_string_equal(err, want);
    reg_route_table_free(t);
}

static void test_validate_good(void **state)
{
    (void)state;
    const char *good[] = {"/",
                          "/items",
                          "/items/:id",
                          "/a-b.c_d~e/%2F%aa",
                          "/files/*path",
                          "/files/*",
                          "/*",
                          "/:_x/:y9/*z",
                          "/a/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8/:p9/:p10/:p11/:p12/:p13/:p14/:p15/*p16",
                          "/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8/:p9/:p10/:p11/:p12/:p13/:p14/:p15/:p16/*"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char err[256] = "";
        if (reg_route_path_validate(good[i], err, sizeof(err)) != 0)
            fail_msg("%s: %s", good[i], err);
    }
}

static void test_validate_bad(void **state)
{
    (void)state;
    check_invalid("", "path '': must start with /");
    check_invalid("items", "path 'items': must start with /");
    check_invalid("/a/:1d", "segment 2 ':1d': parameter names start with a letter or _");
    check_invalid("/a/:", "segment 2 ':': parameter name is empty");
    check_invalid("/a/:x-y", "segment 2 ':x-y': parameter names contain only letters, digits and _");
    check_invalid("/a//b", "segment 2 '': empty segment (a double or trailing /)");
    check_invalid("/items/", "segment 2 '': empty segment (a double or trailing /)");
    check_invalid("//", "segment 1 '': empty segment (a double or trailing /)");
    check_invalid("/files/*p/x", "segment 2 '*p': a *rest segment must be the last one");
    check_invalid("/*/x", "segment 1 '*': a *rest segment must be the last one");
    check_invalid("/f/*9", "segment 2 '*9': rest names start with a letter or _");
    check_invalid("/a b", "segment 1 'a b': character ' ' is not allowed (literals use A-Z a-z 0-9 . _ ~ - and %XX)");
    check_invalid("/a/\x01", "segment 2 '\x01': character '\\x01' is not allowed (literals use A-Z a-z 0-9 . _ ~ - "
                              "and %XX)");
    check_invalid("/a%2", "segment 1 'a%2': '%' must be followed by two hex digits");
    check_invalid("/a%zz", "segment 1 'a%zz': '%' must be followed by two hex digits");
    check_invalid("/x/../y", "segment 2 '..': '.' and '..' segments are not allowed");
    check_invalid("/./y", "segment 1 '.': '.' and '..' segments are not allowed");
    check_invalid("/a/:id/b/:id", "segment 4 ':id': duplicate parameter name 'id'");
    check_invalid("/a/:id/*id", "segment 3 '*id': duplicate parameter name 'id'");
    check_invalid("/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8/:p9/:p10/:p11/:p12/:p13/:p14/:p15/:p16/:p17",
                  "segment 17 ':p17': more than 16 parameters");
    check_invalid("/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8/:p9/:p10/:p11/:p12/:p13/:p14/:p15/:p16/*rest",
                  "segment 17 '*rest': more than 16 parameters");
    char err[64] = "";
    assert_int_equal(reg_route_path_validate(NULL, err, sizeof(err)), TINE_EINVAL);
    /* A tiny or absent error buffer is fine. */
    assert_int_equal(reg_route_path_validate("/a/:1", NULL, 0), TINE_EINVAL);
    char tiny[4];
    assert_int_equal(reg_route_path_validate("/a/:1", tiny, sizeof(tiny)), TINE_EINVAL);
    assert_string_equal(tiny, "seg");
}

static void test_literal_param_rest_priority(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    add_ok(t, "GET", "/items/*rest", R3);
    add_ok(t, "GET", "/items/:id", R2);
    add_ok(t, "GET", "/items/new", R1);
    add_ok(t, "GET", "/items", R4);
    add_ok(t, "GET", "/", R5);
    result_t r;
    assert_ptr_equal(match(t, "GET", "/items/new", &r), R1);
    assert_int_equal(r.n, 0);
    assert_ptr_equal(match(t, "GET", "/items/42", &r), R2);
    assert_int_equal(r.n, 1);
    assert_string_equal(param(&r, "id"), "42");
    assert_ptr_equal(match(t, "GET", "/items/42/parts/7", &r), R3);
    assert_string_equal(param(&r, "rest"), "42/parts/7");
    assert_ptr_equal(match(t, "GET", "/items/new/x", &r), R3);
    assert_string_equal(param(&r, "rest"), "new/x");
    assert_ptr_equal(match(t, "GET", "/items", &r), R4);
    assert_ptr_equal(match(t, "GET", "/", &r), R5);
    assert_int_equal(r.n, 0);
    /* Params are not decoded and point into the request path. */
    const char *path = "/items/a%20b";
    assert_ptr_equal(match(t, "GET", path, &r), R2);
    assert_ptr_equal(r.params[0].value, path + 7);
    assert_string_equal(param(&r, "id"), "a%20b");
    /* Literals are case-sensitive. */
    assert_ptr_equal(match(t, "GET", "/ITEMS", &r), NULL);
    assert_int_equal(r.path_matched, 0);
    reg_route_table_free(t);
}

static void test_backtracking(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    add_ok(t, "GET", "/a/:x/c", R1);
    add_ok(t, "GET", "/a/b/d", R2);
    add_ok(t, "GET", "/a/b/:y/z", R3);
    add_ok(t, "GET", "/a/*all", R4);
    result_t r;
    assert_ptr_equal(match(t, "GET", "/a/b/c", &r), R1);
    assert_string_equal(param(&r, "x"), "b");
    assert_int_equal(r.n, 1);
    assert_ptr_equal(match(t, "GET", "/a/b/d", &r), R2);
    assert_int_equal(r.n, 0);
    assert_ptr_equal(match(t, "GET", "/a/b/c/z", &r), R3);
    assert_string_equal(param(&r, "y"), "c");
    assert_int_equal(r.n, 1);
    /* Every more specific branch fails: falls back to the rest, and the
     * captures of the failed branches are not reported. */
    assert_ptr_equal(match(t, "GET", "/a/b/c/q", &r), R4);
    assert_int_equal(r.n, 1);
    assert_string_equal(param(&r, "all"), "b/c/q");
    assert_ptr_equal(match(t, "GET", "/a/q", &r), R4);
    assert_string_equal(param(&r, "all"), "q");
    reg_route_table_free(t);

    /* Same shape under a param, different names per route. */
    t = reg_route_table_new();
    add_ok(t, "GET", "/u/:user/posts", R1);
    add_ok(t, "GET", "/u/:name/likes", R2);
    assert_ptr_equal(match(t, "GET", "/u/ann/posts", &r), R1);
    assert_string_equal(param(&r, "user"), "ann");
    assert_ptr_equal(match(t, "GET", "/u/bob/likes", &r), R2);
    assert_string_equal(param(&r, "name"), "bob");
    assert_null(param(&r, "user"));
    reg_route_table_free(t);
}

static void test_trailing_slash_and_empty_segments(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    add_ok(t, "GET", "/items", R1);
    add_ok(t, "GET", "/items/:id", R2);
    add_ok(t, "GET", "/files/*p", R3);
    add_ok(t, "GET", "/bare/*", R4);
    result_t r;
    assert_null(match(t, "GET", "/items/", &r));
    assert_int_equal(r.path_matched, 0);
    assert_null(match(t, "GET", "/items//", &r));
    assert_null(match(t, "GET", "/items/1/", &r));
    assert_null(match(t, "GET", "", &r));
    assert_null(match(t, "GET", "items", &r));
    assert_null(match(t, "GET", "/", &r));
    assert_ptr_equal(match(t, "GET", "/files/a/b", &r), R3);
    assert_string_equal(param(&r, "p"), "a/b");
    assert_ptr_equal(match(t, "GET", "/files/a/", &r), R3);
    assert_string_equal(param(&r, "p"), "a/");
    assert_null(match(t, "GET", "/files", &r));
    assert_null(match(t, "GET", "/files/", &r));
    assert_null(match(t, "GET", "/files//x", &r));
    /* A bare "*" matches like a named rest but reports nothing. */
    assert_ptr_equal(match(t, "GET", "/bare/x/y", &r), R4);
    assert_int_equal(r.n, 0);
    assert_null(match(t, "GET", "/bare", &r));
    reg_route_table_free(t);
}

static void test_methods_and_405(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    add_ok(t, "GET", "/x", R1);
    add_ok(t, "ANY", "/x", R2);
    add_ok(t, "POST", "/x", R3);
    add_ok(t, "GET", "/only-get", R4);
    add_ok(t, "HEAD", "/h", R5);
    add_ok(t, "GET", "/h", R1);
    result_t r;
    assert_ptr_equal(match(t, "GET", "/x", &r), R1);
    assert_int_equal(r.path_matched, 1);
    assert_ptr_equal(match(t, "POST", "/x", &r), R3);
    assert_ptr_equal(match(t, "DELETE", "/x", &r), R2);
    /* HEAD is served by GET before ANY when there is no HEAD route. */
    assert_ptr_equal(match(t, "HEAD", "/x", &r), R1);
    assert_ptr_equal(match(t, "HEAD", "/only-get", &r), R4);
    assert_ptr_equal(match(t, "HEAD", "/h", &r), R5);
    /* Method names are compared exactly; "GETX" is not GET. */
    assert_null(match(t, "GETX", "/only-get", &r));
    assert_int_equal(r.path_matched, 1);
    assert_null(match(t, "POST", "/only-get", &r));
    assert_int_equal(r.path_matched, 1);
    assert_int_equal(r.n, 0);
    assert_null(match(t, "GET", "/nowhere", &r));
    assert_int_equal(r.path_matched, 0);
    /* The method is matched by length too, not as a prefix. */
    assert_ptr_equal(reg_route_table_match(t, "GETTING", 3, "/only-get", 9, NULL, NULL, NULL), R4);
    reg_route_table_free(t);

    /* A branch with the path but not the method does not hide another
     * branch that has the method. */
    t = reg_route_table_new();
    add_ok(t, "GET", "/a/b", R1);
    add_ok(t, "POST", "/a/:x", R2);
    add_ok(t, "PUT", "/r/*rest", R3);
    assert_ptr_equal(match(t, "POST", "/a/b", &r), R2);
    assert_string_equal(param(&r, "x"), "b");
    assert_ptr_equal(match(t, "GET", "/a/b", &r), R1);
    assert_null(match(t, "DELETE", "/a/b", &r));
    assert_int_equal(r.path_matched, 1);
    assert_null(match(t, "GET", "/r/x/y", &r));
    assert_int_equal(r.path_matched, 1);
    assert_null(match(t, "GET", "/r", &r));
    assert_int_equal(r.path_matched, 0);
    reg_route_table_free(t);
}

static void test_many_params(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    const char *pat = "/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8/:p9/:p10/:p11/:p12/:p13/:p14/:p15/*p16";
    add_ok(t, "GET", pat, R1);
    add_ok(t, "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/*", R2);
    result_t r;
    /* 16 segments: the second route's bare rest would be empty. */
    assert_ptr_equal(match(t, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", &r), R1);
    assert_int_equal(r.n, 16);
    char name[8], want[8];
    for (int i = 1; i <= 16; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(param(&r, name), want);
    }
    /* The order of params is the order in the pattern. */
    assert_int_equal(r.params[0].name_len, 2);
    assert_memory_equal(r.params[0].name, "p1", 2);
    assert_int_equal(r.params[15].name_len, 3);
    assert_memory_equal(r.params[15].name, "p16", 3);
    /* 17 segments: at segment 16 a :param beats the *rest. */
    assert_ptr_equal(match(t, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18", &r), R2);
    assert_int_equal(r.n, 16);
    assert_string_equal(param(&r, "a"), "1");
    assert_string_equal(param(&r, "p"), "16");
    assert_null(param(&r, "p16"));
    reg_route_table_free(t);
}

static void test_conflicts(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    char err[256] = "";
    add_ok(t, "GET", "/items/:id", R1);
    assert_int_equal(reg_route_table_add(t, "GET", "/items/:name", R2, err, sizeof(err)), TINE_ECONFLICT);
    assert_string_equal(err, "route GET /items/:name conflicts with GET /items/:id (same method and path shape)");
    add_ok(t, "POST", "/items/:name", R2);
    add_ok(t, "ANY", "/items/:x", R3);
    assert_int_equal(reg_route_table_add(t, "ANY", "/items/:y", R4, err, sizeof(err)), TINE_ECONFLICT);
    assert_string_equal(err, "route ANY /items/:y conflicts with ANY /items/:x (same method and path shape)");
    add_ok(t, "GET", "/files/*p", R1);
    assert_int_equal(reg_route_table_add(t, "GET", "/files/*", R2, err, sizeof(err)), TINE_ECONFLICT);
    assert_string_equal(err, "route GET /files/* conflicts with GET /files/*p (same method and path shape)");
    add_ok(t, "GET", "/", R1);
    assert_int_equal(reg_route_table_add(t, "GET", "/", R2, err, sizeof(err)), TINE_ECONFLICT);
    assert_string_equal(err, "route GET / conflicts with GET / (same method and path shape)");
    /* Different shapes do not conflict. */
    add_ok(t, "GET", "/items/new", R4);
    add_ok(t, "GET", "/items/*rest", R5);
    /* The failed adds changed nothing. */
    result_t r;
    assert_ptr_equal(match(t, "GET", "/items/7", &r), R1);
    assert_string_equal(param(&r, "id"), "7");
    assert_ptr_equal(match(t, "PATCH", "/items/7", &r), R3);
    assert_string_equal(param(&r, "x"), "7");
    assert_ptr_equal(match(t, "GET", "/files/a", &r), R1);
    assert_ptr_equal(match(t, "GET", "/", &r), R1);
    assert_int_equal(reg_route_table_add(t, "", "/z", R1, err, sizeof(err)), TINE_EINVAL);
    reg_route_table_free(t);
    reg_route_table_free(NULL);
}

/* Many literal siblings exercise the sorted child array. */
static void test_many_siblings(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    static char tags[500];
    char path[64];
    for (int i = 499; i >= 0; i--) {
        snprintf(path, sizeof(path), "/s%d/:id", i * 7919 % 500);
        add_ok(t, "GET", path, &tags[i * 7919 % 500]);
    }
    result_t r;
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "/s%d/x%d", i, i);
        assert_ptr_equal(match(t, "GET", path, &r), &tags[i]);
        snprintf(path, sizeof(path), "x%d", i);
        assert_string_equal(param(&r, "id"), path);
    }
    assert_null(match(t, "GET", "/s500/x", &r));
    reg_route_table_free(t);
}

/* A million matches: under ASan/valgrind this shows match neither leaks nor
 * touches freed memory; malloc is not interposed, so the absence of
 * allocation is by construction (captures live on the stack). */
static void test_million_matches(void **state)
{
    (void)state;
    reg_route_table_t *t = reg_route_table_new();
    add_ok(t, "GET", "/api/v1/users/:id", R1);
    add_ok(t, "GET", "/api/v1/users/:id/posts/:post", R2);
    add_ok(t, "ANY", "/api/*rest", R3);
    add_ok(t, "POST", "/api/v1/users", R4);
    const char *paths[] = {"/api/v1/users/42", "/api/v1/users/42/posts/7", "/api/other/thing", "/api/v1/users",
                           "/nope"};
    void *want[] = {R1, R2, R3, R3, NULL};
    size_t hits = 0;
    for (size_t i = 0; i < 1000000; i++) {
        size_t k = i % 5;
        reg_route_param_t params[REG_ROUTE_MAX_PARAMS];
        size_t n = 0;
        int pm = 0;
        void *d = reg_route_table_match(t, "GET", 3, paths[k], strlen(paths[k]), params, &n, &pm);
        if (d != want[k])
            fail_msg("iteration %zu: %s", i, paths[k]);
        hits += d != NULL;
    }
    assert_int_equal(hits, 800000);
    reg_route_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_good),
        cmocka_unit_test(test_validate_bad),
        cmocka_unit_test(test_literal_param_rest_priority),
        cmocka_unit_test(test_backtracking),
        cmocka_unit_test(test_trailing_slash_and_empty_segments),
        cmocka_unit_test(test_methods_and_405),
        cmocka_unit_test(test_many_params),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_many_siblings),
        cmocka_unit_test(test_million_matches),
    };
    return cmocka_run_group_tests_name("registry/model/route_table", tests, NULL, NULL);
}
