/* A real redis-server for the tests of redis/: started on a unix socket in a
 * temp dir and on a loopback port, stopped and started again on the same
 * socket and port; and a Sentinel set (a master, its replica and three
 * sentinels, each with its own config file) for the failover tests
 * (tests/lib/redis_ha.sh does the same for the shell tests). Header-only;
 * each test file includes it once. */
#ifndef TINE_TEST_REDIS_SERVER_H
#define TINE_TEST_REDIS_SERVER_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>

#include "tine_common.h"
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
    char arg[4][64];       /* room for extra's values */
} test_redis_t;

/* A port nobody listens on right now. */
static inline int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len))
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static inline void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the server accepts connections on its port and its socket. */
static inline int test_redis_listening(const test_redis_t *r)
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

/* Forks redis-server with r's port, socket, dir and extra arguments, and
 * waits up to 4 s for it to listen. Returns 1 when it listens, 0 when it
 * exited or never listened (then it is killed and reaped). */
static inline int test_redis_spawn(test_redis_t *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    /* Its own dir: a replica writes the data set it syncs there
     * (dump.rdb), which a server started later in the same dir would load. */
    const char *argv[40] = {"redis-server", "--port",    port,        "--bind",       "127.0.0.1", "--unixsocket",
                            r->sock,        "--save",    "",          "--appendonly", "no",        "--daemonize",
                            "no",           "--logfile", "/dev/null", "--dir",        r->dir};
    int n = 17;
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
    for (int i = 0; i < 400 && !test_redis_listening(r); i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) { /* it exited: the port was taken */
            r->pid = 0;
            return 0;
        }
        test_sleep_ms(10);
    }
    if (test_redis_listening(r))
        return 1;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    return 0;
}

/* Starts (or starts again, on the same socket and port) the server. A first
 * start whose port another process took between test_free_port and the
 * server's bind (tests run in parallel) tries again on a new port. */
static inline void test_redis_start(test_redis_t *r)
{
    int fresh = r->dir[0] == '\0';
    if (fresh) {
        snprintf(r->dir, sizeof r->dir, "/tmp/tine-rds-XXXXXX");
        if (mkdtemp(r->dir) == NULL)
            abort();
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
        r->port = test_free_port();
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        if (test_redis_spawn(r))
            return;
        if (fresh)
            r->port = test_free_port();
        else
            test_sleep_ms(200); /* the same port: whoever holds it may let go */
    }
    fprintf(stderr, "redis-server did not start on port %d\n", r->port);
    abort();
}

/* Removes a temp dir and the files in it (a server's dump.rdb, a
 * sentinel's config and the temp file of a rewrite it was killed in). */
static inline void test_rmdir_files(const char *dir)
{
    if (dir[0] == '\0')
        return;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Kills the server (as a crash would) and waits until it is gone. */
static inline void test_redis_stop(test_redis_t *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    unlink(r->sock);
}

static inline void test_redis_cleanup(test_redis_t *r)
{
    test_redis_stop(r);
    test_rmdir_files(r->dir);
    r->dir[0] = '\0';
}

/* ------------------------------------------------------------ Sentinel */

/* A sentinel: `redis-server FILE --sentinel` on a loopback port, with its
 * config file (which it rewrites) in a dir of its own. */
typedef struct {
    char dir[64];
    int port;
    pid_t pid;
    const char *extra_conf; /* more config lines, e.g. "requirepass pw\n" */
} test_sentinel_t;

/* One command on a fresh connection to 127.0.0.1:port (NULL when it cannot
 * connect); freeReplyObject the reply. */
static redisReply *test_cmd(int port, const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* Starts a sentinel watching `master` at 127.0.0.1:master_port with
 * `quorum`, fast timings (down after 1 s, failover timeout 3 s). */
static inline void test_sentinel_start(test_sentinel_t *s, const char *master, int master_port, int quorum)
{
    int fresh = s->dir[0] == '\0';
    if (fresh) {
        snprintf(s->dir, sizeof s->dir, "/tmp/tine-snt-XXXXXX");
        if (mkdtemp(s->dir) == NULL)
            abort();
        s->port = test_free_port();
    }
    /* As test_redis_start: a fresh port taken meanwhile by another test is
     * replaced by a new one. */
    for (int attempt = 0; attempt < 5; attempt++) {
        char conf[128];
        snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
        FILE *f = fopen(conf, "w");
        if (f == NULL)
            abort();
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\nlogfile \"\"\n"
                "sentinel monitor %s 127.0.0.1 %d %d\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 3000\n",
                s->port, s->dir, master, master_port, quorum, master, master);
        if (s->extra_conf)
            fputs(s->extra_conf, f);
        fclose(f);
        s->pid = fork();
        if (s->pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 1);
            execlp("redis-server", "redis-server", conf, "--sentinel", (char *)NULL);
            _exit(127);
        }
        int exited = 0;
        for (int i = 0; i < 400 && !exited; i++) {
            redisReply *r = test_cmd(s->port, "PING");
            int up =
                r && (r->type == REDIS_REPLY_STATUS || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOAUTH")));
            freeReplyObject(r);
            if (up)
                return;
            exited = waitpid(s->pid, NULL, WNOHANG) == s->pid; /* it exited: the port was taken */
            if (!exited)
                test_sleep_ms(10);
        }
        if (!exited) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
        if (fresh)
            s->port = test_free_port();
        else
            test_sleep_ms(200);
    }
    fprintf(stderr, "the sentinel did not start on port %d\n", s->port);
    abort();
}

static inline void test_sentinel_stop(test_sentinel_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
    test_rmdir_files(s->dir);
    s->dir[0] = '\0';
}

/* A master (server[0] at first), its replica (server[1]) and three
 * sentinels (quorum 2) watching `master`; `odd` is a sentinel a test sets
 * up for itself (e.g. one misled about the master), stopped with the rest
 * so that a failed assertion leaves no process behind. */
typedef struct {
    char name[32];
    test_redis_t server[2];
    test_sentinel_t sentinel[3];
    test_sentinel_t odd;
} test_ha_t;

/* The port of the master the sentinel at `port` names (0: none). */
static inline int test_sentinel_names(int port, const char *master)
{
    redisReply *r = test_cmd(port, "SENTINEL get-master-addr-by-name %s", master);
    int p = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atoi(r->element[1]->str) : 0;
    freeReplyObject(r);
    return p;
}

/* A field of SENTINEL MASTER's answer on the sentinel at `port`, as a
 * number (-1 when absent). */
static inline long test_sentinel_field(int port, const char *master, const char *field)
{
    redisReply *r = test_cmd(port, "SENTINEL MASTER %s", master);
    long v = -1;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, field) == 0)
            v = atol(r->element[i + 1]->str);
    freeReplyObject(r);
    return v;
}

