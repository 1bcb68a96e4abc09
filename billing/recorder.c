/* The recorder: turns each finished invocation into an activation record,
 * usage counters and log lines, and writes them to Redis in batches every
 * BILL_FLUSH_MS over an asynchronous connection (redis/, reconnecting by
 * itself), so the invocation's response never waits for Redis.
 *
 * What one flush sends, whatever the number of invocations it holds: per
 * app an LPUSH of all its records, one script that trims the list to the
 * retention bounds, and one PUBLISH of all its log lines; one HINCRBY per
 * usage counter that moved. Each invocation costs formatting its record on
 * the loop and a list push and pop in Redis, nothing more (no key per
 * record: looking a record up by id scans the lists, see report.c).
 *
 * While Redis is away records wait in a bounded batch (past it they are
 * dropped and counted; at a stop they go to the spill file, which the next
 * start writes); usage counters wait without loss, since they are few
 * (one set per app, day, function and version). Neither waits for a
 * replica (WAIT): records and counters written just before the master
 * fails may be lost with it; writes whose connection broke before they
 * were answered are counted (records as dropped, counters in usage_lost). */
#include "billing_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BILL_KEEP_RESP_BYTES (1024u * 1024u)

/* Trims an app's record list (KEYS[1]) to the newest ARGV[1] records, pops
 * those that started before ARGV[2] (unix ms) from its old end, and sets its
 * TTL to ARGV[3] seconds, so an app that stops being called is forgotten.
 * start_ms is a record's second value (or, in a record stored as a named
 * JSON object by earlier builds, its "start_ms" field). */
static const char trim_script[] =
    "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
    "local cutoff, n = tonumber(ARGV[2]), 0\n"
    "while n < 10000 do\n"
    "  local rec = redis.call('LINDEX', KEYS[1], -1)\n"
    "  if not rec then break end\n"
    "  local t = tonumber(string.match(rec, '^%[\"%x*\",(%d+)') or string.match(rec, '\"start_ms\":(%d+)'))\n"
    "  if t and t >= cutoff then break end\n"
    "  redis.call('RPOP', KEYS[1])\n"
    "  n = n + 1\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "return n\n";

static void flush_later(bill_t *b, uint64_t ms);

/* ------------------------------------------------------------ connection */

/* The writer is (back) up: what waited goes now. */
static void on_writer_up(void *data)
{
    bill_t *b = data;
    if (b->npending || b->deltas.len)
        flush_later(b, 0);
}

/* The writer's connection to Redis was lost: a warning; records wait in
 * memory until rds_async is connected again. */
static void on_writer_lost(void *data)
{
    (void)data;
    tine_log(TINE_LOG_WARN, "billing: lost the connection to redis; records wait in memory until it is back");
}

/* ------------------------------------------------------------ formatting */

#define PUT(out, lit) tine_buf_append((out), (lit), sizeof(lit) - 1)

/* Appends v in decimal. */
static void put_u64(tine_buf_t *out, uint64_t v)
{
    char tmp[32];
    tine_buf_append(out, tmp, tine_fmt_u64(tmp, v, 1));
}

static void put_str(tine_buf_t *out, const char *s)
{
    tine_buf_append(out, s, strlen(s));
}

/* Appends a string that needs no escaping as is (the names the registry
 * validated), anything else through the JSON quoter. */
static void put_quoted(tine_buf_t *out, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
            tine_json_quote(out, s, n);
            return;
        }
    }
    PUT(out, "\"");
    tine_buf_append(out, s, n);
    PUT(out, "\"");
}

/* The UTC day of unix_ms, formatted once per day. */
static const char *day_of(bill_t *b, uint64_t unix_ms)
{
    uint64_t day = unix_ms / 86400000u;
    if (day != b->day_num || b->day_text[0] == '\0') {
        bill_day(unix_ms, b->day_text);
        b->day_num = day;
    }
    return b->day_text;
}

/* The outcome word of a call's result code in a record: ok, error, timeout,
 * crash or failed. */
static const char *outcome(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case TINE_EHANDLER:
        return "error";
    case TINE_ETIMEOUT:
        return "timeout";
    case TINE_ECRASH:
        return "crash";
    default:
        return "failed";
    }
}

