/* The `tine` command: tables and one-line summaries built from admin API
 * answers. Pure functions of their JSON input so they can be unit tested. */
#include "cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tine_common.h"

void cli_table_init(cli_table_t *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    cli_table_add(t, headers);
}

void cli_table_add(cli_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = xstrdup(cells[i] != NULL ? cells[i] : "-");
    t->nrows++;
}

/* Display width of UTF-8 text: one column per code point (no wide glyphs in
 * app names, paths or dates). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(const cli_table_t *t, FILE *out)
{
    size_t *width = xcalloc(t->ncols, sizeof *width);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, out);
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(width[c] - text_width(cell) + 2), "");
        }
        fputc('\n', out);
    }
    free(width);
}

void cli_table_dispose(cli_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Formats the error into err; returns -1 (the renderers' failure). */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses an answer that must be a JSON object. */
static json_t *load_object(const char *json, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    if (j == NULL) {
        fail(err, errlen, "unexpected answer from the node (not JSON: %s)", jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(err, errlen, "unexpected answer from the node (not a JSON object)");
        return NULL;
    }
    return j;
}

/* Formats a JSON scalar as a table cell: integers in decimal, strings as
 * they are, null/absent as "-". Writes into buf and returns it. */
static const char *cell(json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "yes");
    else if (json_is_false(v))
        snprintf(buf, len, "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

/* An app's live version as a cell: "3", "-" when none, and what the node
 * that answered serves when it is another: "3 (this node: 2)",
 * "3 (this node: none)". */
static const char *live_text(json_t *app, char *buf, size_t len)
{
    json_t *serving = json_object_get(app, "serving");
    json_int_t live = json_integer_value(json_object_get(app, "live"));
    char here[32] = "none";
    if (json_integer_value(serving) != 0)
        snprintf(here, sizeof here, "%" JSON_INTEGER_FORMAT, json_integer_value(serving));
    if (live == 0 && (!json_is_integer(serving) || json_integer_value(serving) == 0))
        return "-";
    if (!json_is_integer(serving) || json_integer_value(serving) == live)
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, live);
    else if (live == 0)
        snprintf(buf, len, "- (this node: %s)", here);
    else
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT " (this node: %s)", live, here);
    return buf;
}

int cli_render_apps(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *apps = json_object_get(j, "apps");
    if (!json_is_array(apps)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"apps\" list)");
    }
    static const char *const head[] = {"APP", "LIVE", "VERSIONS"};
    cli_table_t t;
    cli_table_init(&t, 3, head);
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a)
    {
        char b1[256], b2[80], b3[32];
        const char *row[] = {
            cell(json_object_get(a, "app"), b1, sizeof b1),
            live_text(a, b2, sizeof b2),
            cell(json_object_get(a, "versions"), b3, sizeof b3),
        };
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

int cli_render_versions(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *versions = json_object_get(j, "versions");
    if (!json_is_array(versions)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"versions\" list)");
    }
    json_int_t live = json_integer_value(json_object_get(j, "live"));
    static const char *const head[] = {"  VERSION", "CREATED", "FILES", "DIGEST"};
    cli_table_t t;
    cli_table_init(&t, 4, head);
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        char ver[40], created[128], files[32], digest[80];
        json_t *num = json_object_get(v, "version");
        bool is_live = json_is_integer(num) && json_integer_value(num) == live;
        char nbuf[32];
        snprintf(ver, sizeof ver, "%s %s", is_live ? "*" : " ", cell(num, nbuf, sizeof nbuf));
        /* The whole digest: `sha256sum app.tine` of the artifact, the same
         * on every cluster. */
        cell(json_object_get(v, "digest"), digest, sizeof digest);
        const char *row[] = {
            ver,
            cell(json_object_get(v, "created"), created, sizeof created),
            cell(json_object_get(v, "files"), files, sizeof files),
            digest,
        };
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    /* Which version the node that answered serves (when it says). */
    json_t *serving = json_object_get(j, "serving");
    const char *node = json_string_value(json_object_get(j, "node"));
    const char *problem = json_string_value(json_object_get(j, "problem"));
    if (json_is_integer(serving)) {
        json_int_t sv = json_integer_value(serving);
        fprintf(out, "node %s serves ", node ? node : "?");
        if (sv == 0)
            fprintf(out, "no version");
        else
            fprintf(out, "version %" JSON_INTEGER_FORMAT, sv);
        if (sv != live && live != 0)
            fprintf(out, ", not the live version %" JSON_INTEGER_FORMAT, live);
        if (problem != NULL)
            fprintf(out, ": %s (it retries)", problem);
        fputc('\n', out);
    }
    cli_render_release(j, out);
    json_decref(j);
    return 0;
}

