/* The dispatcher: a consumer in the group "tine" of the stream tine:events
 * (consumer name = node id). Each entry is handed to every matching trigger's
 * function; the entry is acknowledged (and deleted) only once all of them
 * finished, in one MULTI/EXEC that also schedules the retries of those that
 * failed (sorted set tine:retry, due time as score) or moves them to their
 * app's dead-letter stream after the last attempt. A node that restarts
 * re-reads its own pending entries first; entries of nodes whose heartbeat
 * expired are claimed by the survivors, and a node that drains hands its
 * own back before it leaves. Delivery is at-least-once. */
#include "events_internal.h"
#include "tine_common.h"
#include "trace.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ev__entry_t *entry;
    reg_app_version_t *v; /* retained; NULL when the target is gone */
    size_t fn_index;
    char *app;      /* the app of the function */
    char *function;
    const char *trigger; /* "event", "log" or "schedule" */
    uint32_t attempt;    /* 1 for the first delivery */
    uint32_t attempts;   /* the most deliveries */
    inv_call_t *call;
    bool running;
    bool ok;
    bool busy;              /* never ran (no capacity, or over a quota): retried without counting */
    uint64_t not_before_ms; /* over a quota: its Retry-After, the least delay of the retry */
    bool permanent; /* cannot succeed: straight to the dead letters */
    char *reason;
    char *invocation; /* its call's invocation id (recent.c) */
} job_t;

struct ev__entry {
    ev_events_t *ev;
    ev__entry_t *next;
    char *id;
    char *app; /* producer ("" for outside tools) */
    char *event_text;
    json_t *event;
    job_t *jobs;
    size_t njobs;
    size_t running; /* jobs not finished, plus one while they are started */
    bool committing;
};

static void dispatch_read(ev_events_t *ev);
static void ensure_group(ev_events_t *ev);

static void entry_free(ev__entry_t *e)
{
    for (size_t i = 0; i < e->njobs; i++) {
        reg_app_version_release(e->jobs[i].v);
        free(e->jobs[i].app);
        free(e->jobs[i].function);
        free(e->jobs[i].reason);
        free(e->jobs[i].invocation);
    }
    free(e->jobs);
    free(e->id);
    free(e->app);
    free(e->event_text);
    json_decref(e->event);
    free(e);
}

/* Takes an entry off the in-flight list and frees it. */
static void entry_done(ev__entry_t *e)
{
    ev_events_t *ev = e->ev;
    for (ev__entry_t **p = &ev->entries; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    ev->inflight--;
    entry_free(e);
    if (!ev->closing)
        dispatch_read(ev);
}

/* An entry's acknowledgement (and retry or dead letter) is written; when it
 * is not, the entry stays pending and is read again. */
static void on_committed(void *priv, redisReply *reply)
{
    ev__entry_t *e = priv;
    redisReply *r = reply;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        /* Not acknowledged: the entry is still pending and is read again. */
        if (!e->ev->closing)
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("entry", e->id),
                        "events: cannot acknowledge entry %s (%s); it will be delivered again", e->id,
                        r && r->type == REDIS_REPLY_ERROR ? r->str : "redis connection lost");
        e->ev->rescan = true;
    }
    entry_done(e);
}

/* The retry member of a failed job: the event, who it is for and which
 * attempt comes next. Unique per entry and job. */
