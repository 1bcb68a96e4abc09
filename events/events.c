/* The events module's lifecycle, its Redis connections (redis/: async,
 * reconnecting by themselves), the table of live apps it follows, and
 * appends to the events stream (CloudEvents posted to the node, tine.emit,
 * the module's own sources). */
#include "events_internal.h"
#include "tine_common.h"
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- arguments */

void ev__args_add(ev__args_t *a, const char *s, size_t len)
{
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = xrealloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
        a->lens = xrealloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
    }
    char *copy = xmalloc(len + 1); /* may hold NUL bytes */
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->lens[a->argc] = len;
    a->argc++;
}

void ev__args_adds(ev__args_t *a, const char *s)
{
    ev__args_add(a, s, strlen(s));
}

void ev__args_addf(ev__args_t *a, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof small) {
        ev__args_add(a, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ev__args_add(a, big, (size_t)n);
    free(big);
}

void ev__args_dispose(ev__args_t *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof(*a));
}

void ev__args_xadd(ev__args_t *a, const char *app, const char *event_json, const char *target_json)
{
    ev__args_adds(a, "XADD");
    ev__args_adds(a, RDS_KEY_EVENTS);
    ev__args_adds(a, "*");
    ev__args_adds(a, "app");
    ev__args_adds(a, app ? app : "");
    ev__args_adds(a, "event");
    ev__args_adds(a, event_json);
    if (target_json) {
        ev__args_adds(a, "target");
        ev__args_adds(a, target_json);
    }
}

const char *ev__entry_field(redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING && strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1]->str;
    return NULL;
}

/* ----------------------------------------------------------- connections */

int ev__send(rds_async_t *c, rds_reply_fn cb, void *priv, ev__args_t *a)
{
    int rc = rds_async_command(c, cb, priv, a->argc, (const char **)a->argv, a->lens) == 0 ? 0 : TINE_EREDIS;
    ev__args_dispose(a);
    return rc;
}

/* ------------------------------------------------------------- handles */

/* One of the module's handles or connections closed; the last frees it. */
static void module_release(ev_events_t *ev)
{
    if (--ev->handles_open == 0) {
        free(ev->node_id);
        free(ev->version);
        free(ev->leave_error);
        for (size_t i = 0; i < ev->nlog_dirs; i++)
            free(ev->log_dirs[i]);
        free(ev->log_dirs);
        free(ev);
    }
}

/* One of the module's handles closed: a release of the module. */
static void on_handle_closed(uv_handle_t *h)
{
    module_release(h->data);
}

/* One of the module's Redis connections closed: a release of the module. */
static void on_conn_closed(void *data)
{
    module_release(data);
}

void ev__timer_init(ev_events_t *ev, uv_timer_t *t)
{
    uv_timer_init(ev->loop, t);
    t->data = ev;
    ev->handles_open++;
}

void ev__handle_close(ev_events_t *ev, uv_handle_t *h)
{
    h->data = ev;
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* ---------------------------------------------------------------- events */

json_t *ev__make_event(const char *id, const char *type, const char *source, const char *subject, uint64_t time_ms,
                       json_t *data)
{
    char when[40];
    tine_fmt_rfc3339_ms(time_ms, when);
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "source", source, "type",
                          type, "time", when, "datacontenttype", "application/json");
    if (subject)
        json_object_set_new(e, "subject", json_string(subject));
    json_object_set_new(e, "data", data ? data : json_null());
    return e;
}

json_t *ev__target(const char *app, const char *function, const char *trigger, uint32_t attempt, uint32_t attempts)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:i}", "app", app, "function", function, "trigger", trigger, "attempt",
                     (int)attempt, "attempts", (int)attempts);
}

/* Appends to the stream once per dedupe key: the key is set (NX, with a
 * TTL) and the entry added in one script, so two nodes seeing the same
 * happening add it once. KEYS: dedupe key, stream; ARGV: ttl, then the
 * entry's field/value pairs. */
static const char append_once_lua[] =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then "
    "  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2)) "
    "end "
    "return false";

