/* Unit tests of the host calls as a function sees them (sdk/lua/tine.lua and
 * the host-call primitive in sandbox/lua_host.c): a forked sandbox runs Lua
 * code sent with each invocation, and the test plays tined, checking every
 * HOSTCALL frame and answering it. tined's side is tested end to end in
 * tests/integration/test_sdk_*.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frames.h"

#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* The handler runs the code it is sent (line numbers are those of `code`,
 * named "user"); `loaded` shows what a host call at load time does. */
static const char handler_lua[] = "local tine = require 'tine'\n"
                                  "local ok, loaded = pcall(tine.kv.get, 'k')\n"
                                  "local M = {}\n"
                                  "function M.run(ev, ctx)\n"
                                  "  if type(ev) ~= 'table' or not ev.code then return { event = ev } end\n"
                                  "  local env = setmetatable({ tine = tine, loaded = loaded }, { __index = _G })\n"
                                  "  return assert(load(ev.code, '=user', 't', env))()\n"
                                  "end\n"
                                  "return M\n";

typedef struct {
    char dir[PATH_MAX];
    pid_t pid;
    int fd;
    uint64_t next_id;
} sandbox_t;

typedef struct {
    uint8_t type;
    uint64_t id;
    json_t *meta;
    char *body;
    size_t body_len;
} frame_t;

/* One host call the code is expected to make, and the answer it gets. */
typedef struct {
    const char *meta;       /* JSON object: members the call's metadata must have */
    const char *body;       /* the call's expected body; NULL: not checked */
    const char *reply_meta; /* the answer */
    const char *reply_body;
} exchange_t;

static sandbox_t sbx;

static void frame_dispose(frame_t *f)
{
    json_decref(f->meta);
    free(f->body);
    memset(f, 0, sizeof *f);
}

static void recv_frame(frame_t *f)
{
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sbx.fd, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_not_equal(h.type, 0);
    f->type = h.type;
    f->id = h.id;
    f->meta = meta_json(h.type, p, h.meta_len);
    f->body_len = h.len - h.meta_len;
    f->body = malloc(f->body_len + 1);
    memcpy(f->body, p + h.meta_len, f->body_len);
    f->body[f->body_len] = '\0';
    free(p);
}

static const char *meta_str(const frame_t *f, const char *key)
{
    return json_string_value(json_object_get(f->meta, key));
}

/* Sends one INVOKE of kind event. */
static uint64_t send_event(json_t *meta_taken, const char *body, size_t body_len)
{
    uint64_t id = sbx.next_id++;
    write_invoke(sbx.fd, id, meta_taken, body, body_len);
    json_decref(meta_taken);
    return id;
}

/* Runs `code` in the sandbox, answering its host calls with `ex` (in order,
 * each checked), and stores the RESULT or ERROR frame in *out. */
static void run(const char *code, const exchange_t *ex, size_t nex, frame_t *out)
{
    uint64_t id = send_event(json_pack("{s:s, s:{s:s}}", "kind", "event", "event", "code", code), NULL, 0);
    size_t next = 0;
    for (;;) {
        frame_t f = {0};
        recv_frame(&f);
        assert_true(f.id == id);
        if (f.type == SBX_MSG_LOG) {
            frame_dispose(&f);
            continue;
        }
        if (f.type != SBX_MSG_HOSTCALL) {
            if (next != nex)
                fail_msg("[%s]: %zu host calls made, %zu expected (%s)", code, next, nex,
                         f.type == SBX_MSG_ERROR ? meta_str(&f, "error") : f.body);
            *out = f;
            return;
        }
        if (next == nex)
            fail_msg("[%s]: unexpected host call %s", code, json_dumps(f.meta, JSON_COMPACT));
        const exchange_t *e = &ex[next++];
        json_t *want = json_loads(e->meta, 0, NULL);
        assert_non_null(want);
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            if (!json_equal(json_object_get(f.meta, k), v))
                fail_msg("[%s]: host call %s: member %s is not %s", code, json_dumps(f.meta, JSON_COMPACT), k,
                         json_dumps(v, JSON_ENCODE_ANY));
        }
        json_decref(want);
        if (e->body != NULL && strcmp(f.body, e->body) != 0)
            fail_msg("[%s]: host call body '%s', expected '%s'", code, f.body, e->body);
        const char *rb = e->reply_body ? e->reply_body : "";
        write_hostreply(sbx.fd, id, e->reply_meta, rb, strlen(rb));
        frame_dispose(&f);
    }
}