/* The activation record as stored: a JSON array of its values in the order
 * of stored_fields (report.c), without the names and without what a
 * reader can derive (app, start, mb_ms, gb_s, cost), booleans as 0 or 1,
 * and error, logs and logs_truncated left out at their defaults: ~110 bytes
 * instead of ~340 as named JSON (Redis's work per record follows its size).
 * It starts with ["<id>",<start_ms>: the trim script and the lookup by id
 * rely on that. */
static void put_record(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t cost, tine_buf_t *out)
{
    PUT(out, "[\"");
    put_str(out, a->invocation_id); /* hex */
    PUT(out, "\",");
    put_u64(out, a->start_unix_ms);
    PUT(out, ",");
    put_quoted(out, a->function);
    PUT(out, ",");
    put_u64(out, a->version);
    PUT(out, ",");
    put_quoted(out, a->trigger ? a->trigger : "http");
    PUT(out, ",");
    put_quoted(out, b->node_id);
    PUT(out, ",");
    put_u64(out, a->duration_ns / 1000u);
    PUT(out, ",");
    put_u64(out, a->queued_ns / 1000u);
    put_str(out, a->cold ? ",1," : ",0,");
    put_u64(out, a->cold_start_ns / 1000u);
    PUT(out, ",");
    put_u64(out, a->cpu_ns / 1000u);
    put_str(out, a->dispatched ? ",1," : ",0,");
    put_u64(out, billed_ms);
    PUT(out, ",");
    put_u64(out, a->memory_mb);
    PUT(out, ",");
    put_u64(out, cost);
    PUT(out, ",");
    put_u64(out, a->timeout_ms);
    PUT(out, ",");
    put_u64(out, a->status < 0 ? 0 : (uint64_t)a->status);
    PUT(out, ",\"");
    put_str(out, outcome(a->code));
    PUT(out, "\"");
    bool logs = a->logs && json_array_size(a->logs) > 0;
    /* trace and parent follow logs_truncated, left out (with what comes
     * before them) for a call that starts its own trace: the trace is then
     * its id. */
    bool traced = (a->parent_id && a->parent_id[0]) ||
                  (a->trace_id && a->trace_id[0] && strcmp(a->trace_id, a->invocation_id) != 0);
    if (a->error || logs || a->logs_truncated || traced) {
        PUT(out, ",");
        if (a->error)
            tine_json_quote(out, a->error, strlen(a->error));
        else
            PUT(out, "null");
    }
    if (logs || a->logs_truncated || traced) {
        PUT(out, ",");
        if (logs) {
            char *text = json_dumps(a->logs, JSON_COMPACT);
            put_str(out, text);
            free(text);
        } else {
            PUT(out, "[]");
        }
    }
    if (a->logs_truncated || traced)
        put_str(out, a->logs_truncated ? ",1" : ",0");
    if (traced) {
        PUT(out, ",\"");
        put_str(out, a->trace_id && a->trace_id[0] ? a->trace_id : a->invocation_id); /* hex */
        PUT(out, "\",\"");
        put_str(out, a->parent_id ? a->parent_id : ""); /* hex */
        PUT(out, "\"");
    }
    PUT(out, "]");
}

void bill__format_lines(tine_buf_t *out, const char *app, const char *fn, uint64_t version, const char *id,
                        json_t *logs)
{
    size_t i;
    json_t *line;
    json_array_foreach(logs, i, line)
    {
        json_t *msg = json_object_get(line, "msg");
        const char *level = json_string_value(json_object_get(line, "level"));
        PUT(out, "{\"t\":");
        put_u64(out, (uint64_t)json_integer_value(json_object_get(line, "t")));
        PUT(out, ",\"app\":");
        put_quoted(out, app);
        PUT(out, ",\"function\":"); /* right after the app: follow.c filters on it */
        put_quoted(out, fn);
        PUT(out, ",\"version\":");
        put_u64(out, version);
        PUT(out, ",\"id\":");
        put_quoted(out, id);
        PUT(out, ",\"level\":");
        put_quoted(out, level ? level : "info");
        PUT(out, ",\"msg\":");
        tine_json_quote(out, json_string_value(msg) ? json_string_value(msg) : "", json_string_length(msg));
        PUT(out, "}\n");
    }
}

