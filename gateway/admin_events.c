/* The admin API of events (docs/admin-api.md): CloudEvents ingest
 * (POST /_tine/v1/events, structured, batch or binary mode; 202 once the
 * events are durable in Redis) and the dead letters of an app
 * (GET /_tine/v1/apps/{app}/dlq, POST /_tine/v1/apps/{app}/dlq/replay),
 * the recent events of its triggers (GET /_tine/v1/apps/{app}/triggers/recent). */
#include "events.h"
#include "gateway_internal.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    h2o_req_t *req; /* NULL once answered */
    ev_append_t *append;
    json_t *ids; /* the CloudEvent ids, for the answer */
} ingest_t;

/* The ingest request is freed: an append still out is cancelled (its callback
 * never runs). */
static void on_ingest_dispose(void *p)
{
    ingest_t *in = p;
    if (in->append)
        ev_append_cancel(in->append);
    json_decref(in->ids);
}

/* The events of a POST /events are stored (202 with their ids and stream
 * entries) or not (503); nothing when the client left. */
static void on_ingested(void *data, int rc, const char *error, json_t *entry_ids)
{
    ingest_t *in = data;
    h2o_req_t *req = in->req;
    in->req = NULL;
    in->append = NULL;
    if (req == NULL)
        return;
    if (rc != 0) {
        /* Not acknowledged: stored on no server, or on the master only
         * (no replica confirmed it). Sending them again is safe: their ids
         * are the functions' idempotency keys. */
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        gw__send_error(req, 503, "the events were not accepted: %s", error ? error : tine_strerror(rc));
        return;
    }
    gw__send_json(req, 202, json_pack("{s:O, s:O}", "ids", in->ids, "entries", entry_ids));
}

/* POST /events: CloudEvents in the structured, batched or binary HTTP
 * binding, checked, then appended to the stream. */
static void ingest(gw_server_t *gw, h2o_req_t *req)
{
    if (gw->events == NULL) {
        gw__send_error(req, 503, "events are not enabled on this node");
        return;
    }
    if (req->entity.len > gw->max_body) {
        gw__send_error(req, 413, "body of %zu bytes is over the limit of %zu", req->entity.len, gw->max_body);
        return;
    }
    ev_header_t *hs = h2o_mem_alloc_pool(&req->pool, sizeof(*hs) * (req->headers.size + 1));
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        hs[i] = (ev_header_t){h->name->base, h->name->len, h->value.base, h->value.len};
    }
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    const char *ctype = ct >= 0 ? req->headers.entries[ct].value.base : NULL;
    size_t ctlen = ct >= 0 ? req->headers.entries[ct].value.len : 0;
    json_t *events = NULL;
    char err[1024];
    int rc = ev_cloudevents_from_http(ctype, ctlen, hs, req->headers.size, req->entity.base, req->entity.len, &events,
                                      err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, rc == TINE_EINVAL ? 400 : 500, "%s", rc == TINE_EINVAL ? err : tine_strerror(rc));
        return;
    }
    ingest_t *in = h2o_mem_alloc_shared(&req->pool, sizeof(*in), on_ingest_dispose);
    memset(in, 0, sizeof(*in));
    in->req = req;
    in->ids = json_array();
    for (size_t i = 0; i < json_array_size(events); i++)
        json_array_append(in->ids, json_object_get(json_array_get(events, i), "id"));
    ev_append_t *a = NULL;
    rc = ev_append(gw->events, "", events, on_ingested, in, &a);
    json_decref(events);
    if (rc != 0) {
        in->req = NULL;
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        gw__send_error(req, 503, "the events were not stored: redis is unreachable (%s)", ev_redis_error(gw->events));
        return;
    }
    in->append = a;
}

/* An app name as the registry allows them; anything else names no stream. */
static int app_name_ok(const char *app)
{
    size_t n = strlen(app);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((app[i] >= 'a' && app[i] <= 'z') || (app[i] >= '0' && app[i] <= '9') || app[i] == '-'))
            return 0;
    return 1;
}

/* GET /apps/APP/dlq[?limit=N]: the dead letters of the app (1000 unless
 * limit, at most 10000). */
