#include "tine_common.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *tine_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case TINE_EINVAL:
        return "invalid input";
    case TINE_ENOTFOUND:
        return "not found";
    case TINE_ECONFLICT:
        return "conflict";
    case TINE_ETOOBIG:
        return "too big";
    case TINE_EREDIS:
        return "redis error";
    case TINE_EPROTO:
        return "protocol error";
    case TINE_ETIMEOUT:
        return "timed out";
    case TINE_ECRASH:
        return "sandbox crashed";
    case TINE_EHANDLER:
        return "function raised an error";
    case TINE_EBUSY:
        return "busy";
    case TINE_EAUTH:
        return "unauthorized";
    case TINE_EQUOTA:
        return "over a quota";
    default:
        if (code < 0 && code > -1000)
            return strerror(-code);
        return "unknown error";
    }
}

void tine_oom(size_t n)
{
    /* tine_log does not abort without memory: it writes a line built on the stack. */
    if (n == 0)
        tine_log(TINE_LOG_ERROR, "out of memory");
    else
        tine_log(TINE_LOG_ERROR, "out of memory allocating %zu bytes", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        tine_oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        tine_oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        tine_oom(n);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void tine_buf_init(tine_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void tine_buf_dispose(tine_buf_t *b)
{
    free(b->data);
    tine_buf_init(b);
}

int tine_buf_try_grow(tine_buf_t *b, size_t extra)
{
    if (extra < b->cap - b->len) /* len + extra + 1 <= cap, without overflow */
        return 0;
    if (extra > SIZE_MAX - b->len - 1)
        return -ENOMEM;
    size_t need = b->len + extra + 1;
    size_t cap = b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2;
    if (cap < 256)
        cap = 256;
    if (cap < need)
        cap = need; /* one big append: no more than it needs */
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void tine_buf_grow(tine_buf_t *b, size_t extra)
{
    if (tine_buf_try_grow(b, extra) != 0)
        tine_oom(extra);
}

/* Appends vprintf-formatted text; 0, -ENOMEM or -EINVAL (vsnprintf
 * failed), b unchanged on failure. */
static int buf_try_vappendf(tine_buf_t *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    int rc = n < 0 ? -EINVAL : tine_buf_try_grow(b, (size_t)n);
    if (rc == 0) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return rc;
}

int tine_buf_try_appendf(tine_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_try_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void tine_buf_appendf(tine_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_try_vappendf(b, fmt, ap);
    va_end(ap);
    if (rc == -ENOMEM)
        tine_oom(0);
}

int tine_write_file(const char *path, const void *data, size_t len, unsigned int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, (mode_t)mode) == 0 ? 0 : -errno;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int tine_secret_file(const char *path, size_t bytes, size_t min_len, char **out, bool *created)
{
    char *data = NULL;
    size_t len = 0;
    *created = false;
    if (tine_read_file(path, &data, &len) == 0) {
        len = strcspn(data, "\r\n");
        while (len && data[len - 1] == ' ')
            len--;
        data[len] = '\0';
        if (len >= min_len) {
            *out = data;
            return 0;
        }
        free(data);
    }
    unsigned char *raw = xmalloc(bytes);
    if (getrandom(raw, bytes, 0) != (ssize_t)bytes) {
        int e = -errno;
        free(raw);
        return e;
    }
    char *secret = xmalloc(2 * bytes + 2);
    for (size_t i = 0; i < bytes; i++)
        snprintf(secret + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, bytes);
    free(raw);
    secret[2 * bytes] = '\n';
    int rc = tine_write_file(path, secret, 2 * bytes + 1, 0600);
    secret[2 * bytes] = '\0';
    if (rc != 0) {
        free(secret);
        return rc;
    }
    *out = secret;
    *created = true;
    return 0;
}

int tine_try_read_file(const char *path, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    tine_buf_t b;
    tine_buf_init(&b);
    /* Room for the whole file and one byte more, so that the second read
     * finds its end; 4 KiB for files that report no size. Past that the
     * buffer doubles. */
    size_t first = fstat(fd, &st) == 0 && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 2
                       ? (size_t)st.st_size + 1
                       : 4096;
    int rc;
    for (;;) {
        if ((rc = tine_buf_try_grow(&b, b.len ? 1 : first)) != 0)
            break;
        ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        b.len += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        tine_buf_dispose(&b);
        return rc;
    }
    b.data[b.len] = '\0';
    *out = b.data;
    if (out_len)
        *out_len = b.len;
    return 0;
}

int tine_read_file(const char *path, char **out, size_t *out_len)
{
    int rc = tine_try_read_file(path, out, out_len);
    if (rc == -ENOMEM)
        tine_oom(0);
    return rc;
}

int tine_mkdirs(const char *path, unsigned int mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            int e = -errno;
            free(p);
            return e;
        }
        *s = '/';
    }
    int rc = mkdir(p, (mode_t)mode) != 0 && errno != EEXIST ? -errno : 0;
    free(p);
    return rc;
}

char *tine_exe_sibling(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    char *p = xasprintf("%s/%s", self, name);
    if (access(p, X_OK) == 0)
        return p;
    free(p);
    return NULL;
}

uint64_t tine_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tine_now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

size_t tine_fmt_u64(char *out, uint64_t v, size_t width)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[24];
    size_t i = sizeof(tmp);
    for (; v >= 100; v /= 100) { /* two digits a division: records format ~12 numbers per call */
        const char *d = pairs + (v % 100) * 2;
        tmp[--i] = d[1];
        tmp[--i] = d[0];
    }
    if (v >= 10) {
        tmp[--i] = pairs[v * 2 + 1];
        tmp[--i] = pairs[v * 2];
    } else {
        tmp[--i] = (char)('0' + v);
    }
    while (sizeof(tmp) - i < width && i > 0)
        tmp[--i] = '0';
    size_t n = sizeof(tmp) - i;
    memcpy(out, tmp + i, n);
    out[n] = '\0';
    return n;
}

size_t tine_bsearch_pos(const void *key, const void *base, size_t n, size_t size,
                        int (*cmp)(const void *key, const void *element), bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(key, (const char *)base + mid * size);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

int tine_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void tine_fmt_rfc3339_ms(uint64_t unix_ms, char out[32])
{
    time_t t = (time_t)(unix_ms / 1000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(unix_ms % 1000u));
}

bool tine_http_token(const char *s, size_t len)
{
    /* 1 for the bytes a token may hold: digits, letters, !#$%&'*+-.^_`|~. */
    static const unsigned char tchar[256] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    if (len == 0)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++)
        if (!tchar[u[i]])
            return false;
    return true;
}

bool tine_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, l; i < len; i += l)
        if ((l = utf8_seq_len(u + i, len - i)) == 0)
            return false;
    return true;
}

