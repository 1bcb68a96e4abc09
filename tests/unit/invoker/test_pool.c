/* Tests of invoker/pool.c, in process on a real libuv loop with a fake
 * zygote (fake_zygote.h): queueing at a function's concurrency and
 * max_queue, then 429; warm sandboxes kept and refilled; the idle timeout
 * down to the warm ones; eviction; the node-wide cap and its sharing between
 * apps; the pipelining decisions (how deep, and never behind a call in a
 * host call). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_zygote.h"

static const char manifest[] = "app: demo\n"
                               "functions:\n"
                               "  one:    { handler: h.lua#one, timeout: 5s, concurrency: 1 }\n"
                               "  callee: { handler: h.lua#callee, timeout: 5s, concurrency: 1 }\n"
                               "  two:    { handler: h.lua#two, timeout: 5s, concurrency: 2 }\n"
                               "  wide:   { handler: h.lua#wide, timeout: 5s, concurrency: 8 }\n"
                               "  warm:   { handler: h.lua#warm, timeout: 5s, concurrency: 3, warm: 2 }\n";

static const char other_manifest[] = "app: other\n"
                                     "functions:\n"
                                     "  wide: { handler: h.lua#wide, timeout: 5s, concurrency: 8 }\n";

/* The sandboxes of pool p that are in `state`. */
static size_t count_state(inv_pool_t *p, sandbox_state_t state)
{
    size_t n = 0;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->sandboxes) {
        n += tine_list_entry(l, inv_sandbox_t, pool_link)->state == state;
    }
    return n;
}

/* Whether pool p has a sandbox of process `pid`, closing ones included. */
static bool has_pid(inv_pool_t *p, pid_t pid)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->sandboxes) {
        if (tine_list_entry(l, inv_sandbox_t, pool_link)->pid == pid)
            return true;
    }
    return false;
}

/* The busy sandbox of pool p (it must have exactly one). */
static inv_sandbox_t *the_busy_one(inv_pool_t *p)
{
    inv_sandbox_t *busy = NULL;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &p->sandboxes) {
        inv_sandbox_t *s = tine_list_entry(l, inv_sandbox_t, pool_link);
        if (s->state == SBX_BUSY) {
            assert_null(busy);
            busy = s;
        }
    }
    assert_non_null(busy);
    return busy;
}

/* Answers `n` quick calls of `fn`, one after the other, so that its pool
 * trusts its average (INV_PIPE_MIN_ANSWERS), then sets the average to
 * `avg_ns`: the pipelining depth is INV_PIPE_BUDGET_NS / avg_ns. */
static inv_pool_t *train(fx_t *f, const char *fn, uint64_t avg_ns)
{
    for (int i = 0; i < INV_PIPE_MIN_ANSWERS; i++) {
        fx_result_t *r = fx_call(f, fn, "ok");
        FX_WAIT(f, r->done, 5000);
        assert_int_equal(r->status, 200);
    }
    inv_pool_t *p = fx_pool(f, f->v, fn);
    assert_int_equal(p->answers, INV_PIPE_MIN_ANSWERS);
    p->avg_ns = avg_ns;
    return p;
}

static void test_queue_at_concurrency_then_429(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.max_queue = 2};
    fx_setup(&f, manifest, &cfg);
    fx_result_t *a = fx_call(&f, "one", "sleep:200");
    fx_result_t *b = fx_call(&f, "one", "ok");
    fx_result_t *c = fx_call(&f, "one", "ok");
    inv_pool_t *p = fx_pool(&f, f.v, "one");
    assert_int_equal(p->queued, 2); /* a has the one sandbox; b and c wait */
    assert_int_equal(p->nlive, 1);
    int rc = 0;
    fx_result_t *d = fx_call_rc(&f, f.v, "one", "ok", &rc);
    assert_int_equal(rc, TINE_EBUSY); /* the gateway's 429 */
    assert_int_equal(p->queued, 2);
    FX_WAIT(&f, a->done && b->done && c->done, 5000);
    assert_int_equal(a->order, 1);
    assert_int_equal(b->order, 2);
    assert_int_equal(c->order, 3);
    assert_int_equal(a->status, 200);
    assert_int_equal(c->status, 200);
    assert_true(a->cold);
    assert_false(b->cold);
    /* One sandbox served them all, in order. */
    assert_int_equal(fx_pid(a), fx_pid(b));
    assert_int_equal(fx_pid(b), fx_pid(c));
    assert_int_equal(p->nlive, 1);
    FX_RUN_FOR(&f, 50);
    assert_int_equal(d->calls, 0); /* refused: its callback never runs */
    fx_teardown(&f);
}

