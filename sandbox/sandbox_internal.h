/* Private to sandbox/: what the zygote (zygote.c), the Lua host (lua_host.c)
 * and the exec runner (exec.c) share with the isolation layers
 * (isolation.c). */
#ifndef TINE_SANDBOX_INTERNAL_H
#define TINE_SANDBOX_INTERNAL_H

#include "sandbox.h"
#include "tine_common.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit status of a sandbox stopped by its system call filter. */
#define SBX_EXIT_SECCOMP 159

/* Id of the invocation a Lua sandbox is running (0 outside one): the SIGSYS
 * handler names it in the ERROR frame it writes. Set by lua_host.c. */
extern volatile uint64_t sbx__invocation_id;

/* tined side, for sbx_zygote_start: the configuration given to
 * sbx_isolation_configure (isolation off when none was) and the write end
 * of the report pipe (-1 without one), to hand to the zygote program. */
void sbx__isolation_handover(sbx_isolation_config_t *cfg, int *report_fd);

/* In the zygote program, first thing: takes over what tined handed over
 * (sbx__isolation_handover). Returns 0 or -ENAMETOOLONG. */
int sbx__isolation_adopt(const sbx_isolation_config_t *cfg, int report_fd);

/* The zygote program's main (sandbox/zygote_main.c): its arguments are
 * written by sbx_zygote_start. Returns only on bad arguments (exit code). */
int sbx__zygote_program(int argc, char **argv);

/* In the zygote, once, before it serves spawn requests: enters the
 * namespaces, compiles the system call filters, and sends the report of
 * what it could apply to tined. A sandbox that later fails to apply a
 * layer reported active answers an error and exits (never runs without). */
void sbx__isolation_zygote_enter(void);

/* In a freshly forked Lua sandbox, before it loads its handler: moves its
 * pipes to fds 3 (read) and 4 (written) (*fds is updated) and closes every
 * other descriptor but 0-2, then applies the per-fork layers (rlimits, root dir, uid,
 * no_new_privs, seccomp). *bundle_dir becomes the bundle's path as the
 * sandbox now sees it. Returns 0, or -errno with a message in err (the
 * sandbox must then report it and exit). */
int sbx__isolation_enter_lua(const sbx_spec_t *spec, sbx_fds_t *fds, const char **bundle_dir, char *err,
                             size_t errlen);

/* Writes `text` to the existing file `path` (a /proc or cgroup file).
 * Returns 0 or -errno. */
int sbx__write_text(const char *path, const char *text);

/* -------------------------------------------- a cgroup per exec invocation
 * (cgroup.c) */

/* An invocation's cgroup: a directory per hierarchy (memory, pids; one for
 * both on cgroup v2) and their cgroup.procs, open for the program's child. */
typedef struct {
    char dir[2][SBX_CGROUP_PATH]; /* "" for none */
    int procs_fd[2];              /* -1 for none */
} sbx_exec_cgroup_t;

/* The directory of tined's cgroup in the hierarchy holding `controller`
 * (NULL: the cgroup v2 tree), from the text of /proc/self/cgroup and
 * /proc/self/mountinfo, into out. Returns 0, -ENOENT when that hierarchy
 * is not mounted where it can be reached, or -ENAMETOOLONG. */
int sbx__cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *controller, char *out,
                       size_t outlen);

/* In the zygote, once, as root: makes this node's cgroup for exec
 * invocations below tined's (pid `tined`) and removes those of zygotes
 * that are gone. Returns true when invocations can get a cgroup each; the
 * layer's detail (what it does, or why it is off) goes to `detail`. */
bool sbx__cgroup_setup(pid_t tined, char *detail, size_t detail_len);

/* The node's cgroup made by sbx__cgroup_setup in hierarchy i (0 memory, 1
 * pids), "" for none. */
const char *sbx__cgroup_node_dir(int i);

/* In an exec runner: makes the invocation's cgroup (memory_mb without swap,
 * max_tasks tasks) with its cgroup.procs open, after removing those of
 * runners that are gone. Does nothing when sbx__cgroup_setup made none.
 * Returns 0, or -errno with a message in err (nothing left behind). */
int sbx__cgroup_create(sbx_exec_cgroup_t *c, uint32_t memory_mb, unsigned max_tasks, char *err, size_t errlen);

/* In the program's child, first thing: moves it into its cgroup and closes
 * the descriptors. Returns 0 or -errno. */
