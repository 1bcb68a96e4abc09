/* Unit tests of libtine (sdk/c/client.c) against a loopback responder with
 * canned answers: what goes on the wire, and how answers and failures come
 * back as codes and messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

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
    f->client = tine_client_new(f->node->url, NULL);
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

static void test_new_rejects_bad_urls(void **state)
{
    (void)state;
    assert_null(tine_client_new(NULL, NULL));
    assert_null(tine_client_new("", NULL));
    assert_null(tine_client_new("127.0.0.1:8080", NULL));
    assert_null(tine_client_new("http://", NULL));
    assert_null(tine_client_new("ftp://host", NULL));
    tine_client_t *c = tine_client_new("https://node.example:8443/", "t");
    assert_non_null(c);
    assert_string_equal(tine_client_error(c), "");
    assert_int_equal(tine_client_status(c), 0);
    tine_client_free(c);
    tine_client_free(NULL);
}

static void test_health_sends_no_token_without_one(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"status\":\"ok\",\"node\":\"n1\",\"apps\":2}");
    char *answer = NULL;
    assert_int_equal(tine_health(f->client, &answer), 0);
    assert_string_equal(answer, "{\"status\":\"ok\",\"node\":\"n1\",\"apps\":2}");
    assert_string_equal(f->node->method, "GET");
    assert_string_equal(f->node->path, "/_tine/v1/health");
    char buf[256];
    assert_null(fake_node_header(f->node, "Authorization", buf, sizeof buf));
    assert_int_equal(tine_client_status(f->client), 200);
    tine_free(answer);
}

static void test_token_goes_in_bearer_header(void **state)
{
    fixture_t *f = *state;
    tine_client_t *c = tine_client_new(f->node->url, "s3cret");
    fake_node_answer(f->node, 200, "{\"apps\":[]}");
    assert_int_equal(tine_apps(c, NULL), 0);
    char buf[256];
    assert_non_null(fake_node_header(f->node, "Authorization", buf, sizeof buf));
    assert_string_equal(buf, "Bearer s3cret");
    assert_string_equal(f->node->path, "/_tine/v1/apps");
    tine_client_free(c);

    /* An empty token is no token. */
    c = tine_client_new(f->node->url, "");
    assert_int_equal(tine_apps(c, NULL), 0);
    assert_null(fake_node_header(f->node, "Authorization", buf, sizeof buf));
    tine_client_free(c);
}

static void test_trailing_slash_of_url_is_ignored(void **state)
{
    fixture_t *f = *state;
    char url[80];
    snprintf(url, sizeof url, "%s//", f->node->url);
    tine_client_t *c = tine_client_new(url, NULL);
    assert_int_equal(tine_health(c, NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/health");
    tine_client_free(c);
}

static void test_deploy_puts_gzip_body(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 201, "{\"app\":\"hello\",\"version\":4}");
    const unsigned char tgz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x01, 0x02, 0xff};
    char *answer = NULL;
    assert_int_equal(tine_deploy(f->client, "hello", tgz, sizeof tgz, &answer), 0);
    assert_string_equal(answer, "{\"app\":\"hello\",\"version\":4}");
    assert_string_equal(f->node->method, "PUT");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello");
    char buf[256];
    assert_non_null(fake_node_header(f->node, "Content-Type", buf, sizeof buf));
    assert_string_equal(buf, "application/gzip");
    assert_null(fake_node_header(f->node, "Expect", buf, sizeof buf));
    assert_int_equal(f->node->body_len, sizeof tgz);
    assert_memory_equal(f->node->body, tgz, sizeof tgz);
    tine_free(answer);

    assert_int_equal(tine_deploy(f->client, "hello", NULL, 0, &answer), -EINVAL);
    assert_null(answer);
    assert_int_equal(tine_deploy(f->client, "", tgz, sizeof tgz, &answer), -EINVAL);
}

