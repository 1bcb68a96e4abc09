/* libtine: the admin API client. One reusable curl easy handle per client so
 * consecutive calls share a kept-alive connection. Self-contained (libcurl
 * and jansson only) so it can be installed as libtine.so on its own. */
#include "tine.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define ERRMSG_MAX 1024

struct tine_client {
    CURL *curl;
    char *url; /* without trailing "/" */
    char *auth_header;
    char *cacert; /* CA file for https (NULL: the system's store) */
    long timeout_ms;
    long last_status;
    char error[ERRMSG_MAX];
};

/* The growing buffer the curl write callback fills; on allocation failure it
 * remembers it so the call can report -ENOMEM instead of a transfer error. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int oom;
    int stopped; /* a line callback returned nonzero (tine_logs) */
} body_buf_t;

static void set_error(tine_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats the client's error message, on one line. */
static void set_error(tine_client_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    /* Messages are promised to be one line: a server's multi-line error would
     * break the CLI's "tine: <message>" format. */
    for (char *p = c->error; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* A copy of s, or NULL without memory (the library never aborts). */
static char *try_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

const char *tine_client_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case TINE_CLIENT_EINVAL:
        return "rejected by the server";
    case TINE_CLIENT_ENOTFOUND:
        return "not found";
    case TINE_CLIENT_ECONFLICT:
        return "conflict";
    case TINE_CLIENT_ETOOBIG:
        return "too big";
    case TINE_CLIENT_EPROTO:
        return "unexpected answer from the server";
    case TINE_CLIENT_ETIMEOUT:
        return "timed out";
    case TINE_CLIENT_EAUTH:
        return "unauthorized";
    case TINE_CLIENT_ECONNECT:
        return "cannot reach the node";
    case TINE_CLIENT_EHTTP:
        return "HTTP error";
    case TINE_CLIENT_ETLS:
        return "TLS failure";
    default:
        if (code < 0 && code > -1000)
            return strerror(-code);
        return "unknown error";
    }
}

void tine_free(void *p)
{
    free(p);
}

tine_client_t *tine_client_new(const char *url, const char *token)
{
    if (url == NULL)
        return NULL;
    const char *host = strncmp(url, "http://", 7) == 0 ? url + 7 : strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/')
        return NULL;
    tine_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->url = try_strdup(url);
    if (c->url == NULL)
        goto fail;
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (token != NULL && token[0] != '\0') {
        size_t tn = strlen(token);
        c->auth_header = malloc(tn + sizeof "Authorization: Bearer ");
        if (c->auth_header == NULL)
            goto fail;
        memcpy(c->auth_header, "Authorization: Bearer ", sizeof "Authorization: Bearer " - 1);
        memcpy(c->auth_header + sizeof "Authorization: Bearer " - 1, token, tn + 1);
    }
    /* curl_easy_init performs curl_global_init on first use. */
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        goto fail;
    return c;
fail:
    tine_client_free(c);
    return NULL;
}

void tine_client_free(tine_client_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    if (c->auth_header != NULL) {
        /* The token is a credential: do not leave it in freed memory. */
        volatile char *p = c->auth_header;
        while (*p)
            *p++ = 0;
        free(c->auth_header);
    }
    free(c->url);
    free(c->cacert);
    free(c);
}

const char *tine_client_error(const tine_client_t *c)
{
    return c != NULL ? c->error : "no client";
}

long tine_client_status(const tine_client_t *c)
{
    return c != NULL ? c->last_status : 0;
}

int tine_client_set_timeout_ms(tine_client_t *c, long ms)
{
    if (ms < 0)
        return -EINVAL;
    c->timeout_ms = ms;
    return 0;
}

int tine_client_set_cacert(tine_client_t *c, const char *path)
{
    char *copy = NULL;
    if (path != NULL && (copy = try_strdup(path)) == NULL)
        return -ENOMEM;
    free(c->cacert);
    c->cacert = copy;
    return 0;
}

char *tine_escape(const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(segment);
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* curl's body callback: appends to the body buffer (NUL-terminated). Returns
 * n, or 0 without memory (curl then fails the transfer). */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->oom = 1;
            return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Turns a failed transfer into a code and a message naming the node. */
static int transfer_error(tine_client_t *c, CURLcode rc, const char *curl_err)
{
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    const char *why = curl_err[0] ? curl_err : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if (c->timeout_ms > 0)
            set_error(c, "no answer from %s within %ld ms", c->url, c->timeout_ms);
        else /* a stream that went silent */
            set_error(c, "%s stopped answering: %s", c->url, why);
        return TINE_CLIENT_ETIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        set_error(c, "out of memory");
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        set_error(c, "bad node URL %s: %s", c->url, why);
        return -EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
        set_error(c, "the certificate of %s does not verify: %s", c->url, why);
        return TINE_CLIENT_ETLS;
    case CURLE_SSL_CACERT_BADFILE:
        set_error(c, "cannot use the CA file %s: %s", c->cacert ? c->cacert : "of the system", why);
        return TINE_CLIENT_ETLS;
    case CURLE_SSL_CONNECT_ERROR:
        set_error(c, "no TLS handshake with %s: %s", c->url, why);
        return TINE_CLIENT_ETLS;
    case CURLE_GOT_NOTHING:
        /* What plain HTTP to an HTTPS node looks like: it closes at once. */
        if (strncmp(c->url, "http://", 7) == 0) {
            set_error(c, "cannot reach %s: %s (if the node serves HTTPS, use https://)", c->url, why);
            return TINE_CLIENT_ECONNECT;
        }
        break;
    case CURLE_COULDNT_CONNECT:
        /* "Connection refused" says more than curl's generic wording. */
        if (os_errno != 0)
            why = strerror((int)os_errno);
        break;
    default:
        break;
    }
    set_error(c, "cannot reach %s: %s", c->url, why);
    return TINE_CLIENT_ECONNECT;
}

/* Where an answer's body goes: the default sink collects it into buf. */
typedef struct {
    curl_write_callback write;
    void *data;
    body_buf_t *buf;
    long stall_s; /* abort when nothing arrives for this long (0: never) */
} body_sink_t;

static int perform(tine_client_t *c, const char *method, const char *path, const void *body, size_t len,
                   const char *content_type, long *status, const body_sink_t *sink);

int tine_request(tine_client_t *c, const char *method, const char *path, const void *body, size_t len,
                 const char *content_type, long *status, char **response_body)
{
    if (response_body != NULL)
        *response_body = NULL;
    body_buf_t buf = {0};
    body_sink_t sink = {on_body, &buf, &buf, 0};
    int rc = perform(c, method, path, body, len, content_type, status, &sink);
    if (rc == 0 && response_body != NULL) {
        if (buf.data == NULL && (buf.data = calloc(1, 1)) == NULL) {
            set_error(c, "out of memory");
            return -ENOMEM;
        }
        *response_body = buf.data;
    } else {
        free(buf.data);
    }
    return rc;
}

/* Sends one request; the body of the answer goes to sink. */
static int perform(tine_client_t *c, const char *method, const char *path, const void *body, size_t len,
                   const char *content_type, long *status, const body_sink_t *sink)
{
    if (status != NULL)
        *status = 0;
    c->last_status = 0;
    if (method == NULL || path == NULL || path[0] != '/' || (body == NULL && len > 0)) {
        set_error(c, "bad request arguments");
        return -EINVAL;
    }

    size_t un = strlen(c->url), pn = strlen(path);
    char *full = malloc(un + pn + 1);
    if (full == NULL) {
        set_error(c, "out of memory");
        return -ENOMEM;
    }
    memcpy(full, c->url, un);
    memcpy(full + un, path, pn + 1);

    struct curl_slist *headers = NULL, *h;
    char ctype[256];
    int rc = 0;
    if ((h = curl_slist_append(headers, "Accept: application/json")) == NULL)
        goto oom;
    headers = h;
    /* No "Expect: 100-continue" round trip before a bundle upload. */
    if ((h = curl_slist_append(headers, "Expect:")) == NULL)
        goto oom;
    headers = h;
    if (c->auth_header != NULL) {
        if ((h = curl_slist_append(headers, c->auth_header)) == NULL)
            goto oom;
        headers = h;
    }
    if (content_type != NULL) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
        if ((h = curl_slist_append(headers, ctype)) == NULL)
            goto oom;
        headers = h;
    }

    CURL *e = c->curl;
    /* Reset drops the previous call's options but keeps its connection. */
    curl_easy_reset(e);
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "libtine/" TINE_CLIENT_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink->write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink->data);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (sink->stall_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, sink->stall_s);
    }
    /* HTTP/1.1 even where ALPN offers HTTP/2: the node refuses HTTP/2
     * request bodies over 64 KiB (bundles are larger). */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->cacert != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (strcmp(method, "GET") == 0 && len == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }

    CURLcode cc = curl_easy_perform(e);
    /* The handle must not keep pointers into this call's stack and heap. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK) {
        if (sink->buf->oom) {
            set_error(c, "out of memory reading the answer from %s", c->url);
            rc = -ENOMEM;
        } else if (cc == CURLE_WRITE_ERROR && sink->buf->stopped) {
            rc = 0; /* the caller's line callback asked to stop */
        } else {
            rc = transfer_error(c, cc, curl_err);
        }
        if (rc != 0)
            goto out;
    }
    c->last_status = code;
    if (status != NULL)
        *status = code;
    goto out;
