/* The LuaJIT host: the state prepared once in the zygote (standard libraries,
 * the `tine` SDK, the safe-globals policy) and the loop a forked sandbox runs
 * to load one handler and serve SBX_MSG_INVOKE frames from its pipe.
 *
 * Everything that can raise a Lua error runs under lua_pcall: a sandbox never
 * panics on a bad handler, it answers SBX_MSG_ERROR and keeps serving. */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "meta.h"
#include "outbox.h"
#include "wire.h"

#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SBX_SDK_VERSION "0.1.0"
#define LOG_LINE_MAX 16384     /* bytes per tine.log line, "…" included */
/* Log bytes one invocation (or the module loading) sends at most, each line
 * counted with LOG_LINE_COST more: twice what the invoker keeps (INV_LOG_CAP,
 * 64 KiB), so it still sees the excess; past it lines are only counted and
 * the count is sent once, before the answer. The invoker's bounds are what
 * count; this keeps a loop of tine.log from filling the pipe for nothing. */
#define LOG_SEND_MAX (128u * 1024u)
#define LOG_LINE_COST 64u
#define JSON_MAX_DEPTH 128     /* nesting limit of tine.json in both directions */
#define KEEP_BUF (64u * 1024u) /* output buffers above this are freed after a call */

struct sbx_lua {
    lua_State *L;
    int wr;                 /* the pipe to tined; -1 outside sbx_lua_serve */
    uint64_t invocation_id; /* id of the running invocation, 0 outside one */
    uint64_t start_ns;      /* CLOCK_MONOTONIC start of the running invocation */
    sbx_reader_t rd;        /* frames from the pipe (pipelined INVOKEs, host replies) */
    uint32_t timeout_ms;    /* its timeout, for ctx.remaining_ms() */
    const sbx_spec_t *spec;
    tine_buf_t json; /* tine.json.encode output and JSON response bodies */
    tine_buf_t meta; /* metadata of the frame being built */
    tine_buf_t line; /* tine.log line being built */
    size_t log_sent;   /* log bytes sent by the running invocation (LOG_SEND_MAX) */
    uint64_t log_held; /* its lines not sent past LOG_SEND_MAX */
    tine_buf_t hc;    /* metadata of the host call being sent */
    tine_buf_t reply; /* the last host reply frame's payload */
    int ref_array_mt, ref_env, ref_msgh, ref_remaining, ref_invoke, ref_to_lua, ref_handler;
    int ref_keys; /* the interned strings of key_names, then the spec's names */
    /* Co-location group (the section at the end): the thread running this
     * state's invocation, its in-process depth (0: called by tined), its id
     * when in process, and where its log lines go then. */
    lua_State *cur;
    uint32_t depth;
    char id_hex[33];
    tine_buf_t *capture;
};

static void group_log(struct sbx_lua *S, const char *level, const char *text, size_t len);
static int group_flush(uint64_t id);
static int group_load(struct sbx_lua *S, const sbx_spec_t *spec);
static int sdk_group_invoke(lua_State *L);

/* The keys every invocation sets on its request and ctx tables, interned
 * once in a table (S->ref_keys) instead of hashed again by each
 * lua_setfield; the same table holds the spec's app and function names
 * (K_APP_NAME, K_FUNCTION_NAME), set when the function loads. */
enum {
    K_METHOD = 1, K_PATH, K_PARAMS, K_HEADERS, K_QUERY_STRING, K_QUERY, K_BODY,
    K_APP, K_VERSION, K_FUNCTION, K_TIMEOUT_MS, K_MEMORY_MB, K_REMAINING_MS,
    K_APP_NAME, K_FUNCTION_NAME
};
static const char *const key_names[] = {NULL,   "method",     "path",     "params",     "headers",
                                        "query_string", "query", "body", "app",        "version",
                                        "function",     "timeout_ms", "memory_mb", "remaining_ms"};
#define NKEY_NAMES (sizeof(key_names) / sizeof(key_names[0]))

/* ------------------------------------------------------------ buffers */

/* Raises the Lua error "out of memory" (out of line: the appenders below
 * stay small enough to inline on the per-call path). */
static __attribute__((noinline, cold, noreturn)) void raise_oom(lua_State *L)
{
    luaL_error(L, "out of memory");
    abort(); /* not reached: luaL_error does not return */
}

/* The sandbox's buffers fail softly (tine_buf_try_*): these append or raise
 * a Lua error "out of memory", which the protected call around every
 * invocation turns into an ERROR frame. Only inside protected calls. */
static inline void sb_add(lua_State *L, tine_buf_t *b, const void *p, size_t n)
{
    if (tine_buf_try_append(b, p, n) != 0)
        raise_oom(L);
}

static void sb_addc(lua_State *L, tine_buf_t *b, char c)
{
    sb_add(L, b, &c, 1);
}

/* Empties b, giving back its memory when one big response grew it. */
static void sb_reset(tine_buf_t *b)
{
    tine_buf_reset(b, KEEP_BUF);
}

/* ------------------------------------------------------- JSON output */

/* Appends s as a JSON string (tine_json_try_quote). Invalid UTF-8 makes it
 * return TINE_EINVAL when `strict`, or is replaced by U+FFFD otherwise (for
 * messages that must always go out); out of memory raises a Lua error. */
static int sb_json_str(lua_State *L, tine_buf_t *b, const char *s, size_t n, bool strict)
{
    int rc = tine_json_try_quote(b, s, n, strict ? TINE_JSON_STRICT : 0);
    if (rc == -ENOMEM)
        raise_oom(L);
    return rc;
}

/* Formats a finite number: integral values as integers, others with the
 * fewest digits that read back exactly. Returns the length, or TINE_EINVAL
 * for NaN and infinities. */
static int fmt_number(char out[32], double d)
{
    if (!isfinite(d))
        return TINE_EINVAL;
    if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return snprintf(out, 32, "%lld", (long long)d);
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    return (int)strlen(out);
}

/* Raises "where: message" naming the Lua code that called the running C function. */
static int raise_at_caller(lua_State *L, const char *fmt, ...)
{
    luaL_where(L, 1);
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/* ------------------------------------------------------ JSON encoder */

typedef struct {
    lua_State *L;
    tine_buf_t *b;
    const char *who; /* prefix of error messages */
    int array_mt;    /* stack index of the tine.json.array metatable */
    bool bin;        /* binary metadata (meta.h) instead of JSON text */
    int depth;
    const void *tables[JSON_MAX_DEPTH + 1]; /* ancestors, for cycle detection */
    struct {
        int key;       /* stack index of an object key, 0 for an array */
        size_t index;  /* array position */
    } path[JSON_MAX_DEPTH + 1];
} enc_t;

/* Raises "<who>: <message> at $.a[2].b" for the value being encoded. */
static void enc_error(enc_t *e, const char *msg, const char *arg)
{
    lua_State *L = e->L;
    luaL_Buffer lb;
    char num[32];
    lua_checkstack(L, 8);
    luaL_where(L, 1);
    luaL_buffinit(L, &lb);
    luaL_addvalue(&lb);
    luaL_addstring(&lb, e->who);
    luaL_addstring(&lb, ": ");
    luaL_addstring(&lb, msg);
    if (arg != NULL)
        luaL_addstring(&lb, arg);
    if (e->depth > 0) {
        luaL_addstring(&lb, " at $");
        for (int i = 0; i < e->depth; i++) {
            if (e->path[i].key == 0) {
                snprintf(num, sizeof num, "[%zu]", e->path[i].index);
                luaL_addstring(&lb, num);
            } else if (lua_type(L, e->path[i].key) == LUA_TSTRING) {
                luaL_addchar(&lb, '.');
                luaL_addstring(&lb, lua_tostring(L, e->path[i].key));
            } else if (lua_type(L, e->path[i].key) == LUA_TNUMBER) {
                fmt_number(num, lua_tonumber(L, e->path[i].key));
                luaL_addchar(&lb, '[');
                luaL_addstring(&lb, num);
                luaL_addchar(&lb, ']');
            } else {
                luaL_addstring(&lb, "[?]");
            }
        }
    }
    luaL_pushresult(&lb);
    lua_error(L);
}

static void enc_value(enc_t *e, int idx);

/* Binary metadata (meta.h): a tag, a u32 (a length or a count). */
static void enc_tag(enc_t *e, char tag)
{
    sb_add(e->L, e->b, &tag, 1);
}

static void enc_u32(enc_t *e, size_t n)
{
    uint32_t v = (uint32_t)n;
    sb_add(e->L, e->b, &v, 4);
}

/* A string (bin: u32 length and bytes; else a JSON string); bytes that are
 * not UTF-8 raise the encoding error naming `what`. */
static void enc_string(enc_t *e, const char *s, size_t n, bool tagged, const char *what)
{
    if (!e->bin) {
        if (sb_json_str(e->L, e->b, s, n, true) < 0)
            enc_error(e, what, NULL);
        return;
    }
    if (!tine_utf8_valid(s, n))
        enc_error(e, what, NULL);
    if (tagged)
        enc_tag(e, SBX_META_STRING);
    enc_u32(e, n);
    sb_add(e->L, e->b, s, n);
}

/* Encodes d as a JSON number (bin: an integer when it is one that a double
 * holds exactly, else a double); NaN and infinities raise the encoding
 * error. */
static void enc_number(enc_t *e, double d)
{
    char num[32];
    int n = fmt_number(num, d);
    if (n < 0)
        enc_error(e, "cannot encode ", isnan(d) ? "NaN" : "infinity");
    if (!e->bin) {
        sb_add(e->L, e->b, num, (size_t)n);
    } else if (d == floor(d) && fabs(d) <= 9007199254740992.0 && !(d == 0 && signbit(d))) {
        int64_t i = (int64_t)d;
        enc_tag(e, SBX_META_INT);
        sb_add(e->L, e->b, &i, 8);
    } else {
        enc_tag(e, SBX_META_DOUBLE);
        sb_add(e->L, e->b, &d, 8);
    }
}

/* Encodes the array part 1..n of the table at idx; holes become null. */
static void enc_array(enc_t *e, int idx, size_t n)
{
    lua_State *L = e->L;
    if (e->bin) {
        enc_tag(e, SBX_META_ARRAY);
        enc_u32(e, n);
    } else {
        sb_addc(L, e->b, '[');
    }
    for (size_t i = 1; i <= n; i++) {
        if (i > 1 && !e->bin)
            sb_addc(L, e->b, ',');
        e->path[e->depth - 1].key = 0;
        e->path[e->depth - 1].index = i;
        lua_rawgeti(L, idx, (int)i);
        enc_value(e, lua_gettop(L));
        lua_pop(L, 1);
    }
    if (!e->bin)
        sb_addc(L, e->b, ']');
}

/* Encodes the table at idx as a JSON object (string and number keys, numbers
 * as their text); other keys and invalid UTF-8 raise the encoding error. */
static void enc_object(enc_t *e, int idx)
{
    lua_State *L = e->L;
    bool first = true;
    size_t count_at = 0;
    uint32_t count = 0;
    if (e->bin) {
        enc_tag(e, SBX_META_OBJECT);
        count_at = e->b->len;
        enc_u32(e, 0);
    } else {
        sb_addc(L, e->b, '{');
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int k = lua_gettop(L) - 1;
        e->path[e->depth - 1].key = k;
        if (!first && !e->bin)
            sb_addc(L, e->b, ',');
        first = false;
        count++;
        if (lua_type(L, k) == LUA_TSTRING) {
            size_t n;
            const char *s = lua_tolstring(L, k, &n);
            enc_string(e, s, n, false, "key is not valid UTF-8");
        } else if (lua_type(L, k) == LUA_TNUMBER) {
            char num[32];
            int n = fmt_number(num, lua_tonumber(L, k));
            if (n < 0)
                enc_error(e, "cannot encode a NaN or infinite key", NULL);
            if (e->bin) {
                enc_u32(e, (size_t)n);
            } else {
                sb_addc(L, e->b, '"');
            }
            sb_add(L, e->b, num, (size_t)n);
            if (!e->bin)
                sb_addc(L, e->b, '"');
        } else {
            e->depth--; /* name the table, the key itself cannot be printed */
            enc_error(e, "cannot encode a table key of type ", luaL_typename(L, k));
        }
        if (!e->bin)
            sb_addc(L, e->b, ':');
        enc_value(e, k + 1);
        lua_pop(L, 1);
    }
    if (e->bin)
        memcpy(e->b->data + count_at, &count, 4);
    else
        sb_addc(L, e->b, '}');
}

/* Encodes the table at idx: an array when marked (tine.json.array) or when
 * its keys are exactly 1..n, else an object; cycles, nesting past
 * JSON_MAX_DEPTH and a full stack raise the encoding error. */
static void enc_table(enc_t *e, int idx)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < e->depth; i++)
        if (e->tables[i] == self)
            enc_error(e, "cannot encode a cyclic table", NULL);
    if (e->depth >= JSON_MAX_DEPTH)
        enc_error(e, "nesting deeper than 128 levels", NULL);
    if (!lua_checkstack(L, 6))
        enc_error(e, "out of stack", NULL);
    e->tables[e->depth] = self;
    e->path[e->depth].key = 0;
    e->path[e->depth].index = 0;
    e->depth++;

    bool marked = false;
    if (lua_getmetatable(L, idx)) {
        marked = lua_rawequal(L, -1, e->array_mt);
        lua_pop(L, 1);
    }
    /* Scan the keys: a table whose keys are exactly 1..n is an array. */
    size_t count = 0, max = 0;
    bool ints = true;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        double k;
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 || k != floor(k) || k > 2147483647.0) {
            ints = false;
            lua_pop(L, 1);
            break;
        }
        count++;
        if ((size_t)k > max)
            max = (size_t)k;
    }
    if (marked) {
        if (!ints)
            enc_error(e, "a tine.json.array has a key that is not a positive integer", NULL);
        enc_array(e, idx, max);
    } else if (ints && count > 0 && max == count) {
        enc_array(e, idx, count);
    } else {
        enc_object(e, idx);
    }
    e->depth--;
}

