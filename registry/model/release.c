/* The pure parts of releases (docs/releases.md): tag names, the split's
 * client buckets and the "N=PERCENT" of `tine split`. */
#include "app_model.h"
#include "tine_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool reg_tag_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > REG_TAG_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

unsigned reg_split_bucket(const char *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    /* FNV's low bits mix poorly for short keys: fold the high half in. */
    h ^= h >> 16;
    h *= 0x45d9f3bu;
    h ^= h >> 16;
    return h % 10000u;
}

bool reg_split_chooses(const char *key, size_t len, unsigned percent)
{
    return percent > 0 && reg_split_bucket(key, len) < percent * 100u;
}

int reg_split_parse(const char *arg, uint64_t *version, unsigned *percent, char *err, size_t errlen)
{
    const char *eq = arg ? strchr(arg, '=') : NULL;
    if (eq == NULL) {
        snprintf(err, errlen, "expected VERSION=PERCENT such as 2=10, not '%s'", arg ? arg : "");
        return TINE_EINVAL;
    }
    if (eq == arg) {
        snprintf(err, errlen, "the version is missing in '%s' (expected VERSION=PERCENT such as 2=10)", arg);
        return TINE_EINVAL;
    }
    if (arg[0] < '0' || arg[0] > '9') {
        snprintf(err, errlen, "'%.*s' is not a version number (expected VERSION=PERCENT such as 2=10)", (int)(eq - arg),
                 arg);
        return TINE_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end != eq || v == 0) {
        snprintf(err, errlen, "'%.*s' is not a version number >= 1 (expected VERSION=PERCENT such as 2=10)",
                 (int)(eq - arg), arg);
        return TINE_EINVAL;
    }
    const char *p = eq + 1;
    if (*p < '0' || *p > '9') {
        snprintf(err, errlen, "percent '%s' is not a number from 0 to 100", p);
        return TINE_EINVAL;
    }
    errno = 0;
    unsigned long pc = strtoul(p, &end, 10);
    if (*end == '%')
        end++;
    if (errno != 0 || *end != '\0' || pc > 100) {
        snprintf(err, errlen, "percent '%s' is not a number from 0 to 100", p);
        return TINE_EINVAL;
    }
    *version = v;
    *percent = (unsigned)pc;
    return 0;
}

/* --------------------------------------------------------------- rollouts */

const uint32_t reg_latency_bounds_ms[REG_LATENCY_BUCKETS - 1] = {1,   2,   5,    10,   25,   50,   100,
                                                                 250, 500, 1000, 2500, 5000, 10000};

size_t reg_latency_bucket(uint64_t duration_ns)
{
    for (size_t i = 0; i < REG_LATENCY_BUCKETS - 1; i++)
        if (duration_ns <= (uint64_t)reg_latency_bounds_ms[i] * 1000000u)
            return i;
    return REG_LATENCY_BUCKETS - 1;
}

uint32_t reg_stats_quantile_ms(const reg_version_stats_t *s, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < REG_LATENCY_BUCKETS; i++)
        total += s->buckets[i];
    if (total == 0)
        return 0;
    /* The rank of the quantile, rounded up: p99 of 100 calls is the 99th. */
    uint64_t rank = (uint64_t)(q * (double)total);
    if ((double)rank < q * (double)total)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < REG_LATENCY_BUCKETS - 1; i++) {
        seen += s->buckets[i];
        if (seen >= rank)
            return reg_latency_bounds_ms[i];
    }
    return UINT32_MAX;
}

reg_rollout_decision_t reg_rollout_decide(const reg_rollout_t *r, const reg_version_stats_t *s, bool interval_over,
                                          char *reason, size_t reasonlen)
{
    if (s->requests >= r->min_requests && s->requests > 0) {
        /* errors / requests > max / 10000, in integers */
        if (s->errors * 10000u > (uint64_t)r->max_error_permyriad * s->requests) {
            snprintf(reason, reasonlen,
                     "error rate %.2f%% (%" PRIu64 " of %" PRIu64 " requests) is over max_error_rate %u.%02u%%",
                     100.0 * (double)s->errors / (double)s->requests, s->errors, s->requests,
                     r->max_error_permyriad / 100, r->max_error_permyriad % 100);
            return REG_ROLLOUT_BREACH;
        }
        uint32_t p99 = reg_stats_quantile_ms(s, 0.99);
        if (r->max_p99_ms > 0 && p99 > r->max_p99_ms) {
            if (p99 == UINT32_MAX)
                snprintf(reason, reasonlen, "p99 over %ums is over max_p99 %ums (%" PRIu64 " requests)",
                         reg_latency_bounds_ms[REG_LATENCY_BUCKETS - 2], r->max_p99_ms, s->requests);
            else
                snprintf(reason, reasonlen, "p99 up to %ums is over max_p99 %ums (%" PRIu64 " requests)", p99,
                         r->max_p99_ms, s->requests);
            return REG_ROLLOUT_BREACH;
        }
    }
    if (!interval_over) {
        snprintf(reason, reasonlen, "the step runs (%" PRIu64 " requests so far)", s->requests);
        return REG_ROLLOUT_WAIT;
    }
    if (s->requests < r->min_requests) {
        snprintf(reason, reasonlen, "waiting for %" PRIu64 " more requests (min_requests %u)",
                 (uint64_t)r->min_requests - s->requests, r->min_requests);
        return REG_ROLLOUT_WAIT;
    }
    snprintf(reason, reasonlen, "the step passed: %" PRIu64 " requests, %" PRIu64 " errors, p99 up to %ums",
             s->requests, s->errors, reg_stats_quantile_ms(s, 0.99));
    return REG_ROLLOUT_ADVANCE;
}
