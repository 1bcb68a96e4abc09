/* Reason phrases of the statuses the gateway sends (response.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway_internal.h"

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(gw__reason(200), "OK");
    assert_string_equal(gw__reason(201), "Created");
    assert_string_equal(gw__reason(302), "Found");
    assert_string_equal(gw__reason(404), "Not Found");
    assert_string_equal(gw__reason(413), "Content Too Large");
    assert_string_equal(gw__reason(418), "I'm a teapot");
    assert_string_equal(gw__reason(500), "Internal Server Error");
    /* A status without one (or out of range) gets an empty phrase. */
    assert_string_equal(gw__reason(299), "");
    assert_string_equal(gw__reason(599), "");
    assert_string_equal(gw__reason(600), "");
    assert_string_equal(gw__reason(-1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_phrases),
    };
    return cmocka_run_group_tests_name("gateway/response", tests, NULL, NULL);
}
