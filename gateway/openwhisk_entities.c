#define _GNU_SOURCE /* nftw, mkdtemp */
#include "openwhisk_internal.h"

#include "auth.h"
#include "billing.h"
#include "bundle.h"
#include "gateway_internal.h"
#include "registry.h"
#include "tenancy.h"
#include "tine_common.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------ entities */

json_t *gw__ow_action_of(const json_t *state, const char *name)
{
    return json_object_get(json_object_get(state, "actions"), name);
}

/* "ns" or "ns/pkg" and the last segment, as OpenWhisk shows an entity. */
static void entity_names(const ow_req_t *r, const char *name, json_t *o)
{
    const char *slash = strchr(name, '/');
    if (slash) {
        char *ns = xasprintf("%s/%.*s", r->ns, (int)(slash - name), name);
        json_object_set_new(o, "namespace", json_string(ns));
        json_object_set_new(o, "name", json_string(slash + 1));
        free(ns);
    } else {
        json_object_set_new(o, "namespace", json_string(r->ns));
        json_object_set_new(o, "name", json_string(name));
    }
}

json_t *gw__ow_action_json(const ow_req_t *r, const char *name, const json_t *a, bool code)
{
    json_t *o = json_object();
    entity_names(r, name, o);
    const char *kind = json_string_value(json_object_get(a, "kind"));
    json_t *exec = json_pack("{s:s, s:b}", "kind", kind, "binary", json_is_true(json_object_get(a, "binary")));
    if (gw_ow_kind_parse(kind) == GW_OW_KIND_SEQUENCE)
        json_object_set(exec, "components", json_object_get(a, "components"));
    else if (code && r->v) {
        char *path = xasprintf("%s/ow/%s/exec.code", r->v->bundle_dir, json_string_value(json_object_get(a, "fn")));
        char *text;
        size_t len;
        if (tine_try_read_file(path, &text, &len) == 0) {
            json_object_set_new(exec, "code", json_stringn(text, len));
            free(text);
        }
        free(path);
    }
    if (json_object_get(a, "main"))
        json_object_set(exec, "main", json_object_get(a, "main"));
    json_t *ann = json_deep_copy(json_object_get(a, "annotations"));
    if (!gw_ow_kv_get(ann, "exec"))
        json_array_append_new(ann, json_pack("{s:s, s:s}", "key", "exec", "value", kind));
    json_object_set_new(o, "exec", exec);
    json_object_set_new(o, "annotations", ann);
    json_object_set(o, "parameters", json_object_get(a, "parameters"));
    json_object_set(o, "limits", json_object_get(a, "limits"));
    json_object_set(o, "version", json_object_get(a, "version"));
    json_object_set(o, "updated", json_object_get(a, "updated"));
    json_object_set_new(o, "publish", json_false());
    return o;
}

/* The next patch version of "0.0.N". */
static json_t *next_version(const json_t *old)
{
    const char *s = json_string_value(old);
    long n = 0;
    if (s && strncmp(s, "0.0.", 4) == 0)
        n = strtol(s + 4, NULL, 10);
    char v[32];
    snprintf(v, sizeof v, "0.0.%ld", n + 1);
    return json_string(v);
}

bool gw__ow_entity_name(h2o_req_t *req, char **seg, size_t n, char *out, size_t outlen)
{
    for (size_t i = 0; i < n; i++)
        if (!gw_ow_name_valid(seg[i], strlen(seg[i]))) {
            gw__ow_error(req, 400, "The request content was malformed: '%s' is not a valid name (letters, digits, "
                               "'_', '@', '.', '-' and spaces, 1..256).", seg[i]);
            return false;
        }
    snprintf(out, outlen, n == 2 ? "%s/%s" : "%s", seg[0], n == 2 ? seg[1] : "");
    return true;
}

const char *gw__ow_component_name(const ow_req_t *r, const char *c)
{
    if (c[0] != '/')
        return c;
    const char *ns = c + 1;
    const char *slash = strchr(ns, '/');
    if (slash == NULL)
        return NULL;
    size_t nl = (size_t)(slash - ns);
    if ((nl == 1 && ns[0] == '_') || (nl == strlen(r->ns) && memcmp(ns, r->ns, nl) == 0))
        return slash + 1;
    return NULL;
}

