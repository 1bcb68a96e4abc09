/* Secrets of apps, encrypted at rest (docs/secrets.md).
 *
 * Keys:
 *   tine:secrets:{app}        HASH: secret name -> sealed value
 *   tine:secrets:keycheck     a known text sealed with the cluster key the
 *                             first time a secret was set: a node with
 *                             another key refuses to set secrets
 *
 * Values are sealed by common/secret_box.c. */
#include "registry.h"
#include "store_internal.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYCHECK_TEXT "tine secrets key check"
#define KEYCHECK_NAME "keycheck"

/* Checks the node's key against the cluster's (tine:secrets:keycheck),
 * sealing the check with it when there is none yet. Returns 0,
 * TINE_ECONFLICT (another key: the message says so) or TINE_EREDIS. */
static int check_key(reg_store_t *s, const unsigned char key[TINE_SECRET_KEY_LEN], char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = reg__store_cmd(s, err, errlen, "GET " RDS_KEY_SECRETS_KEYCHECK);
        if (r == NULL)
            return TINE_EREDIS;
        if (r->type == REDIS_REPLY_STRING) {
            tine_buf_t b;
            tine_buf_init(&b);
            int rc = tine_secret_open(key, "", KEYCHECK_NAME, r->str, r->len, &b);
            bool ok = rc == 0 && b.len == strlen(KEYCHECK_TEXT) && memcmp(b.data, KEYCHECK_TEXT, b.len) == 0;
            tine_buf_dispose(&b);
            freeReplyObject(r);
            if (ok)
                return 0;
            snprintf(err, errlen,
                     "this node's secrets key is not the key the cluster's secrets are sealed with "
                     "(" RDS_KEY_SECRETS_KEYCHECK " does not open with it): a wrong --secrets-key file?");
            return TINE_ECONFLICT;
        }
        freeReplyObject(r);
        tine_buf_t b;
        tine_buf_init(&b);
        if (tine_secret_seal(key, "", KEYCHECK_NAME, KEYCHECK_TEXT, strlen(KEYCHECK_TEXT), &b) != 0) {
            tine_buf_dispose(&b);
            snprintf(err, errlen, "cannot encrypt with the secrets key");
            return TINE_EINVAL;
        }
        r = reg__store_cmd(s, err, errlen, "SET " RDS_KEY_SECRETS_KEYCHECK " %b NX", b.data, b.len);
        tine_buf_dispose(&b);
        if (r == NULL)
            return TINE_EREDIS;
        bool set = r->type != REDIS_REPLY_NIL;
        freeReplyObject(r);
        if (set)
            return 0;
        /* Another node set it meanwhile: check against that one. */
    }
    snprintf(err, errlen, RDS_KEY_SECRETS_KEYCHECK " keeps changing");
    return TINE_EREDIS;
}

int reg_secrets_set(reg_store_t *s, const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                    const void *value, size_t len, bool *created, char *err, size_t errlen)
{
    int rc = check_key(s, key, err, errlen);
    if (rc != 0)
        return rc;
    tine_buf_t b;
    tine_buf_init(&b);
    rc = tine_secret_seal(key, app, name, value, len, &b);
    if (rc != 0) {
        tine_buf_dispose(&b);
        snprintf(err, errlen, "cannot encrypt the secret");
        return rc;
    }
    redisReply *r = reg__store_cmd(s, err, errlen, "HSET " RDS_KEY_SECRETS_PREFIX "%s %s %b", app, name, b.data, b.len);
    tine_buf_dispose(&b);
    if (r == NULL)
        return TINE_EREDIS;
    *created = r->integer == 1;
    freeReplyObject(r);
    return 0;
}

/* qsort order of names. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int reg_secrets_list(reg_store_t *s, const char *app, char ***names, size_t *n)
{
    char err[256];
    *names = NULL;
    *n = 0;
    redisReply *r = reg__store_cmd(s, err, sizeof err, "HKEYS " RDS_KEY_SECRETS_PREFIX "%s", app);
    if (r == NULL)
        return TINE_EREDIS;
    char **v = xcalloc(r->elements + 1, sizeof(*v));
    for (size_t i = 0; i < r->elements; i++)
        v[i] = xstrndup(r->element[i]->str, r->element[i]->len);
    qsort(v, r->elements, sizeof(*v), name_cmp);
    *names = v;
    *n = r->elements;
    freeReplyObject(r);
    return 0;
}

int reg_secrets_delete(reg_store_t *s, const char *app, const char *name, bool *found, char *err, size_t errlen)
{
    redisReply *r = name ? reg__store_cmd(s, err, errlen, "HDEL " RDS_KEY_SECRETS_PREFIX "%s %s", app, name)
                         : reg__store_cmd(s, err, errlen, "DEL " RDS_KEY_SECRETS_PREFIX "%s", app);
    if (r == NULL)
        return TINE_EREDIS;
    *found = r->integer > 0;
    freeReplyObject(r);
    return 0;
}
