/* Tests of libtine's events calls (sdk/c/client.c): tine_events_emit,
 * tine_dlq, tine_dlq_replay, against the loopback responder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_node.h"
#include "tine.h"

typedef struct {
    fake_node_t *node;
    tine_client_t *client;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->node = fake_node_start();
    f->client = tine_client_new(f->node->url, "tok");
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tine_client_free(f->client);
    fake_node_stop(f->node);
    free(f);
    return 0;
}

static void test_emit_posts_a_structured_event(void **state)
{
    fixture_t *f = *state;
    char buf[256];
    const char *ev = "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\"}";
    fake_node_answer(f->node, 202, "{\"ids\":[\"1\"],\"entries\":[\"5-0\"]}");
    char *answer = NULL;
    assert_int_equal(tine_events_emit(f->client, ev, strlen(ev), &answer), 0);
    assert_string_equal(answer, "{\"ids\":[\"1\"],\"entries\":[\"5-0\"]}");
    tine_free(answer);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/events");
    assert_string_equal(fake_node_header(f->node, "Content-Type", buf, sizeof buf), "application/cloudevents+json");
    assert_string_equal(fake_node_header(f->node, "Authorization", buf, sizeof buf), "Bearer tok");
    assert_string_equal(f->node->body, ev);

    fake_node_answer(f->node, 400, "{\"error\":\"attribute 'source': required\"}");
    assert_int_equal(tine_events_emit(f->client, "{}", 2, NULL), TINE_CLIENT_EINVAL);
    assert_string_equal(tine_client_error(f->client), "attribute 'source': required");
    assert_int_equal(tine_events_emit(f->client, NULL, 0, NULL), -EINVAL);
}

static void test_dlq_and_replay_paths_and_bodies(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"app\":\"a b\",\"dead_letters\":[]}");
    assert_int_equal(tine_dlq(f->client, "a b", NULL), 0);
    assert_string_equal(f->node->method, "GET");
    assert_string_equal(f->node->path, "/_tine/v1/apps/a%20b/dlq");

    fake_node_answer(f->node, 200, "{\"replayed\":2,\"ids\":[],\"missing\":[]}");
    assert_int_equal(tine_dlq_replay(f->client, "shop", NULL, 0, NULL), 0);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/apps/shop/dlq/replay");
    assert_int_equal(f->node->body_len, 0);

    const char *ids[] = {"1-0", "2-0"};
    assert_int_equal(tine_dlq_replay(f->client, "shop", ids, 2, NULL), 0);
    assert_string_equal(f->node->body, "{\"ids\":[\"1-0\",\"2-0\"]}");

    fake_node_answer(f->node, 404, "{\"error\":\"app shop has no dead letter 9-9\"}");
    const char *one[] = {"9-9"};
    assert_int_equal(tine_dlq_replay(f->client, "shop", one, 1, NULL), TINE_CLIENT_ENOTFOUND);
    assert_string_equal(tine_client_error(f->client), "app shop has no dead letter 9-9");
    assert_int_equal(tine_dlq(f->client, "", NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emit_posts_a_structured_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_and_replay_paths_and_bodies, setup, teardown),
    };
    return cmocka_run_group_tests_name("sdk/c events", tests, NULL, NULL);
}