typedef struct {
    gw_ow_kind_t kind;
    const char *fn, *main, *code;
    bool binary;
    size_t max;
} action_files_t;

static int write_action_files(void *data, const char *dir, char *err, size_t errlen)
{
    action_files_t *f = data;
    char *adir = xasprintf("%s/ow/%s", dir, f->fn);
    int rc = tine_mkdirs(adir, 0755) != 0 ? tine_fail_errno(err, errlen, "cannot create %s", adir)
                                          : gw__ow_write_action(adir, f->kind, f->fn, f->main, f->code, f->binary, f->max,
                                                         err, errlen);
    free(adir);
    return rc;
}

/* Checks and takes limits of a body over the old ones (or the defaults).
 * NULL with 400 sent when one is out of range. */
static json_t *limits_of(h2o_req_t *req, const json_t *given, const json_t *old)
{
    json_int_t timeout = old ? json_integer_value(json_object_get(old, "timeout")) : OW_DEFAULT_TIMEOUT;
    json_int_t memory = old ? json_integer_value(json_object_get(old, "memory")) : OW_DEFAULT_MEMORY;
    json_t *t = json_object_get(given, "timeout"), *m = json_object_get(given, "memory");
    if (given && !json_is_object(given)) {
        gw__ow_error(req, 400, "The request content was malformed: limits must be an object.");
        return NULL;
    }
    if (t && (!json_is_integer(t) || json_integer_value(t) < 100 || json_integer_value(t) > 900000)) {
        gw__ow_error(req, 400, "The request content was malformed: limits.timeout must be milliseconds in 100..900000.");
        return NULL;
    }
    if (m && (!json_is_integer(m) || json_integer_value(m) < 16 || json_integer_value(m) > 10240)) {
        gw__ow_error(req, 400, "The request content was malformed: limits.memory must be megabytes in 16..10240.");
        return NULL;
    }
    if (t)
        timeout = json_integer_value(t);
    if (m)
        memory = json_integer_value(m);
    return json_pack("{s:I, s:I, s:i, s:i}", "timeout", timeout, "memory", memory, "logs", 10, "concurrency", 1);
}

/* A key/value array of a body ("parameters", "annotations"): the given one,
 * else the old one, else []. NULL with 400 sent when it is not one. */
static json_t *kv_of(h2o_req_t *req, const json_t *body, const char *field, const json_t *old)
{
    json_t *v = json_object_get(body, field);
    if (v == NULL)
        return old ? json_deep_copy(old) : json_array();
    size_t i;
    json_t *kv;
    bool ok = json_is_array(v);
    json_array_foreach(v, i, kv) ok = ok && json_is_string(json_object_get(kv, "key")) && json_object_get(kv, "value");
    if (!ok) {
        gw__ow_error(req, 400, "The request content was malformed: %s must be an array of {\"key\", \"value\"}.", field);
        return NULL;
    }
    return json_deep_copy(v);
}

