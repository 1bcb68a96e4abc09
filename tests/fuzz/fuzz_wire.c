/* libFuzzer driver: wire frames as tined reads them from a sandbox. The
 * input is written to a pipe and read back frame by frame until EOF or the
 * first refused header. */
#include "tine_common.h"
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 60000) /* stays within one pipe buffer: no reader thread needed */
        return 0;
    int p[2];
    if (pipe(p) != 0)
        return 0;
    if (size && write(p[1], data, size) != (ssize_t)size)
        abort();
    close(p[1]);
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        sbx_frame_hdr_t h;
        int r = sbx_frame_read_into(p[0], &h, &buf, &cap, 65536);
        if (r != 0 || h.type == 0)
            break;
        if (sbx_frame_check(&h, 65536) != 0 || h.meta_len > h.len)
            abort(); /* a frame handed out must have passed the check */
    }
    free(buf);
    close(p[0]);
    return 0;
}
