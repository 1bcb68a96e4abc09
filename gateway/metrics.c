/* GET /metrics: the node's metrics in the Prometheus text exposition format
 * (version 0.0.4). Invocation counters come from billing/, counters per
 * app version from registry/ (docs/releases.md), sandbox gauges
 * from the invoker at scrape time, event queue lengths from the events
 * module, the state of the node's Redis connections, what the embedder
 * adds (tined: the OTLP exporter's counters, tined/otlp.c), and the usual
 * process_* metrics from /proc. No token unless --metrics-token. */
#include "billing.h"
#include "events.h"
#include "gateway_internal.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Appends the # HELP and # TYPE lines of the gauge `name`. */
static void gauge(tine_buf_t *out, const char *name, const char *help)
{
    tine_buf_appendf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Sandboxes by state and calls waiting, counted over the invoker's pools. */
static void render_sandboxes(gw_server_t *gw, tine_buf_t *out)
{
    static const char *const states[] = {"starting", "idle", "busy", "closing"};
    uint64_t counts[4] = {0}, queued = 0;
    json_t *stats = inv_stats(gw->inv, NULL);
    json_t *pools = json_object_get(stats, "pools");
    size_t i, j;
    json_t *p, *s;
    json_array_foreach(pools, i, p)
    {
        queued += (uint64_t)json_integer_value(json_object_get(p, "queued"));
        json_array_foreach(json_object_get(p, "sandboxes"), j, s)
        {
            const char *st = json_string_value(json_object_get(s, "state"));
            for (int k = 0; st && k < 4; k++)
                if (strcmp(st, states[k]) == 0)
                    counts[k]++;
        }
    }
    json_decref(stats);
    gauge(out, "tine_sandboxes", "Sandboxes on this node by state.");
    for (int k = 0; k < 4; k++)
        tine_buf_appendf(out, "tine_sandboxes{state=\"%s\"} %" PRIu64 "\n", states[k], counts[k]);
    gauge(out, "tine_invocations_queued", "Calls waiting for a sandbox on this node.");
    tine_buf_appendf(out, "tine_invocations_queued %" PRIu64 "\n", queued);
}

/* The gateway's connections, held request bodies and refusals. */
static void render_http(gw_server_t *gw, tine_buf_t *out)
{
    gauge(out, "tine_http_connections", "Client connections open on this node.");
    tine_buf_appendf(out, "tine_http_connections %zu\n", gw->conns);
    gauge(out, "tine_http_body_bytes", "Request body bytes held for function calls (--max-buffered-body).");
    tine_buf_appendf(out, "tine_http_body_bytes %zu\n", gw->body_held);
    tine_buf_appendf(out,
                     "# HELP tine_http_refused_total Connections and request bodies refused for the node's limits.\n"
                     "# TYPE tine_http_refused_total counter\n"
                     "tine_http_refused_total{reason=\"connections\"} %" PRIu64 "\n"
                     "tine_http_refused_total{reason=\"body_budget\"} %" PRIu64 "\n",
                     gw->refused_connections, gw->refused_bodies);
    gauge(out, "tine_http_requests_in_flight", "Requests being served by this node.");
    tine_buf_appendf(out, "tine_http_requests_in_flight %zu\n", gw->requests);
    static const char *const states[] = {"starting", "ready", "not-ready", "draining"};
    const char *now = gw_state(gw);
    gauge(out, "tine_node_state", "The node's state, as GET /_tine/v1/ready sees it: 1 for the current one.");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        tine_buf_appendf(out, "tine_node_state{state=\"%s\"} %d\n", states[i], strcmp(states[i], now) == 0);
}

/* Appends the Redis connection metrics and the event queue gauges (left out
 * when Redis cannot be asked). */
static void render_events(gw_server_t *gw, tine_buf_t *out)
{
    rds_metrics_render(out);
    if (gw->events)
        tine_buf_appendf(out,
                         "# HELP tine_events_taken_over_total Pending stream entries this node claimed from lost "
                         "nodes.\n# TYPE tine_events_taken_over_total counter\ntine_events_taken_over_total %" PRIu64
                         "\n",
                         ev_taken_over(gw->events));
    uint64_t queued = 0, dead = 0;
    if (gw->events == NULL || ev_queue_lengths(gw->events, &queued, &dead) != 0)
        return; /* Redis unreachable: no figure rather than a wrong one */
    gauge(out, "tine_event_queue_length", "Entries in the event stream (cluster-wide).");
    tine_buf_appendf(out, "tine_event_queue_length %" PRIu64 "\n", queued);
    gauge(out, "tine_event_dead_letters", "Dead letters in every app's dead-letter stream (cluster-wide).");
    tine_buf_appendf(out, "tine_event_dead_letters %" PRIu64 "\n", dead);
}

/* process_* as the Prometheus client libraries export them, from /proc. */
static void render_process(tine_buf_t *out)
{
    char *stat = NULL;
    size_t len = 0;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tine_read_file("/proc/self/stat", &stat, &len) == 0 && tick > 0) {
        /* Fields after the ")" that closes the command name: 3 is the state,
         * 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss (pages). */
        const char *p = strrchr(stat, ')');
        unsigned long long f[25] = {0};
        for (int field = 3; p && field <= 24; field++) {
            p = strchr(p + 1, ' ');
            if (p && field != 3)
                f[field] = strtoull(p + 1, NULL, 10);
        }
        double btime = 0;
        char *pstat = NULL;
        size_t plen = 0;
        if (tine_read_file("/proc/stat", &pstat, &plen) == 0) {
            const char *b = strstr(pstat, "\nbtime ");
            if (b)
                btime = strtod(b + 7, NULL);
            free(pstat);
        }
        tine_buf_appendf(out,
                         "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                         "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
                         (double)(f[14] + f[15]) / (double)tick);
        tine_buf_appendf(out,
                         "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                         "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                         btime + (double)f[22] / (double)tick);
        tine_buf_appendf(out,
                         "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                         "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
                         f[23]);
        tine_buf_appendf(out,
                         "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                         "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
                         f[24] * (unsigned long long)page);
    }
    free(stat);
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            n += e->d_name[0] != '.';
        closedir(d);
        tine_buf_appendf(out,
                         "# HELP process_open_fds Number of open file descriptors.\n"
                         "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                         n - 1); /* less the one reading the directory */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        tine_buf_appendf(out,
                         "# HELP process_max_fds Maximum number of open file descriptors.\n"
                         "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                         (unsigned long long)rl.rlim_cur);
}

/* What each app version answered on this node (registry's counters):
 * requests, errors and a latency histogram, labelled app and version. */
static void render_versions(gw_server_t *gw, tine_buf_t *out)
{
    size_t n = reg_rollouts_counters(gw->rollouts, NULL, 0);
    reg_version_counter_t *c = xcalloc(n + 1, sizeof(*c));
    reg_rollouts_counters(gw->rollouts, c, n);
    tine_buf_appendf(out, "# HELP tine_version_requests_total Calls answered by each app version on this node.\n"
                          "# TYPE tine_version_requests_total counter\n");
    for (size_t i = 0; i < n; i++)
        tine_buf_appendf(out, "tine_version_requests_total{app=\"%s\",version=\"%" PRIu64 "\"} %" PRIu64 "\n", c[i].app,
                         c[i].version, c[i].stats->requests);
    tine_buf_appendf(out, "# HELP tine_version_errors_total Calls of each app version that failed (5xx, timeout, "
                          "crash) on this node.\n# TYPE tine_version_errors_total counter\n");
    for (size_t i = 0; i < n; i++)
        tine_buf_appendf(out, "tine_version_errors_total{app=\"%s\",version=\"%" PRIu64 "\"} %" PRIu64 "\n", c[i].app,
                         c[i].version, c[i].stats->errors);
    tine_buf_appendf(out, "# HELP tine_version_duration_seconds Duration of the calls of each app version on this "
                          "node.\n# TYPE tine_version_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (size_t b = 0; b < REG_LATENCY_BUCKETS; b++) {
            cum += c[i].stats->buckets[b];
            char le[24];
            if (b < REG_LATENCY_BUCKETS - 1)
                snprintf(le, sizeof le, "%g", reg_latency_bounds_ms[b] / 1000.0);
            else
                snprintf(le, sizeof le, "+Inf");
            tine_buf_appendf(
                out, "tine_version_duration_seconds_bucket{app=\"%s\",version=\"%" PRIu64 "\",le=\"%s\"} %" PRIu64 "\n",
                c[i].app, c[i].version, le, cum);
        }
        tine_buf_appendf(out, "tine_version_duration_seconds_count{app=\"%s\",version=\"%" PRIu64 "\"} %" PRIu64 "\n",
                         c[i].app, c[i].version, cum);
    }
    free(c);
}

int gw__metrics(gw_server_t *gw, h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        gw__send_error(req, 405, "use GET to read the metrics");
        return 0;
    }
    if (gw->metrics_token && !gw__bearer_ok(req, gw->metrics_token)) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("www-authenticate"), 0, NULL,
                              H2O_STRLIT("Bearer"));
        gw__send_error(req, 401, "missing or wrong metrics token (send Authorization: Bearer <token>)");
        return 0;
    }
    tine_buf_t out;
    tine_buf_init(&out);
    if (gw->bill)
        bill_metrics_render(gw->bill, &out);
    render_sandboxes(gw, &out);
    render_versions(gw, &out);
    render_http(gw, &out);
    gw__tls_metrics(gw->tls, &out);
    render_events(gw, &out);
    if (gw->metrics_more)
        gw->metrics_more(gw->metrics_more_data, &out);
    render_process(&out);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    gw__send_body(req, out.data ? out.data : "", out.len);
    tine_buf_dispose(&out);
    return 0;
}
