/* What happens to a request before gw__serve sees it, on the path h2o
 * answers its own errors from (the host's fallback path), and the node's
 * budget of request body bytes.
 *
 * h2o reads a request's whole body before it calls any handler, up to its
 * max_request_entity_size, which the gateway sets to GW_INLINE_BODY. So:
 *
 * - An HTTP/1 request whose Content-Length is over GW_INLINE_BODY reaches
 *   this filter as h2o's own 413, with its head parsed and its body not
 *   read. Its head is checked first (admin token, route, the function's
 *   max_body, the node's budget): a refused body is read and dropped before
 *   the answer (so the client, still sending, reads it; the connection stays
 *   open), or not read at all when the client waits for 100 Continue; an
 *   admitted one is read by tine into the connection's input buffer, counted
 *   against the budget, and served as if h2o had read it.
 * - Every other answer h2o makes itself (a broken Content-Length or chunked
 *   body, an unknown Expect, a bad HTTP/2 header, a chunked body over
 *   GW_INLINE_BODY) goes out as tine's JSON error.
 *
 * h2o 2.2.5 has no hook between a request's head and its body: the takeover
 * relies on what its HTTP/1 parser leaves behind when it refuses a body by
 * its Content-Length: the head at the start of the socket's input buffer
 * (consumed only once the response is sent), header names lower-cased in
 * place, reading and the request timeout stopped, the request's strings
 * copied to its pool, and the connection's `_reqsize` at the head's end. */
#include "gateway_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A refused body larger than this is not read to be dropped: the answer goes
 * out at once and the connection closes. */
#define DRAIN_MAX (32u * 1024u * 1024u)

/* A body must arrive at this many bytes a second at least (on top of h2o's
 * request timeout), so that a client trickling bytes cannot hold its share
 * of the budget for long. */
#define MIN_BODY_RATE (64u * 1024u)

typedef struct intake intake_t;

/* The ostream the filter puts in front of every answer on the fallback path. */
typedef struct {
    h2o_ostream_t super;
    gw_server_t *gw;
    intake_t *in; /* a body tine reads or drops; NULL otherwise */
    bool ours;    /* the answer passing now is tine's own */
} gw_ostream_t;

typedef struct {
    h2o_filter_t super;
    gw_server_t *gw;
} gw_filter_t;

typedef struct {
    uv_timer_t timer;
    intake_t *in; /* NULL once the request went away */
} intake_timer_t;

typedef enum { INTAKE_READ, INTAKE_DRAIN, INTAKE_DONE } intake_mode_t;

/* A request body tine reads from the socket itself (from the request's pool). */
struct intake {
    int fd;              /* the socket's descriptor: our entry in `by_fd` until answered; -1 after */
    gw_ostream_t *os;
    h2o_req_t *req;
    h2o_socket_t *sock;
    intake_mode_t mode;
    size_t head_len;      /* the head at the start of sock->input */
    size_t body_len;      /* its Content-Length */
    size_t body_in_input; /* READ: body bytes between the head and what follows */
    size_t drained;       /* DRAIN: body bytes read and dropped */
    bool expect_continue; /* the client waits for 100 Continue before its body */
    bool keep_alive;      /* the connection may go on after the answer */
    bool started;
    bool connection_set;  /* the answer's Connection and input buffer are settled */
    uint64_t deadline_ms; /* loop time by which the whole body must have arrived */
    int status;           /* DRAIN: the refusal sent once the body is dropped */
    const char *message;
    intake_timer_t *timer;
};

/* The intake of each socket tine reads itself, by descriptor: h2o's socket
 * callbacks carry only the socket, and a connection has one request at a
 * time. */
static intake_t **by_fd;
static size_t by_fd_len;

/* Makes `in` the intake of socket fd, growing by_fd (doubling, from 64) to
 * hold it. */
static void by_fd_set(int fd, intake_t *in)
{
    if ((size_t)fd >= by_fd_len) {
        size_t n = by_fd_len ? by_fd_len : 64;
        while (n <= (size_t)fd)
            n *= 2;
        by_fd = xrealloc(by_fd, n * sizeof(*by_fd));
        memset(by_fd + by_fd_len, 0, (n - by_fd_len) * sizeof(*by_fd));
        by_fd_len = n;
    }
    by_fd[fd] = in;
}

