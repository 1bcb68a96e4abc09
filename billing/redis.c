/* billing's Redis connections: asynchronous ones on the loop for writing
 * records and following logs, one synchronous one for reports. */
#include "billing_internal.h"

#include <hiredis/adapters/libuv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "unix:///path" or "redis://[user@]host[:port][/db]" into a socket
 * path or a host and port. Returns 0 or -1. */
static int parse_url(const char *url, char *host, size_t hostlen, int *port, const char **unix_path)
{
    *unix_path = NULL;
    if (strncmp(url, "unix://", 7) == 0) {
        *unix_path = url + 7;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *hp = url + 8;
    const char *at = strrchr(hp, '@');
    if (at)
        hp = at + 1;
    size_t hl = strcspn(hp, ":/");
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    *port = hp[hl] == ':' ? atoi(hp + hl + 1) : 6379;
    return 0;
}

redisAsyncContext *bill__async_connect(bill_t *b)
{
    char host[256];
    int port = 0;
    const char *path;
    if (parse_url(b->redis_url, host, sizeof(host), &port, &path) != 0)
        return NULL;
    redisAsyncContext *ac = path ? redisAsyncConnectUnix(path) : redisAsyncConnect(host, port);
    if (ac == NULL || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    redisLibuvAttach(ac, b->loop);
    return ac;
}

static redisContext *reader_open(bill_t *b, char *err, size_t errlen)
{
    char host[256];
    int port = 0;
    const char *path;
    if (parse_url(b->redis_url, host, sizeof(host), &port, &path) != 0) {
        snprintf(err, errlen, "bad redis url '%s'", b->redis_url);
        return NULL;
    }
    struct timeval tv = {2, 0};
    redisContext *c = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to redis at %s: %s", b->redis_url, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Opens the reader when it is closed or broken. */
static int reader_ready(bill_t *b, char *err, size_t errlen)
{
    if (b->reader && b->reader->err == 0)
        return 0;
    if (b->reader)
        redisFree(b->reader);
    b->reader = reader_open(b, err, errlen);
    return b->reader ? 0 : -1;
}

/* Turns a reply into the result promised by bill__command: NULL with a
 * message for an error reply or a broken connection. */
static redisReply *reply_or_error(bill_t *b, redisReply *r, char *err, size_t errlen)
{
    if (r == NULL) {
        snprintf(err, errlen, "redis: %s", b->reader->errstr[0] ? b->reader->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *bill__command(bill_t *b, char *err, size_t errlen, const char *fmt, ...)
{
    redisReply *r = NULL;
    /* A connection that broke since the last call is reopened once. */
    for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
        if (reader_ready(b, err, errlen) != 0)
            return NULL;
        va_list ap;
        va_start(ap, fmt);
        r = redisvCommand(b->reader, fmt, ap);
        va_end(ap);
    }
    return reply_or_error(b, r, err, errlen);
}
