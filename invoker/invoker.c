/* The invoker: keeps a pool of warm sandboxes per (app version, function),
 * sends each sandbox its invocations over its pipes (it runs them one at a
 * time, in order), and turns the
 * sandbox's answer, its death or its overrun into a result.
 *
 * Sandboxes come from the zygote as "blank" processes, asked for ahead of
 * need and answered asynchronously on the control socket (a uv_poll); a cold
 * start writes the function's spec and the call's INVOKE frame to a blank in
 * one go, so it pays for loading the handler but not for a fork. Calls of
 * short functions may be pipelined: sent to a busy sandbox behind its
 * running call, so that one write, one read and one wake-up serve many
 * (pool_dispatch says when). Idle
 * sandboxes beyond a pool's `warm` count close after the idle timeout; the
 * node-wide cap is shared between apps (fair_share.c holds the rules): at
 * the cap the least recently used idle sandbox of another pool makes room
 * when the sharing allows, else the calls wait. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "invoker_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

#define INV_RBUF_KEEP (256u * 1024u) /* read buffer an idle sandbox may keep */
#define INV_MIN_START_MS 1000u       /* loading a handler may take at least this long */

typedef struct {
    uv_write_t req;
    char *owned; /* freed once written; NULL when the bytes belong to someone else */
} frame_write_t;

static void pool_dispatch(inv_pool_t *p);
static void sandbox_close(inv_sandbox_t *s);
static void sandbox_attach_process(inv_sandbox_t *s, pid_t pid, sbx_fds_t fds);
static void on_timer(uv_timer_t *t);
static void on_zygote_readable(uv_poll_t *h, int status, int events);
static void blanks_request(inv_invoker_t *inv);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_flush(uv_prepare_t *h);
static void sandbox_on_eof(inv_sandbox_t *s);

/* The CPUs this process may run on: more sandboxes computing at once than
 * that only take turns. */
static unsigned cpus_usable(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

inv_invoker_t *inv_new(uv_loop_t *loop, sbx_zygote_t *zygote, const inv_config_t *cfg)
{
    inv_invoker_t *inv = xcalloc(1, sizeof(*inv));
    inv->loop = loop;
    inv->zygote = zygote;
    if (cfg)
        inv->cfg = *cfg;
    inv->cfg.max_queue = inv->cfg.max_queue ? inv->cfg.max_queue : 100;
    inv->cfg.max_sandboxes = inv->cfg.max_sandboxes ? inv->cfg.max_sandboxes : 1024;
    inv->cfg.idle_timeout_ms = inv->cfg.idle_timeout_ms ? inv->cfg.idle_timeout_ms : 5 * 60 * 1000;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = tine_now_ns() ^ (uint64_t)getpid();
    snprintf(inv->node_prefix, sizeof(inv->node_prefix), "%016" PRIx64, r);
    inv->hostcalls = inv__hostcalls_new(inv);
    inv->logs = inv__logs_new(loop, inv->cfg.log_rate);
    inv->ncpu = cpus_usable();
    uv_prepare_init(loop, &inv->flush);
    uv_unref((uv_handle_t *)&inv->flush);
    inv->flush.data = inv;
    inv->flush_open = true;
    /* Answers of the zygote arrive on the loop; tined never waits for a fork. */
    if (uv_poll_init(loop, &inv->zygote_poll, zygote->control_fd) == 0) {
        inv->zygote_poll.data = inv;
        inv->zygote_polling = true;
        uv_poll_start(&inv->zygote_poll, UV_READABLE | UV_DISCONNECT, on_zygote_readable);
        blanks_request(inv);
    } else {
        fprintf(stderr, "tined: cannot watch the zygote's control socket\n");
        inv->zygote_gone = true;
    }
    return inv;
}

/* Frees the invoker once it is closing and every handle of it has closed. */
static void invoker_maybe_free(inv_invoker_t *inv)
{
    if (inv->closing && inv->pools == NULL && !inv->zygote_polling && !inv->flush_open)
        free(inv);
}

/* ------------------------------------------------------------------ calls */

static void call_free(inv_call_t *c)
{
    json_decref(c->logs);
    free(c->frame);
    free(c);
}

/* Hands the finished call to the activation observer. */
static void call_record(inv_call_t *c, const inv_result_t *res)
{
    inv_invoker_t *inv = c->inv;
    if (inv->cfg.on_activation == NULL)
        return;
    const reg_function_t *fn = c->pool->fn;
    inv_activation_t a = {
        .invocation_id = c->id_hex,
        .app = c->pool->version->app,
        .version = c->pool->version->version,
        .function = fn->name,
        .trigger = c->trigger[0] ? c->trigger : "http",
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
        .logs_function = c->logs_function,
        .logs_truncated = c->logs_truncated,
    };
    inv->cfg.on_activation(inv->cfg.on_activation_data, &a);
}

/* Finishes a call at `now` (its answer's time): runs its callback (unless
 * cancelled), records the activation, and frees the call unless a host
 * call still holds it. */
static void call_finish_at(inv_call_t *c, inv_result_t *res, uint64_t now)
{
    res->invocation_id = c->id_hex;
    res->cold = c->cold;
    res->cold_start_ns = c->cold_start_ns;
    if (c->dispatched_at) {
        res->duration_ns = now - c->dispatched_at;
        res->queued_ns = c->dispatched_at - c->queued_at;
    } else {
        res->queued_ns = now - c->queued_at;
    }
    c->sandbox = NULL;
    c->finished = true;
    c->inv->calls--;
    if (c->cb)
        c->cb(c->data, res);
    /* What ended it is in its logs (tine logs), with what it dropped. */
    if (res->code != 0 && !c->error_logged)
        inv__log_error(c, res->error, NULL);
    if (c->log_dropped_cap | c->log_dropped_rate)
        inv__log_call_end(c);
    call_record(c, res);
    if (c->holds == 0)
        call_free(c);
}

/* call_finish_at now (CLOCK_MONOTONIC). */
static void call_finish(inv_call_t *c, inv_result_t *res)
{
    call_finish_at(c, res, tine_now_ns());
}

void inv_call_hold(inv_call_t *c)
{
    c->holds++;
}

static int sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len,
                         const char *body, size_t body_len);

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

static void call_fail(inv_call_t *c, int code, int status, const char *error)
{
    inv_result_t res = {0};
    res.code = code;
    res.status = status;
    res.error = error;
    call_finish(c, &res);
}

/* Builds the call's INVOKE frame once, when it is accepted: the request's
 * members plus "ctx" as one binary object (sandbox/meta.h), then the body.
 * The sandbox fills the rest of ctx (app, version, ...) from its spec. */
static void call_build_frame(inv_call_t *c, const inv_request_t *rq, const void *body, size_t body_len)
{
    tine_buf_t b;
    tine_buf_init(&b);
    sbx_frame_hdr_t h = {0};
    tine_buf_append(&b, &h, sizeof h);
    size_t at = sbx_meta_begin(&b, SBX_META_OBJECT);
    tine_buf_append(&b, rq->members, rq->members_len);
    sbx_meta_key(&b, "ctx", 3);
    size_t ctx = sbx_meta_begin(&b, SBX_META_OBJECT);
    sbx_meta_kstr(&b, "invocation_id", c->id_hex, strlen(c->id_hex));
    sbx_meta_end(&b, ctx, 1);
    sbx_meta_end(&b, at, rq->nmembers + 1);
    size_t meta_len = b.len - sizeof h;
    if (body_len)
        tine_buf_append(&b, body, body_len);
    h.len = (uint32_t)(meta_len + body_len);
    h.type = SBX_MSG_INVOKE;
    h.meta_len = (uint32_t)meta_len;
    h.id = c->id;
    memcpy(b.data, &h, sizeof h);
    c->frame = b.data; /* the buffer's bytes become the call's */
    c->frame_len = b.len;
}

