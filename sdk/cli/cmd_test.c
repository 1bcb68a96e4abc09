/* `tine test [DIR]` (docs/testing.md): starts an ephemeral node of its own
 * (ephemeral.c), deploys the app of DIR and runs its tests: Lua test files
 * DIR/tests/NAME_test.lua, run here in LuaJIT with a small API (the prelude
 * below; the I/O in C), and declarative cases DIR/tests/NAME.yaml (a request,
 * the status, headers, body or JSON subset expected). Prints one line per
 * test and "N passed, N failed"; exits 1 when a test failed; --junit FILE
 * writes a JUnit XML report. */
#include "cli.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tine_common.h"

#define TEST_WAIT_DEFAULT_S 5.0

/* One test's outcome, for the summary and the JUnit report. */
typedef struct {
    char *file;    /* "tests/hello_test.lua" */
    char *name;
    char *failure; /* NULL: passed */
    double seconds;
} test_result_t;

/* What the runner holds while the tests run. */
typedef struct {
    cli_ctx_t *ctx;
    const char *app;
    const char *url; /* the node's */
    tine_client_t *client;
    redisContext *redis;
    test_result_t *results;
    size_t nresults, cap;
    int64_t since_ms;  /* t.wait_invocation looks at invocations from then on */
    json_t *seen_ids;  /* activation ids t.wait_invocation returned already */
} runner_t;

static double now_s(void)
{
    return (double)tine_now_ns() / 1e9;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Records a result (strings copied) and prints its line. */
static void report(runner_t *r, const char *file, const char *name, const char *failure, double seconds)
{
    if (r->nresults == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->results = xrealloc(r->results, r->cap * sizeof(*r->results));
    }
    test_result_t *t = &r->results[r->nresults++];
    t->file = xstrdup(file);
    t->name = xstrdup(name);
    t->failure = failure ? xstrdup(failure) : NULL;
    t->seconds = seconds;
    if (failure) {
        fprintf(r->ctx->out, "  FAIL  %s (%.0f ms)\n", name, seconds * 1000);
        /* The message indented under the name, line by line. */
        for (const char *p = failure; *p;) {
            size_t n = strcspn(p, "\n");
            fprintf(r->ctx->out, "        %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    } else {
        fprintf(r->ctx->out, "  ok    %s (%.0f ms)\n", name, seconds * 1000);
    }
}

/* ----------------------------------------------------------------- HTTP */

typedef struct {
    tine_buf_t body;
    json_t *headers; /* lower-case name -> value (the last one) */
} http_answer_t;

static size_t on_http_body(char *p, size_t size, size_t n, void *data)
{
    tine_buf_append(&((http_answer_t *)data)->body, p, size * n);
    return size * n;
}

static size_t on_http_header(char *p, size_t size, size_t n, void *data)
{
    http_answer_t *a = data;
    size_t len = size * n;
    const char *colon = memchr(p, ':', len);
    if (colon != NULL) {
        char *name = xstrndup(p, (size_t)(colon - p));
        for (char *c = name; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        const char *v = colon + 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        json_object_set_new(a->headers, name, json_stringn(v, (size_t)(end - v)));
        free(name);
    } else if (len > 5 && memcmp(p, "HTTP/", 5) == 0) {
        json_object_clear(a->headers); /* a 100 Continue's, or a redirect's */
    }
    return len;
}

/* Sends one request to the node (path from "/", body may be NULL; headers a
 * JSON object of strings, may be NULL). Returns the status, or -1 with a
 * message in err. */
static long http_call(runner_t *r, const char *method, const char *path, json_t *headers, const char *body,
                      size_t body_len, http_answer_t *a, char *err, size_t errlen)
{
    tine_buf_init(&a->body);
    a->headers = json_object();
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(err, errlen, "cannot make an HTTP client");
        return -1;
    }
    char *url = xasprintf("%s%s", r->url, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        char *line = json_is_string(v) ? xasprintf("%s: %s", k, json_string_value(v)) : xasprintf("%s:", k);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_http_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    }
    CURLcode cc = curl_easy_perform(c);
    long status = -1;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
    return status;
}

static void http_answer_dispose(http_answer_t *a)
{
    tine_buf_dispose(&a->body);
    json_decref(a->headers);
}

/* ------------------------------------------------------- Lua <-> JSON */

static void push_json(lua_State *L, json_t *v);

/* Pushes a JSON value as Lua: objects and arrays as tables, null as nil. */
static void push_json(lua_State *L, json_t *v)
{
    if (json_is_object(v)) {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            push_json(L, x);
            lua_setfield(L, -2, k);
        }
    } else if (json_is_array(v)) {
        lua_createtable(L, (int)json_array_size(v), 0);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            push_json(L, x);
            lua_rawseti(L, -2, (int)i + 1);
        }
    } else if (json_is_string(v)) {
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        lua_pushnumber(L, (lua_Number)json_integer_value(v));
    } else if (json_is_real(v)) {
        lua_pushnumber(L, json_real_value(v));
    } else if (json_is_boolean(v)) {
        lua_pushboolean(L, json_is_true(v));
    } else {
        lua_pushnil(L);
    }
}

/* The Lua value at idx as JSON (a table with keys 1..n only is an array;
 * an empty table an object). Returns NULL for what JSON cannot hold. */
static json_t *to_json(lua_State *L, int idx, int depth)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return json_stringn(s, n);
    }
    case LUA_TTABLE: {
        if (depth > 64)
            return NULL;
        size_t n = lua_objlen(L, idx);
        if (n > 0) { /* a sequence: its elements 1..n */
            json_t *out = json_array();
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, (int)i);
                json_t *v = to_json(L, -1, depth + 1);
                lua_pop(L, 1);
                if (v == NULL) {
                    json_decref(out);
                    return NULL;
                }
                json_array_append_new(out, v);
            }
            return out;
        }
        json_t *out = json_object();
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            json_t *v = lua_type(L, -2) == LUA_TSTRING ? to_json(L, -1, depth + 1) : NULL;
            if (v == NULL) {
                lua_pop(L, 2);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, lua_tostring(L, -2), v);
            lua_pop(L, 1);
        }
        return out;
    }
    default:
        return NULL;
    }
}

