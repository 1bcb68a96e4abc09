/* The wire protocol between the invoker (in tined) and a sandbox process,
 * shared by both sides. Every message is one frame: a fixed 24-byte header
 * followed by `len` payload bytes. The payload is `meta_len` bytes of
 * metadata (binary for INVOKE and RESULT, see meta.h; JSON for the others)
 * followed by `len - meta_len` raw body bytes (the body is never
 * JSON-escaped, so binary bodies cross unchanged and without re-encoding).
 * All integers are in host byte order: both ends are on one machine. */
#ifndef TINE_SANDBOX_WIRE_H
#define TINE_SANDBOX_WIRE_H

#include "tine_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBX_WIRE_MAX_FRAME (6u * 1024u * 1024u + 65536u) /* default body limit 6 MiB plus metadata */

enum {
    /* sandbox -> invoker, once after start: meta {"pid":N,"init_us":N} or,
     * when the handler failed to load, SBX_MSG_ERROR instead. */
    SBX_MSG_READY = 1,
    /* invoker -> sandbox: meta is the request as a binary object (meta.h;
     * docs/ARCHITECTURE.md, "Wire protocol"), body is the request body.
     * Several may be in the pipe at once; they run in order. (The spec of
     * a blank sandbox travels as a JSON INVOKE with id 0.) */
    SBX_MSG_INVOKE = 2,
    /* sandbox -> invoker: meta is status and headers (binary, meta.h), body
     * is the response body. */
    SBX_MSG_RESULT = 3,
    /* sandbox -> invoker: meta {"error":"message","trace":"stack"}; body empty. */
    SBX_MSG_ERROR = 4,
    /* sandbox -> invoker, any time during an invocation: meta
     * {"level":"info"|"error"}, body is the log line. */
    SBX_MSG_LOG = 5,
    /* reserved for host calls (tine.kv, tine.http, tine.invoke ...) */
    SBX_MSG_HOSTCALL = 6,
    SBX_MSG_HOSTREPLY = 7,
    /* sandbox -> invoker, before the answer of an invocation that made
     * in-process calls in its co-location group (id: that invocation's):
     * meta is a JSON array of their records, {"fn","id","parent","start_ms",
     * "duration_ns","timeout_ms","code","status","error","logs":[{"t",
     * "level","msg"}],"dropped"}; body empty. */
    SBX_MSG_NESTED = 8,
};

/* Header flags. */
enum {
    /* ERROR: the sandbox exits right after this frame (it was stopped by its
     * system call filter); it must not be given another invocation. */
    SBX_FRAME_EXITING = 0x01,
};

typedef struct {
    uint32_t len;      /* payload bytes after this header */
    uint8_t type;      /* SBX_MSG_* */
    uint8_t flags;     /* SBX_FRAME_* bits */
    uint16_t reserved; /* 0 */
    uint32_t meta_len; /* leading payload bytes that are JSON metadata */
    uint32_t aux;      /* RESULT and ERROR: CPU time the invocation used, in
                          microseconds (saturating); 0 in other frames */
    uint64_t id;       /* invocation id the frame belongs to (0 for READY) */
} sbx_frame_hdr_t;

_Static_assert(sizeof(sbx_frame_hdr_t) == 24, "frame header is 24 bytes");

/* Checks a received header: known type, meta_len <= len, len <= max_frame.
 * Returns 0 or TINE_EPROTO. */
int sbx_frame_check(const sbx_frame_hdr_t *h, uint32_t max_frame);

/* The header of a frame (the caller checked meta_len + body_len fits 32 bits). */
sbx_frame_hdr_t sbx_frame_header(uint8_t type, uint64_t id, uint32_t aux, size_t meta_len, size_t body_len);

/* Writes one whole frame to a blocking fd with writev (retrying on EINTR and
 * short writes). Returns 0 or -errno. */
int sbx_frame_write(int fd, uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                    size_t body_len);

/* sbx_frame_write with the header's `aux` word set. */
int sbx_frame_write_aux(int fd, uint8_t type, uint64_t id, uint32_t aux, const void *meta, size_t meta_len,
                        const void *body, size_t body_len);

/* Writes all of v[0..n) to a blocking fd (retrying EINTR and short writes;
 * v is consumed). Returns 0 or -errno. */
struct iovec;
int sbx_writev_all(int fd, struct iovec *v, int n);

/* Reads one whole frame from a blocking fd. On success returns 0, fills *h and
 * stores a malloc'd payload of h->len bytes (+1 NUL byte) in *payload. Returns
 * 0 with h->type == 0 at clean EOF, TINE_EPROTO for a bad header, or -errno. */
int sbx_frame_read(int fd, sbx_frame_hdr_t *h, char **payload, uint32_t max_frame);

/* A buffered reader of one blocking fd: reads as many bytes as the fd
 * has, so frames sent together (pipelined INVOKEs) cost one read. The
 * bytes read and not handed out yet are buf.data[start..buf.len). Its
 * buffer fails softly: out of memory is -ENOMEM, never an abort. */
typedef struct {
    int fd;
    tine_buf_t buf;
    size_t start;
} sbx_reader_t;

#define SBX_READER_MIN_BUF (64u * 1024u)
#define SBX_WIRE_KEEP_BUF (256u * 1024u) /* a larger buffer is given back once empty */

void sbx_reader_init(sbx_reader_t *r, int fd);
void sbx_reader_free(sbx_reader_t *r);

/* The next whole frame. *payload (h->len bytes, not NUL-terminated) stays
 * valid until the next call on r. Returns 0 (h->type == 0 at clean EOF),
 * TINE_EPROTO for a bad header or EOF inside a frame, or -errno (-ENOMEM
 * when the frame does not fit in memory). */
int sbx_reader_next(sbx_reader_t *r, sbx_frame_hdr_t *h, const char **payload, uint32_t max_frame);

/* True when a whole frame is buffered already (the next call will not block). */
bool sbx_reader_buffered(const sbx_reader_t *r);

/* Takes the first frame of `type` out of the stream, reading as needed;
 * frames before it stay buffered for sbx_reader_next. Its payload replaces
 * the content of the caller's reusable `payload` buffer (given back first
 * when it is four times larger than needed and above SBX_WIRE_KEEP_BUF).
 * Invalidates the payload of the last sbx_reader_next. Returns 0,
 * TINE_EPROTO (also at EOF), -ENOMEM (the frame stays in the stream), or
 * -errno. */
int sbx_reader_take(sbx_reader_t *r, uint8_t type, sbx_frame_hdr_t *h, tine_buf_t *payload, uint32_t max_frame);

#endif
