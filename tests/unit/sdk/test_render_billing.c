/* Unit tests of the tine command's usage tables, activation lists and
 * records, and log lines (sdk/cli/render_billing.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

typedef struct {
    char *text;
    size_t len;
    FILE *f;
} capture_t;

static void cap_open(capture_t *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
}

static const char *cap_close(capture_t *c)
{
    fclose(c->f);
    return c->text;
}

static const char usage_by_version[] =
    "{\"app\":\"shop\",\"from\":\"2026-11-01\",\"to\":\"2026-11-22\",\"by\":\"version\",\"rows\":["
    "{\"function\":\"get\",\"version\":1,\"invocations\":500,\"billed_ms\":50000,\"mb_ms\":6400000,"
    "\"gb_s\":\"6.25\",\"cost\":\"0.000204167000\",\"cost_pusd\":204167000},"
    "{\"function\":\"get\",\"version\":2,\"invocations\":3,\"billed_ms\":700,\"mb_ms\":89600,"
    "\"gb_s\":\"0.0875\",\"cost\":\"0.000002058336\",\"cost_pusd\":2058336}],"
    "\"total\":{\"invocations\":503,\"billed_ms\":50700,\"mb_ms\":6489600,\"gb_s\":\"6.3375\","
    "\"cost\":\"0.000206225336\",\"cost_pusd\":206225336}}";

static void test_usage_table_has_units_and_a_total(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_usage(usage_by_version, false, c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), "shop from 2026-11-01 to 2026-11-22\n"
                                       "FUNCTION  VERSION  INVOCATIONS  BILLED_UNITS  GB_S    COST\n"
                                       "get       1        500          500           6.25    0.000204167000\n"
                                       "get       2        3            7             0.0875  0.000002058336\n"
                                       "total              503          507           6.3375  0.000206225336\n");
    free(c.text);
}

static void test_usage_csv_has_rows_only(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_usage(usage_by_version, true, c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), "FUNCTION,VERSION,INVOCATIONS,BILLED_UNITS,GB_S,COST\n"
                                       "get,1,500,500,6.25,0.000204167000\n"
                                       "get,2,3,7,0.0875,0.000002058336\n");
    free(c.text);
}

static void test_usage_refuses_other_answers(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_usage("{\"apps\":[]}", false, c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (no usage rows)");
    assert_string_equal(cap_close(&c), "");
    free(c.text);
}

static void test_activations_and_one_record(void **state)
{
    (void)state;
    const char *rec = "{\"id\":\"ab12\",\"app\":\"shop\",\"function\":\"get\",\"version\":2,\"trigger\":\"http\","
                      "\"node\":\"n1\",\"start_ms\":1795330753283,\"duration_us\":230412,\"queued_us\":19,"
                      "\"cold\":true,\"cold_start_us\":953,\"cpu_us\":229000,\"billed\":true,\"billed_ms\":300,"
                      "\"memory_mb\":512,\"mb_ms\":153600,\"gb_s\":\"0.15\",\"cost\":\"0.000002700005\","
                      "\"timeout_ms\":3000,\"status\":200,\"outcome\":\"ok\","
                      "\"logs\":[{\"t\":1795330753290,\"level\":\"info\",\"msg\":\"hi\"}],\"logs_truncated\":false}";
    char list[2048];
    snprintf(list, sizeof list, "{\"app\":\"shop\",\"activations\":[%s]}", rec);
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_activations(list, c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c),
                        "ID    START                     FUNCTION  VERSION  TRIGGER  STATUS  DURATION    BILLED  "
                        "START_KIND\n"
                        "ab12  2026-11-22T06:59:13.283Z  get       2        http     200     230.412 ms  300 ms  "
                        "cold\n");
    free(c.text);
    cap_open(&c);
    assert_int_equal(cli_render_activation(rec, c.f, err, sizeof err), 0);
    const char *out = cap_close(&c);
    assert_non_null(strstr(out, "status:    200 (ok)\n"));
    assert_non_null(strstr(out, "duration:  230.412 ms (queued 0.019 ms)\n"));
    assert_non_null(strstr(out, "sandbox:   cold start, ready in 0.953 ms\n"));
    assert_non_null(strstr(out, "billed:    300 ms x 512 MB = 0.15 GB-s, cost 0.000002700005\n"));
    assert_non_null(strstr(out, "logs:      1 line\n  2026-11-22T06:59:13.290Z info hi\n"));
    free(c.text);
}

static void test_log_lines(void **state)
{
    (void)state;
    capture_t c;
    cap_open(&c);
    assert_int_equal(cli_render_log_line("{\"t\":1795330753290,\"app\":\"shop\",\"function\":\"get\",\"version\":2,"
                                         "\"id\":\"ab12\",\"level\":\"error\",\"msg\":\"no such item\"}",
                                         c.f),
                     0);
    assert_int_equal(cli_render_log_line("not json", c.f), -1);
    assert_string_equal(cap_close(&c), "2026-11-22T06:59:13.290Z get v2 error: no such item\n");
    free(c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_table_has_units_and_a_total),
        cmocka_unit_test(test_usage_csv_has_rows_only),
        cmocka_unit_test(test_usage_refuses_other_answers),
        cmocka_unit_test(test_activations_and_one_record),
        cmocka_unit_test(test_log_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
