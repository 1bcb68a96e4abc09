/* The versioned store on Redis (synchronous hiredis).
 *
 * Keys:
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

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct reg_store {
    redisContext *c;
    char *url;
};

/* Parses "unix:///path" or "redis://host:port[/db]" and connects. */
static redisContext *store_open(const char *url, char *err, size_t errlen)
{
    struct timeval tv = {5, 0};
    redisContext *c = NULL;
    if (strncmp(url, "unix://", 7) == 0) {
        c = redisConnectUnixWithTimeout(url + 7, tv);
    } else if (strncmp(url, "redis://", 8) == 0) {
        char host[256];
        int port = 6379;
        const char *hp = url + 8;
        const char *at = strrchr(hp, '@');
        if (at)
            hp = at + 1;
        size_t hl = strcspn(hp, ":/");
        if (hl == 0 || hl >= sizeof(host)) {
            snprintf(err, errlen, "redis url '%s': expected redis://host:port", url);
            return NULL;
        }
        memcpy(host, hp, hl);
        host[hl] = '\0';
        if (hp[hl] == ':')
            port = atoi(hp + hl + 1);
        c = redisConnectWithTimeout(host, port, tv);
    } else {
        snprintf(err, errlen, "redis url '%s': expected unix:///path/to/socket or redis://host:port", url);
        return NULL;
    }
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to redis at %s: %s", url, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

reg_store_t *reg_store_connect(const char *url, char *err, size_t errlen)
{
    redisContext *c = store_open(url, err, errlen);
    if (c == NULL)
        return NULL;
    reg_store_t *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->url = xstrdup(url);
    return s;
}

void reg_store_free(reg_store_t *s)
{
    if (s == NULL)
        return;
    redisFree(s->c);
    free(s->url);
    free(s);
}

/* Runs one command, reconnecting once if the connection was lost. Returns the
 * reply (caller frees) or NULL with a message in err. A Redis error reply is
 * turned into NULL too. */
static redisReply *store_cmd(reg_store_t *s, char *err, size_t errlen, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->c == NULL || s->c->err) {
            if (s->c)
                redisFree(s->c);
            s->c = store_open(s->url, err, errlen);
            if (s->c == NULL)
                return NULL;
        }
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(s->c, fmt, ap);
        va_end(ap);
        if (r == NULL)
            continue;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis: %s", r->str);
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    snprintf(err, errlen, "redis: %s", s->c ? s->c->errstr : "not connected");
    return NULL;
}

/* Reads the `n` replies of a pipelined MULTI ... EXEC. Fails when any reply
 * is an error or the EXEC (the last) did not run the transaction. */
static int store_exec_replies(reg_store_t *s, int n, char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(s->c, &reply) != REDIS_OK) {
            snprintf(err, errlen, "redis: %s", s->c->errstr);
            return TINE_EREDIS;
        }
        redisReply *rr = reply;
        if (rc == 0 && rr->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis: %s", rr->str);
            rc = TINE_EREDIS;
        } else if (rc == 0 && i == n - 1 && rr->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "redis: the transaction was aborted");
            rc = TINE_EREDIS;
        }
        freeReplyObject(rr);
    }
    return rc;
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
        r = store_cmd(s, err, errlen, "SET tine:blob:%s %b NX", b->files[i].sha256, b->files[i].data,
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

    r = store_cmd(s, err, errlen, "INCR tine:app:%s:seq", app);
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
    redisAppendCommand(s->c, "MULTI");
    redisAppendCommand(s->c, "HSET tine:app:%s:v:%s created %s sha256 %s manifest %s files %s", app, vstr, created,
                       ident, b->manifest_path, files_json);
    redisAppendCommand(s->c, "SET tine:app:%s:live %s", app, vstr);
    redisAppendCommand(s->c, "SADD tine:apps %s", app);
    redisAppendCommand(s->c, "PUBLISH %s %s", REG_DEPLOY_CHANNEL, note);
    redisAppendCommand(s->c, "EXEC");
    free(files_json);
    int rc = store_exec_replies(s, 6, err, errlen);
    if (rc == 0)
        *version = n;
    return rc;
}

static int version_exists(reg_store_t *s, const char *app, uint64_t v, char *err, size_t errlen)
{
    redisReply *r = store_cmd(s, err, errlen, "EXISTS tine:app:%s:v:%" PRIu64, app, v);
    if (r == NULL)
        return TINE_EREDIS;
    int exists = r->integer == 1;
    freeReplyObject(r);
    return exists;
}

int reg_store_live_version(reg_store_t *s, const char *app, uint64_t *version)
{
    char err[256];
    redisReply *r = store_cmd(s, err, sizeof(err), "GET tine:app:%s:live", app);
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
    redisAppendCommand(s->c, "MULTI");
    redisAppendCommand(s->c, "SET tine:app:%s:live %" PRIu64, app, version);
    redisAppendCommand(s->c, "PUBLISH %s %s", REG_DEPLOY_CHANNEL, note);
    redisAppendCommand(s->c, "EXEC");
    int rc = store_exec_replies(s, 4, err, errlen);
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
    redisReply *r = store_cmd(s, err, sizeof(err), "SMEMBERS tine:apps");
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
    redisReply *r = store_cmd(s, err, sizeof(err), "GET tine:app:%s:seq", app);
    if (r == NULL)
        return TINE_EREDIS;
    uint64_t seq = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    reg_version_info_t *v = xcalloc(seq + 1, sizeof(*v));
    size_t count = 0;
    for (uint64_t i = 1; i <= seq; i++) {
        r = store_cmd(s, err, sizeof(err), "HMGET tine:app:%s:v:%" PRIu64 " created sha256 files", app, i);
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
    redisReply *r = store_cmd(s, err, errlen, "HMGET tine:app:%s:v:%" PRIu64 " manifest files", app, version);
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
        r = hex ? store_cmd(s, err, errlen, "GET tine:blob:%s", hex) : NULL;
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
