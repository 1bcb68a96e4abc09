/* billing: what each invocation costs and what operators see of it.
 *
 * Pricing is pure integer arithmetic: money in picodollars (1e-12 $), memory
 * times billed time in MB-ms. Each activation record is written to Redis
 * asynchronously (batched, never on the response path), usage counters are
 * aggregated per app, day, function and version, log lines fan out over
 * Redis pub/sub, and per-node counters feed GET /metrics. */
#ifndef TINE_BILLING_H
#define TINE_BILLING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activation.h"
#include "tine_common.h"

struct uv_loop_s;

/* ------------------------------------------------------------ pricing */

#define BILL_UNIT_MS 100u /* billing granularity */
#define BILL_DEFAULT_PRICE_GB_S "0.0000166667"
#define BILL_DEFAULT_PRICE_REQUEST "0.0000002"

typedef struct {
    uint64_t gb_s_pusd;    /* picodollars per GB-second */
    uint64_t request_pusd; /* picodollars per request */
} bill_prices_t;

/* Parses a price in dollars written as a plain decimal ("0.0000166667",
 * "2", "0.5"): at most 12 digits after the point (picodollars) and at most
 * 1000. Exact, no floating point. Returns 0, or TINE_EINVAL with a message
 * naming what was wrong. */
int bill_parse_price(const char *s, uint64_t *pusd, char *err, size_t errlen);

/* The same for an amount of at most `max_usd` dollars (`what` names it in
 * the message: "price", "spend"). */
int bill_parse_usd(const char *s, uint64_t max_usd, const char *what, uint64_t *pusd, char *err, size_t errlen);

/* Billed milliseconds of an invocation that ran duration_ns: rounded up to
 * the next 100 ms, at least 100 ms, and never more than the timeout rounded
 * up (an invocation killed at its timeout bills up to the timeout; timeout_ms
 * 0 means no cap). */
uint64_t bill_billed_ms(uint64_t duration_ns, uint32_t timeout_ms);

/* Memory times billed time in MB-ms: GB-s = mb_ms / 1024000, exactly. */
uint64_t bill_mb_ms(uint32_t memory_mb, uint64_t billed_ms);

/* Cost of one invocation in picodollars: mb_ms / 1024000 * gb_s price
 * (rounded half up to a whole picodollar) + the request price. Saturates at
 * UINT64_MAX instead of overflowing. */
uint64_t bill_cost_pusd(const bill_prices_t *p, uint64_t mb_ms);

/* What a finished call costs in picodollars: bill_cost_pusd of its billed
 * time and memory; 0 for a call that never reached a sandbox. The one rule
 * billing's usage and tenancy's spend quotas both count by. */
uint64_t bill_activation_cost(const bill_prices_t *p, const inv_activation_t *a);

/* Formats picodollars as a decimal number of dollars with 12 digits after
 * the point ("0.000000408334"). */
void bill_format_pusd(uint64_t pusd, char out[32]);

/* Formats mb_ms as exact GB-seconds ("0.0125", "1", "0.0000009765625"). */
void bill_format_gb_s(uint64_t mb_ms, char out[48]);

/* A UTC date "YYYY-MM-DD" of a Unix time in milliseconds. */
void bill_day(uint64_t unix_ms, char out[11]);

/* ------------------------------------------------------------ the recorder */

typedef struct bill bill_t;

typedef struct {
    const char *redis_url;
    bill_prices_t prices;
    uint32_t retention_count; /* activation records kept per app (default 10000) */
    uint32_t retention_s;     /* and for at most this long (default 7 days) */
    const char *node_id;      /* written into each record */
    uint32_t max_pending;     /* records held while Redis is away or slow, then dropped and counted (0: 20000) */
    const char *spill_path;   /* a file for the records and usage still unwritten when the recorder is freed
                                 (Redis away), read back by the next bill_new (NULL: none) */
} bill_config_t;

/* Creates the recorder on `loop`: it connects to Redis in the background and
 * reconnects when the connection drops. Strings are copied. */
bill_t *bill_new(struct uv_loop_s *loop, const bill_config_t *cfg);

/* Writes what is still batched, closes the connections and frees the
 * recorder once its handles are closed (what was sent gets its replies
 * first). What cannot be sent (Redis away) goes to the spill file, which
 * the next bill_new reads back and writes to Redis once it is up: a clean
 * stop loses no record and no usage. Accepts NULL. */
void bill_free(bill_t *b);

/* The activation observer (inv_config_t.on_activation, data = the bill_t):
 * prices the invocation, counts it for /metrics and queues its record, usage
 * and log lines for the next batch. Never blocks; when the batch is full
 * (Redis down or slow) the record is dropped and counted. Invocations that
 * never reached a sandbox (`dispatched` false) are recorded with their
 * status but bill nothing. */
void bill_on_activation(void *bill, const inv_activation_t *a);

/* Writes the batch now (tests and shutdown; normally a timer does it). */
void bill_flush(bill_t *b);

/* ------------------------------------------------------------ metrics */

/* Appends the per-node metric families in the Prometheus text format:
 * invocations, durations, cold starts, billed time, dropped records. */
