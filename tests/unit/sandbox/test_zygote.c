/* Unit tests for the zygote's spawn protocol (sandbox/zygote.c): a real
 * zygote process forks sandboxes for a spec or blank ones that get their spec
 * later over their own pipe; the test plays tined on the pipes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frames.h"

#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char handler_lua[] = "local M = {}\n"
                                  "function M.hi(ev, ctx) return 'hi ' .. ctx['function'] .. ' ' .. ev.n end\n"
                                  "return M\n";

typedef struct {
    sbx_zygote_t z;
    char dir[PATH_MAX];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tine-zygote-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char *path = xasprintf("%s/h.lua", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(handler_lua, fp);
    fclose(fp);
    free(path);
    const char *src = getenv("TINE_SOURCE_DIR");
    char *sdk = xasprintf("%s/sdk/lua", src ? src : TINE_SOURCE_DIR);
    assert_int_equal(sbx_zygote_start(&f->z, sdk), 0);
    free(sdk);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sbx_zygote_stop(&f->z);
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

static sbx_spec_t spec_of(fixture_t *f, const char *fn)
{
    return (sbx_spec_t){
        .app = "z",
        .version = 1,
        .function = fn,
        .bundle_dir = f->dir,
        .handler_file = "h.lua",
        .handler_export = "hi",
        .memory_mb = 64,
        .timeout_ms = 1000,
        .env_json = "{}",
    };
}

/* Reads one frame and checks its type; returns the payload (free it). */
static char *expect_frame(int fd, uint8_t type, sbx_frame_hdr_t *h)
{
    char *payload = NULL;
    assert_int_equal(sbx_frame_read(fd, h, &payload, SBX_WIRE_MAX_FRAME), 0);
    if (h->type != type)
        fail_msg("expected frame type %u, got %u: %.*s", type, h->type, (int)h->len, payload ? payload : "");
    return payload;
}

/* Sends an event {"n":n} and checks the answer names fn and n. */
static void invoke_and_check(sbx_fds_t fds, const char *fn, int n)
{
    json_t *meta = json_pack("{s:s, s:{s:i}}", "kind", "event", "event", "n", n);
    write_invoke(fds.wr, 7, meta, NULL, 0);
    json_decref(meta);
    sbx_frame_hdr_t h;
    char *p = expect_frame(fds.rd, SBX_MSG_RESULT, &h);
    char want[64];
    snprintf(want, sizeof want, "hi %s %d", fn, n);
    assert_int_equal(h.id, 7);
    assert_int_equal(h.len - h.meta_len, strlen(want));
    assert_memory_equal(p + h.meta_len, want, strlen(want));
    free(p);
}

/* A spawn with a spec: the child loads the handler, says READY, serves. */
static void test_spawn_with_spec(void **state)
{
    fixture_t *f = *state;
    sbx_spec_t spec = spec_of(f, "direct");
    pid_t pid = 0;
    sbx_fds_t fds = {-1, -1};
    assert_int_equal(sbx_zygote_spawn(&f->z, &spec, &pid, &fds), 0);
    assert_true(pid > 0);
    assert_int_not_equal(fds.rd, fds.wr); /* two pipes */
    sbx_frame_hdr_t h;
    free(expect_frame(fds.rd, SBX_MSG_READY, &h));
    invoke_and_check(fds, "direct", 1);
    invoke_and_check(fds, "direct", 2);
    sbx_fds_close(fds);
}

/* A blank sandbox becomes the function whose spec it is sent; an INVOKE
 * written right behind the spec waits in the pipe until it is ready. */
static void test_blank_then_spec(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sbx_zygote_request(&f->z, NULL), 0);
    sbx_spawned_t got;
    assert_int_equal(sbx_zygote_receive(&f->z, true, &got), 0);
    assert_int_equal(got.error, 0);
    assert_true(got.pid > 0);
    sbx_fds_t fds = got.fds;
    sbx_spec_t spec = spec_of(f, "late");
    size_t len = 0;
    char *frame = sbx_spec_frame(&spec, &len);
    assert_non_null(frame);
    assert_int_equal(write(fds.wr, frame, len), (ssize_t)len);
    free(frame);
    json_t *meta = json_pack("{s:s, s:{s:i}}", "kind", "event", "event", "n", 5);
    write_invoke(fds.wr, 9, meta, NULL, 0);
    json_decref(meta);
    sbx_frame_hdr_t h;
    free(expect_frame(fds.rd, SBX_MSG_READY, &h));
    char *p = expect_frame(fds.rd, SBX_MSG_RESULT, &h);
    assert_int_equal(h.id, 9);
    assert_memory_equal(p + h.meta_len, "hi late 5", 9);
    free(p);
    invoke_and_check(fds, "late", 6);
    sbx_fds_close(fds);
}

/* Several requests in flight are answered in order, each with its own
 * process; a blank let go (its pipes closed) exits. */
