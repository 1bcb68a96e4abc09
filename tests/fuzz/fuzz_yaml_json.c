/* libFuzzer driver: tine test's YAML cases (cli_yaml_load). Any input gives
 * a value or a message naming the file. */
#include "cli.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    json_t *j = cli_yaml_load("t.yaml", (const char *)data, size, err, sizeof err);
    if (j == NULL && strncmp(err, "t.yaml:", 7) != 0)
        abort();
    json_decref(j);
    return 0;
}