static char *retry_member(ev__entry_t *e, size_t j, uint32_t next_attempt)
{
    job_t *job = &e->jobs[j];
    json_t *m = json_pack("{s:s, s:s, s:o, s:s, s:s}", "app", e->app, "event", e->event_text, "target",
                          ev__target(job->app, job->function, job->trigger, next_attempt, job->attempts), "reason",
                          job->reason ? job->reason : "", "nonce", "");
    char *nonce = xasprintf("%s/%zu", e->id, j);
    json_object_set_new(m, "nonce", json_string(nonce));
    free(nonce);
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

/* Acknowledges an entry whose jobs all finished, together with the retries
 * and dead letters of those that failed, in one transaction. */
static void entry_commit(ev__entry_t *e)
{
    ev_events_t *ev = e->ev;
    e->committing = true;
    if (ev->closing) {
        entry_done(e);
        return;
    }
    uint64_t now = tine_now_unix_ms();
    ev__args_t a = {0};
    ev__args_adds(&a, "MULTI");
    int rc = ev__send(ev->cmd, NULL, NULL, &a);
    for (size_t j = 0; j < e->njobs && rc == 0; j++) {
        job_t *job = &e->jobs[j];
        bool retry = !job->ok && (job->busy || (!job->permanent && job->attempt < job->attempts));
        rc = ev__recent_send(ev, &(ev__recent_t){job->app, job->function, job->trigger, e->id, e->event,
                                                 job->ok ? "ok" : retry ? "retry" : "dead", job->attempt,
                                                 job->invocation, job->reason});
        if (job->ok || rc != 0)
            continue;
        if (job->busy || (!job->permanent && job->attempt < job->attempts)) {
            uint32_t next = job->busy ? job->attempt : job->attempt + 1;
            unsigned shift = job->busy ? 0 : job->attempt - 1;
            uint64_t delay = (uint64_t)ev->retry_base_ms << (shift > 16 ? 16 : shift);
            if (delay < job->not_before_ms)
                delay = job->not_before_ms;
            char *member = retry_member(e, j, next);
            ev__args_adds(&a, "ZADD");
            ev__args_adds(&a, RDS_KEY_RETRY);
            ev__args_addf(&a, "%" PRIu64, now + delay);
            ev__args_adds(&a, member);
            free(member);
            if (!job->busy)
                tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", job->app, "function", job->function, "entry", e->id),
                            "events: %s.%s failed on event %s (attempt %u of %u): %s; retrying in %" PRIu64 " ms",
                            job->app, job->function, e->id, job->attempt, job->attempts, job->reason, delay);
        } else {
            ev__args_adds(&a, "XADD");
            ev__args_addf(&a, RDS_KEY_DLQ_PREFIX "%s", job->app);
            ev__args_adds(&a, "MAXLEN");
            ev__args_adds(&a, "~");
            ev__args_addf(&a, "%d", EV_DLQ_MAXLEN);
            ev__args_adds(&a, "*");
            ev__args_adds(&a, "event");
            ev__args_adds(&a, e->event_text);
            ev__args_adds(&a, "function");
            ev__args_adds(&a, job->function);
            ev__args_adds(&a, "trigger");
            ev__args_adds(&a, job->trigger);
            ev__args_adds(&a, "attempts");
            ev__args_addf(&a, "%u", job->attempt);
            ev__args_adds(&a, "reason");
            ev__args_adds(&a, job->reason ? job->reason : "failed");
            ev__args_adds(&a, "failed_at");
            ev__args_addf(&a, "%" PRIu64, now);
            ev__args_adds(&a, "app");
            ev__args_adds(&a, e->app);
            tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", job->app, "function", job->function, "entry", e->id),
                        "events: %s.%s failed on event %s after %u attempt%s: %s; moved to %s%s", job->app,
                        job->function, e->id, job->attempt, job->attempt == 1 ? "" : "s", job->reason,
                        RDS_KEY_DLQ_PREFIX, job->app);
        }
        rc = ev__send(ev->cmd, NULL, NULL, &a);
    }
    if (rc == 0) {
        ev__args_adds(&a, "XACK");
        ev__args_adds(&a, RDS_KEY_EVENTS);
        ev__args_adds(&a, RDS_EVENTS_GROUP);
        ev__args_adds(&a, e->id);
        rc = ev__send(ev->cmd, NULL, NULL, &a);
    }
    if (rc == 0) {
        ev__args_adds(&a, "XDEL");
        ev__args_adds(&a, RDS_KEY_EVENTS);
        ev__args_adds(&a, e->id);
        rc = ev__send(ev->cmd, NULL, NULL, &a);
    }
    if (rc == 0) {
        ev__args_adds(&a, "EXEC");
        rc = ev__send(ev->cmd, on_committed, e, &a);
    }
    ev__args_dispose(&a);
    if (rc != 0)
        on_committed(e, NULL);
}