void gw__ow_action_put(ow_req_t *r, const char *name)
{
    h2o_req_t *req = r->req;
    json_t *body = gw__ow_body_object(req);
    if (body == NULL)
        return;
    json_t *actions = json_object_get(r->state, "actions");
    json_t *old = json_object_get(actions, name);
    const char *slash = strchr(name, '/');
    if (slash) {
        char *pkg = xstrndup(name, (size_t)(slash - name));
        bool has = json_object_get(json_object_get(r->state, "packages"), pkg) != NULL;
        free(pkg);
        if (!has) {
            gw__ow_error(req, 404, "The requested resource does not exist: no package '%.*s' in namespace %s.",
                     (int)(slash - name), name, r->ns);
            goto out;
        }
    }
    if (old && !gw__ow_query_true(req, "overwrite")) {
        gw__ow_error(req, 409, "resource already exists: action '%s' (PUT with ?overwrite=true to update it).", name);
        goto out;
    }
    json_t *exec = json_object_get(body, "exec");
    if (exec == NULL && old == NULL) {
        gw__ow_error(req, 400, "The request content was malformed: exec undefined (an action needs exec.kind and "
                           "exec.code, or exec.components for a sequence).");
        goto out;
    }
    if (exec && !json_is_object(exec)) {
        gw__ow_error(req, 400, "The request content was malformed: exec must be an object.");
        goto out;
    }
    const char *kind = exec ? json_string_value(json_object_get(exec, "kind"))
                            : json_string_value(json_object_get(old, "kind"));
    gw_ow_kind_t k = gw_ow_kind_parse(kind);
    if (k == GW_OW_KIND_UNKNOWN) {
        gw__ow_error(req, 400,
                 "The request content was malformed: kind '%s' is not supported (supported: lua, python:3, "
                 "nodejs:*, blackbox, native, sequence).",
                 kind ? kind : "(none)");
        goto out;
    }
    json_t *image = json_object_get(exec, "image");
    if (k == GW_OW_KIND_BLACKBOX && image && !(json_is_string(image) && strncmp(json_string_value(image),
                                                                                "openwhisk/dockerskeleton", 24) == 0)) {
        gw__ow_error(req, 400, "The request content was malformed: docker images are not supported (only the "
                           "openwhisk/dockerskeleton contract: an 'exec' program in exec.code).");
        goto out;
    }
    const char *main = json_string_value(json_object_get(exec, "main"));
    if (main == NULL)
        main = exec ? "main" : json_string_value(json_object_get(old, "main"));
    if (main == NULL)
        main = "main";
    if (!gw__ow_main_valid(main)) {
        gw__ow_error(req, 400, "The request content was malformed: exec.main '%s' is not an identifier.", main);
        goto out;
    }
    json_t *code = json_object_get(exec, "code");
    json_t *components = NULL;
    if (exec && k == GW_OW_KIND_SEQUENCE) {
        components = json_object_get(exec, "components");
        if (!json_is_array(components) || json_array_size(components) == 0 ||
            json_array_size(components) > OW_MAX_SEQUENCE) {
            gw__ow_error(req, 400, "The request content was malformed: a sequence needs exec.components, 1..%d action "
                               "names.", OW_MAX_SEQUENCE);
            goto out;
        }
        size_t i;
        json_t *c;
        json_array_foreach(components, i, c)
        {
            const char *cn = json_is_string(c) ? gw__ow_component_name(r, json_string_value(c)) : NULL;
            json_t *ca = cn ? gw__ow_action_of(r->state, cn) : NULL;
            if (ca == NULL || strcmp(cn, name) == 0) {
                gw__ow_error(req, 400, "The request content was malformed: sequence component %s is not an action of "
                                   "namespace %s.",
                         json_is_string(c) ? json_string_value(c) : "(not a string)", r->ns);
                goto out;
            }
            if (gw_ow_kind_parse(json_string_value(json_object_get(ca, "kind"))) == GW_OW_KIND_SEQUENCE) {
                gw__ow_error(req, 400, "The request content was malformed: sequence component %s is a sequence itself "
                                   "(not supported: list its actions instead).", json_string_value(c));
                goto out;
            }
        }
    } else if (exec && (!json_is_string(code) || json_string_length(code) == 0)) {
        gw__ow_error(req, 400, "The request content was malformed: exec.code must be a non-empty string.");
        goto out;
    }
    json_t *limits = limits_of(req, json_object_get(body, "limits"), json_object_get(old, "limits"));
    if (limits == NULL)
        goto out;
    json_t *params = kv_of(req, body, "parameters", json_object_get(old, "parameters"));
    json_t *ann = params ? kv_of(req, body, "annotations", json_object_get(old, "annotations")) : NULL;
    if (ann == NULL) {
        json_decref(limits);
        json_decref(params);
        goto out;
    }
    /* The new state: a copy, so a failed deploy leaves nothing changed. */
    json_t *state = json_deep_copy(r->state);
    json_t *a = json_object();
    char fn[32];
    if (old)
        snprintf(fn, sizeof fn, "%s", json_string_value(json_object_get(old, "fn")));
    else {
        json_int_t next = json_integer_value(json_object_get(state, "next"));
        snprintf(fn, sizeof fn, "a%lld", (long long)next);
        json_object_set_new(state, "next", json_integer(next + 1));
    }
    /* Clients send a zip as base64 without saying so (the npm client does):
     * its text starts as every zip's does, as OpenWhisk's controller sees it. */
    bool binary = exec ? json_is_true(json_object_get(exec, "binary")) ||
                             (json_is_string(code) && strncmp(json_string_value(code), "UEsDB", 5) == 0)
                       : json_is_true(json_object_get(old, "binary"));
    json_object_set_new(a, "fn", json_string(fn));
    json_object_set_new(a, "kind", json_string(kind));
    json_object_set_new(a, "main", json_string(main));
    json_object_set_new(a, "binary", json_boolean(binary && k != GW_OW_KIND_SEQUENCE));
    json_object_set_new(a, "parameters", params);
    json_object_set_new(a, "annotations", ann);
    json_object_set_new(a, "limits", limits);
    json_object_set_new(a, "version", next_version(json_object_get(old, "version")));
    json_object_set_new(a, "updated", json_integer((json_int_t)tine_now_unix_ms()));
    if (k == GW_OW_KIND_SEQUENCE)
        json_object_set(a, "components",
                        components ? components : json_object_get(old, "components"));
    json_object_set_new(json_object_get(state, "actions"), name, a);
    /* New code replaces the function's directory; an update without code
     * keeps it (a new version of the wrapper's env and limits only). */
    action_files_t files = {k, fn, main, json_string_value(code), binary, r->gw->max_bundle * 8};
    const char *drop[] = {fn};
    bool new_code = exec && k != GW_OW_KIND_SEQUENCE;
    if (gw__ow_deploy(r, state, drop, exec ? 1 : 0, new_code ? write_action_files : NULL, &files)) {
        json_decref(r->state);
        r->state = state;
        /* The answer shows the code as sent (the live version is the new one
         * only after the reload that deploy did: read it again). */
        if (r->v)
            reg_app_version_release(r->v);
        r->v = reg_live_get(r->gw->live, r->app, strlen(r->app));
        if (r->v)
            reg_app_version_retain(r->v);
        gw__send_json(req, 200, gw__ow_action_json(r, name, a, false));
    } else {
        json_decref(state);
    }
out:
    json_decref(body);
}

