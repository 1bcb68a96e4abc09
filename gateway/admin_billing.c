/* The billing endpoints of the admin API: usage reports, activation records
 * and log lines (recent, or followed live as a chunked NDJSON stream). */
#include "auth.h"
#include "billing.h"
#include "gateway_internal.h"
#include "tine_common.h"
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define FOLLOW_HEARTBEAT_MS 10000        /* an empty line: finds clients that left */
#define FOLLOW_MAX_BUFFER (1024u * 1024u) /* lines waiting for a slow client */

/* ------------------------------------------------------------ query strings */

int gw__parse_query(h2o_req_t *req, gw_query_param_t *params, size_t n)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *name_end = eq ? eq : stop;
        size_t i = 0;
        while (i < n && !h2o_memis(q, (size_t)(name_end - q), params[i].name, strlen(params[i].name)))
            i++;
        if (name_end > q && i == n) {
            gw__send_error(req, 400, "query: unknown parameter '%.*s'", (int)(name_end - q), q);
            return -1;
        }
        if (i < n && params[i].value) {
            gw__send_error(req, 400, "query: %s given twice", params[i].name);
            return -1;
        }
        if (i < n)
            params[i].value = eq ? gw__percent_decode(eq + 1, (size_t)(stop - eq - 1)) : xstrdup("");
        q = stop + 1;
    }
    return 0;
}

void gw__free_query(gw_query_param_t *params, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(params[i].value);
}

/* Checks a name against a character class: app names [a-z0-9-], function
 * names [A-Za-z0-9_-], ids [0-9a-f]; at most 64 characters. */
