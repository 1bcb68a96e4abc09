/* redis/sentinel.c, and what async.c and sync.c do with it, against real
 * processes: a master, its replica and three sentinels (quorum 2) on
 * loopback. Connections of every kind (commands, a subscription, commands
 * that wait while down, synchronous) find the master through the
 * sentinels; after the master is killed (SIGKILL) and after a manual
 * SENTINEL FAILOVER they are all on the new master; write barriers (WAIT)
 * are confirmed by the replica and fail when it is gone; a sentinel list
 * with nobody there, a master name the sentinels do not know and a replica
 * named as the master give clear errors, and the connections keep trying
 * without a busy loop. Each test closes its loop and checks that no handle
 * and no descriptor is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <uv.h>

#include "loop_harness.h"
#include "redis_server.h"

static rds_async_t *open_sub(uv_loop_t *loop, const char *url, sub_t *s)
{
    rds_async_config_t cfg = {.name = "sub",
                              .backoff_min_ms = 20,
                              .backoff_max_ms = 500,
                              .on_connected = resubscribe,
                              .on_lost = on_lost,
                              .data = s};
    char err[512];
    if (rds_async_new(loop, url, &cfg, &s->c, err, sizeof err) != 0)
        fail_msg("rds_async_new(%s): %s", url, err);
    return s->c;
}

/* Sends a command (argv of strings) and runs the loop until it answered;
 * the answer as text is in p->last. */
static void command(uv_loop_t *loop, rds_async_t *c, probe_t *p, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int before = p->replies + p->nulls;
    assert_int_equal(rds_async_command(c, on_reply, p, argc, argv, lens), 0);
    int done = before;
    for (int i = 0; i < 400 && done == before; i++) {
        run_for(loop, 5);
        done = p->replies + p->nulls;
    }
    assert_int_equal(done, before + 1);
}

/* A barrier's outcome. */
typedef struct {
    int done, rc;
    char why[512];
} barrier_probe_t;

static void on_barrier(void *data, int rc, const char *why)
{
    barrier_probe_t *b = data;
    b->done++;
    b->rc = rc;
    snprintf(b->why, sizeof b->why, "%s", why ? why : "");
}

/* SET key value then a barrier, run until the barrier answered; returns
 * how long that took (ms) and the outcome in *b. */
static uint64_t set_confirmed(uv_loop_t *loop, rds_async_t *c, const char *key, const char *value, barrier_probe_t *b)
{
    probe_t p = {0};
    const char *argv[] = {"SET", key, value};
    size_t lens[] = {3, strlen(key), strlen(value)};
    memset(b, 0, sizeof *b);
    uint64_t t0 = uv_now(loop);
    assert_int_equal(rds_async_command(c, on_reply, &p, 3, argv, lens), 0);
    assert_int_equal(rds_async_wait_replicas(c, on_barrier, b), 0);
    assert_int_equal(b->done, 0); /* never inside the call */
    assert_true(run_until(loop, &b->done, 1, 5000));
    assert_int_equal(p.replies, 1); /* the write's reply came first */
    return uv_now(loop) - t0;
}

