/* Asynchronous connections on a libuv loop that recover from any outage.
 *
 * A connection is a small state machine: DOWN (a retry timer armed) ->
 * [RESOLVING (Sentinel URLs: the resolver of sentinel.c asks the sentinels
 * for the master)] -> CONNECTING (hiredis connects, a deadline timer
 * armed) -> LOGIN (AUTH, SELECT, CLIENT SETNAME, ROLE sent, nothing else;
 * ROLE must say master) -> UP (commands flow; waiting ones are sent first,
 * then the owner's on_connected runs) -> DOWN again when it is lost, with
 * exponential backoff and jitter between attempts. A connection that must
 * leave its server (the sentinels moved the master, a READONLY answer) is
 * dropped from a zero timer, never inside a hiredis callback of its own.
 *
 * Write barriers (rds_async_wait_replicas) are grouped: one WAIT out at a
 * time per connection; barriers asked meanwhile wait for it and share the
 * next. The master's count of replicas comes from ROLE at login and is
 * asked again (before a barrier) once a second, and at once after a WAIT
 * that no replica confirmed; with none, a barrier is a PING (it still
 * answers after the writes before it).
 *
 * hiredis 0.14 is attached to the loop by our own adapter, not the one in
 * hiredis/adapters/libuv.h: when libuv reports an error condition on the
 * socket (POLLERR: a refused TCP connect, a reset), it stops watching and
 * calls back with a negative status, which that adapter ignores; hiredis
 * then never learns that the connect failed, its connect callback never
 * runs and the connection hangs for good. Ours hands the event to hiredis,
 * which reads the socket's error and fails the connect properly. A
 * deadline covers connects and logins that never answer.
 *
 * A server can also stop answering with the connection still open (a hung
 * or frozen process, a network that drops packets: TCP keepalives may go
 * on being answered by the kernel). So a connection that has the owner's
 * commands in flight and no reply for reply_timeout_ms is dropped like a
 * lost one (those commands get their NULL reply) and made again: nobody
 * waits for an answer that will not come. Subscriptions and barriers are
 * not timed (silence is normal for them; a WAIT has its own timeout). */
#include "redis_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <uv.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_BACKOFF_MIN_MS 50
#define DEFAULT_BACKOFF_MAX_MS 2000
#define DEFAULT_MAX_WAITING 10000
#define DRAIN_TIMEOUT_MS 2000
#define DEFAULT_REPLY_TIMEOUT_MS 3000
#define ROLE_REFRESH_MS 1000 /* how old the count of replicas may be when a barrier is asked */

typedef enum { ST_DOWN, ST_RESOLVING, ST_CONNECTING, ST_LOGIN, ST_UP, ST_CLOSED } state_t;

/* A write barrier waiting for its WAIT (or PING). */
typedef struct barrier {
    struct barrier *next;
    rds_done_fn fn;
    void *data;
} barrier_t;

/* A command waiting for the connection (RDS_WAIT_WHEN_DOWN). */
typedef struct waiting {
    struct waiting *next;
    uint64_t since; /* uv_now when it began to wait */
    char *cmd;
    size_t len;
    rds_reply_fn fn;
    void *data;
} waiting_t;

/* The owner's callback of one command sent to hiredis. */
typedef struct {
    rds_reply_fn fn;
    void *data;
    bool subscription; /* called for every message until NULL */
} pending_t;

/* hiredis's event hooks on one context: a uv_poll_t on its socket. */
typedef struct {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    rds_async_t *conn;
    int events;
} adapter_t;

struct rds_async {
    rds_async_t *next_all, **prev_all; /* every open connection (metrics) */
    uv_loop_t *loop;
    rds__target_t target;
    rds_async_config_t cfg;
    char *name;
    state_t state;
    redisAsyncContext *ac; /* the current context, NULL while down */
    int login_left;        /* replies of the login still awaited */
    uv_timer_t retry;      /* next attempt */
    uv_timer_t deadline;   /* connect + login, or a drain */
    uv_timer_t wait_timer; /* the oldest waiting command's max_wait_ms */
    uv_timer_t reply_timer;  /* commands in flight with no reply for reply_timeout_ms */
    size_t outstanding;      /* the owner's commands sent on this context, not answered yet */
    uint64_t last_progress;  /* uv_now when the last of them was answered (or the first sent) */
    unsigned attempt;      /* failed attempts since it was last up */
    uint64_t connects, reconnects;
    bool warned; /* the outage was logged */
    char error[2048];
    waiting_t *waiting, **waiting_tail;
    size_t nwaiting;
    int open; /* timers and adapters not yet closed */
    bool closing, draining, timers_closed;
    void (*on_closed)(void *data);
    void *closed_data;
    uint64_t rng;
    /* where it dials */
    bool want_sentinel;        /* the server must be a sentinel (the resolver's connections) */
    const char *kind;          /* how messages name the server: "redis at" or "sentinel" */
    rds__resolver_t *resolver; /* Sentinel URLs: who names the master */
    rds__query_t *query;       /* the question out (RESOLVING) */
    char *host;                /* the address dialed (TCP), NULL for a socket */
    int port;
    char addr[300];  /* host:port or the socket's path */
    char shown[700]; /* the server as messages name it */
    /* the server's replicas, for barriers */
    int replicas;
    uint64_t role_at;                     /* uv_now when ROLE last answered */
    bool role_stale;                      /* a WAIT was not confirmed: ask ROLE before the next */
    barrier_t *bar_next, **bar_next_tail; /* not sent yet */
    barrier_t *bar_sent;                  /* the group of the WAIT or PING out */
    bool bar_busy;                        /* a ROLE, WAIT or PING of the barriers is out */
    uint64_t unconfirmed;                 /* barriers answered as failed */
    bool drop_pending;                    /* leave the server from the retry timer */
    char drop_why[2048];
};

