/* redis/url.c: the one Redis URL parser, its messages and the redacted form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "tine_redis.h"

static void parse_ok(const char *text, rds_url_t *u)
{
    char err[512] = "";
    int rc = rds_url_parse(text, u, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", text, err);
}

/* Parses a bad URL and returns its message (static buffer). */
static const char *parse_bad(const char *text)
{
    static char err[512];
    rds_url_t u;
    err[0] = '\0';
    assert_int_equal(rds_url_parse(text, &u, err, sizeof err), TINE_EINVAL);
    assert_null(u.redacted);
    assert_null(u.password);
    return err;
}

static void test_unix(void **state)
{
    rds_url_t u;
    parse_ok("unix:///run/tine/redis.sock", &u);
    assert_int_equal(u.transport, RDS_UNIX);
    assert_string_equal(u.path, "/run/tine/redis.sock");
    assert_int_equal(u.db, -1);
    assert_null(u.password);
    assert_null(u.user);
    assert_int_equal(u.naddrs, 0);
    assert_string_equal(u.redacted, "unix:///run/tine/redis.sock");
    rds_url_dispose(&u);

    parse_ok("unix://:s3cret@/tmp/r.sock?db=3", &u);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_string_equal(u.password, "s3cret");
    assert_null(u.user);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.redacted, "unix://:***@/tmp/r.sock?db=3");
    rds_url_dispose(&u);

    parse_ok("unix://alice:pw@/tmp/with%20space.sock", &u);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.path, "/tmp/with space.sock");
    rds_url_dispose(&u);
}

static void test_tcp(void **state)
{
    rds_url_t u;
    parse_ok("redis://127.0.0.1:6390", &u);
    assert_int_equal(u.transport, RDS_TCP);
    assert_int_equal(u.naddrs, 1);
    assert_string_equal(u.addrs[0].host, "127.0.0.1");
    assert_int_equal(u.addrs[0].port, 6390);
    assert_int_equal(u.db, -1);
    assert_null(u.master);
    rds_url_dispose(&u);

    parse_ok("redis://redis.internal", &u);
    assert_string_equal(u.addrs[0].host, "redis.internal");
    assert_int_equal(u.addrs[0].port, 6379);
    rds_url_dispose(&u);

    parse_ok("redis://:pa%40ss%3Aw%2Fd@[::1]:7000/2", &u);
    assert_string_equal(u.addrs[0].host, "::1");
    assert_int_equal(u.addrs[0].port, 7000);
    assert_int_equal(u.db, 2);
    assert_null(u.user);
    assert_string_equal(u.password, "pa@ss:w/d");
    assert_string_equal(u.redacted, "redis://:***@[::1]:7000/2");
    rds_url_dispose(&u);

    parse_ok("redis://app%2Bone:x@h/", &u);
    assert_string_equal(u.user, "app+one");
    assert_string_equal(u.password, "x");
    assert_int_equal(u.db, -1);
    assert_string_equal(u.redacted, "redis://app%2Bone:***@h/");
    rds_url_dispose(&u);

    /* An '@' left unencoded in the password: the last '@' ends it. */
    parse_ok("redis://:a@b@h:1", &u);
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.addrs[0].host, "h");
    assert_string_equal(u.redacted, "redis://:***@h:1");
    rds_url_dispose(&u);
}

static void test_tls(void **state)
{
    rds_url_t u;
    parse_ok("rediss://:pw@redis.example.com:6380/1?cacert=/etc/tine/ca.pem", &u);
    assert_int_equal(u.transport, RDS_TLS);
    assert_string_equal(u.addrs[0].host, "redis.example.com");
    assert_int_equal(u.addrs[0].port, 6380);
    assert_int_equal(u.db, 1);
    assert_string_equal(u.cacert, "/etc/tine/ca.pem");
    assert_null(u.cert);
    rds_url_dispose(&u);

    parse_ok("rediss://h?cacert=/ca.pem&cert=/c.pem&key=/k.pem", &u);
    assert_string_equal(u.cert, "/c.pem");
    assert_string_equal(u.key, "/k.pem");
    assert_int_equal(u.addrs[0].port, 6379);
    rds_url_dispose(&u);

    parse_ok("rediss://h", &u);
    assert_null(u.cacert);
    rds_url_dispose(&u);
}

