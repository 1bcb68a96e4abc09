/* The host-call service: what a function asks tined to do on its behalf. The
 * sandbox reaches nothing itself: each HOSTCALL frame is answered with
 * exactly one HOSTREPLY frame, now or later, while the loop keeps serving.
 *
 * This file holds the dispatcher, the answers, tine.kv (served over one
 * asynchronous Redis connection of redis/ on the invoker's loop) and
 * tine.emit (checked here, then handed to inv_config_t.on_emit: the events
 * module builds the CloudEvent and appends it). tine.http is in
 * hostcall_http.c, tine.invoke in hostcall_invoke.c.
 *
 * Redis keys: tine.kv values are "tine:kv:{app}:{key}" (app names hold no
 * ':', so no app can name another app's keys).
 *
 * KV quotas (the app's limits, else the node's): each write (set, del,
 * incr) is one Lua script that checks and keeps the app's usage atomically
 * in the hash "tine:kvstat:{app}" (fields keys, bytes: a key counts its own
 * bytes and its value's). Keys written with a ttl are also in the sorted set
 * "tine:kvexp:{app}" (score: expiry, unix ms) with their counted bytes in
 * the hash "tine:kvttl:{app}": Redis expires them silently, so each script
 * first takes up to KV_RECLAIM of the app's expired keys off the counts
 * (and any expired key it is about to write). Between a key's expiry and
 * the app's next write the counts still hold it: the usage is never below
 * the truth, and above it by the expired keys not yet taken off (at most
 * KV_RECLAIM per write are). Keys stored before the counts existed are not
 * counted until written again; deleting one cannot take the counts below 0. */
#include "hostcall_internal.h"
#include "meta.h"
#include "secret_box.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_MAX_KEY 512
#define KV_MAX_KEYS 10000 /* keys one tine.kv.keys may return */
#define EMIT_MAX_TYPE 256
#define EMIT_MAX_DATA (1024 * 1024)

/* ------------------------------------------------------------ answers */

void inv__hc_reply_meta(inv_call_t *c, const tine_buf_t *m, const void *body, size_t body_len)
{
    if (m->len + body_len > SBX_WIRE_MAX_FRAME)
        inv__hc_fail(c, "the answer of %zu bytes is over the limit of %u bytes", m->len + body_len,
                     (unsigned)SBX_WIRE_MAX_FRAME);
    else
        inv_call_reply(c, m->data, m->len, body, body_len);
}

void inv__hc_reply(inv_call_t *c, json_t *meta, const void *body, size_t body_len)
{
    if (!json_is_object(meta)) {
        json_decref(meta);
        inv__hc_fail(c, "the node could not build its answer");
        return;
    }
    tine_buf_t m;
    tine_buf_init(&m);
    sbx_meta_json(&m, meta);
    json_decref(meta);
    inv__hc_reply_meta(c, &m, body, body_len);
    tine_buf_dispose(&m);
}

void inv__hc_fail(inv_call_t *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    /* The message is valid UTF-8 for every SDK: a name or a Redis error in
     * it may not be; those bytes become U+FFFD (as jansson's text did). */
    json_t *text = tine_utf8_valid(msg, len) ? NULL : tine_json_text(msg, len);
    tine_buf_t m;
    tine_buf_init(&m);
    size_t at = sbx_meta_begin(&m, SBX_META_OBJECT);
    if (text != NULL)
        sbx_meta_kstr(&m, "error", json_string_value(text), json_string_length(text));
    else
        sbx_meta_kstr(&m, "error", msg, len);
    sbx_meta_end(&m, at, 1);
    json_decref(text);
    inv_call_reply(c, m.data, m.len, NULL, 0);
    tine_buf_dispose(&m);
}

uint32_t inv__hc_remaining_ms(const inv_call_t *c)
{
    uint64_t timeout_ns = (uint64_t)c->pool->fn->timeout_ms * 1000000u;
    uint64_t elapsed = c->dispatched_at ? tine_now_ns() - c->dispatched_at : 0;
    return elapsed >= timeout_ns ? 0 : (uint32_t)((timeout_ns - elapsed) / 1000000u);
}

/* --------------------------------------------------------------- Redis */

typedef enum { RQ_GET, RQ_SET, RQ_DEL, RQ_INCR, RQ_SCAN, RQ_SECRET } redis_kind_t;

/* The KV limits of one app: its manifest's, else the node's. */
typedef struct {
    uint64_t value_max, keys_max, bytes_max;
    bool keys_from_manifest, bytes_from_manifest;
} kv_limits_t;

