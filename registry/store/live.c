/* The in-memory table of live app versions, kept in step with Redis: loaded at
 * start, then reloaded per app whenever a deploy or rollback is announced on
 * RDS_CHANNEL_DEPLOYS, and wholly whenever the subscription is made again
 * (an announcement may have been missed while Redis was away). Requests read
 * it without touching Redis. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "registry.h"
#include "tine_common.h"
#include "tine_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* An app whose live version this node cannot load (its state dir full or
 * read-only, Redis unreachable...): it keeps serving what it had and tries
 * again with backoff until it succeeds. */
typedef struct {
    char *app;
    uint64_t version; /* the live version it could not load (0: unknown) */
    char *error;
    uint64_t next_ns;
    uint64_t delay_ms;
} live_failure_t;

#define LIVE_RETRY_FIRST_MS 500
#define LIVE_RETRY_MAX_MS 30000

/* The retry timer, a heap object of its own (closed and freed apart from
 * the table). */
typedef struct {
    uv_timer_t timer;
    struct reg_live *l; /* NULL once the table is freed */
} live_retry_t;

/* What this node follows of an app's releases: the state in Redis, and
 * the versions it loaded besides the live one (tagged, the split's, and
 * previews asked for by path or header), each holding a reference. */
typedef struct {
    char *app;
    size_t app_len;
    reg_release_t rel;
    reg_app_version_t *split_v; /* the split's version among previews, or NULL */
    reg_app_version_t **previews;
    size_t npreviews;
} live_release_t;

/* Versions loaded on demand (not tagged, not split) kept per app at most:
 * a caller cannot make a node load every stored version. */
#define LIVE_MAX_PREVIEWS 8

struct reg_live {
    uv_loop_t *loop;
    char *state_dir;
    reg_store_t *store;
    reg_live_change_cb cb;
    void *cb_data;
    reg_app_map_t apps; /* the live version of each app */
    rds_async_t *sub;   /* the subscription to deploy announcements */
    int closing;
    live_failure_t *failures;
    size_t nfailures;
    live_retry_t *retry;
    char *unloaded; /* why the table was never loaded (Redis away at the start); NULL once it was */
    uint64_t load_next_ns, load_delay_ms;
    live_release_t *releases; /* apps with tags, a split or previews loaded */
    size_t nreleases;
    reg_live_preview_cb pcb;
    void *pcb_data;
    size_t nhosts; /* live versions naming their own host */
};

/* nftw callback: removes path (a file or an emptied dir); errors are ignored.
 * Returns 0: the walk goes on. */
static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes a directory tree (best effort; symlinks are removed, not followed). */
static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a version's files under state_dir/bundles/APP/N (once: a version
 * never changes). Files go to a temporary directory renamed into place, so a
 * sandbox never sees a half-written version. Returns the directory. */
static int materialize(reg_live_t *l, const reg_bundle_t *b, const char *app, uint64_t version, char **dir_out,
                       char *err, size_t errlen)
{
    char *dir = xasprintf("%s/bundles/%s/%" PRIu64, l->state_dir, app, version);
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        *dir_out = dir;
        return 0;
    }
    char *tmp = xasprintf("%s/bundles/%s/.%" PRIu64 ".tmp.%d", l->state_dir, app, version, (int)getpid());
    int rc = tine_mkdirs(tmp, 0755);
    for (size_t i = 0; rc == 0 && i < b->files_len; i++) {
        char *path = xasprintf("%s/%s", tmp, b->files[i].path);
        char *slash = strrchr(path, '/');
        *slash = '\0';
        rc = tine_mkdirs(path, 0755);
        *slash = '/';
        if (rc == 0)
            rc = tine_write_file(path, b->files[i].data, b->files[i].len, 0644);
        free(path);
    }
    if (rc == 0 && rename(tmp, dir) != 0 && errno != ENOTEMPTY && errno != EEXIST)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", dir, tine_strerror(rc));
        remove_tree(tmp); /* a full disk must not keep what it could write */
        free(dir);
        dir = NULL;
    }
    free(tmp);
    *dir_out = dir;
    return rc;
}

