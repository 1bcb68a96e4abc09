/* Tests of registry/model/release.c and the release and rollout blocks of
 * manifest.c: rollout decisions and latency quantiles,
 * tag names, the split's client buckets (stable, spread evenly, a share of
 * P% taking about P% of clients, a larger share keeping those a smaller one
 * took), the "N=PERCENT" of tine split, and `release: {pin,
 * client_header}` with its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app_model.h"
#include "tine_common.h"

static char err[1024];

static void test_tag_names(void **state)
{
    (void)state;
    static const char *const good[] = {"beta", "a", "rc-1", "canary2", "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const bad[] = {"",   "1", "7x", "-a", "Beta", "b_c", "a.b", "abcdefghijklmnopqrstuvwxyz0123456",
                                      "a b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(reg_tag_name_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(reg_tag_name_valid(bad[i], strlen(bad[i])));
}

static void test_split_buckets(void **state)
{
    (void)state;
    /* Stable: a key always lands in the same bucket. */
    assert_int_equal(reg_split_bucket("client-7", 8), reg_split_bucket("client-7", 8));
    assert_true(reg_split_bucket("", 0) < 10000);
    /* Even: 10 000 keys over 10 deciles, each within 5 sd of 1000 (sd 30). */
    unsigned deciles[10] = {0};
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "client-%d", i);
        unsigned b = reg_split_bucket(key, (size_t)n);
        assert_true(b < 10000);
        deciles[b / 1000]++;
    }
    for (int d = 0; d < 10; d++) {
        assert_in_range(deciles[d], 850, 1150);
    }
    /* A share takes about its percent; 0 takes nobody, 100 everybody; a
     * larger share keeps the clients of a smaller one (a rollout's steps
     * only add clients). */
    unsigned took[4] = {0};
    static const unsigned shares[4] = {0, 5, 25, 100};
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "c%d", i);
        bool prev = false;
        for (int s = 0; s < 4; s++) {
            bool in = reg_split_chooses(key, (size_t)n, shares[s]);
            assert_true(!prev || in);
            prev = in;
            took[s] += in;
        }
    }
    assert_int_equal(took[0], 0);
    assert_in_range(took[1], 400, 600);
    assert_in_range(took[2], 2300, 2700);
    assert_int_equal(took[3], 10000);
}

static void test_split_parse(void **state)
{
    (void)state;
    uint64_t v;
    unsigned p;
    assert_int_equal(reg_split_parse("2=10", &v, &p, err, sizeof err), 0);
    assert_int_equal(v, 2);
    assert_int_equal(p, 10);
    assert_int_equal(reg_split_parse("17=100%", &v, &p, err, sizeof err), 0);
    assert_int_equal(v, 17);
    assert_int_equal(p, 100);
    assert_int_equal(reg_split_parse("3=0", &v, &p, err, sizeof err), 0);
    assert_int_equal(p, 0);
    static const struct {
        const char *arg, *msg;
    } bad[] = {
        {"3", "expected VERSION=PERCENT such as 2=10, not '3'"},
        {"=10", "the version is missing in '=10'"},
        {"0=10", "'0' is not a version number >= 1"},
        {"x=10", "'x' is not a version number"},
        {"-1=10", "'-1' is not a version number"},
        {"3=101", "percent '101' is not a number from 0 to 100"},
        {"3=-5", "percent '-5' is not a number from 0 to 100"},
        {"3=", "percent '' is not a number from 0 to 100"},
        {"3=10x", "percent '10x' is not a number from 0 to 100"},
        {"3=99999999999999999999", "percent '99999999999999999999' is not a number from 0 to 100"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(reg_split_parse(bad[i].arg, &v, &p, err, sizeof err), TINE_EINVAL);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("%s: expected [%s] in [%s]", bad[i].arg, bad[i].msg, err);
    }
}

/* Parses a manifest with one function and the given extra line. */
static int parse_with(const char *line, reg_manifest_t **m)
{
    char text[4096];
    snprintf(text, sizeof text, "app: a\n%s\nfunctions: { f: { handler: f.lua#m } }\n", line);
    *m = NULL;
    return reg_manifest_parse("tine.yaml", text, strlen(text), m, err, sizeof err);
}

static void test_manifest_release(void **state)
{
    (void)state;
    reg_manifest_t *m;
    assert_int_equal(parse_with("", &m), 0);
    assert_false(m->release_pin);
    assert_null(m->release_client_header);
    reg_manifest_free(m);
    assert_int_equal(parse_with("release: { pin: true, client_header: X-User-Id }", &m), 0);
    assert_true(m->release_pin);
    assert_string_equal(m->release_client_header, "x-user-id");
    reg_manifest_free(m);
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"release: { pin: maybe }", "tine.yaml:2:17: release.pin: "},
        {"release: { client_header: 'a b' }", "release.client_header: 'a b' may hold only letters, digits"},
        {"release: { client_header: '' }", "release.client_header: '' must be 1..64 characters long"},
        {"release: { pins: true }", "release.pins: unknown key; expected one of pin, client_header"},
        {"release: true", "release: expected a mapping of pin, client_header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(parse_with(bad[i].line, &m), TINE_EINVAL);
        assert_null(m);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("%s: expected [%s] in [%s]", bad[i].line, bad[i].msg, err);
    }
}

