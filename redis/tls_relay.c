/* rediss://: a relay from a private unix socket to a Redis server over TLS.
 *
 * hiredis 0.14 speaks only plain sockets, so connections to a TLS server
 * dial a unix socket of this relay instead (mode 0600, in a fresh 0700
 * directory: only this user reaches it). A thread accepts them; each gets a
 * thread of its own that opens the TCP connection, runs the TLS handshake
 * (OpenSSL; the server's certificate must chain to the URL's CA file or the
 * system's store and name the host) and then carries bytes both ways. When
 * the server cannot be reached or does not verify, the client gets one
 * error reply "-TLSERR why" before the socket closes, so its AUTH or PING
 * reads a precise reason. */
#include "redis_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define RELAY_CONNECT_TIMEOUT_MS 10000
#define RELAY_BUF 16384

typedef struct worker {
    struct worker *next;
    rds__relay_t *relay;
    int client;
    pthread_t thread;
    volatile int done; /* set by the worker as it ends (read under the relay's lock) */
} worker_t;

struct rds__relay {
    rds__relay_t *next;
    int refs;
    char *key; /* host, port and files: one relay per server and trust */
    char *host;
    int port;
    bool host_is_ip;
    char *dir, *path;
    SSL_CTX *ctx;
    int listen_fd;
    int stop_fd; /* eventfd: readable once the relay stops */
    pthread_t thread;
    pthread_mutex_t lock; /* workers */
    worker_t *workers;
};

static pthread_mutex_t relays_lock = PTHREAD_MUTEX_INITIALIZER;
static rds__relay_t *relays;

/* ------------------------------------------------------------- helpers */

/* The monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
    return (int64_t)(tine_now_ns() / 1000000u);
}

/* The newest OpenSSL error of this thread in words. */
static const char *ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        return "the handshake failed";
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* Sends "-TLSERR why" to the client (one line, best effort). */
static void tell_client(int fd, const char *why)
{
    char line[600];
    int n = snprintf(line, sizeof line, "-" RDS__RELAY_ERROR " %s", why);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    for (int i = 1; i < n; i++)
        if (line[i] == '\r' || line[i] == '\n')
            line[i] = ' ';
    memcpy(line + n, "\r\n", 2);
    (void)!send(fd, line, (size_t)n + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Waits for `events` on fd, also watching the stop descriptor. Returns the
 * revents, 0 on timeout, -1 when the relay stops. */
static int wait_fd(rds__relay_t *r, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = r->stop_fd, .events = POLLIN}};
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            return -1;
        if (n > 0)
            return p[0].revents;
    }
}

/* Opens a TCP connection to the server. Returns the socket (non-blocking)
 * or -1 with why. */
static int tcp_connect(rds__relay_t *r, int64_t deadline, char *why, size_t len)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(r->host, port, &hints, &res);
    if (g != 0) {
        snprintf(why, len, "cannot resolve %s: %s", r->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
        } else {
            int ev = wait_fd(r, fd, POLLOUT, deadline);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (ev > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                int on = 1;
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
                break; /* connected */
            }
            last = ev == 0 ? ETIMEDOUT : ev < 0 ? ECANCELED : soerr ? soerr : EIO;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, len, "cannot reach %s:%d: %s", r->host, r->port, strerror(last));
    return fd;
}

/* Runs the TLS handshake on a connected socket. Returns the SSL or NULL
 * with why (a certificate that does not verify is named as such). */
