/* Private to invoker/: the structures its parts share and what each part
 * offers the others. The parts, each a file named after what it holds:
 *
 *   invoker.c     the invoker itself: made by inv_new, taken apart by inv_free
 *   call.c        calls: accepted, finished, their callbacks delivered (a
 *                 failure on a later loop turn), the activation record
 *   request.c     requests built member by member into the call's INVOKE frame
 *   result.c      the function's status and headers read from a RESULT
 *   pool.c        pools and dispatch: the pool table, a pool's sandboxes and
 *                 their states and timers, dispatch, pipelining decisions,
 *                 warm refill, idle timeout, the node-wide cap and eviction
 *                 (the rules in fair_share.c), the pool-level public API
 *   sandbox_io.c  a sandbox's pipes: frames written (one write per loop turn
 *                 for pipelined calls) and read, answers, EOF, kill
 *   spawner.c     blank processes from the zygote: requests in flight, the
 *                 spare, sandboxes waiting for a process
 *   runtime_python.c  the Python zygote of each app version with Python
 *                 functions, and the blank sandboxes it forks
 *   fair_share.c  the rules sharing the cap between apps
 *   call_log.c    calls' log lines and the errors that end them
 *   hostcall*.c   host calls (hostcall_internal.h)
 *
 * Every list is a tine_list_t (common/tine_list.h). */
#ifndef TINE_INVOKER_INTERNAL_H
#define TINE_INVOKER_INTERNAL_H

#include "invoker.h"
#include "tine_list.h"
#include "wire.h"

#include <uv.h>

typedef enum { SBX_STARTING, SBX_IDLE, SBX_BUSY, SBX_CLOSING } sandbox_state_t;

typedef struct inv_pool inv_pool_t;
typedef struct inv_sandbox inv_sandbox_t;
typedef struct inv_app inv_app_t;
typedef struct inv_pyzygote inv_pyzygote_t;

#define INV_LOG_CAP (64u * 1024u) /* log bytes kept per invocation */

struct inv_call {
    inv_invoker_t *inv;
    inv_pool_t *pool;
    tine_list_t link; /* on its pool's queue, behind a sandbox's running call (piped), on the
                         invoker's completions, or on its calls waiting for admission; on none
                         while it runs or waits for its start */
    inv_done_cb cb;
    void *data;
    uint64_t id;
    char id_hex[33];
    char trigger[24]; /* the request's "trigger", else its "kind" (for the activation record) */
    char trace[33];   /* its trace id: its own id when it starts the trace (common/trace.h) */
    char parent[33];  /* its parent's invocation or span id, "" for none */
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
    bool admitting;      /* its namespace's admission waits for Redis (inv->admitting) */
    bool admitted;       /* admitted by its namespace: the admission ends with the call */
    bool completing;     /* on the invoker's completions: its callback is due on a later loop turn */
    inv_result_t failed; /* while completing: the failure handed to the callback */
    char *failed_error;  /* failed.error's bytes (owned) */
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
    tine_list_t pool_link;  /* the pool's sandboxes */
    tine_list_t free_link;  /* the pool's idle list (most recently used first) while IDLE, its list of
                               free starts while STARTING without a call (free_start) */
    tine_list_t wait_link;  /* the spawner's list of sandboxes waiting for a process */
    tine_list_t flush_link; /* the invoker's list of sandboxes with frames to write this loop turn */
    pid_t pid;              /* 0 while waiting for a process */
    sandbox_state_t state;
    int handles_open;
    bool free_start; /* STARTING without a call: on pool->starting_free */
    char *rbuf;
    size_t rlen;
    size_t rcap;
    inv_call_t *call;  /* the running call (or the one waiting for the start) */
    tine_list_t piped; /* calls sent behind it, not started, in order (inv_call_t.link) */
    uint32_t npiped;
    uv_buf_t *pend; /* INVOKE frames to write at the end of this loop turn (the calls' own bytes) */
    uint32_t npend, pend_cap;
    bool defers_spare; /* a cold start that took the spare: it is refilled after the call */
    bool admitted;     /* its namespace admitted it: the admission ends when it closes */
    uint64_t spawned_at; /* when the invoker decided to start it */
    uint64_t ready_ns;   /* spawned_at to READY */
    uint64_t last_used;  /* when it last became idle */
    uint64_t invocations;
};

/* An app on this node, for sharing the cap between apps (fair_share.c):
 * its pools of every version hold it. */
