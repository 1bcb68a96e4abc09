/* Private to billing/: the recorder's state shared by its files. */
#ifndef TINE_BILLING_INTERNAL_H
#define TINE_BILLING_INTERNAL_H

#include "billing.h"
#include "tine_redis.h"

#include <uv.h>

/* Keys (redis/keys.h): RDS_KEY_ACTS_PREFIX + app: list of records (JSON
 * arrays), newest first; RDS_KEY_USAGE_PREFIX + app:day: hash
 * "fn|version|counter"; RDS_CHANNEL_LOGS_PREFIX + app: pub/sub of log lines. */

#define BILL_FLUSH_MS 100                      /* batch window */
#define BILL_FLUSH_RECORDS 1024                /* or this many records, whichever comes first */
#define BILL_MAX_PENDING 20000                 /* records waiting for Redis (default of bill_config_t.max_pending) */
#define BILL_MAX_PENDING_BYTES (64u << 20)     /* and their bytes */
#define BILL_MAX_INFLIGHT 200000               /* commands sent but not answered */

/* A string-keyed hash table of pointers (open addressing, never shrinks). */
typedef struct {
    char **keys;
    size_t *key_lens;
    void **values;
    size_t cap; /* power of two */
    size_t len;
} bill_map_t;

void bill__map_init(bill_map_t *m);
/* Frees the keys, and each value with free_value when it is not NULL. */
void bill__map_dispose(bill_map_t *m, void (*free_value)(void *));
/* The slot of key (len bytes); *value is NULL when it was just added. */
void **bill__map_slot(bill_map_t *m, const char *key, size_t len);
void *bill__map_get(const bill_map_t *m, const char *key, size_t len);

/* One activation waiting to be written: its record and log lines are in
 * the batch buffers (offsets, since the buffers grow). */
typedef struct {
    const char *app; /* kept by the metric series; NULL once flushed */
    uint64_t start_ms;
    size_t rec_off, rec_len;
    size_t lines_off, lines_len;
} bill_pending_t;

/* Usage to add for one (app, day, function, version). */
typedef struct {
    char *key;   /* RDS_KEY_USAGE_PREFIX{app}:{day} */
    char *field; /* {fn}|{version}| */
    uint64_t invocations, billed_ms, mb_ms, cost_pusd;
} bill_usage_delta_t;

typedef struct bill_series bill_series_t;

struct bill_follower {
    bill_t *b;
    bill_follower_t *next;
    char *app;
    char *fn;
    bill_line_cb cb;
    void *data;
    bool live; /* told it is subscribed */
};

struct bill {
    uv_loop_t *loop;
    char *redis_url;
    char *node_id;
    bill_prices_t prices;
    uint32_t retention_count;
    uint32_t retention_s;
    bool closing;
    int handles_open;

    /* writer: async connection, batch and its timer */
    rds_async_t *writer;
    uv_timer_t flush_timer;
    bill_pending_t *pending;
    size_t npending, cap_pending, max_pending;
    tine_buf_t batch_records; /* JSON records back to back */
    tine_buf_t batch_lines;   /* NDJSON log lines */
    tine_buf_t resp;           /* a flush's LPUSH in RESP, reused */
    bill_map_t deltas; /* "key\nfield" -> bill_usage_delta_t */
    uint64_t inflight;
    uint64_t recorded, dropped, write_errors;
    uint64_t usage_lost; /* usage increments whose write failed (maybe lost) */
    uint64_t last_drop_log_ns;
    uint64_t day_num;  /* the day day_text shows */
    char *spill_path;     /* bill_config_t.spill_path */
    bill_map_t spilled_apps; /* app -> its name, for records read back from the spill file */
    char day_text[11];

    /* metrics */
    bill_map_t series; /* "app\nfunction" -> bill_series_t */

    /* reports: a synchronous connection, opened on first use */
    rds_sync_t *reader;

    /* log followers: an async subscription, opened on first follow */
    rds_async_t *sub;
    bool sub_ready;
    bill_follower_t *followers;
};

/* Runs one synchronous command on the reader (opened on first use, again
 * after it broke). Returns the reply (free it) or NULL with a message in
 * err; error replies are NULL. */
redisReply *bill__command(bill_t *b, char *err, size_t errlen, const char *fmt, ...);

/* Appends the NDJSON log lines of one activation: one object per line with
 * "t","level","msg" from `logs` plus app, function, version and id. */
void bill__format_lines(tine_buf_t *out, const char *app, const char *fn, uint64_t version, const char *id,
                        json_t *logs);

/* metrics.c: counts one finished invocation. Returns the app's name as
 * kept by the metrics (valid until bill_free). */
const char *bill__metrics_count(bill_t *b, const inv_activation_t *a, uint64_t billed_ms, uint64_t cost_pusd);
void bill__metrics_dispose(bill_t *b);

/* follow.c: closes the subscription and forgets the followers. */
void bill__follow_dispose(bill_t *b);

#endif
