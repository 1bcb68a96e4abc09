/* An ephemeral node for `tine test` and `tine dev`: a private redis-server
 * on a unix socket and a tined on a free loopback port (the kernel picks
 * it), both in a fresh temporary directory, without an admin token. Both
 * processes die with this one (PR_SET_PDEATHSIG); cli_node_stop stops them
 * and removes the directory. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tine_common.h"

#define NODE_START_TIMEOUT_NS (15ull * 1000000000ull)

/* Sleeps ms milliseconds. */
static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts argv[0] (a path, or a name looked up on PATH) with stdout and
 * stderr into log_path; the child dies with this process. Returns its pid,
 * or -1 with errno of the failed exec (reported through a close-on-exec
 * pipe). */
static pid_t spawn(char **argv, const char *log_path)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in >= 0)
            dup2(in, STDIN_FILENO);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        if (strchr(argv[0], '/'))
            execv(argv[0], argv);
        else
            execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t r;
    while ((r = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        errno = e;
        return -1;
    }
    return pid;
}

/* Stops a child: SIGTERM, then SIGKILL after grace_ms. */
static void stop_child(pid_t pid, long grace_ms)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (long waited = 0; waited < grace_ms; waited += 5) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        nap_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Ctrl-C (or SIGTERM, SIGHUP) while a node is up: the command stops its
 * work and cli_node_stop removes the node's directory, instead of the
 * signal ending the process with the directory left behind. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = sig;
}

bool cli_node_interrupted(void)
{
    return interrupted != 0;
}

/* Whether the child exited (reaped then). */
static bool child_gone(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == pid;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The last lines of a log file, for a failure message (a new string). */
static char *log_tail(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (tine_try_read_file(path, &text, &len) != 0)
        return xstrdup("(no output)");
    size_t start = len > 1500 ? len - 1500 : 0;
    char *tail = xstrdup(text + start);
    free(text);
    return tail;
}

int cli_node_start(cli_ctx_t *ctx, cli_node_t *n)
{
    memset(n, 0, sizeof *n);
    struct sigaction sa = {0};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    const char *tmp = getenv("TMPDIR");
    n->dir = xasprintf("%s/tine-node.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(n->dir) == NULL) {
        int e = errno;
        free(n->dir);
        n->dir = NULL;
        return cli_fail(ctx, "cannot make a temporary directory for the node: %s", strerror(e));
    }
    char *sock = xasprintf("%s/redis.sock", n->dir);
    char *rlog = xasprintf("%s/redis.log", n->dir);
    char *tlog = xasprintf("%s/tined.log", n->dir);
    char *port_file = xasprintf("%s/port", n->dir);
    n->log_path = xstrdup(tlog);
    n->redis_url = xasprintf("unix://%s", sock);
    int rc = CLI_FAIL;

    char *rargv[] = {"redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700", "--save", "",
                     "--appendonly", "no", "--daemonize", "no", NULL};
    n->redis_pid = spawn(rargv, rlog);
    if (n->redis_pid < 0) {
        cli_fail(ctx, "cannot run redis-server for the test node: %s (install redis-server)", strerror(errno));
        goto out;
    }
    char *tined = getenv("TINE_TINED") && *getenv("TINE_TINED") ? xstrdup(getenv("TINE_TINED"))
                                                                 : tine_exe_sibling("tined");
    char *targv[] = {tined ? tined : "tined", "--listen", "127.0.0.1:0", "--state-dir", n->dir, "--redis",
                     n->redis_url, "--no-auth", "--docker-events", "off", "--drain-grace", "0s", NULL};
    uint64_t deadline = tine_now_ns() + NODE_START_TIMEOUT_NS;
    /* tined connects at once: wait for the socket first. */
    struct stat st;
    while (stat(sock, &st) != 0) {
        if (interrupted) {
            cli_fail(ctx, "interrupted while the test node was starting");
            free(tined);
            goto out;
        }
        if (child_gone(n->redis_pid) || tine_now_ns() > deadline) {
            n->redis_pid = 0;
            char *t = log_tail(rlog);
            cli_fail(ctx, "redis-server of the test node did not start:\n%s", t);
            free(t);
            free(tined);
            goto out;
        }
        nap_ms(2);
    }
    n->tined_pid = spawn(targv, tlog);
    if (n->tined_pid < 0) {
        cli_fail(ctx, "cannot run %s: %s (looked next to tine and on PATH; set TINE_TINED)", tined ? tined : "tined",
                 strerror(errno));
        free(tined);
        goto out;
    }
    free(tined);
    tine_client_t *hc = NULL;
    for (;;) {
        if (interrupted) {
            cli_fail(ctx, "interrupted while the test node was starting");
            break;
        }
        if (child_gone(n->tined_pid)) {
            n->tined_pid = 0;
            char *t = log_tail(tlog);
            cli_fail(ctx, "tined of the test node exited before serving:\n%s", t);
            free(t);
            break;
        }
        char *text = NULL;
        if (hc == NULL && tine_try_read_file(port_file, &text, NULL) == 0 && atoi(text) > 0) {
            snprintf(n->url, sizeof n->url, "http://127.0.0.1:%d", atoi(text));
            hc = tine_client_new(n->url, NULL);
            if (hc != NULL)
                tine_client_set_timeout_ms(hc, 1000);
        }
        free(text);
        if (hc != NULL && tine_ready(hc, NULL) == 0) {
            rc = CLI_OK;
            break;
        }
        if (tine_now_ns() > deadline) {
            char *t = log_tail(tlog);
            cli_fail(ctx, "tined of the test node did not become ready within 15 s:\n%s", t);
            free(t);
            break;
        }
        nap_ms(5);
    }
    tine_client_free(hc);
out:
    free(sock);
    free(rlog);
    free(tlog);
    free(port_file);
    if (rc != CLI_OK)
        cli_node_stop(n);
    return rc;
}

void cli_node_stop(cli_node_t *n)
{
    stop_child(n->tined_pid, 3000);
    stop_child(n->redis_pid, 1000);
    n->tined_pid = n->redis_pid = 0;
    if (n->dir != NULL)
        nftw(n->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(n->dir);
    free(n->redis_url);
    free(n->log_path);
    memset(n, 0, sizeof *n);
}