/* One of the entry's jobs ended; the last commits the entry. */
static void entry_job_finished(ev__entry_t *e)
{
    if (--e->running == 0)
        entry_commit(e);
}

/* A job's invocation finished: it failed on an error or a 5xx, with the
 * reason kept for the retry or dead letter. */
static void on_job_done(void *data, const inv_result_t *res)
{
    job_t *job = data;
    job->call = NULL;
    job->running = false;
    job->ok = res->code == 0 && res->status < 500;
    job->invocation = res->invocation_id ? xstrdup(res->invocation_id) : NULL;
    /* A quota of its namespace refused it: it never ran (retried without
     * counting, as when the node has no capacity). */
    job->busy = res->code == TINE_EQUOTA;
    job->not_before_ms = job->busy ? (uint64_t)res->retry_after_s * 1000u : 0;
    if (!job->ok) {
        if (res->code != 0)
            job->reason = xstrdup(res->error ? res->error : tine_strerror(res->code));
        else
            job->reason = xasprintf("the function answered with status %d: %.*s", res->status,
                                    (int)(res->body_len > 200 ? 200 : res->body_len), res->body ? res->body : "");
    }
    entry_job_finished(job->entry);
}

/* Places a job's call in the call tree of its event: the trace of its
 * traceparent (CloudEvents' tracing extension), under the invocation that
 * emitted it (tineinvocation) or else the traceparent's span. */
static void job_trace(inv_request_t *rq, json_t *event)
{
    json_t *tp = json_object_get(event, "traceparent");
    char trace[TINE_TRACE_ID_LEN + 1], span[TINE_SPAN_ID_LEN + 1];
    if (!json_is_string(tp) || !tine_traceparent_parse(json_string_value(tp), json_string_length(tp), trace, span))
        return;
    const char *from = json_string_value(json_object_get(event, "tineinvocation"));
    bool ours = from != NULL && strlen(from) == TINE_TRACE_ID_LEN && tine_trace_hex_ok(from, TINE_TRACE_ID_LEN);
    inv_request_trace(rq, trace, ours ? from : span);
}

/* Invokes the job's function with the event. A job without its app version
 * (a permanent failure jobs_for_target noted) or whose call cannot start
 * finishes at once, failed. */
static void job_start(ev_events_t *ev, job_t *job)
{
    ev__entry_t *e = job->entry;
    if (job->v == NULL) {
        entry_job_finished(e);
        return;
    }
    inv_request_t rq;
    inv_request_init(&rq, job->trigger);
    inv_request_str(&rq, "kind", "event", 5);
    inv_request_str(&rq, "trigger", job->trigger, strlen(job->trigger));
    inv_request_json(&rq, "event", e->event);
    json_t *attempt = json_integer((json_int_t)job->attempt);
    inv_request_json(&rq, "attempt", attempt);
    json_decref(attempt);
    inv_request_str(&rq, "entry", e->id, strlen(e->id));
    job_trace(&rq, e->event);
    job->running = true;
    int rc = inv_call_request(ev->inv, job->v, job->fn_index, &rq, NULL, 0, on_job_done, job, &job->call);
    inv_request_dispose(&rq);
    if (rc != 0) {
        job->running = false;
        job->call = NULL;
        job->busy = rc == TINE_EBUSY;
        job->reason = xasprintf("cannot invoke %s: %s", job->function, tine_strerror(rc));
        entry_job_finished(e);
    }
}

/* Appends a job for app.function to the entry (attempt 1 of 3 unless given)
 * and returns it. */
