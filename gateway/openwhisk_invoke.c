#define _GNU_SOURCE /* nftw, mkdtemp */
#include "openwhisk_internal.h"

#include "auth.h"
#include "billing.h"
#include "bundle.h"
#include "gateway_internal.h"
#include "registry.h"
#include "tenancy.h"
#include "tine_common.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------ results kept */

/* The activations this node finished (with their results, which billing's
 * records do not hold): a ring, the oldest replaced first. */
typedef struct {
    char id[33];
    char *app;
    json_t *activation; /* OpenWhisk's shape, logs as far as known */
} ow_kept_t;

static ow_kept_t kept[OW_RING];
static size_t kept_next;

/* A fresh activation id of the invoker's shape (32 hex digits), for what
 * is no single tine call: a sequence, a trigger's firing. */
static void random_id(char out[33])
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        uint64_t t = tine_now_ns();
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void keep_activation(const char *app, json_t *activation)
{
    ow_kept_t *k = &kept[kept_next++ % OW_RING];
    free(k->app);
    json_decref(k->activation);
    snprintf(k->id, sizeof k->id, "%s", json_string_value(json_object_get(activation, "activationId")));
    k->app = xstrdup(app);
    k->activation = json_incref(activation);
}

static json_t *kept_activation(const char *app, const char *id)
{
    for (size_t i = 0; i < OW_RING; i++)
        if (kept[i].activation && strcmp(kept[i].id, id) == 0 && strcmp(kept[i].app, app) == 0)
            return kept[i].activation;
    return NULL;
}

/* ------------------------------------------------------------ invoke */

typedef struct ow_call ow_call_t;

/* A request waiting for a call: dropped when the client goes away. */
typedef struct {
    ow_call_t *call;
} ow_waiter_t;

/* One activation under way: an action's call, or each action of a
 * sequence in turn. Freed when it ended and its timer closed. */
struct ow_call {
    gw_server_t *gw;
    h2o_req_t *req;       /* NULL once answered or gone */
    ow_waiter_t *waiter;  /* in req's pool */
    reg_app_version_t *v; /* a reference */
    inv_call_t *call;
    uv_timer_t timer;
    char id[33];
    char *ns, *app, *name, *kind, *subject;
    json_t *limits;
    json_t *sequence; /* the components' names, NULL for an action */
    size_t step;
    json_t *steps_logs; /* a sequence's logs: its components' activation ids */
    json_t *params;     /* the next step's input */
    uint64_t start_ms;
    uint64_t queued_ns;
    bool blocking, result_only, web;
    const char *web_ext;
    bool ended;
};

static void call_answer(ow_call_t *c, json_t *activation);

static void on_call_timer_closed(uv_handle_t *h)
{
    ow_call_t *c = container_of((uv_timer_t *)h, ow_call_t, timer);
    reg_app_version_release(c->v);
    free(c->ns);
    free(c->app);
    free(c->name);
    free(c->kind);
    free(c->subject);
    json_decref(c->limits);
    json_decref(c->sequence);
    json_decref(c->steps_logs);
    json_decref(c->params);
    free((char *)c->web_ext);
    free(c);
}

static void call_end(ow_call_t *c)
{
    c->ended = true;
    if (c->waiter)
        c->waiter->call = NULL;
    c->waiter = NULL;
    c->req = NULL;
    uv_close((uv_handle_t *)&c->timer, on_call_timer_closed);
}

static void on_waiter_dispose(void *p)
{
    ow_waiter_t *w = p;
    if (w->call) {
        w->call->req = NULL; /* the call runs on; its result is kept */
        w->call->waiter = NULL;
    }
}

/* The blocking wait is over: 202 with the activation id, as OpenWhisk. */
static void on_blocking_timeout(uv_timer_t *t)
{
    ow_call_t *c = container_of(t, ow_call_t, timer);
    if (c->req) {
        h2o_req_t *req = c->req;
        c->req = NULL;
        if (c->waiter)
            c->waiter->call = NULL;
        c->waiter = NULL;
        gw__send_json(req, 202, json_pack("{s:s}", "activationId", c->id));
    }
}

