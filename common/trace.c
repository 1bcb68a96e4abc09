/* W3C trace context for call trees (trace.h). */
#include "trace.h"

#include <stdint.h>
#include <string.h>

bool tine_trace_hex_ok(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        nonzero |= c != '0';
    }
    return nonzero && s[n] == '\0';
}

/* Whether c is a hex digit, either case. */
static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether the n bytes at s are hex digits (either case), not all zeros. */
static bool hex_field(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_hex(s[i]))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

/* Copies n hex digits in lower case and a NUL. */
static void copy_lower(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    out[n] = '\0';
}

bool tine_traceparent_parse(const char *s, size_t len, char trace[TINE_TRACE_ID_LEN + 1],
                            char span[TINE_SPAN_ID_LEN + 1])
{
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len < TINE_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    /* Version ff is invalid; version 00 has exactly these fields; a later
     * version may append "-..." after them. Flags are any two hex digits. */
    if (!is_hex(s[0]) || !is_hex(s[1]) || !is_hex(s[53]) || !is_hex(s[54]))
        return false;
    if ((s[0] == 'f' || s[0] == 'F') && (s[1] == 'f' || s[1] == 'F'))
        return false;
    bool v00 = s[0] == '0' && s[1] == '0';
    if ((v00 && len != TINE_TRACEPARENT_LEN) || (!v00 && len > TINE_TRACEPARENT_LEN && s[55] != '-'))
        return false;
    if (!hex_field(s + 3, TINE_TRACE_ID_LEN) || !hex_field(s + 36, TINE_SPAN_ID_LEN))
        return false;
    copy_lower(trace, s + 3, TINE_TRACE_ID_LEN);
    copy_lower(span, s + 36, TINE_SPAN_ID_LEN);
    return true;
}

void tine_trace_span_of(const char *id, char span[TINE_SPAN_ID_LEN + 1])
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    if (h == 0)
        h = 1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < TINE_SPAN_ID_LEN; i++)
        span[i] = hex[(h >> (60 - 4 * i)) & 0xf];
    span[TINE_SPAN_ID_LEN] = '\0';
}

void tine_traceparent_format(const char *trace, const char *id, char out[TINE_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    memcpy(out + 3, trace, TINE_TRACE_ID_LEN);
    out[35] = '-';
    tine_trace_span_of(id, out + 36);
    memcpy(out + 52, "-01", 4);
}