/* ------------------------------------------------------------------ pools */

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

/* The pool's calls wait for room under the node-wide cap: it joins the
 * invoker's blocked list, tried again by invoker_kick_blocked. */
static void pool_block(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    if (p->cap_blocked)
        return;
    p->cap_blocked = true;
    p->blocked_prev = NULL;
    p->blocked_next = inv->blocked_head;
    if (inv->blocked_head)
        inv->blocked_head->blocked_prev = p;
    inv->blocked_head = p;
    inv->ncap_blocked++;
}

static void pool_unblock(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    if (!p->cap_blocked)
        return;
    p->cap_blocked = false;
    if (p->blocked_prev)
        p->blocked_prev->blocked_next = p->blocked_next;
    else
        inv->blocked_head = p->blocked_next;
    if (p->blocked_next)
        p->blocked_next->blocked_prev = p->blocked_prev;
    p->blocked_prev = p->blocked_next = NULL;
    inv->ncap_blocked--;
}

/* The app record of `name`, made on first use; each pool holds it once. */
static inv_app_t *app_hold(inv_invoker_t *inv, const char *name)
{
    inv_app_t *a;
    for (a = inv->apps; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            break;
    if (a == NULL) {
        size_t len = strlen(name);
        a = xcalloc(1, sizeof(*a) + len + 1);
        memcpy(a->name, name, len + 1);
        a->next = inv->apps;
        inv->apps = a;
    }
    a->npools++;
    return a;
}

static void app_release(inv_invoker_t *inv, inv_app_t *a)
{
    if (--a->npools > 0)
        return;
    for (inv_app_t **ap = &inv->apps; *ap; ap = &(*ap)->next) {
        if (*ap == a) {
            *ap = a->next;
            break;
        }
    }
    free(a);
}

/* Frees a retired pool that has nothing left: no sandbox, no queued call. */
static void pool_maybe_free(inv_pool_t *p)
{
    if (!p->retired || p->nsandboxes || p->queued)
        return;
    inv_invoker_t *inv = p->inv;
    pool_unblock(p);
    for (inv_pool_t **pp = &inv->pools; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    app_release(inv, p->app);
    reg_app_version_release(p->version);
    free(p->spec_frame);
    free(p);
    invoker_maybe_free(inv);
}

/* The frame that turns a blank process into a sandbox of this pool's
 * function, encoded once per pool. NULL when it cannot be encoded. */
static const char *pool_spec_frame(inv_pool_t *p, size_t *len)
{
    if (p->spec_frame == NULL) {
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
            .allow_outbound = (const char *const *)p->version->manifest->allow_outbound,
            .allow_outbound_len = p->version->manifest->allow_outbound_len,
            .allow_outbound_set = p->version->manifest->allow_outbound_set,
        };
        p->spec_frame = sbx_spec_frame(&spec, &p->spec_frame_len);
        free(env_json);
    }
    *len = p->spec_frame_len;
    return p->spec_frame;
}

/* -------------------------------------------------------------- sandboxes */

static void idle_push(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    s->idle_prev = NULL;
    s->idle_next = p->idle_head;
    if (p->idle_head)
        p->idle_head->idle_prev = s;
    else
        p->idle_tail = s;
    p->idle_head = s;
    p->nidle++;
}

static void idle_remove(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    if (s->idle_prev)
        s->idle_prev->idle_next = s->idle_next;
    else
        p->idle_head = s->idle_next;
    if (s->idle_next)
        s->idle_next->idle_prev = s->idle_prev;
    else
        p->idle_tail = s->idle_prev;
    s->idle_prev = s->idle_next = NULL;
    p->nidle--;
}

/* The sandbox is no longer a STARTING one without a call. */
static void sandbox_unfree(inv_sandbox_t *s)
{
    if (s->free_start) {
        s->free_start = false;
        s->pool->nstarting_free--;
    }
}

static void wait_remove(inv_sandbox_t *s)
{
    inv_invoker_t *inv = s->pool->inv;
    inv_sandbox_t *prev = NULL;
    for (inv_sandbox_t *w = inv->wait_head; w; prev = w, w = w->wait_next) {
        if (w != s)
            continue;
        if (prev)
            prev->wait_next = s->wait_next;
        else
            inv->wait_head = s->wait_next;
        if (inv->wait_tail == s)
            inv->wait_tail = prev;
        break;
    }
    s->wait_next = NULL;
    s->waiting = false;
    inv->nwaiting--;
}

/* Makes a sandbox idle: ready for the next call, closed after the idle
 * timeout unless the pool keeps it warm. */
static void sandbox_set_idle(inv_sandbox_t *s, uint64_t now)
{
    inv_invoker_t *inv = s->pool->inv;
    if (s->state == SBX_BUSY)
        s->pool->nbusy--;
    s->state = SBX_IDLE;
    s->last_used = now;
    idle_push(s);
    uv_timer_start(&s->timer, on_timer, inv->cfg.idle_timeout_ms, 0);
}

static void sandbox_set_busy(inv_sandbox_t *s)
{
    if (s->state != SBX_BUSY)
        s->pool->nbusy++;
    s->state = SBX_BUSY;
}

/* Call c runs on s from `now` (its INVOKE is in the pipe): its time and its
 * timeout start. */
static void sandbox_start_call(inv_sandbox_t *s, inv_call_t *c, uint64_t now)
{
    s->call = c;
    c->dispatched_at = now;
    uv_timer_start(&s->timer, on_timer, s->pool->fn->timeout_ms, 0);
}

/* The calls pipelined behind a sandbox's running call never started (the
 * sandbox runs them in order, after answering the one before): they go back
 * to the front of the pool's queue in their order, to be sent again. */
static void sandbox_unpipe(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    if (s->piped_head == NULL)
        return;
    for (inv_call_t *c = s->piped_head; c; c = c->next) {
        c->sandbox = NULL;
        p->queued++;
        p->requeued++;
        s->invocations--;
    }
    s->piped_tail->next = p->queue_head;
    if (p->queue_head == NULL)
        p->queue_tail = s->piped_tail;
    p->queue_head = s->piped_head;
    s->piped_head = s->piped_tail = NULL;
    s->npiped = 0;
}

/* The cold start that took the spare is over (answered, or its sandbox
 * closed): now the spare may be forked again. */
static void spare_undefer(inv_sandbox_t *s)
{
    if (!s->defers_spare)
        return;
    s->defers_spare = false;
    s->pool->inv->spares_deferred--;
    blanks_request(s->pool->inv);
}

/* Lets pools that wait for room under the node-wide cap try again, each
 * once, the pool of the app holding the fewest sandboxes first: room goes
 * where the sharing between apps says (fair_share.c). */
static void invoker_kick_blocked(inv_invoker_t *inv)
{
    if (inv->ncap_blocked == 0 || inv->kicking || inv->closing)
        return;
    inv->kicking = true;
    uint64_t round = ++inv->kick_round;
    for (;;) {
        /* Looked for again each time: a dispatch may block or free pools. */
        inv_pool_t *next = NULL;
        for (inv_pool_t *q = inv->blocked_head; q; q = q->blocked_next)
            if (q->kick_round != round && (next == NULL || q->app->nlive < next->app->nlive))
                next = q;
        if (next == NULL)
            break;
        next->kick_round = round;
        pool_unblock(next);
        pool_dispatch(next);
    }
    inv->kicking = false;
}

static void on_sandbox_handle_closed(uv_handle_t *h)
{
    inv_sandbox_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    inv_pool_t *p = s->pool;
    inv_invoker_t *inv = p->inv;
    for (inv_sandbox_t **sp = &p->sandboxes; *sp; sp = &(*sp)->next) {
        if (*sp == s) {
            *sp = s->next;
            break;
        }
    }
    p->nsandboxes--;
    free(s->rbuf);
    free(s->pend);
    free(s);
    /* A queued call may now get a sandbox in place of the closed one, a warm
     * pool refills, and room freed under the cap goes to who waits for it. */
    pool_dispatch(p);
    invoker_kick_blocked(inv);
    pool_maybe_free(p);
}

/* Closes a sandbox: its pipes (the sandbox exits on EOF) and its timer. The
 * caller deals with its running call first; pipelined ones are queued again. */
static void sandbox_close(inv_sandbox_t *s)
{
    if (s->state == SBX_CLOSING)
        return;
    inv_pool_t *p = s->pool;
    if (s->state == SBX_IDLE)
        idle_remove(s);
    sandbox_unfree(s);
    if (s->waiting)
        wait_remove(s);
    if (s->flush_queued) {
        inv_sandbox_t **sp = &p->inv->flush_head;
        while (*sp != s)
            sp = &(*sp)->flush_next;
        *sp = s->flush_next;
        s->flush_queued = false;
    }
    s->npend = 0;
    sandbox_unpipe(s);
    spare_undefer(s);
    if (s->state == SBX_BUSY)
        p->nbusy--;
    s->state = SBX_CLOSING;
    p->nlive--;
    p->app->nlive--;
    p->inv->nlive--;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->pipe, on_sandbox_handle_closed);
    uv_close((uv_handle_t *)&s->wpipe, on_sandbox_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_sandbox_handle_closed);
}

