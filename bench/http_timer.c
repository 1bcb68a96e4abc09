/* http-timer: times HTTP/1.1 requests over plain loopback sockets for the
 * benchmark harness (bench/run). No HTTP library sits in the timed part: one
 * sample is connect (or reuse), send, and read until the response is
 * complete, measured with CLOCK_MONOTONIC.
 *
 * One sample, repeated --runs times after --warmup untimed ones:
 *   untimed:  --evict URL (DELETE with the --token, must answer 200),
 *             --prepare CMD (sh -c, must exit 0)
 *   timed:    --timed-cmd CMD (sh -c, must exit 0),
 *             the request itself (must be 2xx and contain --expect),
 *             --until URL (GET, repeated until its body contains --until-expect)
 * In --body, --expect and --until-expect "{i}" is replaced by the sample's
 * index from 0 (warm-up samples included) and "{n}" by index + 1, so every
 * sample can carry and look for its own marker. --token goes with the timed
 * request and the --until polls only when --auth is given. --reuse keeps one
 * keep-alive connection for all samples; --poll repeats the timed request
 * until it succeeds (for at most 10 s).
 *
 * Prints one line, "runs=N min_us=.. p50_us=.. p90_us=.. p99_us=.. max_us=..
 * mean_us=..", and exits 0; on the first failure it says which sample and
 * what went wrong on stderr and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 15000
#define POLL_DEADLINE_NS (10ull * 1000000000ull)

typedef struct {
    char host[256];
    char port[16];
    char target[2048];
} url_t;

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

/* One client connection; `in` keeps bytes read past the current response. */
typedef struct {
    int fd;
    buf_t in;
} conn_t;

typedef struct {
    int status;
    int keep_alive;
    buf_t body;
} response_t;

typedef struct {
    const char *url, *method, *body, *content_type, *token, *expect;
    const char *evict_url, *prepare_cmd, *timed_cmd, *until_url, *until_expect;
    int runs, warmup, reuse, poll, auth;
} options_t;

static char err_msg[512];

/* Records a failure message for the caller to report; always returns -1. */
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Appends n bytes, growing the buffer; aborts when memory runs out. */
static void buf_append(buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            fputs("http-timer: out of memory\n", stderr);
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Drops the first n bytes. */
static void buf_consume(buf_t *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->data)
        b->data[b->len] = '\0';
}

/* Parses http://HOST[:PORT]/TARGET (HOST may be [v6]); 0 or -1 with a message. */
static int url_parse(const char *s, url_t *u)
{
    if (strncmp(s, "http://", 7) != 0)
        return fail("%s: only http:// URLs are supported", s);
    const char *h = s + 7, *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    const char *host = h, *host_end = end, *port = NULL;
    if (*h == '[') { /* [v6]:port */
        host = h + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return fail("%s: unclosed [", s);
        if (host_end + 1 < end && host_end[1] == ':')
            port = host_end + 2;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        if (colon) {
            host_end = colon;
            port = colon + 1;
        }
    }
    size_t hlen = (size_t)(host_end - host), plen = port ? (size_t)(end - port) : 0;
    if (hlen == 0 || hlen >= sizeof(u->host) || plen >= sizeof(u->port) || (port && plen == 0))
        return fail("%s: bad host or port", s);
    snprintf(u->host, sizeof(u->host), "%.*s", (int)hlen, host);
    snprintf(u->port, sizeof(u->port), "%.*s", (int)plen, port ? port : "");
    if (port == NULL)
        snprintf(u->port, sizeof(u->port), "80");
    snprintf(u->target, sizeof(u->target), "%s", slash ? slash : "/");
    return 0;
}

