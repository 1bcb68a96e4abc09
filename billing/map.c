/* A small string-keyed hash table (open addressing, linear probing) for the
 * per-function metric series and the usage deltas of a batch. */
#include "billing_internal.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a of the len bytes at s. */
static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void bill__map_init(bill_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void bill__map_dispose(bill_map_t *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == NULL)
            continue;
        free(m->keys[i]);
        if (free_value)
            free_value(m->values[i]);
    }
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

/* The slot of key in m: where it is, or the empty slot it would take (m
 * always has one). */
static size_t find(const bill_map_t *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash(key, len) & mask;; i = (i + 1) & mask)
        if (m->keys[i] == NULL || (m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0))
            return i;
}

/* Doubles the slots of m (16 at first) and moves every entry to its slot
 * there. */
static void grow(bill_map_t *m)
{
    bill_map_t n = {0};
    n.cap = m->cap ? m->cap * 2 : 16;
    n.keys = xcalloc(n.cap, sizeof(*n.keys));
    n.key_lens = xcalloc(n.cap, sizeof(*n.key_lens));
    n.values = xcalloc(n.cap, sizeof(*n.values));
    n.len = m->len;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == NULL)
            continue;
        size_t j = find(&n, m->keys[i], m->key_lens[i]);
        n.keys[j] = m->keys[i];
        n.key_lens[j] = m->key_lens[i];
        n.values[j] = m->values[i];
    }
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    *m = n;
}

void **bill__map_slot(bill_map_t *m, const char *key, size_t len)
{
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    size_t i = find(m, key, len);
    if (m->keys[i] == NULL) {
        m->keys[i] = xstrndup(key, len);
        m->key_lens[i] = len;
        m->values[i] = NULL;
        m->len++;
    }
    return &m->values[i];
}

void *bill__map_get(const bill_map_t *m, const char *key, size_t len)
{
    if (m->cap == 0)
        return NULL;
    size_t i = find(m, key, len);
    return m->keys[i] ? m->values[i] : NULL;
}
