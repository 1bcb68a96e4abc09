/* The log lines of invocations: what functions log (LOG frames), and the
 * errors that end them, kept in the activation record (what `tine logs`
 * and the logs API show) and written to tined's log as JSON lines with
 * app, version, function and invocation fields.
 *
 * Bounds, so that no function can flood the node's log or Redis:
 *   - a line is at most INV_LOG_LINE_MAX bytes (longer ones are cut);
 *   - an invocation keeps at most INV_LOG_CAP bytes of lines (the SDK stops
 *     sending at twice that and says how many lines it held back);
 *   - an app gets a token bucket of cfg.log_rate bytes per second (each line
 *     costs its bytes plus INV_LOG_LINE_COST), its burst one second's worth
 *     but at least INV_LOG_CAP; a line over it is dropped.
 * A dropped line reaches neither the record nor tined's log. The activation
 * gets one note line per reason saying how many of its lines were dropped,
 * and tined's log one warning per app at most every INV_LOG_NOTE_MS with
 * the count dropped over the rate meanwhile.
 *
 * Text is made printable first (tine_buf_append_printable): a line is one
 * record, its newlines the two characters \n, control characters and
 * invalid UTF-8 escaped, so nothing a function writes can forge a line of
 * tined's log or reach an operator's terminal as an escape sequence.
 *
 * Errors (a raised error with its trace, a timeout, a crash, a load
 * failure) are always kept in the record, at level "error", whatever the
 * bounds above; in tined's log they share the app's bucket. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INV_LOG_LINE_MAX INV_TEXT_MAX   /* bytes of one line, as the SDK cuts it */
#define INV_LOG_LINE_COST 64u           /* what a line costs in the app's bucket beyond its bytes */
#define INV_LOG_NOTE_MS 1000u           /* tined's log notes an app's dropped lines this often at most */
#define INV_LOG_TRACE_MAX (16u * 1024u) /* bytes of an error's trace kept */
#define LOG_BUCKETS 256

/* The log budget of one app on this node. */
typedef struct app_log {
    struct app_log *next; /* hash chain */
    char *app;
    double tokens; /* bytes it may log now */
    uint64_t refilled_ns;
    uint64_t dropped_lines; /* over the rate since the last note */
    uint64_t dropped_bytes;
} app_log_t;

struct inv_logs {
    uv_timer_t timer; /* armed while an app has drops not yet noted */
    double rate;      /* bytes per second per app */
    double burst;
    app_log_t *apps[LOG_BUCKETS];
    bool timer_armed;
};

inv_logs_t *inv__logs_new(uv_loop_t *loop, uint64_t rate)
{
    inv_logs_t *l = xcalloc(1, sizeof(*l));
    l->rate = (double)(rate ? rate : INV_DEFAULT_LOG_RATE);
    l->burst = l->rate > (double)INV_LOG_CAP * 2 ? l->rate : (double)INV_LOG_CAP * 2;
    uv_timer_init(loop, &l->timer);
    uv_unref((uv_handle_t *)&l->timer);
    return l;
}

/* The bucket of the app name s (djb2 modulo LOG_BUCKETS). */
static size_t hash_name(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % LOG_BUCKETS;
}

/* The budget of `app`, made full on first use. */
static app_log_t *app_get(inv_logs_t *l, const char *app)
{
    app_log_t **head = &l->apps[hash_name(app)];
    for (app_log_t *a = *head; a; a = a->next)
        if (strcmp(a->app, app) == 0)
            return a;
    app_log_t *a = xcalloc(1, sizeof(*a));
    a->app = xstrdup(app);
    a->tokens = l->burst;
    a->refilled_ns = tine_now_ns();
    a->next = *head;
    *head = a;
    return a;
}

void inv__fmt_bytes(char out[32], uint64_t b)
{
    if (b >= 1024u * 1024u && b % (1024u * 1024u) == 0)
        snprintf(out, 32, "%" PRIu64 " MiB", b / (1024u * 1024u));
    else if (b >= 1024u && b % 1024u == 0)
        snprintf(out, 32, "%" PRIu64 " KiB", b / 1024u);
    else
        snprintf(out, 32, "%" PRIu64 " bytes", b);
}

/* Writes the note of what `a` dropped since the last one. */
static void app_note(inv_logs_t *l, app_log_t *a)
{
    if (a->dropped_lines == 0)
        return;
    char rate[32];
    inv__fmt_bytes(rate, (uint64_t)l->rate);
    const char *kv[] = {"app", a->app, NULL};
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "app %s: %" PRIu64 " log lines (%" PRIu64 " bytes) dropped: over its log rate of %s per second "
                     "(tined --log-rate)",
                     a->app, a->dropped_lines, a->dropped_bytes, rate);
    tine_log_text(TINE_LOG_WARN, kv, msg, n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    a->dropped_lines = a->dropped_bytes = 0;
}

