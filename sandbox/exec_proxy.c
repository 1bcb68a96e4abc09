/* The egress proxy of exec programs with `network: true`. The program lives
 * in a network namespace of its own with only loopback; its runner listens
 * there (SBX_EXEC_PROXY_ADDR:SBX_EXEC_PROXY_PORT, named by HTTP_PROXY and
 * friends in the program's environment) and, back in the host's namespace,
 * makes the connections the program asks for: HTTP CONNECT (any TCP, TLS
 * included) and plain HTTP with an absolute URI. Each is checked first
 * with the policy tine.http applies (common/outbound.h): the host name
 * against the app's allow_outbound, then every address it resolves to,
 * and only a checked address is connected to. A refusal answers 403 with
 * the reason and leaves a line in the invocation's logs.
 *
 * One thread per connection (blocking calls: name resolution, connect),
 * detached: the runner exits when its invocation is answered, and its
 * threads with it. */
#define _GNU_SOURCE
#include "outbound.h"
#include "sandbox_internal.h"
#include "tine_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 16384        /* bytes of a request head */
#define HEAD_TIMEOUT_MS 10000 /* to send the head */
#define CONNECT_TIMEOUT_MS 10000
#define MAX_CONNECTIONS 64 /* served at once */
#define MAX_LOG_LINES 64   /* per invocation */
#define RELAY_BUF 65536

struct sbx_proxy {
    int listen_fd;
    const sbx_spec_t *spec;
    uint64_t deadline_ns;
    sbx_proxy_log_fn log;
    void *log_ctx;
    pthread_mutex_t lock; /* guards the fields below */
    unsigned active;      /* connections being served */
    unsigned logged;
};

typedef struct {
    sbx_proxy_t *proxy;
    int client;
} conn_t;

/* ------------------------------------------------------------ parsing */

/* Copies the host of an authority ("host", "[v6]") of length n, lower case
 * and without brackets, into out. Returns 0, or TINE_EINVAL for a bad host. */
static int take_host(const char *a, size_t n, char *out, size_t outlen)
{
    bool v6 = n >= 2 && a[0] == '[' && a[n - 1] == ']';
    if (v6) {
        a++;
        n -= 2;
    }
    if (n == 0 || n >= outlen)
        return TINE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  (v6 ? c == ':' : c == '-' || c == '_');
        if (!ok)
            return TINE_EINVAL;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[n] = '\0';
    return 0;
}

/* Splits the authority "host[:port]" (length n) into req->host and
 * req->port (default_port when absent, 0 for none allowed). Returns 0 or
 * TINE_EINVAL. */
static int take_authority(const char *a, size_t n, uint16_t default_port, sbx_proxy_request_t *req)
{
    const char *colon = NULL;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close == NULL)
            return TINE_EINVAL;
        colon = close + 1 < a + n ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return TINE_EINVAL;
    } else {
        colon = memchr(a, ':', n);
    }
    size_t hl = colon ? (size_t)(colon - a) : n;
    if (take_host(a, hl, req->host, sizeof req->host) != 0)
        return TINE_EINVAL;
    if (colon == NULL) {
        req->port = default_port;
        return default_port ? 0 : TINE_EINVAL;
    }
    const char *p = colon + 1, *end = a + n;
    unsigned long port = 0;
    if (p == end || end - p > 5)
        return TINE_EINVAL;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return TINE_EINVAL;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return TINE_EINVAL;
    req->port = (uint16_t)port;
    return 0;
}

/* Whether the header line (without CRLF) is named `name`. */
static bool header_is(const char *line, size_t n, const char *name)
{
    size_t nl = strlen(name);
    return n > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0;
}

static const char head_oom[] = "out of memory building the request for the server";

/* Reads the head buf..end (its last CRLF CRLF excluded) into req and, for
 * plain HTTP, the head for the server into `head`. Returns NULL, or why the
 * request is refused (400; head_oom: 503). */
