/* events: triggers other than HTTP, delivered durably. Event sources
 * (CloudEvents posted to the node, tine.emit, log lines of files and of
 * functions, container engine events, schedules, node lifecycle) append
 * CloudEvents to the Redis Stream "tine:events"; a dispatcher in the
 * consumer group "tine" invokes the matching functions and acknowledges an
 * entry only after they succeeded, retrying with backoff and moving what
 * keeps failing to a dead-letter stream per app. This is the module's one
 * public header (see docs/events.md). */
#ifndef TINE_EVENTS_H
#define TINE_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app_model.h"
#include "invoker.h"

struct uv_loop_s;
typedef struct ev_events ev_events_t;
typedef struct ev_append ev_append_t;

/* What a node says of itself in its heartbeat (filled by the owner's
 * node_status callback). */
typedef struct {
    const char *state;   /* "ready", "starting", "not-ready" or "draining" (static) */
    const char *address; /* where it serves HTTP, "HOST:PORT" (borrowed for the call) */
    size_t sandboxes;    /* sandboxes that are not closing */
    size_t calls;        /* function calls in flight (queued or running) */
    size_t starting, idle, busy; /* sandboxes by state: starting, warm and idle, busy */
} ev_node_status_t;

/* The CloudEvents extension attribute pinning an event to one version of
 * one app: "APP@N" or "APP@TAG". Only that version's triggers get it. */
#define EV_PIN_ATTRIBUTE "tineversion"

typedef struct {
    const char *redis_url;
    const char *node_id;       /* consumer name in the group, heartbeat key */
    const char *log_paths;     /* colon-separated directories file log sources may lie under; NULL: none */
    const char *docker_socket; /* the container engine's API socket */
    bool docker_events;        /* watch the engine's events */
    uint32_t retry_base_ms;    /* delay before the first retry, doubled each time (0: 200 ms) */
    const char *version;       /* of tine, as `tine nodes` shows it (copied) */
    uint32_t drain_grace_ms, drain_timeout_ms; /* how long its drain takes at most (tine drain waits) */
    /* Called before every heartbeat for the node's state, address and load;
     * may be NULL (ready, "", 0, 0). */
    void (*node_status)(void *data, ev_node_status_t *st);
    /* Someone asked this node to drain (ev_node_drain on any node): `by`
     * names the node that took the request. Called once. May be NULL. */
    void (*on_drain_request)(void *data, const char *by);
    void *node_data;
    /* The version of app a selector ("N" or a tag) names, loaded (an event
     * pinned by its tineversion attribute): 0 and a borrowed version, or an
     * error with a message. May be NULL (pinned events go to the dead
     * letters). Called with node_data. */
    int (*select_version)(void *data, const char *app, const char *sel, reg_app_version_t **out, char *err,
                          size_t errlen);
    /* The split of app that takes a share of its events and schedule ticks
     * (tine split --events): true with its version (borrowed) and percent.
     * May be NULL (events stay on the live version). Called with node_data. */
    bool (*event_split)(void *data, const char *app, reg_app_version_t **v, unsigned *percent);
} ev_config_t;

/* Creates the events module on `loop`: Redis connections (reconnecting on
 * their own), the dispatcher, retries, schedules, log followers, the
 * container engine watcher and the node heartbeat. Functions are invoked
 * through `inv` (borrowed; free the events module first). Apps become known
 * through ev_app_changed. Returns NULL with a message when the config is
 * unusable. */
ev_events_t *ev_new(struct uv_loop_s *loop, const ev_config_t *cfg, inv_invoker_t *inv, char *err, size_t errlen);

/* Stops every source, cancels invocations in flight (their events stay
 * pending in Redis and are delivered again) and frees the module once its
 * handles closed. Accepts NULL. */
void ev_free(ev_events_t *ev);

/* An app's live version changed (the live table's change callback): the
 * module follows the new version's triggers. Either may be NULL. */
void ev_app_changed(ev_events_t *ev, const reg_app_version_t *old_v, const reg_app_version_t *new_v);

/* The invoker's activation observer: turns log lines of functions named by
 * `source: function:NAME` log triggers into events. */
void ev_on_activation(ev_events_t *ev, const inv_activation_t *a);

