/* Private to invoker/: the structures shared by the pool engine (invoker.c)
 * and the host-call service (hostcall.c). */
#ifndef TINE_INVOKER_INTERNAL_H
#define TINE_INVOKER_INTERNAL_H

#include "invoker.h"
#include "wire.h"

#include <uv.h>

typedef enum { SBX_STARTING, SBX_IDLE, SBX_BUSY, SBX_CLOSING } sandbox_state_t;

typedef struct inv_pool inv_pool_t;
typedef struct inv_sandbox inv_sandbox_t;
typedef struct inv_app inv_app_t;

#define INV_LOG_CAP (64u * 1024u) /* log bytes kept per invocation */

struct inv_call {
    inv_invoker_t *inv;
    inv_pool_t *pool;
    inv_call_t *next; /* queue link */
    inv_done_cb cb;
    void *data;
    uint64_t id;
    char id_hex[33];
    char trigger[24]; /* the request's "trigger", else its "kind" (for the activation record) */
    char *frame;      /* the INVOKE frame (header, meta with ctx, body), kept until the call is freed:
                         a call pipelined behind one that fails is sent again elsewhere */
    size_t frame_len;
    uint64_t queued_at;
    uint64_t dispatched_at;
    uint64_t started_unix_ms; /* wall clock when it was queued */
    bool cold;                /* it waited for its sandbox to start */
    uint64_t cold_start_ns;
    uint64_t cpu_ns; /* reported by the sandbox with its answer */
    inv_sandbox_t *sandbox; /* running on it, pipelined behind its running call, or waiting for it to
                               start; NULL while queued and once finished */
    json_t *logs;           /* [{"t":unix_ms,"level":..,"msg":..}] (call_log.c) */
    size_t logs_bytes;
    size_t logs_function; /* lines of logs the function wrote (tine's own lines follow them) */
    bool logs_truncated;
    bool error_logged;         /* the error that ended it is in its logs already */
    uint64_t log_dropped_cap;  /* lines dropped over INV_LOG_CAP */
    uint64_t log_dropped_rate; /* lines dropped over the app's log rate */
    unsigned holds; /* host calls in flight: the call is freed when 0 after finishing */
    bool finished;
    /* tine.invoke (hostcall_invoke.c): */
    uint32_t invoke_depth; /* 0 for a call from outside, the caller's + 1 for tine.invoke */
    uint32_t invokes_in_flight; /* tine.invoke calls this call started that did not finish */
};

/* A sandbox is STARTING from the moment the invoker decides to start it:
 * first waiting for a blank process from the zygote (pid 0), then loading its
 * handler until READY. A call may be attached to it meanwhile (its INVOKE is
 * written behind the spec and served right after READY). */
struct inv_sandbox {
    uv_pipe_t pipe;   /* frames from the sandbox (read) */
    uv_pipe_t wpipe;  /* frames to the sandbox (written) */
    uv_timer_t timer; /* start limit, call timeout or idle timeout, by state */
    inv_pool_t *pool;
    inv_sandbox_t *next;                  /* the pool's list */
    inv_sandbox_t *idle_prev, *idle_next; /* the pool's idle list, most recently used first */
    inv_sandbox_t *wait_next;             /* the invoker's list of sandboxes waiting for a process */
    pid_t pid;                            /* 0 while waiting for a process */
    sandbox_state_t state;
    int handles_open;
    bool waiting;    /* on the invoker's wait list */
    bool free_start; /* STARTING without a call: counted in pool->nstarting_free */
    char *rbuf;
    size_t rlen;
    size_t rcap;
    inv_call_t *call;                   /* the running call (or the one waiting for the start) */
    inv_call_t *piped_head, *piped_tail; /* calls sent behind it, not started (linked by next) */
    uint32_t npiped;
    uv_buf_t *pend; /* INVOKE frames to write at the end of this loop turn (the calls' own bytes) */
    uint32_t npend, pend_cap;
    inv_sandbox_t *flush_next; /* the invoker's list of sandboxes with pending frames */
    bool flush_queued;
    bool defers_spare; /* a cold start that took the spare: it is refilled after the call */
    uint64_t spawned_at; /* when the invoker decided to start it */
    uint64_t ready_ns;   /* spawned_at to READY */
    uint64_t last_used;  /* when it last became idle */
    uint64_t invocations;
};

