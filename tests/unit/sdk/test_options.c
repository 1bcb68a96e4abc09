/* Unit tests of the tine command's flag parsing and URL/token/state-dir
 * resolution (sdk/cli/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_global_flags_anywhere(void **state)
{
    (void)state;
    char *argv[] = {"tine",        "--url",       "http://n:1", "apps",         "--json",
                    "--token=abc", "--state-dir", "/s",         "--cacert=/ca", "-v"};
    cli_global_t g;
    char **rest;
    int n;
    char err[128];
    assert_int_equal(cli_split_global(ARGC(argv), argv, &g, &rest, &n, err, sizeof err), CLI_OK);
    assert_string_equal(g.url, "http://n:1");
    assert_string_equal(g.token, "abc");
    assert_string_equal(g.state_dir, "/s");
    assert_string_equal(g.cacert, "/ca");
    assert_true(g.json);
    assert_false(g.help);
    assert_false(g.version);
    assert_int_equal(n, 2);
    assert_string_equal(rest[0], "apps");
    assert_string_equal(rest[1], "-v");
    free(rest);
}

static void test_global_flags_stop_at_double_dash(void **state)
{
    (void)state;
    char *argv[] = {"tine", "invoke", "-h", "a", "f", "--", "--json"};
    cli_global_t g;
    char **rest;
    int n;
    char err[128];
    assert_int_equal(cli_split_global(ARGC(argv), argv, &g, &rest, &n, err, sizeof err), CLI_OK);
    assert_true(g.help);
    assert_false(g.json);
    assert_int_equal(n, 5);
    assert_string_equal(rest[3], "--");
    assert_string_equal(rest[4], "--json");
    free(rest);
}

static void test_global_flag_without_value_is_usage_error(void **state)
{
    (void)state;
    char *argv[] = {"tine", "apps", "--url"};
    cli_global_t g;
    char **rest = NULL;
    int n;
    char err[128];
    assert_int_equal(cli_split_global(ARGC(argv), argv, &g, &rest, &n, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "--url needs a value");
}

static void test_command_flags_and_positionals(void **state)
{
    (void)state;
    const char *listen = NULL, *redis = NULL;
    bool no_auth = false, verbose = false;
    const cli_flag_t flags[] = {
        {"listen", 0, &listen, NULL},
        {"redis", 0, &redis, NULL},
        {"no-auth", 0, NULL, &no_auth},
        {"verbose", 'v', NULL, &verbose},
    };
    char *argv[] = {"up", "--listen", "0.0.0.0:9", "app", "--redis=redis://r:6379", "--no-auth", "-v"};
    const char *pos[2];
    int npos = -1;
    char err[128];
    assert_int_equal(cli_parse_command(ARGC(argv), argv, flags, 4, pos, 0, 1, &npos, err, sizeof err), CLI_OK);
    assert_int_equal(npos, 1);
    assert_string_equal(pos[0], "app");
    assert_string_equal(listen, "0.0.0.0:9");
    assert_string_equal(redis, "redis://r:6379");
    assert_true(no_auth);
    assert_true(verbose);
}

static void test_command_parse_errors(void **state)
{
    (void)state;
    bool verbose = false;
    const char *listen = NULL;
    const cli_flag_t flags[] = {{"verbose", 'v', NULL, &verbose}, {"listen", 0, &listen, NULL}};
    const char *pos[3];
    int npos;
    char err[128];

    char *a1[] = {"invoke", "app", "--bogus"};
    assert_int_equal(cli_parse_command(ARGC(a1), a1, flags, 2, pos, 2, 3, &npos, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "unknown flag --bogus");

    char *a2[] = {"invoke", "app"};
    assert_int_equal(cli_parse_command(ARGC(a2), a2, flags, 2, pos, 2, 3, &npos, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "missing argument");

    char *a3[] = {"invoke", "a", "b", "c", "d"};
    assert_int_equal(cli_parse_command(ARGC(a3), a3, flags, 2, pos, 2, 3, &npos, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "unexpected argument 'd'");

    char *a4[] = {"up", "--listen"};
    assert_int_equal(cli_parse_command(ARGC(a4), a4, flags, 2, pos, 0, 1, &npos, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "--listen needs a value");

    char *a5[] = {"up", "--verbose=yes"};
    assert_int_equal(cli_parse_command(ARGC(a5), a5, flags, 2, pos, 0, 1, &npos, err, sizeof err), CLI_USAGE);
    assert_string_equal(err, "--verbose takes no value");

    char *a6[] = {"versions"};
    assert_int_equal(cli_parse_command(ARGC(a6), a6, NULL, 0, pos, 1, 1, &npos, err, sizeof err), CLI_USAGE);
}

static void test_dash_and_double_dash_are_positional(void **state)
{
    (void)state;
    bool verbose = false;
    const cli_flag_t flags[] = {{"verbose", 'v', NULL, &verbose}};
    const char *pos[3];
    int npos;
    char err[128];
    char *a1[] = {"invoke", "app", "fn", "-"};
    assert_int_equal(cli_parse_command(ARGC(a1), a1, flags, 1, pos, 2, 3, &npos, err, sizeof err), CLI_OK);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[2], "-");

    char *a2[] = {"invoke", "app", "fn", "--", "-1"};
    assert_int_equal(cli_parse_command(ARGC(a2), a2, flags, 1, pos, 2, 3, &npos, err, sizeof err), CLI_OK);
    assert_string_equal(pos[2], "-1");
    assert_false(verbose);
}

static void test_default_state_dir(void **state)
{
    (void)state;
    char *d = cli_default_state_dir("/xdg", "/home/u");
    assert_string_equal(d, "/xdg/tine");
    free(d);
    d = cli_default_state_dir("relative/ignored", "/home/u");
    assert_string_equal(d, "/home/u/.local/state/tine");
    free(d);
    d = cli_default_state_dir(NULL, "/home/u");
    assert_string_equal(d, "/home/u/.local/state/tine");
    free(d);
    d = cli_default_state_dir("", "/home/u");
    assert_string_equal(d, "/home/u/.local/state/tine");
    free(d);
}

/* A fresh temp dir as state dir, with the environment cleared. */
static char tmpdir[64];