bool gw__read_head(const char *method, size_t method_len, const char *b, size_t len, gw_head_t *h)
{
    const char *end = b + len;
    h->head_len = 0;
    h->content_length = SIZE_MAX;
    h->chunked = h->expect_continue = false;
    /* picohttpparser skips one empty line before the request line. */
    const char *p = b;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    else if (end - p >= 1 && p[0] == '\n')
        p++;
    if ((size_t)(end - p) <= method_len || memcmp(p, method, method_len) != 0 || p[method_len] != ' ')
        return false;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    while (eol != NULL) {
        const char *line = eol + 1;
        if (line < end && line[0] == '\n') {
            h->head_len = (size_t)(line + 1 - b);
            return true;
        }
        if (end - line >= 2 && line[0] == '\r' && line[1] == '\n') {
            h->head_len = (size_t)(line + 2 - b);
            return true;
        }
        eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            return false;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL)
            continue;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        /* Names are lower case: h2o lower-cased them in place. */
        if (h2o_memis(line, (size_t)(colon - line), H2O_STRLIT("content-length"))) {
            if (h->content_length == SIZE_MAX)
                h->content_length = h2o_strtosize(v, (size_t)(ve - v));
        } else if (h2o_memis(line, (size_t)(colon - line), H2O_STRLIT("transfer-encoding"))) {
            h->chunked = true;
        } else if (h2o_memis(line, (size_t)(colon - line), H2O_STRLIT("expect"))) {
            h->expect_continue = h2o_lcstris(v, (size_t)(ve - v), H2O_STRLIT("100-continue"));
        }
    }
    return false;
}

/* Whether the client asked to keep the connection, as h2o decides it. */
static bool wants_keep_alive(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1);
    if (i >= 0)
        return h2o_contains_token(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                                  H2O_STRLIT("keep-alive"), ',');
    return req->version >= 0x101;
}

typedef struct {
    gw_server_t *gw;
    size_t n;
} hold_t;

/* A request holding body bytes is freed: gives them back to the node's
 * budget. */
static void on_hold_dispose(void *p)
{
    hold_t *h = p;
    h->gw->body_held -= h->n;
}

bool gw__body_hold(gw_server_t *gw, h2o_req_t *req, size_t n)
{
    if (n > gw->body_budget - gw->body_held)
        return false;
    hold_t *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), on_hold_dispose);
    h->gw = gw;
    h->n = n;
    gw->body_held += n;
    return true;
}

int gw__check_body(gw_server_t *gw, h2o_req_t *req, const reg_function_t *f, size_t n, bool count, char *msg,
                   size_t msglen)
{
    if (n > f->max_body) {
        snprintf(msg, msglen, "request body of %zu bytes is over the limit of %" PRIu32 " bytes (max_body of %s)", n,
                 f->max_body, f->name);
        return 413;
    }
    if (count && !gw__body_hold(gw, req, n)) {
        snprintf(msg, msglen,
                 "this node holds %zu bytes of request bodies and %zu more would pass its limit of %zu "
                 "(--max-buffered-body): retry later",
                 gw->body_held, n, gw->body_budget);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("retry-after"), 0, NULL, H2O_STRLIT("1"));
        gw->refused_bodies++;
        return 503;
    }
    return 0;
}

/* Decides on a body of n bytes from the request's head alone. Returns 0 to
 * read it (counted against the budget when it goes to a function), else the
 * status of the refusal with its reason in msg. */
