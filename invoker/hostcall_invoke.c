/* tine.invoke and tine.invoke_async: a function calls another function of
 * its app, served on this node by the invoker itself — no HTTP, no Redis.
 * The callee runs on the caller's version (a call is served wholly by one
 * version), gets the payload as its event, and its response goes back to
 * the caller in the host reply.
 *
 * Bounds, each a clear error for the caller: the depth of nested calls
 * (inv_config_t.max_invoke_depth), the calls one invocation has in flight
 * (INV_MAX_INVOKE_FANOUT), and a synchronous call that could only wait for
 * itself (every sandbox its function may have is already a caller up the
 * same chain). */
#include "hostcall_internal.h"
#include "meta.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One tine.invoke in flight: the callee's callback data. */
typedef struct {
    inv_call_t *caller; /* held until the callee finished */
    inv_waiting_t *waiting; /* synchronous: the caller's entry in the blocked table */
    const char *fn;     /* the callee's name (in the version's manifest) */
    bool async;
} invoke_op_t;

static void on_callee_done(void *data, const inv_result_t *res);

/* Payload bytes: the callee's INVOKE frame must stay within the frame limit. */
#define INV_MAX_PAYLOAD (6u * 1024u * 1024u)

/* ------------------------------------------------- blocked-caller table */

/* The bucket of (v, fn_index) in the blocked-caller table, set up on first
 * use. */
static tine_list_t *waiting_bucket(inv_hostcalls_t *hc, const reg_app_version_t *v, size_t fn_index)
{
    if (hc->waiting[0].next == NULL)
        for (size_t i = 0; i < INV_WAITING_BUCKETS; i++)
            tine_list_init(&hc->waiting[i]);
    uintptr_t h = (uintptr_t)v * 31u + fn_index;
    return &hc->waiting[(h ^ (h >> 9)) % INV_WAITING_BUCKETS];
}

/* The entry of (v, fn_index) in the blocked-caller table, or NULL. */
static inv_waiting_t *waiting_find(inv_hostcalls_t *hc, const reg_app_version_t *v, size_t fn_index)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, waiting_bucket(hc, v, fn_index)) {
        inv_waiting_t *w = tine_list_entry(l, inv_waiting_t, link);
        if (w->version == v && w->fn_index == fn_index)
            return w;
    }
    return NULL;
}

/* How many callers of (v, fn_index) are blocked in a synchronous tine.invoke. */
static uint32_t waiting_count(inv_hostcalls_t *hc, const reg_app_version_t *v, size_t fn_index)
{
    inv_waiting_t *w = waiting_find(hc, v, fn_index);
    return w ? w->count : 0;
}

/* Counts one more blocked caller of c's function; returns its entry. */
static inv_waiting_t *waiting_add(inv_hostcalls_t *hc, const inv_call_t *c)
{
    inv_waiting_t *w = waiting_find(hc, c->pool->version, c->pool->fn_index);
    if (w == NULL) {
        w = xcalloc(1, sizeof(*w));
        w->version = c->pool->version;
        w->fn_index = c->pool->fn_index;
        tine_list_insert_head(waiting_bucket(hc, w->version, w->fn_index), &w->link);
    }
    w->count++;
    return w;
}

/* One blocked caller less; the entry goes when none is left. */
static void waiting_remove(inv_waiting_t *w)
{
    if (--w->count > 0)
        return;
    tine_list_remove(&w->link);
    free(w);
}

void inv__invoke_dispose(inv_hostcalls_t *hc)
{
    if (hc->waiting[0].next == NULL)
        return; /* never used */
    for (size_t i = 0; i < INV_WAITING_BUCKETS; i++) {
        tine_list_t *l;
        while ((l = tine_list_pop_head(&hc->waiting[i])) != NULL)
            free(tine_list_entry(l, inv_waiting_t, link));
    }
}

/* ---------------------------------------------------------- the calls */

/* The caller waiting for `c` when `c` is a synchronous tine.invoke, else NULL. */
static inv_call_t *sync_caller(const inv_call_t *c)
{
    if (c->cb != on_callee_done)
        return NULL;
    const invoke_op_t *op = c->data;
    return op->async ? NULL : op->caller;
}

