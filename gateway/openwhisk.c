/* The OpenWhisk-compatible API under /api/v1 (docs/openwhisk.md).
 *
 * Each OpenWhisk namespace is one tine app, "ow-<namespace>", in the tine
 * namespace of the same name. Its entities (actions, triggers, rules,
 * packages) are kept in the app's bundle, in openwhisk.json, next to each
 * action's code and generated wrapper under ow/<fn>/ and a generated
 * manifest (tine.json) with one function per action. Every change builds
 * the next bundle from the live one and deploys it through the registry
 * (stage, files on this node, live, reload), so it is a version like any
 * other: listed by `tine versions`, undone by `tine rollback`.
 *
 * Invocations are tine invocations of those functions (metered, recorded
 * by billing); activations are billing's records shown in OpenWhisk's
 * shape, completed with the result this node keeps of its recent calls.
 * Callers authenticate with HTTP Basic and a tine API key; every endpoint
 * checks the key's permission as the admin API does (auth.c). */
#define _GNU_SOURCE /* nftw, mkdtemp */
#include "openwhisk.h"

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

#define OW_BLOCKING_MS 60000u  /* a blocking invoke waits this long at most, then answers 202 */
#define OW_RING 4096u          /* results of recent calls kept by this node */
#define OW_APP_PREFIX "ow-"
#define OW_STATE_FILE "openwhisk.json"
#define OW_DEFAULT_TIMEOUT 60000
#define OW_DEFAULT_MEMORY 256
#define OW_MAX_SEQUENCE 50

/* ------------------------------------------------------------ errors */

/* Sends OpenWhisk's error shape {"error": message, "code": id} (the code is
 * a transaction id, as OpenWhisk's, also in the node's log). */
static void __attribute__((format(printf, 3, 4))) ow_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    static uint64_t seq;
    char msg[1024], code[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(code, sizeof code, "%012" PRIx64 "%04" PRIx64, tine_now_unix_ms(), ++seq & 0xffff);
    if (status == 401)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("www-authenticate"), 0, NULL,
                              H2O_STRLIT("Basic realm=\"tine\""));
    gw__send_json(req, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

/* ------------------------------------------------------------ results kept */

/* The activations this node finished (with their results, which billing's
 * records do not hold): a ring, the oldest replaced first. */
typedef struct {
    char id[33];
    char *app;
    json_t *activation; /* OpenWhisk's shape, logs as far as known */
} ow_kept_t;

static ow_kept_t kept[OW_RING];
static size_t kept_next;

/* A fresh activation id of the invoker's shape (32 hex digits), for what
 * is no single tine call: a sequence, a trigger's firing. */
static void random_id(char out[33])
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        uint64_t t = tine_now_ns();
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void keep_activation(const char *app, json_t *activation)
{
    ow_kept_t *k = &kept[kept_next++ % OW_RING];
    free(k->app);
    json_decref(k->activation);
    snprintf(k->id, sizeof k->id, "%s", json_string_value(json_object_get(activation, "activationId")));
    k->app = xstrdup(app);
    k->activation = json_incref(activation);
}

static json_t *kept_activation(const char *app, const char *id)
{
    for (size_t i = 0; i < OW_RING; i++)
        if (kept[i].activation && strcmp(kept[i].id, id) == 0 && strcmp(kept[i].app, app) == 0)
            return kept[i].activation;
    return NULL;
}

/* ------------------------------------------------------------ the request */

typedef struct {
    gw_server_t *gw;
    h2o_req_t *req;
    gw_caller_t caller;
    char ns[64];
    char app[80];
    reg_app_version_t *v; /* the live version (a reference), NULL when the namespace has none */
    json_t *state;        /* its openwhisk.json, or an empty state */
    char audit[48];       /* a change's audit action ("openwhisk.actions.put"), "" for a read */
    char target[600];     /* the entity it changes */
} ow_req_t;

/* Writes the audit entry of a change (tn_audit_append: in the background),
 * as the admin API writes one for each of its changes. */
static void audit(const ow_req_t *r, int status, const char *detail)
{
    if (r->audit[0] == '\0')
        return;
    char target[700];
    snprintf(target, sizeof target, "%s:%s", r->app, r->target);
    tn_audit_entry_t e = {
        .key_id = r->caller.id,
        .key_name = r->caller.name,
        .ns = r->ns,
        .action = r->audit,
        .target = target,
        .outcome = status < 300 ? "ok" : status == 401 || status == 403 ? "refused" : "failed",
        .status = status,
        .detail = detail,
    };
    tn_audit_append(r->gw->tenancy, &e);
}

static void ow_req_dispose(ow_req_t *r)
{
    if (r->v)
        reg_app_version_release(r->v);
    json_decref(r->state);
}

static json_t *empty_state(void)
{
    return json_pack("{s:i, s:{}, s:{}, s:{}, s:{}}", "next", 1, "actions", "triggers", "rules", "packages");
}

/* The states of recent versions, read once: a version never changes, so
 * (app, version) names its state for good. Replaced in turn. */
#define OW_STATE_CACHE 64
static struct {
    char *app;
    uint64_t version;
    json_t *state;
} state_cache[OW_STATE_CACHE];
static size_t state_cache_next;

/* The state of version v (a new reference), or NULL with the reason in
 * jerr. Nobody changes a state in place: changes are made on copies. */
static json_t *state_of(const reg_app_version_t *v, json_error_t *jerr)
{
    for (size_t i = 0; i < OW_STATE_CACHE; i++)
        if (state_cache[i].state && state_cache[i].version == v->version && strcmp(state_cache[i].app, v->app) == 0)
            return json_incref(state_cache[i].state);
    char *path = xasprintf("%s/" OW_STATE_FILE, v->bundle_dir);
    json_t *state = json_load_file(path, 0, jerr);
    free(path);
    if (state == NULL)
        return NULL;
    size_t i = state_cache_next++ % OW_STATE_CACHE;
    free(state_cache[i].app);
    json_decref(state_cache[i].state);
    state_cache[i].app = xstrdup(v->app);
    state_cache[i].version = v->version;
    state_cache[i].state = json_incref(state);
    return state;
}

/* Reads the live version of the namespace's app and its state. False (503
 * sent) when the state file of a live version cannot be read. */
static bool load_state(ow_req_t *r)
{
    r->v = reg_live_get(r->gw->live, r->app, strlen(r->app));
    if (r->v == NULL) {
        r->state = empty_state();
        return true;
    }
    reg_app_version_retain(r->v);
    json_error_t jerr;
    r->state = state_of(r->v, &jerr);
    if (r->state == NULL) {
        ow_error(r->req, 503, "app %s version %" PRIu64 " is not an OpenWhisk namespace's (%s: %s)", r->app,
                 r->v->version, OW_STATE_FILE, jerr.text);
        return false;
    }
    return true;
}

/* 403 (sent) unless the caller has permission p in the namespace. */
static bool allowed(ow_req_t *r, gw_perm_t p)
{
    if (!gw__role_allows(r->caller.role, p)) {
        audit(r, 403, gw__perm_name(p));
        ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s lacks permission %s.",
                 r->ns, r->caller.id, gw__perm_name(p));
        return false;
    }
    return true;
}

/* The namespace named in the path ("_": the key's own) made the request's,
 * with its app. False (401/403 sent) when the key may not use it. */
static bool resolve_namespace(ow_req_t *r, const char *ns)
{
    const char *own = r->caller.ns ? r->caller.ns : REG_DEFAULT_NAMESPACE;
    if (strcmp(ns, "_") == 0)
        ns = own;
    if (!reg_name_valid(ns) || strlen(ns) > 60) {
        ow_error(r->req, 404, "The requested resource does not exist: no namespace '%s' (tine namespaces are 1..60 "
                              "of a-z, 0-9 and '-' here).", ns);
        return false;
    }
    if (r->caller.ns && strcmp(r->caller.ns, ns) != 0) {
        ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s is of namespace %s.",
                 ns, r->caller.id, r->caller.ns);
        return false;
    }
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->app, sizeof r->app, OW_APP_PREFIX "%s", ns);
    if (r->caller.app && strcmp(r->caller.app, r->app) != 0) {
        ow_error(r->req, 403, "The supplied authentication is not authorized to access '%s': key %s is restricted to app %s.",
                 ns, r->caller.id, r->caller.app);
        return false;
    }
    return true;
}

/* The request body as a JSON object (an empty one when there is none);
 * NULL with 400 sent when it is not one. */
static json_t *body_object(h2o_req_t *req)
{
    if (req->entity.len == 0)
        return json_object();
    json_error_t jerr;
    json_t *o = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        ow_error(req, 400, "The request content was malformed: expected a JSON object (line %d column %d: %s).",
                 jerr.line, jerr.column, o ? "not an object" : jerr.text);
        return NULL;
    }
    return o;
}

/* A query flag: "true" (or present without a value) counts. */
static bool query_true(h2o_req_t *req, const char *name)
{
    char *v = gw__query_param(req, name);
    bool on = v && (strcmp(v, "true") == 0 || strcmp(v, "") == 0 || strcmp(v, "1") == 0);
    free(v);
    return on;
}

