/* The exec runner: hosts one invocation of a `runtime: exec` function. It
 * answers READY, reads one INVOKE, and runs the function's program from the
 * bundle in a child: the request (or the event) as JSON on stdin, metadata in
 * TINE_* variables of an otherwise clean environment, a private working dir,
 * and the exec isolation layers (isolation.c). Stdout becomes the response
 * ({status, headers, body} JSON, or the raw body), every stderr line a LOG
 * frame. The runner leads its own process group, so the invoker's timeout
 * kill (-pid) takes the program and its children with it. */
#define _GNU_SOURCE
#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "meta.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define STDOUT_MAX (6u * 1024u * 1024u) /* the response body limit */
#define STDERR_LOG_MAX (64u * 1024u)    /* stderr bytes turned into LOG frames */
#define LOG_LINE_MAX 16384u             /* bytes per LOG line */
#define TAIL_MAX 400u                   /* stderr bytes quoted in an error message */
#define GRACE_MS 1000u                  /* past the timeout, the runner stops waiting itself */

typedef struct {
    sbx_fds_t fds; /* the pipes to and from tined */
    uint64_t id;
    const sbx_spec_t *spec;
    tine_buf_t out;   /* stdout */
    bool out_over;    /* more than STDOUT_MAX */
    bool out_oom;     /* no memory to hold it */
    char line[LOG_LINE_MAX];
    size_t line_len;
    size_t logged;    /* stderr bytes sent as LOG frames */
    bool log_cut;     /* the rest of stderr was dropped */
    char tail[TAIL_MAX];
    size_t tail_len;  /* last stderr bytes, for the error message */
    sbx_proxy_t *proxy; /* network: true: the egress proxy, or NULL */
    /* LOG frames come from this thread and the proxy's: one at a time, and
     * none once the answer is on its way (quiet). */
    pthread_mutex_t frames;
    bool quiet;
    /* Host calls of the program (its fds 240 and 241, TINE_HOSTCALL_FDS): the
     * runner reads its HOSTCALL frames on hc_rd and passes them to tined
     * as the invocation's, and its HOSTREPLY back on hc_wr; one at a time. */
    int hc_rd, hc_wr;
    tine_buf_t hc_in;
    bool hc_pending; /* a call was passed on; its reply is awaited */
} run_t;

#define HOSTCALL_REPLY_ID 1 /* the id of every HOSTREPLY the program reads */

/* ---------------------------------------------------------------- answers */

/* Sends an ERROR frame {"error": message}. */
static void send_error(run_t *r, uint32_t cpu_us, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_error(run_t *r, uint32_t cpu_us, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = json_pack("{s:o}", "error", tine_json_text(msg, strlen(msg)));
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    sbx_frame_write_aux(r->fds.wr, SBX_MSG_ERROR, r->id, cpu_us, text, strlen(text), NULL, 0);
    free(text);
}

/* Sends one line of the program's stderr as a LOG frame (level info), unless
 * the runner went quiet; under the frame lock (the proxy's threads log too). */
static void send_log(run_t *r, const char *line, size_t len)
{
    static const char meta[] = "{\"level\":\"info\"}";
    pthread_mutex_lock(&r->frames);
    if (!r->quiet)
        sbx_frame_write(r->fds.wr, SBX_MSG_LOG, r->id, meta, sizeof meta - 1, line, len);
    pthread_mutex_unlock(&r->frames);
}

/* sbx_proxy_log_fn: a line of the egress proxy for the invocation's logs. */
static void log_from_proxy(void *ctx, const char *line, size_t len)
{
    send_log(ctx, line, len);
}

/* From here on only this thread writes frames: the answer. */
static void go_quiet(run_t *r)
{
    sbx__proxy_stop(r->proxy);
    r->proxy = NULL;
    pthread_mutex_lock(&r->frames);
    r->quiet = true;
    pthread_mutex_unlock(&r->frames);
}

/* Takes stderr bytes: complete lines become LOG frames (up to
 * STDERR_LOG_MAX bytes in all), the last bytes are kept for errors. */
static void take_stderr(run_t *r, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r->tail_len == TAIL_MAX) {
            memmove(r->tail, r->tail + 1, TAIL_MAX - 1);
            r->tail_len--;
        }
        r->tail[r->tail_len++] = p[i];
        if (p[i] != '\n' && r->line_len < LOG_LINE_MAX) {
            r->line[r->line_len++] = p[i];
            continue;
        }
        if (p[i] != '\n') /* an overlong line: send what fits, continue on the next */
            i--;
        if (r->logged + r->line_len > STDERR_LOG_MAX) {
            if (!r->log_cut) {
                static const char cut[] = "[tine: further stderr output of this invocation was dropped]";
                send_log(r, cut, sizeof cut - 1);
                r->log_cut = true;
            }
        } else {
            send_log(r, r->line, r->line_len);
            r->logged += r->line_len;
        }
        r->line_len = 0;
    }
}

/* Keeps stdout bytes for the response. Past STDOUT_MAX, or when there is
 * no memory to hold them, it notes why (the program is then stopped). */
