/* Requests built for inv_call_request: members written straight into the
 * call's INVOKE frame in the binary form the sandbox reads (sandbox/meta.h
 * owns that form; this file only counts members and places them), so the
 * frame is written once and handed to the call without a copy. */
#include "invoker_internal.h"
#include "meta.h"
#include "trace.h"

#include <assert.h>
#include <string.h>

void inv_request_init(inv_request_t *rq, const char *trigger)
{
    memset(rq, 0, sizeof(*rq));
    tine_buf_init(&rq->_frame);
    /* Room for the frame header (written last: its lengths are not known
     * yet), then the request object, its count fixed at the end. */
    sbx_frame_hdr_t h = {0};
    tine_buf_append(&rq->_frame, &h, sizeof h);
    rq->_count_at = sbx_meta_begin(&rq->_frame, SBX_META_OBJECT);
    rq->_trigger = trigger;
}

void inv_request_trace(inv_request_t *rq, const char *trace, const char *parent)
{
    size_t pl = strlen(parent);
    if (!tine_trace_hex_ok(trace, TINE_TRACE_ID_LEN) || pl > TINE_TRACE_ID_LEN || (pl && !tine_trace_hex_ok(parent, pl)))
        return;
    memcpy(rq->_trace, trace, TINE_TRACE_ID_LEN + 1);
    memcpy(rq->_parent, parent, pl + 1);
}

void inv_request_traceparent(inv_request_t *rq, const char *value, size_t len)
{
    char trace[TINE_TRACE_ID_LEN + 1], span[TINE_SPAN_ID_LEN + 1];
    if (tine_traceparent_parse(value, len, trace, span))
        inv_request_trace(rq, trace, span);
}

void inv_request_dispose(inv_request_t *rq)
{
    tine_buf_dispose(&rq->_frame);
}

/* One more member in the open object, or else in the request. */
static void count_member(inv_request_t *rq)
{
    if (rq->_object_at)
        rq->_object_members++;
    else
        rq->_members++;
}

void inv_request_str(inv_request_t *rq, const char *key, const char *s, size_t len)
{
    sbx_meta_kstr(&rq->_frame, key, s, len);
    count_member(rq);
}

void inv_request_field(inv_request_t *rq, const char *key, size_t klen, const char *s, size_t len)
{
    sbx_meta_key(&rq->_frame, key, klen);
    sbx_meta_str(&rq->_frame, s, len);
    count_member(rq);
}

void inv_request_json(inv_request_t *rq, const char *key, const json_t *v)
{
    assert(rq->_object_at == 0);
    sbx_meta_key(&rq->_frame, key, strlen(key));
    sbx_meta_json(&rq->_frame, v);
    rq->_members++;
}

void inv_request_begin_object(inv_request_t *rq, const char *key)
{
    assert(rq->_object_at == 0);
    sbx_meta_key(&rq->_frame, key, strlen(key));
    rq->_object_at = sbx_meta_begin(&rq->_frame, SBX_META_OBJECT);
    rq->_object_first = rq->_frame.len;
    rq->_object_members = 0;
    rq->_object_names = 0;
}

void inv_request_end_object(inv_request_t *rq)
{
    assert(rq->_object_at != 0);
    sbx_meta_end(&rq->_frame, rq->_object_at, rq->_object_members);
    rq->_object_at = 0;
    rq->_members++;
}

void inv_request_header(inv_request_t *rq, const char *name, size_t nlen, const char *value, size_t vlen)
{
    assert(rq->_object_at != 0);
    if (sbx_meta_header(&rq->_frame, rq->_object_first, rq->_object_members, &rq->_object_names, name, nlen, value,
                        vlen))
        rq->_object_members++;
}

char *inv__request_take_frame(inv_request_t *rq, uint64_t id, const char *id_hex, const void *body, size_t body_len,
                              size_t *frame_len)
{
    assert(rq->_object_at == 0);
    tine_buf_t *b = &rq->_frame;
    /* The sandbox fills the rest of ctx (app, version, ...) from its spec. */
    sbx_meta_key(b, "ctx", 3);
    size_t ctx = sbx_meta_begin(b, SBX_META_OBJECT);
    sbx_meta_kstr(b, "invocation_id", id_hex, strlen(id_hex));
    sbx_meta_end(b, ctx, 1);
    sbx_meta_end(b, rq->_count_at, rq->_members + 1);
    size_t meta_len = b->len - sizeof(sbx_frame_hdr_t);
    if (body_len)
        tine_buf_append(b, body, body_len);
    sbx_frame_hdr_t h = sbx_frame_header(SBX_MSG_INVOKE, id, 0, meta_len, body_len);
    memcpy(b->data, &h, sizeof h);
    char *frame = b->data; /* the buffer's bytes become the call's */
    *frame_len = b->len;
    tine_buf_init(b);
    return frame;
}
