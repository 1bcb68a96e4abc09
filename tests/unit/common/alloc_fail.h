/* Allocation failure injection for unit tests (curl's "torture"). A test
 * program that includes this header (in one file) replaces malloc, calloc
 * and realloc with wrappers around glibc's own allocator that fail on
 * demand, the way glibc fails: NULL with errno ENOMEM.
 *
 *   alloc_fail_nth(n)    the allocation n from now fails (0: the next one),
 *                        once; alloc_fail_hit() tells whether it did
 *   alloc_fail_from(n)   every allocation of n bytes or more fails, until
 *                        alloc_fail_off() (a forked child inherits it)
 *   alloc_live           blocks allocated minus blocks freed since
 *                        alloc_fail_nth / alloc_fail_from
 *
 * Sanitizer builds keep their allocator: there ALLOC_FAIL_WORKS is 0, the
 * functions do nothing, and the tests that need them skip. */
#ifndef TINE_TEST_ALLOC_FAIL_H
#define TINE_TEST_ALLOC_FAIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_FAIL_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_FAIL_UNDER_ASAN 1
#endif

#ifdef ALLOC_FAIL_UNDER_ASAN
#define ALLOC_FAIL_WORKS 0
#else
#define ALLOC_FAIL_WORKS 1
#endif

static long alloc_fail_countdown = -1;    /* fail when it reaches 0; -1: never */
static size_t alloc_fail_size = SIZE_MAX; /* fail every allocation this big */
static bool alloc_fail_hit_flag;
static long alloc_live;

__attribute__((unused)) static void alloc_fail_off(void)
{
    alloc_fail_countdown = -1;
    alloc_fail_size = SIZE_MAX;
}

__attribute__((unused)) static void alloc_fail_nth(long n)
{
    alloc_fail_off();
    alloc_fail_hit_flag = false;
    alloc_live = 0;
    alloc_fail_countdown = n;
}

__attribute__((unused)) static void alloc_fail_from(size_t n)
{
    alloc_fail_off();
    alloc_fail_hit_flag = false;
    alloc_live = 0;
    alloc_fail_size = n;
}

/* Whether an allocation failed since alloc_fail_nth or alloc_fail_from. */
__attribute__((unused)) static bool alloc_fail_hit(void)
{
    return alloc_fail_hit_flag;
}

#if ALLOC_FAIL_WORKS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

/* Whether this allocation of n bytes fails (then errno is ENOMEM). */
static bool alloc_fail_now(size_t n)
{
    bool fail = n >= alloc_fail_size || (alloc_fail_countdown >= 0 && alloc_fail_countdown-- == 0);
    if (fail) {
        alloc_fail_hit_flag = true;
        errno = ENOMEM;
    }
    return fail;
}

void *malloc(size_t n)
{
    void *p = alloc_fail_now(n) ? NULL : __libc_malloc(n);
    alloc_live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = alloc_fail_now(size && n > SIZE_MAX / size ? SIZE_MAX : n * size) ? NULL : __libc_calloc(n, size);
    alloc_live += p != NULL;
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p = alloc_fail_now(n) ? NULL : __libc_realloc(old, n);
    alloc_live += p != NULL && old == NULL;
    return p;
}

void free(void *p)
{
    alloc_live -= p != NULL;
    __libc_free(p);
}
#endif

#endif
