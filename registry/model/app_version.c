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
        reg_app_version_release(m->v[i]);
    free(m->v);
    reg_app_map_init(m);
}

/* Compares app name `a` (alen bytes) with the NUL-terminated `b` in the
 * map's order: bytewise, a prefix first. */
static int name_cmp(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Where `app` is in the map (*found) or would go. */
static size_t map_search(const reg_app_map_t *m, const char *app, size_t app_len, bool *found)
{
    size_t lo = 0, hi = m->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(app, app_len, m->v[mid]->app);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

reg_app_version_t *reg_app_map_get(const reg_app_map_t *m, const char *app, size_t app_len)
{
    bool found;
    size_t i = map_search(m, app, app_len, &found);
    return found ? m->v[i] : NULL;
}

reg_app_version_t *reg_app_map_put(reg_app_map_t *m, reg_app_version_t *v)
{
    bool found;
    size_t i = map_search(m, v->app, strlen(v->app), &found);
    if (found) {
        reg_app_version_t *old = m->v[i];
        m->v[i] = v;
        return old;
    }
    if (m->len == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(&m->v[i + 1], &m->v[i], (m->len - i) * sizeof(*m->v));
    m->v[i] = v;
    m->len++;
    return NULL;
}

reg_app_version_t *reg_app_map_take(reg_app_map_t *m, const char *app, size_t app_len)
{
    bool found;
    size_t i = map_search(m, app, app_len, &found);
    if (!found)
        return NULL;
    reg_app_version_t *old = m->v[i];
    memmove(&m->v[i], &m->v[i + 1], (m->len - i - 1) * sizeof(*m->v));
    m->len--;
    return old;
}
