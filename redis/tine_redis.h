/* redis: the one way tine talks to Redis. Every module that needs Redis goes
 * through this header (and keys.h for the names of keys); nothing else
 * parses a Redis URL, connects or authenticates.
 *
 *  - rds_url_*   one URL parser: unix://, redis://, rediss:// (TLS) and
 *                redis-sentinel:// (the master found through Sentinel);
 *  - rds_sync_*  a synchronous connection with timeouts, AUTH and SELECT,
 *                reopened when it broke (admin calls on the loop);
 *  - rds_async_* an asynchronous connection on a libuv loop that reconnects
 *                by itself with exponential backoff and jitter, runs AUTH and
 *                SELECT before anything else on every connect, and tells its
 *                owner when it is up and when it was lost.
 *
 * Every connect checks with ROLE that the server is a master (and learns
 * how many replicas it has). With redis-sentinel:// every connect, sync or
 * async, first asks the sentinels in turn for the master's address
 * (SENTINEL get-master-addr-by-name); asynchronous connections also follow
 * the sentinels' +switch-master announcements and move to the new master
 * at once (sentinel.c). rds_sync_wait_replicas and rds_async_wait_replicas
 * confirm that writes reached a replica (WAIT) when the master has one.
 *
 * rediss:// is served by a relay thread of this module: hiredis (0.14, no
 * TLS of its own) connects to a private unix socket and the relay carries
 * the bytes over TLS (OpenSSL) to the server, verifying its certificate.
 * Passwords never appear in messages: they print the URL as rds_url_t
 * .redacted has it. */
#ifndef TINE_REDIS_H
#define TINE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "tine_common.h"

struct uv_loop_s;

/* ------------------------------------------------------------------ URL */

typedef enum {
    RDS_UNIX = 0,     /* unix://[user[:password]@]/path[?db=N] */
    RDS_TCP = 1,      /* redis://[user[:password]@]host[:port][/db] */
    RDS_TLS = 2,      /* rediss://[user[:password]@]host[:port][/db][?cacert=/ca.pem][&cert=/c.pem&key=/k.pem] */
    RDS_SENTINEL = 3, /* redis-sentinel://[user[:password]@]host[:port][,host[:port]...]/master
                         [?db=N][&sentinel_password=P][&sentinel_user=U] */
} rds_transport_t;

#define RDS_SENTINEL_FORM "redis-sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER"
#define RDS_MAX_SENTINELS 16

/* How long a write waits for a replica's confirmation (WAIT) before it is
 * answered as failed. */
#define RDS_REPLICA_WAIT_MS 1000

typedef struct {
    char *host; /* a name or an address (IPv6 without its brackets) */
    int port;
} rds_addr_t;

/* A parsed Redis URL. A server is reached through `path` (unix), the one
 * address in `addrs` (redis://, rediss://), or the master that the
 * sentinels in `addrs` name for `master` (redis-sentinel://). */
typedef struct {
    rds_transport_t transport;
    char *path;        /* RDS_UNIX: the socket */
    rds_addr_t *addrs; /* RDS_TCP, RDS_TLS: the server; RDS_SENTINEL: the sentinels (port 26379 by default) */
    size_t naddrs;
    char *master;                            /* RDS_SENTINEL: the master's name; else NULL */
    char *sentinel_user, *sentinel_password; /* RDS_SENTINEL: AUTH for the sentinels themselves; NULL: none */
    char *user;       /* percent-decoded; NULL: AUTH with the password alone */
    char *password;   /* percent-decoded; NULL: no AUTH */
    int db;           /* SELECT after connecting; -1: none */
    char *cacert;     /* RDS_TLS: CA file the server's certificate must chain to; NULL: the system's */
    char *cert, *key; /* RDS_TLS: a client certificate and its key (both or neither) */
    char *redacted;   /* the URL with its password replaced by "***": what messages print */
} rds_url_t;

