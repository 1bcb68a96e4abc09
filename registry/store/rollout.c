/* Automatic rollouts (docs/releases.md) and this node's counters per app
 * version.
 *
 * A rollout lives in Redis (tine:rollout:{app}): the new version, the one
 * it replaces, the manifest's steps and bounds, the step it is at and since
 * when, its state. Its split is an ordinary split (release.c), so every
 * node applies it as it applies any split. Every node counts what each
 * version answered (reg_rollouts_observe) and adds what the versions of a
 * rollout under way answered to tine:rollout:{app}:stats:{N} every tick.
 * One node drives (the holder of the tine:rollouts:lease key): each tick
 * it judges every running rollout's step (reg_rollout_decide) and moves the
 * split on, back, or makes the version live.
 *
 * The tick never waits on Redis: it asks for the lease on an asynchronous
 * connection of its own and does nothing more until the answer comes (a
 * tick while one is out is skipped, so a Redis that stopped answering costs
 * nothing and piles nothing up). Only once Redis has just answered does it
 * add the counters and, while a rollout runs, judge it with the store's
 * synchronous calls. */
#include "store_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define ROLLOUT_TICK_MS 200   /* flush counters, judge steps */
#define ROLLOUT_LEASE_MS 2000 /* a driver that stops is replaced after this */

/* One version's counters on this node: all since it was first served, and
 * what was not yet added to Redis (`unsent`). */
typedef struct {
    char *app;
    uint64_t version;
    reg_version_stats_t total;
    reg_version_stats_t unsent;
} rollout_counter_t;

struct reg_rollouts {
    uv_loop_t *loop;
    reg_live_t *live;
    char *node_id;
    uv_timer_t *timer; /* heap: freed in its close callback */
    rds_async_t *conn; /* the lease's: the tick's only call that is not judged by an answer */
    bool asking;       /* a lease request is out: ticks are skipped until it is answered */
    rollout_counter_t *counters;
    size_t ncounters;
    size_t last_hit; /* the counter observed last: calls come in runs */
};

/* --------------------------------------------------------------- counters */

/* The counter of app's version, made when missing. */
static rollout_counter_t *counter_get(reg_rollouts_t *r, const char *app, uint64_t version)
{
    if (r->last_hit < r->ncounters) {
        rollout_counter_t *c = &r->counters[r->last_hit];
        if (c->version == version && strcmp(c->app, app) == 0)
            return c;
    }
    for (size_t i = 0; i < r->ncounters; i++)
        if (r->counters[i].version == version && strcmp(r->counters[i].app, app) == 0) {
            r->last_hit = i;
            return &r->counters[i];
        }
    r->counters = xrealloc(r->counters, (r->ncounters + 1) * sizeof(*r->counters));
    rollout_counter_t *c = &r->counters[r->ncounters];
    memset(c, 0, sizeof(*c));
    c->app = xstrdup(app);
    c->version = version;
    r->last_hit = r->ncounters++;
    return c;
}

void reg_rollouts_observe(reg_rollouts_t *r, const char *app, uint64_t version, bool error, uint64_t duration_ns)
{
    if (r == NULL || app == NULL || version == 0)
        return;
    rollout_counter_t *c = counter_get(r, app, version);
    size_t b = reg_latency_bucket(duration_ns);
    reg_version_stats_t *s[2] = {&c->total, &c->unsent};
    for (int i = 0; i < 2; i++) {
        s[i]->requests++;
        s[i]->errors += error;
        s[i]->buckets[b]++;
    }
}

size_t reg_rollouts_counters(reg_rollouts_t *r, reg_version_counter_t *out, size_t max)
{
    for (size_t i = 0; r && i < r->ncounters && i < max; i++)
        out[i] = (reg_version_counter_t){r->counters[i].app, r->counters[i].version, &r->counters[i].total};
    return r ? r->ncounters : 0;
}

/* Adds the unsent counts of the versions of rollouts under way to Redis
 * (one pipeline); the others' are dropped: only a rollout reads them. */
