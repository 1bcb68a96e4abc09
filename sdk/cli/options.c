/* The `tine` command: global flags, per-command flag parsing, where the URL,
 * token and state dir come from, and the shared ways of reporting errors. */
#include "cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tine_common.h"

/* Matches "--name" or "--name=value" against arg; returns 1 and sets *inline
 * to the text after "=" (or NULL) on a match. */
static int match_long(const char *arg, const char *name, const char **inline_value)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return 0;
    if (arg[2 + n] == '\0') {
        *inline_value = NULL;
        return 1;
    }
    if (arg[2 + n] == '=') {
        *inline_value = arg + 3 + n;
        return 1;
    }
    return 0;
}

int cli_split_global(int argc, char **argv, cli_global_t *g, char ***rest, int *nrest, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t offset;
    } valued[] = {
        {"url", offsetof(cli_global_t, url)},
        {"token", offsetof(cli_global_t, token)},
        {"state-dir", offsetof(cli_global_t, state_dir)},
        {"context", offsetof(cli_global_t, context)},
        {"cacert", offsetof(cli_global_t, cacert)},
    };
    memset(g, 0, sizeof *g);
    char **r = xcalloc((size_t)argc + 1, sizeof *r);
    int n = 0;
    bool positional_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (positional_only || a[0] != '-') {
            r[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            positional_only = true;
            r[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            g->json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            g->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            g->version = true;
            continue;
        }
        bool taken = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
            const char *v;
            if (!match_long(a, valued[k].name, &v))
                continue;
            if (v == NULL) {
                if (i + 1 >= argc) {
                    snprintf(err, errlen, "--%s needs a value", valued[k].name);
                    free(r);
                    return CLI_USAGE;
                }
                v = argv[++i];
            }
            *(const char **)((char *)g + valued[k].offset) = v;
            taken = true;
            break;
        }
        if (!taken)
            r[n++] = argv[i]; /* a command's flag, or an unknown one */
    }
    *rest = r;
    *nrest = n;
    return CLI_OK;
}

int cli_parse_command(int argc, char **argv, const cli_flag_t *flags, size_t nflags, const char **pos, int minpos,
                      int maxpos, int *npos, char *err, size_t errlen)
{
    int n = 0;
    bool positional_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!positional_only && strcmp(a, "--") == 0) {
            positional_only = true;
            continue;
        }
        if (positional_only || a[0] != '-' || a[1] == '\0') {
            if (n >= maxpos) {
                snprintf(err, errlen, "unexpected argument '%s'", a);
                return CLI_USAGE;
            }
            pos[n++] = a;
            continue;
        }
        const cli_flag_t *f = NULL;
        const char *v = NULL;
        for (size_t k = 0; k < nflags && f == NULL; k++) {
            if (flags[k].shortname && a[1] == flags[k].shortname && a[2] == '\0')
                f = &flags[k];
            else if (match_long(a, flags[k].name, &v))
                f = &flags[k];
        }
        if (f == NULL) {
            snprintf(err, errlen, "unknown flag %s", a);
            return CLI_USAGE;
        }
        if (f->value != NULL) {
            if (v == NULL) {
                if (i + 1 >= argc) {
                    snprintf(err, errlen, "%s needs a value", a);
                    return CLI_USAGE;
                }
                v = argv[++i];
            }
            *f->value = v;
        } else {
            if (v != NULL) {
                snprintf(err, errlen, "--%s takes no value", f->name);
                return CLI_USAGE;
            }
            *f->set = true;
        }
    }
    if (n < minpos) {
        snprintf(err, errlen, "missing argument%s", minpos - n > 1 ? "s" : "");
        return CLI_USAGE;
    }
    *npos = n;
    return CLI_OK;
}

/* <xdg>/tine when xdg is absolute (the XDG spec ignores a relative one),
 * else <home>/<fallback>/tine (home from the password database when unset). */
static char *xdg_dir(const char *xdg, const char *home, const char *fallback)
{
    if (xdg != NULL && xdg[0] == '/')
        return xasprintf("%s/tine", xdg);
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL && pw->pw_dir != NULL ? pw->pw_dir : "/tmp";
    }
    return xasprintf("%s/%s/tine", home, fallback);
}

char *cli_default_state_dir(const char *xdg_state_home, const char *home)
{
    return xdg_dir(xdg_state_home, home, ".local/state");
}

