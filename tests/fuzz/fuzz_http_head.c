/* libFuzzer driver: the raw HTTP/1 request head the gateway reads back after
 * h2o refused a body by its Content-Length (gateway/intake.c). */
#include "gateway_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the method the head must start with. */
    static const char *const methods[] = {"POST", "PUT", "GET", "PATCH"};
    if (size == 0)
        return 0;
    const char *m = methods[data[0] % 4];
    /* A copy of exactly the input: reads past it are caught. */
    char *b = malloc(size - 1 ? size - 1 : 1);
    if (b == NULL)
        return 0;
    memcpy(b, data + 1, size - 1);
    gw_head_t h;
    if (gw__read_head(m, strlen(m), b, size - 1, &h) && (h.head_len == 0 || h.head_len > size - 1))
        abort();
    free(b);
    return 0;
}
