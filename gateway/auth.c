/* Who may do what: roles, permissions and the one table of admin endpoints
 * (each with the permission it needs), the caller of a request, private
 * routes, and the audit entry of every change.
 *
 * A caller sends "Authorization: Bearer TOKEN" (the node's admin token: a
 * cluster-admin), "Bearer ID:SECRET" or "Basic base64(ID:SECRET)" (an API
 * key, see tenancy/tenancy.h). Keys are looked up in the node's copy: no
 * Redis per request. A key this node does not know yet (made on another
 * node a moment ago) is read from Redis asynchronously while the request
 * waits; then the request is served again from the top (gw__serve). A
 * request that needs that, or that is admin business, gets a context in
 * its pool, on a list of the requests in flight: handlers find their caller
 * there, and the JSON answer (response.c) finds the change to audit. */
#include "auth.h"
#include "tenancy.h"
#include "tine_common.h"
#include "tine_list.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------- roles, table */

static const char *const role_names[GW_NROLES] = {"cluster-admin", "admin", "deployer", "viewer", "invoker"};

static const char *const perm_names[GW_NPERMS] = {
    "apps.read",        "apps.deploy",     "apps.rollback",     "apps.prune",  "apps.delete", "functions.invoke",
    "sandboxes.read",   "sandboxes.scale", "sandboxes.evict",   "events.emit", "events.read", "events.replay",
    "activations.read", "logs.read",       "usage.read",        "node.read",   "keys.read",   "keys.manage",
    "audit.read",       "namespaces.read", "namespaces.manage", "nodes.drain", "quota.read",  "quota.manage",
    "apps.export",      "secrets.read",    "secrets.manage"};

#define P(x) (1u << GW_PERM_##x)
#define READS (P(APPS_READ) | P(ACTIVATIONS_READ) | P(LOGS_READ) | P(USAGE_READ))
#define INVOKES (P(FUNCTIONS_INVOKE) | P(EVENTS_EMIT))

/* The permissions of each role (docs/tenancy.md has the same table; a unit
 * test checks that both agree). */
static const unsigned role_perms[GW_NROLES] = {
    [GW_ROLE_CLUSTER_ADMIN] = (1u << GW_NPERMS) - 1,
    [GW_ROLE_ADMIN] = ((1u << GW_NPERMS) - 1) & ~P(NAMESPACES_MANAGE) & ~P(NODES_DRAIN) & ~P(QUOTA_MANAGE),
    [GW_ROLE_DEPLOYER] = READS | INVOKES | P(APPS_DEPLOY) | P(APPS_ROLLBACK) | P(SANDBOXES_READ) | P(SANDBOXES_SCALE) |
                         P(SANDBOXES_EVICT) | P(EVENTS_READ) | P(NODE_READ) | P(APPS_EXPORT) | P(SECRETS_READ) |
                         P(SECRETS_MANAGE),
    [GW_ROLE_VIEWER] = READS,
    [GW_ROLE_INVOKER] = INVOKES,
};

/* Every admin endpoint, the permission it needs and where its target is.
 * A path that is not here is answered 404 (405 with another method) before
 * any handler sees it, so an endpoint cannot exist without a permission;
 * docs/admin-api.md lists the same (tests/unit/gateway/test_auth.c). */
