/* The registry on Redis: the versioned store of bundles (deploy, rollback,
 * prune, delete), the live table of this node following deploy
 * announcements, and the private redis-server of a node given no Redis URL.
 * Built on the app model (model/app_model.h) and bundles (bundle/bundle.h),
 * through redis/. */
#ifndef TINE_REGISTRY_H
#define TINE_REGISTRY_H

#include "app_model.h"
#include "bundle.h"
#include "secret_box.h"
#include "tine_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------- store */

typedef struct reg_store reg_store_t;

/* The store on the Redis at `url` (any URL of redis/tine_redis.h): the
 * connection is made on first use and again after it broke, so a store is
 * made while Redis is away. Returns NULL with a message in err when the URL
 * cannot be used. Synchronous. The writes an operator is told about (make
 * live, rollback, prune, delete) are confirmed by a replica of the master
 * when it has one (rds_sync_wait_replicas): unconfirmed, they fail with
 * TINE_EREDIS and say what is on the master. */
reg_store_t *reg_store_connect(const char *url, char *err, size_t errlen);
void reg_store_free(reg_store_t *s);

/* Connects when not connected: 0, or why Redis cannot be used now
 * (rds_sync_connect's codes: TINE_EAUTH for a refusal, TINE_EREDIS). */
int reg_store_check(reg_store_t *s, char *err, size_t errlen);

/* Stages a validated bundle as the next version of its app, not live: its
 * files (stored once by SHA-256) and its version hash. Returns 0 and the
 * new version number. Its files are marked as in use by a deploy under way
 * (*mark) until reg_store_release_marks, which the caller calls once the
 * version is live or removed (also after a failure). */
int reg_store_stage(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, uint64_t *mark, char *err, size_t errlen);
void reg_store_release_marks(reg_store_t *s, uint64_t mark);

/* Makes a staged version live and publishes it on RDS_CHANNEL_DEPLOYS, in one
 * step, registering the app in its manifest's namespace, then has a replica
 * confirm it (with the version's files). Returns TINE_ECONFLICT (a newer
 * version, stored in *newer, became live meanwhile: it stays; or the app is
 * registered in another namespace), TINE_ENOTFOUND when the version is gone
 * or its namespace does not exist (in both namespace cases the staged
 * version is removed), TINE_EREDIS when Redis failed or no replica confirmed
 * (then it may be live: the message says). */
int reg_store_make_live(reg_store_t *s, const char *app, uint64_t version, uint64_t *newer, char *err, size_t errlen);

/* Makes stored `version` of `app` live, older or newer than the live one
 * (tine promote): the same atomic step and announcement as
 * reg_store_make_live (registering a new app), ending a split to it.
 * TINE_ENOTFOUND when there is no such version. */
int reg_store_promote(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen);

/* Keeps a staged version stored without making it live (deploy --stage):
 * ends its "pending" so it is an ordinary stored version. */
int reg_store_stage_done(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen);

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
int reg_store_rollback(reg_store_t *s, const char *app, uint64_t version, uint64_t *now_live, char *err, size_t errlen);

