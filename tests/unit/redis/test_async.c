/* redis/async.c and sync.c against real redis-server processes: a
 * connection on a real libuv loop comes back after the server is killed and
 * started again on the same unix socket or TCP port, after outages shorter
 * and longer than the connect timeout, when the server is away at the
 * start; it logs in (AUTH, SELECT) before anything else; wrong passwords get
 * clear messages without the password. Each test closes its loop and
 * checks that no handle and no descriptor is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <uv.h>

#include "loop_harness.h"
#include "redis_server.h"

static char *url_of(const test_redis_t *r, int tcp, const char *userinfo)
{
    if (tcp)
        return xasprintf("redis://%s127.0.0.1:%d", userinfo ? userinfo : "", r->port);
    return xasprintf("unix://%s%s", userinfo ? userinfo : "", r->sock);
}

/* Starts the fixture's server and a connection to it (connect timeout
 * 500 ms), up. */
static rds_async_t *connected(fixture_t *f, int tcp, probe_t *p, char **url)
{
    test_redis_start(&f->r);
    *url = url_of(&f->r, tcp, NULL);
    rds_async_t *c = open_conn(&f->loop, *url, p, RDS_FAIL_WHEN_DOWN, 500);
    assert_true(run_until(&f->loop, &p->connected, 1, 3000));
    return c;
}

/* -------------------------------------------------------------- tests */

/* Killed and started again on the same socket or port: the connection is
 * lost (its owner hears it), commands fail at once while it is down, and
 * it comes back by itself (on_connected again, one reconnect counted). */
static void restart_cycle(void **state, int tcp)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    probe_t p = {0};
    char *url;
    rds_async_t *c = connected(f, tcp, &p, &url);
    assert_true(rds_async_connected(c));
    assert_string_equal(rds_async_error(c), "");
    assert_int_equal(ping(c, &p), 0);
    assert_int_equal(p.replies, 0); /* never inside the call */
    assert_true(run_until(loop, &p.replies, 1, 2000));
    assert_string_equal(p.last, "PONG");

    test_redis_stop(r);
    assert_true(run_until(loop, &p.lost, 1, 3000));
    assert_false(rds_async_connected(c));
    assert_int_equal(ping(c, &p), TINE_EREDIS);
    run_for(loop, 600); /* several failed attempts, longer than the connect timeout */
    assert_false(rds_async_connected(c));
    assert_non_null(strstr(rds_async_error(c), "unreachable"));

    test_redis_start(r);
    assert_true(run_until(loop, &p.connected, 2, 3000));
    assert_int_equal(rds_async_reconnects(c), 1);
    assert_int_equal(ping(c, &p), 0);
    assert_true(run_until(loop, &p.replies, 2, 2000));
    assert_string_equal(p.last, "PONG");

    tine_buf_t m;
    tine_buf_init(&m);
    rds_metrics_render(&m);
    assert_non_null(strstr(m.data, "tine_redis_connected{connection=\"test\"} 1\n"));
    assert_non_null(strstr(m.data, "tine_redis_reconnects_total{connection=\"test\"} 1\n"));
    tine_buf_dispose(&m);

    close_conn(loop, c, &p);
    tine_buf_init(&m);
    rds_metrics_render(&m);
    assert_null(strstr(m.data, "connection=\"test\""));
    tine_buf_dispose(&m);
    free(url);
}

static void test_unix_restart(void **state)
{
    restart_cycle(state, 0);
}

static void test_tcp_restart(void **state)
{
    restart_cycle(state, 1);
}

/* Outages shorter (0.1 s) and longer (1.5 s) than the connect timeout
 * (0.5 s), over TCP and unix sockets: the connection always comes back. */
static void outages(void **state, int tcp)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    probe_t p = {0};
    char *url;
    rds_async_t *c = connected(f, tcp, &p, &url);
    int outage_ms[] = {100, 1500, 100, 1500};
    for (int i = 0; i < 4; i++) {
        test_redis_stop(r);
        test_sleep_ms(outage_ms[i]); /* the loop does not even run meanwhile */
        run_for(loop, 50);
        test_redis_start(r);
        if (!run_until(loop, &p.connected, i + 2, 4000))
            fail_msg("not back after an outage of %d ms (%s): %s", outage_ms[i], tcp ? "tcp" : "unix",
                     rds_async_error(c));
        assert_int_equal(ping(c, &p), 0);
        assert_true(run_until(loop, &p.replies, i + 1, 2000));
        assert_string_equal(p.last, "PONG");
    }
    assert_int_equal(rds_async_reconnects(c), 4);
    close_conn(loop, c, &p);
    free(url);
}

