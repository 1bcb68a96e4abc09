/* sandbox: the zygote, the sandbox child that hosts LuaJIT, the Python
 * zygotes it starts, and the wire protocol (wire.h). tined talks to this
 * module only through sbx_zygote_* and wire frames on a pair of pipes. */
#ifndef TINE_SANDBOX_H
#define TINE_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum { SBX_RUNTIME_LUA = 0, SBX_RUNTIME_EXEC = 1, SBX_RUNTIME_PYTHON = 2, SBX_RUNTIME_NODE = 3 };

/* What a sandbox runs: one function of one app version. */
typedef struct {
    int runtime;                /* SBX_RUNTIME_* */
    const char *app;
    uint64_t version;
    const char *function;
    const char *bundle_dir;     /* absolute directory holding the version's files */
    const char *handler_file;   /* relative to bundle_dir; for exec the program */
    const char *handler_export; /* exported name in the module's returned table (lua), the module's
                                   function (python) */
    uint32_t memory_mb;
    uint32_t timeout_ms;
    const char *env_json; /* JSON object of the function's env, "{}" when none */
    bool network;         /* exec: the program may use the network */
    /* exec with network: the app's allow_outbound, as the manifest parser
     * stores it (common/outbound.h); allow_outbound_set is false when the
     * manifest has none (any host but the refused addresses). */
    const char *const *allow_outbound;
    size_t allow_outbound_len;
    bool allow_outbound_set;
    /* lua, co-location group (docs/ARCHITECTURE.md, "Co-location groups"):
     * the other functions of its group as a JSON array of {"function",
     * "handler_file", "handler_export", "memory_mb", "timeout_ms",
     * "env_json"}, NULL when it has no group; the sandbox's memory limit
     * (the sum of the members'); tined --max-invoke-depth; the node's 16
     * hex digits that begin invocation ids. */
    const char *group_json;
    uint32_t group_memory_mb;
    uint32_t max_invoke_depth;
    const char *id_prefix;
} sbx_spec_t;

/* A sandbox's channel to tined, seen from one end: two pipes, `rd` read
 * and `wr` written (pipes, not a socket: a unix socket costs a buffer
 * allocation per frame and wakes the peer's sleeping reader each time the
 * other side consumes; a round trip over pipes takes ~60 % of one over a
 * socket pair). One socket may serve as both (rd == wr), as tests do. */
typedef struct {
    int rd;
    int wr;
} sbx_fds_t;

/* Closes both ends (once when they are one). A sandbox or blank whose pipes
 * tined closes exits on EOF. */
void sbx_fds_close(sbx_fds_t fds);

/* ----------------------------------------------------------- Lua host */

typedef struct sbx_lua sbx_lua_t;

/* Creates a Lua state with the standard libraries and the `tine` SDK module
 * loaded (done once in the zygote, before any fork). NULL on failure. */
sbx_lua_t *sbx_lua_prepare(const char *sdk_dir);

/* In a forked child: loads the handler of `spec`, writes SBX_MSG_READY (or
 * SBX_MSG_ERROR when loading fails) on fds.wr, then serves SBX_MSG_INVOKE
 * frames read from fds.rd one at a time until EOF. Returns the process exit
 * status to use. */
int sbx_lua_serve(sbx_lua_t *L, sbx_fds_t fds, const sbx_spec_t *spec);

/* In a forked child, before it is isolated: prepares a Lua state with the
 * SDK of sdk_dir for each other function of spec's co-location group
 * (spec->group_json; nothing without one). sbx_lua_serve loads them beside
 * its own function. Returns 0, or TINE_EPROTO / -ENOMEM. */
int sbx_lua_group_prepare(const sbx_spec_t *spec, const char *sdk_dir);

/* Closes the Lua state and frees everything sbx_lua_prepare made. Accepts NULL. */
void sbx_lua_free(sbx_lua_t *L);

/* ---------------------------------------------------------- exec runner */

/* In a forked child for a `runtime: exec` function: writes SBX_MSG_READY,
 * serves exactly one SBX_MSG_INVOKE by running the program of `spec` (request
 * JSON on its stdin, stdout as the response, stderr as LOG frames), answers
 * with SBX_MSG_RESULT or SBX_MSG_ERROR, and returns the exit status to use.
 * The invoker never reuses an exec sandbox. */
int sbx_exec_serve(sbx_fds_t fds, const sbx_spec_t *spec);

/* ---------------------------------------------------------- isolation */

