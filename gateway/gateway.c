/* The h2o server: accepts connections, routes /_tine/v1/ to the admin API
 * and /<app>/... to the app's live route table, and answers each request
 * with its function's result. */
#include "auth.h"
#include "gateway_internal.h"
#include "tine_common.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    h2o_req_t *req; /* NULL once answered */
    gw_server_t *gw;
    reg_app_version_t *version; /* retained until the request goes away */
    inv_call_t *call;
    size_t fn_index;
    int wrap;
} gw_pending_t;

char *gw__percent_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (end == hex + 2) {
                out[o++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

/* Adds the request's headers as the request member "headers" (the invoker
 * lower-cases names and joins repeated ones with ", "; h2o keeps at most
 * 100 headers). */
static void add_headers(inv_request_t *rq, h2o_req_t *req)
{
    const h2o_headers_t *hs = &req->headers;
    inv_request_begin_object(rq, "headers");
    for (size_t i = 0; i < hs->size; i++) {
        const h2o_iovec_t *name = hs->entries[i].name;
        inv_request_header(rq, name->base, name->len, hs->entries[i].value.base, hs->entries[i].value.len);
        /* A W3C traceparent places the call in its caller's trace. */
        if (name->len == 11 && memcmp(name->base, "traceparent", 11) == 0)
            inv_request_traceparent(rq, hs->entries[i].value.base, hs->entries[i].value.len);
    }
    inv_request_end_object(rq);
}

static void on_pending_dispose(void *p)
{
    gw_pending_t *pending = p;
    if (pending->call)
        inv_call_cancel(pending->call);
    reg_app_version_release(pending->version);
}

static void on_invoked(void *data, const inv_result_t *res)
{
    gw_pending_t *pending = data;
    h2o_req_t *req = pending->req;
    pending->call = NULL;
    pending->req = NULL;
    char ver[32];
    tine_fmt_u64(ver, pending->version->version, 1);
    h2o_iovec_t id = h2o_strdup(&req->pool, res->invocation_id, strlen(res->invocation_id));
    h2o_iovec_t vv = h2o_strdup(&req->pool, ver, strlen(ver));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-tine-invocation-id"), 0, NULL, id.base,
                          id.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-tine-version"), 0, NULL, vv.base, vv.len);

    if (res->code == TINE_EQUOTA) {
        /* Refused by a quota of the app's namespace (the admin API's invoke too). */
        char after[16];
        tine_fmt_u64(after, res->retry_after_s, 1);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL,
                              h2o_strdup(&req->pool, after, strlen(after)).base, strlen(after));
        gw__send_json(req, 429,
                      json_pack("{s:s, s:s, s:s}", "error", res->error ? res->error : "over a quota", "quota",
                                res->quota ? res->quota : "", "namespace", pending->version->manifest->namespace));
        return;
    }
    if (pending->wrap) {
        json_t *o = json_pack("{s:s, s:i, s:f, s:b, s:I}", "invocation_id", res->invocation_id, "status",
                              res->status, "duration_ms", (double)res->duration_ns / 1e6, "cold", res->cold,
                              "version", (json_int_t)pending->version->version);
        if (res->code == 0) {
            json_object_set_new(o, "headers", inv_result_headers_json(res));
            json_t *body = json_stringn(res->body ? res->body : "", res->body_len);
            json_object_set_new(o, "body", body ? body : json_string("<binary body>"));
        } else {
            json_object_set_new(o, "error", json_string(res->error ? res->error : tine_strerror(res->code)));
        }
        gw__send_json(req, 200, o);
        return;
    }
    if (res->code != 0) {
        if (res->code == TINE_EHANDLER)
            gw__send_error(req, res->status, "function raised an error (invocation %s)", res->invocation_id);
        else
            gw__send_error(req, res->status, "%s (invocation %s)", res->error ? res->error : tine_strerror(res->code),
                           res->invocation_id);
        return;
    }
    gw__send_function_response(req, pending->version->manifest->functions[pending->fn_index].name, res->invocation_id,
                               res);
}

void gw__invoke(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v, size_t fn_index, json_t *request,
                inv_request_t *rq, int wrap)
{
    gw_pending_t *pending = h2o_mem_alloc_shared(&req->pool, sizeof(*pending), on_pending_dispose);
    memset(pending, 0, sizeof(*pending));
    pending->req = req;
    pending->gw = gw;
    pending->version = v;
    pending->fn_index = fn_index;
    pending->wrap = wrap;
    reg_app_version_retain(v);
    inv_call_t *call = NULL;
    int r =
        rq ? inv_call_request(gw->inv, v, fn_index, rq, req->entity.base, req->entity.len, on_invoked, pending, &call)
           : inv_call(gw->inv, v, fn_index, request, req->entity.base, req->entity.len, on_invoked, pending, &call);
    if (r == TINE_EBUSY) {
        pending->req = NULL;
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        gw__send_error(req, 429, "function %s is at its concurrency limit and its queue is full",
                       v->manifest->functions[fn_index].name);
        return;
    }
    if (r != 0) {
        pending->req = NULL;
        gw__send_error(req, 503, "cannot invoke %s: %s", v->manifest->functions[fn_index].name, tine_strerror(r));
        return;
    }
    pending->call = call; /* its callback runs on a later loop turn (invoker.h) */
}

/* The version `sel` (sel_len bytes: a number or a tag, from /<app>@sel or
 * the x-tine-version header) of app `name` in *v. Returns 0, or 400/404/503
 * with the reason in msg. */
static int select_version(gw_server_t *gw, const char *name, size_t name_len, const char *sel, size_t sel_len,
                          reg_app_version_t **v, char *msg, size_t msglen)
{
    int nl = (int)(name_len > 64 ? 64 : name_len);
    uint64_t version = 0;
    bool digits = sel_len > 0 && sel_len <= 19;
    for (size_t i = 0; digits && i < sel_len; i++)
        digits = sel[i] >= '0' && sel[i] <= '9';
    if (digits) {
        for (size_t i = 0; i < sel_len; i++)
            version = version * 10 + (uint64_t)(sel[i] - '0');
    } else if (reg_tag_name_valid(sel, sel_len)) {
        version = reg_live_tag(gw->live, name, name_len, sel, sel_len);
        if (version == 0) {
            snprintf(msg, msglen, "app %.*s has no tag '%.*s'", nl, name, (int)sel_len, sel);
            return 404;
        }
    } else {
        snprintf(msg, msglen, "'%.*s' is neither a version number nor a tag of app %.*s",
                 (int)(sel_len > 64 ? 64 : sel_len), sel, nl, name);
        return 400;
    }
    if (version == 0) {
        snprintf(msg, msglen, "app %.*s has no version 0", nl, name);
        return 404;
    }
    char err[512];
    int rc = reg_live_get_version(gw->live, name, name_len, version, v, err, sizeof err);
    if (rc == TINE_ENOTFOUND) {
        snprintf(msg, msglen, "app %.*s has no version %" PRIu64, nl, name, version);
        return 404;
    }
    if (rc != 0) {
        snprintf(msg, msglen, "app %.*s version %" PRIu64 " cannot be loaded: %s", nl, name, version, err);
        return 503;
    }
    return 0;
}

/* The version of a split app a request gets: the split's when its client
 * (the value of the app's client header, else its address) falls in the
 * split's share, else the live one. */
static reg_app_version_t *split_version(h2o_req_t *req, reg_app_version_t *live, reg_app_version_t *split,
                                        unsigned percent)
{
    const char *header = live->manifest->release_client_header ? live->manifest->release_client_header
                                                               : REG_RELEASE_CLIENT_HEADER;
    ssize_t i = h2o_find_header_by_str(&req->headers, header, strlen(header), -1);
    if (i >= 0) {
        h2o_iovec_t val = req->headers.entries[i].value;
        return reg_split_chooses(val.base, val.len, percent) ? split : live;
    }
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername ? req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) : 0;
    const void *key = "";
    size_t klen = 0;
    if (sl > 0 && ss.ss_family == AF_INET) {
        key = &((struct sockaddr_in *)&ss)->sin_addr;
        klen = sizeof(struct in_addr);
    } else if (sl > 0 && ss.ss_family == AF_INET6) {
        key = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        klen = sizeof(struct in6_addr);
    }
    return reg_split_chooses(key, klen, percent) ? split : live;
}

