/* API key records: made (64 random bits of id, 256 of secret, of which only
 * the SHA-256 is stored), listed and revoked by synchronous admin calls.
 * Each change is one script that writes the record, bumps RDS_KEY_KEYS_GEN
 * and announces it on RDS_CHANNEL_KEYS, so every node's copy (tenancy.c)
 * follows. Records are JSON in one hash, id -> {"name","namespace","role",
 * "app","sha256","created","by","revoked","expires"}; a valid key has no
 * "revoked"; one without "expires" never expires. */
#include "tenancy_internal.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads 2n hex digits into n bytes; false when s is not that. */
static bool from_hex(const char *s, unsigned char *out, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static char *opt_string(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v && v[0] ? xstrdup(v) : NULL;
}

tn_key_t *tn__key_parse(const char *id, const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    tn_key_t *k = xcalloc(1, sizeof(*k));
    memcpy(k->id, id, TN_KEY_ID_LEN);
    k->name = opt_string(o, "name");
    k->ns = opt_string(o, "namespace");
    k->role = opt_string(o, "role");
    k->app = opt_string(o, "app");
    k->created_by = opt_string(o, "by");
    k->created_ms = json_integer_value(json_object_get(o, "created"));
    k->revoked_ms = json_integer_value(json_object_get(o, "revoked"));
    k->expires_ms = json_integer_value(json_object_get(o, "expires"));
    bool ok = json_is_object(o) && k->name && k->role &&
              from_hex(json_string_value(json_object_get(o, "sha256")), k->sha256, sizeof(k->sha256));
    json_decref(o);
    if (!ok) {
        tine_log(TINE_LOG_WARN, "tenancy: the record of API key %s is damaged; the key is refused", k->id);
        tn__key_free(k);
        return NULL;
    }
    return k;
}

void tn__key_free(tn_key_t *k)
{
    if (k == NULL)
        return;
    free(k->name);
    free(k->ns);
    free(k->role);
    free(k->app);
    free(k->created_by);
    free(k);
}

bool tn_key_secret_ok(const tn_key_t *k, const char *secret, size_t len)
{
    /* Fetched once: SHA256() looks the algorithm up (under a lock) on every
     * call, which a private route would pay per request. Loop thread only. */
    static EVP_MD *sha256;
    static EVP_MD_CTX *ctx;
    if (sha256 == NULL && ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL || (ctx = EVP_MD_CTX_new()) == NULL))
        tine_oom(64); /* what else fails there */
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int mdlen = 0;
    if (EVP_DigestInit_ex(ctx, sha256, NULL) != 1 || EVP_DigestUpdate(ctx, secret, len) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md))
        return false;
    return CRYPTO_memcmp(md, k->sha256, sizeof(md)) == 0;
}

static bool key_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* Writes the record unless the id is taken, bumps the generation and
 * announces it. Returns 1, or 0 when the id exists. */
static const char create_script[] = "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end "
                                    "redis.call('INCR', KEYS[2]) "
                                    "redis.call('PUBLISH', ARGV[3], 'created ' .. ARGV[1]) "
                                    "return 1";