const gw_endpoint_t gw__endpoints[] = {
    {"GET", "health", GW_PERM_NONE, GW_SCOPE_PUBLIC, NULL},
    {"GET", "ready", GW_PERM_NONE, GW_SCOPE_PUBLIC, NULL},
    {"GET", "whoami", GW_PERM_NONE, GW_SCOPE_ANY_KEY, NULL},
    {"GET", "apps", GW_PERM_APPS_READ, GW_SCOPE_HANDLER, NULL},
    {"PUT", "apps/{app}", GW_PERM_APPS_DEPLOY, GW_SCOPE_APP, "deploy"},
    {"POST", "apps/{app}", GW_PERM_APPS_DEPLOY, GW_SCOPE_APP, "deploy"},
    {"GET", "apps/{app}", GW_PERM_APPS_READ, GW_SCOPE_APP, NULL},
    {"DELETE", "apps/{app}", GW_PERM_APPS_DELETE, GW_SCOPE_APP, "delete"},
    {"GET", "apps/{app}/versions", GW_PERM_APPS_READ, GW_SCOPE_APP, NULL},
    {"POST", "apps/{app}/versions/prune", GW_PERM_APPS_PRUNE, GW_SCOPE_APP, "prune"},
    {"POST", "apps/{app}/rollback", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "rollback"},
    {"GET", "apps/{app}/routes", GW_PERM_APPS_READ, GW_SCOPE_APP, NULL},
    {"GET", "apps/{app}/export", GW_PERM_APPS_EXPORT, GW_SCOPE_APP, NULL},
    {"GET", "apps/{app}/secrets", GW_PERM_SECRETS_READ, GW_SCOPE_APP, NULL},
    {"PUT", "apps/{app}/secrets/{name}", GW_PERM_SECRETS_MANAGE, GW_SCOPE_APP, "secret.set"},
    {"DELETE", "apps/{app}/secrets/{name}", GW_PERM_SECRETS_MANAGE, GW_SCOPE_APP, "secret.delete"},
    {"POST", "apps/{app}/promote", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "promote"},
    {"PUT", "apps/{app}/tags/{tag}", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "tag"},
    {"DELETE", "apps/{app}/tags/{tag}", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "tag.remove"},
    {"PUT", "apps/{app}/split", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "split"},
    {"DELETE", "apps/{app}/split", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "split.clear"},
    {"GET", "apps/{app}/rollout", GW_PERM_APPS_READ, GW_SCOPE_APP, NULL},
    {"POST", "apps/{app}/rollout/pause", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "rollout.pause"},
    {"POST", "apps/{app}/rollout/resume", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "rollout.resume"},
    {"POST", "apps/{app}/rollout/abort", GW_PERM_APPS_ROLLBACK, GW_SCOPE_APP, "rollout.abort"},
    {"GET", "apps/{app}/counters", GW_PERM_APPS_READ, GW_SCOPE_APP, NULL},
    {"GET", "doctor", GW_PERM_NODE_READ, GW_SCOPE_HANDLER, NULL},
    {"POST", "apps/{app}/functions/{fn}/invoke", GW_PERM_FUNCTIONS_INVOKE, GW_SCOPE_APP, NULL},
    {"GET", "sandboxes", GW_PERM_SANDBOXES_READ, GW_SCOPE_HANDLER, NULL},
    {"DELETE", "apps/{app}/sandboxes", GW_PERM_SANDBOXES_EVICT, GW_SCOPE_APP, "evict"},
    {"PUT", "apps/{app}/functions/{fn}/scale", GW_PERM_SANDBOXES_SCALE, GW_SCOPE_APP, "scale"},
    {"POST", "events", GW_PERM_EVENTS_EMIT, GW_SCOPE_HANDLER, NULL},
    {"GET", "apps/{app}/dlq", GW_PERM_EVENTS_READ, GW_SCOPE_APP, NULL},
    {"POST", "apps/{app}/dlq/replay", GW_PERM_EVENTS_REPLAY, GW_SCOPE_APP, "events.replay"},
    {"GET", "apps/{app}/triggers/recent", GW_PERM_EVENTS_READ, GW_SCOPE_APP, NULL},
    {"GET", "usage", GW_PERM_USAGE_READ, GW_SCOPE_APP_QUERY, NULL},
    {"GET", "apps/{app}/activations", GW_PERM_ACTIVATIONS_READ, GW_SCOPE_APP, NULL},
    {"GET", "activations/{id}", GW_PERM_ACTIVATIONS_READ, GW_SCOPE_HANDLER, NULL},
    {"GET", "traces/{id}", GW_PERM_ACTIVATIONS_READ, GW_SCOPE_HANDLER, NULL},
    {"GET", "apps/{app}/logs", GW_PERM_LOGS_READ, GW_SCOPE_APP, NULL},
    {"GET", "namespaces", GW_PERM_NAMESPACES_READ, GW_SCOPE_HANDLER, NULL},
    {"PUT", "namespaces/{ns}", GW_PERM_NAMESPACES_MANAGE, GW_SCOPE_HANDLER, "namespace.create"},
    {"DELETE", "namespaces/{ns}", GW_PERM_NAMESPACES_MANAGE, GW_SCOPE_HANDLER, "namespace.delete"},
    {"GET", "quotas", GW_PERM_QUOTA_READ, GW_SCOPE_HANDLER, NULL},
    {"GET", "namespaces/{ns}/quota", GW_PERM_QUOTA_READ, GW_SCOPE_HANDLER, NULL},
    {"PUT", "namespaces/{ns}/quota", GW_PERM_QUOTA_MANAGE, GW_SCOPE_HANDLER, "quota.set"},
    {"GET", "keys", GW_PERM_KEYS_READ, GW_SCOPE_HANDLER, NULL},
    {"POST", "keys", GW_PERM_KEYS_MANAGE, GW_SCOPE_HANDLER, "key.create"},
    {"DELETE", "keys/{id}", GW_PERM_KEYS_MANAGE, GW_SCOPE_HANDLER, "key.revoke"},
    {"GET", "audit", GW_PERM_AUDIT_READ, GW_SCOPE_HANDLER, NULL},
    {"GET", "nodes", GW_PERM_NODE_READ, GW_SCOPE_HANDLER, NULL},
    {"POST", "nodes/{id}/drain", GW_PERM_NODES_DRAIN, GW_SCOPE_HANDLER, "node.drain"},
};
const size_t gw__nendpoints = sizeof(gw__endpoints) / sizeof(gw__endpoints[0]);