/* Opens a TCP connection with Nagle off; 0 or -1 with a message. */
static int conn_open(conn_t *c, const url_t *u)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int r = getaddrinfo(u->host, u->port, &hints, &ai);
    if (r != 0)
        return fail("resolving %s:%s: %s", u->host, u->port, gai_strerror(r));
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int e = errno;
        freeaddrinfo(ai);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return fail("connecting to %s:%s: %s", u->host, u->port, strerror(e));
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->in.len = 0;
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Writes all of p or fails with a message. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return fail("sending the request: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into c->in; 1 on data, 0 on EOF, -1 on error or timeout. */
static int conn_fill(conn_t *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int r = poll(&pfd, 1, IO_TIMEOUT_MS);
    if (r == 0)
        return fail("no answer within %d ms", IO_TIMEOUT_MS);
    if (r < 0)
        return fail("poll: %s", strerror(errno));
    char tmp[16384];
    ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
    if (n < 0)
        return fail("reading the response: %s", strerror(errno));
    buf_append(&c->in, tmp, (size_t)n);
    return n > 0;
}

/* Finds header `name` in the head [p, end); copies its value. */
static int header_value(const char *p, const char *end, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            snprintf(out, outlen, "%.*s", (int)vlen, v);
            return 1;
        }
        line = eol + 1;
    }
    return 0;
}

/* Reads a chunked body from c->in (refilling as needed) into res->body. */
static int read_chunked(conn_t *c, response_t *res)
{
    for (;;) {
        char *eol;
        while ((eol = strstr(c->in.data ? c->in.data : "", "\r\n")) == NULL)
            if (conn_fill(c) <= 0)
                return fail("connection ended inside a chunked body");
        size_t size = strtoul(c->in.data, NULL, 16);
        size_t line = (size_t)(eol - c->in.data) + 2;
        while (c->in.len < line + size + 2)
            if (conn_fill(c) <= 0)
                return fail("connection ended inside a chunk");
        buf_append(&res->body, c->in.data + line, size);
        buf_consume(&c->in, line + size + 2);
        if (size == 0)
            return 0; /* no trailers are sent by the servers measured here */
    }
}

/* Reads one complete response (Content-Length, chunked or until EOF). */
static int read_response(conn_t *c, response_t *res)
{
    char *head_end;
    res->body.len = 0;
    while ((head_end = strstr(c->in.data ? c->in.data : "", "\r\n\r\n")) == NULL) {
        int r = conn_fill(c);
        if (r <= 0)
            return r == 0 ? fail("connection closed before a complete response head") : -1;
    }
    size_t head_len = (size_t)(head_end - c->in.data) + 4;
    if (sscanf(c->in.data, "HTTP/1.%*d %d", &res->status) != 1)
        return fail("not an HTTP/1.x response: %.40s", c->in.data);
    char v[64];
    int chunked = header_value(c->in.data, head_end, "transfer-encoding", v, sizeof(v)) && strcasecmp(v, "chunked") == 0;
    int has_len = header_value(c->in.data, head_end, "content-length", v, sizeof(v));
    size_t len = has_len ? strtoul(v, NULL, 10) : 0;
    res->keep_alive = !(header_value(c->in.data, head_end, "connection", v, sizeof(v)) && strcasecmp(v, "close") == 0);
    buf_consume(&c->in, head_len);
    if (res->status == 204 || res->status == 304 || res->status < 200)
        return 0; /* no body, whatever the headers say */
    if (chunked)
        return read_chunked(c, res);
    if (!has_len) {
        int r;
        while ((r = conn_fill(c)) > 0)
            ;
        if (r < 0)
            return -1;
        len = c->in.len;
        res->keep_alive = 0;
    }
    while (c->in.len < len)
        if (conn_fill(c) <= 0)
            return fail("connection ended %zu bytes into a %zu-byte body", c->in.len, len);
    buf_append(&res->body, c->in.data, len);
    buf_consume(&c->in, len);
    return 0;
}