/* Checks what a deploy may not do on this node: file log sources outside
 * the allowed directories (after resolving "..", symlinks), bad filter
 * patterns. Returns 0 or TINE_EINVAL with "MANIFEST: triggers[N].source:
 * ..." in err. */
int ev_check_manifest(const ev_events_t *ev, const reg_manifest_t *m, const char *manifest_path, char *err,
                      size_t errlen);

/* ------------------------------------------------------------ CloudEvents */

typedef struct {
    const char *name; /* any case */
    size_t name_len;
    const char *value;
    size_t value_len;
} ev_header_t;

/* Validates one CloudEvent in the JSON format (specversion "1.0", id,
 * source as a URI-reference, type; optional datacontenttype, dataschema,
 * subject, time as RFC 3339; extension names [a-z0-9]{1,20} with string,
 * number or boolean values; data or data_base64). Attributes set to null are
 * removed. Returns 0 or TINE_EINVAL with "attribute 'source': required" in
 * err. Never aborts on bad input. */
int ev_cloudevent_validate(json_t *event, char *err, size_t errlen);

/* Reads the CloudEvents of an HTTP request: structured mode
 * (application/cloudevents+json: one event), batch mode
 * (application/cloudevents-batch+json: an array) or binary mode (ce-*
 * headers, the body as data: parsed when the content type is JSON, text for
 * text types, else data_base64). On success stores a new array of validated
 * events in *events. On failure returns TINE_EINVAL with a message naming
 * the attribute (and "batch[i]: " in a batch), or -ENOMEM. */
int ev_cloudevents_from_http(const char *content_type, size_t ct_len, const ev_header_t *headers, size_t nheaders,
                             const void *body, size_t len, json_t **events, char *err, size_t errlen);

/* ----------------------------------------------------------------- ingest */

/* Called once when an append finished: rc 0 and the entries' stream ids, or
 * an error with a message (nothing was appended). Borrowed for the call. */
typedef void (*ev_append_cb)(void *data, int rc, const char *error, json_t *entry_ids);

/* tine.emit (the invoker's inv_config_t.on_emit, wired by tined): builds
 * the CloudEvent of function e->function of e->app (id "{node}-{n}", source
 * tine://APP/FUNCTION, the type, the time, the emitting invocation as
 * extension "tineinvocation", e->data as JSON data when not NULL) and
 * appends it to the stream. `done` runs once, later, with the event's id
 * once it is stored and confirmed by a replica (when the master has one),
 * or an error. Returns TINE_EREDIS without calling it
 * when Redis is not connected. */
int ev_emit(ev_events_t *ev, const inv_emit_t *e, inv_emit_done_cb done, void *data);

/* Appends validated events (an array, borrowed) to the stream in one
 * MULTI/EXEC, all or nothing, as coming from `app` ("" for outside
 * producers). The callback runs once the entries are durable: stored, and
 * confirmed by a replica when the master has one (one WAIT for all the
 * appends out at once); else it fails, with why (the entries may then be on
 * the master: a producer sends them again). Not called after
 * ev_append_cancel. Returns an error without calling the callback when
 * Redis is not connected. */
int ev_append(ev_events_t *ev, const char *app, json_t *events, ev_append_cb cb, void *data, ev_append_t **out);

/* The caller lost interest: the callback will not be called (the append
 * itself still completes). */
void ev_append_cancel(ev_append_t *a);

/* Why the module's Redis connection is down ("" while it is up): what the
 * 503 of an append refused at once names. */
const char *ev_redis_error(ev_events_t *ev);

/* ------------------------------------------------------------ dead letters */

/* Lengths of the event stream (entries not yet acknowledged: queued and in
 * flight) and of every app's dead-letter stream, cluster-wide, at the time
 * of the call (synchronous, for GET /metrics). Returns 0 or TINE_EREDIS. */
int ev_queue_lengths(ev_events_t *ev, uint64_t *queued, uint64_t *dead);

/* Lists up to `max` dead letters of `app`, oldest first:
 * {"app":..,"dead_letters":[{"id","event","function","trigger","attempts",
 * "reason","failed_at"}]}. Synchronous. Returns 0 or TINE_EREDIS. */