static void take_stdout(run_t *r, const char *p, size_t n)
{
    if (r->out.len + n > STDOUT_MAX)
        r->out_over = true;
    else if (tine_buf_try_append(&r->out, p, n) != 0)
        r->out_oom = true;
}

/* The last line(s) of stderr, trimmed, for an error message. */
static const char *stderr_tail(run_t *r)
{
    size_t n = r->tail_len;
    while (n > 0 && (r->tail[n - 1] == '\n' || r->tail[n - 1] == ' '))
        n--;
    r->tail[n < TAIL_MAX ? n : TAIL_MAX - 1] = '\0';
    return r->tail;
}

/* Whether s is an HTTP header name (a token: no separators, controls or
 * spaces). */
static bool header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

/* Builds the RESULT from stdout: a {status, headers, body} object is the
 * response; any other output is the body. Returns 0, or TINE_EINVAL with a
 * message (a bad response). */
static int send_result(run_t *r, uint32_t cpu_us, char *err, size_t errlen)
{
    const char *out = r->out.data ? r->out.data : "";
    size_t len = r->out.len;
    json_t *meta = json_pack("{s:i, s:{}}", "status", len ? 200 : 204, "headers");
    json_t *headers = json_object_get(meta, "headers");
    const char *body = out;
    size_t body_len = len;
    char *encoded = NULL;
    json_t *j = len ? json_loadb(out, len, JSON_DECODE_ANY, NULL) : NULL;
    json_t *st = json_object_get(j, "status");
    bool envelope = json_is_object(j) && json_is_integer(st);
    const char *key;
    json_t *v;
    json_object_foreach(envelope ? j : NULL, key, v) {
        if (strcmp(key, "status") != 0 && strcmp(key, "headers") != 0 && strcmp(key, "body") != 0)
            envelope = false;
    }
    int rc = 0;
    if (envelope) {
        json_int_t status = json_integer_value(st);
        json_t *hs = json_object_get(j, "headers"), *b = json_object_get(j, "body");
        if (status < 100 || status > 599) {
            snprintf(err, errlen, "bad response on stdout: status %lld: expected 100 to 599", (long long)status);
            rc = TINE_EINVAL;
        } else if (hs != NULL && !json_is_object(hs) && !json_is_null(hs)) {
            snprintf(err, errlen, "bad response on stdout: headers: expected an object");
            rc = TINE_EINVAL;
        }
        json_object_set_new(meta, "status", json_integer(status));
        json_object_foreach(rc == 0 ? hs : NULL, key, v) {
            const char *val = json_string_value(v);
            char num[32];
            if (val == NULL && json_is_number(v)) {
                snprintf(num, sizeof num, "%.17g", json_number_value(v));
                val = num;
            }
            if (!header_name_ok(key) || val == NULL || strpbrk(val, "\r\n") != NULL) {
                snprintf(err, errlen, "bad response on stdout: header '%.64s': expected a token name and a "
                                      "string value without CR or LF", key);
                rc = TINE_EINVAL;
                break;
            }
            json_object_set_new(headers, key, json_string(val));
        }
        if (json_is_string(b)) {
            body = json_string_value(b);
            body_len = json_string_length(b);
        } else if (b == NULL || json_is_null(b)) {
            body = "";
            body_len = 0;
        } else {
            encoded = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
            body = encoded;
            body_len = strlen(encoded);
            bool has_ct = false;
            json_object_foreach(headers, key, v) has_ct |= strcasecmp(key, "content-type") == 0;
            if (!has_ct)
                json_object_set_new(headers, "content-type", json_string("application/json"));
        }
    } else if (len) {
        json_t *text = json_stringn(out, len);
        json_object_set_new(headers, "content-type",
                            json_string(j ? "application/json"
                                          : text ? "text/plain; charset=utf-8" : "application/octet-stream"));
        json_decref(text);
    }
    if (rc == 0) {
        tine_buf_t m;
        tine_buf_init(&m);
        size_t at = sbx_result_meta_begin(&m, (int)json_integer_value(json_object_get(meta, "status")));
        json_object_foreach(headers, key, v)
            sbx_result_meta_header(&m, at, key, strlen(key), json_string_value(v), json_string_length(v));
        sbx_frame_write_aux(r->fds.wr, SBX_MSG_RESULT, r->id, cpu_us, m.data, m.len, body, body_len);
        tine_buf_dispose(&m);
    }
    free(encoded);
    json_decref(j);
    json_decref(meta);
    return rc;
}

/* ------------------------------------------------------------ the program */

/* How to start the program: its interpreter when it begins with "#!" (the
 * bundle's files are stored without their mode bits), else itself. */
typedef struct {
    char interp[256]; /* "" when the program runs itself */
    char arg[256];    /* the interpreter's optional argument */
    bool copy;        /* a binary without exec permission: run a copy */
} launch_t;

/* Reads the start of the program at `path` into l. Returns 0, or with a
 * message in err -errno (it cannot be read) or TINE_EINVAL (not a file, a
 * bad #! line). */
