/* The versioned store on Redis (synchronous hiredis).
 *
 * Keys:
 *   tine:apps                 SET of app names
 *   tine:app:{app}:seq        INCR counter: the last version number handed out
 *   tine:app:{app}:live       the live version number
 *   tine:app:{app}:v:{N}      HASH: created (unix ms), sha256 (of the file list),
 *                             digest (SHA-256 of the canonical artifact,
 *                             reg_bundle_digest; absent on older versions),
 *                             manifest (bundle path of the manifest),
 *                             files (JSON object path -> sha256)
 *   tine:blob:{sha256}        file contents, stored once, never changed
 *   tine:deploying            SET of ids of the deploys under way
 *   tine:deploying:{id}       SET of the sha256 a deploy under way stores
 *                             (expires after STORE_DEPLOY_MARK_S): the blob
 *                             collector of prune and delete leaves them alone
 *
 * Versions are immutable once written. A deploy stages its version (blobs,
 * then the version hash) and makes it live in one script with the
 * announcement, so every reader sees either the old or the new version,
 * never a half-written one. Prune and delete remove version hashes, then
 * collect the blobs no version references (see gc_blobs). */
#include "registry.h"
#include "store_internal.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define STORE_DEPLOYING_KEY RDS_KEY_DEPLOYING /* the set of deploys under way */
/* How long the marks of a deploy that never ended (its node died) protect
 * its blobs: far longer than storing a bundle takes. */
#define STORE_DEPLOY_MARK_S 3600

#define STORE_TIMEOUT_MS 10000 /* connect, and each command (a bundle's files can be large) */


reg_store_t *reg_store_connect(const char *url, char *err, size_t errlen)
{
    /* Connected on first use (and again after a break): a node starts
     * while Redis is away and reaches it when it comes. */
    rds_sync_t *redis = rds_sync_new(url, STORE_TIMEOUT_MS, err, errlen);
    if (redis == NULL)
        return NULL;
    reg_store_t *s = xcalloc(1, sizeof(*s));
    s->redis = redis;
    return s;
}

int reg_store_check(reg_store_t *s, char *err, size_t errlen)
{
    return rds_sync_connect(s->redis, err, errlen);
}

void reg_store_free(reg_store_t *s)
{
    if (s == NULL)
        return;
    rds_sync_free(s->redis);
    free(s);
}

/* Runs one command already in the protocol's form (cmd, len bytes; taken:
 * freed here) on the store's connection (reopened first when it broke).
 * Returns the reply (caller frees) or NULL with a message in err. A Redis
 * error reply is turned into NULL too. */
static redisReply *store_run(reg_store_t *s, char *cmd, int len, char *err, size_t errlen)
{
    if (len < 0) {
        snprintf(err, errlen, "redis: cannot format the command");
        return NULL;
    }
    redisReply *out = rds_sync_formatted(s->redis, cmd, (size_t)len, err, errlen);
    redisFreeCommand(cmd);
    return out;
}

int reg__store_confirm(reg_store_t *s, const char *what, const char *again, char *err, size_t errlen)
{
    char why[1024];
    if (rds_sync_wait_replicas(s->redis, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "%s, but %s; %s", what, why, again);
    return TINE_EREDIS;
}

/* Runs one command given printf-style (hiredis' format), as store_run. */
redisReply *reg__store_cmd(reg_store_t *s, char *err, size_t errlen, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    return store_run(s, cmd, len, err, errlen);
}


/* Runs one command given as argv (binary-safe, any length), as store_run. */
static redisReply *store_cmd_argv(reg_store_t *s, char *err, size_t errlen, size_t argc, const char **argv,
                                  const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, (int)argc, argv, lens);
    return store_run(s, cmd, len, err, errlen);
}

/* A growing argv of strings (copied). */
typedef struct {
    char **v;
    size_t *lens;
    size_t len;
    size_t cap;
} argv_t;

/* Appends a copy of str to the command a. */
static void argv_add(argv_t *a, const char *str)
{
    if (a->len == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
        a->lens = xrealloc(a->lens, a->cap * sizeof(*a->lens));
    }
    a->v[a->len] = xstrdup(str);
    a->lens[a->len] = strlen(str);
    a->len++;
}

static void argv_dispose(argv_t *a)
{
    for (size_t i = 0; i < a->len; i++)
        free(a->v[i]);
    free(a->v);
    free(a->lens);
    memset(a, 0, sizeof(*a));
}

/* Runs the command a on the store's connection (store_cmd_argv). */
static redisReply *store_cmd_list(reg_store_t *s, char *err, size_t errlen, const argv_t *a)
{
    return store_cmd_argv(s, err, errlen, a->len, (const char **)a->v, a->lens);
}

