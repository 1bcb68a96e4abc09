/* invoker: sandbox pools per (app version, function), dispatch of one
 * invocation at a time to each sandbox, timeouts and crash handling, warm
 * sandboxes, scale to zero after an idle timeout and a node-wide cap. */
#ifndef TINE_INVOKER_H
#define TINE_INVOKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta.h"
#include "registry.h"
#include "sandbox.h"

struct uv_loop_s;
typedef struct inv_invoker inv_invoker_t;
typedef struct inv_call inv_call_t;

/* The record of one finished invocation, handed to the activation observer
 * (billing, log triggers). Everything is borrowed for the callback's duration. */
typedef struct {
    const char *invocation_id;
    const char *app;
    uint64_t version;
    const char *function;
    const char *trigger;      /* request "trigger", else its "kind": http, event, ... */
    uint64_t start_unix_ms;   /* wall clock when the call was accepted */
    uint64_t duration_ns;     /* dispatch to answer (0 when never dispatched) */
    uint64_t queued_ns;       /* waiting for a sandbox */
    uint64_t cold_start_ns;   /* start of its sandbox to ready (handler loaded), when cold */
    bool cold;                /* it waited for its sandbox to start */
    bool dispatched;          /* reached a sandbox */
    uint32_t memory_mb;
    uint32_t timeout_ms;
    uint64_t cpu_ns;          /* CPU time the sandbox reported for it */
    int code;                 /* as inv_result_t */
    int status;
    const char *error;        /* NULL when code == 0 */
    json_t *logs;             /* [{"t":unix_ms,"level":"info"|"error","msg":"..."}] */
    size_t logs_function;     /* the first lines of logs, those the function wrote; tine's own
                                 (the error that ended the call and its trace, notes on dropped
                                 lines) follow them */
    bool logs_truncated;      /* lines past INV_LOG_CAP bytes were dropped */
} inv_activation_t;

typedef void (*inv_activation_cb)(void *data, const inv_activation_t *a);

/* An event a function emits with tine.emit, checked by the invoker (a type
 * of 1 to 256 printable characters, data that is JSON). Borrowed for the
 * hook's call. */
typedef struct {
    const char *app;
    const char *function;
    const char *invocation_id;
    const char *type; /* type_len bytes, not NUL-terminated */
    size_t type_len;
    json_t *data;     /* NULL: no data */
} inv_emit_t;

/* The outcome of handing an event on: rc 0 and its id, or an error with a
 * message. Borrowed for the call. */
typedef void (*inv_emit_done_cb)(void *data, int rc, const char *error, const char *event_id);

/* The owner of events takes one: returns 0 and calls done exactly once,
 * later; or returns an error and never calls it. */
typedef int (*inv_emit_cb)(void *hook_data, const inv_emit_t *e, inv_emit_done_cb done, void *done_data);

typedef struct {
    uint32_t max_queue;       /* calls waiting per function before 429 (default 100) */
    uint32_t max_sandboxes;   /* sandboxes on this node at most (default 1024), shared between apps
                                 (fair_share.c); at the cap an idle sandbox of another function makes
                                 room when the sharing allows */
    uint32_t app_reserve;     /* sandboxes past max_sandboxes for apps holding none while the others'
                                 calls fill the cap (their guaranteed first one); 0: none */
    uint64_t idle_timeout_ms; /* idle sandboxes beyond a pool's warm count exit after this (default 5 min) */
    inv_activation_cb on_activation; /* called once per finished call, may be NULL */
    void *on_activation_data;
    /* Host calls (hostcall.c): */
    const char *redis_url;     /* tine.kv (copied); NULL: it answers an error */
    uint64_t log_rate;         /* log bytes per second per app (0: INV_DEFAULT_LOG_RATE) */
    uint64_t kv_value_max;     /* tine.kv limits of apps whose manifest sets none (0: INV_DEFAULT_KV_*) */
    uint64_t kv_keys_max;
    uint64_t kv_bytes_max;
    inv_emit_cb on_emit;       /* tine.emit is handed to it (tined: the events module); NULL: an error */
    void *on_emit_data;
    uint32_t max_invoke_depth; /* nested tine.invoke calls allowed (default INV_DEFAULT_INVOKE_DEPTH) */
} inv_config_t;

#define INV_DEFAULT_INVOKE_DEPTH 256
#define INV_DEFAULT_LOG_RATE (256u * 1024u)            /* log bytes per second per app */
#define INV_DEFAULT_KV_VALUE_MAX (1024u * 1024u)       /* bytes of one tine.kv value */
#define INV_DEFAULT_KV_KEYS_MAX 10000u                 /* tine.kv keys of one app */
#define INV_DEFAULT_KV_BYTES_MAX (64u * 1024u * 1024u) /* tine.kv bytes (keys and values) of one app */
#define INV_MAX_INVOKE_FANOUT 64 /* tine.invoke calls of one invocation in flight at once */

