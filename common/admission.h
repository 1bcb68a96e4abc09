/* Admission by namespace: what the invoker asks before it queues a call or
 * starts a sandbox, and tells when either ends. tenancy's quotas answer
 * (tenancy/quota.c), tined wires them (inv_config_t.admission). Types only,
 * so that the module answering need not link the invoker. The invoker owns
 * them: prefix inv_. */
#ifndef TINE_ADMISSION_H
#define TINE_ADMISSION_H

#include <stdint.h>

/* Why a call or a sandbox was refused: the quota's name (static: "concurrency",
 * "sandboxes", "per_minute", "memory_mb", "spend_per_day"), when to try again
 * (seconds, at least 1) and one line naming the namespace, the quota and its
 * use. */
typedef struct {
    const char *quota;
    uint32_t retry_after_s;
    char message[384];
} inv_refusal_t;

typedef enum {
    INV_ADMIT_CALL,    /* a call, from its acceptance to its end (queued or running) */
    INV_ADMIT_SANDBOX, /* a sandbox of `memory_mb`, from its start to its close */
} inv_admit_kind_t;

/* The answer to an admission that waited: rc 0 (admitted: its `end` follows)
 * or TINE_EQUOTA with the refusal (borrowed for the call). */
typedef void (*inv_admit_done_cb)(void *ticket, int rc, const inv_refusal_t *r);

/* The hooks. All run on the loop. */
typedef struct inv_admission {
    /* The admission state of namespace `ns`, kept by the pools of its apps
     * for as long as the invoker lives. */
    void *(*ns)(void *data, const char *ns);
    /* Whether one more of `kind` may begin in namespace state `ns`: 0
     * (admitted: `end` follows exactly once), TINE_EQUOTA (refused, *r
     * filled), or -EAGAIN: the answer needs Redis, and done(ticket, ...)
     * comes later, exactly once, unless forget(ns, ticket) is called
     * first. done never runs inside begin, end or forget. */
    int (*begin)(void *ns, inv_admit_kind_t kind, uint32_t memory_mb, inv_admit_done_cb done, void *ticket,
                 inv_refusal_t *r);
    /* The waiting admission of `ticket` is no longer wanted: done never runs. */
    void (*forget)(void *ns, void *ticket);
    /* What began (admitted) ended. */
    void (*end)(void *ns, inv_admit_kind_t kind, uint32_t memory_mb);
    void *data;
} inv_admission_t;

#endif
