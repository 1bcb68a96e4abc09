/* Unit tests for sandbox/wire.c: frames round-trip over a socketpair and
 * every malformed input is refused before any allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static void write_raw(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void test_round_trip_binary_body(void **state)
{
    int sv[2];
    make_pair(sv);
    const char meta[] = "{\"status\":200}";
    const char body[] = "a\0b\0\xff\x01zz";
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_RESULT, 0x1122334455667788ull, meta, sizeof meta - 1, body,
                                     sizeof body - 1),
                     0);
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_RESULT);
    assert_true(h.id == 0x1122334455667788ull);
    assert_int_equal(h.meta_len, sizeof meta - 1);
    assert_int_equal(h.len, sizeof meta - 1 + sizeof body - 1);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.reserved, 0);
    assert_int_equal(h.aux, 0);
    assert_memory_equal(p, meta, sizeof meta - 1);
    assert_memory_equal(p + h.meta_len, body, sizeof body - 1);
    assert_int_equal(p[h.len], '\0');
    free(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_empty_meta_and_body(void **state)
{
    int sv[2];
    make_pair(sv);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 7, NULL, 0, NULL, 0), 0);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_LOG, 8, "{}", 2, "", 0), 0);
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_INVOKE);
    assert_int_equal(h.len, 0);
    assert_non_null(p);
    assert_int_equal(p[0], '\0');
    free(p);
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_LOG);
    assert_int_equal(h.id, 8);
    assert_int_equal(h.len, 2);
    assert_int_equal(h.meta_len, 2);
    free(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_clean_eof(void **state)
{
    int sv[2];
    make_pair(sv);
    close(sv[0]);
    sbx_frame_hdr_t h;
    char *p = (char *)&h;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, 0);
    assert_null(p);
    close(sv[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* A frame of exactly max_frame bytes crosses a small socket buffer: the writer
 * (a child with a 1 ms interval timer, so writev is interrupted and short) and
 * the reader (which sees EINTR too) must both loop. */
static void test_max_size_with_short_writes_and_eintr(void **state)
{
    int sv[2];
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

    uint32_t max = SBX_WIRE_MAX_FRAME;
    size_t meta_len = 100, body_len = max - meta_len;
    char *meta = malloc(meta_len), *body = malloc(body_len);
    for (size_t i = 0; i < meta_len; i++)
        meta[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)(i * 7 + (i >> 13));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: blocking calls fail with EINTR */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_interval = {0, 1000}, .it_value = {0, 1000}};

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        setitimer(ITIMER_REAL, &it, NULL);
        int rc = sbx_frame_write(sv[0], SBX_MSG_INVOKE, 42, meta, meta_len, body, body_len);
        _exit(rc == 0 ? 0 : 10);
    }
    close(sv[0]);
    setitimer(ITIMER_REAL, &it, NULL);
    sbx_frame_hdr_t h;
    char *p = NULL;
    int rc = sbx_frame_read(sv[1], &h, &p, max);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(h.len, max);
    assert_int_equal(h.id, 42);
    assert_memory_equal(p, meta, meta_len);
    assert_memory_equal(p + meta_len, body, body_len);
    free(p);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    free(meta);
    free(body);
    close(sv[1]);
}

