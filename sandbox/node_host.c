/* Node hosts: tine-zygote starts one per app version with Node functions
 * when tined asks (sbx_zygote_request_python with spec.node), through the
 * launcher of python_host.c:
 *
 *   launcher (tine-nodelaunch)  forked by tine-zygote; waits for the host
 *     └── node host             this file: pid 1 of a pid namespace of its
 *            │                  own, under the layers of a Python zygote
 *            │                  (its own root, uid, rlimits) but no filter:
 *            │                  it runs no app code
 *            └── node tine_node.js   one per blank request, forked and
 *                                    started at once (node has no fork: the
 *                                    invoker keeps a started one spare), with
 *                                    the Node filter and its own limits
 *
 * The host answers blank requests on its control socket as the Python
 * zygote does ({status, pid, 0} with the pipes and a pidfd), and watches
 * each child's stderr: it copies it to tined's log (by lines, each a JSON
 * log line: see line_out) and, when V8 ended the
 * child for want of memory, writes an ERROR frame "out of memory" (id 0,
 * SBX_FRAME_EXITING) on the child's pipe to tined once the child is gone
 * (it keeps a copy of that pipe's write end until then). */
#define _GNU_SOURCE
#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_MAX_CHILDREN 256
#define NODE_TAIL 64    /* bytes of a child's stderr kept to find a message across two reads */
#define NODE_LINE (20u * 1024u) /* bytes of one stderr line (tine_node.js's: up to 16 KiB of text); longer ones are cut */
#define NODE_LOG_MAX (64u * 1024u) /* bytes of a child's stderr copied to tined's log; the rest dropped */

typedef struct {
    pid_t pid;
    int up_wr;  /* a copy of the write end of its pipe to tined */
    int err_rd; /* its stderr, -1 once closed */
    char tail[NODE_TAIL];
    size_t tail_len;
    bool oom; /* V8 said it ran out of memory (a native stack trace follows) */
    char line[NODE_LINE]; /* its stderr's line not ended yet */
    size_t line_len;
    size_t logged; /* bytes of its stderr copied to tined's log */
} node_child_t;

static node_child_t children[NODE_MAX_CHILDREN];
static size_t nchildren;
static const char *host_app = ""; /* the app of the version, for the log */

/* One line a child wrote on stderr, to tined's log as a JSON line with the
 * version's app and the child's pid: a JSON log line of tine_node.js gives
 * its level, message, function and trace; any other line (V8's reports, node's
 * warnings) is the message, level error. The child runs the app's code:
 * it cannot name another app, and past NODE_LOG_MAX bytes its lines are
 * dropped (said once), as a Lua sandbox cannot grow tined's log. */
static void line_out(node_child_t *c, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    if (n == 0 || c->logged > NODE_LOG_MAX)
        return;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)c->pid);
    c->logged += n;
    if (c->logged > NODE_LOG_MAX) {
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", host_app, "node_pid", pid),
                    "a node sandbox wrote more than %u bytes on stderr: the rest is not logged", NODE_LOG_MAX);
        return;
    }
    json_t *j = p[0] == '{' ? json_loadb(p, n, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "msg"));
    if (msg == NULL) {
        tine_log_text(TINE_LOG_ERROR, TINE_LOG_KV("app", host_app, "node_pid", pid), p, n);
    } else {
        const char *level = json_string_value(json_object_get(j, "level"));
        tine_log_level_t lv = level && strcmp(level, "error") == 0 ? TINE_LOG_ERROR
                              : level && strcmp(level, "warn") == 0 ? TINE_LOG_WARN
                                                                    : TINE_LOG_INFO;
        const char *kv[9] = {"app", host_app, "node_pid", pid};
        size_t k = 4;
        static const char *const more[] = {"function", "trace"};
        for (size_t i = 0; i < 2; i++) {
            const char *v = json_string_value(json_object_get(j, more[i]));
            if (v && v[0]) {
                kv[k++] = more[i];
                kv[k++] = v;
            }
        }
        kv[k] = NULL;
        tine_log_text(lv, kv, msg, strlen(msg));
    }
    json_decref(j);
}

/* Bytes a child wrote on stderr: its whole lines go to tined's log. */
static void copy_out(node_child_t *c, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || c->line_len == sizeof c->line) {
            line_out(c, c->line, c->line_len);
            c->line_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        c->line[c->line_len++] = buf[i];
    }
}

/* Whether V8 said it ran out of memory ("JavaScript heap out of memory",
 * "Fatal process out of memory", "Reached heap limit") in these bytes. */
static bool says_oom(const char *p, size_t n)
{
    return memmem(p, n, "out of memory", 13) != NULL || memmem(p, n, "Reached heap limit", 18) != NULL;
}

/* Looks at what a child wrote on stderr for V8's out of memory message
 * (the end of the previous read kept, so that it is found across two). */
