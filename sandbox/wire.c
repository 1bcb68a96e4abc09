/* The frame codec shared by tined and the sandbox: one 24-byte header, then
 * metadata, then raw body bytes. Every function works on blocking fds and
 * retries EINTR and short transfers itself, so callers see whole frames. */
#include "wire.h"

#include "tine_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int sbx_frame_check(const sbx_frame_hdr_t *h, uint32_t max_frame)
{
    if (h->type < SBX_MSG_READY || h->type > SBX_MSG_NESTED)
        return TINE_EPROTO;
    if (h->meta_len > h->len)
        return TINE_EPROTO;
    if (h->len > max_frame)
        return TINE_EPROTO;
    return 0;
}

sbx_frame_hdr_t sbx_frame_header(uint8_t type, uint64_t id, uint32_t aux, size_t meta_len, size_t body_len)
{
    sbx_frame_hdr_t h;
    memset(&h, 0, sizeof h);
    h.len = (uint32_t)(meta_len + body_len);
    h.type = type;
    h.meta_len = (uint32_t)meta_len;
    h.aux = aux;
    h.id = id;
    return h;
}

int sbx_frame_write(int fd, uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                    size_t body_len)
{
    return sbx_frame_write_aux(fd, type, id, 0, meta, meta_len, body, body_len);
}

int sbx_frame_write_aux(int fd, uint8_t type, uint64_t id, uint32_t aux, const void *meta, size_t meta_len,
                        const void *body, size_t body_len)
{
    if (meta_len > UINT32_MAX || body_len > UINT32_MAX - meta_len)
        return -EMSGSIZE;

    sbx_frame_hdr_t h = sbx_frame_header(type, id, aux, meta_len, body_len);
    struct iovec iov[3];
    int n = 0;
    iov[n++] = (struct iovec){.iov_base = &h, .iov_len = sizeof h};
    if (meta_len > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)meta, .iov_len = meta_len};
    if (body_len > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)body, .iov_len = body_len};

    return sbx_writev_all(fd, iov, n);
}

