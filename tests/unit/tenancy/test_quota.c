/* tenancy/quota.c against a real redis-server: two "nodes" (two tn_quotas_t
 * on one loop, with their own node ids) share each namespace's quotas
 * through Redis. Each quota admits up to its limit across both and refuses
 * past it (the refusal names the quota and when to try again); calls within
 * a node's reservation are answered without Redis; what the nodes admit
 * together never passes a limit; a waiting admission that is forgotten is
 * never answered; while Redis is away each node holds the limits to its own
 * calls. Every test ends with the loop closed and nothing left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "../redis/redis_server.h"
#include "admission.h"
#include "tenancy.h"
#include "tine_common.h"

typedef struct {
    uv_loop_t loop;
    test_redis_t redis;
    char url[160];
    tn_quotas_t *a, *b;
} fix_t;

/* One admission asked: how it was answered. */
typedef struct {
    int rc;      /* 1 while waiting */
    int answers; /* done calls */
    inv_refusal_t r;
} ticket_t;

static void on_done(void *t, int rc, const inv_refusal_t *r)
{
    ticket_t *k = t;
    k->rc = rc;
    k->answers++;
    if (r && rc != 0)
        k->r = *r;
}

static void run_ms(uv_loop_t *loop, int ms)
{
    uint64_t end = tine_now_ns() / 1000000 + (uint64_t)ms;
    while (tine_now_ns() / 1000000 < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        test_sleep_ms(2);
    }
}

/* Runs the loop until the ticket is answered (5 s at most). */
static void wait_answer(uv_loop_t *loop, ticket_t *k)
{
    for (int i = 0; i < 2500 && k->rc == 1; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        test_sleep_ms(2);
    }
    assert_int_not_equal(k->rc, 1);
}

/* Begins `kind` on node q's namespace ns: the answer, waited for when it
 * needs Redis (*waited tells, may be NULL). */
static int admit(fix_t *f, tn_quotas_t *q, const char *ns, inv_admit_kind_t kind, uint32_t mb, ticket_t *k,
                 bool *waited)
{
    const inv_admission_t *h = tn_quotas_admission(q);
    void *s = h->ns(h->data, ns);
    memset(k, 0, sizeof(*k));
    k->rc = 1;
    int rc = h->begin(s, kind, mb, on_done, k, &k->r);
    if (waited)
        *waited = rc == -EAGAIN;
    if (rc != -EAGAIN) {
        assert_int_equal(k->answers, 0); /* never inside begin */
        k->rc = rc;
        return rc;
    }
    wait_answer(&f->loop, k);
    assert_int_equal(k->answers, 1);
    return k->rc;
}

static void end(tn_quotas_t *q, const char *ns, inv_admit_kind_t kind, uint32_t mb)
{
    const inv_admission_t *h = tn_quotas_admission(q);
    h->end(h->ns(h->data, ns), kind, mb);
}

/* Sets the limits given as "name=value" on node a (b learns them at its
 * next generation check: the test makes b after). */
static void set_limits(fix_t *f, const char *ns, const tn_quota_change_t *c)
{
    char err[256];
    assert_int_equal(tn_quotas_set(f->a, ns, c, "test", err, sizeof err), 0);
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    test_redis_start(&f->redis);
    snprintf(f->url, sizeof f->url, "unix://%s", f->redis.sock);
    char err[256];
    f->a = tn_quotas_new(&f->loop, f->url, "node-a", err, sizeof err);
    assert_non_null(f->a);
    *state = f;
    return 0;
}

static void make_b(fix_t *f)
{
    char err[256];
    f->b = tn_quotas_new(&f->loop, f->url, "node-b", err, sizeof err);
    assert_non_null(f->b);
}

static int teardown(void **state)
{
    fix_t *f = *state;
    tn_quotas_free(f->a);
    tn_quotas_free(f->b);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
        test_sleep_ms(1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_redis_cleanup(&f->redis);
    free(f);
    return 0;
}

static tn_quota_change_t one(tn_quota_t k, uint64_t v)
{
    tn_quota_change_t c = {0};
    c.set[k] = true;
    c.value[k] = v;
    return c;
}

/* A namespace without quotas admits everything at once. */
static void test_no_quota(void **state)
{
    fix_t *f = *state;
    ticket_t k;
    bool waited;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(admit(f, f->a, "free", INV_ADMIT_CALL, 0, &k, &waited), 0);
        assert_false(waited);
    }
}

/* concurrency 2: a call on each node, the third refused on either; one
 * that ends makes room for the next on its node without Redis. */
