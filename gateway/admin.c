/* The admin API under /_tine/v1/ (see docs/admin-api.md): deploy, list apps
 * and versions, roll back, prune, delete, show an app's wiring, invoke a
 * function, health and readiness, and the node's sandboxes: list, evict,
 * scale. */
#include "auth.h"
#include "billing.h"
#include "events.h"
#include "gateway_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Compares in time independent of where the strings differ. */
static int token_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return diff == 0;
}

int gw__bearer_ok(h2o_req_t *req, const char *token)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return 0;
    return token_equal(v.base + 7, v.len - 7, token);
}

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* Splits "/a/b/c" into at most `max` segments (pointers into path). */
static size_t split_path(const char *path, size_t len, h2o_iovec_t *segs, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (n == max)
            return max + 1;
        segs[n++] = h2o_iovec_init(path + start, i - start);
    }
    return n;
}

/* A fresh NUL-terminated copy of the path segment s. */
static char *seg_dup(h2o_iovec_t s)
{
    return xstrndup(s.base, s.len);
}

/* ms since the epoch as "2026-01-02T03:04:05Z" (UTC, no milliseconds) in out. */
static void iso8601(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Adds what this node serves of app: "serving" (the version it serves, 0
 * for none) and, when it cannot load the live version, "problem" (why). */
static void serving_fields(gw_server_t *gw, json_t *o, const char *app)
{
    reg_app_version_t *v = reg_live_get(gw->live, app, strlen(app));
    json_object_set_new(o, "serving", json_integer(v ? (json_int_t)v->version : 0));
    const char *why = reg_live_failure(gw->live, app, NULL);
    if (why)
        json_object_set_new(o, "problem", json_string(why));
}

/* GET /apps: every stored app with its live version, its count of versions
 * and what this node serves; 503 without Redis. */
static void admin_apps(gw_server_t *gw, h2o_req_t *req)
{
    reg_store_t *store = reg_live_store(gw->live);
    char **names = NULL;
    size_t n = 0;
    if (reg_store_list_apps(store, &names, &n) != 0) {
        gw__send_error(req, 503, "redis is unreachable");
        return;
    }
    json_t *apps = json_array();
    const gw_caller_t *caller = gw__caller(req);
    for (size_t i = 0; i < n; i++) {
        char *ns = gw__app_namespace(gw, names[i]);
        if (!gw__caller_sees(caller, names[i], ns)) { /* another namespace's, or app's */
            free(ns);
            free(names[i]);
            continue;
        }
        uint64_t live = 0;
        reg_store_live_version(store, names[i], &live);
        reg_version_info_t *vs = NULL;
        size_t nv = 0;
        reg_store_list_versions(store, names[i], &vs, &nv);
        free(vs);
        json_t *a = json_pack("{s:s, s:s, s:I, s:I}", "app", names[i], "namespace", ns ? ns : REG_DEFAULT_NAMESPACE,
                              "live", (json_int_t)live, "versions", (json_int_t)nv);
        free(ns);
        serving_fields(gw, a, names[i]);
        json_array_append_new(apps, a);
        free(names[i]);
    }
    free(names);
    gw__send_json(req, 200, json_pack("{s:o}", "apps", apps));
}

/* Whether the query has name=1 (or name=true, or a bare name). */
static int query_flag(h2o_req_t *req, const char *name);

/* The version this node serves of app (0 for none). */
static uint64_t served_version(gw_server_t *gw, const char *app)
{
    reg_app_version_t *v = reg_live_get(gw->live, app, strlen(app));
    return v ? v->version : 0;
}

/* Sends {"error", "app", "version", "live", "serving"}: a deploy that did not
 * end with this node serving the new version. */
static void deploy_failed(gw_server_t *gw, h2o_req_t *req, int status, const char *app, uint64_t version, uint64_t live,
                          const char *msg)
{
    gw__send_json(req, status,
                  json_pack("{s:s, s:s, s:I, s:I, s:I}", "error", msg, "app", app, "version", (json_int_t)version,
                            "live", (json_int_t)live, "serving", (json_int_t)served_version(gw, app)));
}

/* "version N", or "no version" for 0, into buf. */
static const char *live_text(uint64_t live, char *buf, size_t len)
{
    if (live == 0)
        return "no version";
    snprintf(buf, len, "version %" PRIu64, live);
    return buf;
}

/* Answers 503: `version` is live but this node cannot load it (why). */
static void deploy_unloadable(gw_server_t *gw, h2o_req_t *req, const char *app, uint64_t version, const char *why)
{
    char serves[48];
    char *msg = xasprintf("%s version %" PRIu64 " is live, but this node cannot load it: %s; it serves %s and retries",
                          app, version, why, live_text(served_version(gw, app), serves, sizeof(serves)));
    deploy_failed(gw, req, 503, app, version, version, msg);
    free(msg);
}

/* PUT /apps/{app}[?force=1]: validates the bundle, answers "unchanged" when
 * it is the live version's content (or refuses when it is an older
 * version's, without rolling back), else stores it as the next version,
 * writes its files on this node, makes it live and loads it. The answer
 * says whether this node serves it: a version it cannot write is not made
 * live; one made live that it cannot load is reported as such. */
static void admin_deploy(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    if (req->entity.len > gw->max_bundle) {
        gw__send_error(req, 413, "bundle of %zu bytes is over the limit of %zu bytes", req->entity.len,
                       gw->max_bundle);
        return;
    }
    char err[1024];
    reg_bundle_limits_t limits = {.max_total = gw->max_bundle * 8, .max_files = 10000};
    reg_bundle_t *b = NULL;
    int r = reg_bundle_read(req->entity.base, req->entity.len, &limits, &b, err, sizeof(err));
    if (r != 0) {
        gw__send_error(req, r == TINE_ETOOBIG ? 413 : 400, "%s", err);
        return;
    }
    if (strcmp(b->manifest->app, app) != 0) {
        gw__send_error(req, 400, "%s: app: the manifest names app '%s' but it was deployed as '%s'",
                       b->manifest_path, b->manifest->app, app);
        reg_bundle_free(b);
        return;
    }
    if (gw__deploy_namespace_check(gw, req, b->manifest, b->manifest_path) != 0) {
        reg_bundle_free(b);
        return;
    }
    /* What this node does not allow: log files outside --log-paths. */
    if (ev_check_manifest(gw->events, b->manifest, b->manifest_path, err, sizeof(err)) != 0) {
        gw__send_error(req, 400, "%s", err);
        reg_bundle_free(b);
        return;
    }
    /* The artifact's digest: what `tine versions` shows and every cluster
     * computes alike ("" only when out of memory). */
    char digest[65] = "";
    if (reg_bundle_digest(b, digest, err, sizeof(err)) != 0)
        digest[0] = '\0';
    reg_store_t *store = reg_live_store(gw->live);
    uint64_t live = 0, same = 0, version = 0, newer = 0;
    char lt[48];
    if (reg_store_live_version(store, app, &live) != 0 || reg_store_find_identical(store, b, &same) != 0) {
        reg_bundle_free(b);
        gw__send_error(req, 503, "deploy of %s failed: redis is unreachable", app);
        return;
    }
    if (same != 0 && !query_flag(req, "force")) {
        reg_bundle_free(b);
        if (same == live && served_version(gw, app) == live) {
            gw__send_json(req, 200,
                          json_pack("{s:s, s:I, s:I, s:b, s:s}", "app", app, "version", (json_int_t)live, "live",
                                    (json_int_t)live, "unchanged", 1, "digest", digest));
        } else if (same == live) {
            /* Stored and live, but not served here: reload, and say how it went. */
            if (reg_live_reload(gw->live, app, err, sizeof(err)) == 0)
                gw__send_json(req, 200,
                              json_pack("{s:s, s:I, s:I, s:b, s:s}", "app", app, "version", (json_int_t)live,
                                        "live", (json_int_t)live, "unchanged", 1, "digest", digest));
            else
                deploy_unloadable(gw, req, app, live, err);
        } else {
            char *msg = xasprintf("%s: this bundle is version %" PRIu64 ", and %s is live: nothing deployed (tine "
                                  "rollback %s %" PRIu64 " makes it live again; tine deploy --force stores it as a "
                                  "new version)",
                                  app, same, live_text(live, lt, sizeof(lt)), app, same);
            deploy_failed(gw, req, 409, app, same, live, msg);
            free(msg);
        }
        return;
    }
    uint64_t mark = 0;
    r = reg_store_stage(store, b, &version, &mark, err, sizeof(err));
    if (r != 0) {
        reg_store_release_marks(store, mark);
        reg_bundle_free(b);
        gw__send_error(req, 503, "deploy of %s failed: %s", app, err);
        return;
    }
    /* This node must be able to serve it before anyone is told it is live. */
    r = reg_live_prepare(gw->live, b, version, err, sizeof(err));
    reg_rollout_t rollout = b->manifest->rollout; /* a deploy over a live version rolls out */
    reg_bundle_free(b);
    if (r != 0) {
        char e2[256];
        reg_store_unstage(store, app, version, e2, sizeof(e2));
        reg_store_release_marks(store, mark);
        char *msg = xasprintf("%s: version %" PRIu64 " was not deployed: this node cannot store its files (%s); "
                              "%s stays live",
                              app, version, err, live_text(live, lt, sizeof(lt)));
        tine_log(TINE_LOG_ERROR, "%s", msg);
        deploy_failed(gw, req, 503, app, version, live, msg);
        free(msg);
        return;
    }
    if (rollout.set && live != 0 && !query_flag(req, "stage")) {
        /* Stored, then a split of its first step: the rollout driver takes it on. */
        r = reg_store_stage_done(store, app, version, err, sizeof(err));
        if (r == 0)
            r = reg_store_rollout_start(store, app, version, live, &rollout, err, sizeof(err));
        reg_store_release_marks(store, mark);
        if (r != 0) {
            deploy_failed(gw, req, r == TINE_ECONFLICT ? 409 : 503, app, version, live, err);
            return;
        }
        if (reg_live_reload(gw->live, app, err, sizeof(err)) != 0) {
            deploy_unloadable(gw, req, app, live, err);
            return;
        }
        tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "rollout of %s version %" PRIu64 " started: %u%% of clients",
                    app, version, rollout.steps[0]);
        gw__send_json(req, 201,
                      json_pack("{s:s, s:I, s:I, s:{s:s, s:i}}", "app", app, "version", (json_int_t)version, "live",
                                (json_int_t)live, "rollout", "state", "running", "percent", (int)rollout.steps[0]));
        return;
    }
    if (query_flag(req, "stage")) {
        /* Stored, not live: tine promote makes it live, /<app>@N previews it. */
        r = reg_store_stage_done(store, app, version, err, sizeof(err));
        reg_store_release_marks(store, mark);
        if (r != 0) {
            deploy_failed(gw, req, 503, app, version, live, err);
            return;
        }
        tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "staged %s version %" PRIu64, app, version);
        gw__send_json(req, 201,
                      json_pack("{s:s, s:I, s:I, s:b}", "app", app, "version", (json_int_t)version, "live",
                                (json_int_t)live, "staged", 1));
        return;
    }
    r = reg_store_make_live(store, app, version, &newer, err, sizeof(err));
    reg_store_release_marks(store, mark); /* live (its app registered), or kept as a version */
    if (r != 0) {
        deploy_failed(gw, req, r == TINE_ECONFLICT ? 409 : r == TINE_ENOTFOUND ? 404 : 503, app, version, newer, err);
        return;
    }
    if (reg_live_reload(gw->live, app, err, sizeof(err)) != 0) {
        deploy_unloadable(gw, req, app, version, err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "deployed %s version %" PRIu64, app, version);
    gw__send_json(req, 201, json_pack("{s:s, s:I, s:s}", "app", app, "version", (json_int_t)version, "digest", digest));
}