const char *gw__role_name(gw_role_t r)
{
    return r >= 0 && r < GW_NROLES ? role_names[r] : "?";
}

gw_role_t gw__role_parse(const char *name)
{
    for (int r = 0; name && r < GW_NROLES; r++)
        if (strcmp(name, role_names[r]) == 0)
            return (gw_role_t)r;
    return GW_NROLES;
}

const char *gw__perm_name(gw_perm_t p)
{
    return p >= 0 && p < GW_NPERMS ? perm_names[p] : "-";
}

bool gw__role_allows(gw_role_t r, gw_perm_t p)
{
    return r >= 0 && r < GW_NROLES && p >= 0 && p < GW_NPERMS && (role_perms[r] & (1u << p)) != 0;
}

/* Whether seg[0..n) matches `path` ("apps/{app}/versions"); *app_at gets
 * the position of {app} (SIZE_MAX: none). */
static bool path_matches(const char *path, const h2o_iovec_t *seg, size_t n, size_t *app_at)
{
    size_t i = 0;
    *app_at = SIZE_MAX;
    for (const char *p = path; *p; i++) {
        size_t len = strcspn(p, "/");
        if (i >= n)
            return false;
        if (p[0] == '{') {
            if (len == 5 && memcmp(p, "{app}", 5) == 0)
                *app_at = i;
        } else if (!h2o_memis(seg[i].base, seg[i].len, p, len)) {
            return false;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return i == n;
}

/* The segment of seg[0..n) standing for "{ns}" in `path`, or NULL. */
static const h2o_iovec_t *path_ns(const char *path, const h2o_iovec_t *seg, size_t n)
{
    size_t i = 0;
    for (const char *p = path; *p && i < n; i++) {
        size_t len = strcspn(p, "/");
        if (len == 4 && memcmp(p, "{ns}", 4) == 0)
            return &seg[i];
        p += len + (p[len] == '/');
    }
    return NULL;
}

const gw_endpoint_t *gw__endpoint_find(const char *method, size_t method_len, const h2o_iovec_t *seg, size_t n,
                                       bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < gw__nendpoints; i++) {
        size_t app_at;
        if (!path_matches(gw__endpoints[i].path, seg, n, &app_at))
            continue;
        *path_known = true;
        if (h2o_memis(method, method_len, gw__endpoints[i].method, strlen(gw__endpoints[i].method)))
            return &gw__endpoints[i];
    }
    return NULL;
}

/* ------------------------------------------------------ request context */

/* What the gateway keeps about an admin request or a request waiting for
 * its key (in the request's pool; off the list when the request goes). */
typedef struct {
    tine_list_t link;
    h2o_req_t *req;
    gw_server_t *gw;
    bool has_caller;
    gw_caller_t caller;
    tn_fetch_t *fetch; /* the key being read from Redis */
    bool fetched;      /* it was read (found or not) */
    int fetch_rc;
    const char *action; /* audit: NULL for none, or once written */
    const char *ns, *target;
} auth_ctx_t;

static tine_list_t active = {&active, &active};

static auth_ctx_t *ctx_find(h2o_req_t *req)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &active) {
        auth_ctx_t *c = tine_list_entry(l, auth_ctx_t, link);
        if (c->req == req)
            return c;
    }
    return NULL;
}

