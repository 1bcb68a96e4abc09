/* A tiny loopback HTTP responder for the SDK unit tests: it records each
 * request (method, path, headers, body) and answers with a canned status and
 * body, one request per connection ("Connection: close"). It is not a tine
 * node: end-to-end tests against real tined live in tests/integration. */
#ifndef TINE_TEST_FAKE_NODE_H
#define TINE_TEST_FAKE_NODE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int listen_fd;
    int port;
    char url[64];
    pthread_t thread;
    pthread_mutex_t mu;
    /* canned answer */
    int status;
    char answer[8192];
    int delay_ms;
    /* last request */
    int requests;
    char method[16];
    char path[1024];
    char headers[8192]; /* raw header lines, "\r\n"-separated */
    char *body;
    size_t body_len;
} fake_node_t;

/* Returns the value of a recorded header (case-insensitive name), copied
 * into buf, or NULL when absent. */
static inline const char *fake_node_header(fake_node_t *n, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    const char *p = n->headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - p);
            snprintf(buf, len, "%.*s", (int)vl, v);
            return buf;
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

static inline void fake_node_answer(fake_node_t *n, int status, const char *body)
{
    pthread_mutex_lock(&n->mu);
    n->status = status;
    snprintf(n->answer, sizeof n->answer, "%s", body);
    pthread_mutex_unlock(&n->mu);
}

static inline void fake_node_serve_one(fake_node_t *n, int fd)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (end == NULL && len < sizeof buf - 1) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    size_t head_len = (size_t)(end - buf) + 4;
    pthread_mutex_lock(&n->mu);
    n->requests++;
    sscanf(buf, "%15s %1023s", n->method, n->path);
    const char *first_eol = strstr(buf, "\r\n");
    snprintf(n->headers, sizeof n->headers, "%.*s", (int)(end - first_eol - 2), first_eol + 2);
    char cl[32];
    size_t want = fake_node_header(n, "Content-Length", cl, sizeof cl) ? (size_t)strtoull(cl, NULL, 10) : 0;
    free(n->body);
    n->body = malloc(want + 1);
    size_t have = len - head_len < want ? len - head_len : want;
    memcpy(n->body, buf + head_len, have);
    while (have < want) {
        ssize_t r = read(fd, n->body + have, want - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    n->body[have] = '\0';
    n->body_len = have;
    int status = n->status;
    char answer[sizeof n->answer];
    memcpy(answer, n->answer, sizeof answer);
    int delay = n->delay_ms;
    pthread_mutex_unlock(&n->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *ctype = answer[0] == '{' ? "application/json" : "text/plain";
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                      ctype, strlen(answer));
    /* The client may have given up (timeout tests): no SIGPIPE for that. */
    if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) < 0 || send(fd, answer, strlen(answer), MSG_NOSIGNAL) < 0)
        return;
}

static inline void *fake_node_main(void *arg)
{
    fake_node_t *n = arg;
    for (;;) {
        int fd = accept(n->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL; /* shutdown() by fake_node_stop */
        fake_node_serve_one(n, fd);
        close(fd);
    }
}

/* Starts a responder on a free loopback port answering 200 {}. */
static inline fake_node_t *fake_node_start(void)
{
    fake_node_t *n = calloc(1, sizeof *n);
    pthread_mutex_init(&n->mu, NULL);
    n->status = 200;
    strcpy(n->answer, "{}");
    n->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(n->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(n->listen_fd, 16) != 0 ||
        getsockname(n->listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("fake node");
        abort();
    }
    n->port = ntohs(sa.sin_port);
    snprintf(n->url, sizeof n->url, "http://127.0.0.1:%d", n->port);
    pthread_create(&n->thread, NULL, fake_node_main, n);
    return n;
}

static inline void fake_node_stop(fake_node_t *n)
{
    shutdown(n->listen_fd, SHUT_RDWR);
    pthread_join(n->thread, NULL);
    close(n->listen_fd);
    free(n->body);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

/* A loopback port nothing listens on (bound, then closed). */
static inline int fake_node_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

#endif