/* The app whose own host (manifest host:) the request's Host names, with
 * the tag of a "TAG.HOST" in *sel, or NULL. */
static reg_app_version_t *host_app(gw_server_t *gw, h2o_req_t *req, const char **sel, size_t *sel_len)
{
    h2o_iovec_t a = req->authority;
    if (a.len == 0 || a.base[0] == '[')
        return NULL; /* no Host, or an IPv6 address */
    const char *colon = memchr(a.base, ':', a.len);
    size_t hl = colon ? (size_t)(colon - a.base) : a.len;
    size_t label = 0;
    reg_app_version_t *v = reg_live_by_host(gw->live, a.base, hl, &label);
    if (v && label) {
        *sel = a.base;
        *sel_len = label;
    }
    return v;
}

int gw__match_route(gw_server_t *gw, h2o_req_t *req, const char *path, size_t path_len, gw_route_match_t *m, char *msg,
                    size_t msglen)
{
    const char *app = path + 1, *sel = NULL;
    size_t seg_len = 0, app_len = 0, sel_len = 0;
    /* On the app's own host the whole path is the app's. */
    reg_app_version_t *live = host_app(gw, req, &sel, &sel_len);
    if (live != NULL) {
        app = live->app;
        app_len = strlen(app);
        m->rest = path;
        m->rest_len = path_len;
    } else {
        seg_len = strcspn(app, "/");
        if (seg_len > path_len - 1)
            seg_len = path_len - 1;
        /* /<app>@<version or tag>/...: a preview. */
        const char *at = memchr(app, '@', seg_len);
        app_len = at ? (size_t)(at - app) : seg_len;
        live = app_len ? reg_live_get(gw->live, app, app_len) : NULL;
        sel = at ? at + 1 : NULL;
        sel_len = at ? seg_len - app_len - 1 : 0;
        /* An app with only staged versions so far: previewed all the same. */
        if (live == NULL && sel != NULL && app_len > 0 &&
            select_version(gw, app, app_len, sel, sel_len, &live, msg, msglen) != 0)
            live = NULL;
        if (live == NULL) {
            snprintf(msg, msglen, "no app named '%.*s'", (int)app_len, app);
            return 404;
        }
        m->rest = app + seg_len;
        m->rest_len = path_len - 1 - seg_len;
    }
    m->v = live;
    if (sel == NULL && live->manifest->release_pin) {
        ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT(REG_RELEASE_VERSION_HEADER), -1);
        if (hi >= 0) {
            sel = req->headers.entries[hi].value.base;
            sel_len = req->headers.entries[hi].value.len;
        }
    }
    reg_app_version_t *sv;
    unsigned percent;
    if (sel != NULL) {
        int status = select_version(gw, live->app, strlen(live->app), sel, sel_len, &m->v, msg, msglen);
        if (status != 0)
            return status;
    } else if (reg_live_split(gw->live, app, app_len, &sv, &percent)) {
        m->v = split_version(req, live, sv, percent);
    }
    if (m->rest_len == 0) {
        m->rest = "/";
        m->rest_len = 1;
    }
    m->nparams = 0;
    int path_matched = 0;
    m->route = reg_route_table_match(m->v->routes, req->method.base, req->method.len, m->rest, m->rest_len, m->params,
                                     &m->nparams, &path_matched);
    if (m->route == NULL) {
        if (path_matched)
            snprintf(msg, msglen, "%.*s is not allowed on %.*s", (int)req->method.len, req->method.base, (int)path_len,
                     path);
        else
            snprintf(msg, msglen, "app %s has no route for %.*s %.*s", m->v->app, (int)req->method.len,
                     req->method.base, (int)m->rest_len, m->rest);
        return path_matched ? 405 : 404;
    }
    m->function = &m->v->manifest->functions[m->route->function_index];
    return 0;
}