/* Parses a Redis URL into *u (dispose with rds_url_dispose). The user and
 * the password (of the master; sentinel_password of the sentinels) are
 * percent-decoded, as is the master's name. Returns 0, or TINE_EINVAL with a message
 * "redis URL 'REDACTED': what is wrong" in err (never the password); *u is
 * then empty. */
int rds_url_parse(const char *text, rds_url_t *u, char *err, size_t errlen);
void rds_url_dispose(rds_url_t *u);

/* The URL as messages may show it (the password and any
 * sentinel_password= replaced by "***"), for a URL that may not even
 * parse. Fresh string. */
char *rds_url_redact(const char *text);

/* The URL of a unix socket, with a password when it is not NULL
 * ("unix://:PASSWORD@/path", both percent-encoded where needed). Fresh
 * string. */
char *rds_url_make_unix(const char *path, const char *password);

/* --------------------------------------------------------- synchronous */

typedef struct rds_sync rds_sync_t;

/* A synchronous connection to the Redis at `url`: opened on first use (or
 * by rds_sync_context), and again when it broke. Every connect runs AUTH
 * (when the URL has a password), SELECT (when it names a db) and ROLE (the
 * server must be a master), each bounded by timeout_ms, as is every
 * command; the connect itself is bounded by at most 2 s. With a Sentinel
 * URL every connect first asks the sentinels in turn (500 ms each at most)
 * which server is the master, and tries the next sentinel when the one
 * named is down or not a master; a connection is opened again after this
 * process saw the master move (+switch-master) and after a READONLY error.
 * Returns NULL with a message when the URL does not parse (or its TLS setup
 * fails). */
rds_sync_t *rds_sync_new(const char *url, uint32_t timeout_ms, char *err, size_t errlen);
void rds_sync_free(rds_sync_t *s);

/* The hiredis context, connected: reopened first when the connection broke
 * or the server closed it while idle. NULL with a message naming the URL and
 * the reason ("unreachable: Connection refused", "refused the password", ...).
 * For pipelines: append with redisAppendCommand, then rds_sync_replies. */
redisContext *rds_sync_context(rds_sync_t *s, char *err, size_t errlen);

/* Opens the connection when it is not open; 0, or an error with the
 * message: TINE_EAUTH when a server refused what the URL gives (password,
 * certificate), which will not come right by waiting; TINE_EREDIS when
 * Redis is unreachable or not ready (down, loading, no sentinel answers, the
 * sentinels do not know the master, the server named is a replica), which
 * may. */
int rds_sync_connect(rds_sync_t *s, char *err, size_t errlen);

/* Runs one command (hiredis's format: %s, %b with a length, %d ...). Returns the reply (freeReplyObject it)
 * or NULL with a message in err: unreachable, the connection lost during the
 * command (not retried: it may have run), or an error reply ("redis: ..."). */
redisReply *rds_sync_command(rds_sync_t *s, char *err, size_t errlen, const char *fmt, ...);
redisReply *rds_sync_vcommand(rds_sync_t *s, char *err, size_t errlen, const char *fmt, va_list ap);

/* Runs one command already in RESP (len bytes), as rds_sync_command. */
redisReply *rds_sync_formatted(rds_sync_t *s, const char *cmd, size_t len, char *err, size_t errlen);

/* Confirms that the writes made on this connection reached a replica:
 * asks ROLE how many replicas the master has and, when it has any, sends
 * WAIT 1 RDS_REPLICA_WAIT_MS. Returns 0 (confirmed, or no replica to wait
 * for), or TINE_EREDIS with a message: no replica confirmed in time (the
 * writes are on the master, but a failover could lose them), or the
 * connection broke since the writes (never reopened here: the writes' fate
 * is unknown). */
int rds_sync_wait_replicas(rds_sync_t *s, char *err, size_t errlen);