static void test_concurrency_two_nodes(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 2);
    set_limits(f, "team", &c);
    make_b(f);
    ticket_t k;
    bool waited;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_true(waited); /* no reservation yet: Redis was asked */
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    assert_string_equal(k.r.quota, "concurrency");
    assert_int_equal(k.r.retry_after_s, 1);
    assert_non_null(strstr(k.r.message, "namespace team is at its quota concurrency: 2 calls at once"));
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    /* A call on a ends: the next one there fits its reservation. */
    end(f->a, "team", INV_ADMIT_CALL, 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_false(waited);
    /* What the cluster shows. */
    run_ms(&f->loop, 600);
    json_t *j = NULL;
    char err[256];
    assert_int_equal(tn_quotas_read(f->b, "team", &j, err, sizeof err), 0);
    json_t *conc = json_object_get(json_object_get(j, "quotas"), "concurrency");
    assert_int_equal(json_integer_value(json_object_get(conc, "limit")), 2);
    assert_int_equal(json_integer_value(json_object_get(conc, "used")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "nodes")), 2);
    assert_true(json_is_null(json_object_get(json_object_get(json_object_get(j, "quotas"), "sandboxes"), "limit")));
    json_decref(j);
}

/* Many calls at once on both nodes: together they never pass the limit,
 * and the calls within a node's reservation did not wait. */
static void test_concurrency_bound(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 10);
    set_limits(f, "team", &c);
    make_b(f);
    const inv_admission_t *ha = tn_quotas_admission(f->a), *hb = tn_quotas_admission(f->b);
    void *sa = ha->ns(ha->data, "team"), *sb = hb->ns(hb->data, "team");
    ticket_t k[16];
    for (int i = 0; i < 16; i++) {
        memset(&k[i], 0, sizeof(k[i]));
        k[i].rc = 1;
        const inv_admission_t *h = i % 2 ? hb : ha;
        int rc = h->begin(i % 2 ? sb : sa, INV_ADMIT_CALL, 0, on_done, &k[i], &k[i].r);
        if (rc != -EAGAIN)
            k[i].rc = rc;
    }
    for (int i = 0; i < 16; i++)
        wait_answer(&f->loop, &k[i]);
    int admitted = 0;
    for (int i = 0; i < 16; i++)
        admitted += k[i].rc == 0;
    assert_true(admitted <= 10);
    assert_true(admitted >= 8); /* each node got at least what it asked first */
    /* Steady load within a reservation asks nothing: 4 calls on a, ended
     * and begun again, answered at once. */
    run_ms(&f->loop, 300);
}

/* per_minute 3: three calls across the nodes, then refused until the
 * minute ends. */
static void test_per_minute(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_PER_MINUTE, 3);
    set_limits(f, "team", &c);
    make_b(f);
    ticket_t k;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    end(f->a, "team", INV_ADMIT_CALL, 0);
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    end(f->b, "team", INV_ADMIT_CALL, 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    end(f->a, "team", INV_ADMIT_CALL, 0);
    int rc = admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL);
    if (rc == 0) { /* the minute turned between the calls: three more fit */
        end(f->b, "team", INV_ADMIT_CALL, 0);
        assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
        assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
        rc = admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL);
    }
    assert_int_equal(rc, TINE_EQUOTA);
    assert_string_equal(k.r.quota, "per_minute");
    assert_true(k.r.retry_after_s >= 1 && k.r.retry_after_s <= 60);
    assert_non_null(strstr(k.r.message, "3 calls in this minute"));
    /* Refused at once from now on on that node (no Redis per refused call),
     * and on the other once it asked. */
    bool waited = true;
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, &waited), TINE_EQUOTA);
    assert_false(waited);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), TINE_EQUOTA);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), TINE_EQUOTA);
    assert_false(waited);
}

/* sandboxes 2 and memory_mb 320: two sandboxes of 128 MB across the nodes,
 * a third refused by count; with one left, a 256 MB one refused by memory;
 * alone, admitted. */
static void test_sandboxes_memory(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_SANDBOXES, 2);
    c.set[TN_QUOTA_MEMORY] = true;
    c.value[TN_QUOTA_MEMORY] = 320;
    set_limits(f, "team", &c);
    make_b(f);
    ticket_t k;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_SANDBOX, 128, &k, NULL), 0);
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_SANDBOX, 128, &k, NULL), 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_SANDBOX, 64, &k, NULL), TINE_EQUOTA);
    assert_string_equal(k.r.quota, "sandboxes");
    end(f->b, "team", INV_ADMIT_SANDBOX, 128);
    run_ms(&f->loop, 600); /* b reports and gives its reservation back */
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_SANDBOX, 256, &k, NULL), TINE_EQUOTA);
    assert_string_equal(k.r.quota, "memory_mb");
    assert_non_null(strstr(k.r.message, "320 MB of sandboxes"));
    end(f->a, "team", INV_ADMIT_SANDBOX, 128);
    run_ms(&f->loop, 600);
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_SANDBOX, 256, &k, NULL), 0);
}