/* The wall clock in milliseconds since the epoch. */
static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Marks the blobs of a deploy under way (a set of their sha256 under a
 * fresh id, registered in tine:deploying), before any is written: the
 * collector leaves them alone until reg_store_release_marks. */
static int mark_blobs(reg_store_t *s, const reg_bundle_t *b, uint64_t *mark, char *err, size_t errlen)
{
    redisReply *r = reg__store_cmd(s, err, errlen, "INCR " RDS_KEY_DEPLOYING_SEQ);
    if (r == NULL)
        return TINE_EREDIS;
    *mark = (uint64_t)r->integer;
    freeReplyObject(r);
    char key[64], id[32], ttl[16];
    snprintf(id, sizeof(id), "%" PRIu64, *mark);
    snprintf(key, sizeof(key), RDS_KEY_DEPLOYING_PREFIX "%s", id);
    snprintf(ttl, sizeof(ttl), "%d", STORE_DEPLOY_MARK_S);
    argv_t a = {0};
    argv_add(&a, "SADD");
    argv_add(&a, key);
    for (size_t i = 0; i < b->files_len; i++)
        argv_add(&a, b->files[i].sha256);
    redisContext *c = rds_sync_context(s->redis, err, errlen);
    if (c == NULL) {
        argv_dispose(&a);
        return TINE_EREDIS;
    }
    redisAppendCommand(c, "MULTI");
    redisAppendCommandArgv(c, (int)a.len, (const char **)a.v, a.lens);
    redisAppendCommand(c, "EXPIRE %s %s", key, ttl);
    redisAppendCommand(c, "SADD %s %s", STORE_DEPLOYING_KEY, id);
    redisAppendCommand(c, "EXEC");
    argv_dispose(&a);
    return rds_sync_replies(s->redis, 5, err, errlen);
}

void reg_store_release_marks(reg_store_t *s, uint64_t mark)
{
    char err[256];
    if (mark == 0)
        return;
    redisReply *r = reg__store_cmd(s, err, sizeof(err), "DEL " RDS_KEY_DEPLOYING_PREFIX "%" PRIu64, mark);
    freeReplyObject(r);
    r = reg__store_cmd(s, err, sizeof(err), "SREM %s %" PRIu64, STORE_DEPLOYING_KEY, mark);
    freeReplyObject(r);
}