/* One Redis request on behalf of a host call (a SCAN may take several). */
typedef struct {
    inv_hostcalls_t *hc;
    inv_call_t *c;
    redis_kind_t kind;
    kv_limits_t limits; /* set, del, incr */
    char *key;          /* the user's key (messages),  */
    char *pattern;      /* SCAN MATCH pattern (pattern_len bytes) */
    size_t pattern_len;
    size_t strip;    /* bytes of "tine:kv:{app}:" before a user's key */
    json_t *keys;    /* SCAN results so far */
    char cursor[32]; /* SCAN cursor */
} redis_req_t;

static void redis_req_free(redis_req_t *rq)
{
    free(rq->key);
    free(rq->pattern);
    json_decref(rq->keys);
    free(rq);
}

static void on_redis_reply(void *data, redisReply *r);

/* Sends one command of rq (argv with lengths). On failure answers the host
 * call with an error and frees rq. */
static void redis_send(redis_req_t *rq, int argc, const char **argv, const size_t *argvlen)
{
    rds_async_t *redis = rq->hc->redis;
    if (redis == NULL || rds_async_command(redis, on_redis_reply, rq, argc, argv, argvlen) != 0) {
        inv__hc_fail(rq->c, "redis is unreachable%s", redis ? "" : " (no redis configured)");
        redis_req_free(rq);
    }
}

/* Sends the next SCAN of a tine.kv.keys request. */
static void redis_scan(redis_req_t *rq)
{
    const char *argv[] = {"SCAN", rq->cursor, "MATCH", rq->pattern, "COUNT", "1000"};
    size_t lens[] = {4, strlen(rq->cursor), 5, rq->pattern_len, 5, 4};
    redis_send(rq, 6, argv, lens);
}

/* qsort order of JSON strings: bytewise, a prefix first. */
static int cmp_json_strings(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    size_t lx = json_string_length(x), ly = json_string_length(y);
    int r = memcmp(json_string_value(x), json_string_value(y), lx < ly ? lx : ly);
    return r ? r : (lx > ly) - (lx < ly);
}

/* Takes one SCAN reply; returns true when rq was answered (done or failed). */
static bool scan_step(redis_req_t *rq, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        inv__hc_fail(rq->c, "redis: unexpected SCAN reply");
        return true;
    }
    snprintf(rq->cursor, sizeof(rq->cursor), "%s", r->element[0]->str);
    redisReply *arr = r->element[1];
    for (size_t i = 0; i < arr->elements; i++) {
        redisReply *k = arr->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len > rq->strip)
            json_array_append_new(rq->keys, tine_json_text(k->str + rq->strip, k->len - rq->strip));
    }
    if (json_array_size(rq->keys) > KV_MAX_KEYS) {
        inv__hc_fail(rq->c, "more than %d keys start with '%s'; use a longer prefix", KV_MAX_KEYS, rq->key);
        return true;
    }
    if (strcmp(rq->cursor, "0") != 0) {
        redis_scan(rq);
        return false;
    }
    /* SCAN may return a key twice: sort, then drop repeats. */
    size_t n = json_array_size(rq->keys);
    json_t **items = xmalloc((n ? n : 1) * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(rq->keys, i));
    qsort(items, n, sizeof(*items), cmp_json_strings);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cmp_json_strings(&items[i - 1], &items[i]) != 0)
            json_array_append(sorted, items[i]);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(items[i]);
    free(items);
    inv__hc_reply(rq->c, json_pack("{s:o}", "keys", sorted), NULL, 0);
    return true;
}

/* Answers a KV write from its script's reply (the scripts above). */
static void kv_write_answer(redis_req_t *rq, const redisReply *r)
{
    inv_call_t *c = rq->c;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        inv__hc_fail(c, "redis: unexpected reply to a tine.kv write");
        return;
    }
    long long status = r->element[0]->integer;
    long long bytes = r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : 0;
    const char *app = c->pool->version->app;
    const kv_limits_t *l = &rq->limits;
    char limit[32];
    if (status == 1) {
        inv__hc_fail(c, "app %s is over its KV quota: %" PRIu64 " keys (%s)", app, l->keys_max,
                     l->keys_from_manifest ? "limits.kv_keys_max" : "tined --kv-keys-max");
    } else if (status == 2) {
        inv__fmt_bytes(limit, l->bytes_max);
        inv__hc_fail(c, "app %s is over its KV quota: %s (%s); %lld bytes are stored", app, limit,
                     l->bytes_from_manifest ? "limits.kv_bytes_max" : "tined --kv-bytes-max", bytes);
    } else if (rq->kind == RQ_SET) {
        inv__hc_reply(c, json_object(), NULL, 0);
    } else if (rq->kind == RQ_DEL) {
        bool existed = r->elements >= 4 && r->element[3]->type == REDIS_REPLY_INTEGER && r->element[3]->integer > 0;
        inv__hc_reply(c, json_pack("{s:b}", "deleted", existed), NULL, 0);
    } else if (r->elements >= 4 && r->element[3]->type == REDIS_REPLY_STRING) { /* incr: the value as text */
        inv__hc_reply(c, json_pack("{s:I}", "value", (json_int_t)strtoll(r->element[3]->str, NULL, 10)), NULL, 0);
    } else {
        inv__hc_fail(c, "redis: unexpected reply to tine.kv.incr");
    }
}

