/* billing's synchronous Redis connection for reports (redis/: opened on
 * first use, reopened when it broke). The asynchronous ones are the
 * recorder's (recorder.c) and the log subscription's (follow.c). */
#include "billing_internal.h"

#include <stdarg.h>
#include <stdlib.h>

#define READER_TIMEOUT_MS 2000

/* The synchronous connection, opened on first use; NULL with a message. */
static rds_sync_t *reader(bill_t *b, char *err, size_t errlen)
{
    if (b->reader == NULL)
        b->reader = rds_sync_new(b->redis_url, READER_TIMEOUT_MS, err, errlen);
    return b->reader;
}

redisReply *bill__command(bill_t *b, char *err, size_t errlen, const char *fmt, ...)
{
    if (reader(b, err, errlen) == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rds_sync_vcommand(b->reader, err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

int bill_delete_app(bill_t *b, const char *app, size_t *activations, char *err, size_t errlen)
{
    *activations = 0;
    if (reader(b, err, errlen) == NULL)
        return TINE_EREDIS;
    char key[300];
    snprintf(key, sizeof(key), RDS_KEY_ACTS_PREFIX "%s", app);
    return rds_sync_unlink_measured(b->reader, "LLEN", key, activations, err, errlen);
}
