/* Namespaces: the teams that own apps (and keys, and later quotas).
 *
 * Keys:
 *   tine:namespaces           SET of namespace names ("default" is implied:
 *                             it always exists and cannot be deleted)
 *   tine:ns:{ns}              HASH: created (unix ms), by (who created it)
 *   tine:app:{app}:ns         the namespace of an app, set when a version
 *                             goes live (store.c's make_live script), kept
 *                             when the app is deleted (its usage stays
 *                             readable by its namespace); an app registered
 *                             before namespaces existed has none: "default"
 *
 * An app belongs to the namespace its manifest names; the make_live script
 * refuses a version whose namespace does not exist or whose app is
 * registered in another one, so no two namespaces ever share an app name. */
#include "registry.h"
#include "store_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

bool reg_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 63 || name[0] == '-' || name[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
            return false;
    return true;
}

int reg__namespace_refusal(const char *app, const char *ns, bool missing, char *err, size_t errlen)
{
    if (missing) {
        snprintf(err, errlen,
                 "namespace: no namespace named '%s' on this cluster (a cluster admin creates it: tine namespaces "
                 "create %s)",
                 ns, ns);
        return TINE_ENOTFOUND;
    }
    snprintf(err, errlen,
             "app %s exists in namespace %s: app names are unique in the cluster and an app cannot move to another "
             "namespace (delete it first, or choose another name)",
             app, ns);
    return TINE_ECONFLICT;
}

/* Whether namespace `ns` exists ("default" always does). */
static int namespace_exists(reg_store_t *s, const char *ns, bool *exists, char *err, size_t errlen)
{
    if (strcmp(ns, REG_DEFAULT_NAMESPACE) == 0) {
        *exists = true;
        return 0;
    }
    redisReply *r = reg__store_cmd(s, err, errlen, "SISMEMBER " RDS_KEY_NAMESPACES " %s", ns);
    if (r == NULL)
        return TINE_EREDIS;
    *exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return 0;
}

int reg_store_namespace_exists(reg_store_t *s, const char *ns, bool *exists, char *err, size_t errlen)
{
    *exists = false;
    if (!reg_name_valid(ns))
        return 0;
    return namespace_exists(s, ns, exists, err, errlen);
}

int reg_store_app_namespace(reg_store_t *s, const char *app, char **ns, char *err, size_t errlen)
{
    *ns = NULL;
    redisReply *r = reg__store_cmd(s, err, errlen, "GET " RDS_KEY_APP_PREFIX "%s:ns", app);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_STRING)
        *ns = xstrndup(r->str, r->len);
    freeReplyObject(r);
    if (*ns != NULL)
        return 0;
    /* Registered before namespaces existed: the default one. */
    r = reg__store_cmd(s, err, errlen, "SISMEMBER " RDS_KEY_APPS " %s", app);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        *ns = xstrdup(REG_DEFAULT_NAMESPACE);
    freeReplyObject(r);
    return 0;
}

int reg_store_check_namespace(reg_store_t *s, const char *app, const char *ns, char *err, size_t errlen)
{
    bool exists = false;
    if (namespace_exists(s, ns, &exists, err, errlen) != 0)
        return TINE_EREDIS;
    if (!exists)
        return reg__namespace_refusal(app, ns, true, err, errlen);
    redisReply *r = reg__store_cmd(s, err, errlen, "SISMEMBER " RDS_KEY_APPS " %s", app);
    if (r == NULL)
        return TINE_EREDIS;
    bool registered = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!registered)
        return 0;
    char *owner = NULL;
    if (reg_store_app_namespace(s, app, &owner, err, errlen) != 0)
        return TINE_EREDIS;
    int rc = owner && strcmp(owner, ns) != 0 ? reg__namespace_refusal(app, owner, false, err, errlen) : 0;
    free(owner);
    return rc;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int reg_store_namespace_create(reg_store_t *s, const char *ns, const char *by, char *err, size_t errlen)
{
    if (!reg_name_valid(ns)) {
        snprintf(err, errlen,
                 "namespace: '%s' is not a namespace name (1 to 63 lowercase letters, digits and '-', starting and "
                 "ending with a letter or digit)",
                 ns);
        return TINE_EINVAL;
    }
    if (strcmp(ns, REG_DEFAULT_NAMESPACE) == 0) {
        snprintf(err, errlen, "namespace %s exists (it always does)", ns);
        return TINE_ECONFLICT;
    }
    redisReply *r =
        reg__store_cmd(s, err, errlen, "EVAL %s 2 " RDS_KEY_NAMESPACES " " RDS_KEY_NS_PREFIX "%s %s %" PRId64 " %s",
                       "if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end "
                       "redis.call('HSET', KEYS[2], 'created', ARGV[2], 'by', ARGV[3]) "
                       "return 1",
                       ns, ns, now_ms(), by ? by : "");
    if (r == NULL)
        return TINE_EREDIS;
    bool created = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!created) {
        snprintf(err, errlen, "namespace %s exists", ns);
        return TINE_ECONFLICT;
    }
    return 0;
}

