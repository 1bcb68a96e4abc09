/* The admin endpoint of artifacts (docs/artifacts.md): GET
 * /apps/{app}/export[?version=N] answers a stored version (default: the
 * live one) as its canonical tar.gz, the bytes `tine pack` makes of the
 * same files, with the digest in x-tine-digest. gw__admin_authorize
 * checked the permission and the app's namespace. */
#include "auth.h"
#include "bundle.h"
#include "registry.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses ?version=N (absent: 0, the live version). False with the 400 sent. */
static bool version_param(h2o_req_t *req, uint64_t *out)
{
    *out = 0;
    char *v = gw__query_param(req, "version");
    if (v == NULL)
        return true;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    bool ok = v[0] >= '1' && v[0] <= '9' && *end == '\0' && errno == 0;
    if (!ok)
        gw__send_error(req, 400, "version: expected a version number (1, 2, ...), got '%s'", v);
    free(v);
    *out = n;
    return ok;
}

/* GET /apps/{app}/export: loads the version, packs it canonically and
 * answers it with its digest and version number. */
static void admin_export(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t version;
    if (!version_param(req, &version))
        return;
    reg_store_t *store = reg_live_store(gw->live);
    if (version == 0) {
        if (reg_store_live_version(store, app, &version) != 0) {
            gw__send_error(req, 503, "export of %s failed: redis is unreachable", app);
            return;
        }
        if (version == 0) {
            gw__send_error(req, 404, "no app named '%s' (or it has no live version)", app);
            return;
        }
    }
    char err[1024] = "";
    reg_bundle_t *b = NULL;
    int r = reg_store_load_version(store, app, version, &b, err, sizeof err);
    if (r != 0) {
        if (r == TINE_ENOTFOUND)
            gw__send_error(req, 404, "%s has no version %" PRIu64, app, version);
        else
            gw__send_error(req, 503, "export of %s version %" PRIu64 " failed: %s", app, version, err);
        return;
    }
    void *tgz = NULL;
    size_t len = 0;
    char digest[65];
    r = reg_bundle_pack(b, &tgz, &len, err, sizeof err);
    reg_bundle_free(b);
    if (r != 0) {
        gw__send_error(req, 500, "export of %s version %" PRIu64 " failed: %s", app, version, err);
        return;
    }
    reg_sha256_hex(tgz, len, digest);
    char vtext[24];
    int vlen = snprintf(vtext, sizeof vtext, "%" PRIu64, version);
    req->res.status = 200;
    req->res.reason = gw__reason(200);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/gzip"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-tine-digest"), 0, NULL,
                          h2o_strdup(&req->pool, digest, 64).base, 64);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-tine-version"), 0, NULL,
                          h2o_strdup(&req->pool, vtext, (size_t)vlen).base, (size_t)vlen);
    /* h2o_send_inline copies the body into the request's pool. */
    gw__send_body(req, tgz, len);
    free(tgz);
}

int gw__admin_artifact(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    if (!(n == 3 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("apps")) &&
          h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("export"))))
        return 0;
    char *app = xstrndup(seg[1].base, seg[1].len);
    admin_export(gw, req, app);
    free(app);
    return 1;
}