/* Serves /<app>/<rest> from the app's live route table. */
static int serve_app(gw_server_t *gw, h2o_req_t *req, const char *path, size_t path_len)
{
    gw_route_match_t m;
    char msg[1024];
    int status = gw__match_route(gw, req, path, path_len, &m, msg, sizeof msg);
    if (status != 0) {
        gw__send_error(req, status, "%s", msg);
        return 0;
    }
    if (m.route->auth == REG_AUTH_KEY && gw__route_authorize(gw, req, m.v) != 0)
        return 0; /* refused, or served again once its key is read */
    /* A body over GW_INLINE_BODY was counted when its head arrived (intake.c). */
    size_t n = req->entity.len;
    if (n > 0 && (status = gw__check_body(gw, req, m.function, n, n <= GW_INLINE_BODY, msg, sizeof msg)) != 0) {
        gw__send_error(req, status, "%s", msg);
        return 0;
    }
    const char *query = "";
    size_t query_len = 0;
    if (req->query_at != SIZE_MAX) {
        query = req->path.base + req->query_at + 1;
        query_len = req->path.len - req->query_at - 1;
    }
    /* The request, without a JSON tree: the invoker writes it into the
     * call's frame as it comes. */
    inv_request_t rq;
    inv_request_init(&rq, "http");
    inv_request_str(&rq, "kind", "http", 4);
    inv_request_str(&rq, "method", req->method.base, req->method.len);
    inv_request_str(&rq, "path", m.rest, m.rest_len);
    inv_request_begin_object(&rq, "params");
    for (size_t i = 0; i < m.nparams; i++) {
        char *value = gw__percent_decode(m.params[i].value, m.params[i].value_len);
        size_t vl = strlen(value);
        /* A value that decodes to invalid UTF-8 is handed over undecoded. */
        if (tine_utf8_valid(value, vl))
            inv_request_field(&rq, m.params[i].name, m.params[i].name_len, value, vl);
        else
            inv_request_field(&rq, m.params[i].name, m.params[i].name_len, m.params[i].value, m.params[i].value_len);
        free(value);
    }
    inv_request_end_object(&rq);
    inv_request_str(&rq, "query", query, query_len);
    add_headers(&rq, req);
    gw__invoke(gw, req, m.v, m.route->function_index, NULL, &rq, 0);
    inv_request_dispose(&rq);
    return 0;
}