static void test_warm_sandboxes_are_kept_and_refilled(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.idle_timeout_ms = 100};
    fx_setup(&f, manifest, &cfg);
    inv_pool_t *p = fx_pool(&f, f.v, "warm");
    inv_version_live(f.inv, f.v);
    FX_WAIT(&f, p->nidle == 2, 5000);
    /* One killed (not by the invoker) is replaced. */
    inv_sandbox_t *victim = tine_list_entry(tine_list_first(&p->idle), inv_sandbox_t, free_link);
    pid_t gone = victim->pid;
    kill(gone, SIGKILL);
    FX_WAIT(&f, fx_child_gone(&f, gone) && !has_pid(p, gone) && p->nlive == 2 && p->nidle == 2, 5000);
    /* A call takes one; another starts in the background. */
    fx_result_t *a = fx_call(&f, "warm", "sleep:300");
    assert_false(a->cold);
    assert_int_equal(p->nidle + p->nstarting_free, 2);
    FX_WAIT(&f, p->nidle == 2 && count_state(p, SBX_BUSY) == 1, 5000);
    FX_WAIT(&f, a->done, 5000);
    /* Three idle now: the idle timeout closes one, never the warm two. */
    FX_WAIT(&f, p->nlive == 2, 2000);
    FX_RUN_FOR(&f, 300);
    assert_int_equal(p->nlive, 2);
    assert_int_equal(p->nidle, 2);
    fx_teardown(&f);
}

static void test_idle_timeout_down_to_warm(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.idle_timeout_ms = 150};
    fx_setup(&f, manifest, &cfg);
    inv_pool_t *p = fx_pool(&f, f.v, "wide");
    assert_int_equal(inv_scale(f.inv, f.v, fx_fn(f.v, "wide"), 9), TINE_EINVAL); /* over its concurrency */
    assert_int_equal(inv_scale(f.inv, f.v, fx_fn(f.v, "wide"), 1), 0);
    FX_WAIT(&f, p->nidle == 1, 5000);
    fx_result_t *a = fx_call(&f, "wide", "sleep:100");
    fx_result_t *b = fx_call(&f, "wide", "sleep:100");
    fx_result_t *c = fx_call(&f, "wide", "sleep:100");
    FX_WAIT(&f, a->done && b->done && c->done, 5000);
    /* Past the idle timeout the least recently used close; one stays warm,
     * the most recently used. */
    FX_WAIT(&f, p->nlive == 1, 2000);
    FX_RUN_FOR(&f, 400);
    assert_int_equal(p->nlive, 1);
    assert_int_equal(p->nidle, 1);
    inv_sandbox_t *kept = tine_list_entry(tine_list_first(&p->idle), inv_sandbox_t, free_link);
    assert_true(kept->pid == fx_pid(a) || kept->pid == fx_pid(b) || kept->pid == fx_pid(c));
    /* The closed ones left at EOF on their pipes, not killed: alive are
     * the warm one and the spare blank. */
    FX_RUN_UNTIL(&f, fx_alive(&f) == 2, 2000);
    assert_int_equal(fx_alive(&f), 2);
    for (size_t i = 0; i < f.nchildren; i++)
        assert_false(fx_child_killed(&f, f.children[i].pid));
    /* Scaled to 0, the last one goes too. */
    assert_int_equal(inv_scale(f.inv, f.v, fx_fn(f.v, "wide"), 0), 0);
    FX_WAIT(&f, p->nlive == 0, 2000);
    fx_teardown(&f);
}

