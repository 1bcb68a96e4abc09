/* Artifacts (docs/artifacts.md): `tine pack DIR -o FILE` writes an app as
 * one deterministic tar.gz (the canonical form of reg_bundle_pack: sorted
 * entries, no times, owner 0, modes 0644), `tine export APP [VERSION] -o
 * FILE` fetches a stored version in the same form, and `tine deploy FILE`
 * (cmd_deploy.c) deploys one. The digest of an artifact is its SHA-256:
 * what `tine versions` shows and `sha256sum FILE` prints. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "tine_common.h"

#include <jansson.h>

/* Writes data to path through a temporary file renamed into place, so an
 * interrupted write never leaves a truncated artifact under its name.
 * Returns CLI_OK, or CLI_FAIL after printing why. */
static int write_artifact(cli_ctx_t *ctx, const char *path, const void *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int rc = tine_write_file(tmp, data, len, 0644);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return cli_fail(ctx, "cannot write %s: %s", path, tine_strerror(rc));
    }
    free(tmp);
    return CLI_OK;
}

int cli_read_artifact(cli_ctx_t *ctx, const char *path, char **app, void **tgz, size_t *len)
{
    *app = NULL;
    *tgz = NULL;
    *len = 0;
    char *data = NULL;
    size_t dlen = 0;
    int rc = tine_read_file(path, &data, &dlen);
    if (rc != 0)
        return cli_fail(ctx, "cannot read %s: %s", path, tine_strerror(rc));
    char err[1024] = "";
    reg_bundle_t *b = NULL;
    /* The node checks it again; checking here names the file. */
    rc = reg_bundle_read(data, dlen, NULL, &b, err, sizeof err);
    if (rc != 0) {
        free(data);
        return cli_fail(ctx, "%s: not a valid tine artifact: %s", path, err[0] ? err : tine_strerror(rc));
    }
    *app = xstrdup(b->manifest->app);
    reg_bundle_free(b);
    *tgz = data;
    *len = dlen;
    return CLI_OK;
}

int cli_pack_checked(cli_ctx_t *ctx, const char *dir, char **app, void **tgz, size_t *len)
{
    if (cli_prepare_bundle(ctx, dir, app, tgz, len) != CLI_OK)
        return CLI_FAIL;
    char err[1024] = "";
    reg_bundle_t *b = NULL;
    int rc = reg_bundle_read(*tgz, *len, NULL, &b, err, sizeof err);
    reg_bundle_free(b);
    if (rc != 0) {
        /* The bundle names its files from the app's root; an editor wants
         * them as the user reaches them: "app/src/x.lua:3: ...". */
        size_t plen = strcspn(err, ":");
        char *file = xasprintf("%s/%.*s", dir, (int)plen, err);
        struct stat st;
        bool prefix = strcmp(dir, ".") != 0 && err[plen] == ':' && stat(file, &st) == 0 && S_ISREG(st.st_mode);
        fprintf(ctx->err, "%s%s%s\n", prefix ? dir : "", prefix ? "/" : "", err[0] ? err : tine_strerror(rc));
        free(file);
        free(*app);
        free(*tgz);
        *app = NULL;
        *tgz = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_cmd_pack(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1] = {"."}, *out = NULL;
    const cli_flag_t flags[] = {{"output", 'o', &out, NULL}};
    int npos = 0;
    char err[1024];
    if (cli_parse_command(argc, argv, flags, 1, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    const char *dir = npos > 0 ? pos[0] : ".";
    char *app = NULL;
    void *tgz = NULL;
    size_t len = 0;
    /* A pack is deployable: the node's checks (Lua syntax, exports) run
     * here too. */
    if (cli_pack_checked(ctx, dir, &app, &tgz, &len) != CLI_OK)
        return CLI_FAIL;
    char *path = out ? xstrdup(out) : xasprintf("%s.tine", app);
    int rc = write_artifact(ctx, path, tgz, len);
    if (rc == CLI_OK) {
        char digest[65];
        reg_sha256_hex(tgz, len, digest);
        if (ctx->g.json) {
            json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "app", app, "file", path, "bytes", (json_int_t)len,
                                  "digest", digest);
            char *text = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            fprintf(ctx->out, "%s\n", text);
            free(text);
        } else
            fprintf(ctx->out, "packed %s into %s (%zu bytes, digest %s)\n", app, path, len, digest);
    }
    free(path);
    free(app);
    free(tgz);
    return rc;
}

/* The digest `tine versions` lists for version v of the answer (or, with v
 * 0, the live version and its number in *v); NULL when not listed. */
static const char *listed_digest(json_t *answer, uint64_t *v)
{
    if (*v == 0)
        *v = (uint64_t)json_integer_value(json_object_get(answer, "live"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(answer, "versions"), i, e)
    {
        if ((uint64_t)json_integer_value(json_object_get(e, "version")) == *v)
            return json_string_value(json_object_get(e, "digest"));
    }
    return NULL;
}

int cli_cmd_export(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2], *out = NULL;
    const cli_flag_t flags[] = {{"output", 'o', &out, NULL}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    uint64_t version = 0;
    if (npos == 2) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(pos[1], &end, 10);
        if (pos[1][0] < '1' || pos[1][0] > '9' || *end != '\0' || errno != 0)
            return cli_usage_error(ctx, "VERSION: expected a version number (1, 2, ...)");
        version = n;
    }
    const char *app = pos[0];
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL) {
        cli_conn_dispose(&conn);
        return CLI_FAIL;
    }
    /* The version list first: it names the live version and the digest the
     * exported bytes must have. */
    char *answer = NULL;
    void *data = NULL;
    size_t len = 0;
    int rc = CLI_FAIL, e = tine_versions(c, app, &answer);
    if (e == 0) {
        json_t *j = json_loads(answer, 0, NULL);
        const char *want = listed_digest(j, &version);
        char *want_copy = want ? xstrdup(want) : NULL;
        json_decref(j);
        if (version == 0) {
            rc = cli_fail(ctx, "%s has no live version to export (name one: tine export %s VERSION)", app, app);
        } else if ((e = tine_export(c, app, version, &data, &len)) == 0) {
            char digest[65];
            reg_sha256_hex(data, len, digest);
            if (want_copy != NULL && strcmp(want_copy, digest) != 0) {
                rc = cli_fail(ctx, "%s version %" PRIu64 ": the node sent an artifact of digest %s, not the %s it lists",
                              app, version, digest, want_copy);
            } else {
                char *path = out ? xstrdup(out) : xasprintf("%s-%" PRIu64 ".tine", app, version);
                rc = write_artifact(ctx, path, data, len);
                if (rc == CLI_OK)
                    fprintf(ctx->out, "exported %s version %" PRIu64 " into %s (%zu bytes, digest %s)\n", app, version,
                            path, len, digest);
                free(path);
            }
        }
        free(want_copy);
    }
    if (e != 0)
        rc = cli_client_fail(ctx, c, e, &conn);
    tine_free(answer);
    tine_free(data);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