static const char *read_head(const char *buf, const char *end, sbx_proxy_request_t *req, tine_buf_t *head)
{
    const char *line_end = memmem(buf, (size_t)(end + 2 - buf), "\r\n", 2);
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == buf || sp1 - buf > 16 || sp2 == sp1 + 1 || line_end - sp2 - 1 != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return "expected a request line METHOD TARGET HTTP/1.x";
    for (const char *p = buf; p < sp1; p++)
        if (*p < 'A' || *p > 'Z')
            return "expected an upper-case method";
    for (const char *p = sp1 + 1; p < sp2; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "the request target holds a control character";
    size_t ml = (size_t)(sp1 - buf);
    snprintf(req->method, sizeof req->method, "%.*s", (int)ml, buf);
    const char *target = sp1 + 1;
    size_t tl = (size_t)(sp2 - target);
    if (strcmp(req->method, "CONNECT") == 0) {
        req->connect = true;
        return take_authority(target, tl, 0, req) == 0
                   ? NULL
                   : "CONNECT needs HOST:PORT (a name, an IPv4 or a [IPv6] address)";
    }
    static const char http[] = "http://";
    if (tl < sizeof http - 1 || strncasecmp(target, http, sizeof http - 1) != 0)
        return tl >= 8 && strncasecmp(target, "https://", 8) == 0 ? "https:// goes through CONNECT (set HTTPS_PROXY)"
                                                                  : "expected CONNECT or an absolute http:// URI";
    const char *auth = target + sizeof http - 1, *tend = target + tl;
    const char *path = auth;
    while (path < tend && *path != '/' && *path != '?' && *path != '#')
        path++;
    if (memchr(auth, '@', (size_t)(path - auth)) != NULL)
        return "credentials in the URI are not supported";
    if (take_authority(auth, (size_t)(path - auth), 80, req) != 0)
        return "bad host or port in the URI";
    /* The server gets the origin form, its own headers without the
     * proxy's hop-by-hop ones, and one request per connection. */
    bool ok = tine_buf_try_append(head, buf, ml + 1) == 0;
    if (path == tend || *path != '/')
        ok &= tine_buf_try_append(head, "/", 1) == 0;
    ok &= tine_buf_try_append(head, path, (size_t)(tend - path)) == 0;
    ok &= tine_buf_try_append(head, sp2, (size_t)(line_end - sp2)) == 0;
    ok &= tine_buf_try_append(head, "\r\n", 2) == 0;
    bool has_host = false;
    for (const char *l = line_end + 2; l < end + 2;) {
        const char *le = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
        size_t n = (size_t)(le - l);
        if (l[0] == ' ' || l[0] == '\t' || memchr(l, ':', n) == NULL)
            return "bad header line";
        has_host |= header_is(l, n, "host");
        if (!header_is(l, n, "proxy-connection") && !header_is(l, n, "proxy-authorization") &&
            !header_is(l, n, "connection") && !header_is(l, n, "keep-alive"))
            ok &= tine_buf_try_append(head, l, n + 2) == 0;
        l = le + 2;
    }
    if (!has_host)
        ok &= tine_buf_try_appendf(head, "Host: %.*s\r\n", (int)(path - auth), auth) == 0;
    ok &= tine_buf_try_append(head, "Connection: close\r\n\r\n", 21) == 0;
    return ok ? NULL : head_oom;
}

int sbx__proxy_parse(const char *buf, size_t len, sbx_proxy_request_t *req, tine_buf_t *head, char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL && len < HEAD_MAX)
        return 1;
    if (end == NULL || (size_t)(end - buf) + 4 > HEAD_MAX) {
        tine_fail(err, errlen, "the request head is larger than %d bytes", HEAD_MAX);
        return 431;
    }
    req->head_len = (size_t)(end - buf) + 4;
    const char *why = read_head(buf, end, req, head);
    if (why != NULL) {
        tine_fail(err, errlen, "%s", why);
        return why == head_oom ? 503 : 400;
    }
    return 0;
}

/* ------------------------------------------------------------ serving */

/* Sends a line about the proxy's work (at most 768 bytes) to the runner's
 * log; after MAX_LOG_LINES lines, nothing more. Thread-safe. */
