/* The web console's static files under /_tine/console/ (docs/console.md):
 * plain files of one directory (--console-dir), read on each request (they
 * are small and change with an upgrade), sent with a content security
 * policy that allows nothing but this origin's own scripts, styles and
 * API. The console itself calls the admin API with the user's key. */
#include "gateway_internal.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The content type of a file name by its extension, NULL for one the
 * console does not serve. */
static const char *content_type(const char *name, size_t len)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},     {".svg", "image/svg+xml"},
        {".json", "application/json"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t el = strlen(types[i].ext);
        if (len > el && memcmp(name + len - el, types[i].ext, el) == 0)
            return types[i].type;
    }
    return NULL;
}

/* Whether name (len bytes) is a plain file name: [a-z0-9_.-], no leading
 * dot, at most 64 characters. */
static bool name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int gw__console(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len)
{
    if (gw->console_dir == NULL) {
        gw__send_error(req, 404, "this node serves no console (--console-dir off)");
        return 0;
    }
    if (rest_len == 0) { /* /_tine/console: the directory's address */
        req->res.status = 301;
        req->res.reason = "Moved Permanently";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, H2O_STRLIT(GW_CONSOLE_PREFIX "/"));
        gw__send_body(req, "", 0);
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        gw__send_error(req, 405, "use GET");
        return 0;
    }
    const char *name = rest + 1; /* after the "/" */
    size_t len = rest_len - 1;
    if (len == 0) {
        name = "index.html";
        len = strlen(name);
    }
    const char *type = name_ok(name, len) ? content_type(name, len) : NULL;
    char *path = type ? xasprintf("%s/%.*s", gw->console_dir, (int)len, name) : NULL;
    char *body = NULL;
    size_t body_len = 0;
    if (path == NULL || tine_try_read_file(path, &body, &body_len) != 0) {
        gw__send_error(req, 404, "the console has no file '%.*s'", (int)(len > 64 ? 64 : len), name);
        free(path);
        return 0;
    }
    free(path);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                     "connect-src 'self'; base-uri 'none'; form-action 'self'; "
                                     "frame-ancestors 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
    /* The body lives as long as the request. */
    char *copy = h2o_mem_alloc_pool(&req->pool, body_len ? body_len : 1);
    memcpy(copy, body, body_len);
    free(body);
    gw__send_body(req, copy, body_len);
    return 0;
}
