/* Unit tests for sandbox/lua_host.c and sdk/lua/tine.lua: a forked child runs
 * sbx_lua_serve on one end of a socketpair, the test plays the invoker on the
 * other end and checks every frame it gets back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/alloc_fail.h"
#include "frames.h"

#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
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

static const char handler_lua[] =
    "local tine = require 'tine'\n"
    "local util = require 'lib.util'\n"
    "tine.log('loading', 'handler')\n"
    "local M = {}\n"
    "local count = 0\n"
    "local routes = {}\n"
    "routes['/string'] = function() return 'hello' end\n"
    "routes['/status'] = function()\n"
    "  return { status = 201, headers = { ['X-Thing'] = 'b', n = 5 }, body = 'made' }\n"
    "end\n"
    "routes['/json'] = function() return { status = 202, json = { a = 1 } } end\n"
    "routes['/json-ct'] = function()\n"
    "  return { status = 200, headers = { ['Content-Type'] = 'application/x+json' }, json = { 1, 2 } }\n"
    "end\n"
    "routes['/table'] = function() return { a = { 1, 2, 3 }, b = 'x' } end\n"
    "routes['/nil'] = function() return nil end\n"
    "routes['/number'] = function() return 42 end\n"
    "routes['/badstatus'] = function() return { status = 99 } end\n"
    "routes['/badheader'] = function() return { status = 200, headers = { x = 'a\\r\\nb' } } end\n"
    "routes['/error'] = function() local t = nil; return t.field end\n"
    "routes['/raise'] = function() error('boom') end\n"
    "routes['/count'] = function() count = count + 1; return tostring(count) end\n"
    "routes['/require'] = function() return util.greet('bundle') end\n"
    "routes['/echo'] = function(req, ctx)\n"
    "  local c = {}\n"
    "  for k, v in pairs(ctx) do if type(v) ~= 'function' then c[k] = v end end\n"
    "  c.remaining = ctx.remaining_ms()\n"
    "  return { req = req, ctx = c }\n"
    "end\n"
    "routes['/log'] = function()\n"
    "  tine.log('a', 1, nil, true)\n"
    "  tine.log.error('bad', 'thing')\n"
    "  print('printed', 2)\n"
    "  return 'logged'\n"
    "end\n"
    "routes['/eval'] = function(req, ctx) return assert(load('local req, ctx = ... ' .. req.body, '=eval'))(req, ctx) end\n"
    "function M.handle(req, ctx)\n"
    "  local r = routes[req.path]\n"
    "  if not r then return { status = 404, body = 'no route ' .. req.path } end\n"
    "  return r(req, ctx)\n"
    "end\n"
    "function M.on_event(ev, ctx)\n"
    "  return { got = ev, kind = type(ev), fn = ctx['function'] }\n"
    "end\n"
    "return M\n";

static const char util_lua[] = "local M = {}\n"
                               "function M.greet(who) return 'hello from ' .. who end\n"
                               "return M\n";

typedef struct {
    char dir[PATH_MAX];
    pid_t pid;
    int fd;
    uint64_t next_id;
} fixture_t;

typedef struct {
    uint8_t type;
    uint64_t id;
    json_t *meta;
    char *body;
    size_t body_len;
} frame_t;

static void frame_dispose(frame_t *f)
{
    json_decref(f->meta);
    free(f->body);
    memset(f, 0, sizeof *f);
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[PATH_MAX];
    assert_true(snprintf(path, sizeof path, "%s/%s", dir, rel) < (int)sizeof path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_bundle(fixture_t *fx)
{
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tine-lua-host-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    write_file(fx->dir, "handler.lua", handler_lua);
    write_file(fx->dir, "lib/util.lua", util_lua);
}

static void remove_bundle(fixture_t *fx)
{
    char cmd[PATH_MAX + 16];
    assert_true(snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir) < (int)sizeof cmd);
    assert_int_equal(system(cmd), 0);
}

static const char *sdk_dir(void)
{
    static char dir[PATH_MAX];
    const char *src = getenv("TINE_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/sdk/lua", src ? src : TINE_SOURCE_DIR);
    return dir;
}

/* In the sandbox start() forks next: every allocation of this many bytes
 * or more fails (alloc_fail.h); 0: none. */
static size_t child_alloc_fail_from;

/* Forks a sandbox serving `file`:`export` of the fixture's bundle. */
static void start(fixture_t *fx, const char *file, const char *export, const char *env_json)
{
    int sv[2];
    pid_t pid = fork_with_socketpair(sv);
    if (pid == 0) {
        if (child_alloc_fail_from)
            alloc_fail_from(child_alloc_fail_from);
        sbx_spec_t spec = {
            .app = "shop",
            .version = 3,
            .function = "get_item",
            .bundle_dir = fx->dir,
            .handler_file = file,
            .handler_export = export,
            .memory_mb = 128,
            .timeout_ms = 3000,
            .env_json = env_json,
        };
        _exit(sbx_lua_serve(sbx_lua_prepare(sdk_dir()), (sbx_fds_t){sv[1], sv[1]}, &spec));
    }
    fx->pid = pid;
    fx->fd = sv[0];
    fx->next_id = 100;
}