static job_t *job_add(ev__entry_t *e, const char *app, const char *function, const char *trigger, uint32_t attempt,
                      uint32_t attempts)
{
    e->jobs = xrealloc(e->jobs, (e->njobs + 1) * sizeof(*e->jobs));
    job_t *job = &e->jobs[e->njobs++];
    memset(job, 0, sizeof(*job));
    job->entry = e;
    job->app = xstrdup(app);
    job->function = xstrdup(function);
    job->trigger = trigger;
    job->attempt = attempt ? attempt : 1;
    job->attempts = attempts ? attempts : 3;
    return job;
}

/* The version an entry's event is pinned to (EV_PIN_ATTRIBUTE, "APP@N" or
 * "APP@TAG"): 0 when it is not pinned; 1 with the version (borrowed, loaded
 * by the live table) in *v and its app in app; -1 when it names nothing
 * this node can load, with the app in app ("" when unreadable) and the
 * reason in *reason (the caller's). */
static int entry_pin(ev_events_t *ev, const ev__entry_t *e, char *app, size_t applen, reg_app_version_t **v,
                     char **reason)
{
    json_t *pin = json_object_get(e->event, EV_PIN_ATTRIBUTE);
    app[0] = '\0';
    *v = NULL;
    if (pin == NULL)
        return 0;
    const char *s = json_string_value(pin);
    const char *at = s ? strrchr(s, '@') : NULL;
    if (at == NULL || at == s || (size_t)(at - s) >= applen || at[1] == '\0') {
        *reason = xasprintf("its %s '%.64s' is not APP@VERSION or APP@TAG", EV_PIN_ATTRIBUTE, s ? s : "(not a string)");
        return -1;
    }
    memcpy(app, s, (size_t)(at - s));
    app[at - s] = '\0';
    char err[512] = "this node cannot load versions";
    if (ev->select_version == NULL || ev->select_version(ev->node_data, app, at + 1, v, err, sizeof err) != 0) {
        *reason = xasprintf("its %s names %s: %s", EV_PIN_ATTRIBUTE, s, err);
        *v = NULL;
        return -1;
    }
    return 1;
}

/* The version of live's app an entry goes to: the split's when the split
 * takes events (tine split --events) and the event's id falls in its share
 * (the same id, the same side: its retries stay there), else live. */
static reg_app_version_t *split_choice(ev_events_t *ev, const ev__entry_t *e, reg_app_version_t *live)
{
    reg_app_version_t *sv;
    unsigned percent;
    if (live == NULL || ev->event_split == NULL || !ev->event_split(ev->node_data, live->app, &sv, &percent))
        return live;
    json_t *id = json_object_get(e->event, "id");
    const char *key = json_is_string(id) ? json_string_value(id) : e->id;
    return reg_split_chooses(key, strlen(key), percent) ? sv : live;
}

/* The job of an entry meant for one function (log lines, schedule ticks,
 * retries, replays). The retry or replay of a pinned event runs on the
 * version it is pinned to. */
static void jobs_for_target(ev_events_t *ev, ev__entry_t *e, json_t *target)
{
    const char *app = json_string_value(json_object_get(target, "app"));
    const char *fn = json_string_value(json_object_get(target, "function"));
    const char *kind = json_string_value(json_object_get(target, "trigger"));
    json_int_t attempt = json_integer_value(json_object_get(target, "attempt"));
    json_int_t attempts = json_integer_value(json_object_get(target, "attempts"));
    if (app == NULL || fn == NULL) {
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("entry", e->id),
                    "events: entry %s has a target without app or function; dropped", e->id);
        return;
    }
    static const char *const kinds[] = {"event", "log", "schedule"};
    const char *trigger = kinds[0];
    for (size_t i = 0; kind && i < 3; i++)
        if (strcmp(kind, kinds[i]) == 0)
            trigger = kinds[i];
    job_t *job = job_add(e, app, fn, trigger, attempt > 0 ? (uint32_t)attempt : 1,
                         attempts > 0 && attempts < 1000 ? (uint32_t)attempts : 3);
    reg_app_version_t *v = ev__app(ev, app);
    char papp[256];
    reg_app_version_t *pv = NULL;
    char *why = NULL;
    int pinned = trigger == kinds[0] ? entry_pin(ev, e, papp, sizeof papp, &pv, &why) : 0;
    if (pinned != 0 && strcmp(papp, app) == 0) {
        if (pinned < 0) {
            job->permanent = true;
            job->reason = why;
            return;
        }
        v = pv;
    } else if (trigger != kinds[1]) {
        /* Events and schedule ticks follow a split with --events, to a
         * version that has the function. */
        reg_app_version_t *sv = split_choice(ev, e, v);
        size_t k;
        if (sv != v && reg_manifest_function_index(sv->manifest, fn, strlen(fn), &k))
            v = sv;
    }
    free(why);
    size_t fn_index;
    if (v == NULL || !reg_manifest_function_index(v->manifest, fn, strlen(fn), &fn_index)) {
        job->permanent = true;
        job->reason = v ? xasprintf("app %s has no function %s any more", app, fn)
                        : xasprintf("app %s is not deployed", app);
        return;
    }
    job->v = v;
    reg_app_version_retain(v);
    job->fn_index = fn_index;
}

