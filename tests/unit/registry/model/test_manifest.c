/* Tests of registry/model/manifest.c: reg_manifest_parse on good manifests (YAML and
 * JSON), the exact one-line error for many bad ones, the env merge, the
 * duration parser, and that the JSON Schema lists the keys the parser takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "app_model.h"
#include "tine_common.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TINE_TEST_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TINE_TEST_UNDER_ASAN 1
#endif

#include <errno.h>

#ifndef TINE_TEST_UNDER_ASAN
/* Allocation torture (as curl does it): this test program replaces malloc,
 * calloc, realloc and free with wrappers around glibc's own allocator that
 * can fail the Nth allocation and count blocks still live. Off unless a test
 * turns it on; sanitizer builds leave the allocator alone, and under valgrind
 * (which replaces these again) the torture test notices and skips. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long alloc_fail_countdown = -1; /* fail when it reaches 0; -1: never */
static int alloc_tracking;
static long alloc_live;

static int alloc_should_fail(void)
{
    if (alloc_fail_countdown < 0)
        return 0;
    return alloc_fail_countdown-- == 0;
}

void *malloc(size_t n)
{
    void *p = alloc_should_fail() ? NULL : __libc_malloc(n);
    alloc_live += alloc_tracking && p;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = alloc_should_fail() ? NULL : __libc_calloc(n, size);
    alloc_live += alloc_tracking && p;
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p = alloc_should_fail() ? NULL : __libc_realloc(old, n);
    alloc_live += alloc_tracking && p && old == NULL;
    return p;
}

void free(void *p)
{
    alloc_live -= alloc_tracking && p;
    __libc_free(p);
}
#endif

static char err[1024];

