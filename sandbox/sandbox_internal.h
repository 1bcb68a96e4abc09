/* Private to sandbox/: what the zygote (zygote.c), the Lua host (lua_host.c)
 * and the exec runner (exec.c) share with the isolation layers
 * (isolation.c). */
#ifndef TINE_SANDBOX_INTERNAL_H
#define TINE_SANDBOX_INTERNAL_H

#include "sandbox.h"

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
 * sandbox now sees it. Returns 0, or -1 with a message in err (the sandbox
 * must then report it and exit). */
int sbx__isolation_enter_lua(const sbx_spec_t *spec, sbx_fds_t *fds, const char **bundle_dir, char *err,
                             size_t errlen);

/* What an exec runner needs to know to start its program. */
typedef struct {
    bool private_root; /* the program gets a fresh root (mount namespace) */
    bool pid_ns;       /* the program runs as pid 1 of its own pid namespace */
    bool own_uid;      /* the program runs as a uid of its own */
    uid_t uid;         /* that uid (and gid) */
} sbx_exec_plan_t;

/* In an exec runner (forked by the zygote), before it forks the program:
 * closes every descriptor but 0-2 and its pipes, decides the plan for the
 * program, and enters a new pid namespace for it when one is planned.
 * Returns 0, or -1 with a message in err. */
int sbx__isolation_exec_runner(const sbx_spec_t *spec, sbx_fds_t fds, sbx_exec_plan_t *plan, char *err,
                              size_t errlen);

/* Removes `name` below the directory `parent` (an fd or AT_FDCWD) and
 * everything in it, never following a symlink. */
void sbx__remove_tree(int parent, const char *name);

/* The node's temporary directory for exec working dirs. */
const char *sbx__isolation_tmp_dir(void);

/* Where a program with a root of its own (plan->private_root) sees its
 * bundle and its working dir. */
#define SBX_EXEC_APP_DIR "/app"
#define SBX_EXEC_WORK_DIR "/tmp"

/* In the program's child process, after its stdio is in place and its
 * environment and arguments are built (no allocation may follow: the
 * address space limit is set here), before execve: builds its root (the
 * bundle read-only at SBX_EXEC_APP_DIR, a private size-limited
 * SBX_EXEC_WORK_DIR, read-only system dirs) when plan->private_root, else
 * moves to `workdir`; joins the host network when spec->network; switches
 * to the plan's uid, applies rlimits, no_new_privs and the exec system call
 * filter. Returns 0, or -1 with a message in err. */
int sbx__isolation_exec_child(const sbx_spec_t *spec, const sbx_exec_plan_t *plan, const char *workdir, char *err,
                              size_t errlen);

#endif