/* One job per event trigger of version v whose type and source globs
 * match the event. */
static void jobs_for_version(ev__entry_t *e, reg_app_version_t *v, const char *type, const char *source)
{
    const reg_manifest_t *m = v->manifest;
    for (size_t t = 0; t < m->triggers_len; t++) {
        const reg_trigger_t *tr = &m->triggers[t];
        if (tr->on != REG_TRIGGER_EVENT)
            continue;
        if (fnmatch(tr->type ? tr->type : "*", type, 0) != 0)
            continue;
        if (tr->source && fnmatch(tr->source, source, 0) != 0)
            continue;
        job_t *job = job_add(e, v->app, tr->function, "event", 1, tr->attempts);
        job->v = v;
        reg_app_version_retain(v);
        job->fn_index = tr->function_index;
    }
}

/* The jobs of an event: of every live app's matching triggers, or, when it
 * is pinned to a version (EV_PIN_ATTRIBUTE), of that version's only; one
 * pinned to what cannot be loaded goes to its app's dead letters. */
static void jobs_for_event(ev_events_t *ev, ev__entry_t *e)
{
    const char *type = json_string_value(json_object_get(e->event, "type"));
    const char *source = json_string_value(json_object_get(e->event, "source"));
    if (type == NULL || source == NULL)
        return;
    char app[256];
    reg_app_version_t *pv = NULL;
    char *why = NULL;
    int pinned = entry_pin(ev, e, app, sizeof app, &pv, &why);
    if (pinned < 0) {
        job_t *job = job_add(e, app, "*", "event", 1, 1);
        job->permanent = true;
        job->reason = why;
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", app, "entry", e->id), "events: event %s: %s", e->id, why);
        return;
    }
    if (pinned > 0) {
        jobs_for_version(e, pv, type, source);
        return;
    }
    for (size_t i = 0; i < ev->apps.len; i++)
        jobs_for_version(e, split_choice(ev, e, ev->apps.entries[i].v), type, source);
}

/* Starts the processing of one stream entry (read, re-read or claimed). */
static void entry_process(ev_events_t *ev, redisReply *item)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements < 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *id = item->element[0]->str;
    for (ev__entry_t *x = ev->entries; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return; /* already being processed here */
    ev__entry_t *e = xcalloc(1, sizeof(*e));
    e->ev = ev;
    e->id = xstrdup(id);
    e->next = ev->entries;
    ev->entries = e;
    ev->inflight++;
    redisReply *fields = item->element[1];
    const char *app = ev__entry_field(fields, "app");
    const char *text = ev__entry_field(fields, "event");
    const char *target = ev__entry_field(fields, "target");
    e->app = xstrdup(app ? app : "");
    e->event_text = xstrdup(text ? text : "null");
    e->event = text ? json_loads(text, 0, NULL) : NULL;
    e->running = 1;
    if (!json_is_object(e->event)) {
        /* A deleted entry still pending, or garbage: nothing to deliver. */
        if (fields && fields->type != REDIS_REPLY_NIL)
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("entry", e->id), "events: entry %s holds no CloudEvent; dropped",
                        e->id);
    } else if (target) {
        json_t *t = json_loads(target, 0, NULL);
        jobs_for_target(ev, e, t);
        json_decref(t);
    } else {
        jobs_for_event(ev, e);
    }
    e->running += e->njobs;
    for (size_t j = 0; j < e->njobs; j++)
        job_start(ev, &e->jobs[j]);
    entry_job_finished(e);
}

