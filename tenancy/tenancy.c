/* The node's copy of every API key and how it is kept current: read whole
 * at start; a key made elsewhere is read when its announcement arrives on
 * RDS_CHANNEL_KEYS, a revoked one is marked at once; and whenever the
 * subscription is made again, or RDS_KEY_KEYS_GEN (bumped by every change)
 * differs from what the last whole read saw, every key is read again. So a
 * revocation reaches a node in the time of a publish, or at worst in
 * TN_KEYS_RECHECK_MS once Redis is reachable, and a request never waits for
 * Redis when its key is known. */
#include "tenancy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TN_SYNC_TIMEOUT_MS 5000
#define TN_AUDIT_WAIT_MS 5000

struct tn_fetch {
    tine_list_t link;
    tn_tenancy_t *t;
    void (*cb)(void *data, int rc); /* NULL once cancelled */
    void *data;
    char id[TN_KEY_ID_LEN + 1];
};

/* ------------------------------------------------------------ the copy */

/* Compares a key id (TN_KEY_ID_LEN bytes) with a key of t->keys. */
static int key_cmp(const void *id, const void *element)
{
    const tn_key_t *const *k = element;
    return memcmp(id, (*k)->id, TN_KEY_ID_LEN);
}

/* The position of `id` in t->keys, or where it would go (*found false). */
static size_t keys_search(const tn_tenancy_t *t, const char *id, bool *found)
{
    return tine_bsearch_pos(id, t->keys, t->nkeys, sizeof(*t->keys), key_cmp, found);
}

bool tn_key_id_valid(const char *s, size_t len)
{
    if (len != TN_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

const tn_key_t *tn_key_find(tn_tenancy_t *t, const char *id, size_t len)
{
    if (t == NULL || !tn_key_id_valid(id, len))
        return NULL;
    bool found;
    size_t i = keys_search(t, id, &found);
    return found ? t->keys[i] : NULL;
}

void tn__keys_put(tn_tenancy_t *t, tn_key_t *k)
{
    bool found;
    size_t i = keys_search(t, k->id, &found);
    if (found) {
        tn__key_free(t->keys[i]);
        t->keys[i] = k;
        return;
    }
    if (t->nkeys == t->capkeys) {
        t->capkeys = t->capkeys ? t->capkeys * 2 : 64;
        t->keys = xrealloc(t->keys, t->capkeys * sizeof(*t->keys));
    }
    memmove(t->keys + i + 1, t->keys + i, (t->nkeys - i) * sizeof(*t->keys));
    t->keys[i] = k;
    t->nkeys++;
}

static void keys_clear(tn_tenancy_t *t)
{
    for (size_t i = 0; i < t->nkeys; i++)
        tn__key_free(t->keys[i]);
    t->nkeys = 0;
}

void tn__keys_replace(tn_tenancy_t *t, const redisReply *all)
{
    keys_clear(t);
    for (size_t i = 0; all && all->type == REDIS_REPLY_ARRAY && i + 1 < all->elements; i += 2) {
        const redisReply *id = all->element[i], *rec = all->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || rec->type != REDIS_REPLY_STRING || !tn_key_id_valid(id->str, id->len))
            continue;
        tn_key_t *k = tn__key_parse(id->str, rec->str, rec->len);
        if (k)
            tn__keys_put(t, k);
    }
}

/* ------------------------------------------------------ following changes */

static void reload_all(tn_tenancy_t *t);

static void on_reload_gen(void *data, redisReply *r)
{
    tn_tenancy_t *t = data;
    t->reload_gen = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

static void on_reload_keys(void *data, redisReply *r)
{
    tn_tenancy_t *t = data;
    t->reloading = false;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        t->gen = -1; /* read again at the next check */
        return;
    }
    tn__keys_replace(t, r);
    t->gen = t->reload_gen;
}

/* Reads every key again (the generation first: a change between the two
 * moves it past what is recorded, and the next check reads again). */
static void reload_all(tn_tenancy_t *t)
{
    if (t->reloading || t->closing)
        return;
    static const char *get[] = {"GET", RDS_KEY_KEYS_GEN};
    static const char *all[] = {"HGETALL", RDS_KEY_KEYS};
    size_t getl[] = {3, strlen(RDS_KEY_KEYS_GEN)}, alll[] = {7, strlen(RDS_KEY_KEYS)};
    if (rds_async_command(t->cmd, on_reload_gen, t, 2, get, getl) != 0)
        return;
    if (rds_async_command(t->cmd, on_reload_keys, t, 2, all, alll) == 0)
        t->reloading = true;
}

static void on_gen_checked(void *data, redisReply *r)
{
    tn_tenancy_t *t = data;
    if (r == NULL)
        return;
    long long gen = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    if (gen != t->gen)
        reload_all(t);
}

static void on_recheck(uv_timer_t *timer)
{
    tn_tenancy_t *t = timer->data;
    static const char *get[] = {"GET", RDS_KEY_KEYS_GEN};
    size_t getl[] = {3, strlen(RDS_KEY_KEYS_GEN)};
    if (!t->reloading && rds_async_connected(t->cmd))
        rds_async_command(t->cmd, on_gen_checked, t, 2, get, getl);
}

static void on_fetched(void *data, redisReply *r)
{
    tn_fetch_t *f = data;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        tn_key_t *k = tn__key_parse(f->id, r->str, r->len);
        if (k)
            tn__keys_put(f->t, k);
    }
    tine_list_remove(&f->link);
    if (f->cb)
        f->cb(f->data, r == NULL || r->type == REDIS_REPLY_ERROR ? TINE_EREDIS : 0);
    free(f);
}