oom:
    set_error(c, "out of memory");
    rc = -ENOMEM;
out:
    curl_slist_free_all(headers);
    free(full);
    return rc;
}

/* Maps a 4xx/5xx answer to a code and sets the message from its "error"
 * field (or, lacking one, from the status and the start of the body). */
static int answer_error(tine_client_t *c, long status, const char *path, const char *body)
{
    json_t *j = json_loads(body, JSON_DECODE_ANY, NULL);
    const char *msg = json_is_object(j) ? json_string_value(json_object_get(j, "error")) : NULL;
    int code;
    switch (status) {
    case 400:
    case 422:
        code = TINE_CLIENT_EINVAL;
        break;
    case 401:
    case 403:
        code = TINE_CLIENT_EAUTH;
        break;
    case 404:
        code = TINE_CLIENT_ENOTFOUND;
        break;
    case 409:
        code = TINE_CLIENT_ECONFLICT;
        break;
    case 413:
        code = TINE_CLIENT_ETOOBIG;
        break;
    default:
        code = TINE_CLIENT_EHTTP;
        break;
    }
    if (status == 401) {
        set_error(c, "401 unauthorized: %s", msg != NULL ? msg : "missing or wrong admin token");
    } else if (msg != NULL) {
        set_error(c, "%s", msg);
    } else if (status == 413) {
        set_error(c, "bundle too large for the node (HTTP 413)");
    } else {
        /* Not tine's JSON (a proxy's page?): show what came back, briefly. */
        size_t n = strcspn(body, "\r\n");
        set_error(c, "HTTP %ld from %s%s%s%.*s", status, c->url, path, n ? ": " : "", (int)(n > 200 ? 200 : n), body);
    }
    json_decref(j);
    return code;
}