/* A request being served: counted until h2o disposes of it (after its
 * answer was written). */
typedef struct {
    gw_server_t *gw;
} gw_counted_t;

static void on_counted_dispose(void *p)
{
    gw_counted_t *c = p;
    c->gw->requests--;
}

int gw__serve(gw_server_t *gw, h2o_req_t *req)
{
    gw_counted_t *counted = h2o_mem_alloc_shared(&req->pool, sizeof(*counted), on_counted_dispose);
    counted->gw = gw;
    gw->requests++;
    /* A node that stopped accepting closes each kept-alive connection after
     * its next answer (h2o 2.2 does not on its own). */
    if (gw->listener_state != GW_LISTENING)
        req->http1_is_persistent = 0;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    size_t plen = sizeof(GW_ADMIN_PREFIX) - 1;
    if (path_len >= plen && memcmp(path, GW_ADMIN_PREFIX, plen) == 0 && (path_len == plen || path[plen] == '/'))
        return gw__admin(gw, req, path + plen, path_len - plen);
    if (h2o_memis(path, path_len, H2O_STRLIT("/metrics")))
        return gw__metrics(gw, req);
    if (path_len >= 7 && memcmp(path, "/api/v1", 7) == 0 && (path_len == 7 || path[7] == '/'))
        return gw__openwhisk(gw, req, path + 7, path_len - 7);
    size_t clen = sizeof(GW_CONSOLE_PREFIX) - 1;
    if (path_len >= clen && memcmp(path, GW_CONSOLE_PREFIX, clen) == 0 && (path_len == clen || path[clen] == '/'))
        return gw__console(gw, req, path + clen, path_len - clen);
    if (path_len == 0 || path[0] != '/') {
        gw__send_error(req, 400, "bad request path: expected one starting with /");
        return 0;
    }
    if (path_len == 1) {
        gw__send_json(req, 200, json_pack("{s:s, s:s, s:I}", "service", "tine", "node", gw->node_id, "apps",
                                          (json_int_t)reg_live_count(gw->live)));
        return 0;
    }
    return serve_app(gw, req, path, path_len);
}

