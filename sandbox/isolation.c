/* The process layers of sandbox isolation (docs/ARCHITECTURE.md,
 * "Isolation"). The zygote enters its namespaces and compiles the system
 * call filters once (sbx__isolation_zygote_enter); every Lua sandbox then
 * pays a few system calls after its fork (sbx__isolation_enter_lua), and
 * every exec program gets a fresh root built in its own mount namespace
 * (sbx__isolation_exec_child). The zygote tells tined which layers it could
 * apply through a pipe; tined prints a warning per layer that is off and
 * serves the report as GET /_tine/v1/doctor. */
#define _GNU_SOURCE
#include "sandbox_internal.h"
#include "outbox.h"
#include "tine_common.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
/* Address space a Lua sandbox may add to what it inherits from the zygote
 * beyond its `memory`: frame buffers (a request and a response of up to 6
 * MiB each), JIT code and allocator slack. */
#define LUA_AS_SLACK (32ull * MIB)
#define LUA_NOFILE 16
/* An exec program's address space beyond its `memory`: its own code, the
 * C library and the interpreter of a script. */
#define EXEC_AS_SLACK (64ull * MIB)
#define EXEC_NPROC SBX_EXEC_NPROC
#define EXEC_NOFILE 256
#define EXEC_FSIZE (16ull * MIB)
/* Exec programs run as uid/gid EXEC_UID_BASE + (runner pid mod 65536): a
 * uid of their own, so the process limit counts only their processes. */
#define EXEC_UID_BASE 1000000000u
#define SYSCALL_NAMES 1024

static struct {
    bool configured;
    bool enabled;
    uint32_t sandbox_uid;
    char tmp_dir[200];
    int report_rd, report_wr; /* zygote -> tined */
    /* Filled in the zygote by sbx__isolation_zygote_enter, inherited by every fork. */
    bool root;      /* tined runs as root: sandboxes switch to an unprivileged uid */
    bool userns;    /* the zygote lives in a user namespace of its own (not root) */
    bool mountns, pidns, netns, ipcns;
    bool cgroup;    /* exec invocations get a cgroup each (cgroup.c) */
    bool chroot_ok; /* Lua sandboxes can make their bundle their root dir */
    bool seccomp;
    int host_net_fd; /* the host's network namespace, for exec functions with network: true */
    int runner_pid_fd; /* an exec runner's own pid namespace, to go back to after forking its program */
    int devnull_fd;
    struct sock_fprog lua_filter, exec_filter, python_filter, node_filter;
    uint64_t base_vsz; /* address space of the zygote after preparing Lua */
    rlim_t hard_limits[RLIMIT_NLIMITS];
    sbx_isolation_report_t report;
} iso = {.report_rd = -1, .report_wr = -1, .host_net_fd = -1, .runner_pid_fd = -1, .devnull_fd = -1};

static const char *syscall_names[SYSCALL_NAMES];
/* The names themselves, one after the other (not a thousand small strings
 * in the malloc heap). */
static char syscall_name_text[16384];
static volatile int sigsys_fd = -1;
volatile uint64_t sbx__invocation_id;

/* The node's report, kept by tined. */
static sbx_isolation_report_t node_report;

static const char *const layer_names[SBX_LAYER_COUNT] = {
    "lua",           "rlimits",       "no-new-privs",  "seccomp", "user", "mount-namespace", "pid-namespace",
    "ipc-namespace", "uts-namespace", "net-namespace", "root-dir",      "cgroup",  "exec-network",
};

const char *sbx_layer_name(int layer)
{
    return layer >= 0 && layer < SBX_LAYER_COUNT ? layer_names[layer] : "?";
}

/* Marks the layer on or off in the report, with its detail (what it does, or
 * why it is off). */
static void layer_set(int layer, bool active, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void layer_set(int layer, bool active, const char *fmt, ...)
{
    sbx_layer_t *l = &iso.report.layers[layer];
    l->active = active;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->detail, sizeof l->detail, fmt, ap);
    va_end(ap);
}

/* --------------------------------------------------------------- tined side */

int sbx_isolation_configure(const sbx_isolation_config_t *cfg)
{
    if (iso.report_rd >= 0) {
        close(iso.report_rd);
        close(iso.report_wr);
    }
    if (cfg->tmp_dir && strlen(cfg->tmp_dir) >= sizeof iso.tmp_dir)
        return -ENAMETOOLONG;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    iso.configured = true;
    iso.enabled = cfg->enabled;
    iso.sandbox_uid = cfg->sandbox_uid ? cfg->sandbox_uid : 65534;
    snprintf(iso.tmp_dir, sizeof iso.tmp_dir, "%s", cfg->tmp_dir ? cfg->tmp_dir : "/tmp");
    iso.report_rd = p[0];
    iso.report_wr = p[1];
    return 0;
}

void sbx__isolation_handover(sbx_isolation_config_t *cfg, int *report_fd)
{
    cfg->enabled = iso.configured && iso.enabled;
    cfg->sandbox_uid = iso.sandbox_uid ? iso.sandbox_uid : 65534;
    cfg->tmp_dir = iso.configured ? iso.tmp_dir : NULL;
    *report_fd = iso.report_wr;
}

int sbx__isolation_adopt(const sbx_isolation_config_t *cfg, int report_fd)
{
    if (cfg->tmp_dir && strlen(cfg->tmp_dir) >= sizeof iso.tmp_dir)
        return -ENAMETOOLONG;
    iso.configured = true;
    iso.enabled = cfg->enabled;
    iso.sandbox_uid = cfg->sandbox_uid ? cfg->sandbox_uid : 65534;
    snprintf(iso.tmp_dir, sizeof iso.tmp_dir, "%s", cfg->tmp_dir ? cfg->tmp_dir : "/tmp");
    iso.report_rd = -1;
    iso.report_wr = report_fd;
    return 0;
}

int sbx_isolation_await_report(sbx_isolation_report_t *out, int timeout_ms)
{
    if (iso.report_rd < 0)
        return TINE_ECRASH;
    close(iso.report_wr);
    iso.report_wr = -1;
    sbx_isolation_report_t r;
    size_t got = 0;
    int rc = 0;
    uint64_t deadline = tine_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (got < sizeof r) {
        uint64_t now = tine_now_ns();
        if (now >= deadline) {
            rc = TINE_ETIMEOUT;
            break;
        }
        struct pollfd pfd = {iso.report_rd, POLLIN, 0};
        int n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            continue;
        ssize_t k = read(iso.report_rd, (char *)&r + got, sizeof r - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = TINE_ECRASH;
            break;
        }
        got += (size_t)k;
    }
    close(iso.report_rd);
    iso.report_rd = -1;
    if (rc != 0)
        return rc;
    node_report = r;
    if (out)
        *out = r;
    return 0;
}

const sbx_isolation_report_t *sbx_isolation_report(void)
{
    return &node_report;
}

/* The layers each runtime's processes get (docs/ARCHITECTURE.md,
 * "Isolation"): bit i for layer i. */
#define L(x) (1u << (x))
#define PROCESS_LAYERS                                                                                           \
    (L(SBX_LAYER_RLIMITS) | L(SBX_LAYER_NO_NEW_PRIVS) | L(SBX_LAYER_SECCOMP) | L(SBX_LAYER_USER) |               \
     L(SBX_LAYER_MOUNT_NS) | L(SBX_LAYER_PID_NS) | L(SBX_LAYER_IPC_NS) | L(SBX_LAYER_UTS_NS) | L(SBX_LAYER_NET_NS) | \
     L(SBX_LAYER_ROOT_DIR))
static const struct {
    const char *name;
    unsigned layers;
} runtime_layers[] = {
    {"lua", PROCESS_LAYERS | L(SBX_LAYER_LUA)},
    {"python", PROCESS_LAYERS},
    {"node", PROCESS_LAYERS},
    {"exec", PROCESS_LAYERS | L(SBX_LAYER_CGROUP) | L(SBX_LAYER_EXEC_NET)},
};
#undef PROCESS_LAYERS
#undef L