static rds_async_t *all_conns;
static char client_prefix[64] = "tine";

/* The login's commands, named in its replies' private data; the barriers'. */
static char auth_name[] = "AUTH", select_name[] = "SELECT", setname_name[] = "CLIENT SETNAME", role_name[] = "ROLE";
static char wait_name[] = "WAIT", ping_name[] = "PING";

static void conn_start(rds_async_t *c);
static void on_retry(uv_timer_t *t);

/* ------------------------------------------------------------- lifetime */

/* One handle of the connection closed; the last frees it. */
static void conn_release(rds_async_t *c)
{
    if (--c->open > 0)
        return;
    void (*cb)(void *) = c->on_closed;
    void *data = c->closed_data;
    rds__target_dispose(&c->target);
    free(c->name);
    free(c->host);
    free(c);
    if (cb)
        cb(data);
}

/* A timer of the connection closed. */
static void on_timer_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

/* Closing, and hiredis let go of the context: the timers go. */
static void conn_finish_close(rds_async_t *c)
{
    if (c->timers_closed || c->ac != NULL)
        return;
    c->timers_closed = true;
    uv_close((uv_handle_t *)&c->retry, on_timer_closed);
    uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
    uv_close((uv_handle_t *)&c->wait_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->reply_timer, on_timer_closed);
}

/* ------------------------------------------------------------- adapter */

/* The socket is ready (or failed): hiredis reads and writes; after an error,
 * watching resumes for what hiredis still wants. */
static void adapter_on_poll(uv_poll_t *h, int status, int events)
{
    adapter_t *a = h->data;
    redisAsyncContext *ac = a->ac;
    if (ac == NULL)
        return;
    /* libuv stopped the handle on an error condition: let hiredis read the
     * socket's error (a refused connect, a reset) instead of dropping it. */
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    if (events & UV_READABLE)
        redisAsyncHandleRead(ac);
    if (a->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(ac);
    if (status < 0 && a->ac != NULL && a->events)
        uv_poll_start(&a->poll, a->events, adapter_on_poll);
}

/* Watches the socket for `events` (none: stops). */
static void adapter_update(adapter_t *a, int events)
{
    a->events = events;
    if (events)
        uv_poll_start(&a->poll, events, adapter_on_poll);
    else
        uv_poll_stop(&a->poll);
}

/* hiredis's four hooks: start or stop watching for reading or writing. */
static void adapter_add_read(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events | UV_READABLE);
}

static void adapter_del_read(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events & ~UV_READABLE);
}

static void adapter_add_write(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events | UV_WRITABLE);
}

static void adapter_del_write(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events & ~UV_WRITABLE);
}

/* The poll handle closed: the adapter goes, and counts out of the connection. */
static void adapter_on_closed(uv_handle_t *h)
{
    adapter_t *a = h->data;
    rds_async_t *c = a->conn;
    free(a);
    conn_release(c);
}

/* hiredis frees the context: stop watching its socket (closed right after). */
static void adapter_cleanup(void *p)
{
    adapter_t *a = p;
    a->ac = NULL;
    uv_close((uv_handle_t *)&a->poll, adapter_on_closed);
}

/* Hooks hiredis's context to the loop through a new adapter. Returns 0 or a
 * libuv error. */
static int adapter_attach(rds_async_t *c, redisAsyncContext *ac)
{
    adapter_t *a = xcalloc(1, sizeof(*a));
    int rc = uv_poll_init(c->loop, &a->poll, ac->c.fd);
    if (rc != 0) {
        free(a);
        return rc;
    }
    a->poll.data = a;
    a->ac = ac;
    a->conn = c;
    c->open++;
    ac->ev.data = a;
    ac->ev.addRead = adapter_add_read;
    ac->ev.delRead = adapter_del_read;
    ac->ev.addWrite = adapter_add_write;
    ac->ev.delWrite = adapter_del_write;
    ac->ev.cleanup = adapter_cleanup;
    return 0;
}

/* ------------------------------------------------------------ attempts */

/* The next number of the connection's xorshift64 generator (backoff jitter
 * only). */