/* GET key on the server at port, as a string ("" when absent). */
static const char *get_on(int port, const char *key)
{
    static char v[256];
    redisReply *r = test_cmd(port, "GET %s", key);
    snprintf(v, sizeof v, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

static const char *metrics(void)
{
    static char text[16384];
    tine_buf_t m;
    tine_buf_init(&m);
    rds_metrics_render(&m);
    snprintf(text, sizeof text, "%s", m.data ? m.data : "");
    tine_buf_dispose(&m);
    return text;
}

static void expect_address(const rds_async_t *c, int port)
{
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_string_equal(rds_async_address(c), want);
}

/* -------------------------------------------------------------- tests */

/* Every kind of connection finds the master through the sentinels; writes
 * confirmed by a barrier are on the replica; with the replica gone a
 * barrier fails once (WAIT times out), then the master's count of
 * replicas is asked again and barriers pass at once. */
static void test_resolve_and_barriers(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_ha_t *h = &f->ha;
    test_ha_start(h, "mm");
    int master = h->server[0].port, replica = h->server[1].port;
    char *url = test_ha_url(h, NULL, NULL);

    char err[1024];
    rds_sync_t *s = rds_sync_new(url, 2000, err, sizeof err);
    assert_non_null(s);
    redisReply *r = rds_sync_command(s, err, sizeof err, "CONFIG GET port");
    if (r == NULL)
        fail_msg("sync: %s", err);
    assert_int_equal(atoi(r->element[1]->str), master);
    freeReplyObject(r);
    r = rds_sync_command(s, err, sizeof err, "SET synced yes");
    freeReplyObject(r);
    assert_int_equal(rds_sync_wait_replicas(s, err, sizeof err), 0);
    assert_string_equal(get_on(replica, "synced"), "yes");

    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    assert_true(run_until(loop, &p.connected, 1, 5000));
    expect_address(c, master);
    char line[128];
    snprintf(line, sizeof line, "tine_redis_master{master=\"mm\",address=\"127.0.0.1:%d\"} 1\n", master);
    assert_non_null(strstr(metrics(), line));
    assert_non_null(strstr(metrics(), "tine_redis_failovers_total{master=\"mm\"} 0\n"));
    assert_non_null(strstr(metrics(), "tine_redis_connected{connection=\"sentinel-watch/127.0.0.1:"));

    barrier_probe_t b;
    set_confirmed(loop, c, "k1", "v1", &b);
    assert_int_equal(b.rc, 0);
    assert_string_equal(get_on(replica, "k1"), "v1"); /* WAIT: the replica has it */
    /* Barriers asked together share one WAIT and all pass. */
    barrier_probe_t many[20] = {{0}};
    for (int i = 0; i < 20; i++)
        assert_int_equal(rds_async_wait_replicas(c, on_barrier, &many[i]), 0);
    assert_true(run_until(loop, &many[19].done, 1, 3000));
    for (int i = 0; i < 20; i++)
        assert_int_equal(many[i].rc, 0);

    /* The replica dies right after a barrier (the count of replicas is
     * fresh): the next WAIT is not confirmed, then the count is asked
     * again and barriers pass without waiting. */
    set_confirmed(loop, c, "k2", "v2", &b);
    test_redis_stop(&h->server[1]);
    uint64_t took = set_confirmed(loop, c, "k3", "v3", &b);
    assert_int_equal(b.rc, TINE_EREDIS);
    assert_non_null(strstr(b.why, "no replica of redis at 127.0.0.1:"));
    assert_non_null(strstr(b.why, "confirmed the write within 1000 ms"));
    assert_true(took >= 900);
    took = set_confirmed(loop, c, "k4", "v4", &b);
    assert_int_equal(b.rc, 0);
    assert_true(took < 500);
    assert_non_null(strstr(metrics(), "tine_redis_unconfirmed_writes_total{connection=\"test\"} 1\n"));
    /* The synchronous side asks ROLE every time: no replica, no wait. */
    r = rds_sync_command(s, err, sizeof err, "SET synced again");
    freeReplyObject(r);
    assert_int_equal(rds_sync_wait_replicas(s, err, sizeof err), 0);

    /* The replica back: barriers wait for it again. */
    test_ha_restart_replica(h, 1, master);
    run_for(loop, 1100); /* the count of replicas is older than a second */
    set_confirmed(loop, c, "k5", "v5", &b);
    assert_int_equal(b.rc, 0);
    assert_string_equal(get_on(replica, "k5"), "v5");

    close_conn(loop, c, &p);
    rds_sync_free(s);
    free(url);
}

/* The server each connection is on: all of them on `port`. */
static void expect_all_on(uv_loop_t *loop, rds_async_t *const *conns, size_t n, int port)
{
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%d", port);
        for (int k = 0; k < 200 && strcmp(rds_async_address(conns[i]), want) != 0; k++)
            run_for(loop, 25);
        expect_address(conns[i], port);
    }
}

/* The connections the failover tests watch: commands, commands that wait
 * while down, a subscription, and a synchronous one. */
typedef struct {
    probe_t cmd_p, kv_p;
    sub_t sub;
    rds_async_t *cmd, *kv;
    rds_sync_t *sync;
    char *url;
} conns_t;

static void conns_open(fixture_t *f, conns_t *k)
{
    uv_loop_t *loop = &f->loop;
    k->url = test_ha_url(&f->ha, NULL, NULL);
    k->cmd = open_conn(loop, k->url, &k->cmd_p, RDS_FAIL_WHEN_DOWN, 500);
    rds_async_config_t cfg = {.name = "kv",
                              .when_down = RDS_WAIT_WHEN_DOWN,
                              .max_wait_ms = 15000,
                              .backoff_min_ms = 20,
                              .backoff_max_ms = 500,
                              .on_connected = on_connected,
                              .on_lost = on_lost,
                              .data = &k->kv_p};
    char err[512];
    assert_int_equal(rds_async_new(loop, k->url, &cfg, &k->kv, err, sizeof err), 0);
    open_sub(loop, k->url, &k->sub);
    k->sync = rds_sync_new(k->url, 2000, err, sizeof err);
    assert_true(run_until(loop, &k->cmd_p.connected, 1, 5000));
    assert_true(run_until(loop, &k->kv_p.connected, 1, 5000));
    assert_true(run_until(loop, &k->sub.probe.connected, 1, 5000));
    redisReply *r = rds_sync_command(k->sync, err, sizeof err, "PING");
    assert_non_null(r);
    freeReplyObject(r);
}

/* After a failover to `port`: every connection is there and works. */
static void conns_check(fixture_t *f, conns_t *k, int port)
{
    uv_loop_t *loop = &f->loop;
    rds_async_t *all[] = {k->cmd, k->kv, k->sub.c};
    expect_all_on(loop, all, 3, port);
    /* Commands reach the new master, and it takes writes. */
    const char *set[] = {"SET", "after", "failover"};
    command(loop, k->cmd, &k->cmd_p, 3, set);
    assert_string_equal(k->cmd_p.last, "OK");
    const char *incr[] = {"INCR", "n"};
    command(loop, k->kv, &k->kv_p, 2, incr);
    assert_string_equal(get_on(port, "after"), "failover");
    /* The subscription was made again there. */
    int heard = k->sub.probe.messages;
    for (int i = 0; i < 100 && k->sub.probe.messages == heard; i++) {
        const char *pub[] = {"PUBLISH", "chan", "moved"};
        command(loop, k->cmd, &k->cmd_p, 3, pub);
        run_for(loop, 20);
    }
    assert_int_equal(k->sub.probe.messages, heard + 1);
    assert_string_equal(k->sub.probe.last, "moved");
    /* The synchronous connection too. */
    char err[1024];
    redisReply *r = rds_sync_command(k->sync, err, sizeof err, "CONFIG GET port");
    if (r == NULL)
        fail_msg("sync after the failover: %s", err);
    assert_int_equal(atoi(r->element[1]->str), port);
    freeReplyObject(r);
    r = rds_sync_command(k->sync, err, sizeof err, "SET sync-after yes");
    if (r == NULL)
        fail_msg("sync write after the failover: %s", err);
    freeReplyObject(r);
}

static void conns_close(fixture_t *f, conns_t *k)
{
    uv_loop_t *loop = &f->loop;
    close_conn(loop, k->cmd, &k->cmd_p);
    close_conn(loop, k->kv, &k->kv_p);
    rds_async_close(k->sub.c, false, on_closed, &k->sub.probe);
    assert_true(run_until(loop, &k->sub.probe.closed, 1, 2000));
    rds_sync_free(k->sync);
    free(k->url);
}

/* The master is killed: the sentinels promote the replica, and every
 * connection is on it within the budget (printed). The old master,
 * started again as a replica of the new one, confirms barriers. */
static void test_failover_after_kill(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_ha_t *h = &f->ha;
    test_ha_start(h, "mk");
    int old = h->server[0].port, new = h->server[1].port;
    conns_t k = {0};
    conns_open(f, &k);
    expect_address(k.cmd, old);

    uint64_t t0 = uv_now(loop);
    test_redis_stop(&h->server[0]);
    assert_true(run_until(loop, &k.cmd_p.lost, 1, 3000));
    /* A command that waits while down is answered on the new master. */
    const char *incr[] = {"INCR", "during"};
    size_t lens[] = {4, 6};
    assert_int_equal(rds_async_command(k.kv, on_reply, &k.kv_p, 2, incr, lens), 0);
    assert_true(run_until(loop, &k.cmd_p.connected, 2, 15000));
    assert_true(run_until(loop, &k.kv_p.replies, 1, 15000));
    assert_string_equal(k.kv_p.last, "1");
    assert_true(run_until(loop, &k.sub.probe.connected, 2, 15000));
    uint64_t took = uv_now(loop) - t0;
    fprintf(stderr, "# every connection on the new master %" PRIu64 " ms after the kill\n", took);
    assert_true(took < 10000);
    conns_check(f, &k, new);
    assert_int_equal(rds_async_reconnects(k.cmd), 1);
    char line[128];
    snprintf(line, sizeof line, "tine_redis_master{master=\"mk\",address=\"127.0.0.1:%d\"} 1\n", new);
    assert_non_null(strstr(metrics(), line));
    assert_non_null(strstr(metrics(), "tine_redis_failovers_total{master=\"mk\"} 1\n"));

    /* The new master has no replica: barriers pass at once. */
    barrier_probe_t b;
    set_confirmed(loop, k.cmd, "alone", "1", &b);
    assert_int_equal(b.rc, 0);
    /* The old master back as its replica: barriers wait for it. */
    test_ha_restart_replica(h, 0, new);
    run_for(loop, 1100);
    set_confirmed(loop, k.cmd, "paired", "1", &b);
    assert_int_equal(b.rc, 0);
    assert_string_equal(get_on(old, "paired"), "1");
    conns_close(f, &k);
}

/* SENTINEL FAILOVER: the old master stays up (the sentinels make it a
 * replica only some seconds later), so the connections move because of
 * +switch-master, not because their server went away. */
static void test_manual_failover(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_ha_t *h = &f->ha;
    test_ha_start(h, "mf");
    int old = h->server[0].port, new = h->server[1].port;
    conns_t k = {0};
    conns_open(f, &k);
    redisReply *r = test_cmd(h->sentinel[0].port, "SENTINEL FAILOVER mf");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    uint64_t t0 = uv_now(loop);
    while (test_sentinel_names(h->sentinel[0].port, "mf") != new &&uv_now(loop) - t0 < 10000)
        run_for(loop, 20);
    assert_int_equal(test_sentinel_names(h->sentinel[0].port, "mf"), new);
    uint64_t named = uv_now(loop);
    rds_async_t *all[] = {k.cmd, k.kv, k.sub.c};
    expect_all_on(loop, all, 3, new);
    uint64_t took = uv_now(loop) - named;
    fprintf(stderr, "# every connection on the new master %" PRIu64 " ms after the switch\n", took);
    assert_true(took < 3000);
    /* Still a master: nothing but +switch-master moved them. */
    r = test_cmd(old, "ROLE");
    assert_string_equal(r->element[0]->str, "master");
    freeReplyObject(r);
    conns_check(f, &k, new);
    conns_close(f, &k);
}

/* CPU time of this process (user + system), in ms. */
static long cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* A URL the sentinels cannot serve: the synchronous message, and an
 * asynchronous connection that says the same and keeps trying without
 * spinning (little CPU over two seconds); it connects once the fault is
 * fixed when that can happen. */
static void bad_input(fixture_t *f, const char *url, const char *want, rds_sync_t **keep)
{
    uv_loop_t *loop = &f->loop;
    char err[2048];
    rds_sync_t *s = rds_sync_new(url, 2000, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(rds_sync_connect(s, err, sizeof err), TINE_EREDIS);
    if (strstr(err, want) == NULL)
        fail_msg("sync: expected [%s] in [%s]", want, err);
    *keep = s;
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    run_for(loop, 1500);
    long cpu0 = cpu_ms();
    run_for(loop, 2000);
    long used = cpu_ms() - cpu0;
    assert_int_equal(p.connected, 0);
    if (strstr(rds_async_error(c), want) == NULL)
        fail_msg("async: expected [%s] in [%s]", want, rds_async_error(c));
    if (used > 300)
        fail_msg("%ld ms of CPU in 2 s of retrying", used);
    close_conn(loop, c, &p);
}

static void test_bad_input(void **state)
{
    fixture_t *f = *state;
    test_ha_t *h = &f->ha;
    test_ha_start(h, "mb");
    rds_sync_t *s;

    /* Nobody at the sentinels' addresses. */
    int p1 = test_free_port(), p2 = test_free_port();
    char *url = xasprintf("redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/mb", p1, p2);
    char *want = xasprintf("no sentinel of %s named a", url);
    bad_input(f, url, want, &s);
    char err[2048];
    rds_sync_connect(s, err, sizeof err);
    char *each = xasprintf("sentinel 127.0.0.1:%d is unreachable: Connection refused; sentinel 127.0.0.1:%d is "
                           "unreachable: Connection refused",
                           p1, p2);
    if (strstr(err, each) == NULL)
        fail_msg("expected [%s] in [%s]", each, err);
    rds_sync_free(s);
    /* The asynchronous connections say it in the same words. */
    probe_t p = {0};
    rds_async_t *c = open_conn(&f->loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    run_for(&f->loop, 1000);
    if (strstr(rds_async_error(c), each) == NULL)
        fail_msg("async: expected [%s] in [%s]", each, rds_async_error(c));
    close_conn(&f->loop, c, &p);
    free(each);
    free(want);
    free(url);

    /* A master name the sentinels do not know. */
    url = xasprintf("redis-sentinel://127.0.0.1:%d/nosuch", h->sentinel[0].port);
    want = xasprintf("sentinel 127.0.0.1:%d knows no master named 'nosuch'", h->sentinel[0].port);
    bad_input(f, url, want, &s);
    rds_sync_free(s);
    free(want);
    free(url);

    /* A replica named as the master: a fourth sentinel told the replica is
     * the master of "mr" (an operator's slip). */
    test_sentinel_t *wrong = &h->odd;
    test_sentinel_start(wrong, "mr", h->server[1].port, 1);
    url = xasprintf("redis-sentinel://127.0.0.1:%d/mr", wrong->port);
    want = xasprintf("redis at 127.0.0.1:%d, named the master of 'mr' by the sentinels of %s, is a replica (of "
                     "127.0.0.1:%d",
                     h->server[1].port, url, h->server[0].port);
    bad_input(f, url, want, &s);
    rds_sync_free(s);
    test_sentinel_stop(wrong);
    free(want);
    free(url);

    /* A sentinel given as a server. */
    url = xasprintf("redis://127.0.0.1:%d", h->sentinel[0].port);
    s = rds_sync_new(url, 2000, err, sizeof err);
    assert_int_equal(rds_sync_connect(s, err, sizeof err), TINE_EREDIS);
    char *expect = xasprintf("%s is a Redis Sentinel, not a Redis server: give it as "
                             "redis-sentinel://127.0.0.1:%d/MASTER",
                             url, h->sentinel[0].port);
    assert_string_equal(err, expect);
    rds_sync_free(s);
    free(expect);
    free(url);
}

/* The URL works synchronously (a SET) and asynchronously (a connection to
 * the master at 127.0.0.1:port). */
static void expect_works(fixture_t *f, const char *url, int port)
{
    char err[1024];
    rds_sync_t *s = rds_sync_new(url, 2000, err, sizeof err);
    redisReply *r = rds_sync_command(s, err, sizeof err, "SET a b");
    if (r == NULL)
        fail_msg("sync %s: %s", url, err);
    freeReplyObject(r);
    rds_sync_free(s);
    probe_t p = {0};
    rds_async_t *c = open_conn(&f->loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    assert_true(run_until(&f->loop, &p.connected, 1, 5000));
    expect_address(c, port);
    close_conn(&f->loop, c, &p);
}

/* The URL is refused: the synchronous connect fails with TINE_EAUTH saying
 * want_sync, an asynchronous connection never comes up and says
 * want_async; neither message shows `secret`. */
static void expect_refused(fixture_t *f, const char *url, const char *secret, const char *want_sync,
                           const char *want_async)
{
    char err[2048];
    rds_sync_t *s = rds_sync_new(url, 2000, err, sizeof err);
    assert_int_equal(rds_sync_connect(s, err, sizeof err), TINE_EAUTH);
    if (strstr(err, want_sync) == NULL)
        fail_msg("sync: expected [%s] in [%s]", want_sync, err);
    assert_null(strstr(err, secret));
    rds_sync_free(s);
    probe_t p = {0};
    rds_async_t *c = open_conn(&f->loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    run_for(&f->loop, 1000);
    assert_int_equal(p.connected, 0);
    if (strstr(rds_async_error(c), want_async) == NULL)
        fail_msg("async: expected [%s] in [%s]", want_async, rds_async_error(c));
    assert_null(strstr(rds_async_error(c), secret));
    close_conn(&f->loop, c, &p);
}

/* The master's password in the URL reaches the master, not the sentinels;
 * a wrong one is a refusal (TINE_EAUTH), not an outage. Sentinels that
 * require a password of their own get ?sentinel_password=; without it, or
 * with a wrong one, the refusal says so. */
static void test_passwords(void **state)
{
    fixture_t *f = *state;
    test_ha_t *h = &f->ha;
    const char *extra[] = {"--requirepass", "pw1", "--masterauth", "pw1", NULL};
    memcpy(h->server[0].extra, extra, sizeof extra);
    /* test_ha_start sets the replica's own arguments; the replica needs
     * the password too, which it gets once started: set it on the fly. */
    test_redis_start(&h->server[0]);
    test_redis_t *rep = &h->server[1];
    snprintf(rep->arg[0], sizeof rep->arg[0], "%d", h->server[0].port);
    const char *rextra[] = {"--replicaof", "127.0.0.1",     rep->arg[0], "--masterauth",
                            "pw1",         "--requirepass", "pw1",       NULL};
    memcpy(rep->extra, rextra, sizeof rextra);
    test_redis_start(rep);
    snprintf(h->name, sizeof h->name, "mp");
    for (int i = 0; i < 3; i++)
        test_sentinel_start(&h->sentinel[i], "mp", h->server[0].port, 2);
    int master = h->server[0].port;
    char *url = test_ha_url(h, ":pw1@", NULL);
    expect_works(f, url, master);
    free(url);
    url = test_ha_url(h, ":nope@", NULL);
    expect_refused(f, url, "nope", "refused the password", "refused the password");
    free(url);

    /* A sentinel with a password of its own. */
    test_sentinel_t *locked = &h->odd;
    locked->extra_conf = "requirepass spw\nsentinel auth-pass mp pw1\n";
    test_sentinel_start(locked, "mp", master, 1);
    int lp = locked->port;
    url = xasprintf("redis-sentinel://:pw1@127.0.0.1:%d/mp?sentinel_password=spw", lp);
    expect_works(f, url, master);
    free(url);
    url = xasprintf("redis-sentinel://:pw1@127.0.0.1:%d/mp", lp);
    char *sync = xasprintf("sentinel 127.0.0.1:%d requires a password: give it as ?sentinel_password= in "
                           "redis-sentinel://:***@127.0.0.1:%d/mp",
                           lp, lp);
    char *async = xasprintf("sentinel 127.0.0.1:%d requires a password: give it as ?sentinel_password= in the "
                            "redis-sentinel:// URL",
                            lp);
    expect_refused(f, url, "pw1", sync, async);
    free(sync);
    free(async);
    free(url);
    url = xasprintf("redis-sentinel://:pw1@127.0.0.1:%d/mp?sentinel_password=wrong", lp);
    sync = xasprintf("sentinel 127.0.0.1:%d refused the sentinel password of "
                     "redis-sentinel://:***@127.0.0.1:%d/mp?sentinel_password=***",
                     lp, lp);
    async = xasprintf("sentinel 127.0.0.1:%d refused the sentinel password of the redis-sentinel:// URL", lp);
    expect_refused(f, url, "wrong", sync, async);
    free(sync);
    free(async);
    free(url);
    test_sentinel_stop(locked);
}

int main(void)
{
    harness_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_and_barriers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
