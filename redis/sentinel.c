/* Redis Sentinel, client side: the master of a redis-sentinel:// URL is the
 * server the sentinels name for its master name.
 *
 * The protocol a client follows: ask the sentinels one after the other
 * (each with a short timeout) `SENTINEL get-master-addr-by-name MASTER`,
 * connect to the address the first one that answers gives, check with ROLE
 * that it is a master (else ask again, starting with the next sentinel),
 * remember which sentinel answered (it is asked first next time), resolve
 * again on every reconnect, and follow the +switch-master announcements
 * (published on each sentinel when a failover ends) by leaving the old
 * master at once.
 *
 * Synchronous connections (sync.c) ask with rds__sentinel_ask, blocking.
 * Asynchronous ones share a resolver per loop and URL: a connection to
 * each sentinel for the questions (rounds: one out at a time, shared by
 * every connection that needs the master meanwhile), and one to each
 * subscribed to +switch-master. The resolver's connections are ordinary
 * rds_async_t (they reconnect by themselves and show in /metrics as
 * "sentinel/H:P" and "sentinel-watch/H:P"). */
#include "redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define SENTINEL_TIMEOUT_MS 500 /* connect + answer, per sentinel asked */

static uint64_t generation;

uint64_t rds__sentinel_generation(void)
{
    return __atomic_load_n(&generation, __ATOMIC_RELAXED);
}

/* "host:port" (an IPv6 address in brackets) into buf. */
static const char *addr_text(const char *host, int port, char *buf, size_t len)
{
    snprintf(buf, len, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return buf;
}

/* The master's address in SENTINEL get-master-addr-by-name's reply; 0, or
 * TINE_EREDIS with a message naming the sentinel `who`. */
static int read_master_addr(const redisReply *r, const char *who, const char *master, char **host, int *port, char *err,
                            size_t errlen)
{
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "sentinel %s knows no master named '%s'", who, master);
        return TINE_EREDIS;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "sentinel %s: %s", who, r->str);
        return TINE_EREDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING || atoi(r->element[1]->str) <= 0 ||
        atoi(r->element[1]->str) > 65535) {
        snprintf(err, errlen, "sentinel %s: unexpected answer to SENTINEL get-master-addr-by-name", who);
        return TINE_EREDIS;
    }
    *host = xstrdup(r->element[0]->str);
    *port = atoi(r->element[1]->str);
    return 0;
}

int rds__sentinel_refusal(const char *who, const char *url, bool auth, const char *reply, char *err, size_t errlen)
{
    if (auth) {
        snprintf(err, errlen, "sentinel %s refused the sentinel password of %s: %s", who, url, reply);
        return TINE_EAUTH;
    }
    if (strncmp(reply, "NOAUTH", 6) == 0) {
        snprintf(err, errlen, "sentinel %s requires a password: give it as ?sentinel_password= in %s", who, url);
        return TINE_EAUTH;
    }
    return 0;
}

/* ---------------------------------------------------------- synchronous */

int rds__sentinel_ask(const rds_url_t *u, const rds_addr_t *a, uint32_t timeout_ms, char **host, int *port, char *err,
                      size_t errlen)
{
    char who[300];
    addr_text(a->host, a->port, who, sizeof who);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "sentinel %s is unreachable: %s", who, c ? c->errstr : "out of memory");
        redisFree(c);
        return TINE_EREDIS;
    }
    redisSetTimeout(c, tv);
    int n = 0;
    if (u->sentinel_password) {
        const char *argv[] = {"AUTH", u->sentinel_user ? u->sentinel_user : u->sentinel_password, u->sentinel_password};
        int argc = u->sentinel_user ? 3 : 2;
        size_t lens[] = {4, strlen(argv[1]), strlen(argv[2])};
        redisAppendCommandArgv(c, argc, argv, lens);
        n++;
    }
    redisAppendCommand(c, "SENTINEL get-master-addr-by-name %s", u->master);
    n++;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) {
            if (rc == 0)
                snprintf(err, errlen, "sentinel %s did not answer within %u ms: %s", who, timeout_ms,
                         c->errstr[0] ? c->errstr : "no reply");
            rc = TINE_EREDIS;
            break;
        }
        redisReply *r = reply;
        bool auth = u->sentinel_password && i == 0;
        if (rc == 0 && r->type == REDIS_REPLY_ERROR)
            rc = rds__sentinel_refusal(who, u->redacted, auth, r->str, err, errlen);
        if (rc == 0 && !auth)
            rc = read_master_addr(r, who, u->master, host, port, err, errlen);
        freeReplyObject(r);
    }
    redisFree(c);
    return rc;
}