static uint64_t next_random(rds_async_t *c)
{
    /* xorshift64: jitter only, no secrets. */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

/* Arms the next attempt: min * 2^attempt up to max, drawn in [d/2, d]. */
static void schedule_retry(rds_async_t *c)
{
    uint64_t d = c->cfg.backoff_min_ms;
    for (unsigned i = 0; i < c->attempt && d < c->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > c->cfg.backoff_max_ms)
        d = c->cfg.backoff_max_ms;
    d = d / 2 + next_random(c) % (d / 2 + 1);
    c->attempt++;
    uv_timer_start(&c->retry, on_retry, d, 0);
}

/* Answers every barrier not yet answered with a failure. */
static void barriers_fail_all(rds_async_t *c, const char *why)
{
    barrier_t *lists[2] = {c->bar_sent, c->bar_next};
    c->bar_sent = c->bar_next = NULL;
    c->bar_next_tail = &c->bar_next;
    c->bar_busy = false;
    for (int i = 0; i < 2; i++) {
        for (barrier_t *b = lists[i], *next; b; b = next) {
            next = b->next;
            c->unconfirmed++;
            b->fn(b->data, TINE_EREDIS, why);
            free(b);
        }
    }
}

#define LOST_BEFORE_CONFIRMED "the connection to redis was lost before the write was confirmed"

/* Lets go of the current context ourselves (its callbacks, run with no
 * reply, find it detached); barriers still out fail after them. */
static void drop_context(rds_async_t *c)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    c->ac = NULL;
    c->outstanding = 0; /* what was in flight gets its NULL reply in redisAsyncFree */
    uv_timer_stop(&c->reply_timer);
    ac->data = NULL;
    redisAsyncFree(ac);
    barriers_fail_all(c, LOST_BEFORE_CONFIRMED);
}

/* An attempt failed (the context is gone or detached): say so once per
 * outage, then try again later. */
static void attempt_failed(rds_async_t *c, const char *why)
{
    uv_timer_stop(&c->deadline);
    c->state = ST_DOWN;
    snprintf(c->error, sizeof c->error, "%s", why);
    if (!c->warned)
        tine_log(TINE_LOG_WARN, "redis: %s connection: %s; retrying", c->name, why);
    else
        tine_log(TINE_LOG_DEBUG, "redis: %s connection: %s; retrying", c->name, why);
    c->warned = true;
    schedule_retry(c);
}

/* The connection must leave its server (why): dropped from the retry
 * timer, on the next turn, and it connects again at once. */
static void conn_drop_later(rds_async_t *c, const char *why)
{
    if (c->state != ST_UP || c->closing)
        return;
    c->drop_pending = true;
    snprintf(c->drop_why, sizeof c->drop_why, "%s", why);
    uv_timer_start(&c->retry, on_retry, 0, 0);
}

/* A reply (or NULL) for one of the owner's commands. */
static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    pending_t *p = priv;
    rds_reply_fn fn = p->fn;
    void *data = p->data;
    bool timed = !p->subscription;
    if (!p->subscription || reply == NULL)
        free(p);
    rds_async_t *c = ac->data;
    redisReply *r = reply;
    if (timed && c && c->ac == ac && c->outstanding > 0) {
        c->last_progress = uv_now(c->loop);
        if (--c->outstanding == 0)
            uv_timer_stop(&c->reply_timer);
    }
    /* The server became a replica under us (a failover that did not close
     * our connection): find the master again. */
    if (c && c->ac == ac && r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0) {
        char why[1100];
        snprintf(why, sizeof why, "redis at %s answered READONLY (it is a replica now): %.300s", c->shown, r->str);
        conn_drop_later(c, why);
    }
    if (fn)
        fn(data, reply);
}

/* Commands have been in flight a while: unless one was answered within
 * reply_timeout_ms, the server stopped answering and the connection is
 * dropped (on the next turn, as a READONLY answer drops it). */
static void on_reply_timer(uv_timer_t *t)
{
    rds_async_t *c = t->data;
    if (c->outstanding == 0 || c->state != ST_UP || c->closing)
        return;
    uint64_t now = uv_now(c->loop), quiet = now - c->last_progress;
    if (quiet < c->cfg.reply_timeout_ms) {
        uv_timer_start(&c->reply_timer, on_reply_timer, c->cfg.reply_timeout_ms - quiet, 0);
        return;
    }
    char why[1100];
    snprintf(why, sizeof why, "%s %s answered none of %zu commands within %u ms", c->kind, c->shown, c->outstanding,
             c->cfg.reply_timeout_ms);
    conn_drop_later(c, why);
}

/* Sends a command in RESP to the current context. Returns 0 or -1 (then
 * nothing was kept). */
static int send_now(rds_async_t *c, rds_reply_fn fn, void *data, const char *cmd, size_t len)
{
    pending_t *p = xmalloc(sizeof(*p));
    *p = (pending_t){fn, data, false};
    if (redisAsyncFormattedCommand(c->ac, on_reply, p, cmd, len) != REDIS_OK) {
        free(p);
        return -1;
    }
    if (c->outstanding++ == 0) {
        c->last_progress = uv_now(c->loop);
        if (c->cfg.reply_timeout_ms != RDS_NO_REPLY_TIMEOUT)
            uv_timer_start(&c->reply_timer, on_reply_timer, c->cfg.reply_timeout_ms, 0);
    }
    return 0;
}