static void test_tcp_outages(void **state)
{
    outages(state, 1);
}

static void test_unix_outages(void **state)
{
    outages(state, 0);
}

/* Redis is not there when the connection is made: it keeps trying and
 * connects once the server starts. */
static void absent_at_start(void **state, int tcp)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    test_redis_start(r);
    test_redis_stop(r);
    char *url = url_of(r, tcp, NULL);
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_FAIL_WHEN_DOWN, 300);
    run_for(loop, 700);
    assert_int_equal(p.connected, 0);
    assert_non_null(strstr(rds_async_error(c), "is unreachable"));
    assert_int_equal(ping(c, &p), TINE_EREDIS);
    test_redis_start(r);
    assert_true(run_until(loop, &p.connected, 1, 3000));
    assert_int_equal(rds_async_reconnects(c), 0);
    assert_int_equal(p.lost, 0);
    close_conn(loop, c, &p);
    free(url);
}

static void test_tcp_absent_at_start(void **state)
{
    absent_at_start(state, 1);
}

static void test_unix_absent_at_start(void **state)
{
    absent_at_start(state, 0);
}

/* Commands sent while down wait when the owner asked for it, and reach a
 * server that needs a password only after AUTH and SELECT. */
static void test_wait_mode_after_login(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    const char *extra[] = {"--requirepass", "pw0", NULL};
    memcpy(r->extra, extra, sizeof extra);
    test_redis_start(r);
    test_redis_stop(r);
    char *base = url_of(r, 1, ":pw0@");
    char *url = xasprintf("%s/5", base);
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_WAIT_WHEN_DOWN, 300);
    const char *set[] = {"SET", "k", "v"};
    size_t setl[] = {3, 1, 1};
    assert_int_equal(rds_async_command(c, on_reply, &p, 3, set, setl), 0);
    const char *get[] = {"GET", "k"};
    size_t getl[] = {3, 1};
    assert_int_equal(rds_async_command(c, on_reply, &p, 2, get, getl), 0);
    run_for(loop, 300);
    assert_int_equal(p.replies + p.nulls, 0);
    test_redis_start(r);
    assert_true(run_until(loop, &p.replies, 2, 3000));
    assert_string_equal(p.last, "v");
    /* They went to database 5. */
    const char *dbsize[] = {"DBSIZE"};
    size_t dbl[] = {6};
    assert_int_equal(rds_async_command(c, on_reply, &p, 1, dbsize, dbl), 0);
    assert_true(run_until(loop, &p.replies, 3, 2000));
    assert_string_equal(p.last, "1");
    /* A (P)SUBSCRIBE must go through rds_async_subscribe. */
    const char *sub[] = {"SUBSCRIBE", "x"};
    size_t subl[] = {9, 1};
    assert_int_equal(rds_async_command(c, on_reply, &p, 2, sub, subl), TINE_EINVAL);
    /* Closing fails what still waits, inside the call. */
    test_redis_stop(r);
    assert_true(run_until(loop, &p.lost, 1, 3000));
    assert_int_equal(ping(c, &p), 0);
    close_conn(loop, c, &p);
    assert_int_equal(p.nulls, 1);
    free(url);
    free(base);
}

/* Waiting commands give up after max_wait_ms; a command sent while down
 * brings a distant attempt forward, so a server that came back is found
 * at once rather than after the backoff. */