/* An app on this node, for sharing the cap between apps (fair_share.c):
 * its pools of every version hold it. */
struct inv_app {
    inv_app_t *next;
    size_t npools; /* pools holding it; freed with the last */
    size_t nlive;  /* its sandboxes that are not closing, every function and version */
    char name[];
};

struct inv_pool {
    inv_invoker_t *inv;
    inv_pool_t *next;
    reg_app_version_t *version; /* retained */
    inv_app_t *app;
    size_t fn_index;
    const reg_function_t *fn;
    inv_sandbox_t *sandboxes;
    size_t nsandboxes; /* in the list, closing ones included */
    size_t nlive;      /* not closing */
    size_t nidle;
    size_t nstarting_free;
    size_t nbusy;     /* BUSY sandboxes */
    uint64_t avg_ns;  /* moving average of the call durations (1/8 weight) */
    uint64_t answers; /* calls answered (the average means something after a few) */
    uint64_t pipelined; /* calls sent pipelined, in all */
    uint64_t requeued;  /* pipelined calls sent again after their sandbox went away */
    inv_sandbox_t *idle_head, *idle_tail;
    uint32_t warm; /* idle sandboxes kept ready (manifest, or inv_scale) */
    char *spec_frame; /* what turns a blank into this function's sandbox */
    size_t spec_frame_len;
    inv_call_t *queue_head;
    inv_call_t *queue_tail;
    size_t queued;
    bool retired;
    bool start_failed; /* the last start failed: no warm refill until one succeeds */
    bool cap_blocked;  /* calls wait for room under the node-wide cap (on the invoker's blocked list) */
    inv_pool_t *blocked_prev, *blocked_next;
    uint64_t kick_round; /* the last invoker_kick_blocked round that tried it */
};

typedef struct {
    pid_t pid;
    sbx_fds_t fds;
} inv_blank_t;

#define INV_SPARE_BLANKS 1       /* blank processes kept ready for the next cold start */
#define INV_MAX_BLANK_REQUESTS 64 /* spawn requests in flight to the zygote */

struct inv_invoker {
    uv_loop_t *loop;
    sbx_zygote_t *zygote;
    inv_config_t cfg;
    inv_pool_t *pools;
    uint64_t next_id;
    char node_prefix[17];
    bool closing;
    size_t nlive; /* sandboxes not closing, node-wide (cfg.max_sandboxes) */
    uv_poll_t zygote_poll;
    bool zygote_polling; /* the poll handle is open */
    bool zygote_gone;
    bool blank_failed; /* the last fork failed: no spare until one succeeds */
    size_t blanks_requested;
    inv_blank_t spare[INV_SPARE_BLANKS];
    size_t nspare;
    inv_sandbox_t *wait_head, *wait_tail;
    size_t nwaiting;
    size_t ncap_blocked;
    inv_pool_t *blocked_head; /* pools with cap_blocked */
    inv_app_t *apps;
    uint64_t kick_round;
    bool kicking;
    struct inv_hostcalls *hostcalls; /* hostcall.c: Redis, HTTP client */
    struct inv_logs *logs;           /* call_log.c: the apps' log budgets */
    unsigned ncpu;                   /* CPUs tined may run on (its affinity) */
    uv_prepare_t flush;              /* writes pending INVOKE frames before the loop polls */
    bool flush_open;
    inv_sandbox_t *flush_head;
    size_t spares_deferred; /* cold starts holding back the spare's refill */
    size_t calls;           /* calls started and not finished (queued or running) */
};

/* Pipelining (invoker.c, pool_dispatch): a call may be sent to a BUSY
 * sandbox, behind its running call, when the function's calls are short: at
 * most INV_PIPE_BUDGET_NS / (average duration) calls, up to INV_PIPE_MAX, so
 * that none waits longer than about the budget. */
#define INV_PIPE_MAX 16
#define INV_PIPE_BUDGET_NS 1000000u
#define INV_PIPE_MIN_ANSWERS 8             /* answers before the average is trusted */
#define INV_PIPE_MAX_FRAME (64u * 1024u)   /* larger INVOKE frames wait for an idle sandbox */

/* ------------------------------------------------- fair_share.c, for invoker.c */

#define INV_FAIR_NONE SIZE_MAX