int reg_store_stage(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, uint64_t *mark, char *err, size_t errlen)
{
    const char *app = b->manifest->app;
    redisReply *r;
    char now[32];
    snprintf(now, sizeof(now), "%" PRId64, wall_ms());

    /* Marked first, so the blob collector of a concurrent prune or delete
     * leaves these blobs alone while no version references them yet. */
    *mark = 0;
    if (b->files_len > 0 && mark_blobs(s, b, mark, err, errlen) != 0)
        return TINE_EREDIS;
    /* File contents: content-addressed, so writing them before the version
     * exists is harmless if the deploy fails later. */
    for (size_t i = 0; i < b->files_len; i++) {
        r = reg__store_cmd(s, err, errlen, "SET tine:blob:%s %b NX", b->files[i].sha256, b->files[i].data,
                      b->files[i].len);
        if (r == NULL)
            return TINE_EREDIS;
        freeReplyObject(r);
    }

    json_t *files = json_object();
    for (size_t i = 0; i < b->files_len; i++)
        json_object_set_new(files, b->files[i].path, json_string(b->files[i].sha256));
    char *files_json = json_dumps(files, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(files);
    char ident[65], digest[65];
    reg_bundle_identity(b, ident);
    if (reg_bundle_digest(b, digest, err, errlen) != 0) {
        free(files_json);
        return TINE_EINVAL;
    }

    r = reg__store_cmd(s, err, errlen, "INCR tine:app:%s:seq", app);
    if (r == NULL) {
        free(files_json);
        return TINE_EREDIS;
    }
    uint64_t n = (uint64_t)r->integer;
    freeReplyObject(r);

    /* "pending" until the version goes live (or is removed): a prune leaves
     * it alone. */
    r = reg__store_cmd(s, err, errlen,
                  "HSET tine:app:%s:v:%" PRIu64
                  " created %s sha256 %s digest %s manifest %s files %s pending %s namespace %s",
                  app, n, now, ident, digest, b->manifest_path, files_json, now, b->manifest->namespace);
    free(files_json);
    if (r == NULL)
        return TINE_EREDIS;
    freeReplyObject(r);
    /* Its own host: claimed when it goes live (make_live_script). */
    if (b->manifest->host) {
        r = reg__store_cmd(s, err, errlen, "HSET tine:app:%s:v:%" PRIu64 " host %s", app, n, b->manifest->host);
        if (r == NULL)
            return TINE_EREDIS;
        freeReplyObject(r);
    }
    *version = n;
    return 0;
}

/* Ends a staged version's "pending" and makes it live unless it is gone or a
 * newer version is live, with the app's registration, its namespace and the
 * announcement, atomically. Returns 0, -1 when the version is gone, the
 * newer live version, or {-3, ns} when the version's namespace does not
 * exist and {-4, ns} when the app is registered in another namespace ns
 * (then the staged version is removed: it never belonged to this app). */
static const char make_live_script[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end "
    "local ns = redis.call('HGET', KEYS[2], 'namespace') or '" REG_DEFAULT_NAMESPACE "' "
    "if ns ~= '" REG_DEFAULT_NAMESPACE "' and redis.call('SISMEMBER', KEYS[5], ns) == 0 then "
    "  redis.call('DEL', KEYS[2]) return {-3, ns} end "
    "if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then "
    "  local owner = redis.call('GET', KEYS[4]) or '" REG_DEFAULT_NAMESPACE "' "
    "  if owner ~= ns then redis.call('DEL', KEYS[2]) return {-4, owner} end "
    "end "
    "local ro = redis.call('HMGET', KEYS[7], 'state', 'version') "
    "if (ro[1] == 'running' or ro[1] == 'paused') and ARGV[5] ~= 'rollout' then return {-5, ro[2] or '?'} end "
    "local host = redis.call('HGET', KEYS[2], 'host') "
    "if host then "
    "  local owner = redis.call('HGET', KEYS[8], host) "
    "  if owner and owner ~= ARGV[2] then return {-6, owner} end "
    "end "
    "redis.call('HDEL', KEYS[2], 'pending') "
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if ARGV[5] == 'deploy' and cur > tonumber(ARGV[1]) then return cur end "
    "local prev = redis.call('HGET', 'tine:app:' .. ARGV[2] .. ':v:' .. tostring(cur), 'host') "
    "if prev and prev ~= host and redis.call('HGET', KEYS[8], prev) == ARGV[2] then "
    "  redis.call('HDEL', KEYS[8], prev) end "
    "if host then redis.call('HSET', KEYS[8], host, ARGV[2]) end "
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('SADD', KEYS[3], ARGV[2]) "
    "redis.call('SET', KEYS[4], ns) "
    "if redis.call('HGET', KEYS[6], 'version') == ARGV[1] then redis.call('DEL', KEYS[6]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) "
    "return 0";

/* reg_store_make_live (mode "deploy"), reg_store_promote ("promote") or
 * the end of a rollout ("rollout": allowed while it is under way). */
static int make_live(reg_store_t *s, const char *app, uint64_t version, const char *mode, uint64_t *newer, char *err,
                     size_t errlen)
{
    bool promote = strcmp(mode, "deploy") != 0;
    *newer = 0;
    char note[512];
    snprintf(note, sizeof(note), "%s %" PRIu64, app, version);
    redisReply *r = reg__store_cmd(s, err, errlen,
                              "EVAL %s 8 tine:app:%s:live tine:app:%s:v:%" PRIu64 " " RDS_KEY_APPS
                              " tine:app:%s:ns " RDS_KEY_NAMESPACES " tine:app:%s:split " RDS_KEY_ROLLOUT_PREFIX
                              "%s " RDS_KEY_HOSTS " %" PRIu64 " %s %s %s %s",
                              make_live_script, app, app, version, app, app, app, version, app, RDS_CHANNEL_DEPLOYS,
                              note, mode);
    if (r == NULL)
        return TINE_EREDIS;
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[0]->integer == -6 && r->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(err, errlen,
                 "%s version %" PRIu64 " names a host app %s serves already (host: in its manifest): it is stored, "
                 "not live; one host serves one app",
                 app, version, r->element[1]->str);
        freeReplyObject(r);
        return TINE_ECONFLICT;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[0]->integer == -5 && r->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(err, errlen,
                 "a rollout of %s version %s is under way: nothing made live (tine rollout status %s; tine rollout "
                 "abort %s ends it)",
                 app, r->element[1]->str, app, app);
        freeReplyObject(r);
        return TINE_ECONFLICT;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        int rc = reg__namespace_refusal(app, r->element[1]->str, r->element[0]->integer == -3, err, errlen);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    if (v == -1) {
        snprintf(err, errlen, "%s version %" PRIu64 " was removed before it went live", app, version);
        return TINE_ENOTFOUND;
    }
    if (v > 0) {
        *newer = (uint64_t)v;
        snprintf(err, errlen,
                 "%s version %" PRIu64 " became live while version %" PRIu64
                 " was being stored (a concurrent deploy); %" PRIu64 " is kept but not made live",
                 app, *newer, version, version);
        return TINE_ECONFLICT;
    }
    if (v != 0) {
        snprintf(err, errlen, "redis: unexpected answer to the make-live script");
        return TINE_EREDIS;
    }
    char what[600];
    snprintf(what, sizeof what, "%s version %" PRIu64 " went live on the redis master", app, version);
    return reg__store_confirm(s, what,
                              promote ? "promote it again to be sure"
                                      : "deploy again (the same files answer \"unchanged\" when it survived)",
                              err, errlen);
}

int reg_store_make_live(reg_store_t *s, const char *app, uint64_t version, uint64_t *newer, char *err, size_t errlen)
{
    return make_live(s, app, version, "deploy", newer, err, errlen);
}

int reg_store_promote(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen)
{
    uint64_t newer = 0;
    int rc = make_live(s, app, version, "promote", &newer, err, errlen);
    if (rc == TINE_ENOTFOUND && strstr(err, "was removed before") != NULL)
        snprintf(err, errlen, "%s has no version %" PRIu64, app, version);
    return rc;
}

int reg__store_rollout_promote(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen)
{
    uint64_t newer = 0;
    return make_live(s, app, version, "rollout", &newer, err, errlen);
}

int reg_store_stage_done(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen)
{
    redisReply *r = reg__store_cmd(s, err, errlen, "HDEL tine:app:%s:v:%" PRIu64 " pending", app, version);
    if (r == NULL)
        return TINE_EREDIS;
    freeReplyObject(r);
    char what[600];
    snprintf(what, sizeof what, "%s version %" PRIu64 " was stored on the redis master", app, version);
    return reg__store_confirm(s, what, "deploy --stage again to be sure", err, errlen);
}

int reg_store_unstage(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen)
{
    /* Never the live version: only a staged one that did not go live. */
    redisReply *r = reg__store_cmd(s, err, errlen, "EVAL %s 2 tine:app:%s:live tine:app:%s:v:%" PRIu64 " %" PRIu64,
                              "if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end "
                              "return redis.call('DEL', KEYS[2])",
                              app, app, version, version);
    if (r == NULL)
        return TINE_EREDIS;
    freeReplyObject(r);
    return 0;
}

int reg_store_deploy(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, char *err, size_t errlen)
{
    uint64_t n = 0, newer = 0, mark = 0;
    int rc = reg_store_stage(s, b, &n, &mark, err, errlen);
    if (rc == 0)
        rc = reg_store_make_live(s, b->manifest->app, n, &newer, err, errlen);
    reg_store_release_marks(s, mark);
    if (rc == 0)
        *version = n;
    return rc;
}

int reg_store_live_version(reg_store_t *s, const char *app, uint64_t *version)
{
    char err[256];
    redisReply *r = reg__store_cmd(s, err, sizeof(err), "GET tine:app:%s:live", app);
    if (r == NULL)
        return TINE_EREDIS;
    *version = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return 0;
}

int reg_store_rollback(reg_store_t *s, const char *app, uint64_t version, uint64_t *now_live, char *err,
                       size_t errlen)
{
    uint64_t live = 0;
    if (reg_store_live_version(s, app, &live) != 0) {
        snprintf(err, errlen, "redis unreachable");
        return TINE_EREDIS;
    }
    if (live == 0) {
        snprintf(err, errlen, "no app named '%s'", app);
        return TINE_ENOTFOUND;
    }
    if (version == 0) {
        /* The newest version before the live one (older ones may be pruned). */
        reg_version_info_t *vs = NULL;
        size_t n = 0;
        if (reg_store_list_versions(s, app, &vs, &n) != 0) {
            snprintf(err, errlen, "redis unreachable");
            return TINE_EREDIS;
        }
        for (size_t i = 0; i < n; i++)
            if (vs[i].version < live)
                version = vs[i].version;
        free(vs);
        if (version == 0) {
            snprintf(err, errlen, "%s: version %" PRIu64 " is the oldest; nothing to roll back to", app, live);
            return TINE_ENOTFOUND;
        }
    }
    /* Checked and moved in one step: a prune cannot remove it in between. */
    char note[512];
    snprintf(note, sizeof(note), "%s %" PRIu64, app, version);
    redisReply *r = reg__store_cmd(s, err, errlen, "EVAL %s 2 tine:app:%s:live tine:app:%s:v:%" PRIu64 " %" PRIu64 " %s %s",
                              "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end "
                              "redis.call('SET', KEYS[1], ARGV[1]) "
                              "redis.call('PUBLISH', ARGV[2], ARGV[3]) "
                              "return 1",
                              app, app, version, version, RDS_CHANNEL_DEPLOYS, note);
    if (r == NULL)
        return TINE_EREDIS;
    long long done = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    if (!done) {
        snprintf(err, errlen, "%s has no version %" PRIu64, app, version);
        return TINE_ENOTFOUND;
    }
    *now_live = version;
    char what[600];
    snprintf(what, sizeof what, "%s was rolled back to version %" PRIu64 " on the redis master", app, version);
    return reg__store_confirm(s, what, "roll back again to be sure", err, errlen);
}

/* qsort order of C strings. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int reg_store_list_apps(reg_store_t *s, char ***names, size_t *n)
{
    char err[256];
    redisReply *r = reg__store_cmd(s, err, sizeof(err), "SMEMBERS tine:apps");
    if (r == NULL)
        return TINE_EREDIS;
    char **out = xcalloc(r->elements + 1, sizeof(char *));
    for (size_t i = 0; i < r->elements; i++)
        out[i] = xstrndup(r->element[i]->str, r->element[i]->len);
    qsort(out, r->elements, sizeof(char *), cmp_str);
    *n = r->elements;
    *names = out;
    freeReplyObject(r);
    return 0;
}

/* The last version number handed out for app (0 when none). */
static int app_seq(reg_store_t *s, const char *app, uint64_t *seq, char *err, size_t errlen)
{
    redisReply *r = reg__store_cmd(s, err, errlen, "GET tine:app:%s:seq", app);
    if (r == NULL)
        return TINE_EREDIS;
    *seq = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return 0;
}

int reg_store_list_versions(reg_store_t *s, const char *app, reg_version_info_t **out, size_t *n)
{
    char err[256];
    uint64_t seq = 0;
    if (app_seq(s, app, &seq, err, sizeof(err)) != 0)
        return TINE_EREDIS;
    redisReply *r;
    reg_version_info_t *v = xcalloc(seq + 1, sizeof(*v));
    size_t count = 0;
    for (uint64_t i = 1; i <= seq; i++) {
        r = reg__store_cmd(s, err, sizeof(err), "HMGET tine:app:%s:v:%" PRIu64 " created sha256 files digest", app, i);
        if (r == NULL) {
            free(v);
            return TINE_EREDIS;
        }
        /* A number handed out by INCR whose transaction failed has no hash. */
        if (r->elements == 4 && r->element[0]->type == REDIS_REPLY_STRING) {
            v[count].version = i;
            v[count].created_ms = strtoll(r->element[0]->str, NULL, 10);
            if (r->element[1]->type == REDIS_REPLY_STRING)
                snprintf(v[count].bundle_sha256, sizeof(v[count].bundle_sha256), "%s", r->element[1]->str);
            if (r->element[2]->type == REDIS_REPLY_STRING) {
                json_t *f = json_loads(r->element[2]->str, 0, NULL);
                v[count].files = json_object_size(f);
                json_decref(f);
            }
            if (r->element[3]->type == REDIS_REPLY_STRING)
                snprintf(v[count].digest, sizeof(v[count].digest), "%s", r->element[3]->str);
            count++;
        }
        freeReplyObject(r);
    }
    *out = v;
    *n = count;
    return 0;
}

/* qsort order of bundle files: by path. */
static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const reg_bundle_file_t *)a)->path, ((const reg_bundle_file_t *)b)->path);
}