/* --------------------------------------------------------- asynchronous */

typedef struct {
    rds__resolver_t *r;
    char *host;
    int port;
    char label[300]; /* host:port */
    rds_async_t *ask, *watch;
} sentinel_t;

struct rds__query {
    rds__query_t *next;
    rds__resolver_t *r;
    rds__resolved_fn fn;
    void *data;
};

struct rds__resolver {
    rds__resolver_t *next;
    int refs;
    uv_loop_t *loop;
    char *key; /* what makes two URLs share a resolver (holds the sentinel password: never shown) */
    char *master;
    char *shown; /* the URL, redacted */
    sentinel_t *s;
    size_t n;
    size_t first; /* the sentinel asked first */
    /* the round of questions out (one at a time) */
    bool running;
    size_t at, tried;
    uint64_t seq; /* of the question out: a late answer is ignored */
    tine_buf_t errs;
    uv_timer_t kick;      /* starts a round on the next turn */
    uv_timer_t ask_timer; /* SENTINEL_TIMEOUT_MS per question */
    rds__query_t *queries, **queries_tail;
    /* what is known */
    char *cur_host; /* the master last confirmed or announced */
    int cur_port;
    uint64_t failovers;
    int open; /* timers and connections not yet closed */
    bool closing;
};

static rds__resolver_t *all_resolvers;

static void ask_next(rds__resolver_t *r);

/* One of the resolver's handles or connections closed; the last frees it. */
static void resolver_release_one(rds__resolver_t *r)
{
    if (--r->open > 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->s[i].host);
    free(r->s);
    free(r->key);
    free(r->master);
    free(r->shown);
    free(r->cur_host);
    tine_buf_dispose(&r->errs);
    free(r);
}

/* A timer of the resolver closed. */
static void on_timer_closed(uv_handle_t *h)
{
    resolver_release_one(h->data);
}

/* A connection of the resolver closed. */
static void on_conn_closed(void *data)
{
    resolver_release_one(data);
}

/* The master is host:port now, by `source`: counted as a failover when it
 * moved from another known address. */
static void master_seen(rds__resolver_t *r, const char *host, int port, const char *source)
{
    if (r->cur_host && strcmp(r->cur_host, host) == 0 && r->cur_port == port)
        return;
    char from[300], to[300];
    if (r->cur_host) {
        r->failovers++;
        __atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
        tine_log(TINE_LOG_WARN, "redis: master '%s' of %s moved from %s to %s (%s)", r->master, r->shown,
                 addr_text(r->cur_host, r->cur_port, from, sizeof from), addr_text(host, port, to, sizeof to), source);
    } else {
        tine_log(TINE_LOG_INFO, "redis: master '%s' of %s is %s (%s)", r->master, r->shown,
                 addr_text(host, port, to, sizeof to), source);
    }
    free(r->cur_host);
    r->cur_host = xstrdup(host);
    r->cur_port = port;
}