static void on_ctx_dispose(void *p)
{
    auth_ctx_t *c = p;
    tine_list_remove(&c->link);
    if (c->fetch)
        tn_fetch_cancel(c->fetch);
}

static auth_ctx_t *ctx_get(gw_server_t *gw, h2o_req_t *req)
{
    auth_ctx_t *c = ctx_find(req);
    if (c)
        return c;
    c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), on_ctx_dispose);
    memset(c, 0, sizeof(*c));
    c->req = req;
    c->gw = gw;
    tine_list_init(&c->link);
    tine_list_insert_tail(&active, &c->link);
    return c;
}

static const char *pool_strdup(h2o_req_t *req, const char *s)
{
    return s ? h2o_strdup(&req->pool, s, strlen(s)).base : NULL;
}

const gw_caller_t *gw__caller(h2o_req_t *req)
{
    auth_ctx_t *c = ctx_find(req);
    return c && c->has_caller ? &c->caller : NULL;
}

bool gw__caller_sees(const gw_caller_t *c, const char *app, const char *ns)
{
    if (c == NULL)
        return false;
    if (c->ns && (ns == NULL || strcmp(c->ns, ns) != 0))
        return false;
    return c->app == NULL || (app && strcmp(c->app, app) == 0);
}

bool gw__caller_may_read_app(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    const gw_caller_t *c = gw__caller(req);
    if (c == NULL || (c->ns == NULL && c->app == NULL))
        return c != NULL;
    char *ns = app ? gw__app_namespace(gw, app) : NULL;
    bool sees = gw__caller_sees(c, app, ns);
    free(ns);
    return sees;
}

char *gw__app_namespace(gw_server_t *gw, const char *app)
{
    reg_app_version_t *v = reg_live_get(gw->live, app, strlen(app));
    if (v)
        return xstrdup(v->manifest->namespace);
    char *ns = NULL, err[256];
    reg_store_app_namespace(reg_live_store(gw->live), app, &ns, err, sizeof(err));
    return ns;
}

/* ------------------------------------------------------- authentication */

typedef enum {
    AUTH_OK,      /* *out is the caller */
    AUTH_NONE,    /* no credentials sent */
    AUTH_NOT_KEY, /* credentials that are neither the token nor a key (401, the reason in msg) */
    AUTH_REFUSED, /* 401 with the reason in msg (*out set when the key is known: a revoked one) */
    AUTH_WAIT,    /* the key is being read from Redis */
    AUTH_DOWN,    /* the key could not be read: 503 */
} auth_result_t;

#define KEY_TEXT_LEN (TN_KEY_ID_LEN + 1 + TN_KEY_SECRET_LEN)

static bool hex_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Whether v[0..len) is ID:SECRET (16 and 64 lower-case hex digits). */
static bool key_shape(const char *v, size_t len)
{
    return len == KEY_TEXT_LEN && v[TN_KEY_ID_LEN] == ':' && hex_only(v, TN_KEY_ID_LEN) &&
           hex_only(v + TN_KEY_ID_LEN + 1, TN_KEY_SECRET_LEN);
}

/* The key of an Authorization value (after the scheme): ID:SECRET for
 * Bearer, base64 of it for Basic. False with the reason in msg. */