static int env_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/tine-sdk-test-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    unsetenv("TINE_URL");
    unsetenv("TINE_TOKEN");
    unsetenv("TINE_STATE_DIR");
    unsetenv("TINE_CONTEXT");
    setenv("XDG_CONFIG_HOME", tmpdir, 1); /* never the user's stored contexts */
    unsetenv("TINE_CACERT");
    return 0;
}

static int env_teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/admin.token", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tine/credentials", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tine", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
    unsetenv("TINE_URL");
    unsetenv("TINE_TOKEN");
    unsetenv("TINE_STATE_DIR");
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("TINE_CONTEXT");
    unsetenv("TINE_CACERT");
    return 0;
}

static void write_token(const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/admin.token", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_resolve_defaults(void **state)
{
    (void)state;
    setenv("XDG_STATE_HOME", tmpdir, 1);
    cli_global_t g = {0};
    cli_conn_t c;
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "http://127.0.0.1:8080");
    char want[128];
    snprintf(want, sizeof want, "%s/tine", tmpdir);
    assert_string_equal(c.state_dir, want);
    snprintf(want, sizeof want, "%s/tine/admin.token", tmpdir);
    assert_string_equal(c.token_file, want);
    assert_null(c.token); /* missing token file: fine, no token */
    cli_conn_dispose(&c);
}

static void test_resolve_token_from_state_dir_file(void **state)
{
    (void)state;
    write_token("  0123abcd\n");
    setenv("TINE_STATE_DIR", tmpdir, 1);
    setenv("TINE_URL", "http://env:1", 1);
    cli_global_t g = {0};
    cli_conn_t c;
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "http://env:1");
    assert_string_equal(c.state_dir, tmpdir);
    assert_string_equal(c.token, "0123abcd");
    cli_conn_dispose(&c);

    /* TINE_TOKEN beats the file, --token beats both, --url beats TINE_URL. */
    setenv("TINE_TOKEN", "fromenv", 1);
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.token, "fromenv");
    cli_conn_dispose(&c);
    g.token = "fromflag";
    g.url = "http://flag:2";
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.token, "fromflag");
    assert_string_equal(c.url, "http://flag:2");
    cli_conn_dispose(&c);
    /* --token "" forces no token. */
    g.token = "";
    cli_resolve_conn(&g, &c, stderr);
    assert_null(c.token);
    cli_conn_dispose(&c);
}