static void proxy_log(sbx_proxy_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void proxy_log(sbx_proxy_t *p, const char *fmt, ...)
{
    pthread_mutex_lock(&p->lock);
    bool go = p->logged < MAX_LOG_LINES;
    p->logged++;
    pthread_mutex_unlock(&p->lock);
    if (!go)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ctx, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
}

/* Sends the n bytes at p on the socket fd, waiting up to CONNECT_TIMEOUT_MS
 * each time it is full. Returns 0, TINE_ETIMEOUT or -errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int r = poll(&pf, 1, CONNECT_TIMEOUT_MS);
            if (r <= 0)
                return r == 0 ? TINE_ETIMEOUT : -errno;
            continue;
        }
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answers the client with an error status and "tine: message". */
static void answer(int fd, int status, const char *msg)
{
    const char *reason = status == 400   ? "Bad Request"
                         : status == 403 ? "Forbidden"
                         : status == 408 ? "Request Timeout"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 503 ? "Service Unavailable"
                         : status == 504 ? "Gateway Timeout"
                                         : "Bad Gateway";
    char text[1024];
    int body = (int)strlen(msg) + 7;
    int n = snprintf(text, sizeof text,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\ntine: %s\n",
                     status, reason, body, msg);
    if (n > 0)
        write_all(fd, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* Connects to `a` within timeout_ms. Returns the socket, or -errno. */
static int connect_to(const struct addrinfo *a, int timeout_ms)
{
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
        return fd;
    int e = errno;
    if (e == EINPROGRESS) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int r = poll(&pf, 1, timeout_ms);
        socklen_t sl = sizeof e;
        if (r == 0)
            e = ETIMEDOUT;
        else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
            e = errno;
        if (e == 0)
            return fd;
    }
    close(fd);
    return -e;
}

/* Moves bytes both ways until both sides are done (half-closes passed on). */
static void relay(int client, int server)
{
    int fd[2] = {client, server};
    char *buf[2] = {xmalloc(RELAY_BUF), xmalloc(RELAY_BUF)}; /* buf[i]: read from fd[i], for fd[1 - i] */
    size_t len[2] = {0, 0}, off[2] = {0, 0};
    bool eof[2] = {false, false}, shut[2] = {false, false}, hup[2] = {false, false};
    fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
    for (;;) {
        struct pollfd p[2];
        for (int i = 0; i < 2; i++) {
            short ev = (short)((!eof[i] && len[i] == 0 ? POLLIN : 0) | (len[1 - i] > off[1 - i] ? POLLOUT : 0));
            p[i] = (struct pollfd){ev == 0 && hup[i] ? -1 : fd[i], ev, 0};
        }
        if (shut[0] && shut[1])
            break;
        if (p[0].events == 0 && p[1].events == 0 && (p[0].fd < 0 || p[1].fd < 0))
            break;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        bool failed = false;
        for (int i = 0; i < 2 && !failed; i++) {
            if (p[i].revents & (POLLERR | POLLNVAL))
                failed = true;
            hup[i] |= (p[i].revents & POLLHUP) != 0;
            if ((p[i].revents & (POLLIN | POLLHUP)) && !eof[i] && len[i] == 0) {
                ssize_t n = recv(fd[i], buf[i], RELAY_BUF, 0);
                if (n > 0) {
                    len[i] = (size_t)n;
                    off[i] = 0;
                } else if (n == 0) {
                    eof[i] = true;
                } else if (errno != EAGAIN && errno != EINTR) {
                    failed = true;
                }
            }
            int o = 1 - i; /* fd[i] writable: what was read from the other side */
            if ((p[i].revents & POLLOUT) && len[o] > off[o]) {
                ssize_t n = send(fd[i], buf[o] + off[o], len[o] - off[o], MSG_NOSIGNAL);
                if (n > 0)
                    off[o] += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    failed = true;
                if (off[o] == len[o])
                    len[o] = off[o] = 0;
            }
        }
        for (int i = 0; i < 2 && !failed; i++) {
            if (eof[i] && len[i] == 0 && !shut[i]) { /* all of side i passed on: half-close the other */
                shutdown(fd[1 - i], SHUT_WR);
                shut[i] = true;
            }
        }
        if (failed)
            break;
    }
    free(buf[0]);
    free(buf[1]);
}

/* Serves one connection of the program (a detached thread). */
static void *serve(void *arg)
{
    conn_t *c = arg;
    sbx_proxy_t *p = c->proxy;
    const sbx_spec_t *spec = p->spec;
    char *buf = xmalloc(HEAD_MAX + 1);
    size_t got = 0;
    sbx_proxy_request_t req;
    tine_buf_t head;
    tine_buf_init(&head);
    char err[512], msg[768];
    int status = 1, server = -1;
    uint64_t until = tine_now_ns() + (uint64_t)HEAD_TIMEOUT_MS * 1000000u;
    while (status == 1) {
        uint64_t now = tine_now_ns();
        struct pollfd pf = {c->client, POLLIN, 0};
        if (now >= until || poll(&pf, 1, (int)((until - now) / 1000000u) + 1) <= 0) {
            status = got ? 408 : -1; /* a connection that says nothing is just closed */
            snprintf(err, sizeof err, "no complete request head within %d ms", HEAD_TIMEOUT_MS);
            break;
        }
        ssize_t n = recv(c->client, buf + got, HEAD_MAX - got, 0);
        if (n <= 0 && (n == 0 || (errno != EAGAIN && errno != EINTR))) {
            status = -1;
            break;
        }
        if (n > 0)
            got += (size_t)n;
        tine_buf_dispose(&head);
        tine_buf_init(&head);
        status = sbx__proxy_parse(buf, got, &req, &head, err, sizeof err);
    }
    bool listed = false;
    struct addrinfo *addrs = NULL;
    if (status == 0 && !tine_outbound_host_allowed(spec->allow_outbound, spec->allow_outbound_len,
                                                   spec->allow_outbound_set, req.host, &listed)) {
        status = 403;
        snprintf(err, sizeof err, "host %s not allowed by allow_outbound", req.host);
    }
    if (status == 0) {
        char port[8];
        snprintf(port, sizeof port, "%u", (unsigned)req.port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        int g = getaddrinfo(req.host, port, &hints, &addrs);
        if (g != 0) {
            status = 502;
            snprintf(err, sizeof err, "cannot resolve host %s: %s", req.host, gai_strerror(g));
            addrs = NULL;
        }
    }
    /* Every address first: a name with one forbidden address among
     * public ones is refused as a whole. */
    for (struct addrinfo *a = addrs; a && status == 0 && !listed; a = a->ai_next) {
        const char *why = tine_outbound_address_refused(a->ai_addr);
        if (why != NULL) {
            char ip[INET6_ADDRSTRLEN] = "?";
            const void *in = a->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                                                      : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
            inet_ntop(a->ai_family, in, ip, sizeof ip);
            status = 403;
            snprintf(err, sizeof err, "host %s is at %s, %s; list the host in allow_outbound to reach it", req.host, ip,
                     why);
        }
    }
    int last = 0;
    for (struct addrinfo *a = addrs; a && status == 0 && server < 0; a = a->ai_next) {
        uint64_t now = tine_now_ns();
        int left = now < p->deadline_ns ? (int)((p->deadline_ns - now) / 1000000u) : 0;
        if (left <= 0) {
            last = ETIMEDOUT;
            break;
        }
        server = connect_to(a, left < CONNECT_TIMEOUT_MS ? left : CONNECT_TIMEOUT_MS);
        last = server < 0 ? -server : 0;
    }
    if (status == 0 && server < 0) {
        status = last == ETIMEDOUT ? 504 : 502;
        snprintf(err, sizeof err, "cannot connect to %s port %u: %s", req.host, (unsigned)req.port, strerror(last));
    }
    if (addrs != NULL)
        freeaddrinfo(addrs);
    if (status > 0) {
        answer(c->client, status, err);
        if (req.host[0])
            snprintf(msg, sizeof msg, "%s %s:%u", req.method, req.host, (unsigned)req.port);
        else
            snprintf(msg, sizeof msg, "a request");
        proxy_log(p, "[tine] network: %s %s: %s", msg, status == 403 ? "refused" : "failed", err);
    } else if (status == 0) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        int w = req.connect ? write_all(c->client, ok, sizeof ok - 1) : write_all(server, head.data, head.len);
        /* Bytes the client sent after its head (a TLS hello, a body). */
        if (w == 0 && got > req.head_len)
            w = write_all(server, buf + req.head_len, got - req.head_len);
        free(buf);
        buf = NULL;
        if (w == 0)
            relay(c->client, server);
        close(server);
    }
    free(buf);
    tine_buf_dispose(&head);
    close(c->client);
    pthread_mutex_lock(&p->lock);
    p->active--;
    pthread_mutex_unlock(&p->lock);
    free(c);
    return NULL;
}

sbx_proxy_t *sbx__proxy_new(int listen_fd, const sbx_spec_t *spec, uint64_t deadline_ns, sbx_proxy_log_fn log,
                            void *log_ctx)
{
    sbx_proxy_t *p = xcalloc(1, sizeof *p);
    p->listen_fd = listen_fd;
    p->spec = spec;
    p->deadline_ns = deadline_ns;
    p->log = log;
    p->log_ctx = log_ctx;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

int sbx__proxy_fd(const sbx_proxy_t *p)
{
    return p ? p->listen_fd : -1;
}

void sbx__proxy_accept(sbx_proxy_t *p)
{
    for (;;) {
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: no more waiting (the socket is non-blocking) */
        pthread_mutex_lock(&p->lock);
        bool room = p->active < MAX_CONNECTIONS;
        p->active += room;
        pthread_mutex_unlock(&p->lock);
        if (!room) {
            answer(fd, 503, "too many connections through the proxy at once");
            close(fd);
            continue;
        }
        conn_t *c = xmalloc(sizeof *c);
        *c = (conn_t){p, fd};
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&t, &attr, serve, c) != 0) {
            answer(fd, 503, "the proxy cannot start a thread");
            close(fd);
            free(c);
            pthread_mutex_lock(&p->lock);
            p->active--;
            pthread_mutex_unlock(&p->lock);
        }
        pthread_attr_destroy(&attr);
    }
}

void sbx__proxy_stop(sbx_proxy_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->logged = MAX_LOG_LINES; /* nothing more reaches the logs */
    pthread_mutex_unlock(&p->lock);
    close(p->listen_fd);
    p->listen_fd = -1;
    /* p itself stays: threads may still use it until the runner exits. */
}
