/* Python and Node functions: one Python zygote per app version that has
 * Python functions (a python3 that imported the version's handler modules
 * once, started by tine-zygote: sandbox/python_host.c), and one Node host
 * per app version that has Node functions (sandbox/node_host.c: it starts
 * a blank node per request), asked for blank sandboxes as tine-zygote is
 * for Lua ones. Both are the same states and calls here (a Node host
 * answers READY at once). A Python sandbox is then like any other: it
 * gets its spec and calls on its pipes (sandbox_io.c), pools, timeouts,
 * warm sandboxes, kills and crashes are the same (pool.c).
 *
 * A zygote is asked for when its version goes live (or when a call of a
 * version without one needs a sandbox), and goes when the version is
 * retired and none of its sandboxes is left. States:
 *
 *   ASKED      tine-zygote was asked to start it (answer in request order,
 *              routed here by spawner.c)
 *   IMPORTING  its control socket is open; it imports the modules (LOG
 *              frames) until READY, within the import limit
 *   READY      it forks blank sandboxes on request; one spare is kept
 *              (a Node host: INV_NODE_SPARES started nodes)
 *   FAILED     it could not start, or died: sandboxes that need it fail
 *              with why, and it is asked for again only after a backoff
 *              (1 s doubling to 60 s): no restart loop
 */
#include "invoker_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PYZ_MIN_IMPORT_MS 3000u /* the import limit: the largest timeout, at least this */
#define PYZ_BACKOFF_MIN_MS 1000u
#define PYZ_BACKOFF_MAX_MS 60000u
#define PYZ_MAX_REQUESTS 16                /* blank requests in flight to one Python zygote */
#define PYZ_MAX_IMPORT_FRAME (64u * 1024u) /* frames before READY are small */

typedef enum { PYZ_ASKED, PYZ_IMPORTING, PYZ_READY, PYZ_FAILED } pyz_state_t;

struct inv_pyzygote {
    tine_list_t link; /* inv->pyzygotes */
    inv_invoker_t *inv;
    reg_app_version_t *version; /* retained */
    pyz_state_t state;
    uint64_t seq;     /* ASKED: the request's number on tine-zygote's control socket */
    sbx_zygote_t z;   /* the launcher (pid: killing it ends the zygote) and the control socket */
    uv_poll_t *poll;  /* on the control socket; one per socket (a retry gets a new one) */
    uv_timer_t timer; /* the import limit */
    int handles;      /* open handles; freed when 0 after closing */
    bool closing;
    tine_buf_t in;       /* IMPORTING: bytes read, frames not handled yet */
    char importing[256]; /* the module being imported */
    uint64_t asked_ns;
    int fail_code, fail_status;
    char *error;          /* FAILED: why */
    uint64_t retry_at_ns; /* FAILED: when it may be asked for again */
    uint64_t backoff_ms;
    tine_list_t waiting; /* sandboxes waiting for a process (inv_sandbox_t.wait_link) */
    size_t nwaiting;
    size_t requested;       /* blank requests in flight */
    bool fork_failed;       /* the last fork failed: no spare until one succeeds */
    size_t spares_deferred; /* cold starts holding back the spare's refill (as spawner.c's) */
    inv_blank_t spare[INV_NODE_SPARES]; /* started blanks, oldest first */
    size_t nspares;
    size_t nsandboxes; /* sandboxes of the version's Python functions, not closed */
    bool retired;
    bool node;       /* a Node host: the same states; it imports nothing, each blank is a node started */
    char label[160]; /* "Python zygote of APP" or "Node host of APP", for messages */
};

static void on_readable(uv_poll_t *h, int status, int events);

/* --------------------------------------------------------------- small */

/* Whether fn runs in a Node host (node) or a Python zygote (!node). */
static bool is_kind(const reg_function_t *fn, bool node)
{
    return fn->runtime == (node ? REG_RUNTIME_NODE : REG_RUNTIME_PYTHON);
}

static bool version_has(const reg_app_version_t *v, bool node)
{
    for (size_t i = 0; i < v->manifest->functions_len; i++)
        if (is_kind(&v->manifest->functions[i], node))
            return true;
    return false;
}

/* Whether the sandbox's function runs in a Node host. */
static bool sandbox_node(const inv_sandbox_t *s)
{
    return s->pool->fn->runtime == REG_RUNTIME_NODE;
}

/* The zygote of v that is not closing, or NULL. (Closing ones stay on the
 * list until their handles closed: the invoker is freed after them.) */