typedef struct {
    uint64_t version;
    int64_t created_ms; /* unix ms */
    char bundle_sha256[65];
    char digest[65]; /* of the artifact (reg_bundle_digest); "" on versions stored before digests */
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
/* --------------------------------------------------------------- secrets */

/* Stores a secret sealed with key (after checking the key is the cluster's:
 * TINE_ECONFLICT with a message when not). *created: it was new. */
int reg_secrets_set(reg_store_t *s, const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                    const void *value, size_t len, bool *created, char *err, size_t errlen);

/* The names of an app's secrets, sorted (free each and the array). */
int reg_secrets_list(reg_store_t *s, const char *app, char ***names, size_t *n);

/* Removes one secret (name) or all of the app's (name NULL); *found says
 * whether there was any. */
int reg_secrets_delete(reg_store_t *s, const char *app, const char *name, bool *found, char *err, size_t errlen);
/* ------------------------------------------------------------- releases */

/* An app's release state (docs/releases.md): its live version, the split
 * (0: none) and its tags. */
typedef struct {
    uint64_t live;
    uint64_t split_version;   /* 0: no split */
    unsigned split_percent;   /* 0..100 */
    bool split_events;        /* the split takes that share of events and schedule ticks too */
    uint64_t rollout_version; /* the version of a rollout running or paused (0: none) */
    reg_tag_t *tags;
    size_t ntags;
} reg_release_t;

void reg_release_dispose(reg_release_t *r);

/* Reads the live version, split and tags of `app` in one round trip.
 * Dispose *out (also after a failure). */
int reg_store_release(reg_store_t *s, const char *app, reg_release_t *out, char *err, size_t errlen);

/* Points tag `tag` of `app` at stored `version`, or removes it (version 0),
 * and announces it. TINE_EINVAL for a bad tag name, TINE_ENOTFOUND for an
 * app not live, a version not stored or (removing) a tag it has not. */
int reg_store_tag(reg_store_t *s, const char *app, const char *tag, uint64_t version, char *err, size_t errlen);

/* Sends `percent` (0..100) of the clients of `app` to stored `version`
 * (with `events`, that share of its events and schedule ticks too), or
 * ends the split (version 0), and announces it. TINE_EINVAL for a percent
 * over 100 or the live version, TINE_ENOTFOUND as reg_store_tag. */
int reg_store_split(reg_store_t *s, const char *app, uint64_t version, unsigned percent, bool events, char *err,
                    size_t errlen);

/* ------------------------------------------------------------ namespaces */

/* Whether `name` has the syntax of app and namespace names: 1 to 63 of
 * [a-z0-9-], not starting or ending with '-'. */
bool reg_name_valid(const char *name);

/* A namespace: the team owning apps (and the keys of tenancy/). "default"
 * always exists (created_ms 0) and cannot be deleted. */
typedef struct {
    char *name;
    int64_t created_ms; /* unix ms; 0 for default */
    char *created_by;   /* who created it (a key id), may be NULL */
    size_t apps;        /* registered apps in it */
} reg_namespace_t;

/* Creates namespace `ns`, recording `by` (may be NULL). TINE_EINVAL for a
 * bad name, TINE_ECONFLICT when it exists; message in err. */
int reg_store_namespace_create(reg_store_t *s, const char *ns, const char *by, char *err, size_t errlen);

/* Deletes namespace `ns`, atomically refused while an app is registered in
 * it (TINE_ECONFLICT, the message names them). TINE_ENOTFOUND when there is
 * none, TINE_EINVAL for default. */
int reg_store_namespace_delete(reg_store_t *s, const char *ns, char *err, size_t errlen);

/* Every namespace, default first, then by name, with its count of apps.
 * Free with reg_namespaces_free. */
int reg_store_namespace_list(reg_store_t *s, reg_namespace_t **out, size_t *n, char *err, size_t errlen);
void reg_namespaces_free(reg_namespace_t *ns, size_t n);

/* Whether namespace `ns` exists (false for a name of bad syntax). */
int reg_store_namespace_exists(reg_store_t *s, const char *ns, bool *exists, char *err, size_t errlen);

/* The namespace of `app` in *ns (fresh string): the one it was registered
 * in (kept after a delete), "default" for an app registered before
 * namespaces existed, NULL for an app never registered. */
int reg_store_app_namespace(reg_store_t *s, const char *app, char **ns, char *err, size_t errlen);

/* Checks ahead of a deploy that `app` may go live in namespace `ns`: `ns`
 * exists (else TINE_ENOTFOUND) and the app is not registered in another
 * namespace (else TINE_ECONFLICT); message in err. reg_store_make_live
 * checks the same again atomically. */
int reg_store_check_namespace(reg_store_t *s, const char *app, const char *ns, char *err, size_t errlen);

/* ------------------------------------------------------------ live table */

typedef struct reg_live reg_live_t;
struct uv_loop_s;

/* Called after an app's live version changed (old may be NULL for a new app,
 * new_v NULL when the app disappeared). Both are borrowed for the call. */
typedef void (*reg_live_change_cb)(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v);

/* Creates the in-memory table of live app versions: loads every app's live
 * version from Redis (writing bundle files under state_dir/bundles/APP/N),
 * then follows deploy announcements (async hiredis subscription on `loop`),
 * reloading the announced app each time. When Redis is away at the start
 * the table starts empty and is loaded once Redis answers (retried with
 * backoff, and at every connect of the subscription). Returns NULL with a
 * message when the URL cannot be used. */
reg_live_t *reg_live_new(struct uv_loop_s *loop, const char *redis_url, const char *state_dir, reg_live_change_cb cb,
                         void *cb_data, char *err, size_t errlen);
void reg_live_free(reg_live_t *l);

/* Why the table has not been loaded from Redis yet (a node started while
 * Redis, or every sentinel, was away: it keeps trying), or NULL once it
 * was, even when Redis went away since (the node serves what it loaded). */
const char *reg_live_unloaded(reg_live_t *l);

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

/* Called when this node loads a version of an app that is not live (a
 * preview, a tag's, a split's: new_v) or drops one (old_v); borrowed. */
typedef void (*reg_live_preview_cb)(void *data, const reg_app_version_t *old_v, const reg_app_version_t *new_v);
/* Sets the callback, calling it at once for the versions loaded so far. */
void reg_live_set_preview_cb(reg_live_t *l, reg_live_preview_cb cb, void *data);

/* Version `version` of `app`: the live one, a loaded preview, or else read
 * from Redis now and kept (a preview by path or header; an app with no
 * live version yet, only staged ones, is previewed so too). Returns 0 and a
 * borrowed version, TINE_ENOTFOUND when the app has no such version,
 * TINE_EREDIS (message in err). */
int reg_live_get_version(reg_live_t *l, const char *app, size_t app_len, uint64_t version, reg_app_version_t **out,
                         char *err, size_t errlen);

/* The live version of the app whose manifest names `host` (len bytes, no
 * port; case ignored) as its own, or, for "LABEL.HOST", the app of HOST
 * with *label_len the length of LABEL (a tag to serve). NULL when no app
 * has that host; no Redis, and nothing to compare while none has one. */
reg_app_version_t *reg_live_by_host(reg_live_t *l, const char *host, size_t len, size_t *label_len);

/* The version tag `tag` (tag_len bytes) of `app` names on this node, or 0. */
uint64_t reg_live_tag(reg_live_t *l, const char *app, size_t app_len, const char *tag, size_t tag_len);

/* Like reg_live_split, for a split that takes its share of events and
 * schedule ticks too (tine split --events); false otherwise. */
bool reg_live_event_split(reg_live_t *l, const char *app, reg_app_version_t **version, unsigned *percent);

/* The version of `app` a selector names: "N" (a number) or a tag, as
 * reg_live_get_version loads it. Returns 0 and a borrowed version,
 * TINE_EINVAL (neither a number nor a tag), TINE_ENOTFOUND (no such tag or
 * version; err says which) or TINE_EREDIS. */
int reg_live_select(reg_live_t *l, const char *app, const char *sel, reg_app_version_t **out, char *err,
                    size_t errlen);

/* The split of `app` as this node knows it: true with its version (loaded
 * here) and percent, or false when there is none. No Redis. */
bool reg_live_split(reg_live_t *l, const char *app, size_t app_len, reg_app_version_t **version, unsigned *percent);

/* The release state of `app` this node follows (borrowed until the table
 * changes), or NULL. */
const reg_release_t *reg_live_release(reg_live_t *l, const char *app);

/* The store connection used by the table (for admin calls on the same loop). */
reg_store_t *reg_live_store(reg_live_t *l);

/* Number of live apps. */
size_t reg_live_count(reg_live_t *l);
/* ------------------------------------------------------------- rollouts */

/* This node's counters per app version, and the driver of automatic
 * rollouts (docs/releases.md): a timer on `loop` asks for the rollouts
 * lease every 200 ms on an asynchronous connection to redis_url of its own
 * (never waiting on Redis); once answered it adds the counts of the
 * versions of rollouts under way to Redis and, on the one node holding the
 * lease, judges each running rollout's step. NULL (message in err) when the
 * URL does not parse. */
typedef struct reg_rollouts reg_rollouts_t;
reg_rollouts_t *reg_rollouts_new(struct uv_loop_s *loop, reg_live_t *live, const char *redis_url, const char *node_id,
                                 char *err, size_t errlen);
void reg_rollouts_free(reg_rollouts_t *r);

/* Counts one call of app's version (an error: a 5xx answer, a timeout, a
 * crash). Accepts r NULL. No Redis. */
void reg_rollouts_observe(reg_rollouts_t *r, const char *app, uint64_t version, bool error, uint64_t duration_ns);

typedef struct {
    const char *app; /* borrowed until the next observe */
    uint64_t version;
    const reg_version_stats_t *stats; /* since this node first served it */
} reg_version_counter_t;

/* Fills out with up to max counters; returns how many there are. */
size_t reg_rollouts_counters(reg_rollouts_t *r, reg_version_counter_t *out, size_t max);

/* Starts the rollout of stored `version` of `app` replacing `from` with the
 * steps and bounds of cfg: a split of cfg->steps[0]% to it, announced.
 * TINE_ECONFLICT while another rollout of the app is under way. */
int reg_store_rollout_start(reg_store_t *s, const char *app, uint64_t version, uint64_t from, const reg_rollout_t *cfg,
                            char *err, size_t errlen);

struct json_t;
/* The app's rollout (the last one, when none is under way) as JSON: state,
 * steps, step, decision, reason, and per version its requests, errors,
 * p50/p99 during the step. TINE_ENOTFOUND when it had none. */
int reg_store_rollout_status(reg_store_t *s, const char *app, struct json_t **out, char *err, size_t errlen);

/* verb "pause", "resume" or "abort" (the split ends: the previous version
 * serves every client). TINE_ENOTFOUND without a rollout, TINE_ECONFLICT
 * when its state does not allow it (a paused one cannot be paused...). */
int reg_store_rollout_control(reg_store_t *s, const char *app, const char *verb, char *err, size_t errlen);

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