/* Takes the oldest waiting command off the queue. */
static waiting_t *waiting_pop(rds_async_t *c)
{
    waiting_t *w = c->waiting;
    if (w == NULL)
        return NULL;
    c->waiting = w->next;
    if (c->waiting == NULL)
        c->waiting_tail = &c->waiting;
    c->nwaiting--;
    return w;
}

/* Fails (NULL reply) the waiting commands past max_wait_ms, then arms the
 * timer for the next one. */
static void on_wait_timer(uv_timer_t *t)
{
    rds_async_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    while (c->waiting && c->waiting->since + c->cfg.max_wait_ms <= now) {
        waiting_t *w = waiting_pop(c);
        if (w->fn)
            w->fn(w->data, NULL);
        free(w->cmd);
        free(w);
    }
    if (c->waiting && !c->closing)
        uv_timer_start(&c->wait_timer, on_wait_timer, c->waiting->since + c->cfg.max_wait_ms - now, 0);
}

/* The login replied: the connection is up. Waiting commands go first, in
 * order, then the owner hears of it. */
static void conn_up(rds_async_t *c)
{
    uv_timer_stop(&c->deadline);
    c->state = ST_UP;
    c->attempt = 0;
    c->error[0] = '\0';
    if (c->connects++ > 0)
        c->reconnects++;
    if (c->warned)
        tine_log(TINE_LOG_INFO, "redis: %s connection to %s is up again", c->name, c->shown);
    c->warned = false;
    uv_timer_stop(&c->wait_timer);
    while (c->waiting && c->state == ST_UP) {
        waiting_t *w = waiting_pop(c);
        if (send_now(c, w->fn, w->data, w->cmd, w->len) != 0 && w->fn)
            w->fn(w->data, NULL);
        free(w->cmd);
        free(w);
    }
    if (c->state == ST_UP && c->cfg.on_connected)
        c->cfg.on_connected(c->cfg.data);
}

/* A reply to AUTH, SELECT, CLIENT SETNAME or ROLE (priv names which): an
 * error (but SETNAME's: the name is a courtesy) or a server that is not a
 * master ends the attempt, the last one brings the connection up. */
static void on_login_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rds_async_t *c = ac->data;
    redisReply *r = reply;
    /* No reply: the context is going away, and its disconnect (or whoever
     * dropped it) takes it from here. */
    if (c == NULL || c->ac != ac || c->state != ST_LOGIN || r == NULL)
        return;
    char why[1024];
    /* The resolver's connections stand for the redis-sentinel:// URL, whose
     * sentinel_password is what a refusing sentinel lacks. */
    if (c->want_sentinel && r->type == REDIS_REPLY_ERROR &&
        rds__sentinel_refusal(c->addr, "the redis-sentinel:// URL", priv == auth_name, r->str, why, sizeof why) != 0) {
        drop_context(c);
        attempt_failed(c, why);
        return;
    }
    if (priv == role_name) {
        int replicas = 0;
        if (rds__check_role(&c->target.url, c->addr, r, c->want_sentinel, &replicas, why, sizeof why) != 0) {
            if (c->resolver)
                rds__resolver_not_master(c->resolver);
            drop_context(c);
            attempt_failed(c, why);
            return;
        }
        c->replicas = replicas;
        c->role_at = uv_now(c->loop);
        c->role_stale = false;
    } else if (r->type == REDIS_REPLY_ERROR && priv != setname_name) {
        rds__explain_setup_error(&c->target.url, priv, r->str, why, sizeof why);
        drop_context(c);
        attempt_failed(c, why);
        return;
    }
    if (--c->login_left == 0) {
        if (c->resolver)
            rds__resolver_confirmed(c->resolver, c->host, c->port);
        conn_up(c);
    }
}

/* hiredis connected the socket (then the login starts) or failed to. */
static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rds_async_t *c = ac->data;
    if (c == NULL)
        return;
    if (status != REDIS_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s %s is unreachable: %s", c->kind, c->shown,
                 ac->errstr[0] ? ac->errstr : "connect failed");
        c->ac = NULL; /* hiredis frees it after this callback */
        attempt_failed(c, why);
        return;
    }
    if (c->host)
        redisEnableKeepAlive(&ac->c);
    c->state = ST_LOGIN;
    c->login_left = 0;
    const char *argv[3];
    size_t lens[3];
    int n = rds__auth_argv(&c->target.url, argv, lens);
    if (n > 0 && redisAsyncCommandArgv(ac, on_login_reply, auth_name, n, argv, lens) == REDIS_OK)
        c->login_left++;
    if (c->target.url.db >= 0 &&
        redisAsyncCommand(ac, on_login_reply, select_name, "SELECT %d", c->target.url.db) == REDIS_OK)
        c->login_left++;
    char name[200];
    snprintf(name, sizeof name, "%s/%s", client_prefix, c->name);
    for (char *p = name; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            *p = '_';
    if (redisAsyncCommand(ac, on_login_reply, setname_name, "CLIENT SETNAME %s", name) == REDIS_OK)
        c->login_left++;
    if (redisAsyncCommand(ac, on_login_reply, role_name, "ROLE") == REDIS_OK)
        c->login_left++;
}