static void stderr_seen(node_child_t *c, const char *buf, size_t n)
{
    char joined[NODE_TAIL + 4096];
    size_t take = n < 4096 ? n : 4096;
    memcpy(joined, c->tail, c->tail_len);
    memcpy(joined + c->tail_len, buf, take);
    c->oom |= says_oom(joined, c->tail_len + take) || says_oom(buf, n);
    size_t keep = n < NODE_TAIL ? n : NODE_TAIL;
    if (c->tail_len + keep > NODE_TAIL) {
        size_t drop = c->tail_len + keep - NODE_TAIL;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, buf + n - keep, keep);
    c->tail_len += keep;
}

/* A child is gone (status st): tells tined when it ran out of memory, and
 * lets its pipe go. */
static void child_gone(size_t i, int st)
{
    node_child_t *c = &children[i];
    if (WIFSIGNALED(st) && c->oom) {
        static const char msg[] = "{\"error\":\"out of memory: V8 could not grow the heap\"}";
        sbx_frame_hdr_t h = sbx_frame_header(SBX_MSG_ERROR, 0, 0, sizeof msg - 1, 0);
        h.flags = SBX_FRAME_EXITING;
        char frame[sizeof h + sizeof msg];
        memcpy(frame, &h, sizeof h);
        memcpy(frame + sizeof h, msg, sizeof msg - 1);
        ssize_t n = write(c->up_wr, frame, sizeof h + sizeof msg - 1);
        (void)n;
    }
    line_out(c, c->line, c->line_len);
    close(c->up_wr);
    if (c->err_rd >= 0)
        close(c->err_rd);
    children[i] = children[--nchildren];
}

/* Reaps the children that are gone (and orphans of the pid namespace). */
static void reap(void)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < nchildren; i++)
            if (children[i].pid == p) {
                /* What it wrote last is read before it is judged. */
                char buf[4096];
                ssize_t n;
                while (children[i].err_rd >= 0 && (n = read(children[i].err_rd, buf, sizeof buf)) > 0) {
                    stderr_seen(&children[i], buf, (size_t)n);
                    copy_out(&children[i], buf, (size_t)n);
                }
                child_gone(i, st);
                break;
            }
}

/* In a child of the host: becomes a blank Node sandbox. Never returns. */
static _Noreturn void node_child(int down_rd, int up_wr, int err_wr, const sbx_python_plan_t *plan,
                                 const char *heap_arg)
{
    char err[300];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* fds: 3 read from tined, 4 written to tined, 2 the host's watch. */
    int fds[3] = {fcntl(down_rd, F_DUPFD, 10), fcntl(up_wr, F_DUPFD, 10), fcntl(err_wr, F_DUPFD, 10)};
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || dup2(fds[0], 3) < 0 || dup2(fds[1], 4) < 0 || dup2(fds[2], 2) < 0)
        _exit(1);
    if (syscall(SYS_close_range, 5u, (unsigned)SBX_PYTHON_EXE_FD - 1, 0) != 0 ||
        syscall(SYS_close_range, (unsigned)SBX_PYTHON_EXE_FD + 1, ~0u, 0) != 0)
        _exit(1);
    if (sbx__isolation_node_child(plan->memory_mb, err, sizeof err) != 0) {
        char *m = xasprintf("{\"error\":\"cannot isolate the sandbox: %s\"}", err);
        sbx_frame_write(4, SBX_MSG_ERROR, 0, m, strlen(m), NULL, 0);
        _exit(1);
    }
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/tine_node.js", plan->sdk_seen);
    const char *argv[] = {plan->python,
                          heap_arg,
                          "--no-addons",
                          script,
                          plan->bundle_seen,
                          plan->isolated ? "isolated" : "not-isolated",
                          NULL};
    const char *tz = getenv("TZ");
    char tz_entry[256];
    snprintf(tz_entry, sizeof tz_entry, "TZ=%s", tz ? tz : "");
    const char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8", "NODE_ENV=production",
                          tz ? tz_entry : NULL, NULL};
    if (plan->exe_fd >= 0)
        syscall(SYS_execveat, plan->exe_fd, "", argv, envp, AT_EMPTY_PATH);
    else
        execve(plan->python, (char *const *)argv, (char *const *)envp);
    char *m = xasprintf("{\"error\":\"cannot run %s: %s\"}", plan->python, strerror(errno));
    sbx_frame_write(4, SBX_MSG_ERROR, 0, m, strlen(m), NULL, 0);
    _exit(127);
}

