/* The invoker: keeps a pool of warm sandboxes per (app version, function),
 * sends each sandbox one invocation at a time over its socket, and turns the
 * sandbox's answer, its death or its overrun into a result. */
#include "invoker.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

typedef enum { SBX_STARTING, SBX_IDLE, SBX_BUSY, SBX_CLOSING } sandbox_state_t;

typedef struct inv_pool inv_pool_t;
typedef struct inv_sandbox inv_sandbox_t;

struct inv_call {
    inv_invoker_t *inv;
    inv_pool_t *pool;
    inv_call_t *next; /* queue link */
    inv_done_cb cb;
    void *data;
    uint64_t id;
    char id_hex[33];
    json_t *request;
    char *body;
    size_t body_len;
    uint64_t queued_at;
    uint64_t dispatched_at;
    bool cold;
    uint64_t cold_start_ns;
};

struct inv_sandbox {
    uv_pipe_t pipe;
    uv_timer_t timer;
    inv_pool_t *pool;
    inv_sandbox_t *next;
    pid_t pid;
    sandbox_state_t state;
    int handles_open;
    bool timed_out;
    char *rbuf;
    size_t rlen;
    size_t rcap;
    inv_call_t *call;
    uint64_t spawned_at;
    uint64_t ready_ns;
    uint64_t invocations;
    bool fresh; /* has not served an invocation yet */
};

struct inv_pool {
    inv_invoker_t *inv;
    inv_pool_t *next;
    reg_app_version_t *version; /* retained */
    size_t fn_index;
    const reg_function_t *fn;
    inv_sandbox_t *sandboxes;
    size_t nsandboxes;
    inv_call_t *queue_head;
    inv_call_t *queue_tail;
    size_t queued;
    bool retired;
};

struct inv_invoker {
    uv_loop_t *loop;
    sbx_zygote_t *zygote;
    inv_config_t cfg;
    inv_pool_t *pools;
    uint64_t next_id;
    char node_prefix[17];
    bool closing;
};

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} frame_write_t;

static void pool_dispatch(inv_pool_t *p);
static void sandbox_close(inv_sandbox_t *s);

inv_invoker_t *inv_new(uv_loop_t *loop, sbx_zygote_t *zygote, const inv_config_t *cfg)
{
    inv_invoker_t *inv = xcalloc(1, sizeof(*inv));
    inv->loop = loop;
    inv->zygote = zygote;
    inv->cfg.max_queue = cfg && cfg->max_queue ? cfg->max_queue : 100;
    inv->cfg.store = cfg ? cfg->store : NULL;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = tine_now_ns() ^ (uint64_t)getpid();
    snprintf(inv->node_prefix, sizeof(inv->node_prefix), "%016" PRIx64, r);
    return inv;
}

/* Finishes a call: runs its callback (unless cancelled) and frees it. */
static void call_finish(inv_call_t *c, inv_result_t *res)
{
    res->invocation_id = c->id_hex;
    res->cold = c->cold;
    res->cold_start_ns = c->cold_start_ns;
    if (c->dispatched_at) {
        res->duration_ns = tine_now_ns() - c->dispatched_at;
        res->queued_ns = c->dispatched_at - c->queued_at;
    } else {
        res->queued_ns = tine_now_ns() - c->queued_at;
    }
    if (c->cb)
        c->cb(c->data, res);
    json_decref(c->request);
    free(c->body);
    free(c);
}

static void call_fail(inv_call_t *c, int code, int status, const char *error)
{
    inv_result_t res = {0};
    res.code = code;
    res.status = status;
    res.error = error;
    call_finish(c, &res);
}