int ev__append_one(ev_events_t *ev, const char *app, json_t *event, json_t *target, const char *dedupe_key,
                   unsigned ttl_s, rds_reply_fn cb, void *priv)
{
    char *text = json_dumps(event, JSON_COMPACT);
    char *ttext = target ? json_dumps(target, JSON_COMPACT) : NULL;
    ev__args_t a = {0};
    if (dedupe_key) {
        ev__args_adds(&a, "EVAL");
        ev__args_adds(&a, append_once_lua);
        ev__args_adds(&a, "2");
        ev__args_adds(&a, dedupe_key);
        ev__args_adds(&a, RDS_KEY_EVENTS);
        ev__args_addf(&a, "%u", ttl_s);
        ev__args_adds(&a, "app");
        ev__args_adds(&a, app ? app : "");
        ev__args_adds(&a, "event");
        ev__args_adds(&a, text);
        if (ttext) {
            ev__args_adds(&a, "target");
            ev__args_adds(&a, ttext);
        }
    } else {
        ev__args_xadd(&a, app, text, ttext);
    }
    free(text);
    free(ttext);
    return ev__send(ev->cmd, cb, priv, &a);
}

/* ------------------------------------------------------- confirmed appends */

/* An append is acknowledged (a 202, tine.emit's answer) only once Redis
 * stored it and, when the master has a replica, the replica confirmed it
 * (rds_async_wait_replicas: one WAIT for every append out at that moment).
 * Two answers make one outcome; the first failure is what is reported. */
typedef struct {
    int left;    /* answers still due: the write's, the barrier's */
    char *error; /* the first failure */
} ev__outcome_t;

/* Notes a failure; the first one is what is reported. */
static void outcome_fail(ev__outcome_t *o, const char *why)
{
    if (o->error == NULL)
        o->error = xstrdup(why ? why : "failed");
}

/* Notes the reply to the write: a failure when it is NULL (the connection
 * was lost first) or an error. */
static void outcome_reply(ev__outcome_t *o, const redisReply *r)
{
    if (r == NULL)
        outcome_fail(o, "redis connection lost before the event was stored");
    else if (r->type == REDIS_REPLY_ERROR)
        outcome_fail(o, r->str);
}

/* Counts one answer in; true when it was the last. */
static bool outcome_settled(ev__outcome_t *o)
{
    return --o->left == 0;
}

/* After the write just sent on ev->cmd: asks for the barrier, counted in o
 * (settled with a failure when it cannot be asked). */
static void outcome_confirm(ev_events_t *ev, ev__outcome_t *o, rds_done_fn fn, void *priv)
{
    o->left = 2;
    if (rds_async_wait_replicas(ev->cmd, fn, priv) != 0) {
        o->left = 1;
        outcome_fail(o, "the redis connection was lost before the write was confirmed");
    }
}

struct ev_append {
    ev_events_t *ev;
    ev_append_cb cb;
    void *data;
    size_t n;
    ev__outcome_t out;
    json_t *ids;
};

/* Both answers of an append are in: calls back with the stream ids of the
 * events, or TINE_EREDIS and the first failure; frees the append. */
static void append_settle(ev_append_t *a)
{
    if (!outcome_settled(&a->out))
        return;
    if (a->cb)
        a->cb(a->data, a->out.error ? TINE_EREDIS : 0, a->out.error, a->out.error ? NULL : a->ids);
    json_decref(a->ids);
    free(a->out.error);
    free(a);
}

/* The reply of an append: the stream ids of the events, or why it failed. */
static void on_appended(void *priv, redisReply *reply)
{
    ev_append_t *a = priv;
    redisReply *r = reply;
    json_t *ids = NULL;
    const char *error = NULL;
    if (r == NULL) {
        error = "redis connection lost before the events were stored";
    } else if (r->type == REDIS_REPLY_ERROR) {
        error = r->str;
    } else if (r->type == REDIS_REPLY_STRING && a->n == 1) {
        ids = json_pack("[s]", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == a->n) {
        ids = json_array();
        for (size_t i = 0; i < r->elements && ids; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING) {
                json_decref(ids);
                ids = NULL;
                error = r->element[i]->type == REDIS_REPLY_ERROR ? r->element[i]->str : "unexpected reply";
            } else {
                json_array_append_new(ids, json_string(r->element[i]->str));
            }
        }
    } else {
        error = "the transaction was aborted";
    }
    if (ids == NULL)
        outcome_fail(&a->out, error);
    a->ids = ids;
    append_settle(a);
}

