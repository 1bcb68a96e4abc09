/* The recorder: turns each finished invocation into an activation record,
 * usage counters and log lines, and writes them to Redis in batches every
 * BILL_FLUSH_MS over an asynchronous connection, so the invocation's
 * response never waits for Redis. While Redis is away records wait in a
 * bounded batch (then are dropped and counted); usage counters wait without
 * loss, since they are few (one set per app, day, function and version). */
#include "billing_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REPLY_RECORD = 1, REPLY_OTHER = 2 };

/* Deletes the records that fell out of an app's index: older than ARGV[2]
 * (unix ms) or beyond the newest ARGV[1]. KEYS[1] is the index. */
static const char trim_script[] =
    "local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])\n"
    "local over = redis.call('ZRANGE', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))\n"
    "for _, id in ipairs(old) do redis.call('DEL', '" BILL_KEY_ACT "' .. id) end\n"
    "for _, id in ipairs(over) do redis.call('DEL', '" BILL_KEY_ACT "' .. id) end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])\n"
    "redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))\n"
    "return #old + #over\n";

static void writer_connect(bill_t *b);
static void flush_later(bill_t *b, uint64_t ms);

/* ------------------------------------------------------------ connection */

static void on_reconnect_timer(uv_timer_t *t)
{
    writer_connect(container_of(t, bill_t, reconnect_timer));
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    bill_t *b = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        b->ac = NULL;
        b->connected = false;
        if (!b->closing)
            uv_timer_start(&b->reconnect_timer, on_reconnect_timer, 1000, 0);
        return;
    }
    b->connected = true;
    if (b->npending || b->deltas.len)
        flush_later(b, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    bill_t *b = ac->data;
    b->ac = NULL;
    b->connected = false;
    if (b->closing) {
        /* bill_free's graceful disconnect finished: the last reply is in. */
        if (--b->handles_open == 0)
            free(b);
        return;
    }
    tine_log(TINE_LOG_WARN, "billing: lost the connection to redis (%s); records wait in memory while it retries",
             ac->errstr[0] ? ac->errstr : "closed");
    uv_timer_start(&b->reconnect_timer, on_reconnect_timer, 1000, 0);
}

static void writer_connect(bill_t *b)
{
    b->ac = bill__async_connect(b);
    if (b->ac == NULL) {
        uv_timer_start(&b->reconnect_timer, on_reconnect_timer, 1000, 0);
        return;
    }
    redisAsyncSetConnectCallback(b->ac, on_connect);
    redisAsyncSetDisconnectCallback(b->ac, on_disconnect);
}

/* ------------------------------------------------------------ records */

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

/* "12.345": milliseconds with three decimals, from nanoseconds. */
static void ms3(uint64_t ns, char out[32])
{
    snprintf(out, 32, "%" PRIu64 ".%03" PRIu64, ns / 1000000u, ns / 1000u % 1000u);
}

static void iso8601_ms(uint64_t unix_ms, char out[32])
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(unix_ms % 1000));
}

/* Appends a short string that needs no escaping as is (names the registry
 * validated), anything else through the JSON quoter. */
static void quote(tine_buf_t *out, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
            tine_json_quote(out, s, n);
            return;
        }
    }
    tine_buf_append(out, "\"", 1);
    tine_buf_append(out, s, n);
    tine_buf_append(out, "\"", 1);
}

