/* Redis URLs: the one parser (unix://, redis://, rediss://,
 * redis-sentinel://), the redacted form messages print, and what a
 * connection needs to dial and log in (the AUTH command, what a refusal
 * means, what ROLE says about the server). */
#include "redis_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SENTINEL_PASSWORD_PARAM "sentinel_password="

/* Hides the value of every sentinel_password= of a query (in place: the
 * value is replaced by "***"). Returns the fresh string. */
static char *redact_query(char *s)
{
    char *q = strchr(s, '?');
    while (q != NULL) {
        char *p = strstr(q, SENTINEL_PASSWORD_PARAM);
        if (p == NULL)
            break;
        char *v = p + sizeof(SENTINEL_PASSWORD_PARAM) - 1;
        size_t vl = strcspn(v, "&");
        char *out = xasprintf("%.*s***%s", (int)(v - s), s, v + vl);
        q = out + (v - s) + 3;
        free(s);
        s = out;
    }
    return s;
}

char *rds_url_redact(const char *text)
{
    const char *sep = strstr(text, "://");
    /* The last '@' anywhere: a password holding a '?' written unencoded is
     * hidden too, although the parser will refuse it. */
    const char *at = sep ? strrchr(sep + 3, '@') : NULL;
    if (at == NULL)
        return redact_query(xstrdup(text));
    const char *user = sep + 3;
    const char *colon = memchr(user, ':', (size_t)(at - user));
    /* Without a colon the whole user part may be a password written in the
     * wrong place: hide it too. */
    if (colon == NULL)
        return redact_query(xasprintf("%.*s***%s", (int)(user - text), text, at));
    return redact_query(xasprintf("%.*s***%s", (int)(colon + 1 - text), text, at));
}

static int url_fail(const char *redacted, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Formats "redis URL 'REDACTED': ..." into err and returns TINE_EINVAL. */
static int url_fail(const char *redacted, char *err, size_t errlen, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "redis URL '%s': %s", redacted, what);
    return TINE_EINVAL;
}

/* Percent-decodes len bytes into a fresh string. NULL for a bad escape or
 * an encoded NUL. */
static char *percent_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? tine_hex_digit((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < len ? tine_hex_digit((unsigned char)s[i + 2]) : -1;
        int v = hi < 0 || lo < 0 ? 0 : hi * 16 + lo;
        if (v == 0) { /* a bad escape, or an encoded NUL */
            free(out);
            return NULL;
        }
        out[n++] = (char)v;
        i += 2;
    }
    out[n] = '\0';
    return out;
}

/* Parses a whole decimal number from s[0..len) within [min, max]. */
static int parse_number(const char *s, size_t len, long min, long max, long *out)
{
    if (len == 0 || len > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

#define RDS_MAX_DB 1000000L

/* The user part "user:password" (both percent-encoded). */
static int parse_userinfo(rds_url_t *u, const char *s, size_t len, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return url_fail(u->redacted, err, errlen,
                        "the part before '@' has no ':': give the password as :PASSWORD@ (or USER:PASSWORD@)");
    size_t ul = (size_t)(colon - s);
    if (ul > 0) {
        u->user = percent_decode(s, ul);
        if (u->user == NULL)
            return url_fail(u->redacted, err, errlen, "bad percent-encoding in the user name");
    }
    u->password = percent_decode(colon + 1, len - ul - 1);
    if (u->password == NULL)
        return url_fail(u->redacted, err, errlen, "bad percent-encoding in the password");
    if (u->password[0] == '\0')
        return url_fail(u->redacted, err, errlen, "the password after ':' is empty");
    return 0;
}

/* One host[:port] (an IPv6 address in brackets) from s[0..len) into *a,
 * `port` when none is given. */
static int parse_hostport(rds_url_t *u, const char *s, size_t len, int port, rds_addr_t *a, char *err, size_t errlen)
{
    const char *end = s + len, *p = s;
    const char *host;
    size_t hl;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL)
            return url_fail(u->redacted, err, errlen, "an IPv6 address needs its closing ']'");
        host = p + 1;
        hl = (size_t)(close - host);
        p = close + 1;
    } else {
        host = p;
        while (p < end && *p != ':')
            p++;
        hl = (size_t)(p - host);
    }
    if (hl == 0)
        return u->transport == RDS_SENTINEL
                   ? url_fail(u->redacted, err, errlen, "no host in '%.*s' (expected %s)", (int)len, s,
                              RDS_SENTINEL_FORM)
                   : url_fail(u->redacted, err, errlen, "no host (expected %s://HOST[:PORT][/DB])",
                              u->transport == RDS_TLS ? "rediss" : "redis");
    if (hl > 253)
        return url_fail(u->redacted, err, errlen, "the host name is longer than 253 characters");
    long n = port;
    if (p < end && *p == ':') {
        const char *ps = ++p;
        if (parse_number(ps, (size_t)(end - ps), 1, 65535, &n) != 0)
            return url_fail(u->redacted, err, errlen, "port '%.*s': expected a number from 1 to 65535", (int)(end - ps),
                            ps);
    } else if (p < end) {
        return url_fail(u->redacted, err, errlen, "unexpected '%c' after the host", *p);
    }
    a->host = xstrndup(host, hl);
    a->port = (int)n;
    return 0;
}