/* hiredis lost (or was asked to close) a connection that had connected:
 * a drain ended, a login was cut short, or an established connection is
 * lost. */
static void on_disconnect(const redisAsyncContext *cac, int status)
{
    rds_async_t *c = cac->data;
    if (c == NULL)
        return;
    c->ac = NULL; /* hiredis frees it after this callback */
    if (c->closing) {
        /* A drain finished. */
        uv_timer_stop(&c->deadline);
        conn_finish_close(c);
        return;
    }
    const char *why = cac->errstr[0] ? cac->errstr : "closed";
    if (c->state != ST_UP) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s %s closed the connection while logging in: %s", c->kind, c->shown, why);
        attempt_failed(c, msg);
        return;
    }
    c->state = ST_DOWN;
    c->drop_pending = false;
    snprintf(c->error, sizeof c->error, "lost the connection to %s %s: %s", c->kind, c->shown, why);
    tine_log(TINE_LOG_WARN, "redis: %s connection: %s; reconnecting", c->name, c->error);
    c->warned = true;
    c->attempt = 0;
    schedule_retry(c);
    barriers_fail_all(c, LOST_BEFORE_CONFIRMED);
    if (c->cfg.on_lost)
        c->cfg.on_lost(c->cfg.data);
}

/* Leaves the server of a connection that is up (why), as a loss would:
 * commands in flight and barriers fail, then on_lost. The caller starts
 * the next attempt. */
static void conn_lose(rds_async_t *c, const char *why)
{
    drop_context(c);
    c->state = ST_DOWN;
    snprintf(c->error, sizeof c->error, "%s", why);
    tine_log(TINE_LOG_WARN, "redis: %s connection: %s; reconnecting", c->name, why);
    c->warned = true;
    c->attempt = 0;
    if (c->cfg.on_lost)
        c->cfg.on_lost(c->cfg.data);
}

/* A connect or login took longer than connect_timeout_ms (or a drain than
 * DRAIN_TIMEOUT_MS): the context is dropped. */
static void on_deadline(uv_timer_t *t)
{
    rds_async_t *c = t->data;
    if (c->closing) {
        /* The drain took too long: what is left gets no reply. */
        drop_context(c);
        conn_finish_close(c);
        return;
    }
    char why[1024];
    snprintf(why, sizeof why, "%s %s did not %s within %u ms", c->kind, c->shown,
             c->state == ST_LOGIN ? "answer the login" : "accept the connection", c->cfg.connect_timeout_ms);
    drop_context(c);
    attempt_failed(c, why);
}