static void pool_maybe_free(inv_pool_t *p)
{
    if (!p->retired || p->nsandboxes || p->queued)
        return;
    inv_invoker_t *inv = p->inv;
    for (inv_pool_t **pp = &inv->pools; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    reg_app_version_release(p->version);
    free(p);
    if (inv->closing && inv->pools == NULL)
        free(inv);
}

static void on_sandbox_handle_closed(uv_handle_t *h)
{
    inv_sandbox_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    inv_pool_t *p = s->pool;
    for (inv_sandbox_t **sp = &p->sandboxes; *sp; sp = &(*sp)->next) {
        if (*sp == s) {
            *sp = s->next;
            break;
        }
    }
    p->nsandboxes--;
    free(s->rbuf);
    free(s);
    /* A queued call may now get a sandbox in place of the closed one. */
    pool_dispatch(p);
    pool_maybe_free(p);
}

/* Closes a sandbox: its socket (the sandbox exits on EOF) and its timer. */
static void sandbox_close(inv_sandbox_t *s)
{
    if (s->state == SBX_CLOSING)
        return;
    s->state = SBX_CLOSING;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->pipe, on_sandbox_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_sandbox_handle_closed);
}

static void on_frame_written(uv_write_t *req, int status)
{
    frame_write_t *w = container_of(req, frame_write_t, req);
    free(w->buf.base);
    free(w);
}

/* Queues one frame to a sandbox. The frame is copied. Returns 0 or a libuv
 * error. */
static int sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len,
                         const char *body, size_t body_len)
{
    size_t total = sizeof(sbx_frame_hdr_t) + meta_len + body_len;
    char *frame = xmalloc(total);
    sbx_frame_hdr_t h = {0};
    h.len = (uint32_t)(meta_len + body_len);
    h.type = type;
    h.meta_len = (uint32_t)meta_len;
    h.id = id;
    memcpy(frame, &h, sizeof(h));
    memcpy(frame + sizeof(h), meta, meta_len);
    if (body_len)
        memcpy(frame + sizeof(h) + meta_len, body, body_len);
    frame_write_t *w = xmalloc(sizeof(*w));
    w->buf = uv_buf_init(frame, (unsigned)total);
    int r = uv_write(&w->req, (uv_stream_t *)&s->pipe, &w->buf, 1, on_frame_written);
    if (r != 0) {
        free(frame);
        free(w);
    }
    return r;
}

/* Sends the call's INVOKE frame to an idle sandbox and arms the timeout. */
static void sandbox_dispatch(inv_sandbox_t *s, inv_call_t *c)
{
    inv_pool_t *p = s->pool;
    json_t *ctx = json_pack("{s:s, s:I, s:s, s:s, s:i, s:i}", "app", p->version->app, "version",
                            (json_int_t)p->version->version, "function", p->fn->name, "invocation_id", c->id_hex,
                            "timeout_ms", (int)p->fn->timeout_ms, "memory_mb", (int)p->fn->memory_mb);
    json_object_set_new(c->request, "ctx", ctx);
    char *meta = json_dumps(c->request, JSON_COMPACT);

    s->state = SBX_BUSY;
    s->call = c;
    c->cold = s->fresh;
    c->cold_start_ns = s->fresh ? s->ready_ns : 0;
    s->fresh = false;
    s->invocations++;
    c->dispatched_at = tine_now_ns();

    int r = sandbox_write(s, SBX_MSG_INVOKE, c->id, meta, strlen(meta), c->body, c->body_len);
    free(meta);
    if (r != 0) {
        s->call = NULL;
        call_fail(c, TINE_ECRASH, 502, "the sandbox's socket is closed");
        sandbox_close(s);
        return;
    }
}

static void on_timeout(uv_timer_t *t)
{
    inv_sandbox_t *s = t->data;
    if (s->state != SBX_BUSY || s->call == NULL)
        return;
    inv_call_t *c = s->call;
    s->call = NULL;
    s->timed_out = true;
    char msg[128];
    snprintf(msg, sizeof(msg), "function %s timed out after %" PRIu32 " ms", s->pool->fn->name,
             s->pool->fn->timeout_ms);
    kill(s->pid, SIGKILL);
    sandbox_close(s);
    call_fail(c, TINE_ETIMEOUT, 504, msg);
}

