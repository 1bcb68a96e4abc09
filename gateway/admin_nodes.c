/* The admin API of the cluster's nodes (docs/admin-api.md, "Nodes"): the
 * list of nodes (GET /_tine/v1/nodes) and the drain of one of them
 * (POST /_tine/v1/nodes/{id}/drain), which reaches that node through
 * Redis: any node of the cluster takes the request. */
#include "events.h"
#include "gateway_internal.h"
#include "tine_common.h"

#include <stdlib.h>
#include <string.h>

static bool seg_is(h2o_iovec_t s, const char *lit)
{
    return h2o_memis(s.base, s.len, lit, strlen(lit));
}

static void nodes_list(gw_server_t *gw, h2o_req_t *req)
{
    json_t *out = NULL;
    char err[512];
    if (ev_nodes_list(gw->events, &out, err, sizeof err) != 0) {
        gw__send_error(req, 503, "cannot list the nodes: %s", err);
        return;
    }
    gw__send_json(req, 200, out);
}

static void node_drain(gw_server_t *gw, h2o_req_t *req, h2o_iovec_t id)
{
    char *node = gw__percent_decode(id.base, id.len);
    char err[1024];
    int rc = ev_node_drain(gw->events, node, gw->node_id, err, sizeof err);
    if (rc == 0) {
        tine_log(TINE_LOG_INFO, "asked node %s to drain", node);
        gw__send_json(req, 202, json_pack("{s:s, s:b, s:s}", "node", node, "draining", 1, "asked_by", gw->node_id));
    } else {
        gw__send_error(req, rc == TINE_ENOTFOUND ? 404 : 503, "%s", err);
    }
    free(node);
}

int gw__admin_nodes(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    if (!seg_is(seg[0], "nodes"))
        return 0;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (gw->events == NULL) {
        gw__send_error(req, 503, "this node keeps no list of nodes (its events module is not running)");
    } else if (n == 1) {
        if (get)
            nodes_list(gw, req);
        else
            gw__send_error(req, 405, "use GET to list the nodes");
    } else if (n == 3 && seg_is(seg[2], "drain")) {
        if (post)
            node_drain(gw, req, seg[1]);
        else
            gw__send_error(req, 405, "use POST to drain a node");
    } else {
        gw__send_error(req, 404, "no such admin endpoint");
    }
    return 1;
}