/* Parses text that must be accepted; fails the test with the error otherwise. */
static reg_manifest_t *parse_ok_as(const char *filename, const char *text)
{
    reg_manifest_t *m = NULL;
    int rc = reg_manifest_parse(filename, text, strlen(text), &m, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got %d: %s", rc, err);
    assert_non_null(m);
    return m;
}

static reg_manifest_t *parse_ok(const char *yaml)
{
    return parse_ok_as("tine.yaml", yaml);
}

/* Parses text that must be rejected with exactly `message`. */
static void expect_error_as(const char *filename, const char *text, size_t len, const char *message)
{
    reg_manifest_t *m = (reg_manifest_t *)0x1;
    int rc = reg_manifest_parse(filename, text, len, &m, err, sizeof err);
    if (rc != TINE_EINVAL)
        fail_msg("expected TINE_EINVAL for:\n%s\ngot %d (%s)", text, rc, err);
    assert_null(m);
    if (strcmp(err, message) != 0)
        fail_msg("for input:\n%s\nexpected: %s\n     got: %s", text, message, err);
}

static void expect_error(const char *yaml, const char *message)
{
    expect_error_as("tine.yaml", yaml, strlen(yaml), message);
}

static const char design_example[] =
    "app: shop                      # [a-z0-9-], unique per namespace\n"
    "description: tiny shop\n"
    "defaults: { runtime: lua, memory: 128, timeout: 3s, concurrency: 10, warm: 0 }\n"
    "env: { CURRENCY: EUR }         # app-wide, merged under function env\n"
    "functions:\n"
    "  list_items:  { handler: src/items.lua#list, memory: 64 }\n"
    "  get_item:    { handler: src/items.lua#get }\n"
    "  on_gone:     { runtime: exec, handler: scripts/cleanup.sh, timeout: 30s, network: true }\n"
    "  alert:       { handler: src/alert.lua#main }\n"
    "routes:                        # method, path with :params and a trailing *rest\n"
    "  - { method: GET,  path: /items,     function: list_items }\n"
    "  - { method: GET,  path: /items/:id, function: get_item }\n"
    "triggers:\n"
    "  - { on: log,      source: function:get_item, filter: '\"ERROR\"', function: alert }\n"
    "  - { on: log,      source: file:/var/log/app/error.log, filter: 'level=error', function: alert }\n"
    "  - { on: event,    type: container.die, source: 'docker*', function: on_gone }\n"
    "  - { on: schedule, cron: '*/5 * * * *', function: list_items }\n";

static void check_design_example(const reg_manifest_t *m)
{
    assert_string_equal(m->app, "shop");
    assert_string_equal(m->description, "tiny shop");
    assert_null(m->host);
    assert_int_equal(m->env_len, 1);
    assert_string_equal(m->env[0].key, "CURRENCY");
    assert_string_equal(m->env[0].value, "EUR");

    assert_int_equal(m->functions_len, 4);
    const reg_function_t *f = &m->functions[0];
    assert_string_equal(f->name, "list_items");
    assert_int_equal(f->runtime, REG_RUNTIME_LUA);
    assert_string_equal(f->handler, "src/items.lua#list");
    assert_string_equal(f->handler_file, "src/items.lua");
    assert_string_equal(f->handler_export, "list");
    assert_int_equal(f->memory_mb, 64);
    assert_int_equal(f->timeout_ms, 3000);
    assert_int_equal(f->concurrency, 10);
    assert_int_equal(f->warm, 0);
    assert_false(f->network);
    assert_int_equal(f->env_len, 1);
    assert_string_equal(f->env[0].value, "EUR");

    f = &m->functions[2];
    assert_string_equal(f->name, "on_gone");
    assert_int_equal(f->runtime, REG_RUNTIME_EXEC);
    assert_string_equal(f->handler_file, "scripts/cleanup.sh");
    assert_null(f->handler_export);
    assert_int_equal(f->timeout_ms, 30000);
    assert_int_equal(f->memory_mb, 128);
    assert_true(f->network);

    assert_int_equal(m->routes_len, 2);
    assert_string_equal(m->routes[1].method, "GET");
    assert_string_equal(m->routes[1].path, "/items/:id");
    assert_string_equal(m->routes[1].function, "get_item");
    assert_int_equal(m->routes[1].function_index, 1);

    assert_int_equal(m->triggers_len, 4);
    assert_int_equal(m->triggers[0].on, REG_TRIGGER_LOG);
    assert_string_equal(m->triggers[0].source, "function:get_item");
    assert_string_equal(m->triggers[0].filter, "\"ERROR\"");
    assert_string_equal(m->triggers[0].function, "alert");
    assert_int_equal(m->triggers[0].function_index, 3);
    assert_int_equal(m->triggers[0].attempts, 3);
    assert_string_equal(m->triggers[1].source, "file:/var/log/app/error.log");
    assert_int_equal(m->triggers[2].on, REG_TRIGGER_EVENT);
    assert_string_equal(m->triggers[2].type, "container.die");
    assert_string_equal(m->triggers[2].source, "docker*");
    assert_null(m->triggers[2].filter);
    assert_int_equal(m->triggers[3].on, REG_TRIGGER_SCHEDULE);
    assert_string_equal(m->triggers[3].cron, "*/5 * * * *");
    assert_int_equal(m->triggers[3].function_index, 0);
}

static void test_design_example_parses(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok(design_example);
    check_design_example(m);
    size_t idx = 99;
    assert_true(reg_manifest_function_index(m, "alert", 5, &idx));
    assert_int_equal(idx, 3);
    assert_false(reg_manifest_function_index(m, "nope", 4, &idx));
    assert_false(reg_manifest_function_index(NULL, "alert", 5, &idx));
    reg_manifest_free(m);
    reg_manifest_free(NULL);
}

static const char design_example_json[] =
    "{\n"
    "  \"app\": \"shop\",\n"
    "  \"description\": \"tiny shop\",\n"
    "  \"defaults\": {\"runtime\": \"lua\", \"memory\": 128, \"timeout\": \"3s\", \"concurrency\": 10, \"warm\": 0},\n"
    "  \"env\": {\"CURRENCY\": \"EUR\"},\n"
    "  \"functions\": {\n"
    "    \"list_items\": {\"handler\": \"src/items.lua#list\", \"memory\": 64},\n"
    "    \"get_item\": {\"handler\": \"src/items.lua#get\"},\n"
    "    \"on_gone\": {\"runtime\": \"exec\", \"handler\": \"scripts/cleanup.sh\", \"timeout\": \"30s\", "
    "\"network\": true},\n"
    "    \"alert\": {\"handler\": \"src/alert.lua#main\"}\n"
    "  },\n"
    "  \"routes\": [\n"
    "    {\"method\": \"GET\", \"path\": \"/items\", \"function\": \"list_items\"},\n"
    "    {\"method\": \"GET\", \"path\": \"/items/:id\", \"function\": \"get_item\"}\n"
    "  ],\n"
    "  \"triggers\": [\n"
    "    {\"on\": \"log\", \"source\": \"function:get_item\", \"filter\": \"\\\"ERROR\\\"\", \"function\": \"alert\"},\n"
    "    {\"on\": \"log\", \"source\": \"file:/var/log/app/error.log\", \"filter\": \"level=error\", "
    "\"function\": \"alert\"},\n"
    "    {\"on\": \"event\", \"type\": \"container.die\", \"source\": \"docker*\", \"function\": \"on_gone\"},\n"
    "    {\"on\": \"schedule\", \"cron\": \"*/5 * * * *\", \"function\": \"list_items\"}\n"
    "  ]\n"
    "}\n";

static void test_json_same_as_yaml(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok_as("tine.json", design_example_json);
    check_design_example(m);
    reg_manifest_free(m);
}

/* JSON that is valid but unusual for YAML: tabs, a key whose ':' is on the
 * next line, escapes including a surrogate pair, and "\/". */
static void test_json_awkward_but_valid(void **state)
{
    (void)state;
    const char *json = "{\n"
                       "\t\"app\"\n"
                       "\t\t: \"a\",\n"
                       "\t\"description\": \"\\ud83d\\ude00 caf\\u00e9 a\\/b\\tc\",\n"
                       "\t\"functions\": {\"f\": {\"handler\": \"f.lua#main\", \"memory\": 1.28e2}},\n"
                       "\t\"routes\": [{\"method\": \"get\", \"path\": \"/\", \"function\": \"f\"}]\n"
                       "}";
    reg_manifest_t *m = parse_ok_as("tine.json", json);
    assert_string_equal(m->app, "a");
    assert_string_equal(m->description, "\xF0\x9F\x98\x80 caf\xC3\xA9 a/b\tc");
    assert_int_equal(m->functions[0].memory_mb, 128);
    assert_string_equal(m->routes[0].method, "GET");
    reg_manifest_free(m);

    /* A semantic error after a rewritten surrogate pair keeps its column. */
    const char *bad = "{\"description\": \"\\ud83d\\ude00\", \"app\": \"A\", \"functions\": {}}";
    expect_error_as("tine.json", bad, strlen(bad),
                    "tine.json:1:40: app: 'A' may hold only lowercase letters, digits and '-'");
}

static void test_json_errors(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"app\": \"a\",\n \"functions\": {\"f\": {\"handler\": \"f.lua#main\",}}}",
         "tine.json:2:46: syntax error: string or '}' expected near '}'"},
        {"{\"app\": \"a\"\n  \"functions\": {}}", "tine.json:2:13: syntax error: '}' expected near '\"functions\"'"},
        {"app: a\n", "tine.json:1:3: syntax error: invalid token near 'app'"},
        {"{\"app\": \"a\", # comment\n}", "tine.json:1:14: syntax error: string or '}' expected near '#'"},
        {"{\"app\": \"shop\",\n  \"functions\": {\n    \"f\": {\"handler\": \"f.lua#main\", \"memory\": \"lots\"}\n  }\n}",
         "tine.json:3:46: functions.f.memory: expected megabytes as an integer 16..10240 or a size such as 128Mi, "
         "512MB or 1Gi, got 'lots'"},
        {"{\"app\": \"shop\", \"functions\": {\"f\": {\"handler\": \"f.lua#main\"}},\n \"routes\": [1]}",
         "tine.json:2:13: routes[0]: expected a mapping { method, path, function }, got the number 1"},
        {"{\"app\": \"shop\", \"app\": \"x\", \"functions\": {}}",
         "tine.json:1:17: app: duplicate key (first given at line 1, column 2)"},
        {"[1, 2]", "tine.json:1:1: expected a mapping with at least app and functions at the top level, got a "
                   "sequence"},
        {"", "tine.json:1:1: syntax error: unexpected token near end of file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error_as("tine.json", cases[i][0], strlen(cases[i][0]), cases[i][1]);
}

static void test_defaults_and_units(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a1\n"
                                 "host: api.example.com\n"
                                 "defaults:\n"
                                 "  runtime: exec\n"
                                 "  memory: 1Gi\n"
                                 "  timeout: 1m30s\n"
                                 "  concurrency: 4\n"
                                 "  warm: 2\n"
                                 "functions:\n"
                                 "  run: { handler: bin/run }\n"
                                 "  small: { handler: bin/small, memory: 256Mi, timeout: 250ms, warm: 0 }\n"
                                 "  mb: { handler: bin/mb, memory: \"512MB\", timeout: \"2m\", concurrency: 2 }\n"
                                 "  gb: { handler: bin/gb, memory: 2GB, timeout: 15m, concurrency: 1000, warm: 1000 }\n"
                                 "  lua: { runtime: lua, handler: a/b/c.lua#_x9, network: false }\n");
    assert_string_equal(m->host, "api.example.com");
    assert_int_equal(m->functions_len, 5);
    const reg_function_t *f = &m->functions[0];
    assert_int_equal(f->runtime, REG_RUNTIME_EXEC);
    assert_int_equal(f->memory_mb, 1024);
    assert_int_equal(f->timeout_ms, 90000);
    assert_int_equal(f->concurrency, 4);
    assert_int_equal(f->warm, 2);
    assert_int_equal(f->env_len, 0);
    f = &m->functions[1];
    assert_int_equal(f->memory_mb, 256);
    assert_int_equal(f->timeout_ms, 250);
    assert_int_equal(f->warm, 0);
    f = &m->functions[3];
    assert_int_equal(f->memory_mb, 2048);
    assert_int_equal(f->timeout_ms, 900000);
    assert_int_equal(f->concurrency, 1000);
    assert_int_equal(f->warm, 1000);
    f = &m->functions[4];
    assert_int_equal(f->runtime, REG_RUNTIME_LUA);
    assert_string_equal(f->handler_file, "a/b/c.lua");
    assert_string_equal(f->handler_export, "_x9");
    assert_int_equal(f->memory_mb, 1024);
    reg_manifest_free(m);

    /* Without defaults: lua, 128 MB, 3s, concurrency 10, warm 0. */
    m = parse_ok("app: a\nfunctions:\n  f: { handler: f.lua#main }\n");
    f = &m->functions[0];
    assert_int_equal(f->runtime, REG_RUNTIME_LUA);
    assert_int_equal(f->memory_mb, 128);
    assert_int_equal(f->timeout_ms, 3000);
    assert_int_equal(f->concurrency, 10);
    assert_int_equal(f->warm, 0);
    assert_false(f->network);
    assert_null(m->description);
    assert_int_equal(m->routes_len, 0);
    assert_int_equal(m->triggers_len, 0);
    reg_manifest_free(m);
}

/* runtime: python, in defaults or per function: FILE.py#EXPORT with an
 * importable module path. */
static void test_python_runtime(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "defaults: { runtime: python, memory: 256 }\n"
                                 "functions:\n"
                                 "  h: { handler: src/app.py#handle }\n"
                                 "  m: { handler: pkg/sub_2/_mod.py#match }\n"
                                 "  l: { runtime: lua, handler: f.lua#main }\n"
                                 "  x: { runtime: exec, handler: bin/run.py }\n");
    const reg_function_t *f = &m->functions[0];
    assert_int_equal(f->runtime, REG_RUNTIME_PYTHON);
    assert_string_equal(f->handler_file, "src/app.py");
    assert_string_equal(f->handler_export, "handle");
    assert_int_equal(f->memory_mb, 256);
    f = &m->functions[1];
    assert_int_equal(f->runtime, REG_RUNTIME_PYTHON);
    assert_string_equal(f->handler_file, "pkg/sub_2/_mod.py");
    assert_string_equal(f->handler_export, "match"); /* a soft keyword is a name */
    assert_int_equal(m->functions[2].runtime, REG_RUNTIME_LUA);
    assert_int_equal(m->functions[3].runtime, REG_RUNTIME_EXEC);
    assert_string_equal(reg_runtime_name(REG_RUNTIME_PYTHON), "python");
    assert_string_equal(reg_runtime_name(REG_RUNTIME_LUA), "lua");
    assert_string_equal(reg_runtime_name(REG_RUNTIME_EXEC), "exec");
    reg_manifest_free(m);

    m = parse_ok("app: a\nfunctions:\n  p: { runtime: python, handler: app.py#handle }\n");
    assert_int_equal(m->functions[0].runtime, REG_RUNTIME_PYTHON);
    assert_string_equal(m->functions[0].handler_file, "app.py");
    reg_manifest_free(m);
}

