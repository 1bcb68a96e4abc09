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
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD_BYTES 24 /* 48 hex digits */

/* Writes a whole file of mode 0600 (replacing one that was there). */
static int write_private(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The password of the embedded server: read from state_dir/redis.password,
 * or generated and written there the first time. */
static char *load_or_create_password(const char *state_dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/redis.password", state_dir);
    char *data = NULL;
    size_t len = 0;
    if (tine_read_file(path, &data, &len) == 0) {
        while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
            data[--len] = '\0';
        bool ok = len >= 32;
        for (size_t i = 0; ok && i < len; i++)
            ok = (data[i] >= '0' && data[i] <= '9') || (data[i] >= 'a' && data[i] <= 'f');
        if (ok) {
            chmod(path, 0600);
            free(path);
            return data;
        }
        free(data);
        tine_log(TINE_LOG_WARN, "%s does not hold a password tined generated; making a new one", path);
    }
    unsigned char raw[PASSWORD_BYTES];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw) {
        snprintf(err, errlen, "cannot generate a password for the private redis-server: %s", strerror(errno));
        free(path);
        return NULL;
    }
    char *pw = xmalloc(2 * sizeof raw + 2);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(pw + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof raw);
    size_t n = strlen(pw);
    pw[n] = '\n';
    int rc = write_private(path, pw, n + 1);
    pw[n] = '\0';
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, tine_strerror(rc));
        free(pw);
        pw = NULL;
    }
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
    tine_buf_appendf(b, "\nrequirepass %s\n", password);
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
    int rc = write_private(conf_path, conf.data, conf.len);
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
        fprintf(stderr, "tined: cannot run redis-server: %s (install the redis-server package)\n", strerror(errno));
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