/* Reads an app's live version and versions (free *vs); answers 503 or 404
 * and returns -1 when Redis cannot be read or the app has no version. */
static int read_versions(gw_server_t *gw, h2o_req_t *req, const char *app, uint64_t *live, reg_version_info_t **vs,
                         size_t *n)
{
    reg_store_t *store = reg_live_store(gw->live);
    *live = 0;
    *vs = NULL;
    *n = 0;
    if (reg_store_live_version(store, app, live) != 0 || reg_store_list_versions(store, app, vs, n) != 0) {
        gw__send_error(req, 503, "redis is unreachable");
        return -1;
    }
    if (*n == 0) {
        free(*vs);
        *vs = NULL;
        gw__send_error(req, 404, "no app named '%s'", app);
        return -1;
    }
    return 0;
}

/* GET /apps/APP/versions: the app's stored versions (created, files, bundle
 * hash, which is live) and what this node serves. */
static void admin_versions(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t live;
    reg_version_info_t *vs;
    size_t n;
    if (read_versions(gw, req, app, &live, &vs, &n) != 0)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char when[32];
        iso8601(vs[i].created_ms, when);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:s, s:s?, s:b}", "version", (json_int_t)vs[i].version,
                                             "created", when, "files", (json_int_t)vs[i].files, "sha256",
                                             vs[i].bundle_sha256, "digest", vs[i].digest[0] ? vs[i].digest : NULL,
                                             "live", vs[i].version == live));
    }
    free(vs);
    json_t *o =
        json_pack("{s:s, s:I, s:s, s:o}", "app", app, "live", (json_int_t)live, "node", gw->node_id, "versions", arr);
    serving_fields(gw, o, app);
    /* Its tags and split (docs/releases.md), as Redis holds them. */
    reg_release_t rel;
    char err[256];
    if (reg_store_release(reg_live_store(gw->live), app, &rel, err, sizeof err) == 0) {
        json_t *tags = json_object();
        for (size_t i = 0; i < rel.ntags; i++)
            json_object_set_new(tags, rel.tags[i].name, json_integer((json_int_t)rel.tags[i].version));
        json_object_set_new(o, "tags", tags);
        json_object_set_new(o, "split", rel.split_version ? json_pack("{s:I, s:i, s:b}", "version",
                                                                      (json_int_t)rel.split_version, "percent",
                                                                      (int)rel.split_percent, "events",
                                                                      rel.split_events)
                                                          : json_null());
    }
    reg_release_dispose(&rel);
    gw__send_json(req, 200, o);
}

