/* Unit tests of the tine command's tables and lines built from admin API
 * answers (sdk/cli/render.c). Expected outputs are written out in full so
 * a change of alignment or wording shows up here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli.h"

/* Captures what a renderer prints. */
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

static void test_table_aligns_columns(void **state)
{
    (void)state;
    static const char *const head[] = {"A", "LONGER", "C"};
    cli_table_t t;
    cli_table_init(&t, 3, head);
    const char *r1[] = {"wide-cell", "x", "last"};
    const char *r2[] = {"y", NULL, "z"};
    const char *r3[] = {"é", "ü-ü", "-"}; /* widths count code points, not bytes */
    cli_table_add(&t, r1);
    cli_table_add(&t, r2);
    cli_table_add(&t, r3);
    capture_t c;
    cap_open(&c);
    cli_table_print(&t, c.f);
    cli_table_dispose(&t);
    assert_string_equal(cap_close(&c), "A          LONGER  C\n"
                                       "wide-cell  x       last\n"
                                       "y          -       z\n"
                                       "é          ü-ü     -\n");
    free(c.text);
}

static void test_apps_table(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_apps("{\"apps\":[{\"app\":\"hello\",\"live\":3,\"versions\":3},"
                                     "{\"app\":\"shop-backend\",\"live\":12,\"versions\":15},"
                                     "{\"app\":\"new\",\"live\":0,\"versions\":0}]}",
                                     c.f, err, sizeof err),
                     0);
    assert_string_equal(cap_close(&c), "APP           LIVE  VERSIONS\n"
                                       "hello         3     3\n"
                                       "shop-backend  12    15\n"
                                       "new           -     0\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(cli_render_apps("{\"apps\":[]}", c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), "APP  LIVE  VERSIONS\n");
    free(c.text);
}

