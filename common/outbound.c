/* The outbound policy of functions (outbound.h): which hosts an app's
 * allow_outbound lets it reach, and which addresses no function reaches
 * unless its app named the host. */
#include "outbound.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

bool tine_outbound_host_allowed(const char *const *allow, size_t n, bool set, const char *host, bool *listed)
{
    *listed = false;
    if (!set)
        return true;
    bool any = false;
    size_t hl = strlen(host);
    for (size_t i = 0; i < n; i++) {
        const char *p = allow[i];
        if (strcmp(p, "*") == 0) {
            any = true;
        } else if (p[0] == '*' && p[1] == '.') {
            size_t sl = strlen(p + 1); /* ".example.com" */
            if (hl > sl && strcmp(host + hl - sl, p + 1) == 0)
                return *listed = true;
        } else if (strcmp(p, host) == 0) {
            return *listed = true;
        }
    }
    return any;
}

/* The IPv4 address in `sa` (network order bytes) when it holds one: an
 * IPv4 socket address, or IPv6 with an IPv4-mapped (::ffff:a.b.c.d) or
 * IPv4-compatible (::a.b.c.d, not :: or ::1) address. NULL otherwise. */
static const uint8_t *ipv4_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (sa->sa_family != AF_INET6)
        return NULL;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[12] = {0};
    if (memcmp(b, mapped, 12) == 0)
        return b + 12;
    if (memcmp(b, zero, 12) == 0 && (b[12] | b[13] | b[14] | (b[15] & 0xfe)) != 0)
        return b + 12;
    return NULL;
}

/* Whether one of the interfaces of this network namespace has the address
 * `v4` (4 bytes) or `v6` (16 bytes; one of them NULL). -1 when the list
 * cannot be read. */
static int own_address(const uint8_t *v4, const uint8_t *v6)
{
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return -1;
    int found = 0;
    for (struct ifaddrs *i = list; i != NULL && !found; i = i->ifa_next) {
        const struct sockaddr *a = i->ifa_addr;
        if (a == NULL)
            continue;
        if (v4 != NULL && a->sa_family == AF_INET)
            found = memcmp(&((const struct sockaddr_in *)a)->sin_addr, v4, 4) == 0;
        else if (v6 != NULL && a->sa_family == AF_INET6)
            found = memcmp(((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr, v6, 16) == 0;
    }
    freeifaddrs(list);
    return found;
}

const char *tine_outbound_address_refused(const struct sockaddr *sa)
{
    const uint8_t *v4 = ipv4_of(sa), *v6 = NULL;
    if (v4 != NULL) {
        if (v4[0] == 127)
            return "a loopback address";
        if (v4[0] == 0)
            return "an unspecified address";
        if (v4[0] == 169 && v4[1] == 254)
            return "a link-local address";
    } else if (sa->sa_family == AF_INET6) {
        v6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t zero[15] = {0};
        /* fd00:ec2::254: the instance metadata service of EC2 over IPv6. */
        static const uint8_t ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
        if (memcmp(v6, zero, 15) == 0)
            return v6[15] == 1 ? "a loopback address" : "an unspecified address";
        if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0x80)
            return "a link-local address";
        if (memcmp(v6, ec2, 16) == 0)
            return "a cloud metadata address";
    } else {
        return "not an IP address";
    }
    int own = own_address(v4, v6);
    if (own < 0)
        return "this node's addresses cannot be read";
    return own ? "an address of this node" : NULL;
}