static void test_oversize_rejected(void **state)
{
    int sv[2];
    make_pair(sv);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 1, "{}", 2, "123456789", 9), 0);
    sbx_frame_hdr_t h;
    char *p = (char *)&h;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, 10), TINE_EPROTO);
    assert_null(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_check(void **state)
{
    sbx_frame_hdr_t h;
    memset(&h, 0, sizeof h);
    h.type = SBX_MSG_READY;
    h.len = 10;
    h.meta_len = 10;
    assert_int_equal(sbx_frame_check(&h, 10), 0);
    assert_int_equal(sbx_frame_check(&h, 9), TINE_EPROTO);
    h.meta_len = 11;
    assert_int_equal(sbx_frame_check(&h, 100), TINE_EPROTO);
    h.meta_len = 0;
    h.type = 0;
    assert_int_equal(sbx_frame_check(&h, 100), TINE_EPROTO);
    h.type = SBX_MSG_HOSTREPLY;
    assert_int_equal(sbx_frame_check(&h, 100), 0);
    h.type = SBX_MSG_NESTED; /* the last type */
    assert_int_equal(sbx_frame_check(&h, 100), 0);
    h.type = SBX_MSG_NESTED + 1;
    assert_int_equal(sbx_frame_check(&h, 100), TINE_EPROTO);
}

static void test_meta_longer_than_payload(void **state)
{
    int sv[2];
    make_pair(sv);
    sbx_frame_hdr_t h;
    memset(&h, 0, sizeof h);
    h.type = SBX_MSG_RESULT;
    h.len = 4;
    h.meta_len = 5;
    write_raw(sv[0], &h, sizeof h);
    write_raw(sv[0], "abcd", 4);
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    assert_null(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_truncated_payload(void **state)
{
    int sv[2];
    make_pair(sv);
    sbx_frame_hdr_t h;
    memset(&h, 0, sizeof h);
    h.type = SBX_MSG_INVOKE;
    h.len = 100;
    h.meta_len = 2;
    write_raw(sv[0], &h, sizeof h);
    write_raw(sv[0], "{}0123456", 9);
    close(sv[0]);
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    assert_null(p);
    close(sv[1]);
}

static void test_truncated_header(void **state)
{
    int sv[2];
    make_pair(sv);
    write_raw(sv[0], "\x05\0\0\0\x02\0\0", 7);
    close(sv[0]);
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    close(sv[1]);
}

static void test_garbage_header(void **state)
{
    int sv[2];
    make_pair(sv);
    write_raw(sv[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(sv[1], &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    assert_null(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_to_closed_peer(void **state)
{
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_LOG, 1, "{}", 2, "x", 1), -EPIPE);
    signal(SIGPIPE, SIG_DFL);
    close(sv[0]);
}

/* The reader hands out frames written together one by one, grows for a big
 * frame and gives the memory back after it. */
static void test_reader_batches_grows_and_shrinks(void **state)
{
    int sv[2];
    make_pair(sv);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sbx_reader_t r;
    sbx_reader_init(&r, sv[1]);
    sbx_frame_hdr_t h;
    const char *p;

    /* Three frames in the socket: one read brings them all. */
    for (int i = 1; i <= 3; i++)
        assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, (uint64_t)i, "{}", 2, "hi", 2), 0);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 1);
    assert_memory_equal(p, "{}hi", 4);
    assert_true(sbx_reader_buffered(&r));
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 2);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 3);
    assert_false(sbx_reader_buffered(&r));

    size_t n = 600 * 1024;
    char *body = calloc(1, n);
    body[n - 1] = 'z';
    pid_t pid = fork();
    if (pid == 0)
        _exit(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 4, "{}", 2, body, n) == 0 ? 0 : 1);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.len, n + 2);
    assert_int_equal(p[n + 1], 'z');
    assert_true(r.buf.cap >= n + 2);
    waitpid(pid, NULL, 0);

    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 5, "{}", 2, "ok", 2), 0);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_memory_equal(p, "{}ok", 4);
    assert_true(r.buf.cap < SBX_WIRE_KEEP_BUF);

    close(sv[0]);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, 0);
    free(body);
    sbx_reader_free(&r);
    close(sv[1]);
}

/* A host reply is taken out from behind pipelined INVOKEs, which stay for
 * the serve loop in their order. */
static void test_reader_take_skips_pipelined(void **state)
{
    int sv[2];
    make_pair(sv);
    sbx_reader_t r;
    sbx_reader_init(&r, sv[1]);
    sbx_frame_hdr_t h;
    const char *p;
    tine_buf_t buf;
    tine_buf_init(&buf);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 1, "{}", 2, "a", 1), 0);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 2, "{}", 2, "b", 1), 0);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_HOSTREPLY, 1, "{\"ok\":1}", 8, "r", 1), 0);
    assert_int_equal(sbx_frame_write(sv[0], SBX_MSG_INVOKE, 3, "{}", 2, "c", 1), 0);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 1);
    assert_int_equal(sbx_reader_take(&r, SBX_MSG_HOSTREPLY, &h, &buf, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_HOSTREPLY);
    assert_int_equal(buf.len, 9);
    assert_string_equal(buf.data, "{\"ok\":1}r");
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 2);
    assert_memory_equal(p, "{}b", 3);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.id, 3);
    /* No reply left: EOF while waiting for one is a protocol error. */
    close(sv[0]);
    assert_int_equal(sbx_reader_take(&r, SBX_MSG_HOSTREPLY, &h, &buf, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    tine_buf_dispose(&buf);
    sbx_reader_free(&r);
    close(sv[1]);
}

/* EOF inside a frame and a bad header are protocol errors, not frames. */
static void test_reader_truncated_and_bad(void **state)
{
    int sv[2];
    make_pair(sv);
    sbx_reader_t r;
    sbx_reader_init(&r, sv[1]);
    sbx_frame_hdr_t h = {0};
    const char *p;
    h.len = 10;
    h.type = SBX_MSG_RESULT;
    assert_int_equal(write(sv[0], &h, sizeof h), (ssize_t)sizeof h);
    assert_int_equal(write(sv[0], "abc", 3), 3);
    close(sv[0]);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    sbx_reader_free(&r);
    close(sv[1]);

    make_pair(sv);
    sbx_reader_init(&r, sv[1]);
    memset(&h, 0, sizeof h);
    h.type = 99;
    assert_int_equal(write(sv[0], &h, sizeof h), (ssize_t)sizeof h);
    assert_int_equal(sbx_reader_next(&r, &h, &p, SBX_WIRE_MAX_FRAME), TINE_EPROTO);
    sbx_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_binary_body),
        cmocka_unit_test(test_empty_meta_and_body),
        cmocka_unit_test(test_clean_eof),
        cmocka_unit_test(test_max_size_with_short_writes_and_eintr),
        cmocka_unit_test(test_oversize_rejected),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_meta_longer_than_payload),
        cmocka_unit_test(test_truncated_payload),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_garbage_header),
        cmocka_unit_test(test_write_to_closed_peer),
        cmocka_unit_test(test_reader_batches_grows_and_shrinks),
        cmocka_unit_test(test_reader_take_skips_pipelined),
        cmocka_unit_test(test_reader_truncated_and_bad),
    };
    return cmocka_run_group_tests_name("sandbox/wire", tests, NULL, NULL);
}