/* Kills a sandbox, and for exec functions everything the program started
 * (the runner leads its own process group). */
static void sandbox_kill(inv_sandbox_t *s)
{
    if (s->pid <= 0)
        return;
    if (s->pool->fn->runtime == REG_RUNTIME_EXEC)
        kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
}

/* A sandbox could not start (no process, died or overran while loading):
 * it is killed and closed, its call fails, and the pool stops refilling its
 * warm sandboxes until a start succeeds. */
static void sandbox_start_failed(inv_sandbox_t *s, int code, int status, const char *msg)
{
    inv_call_t *c = s->call;
    s->call = NULL;
    s->pool->start_failed = true;
    sandbox_kill(s);
    sandbox_close(s);
    if (c)
        call_fail(c, code, status, msg);
}

static void on_frame_written(uv_write_t *req, int status)
{
    frame_write_t *w = container_of(req, frame_write_t, req);
    free(w->owned);
    free(w);
}

/* Queues bytes to a sandbox's pipe; `owned` (may be NULL) is freed once
 * they are written, the other buffers must outlive the write. Returns 0 or a
 * libuv error (then `owned` is freed already). */
static int sandbox_send(inv_sandbox_t *s, const uv_buf_t *bufs, unsigned nbufs, char *owned)
{
    frame_write_t *w = xmalloc(sizeof(*w));
    w->owned = owned;
    int r = uv_write(&w->req, (uv_stream_t *)&s->wpipe, bufs, nbufs, on_frame_written);
    if (r != 0) {
        free(owned);
        free(w);
    }
    return r;
}

/* Sends one frame to a sandbox: written at once when the pipe takes it
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
    int sent = uv_try_write((uv_stream_t *)&s->wpipe, parts, body_len ? 3 : 2);
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
    uv_buf_t buf = uv_buf_init(frame, (unsigned)total);
    return sandbox_send(s, &buf, 1, frame);
}

/* Writes bufs that stay valid until written (calls' frames: a call is not
 * freed while its sandbox's pipe is open and the write pending): what the
 * pipe takes now, the rest queued without a copy. Returns 0 or a libuv
 * error. */
static int sandbox_send_frames(inv_sandbox_t *s, uv_buf_t *bufs, unsigned n)
{
    int sent = uv_try_write((uv_stream_t *)&s->wpipe, bufs, n);
    if (sent < 0 && sent != UV_EAGAIN)
        return sent;
    size_t skip = sent > 0 ? (size_t)sent : 0;
    while (n > 0 && skip >= bufs->len) {
        skip -= bufs->len;
        bufs++;
        n--;
    }
    if (n == 0)
        return 0;
    bufs->base += skip;
    bufs->len -= skip;
    return sandbox_send(s, bufs, n, NULL);
}

/* Hands the call's INVOKE frame to the pipe (no copy). */
static int sandbox_send_call(inv_sandbox_t *s, inv_call_t *c)
{
    uv_buf_t buf = uv_buf_init(c->frame, (unsigned)c->frame_len);
    return sandbox_send_frames(s, &buf, 1);
}

/* Pipelines call c to busy sandbox s: its frame is written with the others
 * of this loop turn, in one write, before the loop polls again. */
static void sandbox_pipe_call(inv_sandbox_t *s, inv_call_t *c)
{
    inv_invoker_t *inv = s->pool->inv;
    c->sandbox = s;
    c->next = NULL;
    if (s->piped_tail)
        s->piped_tail->next = c;
    else
        s->piped_head = c;
    s->piped_tail = c;
    s->npiped++;
    s->invocations++;
    s->pool->pipelined++;
    if (s->npend == s->pend_cap) {
        s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 8;
        s->pend = xrealloc(s->pend, s->pend_cap * sizeof(*s->pend));
    }
    s->pend[s->npend++] = uv_buf_init(c->frame, (unsigned)c->frame_len);
    if (!s->flush_queued) {
        s->flush_queued = true;
        s->flush_next = inv->flush_head;
        inv->flush_head = s;
        uv_prepare_start(&inv->flush, on_flush);
    }
}

/* Before the loop polls: writes every sandbox's pending frames. */
static void on_flush(uv_prepare_t *h)
{
    inv_invoker_t *inv = h->data;
    uv_prepare_stop(h);
    inv_sandbox_t *s;
    while ((s = inv->flush_head) != NULL) {
        inv->flush_head = s->flush_next;
        s->flush_next = NULL;
        s->flush_queued = false;
        unsigned n = s->npend;
        s->npend = 0;
        if (n > 0 && sandbox_send_frames(s, s->pend, n) != 0)
            sandbox_on_eof(s); /* its pipe is closed: the sandbox is gone */
    }
}

