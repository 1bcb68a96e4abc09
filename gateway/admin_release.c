/* The release endpoints of the admin API (docs/releases.md): promote a
 * stored version, name versions with tags, split traffic, show and steer
 * rollouts, this node's counters per version. Each change is made in
 * Redis, announced to every node, and applied on this node before the
 * answer. */
#include "gateway_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads {"version": N[, "percent": P[, "events": B]]} from the body: N >= 1
 * into *version, P into *percent when percent is not NULL (then required),
 * B (default false) into *events when events is not NULL. Answers 400 and
 * returns -1 when the body is not that. */
static int read_body(h2o_req_t *req, uint64_t *version, unsigned *percent, bool *events)
{
    json_error_t jerr;
    json_t *body = req->entity.len ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL;
    json_t *v = json_object_get(body, "version");
    json_t *p = json_object_get(body, "percent");
    const char *want =
        percent ? "{\"version\": N, \"percent\": P} with N >= 1 and 0 <= P <= 100" : "{\"version\": N} with N >= 1";
    if (!json_is_object(body) || !json_is_integer(v) || json_integer_value(v) < 1) {
        gw__send_error(req, 400, "body: expected %s%s", want,
                       json_is_object(body) && v == NULL ? " (version is missing)" : "");
        json_decref(body);
        return -1;
    }
    if (percent && (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 100)) {
        gw__send_error(req, 400, "body: percent: expected a whole number from 0 to 100, %s",
                       p == NULL ? "it is missing" : "not that");
        json_decref(body);
        return -1;
    }
    json_t *ev = json_object_get(body, "events");
    if (events && ev != NULL && !json_is_boolean(ev)) {
        gw__send_error(req, 400, "body: events: expected true or false");
        json_decref(body);
        return -1;
    }
    *version = (uint64_t)json_integer_value(v);
    if (percent)
        *percent = (unsigned)json_integer_value(p);
    if (events)
        *events = json_is_true(ev);
    json_decref(body);
    return 0;
}

/* The HTTP status of a store error. */
static int store_status(int rc)
{
    return rc == TINE_ENOTFOUND ? 404 : rc == TINE_EINVAL ? 400 : rc == TINE_ECONFLICT ? 409 : 503;
}

/* Applies a change on this node before answering `answer` (201/200), or
 * says that the change is made but this node could not load it. */
static void applied(gw_server_t *gw, h2o_req_t *req, const char *app, json_t *answer)
{
    char err[512];
    if (reg_live_reload(gw->live, app, err, sizeof err) != 0) {
        json_decref(answer);
        gw__send_error(req, 503, "the change of %s is stored, but this node cannot apply it yet: %s (it retries)", app,
                       err);
        return;
    }
    gw__send_json(req, 200, answer);
}

/* POST /apps/APP/promote {"version": N}: makes stored version N live. */
static void admin_promote(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t version;
    if (read_body(req, &version, NULL, NULL) != 0)
        return;
    char err[512];
    int rc = reg_store_promote(reg_live_store(gw->live), app, version, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "promoted %s version %" PRIu64, app, version);
    applied(gw, req, app, json_pack("{s:s, s:I}", "app", app, "live", (json_int_t)version));
}

