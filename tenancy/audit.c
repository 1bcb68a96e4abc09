/* The audit log: one entry per change made through the admin API, and per
 * change refused, in the RDS_KEY_AUDIT stream (trimmed to about
 * TN_AUDIT_MAXLEN entries). Appends go out on the asynchronous connection
 * and never hold up the answer; reads are synchronous admin calls. */
#include "tenancy_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_FIELDS 10
#define AUDIT_SCAN_CHUNK 1000

static void on_appended(void *data, redisReply *r)
{
    (void)data;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        tine_log(TINE_LOG_WARN, "audit: an entry could not be written: %s", r ? r->str : "redis is unreachable");
}

void tn_audit_append(tn_tenancy_t *t, const tn_audit_entry_t *e)
{
    if (t == NULL || t->closing)
        return;
    char when[24], status[16], maxlen[16];
    tine_fmt_u64(when, tine_now_unix_ms(), 1);
    snprintf(status, sizeof(status), "%d", e->status);
    snprintf(maxlen, sizeof(maxlen), "%d", TN_AUDIT_MAXLEN);
    const char *fields[AUDIT_FIELDS][2] = {
        {"t", when},           {"key", e->key_id},    {"key_name", e->key_name}, {"namespace", e->ns},
        {"action", e->action}, {"target", e->target}, {"outcome", e->outcome},   {"status", status},
        {"node", t->node_id},  {"detail", e->detail},
    };
    const char *argv[6 + 2 * AUDIT_FIELDS];
    size_t lens[6 + 2 * AUDIT_FIELDS];
    int argc = 0;
    const char *head[] = {"XADD", RDS_KEY_AUDIT, "MAXLEN", "~", maxlen, "*"};
    for (size_t i = 0; i < 6; i++)
        argv[argc++] = head[i];
    for (size_t i = 0; i < AUDIT_FIELDS; i++) {
        argv[argc++] = fields[i][0];
        argv[argc++] = fields[i][1] ? fields[i][1] : "";
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (rds_async_command(t->cmd, on_appended, NULL, argc, argv, lens) != 0)
        tine_log(TINE_LOG_WARN, "audit: an entry could not be written (%s %s by %s): redis is unreachable",
                 e->action ? e->action : "?", e->target ? e->target : "", e->key_id ? e->key_id : "?");
}

/* Whether s is a stream id: MS or MS-SEQ. */
static bool stream_id_valid(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 20)
        return false;
    if (s[n] == '\0')
        return true;
    size_t m = strspn(s + n + 1, "0123456789");
    return s[n] == '-' && m > 0 && m <= 20 && s[n + 1 + m] == '\0';
}

/* One stream entry as its JSON object, or NULL when it is not of
 * namespace `ns` (when set). */
static json_t *entry_json(const redisReply *e, const char *ns)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    const redisReply *kv = e->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const char *k = kv->element[i]->str, *v = kv->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "t") == 0) {
            char when[32];
            tine_fmt_rfc3339_ms(strtoull(v, NULL, 10), when);
            json_object_set_new(o, "time", json_string(when));
            json_object_set_new(o, "t", json_integer(strtoll(v, NULL, 10)));
        } else if (strcmp(k, "status") == 0) {
            json_object_set_new(o, "status", json_integer(strtol(v, NULL, 10)));
        } else {
            json_object_set_new(o, k, v[0] ? tine_json_text(v, kv->element[i + 1]->len) : json_null());
        }
    }
    const char *ens = json_string_value(json_object_get(o, "namespace"));
    if (ns && (ens == NULL || strcmp(ens, ns) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int tn_audit_read(tn_tenancy_t *t, const char *ns, const char *after, size_t limit, json_t **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (after && !stream_id_valid(after))
        return tine_fail(err, errlen, "after: '%s' is not an audit entry id (such as 1795330853087-0)", after);
    json_t *entries = json_array();
    /* Walks the stream in chunks from `after` forwards, or from the newest
     * backwards, keeping the entries of ns until `limit` are found. */
    char *from = after ? xasprintf("(%s", after) : xstrdup("+");
    /* The cursor of the next read: the last entry looked at going forwards
     * (matching or not), the newest going backwards. */
    char *last = after ? xstrdup(after) : NULL;
    int rc = 0;
    while (json_array_size(entries) < limit) {
        redisReply *r = after ? rds_sync_command(t->sync, err, errlen, "XRANGE " RDS_KEY_AUDIT " %s + COUNT %d", from,
                                                 AUDIT_SCAN_CHUNK)
                              : rds_sync_command(t->sync, err, errlen, "XREVRANGE " RDS_KEY_AUDIT " %s - COUNT %d",
                                                 from, AUDIT_SCAN_CHUNK);
        if (r == NULL) {
            rc = TINE_EREDIS;
            break;
        }
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < n && json_array_size(entries) < limit; i++) {
            const redisReply *e = r->element[i];
            json_t *o = entry_json(e, ns);
            if (o)
                json_array_append_new(entries, o);
            if ((after || last == NULL) && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                e->element[0]->type == REDIS_REPLY_STRING) {
                free(last);
                last = xstrdup(e->element[0]->str);
            }
        }
        if (n > 0 && r->element[n - 1]->type == REDIS_REPLY_ARRAY && r->element[n - 1]->elements == 2) {
            free(from);
            from = xasprintf("(%s", r->element[n - 1]->element[0]->str);
        }
        freeReplyObject(r);
        if (n < AUDIT_SCAN_CHUNK)
            break;
    }
    free(from);
    if (rc != 0) {
        free(last);
        json_decref(entries);
        return rc;
    }
    if (!after) { /* newest first as read: oldest first in the answer */
        json_t *rev = json_array();
        for (size_t i = json_array_size(entries); i-- > 0;)
            json_array_append(rev, json_array_get(entries, i));
        json_decref(entries);
        entries = rev;
    }
    *out = json_pack("{s:o, s:o}", "entries", entries, "last", last ? json_string(last) : json_null());
    free(last);
    return 0;
}
