/* The `tine` commands about a node's sandboxes: ps (list), scale (warm
 * sandboxes of a function), evict (close idle ones). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int cli_cmd_ps(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    return cli_fetch_and_print(ctx, pos[0], tine_sandboxes, cli_render_ps);
}

/* What scale and evict send, and the positional arguments they print. */
typedef struct {
    const char *app;
    const char *fn;
    unsigned warm;
    bool scale; /* else evict */
} sandbox_call_t;

/* Prints evict's answer: "evicted N idle sandboxes of APP[.FN]". */
static int print_evicted(cli_ctx_t *ctx, const sandbox_call_t *a, const char *answer)
{
    json_t *j = json_loads(answer, 0, NULL);
    json_t *n = json_object_get(j, "evicted");
    int rc = CLI_OK;
    if (json_is_integer(n))
        fprintf(ctx->out, "evicted %" JSON_INTEGER_FORMAT " idle sandbox%s of %s%s%s\n", json_integer_value(n),
                json_integer_value(n) == 1 ? "" : "es", a->app, a->fn ? "." : "", a->fn ? a->fn : "");
    else
        rc = cli_fail(ctx, "unexpected answer from the node (no \"evicted\" count)");
    json_decref(j);
    return rc;
}

/* Connects, sends scale or evict, prints the answer (as-is with --json). */
static int sandbox_call(cli_ctx_t *ctx, const sandbox_call_t *a)
{
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = a->scale ? tine_scale(c, a->app, a->fn, a->warm, &answer) : tine_evict(c, a->app, a->fn, &answer);
        if (e != 0)
            rc = cli_client_fail(ctx, c, e, &conn);
        else if (a->scale || ctx->g.json)
            rc = cli_print_answer(ctx, answer, cli_render_scale);
        else
            rc = print_evicted(ctx, a, answer);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

int cli_cmd_scale(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *warm_text = NULL;
    const cli_flag_t flags[] = {{"warm", 0, &warm_text, NULL}};
    const char *pos[2];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 2, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (warm_text == NULL)
        return cli_usage_error(ctx, "--warm N is required");
    char *end;
    errno = 0;
    unsigned long warm = strtoul(warm_text, &end, 10);
    if (errno != 0 || end == warm_text || *end != '\0' || warm_text[0] == '-' || warm_text[0] == '+' ||
        warm > 100000) {
        snprintf(err, sizeof err, "--warm must be a number of sandboxes, not '%s'", warm_text);
        return cli_usage_error(ctx, err);
    }
    sandbox_call_t a = {pos[0], pos[1], (unsigned)warm, true};
    return sandbox_call(ctx, &a);
}

int cli_cmd_evict(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    sandbox_call_t a = {pos[0], pos[1], 0, false};
    return sandbox_call(ctx, &a);
}
