/* The admin endpoints of tenancy (docs/admin-api.md, docs/tenancy.md): who
 * am I, namespaces (made and removed by a cluster admin), API keys (made,
 * listed and revoked inside the caller's namespace and app), and the audit
 * log. gw__admin_authorize checked the permission before; these narrow
 * what a key of one namespace (or app) sees and touches. */
#include "auth.h"
#include "tenancy.h"
#include "tine_common.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int seg_is(h2o_iovec_t s, const char *lit)
{
    return h2o_memis(s.base, s.len, lit, strlen(lit));
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* GET /whoami: the caller and what its role allows. */
static void whoami(h2o_req_t *req, const gw_caller_t *c)
{
    json_t *perms = json_array();
    for (int p = 0; p < GW_NPERMS; p++)
        if (gw__role_allows(c->role, (gw_perm_t)p))
            json_array_append_new(perms, json_string(gw__perm_name((gw_perm_t)p)));
    gw__send_json(req, 200,
                  json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "key", c->id, "name", c->name ? c->name : "", "role",
                            gw__role_name(c->role), "namespace", string_or_null(c->ns), "app", string_or_null(c->app),
                            "permissions", perms));
}

/* 403 naming permission p in namespace ns; always true (for returns). */
static bool refuse_namespace(h2o_req_t *req, const gw_caller_t *c, gw_perm_t p, const char *ns)
{
    gw__send_error(req, 403, "forbidden: key %s (%s) of namespace %s lacks permission %s in namespace %s", c->id,
                   c->name ? c->name : "-", c->ns ? c->ns : "*", gw__perm_name(p), ns);
    return true;
}

static int status_of(int rc)
{
    return rc == TINE_EINVAL ? 400 : rc == TINE_ENOTFOUND ? 404 : rc == TINE_ECONFLICT ? 409 : 503;
}

/* ------------------------------------------------------------ namespaces */

static void namespaces_list(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c)
{
    reg_namespace_t *ns = NULL;
    size_t n = 0;
    char err[512];
    int rc = reg_store_namespace_list(reg_live_store(gw->live), &ns, &n, err, sizeof(err));
    if (rc != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
        return;
    }
    json_t *keys = NULL;
    if (gw->tenancy)
        tn_keys_list(gw->tenancy, NULL, NULL, &keys, err, sizeof(err));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (c->ns && strcmp(c->ns, ns[i].name) != 0)
            continue;
        size_t nkeys = 0, k;
        json_t *key;
        json_array_foreach(keys, k, key)
        {
            const char *kns = json_string_value(json_object_get(key, "namespace"));
            nkeys += kns && strcmp(kns, ns[i].name) == 0 && json_is_null(json_object_get(key, "revoked"));
        }
        char when[32] = "";
        if (ns[i].created_ms)
            tine_fmt_rfc3339_ms((uint64_t)ns[i].created_ms, when);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:o, s:o}", "namespace", ns[i].name, "apps",
                                             (json_int_t)ns[i].apps, "keys", (json_int_t)nkeys, "created",
                                             when[0] ? json_string(when) : json_null(), "created_by",
                                             string_or_null(ns[i].created_by)));
    }
    json_decref(keys);
    reg_namespaces_free(ns, n);
    gw__send_json(req, 200, json_pack("{s:o}", "namespaces", arr));
}

static void namespace_create(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c, const char *ns)
{
    char err[512];
    gw__audit_target(req, ns, ns);
    int rc = reg_store_namespace_create(reg_live_store(gw->live), ns, c->id, err, sizeof(err));
    if (rc != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
        return;
    }
    tine_log(TINE_LOG_INFO, "namespace %s created by %s", ns, c->id);
    gw__send_json(req, 201, json_pack("{s:s, s:b}", "namespace", ns, "created", 1));
}

