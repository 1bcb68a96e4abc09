/* `tine doctor`: which isolation layers the node applies to its sandboxes
 * and how it serves HTTPS (GET /_tine/v1/doctor), as a table and lines or,
 * with --json, as the server sent it. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string's text, "" for anything else. */
static const char *text(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

/* Prints the "tls" part of a doctor report (absent from older nodes). */
static void render_tls(const json_t *tls, FILE *out)
{
    if (tls == NULL)
        return;
    if (!json_is_true(json_object_get(tls, "enabled"))) {
        fprintf(out, "\ntls: off (plain HTTP; see tined --tls-cert)\n");
        return;
    }
    const json_t *cert = json_object_get(tls, "certificate");
    fprintf(out, "\ntls: on, %s at least, ALPN", text(json_object_get(tls, "min_version")));
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(tls, "alpn"), i, p)
    {
        fprintf(out, "%s%s", i ? ", " : " ", text(p));
    }
    static const char *const fields[][2] = {{"certificate", "file"},      {"subject", "subject"},  {"names", "names"},
                                            {"issuer", "issuer"},         {"serial", "serial"},    {"sha256", "sha256"},
                                            {"valid from", "not_before"}, {"expires", "not_after"}};
    fprintf(out, "\n");
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        fprintf(out, "  %-12s %s\n", fields[k][0], text(json_object_get(cert, fields[k][1])));
    fprintf(out, "  %-12s %s (%lld reloads, %lld failed)\n", "loaded", text(json_object_get(tls, "loaded_at")),
            (long long)json_integer_value(json_object_get(tls, "reloads")),
            (long long)json_integer_value(json_object_get(tls, "failed_reloads")));
    const char *why = json_string_value(json_object_get(tls, "reload_error"));
    if (why != NULL)
        fprintf(out, "  %-12s %s\n", "last reload", why);
}

/* Prints a RUNTIME ON OFF table: the layers each runtime's sandboxes get
 * (absent from older nodes). */
static void render_runtimes(const json_t *runtimes, FILE *out)
{
    if (!json_is_array(runtimes))
        return;
    static const char *const head[] = {"RUNTIME", "LAYERS ON", "OFF"};
    cli_table_t t;
    cli_table_init(&t, 3, head);
    size_t i;
    const json_t *r;
    json_array_foreach(runtimes, i, r)
    {
        char lists[2][512];
        for (int k = 0; k < 2; k++) {
            size_t used = 0, n;
            const json_t *name;
            lists[k][0] = '\0';
            json_array_foreach(json_object_get(r, k ? "off" : "on"), n, name)
            {
                int w = snprintf(lists[k] + used, sizeof lists[k] - used, "%s%s", n ? ", " : "", text(name));
                if (w < 0 || (size_t)w >= sizeof lists[k] - used)
                    break;
                used += (size_t)w;
            }
            if (used == 0)
                snprintf(lists[k], sizeof lists[k], "-");
        }
        const char *row[] = {text(json_object_get(r, "runtime")), lists[0], lists[1]};
        cli_table_add(&t, row);
    }
    fprintf(out, "\n");
    cli_table_print(&t, out);
    cli_table_dispose(&t);
}

/* Prints "isolation: on", a LAYER STATE DETAIL table, the layers of each
 * runtime and the TLS lines.
 * Returns 0, or -1 with a message in err when the answer is not a doctor
 * report. */
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
    render_runtimes(json_object_get(j, "runtimes"), out);
    render_tls(json_object_get(j, "tls"), out);
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