json_t *sbx_isolation_report_json(const sbx_isolation_report_t *r)
{
    json_t *layers = json_array();
    for (int i = 0; i < SBX_LAYER_COUNT; i++)
        json_array_append_new(layers, json_pack("{s:s, s:b, s:s}", "name", layer_names[i], "active",
                                                r->layers[i].active, "detail", r->layers[i].detail));
    json_t *runtimes = json_array();
    for (size_t k = 0; k < sizeof runtime_layers / sizeof runtime_layers[0]; k++) {
        json_t *on = json_array(), *off = json_array();
        for (int i = 0; i < SBX_LAYER_COUNT; i++)
            if (runtime_layers[k].layers & (1u << i))
                json_array_append_new(r->layers[i].active ? on : off, json_string(layer_names[i]));
        json_array_append_new(runtimes, json_pack("{s:s, s:o, s:o}", "runtime", runtime_layers[k].name, "on", on,
                                                  "off", off));
    }
    return json_pack("{s:s, s:o, s:o}", "isolation", r->enabled ? "on" : "off", "layers", layers, "runtimes",
                     runtimes);
}

void sbx__remove_tree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat(parent, name, 0);
        return;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            sbx__remove_tree(dirfd(d), e->d_name);
    closedir(d);
    unlinkat(parent, name, AT_REMOVEDIR);
}

void sbx_isolation_cleanup(const char *tmp_dir)
{
    if (tmp_dir != NULL)
        sbx__remove_tree(AT_FDCWD, tmp_dir);
    for (int i = 0; i < 2; i++)
        sbx__cgroup_remove_node(node_report.cgroup_dirs[i]);
}

const char *sbx__isolation_tmp_dir(void)
{
    return iso.tmp_dir[0] ? iso.tmp_dir : "/tmp";
}

/* ------------------------------------------------------------ small tools */

int sbx__write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
    close(fd);
    return e;
}

/* Virtual size of this process in bytes (0 when /proc is unreadable). */
static uint64_t current_vsz(void)
{
    char *text = NULL;
    size_t len = 0;
    if (tine_try_read_file("/proc/self/statm", &text, &len) != 0)
        return 0;
    unsigned long long pages = strtoull(text, NULL, 10);
    free(text);
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Sets both limits of `resource` to value, or to its hard limit when that
 * is lower (lowering needs no privilege; the hard limits were read once in
 * the zygote, so a fork pays one system call per limit). Returns 0 or
 * -errno (errno set too). */
static int set_limit(int resource, uint64_t value)
{
    rlim_t v = (rlim_t)value, hard = iso.hard_limits[resource];
    if (hard != RLIM_INFINITY && hard < v)
        v = hard;
    struct rlimit rl = {v, v};
    return setrlimit(resource, &rl) == 0 ? 0 : -errno;
}

/* Closes every descriptor from `from` on except `keep1` and `keep2`. */
static void close_from(int from, int keep1, int keep2, int keep3)
{
    int keep[3] = {keep1, keep2, keep3};
    for (int i = 1; i < 3; i++) /* sort the three */
        for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    int lo = from;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < lo)
            continue;
        if (keep[i] > lo && syscall(SYS_close_range, (unsigned)lo, (unsigned)keep[i] - 1, 0) != 0)
            for (int fd = lo; fd < keep[i]; fd++)
                close(fd);
        lo = keep[i] + 1;
    }
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (int fd = lo; fd < (max > 0 ? max : 1024); fd++)
            close(fd);
    }
}

/* Drops every capability for good: the bounding set, the three sets, and
 * (with securebits) the ones execve would grant to uid 0 of a user
 * namespace. Needs CAP_SETPCAP. Returns 0 or -errno (errno set too). */
static int drop_capabilities(void)
{
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) != 0)
        return -errno;
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            return -errno;
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    return syscall(SYS_capset, &h, d) == 0 ? 0 : -errno;
}

/* ------------------------------------------------------------- SIGSYS */

/* Appends s to buf (async-signal-safe). */
static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

/* Appends v in decimal to buf (async-signal-safe). */
static size_t put_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 23);
    while (n > 0 && at + 1 < cap)
        buf[at++] = digits[--n];
    return at;
}

/* A Lua sandbox made a system call its filter does not allow: tell the
 * invoker which one (an ERROR frame for the running invocation, flagged so
 * the sandbox is not reused) and exit. Async-signal-safe. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int fd = sigsys_fd;
    sbx_outbox_flush_from_signal(); /* answers of invocations before this one */
    if (fd >= 0) {
        char meta[256];
        size_t n = 0;
        int nr = si->si_syscall;
        const char *name = nr >= 0 && nr < SYSCALL_NAMES ? syscall_names[nr] : NULL;
        bool abort_call = name && (strcmp(name, "tgkill") == 0 || strcmp(name, "tkill") == 0);
        n = put(meta, n, sizeof meta, "{\"error\":\"");
        n = put(meta, n, sizeof meta,
                abort_call ? "the sandbox aborted (blocked system call " : "blocked system call ");
        if (name)
            n = put(meta, n, sizeof meta, name);
        else
            n = put_uint(meta, n, sizeof meta, (unsigned long)nr);
        n = put(meta, n, sizeof meta, abort_call ? "); the sandbox was stopped\"}"
                                                 : ": the function tried something its sandbox forbids "
                                                   "and the sandbox was stopped\"}");
        sbx_frame_hdr_t h = sbx_frame_header(SBX_MSG_ERROR, sbx__invocation_id, 0, n, 0);
        h.flags = SBX_FRAME_EXITING;
        struct iovec iov[2] = {{&h, sizeof h}, {meta, n}};
        (void)sbx_writev_all(fd, iov, 2);
    }
    _exit(SBX_EXIT_SECCOMP);
}

/* ------------------------------------------------------------- filters */

/* Adds `action` for the named system call (ignored when this architecture
 * does not have it). Returns 0 or a libseccomp error. */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned argc, ...)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    struct scmp_arg_cmp args[2];
    va_list ap;
    va_start(ap, argc);
    for (unsigned i = 0; i < argc && i < 2; i++)
        args[i] = va_arg(ap, struct scmp_arg_cmp);
    va_end(ap);
    return seccomp_rule_add_array(ctx, action, nr, argc, args);
}

/* Allows each of `names` (n of them), then open/openat only to read: no
 * O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND or O_TMPFILE. Returns 0 or a
 * libseccomp error. */
static int allow_with_read_only_open(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ALLOW, names[i], 0);
    scmp_datum_t write_bits = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "openat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, write_bits, 0));
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "open", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, write_bits, 0));
    return rc;
}

/* What a Lua sandbox may do after its fork: talk on its pipes, read its
 * bundle (the root dir, read-only), manage memory, read clocks, exit.
 * Anything else raises SIGSYS (on_sigsys). */
static int lua_allowlist(scmp_filter_ctx ctx)
{
    static const char *const allowed[] = {
        "read", "write", "readv", "writev", "close", "fstat", "newfstatat", "lseek", "access", "faccessat",
        "faccessat2", "mmap", "munmap", "mremap", "mprotect", "brk", "madvise", "clock_gettime", "gettimeofday",
        "time", "getpid", "futex", "rt_sigreturn", "rt_sigprocmask", "exit", "exit_group",
#if defined(__SANITIZE_ADDRESS__)
        /* AddressSanitizer's runtime, in the sanitizer build of the tests. */
        "sigaltstack", "prlimit64", "getrlimit", "sched_getaffinity", "readlink", "readlinkat", "uname",
        "prctl", "rt_sigaction", "gettid", "sched_yield", "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl",
        "getppid", "stat", "lstat", "statx", "fcntl", "sysinfo", "getrusage", "nanosleep", "clock_nanosleep",
#endif
    };
    return allow_with_read_only_open(ctx, allowed, sizeof allowed / sizeof allowed[0]);
}

