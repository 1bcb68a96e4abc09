/* Tests of the `tine` executable (sdk/cli/main.c and the commands) run as a
 * process against a loopback responder with canned answers: dispatch, help,
 * exit codes, what goes to stdout and stderr, and what goes on the wire.
 * Real nodes are exercised by tests/integration. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_node.h"

#ifndef TINE_CLI_PATH
#error "TINE_CLI_PATH must name the tine executable"
#endif

static char tmpdir[64];
static fake_node_t *node;

typedef struct {
    int rc;
    char out[16384];
    char err[16384];
} result_t;

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs tine with the given arguments (NULL-terminated), the state dir set to
 * the test's temp dir and TINE_URL/TINE_TOKEN cleared; `input` goes to its
 * stdin. */
static void run(result_t *r, const char *input, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)TINE_CLI_PATH;
    va_list ap;
    va_start(ap, input);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;

    char in[128], out[128], err[128];
    snprintf(in, sizeof in, "%s/stdin", tmpdir);
    snprintf(out, sizeof out, "%s/stdout", tmpdir);
    snprintf(err, sizeof err, "%s/stderr", tmpdir);
    FILE *f = fopen(in, "w");
    fputs(input ? input : "", f);
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("TINE_STATE_DIR", tmpdir, 1);
        char config[128];
        snprintf(config, sizeof config, "%s/config", tmpdir);
        setenv("XDG_CONFIG_HOME", config, 1); /* never the user's stored contexts */
        unsetenv("TINE_URL");
        unsetenv("TINE_TOKEN");
        unsetenv("TINE_CONTEXT");
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/tine-cli-test-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    node = fake_node_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_node_stop(node);
    const char *names[] = {"stdin", "stdout", "stderr", "admin.token", "tine.yaml", "config/tine/credentials"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/config/tine", tmpdir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/config", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
    return 0;
}

static void test_help_and_usage_exit_codes(void **state)
{
    (void)state;
    result_t r;
    run(&r, NULL, "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: tine [global flags] COMMAND [args]"));
    assert_non_null(strstr(r.out, "  rollback     make an earlier version of an app live\n"));

    run(&r, NULL, "help", "deploy", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: tine deploy [DIR|FILE] [--force] [--stage]\n"));

    run(&r, NULL, "invoke", "-h", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: tine invoke APP FN [JSON|-] [-v]\n"));
    assert_non_null(strstr(r.out, "-v, --verbose"));

    run(&r, NULL, "--version", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "tine 0.1.0\n");

    run(&r, NULL, NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "usage: tine"));

    run(&r, NULL, "frobnicate", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "tine: unknown command 'frobnicate'\nRun 'tine --help' for usage.\n");

    run(&r, NULL, "versions", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err,
                        "tine versions: missing argument\nusage: tine versions APP | versions prune APP --keep N\n"
                        "Run 'tine help versions' for details.\n");

    run(&r, NULL, "apps", "--frob", NULL);
    assert_int_equal(r.rc, 2);
    run(&r, NULL, "rollback", "hello", "two", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "version must be a positive number, not 'two'"));
    assert_int_equal(node->requests, 0); /* usage errors never reach the node */
}

static void test_apps_table_and_json(void **state)
{
    (void)state;
    const char *answer = "{\"apps\":[{\"app\":\"hello\",\"live\":3,\"versions\":3}]}";
    fake_node_answer(node, 200, answer);
    result_t r;
    run(&r, NULL, "--url", node->url, "apps", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "APP    LIVE  VERSIONS\nhello  3     3\n");
    assert_string_equal(r.err, "");
    assert_string_equal(node->path, "/_tine/v1/apps");

    run(&r, NULL, "apps", "--json", "--url", node->url, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "{\"apps\":[{\"app\":\"hello\",\"live\":3,\"versions\":3}]}\n");
}

