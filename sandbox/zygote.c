/* The zygote: a small single-threaded process forked by tined before it
 * starts its loop. It holds a prepared LuaJIT state (standard libraries and
 * the SDK loaded) and, on request, forks a sandbox for one function and hands
 * tined the sandbox's socket over the control socket (SCM_RIGHTS).
 *
 * Control protocol (tined -> zygote): one wire frame of type
 * ZYGOTE_MSG_SPAWN whose meta is the JSON of an sbx_spec_t. Answer (zygote ->
 * tined): a 12-byte message {int32 status, int32 pid, int32 reserved} carrying
 * the sandbox's socket as ancillary data when status is 0. */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZYGOTE_MSG_SPAWN SBX_MSG_INVOKE /* a spawn request travels as an INVOKE frame */
#define ZYGOTE_MAX_REQUEST 65536

typedef struct {
    int32_t status;
    int32_t pid;
    int32_t reserved;
} zygote_reply_t;

/* Sends the reply, with `fd` attached when fd >= 0. Returns 0 or -errno. */
static int zygote_send_reply(int sock, int32_t status, int32_t pid, int fd)
{
    zygote_reply_t reply = {status, pid, 0};
    struct iovec iov = {&reply, sizeof(reply)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&ctrl, 0, sizeof(ctrl));
        msg.msg_control = ctrl.buf;
        msg.msg_controllen = sizeof(ctrl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static const char *json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Runs in the forked child: becomes the sandbox for `spec`, isolated by the
 * per-fork layers (isolation.c). Never returns. */
static void zygote_become_sandbox(sbx_lua_t *L, int control_fd, int fd, const sbx_spec_t *spec)
{
    close(control_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    if (spec->runtime == SBX_RUNTIME_EXEC)
        _exit(sbx_exec_serve(fd, spec));
    sbx_spec_t confined = *spec;
    char err[256];
    if (sbx__isolation_enter_lua(spec, &fd, &confined.bundle_dir, err, sizeof err) != 0) {
        json_t *m = json_pack("{s:s+}", "error", "cannot isolate the sandbox: ", err);
        char *text = json_dumps(m, JSON_COMPACT);
        sbx_frame_write(fd, SBX_MSG_ERROR, 0, text, strlen(text), NULL, 0);
        _exit(1);
    }
    _exit(sbx_lua_serve(L, fd, &confined));
}

/* Handles one spawn request: fork a sandbox and hand back its socket. */
static void zygote_spawn(sbx_lua_t *L, int control_fd, const char *meta, size_t meta_len)
{
    json_error_t jerr;
    json_t *o = json_loadb(meta, meta_len, 0, &jerr);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        zygote_send_reply(control_fd, TINE_EPROTO, 0, -1);
        return;
    }
    sbx_spec_t spec = {
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
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        zygote_send_reply(control_fd, -errno, 0, -1);
        json_decref(o);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        zygote_become_sandbox(L, control_fd, sv[1], &spec);
    }
    int err = pid < 0 ? -errno : 0;
    close(sv[1]);
    zygote_send_reply(control_fd, err, pid < 0 ? 0 : pid, err == 0 ? sv[0] : -1);
    close(sv[0]);
    json_decref(o);
}

/* The zygote's main loop: serve spawn requests until tined goes away. */
static void zygote_main(int control_fd, const char *sdk_dir)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "tine-zygote");
    /* Sandboxes are reaped automatically: tined watches their sockets. */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sbx_lua_t *L = sbx_lua_prepare(sdk_dir);
    if (L == NULL) {
        fprintf(stderr, "tine-zygote: cannot prepare the Lua state from %s\n", sdk_dir);
        _exit(1);
    }
    /* Namespaces and filters once, for every sandbox forked from here on. */
    sbx__isolation_zygote_enter();
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
            zygote_send_reply(control_fd, TINE_EPROTO, 0, -1);
        free(payload);
    }
}

int sbx_zygote_start(sbx_zygote_t *z, const char *sdk_dir)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    if (pid == 0) {
        close(sv[0]);
        zygote_main(sv[1], sdk_dir);
        _exit(0);
    }
    close(sv[1]);
    z->pid = pid;
    z->control_fd = sv[0];
    return 0;
}

int sbx_zygote_spawn(sbx_zygote_t *z, const sbx_spec_t *spec, pid_t *pid, int *fd)
{
    json_t *o = json_pack("{s:i, s:b, s:s, s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "runtime", spec->runtime,
                          "network", spec->network, "app", spec->app, "version",
                          (json_int_t)spec->version, "function", spec->function, "bundle_dir", spec->bundle_dir,
                          "handler_file", spec->handler_file, "handler_export",
                          spec->handler_export ? spec->handler_export : "", "memory_mb", (int)spec->memory_mb,
                          "timeout_ms", (int)spec->timeout_ms, "env_json", spec->env_json ? spec->env_json : "{}");
    if (o == NULL)
        return TINE_EINVAL;
    char *meta = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (meta == NULL)
        return -ENOMEM;
    int r = sbx_frame_write(z->control_fd, ZYGOTE_MSG_SPAWN, 0, meta, strlen(meta), NULL, 0);
    free(meta);
    if (r != 0)
        return r;

    zygote_reply_t reply;
    struct iovec iov = {&reply, sizeof(reply)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.buf;
    msg.msg_controllen = sizeof(ctrl.buf);
    ssize_t n;
    do {
        n = recvmsg(z->control_fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof(reply))
        return TINE_EPROTO;
    if (reply.status != 0)
        return reply.status;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS)
        return TINE_EPROTO;
    memcpy(fd, CMSG_DATA(c), sizeof(int));
    *pid = reply.pid;
    return 0;
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