/* ------------------------------------------------------------ secrets */

#define SECRETS_SEEN_MAX 4096 /* values remembered for redaction, node-wide */

typedef struct {
    tine_list_t link;
    char *app;
    char *name;
    char *value;
    size_t len;
} inv_secret_seen_t;

static void secret_seen_free(inv_secret_seen_t *s)
{
    free(s->app);
    free(s->name);
    free(s->value);
    free(s);
}

/* Remembers a value a function of app read, for inv__redact. */
static void secret_remember(inv_hostcalls_t *hc, const char *app, const char *name, const char *value, size_t len)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &hc->secrets_seen)
    {
        inv_secret_seen_t *s = tine_list_entry(l, inv_secret_seen_t, link);
        if (s->len == len && strcmp(s->app, app) == 0 && strcmp(s->name, name) == 0 && memcmp(s->value, value, len) == 0)
            return;
    }
    if (hc->nsecrets_seen == SECRETS_SEEN_MAX) {
        inv_secret_seen_t *old = tine_list_entry(tine_list_last(&hc->secrets_seen), inv_secret_seen_t, link);
        tine_log(TINE_LOG_WARN, "more than %d secret values read on this node: %s's %s is no longer redacted from logs",
                 SECRETS_SEEN_MAX, old->app, old->name);
        tine_list_remove(&old->link);
        secret_seen_free(old);
        hc->nsecrets_seen--;
    }
    inv_secret_seen_t *s = xcalloc(1, sizeof(*s));
    s->app = xstrdup(app);
    s->name = xstrdup(name);
    s->value = xmalloc(len ? len : 1);
    memcpy(s->value, value, len);
    s->len = len;
    tine_list_insert_head(&hc->secrets_seen, &s->link);
    hc->nsecrets_seen++;
}

void inv__redact(inv_invoker_t *inv, const char *app, const char *s, size_t len, tine_buf_t *out)
{
    inv_hostcalls_t *hc = inv->hostcalls;
    if (hc == NULL || hc->nsecrets_seen == 0) {
        tine_buf_append(out, s, len);
        return;
    }
    for (size_t i = 0; i < len;) {
        /* The longest value starting here, so one that contains another
         * is replaced whole. */
        const inv_secret_seen_t *best = NULL;
        tine_list_t *l;
        TINE_LIST_FOREACH(l, &hc->secrets_seen)
        {
            const inv_secret_seen_t *v = tine_list_entry(l, inv_secret_seen_t, link);
            if (v->len > 0 && v->len <= len - i && (best == NULL || v->len > best->len) && s[i] == v->value[0] &&
                memcmp(s + i, v->value, v->len) == 0 && strcmp(v->app, app) == 0)
                best = v;
        }
        if (best) {
            tine_buf_append(out, "[secret ", 8);
            tine_buf_append(out, best->name, strlen(best->name));
            tine_buf_append(out, "]", 1);
            i += best->len;
        } else {
            tine_buf_append(out, s + i, 1);
            i++;
        }
    }
}

/* Answers tine.secret from the HGET reply: the opened value, or why not. */
static void secret_answer(redis_req_t *rq, const redisReply *r)
{
    inv_call_t *c = rq->c;
    const char *app = c->pool->version->app;
    const inv_config_t *cfg = &rq->hc->inv->cfg;
    if (r->type != REDIS_REPLY_STRING) {
        inv__hc_fail(c, "app %s has no secret named %s (tine secrets set %s %s)", app, rq->key, app, rq->key);
        return;
    }
    tine_buf_t b;
    tine_buf_init(&b);
    if (tine_secret_open(cfg->secrets_key, app, rq->key, r->str, r->len, &b) != 0) {
        tine_buf_dispose(&b);
        tine_log(TINE_LOG_ERROR, "secret %s of %s does not open with this node's --secrets-key: a wrong key file?",
                 rq->key, app);
        inv__hc_fail(c, "secret %s cannot be decrypted with this node's secrets key (tined --secrets-key): a wrong key "
                        "file?",
                     rq->key);
        return;
    }
    secret_remember(rq->hc, app, rq->key, b.data ? b.data : "", b.len);
    inv__hc_reply(c, json_object(), b.data ? b.data : "", b.len);
    OPENSSL_cleanse(b.data, b.len);
    tine_buf_dispose(&b);
}

