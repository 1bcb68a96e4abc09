/* The `tine` commands that show what ran and what it cost: usage,
 * activations, activation, logs. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Runs one read of the admin API and prints its answer with render (or as-is
 * with --json). */
static int show(cli_ctx_t *ctx, int rc_call, tine_client_t *c, cli_conn_t *conn, char *answer,
                int (*render)(const char *json, FILE *out, char *err, size_t errlen))
{
    int rc;
    char err[512];
    if (rc_call != 0) {
        rc = cli_client_fail(ctx, c, rc_call, conn);
    } else if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
        rc = CLI_OK;
    } else {
        rc = render(answer, ctx->out, err, sizeof err) == 0 ? CLI_OK : cli_fail(ctx, "%s", err);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(conn);
    return rc;
}

/* Parses "N" (1 to max) into *out; prints a usage error otherwise. */
static int parse_limit(cli_ctx_t *ctx, const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (s && (errno || *end || v == 0 || v > max || s[0] == '-' || s[0] == '+')) {
        char msg[128];
        snprintf(msg, sizeof msg, "--limit must be a number from 1 to %u, not '%s'", max, s);
        return cli_usage_error(ctx, msg);
    }
    *out = (unsigned)v;
    return CLI_OK;
}

static int render_usage_table(const char *json, FILE *out, char *err, size_t errlen)
{
    return cli_render_usage(json, false, out, err, errlen);
}

static int render_usage_csv(const char *json, FILE *out, char *err, size_t errlen)
{
    return cli_render_usage(json, true, out, err, errlen);
}

int cli_cmd_usage(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *by = NULL, *pos[1];
    bool csv = false;
    const cli_flag_t flags[] = {
        {"from", 0, &from, NULL}, {"to", 0, &to, NULL}, {"by", 0, &by, NULL}, {"csv", 0, NULL, &csv}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 4, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (by && strcmp(by, "function") != 0 && strcmp(by, "version") != 0 && strcmp(by, "day") != 0)
        return cli_usage_error(ctx, "--by must be function, version or day");
    if (csv && ctx->g.json)
        return cli_usage_error(ctx, "--csv and --json exclude each other");
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = tine_usage(c, pos[0], from, to, by, &answer);
    return show(ctx, e, c, &conn, answer, csv ? render_usage_csv : render_usage_table);
}

int cli_cmd_activations(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *limit_s = NULL, *pos[2];
    const cli_flag_t flags[] = {{"limit", 'n', &limit_s, NULL}};
    int npos = 0;
    char err[256];
    unsigned limit = 0;
    if (cli_parse_command(argc, argv, flags, 1, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (parse_limit(ctx, limit_s, 100000, &limit) != CLI_OK)
        return CLI_USAGE;
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = tine_activations(c, pos[0], npos > 1 ? pos[1] : NULL, limit, &answer);
    return show(ctx, e, c, &conn, answer, cli_render_activations);
}

int cli_cmd_activation(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = tine_activation(c, pos[0], &answer);
    return show(ctx, e, c, &conn, answer, cli_render_activation);
}

typedef struct {
    cli_ctx_t *ctx;
    const char *app;
    bool follow;
    bool live;
} logs_state_t;

static int on_log_line(void *data, const char *line, size_t len)
{
    logs_state_t *st = data;
    if (st->follow && !st->live) {
        st->live = true;
        fprintf(st->ctx->err, "tine: following the logs of %s (Ctrl-C to stop)\n", st->app);
        fflush(st->ctx->err);
    }
    if (len == 0)
        return 0; /* keep-alive */
    if (st->ctx->g.json || cli_render_log_line(line, st->ctx->out) != 0)
        fprintf(st->ctx->out, "%s\n", line);
    fflush(st->ctx->out);
    return 0;
}

int cli_cmd_logs(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *limit_s = NULL, *pos[2];
    bool follow = false;
    const cli_flag_t flags[] = {{"follow", 'f', NULL, &follow}, {"limit", 'n', &limit_s, NULL}};
    int npos = 0;
    char err[256];
    unsigned limit = 100;
    if (cli_parse_command(argc, argv, flags, 2, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (limit_s && strcmp(limit_s, "0") == 0)
        limit = 0;
    else if (limit_s && parse_limit(ctx, limit_s, 10000, &limit) != CLI_OK)
        return CLI_USAGE;
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    logs_state_t st = {ctx, pos[0], follow, false};
    int e = tine_logs(c, pos[0], npos > 1 ? pos[1] : NULL, limit, follow, on_log_line, &st);
    int rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : CLI_OK;
    if (rc == CLI_OK && follow)
        rc = cli_fail(ctx, "the node closed the log stream");
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
