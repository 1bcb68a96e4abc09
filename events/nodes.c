/* Nodes of the cluster. Each node refreshes its heartbeat key
 * tine:node:{id} (TTL 3 s, its start time) every second, registers in the
 * hash tine:nodes (id -> start time) and writes its status (address,
 * version, state, sandboxes, calls in flight) into tine:nodes:info, in one
 * script that also hands back a drain request waiting in tine:drain:{id}.
 * Every node also runs one script each second that compares the hash with
 * the heartbeats: a node not yet announced gets tine.node.joined, a node
 * whose heartbeat expired gets tine.node.lost, leaves the hash and is
 * marked gone. The script is atomic, so each transition is announced once
 * across the cluster. A node that drains leaves by itself
 * (ev__nodes_leave: tine.node.left). The heartbeats also tell the
 * dispatcher whose pending entries to take over. Times in the status are
 * Redis's (TIME), so nodes with skewed clocks agree on ages.
 *
 * When Redis was stalled, failed over or away, every heartbeat may have
 * expired meanwhile: the checks (here and the dispatcher's claims) see it
 * as a gap in their own runs (one runs every second on every node) and
 * judge nobody for a heartbeat's TTL, the time every node needs to
 * refresh its own (tine:nodes:checked). */
#include "events_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEARTBEAT_MS 1000
#define GONE_KEPT_MS (3600 * 1000) /* a gone node stays listed this long */
#define DRAIN_REQUEST_TTL_S 3600

/* Lua shared by the scripts: Redis's clock in ms, and the CloudEvent of a
 * node's transition appended to the stream (KEYS[STREAM]). */
#define NODE_LUA_COMMON                                                                                                \
    "local function now_ms() local t = redis.call('TIME') "                                                            \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end "                                          \
    "local function node_event(stream, id, what, started, by, when) "                                                  \
    "  local ev = cjson.encode({specversion = '1.0', id = 'node:' .. id .. ':' .. what .. ':' .. started, "            \
    "    source = 'tine://' .. id, type = 'tine.node.' .. what, time = when, subject = id, "                           \
    "    datacontenttype = 'application/json', "                                                                       \
    "    data = {node = id, started_ms = tonumber(started), reported_by = by}}) "                                      \
    "  redis.call('XADD', stream, '*', 'app', '', 'event', ev) "                                                       \
    "end "                                                                                                             \
    "local function mark_gone(info, id, why, now) "                                                                    \
    "  local text = redis.call('HGET', info, id) "                                                                     \
    "  local ok, s = pcall(cjson.decode, text or '') "                                                                 \
    "  if not ok or type(s) ~= 'table' then s = {node = id} end "                                                      \
    "  s.state = 'gone' s.left = why s.left_ms = now "                                                                 \
    "  redis.call('HSET', info, id, cjson.encode(s)) "                                                                 \
    "end "

/* KEYS: the nodes hash, the announced hash, the stream, the info hash, the
 * checked hash. ARGV: heartbeat key prefix, reporting node, now as RFC
 * 3339, the heartbeat TTL and the stall threshold (ms). Joins are announced
 * at once, losses only while nodes may be judged. Returns the number of
 * events. */
/* clang-format off */
static const char lifecycle_lua[] =
    NODE_LUA_COMMON
    EV_JUDGING_LUA
    "local may_judge = judging(KEYS[5], tonumber(ARGV[4]), tonumber(ARGV[5])) "
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
    "  elseif may_judge then "
    "    redis.call('HDEL', KEYS[1], id) "
    "    mark_gone(KEYS[4], id, 'lost', now_ms()) "
    "    if redis.call('HDEL', KEYS[2], id) == 1 then what = 'lost' end "
    "  end "
    "  if what then "
    "    node_event(KEYS[3], id, what, started, ARGV[2], ARGV[3]) "
    "    n = n + 1 "
    "  end "
    "end "
    "return n";
/* clang-format on */

/* One heartbeat. KEYS: the heartbeat key, the nodes hash, the info hash,
 * the drain key. ARGV: the node, its start time, the TTL (ms), its status
 * (JSON). Stamps the status with Redis's time; returns who asked the node
 * to drain (nil: nobody). A drain request meant for an earlier node of the
 * same id is deleted. */
