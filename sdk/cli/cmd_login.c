/* `tine login URL` and `tine context use|list`: the node URLs and keys kept
 * in the credentials file (credentials.c), so that commands need neither
 * --token nor the node's state dir. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "tine_common.h"

/* Reads the key from stdin: one line, without echo on a terminal. Returns a
 * new string, or NULL when none came. */
static char *read_key_line(cli_ctx_t *ctx)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(ctx->err, "key (ID:SECRET, or the node's admin token): ");
        fflush(ctx->err);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    char line[1024];
    char *got = fgets(line, sizeof line, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputc('\n', ctx->err);
    }
    if (got == NULL)
        return NULL;
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    char *key = n ? xstrndup(p, n) : NULL;
    explicit_bzero(line, sizeof line);
    return key;
}

/* The context name a URL gets by default: its host[:port]. */
static char *default_name(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    return xstrndup(p, strcspn(p, "/"));
}

int cli_cmd_login(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *key_flag = NULL, *name = NULL;
    const cli_flag_t flags[] = {{"key", 0, &key_flag, NULL}, {"name", 0, &name, NULL}};
    const char *pos[1];
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, flags, 2, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *url = pos[0];
    char *key = key_flag ? xstrdup(key_flag) : read_key_line(ctx);
    if (key == NULL || key[0] == '\0') {
        free(key);
        return cli_usage_error(ctx, "no key given: pass --key ID:SECRET or write it to stdin");
    }
    char *ctx_name = name ? xstrdup(name) : default_name(url);
    /* The key must work before it is stored. */
    tine_client_t *c = tine_client_new(url, key);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c == NULL) {
        rc = cli_fail(ctx, "bad node URL '%s': expected http://HOST:PORT or https://HOST:PORT", url);
        goto out;
    }
    int e = tine_call(c, "GET", "/_tine/v1/whoami", NULL, &answer);
    if (e != 0) {
        rc = cli_fail(ctx, "%s: nothing stored", tine_client_error(c));
        goto out;
    }
    char *path = cli_credentials_path();
    cli_credentials_t creds;
    if (cli_credentials_load(path, &creds, NULL, err, sizeof err) != 0) {
        rc = cli_fail(ctx, "%s", err);
        free(path);
        goto out;
    }
    cli_credentials_put(&creds, ctx_name, url, key);
    free(creds.current);
    creds.current = xstrdup(ctx_name);
    if (cli_credentials_save(&creds, path, err, sizeof err) != 0) {
        rc = cli_fail(ctx, "%s", err);
    } else if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
        rc = CLI_OK;
    } else {
        json_t *who = json_loads(answer, 0, NULL);
        const char *ns = json_string_value(json_object_get(who, "namespace"));
        const char *app = json_string_value(json_object_get(who, "app"));
        fprintf(ctx->out, "logged in to %s as %s (%s, role %s%s%s%s%s); context %s is current (%s)\n", url,
                json_string_value(json_object_get(who, "key")), json_string_value(json_object_get(who, "name")),
                json_string_value(json_object_get(who, "role")), ns ? ", namespace " : "", ns ? ns : "",
                app ? ", app " : "", app ? app : "", ctx_name, path);
        json_decref(who);
        rc = CLI_OK;
    }
    cli_credentials_dispose(&creds);
    free(path);
out:
    tine_free(answer);
    tine_client_free(c);
    explicit_bzero(key, strlen(key));
    free(key);
    free(ctx_name);
    return rc;
}

/* "3f9a1c0b7e2d4a18:..." or "ab12...": what a table may show of a key. */
static char *masked(const char *key)
{
    const char *colon = strchr(key, ':');
    if (colon)
        return xasprintf("%.*s:***", (int)(colon - key), key);
    return xstrdup("admin token ***");
}

static int context_list(cli_ctx_t *ctx, const cli_credentials_t *creds, const char *path)
{
    if (ctx->g.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < creds->n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "name", creds->v[i].name, "url", creds->v[i].url,
                                                 "current",
                                                 creds->current && strcmp(creds->current, creds->v[i].name) == 0));
        char *text = json_dumps(json_pack("{s:o}", "contexts", arr), JSON_COMPACT);
        cli_print_json_text(ctx->out, text);
        free(text);
        return CLI_OK;
    }
    if (creds->n == 0) {
        fprintf(ctx->out, "no stored contexts (%s): tine login URL adds one\n", path);
        return CLI_OK;
    }
    static const char *const head[] = {"CURRENT", "NAME", "URL", "KEY"};
    cli_table_t t;
    cli_table_init(&t, 4, head);
    for (size_t i = 0; i < creds->n; i++) {
        char *m = masked(creds->v[i].key);
        const char *row[] = {creds->current && strcmp(creds->current, creds->v[i].name) == 0 ? "*" : "",
                             creds->v[i].name, creds->v[i].url, m};
        cli_table_add(&t, row);
        free(m);
    }
    cli_table_print(&t, ctx->out);
    cli_table_dispose(&t);
    return CLI_OK;
}

int cli_cmd_context(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    bool list = strcmp(pos[0], "list") == 0, use = strcmp(pos[0], "use") == 0;
    if (!list && !use)
        return cli_usage_error(ctx, "expected 'context list' or 'context use NAME'");
    if ((list && npos != 1) || (use && npos != 2))
        return cli_usage_error(ctx, use ? "context use needs a NAME" : "context list takes no argument");
    char *path = cli_credentials_path();
    cli_credentials_t creds;
    int rc;
    if (cli_credentials_load(path, &creds, NULL, err, sizeof err) != 0) {
        free(path);
        return cli_fail(ctx, "%s", err);
    }
    if (list) {
        rc = context_list(ctx, &creds, path);
    } else if (cli_credentials_find(&creds, pos[1]) == NULL) {
        rc = cli_fail(ctx, "no stored context named '%s' (tine context list; tine login URL --name %s adds it)", pos[1],
                      pos[1]);
    } else {
        free(creds.current);
        creds.current = xstrdup(pos[1]);
        rc = cli_credentials_save(&creds, path, err, sizeof err) == 0 ? CLI_OK : cli_fail(ctx, "%s", err);
        if (rc == CLI_OK)
            fprintf(ctx->out, "context %s is current (%s)\n", pos[1], cli_credentials_find(&creds, pos[1])->url);
    }
    cli_credentials_dispose(&creds);
    free(path);
    return rc;
}
