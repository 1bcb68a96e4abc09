/* Pools and dispatch: one pool of sandboxes per (app version, function),
 * found in O(1) in the pool table; a pool's sandboxes, their states (a
 * sandbox is STARTING, IDLE, BUSY or CLOSING) and the one timer each has;
 * dispatch of queued calls to idle, starting or busy sandboxes (pipelining:
 * short calls sent behind a busy sandbox's running call, see
 * pool_pipe_depth); warm sandboxes kept ready and the idle timeout; the
 * node-wide cap, shared between apps by the rules of fair_share.c: at the
 * cap the least recently used idle sandbox of another pool makes room when
 * the sharing allows, else the calls wait (the pool is "blocked") until
 * room is freed. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_timer(uv_timer_t *t);
static bool pool_owes_sandbox(const inv_pool_t *p);

/* --------------------------------------------------------- the pool table */

#define POOL_TABLE_MIN 16 /* buckets at first; doubled when the pools outnumber them */

/* The bucket of (v, fn_index) in a table of `n` buckets (a power of two). */
static size_t pool_bucket(const reg_app_version_t *v, size_t fn_index, size_t n)
{
    uint64_t h = (uint64_t)(uintptr_t)v * 0x9e3779b97f4a7c15ull + (uint64_t)fn_index * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 31;
    return (size_t)h & (n - 1);
}

/* Makes the table `n` buckets and puts every pool in its bucket. */
static void pool_table_resize(inv_invoker_t *inv, size_t n)
{
    free(inv->pool_table);
    inv->pool_table = xmalloc(n * sizeof(*inv->pool_table));
    inv->pool_buckets = n;
    for (size_t i = 0; i < n; i++)
        tine_list_init(&inv->pool_table[i]);
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pools) {
        inv_pool_t *p = tine_list_entry(l, inv_pool_t, link);
        tine_list_init(&p->hash_link);
        tine_list_insert_head(&inv->pool_table[pool_bucket(p->version, p->fn_index, n)], &p->hash_link);
    }
}

void inv__pools_init(inv_invoker_t *inv)
{
    tine_list_init(&inv->pools);
    tine_list_init(&inv->apps);
    tine_list_init(&inv->blocked);
    pool_table_resize(inv, POOL_TABLE_MIN);
}

/* The record of app `name`, made on first use; each pool holds it once. */
static inv_app_t *app_hold(inv_invoker_t *inv, const char *name)
{
    inv_app_t *a = NULL;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->apps) {
        inv_app_t *x = tine_list_entry(l, inv_app_t, link);
        if (strcmp(x->name, name) == 0) {
            a = x;
            break;
        }
    }
    if (a == NULL) {
        size_t len = strlen(name);
        a = xcalloc(1, sizeof(*a) + len + 1);
        memcpy(a->name, name, len + 1);
        tine_list_insert_head(&inv->apps, &a->link);
    }
    a->npools++;
    return a;
}

/* Gives back one pool's hold of app record `a`, freed with the last. */
static void app_release(inv_app_t *a)
{
    if (--a->npools > 0)
        return;
    tine_list_remove(&a->link);
    free(a);
}

/* The pool of function `fn_index` of `v`, or NULL when there is none. */
static inv_pool_t *pool_find(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pool_table[pool_bucket(v, fn_index, inv->pool_buckets)]) {
        inv_pool_t *p = tine_list_entry(l, inv_pool_t, hash_link);
        if (p->version == v && p->fn_index == fn_index)
            return p;
    }
    return NULL;
}

inv_pool_t *inv__pool_get(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index)
{
    inv_pool_t *p = pool_find(inv, v, fn_index);
    if (p != NULL)
        return p;
    p = xcalloc(1, sizeof(*p));
    p->inv = inv;
    /* The live table hands versions out as const; the pool's reference is
     * counted like any other (and keeps its address from being reused while
     * it keys the table). */
    p->version = (reg_app_version_t *)v;
    reg_app_version_retain(p->version);
    p->fn_index = fn_index;
    p->fn = &v->manifest->functions[fn_index];
    p->app = app_hold(inv, v->app);
    if (inv->cfg.admission)
        p->admit = inv->cfg.admission->ns(inv->cfg.admission->data, v->manifest->namespace);
    p->warm = p->fn->warm;
    tine_list_init(&p->sandboxes);
    tine_list_init(&p->idle);
    tine_list_init(&p->starting_free);
    tine_list_init(&p->queue);
    tine_list_init(&p->blocked_link);
    tine_list_insert_head(&inv->pools, &p->link);
    tine_list_insert_head(&inv->pool_table[pool_bucket(v, fn_index, inv->pool_buckets)], &p->hash_link);
    if (++inv->npools > inv->pool_buckets)
        pool_table_resize(inv, inv->pool_buckets * 2);
    return p;
}

/* The pool's calls wait for room under the node-wide cap: it joins the
 * invoker's blocked list, tried again by inv__pools_kick_blocked. */