/* Encodes the Lua value at idx (nil, boolean, number, string, table,
 * tine.json.null); any other type raises the encoding error. */
static void enc_value(enc_t *e, int idx)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        if (e->bin)
            enc_tag(e, SBX_META_NULL);
        else
            sb_add(L, e->b, "null", 4);
        break;
    case LUA_TBOOLEAN:
        if (e->bin)
            enc_tag(e, lua_toboolean(L, idx) ? SBX_META_TRUE : SBX_META_FALSE);
        else if (lua_toboolean(L, idx))
            sb_add(L, e->b, "true", 4);
        else
            sb_add(L, e->b, "false", 5);
        break;
    case LUA_TNUMBER:
        enc_number(e, lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        enc_string(e, s, n, true, "string is not valid UTF-8");
        break;
    }
    case LUA_TTABLE:
        enc_table(e, idx);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* tine.json.null */
            if (e->bin)
                enc_tag(e, SBX_META_NULL);
            else
                sb_add(L, e->b, "null", 4);
            break;
        }
        /* fall through */
    default:
        enc_error(e, "cannot encode a value of type ", luaL_typename(L, idx));
    }
}

/* Encodes the value at idx into b (appending), as JSON text or (bin) as
 * binary metadata (meta.h). Raises Lua errors. */
static void encode_into(struct sbx_lua *S, lua_State *L, int idx, tine_buf_t *b, const char *who, bool bin)
{
    /* On the C stack: a raised error longjmps past it without leaking. */
    enc_t e;
    e.L = L;
    e.b = b;
    e.who = who;
    e.bin = bin;
    e.depth = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    e.array_mt = lua_gettop(L);
    enc_value(&e, idx);
    lua_pop(L, 1);
}

/* ------------------------------------------------------ JSON decoder */

/* Pushes the Lua value of a jansson value: null -> nil, objects -> tables,
 * arrays -> sequences marked with the tine.json.array metatable (at stack
 * index mt) so they encode back as arrays even when empty. */