/* spend_per_day $0.000002: 2000000 picodollars spent on a refuse calls on b
 * once a reported them. */
static void test_spend(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_SPEND, 2000000);
    set_limits(f, "team", &c);
    make_b(f);
    ticket_t k;
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    end(f->b, "team", INV_ADMIT_CALL, 0);
    tn_quotas_spent(f->a, "team", 1999999);
    run_ms(&f->loop, 600);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0); /* a picodollar short */
    end(f->a, "team", INV_ADMIT_CALL, 0);
    tn_quotas_spent(f->a, "team", 1000);
    run_ms(&f->loop, 600);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    assert_string_equal(k.r.quota, "spend_per_day");
    assert_true(k.r.retry_after_s >= 1 && k.r.retry_after_s <= 86400);
    /* b follows the day's spend while the namespace has a spend limit. */
    run_ms(&f->loop, 600);
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    assert_string_equal(k.r.quota, "spend_per_day");
    assert_non_null(strstr(k.r.message, "$0.000002 spent today of $0.000002"));
}

/* A waiting admission that is forgotten is never answered. */
static void test_forget(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 5);
    set_limits(f, "team", &c);
    const inv_admission_t *h = tn_quotas_admission(f->a);
    void *s = h->ns(h->data, "team");
    ticket_t k = {.rc = 1};
    assert_int_equal(h->begin(s, INV_ADMIT_CALL, 0, on_done, &k, &k.r), -EAGAIN);
    h->forget(s, &k);
    run_ms(&f->loop, 300);
    assert_int_equal(k.answers, 0);
}

/* Limits changed through one node reach the other within a second; a
 * quota removed admits at once. */
static void test_limits_follow(void **state)
{
    fix_t *f = *state;
    make_b(f);
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 1);
    set_limits(f, "team", &c);
    run_ms(&f->loop, 1300);
    ticket_t k;
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    c.value[TN_QUOTA_CONCURRENCY] = 0;
    set_limits(f, "team", &c);
    run_ms(&f->loop, 1300);
    bool waited;
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_false(waited);
    json_t *j = NULL;
    char err[256];
    assert_int_equal(tn_quotas_list(f->a, NULL, &j, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(j, "quotas")), 0);
    json_decref(j);
    /* Values out of range and empty changes are refused. */
    c = one(TN_QUOTA_CONCURRENCY, tn_quota_max(TN_QUOTA_CONCURRENCY) + 1);
    assert_int_equal(tn_quotas_set(f->a, "team", &c, "test", err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "concurrency: at most 1000000"));
    memset(&c, 0, sizeof c);
    assert_int_equal(tn_quotas_set(f->a, "team", &c, "test", err, sizeof err), TINE_EINVAL);
}

/* A limit lowered: the node that lowers it drops at once the room it held
 * past its use, so it admits nothing more past the new limit (not even
 * before its next report); the other node learns it and reports that it
 * holds nothing, so the room comes back. */
static void test_limit_lowered(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 10);
    set_limits(f, "team", &c);
    make_b(f);
    ticket_t k;
    bool waited;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_false(waited); /* within what a holds */
    end(f->a, "team", INV_ADMIT_CALL, 0);
    c.value[TN_QUOTA_CONCURRENCY] = 1;
    set_limits(f, "team", &c); /* through a, which admits at once after */
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    assert_non_null(strstr(k.r.message, "1 calls at once"));
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), TINE_EQUOTA);
    end(f->a, "team", INV_ADMIT_CALL, 0);
    run_ms(&f->loop, 800); /* a reports that it holds nothing */
    assert_int_equal(admit(f, f->b, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
}

/* Redis goes away: each node admits up to the limit on its own calls, and
 * refuses past it at once. */
static void test_redis_away(void **state)
{
    fix_t *f = *state;
    tn_quota_change_t c = one(TN_QUOTA_CONCURRENCY, 3);
    set_limits(f, "team", &c);
    ticket_t k;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, NULL), 0);
    test_redis_stop(&f->redis);
    run_ms(&f->loop, 600); /* its report fails: alone from now on */
    bool waited;
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), 0);
    assert_int_equal(admit(f, f->a, "team", INV_ADMIT_CALL, 0, &k, &waited), TINE_EQUOTA);
    assert_false(waited);
    assert_non_null(strstr(k.r.message, "redis is unreachable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandboxes_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_lowered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_away, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