static void test_bad(void **state)
{
    assert_string_equal(
        parse_bad("http://h:1"),
        "redis URL 'http://h:1': expected unix:///path/to/socket, redis://HOST[:PORT][/DB], "
        "rediss://HOST[:PORT][/DB] or redis-sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER");
    assert_string_equal(parse_bad("redis://h:99999"),
                        "redis URL 'redis://h:99999': port '99999': expected a number from 1 to 65535");
    assert_string_equal(parse_bad("redis://h:"), "redis URL 'redis://h:': port '': expected a number from 1 to 65535");
    assert_string_equal(parse_bad("redis://h:12x"),
                        "redis URL 'redis://h:12x': port '12x': expected a number from 1 to 65535");
    assert_string_equal(parse_bad("redis://:6379"),
                        "redis URL 'redis://:6379': no host (expected redis://HOST[:PORT][/DB])");
    assert_string_equal(parse_bad("redis://h/abc"),
                        "redis URL 'redis://h/abc': database 'abc': expected a number from 0 to 1000000");
    assert_string_equal(parse_bad("redis://[::1:6379"),
                        "redis URL 'redis://[::1:6379': an IPv6 address needs its closing ']'");
    assert_string_equal(parse_bad("redis://h?db=2"), "redis URL 'redis://h?db=2': unknown parameter 'db' (expected "
                                                     "none; the database goes in the path: redis://HOST:PORT/DB)");
    assert_string_equal(parse_bad("unix://relative/sock"),
                        "redis URL 'unix://relative/sock': expected an absolute socket path: unix:///path/to/socket "
                        "or unix://:PASSWORD@/path");
    assert_string_equal(parse_bad("unix:///s?db=x"),
                        "redis URL 'unix:///s?db=x': db 'x': expected a number from 0 to 1000000");
    assert_string_equal(parse_bad("unix:///s?cacert=/x"),
                        "redis URL 'unix:///s?cacert=/x': unknown parameter 'cacert' (expected db=N)");
    assert_string_equal(parse_bad("rediss://h?cacert=ca.pem"),
                        "redis URL 'rediss://h?cacert=ca.pem': cacert: expected the absolute path of a PEM file");
    assert_string_equal(parse_bad("rediss://h?cert=/c.pem"),
                        "redis URL 'rediss://h?cert=/c.pem': a client certificate needs both cert= and key=");
    assert_string_equal(parse_bad("redis://:@h"), "redis URL 'redis://:***@h': the password after ':' is empty");
}

/* redis-sentinel://: the sentinels (port 26379 unless given), the master's
 * name, the master's credentials before '@', the sentinels' in the query. */