/* Reads the `n` replies of commands appended on rds_sync_context, e.g. a
 * MULTI ... EXEC. Fails (TINE_EREDIS, message in err) on a lost connection,
 * on any error reply, and when the last reply is a nil EXEC (aborted). The
 * replies are read in any case. */
int rds_sync_replies(rds_sync_t *s, size_t n, char *err, size_t errlen);

/* Deletes (UNLINK) every key matching the glob `pattern`, walking them with
 * SCAN; adds how many were deleted to *count. Returns 0 or TINE_EREDIS
 * (message in err; keys deleted before the failure stay deleted). */
int rds_sync_unlink_matching(rds_sync_t *s, const char *pattern, size_t *count, char *err, size_t errlen);

/* Deletes one key, storing first what `measure` (LLEN, XLEN, HLEN...) said
 * of it in *count (0 when it did not exist). Returns 0 or TINE_EREDIS. */
int rds_sync_unlink_measured(rds_sync_t *s, const char *measure, const char *key, size_t *count, char *err,
                             size_t errlen);

/* The URL as messages show it. */
const char *rds_sync_url(const rds_sync_t *s);

/* -------------------------------------------------------- asynchronous */

typedef struct rds_async rds_async_t;

/* A command's reply, or NULL when it has none: the connection was lost
 * before the reply came, or closed. Error replies are REDIS_REPLY_ERROR.
 * The reply is freed after the call. Never called inside the call that sent
 * the command. */
typedef void (*rds_reply_fn)(void *data, redisReply *reply);

typedef enum {
    /* A command sent while the connection is not up fails at once:
     * rds_async_command returns TINE_EREDIS and never calls back. */
    RDS_FAIL_WHEN_DOWN = 0,
    /* It waits (up to max_waiting commands, in order, each at most
     * max_wait_ms) and is sent once the connection is up again; past the
     * count it fails at once, past the time it gets its NULL reply. */
    RDS_WAIT_WHEN_DOWN = 1,
} rds_when_down_t;

#define RDS_NO_REPLY_TIMEOUT UINT32_MAX

typedef struct {
    const char *name; /* in log lines and /metrics, e.g. "events-dispatch" (copied) */
    rds_when_down_t when_down;
    uint32_t max_waiting;        /* RDS_WAIT_WHEN_DOWN: commands held at most (0: 10000) */
    uint32_t max_wait_ms;        /* RDS_WAIT_WHEN_DOWN: how long each may wait (0: until up or closed) */
    uint32_t connect_timeout_ms; /* connect + AUTH/SELECT/PING (0: 2000) */
    /* Commands in flight with no reply for this long: the server stopped
     * answering; the connection is dropped (they get their NULL reply) and
     * made again (0: 3000; RDS_NO_REPLY_TIMEOUT: never). Must exceed the
     * longest BLOCK the connection sends. */
    uint32_t reply_timeout_ms;
    uint32_t backoff_min_ms;     /* first delay before a reconnect (0: 50) */
    uint32_t backoff_max_ms;     /* doubling up to this (0: 2000); each delay is drawn in [d/2, d] */
    /* The connection is up (after AUTH, SELECT and the waiting commands were
     * sent): subscribe again, re-read what may have been missed, flush what
     * waited. Called on the loop after every connect. */
    void (*on_connected)(void *data);
    /* An established connection was lost (not called for failed attempts or
     * rds_async_close). Commands in flight already got their NULL reply. */
    void (*on_lost)(void *data);
    void *data;
} rds_async_config_t;

/* Creates the connection on `loop` and starts connecting (in the
 * background: this never blocks, and a Redis that is away at the start is
 * reached when it comes). While it is down, a command sent brings the next
 * attempt forward to backoff_min_ms, so traffic finds a server that came
 * back without waiting out a long backoff. With a Sentinel URL each attempt
 * first asks the sentinels for the master (every connection of one loop and
 * URL shares the sentinels' connections), and the connection moves to the
 * new master as soon as a sentinel announces +switch-master (it is lost
 * and comes back: on_lost, then on_connected); a READONLY error (the master
 * became a replica) drops it too. Returns 0 and *out, or TINE_EINVAL when
 * the URL does not parse (message in err). */