static inv_pyzygote_t *pyz_find(inv_invoker_t *inv, const reg_app_version_t *v, bool node)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pyzygotes) {
        inv_pyzygote_t *pz = tine_list_entry(l, inv_pyzygote_t, link);
        if (pz->version == v && pz->node == node && !pz->closing)
            return pz;
    }
    return NULL;
}

/* The import limit: the largest timeout of its Python functions, at least
 * PYZ_MIN_IMPORT_MS. */
static uint64_t import_limit_ms(const inv_pyzygote_t *pz)
{
    const reg_app_version_t *v = pz->version;
    uint64_t ms = PYZ_MIN_IMPORT_MS;
    for (size_t i = 0; i < v->manifest->functions_len; i++) {
        const reg_function_t *fn = &v->manifest->functions[i];
        if (is_kind(fn, pz->node) && fn->timeout_ms > ms)
            ms = fn->timeout_ms;
    }
    return ms;
}

/* The first sandbox waiting for a process, taken off the list; or NULL. */
static inv_sandbox_t *take_waiting(inv_pyzygote_t *pz)
{
    tine_list_t *l = tine_list_pop_head(&pz->waiting);
    if (l == NULL)
        return NULL;
    pz->nwaiting--;
    return tine_list_entry(l, inv_sandbox_t, wait_link);
}

/* Blanks kept started: node takes tens of milliseconds to start, so a Node
 * host keeps INV_NODE_SPARES (cold starts close together each find one
 * started); a Python zygote forks in a millisecond and keeps one. */
static size_t spares_wanted(const inv_pyzygote_t *pz)
{
    return pz->node ? INV_NODE_SPARES : 1;
}

/* Lets the spares go (they exit on EOF, or with their zygote). */
static void drop_spare(inv_pyzygote_t *pz)
{
    for (size_t i = 0; i < pz->nspares; i++)
        sbx_fds_close(pz->spare[i].fds);
    pz->nspares = 0;
}