static runner_t *runner_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* _json_encode(v) -> text */
static int l_json_encode(lua_State *L)
{
    json_t *j = to_json(L, 1, 0);
    if (j == NULL)
        return luaL_error(L, "cannot encode this value as JSON");
    /* Sorted keys: a failure's message is the same from run to run. */
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    json_decref(j);
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* _json_decode(text) -> value, or nil, why */
static int l_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_error_t e;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &e);
    if (j == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, e.text);
        return 2;
    }
    push_json(L, j);
    json_decref(j);
    return 1;
}

/* Pushes an HTTP answer as {status, headers, body, json}. */
static void push_answer(lua_State *L, long status, http_answer_t *a)
{
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, (lua_Number)status);
    lua_setfield(L, -2, "status");
    push_json(L, a->headers);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, a->body.data ? a->body.data : "", a->body.len);
    lua_setfield(L, -2, "body");
    json_t *j = a->body.len ? json_loadb(a->body.data, a->body.len, JSON_DECODE_ANY, NULL) : NULL;
    if (j != NULL) {
        push_json(L, j);
        lua_setfield(L, -2, "json");
        json_decref(j);
    }
}

/* _http(method, path, headers, body) -> answer table; raises on a transport
 * error. The path is the node's (the prelude adds the app's prefix). */
static int l_http(lua_State *L)
{
    runner_t *r = runner_of(L);
    const char *method = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    json_t *headers = lua_istable(L, 3) ? to_json(L, 3, 0) : NULL;
    size_t blen = 0;
    const char *body = lua_isstring(L, 4) ? lua_tolstring(L, 4, &blen) : NULL;
    http_answer_t a;
    char err[512];
    long st = http_call(r, method, path, json_is_object(headers) ? headers : NULL, body, blen, &a, err, sizeof err);
    json_decref(headers);
    if (st < 0) {
        http_answer_dispose(&a);
        return luaL_error(L, "%s", err);
    }
    push_answer(L, st, &a);
    http_answer_dispose(&a);
    return 1;
}