/* Gives call c to sandbox s, which is idle or starting without a call. On an
 * idle sandbox the call starts now; on a starting one its INVOKE waits in the
 * pipe behind the spec and the call counts as a cold one. */
static void sandbox_take_call(inv_sandbox_t *s, inv_call_t *c)
{
    s->call = c;
    c->sandbox = s;
    s->invocations++;
    int r = 0;
    if (s->state == SBX_IDLE) {
        idle_remove(s);
        sandbox_set_busy(s);
        sandbox_start_call(s, c, tine_now_ns());
        r = sandbox_send_call(s, c);
    } else {
        sandbox_unfree(s);
        c->cold = true;
        if (s->pid > 0)
            r = sandbox_send_call(s, c);
        /* else sent with the spec once a process is attached */
    }
    if (r != 0) {
        s->call = NULL;
        sandbox_kill(s);
        sandbox_close(s);
        call_fail(c, TINE_ECRASH, 502, "the sandbox's pipe is closed");
    }
}

/* Starts one sandbox in pool p, for call c or (c NULL) to keep warm. Takes a
 * spare blank process if there is one, else waits for the zygote. Returns 0,
 * or an error after failing c. */
static int pool_start(inv_pool_t *p, inv_call_t *c)
{
    inv_invoker_t *inv = p->inv;
    if (inv->zygote_gone) {
        if (c)
            call_fail(c, TINE_ECRASH, 503, "cannot start a sandbox: the zygote is gone");
        return TINE_ECRASH;
    }
    inv_sandbox_t *s = xcalloc(1, sizeof(*s));
    s->pool = p;
    s->state = SBX_STARTING;
    s->spawned_at = tine_now_ns();
    uv_pipe_init(inv->loop, &s->pipe, 0);
    uv_pipe_init(inv->loop, &s->wpipe, 0);
    uv_timer_init(inv->loop, &s->timer);
    s->pipe.data = s;
    s->wpipe.data = s;
    s->timer.data = s;
    s->handles_open = 3;
    s->next = p->sandboxes;
    p->sandboxes = s;
    p->nsandboxes++;
    p->nlive++;
    p->app->nlive++;
    inv->nlive++;
    s->free_start = true;
    p->nstarting_free++;
    if (c)
        sandbox_take_call(s, c);
    if (inv->nspare > 0) {
        inv_blank_t b = inv->spare[--inv->nspare];
        if (c) {
            /* A cold start: the spare's replacement is forked once its call
             * is answered, not while it loads (one core would run the fork
             * first). */
            s->defers_spare = true;
            inv->spares_deferred++;
        }
        sandbox_attach_process(s, b.pid, b.fds);
    } else {
        s->waiting = true;
        if (inv->wait_tail)
            inv->wait_tail->wait_next = s;
        else
            inv->wait_head = s;
        inv->wait_tail = s;
        inv->nwaiting++;
    }
    blanks_request(inv);
    return 0;
}

/* Makes room under the node-wide cap for pool p: closes the least recently
 * used idle sandbox of another pool whose app the sharing lets p's app take
 * it from (its own, or one holding more). Returns false when there is none. */
static bool invoker_evict_lru(inv_invoker_t *inv, inv_pool_t *p)
{
    inv_sandbox_t *victim = NULL;
    for (inv_pool_t *q = inv->pools; q; q = q->next)
        if (q != p && q->idle_tail && (victim == NULL || q->idle_tail->last_used < victim->last_used) &&
            inv__fair_may_evict(p->app->nlive, q->app->nlive, q->app == p->app))
            victim = q->idle_tail;
    if (victim == NULL)
        return false;
    sandbox_close(victim);
    return true;
}

/* Starts sandboxes until the pool has `warm` idle or starting ones, within
 * its concurrency and the node's cap, while no calls wait for room under it
 * (warm sandboxes never evict others nor take room calls wait for). */
static void pool_refill_warm(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    while (!p->retired && !inv->closing && !p->start_failed && p->nidle + p->nstarting_free < p->warm &&
           p->nlive < p->fn->concurrency && inv->nlive < inv->cfg.max_sandboxes && inv->ncap_blocked == 0) {
        if (pool_start(p, NULL) != 0)
            break;
    }
}

/* How many calls may wait pipelined behind a busy sandbox's running call
 * (0: none): as many as fit in INV_PIPE_BUDGET_NS at the function's average
 * duration, up to INV_PIPE_MAX. Not for exec functions (one call per
 * process), before the average means something, or for big frames. */
static uint32_t pool_pipe_depth(const inv_pool_t *p, const inv_call_t *c)
{
    if (p->fn->runtime == REG_RUNTIME_EXEC || p->answers < INV_PIPE_MIN_ANSWERS || c->frame_len > INV_PIPE_MAX_FRAME)
        return 0;
    uint64_t d = INV_PIPE_BUDGET_NS / (p->avg_ns ? p->avg_ns : 1);
    return d > INV_PIPE_MAX ? INV_PIPE_MAX : (uint32_t)d;
}

/* The busy sandbox with the fewest pipelined calls (below `depth`) whose
 * running call is in no host call and has no tine.invoke in flight: a call
 * queued behind it can never be one it waits for. NULL when none. */
static inv_sandbox_t *pool_pipe_target(const inv_pool_t *p, uint32_t depth)
{
    inv_sandbox_t *best = NULL;
    for (inv_sandbox_t *s = p->sandboxes; s; s = s->next) {
        if (s->state != SBX_BUSY || s->call == NULL || s->npiped >= depth || s->call->holds ||
            s->call->invokes_in_flight)
            continue;
        if (best == NULL || s->npiped < best->npiped)
            best = s;
        if (best->npiped == 0)
            break;
    }
    return best;
}

/* The counts the sharing between apps decides on, for pool p's app. */
static inv_fair_t pool_fair(const inv_pool_t *p)
{
    const inv_invoker_t *inv = p->inv;
    inv_fair_t f = {
        .node_live = inv->nlive,
        .cap = inv->cfg.max_sandboxes,
        .reserve = inv->cfg.app_reserve,
        .app_live = p->app->nlive,
        .waiting_min = INV_FAIR_NONE,
    };
    for (const inv_pool_t *q = inv->blocked_head; q; q = q->blocked_next)
        if (q->app != p->app && q->queued && (f.waiting_min == INV_FAIR_NONE || q->app->nlive < f.waiting_min))
            f.waiting_min = q->app->nlive;
    return f;
}

/* Whether pool p may start a sandbox now, under the node's cap as the
 * sharing between apps allows (fair_share.c); at the cap it may close an
 * idle sandbox to make room first. When it may not, the pool waits for room
 * (blocked). */
static bool pool_may_start(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    if (inv->ncap_blocked == 0 && inv->nlive < inv->cfg.max_sandboxes)
        return true; /* room, and no call waits for it */
    inv_fair_t f = pool_fair(p);
    inv_fair_verdict_t v = inv__fair_start(&f);
    if (v == INV_FAIR_START || (v != INV_FAIR_WAIT && (invoker_evict_lru(inv, p) || v == INV_FAIR_EVICT_ELSE_START)))
        return true;
    pool_block(p);
    return false;
}

/* Whether pool p's app owes the node a sandbox (fair_share.c): the next of
 * its sandboxes whose call ends closes instead of serving another, and
 * meanwhile its calls are not pipelined, so that one drains. */
