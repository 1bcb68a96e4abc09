/* The floor under one tine.invoke hop on this machine: three processes
 * relaying a 100-byte message over two socketpairs, caller -> router
 * (epoll) -> callee -> router -> caller, with no tine code at all. A hop of
 * tine.invoke makes the same four process wake-ups (sandbox -> tined ->
 * sandbox -> tined -> sandbox), so it can never be faster than this.
 * Prints p50/p99/min of the round trip. Usage: relay_floor [N] */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 100

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

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100)
        n = 100;
    int ab[2], bc[2];
    char buf[MSG] = {0};
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ab) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, bc) != 0)
        return 1;
    setpgid(0, 0);
    if (fork() == 0) { /* callee */
        for (;;) {
            if (read_full(bc[1], buf, MSG) < 0 || write(bc[1], buf, MSG) != MSG)
                _exit(0);
        }
    }
    if (fork() == 0) { /* router */
        int ep = epoll_create1(0);
        struct epoll_event e = {.events = EPOLLIN};
        e.data.fd = ab[1];
        epoll_ctl(ep, EPOLL_CTL_ADD, ab[1], &e);
        e.data.fd = bc[0];
        epoll_ctl(ep, EPOLL_CTL_ADD, bc[0], &e);
        for (;;) {
            struct epoll_event ev[4];
            int k = epoll_wait(ep, ev, 4, -1);
            for (int i = 0; i < k; i++) {
                int fd = ev[i].data.fd;
                if (read_full(fd, buf, MSG) < 0 || write(fd == ab[1] ? bc[0] : ab[1], buf, MSG) != MSG)
                    _exit(0);
            }
        }
    }
    double *t = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        double t0 = now();
        if (write(ab[0], buf, MSG) != MSG || read_full(ab[0], buf, MSG) < 0)
            return 1;
        t[i] = now() - t0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("relay floor (3 processes, 4 wake-ups): p50 %.1f us  p99 %.1f us  min %.1f us  (n=%d)\n", t[n / 2] * 1e6,
           t[n * 99 / 100] * 1e6, t[0] * 1e6, n);
    fflush(stdout);
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM); /* the router and the callee */
    free(t);
    return 0;
}
