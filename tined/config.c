/* Configuration of tined. Every option has one name used three ways: a flag
 * (--state-dir), an environment variable (TINE_STATE_DIR) and a config-file
 * key (state-dir = ...). Flags win over the environment, which wins over the
 * file. */
#include "config.h"
#include "billing.h"
#include "registry.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
    const char *name; /* flag and file key */
    const char *env;
    int takes_value;
    const char *help;
} option_t;

static const option_t options[] = {
    {"listen", "TINE_LISTEN", 1, "address to serve HTTP (HTTPS with --tls-cert) on (default 127.0.0.1:8080)"},
    {"tls-cert", "TINE_TLS_CERT", 1, "PEM certificate chain (the server's first): serve HTTPS on --listen;\n"
                                     "                         reloaded with --tls-key on SIGHUP (needs --tls-key);\n"
                                     "                         give both several times for several certificates:\n"
                                     "                         each client gets the one whose DNS names match its\n"
                                     "                         SNI name, else the first"},
    {"tls-key", "TINE_TLS_KEY", 1, "PEM private key of --tls-cert, unencrypted (one per --tls-cert, same order)"},
    {"state-dir", "TINE_STATE_DIR", 1, "where the node keeps its token, redis data and bundles\n"
                                       "                         (default $XDG_STATE_HOME/tine or ~/.local/state/tine)"},
    {"redis", "TINE_REDIS_URL", 1, "the Redis to use: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB],\n"
                                   "                         rediss://...[?cacert=/ca.pem] (TLS), unix://[:PASSWORD@]/path, or\n"
                                   "                         redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER\n"
                                   "                         [?db=N&sentinel_password=P] (the master the sentinels name)\n"
                                   "                         (default: start a private redis-server with a generated password)"},
    {"redis-maxmemory", "TINE_REDIS_MAXMEMORY", 1, "memory cap of the private redis-server, e.g. 256mb, 2gb, 0 for none\n"
                                                   "                         (default " REG_EMBEDDED_REDIS_MAXMEMORY
                                                   "; only keys with a TTL are evicted)"},
    {"admin-token", "TINE_ADMIN_TOKEN", 1, "bearer token for the admin API (default: generated into the state dir)"},
    {"no-auth", "TINE_NO_AUTH", 0, "serve the admin API without a token (only on a loopback address)"},
    {"max-bundle-size", "TINE_MAX_BUNDLE_SIZE", 1, "largest deploy bundle accepted, e.g. 16MiB (default 16MiB)"},
    {"max-connections", "TINE_MAX_CONNECTIONS", 1, "client connections open at once; more are answered 503\n"
                                                   "                         and closed (default 1024)"},
    {"max-buffered-body", "TINE_MAX_BUFFERED_BODY", 1, "request body bytes held at once for function calls; a body\n"
                                                       "                         that does not fit gets 503 (default 128MiB, at least 6MiB)"},
    {"http2", "TINE_HTTP2", 1, "on|off: serve HTTP/2: over TLS by ALPN h2, in cleartext by prior\n"
                               "                         knowledge or Upgrade: h2c; bodies up to 64 KiB (default off;\n"
                               "                         see docs/ARCHITECTURE.md, Request path)"},
    {"sdk-dir", "TINE_SDK_DIR", 1, "directory holding the Lua SDK tine.lua (the Python and Node SDKs: its siblings\n"
                                   "                         ../python, ../node) (default: ../share/tine/sdk/lua next to\n"
                                   "                         tined when installed, else the source tree's sdk/lua)"},
    {"otlp-endpoint", "TINE_OTLP_ENDPOINT", 1,
     "export every invocation as a span to this OTLP/HTTP JSON collector URL (e.g. http://127.0.0.1:4318/v1/traces)"},
    {"console-dir", "TINE_CONSOLE_DIR", 1, "directory of the web console's files, served at /_tine/console/ (off: none)\n"
                                       "                         (default: ../share/tine/console next to tined when\n"
                                       "                         installed, else the source tree's console)"},
    {"node-id", "TINE_NODE_ID", 1, "this node's name in a cluster (default HOSTNAME:PORT)"},
    {"max-sandboxes", "TINE_MAX_SANDBOXES", 1, "sandboxes on this node at most, shared fairly between apps; at\n"
                                               "                         the cap an idle one of another function makes room when the\n"
                                               "                         sharing allows, else calls wait (default 1024)"},
    {"app-reserve", "TINE_APP_RESERVE", 1, "sandboxes past --max-sandboxes for the first sandbox of apps that\n"
                                           "                         hold none while others fill the cap (default: a sixteenth\n"
                                           "                         of the cap, at least 1; 0: never past the cap)"},
    {"idle-timeout", "TINE_IDLE_TIMEOUT", 1, "idle sandboxes beyond a function's warm count exit after this,\n"
                                             "                         e.g. 30s, 5m (default 5m)"},
    {"max-queue", "TINE_MAX_QUEUE", 1, "calls that wait per function at its concurrency before 429 (default 100)"},
    {"log-paths", "TINE_LOG_PATHS", 1, "colon-separated directories whose files log triggers may follow\n"
                                       "                         (default: none; a deploy naming another file is refused)"},
    {"docker-socket", "TINE_DOCKER_SOCKET", 1, "container engine API socket for container.* events\n"
                                               "                         (default: DOCKER_HOST=unix://..., else /var/run/docker.sock)"},
    {"docker-events", "TINE_DOCKER_EVENTS", 1, "on|off: turn the engine's container events into CloudEvents (default on)"},
    {"price-gb-s", "TINE_PRICE_GB_S", 1, "price of a GB-second in dollars (default " BILL_DEFAULT_PRICE_GB_S ")"},
    {"price-request", "TINE_PRICE_REQUEST", 1, "price of a request in dollars (default " BILL_DEFAULT_PRICE_REQUEST ")"},
    {"activations", "TINE_ACTIVATIONS", 1, "on|off: record every invocation in Redis (default on)"},
    {"activation-retention", "TINE_ACTIVATION_RETENTION", 1,
     "records kept per app: COUNT, AGE or COUNT,AGE (default 10000,7d)"},
    {"activation-buffer", "TINE_ACTIVATION_BUFFER", 1, "activation records held in memory while Redis is away or slow;\n"
                                                       "                         more are dropped and counted (default 20000)"},
    {"metrics-token", "TINE_METRICS_TOKEN", 1, "bearer token GET /metrics requires (default: none)"},
    {"log-level", "TINE_LOG_LEVEL", 1, "debug|info|warn|error: tined's own log lines (default info)"},
    {"max-invoke-depth", "TINE_MAX_INVOKE_DEPTH", 1, "deepest chain of nested tine.invoke calls, 1..10000 (default 256)"},
    {"log-rate", "TINE_LOG_RATE", 1, "log bytes per second each app may write; more lines are dropped\n"
                                     "                         and counted (default 256KiB)"},
    {"kv-value-max", "TINE_KV_VALUE_MAX", 1, "largest tine.kv value of an app without limits.kv_value_max, up to 6MiB\n"
                                             "                         (default 1MiB)"},
    {"kv-keys-max", "TINE_KV_KEYS_MAX", 1, "tine.kv keys an app without limits.kv_keys_max may hold (default 10000)"},
    {"kv-bytes-max", "TINE_KV_BYTES_MAX", 1, "tine.kv bytes (keys and values) an app without limits.kv_bytes_max\n"
                                             "                         may hold, up to 1TiB (default 64MiB)"},
    {"isolation", "TINE_ISOLATION", 1, "on (default) or off: sandbox isolation beyond the Lua layer\n"
                                       "                         (rlimits, seccomp, namespaces, uid, root dir); off: benchmarks"},
    {"sandbox-uid", "TINE_SANDBOX_UID", 1, "uid and gid of Lua sandboxes when tined runs as root (default 65534)"},
    {"drain-grace", "TINE_DRAIN_GRACE", 1, "on SIGTERM or tine drain, how long the node keeps serving after\n"
                                           "                         GET /_tine/v1/ready turned 503, so load balancers move away;\n"
                                           "                         skipped when nothing asked /ready in the last minute (default 5s)"},
    {"drain-timeout", "TINE_DRAIN_TIMEOUT", 1, "then, how long calls in flight get to finish before they are\n"
                                               "                         answered 503 and their events handed back (default 30s)"},
    {"secrets-key", "TINE_SECRETS_KEY", 1, "file holding the cluster's key of app secrets (32 bytes or 64 hex\n"
                                           "                         digits, the same on every node; openssl rand -hex 32): secrets\n"
                                           "                         are stored AES-256-GCM encrypted with it (default: none; tine\n"
                                           "                         secrets and tine.secret answer an error)"},
    {"config", "TINE_CONFIG", 1, "config file of 'key = value' lines with the names above"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* Prints tined's help: every option with its flag, its environment variable
 * and what it does. */
static void usage(FILE *f)
{
    fprintf(f, "usage: tined [OPTIONS]\n\n"
               "The tine node: serves deployed apps over HTTP and runs their functions in sandboxes.\n\n"
               "Options (each also as an environment variable and a config-file key):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", options[i].name, options[i].takes_value ? " V" : "");
        fprintf(f, "  %-22s %s\n  %-22s [env %s]\n", flag, options[i].help, "", options[i].env);
    }
    fprintf(f, "  %-22s %s\n  %-22s %s\n", "--help", "show this help", "--version", "show the version");
}

/* Prints "tined: " and the message on stderr: a command-line or config-file
 * error, in plain text as any command says it before it runs (the JSON log
 * is the running node's). */
static void config_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void config_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tined: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Parses "16MiB", "512KiB", "64Mi", "1GiB", "1TiB", "1000000" into bytes. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || s[0] == '-' || s[0] == '+')
        return -1;
    unsigned long long mul = 1;
    if (*end == '\0' || strcmp(end, "B") == 0)
        mul = 1;
    else if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KB") == 0 || strcmp(end, "Ki") == 0)
        mul = 1024;
    else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0 || strcmp(end, "MB") == 0 || strcmp(end, "Mi") == 0)
        mul = 1024 * 1024;
    else if (strcmp(end, "GiB") == 0 || strcmp(end, "G") == 0 || strcmp(end, "GB") == 0 || strcmp(end, "Gi") == 0)
        mul = 1024ull * 1024 * 1024;
    else if (strcmp(end, "TiB") == 0 || strcmp(end, "T") == 0 || strcmp(end, "TB") == 0 || strcmp(end, "Ti") == 0)
        mul = 1024ull * 1024 * 1024 * 1024;
    else
        return -1;
    if (v > SIZE_MAX / mul)
        return -1;
    *out = (size_t)(v * mul);
    return *out > 0 ? 0 : -1;
}

