/* The `tine` commands about the cluster's nodes: nodes (the list) and
 * drain (ask one node to drain and follow it until it left). */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fetch_nodes(tine_client_t *c, const char *unused, char **answer)
{
    (void)unused;
    return tine_nodes(c, answer);
}

int cli_cmd_nodes(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 0, 0, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    return cli_fetch_and_print(ctx, NULL, fetch_nodes, cli_render_nodes);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What the list says of one node now. */
typedef struct {
    bool listed;
    bool self;      /* the node that answered is the one draining */
    char state[32];
    char left[32];
    double bound_s; /* how long its drain may take (grace + timeout), 0 when unknown */
} node_seen_t;

static void read_node(const char *answer, const char *node, node_seen_t *seen)
{
    memset(seen, 0, sizeof *seen);
    json_t *j = json_loads(answer, 0, NULL);
    const char *by = json_string_value(json_object_get(j, "answered_by"));
    seen->self = by && strcmp(by, node) == 0;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(j, "nodes"), i, n)
    {
        const char *id = json_string_value(json_object_get(n, "node"));
        if (id == NULL || strcmp(id, node) != 0)
            continue;
        const char *state = json_string_value(json_object_get(n, "state"));
        const char *left = json_string_value(json_object_get(n, "left"));
        seen->listed = true;
        snprintf(seen->state, sizeof seen->state, "%s", state ? state : "?");
        snprintf(seen->left, sizeof seen->left, "%s", left ? left : "");
        seen->bound_s = (json_number_value(json_object_get(n, "drain_grace_ms")) +
                         json_number_value(json_object_get(n, "drain_timeout_ms"))) /
                        1000.0;
    }
    json_decref(j);
}

/* Follows a drain through the node list until the node is gone. Answers
 * that fail are tried again (the node tine talks to may be the one that
 * drains, or a load balancer in front of it moves on). */
static int follow_drain(cli_ctx_t *ctx, tine_client_t *c, const char *node, double wait_s)
{
    double start = now_s(), limit = wait_s;
    bool said_draining = false, said_lost_contact = false, talks_to_it = false;
    for (;;) {
        char *answer = NULL;
        node_seen_t seen = {0};
        int e = tine_nodes(c, &answer);
        if (e == 0) {
            read_node(answer, node, &seen);
            talks_to_it = seen.self;
        }
        tine_free(answer);
        double took = now_s() - start;
        if (e == TINE_CLIENT_ECONNECT && talks_to_it) {
            /* It stopped taking connections: the end of its drain is near,
             * but only another node could say when it left. */
            fprintf(ctx->out,
                    "%s: stopped taking connections after %.1f s; it finishes its calls and leaves (tine talks to it, "
                    "not through another node, so it cannot follow it to the end)\n",
                    node, took);
            return CLI_OK;
        }
        if (e != 0 && !said_lost_contact) {
            fprintf(ctx->err, "tine: cannot follow the drain: %s; trying again\n", tine_client_error(c));
            said_lost_contact = true;
        }
        if (e == 0 && limit == 0 && seen.bound_s > 0)
            limit = seen.bound_s + 15; /* its own bound, and time to leave */
        if (e == 0 && seen.listed && strcmp(seen.state, "draining") == 0 && !said_draining) {
            fprintf(ctx->out, "%s: draining\n", node);
            fflush(ctx->out);
            said_draining = true;
        }
        if (e == 0 && (!seen.listed || strcmp(seen.state, "gone") == 0)) {
            if (seen.listed && strcmp(seen.left, "lost") == 0)
                return cli_fail(ctx, "%s was lost (its heartbeat stopped) %.1f s after it was asked to drain", node,
                                took);
            fprintf(ctx->out, "%s: gone (drained) after %.1f s\n", node, took);
            return CLI_OK;
        }
        if (took > (limit > 0 ? limit : 60))
            return cli_fail(ctx, "%s is still %s after %.0f s", node, seen.listed ? seen.state : "not answering", took);
        sleep_ms(250);
    }
}

int cli_cmd_drain(cli_ctx_t *ctx, int argc, char **argv)
{
    bool no_wait = false;
    const char *wait_text = NULL;
    const cli_flag_t flags[] = {{"no-wait", 0, NULL, &no_wait}, {"wait", 0, &wait_text, NULL}};
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 2, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    double wait_s = 0;
    if (wait_text) {
        char *end;
        wait_s = strtod(wait_text, &end);
        if (end == wait_text || *end != '\0' || wait_s <= 0 || wait_s > 86400) {
            snprintf(err, sizeof err, "--wait must be a number of seconds, not '%s'", wait_text);
            return cli_usage_error(ctx, err);
        }
    }
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    int rc = CLI_FAIL;
    char *answer = NULL;
    if (c != NULL) {
        int e = tine_drain(c, pos[0], &answer);
        if (e != 0) {
            rc = cli_client_fail(ctx, c, e, &conn);
        } else if (ctx->g.json || no_wait) {
            if (ctx->g.json)
                cli_print_json_text(ctx->out, answer);
            else
                fprintf(ctx->out, "%s: asked to drain\n", pos[0]);
            rc = CLI_OK;
        } else {
            fprintf(ctx->out, "%s: asked to drain\n", pos[0]);
            fflush(ctx->out);
            rc = follow_drain(ctx, c, pos[0], wait_s);
        }
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
