/* Results as the invoker's callers read them: the function's status and
 * headers from a RESULT frame's metadata, whose form is sandbox/'s
 * (sandbox/meta.h), through accessors so that no caller sees it. */
#include "invoker_internal.h"
#include "meta.h"

bool inv__result_parse(inv_result_t *res, const char *meta, size_t meta_len)
{
    sbx_result_meta_t m;
    if (!sbx_result_meta_parse(meta, meta_len, &m))
        return false;
    res->function_status = m.status;
    res->_headers = m.headers.p;
    res->_headers_end = m.headers.end;
    res->_nheaders = m.nheaders;
    return true;
}

inv_header_iter_t inv_result_headers(const inv_result_t *res)
{
    inv_header_iter_t it = {res->_headers, res->_headers_end, res->_nheaders};
    return it;
}

bool inv_header_next(inv_header_iter_t *it, const char **name, size_t *nlen, const char **value, size_t *vlen)
{
    if (it->_left == 0)
        return false;
    sbx_meta_cur_t c = {it->_p, it->_end};
    uint32_t nl, vl;
    sbx_result_meta_next(&c, name, &nl, value, &vl); /* inv__result_parse checked every length */
    *nlen = nl;
    *vlen = vl;
    it->_p = c.p;
    it->_left--;
    return true;
}

uint32_t inv_result_header_count(const inv_result_t *res)
{
    return res->_nheaders;
}

json_t *inv_result_headers_json(const inv_result_t *res)
{
    sbx_result_meta_t m = {res->function_status, res->_nheaders, {res->_headers, res->_headers_end}};
    return sbx_result_meta_headers_json(&m);
}