static void pool_block(inv_pool_t *p)
{
    if (tine_list_linked(&p->blocked_link))
        return;
    tine_list_insert_head(&p->inv->blocked, &p->blocked_link);
    p->inv->ncap_blocked++;
}

/* The pool's calls no longer wait for room (none is queued, or it is tried
 * again). */
static void pool_unblock(inv_pool_t *p)
{
    if (!tine_list_linked(&p->blocked_link))
        return;
    tine_list_remove(&p->blocked_link);
    p->inv->ncap_blocked--;
}

/* Frees a retired pool that has nothing left: no sandbox, no queued call,
 * no call waiting for its admission. */
static void pool_maybe_free(inv_pool_t *p)
{
    if (!p->retired || p->nsandboxes || p->queued || p->nadmitting)
        return;
    inv_invoker_t *inv = p->inv;
    if (p->admit_waiting)
        inv->cfg.admission->forget(p->admit, p);
    pool_unblock(p);
    tine_list_remove(&p->link);
    tine_list_remove(&p->hash_link);
    inv->npools--;
    app_release(p->app);
    reg_app_version_release(p->version);
    free(p->spec_frame);
    free(p);
    inv__maybe_free(inv);
}

/* The env of fn as a JSON object's text (malloc'd). */
static char *fn_env_json(const reg_function_t *fn)
{
    json_t *env = json_object();
    for (size_t i = 0; i < fn->env_len; i++)
        json_object_set_new(env, fn->env[i].key, json_string(fn->env[i].value));
    char *env_json = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return env_json;
}

/* The other functions of fn's co-location group in manifest m as the JSON
 * array of sbx_spec_t.group_json (malloc'd), and in *memory_mb the sum of
 * the members' memory: a group's sandbox hosts them all. */
static char *group_members_json(const reg_manifest_t *m, const reg_function_t *fn, uint32_t *memory_mb)
{
    json_t *arr = json_array();
    *memory_mb = fn->memory_mb;
    for (size_t i = 0; i < m->functions_len; i++) {
        const reg_function_t *g = &m->functions[i];
        if (g == fn || g->group == NULL || strcmp(g->group, fn->group) != 0)
            continue;
        char *env = fn_env_json(g);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "function", g->name, "handler_file",
                                             g->handler_file, "handler_export", g->handler_export, "memory_mb",
                                             (int)g->memory_mb, "timeout_ms", (int)g->timeout_ms, "env_json", env));
        free(env);
        *memory_mb += g->memory_mb;
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

const char *inv__pool_spec_frame(inv_pool_t *p, size_t *len)
{
    if (p->spec_frame == NULL) {
        const reg_function_t *fn = p->fn;
        char *env_json = fn_env_json(fn);
        sbx_spec_t spec = {
            .runtime = fn->runtime == REG_RUNTIME_EXEC     ? SBX_RUNTIME_EXEC
                       : fn->runtime == REG_RUNTIME_PYTHON ? SBX_RUNTIME_PYTHON
                       : fn->runtime == REG_RUNTIME_NODE   ? SBX_RUNTIME_NODE
                                                           : SBX_RUNTIME_LUA,
            .network = fn->network,
            .app = p->version->app,
            .version = p->version->version,
            .function = fn->name,
            .bundle_dir = p->version->bundle_dir,
            .handler_file = fn->handler_file,
            .handler_export = fn->handler_export,
            .memory_mb = fn->memory_mb,
            .timeout_ms = fn->timeout_ms,
            .env_json = env_json,
            .allow_outbound = (const char *const *)p->version->manifest->allow_outbound,
            .allow_outbound_len = p->version->manifest->allow_outbound_len,
            .allow_outbound_set = p->version->manifest->allow_outbound_set,
        };
        char *group_json = NULL;
        if (fn->group != NULL && fn->runtime == REG_RUNTIME_LUA) {
            group_json = group_members_json(p->version->manifest, fn, &spec.group_memory_mb);
            spec.group_json = group_json;
            spec.max_invoke_depth =
                p->inv->cfg.max_invoke_depth ? p->inv->cfg.max_invoke_depth : INV_DEFAULT_INVOKE_DEPTH;
            spec.id_prefix = p->inv->node_prefix;
        }
        p->spec_frame = sbx_spec_frame(&spec, &p->spec_frame_len);
        free(group_json);
        free(env_json);
    }
    *len = p->spec_frame_len;
    return p->spec_frame;
}

/* ------------------------------------------------------------- the queue */

void inv__pool_enqueue(inv_pool_t *p, inv_call_t *c)
{
    tine_list_insert_tail(&p->queue, &c->link);
    p->queued++;
}

inv_call_t *inv__pool_pop_call(inv_pool_t *p)
{
    p->queued--;
    return tine_list_entry(tine_list_pop_head(&p->queue), inv_call_t, link);
}

void inv__pool_admission_over(inv_pool_t *p)
{
    pool_maybe_free(p);
}

void inv__pool_dequeue(inv_pool_t *p, inv_call_t *c)
{
    tine_list_remove(&c->link);
    p->queued--;
    if (p->queued == 0 && tine_list_linked(&p->blocked_link)) {
        /* Others may have waited for it to get room first. */
        pool_unblock(p);
        inv__pools_kick_blocked(p->inv);
    }
    pool_maybe_free(p);
}