static int call_step(ow_call_t *c);

/* A call's end as a record billing would write (without logs). */
static json_t *record_of(const ow_call_t *c, const inv_result_t *res)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:i}", "id", res->invocation_id, "start_ms",
                     (json_int_t)c->start_ms, "version", (json_int_t)c->v->version, "duration_us",
                     (json_int_t)(res->duration_ns / 1000), "queued_us", (json_int_t)(res->queued_ns / 1000), "cold",
                     res->cold, "cold_start_us", (json_int_t)(res->cold_start_ns / 1000), "memory_mb",
                     json_integer_value(json_object_get(c->limits, "memory")), "timeout_ms",
                     json_integer_value(json_object_get(c->limits, "timeout")), "status", res->status);
}

static void on_called(void *data, const inv_result_t *res)
{
    ow_call_t *c = data;
    c->call = NULL;
    uint32_t timeout = (uint32_t)json_integer_value(json_object_get(c->limits, "timeout"));
    json_t *resp = gw_ow_response(res->code, res->status, res->body, res->body_len, res->error, timeout);
    if (c->sequence == NULL) {
        json_t *rec = record_of(c, res);
        gw_ow_act_info_t info = {c->ns, c->name, c->kind, c->subject, resp, c->limits, NULL};
        json_t *act = gw_ow_activation(rec, &info);
        json_decref(rec);
        json_decref(resp);
        keep_activation(c->app, act);
        call_answer(c, act);
        json_decref(act);
        return;
    }
    /* A sequence: the step's activation is kept as its own, and its result
     * is the next step's input (OpenWhisk passes it on as is). */
    json_t *rec = record_of(c, res);
    json_t *step_action = json_array_get(c->sequence, c->step);
    gw_ow_act_info_t info = {c->ns, json_string_value(step_action), NULL, c->subject, resp, NULL, c->id};
    json_t *act = gw_ow_activation(rec, &info);
    json_decref(rec);
    keep_activation(c->app, act);
    json_decref(act);
    json_array_append_new(c->steps_logs, json_string(res->invocation_id));
    bool ok = json_is_true(json_object_get(resp, "success"));
    c->step++;
    if (ok && c->step < json_array_size(c->sequence)) {
        json_decref(c->params);
        c->params = json_incref(json_object_get(resp, "result"));
        json_decref(resp);
        if (call_step(c) == 0)
            return;
        resp = json_pack("{s:s, s:i, s:b, s:{s:s}}", "status", "whisk internal error", "statusCode", 3, "success", 0,
                         "result", "error", "a component of the sequence could not be invoked");
    }
    uint64_t end = tine_now_unix_ms();
    json_t *seq = json_pack("{s:s, s:I, s:I, s:I, s:i, s:i}", "id", c->id, "start_ms", (json_int_t)c->start_ms,
                            "version", (json_int_t)c->v->version, "duration_us",
                            (json_int_t)((end - c->start_ms) * 1000), "memory_mb", 0, "timeout_ms", 0);
    gw_ow_act_info_t sinfo = {c->ns, c->name, "sequence", c->subject, resp, c->limits, NULL};
    json_t *sact = gw_ow_activation(seq, &sinfo);
    json_decref(seq);
    json_decref(resp);
    json_object_set(sact, "logs", c->steps_logs);
    keep_activation(c->app, sact);
    call_answer(c, sact);
    json_decref(sact);
}

/* Starts the call of the current action (of the sequence's step). Returns 0
 * or an error code (nothing started). */