static int plan_launch(const char *path, launch_t *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return tine_fail_errno(err, errlen, "cannot open the program");
    char head[256];
    ssize_t n = read(f, head, sizeof head - 1);
    struct stat st;
    int ok = fstat(f, &st);
    close(f);
    if (n < 0 || ok != 0)
        return tine_fail_errno(err, errlen, "cannot read the program");
    if (!S_ISREG(st.st_mode))
        return tine_fail(err, errlen, "cannot read the program: not a file");
    head[n] = '\0';
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        char *p = head + 2, *end = strchr(p, '\n');
        if (end == NULL)
            return tine_fail(err, errlen, "the #! line is longer than %zu bytes", sizeof head - 3);
        *end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        size_t il = strcspn(p, " \t");
        if (il == 0 || il >= sizeof l->interp)
            return tine_fail(err, errlen, "the #! line names no interpreter");
        memcpy(l->interp, p, il);
        p += il;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t al = strlen(p);
        while (al > 0 && (p[al - 1] == ' ' || p[al - 1] == '\t' || p[al - 1] == '\r'))
            al--;
        memcpy(l->arg, p, al < sizeof l->arg ? al : sizeof l->arg - 1);
        return 0;
    }
    if (n >= 4 && memcmp(head, "\177ELF", 4) == 0) {
        l->copy = (st.st_mode & 0111) == 0;
        return 0;
    }
    if ((st.st_mode & 0111) == 0) /* a script without #!: the shell runs it, as execvp would */
        snprintf(l->interp, sizeof l->interp, "/bin/sh");
    return 0;
}

/* Copies the program into the working dir as an executable file. Returns 0
 * or -errno (-EIO for a short write). */
static int copy_executable(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    int rc = in < 0 || out < 0 ? -errno : 0;
    char buf[65536];
    ssize_t n = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0) {
        ssize_t w = write(out, buf, (size_t)n);
        if (w != n)
            rc = w < 0 ? -errno : -EIO;
    }
    if (rc == 0 && n < 0)
        rc = -errno;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The variables naming the egress proxy, set for a program with a network
 * of its own (HTTP_PROXY for clients that read only the upper case, which
 * curl ignores for http://; NO_PROXY empty: nothing goes around it, there
 * is no way around it anyway). */
