/* Where a function may connect to: the one outbound policy shared by
 * tine.http (invoker/hostcall_http.c, checked in tined) and the egress proxy
 * of exec programs with `network: true` (sandbox/exec_proxy.c, checked in
 * their exec runner). See docs/sdk-lua.md#tinehttp and README, "Exec
 * functions".
 *
 * Two steps, both needed before a connect:
 * 1. the host name against the app's allow_outbound (tine_outbound_host_allowed);
 * 2. unless an entry other than "*" named the host (a deliberate opt-in in
 *    the manifest), every address the host resolved to against the
 *    addresses no function may reach (tine_outbound_address_refused):
 *    loopback, link-local, unspecified, cloud metadata and the node's own. */
#ifndef TINE_OUTBOUND_H
#define TINE_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* Whether the allow list lets a function reach `host` (lower case, IPv6
 * without brackets). `allow` holds `n` entries as the manifest parser
 * stores them (lower case: "api.example.com", "*.example.com" for any
 * subdomain, "*" for any host, an IP address); `set` is false when the
 * manifest has no allow_outbound, and then every host is allowed. *listed
 * is set when an entry other than "*" named the host: its addresses are
 * then not checked. Cannot fail. */
bool tine_outbound_host_allowed(const char *const *allow, size_t n, bool set, const char *host, bool *listed);

/* Why a function may not connect to `sa` (IPv4, IPv6, or IPv4 in IPv6) when
 * its host was not listed: NULL when it may, else a phrase for a message
 * ("a loopback address", "a link-local address", "an unspecified address",
 * "a cloud metadata address", "an address of this node"). Any other
 * family is refused ("not an IP address"). The node's own addresses are
 * those of the interfaces in the caller's network namespace (getifaddrs,
 * read on every call: interfaces come and go); when they cannot be read
 * every address is refused ("this node's addresses cannot be read"). */
const char *tine_outbound_address_refused(const struct sockaddr *sa);

#endif