void cli_render_release(json_t *j, FILE *out)
{
    json_t *tags = json_object_get(j, "tags"), *split = json_object_get(j, "split");
    if (json_object_size(tags) > 0) {
        fprintf(out, "tags:");
        const char *name;
        json_t *v;
        json_object_foreach(tags, name, v)
        {
            fprintf(out, " %s=%" JSON_INTEGER_FORMAT, name, json_integer_value(v));
        }
        fputc('\n', out);
    }
    if (json_is_object(split))
        fprintf(out, "split: version %" JSON_INTEGER_FORMAT " gets %" JSON_INTEGER_FORMAT "%% of clients%s\n",
                json_integer_value(json_object_get(split, "version")),
                json_integer_value(json_object_get(split, "percent")),
                json_is_true(json_object_get(split, "events")) ? " and of events and schedule ticks" : "");
}

/* Appends " key=value" to a description when the field is a string. */
static void describe_field(tine_buf_t *b, json_t *trigger, const char *key)
{
    const char *v = json_string_value(json_object_get(trigger, key));
    if (v != NULL && v[0] != '\0')
        tine_buf_appendf(b, " %s=%s", key, v);
}

char *cli_describe_trigger(json_t *trigger)
{
    tine_buf_t b;
    tine_buf_init(&b);
    const char *on = json_string_value(json_object_get(trigger, "on"));
    const char *spec = json_string_value(json_object_get(trigger, "spec"));
    const char *source = json_string_value(json_object_get(trigger, "source"));
    const char *filter = json_string_value(json_object_get(trigger, "filter"));
    if (on == NULL)
        on = "trigger";
    tine_buf_appendf(&b, "%s", on);
    if (strcmp(on, "schedule") == 0) {
        const char *cron = spec != NULL ? spec : json_string_value(json_object_get(trigger, "cron"));
        if (cron != NULL)
            tine_buf_appendf(&b, " %s", cron);
    } else if (strcmp(on, "log") == 0) {
        const char *src = source != NULL ? source : spec;
        if (src != NULL)
            tine_buf_appendf(&b, " %s", src);
        if (filter != NULL && filter[0] != '\0')
            tine_buf_appendf(&b, " (filter %s)", filter);
    } else if (strcmp(on, "event") == 0) {
        size_t before = b.len;
        describe_field(&b, trigger, "type");
        describe_field(&b, trigger, "source");
        if (b.len == before && spec != NULL)
            tine_buf_appendf(&b, " %s", spec);
    } else {
        if (spec != NULL)
            tine_buf_appendf(&b, " %s", spec);
        describe_field(&b, trigger, "type");
        describe_field(&b, trigger, "source");
    }
    return b.data; /* tine_buf keeps its data NUL-terminated */
}

