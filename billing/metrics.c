/* Per-node counters of finished invocations, per (app, function), rendered
 * in the Prometheus text format for GET /metrics. Counting is a hash lookup
 * and a few additions: it runs for every invocation. */
#include "billing_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram bucket bounds in nanoseconds, and as printed. */
static const uint64_t bounds_ns[] = {1000000ull,   2500000ull,    5000000ull,    10000000ull,   25000000ull,
                                     50000000ull,  100000000ull,  250000000ull,  500000000ull,  1000000000ull,
                                     2500000000ull, 5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull};
static const char *const bounds_text[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                          "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60"};
#define NBUCKETS (sizeof(bounds_ns) / sizeof(bounds_ns[0]))

typedef struct {
    uint64_t buckets[NBUCKETS]; /* not cumulative; the rest is in count */
    uint64_t count;
    uint64_t sum_ns;
} histogram_t;

typedef struct {
    int status;
    uint64_t n;
} status_count_t;

struct bill_series {
    char *app;
    char *function;
    status_count_t *statuses;
    size_t nstatuses;
    histogram_t duration;
    histogram_t cold_start;
    uint64_t billed_ms;
    uint64_t cost_pusd;
};

/* Counts ns in the first bucket whose bound holds it (none above the last:
 * only +Inf), in the count and in the sum. */
static void observe(histogram_t *h, uint64_t ns)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (ns <= bounds_ns[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum_ns += ns;
}

const char *bill__metrics_count(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t cost_pusd)
{
    char key[256];
    size_t al = strlen(a->app), fl = strlen(a->function);
    if (al + fl + 1 > sizeof(key)) /* names are bounded by the registry: cannot happen */
        fl = sizeof(key) - 1 - al;
    memcpy(key, a->app, al);
    key[al] = '\n';
    memcpy(key + al + 1, a->function, fl);
    void **slot = bill__map_slot(&b->series, key, al + 1 + fl);
    bill_series_t *s = *slot;
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->app = xstrdup(a->app);
        s->function = xstrdup(a->function);
        *slot = s;
    }
    size_t i = 0;
    while (i < s->nstatuses && s->statuses[i].status != a->status)
        i++;
    if (i == s->nstatuses) {
        s->statuses = xrealloc(s->statuses, (s->nstatuses + 1) * sizeof(*s->statuses));
        s->statuses[s->nstatuses++] = (status_count_t){a->status, 0};
    }
    s->statuses[i].n++;
    if (a->dispatched)
        observe(&s->duration, a->duration_ns);
    if (a->cold)
        observe(&s->cold_start, a->cold_start_ns);
    s->billed_ms += billed_ms;
    s->cost_pusd += cost_pusd;
    return s->app;
}

static void free_series(void *v)
{
    bill_series_t *s = v;
    free(s->app);
    free(s->function);
    free(s->statuses);
    free(s);
}

void bill__metrics_dispose(bill_t *b)
{
    bill__map_dispose(&b->series, free_series);
}

void bill_prom_escape(tine_buf_t *out, const char *s)
{
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
        if (esc == NULL)
            continue;
        tine_buf_append(out, s + run, i - run);
        tine_buf_append(out, esc, 2);
        run = i + 1;
    }
    tine_buf_append(out, s + run, i - run);
}

/* Appends the labels of s, app="..." and function="..." (escaped), to out. */
static void labels(tine_buf_t *out, const bill_series_t *s)
{
    tine_buf_append(out, "app=\"", 5);
    bill_prom_escape(out, s->app);
    tine_buf_append(out, "\",function=\"", 12);
    bill_prom_escape(out, s->function);
    tine_buf_append(out, "\"", 1);
}