/* Notes every app's drops; the timer is armed again by the next drop. */
static void on_note_timer(uv_timer_t *t)
{
    inv_logs_t *l = container_of(t, inv_logs_t, timer);
    l->timer_armed = false;
    for (size_t i = 0; i < LOG_BUCKETS; i++)
        for (app_log_t *a = l->apps[i]; a; a = a->next)
            app_note(l, a);
}

/* Takes `cost` bytes from the app's bucket; false (the line is dropped and
 * counted) when it holds less. */
static bool app_take(inv_logs_t *l, app_log_t *a, size_t cost)
{
    uint64_t now = tine_now_ns();
    a->tokens += (double)(now - a->refilled_ns) / 1e9 * l->rate;
    if (a->tokens > l->burst)
        a->tokens = l->burst;
    a->refilled_ns = now;
    if (a->tokens >= (double)cost) {
        a->tokens -= (double)cost;
        return true;
    }
    a->dropped_lines++;
    a->dropped_bytes += cost - INV_LOG_LINE_COST;
    if (!l->timer_armed) {
        l->timer_armed = true;
        uv_timer_start(&l->timer, on_note_timer, INV_LOG_NOTE_MS, 0);
    }
    return false;
}

/* The drop-warning timer closed: frees every app's log bucket and the logs
 * state. */
static void on_logs_closed(uv_handle_t *h)
{
    inv_logs_t *l = container_of((uv_timer_t *)h, inv_logs_t, timer);
    for (size_t i = 0; i < LOG_BUCKETS; i++) {
        for (app_log_t *a = l->apps[i], *next; a; a = next) {
            next = a->next;
            free(a->app);
            free(a);
        }
    }
    free(l);
}

void inv__logs_free(inv_logs_t *l)
{
    if (l == NULL)
        return;
    on_note_timer(&l->timer); /* what was dropped is said before the end */
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_logs_closed);
}

/* ------------------------------------------------------------------ lines */

/* The fields of an invocation's line in tined's log (version and the
 * invocation id point into `num` and the call). */
static void line_fields(const char *kv[9], char num[24], const inv_pool_t *p, const inv_call_t *c)
{
    tine_fmt_u64(num, p->version->version, 1);
    kv[0] = "app";
    kv[1] = p->version->app;
    kv[2] = "version";
    kv[3] = num;
    kv[4] = "function";
    kv[5] = p->fn->name;
    kv[6] = "invocation";
    kv[7] = c ? c->id_hex : "";
    kv[8] = NULL;
}

/* Appends `text` (printable already) to the call's activation logs. */
static void record_line(inv_call_t *c, const char *level, const char *text, size_t len)
{
    if (c->logs == NULL)
        c->logs = json_array();
    json_array_append_new(c->logs, json_pack("{s:I, s:s, s:s%}", "t", (json_int_t)tine_now_unix_ms(), "level", level,
                                             "msg", text ? text : "", len));
}

void inv__log_line_text(const inv_pool_t *p, const char *s, size_t len, tine_buf_t *out)
{
    /* A secret's value never reaches a log: replaced before anything else. */
    tine_buf_t raw;
    tine_buf_init(&raw);
    inv__redact(p->inv, p->version->app, s, len, &raw);
    inv__printable_cut(out, raw.data ? raw.data : "", raw.len, INV_LOG_LINE_MAX);
    tine_buf_dispose(&raw);
}