/* Runs code and expects a RESULT whose body is `expect`. */
static void expect_result(const char *code, const exchange_t *ex, size_t nex, const char *expect)
{
    frame_t f = {0};
    run(code, ex, nex, &f);
    if (f.type != SBX_MSG_RESULT)
        fail_msg("[%s] failed: %s", code, meta_str(&f, "error"));
    if (strcmp(f.body, expect) != 0)
        fail_msg("[%s]: got '%s', expected '%s'", code, f.body, expect);
    frame_dispose(&f);
}

/* Runs code and expects an ERROR whose message is exactly `expect`. */
static void expect_error(const char *code, const exchange_t *ex, size_t nex, const char *expect)
{
    frame_t f = {0};
    run(code, ex, nex, &f);
    if (f.type != SBX_MSG_ERROR)
        fail_msg("[%s] did not fail: %s", code, f.body);
    if (strcmp(meta_str(&f, "error"), expect) != 0)
        fail_msg("[%s]: error '%s', expected '%s'", code, meta_str(&f, "error"), expect);
    frame_dispose(&f);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ fixture */

static const char *sdk_dir(void)
{
    static char dir[PATH_MAX];
    const char *src = getenv("TINE_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/sdk/lua", src ? src : TINE_SOURCE_DIR);
    return dir;
}

static int setup(void **state)
{
    snprintf(sbx.dir, sizeof sbx.dir, "/tmp/tine-sdk-hostcalls-XXXXXX");
    assert_non_null(mkdtemp(sbx.dir));
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/handler.lua", sbx.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(handler_lua, f);
    fclose(f);
    int sv[2];
    pid_t pid = fork_with_socketpair(sv);
    if (pid == 0) {
        sbx_spec_t spec = {.app = "shop", .version = 1, .function = "run", .bundle_dir = sbx.dir,
                           .handler_file = "handler.lua", .handler_export = "run", .memory_mb = 128,
                           .timeout_ms = 3000, .env_json = "{}"};
        _exit(sbx_lua_serve(sbx_lua_prepare(sdk_dir()), (sbx_fds_t){sv[1], sv[1]}, &spec));
    }
    sbx.pid = pid;
    sbx.fd = sv[0];
    sbx.next_id = 7;
    frame_t r = {0};
    recv_frame(&r);
    if (r.type != SBX_MSG_READY)
        fail_msg("expected READY, got %d: %s", r.type, meta_str(&r, "error"));
    frame_dispose(&r);
    return 0;
}

static int teardown(void **state)
{
    close(sbx.fd);
    int st = 0;
    waitpid(sbx.pid, &st, 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sbx.dir);
    return system(cmd) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- tests */

static void test_outside_an_invocation(void **state)
{
    expect_result("return loaded", NULL, 0,
                  "tine.kv.get: host calls are only available while handling an invocation");
}

static void test_kv(void **state)
{
    exchange_t get[] = {{"{\"op\":\"kv.get\",\"key\":\"a:1\"}", "", "{\"found\":true}", "v\001x"},
                        {"{\"op\":\"kv.get\",\"key\":\"b\"}", "", "{\"found\":false}", NULL}};
    expect_result("return tine.kv.get('a:1') .. '|' .. tostring(tine.kv.get('b'))", get, N(get), "v\001x|nil");

    exchange_t set[] = {{"{\"op\":\"kv.set\",\"key\":\"k\",\"ttl_ms\":1500}", "val", "{}", NULL},
                        {"{\"op\":\"kv.set\",\"key\":\"k\",\"ttl_ms\":2000}", "42", "{}", NULL},
                        {"{\"op\":\"kv.set\",\"key\":\"k\"}", "x", "{}", NULL}};
    expect_result("return tostring(tine.kv.set('k', 'val', { ttl = 1.5 })) .. tostring(tine.kv.set('k', 42, 2))"
                  " .. tostring(tine.kv.set('k', 'x'))",
                  set, N(set), "truetruetrue");

    exchange_t more[] = {{"{\"op\":\"kv.keys\",\"prefix\":\"item:\"}", NULL, "{\"keys\":[\"item:1\",\"item:2\"]}", NULL},
                         {"{\"op\":\"kv.del\",\"key\":\"k\"}", NULL, "{\"deleted\":true}", NULL},
                         {"{\"op\":\"kv.incr\",\"key\":\"n\",\"by\":1}", NULL, "{\"value\":1}", NULL},
                         {"{\"op\":\"kv.incr\",\"key\":\"n\",\"by\":-5}", NULL, "{\"value\":-4}", NULL},
                         {"{\"op\":\"kv.keys\",\"prefix\":\"\"}", NULL, "{\"keys\":[]}", NULL}};
    expect_result("local k = tine.kv.keys('item:')\n"
                  "return table.concat({ tostring(tine.kv.del('k')), tine.kv.incr('n'), tine.kv.incr('n', -5),"
                  " #k, k[1], k[2], tine.json.encode(tine.kv.keys()) }, ',')",
                  more, N(more), "true,1,-4,2,item:1,item:2,[]");
}

/* Bad arguments are refused before any host call, at the user's line. */
static void test_argument_errors_name_the_caller(void **state)
{
    static const struct {
        const char *code, *error;
    } cases[] = {
        {"local r = tine.kv.get('')", "user:1: tine.kv.get: the key must be a non-empty string"},
        {"\nlocal r = tine.kv.set('k', {})",
         "user:2: tine.kv.set: the value must be a string (encode tables with tine.json.encode)"},
        {"local r = tine.kv.set('k', 'v', { ttl = -1 })", "user:1: tine.kv.set: ttl must be a positive number of seconds"},
        {"local r = tine.kv.set('k', 'v', 'soon')",
         "user:1: tine.kv.set: the third argument must be { ttl = seconds } or a number of seconds"},
        {"local r = tine.kv.incr('n', 1.5)", "user:1: tine.kv.incr: by must be an integer"},
        {"local r = tine.kv.keys(3)", "user:1: tine.kv.keys: prefix must be a string"},
        {"local r = tine.http.request({})", "user:1: tine.http: url must be a non-empty string"},
        {"local r = tine.http.request({ url = 'http://x', method = 'get' })",
         "user:1: tine.http: method must be an upper-case word such as GET or POST"},
        {"local r = tine.http.request({ url = 'http://x', headers = { ['a b'] = 'c' } })",
         "user:1: tine.http: bad header name a b"},
        {"local r = tine.http.request({ url = 'http://x', timeout = 0 })",
         "user:1: tine.http: timeout must be a positive number of seconds"},
        {"local r = tine.invoke(nil, {})", "user:1: tine.invoke: the function name must be a non-empty string"},
        {"local r = tine.invoke_async('')", "user:1: tine.invoke_async: the function name must be a non-empty string"},
        {"local r = tine.invoke('b', { f = print })",
         "user:1: tine.invoke: payload: cannot encode a value of type function at $.f"},
        {"local r = tine.emit('t', { 0 / 0 })", "user:1: tine.emit: data: cannot encode NaN at $[1]"},
        {"local r = tine.emit('')", "user:1: tine.emit: the event type must be a non-empty string"},
    };
    for (size_t i = 0; i < N(cases); i++)
        expect_error(cases[i].code, NULL, 0, cases[i].error);
}

static void test_host_errors_name_the_caller(void **state)
{
    exchange_t ex[] = {{"{\"op\":\"kv.incr\"}", NULL, "{\"error\":\"the value of 's' is not an integer\"}", NULL}};
    expect_error("local x = 1\nlocal r = tine.kv.incr('s')", ex, N(ex),
                 "user:2: tine.kv.incr: the value of 's' is not an integer");
    exchange_t inv[] = {{"{\"op\":\"invoke\",\"fn\":\"b\"}", NULL, "{\"error\":\"b raised: b.lua:1: no (invocation 9)\"}",
                         NULL}};
    expect_result("local ok, err = pcall(function() local r = tine.invoke('b') return r end)\nreturn err", inv, N(inv),
                  "user:1: tine.invoke: b raised: b.lua:1: no (invocation 9)");
    exchange_t bad[] = {{"{\"op\":\"emit\"}", NULL, "[1]", NULL}};
    expect_error("local r = tine.emit('t')", bad, N(bad), "user:1: tine.emit: malformed host reply");
    /* Metadata that is not one binary object (JSON text, as before the
     * binary form; a truncated object) is refused the same way. */
    exchange_t text[] = {{"{\"op\":\"emit\"}", NULL, "raw:{\"id\":\"x\"}", NULL}};
    expect_error("local r = tine.emit('t')", text, N(text), "user:1: tine.emit: malformed host reply");
    exchange_t cut[] = {{"{\"op\":\"emit\"}", NULL, "raw:O\x01", NULL}};
    expect_error("local r = tine.emit('t')", cut, N(cut), "user:1: tine.emit: malformed host reply");
}

static void test_invoke(void **state)
{
    exchange_t json[] = {{"{\"op\":\"invoke\",\"fn\":\"b\"}", "{\"x\":[1,2]}",
                          "{\"status\":200,\"invocation_id\":\"i1\",\"json\":true}", "{\"y\":[],\"z\":\"w\"}"}};
    expect_result("local r, info = tine.invoke('b', { x = { 1, 2 } })\n"
                  "return table.concat({ tine.json.encode(r.y), r.z, info.status, info.invocation_id,"
                  " info.headers['content-type'] }, ' ')",
                  json, N(json), "[] w 200 i1 application/json");
    exchange_t text[] = {
        {"{\"op\":\"invoke\",\"fn\":\"t\"}", "null",
         "{\"status\":201,\"invocation_id\":\"i2\",\"json\":false,\"headers\":{\"content-type\":\"text/plain\"}}", "hi"},
        {"{\"op\":\"invoke\",\"fn\":\"n\"}", "\"s\"", "{\"status\":204,\"invocation_id\":\"i3\",\"json\":false}", NULL}};
    expect_result("local r, info = tine.invoke('t')\nlocal r2, info2 = tine.invoke('n', 's')\n"
                  "return r .. info.status .. info.headers['content-type'] .. tostring(r2) .. info2.status",
                  text, N(text), "hi201text/plainnil204");
    exchange_t async[] = {{"{\"op\":\"invoke\",\"fn\":\"b\",\"async\":true}", "[1]", "{\"invocation_id\":\"i4\"}", NULL}};
    expect_result("return tine.invoke_async('b', { 1 })", async, N(async), "i4");
}

static void test_http(void **state)
{
    exchange_t ex[] = {{"{\"op\":\"http\",\"url\":\"http://127.0.0.1:9/x\",\"method\":\"POST\","
                        "\"headers\":{\"x-a\":\"1\",\"n\":2},\"timeout_ms\":1500}",
                        "payload", "{\"status\":201,\"headers\":{\"content-type\":\"text/plain\"}}", "made"}};
    expect_result("local r = tine.http.request{ url = 'http://127.0.0.1:9/x', method = 'POST',"
                  " headers = { ['x-a'] = '1', n = 2 }, body = 'payload', timeout = 1.5 }\n"
                  "return r.status .. r.headers['content-type'] .. r.body",
                  ex, N(ex), "201text/plainmade");
    exchange_t get[] = {{"{\"op\":\"http\",\"url\":\"https://e.test/\",\"method\":\"GET\"}", "",
                         "{\"status\":200,\"headers\":{}}", ""}};
    expect_result("local r = tine.http.request{ url = 'https://e.test/' }\nreturn r.status .. '[' .. r.body .. ']'",
                  get, N(get), "200[]");
}

static void test_emit(void **state)
{
    exchange_t ex[] = {{"{\"op\":\"emit\",\"type\":\"order.paid\"}", "{\"total\":3}", "{\"id\":\"e-1\"}", NULL},
                       {"{\"op\":\"emit\",\"type\":\"ping\"}", "", "{\"id\":\"e-2\"}", NULL}};
    expect_result("return tine.emit('order.paid', { total = 3 }) .. tine.emit('ping')", ex, N(ex), "e-1e-2");
}

/* tine.invoke delivers the payload as the callee's body: it becomes the event. */
static void test_event_in_body(void **state)
{
    frame_t f = {0};
    static const char payload[] = "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}";
    uint64_t id = send_event(json_pack("{s:s, s:s, s:b}", "kind", "event", "trigger", "invoke", "event_in_body", 1),
                             payload, strlen(payload));
    recv_frame(&f);
    assert_true(f.id == id);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    json_t *got = json_loads(f.body, 0, NULL), *want = json_loads("{\"event\":{\"a\":[1,{}],\"c\":\"d\"}}", 0, NULL);
    if (!json_equal(got, want))
        fail_msg("event from the body: got %s", f.body);
    json_decref(got);
    json_decref(want);
    frame_dispose(&f);
    id = send_event(json_pack("{s:s, s:b}", "kind", "event", "event_in_body", 1), "{nope", 5);
    recv_frame(&f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_string_equal(meta_str(&f, "error"), "bad event: line 1 column 5: string or '}' expected near 'nope'");
    frame_dispose(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_an_invocation),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_argument_errors_name_the_caller),
        cmocka_unit_test(test_host_errors_name_the_caller),
        cmocka_unit_test(test_invoke),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_emit),
        cmocka_unit_test(test_event_in_body),
    };
    return cmocka_run_group_tests_name("sandbox/sdk host calls", tests, setup, teardown);
}
