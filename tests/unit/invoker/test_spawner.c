/* Tests of invoker/spawner.c, in process on a real libuv loop with a fake
 * zygote (fake_zygote.h): the spare blank taken by a cold start and
 * refilled after its call, sandboxes waiting for the zygote's answers, a
 * failed fork, and the zygote going away. */
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

static void test_cold_start_takes_the_spare(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    FX_WAIT(&f, f.inv->nspare == 1, 5000); /* asked for at start */
    assert_int_equal(f.requests, 1);
    pid_t spare = f.inv->spare[0].pid;
    fx_result_t *a = fx_call(&f, "one", "sleep:200");
    assert_int_equal(f.inv->nspare, 0);
    assert_int_equal(f.inv->spares_deferred, 1);
    FX_RUN_FOR(&f, 50);
    assert_int_equal(f.requests, 1); /* no fork while the cold start loads */
    FX_WAIT(&f, a->done, 5000);
    assert_true(a->cold);
    assert_int_equal(fx_pid(a), spare);
    /* Answered: the spare is forked again. */
    FX_WAIT(&f, f.inv->nspare == 1, 5000);
    assert_int_equal(f.requests, 2);
    assert_int_equal(f.inv->spares_deferred, 0);
    fx_teardown(&f);
}

static void test_sandboxes_wait_for_the_zygote(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    FX_WAIT(&f, f.inv->nspare == 1, 5000);
    f.hold = true;
    fx_result_t *a = fx_call(&f, "wide", "ok"); /* the spare */
    fx_result_t *b = fx_call(&f, "wide", "ok");
    fx_result_t *c = fx_call(&f, "wide", "ok");
    assert_int_equal(f.inv->nwaiting, 2);
    FX_WAIT(&f, a->done && f.held == 2, 5000);
    FX_RUN_FOR(&f, 50);
    assert_false(b->done || c->done);
    fx_zygote_release(&f);
    FX_WAIT(&f, b->done && c->done, 5000);
    assert_true(b->cold && c->cold);
    assert_int_equal(f.inv->nwaiting, 0);
    assert_int_not_equal(fx_pid(b), fx_pid(c));
    fx_teardown(&f);
}

static void test_failed_fork(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    FX_WAIT(&f, f.inv->nspare == 1, 5000);
    f.fail_next = 1;
    fx_result_t *a = fx_call(&f, "wide", "sleep:100"); /* the spare */
    fx_result_t *b = fx_call(&f, "wide", "ok");        /* waits: its fork fails */
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->code, TINE_ECRASH);
    assert_int_equal(b->status, 503);
    assert_non_null(strstr(b->error, "the zygote could not fork"));
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    /* The next fork works. */
    fx_result_t *c = fx_call(&f, "wide", "sleep:100");
    fx_result_t *d = fx_call(&f, "wide", "ok");
    FX_WAIT(&f, c->done && d->done, 5000);
    assert_int_equal(d->status, 200);
    fx_teardown(&f);
}

static void test_zygote_gone(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    FX_WAIT(&f, f.inv->nspare == 1, 5000);
    f.hold = true;
    fx_result_t *a = fx_call(&f, "wide", "sleep:200"); /* the spare */
    fx_result_t *b = fx_call(&f, "wide", "ok");        /* waits for a process */
    FX_WAIT(&f, f.held == 1, 5000);
    fx_zygote_exit(&f);
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->code, TINE_ECRASH);
    assert_int_equal(b->status, 503);
    assert_string_equal(b->error, "cannot start a sandbox: the zygote is gone");
    assert_true(f.inv->zygote_gone);
    /* Running sandboxes keep serving. */
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    fx_result_t *c = fx_call(&f, "wide", "ok");
    FX_WAIT(&f, c->done, 5000);
    assert_int_equal(c->status, 200);
    assert_int_equal(fx_pid(c), fx_pid(a));
    /* A call that needs a new sandbox fails, after inv_call returned (a
     * failure found inside inv_call is still delivered later). */
    fx_result_t *d = fx_call(&f, "wide", "sleep:100");
    fx_result_t *e = fx_call(&f, "wide", "ok");
    assert_false(e->done);
    FX_WAIT(&f, d->done && e->done, 5000);
    assert_int_equal(e->status, 503);
    assert_int_equal(d->status, 200);
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_start_takes_the_spare),
        cmocka_unit_test(test_sandboxes_wait_for_the_zygote),
        cmocka_unit_test(test_failed_fork),
        cmocka_unit_test(test_zygote_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
