/* Reports for the admin API, read synchronously from Redis: usage summed
 * over days, recent activation records, one record, recent log lines. */
#include "billing_internal.h"
#include "trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DAYS 366
#define SCAN_PAGE 200

/* ------------------------------------------------------------ usage */

/* Parses a strict "YYYY-MM-DD" into the Unix time of its midnight UTC. */
static int parse_day(const char *s, time_t *out)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    struct tm tm = {0};
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    time_t t = timegm(&tm);
    char back[11];
    bill_day((uint64_t)t * 1000u, back);
    if (strcmp(back, s) != 0) /* 2026-02-30 normalises to another day */
        return -1;
    *out = t;
    return 0;
}

typedef struct {
    char *function;
    uint64_t version;
    char day[11];
    uint64_t v[4]; /* invocations, billed_ms, mb_ms, cost_pusd */
} usage_row_t;

static const char *const counter_names[] = {"invocations", "billed_ms", "mb_ms", "cost_pusd"};

/* The row of rows (*n of them) that the grouping `by` puts this function,
 * version or day in; appended, zeroed, when there is none. */
static usage_row_t *row_for(usage_row_t **rows, size_t *n, bill_group_t by, const char *fn, uint64_t version,
                            const char *day)
{
    for (size_t i = 0; i < *n; i++) {
        usage_row_t *r = &(*rows)[i];
        if ((by == BILL_BY_DAY && strcmp(r->day, day) == 0) ||
            (by != BILL_BY_DAY && strcmp(r->function, fn) == 0 && (by == BILL_BY_FUNCTION || r->version == version)))
            return r;
    }
    *rows = xrealloc(*rows, (*n + 1) * sizeof(**rows));
    usage_row_t *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof(*r));
    r->function = xstrdup(by == BILL_BY_DAY ? "" : fn);
    r->version = by == BILL_BY_VERSION ? version : 0;
    snprintf(r->day, sizeof(r->day), "%s", by == BILL_BY_DAY ? day : "");
    return r;
}

/* qsort order of usage rows: by day, function, then version. */
static int row_cmp(const void *pa, const void *pb)
{
    const usage_row_t *a = pa, *b = pb;
    int c = strcmp(a->day, b->day);
    if (c == 0)
        c = strcmp(a->function, b->function);
    if (c == 0)
        c = a->version < b->version ? -1 : a->version > b->version;
    return c;
}

/* The JSON of the counters v (invocations, billed ms, MB-ms, cost in pUSD),
 * GB-s and cost as decimal text too. */
static json_t *counters_json(const uint64_t v[4])
{
    char gb_s[48], money[32];
    bill_format_gb_s(v[2], gb_s);
    bill_format_pusd(v[3], money);
    return json_pack("{s:I, s:I, s:I, s:s, s:s, s:I}", "invocations", (json_int_t)v[0], "billed_ms",
                     (json_int_t)v[1], "mb_ms", (json_int_t)v[2], "gb_s", gb_s, "cost", money, "cost_pusd",
                     (json_int_t)v[3]);
}

/* Adds one day's hash (fields "fn|version|counter") to the rows. */
static void add_day(redisReply *r, const char *day, bill_group_t by, usage_row_t **rows, size_t *nrows)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *field = r->element[i]->str;
        const char *bar1 = strchr(field, '|');
        const char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
        if (bar2 == NULL)
            continue;
        int k = 0;
        while (k < 4 && strcmp(bar2 + 1, counter_names[k]) != 0)
            k++;
        if (k == 4)
            continue;
        char *fn = xstrndup(field, (size_t)(bar1 - field));
        uint64_t version = strtoull(bar1 + 1, NULL, 10);
        usage_row_t *row = row_for(rows, nrows, by, fn, version, day);
        row->v[k] += strtoull(r->element[i + 1]->str, NULL, 10);
        free(fn);
    }
}

