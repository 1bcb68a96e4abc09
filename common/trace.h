/* Call trees: W3C trace context (the `traceparent` header,
 * https://www.w3.org/TR/trace-context/) as tine uses it. A trace id is 32
 * lower-case hex digits; an activation that starts a trace uses its own
 * invocation id (32 hex digits) as the trace id. An activation's parent is
 * the invocation id of the call that invoked it or emitted its event, or the
 * 16-hex-digit span id of an incoming traceparent. The span id tine sends for
 * an invocation is tine_trace_span_of(its id). */
#ifndef TINE_TRACE_H
#define TINE_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#define TINE_TRACE_ID_LEN 32
#define TINE_SPAN_ID_LEN 16
#define TINE_TRACEPARENT_LEN 55 /* "00-" trace "-" span "-" flags */

/* Parses a traceparent header value (len bytes): version 00 (or a later one
 * with at least the same fields), a trace id and a span id that are hex and
 * not all zeros. On success copies them, lower case, NUL-terminated, into
 * trace[33] and span[17] and returns true; false leaves them unchanged. */
bool tine_traceparent_parse(const char *s, size_t len, char trace[TINE_TRACE_ID_LEN + 1],
                            char span[TINE_SPAN_ID_LEN + 1]);

/* The span id of invocation `id` (any string): 16 hex digits of a 64-bit
 * FNV-1a hash, never all zeros, into span[17]. */
void tine_trace_span_of(const char *id, char span[TINE_SPAN_ID_LEN + 1]);

/* Writes "00-<trace>-<span of id>-01" into out[56]. */
void tine_traceparent_format(const char *trace, const char *id, char out[TINE_TRACEPARENT_LEN + 1]);

/* Whether s is exactly n lower-case hex digits, not all zeros. */
bool tine_trace_hex_ok(const char *s, size_t n);

#endif