/* The barrier's answer for an append. */
static void on_append_confirmed(void *priv, int rc, const char *why)
{
    ev_append_t *a = priv;
    if (rc != 0)
        outcome_fail(&a->out, why);
    append_settle(a);
}

int ev_append(ev_events_t *ev, const char *app, json_t *events, ev_append_cb cb, void *data, ev_append_t **out)
{
    size_t n = json_array_size(events);
    if (n == 0)
        return TINE_EINVAL;
    if (ev->closing || !rds_async_connected(ev->cmd))
        return TINE_EREDIS;
    ev_append_t *a = xcalloc(1, sizeof(*a));
    a->ev = ev;
    a->cb = cb;
    a->data = data;
    a->n = n;
    ev__args_t args = {0};
    if (n > 1) {
        ev__args_adds(&args, "MULTI");
        if (ev__send(ev->cmd, NULL, NULL, &args) != 0) {
            free(a);
            return TINE_EREDIS;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *text = json_dumps(json_array_get(events, i), JSON_COMPACT);
        ev__args_xadd(&args, app, text, NULL);
        free(text);
        ev__send(ev->cmd, n == 1 ? on_appended : NULL, n == 1 ? a : NULL, &args);
    }
    if (n > 1) {
        ev__args_adds(&args, "EXEC");
        ev__send(ev->cmd, on_appended, a, &args);
    }
    outcome_confirm(ev, &a->out, on_append_confirmed, a);
    if (out)
        *out = a;
    return 0;
}

void ev_append_cancel(ev_append_t *a)
{
    a->cb = NULL;
}

const char *ev_redis_error(ev_events_t *ev)
{
    return ev && ev->cmd ? rds_async_error(ev->cmd) : "events are stopping";
}

/* tine.emit: one append whose answer is the event's id. */
typedef struct {
    inv_emit_done_cb done;
    void *data;
    char id[64];
    ev__outcome_t out;
} emit_t;

/* Both answers of a tine.emit are in: calls back with the event's id or
 * TINE_EREDIS and the first failure; frees the emit. */
static void emit_settle(emit_t *em)
{
    if (!outcome_settled(&em->out))
        return;
    if (em->out.error)
        em->done(em->data, TINE_EREDIS, em->out.error, NULL);
    else
        em->done(em->data, 0, NULL, em->id);
    free(em->out.error);
    free(em);
}

/* The reply of a tine.emit's XADD. */
static void on_emitted(void *priv, redisReply *r)
{
    emit_t *em = priv;
    outcome_reply(&em->out, r);
    emit_settle(em);
}

/* The barrier's answer for a tine.emit. */
static void on_emit_confirmed(void *priv, int rc, const char *why)
{
    emit_t *em = priv;
    if (rc != 0)
        outcome_fail(&em->out, why);
    emit_settle(em);
}

int ev_emit(ev_events_t *ev, const inv_emit_t *e, inv_emit_done_cb done, void *data)
{
    if (ev == NULL || ev->closing || !rds_async_connected(ev->cmd))
        return TINE_EREDIS;
    emit_t *em = xcalloc(1, sizeof(*em));
    em->done = done;
    em->data = data;
    snprintf(em->id, sizeof em->id, "%s-%" PRIu64, ev->emit_prefix, ++ev->emitted);
    char when[32];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), when);
    char *source = xasprintf("tine://%s/%s", e->app, e->function);
    json_t *event = json_pack("{s:s, s:s, s:s, s:s%, s:s, s:s}", "specversion", "1.0", "id", em->id, "source", source,
                              "type", e->type, e->type_len, "time", when, "tineinvocation", e->invocation_id);
    free(source);
    if (e->trace_id != NULL && tine_trace_hex_ok(e->trace_id, TINE_TRACE_ID_LEN)) {
        /* CloudEvents' distributed tracing extension: the emitting call is
         * the parent of the calls the event triggers (dispatch.c). */
        char tp[TINE_TRACEPARENT_LEN + 1];
        tine_traceparent_format(e->trace_id, e->invocation_id, tp);
        json_object_set_new(event, "traceparent", json_string(tp));
    }
    /* From a previewed version: the event stays in it (dispatch.c runs the
     * triggers of that version only), and live is untouched. */
    const reg_app_version_t *live = ev__app(ev, e->app);
    if (e->version != 0 && (live == NULL || live->version != e->version)) {
        char pin[300];
        snprintf(pin, sizeof pin, "%s@%" PRIu64, e->app, e->version);
        json_object_set_new(event, EV_PIN_ATTRIBUTE, json_string(pin));
    }
    if (e->data != NULL) {
        json_object_set_new(event, "datacontenttype", json_string("application/json"));
        json_object_set(event, "data", e->data);
    }
    char *text = json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(event);
    ev__args_t a = {0};
    ev__args_xadd(&a, e->app, text, NULL);
    free(text);
    int rc = ev__send(ev->cmd, on_emitted, em, &a);
    if (rc != 0) {
        free(em);
        return rc;
    }
    outcome_confirm(ev, &em->out, on_emit_confirmed, em);
    return 0;
}