int bill_usage(bill_t *b, const char *app, const char *from, const char *to, bill_group_t by, json_t **out,
               char *err, size_t errlen)
{
    char today[11], first[11];
    uint64_t now = tine_now_unix_ms();
    bill_day(now, today);
    bill_day(now - 29ull * 86400000ull, first);
    to = to ? to : today;
    from = from ? from : first;
    time_t tf, tt;
    const char *bad = parse_day(from, &tf) != 0 ? "from" : parse_day(to, &tt) != 0 ? "to" : NULL;
    if (bad) {
        snprintf(err, errlen, "%s: '%s': expected a date YYYY-MM-DD", bad, bad[0] == 'f' ? from : to);
        return TINE_EINVAL;
    }
    if (tt < tf) {
        snprintf(err, errlen, "to: %s is before from %s", to, from);
        return TINE_EINVAL;
    }
    if ((tt - tf) / 86400 >= MAX_DAYS) {
        snprintf(err, errlen, "from %s to %s spans more than %d days", from, to, MAX_DAYS);
        return TINE_EINVAL;
    }
    usage_row_t *rows = NULL;
    size_t nrows = 0;
    int rc = 0;
    for (time_t t = tf; t <= tt; t += 86400) {
        char day[11];
        bill_day((uint64_t)t * 1000u, day);
        redisReply *r = bill__command(b, err, errlen, "HGETALL " RDS_KEY_USAGE_PREFIX "%s:%s", app, day);
        if (r == NULL) {
            rc = TINE_EREDIS;
            break;
        }
        add_day(r, day, by, &rows, &nrows);
        freeReplyObject(r);
    }
    if (rc == 0) {
        if (nrows > 1) /* qsort of NULL rows is undefined, even for none */
            qsort(rows, nrows, sizeof(*rows), row_cmp);
        static const char *const by_names[] = {"function", "version", "day"};
        uint64_t total[4] = {0};
        json_t *arr = json_array();
        for (size_t i = 0; i < nrows; i++) {
            json_t *o = counters_json(rows[i].v);
            if (by == BILL_BY_DAY)
                json_object_set_new(o, "day", json_string(rows[i].day));
            else
                json_object_set_new(o, "function", json_string(rows[i].function));
            if (by == BILL_BY_VERSION)
                json_object_set_new(o, "version", json_integer((json_int_t)rows[i].version));
            json_array_append_new(arr, o);
            for (int k = 0; k < 4; k++)
                total[k] += rows[i].v[k];
        }
        *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "app", app, "from", from, "to", to, "by", by_names[by],
                         "rows", arr, "total", counters_json(total));
    }
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].function);
    free(rows);
    return rc;
}

/* ------------------------------------------------------------ records */

/* The values of a stored record (recorder.c's put_record), in order. Only
 * ever appended to; 'b' marks 0/1 stored for false/true, 'a' an array that
 * is [] when left out. The trailing error, logs and logs_truncated are left
 * out at their defaults. */
static const struct {
    const char *name;
    char kind;
} stored_fields[] = {
    {"id", 0},          {"start_ms", 0},  {"function", 0},  {"version", 0},   {"trigger", 0},
    {"node", 0},        {"duration_us", 0}, {"queued_us", 0}, {"cold", 'b'},  {"cold_start_us", 0},
    {"cpu_us", 0},      {"billed", 'b'},  {"billed_ms", 0}, {"memory_mb", 0}, {"cost_pusd", 0},
    {"timeout_ms", 0},  {"status", 0},    {"outcome", 0},   {"error", 0},     {"logs", 'a'},
    {"logs_truncated", 'b'}, {"trace", 0},   {"parent", 0},
};
#define NSTORED (sizeof(stored_fields) / sizeof(stored_fields[0]))

/* The record as the API shows it, from its stored text: the stored values
 * named, then what the recorder leaves out because it follows from the
 * rest: app, start (ISO 8601 of start_ms), mb_ms, gb_s and cost. A record
 * stored as a named object by an earlier build (with or without those) is
 * completed the same way. NULL when the text is not a record. */