/* h2o's handler: every request goes to gw__serve. */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return gw__serve(((gw_handler_t *)self)->gw, req);
}

/* A client connection's handle closed: counted out and freed. */
static void on_conn_closed(uv_handle_t *h)
{
    gw_conn_t *c = container_of((uv_tcp_t *)h, gw_conn_t, tcp);
    c->gw->conns--;
    SSL_CTX_free(c->ssl_ctx);
    free(c);
}

/* Closes a connection over --max-connections, after a best-effort 503 (the
 * client may not have sent its request yet; it finds the answer first);
 * over HTTPS it closes at once (an answer would need a handshake). */
static void refuse_connection(gw_server_t *gw, uv_tcp_t *tcp)
{
    char body[256], head[512];
    int bl =
        snprintf(body, sizeof body,
                 "{\"error\":\"this node has %zu client connections open, its limit (--max-connections)\"}", gw->conns);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      "Retry-After: 1\r\nConnection: close\r\n\r\n%s",
                      bl, body);
    uv_buf_t buf = uv_buf_init(head, (unsigned)hl);
    if (gw->tls == NULL)
        uv_try_write((uv_stream_t *)tcp, &buf, 1);
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    gw->refused_connections++;
    uint64_t now = uv_now(gw->loop);
    if (gw->refusal_logged_ms == 0 || now - gw->refusal_logged_ms >= 10000) {
        gw->refusal_logged_ms = now;
        tine_log(TINE_LOG_WARN, "gateway: refusing connections: %zu open, the limit of --max-connections", gw->conns);
    }
}

/* A client connects: accepted and handed to h2o, or over --max-connections
 * refused (refuse_connection). */
static void on_accept(uv_stream_t *listener, int status)
{
    gw_server_t *gw = listener->data;
    if (status != 0)
        return;
    if (gw->conns >= gw->max_connections) {
        uv_tcp_t *tcp = xmalloc(sizeof(*tcp));
        uv_tcp_init(listener->loop, tcp);
        if (uv_accept(listener, (uv_stream_t *)tcp) == 0)
            refuse_connection(gw, tcp);
        else
            uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
        return;
    }
    gw_conn_t *c = xcalloc(1, sizeof(*c));
    c->gw = gw;
    uv_tcp_init(listener->loop, &c->tcp);
    gw->conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    c->sock = sock;
    gw__conn_guard(c);
    if (gw->tls != NULL) {
        gw__tls_conn_init(c, gw->tls);
        gw->accept_ctx.ssl_ctx = c->ssl_ctx;
    }
    h2o_accept(&gw->accept_ctx, sock);
}

