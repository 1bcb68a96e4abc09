/* The host-call service: what a function asks tined to do on its behalf
 * (tine.kv today). The sandbox reaches nothing itself: each HOSTCALL frame is
 * answered with exactly one HOSTREPLY frame. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Serves a tine.kv host call, answering with meta {"found":..} /
 * {"value":N} / {"deleted":..} / {"keys":[..]} / {} or {"error":"..."}; body:
 * the value of a get. Keys live in the app's own key space. */
void inv_hostcall(inv_call_t *c, const sbx_frame_hdr_t *h, const char *payload)
{
    const char *app = c->pool->version->app;
    json_t *meta = json_loadb(payload, h->meta_len, 0, NULL);
    const char *op = json_string_value(json_object_get(meta, "op"));
    const char *key = json_string_value(json_object_get(meta, "key"));
    const char *body = payload + h->meta_len;
    size_t body_len = h->len - h->meta_len;
    char err[512] = "";
    json_t *reply = NULL;
    char *value = NULL;
    size_t value_len = 0;
    reg_store_t *st = c->inv->cfg.store;
    if (op == NULL || st == NULL) {
        snprintf(err, sizeof(err), st ? "host call without an op" : "tine.kv is not available on this node");
    } else if (strcmp(op, "kv.get") == 0 && key) {
        int found = 0;
        if (reg_kv_get(st, app, key, &value, &value_len, &found, err, sizeof(err)) == 0)
            reply = json_pack("{s:b}", "found", found);
    } else if (strcmp(op, "kv.set") == 0 && key) {
        json_int_t ttl = json_integer_value(json_object_get(meta, "ttl_ms"));
        if (reg_kv_set(st, app, key, body, body_len, ttl > 0 ? (uint64_t)ttl : 0, err, sizeof(err)) == 0)
            reply = json_object();
    } else if (strcmp(op, "kv.del") == 0 && key) {
        int deleted = 0;
        if (reg_kv_del(st, app, key, &deleted, err, sizeof(err)) == 0)
            reply = json_pack("{s:b}", "deleted", deleted);
    } else if (strcmp(op, "kv.incr") == 0 && key) {
        json_t *by = json_object_get(meta, "by");
        int64_t v = 0;
        if (reg_kv_incr(st, app, key, by ? json_integer_value(by) : 1, &v, err, sizeof(err)) == 0)
            reply = json_pack("{s:I}", "value", (json_int_t)v);
    } else if (strcmp(op, "kv.keys") == 0) {
        const char *prefix = json_string_value(json_object_get(meta, "prefix"));
        char **keys = NULL;
        size_t n = 0;
        if (reg_kv_keys(st, app, prefix ? prefix : "", 10000, &keys, &n, err, sizeof(err)) == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_t *k = json_string(keys[i]);
                if (k)
                    json_array_append_new(arr, k);
                free(keys[i]);
            }
            free(keys);
            reply = json_pack("{s:o}", "keys", arr);
        }
    } else {
        snprintf(err, sizeof(err), "unknown host call '%s'", op);
    }
    if (reply == NULL)
        reply = json_pack("{s:s}", "error", err[0] ? err : "host call failed");
    char *m = json_dumps(reply, JSON_COMPACT);
    inv_call_hold(c);
    inv_call_reply(c, m, strlen(m), value, value_len);
    free(m);
    free(value);
    json_decref(reply);
    json_decref(meta);
}