/* True when the response's content type says JSON. */
static bool is_json(const inv_result_t *res)
{
    inv_header_iter_t it = inv_result_headers(res);
    const char *n, *v;
    size_t nl, vl;
    while (inv_header_next(&it, &n, &nl, &v, &vl))
        if (nl == 12 && memcmp(n, "content-type", 12) == 0)
            return vl >= 16 && strncmp(v, "application/json", 16) == 0 && (vl == 16 || v[16] == ';');
    return false;
}

/* Answers a synchronous caller with the callee's response: the binary
 * object {status, invocation_id, json, headers}, where headers is left out
 * when it is just the JSON content type (the common case); the body goes
 * on as the callee wrote it. */
static void reply_result(inv_call_t *caller, const inv_result_t *res)
{
    bool json = res->code == 0 && is_json(res);
    uint32_t nheaders = inv_result_header_count(res);
    bool headers = res->code == 0 && nheaders > 0 && !(json && nheaders == 1);
    tine_buf_t m;
    tine_buf_init(&m);
    size_t at = sbx_meta_begin(&m, SBX_META_OBJECT);
    sbx_meta_key(&m, "status", 6);
    sbx_meta_int(&m, res->status);
    sbx_meta_kstr(&m, "invocation_id", res->invocation_id, strlen(res->invocation_id));
    sbx_meta_key(&m, "json", 4);
    sbx_meta_bool(&m, json);
    if (headers) {
        sbx_meta_key(&m, "headers", 7);
        size_t hat = sbx_meta_begin(&m, SBX_META_OBJECT);
        inv_header_iter_t it = inv_result_headers(res);
        const char *n, *v;
        size_t nl, vl;
        uint32_t count = 0;
        while (inv_header_next(&it, &n, &nl, &v, &vl)) {
            /* Names and values as text for every SDK: bytes that are not
             * UTF-8 become U+FFFD (rare: a helper's tree only then). */
            json_t *nt = tine_utf8_valid(n, nl) ? NULL : tine_json_text(n, nl);
            json_t *vt = tine_utf8_valid(v, vl) ? NULL : tine_json_text(v, vl);
            sbx_meta_key(&m, nt ? json_string_value(nt) : n, nt ? json_string_length(nt) : nl);
            sbx_meta_str(&m, vt ? json_string_value(vt) : v, vt ? json_string_length(vt) : vl);
            json_decref(nt);
            json_decref(vt);
            count++;
        }
        sbx_meta_end(&m, hat, count);
    }
    sbx_meta_end(&m, at, headers ? 4 : 3);
    inv__hc_reply_meta(caller, &m, res->body, res->body_len);
    tine_buf_dispose(&m);
}

/* The callee finished: answer a synchronous caller with its response, or
 * just give the caller's in-flight slot back. */
static void on_callee_done(void *data, const inv_result_t *res)
{
    invoke_op_t *op = data;
    inv_call_t *caller = op->caller;
    caller->invokes_in_flight--;
    /* The table is gone with the host-call service (inv_free). */
    if (op->waiting != NULL && caller->inv->hostcalls != NULL)
        waiting_remove(op->waiting);
    if (op->async) {
        inv_call_release(caller);
    } else if (res->code == 0) {
        reply_result(caller, res);
    } else if (res->code == TINE_EHANDLER) {
        inv__hc_fail(caller, "%s raised: %s (invocation %s)", op->fn,
                     res->error ? res->error : "an error", res->invocation_id);
    } else {
        inv__hc_fail(caller, "%s (invocation %s)", res->error ? res->error : tine_strerror(res->code),
                     res->invocation_id);
    }
    free(op);
}

