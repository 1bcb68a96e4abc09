/* The zygote: a small single-threaded program of its own (tine-zygote,
 * zygote_main.c) that tined starts before its loop. It holds a prepared
 * LuaJIT state (standard libraries and the SDK loaded) and, on request,
 * forks a sandbox for one function and hands tined its ends of the
 * sandbox's two pipes over the control socket (SCM_RIGHTS). Being exec'd rather than forked from
 * tined, it maps only the libraries a sandbox needs and none of tined's
 * memory: a fork copies fewer page tables, a sandbox shares fewer pages, and
 * no sandbox holds tined's configuration.
 *
 * Control protocol (tined -> zygote): one wire frame of type
 * ZYGOTE_MSG_SPAWN whose meta is the JSON of an sbx_spec_t, or {"blank":true}
 * for a blank sandbox. Answer (zygote -> tined), one per request and in
 * order: a 12-byte message {int32 status, int32 pid, int32 reserved} carrying
 * tined's two pipe ends (read, write) as ancillary data when status is 0.
 *
 * A blank sandbox is forked before anyone needs it: it waits on its own
 * pipe for one ZYGOTE_MSG_SPAWN frame holding its spec (sbx_spec_frame,
 * written by tined) and then becomes that sandbox, so a cold start costs
 * loading the handler but no fork and no trip through the zygote. */
#define _GNU_SOURCE /* SCHED_BATCH, pipe2 */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "outbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ZYGOTE_MSG_SPAWN SBX_MSG_INVOKE /* a spawn request travels as an INVOKE frame */
#define ZYGOTE_MAX_REQUEST 65536
/* Where the zygote program finds the control socket and the isolation
 * report pipe (sbx_zygote_start puts them there). */
#define ZYGOTE_CONTROL_FD 3
#define ZYGOTE_REPORT_FD 4

typedef struct {
    int32_t status;
    int32_t pid;
    int32_t reserved;
} zygote_reply_t;

void sbx_fds_close(sbx_fds_t fds)
{
    close(fds.rd);
    if (fds.wr != fds.rd)
        close(fds.wr);
}

