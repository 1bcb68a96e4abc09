/* `tine up [DIR]`: runs tined in the foreground, deploys the app of DIR to
 * it, prints the app's URLs and then waits for tined, forwarding SIGINT and
 * SIGTERM to it. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tine_common.h"

#define UP_HEALTH_TIMEOUT_NS (15ull * 1000000000ull)
#define UP_POLL_INTERVAL_MS 100
#define UP_STOP_GRACE_MS 5000

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t got_signal;

/* Forwards the signal to tined; tined runs in its own process group, so a
 * Ctrl-C on the terminal reaches it only this way (once, not twice). */
static void forward_signal(int sig)
{
    got_signal = sig;
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* Sleeps ms milliseconds (less when a signal arrives). */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* an interrupting signal only shortens the nap */
}

/* Describes a wait status: "exit status 3", "signal 9". */
static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "status %d", st);
}

/* The exit code a shell would give for the wait status st (128 + the signal
 * for a killed process). */
static int exit_code_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return CLI_FAIL;
}

/* Waits for pid, retrying when a forwarded signal interrupts the wait. */
static int wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    return st;
}

/* Asks tined to stop (SIGTERM), then insists (SIGKILL) after a grace period. */
static void stop_tined(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    for (long waited = 0; waited < UP_STOP_GRACE_MS; waited += 50) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            child_pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    wait_child(pid);
}

/* The tined to run: $TINE_TINED, else the one next to this executable, else
 * NULL (then PATH is searched). */
static char *find_tined(void)
{
    const char *env = getenv("TINE_TINED");
    if (env != NULL && env[0] != '\0')
        return xstrdup(env);
    return tine_exe_sibling("tined");
}

/* Creates dir and its parents (mode 0700 for the ones it creates). */
static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -errno;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Starts tined with argv; returns its pid, or -1 after printing why. The
 * child reports an exec failure through a close-on-exec pipe. */