/* Sends one request on c (opening it when closed) and reads the answer. */
static int exchange(conn_t *c, const url_t *u, const char *method, const char *token, const char *ctype,
                    const char *body, int keep, response_t *res)
{
    if (c->fd < 0 && conn_open(c, u) != 0)
        return -1;
    buf_t head = {0};
    size_t blen = body ? strlen(body) : 0;
    char line[512];
    buf_append(&head, method, strlen(method));
    buf_append(&head, " ", 1);
    buf_append(&head, u->target, strlen(u->target));
    snprintf(line, sizeof(line), " HTTP/1.1\r\nHost: %s:%s\r\nConnection: %s\r\n", u->host, u->port,
             keep ? "keep-alive" : "close");
    buf_append(&head, line, strlen(line));
    if (token) {
        buf_append(&head, "Authorization: Bearer ", 22);
        buf_append(&head, token, strlen(token));
        buf_append(&head, "\r\n", 2);
    }
    if (body) {
        snprintf(line, sizeof(line), "Content-Type: %.200s\r\nContent-Length: %zu\r\n",
                 ctype ? ctype : "application/json", blen);
        buf_append(&head, line, strlen(line));
    }
    buf_append(&head, "\r\n", 2);
    int r = write_all(c->fd, head.data, head.len);
    free(head.data);
    if (r != 0 || (blen && write_all(c->fd, body, blen) != 0) ||
        read_response(c, res) != 0) {
        conn_close(c);
        return -1;
    }
    if (!keep || !res->keep_alive)
        conn_close(c);
    return 0;
}

/* Returns s with "{i}" replaced by i and "{n}" by i + 1, in a static buffer
 * per slot (so up to three expansions can be alive at once). */
static const char *with_index(const char *s, int i, int slot)
{
    static char out[3][8192];
    if (s == NULL)
        return NULL;
    size_t o = 0, cap = sizeof(out[slot]);
    for (const char *p = s; *p && o + 16 < cap; p++) {
        if (strncmp(p, "{i}", 3) == 0 || strncmp(p, "{n}", 3) == 0) {
            o += (size_t)snprintf(out[slot] + o, cap - o, "%d", p[1] == 'i' ? i : i + 1);
            p += 2;
        } else {
            out[slot][o++] = *p;
        }
    }
    out[slot][o] = '\0';
    return out[slot];
}