static int admit(gw_server_t *gw, h2o_req_t *req, size_t n, char *msg, size_t msglen)
{
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    size_t plen = sizeof(GW_ADMIN_PREFIX) - 1;
    if (path_len >= plen && memcmp(path, GW_ADMIN_PREFIX, plen) == 0 && (path_len == plen || path[plen] == '/')) {
        size_t limit;
        int refused = gw__admin_body_limit(gw, req, path + plen, path_len - plen, &limit, msg, msglen);
        if (refused != 0)
            return refused; /* the body of a caller without the right key is never read */
        if (n <= limit)
            return 0; /* an operator's: bounded by the limit, not counted */
        snprintf(msg, msglen, "request body of %zu bytes is over the limit of %zu bytes (%s)", n, limit,
                 limit == gw->max_bundle ? "--max-bundle-size" : "of this admin call");
        return 413;
    }
    if (path_len >= 7 && memcmp(path, "/api/v1", 7) == 0 && (path_len == 7 || path[7] == '/'))
        return gw__openwhisk_body_admit(gw, req, path + 7, path_len - 7, n, msg, msglen);
    if (path_len > 1 && path[0] == '/' && !h2o_memis(path, path_len, H2O_STRLIT("/metrics"))) {
        gw_route_match_t m;
        int status = gw__match_route(gw, req, path, path_len, &m, msg, msglen);
        if (status == 0)
            status = gw__check_body(gw, req, m.function, n, true, msg, msglen);
        return status;
    }
    snprintf(msg, msglen, "request body of %zu bytes: %.*s takes none", n, (int)path_len, path);
    return 413;
}

/* An intake's timer closed: frees it. */
static void on_timer_closed(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, intake_timer_t, timer));
}

/* The request of an intake is freed: drops the socket's entry and closes its
 * timer. */
static void on_intake_dispose(void *p)
{
    intake_t *in = p;
    if (in->fd >= 0)
        by_fd[in->fd] = NULL;
    in->timer->in = NULL;
    uv_close((uv_handle_t *)&in->timer->timer, on_timer_closed);
}

/* The intake reading from sock, or NULL (none, or its request went away). */
static intake_t *intake_of(h2o_socket_t *sock)
{
    int fd = h2o_socket_get_fd(sock);
    return fd >= 0 && (size_t)fd < by_fd_len ? by_fd[fd] : NULL;
}

/* Gives the socket back to h2o (not reading) and the timer up. */
static void stop(intake_t *in)
{
    if (in->fd >= 0) {
        by_fd[in->fd] = NULL;
        in->fd = -1;
        h2o_socket_read_stop(in->sock);
    }
    uv_timer_stop(&in->timer->timer);
    in->mode = INTAKE_DONE;
}

/* Sends the refusal decided at the head (or a failure while reading). */
static void answer(intake_t *in)
{
    stop(in);
    if (in->status == 401)
        gw__send_unauthorized(in->req, in->message);
    else
        gw__send_error(in->req, in->status, "%s", in->message);
}

/* The body has arrived: serve the request as if h2o had read it. */
static void serve(intake_t *in)
{
    stop(in);
    in->body_in_input = in->body_len;
    in->req->entity = h2o_iovec_init(in->sock->input->bytes + in->head_len, in->body_len);
    gw__serve(in->os->gw, in->req);
}

static void on_timer(uv_timer_t *t);

/* Takes what arrived: READ waits for the whole body; DRAIN drops body bytes
 * from the buffer (keeping the head and anything after the body). */
static void progress(intake_t *in)
{
    h2o_buffer_t *b = in->sock->input;
    size_t after = b->size - in->head_len;
    if (in->mode == INTAKE_DRAIN) {
        size_t take = in->body_len - in->drained < after ? in->body_len - in->drained : after;
        memmove(b->bytes + in->head_len, b->bytes + in->head_len + take, after - take);
        b->size -= take;
        in->drained += take;
        if (in->drained == in->body_len) {
            answer(in);
            return;
        }
    } else if (after >= in->body_len) {
        serve(in);
        return;
    }
    /* Wait for the next bytes: the request timeout, or less when the
     * deadline of the whole body comes first. */
    uint64_t now = uv_now(in->os->gw->loop), wait = in->os->gw->config.http1.req_timeout;
    if (in->deadline_ms < now + wait)
        wait = in->deadline_ms > now ? in->deadline_ms - now : 0;
    uv_timer_start(&in->timer->timer, on_timer, wait, 0);
}

