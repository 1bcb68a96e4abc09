/* tined: the tine node. main() only wires the modules together: config, the
 * zygote (forked first, before any thread or loop), Redis (given, or a
 * private redis-server), the live registry, the invoker, the events module,
 * billing and the gateway. */
#include "billing.h"
#include "config.h"
#include "events.h"
#include "gateway.h"
#include "invoker.h"
#include "otlp.h"
#include "registry.h"
#include "sandbox.h"
#include "tenancy.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* Where a node is in its life: serving, then the steps of a drain (SIGTERM,
 * SIGINT or tine drain). */
typedef enum {
    NODE_SERVING,
    NODE_GRACE,     /* not ready, still serving: load balancers move away */
    NODE_FINISHING, /* no new connections: calls in flight finish */
    NODE_FLUSHING,  /* the last records written, their log lines to followers */
    NODE_LEAVING,   /* pending events handed back, deregistering */
    NODE_CLOSING,   /* modules stopped: the last answers go out */
} node_phase_t;

typedef struct {
    uv_loop_t *loop;
    inv_invoker_t *inv;
    reg_live_t *live;
    reg_rollouts_t *rollouts; /* per-version counters, the rollout driver */
    ev_events_t *ev;
    gw_server_t *gw;
    gw_tls_t *tls; /* --tls-cert: the certificate SIGHUP reloads; NULL: HTTP */
    bill_t *bill;
    otlp_t *otlp; /* --otlp-endpoint; NULL: no export */
    tn_tenancy_t *tenancy;
    tn_quotas_t *quotas; /* the invoker's admission; counts every call's cost */
    bill_prices_t prices;
    bool activations; /* billing records every invocation (--activations) */
    const char *listen;
    char address[300]; /* where this node serves HTTP, as the cluster sees it */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sighup;
    uv_timer_t drain_timer;
    node_phase_t phase;
    uint64_t grace_ms, timeout_ms; /* --drain-grace, --drain-timeout */
    uint64_t drain_started_ms;     /* monotonic */
    uint64_t phase_end_ms;         /* when the current phase ends at the latest */
    bool hurried;                  /* asked again: no more grace, no wait for calls */
    bool stopping;
} tined_t;

/* Reads the admin token from the state dir, creating it (printed once) on
 * the first start. Returns a heap string or NULL on failure. */
static char *load_or_create_token(const char *state_dir)
{
    char *path = xasprintf("%s/admin.token", state_dir);
    char *token = NULL;
    bool created = false;
    int rc = tine_secret_file(path, 24, 16, &token, &created);
    if (rc != 0)
        tine_log(TINE_LOG_ERROR, "cannot make the admin token %s: %s", path, tine_strerror(rc));
    else if (created)
        tine_log(TINE_LOG_WARN, "generated the admin token (shown once; saved in %s): %s", path, token);
    free(path);
    return token;
}

/* Locks the state dir for the life of the process: an exclusive flock on
 * state_dir/tined.lock (close-on-exec, so no child keeps it), which then
 * holds our pid. Two nodes on one state dir would start two redis-servers
 * on one socket and append-only file. Returns the descriptor, or -1 after
 * logging why (naming the pid of the node that holds it). */