void gw__ow_list_entities(ow_req_t *r, const char *what, json_t *(*show)(const ow_req_t *, const char *,
                                                                           const json_t *, bool))
{
    char *l = gw__query_param(r->req, "limit"), *s = gw__query_param(r->req, "skip");
    long limit, skip;
    bool ok = gw_ow_count(l, 200, 30, &limit) && gw_ow_count(s, 1000000, 0, &skip);
    free(l);
    free(s);
    if (!ok) {
        gw__ow_error(r->req, 400, "The request content was malformed: limit must be 0..200 and skip a count.");
        return;
    }
    if (limit == 0)
        limit = 200;
    json_t *list = json_array();
    const char *name;
    json_t *e;
    long i = 0;
    /* Newest first, as OpenWhisk lists them. */
    json_t *sorted = json_array();
    json_object_foreach(json_object_get(r->state, what), name, e)
    {
        json_t *shown = show(r, name, e, false);
        json_array_append_new(sorted, shown);
    }
    size_t n = json_array_size(sorted);
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(sorted, b - 1), *y = json_array_get(sorted, b);
            if (json_integer_value(json_object_get(x, "updated")) >= json_integer_value(json_object_get(y, "updated")))
                break;
            json_incref(x);
            json_array_set(sorted, b - 1, y);
            json_array_set_new(sorted, b, x);
        }
    size_t k;
    json_array_foreach(sorted, k, e)
    {
        if (i++ < skip)
            continue;
        if ((long)json_array_size(list) >= limit)
            break;
        json_object_del(json_object_get(e, "exec"), "code");
        json_array_append(list, e);
    }
    json_decref(sorted);
    gw__send_json(r->req, 200, list);
}