static void test_manifest_rollout(void **state)
{
    (void)state;
    reg_manifest_t *m;
    assert_int_equal(parse_with("", &m), 0);
    assert_false(m->rollout.set);
    reg_manifest_free(m);
    assert_int_equal(parse_with("rollout: { steps: [5, 25, 50, 100], interval: 1m, max_error_rate: 1%, max_p99: 250ms, "
                                "min_requests: 20 }",
                                &m),
                     0);
    assert_true(m->rollout.set);
    assert_int_equal(m->rollout.nsteps, 4);
    assert_int_equal(m->rollout.steps[0], 5);
    assert_int_equal(m->rollout.steps[3], 100);
    assert_int_equal(m->rollout.interval_ms, 60000);
    assert_int_equal(m->rollout.max_error_permyriad, 100);
    assert_int_equal(m->rollout.max_p99_ms, 250);
    assert_int_equal(m->rollout.min_requests, 20);
    reg_manifest_free(m);
    /* Defaults; seconds; a fractional percent. */
    assert_int_equal(parse_with("rollout: { steps: [100], interval: 2s, max_error_rate: 0.5% }", &m), 0);
    assert_int_equal(m->rollout.interval_ms, 2000);
    assert_int_equal(m->rollout.max_error_permyriad, 50);
    assert_int_equal(m->rollout.max_p99_ms, 0);
    assert_int_equal(m->rollout.min_requests, 20);
    reg_manifest_free(m);
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"rollout: { interval: 1m }", "rollout: missing required key 'steps'"},
        {"rollout: { steps: [] }", "rollout.steps: expected a list of percents ending with 100"},
        {"rollout: { steps: [5, 50] }", "rollout.steps: the last step must be 100"},
        {"rollout: { steps: [50, 25, 100] }", "rollout.steps[1]: steps must grow: 25 comes after 50"},
        {"rollout: { steps: [0, 100] }", "rollout.steps[0]: 0 is out of range 1..100"},
        {"rollout: { steps: [5, 101] }", "rollout.steps[1]: 101 is out of range 1..100"},
        {"rollout: { steps: [100], interval: 500ms }", "rollout.interval: '500ms' is out of range 1s..24h"},
        {"rollout: { steps: [100], interval: 5 }",
         "rollout.interval: expected a duration such as 2s or 1m, got the bare number 5"},
        {"rollout: { steps: [100], max_error_rate: 101% }", "rollout.max_error_rate: '101%' is out of range 0%..100%"},
        {"rollout: { steps: [100], max_error_rate: 1 }",
         "rollout.max_error_rate: expected a percent such as 1% or 0.5%"},
        {"rollout: { steps: [100], max_error_rate: 0.123% }", "at most two decimals"},
        {"rollout: { steps: [100], max_p99: fast }", "rollout.max_p99: expected a duration"},
        {"rollout: { steps: [100], min_requests: 0 }", "rollout.min_requests: 0 is out of range 1..1000000"},
        {"rollout: { steps: [100], wait: 1m }", "rollout.wait: unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(parse_with(bad[i].line, &m), TINE_EINVAL);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("%s: expected [%s] in [%s]", bad[i].line, bad[i].msg, err);
    }
}