static int lock_state_dir(const char *state_dir)
{
    char *path = xasprintf("%s/tined.lock", state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        tine_log(TINE_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            tine_log(TINE_LOG_ERROR,
                     "state dir %s is in use by another tined (pid %s): give each node its own --state-dir", state_dir,
                     pid[0] ? pid : "unknown");
        else
            tine_log(TINE_LOG_ERROR, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        free(path);
        return -1;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len)
        tine_log(TINE_LOG_WARN, "cannot write the pid into %s: %s", path, strerror(errno));
    free(path);
    return fd;
}

/* Checks a Redis given with --redis before anything uses it. A server that
 * refuses what the URL gives (a password, a certificate) stops the node:
 * waiting will not mend that. One that cannot be reached, or that no
 * sentinel names (or names wrongly), is said loudly and the node starts
 * anyway: it keeps trying, serves nothing and is not ready
 * (GET /_tine/v1/ready) until it has loaded the apps. Warns when Redis has
 * no password over the network. Returns -1 to stop. */
static int check_redis(const char *url)
{
    char err[2048];
    rds_sync_t *s = rds_sync_new(url, 5000, err, sizeof err);
    int rc = s ? rds_sync_connect(s, err, sizeof err) : TINE_EINVAL;
    rds_sync_free(s);
    if (rc == TINE_EREDIS)
        tine_log(TINE_LOG_ERROR,
                 "%s; starting anyway: this node keeps trying, and is not ready until it has loaded the apps", err);
    else if (rc != 0)
        tine_log(TINE_LOG_ERROR, "%s", err);
    if (rc != 0 && rc != TINE_EREDIS)
        return -1;
    rds_url_t u;
    if (rds_url_parse(url, &u, err, sizeof err) == 0) {
        if (u.transport != RDS_UNIX && u.password == NULL)
            tine_log(TINE_LOG_WARN,
                     "redis at %s has no password: whoever reaches it can read and change every app, event and "
                     "record (set one with requirepass and give it in the URL: redis://:PASSWORD@HOST:PORT)",
                     u.redacted);
        rds_url_dispose(&u);
    }
    return 0;
}

/* Configures the isolation layers the zygote will apply, with a temp dir
 * (mode 0711) for the working dirs of exec programs. Returns the dir, or
 * NULL after printing why. */
static char *start_isolation(const tined_config_t *cfg)
{
    const char *base = getenv("TMPDIR");
    char *dir = xasprintf("%s/tine-XXXXXX", base && base[0] == '/' ? base : "/tmp");
    int rc = mkdtemp(dir) == NULL || chmod(dir, 0711) != 0 ? -errno : 0;
    sbx_isolation_config_t iso = {.enabled = cfg->isolation, .sandbox_uid = cfg->sandbox_uid, .tmp_dir = dir};
    if (rc == 0)
        rc = sbx_isolation_configure(&iso);
    if (rc != 0) {
        tine_log(TINE_LOG_ERROR, "cannot prepare sandbox isolation (temp dir %s): %s", dir, tine_strerror(rc));
        free(dir);
        return NULL;
    }
    /* Bundles must stay readable for sandboxes running as another uid. */
    umask(umask(0) & 022);
    return dir;
}

/* Prints a warning for every isolation layer the zygote could not apply. */
static int report_isolation(void)
{
    sbx_isolation_report_t r;
    int rc = sbx_isolation_await_report(&r, 10000);
    if (rc != 0)
        return rc;
    for (int i = 0; i < SBX_LAYER_COUNT; i++)
        if (!r.layers[i].active)
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("layer", sbx_layer_name(i)), "isolation layer %s is off: %s",
                        sbx_layer_name(i), r.layers[i].detail);
    return 0;
}

/* The live table's change of an app's version: the invoker retires the old
 * version and warms the new; events follows the new version's triggers. */
static void on_live_change(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v)
{
    tined_t *t = data;
    if (old_v && t->inv)
        inv_version_retired(t->inv, old_v);
    if (new_v && t->inv)
        inv_version_live(t->inv, new_v);
    ev_app_changed(t->ev, old_v, new_v);
}

/* A version loaded besides the live one (a preview, a tag's, a split's)
 * or dropped: the invoker warms or retires its pools; events stay on the
 * live version. */
static void on_preview_change(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v)
{
    tined_t *t = data;
    if (old_v && t->inv)
        inv_version_retired(t->inv, old_v);
    if (new_v && t->inv)
        inv_version_live(t->inv, new_v);
}

/* tine.emit: the invoker hands each event to the events module. */
static int on_emit(void *data, const inv_emit_t *e, inv_emit_done_cb done, void *done_data)
{
    tined_t *t = data;
    return t->ev ? ev_emit(t->ev, e, done, done_data) : TINE_EREDIS;
}

/* The invoker has one activation observer: it hands each finished
 * invocation to every module that wants it (the counters per version and
 * rollouts; log triggers; spend quotas, with --activations off too;
 * billing). */
static void on_activation(void *data, const inv_activation_t *a)
{
    tined_t *t = data;
    reg_rollouts_observe(t->rollouts, a->app, a->version, a->code != 0 || a->status >= 500, a->duration_ns);
    if (t->ev)
        ev_on_activation(t->ev, a);
    tn_quotas_spent(t->quotas, a->ns, bill_activation_cost(&t->prices, a));
    if (t->bill && t->activations)
        bill_on_activation(t->bill, a);
    if (t->otlp)
        otlp_add(t->otlp, a);
}

/* Monotonic milliseconds. */
static uint64_t mono_ms(void)
{
    return tine_now_ns() / 1000000u;
}

/* The node's state, address and load for its heartbeat (events). */
static void node_status(void *data, ev_node_status_t *st)
{
    tined_t *t = data;
    st->state = t->gw ? gw_state(t->gw) : "starting";
    st->address = t->address;
    inv_load(t->inv, &st->sandboxes, &st->calls);
    inv_sandbox_counts(t->inv, &st->starting, &st->idle, &st->busy);
}

/* Where this node serves as others reach it: the listen address with the
 * bound port, the host name for a wildcard address. */
static void set_address(tined_t *t)
{
    const char *colon = strrchr(t->listen, ':');
    size_t hl = colon ? (size_t)(colon - t->listen) : 0;
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)hl, t->listen);
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0) {
        if (gethostname(host, sizeof host - 1) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
    }
    snprintf(t->address, sizeof t->address, "%s:%d", host, gw_port(t->gw));
}