static void push_json(lua_State *L, json_t *v, int mt, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        luaL_error(L, "nesting deeper than 128 levels");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        luaL_checkstack(L, 4, "JSON too deep");
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (json_is_null(x))
                continue;
            lua_pushstring(L, k);
            push_json(L, x, mt, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
    case JSON_ARRAY: {
        luaL_checkstack(L, 4, "JSON too deep");
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(v, i);
            if (json_is_null(x))
                continue;
            push_json(L, x, mt, depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_pushvalue(L, mt);
        lua_setmetatable(L, -2);
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushnumber(L, (lua_Number)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
    }
}

/* lua_CFunction(json_t *) -> value: push_json under a protected call so the
 * caller can always json_decref. */
static int to_lua_step(lua_State *L)
{
    struct sbx_lua *S = lua_touserdata(L, lua_upvalueindex(1));
    json_t *v = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    push_json(L, v, lua_gettop(L), 0);
    return 1;
}

#define JSON_DECODE_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

/* ------------------------------------------------------- SDK in C */

/* The sandbox's state, the first upvalue of an SDK function. */
static struct sbx_lua *self_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* tine.json.encode(v) -> string */
static int sdk_json_encode(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    S->json.len = 0;
    encode_into(S, L, 1, &S->json, "tine.json.encode", false);
    lua_pushlstring(L, S->json.data, S->json.len);
    sb_reset(&S->json);
    return 1;
}

/* Pushes the Lua value of the JSON text s[0..n). Returns 0; TINE_EINVAL with
 * *jerr filled when s is not JSON; 1 with a message pushed when the value
 * cannot be built (nesting, memory). */
static int push_json_text(struct sbx_lua *S, lua_State *L, const char *s, size_t n, json_error_t *jerr)
{
    json_t *v = json_loadb(s, n, JSON_DECODE_FLAGS, jerr);
    if (v == NULL)
        return TINE_EINVAL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_to_lua);
    lua_pushlightuserdata(L, v);
    int rc = lua_pcall(L, 1, 1, 0);
    json_decref(v);
    return rc != 0;
}

/* tine.json.decode(s) -> value */
static int sdk_json_decode(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_error_t err;
    int rc = push_json_text(S, L, s, n, &err);
    if (rc < 0)
        return raise_at_caller(L, "tine.json.decode: line %d column %d: %s", err.line, err.column, err.text);
    if (rc > 0)
        return raise_at_caller(L, "tine.json.decode: %s", lua_tostring(L, -1));
    return 1;
}

/* tine.json.array([t]) -> t marked to encode as a JSON array (even empty) */
static int sdk_json_array(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    lua_setmetatable(L, 1);
    return 1;
}

/* Joins tostring() of the arguments from `first` on with spaces, truncated to
 * LOG_LINE_MAX bytes, and sends it as one LOG frame of the running invocation
 * (stderr when not serving). */
static int log_emit(lua_State *L, const char *level, int first)
{
    struct sbx_lua *S = self_of(L);
    if (S->wr >= 0 && S->log_sent >= LOG_SEND_MAX) {
        S->log_held++;
        return 0;
    }
    int top = lua_gettop(L);
    /* First turn every argument into a string (this may run __tostring code,
     * which may log itself), then build the line without calling Lua. */
    for (int i = first; i <= top; i++) {
        lua_pushvalue(L, lua_upvalueindex(2)); /* tostring */
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "'tostring' must return a string to 'tine.log'");
        lua_replace(L, i);
    }
    tine_buf_t *b = &S->line;
    b->len = 0;
    bool cut = false;
    for (int i = first; i <= top && !cut; i++) {
        size_t n;
        const char *s = lua_tolstring(L, i, &n);
        if (i > first)
            sb_addc(L, b, ' ');
        if (b->len + n > LOG_LINE_MAX) {
            n = LOG_LINE_MAX > b->len ? LOG_LINE_MAX - b->len : 0;
            cut = true;
        }
        sb_add(L, b, s, n);
    }
    if (cut || b->len > LOG_LINE_MAX) {
        size_t keep = LOG_LINE_MAX - 3;
        while (keep > 0 && ((unsigned char)b->data[keep] & 0xC0) == 0x80)
            keep--; /* do not split a UTF-8 sequence */
        b->len = keep;
        sb_add(L, b, "\xE2\x80\xA6", 3);
    }
    if (S->capture != NULL) {
        group_log(S, level, b->data ? b->data : "", b->len);
        S->log_sent += b->len + LOG_LINE_COST;
    } else if (S->wr >= 0) {
        char meta[32];
        int ml = snprintf(meta, sizeof meta, "{\"level\":\"%s\"}", level);
        (void)sbx_outbox_frame(SBX_MSG_LOG, S->invocation_id, meta, (size_t)ml, b->data, b->len);
        S->log_sent += b->len + LOG_LINE_COST;
    } else {
        tine_log_text(strcmp(level, "error") == 0 ? TINE_LOG_ERROR : TINE_LOG_INFO, NULL, b->data ? b->data : "",
                      b->len);
    }
    sb_reset(b);
    return 0;
}

/* Ends the log of an invocation (or of the module loading): says how many
 * lines were held back past LOG_SEND_MAX (a LOG frame {"dropped":N}). */
static void log_end(struct sbx_lua *S, uint64_t id)
{
    if (S->log_held) {
        char meta[48];
        int ml = snprintf(meta, sizeof meta, "{\"dropped\":%llu}", (unsigned long long)S->log_held);
        (void)sbx_outbox_frame(SBX_MSG_LOG, id, meta, (size_t)ml, NULL, 0);
    }
    S->log_sent = 0;
    S->log_held = 0;
}

/* tine.log(...) through the __call metamethod: argument 1 is the tine.log table. */
static int sdk_log_call(lua_State *L)
{
    return log_emit(L, "info", 2);
}

/* tine.log(...): a line at level info (log_emit). */
static int sdk_log_info(lua_State *L)
{
    return log_emit(L, "info", 1);
}

/* tine.log.error(...): a line at level error (log_emit). */
static int sdk_log_error(lua_State *L)
{
    return log_emit(L, "error", 1);
}

static void push_meta(lua_State *L, sbx_meta_cur_t *c, int mt, int depth);

/* c.hostcall(op, args, body) -> meta, body | nil, message: one host call
 * answered by tined (the sandbox reaches nothing itself). Sends a HOSTCALL
 * frame whose metadata is the binary object (meta.h) {"op":op} merged with
 * the table `args`, and whose body is the string `body`, then blocks until
 * the HOSTREPLY (a binary object too). Returns the reply's metadata as a
 * table and its body as a string, or nil and the host's error message
 * (tine.lua raises it where the user called the SDK). */
static int sdk_hostcall(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    size_t op_len = 0, body_len = 0;
    const char *op = luaL_checklstring(L, 1, &op_len);
    const char *body = luaL_optlstring(L, 3, "", &body_len);
    if (S->wr < 0 || S->invocation_id == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "host calls are only available while handling an invocation");
        return 2;
    }
    tine_buf_t *m = &S->hc;
    m->len = 0;
    /* 'O', the member count, "op" and its string. */
    uint32_t count = 1, l = 2;
    sb_addc(L, m, SBX_META_OBJECT);
    sb_add(L, m, &count, 4);
    sb_add(L, m, &l, 4);
    sb_add(L, m, "op", 2);
    sb_addc(L, m, SBX_META_STRING);
    l = (uint32_t)op_len;
    sb_add(L, m, &l, 4);
    sb_add(L, m, op, op_len);
    if (!lua_isnoneornil(L, 2)) {
        /* Encode args as an object and splice its members in after op. */
        luaL_checktype(L, 2, LUA_TTABLE);
        size_t at = m->len;
        lua_pushfstring(L, "tine.%s", op);
        encode_into(S, L, 2, m, lua_tostring(L, -1), true);
        lua_pop(L, 1);
        if (m->data[at] != SBX_META_OBJECT) /* an array: the SDK never sends one */
            return luaL_error(L, "tine.%s: host call arguments must be a table of named fields", op);
        uint32_t n;
        memcpy(&n, m->data + at + 1, 4);
        memmove(m->data + at, m->data + at + 5, m->len - at - 5);
        m->len -= 5;
        count += n;
        memcpy(m->data + 1, &count, 4);
    }
    if (m->len + body_len > SBX_WIRE_MAX_FRAME) { /* tined would take it for a broken sandbox */
        lua_pushnil(L);
        lua_pushfstring(L, "the request of %d bytes is over the limit of %d bytes", (int)(m->len + body_len),
                        (int)SBX_WIRE_MAX_FRAME);
        sb_reset(m);
        return 2;
    }
    int rc = sbx_outbox_flush(); /* answers held go first: the host call blocks */
    if (rc == 0)
        rc = sbx_outbox_frame(SBX_MSG_HOSTCALL, S->invocation_id, m->data, m->len, body, body_len);
    sb_reset(m);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "the node is unreachable (%s)", tine_strerror(rc));
        return 2;
    }
    sbx_frame_hdr_t h;
    /* INVOKEs pipelined behind this one stay buffered for the serve loop. */
    rc = sbx_reader_take(&S->rd, SBX_MSG_HOSTREPLY, &h, &S->reply, SBX_WIRE_MAX_FRAME);
    if (rc != 0 || h.type != SBX_MSG_HOSTREPLY || h.id != S->invocation_id) {
        /* The protocol is broken (or the reply is not in memory: it stays in
         * the stream ahead of the next INVOKE): nothing sensible can follow. */
        if (rc != 0)
            tine_log(TINE_LOG_ERROR, "sandbox: cannot read the host reply: %s", tine_strerror(rc));
        else
            tine_log(TINE_LOG_ERROR, "sandbox: expected a host reply, got frame type %u", h.type);
        _exit(1);
    }
    sbx_outbox_call_resume(); /* the time it waited was not the invocation's */
    const char *data = S->reply.data;
    if (!sbx_meta_is_object(data, h.meta_len)) {
        lua_pushnil(L);
        lua_pushliteral(L, "malformed host reply");
        sb_reset(&S->reply);
        return 2;
    }
    sbx_meta_cur_t c;
    if (sbx_meta_member(data, h.meta_len, "error", 5, &c)) {
        lua_pushnil(L);
        uint32_t el = 0;
        const char *msg = sbx_meta_member_str(data, h.meta_len, "error", &el);
        if (msg != NULL)
            lua_pushlstring(L, msg, el);
        else
            lua_pushliteral(L, "host call failed");
        sb_reset(&S->reply);
        return 2;
    }
    /* Checked above: push_meta may raise only for the stack or memory, and
     * the reply buffer is the sandbox's, not leaked by a raise. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    int mt = lua_gettop(L);
    c = (sbx_meta_cur_t){data, data + h.meta_len};
    push_meta(L, &c, mt, 0);
    lua_remove(L, mt);
    lua_pushlstring(L, S->reply.data + h.meta_len, h.len - h.meta_len);
    sb_reset(&S->reply); /* one big answer must not pin its memory */
    return 2;
}

/* tine.now(): wall-clock seconds since the Unix epoch, microsecond resolution. */
static int sdk_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000) / 1e6);
    return 1;
}

/* ctx.remaining_ms(): milliseconds left before the invocation's timeout. */
static int sdk_remaining_ms(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    uint64_t elapsed_ms = (tine_now_ns() - S->start_ns) / 1000000u;
    lua_pushnumber(L, elapsed_ms >= S->timeout_ms ? 0 : (lua_Number)(S->timeout_ms - elapsed_ms));
    return 1;
}

/* pairs(t) with Lua 5.2's __pairs metamethod, so pairs(tine.env) works. */
static int sdk_pairs(lua_State *L)
{
    if (luaL_getmetafield(L, 1, "__pairs")) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, lua_upvalueindex(1)); /* next */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Message handler of protected handler calls: turns any error value into
 * {error = message, trace = stack traceback}. */
static int error_with_trace(lua_State *L)
{
    if (!lua_isstring(L, 1)) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
            lua_replace(L, 1);
        else {
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
            lua_replace(L, 1);
        }
    }
    lua_settop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "error");
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, -2, "trace");
    return 1;
}

/* ------------------------------------------------------- loading code */

/* Loads a Lua source file (text only, never bytecode) as a function on the
 * stack, named `@shown` in messages. On failure pushes a message instead and
 * returns non-zero. */
static int load_source(lua_State *L, const char *path, const char *shown)
{
    char *src = NULL;
    size_t n = 0;
    int rc = tine_try_read_file(path, &src, &n);
    if (rc < 0) {
        lua_pushfstring(L, "cannot read %s: %s", shown, strerror(-rc));
        return 1;
    }
    const char *p = src;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    if (n > 0 && p[0] == '#') { /* skip a #! line but keep its newline so line numbers hold */
        while (n > 0 && p[0] != '\n') {
            p++;
            n--;
        }
    }
    lua_pushfstring(L, "@%s", shown);
    rc = luaL_loadbufferx(L, p, n, lua_tostring(L, -1), "t");
    free(src);
    lua_remove(L, -2);
    return rc;
}

/* package.loaders entry: finds `a.b` as bundle_dir/a/b.lua or a/b/init.lua.
 * Dots become slashes, so no name can climb out of the bundle. */
static int bundle_searcher(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    const char *name = luaL_checkstring(L, 1);
    static const char *const pats[] = {"%s.lua", "%s/init.lua"};
    const char *rel = luaL_gsub(L, name, ".", "/");
    luaL_Buffer tried;
    luaL_buffinit(L, &tried);
    for (size_t i = 0; i < 2; i++) {
        char shown[1024], path[4096];
        snprintf(shown, sizeof shown, pats[i], rel);
        snprintf(path, sizeof path, "%s/%s", S->spec->bundle_dir, shown);
        if (access(path, F_OK) != 0) {
            luaL_addstring(&tried, "\n\tno file '");
            luaL_addstring(&tried, shown);
            luaL_addstring(&tried, "' in the bundle");
            continue;
        }
        luaL_pushresult(&tried);
        if (load_source(L, path, shown) != 0)
            return luaL_error(L, "error loading module '%s':\n\t%s", name, lua_tostring(L, -1));
        return 1;
    }
    luaL_pushresult(&tried);
    return 1;
}

/* Lua run once in prepare: the safe-globals policy (DESIGN.md, Isolation 1).
 * No io, debug, ffi, C modules, os beyond the clock, string.dump, bytecode
 * loading, jit control or package.searchpath (a file probe); collectgarbage
 * cannot stop the collector; getfenv/setfenv reach only the function's own
 * code, never the SDK or C functions; print goes to tine.log. */