/* Precedence: --token, TINE_TOKEN, the context's key (only for its own
 * URL), the state dir's token; --context and TINE_CONTEXT pick a context. */
static void test_resolve_from_context(void **state)
{
    (void)state;
    write_token("statetoken\n");
    setenv("TINE_STATE_DIR", tmpdir, 1);
    char path[160], dir[160], err[256];
    snprintf(dir, sizeof dir, "%s/tine", tmpdir);
    snprintf(path, sizeof path, "%s/tine/credentials", tmpdir);
    char *p = cli_credentials_path();
    assert_string_equal(p, path);
    free(p);
    cli_credentials_t creds = {0};
    cli_credentials_put(&creds, "prod", "https://prod:8443/", "id1:secret1");
    cli_credentials_put(&creds, "dev", "http://dev:8080", "id2:secret2");
    creds.current = strdup("prod");
    assert_int_equal(cli_credentials_save(&creds, path, err, sizeof err), 0);
    cli_credentials_dispose(&creds);

    cli_global_t g = {0};
    cli_conn_t c;
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "https://prod:8443/");
    assert_string_equal(c.token, "id1:secret1");
    assert_string_equal(c.context, "prod");
    cli_conn_dispose(&c);
    /* The same URL without its '/' is the context's too. */
    g.url = "https://prod:8443";
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.token, "id1:secret1");
    cli_conn_dispose(&c);
    /* Another URL: the state dir's token, never the stored key. */
    g.url = "http://elsewhere:1";
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.token, "statetoken");
    assert_null(c.context);
    cli_conn_dispose(&c);
    g.url = NULL;
    setenv("TINE_CONTEXT", "dev", 1);
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "http://dev:8080");
    assert_string_equal(c.token, "id2:secret2");
    cli_conn_dispose(&c);
    g.context = "prod"; /* the flag beats the variable */
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.token, "id1:secret1");
    cli_conn_dispose(&c);
    setenv("TINE_TOKEN", "envtoken", 1);
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "https://prod:8443/");
    assert_string_equal(c.token, "envtoken");
    cli_conn_dispose(&c);
    g.token = "flagtoken";
    setenv("TINE_URL", "http://envurl:2", 1);
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.url, "http://envurl:2");
    assert_string_equal(c.token, "flagtoken");
    cli_conn_dispose(&c);
    unsetenv("TINE_TOKEN");
    unsetenv("TINE_URL");
    /* An unknown context named: no credentials at all, not the state dir's. */
    g = (cli_global_t){.context = "nope"};
    cli_resolve_conn(&g, &c, NULL);
    assert_null(c.token);
    cli_conn_dispose(&c);

    /* A damaged file is an error naming it. */
    FILE *f = fopen(path, "w");
    fputs("{\"contexts\":{\"x\":{\"url\":1}}}", f);
    fclose(f);
    assert_int_equal(cli_credentials_load(path, &creds, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "contexts.x: expected {\"url\": URL, \"key\": KEY}"));
    (void)dir;
}

/* The CA file: none by default (the system's store), TINE_CACERT, --cacert
 * over it, and --cacert "" back to the system's store. */
static void test_resolve_cacert(void **state)
{
    (void)state;
    setenv("TINE_STATE_DIR", tmpdir, 1);
    cli_global_t g = {0};
    cli_conn_t c;
    cli_resolve_conn(&g, &c, stderr);
    assert_null(c.cacert);
    cli_conn_dispose(&c);
    setenv("TINE_CACERT", "/env/ca.pem", 1);
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.cacert, "/env/ca.pem");
    cli_conn_dispose(&c);
    g.cacert = "/flag/ca.pem";
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.cacert, "/flag/ca.pem");
    cli_conn_dispose(&c);
    g.cacert = "";
    cli_resolve_conn(&g, &c, stderr);
    assert_null(c.cacert);
    cli_conn_dispose(&c);
}