/* Serves tine.secret: meta {name}. */
static void serve_secret(inv_hostcalls_t *hc, inv_call_t *c, json_t *meta)
{
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name == NULL || !tine_secret_name_valid(name)) {
        inv__hc_fail(c, "secret names are 1 to 128 of [A-Za-z0-9_], not starting with a digit");
        return;
    }
    if (!hc->inv->cfg.has_secrets_key) {
        inv__hc_fail(c, "this node has no secrets key (tined --secrets-key FILE)");
        return;
    }
    redis_req_t *rq = xcalloc(1, sizeof(*rq));
    rq->hc = hc;
    rq->c = c;
    rq->kind = RQ_SECRET;
    rq->key = xstrdup(name);
    char *key = xasprintf(RDS_KEY_SECRETS_PREFIX "%s", c->pool->version->app);
    const char *argv[] = {"HGET", key, name};
    size_t lens[] = {4, strlen(key), strlen(name)};
    redis_send(rq, 3, argv, lens);
    free(key);
}

/* The reply of a tine.kv command: answers the host call with its value or
 * result, or fails it saying why (Redis unreachable, not an integer, Redis's
 * error); frees the request. */
static void on_redis_reply(void *data, redisReply *r)
{
    redis_req_t *rq = data;
    inv_call_t *c = rq->c;
    if (r == NULL) {
        const char *why = rds_async_error(rq->hc->redis);
        inv__hc_fail(c, "redis is unreachable%s%s", why[0] ? ": " : "", why);
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (rq->kind == RQ_INCR && strstr(r->str, "not an integer") != NULL)
            inv__hc_fail(c, "the value of '%s' is not an integer", rq->key);
        else
            inv__hc_fail(c, "redis: %s", r->str);
    } else {
        switch (rq->kind) {
        case RQ_GET:
            if (r->type == REDIS_REPLY_STRING)
                inv__hc_reply(c, json_pack("{s:b}", "found", 1), r->str, r->len);
            else
                inv__hc_reply(c, json_pack("{s:b}", "found", 0), NULL, 0);
            break;
        case RQ_SET:
        case RQ_DEL:
        case RQ_INCR:
            kv_write_answer(rq, r);
            break;
        case RQ_SECRET:
            secret_answer(rq, r);
            break;
        case RQ_SCAN:
            if (!scan_step(rq, r))
                return; /* the next SCAN is on its way */
            break;
        }
    }
    redis_req_free(rq);
}

/* The KV limits of the app of call c: its manifest's, else the node's. */
static void kv_limits(const inv_call_t *c, kv_limits_t *l)
{
    const reg_manifest_t *m = c->pool->version->manifest;
    const inv_config_t *cfg = &c->inv->cfg;
    l->value_max = m->kv_value_max ? m->kv_value_max : cfg->kv_value_max ? cfg->kv_value_max : INV_DEFAULT_KV_VALUE_MAX;
    l->keys_max = m->kv_keys_max ? m->kv_keys_max : cfg->kv_keys_max ? cfg->kv_keys_max : INV_DEFAULT_KV_KEYS_MAX;
    l->bytes_max = m->kv_bytes_max ? m->kv_bytes_max : cfg->kv_bytes_max ? cfg->kv_bytes_max : INV_DEFAULT_KV_BYTES_MAX;
    l->keys_from_manifest = m->kv_keys_max != 0;
    l->bytes_from_manifest = m->kv_bytes_max != 0;
}

/* The scripts of the KV writes. KEYS: the value's key, tine:kvstat:{app},
 * tine:kvexp:{app}, tine:kvttl:{app}. ARGV: the user's key, the app's key
 * prefix, the value (set) or the increment (incr), the ttl in ms (set; ""
 * for none), the key count and byte limits. Each answers {status, keys,
 * bytes} (status 0: done, 1: over the key count, 2: over the bytes, nothing
 * written); incr adds the new value as text, del 1 when the key existed.
 *
 * The prelude takes expired keys off the counts: up to KV_RECLAIM due in
 * tine:kvexp, and the key about to be written; `old` is the bytes the key
 * counts now (nil when absent). */