/* ------------------------------------------------------------ recording */

/* Appends s to the key being built in buf (cap bytes); returns the new length. */
static size_t key_cat(char *buf, size_t len, size_t cap, const char *s, size_t n)
{
    if (len + n >= cap)
        n = len < cap ? cap - 1 - len : 0; /* names are bounded by the registry: cannot happen */
    memcpy(buf + len, s, n);
    return len + n;
}

/* Adds to the usage delta of the map key "key\nfield" (len bytes, the
 * newline at nl), created on first use. */
static void delta_add(bill_t *b, const char *key, size_t nl, size_t len, const uint64_t v[4])
{
    void **slot = bill__map_slot(&b->deltas, key, len);
    bill_usage_delta_t *d = *slot;
    if (d == NULL) {
        d = xcalloc(1, sizeof(*d));
        d->key = xstrndup(key, nl);
        d->field = xstrndup(key + nl + 1, len - nl - 1);
        *slot = d;
    }
    d->invocations += v[0];
    d->billed_ms += v[1];
    d->mb_ms += v[2];
    d->cost_pusd += v[3];
}

/* Adds one activation to the usage delta of its app, day, function and
 * version. */
static void usage_add(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t mb_ms, uint64_t cost)
{
    /* the map key: "RDS_KEY_USAGE_PREFIX{app}:{day}\n{fn}|{version}|" */
    char key[512], ver[32];
    ver[0] = '|';
    size_t vl = 1 + tine_fmt_u64(ver + 1, a->version, 1);
    ver[vl++] = '|';
    size_t n = key_cat(key, 0, sizeof(key), RDS_KEY_USAGE_PREFIX, sizeof(RDS_KEY_USAGE_PREFIX) - 1);
    n = key_cat(key, n, sizeof(key), a->app, strlen(a->app));
    n = key_cat(key, n, sizeof(key), ":", 1);
    n = key_cat(key, n, sizeof(key), day_of(b, a->start_unix_ms), 10);
    size_t nl = n;
    n = key_cat(key, n, sizeof(key), "\n", 1);
    n = key_cat(key, n, sizeof(key), a->function, strlen(a->function));
    n = key_cat(key, n, sizeof(key), ver, vl);
    const uint64_t v[4] = {1, billed_ms, mb_ms, cost};
    delta_add(b, key, nl, n, v);
}

/* Queues one stored record of app (len bytes of text) for the next batch;
 * the caller checked the bounds. */
static bill_pending_t *pending_add(bill_t *b, const char *app, uint64_t start_ms)
{
    if (b->npending == b->cap_pending) {
        b->cap_pending = b->cap_pending ? b->cap_pending * 2 : 256;
        b->pending = xrealloc(b->pending, b->cap_pending * sizeof(*b->pending));
    }
    bill_pending_t *p = &b->pending[b->npending++];
    p->app = app;
    p->start_ms = start_ms;
    p->rec_off = b->batch_records.len;
    p->lines_off = b->batch_lines.len;
    p->rec_len = p->lines_len = 0;
    return p;
}

/* Counts a record dropped because the pending ones reached their limit
 * (Redis slow or away), with a warning at most every 10 s. */