/* Removes and returns the oldest queued call (the queue must not be empty). */
static inv_call_t *pool_pop_call(inv_pool_t *p)
{
    inv_call_t *c = p->queue_head;
    p->queue_head = c->next;
    if (p->queue_head == NULL)
        p->queue_tail = NULL;
    p->queued--;
    c->next = NULL;
    return c;
}

static void pool_take_call(inv_pool_t *p, inv_sandbox_t *s)
{
    sandbox_dispatch(s, pool_pop_call(p));
    if (s->state == SBX_BUSY)
        uv_timer_start(&s->timer, on_timeout, p->fn->timeout_ms, 0);
}

static void sandbox_on_frame(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload);

/* Serves one tine.kv host call for the sandbox's current invocation and
 * answers with a HOSTREPLY frame: meta {"found":..} / {"value":N} /
 * {"deleted":..} / {"keys":[..]} / {} or {"error":"..."}; body: the value of
 * a get. Keys live in the app's own key space. */
static void sandbox_hostcall(inv_sandbox_t *s, const sbx_frame_hdr_t *h, const char *payload)
{
    const char *app = s->pool->version->app;
    json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
    const char *op = json_string_value(json_object_get(meta, "op"));
    const char *key = json_string_value(json_object_get(meta, "key"));
    const char *body = payload + h->meta_len;
    size_t body_len = h->len - h->meta_len;
    char err[512] = "";
    json_t *reply = NULL;
    char *value = NULL;
    size_t value_len = 0;
    reg_store_t *st = s->pool->inv->cfg.store;
    if (op == NULL || st == NULL) {
        snprintf(err, sizeof(err), st ? "host call without an op" : "tine.kv is not available on this node");
    } else if (strcmp(op, "kv.get") == 0 && key) {
        int found = 0;
        if (reg_kv_get(st, app, key, &value, &value_len, &found, err, sizeof(err)) == 0)
            reply = json_pack("{s:b}", "found", found);
    } else if (strcmp(op, "kv.set") == 0 && key) {
        json_int_t ttl = json_integer_value(json_object_get(meta, "ttl_ms"));
        if (reg_kv_set(st, app, key, body, body_len, ttl > 0 ? (uint64_t)ttl : 0, err, sizeof(err)) == 0)
            reply = json_object();
    } else if (strcmp(op, "kv.del") == 0 && key) {
        int deleted = 0;
        if (reg_kv_del(st, app, key, &deleted, err, sizeof(err)) == 0)
            reply = json_pack("{s:b}", "deleted", deleted);
    } else if (strcmp(op, "kv.incr") == 0 && key) {
        json_t *by = json_object_get(meta, "by");
        int64_t v = 0;
        if (reg_kv_incr(st, app, key, by ? json_integer_value(by) : 1, &v, err, sizeof(err)) == 0)
            reply = json_pack("{s:I}", "value", (json_int_t)v);
    } else if (strcmp(op, "kv.keys") == 0) {
        const char *prefix = json_string_value(json_object_get(meta, "prefix"));
        char **keys = NULL;
        size_t n = 0;
        if (reg_kv_keys(st, app, prefix ? prefix : "", 10000, &keys, &n, err, sizeof(err)) == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_t *k = json_string(keys[i]);
                if (k)
                    json_array_append_new(arr, k);
                free(keys[i]);
            }
            free(keys);
            reply = json_pack("{s:o}", "keys", arr);
        }
    } else {
        snprintf(err, sizeof(err), "unknown host call '%s'", op);
    }
    if (reply == NULL)
        reply = json_pack("{s:s}", "error", err[0] ? err : "host call failed");
    char *m = json_dumps(reply, JSON_COMPACT);
    sandbox_write(s, SBX_MSG_HOSTREPLY, h->id, m, strlen(m), value, value_len);
    free(m);
    free(value);
    json_decref(reply);
    json_decref(meta);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    inv_sandbox_t *s = h->data;
    if (s->rcap - s->rlen < 65536) {
        s->rcap = s->rcap ? s->rcap * 2 : 131072;
        s->rbuf = xrealloc(s->rbuf, s->rcap);
    }
    *buf = uv_buf_init(s->rbuf + s->rlen, (unsigned)(s->rcap - s->rlen));
}

