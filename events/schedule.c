/* Schedule triggers: every node computes the next tick of each live
 * schedule (UTC; reg_cron_next) and, at the tick, tries to take the tick's
 * lock (SET tine:tick:{app}:{fn}:{trigger#}:{tick_ms} NX EX 3600) and append
 * the event tine.schedule.tick in the same script. Only the winner appends,
 * so a tick fires once across all nodes sharing the Redis. A tick is held
 * until Redis stored it and a replica confirmed it (ev__append_sure): a
 * failover or an outage delays it, the lock keeps it single. */
#include "events_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_LOCK_TTL_S 3600
#define SCHED_MAX_SLEEP_MS 1000 /* re-check at least this often (clock changes) */

static void sched_arm(ev_events_t *ev);

/* Frees the strings of one schedule (not the schedule itself, which lives in
 * an array). */
static void sched_free_one(ev__sched_t *s)
{
    free(s->app);
    free(s->function);
    free(s->cron);
}

/* Appends the event of one tick unless another node already did; held
 * and tried again until Redis has it (ev__append_sure), so a tick due
 * while Redis is away or failing over fires late rather than never. */
static void sched_fire(ev_events_t *ev, const ev__sched_t *s, int64_t tick_ms)
{
    char when[40];
    tine_fmt_rfc3339_ms((uint64_t)tick_ms, when);
    char *id = xasprintf("tick:%s:%s:%zu:%" PRId64, s->app, s->function, s->trigger, tick_ms);
    char *source = xasprintf("tine://%s/schedule/%s", s->app, s->function);
    json_t *event = ev__make_event(id, "tine.schedule.tick", source, NULL, (uint64_t)tick_ms,
                                   json_pack("{s:s, s:s, s:s}", "tick", when, "cron", s->cron, "node", ev->node_id));
    json_t *target = ev__target(s->app, s->function, "schedule", 1, s->attempts);
    char *lock = xasprintf(RDS_KEY_TICK_PREFIX "%s:%s:%zu:%" PRId64, s->app, s->function, s->trigger, tick_ms);
    char *what = xasprintf("the schedule tick of %s.%s at %s", s->app, s->function, when);
    ev__append_sure(ev, s->app, event, target, lock, TICK_LOCK_TTL_S, what);
    free(what);
    free(lock);
    json_decref(target);
    json_decref(event);
    free(source);
    free(id);
}

/* Fires every schedule that is due, once, computes its next tick and arms the
 * timer again. */
static void on_sched_timer(uv_timer_t *t)
{
    ev_events_t *ev = t->data;
    int64_t now = (int64_t)tine_now_unix_ms();
    for (size_t i = 0; i < ev->nscheds; i++) {
        ev__sched_t *s = &ev->scheds[i];
        if (s->next_ms > now)
            continue;
        sched_fire(ev, s, s->next_ms);
        /* One tick per wake-up: ticks missed while the loop was stuck are
         * not replayed one after the other. */
        int64_t after = s->next_ms > now ? s->next_ms : now;
        if (reg_cron_next(s->cron, after, &s->next_ms) != 0)
            s->next_ms = INT64_MAX;
    }
    sched_arm(ev);
}

/* Sleeps until the earliest tick (at most SCHED_MAX_SLEEP_MS). */
static void sched_arm(ev_events_t *ev)
{
    if (ev->closing)
        return;
    int64_t now = (int64_t)tine_now_unix_ms();
    int64_t wait = SCHED_MAX_SLEEP_MS;
    for (size_t i = 0; i < ev->nscheds; i++) {
        int64_t d = ev->scheds[i].next_ms - now;
        if (d < wait)
            wait = d < 0 ? 0 : d;
    }
    if (ev->nscheds == 0) {
        uv_timer_stop(&ev->sched_timer);
        return;
    }
    uv_timer_start(&ev->sched_timer, on_sched_timer, (uint64_t)wait, 0);
}

void ev__schedule_app(ev_events_t *ev, const char *app, const reg_app_version_t *v)
{
    size_t o = 0;
    for (size_t i = 0; i < ev->nscheds; i++) {
        if (strcmp(ev->scheds[i].app, app) == 0)
            sched_free_one(&ev->scheds[i]);
        else
            ev->scheds[o++] = ev->scheds[i];
    }
    ev->nscheds = o;
    int64_t now = (int64_t)tine_now_unix_ms();
    for (size_t t = 0; v && t < v->manifest->triggers_len; t++) {
        const reg_trigger_t *tr = &v->manifest->triggers[t];
        if (tr->on != REG_TRIGGER_SCHEDULE || tr->cron == NULL)
            continue;
        int64_t next = 0;
        if (reg_cron_next(tr->cron, now, &next) != 0)
            continue;
        ev->scheds = xrealloc(ev->scheds, (ev->nscheds + 1) * sizeof(*ev->scheds));
        ev__sched_t *s = &ev->scheds[ev->nscheds++];
        s->app = xstrdup(app);
        s->trigger = t;
        s->function = xstrdup(tr->function);
        s->cron = xstrdup(tr->cron);
        s->attempts = tr->attempts;
        s->next_ms = next;
    }
    sched_arm(ev);
}

void ev__schedule_init(ev_events_t *ev)
{
    ev__timer_init(ev, &ev->sched_timer);
}

void ev__schedule_stop(ev_events_t *ev)
{
    uv_timer_stop(&ev->sched_timer);
    ev__handle_close(ev, (uv_handle_t *)&ev->sched_timer);
    for (size_t i = 0; i < ev->nscheds; i++)
        sched_free_one(&ev->scheds[i]);
    free(ev->scheds);
    ev->scheds = NULL;
    ev->nscheds = 0;
}