static const char *const proxy_env[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
#define PROXY_ENV_N (sizeof proxy_env / sizeof proxy_env[0])

/* Whether the variable k is set by the runner itself (TINE_*, HOME, TMPDIR,
 * PWD, the proxy's with a network) and not by the manifest's env. */
static bool reserved_env(const char *k, bool proxy)
{
    for (size_t i = 0; proxy && i < PROXY_ENV_N; i++)
        if (strcmp(k, proxy_env[i]) == 0)
            return true;
    return strncmp(k, "TINE_", 5) == 0 || strcmp(k, "HOME") == 0 || strcmp(k, "TMPDIR") == 0 ||
           strcmp(k, "PWD") == 0;
}

/* The program's environment: the function's env from the manifest (values
 * as text, TINE_*, HOME, TMPDIR and PWD reserved, and the proxy variables
 * when `proxy`), then the invocation's metadata and, with `proxy`, the
 * proxy variables. Returns a NULL-terminated array (the child execs or
 * exits). */
static char **build_env(const sbx_spec_t *spec, json_t *req, const char *workdir, bool proxy, const char *sdks)
{
    size_t cap = 32, n = 0;
    char **env = xcalloc(cap, sizeof *env);
    bool has_path = false, has_lang = false, has_pypath = false, has_nodepath = false;
    json_t *menv = json_loads(spec->env_json ? spec->env_json : "{}", 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(menv, k, v) {
        if (reserved_env(k, proxy))
            continue;
        if (n + 1 >= cap)
            env = xrealloc(env, (cap *= 2) * sizeof *env);
        char *val = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        env[n++] = xasprintf("%s=%s", k, val ? val : "");
        free(val);
        has_path |= strcmp(k, "PATH") == 0;
        has_lang |= strcmp(k, "LANG") == 0;
        has_pypath |= strcmp(k, "PYTHONPATH") == 0;
        has_nodepath |= strcmp(k, "NODE_PATH") == 0;
    }
    json_decref(menv);
    env = xrealloc(env, (n + 22 + PROXY_ENV_N) * sizeof *env);
    for (size_t i = 0; proxy && i < PROXY_ENV_N; i++)
        env[n++] = strcasecmp(proxy_env[i], "no_proxy") == 0
                       ? xasprintf("%s=", proxy_env[i])
                       : xasprintf("%s=http://" SBX_EXEC_PROXY_ADDR ":%d", proxy_env[i], SBX_EXEC_PROXY_PORT);
    if (proxy) /* Node.js 22.21+ and 24.5+: fetch and http use the proxy */
        env[n++] = xstrdup("NODE_USE_ENV_PROXY=1");
    json_t *ctx = json_object_get(req, "ctx");
    const char *inv = json_string_value(json_object_get(ctx, "invocation_id"));
    const char *kind = json_string_value(json_object_get(req, "kind"));
    env[n++] = xasprintf("TINE_APP=%s", spec->app);
    env[n++] = xasprintf("TINE_FUNCTION=%s", spec->function);
    env[n++] = xasprintf("TINE_VERSION=%llu", (unsigned long long)spec->version);
    env[n++] = xasprintf("TINE_INVOCATION_ID=%s", inv ? inv : "");
    env[n++] = xasprintf("TINE_KIND=%s", kind ? kind : "http");
    env[n++] = xasprintf("TINE_TIMEOUT_MS=%u", spec->timeout_ms);
    env[n++] = xasprintf("TINE_MEMORY_MB=%u", spec->memory_mb);
    env[n++] = xasprintf("HOME=%s", workdir);
    env[n++] = xasprintf("TMPDIR=%s", workdir);
    env[n++] = xasprintf("PWD=%s", workdir);
    /* The host calls: the wire on two descriptors, the SDKs that speak it
     * (import tine, require('tine'), tine-call on the PATH). */
    env[n++] = xasprintf("TINE_HOSTCALL_FDS=%d,%d", SBX_EXEC_HOSTCALL_RD, SBX_EXEC_HOSTCALL_WR);
    if (sdks[0]) {
        env[n++] = xasprintf("TINE_SDK=%s", sdks);
        if (!has_pypath)
            env[n++] = xasprintf("PYTHONPATH=%s/python", sdks);
        if (!has_nodepath)
            env[n++] = xasprintf("NODE_PATH=%s/node", sdks);
    }
    if (!has_path)
        env[n++] = sdks[0] ? xasprintf("PATH=%s/bin:/usr/local/bin:/usr/bin:/bin", sdks)
                           : xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");
    if (!has_lang)
        env[n++] = xstrdup("LANG=C.UTF-8");
    env[n] = NULL;
    return env;
}

/* What goes to the program's stdin: the event of an event invocation, else
 * the request without its ctx but with its body ("body", or "body_base64"
 * when it is not UTF-8 text). */
static char *build_stdin(json_t *req, const char *body, size_t body_len, size_t *len)
{
    const char *kind = json_string_value(json_object_get(req, "kind"));
    char *text;
    if (kind && strcmp(kind, "event") == 0) {
        json_t *ev = json_object_get(req, "event");
        text = json_dumps(ev ? ev : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    } else {
        json_t *copy = json_copy(req);
        json_object_del(copy, "ctx");
        json_t *b = json_stringn(body, body_len);
        if (b != NULL) {
            json_object_set_new(copy, "body", b);
        } else {
            static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            char *enc = xmalloc((body_len + 2) / 3 * 4 + 1);
            size_t o = 0;
            for (size_t i = 0; i < body_len; i += 3) {
                uint32_t w = (uint32_t)(unsigned char)body[i] << 16;
                if (i + 1 < body_len)
                    w |= (uint32_t)(unsigned char)body[i + 1] << 8;
                if (i + 2 < body_len)
                    w |= (unsigned char)body[i + 2];
                enc[o++] = b64[w >> 18];
                enc[o++] = b64[(w >> 12) & 63];
                enc[o++] = i + 1 < body_len ? b64[(w >> 6) & 63] : '=';
                enc[o++] = i + 2 < body_len ? b64[w & 63] : '=';
            }
            enc[o] = '\0';
            json_object_set_new(copy, "body_base64", json_string(enc));
            free(enc);
        }
        text = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
    }
    *len = text ? strlen(text) : 0;
    return text;
}

/* Reports a failure of the child before its execve on the status pipe. */
static void child_fail(int status_fd, const char *msg)
{
    ssize_t w = write(status_fd, msg, strlen(msg));
    (void)w;
    _exit(127);
}

/* The child: stdio on the pipes, isolation, environment, execve. */
static void run_child(const sbx_spec_t *spec, const sbx_exec_plan_t *plan, const char *host_workdir,
                      const char *copied, const launch_t *l, json_t *req, int in, int out, int err_fd,
                      int status_fd, int hc_rd, int hc_wr)
{
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err_fd, 2) < 0)
        child_fail(status_fd, "cannot set up stdio");
    /* The host call pipes go on their fds right before execve (the
     * isolation below still uses what is there): they and the status pipe
     * move out of the way now. */
    int st = fcntl(status_fd, F_DUPFD_CLOEXEC, 10), hr = fcntl(hc_rd, F_DUPFD_CLOEXEC, 10),
        hw = fcntl(hc_wr, F_DUPFD_CLOEXEC, 10);
    if (st < 0 || hr < 0 || hw < 0)
        child_fail(status_fd, "cannot set up the host call pipes");
    status_fd = st;
    /* The runner ignores these; the program starts from the defaults. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGSYS, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Everything that allocates comes before the isolation, which sets
     * the address space limit. */
    char err[512];
    const char *app_dir = plan->private_root ? SBX_EXEC_APP_DIR : spec->bundle_dir;
    const char *workdir = plan->private_root ? SBX_EXEC_WORK_DIR : host_workdir;
    char *prog = copied[0] ? xstrdup(copied) : xasprintf("%s/%s", app_dir, spec->handler_file);
    char *exe = l->copy && !copied[0] ? xasprintf("%s/.tine-program", workdir) : prog;
    char *argv[4];
    int argc = 0;
    if (l->interp[0]) {
        argv[argc++] = (char *)l->interp;
        if (l->arg[0])
            argv[argc++] = (char *)l->arg;
        exe = (char *)l->interp;
    }
    argv[argc++] = prog;
    argv[argc] = NULL;
    char **envp = build_env(spec, req, workdir, plan->proxy_fd >= 0,
                            plan->private_root ? (sbx__sdks_dir()[0] ? SBX_EXEC_SDK_DIR : "") : sbx__sdks_dir());
    if (sbx__isolation_exec_child(spec, plan, host_workdir, err, sizeof err) != 0)
        child_fail(status_fd, err);
    int rc;
    if (exe != prog && !l->interp[0] && (rc = copy_executable(prog, exe)) != 0) {
        snprintf(err, sizeof err, "cannot copy the program to the working dir: %s", tine_strerror(rc));
        child_fail(status_fd, err);
    }
    if (dup2(hr, SBX_EXEC_HOSTCALL_RD) < 0 || dup2(hw, SBX_EXEC_HOSTCALL_WR) < 0)
        child_fail(status_fd, "cannot set up the host call pipes");
    execve(exe, argv, envp);
    snprintf(err, sizeof err, "cannot execute %s: %s", exe, strerror(errno));
    child_fail(status_fd, err);
}

/* Removes the working dirs of runners that are gone (killed on timeout
 * before they could clean up): they are named exec-<runner pid>-XXXXXX. */
static void sweep_workdirs(void)
{
    DIR *d = opendir(sbx__isolation_tmp_dir());
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = 0;
        if (sscanf(e->d_name, "exec-%ld-", &pid) == 1 && pid > 0 && pid != (long)getpid() &&
            kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            sbx__remove_tree(dirfd(d), e->d_name);
    }
    closedir(d);
}

/* Kills every process left running as `uid` (a uid of this invocation's
 * own, so nothing else): a helper switches to it and signals -1. */
static void kill_uid(uid_t uid)
{
    pid_t p = fork();
    if (p == 0) {
        if (setgroups(0, NULL) == 0 && setgid((gid_t)uid) == 0 && setuid(uid) == 0)
            kill(-1, SIGKILL);
        _exit(0);
    }
    if (p > 0)
        waitpid(p, NULL, 0);
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A few words on what killed the program for the signals it usually means,
 * with a leading space; "" otherwise. */
static const char *signal_reason(int sig)
{
    switch (sig) {
    case SIGXFSZ: return " (a file reached the size limit)";
    case SIGSEGV: return " (segmentation fault)";
    case SIGABRT: return " (aborted)";
    case SIGSYS: return " (a forbidden system call)";
    case SIGKILL: return " (killed)";
    default: return "";
    }
}

/* Reads what the pipe *fd has into take (stdout or stderr); closes it and
 * sets *fd to -1 at its end or on an error. */
static void read_pipe(run_t *r, int *fd, char *buf, size_t size, void (*take)(run_t *, const char *, size_t))
{
    ssize_t k = read(*fd, buf, size);
    if (k > 0)
        take(r, buf, (size_t)k);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        close(*fd);
        *fd = -1;
    }
}

/* Passes the program's whole HOSTCALL frames read so far to tined as the
 * invocation's (one at a time: the SDKs wait for each reply). Returns false
 * when the program broke the protocol (its host calls then stop). */
static bool hostcalls_forward(run_t *r)
{
    size_t off = 0;
    bool ok = true;
    while (!r->hc_pending && r->hc_in.len - off >= sizeof(sbx_frame_hdr_t)) {
        sbx_frame_hdr_t h;
        memcpy(&h, r->hc_in.data + off, sizeof h);
        if (sbx_frame_check(&h, SBX_WIRE_MAX_FRAME) != 0 || h.type != SBX_MSG_HOSTCALL) {
            ok = false;
            break;
        }
        if (r->hc_in.len - off < sizeof h + h.len)
            break;
        const char *p = r->hc_in.data + off + sizeof h;
        pthread_mutex_lock(&r->frames);
        int e = r->quiet ? -EPIPE
                         : sbx_frame_write(r->fds.wr, SBX_MSG_HOSTCALL, r->id, p, h.meta_len, p + h.meta_len,
                                           h.len - h.meta_len);
        pthread_mutex_unlock(&r->frames);
        if (e != 0) {
            ok = false;
            break;
        }
        r->hc_pending = true;
        off += sizeof h + h.len;
    }
    memmove(r->hc_in.data, r->hc_in.data + off, r->hc_in.len - off);
    r->hc_in.len -= off;
    return ok;
}

/* Reads what the program wrote on its host call pipe. */
static void hostcalls_read(run_t *r)
{
    char buf[65536];
    ssize_t k = read(r->hc_rd, buf, sizeof buf);
    if (k > 0 && r->hc_in.len + (size_t)k <= sizeof(sbx_frame_hdr_t) + SBX_WIRE_MAX_FRAME + sizeof buf) {
        tine_buf_append(&r->hc_in, buf, (size_t)k);
        if (hostcalls_forward(r))
            return;
        static const char msg[] = "host calls: the program wrote something else than HOSTCALL frames on fd 241; "
                                  "its host calls end";
        send_log(r, msg, sizeof msg - 1);
    } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    close(r->hc_rd); /* its end, a protocol error or a flood: no more host calls */
    r->hc_rd = -1;
}

/* tined's reply to the pending host call: to the program, with the id it
 * expects. Returns 0, or -EPIPE when tined is gone (or sent something
 * else). */
static int hostcall_reply(run_t *r)
{
    sbx_frame_hdr_t h;
    char *payload = NULL;
    int e = sbx_frame_read(r->fds.rd, &h, &payload, SBX_WIRE_MAX_FRAME);
    if (e != 0 || h.type != SBX_MSG_HOSTREPLY) {
        free(payload);
        return -EPIPE;
    }
    r->hc_pending = false;
    if (r->hc_wr >= 0 && sbx_frame_write(r->hc_wr, SBX_MSG_HOSTREPLY, HOSTCALL_REPLY_ID, payload, h.meta_len,
                                         payload + h.meta_len, h.len - h.meta_len) != 0) {
        close(r->hc_wr); /* the program stopped listening */
        r->hc_wr = -1;
    }
    free(payload);
    if (r->hc_rd >= 0 && !hostcalls_forward(r)) {
        close(r->hc_rd);
        r->hc_rd = -1;
    }
    return 0;
}

/* Feeds stdin, collects stdout and stderr until the program is gone (or the
 * invoker left). Returns 0, or when the runner must give up TINE_ETIMEOUT
 * (the deadline passed), TINE_ETOOBIG or -ENOMEM (stdout over its limit or
 * out of memory), -EPIPE (the invoker let go) or -errno of poll. */
static int pump(run_t *r, pid_t pid, int in, const char *data, size_t data_len, int out, int err_fd,
                uint64_t deadline_ns, bool *exited, int *wstatus, struct rusage *ru)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    size_t written = 0;
    if (data_len == 0) {
        close(in);
        in = -1;
    }
    char buf[65536];
    for (;;) {
        struct pollfd p[7];
        int np = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1, i_proxy = -1, i_hc = -1, i_wire;
        if (in >= 0)
            p[i_in = np++] = (struct pollfd){in, POLLOUT, 0};
        if (out >= 0)
            p[i_out = np++] = (struct pollfd){out, POLLIN, 0};
        if (err_fd >= 0)
            p[i_err = np++] = (struct pollfd){err_fd, POLLIN, 0};
        if (pidfd >= 0 && !*exited)
            p[i_pid = np++] = (struct pollfd){pidfd, POLLIN, 0};
        if (r->proxy != NULL && !*exited)
            p[i_proxy = np++] = (struct pollfd){sbx__proxy_fd(r->proxy), POLLIN, 0};
        if (r->hc_rd >= 0 && !*exited)
            p[i_hc = np++] = (struct pollfd){r->hc_rd, POLLIN, 0};
        p[i_wire = np++] = (struct pollfd){r->fds.rd, POLLIN, 0};
        if (out < 0 && err_fd < 0 && *exited)
            break;
        uint64_t now = tine_now_ns();
        if (now >= deadline_ns)
            return TINE_ETIMEOUT;
        int wait_ms = (int)((deadline_ns - now) / 1000000u) + 1;
        if (pidfd < 0 && wait_ms > 50)
            wait_ms = 50; /* no pidfd: look for the exit every 50 ms */
        int n = poll(p, (nfds_t)np, wait_ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (p[i_wire].revents) {
            if (r->hc_pending) { /* the reply to the program's host call */
                if (hostcall_reply(r) != 0)
                    return -EPIPE;
            } else { /* the invoker let go: nobody wants the answer */
                char c;
                if (read(r->fds.rd, &c, 1) <= 0)
                    return -EPIPE;
            }
        }
        if (i_hc >= 0 && p[i_hc].revents)
            hostcalls_read(r);
        if (i_proxy >= 0 && p[i_proxy].revents)
            sbx__proxy_accept(r->proxy);
        if (i_in >= 0 && p[i_in].revents) {
            ssize_t w = write(in, data + written, data_len - written);
            if (w > 0)
                written += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == data_len) {
                close(in); /* EOF on the program's stdin (or it stopped reading) */
                in = -1;
            }
        }
        if (i_out >= 0 && p[i_out].revents) {
            read_pipe(r, &out, buf, sizeof buf, take_stdout);
            if (r->out_over || r->out_oom)
                return r->out_over ? TINE_ETOOBIG : -ENOMEM;
        }
        if (i_err >= 0 && p[i_err].revents)
            read_pipe(r, &err_fd, buf, sizeof buf, take_stderr);
        if (!*exited && (pidfd < 0 || (i_pid >= 0 && p[i_pid].revents))) {
            pid_t w = wait4(pid, wstatus, WNOHANG, ru);
            if (w == pid) {
                *exited = true;
                /* What is still buffered in the pipes, not what a leftover
                 * child might write later. */
                if (out >= 0)
                    while (!r->out_over && !r->out_oom && (n = (int)read(out, buf, sizeof buf)) > 0)
                        take_stdout(r, buf, (size_t)n);
                if (err_fd >= 0)
                    while ((n = (int)read(err_fd, buf, sizeof buf)) > 0)
                        take_stderr(r, buf, (size_t)n);
                if (out >= 0)
                    close(out);
                if (err_fd >= 0)
                    close(err_fd);
                out = err_fd = -1;
            }
        }
    }
    if (in >= 0)
        close(in);
    if (pidfd >= 0)
        close(pidfd);
    return 0;
}

