/* Unit tests for sandbox/meta.c, the binary metadata of INVOKE and RESULT
 * frames: the one RESULT writer (names lower-cased, the count kept by the
 * writer, out of memory leaves the buffer as it was) and the writer of a
 * request's headers (repeated names joined into one member). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/alloc_fail.h"
#include "meta.h"
#include "tine_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The JSON text of an encoded value (compact, keys in their order). */
static char *decoded(const tine_buf_t *b, size_t from)
{
    char err[128];
    json_t *v = sbx_meta_to_json(b->data + from, b->len - from, err, sizeof err);
    if (v == NULL)
        fail_msg("%s", err);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return s;
}

static void test_result_writer_counts_and_lowers(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "xyz", 3); /* the metadata need not start the buffer */
    size_t at = sbx_result_meta_begin(&b, 201);
    assert_int_equal(at, 3);
    sbx_result_meta_header(&b, at, "Content-Type", 12, "text/Plain", 10);
    assert_int_equal(sbx_result_meta_try_header(&b, at, "X-ID", 4, "", 0), 0);
    sbx_result_meta_header(&b, at, "set-cookie", 10, "a=1", 3);

    sbx_result_meta_t m;
    assert_true(sbx_result_meta_parse(b.data + at, b.len - at, &m));
    assert_int_equal(m.status, 201);
    assert_int_equal(m.nheaders, 3);
    const char *want[][2] = {{"content-type", "text/Plain"}, {"x-id", ""}, {"set-cookie", "a=1"}};
    sbx_meta_cur_t c = m.headers;
    for (int i = 0; i < 3; i++) {
        const char *n, *v;
        uint32_t nl, vl;
        sbx_result_meta_next(&c, &n, &nl, &v, &vl);
        assert_int_equal(nl, strlen(want[i][0]));
        assert_memory_equal(n, want[i][0], nl);
        assert_int_equal(vl, strlen(want[i][1]));
        assert_memory_equal(v, want[i][1], vl);
    }
    /* A truncated RESULT is refused: one byte short of the last value. */
    assert_false(sbx_result_meta_parse(b.data + at, b.len - at - 1, &m));
    tine_buf_dispose(&b);
}

static void test_result_writer_out_of_memory(void **state)
{
    (void)state;
    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: skipped\n");
        return;
    }
    tine_buf_t b;
    tine_buf_init(&b);
    size_t at;
    alloc_fail_nth(0);
    assert_int_equal(sbx_result_meta_try_begin(&b, 200, &at), -ENOMEM);
    alloc_fail_off();
    assert_int_equal(b.len, 0);
    assert_int_equal(sbx_result_meta_try_begin(&b, 200, &at), 0);
    assert_int_equal(sbx_result_meta_try_header(&b, at, "a", 1, "1", 1), 0);
    size_t len = b.len;
    char *before = malloc(len);
    memcpy(before, b.data, len);
    /* A header too large for the buffer's room needs memory, which fails:
     * the buffer is left as it was, the count too. */
    static char big[4096];
    memset(big, 'v', sizeof big);
    alloc_fail_nth(0);
    assert_int_equal(sbx_result_meta_try_header(&b, at, "Big", 3, big, sizeof big), -ENOMEM);
    assert_true(alloc_fail_hit());
    alloc_fail_off();
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, before, len);
    sbx_result_meta_t m;
    assert_true(sbx_result_meta_parse(b.data, b.len, &m));
    assert_int_equal(m.nheaders, 1);
    free(before);
    tine_buf_dispose(&b);
}

/* Writes {"headers": {...}} from name/value pairs with sbx_meta_header,
 * its filter of names starting at `seen`, and returns its JSON text. */
static char *headers_object(const char *const (*pairs)[2], size_t npairs, uint64_t seen)
{
    tine_buf_t b;
    tine_buf_init(&b);
    size_t top = sbx_meta_begin(&b, SBX_META_OBJECT);
    sbx_meta_key(&b, "headers", 7);
    size_t at = sbx_meta_begin(&b, SBX_META_OBJECT), first = b.len;
    uint32_t n = 0;
    for (size_t i = 0; i < npairs; i++)
        n += sbx_meta_header(&b, first, n, &seen, pairs[i][0], strlen(pairs[i][0]), pairs[i][1], strlen(pairs[i][1]));
    sbx_meta_end(&b, at, n);
    sbx_meta_end(&b, top, 1);
    char *s = decoded(&b, 0);
    tine_buf_dispose(&b);
    return s;
}

static void test_request_headers_joined(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {{"Host", "x"},   {"Accept", "a/b"}, {"X-Multi", "1"}, {"accept", "c/d"},
                                           {"x-multi", ""}, {"X-MULTI", "3"},  {"empty", ""}};
    const char *want = "{\"headers\":{\"host\":\"x\",\"accept\":\"a/b, c/d\",\"x-multi\":\"1, , 3\",\"empty\":\"\"}}";
    /* One member per name (lower case), at its first place, values in order;
     * the same whether the filter of names rules a name out or not. */
    char *s = headers_object(pairs, 7, 0);
    assert_string_equal(s, want);
    free(s);
    s = headers_object(pairs, 7, UINT64_MAX);
    assert_string_equal(s, want);
    free(s);
    static const char *const one[][2] = {{"A", "1"}};
    s = headers_object(one, 1, 0);
    assert_string_equal(s, "{\"headers\":{\"a\":\"1\"}}");
    free(s);
    s = headers_object(NULL, 0, 0);
    assert_string_equal(s, "{\"headers\":{}}");
    free(s);
}

/* Names that share their length and first and last bytes (one bit of the
 * filter) are still told apart. */
static void test_request_headers_alike(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"x-aa-z", "1"}, {"x-bb-z", "2"}, {"X-AA-Z", "3"}, {"x-cc-z", "4"}, {"x-bb-z", "5"}};
    char *s = headers_object(pairs, 5, 0);
    assert_string_equal(s, "{\"headers\":{\"x-aa-z\":\"1, 3\",\"x-bb-z\":\"2, 5\",\"x-cc-z\":\"4\"}}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_writer_counts_and_lowers),
        cmocka_unit_test(test_result_writer_out_of_memory),
        cmocka_unit_test(test_request_headers_joined),
        cmocka_unit_test(test_request_headers_alike),
    };
    return cmocka_run_group_tests_name("sandbox/meta", tests, NULL, NULL);
}
