/* The versioned store on Redis (a synchronous connection of redis/).
 *
 * Keys (redis/keys.h):
 *   tine:apps                 SET of app names
 *   tine:app:{app}:seq        INCR counter: the last version number handed out
 *   tine:app:{app}:live       the live version number
 *   tine:app:{app}:v:{N}      HASH: created (unix ms), sha256 (of the file list),
 *                             manifest (bundle path of the manifest),
 *                             files (JSON object path -> sha256)
 *   tine:blob:{sha256}        file contents, stored once, never changed
 *
 * Versions are immutable once written. The live alias, the version hash and
 * the deploy notification are written in one MULTI/EXEC, so every reader sees
 * either the old or the new version, never a half-written one. */
#include "registry.h"
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

#define STORE_TIMEOUT_MS 10000 /* connect, and each command (a bundle's files can be large) */

struct reg_store {
    rds_sync_t *redis;
};

reg_store_t *reg_store_connect(const char *url, char *err, size_t errlen)
{
    rds_sync_t *redis = rds_sync_new(url, STORE_TIMEOUT_MS, err, errlen);
    if (redis == NULL || rds_sync_context(redis, err, errlen) == NULL) {
        rds_sync_free(redis);
        return NULL;
    }
    reg_store_t *s = xcalloc(1, sizeof(*s));
    s->redis = redis;
    return s;
}

