/* `tine keys create|list|revoke`, `tine namespaces create|list|delete` and
 * `tine audit [-f]`: the admin calls of tenancy (docs/tenancy.md), printed
 * as tables and lines (with --json the node's answers as they are). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tine_common.h"

int cli_admin_call(cli_ctx_t *ctx, const char *method, const char *path, const char *body, char **answer)
{
    *answer = NULL;
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    if (c != NULL) {
        int e = tine_call(c, method, path, body, answer);
        rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : CLI_OK;
    }
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

/* "/_tine/v1/<what>/<escaped name>" */
static char *named_path(const char *what, const char *name)
{
    char *e = tine_escape(name);
    char *p = xasprintf("/_tine/v1/%s/%s", what, e ? e : "");
    tine_free(e);
    return p;
}

static const char *str(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? s : "-";
}

/* Parses the answer and hands it to `print`, or prints it as it is with
 * --json. */
static int show(cli_ctx_t *ctx, const char *answer, void (*print)(cli_ctx_t *ctx, json_t *j))
{
    if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
        return CLI_OK;
    }
    json_t *j = json_loads(answer, 0, NULL);
    if (j == NULL)
        return cli_fail(ctx, "unexpected answer from the node: %s", answer);
    print(ctx, j);
    json_decref(j);
    return CLI_OK;
}

/* ------------------------------------------------------------------ keys */

static void print_keys(cli_ctx_t *ctx, json_t *j)
{
    json_t *keys = json_object_get(j, "keys");
    if (json_array_size(keys) == 0) {
        fprintf(ctx->out, "no API keys\n");
        return;
    }
    static const char *const head[] = {"ID", "NAME", "NAMESPACE", "ROLE", "APP", "CREATED", "BY", "REVOKED", "EXPIRES"};
    cli_table_t t;
    cli_table_init(&t, 9, head);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *ns = json_string_value(json_object_get(k, "namespace"));
        const char *row[] = {str(k, "id"),  str(k, "name"),    ns ? ns : "*",        str(k, "role"),
                             str(k, "app"), str(k, "created"), str(k, "created_by"), str(k, "revoked"),
                             str(k, "expires")};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, ctx->out);
    cli_table_dispose(&t);
}

/* "90s", "15m", "12h", "30d" (or plain seconds) in seconds; -1 when s is
 * not that. */
static long long life_seconds(const char *s)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n <= 0 || s[0] == '-' || s[0] == '+')
        return -1;
    long long unit = *end == '\0' || strcmp(end, "s") == 0 ? 1
                     : strcmp(end, "m") == 0                ? 60
                     : strcmp(end, "h") == 0                ? 3600
                     : strcmp(end, "d") == 0                ? 86400
                                                            : 0;
    return unit == 0 || n > LLONG_MAX / unit ? -1 : n * unit;
}

static int keys_create(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *ns = NULL, *role = NULL, *app = NULL, *expires = NULL;
    const cli_flag_t flags[] = {
        {"namespace", 0, &ns, NULL}, {"role", 0, &role, NULL}, {"app", 0, &app, NULL}, {"expires", 0, &expires, NULL}};
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 4, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (role == NULL)
        return cli_usage_error(ctx, "keys create needs --role (cluster-admin, admin, deployer, viewer or invoker)");
    long long life = expires ? life_seconds(expires) : 0;
    if (life < 0)
        return cli_usage_error(ctx, "--expires: expected a duration such as 3600, 90s, 15m, 12h or 30d");
    json_t *body = json_pack("{s:s, s:s}", "name", pos[0], "role", role);
    if (body == NULL)
        return cli_usage_error(ctx, "NAME and --role must be UTF-8 text");
    if (ns)
        json_object_set_new(body, "namespace", json_string(ns));
    if (app)
        json_object_set_new(body, "app", json_string(app));
    if (life > 0)
        json_object_set_new(body, "expires_in", json_integer(life));
    char *text = json_dumps(body, JSON_COMPACT), *answer = NULL;
    json_decref(body);
    int rc = cli_admin_call(ctx, "POST", "/_tine/v1/keys", text, &answer);
    free(text);
    if (rc == CLI_OK && ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
    } else if (rc == CLI_OK) {
        json_t *j = json_loads(answer, 0, NULL);
        const char *key = json_string_value(json_object_get(j, "key"));
        if (key == NULL) {
            rc = cli_fail(ctx, "unexpected answer from the node: no key");
        } else {
            /* The key alone on stdout (for $(...)); the rest on stderr. */
            fprintf(ctx->out, "%s\n", key);
            const char *kns = json_string_value(json_object_get(j, "namespace"));
            const char *kapp = json_string_value(json_object_get(j, "app"));
            fprintf(ctx->err,
                    "tine: this is the only time the key is shown: store it now (key %s, role %s, namespace %s%s%s)\n",
                    str(j, "id"), str(j, "role"), kns ? kns : "* (every one)", kapp ? ", app " : "", kapp ? kapp : "");
        }
        json_decref(j);
    }
    tine_free(answer);
    return rc;
}