static void drop_record(bill_t *b)
{
    b->dropped++;
    uint64_t now = tine_now_ns();
    if (b->last_drop_log_ns == 0 || now - b->last_drop_log_ns > 10ull * 1000000000ull) {
        b->last_drop_log_ns = now;
        tine_log(TINE_LOG_WARN,
                 "billing: redis is not keeping up or unreachable; dropping activation records (%" PRIu64
                 " so far; usage counters are kept)",
                 b->dropped);
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    bill_flush(container_of(t, bill_t, flush_timer));
}

/* Flushes in ms milliseconds unless a flush is already armed or the recorder
 * is closing. */
static void flush_later(bill_t *b, uint64_t ms)
{
    if (!b->closing && !uv_is_active((uv_handle_t *)&b->flush_timer))
        uv_timer_start(&b->flush_timer, on_flush_timer, ms, 0);
}

void bill_on_activation(void *data, const inv_activation_t *a)
{
    bill_t *b = data;
    uint64_t billed_ms = a->dispatched ? bill_billed_ms(a->duration_ns, a->timeout_ms) : 0;
    uint64_t mb_ms = bill_mb_ms(a->memory_mb, billed_ms);
    uint64_t cost = bill_activation_cost(&b->prices, a);
    const char *app = bill__metrics_count(b, a, billed_ms, cost);
    usage_add(b, a, billed_ms, mb_ms, cost);
    flush_later(b, BILL_FLUSH_MS);
    if (b->npending >= b->max_pending || b->batch_records.len + b->batch_lines.len >= BILL_MAX_PENDING_BYTES) {
        drop_record(b);
        return;
    }
    bill_pending_t *p = pending_add(b, app, a->start_unix_ms);
    put_record(b, a, billed_ms, cost, &b->batch_records);
    p->rec_len = b->batch_records.len - p->rec_off;
    if (a->logs && json_array_size(a->logs) > 0)
        bill__format_lines(&b->batch_lines, a->app, a->function, a->version, a->invocation_id, a->logs);
    p->lines_len = b->batch_lines.len - p->lines_off;
    /* Under load, flush every BILL_FLUSH_RECORDS records (next loop turn)
     * rather than thousands at once: one big batch stalls the loop for
     * milliseconds, which every request waiting behind it pays. */
    if (b->npending >= BILL_FLUSH_RECORDS && !b->closing)
        uv_timer_start(&b->flush_timer, on_flush_timer, 0, 0);
}

/* ------------------------------------------------------------ flushing */

/* A write's reply: counts it, and the records it carried when it did. */
static void write_done(bill_t *b, redisReply *r, uint64_t records)
{
    b->inflight--;
    bool failed = r == NULL || r->type == REDIS_REPLY_ERROR;
    if (failed)
        b->dropped += records;
    else
        b->recorded += records;
    if (failed && (b->write_errors++ == 0 || r != NULL))
        tine_log(TINE_LOG_WARN, "billing: a redis write failed: %s", r ? r->str : "connection lost");
}

/* The reply of a write that carried no records. */
static void on_reply(void *data, redisReply *r)
{
    write_done(data, r, 0);
}

/* A HINCRBY of the usage: one that failed (the connection lost first: it
 * may not have landed) is counted, not sent again (it may have). */
static void on_usage_reply(void *data, redisReply *r)
{
    bill_t *b = data;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        b->usage_lost++;
    write_done(b, r, 0);
}

/* The LPUSH of an app's records: how many it carried. */
typedef struct {
    bill_t *b;
    uint64_t records;
} records_write_t;

/* The reply of a write carrying records: counts them and frees its context. */
static void on_records_reply(void *data, redisReply *r)
{
    records_write_t *w = data;
    write_done(w->b, r, w->records);
    free(w);
}

/* Sends one command on the writer, its reply to fn; a command that cannot
 * be queued counts as a write error (and a usage increment as lost). */
static void send_argv(bill_t *b, rds_reply_fn fn, int argc, const char **argv, const size_t *lens)
{
    b->inflight++;
    if (rds_async_command(b->writer, fn, b, argc, argv, lens) != 0) {
        b->inflight--;
        b->write_errors++;
        if (fn == on_usage_reply)
            b->usage_lost++;
    }
}

/* Appends a RESP bulk string ("$<len>\r\n<bytes>\r\n"). */
static void resp_bulk(tine_buf_t *out, const char *s, size_t n)
{
    char len[24];
    PUT(out, "$");
    tine_buf_append(out, len, tine_fmt_u64(len, n, 1));
    PUT(out, "\r\n");
    tine_buf_append(out, s, n);
    PUT(out, "\r\n");
}

/* Per app: its records in one LPUSH (in the order they finished), the trim
 * script, its log lines in one PUBLISH. The LPUSH, which carries every
 * record, is written in RESP here (hiredis's generic formatter was 4 % of
 * tined's time under load). */
static void flush_apps(bill_t *b)
{
    char count[24], cutoff[24], ttl[24];
    uint64_t now = tine_now_unix_ms(), age_ms = (uint64_t)b->retention_s * 1000u;
    snprintf(count, sizeof(count), "%u", b->retention_count);
    snprintf(cutoff, sizeof(cutoff), "%" PRIu64, now > age_ms ? now - age_ms : 0);
    snprintf(ttl, sizeof(ttl), "%u", b->retention_s);
    tine_buf_t lines;
    tine_buf_init(&lines);
    tine_buf_t *cmd = &b->resp;
    for (size_t i = 0; i < b->npending; i++) {
        const char *app = b->pending[i].app;
        if (app == NULL)
            continue; /* done with an earlier app */
        char *key = xasprintf(RDS_KEY_ACTS_PREFIX "%s", app);
        /* The command's head ("*<n>\r\n$5\r\nLPUSH\r\n" and the key) goes
         * right-aligned into room left at the front once n is known. */
        size_t room = 64 + strlen(key);
        cmd->len = 0;
        tine_buf_grow(cmd, room);
        cmd->len = room;
        size_t nrec = 0;
        lines.len = 0;
        for (size_t j = i; j < b->npending; j++) {
            bill_pending_t *p = &b->pending[j];
            if (p->app == NULL || (p->app != app && strcmp(p->app, app) != 0))
                continue;
            p->app = NULL;
            resp_bulk(cmd, b->batch_records.data + p->rec_off, p->rec_len);
            nrec++;
            if (p->lines_len)
                tine_buf_append(&lines, b->batch_lines.data + p->lines_off, p->lines_len);
        }
        tine_buf_t head;
        tine_buf_init(&head);
        char n[24];
        PUT(&head, "*");
        tine_buf_append(&head, n, tine_fmt_u64(n, nrec + 2, 1));
        PUT(&head, "\r\n$5\r\nLPUSH\r\n");
        resp_bulk(&head, key, strlen(key));
        char *start = cmd->data + room - head.len;
        memcpy(start, head.data, head.len);
        tine_buf_dispose(&head);
        b->inflight++;
        records_write_t *w = xmalloc(sizeof(*w));
        *w = (records_write_t){b, nrec};
        if (rds_async_formatted(b->writer, on_records_reply, w, start, cmd->len - (size_t)(start - cmd->data)) != 0) {
            free(w);
            b->inflight--;
            b->write_errors++;
            b->dropped += nrec;
        }
        const char *targv[] = {"EVAL", trim_script, "1", key, count, cutoff, ttl};
        size_t tlens[] = {4, sizeof(trim_script) - 1, 1, strlen(key), strlen(count), strlen(cutoff), strlen(ttl)};
        send_argv(b, on_reply, 7, targv, tlens);
        if (lines.len) {
            char *chan = xasprintf(RDS_CHANNEL_LOGS_PREFIX "%s", app);
            const char *pargv[] = {"PUBLISH", chan, lines.data};
            size_t plens[] = {7, strlen(chan), lines.len};
            send_argv(b, on_reply, 3, pargv, plens);
            free(chan);
        }
        free(key);
    }
    tine_buf_dispose(&lines);
    if (cmd->cap > BILL_KEEP_RESP_BYTES)
        tine_buf_dispose(cmd); /* a burst's buffer is given back */
}

/* One HINCRBY per counter that moved. */
static void flush_usage(bill_t *b)
{
    static const char *const names[] = {"invocations", "billed_ms", "mb_ms", "cost_pusd"};
    for (size_t i = 0; i < b->deltas.cap; i++) {
        bill_usage_delta_t *d = b->deltas.keys[i] ? b->deltas.values[i] : NULL;
        if (d == NULL)
            continue;
        uint64_t v[] = {d->invocations, d->billed_ms, d->mb_ms, d->cost_pusd};
        for (int k = 0; k < 4; k++) {
            if (v[k] == 0)
                continue;
            char *field = xasprintf("%s%s", d->field, names[k]);
            char by[24];
            snprintf(by, sizeof(by), "%" PRIu64, v[k]);
            const char *argv[] = {"HINCRBY", d->key, field, by};
            size_t lens[] = {7, strlen(d->key), strlen(field), strlen(by)};
            send_argv(b, on_usage_reply, 4, argv, lens);
            free(field);
        }
    }
}

static void free_delta(void *v)
{
    bill_usage_delta_t *d = v;
    free(d->key);
    free(d->field);
    free(d);
}

void bill_flush(bill_t *b)
{
    if (b->npending == 0 && b->deltas.len == 0)
        return;
    if (!rds_async_connected(b->writer))
        return; /* on_writer_up flushes */
    if (b->inflight > BILL_MAX_INFLIGHT) {
        flush_later(b, BILL_FLUSH_MS); /* Redis is slow: let the batch grow (bounded) */
        return;
    }
    flush_apps(b);
    flush_usage(b);
    bill__map_dispose(&b->deltas, free_delta);
    bill__map_init(&b->deltas);
    b->npending = 0;
    b->batch_records.len = 0;
    b->batch_lines.len = 0;
}

/* ------------------------------------------------------------ spill file */

/* Writes what is still pending (records and usage; not log lines, which
 * were for live followers) to the spill file, one per line: "r <app>\t
 * <record>" and "u <key>\t<field>\t<invocations> <billed_ms> <mb_ms>
 * <cost_pusd>" (names hold no tab or newline: the registry checked them),
 * through a temporary file renamed into place. */
static void spill(bill_t *b)
{
    tine_buf_t out;
    tine_buf_init(&out);
    for (size_t i = 0; i < b->npending; i++) {
        const bill_pending_t *p = &b->pending[i];
        if (p->app == NULL)
            continue;
        PUT(&out, "r ");
        put_str(&out, p->app);
        PUT(&out, "\t");
        tine_buf_append(&out, b->batch_records.data + p->rec_off, p->rec_len);
        PUT(&out, "\n");
    }
    for (size_t i = 0; i < b->deltas.cap; i++) {
        bill_usage_delta_t *d = b->deltas.keys[i] ? b->deltas.values[i] : NULL;
        if (d == NULL)
            continue;
        char line[128];
        snprintf(line, sizeof line, "\t%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", d->invocations,
                 d->billed_ms, d->mb_ms, d->cost_pusd);
        PUT(&out, "u ");
        put_str(&out, d->key);
        PUT(&out, "\t");
        put_str(&out, d->field);
        put_str(&out, line);
    }
    char *tmp = xasprintf("%s.tmp", b->spill_path);
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL && fwrite(out.data, 1, out.len, f) == out.len;
    ok = f != NULL && fclose(f) == 0 && ok;
    if (ok && rename(tmp, b->spill_path) == 0)
        tine_log(TINE_LOG_WARN,
                 "billing: redis is away; %zu activation records and %zu usage counters wait in %s for the next start",
                 b->npending, b->deltas.len, b->spill_path);
    else
        tine_log(TINE_LOG_ERROR, "billing: cannot write %s: %s; %zu activation records are lost", b->spill_path,
                 strerror(errno), b->npending);
    free(tmp);
    tine_buf_dispose(&out);
}

/* Reads the spill file of a previous run back into the batch (it is
 * written to Redis once the writer is up) and removes it. A malformed line
 * is skipped with a warning naming it. */
static void unspill(bill_t *b)
{
    FILE *f = fopen(b->spill_path, "r");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0, records = 0, counters = 0, lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *tab = strchr(line, '\t');
        if (n > 2 && line[0] == 'r' && line[1] == ' ' && tab) {
            size_t alen = (size_t)(tab - line - 2);
            void **slot = bill__map_slot(&b->spilled_apps, line + 2, alen);
            if (*slot == NULL)
                *slot = xstrndup(line + 2, alen);
            const char *rec = tab + 1;
            const char *start = strchr(rec, ',');
            bill_pending_t *p = pending_add(b, *slot, start ? strtoull(start + 1, NULL, 10) : 0);
            put_str(&b->batch_records, rec);
            p->rec_len = b->batch_records.len - p->rec_off;
            records++;
            continue;
        }
        char *tab2 = tab ? strchr(tab + 1, '\t') : NULL;
        uint64_t v[4];
        if (n > 2 && line[0] == 'u' && line[1] == ' ' && tab2 &&
            sscanf(tab2 + 1, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &v[0], &v[1], &v[2], &v[3]) == 4) {
            *tab = '\n';
            delta_add(b, line + 2, (size_t)(tab - line - 2), (size_t)(tab2 - line - 2), v);
            counters++;
            continue;
        }
        tine_log(TINE_LOG_WARN, "billing: %s:%zu: not a spilled record or counter; skipped", b->spill_path, lineno);
    }
    free(line);
    fclose(f);
    if (unlink(b->spill_path) != 0)
        tine_log(TINE_LOG_WARN, "billing: cannot remove %s: %s", b->spill_path, strerror(errno));
    tine_log(TINE_LOG_INFO, "billing: %zu activation records and %zu usage counters of the last run read from %s",
             records, counters, b->spill_path);
}

