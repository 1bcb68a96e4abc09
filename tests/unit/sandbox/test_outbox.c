/* Unit tests for sandbox/outbox.c: answers held while another invocation
 * waits go out together and in order, every rule that lets them out works
 * (blocking, size, age, the CPU-time tick, a fatal signal's flush), and
 * CPU time is split over a batch by wall time. The outbox is one per
 * process, so each test runs it in a forked child over a socketpair and
 * the parent reads what arrives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "outbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burns `ms` of CPU time. */
static void spin_ms(unsigned ms)
{
    uint64_t end = cpu_now_ns() + (uint64_t)ms * 1000000u;
    while (cpu_now_ns() < end) {
    }
}

/* Forks a child running fn(fd) with a fresh outbox on one end of a
 * socketpair; returns the parent's end. */
static int start_child(void (*fn)(int fd), pid_t *pid)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        close(sv[0]);
        sbx_outbox_open(sv[1]);
        fn(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    return sv[0];
}

static void wait_child(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* True when something can be read within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* Reads the next frame; its body is returned in a static buffer. */
static const char *next_frame(int fd, sbx_frame_hdr_t *h)
{
    static char *payload;
    free(payload);
    payload = NULL;
    assert_int_equal(sbx_frame_read(fd, h, &payload, SBX_WIRE_MAX_FRAME), 0);
    return payload;
}

/* A child's steps are told apart by one-byte go-aheads from the parent. */
static void wait_go(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        _exit(3);
}

static void go(int fd)
{
    assert_int_equal(write(fd, "g", 1), 1);
}

/* Reads the next frame and checks it belongs to invocation `id`. */
static sbx_frame_hdr_t expect_id(int fd, uint64_t id)
{
    sbx_frame_hdr_t h;
    next_frame(fd, &h);
    assert_int_equal(h.id, id);
    return h;
}

/* Lets the child finish and checks it did. */
static void finish(int fd, pid_t pid)
{
    go(fd);
    wait_child(pid);
    close(fd);
}

static void answer(uint64_t id, const char *body, bool hold)
{
    if (sbx_outbox_answer(SBX_MSG_RESULT, id, "m", 1, body, strlen(body), hold) != 0)
        _exit(2);
}

/* ------------------------------------------------------------ batches */

static void child_batch(int fd)
{
    for (uint64_t id = 1; id <= 3; id++) {
        sbx_outbox_call_begin(tine_now_ns());
        answer(id, id == 2 ? "two" : "x", true);
    }
    (void)sbx_outbox_frame(SBX_MSG_LOG, 4, "{}", 2, "log", 3); /* behind the held answers */
    wait_go(fd);
    if (sbx_outbox_flush() != 0)
        _exit(2);
    wait_go(fd);
}

static void test_held_answers_go_out_together_in_order(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_batch, &pid);
    assert_false(readable(fd, 50)); /* held: nothing written yet */
    go(fd);
    uint8_t types[] = {SBX_MSG_RESULT, SBX_MSG_RESULT, SBX_MSG_RESULT, SBX_MSG_LOG};
    for (uint64_t id = 1; id <= 4; id++) {
        sbx_frame_hdr_t h;
        const char *p = next_frame(fd, &h);
        assert_int_equal(h.id, id);
        assert_int_equal(h.type, types[id - 1]);
        if (id == 2)
            assert_memory_equal(p + h.meta_len, "two", 3);
    }
    finish(fd, pid);
}

static void child_not_held(int fd)
{
    sbx_outbox_call_begin(tine_now_ns());
    answer(1, "a", true);
    sbx_outbox_call_begin(tine_now_ns());
    answer(2, "b", false); /* not held: goes out with the one held before it */
    wait_go(fd);
}

static void test_an_answer_not_held_takes_the_held_ones_along(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_not_held, &pid);
    assert_true(readable(fd, 5000));
    expect_id(fd, 1);
    expect_id(fd, 2);
    finish(fd, pid);
}

static void child_big(int fd)
{
    static char big[OUTBOX_HOLD_BYTES];
    memset(big, 'b', sizeof big - 1);
    sbx_outbox_call_begin(tine_now_ns());
    answer(1, "small", true);
    sbx_outbox_call_begin(tine_now_ns());
    answer(2, big, true); /* over OUTBOX_HOLD_BYTES with its header: written at once */
    wait_go(fd);
}

static void test_a_big_answer_is_never_held(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_big, &pid);
    assert_true(readable(fd, 5000));
    expect_id(fd, 1);
    sbx_frame_hdr_t h = expect_id(fd, 2);
    assert_int_equal(h.len - h.meta_len, OUTBOX_HOLD_BYTES - 1);
    finish(fd, pid);
}