int cli_render_routes(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *routes = json_object_get(j, "routes");
    json_t *triggers = json_object_get(j, "triggers");
    if (!json_is_array(routes) && !json_is_array(triggers)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"routes\" or \"triggers\" list)");
    }
    char version[32];
    cell(json_object_get(j, "version"), version, sizeof version);
    static const char *const head[] = {"TRIGGER", "FUNCTION", "VERSION"};
    cli_table_t t;
    cli_table_init(&t, 3, head);
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *path = json_string_value(json_object_get(r, "path"));
        char *what = xasprintf("%s %s", method ? method : "ANY", path ? path : "?");
        char fn[256];
        const char *row[] = {what, cell(json_object_get(r, "function"), fn, sizeof fn), version};
        cli_table_add(&t, row);
        free(what);
        const char *host_path = json_string_value(json_object_get(r, "host_path")); /* its own host */
        if (host_path != NULL) {
            what = xasprintf("%s %s", method ? method : "ANY", host_path);
            row[0] = what;
            cli_table_add(&t, row);
            free(what);
        }
    }
    json_array_foreach(triggers, i, r)
    {
        char *what = cli_describe_trigger(r);
        char fn[256];
        const char *row[] = {what, cell(json_object_get(r, "function"), fn, sizeof fn), version};
        cli_table_add(&t, row);
        free(what);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

int cli_render_deploy(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *version = json_object_get(j, "version");
    if (app == NULL || !json_is_integer(version)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"app\" and \"version\")");
    }
    json_t *rollout = json_object_get(j, "rollout");
    if (json_is_object(rollout))
        fprintf(out,
                "deployed %s version %" JSON_INTEGER_FORMAT ": rolling out, %" JSON_INTEGER_FORMAT
                "%% of clients first (tine rollout status %s)\n",
                app, json_integer_value(version), json_integer_value(json_object_get(rollout, "percent")), app);
    else if (json_is_true(json_object_get(j, "staged")))
        fprintf(out,
                "staged %s version %" JSON_INTEGER_FORMAT " (not live; tine promote %s %" JSON_INTEGER_FORMAT
                " makes it live, /%s@%" JSON_INTEGER_FORMAT "/ previews it)\n",
                app, json_integer_value(version), app, json_integer_value(version), app, json_integer_value(version));
    else if (json_is_true(json_object_get(j, "unchanged")))
        fprintf(out,
                "unchanged: %s version %" JSON_INTEGER_FORMAT " is live (tine deploy --force makes a new version)\n",
                app, json_integer_value(version));
    else
        fprintf(out, "deployed %s version %" JSON_INTEGER_FORMAT "\n", app, json_integer_value(version));
    json_decref(j);
    return 0;
}

int cli_render_delete(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *d = json_object_get(j, "deleted");
    if (app == NULL || !json_is_object(d)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"app\" and \"deleted\")");
    }
    static const char *const parts[][3] = {{"versions", "version", "versions"},
                                           {"kv_keys", "tine.kv key", "tine.kv keys"},
                                           {"dead_letters", "dead letter", "dead letters"},
                                           {"activations", "activation record", "activation records"}};
    fprintf(out, "deleted %s:", app);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        json_int_t n = json_integer_value(json_object_get(d, parts[i][0]));
        fprintf(out, "%s %" JSON_INTEGER_FORMAT " %s", i ? "," : "", n, n == 1 ? parts[i][1] : parts[i][2]);
    }
    fprintf(out, " (its usage is kept for billing: tine usage %s)\n", app);
    json_decref(j);
    return 0;
}

/* Prints ", "-separated numbers of a JSON array. */
static void print_numbers(FILE *out, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) fprintf(out, "%s%" JSON_INTEGER_FORMAT, i ? ", " : "", json_integer_value(v));
}

int cli_render_prune(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *pruned = json_object_get(j, "pruned"), *kept = json_object_get(j, "kept");
    if (app == NULL || !json_is_array(pruned) || !json_is_array(kept)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"app\", \"pruned\" and \"kept\")");
    }
    if (json_array_size(pruned) == 0) {
        fprintf(out, "%s: nothing to prune", app);
    } else {
        fprintf(out, "%s: pruned version%s ", app, json_array_size(pruned) == 1 ? "" : "s");
        print_numbers(out, pruned);
    }
    fputs("; kept ", out);
    print_numbers(out, kept);
    json_int_t files = json_integer_value(json_object_get(j, "files_deleted"));
    fprintf(out, " (live %" JSON_INTEGER_FORMAT "); %" JSON_INTEGER_FORMAT " stored file%s no longer used removed\n",
            json_integer_value(json_object_get(j, "live")), files, files == 1 ? "" : "s");
    json_decref(j);
    return 0;
}