/* Stops the modules that start invocations: events, then the invoker. */
static void stop_modules(tined_t *t)
{
    ev_free(t->ev);
    t->ev = NULL;
    inv_free(t->inv); /* calls still running answer 503 */
    t->inv = NULL;
}

/* The last step: frees what is left and ends the loop. */
static void node_close(tined_t *t)
{
    uv_timer_stop(&t->drain_timer);
    uv_close((uv_handle_t *)&t->drain_timer, NULL);
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
    uv_close((uv_handle_t *)&t->sighup, NULL);
    gw_free(t->gw);
    t->gw = NULL;
    tn_free(t->tenancy); /* after the gateway: its last audit entries are written */
    t->tenancy = NULL;
    tn_quotas_free(t->quotas); /* after the invoker: its hooks point there */
    t->quotas = NULL;
    bill_free(t->bill); /* after the invoker: its last activations are written */
    t->bill = NULL;
    reg_rollouts_free(t->rollouts);
    otlp_free(t->otlp); /* after the invoker too: its last spans are sent */
    t->otlp = NULL;
    reg_live_free(t->live);
    t->live = NULL;
    t->stopping = true;
    tine_log(TINE_LOG_INFO, "stopped after a drain of %.1f s", (double)(mono_ms() - t->drain_started_ms) / 1000.0);
    uv_stop(t->loop);
}

static void enter_closing(tined_t *t)
{
    t->phase = NODE_CLOSING;
    t->phase_end_ms = mono_ms() + 1000; /* for the 503s of calls cut short to go out */
    stop_modules(t);
}

/* ev_leave is done: the node's pending events are the others' now. */
static void on_left(void *data, int rc, size_t handed_back, const char *why)
{
    tined_t *t = data;
    if (rc == 0)
        tine_log(TINE_LOG_INFO, "left the cluster; %zu pending event%s handed back to the other nodes", handed_back,
                 handed_back == 1 ? "" : "s");
    else
        tine_log(TINE_LOG_WARN,
                 "could not leave the cluster cleanly (%s); the other nodes take this node's pending events over "
                 "once its heartbeat expires (3 s)",
                 why ? why : "redis is unreachable");
    if (t->phase == NODE_LEAVING)
        enter_closing(t);
}

/* The log lines of the last calls reached their followers: they end, the
 * events go back. */
static void enter_leaving(tined_t *t)
{
    t->phase = NODE_LEAVING;
    t->phase_end_ms = mono_ms() + 3000;
    bill_end_follows(t->bill);
    if (ev_leave(t->ev, on_left, t) != 0)
        on_left(t, TINE_EREDIS, 0, ev_redis_error(t->ev));
}