/* A size option within [1, max] (max_text: max as the user writes it):
 * stores it, or prints why not and returns -1. */
static int size_option(const char *name, const char *text, size_t max, const char *max_text, const char *example,
                       uint64_t *out)
{
    size_t v = 0;
    if (text == NULL)
        return 0;
    if (parse_size(text, &v) != 0 || v > max) {
        config_error("--%s %s: expected a size from 1 byte to %s such as %s", name, text, max_text, example);
        return -1;
    }
    *out = v;
    return 0;
}

/* Options kept as text until every source is read, then parsed. */
typedef struct {
    char *no_auth;
    char *max_bundle;
    char *max_sandboxes;
    char *app_reserve;
    char *idle_timeout;
    char *max_queue;
    char *docker_events;
    char *log_rate;
    char *kv_value_max;
    char *kv_keys_max;
    char *kv_bytes_max;
    char *max_connections;
    char *max_buffered_body;
    char *http2;
    char *activation_buffer;
    char *drain_grace;
    char *drain_timeout;
} raw_values_t;

/* Parses a whole decimal number within [min, max]. */
static int parse_count(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || s[0] == '+' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Where the value of option `name` goes: a field of cfg, or of raw for
 * options parsed after all sources are read. */
static char **slot(tined_config_t *cfg, const char *name, raw_values_t *raw)
{
    if (strcmp(name, "log-paths") == 0)
        return &cfg->log_paths;
    if (strcmp(name, "docker-socket") == 0)
        return &cfg->docker_socket;
    if (strcmp(name, "docker-events") == 0)
        return &raw->docker_events;
    if (strcmp(name, "listen") == 0)
        return &cfg->listen;
    if (strcmp(name, "tls-cert") == 0)
        return &cfg->tls_cert;
    if (strcmp(name, "tls-key") == 0)
        return &cfg->tls_key;
    if (strcmp(name, "state-dir") == 0)
        return &cfg->state_dir;
    if (strcmp(name, "redis") == 0)
        return &cfg->redis_url;
    if (strcmp(name, "redis-maxmemory") == 0)
        return &cfg->redis_maxmemory;
    if (strcmp(name, "admin-token") == 0)
        return &cfg->admin_token;
    if (strcmp(name, "no-auth") == 0)
        return &raw->no_auth;
    if (strcmp(name, "max-bundle-size") == 0)
        return &raw->max_bundle;
    if (strcmp(name, "max-sandboxes") == 0)
        return &raw->max_sandboxes;
    if (strcmp(name, "app-reserve") == 0)
        return &raw->app_reserve;
    if (strcmp(name, "max-connections") == 0)
        return &raw->max_connections;
    if (strcmp(name, "activation-buffer") == 0)
        return &raw->activation_buffer;
    if (strcmp(name, "max-buffered-body") == 0)
        return &raw->max_buffered_body;
    if (strcmp(name, "http2") == 0)
        return &raw->http2;
    if (strcmp(name, "idle-timeout") == 0)
        return &raw->idle_timeout;
    if (strcmp(name, "drain-grace") == 0)
        return &raw->drain_grace;
    if (strcmp(name, "drain-timeout") == 0)
        return &raw->drain_timeout;
    if (strcmp(name, "max-queue") == 0)
        return &raw->max_queue;
    if (strcmp(name, "log-rate") == 0)
        return &raw->log_rate;
    if (strcmp(name, "kv-value-max") == 0)
        return &raw->kv_value_max;
    if (strcmp(name, "kv-keys-max") == 0)
        return &raw->kv_keys_max;
    if (strcmp(name, "kv-bytes-max") == 0)
        return &raw->kv_bytes_max;
    if (strcmp(name, "sdk-dir") == 0)
        return &cfg->sdk_dir;
    if (strcmp(name, "console-dir") == 0)
        return &cfg->console_dir;
    if (strcmp(name, "otlp-endpoint") == 0)
        return &cfg->otlp_endpoint;
    if (strcmp(name, "node-id") == 0)
        return &cfg->node_id;
    if (strcmp(name, "config") == 0)
        return &cfg->config_file;
    if (strcmp(name, "secrets-key") == 0)
        return &cfg->secrets_key_file;
    if (strcmp(name, "price-gb-s") == 0)
        return &cfg->price_gb_s_str;
    if (strcmp(name, "price-request") == 0)
        return &cfg->price_request_str;
    if (strcmp(name, "activations") == 0)
        return &cfg->activations_str;
    if (strcmp(name, "activation-retention") == 0)
        return &cfg->retention_str;
    if (strcmp(name, "metrics-token") == 0)
        return &cfg->metrics_token;
    if (strcmp(name, "log-level") == 0)
        return &cfg->log_level;
    if (strcmp(name, "max-invoke-depth") == 0)
        return &cfg->max_invoke_depth_str;
    if (strcmp(name, "isolation") == 0)
        return &cfg->isolation_text;
    if (strcmp(name, "sandbox-uid") == 0)
        return &cfg->sandbox_uid_text;
    return NULL;
}

/* The option named by the len bytes at name, or NULL. */
static const option_t *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Cuts the white space around s in place; returns where s now starts. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Whether option `name` may be given several times (its values are kept
 * in order, a newline between them): the TLS certificates and keys. */
static bool repeatable(const char *name)
{
    return strcmp(name, "tls-cert") == 0 || strcmp(name, "tls-key") == 0;
}

/* Sets *dst to value, or adds value after a newline when `append`. */
static void set_value(char **dst, const char *value, bool append)
{
    char *v = append && *dst ? xasprintf("%s\n%s", *dst, value) : xstrdup(value);
    free(*dst);
    *dst = v;
}

/* Reads the config file: values only fill options still unset (a repeatable
 * option given again in the file adds to what the file gave). */
static int load_file(tined_config_t *cfg, const char *path, raw_values_t *raw)
{
    bool from_file[2] = {cfg->tls_cert == NULL, cfg->tls_key == NULL};
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        config_error("config file %s: cannot open", path);
        return -1;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char *key = s;
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
        }
        key = trim(key);
        const option_t *o = find_option(key, strlen(key));
        if (o == NULL || strcmp(o->name, "config") == 0) {
            config_error("%s:%d: unknown key '%s'", path, lineno, key);
            fclose(f);
            return -1;
        }
        if (o->takes_value && (value == NULL || *value == '\0')) {
            config_error("%s:%d: %s: expected 'key = value'", path, lineno, key);
            fclose(f);
            return -1;
        }
        char **dst = slot(cfg, o->name, raw);
        bool more = repeatable(o->name) && from_file[strcmp(o->name, "tls-key") == 0];
        if (*dst == NULL || more)
            set_value(dst, value ? value : "true", more);
    }
    fclose(f);
    return 0;
}