int sbx__zygote_reply(int sock, int32_t status, int32_t pid, const int *fds, int nfds)
{
    zygote_reply_t reply = {status, pid, 0};
    struct iovec iov = {&reply, sizeof(reply)};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0 && nfds <= 3) {
        memset(&ctrl, 0, sizeof(ctrl));
        msg.msg_control = ctrl.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Sends the reply, with tined's two pipe ends attached when `fds` is not
 * NULL. Returns 0 or -errno. */
static int zygote_send_reply(int sock, int32_t status, int32_t pid, const sbx_fds_t *fds)
{
    int two[2] = {fds ? fds->rd : -1, fds ? fds->wr : -1};
    return sbx__zygote_reply(sock, status, pid, two, fds ? 2 : 0);
}

/* The string of v, or "" when it is not a string. */
static const char *json_str_of(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

/* The string member `key` of o, or "". */
static const char *json_str(json_t *o, const char *key)
{
    return json_str_of(json_object_get(o, key));
}

static const char *zygote_sdk_dir;

/* Runs in the forked child: becomes the sandbox for `spec`, isolated by the
 * per-fork layers (isolation.c). Never returns. */
static void zygote_become_sandbox(sbx_lua_t *L, int control_fd, sbx_fds_t fds, const sbx_spec_t *spec)
{
    close(control_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    /* SCHED_BATCH: a sandbox woken by a call does not preempt tined, which
     * finishes its loop turn first (more calls reach the sandbox in one
     * read, fewer context switches); tined, woken by an answer or a
     * request, still preempts a sandbox. Allowed without privileges. */
    struct sched_param sp = {.sched_priority = 0};
    sched_setscheduler(0, SCHED_BATCH, &sp);
    if (spec->runtime == SBX_RUNTIME_EXEC)
        _exit(sbx_exec_serve(fds, spec));
    sbx_outbox_install(); /* before the system call filter, which allows neither sigaction nor setitimer */
    sbx_spec_t confined = *spec;
    char err[256];
    /* A co-location group: the other members' states are made while the
     * SDK can still be read, and the limits cover them all. */
    sbx_spec_t limits = *spec;
    if (spec->group_json != NULL) {
        if (sbx_lua_group_prepare(spec, zygote_sdk_dir) != 0) {
            static const char msg[] = "{\"error\":\"cannot prepare the Lua states of the co-location group\"}";
            sbx_frame_write(fds.wr, SBX_MSG_ERROR, 0, msg, sizeof msg - 1, NULL, 0);
            _exit(1);
        }
        if (spec->group_memory_mb > limits.memory_mb)
            limits.memory_mb = spec->group_memory_mb;
    }
    if (sbx__isolation_enter_lua(&limits, &fds, &confined.bundle_dir, err, sizeof err) != 0) {
        json_t *m = json_pack("{s:s+}", "error", "cannot isolate the sandbox: ", err);
        char *text = json_dumps(m, JSON_COMPACT);
        sbx_frame_write(fds.wr, SBX_MSG_ERROR, 0, text, strlen(text), NULL, 0);
        _exit(1);
    }
    _exit(sbx_lua_serve(L, fds, &confined));
}

/* Encodes a spec as the JSON meta of a spawn request. Returns a malloc'd
 * string or NULL. */
static char *spec_encode(const sbx_spec_t *spec)
{
    json_t *o = json_pack("{s:i, s:b, s:s, s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "runtime", spec->runtime,
                          "network", spec->network, "app", spec->app, "version", (json_int_t)spec->version,
                          "function", spec->function, "bundle_dir", spec->bundle_dir, "handler_file",
                          spec->handler_file, "handler_export", spec->handler_export ? spec->handler_export : "",
                          "memory_mb", (int)spec->memory_mb, "timeout_ms", (int)spec->timeout_ms, "env_json",
                          spec->env_json ? spec->env_json : "{}");
    if (o == NULL)
        return NULL;
    if (spec->group_json != NULL) {
        json_object_set_new(o, "group_json", json_string(spec->group_json));
        json_object_set_new(o, "group_memory_mb", json_integer(spec->group_memory_mb));
        json_object_set_new(o, "max_invoke_depth", json_integer(spec->max_invoke_depth));
        json_object_set_new(o, "id_prefix", json_string(spec->id_prefix ? spec->id_prefix : ""));
    }
    if (spec->network && spec->allow_outbound_set) {
        json_t *allow = json_array();
        for (size_t i = 0; i < spec->allow_outbound_len; i++)
            json_array_append_new(allow, json_string(spec->allow_outbound[i]));
        json_object_set_new(o, "allow_outbound", allow);
    }
    char *meta = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return meta;
}

/* Decodes the meta of a spawn request. Returns 0 with *spec filled (its
 * strings live in *holder: release both with spec_release), 1 for a blank
 * request (*holder NULL), or TINE_EPROTO. */
static int spec_decode(const char *meta, size_t meta_len, sbx_spec_t *spec, json_t **holder)
{
    *holder = NULL;
    json_t *o = json_loadb(meta, meta_len, 0, NULL);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return TINE_EPROTO;
    }
    if (json_is_true(json_object_get(o, "blank"))) {
        json_decref(o);
        return 1;
    }
    *spec = (sbx_spec_t){
        .runtime = (int)json_integer_value(json_object_get(o, "runtime")),
        .network = json_is_true(json_object_get(o, "network")),
        .app = json_str(o, "app"),
        .version = (uint64_t)json_integer_value(json_object_get(o, "version")),
        .function = json_str(o, "function"),
        .bundle_dir = json_str(o, "bundle_dir"),
        .handler_file = json_str(o, "handler_file"),
        .handler_export = json_str(o, "handler_export"),
        .memory_mb = (uint32_t)json_integer_value(json_object_get(o, "memory_mb")),
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(o, "timeout_ms")),
        .env_json = json_str(o, "env_json"),
    };
    if (json_is_string(json_object_get(o, "group_json"))) {
        spec->group_json = json_str(o, "group_json");
        spec->group_memory_mb = (uint32_t)json_integer_value(json_object_get(o, "group_memory_mb"));
        spec->max_invoke_depth = (uint32_t)json_integer_value(json_object_get(o, "max_invoke_depth"));
        spec->id_prefix = json_str(o, "id_prefix");
    }
    json_t *allow = json_object_get(o, "allow_outbound");
    if (json_is_array(allow)) {
        const char **list = xcalloc(json_array_size(allow) + 1, sizeof *list);
        size_t i;
        json_t *v;
        json_array_foreach(allow, i, v) list[spec->allow_outbound_len++] = json_str_of(v);
        spec->allow_outbound = list;
        spec->allow_outbound_set = true;
    }
    *holder = o;
    return 0;
}

/* Frees what spec_decode made for *spec. Accepts a NULL holder. */
static void spec_release(sbx_spec_t *spec, json_t *holder)
{
    free((void *)spec->allow_outbound);
    spec->allow_outbound = NULL;
    json_decref(holder);
}

/* Runs in a blank child: waits for its spec frame on fds.rd, then becomes
 * that sandbox. Exits quietly when tined lets the blank go (EOF). Never
 * returns. */
static void zygote_blank_wait(sbx_lua_t *L, int control_fd, sbx_fds_t fds)
{
    close(control_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sbx_frame_hdr_t h;
    char *payload = NULL;
    int r = sbx_frame_read(fds.rd, &h, &payload, ZYGOTE_MAX_REQUEST);
    if (r != 0 || h.type == 0)
        _exit(0);
    sbx_spec_t spec;
    json_t *holder = NULL;
    if (h.type != ZYGOTE_MSG_SPAWN || spec_decode(payload, h.meta_len, &spec, &holder) != 0) {
        static const char msg[] = "{\"error\":\"bad sandbox spec from tined\"}";
        sbx_frame_write(fds.wr, SBX_MSG_ERROR, 0, msg, sizeof msg - 1, NULL, 0);
        _exit(1);
    }
    free(payload);
    zygote_become_sandbox(L, -1, fds, &spec);
}

/* zygote_sdk_dir (declared above): the directory of the Lua SDK (its
 * sibling python/ holds the Python SDK). */
/* Its parent, the SDKs' directory, resolved (for exec programs); "" when unknown. */
static char sdks_dir[PATH_MAX];

const char *sbx__sdks_dir(void)
{
    return sdks_dir;
}

/* Handles one spawn request: fork a sandbox (for a spec, or blank) and hand
 * back tined's ends of its two pipes; or start a Python zygote
 * (python_host.c). */
static void zygote_spawn(sbx_lua_t *L, int control_fd, const char *meta, size_t meta_len)
{
    if (sbx__runtime_spawn(&sbx__python_kind, control_fd, meta, meta_len, zygote_sdk_dir) ||
        sbx__runtime_spawn(&sbx__node_kind, control_fd, meta, meta_len, zygote_sdk_dir))
        return;
    sbx_spec_t spec = {0};
    json_t *o = NULL;
    int kind = spec_decode(meta, meta_len, &spec, &o);
    if (kind < 0) {
        zygote_send_reply(control_fd, TINE_EPROTO, 0, NULL);
        return;
    }
    int down[2] = {-1, -1}, up[2]; /* tined -> sandbox, sandbox -> tined */
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) {
        int err = -errno;
        if (down[0] >= 0) /* the second pipe failed */
            sbx_fds_close((sbx_fds_t){down[0], down[1]});
        zygote_send_reply(control_fd, err, 0, NULL);
        spec_release(&spec, o);
        return;
    }
    sbx_fds_t child = {down[0], up[1]}, host = {up[0], down[1]};
    pid_t pid = fork();
    if (pid == 0) {
        sbx_fds_close(host);
        if (kind == 1)
            zygote_blank_wait(L, control_fd, child);
        zygote_become_sandbox(L, control_fd, child, &spec);
    }
    int err = pid < 0 ? -errno : 0;
    sbx_fds_close(child);
    zygote_send_reply(control_fd, err, pid < 0 ? 0 : pid, err == 0 ? &host : NULL);
    sbx_fds_close(host);
    spec_release(&spec, o);
}

/* The zygote's main loop: serve spawn requests until tined goes away. */
static void zygote_main(int control_fd, const char *sdk_dir)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "tine-zygote");
    /* Sandboxes are reaped automatically: tined watches their pipes. */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    zygote_sdk_dir = sdk_dir;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s/..", sdk_dir ? sdk_dir : ".");
    if (realpath(parent, sdks_dir) == NULL)
        sdks_dir[0] = '\0';
    sbx_lua_t *L = sbx_lua_prepare(sdk_dir);
    if (L == NULL) {
        tine_log(TINE_LOG_ERROR, "zygote: cannot prepare the Lua state from %s", sdk_dir);
        _exit(1);
    }
    /* Namespaces and filters once, for every sandbox forked from here on. */
    sbx__isolation_zygote_enter();
    /* Give the heap's free pages back: what a sandbox allocates then comes
     * from fresh pages, not from copies of the zygote's. */
    malloc_trim(0);
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        int r = sbx_frame_read(control_fd, &h, &payload, ZYGOTE_MAX_REQUEST);
        if (r != 0 || h.type == 0) {
            free(payload);
            _exit(0);
        }
        if (h.type == ZYGOTE_MSG_SPAWN)
            zygote_spawn(L, control_fd, payload, h.meta_len);
        else
            zygote_send_reply(control_fd, TINE_EPROTO, 0, NULL);
        free(payload);
    }
}

