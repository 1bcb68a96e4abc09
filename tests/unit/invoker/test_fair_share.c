/* Tests of invoker/fair_share.c: each rule of the sharing between apps on
 * its own, then the rules played out on a node whose sandboxes are all busy
 * (the starving scenario of issue 16): the share converges to max-min fair,
 * stays there without sandboxes moving back and forth, and the node never
 * holds more than its cap plus the reserve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "invoker_internal.h"

static inv_fair_t counts(size_t node_live, size_t app_live, size_t waiting_min)
{
    return (inv_fair_t){
        .node_live = node_live, .cap = 4, .reserve = 1, .app_live = app_live, .waiting_min = waiting_min};
}

static void test_alone_uses_the_whole_cap(void **state)
{
    (void)state;
    for (size_t held = 0; held < 4; held++) {
        inv_fair_t f = counts(held, held, INV_FAIR_NONE);
        assert_int_equal(inv__fair_start(&f), INV_FAIR_START);
    }
    /* At the cap it may only take the place of an idle sandbox. */
    inv_fair_t f = counts(4, 4, INV_FAIR_NONE);
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_WAIT);
    assert_false(inv__fair_gives_back(&f));
}

static void test_first_sandbox_goes_past_the_cap_within_the_reserve(void **state)
{
    (void)state;
    inv_fair_t f = counts(4, 0, INV_FAIR_NONE);
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_START);
    f = counts(5, 0, INV_FAIR_NONE); /* the reserve is in use */
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_WAIT);
    f = counts(4, 0, INV_FAIR_NONE);
    f.reserve = 0;
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_WAIT);
    /* An app holding one already waits like the others. */
    f = counts(4, 1, INV_FAIR_NONE);
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_WAIT);
}

static void test_room_goes_to_the_waiting_app_holding_fewer(void **state)
{
    (void)state;
    inv_fair_t f = counts(3, 2, 1); /* room under the cap, but someone holding 1 waits */
    assert_int_equal(inv__fair_start(&f), INV_FAIR_WAIT);
    f = counts(3, 1, 1); /* as many: first come */
    assert_int_equal(inv__fair_start(&f), INV_FAIR_START);
    f = counts(3, 0, 1);
    assert_int_equal(inv__fair_start(&f), INV_FAIR_START);
    f = counts(4, 0, 0); /* two apps holding none: the reserve serves either */
    assert_int_equal(inv__fair_start(&f), INV_FAIR_EVICT_ELSE_START);
}

static void test_idle_sandboxes_are_their_apps_share(void **state)
{
    (void)state;
    assert_true(inv__fair_may_evict(3, 1, true));  /* its own app: always */
    assert_true(inv__fair_may_evict(0, 1, false)); /* an app holding none takes from one holding one */
    assert_true(inv__fair_may_evict(1, 3, false));
    assert_false(inv__fair_may_evict(2, 2, false)); /* no poorer than the taker: kept */
    assert_false(inv__fair_may_evict(3, 1, false));
}

static void test_gives_back(void **state)
{
    (void)state;
    inv_fair_t f = counts(5, 4, INV_FAIR_NONE); /* past the cap: back under it */
    assert_true(inv__fair_gives_back(&f));
    f = counts(5, 1, INV_FAIR_NONE); /* but an app's only sandbox stays */
    assert_false(inv__fair_gives_back(&f));
    f = counts(4, 3, 1); /* a waiting app holds two fewer */
    assert_true(inv__fair_gives_back(&f));
    f = counts(4, 2, 1); /* one fewer: moving it would only swap them */
    assert_false(inv__fair_gives_back(&f));
    f = counts(4, 2, 2);
    assert_false(inv__fair_gives_back(&f));
    f = counts(4, 1, 0);
    assert_false(inv__fair_gives_back(&f));
}

/* A node whose apps always have more calls than sandboxes, each call long:
 * held[a] sandboxes, all busy. One call of app `a` ends: its sandbox closes
 * when the rule says so, then the apps waiting for room (all but the ones
 * holding their fill) try to start, fewest held first, as pool.c does. */
#define NAPPS 3
typedef struct {
    size_t held[NAPPS];
    bool loaded[NAPPS]; /* has calls waiting */
    size_t cap, reserve, moved;
} node_t;

static size_t node_live(const node_t *n)
{
    size_t s = 0;
    for (int a = 0; a < NAPPS; a++)
        s += n->held[a];
    return s;
}

