/* The invoker: keeps a pool of warm sandboxes per (app version, function),
 * sends each sandbox one invocation at a time over its socket, and turns the
 * sandbox's answer, its death or its overrun into a result. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} frame_write_t;

static void pool_dispatch(inv_pool_t *p);
static void sandbox_close(inv_sandbox_t *s);
static int sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len,
                         const char *body, size_t body_len);

inv_invoker_t *inv_new(uv_loop_t *loop, sbx_zygote_t *zygote, const inv_config_t *cfg)
{
    inv_invoker_t *inv = xcalloc(1, sizeof(*inv));
    inv->loop = loop;
    inv->zygote = zygote;
    if (cfg)
        inv->cfg = *cfg;
    inv->cfg.max_queue = inv->cfg.max_queue ? inv->cfg.max_queue : 100;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = tine_now_ns() ^ (uint64_t)getpid();
    snprintf(inv->node_prefix, sizeof(inv->node_prefix), "%016" PRIx64, r);
    inv->hostcalls = inv__hostcalls_new(inv);
    return inv;
}

static void call_free(inv_call_t *c)
{
    json_decref(c->request);
    json_decref(c->logs);
    free(c->body);
    free(c);
}

/* Hands the finished call to the activation observer. */
static void call_record(inv_call_t *c, const inv_result_t *res)
{
    inv_invoker_t *inv = c->inv;
    if (inv->cfg.on_activation == NULL)
        return;
    const reg_function_t *fn = c->pool->fn;
    const char *trigger = json_string_value(json_object_get(c->request, "trigger"));
    if (trigger == NULL)
        trigger = json_string_value(json_object_get(c->request, "kind"));
    inv_activation_t a = {
        .invocation_id = c->id_hex,
        .app = c->pool->version->app,
        .version = c->pool->version->version,
        .function = fn->name,
        .trigger = trigger ? trigger : "http",
        .start_unix_ms = c->started_unix_ms,
        .duration_ns = res->duration_ns,
        .queued_ns = res->queued_ns,
        .cold_start_ns = res->cold_start_ns,
        .cold = res->cold,
        .dispatched = c->dispatched_at != 0,
        .memory_mb = fn->memory_mb,
        .timeout_ms = fn->timeout_ms,
        .cpu_ns = c->cpu_ns,
        .code = res->code,
        .status = res->status,
        .error = res->code ? res->error : NULL,
        .logs = c->logs,
        .logs_truncated = c->logs_truncated,
    };
    inv->cfg.on_activation(inv->cfg.on_activation_data, &a);
}

/* Finishes a call: runs its callback (unless cancelled), records the
 * activation, and frees the call unless a host call still holds it. */
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
    c->sandbox = NULL;
    c->finished = true;
    if (c->cb)
        c->cb(c->data, res);
    call_record(c, res);
    if (c->holds == 0)
        call_free(c);
}

void inv_call_hold(inv_call_t *c)
{
    c->holds++;
}

void inv_call_reply(inv_call_t *c, const char *meta, size_t meta_len, const void *body, size_t body_len)
{
    inv_sandbox_t *s = c->sandbox;
    if (!c->finished && s != NULL && s->state == SBX_BUSY && s->call == c)
        sandbox_write(s, SBX_MSG_HOSTREPLY, c->id, meta, meta_len, body, body_len);
    inv_call_release(c);
}

void inv_call_release(inv_call_t *c)
{
    if (--c->holds == 0 && c->finished)
        call_free(c);
}

/* Keeps one log line of the running call, up to INV_LOG_CAP bytes in all. */
static void call_log(inv_call_t *c, const char *level, const char *line, size_t len)
{
    if (c->logs_bytes + len > INV_LOG_CAP) {
        c->logs_truncated = true;
        return;
    }
    if (c->logs == NULL)
        c->logs = json_array();
    json_array_append_new(c->logs, json_pack("{s:I, s:s, s:o}", "t", (json_int_t)tine_now_unix_ms(), "level",
                                             level, "msg", tine_json_text(line, len)));
    c->logs_bytes += len;
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

/* Sends one frame to a sandbox: written at once when the socket takes it
 * (the common case, without a copy or a write request), else the rest is
 * copied and queued. Returns 0 or a libuv error. */
static int sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len,
                         const char *body, size_t body_len)
{
    size_t total = sizeof(sbx_frame_hdr_t) + meta_len + body_len;
    sbx_frame_hdr_t h = {0};
    h.len = (uint32_t)(meta_len + body_len);
    h.type = type;
    h.meta_len = (uint32_t)meta_len;
    h.id = id;
    uv_buf_t parts[3] = {uv_buf_init((char *)&h, sizeof(h)), uv_buf_init((char *)meta, (unsigned)meta_len),
                         uv_buf_init((char *)body, (unsigned)body_len)};
    int sent = uv_try_write((uv_stream_t *)&s->pipe, parts, body_len ? 3 : 2);
    if (sent == (int)total)
        return 0;
    if (sent < 0 && sent != UV_EAGAIN)
        return sent;
    size_t skip = sent > 0 ? (size_t)sent : 0;
    char *frame = xmalloc(total);
    memcpy(frame, &h, sizeof(h));
    memcpy(frame + sizeof(h), meta, meta_len);
    if (body_len)
        memcpy(frame + sizeof(h) + meta_len, body, body_len);
    if (skip) {
        memmove(frame, frame + skip, total - skip);
        total -= skip;
    }
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
    c->sandbox = s;
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

/* Kills a sandbox, and for exec functions everything the program started
 * (the runner leads its own process group). */
static void sandbox_kill(inv_sandbox_t *s)
{
    if (s->pool->fn->runtime == REG_RUNTIME_EXEC)
        kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
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
    sandbox_kill(s);
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
        if (s->call != NULL && h->id == s->call->id) {
            json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
            const char *level = json_string_value(json_object_get(meta, "level"));
            call_log(s->call, level && strcmp(level, "error") == 0 ? "error" : "info", payload + h->meta_len,
                     (size_t)body);
            json_decref(meta);
        }
        return;
    }
    case SBX_MSG_HOSTCALL:
        if (s->call == NULL || h->id != s->call->id)
            break;
        inv_hostcall(s->call, h, payload);
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
        c->cpu_ns = (uint64_t)h->aux * 1000u;
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
        /* An exec sandbox serves one invocation; a retired pool shrinks. */
        if (p->fn->runtime == REG_RUNTIME_EXEC || (p->retired && p->queued == 0))
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
        .runtime = fn->runtime == REG_RUNTIME_EXEC ? SBX_RUNTIME_EXEC : SBX_RUNTIME_LUA,
        .network = fn->network,
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
    c->started_unix_ms = tine_now_unix_ms();
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
    inv__hostcalls_free(inv->hostcalls);
    inv->hostcalls = NULL;
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