/* runtime: node, in defaults or per function: FILE.js#EXPORT (.mjs and
 * .cjs too; `default` names the default export). */
static void test_node_runtime(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "defaults: { runtime: node, memory: 256 }\n"
                                 "functions:\n"
                                 "  h: { handler: src/app.js#handle }\n"
                                 "  e: { handler: lib/mod.mjs#default }\n"
                                 "  c: { handler: my-lib/x.cjs#run_2 }\n"
                                 "  p: { runtime: python, handler: app.py#handle }\n");
    const reg_function_t *f = &m->functions[0];
    assert_int_equal(f->runtime, REG_RUNTIME_NODE);
    assert_string_equal(f->handler_file, "src/app.js");
    assert_string_equal(f->handler_export, "handle");
    assert_int_equal(f->memory_mb, 256);
    assert_string_equal(m->functions[1].handler_file, "lib/mod.mjs");
    assert_string_equal(m->functions[1].handler_export, "default");
    assert_string_equal(m->functions[2].handler_file, "my-lib/x.cjs");
    assert_int_equal(m->functions[3].runtime, REG_RUNTIME_PYTHON);
    assert_string_equal(reg_runtime_name(REG_RUNTIME_NODE), "node");
    reg_manifest_free(m);
}

static void test_env_merged_and_sorted(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "env: { ZED: z, ALPHA: 1, SHARED: app, _UNDER: true }\n"
                                 "functions:\n"
                                 "  f:\n"
                                 "    handler: f.lua#main\n"
                                 "    env: { SHARED: fn, MID: \"quoted: yes\", N: 0.50 }\n"
                                 "  g: { handler: g.lua#main }\n");
    assert_int_equal(m->env_len, 4);
    assert_string_equal(m->env[0].key, "ALPHA");
    assert_string_equal(m->env[0].value, "1");
    assert_string_equal(m->env[1].key, "SHARED");
    assert_string_equal(m->env[2].key, "ZED");
    assert_string_equal(m->env[3].key, "_UNDER");
    assert_string_equal(m->env[3].value, "true");

    size_t fi = 0, gi = 0;
    assert_true(reg_manifest_function_index(m, "f", 1, &fi));
    assert_true(reg_manifest_function_index(m, "g", 1, &gi));
    const reg_function_t *f = &m->functions[fi];
    const char *expected[][2] = {{"ALPHA", "1"}, {"MID", "quoted: yes"}, {"N", "0.50"},
                                 {"SHARED", "fn"}, {"ZED", "z"},         {"_UNDER", "true"}};
    assert_int_equal(f->env_len, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(f->env[i].key, expected[i][0]);
        assert_string_equal(f->env[i].value, expected[i][1]);
    }
    const reg_function_t *g = &m->functions[gi];
    assert_int_equal(g->env_len, 4);
    assert_string_equal(g->env[1].value, "app");
    reg_manifest_free(m);
}

static void test_routes_and_triggers_details(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "functions: { f: { handler: f.lua#main }, g: { handler: g.lua#main } }\n"
                                 "routes:\n"
                                 "  - { method: get, path: /items/:id, function: f }\n"
                                 "  - { method: Post, path: /items/:key, function: g }\n"
                                 "  - { method: ANY, path: /items/:id, function: g }\n"
                                 "  - { method: GET, path: /items/new, function: g }\n"
                                 "  - { method: GET, path: /files/*rest, function: g }\n"
                                 "  - { method: GET, path: /files/x/*, function: g }\n"
                                 "  - { method: options, path: '/a%20b/~x/_y.z-w', function: g }\n"
                                 "  - { method: GET, path: /, function: g }\n"
                                 "triggers:\n"
                                 "  - { on: schedule, cron: '@every 90s', function: g, attempts: 100 }\n"
                                 "  - { on: event, type: 'a.*', function: f, attempts: 1 }\n"
                                 "  - { on: log, source: function:g, function: f }\n");
    assert_int_equal(m->routes_len, 8);
    assert_string_equal(m->routes[0].method, "GET");
    assert_string_equal(m->routes[1].method, "POST");
    assert_string_equal(m->routes[2].method, "ANY");
    assert_string_equal(m->routes[6].method, "OPTIONS");
    assert_int_equal(m->routes[1].function_index, 1);
    assert_int_equal(m->triggers[0].attempts, 100);
    assert_string_equal(m->triggers[0].cron, "@every 90s");
    assert_int_equal(m->triggers[1].attempts, 1);
    assert_null(m->triggers[1].source);
    assert_null(m->triggers[2].filter);
    assert_int_equal(m->triggers[0].source_function_index, SIZE_MAX);
    assert_int_equal(m->triggers[1].source_function_index, SIZE_MAX);
    assert_int_equal(m->triggers[2].source_function_index, 1); /* function:g */
    assert_int_equal(m->triggers[2].function_index, 0);
    reg_manifest_free(m);
}

#define BASE "app: shop\nfunctions:\n  f: { handler: f.lua#main }\n"