static int call_step(ow_call_t *c)
{
    const char *name = c->sequence ? json_string_value(json_array_get(c->sequence, c->step)) : c->name;
    json_error_t jerr;
    json_t *state = gw__ow_state_of(c->v, &jerr);
    json_t *a = gw__ow_action_of(state, name);
    const char *fn = json_string_value(json_object_get(a, "fn"));
    const reg_manifest_t *m = c->v->manifest;
    size_t idx = SIZE_MAX;
    for (size_t i = 0; fn && i < m->functions_len; i++)
        if (strcmp(m->functions[i].name, fn) == 0)
            idx = i;
    if (idx == SIZE_MAX) {
        json_decref(state);
        return TINE_ENOTFOUND;
    }
    json_t *params = gw_ow_merge_params(json_object_get(a, "parameters"), c->params);
    if (c->sequence && c->step > 0) {
        json_decref(c->limits);
        c->limits = json_incref(json_object_get(a, "limits"));
    }
    json_decref(state);
    json_t *request = json_pack("{s:s, s:o}", "kind", "event", "event", params);
    return inv_call(c->gw->inv, c->v, idx, request, NULL, 0, on_called, c, &c->call);
}

/* A call of action `name` (a) of r's namespace with params (taken), not
 * started. */
static ow_call_t *call_new(const ow_req_t *r, const char *name, const json_t *a, json_t *params)
{
    ow_call_t *c = xcalloc(1, sizeof *c);
    c->gw = r->gw;
    c->v = r->v;
    reg_app_version_retain(c->v);
    c->ns = xstrdup(r->ns);
    c->app = xstrdup(r->app);
    c->name = xstrdup(name);
    c->kind = xstrdup(json_string_value(json_object_get(a, "kind")));
    c->subject = xstrdup(r->caller.id ? r->caller.id : r->ns);
    c->limits = json_incref(json_object_get(a, "limits"));
    c->params = params;
    c->start_ms = tine_now_unix_ms();
    uv_timer_init(r->gw->loop, &c->timer);
    if (gw_ow_kind_parse(c->kind) == GW_OW_KIND_SEQUENCE) {
        c->sequence = json_array();
        c->steps_logs = json_array();
        size_t i;
        json_t *comp;
        json_array_foreach(json_object_get(a, "components"), i, comp)
        {
            const char *cn = gw__ow_component_name(r, json_string_value(comp));
            json_array_append_new(c->sequence, json_string(cn ? cn : ""));
        }
        random_id(c->id);
        json_t *la = gw__ow_action_of(r->state, json_string_value(json_array_get(c->sequence, 0)));
        json_decref(c->limits);
        c->limits = json_incref(json_object_get(la, "limits"));
    }
    return c;
}

/* Starts the call's first action; its id is known then. Returns 0 or an
 * error code (nothing started: end it with call_end). */
static int call_start(ow_call_t *c)
{
    int rc = call_step(c);
    if (rc == 0 && c->sequence == NULL)
        snprintf(c->id, sizeof c->id, "%s", inv_call_id(c->call));
    return rc;
}

/* Starts an activation of action `name` (a) with params (taken). The call
 * answers req when blocking (or web), else 202 with its id at once. */
static void invoke(ow_req_t *r, const char *name, const json_t *a, json_t *params, bool blocking, bool result_only,
                   const char *web_ext)
{
    ow_call_t *c = call_new(r, name, a, params);
    c->blocking = blocking || web_ext;
    c->result_only = result_only;
    c->web = web_ext != NULL;
    c->web_ext = web_ext ? xstrdup(web_ext) : NULL;
    int rc = call_start(c);
    if (rc != 0) {
        gw__ow_error(r->req, rc == TINE_EBUSY ? 429 : 503, "%s: cannot invoke %s: %s",
                 rc == TINE_EBUSY ? "Too many requests" : "Whisk internal error", name, tine_strerror(rc));
        call_end(c);
        return;
    }
    if (!c->blocking) {
        gw__send_json(r->req, 202, json_pack("{s:s}", "activationId", c->id));
        return;
    }
    c->req = r->req;
    c->waiter = h2o_mem_alloc_shared(&r->req->pool, sizeof *c->waiter, on_waiter_dispose);
    c->waiter->call = c;
    uv_timer_start(&c->timer, on_blocking_timeout, OW_BLOCKING_MS, 0);
}