/* A handle of pz closed: pz is freed with the last once it is closing. */
static void handle_closed(inv_pyzygote_t *pz)
{
    if (--pz->handles > 0)
        return;
    inv_invoker_t *inv = pz->inv;
    tine_list_remove(&pz->link);
    reg_app_version_release(pz->version);
    tine_buf_dispose(&pz->in);
    free(pz->error);
    free(pz);
    inv__maybe_free(inv);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_poll_closed(uv_handle_t *h)
{
    inv_pyzygote_t *pz = h->data;
    free(h);
    handle_closed(pz);
}

/* Closes the control socket and ends the zygote: SIGTERM tells its launcher
 * to kill it (and with it its pid namespace) and to log how it ended. */
static void stop_process(inv_pyzygote_t *pz)
{
    if (pz->poll != NULL) {
        uv_poll_stop(pz->poll); /* before its descriptor closes */
        uv_close((uv_handle_t *)pz->poll, on_poll_closed);
        pz->poll = NULL;
    }
    if (pz->z.control_fd >= 0)
        close(pz->z.control_fd);
    pz->z.control_fd = -1;
    if (pz->z.pid > 0)
        kill(pz->z.pid, SIGTERM);
    pz->z.pid = 0;
    drop_spare(pz);
    pz->requested = 0;
}

/* Frees a retired zygote (or any, once the invoker closes) that no sandbox
 * needs any more. */
static void pyz_maybe_free(inv_pyzygote_t *pz)
{
    if (pz->closing || !(pz->retired || pz->inv->closing) || pz->nsandboxes > 0)
        return;
    /* Asked for and not answered yet: the answer is the zygote's to take
     * (spawner.c would take it for a blank's), unless no answer is read
     * any more. */
    if (pz->state == PYZ_ASKED && !pz->inv->closing)
        return;
    pz->closing = true;
    stop_process(pz);
    uv_close((uv_handle_t *)&pz->timer, on_timer_closed);
}

/* The zygote failed: `msg` is why, for every sandbox that waited for it
 * and those that will ask before the backoff is over. */
static void pyz_fail(inv_pyzygote_t *pz, int code, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void pyz_fail(inv_pyzygote_t *pz, int code, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", pz->version->app), "%s", msg);
    free(pz->error);
    pz->error = xstrdup(msg);
    pz->fail_code = code;
    pz->fail_status = status;
    pz->state = PYZ_FAILED;
    uv_timer_stop(&pz->timer);
    stop_process(pz);
    pz->in.len = 0;
    pz->backoff_ms = pz->backoff_ms ? pz->backoff_ms * 2 : PYZ_BACKOFF_MIN_MS;
    if (pz->backoff_ms > PYZ_BACKOFF_MAX_MS)
        pz->backoff_ms = PYZ_BACKOFF_MAX_MS;
    pz->retry_at_ns = tine_now_ns() + pz->backoff_ms * 1000000u;
    pz->nsandboxes++; /* not freed while failing its sandboxes */
    inv_sandbox_t *s;
    while ((s = take_waiting(pz)) != NULL)
        inv__sandbox_start_failed(s, code, status, msg);
    pz->nsandboxes--;
    pyz_maybe_free(pz);
}

/* The import limit passed. */
static void on_timer(uv_timer_t *t)
{
    inv_pyzygote_t *pz = t->data;
    const reg_app_version_t *v = pz->version;
    if (pz->importing[0])
        pyz_fail(pz, TINE_ETIMEOUT, 504,
                 "the %s version %" PRIu64 " did not finish importing within %" PRIu64
                 " ms (it was importing %s); killed",
                 pz->label, v->version, import_limit_ms(pz), pz->importing);
    else
        pyz_fail(pz, TINE_ETIMEOUT, 504,
                 "the %s version %" PRIu64 " did not start within %" PRIu64 " ms; killed", pz->label,
                 v->version, import_limit_ms(pz));
}

/* Asks tine-zygote for the zygote of the version. */
static void pyz_ask(inv_pyzygote_t *pz)
{
    const reg_app_version_t *v = pz->version;
    const reg_manifest_t *m = v->manifest;
    const char **modules = xcalloc(m->functions_len, sizeof *modules);
    size_t n = 0;
    uint32_t memory = 0;
    uint64_t processes = 0;
    for (size_t i = 0; i < m->functions_len; i++) {
        const reg_function_t *fn = &m->functions[i];
        if (!is_kind(fn, pz->node))
            continue;
        bool seen = pz->node; /* a Node host imports nothing */
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(modules[k], fn->handler_file) == 0;
        if (!seen)
            modules[n++] = fn->handler_file;
        if (pz->node)
            processes += INV_NODE_SPARES;
        if (fn->memory_mb > memory)
            memory = fn->memory_mb;
        processes += fn->concurrency;
    }
    sbx_python_spec_t spec = {.app = v->app,
                              .version = v->version,
                              .bundle_dir = v->bundle_dir,
                              .modules = modules,
                              .modules_len = n,
                              .memory_mb = memory,
                              .processes = processes > 65535 ? 65535 : (uint32_t)processes,
                              .node = pz->node};
    int r = inv__spawner_ask_python(pz->inv, &spec, &pz->seq);
    free(modules);
    pz->importing[0] = '\0';
    if (r != 0) {
        pyz_fail(pz, TINE_ECRASH, 503, "cannot start the %s version %" PRIu64 ": %s", pz->label,
                 v->version, r == -EAGAIN ? "the zygote is busy" : tine_strerror(r));
        return;
    }
    pz->state = PYZ_ASKED;
    pz->asked_ns = tine_now_ns();
    uv_timer_start(&pz->timer, on_timer, import_limit_ms(pz), 0);
}

/* The zygote of version v, made and asked for when there is none. */
static inv_pyzygote_t *pyz_get(inv_invoker_t *inv, const reg_app_version_t *v, bool node, bool retired)
{
    inv_pyzygote_t *pz = pyz_find(inv, v, node);
    if (pz != NULL)
        return pz;
    pz = xcalloc(1, sizeof *pz);
    pz->node = node;
    snprintf(pz->label, sizeof pz->label, "%s of %s", node ? "Node host" : "Python zygote", v->app);
    pz->inv = inv;
    pz->version = (reg_app_version_t *)v;
    reg_app_version_retain(pz->version);
    pz->z = (sbx_zygote_t){0, -1};
    pz->retired = retired;
    tine_list_init(&pz->waiting);
    tine_buf_init(&pz->in);
    uv_timer_init(inv->loop, &pz->timer);
    pz->timer.data = pz;
    pz->handles = 1;
    tine_list_insert_tail(&inv->pyzygotes, &pz->link);
    pyz_ask(pz);
    return pz;
}

/* --------------------------------------------------------- blank sandboxes */

/* Asks the ready zygote for blanks: one per sandbox waiting, plus a spare
 * (not for a retired version). */
static void pyz_request(inv_pyzygote_t *pz)
{
    if (pz->state != PYZ_READY || pz->closing)
        return;
    /* A cold start that took the spare is answered before the zygote forks
     * the next one: on a busy core the fork would run first. */
    size_t want = pz->nwaiting + (pz->retired || pz->fork_failed || pz->spares_deferred ? 0 : spares_wanted(pz));
    while (pz->requested + pz->nspares < want && pz->requested < PYZ_MAX_REQUESTS) {
        int r = sbx_zygote_request(&pz->z, NULL);
        if (r == -EAGAIN)
            break; /* more are asked for as answers arrive */
        if (r != 0) {
            pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " is gone: %s", pz->label,
                     pz->version->version, tine_strerror(r));
            return;
        }
        pz->requested++;
    }
}

/* Gives the oldest waiting sandbox a process: the spare, if there is one. */
static void pyz_give_spare(inv_pyzygote_t *pz)
{
    if (pz->nspares == 0 || pz->nwaiting == 0)
        return;
    inv_blank_t spare = pz->spare[0];
    memmove(pz->spare, pz->spare + 1, --pz->nspares * sizeof pz->spare[0]);
    inv_sandbox_t *s = take_waiting(pz);
    if (s->call) {
        s->defers_spare = true;
        pz->spares_deferred++;
    }
    inv__sandbox_attach_process(s, spare.pid, spare.fds);
}

/* READY: the zygote's answers to blank requests. */
static void read_answers(inv_pyzygote_t *pz)
{
    const reg_app_version_t *v = pz->version;
    /* A sandbox failed or attached below may close the zygote (retired, its
     * last sandbox gone): then nothing more is read. */
    while (pz->state == PYZ_READY && !pz->closing) {
        sbx_spawned_t got;
        int r = sbx_zygote_receive(&pz->z, false, &got);
        if (r == -EAGAIN)
            break;
        if (r != 0 || pz->requested == 0) {
            pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " died", pz->label, v->version);
            return;
        }
        pz->requested--;
        pz->fork_failed = got.error != 0;
        if (got.error != 0) {
            inv_sandbox_t *s = take_waiting(pz);
            char msg[400];
            snprintf(msg, sizeof msg,
                     "cannot start a sandbox: the %s version %" PRIu64 " could not fork: %s", pz->label,
                     v->version, tine_strerror(got.error));
            tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", v->app), "%s", msg);
            if (s)
                inv__sandbox_start_failed(s, TINE_ECRASH, 503, msg);
            continue;
        }
        inv_sandbox_t *s = take_waiting(pz);
        if (s) {
            inv__sandbox_attach_process(s, got.pid, got.fds);
        } else if (pz->nspares < spares_wanted(pz) && !pz->retired) {
            pz->spare[pz->nspares++] = (inv_blank_t){got.pid, got.fds};
        } else {
            sbx_fds_close(got.fds);
        }
    }
    pyz_request(pz);
}