/* host[:port][/db] of redis:// and rediss://. */
static int parse_server(rds_url_t *u, const char *s, size_t len, char *err, size_t errlen)
{
    const char *end = s + len;
    /* The path starts at the first '/' after the host (none in an IPv6
     * address). */
    const char *slash = memchr(s, '/', len);
    u->addrs = xcalloc(1, sizeof(*u->addrs));
    int rc = parse_hostport(u, s, (size_t)((slash ? slash : end) - s), 6379, &u->addrs[0], err, errlen);
    if (rc != 0)
        return rc;
    u->naddrs = 1;
    if (slash && slash + 1 < end) {
        const char *p = slash + 1;
        long db;
        if (parse_number(p, (size_t)(end - p), 0, RDS_MAX_DB, &db) != 0)
            return url_fail(u->redacted, err, errlen, "database '%.*s': expected a number from 0 to %ld",
                            (int)(end - p), p, RDS_MAX_DB);
        u->db = (int)db;
    }
    return 0;
}

/* HOST:PORT[,HOST:PORT...]/MASTER of redis-sentinel:// (sentinels on
 * port 26379 unless given). */
static int parse_sentinels(rds_url_t *u, const char *s, size_t len, char *err, size_t errlen)
{
    const char *end = s + len;
    const char *slash = memchr(s, '/', len);
    if (slash == NULL || slash + 1 >= end)
        return url_fail(u->redacted, err, errlen, "no master name (expected %s)", RDS_SENTINEL_FORM);
    size_t n = 1;
    for (const char *p = s; p < slash; p++)
        n += *p == ',';
    if (n > RDS_MAX_SENTINELS)
        return url_fail(u->redacted, err, errlen, "more than %d sentinels", RDS_MAX_SENTINELS);
    u->addrs = xcalloc(n, sizeof(*u->addrs));
    for (const char *p = s; p <= slash;) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *e = comma ? comma : slash;
        int rc = parse_hostport(u, p, (size_t)(e - p), 26379, &u->addrs[u->naddrs], err, errlen);
        if (rc != 0)
            return rc;
        u->naddrs++;
        p = e + 1;
    }
    u->master = percent_decode(slash + 1, (size_t)(end - slash - 1));
    if (u->master == NULL)
        return url_fail(u->redacted, err, errlen, "bad percent-encoding in the master name");
    for (const char *m = u->master; *m; m++)
        if ((unsigned char)*m <= 0x20 || *m == '/' || (unsigned char)*m >= 0x7f)
            return url_fail(u->redacted, err, errlen,
                            "the master name '%s' holds a space, '/' or a byte outside printable ASCII", u->master);
    return 0;
}