/* Parses "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
        return TINE_EINVAL;
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return TINE_EINVAL;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return TINE_EINVAL;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : TINE_EINVAL;
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : TINE_EINVAL;
}

gw_server_t *gw_new(uv_loop_t *loop, const gw_config_t *cfg, reg_live_t *live, inv_invoker_t *inv, char *err,
                    size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (parse_listen(cfg->listen, &ss) != 0) {
        snprintf(err, errlen, "--listen %s: expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080", cfg->listen);
        return NULL;
    }
    gw_server_t *gw = xcalloc(1, sizeof(*gw));
    gw->loop = loop;
    gw->live = live;
    gw->inv = inv;
    gw->admin_token = cfg->admin_token ? xstrdup(cfg->admin_token) : NULL;
    gw->admin_token_len = cfg->admin_token ? strlen(cfg->admin_token) : 0;
    gw->max_bundle = cfg->max_bundle;
    gw->has_secrets_key = cfg->has_secrets_key;
    memcpy(gw->secrets_key, cfg->secrets_key, sizeof gw->secrets_key);
    gw->max_body = cfg->max_body;
    gw->node_id = xstrdup(cfg->node_id ? cfg->node_id : "node");
    gw->events = cfg->events;
    gw->rollouts = cfg->rollouts;
    gw->bill = cfg->bill;
    gw->metrics_token = cfg->metrics_token ? xstrdup(cfg->metrics_token) : NULL;
    gw->metrics_more = cfg->metrics_more;
    gw->metrics_more_data = cfg->metrics_more_data;
    gw->console_dir = cfg->console_dir ? xstrdup(cfg->console_dir) : NULL;
    gw->tenancy = cfg->tenancy;
    gw->quotas = cfg->quotas;
    gw->tls = cfg->tls;
    gw->max_connections = cfg->max_connections ? cfg->max_connections : GW_DEFAULT_MAX_CONNECTIONS;
    gw->body_budget = cfg->max_buffered_body ? cfg->max_buffered_body : GW_DEFAULT_MAX_BUFFERED_BODY;

    h2o_config_init(&gw->config);
    /* h2o reads a body before any handler sees the request: only small ones;
     * intake.c reads larger ones once their head passed every check. */
    gw->config.max_request_entity_size = GW_INLINE_BODY;
    /* HTTP/2 (prior knowledge or Upgrade: h2c; over TLS, ALPN: tls.c) only
     * when asked: h2o 2.2.5 takes up to 100 streams per connection, each
     * with its own header block and body, before tine sees any of them. */
    gw->config.http1.upgrade_to_http2 = cfg->http2;
    gw->config.http2.max_concurrent_requests_per_connection = GW_HTTP2_MAX_REQUESTS;
    gw->config.server_name = h2o_iovec_init(H2O_STRLIT("tine"));
    h2o_hostconf_t *host = h2o_config_register_host(&gw->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    gw_handler_t *h = (gw_handler_t *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->gw = gw;
    gw__intake_register(gw, &host->fallback_path);
    h2o_context_init(&gw->ctx, loop, &gw->config);
    gw->accept_ctx.ctx = &gw->ctx;
    gw->accept_ctx.hosts = gw->config.hosts;

    uv_tcp_init(loop, &gw->listener);
    gw->listener.data = gw;
    int r = uv_tcp_bind(&gw->listener, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&gw->listener, 1024, on_accept);
    if (r != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, uv_strerror(r));
        uv_close((uv_handle_t *)&gw->listener, NULL);
        gw->listener.data = NULL;
        gw_free(gw);
        return NULL;
    }
    return gw;
}

int gw_port(gw_server_t *gw)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&gw->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A server stopped while client connections were still open (h2o 2.2 does
 * not close idle keep-alive connections on request_shutdown): its context
 * cannot be disposed (h2o asserts), so it stays allocated, reachable from
 * here, until the process exits a moment later. */
static gw_server_t *gw_left_open;

static int gw_timeouts_empty(gw_server_t *gw);