/* -------------------------------------------------- a pool's sandboxes */

/* Makes a sandbox idle: ready for the next call (the most recently used
 * first), closed after the idle timeout unless the pool keeps it warm. */
static void sandbox_set_idle(inv_sandbox_t *s, uint64_t now)
{
    inv_pool_t *p = s->pool;
    if (s->state == SBX_BUSY)
        p->nbusy--;
    s->state = SBX_IDLE;
    s->last_used = now;
    tine_list_insert_head(&p->idle, &s->free_link);
    p->nidle++;
    uv_timer_start(&s->timer, on_timer, p->inv->cfg.idle_timeout_ms, 0);
}

/* An idle sandbox leaves the pool's idle list (it takes a call or closes). */
static void sandbox_unidle(inv_sandbox_t *s)
{
    tine_list_remove(&s->free_link);
    s->pool->nidle--;
}

/* The sandbox runs a call (counted in the pool's busy ones). */
static void sandbox_set_busy(inv_sandbox_t *s)
{
    if (s->state != SBX_BUSY)
        s->pool->nbusy++;
    s->state = SBX_BUSY;
}

/* The sandbox is no longer a STARTING one without a call. */
static void sandbox_unfree(inv_sandbox_t *s)
{
    if (s->free_start) {
        s->free_start = false;
        tine_list_remove(&s->free_link);
        s->pool->nstarting_free--;
    }
}

/* Call c runs on s from `now` (its INVOKE is in the pipe): its time and its
 * timeout start. */
static void sandbox_start_call(inv_sandbox_t *s, inv_call_t *c, uint64_t now)
{
    s->call = c;
    c->dispatched_at = now;
    uv_timer_start(&s->timer, on_timer, s->pool->fn->timeout_ms, 0);
}

/* The calls pipelined behind a sandbox's running call never started (the
 * sandbox runs them in order, after answering the one before): they go back
 * to the front of the pool's queue in their order, to be sent again. */
static void sandbox_unpipe(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &s->piped) {
        tine_list_entry(l, inv_call_t, link)->sandbox = NULL;
        p->queued++;
        p->requeued++;
        s->invocations--;
    }
    tine_list_splice_head(&p->queue, &s->piped);
    s->npiped = 0;
}

/* The last handle of a closing sandbox closed: it is freed, and what waited
 * for it to go gets its turn. */
static void on_sandbox_handle_closed(uv_handle_t *h)
{
    inv_sandbox_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    inv_pool_t *p = s->pool;
    inv_invoker_t *inv = p->inv;
    tine_list_remove(&s->pool_link);
    p->nsandboxes--;
    free(s->rbuf);
    free(s->pend);
    free(s);
    /* A queued call may now get a sandbox in place of the closed one, a warm
     * pool refills, and room freed under the cap goes to who waits for it. */
    inv__pool_dispatch(p);
    inv__pools_kick_blocked(inv);
    pool_maybe_free(p);
}

void inv__sandbox_close(inv_sandbox_t *s)
{
    if (s->state == SBX_CLOSING)
        return;
    inv_pool_t *p = s->pool;
    if (s->state == SBX_IDLE)
        sandbox_unidle(s);
    sandbox_unfree(s);
    inv__spawner_forget(s);
    inv__sandbox_unflush(s);
    sandbox_unpipe(s);
    inv__spawner_undefer(s);
    if (s->state == SBX_BUSY)
        p->nbusy--;
    s->state = SBX_CLOSING;
    p->nlive--;
    p->app->nlive--;
    p->inv->nlive--;
    if (s->admitted)
        p->inv->cfg.admission->end(p->admit, INV_ADMIT_SANDBOX, p->fn->memory_mb);
    s->admitted = false;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->pipe, on_sandbox_handle_closed);
    uv_close((uv_handle_t *)&s->wpipe, on_sandbox_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_sandbox_handle_closed);
}

void inv__sandbox_start_failed(inv_sandbox_t *s, int code, int status, const char *msg)
{
    inv_call_t *c = s->call;
    s->call = NULL;
    s->pool->start_failed = true;
    inv__sandbox_kill(s);
    inv__sandbox_close(s);
    if (c)
        inv__call_fail(c, code, status, msg);
}

/* Kills sandbox s and closes it; its running call `c` (taken off it by the
 * caller, may be NULL) fails with code 502 or 504 and `msg`. */
static void sandbox_kill_failing(inv_sandbox_t *s, inv_call_t *c, int code, int status, const char *msg)
{
    inv__sandbox_kill(s);
    inv__sandbox_close(s);
    if (c)
        inv__call_fail(c, code, status, msg);
}

/* Gives call c to sandbox s, which is idle or starting without a call. On an
 * idle sandbox the call starts now; on a starting one its INVOKE waits in the
 * pipe behind the spec and the call counts as a cold one. */