static json_t *record_load(const char *text, size_t len, const char *app)
{
    json_t *stored = json_loadb(text, len, 0, NULL), *rec = stored;
    if (json_is_array(stored)) {
        rec = json_object();
        for (size_t i = 0; i < NSTORED; i++) {
            json_t *v = json_array_get(stored, i);
            if (stored_fields[i].kind == 'b')
                v = json_boolean(json_integer_value(v) != 0);
            else if (v == NULL || json_is_null(v))
                v = stored_fields[i].kind == 'a' ? json_array() : NULL;
            else
                json_incref(v);
            if (v)
                json_object_set_new(rec, stored_fields[i].name, v);
        }
        json_decref(stored);
    } else if (!json_is_object(stored)) {
        json_decref(stored);
        return NULL;
    }
    if (!json_object_get(rec, "app"))
        json_object_set_new(rec, "app", json_string(app));
    /* A record without a trace started its own (common/trace.h). */
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!json_object_get(rec, "trace") && id)
        json_object_set_new(rec, "trace", json_string(id));
    if (!json_object_get(rec, "parent"))
        json_object_set_new(rec, "parent", json_string(""));
    if (id) {
        char span[TINE_SPAN_ID_LEN + 1];
        tine_trace_span_of(id, span);
        json_object_set_new(rec, "span", json_string(span));
    }
    json_int_t start_ms = json_integer_value(json_object_get(rec, "start_ms"));
    if (!json_object_get(rec, "start") && start_ms > 0) {
        char iso[32];
        tine_fmt_rfc3339_ms((uint64_t)start_ms, iso);
        json_object_set_new(rec, "start", json_string(iso));
    }
    if (!json_object_get(rec, "mb_ms")) {
        uint64_t mb_ms = bill_mb_ms((uint32_t)json_integer_value(json_object_get(rec, "memory_mb")),
                                    (uint64_t)json_integer_value(json_object_get(rec, "billed_ms")));
        char gb_s[48];
        bill_format_gb_s(mb_ms, gb_s);
        json_object_set_new(rec, "mb_ms", json_integer((json_int_t)mb_ms));
        json_object_set_new(rec, "gb_s", json_string(gb_s));
    }
    if (!json_object_get(rec, "cost")) {
        char money[32];
        bill_format_pusd((uint64_t)json_integer_value(json_object_get(rec, "cost_pusd")), money);
        json_object_set_new(rec, "cost", json_string(money));
    }
    return rec;
}

/* Calls visit with each record of app's list, newest first, until it
 * returns nonzero or the list ends. */
typedef int (*visit_fn)(json_t *record, void *data);

/* Calls visit on each activation record of app, newest first, a page of
 * SCAN_PAGE at a time, until it returns nonzero. Returns 0, or TINE_EREDIS
 * with a message in err. */
static int scan_records(bill_t *b, const char *app, visit_fn visit, void *data, char *err, size_t errlen)
{
    for (long start = 0;; start += SCAN_PAGE) {
        redisReply *recs = bill__command(b, err, errlen, "LRANGE " RDS_KEY_ACTS_PREFIX "%s %ld %ld", app, start,
                                         start + SCAN_PAGE - 1);
        if (recs == NULL)
            return TINE_EREDIS;
        size_t n = recs->type == REDIS_REPLY_ARRAY ? recs->elements : 0;
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            json_t *rec = record_load(recs->element[i]->str, recs->element[i]->len, app);
            if (rec)
                stop = visit(rec, data);
            json_decref(rec);
        }
        freeReplyObject(recs);
        if (stop || n < SCAN_PAGE)
            return 0;
    }
}

/* A string field of a record, "" when absent. */
static const char *field(json_t *rec, const char *name)
{
    const char *s = json_string_value(json_object_get(rec, name));
    return s ? s : "";
}

/* Whether rec is of the function fn (any when fn is NULL). */
static bool function_matches(json_t *rec, const char *fn)
{
    return fn == NULL || strcmp(field(rec, "function"), fn) == 0;
}

typedef struct {
    const bill_filter_t *f;
    bool past_cursor; /* the record named by f->after was seen (or there is none) */
    size_t limit;
    json_t *list;
} list_ctx_t;

