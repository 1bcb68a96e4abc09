/* Dead letters: the stream tine:dlq:{app} holds, per app, the events whose
 * function kept failing (event, function, trigger, attempts, reason,
 * failed_at, producer app). Listing and replaying are admin calls, served
 * synchronously on a connection of their own like the other admin calls, as
 * are the lengths of the queue and of the dead letters (GET /metrics). */
#include "events_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int ev_dlq_list(ev_events_t *ev, const char *app, size_t max, json_t **out, char *err, size_t errlen)
{
    redisReply *r = rds_sync_command(ev->sync, err, errlen, "XRANGE " RDS_KEY_DLQ_PREFIX "%s - + COUNT %d", app,
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
        all = rds_sync_command(ev->sync, err, errlen, "XRANGE " RDS_KEY_DLQ_PREFIX "%s - + COUNT 10000", app);
        if (all == NULL)
            rc = TINE_EREDIS;
    } else {
        singles = xcalloc(json_array_size(ids) + 1, sizeof(*singles));
        for (size_t i = 0; i < json_array_size(ids) && rc == 0; i++) {
            const char *id = json_string_value(json_array_get(ids, i));
            redisReply *r = rds_sync_command(ev->sync, err, errlen, "XRANGE " RDS_KEY_DLQ_PREFIX "%s %s %s", app, id, id);
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
    redisContext *c = rc == 0 && n ? rds_sync_context(ev->sync, err, errlen) : NULL;
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
                redisAppendCommand(c, "XADD " RDS_KEY_EVENTS " * app %s event %s target %s", producer ? producer : "",
                                   event, target);
                free(target);
                queued++;
            }
            redisAppendCommand(c, "XDEL " RDS_KEY_DLQ_PREFIX "%s %s", app, item->element[0]->str);
            queued++;
            if (event && fn)
                json_array_append_new(replayed, json_string(item->element[0]->str));
        }
        redisAppendCommand(c, "EXEC");
        /* MULTI's +OK, one +QUEUED per command, then EXEC's array. */
        rc = rds_sync_replies(ev->sync, queued + 2, err, errlen);
        char why[1024];
        if (rc == 0 && rds_sync_wait_replicas(ev->sync, why, sizeof why) != 0) {
            snprintf(err, errlen,
                     "the dead letters were replayed on the redis master, but %s; list them to see whether they "
                     "are still there",
                     why);
            rc = TINE_EREDIS;
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

/* XLEN of a stream key, 0 when it is absent or of another type (XLEN of a
 * key of another type would be an error). */
static int stream_length(ev_events_t *ev, const char *key, uint64_t *len)
{
    char err[256];
    redisReply *r = rds_sync_command(ev->sync, err, sizeof(err), "TYPE %s", key);
    if (r == NULL)
        return TINE_EREDIS;
    bool stream = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "stream") == 0;
    freeReplyObject(r);
    *len = 0;
    if (!stream)
        return 0;
    r = rds_sync_command(ev->sync, err, sizeof(err), "XLEN %s", key);
    if (r == NULL)
        return TINE_EREDIS;
    *len = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    return 0;
}

int ev_queue_lengths(ev_events_t *ev, uint64_t *queued, uint64_t *dead)
{
    if (ev == NULL || ev->sync == NULL)
        return TINE_EREDIS;
    /* The dispatcher deletes entries once acknowledged, so the stream's
     * length is the queue: not yet delivered plus in flight. */
    if (stream_length(ev, RDS_KEY_EVENTS, queued) != 0)
        return TINE_EREDIS;
    /* Dead letters live in one stream per app: sum them (SCAN, bounded). */
    *dead = 0;
    char err[256], cursor[32] = "0";
    for (int rounds = 0; rounds < 1000; rounds++) {
        redisReply *r = rds_sync_command(ev->sync, err, sizeof(err), "SCAN %s MATCH %s* COUNT 500", cursor,
                                         RDS_KEY_DLQ_PREFIX);
        if (r == NULL)
            return TINE_EREDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return TINE_EREDIS;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
            uint64_t n = 0;
            if (keys->element[i]->type == REDIS_REPLY_STRING && stream_length(ev, keys->element[i]->str, &n) == 0)
                *dead += n;
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    return 0;
}

int ev_delete_app(ev_events_t *ev, const char *app, size_t *dead_letters, char *err, size_t errlen)
{
    char key[300];
    snprintf(key, sizeof(key), RDS_KEY_DLQ_PREFIX "%s", app);
    return rds_sync_unlink_measured(ev->sync, "XLEN", key, dead_letters, err, errlen);
}