static inv_fair_t node_counts(const node_t *n, int a)
{
    inv_fair_t f = {.node_live = node_live(n),
                    .cap = n->cap,
                    .reserve = n->reserve,
                    .app_live = n->held[a],
                    .waiting_min = INV_FAIR_NONE};
    for (int b = 0; b < NAPPS; b++)
        if (b != a && n->loaded[b] && (f.waiting_min == INV_FAIR_NONE || n->held[b] < f.waiting_min))
            f.waiting_min = n->held[b];
    return f;
}

/* Apps waiting for room start what the rules let them (nothing is idle:
 * an eviction never succeeds). */
static void node_kick(node_t *n)
{
    bool tried[NAPPS] = {false};
    for (;;) {
        int next = -1;
        for (int a = 0; a < NAPPS; a++)
            if (n->loaded[a] && !tried[a] && (next < 0 || n->held[a] < n->held[next]))
                next = a;
        if (next < 0)
            return;
        tried[next] = true;
        for (;;) {
            inv_fair_t f = node_counts(n, next);
            inv_fair_verdict_t v = inv__fair_start(&f);
            if (v != INV_FAIR_START && v != INV_FAIR_EVICT_ELSE_START)
                break;
            n->held[next]++;
            assert_true(node_live(n) <= n->cap + n->reserve);
        }
    }
}

static void node_call_ends(node_t *n, int a)
{
    assert_true(n->held[a] > 0);
    inv_fair_t f = node_counts(n, a);
    if (inv__fair_gives_back(&f)) {
        n->held[a]--;
        n->moved++;
    }
    node_kick(n);
}

static void test_the_hog_gives_back_down_to_half(void **state)
{
    (void)state;
    node_t n = {.cap = 4, .reserve = 1};
    n.loaded[0] = true; /* the hog, alone: the whole cap */
    node_kick(&n);
    assert_int_equal(n.held[0], 4);
    n.loaded[1] = true; /* a second app: its first sandbox, past the cap */
    node_kick(&n);
    assert_int_equal(n.held[1], 1);
    assert_int_equal(node_live(&n), 5);
    node_call_ends(&n, 0); /* the reserve goes back */
    assert_int_equal(n.held[0], 3);
    assert_int_equal(node_live(&n), 4);
    node_call_ends(&n, 0); /* then half each */
    assert_int_equal(n.held[0], 2);
    assert_int_equal(n.held[1], 2);
    /* Stable: whoever's calls end keeps its sandboxes. */
    size_t moved = n.moved;
    for (int i = 0; i < 20; i++)
        node_call_ends(&n, i % 2);
    assert_int_equal(n.moved, moved);
    assert_int_equal(n.held[0], 2);
    assert_int_equal(n.held[1], 2);
    /* The second app's load stops: the hog grows back into the cap as its
     * calls end and the second app's sandboxes close (idle timeout). */
    n.loaded[1] = false;
    n.held[1] = 0;
    node_kick(&n);
    assert_int_equal(n.held[0], 4);
}

static void test_three_apps_settle_max_min(void **state)
{
    (void)state;
    node_t n = {.cap = 7, .reserve = 1};
    n.loaded[0] = true;
    node_kick(&n);
    n.loaded[1] = n.loaded[2] = true;
    node_kick(&n);
    /* Each newcomer got one: the first past the cap, the second waits. */
    assert_int_equal(n.held[0], 7);
    assert_int_equal(n.held[1] + n.held[2], 1);
    for (int i = 0; i < 40; i++)
        node_call_ends(&n, (i * 5) % NAPPS);
    for (int a = 0; a < NAPPS; a++)
        assert_in_range(n.held[a], 2, 3); /* 7 among 3: 3, 2, 2 */
    assert_int_equal(node_live(&n), 7);
    size_t moved = n.moved;
    for (int i = 0; i < 30; i++)
        node_call_ends(&n, i % NAPPS);
    assert_int_equal(n.moved, moved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alone_uses_the_whole_cap),
        cmocka_unit_test(test_first_sandbox_goes_past_the_cap_within_the_reserve),
        cmocka_unit_test(test_room_goes_to_the_waiting_app_holding_fewer),
        cmocka_unit_test(test_idle_sandboxes_are_their_apps_share),
        cmocka_unit_test(test_gives_back),
        cmocka_unit_test(test_the_hog_gives_back_down_to_half),
        cmocka_unit_test(test_three_apps_settle_max_min),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