/* One admin call: succeeds on 2xx with a JSON answer. */
static int api_call(tine_client_t *c, const char *method, const char *path, const void *body, size_t len,
                    const char *content_type, char **response)
{
    if (response != NULL)
        *response = NULL;
    long status = 0;
    char *answer = NULL;
    int rc = tine_request(c, method, path, body, len, content_type, &status, &answer);
    if (rc != 0)
        return rc;
    if (status < 200 || status > 299) {
        rc = answer_error(c, status, path, answer);
        free(answer);
        return rc;
    }
    json_error_t jerr;
    json_t *j = json_loads(answer, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        set_error(c, "%s%s answered %ld with something that is not JSON: %s", c->url, path, status, jerr.text);
        free(answer);
        return TINE_CLIENT_EPROTO;
    }
    json_decref(j);
    if (response != NULL)
        *response = answer;
    else
        free(answer);
    return 0;
}

int tine_call(tine_client_t *c, const char *method, const char *path, const char *json_body, char **response)
{
    return api_call(c, method, path, json_body, json_body ? strlen(json_body) : 0,
                    json_body ? "application/json" : NULL, response);
}

/* Builds "/_tine/v1/<collection>/<name><suffix>" with the name escaped, or
 * returns NULL and sets an error ("no <what> given" when name is empty). */
