/* libtine: a small C client for the admin HTTP API of a tine node
 * (/_tine/v1/..., see docs/admin-api.md), built on libcurl.
 *
 * Every call returns 0 or a negative code (TINE_CLIENT_E* below, or a
 * negative errno) and, on failure, leaves a one-line human-readable message
 * in the client, retrievable with tine_client_error(). Answers are handed
 * back as the server's JSON text, NUL-terminated and malloc'd: free them with
 * tine_free(). A client is not thread-safe: use one per thread. libtine never
 * aborts on out-of-memory (it returns -ENOMEM). */
#ifndef TINE_CLIENT_H
#define TINE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TINE_CLIENT_VERSION "0.1.0"

/* Error codes. Where a meaning overlaps tine's shared error table
 * (common/tine_common.h) the value is the same. Local failures are negative
 * errno values (-ENOMEM, -EINVAL for a bad argument). */
enum {
    TINE_CLIENT_EINVAL = -1001,    /* the server rejected the input (400) */
    TINE_CLIENT_ENOTFOUND = -1002, /* unknown app, version, function or endpoint (404) */
    TINE_CLIENT_ECONFLICT = -1003, /* route or name conflict (409) */
    TINE_CLIENT_ETOOBIG = -1004,   /* bundle over the node's limit (413) */
    TINE_CLIENT_EPROTO = -1006,    /* the answer was not the expected JSON */
    TINE_CLIENT_ETIMEOUT = -1007,  /* no answer within the client's timeout */
    TINE_CLIENT_EAUTH = -1011,     /* missing or wrong admin token (401, 403) */
    TINE_CLIENT_ECONNECT = -1101,  /* the node could not be reached */
    TINE_CLIENT_EHTTP = -1102,     /* any other 4xx/5xx answer */
    TINE_CLIENT_ETLS = -1103,      /* https: the node's certificate does not verify, or no handshake */
};

typedef struct tine_client tine_client_t;

/* Creates a client for the node at `url` ("http://127.0.0.1:8080"; a
 * trailing "/" is ignored). `token` is the admin token sent as
 * "Authorization: Bearer <token>"; NULL or "" sends no Authorization header.
 * Both strings are copied. Returns NULL on out-of-memory or when url is NULL,
 * empty or lacks a scheme ("http://" or "https://"). */
tine_client_t *tine_client_new(const char *url, const char *token);

/* Frees a client; accepts NULL. */
void tine_client_free(tine_client_t *c);

/* The message of the last failed call on this client ("" before any
 * failure). Valid until the next call on the client. Never NULL. */
const char *tine_client_error(const tine_client_t *c);

/* The HTTP status of the last answer received (0 when none arrived). */
long tine_client_status(const tine_client_t *c);

/* Sets the timeout of each request in milliseconds (0 = none, the default).
 * Returns 0, or -EINVAL for a negative value. */
int tine_client_set_timeout_ms(tine_client_t *c, long ms);

/* For https:// URLs: the node's certificate must chain to a CA of the PEM
 * file `path` (copied) instead of the system's store; NULL goes back to the
 * system's store. The certificate is always verified, its name or IP
 * against the URL's host; a failure is TINE_CLIENT_ETLS. Returns 0 or
 * -ENOMEM. */
int tine_client_set_cacert(tine_client_t *c, const char *path);

/* A static description of an error code. */
const char *tine_client_strerror(int code);

/* Frees a buffer returned by libtine; accepts NULL. */
void tine_free(void *p);

/* Sends one request. `method` is "GET", "PUT", "POST"...; `path` starts with
 * "/" and is appended to the client's url as given (escape it yourself, see
 * tine_escape). `body` (len bytes, may be NULL when len is 0) is borrowed for
 * the duration of the call; `content_type` may be NULL. Returns 0 when an
 * answer arrived, whatever its status: *status receives it and, when
 * response_body is not NULL, *response_body a new NUL-terminated copy of the
 * body (free with tine_free). Fails with TINE_CLIENT_ECONNECT,
 * TINE_CLIENT_ETIMEOUT or -ENOMEM, leaving *response_body NULL. */