int sbx__cgroup_enter(const sbx_exec_cgroup_t *c);

/* In the runner, once the program is gone: whether the kernel's OOM killer
 * killed a process of the invocation (its memory ran out). */
bool sbx__cgroup_out_of_memory(const sbx_exec_cgroup_t *c);

/* Removes the invocation's cgroup (its processes must be gone). */
void sbx__cgroup_remove(sbx_exec_cgroup_t *c);

/* Removes the cgroup `dir` and the cgroups right below it, waiting a
 * little for their last tasks to go. Accepts NULL and "". */
void sbx__cgroup_remove_node(const char *dir);

/* Processes (tasks) an exec program may have: RLIMIT_NPROC of its uid and
 * the pids limit of its cgroup. */
#define SBX_EXEC_NPROC 32

/* ------------------------------------------------------- exec programs */

/* What an exec runner needs to know to start its program. */
typedef struct {
    bool private_root; /* the program gets a fresh root (mount namespace) */
    bool pid_ns;       /* the program runs as pid 1 of its own pid namespace */
    bool own_uid;      /* the program runs as a uid of its own */
    uid_t uid;         /* that uid (and gid) */
    bool cgroup;       /* cg holds the invocation's cgroup: memory is limited there, not per process */
    sbx_exec_cgroup_t cg;
    /* network: true with a namespace of its own: the egress proxy's
     * listening socket inside it (SBX_EXEC_PROXY_PORT on loopback), -1
     * otherwise. The runner is in that namespace until it forked the
     * program (then sbx__isolation_exec_forked). */
    int proxy_fd;
} sbx_exec_plan_t;

/* Where a networked exec program finds its egress proxy (inside its own
 * network namespace). */
#define SBX_EXEC_PROXY_ADDR "127.0.0.1"
#define SBX_EXEC_PROXY_PORT 3128

/* ------------------------------------ the egress proxy (exec_proxy.c) */

/* A request head the proxy understood. */
typedef struct {
    char method[17];
    bool connect;   /* CONNECT host:port; else plain HTTP with an absolute http:// URI */
    char host[256]; /* lower case, IPv6 without brackets */
    uint16_t port;
    size_t head_len; /* bytes of the head, its empty line included */
} sbx_proxy_request_t;

/* Parses the request head at the start of buf (len bytes so far): returns
 * 0 with *req filled and, for plain HTTP, the head to send to the server
 * appended to `head` (origin-form target, the proxy's hop-by-hop headers
 * dropped, "Connection: close"); 1 when the head is not complete yet; or
 * the HTTP status to answer (400, 431, or 503 when `head` cannot grow: out
 * of memory) with a message in err. Never reads past len. */
int sbx__proxy_parse(const char *buf, size_t len, sbx_proxy_request_t *req, tine_buf_t *head, char *err,
                     size_t errlen);

typedef struct sbx_proxy sbx_proxy_t;
/* Receives one log line (without newline) for the invocation's logs; called
 * from the proxy's threads. */
typedef void (*sbx_proxy_log_fn)(void *ctx, const char *line, size_t len);

/* In the runner, back in the host's network namespace: a proxy serving
 * `listen_fd` (non-blocking, taken) under the outbound policy of `spec`
 * (borrowed), connecting until deadline_ns at the latest. Cannot fail. */
sbx_proxy_t *sbx__proxy_new(int listen_fd, const sbx_spec_t *spec, uint64_t deadline_ns, sbx_proxy_log_fn log,
                            void *log_ctx);

/* The listening socket, for poll (-1 for a NULL proxy). */
int sbx__proxy_fd(const sbx_proxy_t *p);

/* Accepts every connection waiting and serves each in a thread of its own. */
void sbx__proxy_accept(sbx_proxy_t *p);

/* Stops accepting. Connections being served go on until the runner exits
 * (the proxy is not freed: its threads may still use it). Accepts NULL. */
void sbx__proxy_stop(sbx_proxy_t *p);

/* In an exec runner (forked by the zygote), before it forks the program:
 * closes every descriptor but 0-2 and its pipes, decides the plan for the
 * program, enters a new pid namespace for it when one is planned, makes
 * the invocation's cgroup, and for network: true a network namespace with
 * only loopback and the proxy's listening socket in it (the runner stays
 * there until sbx__isolation_exec_forked). Returns 0, or with a message in
 * err -errno, or -ENOTSUP for network: true on a node that cannot give it. */