int sbx_writev_all(int fd, struct iovec *v, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, v, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* Short write: drop the iovecs written completely, trim the next one. */
        size_t done = (size_t)w;
        while (n > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

/* Reads exactly n bytes. Returns n, the (smaller) count read before EOF, or
 * -errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Reads and checks the header. Returns 1 with *h filled, 0 at clean EOF, or an
 * error code (EOF inside the header is TINE_EPROTO). */
static int read_header(int fd, sbx_frame_hdr_t *h, uint32_t max_frame)
{
    ssize_t r = read_full(fd, h, sizeof *h);
    if (r < 0)
        return (int)r;
    if (r == 0) {
        memset(h, 0, sizeof *h);
        return 0;
    }
    if ((size_t)r < sizeof *h)
        return TINE_EPROTO;
    int rc = sbx_frame_check(h, max_frame);
    return rc < 0 ? rc : 1;
}

int sbx_frame_read(int fd, sbx_frame_hdr_t *h, char **payload, uint32_t max_frame)
{
    *payload = NULL;
    int rc = read_header(fd, h, max_frame);
    if (rc <= 0)
        return rc;
    char *p = malloc((size_t)h->len + 1);
    if (p == NULL)
        return -ENOMEM;
    ssize_t r = read_full(fd, p, h->len);
    if (r < 0 || (size_t)r < h->len) {
        free(p);
        return r < 0 ? (int)r : TINE_EPROTO;
    }
    p[h->len] = '\0';
    *payload = p;
    return 0;
}

/* ------------------------------------------------------ buffered reader */

void sbx_reader_init(sbx_reader_t *r, int fd)
{
    r->fd = fd;
    tine_buf_init(&r->buf);
    r->start = 0;
}

void sbx_reader_free(sbx_reader_t *r)
{
    tine_buf_dispose(&r->buf);
    r->start = 0;
}

/* Makes at least `need` bytes available from r->start, reading as much as
 * the fd has. Returns 1, 0 at EOF before that (nothing buffered then:
 * clean), or -errno. Moves the buffered bytes: pointers into it are stale
 * after. */
static int reader_fill(sbx_reader_t *r, size_t need)
{
    tine_buf_t *b = &r->buf;
    if (b->len - r->start >= need)
        return 1;
    if (r->start == b->len) /* empty: start over at the front, the pages already touched */
        r->start = b->len = 0;
    if (b->cap - r->start < need + 1 && r->start > 0) {
        memmove(b->data, b->data + r->start, b->len - r->start);
        b->len -= r->start;
        r->start = 0;
    }
    if (b->cap < r->start + need + 1) {
        size_t extra = r->start + need - b->len;
        if (b->cap == 0 && extra < SBX_READER_MIN_BUF - 1)
            extra = SBX_READER_MIN_BUF - 1; /* room for what the fd has, not just this frame */
        int rc = tine_buf_try_grow(b, extra);
        if (rc != 0)
            return rc;
    }
    while (b->len - r->start < need) {
        ssize_t n = read(r->fd, b->data + b->len, b->cap - 1 - b->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return 0;
        b->len += (size_t)n;
    }
    return 1;
}

/* Checks the header at r->start + rel and makes its whole frame available.
 * Returns 1, 0 at clean EOF before the header, TINE_EPROTO, or -errno. */
static int reader_frame_at(sbx_reader_t *r, size_t rel, sbx_frame_hdr_t *h, uint32_t max_frame)
{
    int rc = reader_fill(r, rel + sizeof *h);
    if (rc <= 0)
        return rc < 0 ? rc : (r->buf.len - r->start == rel ? 0 : TINE_EPROTO);
    memcpy(h, r->buf.data + r->start + rel, sizeof *h);
    if (sbx_frame_check(h, max_frame) != 0)
        return TINE_EPROTO;
    rc = reader_fill(r, rel + sizeof *h + h->len);
    return rc < 0 ? rc : rc == 0 ? TINE_EPROTO : 1;
}

int sbx_reader_next(sbx_reader_t *r, sbx_frame_hdr_t *h, const char **payload, uint32_t max_frame)
{
    *payload = NULL;
    if (r->start == r->buf.len) {
        /* One big frame must not pin its memory in a warm sandbox. */
        tine_buf_reset(&r->buf, SBX_WIRE_KEEP_BUF);
        r->start = 0;
    }
    int rc = reader_frame_at(r, 0, h, max_frame);
    if (rc <= 0) {
        if (rc == 0)
            memset(h, 0, sizeof *h);
        return rc;
    }
    char *p = r->buf.data + r->start + sizeof *h;
    r->start += sizeof *h + h->len;
    *payload = p;
    return 0;
}

bool sbx_reader_buffered(const sbx_reader_t *r)
{
    if (r->buf.len - r->start < sizeof(sbx_frame_hdr_t))
        return false;
    sbx_frame_hdr_t h;
    memcpy(&h, r->buf.data + r->start, sizeof h);
    return r->buf.len - r->start >= sizeof h + h.len;
}

int sbx_reader_take(sbx_reader_t *r, uint8_t type, sbx_frame_hdr_t *h, tine_buf_t *payload, uint32_t max_frame)
{
    size_t rel = 0;
    for (;;) {
        int rc = reader_frame_at(r, rel, h, max_frame);
        if (rc <= 0)
            return rc == 0 ? TINE_EPROTO : rc;
        size_t whole = sizeof *h + h->len;
        if (h->type != type) {
            rel += whole;
            continue;
        }
        if (payload->cap > SBX_WIRE_KEEP_BUF && (size_t)h->len + 1 <= payload->cap / 4)
            tine_buf_dispose(payload); /* a big payload before must not pin its memory */
        payload->len = 0;
        char *at = r->buf.data + r->start + rel;
        if (tine_buf_try_append(payload, at + sizeof *h, h->len) != 0)
            return -ENOMEM;
        memmove(at, at + whole, r->buf.len - (r->start + rel + whole));
        r->buf.len -= whole;
        return 0;
    }
}