/* The outcome of one invocation, borrowed for the callback's duration. */
typedef struct {
    int code;          /* 0: the function answered; TINE_EHANDLER: it raised;
                          TINE_ETIMEOUT, TINE_ECRASH, TINE_EBUSY, or another
                          error when no sandbox could run it */
    int status;        /* HTTP status for the client: the function's, or 500/502/504/429/503 */
    sbx_result_meta_t meta; /* code 0: the function's status and headers (sandbox/meta.h:
                               sbx_result_meta_next, sbx_result_meta_headers_json) */
    const char *body;  /* the function's response body */
    size_t body_len;
    const char *error; /* one line when code != 0 */
    const char *invocation_id;
    bool cold;           /* it waited for its sandbox to start */
    uint64_t duration_ns; /* dispatch to answer */
    uint64_t cold_start_ns; /* start of its sandbox to ready (handler loaded), when cold */
    uint64_t queued_ns;     /* waiting for a sandbox */
} inv_result_t;

typedef void (*inv_done_cb)(void *data, const inv_result_t *res);

inv_invoker_t *inv_new(struct uv_loop_s *loop, sbx_zygote_t *zygote, const inv_config_t *cfg);

/* Closes every sandbox; the invoker is freed once their handles closed. */
void inv_free(inv_invoker_t *inv);

/* Starts an invocation of function `fn_index` of version `v`. `request` is
 * the request object (kind, method, path, params, query, headers or event);
 * the invoker adds "ctx" and takes the reference. `body` is copied. `cb` is
 * called exactly once, later, unless inv_call_cancel is called first. On a
 * synchronous failure returns an error and never calls cb. */
int inv_call(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, json_t *request, const void *body,
             size_t body_len, inv_done_cb cb, void *data, inv_call_t **out);

/* The caller lost interest (client went away): cb will not be called. */
/* A request already in the wire's binary form (sandbox/meta.h): `nmembers`
 * key/value pairs of the INVOKE metadata object, without the object's own
 * header; the invoker adds "ctx". What inv_call makes of a JSON request. */
typedef struct {
    const char *members;
    size_t members_len;
    uint32_t nmembers;
    const char *trigger; /* for the activation record: "http", "event", ... */
} inv_request_t;

int inv_call_encoded(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, const inv_request_t *rq,
                     const void *body, size_t body_len, inv_done_cb cb, void *data, inv_call_t **out);

void inv_call_cancel(inv_call_t *c);

/* An app version stopped being live: its idle sandboxes exit now, busy ones
 * after their current invocation; queued calls are still served. */
void inv_version_retired(inv_invoker_t *inv, const reg_app_version_t *v);

/* An app version became live (deploy, rollback, start of the node): starts
 * the `warm` sandboxes of each of its functions that asks for some. The pools
 * keep a reference to v. */
void inv_version_live(inv_invoker_t *inv, const reg_app_version_t *v);

/* Sets how many idle sandboxes the pool of function `fn_index` of `v` keeps
 * ready on this node (until v is retired), starting them now; fewer warm
 * leaves the extra idle ones to the idle timeout. Returns 0, or TINE_EINVAL
 * when warm is over the function's concurrency or fn_index is out of range. */
int inv_scale(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index, uint32_t warm);

/* Closes the idle sandboxes of `app` (of every version), only those of
 * function `fn` unless fn is NULL; busy ones are left alone, and pools with
 * warm sandboxes start new ones. Returns how many were closed; with `pids`,
 * also their process ids (malloc'd array, as many as returned; the caller
 * frees it), to wait for them to be gone. */
size_t inv_evict(inv_invoker_t *inv, const char *app, const char *fn, pid_t **pids);

/* The node's sandboxes for the admin API: {"sandboxes":N, "max_sandboxes":N,
 * "idle_timeout_ms":N, "spare":N, "pools":[{app, version, function, retired,
 * warm, concurrency, queued, idle, busy, starting, sandboxes:[{pid, state,
 * age_s, invocations, cold_start_ms, last_used_s}]}]}, only pools of `app`
 * unless app is NULL. */
json_t *inv_stats(inv_invoker_t *inv, const char *app);

/* What the node runs now, for its status in the cluster: sandboxes that
 * are not closing, and calls started and not finished (queued or running,
 * whoever started them). Accepts NULL (zeros). */
void inv_load(const inv_invoker_t *inv, size_t *sandboxes, size_t *calls);

/* Deletes the tine.kv keys of an app that is deleted (their count in
 * *kv_keys) and its KV usage counts. Synchronous. Returns 0, TINE_EREDIS, or
 * TINE_EINVAL when the node has no Redis for tine.kv. */
int inv_delete_app_data(inv_invoker_t *inv, const char *app, size_t *kv_keys, char *err, size_t errlen);

#endif
