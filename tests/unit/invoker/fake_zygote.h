/* The edge of the invoker's unit tests: a fake zygote and scripted fake
 * sandboxes, and a fixture that runs a real invoker on a real libuv loop in
 * the test process.
 *
 * The fake zygote serves the invoker's spawn requests (wire frames on a
 * socketpair, as sandbox/zygote.c) on the test's loop, the way the real one
 * answers: a 12-byte reply {status, pid, 0} carrying tined's ends of two new
 * pipes over SCM_RIGHTS. Each answer forks a fake sandbox: a child process
 * (the invoker kills real pids on timeouts) that plays a blank sandbox on the
 * other ends: it reads its spec frame and answers READY, then serves INVOKE
 * frames one at a time, in order, as their body says:
 *
 *   ok (or anything else)  RESULT 200, body "PID BODY"
 *   sleep:N                the same after N ms
 *   hang                   never answers (until killed)
 *   crash                  exits at once without answering
 *   sleepcrash:N           exits after N ms without answering
 *   raise                  ERROR {"error":"boom"}
 *   badframe               READY again (a protocol break), then hang
 *   invoke:FN:BODY         tine.invoke of FN with BODY, then RESULT 200,
 *                          body "PID invoked REPLY-BODY"
 *
 * and at load, as its function's name says: load_error answers ERROR,
 * load_crash exits, load_hang never answers; every other one is READY. At
 * EOF on its pipe it exits 0, as a real sandbox does.
 *
 * A request for a Python zygote is answered with one socket, served by a
 * fake Python zygote (a forked child, as sandbox/python_host.c's): as
 * fx_t.python_mode says, it says READY and then forks fake sandboxes for
 * blank requests, answered with two pipe ends and a pidfd ("ready"), or
 * answers ERROR and exits ("error").
 *
 * Each test ends with fx_teardown: inv_free, the loop run until every
 * handle closed, uv_loop_close checked to return 0 (nothing leaked on the
 * loop), and every fake sandbox checked to be gone (nothing leaked a pipe
 * end: a sandbox exits on EOF). Include after <cmocka.h>. */
#ifndef TINE_TEST_FAKE_ZYGOTE_H
#define TINE_TEST_FAKE_ZYGOTE_H

#include "invoker_internal.h"
#include "meta.h"
#include "sandbox_internal.h"
#include "app_model.h"
#include "sandbox.h"
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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define FX_MAX_CHILDREN 128
#define FX_MAX_RESULTS 64

/* What a call's callback saw. */
typedef struct {
    bool done;
    int calls; /* times the callback ran: must end as 1 */
    int order; /* 1 for the first callback of the test, 2 for the next, ... */
    int code;
    int status;
    char body[256];
    char error[256];
    char id[33];
    char quota[32]; /* TINE_EQUOTA: the quota's name */
    uint32_t retry_after_s;
    bool cold;
    bool inside;    /* it ran inside an inv_* function of the test */
    bool accepted;  /* inv_call returned 0: the callback must run exactly once */
    bool cancelled; /* inv_call_cancel: the callback must never run */
    inv_call_t *call;
} fx_result_t;

typedef struct {
    pid_t pid;
    bool reaped;
    int status; /* waitpid's, once reaped */
} fx_child_t;

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping past a deadline */
    /* the fake zygote */
    sbx_zygote_t z; /* the invoker's end of the control socket */
    int zfd;        /* the fake zygote's end */
    uv_poll_t zpoll;
    bool zpoll_open;
    bool hold;       /* requests are not answered until fx_zygote_release */
    size_t held;     /* requests waiting for an answer */
    int fail_next;   /* the next answers are errors (-EAGAIN, a failed fork) */
    size_t requests; /* spawn requests received */
    const char *python_mode; /* the next fake Python zygote's: "ready" (NULL too) or "error" */
    size_t python_requests;  /* requests for a Python zygote received */
    pid_t python_zygote;     /* the last fake Python zygote */
    size_t node_requests;    /* requests for a Node host received (served by a fake Python zygote) */
    pid_t node_host;         /* the last of them */
    fx_child_t children[FX_MAX_CHILDREN];
    size_t nchildren;
    /* the invoker */
    inv_invoker_t *inv;
    reg_app_version_t *v;
    reg_app_version_t *v2; /* a second app, for the cap's sharing */
    int in_api;            /* > 0 while the test is inside an inv_* function */
    int callbacks;         /* callbacks run so far */
    fx_result_t results[FX_MAX_RESULTS];
    size_t nresults;
    int activations; /* activation records seen */
} fx_t;