/* GET /apps/{app}: the app's live version, what this node serves of it and
 * how many versions are stored. */
static void admin_app(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t live;
    reg_version_info_t *vs;
    size_t n;
    if (read_versions(gw, req, app, &live, &vs, &n) != 0)
        return;
    free(vs);
    json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "app", app, "live", (json_int_t)live, "versions", (json_int_t)n,
                          "node", gw->node_id);
    serving_fields(gw, o, app);
    gw__send_json(req, 200, o);
}

/* DELETE /apps/{app}: the app, its versions, files only it used, tine.kv
 * keys, dead letters and activation records, each deleted by the module that
 * owns it; every node stops serving it. */
static void admin_delete(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    char err[512];
    reg_delete_result_t d;
    int r = reg_store_delete_app(reg_live_store(gw->live), app, &d, err, sizeof(err));
    if (r != 0) {
        gw__send_error(req, r == TINE_ENOTFOUND ? 404 : 503, "%s", err);
        return;
    }
    /* Announced to every node; this one need not wait for the echo. */
    if (reg_live_reload(gw->live, app, err, sizeof(err)) != 0)
        tine_log(TINE_LOG_WARN, "deleted %s but could not drop it here yet: %s", app, err);
    size_t kv_keys = 0, dead_letters = 0, activations = 0;
    r = inv_delete_app_data(gw->inv, app, &kv_keys, err, sizeof(err));
    if (r == 0 && gw->events)
        r = ev_delete_app(gw->events, app, &dead_letters, err, sizeof(err));
    if (r == 0 && gw->bill)
        r = bill_delete_app(gw->bill, app, &activations, err, sizeof(err));
    bool had_secrets = false; /* a later app of the same name must not inherit them */
    if (r == 0)
        r = reg_secrets_delete(reg_live_store(gw->live), app, NULL, &had_secrets, err, sizeof(err));
    if (r != 0 && r != TINE_EINVAL) {
        gw__send_error(req, 503, "%s is deleted (no node serves it), but not all its data could be removed: %s",
                       app, err);
        return;
    }
    tine_log(TINE_LOG_INFO, "deleted %s (%zu versions, %zu kv keys)", app, d.versions, kv_keys);
    gw__send_json(req, 200,
                  json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:[s]}", "app", app, "deleted", "versions",
                            (json_int_t)d.versions, "files", (json_int_t)d.blobs_deleted, "kv_keys",
                            (json_int_t)kv_keys, "dead_letters", (json_int_t)dead_letters, "activations",
                            (json_int_t)activations, "kept", "usage"));
}

