/* `tine dev [DIR]` (docs/testing.md, "tine dev"): deploys the app of DIR to
 * an ephemeral node of its own (ephemeral.c; --remote: the node tine talks
 * to), watches DIR with inotify and deploys again on every save, printing
 * the time from the save to the node serving the new version; a manifest
 * or Lua error is printed as the parser gives it (file:line[:col]) and the
 * watch goes on; the app's log lines are streamed (a thread following GET
 * .../logs?follow=1). Stops on Ctrl-C, or with an error when DIR goes. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tine_common.h"

#define DEV_SETTLE_MS 15 /* quiet time after the last change before deploying */
#define DEV_WATCH_MASK                                                                                           \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |      \
     IN_ONLYDIR)

static volatile sig_atomic_t dev_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    dev_stop = 1;
}

/* The watches: descriptor -> directory (to watch new subdirectories). */
typedef struct {
    int fd;
    int root_wd;
    char *root;
    int *wds;
    char **paths;
    size_t n, cap;
} watch_t;

/* Watches dir and every directory below it but hidden ones (a change in
 * tests/ deploys again too: harmless, the files are the same). */
static void watch_tree(watch_t *w, const char *dir)
{
    int wd = inotify_add_watch(w->fd, dir, DEV_WATCH_MASK);
    if (wd < 0)
        return;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->wds = xrealloc(w->wds, w->cap * sizeof(*w->wds));
        w->paths = xrealloc(w->paths, w->cap * sizeof(*w->paths));
    }
    w->wds[w->n] = wd;
    w->paths[w->n++] = xstrdup(dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *sub = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(w, sub);
        free(sub);
    }
    if (d)
        closedir(d);
}

static const char *watch_path(const watch_t *w, int wd)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->wds[i] == wd)
            return w->paths[i];
    return NULL;
}

/* Reads the pending events. Returns 1 when something changed, 0 when not,
 * -1 when the watched directory itself went away. */
static int read_events(watch_t *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changed = 0;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            p += sizeof *e + e->len;
            if (e->wd == w->root_wd && (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)))
                return -1;
            const char *name = e->len ? e->name : "";
            if (name[0] == '.')
                continue; /* editors' swap files; not deployed anyway */
            if ((e->mask & (IN_CREATE | IN_MOVED_TO)) && (e->mask & IN_ISDIR)) {
                const char *parent = watch_path(w, e->wd);
                if (parent) {
                    char *sub = xasprintf("%s/%s", parent, name);
                    watch_tree(w, sub);
                    free(sub);
                }
            }
            if (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE))
                changed = 1;
        }
    }
    struct stat st;
    if (stat(w->root, &st) != 0)
        return -1;
    return changed;
}

/* Following the app's logs on a thread of its own, with its own client. */
typedef struct {
    char *url;
    char *token;
    char *app;
    FILE *out;
} follow_t;

static int on_log_line(void *data, const char *line, size_t len)
{
    follow_t *f = data;
    if (len > 0 && cli_render_log_line(line, f->out) == 0)
        fflush(f->out);
    return dev_stop;
}

static void *follow_logs(void *arg)
{
    follow_t *f = arg;
    while (!dev_stop) {
        tine_client_t *c = tine_client_new(f->url, f->token);
        if (c != NULL) {
            tine_client_set_timeout_ms(c, 0);
            tine_logs(c, f->app, NULL, 0, 1, on_log_line, f);
            tine_client_free(c);
        }
        for (int i = 0; i < 10 && !dev_stop; i++)
            usleep(50000);
    }
    return NULL;
}