/* The zygote program: $TINE_ZYGOTE, else tine-zygote next to the running
 * executable. A fresh heap string, or NULL after saying why. */
static char *zygote_program(void)
{
    const char *env = getenv("TINE_ZYGOTE");
    if (env != NULL && env[0] != '\0') {
        if (access(env, X_OK) == 0)
            return xstrdup(env);
        tine_log(TINE_LOG_ERROR, "cannot run the zygote program %s (TINE_ZYGOTE): %s", env, strerror(errno));
        return NULL;
    }
    char *p = tine_exe_sibling("tine-zygote");
    if (p == NULL)
        tine_log(TINE_LOG_ERROR, "the zygote program tine-zygote is not next to this executable (or set TINE_ZYGOTE)");
    return p;
}

/* Whether tined's variable `entry` ("NAME=value") is one the zygote keeps:
 * the time zone (Lua's os.date), the sanitizers' options of the test build
 * and the Python interpreter to run (python_host.c). Nothing else of tined's environment (admin token, Redis URL with
 * its password, ...) may reach the zygote and, through it, a sandbox. */
static bool zygote_keeps(const char *entry)
{
    static const char *const kept[] = {"TZ=", "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TINE_PYTHON=", "TINE_NODE="};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strncmp(entry, kept[i], strlen(kept[i])) == 0)
            return true;
    return false;
}

