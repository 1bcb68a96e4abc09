/* Log fan-out: every node PUBLISHes the log lines of each finished
 * invocation on tine:logs:{app}; a node with followers (tine logs -f)
 * holds one PSUBSCRIBE tine:logs:* connection (redis/, subscribing again
 * after every reconnect), opened on the first follow, and hands each line
 * to the followers of its app. Pub/sub keeps no history:
 * a follower sees lines published while it is subscribed; older ones come
 * from the activation records (bill_logs_recent). */
#include "billing_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the n bytes at hay hold the nl bytes of needle. */
static bool contains(const char *hay, size_t n, const char *needle, size_t nl)
{
    for (size_t i = 0; i + nl <= n; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return true;
    return false;
}

/* Hands the lines of one published message to a follower, filtered by
 * function: lines are written by bill__format_lines, which puts
 * "function":"NAME" right after the app. */
static void deliver(bill_follower_t *f, const char *payload, size_t len)
{
    char needle[160];
    int nl = f->fn ? snprintf(needle, sizeof(needle), ",\"function\":\"%s\",", f->fn) : 0;
    for (size_t off = 0; off < len;) {
        const char *line = payload + off;
        const char *end = memchr(line, '\n', len - off);
        size_t n = end ? (size_t)(end - line) + 1 : len - off;
        off += n;
        if (f->fn == NULL || (nl > 0 && (size_t)nl < sizeof(needle) && contains(line, n, needle, (size_t)nl)))
            f->cb(f->data, BILL_FOLLOW_LINE, line, n);
    }
}

/* A reply on the log subscription: PSUBSCRIBE confirmed makes every follower
 * live; a PMESSAGE goes to the live followers of its app; NULL (connection
 * lost) waits for on_sub_up. */
static void on_pmessage(void *data, redisReply *r)
{
    bill_t *b = data;
    if (r == NULL) {
        b->sub_ready = false; /* lost or closed: subscribed again on_sub_up */
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "psubscribe") == 0) {
        b->sub_ready = true;
        for (bill_follower_t *f = b->followers, *next; f; f = next) {
            next = f->next;
            if (!f->live) {
                f->live = true;
                f->cb(f->data, BILL_FOLLOW_LIVE, NULL, 0);
            }
        }
        return;
    }
    if (r->elements != 4 || strcmp(r->element[0]->str, "pmessage") != 0)
        return;
    if (r->element[2]->len < strlen(RDS_CHANNEL_LOGS_PREFIX))
        return;
    const char *app = r->element[2]->str + strlen(RDS_CHANNEL_LOGS_PREFIX);
    for (bill_follower_t *f = b->followers, *next; f; f = next) {
        next = f->next;
        if (f->live && strcmp(f->app, app) == 0)
            deliver(f, r->element[3]->str, r->element[3]->len);
    }
}

/* The log connection is up (again): subscribes to every app's log channel. */
static void on_sub_up(void *data)
{
    bill_t *b = data;
    if (rds_async_subscribe(b->sub, true, RDS_CHANNEL_LOGS_PREFIX "*", on_pmessage, b) != 0)
        tine_log(TINE_LOG_WARN, "billing: cannot subscribe to the log lines");
}

/* Opens the connection that follows log lines (it subscribes once up); logs
 * why when it cannot. */
static void sub_connect(bill_t *b)
{
    rds_async_config_t cfg = {.name = "billing-logs", .on_connected = on_sub_up, .data = b};
    char err[512];
    if (rds_async_new(b->loop, b->redis_url, &cfg, &b->sub, err, sizeof err) != 0)
        tine_log(TINE_LOG_ERROR, "billing: %s; log lines cannot be followed", err);
}

bill_follower_t *bill_follow(bill_t *b, const char *app, const char *fn, bill_line_cb cb, void *data)
{
    bill_follower_t *f = xcalloc(1, sizeof(*f));
    f->b = b;
    f->app = xstrdup(app);
    f->fn = fn ? xstrdup(fn) : NULL;
    f->cb = cb;
    f->data = data;
    f->next = b->followers;
    b->followers = f;
    if (b->sub == NULL && !b->closing)
        sub_connect(b);
    if (b->sub_ready) {
        f->live = true;
        cb(data, BILL_FOLLOW_LIVE, NULL, 0);
    }
    return f;
}

void bill_unfollow(bill_follower_t *f)
{
    if (f == NULL)
        return;
    for (bill_follower_t **pp = &f->b->followers; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    free(f->app);
    free(f->fn);
    free(f);
}

void bill__follow_dispose(bill_t *b)
{
    rds_async_close(b->sub, false, NULL, NULL); /* its NULL reply comes in here */
    b->sub = NULL;
    while (b->followers) {
        bill_follower_t *f = b->followers;
        bill_line_cb cb = f->cb;
        void *data = f->data;
        bill_unfollow(f);
        cb(data, BILL_FOLLOW_END, NULL, 0);
    }
}

void bill_end_follows(bill_t *b)
{
    if (b != NULL)
        bill__follow_dispose(b);
}
