/* tine.http: outbound HTTP requests made by tined on a function's behalf,
 * with libcurl's multi interface driven by the invoker's libuv loop (one
 * uv_poll_t per socket curl opens, one uv_timer_t for curl's timeouts), so a
 * slow server never blocks the loop.
 *
 * Each app has a client of its own (a multi handle: its own connection
 * cache, DNS cache and TLS sessions), so a connection one app opened is
 * never used for another app's request. A client whose app made no request
 * for HTTP_CLIENT_IDLE_MS is closed with its connections.
 *
 * Limits: the request's time is capped by what is left of the invocation's
 * timeout; the response (headers and body) by HTTP_MAX_RESPONSE bytes;
 * redirects are not followed; only http and https. Where it may go: the
 * app's allow_outbound list when the manifest has one; without one, any host
 * except at loopback, link-local, unspecified and the node's own addresses
 * (tined's own admin API, a local Redis, cloud metadata services), which a
 * function reaches only through a host its app lists (common/outbound.h,
 * the policy exec programs' egress proxy applies too). The address is
 * checked twice:
 * before a socket is opened (so a refused address is never connected to),
 * and on every request against the address of the connection actually used,
 * new or reused (so a connection kept alive from an earlier version of the
 * app, with other rights, does not carry them over). */
#include "hostcall_internal.h"
#include "outbound.h"
#include "tine_common.h"
#include "trace.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_RESPONSE (6u * 1024u * 1024u) /* body bytes */
#define HTTP_MAX_HEADERS (64u * 1024u)         /* response header bytes */
#define HTTP_USER_AGENT "tine/0.1"
#define HTTP_CLIENT_IDLE_MS (120u * 1000u) /* an app's client closes after this without a request */
#define HTTP_CLIENT_MAX_CONNS 16L          /* idle connections an app's client keeps */

typedef struct http_client http_client_t;

struct inv_http {
    uv_loop_t *loop;
    tine_list_t clients;      /* one per app that made a request (http_client_t.link) */
    unsigned closing_clients; /* clients whose timer is closing */
    bool freeing;             /* inv__http_free ran: freed once the last client closed */
};

/* The client of one app: its multi handle and what drives it. */
struct http_client {
    inv_http_t *http;
    tine_list_t link; /* inv_http_t.clients */
    char *app;
    CURLM *multi;
    uv_timer_t timer;
    tine_list_t reqs;      /* in flight (http_req_t.link) */
    uint64_t last_used;    /* tine_now_ns of its last request */
};

typedef struct http_req {
    http_client_t *client;
    tine_list_t link; /* http_client_t.reqs */
    inv_call_t *c;
    CURL *easy;
    struct curl_slist *headers;
    char *host;       /* the URL's host, for messages */
    bool host_listed; /* named by an allow_outbound entry other than "*" */
    bool too_big;
    char refused[INET6_ADDRSTRLEN]; /* an address the policy refused */
    uint32_t timeout_ms;
    tine_buf_t body;
    size_t header_bytes;
    json_t *resp_headers;
    char errbuf[CURL_ERROR_SIZE];
} http_req_t;

typedef struct {
    uv_poll_t poll;
    http_client_t *client;
    curl_socket_t fd;
} http_socket_t;

static void check_done(http_client_t *cl);

/* ------------------------------------------------------------ the loop */

/* A socket of tine.http is ready: lets curl act on it, then finishes the
 * transfers that are done. */
static void on_poll(uv_poll_t *p, int status, int events)
{
    http_socket_t *s = p->data;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(s->client->multi, s->fd, flags, &running);
    check_done(s->client);
}

/* A socket's poll handle closed: frees the socket. */
static void on_socket_closed(uv_handle_t *hd)
{
    free(hd->data);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) one of curl's sockets. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http_client_t *cl = userp;
    http_socket_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_socket_closed);
            curl_multi_assign(cl->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->client = cl;
        s->fd = fd;
        if (uv_poll_init_socket(cl->http->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(cl->multi, fd, s);
    }
    int events = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* curl's timer of this client fired: lets curl act, then finishes the
 * transfers that are done. */
static void on_timer(uv_timer_t *t)
{
    http_client_t *cl = container_of(t, http_client_t, timer);
    int running = 0;
    curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cl);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back after `ms`. */
static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    http_client_t *cl = userp;
    if (ms < 0)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

inv_http_t *inv__http_new(uv_loop_t *loop)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    inv_http_t *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    tine_list_init(&h->clients);
    return h;
}

/* The client of `app`, created on its first request. */
static http_client_t *client_get(inv_http_t *h, const char *app)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &h->clients) {
        http_client_t *cl = tine_list_entry(l, http_client_t, link);
        if (strcmp(cl->app, app) == 0)
            return cl;
    }
    http_client_t *cl = xcalloc(1, sizeof(*cl));
    cl->http = h;
    tine_list_init(&cl->reqs);
    cl->app = xstrdup(app);
    cl->multi = curl_multi_init();
    if (cl->multi == NULL) {
        tine_log(TINE_LOG_ERROR, "cannot create the HTTP client of tine.http");
        abort();
    }
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, HTTP_CLIENT_MAX_CONNS);
    uv_timer_init(h->loop, &cl->timer);
    tine_list_insert_head(&h->clients, &cl->link);
    return cl;
}

