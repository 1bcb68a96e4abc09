/* tined's own log lines: one JSON object per line, written with one write()
 * so lines from one process never interleave. */
#include "tine_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static int min_level = -1; /* -1: not read from TINE_LOG_LEVEL yet */
static int log_fd = 2;

int tine_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            min_level = i;
            return 0;
        }
    return -1;
}

void tine_log_set_fd(int fd)
{
    log_fd = fd;
}

static int enabled(tine_log_level_t level)
{
    if (min_level < 0) {
        const char *env = getenv("TINE_LOG_LEVEL");
        if (env == NULL || tine_log_set_level(env) != 0)
            min_level = TINE_LOG_INFO;
    }
    return (int)level >= min_level;
}

/* Writes one line: the time, the level, msg (JSON-quoted) and the kv pairs. */
static void log_line(tine_log_level_t level, const char *const *kv, const char *msg, size_t mlen)
{
    char when[32];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), when);
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[level]);
    tine_json_quote(&b, msg, mlen);
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        tine_buf_append(&b, ",", 1);
        tine_json_quote(&b, kv[i], strlen(kv[i]));
        tine_buf_append(&b, ":", 1);
        tine_json_quote(&b, kv[i + 1], strlen(kv[i + 1]));
    }
    tine_buf_append(&b, "}\n", 2);
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(log_fd, b.data + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    tine_buf_dispose(&b);
}

static void log_write(tine_log_level_t level, const char *const *kv, const char *fmt, va_list ap)
{
    char msg[2048];
    int ml = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t mlen = ml < 0 ? 0 : (size_t)ml >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)ml;
    while (mlen && msg[mlen - 1] == '\n')
        mlen--;
    log_line(level, kv, msg, mlen);
}

void tine_log(tine_log_level_t level, const char *fmt, ...)
{
    if (!enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, NULL, fmt, ap);
    va_end(ap);
}

void tine_log_kv(tine_log_level_t level, const char *const *kv, const char *fmt, ...)
{
    if (!enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, kv, fmt, ap);
    va_end(ap);
}

void tine_log_text(tine_log_level_t level, const char *const *kv, const char *msg, size_t len)
{
    if (enabled(level))
        log_line(level, kv, msg, len);
}