static void flush_counters(reg_rollouts_t *r)
{
    reg_store_t *store = reg_live_store(r->live);
    char err[256];
    redisContext *ctx = NULL;
    size_t sent = 0;
    for (size_t i = 0; i < r->ncounters; i++) {
        rollout_counter_t *c = &r->counters[i];
        if (c->unsent.requests == 0)
            continue;
        const reg_release_t *rel = reg_live_release(r->live, c->app);
        bool wanted =
            rel && rel->rollout_version != 0 && (c->version == rel->rollout_version || c->version == rel->live);
        if (wanted && ctx == NULL)
            ctx = rds_sync_context(store->redis, err, sizeof err);
        if (!wanted || ctx == NULL) {
            memset(&c->unsent, 0, sizeof(c->unsent));
            continue;
        }
        char key[300];
        snprintf(key, sizeof key, RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64, c->app, c->version);
        redisAppendCommand(ctx, "HINCRBY %s req %" PRIu64, key, c->unsent.requests);
        redisAppendCommand(ctx, "HINCRBY %s err %" PRIu64, key, c->unsent.errors);
        sent += 2;
        for (size_t b = 0; b < REG_LATENCY_BUCKETS; b++)
            if (c->unsent.buckets[b]) {
                redisAppendCommand(ctx, "HINCRBY %s b%u %" PRIu64, key, (unsigned)b, c->unsent.buckets[b]);
                sent++;
            }
        redisAppendCommand(ctx, "PEXPIRE %s 86400000", key);
        sent++;
        memset(&c->unsent, 0, sizeof(c->unsent));
    }
    if (sent > 0 && rds_sync_replies(store->redis, sent, err, sizeof err) != 0)
        tine_log(TINE_LOG_WARN, "rollouts: cannot add this node's counters to redis: %s", err);
}

/* ------------------------------------------------------------ the record */

/* A rollout as Redis holds it. */
typedef struct {
    uint64_t version, from;
    reg_rollout_t cfg;
    size_t step;
    int64_t step_started_ms;
    int64_t ended_ms; /* when it passed, failed or was aborted (0: not over) */
    char state[16];
    char reason[512];
    char decision[512];
} rollout_rec_t;

/* Reads tine:rollout:{app}: 1 when there is one, 0 when not, -1 on a
 * Redis failure (message in err). */
static int rec_read(reg_store_t *s, const char *app, rollout_rec_t *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof(*rec));
    redisReply *r = reg__store_cmd(s, err, errlen, "HGETALL " RDS_KEY_ROLLOUT_PREFIX "%s", app);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "version") == 0)
            rec->version = strtoull(v, NULL, 10);
        else if (strcmp(k, "from") == 0)
            rec->from = strtoull(v, NULL, 10);
        else if (strcmp(k, "step") == 0)
            rec->step = (size_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "step_started_ms") == 0)
            rec->step_started_ms = strtoll(v, NULL, 10);
        else if (strcmp(k, "ended_ms") == 0)
            rec->ended_ms = strtoll(v, NULL, 10);
        else if (strcmp(k, "interval_ms") == 0)
            rec->cfg.interval_ms = strtoull(v, NULL, 10);
        else if (strcmp(k, "max_error_permyriad") == 0)
            rec->cfg.max_error_permyriad = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "max_p99_ms") == 0)
            rec->cfg.max_p99_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "min_requests") == 0)
            rec->cfg.min_requests = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "state") == 0)
            snprintf(rec->state, sizeof rec->state, "%s", v);
        else if (strcmp(k, "reason") == 0)
            snprintf(rec->reason, sizeof rec->reason, "%s", v);
        else if (strcmp(k, "decision") == 0)
            snprintf(rec->decision, sizeof rec->decision, "%s", v);
        else if (strcmp(k, "steps") == 0) {
            char *p = (char *)v;
            while (*p && rec->cfg.nsteps < REG_ROLLOUT_MAX_STEPS) {
                rec->cfg.steps[rec->cfg.nsteps++] = (uint32_t)strtoul(p, &p, 10);
                while (*p == ',')
                    p++;
            }
        }
    }
    freeReplyObject(r);
    rec->cfg.set = rec->cfg.nsteps > 0;
    if (rec->step >= rec->cfg.nsteps)
        rec->step = rec->cfg.nsteps ? rec->cfg.nsteps - 1 : 0;
    return 1;
}

/* Reads tine:rollout:{app}:stats:{version} into *st (zero when absent). */
static int stats_read(reg_store_t *s, const char *app, uint64_t version, reg_version_stats_t *st, char *err,
                      size_t errlen)
{
    memset(st, 0, sizeof(*st));
    redisReply *r = reg__store_cmd(s, err, errlen, "HGETALL " RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64, app, version);
    if (r == NULL)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        uint64_t n = strtoull(v, NULL, 10);
        if (strcmp(k, "req") == 0)
            st->requests = n;
        else if (strcmp(k, "err") == 0)
            st->errors = n;
        else if (k[0] == 'b' && strtoul(k + 1, NULL, 10) < REG_LATENCY_BUCKETS)
            st->buckets[strtoul(k + 1, NULL, 10)] = n;
    }
    freeReplyObject(r);
    return 0;
}