/* Loads one version of an app from the store into a fresh reg_app_version_t. */
static int load_version(reg_live_t *l, const char *app, uint64_t version, reg_app_version_t **out, char *err,
                        size_t errlen)
{
    reg_bundle_t *b = NULL;
    int rc = reg_store_load_version(l->store, app, version, &b, err, errlen);
    if (rc != 0)
        return rc;
    char *dir = NULL;
    rc = materialize(l, b, app, version, &dir, err, errlen);
    if (rc != 0) {
        reg_bundle_free(b);
        return rc;
    }
    reg_manifest_t *m = b->manifest;
    b->manifest = NULL;
    reg_bundle_free(b);
    return reg_app_version_new(app, version, m, dir, out, err, errlen);
}

/* The noted load failure of app on this node, or NULL. */
static live_failure_t *failure_find(reg_live_t *l, const char *app)
{
    for (size_t i = 0; i < l->nfailures; i++)
        if (strcmp(l->failures[i].app, app) == 0)
            return &l->failures[i];
    return NULL;
}

/* Forgets app's load failure, saying in the log that this node serves its
 * live version again. */
static void failure_clear(reg_live_t *l, const char *app)
{
    live_failure_t *f = failure_find(l, app);
    if (f == NULL)
        return;
    tine_log(TINE_LOG_INFO, "app %s: this node serves its live version again", app);
    free(f->app);
    free(f->error);
    *f = l->failures[--l->nfailures];
}

static void on_retry_timer(uv_timer_t *t);

/* Arms the retry timer for the earliest failure due. */
static void retry_arm(reg_live_t *l)
{
    if (l->retry == NULL || l->closing)
        return;
    uint64_t next = l->unloaded ? l->load_next_ns : UINT64_MAX, now = tine_now_ns();
    for (size_t i = 0; i < l->nfailures; i++)
        if (l->failures[i].next_ns < next)
            next = l->failures[i].next_ns;
    if (next == UINT64_MAX) {
        uv_timer_stop(&l->retry->timer);
        return;
    }
    uv_timer_start(&l->retry->timer, on_retry_timer, next > now ? (next - now) / 1000000 + 1 : 0, 0);
}

/* Records that the live version of app cannot be loaded here, and when to
 * try again (backoff doubling up to LIVE_RETRY_MAX_MS). */
static void failure_note(reg_live_t *l, const char *app, uint64_t version, const char *why)
{
    live_failure_t *f = failure_find(l, app);
    if (f == NULL) {
        l->failures = xrealloc(l->failures, (l->nfailures + 1) * sizeof(*l->failures));
        f = &l->failures[l->nfailures++];
        memset(f, 0, sizeof(*f));
        f->app = xstrdup(app);
        f->delay_ms = LIVE_RETRY_FIRST_MS;
    } else {
        f->delay_ms = f->delay_ms * 2 > LIVE_RETRY_MAX_MS ? LIVE_RETRY_MAX_MS : f->delay_ms * 2;
    }
    bool changed = f->error == NULL || strcmp(f->error, why) != 0 || f->version != version;
    free(f->error);
    f->error = xstrdup(why);
    f->version = version;
    f->next_ns = tine_now_ns() + f->delay_ms * 1000000;
    if (changed)
        tine_log(TINE_LOG_ERROR, "app %s: live version %" PRIu64 " cannot be loaded on this node: %s (retrying)", app,
                 version, why);
    retry_arm(l);
}

static int live_reload_all(reg_live_t *l, char *err, size_t errlen);

/* Loads the table when it is due (never loaded yet), then reloads every app
 * whose retry is due (a reload notes or clears its failure), then arms the
 * timer for the next. */
