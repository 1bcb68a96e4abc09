/* The Python and Node codecs of the wire (sdk/python/tine_wire.py,
 * sdk/node/tine_wire.js) against the C one (sandbox/wire.c,
 * sandbox/meta.c): frames and metadata written here are read by a real
 * python3 (tests/unit/sandbox/python_wire_peer.py), then by a real node
 * (node_wire_peer.js), which write them back in their own encoding; each
 * must agree with C byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frames.h"
#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int to;   /* the peer's stdin */
    int from; /* the peer's stdout */
} peer_t;

/* The codec under test: false Python, true Node (main runs the tests once
 * for each). */
static bool peer_node;

/* Starts python3 (node) on the peer script with pipes on its stdin and stdout. */
static peer_t peer_start(void)
{
    const char *src = getenv("TINE_SOURCE_DIR") ? getenv("TINE_SOURCE_DIR") : TINE_SOURCE_DIR;
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/unit/sandbox/%s", src,
             peer_node ? "node_wire_peer.js" : "python_wire_peer.py");
    setenv("TINE_SOURCE_DIR", src, 1);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        if (peer_node)
            execlp("node", "node", script, (char *)NULL);
        else
            execlp("python3", "python3", "-I", "-S", "-B", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_IGN);
    return (peer_t){pid, in[1], out[0]};
}

static void peer_stop(peer_t *p)
{
    close(p->to);
    sbx_frame_hdr_t h;
    char *payload = NULL;
    assert_int_equal(sbx_frame_read(p->from, &h, &payload, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, 0); /* clean end of stream: nothing unanswered */
    close(p->from);
    int st = 0;
    assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Reads the peer's next frame, which must be of `type` and id `id`. */
static char *read_answer(peer_t *p, uint8_t type, uint64_t id, sbx_frame_hdr_t *h)
{
    char *payload = NULL;
    assert_int_equal(sbx_frame_read(p->from, h, &payload, SBX_WIRE_MAX_FRAME), 0);
    if (h->type != type) {
        fail_msg("expected frame type %d, got %d: %.*s", type, h->type, (int)h->meta_len, payload ? payload : "");
    }
    assert_true(h->id == id);
    return payload;
}

/* The binary metadata of a JSON document. */
static tine_buf_t meta_of(const char *json_text)
{
    json_error_t err;
    json_t *v = json_loads(json_text, JSON_ALLOW_NUL, &err);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", json_text, err.text);
    tine_buf_t b;
    tine_buf_init(&b);
    sbx_meta_json(&b, v);
    json_decref(v);
    return b;
}

/* Values of every kind, as requests and events carry them. */
static const char *const documents[] = {
    "{}",
    "{\"kind\":\"http\",\"method\":\"GET\",\"path\":\"/a/b\",\"params\":{\"id\":\"7\"},"
    "\"headers\":{\"host\":\"x\",\"accept\":\"*/*\"},\"query\":\"a=1&b=%20\",\"ctx\":{\"invocation_id\":\"00ff\"}}",
    "{\"s\":\"\",\"u\":\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00\",\"esc\":\"\\\"\\\\\\n\\t\"}",
    "{\"i\":[0,-1,1,9223372036854775807,-9223372036854775808,4294967296],\"d\":[0.5,-1e+300,1e-300,3.25]}",
    "{\"t\":true,\"f\":false,\"n\":null,\"e\":[],\"o\":{},\"ae\":[[],[{}],[null,true]]}",
    "{\"k\\u00e9y\":{\"\\u00fcber\":[1,{\"deep\":[\"x\"]}]},\"\":\"empty key\"}",
    "{\"event\":{\"specversion\":\"1.0\",\"id\":\"e1\",\"type\":\"order.paid\",\"source\":\"tine://shop/f\","
    "\"data\":{\"total\":12.5,\"items\":[{\"sku\":\"a\",\"n\":2}]}}}",
};

/* INVOKE metadata of every kind goes through the peer and comes back the same
 * bytes, with the header's id, aux and flags and the body unchanged; the
 * frames are pipelined (written before any is read). */
static void test_invoke_meta_round_trip(void **state)
{
    (void)state;
    peer_t p = peer_start();
    size_t n = sizeof documents / sizeof documents[0];
    tine_buf_t sent[16];
    for (size_t i = 0; i < n; i++) {
        sent[i] = meta_of(documents[i]);
        char body[32];
        int bl = snprintf(body, sizeof body, "body %zu\x01\xff", i);
        sbx_frame_hdr_t h = sbx_frame_header(SBX_MSG_INVOKE, 0xF000000000000000ull + i, 0xFFFFFFF0u + (uint32_t)i,
                                             sent[i].len, (size_t)bl);
        h.flags = (uint8_t)i;
        struct iovec v[3] = {{&h, sizeof h}, {sent[i].data, sent[i].len}, {body, (size_t)bl}};
        assert_int_equal(sbx_writev_all(p.to, v, 3), 0);
    }
    for (size_t i = 0; i < n; i++) {
        sbx_frame_hdr_t h;
        char *payload = read_answer(&p, SBX_MSG_INVOKE, 0xF000000000000000ull + i, &h);
        assert_int_equal(h.aux, 0xFFFFFFF0u + (uint32_t)i);
        assert_int_equal(h.flags, (uint8_t)i);
        assert_int_equal(h.meta_len, sent[i].len);
        assert_memory_equal(payload, sent[i].data, sent[i].len);
        char body[32];
        int bl = snprintf(body, sizeof body, "body %zu\x01\xff", i);
        assert_int_equal(h.len - h.meta_len, bl);
        assert_memory_equal(payload + h.meta_len, body, (size_t)bl);
        /* And C reads what the peer wrote as the document itself. */
        char err[128];
        json_t *got = sbx_meta_to_json(payload, h.meta_len, err, sizeof err);
        json_t *want = json_loads(documents[i], JSON_ALLOW_NUL, NULL);
        assert_non_null(got);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS),
                 *e = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("document %zu read back as %s, expected %s", i, g, e);
        }
        json_decref(got);
        json_decref(want);
        free(payload);
        tine_buf_dispose(&sent[i]);
    }
    peer_stop(&p);
}