/* The round ended: every query waiting gets its answer. */
static void round_done(rds__resolver_t *r, const char *host, int port, const char *why)
{
    r->running = false;
    uv_timer_stop(&r->ask_timer);
    r->seq++;
    if (host)
        r->first = r->at;
    rds__query_t *q = r->queries;
    r->queries = NULL;
    r->queries_tail = &r->queries;
    while (q) {
        rds__query_t *next = q->next;
        rds__resolved_fn fn = q->fn;
        void *data = q->data;
        free(q);
        fn(data, host, port, why);
        q = next;
    }
}

/* Why the connection to sentinel s is down, naming the sentinel once
 * (`otherwise` when the connection has no error). */
static void connection_error(const sentinel_t *s, const char *otherwise, char *why, size_t len)
{
    const char *e = rds_async_error(s->ask);
    if (strncmp(e, "sentinel ", 9) == 0)
        snprintf(why, len, "%s", e);
    else
        snprintf(why, len, "sentinel %s: %s", s->label, e[0] ? e : otherwise);
}

/* The sentinel asked gave no usable answer (why): on to the next. */
static void ask_failed(rds__resolver_t *r, const char *why)
{
    tine_buf_appendf(&r->errs, "%s%s", r->errs.len ? "; " : "", why);
    r->seq++;
    r->at = (r->at + 1) % r->n;
    r->tried++;
    ask_next(r);
}

typedef struct {
    rds__resolver_t *r;
    uint64_t seq;
} ask_t;

/* A sentinel's answer to the question of the round (a late one, from a
 * question given up, is ignored): the round ends with the address, or goes
 * on to the next sentinel. */
static void on_ask_reply(void *data, redisReply *reply)
{
    ask_t *a = data;
    rds__resolver_t *r = a->r;
    bool current = a->seq == r->seq && r->running && !r->closing;
    free(a);
    if (!current)
        return;
    sentinel_t *s = &r->s[r->at];
    char why[512];
    if (reply == NULL) {
        connection_error(s, "the connection was lost", why, sizeof why);
        ask_failed(r, why);
        return;
    }
    char *host = NULL;
    int port = 0;
    if (read_master_addr(reply, s->label, r->master, &host, &port, why, sizeof why) != 0) {
        ask_failed(r, why);
        return;
    }
    round_done(r, host, port, NULL);
    free(host);
}

/* The sentinel asked did not answer in time: on to the next. */
static void on_ask_timeout(uv_timer_t *t)
{
    rds__resolver_t *r = t->data;
    if (!r->running || r->closing)
        return;
    char why[400];
    snprintf(why, sizeof why, "sentinel %s did not answer within %d ms", r->s[r->at].label, SENTINEL_TIMEOUT_MS);
    ask_failed(r, why);
}

/* Asks the next sentinel that is not known to be down; when every one was
 * tried, the round fails with what each said. */
static void ask_next(rds__resolver_t *r)
{
    while (r->tried < r->n) {
        sentinel_t *s = &r->s[r->at];
        if (!rds__async_failed(s->ask)) {
            ask_t *a = xmalloc(sizeof(*a));
            *a = (ask_t){r, r->seq};
            const char *argv[] = {"SENTINEL", "get-master-addr-by-name", r->master};
            size_t lens[] = {8, 23, strlen(r->master)};
            if (rds_async_command(s->ask, on_ask_reply, a, 3, argv, lens) == 0) {
                uv_update_time(r->loop);
                uv_timer_start(&r->ask_timer, on_ask_timeout, SENTINEL_TIMEOUT_MS, 0);
                return;
            }
            free(a);
        }
        char why[1024];
        connection_error(s, "not connected", why, sizeof why);
        tine_buf_appendf(&r->errs, "%s%s", r->errs.len ? "; " : "", why);
        r->at = (r->at + 1) % r->n;
        r->tried++;
    }
    char *why = xasprintf("no sentinel of %s named a master '%s': %s", r->shown, r->master,
                          r->errs.data ? r->errs.data : "none asked");
    round_done(r, NULL, 0, why);
    free(why);
}