int cli_render_rollback(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    const char *app = json_string_value(json_object_get(j, "app"));
    json_t *live = json_object_get(j, "live");
    if (app == NULL || !json_is_integer(live)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"app\" and \"live\")");
    }
    fprintf(out, "%s: live version is now %" JSON_INTEGER_FORMAT "\n", app, json_integer_value(live));
    json_decref(j);
    return 0;
}

/* A duration in seconds as "850ms", "12.3s", "3m04s" or "2h05m". */
static const char *age_text(json_t *v, char *buf, size_t len)
{
    if (!json_is_number(v))
        return "-";
    double s = json_number_value(v);
    if (s < 1)
        snprintf(buf, len, "%.0fms", s * 1000);
    else if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    return buf;
}

int cli_render_ps(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *pools = json_object_get(j, "pools");
    if (!json_is_array(pools)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"pools\" list)");
    }
    static const char *const head[] = {"APP", "VERSION", "FUNCTION",    "PID",    "STATE",
                                       "AGE", "IDLE",    "INVOCATIONS", "COLD_MS"};
    cli_table_t t;
    cli_table_init(&t, 9, head);
    size_t i, k;
    json_t *p, *s;
    json_array_foreach(pools, i, p)
    {
        json_t *sbx = json_object_get(p, "sandboxes");
        json_array_foreach(sbx, k, s)
        {
            char b[9][64];
            const char *state = json_string_value(json_object_get(s, "state"));
            json_t *cold = json_object_get(s, "cold_start_ms");
            if (json_is_number(cold))
                snprintf(b[8], sizeof b[8], "%.2f", json_number_value(cold));
            const char *row[] = {
                cell(json_object_get(p, "app"), b[0], sizeof b[0]),
                cell(json_object_get(p, "version"), b[1], sizeof b[1]),
                cell(json_object_get(p, "function"), b[2], sizeof b[2]),
                cell(json_object_get(s, "pid"), b[3], sizeof b[3]),
                state ? state : "-",
                age_text(json_object_get(s, "age_s"), b[5], sizeof b[5]),
                state && strcmp(state, "idle") == 0 ? age_text(json_object_get(s, "last_used_s"), b[6], sizeof b[6])
                                                    : "-",
                cell(json_object_get(s, "invocations"), b[7], sizeof b[7]),
                json_is_number(cold) ? b[8] : "-",
            };
            cli_table_add(&t, row);
        }
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_t *n = json_object_get(j, "sandboxes"), *max = json_object_get(j, "max_sandboxes");
    if (json_is_integer(n) && json_is_integer(max))
        fprintf(out, "%" JSON_INTEGER_FORMAT " of at most %" JSON_INTEGER_FORMAT " sandboxes on this node\n",
                json_integer_value(n), json_integer_value(max));
    json_decref(j);
    return 0;
}

/* The STATE cell of a node: "ready", or "gone (lost 12.0s ago)". */
static const char *node_state_text(json_t *n, char *buf, size_t len)
{
    const char *state = json_string_value(json_object_get(n, "state"));
    const char *left = json_string_value(json_object_get(n, "left"));
    if (state == NULL)
        return "-";
    if (strcmp(state, "gone") != 0 || left == NULL)
        return state;
    char age[32];
    json_t *left_age = json_object_get(n, "left_age_s");
    if (json_is_number(left_age))
        snprintf(buf, len, "gone (%s %s ago)", left, age_text(left_age, age, sizeof age));
    else
        snprintf(buf, len, "gone (%s)", left);
    return buf;
}