struct inv_app {
    tine_list_t link; /* the invoker's apps */
    size_t npools;    /* pools holding it; freed with the last */
    size_t nlive;     /* its sandboxes that are not closing, every function and version */
    char name[];
};

struct inv_pool {
    inv_invoker_t *inv;
    tine_list_t link;      /* the invoker's pools */
    tine_list_t hash_link; /* its bucket of the pool table, keyed by (version, fn_index) */
    reg_app_version_t *version; /* retained */
    inv_app_t *app;
    size_t fn_index;
    const reg_function_t *fn;
    tine_list_t sandboxes; /* inv_sandbox_t.pool_link */
    size_t nsandboxes;     /* in the list, closing ones included */
    size_t nlive;          /* not closing */
    tine_list_t idle;      /* IDLE sandboxes, most recently used first (inv_sandbox_t.free_link) */
    size_t nidle;
    tine_list_t starting_free; /* STARTING sandboxes without a call (inv_sandbox_t.free_link) */
    size_t nstarting_free;
    size_t nbusy;     /* BUSY sandboxes */
    uint64_t avg_ns;  /* moving average of the call durations (1/8 weight) */
    uint64_t answers; /* calls answered (the average means something after a few) */
    uint64_t pipelined; /* calls sent pipelined, in all */
    uint64_t requeued;  /* pipelined calls sent again after their sandbox went away */
    uint32_t warm; /* idle sandboxes kept ready (manifest, or inv_scale) */
    char *spec_frame; /* what turns a blank into this function's sandbox */
    size_t spec_frame_len;
    tine_list_t queue; /* calls waiting for a sandbox, oldest first (inv_call_t.link) */
    size_t queued;
    bool retired;
    bool start_failed; /* the last start failed: no warm refill until one succeeds */
    tine_list_t blocked_link; /* on the invoker's blocked list while its calls wait for room under the
                                 node-wide cap (waiting_for_room) */
    void *admit;              /* its namespace's admission state (cfg.admission); NULL: none */
    size_t nadmitting;        /* its calls waiting for their admission */
    bool admit_waiting;       /* a sandbox admission of it waits for Redis */
    uint64_t kick_round; /* the last pools_kick_blocked round that tried it */
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
    uint64_t next_id;
    char node_prefix[17];
    bool closing;
    unsigned ncpu;                   /* CPUs tined may run on (its affinity) */
    struct inv_hostcalls *hostcalls; /* hostcall.c: Redis, HTTP client */
    struct inv_logs *logs;           /* call_log.c: the apps' log budgets */
    /* pool.c: the pools, their apps, the node-wide cap */
    tine_list_t pools;        /* inv_pool_t.link */
    tine_list_t *pool_table;  /* buckets of inv_pool_t.hash_link */
    size_t pool_buckets;      /* a power of two */
    size_t npools;
    tine_list_t apps;         /* inv_app_t.link */
    size_t nlive;             /* sandboxes not closing, node-wide (cfg.max_sandboxes) */
    tine_list_t blocked;      /* pools whose calls wait for room under the cap (inv_pool_t.blocked_link) */
    size_t ncap_blocked;
    uint64_t kick_round;
    bool kicking;
    /* spawner.c: blank processes from the zygote */
    uv_poll_t zygote_poll;
    bool zygote_polling; /* the poll handle is open */
    bool zygote_gone;
    bool blank_failed; /* the last fork failed: no spare until one succeeds */
    size_t blanks_requested;
    inv_blank_t spare[INV_SPARE_BLANKS];
    size_t nspare;
    tine_list_t waiting; /* sandboxes waiting for a process, oldest first (inv_sandbox_t.wait_link) */
    size_t nwaiting;
    size_t spares_deferred; /* cold starts holding back the spare's refill */
    uint64_t zygote_sent;   /* requests sent to the zygote, blanks and Python zygotes alike */
    uint64_t zygote_read;   /* its answers read (they come in request order) */
    /* runtime_python.c: the Python zygotes (inv_pyzygote_t.link) */
    tine_list_t pyzygotes;
    /* sandbox_io.c: pipelined frames written once per loop turn */
    uv_prepare_t flush; /* writes pending INVOKE frames before the loop polls */
    bool flush_open;
    tine_list_t flushing; /* sandboxes with pending frames (inv_sandbox_t.flush_link) */
    /* call.c: failures delivered on a later loop turn */
    uv_idle_t completions;
    bool completions_open;
    bool completions_draining; /* in their delivery (which closes the handle, after inv_free) */
    tine_list_t completed; /* calls whose callback is due (inv_call_t.link) */
    tine_list_t admitting; /* calls waiting for their namespace's admission (inv_call_t.link) */
    size_t calls;           /* calls started and not finished (queued or running) */
};