/* Removes a namespace unless an app registered in it remains: returns 0
 * when removed, -1 when it does not exist, or the sorted names of its apps. */
static const char delete_script[] =
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end "
    "local apps = {} "
    "for _, app in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "  if redis.call('GET', '" RDS_KEY_APP_PREFIX "' .. app .. ':ns') == ARGV[1] then apps[#apps + 1] = app end "
    "end "
    "if #apps > 0 then table.sort(apps) return apps end "
    "redis.call('SREM', KEYS[1], ARGV[1]) "
    "redis.call('DEL', KEYS[3]) "
    "return 0";

int reg_store_namespace_delete(reg_store_t *s, const char *ns, char *err, size_t errlen)
{
    if (strcmp(ns, REG_DEFAULT_NAMESPACE) == 0) {
        snprintf(err, errlen, "the %s namespace cannot be deleted", ns);
        return TINE_EINVAL;
    }
    if (!reg_name_valid(ns)) {
        snprintf(err, errlen, "no namespace named '%s'", ns);
        return TINE_ENOTFOUND;
    }
    redisReply *r =
        reg__store_cmd(s, err, errlen, "EVAL %s 3 " RDS_KEY_NAMESPACES " " RDS_KEY_APPS " " RDS_KEY_NS_PREFIX "%s %s",
                       delete_script, ns, ns);
    if (r == NULL)
        return TINE_EREDIS;
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        snprintf(err, errlen, "no namespace named '%s'", ns);
        rc = TINE_ENOTFOUND;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        tine_buf_t apps;
        tine_buf_init(&apps);
        for (size_t i = 0; i < r->elements && i < 10; i++)
            tine_buf_appendf(&apps, "%s%s", i ? ", " : "", r->element[i]->str);
        if (r->elements > 10)
            tine_buf_appendf(&apps, " and %zu more", r->elements - 10);
        snprintf(err, errlen, "namespace %s still has %zu app%s (%s): delete them first", ns, r->elements,
                 r->elements == 1 ? "" : "s", apps.data);
        tine_buf_dispose(&apps);
        rc = TINE_ECONFLICT;
    }
    freeReplyObject(r);
    return rc;
}

int reg_store_namespace_list(reg_store_t *s, reg_namespace_t **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    redisReply *names = reg__store_cmd(s, err, errlen, "SMEMBERS " RDS_KEY_NAMESPACES);
    if (names == NULL)
        return TINE_EREDIS;
    size_t count = names->elements + 1;
    reg_namespace_t *ns = xcalloc(count, sizeof(*ns));
    ns[0].name = xstrdup(REG_DEFAULT_NAMESPACE);
    for (size_t i = 0; i < names->elements; i++)
        ns[i + 1].name = xstrndup(names->element[i]->str, names->element[i]->len);
    freeReplyObject(names);
    /* default first, then by name */
    for (size_t i = 2; i < count; i++)
        for (size_t j = i; j > 1 && strcmp(ns[j - 1].name, ns[j].name) > 0; j--) {
            reg_namespace_t t = ns[j];
            ns[j] = ns[j - 1];
            ns[j - 1] = t;
        }
    int rc = 0;
    for (size_t i = 1; i < count && rc == 0; i++) {
        redisReply *r = reg__store_cmd(s, err, errlen, "HMGET " RDS_KEY_NS_PREFIX "%s created by", ns[i].name);
        if (r == NULL) {
            rc = TINE_EREDIS;
            break;
        }
        if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING)
            ns[i].created_ms = strtoll(r->element[0]->str, NULL, 10);
        if (r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
            ns[i].created_by = xstrdup(r->element[1]->str);
        freeReplyObject(r);
    }
    /* Apps per namespace: every registered app's (default when unset). */
    char **apps = NULL;
    size_t napps = 0;
    if (rc == 0 && reg_store_list_apps(s, &apps, &napps) != 0) {
        snprintf(err, errlen, "redis is unreachable");
        rc = TINE_EREDIS;
    }
    for (size_t a = 0; a < napps; a++) {
        char *owner = NULL;
        if (rc == 0 && reg_store_app_namespace(s, apps[a], &owner, err, errlen) != 0)
            rc = TINE_EREDIS;
        for (size_t i = 0; owner && i < count; i++)
            if (strcmp(ns[i].name, owner) == 0)
                ns[i].apps++;
        free(owner);
        free(apps[a]);
    }
    free(apps);
    if (rc != 0) {
        reg_namespaces_free(ns, count);
        return rc;
    }
    *out = ns;
    *n = count;
    return 0;
}

void reg_namespaces_free(reg_namespace_t *ns, size_t n)
{
    for (size_t i = 0; ns && i < n; i++) {
        free(ns[i].name);
        free(ns[i].created_by);
    }
    free(ns);
}
