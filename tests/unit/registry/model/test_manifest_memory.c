/* Tests of out-of-memory in registry/manifest.c's JSON path: the parser
 * leaves jansson's process-wide allocator alone (another module's choice
 * stays, and so does malloc), and still tells a syntax error from a failed
 * allocation when every allocation of a parse of a bad document fails in
 * turn (alloc_fail.h; the good documents' torture is test_manifest.c's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../common/alloc_fail.h"
#include "app_model.h"
#include "tine_common.h"

#include <errno.h>

static char err[1024];

static const char good_json[] = "{\"app\": \"a\", \"functions\": {\"f\": {\"handler\": \"f.lua#main\"}}}";
static const char bad_json[] = "{\"app\": \"a\",\n \"functions\": {\"f\": {\"handler\": \"f.lua#main\",}}}";
static const char bad_json_error[] = "tine.json:2:46: syntax error: string or '}' expected near '}'";

static int parse(const char *text)
{
    reg_manifest_t *m = NULL;
    int rc = reg_manifest_parse("tine.json", text, strlen(text), &m, err, sizeof err);
    reg_manifest_free(m);
    return rc;
}

/* Parsing JSON installs no allocator of its own: the one in place stays. */
static void test_allocator_left_alone(void **state)
{
    (void)state;
    assert_int_equal(parse(good_json), 0);
    assert_int_equal(parse(bad_json), TINE_EINVAL);
    assert_string_equal(err, bad_json_error);
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    assert_true(m == malloc);
    assert_true(f == free);
}

static long other_calls;

static void *other_malloc(size_t n)
{
    other_calls++;
    return malloc(n);
}

/* Another module's allocator is used by the parse and kept after it. */
static void test_other_allocator_kept(void **state)
{
    (void)state;
    json_set_alloc_funcs(other_malloc, free);
    assert_int_equal(parse(good_json), 0);
    assert_int_equal(parse(bad_json), TINE_EINVAL);
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    json_set_alloc_funcs(malloc, free);
    assert_true(m == other_malloc);
    assert_true(f == free);
    assert_true(other_calls > 0);
}

/* Each allocation of a parse of a document with a syntax error fails in
 * turn: the answer is -ENOMEM or that syntax error, never another one (a
 * failed copy in jansson reads as an "invalid token"). */
static void test_bad_document_torture(void **state)
{
    (void)state;
    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: skipped\n");
        return;
    }
    long n = 0, enomem = 0;
    for (;; n++) {
        alloc_fail_nth(n);
        int rc = parse(bad_json);
        bool hit = alloc_fail_hit();
        long live = alloc_live;
        alloc_fail_off();
        if (live != 0)
            fail_msg("%ld blocks left behind when allocation %ld failed", live, n);
        if (rc == -ENOMEM) {
            assert_true(hit);
            assert_string_equal(err, "tine.json: out of memory while reading the manifest");
            enomem++;
        } else if (rc != TINE_EINVAL || strcmp(err, bad_json_error) != 0) {
            fail_msg("allocation %ld failed: rc %d (%s)", n, rc, err);
        }
        if (!hit)
            break;
    }
    assert_true(enomem > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator_left_alone),
        cmocka_unit_test(test_other_allocator_kept),
        cmocka_unit_test(test_bad_document_torture),
    };
    return cmocka_run_group_tests_name("registry/manifest memory", tests, NULL, NULL);
}