/* What an exec program may not do: anything that reaches across the
 * sandbox (other processes' memory, namespaces, mounts, the kernel's
 * keyrings, modules, clocks, BPF, io_uring, perf). Answered with EPERM so
 * programs see an ordinary error; everything else is allowed, as the
 * program is an arbitrary binary. */
static int exec_denylist(scmp_filter_ctx ctx)
{
    static const char *const denied[] = {
        "acct", "add_key", "bpf", "chroot", "clock_adjtime", "clock_settime", "create_module",
        "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
        "get_kernel_syms", "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm",
        "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
        "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
        "pidfd_getfd", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
        "quotactl", "quotactl_fd", "reboot", "request_key", "setdomainname", "sethostname", "setns",
        "settimeofday", "swapoff", "swapon", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd",
        "vhangup", "vm86", "vm86old", "_sysctl", "adjtimex",
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    /* clone3 hides its flags in memory: make the C library fall back to clone. */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0);
    static const scmp_datum_t ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,   CLONE_NEWNET,
                                            CLONE_NEWIPC,  CLONE_NEWUTS, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    return rc;
}

/* What a Python zygote and its sandboxes may do: what the interpreter
 * needs to run, import from its read-only root and serve on its pipes, and
 * for the zygote to fork sandboxes (clone without namespace flags) and hand
 * them over (sendmsg on its control socket). Everything else answers EPERM,
 * which Python raises as PermissionError in the function: no socket,
 * connect, execve, ptrace, mount, kill, file writes. The one execveat
 * allowed is the launcher's of python3 itself, through the descriptor
 * SBX_PYTHON_EXE_FD, which no process under the filter can create again
 * (its descriptor limit is lower). */
static int python_allowlist(scmp_filter_ctx ctx)
{
    static const char *const allowed[] = {
        "read", "write", "readv", "writev", "pread64", "close", "fstat", "newfstatat", "stat", "lstat", "statx",
        "lseek", "access", "faccessat", "faccessat2", "getdents64", "readlink", "readlinkat", "getcwd", "chdir",
        "fchdir", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "mmap", "munmap", "mremap", "mprotect", "brk",
        "madvise", "mincore", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
        "time", "select", "pselect6", "poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
        "eventfd2", "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
        "getresgid", "getgroups", "getpgrp", "uname", "sysinfo", "getrusage", "times", "getrlimit", "setrlimit",
        "futex", "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity", "rt_sigaction",
        "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "tkill", "getrandom", "exit", "exit_group",
        "wait4", "waitid", "pidfd_open", "sendmsg", "recvmsg", "sendto", "recvfrom", "getsockopt", "getsockname",
        "getpeername", "shutdown", "set_tid_address", "arch_prctl", "membarrier", "statfs", "fstatfs", "umask",
        "fadvise64", "fork", "vfork",
    };
    int rc = allow_with_read_only_open(ctx, allowed, sizeof allowed / sizeof allowed[0]);
    /* Its own limits only (resource.setrlimit). */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, SCMP_A0(SCMP_CMP_EQ, 0));
    /* fork, and threads, but never into new namespaces. */
    scmp_datum_t ns = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                      CLONE_NEWCGROUP;
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0));
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0);
    /* kill(-1): pid 1 of a Python zygote's pid namespace ends what its
     * modules forked while they were imported (its own processes only). */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "kill", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0xffffffffu));
    /* A pair of connected unix sockets (asyncio's self-pipe) reaches nothing. */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    /* ioctl: terminal probes (isatty), non-blocking and close-on-exec flags,
     * bytes readable. */
    static const scmp_datum_t ioctls[] = {TCGETS, FIONBIO, FIOCLEX, FIONCLEX, FIONREAD};
    for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, ioctls[i]));
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ALLOW, "execveat", 2, SCMP_A0(SCMP_CMP_EQ, SBX_PYTHON_EXE_FD),
                  SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH));
    return rc;
}

/* What a Node sandbox may not do: the exec denylist (node's system calls
 * are many and change between releases: a denylist is what it survives),
 * and moreover no process of its own (clone only for threads), no exec
 * (but the host's one execveat of node itself, through SBX_PYTHON_EXE_FD,
 * which the sandbox cannot make again: its descriptor limit is lower), no
 * socket but a unix pair, no signal to another process, no file mode or
 * owner change, no links or device nodes: EPERM for all of them. */
static int node_denylist(scmp_filter_ctx ctx)
{
    int rc = exec_denylist(ctx);
    static const char *const denied[] = {"fork", "vfork", "execve", "socket", "connect", "bind", "listen", "accept",
                                         "accept4", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown",
                                         "fchownat", "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat"};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    /* Signals: kill, tkill and the queued kinds reach other processes of
     * the version's uid (its host, pid 1 of its pid namespace, and the
     * other sandboxes); tgkill (raise, abort) only not pid 1. */
    static const char *const signals[] = {"kill", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
                                          "pidfd_send_signal"};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), signals[i], 0);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "tgkill", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 1));
    /* socket(): a unix pair is made by socketpair, which stays allowed. */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "execveat", 1, SCMP_A0(SCMP_CMP_NE, SBX_PYTHON_EXE_FD));
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "execveat", 1, SCMP_A4(SCMP_CMP_NE, AT_EMPTY_PATH));
    return rc;
}

enum { FILTER_LUA, FILTER_EXEC, FILTER_PYTHON, FILTER_NODE };

/* Compiles a filter into `out` (room for `cap` instructions) and sets *len.
 * Returns 0, or a negative errno (libseccomp's or the system's) with a
 * message in err. */
static int compile_filter(int kind, struct sock_filter *out, size_t cap, unsigned short *len, char *err,
                          size_t errlen)
{
    static const char *const names[] = {"Lua", "exec", "Python", "Node"};
    scmp_filter_ctx ctx = seccomp_init(kind == FILTER_LUA                           ? SCMP_ACT_TRAP
                                       : kind == FILTER_EXEC || kind == FILTER_NODE ? SCMP_ACT_ALLOW
                                                                                    : SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL) {
        snprintf(err, errlen, "libseccomp cannot create a filter");
        return -ENOMEM;
    }
    /* A binary tree of system call numbers: fewer instructions run per
     * call, and the kernel's per-filter cache is quicker to build at every
     * fork. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    int rc = kind == FILTER_LUA    ? lua_allowlist(ctx)
             : kind == FILTER_EXEC ? exec_denylist(ctx)
             : kind == FILTER_NODE ? node_denylist(ctx)
                                   : python_allowlist(ctx);
    int mfd = -1;
    if (rc == 0) {
        mfd = memfd_create("tine-seccomp", MFD_CLOEXEC);
        rc = mfd < 0 ? -errno : seccomp_export_bpf(ctx, mfd);
    }
    seccomp_release(ctx);
    struct stat st;
    if (rc == 0 && (fstat(mfd, &st) != 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
                    (size_t)st.st_size > cap * sizeof(struct sock_filter) ||
                    pread(mfd, out, (size_t)st.st_size, 0) != st.st_size))
        rc = -EIO;
    if (mfd >= 0)
        close(mfd);
    if (rc != 0) {
        snprintf(err, errlen, "cannot compile the %s filter: %s", names[kind], strerror(-rc));
        return rc;
    }
    *len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
    return 0;
}

/* Installs the filter on the calling thread. Returns 0 or -errno (errno set too). */
static int install_filter(const struct sock_fprog *prog)
{
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) == 0 ? 0 : -errno;
}

#define FILTER_MAX 1024 /* instructions of one compiled filter */

/* What the filter child hands back to the zygote (a shared mapping). */
typedef struct {
    unsigned short lua_len, exec_len, python_len, node_len;
    char err[200];
    struct sock_filter lua[FILTER_MAX], exec[FILTER_MAX], python[FILTER_MAX], node[FILTER_MAX];
    uint16_t name_at[SYSCALL_NAMES]; /* offset + 1 into names, 0 for none */
    char names[sizeof syscall_name_text];
} filter_work_t;