static bool read_key(const char *v, size_t len, bool basic, char key[KEY_TEXT_LEN + 1], char *msg, size_t msglen)
{
    if (basic) {
        unsigned char out[3 * KEY_TEXT_LEN];
        int n = len > 0 && len % 4 == 0 && len <= 4 * KEY_TEXT_LEN
                    ? EVP_DecodeBlock(out, (const unsigned char *)v, (int)len)
                    : -1;
        for (size_t pad = len; n > 0 && pad > 0 && v[pad - 1] == '='; pad--)
            n--; /* EVP_DecodeBlock counts the padding as bytes */
        if (n < 0 || !key_shape((const char *)out, (size_t)n)) {
            snprintf(msg, msglen,
                     "malformed Basic credentials: expected the key id (16 hex digits) as user and its "
                     "secret (64 hex digits) as password");
            return false;
        }
        memcpy(key, out, KEY_TEXT_LEN);
    } else if (key_shape(v, len)) {
        memcpy(key, v, KEY_TEXT_LEN);
    } else {
        const char *colon = memchr(v, ':', len);
        if (colon == NULL)
            snprintf(msg, msglen,
                     "wrong admin token, or a malformed API key: expected ID:SECRET (16 and 64 "
                     "lower-case hex digits)");
        else
            snprintf(msg, msglen, "malformed API key '%.*s:...': expected ID:SECRET (16 and 64 lower-case hex digits)",
                     (int)((size_t)(colon - v) > 16 ? 16 : (size_t)(colon - v)), v);
        return false;
    }
    key[KEY_TEXT_LEN] = '\0';
    return true;
}

static void on_key_fetched(void *data, int rc)
{
    auth_ctx_t *c = data;
    c->fetch = NULL;
    c->fetched = true;
    c->fetch_rc = rc;
    gw__serve(c->gw, c->req); /* from the top, now that the key is known (or not) */
}

/* Finds who sent req. `wait`: a key this node does not know is read from
 * Redis in the background (AUTH_WAIT; the request is served again then);
 * else it is read now. `copy`: the caller's strings are copied into the
 * request's pool (else borrowed from the node's keys until the loop runs). */
static auth_result_t authenticate(gw_server_t *gw, h2o_req_t *req, bool wait, bool copy, gw_caller_t *out,
                                  char *msg, size_t msglen)
{
    memset(out, 0, sizeof(*out));
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0) {
        snprintf(msg, msglen,
                 "missing or wrong admin token or API key: send Authorization: Bearer <token or ID:SECRET>, or Basic "
                 "with the key id and secret");
        return AUTH_NONE;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    /* The token is compared (in constant time) when the length fits: a key
     * is not made to pay for it. */
    if (gw->admin_token && v.len == 7 + gw->admin_token_len && gw__bearer_ok(req, gw->admin_token)) {
        *out = (gw_caller_t){GW_ROLE_CLUSTER_ADMIN, "admin-token", "admin token", NULL, NULL};
        return AUTH_OK;
    }
    bool basic = v.len >= 6 && strncasecmp(v.base, "Basic ", 6) == 0;
    if (!basic && !(v.len >= 7 && strncasecmp(v.base, "Bearer ", 7) == 0)) {
        snprintf(msg, msglen, "unsupported Authorization scheme: use Bearer or Basic");
        return AUTH_NOT_KEY;
    }
    size_t skip = basic ? 6 : 7;
    while (skip < v.len && v.base[skip] == ' ')
        skip++;
    char key[KEY_TEXT_LEN + 1];
    if (!read_key(v.base + skip, v.len - skip, basic, key, msg, msglen))
        return AUTH_NOT_KEY;
    const tn_key_t *k = tn_key_find(gw->tenancy, key, TN_KEY_ID_LEN);
    if (k == NULL && gw->tenancy) {
        auth_ctx_t *c = wait ? ctx_get(gw, req) : NULL;
        if (c && c->fetched && c->fetch_rc != 0) {
            snprintf(msg, msglen, "cannot check API key %.16s now: redis is unreachable", key);
            return AUTH_DOWN;
        }
        if (c && !c->fetched) {
            key[TN_KEY_ID_LEN] = '\0';
            if (tn_key_fetch(gw->tenancy, key, on_key_fetched, c, &c->fetch) == 0)
                return AUTH_WAIT;
            snprintf(msg, msglen, "cannot check API key %s now: redis is unreachable", key);
            return AUTH_DOWN;
        }
        if (!wait) {
            key[TN_KEY_ID_LEN] = '\0';
            if (tn_key_fetch_now(gw->tenancy, key) != 0) {
                snprintf(msg, msglen, "cannot check API key %s now: redis is unreachable", key);
                return AUTH_DOWN;
            }
            k = tn_key_find(gw->tenancy, key, TN_KEY_ID_LEN);
        }
    }
    if (k == NULL) {
        snprintf(msg, msglen, "unknown API key %.16s", key);
        return AUTH_REFUSED;
    }
    if (!tn_key_secret_ok(k, key + TN_KEY_ID_LEN + 1, TN_KEY_SECRET_LEN)) {
        snprintf(msg, msglen, "wrong secret for API key %s", k->id);
        return AUTH_REFUSED;
    }
    gw_role_t role = gw__role_parse(k->role);
    /* Copied for callers that keep them past this loop turn (admin calls);
     * a private route's check is done before then. */
    *out = copy ? (gw_caller_t){role, pool_strdup(req, k->id), pool_strdup(req, k->name),
                                     pool_strdup(req, k->ns), pool_strdup(req, k->app)}
                     : (gw_caller_t){role, k->id, k->name, k->ns, k->app};
    if (k->revoked_ms) {
        char when[32];
        tine_fmt_rfc3339_ms((uint64_t)k->revoked_ms, when);
        snprintf(msg, msglen, "API key %s (%s) was revoked at %s", k->id, k->name, when);
        return AUTH_REFUSED;
    }
    if (k->expires_ms && (int64_t)tine_now_unix_ms() >= k->expires_ms) {
        char when[32];
        tine_fmt_rfc3339_ms((uint64_t)k->expires_ms, when);
        snprintf(msg, msglen, "API key %s (%s) expired at %s", k->id, k->name, when);
        return AUTH_REFUSED;
    }
    if (role == GW_NROLES) {
        snprintf(msg, msglen, "API key %s has an unknown role '%s'", k->id, k->role);
        return AUTH_REFUSED;
    }
    return AUTH_OK;
}

