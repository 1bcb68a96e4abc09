/* gateway: the h2o HTTP server of a node. It serves every live app under
 * /<app>/..., the admin API under /_tine/v1/, and hands requests to the
 * invoker. */
#ifndef TINE_GATEWAY_H
#define TINE_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invoker.h"
#include "registry.h"

struct uv_loop_s;
typedef struct gw_server gw_server_t;

/* The certificate and key HTTPS serves (gateway/tls.c). */
typedef struct gw_tls gw_tls_t;

#define GW_DEFAULT_MAX_CONNECTIONS 1024
#define GW_DEFAULT_MAX_BUFFERED_BODY (128u * 1024u * 1024u)

typedef struct {
    const char *listen;      /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" */
    const char *admin_token; /* NULL: admin API without auth (loopback only) */
    size_t max_bundle;       /* largest deploy body accepted, bytes */
    size_t max_body;         /* largest body of other admin calls (events), bytes */
    size_t max_connections;  /* client connections at most; 0: GW_DEFAULT_MAX_CONNECTIONS */
    /* Request body bytes of anonymous clients held at once (function
     * calls); 0: GW_DEFAULT_MAX_BUFFERED_BODY. Over it: 503. */
    size_t max_buffered_body;
    bool http2; /* serve HTTP/2: over TLS by ALPN, in cleartext by prior knowledge or Upgrade: h2c */
    gw_tls_t *tls; /* serve HTTPS on `listen` with it (borrowed; outlives the server); NULL: HTTP */
    const char *node_id;
    struct ev_events *events; /* CloudEvents ingest and dead letters; may be NULL */
    struct bill *bill;         /* records, usage, logs, /metrics (borrowed; may be NULL) */
    const char *metrics_token; /* NULL: GET /metrics needs no token */
    struct tn_tenancy *tenancy; /* API keys and the audit log (borrowed; may be NULL: only the token) */
    struct tn_quotas *quotas;   /* quotas per namespace (borrowed; may be NULL: none) */
    bool has_secrets_key;           /* secrets_key holds the cluster's key of app secrets */
    unsigned char secrets_key[32];  /* (REG_SECRET_KEY_LEN) copied */
    reg_rollouts_t *rollouts;   /* counters per version, rollouts (borrowed; may be NULL) */
    const char *console_dir;    /* the web console's files (docs/console.md); NULL: no console */
    /* Appends more Prometheus text to GET /metrics (tined's OTLP exporter);
     * called on the loop with metrics_more_data; NULL: nothing more. */
    void (*metrics_more)(void *data, tine_buf_t *out);
    void *metrics_more_data;
} gw_config_t;

/* Binds the listener and starts serving on `loop`. Returns NULL with a
 * message in err when the address is bad or cannot be bound. The config's
 * strings are copied. */
gw_server_t *gw_new(struct uv_loop_s *loop, const gw_config_t *cfg, reg_live_t *live, inv_invoker_t *inv, char *err,
                    size_t errlen);

/* The port the server is bound to (useful with --listen 127.0.0.1:0). */
int gw_port(gw_server_t *gw);

/* Stops accepting and frees the server once its handles are closed. */
void gw_free(gw_server_t *gw);

/* Starts a graceful stop: no new connections, idle keep-alive connections
 * close, busy ones close after their current response. Call gw_free once
 * gw_drained() is true (or a deadline passed). */
void gw_shutdown(gw_server_t *gw);

/* True when no client connection is open any more and h2o has no timer
 * left (then the server can be freed). */
int gw_drained(gw_server_t *gw);

/* Loads a certificate chain (the server's first, then its CAs) and its
 * private key, PEM files, for HTTPS: TLS 1.2 at least, ALPN "h2" (when
 * http2) and "http/1.1". Returns NULL with a message naming the file and
 * what is wrong (unreadable, no certificate, an encrypted key, a key that
 * is not the certificate's). Logs the certificate it serves. */
gw_tls_t *gw_tls_new(const char *cert_file, const char *key_file, bool http2, char *err, size_t errlen);

/* Reads both files again. New connections get the new certificate,
 * established ones keep theirs. On failure the previous certificate keeps
 * serving; either way the outcome is logged. Returns 0 or TINE_EINVAL. */
int gw_tls_reload(gw_tls_t *tls);

/* Frees it (connections still open keep their own reference); NULL is fine. */
void gw_tls_free(gw_tls_t *tls);
/* The node drains: GET /_tine/v1/ready answers 503 naming `why` (copied)
 * from now on; everything else is served as before (gw_shutdown stops
 * that). */
void gw_set_draining(gw_server_t *gw, const char *why);

/* The node's state as GET /_tine/v1/ready sees it: "draining",
 * "starting" (it has not loaded the apps yet), "not-ready" (a live version
 * does not load) or "ready". A static string. */
const char *gw_state(gw_server_t *gw);

/* Requests being served: handed to the server and not yet answered and
 * written out (idle keep-alive connections and followed log streams, which
 * never end by themselves, do not count). */
size_t gw_requests_in_flight(const gw_server_t *gw);

/* Whether GET /_tine/v1/ready was asked within the last `ms` milliseconds
 * (a load balancer checks this node). */
bool gw_ready_asked_within(const gw_server_t *gw, uint64_t ms);

#endif