static void test_token_from_state_dir_and_401_hint(void **state)
{
    (void)state;
    char path[128], buf[128];
    result_t r;
    fake_node_answer(node, 401, "{\"error\":\"missing or wrong admin token\"}");
    run(&r, NULL, "--url", node->url, "apps", NULL);
    assert_int_equal(r.rc, 1);
    assert_null(fake_node_header(node, "Authorization", buf, sizeof buf));
    char want[512];
    snprintf(want, sizeof want,
             "tine: 401 unauthorized: missing or wrong admin token (tine login, or set TINE_TOKEN or --token; no "
             "token found in "
             "%s/admin.token)\n",
             tmpdir);
    assert_string_equal(r.err, want);

    snprintf(path, sizeof path, "%s/admin.token", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("cafe0123\n", f);
    fclose(f);
    run(&r, NULL, "--url", node->url, "apps", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(fake_node_header(node, "Authorization", buf, sizeof buf), "Bearer cafe0123");
    assert_string_equal(r.err,
                        "tine: 401 unauthorized: missing or wrong admin token (tine login, or set TINE_TOKEN or --token)\n");
}

/* tine login checks the key, stores it (0600) as the current context;
 * commands then send it to that URL only; context list never shows a
 * secret; a refused key stores nothing. */
static void test_login_and_contexts(void **state)
{
    (void)state;
    const char *key = "3f9a1c0b7e2d4a18:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char buf[256], path[160], auth[128];
    result_t r;
    fake_node_answer(node, 401, "{\"error\":\"unknown API key 3f9a1c0b7e2d4a18\"}");
    run(&r, key, "login", node->url, NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "tine: 401 unauthorized: unknown API key 3f9a1c0b7e2d4a18: nothing stored\n");
    snprintf(path, sizeof path, "%s/config/tine/credentials", tmpdir);
    assert_int_equal(access(path, F_OK), -1);

    fake_node_answer(node, 200,
                     "{\"key\":\"3f9a1c0b7e2d4a18\",\"name\":\"ci\",\"role\":\"deployer\",\"namespace\":\"team-a\","
                     "\"app\":null,\"permissions\":[]}");
    run(&r, key, "login", node->url, "--name", "prod", NULL); /* the key from stdin */
    assert_int_equal(r.rc, 0);
    assert_string_equal(node->path, "/_tine/v1/whoami");
    snprintf(auth, sizeof auth, "Bearer %s", key);
    assert_string_equal(fake_node_header(node, "Authorization", buf, sizeof buf), auth);
    assert_non_null(strstr(r.out, "as 3f9a1c0b7e2d4a18 (ci, role deployer, namespace team-a); context prod is current"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/config/tine", tmpdir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* No --url, no --token: the current context's URL and key. */
    fake_node_answer(node, 200, "{\"apps\":[]}");
    run(&r, NULL, "apps", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(node->path, "/_tine/v1/apps");
    assert_string_equal(fake_node_header(node, "Authorization", buf, sizeof buf), auth);
    /* Another URL never gets the stored key. */
    char other[96];
    snprintf(other, sizeof other, "http://localhost:%d", node->port);
    run(&r, NULL, "--url", other, "apps", NULL);
    assert_int_equal(r.rc, 0);
    assert_null(fake_node_header(node, "Authorization", buf, sizeof buf));
    /* --token beats the context. */
    run(&r, NULL, "--token", "tok", "apps", NULL);
    assert_string_equal(fake_node_header(node, "Authorization", buf, sizeof buf), "Bearer tok");

    run(&r, NULL, "context", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "prod"));
    assert_non_null(strstr(r.out, "3f9a1c0b7e2d4a18:***"));
    assert_null(strstr(r.out, "00112233"));
    run(&r, NULL, "context", "use", "staging", NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no stored context named 'staging'"));
    run(&r, NULL, "--context", "staging", "apps", NULL);
    assert_non_null(strstr(r.err, "no stored context named 'staging'"));
    run(&r, NULL, "login", node->url, "--key", key, "--name", "staging", NULL);
    assert_int_equal(r.rc, 0);
    run(&r, NULL, "context", "use", "prod", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "context prod is current"));
    run(&r, NULL, "context", "list", NULL);
    assert_non_null(strstr(r.out, "*        prod"));

    /* A credentials file others may read gets a warning. */
    chmod(path, 0644);
    run(&r, NULL, "apps", NULL);
    assert_non_null(strstr(r.err, "may be read by others: chmod 600 it"));
}

static void test_unreachable_node(void **state)
{
    (void)state;
    char url[64], want[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_node_closed_port());
    result_t r;
    run(&r, NULL, "--url", url, "versions", "hello", NULL);
    assert_int_equal(r.rc, 1);
    snprintf(want, sizeof want, "tine: cannot reach %s: Connection refused\n", url);
    assert_string_equal(r.err, want);
}

static void test_server_error_verbatim(void **state)
{
    (void)state;
    fake_node_answer(node, 404, "{\"error\":\"hello has no version 9\"}");
    result_t r;
    run(&r, NULL, "--url", node->url, "rollback", "hello", "9", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "tine: hello has no version 9\n");
    assert_string_equal(r.out, "");
    assert_string_equal(node->body, "{\"version\":9}");

    fake_node_answer(node, 200, "{\"app\":\"hello\",\"live\":2}");
    run(&r, NULL, "--url", node->url, "rollback", "hello", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "hello: live version is now 2\n");
}

static void test_invoke(void **state)
{
    (void)state;
    result_t r;
    fake_node_answer(node, 200, "{\"invocation_id\":\"i7\",\"status\":200,\"body\":\"hi ada\",\"cold\":false}");
    run(&r, "{\"name\": \"ada\"}", "--url", node->url, "invoke", "hello", "hi", "-", "-v", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "hi ada");
    assert_string_equal(r.err, "status 200, invocation i7, warm\n");
    assert_string_equal(node->path, "/_tine/v1/apps/hello/functions/hi/invoke");
    assert_string_equal(node->body, "{\"name\": \"ada\"}");

    fake_node_answer(node, 200, "{\"invocation_id\":\"i8\",\"status\":500,\"body\":\"\",\"error\":\"boom\"}");
    run(&r, NULL, "--url", node->url, "invoke", "hello", "hi", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(node->body, "{}");
    assert_string_equal(r.err, "tine: hello.hi failed with status 500: boom (invocation i8)\n");

    int before = node->requests;
    run(&r, NULL, "--url", node->url, "invoke", "hello", "hi", "{nope", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "the event is not valid JSON"));
    assert_int_equal(node->requests, before);
}

static void test_routes(void **state)
{
    (void)state;
    fake_node_answer(node, 200,
                     "{\"app\":\"hello\",\"version\":3,\"routes\":[{\"method\":\"GET\",\"path\":\"/hello/hi\","
                     "\"function\":\"hi\"}],\"triggers\":[{\"on\":\"schedule\",\"cron\":\"*/5 * * * *\","
                     "\"function\":\"tick\"}]}");
    result_t r;
    run(&r, NULL, "--url", node->url, "routes", "hello", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "TRIGGER               FUNCTION  VERSION\n"
                               "GET /hello/hi         hi        3\n"
                               "schedule */5 * * * *  tick      3\n");
}

static void test_deploy_missing_manifest(void **state)
{
    (void)state;
    result_t r;
    run(&r, NULL, "--url", node->url, "deploy", tmpdir, NULL);
    assert_int_equal(r.rc, 1);
    char want[256];
    snprintf(want, sizeof want, "tine: no tine.yaml, tine.yml or tine.json in %s\n", tmpdir);
    assert_string_equal(r.err, want);
    assert_int_equal(node->requests, 0);
}

static void test_deploy_packs_and_puts(void **state)
{
    (void)state;
    fake_node_answer(node, 201, "{\"app\":\"hello\",\"version\":4}");
    result_t r;
    run(&r, NULL, "--url", node->url, "deploy", TINE_SOURCE_DIR "/functions-examples/hello", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "deployed hello version 4\n");
    assert_string_equal(node->method, "PUT");
    assert_string_equal(node->path, "/_tine/v1/apps/hello");
    char buf[64];
    assert_string_equal(fake_node_header(node, "Content-Type", buf, sizeof buf), "application/gzip");
    assert_true(node->body_len > 2);
    assert_int_equal((unsigned char)node->body[0], 0x1f); /* gzip magic */
    assert_int_equal((unsigned char)node->body[1], 0x8b);
}

static void test_deploy_manifest_error_is_printed_verbatim(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/tine.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("app: x\n", f);
    fclose(f);
    result_t r;
    run(&r, NULL, "--url", node->url, "deploy", tmpdir, NULL);
    assert_int_equal(r.rc, 1);
    /* "DIR/tine.yaml:LINE:COL: ..." from the parser, one line, no prefix. */
    assert_memory_equal(r.err, path, strlen(path));
    assert_int_equal(r.err[strlen(path)], ':');
    assert_non_null(strchr(r.err, '\n'));
    assert_string_equal(strchr(r.err, '\n'), "\n");
    assert_int_equal(node->requests, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help_and_usage_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apps_table_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_from_state_dir_and_401_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_and_contexts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_missing_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_packs_and_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_manifest_error_is_printed_verbatim, setup, teardown),
    };
    return cmocka_run_group_tests_name("sdk/cli/main", tests, NULL, NULL);
}
