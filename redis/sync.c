/* Synchronous connections: connect with a timeout, log in (AUTH, SELECT,
 * ROLE), run commands with a timeout, reopen what broke; with a Sentinel
 * URL, ask the sentinels which server is the master first. */
#include "redis_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MAX_MS 2000 /* a connect takes milliseconds: a longer wait is a dead host */
#define SENTINEL_ASK_MS 500         /* per sentinel asked */

struct rds_sync {
    rds__target_t target;
    uint32_t timeout_ms;
    redisContext *c; /* NULL until connected and after a failure */
    size_t first;    /* Sentinel: the sentinel asked first (the last that answered) */
    uint64_t gen;    /* Sentinel: rds__sentinel_generation() when connected */
    char addr[300];  /* the server connected to */
};

/* A hiredis I/O error in words: a read timeout says how long it waited. */
static const char *io_error(const redisContext *c, uint32_t timeout_ms, char *buf, size_t len)
{
    if (c->err == REDIS_ERR_IO && (strstr(c->errstr, "temporarily unavailable") || strstr(c->errstr, "timed out"))) {
        snprintf(buf, len, "no answer within %u ms", timeout_ms);
        return buf;
    }
    if (c->err == REDIS_ERR_EOF)
        return "the server closed the connection";
    return c->errstr[0] ? c->errstr : "connection lost";
}

/* Milliseconds as a struct timeval. */
static struct timeval ms_tv(uint32_t ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* Connects to the socket `path` or host:port and logs in (AUTH, SELECT,
 * ROLE pipelined: the server must be a master). `shown` names the server
 * in messages. Returns the context, or NULL with a message and *rc
 * (TINE_EAUTH: a refusal; TINE_EREDIS: anything else). */
static redisContext *dial_one(const rds_url_t *u, const char *path, const char *host, int port, const char *shown,
                              uint32_t timeout_ms, int *rc, char *err, size_t errlen)
{
    *rc = TINE_EREDIS;
    uint32_t connect_ms = timeout_ms < CONNECT_TIMEOUT_MAX_MS ? timeout_ms : CONNECT_TIMEOUT_MAX_MS;
    redisContext *c = path ? redisConnectUnixWithTimeout(path, ms_tv(connect_ms))
                           : redisConnectWithTimeout(host, port, ms_tv(connect_ms));
    char why[128];
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis at %s is unreachable: %s", shown,
                 c ? io_error(c, connect_ms, why, sizeof why) : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, ms_tv(timeout_ms));
    if (path == NULL)
        redisEnableKeepAlive(c);
    const char *argv[3];
    size_t lens[3];
    const char *names[3];
    int n = 0;
    int an = rds__auth_argv(u, argv, lens);
    if (an > 0) {
        redisAppendCommandArgv(c, an, argv, lens);
        names[n++] = "AUTH";
    }
    if (u->db >= 0) {
        redisAppendCommand(c, "SELECT %d", u->db);
        names[n++] = "SELECT";
    }
    redisAppendCommand(c, "ROLE");
    names[n++] = "ROLE";
    char addr[300];
    if (path)
        snprintf(addr, sizeof addr, "%s", path);
    else
        snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    bool failed = false;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) {
            if (!failed)
                snprintf(err, errlen, "redis at %s did not answer %s: %s", shown, names[i],
                         io_error(c, timeout_ms, why, sizeof why));
            failed = true;
            break;
        }
        redisReply *r = reply;
        int replicas;
        if (!failed && i == n - 1)
            failed = (*rc = rds__check_role(u, addr, r, false, &replicas, err, errlen)) != 0;
        else if (!failed && r->type == REDIS_REPLY_ERROR) {
            *rc = rds__explain_setup_error(u, names[i], r->str, err, errlen);
            failed = true;
        }
        freeReplyObject(r);
    }
    if (failed) {
        redisFree(c);
        return NULL;
    }
    *rc = 0;
    return c;
}

/* The master of a Sentinel URL: each sentinel in turn (from the one that
 * answered last) names it, and it must log in as a master; else the next
 * sentinel. Returns the context, or NULL with every sentinel's answer. */
