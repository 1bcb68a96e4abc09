/* libFuzzer driver: cron expressions and durations from manifests. */
#include "app_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char err[256];
    err[0] = '\0';
    if (reg_cron_validate(s, err, sizeof(err)) != 0 && err[0] == '\0')
        abort();
    uint64_t ms;
    (void)reg_parse_duration_ms(s, &ms);
    free(s);
    return 0;
}
