/* The `tine` commands that show what ran and what it cost: usage,
 * activations, activation, logs. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tine_common.h"

/* Runs one read of the admin API and prints its answer with render (or as-is
 * with --json). */
static int show(cli_ctx_t *ctx, int rc_call, tine_client_t *c, cli_conn_t *conn, char *answer,
                int (*render)(const char *json, FILE *out, char *err, size_t errlen))
{
    int rc;
    char err[512];
    if (rc_call != 0) {
        rc = cli_client_fail(ctx, c, rc_call, conn);
    } else if (ctx->g.json) {
        cli_print_json_text(ctx->out, answer);
        rc = CLI_OK;
    } else {
        rc = render(answer, ctx->out, err, sizeof err) == 0 ? CLI_OK : cli_fail(ctx, "%s", err);
        /* A full page of activations: where the next one starts, on stderr
         * (the table on stdout stays a table). */
        json_t *j = rc == CLI_OK ? json_loads(answer, 0, NULL) : NULL;
        const char *next = json_string_value(json_object_get(j, "next"));
        if (next)
            fprintf(ctx->err, "tine: more with --after %s\n", next);
        json_decref(j);
    }
    tine_free(answer);
    tine_client_free(c);
    cli_conn_dispose(conn);
    return rc;
}

/* Parses "N" (1 to max) into *out; prints a usage error otherwise. */
static int parse_limit(cli_ctx_t *ctx, const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (s && (errno || *end || v == 0 || v > max || s[0] == '-' || s[0] == '+')) {
        char msg[128];
        snprintf(msg, sizeof msg, "--limit must be a number from 1 to %u, not '%s'", max, s);
        return cli_usage_error(ctx, msg);
    }
    *out = (unsigned)v;
    return CLI_OK;
}

/* Renders a usage report as a table. */
static int render_usage_table(const char *json, FILE *out, char *err, size_t errlen)
{
    return cli_render_usage(json, false, out, err, errlen);
}

/* Renders a usage report as CSV. */
static int render_usage_csv(const char *json, FILE *out, char *err, size_t errlen)
{
    return cli_render_usage(json, true, out, err, errlen);
}

int cli_cmd_usage(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *by = NULL, *pos[1];
    bool csv = false;
    const cli_flag_t flags[] = {
        {"from", 0, &from, NULL}, {"to", 0, &to, NULL}, {"by", 0, &by, NULL}, {"csv", 0, NULL, &csv}};
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, flags, 4, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (by && strcmp(by, "function") != 0 && strcmp(by, "version") != 0 && strcmp(by, "day") != 0)
        return cli_usage_error(ctx, "--by must be function, version or day");
    if (csv && ctx->g.json)
        return cli_usage_error(ctx, "--csv and --json exclude each other");
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = tine_usage(c, pos[0], from, to, by, &answer);
    return show(ctx, e, c, &conn, answer, csv ? render_usage_csv : render_usage_table);
}

