/* The admin endpoints of quotas (docs/admin-api.md, docs/tenancy.md):
 * GET /quotas (every namespace with a quota, or the caller's), GET
 * /namespaces/{ns}/quota (its limits and the cluster's use) and PUT
 * /namespaces/{ns}/quota (a cluster admin sets or removes limits; the
 * others are kept). gw__admin_authorize checked the permission; these
 * narrow a key of one namespace to its own. */
#include "auth.h"
#include "billing.h"
#include "tenancy.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEND_MAX_USD 1000000u /* tn_quota_max(TN_QUOTA_SPEND) in dollars */

static int status_of(int rc)
{
    return rc == TINE_EINVAL ? 400 : rc == TINE_ENOTFOUND ? 404 : 503;
}

/* The limit of quota k in member v of the body: an integer from 1 to its
 * maximum (spend: dollars as a string or a number), or null (none). False
 * with the message in msg. */
static bool body_limit(tn_quota_t k, json_t *v, uint64_t *out, char *msg, size_t len)
{
    const char *name = tn_quota_name(k);
    uint64_t max = tn_quota_max(k);
    *out = 0;
    if (json_is_null(v))
        return true;
    if (k == TN_QUOTA_SPEND) {
        char text[64] = "", why[256] = "";
        if (json_is_string(v))
            snprintf(text, sizeof text, "%s", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            snprintf(text, sizeof text, "%.12f", json_real_value(v));
        else
            snprintf(why, sizeof why, "not a number");
        if (!why[0] && bill_parse_usd(text, SPEND_MAX_USD, "amount", out, why, sizeof why) == 0 && *out == 0)
            snprintf(why, sizeof why, "0 is not a limit");
        if (why[0]) {
            snprintf(msg, len,
                     "body: %s: expected dollars from 0.000000000001 to %u, such as \"12.50\", or null to "
                     "remove it: %s",
                     name, SPEND_MAX_USD, why);
            return false;
        }
        return true;
    }
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    if (i < 1 || (uint64_t)i > max) {
        char got[64] = "";
        if (json_is_integer(v))
            snprintf(got, sizeof got, " (got %" JSON_INTEGER_FORMAT ")", json_integer_value(v));
        snprintf(msg, len, "body: %s: expected an integer from 1 to %" PRIu64 ", or null to remove it%s", name, max,
                 got);
        return false;
    }
    *out = (uint64_t)i;
    return true;
}

/* The change a PUT body asks for, or false with 400 sent. */
static bool body_change(h2o_req_t *req, tn_quota_change_t *c)
{
    memset(c, 0, sizeof(*c));
    json_error_t jerr;
    json_t *body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    char msg[512];
    if (!json_is_object(body)) {
        gw__send_error(req, 400,
                       "body: expected a JSON object such as {\"concurrency\": 10, \"per_minute\": 600, "
                       "\"spend_per_day\": \"12.50\"}%s%s",
                       body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        return false;
    }
    const char *name;
    json_t *v;
    bool ok = true, any = false;
    json_object_foreach(body, name, v)
    {
        int k = 0;
        while (k < TN_NQUOTAS && strcmp(name, tn_quota_name((tn_quota_t)k)) != 0)
            k++;
        if (k == TN_NQUOTAS) {
            snprintf(msg, sizeof msg,
                     "body: unknown member '%s'; expected concurrency, sandboxes, memory_mb, per_minute, "
                     "spend_per_day",
                     name);
            ok = false;
            break;
        }
        if (!(ok = body_limit((tn_quota_t)k, v, &c->value[k], msg, sizeof msg)))
            break;
        c->set[k] = any = true;
    }
    if (ok && !any) {
        snprintf(msg, sizeof msg,
                 "body: no quota given; expected one or more of concurrency, sandboxes, memory_mb, per_minute, "
                 "spend_per_day");
        ok = false;
    }
    if (!ok)
        gw__send_error(req, 400, "%s", msg);
    json_decref(body);
    return ok;
}

/* 404 when namespace ns does not exist (or 503), false then. */
static bool namespace_found(gw_server_t *gw, h2o_req_t *req, const char *ns)
{
    bool exists = false;
    char err[512];
    if (reg_store_namespace_exists(reg_live_store(gw->live), ns, &exists, err, sizeof(err)) != 0) {
        gw__send_error(req, 503, "%s", err);
        return false;
    }
    if (!exists)
        gw__send_error(req, 404, "no namespace named '%s'%s", ns,
                       reg_name_valid(ns) ? "" : " (a namespace name is 1 to 63 of a-z, 0-9 and '-')");
    return exists;
}

int gw__admin_quota(gw_server_t *gw, h2o_req_t *req, const h2o_iovec_t *seg, size_t n)
{
    bool list = n == 1 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("quotas"));
    bool one = n == 3 && h2o_memis(seg[0].base, seg[0].len, H2O_STRLIT("namespaces")) &&
               h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("quota"));
    if (!list && !one)
        return 0;
    const gw_caller_t *c = gw__caller(req);
    if (c == NULL) { /* gw__admin_authorize let no request here without one */
        gw__send_error(req, 500, "no caller for an admin request");
        return 1;
    }
    if (gw->quotas == NULL) {
        gw__send_error(req, 503, "quotas are not enabled on this node");
        return 1;
    }
    json_t *out = NULL;
    char err[512];
    int rc;
    if (list) {
        if ((rc = tn_quotas_list(gw->quotas, c->ns, &out, err, sizeof err)) != 0)
            gw__send_error(req, status_of(rc), "%s", err);
        else
            gw__send_json(req, 200, out);
        return 1;
    }
    char *ns = xstrndup(seg[1].base, seg[1].len);
    bool put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    if (put)
        gw__audit_target(req, ns, ns);
    tn_quota_change_t change;
    if (c->ns && strcmp(c->ns, ns) != 0) {
        gw__send_error(req, 403, "forbidden: key %s (%s) of namespace %s lacks permission %s in namespace %s", c->id,
                       c->name ? c->name : "-", c->ns, gw__perm_name(put ? GW_PERM_QUOTA_MANAGE : GW_PERM_QUOTA_READ),
                       ns);
    } else if (!namespace_found(gw, req, ns) || (put && !body_change(req, &change))) {
        /* answered */
    } else if (put && (rc = tn_quotas_set(gw->quotas, ns, &change, c->id, err, sizeof err)) != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
    } else if ((rc = tn_quotas_read(gw->quotas, ns, &out, err, sizeof err)) != 0) {
        gw__send_error(req, status_of(rc), "%s", err);
    } else {
        if (put)
            tine_log(TINE_LOG_INFO, "quotas of namespace %s set by %s", ns, c->id);
        gw__send_json(req, 200, out);
    }
    free(ns);
    return 1;
}
