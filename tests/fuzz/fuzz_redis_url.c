/* libFuzzer driver: Redis URLs (--redis, TINE_REDIS_URL, config files). A
 * URL that parses has its parts; one that does not has a message; neither
 * prints the password. */
#include "tine_redis.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char err[512];
    err[0] = '\0';
    rds_url_t u;
    if (rds_url_parse(s, &u, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
    } else {
        if (u.redacted == NULL || (u.transport == RDS_UNIX) != (u.path != NULL) ||
            (u.transport == RDS_SENTINEL) != (u.master != NULL) ||
            (u.transport != RDS_UNIX && u.transport != RDS_SENTINEL && u.naddrs != 1) ||
            (u.transport == RDS_SENTINEL && (u.naddrs < 1 || u.naddrs > RDS_MAX_SENTINELS)))
            abort();
        for (size_t i = 0; i < u.naddrs; i++)
            if (u.addrs[i].port < 1 || u.addrs[i].port > 65535 || u.addrs[i].host[0] == '\0')
                abort();
        /* The form messages print hides the passwords. */
        if (u.password && strstr(u.redacted, ":***@") == NULL)
            abort();
        /* Every sentinel_password= of the query shown is followed by the
         * mask (or the whole query went under the mask of a user part). */
        const char *q = u.sentinel_password ? strchr(u.redacted, '?') : NULL;
        for (const char *p = q ? strstr(q, "sentinel_password=") : NULL; p; p = strstr(p + 1, "sentinel_password="))
            if (strncmp(p + 18, "***", 3) != 0)
                abort();
        rds_url_dispose(&u);
    }
    free(rds_url_redact(s));
    free(s);
    return 0;
}
