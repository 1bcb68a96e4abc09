/* What stands between libuv and h2o's socket on every client connection.
 * h2o 2.2.5's libuv binding misreads two things libuv 1.x does, and both
 * cost connections:
 *
 * - libuv calls a stream's read callback with nread 0 when a read finds
 *   nothing more (EAGAIN) right after one that filled the buffer. h2o's TLS
 *   read callback takes that for an I/O error and drops the connection
 *   (about one 6 MB upload in 40 over loopback; a request whose first TLS
 *   record is exactly 8192 bytes, every time). read_filter swallows those
 *   calls (for plain sockets they carry nothing either).
 *
 * - After a read error other than the end of the stream (a client's reset),
 *   libuv refuses every write on the handle, and h2o ignores the refusal of
 *   uv_write: whoever wrote waits forever for the write's callback. An
 *   answer to a client that reset (intake.c answers a client gone in the
 *   middle of its body) then held the connection, its descriptor and its
 *   place under --max-connections for good. After handing such an error to
 *   h2o, read_filter completes the writes libuv refused, with an error, the
 *   way libuv completes a write that fails later: the writer then closes.
 *
 * libuv lets no one in between a read and its callback, and h2o sets its
 * callback anew whenever it starts reading (uv_read_start), so the filter is
 * put back in front before each I/O event of the connection (io_hook stands
 * in for libuv's own I/O callback of the handle, `io_watcher.cb`, a private
 * field of libuv's stream, stable through 1.x) and after each call of h2o's
 * callback. */
#include "gateway_internal.h"
#include "tine_common.h"

static void read_filter(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void wrap_read(gw_conn_t *c)
{
    if (c->tcp.read_cb != NULL && c->tcp.read_cb != read_filter) {
        c->h2o_read = c->tcp.read_cb;
        c->tcp.read_cb = read_filter;
    }
}

/* True when libuv holds no write of the handle, done or not: a write h2o
 * waits for was then refused, and libuv will never complete it. */
static bool no_write_in_libuv(const uv_tcp_t *t)
{
    return t->write_queue_size == 0 && t->write_queue[0] == (void *)&t->write_queue &&
           t->write_completed_queue[0] == (void *)&t->write_completed_queue;
}

/* After a reset: completes with an error each write libuv refused (the
 * writer may write again while it closes, over TLS: its last records). */
static void fail_refused_writes(gw_conn_t *c)
{
    while (!uv_is_closing((uv_handle_t *)&c->tcp) && c->sock->_cb.write != NULL && no_write_in_libuv(&c->tcp)) {
        h2o_socket_cb cb = c->sock->_cb.write;
        c->sock->_cb.write = NULL;
        cb(c->sock, h2o_socket_error_io);
    }
}

static void read_filter(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn_t *c = container_of((uv_tcp_t *)s, gw_conn_t, tcp);
    if (nread == 0)
        return; /* no data now, not an error */
    c->h2o_read(s, nread, buf);
    /* The handle outlives this call: it is freed in its close callback. */
    if (nread < 0 && nread != UV_EOF && !uv_is_writable(s))
        fail_refused_writes(c);
    wrap_read(c);
}

static void io_hook(uv_loop_t *loop, uv__io_t *w, unsigned int events)
{
    gw_conn_t *c = container_of(w, gw_conn_t, tcp.io_watcher);
    wrap_read(c);
    c->libuv_io(loop, w, events);
}

void gw__conn_guard(gw_conn_t *c)
{
    c->libuv_io = c->tcp.io_watcher.cb;
    c->tcp.io_watcher.cb = io_hook;
}