/* ------------------------------------------------------------ lifecycle */

bill_t *bill_new(uv_loop_t *loop, const bill_config_t *cfg)
{
    bill_t *b = xcalloc(1, sizeof(*b));
    b->loop = loop;
    b->redis_url = xstrdup(cfg->redis_url);
    b->node_id = xstrdup(cfg->node_id ? cfg->node_id : "node");
    b->prices = cfg->prices;
    b->retention_count = cfg->retention_count ? cfg->retention_count : 10000;
    b->retention_s = cfg->retention_s ? cfg->retention_s : 7 * 24 * 3600;
    b->max_pending = cfg->max_pending ? cfg->max_pending : BILL_MAX_PENDING;
    b->spill_path = cfg->spill_path ? xstrdup(cfg->spill_path) : NULL;
    bill__map_init(&b->spilled_apps);
    tine_buf_init(&b->batch_records);
    tine_buf_init(&b->batch_lines);
    tine_buf_init(&b->resp);
    bill__map_init(&b->deltas);
    bill__map_init(&b->series);
    if (b->spill_path)
        unspill(b);
    uv_timer_init(loop, &b->flush_timer);
    b->handles_open = 1;
    rds_async_config_t wcfg = {.name = "billing", .on_connected = on_writer_up, .on_lost = on_writer_lost, .data = b};
    char err[512];
    if (rds_async_new(loop, b->redis_url, &wcfg, &b->writer, err, sizeof err) != 0)
        tine_log(TINE_LOG_ERROR, "billing: %s; activation records will not be written", err);
    return b;
}