static struct sock_filter lua_prog[FILTER_MAX], exec_prog[FILTER_MAX], python_prog[FILTER_MAX], node_prog[FILTER_MAX];

/* In the filter child: the names of the system calls (for on_sigsys) and
 * both filters, into w. Returns 0, or compile_filter's error with w->err set. */
static int build_filters(filter_work_t *w)
{
    size_t used = 0;
    for (int i = 0; i < SYSCALL_NAMES; i++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
        size_t n = name ? strlen(name) + 1 : 0;
        if (n > 0 && used + n <= sizeof w->names) {
            memcpy(w->names + used, name, n);
            w->name_at[i] = (uint16_t)(used + 1);
            used += n;
        }
        free(name);
    }
    int rc = compile_filter(FILTER_LUA, w->lua, FILTER_MAX, &w->lua_len, w->err, sizeof w->err);
    if (rc == 0)
        rc = compile_filter(FILTER_EXEC, w->exec, FILTER_MAX, &w->exec_len, w->err, sizeof w->err);
    if (rc == 0)
        rc = compile_filter(FILTER_PYTHON, w->python, FILTER_MAX, &w->python_len, w->err, sizeof w->err);
    if (rc == 0)
        rc = compile_filter(FILTER_NODE, w->node, FILTER_MAX, &w->node_len, w->err, sizeof w->err);
    return rc;
}

/* Builds the filters and the system call names in a throwaway child, which
 * then proves that the kernel takes both filters and that a forbidden call
 * ends in on_sigsys. libseccomp's many temporary allocations so stay out of
 * the zygote's heap, whose pages every sandbox shares. Returns 0 with
 * iso.lua_filter, iso.exec_filter and syscall_names set; or with the reason
 * in err -errno (mmap, fork), -EIO (the filters could not be built) or
 * -ENOTSUP (the kernel failed the self-test). */
static int zygote_build_filters(char *err, size_t errlen)
{
    filter_work_t *w = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED)
        return tine_fail_errno(err, errlen, "mmap");
    pid_t p = fork();
    if (p < 0) {
        int e = tine_fail_errno(err, errlen, "fork");
        munmap(w, sizeof *w);
        return e;
    }
    if (p == 0) {
        if (build_filters(w) != 0)
            _exit(7);
        /* The Python filter in a grandchild of its own (it allows no
         * further filter): a socket must be refused with EPERM. */
        pid_t g = fork();
        if (g == 0) {
            struct sock_fprog python = {w->python_len, w->python};
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || install_filter(&python) != 0)
                _exit(8);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            _exit(s < 0 && errno == EPERM ? 0 : 9);
        }
        int gst = 0;
        while (g > 0 && waitpid(g, &gst, 0) < 0 && errno == EINTR)
            ;
        if (g < 0 || !WIFEXITED(gst) || WEXITSTATUS(gst) != 0)
            _exit(g > 0 && WIFEXITED(gst) ? WEXITSTATUS(gst) : 8);
        struct sock_fprog lua = {w->lua_len, w->lua}, exec = {w->exec_len, w->exec};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(2);
        if (install_filter(&exec) != 0)
            _exit(3);
        if (install_filter(&lua) != 0)
            _exit(4);
        int s = socket(AF_UNIX, SOCK_STREAM, 0); /* must never return */
        _exit(s >= 0 ? 5 : 6);
    }
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
    int rc = 0;
    if (code == 7) {
        snprintf(err, errlen, "%s", w->err);
        rc = -EIO;
    } else if (code != SBX_EXIT_SECCOMP) {
        static const char *const why[] = {"", "", "PR_SET_NO_NEW_PRIVS failed", "the kernel refused the exec filter",
                                          "the kernel refused the Lua filter", "a forbidden call was not stopped",
                                          "a forbidden call was not stopped", "",
                                          "the kernel refused the Python filter",
                                          "the Python filter did not refuse a socket"};
        snprintf(err, errlen, "self-test failed: %s",
                 code >= 2 && code <= 9 && code != 7 ? why[code] : "unexpected exit");
        rc = -ENOTSUP;
    } else {
        memcpy(lua_prog, w->lua, w->lua_len * sizeof lua_prog[0]);
        memcpy(exec_prog, w->exec, w->exec_len * sizeof exec_prog[0]);
        memcpy(python_prog, w->python, w->python_len * sizeof python_prog[0]);
        iso.lua_filter = (struct sock_fprog){w->lua_len, lua_prog};
        iso.exec_filter = (struct sock_fprog){w->exec_len, exec_prog};
        iso.python_filter = (struct sock_fprog){w->python_len, python_prog};
        memcpy(node_prog, w->node, w->node_len * sizeof node_prog[0]);
        iso.node_filter = (struct sock_fprog){w->node_len, node_prog};
        memcpy(syscall_name_text, w->names, sizeof syscall_name_text);
        syscall_name_text[sizeof syscall_name_text - 1] = '\0';
        for (int i = 0; i < SYSCALL_NAMES; i++)
            syscall_names[i] = w->name_at[i] ? syscall_name_text + w->name_at[i] - 1 : NULL;
    }
    munmap(w, sizeof *w);
    return rc;
}

/* ------------------------------------------------------------ the zygote */

/* Enters a new user namespace mapping tined's uid and gid to 0. */
static int enter_user_ns(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER) != 0)
        return -errno;
    char map[64];
    int rc = sbx__write_text("/proc/self/setgroups", "deny");
    if (rc != 0 && rc != -ENOENT)
        return rc;
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    if ((rc = sbx__write_text("/proc/self/uid_map", map)) != 0)
        return rc;
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    return sbx__write_text("/proc/self/gid_map", map);
}

/* SIGCHLD handler of the init: only wakes its ppoll up to reap. */
static void on_child(int sig)
{
    (void)sig;
}

/* pid 1 of the sandboxes' pid namespace: reaps orphans (exec runners killed
 * on timeout leave their program to it) and ends with the zygote, which
 * holds the write end of `lifeline` (PDEATHSIG alone would miss a zygote
 * that exits before this process set it). */
static void pid_ns_init(int lifeline)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "tine-init");
    close_from(3, lifeline, -1, -1);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    sigdelset(&old, SIGCHLD);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        struct pollfd p = {lifeline, POLLIN, 0};
        if (ppoll(&p, 1, NULL, &old) > 0 && p.revents)
            _exit(0); /* the zygote is gone */
    }
}

/* Unshares one namespace for a layer; when it cannot, marks the layer off
 * with the reason and returns false. */
static bool unshare_layer(int layer, int flag, const char *flag_name, bool can_ns)
{
    if (!can_ns) {
        layer_set(layer, false, "tined is not root and has no user namespace");
        return false;
    }
    if (unshare(flag) != 0) {
        layer_set(layer, false, "unshare(%s): %s", flag_name, strerror(errno));
        return false;
    }
    return true;
}

/* The zygote's identity and namespaces: uid and groups (root), or a user
 * namespace of its own; mount, IPC, UTS, network and pid namespaces (with
 * their init) where it can; each layer's state in the report. */