static pid_t spawn_tined(cli_ctx_t *ctx, const char *path, char **argv)
{
    int pfd[2];
    /* pipe2 is not POSIX; this process has no other threads to race with. */
    if (pipe(pfd) != 0 || fcntl(pfd[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(pfd[1], F_SETFD, FD_CLOEXEC) != 0) {
        cli_fail(ctx, "cannot start tined: pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        cli_fail(ctx, "cannot start tined: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        setpgid(0, 0);
        /* tined must not outlive a `tine up` killed without a chance to
         * forward anything. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (path != NULL)
            execv(path, argv);
        else
            execvp("tined", argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    child_pid = pid;
    if (got_signal)
        kill(pid, got_signal);
    int e = 0;
    ssize_t r;
    while ((r = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r == (ssize_t)sizeof e) {
        wait_child(pid);
        if (path != NULL)
            cli_fail(ctx, "cannot run %s: %s", path, strerror(e));
        else
            cli_fail(ctx, "cannot run tined: %s (looked next to tine and on PATH; set TINE_TINED)", strerror(e));
        return -1;
    }
    return pid;
}

/* tined writes <state-dir>/port once it listens. What the file was before
 * our tined started: a file written since is our tined's (another node may
 * own the address, or have left the file behind). */
typedef struct {
    const char *path;
    bool existed;
    struct stat st;
} port_file_t;

/* Notes whether the port file at path exists and its stat, to tell a file our
 * tined writes later. */
static void port_file_snapshot(port_file_t *pf, const char *path)
{
    pf->path = path;
    pf->existed = stat(path, &pf->st) == 0;
}

/* The port our tined wrote, or 0 while it has not written one. */
static int port_file_fresh_port(const port_file_t *pf)
{
    struct stat st;
    if (stat(pf->path, &st) != 0)
        return 0;
    if (pf->existed && st.st_ino == pf->st.st_ino && st.st_mtim.tv_sec == pf->st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == pf->st.st_mtim.tv_nsec && st.st_size == pf->st.st_size)
        return 0;
    char *text = NULL;
    if (tine_read_file(pf->path, &text, NULL) != 0)
        return 0;
    int port = atoi(text);
    free(text);
    return port > 0 && port <= 65535 ? port : 0;
}

/* Once our tined wrote its port, completes url ("http://127.0.0.1:0" with
 * --listen HOST:0, the kernel picking the port) from it. Returns 1 when
 * tined listens and url is complete, 0 when not yet. */
static int complete_url(char *url, size_t len, const port_file_t *pf)
{
    int port = port_file_fresh_port(pf);
    if (port == 0)
        return 0;
    size_t n = strlen(url);
    if (n >= 2 && strcmp(url + n - 2, ":0") == 0)
        snprintf(url + n - 1, len - (n - 1), "%d", port); /* replaces the final "0" */
    return 1;
}

/* Whether something else already listens on `listen` (HOST:PORT): binding
 * it fails with EADDRINUSE. Port 0 and unparsable addresses are never in
 * use. */
static bool address_in_use(const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : listen;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (hl >= sizeof host || atoi(port) == 0)
        return false;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        h = host + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(h[0] ? h : NULL, port, &hints, &ai) != 0)
        return false;
    bool in_use = false;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as tined (libuv) binds */
        in_use = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
        close(fd);
    }
    freeaddrinfo(ai);
    return in_use;
}

/* Polls until our tined listens (it wrote its port file) and answers its
 * health endpoint, tined exits, a signal arrives, or 15 s pass. Until our
 * tined wrote its port, nothing at the address is asked anything: another
 * node may listen there. Returns CLI_OK when healthy, else an exit code
 * (tined is then stopped and reaped); url is completed in place. */
static int wait_healthy(cli_ctx_t *ctx, pid_t pid, const char *listen, char *url, size_t urllen, const port_file_t *pf)
{
    tine_client_t *hc = NULL;
    uint64_t deadline = tine_now_ns() + UP_HEALTH_TIMEOUT_NS;
    char last[512] = "no answer";
    int rc;
    for (;;) {
        int st;
        if (hc == NULL && complete_url(url, urllen, pf)) {
            if ((hc = tine_client_new(url, NULL)) == NULL) {
                stop_tined(pid);
                return cli_fail(ctx, "bad node URL %s", url);
            }
            tine_client_set_timeout_ms(hc, 1000);
        }
        if (got_signal) {
            rc = exit_code_of(wait_child(pid));
            break;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            child_pid = 0;
            char how[96];
            describe_status(st, how, sizeof how);
            if (hc == NULL && address_in_use(listen))
                rc = cli_fail(ctx,
                              "tined exited (%s): cannot listen on %s: address already in use (another process, "
                              "perhaps another tined, listens there); choose another address with --listen or "
                              "TINE_LISTEN (make up PORT=N)",
                              how, listen);
            else
                rc = cli_fail(ctx, "tined exited (%s) before serving on %s (its messages are above)", how, listen);
            break;
        }
        if (hc == NULL) {
            snprintf(last, sizeof last, "it has not written %s yet", pf->path);
        } else if (tine_health(hc, NULL) == 0) {
            rc = CLI_OK;
            break;
        } else {
            snprintf(last, sizeof last, "%s", tine_client_error(hc));
        }
        if (tine_now_ns() > deadline) {
            stop_tined(pid);
            rc = cli_fail(ctx, "tined did not answer GET %s/_tine/v1/health within 15 s (%s); stopped it", url,
                          last);
            break;
        }
        sleep_ms(UP_POLL_INTERVAL_MS);
    }
    tine_client_free(hc);
    return rc;
}

int cli_cmd_up(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *listen = NULL, *redis = NULL;
    bool no_auth = false;
    const cli_flag_t flags[] = {
        {"listen", 0, &listen, NULL},
        {"redis", 0, &redis, NULL},
        {"no-auth", 0, NULL, &no_auth},
    };
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, sizeof flags / sizeof flags[0], pos, 0, 1, &npos, err, sizeof err) !=
        CLI_OK)
        return cli_usage_error(ctx, err);
    const char *dir = npos > 0 ? pos[0] : ".";
    if (listen == NULL)
        listen = getenv("TINE_LISTEN");
    if (listen == NULL || listen[0] == '\0')
        listen = CLI_DEFAULT_LISTEN;
    char url[300];
    if (cli_listen_to_url(listen, url, sizeof url) != 0) {
        snprintf(err, sizeof err, "--listen expects HOST:PORT or PORT, not '%s'", listen);
        return cli_usage_error(ctx, err);
    }

    /* Validate and pack first: a manifest error should not cost a node start. */
    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    if (cli_prepare_bundle(ctx, dir, &app, &tgz, &len) != CLI_OK)
        return CLI_FAIL;

    /* The URL and state dir follow the node this command starts, not
     * TINE_URL; the state dir is passed explicitly so tined writes its token
     * where we read it. */
    cli_global_t g = ctx->g;
    g.url = url;
    g.no_context = true; /* the node started here, with its own token: never a stored key */
    cli_conn_t conn;
    cli_resolve_conn(&g, &conn, NULL);
    int rc = mkdir_p(conn.state_dir);
    if (rc != 0) {
        cli_fail(ctx, "cannot create state dir %s: %s", conn.state_dir, strerror(-rc));
        rc = CLI_FAIL;
        goto out_conn;
    }

    char *tined = find_tined();
    char *targv[10];
    int n = 0;
    targv[n++] = "tined";
    targv[n++] = "--listen";
    targv[n++] = (char *)listen;
    targv[n++] = "--state-dir";
    targv[n++] = conn.state_dir;
    if (redis != NULL) {
        targv[n++] = "--redis";
        targv[n++] = (char *)redis;
    }
    if (no_auth)
        targv[n++] = "--no-auth";
    targv[n] = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* Our tined is up once it wrote its port file: one left by an earlier
     * run, or by a node on the same state dir, must not be believed. */
    char *port_path = xasprintf("%s/port", conn.state_dir);
    port_file_t pf;
    port_file_snapshot(&pf, port_path);
    pid_t pid = spawn_tined(ctx, tined, targv);
    free(tined);
    if (pid < 0) {
        free(port_path);
        rc = CLI_FAIL;
        goto out_signals;
    }
    rc = wait_healthy(ctx, pid, listen, url, sizeof url, &pf);
    free(port_path);
    if (rc != CLI_OK)
        goto out_signals;

    /* Read the token only now: a first start is what creates it. */
    if (ctx->g.token == NULL) {
        int e = 0;
        char *t = cli_read_token_file(conn.token_file, &e);
        if (t != NULL) {
            free(conn.token);
            conn.token = t;
        }
    }
    tine_client_t *c = tine_client_new(url, conn.token);
    if (c == NULL || cli_send_bundle(ctx, c, &conn, app, tgz, len, CLI_DEPLOY_FORCE_IF_REFUSED) != CLI_OK) {
        if (c == NULL)
            cli_fail(ctx, "out of memory");
        tine_client_free(c);
        stop_tined(pid);
        rc = CLI_FAIL;
        goto out_signals;
    }
    char *routes = NULL;
    int e = tine_routes(c, app, &routes);
    if (e != 0) {
        fprintf(ctx->err, "tine: warning: cannot list the routes of %s: %s\n", app, tine_client_error(c));
    } else if (ctx->g.json) {
        cli_print_json_text(ctx->out, routes);
    } else if (cli_render_public_urls(routes, url, ctx->out, err, sizeof err) != 0) {
        fprintf(ctx->err, "tine: warning: %s\n", err);
    }
    tine_free(routes);
    tine_client_free(c);
    fprintf(ctx->err, "tine: tined is running (pid %d); press Ctrl-C to stop it\n", (int)pid);
    fflush(ctx->out);
    fflush(ctx->err);

    rc = exit_code_of(wait_child(pid));

out_signals:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out_conn:
    cli_conn_dispose(&conn);
    free(app);
    free(tgz);
    return rc;
}