static void on_retry_timer(uv_timer_t *t)
{
    live_retry_t *r = container_of(t, live_retry_t, timer);
    reg_live_t *l = r->l;
    uint64_t now = tine_now_ns();
    if (l->unloaded && l->load_next_ns <= now) {
        char err[1024];
        live_reload_all(l, err, sizeof err); /* notes the failure and when to try again */
    }
    /* Copies: a reload edits the array. */
    size_t n = l->nfailures;
    char **due = xcalloc(n + 1, sizeof(*due));
    size_t ndue = 0;
    for (size_t i = 0; i < n; i++)
        if (l->failures[i].next_ns <= now)
            due[ndue++] = xstrdup(l->failures[i].app);
    for (size_t i = 0; i < ndue; i++) {
        char err[512];
        reg_live_reload(l, due[i], err, sizeof(err)); /* notes or clears the failure */
        free(due[i]);
    }
    free(due);
    retry_arm(l);
}

size_t reg_live_failures(reg_live_t *l, reg_live_failure_t *out, size_t max)
{
    for (size_t i = 0; i < l->nfailures && i < max; i++)
        out[i] = (reg_live_failure_t){l->failures[i].app, l->failures[i].version, l->failures[i].error};
    return l->nfailures;
}

const char *reg_live_failure(reg_live_t *l, const char *app, uint64_t *version)
{
    live_failure_t *f = failure_find(l, app);
    if (f && version)
        *version = f->version;
    return f ? f->error : NULL;
}

int reg_live_prepare(reg_live_t *l, const reg_bundle_t *b, uint64_t version, char *err, size_t errlen)
{
    char *dir = NULL;
    int rc = materialize(l, b, b->manifest->app, version, &dir, err, errlen);
    free(dir);
    return rc;
}

/* The release entry of app, or NULL. */
static live_release_t *release_find(reg_live_t *l, const char *app, size_t app_len)
{
    for (size_t i = 0; i < l->nreleases; i++)
        if (l->releases[i].app_len == app_len && memcmp(l->releases[i].app, app, app_len) == 0)
            return &l->releases[i];
    return NULL;
}

/* Whether rel keeps `version` loaded: a tag names it or the split sends to it. */
static bool release_wants(const reg_release_t *rel, uint64_t version)
{
    if (rel->split_version == version && rel->split_percent > 0)
        return true;
    for (size_t i = 0; i < rel->ntags; i++)
        if (rel->tags[i].version == version)
            return true;
    return false;
}

/* Position of `version` among e's previews, or SIZE_MAX. */
static size_t preview_index(const live_release_t *e, uint64_t version)
{
    for (size_t i = 0; i < e->npreviews; i++)
        if (e->previews[i]->version == version)
            return i;
    return SIZE_MAX;
}

/* Removes preview i of e; its reference passes to the caller. */
static reg_app_version_t *preview_take(live_release_t *e, size_t i)
{
    reg_app_version_t *v = e->previews[i];
    memmove(&e->previews[i], &e->previews[i + 1], (e->npreviews - i - 1) * sizeof(*e->previews));
    e->npreviews--;
    if (e->split_v == v)
        e->split_v = NULL;
    return v;
}

/* Drops preview i of e: the invoker forgets its pools. */
static void preview_drop(reg_live_t *l, live_release_t *e, size_t i)
{
    reg_app_version_t *v = preview_take(e, i);
    if (l->pcb)
        l->pcb(l->pcb_data, v, NULL);
    reg_app_version_release(v);
}

/* Adds v to e's previews, taking the caller's reference. */
static void preview_add(reg_live_t *l, live_release_t *e, reg_app_version_t *v)
{
    e->previews = xrealloc(e->previews, (e->npreviews + 1) * sizeof(*e->previews));
    e->previews[e->npreviews++] = v;
    if (l->pcb)
        l->pcb(l->pcb_data, NULL, v);
}