#define KV_RECLAIM "100"
#define KV_PRELUDE                                                                                                     \
    "local full, stat, exp, ttl, k = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]\n"                                    \
    "local t = redis.call('TIME')\n"                                                                                   \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                                          \
    "local function settle(key, fk)\n"                                                                                 \
    "  local pt = redis.call('PTTL', fk)\n"                                                                            \
    "  if pt > 0 then\n"                                                                                               \
    "    if redis.call('HEXISTS', ttl, key) == 1 then redis.call('ZADD', exp, now + pt, key) end\n"                    \
    "    return\n"                                                                                                     \
    "  end\n"                                                                                                          \
    "  local sz = redis.call('HGET', ttl, key)\n"                                                                      \
    "  if not sz then return end\n"                                                                                    \
    "  if pt == -2 then\n"                                                                                             \
    "    redis.call('HINCRBY', stat, 'keys', -1)\n"                                                                    \
    "    redis.call('HINCRBY', stat, 'bytes', -tonumber(sz))\n"                                                        \
    "  end\n"                                                                                                          \
    "  redis.call('ZREM', exp, key)\n"                                                                                 \
    "  redis.call('HDEL', ttl, key)\n"                                                                                 \
    "end\n"                                                                                                            \
    "for _, key in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, " KV_RECLAIM ")) do\n"             \
    "  settle(key, ARGV[2] .. key)\n"                                                                                  \
    "end\n"                                                                                                            \
    "settle(k, full)\n"                                                                                                \
    "local old = nil\n"                                                                                                \
    "if redis.call('EXISTS', full) == 1 then old = #k + redis.call('STRLEN', full) end\n"                              \
    "local keys = tonumber(redis.call('HGET', stat, 'keys') or '0')\n"                                                 \
    "local bytes = tonumber(redis.call('HGET', stat, 'bytes') or '0')\n"                                               \
    "local function count(dk, db)\n"                                                                                   \
    "  if dk ~= 0 then keys = redis.call('HINCRBY', stat, 'keys', dk) end\n"                                           \
    "  if db ~= 0 then bytes = redis.call('HINCRBY', stat, 'bytes', db) end\n"                                         \
    "  if keys < 0 then keys = 0; redis.call('HSET', stat, 'keys', 0) end\n"                                           \
    "  if bytes < 0 then bytes = 0; redis.call('HSET', stat, 'bytes', 0) end\n"                                        \
    "end\n"

static const char kv_set_script[] =
    KV_PRELUDE "local size = #k + #ARGV[3]\n"
               "if not old and keys + 1 > tonumber(ARGV[5]) then return {1, keys, bytes} end\n"
               "local grow = size - (old or 0)\n"
               "if grow > 0 and bytes + grow > tonumber(ARGV[6]) then return {2, keys, bytes} end\n"
               "if ARGV[4] ~= '' then\n"
               "  redis.call('SET', full, ARGV[3], 'PX', ARGV[4])\n"
               "  redis.call('ZADD', exp, now + tonumber(ARGV[4]), k)\n"
               "  redis.call('HSET', ttl, k, size)\n"
               "else\n"
               "  redis.call('SET', full, ARGV[3])\n"
               "  redis.call('ZREM', exp, k)\n"
               "  redis.call('HDEL', ttl, k)\n"
               "end\n"
               "count(old and 0 or 1, grow)\n"
               "return {0, keys, bytes}\n";

static const char kv_del_script[] = KV_PRELUDE "if not old then return {0, keys, bytes, 0} end\n"
                                               "redis.call('DEL', full)\n"
                                               "redis.call('ZREM', exp, k)\n"
                                               "redis.call('HDEL', ttl, k)\n"
                                               "count(-1, -old)\n"
                                               "return {0, keys, bytes, 1}\n";

/* INCRBY first (it checks the value is an integer and keeps a ttl), undone
 * when the longer value does not fit. */
static const char kv_incr_script[] =
    KV_PRELUDE "if not old and keys + 1 > tonumber(ARGV[5]) then return {1, keys, bytes} end\n"
               "local r = redis.pcall('INCRBY', full, ARGV[3])\n"
               "if type(r) == 'table' and r.err then return r end\n"
               "local size = #k + redis.call('STRLEN', full)\n"
               "local grow = size - (old or 0)\n"
               "if grow > 0 and bytes + grow > tonumber(ARGV[6]) then\n"
               "  if old then redis.call('DECRBY', full, ARGV[3]) else redis.call('DEL', full) end\n"
               "  return {2, keys, bytes}\n"
               "end\n"
               "if redis.call('HEXISTS', ttl, k) == 1 then redis.call('HSET', ttl, k, size) end\n"
               "count(old and 0 or 1, grow)\n"
               "return {0, keys, bytes, redis.call('GET', full)}\n";

