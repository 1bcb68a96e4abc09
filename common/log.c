/* tined's own log lines: one JSON object per line, written with one write()
 * so lines from one process never interleave. */
#include "tine_common.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* Whether lines of `level` are written; reads TINE_LOG_LEVEL (default info)
 * the first time. */
static int enabled(tine_log_level_t level)
{
    if (min_level < 0) {
        const char *env = getenv("TINE_LOG_LEVEL");
        if (env == NULL || tine_log_set_level(env) != 0)
            min_level = TINE_LOG_INFO;
    }
    return (int)level >= min_level;
}

/* Writes the whole of line[0..len) to log_fd: one write() unless it is cut
 * short (a full pipe), so lines of one process never interleave. */
static void write_all(const char *line, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(log_fd, line + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

/* Whether msg needs no JSON escaping: printable ASCII but '"' and '\\'. */
static bool plain_ascii(const char *msg, size_t mlen)
{
    for (size_t i = 0; i < mlen; i++)
        if (msg[i] < 0x20 || msg[i] > 0x7e || msg[i] == '"' || msg[i] == '\\')
            return false;
    return true;
}

/* The line of log_line when memory ran out (tine_oom logs through here):
 * built on the stack, with msg when it needs no escaping and without kv. */
static void log_line_no_memory(tine_log_level_t level, const char *when, const char *msg, size_t mlen)
{
    char line[2304];
    if (mlen > 2048 || !plain_ascii(msg, mlen)) {
        msg = "out of memory: a log line was lost";
        mlen = strlen(msg);
    }
    int n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%.*s\"}\n", when, level_names[level],
                     (int)mlen, msg);
    if (n > 0 && (size_t)n < sizeof line)
        write_all(line, (size_t)n);
}

/* Writes one line: the time, the level, msg (JSON-quoted) and the kv pairs.
 * Never aborts: without memory for it, log_line_no_memory writes it. */
static void log_line(tine_log_level_t level, const char *const *kv, const char *msg, size_t mlen)
{
    char when[32];
    tine_fmt_rfc3339_ms(tine_now_unix_ms(), when);
    tine_buf_t b;
    tine_buf_init(&b);
    int rc = tine_buf_try_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[level]);
    if (rc == 0)
        rc = tine_json_try_quote(&b, msg, mlen, 0);
    for (size_t i = 0; rc == 0 && kv && kv[i] && kv[i + 1]; i += 2) {
        rc = tine_buf_try_append(&b, ",", 1);
        if (rc == 0)
            rc = tine_json_try_quote(&b, kv[i], strlen(kv[i]), 0);
        if (rc == 0)
            rc = tine_buf_try_append(&b, ":", 1);
        if (rc == 0)
            rc = tine_json_try_quote(&b, kv[i + 1], strlen(kv[i + 1]), 0);
    }
    if (rc == 0)
        rc = tine_buf_try_append(&b, "}\n", 2);
    if (rc == 0)
        write_all(b.data, b.len);
    else
        log_line_no_memory(level, when, msg, mlen);
    tine_buf_dispose(&b);
}

/* Formats the message (at most 2 KiB, trailing newlines dropped) and writes
 * its line. */
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