/* A client's timer closed: frees the client, and the HTTP state when it was
 * the last and is being freed. */
static void on_client_timer_closed(uv_handle_t *hd)
{
    http_client_t *cl = container_of((uv_timer_t *)hd, http_client_t, timer);
    inv_http_t *h = cl->http;
    free(cl->app);
    free(cl);
    if (--h->closing_clients == 0 && h->freeing && tine_list_empty(&h->clients))
        free(h);
}

static void req_free(http_req_t *r);

/* Unlinks a client, answers what it has in flight with `why`, closes its
 * connections, and frees it once its timer closed. */
static void client_close(http_client_t *cl, const char *why)
{
    inv_http_t *h = cl->http;
    tine_list_remove(&cl->link);
    tine_list_t *l;
    while ((l = tine_list_first(&cl->reqs)) != NULL) {
        http_req_t *r = tine_list_entry(l, http_req_t, link);
        inv__hc_fail(r->c, "%s", why);
        req_free(r);
    }
    curl_multi_cleanup(cl->multi);
    uv_timer_stop(&cl->timer);
    h->closing_clients++;
    uv_close((uv_handle_t *)&cl->timer, on_client_timer_closed);
}

/* Closes the clients of apps that made no request for HTTP_CLIENT_IDLE_MS
 * (their kept-alive connections with them). */
static void clients_sweep(inv_http_t *h, uint64_t now)
{
    tine_list_t *l, *tmp;
    TINE_LIST_FOREACH_SAFE(l, tmp, &h->clients) {
        http_client_t *cl = tine_list_entry(l, http_client_t, link);
        if (tine_list_empty(&cl->reqs) && now - cl->last_used > (uint64_t)HTTP_CLIENT_IDLE_MS * 1000000u)
            client_close(cl, "");
    }
}

/* ------------------------------------------------------------ requests */

/* Takes a request out of its client and curl and frees it (its host call
 * answered before). */
static void req_free(http_req_t *r)
{
    http_client_t *cl = r->client;
    tine_list_remove(&r->link);
    curl_multi_remove_handle(cl->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    json_decref(r->resp_headers);
    tine_buf_dispose(&r->body);
    free(r->host);
    free(r);
}

/* Answers the request's host call from curl's outcome, then frees it. */
static void req_finish(http_req_t *r, CURLcode rc)
{
    inv_call_t *c = r->c;
    if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        json_t *meta = json_pack("{s:i, s:O}", "status", (int)status, "headers", r->resp_headers);
        inv__hc_reply(c, meta, r->body.data, r->body.len);
    } else if (r->refused[0]) {
        inv__hc_fail(c,
                     "host %s is at %s, one of this node's own or a loopback, link-local or unspecified "
                     "address; list the host in allow_outbound to reach it",
                     r->host, r->refused);
    } else if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        inv__hc_fail(c, "the response from %s is larger than the limit of %u bytes", r->host,
                     (unsigned)HTTP_MAX_RESPONSE);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        inv__hc_fail(c, "timed out after %u ms (%s)", (unsigned)r->timeout_ms, r->host);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        inv__hc_fail(c, "cannot resolve host %s", r->host);
    } else {
        inv__hc_fail(c, "%s: %s", r->host, r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
    }
    req_free(r);
}

/* Finishes (req_finish) every transfer of the client that curl reports done. */
static void check_done(http_client_t *cl)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(cl->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        req_finish((http_req_t *)priv, rc);
    }
}

/* curl's body callback: keeps the response up to HTTP_MAX_RESPONSE; over it
 * returns 0 to stop the transfer (too_big). */