static void test_wait_limit_and_kick(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    test_redis_start(r);
    test_redis_stop(r);
    char *url = url_of(r, 1, NULL);
    probe_t p = {0};
    rds_async_config_t cfg = {.name = "kick",
                              .when_down = RDS_WAIT_WHEN_DOWN,
                              .max_wait_ms = 200,
                              .backoff_min_ms = 20,
                              .backoff_max_ms = 10000,
                              .on_connected = on_connected,
                              .data = &p};
    rds_async_t *c = NULL;
    char err[256];
    assert_int_equal(rds_async_new(loop, url, &cfg, &c, err, sizeof err), 0);
    run_for(loop, 2500); /* attempts every 20, 40, ... 1280 ms: the next is seconds away */
    assert_int_equal(ping(c, &p), 0);
    uint64_t t0 = uv_now(loop);
    assert_true(run_until(loop, &p.nulls, 1, 1000));
    uint64_t waited = uv_now(loop) - t0;
    assert_true(waited >= 190 && waited < 600);
    assert_int_equal(p.replies, 0);
    run_for(loop, 1500); /* the backoff grows again */
    test_redis_start(r);
    t0 = uv_now(loop);
    assert_int_equal(ping(c, &p), 0);
    assert_true(run_until(loop, &p.replies, 1, 1000));
    assert_string_equal(p.last, "PONG");
    if (uv_now(loop) - t0 > 300)
        fail_msg("the command waited %d ms for a server that was there", (int)(uv_now(loop) - t0));
    close_conn(loop, c, &p);
    free(url);
}

/* Wrong, missing and needless passwords: clear messages, never the password,
 * and no connection. */
static void test_passwords(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    const char *extra[] = {"--requirepass", "right-one", NULL};
    memcpy(r->extra, extra, sizeof extra);
    test_redis_start(r);
    char *wrong = url_of(r, 1, ":hunter2@");
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, wrong, &p, RDS_FAIL_WHEN_DOWN, 500);
    run_for(loop, 400);
    assert_int_equal(p.connected, 0);
    const char *why = rds_async_error(c);
    assert_non_null(strstr(why, "refused the password"));
    assert_null(strstr(why, "hunter2"));
    close_conn(loop, c, &p);

    char err[512];
    rds_sync_t *s = rds_sync_new(wrong, 1000, err, sizeof err);
    assert_non_null(s);
    assert_null(rds_sync_context(s, err, sizeof err));
    char expect[512];
    snprintf(expect, sizeof expect,
             "redis at redis://:***@127.0.0.1:%d refused the password: WRONGPASS invalid username-password pair or "
             "user is disabled.",
             r->port);
    assert_string_equal(err, expect);
    rds_sync_free(s);

    char *none = url_of(r, 0, NULL);
    s = rds_sync_new(none, 1000, err, sizeof err);
    assert_null(rds_sync_context(s, err, sizeof err));
    assert_non_null(strstr(err, "requires a password: give it in the URL (unix://:PASSWORD@/path)"));
    rds_sync_free(s);

    char *right = url_of(r, 1, ":right-one@");
    s = rds_sync_new(right, 1000, err, sizeof err);
    redisReply *rep = rds_sync_command(s, err, sizeof err, "PING");
    assert_non_null(rep);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    rds_sync_free(s);
    test_redis_stop(r);

    /* A password for a server that has none. */
    r->extra[0] = NULL;
    test_redis_start(r);
    s = rds_sync_new(wrong, 1000, err, sizeof err);
    assert_null(rds_sync_context(s, err, sizeof err));
    assert_non_null(strstr(err, "has no password set, but the URL gives one"));
    assert_null(strstr(err, "hunter2"));
    rds_sync_free(s);

    /* Nothing there at all. */
    test_redis_stop(r);
    s = rds_sync_new(none, 1000, err, sizeof err);
    assert_null(rds_sync_context(s, err, sizeof err));
    snprintf(expect, sizeof expect, "redis at unix://%s is unreachable: No such file or directory", r->sock);
    assert_string_equal(err, expect);
    rds_sync_free(s);
    free(wrong);
    free(none);
    free(right);
}