static char *named_path(tine_client_t *c, const char *collection, const char *what, const char *name,
                        const char *suffix)
{
    if (name == NULL || name[0] == '\0') {
        set_error(c, "no %s given", what);
        return NULL;
    }
    char *e = tine_escape(name);
    if (e == NULL) {
        set_error(c, "out of memory");
        return NULL;
    }
    size_t n = strlen("/_tine/v1//") + strlen(collection) + strlen(e) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "/_tine/v1/%s/%s%s", collection, e, suffix);
    else
        set_error(c, "out of memory");
    free(e);
    return p;
}

/* "/_tine/v1/apps/<app><suffix>" (named_path). */
static char *app_path(tine_client_t *c, const char *app, const char *suffix)
{
    return named_path(c, "apps", "app name", app, suffix);
}

int tine_health(tine_client_t *c, char **response)
{
    return api_call(c, "GET", "/_tine/v1/health", NULL, 0, NULL, response);
}

int tine_doctor(tine_client_t *c, char **response)
{
    return api_call(c, "GET", "/_tine/v1/doctor", NULL, 0, NULL, response);
}

int tine_nodes(tine_client_t *c, char **response)
{
    return api_call(c, "GET", "/_tine/v1/nodes", NULL, 0, NULL, response);
}

int tine_drain(tine_client_t *c, const char *node, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = named_path(c, "nodes", "node id", node, "/drain");
    if (path == NULL)
        return node == NULL || node[0] == '\0' ? -EINVAL : -ENOMEM;
    int rc = api_call(c, "POST", path, NULL, 0, NULL, response);
    free(path);
    return rc;
}

int tine_apps(tine_client_t *c, char **response)
{
    return api_call(c, "GET", "/_tine/v1/apps", NULL, 0, NULL, response);
}

int tine_deploy(tine_client_t *c, const char *app, const void *tgz, size_t len, char **response)
{
    return tine_deploy_ex(c, app, tgz, len, 0, response);
}

int tine_deploy_ex(tine_client_t *c, const char *app, const void *tgz, size_t len, unsigned flags, char **response)
{
    if (response != NULL)
        *response = NULL;
    if (tgz == NULL || len == 0) {
        set_error(c, "empty bundle");
        return -EINVAL;
    }
    static const char *const suffix[] = {"", "?force=1", "?stage=1", "?force=1&stage=1"};
    char *path = app_path(c, app, suffix[flags & (TINE_DEPLOY_FORCE | TINE_DEPLOY_STAGE)]);
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    int rc = api_call(c, "PUT", path, tgz, len, "application/gzip", response);
    free(path);
    return rc;
}

/* One call to /_tine/v1/apps/{app}<suffix> with an optional JSON body. */
static int app_call(tine_client_t *c, const char *method, const char *app, const char *suffix, const char *body,
                    char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, suffix);
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    int rc = api_call(c, method, path, body, body ? strlen(body) : 0, body ? "application/json" : NULL, response);
    free(path);
    return rc;
}

int tine_app(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "GET", app, "", NULL, response);
}

int tine_delete_app(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "DELETE", app, "", NULL, response);
}