static void child_age(int fd)
{
    sbx_outbox_call_begin(tine_now_ns());
    answer(1, "a", true);
    struct timespec ts = {0, (long)OUTBOX_HOLD_US * 2000};
    nanosleep(&ts, NULL);
    sbx_outbox_call_begin(tine_now_ns()); /* held for 2 x OUTBOX_HOLD_US: out before this one runs */
    wait_go(fd);
}

static void test_answers_held_too_long_go_out_before_the_next_call(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_age, &pid);
    assert_true(readable(fd, 5000));
    expect_id(fd, 1);
    finish(fd, pid);
}

/* The invocation after a held answer runs for 1 s of CPU: the tick lets the
 * held answer out long before it ends. */
static void child_tick(int fd)
{
    sbx_outbox_install();
    sbx_outbox_call_begin(tine_now_ns());
    answer(1, "a", true);
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(1000);
    answer(2, "b", false);
    wait_go(fd);
}

static void test_the_cpu_tick_lets_answers_out_during_a_long_call(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_tick, &pid);
    uint64_t t0 = tine_now_ns();
    assert_true(readable(fd, 5000));
    uint64_t waited_ms = (tine_now_ns() - t0) / 1000000u;
    expect_id(fd, 1);
    if (waited_ms > 300) /* a tick is 1-10 ms; the long call runs 1000 */
        fail_msg("the held answer came out after %llu ms", (unsigned long long)waited_ms);
    expect_id(fd, 2);
    finish(fd, pid);
}

static void child_fatal(int fd)
{
    (void)fd;
    sbx_outbox_call_begin(tine_now_ns());
    answer(1, "a", true);
    sbx_outbox_flush_from_signal(); /* what the SIGSYS handler does before it exits */
    _exit(0);
}

static void test_a_fatal_signal_handler_writes_what_is_held(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_fatal, &pid);
    expect_id(fd, 1);
    wait_child(pid);
    close(fd);
}

/* ------------------------------------------------------------ CPU time */

static void child_cpu(int fd)
{
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(20);
    answer(1, "a", true);
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(60);
    answer(2, "b", true);
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(40);
    answer(3, "c", false);
    wait_go(fd);
}

static void test_cpu_time_is_split_over_a_batch_by_wall_time(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_cpu, &pid);
    uint32_t us[3];
    for (int i = 0; i < 3; i++)
        us[i] = expect_id(fd, (uint64_t)i + 1).aux;
    finish(fd, pid);
    /* The shares add up to the CPU used; each is near its own (being
     * preempted on a busy machine stretches a call's wall time, so loosely). */
    uint32_t want[3] = {20000, 60000, 40000}, sum = us[0] + us[1] + us[2];
    if (sum < 120000 || sum > 150000)
        fail_msg("the batch's shares add up to %u us of CPU, expected about 120000", sum);
    for (int i = 0; i < 3; i++)
        if (us[i] < want[i] * 6 / 10 || us[i] > want[i] * 15 / 10)
            fail_msg("invocation %d: %u us of CPU, expected about %u", i + 1, us[i], want[i]);
}

static void child_alone(int fd)
{
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(30);
    answer(1, "a", false);
    struct timespec ts = {0, 50 * 1000000}; /* blocked time is nobody's CPU time */
    nanosleep(&ts, NULL);
    sbx_outbox_call_begin(tine_now_ns());
    spin_ms(10);
    answer(2, "b", false);
    wait_go(fd);
}

static void test_an_answer_on_its_own_gets_its_own_cpu_time(void **state)
{
    (void)state;
    pid_t pid;
    int fd = start_child(child_alone, &pid);
    assert_in_range(expect_id(fd, 1).aux, 29000, 36000);
    assert_in_range(expect_id(fd, 2).aux, 9500, 14000);
    finish(fd, pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_answers_go_out_together_in_order),
        cmocka_unit_test(test_an_answer_not_held_takes_the_held_ones_along),
        cmocka_unit_test(test_a_big_answer_is_never_held),
        cmocka_unit_test(test_answers_held_too_long_go_out_before_the_next_call),
        cmocka_unit_test(test_the_cpu_tick_lets_answers_out_during_a_long_call),
        cmocka_unit_test(test_a_fatal_signal_handler_writes_what_is_held),
        cmocka_unit_test(test_cpu_time_is_split_over_a_batch_by_wall_time),
        cmocka_unit_test(test_an_answer_on_its_own_gets_its_own_cpu_time),
    };
    return cmocka_run_group_tests_name("sandbox/outbox", tests, NULL, NULL);
}