/* Answers a blank request: forks a child that starts node. */
static void spawn(int sock, const sbx_python_plan_t *plan, const char *heap_arg)
{
    int down[2] = {-1, -1}, up[2] = {-1, -1}, errp[2] = {-1, -1};
    if (nchildren == NODE_MAX_CHILDREN) {
        sbx__zygote_reply(sock, -EAGAIN, 0, NULL, 0);
        return;
    }
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) != 0) {
        int e = -errno;
        int all[6] = {down[0], down[1], up[0], up[1], errp[0], errp[1]};
        for (int i = 0; i < 6; i++)
            if (all[i] >= 0)
                close(all[i]);
        sbx__zygote_reply(sock, e, 0, NULL, 0);
        return;
    }
    /* The child's end of stderr blocks (node writes it synchronously). */
    fcntl(errp[1], F_SETFL, 0);
    pid_t pid = fork();
    if (pid == 0)
        node_child(down[0], up[1], errp[1], plan, heap_arg);
    int e = pid < 0 ? -errno : 0;
    close(down[0]);
    close(errp[1]);
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pid > 0 && pidfd < 0) {
        e = -errno;
        kill(pid, SIGKILL);
    }
    if (e != 0) {
        close(down[1]);
        close(up[0]);
        close(up[1]);
        close(errp[0]);
        sbx__zygote_reply(sock, e, 0, NULL, 0);
        return;
    }
    int give[3] = {up[0], down[1], pidfd};
    sbx__zygote_reply(sock, 0, pid, give, 3);
    close(up[0]);
    close(down[1]);
    close(pidfd);
    children[nchildren++] = (node_child_t){.pid = pid, .up_wr = up[1], .err_rd = errp[0]};
}

/* In the process below the launcher: isolates it, says READY and serves
 * blank requests until tined closes the control socket. Never returns. */
static _Noreturn void node_host(int sock, sbx_python_plan_t *plan, json_t *req)
{
    const char *app = json_string_value(json_object_get(req, "app"));
    host_app = app ? app : "";
    char err[512];
    if (sock != SBX_PYTHON_CONTROL_FD) {
        if (dup2(sock, SBX_PYTHON_CONTROL_FD) < 0)
            _exit(1);
        close(sock);
    }
    sock = SBX_PYTHON_CONTROL_FD;
    if (sbx__isolation_enter_python(sock, plan, err, sizeof err) != 0) {
        sbx__runtime_say_error(sock, &sbx__node_kind, err);
        _exit(1);
    }
    prctl(PR_SET_NAME, "tine-nodehost");
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    char heap_arg[48];
    snprintf(heap_arg, sizeof heap_arg, "--max-old-space-size=%u", plan->memory_mb);
    char ready[96];
    int rl = snprintf(ready, sizeof ready, "{\"pid\":%d,\"init_us\":0,\"modules\":0,\"failed\":[]}", (int)getpid());
    if (sbx_frame_write(sock, SBX_MSG_READY, 0, ready, (size_t)rl, NULL, 0) != 0)
        _exit(1);
    struct pollfd pfd[NODE_MAX_CHILDREN + 1];
    for (;;) {
        pfd[0] = (struct pollfd){.fd = sock, .events = POLLIN};
        size_t n = 1;
        for (size_t i = 0; i < nchildren; i++)
            pfd[n++] = (struct pollfd){.fd = children[i].err_rd, .events = POLLIN};
        /* A child whose stderr closed is reaped within 50 ms. */
        bool closed = false;
        for (size_t i = 0; i < nchildren; i++)
            closed |= children[i].err_rd < 0;
        int r = poll(pfd, n, closed ? 50 : 1000);
        if (r < 0 && errno != EINTR)
            _exit(1);
        if (r > 0) {
            for (size_t k = n - 1; k >= 1; k--) {
                if (pfd[k].revents == 0 || pfd[k].fd < 0)
                    continue;
                node_child_t *c = NULL;
                for (size_t i = 0; i < nchildren && c == NULL; i++)
                    if (children[i].err_rd == pfd[k].fd)
                        c = &children[i];
                if (c == NULL)
                    continue;
                char buf[4096];
                ssize_t got = read(c->err_rd, buf, sizeof buf);
                if (got > 0) {
                    stderr_seen(c, buf, (size_t)got);
                    copy_out(c, buf, (size_t)got);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close(c->err_rd);
                    c->err_rd = -1;
                }
            }
            if (pfd[0].revents & POLLIN) {
                sbx_frame_hdr_t h;
                char *payload = NULL;
                if (sbx_frame_read(sock, &h, &payload, 65536) != 0 || h.type == 0)
                    _exit(0); /* tined let the version go: the children go with this process */
                json_t *m = json_loadb(payload, h.meta_len, 0, NULL);
                bool blank = h.type == SBX_MSG_INVOKE && json_is_true(json_object_get(m, "blank"));
                json_decref(m);
                free(payload);
                if (blank)
                    spawn(sock, plan, heap_arg);
                else
                    sbx__zygote_reply(sock, TINE_EPROTO, 0, NULL, 0);
            } else if (pfd[0].revents & (POLLHUP | POLLERR)) {
                _exit(0);
            }
        }
        reap();
    }
}

const sbx_runtime_kind_t sbx__node_kind = {.what = "Node host",
                                           .request_key = "node_host",
                                           .proc_name = "tine-nodelaunch",
                                           .sdk_sub = "node",
                                           .env_name = "TINE_NODE",
                                           .program = "node",
                                           .node = true,
                                           .child = node_host};