/* Moves a rollout from step `step` (checked: another driver may have moved
 * it) to a new state: ARGV[3] "step" (to step ARGV[4], percent ARGV[5]),
 * "failed"/"aborted" (the split ends: the previous version serves every
 * client), "passed", "paused", "running"; with reason ARGV[6]; announced.
 * Returns 1 when done, 0 when the rollout was not in step `step` or not in
 * an expected state. */
static const char move_script[] =
    "local st = redis.call('HGET', KEYS[1], 'state') "
    "if ARGV[1] ~= '*' and redis.call('HGET', KEYS[1], 'step') ~= ARGV[1] then return 0 end "
    "local to = ARGV[3] "
    "if to == 'paused' and st ~= 'running' then return 0 end "
    "if to == 'running' and st ~= 'paused' then return 0 end "
    "if to ~= 'paused' and to ~= 'running' and to ~= 'aborted' and st ~= 'running' then return 0 end "
    "if to == 'aborted' and st ~= 'running' and st ~= 'paused' then return 0 end "
    "if to == 'step' then "
    "  redis.call('HSET', KEYS[1], 'step', ARGV[4], 'step_started_ms', ARGV[2]) "
    "  redis.call('HSET', KEYS[2], 'version', redis.call('HGET', KEYS[1], 'version'), 'percent', ARGV[5]) "
    "  redis.call('DEL', KEYS[4], KEYS[5]) "
    "elseif to == 'running' then "
    "  redis.call('HSET', KEYS[1], 'state', 'running', 'step_started_ms', ARGV[2]) "
    "else "
    "  redis.call('HSET', KEYS[1], 'state', to, 'ended_ms', ARGV[2]) "
    "  if to ~= 'paused' then redis.call('SREM', KEYS[3], ARGV[7]) end "
    "  if to == 'failed' or to == 'aborted' then redis.call('DEL', KEYS[2]) end "
    "end "
    "redis.call('HSET', KEYS[1], 'reason', ARGV[6], 'decision', ARGV[6]) "
    "redis.call('PUBLISH', ARGV[8], ARGV[7] .. ' release') "
    "return 1";

/* Runs move_script for app (from step `step`, or any with SIZE_MAX). */
static int rec_move(reg_store_t *s, const char *app, const rollout_rec_t *rec, size_t step, const char *to,
                    size_t new_step, unsigned percent, const char *reason, char *err, size_t errlen)
{
    char from_step[24], now[24], ns[24], pc[16];
    if (step == SIZE_MAX)
        snprintf(from_step, sizeof from_step, "*");
    else
        snprintf(from_step, sizeof from_step, "%zu", step);
    snprintf(now, sizeof now, "%" PRId64, (int64_t)tine_now_unix_ms());
    snprintf(ns, sizeof ns, "%zu", new_step);
    snprintf(pc, sizeof pc, "%u", percent);
    redisReply *r = reg__store_cmd(s, err, errlen,
                                   "EVAL %s 5 " RDS_KEY_ROLLOUT_PREFIX "%s " RDS_KEY_APP_PREFIX
                                   "%s:split " RDS_KEY_ROLLOUTS " " RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64
                                   " " RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64 " %s %s %s %s %s %s %s %s",
                                   move_script, app, app, app, rec->version, app, rec->from, from_step, now, to, ns, pc,
                                   reason, app, RDS_CHANNEL_DEPLOYS);
    if (r == NULL)
        return -1;
    int done = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return done;
}

/* ------------------------------------------------------------- the driver */