static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    http_req_t *r = userp;
    size_t len = size * n;
    if (r->body.len + len > HTTP_MAX_RESPONSE) {
        r->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    tine_buf_append(&r->body, data, len);
    return len;
}

/* Collects response headers: names in lower case, repeated ones joined with
 * ", ". A new status line (after 1xx) starts over. */
static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    http_req_t *r = userp;
    size_t len = size * n;
    r->header_bytes += len;
    if (r->header_bytes > HTTP_MAX_HEADERS) {
        r->too_big = true;
        return 0;
    }
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(r->resp_headers);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL || colon == data)
        return len;
    char *name = xstrndup(data, (size_t)(colon - data));
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    json_t *old = json_object_get(r->resp_headers, name);
    json_t *value;
    if (old != NULL) {
        tine_buf_t b;
        tine_buf_init(&b);
        tine_buf_append(&b, json_string_value(old), json_string_length(old));
        tine_buf_append(&b, ", ", 2);
        tine_buf_append(&b, v, (size_t)(end - v));
        value = tine_json_text(b.data, b.len);
        tine_buf_dispose(&b);
    } else {
        value = tine_json_text(v, (size_t)(end - v));
    }
    json_t *key_ok = json_string(name);
    if (key_ok != NULL) /* a name that is not UTF-8 is dropped */
        json_object_set_new(r->resp_headers, name, value);
    else
        json_decref(value);
    json_decref(key_ok);
    free(name);
    return len;
}

/* CURLOPT_OPENSOCKETFUNCTION: refuses local addresses unless the host was
 * listed by name in allow_outbound. */
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    http_req_t *r = userp;
    if (!r->host_listed && tine_outbound_address_refused(&addr->addr) != NULL) {
        const void *ip = addr->family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr;
        if (inet_ntop(addr->family, ip, r->refused, sizeof(r->refused)) == NULL)
            snprintf(r->refused, sizeof(r->refused), "?");
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* CURLOPT_PREREQFUNCTION: runs for every request once its connection is
 * chosen, new or reused, with that connection's address: the same check as
 * on_open_socket, so a reused connection never carries rights the request
 * does not have. An address that cannot be read is refused. */
static int on_prereq(void *userp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    http_req_t *r = userp;
    if (r->host_listed)
        return CURL_PREREQFUNC_OK;
    char ip[INET6_ADDRSTRLEN + 16];
    snprintf(ip, sizeof(ip), "%s", primary_ip ? primary_ip : "");
    ip[strcspn(ip, "%")] = '\0'; /* an IPv6 zone */
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1)
        ss.ss_family = AF_INET;
    if (ss.ss_family != 0 && tine_outbound_address_refused((struct sockaddr *)&ss) == NULL)
        return CURL_PREREQFUNC_OK;
    snprintf(r->refused, sizeof(r->refused), "%.*s", (int)sizeof(r->refused) - 1, ip[0] ? ip : "?");
    return CURL_PREREQFUNC_ABORT;
}

/* Whether allow_outbound lets the app reach `host` (lower case, no
 * brackets); *listed is set when an entry other than "*" named it. */
static bool host_allowed(const reg_manifest_t *m, const char *host, bool *listed)
{
    return tine_outbound_host_allowed((const char *const *)m->allow_outbound, m->allow_outbound_len,
                                      m->allow_outbound_set, host, listed);
}

/* Parses the URL: scheme http or https, a host. Stores the host (lower case,
 * without IPv6 brackets) or returns an error message. */
