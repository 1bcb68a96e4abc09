/* The binary metadata of INVOKE, RESULT, HOSTCALL and HOSTREPLY frames: writers on tine_buf_t,
 * bounds-checked readers. The format is described in meta.h. */
#include "meta.h"

#include <errno.h>
#include <stdio.h>

static void put_u32(tine_buf_t *b, uint32_t v)
{
    tine_buf_append(b, &v, 4);
}

static void put_tag(tine_buf_t *b, char tag)
{
    tine_buf_append(b, &tag, 1);
}

size_t sbx_meta_begin(tine_buf_t *b, char tag)
{
    put_tag(b, tag);
    size_t at = b->len;
    put_u32(b, 0);
    return at;
}

void sbx_meta_end(tine_buf_t *b, size_t at, uint32_t count)
{
    memcpy(b->data + at, &count, 4);
}

void sbx_meta_key(tine_buf_t *b, const char *key, size_t len)
{
    put_u32(b, (uint32_t)len);
    tine_buf_append(b, key, len);
}

void sbx_meta_str(tine_buf_t *b, const char *s, size_t len)
{
    put_tag(b, SBX_META_STRING);
    put_u32(b, (uint32_t)len);
    tine_buf_append(b, s, len);
}

void sbx_meta_int(tine_buf_t *b, int64_t v)
{
    put_tag(b, SBX_META_INT);
    tine_buf_append(b, &v, 8);
}

void sbx_meta_bool(tine_buf_t *b, bool v)
{
    put_tag(b, v ? SBX_META_TRUE : SBX_META_FALSE);
}

void sbx_meta_kstr(tine_buf_t *b, const char *key, const char *s, size_t len)
{
    sbx_meta_key(b, key, strlen(key));
    sbx_meta_str(b, s, len);
}

/* Lower-cases the n bytes at p (ASCII letters only). */
static void ascii_lower(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] - 'A' + 'a');
}

/* The bit of a (lower-case) header name in a caller's filter of the names
 * written: from its length and its first and last bytes, which tell the
 * usual request headers apart. */
static uint64_t header_bit(const char *key, size_t len)
{
    unsigned h = len ? (unsigned)len * 7u + (unsigned char)key[0] * 3u + (unsigned char)key[len - 1] : 0;
    return 1ull << (h & 63);
}

/* In the object members [first, end) of b (strings only), the offset of the
 * string value of member `key`, or 0 when there is none. */
static size_t find_string_member(const tine_buf_t *b, size_t first, size_t end, uint32_t n, const char *key,
                                 size_t klen)
{
    const char *p = b->data + first, *stop = b->data + end;
    for (uint32_t i = 0; i < n && stop - p >= 4; i++) {
        uint32_t kl, sl;
        memcpy(&kl, p, 4);
        const char *k = p + 4, *v = k + kl;
        if (stop - v < 5 || *v != SBX_META_STRING)
            return 0; /* not reached: only strings are written here */
        memcpy(&sl, v + 1, 4);
        if (kl == klen && memcmp(k, key, klen) == 0)
            return (size_t)(v - b->data);
        p = v + 5 + sl;
    }
    return 0;
}

bool sbx_meta_header(tine_buf_t *b, size_t first, uint32_t n, uint64_t *seen, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    /* The member is written in one go: u32 name length, the name in lower
     * case, the string tag, u32 value length, the value. */
    size_t member = b->len;
    tine_buf_grow(b, 9 + nlen + vlen);
    char *key = b->data + member + 4;
    uint32_t l = (uint32_t)nlen;
    memcpy(key - 4, &l, 4);
    if (nlen)
        memcpy(key, name, nlen);
    ascii_lower(key, nlen);
    uint64_t bit = header_bit(key, nlen);
    size_t v = (*seen & bit) ? find_string_member(b, first, member, n, key, nlen) : 0;
    if (v != 0) {
        /* A repeated name: ", " and the value go at the end of its first
         * value, what follows moves up. */
        uint32_t sl;
        memcpy(&sl, b->data + v + 1, 4);
        size_t end = v + 5 + sl;
        uint32_t joined = sl + 2 + (uint32_t)vlen;
        tine_buf_grow(b, 2 + vlen);
        memmove(b->data + end + 2 + vlen, b->data + end, member - end);
        memcpy(b->data + end, ", ", 2);
        if (vlen)
            memcpy(b->data + end + 2, value, vlen);
        memcpy(b->data + v + 1, &joined, 4);
        b->len = member + 2 + vlen;
        b->data[b->len] = '\0';
        return false;
    }
    *seen |= bit;
    char *p = key + nlen;
    *p = SBX_META_STRING;
    l = (uint32_t)vlen;
    memcpy(p + 1, &l, 4);
    if (vlen)
        memcpy(p + 5, value, vlen);
    b->len = member + 9 + nlen + vlen;
    b->data[b->len] = '\0';
    return true;
}