/* _kv(key) -> the app's tine.kv value, or nil */
static int l_kv(lua_State *L)
{
    runner_t *r = runner_of(L);
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    redisReply *rep = r->redis ? redisCommand(r->redis, "GET tine:kv:%s:%b", r->app, key, n) : NULL;
    if (rep == NULL)
        return luaL_error(L, "t.kv: the test node's redis cannot be read");
    if (rep->type == REDIS_REPLY_STRING)
        lua_pushlstring(L, rep->str, rep->len);
    else
        lua_pushnil(L);
    freeReplyObject(rep);
    return 1;
}

/* _emit_mark() notes the time t.wait_invocation looks from. */
static int l_mark(lua_State *L)
{
    runner_t *r = runner_of(L);
    r->since_ms = wall_ms();
    return 0;
}

/* _invocation(fn) -> the newest activation record of fn since the mark not
 * returned before, or nil. */
static int l_invocation(lua_State *L)
{
    runner_t *r = runner_of(L);
    const char *fn = luaL_checkstring(L, 1);
    char *answer = NULL;
    if (tine_activations(r->client, r->app, fn, 50, &answer) != 0)
        return luaL_error(L, "t.wait_invocation: %s", tine_client_error(r->client));
    json_t *j = json_loads(answer, 0, NULL);
    tine_free(answer);
    json_t *found = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "activations"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        /* Records carry their start; a little slack for clocks read apart. */
        if (id && json_integer_value(json_object_get(a, "start_ms")) >= r->since_ms - 5 &&
            !json_object_get(r->seen_ids, id)) {
            found = a; /* newest first: keep the oldest unseen */
        }
    }
    if (found) {
        json_object_set_new(r->seen_ids, json_string_value(json_object_get(found, "id")), json_true());
        push_json(L, found);
    } else {
        lua_pushnil(L);
    }
    json_decref(j);
    return 1;
}

/* _sleep(seconds) */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);
    return 0;
}

/* _now() -> seconds (monotonic) */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, now_s());
    return 1;
}

/* The test API, in Lua over the primitives above. Assertions raise at the
 * level of the test's own line, so their messages start with file:line. */