/* An ACL user logs in with AUTH user password. */
static void test_acl_user(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    const char *extra[] = {"--user", "default", "off", "--user", "tine", "on", ">s%cr@t", "~*", "&*", "+@all", NULL};
    memcpy(r->extra, extra, sizeof extra);
    test_redis_start(r);
    char *url = url_of(r, 1, "tine:s%25cr%40t@");
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_FAIL_WHEN_DOWN, 500);
    assert_true(run_until(loop, &p.connected, 1, 3000));
    const char *who[] = {"ACL", "WHOAMI"};
    size_t wl[] = {3, 6};
    assert_int_equal(rds_async_command(c, on_reply, &p, 2, who, wl), 0);
    assert_true(run_until(loop, &p.replies, 1, 2000));
    assert_string_equal(p.last, "tine");
    close_conn(loop, c, &p);
    char *bad = url_of(r, 1, "tine:nope@");
    char err[512];
    rds_sync_t *s = rds_sync_new(bad, 1000, err, sizeof err);
    assert_null(rds_sync_context(s, err, sizeof err));
    assert_non_null(strstr(err, "refused the password of user 'tine'"));
    rds_sync_free(s);
    free(bad);
    free(url);
}

/* A server that accepts the connection but never answers: the login has a
 * deadline, and the connection keeps trying. */
static void test_login_deadline(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 16), 0);
    getsockname(ls, (struct sockaddr *)&sa, &len);
    char *url = xasprintf("redis://127.0.0.1:%d", ntohs(sa.sin_port));
    probe_t p = {0};
    rds_async_t *c = open_conn(loop, url, &p, RDS_FAIL_WHEN_DOWN, 200);
    run_for(loop, 500);
    assert_int_equal(p.connected, 0);
    assert_non_null(strstr(rds_async_error(c), "did not answer the login within 200 ms"));
    close_conn(loop, c, &p);
    char err[512];
    rds_sync_t *s = rds_sync_new(url, 200, err, sizeof err);
    assert_null(rds_sync_context(s, err, sizeof err));
    char expect[256];
    snprintf(expect, sizeof expect, "redis at %s did not answer ROLE: no answer within 200 ms", url);
    assert_string_equal(err, expect);
    rds_sync_free(s);
    close(ls);
    free(url);
}

/* A server that stops answering with the connection open (SIGSTOP: the
 * kernel still holds the socket): a command in flight gets its NULL reply
 * once reply_timeout_ms passed without an answer, the owner hears of the
 * loss, and the connection comes back when the server answers again. A
 * subscription's silence is not timed. */
static void test_frozen_server(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    test_redis_start(r);
    char *url = url_of(r, 1, NULL);
    probe_t p = {0}, sp = {0};
    rds_async_config_t cfg = {.name = "test", .connect_timeout_ms = 200, .reply_timeout_ms = 300,
                              .backoff_min_ms = 20, .backoff_max_ms = 200,
                              .on_connected = on_connected, .on_lost = on_lost, .data = &p};
    rds_async_config_t scfg = cfg;
    scfg.name = "test-sub";
    scfg.on_connected = scfg.on_lost = NULL;
    rds_async_t *c = NULL, *sub = NULL;
    char err[512];
    assert_int_equal(rds_async_new(loop, url, &cfg, &c, err, sizeof err), 0);
    assert_int_equal(rds_async_new(loop, url, &scfg, &sub, err, sizeof err), 0);
    assert_true(run_until(loop, &p.connected, 1, 3000));
    run_for(loop, 100);
    assert_int_equal(rds_async_subscribe(sub, false, "frozen-test", on_message, &sp), 0);
    assert_int_equal(ping(c, &p), 0);
    assert_true(run_until(loop, &p.replies, 1, 2000));
    run_for(loop, 500); /* longer than reply_timeout_ms: a subscription's silence is fine */
    assert_true(rds_async_connected(sub));

    kill(r->pid, SIGSTOP);
    uint64_t t0 = tine_now_ns();
    assert_int_equal(ping(c, &p), 0);
    assert_true(run_until(loop, &p.nulls, 1, 3000));
    uint64_t waited_ms = (tine_now_ns() - t0) / 1000000;
    assert_true(waited_ms >= 250 && waited_ms < 1500);
    assert_int_equal(p.lost, 1);
    assert_non_null(strstr(rds_async_error(c), "answered none of 1 commands within 300 ms"));
    assert_int_equal(ping(c, &p), TINE_EREDIS); /* not up: fails at once */
    run_for(loop, 500);                          /* its logins to the frozen server time out */
    assert_non_null(strstr(rds_async_error(c), "did not answer the login within 200 ms"));

    kill(r->pid, SIGCONT);
    assert_true(run_until(loop, &p.connected, 2, 3000));
    assert_int_equal(ping(c, &p), 0);
    assert_true(run_until(loop, &p.replies, 2, 2000));
    assert_string_equal(p.last, "PONG");
    close_conn(loop, c, &p);
    probe_t sc = {0};
    rds_async_close(sub, false, on_closed, &sc);
    assert_true(run_until(loop, &sc.closed, 1, 2000));
    free(url);
}