/* How the zygote isolates sandboxes (docs/ARCHITECTURE.md, "Isolation"). */
typedef struct {
    bool enabled;         /* false (--isolation off): only the Lua layer */
    uint32_t sandbox_uid; /* uid and gid of Lua sandboxes when tined runs as root */
    const char *tmp_dir;  /* absolute, existing, mode 0711: working dirs of exec programs */
} sbx_isolation_config_t;

/* The layers, in the order `tine doctor` lists them. */
enum {
    SBX_LAYER_LUA,          /* safe globals, bundle-only require, text-only load */
    SBX_LAYER_RLIMITS,      /* address space, processes, file size, descriptors, core */
    SBX_LAYER_NO_NEW_PRIVS, /* PR_SET_NO_NEW_PRIVS */
    SBX_LAYER_SECCOMP,      /* system call filters */
    SBX_LAYER_USER,         /* an unprivileged uid, or a user namespace when not root */
    SBX_LAYER_MOUNT_NS,
    SBX_LAYER_PID_NS,
    SBX_LAYER_IPC_NS,
    SBX_LAYER_UTS_NS,
    SBX_LAYER_NET_NS,
    SBX_LAYER_ROOT_DIR,     /* Lua: the bundle as root dir; exec: a fresh root */
    SBX_LAYER_CGROUP,       /* exec: a cgroup per invocation (memory and tasks of the whole tree) */
    SBX_LAYER_EXEC_NET,     /* exec with network: a namespace per invocation, egress through the policy proxy */
    SBX_LAYER_COUNT
};

/* Longest cgroup directory path the sandbox handles. */
#define SBX_CGROUP_PATH 512

typedef struct {
    bool active;
    char detail[400]; /* what it does, or why it is off */
} sbx_layer_t;

typedef struct {
    bool enabled; /* the node's --isolation */
    sbx_layer_t layers[SBX_LAYER_COUNT];
    /* The cgroups the zygote made for this node's exec invocations (memory,
     * pids; "" for none): sbx_isolation_cleanup removes them. */
    char cgroup_dirs[2][SBX_CGROUP_PATH];
} sbx_isolation_report_t;

/* The short name of a layer ("seccomp", "pid-namespace", ...). */
const char *sbx_layer_name(int layer);

/* Called by tined before sbx_zygote_start: the zygote it forks applies `cfg`
 * (copied) once and to every sandbox. Returns 0 or -errno. */
int sbx_isolation_configure(const sbx_isolation_config_t *cfg);

/* Called by tined after sbx_zygote_start: waits at most timeout_ms for the
 * zygote's report of the layers it could apply, keeps it as the node's
 * report and copies it to *out. Returns 0, TINE_ECRASH when the zygote
 * exited without reporting, or TINE_ETIMEOUT. */
int sbx_isolation_await_report(sbx_isolation_report_t *out, int timeout_ms);

/* Removes the temp dir given to sbx_isolation_configure and everything left
 * in it (working dirs of exec programs killed on timeout), and the node's
 * cgroups for exec invocations (call it after sbx_zygote_stop). Accepts
 * NULL. */
void sbx_isolation_cleanup(const char *tmp_dir);

/* The node's report (every layer off until sbx_isolation_await_report). */
const sbx_isolation_report_t *sbx_isolation_report(void);

/* {"isolation":"on"|"off","layers":[{"name":..,"active":..,"detail":..}],
 *  "runtimes":[{"runtime":"lua"|"python"|"node"|"exec","on":[layer names],
 *  "off":[layer names]}]} (the layers each runtime's sandboxes get, by
 *  whether the node has them) as a new jansson reference. */
struct json_t;
struct json_t *sbx_isolation_report_json(const sbx_isolation_report_t *r);

/* ------------------------------------------------------------- zygote */

typedef struct {
    pid_t pid;
    int control_fd; /* tined's end of the control socket */
} sbx_zygote_t;

/* Starts the zygote: forks and execs the program tine-zygote found next to
 * the running executable (or $TINE_ZYGOTE), handing it the control socket
 * and the isolation configured by sbx_isolation_configure. Must be called
 * before tined creates threads or its loop. `sdk_dir` holds tine.lua.
 * Returns 0 or -errno (-ENOENT, with a message on stderr, when the program
 * is missing). */
int sbx_zygote_start(sbx_zygote_t *z, const char *sdk_dir);