/* Runs `sh -c cmd` with stdout on /dev/null; 0 when it exits 0. */
static int run_shell(const char *cmd)
{
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork: %s", strerror(errno));
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fail("command failed (status %d): %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, cmd);
    return 0;
}

/* Is res a 2xx whose body contains want (when given)? */
static int response_ok(const response_t *res, const char *want)
{
    return res->status >= 200 && res->status < 300 && (want == NULL || strstr(res->body.data ? res->body.data : "", want));
}

static int describe_bad(const response_t *res, const char *what, const char *want)
{
    return fail("%s answered %d, body \"%.80s\"%s%s", what, res->status, res->body.data ? res->body.data : "",
                want ? ", expected it to contain " : "", want ? want : "");
}

/* GETs `url` on conn c until its body contains want, for at most 10 s. */
static int poll_until(conn_t *c, const url_t *u, const char *token, const char *want, response_t *res)
{
    uint64_t deadline = now_ns() + POLL_DEADLINE_NS;
    for (;;) {
        if (exchange(c, u, "GET", token, NULL, NULL, 1, res) != 0)
            return -1;
        if (response_ok(res, want))
            return 0;
        if (now_ns() > deadline)
            return describe_bad(res, "the --until URL", want);
    }
}

/* The untimed steps before sample i. */
static int before_sample(const options_t *o, const url_t *evict)
{
    if (o->evict_url) {
        conn_t ec = {.fd = -1};
        response_t res = {0};
        int r = exchange(&ec, evict, "DELETE", o->token, NULL, NULL, 0, &res);
        if (r == 0 && res.status != 200)
            r = describe_bad(&res, "the eviction endpoint", NULL);
        free(res.body.data);
        free(ec.in.data);
        if (r != 0)
            return -1;
    }
    return o->prepare_cmd ? run_shell(o->prepare_cmd) : 0;
}

/* One timed sample: its duration in ns goes to *out. */
static int timed_sample(const options_t *o, int i, const url_t *u, const url_t *until, conn_t *c, conn_t *uc,
                        response_t *res, uint64_t *out)
{
    const char *want = with_index(o->expect, i, 0);
    uint64_t t0 = now_ns();
    if (o->timed_cmd && run_shell(o->timed_cmd) != 0)
        return -1;
    uint64_t deadline = t0 + POLL_DEADLINE_NS;
    for (;;) {
        if (exchange(c, u, o->method, o->auth ? o->token : NULL, o->content_type, with_index(o->body, i, 1), o->reuse, res) != 0)
            return -1;
        if (response_ok(res, want))
            break;
        if (!o->poll || now_ns() > deadline)
            return describe_bad(res, o->url, want);
    }
    if (o->until_url && poll_until(uc, until, o->auth ? o->token : NULL, with_index(o->until_expect, i, 2), res) != 0)
        return -1;
    *out = now_ns() - t0;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_us(const uint64_t *v, int n, double q)
{
    int k = (int)(q * n + 0.999999);
    if (k < 1)
        k = 1;
    return (double)v[k > n ? n - 1 : k - 1] / 1000.0;
}

static void print_summary(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)v[i];
    printf("runs=%d min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n", n, pct_us(v, n, 0),
           pct_us(v, n, 0.50), pct_us(v, n, 0.90), pct_us(v, n, 0.99), pct_us(v, n, 1.0), sum / n / 1000.0);
}

static void usage(FILE *f)
{
    fputs("usage: http-timer URL [--runs N] [--warmup N] [--method M] [--body S] [--content-type T]\n"
          "                  [--token T] [--auth] [--expect S] [--reuse] [--poll] [--evict URL] [--prepare CMD]\n"
          "                  [--timed-cmd CMD] [--until URL --until-expect S]\n",
          f);
}

/* Parses argv into o; 0, or 2 on a usage error (reported). */
static int parse_args(int argc, char **argv, options_t *o)
{
    *o = (options_t){.method = "GET", .runs = 100};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = NULL;
        if (strcmp(a, "--reuse") == 0) {
            o->reuse = 1;
            continue;
        }
        if (strcmp(a, "--poll") == 0 || strcmp(a, "--auth") == 0) {
            *(a[2] == 'p' ? &o->poll : &o->auth) = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            o->url = a;
            continue;
        }
        static const char *names[] = {"--method", "--body", "--content-type", "--token", "--expect", "--evict",
                                      "--prepare", "--timed-cmd", "--until", "--until-expect"};
        const char **slots[] = {&o->method, &o->body, &o->content_type, &o->token, &o->expect, &o->evict_url,
                                &o->prepare_cmd, &o->timed_cmd, &o->until_url, &o->until_expect};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(a, names[k]) == 0)
                str = slots[k];
        if (v == NULL || (str == NULL && strcmp(a, "--runs") != 0 && strcmp(a, "--warmup") != 0)) {
            fprintf(stderr, "http-timer: %s: %s\n", a, v ? "unknown option" : "needs a value");
            usage(stderr);
            return 2;
        }
        if (str)
            *str = v;
        else if (strcmp(a, "--runs") == 0)
            o->runs = atoi(v);
        else
            o->warmup = atoi(v);
        i++;
    }
    if (o->url == NULL || o->runs < 1 || o->warmup < 0 || (o->until_url != NULL) != (o->until_expect != NULL)) {
        fputs("http-timer: needs a URL, --runs >= 1, and --until with --until-expect\n", stderr);
        usage(stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t o;
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return r;
    url_t u, evict = {0}, until = {0};
    if (url_parse(o.url, &u) != 0 || (o.evict_url && url_parse(o.evict_url, &evict) != 0) ||
        (o.until_url && url_parse(o.until_url, &until) != 0)) {
        fprintf(stderr, "http-timer: %s\n", err_msg);
        return 2;
    }
    uint64_t *samples = calloc((size_t)o.runs, sizeof(*samples));
    conn_t c = {.fd = -1}, uc = {.fd = -1};
    response_t res = {0};
    int total = o.warmup + o.runs;
    for (int i = 0; i < total && r == 0; i++) {
        uint64_t ns = 0;
        r = before_sample(&o, &evict) == 0 ? timed_sample(&o, i, &u, &until, &c, &uc, &res, &ns) : -1;
        if (r != 0)
            fprintf(stderr, "http-timer: %s sample %d: %s\n", o.url, i, err_msg);
        else if (i >= o.warmup)
            samples[i - o.warmup] = ns;
    }
    if (r == 0)
        print_summary(samples, o.runs);
    conn_close(&c);
    conn_close(&uc);
    free(c.in.data);
    free(uc.in.data);
    free(res.body.data);
    free(samples);
    return r == 0 ? 0 : 1;
}