/* Processes the entries of an XREADGROUP / XCLAIM reply; returns how many
 * and the last id. */
static size_t process_entries(ev_events_t *ev, redisReply *entries, char *last, size_t lastlen)
{
    if (entries == NULL || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *item = entries->element[i];
        if (item->type == REDIS_REPLY_ARRAY && item->elements >= 1 && item->element[0]->type == REDIS_REPLY_STRING &&
            last)
            snprintf(last, lastlen, "%s", item->element[0]->str);
        entry_process(ev, item);
    }
    return entries->elements;
}

/* An XREADGROUP reply: starts its entries, moves the cursor through this
 * node's pending entries (the pending phase ends when none come back) and
 * reads again; an error restarts from the pending ones (NOGROUP: the group is
 * made again). */
static void on_read(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->reading = false;
    if (r == NULL || ev->closing)
        return; /* the connection dropped: reading restarts when it is back */
    if (r->type == REDIS_REPLY_ERROR) {
        ev->pending_phase = true;
        snprintf(ev->cursor, sizeof ev->cursor, "0");
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            /* Someone deleted the stream: start over. */
            ensure_group(ev);
            return;
        }
        /* Read again on the next tick. */
        tine_log(TINE_LOG_WARN, "events: reading %s: %s", RDS_KEY_EVENTS, r->str);
        return;
    }
    size_t got = 0;
    char last[64] = "";
    /* No new read while this one's entries are being started (one may
     * finish at once); the cursor moves first. */
    ev->reading = true;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t s = 0; s < r->elements; s++)
            if (r->element[s]->type == REDIS_REPLY_ARRAY && r->element[s]->elements == 2)
                got += process_entries(ev, r->element[s]->element[1], last, sizeof last);
    ev->reading = false;
    if (ev->read_was_pending && ev->pending_phase) {
        if (got == 0)
            ev->pending_phase = false;
        else
            snprintf(ev->cursor, sizeof ev->cursor, "%s", last);
    }
    dispatch_read(ev);
}

/* Asks for more entries unless a read is outstanding or enough are being
 * processed: first this node's pending ones (from cursor), then new ones
 * (blocking up to 5 s). */
static void dispatch_read(ev_events_t *ev)
{
    /* Without the command connection nothing read could be acknowledged. */
    if (ev->closing || ev->draining || !rds_async_connected(ev->blk) || !rds_async_connected(ev->cmd) || ev->reading ||
        ev->inflight >= EV_INFLIGHT_MAX)
        return;
    size_t count = EV_INFLIGHT_MAX - ev->inflight;
    if (count > 64)
        count = 64;
    ev__args_t a = {0};
    ev__args_adds(&a, "XREADGROUP");
    ev__args_adds(&a, "GROUP");
    ev__args_adds(&a, RDS_EVENTS_GROUP);
    ev__args_adds(&a, ev->node_id);
    ev__args_adds(&a, "COUNT");
    ev__args_addf(&a, "%zu", count);
    if (!ev->pending_phase) {
        ev__args_adds(&a, "BLOCK");
        ev__args_adds(&a, "5000");
    }
    ev__args_adds(&a, "STREAMS");
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, ev->pending_phase ? ev->cursor : ">");
    ev->read_was_pending = ev->pending_phase;
    if (ev__send(ev->blk, on_read, ev, &a) == 0)
        ev->reading = true;
}