static void test_bad_answers_are_reported(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_apps("{\"nope\":1}", c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (no \"apps\" list)");
    assert_int_equal(cli_render_versions("[1]", c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (not a JSON object)");
    assert_int_equal(cli_render_routes("{", c.f, err, sizeof err), -1);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(cli_render_deploy("{\"app\":\"x\"}", c.f, err, sizeof err), -1);
    assert_int_equal(cli_render_rollback("{\"live\":1}", c.f, err, sizeof err), -1);
    assert_string_equal(cap_close(&c), "");
    free(c.text);
}

static void test_versions_table_marks_live(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(
        cli_render_versions("{\"app\":\"hello\",\"live\":2,\"versions\":["
                            "{\"version\":1,\"created\":\"2026-11-22T06:00:00Z\",\"files\":3,"
                            "\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},"
                            "{\"version\":2,\"created\":\"2026-11-22T07:30:00Z\",\"files\":12,"
                            "\"sha256\":\"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\"},"
                            "{\"version\":10,\"created\":\"2026-11-23T07:30:00Z\",\"files\":4,\"sha256\":\"ab\","
                            "\"digest\":\"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\"}]}",
                            c.f, err, sizeof err),
        0);
    /* The whole digest; "-" for a version stored before digests. */
    assert_string_equal(cap_close(&c),
                        "  VERSION  CREATED               FILES  DIGEST\n"
                        "  1        2026-11-22T06:00:00Z  3      -\n"
                        "* 2        2026-11-22T07:30:00Z  12     -\n"
                        "  10       2026-11-23T07:30:00Z  4      "
                        "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n");
    free(c.text);
}

static void test_routes_table(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(
        cli_render_routes(
            "{\"app\":\"hello\",\"version\":3,"
            "\"routes\":[{\"method\":\"GET\",\"path\":\"/hello/hi\",\"function\":\"hi\"},"
            "{\"method\":\"POST\",\"path\":\"/hello/items/:id\",\"function\":\"put_item\"}],"
            "\"triggers\":[{\"on\":\"schedule\",\"cron\":\"*/5 * * * *\",\"function\":\"tick\",\"attempts\":3},"
            "{\"on\":\"log\",\"source\":\"file:/var/log/x\",\"filter\":\"\\\"ERROR\\\"\",\"function\":\"alert\"},"
            "{\"on\":\"event\",\"type\":\"container.die\",\"source\":\"docker*\",\"function\":\"on_gone\"}],"
            "\"functions\":[]}",
            c.f, err, sizeof err),
        0);
    assert_string_equal(cap_close(&c), "TRIGGER                                  FUNCTION  VERSION\n"
                                       "GET /hello/hi                            hi        3\n"
                                       "POST /hello/items/:id                    put_item  3\n"
                                       "schedule */5 * * * *                     tick      3\n"
                                       "log file:/var/log/x (filter \"ERROR\")     alert     3\n"
                                       "event type=container.die source=docker*  on_gone   3\n");
    free(c.text);
}

static char *describe(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    char *s = cli_describe_trigger(j);
    json_decref(j);
    return s;
}

static void test_describe_trigger_variants(void **state)
{
    (void)state;
    struct {
        const char *json, *want;
    } cases[] = {
        {"{\"on\":\"schedule\",\"spec\":\"@every 30s\"}", "schedule @every 30s"},
        {"{\"on\":\"log\",\"source\":\"function:get_item\"}", "log function:get_item"},
        {"{\"on\":\"log\",\"spec\":\"file:/a\",\"filter\":\"level=error\"}", "log file:/a (filter level=error)"},
        {"{\"on\":\"event\",\"type\":\"machine.*\"}", "event type=machine.*"},
        {"{\"on\":\"event\",\"spec\":\"type=x\"}", "event type=x"},
        {"{\"on\":\"webhook\",\"spec\":\"github\"}", "webhook github"},
        {"{}", "trigger"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = describe(cases[i].json);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
}

static void test_deploy_and_rollback_lines(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_deploy("{\"app\":\"hello\",\"version\":4}", c.f, err, sizeof err), 0);
    assert_int_equal(cli_render_rollback("{\"app\":\"hello\",\"live\":2}", c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), "deployed hello version 4\nhello: live version is now 2\n");
    free(c.text);
}

static void test_what_this_node_serves(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_apps("{\"apps\":[{\"app\":\"hello\",\"live\":3,\"versions\":3,\"serving\":3},"
                                     "{\"app\":\"shop\",\"live\":12,\"versions\":15,\"serving\":11,"
                                     "\"problem\":\"cannot write x: No space left on device\"},"
                                     "{\"app\":\"new\",\"live\":2,\"versions\":2,\"serving\":0}]}",
                                     c.f, err, sizeof err),
                     0);
    assert_string_equal(cap_close(&c), "APP    LIVE                 VERSIONS\n"
                                       "hello  3                    3\n"
                                       "shop   12 (this node: 11)   15\n"
                                       "new    2 (this node: none)  2\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(
        cli_render_versions("{\"app\":\"hello\",\"live\":2,\"node\":\"vm:8080\",\"serving\":1,"
                            "\"problem\":\"cannot write /s/bundles/hello/2: No space left on device\","
                            "\"versions\":[{\"version\":1,\"created\":\"c\",\"files\":3,\"sha256\":\"ab\"},"
                            "{\"version\":2,\"created\":\"d\",\"files\":3,\"sha256\":\"cd\"}]}",
                            c.f, err, sizeof err),
        0);
    assert_string_equal(cap_close(&c), "  VERSION  CREATED  FILES  DIGEST\n"
                                       "  1        c        3      -\n"
                                       "* 2        d        3      -\n"
                                       "node vm:8080 serves version 1, not the live version 2: cannot write "
                                       "/s/bundles/hello/2: No space left on device (it retries)\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(
        cli_render_versions("{\"app\":\"hello\",\"live\":2,\"node\":\"vm:8080\",\"serving\":2,"
                            "\"versions\":[{\"version\":2,\"created\":\"d\",\"files\":3,\"sha256\":\"cd\"}]}",
                            c.f, err, sizeof err),
        0);
    assert_string_equal(cap_close(&c), "  VERSION  CREATED  FILES  DIGEST\n"
                                       "* 2        d        3      -\n"
                                       "node vm:8080 serves version 2\n");
    free(c.text);
}

static void test_unchanged_delete_prune_lines(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(
        cli_render_deploy("{\"app\":\"hello\",\"version\":4,\"live\":4,\"unchanged\":true}", c.f, err, sizeof err), 0);
    assert_int_equal(cli_render_delete("{\"app\":\"hello\",\"deleted\":{\"versions\":3,\"files\":4,\"kv_keys\":1,"
                                       "\"dead_letters\":0,\"activations\":40},\"kept\":[\"usage\"]}",
                                       c.f, err, sizeof err),
                     0);
    assert_int_equal(cli_render_prune("{\"app\":\"hello\",\"live\":2,\"pruned\":[1,3],\"kept\":[2,4],"
                                      "\"files_deleted\":1}",
                                      c.f, err, sizeof err),
                     0);
    assert_int_equal(cli_render_prune("{\"app\":\"hello\",\"live\":2,\"pruned\":[],\"kept\":[2],\"files_deleted\":0}",
                                      c.f, err, sizeof err),
                     0);
    assert_string_equal(cap_close(&c),
                        "unchanged: hello version 4 is live (tine deploy --force makes a new version)\n"
                        "deleted hello: 3 versions, 1 tine.kv key, 0 dead letters, 40 activation records (its usage "
                        "is kept for billing: tine usage hello)\n"
                        "hello: pruned versions 1, 3; kept 2, 4 (live 2); 1 stored file no longer used removed\n"
                        "hello: nothing to prune; kept 2 (live 2); 0 stored files no longer used removed\n");
    free(c.text);
    cap_open(&c);
    assert_int_equal(cli_render_delete("{\"app\":\"x\"}", c.f, err, sizeof err), -1);
    assert_int_equal(cli_render_prune("{\"app\":\"x\",\"pruned\":[]}", c.f, err, sizeof err), -1);
    assert_string_equal(cap_close(&c), "");
    free(c.text);
}

static void test_public_urls(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_public_urls("{\"routes\":[{\"method\":\"GET\",\"path\":\"/hello/\"},"
                                            "{\"method\":\"ANY\",\"path\":\"/hello/files/*rest\"}],\"triggers\":[]}",
                                            "http://127.0.0.1:8080/", c.f, err, sizeof err),
                     0);
    assert_string_equal(cap_close(&c), "GET http://127.0.0.1:8080/hello/\n"
                                       "ANY http://127.0.0.1:8080/hello/files/*rest\n");
    free(c.text);
}

static void test_invoke_prints_body(void **state)
{
    (void)state;
    capture_t out, err;
    cap_open(&out);
    cap_open(&err);
    const char *answer = "{\"invocation_id\":\"inv-1\",\"status\":200,\"headers\":{},\"body\":\"hello world\","
                         "\"duration_ms\":1.25,\"cold\":true}";
    assert_int_equal(cli_render_invoke(answer, "hello", "hi", false, false, false, out.f, err.f), CLI_OK);
    /* Not a terminal: the body exactly, no newline added. */
    assert_int_equal(cli_render_invoke(answer, "hello", "hi", false, true, true, out.f, err.f), CLI_OK);
    assert_string_equal(cap_close(&out), "hello worldhello world\n");
    assert_string_equal(cap_close(&err), "status 200, invocation inv-1, 1.250 ms, cold\n");
    free(out.text);
    free(err.text);
}

static void test_invoke_body_with_nul_bytes(void **state)
{
    (void)state;
    capture_t out, err;
    cap_open(&out);
    cap_open(&err);
    assert_int_equal(
        cli_render_invoke("{\"status\":201,\"body\":\"a\\u0000b\"}", "a", "f", false, false, false, out.f, err.f),
        CLI_OK);
    cap_close(&out);
    cap_close(&err);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.text, "a\0b", 3);
    free(out.text);
    free(err.text);
}

static void test_invoke_failure_exits_1(void **state)
{
    (void)state;
    capture_t out, err;
    cap_open(&out);
    cap_open(&err);
    const char *answer = "{\"invocation_id\":\"inv-9\",\"status\":500,\"body\":\"\",\"error\":\"src/hi.lua:3: boom\"}";
    assert_int_equal(cli_render_invoke(answer, "hello", "hi", false, false, false, out.f, err.f), CLI_FAIL);
    /* With --json the whole answer goes to stdout, and the exit code still tells. */
    assert_int_equal(cli_render_invoke(answer, "hello", "hi", true, false, false, out.f, err.f), CLI_FAIL);
    /* A 4xx from the function is its answer, not a failure of the call. */
    assert_int_equal(cli_render_invoke("{\"status\":404,\"body\":\"no such item\"}", "hello", "hi", false, false, false,
                                       out.f, err.f),
                     CLI_OK);
    assert_string_equal(cap_close(&out), "{\"invocation_id\":\"inv-9\",\"status\":500,\"body\":\"\",\"error\":"
                                         "\"src/hi.lua:3: boom\"}\nno such item");
    assert_string_equal(cap_close(&err),
                        "tine: hello.hi failed with status 500: src/hi.lua:3: boom (invocation inv-9)\n"
                        "tine: hello.hi failed with status 500: src/hi.lua:3: boom (invocation inv-9)\n");
    free(out.text);
    free(err.text);
}

static void test_invoke_malformed_answer(void **state)
{
    (void)state;
    capture_t out, err;
    cap_open(&out);
    cap_open(&err);
    assert_int_equal(cli_render_invoke("[]", "a", "f", false, false, false, out.f, err.f), CLI_FAIL);
    assert_int_equal(cli_render_invoke("{\"body\":\"x\"}", "a", "f", false, false, false, out.f, err.f), CLI_FAIL);
    cap_close(&out);
    assert_string_equal(cap_close(&err), "tine: unexpected answer from the node for a.f (not a JSON object)\n"
                                         "tine: unexpected answer from the node for a.f (no \"status\")\n");
    free(out.text);
    free(err.text);
}

static void test_ps_table(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(cli_render_ps("{\"sandboxes\":3,\"max_sandboxes\":1024,\"pools\":["
                                   "{\"app\":\"hello\",\"version\":3,\"function\":\"hi\",\"warm\":1,\"sandboxes\":["
                                   "{\"pid\":4242,\"state\":\"idle\",\"age_s\":75.5,\"invocations\":12,"
                                   "\"cold_start_ms\":0.4123,\"last_used_s\":0.25},"
                                   "{\"pid\":4250,\"state\":\"busy\",\"age_s\":3.25,\"invocations\":1,"
                                   "\"cold_start_ms\":1.5,\"last_used_s\":0}]},"
                                   "{\"app\":\"shop\",\"version\":12,\"function\":\"list_items\",\"sandboxes\":["
                                   "{\"pid\":5000,\"state\":\"starting\",\"age_s\":7300,\"invocations\":0,"
                                   "\"cold_start_ms\":null,\"last_used_s\":null}]},"
                                   "{\"app\":\"empty\",\"version\":1,\"function\":\"f\",\"sandboxes\":[]}]}",
                                   c.f, err, sizeof err),
                     0);
    assert_string_equal(cap_close(&c),
                        "APP    VERSION  FUNCTION    PID   STATE     AGE    IDLE   INVOCATIONS  COLD_MS\n"
                        "hello  3        hi          4242  idle      1m15s  250ms  12           0.41\n"
                        "hello  3        hi          4250  busy      3.2s   -      1            1.50\n"
                        "shop   12       list_items  5000  starting  2h01m  -      0            -\n"
                        "3 of at most 1024 sandboxes on this node\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(cli_render_ps("{\"pools\":{}}", c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (no \"pools\" list)");
    assert_string_equal(cap_close(&c), "");
    free(c.text);
}

static void test_scale_line(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(
        cli_render_scale("{\"app\":\"hello\",\"function\":\"hi\",\"version\":3,\"warm\":2}", c.f, err, sizeof err), 0);
    assert_int_equal(cli_render_scale("{\"app\":\"a\",\"function\":\"f\",\"warm\":1}", c.f, err, sizeof err), 0);
    assert_int_equal(cli_render_scale("{\"app\":\"a\",\"warm\":1}", c.f, err, sizeof err), -1);
    assert_string_equal(cap_close(&c), "hello.hi: 2 warm sandboxes on this node for version 3 (until the next deploy)\n"
                                       "a.f: 1 warm sandbox on this node (until the next deploy)\n");
    free(c.text);
}

static void test_nodes_table(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    cap_open(&c);
    assert_int_equal(
        cli_render_nodes("{\"nodes\":["
                         "{\"node\":\"node-a\",\"state\":\"ready\",\"address\":\"10.0.0.11:8080\","
                         "\"version\":\"0.1.0\",\"uptime_s\":7300.5,\"heartbeat_age_s\":0.42,\"sandboxes\":12,"
                         "\"calls\":3},"
                         "{\"node\":\"node-b\",\"state\":\"draining\",\"address\":\"10.0.0.12:8080\","
                         "\"version\":\"0.1.0\",\"uptime_s\":75,\"heartbeat_age_s\":0.9,\"sandboxes\":2,"
                         "\"calls\":1},"
                         "{\"node\":\"node-c\",\"state\":\"gone\",\"left\":\"lost\",\"left_age_s\":12,"
                         "\"address\":\"10.0.0.13:8080\",\"version\":\"0.1.0\",\"heartbeat_age_s\":15.1,"
                         "\"sandboxes\":4,\"calls\":2},"
                         "{\"node\":\"node-d\",\"state\":\"gone\",\"left\":\"drained\","
                         "\"address\":\"10.0.0.14:8080\",\"version\":\"0.1.0\"}],"
                         "\"answered_by\":\"node-a\"}",
                         c.f, err, sizeof err),
        0);
    assert_string_equal(cap_close(&c),
                        "NODE    ADDRESS         VERSION  UPTIME  SANDBOXES  CALLS  HEARTBEAT  STATE\n"
                        "node-a  10.0.0.11:8080  0.1.0    2h01m   12         3      420ms ago  ready\n"
                        "node-b  10.0.0.12:8080  0.1.0    1m15s   2          1      900ms ago  draining\n"
                        "node-c  10.0.0.13:8080  0.1.0    -       -          -      15.1s ago  gone (lost 12.0s ago)\n"
                        "node-d  10.0.0.14:8080  0.1.0    -       -          -      -          gone (drained)\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(cli_render_nodes("{\"nodes\":{}}", c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (no \"nodes\" list)");
    assert_string_equal(cap_close(&c), "");
    free(c.text);
}

static void test_quota_table(void **state)
{
    (void)state;
    capture_t c;
    char err[256];
    static const char one[] =
        "{\"namespace\":\"team-a\",\"quotas\":{\"concurrency\":{\"limit\":10,\"used\":3},"
        "\"sandboxes\":{\"limit\":null,\"used\":2},\"memory_mb\":{\"limit\":1024,\"used\":256},"
        "\"per_minute\":{\"limit\":600,\"used\":41,\"resets_in_s\":23},"
        "\"spend_per_day\":{\"limit\":\"12.50\",\"used\":\"0.000123456\",\"limit_pusd\":12500000000000,"
        "\"used_pusd\":123456000,\"resets_in_s\":3600}},\"set\":\"2026-11-22T06:00:00.000Z\","
        "\"set_by\":\"admin-token\",\"nodes\":2}";
    static const char table[] = "namespace team-a, 2 nodes reporting; set 2026-11-22T06:00:00.000Z by admin-token\n"
                                "QUOTA          LIMIT   USED          RESETS\n"
                                "concurrency    10      3             -\n"
                                "sandboxes      -       2             -\n"
                                "memory_mb      1024    256           -\n"
                                "per_minute     600     41            in 23.0s\n"
                                "spend_per_day  $12.50  $0.000123456  in 1h00m\n";
    cap_open(&c);
    assert_int_equal(cli_render_quota(one, c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), table);
    free(c.text);

    /* The list: each namespace, a blank line between; an empty one says so. */
    char list[2048];
    snprintf(list, sizeof list, "{\"quotas\":[%s,%s]}", one, one);
    cap_open(&c);
    assert_int_equal(cli_render_quota(list, c.f, err, sizeof err), 0);
    assert_non_null(strstr(cap_close(&c), "in 1h00m\n\nnamespace team-a"));
    free(c.text);
    cap_open(&c);
    assert_int_equal(cli_render_quota("{\"quotas\":[]}", c.f, err, sizeof err), 0);
    assert_string_equal(cap_close(&c), "no namespace has a quota\n");
    free(c.text);

    cap_open(&c);
    assert_int_equal(cli_render_quota("{\"namespace\":\"x\"}", c.f, err, sizeof err), -1);
    assert_string_equal(err, "unexpected answer from the node (no \"namespace\" and \"quotas\")");
    cap_close(&c);
    free(c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_table),
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_apps_table),
        cmocka_unit_test(test_bad_answers_are_reported),
        cmocka_unit_test(test_versions_table_marks_live),
        cmocka_unit_test(test_routes_table),
        cmocka_unit_test(test_describe_trigger_variants),
        cmocka_unit_test(test_deploy_and_rollback_lines),
        cmocka_unit_test(test_what_this_node_serves),
        cmocka_unit_test(test_unchanged_delete_prune_lines),
        cmocka_unit_test(test_public_urls),
        cmocka_unit_test(test_invoke_prints_body),
        cmocka_unit_test(test_invoke_body_with_nul_bytes),
        cmocka_unit_test(test_invoke_failure_exits_1),
        cmocka_unit_test(test_invoke_malformed_answer),
        cmocka_unit_test(test_ps_table),
        cmocka_unit_test(test_scale_line),
        cmocka_unit_test(test_quota_table),
    };
    return cmocka_run_group_tests_name("sdk/cli/render", tests, NULL, NULL);
}
