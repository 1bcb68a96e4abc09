/* The OpenWhisk-compatible API under /api/v1 (docs/openwhisk.md).
 *
 * Each OpenWhisk namespace is one tine app, "ow-<namespace>", in the tine
 * namespace of the same name. Its entities (actions, triggers, rules,
 * packages) are kept in the app's bundle, in openwhisk.json, next to each
 * action's code and generated wrapper under ow/<fn>/ and a generated
 * manifest (tine.json) with one function per action. Every change builds
 * the next bundle from the live one and deploys it through the registry
 * (stage, files on this node, live, reload), so it is a version like any
 * other: listed by `tine versions`, undone by `tine rollback`.
 *
 * Invocations are tine invocations of those functions (metered, recorded
 * by billing); activations are billing's records shown in OpenWhisk's
 * shape, completed with the result this node keeps of its recent calls.
 * Callers authenticate with HTTP Basic and a tine API key; every endpoint
 * checks the key's permission as the admin API does (auth.c). */
#define _GNU_SOURCE
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


/* ------------------------------------------------------------ errors */

void gw__ow_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    static uint64_t seq;
    char msg[1024], code[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(code, sizeof code, "%012" PRIx64 "%04" PRIx64, tine_now_unix_ms(), ++seq & 0xffff);
    if (status == 401)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("www-authenticate"), 0, NULL,
                              H2O_STRLIT("Basic realm=\"tine\""));
    gw__send_json(req, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

/* ------------------------------------------------------------ the request */


void gw__ow_audit(const ow_req_t *r, int status, const char *detail)
{
    if (r->audit[0] == '\0')
        return;
    char target[700];
    snprintf(target, sizeof target, "%s:%s", r->app, r->target);
    tn_audit_entry_t e = {
        .key_id = r->caller.id,
        .key_name = r->caller.name,
        .ns = r->ns,
        .action = r->audit,
        .target = target,
        .outcome = status < 300 ? "ok" : status == 401 || status == 403 ? "refused" : "failed",
        .status = status,
        .detail = detail,
    };
    tn_audit_append(r->gw->tenancy, &e);
}

void gw__ow_req_dispose(ow_req_t *r)
{
    if (r->v)
        reg_app_version_release(r->v);
    json_decref(r->state);
}

static json_t *empty_state(void)
{
    return json_pack("{s:i, s:{}, s:{}, s:{}, s:{}}", "next", 1, "actions", "triggers", "rules", "packages");
}

/* The states of recent versions, read once: a version never changes, so
 * (app, version) names its state for good. Replaced in turn. */
#define OW_STATE_CACHE 64
static struct {
    char *app;
    uint64_t version;
    json_t *state;
} state_cache[OW_STATE_CACHE];
static size_t state_cache_next;

json_t *gw__ow_state_of(const reg_app_version_t *v, json_error_t *jerr)
{
    for (size_t i = 0; i < OW_STATE_CACHE; i++)
        if (state_cache[i].state && state_cache[i].version == v->version && strcmp(state_cache[i].app, v->app) == 0)
            return json_incref(state_cache[i].state);
    char *path = xasprintf("%s/" OW_STATE_FILE, v->bundle_dir);
    json_t *state = json_load_file(path, 0, jerr);
    free(path);
    if (state == NULL)
        return NULL;
    size_t i = state_cache_next++ % OW_STATE_CACHE;
    free(state_cache[i].app);
    json_decref(state_cache[i].state);
    state_cache[i].app = xstrdup(v->app);
    state_cache[i].version = v->version;
    state_cache[i].state = json_incref(state);
    return state;
}

bool gw__ow_load_state(ow_req_t *r)
{
    r->v = reg_live_get(r->gw->live, r->app, strlen(r->app));
    if (r->v == NULL) {
        r->state = empty_state();
        return true;
    }
    reg_app_version_retain(r->v);
    json_error_t jerr;
    r->state = gw__ow_state_of(r->v, &jerr);
    if (r->state == NULL) {
        gw__ow_error(r->req, 503, "app %s version %" PRIu64 " is not an OpenWhisk namespace's (%s: %s)", r->app,
                 r->v->version, OW_STATE_FILE, jerr.text);
        return false;
    }
    return true;
}

/* 403 (sent) unless the caller has permission p in the namespace. */
static bool allowed(ow_req_t *r, gw_perm_t p)
{
    if (!gw__role_allows(r->caller.role, p)) {
        gw__ow_audit(r, 403, gw__perm_name(p));
        gw__ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s lacks permission %s.",
                 r->ns, r->caller.id, gw__perm_name(p));
        return false;
    }
    return true;
}

/* The namespace named in the path ("_": the key's own) made the request's,
 * with its app. False (401/403 sent) when the key may not use it. */