int reg_store_load_version(reg_store_t *s, const char *app, uint64_t version, reg_bundle_t **out, char *err,
                           size_t errlen)
{
    redisReply *r = reg__store_cmd(s, err, errlen, "HMGET tine:app:%s:v:%" PRIu64 " manifest files", app, version);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        snprintf(err, errlen, "%s has no version %" PRIu64, app, version);
        return TINE_ENOTFOUND;
    }
    char *manifest_path = xstrdup(r->element[0]->str);
    json_t *files = json_loads(r->element[1]->str, 0, NULL);
    freeReplyObject(r);
    if (!json_is_object(files)) {
        free(manifest_path);
        json_decref(files);
        snprintf(err, errlen, "%s version %" PRIu64 ": corrupt file list", app, version);
        return TINE_EREDIS;
    }
    reg_bundle_t *b = xcalloc(1, sizeof(*b));
    b->files = xcalloc(json_object_size(files) + 1, sizeof(reg_bundle_file_t));
    const char *path;
    json_t *sha;
    int rc = 0;
    json_object_foreach(files, path, sha)
    {
        const char *hex = json_string_value(sha);
        r = hex ? reg__store_cmd(s, err, errlen, "GET tine:blob:%s", hex) : NULL;
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            if (r)
                snprintf(err, errlen, "%s version %" PRIu64 ": file %s is missing from the store", app, version,
                         path);
            freeReplyObject(r);
            rc = TINE_EREDIS;
            break;
        }
        reg_bundle_file_t *f = &b->files[b->files_len++];
        f->path = xstrdup(path);
        f->data = xmalloc(r->len + 1);
        memcpy(f->data, r->str, r->len);
        f->data[r->len] = '\0';
        f->len = r->len;
        snprintf(f->sha256, sizeof(f->sha256), "%s", hex);
        b->total_len += r->len;
        freeReplyObject(r);
    }
    json_decref(files);
    if (rc == 0) {
        qsort(b->files, b->files_len, sizeof(*b->files), cmp_file);
        for (size_t i = 0; i < b->files_len; i++)
            if (strcmp(b->files[i].path, manifest_path) == 0)
                b->manifest_path = b->files[i].path;
        if (b->manifest_path == NULL) {
            snprintf(err, errlen, "%s version %" PRIu64 ": manifest %s is missing", app, version, manifest_path);
            rc = TINE_EREDIS;
        } else {
            const reg_bundle_file_t *mf = NULL;
            for (size_t i = 0; i < b->files_len; i++)
                if (b->files[i].path == b->manifest_path)
                    mf = &b->files[i];
            rc = reg_manifest_parse(mf->path, mf->data, mf->len, &b->manifest, err, errlen);
        }
    }
    free(manifest_path);
    if (rc != 0) {
        reg_bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int reg_store_find_identical(reg_store_t *s, const reg_bundle_t *b, uint64_t *version)
{
    *version = 0;
    char ident[65];
    reg_bundle_identity(b, ident);
    reg_version_info_t *vs = NULL;
    size_t n = 0;
    if (reg_store_list_versions(s, b->manifest->app, &vs, &n) != 0)
        return TINE_EREDIS;
    for (size_t i = 0; i < n; i++)
        if (strcmp(vs[i].bundle_sha256, ident) == 0)
            *version = vs[i].version; /* the newest one wins */
    free(vs);
    return 0;
}

/* ------------------------------------------------------- prune, delete */

/* A set of strings: sorted and deduplicated by str_set_seal. */
typedef struct {
    char **v;
    size_t len;
    size_t cap;
} str_set_t;

/* Adds a copy of str to the set (duplicates go at str_set_seal). */
static void str_set_add(str_set_t *set, const char *str)
{
    if (set->len == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 64;
        set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->len++] = xstrdup(str);
}

/* Sorts the set and drops its duplicates. */
static void str_set_seal(str_set_t *set)
{
    if (set->len == 0)
        return; /* set->v may be NULL, which qsort must not get */
    qsort(set->v, set->len, sizeof(*set->v), cmp_str);
    size_t o = 0;
    for (size_t i = 0; i < set->len; i++) {
        if (o > 0 && strcmp(set->v[o - 1], set->v[i]) == 0)
            free(set->v[i]);
        else
            set->v[o++] = set->v[i];
    }
    set->len = o;
}

static void str_set_dispose(str_set_t *set)
{
    for (size_t i = 0; i < set->len; i++)
        free(set->v[i]);
    free(set->v);
    memset(set, 0, sizeof(*set));
}

/* Adds the blobs (sha256) of one version to set; a missing version adds
 * nothing. */
static int add_version_blobs(reg_store_t *s, const char *app, uint64_t v, str_set_t *set, char *err, size_t errlen)
{
    redisReply *r = reg__store_cmd(s, err, errlen, "HGET tine:app:%s:v:%" PRIu64 " files", app, v);
    if (r == NULL)
        return TINE_EREDIS;
    json_t *files = r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    freeReplyObject(r);
    const char *path;
    json_t *sha;
    json_object_foreach(files, path, sha)
    {
        if (json_is_string(sha))
            str_set_add(set, json_string_value(sha));
    }
    json_decref(files);
    return 0;
}

/* The collector: deletes, of the blobs given (ARGV), those no version of
 * any registered app references and no deploy under way marked. Run as one
 * script, it sees versions and marks as of one instant: a deploy marks its
 * blobs before writing them and its version, and releases the marks only
 * after its app is registered (made live) or its version removed; a blob
 * marked after the script ran is written again by that deploy (SET NX
 * finds it missing). Marks of deploys whose node died expire. */
static const char gc_script[] =
    "local referenced = {} "
    "for _, app in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  local seq = tonumber(redis.call('GET', 'tine:app:' .. app .. ':seq') or '0') "
    "  for v = 1, seq do "
    "    local files = redis.call('HGET', 'tine:app:' .. app .. ':v:' .. v, 'files') "
    "    if files then for _, sha in pairs(cjson.decode(files)) do referenced[sha] = true end end "
    "  end "
    "end "
    "local marks = {} "
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "  local k = KEYS[2] .. ':' .. id "
    "  if redis.call('EXISTS', k) == 1 then marks[#marks + 1] = k else redis.call('SREM', KEYS[2], id) end "
    "end "
    "local n = 0 "
    "for i = 1, #ARGV do "
    "  local keep = referenced[ARGV[i]] "
    "  for _, k in ipairs(marks) do "
    "    if not keep and redis.call('SISMEMBER', k, ARGV[i]) == 1 then keep = true end "
    "  end "
    "  if not keep then n = n + redis.call('DEL', 'tine:blob:' .. ARGV[i]) end "
    "end "
    "return n";

/* Deletes, of the blobs in `candidates`, those nothing references any more
 * (gc_script); stores how many in *deleted. */
static int gc_blobs(reg_store_t *s, str_set_t *candidates, size_t *deleted, char *err, size_t errlen)
{
    *deleted = 0;
    str_set_seal(candidates);
    if (candidates->len == 0)
        return 0;
    argv_t a = {0};
    argv_add(&a, "EVAL");
    argv_add(&a, gc_script);
    argv_add(&a, "2");
    argv_add(&a, "tine:apps");
    argv_add(&a, STORE_DEPLOYING_KEY);
    for (size_t i = 0; i < candidates->len; i++)
        argv_add(&a, candidates->v[i]);
    redisReply *r = store_cmd_list(s, err, errlen, &a);
    argv_dispose(&a);
    if (r == NULL)
        return TINE_EREDIS;
    *deleted = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
    freeReplyObject(r);
    return 0;
}

int reg_store_prune(reg_store_t *s, const char *app, size_t keep, reg_prune_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    uint64_t live = 0;
    reg_version_info_t *vs = NULL;
    size_t n = 0;
    if (reg_store_live_version(s, app, &live) != 0 || reg_store_list_versions(s, app, &vs, &n) != 0) {
        snprintf(err, errlen, "redis unreachable");
        return TINE_EREDIS;
    }
    if (n == 0) {
        free(vs);
        snprintf(err, errlen, "no app named '%s'", app);
        return TINE_ENOTFOUND;
    }
    out->live = live;
    out->pruned = xcalloc(n, sizeof(*out->pruned));
    out->kept = xcalloc(n, sizeof(*out->kept));
    /* The `keep` newest versions stay, and whatever its age the live one,
     * every tagged one, the split's and the two of a rollout under way; the
     * script reads them when it deletes (a rollback or a tag may move
     * them), and leaves a version a deploy under way staged (it is not live
     * yet). */
    argv_t a = {0};
    argv_add(&a, "EVAL");
    argv_add(&a, "local held = {} "
                 "held[redis.call('GET', KEYS[1]) or ''] = true "
                 "for _, x in ipairs(redis.call('HVALS', KEYS[2])) do held[x] = true end "
                 "held[redis.call('HGET', KEYS[3], 'version') or ''] = true "
                 "local r = redis.call('HMGET', KEYS[4], 'version', 'from', 'state') "
                 "if r[3] == 'running' or r[3] == 'paused' then "
                 "  held[r[1] or ''] = true held[r[2] or ''] = true "
                 "end "
                 "local gone = {} "
                 "for i = 4, #ARGV do "
                 "  local v = 'tine:app:' .. ARGV[1] .. ':v:' .. ARGV[i] "
                 "  local pending = tonumber(redis.call('HGET', v, 'pending') or '0') "
                 "  if not held[ARGV[i]] and "
                 "     pending < tonumber(ARGV[2]) - tonumber(ARGV[3]) and "
                 "     redis.call('DEL', v) == 1 then "
                 "    gone[#gone + 1] = tonumber(ARGV[i]) "
                 "  end "
                 "end "
                 "return gone");
    argv_add(&a, "4");
    char key[300], num[32];
    snprintf(key, sizeof(key), "tine:app:%s:live", app);
    argv_add(&a, key);
    snprintf(key, sizeof(key), "tine:app:%s:tags", app);
    argv_add(&a, key);
    snprintf(key, sizeof(key), "tine:app:%s:split", app);
    argv_add(&a, key);
    snprintf(key, sizeof(key), RDS_KEY_ROLLOUT_PREFIX "%s", app);
    argv_add(&a, key);
    argv_add(&a, app);
    snprintf(num, sizeof(num), "%" PRId64, wall_ms());
    argv_add(&a, num);
    snprintf(num, sizeof(num), "%d", STORE_DEPLOY_MARK_S * 1000);
    argv_add(&a, num);
    size_t fixed = a.len;
    str_set_t candidates = {0};
    int rc = 0;
    for (size_t i = 0; i + keep < n; i++) {
        if (vs[i].version == live)
            continue;
        snprintf(num, sizeof(num), "%" PRIu64, vs[i].version);
        argv_add(&a, num);
        if (rc == 0)
            rc = add_version_blobs(s, app, vs[i].version, &candidates, err, errlen);
    }
    if (rc == 0 && a.len > fixed) {
        redisReply *r = store_cmd_list(s, err, errlen, &a);
        if (r == NULL) {
            rc = TINE_EREDIS;
        } else {
            for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
                out->pruned[out->npruned++] = (uint64_t)r->element[i]->integer;
            freeReplyObject(r);
        }
    }
    /* Kept: every version listed that the script did not remove. */
    for (size_t i = 0, k = 0; i < n; i++) {
        while (k < out->npruned && out->pruned[k] < vs[i].version)
            k++;
        if (k == out->npruned || out->pruned[k] != vs[i].version)
            out->kept[out->nkept++] = vs[i].version;
    }
    free(vs);
    argv_dispose(&a);
    if (rc == 0)
        rc = gc_blobs(s, &candidates, &out->blobs_deleted, err, errlen);
    str_set_dispose(&candidates);
    if (rc == 0) {
        char what[600];
        snprintf(what, sizeof what, "%zu versions of %s were pruned on the redis master", out->npruned, app);
        rc = reg__store_confirm(s, what, "prune again to be sure", err, errlen);
    }
    return rc;
}

void reg_prune_result_dispose(reg_prune_result_t *r)
{
    free(r->pruned);
    free(r->kept);
    memset(r, 0, sizeof(*r));
}

int reg_store_delete_app(reg_store_t *s, const char *app, reg_delete_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    uint64_t seq = 0;
    redisReply *r = reg__store_cmd(s, err, errlen, "SISMEMBER " RDS_KEY_APPS " %s", app);
    if (r == NULL)
        return TINE_EREDIS;
    bool known = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (app_seq(s, app, &seq, err, errlen) != 0)
        return TINE_EREDIS;
    if (!known) {
        /* Staged versions of an app never made live are deleted too. */
        for (uint64_t v = 1; v <= seq && !known; v++) {
            r = reg__store_cmd(s, err, errlen, "EXISTS tine:app:%s:v:%" PRIu64, app, v);
            if (r == NULL)
                return TINE_EREDIS;
            known = r->integer == 1;
            freeReplyObject(r);
        }
    }
    if (!known) {
        snprintf(err, errlen, "no app named '%s'", app);
        return TINE_ENOTFOUND;
    }
    /* First every node stops serving it (announced like a deploy, version
     * 0: none), then its versions, files and data go. The version counter
     * stays, so an app deployed later under the same name gets new numbers
     * and its usage rows never mix with this one's. */
    char note[512];
    snprintf(note, sizeof(note), "%s 0", app);
    redisContext *c = rds_sync_context(s->redis, err, errlen);
    if (c == NULL)
        return TINE_EREDIS;
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "DEL " RDS_KEY_APP_PREFIX "%s:live " RDS_KEY_APP_PREFIX "%s:tags " RDS_KEY_APP_PREFIX
                          "%s:split",
                       app, app, app);
    redisAppendCommand(c, "SREM " RDS_KEY_APPS " %s", app);
    redisAppendCommand(c, "PUBLISH " RDS_CHANNEL_DEPLOYS " %s", note);
    redisAppendCommand(c, "EXEC");
    int rc = rds_sync_replies(s->redis, 5, err, errlen);
    /* The hosts it served are free for other apps. */
    if (rc == 0 &&
        (r = reg__store_cmd(s, err, errlen,
                            "EVAL %s 1 " RDS_KEY_HOSTS " %s",
                            "local h = redis.call('HGETALL', KEYS[1]) "
                            "for i = 1, #h, 2 do if h[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[1], h[i]) end end "
                            "return 0",
                            app)) == NULL)
        rc = TINE_EREDIS;
    else if (rc == 0)
        freeReplyObject(r);
    str_set_t blobs = {0};
    for (uint64_t v = 1; rc == 0 && v <= seq; v++) {
        rc = add_version_blobs(s, app, v, &blobs, err, errlen);
        if (rc == 0 && (r = reg__store_cmd(s, err, errlen, "DEL tine:app:%s:v:%" PRIu64, app, v)) == NULL)
            rc = TINE_EREDIS;
        if (rc == 0) {
            out->versions += r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
            freeReplyObject(r);
        }
    }
    if (rc == 0)
        rc = gc_blobs(s, &blobs, &out->blobs_deleted, err, errlen);
    str_set_dispose(&blobs);
    if (rc == 0) {
        char what[600];
        snprintf(what, sizeof what, "%s was deleted on the redis master", app);
        rc = reg__store_confirm(s, what, "delete it again to be sure", err, errlen);
    }
    return rc;
}

int reg_store_app_known(reg_store_t *s, const char *app, bool *known)
{
    char err[256];
    uint64_t seq = 0;
    if (app_seq(s, app, &seq, err, sizeof(err)) != 0)
        return TINE_EREDIS;
    *known = seq > 0;
    return 0;
}
