/* Node lifecycle: each node refreshes its heartbeat key tine:node:{id}
 * (TTL 3 s) every second and registers in the hash tine:nodes (id -> start
 * time). Every node also runs one script each second that compares the hash
 * with the heartbeats: a node not yet announced gets tine.node.joined, a
 * node whose heartbeat expired gets tine.node.lost and leaves the hash. The
 * script is atomic, so each transition is announced once across the
 * cluster. The heartbeats also tell the dispatcher whose pending entries to
 * take over. */
#include "events_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEARTBEAT_MS 1000
#define HEARTBEAT_TTL_MS 3000

/* KEYS: the nodes hash, the announced hash, the stream. ARGV: heartbeat key
 * prefix, reporting node, now as RFC 3339. Returns the number of events. */
static const char lifecycle_lua[] =
    "local n = 0 "
    "local all = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #all, 2 do "
    "  local id, started = all[i], all[i + 1] "
    "  local alive = redis.call('EXISTS', ARGV[1] .. id) == 1 "
    "  local what = nil "
    "  if alive then "
    "    if redis.call('HGET', KEYS[2], id) ~= started then "
    "      redis.call('HSET', KEYS[2], id, started) "
    "      what = 'joined' "
    "    end "
    "  else "
    "    redis.call('HDEL', KEYS[1], id) "
    "    if redis.call('HDEL', KEYS[2], id) == 1 then what = 'lost' end "
    "  end "
    "  if what then "
    "    local ev = cjson.encode({specversion = '1.0', id = 'node:' .. id .. ':' .. what .. ':' .. started, "
    "      source = 'tine://' .. id, type = 'tine.node.' .. what, time = ARGV[3], subject = id, "
    "      datacontenttype = 'application/json', "
    "      data = {node = id, started_ms = tonumber(started), reported_by = ARGV[2]}}) "
    "    redis.call('XADD', KEYS[3], '*', 'app', '', 'event', ev) "
    "    n = n + 1 "
    "  end "
    "end "
    "return n";

/* The lifecycle script's reply: the next heartbeat may run it again; an error
 * is logged. */
static void on_lifecycle(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->nodes_busy = false;
    if (r && r->type == REDIS_REPLY_ERROR && !ev->closing)
        tine_log(TINE_LOG_WARN, "events: node lifecycle: %s", r->str);
}

/* Every second: refreshes this node's heartbeat and registration, then runs
 * the lifecycle script unless the last run is still out. */
static void on_heartbeat_timer(uv_timer_t *t)
{
    ev_events_t *ev = t->data;
    if (ev->closing || !rds_async_connected(ev->cmd))
        return;
    ev__args_t a = {0};
    ev__args_adds(&a, "SET");
    ev__args_addf(&a, RDS_KEY_NODE_PREFIX "%s", ev->node_id);
    ev__args_addf(&a, "%" PRIu64, ev->started_ms);
    ev__args_adds(&a, "PX");
    ev__args_addf(&a, "%d", HEARTBEAT_TTL_MS);
    ev__send(ev->cmd, NULL, NULL, &a);
    ev__args_adds(&a, "HSET");
    ev__args_adds(&a, RDS_KEY_NODES);
    ev__args_adds(&a, ev->node_id);
    ev__args_addf(&a, "%" PRIu64, ev->started_ms);
    ev__send(ev->cmd, NULL, NULL, &a);
    if (ev->nodes_busy)
        return;
    char now[40];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), now);
    ev__args_adds(&a, "EVAL");
    ev__args_adds(&a, lifecycle_lua);
    ev__args_adds(&a, "3");
    ev__args_adds(&a, RDS_KEY_NODES);
    ev__args_adds(&a, RDS_KEY_NODES_ANNOUNCED);
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, RDS_KEY_NODE_PREFIX);
    ev__args_adds(&a, ev->node_id);
    ev__args_adds(&a, now);
    ev->nodes_busy = ev__send(ev->cmd, on_lifecycle, ev, &a) == 0;
}

void ev__nodes_init(ev_events_t *ev)
{
    ev__timer_init(ev, &ev->hb_timer);
    uv_timer_start(&ev->hb_timer, on_heartbeat_timer, 50, HEARTBEAT_MS);
}

void ev__nodes_stop(ev_events_t *ev)
{
    uv_timer_stop(&ev->hb_timer);
    ev__handle_close(ev, (uv_handle_t *)&ev->hb_timer);
}