/* The n version numbers of v as a fresh JSON array. */
static json_t *versions_array(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

/* POST /apps/{app}/versions/prune {"keep":N}: removes all but the N newest
 * versions and the live one, then the files no version uses any more. */
static void admin_prune(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    json_t *k = json_object_get(body, "keep");
    if (body == NULL || k == NULL || json_object_size(body) != 1 || !json_is_integer(k) || json_integer_value(k) < 0) {
        json_decref(body);
        gw__send_error(req, 400, "body: expected {\"keep\": N} with N >= 0 (versions kept besides the live one)");
        return;
    }
    size_t keep = (size_t)json_integer_value(k);
    json_decref(body);
    char err[512];
    reg_prune_result_t p;
    int r = reg_store_prune(reg_live_store(gw->live), app, keep, &p, err, sizeof(err));
    if (r != 0) {
        reg_prune_result_dispose(&p);
        gw__send_error(req, r == TINE_ENOTFOUND ? 404 : 503, "%s", err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "pruned %zu versions of %s", p.npruned, app);
    gw__send_json(req, 200,
                  json_pack("{s:s, s:I, s:o, s:o, s:I}", "app", app, "live", (json_int_t)p.live, "pruned",
                            versions_array(p.pruned, p.npruned), "kept", versions_array(p.kept, p.nkept),
                            "files_deleted", (json_int_t)p.blobs_deleted));
    reg_prune_result_dispose(&p);
}

/* GET /ready: 200 while this node serves every app's live version, else 503
 * with why (the node keeps retrying): it drains (load balancers move away
 * while it still serves), it never loaded the apps (Redis away since its
 * start), or some app's live version does not load. A node that loaded its
 * apps stays ready while Redis is away: it serves them from memory. No
 * token needed, as for /health. */
static void admin_ready(gw_server_t *gw, h2o_req_t *req)
{
    gw->ready_asked_ms = uv_now(gw->loop);
    size_t n = reg_live_failures(gw->live, NULL, 0);
    const char *unloaded = reg_live_unloaded(gw->live);
    if (n == 0 && unloaded == NULL && gw->draining == NULL) {
        gw__send_json(req, 200, json_pack("{s:b}", "ready", 1));
        return;
    }
    reg_live_failure_t *f = xcalloc(n + 1, sizeof(*f));
    reg_live_failures(gw->live, f, n);
    json_t *reasons = json_array();
    tine_buf_t all;
    tine_buf_init(&all);
    if (gw->draining) {
        char *why = xasprintf("this node is draining (%s): it finishes its calls and leaves", gw->draining);
        json_array_append_new(reasons, json_string(why));
        tine_buf_appendf(&all, "%s", why);
        free(why);
    }
    if (unloaded) {
        char *why = xasprintf("this node has not loaded the apps from redis yet: %s", unloaded);
        json_array_append_new(reasons, json_string(why));
        tine_buf_appendf(&all, "%s%s", all.len ? "; " : "", why);
        free(why);
    }
    for (size_t i = 0; i < n; i++) {
        char *why = f[i].version ? xasprintf("app %s: live version %" PRIu64 " cannot be loaded on this node: %s",
                                             f[i].app, f[i].version, f[i].error)
                                 : xasprintf("app %s: cannot be loaded on this node: %s", f[i].app, f[i].error);
        json_array_append_new(reasons, json_string(why));
        tine_buf_appendf(&all, "%s%s", all.len ? "; " : "", why);
        free(why);
    }
    free(f);
    json_t *answer = json_pack("{s:b, s:s, s:o}", "ready", 0, "error", all.data, "reasons", reasons);
    if (gw->draining)
        json_object_set_new(answer, "draining", json_true());
    gw__send_json(req, 503, answer);
    tine_buf_dispose(&all);
}

/* POST /apps/APP/rollback: makes {"version": N} live again, or without a body
 * the version before the live one; loads it here before answering. */
static void admin_rollback(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t target = 0;
    if (req->entity.len) {
        json_error_t jerr;
        json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
        json_t *v = json_object_get(body, "version");
        if (body == NULL || (v && (!json_is_integer(v) || json_integer_value(v) < 1))) {
            json_decref(body);
            gw__send_error(req, 400, "body: expected {\"version\": N} with N >= 1");
            return;
        }
        target = v ? (uint64_t)json_integer_value(v) : 0;
        json_decref(body);
    }
    char err[512];
    uint64_t now_live = 0;
    int r = reg_store_rollback(reg_live_store(gw->live), app, target, &now_live, err, sizeof(err));
    if (r != 0) {
        gw__send_error(req, r == TINE_ENOTFOUND ? 404 : 503, "%s", err);
        return;
    }
    if (reg_live_reload(gw->live, app, err, sizeof(err)) != 0) {
        deploy_unloadable(gw, req, app, now_live, err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "%s rolled back to version %" PRIu64, app, now_live);
    gw__send_json(req, 200, json_pack("{s:s, s:I}", "app", app, "live", (json_int_t)now_live));
}

/* GET /apps/APP/routes: the live version's routes (with the app prefix,
 * and on its own host when it has one), triggers and functions. */
static void admin_routes(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v)
{
    const reg_manifest_t *m = v->manifest;
    json_t *routes = json_array();
    for (size_t i = 0; i < m->routes_len; i++) {
        const reg_route_t *r = &m->routes[i];
        char *full = xasprintf("/%s%s", v->app, strcmp(r->path, "/") == 0 ? "/" : r->path);
        json_t *o = json_pack("{s:s, s:s, s:s}", "method", r->method, "path", full, "function", r->function);
        if (m->host) /* served at the root of its own host too (docs/releases.md) */
            json_object_set_new(o, "host_path", json_sprintf("%s%s", m->host, r->path));
        json_array_append_new(routes, o);
        free(full);
    }
    static const char *kinds[] = {"log", "event", "schedule"};
    json_t *triggers = json_array();
    for (size_t i = 0; i < m->triggers_len; i++) {
        const reg_trigger_t *t = &m->triggers[i];
        json_t *o = json_pack("{s:s, s:s, s:i}", "on", kinds[t->on], "function", t->function, "attempts",
                              (int)t->attempts);
        if (t->source)
            json_object_set_new(o, "source", json_string(t->source));
        if (t->filter)
            json_object_set_new(o, "filter", json_string(t->filter));
        if (t->type)
            json_object_set_new(o, "type", json_string(t->type));
        if (t->cron)
            json_object_set_new(o, "cron", json_string(t->cron));
        json_array_append_new(triggers, o);
    }
    json_t *fns = json_array();
    for (size_t i = 0; i < m->functions_len; i++) {
        const reg_function_t *f = &m->functions[i];
        json_array_append_new(fns, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:I}", "name", f->name, "runtime",
                                             reg_runtime_name(f->runtime), "handler", f->handler,
                                             "memory", (int)f->memory_mb, "timeout_ms", (int)f->timeout_ms,
                                             "concurrency", (int)f->concurrency, "warm", (int)f->warm, "max_body",
                                             (json_int_t)f->max_body));
    }
    gw__send_json(req, 200, json_pack("{s:s, s:I, s:o, s:o, s:o}", "app", v->app, "version", (json_int_t)v->version,
                                      "routes", routes, "triggers", triggers, "functions", fns));
}

char *gw__query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=')
            return xstrndup(q + nl + 1, (size_t)(stop - q - nl - 1));
        q = stop + 1;
    }
    return NULL;
}

