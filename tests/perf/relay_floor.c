/* The floor under tine.invoke on this machine: a caller process sends a
 * 100-byte message to a router process (epoll, like tined's loop), which
 * passes it to a callee process and the answer back, over pairs of pipes as
 * tined and its sandboxes use, with no tine code at all. One round trip makes the same four process wake-ups
 * as one tine.invoke hop (sandbox -> tined -> sandbox -> tined -> sandbox).
 *
 *   relay_floor [N [K [KIB [chain]]]]
 *     N round trips (default 20000); the router rotates over K callee
 *     processes (default 1); each callee touches KIB KiB of its memory per
 *     message (default 0), standing for the memory a real function touches.
 *     With "chain", callee 1 calls callee 2 through the router and waits for
 *     its answer, which calls callee 3 ... callee K: the wake-ups of a chain
 *     of K functions (K - 1 hops below the first), timed end to end.
 *
 * Prints p50/p99/min of one round trip (a whole chain in chain mode). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MSG 100
#define FROM_CALLER UINT32_MAX
#define REQUEST 'Q' /* first byte of a message going down the chain */
#define ANSWER 'A'  /* ... and of one coming back */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int read_full(int fd, char *b, int n)
{
    for (int got = 0; got < n;) {
        ssize_t r = read(fd, b + got, (size_t)(n - got));
        if (r <= 0)
            return -1;
        got += (int)r;
    }
    return n;
}

/* A two-way channel of two pipes between end 0 and end 1: end e reads
 * rd[e] and writes wr[e]. */
typedef struct {
    int rd[2], wr[2];
} chan_t;

static int chan_open(chan_t *c)
{
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0)
        return -1;
    c->wr[0] = down[1];
    c->rd[1] = down[0];
    c->wr[1] = up[1];
    c->rd[0] = up[0];
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int k = argc > 2 ? atoi(argv[2]) : 1;
    int kib = argc > 3 ? atoi(argv[3]) : 0;
    int chain = argc > 4 && argv[4][0] == 'c';
    if (n < 100)
        n = 100;
    if (k < 1 || k > 1000)
        k = 1;
    if (kib < 0 || kib > 65536)
        kib = 0;
    chan_t ab; /* caller (end 0) and router (end 1) */
    chan_t *callee = malloc(sizeof(chan_t) * (size_t)k); /* router (end 0) and callee i (end 1) */
    char buf[MSG] = {0};
    if (chan_open(&ab) != 0)
        return 1;
    for (int i = 0; i < k; i++)
        if (chan_open(&callee[i]) != 0)
            return 1;
    setpgid(0, 0);
    for (int i = 0; i < k; i++) {
        if (fork() == 0) { /* a callee */
            volatile char *mem = calloc(1, (size_t)kib * 1024 + 1);
            int rd = callee[i].rd[1], wr = callee[i].wr[1];
            for (;;) {
                if (read_full(rd, buf, MSG) < 0)
                    _exit(0);
                for (size_t at = 0; at < (size_t)kib * 1024; at += 64)
                    mem[at]++;
                if (chain && i + 1 < k) { /* call the next one and wait */
                    buf[0] = REQUEST;
                    if (write(wr, buf, MSG) != MSG || read_full(rd, buf, MSG) < 0)
                        _exit(0);
                }
                buf[0] = ANSWER;
                if (write(wr, buf, MSG) != MSG)
                    _exit(0);
            }
        }
    }
    if (fork() == 0) { /* the router */
        int ep = epoll_create1(0);
        struct epoll_event e = {.events = EPOLLIN};
        e.data.u32 = FROM_CALLER;
        epoll_ctl(ep, EPOLL_CTL_ADD, ab.rd[1], &e);
        for (int i = 0; i < k; i++) {
            e.data.u32 = (uint32_t)i;
            epoll_ctl(ep, EPOLL_CTL_ADD, callee[i].rd[0], &e);
        }
        int next = 0;
        for (;;) {
            struct epoll_event ev[4];
            int m = epoll_wait(ep, ev, 4, -1);
            for (int i = 0; i < m; i++) {
                uint32_t from = ev[i].data.u32;
                int in = from == FROM_CALLER ? ab.rd[1] : callee[from].rd[0];
                if (read_full(in, buf, MSG) < 0)
                    _exit(0);
                int out;
                if (from == FROM_CALLER) {
                    out = callee[chain ? 0 : next].wr[0];
                    next = (next + 1) % k;
                } else if (buf[0] == REQUEST) { /* chain: down to the next */
                    out = callee[from + 1].wr[0];
                } else { /* an answer: up to whoever called */
                    out = !chain || from == 0 ? ab.wr[1] : callee[from - 1].wr[0];
                }
                if (write(out, buf, MSG) != MSG)
                    _exit(0);
            }
        }
    }
    double *t = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        double t0 = now();
        buf[0] = REQUEST;
        if (write(ab.wr[0], buf, MSG) != MSG || read_full(ab.rd[0], buf, MSG) < 0)
            return 1;
        t[i] = now() - t0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    if (chain)
        printf("relay floor, chain of %d processes touching %d KiB: p50 %.2f ms  p99 %.2f ms  (%.1f us a hop; n=%d)\n",
               k, kib, t[n / 2] * 1e3, t[n * 99 / 100] * 1e3, t[n / 2] * 1e6 / (k > 1 ? k - 1 : 1), n);
    else
        printf("relay floor (4 wake-ups, %d callee%s touching %d KiB): p50 %.1f us  p99 %.1f us  min %.1f us  (n=%d)\n",
               k, k == 1 ? "" : "s", kib, t[n / 2] * 1e6, t[n * 99 / 100] * 1e6, t[0] * 1e6, n);
    fflush(stdout);
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM); /* the router and the callees */
    free(t);
    free(callee);
    return 0;
}
