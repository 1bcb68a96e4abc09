/* The record of one finished invocation: the invoker fills it and hands it to
 * its activation observer (inv_config_t.on_activation), which tined fans out
 * to billing (records, usage, metrics) and events (function log triggers).
 * Types only, so that its readers need not link the invoker. The invoker owns
 * it: prefix inv_. */
#ifndef TINE_ACTIVATION_H
#define TINE_ACTIVATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything is borrowed for the observer's call. */
typedef struct {
    const char *invocation_id;
    const char *app;
    const char *ns; /* the app's namespace */
    uint64_t version;
    const char *function;
    const char *trigger;    /* request "trigger", else its "kind": http, event, ... */
    const char *trace_id;   /* its call tree (common/trace.h): its own id when it started it */
    const char *parent_id;  /* the invocation id of its caller or emitter, or the span id of an
                               incoming traceparent; "" for none */
    uint64_t start_unix_ms; /* wall clock when the call was accepted */
    uint64_t duration_ns;   /* dispatch to answer (0 when never dispatched) */
    uint64_t queued_ns;     /* waiting for a sandbox */
    uint64_t cold_start_ns; /* start of its sandbox to ready (handler loaded), when cold */
    bool cold;              /* it waited for its sandbox to start */
    bool dispatched;        /* reached a sandbox */
    uint32_t memory_mb;
    uint32_t timeout_ms;
    uint64_t cpu_ns; /* CPU time the sandbox reported for it */
    int code;        /* as inv_result_t */
    int status;
    const char *error;    /* NULL when code == 0 */
    json_t *logs;         /* [{"t":unix_ms,"level":"info"|"error","msg":"..."}] */
    size_t logs_function; /* the first lines of logs, those the function wrote; tine's own
                             (the error that ended the call and its trace, notes on dropped
                             lines) follow them */
    bool logs_truncated;  /* lines past INV_LOG_CAP bytes (invoker_internal.h) were dropped */
} inv_activation_t;

typedef void (*inv_activation_cb)(void *data, const inv_activation_t *a);

#endif
