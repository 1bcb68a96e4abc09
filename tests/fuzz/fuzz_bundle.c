/* libFuzzer driver: uploaded bundles (tar.gz). Hostile archives must be
 * refused with a message; nothing is written anywhere. */
#include "bundle.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reg_bundle_limits_t limits = {.max_total = 1 << 20, .max_files = 64};
    reg_bundle_t *b = NULL;
    char err[512];
    err[0] = '\0';
    if (reg_bundle_read(data, size, &limits, &b, err, sizeof(err)) == 0)
        reg_bundle_free(b);
    else if (err[0] == '\0')
        abort();
    return 0;
}