/* Pipelining (pool.c, pool_dispatch): a call may be sent to a BUSY
 * sandbox, behind its running call, when the function's calls are short: at
 * most INV_PIPE_BUDGET_NS / (average duration) calls, up to INV_PIPE_MAX, so
 * that none waits longer than about the budget. */
#define INV_PIPE_MAX 16
#define INV_PIPE_BUDGET_NS 1000000u
#define INV_PIPE_MIN_ANSWERS 8             /* answers before the average is trusted */
#define INV_PIPE_MAX_FRAME (64u * 1024u)   /* larger INVOKE frames wait for an idle sandbox */

#define INV_MIN_START_MS 1000u /* loading a handler may take at least this long */

/* ------------------------------------------------------------ invoker.c */

/* Frees the invoker once inv_free ran and every handle of it has closed;
 * each part calls it when its last handle closed. */
void inv__maybe_free(inv_invoker_t *inv);

/* --------------------------------------------------------------- call.c */

/* Opens the handle that delivers failures on a later loop turn. */
void inv__calls_init(inv_invoker_t *inv);

/* Closes that handle once the callbacks still due have run (inv_free). */
void inv__calls_close(inv_invoker_t *inv);

/* Finishes call `c` with its sandbox's answer `res`, read at `now`: its
 * callback runs now (unless cancelled; an answer comes from a read callback,
 * never from inside an inv_* function), then its activation is recorded and
 * the call freed unless a host call holds it. */
void inv__call_answer(inv_call_t *c, inv_result_t *res, uint64_t now);

/* Finishes call `c` with a failure found now (it left its queue or sandbox
 * already): logged and recorded now, its callback gets code, status and a
 * copy of `error` on a later loop turn, never inside the call that found it. */
void inv__call_fail(inv_call_t *c, int code, int status, const char *error);

/* Finishes call `c`, out of every list, refused by its namespace's quota:
 * its callback gets TINE_EQUOTA and 429 on a later loop turn; neither
 * logged nor recorded (it never ran). */
void inv__call_refuse(inv_call_t *c, const inv_refusal_t *r);

/* Queues a new call in its pool once its namespace admits it: now, or
 * when the admission's answer comes; or refuses it. */
void inv__call_admit(inv_call_t *c);

/* Fails the calls waiting for their admission (inv_free): 503. */
void inv__calls_shutdown_admitting(inv_invoker_t *inv);

/* ------------------------------------------------- request.c, result.c */

/* Finishes rq as the INVOKE frame of call `id` (id_hex, its invocation id):
 * "ctx" and the member count, the body (copied) and the frame header. The
 * frame's bytes (*frame_len of them) go to the caller and rq is left empty. */
char *inv__request_take_frame(inv_request_t *rq, uint64_t id, const char *id_hex, const void *body, size_t body_len,
                              size_t *frame_len);

/* Reads the function's status and headers from RESULT metadata into res
 * (they point into meta). Returns false when it is malformed. */
bool inv__result_parse(inv_result_t *res, const char *meta, size_t meta_len);

/* --------------------------------------------------------------- pool.c */

/* Sets up the pool table and the lists of the node-wide cap. */
void inv__pools_init(inv_invoker_t *inv);

/* Fails every call and closes every sandbox, for inv_free: running and
 * queued calls answer 503, pools free themselves as their handles close. */
void inv__pools_shutdown(inv_invoker_t *inv);

/* The pool of function `fn_index` of `v`, made (holding a reference to v)
 * on first use. O(1). */
inv_pool_t *inv__pool_get(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index);

/* Queues a new call last in its pool. */
void inv__pool_enqueue(inv_pool_t *p, inv_call_t *c);

/* Takes a queued call out of its pool's queue (inv_call_cancel); other
 * pools waiting for room may now get it, and a retired pool left empty is
 * freed. */
void inv__pool_dequeue(inv_pool_t *p, inv_call_t *c);

/* Removes and returns the oldest queued call (the queue must not be empty). */
inv_call_t *inv__pool_pop_call(inv_pool_t *p);

/* One call of pool p stopped waiting for its admission (admitted, refused
 * or cancelled): a retired pool left empty is freed. */
void inv__pool_admission_over(inv_pool_t *p);