/* "tine:kv:{app}:{key}" into b (not NUL-terminated). */
static void kv_full_key(tine_buf_t *b, const char *app, const char *key, size_t key_len)
{
    tine_buf_init(b);
    tine_buf_appendf(b, RDS_KEY_KV_PREFIX "%s:", app);
    tine_buf_append(b, key, key_len);
}

/* Serves kv.get, kv.set, kv.del, kv.incr and kv.keys. */
static void serve_kv(inv_hostcalls_t *hc, inv_call_t *c, const char *op, json_t *meta, const char *body,
                     size_t body_len)
{
    const char *app = c->pool->version->app;
    redis_req_t *rq = xcalloc(1, sizeof(*rq));
    rq->hc = hc;
    rq->c = c;
    if (strcmp(op, "kv.keys") == 0) {
        json_t *p = json_object_get(meta, "prefix");
        const char *prefix = json_is_string(p) ? json_string_value(p) : "";
        size_t plen = json_is_string(p) ? json_string_length(p) : 0;
        tine_buf_t pat;
        tine_buf_init(&pat);
        tine_buf_appendf(&pat, RDS_KEY_KV_PREFIX "%s:", app);
        rq->strip = pat.len;
        for (size_t i = 0; i < plen; i++) { /* the prefix matches literally */
            if (memchr("*?[]\\", prefix[i], 5) != NULL)
                tine_buf_append(&pat, "\\", 1);
            tine_buf_append(&pat, prefix + i, 1);
        }
        tine_buf_append(&pat, "*", 1);
        rq->pattern = pat.data;
        rq->pattern_len = pat.len;
        rq->key = xstrndup(prefix, plen);
        rq->kind = RQ_SCAN;
        rq->keys = json_array();
        snprintf(rq->cursor, sizeof(rq->cursor), "0");
        redis_scan(rq);
        return;
    }
    json_t *k = json_object_get(meta, "key");
    size_t key_len = json_string_length(k);
    if (!json_is_string(k) || key_len == 0 || key_len > KV_MAX_KEY) {
        inv__hc_fail(c, "keys are 1 to %d bytes, got %zu", KV_MAX_KEY, key_len);
        redis_req_free(rq);
        return;
    }
    const char *key = json_string_value(k);
    rq->key = xstrndup(key, key_len);
    tine_buf_t full;
    kv_full_key(&full, app, key, key_len);
    if (strcmp(op, "kv.get") == 0) {
        rq->kind = RQ_GET;
        const char *argv[] = {"GET", full.data};
        size_t lens[] = {3, full.len};
        redis_send(rq, 2, argv, lens);
        tine_buf_dispose(&full);
        return;
    }
    /* set, del, incr: one script each (KV quotas above). */
    kv_limits(c, &rq->limits);
    char by[32] = "", px[32] = "", keys_max[32], bytes_max[32];
    const char *value = "";
    size_t value_len = 0;
    const char *script;
    if (strcmp(op, "kv.del") == 0) {
        rq->kind = RQ_DEL;
        script = kv_del_script;
    } else if (strcmp(op, "kv.incr") == 0) {
        json_t *j = json_object_get(meta, "by");
        double d = j ? json_number_value(j) : 1;
        if ((j != NULL && !json_is_number(j)) || d < -9.0e18 || d > 9.0e18 || d != (double)(long long)d) {
            inv__hc_fail(c, "by must be an integer");
            redis_req_free(rq);
            tine_buf_dispose(&full);
            return;
        }
        rq->kind = RQ_INCR;
        script = kv_incr_script;
        snprintf(by, sizeof(by), "%lld", (long long)d);
        value = by;
        value_len = strlen(by);
    } else { /* kv.set */
        if (body_len > rq->limits.value_max) {
            inv__hc_fail(c, "the value of %zu bytes is over the limit of %" PRIu64 " bytes", body_len,
                         rq->limits.value_max);
            redis_req_free(rq);
            tine_buf_dispose(&full);
            return;
        }
        rq->kind = RQ_SET;
        script = kv_set_script;
        value = body ? body : "";
        value_len = body_len;
        double ttl = json_number_value(json_object_get(meta, "ttl_ms"));
        if (ttl >= 1)
            snprintf(px, sizeof(px), "%.0f", ttl);
    }
    snprintf(keys_max, sizeof(keys_max), "%" PRIu64, rq->limits.keys_max);
    snprintf(bytes_max, sizeof(bytes_max), "%" PRIu64, rq->limits.bytes_max);
    tine_buf_t stat, exp, ttl, prefix;
    tine_buf_init(&stat);
    tine_buf_init(&exp);
    tine_buf_init(&ttl);
    tine_buf_init(&prefix);
    tine_buf_appendf(&stat, RDS_KEY_KVSTAT_PREFIX "%s", app);
    tine_buf_appendf(&exp, RDS_KEY_KVEXP_PREFIX "%s", app);
    tine_buf_appendf(&ttl, RDS_KEY_KVTTL_PREFIX "%s", app);
    tine_buf_appendf(&prefix, RDS_KEY_KV_PREFIX "%s:", app);
    const char *argv[] = {"EVAL", script,      "4",   full.data, stat.data, exp.data, ttl.data,
                          key,    prefix.data, value, px,        keys_max,  bytes_max};
    size_t lens[] = {4,       strlen(script), 1,         full.len,   stat.len,         exp.len,          ttl.len,
                     key_len, prefix.len,     value_len, strlen(px), strlen(keys_max), strlen(bytes_max)};
    redis_send(rq, 13, argv, lens);
    tine_buf_dispose(&full);
    tine_buf_dispose(&stat);
    tine_buf_dispose(&exp);
    tine_buf_dispose(&ttl);
    tine_buf_dispose(&prefix);
}