static fx_t *fx_now; /* the running test's fixture (callbacks find it here) */

/* ------------------------------------------------------ fake sandboxes */

/* Writes a RESULT with status 200 and body "PID what". */
static inline void fake_result(int wr, uint64_t id, const char *what, size_t len)
{
    tine_buf_t m;
    tine_buf_init(&m);
    sbx_result_meta_begin(&m, 200);
    char *body = xasprintf("%d %.*s", (int)getpid(), (int)len, what);
    sbx_frame_write(wr, SBX_MSG_RESULT, id, m.data, m.len, body, strlen(body));
    free(body);
    tine_buf_dispose(&m);
}

/* Reads and drops frames until EOF, then exits: a call that never ends,
 * until tined closes the pipe or kills the process. */
static inline void fake_hang(int rd)
{
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        int r = sbx_frame_read(rd, &h, &payload, SBX_WIRE_MAX_FRAME);
        free(payload);
        if (r != 0 || h.type == 0)
            _exit(0);
    }
}

/* Sends a HOSTCALL of call `id` with metadata meta (meta_len bytes), waits
 * for the HOSTREPLY and answers "PID invoked REPLY" (or "PID invoke-error
 * ERROR"). */
static inline void fake_hostcall(int rd, int wr, uint64_t id, const char *meta, size_t meta_len, const char *body,
                                 size_t body_len)
{
    sbx_frame_write(wr, SBX_MSG_HOSTCALL, id, meta, meta_len, body, body_len);
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        if (sbx_frame_read(rd, &h, &payload, SBX_WIRE_MAX_FRAME) != 0 || h.type == 0)
            _exit(0);
        if (h.type == SBX_MSG_HOSTREPLY && h.id == id) {
            uint32_t el = 0; /* the error's bytes as they came */
            const char *err = sbx_meta_is_object(payload, h.meta_len)
                                  ? sbx_meta_member_str(payload, h.meta_len, "error", &el)
                                  : NULL;
            char *what = err ? xasprintf("invoke-error %.*s", (int)el, err)
                             : xasprintf("invoked %.*s", (int)(h.len - h.meta_len), payload + h.meta_len);
            fake_result(wr, id, what, strlen(what));
            free(what);
            free(payload);
            return;
        }
        free(payload); /* an INVOKE pipelined behind would be lost: tests do not send one */
    }
}

/* tine.invoke of `fn` with `body` from call `id` (fake_hostcall). */
static inline void fake_invoke(int rd, int wr, uint64_t id, const char *fn, size_t fn_len, const char *body,
                               size_t body_len)
{
    tine_buf_t meta;
    tine_buf_init(&meta);
    size_t at = sbx_meta_begin(&meta, SBX_META_OBJECT);
    sbx_meta_kstr(&meta, "op", "invoke", 6);
    sbx_meta_kstr(&meta, "fn", fn, fn_len);
    sbx_meta_end(&meta, at, 2);
    fake_hostcall(rd, wr, id, meta.data, meta.len, body, body_len);
    tine_buf_dispose(&meta);
}

/* The fake sandbox: a forked child on its ends of the two pipes. Never
 * returns. */