static void sandbox_take_call(inv_sandbox_t *s, inv_call_t *c)
{
    s->call = c;
    c->sandbox = s;
    s->invocations++;
    int r = 0;
    if (s->state == SBX_IDLE) {
        sandbox_unidle(s);
        sandbox_set_busy(s);
        sandbox_start_call(s, c, tine_now_ns());
        r = inv__sandbox_send_call(s, c);
    } else {
        sandbox_unfree(s);
        c->cold = true;
        if (s->pid > 0)
            r = inv__sandbox_send_call(s, c);
        /* else sent with the spec once a process is attached */
    }
    if (r != 0) {
        s->call = NULL;
        sandbox_kill_failing(s, c, TINE_ECRASH, 502, "the sandbox's pipe is closed");
    }
}

/* One timer per sandbox, by state: the start limit, the running call's
 * timeout (504, the sandbox killed: the next call gets a fresh one), or
 * the idle timeout (scale to zero, down to the warm ones). */
static void on_timer(uv_timer_t *t)
{
    inv_sandbox_t *s = t->data;
    inv_pool_t *p = s->pool;
    char msg[160];
    switch (s->state) {
    case SBX_STARTING:
        snprintf(msg, sizeof(msg), "the sandbox of %s did not finish loading within %" PRIu32 " ms", p->fn->name,
                 p->fn->timeout_ms > INV_MIN_START_MS ? p->fn->timeout_ms : INV_MIN_START_MS);
        tine_log_kv(TINE_LOG_ERROR, TINE_LOG_KV("app", p->version->app, "function", p->fn->name), "%s (pid %d); killed",
                    msg, (int)s->pid);
        inv__sandbox_start_failed(s, TINE_ETIMEOUT, 504, msg);
        return;
    case SBX_BUSY: {
        inv_call_t *c = s->call;
        if (c == NULL)
            return;
        s->call = NULL;
        snprintf(msg, sizeof(msg), "function %s timed out after %" PRIu32 " ms", p->fn->name, p->fn->timeout_ms);
        sandbox_kill_failing(s, c, TINE_ETIMEOUT, 504, msg);
        return;
    }
    case SBX_IDLE:
        /* The most recently used stay (they are at the head of the list). */
        if (p->retired || p->nidle > p->warm)
            inv__sandbox_close(s);
        return;
    case SBX_CLOSING:
        return;
    }
}

/* Starts one sandbox in pool p, for call c or (c NULL) to keep warm: the
 * spawner gives it a spare blank process or has it wait for the zygote.
 * `admitted`: its namespace admitted it (pool_admit_sandbox), the
 * admission ends when it closes. Returns 0, or an error after failing c. */
static int pool_start(inv_pool_t *p, inv_call_t *c, bool admitted)
{
    inv_invoker_t *inv = p->inv;
    if (inv->zygote_gone) {
        if (admitted)
            inv->cfg.admission->end(p->admit, INV_ADMIT_SANDBOX, p->fn->memory_mb);
        if (c)
            inv__call_fail(c, TINE_ECRASH, 503, "cannot start a sandbox: the zygote is gone");
        return TINE_ECRASH;
    }
    inv_sandbox_t *s = xcalloc(1, sizeof(*s));
    s->pool = p;
    s->state = SBX_STARTING;
    s->admitted = admitted;
    s->spawned_at = tine_now_ns();
    tine_list_init(&s->free_link);
    tine_list_init(&s->wait_link);
    tine_list_init(&s->flush_link);
    tine_list_init(&s->piped);
    uv_pipe_init(inv->loop, &s->pipe, 0);
    uv_pipe_init(inv->loop, &s->wpipe, 0);
    uv_timer_init(inv->loop, &s->timer);
    s->pipe.data = s;
    s->wpipe.data = s;
    s->timer.data = s;
    s->handles_open = 3;
    tine_list_insert_head(&p->sandboxes, &s->pool_link);
    p->nsandboxes++;
    p->nlive++;
    p->app->nlive++;
    inv->nlive++;
    s->free_start = true;
    tine_list_insert_tail(&p->starting_free, &s->free_link);
    p->nstarting_free++;
    if (c)
        sandbox_take_call(s, c);
    inv__spawner_give(s);
    return 0;
}

void inv__sandbox_loading(inv_sandbox_t *s)
{
    const reg_function_t *fn = s->pool->fn;
    uv_timer_start(&s->timer, on_timer, fn->timeout_ms > INV_MIN_START_MS ? fn->timeout_ms : INV_MIN_START_MS, 0);
}

void inv__sandbox_ready(inv_sandbox_t *s)
{
    inv_pool_t *p = s->pool;
    s->last_used = tine_now_ns();
    s->ready_ns = s->last_used - s->spawned_at;
    p->start_failed = false;
    if (s->call) {
        /* The attached call's INVOKE is already in the pipe. */
        inv_call_t *c = s->call;
        sandbox_set_busy(s);
        sandbox_start_call(s, c, s->last_used);
        c->cold_start_ns = s->ready_ns;
        return;
    }
    sandbox_unfree(s);
    if (p->retired && p->queued == 0) {
        inv__sandbox_close(s);
        return;
    }
    sandbox_set_idle(s, s->last_used);
    inv__pool_dispatch(p);
    if (s->state == SBX_IDLE)
        inv__pools_kick_blocked(p->inv);
}