static const char prelude[] =
    "local P, app = ...\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  if type(v) == 'table' then local ok, s = pcall(P.json_encode, v); if ok then return s end end\n"
    "  return tostring(v)\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function fail(msg, level) error(msg, (level or 1) + 2) end\n"
    "local function label(msg) return msg and (msg .. ': ') or '' end\n"
    "local t = {}\n"
    "function t.eq(got, want, msg)\n"
    "  if not same(got, want) then fail(label(msg) .. 'expected ' .. show(want) .. ', got ' .. show(got)) end\n"
    "end\n"
    "function t.ne(got, other, msg)\n"
    "  if same(got, other) then fail(label(msg) .. 'expected anything but ' .. show(other)) end\n"
    "end\n"
    "function t.ok(v, msg)\n"
    "  if not v then fail(label(msg) .. 'expected a true value, got ' .. show(v)) end\n"
    "end\n"
    "function t.contains(s, part, msg)\n"
    "  if type(s) ~= 'string' or not s:find(part, 1, true) then\n"
    "    fail(label(msg) .. 'expected ' .. show(s) .. ' to contain ' .. show(part)) end\n"
    "end\n"
    "function t.fail(msg) fail(msg or 'failed') end\n"
    "local function path_of(p)\n"
    "  if type(p) ~= 'string' or p:sub(1, 1) ~= '/' then error('a path starts with /, got ' .. show(p), 3) end\n"
    "  if p:sub(1, 9) == '/_tine/v1' then return p end\n"
    "  return '/' .. app .. (p == '/' and '' or p)\n"
    "end\n"
    "function t.request(method, path, opts)\n"
    "  opts = opts or {}\n"
    "  local headers, body = {}, opts.body\n"
    "  for k, v in pairs(opts.headers or {}) do headers[k] = tostring(v) end\n"
    "  if opts.json ~= nil then body = P.json_encode(opts.json); headers['content-type'] = headers['content-type'] "
    "or 'application/json' end\n"
    "  return P.http(method, path_of(path), headers, body)\n"
    "end\n"
    "function t.get(path, opts) return t.request('GET', path, opts) end\n"
    "function t.post(path, opts) return t.request('POST', path, opts) end\n"
    "function t.put(path, opts) return t.request('PUT', path, opts) end\n"
    "function t.delete(path, opts) return t.request('DELETE', path, opts) end\n"
    "function t.invoke(fn, event)\n"
    "  local r = P.http('POST', '/_tine/v1/apps/' .. app .. '/functions/' .. fn .. '/invoke',\n"
    "    { ['content-type'] = 'application/json' }, P.json_encode(event == nil and P.empty or event))\n"
    "  if r.status ~= 200 or type(r.json) ~= 'table' then error('t.invoke ' .. fn .. ': ' .. r.status .. ' ' .. "
    "r.body, 2) end\n"
    "  local a = r.json\n"
    "  local out = { status = a.status, headers = a.headers or {}, body = a.body, error = a.error,\n"
    "    invocation_id = a.invocation_id }\n"
    "  if type(a.body) == 'string' then out.json = P.json_decode(a.body) end\n"
    "  return out\n"
    "end\n"
    "local seq = 0\n"
    "function t.emit(type_, data, opts)\n"
    "  opts = opts or {}\n"
    "  seq = seq + 1\n"
    "  local id = opts.id or ('tine-test-' .. seq .. '-' .. math.floor(P.now() * 1000))\n"
    "  P.mark()\n"
    "  local ev = { specversion = '1.0', id = id, type = type_, source = opts.source or 'tine-test',\n"
    "    subject = opts.subject, data = data, datacontenttype = 'application/json' }\n"
    "  local r = P.http('POST', '/_tine/v1/events', { ['content-type'] = 'application/cloudevents+json' },\n"
    "    P.json_encode(ev))\n"
    "  if r.status ~= 202 then error('t.emit ' .. type_ .. ': ' .. r.status .. ' ' .. r.body, 2) end\n"
    "  return id\n"
    "end\n"
    "function t.kv(key) return P.kv(key) end\n"
    "function t.wait_invocation(fn, timeout)\n"
    "  local deadline = P.now() + (timeout or 5)\n"
    "  while true do\n"
    "    local a = P.invocation(fn)\n"
    "    if a then return a end\n"
    "    if P.now() > deadline then fail('no invocation of ' .. fn .. ' within ' .. (timeout or 5) .. ' s') end\n"
    "    P.sleep(0.02)\n"
    "  end\n"
    "end\n"
    "function t.wait_until(check, timeout, what)\n"
    "  local deadline = P.now() + (timeout or 5)\n"
    "  while not check() do\n"
    "    if P.now() > deadline then fail((what or 'the condition') .. ' did not hold within ' .. (timeout or 5) .. ' "
    "s') end\n"
    "    P.sleep(0.01)\n"
    "  end\n"
    "end\n"
    "return t\n";

/* Makes the state a test file runs in: the standard libraries, `t` (the
 * API) and `test(name, fn)` collecting tests into the registry's list. */