/* ---------------------------------------------------------- sure appends */

#define SURE_RETRY_MS 500
#define SURE_MAX_AGE_MS (10 * 60 * 1000) /* then it is given up, said in the log */
#define SURE_MAX 10000                   /* held at most; past it the oldest is given up */

/* An append the node's own sources make (schedule ticks, container
 * events) that nobody would make again: held until Redis stored it once
 * under its dedupe key and a replica confirmed it, and tried again every
 * SURE_RETRY_MS until then (the dedupe key makes a repeat of a write that
 * did land a no-op). */
struct ev__sure {
    ev__sure_t *next;
    ev_events_t *ev;
    char *app;
    json_t *event, *target;
    char *dedupe_key;
    unsigned ttl_s;
    char *what;
    uint64_t since_ms, next_ms;
    bool busy;   /* an attempt is out */
    bool gone;   /* given up or the module is closing: freed when the attempt ends */
    bool failed; /* an attempt failed (said once) */
    ev__outcome_t out;
};

static void sure_free(ev__sure_t *p)
{
    free(p->app);
    json_decref(p->event);
    json_decref(p->target);
    free(p->dedupe_key);
    free(p->what);
    free(p->out.error);
    free(p);
}

/* Takes p off the module's list. */
static void sure_unlink(ev__sure_t *p)
{
    ev_events_t *ev = p->ev;
    for (ev__sure_t **q = &ev->sure; *q; q = &(*q)->next) {
        if (*q == p) {
            *q = p->next;
            ev->nsure--;
            return;
        }
    }
}

/* Both answers of an attempt are in: stored and confirmed, p is done and
 * freed; else it is tried again in SURE_RETRY_MS (the first failure said).
 * One given up meanwhile is freed. */
static void sure_settle(ev__sure_t *p)
{
    if (!outcome_settled(&p->out))
        return;
    p->busy = false;
    if (p->gone) {
        sure_free(p);
        return;
    }
    if (p->out.error == NULL) {
        if (p->failed)
            tine_log(TINE_LOG_INFO, "events: %s stored after %" PRIu64 " ms", p->what,
                     tine_now_unix_ms() - p->since_ms);
        sure_unlink(p);
        sure_free(p);
        return;
    }
    if (!p->failed)
        tine_log(TINE_LOG_WARN, "events: %s not stored yet: %s; retrying", p->what, p->out.error);
    p->failed = true;
    free(p->out.error);
    p->out.error = NULL;
    p->next_ms = tine_now_unix_ms() + SURE_RETRY_MS;
}

/* The reply of an attempt's append. */
static void on_sure_stored(void *priv, redisReply *r)
{
    ev__sure_t *p = priv;
    /* nil: the dedupe key was there (stored before, maybe by another node). */
    outcome_reply(&p->out, r);
    sure_settle(p);
}

/* The barrier's answer for an attempt. */
static void on_sure_confirmed(void *priv, int rc, const char *why)
{
    ev__sure_t *p = priv;
    if (rc != 0)
        outcome_fail(&p->out, why);
    sure_settle(p);
}