/* DELETE /namespaces/{ns}: refused while it has apps; its keys are revoked. */
static void namespace_delete(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c, const char *ns)
{
    char err[512];
    gw__audit_target(req, ns, ns);
    int rc = reg_store_namespace_delete(reg_live_store(gw->live), ns, err, sizeof(err));
    if (rc != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
        return;
    }
    size_t revoked = 0;
    if (gw->tenancy && tn_keys_revoke_namespace(gw->tenancy, ns, &revoked, err, sizeof(err)) != 0) {
        gw__send_error(req, 503, "namespace %s is deleted, but its keys could not be revoked: %s", ns, err);
        return;
    }
    if (gw->quotas && tn_quotas_delete(gw->quotas, ns, err, sizeof(err)) != 0) {
        gw__send_error(req, 503, "namespace %s is deleted, but its quotas could not be removed: %s", ns, err);
        return;
    }
    tine_log(TINE_LOG_INFO, "namespace %s deleted by %s (%zu keys revoked)", ns, c->id, revoked);
    gw__send_json(req, 200,
                  json_pack("{s:s, s:b, s:I}", "namespace", ns, "deleted", 1, "keys_revoked", (json_int_t)revoked));
}

/* ------------------------------------------------------------------ keys */

static void keys_list(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c)
{
    gw_query_param_t q[] = {{"namespace", NULL}};
    if (gw__parse_query(req, q, 1) != 0)
        return;
    const char *ns = q[0].value && q[0].value[0] ? q[0].value : NULL;
    if (c->ns && ns && strcmp(ns, c->ns) != 0) {
        refuse_namespace(req, c, GW_PERM_KEYS_READ, ns);
        gw__free_query(q, 1);
        return;
    }
    json_t *keys = NULL;
    char err[512];
    int rc = tn_keys_list(gw->tenancy, c->ns ? c->ns : ns, c->app, &keys, err, sizeof(err));
    if (rc != 0)
        gw__send_error(req, status_of(rc), "%s", err);
    else
        gw__send_json(req, 200, json_pack("{s:o}", "keys", keys));
    gw__free_query(q, 1);
}

/* The string member `name` of body, or NULL; false (400 sent) when it is
 * there and not a string. */
static bool body_string(h2o_req_t *req, json_t *body, const char *name, const char **out)
{
    json_t *v = json_object_get(body, name);
    *out = json_string_value(v);
    if (v == NULL || json_is_null(v) || json_is_string(v)) {
        if (*out && (*out)[0] == '\0')
            *out = NULL;
        return true;
    }
    gw__send_error(req, 400, "body: %s: expected a string", name);
    return false;
}

/* The longest life a key may be given: ten years, in seconds. */
#define KEY_MAX_LIFE_S (10LL * 366 * 86400)

/* POST /keys {"name","role","namespace"?,"app"?,"expires_in"?}: a key no broader than
 * its maker: in the caller's namespace (any for a cluster admin), for the
 * caller's app when it has one; cluster-admin keys only by a cluster admin. */