/* A web action's answer from its result (OpenWhisk's extensions). */
static void web_answer(h2o_req_t *req, const char *ext, json_t *activation)
{
    json_t *resp = json_object_get(activation, "response");
    json_t *result = json_object_get(resp, "result");
    if (!json_is_true(json_object_get(resp, "success"))) {
        gw__ow_error(req, json_integer_value(json_object_get(resp, "statusCode")) == 1 ? 400 : 502, "%s",
                 json_string_value(json_object_get(result, "error")) ? json_string_value(json_object_get(result, "error"))
                                                                     : "The action did not produce a valid response.");
        return;
    }
    if (strcmp(ext, "json") == 0) {
        gw__send_json(req, 200, json_incref(result));
        return;
    }
    if (strcmp(ext, "text") == 0 || strcmp(ext, "html") == 0) {
        json_t *v = json_object_get(result, ext);
        if (!json_is_string(v)) {
            gw__ow_error(req, 400, "The action did not produce a valid response: no string '%s' in its result.", ext);
            return;
        }
        req->res.status = 200;
        req->res.reason = "OK";
        const char *ct = strcmp(ext, "html") == 0 ? "text/html; charset=utf-8" : "text/plain; charset=utf-8";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
        gw__send_body(req, json_string_value(v), json_string_length(v));
        return;
    }
    /* http: {statusCode, headers, body} */
    json_t *sc = json_object_get(result, "statusCode"), *headers = json_object_get(result, "headers");
    json_t *body = json_object_get(result, "body");
    int status = sc ? (int)json_integer_value(sc) : body ? 200 : 204;
    if (status < 200 || status > 599 || (headers && !json_is_object(headers))) {
        gw__ow_error(req, 502, "The action did not produce a valid response: statusCode must be 200..599 and headers "
                           "an object.");
        return;
    }
    req->res.status = status;
    req->res.reason = gw__reason(status);
    bool has_ct = false;
    const char *hn;
    json_t *hv;
    json_object_foreach(headers, hn, hv)
    {
        if (!json_is_string(hv) && !json_is_number(hv))
            continue;
        char *val = json_is_string(hv) ? xstrdup(json_string_value(hv)) : json_dumps(hv, JSON_ENCODE_ANY);
        size_t nl = strlen(hn), vl = strlen(val);
        if (tine_http_token(hn, nl) && strcspn(val, "\r\n") == vl) {
            h2o_iovec_t name = h2o_strdup(&req->pool, hn, nl);
            h2o_strtolower(name.base, name.len);
            has_ct = has_ct || strcmp(name.base, "content-type") == 0;
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0, NULL,
                                  h2o_strdup(&req->pool, val, vl).base, vl);
        }
        free(val);
    }
    if (json_is_string(body)) {
        if (!has_ct)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/html; charset=utf-8"));
        gw__send_body(req, json_string_value(body), json_string_length(body));
    } else if (body) {
        char *text = json_dumps(body, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!has_ct)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("application/json"));
        gw__send_body(req, text, strlen(text));
        free(text);
    } else {
        gw__send_body(req, "", 0);
    }
}

static void call_answer(ow_call_t *c, json_t *activation)
{
    h2o_req_t *req = c->req;
    call_end(c);
    if (req == NULL)
        return;
    if (c->web) {
        web_answer(req, c->web_ext, activation);
        return;
    }
    json_t *resp = json_object_get(activation, "response");
    int status = json_is_true(json_object_get(resp, "success")) ? 200
                 : json_integer_value(json_object_get(resp, "statusCode")) == 3 ? 500
                                                                                : 502;
    gw__send_json(req, status, json_incref(c->result_only ? json_object_get(resp, "result") : activation));
}

void gw__ow_action_invoke(ow_req_t *r, const char *name)
{
    json_t *a = gw__ow_action_of(r->state, name);
    if (a == NULL) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no action '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = gw__ow_body_object(r->req);
    if (body == NULL)
        return;
    invoke(r, name, a, body, gw__ow_query_true(r->req, "blocking"), gw__ow_query_true(r->req, "result"), NULL);
}

/* ------------------------------------------------------------ activations */

