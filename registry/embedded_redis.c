/* A private redis-server for a node given no Redis URL (the embedded
 * default): unix socket and append-only file under the state dir. */
#include "registry.h"
#include "tine_common.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Returns 1 when a redis server answers PING on the unix socket. */
static int redis_answers(const char *sock)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

int reg_embedded_redis_start(const char *state_dir, int *pid_out, char **url, char *err, size_t errlen)
{
    char *sock = xasprintf("%s/redis.sock", state_dir);
    char *log = xasprintf("%s/redis.log", state_dir);
    if (strlen(sock) >= 100) {
        snprintf(err, errlen, "state dir %s is too long for a unix socket path", state_dir);
        free(sock);
        free(log);
        return TINE_EINVAL;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        free(sock);
        free(log);
        return -errno;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        setpgid(0, 0); /* keep Ctrl-C for tined, which stops redis itself */
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
               "--dir", state_dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
               "--daemonize", "no", "--logfile", log, (char *)NULL);
        fprintf(stderr, "tined: cannot run redis-server: %s (install the redis-server package)\n",
                strerror(errno));
        _exit(127);
    }
    free(log);
    for (int i = 0; i < 200; i++) {
        if (redis_answers(sock)) {
            *pid_out = pid;
            *url = xasprintf("unix://%s", sock);
            free(sock);
            return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            snprintf(err, errlen, "redis-server exited at start (status %d); see %s/redis.log",
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), state_dir);
            free(sock);
            return TINE_EREDIS;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(err, errlen, "redis-server did not answer on %s within 10 s", sock);
    free(sock);
    return TINE_ETIMEOUT;
}

void reg_embedded_redis_stop(int pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
