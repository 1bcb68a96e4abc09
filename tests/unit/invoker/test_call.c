/* Tests of invoker/call.c, in process on a real libuv loop with a fake
 * zygote (fake_zygote.h): the callback contract of inv_call (called exactly
 * once, never inside the call that started it, even when the failure is
 * found there or the call is started from another call's callback),
 * inv_call_cancel at each stage of a call, and the activation records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_zygote.h"

static const char manifest[] = "app: demo\n"
                               "functions:\n"
                               "  one:  { handler: h.lua#one, timeout: 5s, concurrency: 1 }\n"
                               "  wide: { handler: h.lua#wide, timeout: 5s, concurrency: 8 }\n";

/* Makes the zygote go away, so that a call needing a new sandbox fails
 * inside inv_call. */
static void lose_the_zygote(fx_t *f)
{
    FX_WAIT(f, f->inv->nspare == 1, 5000);
    fx_result_t *spare = fx_call(f, "one", "ok"); /* takes the spare */
    FX_WAIT(f, spare->done, 5000);
    fx_zygote_exit(f);
    FX_WAIT(f, f->inv->zygote_gone, 5000);
}

static void test_a_failure_found_inside_inv_call_is_delivered_later(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    lose_the_zygote(&f);
    int before = f.activations;
    fx_result_t *a = fx_call(&f, "wide", "ok"); /* fails at once: no sandbox can start */
    assert_false(a->done);
    assert_int_equal(f.activations, before + 1); /* recorded at once */
    uv_run(&f.loop, UV_RUN_NOWAIT);              /* the next loop turn */
    assert_true(a->done);
    assert_false(a->inside);
    assert_int_equal(a->code, TINE_ECRASH);
    assert_int_equal(a->status, 503);
    assert_string_equal(a->error, "cannot start a sandbox: the zygote is gone");
    assert_int_equal(strlen(a->id), 32);
    fx_teardown(&f);
}

/* A callback that starts another call (as events and tine.invoke do). */
typedef struct {
    fx_t *f;
    fx_result_t *first;
    fx_result_t *second;
    bool second_done_on_return;
} chain_t;

static void on_first_done(void *data, const inv_result_t *res)
{
    chain_t *ch = data;
    fx_on_done(ch->first, res);
    ch->second = fx_call(ch->f, "wide", "ok");
    ch->second_done_on_return = ch->second->done;
}

static void test_a_call_started_from_a_callback(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    lose_the_zygote(&f);
    chain_t ch = {.f = &f, .first = &f.results[f.nresults++]};
    json_t *req = json_pack("{s:s}", "kind", "http");
    f.in_api++;
    assert_int_equal(inv_call(f.inv, f.v, fx_fn(f.v, "one"), req, "ok", 2, on_first_done, &ch, &ch.first->call), 0);
    f.in_api--;
    ch.first->accepted = true;
    FX_WAIT(&f, ch.first->done && ch.second != NULL && ch.second->done, 5000);
    assert_int_equal(ch.first->status, 200); /* the sandbox of one still runs */
    assert_false(ch.second_done_on_return);
    assert_int_equal(ch.second->status, 503);
    assert_true(ch.first->order < ch.second->order);
    fx_teardown(&f);
}

static void test_cancel_a_queued_call(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "sleep:200");
    fx_result_t *b = fx_call(&f, "one", "ok");
    fx_result_t *c = fx_call(&f, "one", "ok");
    inv_pool_t *p = fx_pool(&f, f.v, "one");
    assert_int_equal(p->queued, 2);
    fx_cancel(&f, b); /* it leaves the queue at once */
    assert_int_equal(p->queued, 1);
    FX_WAIT(&f, a->done && c->done, 5000);
    FX_RUN_FOR(&f, 50);
    assert_int_equal(b->calls, 0);
    assert_int_equal(f.activations, 2); /* b never ran */
    fx_teardown(&f);
}

static void test_cancel_a_running_call(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "sleep:100");
    fx_cancel(&f, a); /* it runs to its end; nobody hears of it */
    inv_pool_t *p = fx_pool(&f, f.v, "one");
    FX_WAIT(&f, p->nidle == 1, 5000);
    assert_int_equal(a->calls, 0);
    assert_int_equal(f.activations, 1);
    fx_result_t *b = fx_call(&f, "one", "ok");
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 200);
    fx_teardown(&f);
}

static void test_cancel_a_call_whose_failure_is_due(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    lose_the_zygote(&f);
    fx_result_t *a = fx_call(&f, "wide", "ok");
    assert_false(a->done);
    fx_cancel(&f, a); /* between the failure and its delivery */
    FX_RUN_FOR(&f, 50);
    assert_int_equal(a->calls, 0);
    fx_teardown(&f);
}

static void test_inv_free_fails_calls_on_the_next_turn(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "hang");
    fx_result_t *b = fx_call(&f, "one", "ok");
    FX_WAIT(&f, fx_pool(&f, f.v, "one")->nbusy == 1, 5000);
    f.in_api++;
    inv_free(f.inv);
    f.in_api--;
    f.inv = NULL;
    assert_false(a->done || b->done);
    FX_WAIT(&f, a->done && b->done, 5000);
    assert_int_equal(a->status, 503);
    assert_int_equal(b->status, 503);
    assert_string_equal(b->error, "the node is shutting down");
    fx_teardown(&f);
}

/* A failure's callback that frees the invoker (as tined's shutdown may
 * run from any callback). */
static void on_done_then_free(void *data, const inv_result_t *res)
{
    fx_result_t *r = data;
    fx_on_done(r, res);
    fx_now->in_api++;
    inv_free(fx_now->inv);
    fx_now->in_api--;
    fx_now->inv = NULL;
}

static void test_inv_free_from_a_failure_callback(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    lose_the_zygote(&f);
    fx_result_t *running = fx_call(&f, "one", "hang"); /* on the sandbox of one */
    FX_WAIT(&f, fx_pool(&f, f.v, "one")->nbusy == 1, 5000);
    fx_result_t *a = &f.results[f.nresults++];
    json_t *req = json_pack("{s:s}", "kind", "http");
    f.in_api++;
    assert_int_equal(inv_call(f.inv, f.v, fx_fn(f.v, "wide"), req, "ok", 2, on_done_then_free, a, &a->call), 0);
    f.in_api--;
    a->accepted = true;
    fx_result_t *b = fx_call(&f, "wide", "ok"); /* fails too, delivered in the same turn as a */
    FX_WAIT(&f, a->done && b->done && running->done, 5000);
    assert_int_equal(a->status, 503);
    assert_int_equal(b->status, 503);
    assert_int_equal(running->status, 503);
    assert_string_equal(running->error, "the node is shutting down");
    assert_true(running->order > b->order);
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_failure_found_inside_inv_call_is_delivered_later),
        cmocka_unit_test(test_a_call_started_from_a_callback),
        cmocka_unit_test(test_cancel_a_queued_call),
        cmocka_unit_test(test_cancel_a_running_call),
        cmocka_unit_test(test_cancel_a_call_whose_failure_is_due),
        cmocka_unit_test(test_inv_free_fails_calls_on_the_next_turn),
        cmocka_unit_test(test_inv_free_from_a_failure_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