/* Strings are any bytes: NULs and bytes that are not UTF-8, in keys and
 * values, survive the trip through the peer (C's JSON view of them would
 * replace them); and a body of 3 MiB crosses whole. */
static void test_invoke_raw_bytes_and_big_body(void **state)
{
    (void)state;
    peer_t p = peer_start();
    tine_buf_t m;
    tine_buf_init(&m);
    size_t at = sbx_meta_begin(&m, SBX_META_OBJECT);
    sbx_meta_kstr(&m, "latin1", "caf\xe9", 4);
    sbx_meta_kstr(&m, "nul", "a\0b\0", 4);
    sbx_meta_key(&m, "\xff\xfe", 2);
    sbx_meta_str(&m, "\xc3\x28\x80", 3);
    sbx_meta_end(&m, at, 3);
    size_t big = 3u * 1024u * 1024u;
    char *body = malloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)(i * 7);
    assert_int_equal(sbx_frame_write(p.to, SBX_MSG_INVOKE, 42, m.data, m.len, body, big), 0);
    sbx_frame_hdr_t h;
    char *payload = read_answer(&p, SBX_MSG_INVOKE, 42, &h);
    assert_int_equal(h.meta_len, m.len);
    assert_memory_equal(payload, m.data, m.len);
    assert_int_equal(h.len - h.meta_len, big);
    assert_memory_equal(payload + h.meta_len, body, big);
    free(payload);
    free(body);
    tine_buf_dispose(&m);
    peer_stop(&p);
}

/* RESULT metadata written by C is read by the peer; written by the peer, it is
 * read by C: status, header names in lower case, values as they were. */