/* ------------------------------------------------------------ files */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Copies the regular files and directories below src to dst (created). */
static int copy_tree(const char *src, const char *dst, char *err, size_t errlen)
{
    if (tine_mkdirs(dst, 0755) != 0)
        return tine_fail_errno(err, errlen, "cannot create %s", dst);
    DIR *d = opendir(src);
    if (d == NULL)
        return tine_fail_errno(err, errlen, "cannot read %s", src);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *s = xasprintf("%s/%s", src, e->d_name), *t = xasprintf("%s/%s", dst, e->d_name);
        struct stat st;
        if (lstat(s, &st) != 0) {
            rc = tine_fail_errno(err, errlen, "cannot read %s", s);
        } else if (S_ISDIR(st.st_mode)) {
            rc = copy_tree(s, t, err, errlen);
        } else if (S_ISREG(st.st_mode)) {
            char *data;
            size_t len;
            if (tine_try_read_file(s, &data, &len) != 0)
                rc = tine_fail_errno(err, errlen, "cannot read %s", s);
            else {
                if (tine_write_file(t, data, len, 0644) != 0)
                    rc = tine_fail_errno(err, errlen, "cannot write %s", t);
                free(data);
            }
        }
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int rc = tine_mkdirs(path, 0755);
    *slash = '/';
    if (rc == 0)
        rc = tine_write_file(path, text, len, 0644);
    if (rc != 0)
        rc = tine_fail_errno(err, errlen, "cannot write %s", path);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ kinds */

/* The runtime and handler of an action's function, by kind. */
static void kind_function(gw_ow_kind_t k, const char *fn, const char **runtime, char **handler)
{
    switch (k) {
    case GW_OW_KIND_PYTHON:
        *runtime = "python";
        *handler = xasprintf("ow/%s/ow_main.py#main", fn);
        break;
    case GW_OW_KIND_NODE:
        *runtime = "node";
        *handler = xasprintf("ow/%s/ow_main.js#handle", fn);
        break;
    case GW_OW_KIND_BLACKBOX:
        *runtime = "exec";
        *handler = xasprintf("ow/%s/run.sh", fn);
        break;
    default:
        *runtime = "lua";
        *handler = xasprintf("ow/%s/main.lua#main", fn);
        break;
    }
}

/* The Lua wrapper: the action's code, then the function tine calls, which
 * sets the call's __OW_ variables, calls main(params) and answers its dict
 * (or 502 with an error when it broke the contract). */
static const char lua_wrapper[] =
    "\n-- generated by tine (OpenWhisk action contract): see docs/openwhisk.md\n"
    "local __ow_tine = require \"tine\"\n"
    "local __ow_call = {}\n"
    "if type(os) == \"table\" then\n"
    "  local getenv = os.getenv\n"
    "  pcall(function() os.getenv = function(k) return __ow_call[k] or __ow_tine.env[k] or (getenv and getenv(k)) "
    "end end)\n"
    "end\n"
    "return { main = function(params, ctx)\n"
    "  __ow_call.__OW_ACTIVATION_ID = ctx.invocation_id\n"
    "  __ow_call.__OW_DEADLINE = tostring(math.floor(os and os.time and os.time() * 1000 or 0) + ctx.remaining_ms())\n"
    "  local f = %s\n"
    "  if type(f) ~= \"function\" then\n"
    "    return { status = 502, json = { error = \"The action has no function '%s'.\" } }\n"
    "  end\n"
    "  local r = f(params)\n"
    "  if type(r) ~= \"table\" then\n"
    "    return { status = 502, json = { error = \"The action did not return a dictionary.\" } }\n"
    "  end\n"
    "  return { status = 200, json = r }\n"
    "end }\n";

static const char python_wrapper[] =
    "# generated by tine (OpenWhisk action contract): see docs/openwhisk.md\n"
    "import importlib.util\n"
    "import os\n"
    "import sys\n"
    "import time\n"
    "import tine\n"
    "_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), \"code\")\n"
    "sys.path.insert(0, _DIR)\n"
    "_spec = importlib.util.spec_from_file_location(\"ow_action_%s\", os.path.join(_DIR, \"__main__.py\"))\n"
    "_mod = importlib.util.module_from_spec(_spec)\n"
    "_spec.loader.exec_module(_mod)\n"
    "\n"
    "\n"
    "def main(params, ctx):\n"
    "    for k in (\"__OW_ACTION_NAME\", \"__OW_ACTION_VERSION\", \"__OW_NAMESPACE\", \"__OW_API_HOST\"):\n"
    "        if tine.env.get(k) is not None:\n"
    "            os.environ[k] = tine.env.get(k)\n"
    "    os.environ[\"__OW_ACTIVATION_ID\"] = ctx[\"invocation_id\"]\n"
    "    os.environ[\"__OW_DEADLINE\"] = str(int(time.time() * 1000) + ctx[\"remaining_ms\"]())\n"
    "    f = getattr(_mod, \"%s\", None)\n"
    "    if not callable(f):\n"
    "        return {\"status\": 502, \"json\": {\"error\": \"The action has no function '%s'.\"}}\n"
    "    r = f(params)\n"
    "    if not isinstance(r, dict):\n"
    "        return {\"status\": 502, \"json\": {\"error\": \"The action did not return a dictionary.\"}}\n"
    "    return {\"status\": 200, \"json\": r}\n";

static const char node_wrapper[] =
    "// generated by tine (OpenWhisk action contract): see docs/openwhisk.md\n"
    "const path = require('path');\n"
    "const fs = require('fs');\n"
    "const dir = path.join(__dirname, 'code');\n"
    "let entry = 'index.js';\n"
    "try { entry = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).main || entry; } catch (e) {}\n"
    "const mod = require(path.join(dir, entry));\n"
    "exports.handle = async function (params, ctx) {\n"
    "  process.env.__OW_ACTIVATION_ID = ctx.invocation_id;\n"
    "  process.env.__OW_DEADLINE = String(Date.now() + ctx.remaining_ms());\n"
    "  const f = typeof mod === 'function' ? mod : mod['%s'];\n"
    "  if (typeof f !== 'function') return { status: 502, json: { error: \"The action has no function '%s'.\" } };\n"
    "  const r = await f(params);\n"
    "  if (r === null || typeof r !== 'object' || Array.isArray(r))\n"
    "    return { status: 502, json: { error: 'The action did not return a dictionary.' } };\n"
    "  return { status: 200, json: r };\n"
    "};\n";

static const char exec_wrapper[] =
    "# generated by tine (OpenWhisk action contract): see docs/openwhisk.md\n"
    "# stdin: the parameters; the program gets them as its first argument and\n"
    "# prints its result dict as the last line of stdout (earlier lines are logs).\n"
    "f=/app/ow/%s/code/exec\n"
    "args=$(cat)\n"
    "if [ \"$(head -c 2 \"$f\")\" = '#!' ]; then\n"
    "  interp=$(head -n 1 \"$f\" | cut -c3-)\n"
    "  out=$($interp \"$f\" \"$args\") || exit $?\n"
    "else\n"
    "  out=$(/bin/sh \"$f\" \"$args\") || exit $?\n"
    "fi\n"
    "printf '%%s\\n' \"$out\" | sed '$d' >&2\n"
    "last=$(printf '%%s\\n' \"$out\" | tail -n 1)\n"
    "printf '{\"status\":200,\"body\":%%s}\\n' \"${last:-null}\"\n";

/* Whether main (the exported function's name) is a safe identifier for the
 * wrappers. */
static bool main_valid(const char *m)
{
    if (m == NULL || !((m[0] >= 'a' && m[0] <= 'z') || (m[0] >= 'A' && m[0] <= 'Z') || m[0] == '_'))
        return false;
    size_t n = 1;
    for (; m[n]; n++)
        if (!((m[n] >= 'a' && m[n] <= 'z') || (m[n] >= 'A' && m[n] <= 'Z') || (m[n] >= '0' && m[n] <= '9') ||
              m[n] == '_'))
            return false;
    return n <= 64;
}

/* Writes an action's files into dir (ow/<fn> of the new bundle): its code
 * as given (exec.code, for GET), the code where its runtime loads it, and
 * its wrapper. Returns 0, or 400's message in err. */
static int write_action(const char *dir, gw_ow_kind_t k, const char *fn, const char *main, const char *code,
                        bool binary, size_t max, char *err, size_t errlen)
{
    int rc = write_text(dir, "exec.code", code, strlen(code), err, errlen);
    if (rc)
        return rc;
    char *codedir = xasprintf("%s/code", dir);
    if (tine_mkdirs(codedir, 0755) != 0)
        rc = tine_fail_errno(err, errlen, "cannot create %s", codedir);
    if (rc == 0 && binary) {
        size_t len = strlen(code);
        unsigned char *zip = xmalloc(len / 4 * 3 + 3);
        int n = len % 4 == 0 ? EVP_DecodeBlock(zip, (const unsigned char *)code, (int)len) : -1;
        for (size_t pad = len; n > 0 && pad > 0 && code[pad - 1] == '='; pad--)
            n--;
        if (n <= 0)
            rc = tine_fail(err, errlen, "exec.code: binary code must be a base64 zip archive");
        else
            rc = gw_ow_unzip(zip, (size_t)n, codedir, max, err, errlen);
        free(zip);
    }
    if (rc == 0 && !binary) {
        const char *file = k == GW_OW_KIND_PYTHON ? "__main__.py" : k == GW_OW_KIND_NODE ? "index.js"
                           : k == GW_OW_KIND_BLACKBOX                 ? "exec"
                                                                       : NULL;
        char *text = k == GW_OW_KIND_NODE
                         /* OpenWhisk's inline Node code defines main without exporting it. */
                         ? xasprintf("%s\n;if (typeof %s === 'function' && module.exports.%s === undefined) "
                                     "module.exports.%s = %s;\n",
                                     code, main, main, main, main)
                         : xstrdup(code);
        if (file)
            rc = write_text(codedir, file, text, strlen(text), err, errlen);
        free(text);
    }
    free(codedir);
    if (rc)
        return rc;
    char *text = NULL, *name = NULL;
    switch (k) {
    case GW_OW_KIND_LUA:
        if (binary)
            return tine_fail(err, errlen, "exec.code: lua actions take their code inline, not as a zip");
        {
            char *w = xasprintf(lua_wrapper, main, main);
            text = xasprintf("%s\n%s", code, w);
            free(w);
        }
        name = "main.lua";
        break;
    case GW_OW_KIND_PYTHON:
        text = xasprintf(python_wrapper, fn, main, main);
        name = "ow_main.py";
        break;
    case GW_OW_KIND_NODE:
        text = xasprintf(node_wrapper, main, main);
        name = "ow_main.js";
        break;
    case GW_OW_KIND_BLACKBOX: {
        char *exe = xasprintf("%s/code/exec", dir);
        bool has = access(exe, R_OK) == 0;
        free(exe);
        if (!has)
            return tine_fail(err, errlen, "exec.code: a blackbox action's zip needs an 'exec' file at its root");
        text = xasprintf(exec_wrapper, fn);
        name = "run.sh";
        break;
    }
    default:
        return tine_fail(err, errlen, "exec.kind: no code to write for this kind");
    }
    rc = write_text(dir, name, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ deploy */

/* The manifest of a state: a function per action but sequences, and "_ow"
 * (a manifest needs one function; it answers nothing). */
static json_t *manifest_of(const ow_req_t *r, const json_t *state, const char *api_host)
{
    json_t *fns = json_object();
    json_object_set_new(fns, "_ow", json_pack("{s:s}", "handler", "ow/_ow.lua#info"));
    const char *name;
    json_t *a;
    json_object_foreach(json_object_get(state, "actions"), name, a)
    {
        gw_ow_kind_t k = gw_ow_kind_parse(json_string_value(json_object_get(a, "kind")));
        if (k == GW_OW_KIND_SEQUENCE)
            continue;
        const char *fn = json_string_value(json_object_get(a, "fn"));
        const char *runtime;
        char *handler;
        kind_function(k, fn, &runtime, &handler);
        json_t *limits = json_object_get(a, "limits");
        char *full = xasprintf("/%s/%s", r->ns, name);
        char timeout[32];
        snprintf(timeout, sizeof timeout, "%lldms", (long long)json_integer_value(json_object_get(limits, "timeout")));
        json_t *f = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:s}}", "runtime", runtime, "handler", handler,
                              "memory", json_integer_value(json_object_get(limits, "memory")), "timeout", timeout,
                              "env", "__OW_ACTION_NAME", full,
                              "__OW_ACTION_VERSION", json_string_value(json_object_get(a, "version")),
                              "__OW_NAMESPACE", r->ns, "__OW_API_HOST", api_host);
        free(full);
        free(handler);
        json_object_set_new(fns, fn, f);
    }
    char *desc = xasprintf("OpenWhisk namespace %s (managed through /api/v1: see docs/openwhisk.md)", r->ns);
    json_t *m = json_pack("{s:s, s:s, s:s, s:o}", "app", r->app, "namespace", r->ns, "description", desc, "functions",
                          fns);
    free(desc);
    return m;
}

