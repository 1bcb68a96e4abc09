/* Tests of invoker/sandbox_io.c, in process on a real libuv loop with a
 * fake zygote (fake_zygote.h): answers, a handler error, timeouts (504, the
 * sandbox killed, the next call on a fresh one), crashes (502, the calls
 * pipelined behind requeued and served elsewhere), failures while loading
 * (error, death, overrun of the start limit), and a sandbox breaking the
 * protocol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_zygote.h"

static const char manifest[] = "app: demo\n"
                               "functions:\n"
                               "  one:        { handler: h.lua#one, timeout: 5s, concurrency: 1 }\n"
                               "  short:      { handler: h.lua#short, timeout: 300ms, concurrency: 1 }\n"
                               "  load_error: { handler: h.lua#load_error, timeout: 5s, concurrency: 1 }\n"
                               "  load_crash: { handler: h.lua#load_crash, timeout: 5s, concurrency: 1 }\n"
                               "  load_hang:  { handler: h.lua#load_hang, timeout: 100ms, concurrency: 1 }\n";

static void test_answer_and_handler_error(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "hello");
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->code, 0);
    assert_int_equal(a->status, 200);
    char want[64];
    snprintf(want, sizeof want, "%d hello", (int)fx_pid(a));
    assert_string_equal(a->body, want);
    assert_int_equal(strlen(a->id), 32);
    fx_result_t *b = fx_call(&f, "one", "raise");
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->code, TINE_EHANDLER);
    assert_int_equal(b->status, 500);
    assert_string_equal(b->error, "boom");
    /* A handler error leaves the sandbox serving. */
    fx_result_t *c = fx_call(&f, "one", "ok");
    FX_WAIT(&f, c->done, 5000);
    assert_int_equal(fx_pid(c), fx_pid(a));
    assert_int_equal(f.activations, 3);
    fx_teardown(&f);
}

static void test_timeout_kills_and_the_next_call_gets_a_fresh_sandbox(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *warm = fx_call(&f, "short", "ok");
    FX_WAIT(&f, warm->done, 5000);
    pid_t first = fx_pid(warm);
    inv_pool_t *p = fx_pool(&f, f.v, "short");
    fx_result_t *a = fx_call(&f, "short", "hang");
    fx_result_t *b = fx_call(&f, "short", "ok"); /* queued behind it (concurrency 1) */
    assert_int_equal(p->queued, 1);
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->code, TINE_ETIMEOUT);
    assert_int_equal(a->status, 504);
    assert_string_equal(a->error, "function short timed out after 300 ms");
    FX_WAIT(&f, fx_child_gone(&f, first), 2000);
    assert_true(fx_child_killed(&f, first));
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 200);
    assert_int_not_equal(fx_pid(b), first);
    assert_true(b->cold);
    fx_teardown(&f);
}

/* Trains `fn`'s pool to pipeline `depth` calls behind a busy sandbox. */
static inv_pool_t *train(fx_t *f, const char *fn, uint32_t depth)
{
    for (int i = 0; i < INV_PIPE_MIN_ANSWERS; i++) {
        fx_result_t *r = fx_call(f, fn, "ok");
        FX_WAIT(f, r->done, 5000);
    }
    inv_pool_t *p = fx_pool(f, f->v, fn);
    p->avg_ns = INV_PIPE_BUDGET_NS / depth;
    return p;
}