void reg_store_free(reg_store_t *s)
{
    if (s == NULL)
        return;
    rds_sync_free(s->redis);
    free(s);
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The identity of a version's content: sha256 over "path\0sha256\n" of every
 * file in path order (bundle files are kept sorted by path). */
static void bundle_identity(const reg_bundle_t *b, char out[65])
{
    tine_buf_t buf;
    tine_buf_init(&buf);
    for (size_t i = 0; i < b->files_len; i++) {
        tine_buf_append(&buf, b->files[i].path, strlen(b->files[i].path) + 1);
        tine_buf_append(&buf, b->files[i].sha256, 64);
        tine_buf_append(&buf, "\n", 1);
    }
    reg_sha256_hex(buf.data ? buf.data : "", buf.len, out);
    tine_buf_dispose(&buf);
}

int reg_store_deploy(reg_store_t *s, const reg_bundle_t *b, uint64_t *version, char *err, size_t errlen)
{
    const char *app = b->manifest->app;
    redisReply *r;

    /* File contents first: content-addressed, so writing them before the
     * version exists is harmless if the deploy fails later. */
    for (size_t i = 0; i < b->files_len; i++) {
        r = rds_sync_command(s->redis, err, errlen, "SET " RDS_KEY_BLOB_PREFIX "%s %b NX", b->files[i].sha256, b->files[i].data,
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
    char ident[65];
    bundle_identity(b, ident);

    r = rds_sync_command(s->redis, err, errlen, "INCR " RDS_KEY_APP_PREFIX "%s:seq", app);
    if (r == NULL) {
        free(files_json);
        return TINE_EREDIS;
    }
    uint64_t n = (uint64_t)r->integer;
    freeReplyObject(r);

    char created[32];
    snprintf(created, sizeof(created), "%" PRId64, wall_ms());
    char vstr[32];
    snprintf(vstr, sizeof(vstr), "%" PRIu64, n);
    char note[512];
    snprintf(note, sizeof(note), "%s %" PRIu64, app, n);

    /* One transaction: the version, the live alias and the announcement. */
    redisContext *c = rds_sync_context(s->redis, err, errlen);
    if (c == NULL) {
        free(files_json);
        return TINE_EREDIS;
    }
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "HSET " RDS_KEY_APP_PREFIX "%s:v:%s created %s sha256 %s manifest %s files %s", app, vstr,
                       created, ident, b->manifest_path, files_json);
    redisAppendCommand(c, "SET " RDS_KEY_APP_PREFIX "%s:live %s", app, vstr);
    redisAppendCommand(c, "SADD " RDS_KEY_APPS " %s", app);
    redisAppendCommand(c, "PUBLISH " RDS_CHANNEL_DEPLOYS " %s", note);
    redisAppendCommand(c, "EXEC");
    free(files_json);
    int rc = rds_sync_replies(s->redis, 6, err, errlen);
    if (rc == 0)
        *version = n;
    return rc;
}

static int version_exists(reg_store_t *s, const char *app, uint64_t v, char *err, size_t errlen)
{
    redisReply *r = rds_sync_command(s->redis, err, errlen, "EXISTS " RDS_KEY_APP_PREFIX "%s:v:%" PRIu64, app, v);
    if (r == NULL)
        return TINE_EREDIS;
    int exists = r->integer == 1;
    freeReplyObject(r);
    return exists;
}

int reg_store_live_version(reg_store_t *s, const char *app, uint64_t *version)
{
    char err[256];
    redisReply *r = rds_sync_command(s->redis, err, sizeof(err), "GET " RDS_KEY_APP_PREFIX "%s:live", app);
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
        if (live <= 1) {
            snprintf(err, errlen, "%s: version %" PRIu64 " is the first; nothing to roll back to", app, live);
            return TINE_ENOTFOUND;
        }
        version = live - 1;
    }
    int ex = version_exists(s, app, version, err, errlen);
    if (ex < 0)
        return ex;
    if (!ex) {
        snprintf(err, errlen, "%s has no version %" PRIu64, app, version);
        return TINE_ENOTFOUND;
    }
    char note[512];
    snprintf(note, sizeof(note), "%s %" PRIu64, app, version);
    redisContext *c = rds_sync_context(s->redis, err, errlen);
    if (c == NULL)
        return TINE_EREDIS;
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SET " RDS_KEY_APP_PREFIX "%s:live %" PRIu64, app, version);
    redisAppendCommand(c, "PUBLISH " RDS_CHANNEL_DEPLOYS " %s", note);
    redisAppendCommand(c, "EXEC");
    int rc = rds_sync_replies(s->redis, 4, err, errlen);
    if (rc == 0)
        *now_live = version;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int reg_store_list_apps(reg_store_t *s, char ***names, size_t *n)
{
    char err[256];
    redisReply *r = rds_sync_command(s->redis, err, sizeof(err), "SMEMBERS " RDS_KEY_APPS);
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

int reg_store_list_versions(reg_store_t *s, const char *app, reg_version_info_t **out, size_t *n)
{
    char err[256];
    redisReply *r = rds_sync_command(s->redis, err, sizeof(err), "GET " RDS_KEY_APP_PREFIX "%s:seq", app);
    if (r == NULL)
        return TINE_EREDIS;
    uint64_t seq = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    reg_version_info_t *v = xcalloc(seq + 1, sizeof(*v));
    size_t count = 0;
    for (uint64_t i = 1; i <= seq; i++) {
        r = rds_sync_command(s->redis, err, sizeof(err), "HMGET " RDS_KEY_APP_PREFIX "%s:v:%" PRIu64 " created sha256 files", app, i);
        if (r == NULL) {
            free(v);
            return TINE_EREDIS;
        }
        /* A number handed out by INCR whose transaction failed has no hash. */
        if (r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
            v[count].version = i;
            v[count].created_ms = strtoll(r->element[0]->str, NULL, 10);
            if (r->element[1]->type == REDIS_REPLY_STRING)
                snprintf(v[count].bundle_sha256, sizeof(v[count].bundle_sha256), "%s", r->element[1]->str);
            if (r->element[2]->type == REDIS_REPLY_STRING) {
                json_t *f = json_loads(r->element[2]->str, 0, NULL);
                v[count].files = json_object_size(f);
                json_decref(f);
            }
            count++;
        }
        freeReplyObject(r);
    }
    *out = v;
    *n = count;
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const reg_bundle_file_t *)a)->path, ((const reg_bundle_file_t *)b)->path);
}

int reg_store_load_version(reg_store_t *s, const char *app, uint64_t version, reg_bundle_t **out, char *err,
                           size_t errlen)
{
    redisReply *r = rds_sync_command(s->redis, err, errlen, "HMGET " RDS_KEY_APP_PREFIX "%s:v:%" PRIu64 " manifest files", app, version);
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
        r = hex ? rds_sync_command(s->redis, err, errlen, "GET " RDS_KEY_BLOB_PREFIX "%s", hex) : NULL;
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