/* The release entry of app, made when missing. */
static live_release_t *release_get(reg_live_t *l, const char *app)
{
    live_release_t *e = release_find(l, app, strlen(app));
    if (e != NULL)
        return e;
    l->releases = xrealloc(l->releases, (l->nreleases + 1) * sizeof(*l->releases));
    e = &l->releases[l->nreleases++];
    memset(e, 0, sizeof(*e));
    e->app = xstrdup(app);
    e->app_len = strlen(app);
    return e;
}

/* Forgets e when it holds nothing (no tag, split or preview). */
static void release_maybe_free(reg_live_t *l, live_release_t *e)
{
    if (e->npreviews > 0 || e->rel.ntags > 0 || e->rel.split_version != 0)
        return;
    reg_release_dispose(&e->rel);
    free(e->previews);
    free(e->app);
    *e = l->releases[--l->nreleases];
}

/* Takes rel as app's release state: loads the versions it names (not the
 * live one), drops the previews it no longer names. A version that cannot
 * be loaded is said in the log and not served. */
static void release_update(reg_live_t *l, const char *app, reg_release_t *rel, reg_app_version_t *keep_old)
{
    live_release_t *e = release_get(l, app);
    reg_release_dispose(&e->rel);
    e->rel = *rel;
    memset(rel, 0, sizeof(*rel));
    for (size_t i = e->npreviews; i-- > 0;)
        if (e->rel.live == 0 || e->previews[i]->version == e->rel.live ||
            !release_wants(&e->rel, e->previews[i]->version))
            preview_drop(l, e, i);
    if (keep_old && e->rel.live != 0 && keep_old->version != e->rel.live && release_wants(&e->rel, keep_old->version) &&
        preview_index(e, keep_old->version) == SIZE_MAX) {
        reg_app_version_retain(keep_old);
        preview_add(l, e, keep_old);
    }
    uint64_t wanted[REG_TAG_MAX + 64];
    size_t nwanted = 0;
    if (e->rel.split_version && e->rel.split_percent > 0)
        wanted[nwanted++] = e->rel.split_version;
    for (size_t i = 0; i < e->rel.ntags && nwanted < sizeof wanted / sizeof wanted[0]; i++)
        wanted[nwanted++] = e->rel.tags[i].version;
    for (size_t i = 0; i < nwanted && e->rel.live != 0; i++) {
        if (wanted[i] == e->rel.live || preview_index(e, wanted[i]) != SIZE_MAX)
            continue;
        reg_app_version_t *v = NULL;
        char err[512];
        if (load_version(l, app, wanted[i], &v, err, sizeof err) != 0) {
            tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", app), "app %s: version %" PRIu64 " cannot be loaded: %s",
                        app, wanted[i], err);
            continue;
        }
        preview_add(l, e, v);
    }
    size_t si = e->rel.split_percent > 0 ? preview_index(e, e->rel.split_version) : SIZE_MAX;
    e->split_v = si != SIZE_MAX ? e->previews[si] : NULL;
    release_maybe_free(l, e);
}

int reg_live_reload(reg_live_t *l, const char *app, char *err, size_t errlen)
{
    reg_release_t rel;
    if (reg_store_release(l->store, app, &rel, err, errlen) != 0) {
        reg_release_dispose(&rel);
        snprintf(err, errlen, "redis unreachable while reloading %s", app);
        failure_note(l, app, 0, err);
        return TINE_EREDIS;
    }
    uint64_t live = rel.live;
    reg_app_version_t *cur = reg_app_map_get(&l->apps, app, strlen(app));
    if (cur && cur->version == live) {
        failure_clear(l, app);
        release_update(l, app, &rel, NULL);
        return 0;
    }
    reg_app_version_t *nv = NULL;
    if (live != 0) {
        /* A version loaded as a preview goes live as it is: its pools stay. */
        live_release_t *e = release_find(l, app, strlen(app));
        size_t i = e ? preview_index(e, live) : SIZE_MAX;
        if (i != SIZE_MAX) {
            nv = preview_take(e, i);
        } else {
            int rc = load_version(l, app, live, &nv, err, errlen);
            if (rc != 0) {
                reg_release_dispose(&rel);
                failure_note(l, app, live, err);
                return rc;
            }
        }
    }
    failure_clear(l, app);
    reg_app_version_t *old = nv ? reg_app_map_put(&l->apps, nv) : reg_app_map_take(&l->apps, app, strlen(app));
    l->nhosts = 0;
    for (size_t i = 0; i < l->apps.len; i++)
        l->nhosts += l->apps.entries[i].v->manifest->host != NULL;
    if (l->cb)
        l->cb(l->cb_data, old, nv);
    release_update(l, app, &rel, old);
    reg_app_version_release(old);
    return 0;
}

