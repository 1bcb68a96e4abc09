/* Loaded app versions, immutable and reference counted, and the map of them
 * by app name that the live table (store/live.c) and the events module keep. */
#include "app_model.h"
#include "tine_common.h"

#include <stdlib.h>
#include <string.h>

int reg_app_version_new(const char *app, uint64_t version, reg_manifest_t *manifest, char *bundle_dir,
                        reg_app_version_t **out, char *err, size_t errlen)
{
    reg_app_version_t *v = xcalloc(1, sizeof(*v));
    v->refcnt = 1;
    v->app = xstrdup(app);
    v->version = version;
    v->manifest = manifest;
    v->bundle_dir = bundle_dir;
    v->routes = reg_route_table_new();
    for (size_t i = 0; i < manifest->routes_len; i++) {
        reg_route_t *r = &manifest->routes[i];
        int rc = reg_route_table_add(v->routes, r->method, r->path, r, err, errlen);
        if (rc != 0) {
            reg_app_version_release(v);
            return rc;
        }
    }
    *out = v;
    return 0;
}

void reg_app_version_retain(reg_app_version_t *v)
{
    v->refcnt++;
}

void reg_app_version_release(reg_app_version_t *v)
{
    if (v == NULL || --v->refcnt > 0)
        return;
    free(v->app);
    reg_manifest_free(v->manifest);
    free(v->bundle_dir);
    reg_route_table_free(v->routes);
    free(v);
}

/* ------------------------------------------------------------ the map */

void reg_app_map_init(reg_app_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void reg_app_map_dispose(reg_app_map_t *m)
{
    for (size_t i = 0; i < m->len; i++)
        reg_app_version_release(m->entries[i].v);
    free(m->entries);
    reg_app_map_init(m);
}

/* An app name being looked up. */
typedef struct {
    const char *app;
    size_t len;
} app_key_t;

/* Compares a name (app_key_t) with an entry's in the map's order. */
static int entry_cmp(const void *key, const void *element)
{
    const app_key_t *a = key;
    const reg_app_map_entry_t *e = element;
    if (a->len != e->app_len)
        return a->len < e->app_len ? -1 : 1;
    return memcmp(a->app, e->v->app, a->len);
}

/* Where `app` is in the map (*found) or would go. */
static size_t map_search(const reg_app_map_t *m, const char *app, size_t app_len, bool *found)
{
    app_key_t key = {app, app_len};
    return tine_bsearch_pos(&key, m->entries, m->len, sizeof(*m->entries), entry_cmp, found);
}

reg_app_version_t *reg_app_map_get(const reg_app_map_t *m, const char *app, size_t app_len)
{
    bool found;
    size_t i = map_search(m, app, app_len, &found);
    return found ? m->entries[i].v : NULL;
}

reg_app_version_t *reg_app_map_put(reg_app_map_t *m, reg_app_version_t *v)
{
    size_t len = strlen(v->app);
    bool found;
    size_t i = map_search(m, v->app, len, &found);
    if (found) {
        reg_app_version_t *old = m->entries[i].v;
        m->entries[i].v = v;
        return old;
    }
    if (m->len == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->entries = xrealloc(m->entries, m->cap * sizeof(*m->entries));
    }
    memmove(&m->entries[i + 1], &m->entries[i], (m->len - i) * sizeof(*m->entries));
    m->entries[i] = (reg_app_map_entry_t){v, len};
    m->len++;
    return NULL;
}

reg_app_version_t *reg_app_map_take(reg_app_map_t *m, const char *app, size_t app_len)
{
    bool found;
    size_t i = map_search(m, app, app_len, &found);
    if (!found)
        return NULL;
    reg_app_version_t *old = m->entries[i].v;
    memmove(&m->entries[i], &m->entries[i + 1], (m->len - i - 1) * sizeof(*m->entries));
    m->len--;
    return old;
}