static inline void fake_sandbox_main(int rd, int wr)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != rd && fd != wr)
            close(fd);
    sbx_frame_hdr_t h;
    char *payload = NULL;
    if (sbx_frame_read(rd, &h, &payload, SBX_WIRE_MAX_FRAME) != 0 || h.type == 0)
        _exit(0); /* a blank let go */
    json_t *spec = json_loadb(payload, h.meta_len, 0, NULL);
    const char *fn = json_string_value(json_object_get(spec, "function"));
    if (fn == NULL)
        _exit(2);
    if (strcmp(fn, "load_error") == 0) {
        static const char err[] = "{\"error\":\"module has no export load_error\"}";
        sbx_frame_write(wr, SBX_MSG_ERROR, 0, err, sizeof err - 1, NULL, 0);
        _exit(1);
    }
    if (strcmp(fn, "load_crash") == 0)
        _exit(1);
    if (strcmp(fn, "load_hang") == 0)
        fake_hang(rd);
    free(payload);
    static const char ready[] = "{}";
    sbx_frame_write(wr, SBX_MSG_READY, 0, ready, sizeof ready - 1, NULL, 0);
    for (;;) {
        payload = NULL;
        if (sbx_frame_read(rd, &h, &payload, SBX_WIRE_MAX_FRAME) != 0 || h.type == 0)
            _exit(0);
        if (h.type != SBX_MSG_INVOKE) {
            free(payload);
            continue;
        }
        const char *body = payload + h.meta_len;
        size_t len = h.len - h.meta_len;
        char script[64];
        snprintf(script, sizeof script, "%.*s", (int)(len < sizeof script - 1 ? len : sizeof script - 1), body);
        if (strncmp(script, "sleep:", 6) == 0) {
            usleep((useconds_t)atoi(script + 6) * 1000u);
        } else if (strcmp(script, "hang") == 0) {
            fake_hang(rd);
        } else if (strcmp(script, "crash") == 0) {
            _exit(3);
        } else if (strncmp(script, "sleepcrash:", 11) == 0) {
            usleep((useconds_t)atoi(script + 11) * 1000u);
            _exit(3);
        } else if (strcmp(script, "badframe") == 0) {
            sbx_frame_write(wr, SBX_MSG_READY, 0, "{}", 2, NULL, 0);
            fake_hang(rd);
        } else if (strcmp(script, "raise") == 0) {
            static const char err[] = "{\"error\":\"boom\"}";
            sbx_frame_write(wr, SBX_MSG_ERROR, h.id, err, sizeof err - 1, NULL, 0);
            free(payload);
            continue;
        } else if (strcmp(script, "invoke-not-utf8") == 0) {
            fake_invoke(rd, wr, h.id, "x\xff", 2, NULL, 0); /* a callee name that is not UTF-8 */
            free(payload);
            continue;
        } else if (strcmp(script, "hostcall-json") == 0) {
            /* A host call whose metadata is JSON text, not the binary object. */
            static const char m[] = "{\"op\":\"invoke\",\"fn\":\"callee\"}";
            fake_hostcall(rd, wr, h.id, m, sizeof m - 1, NULL, 0);
            free(payload);
            continue;
        } else if (strncmp(body, "invoke:", 7) == 0 && len > 7) {
            const char *fnb = body + 7, *colon = memchr(fnb, ':', len - 7);
            if (colon != NULL) {
                fake_invoke(rd, wr, h.id, fnb, (size_t)(colon - fnb), colon + 1, len - 7 - (size_t)(colon + 1 - fnb));
                free(payload);
                continue;
            }
        }
        fake_result(wr, h.id, body, len);
        free(payload);
    }
}

/* ------------------------------------------------------ the fake zygote */

/* Sends one reply; with fds, tined's two ends attached. */
static inline void fake_zygote_reply(int fd, int32_t status, int32_t pid, const int *fds)
{
    int32_t reply[3] = {status, pid, 0};
    struct iovec iov = {reply, sizeof reply};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fds != NULL) {
        memset(&ctrl, 0, sizeof ctrl);
        msg.msg_control = ctrl.buf;
        msg.msg_controllen = sizeof ctrl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(2 * sizeof(int));
        memcpy(CMSG_DATA(c), fds, 2 * sizeof(int));
    }
    assert_int_equal(sendmsg(fd, &msg, MSG_NOSIGNAL), (ssize_t)sizeof reply);
}

/* Answers the oldest spawn request: an error while fail_next, else a new
 * fake sandbox. */
