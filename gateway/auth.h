/* Who may do what (auth.c): the roles of API keys, the permissions each
 * grants, and the one table of admin endpoints, each with the permission it
 * needs; callers authenticated from "Authorization: Bearer TOKEN|ID:SECRET"
 * or "Basic base64(ID:SECRET)"; private routes (auth: key); the audit
 * entry of every change. Shared inside the gateway only. */
#ifndef TINE_GATEWAY_AUTH_H
#define TINE_GATEWAY_AUTH_H

#include "gateway_internal.h"

#include <stdbool.h>

typedef enum {
    GW_ROLE_CLUSTER_ADMIN = 0, /* everything, in every namespace (the admin token is one) */
    GW_ROLE_ADMIN,             /* everything inside its namespace, its keys included */
    GW_ROLE_DEPLOYER,          /* deploy, rollback, scale, evict, invoke, emit, read */
    GW_ROLE_VIEWER,            /* read apps, versions, routes, activations, logs, usage */
    GW_ROLE_INVOKER,           /* invoke functions and emit events */
    GW_NROLES
} gw_role_t;

typedef enum {
    GW_PERM_NONE = -1, /* the endpoint needs no key (health, ready) or any valid one (whoami) */
    GW_PERM_APPS_READ = 0,
    GW_PERM_APPS_DEPLOY,
    GW_PERM_APPS_ROLLBACK,
    GW_PERM_APPS_PRUNE,
    GW_PERM_APPS_DELETE,
    GW_PERM_FUNCTIONS_INVOKE,
    GW_PERM_SANDBOXES_READ,
    GW_PERM_SANDBOXES_SCALE,
    GW_PERM_SANDBOXES_EVICT,
    GW_PERM_EVENTS_EMIT,
    GW_PERM_EVENTS_READ,
    GW_PERM_EVENTS_REPLAY,
    GW_PERM_ACTIVATIONS_READ,
    GW_PERM_LOGS_READ,
    GW_PERM_USAGE_READ,
    GW_PERM_NODE_READ,
    GW_PERM_KEYS_READ,
    GW_PERM_KEYS_MANAGE,
    GW_PERM_AUDIT_READ,
    GW_PERM_NAMESPACES_READ,
    GW_PERM_NAMESPACES_MANAGE,
    GW_PERM_NODES_DRAIN,
    GW_PERM_QUOTA_READ,
    GW_PERM_QUOTA_MANAGE,
    GW_PERM_APPS_EXPORT,
    GW_PERM_SECRETS_READ,
    GW_PERM_SECRETS_MANAGE,
    GW_NPERMS
} gw_perm_t;

/* Where an endpoint's target is, for the namespace and app checks. */
typedef enum {
    GW_SCOPE_PUBLIC,    /* no key needed */
    GW_SCOPE_ANY_KEY,   /* any valid key */
    GW_SCOPE_APP,       /* the {app} segment: its namespace must be the key's */
    GW_SCOPE_APP_QUERY, /* the app= query parameter, likewise */
    GW_SCOPE_HANDLER,   /* the handler narrows what the key sees (lists, records, keys) */
} gw_scope_t;

/* One admin endpoint: method, path after /_tine/v1/ with {name} for one
 * segment, the permission it needs, where its target is, and the action it
 * writes to the audit log (NULL: not a change). */
typedef struct {
    const char *method;
    const char *path;
    gw_perm_t perm;
    gw_scope_t scope;
    const char *audit;
} gw_endpoint_t;

extern const gw_endpoint_t gw__endpoints[];
extern const size_t gw__nendpoints;

/* "cluster-admin" ... and back (GW_NROLES for an unknown name). */
const char *gw__role_name(gw_role_t r);
gw_role_t gw__role_parse(const char *name);
/* "apps.read" ... */
const char *gw__perm_name(gw_perm_t p);
/* Whether role r has permission p. */
bool gw__role_allows(gw_role_t r, gw_perm_t p);

/* The endpoint of METHOD seg[0..n), or NULL; *path_known tells whether the
 * path is an endpoint's with another method. */
const gw_endpoint_t *gw__endpoint_find(const char *method, size_t method_len, const h2o_iovec_t *seg, size_t n,
                                       bool *path_known);