static bool resolve_namespace(ow_req_t *r, const char *ns)
{
    const char *own = r->caller.ns ? r->caller.ns : REG_DEFAULT_NAMESPACE;
    if (strcmp(ns, "_") == 0)
        ns = own;
    if (!reg_name_valid(ns) || strlen(ns) > 60) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no namespace '%s' (tine namespaces are 1..60 "
                              "of a-z, 0-9 and '-' here).", ns);
        return false;
    }
    if (r->caller.ns && strcmp(r->caller.ns, ns) != 0) {
        gw__ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s is of namespace %s.",
                 ns, r->caller.id, r->caller.ns);
        return false;
    }
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->app, sizeof r->app, OW_APP_PREFIX "%s", ns);
    if (r->caller.app && strcmp(r->caller.app, r->app) != 0) {
        gw__ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s is restricted to app %s.",
                 ns, r->caller.id, r->caller.app);
        return false;
    }
    return true;
}

json_t *gw__ow_body_object(h2o_req_t *req)
{
    if (req->entity.len == 0)
        return json_object();
    json_error_t jerr;
    json_t *o = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        gw__ow_error(req, 400, "The request content was malformed: expected a JSON object (line %d column %d: %s).",
                 jerr.line, jerr.column, o ? "not an object" : jerr.text);
        return NULL;
    }
    return o;
}

bool gw__ow_query_true(h2o_req_t *req, const char *name)
{
    char *v = gw__query_param(req, name);
    bool on = v && (strcmp(v, "true") == 0 || strcmp(v, "") == 0 || strcmp(v, "1") == 0);
    free(v);
    return on;
}

/* ------------------------------------------------------------ routing */

/* Splits the path after /api/v1 into decoded segments; max + 1 when there
 * are more than max. */
static size_t split(h2o_req_t *req, const char *p, size_t len, char **seg, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        if (i >= len)
            break;
        if (n == max)
            return max + 1;
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        char *d = gw__percent_decode(p + i, j - i);
        seg[n++] = h2o_strdup(&req->pool, d, strlen(d)).base;
        free(d);
        i = j;
    }
    return n;
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* The entity endpoints of one namespace (r resolved, state loaded). */
static void serve_namespace(ow_req_t *r, char **seg, size_t n)
{
    h2o_req_t *req = r->req;
    const char *what = seg[2];
    bool is_get = method_is(req, "GET"), is_put = method_is(req, "PUT"), is_del = method_is(req, "DELETE"),
         is_post = method_is(req, "POST");
    gw_perm_t read = GW_PERM_APPS_READ, change = GW_PERM_APPS_DEPLOY;
    char name[600];
    /* Changes are audited (read calls and invokes are not, as in the admin API). */
    if (n >= 4 && (is_put || is_del || (is_post && strcmp(what, "rules") == 0))) {
        snprintf(r->audit, sizeof r->audit, "openwhisk.%s.%s", what,
                 is_put ? "put" : is_del ? "delete" : "status");
        snprintf(r->target, sizeof r->target, "%s%s%s", seg[3], n > 4 ? "/" : "", n > 4 ? seg[4] : "");
    }
    if (strcmp(what, "actions") == 0) {
        if (n == 3 && is_get) {
            if (allowed(r, read))
                gw__ow_list_entities(r, "actions", gw__ow_action_listed);
            return;
        }
        if ((n == 4 || n == 5) && gw__ow_entity_name(req, seg + 3, n - 3, name, sizeof name)) {
            if (is_put && allowed(r, change))
                gw__ow_action_put(r, name);
            else if (is_get && allowed(r, read)) {
                json_t *a = gw__ow_action_of(r->state, name);
                if (a == NULL)
                    gw__ow_error(req, 404, "The requested resource does not exist: no action '%s' in namespace %s.",
                             name, r->ns);
                else {
                    char *code = gw__query_param(req, "code");
                    bool with_code = code == NULL || strcmp(code, "false") != 0;
                    free(code);
                    gw__send_json(req, 200, gw__ow_action_json(r, name, a, with_code));
                }
            } else if (is_del && allowed(r, change))
                gw__ow_action_delete(r, name);
            else if (is_post && allowed(r, GW_PERM_FUNCTIONS_INVOKE))
                gw__ow_action_invoke(r, name);
            else if (!is_put && !is_get && !is_del && !is_post)
                gw__ow_error(req, 405, "Method not allowed: use PUT, GET, DELETE or POST on an action.");
            return;
        }
    } else if (strcmp(what, "activations") == 0) {
        if (n == 3 && is_get) {
            if (allowed(r, GW_PERM_ACTIVATIONS_READ))
                gw__ow_activations_list(r);
            return;
        }
        if ((n == 4 || n == 5) && is_get) {
            bool logs = n == 5 && strcmp(seg[4], "logs") == 0, result = n == 5 && strcmp(seg[4], "result") == 0;
            if (n == 5 && !logs && !result) {
                gw__ow_error(req, 404, "The requested resource does not exist: use /logs or /result.");
                return;
            }
            if (!allowed(r, logs ? GW_PERM_LOGS_READ : GW_PERM_ACTIVATIONS_READ))
                return;
            json_t *act = gw__ow_find_activation(r, seg[3]);
            if (act == NULL)
                return;
            if (logs)
                gw__send_json(req, 200, json_pack("{s:O}", "logs", json_object_get(act, "logs")));
            else if (result)
                gw__send_json(req, 200, json_incref(json_object_get(act, "response")));
            else
                gw__send_json(req, 200, json_incref(act));
            json_decref(act);
            return;
        }
    } else if (strcmp(what, "triggers") == 0 || strcmp(what, "rules") == 0 || strcmp(what, "packages") == 0) {
        bool rules = strcmp(what, "rules") == 0;
        if (n == 3 && is_get) {
            if (allowed(r, read))
                gw__ow_list_entities(r, what, rules ? gw__ow_rule_json : gw__ow_entity_json);
            return;
        }
        if (n == 4 && gw__ow_entity_name(req, seg + 3, 1, name, sizeof name)) {
            json_t *e = json_object_get(json_object_get(r->state, what), name);
            if (is_put && allowed(r, change))
                gw__ow_entity_put(r, what, name);
            else if (is_del && allowed(r, change))
                gw__ow_entity_delete(r, what, name);
            else if (is_get && allowed(r, read)) {
                if (e == NULL)
                    gw__ow_error(req, 404, "The requested resource does not exist: no %.*s '%s' in namespace %s.",
                             (int)strlen(what) - 1, what, name, r->ns);
                else
                    gw__send_json(req, 200, rules ? gw__ow_rule_json(r, name, e, true) : gw__ow_entity_json(r, name, e, true));
            } else if (is_post && rules && allowed(r, change))
                gw__ow_rule_status(r, name);
            else if (is_post && strcmp(what, "triggers") == 0 && allowed(r, GW_PERM_FUNCTIONS_INVOKE))
                gw__ow_trigger_fire(r, name);
            else if (!is_put && !is_get && !is_del && !is_post)
                gw__ow_error(req, 405, "Method not allowed.");
            else if (is_post && strcmp(what, "packages") == 0)
                gw__ow_error(req, 405, "Method not allowed: packages are not invoked.");
            return;
        }
    }
    gw__ow_error(req, 404, "The requested resource does not exist.");
}