static const char harden_lua[] =
    "local pairs_c, print_c, sdk_source = ...\n"
    "local rawload, os_, getinfo = load, os, debug.getinfo\n"
    "local rawgetfenv, rawsetfenv, rawcollect, floor = getfenv, setfenv, collectgarbage, math.floor\n"
    "os = { time = os_.time, clock = os_.clock, date = os_.date, difftime = os_.difftime }\n"
    "io, debug, dofile, loadfile = nil, nil, nil, nil\n"
    "string.dump, package.loadlib, package.searchpath = nil, nil, nil\n"
    "for k in pairs(package.preload) do package.preload[k] = nil end\n"
    "local loaded = package.loaded\n"
    "for _, k in ipairs({'io', 'debug', 'ffi', 'jit.util', 'jit.profile', 'jit.opt'}) do loaded[k] = nil end\n"
    "loaded.os = os\n"
    "if jit then\n"
    "  jit = { version = jit.version, version_num = jit.version_num, os = jit.os, arch = jit.arch }\n"
    "  loaded.jit = jit\n"
    "end\n"
    "load = function(chunk, name, _, env)\n"
    "  if env == nil then return rawload(chunk, name, 't') end\n"
    "  return rawload(chunk, name, 't', env)\n"
    "end\n"
    "loadstring = function(s, name) return rawload(s, name, 't') end\n"
    "local gc_ok = { collect = true, count = true, step = true }\n"
    "collectgarbage = function(opt, arg)\n"
    "  opt = opt == nil and 'collect' or opt\n"
    "  if not gc_ok[opt] then\n"
    "    error(\"collectgarbage('\" .. tostring(opt) .. \"') is not allowed in a sandbox\", 2)\n"
    "  end\n"
    "  return rawcollect(opt, arg)\n"
    "end\n"
    "local function own(f, who)\n"
    "  if type(f) == 'number' then\n"
    "    local info = f >= 1 and f == floor(f) and getinfo(f + 2, 'f')\n"
    "    if not info then error(\"bad argument #1 to '\" .. who .. \"' (invalid level)\", 3) end\n"
    "    f = info.func\n"
    "  end\n"
    "  if type(f) ~= 'function' then\n"
    "    error(\"bad argument #1 to '\" .. who .. \"' (function or level expected)\", 3)\n"
    "  end\n"
    "  local info = getinfo(f, 'S')\n"
    "  if info.what == 'C' or info.source == sdk_source or info.source == '=tine-sandbox' then\n"
    "    error(who .. ': not allowed on the functions of the tine runtime', 3)\n"
    "  end\n"
    "  return f\n"
    "end\n"
    "getfenv = function(f)\n"
    "  if f == 0 then return rawgetfenv(0) end\n"
    "  local fn = own(f == nil and 1 or f, 'getfenv')\n"
    "  return rawgetfenv(fn)\n"
    "end\n"
    "setfenv = function(f, t)\n"
    "  if f == 0 then error('setfenv: the thread environment cannot be changed in a sandbox', 2) end\n"
    "  local fn = own(f, 'setfenv')\n"
    "  return rawsetfenv(fn, t)\n"
    "end\n"
    "pairs, print = pairs_c, print_c\n";

typedef struct {
    struct sbx_lua *S;
    const char *sdk_dir;
} prepare_args_t;

/* Pushes f as a C closure whose first upvalue is S (self_of). */
static void push_closure(lua_State *L, struct sbx_lua *S, lua_CFunction f)
{
    lua_pushlightuserdata(L, S);
    lua_pushcclosure(L, f, 1);
}

/* Run under lua_pcall by sbx_lua_prepare: opens the libraries, makes the
 * registry refs, the SDK's C functions, loads tine.lua from the SDK dir and
 * hardens the globals. Raises an error on failure. */
static int prepare_step(lua_State *L)
{
    prepare_args_t *a = lua_touserdata(L, 1);
    struct sbx_lua *S = a->S;
    lua_settop(L, 0);
    luaL_openlibs(L);

    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "tine.json.array");
    lua_setfield(L, -2, "__name");
    S->ref_array_mt = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    S->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, error_with_trace);
    S->ref_msgh = luaL_ref(L, LUA_REGISTRYINDEX);
    push_closure(L, S, sdk_remaining_ms);
    S->ref_remaining = luaL_ref(L, LUA_REGISTRYINDEX);
    push_closure(L, S, to_lua_step);
    S->ref_to_lua = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, K_FUNCTION_NAME, 0);
    for (int k = 1; k < (int)NKEY_NAMES; k++) {
        lua_pushstring(L, key_names[k]);
        lua_rawseti(L, -2, k);
    }
    S->ref_keys = luaL_ref(L, LUA_REGISTRYINDEX);

    /* The hidden table of C functions tine.lua builds the module on. */
    lua_createtable(L, 0, 12);
    int c = lua_gettop(L);
    lua_pushliteral(L, SBX_SDK_VERSION);
    lua_setfield(L, c, "version");
    static const struct {
        const char *name;
        lua_CFunction f;
    } fns[] = {
        {"json_encode", sdk_json_encode},
        {"json_decode", sdk_json_decode},
        {"json_array", sdk_json_array},
        {"hostcall", sdk_hostcall},
        {"now", sdk_now},
        {"group_invoke", sdk_group_invoke},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        push_closure(L, S, fns[i].f);
        lua_setfield(L, c, fns[i].name);
    }
    static const struct {
        const char *name;
        lua_CFunction f;
    } logs[] = {{"log_call", sdk_log_call}, {"log_info", sdk_log_info}, {"log_error", sdk_log_error}};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        lua_pushlightuserdata(L, S);
        lua_getglobal(L, "tostring");
        lua_pushcclosure(L, logs[i].f, 2);
        lua_setfield(L, c, logs[i].name);
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, c, "json_null");
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    lua_setfield(L, c, "json_array_mt");
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_env);
    lua_setfield(L, c, "env");

    const char *path = lua_pushfstring(L, "%s/tine.lua", a->sdk_dir);
    if (load_source(L, path, path) != 0)
        return lua_error(L);
    lua_remove(L, -2); /* the path */
    lua_pushvalue(L, c);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "tine.lua returned a %s; expected the module table", luaL_typename(L, -1));
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "tine");
    lua_settop(L, c);

    if (luaL_loadbufferx(L, harden_lua, sizeof harden_lua - 1, "=tine-sandbox", "t") != 0)
        return lua_error(L);
    lua_getglobal(L, "next");
    lua_pushcclosure(L, sdk_pairs, 1);
    lua_getfield(L, c, "log_info");
    lua_pushfstring(L, "@%s/tine.lua", a->sdk_dir); /* the SDK's chunk name, as load_source gives it */
    lua_call(L, 3, 0);
    return 0;
}

sbx_lua_t *sbx_lua_prepare(const char *sdk_dir)
{
    struct sbx_lua *S = calloc(1, sizeof *S);
    if (S == NULL)
        return NULL;
    S->wr = -1;
    S->ref_handler = LUA_NOREF;
    S->L = luaL_newstate();
    if (S->L == NULL) {
        free(S);
        return NULL;
    }
    prepare_args_t a = {S, sdk_dir};
    lua_pushcfunction(S->L, prepare_step);
    lua_pushlightuserdata(S->L, &a);
    if (lua_pcall(S->L, 1, 0, 0) != 0) {
        tine_log(TINE_LOG_ERROR, "sandbox: cannot prepare the Lua SDK: %s", lua_tostring(S->L, -1));
        sbx_lua_free(S);
        return NULL;
    }
    /* Compact the heap before the zygote forks: every child shares it. */
    lua_gc(S->L, LUA_GCCOLLECT, 0);
    return S;
}

void sbx_lua_free(sbx_lua_t *S)
{
    if (S == NULL)
        return;
    if (S->L != NULL)
        lua_close(S->L);
    tine_buf_dispose(&S->json);
    tine_buf_dispose(&S->meta);
    tine_buf_dispose(&S->line);
    tine_buf_dispose(&S->hc);
    tine_buf_dispose(&S->reply);
    free(S);
}

/* ------------------------------------------------------- serving */

/* The running invocation's answer may be held (outbox.h): the next one
 * waits already, and the timeout is long beside a scheduler tick. */
static bool may_hold(struct sbx_lua *S)
{
    return S->timeout_ms >= OUTBOX_HOLD_MIN_TIMEOUT_MS && sbx_reader_buffered(&S->rd);
}

/* Writes an ERROR frame {"error":msg,"trace":trace}. Outside protected calls:
 * when there is no memory left to quote the message, the frame says so
 * instead (the sandbox answers, it does not abort). */
static int write_error(struct sbx_lua *S, uint64_t id, const char *msg, size_t msg_len, const char *trace,
                       size_t trace_len)
{
    tine_buf_t *m = &S->meta;
    m->len = 0;
    int rc = tine_buf_try_append(m, "{\"error\":", 9);
    if (rc == 0)
        rc = tine_json_try_quote(m, msg, msg_len, 0);
    if (rc == 0 && trace != NULL) {
        rc = tine_buf_try_append(m, ",\"trace\":", 9);
        if (rc == 0)
            rc = tine_json_try_quote(m, trace, trace_len, 0);
    }
    if (rc == 0)
        rc = tine_buf_try_append(m, "}", 1);
    const char *meta = m->data;
    size_t meta_len = m->len;
    char oom[96];
    if (rc != 0) {
        int n = snprintf(oom, sizeof oom, "{\"error\":\"out of memory (reporting an error of %zu bytes)\"}",
                         msg_len + trace_len);
        meta = oom;
        meta_len = (size_t)n;
    }
    /* An invocation's error is its answer; one before READY (loading) is not. */
    rc = S->invocation_id ? sbx_outbox_answer(SBX_MSG_ERROR, id, meta, meta_len, NULL, 0, may_hold(S))
                          : sbx_frame_write(S->wr, SBX_MSG_ERROR, id, meta, meta_len, NULL, 0);
    sb_reset(m);
    return rc;
}

/* Writes the ERROR frame for the error value on top of the stack: the
 * {error, trace} table of error_with_trace or a plain message. */
static int write_lua_error(struct sbx_lua *S, uint64_t id, int status)
{
    lua_State *L = S->L;
    const char *msg = NULL, *trace = NULL;
    size_t ml = 0, tl = 0;
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "error");
        lua_getfield(L, -2, "trace");
        msg = lua_tolstring(L, -2, &ml);
        trace = lua_tolstring(L, -1, &tl);
    } else {
        msg = lua_tolstring(L, -1, &ml);
    }
    if (msg == NULL) {
        msg = status == LUA_ERRMEM ? "out of memory" : "unknown error";
        ml = strlen(msg);
    }
    return write_error(S, id, msg, ml, trace, tl);
}

/* Returns 1 if a response header name is an RFC 9110 token. */
static bool header_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

/* A top-level member of the INVOKE metadata object. */
typedef struct {
    const char *key;
    uint32_t klen;
    sbx_meta_cur_t val; /* at its value */
} member_t;

#define MAX_MEMBERS 32

typedef struct {
    struct sbx_lua *S;
    member_t mem[MAX_MEMBERS];
    int nmem;
    const char *body;
    size_t body_len;
    bool body_in_json; /* out: the response body is S->json */
} invoke_args_t;

/* Indexes the members of the INVOKE metadata object and checks every value
 * in it. Returns the count, or TINE_EPROTO when it is malformed. */
