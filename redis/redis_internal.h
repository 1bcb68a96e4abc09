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
 * PING) of u: "redis at URL refused the password", "... requires a
 * password", ..., naming the URL (redacted) and Redis's own words. */
void rds__explain_setup_error(const rds_url_t *u, const char *command, const char *reply, char *err, size_t errlen);

#endif