#define FLUSH_LINGER_MS 300 /* for the last log lines to come back from Redis to the followers */

/* The calls in flight are done or out of time: their records are written
 * now, and the followers of this node's log streams get their lines. */
static void enter_flushing(tined_t *t)
{
    size_t sandboxes = 0, calls = 0;
    inv_load(t->inv, &sandboxes, &calls);
    size_t requests = gw_requests_in_flight(t->gw), events = ev_busy(t->ev);
    if (calls || requests || events)
        tine_log(TINE_LOG_WARN,
                 "drain: %zu call%s, %zu request%s and %zu event%s still in flight after --drain-timeout: calls are "
                 "answered 503, events handed back",
                 calls, calls == 1 ? "" : "s", requests, requests == 1 ? "" : "s", events, events == 1 ? "" : "s");
    bill_flush(t->bill);
    t->phase = NODE_FLUSHING;
    t->phase_end_ms = mono_ms() + FLUSH_LINGER_MS;
}

/* Every 20 ms while draining: moves through the phases, each ending when
 * its work is done or its time is up. */
static void on_drain_tick(uv_timer_t *timer)
{
    tined_t *t = timer->data;
    uint64_t now = mono_ms();
    if (t->phase == NODE_GRACE) {
        if (now < t->phase_end_ms)
            return;
        /* No new connections; kept-alive ones close after their next
         * answer. Followed log streams go on until the last calls ended. */
        gw_shutdown(t->gw);
        t->phase = NODE_FINISHING;
        t->phase_end_ms = t->hurried ? now : now + t->timeout_ms;
    }
    if (t->phase == NODE_FINISHING) {
        size_t sandboxes = 0, calls = 0;
        inv_load(t->inv, &sandboxes, &calls);
        if ((calls || gw_requests_in_flight(t->gw) || ev_busy(t->ev)) && now < t->phase_end_ms)
            return;
        enter_flushing(t);
        return;
    }
    if (t->phase == NODE_FLUSHING) {
        if (now >= t->phase_end_ms)
            enter_leaving(t);
        return;
    }
    if (t->phase == NODE_LEAVING) {
        if (now < t->phase_end_ms)
            return;
        tine_log(TINE_LOG_WARN, "redis did not answer the leave within 3 s; stopping anyway");
        enter_closing(t);
        return;
    }
    if (t->phase == NODE_CLOSING && (gw_requests_in_flight(t->gw) == 0 || now >= t->phase_end_ms))
        node_close(t);
}

/* Starts the drain (`why` says who asked), or hurries one under way: a
 * second signal gives up the grace and the wait for calls in flight. The
 * node is not ready from now on; it keeps serving for --drain-grace when a
 * load balancer checks /ready (it asked within the last minute), then
 * takes no new connection and gives the calls in flight --drain-timeout to
 * finish; then it hands its pending events back, deregisters and stops. */
static void drain_begin(tined_t *t, const char *why)
{
    uint64_t now = mono_ms();
    if (t->phase == NODE_GRACE || t->phase == NODE_FINISHING) {
        tine_log(TINE_LOG_INFO, "stopping now (%s): calls in flight are not waited for", why);
        t->hurried = true;
        if (t->phase == NODE_GRACE)
            t->phase_end_ms = now;
        else
            enter_flushing(t);
        return;
    }
    if (t->phase != NODE_SERVING)
        return;
    bool watched = gw_ready_asked_within(t->gw, 60000);
    uint64_t grace = watched ? t->grace_ms : 0;
    t->phase = NODE_GRACE;
    t->drain_started_ms = now;
    t->phase_end_ms = now + grace;
    gw_set_draining(t->gw, why);
    ev_drain(t->ev);
    tine_log(TINE_LOG_INFO,
             "draining (%s): not ready; serving %.1f s more%s, then at most %.1f s for the calls in flight", why,
             (double)grace / 1000.0, watched ? " for the load balancer" : " (nothing checks /ready)",
             (double)t->timeout_ms / 1000.0);
    uv_timer_start(&t->drain_timer, on_drain_tick, 0, 20);
}

/* ev_config_t.select_version: a version of an app loaded by the live table
 * (an event pinned to it). */