/* The query: db (unix), cacert (rediss). */
static int parse_query(rds_url_t *u, const char *q, char *err, size_t errlen)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kl = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vl = (size_t)(q + n - v);
        if (kl == 2 && strncmp(q, "db", 2) == 0 && (u->transport == RDS_UNIX || u->transport == RDS_SENTINEL)) {
            long db;
            if (parse_number(v, vl, 0, RDS_MAX_DB, &db) != 0)
                return url_fail(u->redacted, err, errlen, "db '%.*s': expected a number from 0 to %ld", (int)vl, v,
                                RDS_MAX_DB);
            u->db = (int)db;
        } else if (u->transport == RDS_TLS &&
                   ((kl == 6 && strncmp(q, "cacert", 6) == 0) || (kl == 4 && strncmp(q, "cert", 4) == 0) ||
                    (kl == 3 && strncmp(q, "key", 3) == 0))) {
            char **dst = kl == 6 ? &u->cacert : kl == 4 ? &u->cert : &u->key;
            free(*dst);
            *dst = percent_decode(v, vl);
            if (*dst == NULL || (*dst)[0] != '/')
                return url_fail(u->redacted, err, errlen, "%.*s: expected the absolute path of a PEM file", (int)kl, q);
        } else if (u->transport == RDS_SENTINEL && ((kl == 17 && strncmp(q, "sentinel_password", 17) == 0) ||
                                                    (kl == 13 && strncmp(q, "sentinel_user", 13) == 0))) {
            char **dst = kl == 17 ? &u->sentinel_password : &u->sentinel_user;
            free(*dst);
            *dst = percent_decode(v, vl);
            if (*dst == NULL || (*dst)[0] == '\0')
                return url_fail(u->redacted, err, errlen, "%.*s: empty or badly percent-encoded", (int)kl, q);
        } else {
            return url_fail(u->redacted, err, errlen, "unknown parameter '%.*s' (expected %s)", (int)kl, q,
                            u->transport == RDS_UNIX  ? "db=N"
                            : u->transport == RDS_TLS ? "cacert=, cert= or key= with a file's path"
                            : u->transport == RDS_SENTINEL
                                ? "db=N, sentinel_password= or sentinel_user="
                                : "none; the database goes in the path: redis://HOST:PORT/DB");
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

int rds_url_parse(const char *text, rds_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->db = -1;
    u->redacted = rds_url_redact(text);
    const char *rest = NULL;
    if (strncmp(text, "unix://", 7) == 0) {
        u->transport = RDS_UNIX;
        rest = text + 7;
    } else if (strncmp(text, "redis://", 8) == 0) {
        u->transport = RDS_TCP;
        rest = text + 8;
    } else if (strncmp(text, "rediss://", 9) == 0) {
        u->transport = RDS_TLS;
        rest = text + 9;
    } else if (strncmp(text, "redis-sentinel://", 17) == 0) {
        u->transport = RDS_SENTINEL;
        rest = text + 17;
    }
    int rc = 0;
    if (rest == NULL) {
        rc = strncmp(text, "rediss-sentinel://", 18) == 0
                 ? url_fail(u->redacted, err, errlen,
                            "Sentinel over TLS is not supported (expected redis-sentinel://, or rediss:// for one "
                            "server)")
                 : url_fail(u->redacted, err, errlen,
                            "expected unix:///path/to/socket, redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB] or "
                            "%s",
                            RDS_SENTINEL_FORM);
        goto out;
    }
    /* The query starts at the first '?', the user part ends at the last '@'
     * before it. */
    const char *query = strchr(rest, '?');
    const char *end = query ? query : rest + strlen(rest);
    const char *at = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p;
    const char *server = rest;
    if (at) {
        if ((rc = parse_userinfo(u, rest, (size_t)(at - rest), err, errlen)) != 0)
            goto out;
        server = at + 1;
    }
    if (u->transport == RDS_UNIX) {
        if (server >= end || *server != '/') {
            rc = url_fail(u->redacted, err, errlen,
                          "expected an absolute socket path: unix:///path/to/socket or unix://:PASSWORD@/path");
            goto out;
        }
        u->path = percent_decode(server, (size_t)(end - server));
        if (u->path == NULL) {
            rc = url_fail(u->redacted, err, errlen, "bad percent-encoding in the socket path");
            goto out;
        }
        if (strlen(u->path) >= 108) {
            rc = url_fail(u->redacted, err, errlen, "the socket path is longer than 107 bytes");
            goto out;
        }
    } else if (u->transport == RDS_SENTINEL) {
        if ((rc = parse_sentinels(u, server, (size_t)(end - server), err, errlen)) != 0)
            goto out;
    } else if ((rc = parse_server(u, server, (size_t)(end - server), err, errlen)) != 0) {
        goto out;
    }
    if (query && (rc = parse_query(u, query + 1, err, errlen)) != 0)
        goto out;
    if ((u->cert == NULL) != (u->key == NULL))
        rc = url_fail(u->redacted, err, errlen, "a client certificate needs both cert= and key=");
    else if (u->sentinel_user && u->sentinel_password == NULL)
        rc = url_fail(u->redacted, err, errlen, "sentinel_user= needs sentinel_password=");
out:
    if (rc != 0)
        rds_url_dispose(u);
    return rc;
}

void rds_url_dispose(rds_url_t *u)
{
    if (u == NULL)
        return;
    free(u->path);
    for (size_t i = 0; i < u->naddrs; i++)
        free(u->addrs[i].host);
    free(u->addrs);
    free(u->master);
    free(u->user);
    free(u->sentinel_user);
    if (u->sentinel_password)
        explicit_bzero(u->sentinel_password, strlen(u->sentinel_password));
    free(u->sentinel_password);
    if (u->password)
        explicit_bzero(u->password, strlen(u->password));
    free(u->password);
    free(u->cacert);
    free(u->cert);
    free(u->key);
    free(u->redacted);
    memset(u, 0, sizeof(*u));
    u->db = -1;
}

/* Appends s percent-encoded where the parser would otherwise stop or
 * decode: '%', '@', '?', ':' and bytes outside printable ASCII. */
static void percent_encode(tine_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || strchr("%@?:", ch))
            tine_buf_appendf(b, "%%%02X", ch);
        else
            tine_buf_append(b, s, 1);
    }
}