static inline void fx_zygote_answer(fx_t *f)
{
    if (f->fail_next > 0) {
        f->fail_next--;
        fake_zygote_reply(f->zfd, -EAGAIN, 0, NULL);
        return;
    }
    int down[2], up[2]; /* tined -> sandbox, sandbox -> tined */
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    assert_true(f->nchildren < FX_MAX_CHILDREN);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        fake_sandbox_main(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    f->children[f->nchildren++] = (fx_child_t){.pid = pid};
    int host[2] = {up[0], down[1]};
    fake_zygote_reply(f->zfd, 0, pid, host);
    close(up[0]);
    close(down[1]);
}

/* The fake Python zygote on its socket. Never returns. */
static inline void fake_python_zygote_main(int sock, const char *mode)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* its sandboxes are reaped by the kernel */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != sock)
            close(fd);
    if (mode != NULL && strcmp(mode, "error") == 0) {
        static const char err[] = "{\"error\":\"cannot start the Python zygote: fake\"}";
        sbx_frame_write(sock, SBX_MSG_ERROR, 0, err, sizeof err - 1, NULL, 0);
        _exit(1);
    }
    static const char importing[] = "{\"importing\":\"h.py\"}", ready[] = "{\"modules\":1,\"failed\":[]}";
    sbx_frame_write(sock, SBX_MSG_LOG, 0, importing, sizeof importing - 1, NULL, 0);
    sbx_frame_write(sock, SBX_MSG_READY, 0, ready, sizeof ready - 1, NULL, 0);
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        if (sbx_frame_read(sock, &h, &payload, 65536) != 0 || h.type == 0)
            _exit(0); /* tined let the version go */
        free(payload);
        int down[2], up[2];
        if (pipe(down) != 0 || pipe(up) != 0)
            _exit(3);
        /* The raw system call: fork() would run libuv's handler for the
         * child, which closes the descriptors libuv's signal lock had in
         * the test process (closed above, and reused by these pipes). */
        pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
        if (pid == 0) {
            close(sock);
            close(down[1]);
            close(up[0]);
            fake_sandbox_main(down[0], up[1]);
        }
        close(down[0]);
        close(up[1]);
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        int fds[3] = {up[0], down[1], pidfd};
        sbx__zygote_reply(sock, 0, pid, fds, 3);
        close(up[0]);
        close(down[1]);
        close(pidfd);
    }
}

/* Answers a request for a Python zygote: one socket, served by a new fake
 * Python zygote. */
static inline void fx_python_zygote_answer(fx_t *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_true(f->nchildren < FX_MAX_CHILDREN);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        fake_python_zygote_main(sv[1], f->python_mode);
    }
    close(sv[1]);
    f->children[f->nchildren++] = (fx_child_t){.pid = pid};
    f->python_zygote = pid;
    assert_int_equal(sbx__zygote_reply(f->zfd, 0, pid, &sv[0], 1), 0);
    close(sv[0]);
}

/* Answers the requests held back meanwhile (fx_t.hold). */
static inline void fx_zygote_release(fx_t *f)
{
    f->hold = false;
    for (; f->held > 0; f->held--)
        fx_zygote_answer(f);
}

/* A spawn request came: a blank ({"blank":true}), answered at once unless
 * held. */
static inline void fx_on_zygote_readable(uv_poll_t *h, int status, int events)
{
    fx_t *f = h->data;
    sbx_frame_hdr_t hd;
    char *payload = NULL;
    int r = sbx_frame_read(f->zfd, &hd, &payload, 65536);
    if (r != 0 || hd.type == 0) {
        free(payload);
        uv_poll_stop(h);
        return;
    }
    assert_int_equal(hd.type, SBX_MSG_INVOKE);
    if (strstr(payload, "\"python_zygote\":true") != NULL) {
        free(payload);
        f->python_requests++;
        fx_python_zygote_answer(f);
        return;
    }
    if (strstr(payload, "\"node_host\":true") != NULL) {
        free(payload);
        f->node_requests++;
        pid_t python = f->python_zygote;
        fx_python_zygote_answer(f);
        f->node_host = f->python_zygote;
        f->python_zygote = python;
        return;
    }
    assert_non_null(strstr(payload, "\"blank\":true"));
    free(payload);
    f->requests++;
    if (f->hold)
        f->held++;
    else
        fx_zygote_answer(f);
}

/* The zygote goes away: its end of the control socket closes. */
static inline void fx_zygote_exit(fx_t *f)
{
    uv_close((uv_handle_t *)&f->zpoll, NULL);
    f->zpoll_open = false;
    close(f->zfd);
    f->zfd = -1;
}

/* ---------------------------------------------------------- children */

/* Reaps the fake sandboxes that exited. */
static inline void fx_reap(fx_t *f)
{
    for (size_t i = 0; i < f->nchildren; i++) {
        fx_child_t *c = &f->children[i];
        if (!c->reaped && waitpid(c->pid, &c->status, WNOHANG) == c->pid)
            c->reaped = true;
    }
}

/* How many fake sandboxes (blank ones included) still run. */
static inline size_t fx_alive(fx_t *f)
{
    fx_reap(f);
    size_t n = 0;
    for (size_t i = 0; i < f->nchildren; i++)
        n += !f->children[i].reaped;
    return n;
}