/* Gives queued calls to sandboxes, starting some as the pool's concurrency,
 * the node's cap and its sharing between apps allow, then tops up the warm
 * ones. */
void inv__pool_dispatch(inv_pool_t *p);

/* Lets pools waiting for room under the cap try again, the pool of the app
 * holding the fewest sandboxes first. */
void inv__pools_kick_blocked(inv_invoker_t *inv);

/* The frame that turns a blank process into a sandbox of p's function,
 * encoded once per pool. NULL when it cannot be encoded. */
const char *inv__pool_spec_frame(inv_pool_t *p, size_t *len);

/* The sandbox answered its running call after `took` ns, at `now`: the
 * pool's average moves, and the sandbox runs its next pipelined call, is
 * idle again, or closes (unhealthy, not needed, or given back to the node
 * under the cap's sharing), before the caller hears back. */
void inv__sandbox_answered(inv_sandbox_t *s, bool healthy, uint64_t took, uint64_t now);

/* The sandbox got its process and loads its handler: the start limit
 * runs (the function's timeout, at least INV_MIN_START_MS). */
void inv__sandbox_loading(inv_sandbox_t *s);

/* The sandbox answered READY: it starts its attached call, becomes idle and
 * takes a queued one, or closes when its retired pool needs it no more. */
void inv__sandbox_ready(inv_sandbox_t *s);

/* Closes a sandbox: its pipes (the sandbox exits on EOF) and its timer;
 * the pool's counts drop now, the struct is freed once its handles closed.
 * The caller deals with its running call first; pipelined ones are queued
 * again. */
void inv__sandbox_close(inv_sandbox_t *s);

/* A sandbox could not start (no process, died or overran while loading):
 * it is killed and closed, its call fails, and the pool stops refilling its
 * warm sandboxes until a start succeeds. */
void inv__sandbox_start_failed(inv_sandbox_t *s, int code, int status, const char *msg);

/* --------------------------------------------------------- sandbox_io.c */

/* Opens the handle that writes pipelined frames once per loop turn, and
 * closes it (inv_free). */
void inv__io_init(inv_invoker_t *inv);
void inv__io_close(inv_invoker_t *inv);

/* Gives a starting sandbox its process: watches its pipe, writes the spec
 * (and the INVOKE of an attached call) and arms the start limit; on failure
 * the start fails (inv__sandbox_start_failed). Takes the fds. */
void inv__sandbox_attach_process(inv_sandbox_t *s, pid_t pid, sbx_fds_t fds);

/* Sends one frame to a sandbox (copied when the pipe cannot take it all
 * now). Returns 0 or a libuv error. */
int inv__sandbox_write(inv_sandbox_t *s, uint8_t type, uint64_t id, const char *meta, size_t meta_len,
                       const char *body, size_t body_len);

/* Hands call c's INVOKE frame to s's pipe now (no copy). Returns 0 or a
 * libuv error. */
int inv__sandbox_send_call(inv_sandbox_t *s, inv_call_t *c);

/* Pipelines call c to busy sandbox s: its frame is written with the others
 * of this loop turn, in one write, before the loop polls again. */
void inv__sandbox_pipe_call(inv_sandbox_t *s, inv_call_t *c);

/* Drops the frames s still had to write this loop turn (it is closing). */
void inv__sandbox_unflush(inv_sandbox_t *s);

/* Kills a sandbox's process, and for exec functions everything the program
 * started (the runner leads its own process group). */
void inv__sandbox_kill(inv_sandbox_t *s);

/* ------------------------------------------------------------ spawner.c */

/* Starts watching the zygote's control socket and asks for the spare;
 * stops (inv_free): the spare's pipes are closed, the poll handle too. */
void inv__spawner_start(inv_invoker_t *inv);
void inv__spawner_stop(inv_invoker_t *inv);

/* Finds starting sandbox s a process: the spare when there is one (a cold
 * start with a call then holds back the spare's refill until answered),
 * else s waits for the zygote's next answer. */
void inv__spawner_give(inv_sandbox_t *s);

/* Takes s off the list of sandboxes waiting for a process (it is closing). */
void inv__spawner_forget(inv_sandbox_t *s);

/* The cold start of s that took the spare is over (answered, or s closed):
 * now the spare may be forked again. */
void inv__spawner_undefer(inv_sandbox_t *s);

/* Started blank nodes a Node host keeps spare (runtime_python.c). */
#define INV_NODE_SPARES 2

/* Whether fn's sandboxes come from a runtime of its version (a Python
 * zygote or a Node host: runtime_python.c) rather than from tine-zygote. */
