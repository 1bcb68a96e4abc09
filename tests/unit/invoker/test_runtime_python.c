/* Tests of invoker/runtime_python.c, in process on a real libuv loop with
 * a fake zygote and fake Python zygotes (fake_zygote.h): a Python zygote
 * asked for when its version goes live, blank sandboxes from it for cold
 * starts and its spare, a zygote that cannot start failing the calls for
 * a backoff instead of being asked for again in a loop, and a retired
 * version's zygote let go once its last sandbox closed; a Node host beside
 * a Python zygote (the same state machine). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_zygote.h"

/* Whether pid is one of tine-zygote's fake sandboxes (not a fake Python
 * zygote's). */
static bool forked_by_tine_zygote(fx_t *f, pid_t pid)
{
    for (size_t i = 0; i < f->nchildren; i++)
        if (f->children[i].pid == pid)
            return true;
    return false;
}

static const char manifest[] = "app: demo\n"
                               "defaults: { runtime: python, timeout: 5s }\n"
                               "functions:\n"
                               "  py:  { handler: h.py#handle }\n"
                               "  two: { handler: h.py#other, concurrency: 1 }\n"
                               "  lua: { runtime: lua, handler: h.lua#one }\n";

static void test_zygote_serves_cold_and_warm(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    inv_version_live(f.inv, f.v);
    FX_WAIT(&f, f.python_requests == 1, 5000);
    pid_t zygote = f.python_zygote;
    fx_result_t *a = fx_call(&f, "py", "ok");
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    assert_true(a->cold);
    pid_t first = fx_pid(a);
    assert_true(first > 0);
    assert_false(forked_by_tine_zygote(&f, first)); /* the fake Python zygote's child */
    fx_result_t *b = fx_call(&f, "py", "ok");
    FX_WAIT(&f, b->done, 5000);
    assert_false(b->cold);
    assert_int_equal(fx_pid(b), first); /* warm: the same sandbox */
    /* Another function of the version: the same zygote; a Lua one: tine-zygote. */
    fx_result_t *c = fx_call(&f, "two", "ok");
    fx_result_t *d = fx_call(&f, "lua", "ok");
    FX_WAIT(&f, c->done && d->done, 5000);
    assert_int_equal(c->status, 200);
    assert_int_equal(d->status, 200);
    assert_true(forked_by_tine_zygote(&f, fx_pid(d)));
    assert_false(forked_by_tine_zygote(&f, fx_pid(c)));
    assert_int_equal(f.python_requests, 1);
    assert_int_equal(f.python_zygote, zygote);
    /* A call that kills its Python sandbox: 502, the next one starts anew. */
    fx_result_t *e = fx_call(&f, "py", "crash");
    FX_WAIT(&f, e->done, 5000);
    assert_int_equal(e->status, 502);
    fx_result_t *g = fx_call(&f, "py", "ok");
    FX_WAIT(&f, g->done, 5000);
    assert_int_equal(g->status, 200);
    assert_int_equal(f.python_requests, 1);
    fx_teardown(&f);
}

static void test_failed_zygote_is_not_restarted_in_a_loop(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    f.python_mode = "error";
    fx_result_t *a = fx_call(&f, "py", "ok"); /* asks for the zygote itself */
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 503);
    assert_string_equal(a->error, "cannot start the Python zygote: fake (app demo version 1)");
    /* Within the backoff: the same error at once, no new zygote. */
    fx_result_t *b = fx_call(&f, "two", "ok");
    fx_result_t *c = fx_call(&f, "py", "ok");
    FX_WAIT(&f, b->done && c->done, 1000);
    assert_int_equal(b->status, 503);
    assert_string_equal(c->error, a->error);
    FX_RUN_FOR(&f, 200);
    assert_int_equal(f.python_requests, 1);
    /* After it (1 s), the next call asks again, and a zygote that starts
     * serves. */
    FX_RUN_FOR(&f, 900);
    f.python_mode = "ready";
    fx_result_t *d = fx_call(&f, "py", "ok");
    FX_WAIT(&f, d->done, 5000);
    assert_int_equal(f.python_requests, 2);
    assert_int_equal(d->status, 200);
    fx_teardown(&f);
}

static void test_retired_version_lets_its_zygote_go(void **state)
{
    (void)state;
    fx_t f;
    fx_setup(&f, manifest, NULL);
    fx_result_t *a = fx_call(&f, "py", "sleep:300");
    FX_WAIT(&f, f.python_requests == 1, 5000);
    pid_t zygote = f.python_zygote;
    FX_RUN_FOR(&f, 100);
    inv_version_retired(f.inv, f.v);
    /* A busy sandbox finishes its call first: the zygote stays meanwhile. */
    FX_RUN_FOR(&f, 50);
    fx_reap(&f);
    assert_false(fx_child_gone(&f, zygote));
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    FX_WAIT(&f, (fx_reap(&f), fx_child_gone(&f, zygote)), 5000);
    fx_teardown(&f);
}

/* A version with Python and Node functions gets a Python zygote and a
 * Node host (one state machine, two kinds), each serving its own
 * functions' sandboxes; both go when the version is retired. */
static void test_node_host_beside_python_zygote(void **state)
{
    (void)state;
    static const char both[] = "app: demo\n"
                               "functions:\n"
                               "  py: { runtime: python, handler: h.py#handle }\n"
                               "  js: { runtime: node, handler: h.js#handle }\n";
    fx_t f;
    fx_setup(&f, both, NULL);
    inv_version_live(f.inv, f.v);
    FX_WAIT(&f, f.python_requests == 1 && f.node_requests == 1, 5000);
    pid_t host = f.node_host, zygote = f.python_zygote;
    assert_true(host != zygote);
    fx_result_t *a = fx_call(&f, "js", "ok");
    fx_result_t *b = fx_call(&f, "py", "ok");
    FX_WAIT(&f, a->done && b->done, 5000);
    assert_int_equal(a->status, 200);
    assert_int_equal(b->status, 200);
    assert_true(a->cold);
    assert_false(forked_by_tine_zygote(&f, fx_pid(a)));
    assert_false(forked_by_tine_zygote(&f, fx_pid(b)));
    assert_true(fx_pid(a) != fx_pid(b));
    fx_result_t *c = fx_call(&f, "js", "ok");
    FX_WAIT(&f, c->done, 5000);
    assert_false(c->cold);
    assert_int_equal(fx_pid(c), fx_pid(a));
    assert_int_equal(f.node_requests, 1);
    assert_int_equal(f.python_requests, 1);
    /* Retired: both go once their sandboxes closed. */
    inv_version_retired(f.inv, f.v);
    FX_WAIT(&f, (fx_reap(&f), fx_child_gone(&f, host) && fx_child_gone(&f, zygote)), 5000);
    fx_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_host_beside_python_zygote),
        cmocka_unit_test(test_zygote_serves_cold_and_warm),
        cmocka_unit_test(test_failed_zygote_is_not_restarted_in_a_loop),
        cmocka_unit_test(test_retired_version_lets_its_zygote_go),
    };
    return cmocka_run_group_tests_name("invoker/runtime_python", tests, NULL, NULL);
}