/* Judges app's rollout and moves it when its step is decided. */
static void drive_one(reg_rollouts_t *r, const char *app)
{
    reg_store_t *s = reg_live_store(r->live);
    char err[512];
    rollout_rec_t rec;
    if (rec_read(s, app, &rec, err, sizeof err) != 1 || strcmp(rec.state, "running") != 0 || !rec.cfg.set)
        return;
    reg_version_stats_t st;
    if (stats_read(s, app, rec.version, &st, err, sizeof err) != 0)
        return;
    bool over = (int64_t)tine_now_unix_ms() - rec.step_started_ms >= (int64_t)rec.cfg.interval_ms;
    char why[512];
    reg_rollout_decision_t d = reg_rollout_decide(&rec.cfg, &st, over, why, sizeof why);
    if (d == REG_ROLLOUT_WAIT) {
        if (strcmp(why, rec.decision) != 0) {
            redisReply *x =
                reg__store_cmd(s, err, sizeof err, "HSET " RDS_KEY_ROLLOUT_PREFIX "%s decision %s", app, why);
            freeReplyObject(x);
        }
        return;
    }
    char reason[700];
    if (d == REG_ROLLOUT_BREACH) {
        snprintf(reason, sizeof reason, "step %zu (%u%%): %s; version %" PRIu64 " serves every client again",
                 rec.step + 1, rec.cfg.steps[rec.step], why, rec.from);
        if (rec_move(s, app, &rec, rec.step, "failed", 0, 0, reason, err, sizeof err) == 1) {
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", app), "rollout of %s version %" PRIu64 " failed: %s", app,
                        rec.version, reason);
            reg_live_reload(r->live, app, err, sizeof err);
        }
        return;
    }
    if (rec.step + 1 < rec.cfg.nsteps) {
        snprintf(reason, sizeof reason, "step %zu (%u%%) passed: %s", rec.step + 1, rec.cfg.steps[rec.step], why);
        if (rec_move(s, app, &rec, rec.step, "step", rec.step + 1, rec.cfg.steps[rec.step + 1], reason, err,
                     sizeof err) == 1) {
            tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "rollout of %s version %" PRIu64 ": %u%% of clients",
                        app, rec.version, rec.cfg.steps[rec.step + 1]);
            reg_live_reload(r->live, app, err, sizeof err);
        }
        return;
    }
    /* The last step passed: live (the split to it ends), then marked passed. */
    if (reg__store_rollout_promote(s, app, rec.version, err, sizeof err) != 0) {
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", app), "rollout of %s: cannot make version %" PRIu64 " live: %s",
                    app, rec.version, err);
        return;
    }
    snprintf(reason, sizeof reason, "every step passed: version %" PRIu64 " is live", rec.version);
    rec_move(s, app, &rec, rec.step, "passed", 0, 0, reason, err, sizeof err);
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "rollout of %s: %s", app, reason);
    reg_live_reload(r->live, app, err, sizeof err);
}

/* Takes or keeps the lease and lists the rollouts to drive ({} when another
 * node holds the lease or none runs). */
static const char lease_script[] = "local holder = redis.call('GET', KEYS[1]) "
                                   "if holder and holder ~= ARGV[1] then return {} end "
                                   "local apps = redis.call('SMEMBERS', KEYS[2]) "
                                   "if #apps == 0 then "
                                   "  if holder then redis.call('DEL', KEYS[1]) end "
                                   "  return {} end "
                                   "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                   "return apps";

/* The lease's answer: the rollouts this node drives (none when another
 * node holds the lease or none runs), or NULL when Redis did not answer
 * (the connection comes back by itself; the next tick asks again). Redis
 * has just answered, so the counters are added now and the rollouts judged. */
static void on_lease(void *data, redisReply *x)
{
    reg_rollouts_t *r = data;
    r->asking = false;
    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        if (x)
            tine_log(TINE_LOG_WARN, "rollouts: the lease script failed: %s", x->str);
        return;
    }
    flush_counters(r);
    for (size_t i = 0; x->type == REDIS_REPLY_ARRAY && i < x->elements; i++)
        if (x->element[i]->type == REDIS_REPLY_STRING)
            drive_one(r, x->element[i]->str);
}

/* Every tick: asks for the lease (on_lease does the rest), unless the last
 * request is still out or the apps are not loaded yet. */