int gw__openwhisk_body_admit(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len, size_t n,
                             char *msg, size_t msglen)
{
    bool put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    bool web = rest_len >= 4 && memcmp(rest, "/web", 4) == 0 && (rest_len == 4 || rest[4] == '/');
    size_t limit = put && !web ? gw->max_bundle : gw->max_body;
    if (n > limit) {
        snprintf(msg, msglen, "request body of %zu bytes is over the limit of %zu bytes (%s)", n, limit,
                 limit == gw->max_bundle ? "--max-bundle-size" : "of this call");
        return 413;
    }
    if (!gw__body_hold(gw, req, n)) {
        snprintf(msg, msglen, "this node holds %zu bytes of request bodies and %zu more would pass its limit of %zu "
                              "(--max-buffered-body): retry later", gw->body_held, n, gw->body_budget);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        return 503;
    }
    return 0;
}

int gw__openwhisk(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len)
{
    char *seg[32];
    size_t n = split(req, rest, rest_len, seg, 32);
    if (n > 32) {
        gw__ow_error(req, 404, "The requested resource does not exist: a path of more than 32 segments.");
        return 0;
    }
    if (n >= 1 && strcmp(seg[0], "web") == 0) {
        gw__ow_web(gw, req, seg, n);
        return 0;
    }
    if (n == 0) {
        gw__send_json(req, 200, json_pack("{s:s, s:s, s:[s]}", "description", "tine: OpenWhisk-compatible API",
                                          "api_version", "1.0.0", "api_paths", "/api/v1"));
        return 0;
    }
    ow_req_t r = {.gw = gw, .req = req};
    char msg[512];
    int a = gw__authenticate(gw, req, &r.caller, msg, sizeof msg);
    if (a == 1)
        return 0; /* served again once the key is read */
    if (a == 503) {
        gw__ow_error(req, 503, "Whisk internal error: %s", msg);
        return 0;
    }
    if (a != 0) {
        gw__ow_error(req, 401, "The supplied authentication is invalid: %s", msg);
        return 0;
    }
    if (strcmp(seg[0], "namespaces") != 0) {
        gw__ow_error(req, 404, "The requested resource does not exist.");
        return 0;
    }
    if (n == 1) {
        if (!method_is(req, "GET")) {
            gw__ow_error(req, 405, "Method not allowed.");
            return 0;
        }
        gw__send_json(req, 200, json_pack("[s]", r.caller.ns ? r.caller.ns : REG_DEFAULT_NAMESPACE));
        return 0;
    }
    if (!resolve_namespace(&r, seg[1]))
        return 0;
    if (n < 3) {
        gw__ow_error(req, 404, "The requested resource does not exist: use /namespaces/%s/actions, activations, "
                           "triggers, rules or packages.", r.ns);
        return 0;
    }
    if (gw__ow_load_state(&r))
        serve_namespace(&r, seg, n);
    gw__ow_req_dispose(&r);
    return 0;
}