bool tined_listen_is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 ||
           strncmp(listen, "localhost:", 10) == 0;
}

/* Whether s is 1, true, yes or on. */
static bool truthy(const char *s)
{
    return s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0);
}

/* Parses "10000", "7d", "10000,7d" (count of records, age: s, m, h, d). */
static int parse_retention(const char *s, uint32_t *count, uint32_t *age_s)
{
    while (*s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || v == 0 || *s == '-' || *s == '+')
            return -1;
        unsigned long long mul = 0;
        if (*end == 's')
            mul = 1;
        else if (*end == 'm')
            mul = 60;
        else if (*end == 'h')
            mul = 3600;
        else if (*end == 'd')
            mul = 86400;
        if (mul) {
            if (v > 3650ull * 86400 / mul)
                return -1;
            *age_s = (uint32_t)(v * mul);
            end++;
        } else {
            if (v > 10000000ull)
                return -1;
            *count = (uint32_t)v;
        }
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return -1;
        s = end;
    }
    return 0;
}

/* --redis and --redis-maxmemory; messages name the flag (and never the
 * password). */
static int parse_redis_options(tined_config_t *cfg)
{
    char err[512];
    rds_url_t u;
    if (cfg->redis_url && rds_url_parse(cfg->redis_url, &u, err, sizeof err) != 0) {
        config_error("--redis: %s", err);
        return -1;
    }
    if (cfg->redis_url)
        rds_url_dispose(&u);
    const char *m = cfg->redis_maxmemory;
    if (m == NULL)
        return 0;
    /* Redis's memory syntax: a number, then b, k, kb, m, mb, g or gb. */
    size_t digits = strspn(m, "0123456789");
    static const char *const units[] = {"", "b", "k", "kb", "m", "mb", "g", "gb"};
    bool unit_ok = false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        unit_ok = unit_ok || strcasecmp(m + digits, units[i]) == 0;
    if (digits == 0 || digits > 15 || !unit_ok) {
        config_error("--redis-maxmemory %s: expected a size such as 256mb or 2gb (0: no cap)", m);
        return -1;
    }
    if (cfg->redis_url)
        tine_log(TINE_LOG_WARN, "--redis-maxmemory only applies to the private redis-server (no --redis)");
    return 0;
}