void inv__sandbox_answered(inv_sandbox_t *s, bool healthy, uint64_t took, uint64_t now)
{
    inv_pool_t *p = s->pool;
    p->avg_ns = p->answers ? p->avg_ns - p->avg_ns / 8 + took / 8 : took;
    p->answers++;
    tine_list_t *next;
    if (!healthy) {
        inv__sandbox_close(s);
    } else if ((next = tine_list_pop_head(&s->piped)) != NULL) {
        s->npiped--;
        sandbox_start_call(s, tine_list_entry(next, inv_call_t, link), now);
    } else if ((p->retired && p->queued == 0) || pool_owes_sandbox(p)) {
        inv__sandbox_close(s); /* not needed, or given back to the node */
    } else {
        sandbox_set_idle(s, now);
    }
}

/* ------------------------------------------------- namespace admission */

/* The answer of a sandbox admission of pool p that waited for Redis: what
 * it admitted is given back at once (the node's share it asked for stays
 * its own, so the next ask is answered here), and p dispatches again,
 * asking anew. */
static void on_pool_admitted(void *ticket, int rc, const inv_refusal_t *r)
{
    (void)r;
    inv_pool_t *p = ticket;
    p->admit_waiting = false;
    if (rc == 0)
        p->inv->cfg.admission->end(p->admit, INV_ADMIT_SANDBOX, p->fn->memory_mb);
    inv__pool_dispatch(p);
    pool_maybe_free(p);
}

/* Closes the least recently used idle sandbox of another pool of p's
 * namespace on this node, so that p's namespace has room under its quotas
 * for a sandbox of p. False when there is none. */
static bool pools_evict_namespace_idle(inv_pool_t *p)
{
    inv_sandbox_t *victim = NULL;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->inv->pools) {
        inv_pool_t *q = tine_list_entry(l, inv_pool_t, link);
        tine_list_t *lru = tine_list_last(&q->idle);
        if (q == p || q->admit != p->admit || lru == NULL)
            continue;
        inv_sandbox_t *s = tine_list_entry(lru, inv_sandbox_t, free_link);
        if (victim == NULL || s->last_used < victim->last_used)
            victim = s;
    }
    if (victim == NULL)
        return false;
    inv__sandbox_close(victim);
    return true;
}

/* Whether p's namespace admits one more sandbox of p's function (its
 * sandboxes and memory quotas): 0 (then pool_start gets it as admitted),
 * -EAGAIN (its node asks Redis; p dispatches again on the answer) or
 * TINE_EQUOTA with the refusal in *r. For a call (not a warm refill), an
 * idle sandbox of another function of the namespace on this node is closed
 * to make room when the quota is reached. */
static int pool_admit_sandbox(inv_pool_t *p, bool for_call, inv_refusal_t *r)
{
    if (p->admit == NULL)
        return 0;
    if (p->admit_waiting)
        return -EAGAIN;
    const inv_admission_t *adm = p->inv->cfg.admission;
    uint32_t mb = p->fn->memory_mb;
    int rc = adm->begin(p->admit, INV_ADMIT_SANDBOX, mb, on_pool_admitted, p, r);
    while (rc == TINE_EQUOTA && for_call && (!strcmp(r->quota, "sandboxes") || !strcmp(r->quota, "memory_mb")) &&
           pools_evict_namespace_idle(p))
        rc = adm->begin(p->admit, INV_ADMIT_SANDBOX, mb, on_pool_admitted, p, r);
    p->admit_waiting = rc == -EAGAIN;
    return rc;
}

/* ------------------------------------------------------ the node's cap */

/* Makes room under the node-wide cap for pool p: closes the least recently
 * used idle sandbox of another pool whose app the sharing lets p's app take
 * it from (its own, or one holding more). Returns false when there is none. */
static bool pools_evict_lru(inv_invoker_t *inv, inv_pool_t *p)
{
    inv_sandbox_t *victim = NULL;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pools) {
        inv_pool_t *q = tine_list_entry(l, inv_pool_t, link);
        tine_list_t *lru = tine_list_last(&q->idle);
        if (q == p || lru == NULL)
            continue;
        inv_sandbox_t *s = tine_list_entry(lru, inv_sandbox_t, free_link);
        if ((victim == NULL || s->last_used < victim->last_used) &&
            inv__fair_may_evict(p->app->nlive, q->app->nlive, q->app == p->app))
            victim = s;
    }
    if (victim == NULL)
        return false;
    inv__sandbox_close(victim);
    return true;
}

