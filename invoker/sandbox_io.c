/* Sandbox I/O: a sandbox's two pipes (frames from it on `pipe`, frames to
 * it on `wpipe`). Frames are written without a copy when the pipe takes
 * them at once; pipelined INVOKE frames are collected per sandbox and
 * written with one writev per loop turn, from a uv_prepare handle, right
 * before the loop polls. Frames read are dispatched by type: READY, LOG,
 * HOSTCALL, and the RESULT or ERROR that answers the running call. A pipe
 * that closes is a sandbox gone (502, or a failed start); a sandbox that
 * breaks the protocol is killed. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INV_RBUF_KEEP (256u * 1024u) /* read buffer an idle sandbox may keep */

typedef struct {
    uv_write_t req;
    char *owned; /* freed once written; NULL when the bytes belong to someone else */
} frame_write_t;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void sandbox_on_eof(inv_sandbox_t *s);

/* ------------------------------------------------------------- writing */

/* A queued write finished (or failed: EOF tells the rest): its copy goes. */
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

/* Written at once when the pipe takes the frame (the common case, without a
 * copy or a write request), else the rest is copied and queued. */
int inv__sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len, const char *body,
                       size_t body_len)
{
    size_t total = sizeof(sbx_frame_hdr_t) + meta_len + body_len;
    sbx_frame_hdr_t h = sbx_frame_header(type, id, 0, meta_len, body_len);
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

int inv__sandbox_send_call(inv_sandbox_t *s, inv_call_t *c)
{
    uv_buf_t buf = uv_buf_init(c->frame, (unsigned)c->frame_len);
    return sandbox_send_frames(s, &buf, 1);
}

/* Before the loop polls: writes every sandbox's pending frames. */
static void on_flush(uv_prepare_t *h)
{
    inv_invoker_t *inv = h->data;
    uv_prepare_stop(h);
    tine_list_t *l;
    while ((l = tine_list_pop_head(&inv->flushing)) != NULL) {
        inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, flush_link);
        unsigned n = s->npend;
        s->npend = 0;
        if (n > 0 && sandbox_send_frames(s, s->pend, n) != 0)
            sandbox_on_eof(s); /* its pipe is closed: the sandbox is gone */
    }
}

void inv__sandbox_pipe_call(inv_sandbox_t *s, inv_call_t *c)
{
    inv_invoker_t *inv = s->pool->inv;
    if (s->npend == s->pend_cap) {
        s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 8;
        s->pend = xrealloc(s->pend, s->pend_cap * sizeof(*s->pend));
    }
    s->pend[s->npend++] = uv_buf_init(c->frame, (unsigned)c->frame_len);
    if (!tine_list_linked(&s->flush_link)) {
        tine_list_insert_tail(&inv->flushing, &s->flush_link);
        uv_prepare_start(&inv->flush, on_flush);
    }
}

void inv__sandbox_unflush(inv_sandbox_t *s)
{
    tine_list_remove(&s->flush_link);
    s->npend = 0;
}

void inv__io_init(inv_invoker_t *inv)
{
    tine_list_init(&inv->flushing);
    uv_prepare_init(inv->loop, &inv->flush);
    uv_unref((uv_handle_t *)&inv->flush);
    inv->flush.data = inv;
    inv->flush_open = true;
}

/* The flush handle closed: the invoker may be freed now. */
static void on_flush_closed(uv_handle_t *h)
{
    inv_invoker_t *inv = h->data;
    inv->flush_open = false;
    inv__maybe_free(inv);
}

void inv__io_close(inv_invoker_t *inv)
{
    uv_close((uv_handle_t *)&inv->flush, on_flush_closed);
}

/* ------------------------------------------------------- the process */

void inv__sandbox_kill(inv_sandbox_t *s)
{
    if (s->pid <= 0)
        return;
    if (s->pool->fn->runtime == REG_RUNTIME_EXEC)
        kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
}

void inv__sandbox_attach_process(inv_sandbox_t *s, pid_t pid, sbx_fds_t fds)
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
        inv__sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    if (uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) != 0) {
        snprintf(msg, sizeof(msg), "cannot watch the sandbox of %s", p->fn->name);
        inv__sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    size_t spec_len = 0;
    const char *spec = inv__pool_spec_frame(p, &spec_len);
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
        inv__sandbox_start_failed(s, TINE_ECRASH, 503, msg);
        return;
    }
    inv__sandbox_loading(s);
}

/* ------------------------------------------------------------- reading */

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
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", s->pool->version->app, "function", s->pool->fn->name), "%s",
                    msg);
        s->pid = 0; /* gone: its pid may already belong to another process */
        inv__sandbox_start_failed(s, TINE_ECRASH, 502, msg);
        return;
    }
    inv_call_t *c = s->call;
    s->call = NULL;
    inv__sandbox_close(s);
    if (c) {
        snprintf(msg, sizeof(msg), "the sandbox of %s crashed (pid %d)", s->pool->fn->name, (int)s->pid);
        inv__call_fail(c, TINE_ECRASH, 502, msg);
    }
}