static redisContext *dial_sentinel(rds_sync_t *s, int *rc, char *err, size_t errlen)
{
    const rds_url_t *u = &s->target.url;
    tine_buf_t why;
    tine_buf_init(&why);
    *rc = TINE_EREDIS;
    bool refused = false;
    char *tried = NULL; /* a master that failed: not dialed twice */
    int tried_port = 0;
    redisContext *c = NULL;
    for (size_t k = 0; k < u->naddrs && c == NULL; k++) {
        size_t i = (s->first + k) % u->naddrs;
        char one[1024];
        char *host = NULL;
        int port = 0;
        uint32_t ask_ms = s->timeout_ms < SENTINEL_ASK_MS ? s->timeout_ms : SENTINEL_ASK_MS;
        int arc = rds__sentinel_ask(u, &u->addrs[i], ask_ms, &host, &port, one, sizeof one);
        if (arc != 0) {
            refused = refused || arc == TINE_EAUTH;
            tine_buf_appendf(&why, "%s%s", why.len ? "; " : "", one);
            continue;
        }
        if (tried && strcmp(tried, host) == 0 && tried_port == port) {
            free(host);
            continue; /* named again: it failed already */
        }
        char shown[600];
        snprintf(shown, sizeof shown, strchr(host, ':') ? "[%s]:%d (master '%s' of %s)" : "%s:%d (master '%s' of %s)",
                 host, port, u->master, u->redacted);
        int drc;
        c = dial_one(u, NULL, host, port, shown, s->timeout_ms, &drc, one, sizeof one);
        if (c) {
            s->first = i;
            snprintf(s->addr, sizeof s->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        } else {
            refused = refused || drc == TINE_EAUTH;
            tine_buf_appendf(&why, "%s%s", why.len ? "; " : "", one);
            free(tried);
            tried = xstrdup(host);
            tried_port = port;
        }
        free(host);
    }
    free(tried);
    if (c == NULL) {
        snprintf(err, errlen, "no sentinel of %s named a usable master '%s': %s", u->redacted, u->master,
                 why.data ? why.data : "no sentinel");
        *rc = refused ? TINE_EAUTH : TINE_EREDIS;
    } else {
        *rc = 0;
    }
    tine_buf_dispose(&why);
    return c;
}

/* Connects to the target: the socket, the server, or the master the
 * sentinels name. */
static redisContext *dial(rds_sync_t *s, int *rc, char *err, size_t errlen)
{
    const rds__target_t *t = &s->target;
    const rds_url_t *u = &t->url;
    if (u->transport == RDS_SENTINEL) {
        s->gen = rds__sentinel_generation();
        return dial_sentinel(s, rc, err, errlen);
    }
    const char *path = rds__target_unix_path(t);
    snprintf(s->addr, sizeof s->addr, "%s", u->redacted);
    return dial_one(u, path, path ? NULL : u->addrs[0].host, path ? 0 : u->addrs[0].port, u->redacted, s->timeout_ms,
                    rc, err, errlen);
}

rds_sync_t *rds_sync_new(const char *url, uint32_t timeout_ms, char *err, size_t errlen)
{
    rds_sync_t *s = xcalloc(1, sizeof(*s));
    if (rds__target_init(&s->target, url, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    s->timeout_ms = timeout_ms ? timeout_ms : 2000;
    return s;
}

void rds_sync_free(rds_sync_t *s)
{
    if (s == NULL)
        return;
    if (s->c)
        redisFree(s->c);
    rds__target_dispose(&s->target);
    free(s);
}

const char *rds_sync_url(const rds_sync_t *s)
{
    return s->target.url.redacted;
}

/* Whether an idle connection is still usable: Redis sends nothing unasked,
 * so anything to read (the end of the stream, mostly: a restart) means it
 * is not; nor is one to a master the sentinels have moved since. */
static bool idle_ok(const rds_sync_t *s)
{
    redisContext *c = s->c;
    if (c->err)
        return false;
    if (s->target.url.transport == RDS_SENTINEL && s->gen != rds__sentinel_generation())
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n == 0;
}

int rds_sync_connect(rds_sync_t *s, char *err, size_t errlen)
{
    if (s->c && idle_ok(s))
        return 0;
    if (s->c)
        redisFree(s->c);
    int rc;
    s->c = dial(s, &rc, err, errlen);
    return rc;
}

redisContext *rds_sync_context(rds_sync_t *s, char *err, size_t errlen)
{
    return rds_sync_connect(s, err, errlen) == 0 ? s->c : NULL;
}

/* An error reply: a READONLY one means the server became a replica (a
 * failover): the connection is dropped so the next command finds the
 * master again. */
static void error_reply(rds_sync_t *s, const redisReply *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "redis: %s", r->str);
    if (strncmp(r->str, "READONLY", 8) == 0 && s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
}

/* After an I/O failure: message, and the context is dropped. */
static void lost(rds_sync_t *s, char *err, size_t errlen)
{
    char why[128];
    snprintf(err, errlen, "redis at %s: %s", s->addr[0] ? s->addr : s->target.url.redacted,
             io_error(s->c, s->timeout_ms, why, sizeof why));
    redisFree(s->c);
    s->c = NULL;
}

redisReply *rds_sync_command(rds_sync_t *s, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rds_sync_vcommand(s, err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

/* The reply of the command just appended on s->c (taken), as
 * rds_sync_command returns it. */
static redisReply *one_reply(rds_sync_t *s, char *err, size_t errlen)
{
    void *reply = NULL;
    if (redisGetReply(s->c, &reply) != REDIS_OK || reply == NULL) {
        lost(s, err, errlen);
        return NULL;
    }
    redisReply *r = reply;
    if (r->type == REDIS_REPLY_ERROR) {
        error_reply(s, r, err, errlen);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *rds_sync_vcommand(rds_sync_t *s, char *err, size_t errlen, const char *fmt, va_list ap)
{
    redisContext *c = rds_sync_context(s, err, errlen);
    if (c == NULL)
        return NULL;
    if (redisvAppendCommand(c, fmt, ap) != REDIS_OK) {
        snprintf(err, errlen, "redis: cannot format the command");
        return NULL;
    }
    return one_reply(s, err, errlen);
}

redisReply *rds_sync_formatted(rds_sync_t *s, const char *cmd, size_t len, char *err, size_t errlen)
{
    redisContext *c = rds_sync_context(s, err, errlen);
    if (c == NULL)
        return NULL;
    /* Not retried when the connection breaks: the command may have run. */
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        snprintf(err, errlen, "redis: cannot send the command");
        return NULL;
    }
    return one_reply(s, err, errlen);
}

int rds_sync_wait_replicas(rds_sync_t *s, char *err, size_t errlen)
{
    /* The writes went out on this connection: a new one proves nothing. */
    if (s->c == NULL || s->c->err) {
        snprintf(err, errlen, "the connection to redis at %s broke before a replica confirmed the write",
                 s->addr[0] ? s->addr : s->target.url.redacted);
        return TINE_EREDIS;
    }
    redisAppendCommand(s->c, "ROLE");
    redisReply *r = one_reply(s, err, errlen);
    if (r == NULL)
        return TINE_EREDIS;
    int replicas = 0;
    int rc = rds__check_role(&s->target.url, s->addr, r, false, &replicas, err, errlen);
    freeReplyObject(r);
    if (rc != 0 || replicas == 0)
        return rc;
    redisAppendCommand(s->c, "WAIT 1 %d", RDS_REPLICA_WAIT_MS);
    /* WAIT blocks for up to its own timeout: the read must allow that. */
    if (s->timeout_ms < RDS_REPLICA_WAIT_MS + 1000)
        redisSetTimeout(s->c, ms_tv(RDS_REPLICA_WAIT_MS + 1000));
    r = one_reply(s, err, errlen);
    if (s->c && s->timeout_ms < RDS_REPLICA_WAIT_MS + 1000)
        redisSetTimeout(s->c, ms_tv(s->timeout_ms));
    if (r == NULL)
        return TINE_EREDIS;
    bool ok = r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    freeReplyObject(r);
    if (!ok) {
        snprintf(err, errlen,
                 "no replica of redis at %s confirmed the write within %d ms (it is on the master; a failover now "
                 "could lose it)",
                 s->addr, RDS_REPLICA_WAIT_MS);
        return TINE_EREDIS;
    }
    return 0;
}

int rds_sync_replies(rds_sync_t *s, size_t n, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;
        if (s->c == NULL || redisGetReply(s->c, &reply) != REDIS_OK) {
            if (rc == 0 && s->c)
                lost(s, err, errlen);
            else if (rc == 0)
                snprintf(err, errlen, "redis at %s: not connected", s->target.url.redacted);
            return TINE_EREDIS;
        }
        redisReply *r = reply;
        if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
            error_reply(s, r, err, errlen); /* may drop s->c: the other replies are not read then */
            rc = TINE_EREDIS;
            if (s->c == NULL) {
                freeReplyObject(r);
                return rc;
            }
        } else if (rc == 0 && i == n - 1 && r->type == REDIS_REPLY_NIL) {
            snprintf(err, errlen, "redis: the transaction was aborted");
            rc = TINE_EREDIS;
        }
        freeReplyObject(r);
    }
    return rc;
}

int rds_sync_unlink_matching(rds_sync_t *s, const char *pattern, size_t *count, char *err, size_t errlen)
{
    char cursor[32] = "0";
    do {
        redisReply *r = rds_sync_command(s, err, errlen, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (r == NULL)
            return TINE_EREDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            snprintf(err, errlen, "redis: unexpected answer to SCAN");
            return TINE_EREDIS;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        if (keys->elements > 0) {
            size_t n = keys->elements + 1;
            const char **argv = xcalloc(n, sizeof(*argv));
            size_t *lens = xcalloc(n, sizeof(*lens));
            argv[0] = "UNLINK";
            lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            redisContext *c = rds_sync_context(s, err, errlen);
            int rc = c ? redisAppendCommandArgv(c, (int)n, argv, lens) : REDIS_ERR;
            free(argv);
            free(lens);
            redisReply *d = NULL;
            if (rc == REDIS_OK) {
                void *reply = NULL;
                if (redisGetReply(c, &reply) == REDIS_OK)
                    d = reply;
                else
                    lost(s, err, errlen);
            }
            if (d == NULL || d->type == REDIS_REPLY_ERROR) {
                if (d)
                    snprintf(err, errlen, "redis: %s", d->str);
                freeReplyObject(d);
                freeReplyObject(r);
                return TINE_EREDIS;
            }
            *count += d->type == REDIS_REPLY_INTEGER ? (size_t)d->integer : 0;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int rds_sync_unlink_measured(rds_sync_t *s, const char *measure, const char *key, size_t *count, char *err,
                             size_t errlen)
{
    redisReply *r = rds_sync_command(s, err, errlen, "%s %s", measure, key);
    if (r == NULL)
        return TINE_EREDIS;
    *count = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
    freeReplyObject(r);
    r = rds_sync_command(s, err, errlen, "UNLINK %s", key);
    if (r == NULL)
        return TINE_EREDIS;
    freeReplyObject(r);
    return 0;
}
