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
            (u.transport != RDS_UNIX && (u.naddrs != 1 || u.addrs[0].port < 1 || u.addrs[0].port > 65535)))
            abort();
        /* The form messages print hides the password. */
        if (u.password && strstr(u.redacted, ":***@") == NULL)
            abort();
        rds_url_dispose(&u);
    }
    free(rds_url_redact(s));
    free(s);
    return 0;
}
