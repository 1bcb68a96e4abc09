/* Test helpers shared by the sandbox unit tests: INVOKE frames with binary
 * metadata (sandbox/meta.h) and frame metadata read back as JSON. Include
 * after <cmocka.h>. */
#ifndef TINE_TEST_SANDBOX_FRAMES_H
#define TINE_TEST_SANDBOX_FRAMES_H

#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <jansson.h>

/* The frame's metadata as JSON: RESULT's binary status and headers as
 * {"status":N,"headers":{...}} (sandbox/meta.h), the others' JSON as is. */
static inline json_t *meta_json(uint8_t type, const char *p, size_t len)
{
    json_t *m;
    if (type == SBX_MSG_RESULT) {
        sbx_result_meta_t r;
        if (!sbx_result_meta_parse(p, len, &r))
            fail_msg("malformed RESULT meta of %zu bytes", len);
        m = json_pack("{s:i, s:o}", "status", r.status, "headers", sbx_result_meta_headers_json(&r));
    } else {
        json_error_t err;
        m = json_loadb(p, len, 0, &err);
        if (m == NULL)
            fail_msg("frame type %d: bad meta '%.*s': %s", type, (int)len, p, err.text);
    }
    return m;
}

/* Writes an INVOKE whose metadata is the binary form of `meta`. */
static inline void write_invoke(int fd, uint64_t id, const json_t *meta, const char *body, size_t body_len)
{
    tine_buf_t b;
    tine_buf_init(&b);
    sbx_meta_json(&b, meta);
    assert_int_equal(sbx_frame_write(fd, SBX_MSG_INVOKE, id, b.data, b.len, body, body_len), 0);
    tine_buf_dispose(&b);
}

#endif
