/* tenancy: the API keys and the audit log of a cluster, on Redis (through
 * redis/; key names in redis/keys.h). Prefix tn_.
 *
 *  - Keys (`ID:SECRET`, 16 and 64 hex digits): made, listed and revoked by
 *    synchronous admin calls; Redis keeps only the SHA-256 of each secret.
 *    Every node holds every key in memory (tn_key_find: no Redis per
 *    request), learns of new and revoked keys through RDS_CHANNEL_KEYS, and
 *    as a backstop re-reads them all whenever RDS_KEY_KEYS_GEN moved
 *    (checked every TN_KEYS_RECHECK_MS) or its subscription came back.
 *  - Audit: entries appended to the RDS_KEY_AUDIT stream asynchronously
 *    (bounded: XADD MAXLEN ~ TN_AUDIT_MAXLEN), read back synchronously.
 *  - Quotas per namespace (quota.c, an object of its own: tn_quotas_t):
 *    limits set by admin calls, enforced on every node through the
 *    invoker's admission hooks from reservations each node takes in Redis
 *    asynchronously (docs/tenancy.md, "Quotas").
 *
 * What a role may do is the gateway's business (gateway/auth.c): here a
 * key's role is a string stored with it. */
#ifndef TINE_TENANCY_H
#define TINE_TENANCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct json_t;
struct inv_admission;

#define TN_KEY_ID_LEN 16     /* hex digits of a key id */
#define TN_KEY_SECRET_LEN 64 /* hex digits of a secret: 256 random bits */
#define TN_KEYS_RECHECK_MS 1000
#define TN_AUDIT_MAXLEN 100000

typedef struct tn_tenancy tn_tenancy_t;

/* Connects (synchronously, to read every key once) and starts following
 * key changes on `loop`. `node_id` goes into audit entries (copied).
 * Returns NULL with a message in err when Redis cannot be read. */
tn_tenancy_t *tn_new(struct uv_loop_s *loop, const char *redis_url, const char *node_id, char *err, size_t errlen);

/* Closes the connections and frees every key; accepts NULL. Fetches still
 * waiting are cancelled (their callbacks never run). */
void tn_free(tn_tenancy_t *t);

/* ------------------------------------------------------------------ keys */

typedef struct {
    char id[TN_KEY_ID_LEN + 1];
    char *name;
    char *ns;   /* its namespace; NULL for a cluster-wide key */
    char *role; /* as stored: the gateway knows what it means */
    char *app;  /* the one app it is restricted to; NULL for none */
    unsigned char sha256[32];
    int64_t created_ms;
    char *created_by;
    int64_t revoked_ms; /* 0 while valid */
    int64_t expires_ms; /* refused from then on; 0: never */
} tn_key_t;

/* Whether `s` (len bytes) has the syntax of a key id: 16 lower-case hex
 * digits. */
bool tn_key_id_valid(const char *s, size_t len);

/* The key `id` (len bytes) as this node knows it, or NULL. Borrowed: valid
 * until control returns to the loop. */
const tn_key_t *tn_key_find(tn_tenancy_t *t, const char *id, size_t len);

/* Whether `secret` (len bytes) is k's: its SHA-256 compared with the
 * stored one in constant time. */
bool tn_key_secret_ok(const tn_key_t *k, const char *secret, size_t len);

typedef struct tn_fetch tn_fetch_t;

/* Reads key `id` from Redis into this node's keys (one made on another node
 * a moment ago, not announced here yet), then calls cb(data, rc) on a later
 * loop turn: rc 0 whether it was found or not (tn_key_find tells), or
 * TINE_EREDIS when Redis did not answer. Returns 0 and a handle for
 * tn_fetch_cancel, or TINE_EREDIS (cb never called). */
int tn_key_fetch(tn_tenancy_t *t, const char *id, void (*cb)(void *data, int rc), void *data, tn_fetch_t **out);

/* The callback of a fetch not yet completed will not run. */
void tn_fetch_cancel(tn_fetch_t *f);

/* tn_key_fetch done synchronously on the admin connection (for a request
 * head that must be judged before its body is read). */
int tn_key_fetch_now(tn_tenancy_t *t, const char *id);

/* What a new key is. Strings are borrowed. */
typedef struct {
    const char *name; /* 1..64 of [A-Za-z0-9._-] */
    const char *ns;   /* NULL for a cluster-wide key */
    const char *role;
    const char *app; /* NULL: no restriction */
    const char *by;  /* who makes it (a key id), for the record */
    int64_t expires_ms; /* when it stops working (Unix ms); 0: never */
} tn_key_spec_t;

/* Makes a key: 64 random bits of id, 256 of secret, of which only the
 * SHA-256 is stored; announced to every node. Writes "ID:SECRET" into key
 * (the only time the secret exists outside the caller's hands) and its id
 * into id. Returns 0, TINE_EINVAL for a bad name (message in err) or
 * TINE_EREDIS. */
int tn_key_create(tn_tenancy_t *t, const tn_key_spec_t *spec, char id[TN_KEY_ID_LEN + 1],
                  char key[TN_KEY_ID_LEN + 1 + TN_KEY_SECRET_LEN + 1], char *err, size_t errlen);

/* Revokes key `id` (kept, marked with the time) and announces it.
 * TINE_ENOTFOUND when there is none, TINE_ECONFLICT when it was revoked
 * already (message in err). */
int tn_key_revoke(tn_tenancy_t *t, const char *id, char *err, size_t errlen);

/* Revokes every valid key of namespace `ns`; adds how many to *count. */
int tn_keys_revoke_namespace(tn_tenancy_t *t, const char *ns, size_t *count, char *err, size_t errlen);

