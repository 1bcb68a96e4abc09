/* `tine doctor`: which isolation layers the node applies to its sandboxes
 * (GET /_tine/v1/doctor), as a table or, with --json, as the server sent it. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Prints "isolation: on" and a LAYER STATE DETAIL table. Returns 0, or -1
 * with a message in err when the answer is not a doctor report. */
static int render_doctor(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    json_t *layers = json_object_get(j, "layers");
    const char *mode = json_string_value(json_object_get(j, "isolation"));
    if (!json_is_array(layers) || mode == NULL) {
        json_decref(j);
        snprintf(err, errlen, "unexpected answer from the node (no \"layers\" list)");
        return -1;
    }
    fprintf(out, "isolation: %s\n\n", mode);
    static const char *const head[] = {"LAYER", "STATE", "DETAIL"};
    cli_table_t t;
    cli_table_init(&t, 3, head);
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *row[] = {json_string_value(json_object_get(l, "name")),
                             json_is_true(json_object_get(l, "active")) ? "on" : "OFF",
                             json_string_value(json_object_get(l, "detail"))};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

int cli_cmd_doctor(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 0, 0, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_doctor(c, &answer);
        if (e != 0)
            rc = cli_client_fail(ctx, c, e, &conn);
        else if (ctx->g.json) {
            cli_print_json_text(ctx->out, answer);
            rc = CLI_OK;
        } else if (render_doctor(answer, ctx->out, err, sizeof err) != 0)
            rc = cli_fail(ctx, "%s", err);
        else
            rc = CLI_OK;
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