int tn_key_create(tn_tenancy_t *t, const tn_key_spec_t *spec, char id[TN_KEY_ID_LEN + 1],
                  char key[TN_KEY_ID_LEN + 1 + TN_KEY_SECRET_LEN + 1], char *err, size_t errlen)
{
    if (!key_name_valid(spec->name))
        return tine_fail(err, errlen, "name: '%s' is not a key name (1 to 64 letters, digits, '.', '_' or '-')",
                         spec->name ? spec->name : "");
    for (int attempt = 0; attempt < 4; attempt++) {
        unsigned char raw[TN_KEY_ID_LEN / 2 + TN_KEY_SECRET_LEN / 2];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            snprintf(err, errlen, "no randomness for a key: %s", strerror(errno));
            return -EIO;
        }
        char secret[TN_KEY_SECRET_LEN + 1], digest[2 * SHA256_DIGEST_LENGTH + 1];
        unsigned char md[SHA256_DIGEST_LENGTH];
        to_hex(raw, TN_KEY_ID_LEN / 2, id);
        to_hex(raw + TN_KEY_ID_LEN / 2, TN_KEY_SECRET_LEN / 2, secret);
        SHA256((const unsigned char *)secret, TN_KEY_SECRET_LEN, md);
        to_hex(md, sizeof(md), digest);
        OPENSSL_cleanse(raw, sizeof(raw));
        json_t *rec = json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", spec->name, "role", spec->role, "sha256", digest,
                                "created", (json_int_t)tine_now_unix_ms(), "by", spec->by ? spec->by : "");
        if (spec->ns)
            json_object_set_new(rec, "namespace", json_string(spec->ns));
        if (spec->app)
            json_object_set_new(rec, "app", json_string(spec->app));
        if (spec->expires_ms > 0)
            json_object_set_new(rec, "expires", json_integer(spec->expires_ms));
        char *text = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        redisReply *r = rds_sync_command(t->sync, err, errlen, "EVAL %s 2 %s %s %s %s %s", create_script, RDS_KEY_KEYS,
                                         RDS_KEY_KEYS_GEN, id, text, RDS_CHANNEL_KEYS);
        long long made = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        if (made == 1) {
            /* This node knows it at once; the others when the announcement
             * arrives (or a request makes them read it). */
            tn_key_t *k = tn__key_parse(id, text, strlen(text));
            free(text);
            if (k)
                tn__keys_put(t, k);
            snprintf(key, TN_KEY_ID_LEN + 1 + TN_KEY_SECRET_LEN + 1, "%s:%s", id, secret);
            OPENSSL_cleanse(secret, sizeof(secret));
            return 0;
        }
        free(text);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (r == NULL)
            return TINE_EREDIS;
        /* made == 0: 64 random bits met an existing id; draw again. */
    }
    snprintf(err, errlen, "could not draw an unused key id");
    return TINE_EREDIS;
}

/* Marks the records of ARGV[1..n-2] (ids) revoked at ARGV[n-1], or with
 * ARGV[1] == "" every valid key of namespace ARGV[2]; announces each and
 * bumps the generation once. Returns the count revoked, -1 when the one id
 * is unknown, or the time it was revoked already as {ms}. */
static const char revoke_script[] = "local function valid(k) return k.revoked == nil or k.revoked == cjson.null end "
                                    "local function revoke(id, k) "
                                    "  k.revoked = tonumber(ARGV[3]) "
                                    "  redis.call('HSET', KEYS[1], id, cjson.encode(k)) "
                                    "  redis.call('PUBLISH', ARGV[4], 'revoked ' .. id) "
                                    "end "
                                    "local n = 0 "
                                    "if ARGV[1] ~= '' then "
                                    "  local rec = redis.call('HGET', KEYS[1], ARGV[1]) "
                                    "  if not rec then return -1 end "
                                    "  local k = cjson.decode(rec) "
                                    "  if not valid(k) then return {k.revoked} end "
                                    "  revoke(ARGV[1], k) n = 1 "
                                    "else "
                                    "  local all = redis.call('HGETALL', KEYS[1]) "
                                    "  for i = 1, #all, 2 do "
                                    "    local k = cjson.decode(all[i + 1]) "
                                    "    if k.namespace == ARGV[2] and valid(k) then revoke(all[i], k) n = n + 1 end "
                                    "  end "
                                    "end "
                                    "if n > 0 then redis.call('INCR', KEYS[2]) end "
                                    "return n";

/* Marks revoked in this node's copy at once (the others hear it). */
static void revoked_here(tn_tenancy_t *t, const char *id, int64_t when)
{
    const tn_key_t *k = tn_key_find(t, id, strlen(id));
    if (k && k->revoked_ms == 0)
        ((tn_key_t *)k)->revoked_ms = when;
}