/* Whether query parameter `name` is 1 or true. */
static int query_flag(h2o_req_t *req, const char *name)
{
    char *v = gw__query_param(req, name);
    int on = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    free(v);
    return on;
}

/* Index of function `fn` in version v (the manifest's name index), or
 * SIZE_MAX. */
static size_t function_index(const reg_app_version_t *v, const char *fn)
{
    size_t i;
    return reg_manifest_function_index(v->manifest, fn, strlen(fn), &i) ? i : SIZE_MAX;
}

/* GET /sandboxes[?app=APP]: the invoker's pools and sandboxes on this node. */
static void admin_sandboxes(gw_server_t *gw, h2o_req_t *req)
{
    if (!method_is(req, "GET")) {
        gw__send_error(req, 405, "use GET to list sandboxes");
        return;
    }
    char *app = gw__query_param(req, "app");
    json_t *stats = inv_stats(gw->inv, app);
    /* A key of one namespace (or app) sees its own pools only. */
    const gw_caller_t *caller = gw__caller(req);
    json_t *pools = json_object_get(stats, "pools");
    for (size_t i = json_array_size(pools); caller && (caller->ns || caller->app) && i-- > 0;) {
        const char *pool_app = json_string_value(json_object_get(json_array_get(pools, i), "app"));
        char *ns = pool_app ? gw__app_namespace(gw, pool_app) : NULL;
        if (!gw__caller_sees(caller, pool_app, ns))
            json_array_remove(pools, i);
        free(ns);
    }
    gw__send_json(req, 200, stats);
    free(app);
}

