/* Shared between the files of the registry's store (store.c, namespaces.c). */
#ifndef TINE_STORE_INTERNAL_H
#define TINE_STORE_INTERNAL_H

#include "registry.h"
#include "tine_redis.h"

struct reg_store {
    rds_sync_t *redis;
};

/* Runs one command given printf-style (hiredis' format) on the store's
 * connection. Returns the reply (freeReplyObject it) or NULL with a message
 * in err; an error reply is turned into NULL too. */
redisReply *reg__store_cmd(reg_store_t *s, char *err, size_t errlen, const char *fmt, ...);

/* After a write the caller acknowledges: confirmed by a replica (when the
 * master has one), or TINE_EREDIS with `what` happened on the master
 * followed by why it is not confirmed and `again` (what to do). */
int reg__store_confirm(reg_store_t *s, const char *what, const char *again, char *err, size_t errlen);

/* Makes `version` live at the end of its rollout (reg_store_promote,
 * allowed while the rollout is under way). */
int reg__store_rollout_promote(reg_store_t *s, const char *app, uint64_t version, char *err, size_t errlen);

/* The message of a deploy refused for its namespace: `ns` does not exist
 * (missing) or the app is registered in namespace `ns`. Returns
 * TINE_ENOTFOUND or TINE_ECONFLICT. */
int reg__namespace_refusal(const char *app, const char *ns, bool missing, char *err, size_t errlen);

#endif
