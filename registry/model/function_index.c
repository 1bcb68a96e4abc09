/* The index of a manifest's function names: an open-addressing hash table
 * with linear probing, built once when the manifest is parsed and read-only
 * after, so every lookup by name (the gateway's admin calls, events' targets,
 * tine.invoke, the manifest's own routes and triggers) costs one hash.
 *
 * The table holds at least twice as many slots as functions (a power of
 * two), so a probe sequence stays short; a slot holds the function's index
 * plus one, 0 marking it empty. Names are not copied: they are the
 * manifest's own. */
#include "model_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the name's bytes. */
static uint64_t name_hash(const char *name, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return h;
}

int reg__manifest_index_functions(reg_manifest_t *m)
{
    size_t slots = 4;
    while (slots < m->functions_len * 2)
        slots *= 2;
    uint32_t *t = calloc(slots, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    size_t mask = slots - 1;
    for (size_t i = 0; i < m->functions_len; i++) {
        const char *name = m->functions[i].name;
        size_t s = (size_t)name_hash(name, strlen(name)) & mask;
        while (t[s] != 0)
            s = (s + 1) & mask;
        t[s] = (uint32_t)i + 1;
    }
    free(m->_fn_slots);
    m->_fn_slots = t;
    m->_fn_mask = mask;
    return 0;
}

bool reg_manifest_function_index(const reg_manifest_t *m, const char *name, size_t len, size_t *index)
{
    if (m == NULL || m->_fn_slots == NULL || name == NULL)
        return false;
    size_t s = (size_t)name_hash(name, len) & m->_fn_mask;
    for (uint32_t slot; (slot = m->_fn_slots[s]) != 0; s = (s + 1) & m->_fn_mask) {
        const char *f = m->functions[slot - 1].name;
        if (strnlen(f, len + 1) == len && memcmp(f, name, len) == 0) {
            *index = slot - 1;
            return true;
        }
    }
    return false;
}