/* Dials host:port (or the unix socket `path`): a new hiredis context. */
static void conn_dial(rds_async_t *c, const char *path, const char *host, int port)
{
    const rds_url_t *u = &c->target.url;
    free(c->host);
    c->host = path ? NULL : xstrdup(host);
    c->port = port;
    if (path)
        snprintf(c->addr, sizeof c->addr, "%s", path);
    else
        snprintf(c->addr, sizeof c->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (u->transport == RDS_SENTINEL)
        snprintf(c->shown, sizeof c->shown, "%s (master '%s' of %s)", c->addr, u->master, u->redacted);
    else if (c->want_sentinel)
        snprintf(c->shown, sizeof c->shown, "%s", c->addr);
    else
        snprintf(c->shown, sizeof c->shown, "%s", u->redacted);
    redisAsyncContext *ac = path ? redisAsyncConnectUnix(path) : redisAsyncConnect(host, port);
    char why[1024];
    if (ac == NULL || ac->err) {
        snprintf(why, sizeof why, "%s %s is unreachable: %s", c->kind, c->shown, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        attempt_failed(c, why);
        return;
    }
    int rc = adapter_attach(c, ac);
    if (rc != 0) {
        snprintf(why, sizeof why, "cannot watch the connection to %s: %s", c->shown, uv_strerror(rc));
        redisAsyncFree(ac);
        attempt_failed(c, why);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = ST_CONNECTING;
    /* The loop's clock is that of its last turn: a call that blocked it
     * since (a synchronous admin call) must not eat into the deadline. */
    uv_update_time(c->loop);
    uv_timer_start(&c->deadline, on_deadline, c->cfg.connect_timeout_ms, 0);
}

/* The sentinels answered: dial the master they named, or try again later. */
static void on_resolved(void *data, const char *host, int port, const char *why)
{
    rds_async_t *c = data;
    c->query = NULL;
    if (c->closing || c->state != ST_RESOLVING)
        return;
    if (host == NULL)
        attempt_failed(c, why);
    else
        conn_dial(c, NULL, host, port);
}

/* One attempt: ask the sentinels first (Sentinel URLs), else dial the
 * server (or the TLS relay). */
static void conn_start(rds_async_t *c)
{
    if (c->closing || c->ac != NULL || c->query != NULL)
        return;
    if (c->resolver) {
        c->state = ST_RESOLVING;
        c->query = rds__resolver_query(c->resolver, on_resolved, c);
        return;
    }
    const rds_url_t *u = &c->target.url;
    const char *path = rds__target_unix_path(&c->target);
    conn_dial(c, path, path ? NULL : u->addrs[0].host, path ? 0 : u->addrs[0].port);
}

/* The backoff is over (the next attempt), or the connection must leave its
 * server now (drop_pending). */
static void on_retry(uv_timer_t *t)
{
    rds_async_t *c = t->data;
    if (c->state == ST_UP) {
        if (!c->drop_pending)
            return;
        c->drop_pending = false;
        conn_lose(c, c->drop_why);
        if (c->closing || c->state != ST_DOWN)
            return; /* on_lost closed it, or it is on its way again */
    }
    conn_start(c);
}

/* --------------------------------------------------------- barriers */

static void barrier_pump(rds_async_t *c);

/* Answers a group of barriers. */
static void barriers_finish(rds_async_t *c, barrier_t *b, int rc, const char *why)
{
    while (b) {
        barrier_t *next = b->next;
        if (rc != 0)
            c->unconfirmed++;
        b->fn(b->data, rc, why);
        free(b);
        b = next;
    }
}

/* ROLE asked for the barriers: the count of replicas is fresh again. */
static void on_barrier_role(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    rds_async_t *c = ac->data;
    if (c == NULL || c->ac != ac || reply == NULL)
        return; /* lost: the barriers fail with the connection */
    c->bar_busy = false;
    int replicas = 0;
    char why[1024];
    if (rds__check_role(&c->target.url, c->addr, reply, c->want_sentinel, &replicas, why, sizeof why) != 0) {
        conn_drop_later(c, why); /* no longer a master: the barriers fail when it goes */
        return;
    }
    c->replicas = replicas;
    c->role_at = uv_now(c->loop);
    c->role_stale = false;
    barrier_pump(c);
}

/* The WAIT (or PING) of a group of barriers answered. */
static void on_barrier_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rds_async_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL || c->ac != ac)
        return;
    c->bar_busy = false;
    barrier_t *group = c->bar_sent;
    c->bar_sent = NULL;
    char why[1024] = "";
    int rc = 0;
    if (r == NULL) {
        rc = TINE_EREDIS;
        snprintf(why, sizeof why, LOST_BEFORE_CONFIRMED);
    } else if (r->type == REDIS_REPLY_ERROR) {
        rc = TINE_EREDIS;
        snprintf(why, sizeof why, "redis: %s", r->str);
    } else if (priv == wait_name && (r->type != REDIS_REPLY_INTEGER || r->integer < 1)) {
        rc = TINE_EREDIS;
        c->role_stale = true;
        snprintf(why, sizeof why,
                 "no replica of redis at %s confirmed the write within %d ms (it is on the master; a failover now "
                 "could lose it)",
                 c->shown, RDS_REPLICA_WAIT_MS);
    }
    barriers_finish(c, group, rc, why);
    if (r != NULL)
        barrier_pump(c);
}

/* Sends what the barriers waiting need next: ROLE when the count of
 * replicas is old, else one WAIT (or PING) for all of them. */
static void barrier_pump(rds_async_t *c)
{
    if (c->bar_busy || c->bar_next == NULL || c->state != ST_UP || c->ac == NULL || c->closing)
        return;
    if (c->role_stale || uv_now(c->loop) - c->role_at >= ROLE_REFRESH_MS) {
        if (redisAsyncCommand(c->ac, on_barrier_role, role_name, "ROLE") == REDIS_OK)
            c->bar_busy = true;
        else
            conn_drop_later(c, "hiredis refused a command");
        return;
    }
    c->bar_sent = c->bar_next;
    c->bar_next = NULL;
    c->bar_next_tail = &c->bar_next;
    int rc = c->replicas > 0 ? redisAsyncCommand(c->ac, on_barrier_reply, wait_name, "WAIT 1 %d", RDS_REPLICA_WAIT_MS)
                             : redisAsyncCommand(c->ac, on_barrier_reply, ping_name, "PING");
    if (rc == REDIS_OK)
        c->bar_busy = true;
    else
        conn_drop_later(c, "hiredis refused a command");
}

int rds_async_wait_replicas(rds_async_t *c, rds_done_fn fn, void *data)
{
    if (c == NULL || c->closing || c->state != ST_UP || c->ac == NULL || fn == NULL)
        return TINE_EREDIS;
    barrier_t *b = xmalloc(sizeof(*b));
    *b = (barrier_t){NULL, fn, data};
    *c->bar_next_tail = b;
    c->bar_next_tail = &b->next;
    barrier_pump(c);
    return 0;
}

/* ------------------------------------------------------- Sentinel moves */

bool rds__async_failed(const rds_async_t *c)
{
    return c != NULL && c->state == ST_DOWN;
}

void rds__async_master_moved(rds__resolver_t *r, const char *host, int port)
{
    for (rds_async_t *c = all_conns; c; c = c->next_all) {
        if (c->resolver != r || c->closing)
            continue;
        bool there = c->host && strcmp(c->host, host) == 0 && c->port == port;
        char why[1024];
        snprintf(why, sizeof why, "the sentinels moved master '%s' to %s:%d", c->target.url.master, host, port);
        switch (c->state) {
        case ST_UP:
            if (!there)
                conn_drop_later(c, why);
            break;
        case ST_CONNECTING:
        case ST_LOGIN:
            if (there)
                break;
            drop_context(c);
            uv_timer_stop(&c->deadline);
            c->state = ST_DOWN;
            __attribute__((fallthrough)); /* try again now */
        case ST_DOWN:
            c->attempt = 0;
            uv_timer_start(&c->retry, on_retry, 0, 0);
            break;
        default: /* RESOLVING: its round answers soon; should it name the old
                  * master, the next attempt comes at once */
            c->attempt = 0;
            break;
        }
    }
}

/* ---------------------------------------------------------------- API */

int rds__async_open(uv_loop_t *loop, const char *url, const rds_async_config_t *cfg, bool sentinel, rds_async_t **out,
                    char *err, size_t errlen)
{
    rds_async_t *c = xcalloc(1, sizeof(*c));
    int rc = rds__target_init(&c->target, url, err, errlen);
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (c->target.url.transport == RDS_SENTINEL &&
        (rc = rds__resolver_acquire(loop, &c->target.url, &c->resolver, err, errlen)) != 0) {
        rds__target_dispose(&c->target);
        free(c);
        return rc;
    }
    c->want_sentinel = sentinel;
    c->kind = sentinel ? "sentinel" : "redis at";
    c->bar_next_tail = &c->bar_next;
    snprintf(c->shown, sizeof c->shown, "%s", c->target.url.redacted);
    c->loop = loop;
    c->cfg = *cfg;
    c->name = xstrdup(cfg->name ? cfg->name : "redis");
    c->cfg.name = c->name;
    if (c->cfg.connect_timeout_ms == 0)
        c->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->cfg.backoff_min_ms == 0)
        c->cfg.backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
    if (c->cfg.backoff_max_ms == 0)
        c->cfg.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (c->cfg.backoff_max_ms < c->cfg.backoff_min_ms)
        c->cfg.backoff_max_ms = c->cfg.backoff_min_ms;
    if (c->cfg.max_waiting == 0)
        c->cfg.max_waiting = DEFAULT_MAX_WAITING;
    if (c->cfg.reply_timeout_ms == 0)
        c->cfg.reply_timeout_ms = DEFAULT_REPLY_TIMEOUT_MS;
    if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != sizeof c->rng || c->rng == 0)
        c->rng = tine_now_ns() | 1;
    c->waiting_tail = &c->waiting;
    snprintf(c->error, sizeof c->error, "not connected yet");
    uv_timer_init(loop, &c->retry);
    uv_timer_init(loop, &c->deadline);
    uv_timer_init(loop, &c->wait_timer);
    uv_timer_init(loop, &c->reply_timer);
    c->retry.data = c->deadline.data = c->wait_timer.data = c->reply_timer.data = c;
    c->open = 4;
    c->next_all = all_conns;
    if (all_conns)
        all_conns->prev_all = &c->next_all;
    c->prev_all = &all_conns;
    all_conns = c;
    conn_start(c);
    *out = c;
    return 0;
}

