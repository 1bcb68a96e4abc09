/* The Lua sandbox's outgoing frames: answers of pipelined invocations held
 * and written together, CPU time read once per write (outbox.h).
 *
 * The SIGPROF handler writes what is held when the main code is not in the
 * middle of changing it (`busy`); otherwise it leaves the write to the main
 * code (`pending`), which checks on its way out. */
#include "outbox.h"

#include "wire.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#define OUTBOX_MAX_HELD 64 /* answers held at once */

typedef struct {
    size_t off;       /* its frame header's offset in the buffer */
    uint64_t wall_ns; /* wall time the invocation ran (blocked time excluded) */
    uint64_t cpu_ns;  /* CPU time already given to it by earlier splits */
} held_t;

static struct {
    int fd;
    char *buf; /* held frames, OUTBOX_HOLD_BYTES, allocated on first use */
    size_t len;
    held_t held[OUTBOX_MAX_HELD];
    unsigned nheld;
    uint64_t cpu_mark_ns;  /* the process's CPU clock at the last split */
    uint64_t seg_start_ns; /* wall clock since which the running invocation's time is not split; 0: none runs */
    uint64_t carry_ns;     /* CPU time splits gave the running invocation so far */
    int error;             /* a write failed (-errno): every later call returns it */
    uint64_t held_since_ns; /* wall clock when the first held answer was held */
    volatile sig_atomic_t busy, pending;
} ob = {.fd = -1};

/* Clock `id` in nanoseconds. */
static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ns in microseconds, capped at UINT32_MAX. */
static uint32_t to_us(uint64_t ns)
{
    uint64_t us = ns / 1000u;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Splits the CPU time used since the last split over the held answers, the
 * running invocation's unsplit part and, when `answering`, the answer being
 * written now (`answer_wall_ns`; its share, with the rounding, is returned).
 * Fills in the held answers' aux words. */
static uint64_t split_cpu(uint64_t now_ns, bool answering, uint64_t answer_wall_ns)
{
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID); /* one thread: the process's CPU time */
    uint64_t total = cpu - ob.cpu_mark_ns;
    ob.cpu_mark_ns = cpu;
    uint64_t running = ob.seg_start_ns ? now_ns - ob.seg_start_ns : 0;
    double wall = (double)running + (double)answer_wall_ns;
    for (unsigned i = 0; i < ob.nheld; i++)
        wall += (double)ob.held[i].wall_ns;
    double per_ns = wall > 0 ? (double)total / wall : 0;
    uint64_t given = 0;
    for (unsigned i = 0; i < ob.nheld; i++) {
        uint64_t share = (uint64_t)((double)ob.held[i].wall_ns * per_ns);
        if (!answering && ob.seg_start_ns == 0 && i + 1 == ob.nheld)
            share = total - given; /* the last one takes the rounding */
        given += share;
        uint32_t aux = to_us(ob.held[i].cpu_ns + share);
        memcpy(ob.buf + ob.held[i].off + offsetof(sbx_frame_hdr_t, aux), &aux, sizeof aux);
    }
    if (ob.seg_start_ns) {
        uint64_t share = answering ? (uint64_t)((double)running * per_ns) : total - given;
        given += share;
        ob.carry_ns += share;
        ob.seg_start_ns = now_ns;
    }
    return answering ? total - given : 0;
}

/* Appends a frame to the held ones when it fits; false when it does not. */
static bool hold_frame(const sbx_frame_hdr_t *h, const void *meta, size_t meta_len, const void *body,
                       size_t body_len)
{
    if (ob.buf == NULL || ob.len + sizeof *h + meta_len + body_len > OUTBOX_HOLD_BYTES)
        return false;
    memcpy(ob.buf + ob.len, h, sizeof *h);
    ob.len += sizeof *h;
    if (meta_len)
        memcpy(ob.buf + ob.len, meta, meta_len);
    ob.len += meta_len;
    if (body_len)
        memcpy(ob.buf + ob.len, body, body_len);
    ob.len += body_len;
    return true;
}

/* Writes the held frames, then the frame given (if any), in one writev. */
static int write_out(const sbx_frame_hdr_t *h, const void *meta, size_t meta_len, const void *body,
                     size_t body_len)
{
    struct iovec iov[4];
    int n = 0;
    if (ob.len)
        iov[n++] = (struct iovec){ob.buf, ob.len};
    if (h) {
        iov[n++] = (struct iovec){(void *)h, sizeof *h};
        if (meta_len)
            iov[n++] = (struct iovec){(void *)meta, meta_len};
        if (body_len)
            iov[n++] = (struct iovec){(void *)body, body_len};
    }
    ob.len = 0;
    ob.nheld = 0;
    int rc = n ? sbx_writev_all(ob.fd, iov, n) : 0;
    if (rc < 0)
        ob.error = rc;
    return rc;
}

