/* `tine invoke APP FN [JSON]`: calls one function through the admin API and
 * prints what it answered. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tine_common.h"

char *cli_read_stdin(size_t *len)
{
    tine_buf_t b;
    tine_buf_init(&b);
    char chunk[65536];
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, stdin);
        tine_buf_append(&b, chunk, n);
        if (n < sizeof chunk) {
            if (ferror(stdin)) {
                tine_buf_dispose(&b);
                return NULL;
            }
            break;
        }
    }
    tine_buf_append(&b, "", 0); /* an empty stdin still gives a buffer */
    *len = b.len;
    return b.data;
}

int cli_cmd_invoke(cli_ctx_t *ctx, int argc, char **argv)
{
    bool verbose = false;
    const cli_flag_t flags[] = {{"verbose", 'v', NULL, &verbose}};
    const char *pos[3];
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, flags, 1, pos, 2, 3, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *app = pos[0], *fn = pos[1];

    char *event = NULL;
    size_t len = 0;
    if (npos < 3) {
        event = xstrdup("{}");
        len = 2;
    } else if (strcmp(pos[2], "-") == 0) {
        event = cli_read_stdin(&len);
        if (event == NULL)
            return cli_fail(ctx, "cannot read the event from stdin");
    } else {
        event = xstrdup(pos[2]);
        len = strlen(event);
    }
    /* Check the event here: a typo should say where it is, not come back as
     * a 400 from the node. */
    json_error_t jerr;
    json_t *parsed = json_loadb(event, len, JSON_DECODE_ANY, &jerr);
    if (parsed == NULL) {
        free(event);
        snprintf(err, sizeof err, "the event is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                 jerr.column);
        return cli_usage_error(ctx, err);
    }
    json_decref(parsed);

    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_invoke(c, app, fn, event, len, &answer);
        if (e != 0)
            rc = cli_client_fail(ctx, c, e, &conn);
        else
            rc = cli_render_invoke(answer, app, fn, ctx->g.json, verbose, isatty(fileno(ctx->out)) == 1, ctx->out,
                                   ctx->err);
    }
    free(event);
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