#define INV_VERSION_RUNTIME(fn) ((fn)->runtime == REG_RUNTIME_PYTHON || (fn)->runtime == REG_RUNTIME_NODE)

/* Asks the zygote for the Python zygote (or Node host) of `spec`; *seq is
 * the request's number, which its answer (inv__python_answer) comes with.
 * Returns 0 or an error (-EAGAIN: the socket is full, nothing was sent). */
int inv__spawner_ask_python(inv_invoker_t *inv, const sbx_python_spec_t *spec, uint64_t *seq);

/* ----------------------------------------------------- runtime_python.c */

/* The zygote's answer number `seq`: true when it is a Python zygote's
 * (handled: `got` is taken), false when it is a blank's. */
bool inv__python_answer(inv_invoker_t *inv, uint64_t seq, sbx_spawned_t *got);

/* The zygote is gone: Python zygotes asked for and not started fail. */
void inv__python_zygote_lost(inv_invoker_t *inv);

/* inv__spawner_give and inv__spawner_forget for sandboxes of Python (and
 * Node) functions: the process comes from the version's Python zygote (Node host) (started
 * when there is none; failing the start when it failed, until its backoff
 * is over). */
void inv__python_give(inv_sandbox_t *s);
void inv__python_forget(inv_sandbox_t *s);

/* inv__spawner_undefer for a Python sandbox: the cold start that took its
 * zygote's spare is over, the spare may be forked again. */
void inv__python_undefer(inv_sandbox_t *s);

/* The version went live: its Python zygote starts now when it has Python
 * functions. It retired: its zygote goes once none of its sandboxes is
 * left. */
void inv__python_version_live(inv_invoker_t *inv, const reg_app_version_t *v);
void inv__python_version_retired(inv_invoker_t *inv, const reg_app_version_t *v);

/* inv_free: the spares go, every zygote once its sandboxes closed. */
void inv__python_stop(inv_invoker_t *inv);

/* ------------------------------------------------- fair_share.c, for pool.c */

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

/* ------------------------------------------------------- call.c, for hostcall.c */

/* Keeps `c` allocated while a host call of it is in flight (the call may
 * finish meanwhile, e.g. by timeout). Every hold ends with inv_call_reply. */
void inv_call_hold(inv_call_t *c);

/* Answers a host call of `c` with a HOSTREPLY frame (copied) when the call is
 * still running on its sandbox, drops the answer otherwise, and ends one hold. */
void inv_call_reply(inv_call_t *c, const char *meta, size_t meta_len, const void *body, size_t body_len);

/* Ends one hold of `c` without answering (a detached tine.invoke_async that
 * kept its caller's in-flight count). */
void inv_call_release(inv_call_t *c);

/* ----------------------------------------------------- call_log.c, for the others */

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

/* group.c: the records of in-process calls a co-location group's sandbox
 * made while serving `root` (an SBX_MSG_NESTED frame), each handed to the
 * activation observer as a call of its own. */
void inv__group_records(inv_call_t *root, const sbx_frame_hdr_t *h, const char *payload);

/* Appends s (len bytes) to out with every value of a secret that a function
 * of `app` read on this node (tine.secret) replaced by "[secret NAME]".
 * (hostcall.c) */
void inv__redact(inv_invoker_t *inv, const char *app, const char *s, size_t len, tine_buf_t *out);

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

/* A function's log line as tined keeps it (appended to out): the secrets
 * its app read replaced (inv__redact) before anything else, then made
 * printable and cut to one line's bytes (inv__printable_cut). The lines
 * of a call (call_log.c) and of an in-process call of a group (group.c). */
void inv__log_line_text(const inv_pool_t *p, const char *s, size_t len, tine_buf_t *out);

/* `b` bytes for a message: "64 MiB", "512 KiB" or "1000 bytes". */
void inv__fmt_bytes(char out[32], uint64_t b);

/* ----------------------------------------------------- hostcall.c, for the others */

/* Serves one HOSTCALL frame of the running call `c` (meta {"op":..}). Every
 * host call is answered exactly once with inv_call_reply, now or later. */
void inv_hostcall(inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload);

/* The host-call service of an invoker (its Redis connection, its HTTP
 * client), made by inv_new and closed by inv_free before any call is failed:
 * host calls still in flight are answered with an error. */
struct inv_hostcalls *inv__hostcalls_new(inv_invoker_t *inv);
void inv__hostcalls_free(struct inv_hostcalls *hc);

#endif