int cli_render_nodes(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *nodes = json_object_get(j, "nodes");
    if (!json_is_array(nodes)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"nodes\" list)");
    }
    static const char *const head[] = {"NODE",      "ADDRESS", "VERSION",   "UPTIME",
                                       "SANDBOXES", "CALLS",   "HEARTBEAT", "STATE"};
    cli_table_t t;
    cli_table_init(&t, 8, head);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        char b[8][96];
        bool gone = json_is_string(json_object_get(n, "left"));
        char age[32];
        const char *beat = age_text(json_object_get(n, "heartbeat_age_s"), age, sizeof age);
        if (strcmp(beat, "-") != 0)
            snprintf(b[6], sizeof b[6], "%s ago", beat);
        const char *row[] = {
            cell(json_object_get(n, "node"), b[0], sizeof b[0]),
            cell(json_object_get(n, "address"), b[1], sizeof b[1]),
            cell(json_object_get(n, "version"), b[2], sizeof b[2]),
            age_text(json_object_get(n, "uptime_s"), b[3], sizeof b[3]),
            gone ? "-" : cell(json_object_get(n, "sandboxes"), b[4], sizeof b[4]),
            gone ? "-" : cell(json_object_get(n, "calls"), b[5], sizeof b[5]),
            strcmp(beat, "-") != 0 ? b[6] : "-",
            node_state_text(n, b[7], sizeof b[7]),
        };
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

/* One namespace of a quota answer: a line naming it, then QUOTA LIMIT
 * USED RESETS. False when it lacks "namespace" or "quotas". */
static bool print_quota(json_t *ns, FILE *out)
{
    static const char *const names[] = {"concurrency", "sandboxes", "memory_mb", "per_minute", "spend_per_day"};
    const char *name = json_string_value(json_object_get(ns, "namespace"));
    json_t *quotas = json_object_get(ns, "quotas");
    if (name == NULL || !json_is_object(quotas))
        return false;
    static const char *const head[] = {"QUOTA", "LIMIT", "USED", "RESETS"};
    cli_table_t t;
    cli_table_init(&t, 4, head);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *q = json_object_get(quotas, names[i]);
        char b[3][96], limit[100], used[100];
        bool money = i == 4;
        cell(json_object_get(q, "limit"), b[0], sizeof b[0]);
        cell(json_object_get(q, "used"), b[1], sizeof b[1]);
        snprintf(limit, sizeof limit, "%s%s", money && strcmp(b[0], "-") ? "$" : "", b[0]);
        snprintf(used, sizeof used, "%s%s", money && strcmp(b[1], "-") ? "$" : "", b[1]);
        const char *resets = "-";
        if (json_is_integer(json_object_get(q, "resets_in_s"))) {
            char age[32];
            snprintf(b[2], sizeof b[2], "in %s", age_text(json_object_get(q, "resets_in_s"), age, sizeof age));
            resets = b[2];
        }
        const char *row[] = {names[i], limit, used, resets};
        cli_table_add(&t, row);
    }
    fprintf(out, "namespace %s", name);
    json_t *nodes = json_object_get(ns, "nodes");
    if (json_is_integer(nodes))
        fprintf(out, ", %" JSON_INTEGER_FORMAT " node%s reporting", json_integer_value(nodes),
                json_integer_value(nodes) == 1 ? "" : "s");
    const char *set = json_string_value(json_object_get(ns, "set"));
    if (set)
        fprintf(out, "; set %s by %s", set,
                json_string_value(json_object_get(ns, "set_by")) ? json_string_value(json_object_get(ns, "set_by"))
                                                                 : "-");
    fprintf(out, "\n");
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    return true;
}

int cli_render_quota(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *list = json_object_get(j, "quotas");
    int rc = 0;
    if (json_is_array(list)) {
        size_t i;
        json_t *ns;
        json_array_foreach(list, i, ns)
        {
            if (i > 0)
                fprintf(out, "\n");
            if (!print_quota(ns, out))
                rc = fail(err, errlen, "unexpected answer from the node (a quota without \"namespace\")");
        }
        if (json_array_size(list) == 0)
            fprintf(out, "no namespace has a quota\n");
    } else if (!print_quota(j, out)) {
        rc = fail(err, errlen, "unexpected answer from the node (no \"namespace\" and \"quotas\")");
    }
    json_decref(j);
    return rc;
}