static bool pool_owes_sandbox(const inv_pool_t *p)
{
    const inv_invoker_t *inv = p->inv;
    if (inv->ncap_blocked == 0 && inv->nlive <= inv->cfg.max_sandboxes)
        return false; /* nobody waits for room, and the node is within its cap */
    inv_fair_t f = pool_fair(p);
    return inv__fair_gives_back(&f);
}

/* Gives queued calls to sandboxes. Short calls are pipelined behind busy
 * sandboxes once the pool's busy ones are as many as the CPUs (more
 * processes would only take turns on them), or when the pool can start no
 * more. Otherwise calls go to idle sandboxes (most recently used first) or
 * starting ones, and sandboxes start up to the function's concurrency and
 * as the node's cap and its sharing between apps allow (pool_may_start), or
 * the calls wait. Then tops up the warm sandboxes. */
static void pool_dispatch(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    while (p->queue_head) {
        uint32_t depth = pool_pipe_depth(p, p->queue_head);
        if (depth && pool_owes_sandbox(p))
            depth = 0;
        inv_sandbox_t *s = NULL;
        if (depth && p->nbusy >= inv->ncpu && (s = pool_pipe_target(p, depth)) != NULL) {
            sandbox_pipe_call(s, pool_pop_call(p));
            continue;
        }
        s = p->idle_head;
        if (s == NULL && p->nstarting_free)
            for (s = p->sandboxes; s && !s->free_start; s = s->next)
                ;
        if (s != NULL) {
            sandbox_take_call(s, pool_pop_call(p));
            continue;
        }
        if (inv->closing)
            break;
        bool full = p->nlive >= p->fn->concurrency || !pool_may_start(p);
        if (full) {
            if (depth && (s = pool_pipe_target(p, depth)) != NULL) {
                sandbox_pipe_call(s, pool_pop_call(p));
                continue;
            }
            break;
        }
        pool_start(p, pool_pop_call(p));
    }
    if (p->queue_head == NULL)
        pool_unblock(p); /* nothing of it waits any more */
    pool_refill_warm(p);
}

static inv_pool_t *pool_get(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index)
{
    for (inv_pool_t *p = inv->pools; p; p = p->next)
        if (p->version == v && p->fn_index == fn_index)
            return p;
    inv_pool_t *p = xcalloc(1, sizeof(*p));
    p->inv = inv;
    /* The live table hands versions out as const; the pool's reference is
     * counted like any other. */
    p->version = (reg_app_version_t *)v;
    reg_app_version_retain(p->version);
    p->fn_index = fn_index;
    p->fn = &v->manifest->functions[fn_index];
    p->app = app_hold(inv, v->app);
    p->warm = p->fn->warm;
    p->next = inv->pools;
    inv->pools = p;
    return p;
}

/* ------------------------------------------------------------ processes */

/* Gives a starting sandbox its process: watches its pipe, writes the spec
 * (and the INVOKE of an attached call) and arms the start limit. */