/* One attempt, when the connection is up. */
static void sure_try(ev__sure_t *p)
{
    ev_events_t *ev = p->ev;
    if (p->busy || ev->closing || !rds_async_connected(ev->cmd))
        return;
    if (ev__append_one(ev, p->app, p->event, p->target, p->dedupe_key, p->ttl_s, on_sure_stored, p) != 0)
        return;
    p->busy = true;
    outcome_confirm(ev, &p->out, on_sure_confirmed, p);
}

void ev__append_sure(ev_events_t *ev, const char *app, json_t *event, json_t *target, const char *dedupe_key,
                     unsigned ttl_s, const char *what)
{
    if (ev->nsure >= SURE_MAX) {
        ev__sure_t **q = &ev->sure;
        while ((*q)->next)
            q = &(*q)->next;
        ev__sure_t *oldest = *q;
        tine_log(TINE_LOG_ERROR, "events: %s lost: over %d appends wait for redis", oldest->what, SURE_MAX);
        sure_unlink(oldest);
        if (oldest->busy)
            oldest->gone = true;
        else
            sure_free(oldest);
    }
    ev__sure_t *p = xcalloc(1, sizeof(*p));
    p->ev = ev;
    p->app = xstrdup(app ? app : "");
    p->event = json_incref(event);
    p->target = target ? json_incref(target) : NULL;
    p->dedupe_key = xstrdup(dedupe_key);
    p->ttl_s = ttl_s;
    p->what = xstrdup(what);
    p->since_ms = p->next_ms = tine_now_unix_ms();
    p->next = ev->sure;
    ev->sure = p;
    ev->nsure++;
    sure_try(p);
    if (!p->busy && !p->failed) {
        /* The connection says once that redis is away; not every tick. */
        tine_log(TINE_LOG_DEBUG, "events: %s not stored yet: redis is unreachable; retrying", p->what);
        p->failed = true;
    }
}

/* Every tick: the appends due are tried again; those too old given up. */
static void sure_tick(ev_events_t *ev)
{
    uint64_t now = tine_now_unix_ms();
    for (ev__sure_t *p = ev->sure, *next; p; p = next) {
        next = p->next;
        if (p->busy)
            continue;
        if (now - p->since_ms > SURE_MAX_AGE_MS) {
            tine_log(TINE_LOG_ERROR, "events: %s lost: redis did not take it for %d minutes", p->what,
                     SURE_MAX_AGE_MS / 60000);
            sure_unlink(p);
            sure_free(p);
        } else if (p->next_ms <= now) {
            p->next_ms = now + SURE_RETRY_MS;
            sure_try(p);
        }
    }
}

/* The module stops: what still waits is lost with this node (said). */
static void sure_stop(ev_events_t *ev)
{
    if (ev->nsure)
        tine_log(TINE_LOG_WARN, "events: stopping with %zu appends not stored (schedule ticks, container events)",
                 ev->nsure);
    while (ev->sure) {
        ev__sure_t *p = ev->sure;
        ev->sure = p->next;
        if (p->busy)
            p->gone = true; /* freed when its attempt ends (inside the close of the connection) */
        else
            sure_free(p);
    }
    ev->nsure = 0;
}

/* ------------------------------------------------------------- app table */

reg_app_version_t *ev__app(ev_events_t *ev, const char *app)
{
    return reg_app_map_get(&ev->apps, app, strlen(app));
}

void ev_app_changed(ev_events_t *ev, const reg_app_version_t *old_v, const reg_app_version_t *new_v)
{
    if (ev == NULL || ev->closing)
        return;
    const char *name = new_v ? new_v->app : old_v ? old_v->app : NULL;
    if (name == NULL)
        return;
    reg_app_version_t *prev;
    if (new_v) {
        /* The live table hands versions out const; the module keeps its own
         * reference, which is what retain is for. */
        reg_app_version_t *v = (reg_app_version_t *)new_v;
        reg_app_version_retain(v);
        prev = reg_app_map_put(&ev->apps, v);
    } else {
        prev = reg_app_map_take(&ev->apps, name, strlen(name));
        if (prev == NULL)
            return;
    }
    ev__schedule_app(ev, name, new_v);
    ev__logtail_app(ev, name, new_v);
    reg_app_version_release(prev);
}

/* ------------------------------------------------------------- lifecycle */