static SSL *tls_handshake(rds__relay_t *r, int fd, int64_t deadline, char *why, size_t len)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(r->ctx);
    if (ssl == NULL) {
        snprintf(why, len, "TLS: %s", ssl_error((char[256]){0}, 256));
        return NULL;
    }
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (r->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, r->host);
    } else {
        SSL_set_tlsext_host_name(ssl, r->host);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, r->host, 0);
    }
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1)
            return ssl;
        int e = SSL_get_error(ssl, rc);
        int ev = e == SSL_ERROR_WANT_READ    ? wait_fd(r, fd, POLLIN, deadline)
                 : e == SSL_ERROR_WANT_WRITE ? wait_fd(r, fd, POLLOUT, deadline)
                                             : -2;
        if (ev > 0)
            continue;
        long v = SSL_get_verify_result(ssl);
        char buf[256];
        if (ev == 0)
            snprintf(why, len, "TLS handshake with %s:%d: no answer within %d ms", r->host, r->port,
                     RELAY_CONNECT_TIMEOUT_MS);
        else if (v != X509_V_OK)
            snprintf(why, len, "the certificate of %s:%d does not verify: %s", r->host, r->port,
                     X509_verify_cert_error_string(v));
        else
            snprintf(why, len, "TLS handshake with %s:%d failed: %s", r->host, r->port,
                     e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? "the server closed the connection"
                                                                     : ssl_error(buf, sizeof buf));
        SSL_free(ssl);
        return NULL;
    }
}

/* The server ended the session (SSL error e). Before it said a word, the
 * reason goes to the client (a TLS 1.3 server that wanted a client
 * certificate says so only now, with an alert). Returns true. */
static bool session_ended(rds__relay_t *r, int e, bool heard, char *why, size_t len)
{
    char buf[256];
    if (!heard && why[0] == '\0')
        snprintf(why, len, "TLS session with %s:%d ended: %s", r->host, r->port,
                 e == SSL_ERROR_SSL ? ssl_error(buf, sizeof buf) : "the server closed the connection");
    return true;
}

/* Carries bytes between the client and the TLS connection until either
 * side closes or the relay stops. Both sockets are non-blocking; each pass
 * moves what it can and polls only when nothing moved. */
static void pump(rds__relay_t *r, int client, int fd, SSL *ssl)
{
    char *up = xmalloc(RELAY_BUF), *down = xmalloc(RELAY_BUF);
    size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
    bool write_wants_read = false, write_wants_write = false, read_wants_write = false;
    bool client_eof = false, server_eof = false, heard = false;
    char why[300] = ""; /* the server ended the session with an error before a word: tell the client */
    for (;;) {
        bool moved = false;
        if (up_len == 0 && !client_eof) {
            ssize_t n = recv(client, up, RELAY_BUF, MSG_DONTWAIT);
            if (n > 0) {
                up_len = (size_t)n;
                up_off = 0;
                moved = true;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                client_eof = true;
            }
        }
        if (up_off < up_len) {
            ERR_clear_error();
            write_wants_read = write_wants_write = false;
            int n = SSL_write(ssl, up + up_off, (int)(up_len - up_off));
            if (n > 0) {
                up_off += (size_t)n;
                if (up_off == up_len)
                    up_len = up_off = 0;
                moved = true;
            } else {
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ)
                    write_wants_read = true;
                else if (e == SSL_ERROR_WANT_WRITE)
                    write_wants_write = true;
                else
                    server_eof = session_ended(r, e, heard, why, sizeof why);
            }
        }
        if (down_len == 0 && !server_eof) {
            ERR_clear_error();
            read_wants_write = false;
            int n = SSL_read(ssl, down, RELAY_BUF);
            if (n > 0) {
                down_len = (size_t)n;
                down_off = 0;
                moved = heard = true;
            } else {
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_WRITE) {
                    read_wants_write = true;
                } else if (e != SSL_ERROR_WANT_READ) {
                    server_eof = session_ended(r, e, heard, why, sizeof why);
                }
            }
        }
        if (down_off < down_len) {
            ssize_t n = send(client, down + down_off, down_len - down_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                down_off += (size_t)n;
                if (down_off == down_len)
                    down_len = down_off = 0;
                moved = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                break;
            }
        }
        if (client_eof && up_len == 0)
            break; /* the client is done: nothing more to carry */
        if (server_eof && down_len == 0)
            break;
        if (moved)
            continue;
        struct pollfd p[3] = {
            {.fd = client,
             .events = (short)((up_len == 0 && !client_eof ? POLLIN : 0) | (down_off < down_len ? POLLOUT : 0))},
            {.fd = fd,
             .events = (short)((down_len == 0 || write_wants_read ? POLLIN : 0) |
                               (write_wants_write || read_wants_write ? POLLOUT : 0))},
            {.fd = r->stop_fd, .events = POLLIN},
        };
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[2].revents)
            break;
    }
    if (why[0])
        tell_client(client, why);
    if (!server_eof) {
        ERR_clear_error();
        SSL_shutdown(ssl); /* best effort: close_notify */
    }
    free(up);
    free(down);
}

