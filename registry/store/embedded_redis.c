/* A private redis-server for a node given no Redis URL (the embedded
 * default): unix socket and append-only file under the state dir, a
 * password generated at the first start (state_dir/redis.password, 0600)
 * and a memory cap. Its settings, the password among them, go through a
 * config file of mode 0600 (state_dir/redis.conf, written at every start),
 * never through its command line, which every user of the host can read. */
#include "registry.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD_BYTES 24 /* 48 hex digits */

/* The password of the embedded server: read from state_dir/redis.password,
 * or generated and written there the first time. */
static char *load_or_create_password(const char *state_dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/redis.password", state_dir);
    char *pw = NULL;
    bool created = false;
    int rc = tine_secret_file(path, PASSWORD_BYTES, 32, &pw, &created);
    if (rc != 0)
        snprintf(err, errlen, "cannot make the password of the private redis-server (%s): %s", path,
                 tine_strerror(rc));
    free(path);
    return pw;
}

/* Appends a value to a redis.conf line as a quoted string. */
static void conf_quoted(tine_buf_t *b, const char *s)
{
    tine_buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            tine_buf_append(b, "\\", 1);
        tine_buf_append(b, s, 1);
    }
    tine_buf_append(b, "\"", 1);
}

/* redis.conf of the embedded server. */
static void make_conf(tine_buf_t *b, const char *state_dir, const char *sock, const char *password,
                      const char *maxmemory)
{
    char *log = xasprintf("%s/redis.log", state_dir);
    tine_buf_appendf(b, "# Written by tined at every start of its private redis-server: edits are lost.\n"
                        "port 0\nunixsocketperm 700\nappendonly yes\nappendfsync everysec\nsave \"\"\n"
                        "daemonize no\n");
    tine_buf_appendf(b, "unixsocket ");
    conf_quoted(b, sock);
    tine_buf_appendf(b, "\ndir ");
    conf_quoted(b, state_dir);
    tine_buf_appendf(b, "\nlogfile ");
    conf_quoted(b, log);
    tine_buf_appendf(b, "\nrequirepass ");
    conf_quoted(b, password);
    tine_buf_appendf(b, "\n");
    /* Only keys with a TTL may be evicted (schedule locks, kv values set
     * with a ttl, activation records): the registry, event streams, usage
     * and kv values without a ttl never are; when those fill it, writes
     * fail with OOM errors instead. */
    tine_buf_appendf(b, "maxmemory %s\nmaxmemory-policy volatile-lru\n", maxmemory);
    free(log);
}

/* Waits until the server answers PING with its password (up to 10 s). */
static int wait_ready(pid_t pid, const char *url, const char *state_dir, bool *reaped, char *err, size_t errlen)
{
    rds_sync_t *s = rds_sync_new(url, 500, err, errlen);
    if (s == NULL)
        return TINE_EINVAL;
    int rc = TINE_ETIMEOUT;
    for (int i = 0; i < 200; i++) {
        if (rds_sync_context(s, err, errlen) != NULL) {
            rc = 0;
            break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            snprintf(err, errlen, "redis-server exited at start (status %d); see %s/redis.log",
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), state_dir);
            *reaped = true;
            rc = TINE_EREDIS;
            break;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (rc == TINE_ETIMEOUT) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "redis-server did not answer within 10 s (%s)", why);
    }
    rds_sync_free(s);
    return rc;
}

int reg_embedded_redis_start(const char *state_dir, const char *maxmemory, int *pid_out, char **url, char *err,
                             size_t errlen)
{
    char *sock = xasprintf("%s/redis.sock", state_dir);
    if (strlen(sock) >= 100) {
        snprintf(err, errlen, "state dir %s is too long for a unix socket path", state_dir);
        free(sock);
        return TINE_EINVAL;
    }
    char *password = load_or_create_password(state_dir, err, errlen);
    if (password == NULL) {
        free(sock);
        return TINE_EINVAL;
    }
    char *conf_path = xasprintf("%s/redis.conf", state_dir);
    tine_buf_t conf;
    tine_buf_init(&conf);
    make_conf(&conf, state_dir, sock, password, maxmemory ? maxmemory : REG_EMBEDDED_REDIS_MAXMEMORY);
    int rc = tine_write_file(conf_path, conf.data, conf.len, 0600);
    explicit_bzero(conf.data, conf.len);
    tine_buf_dispose(&conf);
    char *u = rds_url_make_unix(sock, password);
    explicit_bzero(password, strlen(password));
    free(password);
    free(sock);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", conf_path, tine_strerror(rc));
        free(conf_path);
        free(u);
        return rc;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        free(conf_path);
        free(u);
        return rc;
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
        execlp("redis-server", "redis-server", conf_path, (char *)NULL);
        tine_log(TINE_LOG_ERROR, "cannot run redis-server: %s (install the redis-server package)", strerror(errno));
        _exit(127);
    }
    free(conf_path);
    bool reaped = false;
    rc = wait_ready(pid, u, state_dir, &reaped, err, errlen);
    if (rc != 0) {
        if (!reaped) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        free(u);
        return rc;
    }
    *pid_out = pid;
    *url = u;
    return 0;
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
