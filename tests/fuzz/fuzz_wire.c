/* libFuzzer driver: wire frames as a sandbox reads them (the buffered
 * reader) and their binary metadata as both sides parse it. The input is
 * written to a pipe and read back frame by frame until EOF or the first
 * refused header; each payload goes through the INVOKE and RESULT metadata
 * readers, the HOSTCALL/HOSTREPLY object checks and member lookups (as
 * tined and the Lua host read them), and a RESULT's headers through the
 * writers again. */
#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether two names are equal but for ASCII case. */
static int same_name(const char *a, uint32_t al, const char *b, uint32_t bl)
{
    if (al != bl)
        return 0;
    for (uint32_t i = 0; i < al; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* Checks the request "headers" object q (members from offset first) against
 * the headers it was written from, the slow way: one member per name, in
 * lower case, at the name's first place, its values joined with ", ". */
static void check_joined(const tine_buf_t *q, size_t first, uint32_t nq, const char **n, const uint32_t *nl,
                         const char **v, const uint32_t *vl, uint32_t count)
{
    sbx_meta_cur_t c = {q->data + first, q->data + q->len};
    uint32_t members = 0;
    tine_buf_t want;
    tine_buf_init(&want);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t j = 0;
        while (j < i && !same_name(n[j], nl[j], n[i], nl[i]))
            j++;
        if (j < i)
            continue; /* joined into an earlier member */
        want.len = 0;
        for (j = i; j < count; j++) {
            if (!same_name(n[j], nl[j], n[i], nl[i]))
                continue;
            if (j > i)
                tine_buf_append(&want, ", ", 2);
            tine_buf_append(&want, v[j], vl[j]);
        }
        uint32_t kl, sl;
        const char *k = sbx_meta_bytes(&c, &kl);
        if (k == NULL || c.p >= c.end || *c.p++ != SBX_META_STRING)
            abort();
        const char *s = sbx_meta_bytes(&c, &sl);
        if (s == NULL || kl != nl[i] || sl != want.len || (sl && memcmp(s, want.data, sl) != 0))
            abort();
        for (uint32_t x = 0; x < kl; x++)
            if (k[x] != lower(n[i][x]))
                abort();
        members++;
    }
    if (members != nq || c.p != c.end)
        abort();
    tine_buf_dispose(&want);
}

/* Writes the headers of a parsed RESULT again with the writers (meta.c):
 * as RESULT metadata, which must read back as the same headers with names
 * in lower case, and as a request's "headers" object, checked by
 * check_joined. */
static void rewrite_result(const sbx_result_meta_t *m)
{
    tine_buf_t r, q;
    tine_buf_init(&r);
    tine_buf_init(&q);
    size_t at = sbx_result_meta_begin(&r, m->status);
    size_t obj = sbx_meta_begin(&q, SBX_META_OBJECT), first = q.len;
    uint32_t nq = 0, count = m->nheaders;
    uint64_t seen = 0;
    const char **n = calloc(count + 1, sizeof *n), **v = calloc(count + 1, sizeof *v);
    uint32_t *nl = calloc(count + 1, sizeof *nl), *vl = calloc(count + 1, sizeof *vl);
    sbx_meta_cur_t c = m->headers;
    for (uint32_t i = 0; i < count; i++) {
        sbx_result_meta_next(&c, &n[i], &nl[i], &v[i], &vl[i]);
        sbx_result_meta_header(&r, at, n[i], nl[i], v[i], vl[i]);
        nq += sbx_meta_header(&q, first, nq, &seen, n[i], nl[i], v[i], vl[i]);
    }
    sbx_meta_end(&q, obj, nq);
    sbx_result_meta_t back;
    if (!sbx_result_meta_parse(r.data, r.len, &back) || back.status != m->status || back.nheaders != count)
        abort();
    sbx_meta_cur_t b = back.headers;
    for (uint32_t i = 0; i < count; i++) {
        const char *n2, *v2;
        uint32_t nl2, vl2;
        sbx_result_meta_next(&b, &n2, &nl2, &v2, &vl2);
        if (nl2 != nl[i] || vl2 != vl[i] || memcmp(v2, v[i], vl2) != 0)
            abort();
        for (uint32_t k = 0; k < nl2; k++)
            if (n2[k] != lower(n[i][k]))
                abort();
    }
    check_joined(&q, first, nq, n, nl, v, vl, count);
    free(n);
    free(v);
    free(nl);
    free(vl);
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
        json_t *j = sbx_meta_to_json(payload, h.meta_len, err, sizeof err);
        if (sbx_meta_is_object(payload, h.meta_len)) {
            /* A checked object: it reads as JSON, and its members as the
             * host-call readers look them up. */
            if (!json_is_object(j))
                abort();
            sbx_meta_cur_t v;
            bool has_op = sbx_meta_member(payload, h.meta_len, "op", 2, &v);
            if (has_op != (json_object_get(j, "op") != NULL) || (has_op && v.p >= v.end))
                abort();
            uint32_t ol = 0;
            const char *op = sbx_meta_member_str(payload, h.meta_len, "op", &ol);
            if (op != NULL && (op < payload || op + ol > payload + h.meta_len))
                abort();
        }
        json_decref(j);
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
