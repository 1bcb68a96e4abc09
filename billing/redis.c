/* billing's synchronous Redis connection for reports (redis/: opened on
 * first use, reopened when it broke). The asynchronous ones are the
 * recorder's (recorder.c) and the log subscription's (follow.c). */
#include "billing_internal.h"

#include <stdarg.h>
#include <stdlib.h>

#define READER_TIMEOUT_MS 2000

redisReply *bill__command(bill_t *b, char *err, size_t errlen, const char *fmt, ...)
{
    if (b->reader == NULL && (b->reader = rds_sync_new(b->redis_url, READER_TIMEOUT_MS, err, errlen)) == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rds_sync_vcommand(b->reader, err, errlen, fmt, ap);
    va_end(ap);
    return r;
}
