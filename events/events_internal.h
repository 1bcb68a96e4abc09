/* Private to events/: the module's state and what its files share.
 * events.c: lifecycle, Redis connections, the app table, appends.
 * dispatch.c: the consumer group reader, invocations, retries, dead letters.
 * schedule.c, logtail.c, docker.c, nodes.c: the sources.
 * cloudevents.c, filter.c: parsers. */
#ifndef TINE_EVENTS_INTERNAL_H
#define TINE_EVENTS_INTERNAL_H

#include "events.h"
#include "tine_redis.h"

#include <uv.h>

#define EV_INFLIGHT_MAX 96 /* stream entries processed at once: below a function's queue (100) */
#define EV_DLQ_MAXLEN 10000 /* dead letters kept per app (approximately) */

/* ------------------------------------------------------------- filter.c */

typedef struct ev_filter ev_filter_t;

/* Compiles a filter pattern (NULL or "" matches everything). Returns 0, or
 * TINE_EINVAL with a message naming the column. */
int ev__filter_compile(const char *pattern, ev_filter_t **out, char *err, size_t errlen);
void ev__filter_free(ev_filter_t *f);

/* Whether a line matches. `fields` (may be NULL) is the record key=value
 * terms read when the line itself is not a JSON object. */
bool ev__filter_match(const ev_filter_t *f, const char *line, size_t len, json_t *fields);

/* -------------------------------------------------------- events.c: redis */

/* A command's arguments, copied. */
typedef struct {
    int argc;
    int cap;
    char **argv;
    size_t *lens;
} ev__args_t;