static void zygote_namespaces(void)
{
    int e;
    if (iso.root && setgroups(0, NULL) != 0) {
        layer_set(SBX_LAYER_USER, false, "cannot drop supplementary groups: %s", strerror(errno));
        iso.root = false; /* without it no sandbox may switch uid */
    } else if (iso.root) {
        layer_set(SBX_LAYER_USER, true, "Lua sandboxes run as uid/gid %u, exec programs as a uid of their own "
                                        "(%u + pid mod 65536), without supplementary groups or capabilities",
                  iso.sandbox_uid, EXEC_UID_BASE);
    } else if ((e = enter_user_ns()) == 0) {
        iso.userns = true;
        layer_set(SBX_LAYER_USER, true,
                  "tined is not root: sandboxes run in a user namespace as its uid, with every capability "
                  "dropped; each exec program in a nested user namespace of its own");
    } else {
        layer_set(SBX_LAYER_USER, false,
                  "tined is not root and cannot create a user namespace (%s): sandboxes run as tined's own uid",
                  strerror(-e));
    }
    bool can_ns = iso.root || iso.userns;
    if (iso.root && iso.enabled)
        iso.host_net_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

    if (unshare_layer(SBX_LAYER_MOUNT_NS, CLONE_NEWNS, "CLONE_NEWNS", can_ns)) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
            layer_set(SBX_LAYER_MOUNT_NS, false, "cannot make mounts private: %s", strerror(errno));
        } else {
            iso.mountns = true;
            layer_set(SBX_LAYER_MOUNT_NS, true, "the zygote's mounts are private; each exec program gets a "
                                                "mount namespace of its own with a fresh root");
        }
    }
    if (unshare_layer(SBX_LAYER_IPC_NS, CLONE_NEWIPC, "CLONE_NEWIPC", can_ns)) {
        iso.ipcns = true;
        layer_set(SBX_LAYER_IPC_NS, true, "no System V IPC or POSIX message queues shared with the host; each "
                                          "exec invocation gets one of its own, gone with the program");
    }
    if (unshare_layer(SBX_LAYER_UTS_NS, CLONE_NEWUTS, "CLONE_NEWUTS", can_ns)) {
        sethostname("tine-sandbox", 12);
        layer_set(SBX_LAYER_UTS_NS, true, "hostname tine-sandbox");
    }
    if (unshare_layer(SBX_LAYER_NET_NS, CLONE_NEWNET, "CLONE_NEWNET", can_ns)) {
        iso.netns = true;
        layer_set(SBX_LAYER_NET_NS, true, "an empty network namespace (loopback down)");
    }
    if (iso.netns && iso.host_net_fd >= 0)
        layer_set(SBX_LAYER_EXEC_NET, true,
                  "network: true: a network namespace per invocation with only loopback; egress through an HTTP "
                  "proxy at " SBX_EXEC_PROXY_ADDR ":%d (HTTP_PROXY ...) applying allow_outbound and refusing "
                  "loopback, link-local, metadata and this node's addresses",
                  SBX_EXEC_PROXY_PORT);
    else if (iso.netns)
        layer_set(SBX_LAYER_EXEC_NET, false, "network: true is refused: only a tined running as root can let "
                                             "a program out of the sandboxes' empty network namespace");
    else
        layer_set(SBX_LAYER_EXEC_NET, false, "no network namespaces: every exec program uses the host's network");
    if (unshare_layer(SBX_LAYER_PID_NS, CLONE_NEWPID, "CLONE_NEWPID", can_ns)) {
        int lifeline[2] = {-1, -1};
        pid_t init = pipe2(lifeline, O_CLOEXEC) == 0 ? fork() : -1;
        if (init == 0)
            pid_ns_init(lifeline[0]);
        if (lifeline[0] >= 0)
            close(lifeline[0]); /* the write end stays open for the zygote's life */
        if (init < 0) {
            layer_set(SBX_LAYER_PID_NS, false, "cannot start the namespace's init: %s", strerror(errno));
        } else {
            iso.pidns = true;
            layer_set(SBX_LAYER_PID_NS, true, "sandboxes cannot see tined or other processes of the host; "
                                              "each exec program is pid 1 of a namespace of its own");
        }
    }
}

/* Before the namespaces (the host's /proc and cgroup mounts are the
 * zygote's own then): a cgroup for this node's exec invocations. */
static void zygote_cgroup(void)
{
    char detail[sizeof iso.report.layers[0].detail];
    if (!iso.root) {
        layer_set(SBX_LAYER_CGROUP, false, "tined is not root: exec memory is limited per process (address "
                                           "space), not for the program's whole process tree");
        return;
    }
    iso.cgroup = sbx__cgroup_setup(getppid(), detail, sizeof detail);
    layer_set(SBX_LAYER_CGROUP, iso.cgroup, "%s", detail);
    for (int i = 0; i < 2; i++)
        snprintf(iso.report.cgroup_dirs[i], sizeof iso.report.cgroup_dirs[i], "%s", sbx__cgroup_node_dir(i));
}

/* Builds and tests the seccomp filters (zygote_build_filters); the seccomp
 * layer is on with their sizes, or off saying why. */
static void zygote_filters(void)
{
    char err[200];
    if (zygote_build_filters(err, sizeof err) != 0) {
        layer_set(SBX_LAYER_SECCOMP, false, "%s", err);
        return;
    }
    iso.seccomp = true;
    layer_set(SBX_LAYER_SECCOMP, true,
              "Lua: an allowlist of %u instructions (pipe I/O, reading the bundle, memory, clocks, exit), "
              "other calls stop the sandbox; Python: an allowlist of %u (no sockets, exec, ptrace, mounts or file "
              "writes: EPERM); exec: %u instructions denying namespaces, mounts, ptrace, keyrings, modules, BPF, "
              "io_uring; Node: %u, the exec denylist and no fork, exec or sockets (EPERM)",
              iso.lua_filter.len, iso.python_filter.len, iso.exec_filter.len, iso.node_filter.len);
}

void sbx__isolation_zygote_enter(void)
{
    memset(&iso.report, 0, sizeof iso.report);
    iso.report.enabled = iso.enabled;
    layer_set(SBX_LAYER_LUA, true, "fresh globals without io, os.execute, debug, ffi, jit control, "
                                   "string.dump, bytecode; require only inside the bundle");
    iso.root = geteuid() == 0;
    for (int r = 0; r < RLIMIT_NLIMITS; r++) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        getrlimit(r, &rl);
        iso.hard_limits[r] = rl.rlim_max;
    }
    iso.devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    tzset(); /* the time zone, while /etc is still visible */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    if (!iso.enabled) {
        for (int i = SBX_LAYER_RLIMITS; i < SBX_LAYER_COUNT; i++)
            layer_set(i, false, "--isolation off");
    } else {
        /* waitpid on the filter self-test needs SIGCHLD at its default. */
        void (*old)(int) = signal(SIGCHLD, SIG_DFL);
        zygote_cgroup();
        zygote_namespaces();
        zygote_filters();
        signal(SIGCHLD, old);
        iso.base_vsz = current_vsz();
        layer_set(SBX_LAYER_RLIMITS, true,
                  "address space = memory + %llu MiB (Lua, on top of the zygote's %llu MiB) or + %llu MiB "
                  "(exec without a cgroup); Lua: no processes, no file writes, %d descriptors; Python: the same, "
                  "its zygote's address space + memory + 32 MiB; Node: V8's heap = memory, address space = memory + "
                  "%llu MiB, %d descriptors; exec: %s, files up to %llu MiB, %d descriptors; "
                  "no core dumps",
                  LUA_AS_SLACK / MIB, (unsigned long long)(iso.base_vsz / MIB), EXEC_AS_SLACK / MIB, LUA_NOFILE,
                  SBX_NODE_AS_SLACK / MIB, SBX_NODE_NOFILE, iso.root || iso.userns ? "32 processes" : "processes not limited (no uid of their own)",
                  EXEC_FSIZE / MIB, EXEC_NOFILE);
        layer_set(SBX_LAYER_NO_NEW_PRIVS, true, "set in every sandbox: execve cannot gain privileges");
        iso.chroot_ok = iso.root || iso.userns;
        if (iso.chroot_ok && iso.mountns)
            layer_set(SBX_LAYER_ROOT_DIR, true, "a Lua sandbox's root is its bundle (read-only); an exec program's "
                                                "root is a fresh tmpfs with the bundle at /app, a private /tmp "
                                                "and read-only /usr; a Python zygote's or Node host's the same "
                                                "without /tmp, with its SDK at /tine");
        else if (iso.chroot_ok)
            layer_set(SBX_LAYER_ROOT_DIR, false, "Lua sandboxes see only their bundle, but exec programs see the "
                                                 "host's files (no mount namespace)");
        else
            layer_set(SBX_LAYER_ROOT_DIR, false, "cannot chroot without root or a user namespace: sandboxes see "
                                                 "the host's files");
    }
    if (iso.report_wr >= 0) {
        ssize_t n = write(iso.report_wr, &iso.report, sizeof iso.report);
        (void)n;
        close(iso.report_wr);
        iso.report_wr = -1;
    }
    if (iso.report_rd >= 0) {
        close(iso.report_rd);
        iso.report_rd = -1;
    }
}