int tine_prune_versions(tine_client_t *c, const char *app, unsigned keep, char **response)
{
    char body[40];
    snprintf(body, sizeof body, "{\"keep\":%u}", keep);
    return app_call(c, "POST", app, "/versions/prune", body, response);
}

int tine_ready(tine_client_t *c, char **response)
{
    return api_call(c, "GET", "/_tine/v1/ready", NULL, 0, NULL, response);
}

int tine_versions(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "GET", app, "/versions", NULL, response);
}

int tine_rollback(tine_client_t *c, const char *app, uint64_t version, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, "/rollback");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    char body[48] = "";
    if (version > 0)
        snprintf(body, sizeof body, "{\"version\":%" PRIu64 "}", version);
    size_t len = strlen(body);
    int rc = api_call(c, "POST", path, len ? body : NULL, len, len ? "application/json" : NULL, response);
    free(path);
    return rc;
}

/* PUT or DELETE /_tine/v1/apps/{app}/secrets/{name} (the value as the body). */
static int secret_change(tine_client_t *c, const char *method, const char *app, const char *name,
                              const void *value, size_t len, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *n = tine_escape(name ? name : "");
    if (n == NULL)
        return -ENOMEM;
    size_t sl = strlen(n) + 16;
    char *suffix = malloc(sl);
    if (suffix == NULL) {
        free(n);
        return -ENOMEM;
    }
    snprintf(suffix, sl, "/secrets/%s", n);
    free(n);
    char *path = app_path(c, app, suffix);
    free(suffix);
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    int rc = api_call(c, method, path, value, len, value ? "application/octet-stream" : NULL, response);
    free(path);
    return rc;
}

int tine_export(tine_client_t *c, const char *app, uint64_t version, void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    char suffix[48];
    snprintf(suffix, sizeof suffix, "/export?version=%" PRIu64, version);
    char *path = app_path(c, app, version > 0 ? suffix : "/export");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    long status = 0;
    body_buf_t buf = {0};
    body_sink_t sink = {on_body, &buf, &buf, 0};
    int rc = perform(c, "GET", path, NULL, 0, NULL, &status, &sink);
    /* on_body keeps the buffer NUL-terminated: an error answer is text. */
    if (rc == 0 && (status < 200 || status > 299))
        rc = answer_error(c, status, path, buf.data ? buf.data : "");
    free(path);
    if (rc != 0) {
        free(buf.data);
        return rc;
    }
    *data = buf.data;
    *len = buf.len;
    return 0;
}

int tine_secrets(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "GET", app, "/secrets", NULL, response);
}

int tine_secret_set(tine_client_t *c, const char *app, const char *name, const void *value, size_t len,
                    char **response)
{
    return secret_change(c, "PUT", app, name, value, len, response);
}

int tine_secret_delete(tine_client_t *c, const char *app, const char *name, char **response)
{
    return secret_change(c, "DELETE", app, name, NULL, 0, response);
}

int tine_routes(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "GET", app, "/routes", NULL, response);
}

/* Builds "/_tine/v1/apps/<app>/functions/<fn>/<verb>" with both names
 * escaped, or returns NULL with *rc and the error set. */
static char *function_path(tine_client_t *c, const char *app, const char *fn, const char *verb, int *rc)
{
    if (fn == NULL || fn[0] == '\0') {
        set_error(c, "no function name given");
        *rc = -EINVAL;
        return NULL;
    }
    char *efn = tine_escape(fn);
    size_t sn = efn ? strlen("/functions//") + strlen(efn) + strlen(verb) + 1 : 0;
    char *suffix = efn ? malloc(sn) : NULL;
    if (suffix == NULL) {
        free(efn);
        set_error(c, "out of memory");
        *rc = -ENOMEM;
        return NULL;
    }
    snprintf(suffix, sn, "/functions/%s/%s", efn, verb);
    free(efn);
    char *path = app_path(c, app, suffix);
    free(suffix);
    if (path == NULL)
        *rc = app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    return path;
}