/* Answers 401 with the challenges of both schemes. */
static void send_unauthorized(h2o_req_t *req, const char *msg)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("www-authenticate"), 0, NULL, H2O_STRLIT("Bearer"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("www-authenticate"), 0, NULL,
                          H2O_STRLIT("Basic realm=\"tine\""));
    gw__send_error(req, 401, "%s", msg);
}

void gw__send_unauthorized(h2o_req_t *req, const char *msg)
{
    send_unauthorized(req, msg ? msg : "missing or wrong admin token (send Authorization: Bearer <token>)");
}

/* "key ID (NAME, role R[, namespace N][, app A])" into buf. */
static const char *describe(const gw_caller_t *c, char *buf, size_t len)
{
    int n = snprintf(buf, len, "key %s (%s, role %s", c->id, c->name ? c->name : "-", gw__role_name(c->role));
    if (c->ns && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", namespace %s", c->ns);
    if (c->app && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", app %s", c->app);
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ")");
    return buf;
}

/* 403 when the caller lacks p on app (of namespace ns; NULL: no app). */
static bool refuse_unless(h2o_req_t *req, const gw_caller_t *c, gw_perm_t p, const char *app, const char *ns)
{
    char who[256];
    if (!gw__role_allows(c->role, p)) {
        gw__send_error(req, 403, "forbidden: %s lacks permission %s", describe(c, who, sizeof who), gw__perm_name(p));
        return true;
    }
    if (app == NULL)
        return false;
    if (c->app && strcmp(c->app, app) != 0) {
        gw__send_error(req, 403, "forbidden: %s lacks permission %s on app %s: it is restricted to app %s",
                       describe(c, who, sizeof who), gw__perm_name(p), app, c->app);
        return true;
    }
    if (c->ns && ns && strcmp(c->ns, ns) != 0) {
        gw__send_error(req, 403, "forbidden: %s lacks permission %s on app %s of namespace %s",
                       describe(c, who, sizeof who), gw__perm_name(p), app, ns);
        return true;
    }
    return false;
}

