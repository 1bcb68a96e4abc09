/* `tine deploy [DIR|FILE] [--force] [--stage]`: validates the manifest
 * locally, packs the app into a bundle (or reads an artifact made by tine
 * pack or tine export) and uploads it as the app's next version (unless it
 * is the live version's content already); with --stage it is stored, not
 * made live. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "tine_common.h"

static const char *const manifest_names[] = {"tine.yaml", "tine.yml", "tine.json"};

/* Joins dir and name the way a user would write it: "tine.yaml" for the
 * current directory, "app/tine.yaml" otherwise. */
static char *join_path(const char *dir, const char *name)
{
    if (strcmp(dir, ".") == 0 || strcmp(dir, "./") == 0)
        return xstrdup(name);
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name);
}

int cli_prepare_bundle(cli_ctx_t *ctx, const char *dir, char **app, void **tgz, size_t *len)
{
    *app = NULL;
    *tgz = NULL;
    *len = 0;
    struct stat st;
    if (stat(dir, &st) != 0)
        return cli_fail(ctx, "cannot open %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cli_fail(ctx, "%s is not a directory", dir);

    char *path = NULL;
    for (size_t i = 0; i < sizeof manifest_names / sizeof manifest_names[0] && path == NULL; i++) {
        char *p = join_path(dir, manifest_names[i]);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            path = p;
        else
            free(p);
    }
    if (path == NULL)
        return cli_fail(ctx, "no tine.yaml, tine.yml or tine.json in %s", dir);

    char *data = NULL;
    size_t dlen = 0;
    int rc = tine_read_file(path, &data, &dlen);
    if (rc != 0) {
        cli_fail(ctx, "cannot read %s: %s", path, tine_strerror(rc));
        free(path);
        return CLI_FAIL;
    }
    reg_manifest_t *m = NULL;
    char err[1024] = "";
    rc = reg_manifest_parse(path, data, dlen, &m, err, sizeof err);
    free(data);
    if (rc != 0) {
        /* Verbatim "file:line:col: key: expected ..." so editors can jump. */
        if (err[0] != '\0')
            fprintf(ctx->err, "%s\n", err);
        else
            cli_fail(ctx, "%s: %s", path, tine_strerror(rc));
        free(path);
        return CLI_FAIL;
    }
    free(path);
    *app = xstrdup(m->app);
    reg_manifest_free(m);

    err[0] = '\0';
    rc = reg_bundle_pack_dir(dir, tgz, len, err, sizeof err);
    if (rc != 0) {
        cli_fail(ctx, "cannot pack %s: %s", dir, err[0] ? err : tine_strerror(rc));
        free(*app);
        *app = NULL;
        free(*tgz);
        *tgz = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_send_bundle(cli_ctx_t *ctx, tine_client_t *c, const cli_conn_t *conn, const char *app, const void *tgz,
                    size_t len, unsigned flags)
{
    char *answer = NULL;
    unsigned sent = flags & (TINE_DEPLOY_FORCE | TINE_DEPLOY_STAGE);
    int e = tine_deploy_ex(c, app, tgz, len, sent, &answer);
    if (e == TINE_CLIENT_ECONFLICT && (flags & CLI_DEPLOY_FORCE_IF_REFUSED))
        e = tine_deploy_ex(c, app, tgz, len, sent | TINE_DEPLOY_FORCE, &answer);
    if (e != 0)
        return cli_client_fail(ctx, c, e, conn);
    int rc = CLI_OK;
    if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
    } else {
        char err[512];
        if (cli_render_deploy(answer, ctx->out, err, sizeof err) != 0)
            rc = cli_fail(ctx, "%s", err);
    }
    tine_free(answer);
    return rc;
}

int cli_cmd_deploy(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1] = {"."};
    bool force = false, stage = false;
    const cli_flag_t flags[] = {{"force", 0, NULL, &force}, {"stage", 0, NULL, &stage}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 2, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *dir = npos > 0 ? pos[0] : ".";

    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    /* A regular file is an artifact (tine pack, tine export). */
    struct stat st;
    bool artifact = stat(dir, &st) == 0 && S_ISREG(st.st_mode);
    if ((artifact ? cli_read_artifact(ctx, dir, &app, &tgz, &len) : cli_prepare_bundle(ctx, dir, &app, &tgz, &len)) !=
        CLI_OK)
        return CLI_FAIL;
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = c != NULL ? cli_send_bundle(ctx, c, &conn, app, tgz, len,
                                         (force ? TINE_DEPLOY_FORCE : 0) | (stage ? TINE_DEPLOY_STAGE : 0))
                       : CLI_FAIL;
    tine_client_free(c);
    cli_conn_dispose(&conn);
    free(app);
    free(tgz);
    return rc;
}
