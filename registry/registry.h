/* registry: the app manifest model and parser, route tables, bundles, and the
 * versioned store on Redis. This is the module's one public header. */
#ifndef TINE_REGISTRY_H
#define TINE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- manifest */

typedef enum { REG_RUNTIME_LUA = 0, REG_RUNTIME_EXEC = 1 } reg_runtime_t;

/* The largest request body a function can receive (the body limit of the
 * sandbox wire, sandbox/wire.h), and the default of a function's max_body. */
#define REG_MAX_BODY_LIMIT (6u * 1024u * 1024u)

typedef struct {
    char *key;
    char *value;
} reg_kv_t;

typedef struct {
    char *name;
    reg_runtime_t runtime;
    char *handler;        /* as written: "src/items.lua#list" or "scripts/x.sh" */
    char *handler_file;   /* bundle-relative path: "src/items.lua" */
    char *handler_export; /* "list"; NULL for runtime exec */
    unsigned handler_line; /* where the handler's value is in the manifest (1-based) */
    unsigned handler_col;
    uint32_t memory_mb;   /* 16 .. 10240 */
    uint32_t timeout_ms;  /* 1 .. 900000 */
    uint32_t concurrency; /* 1 .. 1000 */
    uint32_t warm;        /* 0 .. concurrency */
    uint32_t max_body;    /* largest request body in bytes, 0 .. REG_MAX_BODY_LIMIT (default: that) */
    bool network;         /* exec runtime: network access (default false) */
    reg_kv_t *env;        /* app env merged under function env, sorted by key */
    size_t env_len;
} reg_function_t;

typedef struct {
    char *method;   /* upper case: GET POST PUT DELETE PATCH HEAD OPTIONS, or "ANY" */
    char *path;     /* "/items/:id"; a last segment "*name" takes the rest */
    char *function; /* name of a function of the manifest */
    size_t function_index;
} reg_route_t;

typedef enum { REG_TRIGGER_LOG = 0, REG_TRIGGER_EVENT = 1, REG_TRIGGER_SCHEDULE = 2 } reg_trigger_kind_t;

typedef struct {
    reg_trigger_kind_t on;
    char *source;   /* log: "function:NAME" | "file:/abs/path"; event: glob (may be NULL) */
    char *filter;   /* log: filter pattern (may be NULL) */
    char *type;     /* event: type glob */
    char *cron;     /* schedule: 5-field cron or "@every 30s" */
    char *function; /* target */
    size_t function_index;
    uint32_t attempts; /* delivery attempts, default 3 */
} reg_trigger_t;

typedef struct {
    char *app;         /* [a-z0-9-], 1..63, starts with a letter or digit */
    char *description; /* may be NULL */
    char *host;        /* optional own Host; NULL = served under /<app>/ */
    reg_kv_t *env;     /* app-wide env, sorted by key */
    size_t env_len;
    reg_function_t *functions;
    size_t functions_len;
    reg_route_t *routes;
    size_t routes_len;
    reg_trigger_t *triggers;
    size_t triggers_len;
    /* Hosts tine.http may reach, lower case: "api.example.com",
     * "*.example.com" (any subdomain), "*" (any host), "10.0.0.7", "::1".
     * allow_outbound_set is false when the key is absent: then any host is
     * allowed except at loopback, link-local or unspecified addresses. */
    char **allow_outbound;
    size_t allow_outbound_len;
    bool allow_outbound_set;
    /* limits: the app's tine.kv quotas; 0 where the manifest sets none (the
     * node's defaults apply). Within 1..REG_KV_*_LIMIT. */
    uint64_t kv_value_max; /* bytes of one value */
    uint64_t kv_keys_max;  /* keys */
    uint64_t kv_bytes_max; /* bytes of keys and values */
} reg_manifest_t;

#define REG_KV_VALUE_MAX_LIMIT (6u * 1024u * 1024u) /* a value travels in one wire frame */
#define REG_KV_KEYS_MAX_LIMIT 1000000000u
#define REG_KV_BYTES_MAX_LIMIT (1ull << 40) /* 1 TiB */

/* Parses and validates a manifest held in memory. `filename` names the file in
 * error messages and picks the syntax: ".json" is parsed with jansson,
 * anything else with libyaml (YAML is a superset of JSON anyway). On success
 * returns 0 and stores a new manifest in *out (free with reg_manifest_free).
 * On failure returns TINE_EINVAL, stores nothing, and writes one line to err:
 * "file:line:col: key.path: what was expected". Never aborts on bad input or
 * out-of-memory (returns -ENOMEM). */