/* An unsigned integer field of a record (0 when absent). */
static uint64_t ufield(json_t *rec, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(rec, name));
    return v > 0 ? (uint64_t)v : 0;
}

/* Whether rec passes the filter f. */
static bool filter_passes(json_t *rec, const bill_filter_t *f)
{
    uint64_t status = ufield(rec, "status"), start = ufield(rec, "start_ms");
    return function_matches(rec, f->fn) && (f->version == 0 || ufield(rec, "version") == f->version) &&
           (f->status_class == 0 || status / 100 == (uint64_t)f->status_class) &&
           (f->cold < 0 || json_is_true(json_object_get(rec, "cold")) == (f->cold == 1)) &&
           ufield(rec, "duration_us") >= f->min_duration_us && start >= f->since_ms &&
           (f->until_ms == 0 || start < f->until_ms);
}

/* scan_records visitor of a listing: past the cursor, appends rec without
 * its logs when it passes the filter; nonzero once the list is full. */
static int visit_list(json_t *rec, void *data)
{
    list_ctx_t *lc = data;
    if (!lc->past_cursor) {
        lc->past_cursor = strcmp(field(rec, "id"), lc->f->after) == 0;
        return 0;
    }
    if (!filter_passes(rec, lc->f))
        return 0;
    json_object_del(rec, "logs");
    json_array_append(lc->list, rec);
    return json_array_size(lc->list) >= lc->limit;
}

int bill_activations(bill_t *b, const char *app, const bill_filter_t *f, size_t limit, json_t **out, char *err,
                     size_t errlen)
{
    list_ctx_t lc = {f, f->after == NULL || f->after[0] == '\0', limit, json_array()};
    int rc = limit ? scan_records(b, app, visit_list, &lc, err, errlen) : 0;
    if (rc != 0) {
        json_decref(lc.list);
        return rc;
    }
    size_t n = json_array_size(lc.list);
    json_t *next = n > 0 && n >= limit ? json_object_get(json_array_get(lc.list, n - 1), "id") : NULL;
    *out = json_pack("{s:s, s:O?, s:o}", "app", app, "next", next, "activations", lc.list);
    if (next == NULL)
        json_object_del(*out, "next");
    return 0;
}

/* Finds the record starting with ARGV[1] (["<id>", as stored) or ARGV[2]
 * ({"id":"<id>", as earlier builds stored it) in the list KEYS[1]. */
static const char find_script[] =
    "local n = redis.call('LLEN', KEYS[1])\n"
    "for i = 0, n - 1, 500 do\n"
    "  for _, rec in ipairs(redis.call('LRANGE', KEYS[1], i, i + 499)) do\n"
    "    if string.sub(rec, 1, #ARGV[1]) == ARGV[1] or string.sub(rec, 1, #ARGV[2]) == ARGV[2] then\n"
    "      return rec\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return false\n";

/* Looks for the record in one app's list (the key); stores it in *rec. */
static int find_in_list(bill_t *b, const char *key, size_t key_len, const char *prefix, const char *named,
                        json_t **rec, char *err, size_t errlen)
{
    redisReply *r = bill__command(b, err, errlen, "EVAL %s 1 %b %s %s", find_script, key, key_len, prefix, named);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_STRING) {
        char *app = xstrndup(key + strlen(RDS_KEY_ACTS_PREFIX), key_len - strlen(RDS_KEY_ACTS_PREFIX));
        *rec = record_load(r->str, r->len, app);
        free(app);
    }
    freeReplyObject(r);
    return 0;
}

/* Calls per_list(key, key_len, data) with the key of each app's list of
 * records (found with SCAN: billing reads no other module's keys) until it
 * returns nonzero or an error; returns 0 or TINE_EREDIS. */
typedef int (*per_list_fn)(const char *key, size_t key_len, void *data, char *err, size_t errlen);