/* Prices, --activations, retention and log level; messages name the flag. */
static int parse_billing_options(tined_config_t *cfg)
{
    char err[256];
    const char *gb_s = cfg->price_gb_s_str ? cfg->price_gb_s_str : BILL_DEFAULT_PRICE_GB_S;
    const char *req = cfg->price_request_str ? cfg->price_request_str : BILL_DEFAULT_PRICE_REQUEST;
    if (bill_parse_price(gb_s, &cfg->price_gb_s_pusd, err, sizeof(err)) != 0) {
        config_error("--price-gb-s %s", err);
        return -1;
    }
    if (bill_parse_price(req, &cfg->price_request_pusd, err, sizeof(err)) != 0) {
        config_error("--price-request %s", err);
        return -1;
    }
    const char *act = cfg->activations_str ? cfg->activations_str : "on";
    if (strcmp(act, "on") != 0 && strcmp(act, "off") != 0) {
        config_error("--activations %s: expected on or off", act);
        return -1;
    }
    cfg->activations = strcmp(act, "on") == 0;
    cfg->retention_count = 10000;
    cfg->retention_s = 7 * 86400;
    if (cfg->retention_str && parse_retention(cfg->retention_str, &cfg->retention_count, &cfg->retention_s) != 0) {
        config_error("--activation-retention %s: expected COUNT, AGE or COUNT,AGE such as 10000,7d "
                     "(count 1 to 10000000, age in s, m, h or d up to 3650d)",
                     cfg->retention_str);
        return -1;
    }
    if (cfg->log_level && tine_log_set_level(cfg->log_level) != 0) {
        config_error("--log-level %s: expected debug, info, warn or error", cfg->log_level);
        return -1;
    }
    return 0;
}