static int keys_list(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *ns = NULL;
    const cli_flag_t flags[] = {{"namespace", 0, &ns, NULL}};
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 0, 0, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    char *e = ns ? tine_escape(ns) : NULL;
    char *path = ns ? xasprintf("/_tine/v1/keys?namespace=%s", e ? e : "") : xstrdup("/_tine/v1/keys");
    tine_free(e);
    char *answer = NULL;
    int rc = cli_admin_call(ctx, "GET", path, NULL, &answer);
    if (rc == CLI_OK)
        rc = show(ctx, answer, print_keys);
    free(path);
    tine_free(answer);
    return rc;
}

static int keys_revoke(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    /* The id is the part before ':' when a whole key was pasted. */
    char *id = xstrndup(pos[0], strcspn(pos[0], ":"));
    char *path = named_path("keys", id), *answer = NULL;
    int rc = cli_admin_call(ctx, "DELETE", path, NULL, &answer);
    if (rc == CLI_OK && ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
    } else if (rc == CLI_OK) {
        json_t *j = json_loads(answer, 0, NULL);
        fprintf(ctx->out, "revoked key %s (%s): every node refuses it within a second\n", id, str(j, "name"));
        json_decref(j);
    }
    free(path);
    free(id);
    tine_free(answer);
    return rc;
}

