/* The `tine` command: usage tables, activation lists and records, log lines,
 * built from admin API answers. Pure functions of their JSON input. */
#include "cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tine_common.h"

/* Says in err that the node's answer was unexpected and what was wrong;
 * returns -1. */
static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "unexpected answer from the node (%s)", msg);
    return -1;
}

/* The string member key of o, or "-". */
static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* The integer member key of o, or 0 (also for a negative one). */
static uint64_t num(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* "1.234 ms" from microseconds. */
static void ms_text(uint64_t us, char out[32])
{
    snprintf(out, 32, "%" PRIu64 ".%03" PRIu64 " ms", us / 1000u, us % 1000u);
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *out, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
    } else {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    }
    fputc(last ? '\n' : ',', out);
}

int cli_render_usage(const char *json, bool csv, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    json_t *rows = json_object_get(j, "rows");
    const char *by = json_string_value(json_object_get(j, "by"));
    if (!json_is_array(rows) || by == NULL) {
        json_decref(j);
        return fail(err, errlen, "no usage rows");
    }
    bool by_day = strcmp(by, "day") == 0, by_version = strcmp(by, "version") == 0;
    const char *head[7];
    size_t nc = 0;
    head[nc++] = by_day ? "DAY" : "FUNCTION";
    if (by_version)
        head[nc++] = "VERSION";
    head[nc++] = "INVOCATIONS";
    head[nc++] = "BILLED_UNITS";
    head[nc++] = "GB_S";
    head[nc++] = "COST";
    cli_table_t t;
    cli_table_init(&t, nc, head);
    json_t *total = json_object_get(j, "total");
    size_t n = json_array_size(rows);
    for (size_t i = 0; i <= n; i++) {
        json_t *r = i < n ? json_array_get(rows, i) : total;
        if (i == n && (csv || r == NULL))
            break; /* CSV is for spreadsheets: rows only */
        char ver[24], inv[24], units[24];
        const char *cells[7];
        size_t c = 0;
        cells[c++] = i == n ? "total" : by_day ? str(r, "day") : str(r, "function");
        if (by_version) {
            snprintf(ver, sizeof ver, "%" PRIu64, num(r, "version"));
            cells[c++] = i == n ? "" : ver;
        }
        snprintf(inv, sizeof inv, "%" PRIu64, num(r, "invocations"));
        snprintf(units, sizeof units, "%" PRIu64, num(r, "billed_ms") / 100u);
        cells[c++] = inv;
        cells[c++] = units;
        cells[c++] = str(r, "gb_s");
        cells[c++] = str(r, "cost");
        cli_table_add(&t, cells);
    }
    if (csv) {
        for (size_t r = 0; r < t.nrows; r++)
            for (size_t c = 0; c < t.ncols; c++)
                csv_field(out, t.cells[r * t.ncols + c], c + 1 == t.ncols);
    } else {
        fprintf(out, "%s from %s to %s\n", str(j, "app"), str(j, "from"), str(j, "to"));
        cli_table_print(&t, out);
    }
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

int cli_render_activations(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    json_t *list = json_object_get(j, "activations");
    if (!json_is_array(list)) {
        json_decref(j);
        return fail(err, errlen, "no \"activations\" list");
    }
    static const char *const head[] = {"ID", "START", "FUNCTION", "VERSION", "TRIGGER", "STATUS", "DURATION",
                                       "BILLED", "START_KIND"};
    cli_table_t t;
    cli_table_init(&t, 9, head);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        char start[32], ver[24], status[24], dur[32], billed[24];
        tine_fmt_rfc3339_ms(num(a, "start_ms"), start);
        snprintf(ver, sizeof ver, "%" PRIu64, num(a, "version"));
        snprintf(status, sizeof status, "%" PRIu64, num(a, "status"));
        ms_text(num(a, "duration_us"), dur);
        snprintf(billed, sizeof billed, "%" PRIu64 " ms", num(a, "billed_ms"));
        const char *row[] = {str(a, "id"), start, str(a, "function"), ver, str(a, "trigger"), status, dur,
                             json_is_true(json_object_get(a, "billed")) ? billed : "-",
                             json_is_true(json_object_get(a, "cold")) ? "cold" : "warm"};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

/* The depth of record i of the trace list: how many of its ancestors are in
 * the list (by invocation id or span id), at most n. */
static size_t trace_depth(json_t *list, size_t i)
{
    size_t n = json_array_size(list), depth = 0;
    const char *parent = str(json_array_get(list, i), "parent");
    while (parent[0] && depth < n) {
        size_t k = 0;
        for (; k < n; k++) {
            json_t *r = json_array_get(list, k);
            if (strcmp(str(r, "id"), parent) == 0 || strcmp(str(r, "span"), parent) == 0)
                break;
        }
        if (k == n)
            break;
        depth++;
        parent = str(json_array_get(list, k), "parent");
    }
    return depth;
}

int cli_render_trace(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    json_t *list = json_object_get(j, "activations");
    if (!json_is_array(list)) {
        json_decref(j);
        return fail(err, errlen, "no \"activations\" list");
    }
    static const char *const head[] = {"CALL", "AT", "DURATION", "STATUS", "TRIGGER", "ID"};
    cli_table_t t;
    cli_table_init(&t, 6, head);
    uint64_t t0 = json_array_size(list) ? num(json_array_get(list, 0), "start_ms") : 0;
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        char call[256], at[32], dur[32], status[24];
        size_t depth = trace_depth(list, i);
        snprintf(call, sizeof call, "%*s%s/%s v%" PRIu64, (int)(2 * (depth > 20 ? 20 : depth)), "", str(a, "app"),
                 str(a, "function"), num(a, "version"));
        snprintf(at, sizeof at, "+%" PRIu64 " ms", num(a, "start_ms") - t0);
        ms_text(num(a, "duration_us"), dur);
        snprintf(status, sizeof status, "%" PRIu64, num(a, "status"));
        const char *row[] = {call, at, dur, status, str(a, "trigger"), str(a, "id")};
        cli_table_add(&t, row);
    }
    cli_table_print(&t, out);
    cli_table_dispose(&t);
    json_decref(j);
    return 0;
}

int cli_render_activation(const char *json, FILE *out, char *err, size_t errlen)
{
    json_t *a = json_loads(json, 0, NULL);
    if (!json_is_object(a) || json_object_get(a, "id") == NULL) {
        json_decref(a);
        return fail(err, errlen, "not an activation record");
    }
    char start[32], dur[32], queued[32], cold[32], cpu[32];
    tine_fmt_rfc3339_ms(num(a, "start_ms"), start);
    ms_text(num(a, "duration_us"), dur);
    ms_text(num(a, "queued_us"), queued);
    ms_text(num(a, "cold_start_us"), cold);
    ms_text(num(a, "cpu_us"), cpu);
    fprintf(out, "id:        %s\n", str(a, "id"));
    fprintf(out, "app:       %s version %" PRIu64 "\n", str(a, "app"), num(a, "version"));
    fprintf(out, "function:  %s (%" PRIu64 " MB, timeout %" PRIu64 " ms)\n", str(a, "function"),
            num(a, "memory_mb"), num(a, "timeout_ms"));
    fprintf(out, "trigger:   %s on node %s\n", str(a, "trigger"), str(a, "node"));
    fprintf(out, "start:     %s\n", start);
    fprintf(out, "status:    %" PRIu64 " (%s)\n", num(a, "status"), str(a, "outcome"));
    if (json_object_get(a, "error"))
        fprintf(out, "error:     %s\n", str(a, "error"));
    fprintf(out, "duration:  %s (queued %s)\n", dur, queued);
    if (json_is_true(json_object_get(a, "cold")))
        fprintf(out, "sandbox:   cold start, ready in %s\n", cold);
    else
        fprintf(out, "sandbox:   warm\n");
    fprintf(out, "cpu:       %s\n", cpu);
    if (json_is_true(json_object_get(a, "billed")))
        fprintf(out, "billed:    %" PRIu64 " ms x %" PRIu64 " MB = %s GB-s, cost %s\n", num(a, "billed_ms"),
                num(a, "memory_mb"), str(a, "gb_s"), str(a, "cost"));
    else
        fprintf(out, "billed:    nothing (never reached a sandbox)\n");
    json_t *logs = json_object_get(a, "logs");
    fprintf(out, "logs:      %zu line%s%s\n", json_array_size(logs), json_array_size(logs) == 1 ? "" : "s",
            json_is_true(json_object_get(a, "logs_truncated")) ? " (more were cut at the size limit)" : "");
    size_t i;
    json_t *l;
    json_array_foreach(logs, i, l)
    {
        char when[32];
        tine_fmt_rfc3339_ms(num(l, "t"), when);
        fprintf(out, "  %s %s %s\n", when, str(l, "level"), str(l, "msg"));
    }
    json_decref(a);
    return 0;
}

int cli_render_log_line(const char *line, FILE *out)
{
    json_t *l = json_loads(line, 0, NULL);
    if (!json_is_object(l)) {
        json_decref(l);
        return -1;
    }
    char when[32];
    tine_fmt_rfc3339_ms(num(l, "t"), when);
    fprintf(out, "%s %s v%" PRIu64 " %s: %s\n", when, str(l, "function"), num(l, "version"), str(l, "level"),
            str(l, "msg"));
    json_decref(l);
    return 0;
}