/* PUT /apps/APP/tags/TAG {"version": N}, DELETE /apps/APP/tags/TAG. */
static void admin_tag(gw_server_t *gw, h2o_req_t *req, const char *app, const char *tag, bool remove)
{
    uint64_t version = 0;
    if (!remove && read_body(req, &version, NULL, NULL) != 0)
        return;
    char err[512];
    int rc = reg_store_tag(reg_live_store(gw->live), app, tag, version, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    json_t *answer = json_pack("{s:s, s:s}", "app", app, "tag", tag);
    json_object_set_new(answer, "version", remove ? json_null() : json_integer((json_int_t)version));
    applied(gw, req, app, answer);
}

/* PUT /apps/APP/split {"version": N, "percent": P[, "events": true]},
 * DELETE /apps/APP/split. */
static void admin_split(gw_server_t *gw, h2o_req_t *req, const char *app, bool remove)
{
    uint64_t version = 0;
    unsigned percent = 0;
    bool events = false;
    if (!remove && read_body(req, &version, &percent, &events) != 0)
        return;
    char err[512];
    int rc = reg_store_split(reg_live_store(gw->live), app, version, percent, events, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    json_t *answer = json_pack("{s:s}", "app", app);
    json_object_set_new(answer, "split",
                        remove ? json_null()
                               : json_pack("{s:I, s:i, s:b}", "version", (json_int_t)version, "percent", (int)percent,
                                           "events", events));
    applied(gw, req, app, answer);
}

/* GET /apps/APP/rollout: the app's rollout, under way or the last one. */
static void admin_rollout_status(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    char err[512];
    json_t *o = NULL;
    int rc = reg_store_rollout_status(reg_live_store(gw->live), app, &o, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    gw__send_json(req, 200, o);
}

/* POST /apps/APP/rollout/{pause,resume,abort}. */
static void admin_rollout_control(gw_server_t *gw, h2o_req_t *req, const char *app, const char *verb)
{
    char err[512];
    int rc = reg_store_rollout_control(reg_live_store(gw->live), app, verb, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    json_t *o = NULL;
    if (reg_store_rollout_status(reg_live_store(gw->live), app, &o, err, sizeof err) != 0)
        o = json_pack("{s:s}", "app", app);
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "rollout of %s: %s", app, verb);
    applied(gw, req, app, o);
}

/* GET /apps/APP/counters: what each version of the app answered on this
 * node since it started: requests, errors, latency histogram. */
static void admin_counters(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    size_t n = reg_rollouts_counters(gw->rollouts, NULL, 0);
    reg_version_counter_t *c = xcalloc(n + 1, sizeof(*c));
    reg_rollouts_counters(gw->rollouts, c, n);
    json_t *versions = json_array();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].app, app) != 0)
            continue;
        json_t *hist = json_object();
        uint64_t cum = 0;
        for (size_t b = 0; b < REG_LATENCY_BUCKETS; b++) {
            char le[24];
            if (b < REG_LATENCY_BUCKETS - 1)
                snprintf(le, sizeof le, "%u", reg_latency_bounds_ms[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            cum += c[i].stats->buckets[b];
            json_object_set_new(hist, le, json_integer((json_int_t)cum));
        }
        json_t *v = json_pack("{s:I, s:I, s:I, s:o}", "version", (json_int_t)c[i].version, "requests",
                              (json_int_t)c[i].stats->requests, "errors", (json_int_t)c[i].stats->errors,
                              "latency_ms_le", hist);
        uint32_t p50 = reg_stats_quantile_ms(c[i].stats, 0.5), p99 = reg_stats_quantile_ms(c[i].stats, 0.99);
        json_object_set_new(v, "p50_ms", c[i].stats->requests && p50 != UINT32_MAX ? json_integer(p50) : json_null());
        json_object_set_new(v, "p99_ms", c[i].stats->requests && p99 != UINT32_MAX ? json_integer(p99) : json_null());
        json_array_append_new(versions, v);
    }
    free(c);
    gw__send_json(req, 200, json_pack("{s:s, s:s, s:o}", "app", app, "node", gw->node_id, "versions", versions));
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

bool gw__admin_release(gw_server_t *gw, h2o_req_t *req, const char *app, const h2o_iovec_t *seg, size_t n)
{
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("promote"))) {
        if (method_is(req, "POST"))
            admin_promote(gw, req, app);
        else
            gw__send_error(req, 405, "use POST with {\"version\": N} to promote");
        return true;
    }
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("split"))) {
        if (method_is(req, "PUT") || method_is(req, "DELETE"))
            admin_split(gw, req, app, method_is(req, "DELETE"));
        else
            gw__send_error(req, 405, "use PUT with {\"version\": N, \"percent\": P} to split, DELETE to end it");
        return true;
    }
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("rollout"))) {
        if (method_is(req, "GET"))
            admin_rollout_status(gw, req, app);
        else
            gw__send_error(req, 405, "use GET to show the rollout");
        return true;
    }
    if (n == 4 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("rollout")) &&
        (h2o_memis(seg[3].base, seg[3].len, H2O_STRLIT("pause")) ||
         h2o_memis(seg[3].base, seg[3].len, H2O_STRLIT("resume")) ||
         h2o_memis(seg[3].base, seg[3].len, H2O_STRLIT("abort")))) {
        char *verb = xstrndup(seg[3].base, seg[3].len);
        if (method_is(req, "POST"))
            admin_rollout_control(gw, req, app, verb);
        else
            gw__send_error(req, 405, "use POST to %s the rollout", verb);
        free(verb);
        return true;
    }
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("counters"))) {
        if (method_is(req, "GET"))
            admin_counters(gw, req, app);
        else
            gw__send_error(req, 405, "use GET to read the counters");
        return true;
    }
    if (n == 4 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("tags"))) {
        char *tag = xstrndup(seg[3].base, seg[3].len);
        if (method_is(req, "PUT") || method_is(req, "DELETE"))
            admin_tag(gw, req, app, tag, method_is(req, "DELETE"));
        else
            gw__send_error(req, 405, "use PUT with {\"version\": N} to tag, DELETE to remove the tag");
        free(tag);
        return true;
    }
    return false;
}