static void test_evict_closes_idle_sandboxes_only(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "wide", "ok");
    fx_result_t *b = fx_call(&f, "wide", "ok");
    FX_WAIT(&f, a->done && b->done, 5000);
    fx_result_t *busy = fx_call(&f, "wide", "sleep:300");
    fx_result_t *other = fx_call(&f, "two", "ok");
    FX_WAIT(&f, other->done, 5000);
    inv_pool_t *p = fx_pool(&f, f.v, "wide");
    assert_int_equal(p->nidle, 1); /* a's or b's; the other serves `busy` */
    pid_t *pids = NULL;
    f.in_api++;
    size_t n = inv_evict(f.inv, "demo", "wide", &pids);
    f.in_api--;
    assert_int_equal(n, 1);
    pid_t evicted = pids[0];
    free(pids);
    assert_true(evicted == fx_pid(a) || evicted == fx_pid(b));
    assert_int_equal(p->nidle, 0);
    FX_WAIT(&f, fx_child_gone(&f, evicted), 2000);
    assert_false(fx_child_killed(&f, evicted));
    assert_int_equal(fx_pool(&f, f.v, "two")->nidle, 1); /* another function: kept */
    /* The busy one finishes its call. */
    FX_WAIT(&f, busy->done, 5000);
    assert_int_equal(busy->status, 200);
    f.in_api++;
    n = inv_evict(f.inv, "demo", NULL, NULL);
    f.in_api--;
    assert_int_equal(n, 2); /* wide's and two's */
    f.in_api++;
    n = inv_evict(f.inv, "nosuchapp", NULL, NULL);
    f.in_api--;
    assert_int_equal(n, 0);
    fx_teardown(&f);
}

static void test_cap_calls_wait_for_room(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.max_sandboxes = 2};
    fx_setup(&f, manifest, &cfg);
    fx_result_t *a = fx_call(&f, "two", "sleep:200");
    fx_result_t *b = fx_call(&f, "two", "sleep:400");
    fx_result_t *c = fx_call(&f, "one", "ok");
    inv_pool_t *one = fx_pool(&f, f.v, "one");
    assert_int_equal(f.inv->nlive, 2);
    assert_int_equal(one->queued, 1);
    assert_true(tine_list_linked(&one->blocked_link)); /* waiting_for_room */
    json_t *stats = inv_stats(f.inv, "demo");
    assert_int_equal(json_integer_value(json_object_get(stats, "sandboxes")), 2);
    json_decref(stats);
    /* a's sandbox, idle once a answered, makes room (same app: its LRU
     * idle sandbox is taken); c does not wait for b. */
    FX_WAIT(&f, c->done, 5000);
    assert_true(a->done);
    assert_false(b->done);
    assert_true(f.inv->nlive <= 2);
    assert_false(tine_list_linked(&one->blocked_link));
    FX_WAIT(&f, fx_child_gone(&f, fx_pid(a)), 2000); /* evicted: out at EOF */
    assert_false(fx_child_killed(&f, fx_pid(a)));
    FX_WAIT(&f, b->done, 5000);
    fx_teardown(&f);
}