static void on_tick(uv_timer_t *t)
{
    reg_rollouts_t *r = t->data;
    if (r->asking || reg_live_unloaded(r->live))
        return;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", ROLLOUT_LEASE_MS);
    const char *argv[] = {"EVAL", lease_script, "2", RDS_KEY_ROLLOUTS_LEASE, RDS_KEY_ROLLOUTS, r->node_id, ttl};
    size_t lens[7];
    for (size_t i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    if (rds_async_command(r->conn, on_lease, r, 7, argv, lens) == 0)
        r->asking = true;
}

reg_rollouts_t *reg_rollouts_new(struct uv_loop_s *loop, reg_live_t *live, const char *redis_url, const char *node_id,
                                 char *err, size_t errlen)
{
    reg_rollouts_t *r = xcalloc(1, sizeof(*r));
    rds_async_config_t cfg = {.name = "registry-rollouts"};
    if (rds_async_new(loop, redis_url, &cfg, &r->conn, err, errlen) != 0) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->live = live;
    r->node_id = xstrdup(node_id);
    r->timer = xcalloc(1, sizeof(*r->timer));
    uv_timer_init(loop, r->timer);
    r->timer->data = r;
    uv_timer_start(r->timer, on_tick, ROLLOUT_TICK_MS, ROLLOUT_TICK_MS);
    return r;
}

/* The timer closed: frees it. */
static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void reg_rollouts_free(reg_rollouts_t *r)
{
    if (r == NULL)
        return;
    uv_close((uv_handle_t *)r->timer, on_timer_closed);
    rds_async_close(r->conn, false, NULL, NULL); /* a lease request out gets its NULL answer in here */
    for (size_t i = 0; i < r->ncounters; i++)
        free(r->counters[i].app);
    free(r->counters);
    free(r->node_id);
    free(r);
}

/* ----------------------------------------------------------- the commands */

int reg_store_rollout_start(reg_store_t *s, const char *app, uint64_t version, uint64_t from, const reg_rollout_t *cfg,
                            char *err, size_t errlen)
{
    char steps[64] = "", now[24];
    for (size_t i = 0; i < cfg->nsteps; i++)
        snprintf(steps + strlen(steps), sizeof steps - strlen(steps), "%s%u", i ? "," : "", cfg->steps[i]);
    snprintf(now, sizeof now, "%" PRId64, (int64_t)tine_now_unix_ms());
    static const char script[] =
        "local st = redis.call('HGET', KEYS[1], 'state') "
        "if st == 'running' or st == 'paused' then return redis.call('HGET', KEYS[1], 'version') end "
        "redis.call('DEL', KEYS[1], KEYS[4], KEYS[5]) "
        "redis.call('HSET', KEYS[1], 'version', ARGV[1], 'from', ARGV[2], 'steps', ARGV[3], 'interval_ms', ARGV[4], "
        "  'max_error_permyriad', ARGV[5], 'max_p99_ms', ARGV[6], 'min_requests', ARGV[7], 'step', '0', "
        "  'step_started_ms', ARGV[8], 'started_ms', ARGV[8], 'state', 'running', 'decision', 'the first step runs') "
        "redis.call('SADD', KEYS[3], ARGV[10]) "
        "redis.call('HSET', KEYS[2], 'version', ARGV[1], 'percent', ARGV[9]) "
        "redis.call('PUBLISH', ARGV[11], ARGV[10] .. ' release') "
        "return 0";
    redisReply *r = reg__store_cmd(
        s, err, errlen,
        "EVAL %s 5 " RDS_KEY_ROLLOUT_PREFIX "%s " RDS_KEY_APP_PREFIX "%s:split " RDS_KEY_ROLLOUTS
        " " RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64 " " RDS_KEY_ROLLOUT_PREFIX "%s:stats:%" PRIu64 " %" PRIu64
        " %" PRIu64 " %s %" PRIu64 " %u %u %u %s %u %s %s",
        script, app, app, app, version, app, from, version, from, steps, cfg->interval_ms, cfg->max_error_permyriad,
        cfg->max_p99_ms, cfg->min_requests, now, cfg->steps[0], app, RDS_CHANNEL_DEPLOYS);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_STRING) {
        snprintf(err, errlen,
                 "a rollout of %s version %s is under way: version %" PRIu64 " is stored, not rolled out (tine rollout "
                 "abort %s ends the other)",
                 app, r->str, version, app);
        freeReplyObject(r);
        return TINE_ECONFLICT;
    }
    freeReplyObject(r);
    char what[300];
    snprintf(what, sizeof what, "the rollout of %s version %" PRIu64 " started on the redis master", app, version);
    return reg__store_confirm(s, what, "tine rollout status to see it", err, errlen);
}

/* The stats of one version as JSON: requests, errors, p50/p99 in ms (null
 * without requests; the bound of the bucket holding them). */
