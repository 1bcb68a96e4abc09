/* Every Redis key and channel tine uses, with the module that owns it: only
 * the owner reads or writes a key (others ask the owner through its public
 * header). The table "Redis keys" of docs/ARCHITECTURE.md describes the same
 * keys (tests/unit/redis/test_keys.c checks that both name the same ones).
 * Names in braces are filled in by the owner. */
#ifndef TINE_REDIS_KEYS_H
#define TINE_REDIS_KEYS_H

/* registry/ (store.c, live.c) */
#define RDS_KEY_APPS "tine:apps"           /* set of app names */
#define RDS_KEY_APP_PREFIX "tine:app:"     /* + {app}:seq, :live, :v:{N}, :ns, :tags, :split */
#define RDS_KEY_BLOB_PREFIX "tine:blob:"   /* + {sha256}: one file's contents */
#define RDS_CHANNEL_DEPLOYS "tine:deploys" /* pub/sub: "{app} {version}", "{app} release" */
#define RDS_KEY_DEPLOYING "tine:deploying"            /* set of the ids of deploys under way */
#define RDS_KEY_DEPLOYING_SEQ "tine:deploying:seq"    /* last deploy id handed out */
#define RDS_KEY_DEPLOYING_PREFIX "tine:deploying:"    /* + {id}: the blobs a deploy under way stores */
#define RDS_KEY_NAMESPACES "tine:namespaces"          /* set of namespace names (default implied) */
#define RDS_KEY_NS_PREFIX "tine:ns:"                  /* + {ns}: hash of a namespace (created, by) */
#define RDS_KEY_SECRETS_PREFIX "tine:secrets:"        /* + {app}: hash: secret name -> AES-256-GCM sealed value */
#define RDS_KEY_SECRETS_KEYCHECK "tine:secrets:keycheck" /* a known text sealed with the cluster's secrets key */
#define RDS_KEY_HOSTS "tine:hosts"                    /* hash: own host (manifest host:) -> the app serving it */
#define RDS_KEY_ROLLOUTS "tine:rollouts"              /* set of the apps with a rollout running or paused */
#define RDS_KEY_ROLLOUTS_LEASE "tine:rollouts:lease"  /* the node driving rollouts (PX lease) */
#define RDS_KEY_ROLLOUT_PREFIX "tine:rollout:"        /* + {app}: hash of its rollout; {app}:stats:{N}: counters */

/* tenancy/ (keys.c, audit.c, quota.c) */
#define RDS_KEY_KEYS "tine:keys"                  /* hash: API key id -> JSON record (hash of the secret) */
#define RDS_KEY_KEYS_GEN "tine:keys:gen"          /* counter bumped by every key change */
#define RDS_CHANNEL_KEYS "tine:keys:changes"      /* pub/sub: "created {id}", "revoked {id}" */
#define RDS_KEY_AUDIT "tine:audit"                /* stream of changes and refusals */
#define RDS_KEY_QUOTAS "tine:quotas"              /* set of the namespaces with a quota */
#define RDS_KEY_QUOTAS_GEN "tine:quotas:gen"      /* counter bumped by every quota change */
#define RDS_KEY_QUOTA_PREFIX "tine:quota:"        /* + {ns}: its limits; {ns}:nodes, :minute:{N}, :spend:{day} */

/* invoker/ (hostcall.c: tine.kv) */
#define RDS_KEY_KV_PREFIX "tine:kv:"           /* + {app}:{key} */
#define RDS_KEY_KVSTAT_PREFIX "tine:kvstat:"   /* + {app}: hash of the app's KV usage (keys, bytes) */
#define RDS_KEY_KVEXP_PREFIX "tine:kvexp:"     /* + {app}: sorted set of its keys with a ttl, by expiry */
#define RDS_KEY_KVTTL_PREFIX "tine:kvttl:"     /* + {app}: hash of the bytes counted for those keys */

/* events/ */
#define RDS_KEY_EVENTS "tine:events"                   /* stream: the event queue */
#define RDS_EVENTS_GROUP "tine"                        /* its consumer group (not a key) */
#define RDS_KEY_RETRY "tine:retry"                     /* sorted set of retries by due time */
#define RDS_KEY_DLQ_PREFIX "tine:dlq:"                 /* + {app}: stream of dead letters */
#define RDS_KEY_RECENT_PREFIX "tine:recent:"           /* + {app}:{kind}:{fn}: list of a trigger's last events */
#define RDS_KEY_LOGPOS_PREFIX "tine:logpos:"           /* + {node}:{path}: position in a followed file */
#define RDS_KEY_TICK_PREFIX "tine:tick:"               /* + {app}:{fn}:{trigger#}:{tick_ms}: lock of one tick */
#define RDS_KEY_SEEN_PREFIX "tine:seen:"               /* + {event id}: container event appended */
#define RDS_KEY_NODE_PREFIX "tine:node:"               /* + {id}: heartbeat */
#define RDS_KEY_NODES "tine:nodes"                     /* hash of registered nodes */
#define RDS_KEY_NODES_ANNOUNCED "tine:nodes:announced" /* hash of nodes whose join was announced */
#define RDS_KEY_NODES_INFO "tine:nodes:info"           /* hash: node id -> its status (JSON), kept a while when gone */
#define RDS_KEY_DRAIN_PREFIX "tine:drain:"             /* + {id}: a request that the node drain (tine drain) */
#define RDS_KEY_NODES_CHECKED "tine:nodes:checked"     /* hash: when nodes were last judged, and may be next */

/* billing/ */
#define RDS_KEY_ACTS_PREFIX "tine:acts:"     /* + {app}: list of activation records */
#define RDS_KEY_USAGE_PREFIX "tine:usage:"   /* + {app}:{YYYY-MM-DD}: usage hash */
#define RDS_CHANNEL_LOGS_PREFIX "tine:logs:" /* + {app}: pub/sub of log lines */

#endif