/* Appends the # HELP and # TYPE lines of the metric `name`. */
static void family(tine_buf_t *out, const char *name, const char *type, const char *help)
{
    tine_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "1.234567891": seconds from nanoseconds, exactly. */
static void seconds(tine_buf_t *out, uint64_t ns)
{
    tine_buf_appendf(out, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
}

/* Appends the cumulative _bucket lines, _sum (in seconds) and _count of h for
 * the series s. */
static void render_histogram(tine_buf_t *out, const char *name, const bill_series_t *s, const histogram_t *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cum += h->buckets[i];
        tine_buf_appendf(out, "%s_bucket{", name);
        labels(out, s);
        tine_buf_appendf(out, ",le=\"%s\"} %" PRIu64 "\n", bounds_text[i], cum);
    }
    tine_buf_appendf(out, "%s_bucket{", name);
    labels(out, s);
    tine_buf_appendf(out, ",le=\"+Inf\"} %" PRIu64 "\n%s_sum{", h->count, name);
    labels(out, s);
    tine_buf_append(out, "} ", 2);
    seconds(out, h->sum_ns);
    tine_buf_appendf(out, "\n%s_count{", name);
    labels(out, s);
    tine_buf_appendf(out, "} %" PRIu64 "\n", h->count);
}

/* Calls fn for every series, in the table's order. */
#define FOREACH_SERIES(b, s)                                                                                        \
    for (size_t _i = 0; _i < (b)->series.cap; _i++)                                                                 \
        for (bill_series_t *s = (b)->series.keys[_i] ? (b)->series.values[_i] : NULL; s; s = NULL)

void bill_metrics_render(bill_t *b, tine_buf_t *out)
{
    family(out, "tine_invocations_total", "counter", "Invocations finished on this node, by HTTP status.");
    FOREACH_SERIES(b, s)
    for (size_t i = 0; i < s->nstatuses; i++) {
        tine_buf_append(out, "tine_invocations_total{", 23);
        labels(out, s);
        tine_buf_appendf(out, ",status=\"%d\"} %" PRIu64 "\n", s->statuses[i].status, s->statuses[i].n);
    }
    family(out, "tine_invocation_duration_seconds", "histogram",
           "Wall time from dispatch to the sandbox until its answer.");
    FOREACH_SERIES(b, s)
    render_histogram(out, "tine_invocation_duration_seconds", s, &s->duration);
    family(out, "tine_cold_starts_total", "counter", "Invocations served by a sandbox started for them.");
    FOREACH_SERIES(b, s)
    {
        tine_buf_append(out, "tine_cold_starts_total{", 23);
        labels(out, s);
        tine_buf_appendf(out, "} %" PRIu64 "\n", s->cold_start.count);
    }
    family(out, "tine_cold_start_seconds", "histogram", "Time from sandbox fork to ready, for cold starts.");
    FOREACH_SERIES(b, s)
    render_histogram(out, "tine_cold_start_seconds", s, &s->cold_start);
    family(out, "tine_billed_seconds_total", "counter", "Billed time (100 ms units, rounded up).");
    FOREACH_SERIES(b, s)
    {
        tine_buf_append(out, "tine_billed_seconds_total{", 26);
        labels(out, s);
        tine_buf_append(out, "} ", 2);
        seconds(out, s->billed_ms * 1000000u);
        tine_buf_append(out, "\n", 1);
    }
    family(out, "tine_cost_dollars_total", "counter", "Cost of the invocations at the node's prices.");
    FOREACH_SERIES(b, s)
    {
        char money[32];
        bill_format_pusd(s->cost_pusd, money);
        tine_buf_append(out, "tine_cost_dollars_total{", 24);
        labels(out, s);
        tine_buf_appendf(out, "} %s\n", money);
    }
    family(out, "tine_activations_recorded_total", "counter", "Activation records written to Redis.");
    tine_buf_appendf(out, "tine_activations_recorded_total %" PRIu64 "\n", b->recorded);
    family(out, "tine_activations_dropped_total", "counter",
           "Activation records lost because Redis was unreachable or too slow.");
    tine_buf_appendf(out, "tine_activations_dropped_total %" PRIu64 "\n", b->dropped);
    family(out, "tine_activations_pending", "gauge", "Activation records waiting to be written.");
    tine_buf_appendf(out, "tine_activations_pending %zu\n", b->npending);
    family(out, "tine_usage_increments_lost_total", "counter",
           "Usage counter increments whose write failed (the Redis connection broke first): maybe lost.");
    tine_buf_appendf(out, "tine_usage_increments_lost_total %" PRIu64 "\n", b->usage_lost);
}