/* The action name of function fn in the state ("" when none has it now). */
static const char *name_of_fn(const json_t *state, const char *fn)
{
    const char *name;
    json_t *a;
    json_object_foreach(json_object_get(state, "actions"), name, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "fn")), fn) == 0)
            return name;
    }
    return fn;
}

/* A billing record in OpenWhisk's shape, with what this node kept of it. */
static json_t *activation_of_record(const ow_req_t *r, const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    json_t *k = id ? kept_activation(r->app, id) : NULL;
    const char *name = name_of_fn(r->state, json_string_value(json_object_get(rec, "function")));
    json_t *a = gw__ow_action_of(r->state, name);
    gw_ow_act_info_t info = {r->ns,
                             k ? json_string_value(json_object_get(k, "name")) : name,
                             json_string_value(json_object_get(a, "kind")),
                             k ? json_string_value(json_object_get(k, "subject")) : NULL,
                             k ? json_object_get(k, "response") : NULL,
                             NULL,
                             k ? json_string_value(json_object_get(k, "cause")) : NULL};
    json_t *act = gw_ow_activation(rec, &info);
    if (k) {
        /* The kept one knows the action's kind and limits as they were. */
        json_object_set(act, "annotations", json_object_get(k, "annotations"));
        json_object_set(act, "namespace", json_object_get(k, "namespace"));
    }
    return act;
}

json_t *gw__ow_find_activation(ow_req_t *r, const char *id)
{
    json_t *rec = NULL;
    char err[256];
    int rc = r->gw->bill ? bill_activation(r->gw->bill, id, &rec, err, sizeof err) : TINE_ENOTFOUND;
    if (rc == 0 && strcmp(json_string_value(json_object_get(rec, "app")), r->app) != 0) {
        json_decref(rec);
        rec = NULL;
        rc = TINE_ENOTFOUND;
    }
    if (rc == 0) {
        json_t *act = activation_of_record(r, rec);
        json_decref(rec);
        return act;
    }
    json_t *k = kept_activation(r->app, id);
    if (k)
        return json_deep_copy(k);
    if (rc == TINE_EREDIS)
        gw__ow_error(r->req, 503, "Whisk internal error: %s", err);
    else
        gw__ow_error(r->req, 404, "The requested resource does not exist: no activation '%s' in namespace %s.", id,
                 r->ns);
    return NULL;
}