int cli_render_scale(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    const char *app = json_string_value(json_object_get(j, "app"));
    const char *fn = json_string_value(json_object_get(j, "function"));
    json_t *warm = json_object_get(j, "warm"), *version = json_object_get(j, "version");
    if (app == NULL || fn == NULL || !json_is_integer(warm)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"app\", \"function\" and \"warm\")");
    }
    fprintf(out, "%s.%s: %" JSON_INTEGER_FORMAT " warm sandbox%s on this node", app, fn, json_integer_value(warm),
            json_integer_value(warm) == 1 ? "" : "es");
    if (json_is_integer(version))
        fprintf(out, " for version %" JSON_INTEGER_FORMAT, json_integer_value(version));
    fprintf(out, " (until the next deploy)\n");
    json_decref(j);
    return 0;
}

int cli_render_public_urls(const char *json, const char *base_url, FILE *out, char *err, size_t errlen)
{
    json_t *j = load_object(json, err, errlen);
    if (j == NULL)
        return -1;
    json_t *routes = json_object_get(j, "routes");
    if (!json_is_array(routes)) {
        json_decref(j);
        return fail(err, errlen, "unexpected answer from the node (no \"routes\" list)");
    }
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *path = json_string_value(json_object_get(r, "path"));
        if (path == NULL)
            continue;
        fprintf(out, "%s %.*s%s%s\n", method ? method : "ANY", (int)blen, base_url, path[0] == '/' ? "" : "/", path);
    }
    json_decref(j);
    return 0;
}

int cli_render_invoke(const char *json, const char *app, const char *fn, bool as_json, bool verbose, bool tty,
                      FILE *out, FILE *err)
{
    json_error_t jerr;
    /* A function's body may hold any bytes, NUL included ("\u0000"). */
    json_t *j = json_loads(json, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        fprintf(err, "tine: unexpected answer from the node for %s.%s (not a JSON object)\n", app, fn);
        return CLI_FAIL;
    }
    json_t *status_v = json_object_get(j, "status");
    json_int_t status = json_is_integer(status_v) ? json_integer_value(status_v) : 0;
    const char *id = json_string_value(json_object_get(j, "invocation_id"));
    if (verbose) {
        json_t *dur = json_object_get(j, "duration_ms");
        json_t *cold = json_object_get(j, "cold");
        fprintf(err, "status %" JSON_INTEGER_FORMAT ", invocation %s", status, id ? id : "-");
        if (json_is_number(dur))
            fprintf(err, ", %.3f ms", json_number_value(dur));
        if (json_is_boolean(cold))
            fprintf(err, ", %s", json_is_true(cold) ? "cold" : "warm");
        fputc('\n', err);
    }
    if (as_json) {
        cli_print_json_text(out, json);
    } else {
        json_t *body = json_object_get(j, "body");
        if (json_is_string(body)) {
            size_t n = json_string_length(body);
            const char *s = json_string_value(body);
            fwrite(s, 1, n, out);
            if (tty && n > 0 && s[n - 1] != '\n')
                fputc('\n', out);
        } else if (body != NULL && !json_is_null(body)) {
            /* A node may hand back a JSON body already decoded. */
            json_dumpf(body, out, JSON_ENCODE_ANY | JSON_COMPACT);
            fputc('\n', out);
        }
    }
    int rc = CLI_OK;
    if (status >= 500 || !json_is_integer(status_v)) {
        const char *e = json_string_value(json_object_get(j, "error"));
        if (!json_is_integer(status_v))
            fprintf(err, "tine: unexpected answer from the node for %s.%s (no \"status\")\n", app, fn);
        else
            fprintf(err, "tine: %s.%s failed with status %" JSON_INTEGER_FORMAT ": %s (invocation %s)\n", app, fn,
                    status, e != NULL ? e : "no error message", id ? id : "-");
        rc = CLI_FAIL;
    }
    json_decref(j);
    return rc;
}