static json_t *stats_json(uint64_t version, const reg_version_stats_t *st)
{
    uint32_t p50 = reg_stats_quantile_ms(st, 0.5), p99 = reg_stats_quantile_ms(st, 0.99);
    return json_pack("{s:I, s:I, s:I, s:o, s:o}", "version", (json_int_t)version, "requests", (json_int_t)st->requests,
                     "errors", (json_int_t)st->errors, "p50_ms",
                     st->requests && p50 != UINT32_MAX ? json_integer(p50) : json_null(), "p99_ms",
                     st->requests && p99 != UINT32_MAX ? json_integer(p99) : json_null());
}

int reg_store_rollout_status(reg_store_t *s, const char *app, struct json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    rollout_rec_t rec;
    int got = rec_read(s, app, &rec, err, errlen);
    if (got < 0)
        return TINE_EREDIS;
    if (got == 0) {
        snprintf(err, errlen, "%s has had no rollout (a deploy of a manifest with rollout: starts one)", app);
        return TINE_ENOTFOUND;
    }
    reg_version_stats_t a, b;
    if (stats_read(s, app, rec.version, &a, err, errlen) != 0 || stats_read(s, app, rec.from, &b, err, errlen) != 0)
        return TINE_EREDIS;
    json_t *steps = json_array();
    for (size_t i = 0; i < rec.cfg.nsteps; i++)
        json_array_append_new(steps, json_integer(rec.cfg.steps[i]));
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:o, s:i, s:i, s:I, s:I, s:i, s:i, s:i}", "app", app, "version",
                          (json_int_t)rec.version, "from", (json_int_t)rec.from, "state", rec.state, "steps", steps,
                          "step", (int)rec.step + 1, "percent", (int)(rec.cfg.nsteps ? rec.cfg.steps[rec.step] : 0),
                          "step_started_ms", (json_int_t)rec.step_started_ms, "interval_ms",
                          (json_int_t)rec.cfg.interval_ms, "max_error_permyriad", (int)rec.cfg.max_error_permyriad,
                          "max_p99_ms", (int)rec.cfg.max_p99_ms, "min_requests", (int)rec.cfg.min_requests);
    json_object_set_new(o, "decision", json_string(rec.decision));
    if (rec.reason[0] && strcmp(rec.state, "running") != 0)
        json_object_set_new(o, "reason", json_string(rec.reason));
    if (rec.ended_ms && strcmp(rec.state, "paused") != 0 && strcmp(rec.state, "running") != 0)
        json_object_set_new(o, "ended_ms", json_integer((json_int_t)rec.ended_ms));
    json_object_set_new(o, "versions", json_pack("[o, o]", stats_json(rec.version, &a), stats_json(rec.from, &b)));
    *out = o;
    return 0;
}

int reg_store_rollout_control(reg_store_t *s, const char *app, const char *verb, char *err, size_t errlen)
{
    rollout_rec_t rec;
    int got = rec_read(s, app, &rec, err, errlen);
    if (got < 0)
        return TINE_EREDIS;
    if (got == 0) {
        snprintf(err, errlen, "%s has no rollout", app);
        return TINE_ENOTFOUND;
    }
    const char *to = strcmp(verb, "pause") == 0 ? "paused" : strcmp(verb, "resume") == 0 ? "running" : "aborted";
    char reason[300];
    if (strcmp(to, "aborted") == 0)
        snprintf(reason, sizeof reason, "aborted by an operator: version %" PRIu64 " serves every client again",
                 rec.from);
    else if (strcmp(to, "paused") == 0)
        snprintf(reason, sizeof reason, "paused by an operator at step %zu (%u%%)", rec.step + 1,
                 rec.cfg.steps[rec.step]);
    else
        snprintf(reason, sizeof reason, "resumed by an operator: step %zu (%u%%) runs again", rec.step + 1,
                 rec.cfg.steps[rec.step]);
    int done = rec_move(s, app, &rec, SIZE_MAX, to, 0, 0, reason, err, errlen);
    if (done < 0)
        return TINE_EREDIS;
    if (done == 0) {
        snprintf(err, errlen, "the rollout of %s version %" PRIu64 " is %s: it cannot be %s", app, rec.version,
                 rec.state,
                 strcmp(verb, "pause") == 0    ? "paused"
                 : strcmp(verb, "resume") == 0 ? "resumed"
                                               : "aborted");
        return TINE_ECONFLICT;
    }
    char what[300];
    snprintf(what, sizeof what, "the rollout of %s was %s on the redis master", app, to);
    return reg__store_confirm(s, what, "do it again to be sure", err, errlen);
}
