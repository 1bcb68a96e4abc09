/* The recent events of each trigger (events.h, ev_recent_list): when an
 * entry of the events stream is committed, each of its jobs adds what
 * happened (the event's type, source and id, the outcome, the invocation)
 * to the list of its trigger, tine:recent:{app}:{kind}:{function}, in the
 * commit's own MULTI (no round trip of its own), cut to EV_RECENT_KEPT
 * entries and kept a week after the last one. */
#include "events_internal.h"
#include "keys.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_RECENT_KEPT 20                 /* events listed per trigger */
#define EV_RECENT_TTL_S (7 * 24 * 3600)   /* a trigger that fires no more is forgotten after this */

static const char *const kind_names[] = {[REG_TRIGGER_LOG] = "log", [REG_TRIGGER_EVENT] = "event",
                                         [REG_TRIGGER_SCHEDULE] = "schedule"};

int ev__recent_send(ev_events_t *ev, const ev__recent_t *r)
{
    const char *type = json_string_value(json_object_get(r->event, "type"));
    const char *source = json_string_value(json_object_get(r->event, "source"));
    const char *id = json_string_value(json_object_get(r->event, "id"));
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i}", "t", (json_int_t)tine_now_unix_ms(), "entry",
                          r->entry, "type", type ? type : "", "source", source ? source : "", "id", id ? id : "",
                          "outcome", r->outcome, "attempt", (int)r->attempt);
    if (r->invocation && r->invocation[0])
        json_object_set_new(o, "invocation", json_string(r->invocation));
    if (r->reason)
        json_object_set_new(o, "reason", json_string(r->reason));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *key = xasprintf(RDS_KEY_RECENT_PREFIX "%s:%s:%s", r->app, r->trigger, r->function);
    ev__args_t a = {0};
    ev__args_adds(&a, "LPUSH");
    ev__args_adds(&a, key);
    ev__args_adds(&a, text);
    int rc = ev__send(ev->cmd, NULL, NULL, &a);
    if (rc == 0) {
        ev__args_adds(&a, "LTRIM");
        ev__args_adds(&a, key);
        ev__args_adds(&a, "0");
        ev__args_addf(&a, "%d", EV_RECENT_KEPT - 1);
        rc = ev__send(ev->cmd, NULL, NULL, &a);
    }
    if (rc == 0) {
        ev__args_adds(&a, "EXPIRE");
        ev__args_adds(&a, key);
        ev__args_addf(&a, "%d", EV_RECENT_TTL_S);
        rc = ev__send(ev->cmd, NULL, NULL, &a);
    }
    ev__args_dispose(&a);
    free(key);
    free(text);
    return rc;
}

/* What fires triggers of tr's kind and function in m: their type globs
 * (event; with " from SOURCE" when one has a source glob), crons or log
 * sources, ", " between them. */
static char *fired_by(const reg_manifest_t *m, const reg_trigger_t *tr)
{
    tine_buf_t b;
    tine_buf_init(&b);
    for (size_t t = 0; t < m->triggers_len; t++) {
        const reg_trigger_t *x = &m->triggers[t];
        if (x->on != tr->on || strcmp(x->function, tr->function) != 0)
            continue;
        const char *on = x->on == REG_TRIGGER_EVENT ? x->type : x->on == REG_TRIGGER_SCHEDULE ? x->cron : x->source;
        tine_buf_appendf(&b, "%s%s", b.len ? ", " : "", on ? on : "*");
        if (x->on == REG_TRIGGER_EVENT && x->source)
            tine_buf_appendf(&b, " from %s", x->source);
    }
    return b.data ? b.data : xstrdup("");
}

/* The list of one trigger: {"trigger", "function", "on" (what fires it),
 * "events": newest first, "dead_letters": of this function and kind}, or
 * NULL on a Redis failure (message in err). */
static json_t *trigger_json(ev_events_t *ev, const char *app, const reg_manifest_t *m, const reg_trigger_t *tr,
                            json_t *letters, char *err, size_t errlen)
{
    const char *kind = kind_names[tr->on];
    redisReply *r = rds_sync_command(ev->sync, err, errlen, "LRANGE " RDS_KEY_RECENT_PREFIX "%s:%s:%s 0 %d", app,
                                     kind, tr->function, EV_RECENT_KEPT - 1);
    if (r == NULL)
        return NULL;
    json_t *events = json_array();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *e = r->element[i]->type == REDIS_REPLY_STRING ? json_loads(r->element[i]->str, 0, NULL) : NULL;
        if (json_is_object(e))
            json_array_append_new(events, e);
        else
            json_decref(e);
    }
    freeReplyObject(r);
    size_t dead = 0, i;
    json_t *l;
    json_array_foreach(letters, i, l)
    {
        const char *fn = json_string_value(json_object_get(l, "function"));
        const char *t = json_string_value(json_object_get(l, "trigger"));
        dead += fn && t && strcmp(fn, tr->function) == 0 && strcmp(t, kind) == 0;
    }
    char *on = fired_by(m, tr);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I}", "trigger", kind, "function", tr->function, "on", on, "events",
                          events, "dead_letters", (json_int_t)dead);
    free(on);
    return o;
}

int ev_recent_list(ev_events_t *ev, const char *app, const char *function, const char *trigger, json_t **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    reg_app_version_t *v = ev__app(ev, app);
    if (v == NULL) {
        snprintf(err, errlen, "no app named '%s' is live", app);
        return TINE_ENOTFOUND;
    }
    json_t *dlq = NULL;
    if (ev_dlq_list(ev, app, EV_DLQ_MAXLEN, &dlq, err, errlen) != 0)
        return TINE_EREDIS;
    json_t *letters = json_object_get(dlq, "dead_letters");
    json_t *list = json_array();
    const reg_manifest_t *m = v->manifest;
    for (size_t t = 0; t < m->triggers_len; t++) {
        const reg_trigger_t *tr = &m->triggers[t];
        if ((function && strcmp(function, tr->function) != 0) || (trigger && strcmp(trigger, kind_names[tr->on]) != 0))
            continue;
        /* two triggers of one kind to one function share their list: listed once */
        bool seen = false;
        for (size_t k = 0; k < t && !seen; k++)
            seen = m->triggers[k].on == tr->on && strcmp(m->triggers[k].function, tr->function) == 0;
        if (seen)
            continue;
        json_t *o = trigger_json(ev, app, m, tr, letters, err, errlen);
        if (o == NULL) {
            json_decref(list);
            json_decref(dlq);
            return TINE_EREDIS;
        }
        json_array_append_new(list, o);
    }
    *out = json_pack("{s:s, s:I, s:o, s:I}", "app", app, "version", (json_int_t)v->version, "triggers", list,
                     "dead_letters", (json_int_t)json_array_size(letters));
    json_decref(dlq);
    return 0;
}
