/* Fair share: how the node's sandboxes are shared between apps, so that one
 * app cannot starve the others (docs/ARCHITECTURE.md, "Fair share between
 * apps"). These are the rules only, as pure functions of counts of
 * sandboxes that are not closing (an app's: every function and version of
 * it, starting, idle and busy); pool.c gathers the counts and applies the
 * verdicts.
 *
 * The sharing is max-min fair and adapts to who is there: an app alone may
 * use the whole cap; while another app waits for room, the room goes to the
 * app holding fewer sandboxes, and an app holding at least two more than a
 * waiting one gives a sandbox back as soon as one of its calls ends. Every
 * app may start its first sandbox, past the cap when the others' calls fill
 * it (up to the reserve): the guaranteed minimum. */
#include "invoker_internal.h"

inv_fair_verdict_t inv__fair_start(const inv_fair_t *f)
{
    /* The room is theirs: a waiting app holds fewer. */
    if (f->waiting_min != INV_FAIR_NONE && f->app_live > f->waiting_min)
        return INV_FAIR_WAIT;
    if (f->node_live < f->cap)
        return INV_FAIR_START;
    /* The guaranteed minimum: an app's first sandbox does not wait for the
     * others' calls to end. */
    if (f->app_live == 0 && f->node_live - f->cap < f->reserve)
        return INV_FAIR_EVICT_ELSE_START;
    return INV_FAIR_EVICT_ELSE_WAIT;
}

bool inv__fair_may_evict(size_t taker_live, size_t victim_live, bool same_app)
{
    /* An app's idle sandboxes are its share while it holds no more than the
     * taker: closing one would only move the unfairness to it. */
    return same_app || victim_live > taker_live;
}

bool inv__fair_gives_back(const inv_fair_t *f)
{
    /* Past the cap (the reserve in use): back under it as calls end, but an
     * app's only sandbox stays (it may be the one past the cap, which the
     * reserve allows). */
    if (f->node_live > f->cap && f->app_live > 1)
        return true;
    /* Moving one sandbox to the waiting app leaves this one no poorer than
     * it. */
    return f->waiting_min != INV_FAIR_NONE && f->app_live > f->waiting_min + 1;
}
