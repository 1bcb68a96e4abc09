/* Shared between the files of tenancy/ (tenancy.c: the node's copy of the
 * keys and its connections; keys.c: key records and admin calls; audit.c). */
#ifndef TINE_TENANCY_INTERNAL_H
#define TINE_TENANCY_INTERNAL_H

#include "tenancy.h"
#include "tine_common.h"
#include "tine_list.h"
#include "tine_redis.h"

#include <jansson.h>
#include <uv.h>

struct tn_tenancy {
    uv_loop_t *loop;
    char *node_id;
    rds_sync_t *sync;    /* admin calls: create, revoke, list, audit reads */
    rds_async_t *cmd;    /* fetches, the gen check, audit appends */
    rds_async_t *sub;    /* RDS_CHANNEL_KEYS */
    uv_timer_t *recheck; /* heap: closed apart from t */
    tn_key_t **keys;     /* every key, sorted by id */
    size_t nkeys, capkeys;
    long long gen;  /* RDS_KEY_KEYS_GEN when the keys were last read whole */
    bool reloading; /* a whole read is under way */
    long long reload_gen;
    tine_list_t fetches; /* tn_fetch_t waiting for their reply */
    bool closing;        /* tn_free was called */
    int handles_open;    /* closes still to come before t is freed */
};

/* Parses a stored record (JSON) of key `id` into a fresh key; NULL when it
 * is not one (a line goes to tined's log). */
tn_key_t *tn__key_parse(const char *id, const char *json, size_t len);
void tn__key_free(tn_key_t *k);

/* Makes k the node's copy of its id (replacing and freeing an older one). */
void tn__keys_put(tn_tenancy_t *t, tn_key_t *k);

/* Replaces the node's keys with those of an HGETALL reply of RDS_KEY_KEYS. */
void tn__keys_replace(tn_tenancy_t *t, const redisReply *all);

#endif