static int name_ok(const char *s, const char *extra, int upper)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
              (c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

int gw__count_param(h2o_req_t *req, const gw_query_param_t *p, long lo, long hi, long dflt, long *out)
{
    *out = dflt;
    if (p->value == NULL)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(p->value, &end, 10);
    if (errno || end == p->value || *end || v < lo || v > hi) {
        gw__send_error(req, 400, "query: %s: expected a number from %ld to %ld, not '%s'", p->name, lo, hi, p->value);
        return -1;
    }
    *out = v;
    return 0;
}

/* The app of /apps/{app}/...: must be a deployed app (404 sent if not). */
static char *live_app(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t seg)
{
    char *app = xstrndup(seg.base, seg.len);
    if (!name_ok(app, "-", 0) || reg_live_get(gw->live, app, strlen(app)) == NULL) {
        gw__send_error(req, 404, "no app named '%s'", app);
        free(app);
        return NULL;
    }
    return app;
}

/* Whether the function query parameter is absent or a function name; else
 * answers 400 and returns 0. */
static int function_param_ok(h2o_req_t *req, const char *fn)
{
    if (fn == NULL || name_ok(fn, "_-", 1))
        return 1;
    gw__send_error(req, 400, "query: function: '%s' is not a function name ([A-Za-z0-9_-])", fn);
    return 0;
}

/* The HTTP status of a billing read's error: 400 for TINE_EINVAL, 404 for
 * TINE_ENOTFOUND, else 503. */
static int status_of(int rc)
{
    return rc == TINE_EINVAL ? 400 : rc == TINE_ENOTFOUND ? 404 : 503;
}

/* ------------------------------------------------------------ usage, activations */

/* GET /usage?app=APP[&from][&to][&by=function|version|day]: the usage report
 * of an app (known even when deleted). */
static void admin_usage(gw_server_t *gw, h2o_req_t *req)
{
    gw_query_param_t q[] = {{"app", NULL}, {"from", NULL}, {"to", NULL}, {"by", NULL}};
    if (gw__parse_query(req, q, 4) != 0)
        goto out;
    if (q[0].value == NULL || q[0].value[0] == '\0') {
        gw__send_error(req, 400, "query: app: required (GET /_tine/v1/usage?app=NAME)");
        goto out;
    }
    /* A deleted app's usage is kept for billing: known is enough. */
    bool known = false;
    if (!name_ok(q[0].value, "-", 0) ||
        (reg_live_get(gw->live, q[0].value, strlen(q[0].value)) == NULL &&
         (reg_store_app_known(reg_live_store(gw->live), q[0].value, &known) != 0 || !known))) {
        gw__send_error(req, 404, "no app named '%s'", q[0].value);
        goto out;
    }
    bill_group_t by = BILL_BY_FUNCTION;
    const char *b = q[3].value;
    if (b && strcmp(b, "version") == 0)
        by = BILL_BY_VERSION;
    else if (b && strcmp(b, "day") == 0)
        by = BILL_BY_DAY;
    else if (b && strcmp(b, "function") != 0) {
        gw__send_error(req, 400, "query: by: expected function, version or day, not '%s'", b);
        goto out;
    }
    char err[512];
    json_t *report = NULL;
    int rc = bill_usage(gw->bill, q[0].value, q[1].value, q[2].value, by, &report, err, sizeof(err));
    if (rc != 0)
        gw__send_error(req, status_of(rc), "%s%s", rc == TINE_EINVAL ? "query: " : "", err);
    else
        gw__send_json(req, 200, report);
out:
    gw__free_query(q, 4);
}

/* A time query parameter: Unix milliseconds, or a time ago with a unit
 * (30s, 15m, 2h, 7d); 0 when absent. Answers 400 and returns -1 when bad. */
static int time_param(h2o_req_t *req, const gw_query_param_t *p, uint64_t *out)
{
    *out = 0;
    if (p->value == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p->value, &end, 10);
    static const char units[] = "smhd";
    static const uint64_t unit_ms[] = {1000u, 60000u, 3600000u, 86400000u};
    const char *u = end[0] && end[1] == '\0' ? strchr(units, end[0]) : NULL;
    uint64_t now = tine_now_unix_ms();
    if (errno || end == p->value || p->value[0] == '-' || (*end && u == NULL) ||
        (u && v > now / unit_ms[u - units])) {
        gw__send_error(req, 400, "query: %s: expected Unix milliseconds or a time ago (30s, 15m, 2h, 7d), not '%s'",
                       p->name, p->value);
        return -1;
    }
    *out = u ? now - v * unit_ms[u - units] : v;
    return 0;
}

/* GET /apps/APP/activations[?limit][&function][&version][&status][&cold]
 * [&min_duration_ms][&since][&until][&after]: the app's newest activation
 * records that pass the filters, without their logs, a page at a time. */
static void admin_activations(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t app_seg)
{
    enum { LIMIT, FN, VERSION, STATUS, COLD, MIN_DUR, SINCE, UNTIL, AFTER, NQ };
    gw_query_param_t q[NQ] = {{"limit", NULL},           {"function", NULL}, {"version", NULL},
                              {"status", NULL},          {"cold", NULL},     {"min_duration_ms", NULL},
                              {"since", NULL},           {"until", NULL},    {"after", NULL}};
    char *app = NULL;
    long limit, version, min_dur;
    bill_filter_t f = {.cold = -1};
    if (gw__parse_query(req, q, NQ) != 0 || gw__count_param(req, &q[LIMIT], 1, 100000, 20, &limit) != 0 ||
        gw__count_param(req, &q[VERSION], 1, 2000000000L, 0, &version) != 0 ||
        gw__count_param(req, &q[MIN_DUR], 0, 86400000L, 0, &min_dur) != 0 || time_param(req, &q[SINCE], &f.since_ms) ||
        time_param(req, &q[UNTIL], &f.until_ms) || !function_param_ok(req, q[FN].value))
        goto out;
    const char *st = q[STATUS].value, *cold = q[COLD].value, *after = q[AFTER].value;
    if (st && !(strlen(st) == 3 && st[0] >= '2' && st[0] <= '5' && strcmp(st + 1, "xx") == 0)) {
        gw__send_error(req, 400, "query: status: expected 2xx, 3xx, 4xx or 5xx, not '%s'", st);
        goto out;
    }
    if (cold && strcmp(cold, "1") != 0 && strcmp(cold, "0") != 0) {
        gw__send_error(req, 400, "query: cold: expected 1 or 0, not '%s'", cold);
        goto out;
    }
    if (after && (!name_ok(after, "", 0) || after[strspn(after, "0123456789abcdef")] != '\0')) {
        gw__send_error(req, 400, "query: after: '%s' is not an invocation id (the \"next\" of a page)", after);
        goto out;
    }
    if ((app = live_app(gw, req, app_seg)) == NULL)
        goto out;
    f.fn = q[FN].value;
    f.version = (uint64_t)version;
    f.status_class = st ? st[0] - '0' : 0;
    f.cold = cold ? cold[0] == '1' : -1;
    f.min_duration_us = (uint64_t)min_dur * 1000u;
    f.after = after;
    char err[512];
    json_t *list = NULL;
    int rc = bill_activations(gw->bill, app, &f, (size_t)limit, &list, err, sizeof(err));
    if (rc != 0)
        gw__send_error(req, status_of(rc), "%s", err);
    else
        gw__send_json(req, 200, list);
out:
    free(app);
    gw__free_query(q, NQ);
}

/* GET /traces/ID: the activations of a call tree, oldest first, those of
 * apps the key may read. */
static void admin_trace(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t id_seg)
{
    char *id = xstrndup(id_seg.base, id_seg.len);
    char err[512];
    json_t *list = NULL;
    if (strlen(id) != TINE_TRACE_ID_LEN || !tine_trace_hex_ok(id, TINE_TRACE_ID_LEN)) {
        gw__send_error(req, 400, "'%s' is not a trace id (32 hex digits, as the \"trace\" of an activation)", id);
    } else if ((list = NULL, bill_trace(gw->bill, id, &list, err, sizeof(err))) != 0) {
        gw__send_error(req, 503, "%s", err);
    } else {
        json_t *seen = json_array();
        size_t i;
        json_t *rec;
        json_array_foreach(list, i, rec)
        {
            if (gw__caller_may_read_app(gw, req, json_string_value(json_object_get(rec, "app"))))
                json_array_append(seen, rec);
        }
        json_decref(list);
        gw__send_json(req, 200, json_pack("{s:s, s:o}", "trace", id, "activations", seen));
    }
    free(id);
}

/* GET /activations/ID: one activation record with its logs; 400 for an id
 * that is not hex. */
static void admin_activation(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t id_seg)
{
    char *id = xstrndup(id_seg.base, id_seg.len);
    char err[512];
    json_t *rec = NULL;
    int rc = TINE_EINVAL;
    if (!name_ok(id, "", 0) || id[strspn(id, "0123456789abcdef")] != '\0')
        snprintf(err, sizeof(err), "'%s' is not an invocation id (hex digits, as in x-tine-invocation-id)", id);
    else
        rc = bill_activation(gw->bill, id, &rec, err, sizeof(err));
    if (rc == 0 && !gw__caller_may_read_app(gw, req, json_string_value(json_object_get(rec, "app")))) {
        /* A record of an app the key may not see is not there for it. */
        json_decref(rec);
        snprintf(err, sizeof(err), "no activation '%s' (unknown, or past the retention)", id);
        rc = TINE_ENOTFOUND;
    }
    if (rc != 0)
        gw__send_error(req, status_of(rc), "%s", err);
    else
        gw__send_json(req, 200, rec);
    free(id);
}

/* ------------------------------------------------------------ logs */

/* A followed log stream. Heap-allocated: its heartbeat timer outlives the
 * request (closed asynchronously); the request's pool holds a reference that
 * ends the stream when the request goes away. */
typedef struct {
    h2o_generator_t super;
    gw_server_t *gw;
    h2o_req_t *req; /* NULL once the client left */
    bill_follower_t *follower;
    bill_line_filter_t filter; /* its strings owned */
    uv_timer_t heartbeat;
    tine_buf_t pending; /* lines not handed to h2o yet */
    tine_buf_t sending; /* handed to h2o, until proceed */
    h2o_iovec_t iov;
    bool started;
    bool in_flight;
    bool ending; /* billing went away: finish once the last write is done */
    uint64_t dropped;
} log_stream_t;

/* Sends what is pending on the followed log stream unless a send is in flight
 * or the stream is not live yet. */
static void stream_send(log_stream_t *ls)
{
    if (ls->req == NULL || !ls->started || ls->in_flight || ls->pending.len == 0)
        return;
    tine_buf_t t = ls->sending;
    ls->sending = ls->pending;
    ls->pending = t;
    ls->pending.len = 0;
    ls->iov = h2o_iovec_init(ls->sending.data, ls->sending.len);
    ls->in_flight = true;
    h2o_send(ls->req, &ls->iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* Ends a started response once nothing is in flight. */
static void stream_finish(log_stream_t *ls)
{
    if (ls->req == NULL || !ls->started || ls->in_flight)
        return;
    h2o_req_t *req = ls->req;
    ls->req = NULL;
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* h2o sent the last chunk: sends what is pending, and ends the stream when it
 * is ending and nothing is left. */
static void on_stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    log_stream_t *ls = (log_stream_t *)g;
    ls->in_flight = false;
    ls->sending.len = 0;
    stream_send(ls);
    if (ls->ending && !ls->in_flight)
        stream_finish(ls);
}

/* h2o stopped the stream (the client left): nothing is sent any more. */
static void on_stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    log_stream_t *ls = (log_stream_t *)g;
    ls->req = NULL;
}

/* An event from billing: subscribed (start the response), a line, or the
 * end (the node stops). */
static void on_stream_event(void *data, bill_follow_event_t ev, const char *line, size_t len)
{
    log_stream_t *ls = data;
    if (ev == BILL_FOLLOW_END) {
        ls->follower = NULL;
        ls->ending = true;
        stream_finish(ls);
        return;
    }
    if (ls->req == NULL)
        return;
    if (ev == BILL_FOLLOW_LIVE) {
        if (ls->started)
            return;
        ls->started = true;
        ls->req->res.status = 200;
        ls->req->res.reason = "OK";
        h2o_add_header(&ls->req->pool, &ls->req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/x-ndjson"));
        h2o_start_response(ls->req, &ls->super);
        if (ls->pending.len == 0)
            tine_buf_append(&ls->pending, "\n", 1); /* headers out now: the client knows it is live */
        stream_send(ls);
        return;
    }
    if (!bill_line_passes(&ls->filter, line, len))
        return;
    if (ls->pending.len + len > FOLLOW_MAX_BUFFER) {
        ls->dropped++;
        return;
    }
    if (ls->dropped) {
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "{\"level\":\"warn\",\"msg\":\"tine: %llu lines dropped: the client reads too slowly\"}\n",
                         (unsigned long long)ls->dropped);
        tine_buf_append(&ls->pending, note, (size_t)n);
        ls->dropped = 0;
    }
    tine_buf_append(&ls->pending, line, len);
    stream_send(ls);
}

/* Every 10 s: an empty line keeps a live stream open; a stream still not
 * subscribed answers 503. */
static void on_heartbeat(uv_timer_t *t)
{
    log_stream_t *ls = container_of(t, log_stream_t, heartbeat);
    if (!ls->started && ls->req) {
        /* Still not subscribed: Redis is unreachable. */
        h2o_req_t *req = ls->req;
        ls->req = NULL;
        gw__send_error(req, 503, "cannot follow the logs: redis is unreachable");
        return;
    }
    if (ls->started && !ls->in_flight && ls->pending.len == 0) {
        tine_buf_append(&ls->pending, "\n", 1);
        stream_send(ls);
    }
}

/* The stream's heartbeat timer closed: frees the stream. */
static void on_heartbeat_closed(uv_handle_t *h)
{
    log_stream_t *ls = container_of((uv_timer_t *)h, log_stream_t, heartbeat);
    free((char *)ls->filter.level);
    free((char *)ls->filter.text);
    tine_buf_dispose(&ls->pending);
    tine_buf_dispose(&ls->sending);
    free(ls);
}

/* The request went away (client left, or the node stops). */
static void on_stream_dispose(void *p)
{
    log_stream_t *ls = *(log_stream_t **)p;
    ls->req = NULL;
    ls->gw->follows--;
    bill_unfollow(ls->follower);
    ls->follower = NULL;
    uv_timer_stop(&ls->heartbeat);
    uv_close((uv_handle_t *)&ls->heartbeat, on_heartbeat_closed);
}

/* GET /apps/APP/logs[?function][&limit][&follow][&since][&level][&text]:
 * the newest log lines as NDJSON; with follow the response stays open with
 * every new line; since, level and text keep the lines that pass. */
static void admin_logs(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t app_seg)
{
    gw_query_param_t q[] = {{"function", NULL}, {"limit", NULL}, {"follow", NULL},
                            {"since", NULL},    {"level", NULL}, {"text", NULL}};
    char *app = NULL;
    long limit;
    bill_line_filter_t filter = {0};
    if (gw__parse_query(req, q, 6) != 0 || gw__count_param(req, &q[1], 0, 10000, 100, &limit) != 0 ||
        time_param(req, &q[3], &filter.since_ms) != 0 || !function_param_ok(req, q[0].value))
        goto out;
    if (q[4].value && strcmp(q[4].value, "info") != 0 && strcmp(q[4].value, "error") != 0) {
        gw__send_error(req, 400, "query: level: expected info or error, not '%s'", q[4].value);
        goto out;
    }
    if (q[5].value && q[5].value[0] == '\0') {
        gw__send_error(req, 400, "query: text: expected some text to look for");
        goto out;
    }
    filter.level = q[4].value;
    filter.text = q[5].value;
    if ((app = live_app(gw, req, app_seg)) == NULL)
        goto out;
    const char *fv = q[2].value;
    bool follow = fv && (strcmp(fv, "1") == 0 || strcmp(fv, "true") == 0 || strcmp(fv, "") == 0);
    if (fv && !follow && strcmp(fv, "0") != 0 && strcmp(fv, "false") != 0) {
        gw__send_error(req, 400, "query: follow: expected 1 or 0, not '%s'", fv);
        goto out;
    }
    char err[512];
    tine_buf_t recent;
    tine_buf_init(&recent);
    int rc = bill_logs_recent(gw->bill, app, q[0].value, &filter, (size_t)limit, &recent, err, sizeof(err));
    if (rc != 0 && !follow) {
        gw__send_error(req, status_of(rc), "%s", err);
        tine_buf_dispose(&recent);
        goto out;
    }
    if (!follow) {
        
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/x-ndjson"));
        gw__send_body(req, recent.data ? recent.data : "", recent.len);
        tine_buf_dispose(&recent);
        goto out;
    }
    log_stream_t *ls = xcalloc(1, sizeof(*ls));
    ls->super.proceed = on_stream_proceed;
    ls->super.stop = on_stream_stop;
    ls->gw = gw;
    gw->follows++; /* endless: a drain does not wait for it (gw_requests_in_flight) */
    ls->req = req;
    ls->pending = recent; /* takes it */
    ls->filter.since_ms = filter.since_ms;
    ls->filter.level = q[4].value ? xstrdup(q[4].value) : NULL;
    ls->filter.text = q[5].value ? xstrdup(q[5].value) : NULL;
    uv_timer_init(gw->loop, &ls->heartbeat);
    uv_timer_start(&ls->heartbeat, on_heartbeat, FOLLOW_HEARTBEAT_MS, FOLLOW_HEARTBEAT_MS);
    log_stream_t **ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), on_stream_dispose);
    *ref = ls;
    ls->follower = bill_follow(gw->bill, app, q[0].value, on_stream_event, ls);
out:
    free(app);
    gw__free_query(q, 6);
}

int gw__admin_billing(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    int usage = n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("usage"));
    int one = n == 2 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("activations"));
    int trace = n == 2 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("traces"));
    int list = n == 3 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps")) &&
               h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("activations"));
    int logs = n == 3 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps")) &&
               h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("logs"));
    if (!usage && !one && !trace && !list && !logs)
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        gw__send_error(req, 405, "use GET");
    else if (gw->bill == NULL)
        gw__send_error(req, 503, "this node keeps no activation records");
    else if (usage)
        admin_usage(gw, req);
    else if (one)
        admin_activation(gw, req, seg[1]);
    else if (trace)
        admin_trace(gw, req, seg[1]);
    else if (list)
        admin_activations(gw, req, seg[1]);
    else
        admin_logs(gw, req, seg[1]);
    return 1;
}
