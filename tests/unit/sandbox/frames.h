/* Test helpers shared by the sandbox unit tests: INVOKE frames with binary
 * metadata (sandbox/meta.h), frame metadata read back as JSON, and the
 * socket pair a forked sandbox serves on. Include after <cmocka.h>. */
#ifndef TINE_TEST_SANDBOX_FRAMES_H
#define TINE_TEST_SANDBOX_FRAMES_H

#include "meta.h"
#include "tine_common.h"
#include "wire.h"

#include <jansson.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The frame's metadata as JSON: RESULT's binary status and headers as
 * {"status":N,"headers":{...}}, INVOKE's and HOSTCALL's binary object as
 * that object (sandbox/meta.h), the others' JSON as is. */
static inline json_t *meta_json(uint8_t type, const char *p, size_t len)
{
    json_t *m;
    if (type == SBX_MSG_RESULT) {
        sbx_result_meta_t r;
        if (!sbx_result_meta_parse(p, len, &r))
            fail_msg("malformed RESULT meta of %zu bytes", len);
        m = json_pack("{s:i, s:o}", "status", r.status, "headers", sbx_result_meta_headers_json(&r));
    } else if (type == SBX_MSG_HOSTCALL || type == SBX_MSG_INVOKE || type == SBX_MSG_HOSTREPLY) {
        char err[128];
        m = sbx_meta_to_json(p, len, err, sizeof err);
        if (m == NULL)
            fail_msg("frame type %d: %s", type, err);
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

/* Writes a HOSTREPLY whose metadata is the binary form of the JSON text
 * `meta`, or the bytes after "raw:" as they are. */
static inline void write_hostreply(int fd, uint64_t id, const char *meta, const char *body, size_t body_len)
{
    if (strncmp(meta, "raw:", 4) == 0) {
        assert_int_equal(sbx_frame_write(fd, SBX_MSG_HOSTREPLY, id, meta + 4, strlen(meta + 4), body, body_len), 0);
        return;
    }
    json_t *j = json_loads(meta, JSON_DECODE_ANY, NULL);
    if (j == NULL)
        fail_msg("bad test reply '%s'", meta);
    tine_buf_t b;
    tine_buf_init(&b);
    sbx_meta_json(&b, j);
    json_decref(j);
    assert_int_equal(sbx_frame_write(fd, SBX_MSG_HOSTREPLY, id, b.data, b.len, body, body_len), 0);
    tine_buf_dispose(&b);
}

/* Forks a process to play a sandbox on one end of a new socket pair.
 * Returns 0 in the child, which keeps sv[1], and the child's pid in the
 * parent, which keeps sv[0] with a 20 s receive timeout (a silent child
 * fails the test instead of hanging it). Output buffered before the fork
 * is flushed first, so the child does not write it again. */
static inline pid_t fork_with_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    close(pid == 0 ? sv[0] : sv[1]);
    return pid;
}

#endif
