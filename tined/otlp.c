/* OTLP/HTTP JSON export of activations as spans (otlp.h). The loop formats
 * each span into the pending batch under a mutex; the exporter's thread
 * takes the batch every second (or sooner once OTLP_BATCH spans wait) and
 * POSTs it with libcurl. */
#include "otlp.h"
#include "tine_common.h"
#include "trace.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OTLP_BATCH 512        /* spans that wake the thread early */
#define OTLP_MAX_PENDING 20000 /* spans waiting at most; past it they are dropped */
#define OTLP_TIMEOUT_MS 5000L

struct otlp {
    char *endpoint;
    char *node;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    tine_buf_t pending; /* spans, each followed by ",", under mu */
    uint64_t npending;
    bool stopping;
    uint64_t sent;          /* spans the collector took, under mu */
    uint64_t dropped_full;  /* spans dropped for a full queue, under mu */
    uint64_t dropped_post;  /* spans of batches the collector did not take, under mu */
    uint64_t failures;      /* batches not taken (refused or unreachable), under mu */
    uint64_t failed_at_ms;  /* wall clock of the last one (0: none), under mu */
};

/* Appends the text s. */
static void add(tine_buf_t *b, const char *s)
{
    tine_buf_append(b, s, strlen(s));
}

/* Appends an attribute with a string value. */
static void kv_str(tine_buf_t *b, const char *key, const char *value)
{
    add(b, "{\"key\":\"");
    add(b, key);
    add(b, "\",\"value\":{\"stringValue\":");
    tine_json_quote(b, value, strlen(value));
    add(b, "}}");
}

/* Appends an attribute with an integer value (OTLP JSON: a decimal string). */
static void kv_int(tine_buf_t *b, const char *key, uint64_t v)
{
    char num[25];
    tine_fmt_u64(num, v, 1);
    add(b, "{\"key\":\"");
    add(b, key);
    add(b, "\",\"value\":{\"intValue\":\"");
    add(b, num);
    add(b, "\"}}");
}

/* The span of a, as OTLP JSON, appended to b with a trailing ",". */
static void put_span(tine_buf_t *b, const inv_activation_t *a)
{
    const char *trace = a->trace_id && a->trace_id[0] ? a->trace_id : a->invocation_id;
    char span[TINE_SPAN_ID_LEN + 1], parent[TINE_SPAN_ID_LEN + 1] = "", num[25];
    tine_trace_span_of(a->invocation_id, span);
    size_t pl = a->parent_id ? strlen(a->parent_id) : 0;
    if (pl == TINE_SPAN_ID_LEN)
        memcpy(parent, a->parent_id, pl + 1); /* an incoming traceparent's span */
    else if (pl > 0)
        tine_trace_span_of(a->parent_id, parent); /* a tine caller's invocation id */
    bool http = a->trigger && strcmp(a->trigger, "http") == 0;
    bool event = a->trigger && strcmp(a->trigger, "invoke") != 0 && !http;
    add(b, "{\"traceId\":\"");
    add(b, trace);
    add(b, "\",\"spanId\":\"");
    add(b, span);
    add(b, "\",");
    if (parent[0]) {
        add(b, "\"parentSpanId\":\"");
        add(b, parent);
        add(b, "\",");
    }
    char *name = xasprintf("%s/%s", a->app, a->function);
    add(b, "\"name\":");
    tine_json_quote(b, name, strlen(name));
    free(name);
    /* SPAN_KIND_SERVER for a request, CONSUMER for an event, INTERNAL for tine.invoke */
    add(b, http ? ",\"kind\":2" : event ? ",\"kind\":5" : ",\"kind\":1");
    uint64_t start = a->start_unix_ms * 1000000u, end = start + a->queued_ns + a->duration_ns;
    add(b, ",\"startTimeUnixNano\":\"");
    tine_fmt_u64(num, start, 1);
    add(b, num);
    add(b, "\",\"endTimeUnixNano\":\"");
    tine_fmt_u64(num, end, 1);
    add(b, num);
    add(b, "\",\"attributes\":[");
    kv_str(b, "tine.app", a->app);
    add(b, ",");
    kv_str(b, "tine.function", a->function);
    add(b, ",");
    kv_int(b, "tine.version", a->version);
    add(b, ",");
    kv_str(b, "tine.invocation_id", a->invocation_id);
    add(b, ",");
    kv_str(b, "tine.trigger", a->trigger ? a->trigger : "http");
    add(b, ",{\"key\":\"tine.cold\",\"value\":{\"boolValue\":");
    add(b, a->cold ? "true" : "false");
    add(b, "}},");
    kv_int(b, "http.response.status_code", a->status < 0 ? 0 : (uint64_t)a->status);
    add(b, "]");
    if (a->code != 0 || a->status >= 500) {
        add(b, ",\"status\":{\"code\":2,\"message\":"); /* STATUS_CODE_ERROR */
        const char *why = a->error ? a->error : "error";
        tine_json_quote(b, why, strlen(why));
        add(b, "}");
    }
    add(b, "},");
}

void otlp_add(otlp_t *x, const inv_activation_t *a)
{
    pthread_mutex_lock(&x->mu);
    if (x->npending >= OTLP_MAX_PENDING) {
        x->dropped_full++;
    } else {
        put_span(&x->pending, a);
        if (++x->npending == OTLP_BATCH)
            pthread_cond_signal(&x->wake);
    }
    pthread_mutex_unlock(&x->mu);
}

/* Discards a response body. */
static size_t discard(char *p, size_t size, size_t n, void *data)
{
    (void)p;
    (void)data;
    return size * n;
}

/* POSTs one batch (spans: each followed by ","); returns whether the
 * collector took it (a 2xx). `nfailed` is the number of batches not taken
 * before this one (for the log's rate). */