void sbx_meta_json(tine_buf_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t at = sbx_meta_begin(b, SBX_META_OBJECT);
        const char *k;
        json_t *x;
        uint32_t n = 0;
        json_object_foreach((json_t *)v, k, x) {
            sbx_meta_key(b, k, strlen(k));
            sbx_meta_json(b, x);
            n++;
        }
        sbx_meta_end(b, at, n);
        return;
    }
    case JSON_ARRAY: {
        size_t at = sbx_meta_begin(b, SBX_META_ARRAY);
        for (size_t i = 0; i < json_array_size(v); i++)
            sbx_meta_json(b, json_array_get(v, i));
        sbx_meta_end(b, at, (uint32_t)json_array_size(v));
        return;
    }
    case JSON_STRING:
        sbx_meta_str(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        sbx_meta_int(b, (int64_t)json_integer_value(v));
        return;
    case JSON_REAL: {
        double d = json_real_value(v);
        put_tag(b, SBX_META_DOUBLE);
        tine_buf_append(b, &d, 8);
        return;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        sbx_meta_bool(b, json_is_true(v));
        return;
    default:
        put_tag(b, SBX_META_NULL);
        return;
    }
}

bool sbx_meta_skip(sbx_meta_cur_t *c, int depth)
{
    if (depth > SBX_META_MAX_DEPTH || c->p >= c->end)
        return false;
    char tag = *c->p++;
    uint32_t n;
    switch (tag) {
    case SBX_META_NULL:
    case SBX_META_TRUE:
    case SBX_META_FALSE:
        return true;
    case SBX_META_INT:
    case SBX_META_DOUBLE:
        if (c->end - c->p < 8)
            return false;
        c->p += 8;
        return true;
    case SBX_META_STRING:
        return sbx_meta_bytes(c, &n) != NULL;
    case SBX_META_ARRAY:
    case SBX_META_OBJECT:
        if (!sbx_meta_u32(c, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t kl;
            if (tag == SBX_META_OBJECT && sbx_meta_bytes(c, &kl) == NULL)
                return false;
            if (!sbx_meta_skip(c, depth + 1))
                return false;
        }
        return true;
    default:
        return false;
    }
}

bool sbx_meta_is_object(const char *data, size_t len)
{
    sbx_meta_cur_t c = {data, data + len};
    return len > 0 && *data == SBX_META_OBJECT && sbx_meta_skip(&c, 0) && c.p == c.end;
}

bool sbx_meta_member(const char *data, size_t len, const char *key, size_t klen, sbx_meta_cur_t *val)
{
    sbx_meta_cur_t c = {data + 1, data + len};
    uint32_t n = 0, kl = 0;
    if (!sbx_meta_u32(&c, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k = sbx_meta_bytes(&c, &kl);
        if (k == NULL)
            return false;
        if (kl == klen && memcmp(k, key, klen) == 0) {
            *val = c;
            return true;
        }
        if (!sbx_meta_skip(&c, 1))
            return false;
    }
    return false;
}

const char *sbx_meta_member_str(const char *data, size_t len, const char *key, uint32_t *out_len)
{
    sbx_meta_cur_t v;
    if (!sbx_meta_member(data, len, key, strlen(key), &v) || v.p >= v.end || *v.p != SBX_META_STRING)
        return NULL;
    v.p++;
    return sbx_meta_bytes(&v, out_len);
}

static json_t *to_json(sbx_meta_cur_t *c, int depth)
{
    if (depth > SBX_META_MAX_DEPTH || c->p >= c->end)
        return NULL;
    char tag = *c->p++;
    uint32_t n;
    switch (tag) {
    case SBX_META_NULL:
        return json_null();
    case SBX_META_TRUE:
        return json_true();
    case SBX_META_FALSE:
        return json_false();
    case SBX_META_INT:
    case SBX_META_DOUBLE: {
        if (c->end - c->p < 8)
            return NULL;
        int64_t i;
        double d;
        memcpy(tag == SBX_META_INT ? (void *)&i : (void *)&d, c->p, 8);
        c->p += 8;
        return tag == SBX_META_INT ? json_integer((json_int_t)i) : json_real(d);
    }
    case SBX_META_STRING: {
        const char *s = sbx_meta_bytes(c, &n);
        return s ? tine_json_text(s, n) : NULL;
    }
    case SBX_META_ARRAY:
    case SBX_META_OBJECT: {
        if (!sbx_meta_u32(c, &n))
            return NULL;
        json_t *out = tag == SBX_META_ARRAY ? json_array() : json_object();
        for (uint32_t i = 0; i < n; i++) {
            uint32_t kl = 0;
            const char *k = tag == SBX_META_OBJECT ? sbx_meta_bytes(c, &kl) : NULL;
            json_t *x = (tag == SBX_META_ARRAY || k) ? to_json(c, depth + 1) : NULL;
            if (x == NULL) {
                json_decref(out);
                return NULL;
            }
            if (tag == SBX_META_ARRAY)
                json_array_append_new(out, x);
            else
                json_object_setn_new(out, k, kl, x); /* a key that is not UTF-8 is left out */
        }
        return out;
    }
    default:
        return NULL;
    }
}

json_t *sbx_meta_to_json(const char *data, size_t len, char *err, size_t err_len)
{
    sbx_meta_cur_t c = {data, data + len};
    json_t *v = to_json(&c, 0);
    if (v == NULL || c.p != c.end) {
        json_decref(v);
        snprintf(err, err_len, "bad invocation metadata: malformed at byte %zu of %zu", (size_t)(c.p - data), len);
        return NULL;
    }
    return v;
}

int sbx_result_meta_try_begin(tine_buf_t *b, int status, size_t *at)
{
    uint32_t head[2] = {(uint32_t)status, 0};
    size_t begin = b->len;
    if (tine_buf_try_append(b, head, sizeof head) != 0)
        return -ENOMEM;
    *at = begin;
    return 0;
}

int sbx_result_meta_try_header(tine_buf_t *b, size_t at, const char *name, size_t nlen, const char *value, size_t vlen)
{
    /* One growth for the whole header: a failure leaves b as it was. */
    if (tine_buf_try_grow(b, 8 + nlen + vlen) != 0)
        return -ENOMEM;
    uint32_t l = (uint32_t)nlen;
    tine_buf_append(b, &l, 4);
    size_t key = b->len;
    tine_buf_append(b, name, nlen);
    ascii_lower(b->data + key, nlen);
    l = (uint32_t)vlen;
    tine_buf_append(b, &l, 4);
    tine_buf_append(b, value, vlen);
    uint32_t count;
    memcpy(&count, b->data + at + 4, 4);
    count++;
    memcpy(b->data + at + 4, &count, 4);
    return 0;
}

size_t sbx_result_meta_begin(tine_buf_t *b, int status)
{
    size_t at;
    if (sbx_result_meta_try_begin(b, status, &at) != 0)
        tine_oom(8);
    return at;
}

void sbx_result_meta_header(tine_buf_t *b, size_t at, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (sbx_result_meta_try_header(b, at, name, nlen, value, vlen) != 0)
        tine_oom(8 + nlen + vlen);
}

bool sbx_result_meta_parse(const char *data, size_t len, sbx_result_meta_t *out)
{
    sbx_meta_cur_t c = {data, data + len};
    uint32_t st;
    if (!sbx_meta_u32(&c, &st) || !sbx_meta_u32(&c, &out->nheaders))
        return false;
    out->status = (int)st;
    out->headers = c;
    for (uint32_t i = 0; i < out->nheaders; i++) {
        uint32_t l;
        if (sbx_meta_bytes(&c, &l) == NULL || sbx_meta_bytes(&c, &l) == NULL)
            return false;
    }
    return c.p == c.end;
}

void sbx_result_meta_next(sbx_meta_cur_t *c, const char **name, uint32_t *nlen, const char **value, uint32_t *vlen)
{
    *nlen = *vlen = 0;
    *name = sbx_meta_bytes(c, nlen);
    *value = sbx_meta_bytes(c, vlen);
}

json_t *sbx_result_meta_headers_json(const sbx_result_meta_t *m)
{
    json_t *o = json_object();
    sbx_meta_cur_t c = m->headers;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const char *n, *v;
        uint32_t nl, vl;
        sbx_result_meta_next(&c, &n, &nl, &v, &vl);
        json_object_setn_new(o, n, nl, tine_json_text(v, vl));
    }
    return o;
}
