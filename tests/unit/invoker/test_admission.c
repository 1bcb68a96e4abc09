/* The invoker's admission hooks (inv_config_t.admission, common/admission.h)
 * in process on a real libuv loop with a fake zygote (fake_zygote.h) and a
 * scripted admission: a call refused at once or after waiting gets 429 with
 * the quota's name on a later loop turn and no activation record; a call
 * that waits runs once admitted; cancelling or freeing the invoker while a
 * call waits forgets it; every call and sandbox admitted is ended exactly
 * once; a pool whose sandbox start is refused refuses its calls only when
 * it has no sandbox, and closes an idle sandbox of another function of the
 * namespace to make room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_zygote.h"

static const char manifest[] = "app: demo\n"
                               "namespace: team\n"
                               "functions:\n"
                               "  one:  { handler: h.lua#one, timeout: 5s, concurrency: 1, memory: 64 }\n"
                               "  wide: { handler: h.lua#wide, timeout: 5s, concurrency: 8, memory: 128 }\n";

/* The scripted admission: counts what began and ended; each kind is
 * admitted, refused or made to wait, and sandboxes past `max_sandboxes`
 * (0: none) are refused. */
typedef struct {
    int call_mode, sandbox_mode; /* 0, TINE_EQUOTA or -EAGAIN */
    int max_sandboxes;
    int calls, sandboxes, memory; /* begun and not ended */
    int nwait;
    void *wait_ticket[16];
    inv_admit_done_cb wait_done[16];
    int forgotten;
    int in_hook;
    char ns[32];
} fake_t;

static fake_t fake;

static void *fake_ns(void *data, const char *ns)
{
    snprintf(fake.ns, sizeof fake.ns, "%s", ns);
    return data;
}

static int fake_begin(void *ns, inv_admit_kind_t kind, uint32_t mb, inv_admit_done_cb done, void *ticket,
                      inv_refusal_t *r)
{
    assert_ptr_equal(ns, &fake);
    int mode = kind == INV_ADMIT_CALL ? fake.call_mode : fake.sandbox_mode;
    if (kind == INV_ADMIT_SANDBOX && fake.max_sandboxes && fake.sandboxes >= fake.max_sandboxes)
        mode = TINE_EQUOTA;
    if (mode == TINE_EQUOTA) {
        r->quota = kind == INV_ADMIT_CALL ? "concurrency" : "sandboxes";
        r->retry_after_s = 7;
        snprintf(r->message, sizeof r->message, "namespace team is at its quota %s", r->quota);
        return TINE_EQUOTA;
    }
    if (mode == -EAGAIN) {
        assert_true(fake.nwait < 16);
        fake.wait_ticket[fake.nwait] = ticket;
        fake.wait_done[fake.nwait++] = done;
        return -EAGAIN;
    }
    if (kind == INV_ADMIT_CALL)
        fake.calls++;
    else
        fake.sandboxes++, fake.memory += (int)mb;
    return 0;
}

static void fake_forget(void *ns, void *ticket)
{
    (void)ns;
    for (int i = 0; i < fake.nwait; i++)
        if (fake.wait_ticket[i] == ticket) {
            fake.wait_ticket[i] = fake.wait_ticket[--fake.nwait];
            fake.wait_done[i] = fake.wait_done[fake.nwait];
            fake.forgotten++;
            return;
        }
    fail_msg("forget of a ticket that does not wait");
}

static void fake_end(void *ns, inv_admit_kind_t kind, uint32_t mb)
{
    (void)ns;
    if (kind == INV_ADMIT_CALL)
        fake.calls--;
    else
        fake.sandboxes--, fake.memory -= (int)mb;
    assert_true(fake.calls >= 0 && fake.sandboxes >= 0);
}

static const inv_admission_t hooks = {fake_ns, fake_begin, fake_forget, fake_end, &fake};

/* Answers the first waiting admission with rc (admitted: counted). */
static void fake_answer(fx_t *f, int rc, inv_admit_kind_t kind, uint32_t mb)
{
    assert_true(fake.nwait > 0);
    void *ticket = fake.wait_ticket[0];
    inv_admit_done_cb done = fake.wait_done[0];
    fake.wait_ticket[0] = fake.wait_ticket[--fake.nwait];
    fake.wait_done[0] = fake.wait_done[fake.nwait];
    inv_refusal_t r = {.quota = "per_minute", .retry_after_s = 42};
    snprintf(r.message, sizeof r.message, "namespace team is at its quota per_minute");
    if (rc == 0 && kind == INV_ADMIT_CALL)
        fake.calls++;
    else if (rc == 0)
        fake.sandboxes++, fake.memory += (int)mb;
    (void)f;
    done(ticket, rc, &r);
}

/* r was refused by quota `quota`: 429, Retry-After, on a later turn. */
static void assert_refused(const fx_result_t *r, const char *quota, uint32_t retry_after_s)
{
    assert_true(r->done);
    assert_false(r->inside);
    assert_int_equal(r->code, TINE_EQUOTA);
    assert_int_equal(r->status, 429);
    assert_string_equal(r->quota, quota);
    assert_int_equal(r->retry_after_s, retry_after_s);
}

static void setup(fx_t *f)
{
    memset(&fake, 0, sizeof fake);
    inv_config_t cfg = {.admission = &hooks};
    fx_setup(f, manifest, &cfg);
}

