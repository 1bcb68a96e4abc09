/* Shared between the files of the gateway module only. */
#ifndef TINE_GATEWAY_INTERNAL_H
#define TINE_GATEWAY_INTERNAL_H

#include <h2o.h>
#include <jansson.h>

#include "gateway.h"
#include "tine_common.h"

/* Request bodies h2o reads itself before any handler runs (its
 * max_request_entity_size): larger ones are read by tine once their head
 * was checked (intake.c). */
#define GW_INLINE_BODY (64u * 1024u)

#define GW_ADMIN_PREFIX "/_tine/v1"
#define GW_CONSOLE_PREFIX "/_tine/console"

/* HTTP/2 requests of one connection handled at once (h2o's
 * max_concurrent_requests_per_connection). */
#define GW_HTTP2_MAX_REQUESTS 16

struct gw_server {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    /* Where the listener is in its close: open; closing (gw_shutdown);
     * closing and gw_free was called (dispose when closed); closed. */
    enum { GW_LISTENING, GW_CLOSING, GW_CLOSING_FREED, GW_CLOSED } listener_state;
    struct gw_server *next_left_open;
    struct uv_loop_s *loop;
    reg_live_t *live;
    reg_rollouts_t *rollouts;
    inv_invoker_t *inv;
    char *admin_token;
    char *console_dir; /* the console's files, NULL: none served */
    size_t admin_token_len;
    size_t max_bundle;
    size_t max_body;
    char *node_id;
    struct ev_events *events;
    struct bill *bill;
    char *metrics_token;
    void (*metrics_more)(void *data, tine_buf_t *out); /* more /metrics text (tined's OTLP exporter); may be NULL */
    void *metrics_more_data;
    struct tn_tenancy *tenancy; /* API keys and audit (borrowed; may be NULL) */
    struct tn_quotas *quotas;   /* quotas per namespace (borrowed; may be NULL) */
    bool has_secrets_key;          /* tine secrets: the cluster's key (--secrets-key) */
    unsigned char secrets_key[32];
    gw_tls_t *tls;                                /* HTTPS (borrowed); NULL: HTTP */
    size_t max_connections;                       /* client connections at most (--max-connections) */
    size_t conns;                                 /* client connections open (counted until their handle is closed) */
    size_t body_budget;                           /* request body bytes held at most (--max-buffered-body) */
    size_t body_held;                             /* bytes held now (gw__body_hold) */
    uint64_t refused_connections, refused_bodies; /* over --max-connections, --max-buffered-body */
    uint64_t refusal_logged_ms;                   /* last warning about refused connections */
    size_t requests;                              /* being served (gw_requests_in_flight) */
    size_t follows;                               /* of them, followed log streams (endless) */
    uint64_t ready_asked_ms;                      /* loop time of the last GET /ready (0: never) */
    char *draining;                               /* why the node drains (gw_set_draining); NULL: it does not */
};

typedef struct {
    h2o_handler_t super;
    gw_server_t *gw;
} gw_handler_t;

/* The standard reason phrase of an HTTP status ("" for one without). */
const char *gw__reason(int status);

/* Sends body (copied) with its Content-Length; res.status and headers are
 * set. 204 and 304 get no body and no Content-Length. */
void gw__send_body(h2o_req_t *req, const char *body, size_t len);

/* Serves the console's file `rest` (after GW_CONSOLE_PREFIX: "" redirects
 * to the directory, "/" is index.html) from gw->console_dir (console.c). */
int gw__console(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len);

/* Sends `body` (takes the reference) as a JSON response. */
void gw__send_json(h2o_req_t *req, int status, json_t *body);

