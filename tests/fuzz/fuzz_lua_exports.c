/* libFuzzer driver: the deploy-time scan of a Lua handler module for its
 * export (registry/bundle/lua_exports.c), fed any bytes; the first byte picks the
 * export looked for. */
#include "bundle_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"statz", "get", "M", "a", "list_items"};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
    bool missing = true;
    char exports[64];
    memset(exports, 'x', sizeof(exports));
    if (reg__lua_export_check((const char *)data + 1, size - 1, name, &missing, exports, sizeof(exports)) != 0)
        return 0;
    /* The list is a NUL-terminated string within its buffer, set (maybe
     * empty) whatever the verdict. */
    if (memchr(exports, '\0', sizeof(exports)) == NULL)
        abort();
    return 0;
}