int reg_manifest_parse(const char *filename, const char *data, size_t len, reg_manifest_t **out, char *err,
                       size_t errlen);

void reg_manifest_free(reg_manifest_t *m);

/* Looks up a function by name; returns NULL when absent. */
const reg_function_t *reg_manifest_find_function(const reg_manifest_t *m, const char *name);

/* Validates a cron expression: 5 fields (min hour dom month dow, with * , - /
 * and names jan..dec, sun..sat) or "@every <duration>" or @hourly/@daily/
 * @weekly/@monthly/@yearly. Returns 0 or TINE_EINVAL with a message in err. */
int reg_cron_validate(const char *expr, char *err, size_t errlen);

/* The first firing time of a valid cron expression strictly after
 * `after_ms` (unix ms), in UTC: minute boundaries for the five fields, whole
 * multiples of the interval since the epoch for "@every" (so every node
 * computes the same ticks). Returns 0, TINE_EINVAL for a bad expression, or
 * TINE_ENOTFOUND when it never fires. */
int reg_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms);

/* Parses a duration "250ms", "3s", "2m", "1h", "1m30s" into milliseconds.
 * Returns 0 or TINE_EINVAL. */
int reg_parse_duration_ms(const char *s, uint64_t *out_ms);

/* ------------------------------------------------------------- route table */

#define REG_ROUTE_MAX_PARAMS 16

typedef struct {
    const char *name; /* points into the table's pattern; not NUL-terminated */
    size_t name_len;
    const char *value; /* points into the matched path; not decoded */
    size_t value_len;
} reg_route_param_t;

typedef struct reg_route_table reg_route_table_t;

reg_route_table_t *reg_route_table_new(void);
void reg_route_table_free(reg_route_table_t *t);

/* Checks that a route path is well formed: starts with "/", segments are
 * literals, ":name" params or a final "*name" (or bare "*") rest; at most
 * REG_ROUTE_MAX_PARAMS params; no duplicate param names. Returns 0 or
 * TINE_EINVAL with a message in err. */
int reg_route_path_validate(const char *path, char *err, size_t errlen);

/* Adds a route. `method` is upper case or "ANY"; `data` is returned by match.
 * Returns TINE_ECONFLICT (message in err) when the same method and the same
 * path shape (param names ignored) is already present, TINE_EINVAL for a bad
 * path. The table copies method and pattern. */
int reg_route_table_add(reg_route_table_t *t, const char *method, const char *pattern, void *data, char *err,
                        size_t errlen);

/* Matches a request. Per segment a literal beats a :param, which beats a
 * *rest; an exact method beats ANY. Returns the route's data and fills params
 * (up to REG_ROUTE_MAX_PARAMS) and *nparams, or returns NULL; then
 * *path_matched is set to 1 when some route matched the path with another
 * method (so the caller can answer 405), else 0. `path` excludes the query. */
void *reg_route_table_match(const reg_route_table_t *t, const char *method, size_t method_len, const char *path,
                            size_t path_len, reg_route_param_t *params, size_t *nparams, int *path_matched);

/* ------------------------------------------------------------------ bundle */

typedef struct {
    char *path; /* normalized relative path, "/"-separated, no "." or ".." */
    char *data;
    size_t len;
    char sha256[65]; /* lower-case hex */
} reg_bundle_file_t;

typedef struct {
    reg_bundle_file_t *files;
    size_t files_len;
    size_t total_len;
    const char *manifest_path;   /* points at the manifest file's path */
    reg_manifest_t *manifest;    /* parsed and validated */
} reg_bundle_t;

typedef struct {
    size_t max_total;   /* uncompressed bytes in all files (default 64 MiB) */
    size_t max_files;   /* default 10000 */
} reg_bundle_limits_t;

/* Reads a tar.gz bundle from memory, checks every entry (regular files and
 * directories only: no links, devices, absolute paths or ".."), enforces the
 * limits, finds the manifest at the root (tine.yaml, tine.yml or tine.json),
 * parses it, checks every handler file exists, and compiles every ".lua" file
 * to check its syntax (without running it). On success stores a new bundle in
 * *out (free with reg_bundle_free). On failure returns TINE_EINVAL or
 * TINE_ETOOBIG with a one-line message naming the entry and what is wrong. */
int reg_bundle_read(const void *tgz, size_t len, const reg_bundle_limits_t *limits, reg_bundle_t **out, char *err,
                    size_t errlen);
void reg_bundle_free(reg_bundle_t *b);

