/* The invoker: keeps a pool of warm sandboxes per (app version, function),
 * sends each sandbox its invocations over its pipes (it runs them one at a
 * time, in order), and turns the sandbox's answer, its death or its overrun
 * into a result.
 *
 * This file makes the invoker and takes it apart; the work is done by its
 * parts (invoker_internal.h lists them): calls (call.c), pools and dispatch
 * (pool.c), the sandboxes' pipes (sandbox_io.c) and the blank processes the
 * zygote forks ahead of need (spawner.c). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "invoker_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

/* The CPUs this process may run on: more sandboxes computing at once than
 * that only take turns. */
static unsigned cpus_usable(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

inv_invoker_t *inv_new(uv_loop_t *loop, sbx_zygote_t *zygote, const inv_config_t *cfg)
{
    inv_invoker_t *inv = xcalloc(1, sizeof(*inv));
    inv->loop = loop;
    inv->zygote = zygote;
    if (cfg)
        inv->cfg = *cfg;
    inv->cfg.max_queue = inv->cfg.max_queue ? inv->cfg.max_queue : 100;
    inv->cfg.max_sandboxes = inv->cfg.max_sandboxes ? inv->cfg.max_sandboxes : 1024;
    inv->cfg.idle_timeout_ms = inv->cfg.idle_timeout_ms ? inv->cfg.idle_timeout_ms : 5 * 60 * 1000;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = tine_now_ns() ^ (uint64_t)getpid();
    snprintf(inv->node_prefix, sizeof(inv->node_prefix), "%016" PRIx64, r);
    inv->ncpu = cpus_usable();
    inv__pools_init(inv);
    inv->hostcalls = inv__hostcalls_new(inv);
    inv->logs = inv__logs_new(loop, inv->cfg.log_rate);
    inv__calls_init(inv);
    inv__io_init(inv);
    inv__spawner_start(inv);
    return inv;
}

void inv__maybe_free(inv_invoker_t *inv)
{
    if (inv->closing && tine_list_empty(&inv->pools) && tine_list_empty(&inv->pyzygotes) && !inv->zygote_polling &&
        !inv->flush_open && !inv->completions_open) {
        free(inv->pool_table);
        free(inv);
    }
}

void inv_free(inv_invoker_t *inv)
{
    if (inv == NULL)
        return;
    inv->closing = true;
    /* Host calls still in flight are answered before their calls fail. */
    inv__hostcalls_free(inv->hostcalls);
    inv->hostcalls = NULL;
    inv__spawner_stop(inv);
    inv__calls_shutdown_admitting(inv);
    inv__pools_shutdown(inv);
    inv__logs_free(inv->logs);
    inv->logs = NULL;
    inv__io_close(inv);
    inv__calls_close(inv);
    /* Pools free themselves as their sandboxes' handles close, the calls
     * failed above get their callbacks on the next loop turn, and the last
     * handle to close frees the invoker: run the loop until then. */
}
