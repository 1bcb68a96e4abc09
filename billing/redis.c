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

/* The number of records in list KEYS[1]: from the totals in the headers of
 * its newest and oldest chunks (recorder.c's push_script), 1 for each
 * record stored alone by earlier builds. */
static const char count_script[] =
    "local n, total, oldest = 0, nil, nil\n"
    "for i = 0, redis.call('LLEN', KEYS[1]) - 1, 500 do\n"
    "  for _, rec in ipairs(redis.call('LRANGE', KEYS[1], i, i + 499)) do\n"
    "    local c, t = string.match(string.sub(rec, 1, 48), '^#(%d+),(%d+)\\n')\n"
    "    if c then\n"
    "      total = total or tonumber(t)\n"
    "      oldest = tonumber(t) - tonumber(c)\n"
    "    else\n"
    "      n = n + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return n + (total and total - oldest or 0)\n";

int bill_delete_app(bill_t *b, const char *app, size_t *activations, char *err, size_t errlen)
{
    *activations = 0;
    if (reader(b, err, errlen) == NULL)
        return TINE_EREDIS;
    char key[300];
    snprintf(key, sizeof(key), RDS_KEY_ACTS_PREFIX "%s", app);
    redisReply *r = bill__command(b, err, errlen, "EVAL %s 1 %s", count_script, key);
    if (r == NULL)
        return TINE_EREDIS;
    *activations = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (size_t)r->integer : 0;
    freeReplyObject(r);
    size_t ignored;
    return rds_sync_unlink_measured(b->reader, "EXISTS", key, &ignored, err, errlen);
}