/* Closes the socket and returns the sandbox's exit status. */
static int stop(fixture_t *fx)
{
    close(fx->fd);
    int st;
    assert_int_equal(waitpid(fx->pid, &st, 0), fx->pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void recv_frame(fixture_t *fx, frame_t *f)
{
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(fx->fd, &h, &p, SBX_WIRE_MAX_FRAME), 0);
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
    json_t *v = json_object_get(f->meta, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Sends an INVOKE with the given meta (taken) and body. */
static uint64_t send_invoke(fixture_t *fx, json_t *meta, const char *body)
{
    uint64_t id = fx->next_id++;
    write_invoke(fx->fd, id, meta, body, body ? strlen(body) : 0);
    json_decref(meta);
    return id;
}

static json_t *http_meta(const char *path)
{
    /* ctx as the invoker sends it: the invocation id, and a timeout when it
     * is shorter than the function's (a nested call's deadline); the
     * sandbox fills the rest from its spec. */
    return json_pack("{s:s, s:s, s:s, s:{s:s}, s:s, s:{s:s, s:s}, s:{s:s, s:i}}", "kind", "http", "method", "POST",
                     "path", path, "params", "id", "3", "query", "a=1&b=x%20y&b=z+w&flag&=&c=%zz", "headers", "host",
                     "example.test", "x-trace", "t1", "ctx", "invocation_id", "inv-7", "timeout_ms", 2500);
}

/* Invokes `path` with `body`, collects LOG frames (up to max_logs, into logs)
 * and returns the RESULT or ERROR frame in *out. Returns the number of logs. */
static int call_logs(fixture_t *fx, const char *path, const char *body, frame_t *out, frame_t *logs, int max_logs)
{
    uint64_t id = send_invoke(fx, http_meta(path), body);
    int n = 0;
    for (;;) {
        frame_t f = {0};
        recv_frame(fx, &f);
        assert_true(f.id == id);
        if (f.type == SBX_MSG_LOG) {
            if (n < max_logs)
                logs[n] = f;
            else
                frame_dispose(&f);
            n++;
            continue;
        }
        assert_true(f.type == SBX_MSG_RESULT || f.type == SBX_MSG_ERROR);
        *out = f;
        return n;
    }
}

static void call(fixture_t *fx, const char *path, const char *body, frame_t *out)
{
    call_logs(fx, path, body, out, NULL, 0);
}

/* Runs Lua source in the sandbox (through the /eval route) and expects a RESULT
 * whose body equals `expect`. */
static void eval_expect(fixture_t *fx, const char *code, const char *expect)
{
    frame_t f = {0};
    call(fx, "/eval", code, &f);
    if (f.type != SBX_MSG_RESULT)
        fail_msg("eval of [%s] failed: %s", code, meta_str(&f, "error"));
    if (strcmp(f.body, expect) != 0)
        fail_msg("eval of [%s]: got '%s', expected '%s'", code, f.body, expect);
    frame_dispose(&f);
}

/* Runs Lua source and expects an ERROR whose message contains `needle`. */
static void eval_error(fixture_t *fx, const char *code, const char *needle)
{
    frame_t f = {0};
    call(fx, "/eval", code, &f);
    if (f.type != SBX_MSG_ERROR)
        fail_msg("eval of [%s] did not fail: %s", code, f.body);
    const char *msg = meta_str(&f, "error");
    assert_non_null(msg);
    if (strstr(msg, needle) == NULL)
        fail_msg("eval of [%s]: error '%s' lacks '%s'", code, msg, needle);
    frame_dispose(&f);
}

static const char *header(const frame_t *f, const char *name)
{
    json_t *v = json_object_get(json_object_get(f->meta, "headers"), name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int status(const frame_t *f)
{
    return (int)json_integer_value(json_object_get(f->meta, "status"));
}

/* ------------------------------------------------------------ fixture */

static fixture_t *main_fx;

static int group_setup(void **state)
{
    main_fx = calloc(1, sizeof *main_fx);
    make_bundle(main_fx);
    start(main_fx, "handler.lua", "handle", "{\"GREETING\":\"hi\",\"N\":5,\"NESTED\":{\"a\":[1,2]}}");
    /* Module load logs with id 0, then READY. */
    frame_t f = {0};
    recv_frame(main_fx, &f);
    assert_int_equal(f.type, SBX_MSG_LOG);
    assert_int_equal(f.id, 0);
    assert_string_equal(f.body, "loading handler");
    frame_dispose(&f);
    recv_frame(main_fx, &f);
    if (f.type != SBX_MSG_READY)
        fail_msg("expected READY, got type %d: %s", f.type, meta_str(&f, "error"));
    assert_int_equal(json_integer_value(json_object_get(f.meta, "pid")), main_fx->pid);
    assert_true(json_is_integer(json_object_get(f.meta, "init_us")));
    assert_true(json_integer_value(json_object_get(f.meta, "init_us")) < 5000000);
    frame_dispose(&f);
    *state = main_fx;
    return 0;
}

static int group_teardown(void **state)
{
    int st = stop(main_fx);
    remove_bundle(main_fx);
    free(main_fx);
    return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

static void test_return_string(void **state)
{
    frame_t f = {0};
    call(*state, "/string", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_int_equal(status(&f), 200);
    assert_string_equal(header(&f, "content-type"), "text/plain; charset=utf-8");
    assert_string_equal(f.body, "hello");
    frame_dispose(&f);
}

static void test_return_status_headers_body(void **state)
{
    frame_t f = {0};
    call(*state, "/status", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_int_equal(status(&f), 201);
    assert_string_equal(header(&f, "x-thing"), "b");
    assert_string_equal(header(&f, "n"), "5");
    assert_null(header(&f, "content-type"));
    assert_string_equal(f.body, "made");
    frame_dispose(&f);
}

static void test_return_json_field(void **state)
{
    frame_t f = {0};
    call(*state, "/json", NULL, &f);
    assert_int_equal(status(&f), 202);
    assert_string_equal(header(&f, "content-type"), "application/json");
    assert_string_equal(f.body, "{\"a\":1}");
    frame_dispose(&f);

    call(*state, "/json-ct", NULL, &f);
    assert_int_equal(status(&f), 200);
    assert_string_equal(header(&f, "content-type"), "application/x+json");
    assert_int_equal(json_object_size(json_object_get(f.meta, "headers")), 1);
    assert_string_equal(f.body, "[1,2]");
    frame_dispose(&f);
}

static void test_return_plain_table(void **state)
{
    frame_t f = {0};
    call(*state, "/table", NULL, &f);
    assert_int_equal(status(&f), 200);
    assert_string_equal(header(&f, "content-type"), "application/json");
    json_t *body = json_loads(f.body, 0, NULL);
    assert_non_null(body);
    json_t *expect = json_pack("{s:[i,i,i], s:s}", "a", 1, 2, 3, "b", "x");
    assert_true(json_equal(body, expect));
    json_decref(body);
    json_decref(expect);
    frame_dispose(&f);
}

static void test_return_nil(void **state)
{
    frame_t f = {0};
    call(*state, "/nil", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_int_equal(status(&f), 204);
    assert_int_equal(f.body_len, 0);
    frame_dispose(&f);
}

static void test_return_bad_values(void **state)
{
    frame_t f = {0};
    call(*state, "/number", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_string_equal(meta_str(&f, "error"), "handler returned a number; expected a table, string or nil");
    frame_dispose(&f);

    call(*state, "/badstatus", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_non_null(strstr(meta_str(&f, "error"), "bad status 99"));
    frame_dispose(&f);

    call(*state, "/badheader", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_non_null(strstr(meta_str(&f, "error"), "CR, LF"));
    frame_dispose(&f);

    eval_error(*state, "return { status = 200.5 }", "bad status 200.5");
    eval_error(*state, "return { status = '200' }", "bad status 200");
    eval_error(*state, "return { status = 200, body = {} }", "bad response body");
    eval_error(*state, "return { status = 200, headers = { x = {} } }", "bad response header 'x'");
    eval_error(*state, "return true", "handler returned a boolean");
    eval_error(*state, "local t = {}; t.t = t; return t", "cyclic");
}

static void test_request_fields(void **state)
{
    frame_t f = {0};
    call(*state, "/echo", "raw\x01 body", &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    json_t *b = json_loads(f.body, 0, NULL);
    assert_non_null(b);
    json_t *req = json_object_get(b, "req");
    assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(req, "path")), "/echo");
    assert_string_equal(json_string_value(json_object_get(req, "body")), "raw\x01 body");
    assert_string_equal(json_string_value(json_object_get(json_object_get(req, "params"), "id")), "3");
    assert_string_equal(json_string_value(json_object_get(req, "query_string")), "a=1&b=x%20y&b=z+w&flag&=&c=%zz");
    json_t *q = json_object_get(req, "query");
    assert_string_equal(json_string_value(json_object_get(q, "a")), "1");
    assert_string_equal(json_string_value(json_object_get(q, "b")), "z w"); /* the last one wins */
    assert_string_equal(json_string_value(json_object_get(q, "flag")), "");
    assert_string_equal(json_string_value(json_object_get(q, "c")), "%zz");
    json_t *h = json_object_get(req, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "host")), "example.test");
    assert_string_equal(json_string_value(json_object_get(h, "x-trace")), "t1");

    json_t *ctx = json_object_get(b, "ctx");
    assert_string_equal(json_string_value(json_object_get(ctx, "app")), "shop");
    assert_int_equal(json_integer_value(json_object_get(ctx, "version")), 3);
    assert_string_equal(json_string_value(json_object_get(ctx, "function")), "get_item");
    assert_string_equal(json_string_value(json_object_get(ctx, "invocation_id")), "inv-7");
    assert_int_equal(json_integer_value(json_object_get(ctx, "timeout_ms")), 2500); /* the invoker's, over the spec's */
    assert_int_equal(json_integer_value(json_object_get(ctx, "memory_mb")), 128);
    json_int_t rem = json_integer_value(json_object_get(ctx, "remaining"));
    assert_true(rem > 1500 && rem <= 2500);
    json_decref(b);
    frame_dispose(&f);

    /* An empty body is "". */
    call(*state, "/echo", NULL, &f);
    b = json_loads(f.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "req"), "body")), "");
    json_decref(b);
    frame_dispose(&f);
}

static void test_remaining_ms_counts_down(void **state)
{
    eval_expect(*state,
                "local a = ctx.remaining_ms(); local t = os.clock() + 0.05\n"
                "while os.clock() < t do end\n"
                "local b = ctx.remaining_ms()\n"
                "return (a - b >= 40 and a - b < 1000 and b == math.floor(b)) and 'ok' or (a .. ' ' .. b)",
                "ok");
}

static void test_error_then_next_call_works(void **state)
{
    frame_t f = {0};
    call(*state, "/error", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    const char *msg = meta_str(&f, "error");
    assert_non_null(strstr(msg, "handler.lua:20: attempt to index local 't'"));
    const char *trace = meta_str(&f, "trace");
    assert_non_null(trace);
    assert_non_null(strstr(trace, "stack traceback"));
    assert_non_null(strstr(trace, "handler.lua:20"));
    frame_dispose(&f);

    call(*state, "/raise", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_string_equal(meta_str(&f, "error"), "handler.lua:21: boom");
    frame_dispose(&f);

    eval_error(*state, "error({})", "(error object is a table value)");
    eval_error(*state, "error(setmetatable({}, {__tostring = function() return 'custom' end}))", "custom");

    call(*state, "/string", NULL, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_string_equal(f.body, "hello");
    frame_dispose(&f);
}

static void test_state_persists(void **state)
{
    frame_t f = {0};
    call(*state, "/count", NULL, &f);
    int first = atoi(f.body);
    frame_dispose(&f);
    call(*state, "/count", NULL, &f);
    assert_int_equal(atoi(f.body), first + 1);
    frame_dispose(&f);
    eval_expect(*state, "counter_g = (counter_g or 0) + 1; return tostring(counter_g)", "1");
    eval_expect(*state, "counter_g = (counter_g or 0) + 1; return tostring(counter_g)", "2");
}

static void test_require_from_bundle(void **state)
{
    frame_t f = {0};
    call(*state, "/require", NULL, &f);
    assert_string_equal(f.body, "hello from bundle");
    frame_dispose(&f);
    eval_expect(*state, "return tostring(require('lib.util') == require('lib.util'))", "true");
    eval_expect(*state, "return tostring(require('handler') ~= nil)", "true");
    eval_error(*state, "require 'no.such'", "no file 'no/such.lua' in the bundle");
    /* Dots become slashes: no module name leaves the bundle. */
    eval_error(*state, "require '../../../../../../etc/hosts'", "not found");
    eval_expect(*state, "return package.cpath", "");
}

static void test_log_frames(void **state)
{
    frame_t logs[4] = {{0}};
    frame_t f = {0};
    int n = call_logs(*state, "/log", NULL, &f, logs, 4);
    assert_int_equal(n, 3);
    assert_string_equal(meta_str(&logs[0], "level"), "info");
    assert_string_equal(logs[0].body, "a 1 nil true");
    assert_string_equal(meta_str(&logs[1], "level"), "error");
    assert_string_equal(logs[1].body, "bad thing");
    assert_string_equal(meta_str(&logs[2], "level"), "info");
    assert_string_equal(logs[2].body, "printed 2");
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_string_equal(f.body, "logged");
    for (int i = 0; i < 3; i++)
        frame_dispose(&logs[i]);
    frame_dispose(&f);
}

static void test_log_truncates_long_lines(void **state)
{
    frame_t log = {0}, f = {0};
    /* 10000 two-byte characters: the cut must not split one. */
    int n = call_logs(*state, "/eval", "require('tine').log(string.rep('\xc3\xa9', 10000)); return 'x'", &f, &log, 1);
    assert_int_equal(n, 1);
    assert_true(log.body_len <= 16384);
    assert_true(log.body_len >= 16380);
    assert_memory_equal(log.body + log.body_len - 3, "\xe2\x80\xa6", 3);
    assert_memory_equal(log.body + log.body_len - 5, "\xc3\xa9", 2);
    json_t *s = json_stringn(log.body, log.body_len);
    assert_non_null(s); /* still valid UTF-8 */
    json_decref(s);
    frame_dispose(&log);
    frame_dispose(&f);
}

static void test_json_encode(void **state)
{
    fixture_t *fx = *state;
    eval_expect(fx, "local j = require('tine').json; return j.encode({1, 2, 'x', true, false})", "[1,2,\"x\",true,false]");
    eval_expect(fx, "return require('tine').json.encode({})", "{}");
    eval_expect(fx, "local j = require('tine').json; return j.encode(j.array({}))", "[]");
    eval_expect(fx, "local j = require('tine').json; return j.encode(j.array())", "[]");
    eval_expect(fx, "local j = require('tine').json; return j.encode({a = j.null})", "{\"a\":null}");
    eval_expect(fx, "return require('tine').json.encode({[3] = 'c'})", "{\"3\":\"c\"}");
    eval_expect(fx, "local j = require('tine').json; return j.encode(j.array({[1] = 'a', [3] = 'c'}))",
                "[\"a\",null,\"c\"]");
    eval_expect(fx, "return require('tine').json.encode({[2.5] = 1})", "{\"2.5\":1}");
    eval_expect(fx, "return require('tine').json.encode(0.1)", "0.1");
    eval_expect(fx, "return require('tine').json.encode(1/3)", "0.3333333333333333");
    eval_expect(fx, "return require('tine').json.encode(2^53 + 2)", "9007199254740994");
    eval_expect(fx, "return require('tine').json.encode(-12)", "-12");
    eval_expect(fx, "return require('tine').json.encode(1e300)", "1e+300");
    eval_expect(fx, "return require('tine').json.encode('q\"\\\\\\n\\0\\1\xc3\xa9/')",
                "\"q\\\"\\\\\\n\\u0000\\u0001\xc3\xa9/\"");
    eval_expect(fx, "return require('tine').json.encode(nil)", "null");
    eval_error(fx, "return require('tine').json.encode(0/0)", "cannot encode NaN");
    eval_error(fx, "return require('tine').json.encode({x = {1/0}})", "cannot encode infinity at $.x[1]");
    eval_error(fx, "local t = {a = {}}; t.a.b = t; return require('tine').json.encode(t)",
               "tine.json.encode: cannot encode a cyclic table at $.a.b");
    eval_error(fx, "return require('tine').json.encode({[true] = 1})", "cannot encode a table key of type boolean");
    eval_error(fx, "return require('tine').json.encode({f = print})", "cannot encode a value of type function at $.f");
    eval_error(fx, "return require('tine').json.encode('\\255')", "not valid UTF-8");
    eval_error(fx,
               "local t = {}; local c = t; for i = 1, 200 do c[1] = {}; c = c[1] end\n"
               "return require('tine').json.encode(t)",
               "nesting deeper than 128");
    eval_expect(fx,
                "local t = {}; local c = t; for i = 1, 127 do c[1] = {}; c = c[1] end\n"
                "return #require('tine').json.encode(t) .. ''",
                "256");
    /* A table shared twice is not a cycle. */
    eval_expect(fx, "local s = {1}; return require('tine').json.encode({s, s})", "[[1],[1]]");
}

static void test_json_decode(void **state)
{
    fixture_t *fx = *state;
    eval_expect(fx,
                "local j = require('tine').json\n"
                "local v = j.decode('{\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\\u00e9\",\"t\":true,\"n\":null}')\n"
                "assert(v.a[1] == 1 and v.a[2] == 2 and v.a[3].b == nil and v.t == true and v.n == nil)\n"
                "return v.s",
                "x\xc3\xa9");
    eval_expect(fx, "local j = require('tine').json; return j.encode(j.decode('[]')) .. j.encode(j.decode('{}'))",
                "[]{}");
    eval_expect(fx, "return tostring(require('tine').json.decode('12'))", "12");
    eval_expect(fx, "return tostring(require('tine').json.decode('null'))", "nil");
    eval_expect(fx, "return string.format('%.0f', require('tine').json.decode('9007199254740993'))",
                "9007199254740992");
    eval_expect(fx, "return require('tine').json.encode(require('tine').json.decode('123456789012345678901234'))",
                "1.2345678901234569e+23");
    eval_expect(fx, "return #require('tine').json.decode('\"a\\\\u0000b\"') .. ''", "3");
    eval_error(fx, "return require('tine').json.decode('{\"a\": tru}')", "tine.json.decode: line 1 column ");
    eval_error(fx, "return require('tine').json.decode('')", "tine.json.decode: line 1");
    eval_error(fx, "return require('tine').json.decode(string.rep('[', 200) .. string.rep(']', 200))",
               "tine.json.decode: nesting deeper than 128");
    /* Errors point at the caller's line (unless it was a tail call). */
    eval_error(fx, "local v = require('tine').json.decode('x'); return v", "eval:1: tine.json.decode:");
    /* Round trip of a nested value. */
    eval_expect(fx,
                "local j = require('tine').json\n"
                "local s = '{\"a\":[1,2.5,\"x\",false,{\"b\":[]}],\"c\":{}}'\n"
                "local v = j.decode(s)\n"
                "local again = j.decode(j.encode(v))\n"
                "return j.encode(again.a) .. j.encode(again.c)",
                "[1,2.5,\"x\",false,{\"b\":[]}]{}");
}

static void test_env(void **state)
{
    fixture_t *fx = *state;
    eval_expect(fx, "local e = require('tine').env; return e.GREETING .. e.N .. e.NESTED.a[2]", "hi52");
    eval_error(fx, "require('tine').env.GREETING = 'x'", "tine.env is read-only (tried to set 'GREETING')");
    eval_error(fx, "require('tine').env.NEW = 'x'", "tine.env is read-only");
    eval_expect(fx,
                "local n = 0; for k, v in pairs(require('tine').env) do n = n + 1 end\n"
                "return n .. ''",
                "3");
    eval_expect(fx, "return tostring(getmetatable(require('tine').env))", "false");
    eval_expect(fx, "return require('tine').version", "0.1.0");
}

static void test_safe_globals(void **state)
{
    fixture_t *fx = *state;
    eval_expect(fx,
                "return tostring(io) .. tostring(debug) .. tostring(os.execute) .. tostring(os.getenv) ..\n"
                "  tostring(string.dump) .. tostring(dofile) .. tostring(loadfile) .. tostring(package.loadlib)",
                "nilnilnilnilnilnilnilnil");
    eval_expect(fx, "return tostring(pcall(require, 'ffi'))", "false");
    eval_expect(fx, "return tostring(pcall(require, 'jit.util'))", "false");
    eval_expect(fx, "return (select(2, load('\\27LJ\\2\\0')))", "attempt to load chunk with wrong mode");
    eval_expect(fx, "return (select(2, loadstring('\\27LJ\\2\\0')))", "attempt to load chunk with wrong mode");
    eval_expect(fx, "return load('return 7')() .. ''", "7");
    eval_expect(fx, "return type(os.time()) .. type(os.clock())", "numbernumber");
    /* No jit control: only facts about the VM are left. */
    eval_expect(fx, "local n = 0 for k in pairs(jit) do n = n + 1 end return n .. type(jit.version) .. type(jit.arch)",
                "4stringstring");
    eval_expect(fx, "return tostring(jit.on) .. tostring(jit.flush) .. tostring(package.loaded['jit.opt'])",
                "nilnilnil");
    eval_expect(fx, "return tostring(require('jit') == jit)", "true");
    eval_expect(fx, "return tostring(package.searchpath)", "nil");
    /* collectgarbage: collecting and counting only. */
    eval_expect(fx, "collectgarbage() collectgarbage('step') return type(collectgarbage('count'))", "number");
    eval_error(fx, "local ok, e = pcall(collectgarbage, 'stop') error(e, 0)",
               "collectgarbage('stop') is not allowed in a sandbox");
    eval_error(fx, "local ok, e = pcall(collectgarbage, 'setpause', 1000) error(e, 0)",
               "collectgarbage('setpause') is not allowed");
    /* getfenv/setfenv: the function's own code only. */
    eval_expect(fx, "return tostring(getfenv() == _G) .. tostring(getfenv(0) == _G) .. tostring(getfenv(1) == _G)",
                "truetruetrue");
    eval_expect(fx, "local function f() return x end setfenv(f, {x = 'own env'}) return f()", "own env");
    eval_expect(fx, "local g, eq, t = getfenv, rawequal, {} setfenv(1, t) return eq(g(1), t) and 'set' or 'not set'",
                "set");
    eval_error(fx, "return getfenv(require('tine').kv.get)", "getfenv: not allowed on the functions of the tine runtime");
    eval_error(fx, "return setfenv(require('tine').kv.set, {})", "setfenv: not allowed on the functions of the tine runtime");
    eval_error(fx, "return getfenv(print)", "getfenv: not allowed on the functions of the tine runtime");
    eval_error(fx, "return setfenv(0, {})", "the thread environment cannot be changed");
    eval_error(fx, "return getfenv(50)", "bad argument #1 to 'getfenv' (invalid level)");
    eval_error(fx, "return getfenv('x')", "bad argument #1 to 'getfenv' (function or level expected)");
}

static void test_event_invoke(void **state)
{
    fixture_t fx;
    make_bundle(&fx);
    start(&fx, "handler.lua", "on_event", NULL);
    frame_t f = {0};
    recv_frame(&fx, &f); /* the module-load LOG */
    frame_dispose(&f);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_READY);
    frame_dispose(&f);

    json_t *meta = json_pack("{s:s, s:{s:s, s:[i, n, s], s:n}, s:{s:s, s:i}}", "kind", "event", "event", "type",
                             "order.created", "data", 1, "x", "gone", "ctx", "function", "on_order", "timeout_ms", 100);
    uint64_t id = send_invoke(&fx, meta, NULL);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    assert_true(f.id == id);
    json_t *b = json_loads(f.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(b, "kind")), "table");
    assert_string_equal(json_string_value(json_object_get(b, "fn")), "on_order");
    json_t *expect = json_pack("{s:s, s:[i, n, s]}", "type", "order.created", "data", 1, "x");
    assert_true(json_equal(json_object_get(b, "got"), expect));
    json_decref(expect);
    json_decref(b);
    frame_dispose(&f);

    /* JSON null as the event is nil. */
    send_invoke(&fx, json_pack("{s:s, s:n}", "kind", "event", "event"), NULL);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    b = json_loads(f.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(b, "kind")), "nil");
    assert_string_equal(json_string_value(json_object_get(b, "fn")), "get_item"); /* from the spec */
    json_decref(b);
    frame_dispose(&f);

    send_invoke(&fx, json_pack("{s:s}", "kind", "cron?"), NULL);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_non_null(strstr(meta_str(&f, "error"), "bad invocation kind"));
    frame_dispose(&f);

    /* Metadata that is not a well-formed binary object (meta.h) gets an
     * ERROR, not a crash: text, a count past the end, a string longer than
     * the bytes, bytes left over. */
    static const char *const bad[] = {"{nope", "O\x05\0\0\0", "O\x01\0\0\0\x01\0\0\0kS\xff\0\0\0ab",
                                      "O\0\0\0\0N"};
    static const size_t bad_len[] = {5, 5, 16, 6};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sbx_frame_write(fx.fd, SBX_MSG_INVOKE, 9, bad[i], bad_len[i], NULL, 0), 0);
        recv_frame(&fx, &f);
        assert_int_equal(f.type, SBX_MSG_ERROR);
        assert_int_equal(f.id, 9);
        assert_non_null(strstr(meta_str(&f, "error"), "bad invocation metadata"));
        frame_dispose(&f);
    }
    /* ... and the sandbox still serves. */
    send_invoke(&fx, json_pack("{s:s, s:{s:s}}", "kind", "event", "event", "type", "again"), NULL);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_RESULT);
    frame_dispose(&f);

    assert_int_equal(stop(&fx), 0);
    remove_bundle(&fx);
}

/* Starts a sandbox expected to fail loading; returns its error message. */
static char *load_failure(const char *file, const char *text, const char *export)
{
    fixture_t fx;
    make_bundle(&fx);
    if (text != NULL)
        write_file(fx.dir, file, text);
    start(&fx, file, export, NULL);
    frame_t f = {0};
    do {
        frame_dispose(&f);
        recv_frame(&fx, &f);
    } while (f.type == SBX_MSG_LOG);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_int_equal(f.id, 0);
    char *msg = strdup(meta_str(&f, "error"));
    frame_dispose(&f);
    int st;
    assert_int_equal(waitpid(fx.pid, &st, 0), fx.pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    close(fx.fd);
    remove_bundle(&fx);
    return msg;
}

static void test_load_failures(void **state)
{
    char *m = load_failure("src/bad.lua", "local M = {}\n\nfunction M.get(\nreturn M\n", "get");
    assert_non_null(strstr(m, "src/bad.lua:4:"));
    free(m);

    m = load_failure("handler.lua", NULL, "get");
    assert_string_equal(m, "module 'handler.lua' has no function 'get'");
    free(m);

    m = load_failure("src/x.lua", "local M = {}\nlocal x = nil\nreturn x.y\n", "get");
    assert_non_null(strstr(m, "src/x.lua:3: attempt to index local 'x'"));
    free(m);

    m = load_failure("src/n.lua", "return 5\n", "get");
    assert_string_equal(m, "module 'src/n.lua' returned a number; expected a table of functions");
    free(m);

    m = load_failure("src/none.lua", NULL, "get");
    assert_string_equal(m, "cannot read src/none.lua: No such file or directory");
    free(m);

    m = load_failure("../etc/x.lua", NULL, "get");
    assert_string_equal(m, "bad handler file '../etc/x.lua': expected a path inside the bundle");
    free(m);

    m = load_failure("src/v.lua", "return { get = 'not a function' }\n", "get");
    assert_string_equal(m, "module 'src/v.lua' has no function 'get'");
    free(m);
}

static void test_shebang_and_bom(void **state)
{
    fixture_t fx;
    make_bundle(&fx);
    write_file(fx.dir, "s.lua", "\xEF\xBB\xBF#!/usr/bin/env luajit\nlocal M = {}\nfunction M.h() error('x') end\nreturn M\n");
    start(&fx, "s.lua", "h", NULL);
    frame_t f = {0};
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_READY);
    frame_dispose(&f);
    send_invoke(&fx, http_meta("/"), NULL);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_ERROR);
    assert_string_equal(meta_str(&f, "error"), "s.lua:3: x"); /* line numbers survive the skipped lines */
    frame_dispose(&f);
    assert_int_equal(stop(&fx), 0);
    remove_bundle(&fx);
}

static void test_protocol_violation_exits(void **state)
{
    fixture_t fx;
    make_bundle(&fx);
    start(&fx, "lib/util.lua", "greet", NULL);
    frame_t f = {0};
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_READY);
    frame_dispose(&f);
    assert_int_equal(write(fx.fd, "garbage garbage garbage garbage", 31), 31);
    assert_int_equal(stop(&fx), 1);
    remove_bundle(&fx);
}

/* Out of memory in the sandbox's own buffers (not Lua's heap, which LuaJIT
 * keeps apart): every C allocation of 1 MiB or more fails. The sandbox
 * answers each call with an ERROR frame and keeps serving. */
static void test_out_of_memory_answers(void **state)
{
    (void)state;
    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: skipped\n");
        return;
    }
    fixture_t fx;
    make_bundle(&fx);
    child_alloc_fail_from = 1u << 20;
    start(&fx, "handler.lua", "handle", NULL);
    child_alloc_fail_from = 0;
    frame_t f = {0};
    recv_frame(&fx, &f); /* the module's log line */
    frame_dispose(&f);
    recv_frame(&fx, &f);
    assert_int_equal(f.type, SBX_MSG_READY);
    frame_dispose(&f);

    /* Lua builds the 2 MiB string; the JSON buffer cannot hold it. */
    eval_error(&fx, "return require('tine').json.encode(string.rep('x', 2^21))", "out of memory");
    eval_error(&fx, "return { big = string.rep('x', 2^21) }", "out of memory");
    /* An error message too big to quote: the ERROR frame says so (this
     * aborted the sandbox when its buffers aborted outside protected calls). */
    eval_error(&fx, "error(string.rep('x', 2^21))", "out of memory (reporting an error of");
    /* Small work still works. */
    eval_expect(&fx, "return require('tine').json.encode({ a = string.rep('y', 1000) }):sub(1, 9)", "{\"a\":\"yyy");
    frame_t r = {0};
    call(&fx, "/string", NULL, &r);
    assert_int_equal(r.type, SBX_MSG_RESULT);
    assert_string_equal(r.body, "hello");
    frame_dispose(&r);
    assert_int_equal(stop(&fx), 0);
    remove_bundle(&fx);
}