/* What a change writes into the new bundle besides the state: called with
 * the bundle's directory; returns 0 or a 400's message in err. */
typedef int (*ow_write_cb)(void *data, const char *dir, char *err, size_t errlen);

/* The api host actions see in __OW_API_HOST: this request's. */
static char *api_host(h2o_req_t *req)
{
    return xasprintf("%s://%.*s", req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http", (int)req->authority.len,
                     req->authority.base);
}

/* Deploys the next version of the namespace's app: the live bundle's ow/
 * tree but the directories of `drop` (function names, may be NULL), what
 * `write` adds, `state` as openwhisk.json and its manifest. Returns 0 and the
 * version in *version, or the HTTP status with its message in err (nothing
 * deployed). */
static int deploy_state(ow_req_t *r, const json_t *state, const char *const *drop, size_t ndrop, ow_write_cb write,
                        void *data, uint64_t *version, char *err, size_t errlen)
{
    char tmpl[] = "/tmp/tine-ow-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (dir == NULL) {
        tine_fail_errno(err, errlen, "cannot create a directory for the new version");
        return 503;
    }
    int status = 0;
    char *ow = xasprintf("%s/ow", dir);
    if (r->v) {
        char *src = xasprintf("%s/ow", r->v->bundle_dir);
        if (copy_tree(src, ow, err, errlen) != 0)
            status = 503;
        free(src);
    } else if (tine_mkdirs(ow, 0755) != 0) {
        tine_fail_errno(err, errlen, "cannot create %s", ow);
        status = 503;
    }
    for (size_t i = 0; status == 0 && i < ndrop; i++) {
        char *d = xasprintf("%s/%s", ow, drop[i]);
        rm_tree(d);
        free(d);
    }
    static const char placeholder[] = "-- generated by tine: the function every OpenWhisk namespace's app has\n"
                                      "return { info = function() return { openwhisk = true } end }\n";
    if (status == 0 && write_text(ow, "_ow.lua", placeholder, sizeof placeholder - 1, err, errlen) != 0)
        status = 503;
    if (status == 0 && write && write(data, dir, err, errlen) != 0)
        status = 400;
    char *host = api_host(r->req);
    json_t *m = manifest_of(r, state, host);
    free(host);
    char *mtext = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *stext = json_dumps(state, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(m);
    if (status == 0 && (write_text(dir, "tine.json", mtext, strlen(mtext), err, errlen) != 0 ||
                        write_text(dir, OW_STATE_FILE, stext, strlen(stext), err, errlen) != 0))
        status = 503;
    free(mtext);
    free(stext);
    void *tgz = NULL;
    size_t tgz_len = 0;
    if (status == 0 && reg_bundle_pack_dir(dir, &tgz, &tgz_len, err, errlen) != 0)
        status = 400;
    rm_tree(dir);
    free(ow);
    if (status)
        return status;
    gw_server_t *gw = r->gw;
    reg_bundle_limits_t limits = {.max_total = gw->max_bundle * 8, .max_files = 10000};
    reg_bundle_t *b = NULL;
    int rc = tgz_len > gw->max_bundle ? TINE_ETOOBIG : reg_bundle_read(tgz, tgz_len, &limits, &b, err, errlen);
    free(tgz);
    if (rc == TINE_ETOOBIG && b == NULL && tgz_len > gw->max_bundle)
        snprintf(err, errlen, "the namespace's bundle would be %zu bytes, over the limit of %zu", tgz_len,
                 gw->max_bundle);
    if (rc != 0)
        return rc == TINE_ETOOBIG ? 413 : 400;
    reg_store_t *store = reg_live_store(gw->live);
    /* The namespace must exist, and no app of another namespace be named so. */
    rc = reg_store_check_namespace(store, r->app, r->ns, err, errlen);
    if (rc != 0) {
        reg_bundle_free(b);
        return rc == TINE_ENOTFOUND ? 404 : rc == TINE_ECONFLICT ? 409 : 503;
    }
    uint64_t mark = 0, newer = 0;
    rc = reg_store_stage(store, b, version, &mark, err, errlen);
    if (rc != 0) {
        reg_store_release_marks(store, mark);
        reg_bundle_free(b);
        return 503;
    }
    rc = reg_live_prepare(gw->live, b, *version, err, errlen);
    reg_bundle_free(b);
    if (rc != 0) {
        char e2[256];
        reg_store_unstage(store, r->app, *version, e2, sizeof e2);
        reg_store_release_marks(store, mark);
        return 503;
    }
    rc = reg_store_make_live(store, r->app, *version, &newer, err, errlen);
    reg_store_release_marks(store, mark);
    if (rc != 0)
        return rc == TINE_ECONFLICT ? 409 : 503;
    if (reg_live_reload(gw->live, r->app, err, errlen) != 0)
        return 503;
    tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("app", r->app), "openwhisk: deployed %s version %" PRIu64, r->app,
                *version);
    return 0;
}

/* deploy_state, answering its failure (OpenWhisk's shape). True when it
 * deployed. */
static bool deploy(ow_req_t *r, const json_t *state, const char *const *drop, size_t ndrop, ow_write_cb write,
                   void *data)
{
    char err[1024];
    uint64_t version = 0;
    int status = deploy_state(r, state, drop, ndrop, write, data, &version, err, sizeof err);
    char detail[64];
    snprintf(detail, sizeof detail, "version %" PRIu64, version);
    audit(r, status ? status : 200, status ? err : detail);
    if (status == 0)
        return true;
    ow_error(r->req, status, "%s%s", status == 400 ? "The request content was malformed: " : "", err);
    return false;
}

/* Deploys state (taken) dropping the functions' directories in drop, and
 * answers 200 with shown (taken) once it is live (deploy answered a
 * failure). */
static void deploy_answer(ow_req_t *r, json_t *state, const char *const *drop, size_t ndrop, json_t *shown)
{
    if (deploy(r, state, drop, ndrop, NULL, NULL))
        gw__send_json(r->req, 200, shown);
    else
        json_decref(shown);
    json_decref(state);
}

/* ------------------------------------------------------------ entities */

/* The action `name` of the state, or NULL. */
static json_t *action_of(const json_t *state, const char *name)
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

/* An action as OpenWhisk shows it; with its code when `code`. */
static json_t *action_json(const ow_req_t *r, const char *name, const json_t *a, bool code)
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