static void test_state_dir_flag_beats_env(void **state)
{
    (void)state;
    write_token("tok\n");
    setenv("TINE_STATE_DIR", "/nonexistent/elsewhere", 1);
    cli_global_t g = {.state_dir = tmpdir};
    cli_conn_t c;
    cli_resolve_conn(&g, &c, stderr);
    assert_string_equal(c.state_dir, tmpdir);
    assert_string_equal(c.token, "tok");
    cli_conn_dispose(&c);
}

static void test_read_token_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/admin.token", tmpdir);
    int e = -1;
    assert_null(cli_read_token_file(path, &e));
    assert_int_equal(e, 0);
    write_token("\n\n");
    assert_null(cli_read_token_file(path, &e));
    assert_int_equal(e, 0);
    write_token("abc def\nsecond\n");
    char *t = cli_read_token_file(path, &e);
    assert_string_equal(t, "abc");
    free(t);
    /* A directory where the file should be is a read error, not "no token". */
    assert_null(cli_read_token_file(tmpdir, &e));
    assert_int_not_equal(e, 0);
}

static void test_listen_to_url(void **state)
{
    (void)state;
    char url[128];
    assert_int_equal(cli_listen_to_url(NULL, url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:8080");
    assert_int_equal(cli_listen_to_url("127.0.0.1:9000", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:9000");
    assert_int_equal(cli_listen_to_url("0.0.0.0:8080", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:8080");
    assert_int_equal(cli_listen_to_url(":8081", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:8081");
    assert_int_equal(cli_listen_to_url("8082", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:8082");
    assert_int_equal(cli_listen_to_url("[::]:8080", url, sizeof url), 0);
    assert_string_equal(url, "http://[::1]:8080");
    assert_int_equal(cli_listen_to_url("[::1]:7", url, sizeof url), 0);
    assert_string_equal(url, "http://[::1]:7");
    assert_int_equal(cli_listen_to_url("localhost:8080", url, sizeof url), 0);
    assert_string_equal(url, "http://localhost:8080");
    assert_int_equal(cli_listen_to_url("host:", url, sizeof url), -1);
    assert_int_equal(cli_listen_to_url("host:http", url, sizeof url), -1);
    assert_int_equal(cli_listen_to_url("::1:80", url, sizeof url), -1);
    assert_int_equal(cli_listen_to_url("h:99999", url, sizeof url), -1);
    assert_int_equal(cli_listen_to_url("[::1]8080", url, sizeof url), -1);
}

static void test_fail_messages(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&text, &len);
    cli_command_t cmd = {"versions", "list", "versions APP", NULL, NULL};
    cli_ctx_t ctx = {.cmd = &cmd, .out = stdout, .err = err};
    assert_int_equal(cli_fail(&ctx, "cannot reach %s: %s", "http://x:1", "Connection refused"), CLI_FAIL);
    assert_int_equal(cli_usage_error(&ctx, "missing argument"), CLI_USAGE);
    fclose(err);
    assert_string_equal(text, "tine: cannot reach http://x:1: Connection refused\n"
                              "tine versions: missing argument\n"
                              "usage: tine versions APP\n"
                              "Run 'tine help versions' for details.\n");
    free(text);
}

static void test_print_json_text_adds_one_newline(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cli_print_json_text(out, "{\"a\":1}");
    cli_print_json_text(out, "{\"b\":2}\n");
    fclose(out);
    assert_string_equal(text, "{\"a\":1}\n{\"b\":2}\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_flags_anywhere),
        cmocka_unit_test(test_global_flags_stop_at_double_dash),
        cmocka_unit_test(test_global_flag_without_value_is_usage_error),
        cmocka_unit_test(test_command_flags_and_positionals),
        cmocka_unit_test(test_command_parse_errors),
        cmocka_unit_test(test_dash_and_double_dash_are_positional),
        cmocka_unit_test(test_default_state_dir),
        cmocka_unit_test_setup_teardown(test_resolve_defaults, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_token_from_state_dir_file, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_from_context, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_cacert, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_flag_beats_env, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_read_token_file, env_setup, env_teardown),
        cmocka_unit_test(test_listen_to_url),
        cmocka_unit_test(test_fail_messages),
        cmocka_unit_test(test_print_json_text_adds_one_newline),
    };
    return cmocka_run_group_tests_name("sdk/cli/options", tests, NULL, NULL);
}