static lua_State *test_state(runner_t *r, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        snprintf(err, errlen, "cannot make a Lua state");
        return NULL;
    }
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, prelude, sizeof prelude - 1, "=tine test") != 0) {
        snprintf(err, errlen, "tine test's prelude: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    static const struct {
        const char *name;
        lua_CFunction fn;
    } prims[] = {{"http", l_http},       {"kv", l_kv},       {"mark", l_mark},  {"invocation", l_invocation},
                 {"sleep", l_sleep},     {"now", l_now},     {"json_encode", l_json_encode},
                 {"json_decode", l_json_decode}};
    lua_newtable(L);
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++) {
        lua_pushlightuserdata(L, r);
        lua_pushcclosure(L, prims[i].fn, 1);
        lua_setfield(L, -2, prims[i].name);
    }
    lua_newtable(L); /* P.empty: encodes as {} */
    lua_setfield(L, -2, "empty");
    lua_pushstring(L, r->app);
    if (lua_pcall(L, 2, 1, 0) != 0) {
        snprintf(err, errlen, "tine test's prelude: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    lua_setglobal(L, "t");
    /* test(name, fn): appended to the global list __tests. */
    if (luaL_dostring(L, "__tests = {}\n"
                         "function test(name, fn)\n"
                         "  if type(name) ~= 'string' or type(fn) ~= 'function' then\n"
                         "    error('test(name, function(t) ... end): expected a name and a function', 2) end\n"
                         "  __tests[#__tests + 1] = { name = name, fn = fn }\n"
                         "end\n") != 0) {
        snprintf(err, errlen, "tine test: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

/* Runs one Lua test file: loads it (a syntax error is one failed entry
 * naming the file and line), then each test it declared. */
static void run_lua_file(runner_t *r, const char *dir, const char *rel)
{
    fprintf(r->ctx->out, "%s\n", rel);
    char err[1024];
    double t0 = now_s();
    lua_State *L = test_state(r, err, sizeof err);
    if (L == NULL) {
        report(r, rel, "(load)", err, now_s() - t0);
        return;
    }
    char *path = xasprintf("%s/%s", dir, rel);
    char *data = NULL;
    size_t len = 0;
    int rc = tine_try_read_file(path, &data, &len);
    free(path);
    char *chunk = xasprintf("@%s", rel);
    if (rc != 0) {
        snprintf(err, sizeof err, "%s: cannot read it: %s", rel, tine_strerror(rc));
        report(r, rel, "(load)", err, now_s() - t0);
    } else if (luaL_loadbuffer(L, data, len, chunk) != 0 || lua_pcall(L, 0, 0, 0) != 0) {
        report(r, rel, "(load)", lua_tostring(L, -1), now_s() - t0);
    } else {
        lua_getglobal(L, "__tests");
        int n = (int)lua_objlen(L, -1);
        if (n == 0)
            report(r, rel, "(load)", "the file declares no test: test(\"name\", function(t) ... end)", now_s() - t0);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "name");
            char *name = xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
            lua_getfield(L, -1, "fn");
            lua_getglobal(L, "t");
            r->since_ms = wall_ms();
            double s0 = now_s();
            if (lua_pcall(L, 1, 0, 0) != 0) {
                const char *msg = lua_tostring(L, -1);
                report(r, rel, name, msg ? msg : "(an error that is not a string)", now_s() - s0);
                lua_pop(L, 1);
            } else {
                report(r, rel, name, NULL, now_s() - s0);
            }
            lua_pop(L, 1); /* the entry */
            free(name);
        }
        lua_pop(L, 1);
    }
    free(chunk);
    free(data);
    lua_close(L);
}

/* ------------------------------------------------------ declarative cases */

/* Whether got holds want: objects by subset, arrays elementwise, numbers by
 * value. On a mismatch writes "where: expected X, got Y" into out. */
static bool json_subset(json_t *want, json_t *got, const char *where, tine_buf_t *out)
{
    if (json_is_number(want) && json_is_number(got) && json_number_value(want) == json_number_value(got))
        return true;
    if (json_is_object(want) && json_is_object(got)) {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            char *w = xasprintf("%s.%s", where, k);
            bool ok = json_subset(v, json_object_get(got, k), w, out);
            free(w);
            if (!ok)
                return false;
        }
        return true;
    }
    if (json_is_array(want) && json_is_array(got) && json_array_size(want) == json_array_size(got)) {
        size_t i;
        json_t *v;
        json_array_foreach(want, i, v)
        {
            char *w = xasprintf("%s[%zu]", where, i);
            bool ok = json_subset(v, json_array_get(got, i), w, out);
            free(w);
            if (!ok)
                return false;
        }
        return true;
    }
    if (got != NULL && json_equal(want, got))
        return true;
    char *ws = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    char *gs = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("nothing");
    tine_buf_appendf(out, "%s: expected %s, got %s", where, ws, gs);
    free(ws);
    free(gs);
    return false;
}

/* Removes the line members cli_yaml_load adds, below v. */
static void strip_lines(json_t *v)
{
    if (json_is_object(v)) {
        json_object_del(v, CLI_YAML_LINE_KEY);
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) strip_lines(x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) strip_lines(x);
    }
}

/* Runs one case (an object of the file): the request, then each
 * expectation. Returns the failure (a new string) or NULL. */