reg_app_version_t *reg_live_by_host(reg_live_t *l, const char *host, size_t len, size_t *label_len)
{
    *label_len = 0;
    if (l->nhosts == 0 || len == 0)
        return NULL;
    /* Host names compare without case; the manifest's is lower case. */
    for (int pass = 0; pass < 2; pass++) {
        const char *h = host;
        size_t hl = len;
        if (pass == 1) { /* beta.HOST: the first label names a tag */
            const char *dot = memchr(host, '.', len);
            if (dot == NULL || dot == host)
                return NULL;
            h = dot + 1;
            hl = len - (size_t)(h - host);
            *label_len = (size_t)(dot - host);
        }
        for (size_t i = 0; i < l->apps.len; i++) {
            const char *own = l->apps.entries[i].v->manifest->host;
            if (own && strlen(own) == hl && strncasecmp(own, h, hl) == 0)
                return l->apps.entries[i].v;
        }
    }
    *label_len = 0;
    return NULL;
}

void reg_live_set_preview_cb(reg_live_t *l, reg_live_preview_cb cb, void *data)
{
    l->pcb = cb;
    l->pcb_data = data;
    for (size_t i = 0; cb && i < l->nreleases; i++)
        for (size_t k = 0; k < l->releases[i].npreviews; k++)
            cb(data, NULL, l->releases[i].previews[k]);
}

int reg_live_get_version(reg_live_t *l, const char *app, size_t app_len, uint64_t version, reg_app_version_t **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    reg_app_version_t *live = reg_app_map_get(&l->apps, app, app_len);
    if (live != NULL && live->version == version) {
        *out = live;
        return 0;
    }
    live_release_t *e = release_find(l, app, app_len);
    size_t i = e ? preview_index(e, version) : SIZE_MAX;
    if (i != SIZE_MAX) {
        *out = e->previews[i];
        return 0;
    }
    /* An app none of whose versions went live yet (deploy --stage) is
     * previewed all the same: its versions are in the store. */
    char name[256];
    if (app_len == 0 || app_len >= sizeof name || memchr(app, '\0', app_len) != NULL) {
        snprintf(err, errlen, "no app named '%.*s'", (int)(app_len > 64 ? 64 : app_len), app);
        return TINE_ENOTFOUND;
    }
    memcpy(name, app, app_len);
    name[app_len] = '\0';
    reg_app_version_t *v = NULL;
    int rc = load_version(l, name, version, &v, err, errlen);
    if (rc != 0)
        return rc;
    e = release_get(l, name);
    size_t asked = 0; /* previews loaded on demand: the oldest goes past the cap */
    for (size_t k = 0; k < e->npreviews; k++)
        asked += !release_wants(&e->rel, e->previews[k]->version);
    for (size_t k = 0; asked >= LIVE_MAX_PREVIEWS && k < e->npreviews; k++)
        if (!release_wants(&e->rel, e->previews[k]->version)) {
            preview_drop(l, e, k);
            break;
        }
    preview_add(l, e, v);
    *out = v;
    return 0;
}

uint64_t reg_live_tag(reg_live_t *l, const char *app, size_t app_len, const char *tag, size_t tag_len)
{
    live_release_t *e = release_find(l, app, app_len);
    for (size_t i = 0; e && i < e->rel.ntags; i++)
        if (strlen(e->rel.tags[i].name) == tag_len && memcmp(e->rel.tags[i].name, tag, tag_len) == 0)
            return e->rel.tags[i].version;
    return 0;
}

