/* The `tine` commands that read or move an app's state: apps, versions,
 * rollback, routes. Each sends one admin call and prints a table or a line
 * (with --json the server's answer as-is). */
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

int cli_cmd_versions(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *app;
    if (parse_app(ctx, argc, argv, &app) != CLI_OK)
        return CLI_USAGE;
    return cli_fetch_and_print(ctx, app, tine_versions, cli_render_versions);
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