/* events stored (or did not store) a tine.emit: answers the host call with
 * the event's id, or fails it saying why. */
static void on_emitted(void *data, int rc, const char *error, const char *event_id)
{
    inv_call_t *c = data;
    if (rc == 0)
        inv__hc_reply(c, json_pack("{s:s}", "id", event_id), NULL, 0);
    else
        inv__hc_fail(c, "the event was not stored: %s", error ? error : tine_strerror(rc));
}

/* Serves tine.emit: checks the type and the data, then hands the event to
 * its owner (inv_config_t.on_emit), which answers its id. */
static void serve_emit(inv_hostcalls_t *hc, inv_call_t *c, json_t *meta, const char *body, size_t body_len)
{
    json_t *t = json_object_get(meta, "type");
    const char *type = json_string_value(t);
    size_t tl = json_string_length(t);
    bool ok = type != NULL && tl > 0 && tl <= EMIT_MAX_TYPE;
    for (size_t i = 0; ok && i < tl; i++)
        ok = (unsigned char)type[i] >= 0x20 && type[i] != 0x7f;
    if (!ok) {
        inv__hc_fail(c, "the event type must be 1 to %d characters without control characters", EMIT_MAX_TYPE);
        return;
    }
    if (body_len > EMIT_MAX_DATA) {
        inv__hc_fail(c, "event data of %zu bytes is over the limit of %d bytes", body_len, EMIT_MAX_DATA);
        return;
    }
    json_t *data = NULL;
    if (body_len > 0) {
        json_error_t jerr;
        data = json_loadb(body, body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (data == NULL) {
            inv__hc_fail(c, "event data is not JSON: %s", jerr.text);
            return;
        }
    }
    inv_emit_t e = {
        .app = c->pool->version->app,
        .function = c->pool->fn->name,
        .version = c->pool->version->version,
        .invocation_id = c->id_hex,
        .trace_id = c->trace,
        .type = type,
        .type_len = tl,
        .data = data,
    };
    const inv_config_t *cfg = &hc->inv->cfg;
    if (cfg->on_emit == NULL)
        inv__hc_fail(c, "events are not enabled on this node");
    else if (cfg->on_emit(cfg->on_emit_data, &e, on_emitted, c) != 0)
        inv__hc_fail(c, "the event was not stored: redis is unreachable");
    json_decref(data);
}

/* ---------------------------------------------------------- the service */

inv_hostcalls_t *inv__hostcalls_new(inv_invoker_t *inv)
{
    inv_hostcalls_t *hc = xcalloc(1, sizeof(*hc));
    hc->inv = inv;
    tine_list_init(&hc->secrets_seen);
    if (inv->cfg.redis_url) {
        /* A call made while Redis is away waits a little for it (a restart,
         * a blip) before it fails. */
        rds_async_config_t rcfg = {.name = "invoker-kv", .when_down = RDS_WAIT_WHEN_DOWN, .max_wait_ms = 1000};
        char err[512];
        if (rds_async_new(inv->loop, inv->cfg.redis_url, &rcfg, &hc->redis, err, sizeof err) != 0)
            tine_log(TINE_LOG_ERROR, "host calls: %s; tine.kv will answer errors", err);
    }
    hc->http = inv__http_new(inv->loop);
    return hc;
}

void inv__hostcalls_free(inv_hostcalls_t *hc)
{
    if (hc == NULL)
        return;
    hc->closing = true;
    /* Both answer what is in flight with an error (the calls are held). */
    rds_async_close(hc->redis, false, NULL, NULL);
    hc->redis = NULL;
    inv__http_free(hc->http);
    inv__invoke_dispose(hc);
    tine_list_t *l, *tmp;
    TINE_LIST_FOREACH_SAFE(l, tmp, &hc->secrets_seen)
    secret_seen_free(tine_list_entry(l, inv_secret_seen_t, link));
    free(hc);
}

int inv_delete_app_data(inv_invoker_t *inv, const char *app, size_t *kv_keys, char *err, size_t errlen)
{
    *kv_keys = 0;
    if (inv->cfg.redis_url == NULL)
        return tine_fail(err, errlen, "no redis configured for tine.kv");
    /* Admin calls are rare: a connection of their own, for the call. */
    rds_sync_t *s = rds_sync_new(inv->cfg.redis_url, 5000, err, errlen);
    if (s == NULL)
        return TINE_EREDIS;
    char pattern[300], key[300];
    snprintf(pattern, sizeof(pattern), RDS_KEY_KV_PREFIX "%s:*", app);
    int rc = rds_sync_unlink_matching(s, pattern, kv_keys, err, errlen);
    const char *counts[] = {RDS_KEY_KVSTAT_PREFIX, RDS_KEY_KVEXP_PREFIX, RDS_KEY_KVTTL_PREFIX};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        size_t ignored;
        snprintf(key, sizeof(key), "%s%s", counts[i], app);
        rc = rds_sync_unlink_measured(s, "EXISTS", key, &ignored, err, errlen);
    }
    rds_sync_free(s);
    return rc;
}

