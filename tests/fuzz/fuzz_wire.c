/* libFuzzer driver: wire frames as a sandbox reads them (the buffered
 * reader) and their binary metadata as both sides parse it. The input is
 * written to a pipe and read back frame by frame until EOF or the first
 * refused header; each payload goes through the INVOKE and RESULT metadata
 * readers, and a RESULT's headers through the writers again. */
#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes the headers of a parsed RESULT again with the writers (meta.c):
 * as RESULT metadata, which must read back as the same headers with names
 * in lower case, and as a request's "headers" object, which must decode
 * with at most as many members. */
static void rewrite_result(const sbx_result_meta_t *m)
{
    tine_buf_t r, q;
    tine_buf_init(&r);
    tine_buf_init(&q);
    size_t at = sbx_result_meta_begin(&r, m->status);
    size_t obj = sbx_meta_begin(&q, SBX_META_OBJECT), first = q.len;
    uint32_t nq = 0;
    sbx_meta_cur_t c = m->headers;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const char *n, *v;
        uint32_t nl, vl;
        sbx_result_meta_next(&c, &n, &nl, &v, &vl);
        sbx_result_meta_header(&r, at, n, nl, v, vl);
        nq += sbx_meta_header(&q, first, nq, n, nl, v, vl);
    }
    sbx_meta_end(&q, obj, nq);
    sbx_result_meta_t back;
    if (!sbx_result_meta_parse(r.data, r.len, &back) || back.status != m->status || back.nheaders != m->nheaders)
        abort();
    sbx_meta_cur_t a = m->headers, b = back.headers;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const char *n1, *v1, *n2, *v2;
        uint32_t nl1, vl1, nl2, vl2;
        sbx_result_meta_next(&a, &n1, &nl1, &v1, &vl1);
        sbx_result_meta_next(&b, &n2, &nl2, &v2, &vl2);
        if (nl1 != nl2 || vl1 != vl2 || memcmp(v1, v2, vl1) != 0)
            abort();
        for (uint32_t k = 0; k < nl1; k++)
            if (n2[k] != ((n1[k] >= 'A' && n1[k] <= 'Z') ? n1[k] - 'A' + 'a' : n1[k]))
                abort();
    }
    sbx_meta_cur_t qc = {q.data, q.data + q.len};
    if (nq > m->nheaders || !sbx_meta_skip(&qc, 0) || qc.p != qc.end)
        abort();
    tine_buf_dispose(&r);
    tine_buf_dispose(&q);
}

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
        if (sbx_result_meta_parse(payload, h.meta_len, &m)) {
            json_decref(sbx_result_meta_headers_json(&m));
            rewrite_result(&m);
        }
    }
    sbx_reader_free(&rd);
    close(p[0]);
    return 0;
}