static inline fx_child_t *fx_child(fx_t *f, pid_t pid)
{
    for (size_t i = 0; i < f->nchildren; i++)
        if (f->children[i].pid == pid)
            return &f->children[i];
    fail_msg("pid %d is no fake sandbox", (int)pid);
    return NULL;
}

/* True once fake sandbox `pid` exited (reaping it). */
static inline bool fx_child_gone(fx_t *f, pid_t pid)
{
    fx_reap(f);
    return fx_child(f, pid)->reaped;
}

/* True when it was killed with SIGKILL (once gone). */
static inline bool fx_child_killed(fx_t *f, pid_t pid)
{
    fx_child_t *c = fx_child(f, pid);
    return c->reaped && WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGKILL;
}

/* ------------------------------------------------------------ the loop */

static inline void fx_on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until `cond` holds, at most `ms` milliseconds. */
#define FX_RUN_UNTIL(f, cond, ms)                                                                                      \
    do {                                                                                                               \
        uint64_t fx_deadline_ = tine_now_ns() + (uint64_t)(ms)*1000000u;                                               \
        uv_timer_start(&(f)->tick, fx_on_tick, 5, 5);                                                                  \
        while (!(cond) && tine_now_ns() < fx_deadline_)                                                                \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                                           \
        uv_timer_stop(&(f)->tick);                                                                                     \
    } while (0)

/* Runs the loop until `cond` holds; fails the test when it does not within
 * `ms` milliseconds. */