/* The sandbox's socket closed or failed: the process is gone or going. */
static void sandbox_on_eof(inv_sandbox_t *s)
{
    inv_call_t *c = s->call;
    s->call = NULL;
    if (c) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the sandbox of %s crashed (pid %d)", s->pool->fn->name, (int)s->pid);
        call_fail(c, TINE_ECRASH, 502, msg);
    }
    sandbox_close(s);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    inv_sandbox_t *s = stream->data;
    if (nread < 0) {
        sandbox_on_eof(s);
        return;
    }
    s->rlen += (size_t)nread;
    size_t off = 0;
    while (s->state != SBX_CLOSING && s->rlen - off >= sizeof(sbx_frame_hdr_t)) {
        sbx_frame_hdr_t h;
        memcpy(&h, s->rbuf + off, sizeof(h));
        if (sbx_frame_check(&h, SBX_WIRE_MAX_FRAME) != 0) {
            fprintf(stderr, "tined: sandbox %d sent a malformed frame; killing it\n", (int)s->pid);
            kill(s->pid, SIGKILL);
            sandbox_on_eof(s);
            return;
        }
        if (s->rlen - off < sizeof(h) + h.len)
            break;
        sandbox_on_frame(s, &h, s->rbuf + off + sizeof(h));
        off += sizeof(h) + h.len;
    }
    if (s->state == SBX_CLOSING)
        return;
    memmove(s->rbuf, s->rbuf + off, s->rlen - off);
    s->rlen -= off;
}

/* Handles one complete frame from a sandbox. */
static void sandbox_on_frame(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload)
{
    inv_pool_t *p = s->pool;
    switch (h->type) {
    case SBX_MSG_READY:
        if (s->state != SBX_STARTING)
            break;
        s->ready_ns = tine_now_ns() - s->spawned_at;
        s->state = SBX_IDLE;
        pool_dispatch(p);
        return;
    case SBX_MSG_LOG: {
        int body = (int)(h->len - h->meta_len);
        fprintf(stderr, "[%s/%s v%" PRIu64 "] %.*s\n", p->version->app, p->fn->name, p->version->version, body,
                payload + h->meta_len);
        return;
    }
    case SBX_MSG_HOSTCALL:
        if (s->call == NULL || h->id != s->call->id)
            break;
        sandbox_hostcall(s, h, payload);
        return;
    case SBX_MSG_RESULT:
    case SBX_MSG_ERROR: {
        json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
        if (s->state == SBX_STARTING) {
            /* The handler failed to load: every waiting call learns why. */
            const char *e = json_string_value(json_object_get(meta, "error"));
            char *msg = xasprintf("function %s failed to load: %s", p->fn->name, e ? e : "unknown error");
            fprintf(stderr, "tined: %s\n", msg);
            while (p->queue_head)
                call_fail(pool_pop_call(p), TINE_EHANDLER, 500, msg);
            free(msg);
            json_decref(meta);
            sandbox_close(s);
            return;
        }
        inv_call_t *c = s->call;
        if (c == NULL || h->id != c->id) {
            json_decref(meta);
            break;
        }
        uv_timer_stop(&s->timer);
        s->call = NULL;
        s->state = SBX_IDLE;
        inv_result_t res = {0};
        if (h->type == SBX_MSG_RESULT) {
            json_int_t st = json_integer_value(json_object_get(meta, "status"));
            res.status = st >= 100 && st <= 599 ? (int)st : 200;
            res.headers = json_object_get(meta, "headers");
            res.body = payload + h->meta_len;
            res.body_len = h->len - h->meta_len;
        } else {
            const char *e = json_string_value(json_object_get(meta, "error"));
            const char *trace = json_string_value(json_object_get(meta, "trace"));
            res.code = TINE_EHANDLER;
            res.status = 500;
            res.error = e ? e : "the function raised an error";
            fprintf(stderr, "[%s/%s v%" PRIu64 "] invocation %s raised: %s\n%s\n", p->version->app, p->fn->name,
                    p->version->version, c->id_hex, res.error, trace ? trace : "");
        }
        call_finish(c, &res);
        json_decref(meta);
        if (p->retired && p->queued == 0)
            sandbox_close(s);
        else
            pool_dispatch(p);
        return;
    }
    default:
        break;
    }
    fprintf(stderr, "tined: sandbox %d sent an unexpected frame (type %u); killing it\n", (int)s->pid, h->type);
    kill(s->pid, SIGKILL);
    sandbox_on_eof(s);
}