/* ------------------------------------------------------- a Lua sandbox */

int sbx__isolation_enter_lua(const sbx_spec_t *spec, sbx_fds_t *fds, const char **bundle_dir, char *err,
                             size_t errlen)
{
    *bundle_dir = spec->bundle_dir;
    if (!iso.enabled)
        return 0;
    /* Descriptors: 0 and 1 on /dev/null, 2 stays (tined's log), the pipes
     * on 3 (read) and 4 (written), nothing else (no way back to the zygote
     * or the host). Through copies above 4 first: either may be on 3 or 4. */
    int rd = fcntl(fds->rd, F_DUPFD, 5), wr = fcntl(fds->wr, F_DUPFD, 5);
    if (rd < 0 || wr < 0 || dup2(rd, 3) < 0 || dup2(wr, 4) < 0)
        return tine_fail_errno(err, errlen, "cannot move the pipes to fds 3 and 4");
    fds->rd = 3;
    fds->wr = 4;
    if (iso.devnull_fd >= 0) {
        dup2(iso.devnull_fd, 0);
        dup2(iso.devnull_fd, 1);
    }
    close_from(5, -1, -1, -1);

    uint64_t as = iso.base_vsz + (uint64_t)spec->memory_mb * MIB + LUA_AS_SLACK;
    if (set_limit(RLIMIT_AS, as) != 0 || set_limit(RLIMIT_NPROC, 0) != 0 || set_limit(RLIMIT_NOFILE, LUA_NOFILE) != 0 ||
        set_limit(RLIMIT_FSIZE, 0) != 0 || set_limit(RLIMIT_CORE, 0) != 0 || set_limit(RLIMIT_MEMLOCK, 0) != 0 ||
        set_limit(RLIMIT_MSGQUEUE, 0) != 0)
        return tine_fail_errno(err, errlen, "setrlimit");
    /* A write to tined's log file past the size limit fails instead of killing. */
    signal(SIGXFSZ, SIG_IGN);

    if (iso.chroot_ok) {
        if (chroot(spec->bundle_dir) != 0 || chdir("/") != 0)
            return tine_fail_errno(err, errlen, "cannot make %s the root dir", spec->bundle_dir);
        *bundle_dir = "";
    }
    if (iso.root) {
        gid_t g = (gid_t)iso.sandbox_uid;
        /* The zygote dropped its supplementary groups already. */
        if (setgid(g) != 0 || setuid((uid_t)iso.sandbox_uid) != 0)
            return tine_fail_errno(err, errlen, "cannot switch to uid %u", iso.sandbox_uid);
    } else if (iso.userns && drop_capabilities() != 0) {
        return tine_fail_errno(err, errlen, "cannot drop capabilities");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return tine_fail_errno(err, errlen, "PR_SET_NO_NEW_PRIVS");
    if (iso.seccomp) {
        sigsys_fd = fds->wr;
        if (install_filter(&iso.lua_filter) != 0)
            return tine_fail_errno(err, errlen, "cannot install the system call filter");
    }
    return 0;
}

/* ------------------------------------------------------ an exec program */

/* Brings the loopback interface of the current network namespace up. */
static int loopback_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    rc = rc == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* A network namespace for the program with only loopback (up), and the
 * proxy's listening socket in it. The runner stays in it until it forked
 * the program. Returns the socket, or -errno with a message in err. */
static int program_network(char *err, size_t errlen)
{
    int e = unshare(CLONE_NEWNET) == 0 ? 0 : -errno;
    const char *step = "unshare(CLONE_NEWNET)";
    if (e == 0) {
        step = "bring loopback up";
        e = loopback_up();
    }
    int fd = -1;
    if (e == 0) {
        step = "listen on " SBX_EXEC_PROXY_ADDR;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(SBX_EXEC_PROXY_PORT)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0)
            e = -errno;
    }
    if (e != 0) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "cannot give the program a network of its own: %s: %s", step, strerror(-e));
        return e;
    }
    return fd;
}

int sbx__isolation_exec_runner(const sbx_spec_t *spec, sbx_fds_t fds, sbx_exec_plan_t *plan, char *err,
                              size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    plan->proxy_fd = -1;
    plan->cg.procs_fd[0] = plan->cg.procs_fd[1] = -1;
    bool want_net = iso.enabled && spec->network && iso.netns;
    if (want_net && iso.host_net_fd < 0) {
        snprintf(err, errlen, "network: true is not available on this node: sandboxes live in an empty network "
                              "namespace and only a tined running as root can let a program out");
        return -ENOTSUP;
    }
    close_from(3, fds.rd, fds.wr, want_net ? iso.host_net_fd : -1);
    if (!want_net)
        iso.host_net_fd = -1;
    iso.devnull_fd = -1;
    if (!iso.enabled)
        return 0;
    plan->private_root = iso.mountns && iso.chroot_ok;
    plan->own_uid = iso.root;
    plan->uid = (uid_t)(EXEC_UID_BASE + (uint32_t)getpid() % 65536u);
    if (iso.pidns) {
        /* The proxy's threads: a process whose children go to another pid
         * namespace cannot create threads, so the runner returns to its own
         * once the program is forked. */
        if (want_net && (iso.runner_pid_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0)
            return tine_fail_errno(err, errlen, "cannot open the runner's pid namespace");
        if (unshare(CLONE_NEWPID) != 0)
            return tine_fail_errno(err, errlen, "unshare(CLONE_NEWPID)");
        plan->pid_ns = true;
    }
    if (iso.cgroup) {
        int rc = sbx__cgroup_create(&plan->cg, spec->memory_mb ? spec->memory_mb : 16, EXEC_NPROC, err, errlen);
        if (rc != 0)
            return rc;
        plan->cgroup = true;
    }
    int fd = want_net ? program_network(err, errlen) : -1;
    if (want_net && fd < 0) {
        sbx__cgroup_remove(&plan->cg);
        plan->cgroup = false;
        return fd;
    }
    plan->proxy_fd = fd;
    return 0;
}

int sbx__isolation_exec_forked(sbx_exec_plan_t *plan, char *err, size_t errlen)
{
    if (plan->proxy_fd < 0)
        return 0;
    int e = setns(iso.host_net_fd, CLONE_NEWNET) == 0 ? 0 : errno;
    const char *what = "the host's network";
    if (e == 0 && iso.runner_pid_fd >= 0 && setns(iso.runner_pid_fd, CLONE_NEWPID) != 0) {
        e = errno;
        what = "its own pid namespace (for its threads)";
    }
    close(iso.host_net_fd);
    iso.host_net_fd = -1;
    if (iso.runner_pid_fd >= 0)
        close(iso.runner_pid_fd);
    iso.runner_pid_fd = -1;
    if (e != 0) {
        close(plan->proxy_fd);
        plan->proxy_fd = -1;
        snprintf(err, errlen, "the egress proxy cannot return to %s: %s", what, strerror(e));
        return -e;
    }
    return 0;
}

/* Mount flags of the mount holding `path` that a read-only remount of a bind
 * of it must keep (a user namespace may not clear locked flags). */
static unsigned long kept_mount_flags(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* Binds src onto dst (created as a directory or an empty file like src),
 * read-only unless `writable`. Returns 0 or -errno. */
static int bind_path(const char *src, const char *dst, bool writable)
{
    struct stat st;
    if (stat(src, &st) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(dst, 0755) != 0 && errno != EEXIST)
            return -errno;
    } else {
        int f = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (f < 0)
            return -errno;
        close(f);
    }
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0)
        return -errno;
    if (writable)
        return 0;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept_mount_flags(src);
    if (mount(NULL, dst, NULL, flags, NULL) != 0)
        return -errno;
    return 0;
}

