/* Python zygotes: tine-zygote starts one per app version with Python
 * functions when tined asks (sbx_zygote_request_python), as two processes:
 *
 *   launcher (tine-pylaunch)  forked by tine-zygote; waits for the zygote and
 *     │                       logs how it ended; killing it (tined does, to
 *     │                       retire the version) ends everything below
 *     └── python3 tine_zygote.py   pid 1 of a pid namespace of its own, under
 *            │                     the isolation layers of a sandbox (isolation.c:
 *            │                     its own root, uid, rlimits, the Python filter)
 *            └── sandboxes         forked by the Python zygote, one per start
 *
 * tined gets the launcher's pid and one end of a socket pair: the Python
 * zygote's control socket (sandbox.h, sbx_zygote_request_python). The
 * Python side is sdk/python/tine_zygote.py. */
#define _GNU_SOURCE
#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int sbx__find_interpreter(const char *env_name, const char *name, char out[PATH_MAX], char *err, size_t errlen)
{
    const char *env = getenv(env_name);
    if (env != NULL && env[0] != '\0') {
        if (realpath(env, out) == NULL || access(out, X_OK) != 0)
            return tine_fail_errno(err, errlen, "cannot run %s (%s)", env, env_name);
        return 0;
    }
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0 && realpath(path, out) != NULL)
            return 0;
    }
    return tine_fail(err, errlen, "%s is not installed on this node (looked in /usr/local/bin, /usr/bin, /bin)", name);
}

void sbx__runtime_say_error(int sock, const sbx_runtime_kind_t *kind, const char *msg)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "cannot start the %s: ", kind->what);
    json_t *m = json_pack("{s:s+}", "error", prefix, msg);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    if (text)
        sbx_frame_write(sock, SBX_MSG_ERROR, 0, text, strlen(text), NULL, 0);
    free(text);
    json_decref(m);
}

/* In the process that becomes the Python zygote: isolates it and execs
 * python3 on tine_zygote.py (arguments: the spec as JSON, where it sees its
 * bundle, and whether the node isolates sandboxes). Nothing is allocated once the layers are on: the
 * address space limit may leave no room. Never returns. */
static _Noreturn void python_exec(int sock, sbx_python_plan_t *plan, json_t *req)
{
    const sbx_runtime_kind_t *kind = &sbx__python_kind;
    char err[512];
    /* The socket on its fd first: every error below goes there. */
    if (sock != SBX_PYTHON_CONTROL_FD) {
        if (dup2(sock, SBX_PYTHON_CONTROL_FD) < 0)
            _exit(1);
        close(sock);
    }
    json_t *spec = json_pack("{s:O, s:O, s:O}", "app", json_object_get(req, "app"), "version",
                             json_object_get(req, "version"), "modules", json_object_get(req, "modules"));
    char *spec_json = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    if (sbx__isolation_enter_python(SBX_PYTHON_CONTROL_FD, plan, err, sizeof err) != 0) {
        sbx__runtime_say_error(SBX_PYTHON_CONTROL_FD, kind, err);
        _exit(1);
    }
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/tine_zygote.py", plan->sdk_seen);
    const char *argv[] = {plan->python,
                          "-I",
                          "-S",
                          "-B",
                          script,
                          spec_json ? spec_json : "{}",
                          plan->bundle_seen,
                          plan->isolated ? "isolated" : "not-isolated",
                          NULL};
    const char *tz = getenv("TZ");
    char tz_entry[256];
    snprintf(tz_entry, sizeof tz_entry, "TZ=%s", tz ? tz : "");
    const char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8", tz ? tz_entry : NULL, NULL};
    if (plan->exe_fd >= 0)
        syscall(SYS_execveat, plan->exe_fd, "", argv, envp, AT_EMPTY_PATH);
    else
        execve(plan->python, (char *const *)argv, (char *const *)envp);
    tine_fail_errno(err, sizeof err, "cannot run %s", plan->python);
    sbx__runtime_say_error(SBX_PYTHON_CONTROL_FD, kind, err);
    _exit(127);
}

static volatile sig_atomic_t launcher_stop;

/* SIGTERM of the launcher: end the zygote (it is only noted here). */
static void on_term(int sig)
{
    (void)sig;
    launcher_stop = 1;
}