/* clang-format off */
static const char heartbeat_lua[] =
    NODE_LUA_COMMON
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "local s = cjson.decode(ARGV[4]) "
    "s.heartbeat_ms = now_ms() "
    "redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(s)) "
    "local req = redis.call('GET', KEYS[4]) "
    "if not req then return false end "
    "local ok, r = pcall(cjson.decode, req) "
    "if ok and type(r) == 'table' and tostring(r.started_ms) == ARGV[2] then return tostring(r.by or '?') end "
    "redis.call('DEL', KEYS[4]) "
    "return false";
/* clang-format on */

/* A node leaves after its drain. KEYS: the heartbeat key, the nodes hash,
 * the announced hash, the info hash, the drain key, the stream. ARGV: the
 * node, its start time, now as RFC 3339. Announces tine.node.left when its
 * join was announced. */
/* clang-format off */
static const char leave_lua[] =
    NODE_LUA_COMMON
    "redis.call('DEL', KEYS[1], KEYS[5]) "
    "redis.call('HDEL', KEYS[2], ARGV[1]) "
    "mark_gone(KEYS[4], ARGV[1], 'drained', now_ms()) "
    "if redis.call('HDEL', KEYS[3], ARGV[1]) == 1 then "
    "  node_event(KEYS[6], ARGV[1], 'left', ARGV[2], ARGV[1], ARGV[3]) "
    "  return 1 "
    "end "
    "return 0";
/* clang-format on */

/* The nodes listed: KEYS: the info hash. ARGV: heartbeat key prefix, how
 * long gone nodes are kept (ms). Returns Redis's time, then id, status,
 * alive (1|0) per node; forgets nodes gone longer than that. */
/* clang-format off */
static const char list_lua[] =
    NODE_LUA_COMMON
    "local now = now_ms() "
    "local out = {now} "
    "local all = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #all, 2 do "
    "  local id, text = all[i], all[i + 1] "
    "  local alive = redis.call('EXISTS', ARGV[1] .. id) == 1 "
    "  local ok, s = pcall(cjson.decode, text) "
    "  local last = ok and type(s) == 'table' and tonumber(s.heartbeat_ms) or 0 "
    "  if not alive and last < now - tonumber(ARGV[2]) then "
    "    redis.call('HDEL', KEYS[1], id) "
    "  else "
    "    table.insert(out, id) table.insert(out, text) table.insert(out, alive and 1 or 0) "
    "  end "
    "end "
    "return out";
/* clang-format on */

/* A drain request. KEYS: the heartbeat key, the drain key. ARGV: who asks,
 * the request's TTL (s). Returns the node's start time, or nil when it is
 * not up (nothing stored). */
/* clang-format off */
static const char drain_lua[] =
    NODE_LUA_COMMON
    "local started = redis.call('GET', KEYS[1]) "
    "if not started then return false end "
    "redis.call('SET', KEYS[2], cjson.encode({started_ms = tonumber(started), by = ARGV[1], at_ms = now_ms()}), "
    "  'EX', ARGV[2]) "
    "return started";
/* clang-format on */

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

/* The heartbeat script answered: a drain asked of this node (its request
 * text) is handed on once. */
static void on_heartbeat(void *priv, redisReply *reply)
{
    ev_events_t *ev = priv;
    redisReply *r = reply;
    ev->beat_busy = false;
    if (r == NULL || ev->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        tine_log(TINE_LOG_WARN, "events: heartbeat: %s", r->str);
        return;
    }
    if (r->type == REDIS_REPLY_STRING && !ev->drain_asked && ev->on_drain_request) {
        ev->drain_asked = true;
        ev->on_drain_request(ev->node_data, r->str);
    }
}

/* Keeps a sample of st's sandboxes in the node's ring when the last one is
 * EV_POOL_SAMPLE_MS old (or there is none), and returns the ring as
 * pool_history: {"step_ms", "t": [unix s], "starting", "idle", "busy"},
 * oldest first. */
