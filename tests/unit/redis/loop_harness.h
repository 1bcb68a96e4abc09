/* What the tests of redis/ share: a probe counting what a connection
 * reported, running a real libuv loop until something happened, opening
 * and closing connections, a subscription made again on every connect, and
 * a fixture (a loop, a server, a Sentinel set) whose teardown checks that
 * the loop closes with no handle and no descriptor left. Header-only;
 * include once per test file, after cmocka.h. */
#ifndef TINE_TEST_LOOP_HARNESS_H
#define TINE_TEST_LOOP_HARNESS_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "redis_server.h"
#include "tine_redis.h"

typedef struct {
    int connected, lost, closed;
    int replies, nulls;
    char last[256]; /* the last reply as text */
    int messages;   /* pub/sub messages */
} probe_t;

static inline void on_connected(void *d)
{
    ((probe_t *)d)->connected++;
}

static inline void on_lost(void *d)
{
    ((probe_t *)d)->lost++;
}

static inline void on_closed(void *d)
{
    ((probe_t *)d)->closed++;
}

static inline void on_reply(void *d, redisReply *r)
{
    probe_t *p = d;
    if (r == NULL) {
        p->nulls++;
        snprintf(p->last, sizeof p->last, "(no reply)");
        return;
    }
    p->replies++;
    if (r->type == REDIS_REPLY_INTEGER)
        snprintf(p->last, sizeof p->last, "%lld", r->integer);
    else if (r->str)
        snprintf(p->last, sizeof p->last, "%s%s", r->type == REDIS_REPLY_ERROR ? "ERR " : "", r->str);
    else
        snprintf(p->last, sizeof p->last, "(type %d)", r->type);
}

static inline void on_message(void *d, redisReply *r)
{
    probe_t *p = d;
    if (r == NULL) {
        p->nulls++;
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && strcmp(r->element[0]->str, "message") == 0) {
        p->messages++;
        snprintf(p->last, sizeof p->last, "%s", r->element[2]->str);
    }
}

static inline void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag >= want or timeout_ms passed; returns whether
 * it got there. */
static inline int run_until(uv_loop_t *loop, const int *flag, int want, int timeout_ms)
{
    uv_timer_t tick;
    uv_update_time(loop); /* the test may have slept since the loop last ran */
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(loop) + (uint64_t)timeout_ms;
    while (*flag < want && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

/* Runs the loop for ms milliseconds. */
static inline void run_for(uv_loop_t *loop, int ms)
{
    int never = 0;
    run_until(loop, &never, 1, ms);
}

static inline int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static inline void walk_cb(uv_handle_t *h, void *arg)
{
    fprintf(stderr, "handle left open: type %d\n", (int)h->type);
    (*(int *)arg)++;
}

/* Closes the loop: it must have nothing left. */
static inline void loop_done(uv_loop_t *loop, int fds_before)
{
    uv_run(loop, UV_RUN_NOWAIT);
    int open = 0;
    uv_walk(loop, walk_cb, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(loop), 0);
    assert_int_equal(count_fds(), fds_before);
}

static inline rds_async_t *open_conn(uv_loop_t *loop, const char *url, probe_t *p, rds_when_down_t mode,
                                     uint32_t timeout_ms)
{
    rds_async_config_t cfg = {
        .name = "test",
        .when_down = mode,
        .connect_timeout_ms = timeout_ms,
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
        .on_connected = on_connected,
        .on_lost = on_lost,
        .data = p,
    };
    rds_async_t *c = NULL;
    char err[512];
    int rc = rds_async_new(loop, url, &cfg, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("rds_async_new(%s): %s", url, err);
    return c;
}

static inline int ping(rds_async_t *c, probe_t *p)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    return rds_async_command(c, on_reply, p, 1, argv, lens);
}

static inline void close_conn(uv_loop_t *loop, rds_async_t *c, probe_t *p)
{
    int before = p->closed;
    rds_async_close(c, false, on_closed, p);
    assert_true(run_until(loop, &p->closed, before + 1, 2000));
}

/* A subscription to "chan" made again on every connect; `probe.connected`
 * counts the connects, `probe.messages` what it heard. */
typedef struct {
    probe_t probe;
    rds_async_t *c;
} sub_t;

static inline void resubscribe(void *d)
{
    sub_t *s = d;
    s->probe.connected++;
    assert_int_equal(rds_async_subscribe(s->c, false, "chan", on_message, &s->probe), 0);
}

/* Each test gets a loop, a redis-server and a Sentinel set (neither
 * started) and the count of descriptors before; the teardown stops what was
 * started and checks the loop. */
typedef struct {
    int fds;
    uv_loop_t loop;
    test_redis_t r;
    test_ha_t ha;
} fixture_t;

static inline int setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof(*f));
    f->fds = count_fds();
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    test_redis_cleanup(&f->r);
    test_ha_cleanup(&f->ha);
    loop_done(&f->loop, f->fds);
    free(f);
    return 0;
}

/* The start of a test program's main: SIGPIPE ignored, libuv's
 * process-wide pipe opened before descriptors are counted, tine's log
 * level from TEST_LOG (default error). */
static inline void harness_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t first;
    uv_loop_init(&first);
    uv_loop_close(&first);
    tine_log_set_level(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error");
}

#endif
