/* The app model: what an app is, independent of where it is stored. The
 * manifest (parsed and validated, with the index of its function names),
 * cron expressions, route tables, and loaded app versions with the map of
 * them by app name. Links only libyaml and jansson (through common/): the
 * `tine` command uses it without Redis or libuv. Prefix reg_ (the registry's
 * parts: this, bundle/bundle.h and store/registry.h). */
#ifndef TINE_APP_MODEL_H
#define TINE_APP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- manifest */

typedef enum { REG_RUNTIME_LUA = 0, REG_RUNTIME_EXEC = 1, REG_RUNTIME_PYTHON = 2, REG_RUNTIME_NODE = 3 } reg_runtime_t;

/* The runtime's name as a manifest writes it: "lua", "exec" or "python". */
const char *reg_runtime_name(reg_runtime_t r);

/* The largest request body a function can receive (the body limit of the
 * sandbox wire, sandbox/wire.h), and the default of a function's max_body. */
#define REG_MAX_BODY_LIMIT (6u * 1024u * 1024u)

typedef struct {
    char *key;
    char *value;
} reg_kv_t;

/* Who may call a route over HTTP: anyone (the default), or only callers
 * with an API key of the app's namespace allowed to invoke (`auth: key`). */
typedef enum { REG_AUTH_PUBLIC = 0, REG_AUTH_KEY = 1 } reg_auth_t;

/* The namespace of an app whose manifest names none. */
#define REG_DEFAULT_NAMESPACE "default"

typedef struct {
    char *name;
    reg_runtime_t runtime;
    char *handler;         /* as written: "src/items.lua#list", "src/app.py#handle" or "scripts/x.sh" */
    char *handler_file;    /* bundle-relative path: "src/items.lua" */
    char *handler_export;  /* "list" (lua), "handle" (python); NULL for runtime exec */
    unsigned handler_line; /* where the handler's value is in the manifest (1-based) */
    unsigned handler_col;
    uint32_t memory_mb;   /* 16 .. 10240 */
    uint32_t timeout_ms;  /* 1 .. 900000 */
    uint32_t concurrency; /* 1 .. 1000 */
    uint32_t warm;        /* 0 .. concurrency */
    uint32_t max_body;    /* largest request body in bytes, 0 .. REG_MAX_BODY_LIMIT (default: that) */
    bool network;         /* exec runtime: network access (default false) */
    reg_auth_t auth;      /* auth: key makes every route to it private */
    char *group;          /* co-location group (runtime lua only), NULL when none */
    reg_kv_t *env;        /* app env merged under function env, sorted by key */
    size_t env_len;
} reg_function_t;

typedef struct {
    char *method;   /* upper case: GET POST PUT DELETE PATCH HEAD OPTIONS, or "ANY" */
    char *path;     /* "/items/:id"; a last segment "*name" takes the rest */
    char *function; /* name of a function of the manifest */
    size_t function_index;
    reg_auth_t auth; /* REG_AUTH_KEY when the route or its function says auth: key */
} reg_route_t;

typedef enum { REG_TRIGGER_LOG = 0, REG_TRIGGER_EVENT = 1, REG_TRIGGER_SCHEDULE = 2 } reg_trigger_kind_t;

typedef struct {
    reg_trigger_kind_t on;
    char *source;   /* log: "function:NAME" | "file:/abs/path"; event: glob (may be NULL) */
    size_t source_function_index; /* log of function:NAME: that function's index; else SIZE_MAX */
    char *filter;   /* log: filter pattern (may be NULL) */
    char *type;     /* event: type glob */
    char *cron;     /* schedule: 5-field cron or "@every 30s" */
    char *function; /* target */
    size_t function_index;
    uint32_t attempts; /* delivery attempts, default 3 */
} reg_trigger_t;

/* rollout: how a deploy goes live step by step (docs/releases.md). */
#define REG_ROLLOUT_MAX_STEPS 10
typedef struct {
    bool set;                               /* the manifest has a rollout block */
    uint32_t steps[REG_ROLLOUT_MAX_STEPS];  /* percents of clients, ascending, the last 100 */
    size_t nsteps;
    uint64_t interval_ms;                   /* each step lasts at least this long: 1s..24h, default 1m */
    uint32_t max_error_permyriad;           /* most errors per 10 000 requests: 0..10000, default 100 (1%) */
    uint32_t max_p99_ms;                    /* p99 latency bound: 1ms..15m, default 0: none */
    uint32_t min_requests;                  /* requests of a step before it is judged: 1.., default 20 */
} reg_rollout_t;