/* Asks the zygote for one more sandbox in pool p. Returns 0 or an error. */
static int pool_spawn(inv_pool_t *p, char *err, size_t errlen)
{
    const reg_function_t *fn = p->fn;
    json_t *env = json_object();
    for (size_t i = 0; i < fn->env_len; i++)
        json_object_set_new(env, fn->env[i].key, json_string(fn->env[i].value));
    char *env_json = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    sbx_spec_t spec = {
        .app = p->version->app,
        .version = p->version->version,
        .function = fn->name,
        .bundle_dir = p->version->bundle_dir,
        .handler_file = fn->handler_file,
        .handler_export = fn->handler_export,
        .memory_mb = fn->memory_mb,
        .timeout_ms = fn->timeout_ms,
        .env_json = env_json,
    };
    pid_t pid = 0;
    int fd = -1;
    uint64_t t0 = tine_now_ns();
    int r = sbx_zygote_spawn(p->inv->zygote, &spec, &pid, &fd);
    free(env_json);
    if (r != 0) {
        snprintf(err, errlen, "cannot start a sandbox for %s: %s", fn->name, tine_strerror(r));
        return r;
    }
    inv_sandbox_t *s = xcalloc(1, sizeof(*s));
    s->pool = p;
    s->pid = pid;
    s->state = SBX_STARTING;
    s->spawned_at = t0;
    s->fresh = true;
    uv_pipe_init(p->inv->loop, &s->pipe, 0);
    uv_timer_init(p->inv->loop, &s->timer);
    s->pipe.data = s;
    s->timer.data = s;
    s->handles_open = 2;
    s->next = p->sandboxes;
    p->sandboxes = s;
    p->nsandboxes++;
    if (uv_pipe_open(&s->pipe, fd) != 0 || uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) != 0) {
        close(fd);
        kill(pid, SIGKILL);
        sandbox_close(s);
        snprintf(err, errlen, "cannot watch the sandbox of %s", fn->name);
        return TINE_ECRASH;
    }
    return 0;
}

/* Gives queued calls to idle sandboxes, starting sandboxes up to the
 * function's concurrency when none is idle. */
static void pool_dispatch(inv_pool_t *p)
{
    while (p->queue_head) {
        inv_sandbox_t *idle = NULL;
        size_t starting = 0, live = 0;
        for (inv_sandbox_t *s = p->sandboxes; s; s = s->next) {
            if (s->state == SBX_IDLE && idle == NULL)
                idle = s;
            starting += s->state == SBX_STARTING;
            live += s->state != SBX_CLOSING;
        }
        if (idle) {
            pool_take_call(p, idle);
            continue;
        }
        if (p->inv->closing)
            return;
        /* Enough sandboxes are already starting for the calls waiting. */
        if (starting >= p->queued || live >= p->fn->concurrency)
            return;
        char err[256];
        if (pool_spawn(p, err, sizeof(err)) != 0) {
            fprintf(stderr, "tined: %s\n", err);
            call_fail(pool_pop_call(p), TINE_ECRASH, 503, err);
        }
    }
}

static inv_pool_t *pool_get(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index)
{
    for (inv_pool_t *p = inv->pools; p; p = p->next)
        if (p->version == v && p->fn_index == fn_index)
            return p;
    inv_pool_t *p = xcalloc(1, sizeof(*p));
    p->inv = inv;
    p->version = v;
    reg_app_version_retain(v);
    p->fn_index = fn_index;
    p->fn = &v->manifest->functions[fn_index];
    p->next = inv->pools;
    inv->pools = p;
    return p;
}