void ev__args_add(ev__args_t *a, const char *s, size_t len);
void ev__args_adds(ev__args_t *a, const char *s);
void ev__args_addf(ev__args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ev__args_dispose(ev__args_t *a);

/* Sends a command built in `a` (disposed either way) on one of the module's
 * connections. Returns 0, or TINE_EREDIS when the connection is down (the
 * callback is not called). A callback gets a NULL reply when the connection
 * drops first. */
int ev__send(rds_async_t *c, rds_reply_fn cb, void *priv, ev__args_t *a);

/* What one job of a committed stream entry did, for its trigger's list of
 * recent events (recent.c). */
typedef struct {
    const char *app, *function;
    const char *trigger; /* "event", "log" or "schedule" */
    const char *entry;   /* the stream entry's id */
    json_t *event;       /* the CloudEvent (type, source, id are kept) */
    const char *outcome; /* "ok", "retry", "dead" (to the dead letters) */
    uint32_t attempt;
    const char *invocation; /* the call's invocation id; NULL or "": it never ran */
    const char *reason;     /* why it failed; NULL when ok */
} ev__recent_t;

/* Adds r to its trigger's list: LPUSH, LTRIM and EXPIRE on ev->cmd (inside
 * the caller's MULTI). Returns 0 or TINE_EREDIS (connection down). */
int ev__recent_send(ev_events_t *ev, const ev__recent_t *r);

/* The value of field `name` in a stream entry's field/value array, or NULL. */
const char *ev__entry_field(redisReply *fields, const char *name);

/* Adds the XADD of one entry of the events stream to `a`: fields app,
 * event and, for entries meant for one function, target. */
void ev__args_xadd(ev__args_t *a, const char *app, const char *event_json, const char *target_json);

/* Appends one event (meant for `target` when not NULL), once per
 * `dedupe_key` across the cluster when that is not NULL (kept for ttl_s).
 * `cb` gets the reply: the entry id, nil when deduplicated, or NULL. */
int ev__append_one(ev_events_t *ev, const char *app, json_t *event, json_t *target, const char *dedupe_key,
                   unsigned ttl_s, rds_reply_fn cb, void *priv);

/* Appends one event that must not be lost (a schedule tick, a container
 * event): as ev__append_one with a dedupe key, but held and tried again
 * every 500 ms until Redis stored it (or found the key: stored before) and
 * a replica confirmed it, for up to 10 minutes; `what` names it in the log
 * lines. event and target are borrowed (kept as references). */
void ev__append_sure(ev_events_t *ev, const char *app, json_t *event, json_t *target, const char *dedupe_key,
                     unsigned ttl_s, const char *what);

/* A CloudEvent made by tine itself. Takes `data`. */
json_t *ev__make_event(const char *id, const char *type, const char *source, const char *subject, uint64_t time_ms,
                       json_t *data);

/* The target of an entry meant for one function. */
json_t *ev__target(const char *app, const char *function, const char *trigger, uint32_t attempt, uint32_t attempts);

/* ------------------------------------------------------------- app table */

/* The live version of an app known to the module, or NULL. */
reg_app_version_t *ev__app(ev_events_t *ev, const char *app);

/* ---------------------------------------------------------- dispatch.c */

typedef struct ev__entry ev__entry_t;
typedef struct ev__sure ev__sure_t;

/* The reading connection is up: (re)read this node's pending entries from
 * the start, then new ones. */
void ev__dispatch_on_up(ev_events_t *ev);
/* Periodic work: due retries back into the stream, entries of dead nodes. */
void ev__dispatch_tick(ev_events_t *ev, bool claim);
/* Stops: cancels invocations, frees entries (they stay pending in Redis). */
void ev__dispatch_stop(ev_events_t *ev);
/* Appends this node's pending entries to the stream again, for the other
 * nodes, acknowledges and deletes them, and removes the consumer, in one
 * script; cb gets the reply (the count handed back). */
int ev__dispatch_hand_back(ev_events_t *ev, rds_reply_fn cb, void *priv);

/* ---------------------------------------------------------- schedule.c */

void ev__schedule_init(ev_events_t *ev);
void ev__schedule_app(ev_events_t *ev, const char *app, const reg_app_version_t *v);
void ev__schedule_stop(ev_events_t *ev);

/* ----------------------------------------------------------- logtail.c */

typedef struct ev__follow ev__follow_t;

void ev__logtail_init(ev_events_t *ev);
void ev__logtail_app(ev_events_t *ev, const char *app, const reg_app_version_t *v);
void ev__logtail_stop(ev_events_t *ev);
/* Whether a resolved path lies under an allowed directory. */
bool ev__log_path_allowed(const ev_events_t *ev, const char *path, char *resolved, size_t reslen, char *err,
                          size_t errlen);

/* ------------------------------------------------------------ docker.c */

typedef struct ev__docker ev__docker_t;

ev__docker_t *ev__docker_start(ev_events_t *ev, const char *socket_path);
void ev__docker_stop(ev__docker_t *d);

/* ------------------------------------------------------------- nodes.c */

#define EV_HEARTBEAT_TTL_MS 3000  /* a node whose heartbeat is this old is gone */
#define EV_CLAIM_MIN_IDLE_MS 1000 /* a gone node's entry is claimed once idle this long */
#define EV_POOL_SAMPLES 60        /* sandbox samples a heartbeat carries (pool_history) */
#define EV_POOL_SAMPLE_MS 5000    /* one every this long: the last 5 minutes */
#define EV_STALL_MS 2000          /* checks of the heartbeats this far apart: Redis stalled or was away */

/* The Lua function judging(checked_key, ttl_ms, stall_ms) of the scripts
 * that judge nodes gone (nodes.c, dispatch.c): true when they may; false
 * for a heartbeat's TTL after a gap of more than stall_ms since the last
 * check (tine:nodes:checked), by Redis's clock. */
#define EV_JUDGING_LUA                                                                                                 \
    "local function judging(checked, ttl, stall) "                                                                     \
    "  local t = redis.call('TIME') "                                                                                  \
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "                                         \
    "  local prev = redis.call('HMGET', checked, 'last', 'after') "                                                    \
    "  local last, after = tonumber(prev[1]), tonumber(prev[2]) or 0 "                                                 \
    "  if not last or now - last > stall then after = now + ttl end "                                                  \
    "  redis.call('HSET', checked, 'last', now, 'after', after) "                                                      \
    "  return now >= after "                                                                                           \
    "end "

void ev__nodes_init(ev_events_t *ev);
void ev__nodes_stop(ev_events_t *ev);
/* Writes the heartbeat and status now (at connect, when the state changed). */
void ev__nodes_beat(ev_events_t *ev);
/* Deregisters the node (heartbeat, registration, drain request; status
 * gone, tine.node.left) and stops its heartbeat; cb gets the reply. */
int ev__nodes_leave(ev_events_t *ev, rds_reply_fn cb, void *priv);

/* ------------------------------------------------------------- the module */

typedef struct {
    char *app;
    size_t trigger;
    char *function;
    char *cron;
    uint32_t attempts;
    int64_t next_ms;
} ev__sched_t;

struct ev_events {
    uv_loop_t *loop;
    inv_invoker_t *inv;
    char *node_id;
    char **log_dirs; /* resolved */
    size_t nlog_dirs;
    uint32_t retry_base_ms;
    bool closing;
    bool draining; /* ev_drain: no new entries are read, no dead node's are claimed */
    int handles_open;

    rds_async_t *cmd;  /* commands */
    rds_async_t *blk;  /* XREADGROUP ... BLOCK */
    rds_sync_t *sync;  /* admin calls (dead letters, queue lengths) */
    char emit_prefix[17]; /* ids of events from tine.emit: {prefix}-{n} */
    uint64_t emitted;
    ev__sure_t *sure; /* appends held until stored and confirmed (ev__append_sure), newest first */
    size_t nsure;

    reg_app_map_t apps; /* the live version of each app, as ev_app_changed told */

    /* dispatch.c */
    ev__entry_t *entries;
    size_t inflight;
    bool reading;
    bool pending_phase;    /* reading this node's pending entries from cursor */
    bool read_was_pending; /* the outstanding read is of pending entries */
    bool rescan;           /* an acknowledgement failed: re-read pending entries */
    char cursor[64];
    uv_timer_t tick_timer;
    uint64_t ticks;
    bool mover_busy;
    bool claim_busy;
    uint64_t taken_over; /* entries claimed from lost nodes */

    /* schedule.c */
    ev__sched_t *scheds;
    size_t nscheds;
    uv_timer_t sched_timer;

    /* logtail.c */
    ev__follow_t *follows;
    uv_timer_t tail_timer;

    /* nodes.c */
    uv_timer_t hb_timer;
    uint64_t started_ms;
    bool nodes_busy;  /* a lifecycle script is out */
    bool beat_busy;   /* a heartbeat is out */
    bool drain_asked; /* on_drain_request was called */
    bool left;        /* deregistered: no more heartbeats */
    char *version;
    char host[256];
    uint32_t drain_grace_ms, drain_timeout_ms;
    void (*node_status)(void *data, ev_node_status_t *st);
    void (*on_drain_request)(void *data, const char *by);
    void *node_data;
    /* The node's sandboxes sampled every EV_POOL_SAMPLE_MS, the last
     * EV_POOL_SAMPLES of them (a ring), for the heartbeat's pool_history. */
    struct ev__pool_sample {
        uint64_t t_ms;
        uint32_t starting, idle, busy;
    } pool_ring[EV_POOL_SAMPLES];
    size_t pool_n, pool_next;
    /* ev_config_t.select_version */
    int (*select_version)(void *data, const char *app, const char *sel, reg_app_version_t **out, char *err,
                          size_t errlen);
    bool (*event_split)(void *data, const char *app, reg_app_version_t **v, unsigned *percent);
    ev_left_cb left_cb; /* ev_leave */
    void *left_data;
    int64_t handed_back; /* -1: the hand-back failed */
    char *leave_error;

    /* docker.c */
    ev__docker_t *docker;
};

/* Initialises a timer owned by the module (counted for the final free). */
void ev__timer_init(ev_events_t *ev, uv_timer_t *t);
/* Closes a handle owned by the module. */
void ev__handle_close(ev_events_t *ev, uv_handle_t *h);

#endif