/* Bad manifests and the exact message each must produce. */
static const char *const error_cases[][2] = {
    /* syntax and document-level problems */
    {"app: shop\nfunctions:\n  f: {handler: f.lua#main}\n   x: 1\n",
     "tine.yaml:4:4: syntax error: did not find expected key (while parsing a block mapping started at line 3, "
     "column 3)"},
    {"app: shop\n  bad: here: x\n", "tine.yaml:2:6: syntax error: mapping values are not allowed in this context"},
    {BASE "triggers:\n  - { on: schedule, cron: */5 * * * *, function: f }\n",
     "tine.yaml:5:28: syntax error: did not find expected alphabetic or numeric character (while scanning an alias "
     "started at line 5, column 27); a value starting with '*' must be quoted, e.g. cron: '*/5 * * * *'"},
    {"", "tine.yaml:1:1: the manifest is empty; expected a mapping with at least app and functions"},
    {"# only a comment\n", "tine.yaml:2:1: the manifest is empty; expected a mapping with at least app and functions"},
    {BASE "---\napp: other\n", "tine.yaml:4:1: only one YAML document is allowed in a manifest"},
    {"- app: shop\n", "tine.yaml:1:1: expected a mapping with at least app and functions at the top level, got a "
                      "sequence"},
    {"base: &b { handler: f.lua#main }\n", "tine.yaml:1:1: base: unknown key; expected one of app, namespace, description, host, "
                                           "defaults, env, functions, routes, triggers, allow_outbound, limits, release, rollout"},
    {"app: shop\nfunctions:\n  f: &x { handler: f.lua#main }\n  g: *x\n",
     "tine.yaml:4:6: functions.g: aliases (*x) are not allowed in a manifest; write the value out"},
    {"app: !!str shop\n", "tine.yaml:1:6: app: YAML tags ('tag:yaml.org,2002:str') are not supported; quote the value "
                          "to make it a string"},
    {"? [a, b]\n: 1\n", "tine.yaml:1:3: mapping keys must be plain strings, not sequences"},
    {"app: shop\napp: again\n", "tine.yaml:2:1: app: duplicate key (first given at line 1, column 1)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memory: 64, memory: 32 }\n",
     "tine.yaml:3:41: functions.f.memory: duplicate key (first given at line 3, column 29)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main }\n  f: { handler: g.lua#main }\n",
     "tine.yaml:4:3: functions.f: duplicate key (first given at line 3, column 3)"},
    {"app: \"a\\0b\"\nfunctions: {}\n", "tine.yaml:1:6: app: expected an app name such as my-shop without NUL characters"},

    /* top level */
    {"functions: { f: { handler: f.lua#main } }\n", "tine.yaml:1:1: missing required key 'app'"},
    {"app: shop\n", "tine.yaml:1:1: missing required key 'functions'"},
    {"app: shop\nfunctions:\nfuncs: 1\n", "tine.yaml:3:1: funcs: unknown key; expected one of app, namespace, description, host, "
                                          "defaults, env, functions, routes, triggers, allow_outbound, limits, release, rollout"},
    {"app: Shop\nfunctions: {}\n", "tine.yaml:1:6: app: 'Shop' may hold only lowercase letters, digits and '-'"},
    {"app: -shop\nfunctions: {}\n", "tine.yaml:1:6: app: '-shop' must start with a letter or digit"},
    {"app: shop-\nfunctions: {}\n", "tine.yaml:1:6: app: 'shop-' must not end with '-'"},
    {"app: ''\nfunctions: {}\n", "tine.yaml:1:6: app: '' must be 1..63 characters long, not 0"},
    {"app: 1234567890123456789012345678901234567890123456789012345678901234\nfunctions: {}\n",
     "tine.yaml:1:6: app: expected an app name such as my-shop, got the number "
     "1234567890123456789012345678901234567890 (quote it to make it a string)"},
    {"app: a123456789012345678901234567890123456789012345678901234567890123\nfunctions: {}\n",
     "tine.yaml:1:6: app: 'a12345678901234567890123456789012345678901234567...' must be 1..63 characters long, not "
     "64"},
    {"app:\nfunctions: {}\n", "tine.yaml:1:5: app: expected an app name such as my-shop, got nothing (null)"},
    {"app: shop\ndescription: [a]\nfunctions: {}\n",
     "tine.yaml:2:14: description: expected a string, got a sequence"},
    {"app: shop\ndescription: true\nfunctions: {}\n",
     "tine.yaml:2:14: description: expected a string, got the boolean true (quote it to make it a string)"},
    {"app: shop\nhost: Shop.example.com\nfunctions: {}\n",
     "tine.yaml:2:7: host: 'Shop.example.com' is not a valid hostname: only lowercase letters, digits, '-' and '.' "
     "are allowed"},
    {"app: shop\nhost: shop..example.com\nfunctions: {}\n",
     "tine.yaml:2:7: host: 'shop..example.com' is not a valid hostname: empty label"},
    {"app: shop\nhost: -shop.com\nfunctions: {}\n",
     "tine.yaml:2:7: host: '-shop.com' is not a valid hostname: a label starts or ends with '-'"},
    {"app: shop\nfunctions: {}\n",
     "tine.yaml:2:12: functions: declare at least one function, e.g. hello: { handler: src/hello.lua#main }"},
    {"app: shop\nfunctions: [f]\n", "tine.yaml:2:12: functions: expected a mapping of function names to functions, "
                                    "got a sequence"},

    /* functions */
    {"app: shop\nfunctions:\n  get item: { handler: f.lua#main }\n",
     "tine.yaml:3:3: functions['get item']: function names must be 1..64 letters, digits, '_' or '-'"},
    {"app: shop\nfunctions:\n  f: src/f.lua#main\n",
     "tine.yaml:3:6: functions.f: expected a mapping with at least handler, e.g. { handler: src/items.lua#list }, "
     "got 'src/f.lua#main'"},
    {"app: shop\nfunctions:\n  f: { memory: 64 }\n", "tine.yaml:3:6: functions.f: missing required key 'handler'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memroy: 64 }\n",
     "tine.yaml:3:29: functions.f.memroy: unknown key; expected one of handler, runtime, memory, timeout, "
     "concurrency, warm, env, network, max_body, auth, group"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua }\n",
     "tine.yaml:3:17: functions.f.handler: expected FILE.lua#EXPORT such as src/items.lua#list, got 'f.lua'"},
    {"app: shop\nfunctions:\n  f: { handler: f.js#main }\n",
     "tine.yaml:3:17: functions.f.handler: the file of a lua handler must end in .lua, got 'f.js#main'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#1x }\n",
     "tine.yaml:3:17: functions.f.handler: 'f.lua#1x': the export after '#' must be a Lua identifier "
     "([A-Za-z_][A-Za-z0-9_]*)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#end }\n",
     "tine.yaml:3:17: functions.f.handler: 'f.lua#end': the export after '#' is a Lua keyword"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua# }\n",
     "tine.yaml:3:17: functions.f.handler: 'f.lua#': the export after '#' must be a Lua identifier "
     "([A-Za-z_][A-Za-z0-9_]*)"},
    {"app: shop\nfunctions:\n  f: { handler: /srv/f.lua#main }\n",
     "tine.yaml:3:17: functions.f.handler: '/srv/f.lua#main': the handler path must be relative to the bundle root "
     "(no leading '/')"},
    {"app: shop\nfunctions:\n  f: { handler: src/../f.lua#main }\n",
     "tine.yaml:3:17: functions.f.handler: 'src/../f.lua#main': the handler path must not contain '..' segments"},
    {"app: shop\nfunctions:\n  f: { handler: ./f.lua#main }\n",
     "tine.yaml:3:17: functions.f.handler: './f.lua#main': the handler path must not contain '.' segments"},
    {"app: shop\nfunctions:\n  f: { handler: src//f.lua#main }\n",
     "tine.yaml:3:17: functions.f.handler: 'src//f.lua#main': the handler path must not contain empty segments "
     "('//' or a trailing '/')"},
    {"app: shop\nfunctions:\n  f: { handler: 'src\\f.lua#main' }\n",
     "tine.yaml:3:17: functions.f.handler: 'src\\\\f.lua#main': the handler path must use '/' to separate "
     "directories, not backslashes"},
    {"app: shop\nfunctions:\n  f: { runtime: exec, handler: bin/run#x }\n",
     "tine.yaml:3:32: functions.f.handler: an exec handler is a file path without '#', got 'bin/run#x'"},
    {"app: shop\nfunctions:\n  f: { runtime: exec, handler: bin/ }\n",
     "tine.yaml:3:32: functions.f.handler: 'bin/': the handler path must not contain empty segments ('//' or a "
     "trailing '/')"},
    {"app: shop\nfunctions:\n  f: { runtime: ruby, handler: f.rb }\n",
     "tine.yaml:3:17: functions.f.runtime: expected lua, python, node or exec, got 'ruby'"},
    {"app: shop\nfunctions:\n  f: { runtime: node, handler: src/app.ts#handle }\n",
     "tine.yaml:3:32: functions.f.handler: the file of a node handler must end in .js, .mjs or .cjs, got "
     "'src/app.ts#handle'"},
    {"app: shop\nfunctions:\n  f: { runtime: node, handler: src/app.js }\n",
     "tine.yaml:3:32: functions.f.handler: expected FILE.js#EXPORT such as src/app.js#handle, got 'src/app.js'"},
    {"app: shop\nfunctions:\n  f: { runtime: node, handler: app.js#a-b }\n",
     "tine.yaml:3:32: functions.f.handler: 'app.js#a-b': the export after '#' must be a JavaScript identifier "
     "([A-Za-z_][A-Za-z0-9_]*)"},
    {"app: shop\nfunctions:\n  f: { runtime: node, handler: ../app.js#h }\n",
     "tine.yaml:3:32: functions.f.handler: '../app.js#h': the handler path must not contain '..' segments"},
    {"app: shop\ndefaults: { runtime: node }\nfunctions:\n  f: { handler: f.js#h, network: true }\n",
     "tine.yaml:4:34: functions.f.network: network access applies only to runtime exec; this function's runtime is "
     "node"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: f.py }\n",
     "tine.yaml:3:34: functions.f.handler: expected FILE.py#EXPORT such as src/app.py#handle, got 'f.py'"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: f.lua#main }\n",
     "tine.yaml:3:34: functions.f.handler: the file of a python handler must end in .py, got 'f.lua#main'"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: f.py#class }\n",
     "tine.yaml:3:34: functions.f.handler: 'f.py#class': the export after '#' is a Python keyword"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: f.py#2x }\n",
     "tine.yaml:3:34: functions.f.handler: 'f.py#2x': the export after '#' must be a Python identifier "
     "([A-Za-z_][A-Za-z0-9_]*)"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: my-lib/app.py#h }\n",
     "tine.yaml:3:34: functions.f.handler: 'my-lib/app.py#h': the file of a python handler must be a module path: "
     "each directory and the name before .py a Python identifier ([A-Za-z_][A-Za-z0-9_]*, not a keyword)"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: src/app.v2.py#h }\n",
     "tine.yaml:3:34: functions.f.handler: 'src/app.v2.py#h': the file of a python handler must be a module path: "
     "each directory and the name before .py a Python identifier ([A-Za-z_][A-Za-z0-9_]*, not a keyword)"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: ../f.py#h }\n",
     "tine.yaml:3:34: functions.f.handler: '../f.py#h': the handler path must not contain '..' segments"},
    {"app: shop\ndefaults: { runtime: python }\nfunctions:\n  f: { handler: f.py#h, network: true }\n",
     "tine.yaml:4:34: functions.f.network: network access applies only to runtime exec; this function's runtime is "
     "python"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memory: 8 }\n",
     "tine.yaml:3:37: functions.f.memory: 8 is out of range 16..10240"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memory: 20Gi }\n",
     "tine.yaml:3:37: functions.f.memory: '20Gi' is out of range 16Mi..10240Mi (10Gi)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memory: 128mb }\n",
     "tine.yaml:3:37: functions.f.memory: expected megabytes as an integer 16..10240 or a size such as 128Mi, "
     "512MB or 1Gi, got '128mb'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, memory: 128.5 }\n",
     "tine.yaml:3:37: functions.f.memory: expected an integer 16..10240, got 128.5"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, timeout: 30 }\n",
     "tine.yaml:3:38: functions.f.timeout: expected a duration such as 500ms or 3s, got the bare number 30 (add a "
     "unit)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, timeout: 3sec }\n",
     "tine.yaml:3:38: functions.f.timeout: expected a duration such as 500ms or 3s (units h, m, s, ms), got '3sec'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, timeout: 30s1m }\n",
     "tine.yaml:3:38: functions.f.timeout: expected a duration such as 500ms or 3s (units h, m, s, ms), got "
     "'30s1m'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, timeout: 15m1ms }\n",
     "tine.yaml:3:38: functions.f.timeout: '15m1ms' is out of range 1ms..15m"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, timeout: 0s }\n",
     "tine.yaml:3:38: functions.f.timeout: '0s' is out of range 1ms..15m"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, concurrency: 0 }\n",
     "tine.yaml:3:42: functions.f.concurrency: 0 is out of range 1..1000"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, concurrency: -3 }\n",
     "tine.yaml:3:42: functions.f.concurrency: -3 is out of range 1..1000"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, concurrency: '5' }\n",
     "tine.yaml:3:42: functions.f.concurrency: expected an integer 1..1000, got '5'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, concurrency: 99999999999999999999 }\n",
     "tine.yaml:3:42: functions.f.concurrency: 99999999999999999999 is out of range 1..1000"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, warm: 11 }\n",
     "tine.yaml:3:35: functions.f.warm: 11 exceeds concurrency 10 (from defaults); warm must be 0..concurrency"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, warm: 3, concurrency: 2 }\n",
     "tine.yaml:3:35: functions.f.warm: 3 exceeds concurrency 2; warm must be 0..concurrency"},
    {"app: shop\ndefaults: { warm: 4 }\nfunctions:\n  f: { handler: f.lua#main, concurrency: 2 }\n",
     "tine.yaml:4:42: functions.f.concurrency: 2 is below warm 4 (from defaults); warm must be 0..concurrency"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, network: yes }\n",
     "tine.yaml:3:38: functions.f.network: expected true or false, got 'yes'"},
    {"app: shop\nfunctions:\n  f: { runtime: python, handler: f.py#h, group: g }\n",
     "tine.yaml:3:49: functions.f.group: co-location groups hold runtime lua functions only; function f has "
     "runtime python (drop group: or make it runtime: lua)"},
    {"app: shop\ndefaults: { runtime: exec }\nfunctions:\n  f: { handler: run.sh, group: g }\n",
     "tine.yaml:4:32: functions.f.group: co-location groups hold runtime lua functions only; function f has "
     "runtime exec (drop group: or make it runtime: lua)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, group: 'a b' }\n",
     "tine.yaml:3:36: functions.f.group: group names must be 1..64 letters, digits, '_' or '-', got 'a b'"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, group: 12 }\n",
     "tine.yaml:3:36: functions.f.group: expected a group name such as orders, got the number 12 (quote it to make it a "
     "string)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, network: true }\n",
     "tine.yaml:3:38: functions.f.network: network access applies only to runtime exec; this function's runtime is "
     "lua"},

    /* defaults */
    {"app: shop\ndefaults: { handler: f.lua#main }\nfunctions: {}\n",
     "tine.yaml:2:13: defaults.handler: unknown key; expected one of runtime, memory, timeout, concurrency, warm, "
     "max_body"},
    {"app: shop\ndefaults: { warm: 20 }\nfunctions: {}\n",
     "tine.yaml:2:19: defaults.warm: 20 exceeds concurrency 10 (the built-in default); warm must be "
     "0..concurrency"},
    {"app: shop\ndefaults: { timeout: 100 }\nfunctions: {}\n",
     "tine.yaml:2:22: defaults.timeout: expected a duration such as 500ms or 3s, got the bare number 100 (add a "
     "unit)"},
    {"app: shop\ndefaults: lua\nfunctions: {}\n",
     "tine.yaml:2:11: defaults: expected a mapping of runtime, memory, timeout, concurrency, warm, max_body, got "
     "'lua'"},

    /* env */
    {"app: shop\nenv: { 1BAD: x }\nfunctions: {}\n",
     "tine.yaml:2:8: env.1BAD: variable names must match [A-Za-z_][A-Za-z0-9_]*"},
    {"app: shop\nenv: { MY-VAR: x }\nfunctions: {}\n",
     "tine.yaml:2:8: env.MY-VAR: variable names must match [A-Za-z_][A-Za-z0-9_]*"},
    {"app: shop\nenv: { A: }\nfunctions: {}\n",
     "tine.yaml:2:11: env.A: expected a string, number or boolean, got nothing (null)"},
    {"app: shop\nfunctions:\n  f: { handler: f.lua#main, env: { A: [1] } }\n",
     "tine.yaml:3:39: functions.f.env.A: expected a string, number or boolean, got a sequence"},
    {"app: shop\nenv: [A=1]\nfunctions: {}\n",
     "tine.yaml:2:6: env: expected a mapping of NAME: value, got a sequence"},

    /* routes */
    {BASE "routes: { method: GET }\n",
     "tine.yaml:4:9: routes: expected a sequence of routes such as - { method: GET, path: /items, function: list }, "
     "got a mapping"},
    {BASE "routes:\n  - { method: GET, path: /x }\n", "tine.yaml:5:5: routes[0]: missing required key 'function'"},
    {BASE "routes:\n  - { method: GET, path: /x, function: f, auth: none }\n",
     "tine.yaml:5:49: routes[0].auth: expected public or key, got 'none'"},
    {BASE "routes:\n  - { method: GET, path: /x, function: f, aut: key }\n",
     "tine.yaml:5:43: routes[0].aut: unknown key; expected one of method, path, function, auth"},
    {BASE "routes:\n  - { method: FETCH, path: /x, function: f }\n",
     "tine.yaml:5:15: routes[0].method: expected one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, ANY, got "
     "'FETCH'"},
    {BASE "routes:\n  - { method: GET, path: /x, function: g }\n",
     "tine.yaml:5:40: routes[0].function: no function named 'g' (declared: f)"},
    {"app: shop\nfunctions: { a: { handler: a.lua#m }, b: { handler: b.lua#m } }\n"
     "routes:\n  - { method: GET, path: /x, function: a }\n  - { method: GET, path: /y, function: x }\n",
     "tine.yaml:5:40: routes[1].function: no function named 'x' (declared: a, b)"},
    {BASE "routes:\n  - { method: GET, path: x, function: f }\n",
     "tine.yaml:5:26: routes[0].path: 'x' must start with '/'"},
    {BASE "routes:\n  - { method: GET, path: /a//b, function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a//b' segment 2 '': empty segment (a double or trailing /)"},
    {BASE "routes:\n  - { method: GET, path: /items/, function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/items/' segment 2 '': empty segment (a double or trailing /)"},
    {BASE "routes:\n  - { method: GET, path: '/a b', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a b' segment 1 'a b': character ' ' is not allowed (literals use A-Z a-z "
     "0-9 . _ ~ - and %XX)"},
    {BASE "routes:\n  - { method: GET, path: /a%2, function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a%2' segment 1 'a%2': '%' must be followed by two hex digits"},
    {BASE "routes:\n  - { method: GET, path: '/*rest/x', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/*rest/x' segment 1 '*rest': a *rest segment must be the last one"},
    {BASE "routes:\n  - { method: GET, path: '/a/:', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a/:' segment 2 ':': parameter name is empty"},
    {BASE "routes:\n  - { method: GET, path: '/a/:1d', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a/:1d' segment 2 ':1d': parameter names start with a letter or _"},
    {BASE "routes:\n  - { method: GET, path: '/:id/x/:id', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/:id/x/:id' segment 3 ':id': duplicate parameter name 'id'"},
    {BASE "routes:\n  - { method: GET, path: '/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/:q', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p...' segment 17 ':q': more "
     "than 16 parameters"},
    /* The route table's rules, so nothing accepted here fails at deploy. */
    {BASE "routes:\n  - { method: GET, path: '/a/../b', function: f }\n",
     "tine.yaml:5:26: routes[0].path: '/a/../b' segment 2 '..': '.' and '..' segments are not allowed"},
    {BASE "routes:\n  - { method: GET, path: 42, function: f }\n",
     "tine.yaml:5:26: routes[0].path: expected a route path such as /items/:id, got the number 42 (quote it to make "
     "it a string)"},
    {BASE "routes:\n"
          "  - { method: GET, path: /items, function: f }\n"
          "  - { method: GET, path: /items/:id, function: f }\n"
          "  - { method: POST, path: /items/:id, function: f }\n"
          "  - { method: get, path: /items/:key, function: f }\n",
     "tine.yaml:8:5: routes[3]: GET /items/:key conflicts with routes[1] (GET /items/:id)"},
    {BASE "routes:\n"
          "  - { method: ANY, path: /files/*path, function: f }\n"
          "  - { method: any, path: /files/*, function: f }\n",
     "tine.yaml:6:5: routes[1]: ANY /files/* conflicts with routes[0] (ANY /files/*path)"},

    /* triggers */
    {BASE "triggers:\n  - { function: f }\n", "tine.yaml:5:5: triggers[0]: missing required key 'on'"},
    {BASE "triggers:\n  - { on: webhook, function: f }\n",
     "tine.yaml:5:11: triggers[0].on: expected log, event or schedule, got 'webhook'"},
    {BASE "triggers:\n  - { on: schedule, cron: '@daily' }\n",
     "tine.yaml:5:5: triggers[0]: missing required key 'function'"},
    {BASE "triggers:\n  - { on: schedule, function: f }\n", "tine.yaml:5:5: triggers[0]: missing required key 'cron'"},
    {BASE "triggers:\n  - { on: schedule, cron: '0 24 * * *', function: f }\n",
     "tine.yaml:5:27: triggers[0].cron: field 2 (hour): 24 is out of range 0-23"},
    {BASE "triggers:\n  - { on: schedule, cron: '@every 1s', function: f, source: x }\n",
     "tine.yaml:5:53: triggers[0].source: not allowed with on: schedule; expected one of on, function, attempts, "
     "cron"},
    {BASE "triggers:\n  - { on: log, source: function:f, function: f, cron: '@daily' }\n",
     "tine.yaml:5:49: triggers[0].cron: not allowed with on: log; expected one of on, function, attempts, source, "
     "filter"},
    {BASE "triggers:\n  - { on: event, type: x, function: f, retries: 3 }\n",
     "tine.yaml:5:40: triggers[0].retries: unknown key; expected one of on, function, attempts, type, source"},
    {BASE "triggers:\n  - { on: event, function: f }\n", "tine.yaml:5:5: triggers[0]: missing required key 'type'"},
    {BASE "triggers:\n  - { on: event, type: '', function: f }\n",
     "tine.yaml:5:24: triggers[0].type: expected an event type or glob such as container.die, got an empty string"},
    {BASE "triggers:\n  - { on: log, function: f }\n", "tine.yaml:5:5: triggers[0]: missing required key 'source'"},
    {BASE "triggers:\n  - { on: log, source: function:nope, function: f }\n",
     "tine.yaml:5:24: triggers[0].source: no function named 'nope' (declared: f)"},
    {BASE "triggers:\n  - { on: log, source: file:var/log/x.log, function: f }\n",
     "tine.yaml:5:24: triggers[0].source: 'file:var/log/x.log': expected an absolute file path after file:"},
    {BASE "triggers:\n  - { on: log, source: file:/var/../etc/shadow, function: f }\n",
     "tine.yaml:5:24: triggers[0].source: 'file:/var/../etc/shadow': the path must not contain '..' segments"},
    {BASE "triggers:\n  - { on: log, source: file:/var/log/, function: f }\n",
     "tine.yaml:5:24: triggers[0].source: 'file:/var/log/': expected a file, not a directory"},
    {BASE "triggers:\n  - { on: log, source: stdout, function: f }\n",
     "tine.yaml:5:24: triggers[0].source: expected function:NAME or file:/absolute/path, got 'stdout'"},
    {BASE "triggers:\n  - { on: log, source: function:f, filter: 5, function: f }\n",
     "tine.yaml:5:44: triggers[0].filter: expected a string, got the number 5 (quote it to make it a string)"},
    {BASE "triggers:\n  - { on: schedule, cron: '@daily', function: g }\n",
     "tine.yaml:5:47: triggers[0].function: no function named 'g' (declared: f)"},
    {BASE "triggers:\n  - { on: schedule, cron: '@daily', function: f, attempts: 0 }\n",
     "tine.yaml:5:60: triggers[0].attempts: 0 is out of range 1..100"},
    {BASE "triggers:\n  - { on: schedule, cron: '@daily', function: f, attempts: 101 }\n",
     "tine.yaml:5:60: triggers[0].attempts: 101 is out of range 1..100"},
    {BASE "triggers:\n  - on: schedule\n", "tine.yaml:5:5: triggers[0]: missing required key 'function'"},
    {BASE "triggers: {}\n",
     "tine.yaml:4:11: triggers: expected a sequence of triggers such as - { on: schedule, cron: '@every 1m', "
     "function: tick }, got a mapping"},
};

