/* Synchronous connections: connect with a timeout, log in (AUTH, SELECT,
 * PING), run commands with a timeout, reopen what broke. */
#include "redis_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rds_sync {
    rds__target_t target;
    uint32_t timeout_ms;
    redisContext *c; /* NULL until connected and after a failure */
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

/* Connects to the target and logs in (AUTH, SELECT, PING pipelined).
 * Returns the context, or NULL with a message. */
static redisContext *dial(const rds__target_t *t, uint32_t timeout_ms, char *err, size_t errlen)
{
    const rds_url_t *u = &t->url;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    const char *path = rds__target_unix_path(t);
    redisContext *c =
        path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(u->addrs[0].host, u->addrs[0].port, tv);
    char why[128];
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis at %s is unreachable: %s", u->redacted,
                 c ? io_error(c, timeout_ms, why, sizeof why) : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
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
    redisAppendCommand(c, "PING");
    names[n++] = "PING";
    bool failed = false;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) {
            if (!failed)
                snprintf(err, errlen, "redis at %s did not answer %s: %s", u->redacted, names[i],
                         io_error(c, timeout_ms, why, sizeof why));
            failed = true;
            break;
        }
        redisReply *r = reply;
        if (!failed && r->type == REDIS_REPLY_ERROR) {
            rds__explain_setup_error(u, names[i], r->str, err, errlen);
            failed = true;
        }
        freeReplyObject(r);
    }
    if (failed) {
        redisFree(c);
        return NULL;
    }
    return c;
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
 * is not. */
static bool idle_ok(redisContext *c)
{
    if (c->err)
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n == 0;
}

redisContext *rds_sync_context(rds_sync_t *s, char *err, size_t errlen)
{
    if (s->c && idle_ok(s->c))
        return s->c;
    if (s->c)
        redisFree(s->c);
    s->c = dial(&s->target, s->timeout_ms, err, errlen);
    return s->c;
}

/* After an I/O failure: message, and the context is dropped. */
static void lost(rds_sync_t *s, char *err, size_t errlen)
{
    char why[128];
    snprintf(err, errlen, "redis at %s: %s", s->target.url.redacted, io_error(s->c, s->timeout_ms, why, sizeof why));
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

redisReply *rds_sync_vcommand(rds_sync_t *s, char *err, size_t errlen, const char *fmt, va_list ap)
{
    redisContext *c = rds_sync_context(s, err, errlen);
    if (c == NULL)
        return NULL;
    redisReply *r = redisvCommand(c, fmt, ap);
    if (r == NULL) {
        lost(s, err, errlen);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
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
            snprintf(err, errlen, "redis: %s", r->str);
            rc = TINE_EREDIS;
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