static int select_version(void *data, const char *app, const char *sel, reg_app_version_t **out, char *err,
                          size_t errlen)
{
    tined_t *t = data;
    if (t->live == NULL) {
        snprintf(err, errlen, "the node is starting");
        return TINE_EREDIS;
    }
    return reg_live_select(t->live, app, sel, out, err, errlen);
}

/* ev_config_t.event_split: the live table's split with --events. */
static bool event_split(void *data, const char *app, reg_app_version_t **v, unsigned *percent)
{
    tined_t *t = data;
    return t->live != NULL && reg_live_event_split(t->live, app, v, percent);
}

/* Someone asked this node to drain through the admin API (tine drain). */
static void on_drain_request(void *data, const char *by)
{
    tined_t *t = data;
    char why[300];
    snprintf(why, sizeof why, "asked through node %s", by);
    drain_begin(t, why);
}

/* SIGINT/SIGTERM: a drain; the second one hurries it. */
static void on_signal(uv_signal_t *s, int signum)
{
    tined_t *t = s->data;
    drain_begin(t, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* SIGHUP: the TLS certificate and key are read again (gw_tls_reload logs
 * the outcome); without TLS there is nothing to reload. */
static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    tined_t *t = s->data;
    if (t->tls != NULL)
        gw_tls_reload(t->tls);
    else
        tine_log(TINE_LOG_INFO, "SIGHUP: nothing to reload (no --tls-cert)");
}

int main(int argc, char **argv)
{
    tined_config_t cfg;
    int rc = tined_config_load(&cfg, argc, argv);
    if (rc != 0) {
        tined_config_dispose(&cfg);
        return rc > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (tine_mkdirs(cfg.state_dir, 0700) != 0) {
        tine_log(TINE_LOG_ERROR, "cannot create state dir %s: %s", cfg.state_dir, strerror(errno));
        return 1;
    }
    int lock_fd = lock_state_dir(cfg.state_dir);
    if (lock_fd < 0) {
        tined_config_dispose(&cfg);
        return 1;
    }
    char sdk_file[4096];
    snprintf(sdk_file, sizeof(sdk_file), "%s/tine.lua", cfg.sdk_dir);
    if (access(sdk_file, R_OK) != 0) {
        tine_log(TINE_LOG_ERROR, "the Lua SDK is missing: %s (set --sdk-dir)", sdk_file);
        return 1;
    }
    char err[1024];
    /* Before anything starts: a bad certificate or key stops the node here. */
    gw_tls_t *tls = NULL;
    if (cfg.tls_cert && (tls = gw_tls_new(cfg.tls_cert, cfg.tls_key, cfg.http2, err, sizeof err)) == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        tined_config_dispose(&cfg);
        close(lock_fd);
        return 1;
    }

    /* The zygote first: a small process forked before any thread or loop.
     * It applies the isolation layers and reports which it could. */
    char *tmp_dir = start_isolation(&cfg);
    if (tmp_dir == NULL) {
        gw_tls_free(tls);
        return 1;
    }
    sbx_zygote_t zygote = {0};
    if ((rc = sbx_zygote_start(&zygote, cfg.sdk_dir)) != 0 || (rc = report_isolation()) != 0) {
        tine_log(TINE_LOG_ERROR, "cannot start the zygote: %s", tine_strerror(rc));
        if (zygote.pid > 0)
            sbx_zygote_stop(&zygote);
        sbx_isolation_cleanup(tmp_dir);
        gw_tls_free(tls);
        return 1;
    }

    int redis_pid = 0;
    char *redis_url = NULL;
    rds_set_client_prefix(cfg.node_id); /* CLIENT LIST on Redis shows whose connections are whose */
    if (cfg.redis_url) {
        redis_url = xstrdup(cfg.redis_url);
        rc = check_redis(redis_url);
    } else if ((rc = reg_embedded_redis_start(cfg.state_dir, cfg.redis_maxmemory, &redis_pid, &redis_url, err,
                                              sizeof(err))) != 0) {
        tine_log(TINE_LOG_ERROR, "%s", err);
    }
    if (rc != 0) {
        free(redis_url);
        sbx_zygote_stop(&zygote);
        sbx_isolation_cleanup(tmp_dir);
        free(tmp_dir);
        gw_tls_free(tls);
        tined_config_dispose(&cfg);
        close(lock_fd);
        return 1;
    }
    char *redis_shown = rds_url_redact(redis_url);

    char *token = NULL;
    if (cfg.admin_token)
        token = xstrdup(cfg.admin_token);
    else if (!cfg.no_auth && (token = load_or_create_token(cfg.state_dir)) == NULL)
        goto fail;

    tined_t t = {0};
    t.loop = uv_default_loop();
    t.tls = tls;
    t.listen = cfg.listen;
    t.grace_ms = cfg.drain_grace_ms;
    t.timeout_ms = cfg.drain_timeout_ms;
    char *spill_path = xasprintf("%s/activations.spill", cfg.state_dir);
    bill_config_t bcfg = {
        .redis_url = redis_url,
        .prices = {.gb_s_pusd = cfg.price_gb_s_pusd, .request_pusd = cfg.price_request_pusd},
        .retention_count = cfg.retention_count,
        .retention_s = cfg.retention_s,
        .max_pending = cfg.activation_buffer,
        .node_id = cfg.node_id,
        .spill_path = spill_path,
    };
    t.bill = bill_new(t.loop, &bcfg);
    free(spill_path);
    t.prices = bcfg.prices;
    if (cfg.otlp_endpoint && cfg.otlp_endpoint[0]) {
        if (strncmp(cfg.otlp_endpoint, "http://", 7) != 0 && strncmp(cfg.otlp_endpoint, "https://", 8) != 0) {
            tine_log(TINE_LOG_ERROR, "--otlp-endpoint %s: expected an http:// or https:// URL", cfg.otlp_endpoint);
            goto fail;
        }
        if ((t.otlp = otlp_new(cfg.otlp_endpoint, cfg.node_id, err, sizeof(err))) == NULL) {
            tine_log(TINE_LOG_ERROR, "%s", err);
            goto fail;
        }
    }
    t.activations = cfg.activations;
    /* Before the invoker: it asks the quotas before every call. */
    t.quotas = tn_quotas_new(t.loop, redis_url, cfg.node_id, err, sizeof(err));
    if (t.quotas == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        goto fail;
    }
    inv_config_t icfg = {
        .max_queue = cfg.max_queue,
        .max_sandboxes = cfg.max_sandboxes,
        .app_reserve = cfg.app_reserve,
        .idle_timeout_ms = cfg.idle_timeout_ms,
        .redis_url = redis_url,
        .on_emit = on_emit,
        .on_emit_data = &t,
        .max_invoke_depth = cfg.max_invoke_depth,
        .log_rate = cfg.log_rate,
        .kv_value_max = cfg.kv_value_max,
        .kv_keys_max = cfg.kv_keys_max,
        .kv_bytes_max = cfg.kv_bytes_max,
        .on_activation = on_activation,
        .on_activation_data = &t,
        .admission = tn_quotas_admission(t.quotas),
        .has_secrets_key = cfg.has_secrets_key,
    };
    memcpy(icfg.secrets_key, cfg.secrets_key, sizeof icfg.secrets_key);
    t.inv = inv_new(t.loop, &zygote, &icfg);
    /* Before the live table, so it learns every app the table loads. */
    ev_config_t ecfg = {
        .redis_url = redis_url,
        .node_id = cfg.node_id,
        .log_paths = cfg.log_paths,
        .docker_socket = cfg.docker_socket,
        .docker_events = cfg.docker_events,
        .version = TINED_VERSION,
        .drain_grace_ms = (uint32_t)cfg.drain_grace_ms,
        .drain_timeout_ms = (uint32_t)cfg.drain_timeout_ms,
        .node_status = node_status,
        .on_drain_request = on_drain_request,
        .select_version = select_version,
        .event_split = event_split,
        .node_data = &t,
    };
    t.ev = ev_new(t.loop, &ecfg, t.inv, err, sizeof(err));
    if (t.ev == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        inv_free(t.inv);
        goto fail;
    }
    t.live = reg_live_new(t.loop, redis_url, cfg.state_dir, on_live_change, &t, err, sizeof(err));
    if (t.live == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        goto fail;
    }
    reg_live_set_preview_cb(t.live, on_preview_change, &t);
    t.rollouts = reg_rollouts_new(t.loop, t.live, redis_url, cfg.node_id, err, sizeof(err));
    if (t.rollouts == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        goto fail;
    }
    t.tenancy = tn_new(t.loop, redis_url, cfg.node_id, err, sizeof(err));
    if (t.tenancy == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        goto fail;
    }
    gw_config_t gcfg = {
        .listen = cfg.listen,
        .admin_token = token,
        .max_bundle = cfg.max_bundle,
        .max_body = 6 * 1024 * 1024,
        .max_connections = cfg.max_connections,
        .max_buffered_body = cfg.max_buffered_body,
        .http2 = cfg.http2,
        .tls = tls,
        .node_id = cfg.node_id,
        .events = t.ev,
        .bill = t.bill,
        .metrics_token = cfg.metrics_token && *cfg.metrics_token ? cfg.metrics_token : NULL,
        .tenancy = t.tenancy,
        .quotas = t.quotas,
        .has_secrets_key = cfg.has_secrets_key,
        .rollouts = t.rollouts,
        .console_dir = strcmp(cfg.console_dir, "off") == 0 ? NULL : cfg.console_dir,
        .metrics_more = t.otlp ? otlp_metrics_render : NULL,
        .metrics_more_data = t.otlp,
    };
    memcpy(gcfg.secrets_key, cfg.secrets_key, sizeof gcfg.secrets_key);
    t.gw = gw_new(t.loop, &gcfg, t.live, t.inv, err, sizeof(err));
    if (t.gw == NULL) {
        tine_log(TINE_LOG_ERROR, "%s", err);
        goto fail;
    }
    set_address(&t);
    uv_signal_init(t.loop, &t.sigint);
    uv_signal_init(t.loop, &t.sigterm);
    t.sigint.data = t.sigterm.data = &t;
    uv_signal_start(&t.sigint, on_signal, SIGINT);
    uv_signal_start(&t.sigterm, on_signal, SIGTERM);
    uv_signal_init(t.loop, &t.sighup);
    t.sighup.data = &t;
    uv_signal_start(&t.sighup, on_sighup, SIGHUP);
    uv_timer_init(t.loop, &t.drain_timer);
    t.drain_timer.data = &t;

    /* The bound port, for tools and tests that listen on port 0. */
    char *port_file = xasprintf("%s/port", cfg.state_dir);
    FILE *pf = fopen(port_file, "w");
    if (pf) {
        fprintf(pf, "%d\n", gw_port(t.gw));
        fclose(pf);
    }
    free(port_file);
    tine_log(TINE_LOG_INFO, "serving on %s://%s (port %d, node %s, state %s, redis %s%s, activations %s)",
             tls ? "https" : "http", cfg.listen, gw_port(t.gw), cfg.node_id, cfg.state_dir, redis_shown, redis_pid ? ", private" : "",
             cfg.activations ? "on" : "off");
    /* Not one UV_RUN_DEFAULT: h2o_context_dispose runs the loop itself,
     * which clears uv_stop's flag, and an open connection (a followed log
     * stream) would then keep the loop alive. */
    while (!t.stopping && uv_run(t.loop, UV_RUN_ONCE) != 0)
        ;
    /* Let closing handles finish (sandbox sockets, timers, connections). */
    uv_run(t.loop, UV_RUN_NOWAIT);
    uv_run(t.loop, UV_RUN_NOWAIT);
    rc = 0;
    goto out;
fail:
    rc = 1;
out:
    sbx_zygote_stop(&zygote);
    sbx_isolation_cleanup(tmp_dir);
    free(tmp_dir);
    reg_embedded_redis_stop(redis_pid);
    free(redis_url);
    free(redis_shown);
    free(token);
    gw_tls_free(tls);
    tined_config_dispose(&cfg);
    close(lock_fd);
    return rc;
}
