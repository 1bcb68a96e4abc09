/* Calls: an invocation from the moment inv_call accepts it to its callback
 * and its activation record.
 *
 * A call's callback is never run inside the function that started it (the
 * header's contract; libuv's for uv_write). An answer reaches it from the
 * read callback of its sandbox's pipe, which no inv_* function runs. A
 * failure may be found anywhere, inside inv_call too (a start that fails at
 * once), so it is logged and recorded at once but its callback is queued on
 * the invoker's completions and run from a uv_idle handle: on the next loop
 * turn, before the loop polls. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <stdlib.h>
#include <string.h>

/* Frees c with what it owns: its frame, its logs, its failure message. */
static void call_free(inv_call_t *c)
{
    json_decref(c->logs);
    free(c->frame);
    free(c->failed_error);
    free(c);
}

/* Hands the finished call to the activation observer. */
static void call_record(inv_call_t *c, const inv_result_t *res)
{
    inv_invoker_t *inv = c->inv;
    if (inv->cfg.on_activation == NULL)
        return;
    const reg_function_t *fn = c->pool->fn;
    inv_activation_t a = {
        .invocation_id = c->id_hex,
        .app = c->pool->version->app,
        .ns = c->pool->version->manifest->namespace,
        .version = c->pool->version->version,
        .function = fn->name,
        .trigger = c->trigger[0] ? c->trigger : "http",
        .trace_id = c->trace,
        .parent_id = c->parent,
        .start_unix_ms = c->started_unix_ms,
        .duration_ns = res->duration_ns,
        .queued_ns = res->queued_ns,
        .cold_start_ns = res->cold_start_ns,
        .cold = res->cold,
        .dispatched = c->dispatched_at != 0,
        .memory_mb = fn->memory_mb,
        .timeout_ms = fn->timeout_ms,
        .cpu_ns = c->cpu_ns,
        .code = res->code,
        .status = res->status,
        .error = res->code ? res->error : NULL,
        .logs = c->logs,
        .logs_function = c->logs_function,
        .logs_truncated = c->logs_truncated,
    };
    inv->cfg.on_activation(inv->cfg.on_activation_data, &a);
}

/* The admission of an admitted call ends (it finished, or left its queue). */
static void call_unadmit(inv_call_t *c)
{
    if (c->admitted && c->pool->admit)
        c->inv->cfg.admission->end(c->pool->admit, INV_ADMIT_CALL, 0);
    c->admitted = false;
}

/* Marks c finished at `now` and fills res's id and timings from it. */
static void call_end(inv_call_t *c, inv_result_t *res, uint64_t now)
{
    call_unadmit(c);
    res->invocation_id = c->id_hex;
    res->cold = c->cold;
    res->cold_start_ns = c->cold_start_ns;
    if (c->dispatched_at) {
        res->duration_ns = now - c->dispatched_at;
        res->queued_ns = c->dispatched_at - c->queued_at;
    } else {
        res->queued_ns = now - c->queued_at;
    }
    c->sandbox = NULL;
    c->finished = true;
    c->inv->calls--;
}

/* What follows a finished call's callback: what ended it goes to its logs
 * (tine logs) with what it dropped, and its activation is recorded. */
static void call_log_and_record(inv_call_t *c, const inv_result_t *res)
{
    if (res->code != 0 && !c->error_logged)
        inv__log_error(c, res->error, NULL);
    if (c->log_dropped_cap | c->log_dropped_rate)
        inv__log_call_end(c);
    call_record(c, res);
}

void inv__call_answer(inv_call_t *c, inv_result_t *res, uint64_t now)
{
    call_end(c, res, now);
    if (c->cb)
        c->cb(c->data, res);
    call_log_and_record(c, res);
    if (c->holds == 0)
        call_free(c);
}

static void on_completions(uv_idle_t *h);
static void calls_close_now(inv_invoker_t *inv);

void inv__call_fail(inv_call_t *c, int code, int status, const char *error)
{
    inv_invoker_t *inv = c->inv;
    inv_result_t *res = &c->failed;
    memset(res, 0, sizeof(*res));
    res->code = code;
    res->status = status;
    c->failed_error = xstrdup(error);
    res->error = c->failed_error;
    call_end(c, res, tine_now_ns());
    if (code != TINE_EQUOTA)
        call_log_and_record(c, res);
    c->completing = true;
    tine_list_insert_tail(&inv->completed, &c->link);
    /* A closing handle delivers what is left in its close callback. */
    if (!uv_is_closing((uv_handle_t *)&inv->completions))
        uv_idle_start(&inv->completions, on_completions);
}