/* The name in the path: one segment, or package/action. False (400 sent)
 * when a segment is not an OpenWhisk name. */
static bool entity_name(h2o_req_t *req, char **seg, size_t n, char *out, size_t outlen)
{
    for (size_t i = 0; i < n; i++)
        if (!gw_ow_name_valid(seg[i], strlen(seg[i]))) {
            ow_error(req, 400, "The request content was malformed: '%s' is not a valid name (letters, digits, "
                               "'_', '@', '.', '-' and spaces, 1..256).", seg[i]);
            return false;
        }
    snprintf(out, outlen, n == 2 ? "%s/%s" : "%s", seg[0], n == 2 ? seg[1] : "");
    return true;
}

/* An action name given in a sequence's components: "/ns/name",
 * "/ns/pkg/name", "name" or "pkg/name" in this namespace. NULL when it is
 * another namespace's. */
static const char *component_name(const ow_req_t *r, const char *c)
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
                                          : write_action(adir, f->kind, f->fn, f->main, f->code, f->binary, f->max,
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
        ow_error(req, 400, "The request content was malformed: limits must be an object.");
        return NULL;
    }
    if (t && (!json_is_integer(t) || json_integer_value(t) < 100 || json_integer_value(t) > 900000)) {
        ow_error(req, 400, "The request content was malformed: limits.timeout must be milliseconds in 100..900000.");
        return NULL;
    }
    if (m && (!json_is_integer(m) || json_integer_value(m) < 16 || json_integer_value(m) > 10240)) {
        ow_error(req, 400, "The request content was malformed: limits.memory must be megabytes in 16..10240.");
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
        ow_error(req, 400, "The request content was malformed: %s must be an array of {\"key\", \"value\"}.", field);
        return NULL;
    }
    return json_deep_copy(v);
}

/* PUT /namespaces/NS/actions/NAME[?overwrite=true] */
static void action_put(ow_req_t *r, const char *name)
{
    h2o_req_t *req = r->req;
    json_t *body = body_object(req);
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
            ow_error(req, 404, "The requested resource does not exist: no package '%.*s' in namespace %s.",
                     (int)(slash - name), name, r->ns);
            goto out;
        }
    }
    if (old && !query_true(req, "overwrite")) {
        ow_error(req, 409, "resource already exists: action '%s' (PUT with ?overwrite=true to update it).", name);
        goto out;
    }
    json_t *exec = json_object_get(body, "exec");
    if (exec == NULL && old == NULL) {
        ow_error(req, 400, "The request content was malformed: exec undefined (an action needs exec.kind and "
                           "exec.code, or exec.components for a sequence).");
        goto out;
    }
    if (exec && !json_is_object(exec)) {
        ow_error(req, 400, "The request content was malformed: exec must be an object.");
        goto out;
    }
    const char *kind = exec ? json_string_value(json_object_get(exec, "kind"))
                            : json_string_value(json_object_get(old, "kind"));
    gw_ow_kind_t k = gw_ow_kind_parse(kind);
    if (k == GW_OW_KIND_UNKNOWN) {
        ow_error(req, 400,
                 "The request content was malformed: kind '%s' is not supported (supported: lua, python:3, "
                 "nodejs:*, blackbox, native, sequence).",
                 kind ? kind : "(none)");
        goto out;
    }
    json_t *image = json_object_get(exec, "image");
    if (k == GW_OW_KIND_BLACKBOX && image && !(json_is_string(image) && strncmp(json_string_value(image),
                                                                                "openwhisk/dockerskeleton", 24) == 0)) {
        ow_error(req, 400, "The request content was malformed: docker images are not supported (only the "
                           "openwhisk/dockerskeleton contract: an 'exec' program in exec.code).");
        goto out;
    }
    const char *main = json_string_value(json_object_get(exec, "main"));
    if (main == NULL)
        main = exec ? "main" : json_string_value(json_object_get(old, "main"));
    if (main == NULL)
        main = "main";
    if (!main_valid(main)) {
        ow_error(req, 400, "The request content was malformed: exec.main '%s' is not an identifier.", main);
        goto out;
    }
    json_t *code = json_object_get(exec, "code");
    json_t *components = NULL;
    if (exec && k == GW_OW_KIND_SEQUENCE) {
        components = json_object_get(exec, "components");
        if (!json_is_array(components) || json_array_size(components) == 0 ||
            json_array_size(components) > OW_MAX_SEQUENCE) {
            ow_error(req, 400, "The request content was malformed: a sequence needs exec.components, 1..%d action "
                               "names.", OW_MAX_SEQUENCE);
            goto out;
        }
        size_t i;
        json_t *c;
        json_array_foreach(components, i, c)
        {
            const char *cn = json_is_string(c) ? component_name(r, json_string_value(c)) : NULL;
            json_t *ca = cn ? action_of(r->state, cn) : NULL;
            if (ca == NULL || strcmp(cn, name) == 0) {
                ow_error(req, 400, "The request content was malformed: sequence component %s is not an action of "
                                   "namespace %s.",
                         json_is_string(c) ? json_string_value(c) : "(not a string)", r->ns);
                goto out;
            }
            if (gw_ow_kind_parse(json_string_value(json_object_get(ca, "kind"))) == GW_OW_KIND_SEQUENCE) {
                ow_error(req, 400, "The request content was malformed: sequence component %s is a sequence itself "
                                   "(not supported: list its actions instead).", json_string_value(c));
                goto out;
            }
        }
    } else if (exec && (!json_is_string(code) || json_string_length(code) == 0)) {
        ow_error(req, 400, "The request content was malformed: exec.code must be a non-empty string.");
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
    if (deploy(r, state, drop, exec ? 1 : 0, new_code ? write_action_files : NULL, &files)) {
        json_decref(r->state);
        r->state = state;
        /* The answer shows the code as sent (the live version is the new one
         * only after the reload that deploy did: read it again). */
        if (r->v)
            reg_app_version_release(r->v);
        r->v = reg_live_get(r->gw->live, r->app, strlen(r->app));
        if (r->v)
            reg_app_version_retain(r->v);
        gw__send_json(req, 200, action_json(r, name, a, false));
    } else {
        json_decref(state);
    }
out:
    json_decref(body);
}

/* GET list of a kind of entity, with limit and skip. */
static void list_entities(ow_req_t *r, const char *what, json_t *(*show)(const ow_req_t *, const char *,
                                                                           const json_t *, bool))
{
    char *l = gw__query_param(r->req, "limit"), *s = gw__query_param(r->req, "skip");
    long limit, skip;
    bool ok = gw_ow_count(l, 200, 30, &limit) && gw_ow_count(s, 1000000, 0, &skip);
    free(l);
    free(s);
    if (!ok) {
        ow_error(r->req, 400, "The request content was malformed: limit must be 0..200 and skip a count.");
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

/* The functions of actions removed from the state, for deploy's drop. */
static void action_delete(ow_req_t *r, const char *name)
{
    json_t *a = action_of(r->state, name);
    if (a == NULL) {
        ow_error(r->req, 404, "The requested resource does not exist: no action '%s' in namespace %s.", name, r->ns);
        return;
    }
    /* Sequences and rules naming it would break: refused, as a conflict. */
    const char *other;
    json_t *e;
    json_object_foreach(json_object_get(r->state, "rules"), other, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "action")), name) == 0) {
            ow_error(r->req, 409, "action '%s' is used by rule '%s': delete the rule first.", name, other);
            return;
        }
    }
    json_t *shown = action_json(r, name, a, false);
    json_t *state = json_deep_copy(r->state);
    const char *drop[] = {json_string_value(json_object_get(a, "fn"))};
    char fn[32];
    snprintf(fn, sizeof fn, "%s", drop[0] ? drop[0] : "");
    drop[0] = fn;
    json_object_del(json_object_get(state, "actions"), name);
    deploy_answer(r, state, drop, 1, shown);
}

/* ------------------------------------------------------------ invoke */

typedef struct ow_call ow_call_t;

/* A request waiting for a call: dropped when the client goes away. */
typedef struct {
    ow_call_t *call;
} ow_waiter_t;

/* One activation under way: an action's call, or each action of a
 * sequence in turn. Freed when it ended and its timer closed. */
struct ow_call {
    gw_server_t *gw;
    h2o_req_t *req;       /* NULL once answered or gone */
    ow_waiter_t *waiter;  /* in req's pool */
    reg_app_version_t *v; /* a reference */
    inv_call_t *call;
    uv_timer_t timer;
    char id[33];
    char *ns, *app, *name, *kind, *subject;
    json_t *limits;
    json_t *sequence; /* the components' names, NULL for an action */
    size_t step;
    json_t *steps_logs; /* a sequence's logs: its components' activation ids */
    json_t *params;     /* the next step's input */
    uint64_t start_ms;
    uint64_t queued_ns;
    bool blocking, result_only, web;
    const char *web_ext;
    bool ended;
};

static void call_answer(ow_call_t *c, json_t *activation);

static void on_call_timer_closed(uv_handle_t *h)
{
    ow_call_t *c = container_of((uv_timer_t *)h, ow_call_t, timer);
    reg_app_version_release(c->v);
    free(c->ns);
    free(c->app);
    free(c->name);
    free(c->kind);
    free(c->subject);
    json_decref(c->limits);
    json_decref(c->sequence);
    json_decref(c->steps_logs);
    json_decref(c->params);
    free((char *)c->web_ext);
    free(c);
}

