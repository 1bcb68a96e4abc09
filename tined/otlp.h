/* OTLP export of activations (--otlp-endpoint): every finished invocation
 * becomes a span of its call tree (common/trace.h), sent in batches as OTLP
 * over HTTP with JSON (POST <endpoint>, an ExportTraceServiceRequest) by a
 * thread of its own, so the loop never waits for the collector. Best
 * effort: spans over the buffer's bound, or of a batch the collector
 * refused, are dropped and counted. */
#ifndef TINE_OTLP_H
#define TINE_OTLP_H

#include <stdint.h>

#include "activation.h"
#include "tine_common.h"

typedef struct otlp otlp_t;

/* Starts the exporter's thread; `node` names this node in each batch's
 * resource. Returns NULL with a message in err when the thread cannot
 * start. Strings are copied. */
otlp_t *otlp_new(const char *endpoint, const char *node, char *err, size_t errlen);

/* Queues the span of activation a (called on the loop; never blocks on the
 * network). */
void otlp_add(otlp_t *x, const inv_activation_t *a);

/* Sends what is queued (one last try, at most a few seconds), stops the
 * thread and frees the exporter. NULL is ignored. */
void otlp_free(otlp_t *x);

/* Appends the exporter's counters to `out` as Prometheus text (HELP and
 * TYPE lines): spans exported, dropped (queue full, batch not taken),
 * failed posts, queue length, time of the last failure. `data` is the
 * otlp_t (the gateway's metrics_more hook). */
void otlp_metrics_render(void *data, tine_buf_t *out);

/* Spans sent (acknowledged by the collector) and dropped so far. */
uint64_t otlp_sent(const otlp_t *x);
uint64_t otlp_dropped(const otlp_t *x);

#endif