/* Starts a round of questions when queries wait and none is out. */
static void on_kick(uv_timer_t *t)
{
    rds__resolver_t *r = t->data;
    if (r->running || r->closing || r->queries == NULL)
        return;
    r->running = true;
    r->tried = 0;
    r->at = r->first;
    r->errs.len = 0;
    if (r->errs.data)
        r->errs.data[0] = '\0';
    ask_next(r);
}

rds__query_t *rds__resolver_query(rds__resolver_t *r, rds__resolved_fn fn, void *data)
{
    rds__query_t *q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->fn = fn;
    q->data = data;
    *r->queries_tail = q;
    r->queries_tail = &q->next;
    if (!r->running)
        uv_timer_start(&r->kick, on_kick, 0, 0);
    return q;
}

void rds__resolver_cancel(rds__query_t *q)
{
    if (q == NULL)
        return;
    rds__resolver_t *r = q->r;
    for (rds__query_t **p = &r->queries; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            if (*p == NULL)
                r->queries_tail = p;
            break;
        }
    }
    free(q);
}

void rds__resolver_not_master(rds__resolver_t *r)
{
    r->first = (r->first + 1) % r->n;
}

void rds__resolver_confirmed(rds__resolver_t *r, const char *host, int port)
{
    master_seen(r, host, port, "confirmed with ROLE");
}

/* "+switch-master MASTER OLD_IP OLD_PORT NEW_IP NEW_PORT" on one sentinel. */
static void on_switch(void *data, redisReply *reply)
{
    sentinel_t *s = data;
    rds__resolver_t *r = s->r;
    if (r->closing || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[256], oh[256], nh[256];
    int op, np;
    if (sscanf(reply->element[2]->str, "%255s %255s %d %255s %d", name, oh, &op, nh, &np) != 5 ||
        strcmp(name, r->master) != 0 || np <= 0 || np > 65535)
        return;
    char source[400];
    snprintf(source, sizeof source, "+switch-master from sentinel %s", s->label);
    master_seen(r, nh, np, source);
    rds__async_master_moved(r, nh, np);
}

/* A watch connection is up: it subscribes to +switch-master. */
static void on_watch_up(void *data)
{
    sentinel_t *s = data;
    if (rds_async_subscribe(s->watch, false, "+switch-master", on_switch, s) != 0)
        tine_log(TINE_LOG_WARN, "redis: cannot subscribe to +switch-master on sentinel %s", s->label);
}

/* The key two URLs share a resolver by: the sentinels, the master, the
 * sentinels' credentials. */
static char *resolver_key(const rds_url_t *u)
{
    tine_buf_t b;
    tine_buf_init(&b);
    for (size_t i = 0; i < u->naddrs; i++)
        tine_buf_appendf(&b, "%s\n%d\n", u->addrs[i].host, u->addrs[i].port);
    tine_buf_appendf(&b, "/%s\n%s\n%s", u->master, u->sentinel_user ? u->sentinel_user : "",
                     u->sentinel_password ? u->sentinel_password : "");
    return b.data;
}

int rds__resolver_acquire(uv_loop_t *loop, const rds_url_t *u, rds__resolver_t **out, char *err, size_t errlen)
{
    char *key = resolver_key(u);
    for (rds__resolver_t *r = all_resolvers; r; r = r->next) {
        if (r->loop == loop && strcmp(r->key, key) == 0) {
            free(key);
            r->refs++;
            *out = r;
            return 0;
        }
    }
    rds__resolver_t *r = xcalloc(1, sizeof(*r));
    r->refs = 1;
    r->loop = loop;
    r->key = key;
    r->master = xstrdup(u->master);
    r->shown = xstrdup(u->redacted);
    r->queries_tail = &r->queries;
    tine_buf_init(&r->errs);
    uv_timer_init(loop, &r->kick);
    uv_timer_init(loop, &r->ask_timer);
    r->kick.data = r->ask_timer.data = r;
    r->open = 2;
    r->n = u->naddrs;
    r->s = xcalloc(r->n, sizeof(*r->s));
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i++) {
        sentinel_t *s = &r->s[i];
        s->r = r;
        s->host = xstrdup(u->addrs[i].host);
        s->port = u->addrs[i].port;
        addr_text(s->host, s->port, s->label, sizeof s->label);
        char *url = rds__url_make_tcp(s->host, s->port, u->sentinel_user, u->sentinel_password);
        char *name = xasprintf("sentinel/%s", s->label);
        rds_async_config_t ask = {.name = name,
                                  .when_down = RDS_WAIT_WHEN_DOWN,
                                  .max_waiting = 64,
                                  .max_wait_ms = SENTINEL_TIMEOUT_MS,
                                  .connect_timeout_ms = SENTINEL_TIMEOUT_MS};
        rc = rds__async_open(loop, url, &ask, true, &s->ask, err, errlen);
        free(name);
        if (rc == 0) {
            r->open++;
            name = xasprintf("sentinel-watch/%s", s->label);
            rds_async_config_t watch = {
                .name = name, .connect_timeout_ms = SENTINEL_TIMEOUT_MS, .on_connected = on_watch_up, .data = s};
            rc = rds__async_open(loop, url, &watch, true, &s->watch, err, errlen);
            free(name);
            if (rc == 0)
                r->open++;
        }
        if (url)
            explicit_bzero(url, strlen(url));
        free(url);
    }
    r->next = all_resolvers;
    all_resolvers = r;
    if (rc != 0) {
        rds__resolver_release(r);
        return rc;
    }
    *out = r;
    return 0;
}

