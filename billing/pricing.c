/* Pricing in integers: billed time in 100 ms units, memory-time in MB-ms,
 * money in picodollars. GB-s = MB-ms / 1024000 and 1024000 = 2^13 * 5^3, so
 * every GB-s figure is a finite decimal (at most 13 digits after the point)
 * and is printed exactly; only the per-invocation cost is rounded, once, to
 * a whole picodollar, and totals are sums of those integers. */
#include "billing.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PUSD_PER_USD UINT64_C(1000000000000) /* 1e12 */
#define MB_MS_PER_GB_S UINT64_C(1024000) /* 1024 MB * 1000 ms */
#define MAX_PRICE_USD 1000ull

int bill_parse_price(const char *s, uint64_t *pusd, char *err, size_t errlen)
{
    return bill_parse_usd(s, MAX_PRICE_USD, "price", pusd, err, errlen);
}

int bill_parse_usd(const char *s, uint64_t max_usd, const char *what, uint64_t *pusd, char *err, size_t errlen)
{
    uint64_t whole = 0, frac = 0;
    int whole_digits = 0, frac_digits = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++, whole_digits++)
        if (whole <= max_usd) /* past it the value no longer matters: no overflow */
            whole = whole * 10 + (uint64_t)(*p - '0');
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (frac_digits == 12) {
                snprintf(err, errlen, "'%s': more than 12 digits after the point (%ss are counted in 1e-12 dollars)", s,
                         what);
                return TINE_EINVAL;
            }
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
    }
    if (*p != '\0' || (whole_digits == 0 && frac_digits == 0)) {
        snprintf(err, errlen, "'%s': expected a decimal number of dollars such as 0.0000166667", s);
        return TINE_EINVAL;
    }
    for (int i = frac_digits; i < 12; i++)
        frac *= 10;
    if (whole > max_usd || (whole == max_usd && frac > 0)) {
        snprintf(err, errlen, "'%s': over the largest %s accepted (%llu dollars)", s, what,
                 (unsigned long long)max_usd);
        return TINE_EINVAL;
    }
    *pusd = whole * PUSD_PER_USD + frac;
    return 0;
}

uint64_t bill_billed_ms(uint64_t duration_ns, uint32_t timeout_ms)
{
    const uint64_t unit_ns = BILL_UNIT_MS * 1000000ull;
    if (timeout_ms > 0 && duration_ns > (uint64_t)timeout_ms * 1000000ull)
        duration_ns = (uint64_t)timeout_ms * 1000000ull;
    uint64_t units = duration_ns / unit_ns + (duration_ns % unit_ns != 0);
    return (units ? units : 1) * BILL_UNIT_MS;
}

uint64_t bill_mb_ms(uint32_t memory_mb, uint64_t billed_ms)
{
    return (uint64_t)memory_mb * billed_ms;
}

uint64_t bill_cost_pusd(const bill_prices_t *p, uint64_t mb_ms)
{
    __extension__ typedef unsigned __int128 u128;
    u128 compute = ((u128)mb_ms * p->gb_s_pusd + MB_MS_PER_GB_S / 2) / MB_MS_PER_GB_S;
    u128 total = compute + p->request_pusd;
    return total > UINT64_MAX ? UINT64_MAX : (uint64_t)total;
}

uint64_t bill_activation_cost(const bill_prices_t *p, const inv_activation_t *a)
{
    if (!a->dispatched)
        return 0;
    return bill_cost_pusd(p, bill_mb_ms(a->memory_mb, bill_billed_ms(a->duration_ns, a->timeout_ms)));
}

void bill_format_pusd(uint64_t pusd, char out[32])
{
    size_t n = tine_fmt_u64(out, pusd / PUSD_PER_USD, 1);
    out[n++] = '.';
    tine_fmt_u64(out + n, pusd % PUSD_PER_USD, 12);
}

void bill_format_gb_s(uint64_t mb_ms, char out[48])
{
    /* rem / 1024000 = rem * 9765625 / 10^13, exactly. */
    uint64_t frac = (mb_ms % MB_MS_PER_GB_S) * UINT64_C(9765625);
    size_t n = tine_fmt_u64(out, mb_ms / MB_MS_PER_GB_S, 1);
    if (frac == 0)
        return;
    out[n++] = '.';
    size_t len = tine_fmt_u64(out + n, frac, 13);
    while (len > 0 && out[n + len - 1] == '0')
        out[n + --len] = '\0';
}

void bill_day(uint64_t unix_ms, char out[11])
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}
