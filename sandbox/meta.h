/* Binary metadata of INVOKE, RESULT, HOSTCALL and HOSTREPLY frames (see wire.h): what crosses
 * between tined and a sandbox on every invocation, so it is written and read
 * without building a JSON text or a jansson tree on either side.
 *
 * INVOKE metadata is one tagged value, always an object:
 *   'N' null | 'T' true | 'F' false
 *   'I' int64 | 'D' double                       (8 bytes, host order)
 *   'S' u32 length, bytes                        (a string, any bytes)
 *   'A' u32 count, count values                  (an array)
 *   'O' u32 count, count × (u32 key length, key bytes, value)   (an object)
 * It holds the same members the request had as JSON (kind, method, path,
 * params, query, headers, event, ...), plus "ctx".
 *
 * HOSTCALL metadata is an object too: "op" (a string: "kv.get", "invoke",
 * ...) and the call's arguments as members; HOSTREPLY metadata is an
 * object of the answer's members, or {"error": message}.
 *
 * RESULT metadata is fixed: u32 status, u32 header count, then per header
 * u32 name length, name, u32 value length, value. Names are lower case.
 *
 * All lengths are u32 in host byte order (both ends are on one machine).
 * Readers check every length against the bytes they were given. */
#ifndef TINE_SANDBOX_META_H
#define TINE_SANDBOX_META_H

#include "tine_common.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    SBX_META_NULL = 'N',
    SBX_META_TRUE = 'T',
    SBX_META_FALSE = 'F',
    SBX_META_INT = 'I',
    SBX_META_DOUBLE = 'D',
    SBX_META_STRING = 'S',
    SBX_META_ARRAY = 'A',
    SBX_META_OBJECT = 'O',
};

#define SBX_META_MAX_DEPTH 128 /* nesting a reader accepts */

/* ---- writing (into a tine_buf_t) ---- */

/* Starts an object or array whose count is not known yet; returns where the
 * count goes, for sbx_meta_end. */
size_t sbx_meta_begin(tine_buf_t *b, char tag);
void sbx_meta_end(tine_buf_t *b, size_t at, uint32_t count);
/* An object key, then exactly one value must follow. */
void sbx_meta_key(tine_buf_t *b, const char *key, size_t len);
void sbx_meta_str(tine_buf_t *b, const char *s, size_t len);
void sbx_meta_int(tine_buf_t *b, int64_t v);
void sbx_meta_bool(tine_buf_t *b, bool v);
/* A string member: key then string. */
void sbx_meta_kstr(tine_buf_t *b, const char *key, const char *s, size_t len);
/* A header of a request's "headers" object, whose members (n of them, all
 * strings) begin at offset `first` of b: the name in lower case and the
 * value; when a member has that name already, ", " and the value are
 * appended to its value instead (repeated fields, RFC 9110 5.3). `seen` is
 * the caller's filter of the names written, 0 for a new object: a name it
 * rules out is added without looking through the members. Returns true
 * when it added a member, false when it joined one. */
bool sbx_meta_header(tine_buf_t *b, size_t first, uint32_t n, uint64_t *seen, const char *name, size_t nlen,
                     const char *value, size_t vlen);
/* Any JSON value (objects' null members are kept). */
void sbx_meta_json(tine_buf_t *b, const json_t *v);

/* ---- reading ---- */

typedef struct {
    const char *p;
    const char *end;
} sbx_meta_cur_t;

static inline bool sbx_meta_u32(sbx_meta_cur_t *c, uint32_t *out)
{
    if (c->end - c->p < 4)
        return false;
    memcpy(out, c->p, 4);
    c->p += 4;
    return true;
}

/* Reads a u32 length and returns that many bytes (NULL when short). */
static inline const char *sbx_meta_bytes(sbx_meta_cur_t *c, uint32_t *len)
{
    if (!sbx_meta_u32(c, len) || (size_t)(c->end - c->p) < *len)
        return NULL;
    const char *s = c->p;
    c->p += *len;
    return s;
}

/* Steps over one value. Returns false when it is malformed or deeper than
 * SBX_META_MAX_DEPTH. */
bool sbx_meta_skip(sbx_meta_cur_t *c, int depth);

/* The value of member `key` of an object whose encoding (len bytes at
 * data) was checked already (sbx_meta_skip): a cursor at its tag, or
 * false when there is no such member. */
bool sbx_meta_member(const char *data, size_t len, const char *key, size_t klen, sbx_meta_cur_t *val);
/* The bytes of string member `key` of a checked object, or NULL when it is
 * missing or not a string. */
const char *sbx_meta_member_str(const char *data, size_t len, const char *key, uint32_t *out_len);
/* True when the len bytes at data are exactly one well-formed object. */
bool sbx_meta_is_object(const char *data, size_t len);

/* The JSON value of an encoded value (objects keep null members), or NULL
 * with a message in err when it is malformed. */
json_t *sbx_meta_to_json(const char *data, size_t len, char *err, size_t err_len);

/* ---- RESULT metadata ----
 * The one writer of RESULT metadata, for the Lua host (try_*: out of memory
 * is -ENOMEM, b unchanged) and the exec runner and tests (aborting). */

/* Appends the status and a header count of 0 and sets *at to where they
 * begin, for sbx_result_meta_try_header. Returns 0 or -ENOMEM. */
int sbx_result_meta_try_begin(tine_buf_t *b, int status, size_t *at);
/* Appends one header, its name in lower case, to the RESULT metadata that
 * begins at `at`, and counts it there. Returns 0 or -ENOMEM. */
int sbx_result_meta_try_header(tine_buf_t *b, size_t at, const char *name, size_t nlen, const char *value, size_t vlen);
/* The aborting forms: begin returns `at`. */
size_t sbx_result_meta_begin(tine_buf_t *b, int status);
void sbx_result_meta_header(tine_buf_t *b, size_t at, const char *name, size_t nlen, const char *value, size_t vlen);

typedef struct {
    int status;
    uint32_t nheaders;
    sbx_meta_cur_t headers; /* at the first header */
} sbx_result_meta_t;

/* Checks RESULT metadata (every header within bounds). Returns false when it
 * is malformed. */
bool sbx_result_meta_parse(const char *data, size_t len, sbx_result_meta_t *out);

/* The next header of a parsed RESULT meta (call nheaders times). */
void sbx_result_meta_next(sbx_meta_cur_t *c, const char **name, uint32_t *nlen, const char **value, uint32_t *vlen);

/* The headers as a JSON object {name: value} (repeated names: the last). */
json_t *sbx_result_meta_headers_json(const sbx_result_meta_t *m);

#endif
