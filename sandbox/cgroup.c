/* A cgroup per exec invocation: `memory` bounds the program's whole process
 * tree (its children, its tmpfs /tmp, its System V shared memory) instead of
 * each process's address space, and the number of tasks is capped. The
 * zygote makes one cgroup for this node's programs below tined's own
 * (sbx__cgroup_setup, once); each exec runner makes one for its invocation
 * inside it (sbx__cgroup_create), the program's child moves itself there
 * before anything else (sbx__cgroup_enter), and the runner reads whether the
 * kernel's OOM killer fired and removes it when the program is gone.
 *
 * cgroup v1 (a `memory` hierarchy, `pids` when mounted) and v2 (one tree,
 * the controllers handed down through cgroup.subtree_control) are both
 * supported; where neither can be used the layer is reported off with the
 * reason and programs keep the per-process limits (RLIMIT_AS, RLIMIT_NPROC). */
#define _GNU_SOURCE
#include "sandbox_internal.h"
#include "tine_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)

enum { CG_MEMORY = 0, CG_PIDS = 1 };

static struct {
    int version; /* 0 (no cgroups), 1 or 2 */
    /* "tine-<pid namespace>-": the start of the names of nodes' cgroups
     * whose zygote pid can be checked from here (nodes in other pid
     * namespaces may share tined's cgroup: theirs are never swept). */
    char prefix[48];
    char node[2][SBX_CGROUP_PATH]; /* this node's cgroup per hierarchy, "" for none */
    bool memsw;                    /* v1: swap is accounted (memory.memsw.*) */
    bool swap_max;                 /* v2: memory.swap.max exists */
} cg;

/* out = "dir/name". Returns 0 or -ENAMETOOLONG (out then holds "").*/
static int join(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n >= 0 && n < PATH_MAX)
        return 0;
    out[0] = '\0';
    return -ENAMETOOLONG;
}

/* ------------------------------------------------------------ locating */

/* Whether the comma-separated `list` (length n) holds `word`. */
static bool list_has(const char *list, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list, *end = list + n; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = (size_t)((comma ? comma : end) - p);
        if (len == wl && memcmp(p, word, wl) == 0)
            return true;
        p += len + 1;
    }
    return false;
}

/* Copies the mountinfo field at p (up to a space or the line's end) into
 * out, decoding the kernel's \ooo escapes. Returns the end of the field. */
static const char *mount_field(const char *p, char *out, size_t outlen)
{
    size_t n = 0;
    while (*p && *p != ' ' && *p != '\n') {
        char c = *p++;
        if (c == '\\' && p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7') {
            c = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
            p += 3;
        }
        if (n + 1 < outlen)
            out[n++] = c;
    }
    out[n] = '\0';
    return p;
}