/* Kills a sandbox that broke the protocol; its call fails with `msg`. */
static void sandbox_reject(inv_sandbox_t *s, const char *msg)
{
    tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", s->pool->version->app, "function", s->pool->fn->name),
                "sandbox %d: %s; killing it", (int)s->pid, msg);
    inv_call_t *c = s->call;
    s->call = NULL;
    inv__sandbox_kill(s);
    inv__sandbox_close(s);
    if (c)
        inv__call_fail(c, TINE_ECRASH, 502, msg);
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
    inv__sandbox_start_failed(s, TINE_EHANDLER, 500, msg);
    while (p->queued)
        inv__call_fail(inv__pool_pop_call(p), TINE_EHANDLER, 500, msg);
    free(msg);
}

/* True when a handler error is Lua (Python, V8) running out of memory. */
static bool error_is_oom(const char *e)
{
    return e && (strstr(e, "not enough memory") || strstr(e, "out of memory"));
}

/* RESULT or ERROR of the running call: the result for its caller, and the
 * sandbox moves on (inv__sandbox_answered) before the caller hears back, so
 * whatever the callback starts sees the pool as it is. */
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
        if (!inv__result_parse(&res, payload, h->meta_len)) {
            snprintf(msg, sizeof(msg), "the sandbox of %s sent a malformed result", p->fn->name);
            s->call = c;
            sandbox_reject(s, msg);
            return;
        }
        res.status = res.function_status >= 100 && res.function_status <= 599 ? res.function_status : 200;
        res.body = payload + h->meta_len;
        res.body_len = h->len - h->meta_len;
    } else {
        meta = json_loadb(payload, h->meta_len, 0, NULL);
        const char *raw = json_string_value(json_object_get(meta, "error"));
        if (raw) {
            /* The error reaches callers, records and logs: no secret in it. */
            tine_buf_t redacted;
            tine_buf_init(&redacted);
            inv__redact(p->inv, p->version->app, raw, json_string_length(json_object_get(meta, "error")), &redacted);
            inv__printable_cut(&clean, redacted.data ? redacted.data : "", redacted.len, INV_TEXT_MAX);
            tine_buf_dispose(&redacted);
        }
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
            snprintf(msg, sizeof(msg), "the sandbox of %s was stopped: %s", p->fn->name, e ? e : "blocked system call");
            res.code = TINE_ECRASH;
            res.status = 502;
            res.error = msg;
            healthy = false;
        } else {
            res.code = TINE_EHANDLER;
            res.error = e ? e : "the function raised an error";
        }
        /* Lua and Python raise; an exec program fails (exit status, signal). */
        const char *what = p->fn->runtime != REG_RUNTIME_EXEC ? "raised: " : "failed: ";
        char *line = xasprintf("%s%s", res.code == TINE_EHANDLER ? what : "", res.error);
        inv__log_error(c, line, trace);
        free(line);
    }
    inv__spawner_undefer(s);
    uint64_t now = tine_now_ns(); /* one clock read for all that follows */
    inv__sandbox_answered(s, healthy, now - c->dispatched_at, now);
    inv__call_answer(c, &res, now);
    json_decref(meta);
    tine_buf_dispose(&clean);
    inv__pool_dispatch(p);
    if (s->state != SBX_BUSY)
        inv__pools_kick_blocked(p->inv);
}

/* Handles one complete frame from a sandbox. */
static void sandbox_on_frame(inv_sandbox_t *s, const sbx_frame_hdr_t *h, char *payload)
{
    inv_pool_t *p = s->pool;
    switch (h->type) {
    case SBX_MSG_READY:
        if (s->state != SBX_STARTING)
            break;
        inv__sandbox_ready(s);
        return;
    case SBX_MSG_LOG:
        inv__log_frame(p, s->call != NULL && h->id == s->call->id ? s->call : NULL, h, payload);
        return;
    case SBX_MSG_NESTED:
        if (s->state != SBX_BUSY || s->call == NULL || h->id != s->call->id)
            break;
        inv__group_records(s->call, h, payload);
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
        /* An ERROR with id 0 that says the sandbox is exiting comes from a
         * Node host about its child, which V8 ended (sandbox/node_host.c):
         * it is the running call's. */
        if (s->state != SBX_BUSY || s->call == NULL ||
            (h->id != s->call->id &&
             !(h->type == SBX_MSG_ERROR && h->id == 0 && (h->flags & SBX_FRAME_EXITING))))
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

/* Reads what the sandbox wrote and handles each whole frame in it. */
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
