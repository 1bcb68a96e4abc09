/* tined: the tine node. main() only wires the modules together: config, the
 * zygote (forked first, before any thread or loop), Redis (given, or a
 * private redis-server), the live registry, the invoker and the gateway. */
#include "config.h"
#include "gateway.h"
#include "invoker.h"
#include "registry.h"
#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    uv_loop_t *loop;
    inv_invoker_t *inv;
    reg_live_t *live;
    gw_server_t *gw;
    uv_signal_t sigint;
    uv_signal_t sigterm;
} tined_t;

/* Reads the admin token from the state dir, creating it (printed once) on
 * the first start. Returns a heap string or NULL on failure. */
static char *load_or_create_token(const char *state_dir)
{
    char *path = xasprintf("%s/admin.token", state_dir);
    char *data = NULL;
    size_t len = 0;
    if (tine_read_file(path, &data, &len) == 0) {
        while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
            data[--len] = '\0';
        if (len >= 16) {
            free(path);
            return data;
        }
        free(data);
    }
    unsigned char raw[24];
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        fprintf(stderr, "tined: cannot generate an admin token: %s\n", strerror(errno));
        free(path);
        return NULL;
    }
    char *token = xmalloc(sizeof(raw) * 2 + 1);
    for (size_t i = 0; i < sizeof(raw); i++)
        sprintf(token + 2 * i, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, token, strlen(token)) != (ssize_t)strlen(token) || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "tined: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        free(token);
        return NULL;
    }
    close(fd);
    fprintf(stderr, "tined: generated the admin token (shown once; saved in %s):\n  %s\n", path, token);
    free(path);
    return token;
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
        fprintf(stderr, "tined: cannot prepare sandbox isolation (temp dir %s): %s\n", dir, tine_strerror(rc));
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
            fprintf(stderr, "tined: warning: isolation layer %s is off: %s\n", sbx_layer_name(i),
                    r.layers[i].detail);
    return 0;
}

static void on_live_change(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v)
{
    tined_t *t = data;
    if (old_v && t->inv)
        inv_version_retired(t->inv, old_v);
}

static void on_signal(uv_signal_t *s, int signum)
{
    tined_t *t = s->data;
    fprintf(stderr, "tined: stopping (signal %d)\n", signum);
    uv_signal_stop(&t->sigint);
    uv_signal_stop(&t->sigterm);
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
    gw_free(t->gw);
    t->gw = NULL;
    inv_free(t->inv);
    t->inv = NULL;
    reg_live_free(t->live);
    t->live = NULL;
    uv_stop(t->loop);
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
        fprintf(stderr, "tined: cannot create state dir %s: %s\n", cfg.state_dir, strerror(errno));
        return 1;
    }
    char sdk_file[4096];
    snprintf(sdk_file, sizeof(sdk_file), "%s/tine.lua", cfg.sdk_dir);
    if (access(sdk_file, R_OK) != 0) {
        fprintf(stderr, "tined: the Lua SDK is missing: %s (set --sdk-dir)\n", sdk_file);
        return 1;
    }

    /* The zygote first: a small process forked before any thread or loop.
     * It applies the isolation layers and reports which it could. */
    char *tmp_dir = start_isolation(&cfg);
    if (tmp_dir == NULL)
        return 1;
    sbx_zygote_t zygote = {0};
    if ((rc = sbx_zygote_start(&zygote, cfg.sdk_dir)) != 0 || (rc = report_isolation()) != 0) {
        fprintf(stderr, "tined: cannot start the zygote: %s\n", tine_strerror(rc));
        if (zygote.pid > 0)
            sbx_zygote_stop(&zygote);
        sbx_isolation_cleanup(tmp_dir);
        return 1;
    }

    char err[1024];
    int redis_pid = 0;
    char *redis_url = cfg.redis_url ? xstrdup(cfg.redis_url) : NULL;
    if (redis_url == NULL && reg_embedded_redis_start(cfg.state_dir, &redis_pid, &redis_url, err, sizeof(err)) != 0) {
        fprintf(stderr, "tined: %s\n", err);
        sbx_zygote_stop(&zygote);
        sbx_isolation_cleanup(tmp_dir);
        return 1;
    }

    char *token = NULL;
    reg_store_t *kv_store = NULL;
    if (cfg.admin_token)
        token = xstrdup(cfg.admin_token);
    else if (!cfg.no_auth && (token = load_or_create_token(cfg.state_dir)) == NULL)
        goto fail;

    tined_t t = {0};
    t.loop = uv_default_loop();
    kv_store = reg_store_connect(redis_url, err, sizeof(err));
    if (kv_store == NULL) {
        fprintf(stderr, "tined: %s\n", err);
        goto fail;
    }
    inv_config_t icfg = {.max_queue = 100, .store = kv_store};
    t.inv = inv_new(t.loop, &zygote, &icfg);
    t.live = reg_live_new(t.loop, redis_url, cfg.state_dir, on_live_change, &t, err, sizeof(err));
    if (t.live == NULL) {
        fprintf(stderr, "tined: %s\n", err);
        goto fail;
    }
    gw_config_t gcfg = {
        .listen = cfg.listen,
        .admin_token = token,
        .max_bundle = cfg.max_bundle,
        .max_body = 6 * 1024 * 1024,
        .node_id = cfg.node_id,
    };
    t.gw = gw_new(t.loop, &gcfg, t.live, t.inv, err, sizeof(err));
    if (t.gw == NULL) {
        fprintf(stderr, "tined: %s\n", err);
        goto fail;
    }
    uv_signal_init(t.loop, &t.sigint);
    uv_signal_init(t.loop, &t.sigterm);
    t.sigint.data = t.sigterm.data = &t;
    uv_signal_start(&t.sigint, on_signal, SIGINT);
    uv_signal_start(&t.sigterm, on_signal, SIGTERM);

    /* The bound port, for tools and tests that listen on port 0. */
    char *port_file = xasprintf("%s/port", cfg.state_dir);
    FILE *pf = fopen(port_file, "w");
    if (pf) {
        fprintf(pf, "%d\n", gw_port(t.gw));
        fclose(pf);
    }
    free(port_file);
    fprintf(stderr, "tined: serving on http://%s (port %d, node %s, state %s, redis %s%s)\n", cfg.listen,
            gw_port(t.gw), cfg.node_id, cfg.state_dir, redis_url, redis_pid ? ", private" : "");
    uv_run(t.loop, UV_RUN_DEFAULT);
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
    reg_store_free(kv_store);
    reg_embedded_redis_stop(redis_pid);
    free(redis_url);
    free(token);
    tined_config_dispose(&cfg);
    return rc;
}