/* The flush timer or the writer closed; the last frees the recorder. */
static void release(bill_t *b)
{
    if (--b->handles_open > 0)
        return;
    free(b);
}

/* The flush timer closed: one of the two releases of the recorder. */
static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* The writer closed: one of the two releases of the recorder. */
static void on_writer_closed(void *data)
{
    release(data);
}

void bill_free(bill_t *b)
{
    if (b == NULL)
        return;
    bill_flush(b);
    if (b->spill_path && (b->npending || b->deltas.len))
        spill(b);
    b->closing = true;
    if (b->writer) {
        /* What was sent still gets its replies before the connection
         * closes; the recorder stays allocated until then. */
        b->handles_open++;
        rds_async_close(b->writer, true, on_writer_closed, b);
        b->writer = NULL;
    }
    bill__follow_dispose(b);
    rds_sync_free(b->reader);
    b->reader = NULL;
    free(b->pending);
    b->pending = NULL;
    b->npending = 0;
    tine_buf_dispose(&b->batch_records);
    tine_buf_dispose(&b->batch_lines);
    tine_buf_dispose(&b->resp);
    bill__map_dispose(&b->deltas, free_delta);
    bill__metrics_dispose(b);
    bill__map_dispose(&b->spilled_apps, free);
    free(b->redis_url);
    free(b->node_id);
    free(b->spill_path);
    b->redis_url = b->node_id = b->spill_path = NULL;
    b->flush_timer.data = b;
    uv_close((uv_handle_t *)&b->flush_timer, on_handle_closed);
}