int tine_request(tine_client_t *c, const char *method, const char *path, const void *body, size_t len,
                 const char *content_type, long *status, char **response_body);

/* Percent-escapes one path segment (an app or function name). Returns a new
 * string (free with tine_free) or NULL on out-of-memory. */
char *tine_escape(const char *segment);

/* The wrappers below send one admin API call and succeed only on a 2xx
 * answer, storing the server's JSON in *response (free with tine_free;
 * `response` may be NULL to discard it). On a 4xx/5xx answer they return the
 * code matching the status and set the error message to the server's "error"
 * field verbatim ("401 unauthorized: ..." for 401). */

/* Sends one admin API call to `path` (from "/", escaped by the caller) with
 * an optional JSON body (`json_body`, NUL-terminated, borrowed; NULL for
 * none), and succeeds only on a 2xx JSON answer, as the wrappers below: for
 * endpoints without one (whoami, namespaces, keys, audit). A refusal (403)
 * fails with TINE_CLIENT_EAUTH and the node's message naming the missing
 * permission. */
int tine_call(tine_client_t *c, const char *method, const char *path, const char *json_body, char **response);

/* GET /_tine/v1/health: {"status":"ok","node":"<id>","apps":N}. */
int tine_health(tine_client_t *c, char **response);

/* GET /_tine/v1/apps: {"apps":[{"app":"hello","live":3,"versions":3}]}. */
int tine_apps(tine_client_t *c, char **response);

/* PUT /_tine/v1/apps/{app} with a tar.gz bundle (borrowed):
 * {"app":"hello","version":4}. */
int tine_deploy(tine_client_t *c, const char *app, const void *tgz, size_t len, char **response);

/* Flags of tine_deploy_ex. */
enum {
    TINE_DEPLOY_FORCE = 1, /* store a new version even when an identical one exists */
    TINE_DEPLOY_STAGE = 2, /* store it without making it live: 201 {"app","version","live","staged":true} */
};

/* PUT /_tine/v1/apps/{app}[?force=1][&stage=1]: tine_deploy with flags. Without
 * TINE_DEPLOY_FORCE, a bundle identical to the live version answers 200
 * {"app","version","live","unchanged":true}, one identical to an older
 * version fails with TINE_CLIENT_ECONFLICT (nothing changes). A version this
 * node cannot serve fails with TINE_CLIENT_EHTTP (503) and the reason. */
int tine_deploy_ex(tine_client_t *c, const char *app, const void *tgz, size_t len, unsigned flags, char **response);

/* GET /_tine/v1/apps/{app}: {"app","live","versions":N,"node","serving",
 * "problem"?}: the live version, and the one the answering node serves
 * (with why, when it cannot load the live one). */
int tine_app(tine_client_t *c, const char *app, char **response);

/* DELETE /_tine/v1/apps/{app}: deletes the app, its versions, tine.kv keys,
 * dead letters and activation records (its usage is kept):
 * {"app","deleted":{"versions","files","kv_keys","dead_letters",
 * "activations"},"kept":["usage"]}. */
int tine_delete_app(tine_client_t *c, const char *app, char **response);

/* POST /_tine/v1/apps/{app}/versions/prune {"keep":N}: removes all versions
 * but the `keep` newest and the live one: {"app","live","pruned":[..],
 * "kept":[..],"files_deleted":N}. */
int tine_prune_versions(tine_client_t *c, const char *app, unsigned keep, char **response);

/* GET /_tine/v1/ready: {"ready":true}; a node that cannot load some live
 * version answers 503 (TINE_CLIENT_EHTTP) with the reasons. */
int tine_ready(tine_client_t *c, char **response);

/* GET /_tine/v1/apps/{app}/versions. */
int tine_versions(tine_client_t *c, const char *app, char **response);