static void call_end(ow_call_t *c)
{
    c->ended = true;
    if (c->waiter)
        c->waiter->call = NULL;
    c->waiter = NULL;
    c->req = NULL;
    uv_close((uv_handle_t *)&c->timer, on_call_timer_closed);
}

static void on_waiter_dispose(void *p)
{
    ow_waiter_t *w = p;
    if (w->call) {
        w->call->req = NULL; /* the call runs on; its result is kept */
        w->call->waiter = NULL;
    }
}

/* The blocking wait is over: 202 with the activation id, as OpenWhisk. */
static void on_blocking_timeout(uv_timer_t *t)
{
    ow_call_t *c = container_of(t, ow_call_t, timer);
    if (c->req) {
        h2o_req_t *req = c->req;
        c->req = NULL;
        if (c->waiter)
            c->waiter->call = NULL;
        c->waiter = NULL;
        gw__send_json(req, 202, json_pack("{s:s}", "activationId", c->id));
    }
}

static int call_step(ow_call_t *c);

/* A call's end as a record billing would write (without logs). */
static json_t *record_of(const ow_call_t *c, const inv_result_t *res)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:i}", "id", res->invocation_id, "start_ms",
                     (json_int_t)c->start_ms, "version", (json_int_t)c->v->version, "duration_us",
                     (json_int_t)(res->duration_ns / 1000), "queued_us", (json_int_t)(res->queued_ns / 1000), "cold",
                     res->cold, "cold_start_us", (json_int_t)(res->cold_start_ns / 1000), "memory_mb",
                     json_integer_value(json_object_get(c->limits, "memory")), "timeout_ms",
                     json_integer_value(json_object_get(c->limits, "timeout")), "status", res->status);
}

static void on_called(void *data, const inv_result_t *res)
{
    ow_call_t *c = data;
    c->call = NULL;
    uint32_t timeout = (uint32_t)json_integer_value(json_object_get(c->limits, "timeout"));
    json_t *resp = gw_ow_response(res->code, res->status, res->body, res->body_len, res->error, timeout);
    if (c->sequence == NULL) {
        json_t *rec = record_of(c, res);
        gw_ow_act_info_t info = {c->ns, c->name, c->kind, c->subject, resp, c->limits, NULL};
        json_t *act = gw_ow_activation(rec, &info);
        json_decref(rec);
        json_decref(resp);
        keep_activation(c->app, act);
        call_answer(c, act);
        json_decref(act);
        return;
    }
    /* A sequence: the step's activation is kept as its own, and its result
     * is the next step's input (OpenWhisk passes it on as is). */
    json_t *rec = record_of(c, res);
    json_t *step_action = json_array_get(c->sequence, c->step);
    gw_ow_act_info_t info = {c->ns, json_string_value(step_action), NULL, c->subject, resp, NULL, c->id};
    json_t *act = gw_ow_activation(rec, &info);
    json_decref(rec);
    keep_activation(c->app, act);
    json_decref(act);
    json_array_append_new(c->steps_logs, json_string(res->invocation_id));
    bool ok = json_is_true(json_object_get(resp, "success"));
    c->step++;
    if (ok && c->step < json_array_size(c->sequence)) {
        json_decref(c->params);
        c->params = json_incref(json_object_get(resp, "result"));
        json_decref(resp);
        if (call_step(c) == 0)
            return;
        resp = json_pack("{s:s, s:i, s:b, s:{s:s}}", "status", "whisk internal error", "statusCode", 3, "success", 0,
                         "result", "error", "a component of the sequence could not be invoked");
    }
    uint64_t end = tine_now_unix_ms();
    json_t *seq = json_pack("{s:s, s:I, s:I, s:I, s:i, s:i}", "id", c->id, "start_ms", (json_int_t)c->start_ms,
                            "version", (json_int_t)c->v->version, "duration_us",
                            (json_int_t)((end - c->start_ms) * 1000), "memory_mb", 0, "timeout_ms", 0);
    gw_ow_act_info_t sinfo = {c->ns, c->name, "sequence", c->subject, resp, c->limits, NULL};
    json_t *sact = gw_ow_activation(seq, &sinfo);
    json_decref(seq);
    json_decref(resp);
    json_object_set(sact, "logs", c->steps_logs);
    keep_activation(c->app, sact);
    call_answer(c, sact);
    json_decref(sact);
}

/* Starts the call of the current action (of the sequence's step). Returns 0
 * or an error code (nothing started). */
static int call_step(ow_call_t *c)
{
    const char *name = c->sequence ? json_string_value(json_array_get(c->sequence, c->step)) : c->name;
    json_error_t jerr;
    json_t *state = state_of(c->v, &jerr);
    json_t *a = action_of(state, name);
    const char *fn = json_string_value(json_object_get(a, "fn"));
    const reg_manifest_t *m = c->v->manifest;
    size_t idx = SIZE_MAX;
    for (size_t i = 0; fn && i < m->functions_len; i++)
        if (strcmp(m->functions[i].name, fn) == 0)
            idx = i;
    if (idx == SIZE_MAX) {
        json_decref(state);
        return TINE_ENOTFOUND;
    }
    json_t *params = gw_ow_merge_params(json_object_get(a, "parameters"), c->params);
    if (c->sequence && c->step > 0) {
        json_decref(c->limits);
        c->limits = json_incref(json_object_get(a, "limits"));
    }
    json_decref(state);
    json_t *request = json_pack("{s:s, s:o}", "kind", "event", "event", params);
    return inv_call(c->gw->inv, c->v, idx, request, NULL, 0, on_called, c, &c->call);
}

/* A call of action `name` (a) of r's namespace with params (taken), not
 * started. */
static ow_call_t *call_new(const ow_req_t *r, const char *name, const json_t *a, json_t *params)
{
    ow_call_t *c = xcalloc(1, sizeof *c);
    c->gw = r->gw;
    c->v = r->v;
    reg_app_version_retain(c->v);
    c->ns = xstrdup(r->ns);
    c->app = xstrdup(r->app);
    c->name = xstrdup(name);
    c->kind = xstrdup(json_string_value(json_object_get(a, "kind")));
    c->subject = xstrdup(r->caller.id ? r->caller.id : r->ns);
    c->limits = json_incref(json_object_get(a, "limits"));
    c->params = params;
    c->start_ms = tine_now_unix_ms();
    uv_timer_init(r->gw->loop, &c->timer);
    if (gw_ow_kind_parse(c->kind) == GW_OW_KIND_SEQUENCE) {
        c->sequence = json_array();
        c->steps_logs = json_array();
        size_t i;
        json_t *comp;
        json_array_foreach(json_object_get(a, "components"), i, comp)
        {
            const char *cn = component_name(r, json_string_value(comp));
            json_array_append_new(c->sequence, json_string(cn ? cn : ""));
        }
        random_id(c->id);
        json_t *la = action_of(r->state, json_string_value(json_array_get(c->sequence, 0)));
        json_decref(c->limits);
        c->limits = json_incref(json_object_get(la, "limits"));
    }
    return c;
}

/* Starts the call's first action; its id is known then. Returns 0 or an
 * error code (nothing started: end it with call_end). */
static int call_start(ow_call_t *c)
{
    int rc = call_step(c);
    if (rc == 0 && c->sequence == NULL)
        snprintf(c->id, sizeof c->id, "%s", inv_call_id(c->call));
    return rc;
}

/* Starts an activation of action `name` (a) with params (taken). The call
 * answers req when blocking (or web), else 202 with its id at once. */
static void invoke(ow_req_t *r, const char *name, const json_t *a, json_t *params, bool blocking, bool result_only,
                   const char *web_ext)
{
    ow_call_t *c = call_new(r, name, a, params);
    c->blocking = blocking || web_ext;
    c->result_only = result_only;
    c->web = web_ext != NULL;
    c->web_ext = web_ext ? xstrdup(web_ext) : NULL;
    int rc = call_start(c);
    if (rc != 0) {
        ow_error(r->req, rc == TINE_EBUSY ? 429 : 503, "%s: cannot invoke %s: %s",
                 rc == TINE_EBUSY ? "Too many requests" : "Whisk internal error", name, tine_strerror(rc));
        call_end(c);
        return;
    }
    if (!c->blocking) {
        gw__send_json(r->req, 202, json_pack("{s:s}", "activationId", c->id));
        return;
    }
    c->req = r->req;
    c->waiter = h2o_mem_alloc_shared(&r->req->pool, sizeof *c->waiter, on_waiter_dispose);
    c->waiter->call = c;
    uv_timer_start(&c->timer, on_blocking_timeout, OW_BLOCKING_MS, 0);
}