static void test_error_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++)
        expect_error(error_cases[i][0], error_cases[i][1]);
}

/* An error message is one line even when the input holds control
 * characters, and long keys are cut short. */
static void test_messages_are_one_line(void **state)
{
    (void)state;
    expect_error("app: shop\nfunctions:\n  \"a\\nb\\u0007\": { handler: f.lua#main }\n",
                 "tine.yaml:3:3: functions['a\\nb\\x07']: function names must be 1..64 letters, digits, '_' or '-'");
    expect_error("app: shop\nfunctions:\n  f: { handler: \"f.lua#ma\\tin\" }\n",
                 "tine.yaml:3:17: functions.f.handler: 'f.lua#ma\\tin': the export after '#' must be a Lua "
                 "identifier ([A-Za-z_][A-Za-z0-9_]*)");
    /* Long values are cut after 48 characters, never inside a UTF-8 sequence. */
    char app[400] = "app: ";
    for (int i = 0; i < 60; i++)
        strcat(app, "\xF0\x9F\x98\x80");
    strcat(app, "\nfunctions: {}\n");
    char expected[400] = "tine.yaml:1:6: app: '";
    for (int i = 0; i < 48; i++)
        strcat(expected, "\xF0\x9F\x98\x80");
    strcat(expected, "...' may hold only lowercase letters, digits and '-'");
    expect_error(app, expected);
    /* A key of 70 letters is too long to be shown as is in the path. */
    char text[256];
    snprintf(text, sizeof text, "app: shop\nfunctions:\n  %070d: { handler: f.lua#main }\n", 0);
    expect_error(text, "tine.yaml:3:3: functions['000000000000000000000000000000000000000000000000...']: function "
                       "names must be 1..64 letters, digits, '_' or '-'");
}

