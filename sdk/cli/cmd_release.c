/* The `tine` commands of releases (docs/releases.md): promote a stored
 * version, tag versions, split traffic, rollouts. Each sends one admin call and
 * prints a line (with --json the server's answer as-is). */
#include "cli.h"

#include "app_model.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a version number >= 1; prints a usage error and returns CLI_USAGE
 * when `text` is not one. */
static int parse_version(cli_ctx_t *ctx, const char *text, uint64_t *version)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || text[0] < '0' || text[0] > '9') {
        char err[256];
        snprintf(err, sizeof err, "version must be a positive number, not '%s'", text);
        return cli_usage_error(ctx, err);
    }
    *version = v;
    return CLI_OK;
}

/* Sends `method` to /_tine/v1/apps/APP/<suffix> (suffix escaped by the
 * caller) with body, and prints the answer through render. */
static int release_call(cli_ctx_t *ctx, const char *method, const char *app, const char *suffix, const char *body,
                        cli_render_fn render)
{
    char *eapp = tine_escape(app);
    if (eapp == NULL)
        return cli_fail(ctx, "out of memory");
    char *path = xasprintf("/_tine/v1/apps/%s/%s", eapp, suffix);
    free(eapp);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_call(c, method, path, body, &answer);
        rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : cli_print_answer(ctx, answer, render);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    free(path);
    return rc;
}

/* "APP: live version is now N" */
static int render_promote(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *live = json_object_get(j, "live");
    if (app == NULL || !json_is_integer(live)) {
        json_decref(j);
        snprintf(err, errlen, "unexpected answer from the node (no \"app\" and \"live\")");
        return -1;
    }
    fprintf(out, "%s: live version is now %" JSON_INTEGER_FORMAT "\n", app, json_integer_value(live));
    json_decref(j);
    return 0;
}

/* "APP: tag beta -> version N" or "APP: tag beta removed" */
static int render_tag(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *app = json_string_value(json_object_get(j, "app"));
    const char *tag = json_string_value(json_object_get(j, "tag"));
    json_t *v = json_object_get(j, "version");
    if (app == NULL || tag == NULL) {
        json_decref(j);
        snprintf(err, errlen, "unexpected answer from the node (no \"app\" and \"tag\")");
        return -1;
    }
    if (json_is_integer(v))
        fprintf(out, "%s: tag %s -> version %" JSON_INTEGER_FORMAT " (/%s@%s/)\n", app, tag, json_integer_value(v), app,
                tag);
    else
        fprintf(out, "%s: tag %s removed\n", app, tag);
    json_decref(j);
    return 0;
}

/* "APP: version N gets P% of clients, the live version the rest" or
 * "APP: no split, the live version serves every client" */
static int render_split(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *split = json_object_get(j, "split");
    if (app == NULL) {
        json_decref(j);
        snprintf(err, errlen, "unexpected answer from the node (no \"app\")");
        return -1;
    }
    if (json_is_object(split))
        fprintf(out,
                "%s: version %" JSON_INTEGER_FORMAT " gets %" JSON_INTEGER_FORMAT
                "%% of clients%s, the live version the rest\n",
                app, json_integer_value(json_object_get(split, "version")),
                json_integer_value(json_object_get(split, "percent")),
                json_is_true(json_object_get(split, "events")) ? " and of events and schedule ticks" : "");
    else
        fprintf(out, "%s: no split, the live version serves every client\n", app);
    json_decref(j);
    return 0;
}

int cli_cmd_promote(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 2, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    uint64_t version;
    if (parse_version(ctx, pos[1], &version) != CLI_OK)
        return CLI_USAGE;
    char body[48];
    snprintf(body, sizeof body, "{\"version\":%" PRIu64 "}", version);
    return release_call(ctx, "POST", pos[0], "promote", body, render_promote);
}