/* Splits the colon-separated allowed log directories and resolves each. */
static int load_log_dirs(ev_events_t *ev, const char *paths, char *err, size_t errlen)
{
    if (paths == NULL || *paths == '\0')
        return 0;
    char *copy = xstrdup(paths);
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        if (*p != '/') {
            snprintf(err, errlen, "--log-paths: '%s' is not an absolute directory", p);
            free(copy);
            return TINE_EINVAL;
        }
        char resolved[PATH_MAX];
        if (realpath(p, resolved) == NULL) {
            /* A directory that does not exist yet can hold no file: keep the
             * name as given (normalised later when it appears). */
            tine_log(TINE_LOG_WARN, "--log-paths: %s: %s (allowed anyway)", p, strerror(errno));
            snprintf(resolved, sizeof resolved, "%s", p);
        }
        size_t n = strlen(resolved);
        while (n > 1 && resolved[n - 1] == '/')
            resolved[--n] = '\0';
        ev->log_dirs = xrealloc(ev->log_dirs, (ev->nlog_dirs + 1) * sizeof(*ev->log_dirs));
        ev->log_dirs[ev->nlog_dirs++] = xstrdup(resolved);
    }
    free(copy);
    return 0;
}

/* Reading waits for the command connection (what is read must be
 * acknowledged on it). The heartbeat goes at once: after an outage the
 * others judge it a heartbeat's TTL later. */
static void on_cmd_up(void *data)
{
    ev_events_t *ev = data;
    ev__nodes_beat(ev);
    ev__dispatch_tick(ev, false);
}

/* The reading connection is (back) up: re-read this node's pending entries. */
static void on_blk_up(void *data)
{
    ev__dispatch_on_up(data);
}

/* The 100 ms tick: due retries every tick, entries of lost nodes every 20th. */
static void on_tick(uv_timer_t *t)
{
    ev_events_t *ev = t->data;
    ev->ticks++;
    sure_tick(ev);
    /* Retries every tick (100 ms); dead nodes' entries every second. */
    ev__dispatch_tick(ev, ev->ticks % 10 == 0);
}

ev_events_t *ev_new(uv_loop_t *loop, const ev_config_t *cfg, inv_invoker_t *inv, char *err, size_t errlen)
{
    if (cfg->redis_url == NULL || cfg->node_id == NULL) {
        snprintf(err, errlen, "events: a Redis URL and a node id are needed");
        return NULL;
    }
    ev_events_t *ev = xcalloc(1, sizeof(*ev));
    ev->loop = loop;
    ev->inv = inv;
    reg_app_map_init(&ev->apps);
    ev->node_id = xstrdup(cfg->node_id);
    ev->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 200;
    ev->started_ms = tine_now_unix_ms();
    ev->version = xstrdup(cfg->version ? cfg->version : "");
    ev->drain_grace_ms = cfg->drain_grace_ms;
    ev->drain_timeout_ms = cfg->drain_timeout_ms;
    ev->node_status = cfg->node_status;
    ev->on_drain_request = cfg->on_drain_request;
    ev->node_data = cfg->node_data;
    ev->select_version = cfg->select_version;
    ev->event_split = cfg->event_split;
    rds_async_config_t cmd = {.name = "events-command", .on_connected = on_cmd_up, .data = ev};
    /* Its XREADGROUP blocks up to 5 s: a reply may take that long. */
    rds_async_config_t blk = {
        .name = "events-dispatch", .on_connected = on_blk_up, .data = ev, .reply_timeout_ms = 10000};
    if (load_log_dirs(ev, cfg->log_paths, err, errlen) != 0 ||
        (ev->sync = rds_sync_new(cfg->redis_url, 2000, err, errlen)) == NULL ||
        rds_async_new(loop, cfg->redis_url, &cmd, &ev->cmd, err, errlen) != 0 ||
        rds_async_new(loop, cfg->redis_url, &blk, &ev->blk, err, errlen) != 0) {
        rds_async_close(ev->cmd, false, NULL, NULL);
        rds_sync_free(ev->sync);
        for (size_t i = 0; i < ev->nlog_dirs; i++)
            free(ev->log_dirs[i]);
        free(ev->log_dirs);
        free(ev->node_id);
        free(ev->version);
        free(ev);
        return NULL;
    }
    ev->handles_open += 2; /* the connections: on_conn_closed */
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = tine_now_ns() ^ (uint64_t)getpid();
    snprintf(ev->emit_prefix, sizeof ev->emit_prefix, "%016" PRIx64, r);
    ev__timer_init(ev, &ev->tick_timer);
    uv_timer_start(&ev->tick_timer, on_tick, 100, 100);
    ev__schedule_init(ev);
    ev__logtail_init(ev);
    ev__nodes_init(ev);
    if (cfg->docker_events && cfg->docker_socket)
        ev->docker = ev__docker_start(ev, cfg->docker_socket);
    return ev;
}