/* Disposes of the h2o context and frees the server, or leaves both to the
 * process exit when a connection is still open. */
static void gw_dispose(gw_server_t *gw)
{
    if (!gw_drained(gw)) {
        tine_log(TINE_LOG_INFO, "gateway: client connections still open at stop; they close when the process exits");
        gw->next_left_open = gw_left_open;
        gw_left_open = gw;
        return;
    }
    h2o_context_dispose(&gw->ctx);
    h2o_config_dispose(&gw->config);
    free(gw->admin_token);
    free(gw->metrics_token);
    free(gw->console_dir);
    free(gw->node_id);
    free(gw->draining);
    free(gw);
}

/* The listener closed: disposes the gateway when gw_free already asked for
 * it, else leaves that to gw_free. */
static void on_listener_closed(uv_handle_t *h)
{
    gw_server_t *gw = container_of((uv_tcp_t *)h, gw_server_t, listener);
    if (gw->listener_state == GW_CLOSING_FREED)
        gw_dispose(gw);
    else
        gw->listener_state = GW_CLOSED; /* gw_free disposes */
}

void gw_shutdown(gw_server_t *gw)
{
    if (gw == NULL || gw->listener_state != GW_LISTENING)
        return;
    gw->listener_state = GW_CLOSING;
    if (gw->listener.data != NULL)
        uv_close((uv_handle_t *)&gw->listener, on_listener_closed);
    else
        gw->listener_state = GW_CLOSED;
    h2o_context_request_shutdown(&gw->ctx);
}

int gw_drained(gw_server_t *gw)
{
    return h2o_linklist_is_empty(&gw->ctx.http1._conns) && h2o_linklist_is_empty(&gw->ctx.http2._conns) &&
           gw->conns == 0 && gw_timeouts_empty(gw);
}

/* True when no h2o timeout of the context has an entry left: the condition
 * h2o_context_dispose asserts. */
static int gw_timeouts_empty(gw_server_t *gw)
{
    h2o_context_t *c = &gw->ctx;
    h2o_timeout_t *all[] = {&c->zero_timeout,          &c->one_sec_timeout,   &c->hundred_ms_timeout,
                            &c->handshake_timeout,     &c->http1.req_timeout, &c->http2.idle_timeout,
                            &c->http2.graceful_shutdown_timeout, &c->proxy.io_timeout};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!h2o_linklist_is_empty(&all[i]->_entries))
            return 0;
    return 1;
}

void gw_set_draining(gw_server_t *gw, const char *why)
{
    free(gw->draining);
    gw->draining = xstrdup(why ? why : "stopping");
}

const char *gw_state(gw_server_t *gw)
{
    if (gw->draining)
        return "draining";
    if (reg_live_unloaded(gw->live))
        return "starting";
    return reg_live_failures(gw->live, NULL, 0) ? "not-ready" : "ready";
}

size_t gw_requests_in_flight(const gw_server_t *gw)
{
    return gw->requests - gw->follows;
}

bool gw_ready_asked_within(const gw_server_t *gw, uint64_t ms)
{
    return gw->ready_asked_ms != 0 && uv_now(gw->loop) - gw->ready_asked_ms <= ms;
}

void gw_free(gw_server_t *gw)
{
    if (gw == NULL)
        return;
    if (gw->listener_state == GW_CLOSED) {
        gw_dispose(gw);
        return;
    }
    if (gw->listener_state == GW_CLOSING) {
        gw->listener_state = GW_CLOSING_FREED; /* on_listener_closed disposes */
        return;
    }
    if (gw->listener.data == NULL) {
        /* The listener never started: its close is already pending. */
        uv_run(gw->loop, UV_RUN_NOWAIT);
        gw_dispose(gw);
        return;
    }
    gw->listener_state = GW_CLOSING_FREED;
    uv_close((uv_handle_t *)&gw->listener, on_listener_closed);
}
