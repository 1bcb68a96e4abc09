/* The OpenWhisk-compatible API under /api/v1 (openwhisk.c; see
 * docs/openwhisk.md) and its pure parts (openwhisk_model.c): names, kinds,
 * zip entries, parameters, and tine's activation records in OpenWhisk's
 * shape. Shared inside the gateway only; prefix gw_ow_. */
#ifndef TINE_GATEWAY_OPENWHISK_H
#define TINE_GATEWAY_OPENWHISK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_OW_PREFIX "/api/v1"

/* The kinds an action can have, and what runs it. */
typedef enum {
    GW_OW_KIND_LUA,      /* "lua", "lua:5.1": tine's Lua runtime */
    GW_OW_KIND_PYTHON,   /* "python:3", "python:3.x": tine's Python runtime */
    GW_OW_KIND_NODE,     /* "nodejs:*": tine's Node runtime (runtime: node) */
    GW_OW_KIND_BLACKBOX, /* "blackbox" (the docker skeleton) / "native": runtime exec */
    GW_OW_KIND_SEQUENCE, /* "sequence": other actions in turn */
    GW_OW_KIND_UNKNOWN
} gw_ow_kind_t;

/* The kind named by an action's exec.kind. */
gw_ow_kind_t gw_ow_kind_parse(const char *kind);

/* Whether s is an OpenWhisk entity name (one segment): 1..256 of letters,
 * digits, '_', '@', '.', '-' and spaces, starting with a letter, digit or
 * '_', not ending with a space. */
bool gw_ow_name_valid(const char *s, size_t len);

/* Checks one path of a zip entry before it is written below the action's
 * directory: relative, no "." or ".." segment, no empty segment, no
 * backslash or control character. Returns 0, or TINE_EINVAL with the reason
 * in err. */
int gw_ow_zip_path_check(const char *path, char *err, size_t errlen);

/* Writes the entries of a zip archive (len bytes at zip) below dir: regular
 * files and directories only, every path checked with gw_ow_zip_path_check,
 * max_total uncompressed bytes at most. Returns 0 or TINE_EINVAL/TINE_ETOOBIG
 * with a message naming the entry. */
int gw_ow_unzip(const void *zip, size_t len, const char *dir, size_t max_total, char *err, size_t errlen);

/* An action's parameters ([{"key","value"}...], may be NULL) under the
 * call's (an object, may be NULL): a new object. */
json_t *gw_ow_merge_params(const json_t *defaults, const json_t *call);

/* The value of annotation `key` in an OpenWhisk key/value array, or NULL. */
json_t *gw_ow_kv_get(const json_t *kvs, const char *key);

/* What an action's call answered, in OpenWhisk's terms: code/status/error as
 * in inv_result_t, body the function's response body (the wrapper answers
 * 200 with the result dict, 502 with {"error"} when the action broke the
 * contract). Returns {"status","statusCode","success","result"}. */
json_t *gw_ow_response(int code, int status, const char *body, size_t body_len, const char *error,
                       uint32_t timeout_ms);

/* What gw_ow_activation needs besides the record. */
typedef struct {
    const char *ns;       /* the OpenWhisk namespace */
    const char *name;     /* the action's name (with its package) */
    const char *kind;     /* exec.kind */
    const char *subject;  /* who invoked it (a key id), may be NULL */
    const json_t *response; /* gw_ow_response's, may be NULL (then made from the record) */
    const json_t *limits; /* the action's limits, may be NULL */
    const char *cause;    /* the activation id of the sequence it belongs to, may be NULL */
} gw_ow_act_info_t;

/* One of tine's activation records (as billing reports it: id, start_ms,
 * duration_us, queued_us, cold, cold_start_us, memory_mb, timeout_ms,
 * status, error, logs) in OpenWhisk's shape: activationId, namespace, name,
 * start, end, duration, response, logs ("<ISO time> stdout|stderr: msg"),
 * annotations (path, waitTime, initTime when cold, kind, limits, timeout).
 * A new object. */
json_t *gw_ow_activation(const json_t *record, const gw_ow_act_info_t *info);

/* Parses "a,b" style positive counts of the list endpoints: the query value
 * s (NULL: dflt) as an integer in [0, max]. False when it is not one. */
bool gw_ow_count(const char *s, long max, long dflt, long *out);

#endif