int rds_async_new(uv_loop_t *loop, const char *url, const rds_async_config_t *cfg, rds_async_t **out, char *err,
                  size_t errlen)
{
    return rds__async_open(loop, url, cfg, false, out, err, errlen);
}

void rds_async_close(rds_async_t *c, bool drain, void (*on_closed)(void *data), void *data)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    c->on_closed = on_closed;
    c->closed_data = data;
    *c->prev_all = c->next_all;
    if (c->next_all)
        c->next_all->prev_all = c->prev_all;
    uv_timer_stop(&c->retry);
    uv_timer_stop(&c->deadline);
    uv_timer_stop(&c->wait_timer);
    bool was_up = c->state == ST_UP;
    c->state = ST_CLOSED;
    rds__resolver_cancel(c->query);
    c->query = NULL;
    rds__resolver_release(c->resolver);
    c->resolver = NULL;
    for (waiting_t *w; (w = waiting_pop(c)) != NULL;) {
        if (w->fn)
            w->fn(w->data, NULL);
        free(w->cmd);
        free(w);
    }
    /* Barriers not sent yet fail now; a drain still answers those out. */
    barrier_t *unsent = c->bar_next;
    c->bar_next = NULL;
    c->bar_next_tail = &c->bar_next;
    barriers_finish(c, unsent, TINE_EREDIS, "the connection to redis was closed before the write was confirmed");
    if (c->ac && drain && was_up) {
        /* Replies still come; on_disconnect finishes the close. */
        c->draining = true;
        uv_timer_start(&c->deadline, on_deadline, DRAIN_TIMEOUT_MS, 0);
        redisAsyncDisconnect(c->ac);
        return;
    }
    drop_context(c);
    conn_finish_close(c);
}