static void test_sentinel(void **state)
{
    rds_url_t u;
    parse_ok("redis-sentinel://10.0.0.1:26380,sentinel-b,[::1]:5000/mymaster", &u);
    assert_int_equal(u.transport, RDS_SENTINEL);
    assert_int_equal(u.naddrs, 3);
    assert_string_equal(u.addrs[0].host, "10.0.0.1");
    assert_int_equal(u.addrs[0].port, 26380);
    assert_string_equal(u.addrs[1].host, "sentinel-b");
    assert_int_equal(u.addrs[1].port, 26379);
    assert_string_equal(u.addrs[2].host, "::1");
    assert_int_equal(u.addrs[2].port, 5000);
    assert_string_equal(u.master, "mymaster");
    assert_null(u.password);
    assert_null(u.sentinel_password);
    assert_int_equal(u.db, -1);
    assert_null(u.path);
    rds_url_dispose(&u);

    parse_ok("redis-sentinel://tine:p%40ss@h:1/my%2Dmaster?db=4&sentinel_password=s%26p&sentinel_user=watcher", &u);
    assert_int_equal(u.naddrs, 1);
    assert_string_equal(u.user, "tine");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.master, "my-master");
    assert_int_equal(u.db, 4);
    assert_string_equal(u.sentinel_password, "s&p");
    assert_string_equal(u.sentinel_user, "watcher");
    assert_string_equal(u.redacted,
                        "redis-sentinel://tine:***@h:1/my%2Dmaster?db=4&sentinel_password=***&sentinel_user=watcher");
    rds_url_dispose(&u);

    assert_string_equal(parse_bad("redis-sentinel://h:1,h:2"),
                        "redis URL 'redis-sentinel://h:1,h:2': no master name (expected "
                        "redis-sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER)");
    assert_string_equal(parse_bad("redis-sentinel://h:1,,h:2/m"),
                        "redis URL 'redis-sentinel://h:1,,h:2/m': no host in '' (expected "
                        "redis-sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER)");
    assert_string_equal(parse_bad("redis-sentinel://h:0/m"),
                        "redis URL 'redis-sentinel://h:0/m': port '0': expected a number from 1 to 65535");
    assert_string_equal(parse_bad("redis-sentinel://h/a%20b"),
                        "redis URL 'redis-sentinel://h/a%20b': the master name 'a b' holds a space, '/' or a byte "
                        "outside printable ASCII");
    assert_string_equal(parse_bad("redis-sentinel://h/m?cacert=/x"),
                        "redis URL 'redis-sentinel://h/m?cacert=/x': unknown parameter 'cacert' (expected db=N, "
                        "sentinel_password= or sentinel_user=)");
    assert_string_equal(parse_bad("redis-sentinel://h/m?sentinel_user=u"),
                        "redis URL 'redis-sentinel://h/m?sentinel_user=u': sentinel_user= needs sentinel_password=");
    assert_string_equal(parse_bad("rediss-sentinel://h/m"),
                        "redis URL 'rediss-sentinel://h/m': Sentinel over TLS is not supported (expected "
                        "redis-sentinel://, or rediss:// for one server)");
    /* The sentinels' password is never shown either. */
    const char *msg = parse_bad("redis-sentinel://h/m?sentinel_password=hunter2&bad=1");
    assert_null(strstr(msg, "hunter2"));
    assert_non_null(strstr(msg, "sentinel_password=***&bad=1"));
    char many[1024] = "redis-sentinel://";
    for (int i = 0; i < 17; i++)
        strcat(many, i ? ",h:1" : "h:1");
    strcat(many, "/m");
    assert_non_null(strstr(parse_bad(many), "more than 16 sentinels"));
}

/* No message ever shows a password, however the URL is broken. */
static void test_messages_hide_the_password(void **state)
{
    const char *urls[] = {
        "redis://:hunter2@h:0",     "redis://:hunter2@h:1/x", "redis://hunter2@h:1",      "redis://:hunter2%zz@h",
        "unix://:hunter2@rel/sock", "redis://u:hunter2@:1",   "rediss://:hunter2@h?x=1",  "redis://:hunter2@h:x",
        "unix://:hunter2@/s?db=-1", "redis://u%ZZ:hunter2@h", "redis://:hunter2@h:1?a@b", "redis://:hunter2%00@h",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        const char *msg = parse_bad(urls[i]);
        if (strstr(msg, "hunter2"))
            fail_msg("%s gives a message with the password: %s", urls[i], msg);
        assert_non_null(strstr(msg, "***"));
    }
    assert_string_equal(parse_bad("redis://hunter2@h:1"),
                        "redis URL 'redis://***@h:1': the part before '@' has no ':': give the password as "
                        ":PASSWORD@ (or USER:PASSWORD@)");
    assert_string_equal(parse_bad("redis://:hunter2%zz@h"),
                        "redis URL 'redis://:***@h': bad percent-encoding in the password");
    rds_url_t u;
    parse_ok("redis://:hun/ter2@h:1", &u); /* an unencoded '/' in the password is taken as is */
    assert_string_equal(u.password, "hun/ter2");
    assert_string_equal(u.redacted, "redis://:***@h:1");
    rds_url_dispose(&u);
    char *r = rds_url_redact("redis://alice:hunter2@h:1/0");
    assert_string_equal(r, "redis://alice:***@h:1/0");
    free(r);
    r = rds_url_redact("unix:///tmp/sock");
    assert_string_equal(r, "unix:///tmp/sock");
    free(r);
}

static void test_dispose_twice(void **state)
{
    rds_url_t u;
    parse_ok("redis://:x@h", &u);
    rds_url_dispose(&u);
    rds_url_dispose(&u);
    assert_null(u.password);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix),          cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tls),           cmocka_unit_test(test_bad),
        cmocka_unit_test(test_sentinel),      cmocka_unit_test(test_messages_hide_the_password),
        cmocka_unit_test(test_dispose_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