static int each_list(bill_t *b, per_list_fn per_list, void *data, char *err, size_t errlen)
{
    char cursor[32] = "0";
    int rc = 0, stop = 0;
    for (int rounds = 0; rounds < 10000 && rc == 0 && !stop; rounds++) {
        redisReply *keys = bill__command(b, err, errlen, "SCAN %s MATCH " RDS_KEY_ACTS_PREFIX "* COUNT 500", cursor);
        if (keys == NULL)
            return TINE_EREDIS;
        if (keys->type != REDIS_REPLY_ARRAY || keys->elements != 2 || keys->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(keys);
            snprintf(err, errlen, "redis: unexpected SCAN reply");
            return TINE_EREDIS;
        }
        snprintf(cursor, sizeof cursor, "%s", keys->element[0]->str);
        redisReply *list = keys->element[1];
        for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements && rc == 0 && !stop; i++)
            if (list->element[i]->type == REDIS_REPLY_STRING) {
                stop = per_list(list->element[i]->str, list->element[i]->len, data, err, errlen);
                rc = stop < 0 ? stop : 0;
            }
        freeReplyObject(keys);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    return rc;
}

typedef struct {
    bill_t *b;
    const char *prefix, *named;
    json_t *rec;
} find_ctx_t;

/* each_list's step of bill_activation. */
static int find_step(const char *key, size_t key_len, void *data, char *err, size_t errlen)
{
    find_ctx_t *fc = data;
    int rc = find_in_list(fc->b, key, key_len, fc->prefix, fc->named, &fc->rec, err, errlen);
    return rc != 0 ? rc : fc->rec != NULL;
}

int bill_activation(bill_t *b, const char *id, json_t **out, char *err, size_t errlen)
{
    /* No index by id (it would cost a Redis write per invocation): each
     * app's list is searched by a script, one app at a time, so Redis is
     * never held for more than one list. */
    char *prefix = xasprintf("[\"%s\",", id), *named = xasprintf("{\"id\":\"%s\"", id);
    find_ctx_t fc = {b, prefix, named, NULL};
    int rc = each_list(b, find_step, &fc, err, errlen);
    free(prefix);
    free(named);
    if (rc == 0 && fc.rec == NULL) {
        snprintf(err, errlen, "no activation '%s' (unknown, or past the retention)", id);
        rc = TINE_ENOTFOUND;
    }
    *out = fc.rec;
    return rc;
}

/* The records of list KEYS[1] holding the text ARGV[1] (a quoted trace
 * id: in a record's id or trace field, or by chance in its logs, which the
 * caller checks), at most 1000. */
static const char trace_script[] =
    "local out, n = {}, redis.call('LLEN', KEYS[1])\n"
    "for i = 0, n - 1, 500 do\n"
    "  for _, rec in ipairs(redis.call('LRANGE', KEYS[1], i, i + 499)) do\n"
    "    if string.find(rec, ARGV[1], 1, true) then\n"
    "      out[#out + 1] = rec\n"
    "      if #out >= 1000 then return out end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

typedef struct {
    bill_t *b;
    const char *trace, *quoted;
    json_t *list;
} trace_ctx_t;

/* each_list's step of bill_trace: the list's records of the trace. */
static int trace_step(const char *key, size_t key_len, void *data, char *err, size_t errlen)
{
    trace_ctx_t *tc = data;
    redisReply *r = bill__command(tc->b, err, errlen, "EVAL %s 1 %b %s", trace_script, key, key_len, tc->quoted);
    if (r == NULL)
        return TINE_EREDIS;
    char *app = xstrndup(key + strlen(RDS_KEY_ACTS_PREFIX), key_len - strlen(RDS_KEY_ACTS_PREFIX));
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *rec = record_load(r->element[i]->str, r->element[i]->len, app);
        if (rec && strcmp(field(rec, "trace"), tc->trace) == 0) {
            json_object_del(rec, "logs");
            json_array_append(tc->list, rec);
        }
        json_decref(rec);
    }
    free(app);
    freeReplyObject(r);
    return 0;
}

/* qsort order of a trace's records: by start, then id. */
static int by_start(const void *pa, const void *pb)
{
    json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    uint64_t sa = ufield(a, "start_ms"), sb = ufield(b, "start_ms");
    return sa != sb ? (sa < sb ? -1 : 1) : strcmp(field(a, "id"), field(b, "id"));
}