static void test_pipelined_blanks_and_release(void **state)
{
    fixture_t *f = *state;
    sbx_spawned_t got;
    assert_int_equal(sbx_zygote_receive(&f->z, false, &got), -EAGAIN);
    enum { N = 4 };
    for (int i = 0; i < N; i++)
        assert_int_equal(sbx_zygote_request(&f->z, NULL), 0);
    pid_t pids[N];
    sbx_fds_t fds[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(sbx_zygote_receive(&f->z, true, &got), 0);
        assert_int_equal(got.error, 0);
        pids[i] = got.pid;
        fds[i] = got.fds;
        for (int j = 0; j < i; j++)
            assert_int_not_equal(pids[i], pids[j]);
    }
    for (int i = 0; i < N; i++) {
        sbx_fds_close(fds[i]);
        int gone = 0;
        for (int t = 0; t < 400 && !gone; t++) {
            gone = kill(pids[i], 0) != 0 && errno == ESRCH;
            if (!gone)
                usleep(5000);
        }
        assert_true(gone);
    }
}

/* A blank sent something that is not a spec answers with an error frame;
 * a malformed request to the zygote gets an error answer and the zygote
 * serves the next request. */
static void test_bad_spec_and_bad_request(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sbx_zygote_request(&f->z, NULL), 0);
    sbx_spawned_t got;
    assert_int_equal(sbx_zygote_receive(&f->z, true, &got), 0);
    sbx_fds_t fds = got.fds;
    pid_t pid;
    assert_int_equal(sbx_frame_write(fds.wr, SBX_MSG_INVOKE, 0, "[1,2", 4, NULL, 0), 0);
    sbx_frame_hdr_t h;
    char *p = expect_frame(fds.rd, SBX_MSG_ERROR, &h);
    assert_non_null(strstr(p, "bad sandbox spec"));
    free(p);
    sbx_fds_close(fds);

    assert_int_equal(sbx_frame_write(f->z.control_fd, SBX_MSG_INVOKE, 0, "nope", 4, NULL, 0), 0);
    assert_int_equal(sbx_zygote_receive(&f->z, true, &got), 0);
    assert_int_equal(got.error, TINE_EPROTO);
    sbx_spec_t spec = spec_of(f, "after");
    assert_int_equal(sbx_zygote_spawn(&f->z, &spec, &pid, &fds), 0);
    free(expect_frame(fds.rd, SBX_MSG_READY, &h));
    invoke_and_check(fds, "after", 3);
    sbx_fds_close(fds);
}

/* A dead zygote is reported, not waited for. */
static void test_zygote_gone(void **state)
{
    fixture_t *f = *state;
    kill(f->z.pid, SIGKILL);
    sbx_spawned_t got;
    int r = sbx_zygote_request(&f->z, NULL);
    if (r == 0)
        r = sbx_zygote_receive(&f->z, true, &got);
    assert_true(r == TINE_ECRASH || r == -EPIPE || r == -ECONNRESET);
}

/* The zygote is a program of its own: a missing one is a clear error, not
 * a zygote that dies later. */
static void test_missing_program(void **state)
{
    (void)state;
    setenv("TINE_ZYGOTE", "/nonexistent/tine-zygote", 1);
    sbx_zygote_t z = {0};
    assert_int_equal(sbx_zygote_start(&z, "/nonexistent"), -ENOENT);
    assert_int_equal(z.pid, 0);
    unsetenv("TINE_ZYGOTE");
}

/* Runs the zygote program next to this test with `args` and no control
 * socket on fd 3; returns its exit status. */
static int run_program(const char *const *args)
{
    char *prog = tine_exe_sibling("tine-zygote");
    assert_non_null(prog);
    pid_t p = fork();
    if (p == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        closefrom(3);
        const char *argv[16] = {"tine-zygote"};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(prog, (char *const *)argv);
        _exit(126);
    }
    free(prog);
    int st = 0;
    assert_int_equal(waitpid(p, &st, 0), p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Started by hand (no control socket) or with unknown or missing
 * arguments, the program says how it is started and exits 2. */
static void test_program_refuses_bad_starts(void **state)
{
    (void)state;
    const char *no_socket[] = {"--sdk-dir", "/tmp", "--isolation", "off", "--sandbox-uid", "65534", NULL};
    const char *unknown[] = {"--sdk-dir", "/tmp", "--frobnicate", "1", NULL};
    const char *bad_value[] = {"--sdk-dir", "/tmp", "--isolation", "maybe", NULL};
    const char *missing_value[] = {"--sdk-dir", NULL};
    assert_int_equal(run_program(no_socket), 2);
    assert_int_equal(run_program(unknown), 2);
    assert_int_equal(run_program(bad_value), 2);
    assert_int_equal(run_program(missing_value), 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spawn_with_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blank_then_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_blanks_and_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_spec_and_bad_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zygote_gone, setup, teardown),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_program_refuses_bad_starts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