/* One deploy; prints "deployed APP version N (saved -> served in X ms)". */
static void dev_deploy(cli_ctx_t *ctx, tine_client_t *c, const char *dir, const char *want_app, uint64_t saved_ns)
{
    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    if (cli_pack_checked(ctx, dir, &app, &tgz, &len) != CLI_OK) {
        fprintf(ctx->err, "tine dev: not deployed; still watching %s\n", dir);
        fflush(ctx->err);
        return;
    }
    if (want_app && strcmp(app, want_app) != 0) {
        fprintf(ctx->err, "tine dev: the manifest now names app '%s', not '%s'; restart tine dev to switch\n", app,
                want_app);
        free(app);
        free(tgz);
        return;
    }
    char *answer = NULL;
    int e = tine_deploy_ex(c, app, tgz, len, TINE_DEPLOY_FORCE, &answer);
    uint64_t now = tine_now_ns();
    if (e != 0) {
        fprintf(ctx->err, "%s\n", tine_client_error(c));
        fprintf(ctx->err, "tine dev: not deployed; still watching %s\n", dir);
    } else {
        json_t *j = json_loads(answer, 0, NULL);
        fprintf(ctx->out, "deployed %s version %" JSON_INTEGER_FORMAT, app,
                json_integer_value(json_object_get(j, "version")));
        if (saved_ns)
            fprintf(ctx->out, " (saved -> served in %.0f ms)", (double)(now - saved_ns) / 1e6);
        fputc('\n', ctx->out);
        json_decref(j);
    }
    fflush(ctx->out);
    fflush(ctx->err);
    tine_free(answer);
    free(app);
    free(tgz);
}

int cli_cmd_dev(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1] = {"."};
    bool remote = false;
    const cli_flag_t flags[] = {{"remote", 0, NULL, &remote}};
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, flags, 1, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *dir = npos > 0 ? pos[0] : ".";
    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    /* The first deploy must pass: there is nothing to serve before it. */
    if (cli_pack_checked(ctx, dir, &app, &tgz, &len) != CLI_OK)
        return CLI_FAIL;
    free(tgz);

    cli_node_t node;
    memset(&node, 0, sizeof node);
    cli_conn_t conn;
    memset(&conn, 0, sizeof conn);
    tine_client_t *c = NULL;
    if (remote) {
        c = cli_connect(ctx, &conn);
    } else if (cli_node_start(ctx, &node) == CLI_OK) {
        c = tine_client_new(node.url, NULL);
    }
    if (c == NULL) {
        cli_node_stop(&node);
        cli_conn_dispose(&conn);
        free(app);
        return CLI_FAIL;
    }
    const char *url = remote ? conn.url : node.url;
    fprintf(ctx->out, "tine dev: %s on %s%s; watching %s (Ctrl-C stops)\n", app, url,
            remote ? "" : " (an ephemeral node)", dir);

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    watch_t w = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), .root = xstrdup(dir)};
    int rc = CLI_OK;
    if (w.fd < 0) {
        rc = cli_fail(ctx, "cannot watch %s: inotify: %s", dir, strerror(errno));
    } else {
        watch_tree(&w, dir);
        w.root_wd = w.n > 0 ? w.wds[0] : -1;
        if (w.root_wd < 0)
            rc = cli_fail(ctx, "cannot watch %s: %s", dir, strerror(errno));
    }
    if (rc == CLI_OK) {
        dev_deploy(ctx, c, dir, app, 0);
        /* Static: the detached thread may read it until the process ends. */
        static follow_t f;
        f = (follow_t){.url = xstrdup(url), .token = remote && conn.token ? xstrdup(conn.token) : NULL,
                       .app = xstrdup(app), .out = ctx->out};
        pthread_t th;
        if (pthread_create(&th, NULL, follow_logs, &f) == 0)
            pthread_detach(th); /* it ends with the process */
        uint64_t first_change = 0;
        while (!dev_stop) {
            struct pollfd p = {.fd = w.fd, .events = POLLIN};
            int n = poll(&p, 1, first_change ? DEV_SETTLE_MS : 500);
            if (n < 0 && errno != EINTR)
                break;
            if (n > 0) {
                int ch = read_events(&w);
                if (ch < 0) {
                    rc = cli_fail(ctx, "the watched directory %s disappeared; stopping", dir);
                    break;
                }
                if (ch > 0 && first_change == 0)
                    first_change = tine_now_ns();
                continue; /* wait until the changes settle */
            }
            struct stat st;
            if (stat(dir, &st) != 0) {
                rc = cli_fail(ctx, "the watched directory %s disappeared; stopping", dir);
                break;
            }
            if (first_change) {
                dev_deploy(ctx, c, dir, app, first_change);
                first_change = 0;
            }
        }
        dev_stop = 1;
    }
    if (w.fd >= 0)
        close(w.fd);
    for (size_t i = 0; i < w.n; i++)
        free(w.paths[i]);
    free(w.paths);
    free(w.wds);
    free(w.root);
    tine_client_free(c);
    cli_node_stop(&node);
    cli_conn_dispose(&conn);
    free(app);
    return rc;
}