/* The zygote's environment, built from nothing: a fixed PATH, every symbol
 * of every library bound when the zygote starts (a sandbox then binds none
 * on its first calls: a lookup and a copied page each), and the few of
 * tined's variables zygote_keeps. A NULL-terminated array whose strings
 * are borrowed from environ or static; free the array only. */
static char **zygote_environment(void)
{
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = xcalloc(nenv + 3, sizeof *envp);
    size_t k = 0;
    envp[k++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    envp[k++] = "LD_BIND_NOW=1";
    for (size_t i = 0; i < nenv; i++)
        if (zygote_keeps(environ[i]))
            envp[k++] = environ[i];
    envp[k] = NULL;
    return envp;
}

int sbx_zygote_start(sbx_zygote_t *z, const char *sdk_dir)
{
    char *program = zygote_program();
    if (program == NULL)
        return -ENOENT;
    sbx_isolation_config_t cfg;
    int report_fd;
    sbx__isolation_handover(&cfg, &report_fd);
    char uid[16], report[16];
    snprintf(uid, sizeof uid, "%u", (unsigned)cfg.sandbox_uid);
    snprintf(report, sizeof report, "%d", ZYGOTE_REPORT_FD);
    const char *argv[12] = {"tine-zygote", "--sdk-dir", sdk_dir, "--isolation", cfg.enabled ? "on" : "off",
                            "--sandbox-uid", uid};
    int argc = 7;
    if (cfg.tmp_dir) {
        argv[argc++] = "--tmp-dir";
        argv[argc++] = cfg.tmp_dir;
    }
    if (report_fd >= 0) {
        argv[argc++] = "--report-fd";
        argv[argc++] = report;
    }
    argv[argc] = NULL;
    char **envp = zygote_environment();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        int e = -errno;
        free(program);
        free(envp);
        return e;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        free(program);
        free(envp);
        return e;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The control socket on ZYGOTE_CONTROL_FD, the report pipe on
         * ZYGOTE_REPORT_FD, nothing else of tined's but stdio. */
        int control = fcntl(sv[1], F_DUPFD_CLOEXEC, ZYGOTE_REPORT_FD + 1);
        int report_dup = report_fd >= 0 ? fcntl(report_fd, F_DUPFD_CLOEXEC, ZYGOTE_REPORT_FD + 1) : -1;
        if (control < 0 || (report_fd >= 0 && report_dup < 0) || dup2(control, ZYGOTE_CONTROL_FD) < 0 ||
            (report_dup >= 0 && dup2(report_dup, ZYGOTE_REPORT_FD) < 0)) {
            tine_log(TINE_LOG_ERROR, "cannot pass descriptors to the zygote: %s", strerror(errno));
            _exit(127);
        }
        closefrom(report_dup >= 0 ? ZYGOTE_REPORT_FD + 1 : ZYGOTE_CONTROL_FD + 1);
        execve(program, (char *const *)argv, envp);
        tine_log(TINE_LOG_ERROR, "cannot run the zygote program %s: %s", program, strerror(errno));
        _exit(127);
    }
    free(program);
    free(envp);
    close(sv[1]);
    z->pid = pid;
    z->control_fd = sv[0];
    return 0;
}