char *rds_url_make_unix(const char *path, const char *password)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "unix://", 7);
    if (password) {
        tine_buf_append(&b, ":", 1);
        percent_encode(&b, password);
        tine_buf_append(&b, "@", 1);
    }
    percent_encode(&b, path);
    return b.data;
}

char *rds__url_make_tcp(const char *host, int port, const char *user, const char *password)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "redis://", 8);
    if (password) {
        if (user)
            percent_encode(&b, user);
        tine_buf_append(&b, ":", 1);
        percent_encode(&b, password);
        tine_buf_append(&b, "@", 1);
    }
    tine_buf_appendf(&b, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return b.data;
}

/* ------------------------------------------------------------ targets */

int rds__target_init(rds__target_t *t, const char *url, char *err, size_t errlen)
{
    t->relay = NULL;
    int rc = rds_url_parse(url, &t->url, err, errlen);
    if (rc == 0 && t->url.transport == RDS_TLS && (rc = rds__relay_acquire(&t->url, &t->relay, err, errlen)) != 0)
        rds_url_dispose(&t->url);
    return rc;
}

void rds__target_dispose(rds__target_t *t)
{
    rds__relay_release(t->relay);
    t->relay = NULL;
    rds_url_dispose(&t->url);
}

const char *rds__target_unix_path(const rds__target_t *t)
{
    if (t->relay)
        return rds__relay_path(t->relay);
    return t->url.transport == RDS_UNIX ? t->url.path : NULL;
}

int rds__auth_argv(const rds_url_t *u, const char *argv[3], size_t lens[3])
{
    if (u->password == NULL)
        return 0;
    int n = 0;
    argv[n++] = "AUTH";
    if (u->user)
        argv[n++] = u->user;
    argv[n++] = u->password;
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return n;
}