/* Stats of n requests, e of them errors, each taking ms milliseconds. */
static reg_version_stats_t stats(uint64_t n, uint64_t e, uint32_t ms)
{
    reg_version_stats_t s = {.requests = n, .errors = e};
    s.buckets[reg_latency_bucket((uint64_t)ms * 1000000u)] = n;
    return s;
}

static void test_rollout_decide(void **state)
{
    (void)state;
    reg_rollout_t r = {.set = true,
                       .steps = {5, 100},
                       .nsteps = 2,
                       .interval_ms = 2000,
                       .max_error_permyriad = 100,
                       .max_p99_ms = 250,
                       .min_requests = 20};
    char why[256];
    reg_version_stats_t s = stats(19, 19, 5);
    /* Under min_requests nothing is judged, even all errors. */
    assert_int_equal(reg_rollout_decide(&r, &s, false, why, sizeof why), REG_ROLLOUT_WAIT);
    assert_int_equal(reg_rollout_decide(&r, &s, true, why, sizeof why), REG_ROLLOUT_WAIT);
    assert_non_null(strstr(why, "waiting for 1 more requests (min_requests 20)"));
    /* Errors over the bound break it before the interval is over. */
    s = stats(100, 2, 5);
    assert_int_equal(reg_rollout_decide(&r, &s, false, why, sizeof why), REG_ROLLOUT_BREACH);
    assert_non_null(strstr(why, "error rate 2.00% (2 of 100 requests) is over max_error_rate 1.00%"));
    /* At the bound is fine: 1 of 100 is 1%. */
    s = stats(100, 1, 5);
    assert_int_equal(reg_rollout_decide(&r, &s, false, why, sizeof why), REG_ROLLOUT_WAIT);
    assert_int_equal(reg_rollout_decide(&r, &s, true, why, sizeof why), REG_ROLLOUT_ADVANCE);
    /* Slowness: p99 in the 500 ms bucket is over 250 ms. */
    s = stats(99, 0, 5);
    s.requests = 100;
    s.buckets[reg_latency_bucket(400u * 1000000u)] = 1;
    assert_int_equal(reg_rollout_decide(&r, &s, false, why, sizeof why), REG_ROLLOUT_WAIT); /* 1 slow of 100: p99 ok */
    s.requests = 102;
    s.buckets[reg_latency_bucket(400u * 1000000u)] = 3;
    assert_int_equal(reg_rollout_decide(&r, &s, false, why, sizeof why), REG_ROLLOUT_BREACH);
    assert_non_null(strstr(why, "p99 up to 500ms is over max_p99 250ms"));
    /* Without max_p99 slowness is not judged. */
    r.max_p99_ms = 0;
    assert_int_equal(reg_rollout_decide(&r, &s, true, why, sizeof why), REG_ROLLOUT_ADVANCE);
}

static void test_quantiles(void **state)
{
    (void)state;
    reg_version_stats_t s = {0};
    assert_int_equal(reg_stats_quantile_ms(&s, 0.5), 0);
    assert_int_equal(reg_latency_bucket(0), 0);
    assert_int_equal(reg_latency_bucket(1000000), 0); /* 1 ms: the 1 ms bucket */
    assert_int_equal(reg_latency_bucket(1000001), 1); /* just over */
    assert_int_equal(reg_latency_bucket(UINT64_MAX), REG_LATENCY_BUCKETS - 1);
    for (int i = 0; i < 50; i++)
        s.buckets[reg_latency_bucket(3000000)]++; /* 3 ms */
    for (int i = 0; i < 49; i++)
        s.buckets[reg_latency_bucket(80000000)]++; /* 80 ms */
    s.buckets[REG_LATENCY_BUCKETS - 1]++;          /* over 10 s */
    assert_int_equal(reg_stats_quantile_ms(&s, 0.5), 5);
    assert_int_equal(reg_stats_quantile_ms(&s, 0.99), 100);
    assert_int_equal(reg_stats_quantile_ms(&s, 1.0), UINT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tag_names),        cmocka_unit_test(test_split_buckets),
        cmocka_unit_test(test_split_parse),      cmocka_unit_test(test_manifest_release),
        cmocka_unit_test(test_manifest_rollout), cmocka_unit_test(test_rollout_decide),
        cmocka_unit_test(test_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