/* The launcher, forked by tine-zygote: starts the runtime's zygote (or
 * host) below it (in a pid namespace of its own when the node has the
 * layer) and waits for it; SIGTERM (tined retiring the version, or seeing
 * it fail) kills it. Either way the launcher logs how it ended unless it
 * was killed, then exits. Never returns. */
static void launcher(const sbx_runtime_kind_t *kind, int control_fd, int sock, json_t *req, const char *lua_sdk_dir)
{
    close(control_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, kind->proc_name);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    const char *app = json_string_value(json_object_get(req, "app"));
    json_int_t version = json_integer_value(json_object_get(req, "version"));
    const char *bundle = json_string_value(json_object_get(req, "bundle_dir"));
    char python[PATH_MAX], sdk[PATH_MAX], lua_parent[PATH_MAX], err[512];
    snprintf(lua_parent, sizeof lua_parent, "%s/../%s", lua_sdk_dir ? lua_sdk_dir : ".", kind->sdk_sub);
    if (app == NULL || bundle == NULL || !json_is_array(json_object_get(req, "modules"))) {
        sbx__runtime_say_error(sock, kind, "bad request from tined");
        _exit(1);
    }
    if (sbx__find_interpreter(kind->env_name, kind->program, python, err, sizeof err) != 0) {
        sbx__runtime_say_error(sock, kind, err);
        _exit(1);
    }
    if (realpath(lua_parent, sdk) == NULL) {
        tine_fail_errno(err, sizeof err, "the SDK is missing: %s", lua_parent);
        sbx__runtime_say_error(sock, kind, err);
        _exit(1);
    }
    sbx_python_plan_t plan = {
        .python = python,
        .bundle_dir = bundle,
        .sdk_dir = sdk,
        .memory_mb = (uint32_t)json_integer_value(json_object_get(req, "memory_mb")),
        .processes = (uint32_t)json_integer_value(json_object_get(req, "processes")),
        .uid = (uid_t)(SBX_PYTHON_UID_BASE + (uint32_t)getpid() % 65536u),
        .node = kind->node,
    };
    if (plan.memory_mb == 0)
        plan.memory_mb = 128;
    sbx__isolation_python_pidns();
    pid_t p = fork();
    if (p == 0)
        kind->child(sock, &plan, req);
    if (p < 0) {
        tine_fail_errno(err, sizeof err, "fork");
        sbx__runtime_say_error(sock, kind, err);
        _exit(1);
    }
    /* Only the zygote holds the socket: tined sees it close when it ends. */
    close(sock);
    closefrom(3);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: it interrupts waitpid */
    sigaction(SIGTERM, &sa, NULL);
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        if (launcher_stop)
            kill(p, SIGKILL);
    if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", app),
                    "the %s of %s version %lld was killed by signal %d (%s)", kind->what, app, (long long)version,
                    WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", app),
                    "the %s of %s version %lld exited with status %d", kind->what, app, (long long)version,
                    WEXITSTATUS(st));
    _exit(0);
}

const sbx_runtime_kind_t sbx__python_kind = {.what = "Python zygote",
                                             .request_key = "python_zygote",
                                             .proc_name = "tine-pylaunch",
                                             .sdk_sub = "python",
                                             .env_name = "TINE_PYTHON",
                                             .program = "python3",
                                             .node = false,
                                             .child = python_exec};

bool sbx__runtime_spawn(const sbx_runtime_kind_t *kind, int control_fd, const char *meta, size_t meta_len,
                        const char *sdk_dir)
{
    json_t *req = json_loadb(meta, meta_len, 0, NULL);
    if (!json_is_true(json_object_get(req, kind->request_key))) {
        json_decref(req);
        return false;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        sbx__zygote_reply(control_fd, -errno, 0, NULL, 0);
        json_decref(req);
        return true;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        launcher(kind, control_fd, sv[1], req, sdk_dir);
    }
    int err = pid < 0 ? -errno : 0;
    close(sv[1]);
    sbx__zygote_reply(control_fd, err, pid > 0 ? pid : 0, &sv[0], err ? 0 : 1);
    close(sv[0]);
    json_decref(req);
    return true;
}