char *cli_config_dir(const char *xdg_config_home, const char *home)
{
    return xdg_dir(xdg_config_home, home, ".config");
}

char *cli_read_token_file(const char *path, int *errnum)
{
    char *data = NULL;
    size_t len = 0;
    *errnum = 0;
    int rc = tine_read_file(path, &data, &len);
    if (rc != 0) {
        if (rc != -ENOENT && rc != -ENOTDIR)
            *errnum = -rc;
        return NULL;
    }
    char *p = data;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    char *token = n > 0 ? xstrndup(p, n) : NULL;
    free(data);
    return token;
}

/* The stored context to use (--context, TINE_CONTEXT, the current one) into
 * *ctx, or none. A named context that does not exist is an error (*bad). */
static void resolve_context(const cli_global_t *g, cli_context_t *ctx, bool *bad, FILE *err)
{
    memset(ctx, 0, sizeof *ctx);
    *bad = false;
    if (g->no_context)
        return;
    const char *env = getenv("TINE_CONTEXT");
    const char *want = g->context ? g->context : env && env[0] ? env : NULL;
    char *path = cli_credentials_path();
    cli_credentials_t creds;
    char msg[512];
    bool loose = false;
    if (cli_credentials_load(path, &creds, &loose, msg, sizeof msg) != 0) {
        if (err)
            fprintf(err, "tine: warning: %s (no stored context used)\n", msg);
        *bad = want != NULL;
        free(path);
        return;
    }
    if (loose && err)
        fprintf(err, "tine: warning: %s may be read by others: chmod 600 it\n", path);
    const cli_context_t *c = cli_credentials_find(&creds, want ? want : creds.current);
    if (c) {
        ctx->name = xstrdup(c->name);
        ctx->url = xstrdup(c->url);
        ctx->key = xstrdup(c->key);
    } else if (want) {
        if (err)
            fprintf(err, "tine: no stored context named '%s' (tine context list)\n", want);
        *bad = true;
    }
    cli_credentials_dispose(&creds);
    free(path);
}

