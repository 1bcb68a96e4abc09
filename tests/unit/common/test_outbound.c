/* Tests of common/outbound.c: the outbound policy tine.http and the exec
 * egress proxy share. Host names against allow lists (absent, "*", names,
 * subdomains, IPs), and the addresses no unlisted host may be at: loopback,
 * link-local, unspecified, metadata, IPv4 inside IPv6, and the addresses of
 * this machine's own interfaces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "outbound.h"

/* The reason for `ip` (v4 or v6 text), or NULL. */
static const char *refused(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return tine_outbound_address_refused((struct sockaddr *)&ss);
}

static void assert_reason(const char *ip, const char *want)
{
    const char *got = refused(ip);
    if (want == NULL && got != NULL)
        fail_msg("%s refused (%s), expected allowed", ip, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("%s: expected [%s], got [%s]", ip, want, got ? got : "allowed");
}

static void test_loopback_link_local_unspecified(void **state)
{
    (void)state;
    assert_reason("127.0.0.1", "a loopback address");
    assert_reason("127.255.3.4", "a loopback address");
    assert_reason("::1", "a loopback address");
    assert_reason("0.0.0.0", "an unspecified address");
    assert_reason("0.1.2.3", "an unspecified address");
    assert_reason("::", "an unspecified address");
    assert_reason("169.254.169.254", "a link-local address");
    assert_reason("fe80::1", "a link-local address");
    assert_reason("febf::1", "a link-local address");
    assert_reason("fd00:ec2::254", "a cloud metadata address");
}

static void test_ipv4_inside_ipv6(void **state)
{
    (void)state;
    assert_reason("::ffff:127.0.0.1", "a loopback address");
    assert_reason("::ffff:169.254.169.254", "a link-local address");
    assert_reason("::ffff:0.0.0.0", "an unspecified address");
    assert_reason("::127.0.0.1", "a loopback address"); /* IPv4-compatible */
    assert_reason("::ffff:198.51.100.7", NULL);
}

static void test_public_and_private_pass(void **state)
{
    (void)state;
    assert_reason("198.51.100.7", NULL);
    assert_reason("10.1.2.3", NULL);
    assert_reason("2001:db8::7", NULL);
    assert_reason("fd00::7", NULL);
    assert_reason("fec0::1", NULL); /* fe80::/10 ends at febf */
    assert_reason("128.0.0.1", NULL);
    assert_reason("169.253.1.1", NULL);
}

/* Every address of this machine's interfaces is refused, whatever range. */
static void test_own_addresses(void **state)
{
    (void)state;
    struct ifaddrs *list = NULL;
    assert_int_equal(getifaddrs(&list), 0);
    int checked = 0;
    for (struct ifaddrs *i = list; i; i = i->ifa_next) {
        if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        const char *why = tine_outbound_address_refused(i->ifa_addr);
        assert_non_null(why);
        checked++;
    }
    freeifaddrs(list);
    assert_true(checked > 0); /* loopback at least */
}

static void test_other_families(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_string_equal(tine_outbound_address_refused((struct sockaddr *)&un), "not an IP address");
}

static void test_hosts(void **state)
{
    (void)state;
    const char *const list[] = {"api.example.com", "*.example.org", "10.0.0.7", "::1"};
    bool listed = true;
    assert_true(tine_outbound_host_allowed(NULL, 0, false, "anything.test", &listed));
    assert_false(listed);
    assert_false(tine_outbound_host_allowed(NULL, 0, true, "anything.test", &listed));
    assert_true(tine_outbound_host_allowed(list, 4, true, "api.example.com", &listed));
    assert_true(listed);
    assert_true(tine_outbound_host_allowed(list, 4, true, "a.b.example.org", &listed));
    assert_true(listed);
    assert_false(tine_outbound_host_allowed(list, 4, true, "example.org", &listed));
    assert_false(tine_outbound_host_allowed(list, 4, true, "xexample.org", &listed));
    assert_false(tine_outbound_host_allowed(list, 4, true, "api.example.com.", &listed));
    assert_true(tine_outbound_host_allowed(list, 4, true, "10.0.0.7", &listed));
    assert_true(tine_outbound_host_allowed(list, 4, true, "::1", &listed));
    assert_false(tine_outbound_host_allowed(list, 4, true, "127.1", &listed));
    const char *const star[] = {"*", "db.internal"};
    assert_true(tine_outbound_host_allowed(star, 2, true, "anything.test", &listed));
    assert_false(listed); /* "*" lets it through, its addresses are still checked */
    assert_true(tine_outbound_host_allowed(star, 2, true, "db.internal", &listed));
    assert_true(listed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_link_local_unspecified),
        cmocka_unit_test(test_ipv4_inside_ipv6),
        cmocka_unit_test(test_public_and_private_pass),
        cmocka_unit_test(test_own_addresses),
        cmocka_unit_test(test_other_families),
        cmocka_unit_test(test_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