/* Mirrors a host entry of the root dir (/usr, /bin, ...) into root: symlinks
 * as symlinks (merged /usr), directories as read-only binds. Missing
 * entries are skipped. Returns 0 or -errno. */
static int mirror_entry(const char root[200], const char *name)
{
    char src[64], dst[PATH_MAX], link[PATH_MAX];
    snprintf(src, sizeof src, "/%s", name);
    snprintf(dst, sizeof dst, "%s/%s", root, name);
    struct stat st;
    if (lstat(src, &st) != 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(src, link, sizeof link - 1);
        if (n < 0)
            return -errno;
        link[n] = '\0';
        return symlink(link, dst) == 0 ? 0 : -errno;
    }
    return S_ISDIR(st.st_mode) ? bind_path(src, dst, false) : 0;
}

/* Binds /etc/<name> (following a symlink to its file) when it exists. */
static int mirror_etc(const char root[200], const char *name)
{
    char src[PATH_MAX], real[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "/etc/%s", name);
    if (realpath(src, real) == NULL)
        return 0;
    snprintf(dst, sizeof dst, "%s/etc/%s", root, name);
    return bind_path(real, dst, false);
}

/* What a root built by build_root holds beside the system's read-only
 * directories: the bundle read-only at SBX_EXEC_APP_DIR, and optionally a
 * private writable SBX_EXEC_WORK_DIR and a read-only SDK directory. */
typedef struct {
    const char *bundle_dir;
    uint32_t work_mb;   /* size of the private /tmp; 0: none */
    unsigned work_uid;  /* its owner */
    bool network;       /* the resolver's and CA files too */
    const char *sdk_dir; /* bound at SBX_PYTHON_SDK_DIR (= SBX_EXEC_SDK_DIR) when not NULL */
} root_plan_t;

/* Builds a root on a tmpfs mounted over the node's tmp dir (in the caller's
 * own mount namespace, which it unshares, so nobody else sees it) and moves
 * into it, dropping every path to the host's files. Returns 0, or -errno
 * with the step that failed in err. */
