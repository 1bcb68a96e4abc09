/* Tests of invoker/result.c: the function's status and headers read from
 * RESULT metadata through the accessors of invoker.h (the iterator, the
 * count, the JSON object), and malformed metadata refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "invoker_internal.h"
#include "meta.h"
#include "tine_common.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void test_headers_read_in_order(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    size_t at = sbx_result_meta_begin(&b, 299);
    sbx_result_meta_header(&b, at, "Content-Type", 12, "application/json", 16);
    sbx_result_meta_header(&b, at, "x-a", 3, "1", 1);
    sbx_result_meta_header(&b, at, "X-A", 3, "2", 1);
    inv_result_t res = {0};
    assert_true(inv__result_parse(&res, b.data, b.len));
    assert_int_equal(res.function_status, 299);
    assert_int_equal(inv_result_header_count(&res), 3);
    const char *want[][2] = {{"content-type", "application/json"}, {"x-a", "1"}, {"x-a", "2"}};
    inv_header_iter_t it = inv_result_headers(&res);
    const char *n, *v;
    size_t nl, vl;
    for (int i = 0; i < 3; i++) {
        assert_true(inv_header_next(&it, &n, &nl, &v, &vl));
        assert_int_equal(nl, strlen(want[i][0]));
        assert_memory_equal(n, want[i][0], nl);
        assert_int_equal(vl, strlen(want[i][1]));
        assert_memory_equal(v, want[i][1], vl);
    }
    assert_false(inv_header_next(&it, &n, &nl, &v, &vl));
    assert_false(inv_header_next(&it, &n, &nl, &v, &vl)); /* and stays at its end */

    json_t *o = inv_result_headers_json(&res);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_string_equal(s, "{\"content-type\":\"application/json\",\"x-a\":\"2\"}"); /* a repeated name: its last */
    free(s);
    json_decref(o);

    /* Malformed: cut short, or trailing bytes. */
    inv_result_t bad = {0};
    assert_false(inv__result_parse(&bad, b.data, b.len - 1));
    assert_false(inv__result_parse(&bad, b.data, 7));
    tine_buf_append(&b, "x", 1);
    assert_false(inv__result_parse(&bad, b.data, b.len));
    tine_buf_dispose(&b);
}

static void test_no_headers(void **state)
{
    (void)state;
    /* A failed call's result (zeroed) and a RESULT without headers. */
    inv_result_t res = {0};
    const char *n, *v;
    size_t nl, vl;
    inv_header_iter_t it = inv_result_headers(&res);
    assert_false(inv_header_next(&it, &n, &nl, &v, &vl));
    assert_int_equal(inv_result_header_count(&res), 0);
    json_t *o = inv_result_headers_json(&res);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);

    tine_buf_t b;
    tine_buf_init(&b);
    sbx_result_meta_begin(&b, 204);
    assert_true(inv__result_parse(&res, b.data, b.len));
    assert_int_equal(res.function_status, 204);
    it = inv_result_headers(&res);
    assert_false(inv_header_next(&it, &n, &nl, &v, &vl));
    tine_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_read_in_order),
        cmocka_unit_test(test_no_headers),
    };
    return cmocka_run_group_tests_name("invoker/result", tests, NULL, NULL);
}