static int meta_members(const char *data, size_t len, member_t *mem)
{
    sbx_meta_cur_t c = {data, data + len};
    uint32_t n;
    if (len == 0 || *c.p++ != SBX_META_OBJECT || !sbx_meta_u32(&c, &n) || n > MAX_MEMBERS)
        return TINE_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        mem[i].key = sbx_meta_bytes(&c, &mem[i].klen);
        mem[i].val = c;
        if (mem[i].key == NULL || !sbx_meta_skip(&c, 1))
            return TINE_EPROTO;
    }
    return c.p == c.end ? (int)n : TINE_EPROTO;
}

/* The value of member `key`, or NULL. */
static const sbx_meta_cur_t *member_get(const invoke_args_t *a, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < a->nmem; i++)
        if (a->mem[i].klen == kl && memcmp(a->mem[i].key, key, kl) == 0)
            return &a->mem[i].val;
    return NULL;
}

/* A string member's bytes, or NULL when it is missing or not a string. */
static const char *member_str(const invoke_args_t *a, const char *key, uint32_t *len)
{
    const sbx_meta_cur_t *v = member_get(a, key);
    if (v == NULL || *v->p != SBX_META_STRING)
        return NULL;
    sbx_meta_cur_t c = {v->p + 1, v->end};
    return sbx_meta_bytes(&c, len);
}

/* Sets the n members of a binary object (c is past its count) on the table
 * on top of the stack; null members are left out. */
static void meta_set_members(lua_State *L, sbx_meta_cur_t *c, uint32_t n, int mt, int depth)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kl = 0;
        const char *k = sbx_meta_bytes(c, &kl);
        if (*c->p == SBX_META_NULL) {
            c->p++;
            continue;
        }
        lua_pushlstring(L, k, kl);
        push_meta(L, c, mt, depth + 1);
        lua_rawset(L, -3);
    }
}

/* Pushes the Lua value of a checked binary value (meta_members checked it):
 * like push_json, null -> nil (members and elements left out), arrays
 * marked with the array metatable at stack index mt. */
static void push_meta(lua_State *L, sbx_meta_cur_t *c, int mt, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        luaL_error(L, "nesting deeper than 128 levels");
    char tag = *c->p++;
    uint32_t n = 0;
    switch (tag) {
    case SBX_META_TRUE:
    case SBX_META_FALSE:
        lua_pushboolean(L, tag == SBX_META_TRUE);
        return;
    case SBX_META_INT: {
        int64_t i;
        memcpy(&i, c->p, 8);
        c->p += 8;
        lua_pushnumber(L, (lua_Number)i);
        return;
    }
    case SBX_META_DOUBLE: {
        double d;
        memcpy(&d, c->p, 8);
        c->p += 8;
        lua_pushnumber(L, d);
        return;
    }
    case SBX_META_STRING: {
        const char *s = sbx_meta_bytes(c, &n);
        lua_pushlstring(L, s, n);
        return;
    }
    case SBX_META_OBJECT:
        luaL_checkstack(L, 4, "JSON too deep");
        sbx_meta_u32(c, &n);
        lua_createtable(L, 0, (int)n);
        meta_set_members(L, c, n, mt, depth);
        return;
    case SBX_META_ARRAY:
        luaL_checkstack(L, 4, "JSON too deep");
        sbx_meta_u32(c, &n);
        lua_createtable(L, (int)n, 0);
        for (uint32_t i = 0; i < n; i++) {
            if (*c->p == SBX_META_NULL) {
                c->p++;
                continue;
            }
            push_meta(L, c, mt, depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_pushvalue(L, mt);
        lua_setmetatable(L, -2);
        return;
    default:
        lua_pushnil(L);
    }
}

/* Pushes member `key` when it is an object, else an empty table. */
static void push_object_member(lua_State *L, int mt, const invoke_args_t *a, const char *key)
{
    const sbx_meta_cur_t *v = member_get(a, key);
    if (v != NULL && *v->p == SBX_META_OBJECT) {
        sbx_meta_cur_t c = *v;
        push_meta(L, &c, mt, 1);
    } else {
        lua_newtable(L);
    }
}

#define RESULT_HEADERS_MAX (64u * 1024u) /* bytes of response headers a function may send */

/* Starts the RESULT meta in m (emptied first): the status, then headers
 * added by result_header (meta.c's writer; out of memory raises). */
static void result_begin(lua_State *L, tine_buf_t *m, int status)
{
    size_t at;
    m->len = 0;
    if (sbx_result_meta_try_begin(m, status, &at) != 0)
        raise_oom(L);
}

/* One header of the RESULT meta result_begin started (name lower-cased). */
static void result_header(lua_State *L, tine_buf_t *m, const char *name, size_t nl, const char *value, size_t vl)
{
    if (sbx_result_meta_try_header(m, 0, name, nl, value, vl) != 0)
        raise_oom(L);
}

/* Appends the response headers of the table at idx to the RESULT meta in m.
 * Returns true when content-type was among them. */
static bool add_headers(lua_State *L, tine_buf_t *m, int idx)
{
    bool has_ct = false;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "bad response header name: expected a string, got a %s", luaL_typename(L, -2));
        size_t nl, vl;
        const char *name = lua_tolstring(L, -2, &nl);
        if (!header_name_ok(name, nl))
            luaL_error(L, "bad response header name '%s'", name);
        char num[32];
        const char *val;
        if (lua_type(L, -1) == LUA_TSTRING) {
            val = lua_tolstring(L, -1, &vl);
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            int n = fmt_number(num, lua_tonumber(L, -1));
            if (n < 0)
                luaL_error(L, "bad response header '%s': not a finite number", name);
            val = num;
            vl = (size_t)n;
        } else {
            luaL_error(L, "bad response header '%s': expected a string or number, got a %s", name,
                       luaL_typename(L, -1));
            return false;
        }
        for (size_t i = 0; i < vl; i++)
            if (val[i] == '\r' || val[i] == '\n' || val[i] == '\0')
                luaL_error(L, "bad response header '%s': value contains CR, LF or NUL", name);
        if (!tine_utf8_valid(val, vl))
            luaL_error(L, "bad response header '%s': value is not valid UTF-8", name);
        if (m->len + nl + vl > RESULT_HEADERS_MAX)
            luaL_error(L, "bad response headers: more than %d bytes", (int)RESULT_HEADERS_MAX);
        result_header(L, m, name, nl, val, vl);
        if (nl == 12 && strncasecmp(name, "content-type", 12) == 0)
            has_ct = true;
        lua_pop(L, 1);
    }
    return has_ct;
}

/* A RESULT meta with at most one header. */
static void result_simple(lua_State *L, tine_buf_t *m, int status, const char *content_type)
{
    result_begin(L, m, status);
    if (content_type != NULL)
        result_header(L, m, "content-type", 12, content_type, strlen(content_type));
}

/* Turns the handler's return value at idx into the RESULT meta in S->meta
 * and the body (returned on the stack as a string, or left in S->json). */
static int build_result(lua_State *L, invoke_args_t *a, int idx)
{
    struct sbx_lua *S = a->S;
    tine_buf_t *m = &S->meta;
    S->json.len = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        result_simple(L, m, 204, NULL);
        return 0;
    case LUA_TSTRING:
        result_simple(L, m, 200, "text/plain; charset=utf-8");
        lua_pushvalue(L, idx);
        return 1;
    case LUA_TTABLE:
        break;
    default:
        return luaL_error(L, "handler returned a %s; expected a table, string or nil", luaL_typename(L, idx));
    }

    lua_pushliteral(L, "status");
    lua_rawget(L, idx);
    if (lua_isnil(L, -1)) { /* a plain table: the JSON body itself */
        encode_into(S, L, idx, &S->json, "response", false);
        result_simple(L, m, 200, "application/json");
        a->body_in_json = true;
        return 0;
    }
    double st = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
    if (st != floor(st) || st < 100 || st > 599) {
        const char *shown = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            char num[32];
            fmt_number(num, lua_tonumber(L, -1));
            lua_pushstring(L, num);
            shown = lua_tostring(L, -1);
        }
        return luaL_error(L, "bad status %s: expected an integer from 100 to 599", shown);
    }
    result_begin(L, m, (int)st);

    bool has_ct = false;
    lua_pushliteral(L, "headers");
    lua_rawget(L, idx);
    int h = lua_gettop(L);
    if (lua_istable(L, h))
        has_ct = add_headers(L, m, h);
    else if (!lua_isnil(L, h))
        return luaL_error(L, "bad response headers: expected a table, got a %s", luaL_typename(L, h));

    lua_pushliteral(L, "body");
    lua_rawget(L, idx);
    int body = lua_gettop(L);
    if (lua_type(L, body) == LUA_TSTRING)
        return 1;
    if (!lua_isnil(L, body))
        return luaL_error(L, "bad response body: expected a string, got a %s", luaL_typename(L, body));
    lua_pushliteral(L, "json");
    lua_rawget(L, idx);
    if (!lua_isnil(L, -1)) {
        encode_into(S, L, lua_gettop(L), &S->json, "response json", false);
        a->body_in_json = true;
        if (!has_ct)
            result_header(L, m, "content-type", 12, "application/json", 16);
    }
    return 0;
}

/* Pushes s[0..n) with %XX and '+' decoded. */
static void push_unescaped(lua_State *L, const char *s, size_t n)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+')
            luaL_addchar(&b, ' ');
        else if (s[i] == '%' && i + 2 < n && (hi = tine_hex_digit((unsigned char)s[i + 1])) >= 0 && (lo = tine_hex_digit((unsigned char)s[i + 2])) >= 0) {
            luaL_addchar(&b, (char)(hi * 16 + lo));
            i += 2;
        } else
            luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
}

/* Pushes the query table of a raw query string: decoded key -> value, the
 * last of repeated keys wins, a key without '=' maps to "". */
static void push_query(lua_State *L, const char *q, size_t n)
{
    lua_newtable(L);
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && q[eq] != '=')
                eq++;
            push_unescaped(L, q + i, eq - i);
            if (eq < end)
                push_unescaped(L, q + eq + 1, end - eq - 1);
            else
                lua_pushliteral(L, "");
            lua_rawset(L, -3);
        }
        i = end + 1;
    }
}

/* Sets the field of key k of the table on top from the invocation's member of
 * that name, or dflt. */
static void set_string_field(lua_State *L, const invoke_args_t *a, int keys, int k, const char *dflt)
{
    uint32_t n;
    const char *v = member_str(a, key_names[k], &n);
    lua_rawgeti(L, keys, k);
    if (v != NULL)
        lua_pushlstring(L, v, n);
    else
        lua_pushstring(L, dflt);
    lua_rawset(L, -3);
}