/* POST /_tine/v1/apps/{app}/rollback: makes `version` live, or with version
 * 0 the one before the live version: {"app":"hello","live":2}. */
int tine_rollback(tine_client_t *c, const char *app, uint64_t version, char **response);

/* GET /_tine/v1/apps/{app}/routes: the live version's routes and triggers. */
/* GET /_tine/v1/apps/{app}/export[?version=N]: the stored version
 * (version 0: the live one) as its canonical tar.gz artifact, in *data
 * (*len bytes, free with tine_free). Errors as the wrappers above. */
int tine_export(tine_client_t *c, const char *app, uint64_t version, void **data, size_t *len);

/* The app's secrets (docs/secrets.md): their names (GET .../secrets), set
 * one (the value, len bytes, is the body) or remove one. Never a value in
 * an answer. */
int tine_secrets(tine_client_t *c, const char *app, char **response);
int tine_secret_set(tine_client_t *c, const char *app, const char *name, const void *value, size_t len,
                    char **response);
int tine_secret_delete(tine_client_t *c, const char *app, const char *name, char **response);

int tine_routes(tine_client_t *c, const char *app, char **response);

/* POST /_tine/v1/apps/{app}/functions/{fn}/invoke with `event_json` (len
 * bytes of JSON, borrowed; NULL sends "{}"). Succeeds whenever the node
 * answered 200, even when the function itself failed: check the "status"
 * field of the response. */
int tine_invoke(tine_client_t *c, const char *app, const char *fn, const char *event_json, size_t len,
                char **response);

/* GET /_tine/v1/sandboxes (only the pools of `app` unless it is NULL): the
 * node's sandboxes per function, {"sandboxes":N,"max_sandboxes":N,
 * "pools":[{"app","version","function","warm","idle","busy",...,
 * "sandboxes":[{"pid","state","age_s","invocations","cold_start_ms",
 * "last_used_s"}]}]}. */
int tine_sandboxes(tine_client_t *c, const char *app, char **response);

/* DELETE /_tine/v1/apps/{app}/sandboxes[?function=fn]: closes the idle
 * sandboxes of the app (of function `fn` unless it is NULL) on that node:
 * {"evicted":N}. */
int tine_evict(tine_client_t *c, const char *app, const char *fn, char **response);

/* PUT /_tine/v1/apps/{app}/functions/{fn}/scale {"warm":N}: the live
 * version's pool on that node keeps `warm` idle sandboxes until the next
 * deploy: {"app","function","version","warm"}. */
int tine_scale(tine_client_t *c, const char *app, const char *fn, unsigned warm, char **response);
/* POST /_tine/v1/events with one CloudEvent in structured mode
 * (`event_json`, len bytes, borrowed): the node validates it, stores it
 * durably and answers {"ids":["<event id>"],"entries":["<stream id>"]}. An
 * invalid event fails with TINE_CLIENT_EINVAL and the node's message naming
 * the attribute. */
int tine_events_emit(tine_client_t *c, const char *event_json, size_t len, char **response);

/* GET /_tine/v1/apps/{app}/dlq: the app's dead letters, oldest first:
 * {"app":..,"dead_letters":[{"id","event","function","trigger","attempts",
 * "reason","failed_at","app"}]}. */
int tine_dlq(tine_client_t *c, const char *app, char **response);

/* POST /_tine/v1/apps/{app}/dlq/replay: sends the dead letters named in
 * `ids` (n of them) again, or all of them when n is 0:
 * {"replayed":N,"ids":[..],"missing":[..]}. */
int tine_dlq_replay(tine_client_t *c, const char *app, const char *const *ids, size_t n, char **response);
/* GET /_tine/v1/usage?app=APP&from=&to=&by=: usage of an app summed over
 * days (from/to "YYYY-MM-DD", NULL for the last 30 days) and grouped `by`
 * "function" (NULL), "version" or "day". Money is exact: "cost" is a decimal
 * string of dollars, "cost_pusd" an integer of 1e-12 dollars. */