/* The consumer group exists (made now or before): reading starts. */
static void on_group_created(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->reading = false;
    if (r == NULL || ev->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        tine_log(TINE_LOG_ERROR, "events: cannot create the consumer group: %s", r->str);
    dispatch_read(ev);
}

/* Creates the group (from the stream's start, so events appended before any
 * node ran are delivered) and the stream if needed, then reads. */
static void ensure_group(ev_events_t *ev)
{
    ev__args_t a = {0};
    ev__args_adds(&a, "XGROUP");
    ev__args_adds(&a, "CREATE");
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, RDS_EVENTS_GROUP);
    ev__args_adds(&a, "0");
    ev__args_adds(&a, "MKSTREAM");
    /* Counts as the outstanding read: reading follows its answer. */
    ev->reading = ev__send(ev->blk, on_group_created, ev, &a) == 0;
}

void ev__dispatch_on_up(ev_events_t *ev)
{
    ev->pending_phase = true;
    snprintf(ev->cursor, sizeof ev->cursor, "0");
    ensure_group(ev);
}

/* Moves due retries back into the stream as entries for their function,
 * atomically (a retry is never lost nor doubled). KEYS: retry set, stream;
 * ARGV: now (ms). */
static const char move_retries_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100) "
    "for _, m in ipairs(due) do "
    "  local ok, r = pcall(cjson.decode, m) "
    "  if ok and type(r) == 'table' and type(r.event) == 'string' and type(r.target) == 'table' then "
    "    redis.call('XADD', KEYS[2], '*', 'app', tostring(r.app or ''), 'event', r.event, "
    "               'target', cjson.encode(r.target)) "
    "  end "
    "  redis.call('ZREM', KEYS[1], m) "
    "end "
    "return #due";

/* Claims the pending entries of consumers whose node heartbeat expired (at
 * least ARGV[3] ms idle: the heartbeat decides, the idle time only keeps
 * an entry read the instant its node died to the next round), and forgets
 * such consumers once they hold none; nothing while the heartbeats are not
 * judged (EV_JUDGING_LUA). KEYS: stream, checked hash; ARGV: group, me,
 * min idle, node key prefix, heartbeat TTL, stall threshold. Returns the
 * claimed entries. */
/* clang-format off */
static const char claim_lua[] =
    EV_JUDGING_LUA
    "local out = {} "
    "if not judging(KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[6])) then return out end "
    "local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) "
    "if not ok then return out end "
    "for _, c in ipairs(consumers) do "
    "  local name, pending "
    "  for i = 1, #c, 2 do "
    "    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] end "
    "  end "
    "  if name and name ~= ARGV[2] and redis.call('EXISTS', ARGV[4] .. name) == 0 then "
    "    if pending and pending > 0 then "
    "      local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 64, name) "
    "      for _, e in ipairs(p) do "
    "        local got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], e[1]) "
    "        for _, g in ipairs(got) do table.insert(out, g) end "
    "      end "
    "    else "
    "      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name) "
    "    end "
    "  end "
    "end "
    "return out";
/* clang-format on */

/* Retries that were due are back in the stream; with a full batch moved, more
 * are moved at once. */
static void on_retries_moved(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->mover_busy = false;
    if (r == NULL || ev->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        tine_log(TINE_LOG_WARN, "events: moving retries: %s", r->str);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 100)
        ev__dispatch_tick(ev, false); /* more are due */
}

/* Entries of lost nodes were claimed by this node: they are processed like
 * its own. */
static void on_claimed(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->claim_busy = false;
    if (r == NULL || ev->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        tine_log(TINE_LOG_WARN, "events: claiming entries of lost nodes: %s", r->str);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        tine_log(TINE_LOG_INFO, "events: took over %zu pending entr%s of lost nodes", r->elements,
                 r->elements == 1 ? "y" : "ies");
        ev->taken_over += r->elements;
    }
    process_entries(ev, r, NULL, 0);
}