/* A URL without its trailing '/'s equals another. */
static bool same_url(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

void cli_resolve_conn(const cli_global_t *g, cli_conn_t *out, FILE *err)
{
    memset(out, 0, sizeof *out);
    cli_context_t ctx;
    bool bad_context;
    resolve_context(g, &ctx, &bad_context, err);
    const char *env_url = getenv("TINE_URL");
    if (g->url != NULL)
        out->url = xstrdup(g->url);
    else if (env_url != NULL && env_url[0] != '\0')
        out->url = xstrdup(env_url);
    else if (ctx.url != NULL)
        out->url = xstrdup(ctx.url);
    else
        out->url = xstrdup(CLI_DEFAULT_URL);
    /* A stored key goes only to the node it was stored for. */
    bool use_context = ctx.url != NULL && same_url(out->url, ctx.url);
    if (use_context)
        out->context = xstrdup(ctx.name);

    const char *env_dir = getenv("TINE_STATE_DIR");
    if (g->state_dir != NULL)
        out->state_dir = xstrdup(g->state_dir);
    else if (env_dir != NULL && env_dir[0] != '\0')
        out->state_dir = xstrdup(env_dir);
    else
        out->state_dir = cli_default_state_dir(getenv("XDG_STATE_HOME"), getenv("HOME"));
    out->token_file = xasprintf("%s/admin.token", out->state_dir);
    const char *env_cacert = getenv("TINE_CACERT");
    if (g->cacert != NULL && g->cacert[0] != '\0')
        out->cacert = xstrdup(g->cacert);
    else if (g->cacert == NULL && env_cacert != NULL && env_cacert[0] != '\0')
        out->cacert = xstrdup(env_cacert);

    const char *env_token = getenv("TINE_TOKEN");
    if (g->token != NULL) {
        out->token = g->token[0] ? xstrdup(g->token) : NULL;
    } else if (env_token != NULL && env_token[0] != '\0') {
        out->token = xstrdup(env_token);
    } else if (use_context) {
        out->token = xstrdup(ctx.key);
    } else if (bad_context) {
        out->token = NULL; /* a context was asked for and is not there: no other credentials */
    } else {
        int e = 0;
        out->token = cli_read_token_file(out->token_file, &e);
        if (e != 0 && err != NULL)
            fprintf(err, "tine: warning: cannot read %s: %s (sending no token)\n", out->token_file, strerror(e));
    }
    free(ctx.name);
    free(ctx.url);
    free(ctx.key);
}

void cli_conn_dispose(cli_conn_t *c)
{
    free(c->url);
    free(c->token);
    free(c->state_dir);
    free(c->token_file);
    free(c->context);
    free(c->cacert);
    memset(c, 0, sizeof *c);
}

int cli_listen_to_url(const char *listen, char *out, size_t outlen)
{
    if (listen == NULL || listen[0] == '\0')
        listen = CLI_DEFAULT_LISTEN;
    const char *host, *port;
    size_t hostlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = listen + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL) {
            host = "";
            hostlen = 0;
            port = listen;
        } else {
            if (memchr(listen, ':', (size_t)(colon - listen)) != NULL)
                return -1; /* a bare IPv6 address needs brackets */
            host = listen;
            hostlen = (size_t)(colon - listen);
            port = colon + 1;
        }
    }
    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 || atoi(port) > 65535)
        return -1;
    int n;
    if (hostlen == 0 || (hostlen == 7 && strncmp(host, "0.0.0.0", 7) == 0) || (hostlen == 1 && host[0] == '*'))
        n = snprintf(out, outlen, "http://127.0.0.1:%s", port);
    else if (hostlen == 2 && strncmp(host, "::", 2) == 0)
        n = snprintf(out, outlen, "http://[::1]:%s", port);
    else if (memchr(host, ':', hostlen) != NULL)
        n = snprintf(out, outlen, "http://[%.*s]:%s", (int)hostlen, host, port);
    else
        n = snprintf(out, outlen, "http://%.*s:%s", (int)hostlen, host, port);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int cli_fail(cli_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tine: ", ctx->err);
    vfprintf(ctx->err, fmt, ap);
    fputc('\n', ctx->err);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage_error(cli_ctx_t *ctx, const char *msg)
{
    if (ctx->cmd != NULL) {
        fprintf(ctx->err, "tine %s: %s\nusage: tine %s\nRun 'tine help %s' for details.\n", ctx->cmd->name, msg,
                ctx->cmd->usage, ctx->cmd->name);
    } else {
        fprintf(ctx->err, "tine: %s\nRun 'tine --help' for usage.\n", msg);
    }
    return CLI_USAGE;
}

int cli_client_fail(cli_ctx_t *ctx, const tine_client_t *c, int rc, const cli_conn_t *conn)
{
    const char *msg = tine_client_error(c);
    if (msg[0] == '\0')
        msg = tine_client_strerror(rc);
    if (rc == TINE_CLIENT_EAUTH && tine_client_status(c) == 401) {
        if (conn != NULL && conn->context != NULL)
            return cli_fail(ctx, "%s (the key of context %s: tine login again, or set TINE_TOKEN or --token)", msg,
                            conn->context);
        if (conn != NULL && conn->token == NULL)
            return cli_fail(ctx, "%s (tine login, or set TINE_TOKEN or --token; no token found in %s)", msg,
                            conn->token_file);
        return cli_fail(ctx, "%s (tine login, or set TINE_TOKEN or --token)", msg);
    }
    if (rc == TINE_CLIENT_ETLS && conn != NULL && conn->cacert == NULL)
        return cli_fail(ctx, "%s (give the CA of the node's certificate with --cacert FILE or TINE_CACERT)", msg);
    return cli_fail(ctx, "%s", msg);
}

tine_client_t *cli_connect(cli_ctx_t *ctx, cli_conn_t *conn)
{
    cli_resolve_conn(&ctx->g, conn, ctx->err);
    tine_client_t *c = tine_client_new(conn->url, conn->token);
    if (c == NULL)
        cli_fail(ctx, "bad node URL '%s': expected http://HOST:PORT or https://HOST:PORT", conn->url);
    else if (conn->cacert != NULL && tine_client_set_cacert(c, conn->cacert) != 0) {
        cli_fail(ctx, "out of memory");
        tine_client_free(c);
        c = NULL;
    }
    return c;
}

void cli_print_json_text(FILE *out, const char *text)
{
    size_t n = strlen(text);
    fputs(text, out);
    if (n == 0 || text[n - 1] != '\n')
        fputc('\n', out);
}
