/* Unit tests for the request heads the exec egress proxy reads
 * (sandbox/exec_proxy.c, sbx__proxy_parse): CONNECT authorities (names,
 * IPv4, bracketed IPv6, ports), absolute http:// URIs rewritten to what the
 * server gets (origin form, the proxy's hop-by-hop headers dropped, one
 * request per connection), incomplete and oversized heads, everything a
 * program could send to confuse it, and each allocation failing in turn. The proxy against real sockets is
 * tests/security/test_exec_network.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/alloc_fail.h"
#include "sandbox_internal.h"
#include "tine_common.h"

static sbx_proxy_request_t req;
static tine_buf_t head;
static char err[512];

static int parse(const char *text)
{
    tine_buf_dispose(&head);
    tine_buf_init(&head);
    err[0] = '\0';
    return sbx__proxy_parse(text, strlen(text), &req, &head, err, sizeof err);
}

static void test_connect(void **state)
{
    (void)state;
    assert_int_equal(parse("CONNECT Api.Example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"), 0);
    assert_true(req.connect);
    assert_string_equal(req.method, "CONNECT");
    assert_string_equal(req.host, "api.example.com");
    assert_int_equal(req.port, 443);
    assert_int_equal(head.len, 0);
    assert_int_equal(parse("CONNECT [::FFFF:127.0.0.1]:8080 HTTP/1.0\r\n\r\n"), 0);
    assert_string_equal(req.host, "::ffff:127.0.0.1");
    assert_int_equal(req.port, 8080);
    assert_int_equal(parse("CONNECT 10.0.0.7:65535 HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(req.port, 65535);
}

static void test_connect_refused(void **state)
{
    (void)state;
    const char *const bad[] = {
        "CONNECT example.com HTTP/1.1\r\n\r\n",        /* no port */
        "CONNECT example.com:0 HTTP/1.1\r\n\r\n",      /* port 0 */
        "CONNECT example.com:65536 HTTP/1.1\r\n\r\n",  /* too big */
        "CONNECT example.com:+80 HTTP/1.1\r\n\r\n",    /* not digits */
        "CONNECT example.com:080000 HTTP/1.1\r\n\r\n", /* too long */
        "CONNECT :80 HTTP/1.1\r\n\r\n",                /* no host */
        "CONNECT [::1:80 HTTP/1.1\r\n\r\n",            /* unclosed bracket */
        "CONNECT [::1]x:80 HTTP/1.1\r\n\r\n",          /* junk after it */
        "CONNECT [fe80::1%eth0]:80 HTTP/1.1\r\n\r\n",  /* zone ids */
        "CONNECT a/b:80 HTTP/1.1\r\n\r\n",             /* not a host */
        "CONNECT user@host:80 HTTP/1.1\r\n\r\n",
        "CONNECT host:80 HTTP/2.0\r\n\r\n",  /* only HTTP/1.x */
        "CONNECT host:80\r\n\r\n",           /* no version */
        "connect host:80 HTTP/1.1\r\n\r\n",  /* lower-case method */
        "CONNECT  host:80 HTTP/1.1\r\n\r\n", /* two spaces */
        "CONNECT host:80 HTTP/1.1 extra\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i]) != 400)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_absolute_uri(void **state)
{
    (void)state;
    const char *text = "GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n"
                       "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive\r\n"
                       "Keep-Alive: 5\r\nAccept: */*\r\n\r\nBODY";
    assert_int_equal(parse(text), 0);
    assert_false(req.connect);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.host, "example.com");
    assert_int_equal(req.port, 8080);
    assert_int_equal(req.head_len, strstr(text, "BODY") - text); /* what follows goes to the server as is */
    assert_string_equal(head.data, "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n"
                                   "Connection: close\r\n\r\n");
    /* No path, a query only, no Host header, the default port. */
    assert_int_equal(parse("POST HTTP://h.test HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), 0);
    assert_int_equal(req.port, 80);
    assert_string_equal(head.data, "POST / HTTP/1.0\r\nContent-Length: 0\r\nHost: h.test\r\nConnection: close\r\n\r\n");
    assert_int_equal(parse("GET http://[::1]:81?x HTTP/1.1\r\n\r\n"), 0);
    assert_string_equal(req.host, "::1");
    assert_string_equal(head.data, "GET /?x HTTP/1.1\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n");
}

static void test_absolute_uri_refused(void **state)
{
    (void)state;
    const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",         /* origin form: not a proxy request */
        "GET https://example.com/ HTTP/1.1\r\n\r\n", /* https goes through CONNECT */
        "GET ftp://example.com/ HTTP/1.1\r\n\r\n",
        "GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n", /* credentials */
        "GET http:///x HTTP/1.1\r\n\r\n",                   /* no host */
        "GET http://ex ample.com/ HTTP/1.1\r\n\r\n",
        "GET http://example.com/ HTTP/1.1\r\n folded\r\n\r\n", /* obs-fold */
        "GET http://example.com/ HTTP/1.1\r\nno colon\r\n\r\n",
        "GET http://exa\x01mple.com/ HTTP/1.1\r\n\r\n",
        "GETTOOLONGMETHODNAME http://e.com/ HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i]) != 400)
            fail_msg("accepted: %s", bad[i]);
    assert_int_equal(parse("GET https://example.com/ HTTP/1.1\r\n\r\n"), 400);
    assert_string_equal(err, "https:// goes through CONNECT (set HTTPS_PROXY)");
}

static void test_incomplete_and_oversized(void **state)
{
    (void)state;
    assert_int_equal(parse(""), 1);
    assert_int_equal(parse("CONNECT host:443 HTTP/1.1\r\n"), 1);
    assert_int_equal(parse("CONNECT host:443 HTTP/1.1\r\n\r"), 1);
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    memcpy(big, "GET http://h/ HTTP/1.1\r\nX: ", 27);
    assert_int_equal(parse(big), 431);
    memcpy(big + n - 4, "\r\n\r\n", 4);
    assert_int_equal(parse(big), 431); /* complete, but over the limit */
    free(big);
}

/* Each allocation of a parse fails in turn: 503 and a message, never an
 * abort, and no block left once the head is freed. */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char text[] = "GET http://example.com:8080/a?b HTTP/1.1\r\nAccept: */*\r\n"
                               "Proxy-Connection: keep-alive\r\nUser-Agent: a-long-enough-user-agent-string-"
                               "to-make-the-head-grow-past-its-first-allocation-of-two-hundred-and-fifty-six-"
                               "bytes-once-and-more\r\nX-Padding: 0123456789012345678901234567890123456789012345678901234567890123456789"
                               "01234567890123456789012345678901234567890123456789\r\n\r\n";
    assert_int_equal(parse(text), 0);
    size_t want_len = head.len;
    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: skipped\n");
        return;
    }
    long n = 0;
    for (;; n++) {
        tine_buf_dispose(&head);
        alloc_fail_nth(n);
        int rc = sbx__proxy_parse(text, sizeof text - 1, &req, &head, err, sizeof err);
        bool hit = alloc_fail_hit();
        tine_buf_dispose(&head);
        long live = alloc_live;
        alloc_fail_off();
        assert_int_equal(live, 0);
        if (!hit) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, 503);
        assert_string_equal(err, "out of memory building the request for the server");
    }
    assert_true(n >= 2); /* the head grew at least once */
    assert_int_equal(parse(text), 0);
    assert_int_equal(head.len, want_len);
}

static int teardown(void **state)
{
    (void)state;
    tine_buf_dispose(&head);
    return 0;
}

int main(void)
{
    tine_buf_init(&head);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_absolute_uri),
        cmocka_unit_test(test_absolute_uri_refused),
        cmocka_unit_test(test_incomplete_and_oversized),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