static void test_size_and_depth_limits(void **state)
{
    (void)state;
    /* 1 MiB + 1 byte of comments is refused before parsing. */
    size_t big = 1024 * 1024 + 1;
    char *text = malloc(big + 1);
    assert_non_null(text);
    memset(text, '#', big);
    for (size_t i = 79; i < big; i += 80)
        text[i] = '\n';
    text[big] = '\0';
    expect_error_as("tine.yaml", text, big,
                    "tine.yaml:13108:17: the manifest is 1048577 bytes, larger than the 1 MiB limit");

    /* Deep nesting stops at 32 levels, without recursion in the reader. */
    size_t depth = 100000;
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    expect_error_as("tine.yaml", text, 2 * depth, "tine.yaml:1:33: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
                                                  "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper "
                                                  "than 32 levels");
    free(text);

    /* Billion laughs: refused at the first alias. */
    const char *laughs = "a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: [*b,*b]\n";
    expect_error(laughs, "tine.yaml:2:8: b[0]: aliases (*a) are not allowed in a manifest; write the value out");
}

/* Bytes that are not UTF-8, and NULs, give a positioned syntax error. */
static void test_binary_input(void **state)
{
    (void)state;
    const char bad_utf8[] = "app: shop\ndescription: caf\xe9\n";
    expect_error_as("tine.yaml", bad_utf8, sizeof bad_utf8 - 1,
                    "tine.yaml:2:17: syntax error: incomplete UTF-8 octet sequence");
    const char with_nul[] = "app: shop\0\nfunctions: {}\n";
    expect_error_as("tine.yaml", with_nul, sizeof with_nul - 1,
                    "tine.yaml:1:10: syntax error: control characters are not allowed (byte 0x00)");
    expect_error_as("tine.json", with_nul, sizeof with_nul - 1,
                    "tine.json:1:3: syntax error: invalid token near 'app'");
}

