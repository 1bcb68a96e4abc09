/* The frame codec shared by tined and the sandbox: one 24-byte header, then
 * JSON metadata, then raw body bytes. Every function works on blocking fds and
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
    if (h->type < SBX_MSG_READY || h->type > SBX_MSG_HOSTREPLY)
        return TINE_EPROTO;
    if (h->meta_len > h->len)
        return TINE_EPROTO;
    if (h->len > max_frame)
        return TINE_EPROTO;
    return 0;
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

    sbx_frame_hdr_t h;
    memset(&h, 0, sizeof h);
    h.len = (uint32_t)(meta_len + body_len);
    h.type = type;
    h.meta_len = (uint32_t)meta_len;
    h.id = id;
    h.aux = aux;

    struct iovec iov[3];
    int n = 0;
    iov[n++] = (struct iovec){.iov_base = &h, .iov_len = sizeof h};
    if (meta_len > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)meta, .iov_len = meta_len};
    if (body_len > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)body, .iov_len = body_len};

    struct iovec *v = iov;
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

int sbx_frame_read_into(int fd, sbx_frame_hdr_t *h, char **buf, size_t *cap, uint32_t max_frame)
{
    int rc = read_header(fd, h, max_frame);
    if (rc <= 0)
        return rc;
    size_t need = (size_t)h->len + 1;
    /* Grow to fit; give back a buffer far larger than this frame so that one
     * big request does not pin megabytes in a warm sandbox. */
    if (need > *cap || (*cap > SBX_WIRE_KEEP_BUF && need <= *cap / 4)) {
        size_t ncap = need < 4096 ? 4096 : need;
        char *p = realloc(*buf, ncap);
        if (p == NULL)
            return -ENOMEM;
        *buf = p;
        *cap = ncap;
    }
    ssize_t r = read_full(fd, *buf, h->len);
    if (r < 0)
        return (int)r;
    if ((size_t)r < h->len)
        return TINE_EPROTO;
    (*buf)[h->len] = '\0';
    return 0;
}
