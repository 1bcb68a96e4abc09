/* Dead letters: the stream tine:dlq:{app} holds, per app, the events whose
 * function kept failing (event, function, trigger, attempts, reason,
 * failed_at, producer app). Listing and replaying are admin calls, served
 * synchronously on a connection of their own like the other admin calls. */
#include "events_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synchronous connection, (re)opened on demand. */
static redisContext *sync_ctx(ev_events_t *ev, char *err, size_t errlen)
{
    if (ev->sync && ev->sync->err == 0)
        return ev->sync;
    if (ev->sync)
        redisFree(ev->sync);
    struct timeval tv = {2, 0};
    char *path, *host;
    int port;
    ev__redis_address(ev->redis_url, &path, &host, &port);
    ev->sync = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    free(path);
    free(host);
    if (ev->sync == NULL || ev->sync->err) {
        snprintf(err, errlen, "redis is unreachable: %s", ev->sync ? ev->sync->errstr : "out of memory");
        if (ev->sync)
            redisFree(ev->sync);
        ev->sync = NULL;
        return NULL;
    }
    redisSetTimeout(ev->sync, tv);
    return ev->sync;
}

/* One dead letter as the admin API shows it. */
static json_t *letter_json(redisReply *item)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements < 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    redisReply *f = item->element[1];
    const char *event = ev__entry_field(f, "event");
    const char *failed = ev__entry_field(f, "failed_at");
    json_t *ev = event ? json_loads(event, 0, NULL) : NULL;
    char when[40] = "";
    if (failed)
        tine_fmt_rfc3339_ms(strtoull(failed, NULL, 10), when);
    const char *attempts = ev__entry_field(f, "attempts");
    return json_pack("{s:s, s:o, s:s, s:s, s:i, s:s, s:s, s:s}", "id", item->element[0]->str, "event",
                     ev ? ev : json_null(), "function", ev__entry_field(f, "function") ? ev__entry_field(f, "function") : "", "trigger",
                     ev__entry_field(f, "trigger") ? ev__entry_field(f, "trigger") : "event", "attempts",
                     attempts ? atoi(attempts) : 0, "reason", ev__entry_field(f, "reason") ? ev__entry_field(f, "reason") : "",
                     "failed_at", when, "app", ev__entry_field(f, "app") ? ev__entry_field(f, "app") : "");
}

static redisReply *command(ev_events_t *ev, char *err, size_t errlen, const char *fmt, ...)
{
    redisContext *c = sync_ctx(ev, err, errlen);
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        snprintf(err, errlen, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int ev_dlq_list(ev_events_t *ev, const char *app, size_t max, json_t **out, char *err, size_t errlen)
{
    redisReply *r = command(ev, err, errlen, "XRANGE " EV_DLQ_PREFIX "%s - + COUNT %d", app,
                           (int)(max && max < 100000 ? max : 1000));
    if (r == NULL)
        return TINE_EREDIS;
    json_t *list = json_array();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *l = letter_json(r->element[i]);
        if (l)
            json_array_append_new(list, l);
    }
    freeReplyObject(r);
    *out = json_pack("{s:s, s:o}", "app", app, "dead_letters", list);
    return 0;
}

int ev_dlq_replay(ev_events_t *ev, const char *app, json_t *ids, json_t **out, char *err, size_t errlen)
{
    /* Collect the letters first, then resend and delete them in one go. */
    json_t *missing = json_array();
    redisReply *all = NULL;
    redisReply **singles = NULL;
    size_t nsingles = 0;
    int rc = 0;
    if (ids == NULL) {
        all = command(ev, err, errlen, "XRANGE " EV_DLQ_PREFIX "%s - + COUNT 10000", app);
        if (all == NULL)
            rc = TINE_EREDIS;
    } else {
        singles = xcalloc(json_array_size(ids) + 1, sizeof(*singles));
        for (size_t i = 0; i < json_array_size(ids) && rc == 0; i++) {
            const char *id = json_string_value(json_array_get(ids, i));
            redisReply *r = command(ev, err, errlen, "XRANGE " EV_DLQ_PREFIX "%s %s %s", app, id, id);
            if (r == NULL) {
                /* A malformed id is a missing one, not a Redis failure. */
                if (strstr(err, "Invalid stream ID") == NULL) {
                    rc = TINE_EREDIS;
                    break;
                }
                json_array_append_new(missing, json_string(id));
                continue;
            }
            singles[nsingles++] = r;
            if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
                json_array_append_new(missing, json_string(id));
        }
    }
    /* Pointers to the letters to replay, across whichever replies hold them. */
    size_t cap = all ? all->elements : nsingles;
    redisReply **letters = xcalloc(cap + 1, sizeof(*letters));
    size_t n = 0;
    if (all)
        for (size_t i = 0; all->type == REDIS_REPLY_ARRAY && i < all->elements; i++)
            letters[n++] = all->element[i];
    for (size_t i = 0; i < nsingles; i++)
        if (singles[i]->type == REDIS_REPLY_ARRAY && singles[i]->elements == 1)
            letters[n++] = singles[i]->element[0];
    json_t *replayed = json_array();
    redisContext *c = rc == 0 && n ? sync_ctx(ev, err, errlen) : NULL;
    if (c) {
        redisAppendCommand(c, "MULTI");
        size_t queued = 0;
        for (size_t i = 0; i < n; i++) {
            redisReply *item = letters[i];
            if (item->type != REDIS_REPLY_ARRAY || item->elements < 2)
                continue;
            redisReply *f = item->element[1];
            const char *event = ev__entry_field(f, "event");
            const char *fn = ev__entry_field(f, "function");
            const char *trig = ev__entry_field(f, "trigger");
            const char *attempts = ev__entry_field(f, "attempts");
            const char *producer = ev__entry_field(f, "app");
            if (event && fn) {
                int na = attempts ? atoi(attempts) : 0;
                json_t *t = ev__target(app, fn, trig ? trig : "event", 1, na > 0 ? (uint32_t)na : 3);
                char *target = json_dumps(t, JSON_COMPACT);
                json_decref(t);
                redisAppendCommand(c, "XADD " EV_STREAM " * app %s event %s target %s", producer ? producer : "",
                                   event, target);
                free(target);
                queued++;
            }
            redisAppendCommand(c, "XDEL " EV_DLQ_PREFIX "%s %s", app, item->element[0]->str);
            queued++;
            if (event && fn)
                json_array_append_new(replayed, json_string(item->element[0]->str));
        }
        redisAppendCommand(c, "EXEC");
        /* MULTI's +OK, one +QUEUED per command, then EXEC's array. */
        for (size_t i = 0; i < queued + 2 && rc == 0; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
                snprintf(err, errlen, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
                rc = TINE_EREDIS;
            } else if (r->type == REDIS_REPLY_ERROR || (i == queued + 1 && r->type != REDIS_REPLY_ARRAY)) {
                snprintf(err, errlen, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "transaction aborted");
                rc = TINE_EREDIS;
            }
            freeReplyObject(r);
        }
    } else if (rc == 0 && n) {
        rc = TINE_EREDIS;
    }
    if (all)
        freeReplyObject(all);
    for (size_t i = 0; i < nsingles; i++)
        freeReplyObject(singles[i]);
    free(singles);
    free(letters);
    if (rc != 0) {
        json_decref(replayed);
        json_decref(missing);
        return rc;
    }
    *out = json_pack("{s:s, s:I, s:o, s:o}", "app", app, "replayed", (json_int_t)json_array_size(replayed), "ids",
                     replayed, "missing", missing);
    return 0;
}