int cli_cmd_keys(cli_ctx_t *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(ctx, "expected keys create, keys list or keys revoke");
    if (strcmp(argv[1], "create") == 0)
        return keys_create(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return keys_list(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return keys_revoke(ctx, argc - 1, argv + 1);
    char msg[256];
    snprintf(msg, sizeof msg, "unknown subcommand '%s' (create, list, revoke)", argv[1]);
    return cli_usage_error(ctx, msg);
}

/* ------------------------------------------------------------ namespaces */

static void print_namespaces(cli_ctx_t *ctx, json_t *j)
{
    static const char *const head[] = {"NAMESPACE", "APPS", "KEYS", "CREATED", "BY"};
    cli_table_t t;
    cli_table_init(&t, 5, head);
    size_t i;
    json_t *ns;
    json_array_foreach(json_object_get(j, "namespaces"), i, ns)
    {
        char apps[24], keys[24];
        snprintf(apps, sizeof apps, "%lld", (long long)json_integer_value(json_object_get(ns, "apps")));
        snprintf(keys, sizeof keys, "%lld", (long long)json_integer_value(json_object_get(ns, "keys")));
        const char *row[] = {str(ns, "namespace"), apps, keys, str(ns, "created"), str(ns, "created_by")};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, ctx->out);
    cli_table_dispose(&t);
}

int cli_cmd_namespaces(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    bool list = strcmp(pos[0], "list") == 0, create = strcmp(pos[0], "create") == 0,
         del = strcmp(pos[0], "delete") == 0;
    if (!list && !create && !del) {
        snprintf(err, sizeof err, "unknown subcommand '%s' (create, list, delete)", pos[0]);
        return cli_usage_error(ctx, err);
    }
    if (list != (npos == 1))
        return cli_usage_error(ctx, list ? "namespaces list takes no argument" : "a namespace NAME is needed");
    char *path = list ? xstrdup("/_tine/v1/namespaces") : named_path("namespaces", pos[1]), *answer = NULL;
    int rc = cli_admin_call(ctx, list ? "GET" : create ? "PUT" : "DELETE", path, NULL, &answer);
    if (rc == CLI_OK && list) {
        rc = show(ctx, answer, print_namespaces);
    } else if (rc == CLI_OK && ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
    } else if (rc == CLI_OK && create) {
        fprintf(ctx->out, "created namespace %s\n", pos[1]);
    } else if (rc == CLI_OK) {
        json_t *j = json_loads(answer, 0, NULL);
        long long n = json_integer_value(json_object_get(j, "keys_revoked"));
        fprintf(ctx->out, "deleted namespace %s (%lld key%s revoked)\n", pos[1], n, n == 1 ? "" : "s");
        json_decref(j);
    }
    free(path);
    tine_free(answer);
    return rc;
}

/* ----------------------------------------------------------------- audit */

/* One entry as a line: TIME NAMESPACE ACTION TARGET OUTCOME by KEY (NAME): DETAIL */
static void print_entry(cli_ctx_t *ctx, json_t *e)
{
    if (ctx->g.json) {
        char *text = json_dumps(e, JSON_COMPACT);
        fprintf(ctx->out, "%s\n", text);
        free(text);
        return;
    }
    fprintf(ctx->out, "%s %s %s %s %s (%lld) by %s (%s): %s\n", str(e, "time"), str(e, "namespace"), str(e, "action"),
            str(e, "target"), str(e, "outcome"), (long long)json_integer_value(json_object_get(e, "status")),
            str(e, "key"), str(e, "key_name"), str(e, "detail"));
}

/* Reads the entries after *last (all the newest `limit` when NULL), prints
 * them and moves *last on. Returns CLI_OK or CLI_FAIL (message printed
 * unless quiet). */
static int audit_page(cli_ctx_t *ctx, const char *ns, const char *limit, char **last, bool *empty)
{
    tine_buf_t path;
    tine_buf_init(&path);
    tine_buf_appendf(&path, "/_tine/v1/audit?limit=%s", limit);
    if (ns) {
        char *e = tine_escape(ns);
        tine_buf_appendf(&path, "&namespace=%s", e ? e : "");
        tine_free(e);
    }
    if (*last)
        tine_buf_appendf(&path, "&after=%s", *last);
    char *answer = NULL;
    int rc = cli_admin_call(ctx, "GET", path.data, NULL, &answer);
    tine_buf_dispose(&path);
    if (rc != CLI_OK)
        return rc;
    json_t *j = json_loads(answer, 0, NULL);
    tine_free(answer);
    json_t *entries = json_object_get(j, "entries");
    if (!json_is_array(entries)) {
        json_decref(j);
        return cli_fail(ctx, "unexpected answer from the node: no entries");
    }
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) print_entry(ctx, e);
    *empty = json_array_size(entries) == 0;
    const char *next = json_string_value(json_object_get(j, "last"));
    if (next) {
        free(*last);
        *last = xstrdup(next);
    }
    json_decref(j);
    fflush(ctx->out);
    return CLI_OK;
}

int cli_cmd_audit(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *ns = NULL, *limit = NULL;
    bool follow = false;
    const cli_flag_t flags[] = {
        {"namespace", 0, &ns, NULL}, {"limit", 'n', &limit, NULL}, {"follow", 'f', NULL, &follow}};
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 3, pos, 0, 0, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (limit && (strspn(limit, "0123456789") != strlen(limit) || atol(limit) < 1 || atol(limit) > 10000))
        return cli_usage_error(ctx, "--limit: expected a number from 1 to 10000");
    char *last = NULL;
    bool empty = false;
    int rc = audit_page(ctx, ns, limit ? limit : "100", &last, &empty);
    if (!follow || rc != CLI_OK) {
        if (rc == CLI_OK && empty && !ctx->g.json)
            fprintf(ctx->out, "no audit entries\n");
        free(last);
        return rc;
    }
    fprintf(ctx->err, "tine: following the audit log%s%s (Ctrl-C to stop)\n", ns ? " of " : "", ns ? ns : "");
    /* New entries every half second; a failure is said once, then retried. */
    bool failing = false;
    for (;;) {
        struct timespec half = {0, 500 * 1000 * 1000};
        nanosleep(&half, NULL);
        FILE *saved = ctx->err, *quiet = failing ? fopen("/dev/null", "w") : NULL;
        if (quiet)
            ctx->err = quiet;
        rc = audit_page(ctx, ns, "1000", &last, &empty);
        ctx->err = saved;
        if (quiet)
            fclose(quiet);
        if (rc != CLI_OK && !failing)
            fprintf(ctx->err, "tine: retrying every half second\n");
        else if (rc == CLI_OK && failing)
            fprintf(ctx->err, "tine: following the audit log again\n");
        failing = rc != CLI_OK;
    }
}