bool reg_live_split(reg_live_t *l, const char *app, size_t app_len, reg_app_version_t **version, unsigned *percent)
{
    if (l->nreleases == 0)
        return false;
    live_release_t *e = release_find(l, app, app_len);
    if (e == NULL || e->split_v == NULL)
        return false;
    *version = e->split_v;
    *percent = e->rel.split_percent;
    return true;
}

int reg_live_select(reg_live_t *l, const char *app, const char *sel, reg_app_version_t **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    size_t len = strlen(sel);
    bool digits = len > 0 && len <= 19 && strspn(sel, "0123456789") == len;
    uint64_t version = digits ? strtoull(sel, NULL, 10) : 0;
    if (!digits && !reg_tag_name_valid(sel, len)) {
        snprintf(err, errlen, "'%.64s' is neither a version number nor a tag", sel);
        return TINE_EINVAL;
    }
    if (!digits && (version = reg_live_tag(l, app, strlen(app), sel, len)) == 0) {
        snprintf(err, errlen, "app %s has no tag '%s'", app, sel);
        return TINE_ENOTFOUND;
    }
    int rc = version ? reg_live_get_version(l, app, strlen(app), version, out, err, errlen) : TINE_ENOTFOUND;
    if (rc == TINE_ENOTFOUND)
        snprintf(err, errlen, "app %s has no version %" PRIu64, app, version);
    return rc;
}

bool reg_live_event_split(reg_live_t *l, const char *app, reg_app_version_t **version, unsigned *percent)
{
    live_release_t *e = l->nreleases ? release_find(l, app, strlen(app)) : NULL;
    if (e == NULL || e->split_v == NULL || !e->rel.split_events)
        return false;
    *version = e->split_v;
    *percent = e->rel.split_percent;
    return true;
}

const reg_release_t *reg_live_release(reg_live_t *l, const char *app)
{
    live_release_t *e = release_find(l, app, strlen(app));
    return e ? &e->rel : NULL;
}

/* The table could not be loaded (why): said once per reason, tried again
 * with backoff (LIVE_RETRY_FIRST_MS doubling to LIVE_RETRY_MAX_MS). */
static void load_failed(reg_live_t *l, const char *why)
{
    if (strcmp(l->unloaded, why) != 0) {
        tine_log(TINE_LOG_ERROR, "registry: cannot load the apps: %s (retrying; not ready until then)", why);
        free(l->unloaded);
        l->unloaded = xstrdup(why);
    }
    l->load_delay_ms = l->load_delay_ms ? l->load_delay_ms * 2 : LIVE_RETRY_FIRST_MS;
    if (l->load_delay_ms > LIVE_RETRY_MAX_MS)
        l->load_delay_ms = LIVE_RETRY_MAX_MS;
    l->load_next_ns = tine_now_ns() + l->load_delay_ms * 1000000;
    retry_arm(l);
}

/* Reloads every app: at start and after the subscription reconnects (an
 * announcement may have been missed while it was down). */