/* The activation record as JSON (docs/ARCHITECTURE.md lists its fields). */
static void record_json(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t mb_ms, uint64_t cost,
                        tine_buf_t *out)
{
    char start[32], dur[32], queued[32], cpu[32], cold[32], gb_s[48], money[32], num[640];
    iso8601_ms(a->start_unix_ms, start);
    ms3(a->duration_ns, dur);
    ms3(a->queued_ns, queued);
    ms3(a->cpu_ns, cpu);
    ms3(a->cold_start_ns, cold);
    bill_format_gb_s(mb_ms, gb_s);
    bill_format_pusd(cost, money);
    tine_buf_append(out, "{\"id\":", 6);
    quote(out, a->invocation_id);
    tine_buf_append(out, ",\"app\":", 7);
    quote(out, a->app);
    tine_buf_append(out, ",\"function\":", 12);
    quote(out, a->function);
    tine_buf_append(out, ",\"trigger\":", 11);
    quote(out, a->trigger ? a->trigger : "http");
    tine_buf_append(out, ",\"node\":", 8);
    quote(out, b->node_id);
    int n = snprintf(num, sizeof(num),
                     ",\"version\":%" PRIu64 ",\"start\":\"%s\",\"start_ms\":%" PRIu64 ",\"duration_ms\":%s"
                     ",\"queued_ms\":%s,\"billed\":%s,\"billed_ms\":%" PRIu64 ",\"memory_mb\":%u"
                     ",\"mb_ms\":%" PRIu64 ",\"gb_s\":\"%s\",\"cost\":\"%s\",\"cost_pusd\":%" PRIu64
                     ",\"cpu_ms\":%s,\"status\":%d,\"outcome\":\"%s\",\"cold\":%s,\"cold_start_ms\":%s"
                     ",\"timeout_ms\":%u",
                     a->version, start, a->start_unix_ms, dur, queued, a->dispatched ? "true" : "false", billed_ms,
                     a->memory_mb, mb_ms, gb_s, money, cost, cpu, a->status, outcome(a->code),
                     a->cold ? "true" : "false", cold, a->timeout_ms);
    tine_buf_append(out, num, (size_t)n < sizeof(num) ? (size_t)n : sizeof(num) - 1);
    if (a->error) {
        tine_buf_append(out, ",\"error\":", 9);
        tine_json_quote(out, a->error, strlen(a->error));
    }
    tine_buf_append(out, ",\"logs\":", 8);
    if (a->logs && json_array_size(a->logs) > 0) {
        char *logs = json_dumps(a->logs, JSON_COMPACT);
        tine_buf_append(out, logs, strlen(logs));
        free(logs);
    } else {
        tine_buf_append(out, "[]", 2);
    }
    tine_buf_append(out, a->logs_truncated ? ",\"logs_truncated\":true}" : ",\"logs_truncated\":false}",
                    a->logs_truncated ? 23 : 24);
}