int cli_cmd_activations(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *limit_s = NULL, *version = NULL, *status = NULL, *min_dur = NULL, *since = NULL, *until = NULL,
               *after = NULL, *pos[2];
    bool cold = false, warm = false;
    const cli_flag_t flags[] = {{"limit", 'n', &limit_s, NULL},   {"version", 0, &version, NULL},
                                {"status", 0, &status, NULL},     {"min-duration", 0, &min_dur, NULL},
                                {"since", 0, &since, NULL},       {"until", 0, &until, NULL},
                                {"after", 0, &after, NULL},       {"cold", 0, NULL, &cold},
                                {"warm", 0, NULL, &warm}};
    int npos = 0;
    char err[256];
    unsigned limit = 0;
    if (cli_parse_command(argc, argv, flags, 9, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (parse_limit(ctx, limit_s, 100000, &limit) != CLI_OK)
        return CLI_USAGE;
    if (cold && warm)
        return cli_usage_error(ctx, "--cold and --warm exclude each other");
    /* The node checks the values and names a bad one. */
    char lim[16] = "";
    if (limit > 0)
        snprintf(lim, sizeof lim, "%u", limit);
    const char *params[] = {"limit",  lim,     "function",        npos > 1 ? pos[1] : NULL,
                            "version", version, "status",          status,
                            "cold",    cold ? "1" : warm ? "0" : NULL,
                            "min_duration_ms", min_dur, "since", since, "until", until, "after", after, NULL};
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = tine_activations_query(c, pos[0], params, &answer);
    return show(ctx, e, c, &conn, answer, cli_render_activations);
}

/* A command of one ID argument: fetches it with get and prints it with
 * render. */
static int show_one(cli_ctx_t *ctx, int argc, char **argv, int (*get)(tine_client_t *, const char *, char **),
                    int (*render)(const char *json, FILE *out, char *err, size_t errlen))
{
    const char *pos[1];
    int npos = 0;
    char err[256];
    if (cli_parse_command(argc, argv, NULL, 0, pos, 1, 1, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    char *answer = NULL;
    int e = get(c, pos[0], &answer);
    return show(ctx, e, c, &conn, answer, render);
}

int cli_cmd_trace(cli_ctx_t *ctx, int argc, char **argv)
{
    return show_one(ctx, argc, argv, tine_trace, cli_render_trace);
}

int cli_cmd_activation(cli_ctx_t *ctx, int argc, char **argv)
{
    return show_one(ctx, argc, argv, tine_activation, cli_render_activation);
}

/* Lines printed recently, to recognise them when a reconnected stream
 * sends its catch-up: a ring of hashes of (t, id, function, version, level,
 * msg) with their times. */
#define LOGS_SEEN_MAX 10000
/* Catch-up lines asked for after a reconnect (the node's most). */
#define LOGS_CATCH_UP 10000
#define LOGS_RETRY_FIRST_MS 500
#define LOGS_RETRY_MAX_MS 10000

typedef struct {
    uint64_t hash;
    int64_t t;
} seen_line_t;

typedef struct {
    cli_ctx_t *ctx;
    const char *app;
    bool follow;
    bool live;      /* the stream answered (this connection) */
    bool announced; /* "following ..." printed once */
    bool resyncing; /* a reconnected stream: skip what was printed */
    int64_t cutoff; /* unix ms: older lines were before we started, or left the ring */
    seen_line_t *seen;
    size_t seen_head, seen_len;
} logs_state_t;

/* h extended with the n bytes at p (FNV-1a). */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* A line's identity and time. Returns false for a line that is not a log
 * line object (notes of the node; printed as they come). */
static bool line_identity(const char *line, uint64_t *hash, int64_t *t)
{
    json_t *j = json_loads(line, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(j) || !json_is_integer(json_object_get(j, "t"))) {
        json_decref(j);
        return false;
    }
    *t = json_integer_value(json_object_get(j, "t"));
    uint64_t h = 14695981039346656037ull;
    static const char *const keys[] = {"t", "id", "function", "version", "level", "msg"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *v = json_dumps(json_object_get(j, keys[i]), JSON_ENCODE_ANY | JSON_COMPACT);
        if (v)
            h = fnv1a(h, v, strlen(v) + 1);
        free(v);
    }
    json_decref(j);
    *hash = h;
    return true;
}

/* Remembers a printed line (its hash and time) in the ring; the oldest leaves
 * when it is full and moves the cutoff up to its time. */
static void seen_add(logs_state_t *st, uint64_t hash, int64_t t)
{
    size_t i = (st->seen_head + st->seen_len) % LOGS_SEEN_MAX;
    if (st->seen_len == LOGS_SEEN_MAX) {
        /* The oldest leaves the ring: lines that old are not recognised
         * any more, so a catch-up must not print them. */
        if (st->seen[st->seen_head].t > st->cutoff)
            st->cutoff = st->seen[st->seen_head].t;
        st->seen_head = (st->seen_head + 1) % LOGS_SEEN_MAX;
        i = (st->seen_head + st->seen_len - 1) % LOGS_SEEN_MAX;
    } else {
        st->seen_len++;
    }
    st->seen[i] = (seen_line_t){hash, t};
}

/* Whether a catch-up line was printed already; each printed line matches
 * one catch-up line at most (two identical lines stay two). */
static bool seen_take(logs_state_t *st, uint64_t hash)
{
    for (size_t k = 0; k < st->seen_len; k++) {
        seen_line_t *s = &st->seen[(st->seen_head + k) % LOGS_SEEN_MAX];
        if (s->hash == hash && s->t != INT64_MIN) {
            s->t = INT64_MIN; /* taken; it keeps its place in the ring */
            return true;
        }
    }
    return false;
}

/* Un-takes every entry once a catch-up is over. */
static void seen_reset(logs_state_t *st)
{
    for (size_t k = 0; k < st->seen_len; k++) {
        seen_line_t *s = &st->seen[(st->seen_head + k) % LOGS_SEEN_MAX];
        if (s->t == INT64_MIN)
            s->t = st->cutoff;
    }
}

/* A line of the logs answer: prints it (once following, lines of a catch-up
 * already printed or older than the start are skipped); says when the follow
 * is live. Returns 0: go on. */
static int on_log_line(void *data, const char *line, size_t len)
{
    logs_state_t *st = data;
    if (st->follow && !st->live) {
        st->live = true;
        fprintf(st->ctx->err, "tine: following the logs of %s%s (Ctrl-C to stop)\n", st->app,
                st->announced ? " again" : "");
        st->announced = true;
        fflush(st->ctx->err);
    }
    if (len == 0)
        return 0; /* keep-alive */
    uint64_t hash = 0;
    int64_t t = 0;
    bool identified = st->follow && line_identity(line, &hash, &t);
    if (identified && st->resyncing) {
        /* The catch-up, oldest first: lines from before we started, and
         * those printed before the stream broke, are skipped; the first new
         * line ends it. */
        if (t < st->cutoff || seen_take(st, hash))
            return 0;
        st->resyncing = false;
        seen_reset(st);
    }
    if (identified)
        seen_add(st, hash, t);
    if (st->ctx->g.json || cli_render_log_line(line, st->ctx->out) != 0)
        fprintf(st->ctx->out, "%s\n", line);
    fflush(st->ctx->out);
    return 0;
}

/* Whether a failed follow may succeed later: the node restarting, Redis
 * unreachable, a proxy in between. Refusals (auth, unknown app) are final. */
static bool follow_retryable(const tine_client_t *c, int e)
{
    return e == 0 || e == TINE_CLIENT_ECONNECT || e == TINE_CLIENT_ETIMEOUT ||
           (e == TINE_CLIENT_EHTTP && tine_client_status(c) >= 500);
}

/* The wall clock in milliseconds since the epoch. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_cmd_logs(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *limit_s = NULL, *since = NULL, *level = NULL, *text = NULL, *pos[2];
    bool follow = false;
    const cli_flag_t flags[] = {{"follow", 'f', NULL, &follow}, {"limit", 'n', &limit_s, NULL},
                                {"since", 0, &since, NULL},     {"level", 0, &level, NULL},
                                {"grep", 0, &text, NULL}};
    int npos = 0;
    char err[256];
    unsigned limit = 100;
    if (cli_parse_command(argc, argv, flags, 5, pos, 1, 2, &npos, err, sizeof err) != CLI_OK)
        return cli_usage_error(ctx, err);
    if (limit_s && strcmp(limit_s, "0") == 0)
        limit = 0;
    else if (limit_s && parse_limit(ctx, limit_s, 10000, &limit) != CLI_OK)
        return CLI_USAGE;
    cli_conn_t conn;
    tine_client_t *c = cli_connect(ctx, &conn);
    if (c == NULL)
        return CLI_FAIL;
    const char *filters[] = {"since", since, "level", level, "text", text, NULL}; /* the node checks them */
    logs_state_t st = {.ctx = ctx, .app = pos[0], .follow = follow, .cutoff = wall_ms()};
    if (follow)
        st.seen = xcalloc(LOGS_SEEN_MAX, sizeof(*st.seen));
    const char *fn = npos > 1 ? pos[1] : NULL;
    int rc = CLI_OK;
    long delay_ms = LOGS_RETRY_FIRST_MS;
    for (;;) {
        st.live = false;
        int e = tine_logs_query(c, pos[0], fn, limit, follow, filters, on_log_line, &st);
        if (!follow || !follow_retryable(c, e)) {
            rc = e != 0 ? cli_client_fail(ctx, c, e, &conn) : CLI_OK;
            break;
        }
        /* The stream broke (the node restarted, say): come back with the
         * lines logged meanwhile, without printing any line twice. */
        if (st.live)
            delay_ms = LOGS_RETRY_FIRST_MS;
        fprintf(ctx->err, "tine: lost the log stream of %s (%s); reconnecting in %.1f s\n", pos[0],
                e == 0 ? "the node closed it" : tine_client_error(c), delay_ms / 1000.0);
        fflush(ctx->err);
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms = delay_ms * 2 > LOGS_RETRY_MAX_MS ? LOGS_RETRY_MAX_MS : delay_ms * 2;
        limit = LOGS_CATCH_UP;
        seen_reset(&st); /* a catch-up cut short leaves no line taken */
        st.resyncing = true;
    }
    free(st.seen);
    tine_client_free(c);
    cli_conn_dispose(&conn);
    return rc;
}