int tn_key_revoke(tn_tenancy_t *t, const char *id, char *err, size_t errlen)
{
    if (!tn_key_id_valid(id, strlen(id))) {
        snprintf(err, errlen, "'%s' is not a key id (16 hex digits, the part of a key before ':')", id);
        return TINE_ENOTFOUND;
    }
    int64_t now = (int64_t)tine_now_unix_ms();
    redisReply *r = rds_sync_command(t->sync, err, errlen, "EVAL %s 2 %s %s %s %s %" PRId64 " %s", revoke_script,
                                     RDS_KEY_KEYS, RDS_KEY_KEYS_GEN, id, "-", now, RDS_CHANNEL_KEYS);
    if (r == NULL)
        return TINE_EREDIS;
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        snprintf(err, errlen, "no API key with id %s", id);
        rc = TINE_ENOTFOUND;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_INTEGER) {
        char when[32];
        tine_fmt_rfc3339_ms((uint64_t)r->element[0]->integer, when);
        snprintf(err, errlen, "API key %s was revoked already, at %s", id, when);
        rc = TINE_ECONFLICT;
    } else {
        revoked_here(t, id, now);
    }
    freeReplyObject(r);
    return rc;
}

int tn_keys_revoke_namespace(tn_tenancy_t *t, const char *ns, size_t *count, char *err, size_t errlen)
{
    int64_t now = (int64_t)tine_now_unix_ms();
    redisReply *r = rds_sync_command(t->sync, err, errlen, "EVAL %s 2 %s %s %s %s %" PRId64 " %s", revoke_script,
                                     RDS_KEY_KEYS, RDS_KEY_KEYS_GEN, "", ns, now, RDS_CHANNEL_KEYS);
    if (r == NULL)
        return TINE_EREDIS;
    *count += r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (size_t)r->integer : 0;
    freeReplyObject(r);
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->keys[i]->ns && strcmp(t->keys[i]->ns, ns) == 0 && t->keys[i]->revoked_ms == 0)
            t->keys[i]->revoked_ms = now;
    return 0;
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char when[32];
    tine_fmt_rfc3339_ms((uint64_t)ms, when);
    return json_string(when);
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *tn_key_json(const tn_key_t *k)
{
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id", k->id, "name", k->name, "namespace",
                     string_or_null(k->ns), "role", k->role, "app", string_or_null(k->app), "created",
                     time_or_null(k->created_ms), "created_by", string_or_null(k->created_by), "revoked",
                     time_or_null(k->revoked_ms), "expires", time_or_null(k->expires_ms));
}

static int by_creation(const void *a, const void *b)
{
    const tn_key_t *x = *(tn_key_t *const *)a, *y = *(tn_key_t *const *)b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return memcmp(x->id, y->id, TN_KEY_ID_LEN);
}

int tn_keys_list(tn_tenancy_t *t, const char *ns, const char *app, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    redisReply *r = rds_sync_command(t->sync, err, errlen, "HGETALL " RDS_KEY_KEYS);
    if (r == NULL)
        return TINE_EREDIS;
    tn_key_t **keys = xcalloc(r->elements / 2 + 1, sizeof(*keys));
    size_t n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *rec = r->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || !tn_key_id_valid(id->str, id->len) || rec->type != REDIS_REPLY_STRING)
            continue;
        tn_key_t *k = tn__key_parse(id->str, rec->str, rec->len);
        if (k == NULL)
            continue;
        if ((ns && (k->ns == NULL || strcmp(k->ns, ns) != 0)) || (app && (k->app == NULL || strcmp(k->app, app) != 0)))
            tn__key_free(k);
        else
            keys[n++] = k;
    }
    freeReplyObject(r);
    qsort(keys, n, sizeof(*keys), by_creation);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, tn_key_json(keys[i]));
        tn__key_free(keys[i]);
    }
    free(keys);
    *out = arr;
    return 0;
}