int rds_async_new(struct uv_loop_s *loop, const char *url, const rds_async_config_t *cfg, rds_async_t **out, char *err,
                  size_t errlen);

/* Closes the connection. Without `drain` commands in flight and waiting get
 * their NULL reply now (inside this call). With `drain`, commands already
 * sent still get their replies (for a bounded time) before it closes; those
 * waiting fail. `on_closed` (may be NULL) runs on the loop once nothing of
 * the connection is left and no callback will run any more. Accepts NULL. */
void rds_async_close(rds_async_t *c, bool drain, void (*on_closed)(void *data), void *data);

/* Sends a command (argv with lengths, copied). `fn` may be NULL. Returns 0
 * (fn will be called once, later), or TINE_EREDIS without calling fn: the
 * connection is down under RDS_FAIL_WHEN_DOWN, too many commands wait, or it
 * is closing. (P)SUBSCRIBE go through rds_async_subscribe (TINE_EINVAL). */
int rds_async_command(rds_async_t *c, rds_reply_fn fn, void *data, int argc, const char **argv, const size_t *lens);

/* The same with a command already in RESP (copied when it must wait). */
int rds_async_formatted(rds_async_t *c, rds_reply_fn fn, void *data, const char *cmd, size_t len);

/* Subscribes to one channel (or one pattern): fn gets the subscribe
 * confirmation, then every message, then NULL once the connection is lost or
 * closed (subscribe again from on_connected). Only while up; TINE_EREDIS
 * otherwise. A subscribed connection takes no other commands. */
int rds_async_subscribe(rds_async_t *c, bool pattern, const char *channel, rds_reply_fn fn, void *data);

/* A write barrier: fn(data, 0, NULL) once every write sent on c before
 * this call reached at least one replica (WAIT 1 RDS_REPLICA_WAIT_MS), or at
 * once after their replies when the master has no replica (learnt from
 * ROLE at connect, and again at most a second later); fn(data, TINE_EREDIS,
 * why) when no replica confirmed in time or the connection was lost first.
 * Barriers asked while a WAIT is out share the next one (one WAIT per
 * round trip, whatever the number of writers). fn runs after the replies
 * of the commands sent before, never inside this call. Returns 0, or
 * TINE_EREDIS without calling fn when the connection is not up. */
typedef void (*rds_done_fn)(void *data, int rc, const char *why);
int rds_async_wait_replicas(rds_async_t *c, rds_done_fn fn, void *data);

/* Whether the connection is up (AUTH/SELECT done). */
bool rds_async_connected(const rds_async_t *c);
/* Successful connects after the first one. */
uint64_t rds_async_reconnects(const rds_async_t *c);
/* Why the connection is down (empty while it is up). */
const char *rds_async_error(const rds_async_t *c);

/* The server the connection is on ("host:port" or the socket's path), or
 * "" while it is not up. */
const char *rds_async_address(const rds_async_t *c);

/* Names every asynchronous connection opened afterwards on its servers
 * (CLIENT SETNAME PREFIX/NAME, spaces as '_'), e.g. with the node's id, so
 * CLIENT LIST shows whose connection is whose. Default "tine". */
void rds_set_client_prefix(const char *prefix);

/* Appends the state of every asynchronous connection of the process in the
 * Prometheus text format: tine_redis_connected{connection=NAME} 0|1,
 * tine_redis_reconnects_total{connection=NAME},
 * tine_redis_unconfirmed_writes_total{connection=NAME} (barriers answered as
 * failed), and for Sentinel URLs the master in use
 * (tine_redis_master{master=M,address=H:P} 1) and the master changes seen
 * (tine_redis_failovers_total{master=M}). */
void rds_metrics_render(tine_buf_t *out);

#endif