int rds__explain_setup_error(const rds_url_t *u, const char *command, const char *reply, char *err, size_t errlen)
{
    const char *url = u->redacted;
    if (strncmp(reply, RDS__RELAY_ERROR " ", sizeof(RDS__RELAY_ERROR)) == 0) {
        const char *why = reply + sizeof(RDS__RELAY_ERROR);
        snprintf(err, errlen, "cannot connect to redis at %s: %s", url, why);
        /* The server away is an outage; a certificate refused is not. */
        bool away = strncmp(why, "cannot reach", 12) == 0 || strncmp(why, "cannot resolve", 14) == 0 ||
                    strstr(why, "no answer within") != NULL;
        return away ? TINE_EREDIS : TINE_EAUTH;
    }
    int rc = strncmp(reply, "NOAUTH", 6) == 0 || strncmp(reply, "WRONGPASS", 9) == 0 || strcasecmp(command, "AUTH") == 0
                 ? TINE_EAUTH
                 : TINE_EREDIS;
    if (strncmp(reply, "NOAUTH", 6) == 0)
        snprintf(err, errlen, "redis at %s requires a password: give it in the URL (%s) (%s)", url,
                 u->transport == RDS_UNIX ? "unix://:PASSWORD@/path" : "redis://:PASSWORD@HOST:PORT", reply);
    else if (strcasecmp(command, "AUTH") == 0 && strstr(reply, "without any password configured") != NULL)
        snprintf(err, errlen, "redis at %s has no password set, but the URL gives one: %s", url, reply);
    else if (strcasecmp(command, "AUTH") == 0)
        snprintf(err, errlen, "redis at %s refused the password%s%s%s: %s", url, u->user ? " of user '" : "",
                 u->user ? u->user : "", u->user ? "'" : "", reply);
    else if (strcasecmp(command, "SELECT") == 0)
        snprintf(err, errlen, "redis at %s: cannot select database %d: %s", url, u->db, reply);
    else if (strncmp(reply, "LOADING", 7) == 0)
        snprintf(err, errlen, "redis at %s is loading its data set", url);
    else
        snprintf(err, errlen, "redis at %s: %s: %s", url, command, reply);
    return rc;
}

/* The string of element i of an array reply, or "". */
static const char *element_str(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return "";
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

int rds__check_role(const rds_url_t *u, const char *addr, const redisReply *r, bool sentinel, int *replicas, char *err,
                    size_t errlen)
{
    *replicas = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        /* A user not allowed to run ROLE: take the server at its word. */
        if (strncmp(r->str, "NOPERM", 6) == 0 || strncasecmp(r->str, "ERR unknown command", 19) == 0)
            return 0;
        return rds__explain_setup_error(u, "ROLE", r->str, err, errlen);
    }
    const char *role = element_str(r, 0);
    if (sentinel) {
        if (strcmp(role, "sentinel") == 0)
            return 0;
        snprintf(err, errlen, "%s, given as a sentinel in %s, is not a Redis Sentinel (ROLE: %s)", addr, u->redacted,
                 role[0] ? role : "no answer");
        return TINE_EREDIS;
    }
    if (strcmp(role, "master") == 0) {
        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY)
            *replicas = (int)r->element[2]->elements;
        return 0;
    }
    if (strcmp(role, "slave") == 0 && u->transport == RDS_SENTINEL)
        snprintf(err, errlen,
                 "redis at %s, named the master of '%s' by the sentinels of %s, is a replica (of %s:%lld, link %s)",
                 addr, u->master, u->redacted, element_str(r, 1),
                 r->elements > 2 && r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : 0,
                 element_str(r, 3));
    else if (strcmp(role, "slave") == 0)
        snprintf(err, errlen,
                 "redis at %s is a replica (of %s:%lld), not a master: give the master's address, or the sentinels' "
                 "(%s)",
                 u->redacted, element_str(r, 1),
                 r->elements > 2 && r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : 0,
                 RDS_SENTINEL_FORM);
    else if (strcmp(role, "sentinel") == 0)
        snprintf(err, errlen, "%s is a Redis Sentinel, not a Redis server: give it as redis-sentinel://%s/MASTER",
                 u->redacted, addr);
    else
        snprintf(err, errlen, "redis at %s: unexpected answer to ROLE", addr);
    return TINE_EREDIS;
}