/* Every key as Redis has it (sorted by creation), as a JSON array of
 * {"id","name","namespace","role","app","created","created_by","revoked",
 * "expires"}
 * (times RFC 3339; null where unset); only those of `ns` when not NULL, of
 * `app` when not NULL. Never a secret or its hash. */
int tn_keys_list(tn_tenancy_t *t, const char *ns, const char *app, struct json_t **out, char *err, size_t errlen);

/* The key as the JSON object tn_keys_list shows. */
struct json_t *tn_key_json(const tn_key_t *k);

/* ----------------------------------------------------------------- audit */

/* One change, or a refused one. Strings are borrowed; NULL where unknown. */
typedef struct {
    const char *key_id; /* who: a key id, "admin-token", or "-" without auth */
    const char *key_name;
    const char *ns;      /* the namespace of the target */
    const char *action;  /* deploy, rollback, key.create ... */
    const char *target;  /* app, key id, namespace ... */
    const char *outcome; /* ok, refused, failed */
    int status;          /* the HTTP status answered */
    const char *detail;  /* the error, or what changed */
} tn_audit_entry_t;

/* Appends an entry (with the time and this node's id) to the audit stream,
 * in the background: it waits up to a few seconds for a Redis that is down,
 * then is dropped with a line in tined's log. */
void tn_audit_append(tn_tenancy_t *t, const tn_audit_entry_t *e);

/* Reads audit entries, oldest first, as {"entries":[{"id","time","t","key",
 * "key_name","namespace","action","target","outcome","status","node",
 * "detail"}],"last":"<id>"}: those after stream id `after` when it is not
 * NULL (the first `limit` of them), else the newest `limit`; only those of
 * namespace `ns` when it is not NULL. "last" is where the next read goes on
 * from (as `after`): the last entry looked at, matching or not (null for an
 * empty stream). TINE_EINVAL for a bad `after`. */
int tn_audit_read(tn_tenancy_t *t, const char *ns, const char *after, size_t limit, struct json_t **out, char *err,
                  size_t errlen);

/* ---------------------------------------------------------------- quotas */

typedef struct tn_quotas tn_quotas_t;

/* The quotas of a namespace; their names (tn_quota_name) are the API's and
 * the CLI's. */
typedef enum {
    TN_QUOTA_CONCURRENCY, /* calls at once: accepted and not finished (queued or running) */
    TN_QUOTA_SANDBOXES,   /* sandboxes, idle ones included */
    TN_QUOTA_MEMORY,      /* MB of those sandboxes (each its function's `memory`) */
    TN_QUOTA_PER_MINUTE,  /* calls accepted in a UTC minute */
    TN_QUOTA_SPEND,       /* picodollars spent in a UTC day, priced as billing prices */
    TN_NQUOTAS
} tn_quota_t;

/* "concurrency", "sandboxes", "memory_mb", "per_minute", "spend_per_day". */
const char *tn_quota_name(tn_quota_t k);

/* The largest limit of quota k (the smallest is 1). */
uint64_t tn_quota_max(tn_quota_t k);

/* A change of limits: the quotas with `set` get `value` (0: none). */
typedef struct {
    bool set[TN_NQUOTAS];
    uint64_t value[TN_NQUOTAS];
} tn_quota_change_t;

/* Reads every namespace's limits (synchronously; a Redis that is away: read
 * once it is back) and starts following them on `loop`, as node `node_id`
 * (copied). Returns NULL with a message when the URL is bad. */
tn_quotas_t *tn_quotas_new(struct uv_loop_s *loop, const char *redis_url, const char *node_id, char *err,
                           size_t errlen);

/* Closes the connections and frees everything once its handles closed;
 * accepts NULL. The invoker must be gone (its hooks point here). */
void tn_quotas_free(tn_quotas_t *q);

/* The invoker's admission hooks (inv_config_t.admission), answered from
 * this node's reservations. Valid until tn_quotas_free. */
const struct inv_admission *tn_quotas_admission(tn_quotas_t *q);

/* A call of namespace `ns` cost `pusd` picodollars (billing's price of its
 * activation): added to the day's spend of the namespace on the next
 * report. */
void tn_quotas_spent(tn_quotas_t *q, const char *ns, uint64_t pusd);

/* Sets (or removes) limits of `ns`, recording who (`by`): the others are
 * kept. This node applies them at once, the others within a second.
 * TINE_EINVAL for a value over its maximum or no change (message in err),
 * TINE_EREDIS. */
int tn_quotas_set(tn_quotas_t *q, const char *ns, const tn_quota_change_t *c, const char *by, char *err, size_t errlen);

/* The limits of `ns` and the cluster's use, as the admin API shows them:
 * {"namespace","quotas":{"concurrency":{"limit","used"},"sandboxes":...,
 * "memory_mb":...,"per_minute":{"limit","used","resets_in_s"},
 * "spend_per_day":{"limit","used","limit_pusd","used_pusd","resets_in_s"}},
 * "set","set_by","nodes"} (a limit of null: none). */
int tn_quotas_read(tn_quotas_t *q, const char *ns, struct json_t **out, char *err, size_t errlen);

/* {"quotas":[...]}: tn_quotas_read of every namespace with a limit (only
 * `only` when not NULL), by name. */
int tn_quotas_list(tn_quotas_t *q, const char *only, struct json_t **out, char *err, size_t errlen);

/* Removes every limit of `ns` (a namespace deleted). */
int tn_quotas_delete(tn_quotas_t *q, const char *ns, char *err, size_t errlen);

#endif