static bool post_batch(otlp_t *x, CURL *e, const tine_buf_t *spans, uint64_t nfailed)
{
    tine_buf_t body;
    tine_buf_init(&body);
    add(&body, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    kv_str(&body, "service.name", "tine");
    add(&body, ",");
    kv_str(&body, "service.instance.id", x->node);
    add(&body, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tine\"},\"spans\":[");
    tine_buf_append(&body, spans->data, spans->len - 1); /* without the last "," */
    add(&body, "]}]}]}");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, x->endpoint);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, OTLP_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    tine_buf_dispose(&body);
    bool ok = rc == CURLE_OK && status >= 200 && status < 300;
    if (!ok && nfailed % 100 == 0)
        tine_log(TINE_LOG_WARN, "otlp: the collector at %s did not take a batch of spans: %s (status %ld)",
                 x->endpoint, rc != CURLE_OK ? curl_easy_strerror(rc) : "refused", status);
    return ok;
}

/* The exporter's thread: a batch every second, or sooner when one is full,
 * until stopping (then the rest once). */
static void *run(void *data)
{
    otlp_t *x = data;
    CURL *e = curl_easy_init();
    pthread_mutex_lock(&x->mu);
    for (;;) {
        if (!x->stopping && x->npending < OTLP_BATCH) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&x->wake, &x->mu, &until);
        }
        bool last = x->stopping;
        tine_buf_t taken = x->pending;
        uint64_t n = x->npending;
        uint64_t nfailed = x->failures;
        tine_buf_init(&x->pending);
        x->npending = 0;
        pthread_mutex_unlock(&x->mu);
        bool ok = n == 0 || (e != NULL && post_batch(x, e, &taken, nfailed));
        tine_buf_dispose(&taken);
        pthread_mutex_lock(&x->mu);
        if (ok) {
            x->sent += n;
        } else {
            x->dropped_post += n;
            x->failures++;
            x->failed_at_ms = tine_now_unix_ms();
        }
        if (last)
            break;
    }
    pthread_mutex_unlock(&x->mu);
    if (e)
        curl_easy_cleanup(e);
    return NULL;
}

otlp_t *otlp_new(const char *endpoint, const char *node, char *err, size_t errlen)
{
    otlp_t *x = xcalloc(1, sizeof(*x));
    x->endpoint = xstrdup(endpoint);
    x->node = xstrdup(node ? node : "");
    tine_buf_init(&x->pending);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->wake, NULL);
    int rc = pthread_create(&x->thread, NULL, run, x);
    if (rc != 0) {
        snprintf(err, errlen, "otlp: cannot start its thread: %s", strerror(rc));
        pthread_mutex_destroy(&x->mu);
        pthread_cond_destroy(&x->wake);
        free(x->endpoint);
        free(x->node);
        free(x);
        return NULL;
    }
    return x;
}

void otlp_free(otlp_t *x)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->mu);
    x->stopping = true;
    pthread_cond_signal(&x->wake);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    if (x->dropped_full + x->dropped_post)
        tine_log(TINE_LOG_WARN, "otlp: %" PRIu64 " spans were not exported", x->dropped_full + x->dropped_post);
    tine_buf_dispose(&x->pending);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->wake);
    free(x->endpoint);
    free(x->node);
    free(x);
}

void otlp_metrics_render(void *data, tine_buf_t *out)
{
    otlp_t *x = data;
    pthread_mutex_lock(&x->mu);
    uint64_t sent = x->sent, full = x->dropped_full, post = x->dropped_post, failures = x->failures,
             queued = x->npending, failed_at = x->failed_at_ms;
    pthread_mutex_unlock(&x->mu);
    tine_buf_appendf(out,
                     "# HELP tine_otlp_spans_exported_total Spans the OTLP collector took (--otlp-endpoint).\n"
                     "# TYPE tine_otlp_spans_exported_total counter\n"
                     "tine_otlp_spans_exported_total %" PRIu64 "\n"
                     "# HELP tine_otlp_spans_dropped_total Spans not exported: the queue was full, or their "
                     "batch was not taken.\n"
                     "# TYPE tine_otlp_spans_dropped_total counter\n"
                     "tine_otlp_spans_dropped_total{reason=\"queue_full\"} %" PRIu64 "\n"
                     "tine_otlp_spans_dropped_total{reason=\"post_failed\"} %" PRIu64 "\n"
                     "# HELP tine_otlp_posts_failed_total Batches the collector refused or could not be sent.\n"
                     "# TYPE tine_otlp_posts_failed_total counter\n"
                     "tine_otlp_posts_failed_total %" PRIu64 "\n"
                     "# HELP tine_otlp_queue_length Spans waiting for the next batch.\n"
                     "# TYPE tine_otlp_queue_length gauge\n"
                     "tine_otlp_queue_length %" PRIu64 "\n"
                     "# HELP tine_otlp_last_error_timestamp_seconds When a batch last failed, unix seconds "
                     "(0: never).\n"
                     "# TYPE tine_otlp_last_error_timestamp_seconds gauge\n"
                     "tine_otlp_last_error_timestamp_seconds %.3f\n",
                     sent, full, post, failures, queued, (double)failed_at / 1000.0);
}

uint64_t otlp_sent(const otlp_t *x)
{
    pthread_mutex_lock((pthread_mutex_t *)&x->mu);
    uint64_t v = x->sent;
    pthread_mutex_unlock((pthread_mutex_t *)&x->mu);
    return v;
}

uint64_t otlp_dropped(const otlp_t *x)
{
    pthread_mutex_lock((pthread_mutex_t *)&x->mu);
    uint64_t v = x->dropped_full + x->dropped_post;
    pthread_mutex_unlock((pthread_mutex_t *)&x->mu);
    return v;
}