int sbx__isolation_exec_runner(const sbx_spec_t *spec, sbx_fds_t fds, sbx_exec_plan_t *plan, char *err,
                              size_t errlen);

/* In the runner right after it forked the program: goes back to the host's
 * network namespace, where the proxy's outbound connections are made.
 * Returns 0, or -errno with a message in err (the proxy must then not run). */
int sbx__isolation_exec_forked(sbx_exec_plan_t *plan, char *err, size_t errlen);

/* Removes `name` below the directory `parent` (an fd or AT_FDCWD) and
 * everything in it, never following a symlink. */
void sbx__remove_tree(int parent, const char *name);

/* The node's temporary directory for exec working dirs. */
const char *sbx__isolation_tmp_dir(void);

/* Where a program with a root of its own (plan->private_root) sees its
 * bundle and its working dir. */
#define SBX_EXEC_APP_DIR "/app"
#define SBX_EXEC_WORK_DIR "/tmp"

/* The SDKs' directory (the parent of --sdk-dir: lua/, python/, node/,
 * bin/), resolved when the zygote started; "" when unknown. An exec
 * program sees it at SBX_EXEC_SDK_DIR when it has a root of its own. */
const char *sbx__sdks_dir(void);
#define SBX_EXEC_SDK_DIR "/tine"
/* Where an exec program finds its host call pipes (read, written): the
 * wire protocol's HOSTCALL and HOSTREPLY frames, announced in its
 * environment as TINE_HOSTCALL_FDS=240,241. High numbers, below the exec
 * descriptor limit (256): shell scripts use 3 to 9 for their own. */
#define SBX_EXEC_HOSTCALL_RD 240
#define SBX_EXEC_HOSTCALL_WR 241

/* In the program's child process, after its stdio is in place and its
 * environment and arguments are built (no allocation may follow: the
 * address space limit is set here), before execve: builds its root (the
 * bundle read-only at SBX_EXEC_APP_DIR, a private size-limited
 * SBX_EXEC_WORK_DIR, read-only system dirs) when plan->private_root, else
 * moves to `workdir`; switches
 * to the plan's uid, applies rlimits, no_new_privs and the exec system call
 * filter. First of all it enters the invocation's cgroup; it also unshares
 * an IPC namespace of its own. Returns 0, or -errno with a message in err. */
int sbx__isolation_exec_child(const sbx_spec_t *spec, const sbx_exec_plan_t *plan, const char *workdir, char *err,
                              size_t errlen);

/* ------------------------------------------------------ Python zygotes
 * (python_host.c starts them; isolation.c isolates them) */

/* tine-zygote's answer to a spawn request: status, pid, and `nfds` (0 to 3)
 * descriptors attached. Returns 0 or -errno. */
int sbx__zygote_reply(int sock, int32_t status, int32_t pid, const int *fds, int nfds);

/* In the zygote: when the spawn request `meta` asks for a Python zygote,
 * starts it (a launcher process and python3 below it) and answers tined,
 * and returns true; returns false for any other request. `sdk_dir` is the
 * Lua SDK's directory, whose sibling python/ holds the Python SDK. */
/* A runtime started per app version by tine-zygote (python_host.c's
 * launcher): a Python zygote, or a Node host (node_host.c). */
typedef struct sbx_python_plan sbx_python_plan_t;
struct json_t;
typedef struct {
    const char *what;        /* "Python zygote", for messages */
    const char *request_key; /* the spawn request's member asking for one */
    const char *proc_name;   /* the launcher's process name */
    const char *sdk_sub;     /* its SDK: this sibling of the Lua SDK's directory */
    const char *env_name;    /* the variable naming its interpreter, */
    const char *program;     /* else this program in /usr/local/bin, /usr/bin or /bin */
    bool node;               /* isolated as a Node host (sbx_python_plan_t.node) */
    /* In the process below the launcher: isolates it and runs the runtime
     * on its control socket `sock`. Never returns. */
    void (*child)(int sock, sbx_python_plan_t *plan, struct json_t *req);
} sbx_runtime_kind_t;

extern const sbx_runtime_kind_t sbx__python_kind, sbx__node_kind;

/* In the zygote: when the spawn request `meta` asks for the runtime `kind`
 * (its request_key is true), starts it (a launcher process and the
 * runtime below it) and answers tined, and returns true; returns false for
 * any other request. `sdk_dir` is the Lua SDK's directory. */
bool sbx__runtime_spawn(const sbx_runtime_kind_t *kind, int control_fd, const char *meta, size_t meta_len,
                        const char *sdk_dir);