/* Every admission ended once the invoker is gone. */
static void teardown(fx_t *f)
{
    fx_teardown(f);
    assert_int_equal(fake.calls, 0);
    assert_int_equal(fake.sandboxes, 0);
    assert_int_equal(fake.memory, 0);
    assert_int_equal(fake.nwait, 0);
}

static void test_admitted_calls_run_and_end(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    assert_string_equal(fake.ns, "");
    fx_result_t *a = fx_call(&f, "wide", "ok");
    assert_string_equal(fake.ns, "team");
    assert_int_equal(fake.calls, 1);
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(a->status, 200);
    assert_int_equal(fake.calls, 0);     /* ended with the call */
    assert_int_equal(fake.sandboxes, 1); /* its sandbox stays, idle */
    assert_int_equal(fake.memory, 128);
    teardown(&f);
}

static void test_a_call_refused_at_once(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    fake.call_mode = TINE_EQUOTA;
    fx_result_t *a = fx_call(&f, "wide", "ok");
    assert_false(a->done);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_refused(a, "concurrency", 7);
    assert_string_equal(a->error, "namespace team is at its quota concurrency");
    assert_int_equal(f.activations, 0); /* it never ran */
    assert_int_equal(fake.sandboxes, 0);
    teardown(&f);
}

static void test_a_call_that_waits(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    fake.call_mode = -EAGAIN;
    fx_result_t *a = fx_call(&f, "wide", "ok");
    fx_result_t *b = fx_call(&f, "wide", "ok");
    assert_int_equal(fake.nwait, 2);
    FX_RUN_FOR(&f, 50);
    assert_false(a->done || b->done);
    fake_answer(&f, 0, INV_ADMIT_CALL, 0);           /* a: admitted, runs */
    fake_answer(&f, TINE_EQUOTA, INV_ADMIT_CALL, 0); /* b: refused */
    FX_WAIT(&f, a->done && b->done, 5000);
    assert_int_equal(a->status, 200);
    assert_refused(b, "per_minute", 42);
    assert_int_equal(f.activations, 1);
    assert_int_equal(fake.calls, 0);
    teardown(&f);
}

static void test_cancel_or_free_while_waiting(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    fake.call_mode = -EAGAIN;
    fx_result_t *a = fx_call(&f, "wide", "ok");
    fx_result_t *b = fx_call(&f, "wide", "ok");
    fx_cancel(&f, a);
    assert_int_equal(fake.forgotten, 1);
    assert_int_equal(fake.nwait, 1);
    f.in_api++;
    inv_free(f.inv);
    f.in_api--;
    f.inv = NULL;
    assert_int_equal(fake.forgotten, 2);
    assert_false(b->done);
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 503);
    teardown(&f);
}

/* A sandbox refused: with no sandbox of its own the pool refuses its call;
 * with one busy, the next call waits for it. */
static void test_sandbox_refused(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    fake.sandbox_mode = TINE_EQUOTA;
    fx_result_t *a = fx_call(&f, "wide", "ok");
    FX_WAIT(&f, a->done, 5000);
    assert_refused(a, "sandboxes", 7);
    assert_int_equal(fake.calls, 0);
    fake.sandbox_mode = 0;
    fx_result_t *b = fx_call(&f, "wide", "sleep:150");
    FX_WAIT(&f, fx_pool(&f, f.v, "wide")->nbusy == 1, 5000);
    fake.sandbox_mode = TINE_EQUOTA;
    fx_result_t *c = fx_call(&f, "wide", "ok");
    FX_RUN_FOR(&f, 50);
    assert_false(c->done); /* queued behind b's sandbox */
    FX_WAIT(&f, b->done && c->done, 5000);
    assert_int_equal(c->status, 200);
    assert_int_equal(fx_pid(b), fx_pid(c));
    teardown(&f);
}

/* At the namespace's sandbox limit an idle sandbox of another function of
 * it closes to make room; a sandbox admission that waits starts the
 * sandbox once answered. */
static void test_sandbox_room_and_wait(void **state)
{
    (void)state;
    fx_t f;
    setup(&f);
    fake.max_sandboxes = 1;
    fx_result_t *a = fx_call(&f, "one", "ok");
    FX_WAIT(&f, a->done, 5000);
    assert_int_equal(fx_pool(&f, f.v, "one")->nidle, 1);
    fx_result_t *b = fx_call(&f, "wide", "ok");
    FX_WAIT(&f, b->done, 5000);
    assert_int_equal(b->status, 200);
    assert_int_equal(fx_pool(&f, f.v, "one")->nlive, 0); /* closed for it */
    assert_int_equal(fake.sandboxes, 1);
    fake.max_sandboxes = 0;
    fake.sandbox_mode = -EAGAIN;
    fx_result_t *c = fx_call(&f, "one", "ok");
    FX_RUN_FOR(&f, 50);
    assert_false(c->done);
    assert_true(fx_pool(&f, f.v, "one")->admit_waiting);
    fake.sandbox_mode = 0;
    fake_answer(&f, 0, INV_ADMIT_SANDBOX, 64); /* given back, then asked again: admitted */
    FX_WAIT(&f, c->done, 5000);
    assert_int_equal(c->status, 200);
    assert_int_equal(fake.sandboxes, 2);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admitted_calls_run_and_end),
        cmocka_unit_test(test_a_call_refused_at_once),
        cmocka_unit_test(test_a_call_that_waits),
        cmocka_unit_test(test_cancel_or_free_while_waiting),
        cmocka_unit_test(test_sandbox_refused),
        cmocka_unit_test(test_sandbox_room_and_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