/* --max-connections, --max-buffered-body, --http2 and that --tls-cert and
 * --tls-key come together; messages name the flag. */
static int parse_http_limits(tined_config_t *cfg, const raw_values_t *raw)
{
    int rc = 0;
    cfg->max_connections = 1024;
    if (raw->max_connections && parse_count(raw->max_connections, 1, 1000000, &cfg->max_connections) != 0) {
        config_error("--max-connections %s: expected a number from 1 to 1000000", raw->max_connections);
        rc = -1;
    }
    cfg->max_buffered_body = 128u * 1024 * 1024;
    if (raw->max_buffered_body && (parse_size(raw->max_buffered_body, &cfg->max_buffered_body) != 0 ||
                                   cfg->max_buffered_body < 6u * 1024 * 1024)) {
        config_error("--max-buffered-body %s: expected a size of at least 6MiB such as 256MiB", raw->max_buffered_body);
        rc = -1;
    }
    cfg->http2 = raw->http2 != NULL && strcmp(raw->http2, "on") == 0;
    if (raw->http2 && !cfg->http2 && strcmp(raw->http2, "off") != 0) {
        config_error("--http2 %s: expected on or off", raw->http2);
        rc = -1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        config_error("--%s needs --%s: HTTPS takes a certificate and its private key", cfg->tls_cert ? "tls-cert" : "tls-key",
                     cfg->tls_cert ? "tls-key" : "tls-cert");
        rc = -1;
    }
    size_t ncert = 0, nkey = 0;
    for (const char *p = cfg->tls_cert; p && *p; p++)
        ncert += *p == '\n';
    for (const char *p = cfg->tls_key; p && *p; p++)
        nkey += *p == '\n';
    if (cfg->tls_cert && cfg->tls_key && ncert != nkey) {
        config_error("--tls-cert given %zu times but --tls-key %zu: give them in pairs, each key in the order of its "
                     "certificate",
                     ncert + 1, nkey + 1);
        rc = -1;
    }
    return rc;
}