/* Writes an ERROR frame {"error": "cannot start the WHAT: MSG"} on the
 * control socket, a runtime's one word to tined when it cannot start. */
void sbx__runtime_say_error(int sock, const sbx_runtime_kind_t *kind, const char *msg);

/* The interpreter a runtime runs: $ENV_NAME, else the first `name` in
 * /usr/local/bin, /usr/bin, /bin, resolved to its file. Returns 0, or
 * -errno with a message. */
int sbx__find_interpreter(const char *env_name, const char *name, char out[PATH_MAX], char *err, size_t errlen);

/* Where the Python zygote finds its control socket, the statm file of its
 * own process, and (only for the launcher's execveat, which the Python
 * filter allows through this descriptor alone) python3. */
#define SBX_PYTHON_CONTROL_FD 3
#define SBX_PYTHON_STATM_FD 4
#define SBX_PYTHON_EXE_FD 1000
#define SBX_PYTHON_NOFILE 64          /* below SBX_PYTHON_EXE_FD: no process under the filter gets it again */
#define SBX_PYTHON_SDK_DIR "/tine"    /* the Python SDK, read-only, in a Python zygote's own root */
#define SBX_PYTHON_AS_SLACK (256ull * 1024ull * 1024ull) /* zygote address space beyond the largest memory */
#define SBX_PYTHON_SPARE_PROCESSES 8 /* processes a Python zygote may hold beyond its functions' concurrency */
/* Python zygotes run as uid/gid SBX_PYTHON_UID_BASE + (launcher pid mod
 * 65536) when tined is root: a uid per version, after the exec programs'. */
#define SBX_PYTHON_UID_BASE (1000000000u + 65536u)

/* What the process that becomes a Python zygote (or Node host) asks of its isolation. */
struct sbx_python_plan {
    const char *python;     /* python3 on the host */
    const char *bundle_dir; /* the version's files on the host */
    const char *sdk_dir;    /* sdk/python on the host */
    uint32_t memory_mb;     /* the largest memory of its functions */
    uint32_t processes;     /* the sum of their concurrency */
    uid_t uid;              /* its uid when tined is root */
    /* out: */
    const char *bundle_seen; /* where it sees the bundle and the SDK */
    const char *sdk_seen;
    bool node;              /* a Node host (node_host.c): no filter of its own, no address space limit */
    int exe_fd;   /* python3 (node) as SBX_PYTHON_EXE_FD for execveat, or -1: exec it by path */
    bool isolated; /* the node's --isolation: the sandboxes apply their limits */
};

/* In the launcher, before it forks the process that becomes the Python
 * zygote: a pid namespace for that process (pid 1: everything the version
 * forks dies with it), when the node has the layer. Returns whether it
 * made one. */
bool sbx__isolation_python_pidns(void);

/* In the process that becomes the Python zygote, right before it execs
 * python3: its descriptors (the control socket `sock` on
 * SBX_PYTHON_CONTROL_FD, ...), a user namespace (not root), an IPC
 * namespace, a root of its own (the bundle at /app, the SDK at
 * SBX_PYTHON_SDK_DIR, the system's directories read-only), a uid of its own
 * (root), rlimits, no_new_privs and the Python filter. Returns 0, or -errno
 * with a message in err. */
int sbx__isolation_enter_python(int sock, sbx_python_plan_t *plan, char *err, size_t errlen);

/* ---------------------------------------------------------- Node hosts
 * (node_host.c starts them; a Node host is isolated as a Python zygote,
 * sbx__isolation_enter_python with plan.node, and forks and starts one
 * node per blank sandbox) */

#define SBX_NODE_AS_SLACK (2048ull * 1024ull * 1024ull) /* V8 reserves far more than its heap (a code range per isolate: workers) */
#define SBX_NODE_NOFILE 128      /* a Node sandbox's descriptors (below SBX_PYTHON_EXE_FD) */
#define SBX_NODE_HOST_NOFILE 900 /* the Node host's: three per child it watches */
#define SBX_NODE_THREADS 16      /* tasks a node process may have (V8's and libuv's threads) */

/* In a child of a Node host, right before it starts node: its address
 * space (memory + SBX_NODE_AS_SLACK), descriptors and the Node filter.
 * Returns 0, or -errno with a message in err. */
int sbx__isolation_node_child(uint32_t memory_mb, char *err, size_t errlen);

#endif
