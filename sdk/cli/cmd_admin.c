/* The `tine` commands that read or move an app's state: apps, versions
 * (and versions prune), rollback, routes, delete. Each sends one admin call
 * and prints a table or a line (with --json the server's answer as-is). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int cli_print_answer(cli_ctx_t *ctx, const char *answer, cli_render_fn render)
{
    if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
        return CLI_OK;
    }
    char err[512];
    if (render(answer, ctx->out, err, sizeof err) != 0)
        return cli_fail(ctx, "%s", err);
    return CLI_OK;
}

/* Parses "APP" as the only positional argument. */
static int parse_app(cli_ctx_t *ctx, int argc, char **argv, const char **app)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    *app = pos[0];
    return CLI_OK;
}

/* The listing call of `tine apps` in the shape of the per-app calls (app is
 * unused). */
static int fetch_apps(tine_client_t *c, const char *app, char **answer)
{
    (void)app;
    return tine_apps(c, answer);
}

int cli_fetch_and_print(cli_ctx_t *ctx, const char *app, cli_fetch_fn fetch, cli_render_fn render)
{
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = fetch(c, app, &answer);
        rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : cli_print_answer(ctx, answer, render);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

int cli_cmd_apps(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 0, 0, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    return cli_fetch_and_print(ctx, NULL, fetch_apps, cli_render_apps);
}

/* Runs one call that changes an app and prints its answer with render. */
static int change_app(cli_ctx_t *ctx, const char *app, unsigned n,
                      int (*call)(tine_client_t *c, const char *app, unsigned n, char **answer), cli_render_fn render)
{
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = call(c, app, n, &answer);
        rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : cli_print_answer(ctx, answer, render);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

/* Parses a count ("0".."1000000") into *out; prints a usage error. */
static int parse_count(cli_ctx_t *ctx, const char *flag, const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (s == NULL || s[0] == '\0' || errno != 0 || *end != '\0' || s[0] == '-' || s[0] == '+' || v > 1000000) {
        char err[128];
        snprintf(err, sizeof err, "%s needs a number of versions from 0 to 1000000%s%s%s", flag, s ? ", not '" : "",
                 s ? s : "", s ? "'" : "");
        return cli_usage_error(ctx, err);
    }
    *out = (unsigned)v;
    return CLI_OK;
}

/* The call of `tine prune`: keeps the newest `keep` versions of app. */
static int prune_call(tine_client_t *c, const char *app, unsigned keep, char **answer)
{
    return tine_prune_versions(c, app, keep, answer);
}

int cli_cmd_versions(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2], *keep_s = NULL;
    const cli_flag_t flags[] = {{"keep", 0, &keep_s, NULL}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    /* "versions prune APP": two words, the first "prune" (an app named
     * prune is still listed by "versions prune"). */
    if (npos == 2 && strcmp(pos[0], "prune") == 0) {
        unsigned keep = 0;
        if (parse_count(ctx, "--keep", keep_s, &keep) != CLI_OK)
            return CLI_USAGE;
        return change_app(ctx, pos[1], keep, prune_call, cli_render_prune);
    }
    if (npos == 2)
        return cli_usage_error(ctx, "expected 'versions APP' or 'versions prune APP --keep N'");
    if (keep_s != NULL)
        return cli_usage_error(ctx, "--keep goes with 'versions prune APP'");
    return cli_fetch_and_print(ctx, pos[0], tine_versions, cli_render_versions);
}

/* The call of `tine delete` in the shape of prune_call (the count is unused). */
static int delete_call(tine_client_t *c, const char *app, unsigned unused, char **answer)
{
    (void)unused;
    return tine_delete_app(c, app, answer);
}

int cli_cmd_delete(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    bool yes = false;
    const cli_flag_t flags[] = {{"yes", 'y', NULL, &yes}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (!yes) {
        snprintf(err, sizeof err,
                 "this deletes %s for good: its versions, tine.kv data, dead letters and activation records; "
                 "add --yes to do it",
                 pos[0]);
        return cli_usage_error(ctx, err);
    }
    return change_app(ctx, pos[0], 0, delete_call, cli_render_delete);
}

int cli_cmd_routes(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *app;
    if (parse_app(ctx, argc, argv, &app) != CLI_OK)
        return CLI_USAGE;
    return cli_fetch_and_print(ctx, app, tine_routes, cli_render_routes);
}

int cli_cmd_rollback(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    uint64_t version = 0;
    if (npos == 2) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(pos[1], &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || pos[1][0] == '-' || pos[1][0] == '+') {
            snprintf(err, sizeof err, "version must be a positive number, not '%s'", pos[1]);
            return cli_usage_error(ctx, err);
        }
        version = v;
    }
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_rollback(c, pos[0], version, &answer);
        rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : cli_print_answer(ctx, answer, cli_render_rollback);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