/* --drain-grace and --drain-timeout: durations up to an hour (0 allowed). */
static int parse_drain_options(tined_config_t *cfg, const raw_values_t *raw)
{
    int rc = 0;
    cfg->drain_grace_ms = 5000;
    cfg->drain_timeout_ms = 30000;
    const char *names[2] = {"drain-grace", "drain-timeout"};
    const char *texts[2] = {raw->drain_grace, raw->drain_timeout};
    uint64_t *dst[2] = {&cfg->drain_grace_ms, &cfg->drain_timeout_ms};
    for (int i = 0; i < 2; i++) {
        uint64_t ms = 0;
        if (texts[i] == NULL)
            continue;
        if ((strcmp(texts[i], "0") != 0 && reg_parse_duration_ms(texts[i], &ms) != 0) || ms > 3600 * 1000) {
            config_error("--%s %s: expected a duration from 0 to 1h such as 5s or 500ms", names[i], texts[i]);
            rc = -1;
        } else {
            *dst[i] = ms;
        }
    }
    return rc;
}

/* A directory of files installed with tined: `rel` next to the binary when
 * it holds `probe` (make install, the package), else the source tree's
 * `source` it was built from. */
static char *installed_or_source(const char *rel, const char *probe, const char *source)
{
    char *sibling = tine_exe_sibling(rel);
    char *installed = sibling ? realpath(sibling, NULL) : NULL;
    free(sibling);
    char *file = installed ? xasprintf("%s/%s", installed, probe) : NULL;
    bool found = file && access(file, R_OK) == 0;
    free(file);
    if (found)
        return installed;
    free(installed);
    return xstrdup(source);
}