void bill__format_lines(tine_buf_t *out, const char *app, const char *fn, uint64_t version, const char *id,
                        json_t *logs)
{
    char head[256];
    size_t i;
    json_t *line;
    json_array_foreach(logs, i, line)
    {
        json_t *msg = json_object_get(line, "msg");
        const char *level = json_string_value(json_object_get(line, "level"));
        int n = snprintf(head, sizeof(head), "{\"t\":%" JSON_INTEGER_FORMAT ",\"app\":\"%s\",\"function\":\"%s\"",
                         json_integer_value(json_object_get(line, "t")), app, fn);
        tine_buf_append(out, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
        n = snprintf(head, sizeof(head), ",\"version\":%" PRIu64 ",\"id\":\"%s\",\"level\":", version, id);
        tine_buf_append(out, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
        quote(out, level ? level : "info");
        tine_buf_append(out, ",\"msg\":", 7);
        tine_json_quote(out, json_string_value(msg) ? json_string_value(msg) : "", json_string_length(msg));
        tine_buf_append(out, "}\n", 2);
    }
}

static void usage_add(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t mb_ms, uint64_t cost)
{
    char day[11], key[512];
    bill_day(a->start_unix_ms, day);
    int n = snprintf(key, sizeof(key), BILL_KEY_USAGE "%s:%s\n%s|%" PRIu64 "|", a->app, day, a->function,
                     a->version);
    if (n < 0 || (size_t)n >= sizeof(key))
        return; /* names are bounded by the registry: cannot happen */
    void **slot = bill__map_slot(&b->deltas, key, (size_t)n);
    bill_usage_delta_t *d = *slot;
    if (d == NULL) {
        char *nl = strchr(key, '\n');
        d = xcalloc(1, sizeof(*d));
        d->key = xstrndup(key, (size_t)(nl - key));
        d->field = xstrdup(nl + 1);
        *slot = d;
    }
    d->invocations++;
    d->billed_ms += billed_ms;
    d->mb_ms += mb_ms;
    d->cost_pusd += cost;
}

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
    uint64_t cost = a->dispatched ? bill_cost_pusd(&b->prices, mb_ms) : 0;
    bill__metrics_count(b, a, billed_ms, cost);
    usage_add(b, a, billed_ms, mb_ms, cost);
    flush_later(b, BILL_FLUSH_MS);
    if (b->npending >= BILL_MAX_PENDING || b->pending_bytes >= BILL_MAX_PENDING_BYTES) {
        drop_record(b);
        return;
    }
    tine_buf_t rec;
    tine_buf_init(&rec);
    record_json(b, a, billed_ms, mb_ms, cost, &rec);
    if (b->npending == b->cap_pending) {
        b->cap_pending = b->cap_pending ? b->cap_pending * 2 : 64;
        b->pending = xrealloc(b->pending, b->cap_pending * sizeof(*b->pending));
    }
    bill_pending_t *p = &b->pending[b->npending++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", a->invocation_id);
    p->app = xstrdup(a->app);
    p->start_ms = a->start_unix_ms;
    p->record = rec.data;
    p->record_len = rec.len;
    if (a->logs && json_array_size(a->logs) > 0) {
        tine_buf_t lines;
        tine_buf_init(&lines);
        bill__format_lines(&lines, a->app, a->function, a->version, a->invocation_id, a->logs);
        p->lines = lines.data;
        p->lines_len = lines.len;
    }
    b->pending_bytes += p->record_len + p->lines_len;
}

/* ------------------------------------------------------------ flushing */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    bill_t *b = ac->data;
    redisReply *r = reply;
    int kind = (int)(uintptr_t)privdata;
    b->inflight--;
    bool failed = r == NULL || r->type == REDIS_REPLY_ERROR;
    if (kind == REPLY_RECORD) {
        if (failed)
            b->dropped++;
        else
            b->recorded++;
    } else if (failed) {
        if (b->write_errors++ == 0 || r != NULL)
            tine_log(TINE_LOG_WARN, "billing: a redis write failed: %s", r ? r->str : "connection lost");
    }
}

static void send_argv(bill_t *b, int kind, int argc, const char **argv, const size_t *lens)
{
    b->inflight++;
    if (redisAsyncCommandArgv(b->ac, on_reply, (void *)(uintptr_t)kind, argc, argv, lens) != REDIS_OK) {
        b->inflight--;
        if (kind == REPLY_RECORD)
            b->dropped++;
        else
            b->write_errors++;
    }
}

static void free_pending(bill_pending_t *p)
{
    free(p->app);
    free(p->record);
    free(p->lines);
}

static void free_delta(void *v)
{
    bill_usage_delta_t *d = v;
    free(d->key);
    free(d->field);
    free(d);
}

/* Writes each record (SET with the retention as TTL) and publishes its log
 * lines. */
static void flush_records(bill_t *b)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%u", b->retention_s);
    for (size_t i = 0; i < b->npending; i++) {
        bill_pending_t *p = &b->pending[i];
        char *key = xasprintf(BILL_KEY_ACT "%s", p->id);
        const char *argv[] = {"SET", key, p->record, "EX", ttl};
        size_t lens[] = {3, strlen(key), p->record_len, 2, strlen(ttl)};
        send_argv(b, REPLY_RECORD, 5, argv, lens);
        free(key);
        if (p->lines) {
            char *chan = xasprintf(BILL_KEY_LOGS "%s", p->app);
            const char *pargv[] = {"PUBLISH", chan, p->lines};
            size_t plens[] = {7, strlen(chan), p->lines_len};
            send_argv(b, REPLY_OTHER, 3, pargv, plens);
            free(chan);
        }
    }
}

/* Adds the batch's ids to each app's index (one ZADD per app), then trims the
 * index and deletes the records past the retention bounds. */