static void test_pubsub_resubscribe(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    test_redis_t *r = &f->r;
    test_redis_start(r);
    char *url = url_of(r, 1, NULL);
    sub_t s = {0};
    rds_async_config_t cfg = {
        .name = "sub", .backoff_min_ms = 20, .backoff_max_ms = 100, .on_connected = resubscribe, .data = &s};
    char err[256];
    assert_int_equal(rds_async_new(loop, url, &cfg, &s.c, err, sizeof err), 0);
    probe_t pub = {0};
    rds_async_t *pc = open_conn(loop, url, &pub, RDS_FAIL_WHEN_DOWN, 500);
    for (int round = 1; round <= 2; round++) {
        assert_true(run_until(loop, &s.probe.connected, round, 3000));
        assert_true(run_until(loop, &pub.connected, round, 3000));
        /* Publish until the subscription hears it (it may not be in yet). */
        for (int i = 0; i < 100 && s.probe.messages < round; i++) {
            const char *argv[] = {"PUBLISH", "chan", round == 1 ? "one" : "two"};
            size_t lens[] = {7, 4, 3};
            rds_async_command(pc, NULL, NULL, 3, argv, lens);
            run_for(loop, 20);
        }
        assert_int_equal(s.probe.messages, round);
        assert_string_equal(s.probe.last, round == 1 ? "one" : "two");
        if (round == 1) {
            test_redis_stop(r);
            assert_true(run_until(loop, &s.probe.nulls, 1, 3000));
            test_redis_start(r);
        }
    }
    close_conn(loop, pc, &pub);
    rds_async_close(s.c, false, on_closed, &s.probe);
    assert_true(run_until(loop, &s.probe.closed, 1, 2000));
    assert_int_equal(s.probe.nulls, 2);
    free(url);
}

/* A drained close still delivers the replies of what was sent. */
static void test_drain(void **state)
{
    fixture_t *f = *state;
    uv_loop_t *loop = &f->loop;
    probe_t p = {0};
    char *url;
    rds_async_t *c = connected(f, 0, &p, &url);
    for (int i = 0; i < 50; i++) {
        const char *argv[] = {"INCR", "n"};
        size_t lens[] = {4, 1};
        assert_int_equal(rds_async_command(c, on_reply, &p, 2, argv, lens), 0);
    }
    rds_async_close(c, true, on_closed, &p);
    assert_int_equal(p.replies + p.nulls, 0);
    assert_true(run_until(loop, &p.closed, 1, 3000));
    assert_int_equal(p.replies, 50);
    assert_string_equal(p.last, "50");
    free(url);
}

/* The synchronous connection notices that an idle connection died with
 * the server and opens a new one for the next command. */
static void test_sync_after_restart(void **state)
{
    fixture_t *f = *state;
    test_redis_t *r = &f->r;
    test_redis_start(r);
    for (int tcp = 0; tcp < 2; tcp++) {
        char *url = url_of(r, tcp, NULL);
        char err[512];
        rds_sync_t *s = rds_sync_new(url, 1000, err, sizeof err);
        redisReply *rep = rds_sync_command(s, err, sizeof err, "INCR restarts");
        assert_non_null(rep);
        freeReplyObject(rep);
        test_redis_stop(r);
        test_redis_start(r);
        rep = rds_sync_command(s, err, sizeof err, "PING");
        if (rep == NULL)
            fail_msg("after a restart: %s", err);
        assert_string_equal(rep->str, "PONG");
        freeReplyObject(rep);
        rep = rds_sync_command(s, err, sizeof err, "HGET nokey");
        assert_null(rep);
        assert_string_equal(err, "redis: ERR wrong number of arguments for 'hget' command");
        rds_sync_free(s);
        free(url);
    }
}

int main(void)
{
    harness_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unix_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_outages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_outages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_absent_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_absent_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_mode_after_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_limit_and_kick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub_resubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_after_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