void inv__call_refuse(inv_call_t *c, const inv_refusal_t *r)
{
    inv__call_fail(c, TINE_EQUOTA, 429, r->message);
    c->failed.quota = r->quota;
    c->failed.retry_after_s = r->retry_after_s ? r->retry_after_s : 1;
}

/* Runs the callbacks of the calls on the completions when it starts
 * (unless cancelled meanwhile; failures their callbacks find wait for the
 * next turn) and frees the calls no host call holds. */
static void calls_deliver(inv_invoker_t *inv)
{
    tine_list_t due;
    tine_list_init(&due);
    tine_list_splice_tail(&due, &inv->completed);
    tine_list_t *l;
    while ((l = tine_list_pop_head(&due)) != NULL) {
        inv_call_t *c = tine_list_entry(l, inv_call_t, link);
        if (c->cb)
            c->cb(c->data, &c->failed);
        c->completing = false; /* only now: the callback may end a hold of c */
        if (c->holds == 0)
            call_free(c);
    }
}

/* The loop turn after failures were found: their callbacks run. */
static void on_completions(uv_idle_t *h)
{
    inv_invoker_t *inv = h->data;
    inv->completions_draining = true;
    calls_deliver(inv);
    inv->completions_draining = false;
    if (!tine_list_empty(&inv->completed))
        return;
    uv_idle_stop(h);
    if (inv->closing)
        calls_close_now(inv);
}

/* The completions handle closed (inv_free): what is still due is
 * delivered, and the invoker may be freed. */
static void on_completions_closed(uv_handle_t *h)
{
    inv_invoker_t *inv = h->data;
    while (!tine_list_empty(&inv->completed))
        calls_deliver(inv);
    inv->completions_open = false;
    inv__maybe_free(inv);
}

/* Closes the completions handle (once). */
static void calls_close_now(inv_invoker_t *inv)
{
    if (!uv_is_closing((uv_handle_t *)&inv->completions))
        uv_close((uv_handle_t *)&inv->completions, on_completions_closed);
}

void inv__calls_init(inv_invoker_t *inv)
{
    tine_list_init(&inv->completed);
    tine_list_init(&inv->admitting);
    uv_idle_init(inv->loop, &inv->completions);
    inv->completions.data = inv;
    inv->completions_open = true;
}

void inv__calls_close(inv_invoker_t *inv)
{
    /* Callbacks still due run first (on_completions closes it then). */
    if (tine_list_empty(&inv->completed) && !inv->completions_draining)
        calls_close_now(inv);
}

/* ------------------------------------------------------------ host calls */

void inv_call_hold(inv_call_t *c)
{
    c->holds++;
}

void inv_call_reply(inv_call_t *c, const char *meta, size_t meta_len, const void *body, size_t body_len)
{
    inv_sandbox_t *s = c->sandbox;
    if (!c->finished && s != NULL && s->state == SBX_BUSY && s->call == c)
        inv__sandbox_write(s, SBX_MSG_HOSTREPLY, c->id, meta, meta_len, body, body_len);
    inv_call_release(c);
}

void inv_call_release(inv_call_t *c)
{
    if (--c->holds == 0 && c->finished && !c->completing)
        call_free(c);
}

/* ---------------------------------------------------------- new calls */

/* The namespace's answer for call c: queued in its pool, or refused. */
static void call_admitted(inv_call_t *c, int rc, const inv_refusal_t *r)
{
    if (rc != 0) {
        inv__call_refuse(c, r);
        return;
    }
    c->admitted = true;
    inv__pool_enqueue(c->pool, c);
    inv__pool_dispatch(c->pool);
}

/* The admission of a call that waited for Redis was answered. */
static void on_call_admitted(void *ticket, int rc, const inv_refusal_t *r)
{
    inv_call_t *c = ticket;
    inv_pool_t *p = c->pool;
    c->admitting = false;
    tine_list_remove(&c->link);
    p->nadmitting--;
    call_admitted(c, rc, r);
    inv__pool_admission_over(p);
}