int tined_config_load(tined_config_t *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    raw_values_t raw = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("tined " TINED_VERSION "\n");
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            config_error("unexpected argument '%s' (see tined --help)", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        const option_t *o = find_option(name, eq ? (size_t)(eq - name) : strlen(name));
        if (o == NULL) {
            config_error("unknown option '%s' (see tined --help)", a);
            return -1;
        }
        const char *value = "true";
        if (o->takes_value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                config_error("--%s needs a value", o->name);
                return -1;
            }
        }
        set_value(slot(cfg, o->name, &raw), value, repeatable(o->name));
    }
    for (size_t i = 0; i < NOPTIONS; i++) {
        char **dst = slot(cfg, options[i].name, &raw);
        const char *env = getenv(options[i].env);
        if (*dst == NULL && env && *env)
            *dst = xstrdup(env);
    }
    int rc = 0;
    if (cfg->config_file && load_file(cfg, cfg->config_file, &raw) != 0)
        rc = -1;
    if (cfg->listen == NULL)
        cfg->listen = xstrdup("127.0.0.1:8080");
    if (cfg->state_dir == NULL) {
        const char *xdg = getenv("XDG_STATE_HOME");
        const char *home = getenv("HOME");
        cfg->state_dir = xdg && *xdg ? xasprintf("%s/tine", xdg) : xasprintf("%s/.local/state/tine", home ? home : ".");
    }
    if (cfg->sdk_dir == NULL)
        cfg->sdk_dir = installed_or_source("../share/tine/sdk/lua", "tine.lua", TINE_SOURCE_DIR "/sdk/lua");
    if (cfg->console_dir == NULL)
        cfg->console_dir = installed_or_source("../share/tine/console", "index.html", TINE_SOURCE_DIR "/console");
    cfg->no_auth = truthy(raw.no_auth);
    cfg->max_bundle = 16 * 1024 * 1024;
    if (raw.max_bundle && parse_size(raw.max_bundle, &cfg->max_bundle) != 0) {
        config_error("--max-bundle-size %s: expected a size such as 16MiB", raw.max_bundle);
        rc = -1;
    }
    cfg->max_sandboxes = 1024;
    if (raw.max_sandboxes && parse_count(raw.max_sandboxes, 1, 1000000, &cfg->max_sandboxes) != 0) {
        config_error("--max-sandboxes %s: expected a number from 1 to 1000000", raw.max_sandboxes);
        rc = -1;
    }
    cfg->app_reserve = cfg->max_sandboxes / 16 > 0 ? cfg->max_sandboxes / 16 : 1;
    if (raw.app_reserve && parse_count(raw.app_reserve, 0, 1000000, &cfg->app_reserve) != 0) {
        config_error("--app-reserve %s: expected a number from 0 to 1000000", raw.app_reserve);
        rc = -1;
    }
    if (parse_http_limits(cfg, &raw) != 0)
        rc = -1;
    cfg->max_queue = 100;
    cfg->activation_buffer = 20000;
    if (raw.activation_buffer && parse_count(raw.activation_buffer, 1, 10000000, &cfg->activation_buffer) != 0) {
        config_error("--activation-buffer %s: expected a number from 1 to 10000000", raw.activation_buffer);
        rc = -1;
    }
    if (raw.max_queue && parse_count(raw.max_queue, 1, 1000000, &cfg->max_queue) != 0) {
        config_error("--max-queue %s: expected a number from 1 to 1000000", raw.max_queue);
        rc = -1;
    }
    cfg->idle_timeout_ms = 5 * 60 * 1000;
    if (raw.idle_timeout && (reg_parse_duration_ms(raw.idle_timeout, &cfg->idle_timeout_ms) != 0 ||
                             cfg->idle_timeout_ms < 10 || cfg->idle_timeout_ms > 7 * 24 * 3600 * 1000ull)) {
        config_error("--idle-timeout %s: expected a duration from 10ms to 168h such as 30s or 5m", raw.idle_timeout);
        rc = -1;
    }
    if (parse_drain_options(cfg, &raw) != 0)
        rc = -1;
    if (size_option("log-rate", raw.log_rate, (size_t)1 << 30, "1GiB", "256KiB", &cfg->log_rate) != 0 ||
        size_option("kv-value-max", raw.kv_value_max, REG_KV_VALUE_MAX_LIMIT, "6MiB", "1MiB", &cfg->kv_value_max) !=
            0 ||
        size_option("kv-bytes-max", raw.kv_bytes_max, REG_KV_BYTES_MAX_LIMIT, "1TiB", "64MiB", &cfg->kv_bytes_max) !=
            0)
        rc = -1;
    unsigned keys = 0;
    if (raw.kv_keys_max && parse_count(raw.kv_keys_max, 1, REG_KV_KEYS_MAX_LIMIT, &keys) != 0) {
        config_error("--kv-keys-max %s: expected a number from 1 to %u", raw.kv_keys_max,
                     (unsigned)REG_KV_KEYS_MAX_LIMIT);
        rc = -1;
    }
    cfg->kv_keys_max = keys;
    cfg->max_invoke_depth = 256;
    if (cfg->max_invoke_depth_str) {
        char *end;
        unsigned long d = strtoul(cfg->max_invoke_depth_str, &end, 10);
        if (*end != '\0' || end == cfg->max_invoke_depth_str || d < 1 || d > 10000 ||
            cfg->max_invoke_depth_str[0] == '-') {
            config_error("--max-invoke-depth %s: expected an integer from 1 to 10000", cfg->max_invoke_depth_str);
            rc = -1;
        } else {
            cfg->max_invoke_depth = (unsigned)d;
        }
    }
    cfg->isolation = cfg->isolation_text == NULL || strcmp(cfg->isolation_text, "on") == 0;
    if (cfg->isolation_text && !cfg->isolation && strcmp(cfg->isolation_text, "off") != 0) {
        config_error("--isolation %s: expected on or off", cfg->isolation_text);
        rc = -1;
    }
    cfg->sandbox_uid = 65534;
    if (cfg->sandbox_uid_text) {
        char *end;
        const char *t = cfg->sandbox_uid_text;
        unsigned long v = strtoul(t, &end, 10);
        if (end == t || *end != '\0' || t[0] == '-' || v == 0 || v >= 4294967295ul) {
            config_error("--sandbox-uid %s: expected a uid from 1 to 4294967294", t);
            rc = -1;
        } else {
            cfg->sandbox_uid = (unsigned)v;
        }
    }
    if (cfg->secrets_key_file && *cfg->secrets_key_file) {
        char kerr[512];
        if (tine_secret_key_load(cfg->secrets_key_file, cfg->secrets_key, kerr, sizeof kerr) != 0) {
            config_error("--%s", kerr);
            rc = -1;
        } else {
            cfg->has_secrets_key = true;
        }
    }
    if (cfg->no_auth && !tined_listen_is_loopback(cfg->listen)) {
        config_error("--no-auth is only allowed on a loopback address, not %s", cfg->listen);
        rc = -1;
    }
    if (parse_billing_options(cfg) != 0)
        rc = -1;
    if (parse_redis_options(cfg) != 0)
        rc = -1;
    if (cfg->node_id == NULL) {
        char host[256] = "node";
        gethostname(host, sizeof(host) - 1);
        const char *port = strrchr(cfg->listen, ':');
        cfg->node_id = xasprintf("%s:%s", host, port ? port + 1 : "0");
    }
    if (cfg->docker_socket == NULL) {
        const char *dh = getenv("DOCKER_HOST");
        cfg->docker_socket = xstrdup(dh && strncmp(dh, "unix://", 7) == 0 ? dh + 7 : "/var/run/docker.sock");
    }
    cfg->docker_events = raw.docker_events == NULL || truthy(raw.docker_events);
    if (raw.docker_events && !cfg->docker_events && strcmp(raw.docker_events, "off") != 0 &&
        strcmp(raw.docker_events, "false") != 0 && strcmp(raw.docker_events, "0") != 0 &&
        strcmp(raw.docker_events, "no") != 0) {
        config_error("--docker-events %s: expected on or off", raw.docker_events);
        rc = -1;
    }
    free(raw.no_auth);
    free(raw.max_bundle);
    free(raw.max_sandboxes);
    free(raw.app_reserve);
    free(raw.idle_timeout);
    free(raw.max_queue);
    free(raw.docker_events);
    free(raw.log_rate);
    free(raw.kv_value_max);
    free(raw.kv_keys_max);
    free(raw.kv_bytes_max);
    free(raw.max_connections);
    free(raw.activation_buffer);
    free(raw.max_buffered_body);
    free(raw.http2);
    free(raw.drain_grace);
    free(raw.drain_timeout);
    return rc;
}

void tined_config_dispose(tined_config_t *cfg)
{
    free(cfg->listen);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->state_dir);
    free(cfg->redis_url);
    free(cfg->redis_maxmemory);
    free(cfg->admin_token);
    free(cfg->sdk_dir);
    free(cfg->console_dir);
    free(cfg->otlp_endpoint);
    free(cfg->node_id);
    free(cfg->config_file);
    free(cfg->secrets_key_file);
    memset(cfg->secrets_key, 0, sizeof cfg->secrets_key);
    free(cfg->log_paths);
    free(cfg->docker_socket);
    free(cfg->price_gb_s_str);
    free(cfg->price_request_str);
    free(cfg->activations_str);
    free(cfg->retention_str);
    free(cfg->metrics_token);
    free(cfg->log_level);
    free(cfg->max_invoke_depth_str);
    free(cfg->isolation_text);
    free(cfg->sandbox_uid_text);
}