int ev_dlq_list(ev_events_t *ev, const char *app, size_t max, json_t **out, char *err, size_t errlen);

/* Sends dead letters of `app` again (each to the function it failed in,
 * with a fresh count of attempts) and removes them from the dead-letter
 * stream, atomically. `ids` is an array of dead-letter ids, or NULL for all.
 * Stores {"replayed":N,"ids":[..],"missing":[..]}. Synchronous. */
int ev_dlq_replay(ev_events_t *ev, const char *app, json_t *ids, json_t **out, char *err, size_t errlen);

/* The last events that fired each trigger of the live version of `app`
 * (only those of `function` and of kind `trigger`, "event", "log" or
 * "schedule", when not NULL): {"app","version","triggers":[{"trigger",
 * "function","on" (what fires it: type globs with " from SOURCE", crons or
 * log sources, of every trigger of that kind and function),"events":[{"t"
 * (unix ms),"entry","type","source","id","outcome" ("ok"|"retry"|"dead"),
 * "attempt","invocation"?,"reason"?}] newest first (20 at most),
 * "dead_letters" (of that function and kind)}],"dead_letters" (all of the
 * app)}. Synchronous. Returns 0, TINE_ENOTFOUND (no live app of that name)
 * or TINE_EREDIS. */
int ev_recent_list(ev_events_t *ev, const char *app, const char *function, const char *trigger, json_t **out,
                   char *err, size_t errlen);

/* ------------------------------------------------------------------ nodes */

/* The nodes of the cluster, up and gone (for an hour), sorted by id:
 * {"nodes":[{"node","address","version","host","pid","started_ms","state":
 * "ready"|"starting"|"not-ready"|"draining"|"gone","left":"drained"|"lost"
 * (gone nodes),"sandboxes","calls","events","heartbeat_ms",
 * "heartbeat_age_s","uptime_s" (nodes up),"left_age_s","drain_grace_ms",
 * "drain_timeout_ms","pool":{"starting","idle","busy"},"pool_history":
 * {"step_ms","t":[unix s],"starting":[],"idle":[],"busy":[]}}],
 * "answered_by":ID}. Ages by Redis's clock.
 * Synchronous. Returns 0 or TINE_EREDIS. */
int ev_nodes_list(ev_events_t *ev, json_t **out, char *err, size_t errlen);

/* Asks node `node` to drain (it sees the request with its next heartbeat,
 * within a second), in the name of node `by`; the request is confirmed by a
 * replica when the master has one. Synchronous. Returns 0, TINE_ENOTFOUND
 * when no node of that id is up, or TINE_EREDIS (message in err). */
int ev_node_drain(ev_events_t *ev, const char *node, const char *by, char *err, size_t errlen);

/* This node drains: it reads no new entries and claims no dead node's,
 * finishes those it has, and says "draining" in its heartbeat (its
 * node_status callback's state) at once. */
void ev_drain(ev_events_t *ev);

/* Pending stream entries this node claimed from lost nodes so far. */
uint64_t ev_taken_over(const ev_events_t *ev);

/* Stream entries this node is processing: 0 when a drain may leave.
 * (Appends still held, schedule ticks and container events, are not
 * waited for: the other nodes make the same ones.) */
size_t ev_busy(const ev_events_t *ev);

/* Called once when ev_leave is done: rc 0 and how many pending entries
 * were handed back, or an error with why (the others take the entries over
 * once this node's heartbeat expired). */
typedef void (*ev_left_cb)(void *data, int rc, size_t handed_back, const char *why);

/* The end of a drain: stops reading, cancels the invocations still running
 * (their entries stay pending), appends this node's pending entries to the
 * stream again for the other nodes (and acknowledges them) in one script,
 * then deregisters the node (tine.node.left). `cb` runs once, later.
 * Returns TINE_EREDIS without calling it when Redis is not connected. Call
 * ev_free afterwards. */
int ev_leave(ev_events_t *ev, ev_left_cb cb, void *data);

/* Deletes what the events module keeps of an app that is deleted: its dead
 * letters (their count in *dead_letters). Synchronous. Returns 0 or
 * TINE_EREDIS. */
int ev_delete_app(ev_events_t *ev, const char *app, size_t *dead_letters, char *err, size_t errlen);

#endif