int tine_invoke(tine_client_t *c, const char *app, const char *fn, const char *event_json, size_t len,
                char **response)
{
    if (response != NULL)
        *response = NULL;
    int rc = 0;
    char *path = function_path(c, app, fn, "invoke", &rc);
    if (path == NULL)
        return rc;
    if (event_json == NULL) {
        event_json = "{}";
        len = 2;
    }
    rc = api_call(c, "POST", path, event_json, len, "application/json", response);
    free(path);
    return rc;
}

/* Sends `method` to `path` (taken: freed here; NULL after a failed
 * allocation, the error being set) with "?<name>=<escaped value>" appended
 * when value is not NULL. */
static int call_with_query(tine_client_t *c, const char *method, char *path, const char *name, const char *value,
                           char **response)
{
    if (path != NULL && value != NULL) {
        char *ev = tine_escape(value);
        size_t n = ev ? strlen(path) + strlen(name) + strlen(ev) + 3 : 0;
        char *p = ev ? malloc(n) : NULL;
        if (p != NULL)
            snprintf(p, n, "%s?%s=%s", path, name, ev);
        free(ev);
        free(path);
        path = p;
        if (p == NULL)
            set_error(c, "out of memory");
    }
    if (path == NULL)
        return -ENOMEM;
    int rc = api_call(c, method, path, NULL, 0, NULL, response);
    free(path);
    return rc;
}

int tine_sandboxes(tine_client_t *c, const char *app, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = strdup("/_tine/v1/sandboxes");
    if (path == NULL)
        set_error(c, "out of memory");
    return call_with_query(c, "GET", path, "app", app, response);
}

int tine_evict(tine_client_t *c, const char *app, const char *fn, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, "/sandboxes");
    if (path == NULL && (app == NULL || app[0] == '\0'))
        return -EINVAL;
    return call_with_query(c, "DELETE", path, "function", fn, response);
}

int tine_scale(tine_client_t *c, const char *app, const char *fn, unsigned warm, char **response)
{
    if (response != NULL)
        *response = NULL;
    int rc = 0;
    char *path = function_path(c, app, fn, "scale", &rc);
    if (path == NULL)
        return rc;
    char body[40];
    int n = snprintf(body, sizeof body, "{\"warm\":%u}", warm);
    rc = api_call(c, "PUT", path, body, (size_t)n, "application/json", response);
    free(path);
    return rc;
}

int tine_events_emit(tine_client_t *c, const char *event_json, size_t len, char **response)
{
    if (response != NULL)
        *response = NULL;
    if (event_json == NULL || len == 0) {
        set_error(c, "no event given");
        return -EINVAL;
    }
    return api_call(c, "POST", "/_tine/v1/events", event_json, len, "application/cloudevents+json", response);
}

int tine_dlq(tine_client_t *c, const char *app, char **response)
{
    return app_call(c, "GET", app, "/dlq", NULL, response);
}