static char *run_case(runner_t *r, json_t *c, size_t index)
{
    static const char *const case_keys[] = {"name", "request", "expect"};
    static const char *const request_keys[] = {"method", "path", "headers", "body", "json"};
    static const char *const expect_keys[] = {"status", "headers", "body", "body_contains", "json"};
    const struct {
        const char *what;
        json_t *obj;
        const char *const *keys;
        size_t n;
    } shapes[] = {{"", c, case_keys, 3},
                  {"request.", json_object_get(c, "request"), request_keys, 5},
                  {"expect.", json_object_get(c, "expect"), expect_keys, 5}};
    for (size_t s = 0; s < 3; s++) {
        if (!json_is_object(shapes[s].obj))
            return xasprintf("case %zu: %s: expected a mapping", index + 1,
                             s == 0 ? "the case" : s == 1 ? "request" : "expect");
        const char *k;
        json_t *v;
        json_object_foreach(shapes[s].obj, k, v)
        {
            bool known = strcmp(k, CLI_YAML_LINE_KEY) == 0;
            for (size_t i = 0; i < shapes[s].n; i++)
                known = known || strcmp(k, shapes[s].keys[i]) == 0;
            if (!known)
                return xasprintf("case %zu: %s%s: unknown key", index + 1, shapes[s].what, k);
        }
    }
    json_t *req = json_object_get(c, "request"), *exp = json_object_get(c, "expect");
    strip_lines(req);
    strip_lines(exp);
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    if (path == NULL || path[0] != '/')
        return xasprintf("case %zu: request.path: expected a path starting with /", index + 1);
    char *full = strncmp(path, "/_tine/v1", 9) == 0 ? xstrdup(path)
                 : strcmp(path, "/") == 0            ? xasprintf("/%s", r->app)
                                                     : xasprintf("/%s%s", r->app, path);
    json_t *headers = json_deep_copy(json_object_get(req, "headers"));
    char *body = NULL;
    size_t blen = 0;
    if (json_object_get(req, "json")) {
        body = json_dumps(json_object_get(req, "json"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json_is_object(headers)) {
            json_decref(headers);
            headers = json_object();
        }
        if (!json_object_get(headers, "content-type"))
            json_object_set_new(headers, "content-type", json_string("application/json"));
    } else if (json_is_string(json_object_get(req, "body"))) {
        body = xstrdup(json_string_value(json_object_get(req, "body")));
    }
    if (body)
        blen = strlen(body);
    http_answer_t a;
    char err[512];
    long st = http_call(r, method ? method : (body ? "POST" : "GET"), full, json_is_object(headers) ? headers : NULL,
                        body, blen, &a, err, sizeof err);
    free(body);
    json_decref(headers);
    tine_buf_t why;
    tine_buf_init(&why);
    if (st < 0) {
        tine_buf_appendf(&why, "%s", err);
    } else {
        json_t *want = json_object_get(exp, "status");
        if (want && !(json_is_integer(want) && json_integer_value(want) == st))
            tine_buf_appendf(&why, "status: expected %" JSON_INTEGER_FORMAT ", got %ld\n",
                             json_integer_value(want), st);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(exp, "headers"), k, v)
        {
            char *lk = xstrdup(k);
            for (char *p = lk; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            json_t *g = json_object_get(a.headers, lk);
            if (!json_equal(g, v))
                tine_buf_appendf(&why, "headers.%s: expected \"%s\", got %s%s%s\n", lk,
                                 json_is_string(v) ? json_string_value(v) : "?", g ? "\"" : "",
                                 g ? json_string_value(g) : "none", g ? "\"" : "");
            free(lk);
        }
        json_t *body_want = json_object_get(exp, "body");
        const char *got = a.body.data ? a.body.data : "";
        if (json_is_string(body_want) &&
            (strlen(json_string_value(body_want)) != a.body.len || memcmp(json_string_value(body_want), got, a.body.len)))
            tine_buf_appendf(&why, "body: expected \"%s\", got \"%.*s\"\n", json_string_value(body_want),
                             (int)(a.body.len > 500 ? 500 : a.body.len), got);
        json_t *part = json_object_get(exp, "body_contains");
        if (json_is_string(part) && strstr(got, json_string_value(part)) == NULL)
            tine_buf_appendf(&why, "body: expected it to contain \"%s\", got \"%.*s\"\n", json_string_value(part),
                             (int)(a.body.len > 500 ? 500 : a.body.len), got);
        json_t *jw = json_object_get(exp, "json");
        if (jw) {
            json_error_t je;
            json_t *jg = json_loadb(got, a.body.len, JSON_DECODE_ANY, &je);
            tine_buf_t m;
            tine_buf_init(&m);
            if (jg == NULL)
                tine_buf_appendf(&why, "json: expected a JSON body, got \"%.*s\" (%s)\n",
                                 (int)(a.body.len > 200 ? 200 : a.body.len), got, je.text);
            else if (!json_subset(jw, jg, "json", &m))
                tine_buf_appendf(&why, "%.*s\n", (int)m.len, m.data);
            tine_buf_dispose(&m);
            json_decref(jg);
        }
    }
    http_answer_dispose(&a);
    free(full);
    if (why.len == 0) {
        tine_buf_dispose(&why);
        return NULL;
    }
    while (why.len > 0 && why.data[why.len - 1] == '\n')
        why.len--;
    char *out = xstrndup(why.data, why.len);
    tine_buf_dispose(&why);
    return out;
}

/* Runs the cases of one YAML file: a list of cases, or {cases: [...]}. */
static void run_yaml_file(runner_t *r, const char *dir, const char *rel)
{
    fprintf(r->ctx->out, "%s\n", rel);
    double t0 = now_s();
    char *path = xasprintf("%s/%s", dir, rel);
    char *data = NULL;
    size_t len = 0;
    char err[1024];
    int rc = tine_try_read_file(path, &data, &len);
    free(path);
    if (rc != 0) {
        snprintf(err, sizeof err, "%s: cannot read it: %s", rel, tine_strerror(rc));
        report(r, rel, "(load)", err, now_s() - t0);
        return;
    }
    json_t *doc = cli_yaml_load(rel, data, len, err, sizeof err);
    free(data);
    if (doc == NULL) {
        report(r, rel, "(load)", err, now_s() - t0);
        return;
    }
    json_t *cases = json_is_object(doc) ? json_object_get(doc, "cases") : doc;
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        snprintf(err, sizeof err, "%s: expected a list of cases (- name: ..., request: ..., expect: ...)", rel);
        report(r, rel, "(load)", err, now_s() - t0);
        json_decref(doc);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        double s0 = now_s();
        char *failure = run_case(r, c, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        char fallback[32];
        snprintf(fallback, sizeof fallback, "case %zu", i + 1);
        char *msg = failure ? xasprintf("%s:%" JSON_INTEGER_FORMAT ": %s: %s", rel,
                                        json_integer_value(json_object_get(c, CLI_YAML_LINE_KEY)),
                                        name ? name : fallback, failure)
                            : NULL;
        report(r, rel, name ? name : fallback, msg, now_s() - s0);
        free(msg);
        free(failure);
    }
    json_decref(doc);
}

/* ------------------------------------------------------------ reporting */

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
                fputc('?', f);
            else
                fputc(*s, f);
        }
    }
}