/* The client went away: an answer nobody reads makes h2o close the connection. */
static void client_gone(intake_t *in)
{
    in->keep_alive = false;
    if (in->mode == INTAKE_READ) {
        in->status = 400;
        in->message = "the connection closed before the request body arrived";
    }
    answer(in);
}

/* Body bytes (or an error) arrived on an intake's socket. */
static void on_read(h2o_socket_t *sock, const char *err)
{
    intake_t *in = intake_of(sock);
    if (in == NULL)
        return;
    if (err != NULL)
        client_gone(in);
    else
        progress(in);
}

/* The 100 Continue is written: reading the body starts (an error means the
 * client left). */
static void on_continue_sent(h2o_socket_t *sock, const char *err)
{
    intake_t *in = intake_of(sock);
    if (in == NULL)
        return;
    if (err != NULL) {
        client_gone(in);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    progress(in);
}

/* First turn of the loop after the takeover: start reading (after 100
 * Continue when the client waits for it). Later: no byte for the request
 * timeout. */
static void on_timer(uv_timer_t *t)
{
    intake_t *in = container_of(t, intake_timer_t, timer)->in;
    if (in == NULL)
        return;
    if (!in->started) {
        in->started = true;
        if (in->expect_continue && in->mode == INTAKE_READ) {
            static const h2o_iovec_t cont = {H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n")};
            h2o_socket_write(in->sock, (h2o_iovec_t *)&cont, 1, on_continue_sent);
            return;
        }
        h2o_socket_read_start(in->sock, on_read);
        progress(in);
        return;
    }
    in->keep_alive = false;
    if (in->mode == INTAKE_READ) {
        size_t got = in->sock->input->size - in->head_len;
        char *msg = h2o_mem_alloc_pool(&in->req->pool, 160);
        if (uv_now(in->os->gw->loop) >= in->deadline_ms)
            snprintf(msg, 160, "request body too slow: %zu of %zu bytes arrived by its deadline (%u bytes a second)",
                     got, in->body_len, MIN_BODY_RATE);
        else
            snprintf(msg, 160, "request body: %zu of %zu bytes arrived, then nothing for %" PRIu64 " ms", got,
                     in->body_len, in->os->gw->config.http1.req_timeout);
        in->status = 408;
        in->message = msg;
    }
    answer(in);
}

/* Takes over an HTTP/1 request h2o refused for its Content-Length. False
 * (nothing done) when the head cannot be found as expected. */
static bool take_over(gw_ostream_t *os, h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    int fd = sock ? h2o_socket_get_fd(sock) : -1;
    gw_head_t h;
    if (fd < 0 ||
        !gw__read_head(req->input.method.base, req->input.method.len, sock->input->bytes, sock->input->size, &h) ||
        h.chunked || h.content_length == SIZE_MAX ||
        h.content_length <= GW_INLINE_BODY)
        return false;
    gw_server_t *gw = os->gw;
    intake_t *in = h2o_mem_alloc_shared(&req->pool, sizeof(*in), on_intake_dispose);
    memset(in, 0, sizeof(*in));
    in->os = os;
    in->req = req;
    in->sock = sock;
    in->head_len = h.head_len;
    in->body_len = h.content_length;
    in->expect_continue = h.expect_continue;
    in->keep_alive = wants_keep_alive(req);
    in->deadline_ms = uv_now(gw->loop) + gw->config.http1.req_timeout + h.content_length / MIN_BODY_RATE * 1000;
    in->timer = xmalloc(sizeof(*in->timer));
    in->timer->in = in;
    uv_timer_init(gw->loop, &in->timer->timer);
    os->in = in;
    os->ours = true;
    in->fd = fd;
    by_fd_set(fd, in);

    char msg[1024];
    int status = admit(gw, req, h.content_length, msg, sizeof msg);
    if (status != 0) {
        in->status = status;
        in->message = h2o_strdup(&req->pool, msg, SIZE_MAX).base;
        in->mode = INTAKE_DRAIN;
        if (h.expect_continue || h.content_length > DRAIN_MAX) {
            /* The body is not coming (or is too large to wait for): answer now, then close. */
            in->keep_alive = false;
            answer(in);
            return true;
        }
    } else {
        in->mode = INTAKE_READ;
        size_t after = sock->input->size - h.head_len;
        if (after < h.content_length) /* one allocation, not one per doubling */
            h2o_buffer_reserve(&sock->input, h.content_length - after);
    }
    uv_timer_start(&in->timer->timer, on_timer, 0, 0);
    return true;
}

/* Before the first byte of tine's answer to a request it read itself: the
 * connection stays open when the client wants it and the answer's end is
 * known, and the body leaves the input buffer so that h2o, which consumes
 * the head once the answer is sent, finds the next request after it. */
static void settle_connection(intake_t *in, h2o_req_t *req)
{
    in->connection_set = true;
    int st = req->res.status;
    bool framed = req->res.content_length != SIZE_MAX || st == 204 || st == 304 ||
                  h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    bool keep = in->keep_alive && in->mode == INTAKE_DONE && framed && !req->conn->ctx->shutdown_requested;
    if (keep && in->body_in_input) {
        h2o_buffer_t *b = in->sock->input;
        size_t from = in->head_len + in->body_in_input;
        memmove(b->bytes + in->head_len, b->bytes + from, b->size - from);
        b->size -= in->body_in_input;
        in->body_in_input = 0;
        req->entity = h2o_iovec_init(NULL, 0);
    }
    req->http1_is_persistent = keep;
}

/* The message of one of h2o's own error answers, from its status and body. */
static const char *h2o_error_message(int status, const char *text, char *buf, size_t buflen)
{
    switch (status) {
    case 413:
        return "request body too large: a body over 64 KiB needs a Content-Length (chunked bodies are limited to "
               "64 KiB)";
    case 417:
        return "unsupported Expect header: only 100-continue is supported";
    case 404:
        return "not found";
    case 400:
        snprintf(buf, buflen, "bad request%s%s", text[0] ? ": " : "", text);
        return buf;
    default:
        return text[0] ? text : gw__reason(status);
    }
}

/* The output filter: tine's answers pass on; one of h2o's own error answers
 * is replaced by tine's JSON error (a 413 over HTTP/1 may drain the body
 * first). */
static void on_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n, h2o_send_state_t state)
{
    gw_ostream_t *os = (gw_ostream_t *)self;
    if (os->ours || h2o_send_state_is_in_progress(state)) {
        if (os->in && !os->in->connection_set)
            settle_connection(os->in, req);
        h2o_ostream_send_next(self, req, bufs, n, state);
        return;
    }
    /* One of h2o's own answers (text/plain, one piece): keep its text. */
    char text[200];
    size_t tl = 0;
    for (size_t i = 0; i < n && tl < sizeof text - 1; i++) {
        size_t k = bufs[i].len < sizeof text - 1 - tl ? bufs[i].len : sizeof text - 1 - tl;
        memcpy(text + tl, bufs[i].base, k);
        tl += k;
    }
    text[tl] = '\0';
    int status = req->res.status;
    req->res.status = 0;
    req->res.reason = NULL;
    req->res.content_length = SIZE_MAX;
    memset(&req->res.headers, 0, sizeof(req->res.headers));
    if (status == 413 && req->version < 0x200 && take_over(os, req))
        return;
    /* tine's answer passes through this ostream again, as `ours`. */
    os->ours = true;
    char buf[256];
    gw__send_error(req, status, "%s", h2o_error_message(status, text, buf, sizeof buf));
}

/* Puts the output filter of on_send in front of every response. */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    gw_ostream_t *os = (gw_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = on_send;
    os->gw = ((gw_filter_t *)self)->gw;
    os->in = NULL;
    os->ours = false;
    h2o_setup_next_ostream(req, &os->super.next);
}

void gw__intake_register(gw_server_t *gw, h2o_pathconf_t *fallback)
{
    gw_filter_t *f = (gw_filter_t *)h2o_create_filter(fallback, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->gw = gw;
}