/* No output pointer or NULL data is refused; no error buffer is fine. */
static void test_api_edges(void **state)
{
    (void)state;
    reg_manifest_t *m = NULL;
    assert_int_equal(reg_manifest_parse("tine.yaml", BASE, strlen(BASE), NULL, err, sizeof err), TINE_EINVAL);
    assert_int_equal(reg_manifest_parse("tine.yaml", NULL, 5, &m, err, sizeof err), TINE_EINVAL);
    assert_null(m);
    assert_int_equal(reg_manifest_parse("tine.yaml", "app: [", 6, &m, NULL, 0), TINE_EINVAL);
    assert_null(m);
    char tiny[8];
    assert_int_equal(reg_manifest_parse("tine.yaml", "app: [", 6, &m, tiny, sizeof tiny), TINE_EINVAL);
    assert_string_equal(tiny, "tine.ya");
    /* Only the data given is read: the rest of the string is past len. */
    assert_int_equal(reg_manifest_parse("tine.yaml", BASE "junk: 1\n", strlen(BASE), &m, err, sizeof err), 0);
    reg_manifest_free(m);
}

static void test_parse_duration(void **state)
{
    (void)state;
    const struct {
        const char *text;
        uint64_t ms;
    } good[] = {{"250ms", 250}, {"3s", 3000},     {"2m", 120000},   {"1h", 3600000}, {"1m30s", 90000},
                {"0s", 0},      {"1h2m3s4ms", 3723004}, {"007s", 7000}, {"90s", 90000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ms = 12345;
        assert_int_equal(reg_parse_duration_ms(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    const char *bad[] = {"",   "3",   "s",     "3 s",  "-3s",    "1.5s", "3S",  "30s1m", "1s1s", "1ms1s",
                         "3d", "3sx", "ms",    " 3s",  "3s ",    "1m1h", "+3s", "99999999999999999999s",
                         "5124095576030431h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 12345;
        if (reg_parse_duration_ms(bad[i], &ms) != TINE_EINVAL)
            fail_msg("'%s' should be refused", bad[i]);
        assert_int_equal(ms, 12345);
    }
    uint64_t ms;
    assert_int_equal(reg_parse_duration_ms(NULL, &ms), TINE_EINVAL);
}

/* The keys that JSON Schema object `obj` declares, sorted, comma-separated. */
static void schema_keys(json_t *obj, char *out, size_t outlen)
{
    json_t *props = json_object_get(obj, "properties");
    assert_non_null(props);
    const char *names[32];
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(props, key, value)
    {
        assert_true(n < 32);
        names[n++] = key;
        /* Every key carries a description so editors can show it. */
        if (!json_is_string(json_object_get(value, "description")))
            fail_msg("schema key '%s' has no description", key);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, i ? "," : "", outlen - strlen(out) - 1);
        strncat(out, names[i], outlen - strlen(out) - 1);
    }
    assert_true(json_is_false(json_object_get(obj, "additionalProperties")) ||
                json_object_get(obj, "unevaluatedProperties") != NULL);
}

static json_t *schema_def(json_t *schema, const char *name)
{
    json_t *def = json_object_get(json_object_get(schema, "$defs"), name);
    if (def == NULL)
        fail_msg("schema has no $defs.%s", name);
    return def;
}

/* The schema lists exactly the keys the parser accepts, and the design
 * example validates by the parser while every key has a description. */
/* max_body: bytes or Ki/Mi sizes, per function over defaults, at most the
 * wire's 6 MiB; bad values name their position. */
static void test_max_body(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\n"
                                 "defaults: { max_body: 512Ki }\n"
                                 "functions:\n"
                                 "  inherits: { handler: f.lua#main }\n"
                                 "  bytes: { handler: f.lua#main, max_body: 1000 }\n"
                                 "  none: { handler: f.lua#main, max_body: 0 }\n"
                                 "  mebi: { handler: f.lua#main, max_body: 6Mi }\n"
                                 "  kib: { handler: f.lua#main, max_body: \"64KiB\" }\n");
    assert_int_equal(m->functions[0].max_body, 512 * 1024);
    assert_int_equal(m->functions[1].max_body, 1000);
    assert_int_equal(m->functions[2].max_body, 0);
    assert_int_equal(m->functions[3].max_body, 6 * 1024 * 1024);
    assert_int_equal(m->functions[4].max_body, 64 * 1024);
    reg_manifest_free(m);
    m = parse_ok("app: a\nfunctions:\n  f: { handler: f.lua#main }\n");
    assert_int_equal(m->functions[0].max_body, REG_MAX_BODY_LIMIT);
    reg_manifest_free(m);

    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, max_body: 7Mi }\n",
                 "tine.yaml:3:39: functions.f.max_body: '7Mi' is over 6Mi, the largest body a function can receive");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, max_body: 6291457 }\n",
                 "tine.yaml:3:39: functions.f.max_body: 6291457 is out of range 0..6291456");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, max_body: 6MB }\n",
                 "tine.yaml:3:39: functions.f.max_body: expected bytes as an integer 0..6291456 or a size such as "
                 "512Ki or 6Mi, got '6MB'");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, max_body: -1 }\n",
                 "tine.yaml:3:39: functions.f.max_body: -1 is out of range 0..6291456");
    expect_error("app: a\ndefaults:\n  max_body: lots\nfunctions:\n  f: { handler: f.lua#main }\n",
                 "tine.yaml:3:13: defaults.max_body: expected bytes as an integer 0..6291456 or a size such as "
                 "512Ki or 6Mi, got 'lots'");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, max_body: 99999999999Ki }\n",
                 "tine.yaml:3:39: functions.f.max_body: '99999999999Ki' is over 6Mi, the largest body a function can "
                 "receive");
}

/* namespace: defaults to "default", same syntax as app names; auth: public
 * or key on functions and routes, a route private when either says key. */
