/* Tests of invoker/request.c: a request built member by member is, byte for
 * byte, the INVOKE frame the JSON form of the same request makes (the
 * member count kept by the builder, "ctx" added, the body after the
 * metadata, the frame header filled), headers are lower-cased and repeated
 * ones joined, and the frame is handed over without a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "invoker_internal.h"
#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ID 0x0123456789abcdefull
#define ID_HEX "nodeprefix0000000123456789abcdef" /* the node's prefix, then the id */

/* The frame inv__request_take_frame makes of rq, checked against the frame
 * of `want` (the request as JSON, "ctx" added here) and `body`. */
static void expect_frame(inv_request_t *rq, json_t *want, const char *body, size_t body_len)
{
    size_t len;
    char *frame = inv__request_take_frame(rq, ID, ID_HEX, body, body_len, &len);
    assert_int_equal(rq->_frame.len, 0); /* the bytes changed hands */
    assert_null(rq->_frame.data);

    json_object_set_new(want, "ctx", json_pack("{s:s}", "invocation_id", ID_HEX));
    tine_buf_t meta;
    tine_buf_init(&meta);
    sbx_meta_json(&meta, want);
    json_decref(want);

    sbx_frame_hdr_t h;
    assert_true(len >= sizeof h);
    memcpy(&h, frame, sizeof h);
    assert_int_equal(sbx_frame_check(&h, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_INVOKE);
    assert_true(h.id == ID);
    assert_int_equal(h.aux, 0);
    assert_int_equal(h.meta_len, meta.len);
    assert_int_equal(h.len, meta.len + body_len);
    assert_int_equal(len, sizeof h + h.len);
    assert_memory_equal(frame + sizeof h, meta.data, meta.len);
    if (body_len)
        assert_memory_equal(frame + sizeof h + meta.len, body, body_len);
    tine_buf_dispose(&meta);
    free(frame);
}

static void test_http_request(void **state)
{
    (void)state;
    inv_request_t rq;
    inv_request_init(&rq, "http");
    inv_request_str(&rq, "kind", "http", 4);
    inv_request_str(&rq, "method", "POSTED", 4);
    inv_request_str(&rq, "path", "/x/caf\xc3\xa9", 8);
    inv_request_begin_object(&rq, "params");
    inv_request_field(&rq, "idx", 2, "7", 1);
    inv_request_field(&rq, "rest", 4, "a/b", 3);
    inv_request_end_object(&rq);
    inv_request_str(&rq, "query", "", 0);
    inv_request_begin_object(&rq, "headers");
    inv_request_header(&rq, "Host", 4, "h", 1);
    inv_request_header(&rq, "X-Multi", 7, "1", 1);
    inv_request_header(&rq, "accept", 6, "*", 1);
    inv_request_header(&rq, "x-multi", 7, "2", 1);
    inv_request_end_object(&rq);
    json_t *want = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s, s:s}}", "kind", "http", "method", "POST",
                             "path", "/x/caf\xc3\xa9", "params", "id", "7", "rest", "a/b", "query", "", "headers",
                             "host", "h", "x-multi", "1, 2", "accept", "*");
    expect_frame(&rq, want, "body\0bytes", 10);
    inv_request_dispose(&rq); /* after a take: nothing left, and safe */
}

static void test_json_members_and_empty(void **state)
{
    (void)state;
    json_t *event = json_pack("{s:[i, f, b, n], s:{}, s:s}", "list", 1, 2.5, 1, "empty", "s", "x");
    inv_request_t rq;
    inv_request_init(&rq, "event");
    inv_request_str(&rq, "kind", "event", 5);
    inv_request_json(&rq, "event", event);
    json_t *three = json_integer(3);
    inv_request_json(&rq, "attempt", three); /* borrowed */
    json_decref(three);
    expect_frame(&rq, json_pack("{s:s, s:O, s:i}", "kind", "event", "event", event, "attempt", 3), NULL, 0);
    inv_request_dispose(&rq);
    json_decref(event);

    /* A request without members still has its ctx. */
    inv_request_init(&rq, NULL);
    expect_frame(&rq, json_object(), NULL, 0);
    inv_request_dispose(&rq);

    /* Disposed without a call: what it held goes. */
    inv_request_init(&rq, "http");
    inv_request_str(&rq, "kind", "http", 4);
    inv_request_dispose(&rq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_json_members_and_empty),
    };
    return cmocka_run_group_tests_name("invoker/request", tests, NULL, NULL);
}