/* The counts the sharing between apps decides on, for pool p's app. */
static inv_fair_t pool_fair(const inv_pool_t *p)
{
    const inv_invoker_t *inv = p->inv;
    inv_fair_t f = {
        .node_live = inv->nlive,
        .cap = inv->cfg.max_sandboxes,
        .reserve = inv->cfg.app_reserve,
        .app_live = p->app->nlive,
        .waiting_min = INV_FAIR_NONE,
    };
    const tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->blocked) {
        const inv_pool_t *q = tine_list_entry(l, inv_pool_t, blocked_link);
        if (q->app != p->app && q->queued && (f.waiting_min == INV_FAIR_NONE || q->app->nlive < f.waiting_min))
            f.waiting_min = q->app->nlive;
    }
    return f;
}

/* Whether pool p may start a sandbox now, under the node's cap as the
 * sharing between apps allows (fair_share.c); at the cap it may close an
 * idle sandbox to make room first. When it may not, the pool waits for room
 * (blocked). */
static bool pool_may_start(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    if (inv->ncap_blocked == 0 && inv->nlive < inv->cfg.max_sandboxes)
        return true; /* room, and no call waits for it */
    inv_fair_t f = pool_fair(p);
    inv_fair_verdict_t v = inv__fair_start(&f);
    if (v == INV_FAIR_START || (v != INV_FAIR_WAIT && (pools_evict_lru(inv, p) || v == INV_FAIR_EVICT_ELSE_START)))
        return true;
    pool_block(p);
    return false;
}

/* Whether pool p's app owes the node a sandbox (fair_share.c): the next of
 * its sandboxes whose call ends closes instead of serving another, and
 * meanwhile its calls are not pipelined, so that one drains. */
static bool pool_owes_sandbox(const inv_pool_t *p)
{
    const inv_invoker_t *inv = p->inv;
    if (inv->ncap_blocked == 0 && inv->nlive <= inv->cfg.max_sandboxes)
        return false; /* nobody waits for room, and the node is within its cap */
    inv_fair_t f = pool_fair(p);
    return inv__fair_gives_back(&f);
}

void inv__pools_kick_blocked(inv_invoker_t *inv)
{
    if (inv->ncap_blocked == 0 || inv->kicking || inv->closing)
        return;
    inv->kicking = true;
    uint64_t round = ++inv->kick_round;
    for (;;) {
        /* Looked for again each time: a dispatch may block or free pools. */
        inv_pool_t *next = NULL;
        tine_list_t *l;
        TINE_LIST_FOREACH(l, &inv->blocked) {
            inv_pool_t *q = tine_list_entry(l, inv_pool_t, blocked_link);
            if (q->kick_round != round && (next == NULL || q->app->nlive < next->app->nlive))
                next = q;
        }
        if (next == NULL)
            break;
        next->kick_round = round;
        pool_unblock(next);
        inv__pool_dispatch(next);
    }
    inv->kicking = false;
}

/* ------------------------------------------------------------ dispatch */

/* Starts sandboxes until the pool has `warm` idle or starting ones, within
 * its concurrency and the node's cap, while no calls wait for room under it
 * (warm sandboxes never evict others nor take room calls wait for). */
static void pool_refill_warm(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    inv_refusal_t r;
    while (!p->retired && !inv->closing && !p->start_failed && p->nidle + p->nstarting_free < p->warm &&
           p->nlive < p->fn->concurrency && inv->nlive < inv->cfg.max_sandboxes && inv->ncap_blocked == 0 &&
           pool_admit_sandbox(p, false, &r) == 0) {
        if (pool_start(p, NULL, p->admit != NULL) != 0)
            break;
    }
}

/* How many calls may wait pipelined behind a busy sandbox's running call
 * (0: none): as many as fit in INV_PIPE_BUDGET_NS at the function's average
 * duration, up to INV_PIPE_MAX. Not for exec functions (one call per
 * process), before the average means something, or for big frames. */
static uint32_t pool_pipe_depth(const inv_pool_t *p, const inv_call_t *c)
{
    if (p->fn->runtime == REG_RUNTIME_EXEC || p->answers < INV_PIPE_MIN_ANSWERS || c->frame_len > INV_PIPE_MAX_FRAME)
        return 0;
    uint64_t d = INV_PIPE_BUDGET_NS / (p->avg_ns ? p->avg_ns : 1);
    return d > INV_PIPE_MAX ? INV_PIPE_MAX : (uint32_t)d;
}

/* The busy sandbox with the fewest pipelined calls (below `depth`) whose
 * running call is in no host call and has no tine.invoke in flight: a call
 * queued behind it can never be one it waits for. NULL when none. */
static inv_sandbox_t *pool_pipe_target(const inv_pool_t *p, uint32_t depth)
{
    inv_sandbox_t *best = NULL;
    const tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->sandboxes) {
        inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
        if (s->state != SBX_BUSY || s->call == NULL || s->npiped >= depth || s->call->holds ||
            s->call->invokes_in_flight)
            continue;
        if (best == NULL || s->npiped < best->npiped)
            best = s;
        if (best->npiped == 0)
            break;
    }
    return best;
}