/* User and system CPU time of ru in microseconds, capped at UINT32_MAX. */
static uint32_t cpu_us(const struct rusage *ru)
{
    uint64_t us = (uint64_t)ru->ru_utime.tv_sec * 1000000u + (uint64_t)ru->ru_utime.tv_usec +
                  (uint64_t)ru->ru_stime.tv_sec * 1000000u + (uint64_t)ru->ru_stime.tv_usec;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Runs the program for one invocation and answers it. */
static void run_invocation(run_t *r, sbx_exec_plan_t *plan, json_t *req, const char *body, size_t body_len)
{
    const sbx_spec_t *spec = r->spec;
    const char *hf = spec->handler_file;
    if (hf[0] == '\0' || hf[0] == '/' || strcmp(hf, "..") == 0 || strncmp(hf, "../", 3) == 0 ||
        strstr(hf, "/../") != NULL || (strlen(hf) >= 3 && strcmp(hf + strlen(hf) - 3, "/..") == 0)) {
        send_error(r, 0, "bad program '%s': expected a path inside the bundle", hf);
        return;
    }
    char err[512];
    launch_t l;
    char *host_prog = xasprintf("%s/%s", spec->bundle_dir, hf);
    int rc = plan_launch(host_prog, &l, err, sizeof err);
    free(host_prog);
    if (rc != 0) {
        send_error(r, 0, "%s: %s", hf, err);
        return;
    }
    char workdir[PATH_MAX] = "", copied[PATH_MAX + 16] = "";
    if (!plan->private_root) {
        sweep_workdirs();
        snprintf(workdir, sizeof workdir, "%s/exec-%ld-XXXXXX", sbx__isolation_tmp_dir(), (long)getpid());
        if (mkdtemp(workdir) == NULL ||
            (plan->own_uid && chown(workdir, plan->uid, (gid_t)plan->uid) != 0)) {
            send_error(r, 0, "cannot create a working dir under %s: %s", sbx__isolation_tmp_dir(), strerror(errno));
            return;
        }
        /* Running as a uid of its own without a root of its own, the
         * program cannot reach tined's state dir: it runs from a copy. */
        snprintf(copied, sizeof copied, "%s/.tine-program", workdir);
        char *src = xasprintf("%s/%s", spec->bundle_dir, hf);
        rc = plan->own_uid ? copy_executable(src, copied) : 0;
        free(src);
        if (!plan->own_uid)
            copied[0] = '\0';
        else if (rc != 0 || chown(copied, plan->uid, (gid_t)plan->uid) != 0) {
            send_error(r, 0, "cannot copy %s to the working dir: %s", hf, tine_strerror(rc != 0 ? rc : -errno));
            sbx__remove_tree(AT_FDCWD, workdir);
            return;
        }
    }
    size_t in_len = 0;
    char *in_data = build_stdin(req, body, body_len, &in_len);
    int in[2], out[2], errp[2], status[2], hc_down[2], hc_up[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(status, O_CLOEXEC) != 0 || pipe2(hc_down, O_CLOEXEC) != 0 || pipe2(hc_up, O_CLOEXEC) != 0) {
        send_error(r, 0, "pipe: %s", strerror(errno));
        free(in_data);
        return;
    }
    uint64_t deadline = tine_now_ns() + ((uint64_t)spec->timeout_ms + GRACE_MS) * 1000000u;
    pid_t pid = fork();
    if (pid == 0)
        run_child(spec, plan, workdir, copied, &l, req, in[0], out[1], errp[1], status[1], hc_down[0], hc_up[1]);
    close(in[0]);
    close(out[1]);
    close(errp[1]);
    close(status[1]);
    close(hc_down[0]);
    close(hc_up[1]);
    r->hc_rd = hc_up[0];
    r->hc_wr = hc_down[1];
    if (pid < 0) {
        send_error(r, 0, "cannot start %s: fork: %s", hf, strerror(errno));
        close(in[1]);
        close(out[0]);
        close(errp[0]);
        close(status[0]);
        free(in_data);
        return;
    }
    set_nonblock(in[1]);
    set_nonblock(out[0]);
    set_nonblock(errp[0]);
    set_nonblock(r->hc_rd);
    if (plan->proxy_fd >= 0) {
        if (sbx__isolation_exec_forked(plan, err, sizeof err) != 0) /* the program then has no way out */
            send_log(r, err, strlen(err));
        else
            r->proxy = sbx__proxy_new(plan->proxy_fd, spec, deadline, log_from_proxy, r);
    }
    bool exited = false;
    int ws = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    bool gave_up = pump(r, pid, in[1], in_data, in_len, out[0], errp[0], deadline, &exited, &ws, &ru) != 0;
    free(in_data);
    if (!exited) {
        kill(pid, SIGKILL);
        wait4(pid, &ws, 0, &ru);
    }
    if (r->hc_rd >= 0)
        close(r->hc_rd);
    if (r->hc_wr >= 0)
        close(r->hc_wr);
    r->hc_rd = r->hc_wr = -1;
    if (r->line_len > 0)
        take_stderr(r, "\n", 1);
    go_quiet(r);
    if (plan->own_uid && !plan->pid_ns)
        kill_uid(plan->uid); /* leftovers a pid namespace would have taken down */
    bool oom = plan->cgroup && sbx__cgroup_out_of_memory(&plan->cg);
    if (plan->cgroup)
        sbx__cgroup_remove(&plan->cg);
    if (workdir[0])
        sbx__remove_tree(AT_FDCWD, workdir);

    char setup[512];
    ssize_t sn = read(status[0], setup, sizeof setup - 1);
    close(status[0]);
    uint32_t cpu = cpu_us(&ru);
    if (sn > 0) {
        setup[sn] = '\0';
        send_error(r, cpu, "cannot start %s: %s", hf, setup);
    } else if (oom) {
        const char *tail = stderr_tail(r);
        send_error(r, cpu, "function %s ran out of memory (memory: %u MB)%s%s", spec->function, spec->memory_mb,
                   tail[0] ? ": " : "", tail);
    } else if (r->out_over) {
        send_error(r, cpu, "%s wrote more than %u bytes to stdout (the response limit) and was stopped", hf,
                   STDOUT_MAX);
    } else if (r->out_oom) {
        send_error(r, cpu, "%s: out of memory holding its stdout past %zu bytes; it was stopped", hf, r->out.len);
    } else if (gave_up) {
        send_error(r, cpu, "%s did not finish in %u ms", hf, spec->timeout_ms);
    } else if (WIFSIGNALED(ws)) {
        const char *tail = stderr_tail(r);
        send_error(r, cpu, "%s was killed by signal %d%s%s%s", hf, WTERMSIG(ws), signal_reason(WTERMSIG(ws)),
                   tail[0] ? ": " : "", tail);
    } else if (WEXITSTATUS(ws) != 0) {
        const char *tail = stderr_tail(r);
        send_error(r, cpu, "%s exited with status %d%s%s", hf, WEXITSTATUS(ws), tail[0] ? ": " : "", tail);
    } else if (send_result(r, cpu, err, sizeof err) != 0) {
        send_error(r, cpu, "%s: %s", hf, err);
    }
}

int sbx_exec_serve(sbx_fds_t fds, const sbx_spec_t *spec)
{
    /* The invoker kills -pid on timeout: the program is in this group. */
    setpgid(0, 0);
    signal(SIGPIPE, SIG_IGN);
    run_t r;
    memset(&r, 0, sizeof r);
    r.fds = fds;
    r.spec = spec;
    tine_buf_init(&r.out);
    tine_buf_init(&r.hc_in);
    r.hc_rd = r.hc_wr = -1;
    pthread_mutex_init(&r.frames, NULL);
    sbx_exec_plan_t plan;
    char err[512];
    int setup = sbx__isolation_exec_runner(spec, fds, &plan, err, sizeof err);
    char ready[64];
    int n = snprintf(ready, sizeof ready, "{\"pid\":%ld,\"init_us\":0}", (long)getpid());
    sbx_frame_hdr_t h;
    char *payload = NULL;
    int rc = 1;
    if (sbx_frame_write(fds.wr, SBX_MSG_READY, 0, ready, (size_t)n, NULL, 0) == 0 &&
        sbx_frame_read(fds.rd, &h, &payload, SBX_WIRE_MAX_FRAME) == 0 && h.type == SBX_MSG_INVOKE) {
        r.id = h.id;
        char merr[128];
        json_t *req = sbx_meta_to_json(payload, h.meta_len, merr, sizeof merr);
        if (setup != 0)
            send_error(&r, 0, "%s", err);
        else if (!json_is_object(req))
            send_error(&r, 0, "%s", req ? "bad invocation metadata: expected an object" : merr);
        else
            run_invocation(&r, &plan, req, payload + h.meta_len, h.len - h.meta_len);
        json_decref(req);
        rc = 0;
    }
    /* Whatever happened: no cgroup is left behind (its program is gone). */
    if (plan.cgroup)
        sbx__cgroup_remove(&plan.cg);
    free(payload);
    tine_buf_dispose(&r.out);
    tine_buf_dispose(&r.hc_in);
    return rc;
}