void inv__invoke(inv_call_t *c, const char *meta, size_t meta_len, const char *body, size_t body_len)
{
    inv_invoker_t *inv = c->inv;
    reg_app_version_t *v = c->pool->version;
    uint32_t fn_len = 0;
    const char *fn_arg = sbx_meta_member_str(meta, meta_len, "fn", &fn_len);
    sbx_meta_cur_t a;
    bool async = sbx_meta_member(meta, meta_len, "async", 5, &a) && *a.p == SBX_META_TRUE;
    inv_hostcalls_t *hc = inv->hostcalls;
    size_t idx;
    if (fn_arg == NULL || !reg_manifest_function_index(v->manifest, fn_arg, fn_len, &idx)) {
        inv__hc_fail(c, "app %s has no function '%.*s'", v->app, fn_arg ? (int)(fn_len > 128 ? 128 : fn_len) : 0,
                     fn_arg ? fn_arg : "");
        return;
    }
    const char *fn = v->manifest->functions[idx].name;
    const reg_function_t *target = &v->manifest->functions[idx];
    uint32_t max_depth = inv->cfg.max_invoke_depth ? inv->cfg.max_invoke_depth : INV_DEFAULT_INVOKE_DEPTH;
    if (c->invoke_depth >= max_depth) {
        inv__hc_fail(c, "calling %s would nest %" PRIu32 " calls deep, over the limit of %" PRIu32
                        " (tined --max-invoke-depth)",
                     fn, c->invoke_depth + 1, max_depth);
        return;
    }
    if (c->invokes_in_flight >= INV_MAX_INVOKE_FANOUT) {
        inv__hc_fail(c, "this invocation already has %d calls in flight, the limit", INV_MAX_INVOKE_FANOUT);
        return;
    }
    /* Each synchronous caller up the chain keeps its sandbox busy while it
     * waits: when they already fill the callee's concurrency, no sandbox can
     * ever come free for this call. The chain is walked only when enough
     * callers of the callee wait anywhere for that to be possible. */
    bool self = c->pool->version == v && c->pool->fn_index == idx;
    if (!async && waiting_count(hc, v, idx) + self >= target->concurrency) {
        uint32_t waiting = 0;
        for (const inv_call_t *x = c; x != NULL; x = sync_caller(x))
            waiting += x->pool->version == v && x->pool->fn_index == idx;
        if (waiting >= target->concurrency) {
            inv__hc_fail(c,
                         "%s would wait for itself: this call chain already holds all %" PRIu32
                         " of its sandboxes (its concurrency)",
                         fn, target->concurrency);
            return;
        }
    }
    if (body_len > INV_MAX_PAYLOAD) {
        inv__hc_fail(c, "the payload of %zu bytes is over the limit of %u bytes", body_len, INV_MAX_PAYLOAD);
        return;
    }
    /* The payload goes on as the callee's body, parsed once, by the callee. */
    inv_request_t rq;
    inv_request_init(&rq, "invoke");
    inv_request_str(&rq, "kind", "event", 5);
    inv_request_str(&rq, "trigger", "invoke", 6);
    inv_request_json(&rq, "event_in_body", json_true());
    inv_request_trace(&rq, c->trace, c->id_hex); /* the callee is the caller's child */

    invoke_op_t *op = xcalloc(1, sizeof(*op));
    op->caller = c;
    op->fn = target->name;
    op->async = async;
    if (async)
        inv_call_hold(c); /* the callee gives back the in-flight slot */
    else
        op->waiting = waiting_add(hc, c);
    c->invokes_in_flight++;
    inv_call_t *callee = NULL;
    int rc = inv_call_request(inv, v, idx, &rq, body, body_len, on_callee_done, op, &callee);
    inv_request_dispose(&rq);
    if (rc != 0) {
        c->invokes_in_flight--;
        if (async)
            inv_call_release(c);
        else
            waiting_remove(op->waiting);
        free(op);
        if (rc == TINE_EBUSY)
            inv__hc_fail(c, "%s is at its concurrency limit and its queue is full", fn);
        else
            inv__hc_fail(c, "cannot invoke %s: %s", fn, tine_strerror(rc));
        return;
    }
    /* The callee's callback runs on a later loop turn at the earliest: it is
     * still there. */
    callee->invoke_depth = c->invoke_depth + 1;
    if (async) {
        tine_buf_t m;
        tine_buf_init(&m);
        size_t at = sbx_meta_begin(&m, SBX_META_OBJECT);
        sbx_meta_kstr(&m, "invocation_id", callee->id_hex, strlen(callee->id_hex));
        sbx_meta_end(&m, at, 1);
        inv__hc_reply_meta(c, &m, NULL, 0);
        tine_buf_dispose(&m);
    }
}