/* Writes what is held, its answers' CPU time split first. */
static int flush_now(void)
{
    if (ob.len == 0)
        return ob.error;
    if (ob.nheld)
        split_cpu(clock_ns(CLOCK_MONOTONIC), false, 0);
    int rc = write_out(NULL, NULL, 0, NULL, 0);
    return rc ? rc : ob.error;
}

/* SIGPROF, every OUTBOX_TICK_US of the process's CPU time (in practice at
 * the scheduler's tick): a long invocation does not keep the answers held
 * ahead of it back. */
static void on_tick(int sig)
{
    (void)sig;
    if (ob.busy) {
        ob.pending = 1;
        return;
    }
    int saved = errno;
    ob.busy = 1;
    (void)flush_now();
    ob.busy = 0;
    errno = saved;
}

/* Enters the busy section: the timer's signal handler then leaves the frames
 * alone (it notes a flush for leave). */
static void enter(void)
{
    ob.busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Leaves the busy section; writes what the timer wanted written meanwhile. */
static int leave(int rc)
{
    atomic_signal_fence(memory_order_seq_cst);
    ob.busy = 0;
    atomic_signal_fence(memory_order_seq_cst);
    if (ob.pending) {
        ob.busy = 1;
        ob.pending = 0;
        int r = flush_now();
        ob.busy = 0;
        if (rc == 0)
            rc = r;
    }
    return rc ? rc : ob.error;
}

/* ------------------------------------------------------------------ API */

void sbx_outbox_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    struct itimerval it = {.it_interval = {0, OUTBOX_TICK_US}, .it_value = {0, OUTBOX_TICK_US}};
    setitimer(ITIMER_PROF, &it, NULL);
}

void sbx_outbox_open(int fd)
{
    ob.fd = fd;
    ob.len = ob.nheld = 0;
    ob.seg_start_ns = ob.carry_ns = 0;
    ob.error = 0;
    ob.cpu_mark_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int sbx_outbox_call_begin(uint64_t now_ns)
{
    enter();
    int rc = 0;
    if (ob.nheld && now_ns - ob.held_since_ns >= OUTBOX_HOLD_US * 1000u)
        rc = flush_now();
    ob.seg_start_ns = now_ns;
    ob.carry_ns = 0;
    return leave(rc);
}

void sbx_outbox_call_resume(void)
{
    enter();
    if (ob.seg_start_ns)
        ob.seg_start_ns = clock_ns(CLOCK_MONOTONIC);
    (void)leave(0);
}

int sbx_outbox_answer(uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                      size_t body_len, bool hold)
{
    if (meta_len > UINT32_MAX || body_len > UINT32_MAX - meta_len)
        return -EMSGSIZE;
    enter();
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    uint64_t wall = ob.seg_start_ns ? now - ob.seg_start_ns : 0;
    uint64_t carry = ob.carry_ns;
    ob.seg_start_ns = 0; /* it ends here */
    ob.carry_ns = 0;
    if (hold && ob.buf == NULL)
        ob.buf = malloc(OUTBOX_HOLD_BYTES);
    sbx_frame_hdr_t h = sbx_frame_header(type, id, 0, meta_len, body_len);
    size_t off = ob.len;
    if (hold && ob.error == 0 && ob.nheld < OUTBOX_MAX_HELD && hold_frame(&h, meta, meta_len, body, body_len)) {
        ob.held[ob.nheld++] = (held_t){.off = off, .wall_ns = wall, .cpu_ns = carry};
        if (ob.nheld == 1)
            ob.held_since_ns = now;
        return leave(0);
    }
    h.aux = to_us(carry + split_cpu(now, true, wall));
    return leave(write_out(&h, meta, meta_len, body, body_len));
}

int sbx_outbox_frame(uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                     size_t body_len)
{
    if (meta_len > UINT32_MAX || body_len > UINT32_MAX - meta_len)
        return -EMSGSIZE;
    enter();
    sbx_frame_hdr_t h = sbx_frame_header(type, id, 0, meta_len, body_len);
    if (ob.len && hold_frame(&h, meta, meta_len, body, body_len))
        return leave(0);
    if (ob.nheld)
        split_cpu(clock_ns(CLOCK_MONOTONIC), false, 0);
    return leave(write_out(&h, meta, meta_len, body, body_len));
}

int sbx_outbox_flush(void)
{
    enter();
    return leave(flush_now());
}

void sbx_outbox_flush_from_signal(void)
{
    if (ob.fd >= 0 && !ob.busy) {
        ob.busy = 1;
        (void)flush_now();
    }
}