static void test_result_meta_both_ways(void **state)
{
    (void)state;
    peer_t p = peer_start();
    tine_buf_t m;
    tine_buf_init(&m);
    size_t at = sbx_result_meta_begin(&m, 201);
    sbx_result_meta_header(&m, at, "Content-Type", 12, "text/plain; charset=utf-8", 25);
    sbx_result_meta_header(&m, at, "X-Name", 6, "caf\xc3\xa9", 5);
    sbx_result_meta_header(&m, at, "x-empty", 7, "", 0);
    assert_int_equal(sbx_frame_write(p.to, SBX_MSG_RESULT, 7, m.data, m.len, "ok", 2), 0);
    sbx_frame_hdr_t h;
    char *payload = read_answer(&p, SBX_MSG_LOG, 7, &h);
    json_t *got = json_loadb(payload, h.meta_len, 0, NULL);
    json_t *want = json_loads("{\"status\":201,\"headers\":[[\"content-type\",\"text/plain; charset=utf-8\"],"
                              "[\"x-name\",\"caf\\u00e9\"],[\"x-empty\",\"\"]]}",
                              0, NULL);
    assert_non_null(got);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    free(payload);
    tine_buf_dispose(&m);

    static const char ask[] = "{\"status\":418,\"headers\":[[\"X-Mixed-Case\",\"v1\"],[\"content-type\","
                              "\"application/json\"],[\"x-u\",\"\\u65e5\"]]}";
    assert_int_equal(sbx_frame_write(p.to, SBX_MSG_HOSTCALL, 8, ask, sizeof ask - 1, "{\"a\":1}", 7), 0);
    payload = read_answer(&p, SBX_MSG_RESULT, 8, &h);
    sbx_result_meta_t r;
    assert_true(sbx_result_meta_parse(payload, h.meta_len, &r));
    assert_int_equal(r.status, 418);
    assert_int_equal(r.nheaders, 3);
    json_t *headers = sbx_result_meta_headers_json(&r);
    want = json_loads("{\"x-mixed-case\":\"v1\",\"content-type\":\"application/json\",\"x-u\":\"\\u65e5\"}", 0, NULL);
    assert_true(json_equal(headers, want));
    json_decref(headers);
    json_decref(want);
    assert_int_equal(h.len - h.meta_len, 7);
    assert_memory_equal(payload + h.meta_len, "{\"a\":1}", 7);
    free(payload);
    peer_stop(&p);
}

/* Malformed metadata that C refuses, the peer refuses too (with a message). */
static void test_malformed_meta_refused_by_both(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"", 0},
        {"O", 1},
        {"O\x01\x00\x00\x00", 5},
        {"O\x01\x00\x00\x00\x05\x00\x00\x00"
         "ab",
         11},
        {"S\x05\x00\x00\x00"
         "ab",
         7},
        {"Z", 1},
        {"NN", 2},
        {"I\x01\x02", 3},
        {"A\x02\x00\x00\x00T", 6},
    };
    peer_t p = peer_start();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128];
        json_t *c = sbx_meta_to_json(bad[i].bytes, bad[i].len, err, sizeof err);
        assert_null(c);
        assert_int_equal(sbx_frame_write(p.to, SBX_MSG_ERROR, i + 1, bad[i].bytes, bad[i].len, NULL, 0), 0);
        sbx_frame_hdr_t h;
        char *payload = read_answer(&p, SBX_MSG_ERROR, i + 1, &h);
        json_t *m = json_loadb(payload, h.meta_len, 0, NULL);
        const char *what = json_string_value(json_object_get(m, "error"));
        assert_non_null(what);
        if (strcmp(what, "accepted") == 0)
            fail_msg("%s accepted malformed metadata #%zu that C refuses", peer_node ? "Node" : "Python", i);
        json_decref(m);
        free(payload);
    }
    /* Nesting past 128 levels: refused by both. */
    tine_buf_t deep;
    tine_buf_init(&deep);
    for (int i = 0; i < 200; i++)
        sbx_meta_end(&deep, sbx_meta_begin(&deep, SBX_META_ARRAY), 1);
    tine_buf_append(&deep, "N", 1);
    char err[128];
    assert_null(sbx_meta_to_json(deep.data, deep.len, err, sizeof err));
    assert_int_equal(sbx_frame_write(p.to, SBX_MSG_ERROR, 99, deep.data, deep.len, NULL, 0), 0);
    sbx_frame_hdr_t h;
    char *payload = read_answer(&p, SBX_MSG_ERROR, 99, &h);
    assert_null(strstr(payload, "\"accepted\""));
    assert_non_null(strstr(payload, "nesting deeper than 128"));
    free(payload);
    tine_buf_dispose(&deep);
    peer_stop(&p);
}

/* Host calls made by each SDK's own code (Python's tine_wire.call, Node's
 * Channel.hostcall): the HOSTCALL metadata it writes must be C's binary
 * object {op, ...args} byte for byte (null arguments left out), and the
 * binary HOSTREPLY C writes must read back as its members, an error reply
 * as the SDK's error, metadata that is not one binary object (JSON text,
 * a truncated object) as "malformed host reply". */
