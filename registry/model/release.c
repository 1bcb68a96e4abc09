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
        snprintf(err, errlen, "'%.*s' is not a version number (expected VERSION=PERCENT such as 2=10)",
                 (int)(eq - arg), arg);
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