/* Each field: its interned key (lua_rawgeti from the table at stack index
 * keys), its value, lua_rawset. */
static void push_request(lua_State *L, invoke_args_t *a, int mt, int keys)
{
    lua_createtable(L, 0, 8);
    set_string_field(L, a, keys, K_METHOD, "GET");
    set_string_field(L, a, keys, K_PATH, "/");
    lua_rawgeti(L, keys, K_PARAMS);
    push_object_member(L, mt, a, "params");
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_HEADERS);
    push_object_member(L, mt, a, "headers");
    lua_rawset(L, -3);
    uint32_t ql = 0;
    const char *qs = member_str(a, "query", &ql);
    if (qs == NULL)
        qs = "";
    lua_rawgeti(L, keys, K_QUERY_STRING);
    lua_pushlstring(L, qs, ql);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_QUERY);
    push_query(L, qs, ql);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_BODY);
    lua_pushlstring(L, a->body, a->body_len);
    lua_rawset(L, -3);
}

/* ctx: what the sandbox knows from its spec, the invoker's "ctx" members
 * over it, and remaining_ms. */
static void push_ctx(lua_State *L, invoke_args_t *a, int mt, int keys)
{
    struct sbx_lua *S = a->S;
    const sbx_spec_t *spec = S->spec;
    lua_createtable(L, 0, 8);
    lua_rawgeti(L, keys, K_APP);
    lua_rawgeti(L, keys, K_APP_NAME);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_VERSION);
    lua_pushnumber(L, (lua_Number)spec->version);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_FUNCTION);
    lua_rawgeti(L, keys, K_FUNCTION_NAME);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_TIMEOUT_MS);
    lua_pushnumber(L, spec->timeout_ms);
    lua_rawset(L, -3);
    lua_rawgeti(L, keys, K_MEMORY_MB);
    lua_pushnumber(L, spec->memory_mb);
    lua_rawset(L, -3);
    const sbx_meta_cur_t *v = member_get(a, "ctx");
    if (v != NULL && *v->p == SBX_META_OBJECT) {
        sbx_meta_cur_t c = {v->p + 1, v->end};
        uint32_t n = 0;
        sbx_meta_u32(&c, &n);
        meta_set_members(L, &c, n, mt, 1);
    }
    lua_rawgeti(L, keys, K_REMAINING_MS);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_remaining);
    lua_rawset(L, -3);
}

/* Protected body of one invocation: builds the arguments, calls the handler
 * under the traceback message handler and converts its result. */
static int invoke_step(lua_State *L)
{
    invoke_args_t *a = lua_touserdata(L, 1);
    struct sbx_lua *S = a->S;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt); /* 1 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_msgh);     /* 2 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_keys);     /* 3 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_handler);  /* 4 */
    uint32_t kl = 4;
    const char *k = member_str(a, "kind", &kl);
    if (k == NULL)
        k = "http";
    if (kl == 4 && memcmp(k, "http", 4) == 0) {
        push_request(L, a, 1, 3);
    } else if (kl == 5 && memcmp(k, "event", 5) == 0) {
        const sbx_meta_cur_t *ev = member_get(a, "event");
        const sbx_meta_cur_t *in_body = member_get(a, "event_in_body");
        json_error_t jerr;
        int rc = 0;
        if (ev != NULL) {
            sbx_meta_cur_t c = *ev;
            push_meta(L, &c, 1, 0);
        } else if (in_body == NULL || *in_body->p != SBX_META_TRUE) {
            lua_pushnil(L);
        } else if ((rc = push_json_text(S, L, a->body, a->body_len, &jerr)) != 0) { /* tine.invoke's payload */
            return rc < 0 ? luaL_error(L, "bad event: line %d column %d: %s", jerr.line, jerr.column, jerr.text)
                          : luaL_error(L, "bad event: %s", lua_tostring(L, -1));
        }
    } else {
        lua_pushlstring(L, k, kl);
        return luaL_error(L, "bad invocation kind '%s': expected \"http\" or \"event\"", lua_tostring(L, -1));
    }
    push_ctx(L, a, 1, 3);
    if (lua_pcall(L, 2, 1, 2) != 0)
        return lua_error(L); /* the {error, trace} table */
    return build_result(L, a, 4);
}

/* Serves one INVOKE frame. Returns 0, or -errno when the pipe failed. */
static int serve_invoke(struct sbx_lua *S, const sbx_frame_hdr_t *h, const char *payload)
{
    lua_State *L = S->L;
    invoke_args_t a = {.S = S, .body = payload + h->meta_len, .body_len = h->len - h->meta_len};
    S->invocation_id = h->id;
    sbx__invocation_id = h->id;
    a.nmem = meta_members(payload, h->meta_len, a.mem);
    if (a.nmem < 0) {
        static const char msg[] = "bad invocation metadata: expected a binary object (sandbox/meta.h)";
        int rc = write_error(S, h->id, msg, sizeof msg - 1, NULL, 0);
        S->invocation_id = 0;
        sbx__invocation_id = 0;
        return rc;
    }
    S->timeout_ms = S->spec->timeout_ms;
    const sbx_meta_cur_t *ctx = member_get(&a, "ctx");
    if (ctx != NULL && *ctx->p == SBX_META_OBJECT) {
        /* ctx.timeout_ms, when the invoker sent one */
        sbx_meta_cur_t c = {ctx->p + 1, ctx->end};
        uint32_t n = 0, kl = 0;
        sbx_meta_u32(&c, &n);
        for (uint32_t i = 0; i < n; i++) {
            const char *k = sbx_meta_bytes(&c, &kl);
            if (kl == 10 && memcmp(k, "timeout_ms", 10) == 0 && *c.p == SBX_META_INT) {
                int64_t t;
                memcpy(&t, c.p + 1, 8);
                if (t >= 0 && t <= UINT32_MAX)
                    S->timeout_ms = (uint32_t)t;
            }
            sbx_meta_skip(&c, 1);
        }
    }

    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_invoke);
    lua_pushlightuserdata(L, &a);
    int st = lua_pcall(L, 1, 1, 0);
    int rc = group_flush(h->id); /* its in-process calls' records go first */
    log_end(S, h->id);
    if (rc != 0) {
        /* the pipe failed */
    } else if (st != 0) {
        rc = write_lua_error(S, h->id, st);
    } else {
        const char *body = NULL;
        size_t blen = 0;
        if (a.body_in_json) {
            body = S->json.data;
            blen = S->json.len;
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            body = lua_tolstring(L, -1, &blen);
        }
        /* Held while the next invocation is waiting already (outbox.h). */
        rc = sbx_outbox_answer(SBX_MSG_RESULT, h->id, S->meta.data, S->meta.len, body, blen, may_hold(S));
    }
    lua_settop(L, 0);
    sb_reset(&S->meta);
    sb_reset(&S->json);
    S->invocation_id = 0;
    sbx__invocation_id = 0;
    return rc;
}

typedef struct {
    struct sbx_lua *S;
    const sbx_spec_t *spec;
    json_t *env;
} load_args_t;

/* Protected: configures require for the bundle, fills tine.env, runs the
 * handler module and stores its export in the registry. */