/* Who is calling: a key, the admin token, or anyone (a node without auth). */
typedef struct {
    gw_role_t role;
    const char *id;   /* key id, "admin-token", or "-" */
    const char *name; /* key name */
    const char *ns;   /* NULL: every namespace */
    const char *app;  /* NULL: every app of the namespace */
} gw_caller_t;

/* Checks an admin request (its path split into seg[0..n)) before it is
 * served: authenticates the caller (401), finds its endpoint (404, 405),
 * checks the permission and, for an {app} or app= target, the app's
 * namespace and the key's app (403 naming the permission). Returns 0 to go
 * on, 1 when the request was answered or waits for its key to be read from
 * Redis (gw__serve runs again then). */
int gw__admin_authorize(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* For a request whose body is not read yet (intake.c), its path split into
 * seg[0..n): 0 when the caller may send it to this admin endpoint (authenticated, with its permission;
 * the key read from Redis now when this node does not know it yet), else
 * 401 or 403 with the reason in msg. */
int gw__admin_head_allowed(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n, char *msg,
                           size_t msglen);

/* Checks the caller of a private route (auth: key) of version v: an
 * invoking key of the app's namespace (and app), or 401/403 sent. The
 * credential is removed from the headers the function gets. Returns 0 to
 * go on, 1 when answered or waiting for the key (as gw__admin_authorize). */
int gw__route_authorize(gw_server_t *gw, h2o_req_t *req, const reg_app_version_t *v);

/* Authenticates the caller of a request outside the admin API (the
 * OpenWhisk API) into *out, its strings in the request's pool. Returns 0;
 * 1 when its key is being read from Redis (gw__serve runs again then);
 * 401 or 503 with the reason in msg (nothing sent). On a node without an
 * admin token, a request without a key is a cluster admin's. */
int gw__authenticate(gw_server_t *gw, h2o_req_t *req, gw_caller_t *out, char *msg, size_t msglen);

/* The caller of an admin request that passed gw__admin_authorize (NULL
 * otherwise). */
const gw_caller_t *gw__caller(h2o_req_t *req);

/* Whether the caller may see app `app` of namespace `ns` (NULL: unknown). */
bool gw__caller_sees(const gw_caller_t *c, const char *app, const char *ns);

/* Whether the caller of req may see app `app` (its namespace looked up). */
bool gw__caller_may_read_app(gw_server_t *gw, h2o_req_t *req, const char *app);

/* The namespace of `app`: its live version's manifest's on this node, else
 * the registry's; NULL for an app never registered. Fresh string. */
char *gw__app_namespace(gw_server_t *gw, const char *app);

/* Sets what the audit entry of this request names: the namespace and the
 * target (copied), when the handler knows them better than the path. */
void gw__audit_target(h2o_req_t *req, const char *ns, const char *target);

/* Called with every JSON answer (response.c): writes the audit entry of a
 * change once its outcome is known. */
void gw__audit_answer(h2o_req_t *req, int status, json_t *body);

/* Deploy: checks the manifest's namespace against the caller's and the
 * registry (the namespace exists; the app is in no other). Returns 0, or
 * -1 with the answer sent (403, 404, 409, 503). */
int gw__deploy_namespace_check(gw_server_t *gw, h2o_req_t *req, const reg_manifest_t *m, const char *manifest_path);

/* The endpoints of tenancy (admin_tenancy.c): whoami, namespaces, keys,
 * audit. Returns 1 when seg[0..n) names one (answered), else 0. */
int gw__admin_tenancy(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* The endpoints of quotas (admin_quota.c): GET /quotas, GET and PUT
 * /namespaces/{ns}/quota. Returns 1 when seg[0..n) names one (answered),
 * else 0. */
int gw__admin_quota(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* The endpoint of artifacts (admin_artifact.c): GET /apps/{app}/export.
 * Returns 1 when seg[0..n) names it (answered), else 0. */
int gw__admin_artifact(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* The endpoints of app secrets (admin_secrets.c): GET /apps/{app}/secrets,
 * PUT and DELETE /apps/{app}/secrets/{name}. Returns 1 when seg[0..n) names
 * one (answered), else 0. */
int gw__admin_secrets(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

#endif