int tn_key_fetch(tn_tenancy_t *t, const char *id, void (*cb)(void *data, int rc), void *data, tn_fetch_t **out)
{
    if (!tn_key_id_valid(id, strlen(id)))
        return TINE_EINVAL;
    tn_fetch_t *f = xcalloc(1, sizeof(*f));
    f->t = t;
    f->cb = cb;
    f->data = data;
    memcpy(f->id, id, TN_KEY_ID_LEN);
    const char *argv[] = {"HGET", RDS_KEY_KEYS, f->id};
    size_t lens[] = {4, strlen(RDS_KEY_KEYS), TN_KEY_ID_LEN};
    tine_list_init(&f->link);
    if (rds_async_command(t->cmd, on_fetched, f, 3, argv, lens) != 0) {
        free(f);
        return TINE_EREDIS;
    }
    tine_list_insert_tail(&t->fetches, &f->link);
    if (out)
        *out = f;
    return 0;
}

void tn_fetch_cancel(tn_fetch_t *f)
{
    if (f)
        f->cb = NULL;
}

int tn_key_fetch_now(tn_tenancy_t *t, const char *id)
{
    char err[256];
    redisReply *r = rds_sync_command(t->sync, err, sizeof(err), "HGET " RDS_KEY_KEYS " %s", id);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_STRING && tn_key_id_valid(id, strlen(id))) {
        tn_key_t *k = tn__key_parse(id, r->str, r->len);
        if (k)
            tn__keys_put(t, k);
    }
    freeReplyObject(r);
    return 0;
}

/* "created ID": read it; "revoked ID": refuse it from now on (the whole
 * read the generation check makes brings the exact record). The
 * confirmation of each subscription reads every key: announcements may
 * have been missed while it was down. */
static void on_change(void *data, redisReply *r)
{
    tn_tenancy_t *t = data;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (t->closing)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        reload_all(t);
        return;
    }
    if (strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *msg = r->element[2]->str;
    const char *sp = strchr(msg, ' ');
    if (sp == NULL || !tn_key_id_valid(sp + 1, strlen(sp + 1)))
        return;
    if (strncmp(msg, "revoked ", 8) == 0) {
        const tn_key_t *k = tn_key_find(t, sp + 1, TN_KEY_ID_LEN);
        if (k && k->revoked_ms == 0)
            ((tn_key_t *)k)->revoked_ms = (int64_t)tine_now_unix_ms();
    } else if (strncmp(msg, "created ", 8) == 0) {
        tn_key_fetch(t, sp + 1, NULL, NULL, NULL);
    }
}

