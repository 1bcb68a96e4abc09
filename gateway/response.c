/* Responses the gateway writes: JSON answers and errors, reason phrases, and
 * a function's own response, checked so that it frames as one HTTP message
 * (no 1xx, no body where HTTP forbids one, no forged or hop-by-hop
 * headers). */
#include "auth.h"
#include "gateway_internal.h"
#include "tine_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 9110's reason phrases (418 from RFC 2324), by status. */
static const char *const reasons[600] = {[200] = "OK",
                                         [201] = "Created",
                                         [202] = "Accepted",
                                         [203] = "Non-Authoritative Information",
                                         [204] = "No Content",
                                         [205] = "Reset Content",
                                         [206] = "Partial Content",
                                         [207] = "Multi-Status",
                                         [208] = "Already Reported",
                                         [226] = "IM Used",
                                         [300] = "Multiple Choices",
                                         [301] = "Moved Permanently",
                                         [302] = "Found",
                                         [303] = "See Other",
                                         [304] = "Not Modified",
                                         [305] = "Use Proxy",
                                         [307] = "Temporary Redirect",
                                         [308] = "Permanent Redirect",
                                         [400] = "Bad Request",
                                         [401] = "Unauthorized",
                                         [402] = "Payment Required",
                                         [403] = "Forbidden",
                                         [404] = "Not Found",
                                         [405] = "Method Not Allowed",
                                         [406] = "Not Acceptable",
                                         [407] = "Proxy Authentication Required",
                                         [408] = "Request Timeout",
                                         [409] = "Conflict",
                                         [410] = "Gone",
                                         [411] = "Length Required",
                                         [412] = "Precondition Failed",
                                         [413] = "Content Too Large",
                                         [414] = "URI Too Long",
                                         [415] = "Unsupported Media Type",
                                         [416] = "Range Not Satisfiable",
                                         [417] = "Expectation Failed",
                                         [418] = "I'm a teapot",
                                         [421] = "Misdirected Request",
                                         [422] = "Unprocessable Content",
                                         [423] = "Locked",
                                         [424] = "Failed Dependency",
                                         [425] = "Too Early",
                                         [426] = "Upgrade Required",
                                         [428] = "Precondition Required",
                                         [429] = "Too Many Requests",
                                         [431] = "Request Header Fields Too Large",
                                         [451] = "Unavailable For Legal Reasons",
                                         [500] = "Internal Server Error",
                                         [501] = "Not Implemented",
                                         [502] = "Bad Gateway",
                                         [503] = "Service Unavailable",
                                         [504] = "Gateway Timeout",
                                         [505] = "HTTP Version Not Supported",
                                         [506] = "Variant Also Negotiates",
                                         [507] = "Insufficient Storage",
                                         [508] = "Loop Detected",
                                         [510] = "Not Extended",
                                         [511] = "Network Authentication Required"};

const char *gw__reason(int status)
{
    const char *r = status >= 0 && status < 600 ? reasons[status] : NULL;
    return r ? r : ""; /* an empty reason phrase is valid HTTP/1.1 */
}

void gw__send_body(h2o_req_t *req, const char *body, size_t len)
{
    /* A known length: h2o 2.2 would otherwise use chunked encoding for 200s
     * and close the keep-alive connection after any other status. 204 and
     * 304 answers carry neither a body nor a Content-Length (RFC 9110); a
     * body there would be read as the start of the next response. HEAD
     * answers keep the length and h2o_send_inline drops the body. */
    int st = req->res.status;
    if (st == 204 || st == 304 || st < 200)
        len = 0;
    else
        req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

void gw__send_json(h2o_req_t *req, int status, json_t *body)
{
    gw__audit_answer(req, status, body);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    req->res.status = status;
    req->res.reason = gw__reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    gw__send_body(req, s, strlen(s));
    free(s);
}

void gw__send_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw__send_json(req, status, json_pack("{s:s}", "error", msg));
}

/* The headers a function may not set: the connection's framing and
 * hop-by-hop headers (RFC 9110 7.6.1), and the gateway's own. Most names
 * are ruled out by their length alone. */
static bool header_owned_by_gateway(const char *name, size_t len)
{
    static const char *const owned[] = {"te",
                                        "upgrade",
                                        "trailer",
                                        "connection",
                                        "keep-alive",
                                        "content-length",
                                        "x-tine-version",
                                        "proxy-connection",
                                        "transfer-encoding",
                                        "x-tine-invocation-id"};
    switch (len) {
    case 2:
    case 7:
    case 10:
    case 14:
    case 16:
    case 17:
    case 20:
        for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
            if (strlen(owned[i]) == len && strncasecmp(name, owned[i], len) == 0)
                return true;
        return false;
    default:
        return false;
    }
}

/* True when a field value has no control character but HTAB (no CR, LF or
 * NUL that would end the header or the head early). Eight bytes at a time
 * while none of them can be below 0x20 or 0x7f, the common case. */
static bool is_field_value(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, d;
        memcpy(&x, s + i, 8);
        d = x ^ (ones * 0x7f);
        /* Flags every byte below 0x20 or equal to 0x7f (and may flag a few
         * more): those eight are then looked at one by one. */
        if ((((x - ones * 0x20) & ~x) | ((d - ones) & ~d)) & highs)
            break;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Prints at most 64 bytes of s for a message, control characters escaped. */
static void show(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 64 && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

void gw__send_function_response(h2o_req_t *req, const char *function, const char *invocation_id,
                                const inv_result_t *res)
{
    int status = res->function_status;
    if (status < 200 || status > 599) {
        gw__send_error(req, 502,
                       "function %s answered status %d: a function answers a final status from 200 to 599 "
                       "(invocation %s)",
                       function, status, invocation_id);
        return;
    }
    /* One pass: a bad header takes back those added before it. */
    size_t added_before = req->res.headers.size;
    inv_header_iter_t it = inv_result_headers(res);
    const char *name, *value;
    size_t nl, vl;
    while (inv_header_next(&it, &name, &nl, &value, &vl)) {
        bool name_ok = tine_http_token(name, nl);
        if (!name_ok || !is_field_value(value, vl)) {
            req->res.headers.size = added_before;
            char shown[320];
            show(shown, sizeof shown, name, nl);
            if (!name_ok)
                gw__send_error(req, 502, "function %s answered a bad header name '%s': expected a token (invocation %s)",
                               function, shown, invocation_id);
            else
                gw__send_error(req, 502,
                               "function %s answered header '%s' with a control character (CR, LF, NUL...) in its "
                               "value (invocation %s)",
                               function, shown, invocation_id);
            return;
        }
        if (header_owned_by_gateway(name, nl))
            continue;
        /* Lower case, as HTTP/2 requires (the sandboxes send them so). */
        h2o_iovec_t n = h2o_strdup(&req->pool, name, nl);
        h2o_strtolower(n.base, n.len);
        h2o_iovec_t v = h2o_strdup(&req->pool, value, vl);
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
    }
    req->res.status = status;
    req->res.reason = gw__reason(status);
    gw__send_body(req, res->body, res->body_len);
}