int gw__admin_authorize(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    char msg[512];
    bool path_known = false;
    const gw_endpoint_t *e = n <= 5 ? gw__endpoint_find(req->method.base, req->method.len, seg, n, &path_known) : NULL;
    if (e && e->scope == GW_SCOPE_PUBLIC)
        return 0;
    gw_caller_t caller;
    auth_result_t a = authenticate(gw, req, true, true, &caller, msg, sizeof msg);
    if (gw->admin_token == NULL && (a == AUTH_NONE || a == AUTH_NOT_KEY)) {
        /* A node without auth: anyone is a cluster admin, unless a key says who. */
        caller = (gw_caller_t){GW_ROLE_CLUSTER_ADMIN, "-", "no auth (loopback)", NULL, NULL};
        a = AUTH_OK;
    }
    if (a == AUTH_WAIT)
        return 1;
    if (a == AUTH_DOWN) {
        gw__send_error(req, 503, "%s", msg);
        return 1;
    }
    auth_ctx_t *c = NULL;
    if (a != AUTH_OK) {
        /* A refused holder of a revoked key is audited; guessers are not. */
        if (e && e->audit && caller.id) {
            c = ctx_get(gw, req);
            c->caller = caller;
            c->has_caller = true;
            c->action = e->audit;
            size_t at;
            if (e->scope == GW_SCOPE_APP && path_matches(e->path, seg, n, &at) && at < n)
                c->target = h2o_strdup(&req->pool, seg[at].base, seg[at].len).base;
        }
        send_unauthorized(req, msg);
        return 1;
    }
    if (e == NULL) {
        if (path_known)
            gw__send_error(req, 405, "%.*s is not allowed on this admin endpoint", (int)req->method.len,
                           req->method.base);
        else
            gw__send_error(req, 404, "no such admin endpoint");
        return 1;
    }
    c = ctx_get(gw, req);
    c->caller = caller;
    c->has_caller = true;
    c->action = e->audit;
    const h2o_iovec_t *ns_seg = path_ns(e->path, seg, n);
    if (ns_seg) /* a namespace's endpoint: its audit entry names it even when refused */
        c->ns = c->target = h2o_strdup(&req->pool, ns_seg->base, ns_seg->len).base;
    if (e->scope == GW_SCOPE_ANY_KEY)
        return 0;
    /* The target app, from the path or the query. */
    char *app = NULL;
    if (e->scope == GW_SCOPE_APP) {
        size_t at;
        path_matches(e->path, seg, n, &at);
        app = xstrndup(seg[at].base, seg[at].len);
    } else if (e->scope == GW_SCOPE_APP_QUERY) {
        app = gw__query_param(req, "app"); /* the handler checks the rest of the query */
    }
    char *ns = app && reg_name_valid(app) ? gw__app_namespace(gw, app) : NULL;
    if (app) {
        c->target = pool_strdup(req, app);
        c->ns = pool_strdup(req, ns);
    }
    bool refused = refuse_unless(req, &caller, e->perm, app, ns);
    free(app);
    free(ns);
    return refused ? 1 : 0;
}

int gw__admin_head_allowed(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n, char *msg,
                           size_t msglen)
{
    bool path_known;
    const gw_endpoint_t *e = n <= 5 ? gw__endpoint_find(req->method.base, req->method.len, seg, n, &path_known) : NULL;
    if (e && e->scope == GW_SCOPE_PUBLIC)
        return 0;
    gw_caller_t caller;
    auth_result_t a = authenticate(gw, req, false, false, &caller, msg, msglen);
    if (gw->admin_token == NULL && (a == AUTH_NONE || a == AUTH_NOT_KEY))
        return 0; /* a node without auth */
    if (a != AUTH_OK)
        return 401;
    if (e && e->perm != GW_PERM_NONE && !gw__role_allows(caller.role, e->perm)) {
        char who[256];
        snprintf(msg, msglen, "forbidden: %s lacks permission %s", describe(&caller, who, sizeof who),
                 gw__perm_name(e->perm));
        return 403;
    }
    return 0;
}