void inv__call_admit(inv_call_t *c)
{
    inv_pool_t *p = c->pool;
    inv_refusal_t r;
    int rc = p->admit ? c->inv->cfg.admission->begin(p->admit, INV_ADMIT_CALL, 0, on_call_admitted, c, &r) : 0;
    if (rc == -EAGAIN) {
        c->admitting = true;
        p->nadmitting++;
        tine_list_insert_tail(&c->inv->admitting, &c->link);
        return;
    }
    call_admitted(c, rc, &r);
    if (rc != 0)
        inv__pool_admission_over(p);
}

void inv__calls_shutdown_admitting(inv_invoker_t *inv)
{
    tine_list_t *l;
    while ((l = tine_list_pop_head(&inv->admitting)) != NULL) {
        inv_call_t *c = tine_list_entry(l, inv_call_t, link);
        inv_pool_t *p = c->pool;
        inv->cfg.admission->forget(p->admit, c);
        c->admitting = false;
        p->nadmitting--;
        inv__call_fail(c, TINE_EBUSY, 503, "the node is shutting down");
    }
}

int inv_call_request(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, inv_request_t *rq, const void *body,
                     size_t body_len, inv_done_cb cb, void *data, inv_call_t **out)
{
    if (fn_index >= v->manifest->functions_len || inv->closing)
        return TINE_ENOTFOUND;
    inv_pool_t *p = inv__pool_get(inv, v, fn_index);
    if (p->queued >= inv->cfg.max_queue)
        return TINE_EBUSY;
    inv_call_t *c = xcalloc(1, sizeof(*c));
    c->inv = inv;
    c->pool = p;
    tine_list_init(&c->link);
    c->cb = cb;
    c->data = data;
    c->id = ++inv->next_id;
    /* node prefix, then the id as 16 hex digits */
    static const char hex[] = "0123456789abcdef";
    memcpy(c->id_hex, inv->node_prefix, 16);
    for (int i = 0; i < 16; i++)
        c->id_hex[16 + i] = hex[(c->id >> (60 - 4 * i)) & 0xf];
    c->id_hex[32] = '\0';
    if (rq->_trigger) {
        size_t tl = strnlen(rq->_trigger, sizeof(c->trigger) - 1);
        memcpy(c->trigger, rq->_trigger, tl); /* c is zeroed: NUL-terminated */
    }
    /* Its call tree: the request's, else a trace of its own. */
    memcpy(c->trace, rq->_trace[0] ? rq->_trace : c->id_hex, sizeof c->trace);
    memcpy(c->parent, rq->_parent, sizeof c->parent);
    /* The frame is built once, when the call is accepted, and kept. */
    c->frame = inv__request_take_frame(rq, c->id, c->id_hex, body, body_len, &c->frame_len);
    c->queued_at = tine_now_ns();
    c->started_unix_ms = tine_now_unix_ms();
    inv->calls++;
    if (out)
        *out = c;
    inv__call_admit(c);
    return 0;
}

int inv_call(inv_invoker_t *inv, reg_app_version_t *v, size_t fn_index, json_t *request, const void *body,
             size_t body_len, inv_done_cb cb, void *data, inv_call_t **out)
{
    const char *trigger = json_string_value(json_object_get(request, "trigger"));
    if (trigger == NULL)
        trigger = json_string_value(json_object_get(request, "kind"));
    inv_request_t rq;
    inv_request_init(&rq, trigger);
    const char *k;
    json_t *x;
    json_object_foreach(request, k, x)
    {
        inv_request_json(&rq, k, x);
    }
    int rc = inv_call_request(inv, v, fn_index, &rq, body, body_len, cb, data, out);
    inv_request_dispose(&rq);
    json_decref(request);
    return rc;
}

const char *inv_call_id(const inv_call_t *c)
{
    return c->id_hex;
}

void inv_call_cancel(inv_call_t *c)
{
    c->cb = NULL;
    if (c->sandbox != NULL || c->finished)
        return; /* it runs to its end (or its callback is due): nobody hears of it */
    inv_pool_t *p = c->pool;
    if (c->admitting) {
        /* Waiting for its admission: forgotten there. */
        c->inv->cfg.admission->forget(p->admit, c);
        tine_list_remove(&c->link);
        p->nadmitting--;
        c->inv->calls--;
        call_free(c);
        inv__pool_admission_over(p);
        return;
    }
    /* Still queued: nobody waits for it any more, so it leaves the queue. */
    call_unadmit(c);
    inv__pool_dequeue(p, c);
    c->inv->calls--;
    call_free(c);
}
