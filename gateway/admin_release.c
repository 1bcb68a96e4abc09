/* The release endpoints of the admin API (docs/releases.md): promote a
 * stored version, name versions with tags, split traffic. Each change is
 * made in Redis, announced to every node, and applied on this node before
 * the answer. */
#include "gateway_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads {"version": N[, "percent": P]} from the body: N >= 1 into *version,
 * P into *percent when percent is not NULL (then required). Answers 400 and
 * returns -1 when the body is not that. */
static int read_body(h2o_req_t *req, uint64_t *version, unsigned *percent)
{
    json_error_t jerr;
    json_t *body = req->entity.len ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL;
    json_t *v = json_object_get(body, "version");
    json_t *p = json_object_get(body, "percent");
    const char *want = percent ? "{\"version\": N, \"percent\": P} with N >= 1 and 0 <= P <= 100"
                               : "{\"version\": N} with N >= 1";
    if (!json_is_object(body) || !json_is_integer(v) || json_integer_value(v) < 1) {
        gw__send_error(req, 400, "body: expected %s%s", want, json_is_object(body) && v == NULL ? " (version is missing)" : "");
        json_decref(body);
        return -1;
    }
    if (percent && (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 100)) {
        gw__send_error(req, 400, "body: percent: expected a whole number from 0 to 100, %s",
                       p == NULL ? "it is missing" : "not that");
        json_decref(body);
        return -1;
    }
    *version = (uint64_t)json_integer_value(v);
    if (percent)
        *percent = (unsigned)json_integer_value(p);
    json_decref(body);
    return 0;
}

/* The HTTP status of a store error. */
static int store_status(int rc)
{
    return rc == TINE_ENOTFOUND ? 404 : rc == TINE_EINVAL ? 400 : rc == TINE_ECONFLICT ? 409 : 503;
}

/* Applies a change on this node before answering `answer` (201/200), or
 * says that the change is made but this node could not load it. */
static void applied(gw_server_t *gw, h2o_req_t *req, const char *app, json_t *answer)
{
    char err[512];
    if (reg_live_reload(gw->live, app, err, sizeof err) != 0) {
        json_decref(answer);
        gw__send_error(req, 503, "the change of %s is stored, but this node cannot apply it yet: %s (it retries)", app,
                       err);
        return;
    }
    gw__send_json(req, 200, answer);
}

/* POST /apps/APP/promote {"version": N}: makes stored version N live. */
static void admin_promote(gw_server_t *gw, h2o_req_t *req, const char *app)
{
    uint64_t version;
    if (read_body(req, &version, NULL) != 0)
        return;
    char err[512];
    int rc = reg_store_promote(reg_live_store(gw->live), app, version, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", app), "promoted %s version %" PRIu64, app, version);
    applied(gw, req, app, json_pack("{s:s, s:I}", "app", app, "live", (json_int_t)version));
}

/* PUT /apps/APP/tags/TAG {"version": N}, DELETE /apps/APP/tags/TAG. */
static void admin_tag(gw_server_t *gw, h2o_req_t *req, const char *app, const char *tag, bool remove)
{
    uint64_t version = 0;
    if (!remove && read_body(req, &version, NULL) != 0)
        return;
    char err[512];
    int rc = reg_store_tag(reg_live_store(gw->live), app, tag, version, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    json_t *answer = json_pack("{s:s, s:s}", "app", app, "tag", tag);
    json_object_set_new(answer, "version", remove ? json_null() : json_integer((json_int_t)version));
    applied(gw, req, app, answer);
}

/* PUT /apps/APP/split {"version": N, "percent": P}, DELETE /apps/APP/split. */
static void admin_split(gw_server_t *gw, h2o_req_t *req, const char *app, bool remove)
{
    uint64_t version = 0;
    unsigned percent = 0;
    if (!remove && read_body(req, &version, &percent) != 0)
        return;
    char err[512];
    int rc = reg_store_split(reg_live_store(gw->live), app, version, percent, err, sizeof err);
    if (rc != 0) {
        gw__send_error(req, store_status(rc), "%s", err);
        return;
    }
    json_t *answer = json_pack("{s:s}", "app", app);
    json_object_set_new(answer, "split",
                        remove ? json_null()
                               : json_pack("{s:I, s:i}", "version", (json_int_t)version, "percent", (int)percent));
    applied(gw, req, app, answer);
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

bool gw__admin_release(gw_server_t *gw, h2o_req_t *req, const char *app, const h2o_iovec_t *seg, size_t n)
{
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("promote"))) {
        if (method_is(req, "POST"))
            admin_promote(gw, req, app);
        else
            gw__send_error(req, 405, "use POST with {\"version\": N} to promote");
        return true;
    }
    if (n == 3 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("split"))) {
        if (method_is(req, "PUT") || method_is(req, "DELETE"))
            admin_split(gw, req, app, method_is(req, "DELETE"));
        else
            gw__send_error(req, 405, "use PUT with {\"version\": N, \"percent\": P} to split, DELETE to end it");
        return true;
    }
    if (n == 4 && h2o_memis(seg[2].base, seg[2].len, H2O_STRLIT("tags"))) {
        char *tag = xstrndup(seg[3].base, seg[3].len);
        if (method_is(req, "PUT") || method_is(req, "DELETE"))
            admin_tag(gw, req, app, tag, method_is(req, "DELETE"));
        else
            gw__send_error(req, 405, "use PUT with {\"version\": N} to tag, DELETE to remove the tag");
        free(tag);
        return true;
    }
    return false;
}