/* ------------------------------------------------------------ importing */

/* One frame the zygote wrote while importing. Returns false when it failed
 * (pyz_fail was called). */
static bool import_frame(inv_pyzygote_t *pz, const sbx_frame_hdr_t *h, const char *payload)
{
    const reg_app_version_t *v = pz->version;
    json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
    bool ok = true;
    if (h->type == SBX_MSG_LOG && json_is_string(json_object_get(meta, "importing"))) {
        snprintf(pz->importing, sizeof pz->importing, "%s", json_string_value(json_object_get(meta, "importing")));
    } else if (h->type == SBX_MSG_LOG) {
        /* What the modules print while they are imported: tined's log. */
        tine_buf_t line;
        tine_buf_init(&line);
        inv__printable_cut(&line, payload + h->meta_len, h->len - h->meta_len, INV_TEXT_MAX);
        const char *level = json_string_value(json_object_get(meta, "level"));
        char version[24];
        snprintf(version, sizeof version, "%" PRIu64, v->version);
        tine_log_kv(level && strcmp(level, "error") == 0 ? TINE_LOG_ERROR : TINE_LOG_INFO,
                    TINE_LOG_KV("app", v->app, "version", version), "python import of %s: %s",
                    pz->importing[0] ? pz->importing : "the SDK", line.data ? line.data : "");
        tine_buf_dispose(&line);
    } else if (h->type == SBX_MSG_READY) {
        uv_timer_stop(&pz->timer);
        pz->state = PYZ_READY;
        pz->backoff_ms = 0;
        pz->importing[0] = '\0';
        json_t *failed = json_object_get(meta, "failed");
        char *list = json_array_size(failed) ? json_dumps(failed, JSON_COMPACT) : NULL;
        tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", v->app),
                    "the %s version %" PRIu64 " is ready in %.1f ms (%" JSON_INTEGER_FORMAT
                    " modules imported%s%s)",
                    pz->label, v->version, (double)(tine_now_ns() - pz->asked_ns) / 1e6,
                    json_integer_value(json_object_get(meta, "modules")), list ? "; failed: " : "", list ? list : "");
        free(list);
    } else if (h->type == SBX_MSG_ERROR) {
        const char *e = json_string_value(json_object_get(meta, "error"));
        pyz_fail(pz, TINE_ECRASH, 503, "%s (app %s version %" PRIu64 ")", e ? e : "the runtime failed to start", v->app,
                 v->version);
        ok = false;
    } else {
        pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " sent an unexpected frame (type %u)",
                 pz->label, v->version, h->type);
        ok = false;
    }
    json_decref(meta);
    return ok;
}

