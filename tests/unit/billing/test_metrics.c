/* Tests of billing/metrics.c and the recorder's observer without Redis:
 * counting per app, function and status, histograms, label escaping, and
 * that records wait (bounded) while Redis is unreachable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "billing.h"

static inv_activation_t activation(const char *fn, int status, uint64_t duration_ms, bool cold)
{
    inv_activation_t a = {
        .invocation_id = "00112233445566778899aabbccddeeff",
        .app = "shop",
        .version = 3,
        .function = fn,
        .trigger = "http",
        .start_unix_ms = 1795330753283ull,
        .duration_ns = duration_ms * 1000000ull,
        .cold = cold,
        .cold_start_ns = cold ? 2000000ull : 0,
        .dispatched = true,
        .memory_mb = 128,
        .timeout_ms = 3000,
        .status = status,
    };
    return a;
}

static char *render(bill_t *b)
{
    tine_buf_t out;
    tine_buf_init(&out);
    bill_metrics_render(b, &out);
    tine_buf_append(&out, "", 1);
    return out.data;
}

static bill_t *unreachable_bill(uv_loop_t *loop)
{
    bill_config_t cfg = {.redis_url = "unix:///nonexistent/tine-test.sock", .node_id = "n1"};
    char err[128];
    assert_int_equal(bill_parse_price(BILL_DEFAULT_PRICE_GB_S, &cfg.prices.gb_s_pusd, err, sizeof err), 0);
    assert_int_equal(bill_parse_price(BILL_DEFAULT_PRICE_REQUEST, &cfg.prices.request_pusd, err, sizeof err), 0);
    return bill_new(loop, &cfg);
}

static void close_bill(uv_loop_t *loop, bill_t *b)
{
    bill_free(b);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_counts_by_status_and_observes_durations(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bill_t *b = unreachable_bill(&loop);
    inv_activation_t a = activation("get", 200, 30, true);
    bill_on_activation(b, &a);
    a = activation("get", 200, 230, false);
    bill_on_activation(b, &a);
    a = activation("get", 504, 3000, false);
    a.code = TINE_ETIMEOUT;
    bill_on_activation(b, &a);
    char *m = render(b);
    assert_non_null(strstr(m, "# TYPE tine_invocations_total counter\n"));
    assert_non_null(strstr(m, "tine_invocations_total{app=\"shop\",function=\"get\",status=\"200\"} 2\n"));
    assert_non_null(strstr(m, "tine_invocations_total{app=\"shop\",function=\"get\",status=\"504\"} 1\n"));
    assert_non_null(strstr(m, "tine_invocation_duration_seconds_bucket{app=\"shop\",function=\"get\",le=\"0.05\"} 1\n"));
    assert_non_null(strstr(m, "tine_invocation_duration_seconds_bucket{app=\"shop\",function=\"get\",le=\"0.25\"} 2\n"));
    assert_non_null(strstr(m, "tine_invocation_duration_seconds_bucket{app=\"shop\",function=\"get\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(m, "tine_invocation_duration_seconds_sum{app=\"shop\",function=\"get\"} 3.260000000\n"));
    assert_non_null(strstr(m, "tine_cold_starts_total{app=\"shop\",function=\"get\"} 1\n"));
    assert_non_null(strstr(m, "tine_cold_start_seconds_sum{app=\"shop\",function=\"get\"} 0.002000000\n"));
    /* 100 + 300 + 3000 (the timeout) ms */
    assert_non_null(strstr(m, "tine_billed_seconds_total{app=\"shop\",function=\"get\"} 3.400000000\n"));
    /* 128 MB: (0.0125 + 0.0375 + 0.375) GB-s at the default price, + 3 requests */
    assert_non_null(strstr(m, "tine_cost_dollars_total{app=\"shop\",function=\"get\"} 0.000007683348\n"));
    /* Redis is unreachable: the records wait */
    assert_non_null(strstr(m, "tine_activations_pending 3\n"));
    assert_non_null(strstr(m, "tine_activations_dropped_total 0\n"));
    free(m);
    close_bill(&loop, b);
}

static void test_calls_that_never_ran_bill_nothing(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bill_t *b = unreachable_bill(&loop);
    inv_activation_t a = activation("get", 503, 0, false);
    a.dispatched = false;
    a.code = TINE_EBUSY;
    bill_on_activation(b, &a);
    char *m = render(b);
    assert_non_null(strstr(m, "status=\"503\"} 1\n"));
    assert_non_null(strstr(m, "tine_billed_seconds_total{app=\"shop\",function=\"get\"} 0.000000000\n"));
    assert_non_null(strstr(m, "tine_cost_dollars_total{app=\"shop\",function=\"get\"} 0.000000000000\n"));
    assert_non_null(strstr(m, "tine_invocation_duration_seconds_count{app=\"shop\",function=\"get\"} 0\n"));
    free(m);
    close_bill(&loop, b);
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    tine_buf_t out;
    tine_buf_init(&out);
    bill_prom_escape(&out, "a\"b\\c\nd");
    tine_buf_append(&out, "", 1);
    assert_string_equal(out.data, "a\\\"b\\\\c\\nd");
    tine_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_by_status_and_observes_durations),
        cmocka_unit_test(test_calls_that_never_ran_bill_nothing),
        cmocka_unit_test(test_label_values_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
