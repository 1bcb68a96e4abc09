/* `tine events emit|dlq|replay`: send a CloudEvent to a node, list an
 * app's dead letters, send them again. */
#include "cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>

#include "tine_common.h"

/* A random event id: 16 bytes of hex. */
static void random_id(char out[33])
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw) {
        uint64_t x = tine_now_ns() ^ ((uint64_t)getpid() << 32);
        memcpy(raw, &x, 8);
        memcpy(raw + 8, &x, 8);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* `tine events emit --type T --source S [--data JSON] [--id ID] [--subject
 * S]`: sends one CloudEvent (a random id unless given). */
static int events_emit(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *type = NULL, *source = NULL, *data = NULL, *id = NULL, *subject = NULL;
    const cli_flag_t flags[] = {
        {"type", 0, &type, NULL},   {"source", 0, &source, NULL},   {"data", 0, &data, NULL},
        {"id", 0, &id, NULL},       {"subject", 0, &subject, NULL},
    };
    const char *pos[1];
    int npos = 0;
    char err[512];
    if (cli_parse_command(argc, argv, flags, sizeof flags / sizeof flags[0], pos, 0, 0, &npos, err, sizeof err) !=
        CLI_OK)
        return cli_usage_error(ctx, err);
    if (type == NULL || source == NULL)
        return cli_usage_error(ctx, "events emit needs --type and --source");
    char gen[33];
    if (id == NULL) {
        random_id(gen);
        id = gen;
    }
    char when[32];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), when);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "source", source, "type",
                           type, "time", when);
    if (ev == NULL)
        return cli_usage_error(ctx, "--type, --source and --id must be UTF-8 text");
    if (subject)
        json_object_set_new(ev, "subject", json_string(subject));
    if (data) {
        json_error_t jerr;
        json_t *d = json_loads(data, JSON_DECODE_ANY, &jerr);
        if (d == NULL) {
            json_decref(ev);
            snprintf(err, sizeof err, "--data is not valid JSON: %s (column %d)", jerr.text, jerr.column);
            return cli_usage_error(ctx, err);
        }
        json_object_set_new(ev, "datacontenttype", json_string("application/json"));
        json_object_set_new(ev, "data", d);
    }
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_events_emit(c, text, strlen(text), &answer);
        if (e != 0) {
            rc = cli_client_fail(ctx, c, e, &conn);
        } else {
            rc = CLI_OK;
            if (ctx->g.json)
                cli_print_json_text(ctx->out, answer);
            else
                fprintf(ctx->out, "accepted event %s\n", id);
        }
    }
    free(text);
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

/* Prints a dead-letter answer as a table. */
static int render_dlq(cli_ctx_t *ctx, const char *answer)
{
    json_t *j = json_loads(answer, 0, NULL);
    json_t *list = json_object_get(j, "dead_letters");
    if (!json_is_array(list)) {
        json_decref(j);
        return cli_fail(ctx, "unexpected answer from the node: no dead_letters");
    }
    if (json_array_size(list) == 0) {
        fprintf(ctx->out, "no dead letters\n");
        json_decref(j);
        return CLI_OK;
    }
    static const char *const head[] = {"ID", "FUNCTION", "ATTEMPTS", "FAILED", "EVENT", "REASON"};
    cli_table_t t;
    cli_table_init(&t, 6, head);
    size_t i;
    json_t *l;
    json_array_foreach(list, i, l)
    {
        char attempts[16], event[256], reason[128];
        snprintf(attempts, sizeof attempts, "%d", (int)json_integer_value(json_object_get(l, "attempts")));
        json_t *ev = json_object_get(l, "event");
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = json_string_value(json_object_get(ev, "id"));
        snprintf(event, sizeof event, "%s %s", type ? type : "?", id ? id : "?");
        const char *r = json_string_value(json_object_get(l, "reason"));
        snprintf(reason, sizeof reason, "%s", r ? r : "");
        for (char *p = reason; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        const char *row[] = {json_string_value(json_object_get(l, "id")),
                             json_string_value(json_object_get(l, "function")),
                             attempts,
                             json_string_value(json_object_get(l, "failed_at")),
                             event,
                             reason};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, ctx->out);
    cli_table_dispose(&t);
    json_decref(j);
    return CLI_OK;
}

/* `tine events dlq APP`: lists the dead letters of APP. */
static int events_dlq(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_dlq(c, pos[0], &answer);
        if (e != 0)
            rc = cli_client_fail(ctx, c, e, &conn);
        else if (ctx->g.json)
            cli_print_json_text(ctx->out, answer), rc = CLI_OK;
        else
            rc = render_dlq(ctx, answer);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

#define REPLAY_MAX_IDS 1000

/* `tine events replay APP [ID...]`: puts the dead letters named (all without
 * ids) back in the stream. */
static int events_replay(cli_ctx_t *ctx, int argc, char **argv)
{
    const char **pos = xcalloc(REPLAY_MAX_IDS + 1, sizeof(*pos));
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, REPLAY_MAX_IDS + 1, &npos, err, sizeof err) != CLI_OK) {
        free(pos);
        return cli_usage_error(ctx, err);
    }
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_dlq_replay(c, pos[0], pos + 1, (size_t)npos - 1, &answer);
        if (e != 0) {
            rc = cli_client_fail(ctx, c, e, &conn);
        } else if (ctx->g.json) {
            cli_print_json_text(ctx->out, answer);
            rc = CLI_OK;
        } else {
            json_t *j = json_loads(answer, 0, NULL);
            json_int_t n = json_integer_value(json_object_get(j, "replayed"));
            fprintf(ctx->out, "replayed %lld dead letter%s of %s\n", (long long)n, n == 1 ? "" : "s", pos[0]);
            size_t i;
            json_t *m;
            rc = CLI_OK;
            json_array_foreach(json_object_get(j, "missing"), i, m)
            {
                fprintf(ctx->err, "tine: %s has no dead letter %s\n", pos[0], json_string_value(m));
                rc = CLI_FAIL;
            }
            json_decref(j);
        }
    }
    free(pos);
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}

int cli_cmd_events(cli_ctx_t *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(ctx, "events needs a subcommand: emit, dlq or replay");
    if (strcmp(argv[1], "emit") == 0)
        return events_emit(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "dlq") == 0)
        return events_dlq(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return events_replay(ctx, argc - 1, argv + 1);
    char msg[256];
    snprintf(msg, sizeof msg, "unknown events subcommand '%s' (emit, dlq or replay)", argv[1]);
    return cli_usage_error(ctx, msg);
}