/* Writes the JUnit XML report: a testsuite per file. */
static int write_junit(runner_t *r, const char *path, double total)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        int e = errno;
        free(tmp);
        return cli_fail(r->ctx, "cannot write %s: %s", path, strerror(e));
    }
    size_t failed = 0;
    for (size_t i = 0; i < r->nresults; i++)
        failed += r->results[i].failure != NULL;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"tine test\" tests=\"%zu\" "
               "failures=\"%zu\" time=\"%.3f\">\n",
            r->nresults, failed, total);
    for (size_t i = 0; i < r->nresults;) {
        size_t j = i, nf = 0;
        double secs = 0;
        for (; j < r->nresults && strcmp(r->results[j].file, r->results[i].file) == 0; j++) {
            nf += r->results[j].failure != NULL;
            secs += r->results[j].seconds;
        }
        fputs("  <testsuite name=\"", f);
        xml_escaped(f, r->results[i].file);
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", j - i, nf, secs);
        for (size_t k = i; k < j; k++) {
            test_result_t *t = &r->results[k];
            fputs("    <testcase classname=\"", f);
            xml_escaped(f, t->file);
            fputs("\" name=\"", f);
            xml_escaped(f, t->name);
            fprintf(f, "\" time=\"%.3f\"", t->seconds);
            if (t->failure) {
                fputs(">\n      <failure message=\"", f);
                xml_escaped(f, t->failure);
                fputs("\">", f);
                xml_escaped(f, t->failure);
                fputs("</failure>\n    </testcase>\n", f);
            } else {
                fputs("/>\n", f);
            }
        }
        fputs("  </testsuite>\n", f);
        i = j;
    }
    fputs("</testsuites>\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return cli_fail(r->ctx, "cannot write %s: %s", path, strerror(e));
    }
    free(tmp);
    return CLI_OK;
}