static void test_crash_fails_the_call_and_requeues_the_pipelined(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    inv_pool_t *p = train(&f, "one", 4);
    fx_result_t *a = fx_call(&f, "one", "sleepcrash:200");
    fx_result_t *b = fx_call(&f, "one", "ok");
    fx_result_t *c = fx_call(&f, "one", "ok");
    assert_int_equal(p->pipelined, 2);
    assert_int_equal(p->queued, 0);
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->code, TINE_ECRASH);
    assert_int_equal(a->status, 502);
    assert_non_null(strstr(a->error, "the sandbox of one crashed"));
    /* b and c never started: they are sent again, in order, to a new one. */
    assert_int_equal(p->requeued, 2);
    FX_WAIT(&f, b->done && c->done, 5000);
    assert_int_equal(b->status, 200);
    assert_int_equal(c->status, 200);
    assert_true(b->order < c->order);
    pid_t crashed = 0;
    for (size_t i = 0; i < f.nchildren; i++)
        if (fx_child_gone(&f, f.children[i].pid) && WIFEXITED(f.children[i].status) &&
            WEXITSTATUS(f.children[i].status) == 3)
            crashed = f.children[i].pid;
    assert_true(crashed > 0);
    assert_int_not_equal(fx_pid(b), crashed);
    assert_int_equal(fx_pid(b), fx_pid(c));
    fx_teardown(&f);
}

static void test_load_error_fails_the_waiting_calls(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "load_error", "ok");
    fx_result_t *b = fx_call(&f, "load_error", "ok");
    fx_result_t *c = fx_call(&f, "load_error", "ok");
    FX_WAIT(&f, a->done && b->done && c->done, 5000);
    for (fx_result_t *r = a; r <= c; r++) {
        assert_int_equal(r->code, TINE_EHANDLER);
        assert_int_equal(r->status, 500);
        assert_string_equal(r->error, "function load_error failed to load: module has no export load_error");
    }
    inv_pool_t *p = fx_pool(&f, f.v, "load_error");
    assert_true(p->start_failed);
    assert_int_equal(p->queued, 0);
    fx_teardown(&f);
}

static void test_death_while_loading(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "load_crash", "ok");
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->code, TINE_ECRASH);
    assert_int_equal(a->status, 502);
    assert_non_null(strstr(a->error, "the sandbox of load_crash died while loading"));
    fx_teardown(&f);
}

static void test_start_limit(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    FX_WAIT(&f, f.inv->nspare == 1, 5000);
    fx_result_t *a = fx_call(&f, "load_hang", "ok");
    inv_pool_t *p = fx_pool(&f, f.v, "load_hang");
    inv_sandbox_t *s = tine_list_entry(tine_list_first(&p->sandboxes), inv_sandbox_t, pool_link);
    pid_t pid = s->pid;
    assert_true(pid > 0); /* the spare */
    FX_RUN_FOR(&f, 500);
    assert_false(a->done); /* at least INV_MIN_START_MS, whatever its timeout */
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->code, TINE_ETIMEOUT);
    assert_int_equal(a->status, 504);
    assert_string_equal(a->error, "the sandbox of load_hang did not finish loading within 1000 ms");
    FX_WAIT(&f, fx_child_gone(&f, pid), 2000);
    assert_true(fx_child_killed(&f, pid));
    fx_teardown(&f);
}

static void test_protocol_break_kills_the_sandbox(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "one", "ok");
    FX_WAIT(&f, a->done, 5000);
    inv_pool_t *p = fx_pool(&f, f.v, "one");
    fx_result_t *b = fx_call(&f, "one", "badframe"); /* READY again, mid-call */
    assert_int_equal(p->nbusy, 1);
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->code, TINE_ECRASH);
    assert_int_equal(b->status, 502);
    assert_string_equal(b->error, "the sandbox sent an unexpected frame (type 1)");
    FX_WAIT(&f, fx_child_gone(&f, fx_pid(a)), 2000);
    assert_true(fx_child_killed(&f, fx_pid(a)));
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_and_handler_error),
        cmocka_unit_test(test_timeout_kills_and_the_next_call_gets_a_fresh_sandbox),
        cmocka_unit_test(test_crash_fails_the_call_and_requeues_the_pipelined),
        cmocka_unit_test(test_load_error_fails_the_waiting_calls),
        cmocka_unit_test(test_death_while_loading),
        cmocka_unit_test(test_start_limit),
        cmocka_unit_test(test_protocol_break_kills_the_sandbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