/* True when the len bytes at op are the op `name`. */
static bool op_is(const char *op, uint32_t len, const char *name)
{
    return strlen(name) == len && memcmp(op, name, len) == 0;
}

/* Serves one HOSTCALL frame of the running call `c`: its metadata is a
 * binary object (sandbox/meta.h) {op, ...}. */
void inv_hostcall(inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload)
{
    inv_call_hold(c);
    inv_hostcalls_t *hc = c->inv->hostcalls;
    const char *body = payload + h->meta_len;
    size_t body_len = h->len - h->meta_len;
    bool ok = sbx_meta_is_object(payload, h->meta_len);
    uint32_t ol = 0;
    const char *op = ok ? sbx_meta_member_str(payload, h->meta_len, "op", &ol) : NULL;
    json_t *meta = NULL;
    /* The SDK waits for each answer, so a call has one host call in flight
     * plus its detached invokes: more means the sandbox is not our SDK. */
    if (c->holds > INV_MAX_INVOKE_FANOUT + 2)
        inv__hc_fail(c, "too many host calls in flight");
    else if (hc == NULL || hc->closing)
        inv__hc_fail(c, "the node is shutting down");
    else if (!ok)
        inv__hc_fail(c, "malformed host call: its %" PRIu32 " bytes of metadata are not one binary object",
                     h->meta_len);
    else if (op == NULL)
        inv__hc_fail(c, "host call without an op");
    else if (op_is(op, ol, "invoke")) /* the hop: read in place, no tree */
        inv__invoke(c, payload, h->meta_len, body, body_len);
    else if ((meta = sbx_meta_to_json(payload, h->meta_len, NULL, 0)) == NULL)
        inv__hc_fail(c, "malformed host call metadata");
    else if (op_is(op, ol, "http"))
        inv__http_request(hc->http, c, meta, body, body_len);
    else if (op_is(op, ol, "emit"))
        serve_emit(hc, c, meta, body, body_len);
    else if (op_is(op, ol, "secret"))
        serve_secret(hc, c, meta);
    else if (op_is(op, ol, "kv.get") || op_is(op, ol, "kv.set") || op_is(op, ol, "kv.del") ||
             op_is(op, ol, "kv.incr") || op_is(op, ol, "kv.keys")) {
        char kv_op[8] = {0}; /* the op read above (an object's first "op"), NUL-terminated */
        memcpy(kv_op, op, ol);
        serve_kv(hc, c, kv_op, meta, body, body_len);
    }
    else
        inv__hc_fail(c, "unknown host call '%.*s'", (int)(ol > 64 ? 64 : ol), op);
    json_decref(meta);
}
