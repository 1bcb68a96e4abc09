/* libFuzzer driver: the deploy-time scan of a Python handler module for the
 * function it must define (registry/bundle/python_exports.c), fed any bytes;
 * the first byte picks the name looked for. */
#include "bundle_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"handle", "main", "h", "a", "__getattr__"};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
    bool missing = true;
    char defined[64];
    memset(defined, 'x', sizeof(defined));
    reg__python_export_check((const char *)data + 1, size - 1, name, &missing, defined, sizeof(defined));
    /* The list is a NUL-terminated string within its buffer, whatever the verdict. */
    if (memchr(defined, '\0', sizeof(defined)) == NULL)
        abort();
    return 0;
}