static void test_namespace_and_auth(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: a\nfunctions:\n  f: { handler: f.lua#main }\n");
    assert_string_equal(m->namespace, "default");
    assert_int_equal(m->functions[0].auth, REG_AUTH_PUBLIC);
    reg_manifest_free(m);
    m = parse_ok("app: a\n"
                 "namespace: team-a\n"
                 "functions:\n"
                 "  open: { handler: f.lua#main }\n"
                 "  closed: { handler: f.lua#main, auth: key }\n"
                 "routes:\n"
                 "  - { method: GET, path: /open, function: open }\n"
                 "  - { method: GET, path: /guarded, function: open, auth: key }\n"
                 "  - { method: GET, path: /closed, function: closed }\n"
                 "  - { method: GET, path: /closed2, function: closed, auth: key }\n"
                 "  - { method: GET, path: /open2, function: open, auth: public }\n");
    assert_string_equal(m->namespace, "team-a");
    assert_int_equal(m->functions[0].auth, REG_AUTH_PUBLIC);
    assert_int_equal(m->functions[1].auth, REG_AUTH_KEY);
    assert_int_equal(m->routes[0].auth, REG_AUTH_PUBLIC);
    assert_int_equal(m->routes[1].auth, REG_AUTH_KEY);
    assert_int_equal(m->routes[2].auth, REG_AUTH_KEY);
    assert_int_equal(m->routes[3].auth, REG_AUTH_KEY);
    assert_int_equal(m->routes[4].auth, REG_AUTH_PUBLIC);
    reg_manifest_free(m);

    expect_error("app: a\nnamespace: Team_A\nfunctions:\n  f: { handler: f.lua#main }\n",
                 "tine.yaml:2:12: namespace: 'Team_A' may hold only lowercase letters, digits and '-'");
    expect_error("app: a\nnamespace: 7\nfunctions:\n  f: { handler: f.lua#main }\n",
                 "tine.yaml:2:12: namespace: expected a namespace name such as team-a, got the number 7 (quote it to make it a string)");
    expect_error("app: a\nnamespace: -x\nfunctions:\n  f: { handler: f.lua#main }\n",
                 "tine.yaml:2:12: namespace: '-x' must start with a letter or digit");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, auth: token }\n",
                 "tine.yaml:3:35: functions.f.auth: expected public or key, got 'token'");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main }\n"
                 "routes:\n  - { method: GET, path: /, function: f, auth: yes }\n",
                 "tine.yaml:5:48: routes[0].auth: expected public or key, got 'yes'");
    expect_error("app: a\nfunctions:\n  f: { handler: f.lua#main, auth: key }\n"
                 "routes:\n  - { method: GET, path: /, function: f, auth: public }\n",
                 "tine.yaml:5:48: routes[0].auth: public, but function f requires a key (functions.f.auth: key)");
}

/* group: is kept per function; functions without one have none. */
static void test_group(void **state)
{
    (void)state;
    reg_manifest_t *m = parse_ok("app: shop\nfunctions:\n  a: { handler: a.lua#main, group: chain }\n"
                                 "  b: { handler: b.lua#main, group: chain }\n  c: { handler: c.lua#main }\n");
    assert_string_equal(m->functions[0].group, "chain");
    assert_string_equal(m->functions[1].group, "chain");
    assert_null(m->functions[2].group);
    reg_manifest_free(m);
}

static void test_schema_matches_parser_keys(void **state)
{
    (void)state;
    const char *root = getenv("TINE_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/schema/tine.schema.json", root ? root : TINE_SOURCE_DIR);
    json_error_t jerr;
    json_t *schema = json_load_file(path, 0, &jerr);
    if (schema == NULL)
        fail_msg("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    assert_string_equal(json_string_value(json_object_get(schema, "$schema")),
                        "https://json-schema.org/draft/2020-12/schema");

    char keys[512];
    schema_keys(schema, keys, sizeof keys);
    assert_string_equal(keys,
                        "allow_outbound,app,defaults,description,env,functions,host,limits,namespace,release,rollout,"
                        "routes,triggers");
    schema_keys(schema_def(schema, "release"), keys, sizeof keys);
    assert_string_equal(keys, "client_header,pin");
    schema_keys(schema_def(schema, "rollout"), keys, sizeof keys);
    assert_string_equal(keys, "interval,max_error_rate,max_p99,min_requests,steps");
    schema_keys(schema_def(schema, "limits"), keys, sizeof keys);
    assert_string_equal(keys, "kv_bytes_max,kv_keys_max,kv_value_max");
    schema_keys(schema_def(schema, "function"), keys, sizeof keys);
    assert_string_equal(keys, "auth,concurrency,env,group,handler,max_body,memory,network,runtime,timeout,warm");
    schema_keys(schema_def(schema, "defaults"), keys, sizeof keys);
    assert_string_equal(keys, "concurrency,max_body,memory,runtime,timeout,warm");
    schema_keys(schema_def(schema, "route"), keys, sizeof keys);
    assert_string_equal(keys, "auth,function,method,path");
    schema_keys(schema_def(schema, "trigger"), keys, sizeof keys);
    assert_string_equal(keys, "attempts,cron,filter,function,on,source,type");
    json_decref(schema);
}


#ifndef TINE_TEST_UNDER_ASAN
/* Fails each allocation of a parse in turn: every failure must give
 * -ENOMEM (or be survived), never a crash, and leave no block behind. */
static void torture_parse(const char *filename, const char *text, int expected_rc)
{
    for (long n = 0;; n++) {
        reg_manifest_t *m = NULL;
        alloc_live = 0;
        alloc_tracking = 1;
        alloc_fail_countdown = n;
        int rc = reg_manifest_parse(filename, text, strlen(text), &m, err, sizeof err);
        int failed = alloc_fail_countdown < 0;
        alloc_fail_countdown = -1;
        reg_manifest_free(m);
        alloc_tracking = 0;
        if (n == 0 && !failed) {
            print_message("allocator not replaceable here (valgrind?): torture skipped\n");
            return;
        }
        if (alloc_live != 0)
            fail_msg("%s: %ld blocks leaked when allocation %ld failed (rc %d)", filename, alloc_live, n, rc);
        if (!failed) {
            assert_int_equal(rc, expected_rc);
            return;
        }
        if (rc == -ENOMEM) {
            assert_null(m);
            assert_string_equal(err, strcmp(filename, "tine.json") == 0
                                         ? "tine.json: out of memory while reading the manifest"
                                         : "tine.yaml: out of memory while reading the manifest");
        } else if (rc != expected_rc) {
            fail_msg("%s: allocation %ld failed: rc %d (%s)", filename, n, rc, err);
        }
    }
}

static void test_out_of_memory_torture(void **state)
{
    (void)state;
    torture_parse("tine.yaml", design_example, 0);
    torture_parse("tine.json", design_example_json, 0);
    torture_parse("tine.yaml",
                  BASE "env: { A: 1, B: 2 }\nroutes:\n  - { method: GET, path: /a/:x, function: f }\n"
                       "  - { method: get, path: /a/:y, function: f }\n",
                  TINE_EINVAL);
    torture_parse("tine.yaml", "app: shop\nfunctions:\n  f: {handler: f.lua#main}\n   x: 1\n", TINE_EINVAL);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example_parses),
        cmocka_unit_test(test_json_same_as_yaml),
        cmocka_unit_test(test_json_awkward_but_valid),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_defaults_and_units),
        cmocka_unit_test(test_env_merged_and_sorted),
        cmocka_unit_test(test_routes_and_triggers_details),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_messages_are_one_line),
        cmocka_unit_test(test_size_and_depth_limits),
        cmocka_unit_test(test_binary_input),
        cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_max_body),
        cmocka_unit_test(test_namespace_and_auth),
        cmocka_unit_test(test_python_runtime),
        cmocka_unit_test(test_node_runtime),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_schema_matches_parser_keys),
#ifndef TINE_TEST_UNDER_ASAN
        cmocka_unit_test(test_out_of_memory_torture),
#endif
    };
    return cmocka_run_group_tests_name("registry/model/manifest", tests, NULL, NULL);
}