/* Whether a command in RESP is (P)SUBSCRIBE: its first bulk string. */
static bool is_subscribe(const char *cmd, size_t len)
{
    const char *p = memchr(cmd, '$', len);
    const char *nl = p ? memchr(p, '\n', len - (size_t)(p - cmd)) : NULL;
    if (nl == NULL)
        return false;
    const char *name = nl + 1;
    size_t left = len - (size_t)(name - cmd);
    if (left > 0 && (*name == 'p' || *name == 'P')) {
        name++;
        left--;
    }
    return left >= 11 && strncasecmp(name, "subscribe\r\n", 11) == 0;
}

int rds_async_formatted(rds_async_t *c, rds_reply_fn fn, void *data, const char *cmd, size_t len)
{
    if (c == NULL || c->closing)
        return TINE_EREDIS;
    if (is_subscribe(cmd, len))
        return TINE_EINVAL;
    if (c->state == ST_UP && c->ac && send_now(c, fn, data, cmd, len) == 0)
        return 0;
    /* Down (or hiredis refused it: the context is going away). Someone
     * needs the connection: the next attempt comes soon. */
    if (c->state == ST_DOWN && uv_timer_get_due_in(&c->retry) > c->cfg.backoff_min_ms)
        uv_timer_start(&c->retry, on_retry, c->cfg.backoff_min_ms, 0);
    if (c->cfg.when_down != RDS_WAIT_WHEN_DOWN || c->nwaiting >= c->cfg.max_waiting)
        return TINE_EREDIS;
    waiting_t *w = xmalloc(sizeof(*w));
    w->next = NULL;
    w->since = uv_now(c->loop);
    if (c->waiting == NULL && c->cfg.max_wait_ms)
        uv_timer_start(&c->wait_timer, on_wait_timer, c->cfg.max_wait_ms, 0);
    w->cmd = xmalloc(len);
    memcpy(w->cmd, cmd, len);
    w->len = len;
    w->fn = fn;
    w->data = data;
    *c->waiting_tail = w;
    c->waiting_tail = &w->next;
    c->nwaiting++;
    return 0;
}

int rds_async_command(rds_async_t *c, rds_reply_fn fn, void *data, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return -ENOMEM;
    int rc = rds_async_formatted(c, fn, data, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int rds_async_subscribe(rds_async_t *c, bool pattern, const char *channel, rds_reply_fn fn, void *data)
{
    if (c == NULL || c->closing || c->state != ST_UP || c->ac == NULL || fn == NULL)
        return TINE_EREDIS;
    pending_t *p = xmalloc(sizeof(*p));
    *p = (pending_t){fn, data, true};
    const char *argv[] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", channel};
    size_t lens[] = {strlen(argv[0]), strlen(channel)};
    if (redisAsyncCommandArgv(c->ac, on_reply, p, 2, argv, lens) != REDIS_OK) {
        free(p);
        return TINE_EREDIS;
    }
    return 0;
}

bool rds_async_connected(const rds_async_t *c)
{
    return c != NULL && c->state == ST_UP;
}

uint64_t rds_async_reconnects(const rds_async_t *c)
{
    return c ? c->reconnects : 0;
}

const char *rds_async_error(const rds_async_t *c)
{
    if (c == NULL)
        return "no connection";
    return c->state == ST_UP ? "" : c->error;
}

const char *rds_async_address(const rds_async_t *c)
{
    return c && c->state == ST_UP ? c->addr : "";
}

void rds_set_client_prefix(const char *prefix)
{
    snprintf(client_prefix, sizeof client_prefix, "%s", prefix && *prefix ? prefix : "tine");
}

void rds_metrics_render(tine_buf_t *out)
{
    tine_buf_appendf(out, "# HELP tine_redis_connected Whether each Redis connection of this node is up.\n"
                          "# TYPE tine_redis_connected gauge\n");
    for (rds_async_t *c = all_conns; c; c = c->next_all)
        tine_buf_appendf(out, "tine_redis_connected{connection=\"%s\"} %d\n", c->name, c->state == ST_UP);
    tine_buf_appendf(out, "# HELP tine_redis_reconnects_total Times each Redis connection came back after a loss.\n"
                          "# TYPE tine_redis_reconnects_total counter\n");
    for (rds_async_t *c = all_conns; c; c = c->next_all)
        tine_buf_appendf(out, "tine_redis_reconnects_total{connection=\"%s\"} %" PRIu64 "\n", c->name, c->reconnects);
    tine_buf_appendf(out, "# HELP tine_redis_unconfirmed_writes_total Writes answered as failed because no replica "
                          "confirmed them (WAIT) or the connection was lost first.\n"
                          "# TYPE tine_redis_unconfirmed_writes_total counter\n");
    for (rds_async_t *c = all_conns; c; c = c->next_all)
        if (!c->want_sentinel)
            tine_buf_appendf(out, "tine_redis_unconfirmed_writes_total{connection=\"%s\"} %" PRIu64 "\n", c->name,
                             c->unconfirmed);
    rds__sentinel_metrics_render(out);
}