/* The answer of an eviction waits until the evicted processes are gone (their
 * memory given back), watched through pidfds, for at most EVICT_WAIT_MS. */
#define EVICT_WAIT_MS 2000

typedef struct evict_wait evict_wait_t;

typedef struct {
    evict_wait_t *w; /* NULL once the request went away */
} evict_req_t;

struct evict_wait {
    h2o_req_t *req; /* NULL once answered or gone */
    evict_req_t *link;
    size_t evicted;
    size_t left;     /* processes not yet gone */
    size_t handles;  /* handles not yet closed */
    uv_timer_t timer;
    size_t npolls;
    struct {
        uv_poll_t poll;
        int fd;
        evict_wait_t *w;
    } *polls;
};

/* One of the eviction wait's handles closed; the last closes the pidfds and
 * frees the wait. */
static void evict_handle_closed(uv_handle_t *h)
{
    evict_wait_t *w = h->data;
    if (--w->handles > 0)
        return;
    for (size_t i = 0; i < w->npolls; i++)
        close(w->polls[i].fd);
    free(w->polls);
    free(w);
}

/* Answers (when the client still waits) and closes the watches. */
static void evict_finish(evict_wait_t *w)
{
    if (w->req != NULL) {
        w->link->w = NULL;
        gw__send_json(w->req, 200, json_pack("{s:I}", "evicted", (json_int_t)w->evicted));
        w->req = NULL;
    }
    if (uv_is_closing((uv_handle_t *)&w->timer))
        return;
    uv_close((uv_handle_t *)&w->timer, evict_handle_closed);
    for (size_t i = 0; i < w->npolls; i++)
        uv_close((uv_handle_t *)&w->polls[i].poll, evict_handle_closed);
}

/* An evicted sandbox exited (its pidfd is readable); the last one answers. */
static void on_evicted_gone(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    evict_wait_t *w = h->data;
    uv_poll_stop(h);
    if (--w->left == 0)
        evict_finish(w);
}

/* Evicted sandboxes took longer than EVICT_WAIT_MS to exit: answers without
 * waiting longer. */
static void on_evict_timeout(uv_timer_t *t)
{
    evict_finish(t->data);
}

/* The eviction request went away before its answer: the wait goes on without
 * it. */
static void on_evict_req_dispose(void *p)
{
    evict_req_t *link = p;
    if (link->w)
        link->w->req = NULL; /* the client left: the watches end on their own */
}

/* DELETE /apps/{app}/sandboxes[?function=FN]: closes idle sandboxes now and
 * answers once their processes are gone. */