/* Asks the zygote for a sandbox process without waiting for the answer.
 * With `spec` the child runs that function from the start; with spec NULL the
 * zygote forks a "blank" sandbox that waits on its own pipe for the spec
 * (sbx_spec_frame), so the fork is paid before anyone needs the sandbox.
 * Answers come back in request order (sbx_zygote_receive). Writes one small
 * frame to the control socket, which may be non-blocking. Returns 0 or -errno
 * (-EAGAIN when the socket is full: nothing was sent). */
int sbx_zygote_request(sbx_zygote_t *z, const sbx_spec_t *spec);

/* The zygote's answer to one spawn request. */
typedef struct {
    int error; /* 0, or why the zygote could not fork (negative errno) */
    pid_t pid; /* the child, when error is 0 (0 when a child of a Python zygote is gone already) */
    sbx_fds_t fds; /* tined's ends of the child's pipes (close-on-exec), when error is 0 */
} sbx_spawned_t;

/* Receives the answer to the oldest outstanding request into *out. Returns 0
 * when an answer was consumed (look at out->error), -EAGAIN when `wait` is
 * false and no answer is there yet, or TINE_ECRASH when the zygote is gone or
 * its answers cannot be read any more. */
int sbx_zygote_receive(sbx_zygote_t *z, bool wait, sbx_spawned_t *out);

/* Asks the zygote for a new sandbox running `spec` and waits for it:
 * sbx_zygote_request then sbx_zygote_receive. The sandbox then writes
 * SBX_MSG_READY on its pipe. Returns 0 or an error code. */
int sbx_zygote_spawn(sbx_zygote_t *z, const sbx_spec_t *spec, pid_t *pid, sbx_fds_t *fds);

/* Builds the frame that gives a blank sandbox its function: write it as the
 * first bytes on the blank's pipe; the sandbox then loads the handler and
 * answers SBX_MSG_READY (or SBX_MSG_ERROR) exactly as a sandbox spawned with
 * that spec does, and frames written after it (an INVOKE) wait in the pipe
 * until then. Returns a malloc'd frame and its length in *len, or NULL when
 * the spec cannot be encoded. */
char *sbx_spec_frame(const sbx_spec_t *spec, size_t *len);

/* Stops the zygote (and with it every sandbox it forked). */
void sbx_zygote_stop(sbx_zygote_t *z);

/* ------------------------------------------------------- Python zygotes */

/* A Python zygote: one per app version with Python functions (python_host.c,
 * sdk/python/tine_zygote.py). */
typedef struct {
    const char *app;
    uint64_t version;
    const char *bundle_dir;          /* absolute directory holding the version's files */
    const char *const *modules;      /* its Python handler files, imported once by the zygote */
    size_t modules_len;
    uint32_t memory_mb;              /* the largest memory of its functions */
    uint32_t processes;              /* sandboxes it may hold at once (the sum of their concurrency) */
    bool node;                       /* a Node host instead (node_host.c): modules is empty; it forks and
                                        starts a blank node per blank request, with memory_mb as V8's heap */
} sbx_python_spec_t;

/* Asks the zygote (without waiting) to start the Python zygote of `spec`:
 * python3 running sdk/python/tine_zygote.py under the isolation layers of a
 * sandbox, in a pid namespace of its own. Its answer (sbx_zygote_receive,
 * in request order with the others) carries the process to kill to stop it
 * (out->pid: everything it forked goes with it) and one unix socket
 * (out->fds, rd == wr): the Python zygote's control socket. On that socket
 * the Python zygote first writes frames: LOG ({"importing":FILE} before each
 * module, {"level":..} for what the modules print), then READY
 * ({"pid","init_us","modules","failed"}) once it imported them, or ERROR
 * ({"error"}) when it cannot start. Then it serves spawn requests like this
 * zygote: a blank request (sbx_zygote_request with spec NULL) is answered
 * with a blank sandbox of the version, given its function by
 * sbx_spec_frame as any blank. Returns 0 or -errno (-EAGAIN: nothing sent). */
int sbx_zygote_request_python(sbx_zygote_t *z, const sbx_python_spec_t *spec);

/* A Node host (spec->node, asked for with sbx_zygote_request_python) is
 * answered and talks on its control socket the same way, but imports
 * nothing: it answers READY at once, and each blank it forks execs node on
 * sdk/node/tine_node.js, which loads its function's module when it gets
 * its spec (docs/sdk-node.md). The host watches its children: one that V8
 * ended for want of memory gets an ERROR frame (id 0, SBX_FRAME_EXITING,
 * "out of memory") on its pipe once it is gone. */

#endif