static void sandbox_attach_process(inv_sandbox_t *s, pid_t pid, sbx_fds_t fds)
{
    inv_pool_t *p = s->pool;
    s->pid = pid;
    char msg[256];
    int rr = uv_pipe_open(&s->pipe, fds.rd), wr = uv_pipe_open(&s->wpipe, fds.wr);
    if (rr != 0 || wr != 0) {
        if (rr != 0)
            close(fds.rd);
        if (wr != 0)
            close(fds.wr);
        snprintf(msg, sizeof(msg), "cannot watch the sandbox of %s", p->fn->name);
        sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    if (uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) != 0) {
        snprintf(msg, sizeof(msg), "cannot watch the sandbox of %s", p->fn->name);
        sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    size_t spec_len = 0;
    const char *spec = pool_spec_frame(p, &spec_len);
    uv_buf_t bufs[2];
    unsigned n = 0;
    if (spec)
        bufs[n++] = uv_buf_init((char *)spec, (unsigned)spec_len);
    if (s->call)
        bufs[n++] = uv_buf_init(s->call->frame, (unsigned)s->call->frame_len);
    int r = spec ? sandbox_send_frames(s, bufs, n) : UV_EINVAL;
    if (r != 0) {
        snprintf(msg, sizeof(msg), "cannot start a sandbox for %s: %s", p->fn->name,
                 spec ? uv_strerror(r) : "its spec cannot be encoded");
        sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    uint32_t limit = p->fn->timeout_ms > INV_MIN_START_MS ? p->fn->timeout_ms : INV_MIN_START_MS;
    uv_timer_start(&s->timer, on_timer, limit, 0);
}

/* Asks the zygote for blank processes: one per sandbox waiting for one, plus
 * INV_SPARE_BLANKS ready for the next cold start (not while a cold start
 * that took the spare is still on its way: spare_undefer). */
static void blanks_request(inv_invoker_t *inv)
{
    if (inv->closing || inv->zygote_gone)
        return;
    size_t want = inv->nwaiting + (inv->blank_failed || inv->spares_deferred ? 0 : INV_SPARE_BLANKS);
    while (inv->nspare + inv->blanks_requested < want && inv->blanks_requested < INV_MAX_BLANK_REQUESTS) {
        int r = sbx_zygote_request(inv->zygote, NULL);
        if (r == -EAGAIN)
            break; /* the socket is full: more are asked for as answers arrive */
        if (r != 0) {
            fprintf(stderr, "tined: cannot ask the zygote for a sandbox: %s\n", tine_strerror(r));
            break;
        }
        inv->blanks_requested++;
    }
}

/* The zygote is gone: nothing can start any more; who waits is told. */
static void zygote_lost(inv_invoker_t *inv)
{
    if (!inv->zygote_gone)
        fprintf(stderr, "tined: the zygote is gone; no new sandbox can start\n");
    inv->zygote_gone = true;
    inv->blanks_requested = 0;
    if (inv->zygote_polling)
        uv_poll_stop(&inv->zygote_poll);
    while (inv->wait_head)
        sandbox_start_failed(inv->wait_head, TINE_ECRASH, 503, "cannot start a sandbox: the zygote is gone");
}

/* Answers of the zygote: each blank goes to the oldest sandbox waiting for
 * a process, else to the spare list. */
static void on_zygote_readable(uv_poll_t *h, int status, int events)
{
    inv_invoker_t *inv = h->data;
    for (;;) {
        sbx_spawned_t got;
        int r = sbx_zygote_receive(inv->zygote, false, &got);
        if (r == -EAGAIN)
            break;
        if (r != 0 || inv->blanks_requested == 0) {
            zygote_lost(inv);
            return;
        }
        inv->blanks_requested--;
        if (got.error != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "cannot start a sandbox: the zygote could not fork: %s",
                     tine_strerror(got.error));
            fprintf(stderr, "tined: %s\n", msg);
            inv->blank_failed = true;
            if (inv->wait_head)
                sandbox_start_failed(inv->wait_head, TINE_ECRASH, 503, msg);
            continue;
        }
        inv->blank_failed = false;
        if (inv->closing) {
            sbx_fds_close(got.fds); /* the blank exits on EOF */
        } else if (inv->wait_head) {
            inv_sandbox_t *s = inv->wait_head;
            wait_remove(s);
            sandbox_attach_process(s, got.pid, got.fds);
        } else if (inv->nspare < INV_SPARE_BLANKS) {
            inv->spare[inv->nspare++] = (inv_blank_t){got.pid, got.fds};
        } else {
            sbx_fds_close(got.fds);
        }
    }
    if (status < 0 || (events & UV_DISCONNECT)) {
        zygote_lost(inv);
        return;
    }
    blanks_request(inv);
}

/* --------------------------------------------------------- sandbox events */

static void on_timer(uv_timer_t *t)
{
    inv_sandbox_t *s = t->data;
    inv_pool_t *p = s->pool;
    char msg[160];
    switch (s->state) {
    case SBX_STARTING:
        snprintf(msg, sizeof(msg), "the sandbox of %s did not finish loading within %" PRIu32 " ms", p->fn->name,
                 p->fn->timeout_ms > INV_MIN_START_MS ? p->fn->timeout_ms : INV_MIN_START_MS);
        fprintf(stderr, "tined: %s (pid %d); killed\n", msg, (int)s->pid);
        sandbox_start_failed(s, TINE_ETIMEOUT, 504, msg);
        return;
    case SBX_BUSY: {
        inv_call_t *c = s->call;
        if (c == NULL)
            return;
        s->call = NULL;
        snprintf(msg, sizeof(msg), "function %s timed out after %" PRIu32 " ms", p->fn->name, p->fn->timeout_ms);
        sandbox_kill(s);
        sandbox_close(s);
        call_fail(c, TINE_ETIMEOUT, 504, msg);
        return;
    }
    case SBX_IDLE:
        /* Scale to zero, down to the warm ones (the most recently used stay). */
        if (p->retired || p->nidle > p->warm)
            sandbox_close(s);
        return;
    case SBX_CLOSING:
        return;
    }
}

/* Sizes the read buffer: room for the rest of a frame whose header is in,
 * else 64 KiB more. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    inv_sandbox_t *s = h->data;
    size_t want = s->rlen + 65536;
    if (s->rlen >= sizeof(sbx_frame_hdr_t)) {
        sbx_frame_hdr_t fh;
        memcpy(&fh, s->rbuf, sizeof(fh));
        size_t whole = sizeof(fh) + (size_t)fh.len;
        if (fh.len <= SBX_WIRE_MAX_FRAME && whole > want)
            want = whole;
    }
    if (s->rcap < want) {
        size_t cap = s->rcap ? s->rcap * 2 : 131072;
        s->rcap = cap > want ? cap : want;
        s->rbuf = xrealloc(s->rbuf, s->rcap);
    }
    *buf = uv_buf_init(s->rbuf + s->rlen, (unsigned)(s->rcap - s->rlen));
}

/* The sandbox's pipe closed or failed: the process is gone or going. */
static void sandbox_on_eof(inv_sandbox_t *s)
{
    char msg[160];
    if (s->state == SBX_STARTING) {
        snprintf(msg, sizeof(msg), "the sandbox of %s died while loading (pid %d)", s->pool->fn->name, (int)s->pid);
        fprintf(stderr, "tined: %s\n", msg);
        s->pid = 0; /* gone: its pid may already belong to another process */
        sandbox_start_failed(s, TINE_ECRASH, 502, msg);
        return;
    }
    inv_call_t *c = s->call;
    s->call = NULL;
    sandbox_close(s);
    if (c) {
        snprintf(msg, sizeof(msg), "the sandbox of %s crashed (pid %d)", s->pool->fn->name, (int)s->pid);
        call_fail(c, TINE_ECRASH, 502, msg);
    }
}

/* Kills a sandbox that broke the protocol; its call fails with `msg`. */
static void sandbox_reject(inv_sandbox_t *s, const char *msg)
{
    fprintf(stderr, "tined: sandbox %d: %s; killing it\n", (int)s->pid, msg);
    inv_call_t *c = s->call;
    s->call = NULL;
    sandbox_kill(s);
    sandbox_close(s);
    if (c)
        call_fail(c, TINE_ECRASH, 502, msg);
}

static void sandbox_on_frame(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload);

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
            char msg[160];
            if (h.type == SBX_MSG_RESULT && h.meta_len <= h.len)
                snprintf(msg, sizeof(msg), "function %s answered with %" PRIu32 " bytes, over the limit of %u",
                         s->pool->fn->name, h.len, SBX_WIRE_MAX_FRAME);
            else
                snprintf(msg, sizeof(msg), "the sandbox of %s sent a malformed frame", s->pool->fn->name);
            sandbox_reject(s, msg);
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
    /* One big answer must not pin megabytes in every idle sandbox. */
    if (s->rlen == 0 && s->rcap > INV_RBUF_KEEP && s->state == SBX_IDLE) {
        free(s->rbuf);
        s->rbuf = NULL;
        s->rcap = 0;
    }
}

/* The handler failed to load: the call waiting for this sandbox and every
 * queued call learn why (they would all fail alike). */
static void sandbox_on_load_error(inv_sandbox_t *s, const char *error)
{
    inv_pool_t *p = s->pool;
    tine_buf_t why; /* the module's own words: one printable line */
    tine_buf_init(&why);
    inv__printable_cut(&why, error ? error : "unknown error", error ? strlen(error) : 13, INV_TEXT_MAX);
    char *msg = xasprintf("function %s failed to load: %s", p->fn->name, why.data);
    tine_buf_dispose(&why);
    const char *kv[] = {"app", p->version->app, "function", p->fn->name, NULL};
    tine_log_kv(TINE_LOG_ERROR, kv, "%s", msg); /* JSON-quoted: a module's message stays in its field */
    sandbox_start_failed(s, TINE_EHANDLER, 500, msg);
    while (p->queue_head)
        call_fail(pool_pop_call(p), TINE_EHANDLER, 500, msg);
    free(msg);
}

/* True when a handler error is Lua running out of memory. */
static bool error_is_oom(const char *e)
{
    return e && (strstr(e, "not enough memory") || strstr(e, "out of memory"));
}