static int build_root(const root_plan_t *rp, char *err, size_t errlen)
{
    const char *root = iso.tmp_dir;
    char path[PATH_MAX], opts[128];
    int rc = 0;
    const char *step = "";
#define STEP(what, expr)                                                                                           \
    do {                                                                                                           \
        step = (what);                                                                                             \
        if ((rc = (expr)) != 0)                                                                                    \
            goto fail;                                                                                             \
    } while (0)
#define SYS(expr) ((expr) == 0 ? 0 : -errno)
    STEP("unshare(CLONE_NEWNS)", SYS(unshare(CLONE_NEWNS)));
    STEP("mount the root tmpfs",
         SYS(mount("tine-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=0755")));
    snprintf(path, sizeof path, "%s" SBX_EXEC_APP_DIR, root);
    STEP("bind the bundle at /app", bind_path(rp->bundle_dir, path, false));
    if (rp->sdk_dir) {
        snprintf(path, sizeof path, "%s" SBX_PYTHON_SDK_DIR, root);
        STEP("bind the SDK at " SBX_PYTHON_SDK_DIR, bind_path(rp->sdk_dir, path, false));
    }
    if (rp->work_mb) {
        snprintf(path, sizeof path, "%s" SBX_EXEC_WORK_DIR, root);
        STEP("mkdir /tmp", SYS(mkdir(path, 0700)));
        /* The working dir: private, in memory, no bigger than the function's memory. */
        snprintf(opts, sizeof opts, "size=%um,nr_inodes=16384,mode=0700,uid=%u,gid=%u", rp->work_mb, rp->work_uid,
                 rp->work_uid);
        STEP("mount /tmp", SYS(mount("tine-tmp", path, "tmpfs", MS_NOSUID | MS_NODEV, opts)));
    }
    static const char *const system_dirs[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++)
        STEP(system_dirs[i], mirror_entry(root, system_dirs[i]));
    snprintf(path, sizeof path, "%s/etc", root);
    STEP("mkdir /etc", SYS(mkdir(path, 0755)));
    static const char *const etc_always[] = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives",
                                             "localtime"};
    static const char *const etc_network[] = {"resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf",
                                              "services", "protocols", "ssl", "ca-certificates",
                                              "ca-certificates.conf"};
    for (size_t i = 0; i < sizeof etc_always / sizeof etc_always[0]; i++)
        STEP(etc_always[i], mirror_etc(root, etc_always[i]));
    for (size_t i = 0; rp->network && i < sizeof etc_network / sizeof etc_network[0]; i++)
        STEP(etc_network[i], mirror_etc(root, etc_network[i]));
    snprintf(path, sizeof path, "%s/dev", root);
    STEP("mkdir /dev", SYS(mkdir(path, 0755)));
    static const char *const devices[] = {"null", "zero", "full", "random", "urandom"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        char src[32], dst[PATH_MAX];
        snprintf(src, sizeof src, "/dev/%s", devices[i]);
        snprintf(dst, sizeof dst, "%s/dev/%s", root, devices[i]);
        STEP(devices[i], bind_path(src, dst, true));
    }
    STEP("make the root read-only",
         SYS(mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024")));
    STEP("chdir to the new root", SYS(chdir(root)));
    STEP("pivot_root", SYS((int)syscall(SYS_pivot_root, ".", ".")));
    /* The old root is stacked on "/" now: detach it and all it holds. */
    STEP("detach the host's root", SYS(umount2(".", MNT_DETACH)));
    STEP("chdir to the working dir", SYS(chdir(rp->work_mb ? SBX_EXEC_WORK_DIR : SBX_EXEC_APP_DIR)));
#undef STEP
#undef SYS
    return 0;
fail:
    snprintf(err, errlen, "cannot build the %s root: %s: %s", rp->sdk_dir ? "runtime's" : "program's", step,
             strerror(-rc));
    return rc;
}

int sbx__isolation_exec_child(const sbx_spec_t *spec, const sbx_exec_plan_t *plan, const char *workdir, char *err,
                              size_t errlen)
{
    if (!iso.enabled)
        return chdir(workdir) == 0 ? 0 : tine_fail_errno(err, errlen, "chdir %s", workdir);
    int e;
    if (plan->cgroup && (e = sbx__cgroup_enter(&plan->cg)) != 0) {
        snprintf(err, errlen, "cannot enter the invocation's cgroup: %s", strerror(-e));
        return e;
    }
    /* The program stays in the network namespace the runner made for it
     * (or the zygote's empty one): the way back and the proxy's socket are
     * the runner's alone. */
    if (iso.host_net_fd >= 0) {
        close(iso.host_net_fd);
        iso.host_net_fd = -1;
    }
    if (iso.runner_pid_fd >= 0) {
        close(iso.runner_pid_fd);
        iso.runner_pid_fd = -1;
    }
    if (plan->proxy_fd >= 0)
        close(plan->proxy_fd);
    /* Not root: a user namespace of its own gives the program a process
     * count of its own (RLIMIT_NPROC is counted per user namespace). */
    if (iso.userns && (e = enter_user_ns()) != 0) {
        snprintf(err, errlen, "cannot enter a user namespace: %s", strerror(-e));
        return e;
    }
    /* System V IPC and POSIX message queues of its own: what the program
     * leaves there dies with it, and no other app's program sees it. */
    if (iso.ipcns && unshare(CLONE_NEWIPC) != 0)
        return tine_fail_errno(err, errlen, "unshare(CLONE_NEWIPC)");
    if (plan->private_root) {
        root_plan_t rp = {.bundle_dir = spec->bundle_dir,
                          .work_mb = spec->memory_mb ? spec->memory_mb : 16,
                          .work_uid = plan->own_uid ? (unsigned)plan->uid : 0,
                          .network = spec->network,
                          .sdk_dir = sbx__sdks_dir()[0] ? sbx__sdks_dir() : NULL};
        if ((e = build_root(&rp, err, errlen)) != 0)
            return e;
    } else if (chdir(workdir) != 0) {
        return tine_fail_errno(err, errlen, "chdir %s", workdir);
    }
    if (plan->own_uid) {
        if (setgid((gid_t)plan->uid) != 0 || setuid(plan->uid) != 0)
            return tine_fail_errno(err, errlen, "cannot switch to uid %u", (unsigned)plan->uid);
    } else if (iso.userns && drop_capabilities() != 0) {
        return tine_fail_errno(err, errlen, "cannot drop capabilities");
    }
    /* With a cgroup, `memory` bounds the whole process tree there; an
     * address space limit would only break programs that reserve much
     * more than they touch (JITs, Go). */
    uint64_t as = plan->cgroup ? RLIM_INFINITY : (uint64_t)spec->memory_mb * MIB + EXEC_AS_SLACK;
    /* The process limit counts every process of the uid (in the user
     * namespace): only with a uid or namespace of its own does it bound
     * this program alone. */
    if (set_limit(RLIMIT_AS, as) != 0 || ((plan->own_uid || iso.userns) && set_limit(RLIMIT_NPROC, EXEC_NPROC) != 0) ||
        set_limit(RLIMIT_NOFILE, EXEC_NOFILE) != 0 || set_limit(RLIMIT_FSIZE, EXEC_FSIZE) != 0 ||
        set_limit(RLIMIT_CORE, 0) != 0 || set_limit(RLIMIT_MEMLOCK, 0) != 0)
        return tine_fail_errno(err, errlen, "setrlimit");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return tine_fail_errno(err, errlen, "PR_SET_NO_NEW_PRIVS");
    if (iso.seccomp && install_filter(&iso.exec_filter) != 0)
        return tine_fail_errno(err, errlen, "cannot install the system call filter");
    /* After the uid switch, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    return 0;
}

/* ------------------------------------------------------ a Python zygote */

bool sbx__isolation_python_pidns(void)
{
    return iso.enabled && iso.pidns && unshare(CLONE_NEWPID) == 0;
}

int sbx__isolation_enter_python(int sock, sbx_python_plan_t *plan, char *err, size_t errlen)
{
    plan->exe_fd = -1;
    plan->bundle_seen = plan->bundle_dir;
    plan->sdk_seen = plan->sdk_dir;
    plan->isolated = iso.enabled;
    /* Descriptors: 0 and 1 on /dev/null, 2 stays (tined's log), the control
     * socket on 3, this process's statm on 4 (opened while /proc is there:
     * the sandboxes' address space limit starts from the zygote's), python3
     * on SBX_PYTHON_EXE_FD for the exec; nothing else. */
    int s = fcntl(sock, F_DUPFD, 5);
    if (s < 0 || dup2(s, SBX_PYTHON_CONTROL_FD) < 0)
        return tine_fail_errno(err, errlen, "cannot move the control socket to fd %d", SBX_PYTHON_CONTROL_FD);
    int statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (statm < 0 || dup2(statm, SBX_PYTHON_STATM_FD) < 0)
        return tine_fail_errno(err, errlen, "cannot open /proc/self/statm");
    if (iso.devnull_fd >= 0) {
        dup2(iso.devnull_fd, 0);
        dup2(iso.devnull_fd, 1);
    }
    int exe = -1;
    if (iso.enabled && iso.seccomp) {
        int fd = open(plan->python, O_PATH | O_CLOEXEC);
        if (fd < 0 || (exe = fcntl(fd, F_DUPFD_CLOEXEC, SBX_PYTHON_EXE_FD)) != SBX_PYTHON_EXE_FD)
            return tine_fail_errno(err, errlen, "cannot open %s", plan->python);
    }
    close_from(5, exe, -1, -1);
    if (!iso.enabled)
        return 0;
    /* Not root: a user namespace of its own, so its process limit counts
     * only its own processes, and the mounts below belong to it. */
    int e;
    if (iso.userns && (e = enter_user_ns()) != 0) {
        snprintf(err, errlen, "cannot enter a user namespace: %s", strerror(-e));
        return e;
    }
    if (iso.ipcns && unshare(CLONE_NEWIPC) != 0)
        return tine_fail_errno(err, errlen, "unshare(CLONE_NEWIPC)");
    if (iso.mountns && iso.chroot_ok) {
        root_plan_t rp = {.bundle_dir = plan->bundle_dir, .sdk_dir = plan->sdk_dir};
        if ((e = build_root(&rp, err, errlen)) != 0)
            return e;
        plan->bundle_seen = SBX_EXEC_APP_DIR;
        plan->sdk_seen = SBX_PYTHON_SDK_DIR;
    } else if (chdir(plan->bundle_dir) == 0) {
        /* On the host's files: the bundle is found from the working dir,
         * entered now, while the state dir above it (0700) can be passed. */
        plan->bundle_seen = ".";
    } else {
        return tine_fail_errno(err, errlen, "cannot enter %s", plan->bundle_dir);
    }
    if (iso.root) {
        if (setgid((gid_t)plan->uid) != 0 || setuid(plan->uid) != 0)
            return tine_fail_errno(err, errlen, "cannot switch to uid %u", (unsigned)plan->uid);
    } else if (iso.userns && drop_capabilities() != 0) {
        return tine_fail_errno(err, errlen, "cannot drop capabilities");
    }
    /* The zygote's limits, its sandboxes' ceiling: each lowers its address
     * space to its function's memory after the fork. The descriptor limit
     * is also what keeps SBX_PYTHON_EXE_FD from being made again. */
    uint64_t nproc = (uint64_t)plan->processes + SBX_PYTHON_SPARE_PROCESSES;
    /* Node: every process has its threads (V8's, libuv's), which count;
     * the address space is limited per process (sbx__isolation_node_child). */
    uint64_t as = plan->node ? RLIM_INFINITY : (uint64_t)plan->memory_mb * MIB + SBX_PYTHON_AS_SLACK;
    if (plan->node)
        nproc *= SBX_NODE_THREADS;
    if (set_limit(RLIMIT_AS, as) != 0 || set_limit(RLIMIT_NPROC, nproc) != 0 ||
        set_limit(RLIMIT_NOFILE, plan->node ? SBX_NODE_HOST_NOFILE : SBX_PYTHON_NOFILE) != 0 ||
        set_limit(RLIMIT_FSIZE, plan->node ? RLIM_INFINITY : 0) != 0 || set_limit(RLIMIT_CORE, 0) != 0 ||
        set_limit(RLIMIT_MEMLOCK, 0) != 0 || set_limit(RLIMIT_MSGQUEUE, 0) != 0)
        return tine_fail_errno(err, errlen, "setrlimit");
    signal(SIGXFSZ, SIG_IGN);
    /* After the uid switch, which clears it, and before the filter, which
     * allows no prctl. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return tine_fail_errno(err, errlen, "PR_SET_NO_NEW_PRIVS");
    /* The Node host runs no app code: its children get the Node filter
     * before they start node (sbx__isolation_node_child). */
    if (iso.seccomp && !plan->node && install_filter(&iso.python_filter) != 0)
        return tine_fail_errno(err, errlen, "cannot install the system call filter");
    plan->exe_fd = exe;
    return 0;
}

int sbx__isolation_node_child(uint32_t memory_mb, char *err, size_t errlen)
{
    if (!iso.enabled)
        return 0;
    if (set_limit(RLIMIT_AS, (uint64_t)memory_mb * MIB + SBX_NODE_AS_SLACK) != 0 ||
        set_limit(RLIMIT_NOFILE, SBX_NODE_NOFILE) != 0 || set_limit(RLIMIT_FSIZE, 0) != 0)
        return tine_fail_errno(err, errlen, "setrlimit");
    if (iso.seccomp && install_filter(&iso.node_filter) != 0)
        return tine_fail_errno(err, errlen, "cannot install the system call filter");
    return 0;
}