int bill_trace(bill_t *b, const char *trace, json_t **out, char *err, size_t errlen)
{
    /* No index by trace either: the lists are searched like one record's. */
    char *quoted = xasprintf("\"%s\"", trace);
    trace_ctx_t tc = {b, trace, quoted, json_array()};
    int rc = each_list(b, trace_step, &tc, err, errlen);
    free(quoted);
    if (rc != 0) {
        json_decref(tc.list);
        return rc;
    }
    size_t n = json_array_size(tc.list);
    json_t **v = xmalloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(tc.list, i));
    qsort(v, n, sizeof(*v), by_start);
    json_array_clear(tc.list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(tc.list, v[i]);
    free(v);
    *out = tc.list;
    return 0;
}

/* ------------------------------------------------------------ logs */

bool bill_line_passes(const bill_line_filter_t *f, const char *line, size_t len)
{
    if (f == NULL || (f->since_ms == 0 && f->level == NULL && f->text == NULL))
        return true;
    json_t *o = json_loadb(line, len, 0, NULL);
    json_int_t t = json_integer_value(json_object_get(o, "t"));
    const char *level = json_string_value(json_object_get(o, "level"));
    const char *msg = json_string_value(json_object_get(o, "msg"));
    bool pass = o != NULL && (f->since_ms == 0 || (t > 0 && (uint64_t)t >= f->since_ms)) &&
                (f->level == NULL || (level && strcmp(level, f->level) == 0)) &&
                (f->text == NULL || (msg && strstr(msg, f->text) != NULL));
    json_decref(o);
    return pass;
}

typedef struct {
    const char *fn;
    const bill_line_filter_t *filter;
    size_t limit;
    size_t lines;
    tine_buf_t *chunks; /* one per activation, newest first */
    size_t nchunks;
} logs_ctx_t;

/* scan_records visitor of the logs endpoint: formats the log lines of rec as
 * one chunk; nonzero once there are enough lines. */
static int visit_logs(json_t *rec, void *data)
{
    logs_ctx_t *lc = data;
    json_t *logs = json_object_get(rec, "logs");
    if (!function_matches(rec, lc->fn) || json_array_size(logs) == 0)
        return 0;
    lc->chunks = xrealloc(lc->chunks, (lc->nchunks + 1) * sizeof(*lc->chunks));
    tine_buf_t *c = &lc->chunks[lc->nchunks++], all;
    tine_buf_init(c);
    tine_buf_init(&all);
    bill__format_lines(&all, field(rec, "app"), field(rec, "function"),
                       (uint64_t)json_integer_value(json_object_get(rec, "version")), field(rec, "id"), logs);
    for (size_t off = 0; off < all.len;) {
        size_t n = strcspn(all.data + off, "\n") + 1; /* each line ends with "\n" */
        if (bill_line_passes(lc->filter, all.data + off, n - 1)) {
            tine_buf_append(c, all.data + off, n);
            lc->lines++;
        }
        off += n;
    }
    tine_buf_dispose(&all);
    return lc->lines >= lc->limit;
}

int bill_logs_recent(bill_t *b, const char *app, const char *fn, const bill_line_filter_t *f, size_t limit,
                     tine_buf_t *out, char *err, size_t errlen)
{
    logs_ctx_t lc = {.fn = fn, .filter = f, .limit = limit};
    int rc = limit ? scan_records(b, app, visit_logs, &lc, err, errlen) : 0;
    size_t skip = lc.lines > limit ? lc.lines - limit : 0; /* the oldest lines past the limit */
    for (size_t i = lc.nchunks; i-- > 0;) {
        tine_buf_t *c = &lc.chunks[i];
        size_t off = 0;
        for (; skip > 0 && off < c->len; skip--)
            off += strcspn(c->data + off, "\n") + 1;
        if (rc == 0 && off < c->len)
            tine_buf_append(out, c->data + off, c->len - off);
        tine_buf_dispose(c);
    }
    free(lc.chunks);
    return rc;
}