int tine_usage(tine_client_t *c, const char *app, const char *from, const char *to, const char *by,
               char **response);

/* GET /_tine/v1/apps/{app}/activations: the newest activation records
 * (limit 0: the node's default of 20), of function `fn` when not NULL. */
int tine_activations(tine_client_t *c, const char *app, const char *fn, unsigned limit, char **response);

/* The same with any of the endpoint's query parameters (docs/admin-api.md:
 * limit, function, version, status, cold, min_duration_ms, since, until,
 * after): `params` is name, value, name, value, ..., NULL; a NULL or empty
 * value is left out. */
int tine_activations_query(tine_client_t *c, const char *app, const char *const *params, char **response);

/* GET /_tine/v1/traces/{id}: the activations of a call tree, oldest first. */
int tine_trace(tine_client_t *c, const char *id, char **response);

/* GET /_tine/v1/activations/{id}: one activation record with its logs. */
int tine_activation(tine_client_t *c, const char *id, char **response);

/* Called with each line of a log stream (NUL-terminated, without its
 * "\n"; valid during the call). Empty lines are keep-alives; a followed
 * stream sends one as soon as it is live. Return nonzero to stop. */
typedef int (*tine_line_cb)(void *data, const char *line, size_t len);

/* GET /_tine/v1/apps/{app}/logs: the newest `limit` log lines of the app
 * (of function `fn` when not NULL), one JSON object per line, oldest
 * first; with `follow` the call then goes on with new lines as functions
 * log them, until cb returns nonzero or the connection ends. Returns 0 when
 * the stream ended or cb stopped it. */
int tine_logs(tine_client_t *c, const char *app, const char *fn, unsigned limit, int follow, tine_line_cb cb,
              void *data);

/* tine_logs with the lines filtered by the node: `params` is name, value,
 * ..., NULL of "since" (Unix ms or a time ago: 15m), "level" (info or
 * error) and "text" (a substring of the message); NULL or empty values are
 * left out. */
int tine_logs_query(tine_client_t *c, const char *app, const char *fn, unsigned limit, int follow,
                    const char *const *params, tine_line_cb cb, void *data);

/* POST /_tine/v1/events: publishes one CloudEvent into the node's event
 * system, which hands it to the functions whose triggers match. `type` and
 * `source` are required ("order.paid", "myapp/billing"); `data_json` (len
 * bytes of JSON, borrowed; NULL for none) becomes the event's data, with
 * datacontenttype application/json. libtine adds specversion "1.0", a random
 * 32-hex-digit id and the current time, and sends the event in structured
 * mode (Content-Type: application/cloudevents+json). Returns -EINVAL with a
 * message when type or source is missing or data_json is not JSON. */
int tine_emit(tine_client_t *c, const char *type, const char *source, const char *data_json, size_t len,
              char **response);

/* GET /_tine/v1/doctor: the isolation layers of the node's sandboxes,
 * {"isolation":"on","layers":[{"name":"seccomp","active":true,"detail":"..."}]}. */
int tine_doctor(tine_client_t *c, char **response);

/* GET /_tine/v1/nodes: the nodes of the cluster (up, and gone for an
 * hour), {"nodes":[{"node","state":"ready"|"starting"|"not-ready"|
 * "draining"|"gone","left":"drained"|"lost","address","version","host",
 * "pid","started_ms","uptime_s","heartbeat_ms","heartbeat_age_s",
 * "left_age_s","sandboxes","calls","events","drain_grace_ms",
 * "drain_timeout_ms"}],"answered_by":"<id>"}. */
int tine_nodes(tine_client_t *c, char **response);

/* POST /_tine/v1/nodes/{node}/drain: asks that node (through Redis: any
 * node takes the request) to drain: {"node","draining":true,"asked_by"}.
 * TINE_CLIENT_ENOTFOUND when no node of that id is up. */
int tine_drain(tine_client_t *c, const char *node, char **response);

#ifdef __cplusplus
}
#endif

#endif