/* One relayed connection: TCP, TLS, then bytes both ways; signals stay with
 * the other threads. */
static void *worker_main(void *arg)
{
    worker_t *w = arg;
    rds__relay_t *r = w->relay;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    char why[512];
    int64_t deadline = now_ms() + RELAY_CONNECT_TIMEOUT_MS;
    int fd = tcp_connect(r, deadline, why, sizeof why);
    SSL *ssl = fd >= 0 ? tls_handshake(r, fd, deadline, why, sizeof why) : NULL;
    if (ssl) {
        pump(r, w->client, fd, ssl);
        SSL_free(ssl);
    } else {
        tell_client(w->client, why);
    }
    if (fd >= 0)
        close(fd);
    close(w->client);
    OPENSSL_thread_stop();
    pthread_mutex_lock(&r->lock);
    w->done = 1;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Joins the workers that ended (all of them when `all`). */
static void reap_workers(rds__relay_t *r, bool all)
{
    for (;;) {
        worker_t *found = NULL;
        pthread_mutex_lock(&r->lock);
        for (worker_t **p = &r->workers; *p; p = &(*p)->next) {
            if (all || (*p)->done) {
                found = *p;
                *p = found->next;
                break;
            }
        }
        pthread_mutex_unlock(&r->lock);
        if (found == NULL)
            return;
        pthread_join(found->thread, NULL);
        free(found);
    }
}

/* Accepts connections on the relay's socket until the relay stops. */
static void *acceptor_main(void *arg)
{
    rds__relay_t *r = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd p[2] = {{.fd = r->listen_fd, .events = POLLIN}, {.fd = r->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int client = accept(r->listen_fd, NULL, NULL);
        if (client < 0)
            continue;
        fcntl(client, F_SETFD, FD_CLOEXEC);
        reap_workers(r, false);
        worker_t *w = xcalloc(1, sizeof(*w));
        w->relay = r;
        w->client = client;
        pthread_mutex_lock(&r->lock);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc == 0) {
            w->next = r->workers;
            r->workers = w;
        }
        pthread_mutex_unlock(&r->lock);
        if (rc != 0) {
            tell_client(client, "the TLS relay cannot start a thread");
            close(client);
            free(w);
        }
    }
    return NULL;
}

/* -------------------------------------------------------------- setup */

/* Closes the relay's sockets, removes its socket file and dir, and frees it
 * (its threads are gone). */
static void relay_free(rds__relay_t *r)
{
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->stop_fd >= 0)
        close(r->stop_fd);
    if (r->path)
        unlink(r->path);
    if (r->dir)
        rmdir(r->dir);
    SSL_CTX_free(r->ctx);
    pthread_mutex_destroy(&r->lock);
    free(r->key);
    free(r->host);
    free(r->dir);
    free(r->path);
    free(r);
}

/* The TLS settings of a relay: verification against the URL's CA file or
 * the system's, an optional client certificate. */