static const char *url_host(const char *url, char **host)
{
    *host = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return "out of memory";
    const char *problem = NULL;
    char *scheme = NULL, *h = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        problem = "is not a valid URL";
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
        problem = "is not an http:// or https:// URL";
    else if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h[0] == '\0')
        problem = "has no host";
    if (problem == NULL) {
        size_t n = strlen(h);
        bool bracketed = n >= 2 && h[0] == '[' && h[n - 1] == ']';
        *host = bracketed ? xstrndup(h + 1, n - 2) : xstrdup(h);
        for (char *p = *host; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    curl_free(scheme);
    curl_free(h);
    curl_url_cleanup(u);
    return problem;
}

/* Adds the request headers of meta (an object of strings) to r; returns an
 * error message for a bad one. */
static const char *add_request_headers(http_req_t *r, json_t *headers, bool *has_ct, bool *has_tp)
{
    const char *name;
    json_t *v;
    *has_ct = false;
    *has_tp = false;
    json_object_foreach(headers, name, v)
    {
        char num[32];
        const char *value = json_string_value(v);
        size_t vl = json_string_length(v);
        if (json_is_number(v)) {
            snprintf(num, sizeof(num), "%.17g", json_number_value(v));
            value = num;
            vl = strlen(num);
        }
        if (value == NULL || name[0] == '\0' || strpbrk(name, " \t\r\n:") != NULL)
            return "bad request header";
        for (size_t i = 0; i < vl; i++)
            if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
                return "a request header value holds CR, LF or NUL";
        *has_ct |= strcasecmp(name, "content-type") == 0;
        *has_tp |= strcasecmp(name, "traceparent") == 0;
        /* "Name;" is curl's way to send a header with an empty value. */
        char *line = vl ? xasprintf("%s: %.*s", name, (int)vl, value) : xasprintf("%s;", name);
        r->headers = curl_slist_append(r->headers, line);
        free(line);
    }
    return NULL;
}

void inv__http_request(inv_http_t *h, inv_call_t *c, json_t *meta, const char *body, size_t body_len)
{
    uint64_t now = tine_now_ns();
    clients_sweep(h, now);
    const char *url = json_string_value(json_object_get(meta, "url"));
    const char *method = json_string_value(json_object_get(meta, "method"));
    json_t *headers = json_object_get(meta, "headers");
    if (url == NULL || method == NULL || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method) ||
        method[0] == '\0' || strlen(method) > 16 || (headers != NULL && !json_is_object(headers))) {
        inv__hc_fail(c, "expected a url, an upper-case method and a table of headers");
        return;
    }
    char *host = NULL;
    const char *problem = url_host(url, &host);
    if (problem != NULL) {
        inv__hc_fail(c, "'%.200s' %s", url, problem);
        return;
    }
    bool listed = false;
    if (!host_allowed(c->pool->version->manifest, host, &listed)) {
        inv__hc_fail(c, "host %s not allowed by allow_outbound", host);
        free(host);
        return;
    }
    uint32_t remaining = inv__hc_remaining_ms(c);
    double asked = json_number_value(json_object_get(meta, "timeout_ms"));
    uint32_t timeout = asked >= 1 && asked < remaining ? (uint32_t)asked : remaining;
    if (timeout == 0) {
        inv__hc_fail(c, "no time left in this invocation");
        free(host);
        return;
    }

    http_client_t *cl = client_get(h, c->pool->version->app);
    cl->last_used = now;
    http_req_t *r = xcalloc(1, sizeof(*r));
    r->client = cl;
    r->c = c;
    r->host = host;
    r->host_listed = listed;
    r->timeout_ms = timeout;
    r->resp_headers = json_object();
    tine_buf_init(&r->body);
    bool has_ct = false, has_tp = false;
    problem = headers ? add_request_headers(r, headers, &has_ct, &has_tp) : NULL;
    if (problem != NULL) {
        inv__hc_fail(c, "%s", problem);
        curl_slist_free_all(r->headers);
        json_decref(r->resp_headers);
        free(r->host);
        free(r);
        return;
    }
    /* No curl defaults the function did not ask for. */
    r->headers = curl_slist_append(r->headers, "Expect:");
    if (!has_ct)
        r->headers = curl_slist_append(r->headers, "Content-Type:");
    if (!has_tp) {
        /* The call's trace goes on, with this call as the parent (W3C trace
         * context), unless the function sent a traceparent of its own. */
        char line[16 + TINE_TRACEPARENT_LEN] = "traceparent: ";
        tine_traceparent_format(c->trace, c->id_hex, line + 13);
        r->headers = curl_slist_append(r->headers, line);
    }
    CURL *e = r->easy = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_RESPONSE);
    curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || body_len > 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (body_len > 0 || strcmp(method, "GET") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body_len ? body : "");
        }
    }
    tine_list_insert_head(&cl->reqs, &r->link);
    CURLMcode mc = curl_multi_add_handle(cl->multi, e);
    if (mc != CURLM_OK) {
        inv__hc_fail(c, "cannot start the request: %s", curl_multi_strerror(mc));
        req_free(r);
    }
}

void inv__http_free(inv_http_t *h)
{
    if (h == NULL)
        return;
    h->freeing = true;
    tine_list_t *l;
    while ((l = tine_list_first(&h->clients)) != NULL)
        client_close(tine_list_entry(l, http_client_t, link), "the node is shutting down");
    if (h->closing_clients == 0)
        free(h);
}