static void flush_indexes(bill_t *b)
{
    char count[24], cutoff[24], ttl[24];
    uint64_t now = tine_now_unix_ms();
    uint64_t age_ms = (uint64_t)b->retention_s * 1000u;
    snprintf(count, sizeof(count), "%u", b->retention_count);
    snprintf(cutoff, sizeof(cutoff), "%" PRIu64, now > age_ms ? now - age_ms : 0);
    snprintf(ttl, sizeof(ttl), "%u", b->retention_s);
    char(*scores)[24] = xmalloc(b->npending * sizeof(*scores));
    const char **argv = xmalloc((2 + 2 * b->npending) * sizeof(*argv));
    size_t *lens = xmalloc((2 + 2 * b->npending) * sizeof(*lens));
    bool *done = xcalloc(b->npending, sizeof(*done));
    for (size_t i = 0; i < b->npending; i++) {
        if (done[i])
            continue;
        char *key = xasprintf(BILL_KEY_ACTS "%s", b->pending[i].app);
        int argc = 0;
        argv[argc] = "ZADD", lens[argc++] = 4;
        argv[argc] = key, lens[argc++] = strlen(key);
        for (size_t j = i; j < b->npending; j++) {
            if (done[j] || strcmp(b->pending[j].app, b->pending[i].app) != 0)
                continue;
            done[j] = true;
            snprintf(scores[j], sizeof(scores[j]), "%" PRIu64, b->pending[j].start_ms);
            argv[argc] = scores[j], lens[argc++] = strlen(scores[j]);
            argv[argc] = b->pending[j].id, lens[argc++] = strlen(b->pending[j].id);
        }
        send_argv(b, REPLY_OTHER, argc, argv, lens);
        const char *targv[] = {"EVAL", trim_script, "1", key, count, cutoff};
        size_t tlens[] = {4, sizeof(trim_script) - 1, 1, strlen(key), strlen(count), strlen(cutoff)};
        send_argv(b, REPLY_OTHER, 6, targv, tlens);
        const char *eargv[] = {"EXPIRE", key, ttl};
        size_t elens[] = {6, strlen(key), strlen(ttl)};
        send_argv(b, REPLY_OTHER, 3, eargv, elens);
        free(key);
    }
    free(done);
    free(lens);
    free(argv);
    free(scores);
}

/* One HINCRBY per counter that moved. */
static void flush_usage(bill_t *b)
{
    static const char *const names[] = {"invocations", "billed_ms", "mb_ms", "cost_pusd"};
    for (size_t i = 0; i < b->deltas.cap; i++) {
        bill_usage_delta_t *d = b->deltas.values ? b->deltas.values[i] : NULL;
        if (b->deltas.keys[i] == NULL || d == NULL)
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
            send_argv(b, REPLY_OTHER, 4, argv, lens);
            free(field);
        }
    }
    bill__map_dispose(&b->deltas, free_delta);
    bill__map_init(&b->deltas);
}

void bill_flush(bill_t *b)
{
    if (b->npending == 0 && b->deltas.len == 0)
        return;
    if (!b->connected || b->ac == NULL)
        return; /* on_connect flushes */
    if (b->inflight > BILL_MAX_INFLIGHT) {
        flush_later(b, BILL_FLUSH_MS); /* Redis is slow: let the batch grow (bounded) */
        return;
    }
    flush_records(b);
    flush_indexes(b);
    flush_usage(b);
    for (size_t i = 0; i < b->npending; i++)
        free_pending(&b->pending[i]);
    b->npending = 0;
    b->pending_bytes = 0;
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
    bill__map_init(&b->deltas);
    bill__map_init(&b->series);
    uv_timer_init(loop, &b->flush_timer);
    uv_timer_init(loop, &b->reconnect_timer);
    uv_timer_init(loop, &b->sub_timer);
    b->handles_open = 3;
    writer_connect(b);
    return b;
}

static void on_handle_closed(uv_handle_t *h)
{
    bill_t *b = h->data;
    if (--b->handles_open > 0)
        return;
    free(b);
}

void bill_free(bill_t *b)
{
    if (b == NULL)
        return;
    bill_flush(b);
    b->closing = true;
    if (b->ac && b->connected) {
        /* Sends what is buffered and waits for the replies before closing;
         * the recorder stays allocated until then (on_disconnect). */
        b->handles_open++;
        redisAsyncDisconnect(b->ac);
    } else if (b->ac) {
        redisAsyncFree(b->ac);
    }
    b->ac = NULL;
    bill__follow_dispose(b);
    if (b->reader)
        redisFree(b->reader);
    for (size_t i = 0; i < b->npending; i++)
        free_pending(&b->pending[i]);
    free(b->pending);
    bill__map_dispose(&b->deltas, free_delta);
    bill__metrics_dispose(b);
    free(b->redis_url);
    free(b->node_id);
    uv_handle_t *handles[] = {(uv_handle_t *)&b->flush_timer, (uv_handle_t *)&b->reconnect_timer,
                              (uv_handle_t *)&b->sub_timer};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        handles[i]->data = b;
        uv_close(handles[i], on_handle_closed);
    }
}
