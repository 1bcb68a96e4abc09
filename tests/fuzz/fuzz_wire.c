/* libFuzzer driver: wire frames as a sandbox reads them (the buffered
 * reader) and their binary metadata as both sides parse it. The input is
 * written to a pipe and read back frame by frame until EOF or the first
 * refused header; each payload goes through the INVOKE and RESULT metadata
 * readers. */
#include "meta.h"
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
    sbx_reader_t rd;
    sbx_reader_init(&rd, p[0]);
    for (;;) {
        sbx_frame_hdr_t h;
        const char *payload;
        int r = sbx_reader_next(&rd, &h, &payload, 65536);
        if (r != 0 || h.type == 0)
            break;
        if (sbx_frame_check(&h, 65536) != 0 || h.meta_len > h.len)
            abort(); /* a frame handed out must have passed the check */
        char err[128];
        json_decref(sbx_meta_to_json(payload, h.meta_len, err, sizeof err));
        sbx_result_meta_t m;
        if (sbx_result_meta_parse(payload, h.meta_len, &m))
            json_decref(sbx_result_meta_headers_json(&m));
    }
    sbx_reader_free(&rd);
    close(p[0]);
    return 0;
}