/* -------------------------------------------------------------- drain */

void ev_drain(ev_events_t *ev)
{
    if (ev == NULL || ev->draining)
        return;
    ev->draining = true;
    ev__nodes_beat(ev);
}

uint64_t ev_taken_over(const ev_events_t *ev)
{
    return ev ? ev->taken_over : 0;
}

size_t ev_busy(const ev_events_t *ev)
{
    return ev ? ev->inflight : 0;
}

static void leave_done(ev_events_t *ev, int rc)
{
    ev_left_cb cb = ev->left_cb;
    ev->left_cb = NULL;
    if (cb)
        cb(ev->left_data, rc, ev->handed_back > 0 ? (size_t)ev->handed_back : 0, ev->leave_error);
}

/* Records what went wrong in a step of the leave. */
static void leave_failed(ev_events_t *ev, const char *step, redisReply *r)
{
    free(ev->leave_error);
    ev->leave_error = xasprintf("%s: %s", step,
                                r == NULL                      ? "the redis connection was lost"
                                : r->type == REDIS_REPLY_ERROR ? r->str
                                                               : "unexpected reply");
}

static void on_left(void *priv, redisReply *r)
{
    ev_events_t *ev = priv;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        leave_failed(ev, "deregistering", r);
    leave_done(ev, ev->leave_error ? TINE_EREDIS : 0);
}

static void on_handed_back(void *priv, redisReply *r)
{
    ev_events_t *ev = priv;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        ev->handed_back = r->integer;
    } else {
        ev->handed_back = -1;
        leave_failed(ev, "handing back the pending entries", r);
    }
    if (ev->closing || ev__nodes_leave(ev, on_left, ev) != 0) {
        if (ev->leave_error == NULL)
            leave_failed(ev, "deregistering", NULL);
        leave_done(ev, TINE_EREDIS);
    }
}

int ev_leave(ev_events_t *ev, ev_left_cb cb, void *data)
{
    if (ev == NULL || ev->closing || ev->left_cb || !rds_async_connected(ev->cmd))
        return TINE_EREDIS;
    ev->draining = true;
    /* A read still blocked on the stream would deliver entries to this node
     * after it handed its own back: its connection goes first. */
    rds_async_close(ev->blk, false, on_conn_closed, ev);
    ev->blk = NULL;
    ev__dispatch_stop(ev);
    ev->left_cb = cb;
    ev->left_data = data;
    if (ev__dispatch_hand_back(ev, on_handed_back, ev) != 0) {
        ev->left_cb = NULL;
        return TINE_EREDIS;
    }
    return 0;
}

void ev_free(ev_events_t *ev)
{
    if (ev == NULL)
        return;
    ev->closing = true;
    ev__docker_stop(ev->docker);
    ev->docker = NULL;
    ev__dispatch_stop(ev);
    ev__schedule_stop(ev);
    ev__logtail_stop(ev);
    ev__nodes_stop(ev);
    sure_stop(ev);
    uv_timer_stop(&ev->tick_timer);
    ev__handle_close(ev, (uv_handle_t *)&ev->tick_timer);
    /* Commands in flight get their NULL reply in here (ev is still there). */
    rds_async_close(ev->cmd, false, on_conn_closed, ev);
    rds_async_close(ev->blk, false, on_conn_closed, ev);
    ev->cmd = ev->blk = NULL;
    rds_sync_free(ev->sync);
    ev->sync = NULL;
    reg_app_map_dispose(&ev->apps);
    /* ev itself is freed when its last handle has closed. */
}