static SSL_CTX *make_ctx(const rds_url_t *u, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char buf[256];
    if (ctx == NULL) {
        snprintf(err, errlen, "redis URL '%s': TLS: %s", u->redacted, ssl_error(buf, sizeof buf));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    const char *files[] = {u->cacert, u->cert, u->key};
    const char *names[] = {"cacert", "cert", "key"};
    for (int i = 0; i < 3; i++) {
        if (files[i] && access(files[i], R_OK) != 0) {
            snprintf(err, errlen, "redis URL '%s': %s %s: %s", u->redacted, names[i], files[i], strerror(errno));
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    int ok = u->cacert ? SSL_CTX_load_verify_locations(ctx, u->cacert, NULL) : SSL_CTX_set_default_verify_paths(ctx);
    const char *what = u->cacert ? "cacert" : "the system's CA certificates";
    if (ok == 1 && u->cert) {
        what = "cert";
        ok = SSL_CTX_use_certificate_chain_file(ctx, u->cert);
        if (ok == 1) {
            what = "key";
            ok = SSL_CTX_use_PrivateKey_file(ctx, u->key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx);
        }
    }
    if (ok != 1) {
        snprintf(err, errlen, "redis URL '%s': cannot load %s: %s", u->redacted, what, ssl_error(buf, sizeof buf));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Creates the private socket and starts the acceptor. */
static int relay_start(rds__relay_t *r, const rds_url_t *u, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    r->dir = xasprintf("%s/tine-rediss-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(r->dir) == NULL) {
        int e = errno;
        snprintf(err, errlen, "redis URL '%s': cannot create a directory for the TLS relay (%s): %s", u->redacted,
                 r->dir, strerror(e));
        free(r->dir);
        r->dir = NULL;
        return -e;
    }
    r->path = xasprintf("%s/relay.sock", r->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(r->path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "redis URL '%s': the TLS relay's socket path %s is too long (set TMPDIR)", u->redacted,
                 r->path);
        return TINE_EINVAL;
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", r->path);
    r->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (r->listen_fd < 0 || r->stop_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(r->path, 0600) != 0 || listen(r->listen_fd, 64) != 0) {
        int e = errno;
        snprintf(err, errlen, "redis URL '%s': cannot open the TLS relay's socket %s: %s", u->redacted, r->path,
                 strerror(e));
        return -e;
    }
    int rc = pthread_create(&r->thread, NULL, acceptor_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "redis URL '%s': cannot start the TLS relay: %s", u->redacted, strerror(rc));
        return -rc;
    }
    return 0;
}

int rds__relay_acquire(const rds_url_t *u, rds__relay_t **out, char *err, size_t errlen)
{
    char *key = xasprintf("%s\n%d\n%s\n%s\n%s", u->addrs[0].host, u->addrs[0].port, u->cacert ? u->cacert : "",
                          u->cert ? u->cert : "", u->key ? u->key : "");
    pthread_mutex_lock(&relays_lock);
    for (rds__relay_t *r = relays; r; r = r->next) {
        if (strcmp(r->key, key) == 0) {
            r->refs++;
            pthread_mutex_unlock(&relays_lock);
            free(key);
            *out = r;
            return 0;
        }
    }
    rds__relay_t *r = xcalloc(1, sizeof(*r));
    r->key = key;
    r->host = xstrdup(u->addrs[0].host);
    r->port = u->addrs[0].port;
    unsigned char addr[sizeof(struct in6_addr)];
    r->host_is_ip = inet_pton(AF_INET, r->host, addr) == 1 || inet_pton(AF_INET6, r->host, addr) == 1;
    r->listen_fd = r->stop_fd = -1;
    r->refs = 1;
    pthread_mutex_init(&r->lock, NULL);
    int rc = TINE_EINVAL;
    r->ctx = make_ctx(u, err, errlen);
    if (r->ctx)
        rc = relay_start(r, u, err, errlen);
    if (rc != 0) {
        pthread_mutex_unlock(&relays_lock);
        relay_free(r);
        return rc;
    }
    r->next = relays;
    relays = r;
    pthread_mutex_unlock(&relays_lock);
    *out = r;
    return 0;
}

const char *rds__relay_path(const rds__relay_t *r)
{
    return r->path;
}

void rds__relay_release(rds__relay_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&relays_lock);
    if (--r->refs > 0) {
        pthread_mutex_unlock(&relays_lock);
        return;
    }
    for (rds__relay_t **p = &relays; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&relays_lock);
    uint64_t one = 1;
    (void)!write(r->stop_fd, &one, sizeof one);
    pthread_join(r->thread, NULL);
    reap_workers(r, true);
    relay_free(r);
}