/* A web action's answer from its result (OpenWhisk's extensions). */
static void web_answer(h2o_req_t *req, const char *ext, json_t *activation)
{
    json_t *resp = json_object_get(activation, "response");
    json_t *result = json_object_get(resp, "result");
    if (!json_is_true(json_object_get(resp, "success"))) {
        ow_error(req, json_integer_value(json_object_get(resp, "statusCode")) == 1 ? 400 : 502, "%s",
                 json_string_value(json_object_get(result, "error")) ? json_string_value(json_object_get(result, "error"))
                                                                     : "The action did not produce a valid response.");
        return;
    }
    if (strcmp(ext, "json") == 0) {
        gw__send_json(req, 200, json_incref(result));
        return;
    }
    if (strcmp(ext, "text") == 0 || strcmp(ext, "html") == 0) {
        json_t *v = json_object_get(result, ext);
        if (!json_is_string(v)) {
            ow_error(req, 400, "The action did not produce a valid response: no string '%s' in its result.", ext);
            return;
        }
        req->res.status = 200;
        req->res.reason = "OK";
        const char *ct = strcmp(ext, "html") == 0 ? "text/html; charset=utf-8" : "text/plain; charset=utf-8";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
        gw__send_body(req, json_string_value(v), json_string_length(v));
        return;
    }
    /* http: {statusCode, headers, body} */
    json_t *sc = json_object_get(result, "statusCode"), *headers = json_object_get(result, "headers");
    json_t *body = json_object_get(result, "body");
    int status = sc ? (int)json_integer_value(sc) : body ? 200 : 204;
    if (status < 200 || status > 599 || (headers && !json_is_object(headers))) {
        ow_error(req, 502, "The action did not produce a valid response: statusCode must be 200..599 and headers "
                           "an object.");
        return;
    }
    req->res.status = status;
    req->res.reason = gw__reason(status);
    bool has_ct = false;
    const char *hn;
    json_t *hv;
    json_object_foreach(headers, hn, hv)
    {
        if (!json_is_string(hv) && !json_is_number(hv))
            continue;
        char *val = json_is_string(hv) ? xstrdup(json_string_value(hv)) : json_dumps(hv, JSON_ENCODE_ANY);
        size_t nl = strlen(hn), vl = strlen(val);
        if (tine_http_token(hn, nl) && strcspn(val, "\r\n") == vl) {
            h2o_iovec_t name = h2o_strdup(&req->pool, hn, nl);
            h2o_strtolower(name.base, name.len);
            has_ct = has_ct || strcmp(name.base, "content-type") == 0;
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0, NULL,
                                  h2o_strdup(&req->pool, val, vl).base, vl);
        }
        free(val);
    }
    if (json_is_string(body)) {
        if (!has_ct)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("text/html; charset=utf-8"));
        gw__send_body(req, json_string_value(body), json_string_length(body));
    } else if (body) {
        char *text = json_dumps(body, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!has_ct)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("application/json"));
        gw__send_body(req, text, strlen(text));
        free(text);
    } else {
        gw__send_body(req, "", 0);
    }
}

static void call_answer(ow_call_t *c, json_t *activation)
{
    h2o_req_t *req = c->req;
    call_end(c);
    if (req == NULL)
        return;
    if (c->web) {
        web_answer(req, c->web_ext, activation);
        return;
    }
    json_t *resp = json_object_get(activation, "response");
    int status = json_is_true(json_object_get(resp, "success")) ? 200
                 : json_integer_value(json_object_get(resp, "statusCode")) == 3 ? 500
                                                                                : 502;
    gw__send_json(req, status, json_incref(c->result_only ? json_object_get(resp, "result") : activation));
}

/* POST /namespaces/NS/actions/NAME[?blocking=true][&result=true] */
static void action_invoke(ow_req_t *r, const char *name)
{
    json_t *a = action_of(r->state, name);
    if (a == NULL) {
        ow_error(r->req, 404, "The requested resource does not exist: no action '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = body_object(r->req);
    if (body == NULL)
        return;
    invoke(r, name, a, body, query_true(r->req, "blocking"), query_true(r->req, "result"), NULL);
}

/* ------------------------------------------------------------ activations */

/* The action name of function fn in the state ("" when none has it now). */
static const char *name_of_fn(const json_t *state, const char *fn)
{
    const char *name;
    json_t *a;
    json_object_foreach(json_object_get(state, "actions"), name, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "fn")), fn) == 0)
            return name;
    }
    return fn;
}

/* A billing record in OpenWhisk's shape, with what this node kept of it. */
static json_t *activation_of_record(const ow_req_t *r, const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    json_t *k = id ? kept_activation(r->app, id) : NULL;
    const char *name = name_of_fn(r->state, json_string_value(json_object_get(rec, "function")));
    json_t *a = action_of(r->state, name);
    gw_ow_act_info_t info = {r->ns,
                             k ? json_string_value(json_object_get(k, "name")) : name,
                             json_string_value(json_object_get(a, "kind")),
                             k ? json_string_value(json_object_get(k, "subject")) : NULL,
                             k ? json_object_get(k, "response") : NULL,
                             NULL,
                             k ? json_string_value(json_object_get(k, "cause")) : NULL};
    json_t *act = gw_ow_activation(rec, &info);
    if (k) {
        /* The kept one knows the action's kind and limits as they were. */
        json_object_set(act, "annotations", json_object_get(k, "annotations"));
        json_object_set(act, "namespace", json_object_get(k, "namespace"));
    }
    return act;
}

/* Finds an activation: billing's record (with its logs), completed with the
 * kept result; or only the kept one while its record is still on its way
 * (billing writes in batches). NULL with 404/503 sent. */
static json_t *find_activation(ow_req_t *r, const char *id)
{
    json_t *rec = NULL;
    char err[256];
    int rc = r->gw->bill ? bill_activation(r->gw->bill, id, &rec, err, sizeof err) : TINE_ENOTFOUND;
    if (rc == 0 && strcmp(json_string_value(json_object_get(rec, "app")), r->app) != 0) {
        json_decref(rec);
        rec = NULL;
        rc = TINE_ENOTFOUND;
    }
    if (rc == 0) {
        json_t *act = activation_of_record(r, rec);
        json_decref(rec);
        return act;
    }
    json_t *k = kept_activation(r->app, id);
    if (k)
        return json_deep_copy(k);
    if (rc == TINE_EREDIS)
        ow_error(r->req, 503, "Whisk internal error: %s", err);
    else
        ow_error(r->req, 404, "The requested resource does not exist: no activation '%s' in namespace %s.", id,
                 r->ns);
    return NULL;
}

/* GET /namespaces/NS/activations[?name][&limit][&skip][&since][&upto][&docs] */
static void activations_list(ow_req_t *r)
{
    char *l = gw__query_param(r->req, "limit"), *s = gw__query_param(r->req, "skip");
    char *since_s = gw__query_param(r->req, "since"), *upto_s = gw__query_param(r->req, "upto");
    char *name = gw__query_param(r->req, "name");
    long limit, skip, since, upto;
    bool ok = gw_ow_count(l, 200, 30, &limit) && gw_ow_count(s, 100000, 0, &skip) &&
              gw_ow_count(since_s, LONG_MAX, 0, &since) && gw_ow_count(upto_s, LONG_MAX, LONG_MAX, &upto);
    bool docs = query_true(r->req, "docs");
    free(l);
    free(s);
    free(since_s);
    free(upto_s);
    if (!ok) {
        ow_error(r->req, 400, "The request content was malformed: limit must be 0..200, skip a count, since and "
                              "upto milliseconds since the epoch.");
        free(name);
        return;
    }
    if (limit == 0)
        limit = 200;
    char *decoded = name ? gw__percent_decode(name, strlen(name)) : NULL;
    free(name);
    const char *fn = NULL;
    if (decoded) {
        json_t *a = action_of(r->state, decoded);
        fn = a ? json_string_value(json_object_get(a, "fn")) : "-";
    }
    json_t *list = NULL;
    char err[256];
    size_t want = (size_t)(skip + limit);
    if (since || upto != LONG_MAX)
        want = 10000; /* filtered below by time */
    bill_filter_t filter = {.fn = fn, .cold = -1};
    if (r->gw->bill == NULL || bill_activations(r->gw->bill, r->app, &filter, want, &list, err, sizeof err) != 0) {
        ow_error(r->req, 503, "Whisk internal error: %s", r->gw->bill ? err : "activation records are off");
        free(decoded);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    long seen = 0;
    json_array_foreach(json_object_get(list, "activations"), i, rec)
    {
        json_int_t start = json_integer_value(json_object_get(rec, "start_ms"));
        if (start < since || start > upto || strcmp(json_string_value(json_object_get(rec, "function")), "_ow") == 0)
            continue;
        if (seen++ < skip)
            continue;
        if ((long)json_array_size(out) >= limit)
            break;
        json_t *act = activation_of_record(r, rec);
        if (!docs) {
            json_object_del(act, "logs");
            json_object_del(json_object_get(act, "response"), "result");
        }
        json_array_append_new(out, act);
    }
    json_decref(list);
    free(decoded);
    gw__send_json(r->req, 200, out);
}

/* ------------------------------------------------------------ triggers, rules, packages */

/* A trigger, rule or package as OpenWhisk shows it. */
static json_t *entity_json(const ow_req_t *r, const char *name, const json_t *e, bool full)
{
    (void)full;
    json_t *o = json_deep_copy(e);
    entity_names(r, name, o);
    json_object_set_new(o, "publish", json_false());
    if (json_object_get(o, "version") == NULL)
        json_object_set_new(o, "version", json_string("0.0.1"));
    return o;
}

/* Wraps action_json for list_entities. */
static json_t *action_listed(const ow_req_t *r, const char *name, const json_t *a, bool code)
{
    return action_json(r, name, a, code);
}

/* The rules entry shown by OpenWhisk: trigger and action as {"name","path"}. */
static json_t *rule_json(const ow_req_t *r, const char *name, const json_t *e, bool full)
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
    return s ? component_name(r, s) : NULL;
}

