/* Shared error codes, allocation helpers and small utilities used by every
 * tine module. Kept deliberately small: anything module-specific lives in
 * that module. */
#ifndef TINE_COMMON_H
#define TINE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Error codes: functions return 0 on success, a negative errno, or one of
 * these (all below -1000 so they never collide with errno values). */
enum {
    TINE_EINVAL = -1001,    /* input rejected: see the error message */
    TINE_ENOTFOUND = -1002, /* no such app, version, function or key */
    TINE_ECONFLICT = -1003, /* route or name conflict */
    TINE_ETOOBIG = -1004,   /* size limit exceeded */
    TINE_EREDIS = -1005,    /* Redis unreachable or replied with an error */
    TINE_EPROTO = -1006,    /* malformed wire frame */
    TINE_ETIMEOUT = -1007,  /* deadline passed */
    TINE_ECRASH = -1008,    /* sandbox died */
    TINE_EHANDLER = -1009,  /* the function raised an error */
    TINE_EBUSY = -1010,     /* no capacity */
    TINE_EAUTH = -1011,     /* missing or wrong credentials */
};

/* Returns a static description of an error code (TINE_E* or negative errno). */
const char *tine_strerror(int code);

/* Allocation that aborts with a message on failure (daemon code only). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Formats into a fresh heap string; aborts on out-of-memory. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. Caller-allocated; tine_buf_dispose frees the data. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} tine_buf_t;

void tine_buf_init(tine_buf_t *b);
void tine_buf_dispose(tine_buf_t *b);

/* Makes room for `extra` more bytes (and the NUL kept after the data). */
void tine_buf_grow(tine_buf_t *b, size_t extra);

/* Appends n bytes (the data stays NUL-terminated). Inline: it runs dozens of
 * times per invocation (wire metadata, activation records). */
static inline void tine_buf_append(tine_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap)
        tine_buf_grow(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}
void tine_buf_appendf(tine_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a whole file into a fresh NUL-terminated buffer; returns 0 or -errno. */
int tine_read_file(const char *path, char **out, size_t *out_len);

/* Writes a whole file: created or truncated, and given `mode` even when it
 * existed (a symlink at `path` is refused). Returns 0 or -errno. */
int tine_write_file(const char *path, const void *data, size_t len, unsigned int mode);

/* The secret kept in the file `path`: its first line when it holds at least
 * min_len characters; otherwise `bytes` random bytes in lower-case hex,
 * written there (mode 0600) with a newline, and *created set. Stores a fresh
 * string in *out. Returns 0 or -errno (no randomness, the file unwritable). */
int tine_secret_file(const char *path, size_t bytes, size_t min_len, char **out, bool *created);

/* Creates `path` and every missing parent directory (like mkdir -p) with
 * `mode`. Returns 0 or -errno. */
int tine_mkdirs(const char *path, unsigned int mode);

/* The path of the program `name` in the directory of the running
 * executable (/proc/self/exe), as a fresh heap string, or NULL when it is
 * not there or not executable. */
char *tine_exe_sibling(const char *name);

/* Replaces every control character of the NUL-terminated `s` with '?', so
 * that a message quoting user input stays on one line. */
void tine_one_line(char *s);

/* Formats an error message into err (when err and errlen are set), keeps it
 * on one line (tine_one_line), and returns TINE_EINVAL. */
int tine_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Monotonic clock in nanoseconds. */
uint64_t tine_now_ns(void);

/* Wall clock (CLOCK_REALTIME) in milliseconds since the Unix epoch. */
uint64_t tine_now_unix_ms(void);

/* A JSON string of `len` bytes of `s`, with every byte that is not part of
 * valid UTF-8 replaced by U+FFFD (log lines and other untrusted text). */
struct json_t;
struct json_t *tine_json_text(const char *s, size_t len);

/* Writes v in decimal, zero-padded to at least `width` digits (at most 24),
 * NUL-terminated, into out (25 bytes suffice); returns the digits written.
 * For hot paths, where printf costs more than the rest of the work. */
size_t tine_fmt_u64(char *out, uint64_t v, size_t width);

/* unix_ms as an RFC 3339 UTC time with milliseconds,
 * "2026-01-02T03:04:05.678Z", NUL-terminated (out: 32 bytes). */
void tine_fmt_rfc3339_ms(uint64_t unix_ms, char out[32]);

/* True when s[0..len) is valid UTF-8 (NUL bytes included). */
bool tine_utf8_valid(const char *s, size_t len);

/* True when s[0..len) is an HTTP token (RFC 9110 tchar, at least one): what
 * a header name may be. */
bool tine_http_token(const char *s, size_t len);

/* Appends `len` bytes of `s` to b as a quoted JSON string; bytes that are
 * not valid UTF-8 become U+FFFD, control characters are escaped. */
void tine_json_quote(tine_buf_t *b, const char *s, size_t len);

/* Appends `len` bytes of `s` to b as text safe to show on a terminal and on
 * one line: LF and CR become the two characters \n and \r, other control
 * characters (C0 but TAB, DEL, and C1 U+0080..U+009F) \xHH or \u00HH, and
 * bytes that are not valid UTF-8 U+FFFD. For text functions write (log
 * lines, error messages) before it reaches tined's log, a record or an API. */
void tine_buf_append_printable(tine_buf_t *b, const char *s, size_t len);

/* ------------------------------------------------------------ log.c */

/* tined's own log: one JSON object per line on stderr,
 * {"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"..."}, plus any
 * fields given to tine_log_kv. Lines below the level set with
 * tine_log_set_level (default info; TINE_LOG_LEVEL) are skipped. */
typedef enum { TINE_LOG_DEBUG = 0, TINE_LOG_INFO, TINE_LOG_WARN, TINE_LOG_ERROR } tine_log_level_t;

void tine_log(tine_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like tine_log with extra string fields: `kv` is NULL-terminated pairs of
 * key and value ({"app","hello","function","hi",NULL}). */
void tine_log_kv(tine_log_level_t level, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like tine_log_kv with a message of `len` bytes taken as it is (no format,
 * no length limit; JSON quoting escapes what needs it). */
void tine_log_text(tine_log_level_t level, const char *const *kv, const char *msg, size_t len);

/* Sets the lowest level written; returns 0, or -1 for an unknown name
 * ("debug", "info", "warn", "error"). */
int tine_log_set_level(const char *name);

/* Writes the lines to `fd` instead of stderr (tests). */
void tine_log_set_fd(int fd);

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#endif
