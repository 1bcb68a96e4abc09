/* Shared between the files of the gateway module only. */
#ifndef TINE_GATEWAY_INTERNAL_H
#define TINE_GATEWAY_INTERNAL_H

#include <h2o.h>
#include <jansson.h>

#include "gateway.h"

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
    inv_invoker_t *inv;
    char *admin_token;
    size_t max_bundle;
    size_t max_body;
    char *node_id;
    struct ev_events *events;
    struct bill *bill;
    char *metrics_token;
};

typedef struct {
    h2o_handler_t super;
    gw_server_t *gw;
} gw_handler_t;

/* Sends body (copied) with its Content-Length; res.status and headers are set. */
void gw__send_body(h2o_req_t *req, const char *body, size_t len);

/* Sends `body` (takes the reference) as a JSON response. */
void gw__send_json(h2o_req_t *req, int status, json_t *body);

/* Sends {"error": message} with the given status. */
void gw__send_error(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Serves a request under /_tine/v1/ ; `rest` is the path after it. */
int gw__admin(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len);

/* Serves the events endpoints (admin_events.c) when the path is one of
 * them: returns 1 when it answered, 0 when the path is not theirs. */
int gw__admin_events(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);
/* True when the request carries "Authorization: Bearer <token>". */
int gw__bearer_ok(h2o_req_t *req, const char *token);

/* Percent-decodes len bytes of s into a fresh string. */
char *gw__percent_decode(const char *s, size_t len);

/* GET /metrics: the node's metrics in the Prometheus text format. */
int gw__metrics(gw_server_t *gw, h2o_req_t *req);

/* Serves the billing endpoints of the admin API (usage, activations, logs)
 * when seg[0..n) names one; returns 0 when it does not (nothing sent). */
int gw__admin_billing(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n);

/* Starts an invocation of a function of a live app version and answers the
 * request with its result: the function's own response when `wrap` is 0, or
 * the admin API's JSON envelope when `wrap` is 1. The request is `rq`
 * (already encoded) when not NULL, else `request` (JSON; taken). */
void gw__invoke(gw_server_t *gw, h2o_req_t *req, reg_app_version_t *v, size_t fn_index, json_t *request,
                const inv_request_t *rq, int wrap);

#endif