int sbx__zygote_program(int argc, char **argv)
{
    const char *sdk_dir = NULL;
    sbx_isolation_config_t cfg = {.enabled = false};
    int report_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            goto usage;
        if (strcmp(a, "--sdk-dir") == 0)
            sdk_dir = v;
        else if (strcmp(a, "--isolation") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            cfg.enabled = strcmp(v, "on") == 0;
        else if (strcmp(a, "--sandbox-uid") == 0)
            cfg.sandbox_uid = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--tmp-dir") == 0)
            cfg.tmp_dir = v;
        else if (strcmp(a, "--report-fd") == 0 && atoi(v) == ZYGOTE_REPORT_FD)
            report_fd = ZYGOTE_REPORT_FD;
        else
            goto usage;
        i++;
    }
    struct stat st;
    if (sdk_dir == NULL || fstat(ZYGOTE_CONTROL_FD, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        sbx__isolation_adopt(&cfg, report_fd) != 0)
        goto usage;
    fcntl(ZYGOTE_CONTROL_FD, F_SETFD, FD_CLOEXEC);
    if (report_fd >= 0)
        fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    zygote_main(ZYGOTE_CONTROL_FD, sdk_dir);
    return 0;
usage:
    tine_log(TINE_LOG_ERROR,
             "zygote: started by tined only (its control socket on fd %d, then --sdk-dir DIR --isolation on|off "
             "--sandbox-uid UID [--tmp-dir DIR] [--report-fd %d])",
             ZYGOTE_CONTROL_FD, ZYGOTE_REPORT_FD);
    return 2;
}

/* A ZYGOTE_MSG_SPAWN frame (header and meta) in one malloc'd buffer, or NULL. */
static char *spawn_frame(const char *meta, size_t meta_len, size_t *len)
{
    sbx_frame_hdr_t h = {.len = (uint32_t)meta_len, .type = ZYGOTE_MSG_SPAWN, .meta_len = (uint32_t)meta_len};
    char *frame = malloc(sizeof h + meta_len);
    if (frame != NULL) {
        memcpy(frame, &h, sizeof h);
        memcpy(frame + sizeof h, meta, meta_len);
        *len = sizeof h + meta_len;
    }
    return frame;
}

/* Sends one spawn frame (taken: freed here) on the control socket, which
 * may be non-blocking: whole or, when nothing fits, not at all. Returns 0
 * or -errno (-EAGAIN: nothing was sent). */
static int zygote_send(sbx_zygote_t *z, char *frame, size_t len)
{
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = send(z->control_fd, frame + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (off == 0) {
                rc = -EAGAIN;
                break;
            }
            struct pollfd p = {.fd = z->control_fd, .events = POLLOUT};
            poll(&p, 1, -1);
            continue;
        }
        rc = n < 0 ? -errno : -EPIPE;
        break;
    }
    free(frame);
    return rc;
}

int sbx_zygote_request(sbx_zygote_t *z, const sbx_spec_t *spec)
{
    static const char blank[] = "{\"blank\":true}";
    size_t len = 0;
    char *frame = spec ? sbx_spec_frame(spec, &len) : spawn_frame(blank, sizeof blank - 1, &len);
    if (frame == NULL)
        return spec ? TINE_EINVAL : -ENOMEM;
    return zygote_send(z, frame, len);
}