static void test_prepare_bad_sdk_dir(void **state)
{
    assert_null(sbx_lua_prepare("/nonexistent/tine-sdk"));
    sbx_lua_t *L = sbx_lua_prepare(sdk_dir());
    assert_non_null(L);
    sbx_lua_free(L);
    sbx_lua_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_return_string),
        cmocka_unit_test(test_return_status_headers_body),
        cmocka_unit_test(test_return_json_field),
        cmocka_unit_test(test_return_plain_table),
        cmocka_unit_test(test_return_nil),
        cmocka_unit_test(test_return_bad_values),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_remaining_ms_counts_down),
        cmocka_unit_test(test_error_then_next_call_works),
        cmocka_unit_test(test_state_persists),
        cmocka_unit_test(test_require_from_bundle),
        cmocka_unit_test(test_log_frames),
        cmocka_unit_test(test_log_truncates_long_lines),
        cmocka_unit_test(test_json_encode),
        cmocka_unit_test(test_json_decode),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_safe_globals),
        cmocka_unit_test(test_event_invoke),
        cmocka_unit_test(test_load_failures),
        cmocka_unit_test(test_shebang_and_bom),
        cmocka_unit_test(test_protocol_violation_exits),
        cmocka_unit_test(test_out_of_memory_answers),
        cmocka_unit_test(test_prepare_bad_sdk_dir),
    };
    return cmocka_run_group_tests_name("sandbox/lua_host", tests, group_setup, group_teardown);
}
