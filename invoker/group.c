/* Records of in-process calls in a co-location group: a sandbox hosting a
 * group runs tine.invoke between its members itself and reports each such
 * call afterwards in one SBX_MSG_NESTED frame (sandbox/wire.h) before the
 * answer of the invocation tined started there. Each becomes an activation
 * record of its own, as if it had come through tined: billed, listed,
 * its log lines (redacted, capped) in the record (not in tined's own log).
 * docs/ARCHITECTURE.md, "Co-location groups". */
#include "invoker_internal.h"
#include "tine_common.h"

#include <string.h>

/* The log lines of record r, each as call_log.c keeps one
 * (inv__log_line_text), into a new array; *kept counts them. Lines past
 * INV_LOG_CAP bytes are dropped and *truncated set. */
static json_t *nested_logs(inv_call_t *root, const json_t *r, size_t *kept, bool *truncated)
{
    inv_pool_t *p = root->pool;
    json_t *out = json_array();
    size_t bytes = 0, i;
    json_t *line;
    json_array_foreach(json_object_get(r, "logs"), i, line) {
        const char *msg = json_string_value(json_object_get(line, "msg"));
        const char *level = json_string_value(json_object_get(line, "level"));
        if (msg == NULL)
            continue;
        tine_buf_t b;
        tine_buf_init(&b);
        inv__log_line_text(p, msg, json_string_length(json_object_get(line, "msg")), &b);
        if (bytes + b.len > INV_LOG_CAP) {
            *truncated = true;
        } else {
            bool error = level && strcmp(level, "error") == 0;
            json_array_append_new(out, json_pack("{s:O, s:s, s:s%}", "t", json_object_get(line, "t"), "level",
                                                 error ? "error" : "info", "msg", b.data ? b.data : "", b.len));
            bytes += b.len;
        }
        tine_buf_dispose(&b);
    }
    *kept = json_array_size(out);
    return out;
}

/* Whether id is an invocation id's shape: 32 lower-case hex digits. */
static bool id_shaped(const char *id)
{
    return id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

/* Whether id is an in-process call's id of this node: the node's prefix,
 * then the high bit set (tined's own never have it, so a record cannot
 * take the id of a call tined made). */
static bool nested_id_ok(const inv_invoker_t *inv, const char *id)
{
    return id_shaped(id) && memcmp(id, inv->node_prefix, 16) == 0 && id[16] >= '8';
}

void inv__group_records(inv_call_t *root, const sbx_frame_hdr_t *h, const char *payload)
{
    inv_invoker_t *inv = root->inv;
    json_t *arr = json_loadb(payload, h->meta_len, 0, NULL);
    if (!json_is_array(arr) || inv->cfg.on_activation == NULL) {
        if (!json_is_array(arr))
            tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", root->pool->version->app), "%s",
                        "a sandbox sent malformed records of in-process calls; ignored");
        json_decref(arr);
        return;
    }
    const reg_app_version_t *v = root->pool->version;
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r) {
        const char *fn = json_string_value(json_object_get(r, "fn"));
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *parent = json_string_value(json_object_get(r, "parent"));
        size_t idx;
        if (fn == NULL || !nested_id_ok(inv, id) || !id_shaped(parent) ||
            !reg_manifest_function_index(v->manifest, fn, strlen(fn), &idx))
            continue;
        const reg_function_t *f = &v->manifest->functions[idx];
        bool truncated = json_integer_value(json_object_get(r, "dropped")) > 0;
        size_t nlogs = 0;
        json_t *logs = nested_logs(root, r, &nlogs, &truncated);
        int code = (int)json_integer_value(json_object_get(r, "code"));
        inv_activation_t a = {
            .invocation_id = id,
            .app = v->app,
            .ns = v->manifest->namespace,
            .version = v->version,
            .function = f->name,
            .trigger = "invoke",
            .trace_id = root->trace,
            .parent_id = parent,
            .start_unix_ms = (uint64_t)json_integer_value(json_object_get(r, "start_ms")),
            .duration_ns = (uint64_t)json_integer_value(json_object_get(r, "duration_ns")),
            .dispatched = true,
            .memory_mb = f->memory_mb,
            .timeout_ms = f->timeout_ms,
            .code = code,
            .status = (int)json_integer_value(json_object_get(r, "status")),
            .error = code ? json_string_value(json_object_get(r, "error")) : NULL,
            .logs = logs,
            .logs_function = nlogs,
            .logs_truncated = truncated,
        };
        if (a.code != 0 && a.error == NULL)
            a.error = "in-process call failed";
        inv->cfg.on_activation(inv->cfg.on_activation_data, &a);
        json_decref(logs);
    }
    json_decref(arr);
}
