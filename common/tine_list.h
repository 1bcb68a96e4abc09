/* The one intrusive list of tine: a doubly linked circular list whose links
 * are embedded in the structs it holds (libuv's queue.h, h2o's linklist.h,
 * the Linux kernel's list.h). A list is a head `tine_list_t`; an element
 * embeds a `tine_list_t` link per list it may be on and is recovered from it
 * with tine_list_entry (container_of). Inserting and removing are O(1) and
 * never allocate; a link removed with tine_list_remove is reset, so
 * tine_list_linked tells whether an element is on a list.
 *
 *     typedef struct { int v; tine_list_t link; } item_t;
 *     tine_list_t items;
 *     tine_list_init(&items);
 *     tine_list_insert_tail(&items, &it->link);
 *     tine_list_t *l, *tmp;
 *     TINE_LIST_FOREACH_SAFE(l, tmp, &items) {
 *         item_t *x = tine_list_entry(l, item_t, link);
 *         if (x->v == 0)
 *             tine_list_remove(&x->link);
 *     }
 */
#ifndef TINE_LIST_H
#define TINE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tine_list {
    struct tine_list *prev, *next;
} tine_list_t;

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

/* The element of type `type` whose member `member` is the link `l`. */
#define tine_list_entry(l, type, member) container_of(l, type, member)

/* Makes `l` an empty list head, or an element link that is on no list. */
static inline void tine_list_init(tine_list_t *l)
{
    l->prev = l->next = l;
}

/* True when the list `head` holds no element. */
static inline bool tine_list_empty(const tine_list_t *head)
{
    return head->next == head;
}

/* True when the element link `l` is on a list (initialised links only). */
static inline bool tine_list_linked(const tine_list_t *l)
{
    return l->next != l;
}

/* Links `l` (on no list) between `prev` and `next`. */
static inline void tine_list__link(tine_list_t *prev, tine_list_t *l, tine_list_t *next)
{
    l->prev = prev;
    l->next = next;
    prev->next = l;
    next->prev = l;
}

/* Puts `l` (on no list) first on `head`. */
static inline void tine_list_insert_head(tine_list_t *head, tine_list_t *l)
{
    tine_list__link(head, l, head->next);
}

/* Puts `l` (on no list) last on `head`. */
static inline void tine_list_insert_tail(tine_list_t *head, tine_list_t *l)
{
    tine_list__link(head->prev, l, head);
}

/* Takes `l` off its list and leaves it on none; a link on no list is left
 * as it is. */
static inline void tine_list_remove(tine_list_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

/* The first element link of `head`, or NULL when it is empty. */
static inline tine_list_t *tine_list_first(const tine_list_t *head)
{
    return head->next != head ? head->next : NULL;
}

/* The last element link of `head`, or NULL when it is empty. */
static inline tine_list_t *tine_list_last(const tine_list_t *head)
{
    return head->prev != head ? head->prev : NULL;
}

/* The link after `l` on `head`, or NULL when `l` is the last. */
static inline tine_list_t *tine_list_next(const tine_list_t *head, const tine_list_t *l)
{
    return l->next != head ? l->next : NULL;
}

/* Takes the first element link off `head` and returns it; NULL when empty. */
static inline tine_list_t *tine_list_pop_head(tine_list_t *head)
{
    tine_list_t *l = tine_list_first(head);
    if (l != NULL)
        tine_list_remove(l);
    return l;
}

/* Moves every element of `from` to the front of `head`, in their order;
 * `from` is left empty. */
static inline void tine_list_splice_head(tine_list_t *head, tine_list_t *from)
{
    if (tine_list_empty(from))
        return;
    tine_list_t *first = from->next, *last = from->prev;
    last->next = head->next;
    head->next->prev = last;
    head->next = first;
    first->prev = head;
    tine_list_init(from);
}

/* Moves every element of `from` to the back of `head`, in their order;
 * `from` is left empty. */
static inline void tine_list_splice_tail(tine_list_t *head, tine_list_t *from)
{
    if (tine_list_empty(from))
        return;
    tine_list_t *first = from->next, *last = from->prev;
    first->prev = head->prev;
    head->prev->next = first;
    head->prev = last;
    last->next = head;
    tine_list_init(from);
}

/* Walks the links of `head` first to last; the body must not remove `l`. */
#define TINE_LIST_FOREACH(l, head) for ((l) = (head)->next; (l) != (head); (l) = (l)->next)

/* Walks the links of `head` first to last; the body may remove `l` (only
 * `l`: `tmp` holds the next one). */
#define TINE_LIST_FOREACH_SAFE(l, tmp, head)                                                                           \
    for ((l) = (head)->next, (tmp) = (l)->next; (l) != (head); (l) = (tmp), (tmp) = (l)->next)

#endif