/* Packs an app directory into a tar.gz in memory: the manifest and every
 * regular file below dir, skipping names starting with "." and following no
 * symlinks (a symlink is an error). Returns 0 and a malloc'd buffer, or an
 * error with a message. */
int reg_bundle_pack_dir(const char *dir, void **out, size_t *out_len, char *err, size_t errlen);

/* Lower-case hex SHA-256 of a buffer into out[65]. */
void reg_sha256_hex(const void *data, size_t len, char out[65]);

/* ------------------------------------------------------------------- store */

typedef struct reg_store reg_store_t;

/* Connects to Redis at `url` (any URL of redis/tine_redis.h), logged in.
 * Returns NULL with a message in err on failure. Synchronous. */
reg_store_t *reg_store_connect(const char *url, char *err, size_t errlen);
void reg_store_free(reg_store_t *s);

/* The identity of a bundle's content: SHA-256 over its file paths and their
 * SHA-256, the same for the same files however they were packed. */
void reg_bundle_identity(const reg_bundle_t *b, char out[65]);

/* Stages a validated bundle as the next version of its app, not live: its
 * files (stored once by SHA-256) and its version hash. Returns 0 and the
 * new version number. Its files are marked as in use by a deploy under way
 * (*mark) until reg_store_release_marks, which the caller calls once the
 * version is live or removed (also after a failure). */
int reg_store_stage(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, uint64_t *mark, char *err, size_t errlen);
void reg_store_release_marks(reg_store_t *s, uint64_t mark);

/* Makes a staged version live and publishes it on RDS_CHANNEL_DEPLOYS, in one
 * step. Returns TINE_ECONFLICT (a newer version, stored in *newer, became
 * live meanwhile: it stays), TINE_ENOTFOUND when the version is gone. */
int reg_store_make_live(reg_store_t *s, const char *app, uint64_t version, uint64_t *newer, char *err, size_t errlen);

/* Removes a staged version that did not go live (never the live one). */
int reg_store_unstage(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen);

/* Stages a bundle and makes it live: reg_store_stage + reg_store_make_live. */
int reg_store_deploy(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, char *err, size_t errlen);

/* The newest version of the bundle's app with the same content
 * (reg_bundle_identity), or 0 in *version. */
int reg_store_find_identical(reg_store_t *s, const reg_bundle_t *b, uint64_t *version);

typedef struct {
    uint64_t *pruned; /* versions removed, ascending */
    size_t npruned;
    uint64_t *kept; /* versions left, ascending */
    size_t nkept;
    uint64_t live;
    size_t blobs_deleted; /* files no version references any more */
} reg_prune_result_t;

/* Removes the versions of `app` but the `keep` newest, the live one (even
 * when older) and one a deploy under way staged, then the stored files no
 * version of any app references (safe against concurrent deploys). Returns TINE_ENOTFOUND for an unknown app.
 * Dispose *out with reg_prune_result_dispose (also after a failure). */
int reg_store_prune(reg_store_t *s, const char *app, size_t keep, reg_prune_result_t *out, char *err, size_t errlen);
void reg_prune_result_dispose(reg_prune_result_t *r);

typedef struct {
    size_t versions;
    size_t blobs_deleted;
} reg_delete_result_t;

/* Deletes an app from the registry: first its live alias and registration,
 * announced as version 0 so every node stops serving it; then its versions
 * and the files only they referenced. Kept: its version counter (a later app
 * of the same name continues the numbering). What other modules keep of the
 * app (tine.kv keys, dead letters, records) they delete themselves
 * (inv_delete_app_data, ev_delete_app, bill_delete_app). Returns
 * TINE_ENOTFOUND for an unknown app. */
int reg_store_delete_app(reg_store_t *s, const char *app, reg_delete_result_t *out, char *err, size_t errlen);

/* Whether `app` ever had a version here (its version counter exists), even
 * when it was deleted since. */
int reg_store_app_known(reg_store_t *s, const char *app, bool *known);

/* Moves the live alias of `app` to `version` (0 = the version before the
 * current live one) atomically and publishes. Returns TINE_ENOTFOUND when the
 * app or version does not exist. Stores the version made live in *now_live. */
int reg_store_rollback(reg_store_t *s, const char *app, uint64_t version, uint64_t *now_live, char *err,
                       size_t errlen);

typedef struct {
    uint64_t version;
    int64_t created_ms; /* unix ms */
    char bundle_sha256[65];
    size_t files;
} reg_version_info_t;