void gw__ow_action_delete(ow_req_t *r, const char *name)
{
    json_t *a = gw__ow_action_of(r->state, name);
    if (a == NULL) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no action '%s' in namespace %s.", name, r->ns);
        return;
    }
    /* Sequences and rules naming it would break: refused, as a conflict. */
    const char *other;
    json_t *e;
    json_object_foreach(json_object_get(r->state, "rules"), other, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "action")), name) == 0) {
            gw__ow_error(r->req, 409, "action '%s' is used by rule '%s': delete the rule first.", name, other);
            return;
        }
    }
    json_t *shown = gw__ow_action_json(r, name, a, false);
    json_t *state = json_deep_copy(r->state);
    const char *drop[] = {json_string_value(json_object_get(a, "fn"))};
    char fn[32];
    snprintf(fn, sizeof fn, "%s", drop[0] ? drop[0] : "");
    drop[0] = fn;
    json_object_del(json_object_get(state, "actions"), name);
    gw__ow_deploy_answer(r, state, drop, 1, shown);
}

/* ------------------------------------------------------------ triggers, rules, packages */

json_t *gw__ow_entity_json(const ow_req_t *r, const char *name, const json_t *e, bool full)
{
    (void)full;
    json_t *o = json_deep_copy(e);
    entity_names(r, name, o);
    json_object_set_new(o, "publish", json_false());
    if (json_object_get(o, "version") == NULL)
        json_object_set_new(o, "version", json_string("0.0.1"));
    return o;
}

json_t *gw__ow_action_listed(const ow_req_t *r, const char *name, const json_t *a, bool code)
{
    return gw__ow_action_json(r, name, a, code);
}

json_t *gw__ow_rule_json(const ow_req_t *r, const char *name, const json_t *e, bool full)
{
    (void)full;
    json_t *o = json_object();
    entity_names(r, name, o);
    json_object_set_new(o, "trigger", json_pack("{s:s, s:s}", "path", r->ns, "name",
                                                json_string_value(json_object_get(e, "trigger"))));
    json_object_set_new(o, "action", json_pack("{s:s, s:s}", "path", r->ns, "name",
                                               json_string_value(json_object_get(e, "action"))));
    json_object_set(o, "status", json_object_get(e, "status"));
    json_object_set(o, "version", json_object_get(e, "version"));
    json_object_set(o, "updated", json_object_get(e, "updated"));
    json_object_set(o, "annotations", json_object_get(e, "annotations"));
    json_object_set_new(o, "publish", json_false());
    return o;
}

/* A name given as "/ns/name" or "name" (rules' trigger and action); NULL
 * when it is another namespace's. */
static const char *local_name(const ow_req_t *r, json_t *v)
{
    const char *s = json_string_value(v);
    return s ? gw__ow_component_name(r, s) : NULL;
}

