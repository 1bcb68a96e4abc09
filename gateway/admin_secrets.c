/* The admin endpoints of app secrets (docs/secrets.md): GET
 * /apps/{app}/secrets (names only), PUT /apps/{app}/secrets/{name} (the
 * body is the value: sealed with the cluster key before it reaches Redis)
 * and DELETE /apps/{app}/secrets/{name}. No answer ever holds a value, so
 * neither does the audit entry made of it. gw__admin_authorize checked the
 * permission and the app's namespace. */
#include "auth.h"
#include "registry.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_MAX_VALUE (64 * 1024)

static int status_of(int rc)
{
    return rc == TINE_ECONFLICT ? 500 : rc == TINE_EINVAL ? 400 : rc == TINE_ENOTFOUND ? 404 : 503;
}

/* GET: the names of the app's secrets. */
static void secrets_list(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    char **names = NULL;
    size_t n = 0;
    if (reg_secrets_list(reg_live_store(gw->live), app, &names, &n) != 0) {
        gw__send_error(req, 503, "redis is unreachable");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:s}", "name", names[i]));
        free(names[i]);
    }
    free(names);
    gw__send_json(req, 200, json_pack("{s:s, s:o}", "app", app, "secrets", arr));
}

/* PUT and DELETE of one secret. */
static void secret_change(gw_server_t *gw, h2o_req_t *req, const char *app, const char *name, bool put)
{
    char *ns = gw__app_namespace(gw, app);
    char *target = xasprintf("%s/%s", app, name);
    gw__audit_target(req, ns, target);
    free(target);
    free(ns);
    if (!tine_secret_name_valid(name)) {
        gw__send_error(req, 400, "secret name '%s': expected 1 to 128 of [A-Za-z0-9_], not starting with a digit",
                       name);
        return;
    }
    reg_store_t *store = reg_live_store(gw->live);
    char err[512] = "";
    int rc;
    bool flag = false;
    if (!put) {
        rc = reg_secrets_delete(store, app, name, &flag, err, sizeof err);
        if (rc != 0)
            gw__send_error(req, 503, "secret %s of %s not removed: %s", name, app, err);
        else if (!flag)
            gw__send_error(req, 404, "%s has no secret named %s", app, name);
        else
            gw__send_json(req, 200, json_pack("{s:s, s:s, s:b}", "app", app, "secret", name, "deleted", 1));
        return;
    }
    if (!gw->has_secrets_key) {
        gw__send_error(req, 503, "this node has no secrets key: start tined with --secrets-key FILE (the same "
                                 "file on every node) to store secrets");
        return;
    }
    if (req->entity.len == 0 || req->entity.len > SECRET_MAX_VALUE) {
        gw__send_error(req, 400, "secret %s: expected a value of 1 to %d bytes, got %zu", name, SECRET_MAX_VALUE,
                       req->entity.len);
        return;
    }
    rc = reg_secrets_set(store, gw->secrets_key, app, name, req->entity.base, req->entity.len, &flag, err,
                         sizeof err);
    if (rc != 0) {
        gw__send_error(req, status_of(rc), "secret %s of %s not stored: %s", name, app, err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "secret %s of %s %s", name, app, flag ? "set" : "replaced");
    gw__send_json(req, 200, json_pack("{s:s, s:s, s:b}", "app", app, "secret", name, "created", flag));
}

int gw__admin_secrets(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    if (!((n == 3 || n == 4) && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps")) &&
          h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("secrets"))))
        return 0;
    char *app = xstrndup(seg[1].base, seg[1].len);
    if (n == 3) {
        secrets_list(gw, req, app);
    } else {
        char *name = gw__percent_decode(seg[3].base, seg[3].len);
        secret_change(gw, req, app, name ? name : "", h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")));
        free(name);
    }
    free(app);
    return 1;
}
