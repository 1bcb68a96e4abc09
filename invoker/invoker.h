/* invoker: sandbox pools per (app version, function), dispatch of one
 * invocation at a time to each sandbox, timeouts and crash handling, warm
 * sandboxes, scale to zero after an idle timeout and a node-wide cap. Its
 * parts are listed in invoker_internal.h. */
#ifndef TINE_INVOKER_H
#define TINE_INVOKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "activation.h" /* inv_activation_t, the record of a finished call */
#include "admission.h"  /* inv_admission_t, the quotas of namespaces */
#include "app_model.h"
#include "sandbox.h"
#include "tine_common.h"

struct uv_loop_s;
typedef struct inv_invoker inv_invoker_t;
typedef struct inv_call inv_call_t;

/* An event a function emits with tine.emit, checked by the invoker (a type
 * of 1 to 256 printable characters, data that is JSON). Borrowed for the
 * hook's call. */
typedef struct {
    const char *app;
    const char *function;
    const char *invocation_id;
    const char *trace_id; /* the emitting call's trace (common/trace.h) */
    uint64_t version;     /* of the app, the emitting call's (live or previewed) */
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
    /* Asked before a call is queued and before a sandbox starts, per
     * namespace (tenancy's quotas); borrowed, outlives the invoker. NULL:
     * everything is admitted. A refused call fails with TINE_EQUOTA. */
    const inv_admission_t *admission;
    /* tine.secret (hostcall.c): the cluster's key of app secrets. */
    bool has_secrets_key;
    unsigned char secrets_key[32]; /* REG_SECRET_KEY_LEN */
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
                          error when no sandbox could run it; TINE_EQUOTA: a
                          quota of its namespace refused it (never ran, not
                          recorded) */
    int status;        /* HTTP status for the client: the function's, or 500/502/504/429/503 */
    const char *quota; /* TINE_EQUOTA: the quota's name (static) */
    uint32_t retry_after_s; /* TINE_EQUOTA: when to try again */
    int function_status; /* code 0: the status as the function answered it (status is the same
                            when it is from 100 to 599, else 200) */
    const char *body;  /* the function's response body */
    size_t body_len;
    const char *error; /* one line when code != 0 */
    const char *invocation_id;
    bool cold;           /* it waited for its sandbox to start */
    uint64_t duration_ns; /* dispatch to answer */
    uint64_t cold_start_ns; /* start of its sandbox to ready (handler loaded), when cold */
    uint64_t queued_ns;     /* waiting for a sandbox */
    /* private: the function's headers as they came (inv_result_headers) */
    const char *_headers;
    const char *_headers_end;
    uint32_t _nheaders;
} inv_result_t;

/* The function's response headers, in the order it sent them, names in
 * lower case; none unless code is 0. Read with inv_header_next:
 *
 *   inv_header_iter_t it = inv_result_headers(res);
 *   while (inv_header_next(&it, &name, &nlen, &value, &vlen)) ...
 *
 * Names and values are borrowed, like res. */
typedef struct {
    const char *_p;
    const char *_end;
    uint32_t _left;
} inv_header_iter_t;

inv_header_iter_t inv_result_headers(const inv_result_t *res);

/* The next header of the iteration; false after the last. */
bool inv_header_next(inv_header_iter_t *it, const char **name, size_t *nlen, const char **value, size_t *vlen);

/* How many headers the function sent (0 unless code is 0). */
uint32_t inv_result_header_count(const inv_result_t *res);

/* The headers as a JSON object {name: value} (a repeated name: its last
 * value), for the admin API and tine.invoke's reply. */
json_t *inv_result_headers_json(const inv_result_t *res);

typedef void (*inv_done_cb)(void *data, const inv_result_t *res);

inv_invoker_t *inv_new(struct uv_loop_s *loop, sbx_zygote_t *zygote, const inv_config_t *cfg);

/* Closes every sandbox; calls still running or queued get 503 ("the node
 * is shutting down") on the next loop turn. The invoker is freed once its
 * handles closed: run the loop until then. */
void inv_free(inv_invoker_t *inv);

/* Starts an invocation of function `fn_index` of version `v`. `request` is
 * the request object (kind, method, path, params, query, headers or event);
 * the invoker adds "ctx" and takes the reference. `body` is copied. `cb` is
 * called exactly once, later, unless inv_call_cancel is called first:
 * never inside inv_call nor any other inv_* function (an answer comes from
 * the read callback of its sandbox's pipe, a failure on a later loop turn),
 * so *out is set before it can run. On a synchronous failure (TINE_EBUSY:
 * the function's queue is full, the gateway's 429; TINE_ENOTFOUND) returns
 * the error and never calls cb. A call its namespace's quotas refuse (at
 * once, or after its node asked Redis) gets cb with TINE_EQUOTA and 429. */