/* Sends the oldest queued call behind busy sandbox s's running call. */
static void pool_pipe_next(inv_pool_t *p, inv_sandbox_t *s)
{
    inv_call_t *c = inv__pool_pop_call(p);
    c->sandbox = s;
    tine_list_insert_tail(&s->piped, &c->link);
    s->npiped++;
    s->invocations++;
    p->pipelined++;
    inv__sandbox_pipe_call(s, c);
}

/* Gives queued calls to sandboxes. Short calls are pipelined behind busy
 * sandboxes once the pool's busy ones are as many as the CPUs (more
 * processes would only take turns on them), or when the pool can start no
 * more. Otherwise calls go to idle sandboxes (most recently used first) or
 * starting ones, and sandboxes start up to the function's concurrency and
 * as the node's cap and its sharing between apps allow (pool_may_start), or
 * the calls wait. Then tops up the warm sandboxes. */
void inv__pool_dispatch(inv_pool_t *p)
{
    inv_invoker_t *inv = p->inv;
    tine_list_t *first;
    while ((first = tine_list_first(&p->queue)) != NULL) {
        uint32_t depth = pool_pipe_depth(p, tine_list_entry(first, inv_call_t, link));
        if (depth && pool_owes_sandbox(p))
            depth = 0;
        inv_sandbox_t *s = NULL;
        if (depth && p->nbusy >= inv->ncpu && (s = pool_pipe_target(p, depth)) != NULL) {
            pool_pipe_next(p, s);
            continue;
        }
        tine_list_t *ready = tine_list_first(&p->idle);
        if (ready == NULL)
            ready = tine_list_first(&p->starting_free);
        if (ready != NULL) {
            sandbox_take_call(tine_list_entry(ready, inv_sandbox_t, free_link), inv__pool_pop_call(p));
            continue;
        }
        if (inv->closing)
            break;
        /* The namespace's quotas first: a refusal must not have closed
         * another app's sandbox under the node's cap for nothing. */
        inv_refusal_t r;
        int quota = p->nlive >= p->fn->concurrency ? 0 : pool_admit_sandbox(p, true, &r);
        bool full = p->nlive >= p->fn->concurrency || quota != 0;
        if (!full && !pool_may_start(p)) {
            if (p->admit)
                inv->cfg.admission->end(p->admit, INV_ADMIT_SANDBOX, p->fn->memory_mb);
            full = true;
        }
        if (full) {
            if (depth && (s = pool_pipe_target(p, depth)) != NULL) {
                pool_pipe_next(p, s);
                continue;
            }
            /* No sandbox of its own to wait for, and none may start: its
             * calls are refused rather than queued for nothing. */
            while (quota == TINE_EQUOTA && p->nlive == 0 && p->queued)
                inv__call_refuse(inv__pool_pop_call(p), &r);
            break;
        }
        pool_start(p, inv__pool_pop_call(p), p->admit != NULL);
    }
    if (p->queued == 0)
        pool_unblock(p); /* nothing of it waits any more */
    pool_refill_warm(p);
}

/* ------------------------------------------------------------ public */

void inv_version_retired(inv_invoker_t *inv, const reg_app_version_t *v)
{
    for (size_t i = 0; i < v->manifest->functions_len; i++) {
        inv_pool_t *p = pool_find(inv, v, i);
        if (p == NULL)
            continue;
        p->retired = true;
        if (p->queued == 0) {
            tine_list_t *l, *tmp;
            TINE_LIST_FOREACH_SAFE(l, tmp, &p->sandboxes) {
                inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
                if (s->state == SBX_IDLE || s->free_start)
                    inv__sandbox_close(s);
            }
        }
        pool_maybe_free(p);
    }
    inv__python_version_retired(inv, v);
}

void inv_version_live(inv_invoker_t *inv, const reg_app_version_t *v)
{
    if (inv->closing)
        return;
    inv__python_version_live(inv, v);
    for (size_t i = 0; i < v->manifest->functions_len; i++)
        if (v->manifest->functions[i].warm > 0)
            pool_refill_warm(inv__pool_get(inv, v, i));
}

int inv_scale(inv_invoker_t *inv, const reg_app_version_t *v, size_t fn_index, uint32_t warm)
{
    if (fn_index >= v->manifest->functions_len || warm > v->manifest->functions[fn_index].concurrency)
        return TINE_EINVAL;
    inv_pool_t *p = inv__pool_get(inv, v, fn_index);
    p->warm = warm;
    p->start_failed = false;
    /* Idle sandboxes kept as warm had no timer running: give them one again. */
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->idle) {
        inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, free_link);
        if (!uv_is_active((uv_handle_t *)&s->timer))
            uv_timer_start(&s->timer, on_timer, inv->cfg.idle_timeout_ms, 0);
    }
    pool_refill_warm(p);
    return 0;
}