void inv__printable_cut(tine_buf_t *b, const char *s, size_t len, size_t max)
{
    bool cut = len > max;
    if (cut) {
        len = max - 3;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    tine_buf_append_printable(b, s, len);
    if (cut)
        tine_buf_append(b, "\xE2\x80\xA6", 3);
}

void inv__log_frame(inv_pool_t *p, inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload)
{
    json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
    const char *level = json_string_value(json_object_get(meta, "level"));
    bool error = level && strcmp(level, "error") == 0;
    json_int_t held_back = json_integer_value(json_object_get(meta, "dropped"));
    json_decref(meta);
    if (held_back > 0) { /* lines the SDK did not send (over twice INV_LOG_CAP) */
        if (c) {
            c->log_dropped_cap += (uint64_t)held_back;
            c->logs_truncated = true;
        }
        return;
    }
    tine_buf_t b;
    tine_buf_init(&b);
    inv__log_line_text(p, payload + h->meta_len, h->len - h->meta_len, &b);
    if (c && c->logs_bytes + b.len > INV_LOG_CAP) {
        c->log_dropped_cap++;
        c->logs_truncated = true;
    } else if (p->inv->logs &&
               !app_take(p->inv->logs, app_get(p->inv->logs, p->version->app), b.len + INV_LOG_LINE_COST)) {
        if (c) {
            c->log_dropped_rate++;
            c->logs_truncated = true;
        }
    } else {
        const char *kv[9];
        char num[24];
        line_fields(kv, num, p, c);
        tine_log_text(error ? TINE_LOG_ERROR : TINE_LOG_INFO, kv, b.data ? b.data : "", b.len);
        if (c) {
            record_line(c, error ? "error" : "info", b.data ? b.data : "", b.len);
            c->logs_function++;
            c->logs_bytes += b.len;
        }
    }
    tine_buf_dispose(&b);
}

/* Writes a record line of the node about call c to tined's log when the
 * app's bucket allows (else it is counted with the app's drops). */
static void node_line(inv_call_t *c, tine_log_level_t level, const char *text, size_t len, const char *trace,
                      size_t trace_len)
{
    inv_pool_t *p = c->pool;
    inv_logs_t *l = p->inv->logs;
    if (l && !app_take(l, app_get(l, p->version->app), len + trace_len + INV_LOG_LINE_COST))
        return;
    const char *kv[11];
    char num[24];
    line_fields(kv, num, p, c);
    if (trace != NULL) {
        kv[8] = "trace";
        kv[9] = trace;
        kv[10] = NULL;
    }
    tine_log_text(level, kv, text, len);
}

void inv__log_error(inv_call_t *c, const char *msg, const char *trace)
{
    c->error_logged = true;
    tine_buf_t b, t, raw, rtrace;
    tine_buf_init(&b);
    tine_buf_init(&t);
    tine_buf_init(&raw);
    tine_buf_init(&rtrace);
    /* An error may quote a secret too. */
    const char *app = c->pool->version->app;
    inv__redact(c->pool->inv, app, msg ? msg : "unknown error", msg ? strlen(msg) : 13, &raw);
    if (trace) {
        inv__redact(c->pool->inv, app, trace, strlen(trace), &rtrace);
        tine_buf_append(&rtrace, "", 1);
        trace = rtrace.data;
    }
    inv__printable_cut(&b, raw.data ? raw.data : "", raw.len, INV_LOG_LINE_MAX);
    record_line(c, "error", b.data, b.len);
    /* The trace: one record per line (as Lua writes it), one field in tined's log. */
    size_t tl = trace ? strlen(trace) : 0;
    if (tl > INV_LOG_TRACE_MAX)
        tl = INV_LOG_TRACE_MAX;
    for (size_t off = 0; off < tl;) {
        size_t n = strcspn(trace + off, "\n");
        if (off + n > tl)
            n = tl - off;
        tine_buf_t one;
        tine_buf_init(&one);
        tine_buf_append_printable(&one, trace + off, n);
        record_line(c, "error", one.data ? one.data : "", one.len);
        if (t.len)
            tine_buf_append(&t, "\n", 1);
        tine_buf_append(&t, one.data ? one.data : "", one.len);
        tine_buf_dispose(&one);
        off += n + 1;
    }
    node_line(c, TINE_LOG_ERROR, b.data, b.len, t.len ? t.data : NULL, t.len);
    tine_buf_dispose(&b);
    tine_buf_dispose(&t);
    tine_buf_dispose(&raw);
    tine_buf_dispose(&rtrace);
}

void inv__log_call_end(inv_call_t *c)
{
    char msg[256], limit[32];
    int n;
    if (c->log_dropped_cap) {
        inv__fmt_bytes(limit, INV_LOG_CAP);
        n = snprintf(msg, sizeof(msg),
                     "tine: %" PRIu64 " log lines of this invocation dropped: over the limit of %s of log lines "
                     "per invocation",
                     c->log_dropped_cap, limit);
        record_line(c, "info", msg, (size_t)n);
        node_line(c, TINE_LOG_WARN, msg, (size_t)n, NULL, 0);
    }
    if (c->log_dropped_rate) {
        inv__fmt_bytes(limit, c->pool->inv->logs ? (uint64_t)c->pool->inv->logs->rate : INV_DEFAULT_LOG_RATE);
        n = snprintf(msg, sizeof(msg),
                     "tine: %" PRIu64 " log lines of this invocation dropped: over the app's log rate of %s per "
                     "second (tined --log-rate)",
                     c->log_dropped_rate, limit);
        record_line(c, "info", msg, (size_t)n);
    }
}