json_t *tine_json_text(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t l = utf8_seq_len(u + i, len - i);
        if (l == 0 || (l == 1 && u[i] == 0))
            break;
        i += l;
    }
    if (i == len)
        return json_stringn_nocheck(s, len);
    tine_buf_t b;
    tine_buf_init(&b);
    for (i = 0; i < len;) {
        size_t l = utf8_seq_len(u + i, len - i);
        if (l == 0 || (l == 1 && u[i] == 0)) {
            tine_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            tine_buf_append(&b, s + i, l);
            i += l;
        }
    }
    json_t *j = json_stringn_nocheck(b.data ? b.data : "", b.len);
    tine_buf_dispose(&b);
    return j;
}

int tine_json_try_quote(tine_buf_t *b, const char *s, size_t len, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_escape[0x20] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    const unsigned char *u = (const unsigned char *)s;
    size_t start = b->len;
    /* Room for the common case, nothing to escape: then no append below
     * has to grow the buffer. */
    int rc = len < SIZE_MAX - 2 ? tine_buf_try_grow(b, len + 2) : -ENOMEM;
    if (rc == 0)
        rc = tine_buf_try_append(b, "\"", 1);
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; rc == 0 && i < len;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq_len(u + i, len - i) : 1;
        if (l > 1) {
            i += l;
            continue;
        }
        if (c >= 0x80 && (flags & TINE_JSON_STRICT)) {
            rc = TINE_EINVAL;
            break;
        }
        char esc[6] = {'\\', (char)c}; /* '"' and '\\' as they are after the backslash */
        const char *out = esc;
        size_t el = 2;
        if (c >= 0x80) {
            out = "\xEF\xBF\xBD"; /* not UTF-8: U+FFFD */
            el = 3;
        } else if (c < 0x20 && short_escape[c]) {
            esc[1] = short_escape[c];
        } else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        rc = tine_buf_try_append(b, s + run, i - run);
        if (rc == 0)
            rc = tine_buf_try_append(b, out, el);
        run = ++i;
    }
    if (rc == 0)
        rc = tine_buf_try_append(b, s + run, len - run);
    if (rc == 0)
        rc = tine_buf_try_append(b, "\"", 1);
    if (rc != 0 && b->data != NULL) {
        b->len = start;
        b->data[start] = '\0';
    }
    return rc;
}

void tine_json_quote(tine_buf_t *b, const char *s, size_t len)
{
    if (tine_json_try_quote(b, s, len, 0) != 0)
        tine_oom(len);
}

void tine_buf_append_printable(tine_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if ((c >= 0x20 && c < 0x7f) || c == '\t') {
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq_len(u + i, len - i) : 1;
        if (l > 1 && !(c == 0xC2 && u[i + 1] < 0xA0)) { /* not a C1 control (U+0080..U+009F) */
            i += l;
            continue;
        }
        tine_buf_append(b, s + run, i - run);
        if (c == '\n') {
            tine_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            tine_buf_append(b, "\\r", 2);
        } else if (l == 2) {
            char esc[6] = {'\\', 'u', '0', '0', hex[u[i + 1] >> 4], hex[u[i + 1] & 15]};
            tine_buf_append(b, esc, 6);
            i++;
        } else if (c < 0x80) {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            tine_buf_append(b, esc, 4);
        } else {
            tine_buf_append(b, "\xEF\xBF\xBD", 3); /* not UTF-8: U+FFFD */
        }
        run = ++i;
    }
    tine_buf_append(b, s + run, len - run);
}

void tine_one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int tine_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return TINE_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    tine_one_line(err);
    return TINE_EINVAL;
}

int tine_fail_errno(char *err, size_t errlen, const char *fmt, ...)
{
    int e = errno ? errno : EIO;
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ": %s", strerror(e));
        tine_one_line(err);
    }
    return -e;
}