static void test_hostcall_both_ways(void **state)
{
    (void)state;
    static const struct {
        const char *call;  /* {"op":..,"args":{..}}, sent to the peer */
        const char *sent;  /* the HOSTCALL metadata expected, as JSON */
        const char *reply; /* the HOSTREPLY metadata (JSON, or raw: bytes) */
        const char *answer;
    } cases[] = {
        {"{\"op\":\"kv.set\",\"args\":{\"key\":\"k\\u00e9\",\"ttl_ms\":1500,\"gone\":null}}",
         "{\"op\":\"kv.set\",\"key\":\"k\\u00e9\",\"ttl_ms\":1500}", "{}", "{\"reply\":{},\"body\":\"r\"}"},
        {"{\"op\":\"invoke\",\"args\":{\"fn\":\"b\",\"async\":true}}", "{\"op\":\"invoke\",\"fn\":\"b\",\"async\":true}",
         "{\"status\":200,\"invocation_id\":\"00ab\",\"json\":true,\"headers\":{\"x-a\":\"1\"}}",
         "{\"reply\":{\"status\":200,\"invocation_id\":\"00ab\",\"json\":true,\"headers\":{\"x-a\":\"1\"}},\"body\":\"r\"}"},
        {"{\"op\":\"http\",\"args\":{\"url\":\"http://x/\",\"method\":\"POST\",\"headers\":{\"a\":\"b\"},\"t\":2.5,"
         "\"l\":[1,false,\"s\"]}}",
         "{\"op\":\"http\",\"url\":\"http://x/\",\"method\":\"POST\",\"headers\":{\"a\":\"b\"},\"t\":2.5,"
         "\"l\":[1,false,\"s\"]}",
         "{\"status\":204,\"headers\":{},\"n\":-7,\"d\":0.25}",
         "{\"reply\":{\"status\":204,\"headers\":{},\"n\":-7,\"d\":0.25},\"body\":\"r\"}"},
        {"{\"op\":\"invoke\",\"args\":{\"fn\":\"z\"}}", "{\"op\":\"invoke\",\"fn\":\"z\"}",
         "{\"error\":\"app a has no function 'z'\"}", "{\"thrown\":\"app a has no function 'z'\"}"},
        {"{\"op\":\"emit\",\"args\":{\"type\":\"t\"}}", "{\"op\":\"emit\",\"type\":\"t\"}", "raw:{\"id\":\"x\"}",
         "{\"thrown\":\"malformed host reply\"}"},
        {"{\"op\":\"emit\",\"args\":{\"type\":\"t\"}}", "{\"op\":\"emit\",\"type\":\"t\"}", "raw:O\x01",
         "{\"thrown\":\"malformed host reply\"}"},
    };
    peer_t p = peer_start();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t id = 40 + i;
        assert_int_equal(sbx_frame_write(p.to, SBX_MSG_LOG, id, cases[i].call, strlen(cases[i].call), "q", 1), 0);
        sbx_frame_hdr_t h;
        char *payload = read_answer(&p, SBX_MSG_HOSTCALL, id, &h);
        tine_buf_t want = meta_of(cases[i].sent);
        if (h.meta_len != want.len || memcmp(payload, want.data, want.len) != 0)
            fail_msg("%s: HOSTCALL #%zu is not C's encoding of %s", peer_node ? "Node" : "Python", i, cases[i].sent);
        assert_int_equal(h.len - h.meta_len, 1);
        assert_memory_equal(payload + h.meta_len, "q", 1);
        tine_buf_dispose(&want);
        free(payload);
        write_hostreply(p.to, id, cases[i].reply, "r", 1);
        payload = read_answer(&p, SBX_MSG_LOG, id, &h);
        json_t *got = json_loadb(payload, h.meta_len, 0, NULL);
        json_t *exp = json_loads(cases[i].answer, 0, NULL);
        if (!json_equal(got, exp))
            fail_msg("%s: host call #%zu answered %.*s, expected %s", peer_node ? "Node" : "Python", i,
                     (int)h.meta_len, payload, cases[i].answer);
        json_decref(got);
        json_decref(exp);
        free(payload);
    }
    peer_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoke_meta_round_trip),
        cmocka_unit_test(test_invoke_raw_bytes_and_big_body),
        cmocka_unit_test(test_result_meta_both_ways),
        cmocka_unit_test(test_malformed_meta_refused_by_both),
        cmocka_unit_test(test_hostcall_both_ways),
    };
    int failed = cmocka_run_group_tests_name("sandbox/python_wire", tests, NULL, NULL);
    peer_node = true;
    return failed + cmocka_run_group_tests_name("sandbox/node_wire", tests, NULL, NULL);
}