/* Lists app names (sorted). Caller frees each string and the array. */
int reg_store_list_apps(reg_store_t *s, char ***names, size_t *n);
/* Live version of an app (0 when none). */
int reg_store_live_version(reg_store_t *s, const char *app, uint64_t *version);
/* All versions of an app, ascending. Caller frees *out. */
int reg_store_list_versions(reg_store_t *s, const char *app, reg_version_info_t **out, size_t *n);

/* Loads one version's files (paths and contents) and its parsed manifest.
 * Returns a bundle as reg_bundle_read would. */
int reg_store_load_version(reg_store_t *s, const char *app, uint64_t version, reg_bundle_t **out, char *err,
                           size_t errlen);

/* ------------------------------------------------------------ live table */

/* One immutable, loaded version of an app: its manifest, the directory its
 * files were written to, and its route table (route data: reg_route_t *).
 * Reference counted: whoever keeps one past the current callback retains it
 * (a request being served holds its version until it answers, so a request is
 * served wholly by one version even while deploys happen). */
typedef struct reg_app_version {
    int refcnt;
    char *app;
    uint64_t version;
    reg_manifest_t *manifest;
    char *bundle_dir;
    reg_route_table_t *routes;
} reg_app_version_t;

void reg_app_version_retain(reg_app_version_t *v);
void reg_app_version_release(reg_app_version_t *v);

typedef struct reg_live reg_live_t;
struct uv_loop_s;

/* Called after an app's live version changed (old may be NULL for a new app,
 * new_v NULL when the app disappeared). Both are borrowed for the call. */
typedef void (*reg_live_change_cb)(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v);

/* Creates the in-memory table of live app versions: loads every app's live
 * version from Redis (writing bundle files under state_dir/bundles/APP/N),
 * then follows deploy announcements (async hiredis subscription on `loop`),
 * reloading the announced app each time. Returns NULL with a message on
 * failure. */
reg_live_t *reg_live_new(struct uv_loop_s *loop, const char *redis_url, const char *state_dir, reg_live_change_cb cb,
                         void *cb_data, char *err, size_t errlen);
void reg_live_free(reg_live_t *l);

/* The live version of `app` (borrowed; retain it to keep it), or NULL. */
reg_app_version_t *reg_live_get(reg_live_t *l, const char *app, size_t app_len);

/* Re-reads the live version of `app` from Redis now (used right after a local
 * deploy or rollback so the node serves it before the announcement echoes). */
int reg_live_reload(reg_live_t *l, const char *app, char *err, size_t errlen);

/* Writes a bundle's files for `version` under state_dir/bundles, as loading
 * it will need them, before it is made live: a deploy refuses a version
 * this node cannot write (a full or read-only state dir). */
int reg_live_prepare(reg_live_t *l, const reg_bundle_t *b, uint64_t version, char *err, size_t errlen);

/* An app whose live version this node cannot load: it serves the version it
 * had (or none) and retries with backoff (500 ms doubling to 30 s). */
typedef struct {
    const char *app;
    uint64_t version; /* the live version it cannot load (0: unknown) */
    const char *error;
} reg_live_failure_t;

/* Fills out with up to max failures (strings borrowed until the table
 * changes) and returns how many there are. */
size_t reg_live_failures(reg_live_t *l, reg_live_failure_t *out, size_t max);

/* Why the live version of `app` cannot be loaded here (and which it is, in
 * *version), or NULL when this node serves it. */
const char *reg_live_failure(reg_live_t *l, const char *app, uint64_t *version);

/* The store connection used by the table (for admin calls on the same loop). */
reg_store_t *reg_live_store(reg_live_t *l);

/* Number of live apps. */
size_t reg_live_count(reg_live_t *l);

/* ------------------------------------------------------- embedded redis */

#define REG_EMBEDDED_REDIS_MAXMEMORY "512mb" /* default memory cap of the private redis-server */

/* Starts a private redis-server for a node that was given no Redis URL: unix
 * socket state_dir/redis.sock, append-only file under state_dir, no TCP
 * port, a password generated once into state_dir/redis.password (0600), at
 * most `maxmemory` (Redis's syntax, "512mb"; NULL: the default; "0": no cap)
 * evicting only keys with a TTL. Its settings go through state_dir/redis.conf
 * (0600), never its command line. Waits until it answers PING (up to 10 s).
 * Stores its pid and a "unix://:PASSWORD@/..." URL (malloc'd). The server
 * dies with tined (PDEATHSIG) and is stopped by reg_embedded_redis_stop. */
int reg_embedded_redis_start(const char *state_dir, const char *maxmemory, int *pid, char **url, char *err,
                             size_t errlen);
void reg_embedded_redis_stop(int pid);

#endif