static void test_server_error_field_is_the_message(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 400, "{\"error\":\"tine.yaml:3:5: functions.hi.memory: expected 16..10240\"}");
    const char tgz[] = "x";
    char *answer = (char *)"sentinel";
    assert_int_equal(tine_deploy(f->client, "hello", tgz, 1, &answer), TINE_CLIENT_EINVAL);
    assert_null(answer);
    assert_string_equal(tine_client_error(f->client), "tine.yaml:3:5: functions.hi.memory: expected 16..10240");
    assert_int_equal(tine_client_status(f->client), 400);

    fake_node_answer(f->node, 413, "{\"error\":\"bundle is 70 MiB, over the 16 MiB limit\"}");
    assert_int_equal(tine_deploy(f->client, "hello", tgz, 1, NULL), TINE_CLIENT_ETOOBIG);
    assert_string_equal(tine_client_error(f->client), "bundle is 70 MiB, over the 16 MiB limit");

    fake_node_answer(f->node, 409, "{\"error\":\"GET /a claimed by app b\"}");
    assert_int_equal(tine_deploy(f->client, "hello", tgz, 1, NULL), TINE_CLIENT_ECONFLICT);

    fake_node_answer(f->node, 503, "{\"error\":\"redis down\\nsecond line\"}");
    assert_int_equal(tine_apps(f->client, NULL), TINE_CLIENT_EHTTP);
    assert_string_equal(tine_client_error(f->client), "redis down second line");
}

static void test_401_says_unauthorized(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 401, "{\"error\":\"missing or wrong admin token\"}");
    assert_int_equal(tine_apps(f->client, NULL), TINE_CLIENT_EAUTH);
    assert_string_equal(tine_client_error(f->client), "401 unauthorized: missing or wrong admin token");
    assert_int_equal(tine_client_status(f->client), 401);

    fake_node_answer(f->node, 401, "");
    assert_int_equal(tine_apps(f->client, NULL), TINE_CLIENT_EAUTH);
    assert_string_equal(tine_client_error(f->client), "401 unauthorized: missing or wrong admin token");
}

static void test_non_json_error_names_status_and_url(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 404, "Not here\nat all");
    assert_int_equal(tine_versions(f->client, "ghost", NULL), TINE_CLIENT_ENOTFOUND);
    char want[256];
    snprintf(want, sizeof want, "HTTP 404 from %s/_tine/v1/apps/ghost/versions: Not here", f->node->url);
    assert_string_equal(tine_client_error(f->client), want);
}

static void test_success_that_is_not_json_is_a_protocol_error(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "<html>proxy</html>");
    char *answer = NULL;
    assert_int_equal(tine_apps(f->client, &answer), TINE_CLIENT_EPROTO);
    assert_null(answer);
    assert_non_null(strstr(tine_client_error(f->client), "not JSON"));
}

static void test_rollback_body(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"live\":2}");
    assert_int_equal(tine_rollback(f->client, "hello", 2, NULL), 0);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/rollback");
    assert_string_equal(f->node->body, "{\"version\":2}");

    assert_int_equal(tine_rollback(f->client, "hello", 0, NULL), 0);
    assert_string_equal(f->node->method, "POST");
    assert_int_equal(f->node->body_len, 0);
}