static int load_step(lua_State *L)
{
    load_args_t *a = lua_touserdata(L, 1);
    struct sbx_lua *S = a->S;
    const sbx_spec_t *spec = a->spec;
    lua_settop(L, 0);

    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_keys);
    lua_pushstring(L, spec->app ? spec->app : "");
    lua_rawseti(L, -2, K_APP_NAME);
    lua_pushstring(L, spec->function ? spec->function : "");
    lua_rawseti(L, -2, K_FUNCTION_NAME);
    lua_pop(L, 1);

    lua_getglobal(L, "package"); /* 1 */
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", spec->bundle_dir, spec->bundle_dir);
    lua_setfield(L, 1, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, 1, "cpath");
    lua_getfield(L, 1, "loaders");
    lua_createtable(L, 2, 0);
    lua_rawgeti(L, -2, 1); /* the package.preload searcher */
    lua_rawseti(L, -2, 1);
    push_closure(L, S, bundle_searcher);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, 1, "loaders");
    lua_pop(L, 1);

    /* tine.env: the caller frees a->env, also when this raises. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_array_mt);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_env);
    const char *k;
    json_t *v;
    json_object_foreach(a->env, k, v) {
        push_json(L, v, 2, 1);
        lua_setfield(L, 3, k);
    }
    lua_settop(L, 1);

    const char *hf = spec->handler_file;
    if (hf[0] == '\0' || hf[0] == '/' || strcmp(hf, "..") == 0 || strncmp(hf, "../", 3) == 0 ||
        strstr(hf, "/../") != NULL || (strlen(hf) >= 3 && strcmp(hf + strlen(hf) - 3, "/..") == 0))
        return luaL_error(L, "bad handler file '%s': expected a path inside the bundle", hf);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->ref_msgh); /* 2 */
    const char *path = lua_pushfstring(L, "%s/%s", spec->bundle_dir, spec->handler_file);
    if (load_source(L, path, spec->handler_file) != 0)
        return lua_error(L);
    lua_remove(L, -2); /* the path */
    /* Pass the module name require would use, and register it under that name
     * so a `require` of the same file does not run it twice. */
    size_t hl = strlen(hf);
    lua_pushlstring(L, hf, hl > 4 && strcmp(hf + hl - 4, ".lua") == 0 ? hl - 4 : hl);
    luaL_gsub(L, lua_tostring(L, -1), "/", ".");
    lua_remove(L, -2);
    lua_pushvalue(L, -1); /* 4: module name */
    lua_insert(L, 3);
    if (lua_pcall(L, 1, 1, 2) != 0)
        return lua_error(L);
    if (!lua_istable(L, -1))
        return luaL_error(L, "module '%s' returned a %s; expected a table of functions", spec->handler_file,
                          luaL_typename(L, -1));
    lua_getfield(L, 1, "loaded");
    lua_pushvalue(L, 3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_getfield(L, -1, spec->handler_export);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "module '%s' has no function '%s'", spec->handler_file, spec->handler_export);
    S->ref_handler = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int sbx_lua_serve(sbx_lua_t *S, sbx_fds_t fds, const sbx_spec_t *spec)
{
    if (S == NULL) {
        static const char msg[] = "the Lua SDK failed to load in the zygote";
        char meta[128];
        int n = snprintf(meta, sizeof meta, "{\"error\":\"%s\"}", msg);
        sbx_frame_write(fds.wr, SBX_MSG_ERROR, 0, meta, (size_t)n, NULL, 0);
        return 1;
    }
    lua_State *L = S->L;
    uint64_t t0 = tine_now_ns();
    S->wr = fds.wr;
    sbx_outbox_open(fds.wr); /* the module's tine.log lines while it loads */
    S->spec = spec;
    S->invocation_id = 0;

    load_args_t la = {S, spec, NULL};
    const char *env_json = spec->env_json ? spec->env_json : "{}";
    json_error_t jerr;
    la.env = json_loads(env_json, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (la.env == NULL || !json_is_object(la.env)) {
        json_decref(la.env);
        static const char msg[] = "bad env: expected a JSON object";
        write_error(S, 0, msg, sizeof msg - 1, NULL, 0);
        return 1;
    }
    lua_settop(L, 0);
    lua_pushcfunction(L, load_step);
    lua_pushlightuserdata(L, &la);
    int st = lua_pcall(L, 1, 0, 0);
    json_decref(la.env);
    log_end(S, 0);
    if (st != 0) {
        write_lua_error(S, 0, st);
        lua_settop(L, 0);
        return 1;
    }
    lua_settop(L, 0);
    lua_pushcfunction(L, invoke_step);
    S->ref_invoke = luaL_ref(L, LUA_REGISTRYINDEX);
    if (group_load(S, spec) != 0)
        return 1;

    char ready[64];
    int n = snprintf(ready, sizeof ready, "{\"pid\":%ld,\"init_us\":%llu}", (long)getpid(),
                     (unsigned long long)((tine_now_ns() - t0) / 1000u));
    if (sbx_frame_write(fds.wr, SBX_MSG_READY, 0, ready, (size_t)n, NULL, 0) < 0)
        return 1;

    sbx_outbox_open(fds.wr); /* again: CPU time is counted from here, loading is not an invocation's */
    sbx_reader_init(&S->rd, fds.rd);
    int status = 0;
    for (;;) {
        sbx_frame_hdr_t h;
        const char *payload;
        /* About to wait for the next invocation: the held answers go out. */
        if (!sbx_reader_buffered(&S->rd) && sbx_outbox_flush() < 0) {
            status = 1;
            break;
        }
        int rc = sbx_reader_next(&S->rd, &h, &payload, SBX_WIRE_MAX_FRAME);
        if (rc < 0) {
            status = 1;
            break;
        }
        if (h.type == 0) /* EOF: the invoker let this sandbox go */
            break;
        if (h.type != SBX_MSG_INVOKE) {
            status = 1;
            break;
        }
        S->start_ns = tine_now_ns();
        if (sbx_outbox_call_begin(S->start_ns) < 0) {
            status = 1;
            break;
        }
        if (serve_invoke(S, &h, payload) < 0) {
            status = 1;
            break;
        }
    }
    sbx_reader_free(&S->rd);
    return status;
}

/* ------------------------------------------------- co-location groups
 *
 * A sandbox of a function with `group:` in the manifest also hosts every
 * other function of its group, each in a Lua state of its own prepared
 * before the sandbox was isolated (sbx_lua_group_prepare) and loaded beside
 * the sandbox's own function (group_load). tine.invoke of a member runs the
 * member's handler in process (sdk_group_invoke) with what a call through
 * tined would give it: an invocation id of its own, its own ctx, a copy of
 * the payload (JSON, as over the wire), its log lines, the depth limit, a
 * timeout, errors as values. tined learns of each such call afterwards: the
 * records travel in one SBX_MSG_NESTED frame before the answer of the
 * invocation tined started (group_flush). docs/ARCHITECTURE.md,
 * "Co-location groups". */

#define GROUP_MAX_PAYLOAD (6u * 1024u * 1024u) /* as hostcall_invoke.c's INV_MAX_PAYLOAD */
#define GROUP_RECORDS_MAX (256u * 1024u)        /* records held before they are sent early */
#define GROUP_DEFAULT_DEPTH 256u                /* INV_DEFAULT_INVOKE_DEPTH */

typedef struct {
    const char *name;
    size_t len;
    size_t idx;       /* in group.m */
    struct sbx_lua *S; /* group.m[idx], once loaded */
} group_entry_t;

static struct {
    struct sbx_lua **m; /* m[0]: the sandbox's own function, then the others */
    group_entry_t *by_name; /* the members sorted by name (group_cmp) */
    sbx_spec_t *spec;   /* the others' specs: spec[i] is m[i + 1]'s */
    size_t n;           /* members, 0 without a group */
    json_t *holder;     /* the strings of spec */
    uint32_t max_depth;
    char prefix[17];  /* the node's part of invocation ids */
    uint64_t next;    /* the last in-process id (its high bit set: tined's never have it) */
    tine_buf_t records; /* finished in-process calls, JSON objects separated by commas */
    tine_buf_t req;     /* the INVOKE metadata of the call being made */
} group;

/* Orders group entries by name (bytes, then length). */
static int group_cmp(const void *a, const void *b)
{
    const group_entry_t *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

int sbx_lua_group_prepare(const sbx_spec_t *spec, const char *sdk_dir)
{
    if (spec->group_json == NULL)
        return 0;
    json_t *arr = json_loads(spec->group_json, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return TINE_EPROTO;
    }
    size_t n = json_array_size(arr);
    group.m = xcalloc(n + 1, sizeof *group.m);
    group.spec = xcalloc(n ? n : 1, sizeof *group.spec);
    group.holder = arr;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        sbx_spec_t *ms = &group.spec[i];
        *ms = *spec;
        ms->group_json = NULL;
        ms->function = json_string_value(json_object_get(o, "function"));
        ms->handler_file = json_string_value(json_object_get(o, "handler_file"));
        ms->handler_export = json_string_value(json_object_get(o, "handler_export"));
        ms->env_json = json_string_value(json_object_get(o, "env_json"));
        ms->memory_mb = (uint32_t)json_integer_value(json_object_get(o, "memory_mb"));
        ms->timeout_ms = (uint32_t)json_integer_value(json_object_get(o, "timeout_ms"));
        if (ms->function == NULL || ms->handler_file == NULL || ms->handler_export == NULL)
            return TINE_EPROTO;
        if ((group.m[i + 1] = sbx_lua_prepare(sdk_dir)) == NULL)
            return -ENOMEM;
    }
    group.n = n + 1;
    /* Sorted now: glibc's qsort may ask the system for its memory size, which
     * the isolated sandbox may not. */
    group.by_name = xcalloc(group.n, sizeof *group.by_name);
    for (size_t i = 0; i < group.n; i++) {
        const char *name = i == 0 ? spec->function : group.spec[i - 1].function;
        group.by_name[i] = (group_entry_t){name, strlen(name), i, NULL};
    }
    qsort(group.by_name, group.n, sizeof *group.by_name, group_cmp);
    group.max_depth = spec->max_invoke_depth ? spec->max_invoke_depth : GROUP_DEFAULT_DEPTH;
    const char *p = spec->id_prefix ? spec->id_prefix : "";
    memcpy(group.prefix, strlen(p) == 16 ? p : "0000000000000000", 16);
    /* Ids unique on the node: the high bit (tined counts from 1), the pid
     * (22 bits) and a counter started from the clock (40 bits, 12 days of
     * microseconds) so a later sandbox with the same pid starts elsewhere. */
    group.next = (1ull << 63) | (((uint64_t)getpid() & 0x3fffffu) << 40) |
                 ((tine_now_unix_ms() * 1000u) & ((1ull << 40) - 1));
    return 0;
}

/* Loads the other members of the group beside S (its own function, loaded),
 * in the bundle S's spec names. Writes the ERROR frame and returns -1 when
 * one fails; 0 otherwise (also without a group). */
static int group_load(struct sbx_lua *S, const sbx_spec_t *spec)
{
    if (group.n == 0)
        return 0;
    group.m[0] = S;
    for (size_t i = 1; i < group.n; i++) {
        struct sbx_lua *M = group.m[i];
        sbx_spec_t *ms = &group.spec[i - 1];
        ms->bundle_dir = spec->bundle_dir;
        M->wr = S->wr;
        M->spec = ms;
        load_args_t la = {M, ms, json_loads(ms->env_json ? ms->env_json : "{}", JSON_DECODE_INT_AS_REAL, NULL)};
        int st = -1;
        if (json_is_object(la.env)) {
            lua_settop(M->L, 0);
            lua_pushcfunction(M->L, load_step);
            lua_pushlightuserdata(M->L, &la);
            st = lua_pcall(M->L, 1, 0, 0);
        } else {
            lua_pushliteral(M->L, "bad env: expected a JSON object");
        }
        json_decref(la.env);
        log_end(M, 0);
        if (st != 0) {
            lua_State *L = M->L;
            if (lua_istable(L, -1))
                lua_getfield(L, -1, "error");
            const char *e = lua_tostring(L, -1);
            const char *msg = lua_pushfstring(L, "function %s of group: %s", ms->function, e ? e : "cannot load");
            write_error(M, 0, msg, strlen(msg), NULL, 0);
            return -1;
        }
        lua_settop(M->L, 0);
        lua_pushcfunction(M->L, invoke_step);
        M->ref_invoke = luaL_ref(M->L, LUA_REGISTRYINDEX);
    }
    for (size_t i = 0; i < group.n; i++)
        group.by_name[i].S = group.m[group.by_name[i].idx];
    return 0;
}

/* A log line of an in-process invocation, kept for its record. */
static void group_log(struct sbx_lua *S, const char *level, const char *text, size_t len)
{
    tine_buf_t *b = S->capture;
    tine_buf_appendf(b, "%s{\"t\":%llu,\"level\":\"%s\",\"msg\":", b->len ? "," : "",
                     (unsigned long long)tine_now_unix_ms(), level);
    tine_json_quote(b, text, len);
    tine_buf_append(b, "}", 1);
}

/* Sends the records held, as one SBX_MSG_NESTED frame of invocation id.
 * Returns 0 or -errno. */
static int group_flush(uint64_t id)
{
    if (group.records.len == 0)
        return 0;
    tine_buf_t *r = &group.records;
    tine_buf_append(r, "]", 1);
    r->data[0] = '[';
    int rc = sbx_outbox_frame(SBX_MSG_NESTED, id, r->data, r->len, NULL, 0);
    sb_reset(r);
    return rc;
}

/* The 32 hex digits of an invocation id: the node's prefix, then v. */
static void group_id_hex(char out[33], uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, group.prefix, 16);
    for (int i = 0; i < 16; i++)
        out[16 + i] = hex[(v >> (60 - 4 * i)) & 0xf];
    out[32] = '\0';
}

/* Raises "message" the way tine.lua's call() expects a host call's failure:
 * returns nil, message. */
static int group_fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushnil(L);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

