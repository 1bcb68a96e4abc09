/* Private to the host-call service (hostcall.c, hostcall_http.c,
 * hostcall_invoke.c): the service object and the ways to answer. Every host
 * call is held once by the dispatcher (inv_hostcall) and answered exactly
 * once with inv__hc_reply or inv__hc_fail, now or later. */
#ifndef TINE_HOSTCALL_INTERNAL_H
#define TINE_HOSTCALL_INTERNAL_H

#include "invoker_internal.h"

#include <jansson.h>

struct rds_async;
typedef struct inv_http inv_http_t;
typedef struct inv_hostcalls inv_hostcalls_t;

/* A (version, function) with callers blocked in a synchronous tine.invoke. */
typedef struct inv_waiting {
    const reg_app_version_t *version;
    size_t fn_index;
    uint32_t count;
    tine_list_t link; /* its bucket of inv_hostcalls_t.waiting */
} inv_waiting_t;

#define INV_WAITING_BUCKETS 256

struct inv_hostcalls {
    inv_invoker_t *inv;
    struct rds_async *redis;        /* tine.kv; NULL: no Redis configured */
    inv_http_t *http;               /* tine.http */
    bool closing;
    /* tine.secret: the values functions read on this node, so that log
     * lines of their app have them replaced (inv__redact). */
    tine_list_t secrets_seen; /* inv_secret_seen_t.link, newest first */
    size_t nsecrets_seen;
    /* tine.invoke (hostcall_invoke.c): blocked callers per function. */
    tine_list_t waiting[INV_WAITING_BUCKETS]; /* set up on first use (all zero before) */
};

/* Answers host call `c` with metadata `meta` (taken; written as the binary
 * object of sandbox/meta.h) and a body (copied). An answer too large for
 * one frame becomes an error. */
void inv__hc_reply(inv_call_t *c, json_t *meta, const void *body, size_t body_len);

/* inv__hc_reply with the metadata already binary (m, an object). */
void inv__hc_reply_meta(inv_call_t *c, const tine_buf_t *m, const void *body, size_t body_len);

/* Answers host call `c` with {"error": message}; the SDK raises
 * "tine.<call>: message" in the function. */
void inv__hc_fail(inv_call_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds left before the running call `c` times out (0 when none). */
uint32_t inv__hc_remaining_ms(const inv_call_t *c);

/* ------------------------------------------------------ hostcall_http.c */

/* The HTTP client of tine.http: libcurl's multi interface driven by `loop`. */
inv_http_t *inv__http_new(uv_loop_t *loop);

/* Answers every request in flight with an error and frees the client once
 * its handles closed. Accepts NULL. */
void inv__http_free(inv_http_t *h);

/* Serves tine.http for `c`: meta {url, method, headers, timeout_ms}, body the
 * request body. Answers {status, headers} with the response body. */
void inv__http_request(inv_http_t *h, inv_call_t *c, json_t *meta, const char *body, size_t body_len);

/* ---------------------------------------------------- hostcall_invoke.c */

/* Serves tine.invoke / tine.invoke_async for `c`: meta (the HOSTCALL's
 * binary object of meta_len bytes, checked) {fn, async}, body the payload
 * JSON. Synchronous: answers {status, headers, invocation_id, json} with
 * the callee's response body once it finished. Async: answers
 * {invocation_id} at once. */
void inv__invoke(inv_call_t *c, const char *meta, size_t meta_len, const char *body, size_t body_len);

/* Frees the blocked-caller table (every entry is gone once no call waits). */
void inv__invoke_dispose(inv_hostcalls_t *hc);

#endif