static json_t *pool_history(ev_events_t *ev, const ev_node_status_t *st)
{
    uint64_t now = tine_now_unix_ms();
    size_t last = (ev->pool_next + EV_POOL_SAMPLES - 1) % EV_POOL_SAMPLES;
    if (ev->pool_n == 0 || now >= ev->pool_ring[last].t_ms + EV_POOL_SAMPLE_MS) {
        ev->pool_ring[ev->pool_next] = (struct ev__pool_sample){
            .t_ms = now, .starting = (uint32_t)st->starting, .idle = (uint32_t)st->idle, .busy = (uint32_t)st->busy};
        ev->pool_next = (ev->pool_next + 1) % EV_POOL_SAMPLES;
        if (ev->pool_n < EV_POOL_SAMPLES)
            ev->pool_n++;
    }
    json_t *t = json_array(), *starting = json_array(), *idle = json_array(), *busy = json_array();
    for (size_t i = 0; i < ev->pool_n; i++) {
        const struct ev__pool_sample *x =
            &ev->pool_ring[(ev->pool_next + EV_POOL_SAMPLES - ev->pool_n + i) % EV_POOL_SAMPLES];
        json_array_append_new(t, json_integer((json_int_t)(x->t_ms / 1000)));
        json_array_append_new(starting, json_integer(x->starting));
        json_array_append_new(idle, json_integer(x->idle));
        json_array_append_new(busy, json_integer(x->busy));
    }
    return json_pack("{s:i, s:o, s:o, s:o, s:o}", "step_ms", EV_POOL_SAMPLE_MS, "t", t, "starting", starting, "idle",
                     idle, "busy", busy);
}

/* The node's status as its heartbeat writes it (JSON text, fresh). */
static char *status_json(ev_events_t *ev)
{
    ev_node_status_t st = {.state = "ready", .address = ""};
    if (ev->node_status)
        ev->node_status(ev->node_data, &st);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "node", ev->node_id,
                          "address", st.address ? st.address : "", "version", ev->version ? ev->version : "", "host",
                          ev->host, "pid", (int)getpid(), "started_ms", (json_int_t)ev->started_ms, "uptime_ms",
                          (json_int_t)(tine_now_unix_ms() - ev->started_ms), "state", st.state, "sandboxes",
                          (json_int_t)st.sandboxes, "calls", (json_int_t)st.calls, "events", (json_int_t)ev->inflight,
                          "drain_grace_ms", (json_int_t)ev->drain_grace_ms, "drain_timeout_ms",
                          (json_int_t)ev->drain_timeout_ms);
    json_object_set_new(s, "pool",
                        json_pack("{s:I, s:I, s:I}", "starting", (json_int_t)st.starting, "idle", (json_int_t)st.idle,
                                  "busy", (json_int_t)st.busy));
    json_object_set_new(s, "pool_history", pool_history(ev, &st));
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return text;
}

void ev__nodes_beat(ev_events_t *ev)
{
    if (ev->closing || ev->left || ev->beat_busy || !rds_async_connected(ev->cmd))
        return;
    char *status = status_json(ev);
    ev__args_t a = {0};
    ev__args_adds(&a, "EVAL");
    ev__args_adds(&a, heartbeat_lua);
    ev__args_adds(&a, "4");
    ev__args_addf(&a, RDS_KEY_NODE_PREFIX "%s", ev->node_id);
    ev__args_adds(&a, RDS_KEY_NODES);
    ev__args_adds(&a, RDS_KEY_NODES_INFO);
    ev__args_addf(&a, RDS_KEY_DRAIN_PREFIX "%s", ev->node_id);
    ev__args_adds(&a, ev->node_id);
    ev__args_addf(&a, "%" PRIu64, ev->started_ms);
    ev__args_addf(&a, "%d", EV_HEARTBEAT_TTL_MS);
    ev__args_adds(&a, status);
    free(status);
    ev->beat_busy = ev__send(ev->cmd, on_heartbeat, ev, &a) == 0;
}

/* Every second: refreshes this node's heartbeat and registration, then runs
 * the lifecycle script unless the last run is still out. */