static void on_sub_connected(void *data)
{
    tn_tenancy_t *t = data;
    if (rds_async_subscribe(t->sub, false, RDS_CHANNEL_KEYS, on_change, t) != 0)
        tine_log(TINE_LOG_WARN, "tenancy: cannot subscribe to %s", RDS_CHANNEL_KEYS);
}

/* ---------------------------------------------------------------- life */

tn_tenancy_t *tn_new(uv_loop_t *loop, const char *redis_url, const char *node_id, char *err, size_t errlen)
{
    rds_sync_t *sync = rds_sync_new(redis_url, TN_SYNC_TIMEOUT_MS, err, errlen);
    if (sync == NULL)
        return NULL;
    tn_tenancy_t *t = xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->node_id = xstrdup(node_id ? node_id : "node");
    t->sync = sync;
    tine_list_init(&t->fetches);
    redisReply *gen = rds_sync_command(sync, err, errlen, "GET " RDS_KEY_KEYS_GEN);
    redisReply *all = gen ? rds_sync_command(sync, err, errlen, "HGETALL " RDS_KEY_KEYS) : NULL;
    if (all != NULL) {
        t->gen = gen->type == REDIS_REPLY_STRING ? strtoll(gen->str, NULL, 10) : 0;
        tn__keys_replace(t, all);
    } else {
        /* Redis is away at the start: the node starts all the same (as the
         * registry does); no generation matches -1, so the first recheck
         * once connected loads every key. */
        tine_log(TINE_LOG_WARN, "tenancy: cannot load the API keys: %s (retrying every %d ms)", err,
                 TN_KEYS_RECHECK_MS);
        t->gen = -1;
    }
    freeReplyObject(gen);
    freeReplyObject(all);
    rds_async_config_t ccfg = {.name = "tenancy-command",
                               .when_down = RDS_WAIT_WHEN_DOWN,
                               .max_waiting = 10000,
                               .max_wait_ms = TN_AUDIT_WAIT_MS};
    rds_async_config_t scfg = {.name = "tenancy-keys", .on_connected = on_sub_connected, .data = t};
    if (rds_async_new(loop, redis_url, &ccfg, &t->cmd, err, errlen) != 0 ||
        rds_async_new(loop, redis_url, &scfg, &t->sub, err, errlen) != 0) {
        tn_free(t);
        return NULL;
    }
    t->recheck = xmalloc(sizeof(*t->recheck));
    uv_timer_init(loop, t->recheck);
    t->recheck->data = t;
    uv_timer_start(t->recheck, on_recheck, TN_KEYS_RECHECK_MS, TN_KEYS_RECHECK_MS);
    return t;
}

/* The last of the recheck timer and the command connection to close frees
 * the rest: replies to commands already sent (audit entries) may still come
 * after tn_free returned. */
static void release(tn_tenancy_t *t)
{
    if (--t->handles_open > 0)
        return;
    keys_clear(t);
    free(t->keys);
    free(t->node_id);
    free(t);
}

static void on_cmd_closed(void *data)
{
    release(data);
}

static void on_recheck_closed(uv_handle_t *h)
{
    tn_tenancy_t *t = h->data;
    free(h);
    release(t);
}

void tn_free(tn_tenancy_t *t)
{
    if (t == NULL)
        return;
    t->closing = true;
    t->handles_open = 1;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &t->fetches) {
        tine_list_entry(l, tn_fetch_t, link)->cb = NULL;
    }
    rds_async_close(t->sub, false, NULL, NULL);
    t->sub = NULL;
    rds_sync_free(t->sync);
    t->sync = NULL;
    if (t->recheck) {
        t->handles_open++;
        uv_close((uv_handle_t *)t->recheck, on_recheck_closed);
    }
    if (t->cmd) {
        /* Audit entries already sent are still written (drain). */
        t->handles_open++;
        rds_async_close(t->cmd, true, on_cmd_closed, t);
    }
    release(t);
}
