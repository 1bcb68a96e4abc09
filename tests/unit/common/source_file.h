/* Reads a file of the source tree in a unit test: docs and headers that a
 * test checks the code against. */
#ifndef TINE_TEST_SOURCE_FILE_H
#define TINE_TEST_SOURCE_FILE_H

#include <stdlib.h>

#include "tine_common.h"

/* The whole file at TINE_SOURCE_DIR/rel, NUL-terminated (free it); fails
 * the test when it cannot be read. */
static char *read_source(const char *rel)
{
    char *path = xasprintf("%s/%s", TINE_SOURCE_DIR, rel);
    char *data = NULL;
    size_t len = 0;
    if (tine_read_file(path, &data, &len) != 0)
        fail_msg("cannot read %s", path);
    free(path);
    return data;
}

#endif