int gw__route_authorize(gw_server_t *gw, h2o_req_t *req, const reg_app_version_t *v)
{
    char msg[512];
    gw_caller_t caller;
    auth_result_t a = authenticate(gw, req, true, false, &caller, msg, sizeof msg);
    if (a == AUTH_WAIT)
        return 1;
    if (a == AUTH_DOWN) {
        gw__send_error(req, 503, "%s", msg);
        return 1;
    }
    if (a != AUTH_OK) {
        send_unauthorized(req, a == AUTH_NONE ? "this route needs an API key (auth: key): send Authorization: "
                                                "Bearer ID:SECRET, or Basic with the key id and secret"
                                              : msg);
        return 1;
    }
    if (refuse_unless(req, &caller, GW_PERM_FUNCTIONS_INVOKE, v->app, v->manifest->namespace))
        return 1;
    /* The function never sees the credential. */
    ssize_t i;
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1)) >= 0)
        h2o_delete_header(&req->headers, i);
    return 0;
}

int gw__authenticate(gw_server_t *gw, h2o_req_t *req, gw_caller_t *out, char *msg, size_t msglen)
{
    auth_result_t a = authenticate(gw, req, true, true, out, msg, msglen);
    if (gw->admin_token == NULL && (a == AUTH_NONE || a == AUTH_NOT_KEY)) {
        /* A node without auth: anyone is a cluster admin, unless a key says who. */
        *out = (gw_caller_t){GW_ROLE_CLUSTER_ADMIN, "-", "no auth (loopback)", NULL, NULL};
        return 0;
    }
    switch (a) {
    case AUTH_OK:
        return 0;
    case AUTH_WAIT:
        return 1;
    case AUTH_DOWN:
        return 503;
    default:
        return 401;
    }
}

/* ----------------------------------------------------------------- audit */

void gw__audit_target(h2o_req_t *req, const char *ns, const char *target)
{
    auth_ctx_t *c = ctx_find(req);
    if (c == NULL)
        return;
    if (ns)
        c->ns = pool_strdup(req, ns);
    if (target)
        c->target = pool_strdup(req, target);
}

void gw__audit_answer(h2o_req_t *req, int status, json_t *body)
{
    if (tine_list_empty(&active))
        return;
    auth_ctx_t *c = ctx_find(req);
    if (c == NULL || c->action == NULL || !c->has_caller)
        return;
    const char *error = json_string_value(json_object_get(body, "error"));
    char *detail = error ? NULL : json_dumps(body, JSON_COMPACT);
    if (detail && strlen(detail) > 300)
        strcpy(detail + 297, "...");
    tn_audit_entry_t e = {
        .key_id = c->caller.id,
        .key_name = c->caller.name,
        .ns = c->ns,
        .action = c->action,
        .target = c->target,
        .outcome = status < 300                     ? "ok"
                   : status == 401 || status == 403 ? "refused"
                                                    : "failed",
        .status = status,
        .detail = error ? error : detail,
    };
    tn_audit_append(c->gw->tenancy, &e);
    free(detail);
    c->action = NULL; /* one entry per request */
}

/* ---------------------------------------------------------------- deploy */

int gw__deploy_namespace_check(gw_server_t *gw, h2o_req_t *req, const reg_manifest_t *m, const char *manifest_path)
{
    gw__audit_target(req, m->namespace, NULL);
    const gw_caller_t *c = gw__caller(req);
    if (c && c->ns && strcmp(c->ns, m->namespace) != 0) {
        char who[256];
        gw__send_error(req, 403, "forbidden: %s lacks permission %s in namespace %s (%s: namespace)",
                       describe(c, who, sizeof who), gw__perm_name(GW_PERM_APPS_DEPLOY), m->namespace, manifest_path);
        return -1;
    }
    char err[512];
    int rc = reg_store_check_namespace(reg_live_store(gw->live), m->app, m->namespace, err, sizeof(err));
    if (rc == TINE_ENOTFOUND)
        gw__send_error(req, 404, "%s: %s", manifest_path, err);
    else if (rc == TINE_ECONFLICT)
        gw__send_error(req, 409, "%s", err);
    else if (rc != 0)
        gw__send_error(req, 503, "deploy of %s failed: %s", m->app, err);
    return rc == 0 ? 0 : -1;
}