int sbx__cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *controller, char *out, size_t outlen)
{
    /* tined's cgroup in that hierarchy: "N:ctrl,ctrl:/path" (v1) or "0::/path" (v2). */
    char path[SBX_CGROUP_PATH] = "";
    bool found = false;
    for (const char *line = proc_cgroup; line && *line && !found;) {
        const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        const char *c1 = memchr(line, ':', (size_t)(end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
        if (c2 != NULL) {
            size_t cl = (size_t)(c2 - c1 - 1);
            bool match = controller ? list_has(c1 + 1, cl, controller) : cl == 0 && c1 - line == 1 && line[0] == '0';
            size_t pl = (size_t)(end - c2 - 1);
            if (match && pl < sizeof path) {
                memcpy(path, c2 + 1, pl);
                path[pl] = '\0';
                found = path[0] == '/';
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!found)
        return -ENOENT;
    /* Its mount: "id parent maj:min ROOT MOUNTPOINT opts [tags] - FSTYPE source SUPEROPTS". */
    for (const char *line = mountinfo; line && *line;) {
        const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        const char *sep = strstr(line, " - ");
        char root[SBX_CGROUP_PATH], point[SBX_CGROUP_PATH], fstype[32];
        if (sep != NULL && sep < end) {
            const char *p = line;
            for (int skip = 0; skip < 3 && p; skip++) { /* id, parent, maj:min */
                p = strchr(p, ' ');
                p = p ? p + 1 : NULL;
            }
            const char *q = sep + 3;
            if (p != NULL && p < sep) {
                p = mount_field(p, root, sizeof root);
                mount_field(*p == ' ' ? p + 1 : p, point, sizeof point);
                q = mount_field(q, fstype, sizeof fstype);
                const char *opts = q < end ? memrchr(q, ' ', (size_t)(end - q)) : NULL;
                opts = opts ? opts + 1 : end;
                bool match = controller
                                 ? strcmp(fstype, "cgroup") == 0 && list_has(opts, (size_t)(end - opts), controller)
                                 : strcmp(fstype, "cgroup2") == 0;
                size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
                if (match && strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0')) {
                    const char *rel = path + rl;
                    int n = snprintf(out, outlen, "%s%s", point, strcmp(rel, "/") == 0 ? "" : rel);
                    return n > 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

/* ------------------------------------------------------------ small tools */

/* Whether the file dir/name holds `word` among its space-separated words. */
static bool file_has_word(const char *dir, const char *name, const char *word)
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    join(path, dir, name);
    if (tine_try_read_file(path, &text, &len) != 0)
        return false;
    bool has = false;
    size_t wl = strlen(word);
    for (char *t = strtok(text, " \n"); t && !has; t = strtok(NULL, " \n"))
        has = strlen(t) == wl && strcmp(t, word) == 0;
    free(text);
    return has;
}

/* Writes text to the file `name` of the cgroup dir. Returns 0 or -errno
 * (-ENAMETOOLONG for a path too long). */
static int write_in(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    int e = join(path, dir, name);
    return e != 0 ? e : sbx__write_text(path, text);
}

/* Removes the cgroup `dir`, retrying for a while when it is still busy
 * (its last tasks being torn down); with kill_tasks, processes left in it
 * are killed (without a pid namespace a program's setsid children outlive
 * it). Returns 0 or -errno. */
static int remove_cgroup(const char *dir, int tries, bool kill_tasks)
{
    char path[PATH_MAX], *procs = NULL;
    size_t len = 0;
    for (int i = 0;; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY || i + 1 >= tries)
            return -errno;
        join(path, dir, "cgroup.procs");
        if (kill_tasks && tine_try_read_file(path, &procs, &len) == 0) {
            for (char *t = strtok(procs, "\n"); t; t = strtok(NULL, "\n"))
                if (atol(t) > 1)
                    kill((pid_t)atol(t), SIGKILL);
            free(procs);
            procs = NULL;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Whether the process `pid` runs (a zombie, killed but not reaped yet by
 * whoever inherited it, does not). */
static bool pid_alive(long pid)
{
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return false;
    char path[64], *stat = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (tine_try_read_file(path, &stat, &len) != 0)
        return true;
    const char *close = strrchr(stat, ')'); /* "pid (comm) S ..." */
    bool zombie = close != NULL && close[1] == ' ' && close[2] == 'Z';
    free(stat);
    return !zombie;
}

/* Removes the cgroups in `dir` named PREFIX<pid>[SUFFIX] whose pid is gone
 * (with the cgroups below them). */
static void sweep(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        if (strncmp(e->d_name, prefix, pl) != 0)
            continue;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (pid <= 0 || end == e->d_name + pl || (*end != '\0' && *end != '.') || pid == (long)getpid() ||
            pid_alive(pid))
            continue;
        char path[PATH_MAX];
        join(path, dir, e->d_name);
        if (*end == '.') /* a v2 leaf holding a tined: never killed, removed once empty */
            remove_cgroup(path, 1, false);
        else
            sbx__cgroup_remove_node(path);
    }
    closedir(d);
}

void sbx__cgroup_remove_node(const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[PATH_MAX];
            join(path, dir, e->d_name);
            remove_cgroup(path, 250, true);
        }
        closedir(d);
    }
    remove_cgroup(dir, 250, true);
}

/* ------------------------------------------------------------ the zygote */

/* v1: this node's cgroup in the hierarchy of `controller`, below tined's
 * (`parent`). Returns 0 or -errno. */
static int make_node_v1(const char *parent, char out[SBX_CGROUP_PATH])
{
    sweep(parent, cg.prefix);
    int n = snprintf(out, SBX_CGROUP_PATH, "%s/%s%ld", parent, cg.prefix, (long)getpid());
    if (n < 0 || n >= SBX_CGROUP_PATH)
        return -ENAMETOOLONG;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Whether every process of the cgroup `dir` is tined or this zygote. */
static bool holds_only(const char *dir, pid_t tined)
{
    char *procs = NULL, path[PATH_MAX];
    size_t len = 0;
    join(path, dir, "cgroup.procs");
    if (tine_try_read_file(path, &procs, &len) != 0)
        return false;
    bool only_ours = true;
    for (char *t = strtok(procs, "\n"); t; t = strtok(NULL, "\n"))
        only_ours &= atol(t) == (long)tined || atol(t) == (long)getpid();
    free(procs);
    return only_ours;
}

/* v2: the controllers must be enabled in the subtree of tined's cgroup X,
 * which the kernel refuses while X holds processes. When those are only
 * tined and the zygote, they move to a leaf of their own (X/tine-NS-PID.node),
 * as systemd's delegation expects; other processes are not ours to move.
 * Then this node's cgroup X/tine-NS-PID hands memory and pids on to the
 * invocations' cgroups. Returns 0, or -errno with the reason in why. */
static int make_node_v2(const char *x, pid_t tined, char out[SBX_CGROUP_PATH], char *why, size_t whylen)
{
    const char *enable = file_has_word(x, "cgroup.controllers", "pids") ? "+memory +pids" : "+memory";
    sweep(x, cg.prefix);
    int e = file_has_word(x, "cgroup.subtree_control", "memory") ? 0 : write_in(x, "cgroup.subtree_control", enable);
    if (e == -EBUSY && !holds_only(x, tined)) {
        tine_fail(why, whylen,
                  "cgroup v2: tined's cgroup %s holds other processes, so it cannot hand the memory "
                  "controller down; run tined in a cgroup of its own (systemd: Delegate=yes)",
                  x);
        return e;
    }
    if (e == -EBUSY) {
        char leaf[PATH_MAX], pid[24];
        snprintf(leaf, sizeof leaf, "%s/%s%ld.node", x, cg.prefix, (long)getpid());
        snprintf(pid, sizeof pid, "%ld", (long)tined);
        e = mkdir(leaf, 0755) != 0 && errno != EEXIST ? -errno : 0;
        if (e == 0)
            e = write_in(leaf, "cgroup.procs", pid);
        if (e == 0)
            e = write_in(leaf, "cgroup.procs", "0");
        if (e == 0)
            e = write_in(x, "cgroup.subtree_control", enable);
        if (e != 0) {
            tine_fail(why, whylen, "cannot move tined to %s to enable memory in %s: %s", leaf, x, strerror(-e));
            return e;
        }
    } else if (e != 0) {
        tine_fail(why, whylen, "cannot enable memory in %s/cgroup.subtree_control: %s", x, strerror(-e));
        return e;
    }
    int n = snprintf(out, SBX_CGROUP_PATH, "%s/%s%ld", x, cg.prefix, (long)getpid());
    e = n < 0 || n >= SBX_CGROUP_PATH ? -ENAMETOOLONG : mkdir(out, 0755) != 0 && errno != EEXIST ? -errno : 0;
    if (e == 0)
        e = write_in(out, "cgroup.subtree_control", enable);
    if (e != 0) {
        tine_fail(why, whylen, "cannot create a cgroup below %s with memory for its children: %s", x, strerror(-e));
        return e;
    }
    return 0;
}

bool sbx__cgroup_setup(pid_t tined, char *detail, size_t detail_len)
{
    memset(&cg, 0, sizeof cg);
    struct stat ns;
    snprintf(cg.prefix, sizeof cg.prefix, "tine-%llu-",
             stat("/proc/self/ns/pid", &ns) == 0 ? (unsigned long long)ns.st_ino : 0ull);
    char *self = NULL, *mounts = NULL;
    size_t len = 0;
    if (tine_try_read_file("/proc/self/cgroup", &self, &len) != 0 ||
        tine_try_read_file("/proc/self/mountinfo", &mounts, &len) != 0) {
        snprintf(detail, detail_len, "cannot read /proc/self/cgroup and /proc/self/mountinfo: %s", strerror(errno));
        free(self);
        return false;
    }
    char parent[SBX_CGROUP_PATH];
    int e;
    if (sbx__cgroup_locate(self, mounts, "memory", parent, sizeof parent) == 0) {
        if ((e = make_node_v1(parent, cg.node[CG_MEMORY])) != 0) {
            snprintf(detail, detail_len, "cannot create a cgroup below %s: %s", parent, strerror(-e));
        } else {
            cg.version = 1;
            char memsw[PATH_MAX];
            join(memsw, cg.node[CG_MEMORY], "memory.memsw.limit_in_bytes");
            cg.memsw = access(memsw, W_OK) == 0;
            if (sbx__cgroup_locate(self, mounts, "pids", parent, sizeof parent) != 0 ||
                make_node_v1(parent, cg.node[CG_PIDS]) != 0)
                cg.node[CG_PIDS][0] = '\0';
        }
    } else if (sbx__cgroup_locate(self, mounts, NULL, parent, sizeof parent) == 0 &&
               file_has_word(parent, "cgroup.controllers", "memory")) {
        if (make_node_v2(parent, tined, cg.node[CG_MEMORY], detail, detail_len) == 0) {
            cg.version = 2;
            if (file_has_word(cg.node[CG_MEMORY], "cgroup.subtree_control", "pids"))
                memcpy(cg.node[CG_PIDS], cg.node[CG_MEMORY], sizeof cg.node[CG_PIDS]);
            char swap[PATH_MAX];
            join(swap, cg.node[CG_MEMORY], "memory.swap.max");
            cg.swap_max = access(swap, F_OK) == 0 || errno != ENOENT;
        }
    } else {
        snprintf(detail, detail_len,
                 "no memory controller for tined's cgroup (neither a cgroup v1 memory hierarchy "
                 "nor cgroup v2 with memory is mounted): exec memory is limited per process");
    }
    free(self);
    free(mounts);
    if (cg.version != 0) {
        bool no_swap = cg.version == 1 ? cg.memsw : cg.swap_max;
        char tasks[48];
        snprintf(tasks, sizeof tasks, cg.node[CG_PIDS][0] ? "at most %d tasks" : "no task limit (no pids controller)",
                 SBX_EXEC_NPROC);
        snprintf(detail, detail_len,
                 "cgroup v%d below %s: each exec invocation gets a cgroup of its own, `memory` for its whole "
                 "process tree (tmpfs /tmp and shared memory included, %s), %s; past it the kernel kills it",
                 cg.version, cg.node[CG_MEMORY], no_swap ? "no swap" : "swap not accounted by this kernel", tasks);
    }
    return cg.version != 0;
}

const char *sbx__cgroup_node_dir(int i)
{
    return i >= 0 && i < 2 && cg.version ? cg.node[i] : "";
}

/* ------------------------------------------------------- one invocation */

int sbx__cgroup_create(sbx_exec_cgroup_t *c, uint32_t memory_mb, unsigned max_tasks, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->procs_fd[0] = c->procs_fd[1] = -1;
    if (cg.version == 0)
        return 0;
    char bytes[32], tasks[16];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)memory_mb * MIB);
    snprintf(tasks, sizeof tasks, "%u", max_tasks);
    int e = 0;
    const char *step = "";
    for (int i = 0; i < 2 && e == 0; i++) {
        if (cg.node[i][0] == '\0' || (i == CG_PIDS && cg.version == 2))
            continue; /* v2: one cgroup holds both controllers */
        sweep(cg.node[i], "exec-");
        int n = snprintf(c->dir[i], sizeof c->dir[i], "%s/exec-%ld", cg.node[i], (long)getpid());
        step = "mkdir";
        if (n < 0 || (size_t)n >= sizeof c->dir[i]) {
            e = -ENAMETOOLONG;
            c->dir[i][0] = '\0';
            break;
        }
        remove_cgroup(c->dir[i], 50, true); /* a leftover of a runner that had this pid */
        if (mkdir(c->dir[i], 0755) != 0) {
            e = -errno;
            c->dir[i][0] = '\0';
            break;
        }
        char procs[PATH_MAX];
        join(procs, c->dir[i], "cgroup.procs");
        c->procs_fd[i] = open(procs, O_WRONLY | O_CLOEXEC);
        step = "open cgroup.procs";
        if (c->procs_fd[i] < 0)
            e = -errno;
    }
    const char *mem = c->dir[CG_MEMORY];
    const char *pids = cg.version == 2 ? (cg.node[CG_PIDS][0] ? mem : "") : c->dir[CG_PIDS];
    if (e == 0 && cg.version == 1) {
        step = "memory.limit_in_bytes";
        e = write_in(mem, "memory.limit_in_bytes", bytes);
        if (e == 0 && cg.memsw) {
            step = "memory.memsw.limit_in_bytes";
            e = write_in(mem, "memory.memsw.limit_in_bytes", bytes);
        }
    } else if (e == 0) {
        step = "memory.max";
        e = write_in(mem, "memory.max", bytes);
        if (e == 0 && cg.swap_max) {
            step = "memory.swap.max";
            e = write_in(mem, "memory.swap.max", "0");
        }
        if (e == 0) {
            step = "memory.oom.group";
            e = write_in(mem, "memory.oom.group", "1");
            e = e == -ENOENT ? 0 : e; /* before Linux 4.19 */
        }
    }
    if (e == 0 && pids[0]) {
        step = "pids.max";
        e = write_in(pids, "pids.max", tasks);
    }
    if (e != 0) {
        snprintf(err, errlen, "cannot make the invocation's cgroup below %s: %s: %s", cg.node[CG_MEMORY], step,
                 strerror(-e));
        sbx__cgroup_remove(c);
        return e;
    }
    return 0;
}

int sbx__cgroup_enter(const sbx_exec_cgroup_t *c)
{
    int e = 0;
    for (int i = 0; i < 2; i++) {
        if (c->procs_fd[i] < 0)
            continue;
        /* "0": the writing process, whatever pid namespace it is in. */
        if (e == 0 && write(c->procs_fd[i], "0", 1) != 1)
            e = -errno;
        close(c->procs_fd[i]);
    }
    return e;
}

bool sbx__cgroup_out_of_memory(const sbx_exec_cgroup_t *c)
{
    if (c->dir[CG_MEMORY][0] == '\0')
        return false;
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    join(path, c->dir[CG_MEMORY], cg.version == 1 ? "memory.oom_control" : "memory.events");
    if (tine_try_read_file(path, &text, &len) != 0)
        return false;
    const char *k = strstr(text, "oom_kill ");
    bool killed = k != NULL && (k == text || k[-1] == '\n') && strtoull(k + 9, NULL, 10) > 0;
    free(text);
    return killed;
}

void sbx__cgroup_remove(sbx_exec_cgroup_t *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->procs_fd[i] >= 0)
            close(c->procs_fd[i]);
        c->procs_fd[i] = -1;
        if (c->dir[i][0])
            remove_cgroup(c->dir[i], 50, true);
        c->dir[i][0] = '\0';
    }
}