int tine_dlq_replay(tine_client_t *c, const char *app, const char *const *ids, size_t n, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, "/dlq/replay");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    char *body = NULL;
    if (n > 0) {
        json_t *arr = json_array();
        json_t *o = json_object();
        for (size_t i = 0; arr && i < n; i++)
            if (ids[i] == NULL || json_array_append_new(arr, json_string(ids[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        if (arr == NULL || o == NULL || json_object_set_new(o, "ids", arr) != 0 ||
            (body = json_dumps(o, JSON_COMPACT)) == NULL) {
            json_decref(o);
            free(path);
            set_error(c, ids == NULL ? "no ids given" : "out of memory (or an id that is not UTF-8)");
            return -EINVAL;
        }
        json_decref(o);
    }
    int rc = api_call(c, "POST", path, body, body ? strlen(body) : 0, body ? "application/json" : NULL, response);
    free(body);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ billing */

/* Appends "?name=value" or "&name=value" (value escaped) to a malloc'd
 * path; a NULL or empty value adds nothing. Returns 0 or -ENOMEM. */
static int query_add(tine_client_t *c, char **path, const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    char *e = tine_escape(value);
    size_t n = *path ? strlen(*path) : 0;
    char *p = e ? realloc(*path, n + strlen(name) + strlen(e) + 3) : NULL;
    if (p == NULL) {
        free(e);
        set_error(c, "out of memory");
        return -ENOMEM;
    }
    sprintf(p + n, "%c%s=%s", strchr(p, '?') && n ? '&' : '?', name, e);
    free(e);
    *path = p;
    return 0;
}

/* GETs base (a malloc'd path, taken) with the given query parameters
 * (NULL-terminated name/value pairs). */
static int get_with_query(tine_client_t *c, char *base, const char *const *params, char **response)
{
    if (base == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; params[i] && rc == 0; i += 2)
        rc = query_add(c, &base, params[i], params[i + 1]);
    if (rc == 0)
        rc = api_call(c, "GET", base, NULL, 0, NULL, response);
    free(base);
    return rc;
}

int tine_usage(tine_client_t *c, const char *app, const char *from, const char *to, const char *by, char **response)
{
    if (response != NULL)
        *response = NULL;
    if (app == NULL || app[0] == '\0') {
        set_error(c, "no app name given");
        return -EINVAL;
    }
    const char *params[] = {"app", app, "from", from, "to", to, "by", by, NULL};
    return get_with_query(c, try_strdup("/_tine/v1/usage"), params, response);
}

int tine_activations(tine_client_t *c, const char *app, const char *fn, unsigned limit, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, "/activations");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    char lim[16] = "";
    if (limit > 0)
        snprintf(lim, sizeof lim, "%u", limit);
    const char *params[] = {"limit", lim, "function", fn, NULL};
    return get_with_query(c, path, params, response);
}

int tine_activations_query(tine_client_t *c, const char *app, const char *const *params, char **response)
{
    if (response != NULL)
        *response = NULL;
    char *path = app_path(c, app, "/activations");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    return get_with_query(c, path, params, response);
}

/* GETs `prefix` + the escaped id (`what` names it in the error for none). */
static int get_by_id(tine_client_t *c, const char *prefix, const char *id, const char *what, char **response)
{
    if (response != NULL)
        *response = NULL;
    if (id == NULL || id[0] == '\0') {
        set_error(c, "no %s given", what);
        return -EINVAL;
    }
    char *e = tine_escape(id);
    char *path = e ? malloc(strlen(prefix) + strlen(e) + 1) : NULL;
    if (path == NULL) {
        free(e);
        set_error(c, "out of memory");
        return -ENOMEM;
    }
    sprintf(path, "%s%s", prefix, e);
    free(e);
    const char *params[] = {NULL};
    return get_with_query(c, path, params, response);
}

int tine_activation(tine_client_t *c, const char *id, char **response)
{
    return get_by_id(c, "/_tine/v1/activations/", id, "invocation id", response);
}

int tine_trace(tine_client_t *c, const char *id, char **response)
{
    return get_by_id(c, "/_tine/v1/traces/", id, "trace id", response);
}

/* The sink of tine_logs: hands each complete line of a 2xx answer to the
 * caller, keeps the body of any other answer for the error message. */
typedef struct {
    tine_client_t *c;
    body_buf_t buf;
    long status;
    tine_line_cb cb;
    void *data;
} lines_sink_t;

/* curl's body callback of tine_logs: hands each complete line of a 2xx answer
 * to the caller and keeps the rest; returns 0 (stopping the transfer) when
 * the caller asks to stop or memory runs out. */
static size_t on_lines(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    lines_sink_t *ls = userdata;
    size_t n = size * nmemb;
    if (ls->status == 0)
        curl_easy_getinfo(ls->c->curl, CURLINFO_RESPONSE_CODE, &ls->status);
    if (on_body(ptr, size, nmemb, &ls->buf) != n)
        return 0;
    if (ls->status < 200 || ls->status > 299)
        return n;
    size_t start = 0;
    for (size_t i = 0; i < ls->buf.len; i++) {
        if (ls->buf.data[i] != '\n')
            continue;
        ls->buf.data[i] = '\0';
        if (ls->cb(ls->data, ls->buf.data + start, i - start) != 0) {
            ls->buf.stopped = 1;
            return 0;
        }
        start = i + 1;
    }
    memmove(ls->buf.data, ls->buf.data + start, ls->buf.len - start + 1);
    ls->buf.len -= start;
    return n;
}

int tine_logs(tine_client_t *c, const char *app, const char *fn, unsigned limit, int follow, tine_line_cb cb,
              void *data)
{
    const char *none[] = {NULL};
    return tine_logs_query(c, app, fn, limit, follow, none, cb, data);
}

int tine_logs_query(tine_client_t *c, const char *app, const char *fn, unsigned limit, int follow,
                    const char *const *params, tine_line_cb cb, void *data)
{
    if (cb == NULL) {
        set_error(c, "no line callback given");
        return -EINVAL;
    }
    char *path = app_path(c, app, "/logs");
    if (path == NULL)
        return app == NULL || app[0] == '\0' ? -EINVAL : -ENOMEM;
    char lim[16];
    snprintf(lim, sizeof lim, "%u", limit);
    int rc = query_add(c, &path, "limit", lim);
    if (rc == 0)
        rc = query_add(c, &path, "function", fn);
    if (rc == 0 && follow)
        rc = query_add(c, &path, "follow", "1");
    for (size_t i = 0; params && params[i] && rc == 0; i += 2)
        rc = query_add(c, &path, params[i], params[i + 1]);
    lines_sink_t ls = {.c = c, .cb = cb, .data = data};
    /* A followed stream gets a keep-alive line every 10 s: silence for
     * three of them means the node is gone without closing the connection. */
    body_sink_t sink = {on_lines, &ls, &ls.buf, follow ? 30 : 0};
    long status = 0;
    if (rc == 0)
        rc = perform(c, "GET", path, NULL, 0, NULL, &status, &sink);
    if (rc == 0 && !ls.buf.stopped && (status < 200 || status > 299))
        rc = answer_error(c, status, path, ls.buf.data ? ls.buf.data : "");
    else if (rc == 0 && !ls.buf.stopped && ls.buf.len > 0)
        cb(data, ls.buf.data, ls.buf.len); /* a last line without "\n" */
    free(ls.buf.data);
    free(path);
    return rc;
}

/* A random id of 32 hex digits (time and address mixed in if getrandom fails). */
static void random_id(char out[33])
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof raw; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            raw[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int tine_emit(tine_client_t *c, const char *type, const char *source, const char *data_json, size_t len,
              char **response)
{
    if (response != NULL)
        *response = NULL;
    if (type == NULL || type[0] == '\0' || source == NULL || source[0] == '\0') {
        set_error(c, "an event needs a type and a source");
        return -EINVAL;
    }
    json_t *data = NULL;
    if (data_json != NULL) {
        json_error_t jerr;
        data = json_loadb(data_json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (data == NULL) {
            set_error(c, "event data is not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
            return -EINVAL;
        }
    }
    char id[33], when[40];
    random_id(id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "type", type, "source",
                           source, "time", when);
    if (ev == NULL) { /* out of memory, or type/source not UTF-8 */
        json_decref(data);
        set_error(c, "cannot build the event (type and source must be UTF-8)");
        return -EINVAL;
    }
    if (data != NULL && (json_object_set_new(ev, "datacontenttype", json_string("application/json")) != 0 ||
                         json_object_set_new(ev, "data", data) != 0)) {
        json_decref(ev);
        set_error(c, "out of memory");
        return -ENOMEM;
    }
    char *body = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (body == NULL) {
        set_error(c, "out of memory");
        return -ENOMEM;
    }
    int rc = tine_events_emit(c, body, strlen(body), response);
    free(body);
    return rc;
}