int sbx_zygote_request_python(sbx_zygote_t *z, const sbx_python_spec_t *spec)
{
    json_t *mods = json_array();
    for (size_t i = 0; i < spec->modules_len; i++)
        json_array_append_new(mods, json_string(spec->modules[i]));
    json_t *o = json_pack("{s:b, s:s, s:I, s:s, s:o, s:i, s:i}", spec->node ? "node_host" : "python_zygote", 1, "app", spec->app, "version",
                          (json_int_t)spec->version, "bundle_dir", spec->bundle_dir, "modules", mods, "memory_mb",
                          (int)spec->memory_mb, "processes", (int)spec->processes);
    char *meta = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (meta == NULL)
        return TINE_EINVAL;
    size_t len = 0;
    char *frame = spawn_frame(meta, strlen(meta), &len);
    free(meta);
    if (frame == NULL)
        return -ENOMEM;
    return zygote_send(z, frame, len);
}

/* The pid of the process a pidfd refers to, as this process sees it (its
 * /proc), or 0 when it is gone or cannot be read. */
static pid_t pid_of_pidfd(int pidfd)
{
    char path[64], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    if (tine_try_read_file(path, &text, &len) != 0)
        return 0;
    const char *p = strstr(text, "\nPid:");
    long pid = p ? strtol(p + 5, NULL, 10) : 0;
    free(text);
    return pid > 0 ? (pid_t)pid : 0;
}

int sbx_zygote_receive(sbx_zygote_t *z, bool wait, sbx_spawned_t *out)
{
    zygote_reply_t reply;
    struct iovec iov = {&reply, sizeof(reply)};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.buf;
    msg.msg_controllen = sizeof(ctrl.buf);
    ssize_t n;
    for (;;) {
        n = recvmsg(z->control_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return TINE_ECRASH;
        if (!wait)
            return -EAGAIN;
        struct pollfd p = {.fd = z->control_fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return TINE_ECRASH;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    int got[3] = {-1, -1, -1};
    size_t nfds = 0;
    if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(got, CMSG_DATA(c), (nfds < 3 ? nfds : 3) * sizeof(int));
    }
    /* Two pipe ends; one socket (a Python zygote's control socket); or two
     * pipe ends and a pidfd of the child (from a Python zygote, whose pids
     * are those of its own pid namespace). */
    if (n != (ssize_t)sizeof(reply) || (reply.status == 0) != (nfds > 0) || nfds > 3 ||
        (msg.msg_flags & MSG_CTRUNC)) {
        /* EOF, or the answers are out of step: nothing more can be trusted. */
        for (size_t i = 0; i < nfds && i < 3; i++)
            close(got[i]);
        return TINE_ECRASH;
    }
    out->error = reply.status;
    out->pid = reply.status == 0 ? reply.pid : 0;
    out->fds = (sbx_fds_t){got[0], nfds == 1 ? got[0] : got[1]};
    if (nfds == 3) {
        out->pid = pid_of_pidfd(got[2]);
        close(got[2]);
    }
    return 0;
}

int sbx_zygote_spawn(sbx_zygote_t *z, const sbx_spec_t *spec, pid_t *pid, sbx_fds_t *fds)
{
    int r = sbx_zygote_request(z, spec);
    sbx_spawned_t got;
    if (r == 0)
        r = sbx_zygote_receive(z, true, &got);
    if (r == 0)
        r = got.error;
    if (r == 0) {
        *pid = got.pid;
        *fds = got.fds;
    }
    return r;
}

char *sbx_spec_frame(const sbx_spec_t *spec, size_t *len)
{
    char *meta = spec_encode(spec);
    if (meta == NULL)
        return NULL;
    char *frame = spawn_frame(meta, strlen(meta), len);
    free(meta);
    return frame;
}

void sbx_zygote_stop(sbx_zygote_t *z)
{
    if (z->control_fd >= 0) {
        close(z->control_fd);
        z->control_fd = -1;
    }
    if (z->pid > 0) {
        kill(z->pid, SIGKILL);
        waitpid(z->pid, NULL, 0);
        z->pid = 0;
    }
}
