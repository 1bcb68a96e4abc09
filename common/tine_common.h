/* Shared error codes, allocation helpers and small utilities used by every
 * tine module. Kept deliberately small: anything module-specific lives in
 * that module. */
#ifndef TINE_COMMON_H
#define TINE_COMMON_H

#include <errno.h>
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
    TINE_EQUOTA = -1012,    /* over a quota of its namespace */
};

/* Returns a static description of an error code (TINE_E* or negative errno). */
const char *tine_strerror(int code);

/* The out-of-memory policy is in the name: the x* functions and the plain
 * tine_buf_*, tine_json_quote and tine_read_file abort with a message when
 * memory runs out (daemon code); the try_* variants return -ENOMEM and leave
 * their arguments as they were (parsers fed by users, the sandbox). Each
 * pair is one implementation: the aborting one calls the try_* one. */

/* Allocation that aborts with a message on failure (daemon code only). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Formats into a fresh heap string; aborts on out-of-memory. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs "out of memory allocating N bytes" (tine_log, level error) and
 * aborts: what the x* functions do when an allocation fails. */
_Noreturn void tine_oom(size_t n);

/* A growable byte buffer. Caller-allocated; tine_buf_dispose frees the data.
 * Once data is allocated a NUL byte follows the len bytes of data (the
 * appenders keep it), so text in it can be used as a C string. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} tine_buf_t;

void tine_buf_init(tine_buf_t *b);
void tine_buf_dispose(tine_buf_t *b);

/* Empties b (len 0), keeping its memory unless its capacity is above
 * `keep`, when the memory is given back (a buffer reused per call must not
 * pin what one big call made it grow to). Inline: it runs per call. */
static inline void tine_buf_reset(tine_buf_t *b, size_t keep)
{
    if (b->cap > keep) {
        tine_buf_dispose(b);
    } else {
        b->len = 0;
        if (b->data != NULL)
            b->data[0] = '\0';
    }
}

/* Makes room for `extra` more bytes (and the NUL kept after the data): at
 * least doubles the capacity, or grows it to what is needed when that is
 * more. Returns 0, or -ENOMEM (also when the size does not fit a size_t)
 * with b unchanged. */
int tine_buf_try_grow(tine_buf_t *b, size_t extra);

/* tine_buf_try_grow that aborts on out-of-memory. */
void tine_buf_grow(tine_buf_t *b, size_t extra);

/* Appends the n bytes at p (the data stays NUL-terminated). Returns 0, or
 * -ENOMEM with b unchanged. Inline: it runs dozens of times per invocation
 * (wire metadata, JSON bodies, activation records). len + n + 1 cannot
 * overflow: len and n are sizes of objects in memory, each at most
 * PTRDIFF_MAX (a computed size that may be larger goes to
 * tine_buf_try_grow first, which checks). */
static inline int tine_buf_try_append(tine_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap && tine_buf_try_grow(b, n) != 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* tine_buf_try_append that aborts on out-of-memory. */
static inline void tine_buf_append(tine_buf_t *b, const void *p, size_t n)
{
    if (tine_buf_try_append(b, p, n) != 0)
        tine_oom(n);
}

/* Appends printf-formatted text. Returns 0, -ENOMEM, or -EINVAL when the
 * format cannot be formatted (vsnprintf failed); b is unchanged on failure. */
int tine_buf_try_appendf(tine_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* tine_buf_try_appendf that aborts on out-of-memory (and appends nothing
 * when the format cannot be formatted). */
void tine_buf_appendf(tine_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads the whole file at `path` into a fresh heap buffer, NUL-terminated
 * (*out; *out_len bytes before the NUL when out_len is set). Files that
 * report no size (/proc, cgroupfs, pipes) are read to their end. The
 * buffer is sized from fstat, with no large stack buffer (a sandbox keeps
 * every page it touches). Returns 0, -ENOMEM, or -errno of open or read
 * (-EISDIR for a directory); *out is left alone on failure. Never aborts. */
int tine_try_read_file(const char *path, char **out, size_t *out_len);

/* tine_try_read_file that aborts on out-of-memory. */
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

/* tine_fail for a failed system call: the message, then ": " and
 * strerror(errno), into err; returns -errno (-EIO when errno is 0). */
int tine_fail_errno(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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

/* The value of the hex digit c (either case), or -1 when it is not one. */
int tine_hex_digit(int c);

/* Binary search of `key` in the n elements of `base` (each `size` bytes,
 * sorted as cmp orders them; cmp(key, element) as for bsearch): the index
 * of the one equal to key (*found true), or where key would be inserted to
 * keep the order (*found false). */
size_t tine_bsearch_pos(const void *key, const void *base, size_t n, size_t size,
                        int (*cmp)(const void *key, const void *element), bool *found);

/* unix_ms as an RFC 3339 UTC time with milliseconds,
 * "2026-01-02T03:04:05.678Z", NUL-terminated (out: 32 bytes). */
void tine_fmt_rfc3339_ms(uint64_t unix_ms, char out[32]);

/* True when s[0..len) is valid UTF-8 (NUL bytes included). */
bool tine_utf8_valid(const char *s, size_t len);

/* True when s[0..len) is an HTTP token (RFC 9110 tchar, at least one): what
 * a header name may be. */
bool tine_http_token(const char *s, size_t len);

/* JSON quoting, the one escaper of the tree (logs, billing records, the
 * sandbox's tine.json.encode, its error frames and host calls): appends
 * `len` bytes of `s` to b as a quoted JSON string (RFC 8259):
 *   - '"' and '\\' are escaped as \" and \\;
 *   - the control characters with a short escape as \b \f \n \r \t;
 *   - every other byte below 0x20 (NUL included) as \u00hh, lower-case hex;
 *   - DEL (0x7f) and every valid UTF-8 sequence are copied as they are
 *     (U+2028 and U+2029 included: the output is JSON, not JavaScript);
 *   - each byte that does not start a valid UTF-8 sequence (a stray
 *     continuation byte, an overlong form, a surrogate, a cut sequence,
 *     anything above U+10FFFF) becomes U+FFFD, one per byte; or, with
 *     TINE_JSON_STRICT, makes the call fail.
 * (jansson's json_dumps, which writes the JSON trees of the rest of tined,
 * differs only in writing the \u00hh hex digits in upper case.)
 * Returns 0, TINE_EINVAL (TINE_JSON_STRICT and s is not valid UTF-8) or
 * -ENOMEM; on failure b is as it was before the call. */
#define TINE_JSON_STRICT 1u
int tine_json_try_quote(tine_buf_t *b, const char *s, size_t len, unsigned flags);

/* tine_json_try_quote without flags that aborts on out-of-memory. */
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

/* The `kv` of tine_log_kv in place: TINE_LOG_KV("app", app, "function", fn). */
#define TINE_LOG_KV(...) ((const char *const[]){__VA_ARGS__, NULL})

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