static void key_create(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    const char *name, *role_name, *ns, *app;
    if (!json_is_object(body)) {
        gw__send_error(req, 400,
                       "body: expected {\"name\": N, \"role\": R, \"namespace\": NS, \"app\": A, "
                       "\"expires_in\": SECONDS}%s%s",
                       body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        return;
    }
    if (!body_string(req, body, "name", &name) || !body_string(req, body, "role", &role_name) ||
        !body_string(req, body, "namespace", &ns) || !body_string(req, body, "app", &app)) {
        json_decref(body);
        return;
    }
    const char *extra;
    json_t *v;
    json_object_foreach(body, extra, v)
    {
        if (strcmp(extra, "name") && strcmp(extra, "role") && strcmp(extra, "namespace") && strcmp(extra, "app") &&
            strcmp(extra, "expires_in")) {
            gw__send_error(req, 400, "body: unknown member '%s'; expected name, role, namespace, app, expires_in",
                           extra);
            json_decref(body);
            return;
        }
    }
    json_t *life = json_object_get(body, "expires_in");
    if (life && !json_is_null(life) &&
        (!json_is_integer(life) || json_integer_value(life) < 1 || json_integer_value(life) > KEY_MAX_LIFE_S)) {
        gw__send_error(req, 400, "body: expires_in: expected whole seconds from 1 to %lld (ten years)",
                       (long long)KEY_MAX_LIFE_S);
        json_decref(body);
        return;
    }
    int64_t expires_ms = json_is_integer(life) ? (int64_t)tine_now_unix_ms() + json_integer_value(life) * 1000 : 0;
    /* No broader in time either: a key made by an expiring key expires
     * with it at the latest. */
    const tn_key_t *maker = tn_key_find(gw->tenancy, c->id, strlen(c->id));
    if (maker && maker->expires_ms && expires_ms > maker->expires_ms) {
        char when[32];
        tine_fmt_rfc3339_ms((uint64_t)maker->expires_ms, when);
        gw__send_error(req, 400, "body: expires_in: key %s expires at %s; a key it makes cannot outlive it", c->id,
                       when);
        json_decref(body);
        return;
    }
    if (maker && maker->expires_ms && expires_ms == 0)
        expires_ms = maker->expires_ms;
    gw_role_t role = gw__role_parse(role_name);
    bool cluster = role == GW_ROLE_CLUSTER_ADMIN;
    if (!cluster && ns == NULL)
        ns = c->ns ? c->ns : REG_DEFAULT_NAMESPACE;
    if (!cluster && app == NULL)
        app = c->app;
    gw__audit_target(req, ns, name);
    char err[512];
    bool exists = false;
    char *app_ns = NULL;
    if (name == NULL) {
        gw__send_error(req, 400, "body: name: required (1 to 64 letters, digits, '.', '_' or '-')");
    } else if (role == GW_NROLES) {
        gw__send_error(req, 400, "body: role: expected one of cluster-admin, admin, deployer, viewer, invoker%s%s%s",
                       role_name ? ", not '" : "", role_name ? role_name : "", role_name ? "'" : "");
    } else if (cluster && (ns || app)) {
        gw__send_error(req, 400, "body: a cluster-admin key belongs to no namespace and no app: leave out %s",
                       ns ? "namespace" : "app");
    } else if (cluster && c->role != GW_ROLE_CLUSTER_ADMIN) {
        gw__send_error(req, 403,
                       "forbidden: key %s (role %s) lacks permission %s: only a cluster-admin makes "
                       "cluster-admin keys",
                       c->id, gw__role_name(c->role), gw__perm_name(GW_PERM_NAMESPACES_MANAGE));
    } else if (!cluster && c->ns && strcmp(ns, c->ns) != 0) {
        refuse_namespace(req, c, GW_PERM_KEYS_MANAGE, ns);
    } else if (!cluster && c->app && strcmp(app, c->app) != 0) {
        gw__send_error(req, 403, "forbidden: key %s lacks permission %s on app %s: it is restricted to app %s", c->id,
                       gw__perm_name(GW_PERM_KEYS_MANAGE), app, c->app);
    } else if (!cluster && reg_store_namespace_exists(reg_live_store(gw->live), ns, &exists, err, sizeof(err)) != 0) {
        gw__send_error(req, 503, "%s", err);
    } else if (!cluster && !exists) {
        gw__send_error(req, 404,
                       "namespace: no namespace named '%s' (a cluster admin creates it: tine namespaces "
                       "create %s)",
                       ns, ns);
    } else if (app && !reg_name_valid(app)) {
        gw__send_error(req, 400, "body: app: '%s' is not an app name", app);
    } else if (app && (app_ns = gw__app_namespace(gw, app)) != NULL && strcmp(app_ns, ns) != 0) {
        gw__send_error(req, 400, "body: app: app %s is in namespace %s, not %s", app, app_ns, ns);
    } else {
        char id[TN_KEY_ID_LEN + 1], key[TN_KEY_ID_LEN + TN_KEY_SECRET_LEN + 2];
        tn_key_spec_t spec = {name, cluster ? NULL : ns, gw__role_name(role), app, c->id, expires_ms};
        int rc = tn_key_create(gw->tenancy, &spec, id, key, err, sizeof(err));
        if (rc != 0) {
            gw__send_error(req, status_of(rc), "%s", err);
        } else {
            gw__audit_target(req, NULL, id);
            tine_log(TINE_LOG_INFO, "API key %s (%s, role %s) made by %s", id, name, spec.role, c->id);
            const tn_key_t *k = tn_key_find(gw->tenancy, id, TN_KEY_ID_LEN);
            json_t *o = k ? tn_key_json(k) : json_pack("{s:s}", "id", id);
            /* The audit entry gets the answer without the key in it. */
            gw__audit_answer(req, 201, o);
            json_object_set_new(o, "key", json_string(key));
            OPENSSL_cleanse(key, sizeof(key));
            gw__send_json(req, 201, o);
        }
    }
    free(app_ns);
    json_decref(body);
}

/* DELETE /keys/{id}: a key of the caller's namespace (and app). */
static void key_revoke(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c, const char *id)
{
    const tn_key_t *k = tn_key_find(gw->tenancy, id, strlen(id));
    if (k == NULL && tn_key_id_valid(id, strlen(id)) && tn_key_fetch_now(gw->tenancy, id) == 0)
        k = tn_key_find(gw->tenancy, id, strlen(id));
    gw__audit_target(req, k ? k->ns : NULL, id);
    if (k == NULL || (c->ns && (k->ns == NULL || strcmp(k->ns, c->ns) != 0)) ||
        (c->app && (k->app == NULL || strcmp(k->app, c->app) != 0))) {
        /* Keys the caller may not see do not exist for it. */
        gw__send_error(req, 404, "no API key with id %s%s", id,
                       tn_key_id_valid(id, strlen(id)) ? "" : " (a key id is 16 hex digits, the part before ':')");
        return;
    }
    char err[512];
    int rc = tn_key_revoke(gw->tenancy, id, err, sizeof(err));
    if (rc != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
        return;
    }
    k = tn_key_find(gw->tenancy, id, strlen(id));
    tine_log(TINE_LOG_INFO, "API key %s revoked by %s", id, c->id);
    gw__send_json(req, 200, k ? tn_key_json(k) : json_pack("{s:s}", "id", id));
}

/* ----------------------------------------------------------------- audit */

static void audit_read(gw_server_t *gw, h2o_req_t *req, const gw_caller_t *c)
{
    gw_query_param_t q[] = {{"namespace", NULL}, {"after", NULL}, {"limit", NULL}};
    long limit;
    if (gw__parse_query(req, q, 3) != 0 || gw__count_param(req, &q[2], 1, 10000, 100, &limit) != 0)
        goto out;
    const char *ns = q[0].value && q[0].value[0] ? q[0].value : NULL;
    if (c->ns && ns && strcmp(ns, c->ns) != 0) {
        refuse_namespace(req, c, GW_PERM_AUDIT_READ, ns);
        goto out;
    }
    json_t *answer = NULL;
    char err[512];
    int rc = tn_audit_read(gw->tenancy, c->ns ? c->ns : ns, q[1].value && q[1].value[0] ? q[1].value : NULL,
                           (size_t)limit, &answer, err, sizeof(err));
    if (rc != 0)
        gw__send_error(req, status_of(rc), "%s%s", rc == TINE_EINVAL ? "query: " : "", err);
    else
        gw__send_json(req, 200, answer);
out:
    gw__free_query(q, 3);
}

int gw__admin_tenancy(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    bool whoami_path = n == 1 && seg_is(seg[0], "whoami");
    bool ns_path = n >= 1 && n <= 2 && seg_is(seg[0], "namespaces");
    bool keys_path = n >= 1 && n <= 2 && seg_is(seg[0], "keys");
    bool audit_path = n == 1 && seg_is(seg[0], "audit");
    if (!whoami_path && !ns_path && !keys_path && !audit_path)
        return 0;
    const gw_caller_t *c = gw__caller(req);
    if (c == NULL) { /* gw__admin_authorize let no request here without one */
        gw__send_error(req, 500, "no caller for an admin request");
        return 1;
    }
    if (whoami_path) {
        whoami(req, c);
        return 1;
    }
    if ((keys_path || audit_path) && gw->tenancy == NULL) {
        gw__send_error(req, 503, "API keys are not enabled on this node");
        return 1;
    }
    char *name = n == 2 ? xstrndup(seg[1].base, seg[1].len) : NULL;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool del = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE"));
    if (audit_path)
        audit_read(gw, req, c);
    else if (ns_path && n == 1)
        namespaces_list(gw, req, c);
    else if (ns_path)
        (del ? namespace_delete : namespace_create)(gw, req, c, name);
    else if (n == 1 && get)
        keys_list(gw, req, c);
    else if (n == 1)
        key_create(gw, req, c);
    else
        key_revoke(gw, req, c, name);
    free(name);
    return 1;
}