static void admin_evict(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    char *fn = gw__query_param(req, "function");
    reg_app_version_t *v = reg_live_get(gw->live, app, strlen(app));
    pid_t *pids = NULL;
    size_t n = inv_evict(gw->inv, app, fn, &pids);
    if (v == NULL && n == 0)
        gw__send_error(req, 404, "no app named '%s'", app);
    else if (v && fn && function_index(v, fn) == SIZE_MAX && n == 0)
        gw__send_error(req, 404, "app %s has no function named '%s'", app, fn);
    else {
        evict_wait_t *w = xcalloc(1, sizeof(*w));
        w->evicted = n;
        w->polls = xcalloc(n ? n : 1, sizeof(*w->polls));
        for (size_t i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
            if (fd < 0)
                continue; /* gone already (or no pidfds here): nothing to wait for */
            w->polls[w->npolls].fd = fd;
            w->polls[w->npolls].poll.data = w;
            uv_poll_init(gw->loop, &w->polls[w->npolls].poll, fd);
            uv_poll_start(&w->polls[w->npolls].poll, UV_READABLE, on_evicted_gone);
            w->npolls++;
        }
        w->left = w->npolls;
        w->handles = w->npolls + 1;
        uv_timer_init(gw->loop, &w->timer);
        w->timer.data = w;
        w->req = req;
        w->link = h2o_mem_alloc_shared(&req->pool, sizeof(*w->link), on_evict_req_dispose);
        w->link->w = w;
        if (w->left == 0)
            evict_finish(w);
        else
            uv_timer_start(&w->timer, on_evict_timeout, EVICT_WAIT_MS, 0);
    }
    free(pids);
    free(fn);
}

/* PUT /apps/{app}/functions/{fn}/scale {"warm":N}: the live version's pool on
 * this node keeps N idle sandboxes until the next deploy. */
static void admin_scale(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v, const char *fn)
{
    size_t idx = function_index(v, fn);
    if (idx == SIZE_MAX) {
        gw__send_error(req, 404, "app %s has no function named '%s'", v->app, fn);
        return;
    }
    uint32_t concurrency = v->manifest->functions[idx].concurrency;
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    json_t *w = json_object_get(body, "warm");
    if (body == NULL) {
        gw__send_error(req, 400, "body: line %d column %d: %s; expected {\"warm\": N}", jerr.line, jerr.column,
                       jerr.text);
    } else if (w == NULL || json_object_size(body) != 1) {
        gw__send_error(req, 400, "body: expected {\"warm\": N} and nothing else");
    } else if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > concurrency) {
        gw__send_error(req, 400, "body: warm: expected an integer from 0 to %" PRIu32 " (the concurrency of %s)",
                       concurrency, fn);
    } else {
        uint32_t warm = (uint32_t)json_integer_value(w);
        inv_scale(gw->inv, v, idx, warm);
        tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", v->app, "function", fn),
                    "%s.%s v%" PRIu64 " keeps %" PRIu32 " warm sandboxes", v->app, fn, v->version, warm);
        gw__send_json(req, 200, json_pack("{s:s, s:s, s:I, s:i}", "app", v->app, "function", fn, "version",
                                          (json_int_t)v->version, "warm", (int)warm));
    }
    json_decref(body);
}

static void admin_invoke(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v, const char *fn)
{
    size_t idx = function_index(v, fn);
    if (idx == SIZE_MAX) {
        gw__send_error(req, 404, "app %s has no function named '%s'", v->app, fn);
        return;
    }
    json_t *event = json_null();
    if (req->entity.len) {
        json_error_t jerr;
        event = json_loadb(req->entity.base, req->entity.len, JSON_DECODE_ANY, &jerr);
        if (event == NULL) {
            gw__send_error(req, 400, "body: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
            return;
        }
    }
    json_t *request = json_pack("{s:s, s:o}", "kind", "event", "event", event);
    /* The event travels in the metadata: the body must not be sent twice. */
    req->entity = h2o_iovec_init(NULL, 0);
    gw__invoke(gw, req, v, idx, request, NULL, 1);
}

int gw__admin_body_limit(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len, size_t *limit,
                         char *msg, size_t msglen)
{
    h2o_iovec_t seg[6] = {{0}};
    size_t n = split_path(rest, rest_len, seg, 5);
    *limit = 0;
    if (n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("health")))
        return 0; /* no token needed, and no body taken */
    int status = gw__admin_head_allowed(gw, req, seg, n, msg, msglen);
    if (status != 0)
        return status;
    bool deploy = n == 2 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps")) &&
                  (method_is(req, "PUT") || method_is(req, "POST"));
    *limit = deploy ? gw->max_bundle : gw->max_body;
    return 0;
}