void gw__ow_entity_put(ow_req_t *r, const char *what, const char *name)
{
    json_t *body = gw__ow_body_object(r->req);
    if (body == NULL)
        return;
    json_t *all = json_object_get(r->state, what);
    json_t *old = json_object_get(all, name);
    json_t *e = NULL;
    if (old && !gw__ow_query_true(r->req, "overwrite")) {
        gw__ow_error(r->req, 409, "resource already exists: %.*s '%s' (PUT with ?overwrite=true to update it).",
                 (int)strlen(what) - 1, what, name);
        goto out;
    }
    if (strcmp(what, "rules") == 0) {
        const char *t = local_name(r, json_object_get(body, "trigger"));
        const char *a = local_name(r, json_object_get(body, "action"));
        if (old && !t)
            t = json_string_value(json_object_get(old, "trigger"));
        if (old && !a)
            a = json_string_value(json_object_get(old, "action"));
        if (t == NULL || a == NULL) {
            gw__ow_error(r->req, 400, "The request content was malformed: a rule needs a trigger and an action of "
                                  "namespace %s.", r->ns);
            goto out;
        }
        if (json_object_get(json_object_get(r->state, "triggers"), t) == NULL || gw__ow_action_of(r->state, a) == NULL) {
            gw__ow_error(r->req, 404, "The requested resource does not exist: no %s '%s' in namespace %s.",
                     gw__ow_action_of(r->state, a) ? "trigger" : "action", gw__ow_action_of(r->state, a) ? t : a, r->ns);
            goto out;
        }
        e = json_pack("{s:s, s:s, s:s}", "trigger", t, "action", a, "status",
                      old ? json_string_value(json_object_get(old, "status")) : "active");
    } else {
        e = json_object();
        if (strcmp(what, "packages") == 0 && strchr(name, '/')) {
            gw__ow_error(r->req, 400, "The request content was malformed: package names have one segment.");
            goto out;
        }
    }
    json_t *params = kv_of(r->req, body, "parameters", json_object_get(old, "parameters"));
    json_t *ann = params ? kv_of(r->req, body, "annotations", json_object_get(old, "annotations")) : NULL;
    if (ann == NULL) {
        json_decref(params);
        json_decref(e);
        goto out;
    }
    json_object_set_new(e, "parameters", params);
    json_object_set_new(e, "annotations", ann);
    json_object_set_new(e, "version", next_version(json_object_get(old, "version")));
    json_object_set_new(e, "updated", json_integer((json_int_t)tine_now_unix_ms()));
    json_t *state = json_deep_copy(r->state);
    json_object_set(json_object_get(state, what), name, e);
    if (gw__ow_deploy(r, state, NULL, 0, NULL, NULL))
        gw__send_json(r->req, 200, strcmp(what, "rules") == 0 ? gw__ow_rule_json(r, name, e, true)
                                                              : gw__ow_entity_json(r, name, e, true));
    json_decref(state);
    json_decref(e);
out:
    json_decref(body);
}

void gw__ow_entity_delete(ow_req_t *r, const char *what, const char *name)
{
    json_t *e = json_object_get(json_object_get(r->state, what), name);
    if (e == NULL) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no %.*s '%s' in namespace %s.",
                 (int)strlen(what) - 1, what, name, r->ns);
        return;
    }
    /* What would dangle is refused: rules of a trigger, actions of a package. */
    const char *other;
    json_t *o;
    if (strcmp(what, "triggers") == 0)
        json_object_foreach(json_object_get(r->state, "rules"), other, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "trigger")), name) == 0) {
                gw__ow_error(r->req, 409, "trigger '%s' is used by rule '%s': delete the rule first.", name, other);
                return;
            }
        }
    if (strcmp(what, "packages") == 0)
        json_object_foreach(json_object_get(r->state, "actions"), other, o)
        {
            if (strncmp(other, name, strlen(name)) == 0 && other[strlen(name)] == '/') {
                gw__ow_error(r->req, 409, "package '%s' holds action '%s': delete its actions first.", name, other);
                return;
            }
        }
    json_t *shown = strcmp(what, "rules") == 0 ? gw__ow_rule_json(r, name, e, true) : gw__ow_entity_json(r, name, e, true);
    json_t *state = json_deep_copy(r->state);
    json_object_del(json_object_get(state, what), name);
    gw__ow_deploy_answer(r, state, NULL, 0, shown);
}

void gw__ow_rule_status(ow_req_t *r, const char *name)
{
    json_t *e = json_object_get(json_object_get(r->state, "rules"), name);
    if (e == NULL) {
        gw__ow_error(r->req, 404, "The requested resource does not exist: no rule '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = gw__ow_body_object(r->req);
    if (body == NULL)
        return;
    const char *status = json_string_value(json_object_get(body, "status"));
    if (status == NULL || (strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0)) {
        gw__ow_error(r->req, 400, "The request content was malformed: status must be \"active\" or \"inactive\".");
        json_decref(body);
        return;
    }
    json_t *state = json_deep_copy(r->state);
    json_t *ne = json_object_get(json_object_get(state, "rules"), name);
    bool same = strcmp(json_string_value(json_object_get(ne, "status")), status) == 0;
    json_object_set_new(ne, "status", json_string(status));
    json_object_set_new(ne, "updated", json_integer((json_int_t)tine_now_unix_ms()));
    if (same || gw__ow_deploy(r, state, NULL, 0, NULL, NULL))
        gw__send_json(r->req, 200, json_object());
    json_decref(state);
    json_decref(body);
}