static int live_reload_all(reg_live_t *l, char *err, size_t errlen)
{
    char **names = NULL;
    size_t n = 0;
    int rc = reg_store_check(l->store, err, errlen);
    if (rc == 0 && reg_store_list_apps(l->store, &names, &n) != 0) {
        snprintf(err, errlen, "cannot list the apps in redis");
        rc = TINE_EREDIS;
    }
    if (rc != 0) {
        if (l->unloaded)
            load_failed(l, err);
        return TINE_EREDIS;
    }
    if (l->unloaded) {
        tine_log(TINE_LOG_INFO, "registry: loaded the apps from redis (%zu)", n);
        free(l->unloaded);
        l->unloaded = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char e2[512];
        if (reg_live_reload(l, names[i], e2, sizeof(e2)) != 0) {
            tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", names[i]), "cannot load app %s: %s", names[i], e2);
            rc = rc ? rc : TINE_EREDIS;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Deploy announcements "{app} {version}"; the confirmation of each
 * subscription (at start and after every reconnect) reloads every app. */
static void on_message(void *data, redisReply *r)
{
    reg_live_t *l = data;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        char err[512];
        if (live_reload_all(l, err, sizeof(err)) != 0)
            tine_log(TINE_LOG_WARN, "registry: reload after subscribing to deploys: %s", err);
        return;
    }
    if (strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *payload = r->element[2]->str;
    size_t app_len = strcspn(payload, " ");
    char *app = xstrndup(payload, app_len);
    char err[512];
    if (reg_live_reload(l, app, err, sizeof(err)) != 0)
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", app), "cannot reload app %s: %s", app, err);
    free(app);
}

/* The deploys connection is up (again): subscribes to the deploy channel. */
static void on_sub_connected(void *data)
{
    reg_live_t *l = data;
    if (rds_async_subscribe(l->sub, false, RDS_CHANNEL_DEPLOYS, on_message, l) != 0)
        tine_log(TINE_LOG_WARN, "registry: cannot subscribe to %s", RDS_CHANNEL_DEPLOYS);
}

reg_live_t *reg_live_new(uv_loop_t *loop, const char *redis_url, const char *state_dir, reg_live_change_cb cb,
                         void *cb_data, char *err, size_t errlen)
{
    reg_store_t *store = reg_store_connect(redis_url, err, errlen);
    if (store == NULL)
        return NULL;
    reg_live_t *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->state_dir = xstrdup(state_dir);
    l->store = store;
    l->cb = cb;
    l->cb_data = cb_data;
    reg_app_map_init(&l->apps);
    l->retry = xcalloc(1, sizeof(*l->retry));
    l->retry->l = l;
    uv_timer_init(loop, &l->retry->timer);
    l->unloaded = xstrdup("not loaded yet");
    char why[1024];
    if (live_reload_all(l, why, sizeof why) != 0 && l->unloaded == NULL)
        tine_log(TINE_LOG_WARN, "registry: some apps could not be loaded: %s", why);
    rds_async_config_t acfg = {.name = "registry-deploys", .on_connected = on_sub_connected, .data = l};
    if (rds_async_new(loop, redis_url, &acfg, &l->sub, err, errlen) != 0) {
        reg_live_free(l);
        return NULL;
    }
    return l;
}

/* The retry timer closed: frees it. */
static void on_retry_closed(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, live_retry_t, timer));
}

void reg_live_free(reg_live_t *l)
{
    if (l == NULL)
        return;
    l->closing = 1;
    l->retry->l = NULL;
    uv_close((uv_handle_t *)&l->retry->timer, on_retry_closed);
    for (size_t i = 0; i < l->nfailures; i++) {
        free(l->failures[i].app);
        free(l->failures[i].error);
    }
    free(l->failures);
    free(l->unloaded);
    l->unloaded = NULL;
    rds_async_close(l->sub, false, NULL, NULL); /* its last callback runs in here */
    for (size_t i = 0; i < l->nreleases; i++) {
        live_release_t *e = &l->releases[i];
        for (size_t k = 0; k < e->npreviews; k++)
            reg_app_version_release(e->previews[k]);
        free(e->previews);
        reg_release_dispose(&e->rel);
        free(e->app);
    }
    free(l->releases);
    reg_app_map_dispose(&l->apps);
    reg_store_free(l->store);
    free(l->state_dir);
    free(l);
}

reg_app_version_t *reg_live_get(reg_live_t *l, const char *app, size_t app_len)
{
    return reg_app_map_get(&l->apps, app, app_len);
}

const char *reg_live_unloaded(reg_live_t *l)
{
    return l->unloaded;
}

reg_store_t *reg_live_store(reg_live_t *l)
{
    return l->store;
}

size_t reg_live_count(reg_live_t *l)
{
    return l->apps.len;
}