/* PUT of a trigger, rule or package; `what` says which. */
static void entity_put(ow_req_t *r, const char *what, const char *name)
{
    json_t *body = body_object(r->req);
    if (body == NULL)
        return;
    json_t *all = json_object_get(r->state, what);
    json_t *old = json_object_get(all, name);
    json_t *e = NULL;
    if (old && !query_true(r->req, "overwrite")) {
        ow_error(r->req, 409, "resource already exists: %.*s '%s' (PUT with ?overwrite=true to update it).",
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
            ow_error(r->req, 400, "The request content was malformed: a rule needs a trigger and an action of "
                                  "namespace %s.", r->ns);
            goto out;
        }
        if (json_object_get(json_object_get(r->state, "triggers"), t) == NULL || action_of(r->state, a) == NULL) {
            ow_error(r->req, 404, "The requested resource does not exist: no %s '%s' in namespace %s.",
                     action_of(r->state, a) ? "trigger" : "action", action_of(r->state, a) ? t : a, r->ns);
            goto out;
        }
        e = json_pack("{s:s, s:s, s:s}", "trigger", t, "action", a, "status",
                      old ? json_string_value(json_object_get(old, "status")) : "active");
    } else {
        e = json_object();
        if (strcmp(what, "packages") == 0 && strchr(name, '/')) {
            ow_error(r->req, 400, "The request content was malformed: package names have one segment.");
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
    if (deploy(r, state, NULL, 0, NULL, NULL))
        gw__send_json(r->req, 200, strcmp(what, "rules") == 0 ? rule_json(r, name, e, true)
                                                              : entity_json(r, name, e, true));
    json_decref(state);
    json_decref(e);
out:
    json_decref(body);
}

static void entity_delete(ow_req_t *r, const char *what, const char *name)
{
    json_t *e = json_object_get(json_object_get(r->state, what), name);
    if (e == NULL) {
        ow_error(r->req, 404, "The requested resource does not exist: no %.*s '%s' in namespace %s.",
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
                ow_error(r->req, 409, "trigger '%s' is used by rule '%s': delete the rule first.", name, other);
                return;
            }
        }
    if (strcmp(what, "packages") == 0)
        json_object_foreach(json_object_get(r->state, "actions"), other, o)
        {
            if (strncmp(other, name, strlen(name)) == 0 && other[strlen(name)] == '/') {
                ow_error(r->req, 409, "package '%s' holds action '%s': delete its actions first.", name, other);
                return;
            }
        }
    json_t *shown = strcmp(what, "rules") == 0 ? rule_json(r, name, e, true) : entity_json(r, name, e, true);
    json_t *state = json_deep_copy(r->state);
    json_object_del(json_object_get(state, what), name);
    deploy_answer(r, state, NULL, 0, shown);
}

/* POST /namespaces/NS/rules/NAME {"status": "active"|"inactive"} */
static void rule_status(ow_req_t *r, const char *name)
{
    json_t *e = json_object_get(json_object_get(r->state, "rules"), name);
    if (e == NULL) {
        ow_error(r->req, 404, "The requested resource does not exist: no rule '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = body_object(r->req);
    if (body == NULL)
        return;
    const char *status = json_string_value(json_object_get(body, "status"));
    if (status == NULL || (strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0)) {
        ow_error(r->req, 400, "The request content was malformed: status must be \"active\" or \"inactive\".");
        json_decref(body);
        return;
    }
    json_t *state = json_deep_copy(r->state);
    json_t *ne = json_object_get(json_object_get(state, "rules"), name);
    bool same = strcmp(json_string_value(json_object_get(ne, "status")), status) == 0;
    json_object_set_new(ne, "status", json_string(status));
    json_object_set_new(ne, "updated", json_integer((json_int_t)tine_now_unix_ms()));
    if (same || deploy(r, state, NULL, 0, NULL, NULL))
        gw__send_json(r->req, 200, json_object());
    json_decref(state);
    json_decref(body);
}

/* POST /namespaces/NS/triggers/NAME: fires its active rules' actions (not
 * blocking); answers the trigger's activation id (202), or 204 when no
 * rule of it is active, as OpenWhisk. */
static void trigger_fire(ow_req_t *r, const char *name)
{
    json_t *t = json_object_get(json_object_get(r->state, "triggers"), name);
    if (t == NULL) {
        ow_error(r->req, 404, "The requested resource does not exist: no trigger '%s' in namespace %s.", name, r->ns);
        return;
    }
    json_t *body = body_object(r->req);
    if (body == NULL)
        return;
    json_t *payload = gw_ow_merge_params(json_object_get(t, "parameters"), body);
    json_decref(body);
    json_t *logs = json_array();
    const char *rname;
    json_t *rule;
    int active = 0;
    /* The actions are answered as started; each keeps its own activation. */
    h2o_req_t *req = r->req;
    json_object_foreach(json_object_get(r->state, "rules"), rname, rule)
    {
        if (strcmp(json_string_value(json_object_get(rule, "trigger")), name) != 0 ||
            strcmp(json_string_value(json_object_get(rule, "status")), "active") != 0)
            continue;
        active++;
        const char *an = json_string_value(json_object_get(rule, "action"));
        json_t *a = action_of(r->state, an);
        json_t *ids = json_pack("{s:b, s:s, s:s, s:s}", "success", a != NULL, "rule", rname, "action", an,
                                "activationId", "");
        if (a) {
            ow_call_t *call = call_new(r, an, a, json_deep_copy(payload));
            if (call_start(call) != 0) {
                json_object_set_new(ids, "success", json_false());
                json_object_set_new(ids, "error", json_string("the action could not be invoked"));
                call_end(call);
            } else {
                json_object_set_new(ids, "activationId", json_string(call->id));
            }
        }
        char *line = json_dumps(ids, JSON_COMPACT);
        json_array_append_new(logs, json_string(line));
        free(line);
        json_decref(ids);
    }
    json_decref(payload);
    if (active == 0) {
        json_decref(logs);
        req->res.status = 204;
        req->res.reason = "No Content";
        gw__send_body(req, "", 0);
        return;
    }
    char id[33];
    random_id(id);
    json_t *rec = json_pack("{s:s, s:I, s:I, s:I}", "id", id, "start_ms", (json_int_t)tine_now_unix_ms(), "version",
                            r->v ? (json_int_t)r->v->version : 0, "duration_us", 0);
    json_t *resp = json_pack("{s:s, s:i, s:b, s:{}}", "status", "success", "statusCode", 0, "success", 1, "result");
    gw_ow_act_info_t info = {r->ns, name, "trigger", r->caller.id, resp, NULL, NULL};
    json_t *act = gw_ow_activation(rec, &info);
    json_object_set_new(act, "logs", logs);
    keep_activation(r->app, act);
    json_decref(act);
    json_decref(rec);
    json_decref(resp);
    gw__send_json(req, 202, json_pack("{s:s}", "activationId", id));
}

/* ------------------------------------------------------------ web actions */

/* GET|POST|... /api/v1/web/NS/PKG/ACTION[.ext][/rest]: the action annotated
 * web-export, called with the request as __ow_* parameters. Public, as in
 * OpenWhisk: the namespace's app is found without a key. */
static void web(gw_server_t *gw, h2o_req_t *req, char **seg, size_t n)
{
    if (n < 4) {
        ow_error(req, 404, "The requested resource does not exist: use /api/v1/web/NAMESPACE/PACKAGE/ACTION.");
        return;
    }
    ow_req_t r = {.gw = gw, .req = req};
    r.caller = (gw_caller_t){GW_ROLE_INVOKER, NULL, NULL, NULL, NULL};
    if (!reg_name_valid(seg[1]) || strlen(seg[1]) > 60) {
        ow_error(req, 404, "The requested resource does not exist: no namespace '%s'.", seg[1]);
        return;
    }
    snprintf(r.ns, sizeof r.ns, "%s", seg[1]);
    snprintf(r.app, sizeof r.app, OW_APP_PREFIX "%s", seg[1]);
    if (!load_state(&r))
        goto out;
    char *act = seg[3];
    char *dot = strrchr(act, '.');
    const char *ext = "http";
    if (dot && (strcmp(dot + 1, "json") == 0 || strcmp(dot + 1, "http") == 0 || strcmp(dot + 1, "html") == 0 ||
                strcmp(dot + 1, "text") == 0)) {
        ext = dot + 1;
        *dot = '\0';
    }
    char name[600];
    if (strcmp(seg[2], "default") == 0)
        snprintf(name, sizeof name, "%s", act);
    else
        snprintf(name, sizeof name, "%s/%s", seg[2], act);
    json_t *a = action_of(r.state, name);
    json_t *exported = a ? gw_ow_kv_get(json_object_get(a, "annotations"), "web-export") : NULL;
    if (a == NULL || !json_is_true(exported)) {
        ow_error(req, 404, "The requested resource does not exist: no web action '%s' in namespace %s.", name, r.ns);
        goto out;
    }
    json_t *params = json_object();
    /* The query's parameters, then a JSON object body's, as OpenWhisk. */
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            if (amp == NULL)
                amp = end;
            const char *eq = memchr(q, '=', (size_t)(amp - q));
            char *k = gw__percent_decode(q, (size_t)((eq ? eq : amp) - q));
            char *v = eq ? gw__percent_decode(eq + 1, (size_t)(amp - eq - 1)) : xstrdup("");
            if (*k && tine_utf8_valid(k, strlen(k)) && tine_utf8_valid(v, strlen(v)))
                json_object_set_new(params, k, json_string(v));
            free(k);
            free(v);
            q = amp + 1;
        }
    }
    json_t *headers = json_object();
    bool json_body = false;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name == &H2O_TOKEN_AUTHORIZATION->buf)
            continue;
        char *hn = xstrndup(h->name->base, h->name->len), *hv = xstrndup(h->value.base, h->value.len);
        if (tine_utf8_valid(hv, strlen(hv)))
            json_object_set_new(headers, hn, json_string(hv));
        if (strcmp(hn, "content-type") == 0 && strncmp(hv, "application/json", 16) == 0)
            json_body = true;
        free(hn);
        free(hv);
    }
    if (req->entity.len) {
        json_t *b = json_body ? json_loadb(req->entity.base, req->entity.len, 0, NULL) : NULL;
        if (json_is_object(b))
            json_object_update(params, b);
        else if (tine_utf8_valid(req->entity.base, req->entity.len))
            json_object_set_new(params, "__ow_body", json_stringn(req->entity.base, req->entity.len));
        json_decref(b);
    }
    char *method = xstrndup(req->method.base, req->method.len);
    for (char *p = method; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    json_object_set_new(params, "__ow_method", json_string(method));
    free(method);
    json_object_set_new(params, "__ow_headers", headers);
    tine_buf_t rest;
    tine_buf_init(&rest);
    for (size_t i = 4; i < n; i++) {
        tine_buf_append(&rest, "/", 1);
        tine_buf_append(&rest, seg[i], strlen(seg[i]));
    }
    json_object_set_new(params, "__ow_path", json_stringn(rest.len ? rest.data : "", rest.len));
    tine_buf_dispose(&rest);
    const char *qs = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t qlen = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    json_object_set_new(params, "__ow_query", json_stringn(qs, qlen));
    invoke(&r, name, a, params, true, false, ext);
out:
    ow_req_dispose(&r);
}

/* ------------------------------------------------------------ routing */

/* Splits the path after /api/v1 into decoded segments; max + 1 when there
 * are more than max. */
static size_t split(h2o_req_t *req, const char *p, size_t len, char **seg, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        if (i >= len)
            break;
        if (n == max)
            return max + 1;
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        char *d = gw__percent_decode(p + i, j - i);
        seg[n++] = h2o_strdup(&req->pool, d, strlen(d)).base;
        free(d);
        i = j;
    }
    return n;
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* The entity endpoints of one namespace (r resolved, state loaded). */
static void serve_namespace(ow_req_t *r, char **seg, size_t n)
{
    h2o_req_t *req = r->req;
    const char *what = seg[2];
    bool is_get = method_is(req, "GET"), is_put = method_is(req, "PUT"), is_del = method_is(req, "DELETE"),
         is_post = method_is(req, "POST");
    gw_perm_t read = GW_PERM_APPS_READ, change = GW_PERM_APPS_DEPLOY;
    char name[600];
    /* Changes are audited (read calls and invokes are not, as in the admin API). */
    if (n >= 4 && (is_put || is_del || (is_post && strcmp(what, "rules") == 0))) {
        snprintf(r->audit, sizeof r->audit, "openwhisk.%s.%s", what,
                 is_put ? "put" : is_del ? "delete" : "status");
        snprintf(r->target, sizeof r->target, "%s%s%s", seg[3], n > 4 ? "/" : "", n > 4 ? seg[4] : "");
    }
    if (strcmp(what, "actions") == 0) {
        if (n == 3 && is_get) {
            if (allowed(r, read))
                list_entities(r, "actions", action_listed);
            return;
        }
        if ((n == 4 || n == 5) && entity_name(req, seg + 3, n - 3, name, sizeof name)) {
            if (is_put && allowed(r, change))
                action_put(r, name);
            else if (is_get && allowed(r, read)) {
                json_t *a = action_of(r->state, name);
                if (a == NULL)
                    ow_error(req, 404, "The requested resource does not exist: no action '%s' in namespace %s.",
                             name, r->ns);
                else {
                    char *code = gw__query_param(req, "code");
                    bool with_code = code == NULL || strcmp(code, "false") != 0;
                    free(code);
                    gw__send_json(req, 200, action_json(r, name, a, with_code));
                }
            } else if (is_del && allowed(r, change))
                action_delete(r, name);
            else if (is_post && allowed(r, GW_PERM_FUNCTIONS_INVOKE))
                action_invoke(r, name);
            else if (!is_put && !is_get && !is_del && !is_post)
                ow_error(req, 405, "Method not allowed: use PUT, GET, DELETE or POST on an action.");
            return;
        }
    } else if (strcmp(what, "activations") == 0) {
        if (n == 3 && is_get) {
            if (allowed(r, GW_PERM_ACTIVATIONS_READ))
                activations_list(r);
            return;
        }
        if ((n == 4 || n == 5) && is_get) {
            bool logs = n == 5 && strcmp(seg[4], "logs") == 0, result = n == 5 && strcmp(seg[4], "result") == 0;
            if (n == 5 && !logs && !result) {
                ow_error(req, 404, "The requested resource does not exist: use /logs or /result.");
                return;
            }
            if (!allowed(r, logs ? GW_PERM_LOGS_READ : GW_PERM_ACTIVATIONS_READ))
                return;
            json_t *act = find_activation(r, seg[3]);
            if (act == NULL)
                return;
            if (logs)
                gw__send_json(req, 200, json_pack("{s:O}", "logs", json_object_get(act, "logs")));
            else if (result)
                gw__send_json(req, 200, json_incref(json_object_get(act, "response")));
            else
                gw__send_json(req, 200, json_incref(act));
            json_decref(act);
            return;
        }
    } else if (strcmp(what, "triggers") == 0 || strcmp(what, "rules") == 0 || strcmp(what, "packages") == 0) {
        bool rules = strcmp(what, "rules") == 0;
        if (n == 3 && is_get) {
            if (allowed(r, read))
                list_entities(r, what, rules ? rule_json : entity_json);
            return;
        }
        if (n == 4 && entity_name(req, seg + 3, 1, name, sizeof name)) {
            json_t *e = json_object_get(json_object_get(r->state, what), name);
            if (is_put && allowed(r, change))
                entity_put(r, what, name);
            else if (is_del && allowed(r, change))
                entity_delete(r, what, name);
            else if (is_get && allowed(r, read)) {
                if (e == NULL)
                    ow_error(req, 404, "The requested resource does not exist: no %.*s '%s' in namespace %s.",
                             (int)strlen(what) - 1, what, name, r->ns);
                else
                    gw__send_json(req, 200, rules ? rule_json(r, name, e, true) : entity_json(r, name, e, true));
            } else if (is_post && rules && allowed(r, change))
                rule_status(r, name);
            else if (is_post && strcmp(what, "triggers") == 0 && allowed(r, GW_PERM_FUNCTIONS_INVOKE))
                trigger_fire(r, name);
            else if (!is_put && !is_get && !is_del && !is_post)
                ow_error(req, 405, "Method not allowed.");
            else if (is_post && strcmp(what, "packages") == 0)
                ow_error(req, 405, "Method not allowed: packages are not invoked.");
            return;
        }
    }
    ow_error(req, 404, "The requested resource does not exist.");
}

int gw__openwhisk_body_admit(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len, size_t n,
                             char *msg, size_t msglen)
{
    bool put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    bool web = rest_len >= 4 && memcmp(rest, "/web", 4) == 0 && (rest_len == 4 || rest[4] == '/');
    size_t limit = put && !web ? gw->max_bundle : gw->max_body;
    if (n > limit) {
        snprintf(msg, msglen, "request body of %zu bytes is over the limit of %zu bytes (%s)", n, limit,
                 limit == gw->max_bundle ? "--max-bundle-size" : "of this call");
        return 413;
    }
    if (!gw__body_hold(gw, req, n)) {
        snprintf(msg, msglen, "this node holds %zu bytes of request bodies and %zu more would pass its limit of %zu "
                              "(--max-buffered-body): retry later", gw->body_held, n, gw->body_budget);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        return 503;
    }
    return 0;
}

int gw__openwhisk(gw_server_t *gw, h2o_req_t *req, const char *rest, size_t rest_len)
{
    char *seg[32];
    size_t n = split(req, rest, rest_len, seg, 32);
    if (n > 32) {
        ow_error(req, 404, "The requested resource does not exist: a path of more than 32 segments.");
        return 0;
    }
    if (n >= 1 && strcmp(seg[0], "web") == 0) {
        web(gw, req, seg, n);
        return 0;
    }
    if (n == 0) {
        gw__send_json(req, 200, json_pack("{s:s, s:s, s:[s]}", "description", "tine: OpenWhisk-compatible API",
                                          "api_version", "1.0.0", "api_paths", "/api/v1"));
        return 0;
    }
    ow_req_t r = {.gw = gw, .req = req};
    char msg[512];
    int a = gw__authenticate(gw, req, &r.caller, msg, sizeof msg);
    if (a == 1)
        return 0; /* served again once the key is read */
    if (a == 503) {
        ow_error(req, 503, "Whisk internal error: %s", msg);
        return 0;
    }
    if (a != 0) {
        ow_error(req, 401, "The supplied authentication is invalid: %s", msg);
        return 0;
    }
    if (strcmp(seg[0], "namespaces") != 0) {
        ow_error(req, 404, "The requested resource does not exist.");
        return 0;
    }
    if (n == 1) {
        if (!method_is(req, "GET")) {
            ow_error(req, 405, "Method not allowed.");
            return 0;
        }
        gw__send_json(req, 200, json_pack("[s]", r.caller.ns ? r.caller.ns : REG_DEFAULT_NAMESPACE));
        return 0;
    }
    if (!resolve_namespace(&r, seg[1]))
        return 0;
    if (n < 3) {
        ow_error(req, 404, "The requested resource does not exist: use /namespaces/%s/actions, activations, "
                           "triggers, rules or packages.", r.ns);
        return 0;
    }
    if (load_state(&r))
        serve_namespace(&r, seg, n);
    ow_req_dispose(&r);
    return 0;
}
