/* Tests of common/log.c: tined's own log lines, one JSON object each (time,
 * level, message, fields), the level filter, and the line written when no
 * memory is left for it (tine_oom logs through tine_log). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_fail.h"
#include "tine_common.h"

#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

static int pipe_rd = -1;

static int setup(void **state)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    pipe_rd = p[0];
    tine_log_set_fd(p[1]);
    tine_log_set_level("debug");
    return 0;
}

/* What the log wrote since the last call, NUL-terminated, in buf. */
static const char *written(char *buf, size_t size)
{
    ssize_t n = read(pipe_rd, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* The one line written since the last call, parsed; fails unless exactly
 * one line ending in a newline was written. */
static json_t *one_line(void)
{
    char buf[8192];
    const char *text = written(buf, sizeof buf);
    const char *nl = strchr(text, '\n');
    if (nl == NULL || nl[1] != '\0')
        fail_msg("expected one line, got: %s", text);
    json_error_t jerr;
    json_t *line = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(line))
        fail_msg("not a JSON object (%s): %s", jerr.text, text);
    return line;
}

static const char *field(json_t *line, const char *key)
{
    return json_string_value(json_object_get(line, key));
}

static void test_line_shape(void **state)
{
    (void)state;
    tine_log(TINE_LOG_INFO, "serving on %s (port %d)\n", "127.0.0.1:8080", 8080);
    json_t *line = one_line();
    assert_int_equal(json_object_size(line), 3);
    assert_string_equal(field(line, "level"), "info");
    assert_string_equal(field(line, "msg"), "serving on 127.0.0.1:8080 (port 8080)"); /* newline dropped */
    const char *ts = field(line, "ts");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-01-02T03:04:05.678Z */
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');
    json_decref(line);
}

static void test_fields_and_quoting(void **state)
{
    (void)state;
    const char *kv[] = {"app", "shop", "function", "say \"hi\"", NULL};
    tine_log_kv(TINE_LOG_ERROR, kv, "line one\nline \"two\"\t\\");
    json_t *line = one_line();
    assert_int_equal(json_object_size(line), 5);
    assert_string_equal(field(line, "level"), "error");
    assert_string_equal(field(line, "msg"), "line one\nline \"two\"\t\\");
    assert_string_equal(field(line, "app"), "shop");
    assert_string_equal(field(line, "function"), "say \"hi\"");
    json_decref(line);

    tine_log_text(TINE_LOG_WARN, NULL, "a\0b", 3);
    line = one_line();
    assert_string_equal(field(line, "level"), "warn");
    size_t n = json_string_length(json_object_get(line, "msg"));
    assert_int_equal(n, 3);
    assert_memory_equal(field(line, "msg"), "a\0b", 3);
    json_decref(line);
}

static void test_level_filter(void **state)
{
    (void)state;
    char buf[4096];
    assert_int_equal(tine_log_set_level("loud"), -1);
    assert_int_equal(tine_log_set_level("warn"), 0);
    tine_log(TINE_LOG_DEBUG, "not written");
    tine_log(TINE_LOG_INFO, "not written");
    assert_string_equal(written(buf, sizeof buf), "");
    tine_log(TINE_LOG_WARN, "written");
    json_t *line = one_line();
    assert_string_equal(field(line, "msg"), "written");
    json_decref(line);
    assert_int_equal(tine_log_set_level("debug"), 0);
    tine_log(TINE_LOG_DEBUG, "written too");
    line = one_line();
    assert_string_equal(field(line, "level"), "debug");
    json_decref(line);
}

/* Without memory a line is still written, built on the stack: the message
 * when it needs no escaping, else a line saying one was lost; no fields. */
static void test_line_without_memory(void **state)
{
    (void)state;
    if (!ALLOC_FAIL_WORKS)
        skip();
    const char *kv[] = {"app", "shop", NULL};
    alloc_fail_from(1);
    tine_log_kv(TINE_LOG_ERROR, kv, "out of memory allocating %zu bytes", (size_t)4096);
    assert_true(alloc_fail_hit());
    alloc_fail_off();
    json_t *line = one_line();
    assert_int_equal(json_object_size(line), 3);
    assert_string_equal(field(line, "level"), "error");
    assert_string_equal(field(line, "msg"), "out of memory allocating 4096 bytes");
    json_decref(line);

    alloc_fail_from(1);
    tine_log(TINE_LOG_WARN, "a \"quoted\" word");
    alloc_fail_off();
    line = one_line();
    assert_string_equal(field(line, "level"), "warn");
    assert_string_equal(field(line, "msg"), "out of memory: a log line was lost");
    json_decref(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape),
        cmocka_unit_test(test_fields_and_quoting),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_line_without_memory),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