static void test_invoke_escapes_names_and_defaults_to_empty_object(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"invocation_id\":\"i1\",\"status\":200,\"body\":\"hi\"}");
    char *answer = NULL;
    assert_int_equal(tine_invoke(f->client, "hello", "hi", NULL, 0, &answer), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/functions/hi/invoke");
    assert_string_equal(f->node->body, "{}");
    char buf[128];
    assert_string_equal(fake_node_header(f->node, "Content-Type", buf, sizeof buf), "application/json");
    tine_free(answer);

    const char ev[] = "{\"n\":1}";
    assert_int_equal(tine_invoke(f->client, "my app", "f/x", ev, strlen(ev), NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/my%20app/functions/f%2Fx/invoke");
    assert_string_equal(f->node->body, ev);

    /* A body with a NUL byte is still a valid answer. */
    fake_node_answer(f->node, 200, "{\"status\":200,\"body\":\"a\\u0000b\"}");
    assert_int_equal(tine_invoke(f->client, "hello", "hi", NULL, 0, NULL), 0);

    assert_int_equal(tine_routes(f->client, "hello", NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/routes");
}

static void test_app_delete_prune_ready_force(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"live\":3,\"serving\":3}");
    assert_int_equal(tine_app(f->client, "hello", NULL), 0);
    assert_string_equal(f->node->method, "GET");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello");

    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"deleted\":{}}");
    assert_int_equal(tine_delete_app(f->client, "my app", NULL), 0);
    assert_string_equal(f->node->method, "DELETE");
    assert_string_equal(f->node->path, "/_tine/v1/apps/my%20app");
    assert_int_equal(tine_delete_app(f->client, "", NULL), -EINVAL);

    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"pruned\":[],\"kept\":[1]}");
    assert_int_equal(tine_prune_versions(f->client, "hello", 2, NULL), 0);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/versions/prune");
    assert_string_equal(f->node->body, "{\"keep\":2}");

    const char tgz[] = "\x1f\x8b fake";
    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"version\":3,\"unchanged\":true}");
    assert_int_equal(tine_deploy_ex(f->client, "hello", tgz, sizeof tgz - 1, TINE_DEPLOY_FORCE, NULL), 0);
    assert_string_equal(f->node->method, "PUT");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello?force=1");
    assert_int_equal(tine_deploy_ex(f->client, "hello", tgz, sizeof tgz - 1, 0, NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello");

    fake_node_answer(f->node, 503, "{\"ready\":false,\"error\":\"app hello: cannot be loaded\",\"reasons\":[]}");
    assert_int_equal(tine_ready(f->client, NULL), TINE_CLIENT_EHTTP);
    assert_string_equal(f->node->path, "/_tine/v1/ready");
    assert_string_equal(tine_client_error(f->client), "app hello: cannot be loaded");
}

static void test_sandbox_calls(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"sandboxes\":0,\"pools\":[]}");
    assert_int_equal(tine_sandboxes(f->client, NULL, NULL), 0);
    assert_string_equal(f->node->method, "GET");
    assert_string_equal(f->node->path, "/_tine/v1/sandboxes");
    assert_int_equal(tine_sandboxes(f->client, "my app", NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/sandboxes?app=my%20app");

    fake_node_answer(f->node, 200, "{\"evicted\":2}");
    char *answer = NULL;
    assert_int_equal(tine_evict(f->client, "hello", NULL, &answer), 0);
    assert_string_equal(answer, "{\"evicted\":2}");
    tine_free(answer);
    assert_string_equal(f->node->method, "DELETE");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/sandboxes");
    assert_int_equal(tine_evict(f->client, "hello", "f&x", NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/sandboxes?function=f%26x");
    assert_int_equal(tine_evict(f->client, "", NULL, NULL), -EINVAL);

    fake_node_answer(f->node, 200, "{\"app\":\"hello\",\"function\":\"hi\",\"warm\":3}");
    assert_int_equal(tine_scale(f->client, "hello", "hi", 3, NULL), 0);
    assert_string_equal(f->node->method, "PUT");
    assert_string_equal(f->node->path, "/_tine/v1/apps/hello/functions/hi/scale");
    assert_string_equal(f->node->body, "{\"warm\":3}");
    assert_int_equal(tine_scale(f->client, "hello", "", 3, NULL), -EINVAL);

    fake_node_answer(f->node, 400, "{\"error\":\"body: warm: expected an integer from 0 to 10\"}");
    assert_int_equal(tine_scale(f->client, "hello", "hi", 11, NULL), TINE_CLIENT_EINVAL);
    assert_string_equal(tine_client_error(f->client), "body: warm: expected an integer from 0 to 10");
}

static void test_nodes_and_drain(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 200, "{\"nodes\":[],\"answered_by\":\"a\"}");
    assert_int_equal(tine_nodes(f->client, NULL), 0);
    assert_string_equal(f->node->method, "GET");
    assert_string_equal(f->node->path, "/_tine/v1/nodes");

    fake_node_answer(f->node, 202, "{\"node\":\"vm:8080\",\"draining\":true,\"asked_by\":\"a\"}");
    char *answer = NULL;
    assert_int_equal(tine_drain(f->client, "vm:8080", &answer), 0);
    assert_string_equal(answer, "{\"node\":\"vm:8080\",\"draining\":true,\"asked_by\":\"a\"}");
    tine_free(answer);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/nodes/vm%3A8080/drain");
    assert_int_equal(tine_drain(f->client, "", NULL), -EINVAL);
    assert_string_equal(tine_client_error(f->client), "no node id given");

    fake_node_answer(f->node, 404, "{\"error\":\"no node named 'x' is up (tine nodes lists them)\"}");
    assert_int_equal(tine_drain(f->client, "x", NULL), TINE_CLIENT_ENOTFOUND);
    assert_string_equal(tine_client_error(f->client), "no node named 'x' is up (tine nodes lists them)");
}

static void test_emit_posts_a_cloudevent(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 202, "{\"id\":\"x\"}");
    const char data[] = "{\"total\":3}";
    char *answer = NULL;
    assert_int_equal(tine_emit(f->client, "order.paid", "shop/billing", data, strlen(data), &answer), 0);
    assert_string_equal(answer, "{\"id\":\"x\"}");
    tine_free(answer);
    assert_string_equal(f->node->method, "POST");
    assert_string_equal(f->node->path, "/_tine/v1/events");
    char buf[128];
    assert_string_equal(fake_node_header(f->node, "Content-Type", buf, sizeof buf), "application/cloudevents+json");
    json_t *ev = json_loadb(f->node->body, f->node->body_len, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "order.paid");
    assert_string_equal(json_string_value(json_object_get(ev, "source")), "shop/billing");
    assert_string_equal(json_string_value(json_object_get(ev, "datacontenttype")), "application/json");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "total")), 3);
    const char *id = json_string_value(json_object_get(ev, "id"));
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    char first[33];
    snprintf(first, sizeof first, "%s", id);
    const char *t = json_string_value(json_object_get(ev, "time"));
    assert_true(strlen(t) == 24 && t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
    json_decref(ev);

    /* No data: no data fields; every event gets its own id. */
    assert_int_equal(tine_emit(f->client, "ping", "cli", NULL, 0, NULL), 0);
    ev = json_loadb(f->node->body, f->node->body_len, 0, NULL);
    assert_null(json_object_get(ev, "data"));
    assert_null(json_object_get(ev, "datacontenttype"));
    assert_string_not_equal(json_string_value(json_object_get(ev, "id")), first);
    json_decref(ev);

    int requests = f->node->requests;
    assert_int_equal(tine_emit(f->client, "t", "s", "{nope", 5, NULL), -EINVAL);
    assert_string_equal(tine_client_error(f->client), "event data is not JSON: line 1 column 5: string or '}' expected near 'nope'");
    assert_int_equal(tine_emit(f->client, "", "s", NULL, 0, NULL), -EINVAL);
    assert_string_equal(tine_client_error(f->client), "an event needs a type and a source");
    assert_int_equal(tine_emit(f->client, "t", NULL, NULL, 0, NULL), -EINVAL);
    assert_int_equal(f->node->requests, requests); /* nothing was sent */

    fake_node_answer(f->node, 404, "{\"error\":\"no route for /_tine/v1/events\"}");
    assert_int_equal(tine_emit(f->client, "t", "s", NULL, 0, NULL), TINE_CLIENT_ENOTFOUND);
}

static void test_request_returns_any_status(void **state)
{
    fixture_t *f = *state;
    fake_node_answer(f->node, 503, "{\"error\":\"busy\"}");
    long status = 0;
    char *body = NULL;
    assert_int_equal(tine_request(f->client, "DELETE", "/_tine/v1/apps/x", NULL, 0, NULL, &status, &body), 0);
    assert_int_equal(status, 503);
    assert_string_equal(body, "{\"error\":\"busy\"}");
    assert_string_equal(f->node->method, "DELETE");
    tine_free(body);

    assert_int_equal(tine_request(f->client, "GET", "no-slash", NULL, 0, NULL, &status, &body), -EINVAL);
    assert_null(body);
}

static void test_connection_refused_names_the_node(void **state)
{
    (void)state;
    char url[64], want[128];
    int port = fake_node_closed_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tine_client_t *c = tine_client_new(url, NULL);
    char *answer = (char *)"sentinel";
    assert_int_equal(tine_health(c, &answer), TINE_CLIENT_ECONNECT);
    assert_null(answer);
    snprintf(want, sizeof want, "cannot reach %s: Connection refused", url);
    assert_string_equal(tine_client_error(c), want);
    assert_int_equal(tine_client_status(c), 0);
    tine_client_free(c);
}

/* A loopback server that answers every connection with a plain HTTP
 * status line at once (what a TLS client finds at an http:// node), then
 * closes; `count` connections, then its thread ends. */
typedef struct {
    int fd, port, count;
    pthread_t thread;
} plain_server_t;

static void *plain_server_main(void *arg)
{
    plain_server_t *p = arg;
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    for (int i = 0; i < p->count; i++) {
        int c = accept(p->fd, NULL, NULL);
        if (c < 0)
            break;
        ssize_t w = write(c, answer, sizeof answer - 1);
        (void)w;
        close(c);
    }
    return NULL;
}

static void plain_server_start(plain_server_t *p, int count)
{
    p->count = count;
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(p->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(p->fd, 4), 0);
    assert_int_equal(getsockname(p->fd, (struct sockaddr *)&sa, &sl), 0);
    p->port = ntohs(sa.sin_port);
    pthread_create(&p->thread, NULL, plain_server_main, p);
}

/* An https:// URL to a node that speaks plain HTTP: no handshake, a TLS
 * failure naming the node; a CA file that is not there: named. */
static void test_tls_failures(void **state)
{
    (void)state;
    plain_server_t p;
    plain_server_start(&p, 2);
    char url[64], want[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", p.port);
    tine_client_t *c = tine_client_new(url, NULL);
    assert_int_equal(tine_client_set_timeout_ms(c, 5000), 0);
    assert_int_equal(tine_health(c, NULL), TINE_CLIENT_ETLS);
    snprintf(want, sizeof want, "no TLS handshake with %s: ", url);
    assert_memory_equal(tine_client_error(c), want, strlen(want));
    assert_int_equal(tine_client_set_cacert(c, "/nonexistent/ca.pem"), 0);
    assert_int_equal(tine_health(c, NULL), TINE_CLIENT_ETLS);
    assert_non_null(strstr(tine_client_error(c), "cannot use the CA file /nonexistent/ca.pem"));
    assert_int_equal(tine_client_set_cacert(c, NULL), 0);
    assert_string_equal(tine_client_strerror(TINE_CLIENT_ETLS), "TLS failure");
    tine_client_free(c);
    shutdown(p.fd, SHUT_RDWR);
    pthread_join(p.thread, NULL);
    close(p.fd);
}

static void test_timeout(void **state)
{
    fixture_t *f = *state;
    f->node->delay_ms = 600;
    assert_int_equal(tine_client_set_timeout_ms(f->client, 100), 0);
    assert_int_equal(tine_client_set_timeout_ms(f->client, -1), -EINVAL);
    assert_int_equal(tine_health(f->client, NULL), TINE_CLIENT_ETIMEOUT);
    assert_non_null(strstr(tine_client_error(f->client), "within 100 ms"));
}

static void test_escape_and_strerror(void **state)
{
    (void)state;
    char *e = tine_escape("a-b_c.d~e f/g%");
    assert_string_equal(e, "a-b_c.d~e%20f%2Fg%25");
    tine_free(e);
    assert_string_equal(tine_client_strerror(TINE_CLIENT_EAUTH), "unauthorized");
    assert_string_equal(tine_client_strerror(-ENOMEM), strerror(ENOMEM));
}

static void test_usage_and_activations_paths(void **state)
{
    fixture_t *f = *state;
    char *answer = NULL;
    fake_node_answer(f->node, 200, "{\"rows\":[]}");
    assert_int_equal(tine_usage(f->client, "shop", "2026-11-01", NULL, "version", &answer), 0);
    assert_string_equal(f->node->path, "/_tine/v1/usage?app=shop&from=2026-11-01&by=version");
    tine_free(answer);
    assert_int_equal(tine_activations(f->client, "shop", "get item", 5, NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/shop/activations?limit=5&function=get%20item");
    assert_int_equal(tine_activations(f->client, "shop", NULL, 0, NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/shop/activations");
    assert_int_equal(tine_activation(f->client, "ab12", NULL), 0);
    assert_string_equal(f->node->path, "/_tine/v1/activations/ab12");
    assert_int_equal(tine_usage(f->client, "", NULL, NULL, NULL, NULL), -EINVAL);
    fake_node_answer(f->node, 400, "{\"error\":\"query: by: expected function, version or day, not 'x'\"}");
    assert_int_equal(tine_usage(f->client, "shop", NULL, NULL, "x", NULL), TINE_CLIENT_EINVAL);
    assert_string_equal(tine_client_error(f->client), "query: by: expected function, version or day, not 'x'");
}

typedef struct {
    char lines[8][128];
    int n;
    int stop_after;
} lines_t;

static int collect(void *data, const char *line, size_t len)
{
    lines_t *l = data;
    assert_int_equal(strlen(line), len);
    snprintf(l->lines[l->n++], sizeof l->lines[0], "%s", line);
    return l->stop_after && l->n >= l->stop_after;
}

static void test_logs_hands_over_each_line(void **state)
{
    fixture_t *f = *state;
    lines_t l = {0};
    fake_node_answer(f->node, 200, "{\"msg\":\"a\"}\n\n{\"msg\":\"b\"}\n{\"msg\":\"c\"}");
    assert_int_equal(tine_logs(f->client, "shop", "get", 7, 1, collect, &l), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/shop/logs?limit=7&function=get&follow=1");
    assert_int_equal(l.n, 4);
    assert_string_equal(l.lines[0], "{\"msg\":\"a\"}");
    assert_string_equal(l.lines[1], ""); /* a keep-alive */
    assert_string_equal(l.lines[2], "{\"msg\":\"b\"}");
    assert_string_equal(l.lines[3], "{\"msg\":\"c\"}"); /* the last, without "\n" */
    lines_t stop = {.stop_after = 1};
    assert_int_equal(tine_logs(f->client, "shop", NULL, 0, 0, collect, &stop), 0);
    assert_string_equal(f->node->path, "/_tine/v1/apps/shop/logs?limit=0");
    assert_int_equal(stop.n, 1);
    lines_t none = {0};
    fake_node_answer(f->node, 404, "{\"error\":\"no app named 'x'\"}");
    assert_int_equal(tine_logs(f->client, "x", NULL, 0, 1, collect, &none), TINE_CLIENT_ENOTFOUND);
    assert_string_equal(tine_client_error(f->client), "no app named 'x'");
    assert_int_equal(none.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_urls),
        cmocka_unit_test_setup_teardown(test_health_sends_no_token_without_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_goes_in_bearer_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_slash_of_url_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_puts_gzip_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error_field_is_the_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_says_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_json_error_names_status_and_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_that_is_not_json_is_a_protocol_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invoke_escapes_names_and_defaults_to_empty_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_posts_a_cloudevent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_returns_any_status, setup, teardown),
        cmocka_unit_test(test_connection_refused_names_the_node),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test(test_tls_failures),
        cmocka_unit_test(test_escape_and_strerror),
        cmocka_unit_test_setup_teardown(test_usage_and_activations_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_hands_over_each_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_delete_prune_ready_force, setup, teardown),
    };
    return cmocka_run_group_tests_name("sdk/c/client", tests, NULL, NULL);
}
