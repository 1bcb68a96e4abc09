/* libFuzzer driver: route patterns and request paths. The input is split on
 * newlines: every line but the last is a route pattern added to a table, the
 * last one a path matched against it. */
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
    reg_route_table_t *t = reg_route_table_new();
    char err[256];
    char *line = s, *nl;
    int n = 0;
    while ((nl = strchr(line, '\n')) != NULL && n < 64) {
        *nl = '\0';
        if (reg_route_path_validate(line, err, sizeof(err)) == 0)
            (void)reg_route_table_add(t, (n & 1) ? "GET" : "ANY", line, line, err, sizeof(err));
        line = nl + 1;
        n++;
    }
    reg_route_param_t params[REG_ROUTE_MAX_PARAMS];
    size_t nparams = 0;
    int path_matched = 0;
    (void)reg_route_table_match(t, "GET", 3, line, strlen(line), params, &nparams, &path_matched);
    if (nparams > REG_ROUTE_MAX_PARAMS)
        abort();
    reg_route_table_free(t);
    free(s);
    return 0;
}