/* Sends {"error": message} with the given status. */
void gw__send_error(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Answers with a function's own response (res->code is 0): 502 when its
 * status is not a final one (200..599) or a header is not well formed;
 * hop-by-hop and gateway-owned headers are dropped. */
void gw__send_function_response(h2o_req_t *req, const char *function, const char *invocation_id,
                                const inv_result_t *res);

/* Serves a request whose body has arrived: admin API, /metrics, or an app. */
int gw__serve(gw_server_t *gw, h2o_req_t *req);

/* A request path matched against an app's live routes. */
typedef struct {
    reg_app_version_t *v; /* borrowed from the live table: valid during the current callback */
    const reg_route_t *route;
    const reg_function_t *function;
    const char *rest; /* the path after /<app> ("/" when empty) */
    size_t rest_len;
    reg_route_param_t params[REG_ROUTE_MAX_PARAMS];
    size_t nparams;
} gw_route_match_t;

/* Matches /<app>/... to a route. Returns 0, or 404/405 with the reason in
 * msg (nothing is sent). */
int gw__match_route(gw_server_t *gw, h2o_req_t *req, const char *path, size_t path_len, gw_route_match_t *m, char *msg,
                    size_t msglen);

/* Counts n body bytes against the node's budget until the request goes
 * away. Returns false (nothing counted) when they would exceed it. */
bool gw__body_hold(gw_server_t *gw, h2o_req_t *req, size_t n);

/* Checks a body of n bytes for function f: over its max_body gives 413; when
 * `count`, n bytes are held against the node's budget (gw__body_hold), and
 * not fitting gives 503 (with Retry-After set on req). Returns 0 or the
 * status, with the reason in msg. */
int gw__check_body(gw_server_t *gw, h2o_req_t *req, const reg_function_t *f, size_t n, bool count, char *msg,
                   size_t msglen);

/* What h2o's HTTP/1 parser keeps out of req->headers, read back from the
 * raw head. */
typedef struct {
    size_t head_len;       /* bytes up to and with the empty line */
    size_t content_length; /* the first Content-Length; SIZE_MAX: none or not a number */
    bool chunked;          /* a Transfer-Encoding header */
    bool expect_continue;  /* Expect: 100-continue */
} gw_head_t;

/* Reads the HTTP/1 request head at the start of b[0..len) (header names
 * lower case, as h2o leaves them) into h. False when b does not start with
 * a whole head whose request line begins with `method` and a space. */
bool gw__read_head(const char *method, size_t method_len, const char *b, size_t len, gw_head_t *h);

/* Registers, on the path h2o answers its own errors from, the filter that
 * makes them JSON and reads bodies over GW_INLINE_BODY (intake.c). */
void gw__intake_register(gw_server_t *gw, h2o_pathconf_t *fallback);

/* The largest body the admin endpoint at `rest` (the path after /_tine/v1)
 * accepts from this caller, in *limit: the bundle limit for a deploy, the
 * node's body limit for others. Returns 0, or 401 when the caller has no
 * valid credentials, 403 when its key lacks the endpoint's permission, with
 * the reason in msg (then nothing is read). */
int gw__admin_body_limit(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len, size_t *limit,
                         char *msg, size_t msglen);

/* Answers 401 (with WWW-Authenticate) to a caller without valid
 * credentials: `msg` says why (NULL: a missing or wrong admin token). */
void gw__send_unauthorized(h2o_req_t *req, const char *msg);

/* The raw value of query parameter `name` as a fresh string, or NULL. */
char *gw__query_param(h2o_req_t *req, const char *name);

/* Serves a request under /_tine/v1/ ; `rest` is the path after it. */
int gw__admin(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len);

/* Serves the events endpoints (admin_events.c) when the path is one of
 * them: returns 1 when it answered, 0 when the path is not theirs. */
int gw__admin_events(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* apps/{app}/promote, apps/{app}/tags/{tag}, apps/{app}/split
 * (admin_release.c): true when seg[0..n) is one of them (answered). */
bool gw__admin_release(gw_server_t *gw, h2o_req_t *req, const char *app, const h2o_iovec_t *seg, size_t n);

/* Serves the nodes endpoints (admin_nodes.c: GET /nodes, POST
 * /nodes/{id}/drain) when the path is one of them: 1 when it answered. */
int gw__admin_nodes(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);
/* True when the request carries "Authorization: Bearer <token>". */
int gw__bearer_ok(h2o_req_t *req, const char *token);

/* A query parameter an endpoint takes: its name, and its decoded value
 * (heap; NULL when absent) once gw__parse_query filled it. */
typedef struct {
    const char *name;
    char *value;
} gw_query_param_t;

/* Fills params from the request's query string. Fails (400 sent) on a
 * parameter that is not in the list or given twice. */
int gw__parse_query(h2o_req_t *req, gw_query_param_t *params, size_t n);
void gw__free_query(gw_query_param_t *params, size_t n);

/* Parses an optional count parameter in [lo, hi] into *out (dflt when
 * absent); 400 sent on failure. */
int gw__count_param(h2o_req_t *req, const gw_query_param_t *p, long lo, long hi, long dflt, long *out);

/* Percent-decodes len bytes of s into a fresh string. */
char *gw__percent_decode(const char *s, size_t len);

/* A client connection: its libuv handle, counted against --max-connections
 * until the handle is closed; its h2o socket; over HTTPS the TLS context it
 * was accepted with; the callbacks conn_guard.c stands in front of. */
typedef struct {
    uv_tcp_t tcp;
    gw_server_t *gw;
    h2o_socket_t *sock;  /* h2o's, valid until the handle is closing */
    SSL_CTX *ssl_ctx;    /* a reference, dropped when the handle closed; NULL: HTTP */
    uv__io_cb libuv_io;  /* libuv's I/O callback of tcp */
    uv_read_cb h2o_read; /* h2o's read callback of tcp */
} gw_conn_t;

/* Makes an accepted connection an HTTPS one: it takes a reference to the
 * current TLS context (c->ssl_ctx, for h2o_accept; the caller drops it with
 * SSL_CTX_free once the handle closed). */
void gw__tls_conn_init(gw_conn_t *c, gw_tls_t *tls);

/* Puts conn_guard.c between libuv and h2o's socket of an accepted
 * connection (c->sock set): h2o 2.2.5 misreads two things libuv 1.x does
 * (conn_guard.c says which). Call before h2o_accept. */
void gw__conn_guard(gw_conn_t *c);

/* The served certificate, ALPN and reloads for GET /_tine/v1/doctor;
 * {"enabled":false} when tls is NULL. */
json_t *gw__tls_report(const gw_tls_t *tls);

/* The certificate's expiry and the reload counts for /metrics (nothing when
 * tls is NULL). */
void gw__tls_metrics(const gw_tls_t *tls, tine_buf_t *out);

/* GET /metrics: the node's metrics in the Prometheus text format. */
int gw__metrics(gw_server_t *gw, h2o_req_t *req);

/* Serves the billing endpoints of the admin API (usage, activations, logs)
 * when seg[0..n) names one; returns 0 when it does not (nothing sent). */
int gw__admin_billing(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* Starts an invocation of a function of a live app version and answers the
 * request with its result: the function's own response when `wrap` is 0, or
 * the admin API's JSON envelope when `wrap` is 1. The request is `rq`
 * (built with inv_request_*; the caller disposes it) when not NULL, else
 * `request` (JSON; taken). */
void gw__invoke(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v, size_t fn_index, json_t *request,
                inv_request_t *rq, int wrap);

/* Serves a request under /api/v1 (the OpenWhisk-compatible API,
 * openwhisk.c); `rest` is the path after it. */
int gw__openwhisk(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len);

/* Decides on a body of n bytes over GW_INLINE_BODY for /api/v1 (intake.c),
 * from the head alone: an entity's PUT (a zipped action) may bring up to
 * the bundle limit, other calls the node's body limit; either is counted
 * against the node's budget. Returns 0 or the refusal's status, its reason
 * in msg. */
int gw__openwhisk_body_admit(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len, size_t n,
                             char *msg, size_t msglen);

#endif