static void dlq_list(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    size_t limit = 1000;
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1;
        size_t ql = req->path.len - req->query_at - 1;
        const char *l = ql >= 6 && strncmp(q, "limit=", 6) == 0 ? q + 6 : NULL;
        if (l) {
            limit = strtoul(l, NULL, 10);
            if (limit == 0 || limit > 10000) {
                gw__send_error(req, 400, "limit: expected a number 1-10000");
                return;
            }
        }
    }
    json_t *out = NULL;
    char err[512];
    if (ev_dlq_list(gw->events, app, limit, &out, err, sizeof err) != 0) {
        gw__send_error(req, 503, "%s", err);
        return;
    }
    gw__send_json(req, 200, out);
}

/* POST /apps/APP/dlq/replay: puts the dead letters {"ids": [...]} (all
 * without a body) back in the stream; 404 when none of the ids exists. */
static void dlq_replay(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    json_t *ids = NULL;
    if (req->entity.len) {
        json_error_t jerr;
        json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
        ids = json_object_get(body, "ids");
        bool ok = body && json_is_object(body) && (ids == NULL || json_is_array(ids));
        for (size_t i = 0; ok && ids && i < json_array_size(ids); i++)
            ok = json_is_string(json_array_get(ids, i));
        if (!ok) {
            json_decref(body);
            gw__send_error(req, 400, "body: expected {\"ids\": [\"<dead letter id>\", ...]} or nothing for all");
            return;
        }
        json_incref(ids);
        json_decref(body);
    }
    json_t *out = NULL;
    char err[512];
    int rc = ev_dlq_replay(gw->events, app, ids, &out, err, sizeof err);
    json_decref(ids);
    if (rc != 0) {
        gw__send_error(req, 503, "%s", err);
        return;
    }
    if (ids && json_array_size(json_object_get(out, "ids")) == 0 && json_array_size(json_object_get(out, "missing"))) {
        gw__send_error(req, 404, "app %s has no dead letter %s", app,
                       json_string_value(json_array_get(json_object_get(out, "missing"), 0)));
        json_decref(out);
        return;
    }
    gw__send_json(req, 200, out);
}

/* GET /apps/APP/triggers/recent[?function=F&trigger=event|log|schedule]:
 * the last events that fired each trigger of the live version, and the
 * dead letters (events/recent.c). */
static void recent_list(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    gw_query_param_t q[] = {{"function", NULL}, {"trigger", NULL}};
    if (gw__parse_query(req, q, 2) != 0)
        goto out;
    const char *kind = q[1].value;
    if (kind && strcmp(kind, "event") != 0 && strcmp(kind, "log") != 0 && strcmp(kind, "schedule") != 0) {
        gw__send_error(req, 400, "query: trigger: expected event, log or schedule, not '%s'", kind);
        goto out;
    }
    json_t *o = NULL;
    char err[512];
    int rc = ev_recent_list(gw->events, app, q[0].value, kind, &o, err, sizeof err);
    if (rc != 0)
        gw__send_error(req, rc == TINE_ENOTFOUND ? 404 : 503, "%s", err);
    else
        gw__send_json(req, 200, o);
out:
    gw__free_query(q, 2);
}

/* Whether the path segment s is the literal lit. */
static int seg_is(h2o_iovec_t s, const char *lit)
{
    return h2o_memis(s.base, s.len, lit, strlen(lit));
}

int gw__admin_events(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (n == 1 && seg_is(seg[0], "events")) {
        if (!post)
            gw__send_error(req, 405, "use POST with a CloudEvent to send an event");
        else
            ingest(gw, req);
        return 1;
    }
    bool list = n == 3 && seg_is(seg[0], "apps") && seg_is(seg[2], "dlq");
    bool replay = n == 4 && seg_is(seg[0], "apps") && seg_is(seg[2], "dlq") && seg_is(seg[3], "replay");
    bool recent = n == 4 && seg_is(seg[0], "apps") && seg_is(seg[2], "triggers") && seg_is(seg[3], "recent");
    if (!list && !replay && !recent)
        return 0;
    char *app = xstrndup(seg[1].base, seg[1].len);
    if (gw->events == NULL)
        gw__send_error(req, 503, "events are not enabled on this node");
    else if (!app_name_ok(app))
        gw__send_error(req, 404, "no app named '%s'", app);
    else if ((list || recent) && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        gw__send_error(req, 405, list ? "use GET to list dead letters" : "use GET to list the recent events of triggers");
    else if (recent)
        recent_list(gw, req, app);
    else if (replay && !post)
        gw__send_error(req, 405, "use POST to replay dead letters");
    else if (list)
        dlq_list(gw, req, app);
    else
        dlq_replay(gw, req, app);
    free(app);
    return 1;
}
