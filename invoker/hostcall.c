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
 * ':', so no app can name another app's keys). */
#include "hostcall_internal.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_MAX_KEY 512
#define KV_MAX_VALUE (1024 * 1024)
#define KV_MAX_KEYS 10000 /* keys one tine.kv.keys may return */
#define EMIT_MAX_TYPE 256
#define EMIT_MAX_DATA (1024 * 1024)

/* ------------------------------------------------------------ answers */

void inv__hc_reply(inv_call_t *c, json_t *meta, const void *body, size_t body_len)
{
    char *m = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (m == NULL) {
        inv__hc_fail(c, "the node could not build its answer");
        return;
    }
    size_t ml = strlen(m);
    if (ml + body_len > SBX_WIRE_MAX_FRAME) {
        free(m);
        inv__hc_fail(c, "the answer of %zu bytes is over the limit of %u bytes", ml + body_len,
                     (unsigned)SBX_WIRE_MAX_FRAME);
        return;
    }
    inv_call_reply(c, m, ml, body, body_len);
    free(m);
}

void inv__hc_fail(inv_call_t *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    json_t *meta = json_object();
    json_object_set_new(meta, "error", tine_json_text(msg, len));
    char *m = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    inv_call_reply(c, m, strlen(m), NULL, 0);
    free(m);
}

uint32_t inv__hc_remaining_ms(const inv_call_t *c)
{
    uint64_t timeout_ns = (uint64_t)c->pool->fn->timeout_ms * 1000000u;
    uint64_t elapsed = c->dispatched_at ? tine_now_ns() - c->dispatched_at : 0;
    return elapsed >= timeout_ns ? 0 : (uint32_t)((timeout_ns - elapsed) / 1000000u);
}

/* --------------------------------------------------------------- Redis */

typedef enum { RQ_GET, RQ_SET, RQ_DEL, RQ_INCR, RQ_SCAN } redis_kind_t;

/* One Redis request on behalf of a host call (a SCAN may take several). */
typedef struct {
    inv_hostcalls_t *hc;
    inv_call_t *c;
    redis_kind_t kind;
    char *key;       /* the user's key (messages) */
    char *pattern;   /* SCAN MATCH pattern (pattern_len bytes) */
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
            inv__hc_reply(c, json_object(), NULL, 0);
            break;
        case RQ_DEL:
            inv__hc_reply(c, json_pack("{s:b}", "deleted", r->type == REDIS_REPLY_INTEGER && r->integer > 0), NULL,
                          0);
            break;
        case RQ_INCR:
            inv__hc_reply(c, json_pack("{s:I}", "value", (json_int_t)r->integer), NULL, 0);
            break;
        case RQ_SCAN:
            if (!scan_step(rq, r))
                return; /* the next SCAN is on its way */
            break;
        }
    }
    redis_req_free(rq);
}

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
    rq->key = xstrndup(json_string_value(k), key_len);
    tine_buf_t full;
    kv_full_key(&full, app, json_string_value(k), key_len);
    char num[32];
    const char *argv[5] = {NULL, full.data};
    size_t lens[5] = {0, full.len};
    int argc = 2;
    if (strcmp(op, "kv.get") == 0) {
        rq->kind = RQ_GET;
        argv[0] = "GET";
    } else if (strcmp(op, "kv.del") == 0) {
        rq->kind = RQ_DEL;
        argv[0] = "DEL";
    } else if (strcmp(op, "kv.incr") == 0) {
        json_t *by = json_object_get(meta, "by");
        double d = by ? json_number_value(by) : 1;
        if ((by != NULL && !json_is_number(by)) || d < -9.0e18 || d > 9.0e18 || d != (double)(long long)d) {
            inv__hc_fail(c, "by must be an integer");
            redis_req_free(rq);
            tine_buf_dispose(&full);
            return;
        }
        rq->kind = RQ_INCR;
        argv[0] = "INCRBY";
        snprintf(num, sizeof(num), "%lld", (long long)d);
        argv[argc] = num;
        lens[argc++] = strlen(num);
    } else { /* kv.set */
        if (body_len > KV_MAX_VALUE) {
            inv__hc_fail(c, "the value of %zu bytes is over the limit of %d bytes", body_len, KV_MAX_VALUE);
            redis_req_free(rq);
            tine_buf_dispose(&full);
            return;
        }
        rq->kind = RQ_SET;
        argv[0] = "SET";
        argv[argc] = body ? body : "";
        lens[argc++] = body_len;
        double ttl = json_number_value(json_object_get(meta, "ttl_ms"));
        if (ttl >= 1) {
            snprintf(num, sizeof(num), "%.0f", ttl);
            argv[argc] = "PX";
            lens[argc++] = 2;
            argv[argc] = num;
            lens[argc++] = strlen(num);
        }
    }
    lens[0] = strlen(argv[0]);
    redis_send(rq, argc, argv, lens);
    tine_buf_dispose(&full);
}

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
        .invocation_id = c->id_hex,
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
    free(hc);
}

/* Serves one HOSTCALL frame of the running call `c`. */
void inv_hostcall(inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload)
{
    inv_call_hold(c);
    inv_hostcalls_t *hc = c->inv->hostcalls;
    const char *body = payload + h->meta_len;
    size_t body_len = h->len - h->meta_len;
    json_t *meta = json_loadb(payload, h->meta_len, JSON_ALLOW_NUL, NULL);
    const char *op = json_string_value(json_object_get(meta, "op"));
    /* The SDK waits for each answer, so a call has one host call in flight
     * plus its detached invokes: more means the sandbox is not our SDK. */
    if (c->holds > INV_MAX_INVOKE_FANOUT + 2)
        inv__hc_fail(c, "too many host calls in flight");
    else if (hc == NULL || hc->closing)
        inv__hc_fail(c, "the node is shutting down");
    else if (op == NULL)
        inv__hc_fail(c, "host call without an op");
    else if (strcmp(op, "invoke") == 0)
        inv__invoke(c, meta, body, body_len);
    else if (strcmp(op, "http") == 0)
        inv__http_request(hc->http, c, meta, body, body_len);
    else if (strcmp(op, "emit") == 0)
        serve_emit(hc, c, meta, body, body_len);
    else if (strcmp(op, "kv.get") == 0 || strcmp(op, "kv.set") == 0 || strcmp(op, "kv.del") == 0 ||
             strcmp(op, "kv.incr") == 0 || strcmp(op, "kv.keys") == 0)
        serve_kv(hc, c, op, meta, body, body_len);
    else
        inv__hc_fail(c, "unknown host call '%s'", op);
    json_decref(meta);
}