static void test_cap_first_sandbox_of_an_app_goes_past_it(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.max_sandboxes = 2, .app_reserve = 1};
    fx_setup(&f, manifest, &cfg);
    f.v2 = fx_version(other_manifest, 1);
    fx_result_t *a[3];
    for (int i = 0; i < 3; i++)
        a[i] = fx_call(&f, "wide", "sleep:1000");
    inv_pool_t *pa = fx_pool(&f, f.v, "wide");
    assert_int_equal(pa->nlive, 2); /* the cap */
    assert_int_equal(pa->queued, 1);
    /* The other app's first call does not wait for demo's calls. */
    fx_result_t *b = fx_call_rc(&f, f.v2, "wide", "ok", NULL);
    assert_int_equal(f.inv->nlive, 3); /* cap + reserve */
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 200);
    assert_false(a[0]->done || a[1]->done);
    /* demo gives the reserve back as its calls end: never past 3. */
    FX_WAIT(&f, a[0]->done && a[1]->done && a[2]->done, 5000);
    assert_true(f.inv->nlive <= 3);
    fx_teardown(&f);
}

static void test_cap_room_goes_to_the_app_holding_fewer(void **state)
{
    (void)state;
    fx_t f;
    inv_config_t cfg = {.max_sandboxes = 2, .app_reserve = 0};
    fx_setup(&f, manifest, &cfg);
    f.v2 = fx_version(other_manifest, 1);
    fx_result_t *a[4];
    a[0] = fx_call(&f, "wide", "sleep:200");
    a[1] = fx_call(&f, "wide", "sleep:600");
    a[2] = fx_call(&f, "wide", "ok");
    a[3] = fx_call(&f, "wide", "ok");
    inv_pool_t *pa = fx_pool(&f, f.v, "wide");
    fx_result_t *b = fx_call_rc(&f, f.v2, "wide", "ok", NULL);
    inv_pool_t *pb = fx_pool(&f, f.v2, "wide");
    assert_int_equal(pa->queued, 2);
    assert_int_equal(pb->queued, 1);
    assert_true(tine_list_linked(&pb->blocked_link));
    assert_int_equal(f.inv->nlive, 2);
    /* When demo's first call ends, demo (2) gives its sandbox to other (0)
     * instead of serving its own queue. */
    FX_WAIT(&f, b->done, 5000);
    assert_true(a[0]->done);
    assert_false(a[2]->done || a[3]->done);
    assert_true(b->order < a[2]->order || !a[2]->done);
    assert_true(f.inv->nlive <= 2);
    FX_WAIT(&f, a[1]->done && a[2]->done && a[3]->done, 5000);
    assert_true(b->order < a[2]->order);
    fx_teardown(&f);
}

static void test_pipelining_depth(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    inv_pool_t *p = train(&f, "one", INV_PIPE_BUDGET_NS / 2); /* depth 2 */
    fx_result_t *a = fx_call(&f, "one", "sleep:200");
    fx_result_t *b = fx_call(&f, "one", "ok");
    fx_result_t *c = fx_call(&f, "one", "ok");
    fx_result_t *d = fx_call(&f, "one", "ok");
    inv_sandbox_t *s = the_busy_one(p);
    assert_int_equal(s->npiped, 2); /* b and c behind a */
    assert_int_equal(p->pipelined, 2);
    assert_int_equal(p->queued, 1); /* d waits in tined */
    FX_WAIT(&f, a->done && b->done && c->done && d->done, 5000);
    assert_int_equal(a->order + 1, b->order);
    assert_int_equal(b->order + 1, c->order);
    assert_int_equal(c->order + 1, d->order);
    assert_int_equal(fx_pid(a), fx_pid(d));
    /* A function averaging the whole budget is not pipelined. */
    p->avg_ns = INV_PIPE_BUDGET_NS + 1;
    fx_result_t *e = fx_call(&f, "one", "sleep:100");
    fx_result_t *g = fx_call(&f, "one", "ok");
    assert_int_equal(the_busy_one(p)->npiped, 0);
    assert_int_equal(p->queued, 1);
    FX_WAIT(&f, e->done && g->done, 5000);
    /* Nor is a fresh pool (wide: no answers yet). */
    fx_result_t *h = fx_call(&f, "two", "sleep:100");
    fx_result_t *i = fx_call(&f, "two", "sleep:100");
    fx_result_t *j = fx_call(&f, "two", "ok");
    assert_int_equal(fx_pool(&f, f.v, "two")->queued, 1);
    FX_WAIT(&f, h->done && i->done && j->done, 5000);
    fx_teardown(&f);
}