#define FX_WAIT(f, cond, ms)                                                                                           \
    do {                                                                                                               \
        FX_RUN_UNTIL(f, cond, ms);                                                                                     \
        if (!(cond))                                                                                                   \
            fail_msg("still not true after %d ms: %s", (int)(ms), #cond);                                              \
    } while (0)

/* Runs the loop for `ms` milliseconds. */
#define FX_RUN_FOR(f, ms) FX_RUN_UNTIL(f, false, ms)

/* ----------------------------------------------------------- the calls */

static inline void fx_on_done(void *data, const inv_result_t *res)
{
    fx_result_t *r = data;
    r->calls++;
    r->done = true;
    r->order = ++fx_now->callbacks;
    r->inside = fx_now->in_api > 0;
    r->code = res->code;
    r->status = res->status;
    r->cold = res->cold;
    snprintf(r->body, sizeof r->body, "%.*s", (int)(res->body_len < 255 ? res->body_len : 255),
             res->body ? res->body : "");
    snprintf(r->error, sizeof r->error, "%s", res->error ? res->error : "");
    snprintf(r->id, sizeof r->id, "%s", res->invocation_id ? res->invocation_id : "");
    snprintf(r->quota, sizeof r->quota, "%s", res->quota ? res->quota : "");
    r->retry_after_s = res->retry_after_s;
    r->call = NULL;
}

static inline void fx_on_activation(void *data, const inv_activation_t *a)
{
    fx_t *f = data;
    (void)a;
    f->activations++;
}

/* The index of function `fn` of v. */
static inline size_t fx_fn(const reg_app_version_t *v, const char *fn)
{
    for (size_t i = 0; i < v->manifest->functions_len; i++)
        if (strcmp(v->manifest->functions[i].name, fn) == 0)
            return i;
    fail_msg("no function %s", fn);
    return 0;
}

/* Calls function `fn` of v with `body` (its script). Returns its result
 * slot; *rc (when not NULL) gets inv_call's return code, which must be 0
 * otherwise. */
static inline fx_result_t *fx_call_rc(fx_t *f, reg_app_version_t *v, const char *fn, const char *body, int *rc)
{
    assert_true(f->nresults < FX_MAX_RESULTS);
    fx_result_t *r = &f->results[f->nresults++];
    json_t *req = json_pack("{s:s, s:s}", "kind", "http", "trigger", "test");
    f->in_api++;
    int got = inv_call(f->inv, v, fx_fn(v, fn), req, body, strlen(body), fx_on_done, r, &r->call);
    f->in_api--;
    assert_false(r->done); /* never inside inv_call */
    r->accepted = got == 0;
    if (rc != NULL)
        *rc = got;
    else
        assert_int_equal(got, 0);
    return r;
}

static inline fx_result_t *fx_call(fx_t *f, const char *fn, const char *body)
{
    return fx_call_rc(f, f->v, fn, body, NULL);
}

/* The caller loses interest in the call of r (inv_call_cancel). */
static inline void fx_cancel(fx_t *f, fx_result_t *r)
{
    assert_non_null(r->call);
    f->in_api++;
    inv_call_cancel(r->call);
    f->in_api--;
    r->cancelled = true;
    r->call = NULL;
}

/* The pid that answered (the body starts with it). */
static inline pid_t fx_pid(const fx_result_t *r)
{
    return (pid_t)atoi(r->body);
}

/* The pool of function `fn` of v. */
static inline inv_pool_t *fx_pool(fx_t *f, reg_app_version_t *v, const char *fn)
{
    return inv__pool_get(f->inv, v, fx_fn(v, fn));
}

/* ------------------------------------------------------------ fixture */

/* A version of an app from a YAML manifest held in the test. */
static inline reg_app_version_t *fx_version(const char *yaml, uint64_t version)
{
    char err[256];
    reg_manifest_t *m = NULL;
    if (reg_manifest_parse("tine.yaml", yaml, strlen(yaml), &m, err, sizeof err) != 0)
        fail_msg("manifest: %s", err);
    reg_app_version_t *v = xcalloc(1, sizeof(*v));
    v->refcnt = 1;
    v->app = xstrdup(m->app);
    v->version = version;
    v->manifest = m;
    v->bundle_dir = xstrdup("/nonexistent/bundle");
    return v;
}

/* Starts the loop, the fake zygote and an invoker with `cfg` (may be NULL)
 * serving the app of `yaml`. */
static inline void fx_setup(fx_t *f, const char *yaml, const inv_config_t *cfg)
{
    memset(f, 0, sizeof(*f));
    fx_now = f;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    f->z.pid = 0;
    f->z.control_fd = sv[0];
    f->zfd = sv[1];
    assert_int_equal(uv_poll_init(&f->loop, &f->zpoll, f->zfd), 0);
    f->zpoll.data = f;
    f->zpoll_open = true;
    uv_poll_start(&f->zpoll, UV_READABLE, fx_on_zygote_readable);
    f->v = fx_version(yaml, 1);
    inv_config_t c = cfg ? *cfg : (inv_config_t){0};
    c.on_activation = fx_on_activation;
    c.on_activation_data = f;
    f->inv = inv_new(&f->loop, &f->z, &c);
    assert_non_null(f->inv);
}

/* Frees the invoker and closes the loop: every handle must close
 * (uv_loop_close returns 0), every callback must have run exactly once
 * and never inside an inv_* function, and every fake sandbox must be gone
 * (killed, or out at EOF on its pipe). */
static inline void fx_teardown(fx_t *f)
{
    if (f->inv != NULL) {
        f->in_api++;
        inv_free(f->inv);
        f->in_api--;
        f->inv = NULL;
    }
    if (f->zpoll_open)
        uv_close((uv_handle_t *)&f->zpoll, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uint64_t deadline = tine_now_ns() + 5000000000ull;
    while (uv_loop_alive(&f->loop) && tine_now_ns() < deadline)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < f->nresults; i++) {
        fx_result_t *r = &f->results[i];
        int want = r->accepted && !r->cancelled ? 1 : 0;
        if (r->calls != want || r->inside)
            fail_msg("call %zu: its callback ran %d times, not %d%s", i, r->calls, want,
                     r->inside ? ", inside an inv_* call" : "");
    }
    close(f->z.control_fd);
    if (f->zfd >= 0)
        close(f->zfd);
    reg_app_version_release(f->v);
    reg_app_version_release(f->v2);
    deadline = tine_now_ns() + 5000000000ull;
    bool all = false;
    while (!all && tine_now_ns() < deadline) {
        fx_reap(f);
        all = true;
        for (size_t i = 0; i < f->nchildren; i++)
            all = all && f->children[i].reaped;
        if (!all)
            usleep(2000);
    }
    for (size_t i = 0; i < f->nchildren; i++) {
        if (!f->children[i].reaped) {
            kill(f->children[i].pid, SIGKILL);
            waitpid(f->children[i].pid, NULL, 0);
            fail_msg("fake sandbox %d is still running: a pipe end of it leaked", (int)f->children[i].pid);
        }
    }
    fx_now = NULL;
}

#endif