size_t inv_evict(inv_invoker_t *inv, const char *app, const char *fn, pid_t **pids)
{
    size_t n = 0, cap = 0;
    if (pids)
        *pids = NULL;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &inv->pools) {
        inv_pool_t *p = tine_list_entry(l, inv_pool_t, link);
        if (strcmp(p->version->app, app) != 0 || (fn && strcmp(p->fn->name, fn) != 0))
            continue;
        tine_list_t *idle;
        while ((idle = tine_list_first(&p->idle)) != NULL) {
            inv_sandbox_t *s = tine_list_entry(idle, inv_sandbox_t, free_link);
            if (pids && s->pid > 0) {
                if (n == cap)
                    *pids = xrealloc(*pids, (cap = cap ? cap * 2 : 8) * sizeof(**pids));
                (*pids)[n] = s->pid;
            }
            inv__sandbox_close(s);
            n++;
        }
    }
    return n;
}

json_t *inv_stats(inv_invoker_t *inv, const char *app)
{
    static const char *names[] = {"starting", "idle", "busy", "closing"};
    json_t *pools = json_array();
    uint64_t now = tine_now_ns();
    tine_list_t *pl;
    TINE_LIST_FOREACH(pl, &inv->pools) {
        inv_pool_t *p = tine_list_entry(pl, inv_pool_t, link);
        if (app && strcmp(p->version->app, app) != 0)
            continue;
        json_t *sbx = json_array();
        size_t busy = 0, starting = 0;
        tine_list_t *l;
        TINE_LIST_FOREACH(l, &p->sandboxes) {
            inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
            busy += s->state == SBX_BUSY;
            starting += s->state == SBX_STARTING;
            bool ready = s->state == SBX_IDLE || s->state == SBX_BUSY;
            json_t *o = json_pack("{s:i, s:s, s:f, s:I, s:I}", "pid", (int)s->pid, "state", names[s->state], "age_s",
                                  (double)(now - s->spawned_at) / 1e9, "invocations", (json_int_t)s->invocations,
                                  "piped", (json_int_t)s->npiped);
            json_object_set_new(o, "cold_start_ms", ready ? json_real((double)s->ready_ns / 1e6) : json_null());
            json_object_set_new(o, "last_used_s",
                                ready ? json_real((double)(now - (s->last_used ? s->last_used : now)) / 1e9)
                                      : json_null());
            json_array_append_new(sbx, o);
        }
        json_array_append_new(pools,
                              json_pack("{s:s, s:I, s:s, s:b, s:i, s:i, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:f, s:o}",
                                        "app", p->version->app, "version", (json_int_t)p->version->version, "function",
                                        p->fn->name, "retired", p->retired, "warm", (int)p->warm, "concurrency",
                                        (int)p->fn->concurrency, "queued", (json_int_t)p->queued + p->nadmitting,
                                        "waiting_for_room", tine_list_linked(&p->blocked_link) || p->admit_waiting,
                                        "idle", (json_int_t)p->nidle, "busy", (json_int_t)busy, "starting",
                                        (json_int_t)starting, "pipelined", (json_int_t)p->pipelined, "requeued",
                                        (json_int_t)p->requeued, "avg_ms", (double)p->avg_ns / 1e6, "sandboxes", sbx));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "sandboxes", (json_int_t)inv->nlive, "max_sandboxes",
                     (json_int_t)inv->cfg.max_sandboxes, "app_reserve", (json_int_t)inv->cfg.app_reserve,
                     "idle_timeout_ms", (json_int_t)inv->cfg.idle_timeout_ms, "spare", (json_int_t)inv->nspare, "pools",
                     pools);
}

void inv_load(const inv_invoker_t *inv, size_t *sandboxes, size_t *calls)
{
    *sandboxes = inv ? inv->nlive : 0;
    *calls = inv ? inv->calls : 0;
}

void inv_sandbox_counts(inv_invoker_t *inv, size_t *starting, size_t *idle, size_t *busy)
{
    *starting = *idle = *busy = 0;
    if (inv == NULL)
        return;
    tine_list_t *pl, *l;
    TINE_LIST_FOREACH(pl, &inv->pools) {
        inv_pool_t *p = tine_list_entry(pl, inv_pool_t, link);
        TINE_LIST_FOREACH(l, &p->sandboxes) {
            inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
            *starting += s->state == SBX_STARTING;
            *idle += s->state == SBX_IDLE;
            *busy += s->state == SBX_BUSY;
        }
    }
}

void inv__pools_shutdown(inv_invoker_t *inv)
{
    tine_list_t *pl, *pn;
    TINE_LIST_FOREACH_SAFE(pl, pn, &inv->pools) {
        inv_pool_t *p = tine_list_entry(pl, inv_pool_t, link);
        p->retired = true;
        if (p->admit_waiting)
            inv->cfg.admission->forget(p->admit, p);
        p->admit_waiting = false;
        tine_list_t *l;
        TINE_LIST_FOREACH(l, &p->sandboxes) {
            inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
            if (s->call) {
                inv_call_t *c = s->call;
                s->call = NULL;
                inv__call_fail(c, TINE_EBUSY, 503, "the node is shutting down");
            }
            inv__sandbox_close(s); /* its pipelined calls join the queue */
        }
        while (p->queued)
            inv__call_fail(inv__pool_pop_call(p), TINE_EBUSY, 503, "the node is shutting down");
        pool_maybe_free(p);
    }
}
