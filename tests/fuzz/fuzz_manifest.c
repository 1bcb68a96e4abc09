/* libFuzzer driver: the manifest parser (YAML and JSON) must reject any input
 * with a message, never crash, leak or read out of bounds. The first byte
 * picks the syntax. */
#include "app_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *name = (data[0] & 1) ? "tine.json" : "tine.yaml";
    reg_manifest_t *m = NULL;
    char err[512];
    if (reg_manifest_parse(name, (const char *)data + 1, size - 1, &m, err, sizeof(err)) == 0)
        reg_manifest_free(m);
    else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
        abort(); /* a refusal must say why */
    return 0;
}