/* qsort order of names. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The test files of dir: "tests/x_test.lua" and "tests/x.yaml", sorted.
 * Returns the count; *out is a new array of new strings. */
static size_t find_tests(const char *dir, char ***out)
{
    char *tdir = xasprintf("%s/tests", dir);
    DIR *d = opendir(tdir);
    free(tdir);
    char **v = NULL;
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' ||
            !(ends_with(de->d_name, "_test.lua") || ends_with(de->d_name, ".yaml") || ends_with(de->d_name, ".yml")))
            continue;
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = xasprintf("tests/%s", de->d_name);
    }
    if (d)
        closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), name_cmp);
    *out = v;
    return n;
}

int cli_cmd_test(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1] = {"."}, *junit = NULL;
    const cli_flag_t flags[] = {{"junit", 0, &junit, NULL}};
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, flags, 1, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *dir = npos > 0 ? pos[0] : ".";
    double t0 = now_s();
    char **files = NULL;
    size_t nfiles = find_tests(dir, &files);
    if (nfiles == 0)
        return cli_fail(ctx, "%s/tests holds no tests (*_test.lua or *.yaml files)", dir);
    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    int rc = cli_prepare_bundle(ctx, dir, &app, &tgz, &len);
    cli_node_t node;
    memset(&node, 0, sizeof node);
    runner_t r = {.ctx = ctx, .app = app, .seen_ids = json_object()};
    if (rc == CLI_OK)
        rc = cli_node_start(ctx, &node);
    if (rc == CLI_OK) {
        r.url = node.url;
        r.client = tine_client_new(node.url, NULL);
        char *answer = NULL;
        int e = r.client ? tine_deploy_ex(r.client, app, tgz, len, 0, &answer) : -ENOMEM;
        if (e != 0) {
            rc = cli_fail(ctx, "cannot deploy %s to the test node: %s", dir, r.client ? tine_client_error(r.client) : "");
        }
        tine_free(answer);
    }
    if (rc == CLI_OK) {
        struct timeval tv = {5, 0};
        r.redis = redisConnectUnixWithTimeout(node.redis_url + strlen("unix://"), tv);
        double ready = now_s();
        for (size_t i = 0; i < nfiles && !cli_node_interrupted(); i++) {
            if (ends_with(files[i], ".lua"))
                run_lua_file(&r, dir, files[i]);
            else
                run_yaml_file(&r, dir, files[i]);
        }
        size_t failed = 0;
        for (size_t i = 0; i < r.nresults; i++)
            failed += r.results[i].failure != NULL;
        double total = now_s() - t0;
        fprintf(ctx->out, "(%.0f ms: node ready in %.0f ms, tests %.0f ms)\n", total * 1000, (ready - t0) * 1000,
                (now_s() - ready) * 1000);
        if (junit && write_junit(&r, junit, total) != CLI_OK)
            rc = CLI_FAIL;
        fprintf(ctx->out, "%zu passed, %zu failed\n", r.nresults - failed, failed);
        if (failed > 0)
            rc = CLI_FAIL;
        if (cli_node_interrupted())
            rc = cli_fail(ctx, "interrupted: the tests after the last one shown did not run");
    }
    if (rc != CLI_OK && node.tined_pid > 0 && getenv("TINE_TEST_KEEP_LOG")) {
        char *t = NULL;
        if (tine_try_read_file(node.log_path, &t, NULL) == 0)
            fprintf(ctx->err, "--- tined's output\n%s", t);
        free(t);
    }
    if (r.redis)
        redisFree(r.redis);
    tine_client_free(r.client);
    cli_node_stop(&node);
    for (size_t i = 0; i < r.nresults; i++) {
        free(r.results[i].file);
        free(r.results[i].name);
        free(r.results[i].failure);
    }
    free(r.results);
    json_decref(r.seen_ids);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(app);
    free(tgz);
    return rc;
}