void gw__ow_activations_list(ow_req_t *r)
{
    char *l = gw__query_param(r->req, "limit"), *s = gw__query_param(r->req, "skip");
    char *since_s = gw__query_param(r->req, "since"), *upto_s = gw__query_param(r->req, "upto");
    char *name = gw__query_param(r->req, "name");
    long limit, skip, since, upto;
    bool ok = gw_ow_count(l, 200, 30, &limit) && gw_ow_count(s, 100000, 0, &skip) &&
              gw_ow_count(since_s, LONG_MAX, 0, &since) && gw_ow_count(upto_s, LONG_MAX, LONG_MAX, &upto);
    bool docs = gw__ow_query_true(r->req, "docs");
    free(l);
    free(s);
    free(since_s);
    free(upto_s);
    if (!ok) {
        gw__ow_error(r->req, 400, "The request content was malformed: limit must be 0..200, skip a count, since and "
                              "upto milliseconds since the epoch.");
        free(name);
        return;
    }
    if (limit == 0)
        limit = 200;
    char *decoded = name ? gw__percent_decode(name, strlen(name)) : NULL;
    free(name);
    const char *fn = NULL;
    if (decoded) {
        json_t *a = gw__ow_action_of(r->state, decoded);
        fn = a ? json_string_value(json_object_get(a, "fn")) : "-";
    }
    json_t *list = NULL;
    char err[256];
    size_t want = (size_t)(skip + limit);
    if (since || upto != LONG_MAX)
        want = 10000; /* filtered below by time */
    bill_filter_t filter = {.fn = fn, .cold = -1};
    if (r->gw->bill == NULL || bill_activations(r->gw->bill, r->app, &filter, want, &list, err, sizeof err) != 0) {
        gw__ow_error(r->req, 503, "Whisk internal error: %s", r->gw->bill ? err : "activation records are off");
        free(decoded);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    long seen = 0;
    json_array_foreach(json_object_get(list, "activations"), i, rec)
    {
        json_int_t start = json_integer_value(json_object_get(rec, "start_ms"));
        if (start < since || start > upto || strcmp(json_string_value(json_object_get(rec, "function")), "_ow") == 0)
            continue;
        if (seen++ < skip)
            continue;
        if ((long)json_array_size(out) >= limit)
            break;
        json_t *act = activation_of_record(r, rec);
        if (!docs) {
            json_object_del(act, "logs");
            json_object_del(json_object_get(act, "response"), "result");
        }
        json_array_append_new(out, act);
    }
    json_decref(list);
    free(decoded);
    gw__send_json(r->req, 200, out);
}

/* ------------------------------------------------------------ triggers fired */

void gw__ow_trigger_fire(ow_req_t *r, const char *name)
{
    json_t *t = json_object_get(json_object_get(r->state, "triggers"), name);
    if (t == NULL) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no trigger '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = gw__ow_body_object(r->req);
    if (body == NULL)
        return;
    json_t *payload = gw_ow_merge_params(json_object_get(t, "parameters"), body);
    json_decref(body);
    json_t *logs = json_array();
    const char *rname;
    json_t *rule;
    int active = 0;
    /* The actions are answered as started; each keeps its own activation. */
    h2o_req_t *req = r->req;
    json_object_foreach(json_object_get(r->state, "rules"), rname, rule)
    {
        if (strcmp(json_string_value(json_object_get(rule, "trigger")), name) != 0 ||
            strcmp(json_string_value(json_object_get(rule, "status")), "active") != 0)
            continue;
        active++;
        const char *an = json_string_value(json_object_get(rule, "action"));
        json_t *a = gw__ow_action_of(r->state, an);
        json_t *ids = json_pack("{s:b, s:s, s:s, s:s}", "success", a != NULL, "rule", rname, "action", an,
                                "activationId", "");
        if (a) {
            ow_call_t *call = call_new(r, an, a, json_deep_copy(payload));
            if (call_start(call) != 0) {
                json_object_set_new(ids, "success", json_false());
                json_object_set_new(ids, "error", json_string("the action could not be invoked"));
                call_end(call);
            } else {
                json_object_set_new(ids, "activationId", json_string(call->id));
            }
        }
        char *line = json_dumps(ids, JSON_COMPACT);
        json_array_append_new(logs, json_string(line));
        free(line);
        json_decref(ids);
    }
    json_decref(payload);
    if (active == 0) {
        json_decref(logs);
        req->res.status = 204;
        req->res.reason = "No Content";
        gw__send_body(req, "", 0);
        return;
    }
    char id[33];
    random_id(id);
    json_t *rec = json_pack("{s:s, s:I, s:I, s:I}", "id", id, "start_ms", (json_int_t)tine_now_unix_ms(), "version",
                            r->v ? (json_int_t)r->v->version : 0, "duration_us", 0);
    json_t *resp = json_pack("{s:s, s:i, s:b, s:{}}", "status", "success", "statusCode", 0, "success", 1, "result");
    gw_ow_act_info_t info = {r->ns, name, "trigger", r->caller.id, resp, NULL, NULL};
    json_t *act = gw_ow_activation(rec, &info);
    json_object_set_new(act, "logs", logs);
    keep_activation(r->app, act);
    json_decref(act);
    json_decref(rec);
    json_decref(resp);
    gw__send_json(req, 202, json_pack("{s:s}", "activationId", id));
}

/* ------------------------------------------------------------ web actions */

void gw__ow_web(gw_server_t *gw, h2o_req_t *req, char **seg, size_t n)
{
    if (n < 4) {
        gw__ow_error(req, 404, "The requested resource does not exist: use /api/v1/web/NAMESPACE/PACKAGE/ACTION.");
        return;
    }
    ow_req_t r = {.gw = gw, .req = req};
    r.caller = (gw_caller_t){GW_ROLE_INVOKER, NULL, NULL, NULL, NULL};
    if (!reg_name_valid(seg[1]) || strlen(seg[1]) > 60) {
        gw__ow_error(req, 404, "The requested resource does not exist: no namespace '%s'.", seg[1]);
        return;
    }
    snprintf(r.ns, sizeof r.ns, "%s", seg[1]);
    snprintf(r.app, sizeof r.app, OW_APP_PREFIX "%s", seg[1]);
    if (!gw__ow_load_state(&r))
        goto out;
    char *act = seg[3];
    char *dot = strrchr(act, '.');
    const char *ext = "http";
    if (dot && (strcmp(dot + 1, "json") == 0 || strcmp(dot + 1, "http") == 0 || strcmp(dot + 1, "html") == 0 ||
                strcmp(dot + 1, "text") == 0)) {
        ext = dot + 1;
        *dot = '\0';
    }
    char name[600];
    if (strcmp(seg[2], "default") == 0)
        snprintf(name, sizeof name, "%s", act);
    else
        snprintf(name, sizeof name, "%s/%s", seg[2], act);
    json_t *a = gw__ow_action_of(r.state, name);
    json_t *exported = a ? gw_ow_kv_get(json_object_get(a, "annotations"), "web-export") : NULL;
    if (a == NULL || !json_is_true(exported)) {
        gw__ow_error(req, 404, "The requested resource does not exist: no web action '%s' in namespace %s.", name, r.ns);
        goto out;
    }
    json_t *params = json_object();
    /* The query's parameters, then a JSON object body's, as OpenWhisk. */
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            if (amp == NULL)
                amp = end;
            const char *eq = memchr(q, '=', (size_t)(amp - q));
            char *k = gw__percent_decode(q, (size_t)((eq ? eq : amp) - q));
            char *v = eq ? gw__percent_decode(eq + 1, (size_t)(amp - eq - 1)) : xstrdup("");
            if (*k && tine_utf8_valid(k, strlen(k)) && tine_utf8_valid(v, strlen(v)))
                json_object_set_new(params, k, json_string(v));
            free(k);
            free(v);
            q = amp + 1;
        }
    }
    json_t *headers = json_object();
    bool json_body = false;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name == &H2O_TOKEN_AUTHORIZATION->buf)
            continue;
        char *hn = xstrndup(h->name->base, h->name->len), *hv = xstrndup(h->value.base, h->value.len);
        if (tine_utf8_valid(hv, strlen(hv)))
            json_object_set_new(headers, hn, json_string(hv));
        if (strcmp(hn, "content-type") == 0 && strncmp(hv, "application/json", 16) == 0)
            json_body = true;
        free(hn);
        free(hv);
    }
    if (req->entity.len) {
        json_t *b = json_body ? json_loadb(req->entity.base, req->entity.len, 0, NULL) : NULL;
        if (json_is_object(b))
            json_object_update(params, b);
        else if (tine_utf8_valid(req->entity.base, req->entity.len))
            json_object_set_new(params, "__ow_body", json_stringn(req->entity.base, req->entity.len));
        json_decref(b);
    }
    char *method = xstrndup(req->method.base, req->method.len);
    for (char *p = method; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    json_object_set_new(params, "__ow_method", json_string(method));
    free(method);
    json_object_set_new(params, "__ow_headers", headers);
    tine_buf_t rest;
    tine_buf_init(&rest);
    for (size_t i = 4; i < n; i++) {
        tine_buf_append(&rest, "/", 1);
        tine_buf_append(&rest, seg[i], strlen(seg[i]));
    }
    json_object_set_new(params, "__ow_path", json_stringn(rest.len ? rest.data : "", rest.len));
    tine_buf_dispose(&rest);
    const char *qs = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t qlen = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    json_object_set_new(params, "__ow_query", json_stringn(qs, qlen));
    invoke(&r, name, a, params, true, false, ext);
out:
    gw__ow_req_dispose(&r);
}