int inv_call(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, json_t *request, const void *body,
             size_t body_len, inv_done_cb cb, void *data, inv_call_t **out)
{
    if (fn_index >= v->manifest->functions_len || inv->closing) {
        json_decref(request);
        return TINE_ENOTFOUND;
    }
    if (v->manifest->functions[fn_index].runtime != REG_RUNTIME_LUA) {
        json_decref(request);
        return TINE_EINVAL;
    }
    inv_pool_t *p = pool_get(inv, v, fn_index);
    if (p->queued >= inv->cfg.max_queue) {
        json_decref(request);
        return TINE_EBUSY;
    }
    inv_call_t *c = xcalloc(1, sizeof(*c));
    c->inv = inv;
    c->pool = p;
    c->cb = cb;
    c->data = data;
    c->id = ++inv->next_id;
    snprintf(c->id_hex, sizeof(c->id_hex), "%s%016" PRIx64, inv->node_prefix, c->id);
    c->request = request;
    if (body_len) {
        c->body = xmalloc(body_len);
        memcpy(c->body, body, body_len);
        c->body_len = body_len;
    }
    c->queued_at = tine_now_ns();
    if (p->queue_tail)
        p->queue_tail->next = c;
    else
        p->queue_head = c;
    p->queue_tail = c;
    p->queued++;
    if (out)
        *out = c;
    pool_dispatch(p);
    return 0;
}

void inv_call_cancel(inv_call_t *c)
{
    c->cb = NULL;
}

void inv_version_retired(inv_invoker_t *inv, const reg_app_version_t *v)
{
    for (inv_pool_t *p = inv->pools, *next; p; p = next) {
        next = p->next;
        if (p->version != v)
            continue;
        p->retired = true;
        for (inv_sandbox_t *s = p->sandboxes, *sn; s; s = sn) {
            sn = s->next;
            if (s->state == SBX_IDLE && p->queued == 0)
                sandbox_close(s);
        }
        pool_maybe_free(p);
    }
}

json_t *inv_stats(inv_invoker_t *inv)
{
    static const char *names[] = {"starting", "idle", "busy", "closing"};
    json_t *pools = json_array();
    uint64_t now = tine_now_ns();
    for (inv_pool_t *p = inv->pools; p; p = p->next) {
        json_t *sbx = json_array();
        for (inv_sandbox_t *s = p->sandboxes; s; s = s->next)
            json_array_append_new(sbx, json_pack("{s:i, s:s, s:f, s:I}", "pid", (int)s->pid, "state",
                                                 names[s->state], "age_s", (double)(now - s->spawned_at) / 1e9,
                                                 "invocations", (json_int_t)s->invocations));
        json_array_append_new(pools, json_pack("{s:s, s:I, s:s, s:b, s:I, s:o}", "app", p->version->app, "version",
                                               (json_int_t)p->version->version, "function", p->fn->name,
                                               "retired", p->retired, "queued", (json_int_t)p->queued,
                                               "sandboxes", sbx));
    }
    return pools;
}

void inv_free(inv_invoker_t *inv)
{
    if (inv == NULL)
        return;
    inv->closing = true;
    if (inv->pools == NULL) {
        free(inv);
        return;
    }
    for (inv_pool_t *p = inv->pools, *pn; p; p = pn) {
        pn = p->next;
        p->retired = true;
        while (p->queue_head)
            call_fail(pool_pop_call(p), TINE_EBUSY, 503, "the node is shutting down");
        if (p->sandboxes == NULL) {
            pool_maybe_free(p);
            continue;
        }
        for (inv_sandbox_t *s = p->sandboxes; s; s = s->next) {
            if (s->call) {
                inv_call_t *c = s->call;
                s->call = NULL;
                call_fail(c, TINE_EBUSY, 503, "the node is shutting down");
            }
            sandbox_close(s);
        }
    }
    /* Pools free themselves as their sandboxes' handles close, and the last
     * one frees the invoker: run the loop until then. */
}