/* RESULT or ERROR of the running call. */
static void sandbox_on_answer(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload)
{
    inv_pool_t *p = s->pool;
    inv_call_t *c = s->call;
    json_t *meta = NULL;
    uv_timer_stop(&s->timer);
    s->call = NULL;
    c->cpu_ns = (uint64_t)h->aux * 1000u;
    inv_result_t res = {0};
    char msg[160];
    bool healthy = p->fn->runtime != REG_RUNTIME_EXEC;
    tine_buf_t clean; /* an ERROR's message as one printable line (callers, records, APIs) */
    tine_buf_init(&clean);
    if (h->type == SBX_MSG_RESULT) {
        if (!sbx_result_meta_parse(payload, h->meta_len, &res.meta)) {
            snprintf(msg, sizeof(msg), "the sandbox of %s sent a malformed result", p->fn->name);
            s->call = c;
            sandbox_reject(s, msg);
            return;
        }
        res.status = res.meta.status >= 100 && res.meta.status <= 599 ? res.meta.status : 200;
        res.body = payload + h->meta_len;
        res.body_len = h->len - h->meta_len;
    } else {
        meta = json_loadb(payload, h->meta_len, 0, NULL);
        const char *raw = json_string_value(json_object_get(meta, "error"));
        if (raw)
            inv__printable_cut(&clean, raw, json_string_length(json_object_get(meta, "error")), INV_TEXT_MAX);
        const char *e = raw ? (clean.data ? clean.data : "") : NULL;
        const char *trace = json_string_value(json_object_get(meta, "trace"));
        res.status = 500;
        if (error_is_oom(e)) {
            /* A Lua state that hit its memory limit is not worth keeping. */
            snprintf(msg, sizeof(msg), "function %s ran out of memory (memory: %" PRIu32 " MB)", p->fn->name,
                     p->fn->memory_mb);
            res.code = -ENOMEM;
            res.error = msg;
            healthy = false;
        } else if (h->flags & SBX_FRAME_EXITING) {
            /* Stopped by its system call filter: the sandbox is gone, and the
             * caller learns which call it tried. */
            snprintf(msg, sizeof(msg), "the sandbox of %s was stopped: %s", p->fn->name,
                     e ? e : "blocked system call");
            res.code = TINE_ECRASH;
            res.status = 502;
            res.error = msg;
            healthy = false;
        } else {
            res.code = TINE_EHANDLER;
            res.error = e ? e : "the function raised an error";
        }
        /* Lua raises; an exec program fails (exit status, signal). */
        const char *what = p->fn->runtime == REG_RUNTIME_LUA ? "raised: " : "failed: ";
        char *line = xasprintf("%s%s", res.code == TINE_EHANDLER ? what : "", res.error);
        inv__log_error(c, line, trace);
        free(line);
    }
    spare_undefer(s);
    uint64_t now = tine_now_ns(), took = now - c->dispatched_at; /* one clock read for all that follows */
    p->avg_ns = p->answers ? p->avg_ns - p->avg_ns / 8 + took / 8 : took;
    p->answers++;
    /* The sandbox runs its next pipelined call, is ready again, or is gone
     * (its pipelined calls queued again) before the caller hears back, so
     * whatever the callback starts sees the pool as it is. */
    if (!healthy) {
        sandbox_close(s);
    } else if (s->piped_head) {
        inv_call_t *next = s->piped_head;
        s->piped_head = next->next;
        if (s->piped_head == NULL)
            s->piped_tail = NULL;
        next->next = NULL;
        s->npiped--;
        sandbox_start_call(s, next, now);
    } else if ((p->retired && p->queued == 0) || pool_owes_sandbox(p)) {
        sandbox_close(s); /* not needed, or given back to the node */
    } else {
        sandbox_set_idle(s, now);
    }
    call_finish_at(c, &res, now);
    json_decref(meta);
    tine_buf_dispose(&clean);
    pool_dispatch(p);
    if (s->state != SBX_BUSY)
        invoker_kick_blocked(p->inv);
}

/* Handles one complete frame from a sandbox. */
static void sandbox_on_frame(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload)
{
    inv_pool_t *p = s->pool;
    switch (h->type) {
    case SBX_MSG_READY:
        if (s->state != SBX_STARTING)
            break;
        s->last_used = tine_now_ns();
        s->ready_ns = s->last_used - s->spawned_at;
        p->start_failed = false;
        if (s->call) {
            /* The attached call's INVOKE is already in the pipe. */
            inv_call_t *c = s->call;
            sandbox_set_busy(s);
            sandbox_start_call(s, c, s->last_used);
            c->cold_start_ns = s->ready_ns;
            return;
        }
        sandbox_unfree(s);
        if (p->retired && p->queued == 0) {
            sandbox_close(s);
            return;
        }
        sandbox_set_idle(s, s->last_used);
        pool_dispatch(p);
        if (s->state == SBX_IDLE)
            invoker_kick_blocked(p->inv);
        return;
    case SBX_MSG_LOG:
        inv__log_frame(p, s->call != NULL && h->id == s->call->id ? s->call : NULL, h, payload);
        return;
    case SBX_MSG_HOSTCALL:
        if (s->state != SBX_BUSY || s->call == NULL || h->id != s->call->id)
            break;
        inv_hostcall(s->call, h, payload);
        return;
    case SBX_MSG_ERROR:
        if (s->state == SBX_STARTING) {
            json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
            sandbox_on_load_error(s, json_string_value(json_object_get(meta, "error")));
            json_decref(meta);
            return;
        }
        /* fall through */
    case SBX_MSG_RESULT:
        if (s->state != SBX_BUSY || s->call == NULL || h->id != s->call->id)
            break;
        sandbox_on_answer(s, h, payload);
        return;
    default:
        break;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "the sandbox sent an unexpected frame (type %u)", h->type);
    sandbox_reject(s, msg);
}

/* -------------------------------------------------------------- public */

int inv_call_encoded(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, const inv_request_t *rq,
                     const void *body, size_t body_len, inv_done_cb cb, void *data, inv_call_t **out)
{
    if (fn_index >= v->manifest->functions_len || inv->closing)
        return TINE_ENOTFOUND;
    inv_pool_t *p = pool_get(inv, v, fn_index);
    if (p->queued >= inv->cfg.max_queue)
        return TINE_EBUSY;
    inv_call_t *c = xcalloc(1, sizeof(*c));
    c->inv = inv;
    c->pool = p;
    c->cb = cb;
    c->data = data;
    c->id = ++inv->next_id;
    /* node prefix, then the id as 16 hex digits */
    static const char hex[] = "0123456789abcdef";
    memcpy(c->id_hex, inv->node_prefix, 16);
    for (int i = 0; i < 16; i++)
        c->id_hex[16 + i] = hex[(c->id >> (60 - 4 * i)) & 0xf];
    c->id_hex[32] = '\0';
    if (rq->trigger) {
        size_t tl = strnlen(rq->trigger, sizeof(c->trigger) - 1);
        memcpy(c->trigger, rq->trigger, tl); /* c is zeroed: NUL-terminated */
    }
    call_build_frame(c, rq, body, body_len);
    c->queued_at = tine_now_ns();
    c->started_unix_ms = tine_now_unix_ms();
    if (p->queue_tail)
        p->queue_tail->next = c;
    else
        p->queue_head = c;
    p->queue_tail = c;
    p->queued++;
    inv->calls++;
    if (out)
        *out = c;
    pool_dispatch(p);
    return 0;
}

int inv_call(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, json_t *request, const void *body,
             size_t body_len, inv_done_cb cb, void *data, inv_call_t **out)
{
    tine_buf_t m;
    tine_buf_init(&m);
    inv_request_t rq = {0};
    const char *k;
    json_t *x;
    json_object_foreach(request, k, x) {
        sbx_meta_key(&m, k, strlen(k));
        sbx_meta_json(&m, x);
        rq.nmembers++;
    }
    rq.members = m.data ? m.data : "";
    rq.members_len = m.len;
    rq.trigger = json_string_value(json_object_get(request, "trigger"));
    if (rq.trigger == NULL)
        rq.trigger = json_string_value(json_object_get(request, "kind"));
    int rc = inv_call_encoded(inv, v, fn_index, &rq, body, body_len, cb, data, out);
    tine_buf_dispose(&m);
    json_decref(request);
    return rc;
}

