/* tined's configuration: flags, then TINE_* environment variables, then an
 * optional config file, then defaults — the same names everywhere. */
#ifndef TINED_CONFIG_H
#define TINED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TINED_VERSION "0.1.0"

typedef struct {
    char *listen;
    char *tls_cert; /* with tls_key: serve HTTPS on listen; NULL: HTTP. Several */
    char *tls_key;  /* certificates: their paths one a line, keys in the same order */
    char *state_dir;
    char *redis_url;   /* NULL: start a private redis-server */
    char *redis_maxmemory; /* its memory cap as given (Redis's syntax); NULL: the default */
    char *admin_token; /* NULL: generated into the state dir */
    bool no_auth;
    size_t max_bundle;
    char *sdk_dir;
    char *console_dir; /* "off": no console */
    char *otlp_endpoint; /* NULL: no OTLP export */
    char *node_id;
    char *config_file;
    unsigned max_connections; /* client connections open at once */
    size_t max_buffered_body; /* request body bytes held at once for function calls */
    bool http2;               /* serve HTTP/2 (ALPN over TLS, h2c in cleartext) */
    unsigned max_sandboxes;   /* node-wide cap on sandboxes */
    unsigned app_reserve;     /* past the cap, for apps' first sandbox (fair share) */
    unsigned max_queue;       /* calls waiting per function before 429 */
    uint64_t idle_timeout_ms; /* idle sandboxes beyond warm exit after this */
    char *log_paths;     /* colon-separated dirs file log triggers may follow; NULL: none */
    char *docker_socket; /* container engine API socket */
    bool docker_events;  /* watch it (default on) */
    /* billing and observability (parsed from the *_str values) */
    char *price_gb_s_str, *price_request_str, *activations_str, *retention_str, *log_level;
    char *metrics_token;       /* NULL: GET /metrics without auth */
    uint64_t price_gb_s_pusd;  /* picodollars per GB-second */
    uint64_t price_request_pusd;
    bool activations;          /* record every invocation (default on) */
    uint32_t retention_count;  /* activation records kept per app */
    uint32_t retention_s;      /* and for at most this long */
    unsigned activation_buffer; /* records held while Redis is away (--activation-buffer) */
    uint64_t log_rate;     /* --log-rate: bytes per second per app (0: the invoker's default) */
    uint64_t kv_value_max; /* --kv-*: apps' KV limits without a manifest's (0: the invoker's default) */
    uint64_t kv_keys_max;
    uint64_t kv_bytes_max;
    char *max_invoke_depth_str;
    unsigned max_invoke_depth; /* nested tine.invoke calls allowed (default 256) */
    bool isolation;          /* --isolation on|off: the process layers (default on) */
    unsigned sandbox_uid;    /* --sandbox-uid: uid/gid of Lua sandboxes when root */
    char *isolation_text;    /* as given, before checking */
    char *sandbox_uid_text;
    uint64_t drain_grace_ms;   /* --drain-grace: serving on while not ready, for load balancers */
    uint64_t drain_timeout_ms; /* --drain-timeout: calls in flight get this long to finish */
    char *secrets_key_file;       /* --secrets-key; NULL: no secrets on this node */
    bool has_secrets_key;         /* the file was read into secrets_key */
    unsigned char secrets_key[32]; /* the cluster's key of app secrets (REG_SECRET_KEY_LEN) */
} tined_config_t;

/* Fills cfg from argv, the environment and the config file. Returns 0, 1 when
 * --help or --version was printed (exit 0), or -1 with a message printed
 * (exit 2). */
int tined_config_load(tined_config_t *cfg, int argc, char **argv);
void tined_config_dispose(tined_config_t *cfg);

/* True when the listen address is on loopback (127.0.0.0/8, [::1], localhost). */
bool tined_listen_is_loopback(const char *listen);

#endif