/* What a decision of the sharing between apps looks at. */
typedef struct {
    size_t node_live;   /* sandboxes on the node that are not closing */
    size_t cap;         /* cfg.max_sandboxes */
    size_t reserve;     /* cfg.app_reserve: past the cap, for apps' first sandbox */
    size_t app_live;    /* the deciding app's sandboxes that are not closing */
    size_t waiting_min; /* the fewest held by another app whose calls wait for room; INV_FAIR_NONE */
} inv_fair_t;

typedef enum {
    INV_FAIR_START,            /* start one */
    INV_FAIR_EVICT_ELSE_WAIT,  /* at the cap: start in place of an idle sandbox inv__fair_may_evict
                                  allows closing, else wait */
    INV_FAIR_EVICT_ELSE_START, /* the same, else start one past the cap (the app's first) */
    INV_FAIR_WAIT,             /* wait: the room belongs to an app holding fewer */
} inv_fair_verdict_t;

/* Whether the app may start one more sandbox for a call that waits. */
inv_fair_verdict_t inv__fair_start(const inv_fair_t *f);

/* Whether an app holding `taker_live` sandboxes may close an idle one of an
 * app holding `victim_live` (the same app when same_app) to make room. */
bool inv__fair_may_evict(size_t taker_live, size_t victim_live, bool same_app);

/* Whether a sandbox of the app whose call just ended should close instead
 * of serving another call: the node is past its cap and it is not the app's
 * only one, or a waiting app holds at least two fewer. */
bool inv__fair_gives_back(const inv_fair_t *f);

/* ---------------------------------------------------- invoker.c, for hostcall.c */

/* Keeps `c` allocated while a host call of it is in flight (the call may
 * finish meanwhile, e.g. by timeout). Every hold ends with inv_call_reply. */
void inv_call_hold(inv_call_t *c);

/* Answers a host call of `c` with a HOSTREPLY frame (copied) when the call is
 * still running on its sandbox, drops the answer otherwise, and ends one hold. */
void inv_call_reply(inv_call_t *c, const char *meta, size_t meta_len, const void *body, size_t body_len);

/* Ends one hold of `c` without answering (a detached tine.invoke_async that
 * kept its caller's in-flight count). */
void inv_call_release(inv_call_t *c);

/* ----------------------------------------------------- call_log.c, for invoker.c */

typedef struct inv_logs inv_logs_t;

/* The log budgets of the apps on this node: `rate` bytes per second per app
 * (0: INV_DEFAULT_LOG_RATE). Freed by inv__logs_free (accepts NULL), which
 * writes the notes still due first. */
inv_logs_t *inv__logs_new(uv_loop_t *loop, uint64_t rate);
void inv__logs_free(inv_logs_t *l);

/* One LOG frame of a sandbox of pool `p`: of its running call `c`, or of no
 * call (c NULL: the module loading). Kept in c's logs and written to
 * tined's log within the bounds of call_log.c, or dropped and counted. */
void inv__log_frame(inv_pool_t *p, inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload);

/* The error that ends call `c` (and its trace, may be NULL), at level error
 * in its logs whatever their bounds, and in tined's log within the app's. */
void inv__log_error(inv_call_t *c, const char *msg, const char *trace);

/* The notes of the lines `c` dropped, once it ended (only when it did). */
void inv__log_call_end(inv_call_t *c);

/* Appends `len` bytes of `s` to b made printable (tine_buf_append_printable),
 * cut to `max` bytes of input at a UTF-8 boundary with "…": a function's
 * text (a log line, an error message) before it goes anywhere. */
#define INV_TEXT_MAX (16u * 1024u)
void inv__printable_cut(tine_buf_t *b, const char *s, size_t len, size_t max);

/* `b` bytes for a message: "64 MiB", "512 KiB" or "1000 bytes". */
void inv__fmt_bytes(char out[32], uint64_t b);

/* ----------------------------------------------------- hostcall.c, for invoker.c */

/* Serves one HOSTCALL frame of the running call `c` (meta {"op":..}). Every
 * host call is answered exactly once with inv_call_reply, now or later. */
void inv_hostcall(inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload);

/* The host-call service of an invoker (its Redis connection, its HTTP
 * client), made by inv_new and closed by inv_free before any call is failed:
 * host calls still in flight are answered with an error. */
struct inv_hostcalls *inv__hostcalls_new(inv_invoker_t *inv);
void inv__hostcalls_free(struct inv_hostcalls *hc);

#endif