void inv_call_cancel(inv_call_t *c)
{
    c->cb = NULL;
    if (c->sandbox != NULL || c->finished)
        return;
    /* Still queued: nobody waits for it any more, so it leaves the queue. */
    inv_pool_t *p = c->pool;
    inv_call_t *prev = NULL;
    for (inv_call_t *q = p->queue_head; q; prev = q, q = q->next) {
        if (q != c)
            continue;
        if (prev)
            prev->next = c->next;
        else
            p->queue_head = c->next;
        if (p->queue_tail == c)
            p->queue_tail = prev;
        p->queued--;
        p->inv->calls--;
        call_free(c);
        if (p->queued == 0 && p->cap_blocked) {
            /* Others may have waited for it to get room first. */
            pool_unblock(p);
            invoker_kick_blocked(p->inv);
        }
        pool_maybe_free(p);
        return;
    }
}

void inv_version_retired(inv_invoker_t *inv, const reg_app_version_t *v)
{
    for (inv_pool_t *p = inv->pools, *next; p; p = next) {
        next = p->next;
        if (p->version != v)
            continue;
        p->retired = true;
        if (p->queued == 0) {
            for (inv_sandbox_t *s = p->sandboxes; s; s = s->next)
                if (s->state == SBX_IDLE || s->free_start)
                    sandbox_close(s);
        }
        pool_maybe_free(p);
    }
}

void inv_version_live(inv_invoker_t *inv, const reg_app_version_t *v)
{
    if (inv->closing)
        return;
    for (size_t i = 0; i < v->manifest->functions_len; i++)
        if (v->manifest->functions[i].warm > 0)
            pool_refill_warm(pool_get(inv, v, i));
}

int inv_scale(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index, uint32_t warm)
{
    if (fn_index >= v->manifest->functions_len || warm > v->manifest->functions[fn_index].concurrency)
        return TINE_EINVAL;
    inv_pool_t *p = pool_get(inv, v, fn_index);
    p->warm = warm;
    p->start_failed = false;
    /* Idle sandboxes kept as warm had no timer running: give them one again. */
    for (inv_sandbox_t *s = p->sandboxes; s; s = s->next)
        if (s->state == SBX_IDLE && !uv_is_active((uv_handle_t *)&s->timer))
            uv_timer_start(&s->timer, on_timer, inv->cfg.idle_timeout_ms, 0);
    pool_refill_warm(p);
    return 0;
}

size_t inv_evict(inv_invoker_t *inv, const char *app, const char *fn, pid_t **pids)
{
    size_t n = 0, cap = 0;
    if (pids)
        *pids = NULL;
    for (inv_pool_t *p = inv->pools; p; p = p->next) {
        if (strcmp(p->version->app, app) != 0 || (fn && strcmp(p->fn->name, fn) != 0))
            continue;
        while (p->idle_head) {
            if (pids && p->idle_head->pid > 0) {
                if (n == cap)
                    *pids = xrealloc(*pids, (cap = cap ? cap * 2 : 8) * sizeof(**pids));
                (*pids)[n] = p->idle_head->pid;
            }
            sandbox_close(p->idle_head);
            n++;
        }
    }
    return n;
}

json_t *inv_stats(inv_invoker_t *inv, const char *app)
{
    static const char *names[] = {"starting", "idle", "busy", "closing"};
    json_t *pools = json_array();
    uint64_t now = tine_now_ns();
    for (inv_pool_t *p = inv->pools; p; p = p->next) {
        if (app && strcmp(p->version->app, app) != 0)
            continue;
        json_t *sbx = json_array();
        size_t busy = 0, starting = 0;
        for (inv_sandbox_t *s = p->sandboxes; s; s = s->next) {
            busy += s->state == SBX_BUSY;
            starting += s->state == SBX_STARTING;
            bool ready = s->state == SBX_IDLE || s->state == SBX_BUSY;
            json_t *o = json_pack("{s:i, s:s, s:f, s:I, s:I}", "pid", (int)s->pid, "state", names[s->state], "age_s",
                                  (double)(now - s->spawned_at) / 1e9, "invocations", (json_int_t)s->invocations,
                                  "piped", (json_int_t)s->npiped);
            json_object_set_new(o, "cold_start_ms", ready ? json_real((double)s->ready_ns / 1e6) : json_null());
            json_object_set_new(o, "last_used_s",
                                ready ? json_real((double)(now - (s->last_used ? s->last_used : now)) / 1e9)
                                      : json_null());
            json_array_append_new(sbx, o);
        }
        json_array_append_new(
            pools,
            json_pack("{s:s, s:I, s:s, s:b, s:i, s:i, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "app",
                      p->version->app, "version", (json_int_t)p->version->version, "function", p->fn->name, "retired",
                      p->retired, "warm", (int)p->warm, "concurrency", (int)p->fn->concurrency, "queued",
                      (json_int_t)p->queued, "waiting_for_room", p->cap_blocked, "idle", (json_int_t)p->nidle, "busy",
                      (json_int_t)busy, "starting", (json_int_t)starting, "pipelined", (json_int_t)p->pipelined,
                      "requeued", (json_int_t)p->requeued, "avg_ms", (double)p->avg_ns / 1e6, "sandboxes", sbx));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "sandboxes", (json_int_t)inv->nlive, "max_sandboxes",
                     (json_int_t)inv->cfg.max_sandboxes, "app_reserve", (json_int_t)inv->cfg.app_reserve,
                     "idle_timeout_ms", (json_int_t)inv->cfg.idle_timeout_ms, "spare", (json_int_t)inv->nspare, "pools",
                     pools);
}

void inv_load(const inv_invoker_t *inv, size_t *sandboxes, size_t *calls)
{
    *sandboxes = inv ? inv->nlive : 0;
    *calls = inv ? inv->calls : 0;
}

static void on_zygote_poll_closed(uv_handle_t *h)
{
    inv_invoker_t *inv = h->data;
    inv->zygote_polling = false;
    invoker_maybe_free(inv);
}

static void on_flush_closed(uv_handle_t *h)
{
    inv_invoker_t *inv = h->data;
    inv->flush_open = false;
    invoker_maybe_free(inv);
}

void inv_free(inv_invoker_t *inv)
{
    if (inv == NULL)
        return;
    inv->closing = true;
    inv__hostcalls_free(inv->hostcalls);
    inv->hostcalls = NULL;
    while (inv->nspare > 0)
        sbx_fds_close(inv->spare[--inv->nspare].fds);
    for (inv_pool_t *p = inv->pools, *pn; p; p = pn) {
        pn = p->next;
        p->retired = true;
        for (inv_sandbox_t *s = p->sandboxes; s; s = s->next) {
            if (s->call) {
                inv_call_t *c = s->call;
                s->call = NULL;
                call_fail(c, TINE_EBUSY, 503, "the node is shutting down");
            }
            sandbox_close(s); /* its pipelined calls join the queue */
        }
        while (p->queue_head)
            call_fail(pool_pop_call(p), TINE_EBUSY, 503, "the node is shutting down");
        pool_maybe_free(p);
    }
    inv__logs_free(inv->logs);
    inv->logs = NULL;
    uv_close((uv_handle_t *)&inv->flush, on_flush_closed);
    if (inv->zygote_polling)
        uv_close((uv_handle_t *)&inv->zygote_poll, on_zygote_poll_closed);
    /* Pools free themselves as their sandboxes' handles close, and the last
     * handle frees the invoker: run the loop until then. */
}
