/* `tine secrets set APP NAME` (the value from stdin), `tine secrets list
 * APP`, `tine secrets rm APP NAME` (docs/secrets.md). Values go one way:
 * to the node, which stores them encrypted; nothing prints one. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tine_common.h"

/* Runs one secrets call on a fresh connection and prints its outcome (the
 * answer with --json). */
static int secrets_call(cli_ctx_t *ctx, const char *verb, const char *app, const char *name, const void *value,
                        size_t len)
{
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL) {
        cli_conn_dispose(&conn);
        return CLI_FAIL;
    }
    char *answer = NULL;
    int e = strcmp(verb, "set") == 0   ? tine_secret_set(c, app, name, value, len, &answer)
            : strcmp(verb, "rm") == 0  ? tine_secret_delete(c, app, name, &answer)
                                       : tine_secrets(c, app, &answer);
    int rc = CLI_OK;
    if (e != 0) {
        rc = cli_client_fail(ctx, c, e, &conn);
    } else if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
    } else if (strcmp(verb, "list") == 0) {
        json_t *j = json_loads(answer, 0, NULL);
        json_t *list = json_object_get(j, "secrets");
        if (json_array_size(list) == 0)
            fprintf(ctx->out, "%s has no secrets\n", app);
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s) fprintf(ctx->out, "%s\n", json_string_value(json_object_get(s, "name")));
        json_decref(j);
    } else if (strcmp(verb, "set") == 0) {
        json_t *j = json_loads(answer, 0, NULL);
        fprintf(ctx->out, "%s secret %s of %s (%zu bytes, stored encrypted)\n",
                json_is_true(json_object_get(j, "created")) ? "set" : "replaced", name, app, len);
        json_decref(j);
    } else {
        fprintf(ctx->out, "removed secret %s of %s\n", name, app);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

int cli_cmd_secrets(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 2, 3, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *verb = pos[0];
    if (strcmp(verb, "list") == 0 && npos == 2)
        return secrets_call(ctx, verb, pos[1], NULL, NULL, 0);
    if (strcmp(verb, "rm") == 0 && npos == 3)
        return secrets_call(ctx, verb, pos[1], pos[2], NULL, 0);
    if (strcmp(verb, "set") != 0 || npos != 3)
        return cli_usage_error(ctx, "expected 'secrets set APP NAME', 'secrets list APP' or 'secrets rm APP NAME'");
    if (isatty(STDIN_FILENO))
        fprintf(ctx->err, "reading the value of %s from stdin (end with Ctrl-D)\n", pos[2]);
    size_t len = 0;
    char *value = cli_read_stdin(&len);
    if (value == NULL)
        return cli_fail(ctx, "cannot read the value from stdin: %s", strerror(errno));
    /* `echo VALUE | tine secrets set` must not store the newline. */
    if (len > 0 && value[len - 1] == '\n')
        len--;
    if (len > 0 && value[len - 1] == '\r')
        len--;
    int rc = len == 0 ? cli_fail(ctx, "no value on stdin for secret %s: nothing stored", pos[2])
                      : secrets_call(ctx, verb, pos[1], pos[2], value, len);
    memset(value, 0, len);
    free(value);
    return rc;
}