typedef struct {
    char *app;         /* [a-z0-9-], 1..63, starts with a letter or digit */
    char *namespace;   /* the team owning the app, same syntax; REG_DEFAULT_NAMESPACE when absent */
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
    /* release: how requests may choose a version (docs/releases.md). */
    reg_rollout_t rollout;     /* rollout: (rollout.set false without one) */
    bool release_pin;          /* release.pin: a request's x-tine-version header may pick a version or tag */
    char *release_client_header; /* release.client_header, lower case: whose value keeps a client on one side
                                  * of a split; NULL: REG_RELEASE_CLIENT_HEADER */
    /* The function names' index (function_index.c), built by
     * reg_manifest_parse: open addressing, each slot a function's index + 1
     * (0: empty), _fn_mask + 1 slots. Read through reg_manifest_function_index. */
    uint32_t *_fn_slots;
    size_t _fn_mask;
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

/* Finds function `name` (len bytes, not necessarily NUL-terminated) of a
 * manifest made by reg_manifest_parse, through the index built there once:
 * true and its position in m->functions in *index, or false (also for a NULL
 * manifest). Expected O(1): one hash, then a comparison per name met. */
bool reg_manifest_function_index(const reg_manifest_t *m, const char *name, size_t len, size_t *index);

/* -------------------------------------------------------------------- cron */

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
/* ------------------------------------------------------------ app versions */

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

/* Makes a loaded version of `app` (copied) from its parsed manifest and the
 * directory its files were written to, taking both in every case, and builds
 * its route table. Returns 0 and *out with one reference, or the route
 * table's error with a message in err. */
int reg_app_version_new(const char *app, uint64_t version, reg_manifest_t *manifest, char *bundle_dir,
                        reg_app_version_t **out, char *err, size_t errlen);

void reg_app_version_retain(reg_app_version_t *v);
/* Drops a reference; the last one frees the version. Accepts NULL. */
void reg_app_version_release(reg_app_version_t *v);

typedef struct {
    reg_app_version_t *v;
    size_t app_len; /* strlen(v->app) */
} reg_app_map_entry_t;

/* Versions by app name, one per app, each holding a reference: the live
 * table (store/live.c) and the events module's view of it. A sorted array:
 * lookups by binary search, walks (entries[0] .. entries[len-1]) in its
 * order: shorter names first, names of one length bytewise (so most
 * comparisons are decided by the lengths alone). */
typedef struct {
    reg_app_map_entry_t *entries;
    size_t len;
    size_t cap;
} reg_app_map_t;

void reg_app_map_init(reg_app_map_t *m);
/* Releases every version the map holds and frees its array. */
void reg_app_map_dispose(reg_app_map_t *m);

/* The version of `app` (app_len bytes, not necessarily NUL-terminated),
 * borrowed, or NULL. */
reg_app_version_t *reg_app_map_get(const reg_app_map_t *m, const char *app, size_t app_len);

/* Makes v the version of its app (v->app), taking the caller's reference to
 * it. Returns the version it replaces, whose reference passes to the caller,
 * or NULL. */
reg_app_version_t *reg_app_map_put(reg_app_map_t *m, reg_app_version_t *v);

/* Removes `app`; returns its version, whose reference passes to the caller,
 * or NULL when the map has none. */
reg_app_version_t *reg_app_map_take(reg_app_map_t *m, const char *app, size_t app_len);

/* ----------------------------------------------------------------- release */

/* What chooses, besides the live version, which version serves a request
 * (docs/releases.md): tags naming versions, and a split sending a share of
 * clients to one version. */
#define REG_RELEASE_CLIENT_HEADER "x-tine-client" /* default header of a split's stickiness */
#define REG_RELEASE_VERSION_HEADER "x-tine-version" /* pins a request, names the version of an answer */
#define REG_TAG_MAX 32

typedef struct {
    char name[REG_TAG_MAX + 1];
    uint64_t version;
} reg_tag_t;

/* Whether `name` (len bytes) can name a tag: 1 to REG_TAG_MAX of [a-z0-9-],
 * starting with a letter (so it never reads as a version number). */
bool reg_tag_name_valid(const char *name, size_t len);

/* The bucket 0..9999 of a client key (len bytes): FNV-1a, so a client stays
 * in its bucket across requests, nodes and restarts. */
unsigned reg_split_bucket(const char *key, size_t len);

/* Whether a client of key `key` goes to the split's version when it takes
 * `percent` (0..100) of clients: its bucket is below percent * 100. */
bool reg_split_chooses(const char *key, size_t len, unsigned percent);

/* Parses "N=PERCENT" (N >= 1, PERCENT 0..100, a trailing '%' allowed).
 * Returns 0, or TINE_EINVAL with what was wrong in err. */
int reg_split_parse(const char *arg, uint64_t *version, unsigned *percent, char *err, size_t errlen);

/* Latency buckets of per-version counters, upper bounds in ms (the last is
 * +Inf): a rollout's p50/p99 is the bound of the bucket holding it. */
#define REG_LATENCY_BUCKETS 14
extern const uint32_t reg_latency_bounds_ms[REG_LATENCY_BUCKETS - 1];

/* The bucket of a call that took duration_ns. */
size_t reg_latency_bucket(uint64_t duration_ns);

/* What a version answered: requests, errors (5xx, timeouts, crashes) and
 * their latency histogram. */
typedef struct {
    uint64_t requests;
    uint64_t errors;
    uint64_t buckets[REG_LATENCY_BUCKETS];
} reg_version_stats_t;

/* The bound (ms) of the bucket holding quantile q (0..1) of s, UINT32_MAX
 * for the last bucket, 0 without requests. */
uint32_t reg_stats_quantile_ms(const reg_version_stats_t *s, double q);

typedef enum {
    REG_ROLLOUT_WAIT = 0,    /* keep the step */
    REG_ROLLOUT_ADVANCE = 1, /* the step passed: next step, or live after the last */
    REG_ROLLOUT_BREACH = 2,  /* a bound is broken: back to the previous version */
} reg_rollout_decision_t;

/* Judges a step from its version's stats: a breach as soon as it has
 * min_requests and its error rate or p99 is over a bound; else, once the
 * interval is over (`interval_over`), advance when it had min_requests, or
 * wait for them. Writes the reason (a breach's, or why it waits or
 * advances) to reason. */
reg_rollout_decision_t reg_rollout_decide(const reg_rollout_t *r, const reg_version_stats_t *s, bool interval_over,
                                          char *reason, size_t reasonlen);

#endif