void bill_metrics_render(bill_t *b, tine_buf_t *out);

/* Appends `s` escaped as a Prometheus label value (\\, \" and \n). */
void bill_prom_escape(tine_buf_t *out, const char *s);

/* ------------------------------------------------------------ reports (synchronous reads) */

typedef enum { BILL_BY_FUNCTION, BILL_BY_VERSION, BILL_BY_DAY } bill_group_t;

/* Usage of `app` from day `from` to day `to` (inclusive, "YYYY-MM-DD", at
 * most 366 days) grouped by function, by function and version, or by day:
 * {"app","from","to","by","rows":[{"function"?,"version"?,"day"?,
 * "invocations","billed_ms","mb_ms","gb_s","cost","cost_pusd"}],"total":{...}}.
 * Returns 0, TINE_EINVAL (bad dates, message in err) or TINE_EREDIS. */
int bill_usage(bill_t *b, const char *app, const char *from, const char *to, bill_group_t by, json_t **out,
               char *err, size_t errlen);

/* Which activation records a listing wants; zeroed: all of them. */
typedef struct {
    const char *fn;           /* of this function (NULL: any) */
    uint64_t version;         /* of this version (0: any) */
    int status_class;         /* 2..5: a status of 200..299 .. 500..599 (0: any) */
    int cold;                 /* 1: cold starts only, 0: warm only, -1: either */
    uint64_t min_duration_us; /* at least this long */
    uint64_t since_ms;        /* started at or after this Unix time in ms (0: any) */
    uint64_t until_ms;        /* started before this (0: any) */
    const char *after;        /* a cursor: only records older than the one with this id (the "next"
                                 of the page before), NULL: from the newest */
} bill_filter_t;

/* The newest activation records of `app` that pass filter f, newest first,
 * at most `limit`, without their log lines: {"app","activations":[record...]}
 * and "next" (the cursor of the following page) when the page is full.
 * Returns 0 or TINE_EREDIS. */
int bill_activations(bill_t *b, const char *app, const bill_filter_t *f, size_t limit, json_t **out, char *err,
                     size_t errlen);

/* The activations of trace `trace` (32 hex digits) in every app's records,
 * oldest first: [record...] without logs, in *out (an empty array when there
 * are none). Returns 0 or TINE_EREDIS. */
int bill_trace(bill_t *b, const char *trace, json_t **out, char *err, size_t errlen);

/* One activation record by invocation id. Returns 0, TINE_ENOTFOUND (also
 * when it expired) or TINE_EREDIS. */
int bill_activation(bill_t *b, const char *id, json_t **out, char *err, size_t errlen);

/* Deletes the activation records of an app that is deleted (their count in
 * *activations); its usage per day is kept (it was billed). Synchronous.
 * Returns 0 or TINE_EREDIS. */
int bill_delete_app(bill_t *b, const char *app, size_t *activations, char *err, size_t errlen);

/* Which log lines a reader wants; zeroed: all. */
typedef struct {
    uint64_t since_ms; /* logged at or after this Unix time in ms (0: any) */
    const char *level; /* "info" or "error" (NULL: either) */
    const char *text;  /* the message holds this text, case-sensitive (NULL: any) */
} bill_line_filter_t;

/* Whether the log line (one NDJSON object as bill_logs_recent writes it,
 * len bytes, with or without its "\n") passes f (NULL: every line does). */
bool bill_line_passes(const bill_line_filter_t *f, const char *line, size_t len);

/* The log lines of the newest activations of `app` (of `fn` when not NULL)
 * that pass f (NULL: all), the newest `limit` lines, oldest first, appended
 * to `out` as NDJSON: one {"t","app","function","version","id","level","msg"}
 * object per line. Returns 0 or TINE_EREDIS. */
int bill_logs_recent(bill_t *b, const char *app, const char *fn, const bill_line_filter_t *f, size_t limit,
                     tine_buf_t *out, char *err, size_t errlen);

/* ------------------------------------------------------------ log fan-out */

typedef struct bill_follower bill_follower_t;

typedef enum {
    BILL_FOLLOW_LIVE, /* subscribed: lines published from now on arrive */
    BILL_FOLLOW_LINE, /* one line: a JSON object and "\n" (as bill_logs_recent) */
    BILL_FOLLOW_END,  /* the recorder is going away: the follower is freed */
} bill_follow_event_t;

typedef void (*bill_line_cb)(void *data, bill_follow_event_t ev, const char *line, size_t len);

/* Follows the log lines of `app` (of `fn` when not NULL) published by any
 * node. The callback runs on the loop until bill_unfollow, or until it got
 * BILL_FOLLOW_END (then bill_unfollow must not be called). Its LIVE call may
 * come before bill_follow returns, when the node is subscribed already. */
bill_follower_t *bill_follow(bill_t *b, const char *app, const char *fn, bill_line_cb cb, void *data);
void bill_unfollow(bill_follower_t *f);

/* Ends every follower (each gets BILL_FOLLOW_END) and stops following
 * Redis: the first step of a node's stop, so followed streams finish. */
void bill_end_follows(bill_t *b);

#endif