int gw__admin(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len)
{
    h2o_iovec_t seg[6] = {{0}};
    size_t n = split_path(rest, rest_len, seg, 5);
    if (n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("health"))) {
        gw__send_json(req, 200,
                      json_pack("{s:s, s:s, s:I, s:s}", "status", "ok", "node", gw->node_id, "apps",
                                (json_int_t)reg_live_count(gw->live), "state", gw_state(gw)));
        return 0;
    }
    if (n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("ready"))) {
        admin_ready(gw, req);
        return 0;
    }
    if (gw__admin_authorize(gw, req, seg, n) != 0)
        return 0; /* answered, or served again once its key is read */
    if (n <= 5 && gw__admin_tenancy(gw, req, seg, n))
        return 0;
    if (n <= 3 && gw__admin_quota(gw, req, seg, n))
        return 0;
    if (n == 3 && gw__admin_artifact(gw, req, seg, n))
        return 0;
    if ((n == 3 || n == 4) && gw__admin_secrets(gw, req, seg, n))
        return 0;
    if (n >= 1 && n <= 5 && gw__admin_events(gw, req, seg, n))
        return 0;
    if (n >= 1 && n <= 3 && gw__admin_nodes(gw, req, seg, n))
        return 0;
    if (n <= 5 && gw__admin_billing(gw, req, seg, n))
        return 0;
    if (n == 0 || n > 5 || !h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps"))) {
        if (n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("sandboxes"))) {
            admin_sandboxes(gw, req);
            return 0;
        }
        if (n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("doctor"))) {
            json_t *report = sbx_isolation_report_json(sbx_isolation_report());
            json_object_set_new(report, "tls", gw__tls_report(gw->tls));
            gw__send_json(req, 200, report);
            return 0;
        }
        gw__send_error(req, 404, "no such admin endpoint");
        return 0;
    }
    if (n == 1) {
        if (!method_is(req, "GET"))
            gw__send_error(req, 405, "use GET to list apps");
        else
            admin_apps(gw, req);
        return 0;
    }
    char *app = seg_dup(seg[1]);
    if (n == 2) {
        if (method_is(req, "PUT") || method_is(req, "POST"))
            admin_deploy(gw, req, app);
        else if (method_is(req, "GET"))
            admin_app(gw, req, app);
        else if (method_is(req, "DELETE"))
            admin_delete(gw, req, app);
        else
            gw__send_error(req, 405, "use PUT with a tar.gz bundle to deploy, GET to show, DELETE to delete");
    } else if (n == 4 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("versions")) &&
               h2o_memis(seg[3].base, seg[3].len, H2O_STRLIT("prune"))) {
        if (method_is(req, "POST"))
            admin_prune(gw, req, app);
        else
            gw__send_error(req, 405, "use POST with {\"keep\": N} to prune versions");
    } else if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("versions"))) {
        if (method_is(req, "GET"))
            admin_versions(gw, req, app);
        else
            gw__send_error(req, 405, "use GET to list versions");
    } else if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("rollback"))) {
        if (method_is(req, "POST"))
            admin_rollback(gw, req, app);
        else
            gw__send_error(req, 405, "use POST to roll back");
    } else if (gw__admin_release(gw, req, app, seg, n)) {
        /* promote, tags, split: admin_release.c */
    } else if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("sandboxes"))) {
        if (method_is(req, "DELETE"))
            admin_evict(gw, req, app);
        else
            gw__send_error(req, 405, "use DELETE to evict idle sandboxes");
    } else if ((n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("routes"))) ||
               (n == 5 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("functions")) &&
                (h2o_memis(seg[4].base, seg[4].len, H2O_STRLIT("invoke")) ||
                 h2o_memis(seg[4].base, seg[4].len, H2O_STRLIT("scale"))))) {
        reg_app_version_t *v = reg_live_get(gw->live, app, strlen(app));
        if (v == NULL) {
            gw__send_error(req, 404, "no app named '%s'", app);
        } else if (n == 3) {
            if (method_is(req, "GET"))
                admin_routes(gw, req, v);
            else
                gw__send_error(req, 405, "use GET to show routes");
        } else if (h2o_memis(seg[4].base, seg[4].len, H2O_STRLIT("scale"))) {
            char *fn = seg_dup(seg[3]);
            if (method_is(req, "PUT"))
                admin_scale(gw, req, v, fn);
            else
                gw__send_error(req, 405, "use PUT with {\"warm\": N} to scale");
            free(fn);
        } else if (!method_is(req, "POST")) {
            gw__send_error(req, 405, "use POST to invoke");
        } else {
            char *fn = seg_dup(seg[3]);
            admin_invoke(gw, req, v, fn);
            free(fn);
        }
    } else {
        gw__send_error(req, 404, "no such admin endpoint");
    }
    free(app);
    return 0;
}