void rds__resolver_release(rds__resolver_t *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    r->closing = true;
    for (rds__resolver_t **p = &all_resolvers; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    while (r->queries) {
        rds__query_t *q = r->queries;
        r->queries = q->next;
        free(q);
    }
    r->queries_tail = &r->queries;
    uv_timer_stop(&r->kick);
    uv_timer_stop(&r->ask_timer);
    uv_close((uv_handle_t *)&r->kick, on_timer_closed);
    uv_close((uv_handle_t *)&r->ask_timer, on_timer_closed);
    for (size_t i = 0; i < r->n; i++) {
        if (r->s[i].ask)
            rds_async_close(r->s[i].ask, false, on_conn_closed, r);
        if (r->s[i].watch)
            rds_async_close(r->s[i].watch, false, on_conn_closed, r);
        r->s[i].ask = r->s[i].watch = NULL;
    }
}

/* Appends s as a Prometheus label value (backslash and quote escaped). */
static void label(tine_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            tine_buf_append(out, "\\", 1);
        tine_buf_append(out, s, 1);
    }
}

void rds__sentinel_metrics_render(tine_buf_t *out)
{
    if (all_resolvers == NULL)
        return;
    tine_buf_appendf(out, "# HELP tine_redis_master The master this node uses, as the sentinels name it.\n"
                          "# TYPE tine_redis_master gauge\n");
    for (rds__resolver_t *r = all_resolvers; r; r = r->next) {
        if (r->cur_host == NULL)
            continue;
        char a[300];
        tine_buf_appendf(out, "tine_redis_master{master=\"");
        label(out, r->master);
        tine_buf_appendf(out, "\",address=\"%s\"} 1\n", addr_text(r->cur_host, r->cur_port, a, sizeof a));
    }
    tine_buf_appendf(out, "# HELP tine_redis_failovers_total Times this node saw the master move to another server.\n"
                          "# TYPE tine_redis_failovers_total counter\n");
    for (rds__resolver_t *r = all_resolvers; r; r = r->next) {
        tine_buf_appendf(out, "tine_redis_failovers_total{master=\"");
        label(out, r->master);
        tine_buf_appendf(out, "\"} %" PRIu64 "\n", r->failovers);
    }
}