/* Appends `"key":v` and a comma to b (no printf: it runs per hop). */
static void group_put_num(tine_buf_t *b, const char *key, int64_t v)
{
    char num[26];
    tine_buf_append(b, "\"", 1);
    tine_buf_append(b, key, strlen(key));
    tine_buf_append(b, "\":", 2);
    if (v < 0) {
        tine_buf_append(b, "-", 1);
        v = -v;
    }
    tine_buf_append(b, num, tine_fmt_u64(num, (uint64_t)v, 1));
    tine_buf_append(b, ",", 1);
}

/* Appends the record of a finished in-process call to group.records. */
static void group_record(const struct sbx_lua *M, const char *parent, uint64_t start_ms, uint64_t duration_ns,
                         int code, int status, const char *error, const tine_buf_t *logs)
{
    tine_buf_t *r = &group.records;
    tine_buf_append(r, r->len ? ",{\"fn\":" : " {\"fn\":", 7); /* the first ' ' becomes '[' */
    tine_json_quote(r, M->spec->function, strlen(M->spec->function));
    tine_buf_append(r, ",\"id\":\"", 7);
    tine_buf_append(r, M->id_hex, 32);
    tine_buf_append(r, "\",\"parent\":\"", 12);
    tine_buf_append(r, parent, 32);
    tine_buf_append(r, "\",", 2);
    group_put_num(r, "start_ms", (int64_t)start_ms);
    group_put_num(r, "duration_ns", (int64_t)duration_ns);
    group_put_num(r, "timeout_ms", M->spec->timeout_ms);
    group_put_num(r, "code", code);
    group_put_num(r, "status", status);
    group_put_num(r, "dropped", (int64_t)M->log_held);
    tine_buf_append(r, "\"logs\":[", 8);
    if (logs->len)
        tine_buf_append(r, logs->data, logs->len);
    tine_buf_append(r, "]", 1);
    if (error != NULL) {
        tine_buf_append(r, ",\"error\":", 9);
        tine_json_quote(r, error, strlen(error));
    }
    tine_buf_append(r, "}", 1);
}

/* Pushes the host-reply-shaped answer of a finished in-process call on L:
 * meta {status, invocation_id, json, headers} and the body. The response is
 * M's RESULT meta and the body at `ret` of TL (or in M->json). */
static void group_push_answer(lua_State *L, struct sbx_lua *M, lua_State *TL, int ret, bool body_in_json)
{
    sbx_result_meta_t rm = {.status = 500};
    sbx_result_meta_parse(M->meta.data, M->meta.len, &rm);
    bool json = false;
    sbx_meta_cur_t c = rm.headers;
    for (uint32_t i = 0; i < rm.nheaders; i++) {
        const char *n, *v;
        uint32_t nl, vl;
        sbx_result_meta_next(&c, &n, &nl, &v, &vl);
        if (nl == 12 && memcmp(n, "content-type", 12) == 0)
            json = vl >= 16 && strncmp(v, "application/json", 16) == 0 && (vl == 16 || v[16] == ';');
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, rm.status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, M->id_hex);
    lua_setfield(L, -2, "invocation_id");
    lua_pushboolean(L, json);
    lua_setfield(L, -2, "json");
    if (rm.nheaders > 0 && !(json && rm.nheaders == 1)) {
        lua_createtable(L, 0, (int)rm.nheaders);
        c = rm.headers;
        for (uint32_t i = 0; i < rm.nheaders; i++) {
            const char *n, *v;
            uint32_t nl, vl;
            sbx_result_meta_next(&c, &n, &nl, &v, &vl);
            lua_pushlstring(L, n, nl);
            lua_pushlstring(L, v, vl);
            lua_rawset(L, -3);
        }
        lua_setfield(L, -2, "headers");
    }
    if (body_in_json) {
        lua_pushlstring(L, M->json.data ? M->json.data : "", M->json.len);
    } else if (lua_type(TL, ret) == LUA_TSTRING) {
        size_t bl;
        const char *b = lua_tolstring(TL, ret, &bl);
        lua_pushlstring(L, b, bl);
    } else {
        lua_pushliteral(L, "");
    }
}

/* c.group_invoke(fn, payload_json) -> meta, body | nil, message | false:
 * runs function fn of this sandbox's co-location group in process and
 * answers like c.hostcall("invoke") would; false when fn is not in the
 * group (tine.invoke then asks tined). */
static int sdk_group_invoke(lua_State *L)
{
    struct sbx_lua *S = self_of(L);
    size_t fl, pl;
    const char *fn = luaL_checklstring(L, 1, &fl);
    const char *payload = luaL_checklstring(L, 2, &pl);
    struct sbx_lua *M = NULL;
    if (group.n != 0 && S->invocation_id != 0) {
        group_entry_t key = {fn, fl, 0, NULL};
        bool found;
        size_t at = tine_bsearch_pos(&key, group.by_name, group.n, sizeof key, group_cmp, &found);
        M = found ? group.by_name[at].S : NULL;
    }
    if (M == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (S->depth >= group.max_depth)
        return group_fail(L, "calling %s would nest %d calls deep, over the limit of %d (tined --max-invoke-depth)",
                          M->spec->function, (int)S->depth + 1, (int)group.max_depth);
    if (pl > GROUP_MAX_PAYLOAD)
        return group_fail(L, "the payload of %d bytes is over the limit of %d bytes", (int)pl, (int)GROUP_MAX_PAYLOAD);

    /* The caller's id (tined's for the invocation it started) is the parent. */
    char parent[33];
    if (S->depth == 0)
        group_id_hex(parent, S->invocation_id);
    else
        memcpy(parent, S->id_hex, sizeof parent);
    S->cur = L;
    uint64_t now = tine_now_ns(), start_ms = tine_now_unix_ms();
    uint64_t caller_elapsed_ms = (now - S->start_ns) / 1000000u;
    uint32_t caller_left = caller_elapsed_ms >= S->timeout_ms ? 0 : S->timeout_ms - (uint32_t)caller_elapsed_ms;

    /* M's running invocation, if any (a member up the chain), comes back after. */
    struct sbx_lua saved = *M;
    M->invocation_id = S->invocation_id; /* host calls go out as the invocation tined knows */
    M->depth = S->depth + 1;
    M->start_ns = now;
    M->timeout_ms = M->spec->timeout_ms < caller_left ? M->spec->timeout_ms : caller_left;
    group_id_hex(M->id_hex, ++group.next);
    tine_buf_t logs;
    tine_buf_init(&logs);
    M->capture = &logs;
    M->log_sent = 0;
    M->log_held = 0;
    M->meta.len = 0;
    M->json.len = 0;

    /* The request: an event whose payload is the body, as tined sends it. */
    /* One buffer for every call: its members are read before the handler
     * runs, so a nested call may write it again. */
    tine_buf_t mb = group.req;
    mb.len = 0;
    size_t at = sbx_meta_begin(&mb, SBX_META_OBJECT);
    sbx_meta_kstr(&mb, "kind", "event", 5);
    sbx_meta_kstr(&mb, "trigger", "invoke", 6);
    sbx_meta_key(&mb, "event_in_body", 13);
    tine_buf_append(&mb, "T", 1);
    sbx_meta_key(&mb, "ctx", 3);
    size_t ctx = sbx_meta_begin(&mb, SBX_META_OBJECT);
    sbx_meta_kstr(&mb, "invocation_id", M->id_hex, 32);
    sbx_meta_end(&mb, ctx, 1);
    sbx_meta_end(&mb, at, 4);
    invoke_args_t a = {.S = M, .body = payload, .body_len = pl};
    a.nmem = meta_members(mb.data, mb.len, a.mem);
    group.req = mb;

    /* The thread to run it on: the caller's own for itself; for a member up
     * the chain the thread it called from; else the member's main thread. */
    lua_State *TL = M == S ? L : saved.invocation_id != 0 ? saved.cur : M->L;
    M->cur = TL;
    /* The pipe's reader moves to the state that runs (its host calls read
     * their replies there, and may grow its buffer) and back after. */
    if (M != S)
        M->rd = S->rd;
    int top = lua_gettop(TL);
    lua_rawgeti(TL, LUA_REGISTRYINDEX, M->ref_invoke);
    lua_pushlightuserdata(TL, &a);
    int st = lua_pcall(TL, 1, 1, 0);
    uint64_t dur = tine_now_ns() - now;
    if (M != S)
        S->rd = M->rd;

    int code = 0, status = 200, nret;
    const char *err = NULL;
    char *msg = NULL;
    if (dur > (uint64_t)M->spec->timeout_ms * 1000000u) {
        /* Found when it returned (Lua code is not preempted here): what a
         * call through tined would have ended with. Past the caller's
         * budget tined has killed the whole sandbox already. */
        code = TINE_ETIMEOUT;
        status = 504;
        msg = xasprintf("function %s timed out after %u ms", M->spec->function, (unsigned)M->spec->timeout_ms);
        err = msg;
        nret = group_fail(L, "%s (invocation %s)", msg, M->id_hex);
    } else if (st != 0) {
        if (lua_istable(TL, -1))
            lua_getfield(TL, -1, "error");
        const char *e = lua_tostring(TL, -1);
        msg = xstrdup(e ? e : (st == LUA_ERRMEM ? "out of memory" : "an error"));
        if (lua_istable(TL, -2))
            lua_pop(TL, 1);
        code = TINE_EHANDLER;
        status = 500;
        err = msg;
        nret = group_fail(L, "%s raised: %s (invocation %s)", M->spec->function, msg, M->id_hex);
    } else {
        group_push_answer(L, M, TL, top + 1, a.body_in_json);
        lua_getfield(L, -2, "status");
        status = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        nret = 2;
    }
    group_record(M, parent, start_ms, dur, code, status, err, &logs);
    free(msg);
    tine_buf_dispose(&logs);
    /* Drop the pcall's result from TL, under what was pushed on L when they are one. */
    if (TL == L)
        lua_remove(L, top + 1);
    else
        lua_settop(TL, top);
    sb_reset(&M->meta);
    sb_reset(&M->json);
    M->invocation_id = saved.invocation_id;
    M->depth = saved.depth;
    M->start_ns = saved.start_ns;
    M->timeout_ms = saved.timeout_ms;
    M->capture = saved.capture;
    M->log_sent = saved.log_sent;
    M->log_held = saved.log_held;
    M->cur = saved.cur;
    memcpy(M->id_hex, saved.id_hex, sizeof M->id_hex);
    if (group.records.len > GROUP_RECORDS_MAX && group_flush(S->invocation_id) != 0)
        _exit(1); /* the pipe to tined is gone */
    return nret;
}