static void on_heartbeat_timer(uv_timer_t *t)
{
    ev_events_t *ev = t->data;
    if (ev->closing || ev->left || !rds_async_connected(ev->cmd))
        return;
    ev__nodes_beat(ev);
    if (ev->nodes_busy)
        return;
    char now[40];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), now);
    ev__args_t a = {0};
    ev__args_adds(&a, "EVAL");
    ev__args_adds(&a, lifecycle_lua);
    ev__args_adds(&a, "5");
    ev__args_adds(&a, RDS_KEY_NODES);
    ev__args_adds(&a, RDS_KEY_NODES_ANNOUNCED);
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, RDS_KEY_NODES_INFO);
    ev__args_adds(&a, RDS_KEY_NODES_CHECKED);
    ev__args_adds(&a, RDS_KEY_NODE_PREFIX);
    ev__args_adds(&a, ev->node_id);
    ev__args_adds(&a, now);
    ev__args_addf(&a, "%d", EV_HEARTBEAT_TTL_MS);
    ev__args_addf(&a, "%d", EV_STALL_MS);
    ev->nodes_busy = ev__send(ev->cmd, on_lifecycle, ev, &a) == 0;
}

void ev__nodes_init(ev_events_t *ev)
{
    if (gethostname(ev->host, sizeof ev->host - 1) != 0)
        snprintf(ev->host, sizeof ev->host, "?");
    ev__timer_init(ev, &ev->hb_timer);
    uv_timer_start(&ev->hb_timer, on_heartbeat_timer, 50, HEARTBEAT_MS);
}

void ev__nodes_stop(ev_events_t *ev)
{
    uv_timer_stop(&ev->hb_timer);
    ev__handle_close(ev, (uv_handle_t *)&ev->hb_timer);
}

int ev__nodes_leave(ev_events_t *ev, rds_reply_fn cb, void *priv)
{
    ev->left = true;
    uv_timer_stop(&ev->hb_timer);
    char now[40];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), now);
    ev__args_t a = {0};
    ev__args_adds(&a, "EVAL");
    ev__args_adds(&a, leave_lua);
    ev__args_adds(&a, "6");
    ev__args_addf(&a, RDS_KEY_NODE_PREFIX "%s", ev->node_id);
    ev__args_adds(&a, RDS_KEY_NODES);
    ev__args_adds(&a, RDS_KEY_NODES_ANNOUNCED);
    ev__args_adds(&a, RDS_KEY_NODES_INFO);
    ev__args_addf(&a, RDS_KEY_DRAIN_PREFIX "%s", ev->node_id);
    ev__args_adds(&a, RDS_KEY_EVENTS);
    ev__args_adds(&a, ev->node_id);
    ev__args_addf(&a, "%" PRIu64, ev->started_ms);
    ev__args_adds(&a, now);
    return ev__send(ev->cmd, cb, priv, &a);
}

/* ----------------------------------------------------- admin: list, drain */

/* An integer field of a status object (0 when absent). */
static json_int_t status_int(json_t *s, const char *name)
{
    json_t *v = json_object_get(s, name);
    return json_is_number(v) ? (json_int_t)json_number_value(v) : 0;
}

/* One node of the list, its fields in a fixed order: its status as
 * written, with `state` as of now (gone when its heartbeat expired,
 * whatever it last said), its ages in seconds by Redis's clock, and uptime
 * for a node that is up. */
