/* A real redis-server for the tests of redis/: started on a unix socket in a
 * temp dir and on a loopback port, stopped and started again on the same
 * socket and port. Header-only; each test file includes it once. */
#ifndef TINE_TEST_REDIS_SERVER_H
#define TINE_TEST_REDIS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char sock[96];
    int port;
    pid_t pid;
    const char *extra[16]; /* more arguments, e.g. "--requirepass", "pw" */
} test_redis_t;

/* A port nobody listens on right now. */
static int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len))
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the server accepts connections on its port and its socket. */
static int test_redis_listening(const test_redis_t *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)r->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", r->sock);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ok = ok && connect(fd, (struct sockaddr *)&su, sizeof su) == 0;
    close(fd);
    return ok;
}

/* Starts (or starts again, on the same socket and port) the server. */
static void test_redis_start(test_redis_t *r)
{
    if (r->dir[0] == '\0') {
        snprintf(r->dir, sizeof r->dir, "/tmp/tine-rds-XXXXXX");
        if (mkdtemp(r->dir) == NULL)
            abort();
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
        r->port = test_free_port();
    }
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[40] = {"redis-server", "--port",      port,     "--bind",    "127.0.0.1",
                            "--unixsocket", r->sock,       "--save", "",          "--appendonly",
                            "no",           "--daemonize", "no",     "--logfile", "/dev/null"};
    int n = 15;
    for (int i = 0; i < 16 && r->extra[i]; i++)
        argv[n++] = r->extra[i];
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 400 && !test_redis_listening(r); i++)
        test_sleep_ms(10);
    if (!test_redis_listening(r)) {
        fprintf(stderr, "redis-server did not start on port %d\n", r->port);
        abort();
    }
}

/* Kills the server (as a crash would) and waits until it is gone. */
static void test_redis_stop(test_redis_t *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    unlink(r->sock);
}

static void test_redis_cleanup(test_redis_t *r)
{
    test_redis_stop(r);
    if (r->dir[0])
        rmdir(r->dir);
    r->dir[0] = '\0';
}

#endif