static void test_no_pipelining_behind_a_host_call(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    inv_pool_t *p = train(&f, "one", INV_PIPE_BUDGET_NS / 8);
    /* a waits for a tine.invoke of callee: b must not go behind it. */
    fx_result_t *a = fx_call(&f, "one", "invoke:callee:sleep:200");
    inv_call_t *running = the_busy_one(p)->call;
    FX_WAIT(&f, running->holds > 0, 5000);
    assert_int_equal(running->invokes_in_flight, 1);
    fx_result_t *b = fx_call(&f, "one", "ok");
    assert_int_equal(the_busy_one(p)->npiped, 0);
    assert_int_equal(p->queued, 1);
    FX_WAIT(&f, a->done && b->done, 5000);
    assert_int_equal(a->status, 200);
    assert_non_null(strstr(a->body, " invoked "));
    assert_non_null(strstr(a->body, "sleep:200"));
    assert_true(a->order < b->order);
    assert_int_equal(p->pipelined, 0);
    fx_teardown(&f);
}

/* HOSTCALL metadata that is not one binary object (JSON text) is answered
 * with an error naming it; the node and the sandbox go on. */
static void test_malformed_host_call_refused(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "hostcall-json");
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    if (strstr(a->body, "invoke-error malformed host call: its 29 bytes of metadata are not one binary object") == NULL)
        fail_msg("answered %s", a->body);
    fx_result_t *b = fx_call(&f, "one", "ok");
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 200);
    /* An error naming what the sandbox sent is valid UTF-8 for every SDK:
     * bytes that are not become U+FFFD. */
    fx_result_t *u = fx_call(&f, "one", "invoke-not-utf8");
    FX_WAIT(&f, u->done, 5000);
    if (strstr(u->body, "has no function 'x\xEF\xBF\xBD'") == NULL)
        fail_msg("answered %s", u->body);
    fx_teardown(&f);
}

static void test_pool_table_finds_every_pool(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    /* More pools than the table's first buckets: it grows, and each pool is
     * found again as the one made first. */
    reg_app_version_t *vs[12];
    inv_pool_t *pools[12][5];
    for (int i = 0; i < 12; i++) {
        vs[i] = fx_version(manifest, (uint64_t)i + 2);
        for (size_t k = 0; k < 5; k++)
            pools[i][k] = inv__pool_get(f.inv, vs[i], k);
    }
    assert_true(f.inv->pool_buckets >= 64);
    for (int i = 0; i < 12; i++)
        for (size_t k = 0; k < 5; k++)
            assert_ptr_equal(inv__pool_get(f.inv, vs[i], k), pools[i][k]);
    /* Retired without sandboxes or calls, they are freed (with their
     * reference to the version). */
    size_t before = f.inv->npools;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(vs[i]->refcnt, 6);
        inv_version_retired(f.inv, vs[i]);
        assert_int_equal(vs[i]->refcnt, 1);
        reg_app_version_release(vs[i]);
    }
    assert_int_equal(f.inv->npools, before - 60);
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_at_concurrency_then_429),
        cmocka_unit_test(test_malformed_host_call_refused),
        cmocka_unit_test(test_warm_sandboxes_are_kept_and_refilled),
        cmocka_unit_test(test_idle_timeout_down_to_warm),
        cmocka_unit_test(test_evict_closes_idle_sandboxes_only),
        cmocka_unit_test(test_cap_calls_wait_for_room),
        cmocka_unit_test(test_cap_first_sandbox_of_an_app_goes_past_it),
        cmocka_unit_test(test_cap_room_goes_to_the_app_holding_fewer),
        cmocka_unit_test(test_pipelining_depth),
        cmocka_unit_test(test_no_pipelining_behind_a_host_call),
        cmocka_unit_test(test_pool_table_finds_every_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
