/* Tests of common/tine_list.h: the intrusive list's order after each kind
 * of insertion, O(1) removal from anywhere (first, middle, last, the only
 * one), removal while walking, splicing, and links that know whether they
 * are on a list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tine_list.h"

typedef struct {
    int v;
    tine_list_t link;
    tine_list_t other; /* a second list the same item may be on */
} item_t;

/* The values on `head`, first to last, checked against `want` (n of them)
 * both ways: the prev links must mirror the next links. */
static void assert_values(const tine_list_t *head, const int *want, size_t n)
{
    size_t i = 0;
    for (const tine_list_t *l = head->next; l != head; l = l->next, i++) {
        assert_true(i < n);
        assert_int_equal(tine_list_entry(l, item_t, link)->v, want[i]);
        assert_ptr_equal(l->next->prev, l);
    }
    assert_int_equal(i, n);
    for (const tine_list_t *l = head->prev; l != head; l = l->prev)
        assert_int_equal(tine_list_entry(l, item_t, link)->v, want[--i]);
    assert_int_equal(i, 0);
    assert_int_equal(tine_list_empty(head), n == 0);
}

static void items_init(item_t *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        it[i].v = (int)i;
        tine_list_init(&it[i].link);
        tine_list_init(&it[i].other);
    }
}

static void test_empty(void **state)
{
    (void)state;
    tine_list_t head;
    tine_list_init(&head);
    assert_true(tine_list_empty(&head));
    assert_null(tine_list_first(&head));
    assert_null(tine_list_last(&head));
    assert_null(tine_list_pop_head(&head));
    tine_list_t *l;
    int walked = 0;
    TINE_LIST_FOREACH(l, &head)
        walked++;
    assert_int_equal(walked, 0);
}

static void test_insert_head_and_tail(void **state)
{
    (void)state;
    item_t it[4];
    items_init(it, 4);
    tine_list_t head;
    tine_list_init(&head);
    tine_list_insert_tail(&head, &it[1].link);
    tine_list_insert_tail(&head, &it[2].link);
    tine_list_insert_head(&head, &it[0].link);
    tine_list_insert_tail(&head, &it[3].link);
    assert_values(&head, (int[]){0, 1, 2, 3}, 4);
    assert_ptr_equal(tine_list_first(&head), &it[0].link);
    assert_ptr_equal(tine_list_last(&head), &it[3].link);
    assert_ptr_equal(tine_list_next(&head, &it[1].link), &it[2].link);
    assert_null(tine_list_next(&head, &it[3].link));
    assert_ptr_equal(tine_list_entry(tine_list_last(&head), item_t, link), &it[3]);
}

static void test_remove_anywhere(void **state)
{
    (void)state;
    item_t it[5];
    items_init(it, 5);
    tine_list_t head;
    tine_list_init(&head);
    for (int i = 0; i < 5; i++)
        tine_list_insert_tail(&head, &it[i].link);
    tine_list_remove(&it[2].link); /* middle */
    assert_false(tine_list_linked(&it[2].link));
    assert_values(&head, (int[]){0, 1, 3, 4}, 4);
    tine_list_remove(&it[0].link); /* first */
    assert_values(&head, (int[]){1, 3, 4}, 3);
    tine_list_remove(&it[4].link); /* last */
    assert_values(&head, (int[]){1, 3}, 2);
    tine_list_remove(&it[4].link); /* on no list: nothing happens */
    assert_values(&head, (int[]){1, 3}, 2);
    assert_ptr_equal(tine_list_pop_head(&head), &it[1].link);
    assert_false(tine_list_linked(&it[1].link));
    tine_list_remove(&it[3].link); /* the only one */
    assert_values(&head, NULL, 0);
    /* A removed element goes on again. */
    tine_list_insert_head(&head, &it[2].link);
    assert_true(tine_list_linked(&it[2].link));
    assert_values(&head, (int[]){2}, 1);
}

static void test_foreach_safe_removes_while_walking(void **state)
{
    (void)state;
    item_t it[6];
    items_init(it, 6);
    tine_list_t head;
    tine_list_init(&head);
    for (int i = 0; i < 6; i++)
        tine_list_insert_tail(&head, &it[i].link);
    tine_list_t *l, *tmp;
    int seen = 0;
    TINE_LIST_FOREACH_SAFE(l, tmp, &head) {
        item_t *x = tine_list_entry(l, item_t, link);
        seen++;
        if (x->v % 2 == 0)
            tine_list_remove(l);
    }
    assert_int_equal(seen, 6);
    assert_values(&head, (int[]){1, 3, 5}, 3);
    TINE_LIST_FOREACH_SAFE(l, tmp, &head)
        tine_list_remove(l);
    assert_values(&head, NULL, 0);
}

static void test_splice(void **state)
{
    (void)state;
    item_t it[6];
    items_init(it, 6);
    tine_list_t a, b;
    tine_list_init(&a);
    tine_list_init(&b);
    tine_list_insert_tail(&a, &it[3].link);
    tine_list_insert_tail(&a, &it[4].link);
    tine_list_insert_tail(&b, &it[1].link);
    tine_list_insert_tail(&b, &it[2].link);
    tine_list_splice_head(&a, &b);
    assert_values(&a, (int[]){1, 2, 3, 4}, 4);
    assert_values(&b, NULL, 0);
    tine_list_splice_head(&a, &b); /* an empty list moves nothing */
    assert_values(&a, (int[]){1, 2, 3, 4}, 4);
    tine_list_insert_tail(&b, &it[5].link);
    tine_list_splice_tail(&a, &b);
    assert_values(&a, (int[]){1, 2, 3, 4, 5}, 5);
    assert_values(&b, NULL, 0);
    tine_list_splice_tail(&b, &a); /* into an empty list */
    assert_values(&b, (int[]){1, 2, 3, 4, 5}, 5);
    assert_values(&a, NULL, 0);
}

static void test_an_item_on_two_lists(void **state)
{
    (void)state;
    item_t it[3];
    items_init(it, 3);
    tine_list_t all, some;
    tine_list_init(&all);
    tine_list_init(&some);
    for (int i = 0; i < 3; i++)
        tine_list_insert_tail(&all, &it[i].link);
    tine_list_insert_head(&some, &it[2].other);
    tine_list_insert_head(&some, &it[0].other);
    tine_list_remove(&it[0].link);
    assert_values(&all, (int[]){1, 2}, 2);
    assert_true(tine_list_linked(&it[0].other));
    assert_ptr_equal(tine_list_entry(tine_list_first(&some), item_t, other), &it[0]);
    assert_ptr_equal(tine_list_entry(tine_list_last(&some), item_t, other), &it[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_insert_head_and_tail),
        cmocka_unit_test(test_remove_anywhere), cmocka_unit_test(test_foreach_safe_removes_while_walking),
        cmocka_unit_test(test_splice),          cmocka_unit_test(test_an_item_on_two_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