void ev__dispatch_tick(ev_events_t *ev, bool claim)
{
    if (ev->closing || !rds_async_connected(ev->cmd))
        return;
    if (claim && ev->rescan) {
        /* An acknowledgement failed: read this node's pending entries again
         * (those still being processed are skipped). */
        ev->rescan = false;
        ev->pending_phase = true;
        snprintf(ev->cursor, sizeof ev->cursor, "0");
    }
    dispatch_read(ev);
    if (!ev->mover_busy) {
        ev__args_t a = {0};
        ev__args_adds(&a, "EVAL");
        ev__args_adds(&a, move_retries_lua);
        ev__args_adds(&a, "2");
        ev__args_adds(&a, RDS_KEY_RETRY);
        ev__args_adds(&a, RDS_KEY_EVENTS);
        ev__args_addf(&a, "%" PRIu64, tine_now_unix_ms());
        ev->mover_busy = ev__send(ev->cmd, on_retries_moved, ev, &a) == 0;
    }
    if (claim && !ev->claim_busy && !ev->draining && ev->inflight < EV_INFLIGHT_MAX / 2) {
        ev__args_t a = {0};
        ev__args_adds(&a, "EVAL");
        ev__args_adds(&a, claim_lua);
        ev__args_adds(&a, "2");
        ev__args_adds(&a, RDS_KEY_EVENTS);
        ev__args_adds(&a, RDS_KEY_NODES_CHECKED);
        ev__args_adds(&a, RDS_EVENTS_GROUP);
        ev__args_adds(&a, ev->node_id);
        ev__args_addf(&a, "%d", EV_CLAIM_MIN_IDLE_MS);
        ev__args_adds(&a, RDS_KEY_NODE_PREFIX);
        ev__args_addf(&a, "%d", EV_HEARTBEAT_TTL_MS);
        ev__args_addf(&a, "%d", EV_STALL_MS);
        ev->claim_busy = ev__send(ev->cmd, on_claimed, ev, &a) == 0;
    }
}

void ev__dispatch_stop(ev_events_t *ev)
{
    /* Entries waiting for their EXEC are freed by its callback (it runs, with
     * no reply, when the connection is closed); the others here. */
    ev__entry_t **p = &ev->entries;
    while (*p) {
        ev__entry_t *e = *p;
        for (size_t j = 0; j < e->njobs; j++) {
            if (e->jobs[j].call)
                inv_call_cancel(e->jobs[j].call);
            e->jobs[j].call = NULL;
        }
        if (e->committing) {
            p = &e->next;
            continue;
        }
        *p = e->next;
        ev->inflight--;
        entry_free(e);
    }
}

/* Hands this node's pending entries back: each is appended to the stream
 * again (the same fields: app, event, target) and the original is
 * acknowledged and deleted, so a node blocked on the stream takes it at
 * once; entries deleted meanwhile are only acknowledged. Then the consumer
 * goes. KEYS: stream; ARGV: group, consumer. Returns the count appended. */
/* clang-format off */
static const char hand_back_lua[] =
    "local n = 0 "
    "for _ = 1, 1000 do "
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 100, ARGV[2]) "
    "  if #p == 0 then break end "
    "  for _, e in ipairs(p) do "
    "    local r = redis.call('XRANGE', KEYS[1], e[1], e[1]) "
    "    if #r == 1 then "
    "      redis.call('XADD', KEYS[1], '*', unpack(r[1][2])) "
    "      n = n + 1 "
    "    end "
    "    redis.call('XACK', KEYS[1], ARGV[1], e[1]) "
    "    redis.call('XDEL', KEYS[1], e[1]) "
    "  end "
    "end "
    "pcall(redis.call, 'XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) "
    "return n";
/* clang-format on */

int ev__dispatch_hand_back(ev_events_t *ev, rds_reply_fn cb, void *priv)
{
    ev__args_t a = {0};
    ev__args_adds(&a, "EVAL");
    ev__args_adds(&a, hand_back_lua);
    ev__args_adds(&a, "1");
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, RDS_EVENTS_GROUP);
    ev__args_adds(&a, ev->node_id);
    return ev__send(ev->cmd, cb, priv, &a);
}
