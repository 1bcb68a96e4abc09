/* Private to redis/: what url.c, sync.c, async.c and tls_relay.c share. */
#ifndef TINE_REDIS_INTERNAL_H
#define TINE_REDIS_INTERNAL_H

#include "tine_redis.h"

#include <hiredis/async.h>

/* The first word of the error reply the TLS relay sends a client whose
 * server it could not reach ("-TLSERR cannot reach ...: why"). */
#define RDS__RELAY_ERROR "TLSERR"

/* ------------------------------------------------------------ tls_relay.c */

typedef struct rds__relay rds__relay_t;

/* A relay for the TLS server of `u` (one per server and CA file, shared and
 * counted): a thread listening on a private unix socket (mode 0600 in a
 * fresh 0700 directory) that carries each connection over TLS to the server
 * after verifying its certificate (against u->cacert, else the system's CA
 * store) and its name. Returns 0, or TINE_EINVAL/-errno with a message (an
 * unreadable CA file, no socket). */
int rds__relay_acquire(const rds_url_t *u, rds__relay_t **out, char *err, size_t errlen);
/* The unix socket to connect to instead of the server. */
const char *rds__relay_path(const rds__relay_t *r);
/* Drops a reference; the last one stops the thread (joined, with every
 * connection it carries) and removes the socket and its directory. */
void rds__relay_release(rds__relay_t *r);

/* --------------------------------------------------------------- url.c */

/* Where a connection dials: the URL, and for TLS the relay it goes through. */
typedef struct {
    rds_url_t url;
    rds__relay_t *relay;
} rds__target_t;

/* Parses url and, for TLS, acquires its relay. Returns 0 or an error with a
 * message. */
int rds__target_init(rds__target_t *t, const char *url, char *err, size_t errlen);
void rds__target_dispose(rds__target_t *t);

/* The unix socket to dial (the URL's or the relay's), or NULL for TCP. */
const char *rds__target_unix_path(const rds__target_t *t);

/* The AUTH command of the URL: argc 0 when it has no password. */
int rds__auth_argv(const rds_url_t *u, const char *argv[3], size_t lens[3]);

/* The message for an error reply to the connect sequence (AUTH, SELECT,
 * ROLE) of u: "redis at URL refused the password", "... requires a
 * password", ..., naming the URL (redacted) and Redis's own words. Returns
 * TINE_EAUTH when the server refused what the URL gives (a password, a
 * certificate), TINE_EREDIS otherwise. */
int rds__explain_setup_error(const rds_url_t *u, const char *command, const char *reply, char *err, size_t errlen);

/* Checks ROLE's reply from the server at `addr` ("host:port" or a path):
 * 0 when it is a master (its connected replicas in *replicas) or, with
 * `sentinel`, a Redis Sentinel; else TINE_EREDIS with a message (a replica,
 * a sentinel given as a server, ...), or what rds__explain_setup_error says
 * of an error reply (NOAUTH, LOADING). A user not allowed to run ROLE
 * (NOPERM) is taken at its word: the right role, no replica known. */
int rds__check_role(const rds_url_t *u, const char *addr, const redisReply *r, bool sentinel, int *replicas, char *err,
                    size_t errlen);

/* redis://[USER:PASSWORD@]HOST:PORT (percent-encoded, IPv6 in brackets).
 * Fresh string. */
char *rds__url_make_tcp(const char *host, int port, const char *user, const char *password);

/* ------------------------------------------------------------ sentinel.c */

/* Synchronous: asks the sentinel `a` of u (with u's sentinel credentials)
 * for the address of u->master, bounded by timeout_ms. Returns 0 with *host
 * (fresh) and *port, or TINE_EREDIS / TINE_EAUTH (the sentinel refused the
 * sentinel password) with a message naming the sentinel. */
int rds__sentinel_ask(const rds_url_t *u, const rds_addr_t *a, uint32_t timeout_ms, char **host, int *port, char *err,
                      size_t errlen);

/* The message when the sentinel `who` refused a client of the URL `url`
 * (shown as is): the sentinel password refused (an error reply to AUTH,
 * `auth`), or a password it requires and was not given (NOAUTH).
 * Returns TINE_EAUTH with the message, or 0 when `reply` is neither. */
int rds__sentinel_refusal(const char *who, const char *url, bool auth, const char *reply, char *err, size_t errlen);

/* How many times this process saw a master move (any Sentinel URL): a
 * synchronous connection opened before a move is opened again. */
uint64_t rds__sentinel_generation(void);

/* The shared Sentinel client of one loop and one sentinel list + master
 * name: a connection to each sentinel for questions, one to each
 * subscribed to +switch-master, and the master last named. Counted. */
typedef struct rds__resolver rds__resolver_t;
typedef struct rds__query rds__query_t;

/* The master's address (host, port), or NULL and why no sentinel named a
 * usable one. Never called inside rds__resolver_query. */
typedef void (*rds__resolved_fn)(void *data, const char *host, int port, const char *why);

/* The resolver for u's sentinels and master on loop (made on first use).
 * Returns 0, or an error with a message. */
int rds__resolver_acquire(struct uv_loop_s *loop, const rds_url_t *u, rds__resolver_t **out, char *err, size_t errlen);
void rds__resolver_release(rds__resolver_t *r);

/* Asks the sentinels, in turn, for the master's address (queries made
 * while one round is out share it). The handle is valid until fn runs or
 * rds__resolver_cancel. */
rds__query_t *rds__resolver_query(rds__resolver_t *r, rds__resolved_fn fn, void *data);
void rds__resolver_cancel(rds__query_t *q);

/* The address the last round gave was not a master: the next round starts
 * with the next sentinel. */
void rds__resolver_not_master(rds__resolver_t *r);

/* A connection found host:port to be the master (ROLE): what /metrics
 * shows, a move counted as a failover. */
void rds__resolver_confirmed(rds__resolver_t *r, const char *host, int port);

/* Appends tine_redis_master and tine_redis_failovers_total of every
 * resolver. */
void rds__sentinel_metrics_render(tine_buf_t *out);

/* -------------------------------------------------------------- async.c */

/* The connection must be a Redis Sentinel rather than a master (the
 * resolver's own connections). */
int rds__async_open(struct uv_loop_s *loop, const char *url, const rds_async_config_t *cfg, bool sentinel,
                    rds_async_t **out, char *err, size_t errlen);

/* Whether the connection is down after a failed attempt or a loss (not
 * merely still connecting). */
bool rds__async_failed(const rds_async_t *c);

/* The sentinels of r name host:port the master now: every connection
 * through r elsewhere (or still down) moves there at once. */
void rds__async_master_moved(rds__resolver_t *r, const char *host, int port);

#endif