int inv_call(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, json_t *request, const void *body,
             size_t body_len, inv_done_cb cb, void *data, inv_call_t **out);

/* A request built member by member for inv_call_request, without a JSON
 * tree: the invoker counts the members and writes them in the form the
 * sandbox reads (its format is sandbox/'s). Caller-allocated; the fields are
 * private. Keys and strings are copied as they are added.
 *
 *   inv_request_t rq;
 *   inv_request_init(&rq, "http");
 *   inv_request_str(&rq, "method", "GET", 3);
 *   inv_request_begin_object(&rq, "headers");
 *   inv_request_header(&rq, "Accept", 6, "text/html", 9);
 *   inv_request_end_object(&rq);
 *   inv_call_request(inv, v, fn, &rq, body, body_len, cb, data, &call);
 *   inv_request_dispose(&rq);
 *
 * Out of memory aborts (daemon code). */
typedef struct {
    tine_buf_t _frame;    /* the INVOKE frame being written: header, then the request object */
    size_t _count_at;     /* where the request object's member count goes */
    uint32_t _members;    /* members of the request object */
    size_t _object_at;    /* the open object's count (0: none open) */
    size_t _object_first; /* its first member */
    uint32_t _object_members;
    uint64_t _object_names; /* a filter of the header names in it (sandbox/meta.c) */
    const char *_trigger;
    char _trace[33];  /* its trace id ("": the call starts a trace) */
    char _parent[33]; /* its parent's invocation id or span id ("": none) */
} inv_request_t;

/* Starts an empty request; `trigger` ("http", "event", ...; borrowed) names
 * what started it in the activation record. */
void inv_request_init(inv_request_t *rq, const char *trigger);

/* Places the call in a call tree (common/trace.h): `trace` is a trace id
 * (32 hex digits), `parent` the invocation id of its parent or the span id of
 * an incoming traceparent (hex, at most 32 digits). Values of another shape
 * are ignored: the call starts its own trace. */
void inv_request_trace(inv_request_t *rq, const char *trace, const char *parent);

/* The same from a W3C traceparent header's value (len bytes); a value that
 * does not parse is ignored. */
void inv_request_traceparent(inv_request_t *rq, const char *value, size_t len);

/* Frees what the request holds (whether or not it was called). */
void inv_request_dispose(inv_request_t *rq);

/* A string member `key` of the request, or of its open object. */
void inv_request_str(inv_request_t *rq, const char *key, const char *s, size_t len);

/* A string member of the open object whose key has a length (a route's
 * parameter names). */
void inv_request_field(inv_request_t *rq, const char *key, size_t klen, const char *s, size_t len);

/* Any JSON value as member `key` of the request (not of an object). */
void inv_request_json(inv_request_t *rq, const char *key, const json_t *v);

/* Opens an object member `key` of the request; members go into it until
 * inv_request_end_object. Objects do not nest. */
void inv_request_begin_object(inv_request_t *rq, const char *key);
void inv_request_end_object(inv_request_t *rq);

/* An HTTP header in the open object: its name in lower case; a name seen
 * before gets ", " and this value appended to its first value instead
 * (HTTP's rule for repeated fields), so each name is one member. An object
 * that holds headers holds nothing else. */
void inv_request_header(inv_request_t *rq, const char *name, size_t nlen, const char *value, size_t vlen);

/* inv_call for a request built with inv_request_*, with the same contract.
 * On success it takes the request's bytes (rq is left empty); dispose rq in
 * either case. The invoker adds "ctx". */
int inv_call_request(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, inv_request_t *rq, const void *body,
                     size_t body_len, inv_done_cb cb, void *data, inv_call_t **out);

/* The caller lost interest (client went away): cb will not be called, even
 * when the call's failure is already due. A queued call leaves its queue;
 * a running one runs to its end (and is recorded). */
void inv_call_cancel(inv_call_t *c);

/* The invocation id of a call started and not yet finished (32 hex digits:
 * the one its result and activation record carry). */
const char *inv_call_id(const inv_call_t *c);

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

/* The node's sandboxes by state, over every pool: starting, warm and idle,
 * busy (closing ones are left out). Accepts NULL (zeros). */
void inv_sandbox_counts(inv_invoker_t *inv, size_t *starting, size_t *idle, size_t *busy);

/* Deletes the tine.kv keys of an app that is deleted (their count in
 * *kv_keys) and its KV usage counts. Synchronous. Returns 0, TINE_EREDIS, or
 * TINE_EINVAL when the node has no Redis for tine.kv. */
int inv_delete_app_data(inv_invoker_t *inv, const char *app, size_t *kv_keys, char *err, size_t errlen);

#endif
