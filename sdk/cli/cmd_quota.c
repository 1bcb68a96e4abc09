/* `tine quota [NS]` and `tine quota set NS [flags]`: a namespace's quotas
 * with the cluster's use, and a cluster admin's changes to them
 * (docs/tenancy.md, Quotas). The node checks every value; the flags are
 * checked here first for their shape, so a typo never reaches it. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tine_common.h"

/* The flags of `quota set`: name, the API's member, the largest whole
 * number (0: dollars). */
static const struct {
    const char *flag;
    const char *member;
    uint64_t max;
} quota_flags[] = {
    {"concurrency", "concurrency", 1000000},    {"sandboxes", "sandboxes", 1000000},
    {"memory", "memory_mb", UINT64_C(1) << 30}, {"per-minute", "per_minute", 1000000000},
    {"spend-per-day", "spend_per_day", 0},
};
#define NQUOTA_FLAGS (sizeof quota_flags / sizeof quota_flags[0])

/* The value of flag i as a JSON member of the body: "none" is null, a whole
 * number in range an integer, dollars a string (the node checks their
 * range). NULL with a message when it has neither shape. */
static json_t *flag_value(size_t i, const char *v, char *msg, size_t len)
{
    if (strcmp(v, "none") == 0)
        return json_null();
    size_t digits = strspn(v, "0123456789");
    if (quota_flags[i].max == 0) {
        size_t frac = v[digits] == '.' ? strspn(v + digits + 1, "0123456789") : 0;
        if ((digits || frac) && v[digits + (v[digits] == '.' ? 1 + frac : 0)] == '\0')
            return json_string(v);
        snprintf(msg, len, "--%s: expected dollars such as 12.50, or none (got '%s')", quota_flags[i].flag, v);
        return NULL;
    }
    uint64_t n = digits && digits < 20 && v[digits] == '\0' ? strtoull(v, NULL, 10) : 0;
    if (n < 1 || n > quota_flags[i].max) {
        snprintf(msg, len, "--%s: expected a whole number from 1 to %" PRIu64 ", or none (got '%s')",
                 quota_flags[i].flag, quota_flags[i].max, v);
        return NULL;
    }
    return json_integer((json_int_t)n);
}

/* "/_tine/v1/namespaces/<escaped ns>/quota" */
static char *quota_path(const char *ns)
{
    char *e = tine_escape(ns);
    char *p = xasprintf("/_tine/v1/namespaces/%s/quota", e ? e : "");
    tine_free(e);
    return p;
}

static int quota_set(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *values[NQUOTA_FLAGS] = {NULL};
    cli_flag_t flags[NQUOTA_FLAGS];
    for (size_t i = 0; i < NQUOTA_FLAGS; i++)
        flags[i] = (cli_flag_t){quota_flags[i].flag, 0, &values[i], NULL};
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, NQUOTA_FLAGS, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    json_t *body = json_object();
    for (size_t i = 0; i < NQUOTA_FLAGS; i++) {
        if (values[i] == NULL)
            continue;
        json_t *v = flag_value(i, values[i], err, sizeof err);
        if (v == NULL) {
            json_decref(body);
            return cli_usage_error(ctx, err);
        }
        json_object_set_new(body, quota_flags[i].member, v);
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        return cli_usage_error(ctx, "quota set needs at least one of --concurrency, --sandboxes, --memory, "
                                    "--per-minute, --spend-per-day");
    }
    char *text = json_dumps(body, JSON_COMPACT), *path = quota_path(pos[0]), *answer = NULL;
    json_decref(body);
    int rc = cli_admin_call(ctx, "PUT", path, text, &answer);
    if (rc == CLI_OK) {
        if (!ctx->g.json)
            fprintf(ctx->out, "quotas of %s set\n", pos[0]);
        rc = cli_print_answer(ctx, answer, cli_render_quota);
    }
    free(text);
    free(path);
    tine_free(answer);
    return rc;
}

int cli_cmd_quota(cli_ctx_t *ctx, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "set") == 0)
        return quota_set(ctx, argc - 1, argv + 1);
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 0, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    char *path = npos ? quota_path(pos[0]) : xstrdup("/_tine/v1/quotas"), *answer = NULL;
    int rc = cli_admin_call(ctx, "GET", path, NULL, &answer);
    if (rc == CLI_OK)
        rc = cli_print_answer(ctx, answer, cli_render_quota);
    free(path);
    tine_free(answer);
    return rc;
}