/* Whether the server at `port` is a replica whose link to its master is up. */
static inline int test_replica_synced(int port)
{
    redisReply *r = test_cmd(port, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 && strcmp(r->element[0]->str, "slave") == 0 &&
             strcmp(r->element[3]->str, "connected") == 0;
    freeReplyObject(r);
    return ok;
}

/* How many replicas the master on `port` counts as online (ROLE): a
 * replica that says it is connected may not be yet (diskless sync puts it
 * online at its first acknowledgement). */
static inline int test_master_replicas(int port)
{
    redisReply *r = test_cmd(port, "ROLE");
    int n = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && strcmp(r->element[0]->str, "master") == 0 &&
                    r->element[2]->type == REDIS_REPLY_ARRAY
                ? (int)r->element[2]->elements
                : 0;
    freeReplyObject(r);
    return n;
}

/* Waits until every sentinel names the master on `port`, knows the other
 * two sentinels and `replicas` replicas. Returns whether it got there
 * within timeout_ms. */
static inline int test_ha_settled(test_ha_t *h, int port, int replicas, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            int sp = h->sentinel[i].port;
            ok = test_sentinel_names(sp, h->name) == port &&
                 test_sentinel_field(sp, h->name, "num-other-sentinels") == 2 &&
                 test_sentinel_field(sp, h->name, "num-slaves") >= replicas;
            /* no failover under way */
            redisReply *r = ok ? test_cmd(sp, "SENTINEL MASTER %s", h->name) : NULL;
            for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2)
                if (strcmp(r->element[k]->str, "flags") == 0)
                    ok = strcmp(r->element[k + 1]->str, "master") == 0;
            freeReplyObject(r);
        }
        if (ok)
            return 1;
        test_sleep_ms(50);
    }
    return 0;
}

/* Starts the set and waits until the replica is in sync (and online for
 * the master) and the sentinels know each other and the replica (a
 * failover needs both). */
static inline void test_ha_start(test_ha_t *h, const char *master)
{
    snprintf(h->name, sizeof h->name, "%s", master);
    test_redis_start(&h->server[0]);
    test_redis_t *rep = &h->server[1];
    snprintf(rep->arg[0], sizeof rep->arg[0], "%d", h->server[0].port);
    const char *extra[] = {"--replicaof", "127.0.0.1", rep->arg[0], NULL};
    memcpy(rep->extra, extra, sizeof extra);
    test_redis_start(rep);
    for (int i = 0; i < 3; i++)
        test_sentinel_start(&h->sentinel[i], master, h->server[0].port, 2);
    for (int i = 0; i < 400 && !(test_replica_synced(rep->port) && test_master_replicas(h->server[0].port) == 1); i++)
        test_sleep_ms(25);
    if (!test_replica_synced(rep->port) || test_master_replicas(h->server[0].port) != 1 ||
        !test_ha_settled(h, h->server[0].port, 1, 20000)) {
        fprintf(stderr, "the sentinel set did not settle\n");
        abort();
    }
}

/* Starts server i again (same port and socket) as a replica of the server
 * on master_port, and waits until it is in sync and counted online. */
static inline void test_ha_restart_replica(test_ha_t *h, int i, int master_port)
{
    test_redis_t *r = &h->server[i];
    snprintf(r->arg[0], sizeof r->arg[0], "%d", master_port);
    const char *extra[] = {"--replicaof", "127.0.0.1", r->arg[0], NULL};
    memcpy(r->extra, extra, sizeof extra);
    test_redis_start(r);
    for (int k = 0; k < 400 && !(test_replica_synced(r->port) && test_master_replicas(master_port) >= 1); k++)
        test_sleep_ms(25);
}

/* "redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/NAME" (fresh). */
static inline char *test_ha_url(const test_ha_t *h, const char *userinfo, const char *query)
{
    return xasprintf("redis-sentinel://%s127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/%s%s", userinfo ? userinfo : "",
                     h->sentinel[0].port, h->sentinel[1].port, h->sentinel[2].port, h->name, query ? query : "");
}

static inline void test_ha_cleanup(test_ha_t *h)
{
    for (int i = 0; i < 3; i++)
        test_sentinel_stop(&h->sentinel[i]);
    test_sentinel_stop(&h->odd);
    for (int i = 0; i < 2; i++)
        test_redis_cleanup(&h->server[i]);
}

#endif
