/* gw__read_head: what h2o keeps out of req->headers, read back from the raw
 * head (intake.c), on heads as h2o leaves them (names lower case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway_internal.h"

static bool head(const char *method, const char *text, gw_head_t *h)
{
    return gw__read_head(method, strlen(method), text, strlen(text), h);
}

static void test_content_length_and_expect(void **state)
{
    (void)state;
    gw_head_t h;
    const char *t = "POST /a/b HTTP/1.1\r\nhost: x\r\ncontent-length:  70000 \r\nexpect: 100-Continue\r\n\r\nbody";
    assert_true(head("POST", t, &h));
    assert_int_equal(h.head_len, strlen(t) - 4);
    assert_int_equal(h.content_length, 70000);
    assert_true(h.expect_continue);
    assert_false(h.chunked);

    /* The first Content-Length counts, as for h2o; bare LF line ends. */
    t = "PUT /x HTTP/1.0\ncontent-length: 5\ncontent-length: 9\n\nrest";
    assert_true(head("PUT", t, &h));
    assert_int_equal(h.content_length, 5);
    assert_int_equal(h.head_len, strlen(t) - 4);
    assert_false(h.expect_continue);

    /* One empty line before the request line is skipped (picohttpparser). */
    t = "\r\nPOST / HTTP/1.1\r\ncontent-length: 1\r\n\r\n";
    assert_true(head("POST", t, &h));
    assert_int_equal(h.head_len, strlen(t));
}

static void test_chunked_and_missing(void **state)
{
    (void)state;
    gw_head_t h;
    assert_true(head("POST", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n", &h));
    assert_true(h.chunked);
    assert_true(head("POST", "POST / HTTP/1.1\r\nhost: x\r\n\r\n", &h));
    assert_int_equal(h.content_length, SIZE_MAX);
    assert_true(head("POST", "POST / HTTP/1.1\r\ncontent-length: 12x\r\n\r\n", &h));
    assert_int_equal(h.content_length, SIZE_MAX);
    /* A header value that only looks like the name does not count. */
    assert_true(head("POST", "POST / HTTP/1.1\r\nx-content-length: 7\r\nx: content-length: 8\r\n\r\n", &h));
    assert_int_equal(h.content_length, SIZE_MAX);
}

static void test_not_this_head(void **state)
{
    (void)state;
    gw_head_t h;
    assert_false(head("POST", "GET / HTTP/1.1\r\n\r\n", &h));      /* another method */
    assert_false(head("POST", "POSTX / HTTP/1.1\r\n\r\n", &h));    /* not followed by a space */
    assert_false(head("POST", "POST / HTTP/1.1\r\nhost: x\r\n", &h)); /* no empty line yet */
    assert_false(head("POST", "POST", &h));
    assert_false(head("POST", "", &h));
    assert_false(head("POST", "\n\nPOST / HTTP/1.1\r\n\r\n", &h)); /* only one empty line is skipped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_and_expect),
        cmocka_unit_test(test_chunked_and_missing),
        cmocka_unit_test(test_not_this_head),
    };
    return cmocka_run_group_tests_name("gateway/intake", tests, NULL, NULL);
}