/* Handles the whole frames read so far; the bytes of a frame not whole yet
 * stay. Returns false when the zygote failed. */
static bool import_frames(inv_pyzygote_t *pz)
{
    const reg_app_version_t *v = pz->version;
    size_t off = 0;
    while (pz->state == PYZ_IMPORTING && pz->in.len - off >= sizeof(sbx_frame_hdr_t)) {
        sbx_frame_hdr_t h;
        memcpy(&h, pz->in.data + off, sizeof h);
        if (sbx_frame_check(&h, PYZ_MAX_IMPORT_FRAME) != 0) {
            pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " sent a malformed frame", pz->label,
                     v->version);
            return false;
        }
        if (pz->in.len - off < sizeof h + h.len)
            break;
        if (!import_frame(pz, &h, pz->in.data + off + sizeof h))
            return false;
        off += sizeof h + h.len;
    }
    memmove(pz->in.data, pz->in.data + off, pz->in.len - off);
    pz->in.len -= off;
    return true;
}

/* IMPORTING: reads what the zygote writes and handles its frames, up to
 * READY (nothing may follow it before tined asks for a sandbox). At most
 * one frame's bytes are held. */
static void read_imports(inv_pyzygote_t *pz)
{
    const reg_app_version_t *v = pz->version;
    while (pz->state == PYZ_IMPORTING) {
        size_t room = sizeof(sbx_frame_hdr_t) + PYZ_MAX_IMPORT_FRAME - pz->in.len;
        tine_buf_grow(&pz->in, room);
        ssize_t n = recv(pz->z.control_fd, pz->in.data + pz->in.len, room, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (pz->importing[0])
                pyz_fail(pz, TINE_ECRASH, 502,
                         "the %s version %" PRIu64 " died while importing %s (see the node's log)",
                         pz->label, v->version, pz->importing);
            else
                pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " died while starting",
                         pz->label, v->version);
            return;
        }
        pz->in.len += (size_t)n;
        if (!import_frames(pz))
            return;
    }
    if (pz->in.len > 0) {
        pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " wrote past READY", pz->label,
                 v->version);
        return;
    }
    tine_buf_dispose(&pz->in);
    pyz_request(pz);
}

/* The control socket is readable (or closed: the reads see its end). */
static void on_readable(uv_poll_t *h, int status, int events)
{
    inv_pyzygote_t *pz = h->data;
    if (pz->closing || pz->poll != h)
        return;
    if (pz->state == PYZ_IMPORTING)
        read_imports(pz);
    else if (pz->state == PYZ_READY)
        read_answers(pz);
    if (status < 0 && pz->poll == h && (pz->state == PYZ_IMPORTING || pz->state == PYZ_READY))
        pyz_fail(pz, TINE_ECRASH, 502, "the %s version %" PRIu64 " cannot be read: %s",
                 pz->label, pz->version->version, uv_strerror(status));
}

/* ------------------------------------------------------------ invoker.h */

