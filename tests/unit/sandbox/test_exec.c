/* Tests of sandbox/exec.c, the runner of `runtime: exec` programs: a forked
 * child runs sbx_exec_serve on one end of a socketpair (without the
 * isolation layers, which only a zygote sets up), the test plays the invoker
 * on the other end. Stdout becomes the response; a runner that cannot hold
 * it answers an ERROR instead of aborting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/alloc_fail.h"
#include "frames.h"

#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* Prints as many x's as the number on its stdin. */
static const char program[] = "#!/bin/sh\nhead -c \"$(cat)\" /dev/zero | tr '\\0' x\n";

typedef struct {
    uint8_t type;
    json_t *meta;
    size_t body_len;
    char body_head[16];
} answer_t;

/* Runs the program once for an event that is the number `bytes` (an
 * event's JSON is a program's stdin) in a runner whose allocations of
 * fail_from bytes or more fail (0: none); returns the runner's answer. */
static answer_t run_once(const char *dir, long bytes, size_t fail_from)
{
    int sv[2];
    pid_t pid = fork_with_socketpair(sv);
    if (pid == 0) {
        if (fail_from)
            alloc_fail_from(fail_from);
        sbx_spec_t spec = {
            .runtime = SBX_RUNTIME_EXEC,
            .app = "shop",
            .version = 1,
            .function = "big",
            .bundle_dir = dir,
            .handler_file = "big.sh",
            .memory_mb = 64,
            .timeout_ms = 10000,
            .env_json = "{}",
        };
        _exit(sbx_exec_serve((sbx_fds_t){sv[1], sv[1]}, &spec));
    }
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[0], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_READY);
    free(p);
    json_t *meta = json_pack("{s:s, s:I, s:{}}", "kind", "event", "event", (json_int_t)bytes, "ctx");
    write_invoke(sv[0], 1, meta, NULL, 0);
    json_decref(meta);
    answer_t a = {0};
    assert_int_equal(sbx_frame_read(sv[0], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    a.type = h.type;
    a.meta = meta_json(h.type, p, h.meta_len);
    a.body_len = h.len - h.meta_len;
    memcpy(a.body_head, p + h.meta_len, a.body_len < sizeof a.body_head ? a.body_len : sizeof a.body_head);
    free(p);
    close(sv[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("the runner died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return a;
}

/* Makes the temporary directory `dir` (a mkdtemp template) holding the
 * program `text` as big.sh, run_once's handler; its path in `path`. */
static void write_program(char *dir, char path[PATH_MAX], const char *text)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, PATH_MAX, "%s/big.sh", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_stdout_out_of_memory(void **state)
{
    (void)state;
    char dir[] = "/tmp/tine-exec-XXXXXX", path[PATH_MAX];
    write_program(dir, path, program);

    answer_t a = run_once(dir, 5000000, 0); /* 5 MB: under the response limit */
    assert_int_equal(a.type, SBX_MSG_RESULT);
    assert_int_equal(a.body_len, 5000000);
    assert_memory_equal(a.body_head, "xxxxxxxxxxxxxxxx", 16);
    json_decref(a.meta);

    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: skipped\n");
    } else {
        /* Holding 5 MB of stdout needs an allocation of 4 MiB or more. */
        a = run_once(dir, 5000000, 4u << 20);
        assert_int_equal(a.type, SBX_MSG_ERROR);
        const char *e = json_string_value(json_object_get(a.meta, "error"));
        assert_non_null(e);
        if (strstr(e, "big.sh: out of memory holding its stdout past ") == NULL)
            fail_msg("unexpected error: %s", e);
        json_decref(a.meta);
        a = run_once(dir, 1000, 4u << 20); /* small output: no large allocation */
        assert_int_equal(a.type, SBX_MSG_RESULT);
        assert_int_equal(a.body_len, 1000);
        json_decref(a.meta);
    }
    unlink(path);
    rmdir(dir);
}

/* A {status, headers, body} object on stdout is the response: its header
 * names go lower case into the RESULT (the one writer, meta.c). */
static void test_envelope_headers(void **state)
{
    (void)state;
    char dir[] = "/tmp/tine-exec-XXXXXX", path[PATH_MAX];
    write_program(dir, path,
                  "#!/bin/sh\necho '{\"status\":202,\"headers\":{\"X-Made\":\"Yes\",\"n\":5},\"body\":\"ok\"}'\n");
    answer_t a = run_once(dir, 0, 0);
    assert_int_equal(a.type, SBX_MSG_RESULT);
    char *m = json_dumps(a.meta, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(m, "{\"headers\":{\"n\":\"5\",\"x-made\":\"Yes\"},\"status\":202}");
    free(m);
    assert_int_equal(a.body_len, 2);
    assert_memory_equal(a.body_head, "ok", 2);
    json_decref(a.meta);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdout_out_of_memory),
        cmocka_unit_test(test_envelope_headers),
    };
    return cmocka_run_group_tests_name("sandbox/exec", tests, NULL, NULL);
}