static json_t *listed_node(const char *id, const char *text, bool alive, json_int_t now_ms)
{
    json_t *s = json_loads(text, 0, NULL);
    if (!json_is_object(s)) {
        json_decref(s);
        s = json_object();
    }
    json_int_t beat = status_int(s, "heartbeat_ms"), left_ms = status_int(s, "left_ms");
    const char *state = json_string_value(json_object_get(s, "state"));
    const char *left = json_string_value(json_object_get(s, "left"));
    if (!alive && (state == NULL || strcmp(state, "gone") != 0)) {
        /* Expired, and the lifecycle script has not seen it yet. */
        state = "gone";
        left = "lost";
    }
    json_t *o = json_pack("{s:s, s:s}", "node", id, "state", state ? state : "unknown");
    if (!alive)
        json_object_set_new(o, "left", json_string(left ? left : "lost"));
    static const char *const copied[] = {"address", "version", "host", "pid", "started_ms"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        if (json_object_get(s, copied[i]))
            json_object_set(o, copied[i], json_object_get(s, copied[i]));
    if (alive)
        json_object_set_new(o, "uptime_s",
                            json_real((double)(status_int(s, "uptime_ms") + (beat > 0 ? now_ms - beat : 0)) / 1000.0));
    json_object_set_new(o, "heartbeat_ms", json_integer(beat));
    json_object_set_new(o, "heartbeat_age_s", json_real(beat > 0 ? (double)(now_ms - beat) / 1000.0 : 0.0));
    if (!alive && left_ms > 0) {
        json_object_set_new(o, "left_ms", json_integer(left_ms));
        json_object_set_new(o, "left_age_s", json_real((double)(now_ms - left_ms) / 1000.0));
    }
    static const char *const counts[] = {"sandboxes", "calls", "events", "drain_grace_ms", "drain_timeout_ms"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_set_new(o, counts[i], json_integer(status_int(s, counts[i])));
    /* its sandboxes by state, now and sampled (left out by an older tined) */
    static const char *const pools[] = {"pool", "pool_history"};
    for (size_t i = 0; alive && i < sizeof pools / sizeof pools[0]; i++)
        if (json_is_object(json_object_get(s, pools[i])))
            json_object_set(o, pools[i], json_object_get(s, pools[i]));
    json_decref(s);
    return o;
}

static int compare_nodes(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "node"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "node"));
    return strcmp(x ? x : "", y ? y : "");
}

int ev_nodes_list(ev_events_t *ev, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    redisReply *r = rds_sync_command(ev->sync, err, errlen, "EVAL %s 1 %s %s %d", list_lua, RDS_KEY_NODES_INFO,
                                     RDS_KEY_NODE_PREFIX, GONE_KEPT_MS);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "redis: unexpected answer to the list of nodes");
        freeReplyObject(r);
        return TINE_EREDIS;
    }
    json_int_t now = (json_int_t)r->element[0]->integer;
    size_t n = (r->elements - 1) / 3;
    json_t **nodes = xcalloc(n + 1, sizeof(*nodes));
    size_t k = 0;
    for (size_t i = 1; i + 2 < r->elements; i += 3) {
        redisReply *id = r->element[i], *text = r->element[i + 1], *alive = r->element[i + 2];
        if (id->type != REDIS_REPLY_STRING || text->type != REDIS_REPLY_STRING)
            continue;
        nodes[k++] = listed_node(id->str, text->str, alive->type == REDIS_REPLY_INTEGER && alive->integer == 1, now);
    }
    freeReplyObject(r);
    qsort(nodes, k, sizeof(*nodes), compare_nodes);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(list, nodes[i]);
    free(nodes);
    *out = json_pack("{s:o, s:s}", "nodes", list, "answered_by", ev->node_id);
    return 0;
}

int ev_node_drain(ev_events_t *ev, const char *node, const char *by, char *err, size_t errlen)
{
    char *beat = xasprintf(RDS_KEY_NODE_PREFIX "%s", node);
    char *key = xasprintf(RDS_KEY_DRAIN_PREFIX "%s", node);
    redisReply *r =
        rds_sync_command(ev->sync, err, errlen, "EVAL %s 2 %s %s %s %d", drain_lua, beat, key, by, DRAIN_REQUEST_TTL_S);
    free(beat);
    free(key);
    if (r == NULL)
        return TINE_EREDIS;
    bool up = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    if (!up) {
        snprintf(err, errlen, "no node named '%s' is up (tine nodes lists them)", node);
        return TINE_ENOTFOUND;
    }
    char why[512];
    if (rds_sync_wait_replicas(ev->sync, why, sizeof why) != 0) {
        snprintf(err, errlen, "the drain of %s was asked on the redis master, but %s; ask again", node, why);
        return TINE_EREDIS;
    }
    return 0;
}