bool inv__python_answer(inv_invoker_t *inv, uint64_t seq, sbx_spawned_t *got)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pyzygotes) {
        inv_pyzygote_t *pz = tine_list_entry(l, inv_pyzygote_t, link);
        if (pz->state != PYZ_ASKED || pz->seq != seq)
            continue;
        const reg_app_version_t *v = pz->version;
        if (got->error != 0) {
            pyz_fail(pz, TINE_ECRASH, 503,
                     "cannot start the %s version %" PRIu64 ": the zygote could not fork: %s", pz->label,
                     v->version, tine_strerror(got->error));
            return true;
        }
        if (got->fds.wr != got->fds.rd)
            close(got->fds.wr); /* one socket: never two descriptors */
        pz->z = (sbx_zygote_t){got->pid, got->fds.rd};
        int fl = fcntl(pz->z.control_fd, F_GETFL);
        uv_poll_t *poll = xmalloc(sizeof *poll);
        if (fl < 0 || fcntl(pz->z.control_fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            uv_poll_init(inv->loop, poll, pz->z.control_fd) != 0) {
            free(poll);
            pyz_fail(pz, TINE_ECRASH, 503, "cannot watch the %s version %" PRIu64, pz->label, v->version);
            return true;
        }
        poll->data = pz;
        pz->poll = poll;
        pz->handles++;
        pz->state = PYZ_IMPORTING;
        uv_poll_start(poll, UV_READABLE | UV_DISCONNECT, on_readable);
        pyz_maybe_free(pz); /* retired meanwhile, nothing needs it */
        return true;
    }
    return false;
}

void inv__python_zygote_lost(inv_invoker_t *inv)
{
    tine_list_t *l, *next;
    TINE_LIST_FOREACH_SAFE(l, next, &inv->pyzygotes) {
        inv_pyzygote_t *pz = tine_list_entry(l, inv_pyzygote_t, link);
        if (pz->state == PYZ_ASKED && !pz->closing)
            pyz_fail(pz, TINE_ECRASH, 503,
                     "cannot start the %s version %" PRIu64 ": the zygote is gone", pz->label,
                     pz->version->version);
    }
}

void inv__python_give(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    inv_pyzygote_t *pz = pyz_get(p->inv, p->version, sandbox_node(s), p->retired);
    pz->nsandboxes++;
    if (pz->state == PYZ_FAILED) {
        if (tine_now_ns() < pz->retry_at_ns) {
            inv__sandbox_start_failed(s, pz->fail_code, pz->fail_status, pz->error);
            return;
        }
        pyz_ask(pz);
        if (pz->state == PYZ_FAILED) {
            inv__sandbox_start_failed(s, pz->fail_code, pz->fail_status, pz->error);
            return;
        }
    }
    tine_list_insert_tail(&pz->waiting, &s->wait_link);
    pz->nwaiting++;
    pyz_give_spare(pz);
    pyz_request(pz);
}

void inv__python_undefer(inv_sandbox_t *s)
{
    inv_pyzygote_t *pz = pyz_find(s->pool->inv, s->pool->version, sandbox_node(s));
    s->defers_spare = false;
    if (pz == NULL || pz->spares_deferred == 0)
        return;
    pz->spares_deferred--;
    pyz_request(pz);
}

void inv__python_forget(inv_sandbox_t *s)
{
    inv_pyzygote_t *pz = pyz_find(s->pool->inv, s->pool->version, sandbox_node(s));
    if (pz == NULL)
        return;
    if (tine_list_linked(&s->wait_link)) {
        tine_list_remove(&s->wait_link);
        pz->nwaiting--;
    }
    pz->nsandboxes--;
    pyz_maybe_free(pz);
}

void inv__python_version_live(inv_invoker_t *inv, const reg_app_version_t *v)
{
    for (int node = 0; node < 2; node++)
        if (!inv->closing && version_has(v, node))
            pyz_get(inv, v, node, false);
}

void inv__python_version_retired(inv_invoker_t *inv, const reg_app_version_t *v)
{
    for (int node = 0; node < 2; node++) {
        inv_pyzygote_t *pz = pyz_find(inv, v, node);
        if (pz == NULL)
            continue;
        pz->retired = true;
        drop_spare(pz);
        pyz_maybe_free(pz);
    }
}

void inv__python_stop(inv_invoker_t *inv)
{
    tine_list_t *l, *next;
    TINE_LIST_FOREACH_SAFE(l, next, &inv->pyzygotes) {
        inv_pyzygote_t *pz = tine_list_entry(l, inv_pyzygote_t, link);
        if (pz->closing)
            continue;
        drop_spare(pz);
        pyz_maybe_free(pz); /* the others once their sandboxes closed */
    }
}