int cli_cmd_tag(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[3];
    bool rm = false;
    const cli_flag_t flags[] = {{"rm", 0, NULL, &rm}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 1, pos, 2, 3, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (rm != (npos == 2))
        return cli_usage_error(ctx, rm ? "--rm takes no version" : "give the version the tag names, or --rm");
    if (!reg_tag_name_valid(pos[1], strlen(pos[1]))) {
        snprintf(err, sizeof err, "tag '%s': expected 1 to %d of a-z, 0-9 and '-', starting with a letter", pos[1],
                 REG_TAG_MAX);
        return cli_usage_error(ctx, err);
    }
    char suffix[64];
    snprintf(suffix, sizeof suffix, "tags/%s", pos[1]);
    if (rm)
        return release_call(ctx, "DELETE", pos[0], suffix, NULL, render_tag);
    uint64_t version;
    if (parse_version(ctx, pos[2], &version) != CLI_OK)
        return CLI_USAGE;
    char body[48];
    snprintf(body, sizeof body, "{\"version\":%" PRIu64 "}", version);
    return release_call(ctx, "PUT", pos[0], suffix, body, render_tag);
}

int cli_cmd_split(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    bool clear = false, events = false;
    const cli_flag_t flags[] = {{"clear", 0, NULL, &clear}, {"events", 0, NULL, &events}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 2, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (clear && events)
        return cli_usage_error(ctx, "--events goes with VERSION=PERCENT, not --clear");
    if (clear != (npos == 1))
        return cli_usage_error(ctx, clear ? "--clear takes no VERSION=PERCENT" : "give VERSION=PERCENT, or --clear");
    if (clear)
        return release_call(ctx, "DELETE", pos[0], "split", NULL, render_split);
    uint64_t version;
    unsigned percent;
    if (reg_split_parse(pos[1], &version, &percent, err, sizeof err) != 0)
        return cli_usage_error(ctx, err);
    char body[100];
    snprintf(body, sizeof body, "{\"version\":%" PRIu64 ",\"percent\":%u%s}", version, percent,
             events ? ",\"events\":true" : "");
    return release_call(ctx, "PUT", pos[0], "split", body, render_split);
}

/* Prints a rollout's status: the version, state, steps (the current one
 * marked), bounds, per version requests, errors, p50/p99, the decision. */
static int render_rollout(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *app = json_string_value(json_object_get(j, "app"));
    const char *st = json_string_value(json_object_get(j, "state"));
    json_t *steps = json_object_get(j, "steps");
    if (app == NULL || st == NULL || !json_is_array(steps)) {
        json_decref(j);
        snprintf(err, errlen, "unexpected answer from the node (no \"app\", \"state\" and \"steps\")");
        return -1;
    }
    json_int_t step = json_integer_value(json_object_get(j, "step"));
    fprintf(out, "%s: rollout of version %" JSON_INTEGER_FORMAT " (replacing %" JSON_INTEGER_FORMAT "): %s\n", app,
            json_integer_value(json_object_get(j, "version")), json_integer_value(json_object_get(j, "from")), st);
    fprintf(out, "steps:");
    size_t i;
    json_t *v;
    json_array_foreach(steps, i, v)
    {
        fprintf(out, (json_int_t)i + 1 == step ? " [%" JSON_INTEGER_FORMAT "%%]" : " %" JSON_INTEGER_FORMAT "%%",
                json_integer_value(v));
    }
    json_int_t pm = json_integer_value(json_object_get(j, "max_error_permyriad"));
    json_int_t p99 = json_integer_value(json_object_get(j, "max_p99_ms"));
    fprintf(out,
            "  every %" JSON_INTEGER_FORMAT "s; bounds: errors <= %" JSON_INTEGER_FORMAT ".%02" JSON_INTEGER_FORMAT
            "%%",
            json_integer_value(json_object_get(j, "interval_ms")) / 1000, pm / 100, pm % 100);
    if (p99 > 0)
        fprintf(out, ", p99 <= %" JSON_INTEGER_FORMAT "ms", p99);
    fprintf(out, ", judged from %" JSON_INTEGER_FORMAT " requests\n",
            json_integer_value(json_object_get(j, "min_requests")));
    static const char *const head[] = {"VERSION", "REQUESTS", "ERRORS", "P50", "P99"};
    cli_table_t t;
    cli_table_init(&t, 5, head);
    json_array_foreach(json_object_get(j, "versions"), i, v)
    {
        char ver[32], req[32], errs[32], p50[32], p99s[32];
        snprintf(ver, sizeof ver, "%" JSON_INTEGER_FORMAT "%s", json_integer_value(json_object_get(v, "version")),
                 i == 0 ? " (new)" : "");
        snprintf(req, sizeof req, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(v, "requests")));
        snprintf(errs, sizeof errs, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(v, "errors")));
        json_t *a = json_object_get(v, "p50_ms"), *b = json_object_get(v, "p99_ms");
        snprintf(p50, sizeof p50, json_is_integer(a) ? "<=%" JSON_INTEGER_FORMAT "ms" : "-", json_integer_value(a));
        snprintf(p99s, sizeof p99s, json_is_integer(b) ? "<=%" JSON_INTEGER_FORMAT "ms" : "-", json_integer_value(b));
        const char *row[] = {ver, req, errs, p50, p99s};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    const char *decision = json_string_value(json_object_get(j, "decision"));
    if (decision && decision[0])
        fprintf(out, "decision: %s\n", decision);
    json_decref(j);
    return 0;
}

int cli_cmd_rollout(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 2, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (strcmp(pos[0], "status") == 0)
        return release_call(ctx, "GET", pos[1], "rollout", NULL, render_rollout);
    if (strcmp(pos[0], "pause") != 0 && strcmp(pos[0], "resume") != 0 && strcmp(pos[0], "abort") != 0) {
        snprintf(err, sizeof err, "unknown rollout command '%s': expected status, pause, resume or abort", pos[0]);
        return cli_usage_error(ctx, err);
    }
    char suffix[32];
    snprintf(suffix, sizeof suffix, "rollout/%s", pos[0]);
    return release_call(ctx, "POST", pos[1], suffix, NULL, render_rollout);
}
