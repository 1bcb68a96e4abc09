/* The container engine watcher: follows the Docker Engine API's events
 * stream (GET /events, containers only) on a unix socket with libcurl,
 * driven by the node's loop (curl multi with uv_poll handles and a uv
 * timer; no thread). Each container create/start/stop/kill/die/destroy (and
 * Podman's remove) becomes a CloudEvent container.<action> with the
 * container's id, name, image and exit code. Nodes sharing one engine append
 * each happening once (a dedupe key per event id). When the engine goes away
 * the watcher reconnects with backoff and asks for the events it missed
 * (since=); a missing engine is one warning, not an error. */
#include "events_internal.h"
#include "tine_common.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DOCKER_BACKOFF_MIN_MS 500
#define DOCKER_BACKOFF_MAX_MS 30000
#define DOCKER_SEEN_TTL_S 3600
#define DOCKER_LINE_MAX (1024 * 1024)

struct ev__docker {
    ev_events_t *ev;
    char *socket_path;
    CURLM *multi;
    CURL *easy;
    uv_timer_t curl_timer;
    uv_timer_t retry_timer;
    int handles_open;
    bool stopping;
    bool podman;
    bool warned;
    bool streaming; /* answered 200: the engine is there */
    long status;
    uint64_t backoff_ms;
    int64_t since_s; /* time of the last event seen, to resume from */
    char host[256];
    tine_buf_t line;
    char curl_err[CURL_ERROR_SIZE];
};

typedef struct {
    uv_poll_t poll;
    ev__docker_t *d;
    curl_socket_t fd;
} sock_t;

static void docker_connect(ev__docker_t *d);

/* The backoff timer: connects to the engine again. */
static void on_retry(uv_timer_t *t)
{
    docker_connect(t->data);
}

/* Frees the watcher once it is stopping and its last handle closed. */
static void docker_maybe_free(ev__docker_t *d)
{
    if (d->stopping && d->handles_open == 0) {
        tine_buf_dispose(&d->line);
        free(d->socket_path);
        free(d);
    }
}

/* A watcher's handle closed (a socket's poll handle frees its socket); the
 * last may free the watcher. */
static void on_docker_handle_closed(uv_handle_t *h)
{
    ev__docker_t *d = h->data;
    if (h->type == UV_POLL)
        free(container_of((uv_poll_t *)h, sock_t, poll));
    d->handles_open--;
    docker_maybe_free(d);
}

/* Closes one of the watcher's handles, counted until on_docker_handle_closed. */
static void docker_handle_close(ev__docker_t *d, uv_handle_t *h)
{
    h->data = d;
    uv_close(h, on_docker_handle_closed);
}

/* ----------------------------------------------------------- the events */

/* Whether a container action is one turned into an event (create, start,
 * stop, die, oom, ...). */
static bool action_wanted(const char *a)
{
    static const char *const wanted[] = {"create", "start", "restart", "stop",  "kill",   "die",
                                         "oom",    "pause", "unpause", "destroy", "remove", "rename"};
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        if (strcmp(a, wanted[i]) == 0)
            return true;
    return false;
}

/* Turns one line of the engine's stream into a CloudEvent. */
static void docker_line(ev__docker_t *d, const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "Type"));
    const char *action = json_string_value(json_object_get(j, "Action"));
    if (action == NULL)
        action = json_string_value(json_object_get(j, "status"));
    json_t *actor = json_object_get(j, "Actor");
    json_t *attrs = json_object_get(actor, "Attributes");
    const char *cid = json_string_value(json_object_get(actor, "ID"));
    if (cid == NULL)
        cid = json_string_value(json_object_get(j, "id"));
    json_int_t nano = json_integer_value(json_object_get(j, "timeNano"));
    json_int_t secs = json_integer_value(json_object_get(j, "time"));
    if (secs > d->since_s)
        d->since_s = secs;
    if (type == NULL || strcmp(type, "container") != 0 || action == NULL || cid == NULL || !action_wanted(action)) {
        json_decref(j);
        return;
    }
    const char *name = json_string_value(json_object_get(attrs, "name"));
    const char *image = json_string_value(json_object_get(attrs, "image"));
    if (image == NULL)
        image = json_string_value(json_object_get(j, "from"));
    const char *code = json_string_value(json_object_get(attrs, "exitCode"));
    if (code == NULL)
        code = json_string_value(json_object_get(attrs, "containerExitCode"));
    const char *engine = d->podman ? "podman" : "docker";
    char *id = xasprintf("%s:%.12s:%s:%" PRId64, engine, cid, action, (int64_t)(nano ? nano : secs * 1000000000));
    char *ctype = xasprintf("container.%s", action);
    char *source = xasprintf("%s://%s", engine, d->host);
    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "id", cid, "action", action, "engine", engine, "host", d->host);
    json_object_set_new(data, "name", name ? json_string(name) : json_null());
    json_object_set_new(data, "image", image ? json_string(image) : json_null());
    json_object_set_new(data, "exit_code", code ? json_integer(strtol(code, NULL, 10)) : json_null());
    if (json_is_object(attrs))
        json_object_set(data, "attributes", attrs);
    uint64_t when = nano ? (uint64_t)nano / 1000000u : (uint64_t)secs * 1000u;
    json_t *event = ev__make_event(id, ctype, source, name ? name : cid, when ? when : tine_now_unix_ms(), data);
    char *seen = xasprintf(RDS_KEY_SEEN_PREFIX "%s", id);
    char *what = xasprintf("container event %s", id);
    ev__append_sure(d->ev, "", event, NULL, seen, DOCKER_SEEN_TTL_S, what);
    free(what);
    free(seen);
    json_decref(event);
    free(source);
    free(ctype);
    free(id);
    json_decref(j);
}

/* curl's body callback: hands each complete line of a 200 stream to
 * docker_line (an error page is skipped; a line over DOCKER_LINE_MAX is
 * dropped). Returns n: the transfer goes on. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ev__docker_t *d = userdata;
    size_t n = size * nmemb;
    if (d->status != 200)
        return n; /* an error page: logged when the transfer ends */
    d->backoff_ms = DOCKER_BACKOFF_MIN_MS;
    tine_buf_append(&d->line, ptr, n);
    size_t start = 0;
    for (size_t i = 0; i < d->line.len; i++) {
        if (d->line.data[i] != '\n')
            continue;
        if (i > start)
            docker_line(d, d->line.data + start, i - start);
        start = i + 1;
    }
    memmove(d->line.data, d->line.data + start, d->line.len - start);
    d->line.len -= start;
    if (d->line.len > DOCKER_LINE_MAX)
        d->line.len = 0; /* not the stream we know: drop it */
    return n;
}

/* curl's header callback: notes the status and whether the engine is Podman;
 * the end of a 200 head means the stream is followed. Returns n. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    ev__docker_t *d = userdata;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', n);
        d->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (n > 7 && strncasecmp(buf, "server:", 7) == 0) {
        for (size_t i = 7; i + 6 <= n && !d->podman; i++)
            d->podman = memcmp(buf + i, "Libpod", 6) == 0;
    } else if (n > 19 && strncasecmp(buf, "libpod-api-version:", 19) == 0) {
        d->podman = true;
    } else if (n <= 2 && d->status == 200 && !d->streaming) {
        d->streaming = true;
        tine_log(TINE_LOG_INFO, "events: following %s container events on %s", d->podman ? "Podman" : "Docker",
                 d->socket_path);
        d->warned = false;
    }
    return n;
}

/* -------------------------------------------------------- curl on the loop */

/* Handles the end of the events transfer: logs why (once while the engine
 * stays away) and schedules a reconnect with backoff. */
static void check_done(ev__docker_t *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE || msg->easy_handle != d->easy)
            continue;
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(d->multi, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
        if (d->stopping)
            return;
        if (d->streaming) {
            tine_log(TINE_LOG_WARN, "events: the container engine on %s went away (%s); reconnecting", d->socket_path,
                     rc == CURLE_OK ? "stream ended" : curl_easy_strerror(rc));
        } else if (!d->warned) {
            /* curl speaks of "localhost port 80": say what is wrong with the socket. */
            const char *why = access(d->socket_path, F_OK) != 0 ? strerror(errno)
                              : d->curl_err[0]                  ? d->curl_err
                                                                : curl_easy_strerror(rc);
            if (rc != CURLE_OK)
                tine_log(TINE_LOG_WARN,
                         "events: no container engine at %s (%s); container events start when one appears",
                         d->socket_path, why);
            else
                tine_log(TINE_LOG_WARN, "events: the container engine on %s answered %ld to GET /events",
                         d->socket_path, d->status);
            d->warned = true;
        }
        d->streaming = false;
        uv_timer_start(&d->retry_timer, on_retry, d->backoff_ms, 0);
        d->backoff_ms = d->backoff_ms * 2 > DOCKER_BACKOFF_MAX_MS ? DOCKER_BACKOFF_MAX_MS : d->backoff_ms * 2;
    }
}

/* A socket of curl is ready: lets curl act on it, then looks for the end of
 * the transfer. */
static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = container_of(p, sock_t, poll);
    ev__docker_t *d = s->d;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(d->multi, s->fd, flags, &running);
    check_done(d);
}

/* curl's socket callback: starts, changes or stops polling fd (its sock_t
 * made on first use). Returns 0, or -1 when it cannot be polled. */
static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    ev__docker_t *d = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            docker_handle_close(d, (uv_handle_t *)&s->poll);
            curl_multi_assign(d->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->d = d;
        s->fd = fd;
        if (uv_poll_init_socket(d->ev->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        d->handles_open++;
        curl_multi_assign(d->multi, fd, s);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* curl's timer fired: lets curl act, then looks for the end of the transfer. */
static void on_curl_timeout(uv_timer_t *t)
{
    ev__docker_t *d = t->data;
    int running = 0;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(d);
}

/* curl's timer callback: arms the timer for timeout_ms, or stops it for -1.
 * Returns 0. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ev__docker_t *d = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&d->curl_timer);
    else
        uv_timer_start(&d->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Starts (again) the GET /events transfer. */
static void docker_connect(ev__docker_t *d)
{
    if (d->stopping || d->easy)
        return;
    char url[256];
    int n = snprintf(url, sizeof url, "http://localhost/events?filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%5D%%7D");
    if (d->since_s > 0)
        snprintf(url + n, sizeof url - (size_t)n, "&since=%" PRId64, d->since_s);
    d->status = 0;
    d->line.len = 0;
    d->curl_err[0] = '\0';
    CURL *e = curl_easy_init();
    if (e == NULL)
        return;
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, d->socket_path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    d->easy = e;
    curl_multi_add_handle(d->multi, e);
}

ev__docker_t *ev__docker_start(ev_events_t *ev, const char *socket_path)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return NULL;
    ev__docker_t *d = xcalloc(1, sizeof(*d));
    d->ev = ev;
    d->socket_path = xstrdup(socket_path);
    d->backoff_ms = DOCKER_BACKOFF_MIN_MS;
    tine_buf_init(&d->line);
    if (gethostname(d->host, sizeof d->host - 1) != 0)
        snprintf(d->host, sizeof d->host, "localhost");
    d->multi = curl_multi_init();
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    uv_timer_init(ev->loop, &d->curl_timer);
    uv_timer_init(ev->loop, &d->retry_timer);
    d->curl_timer.data = d;
    d->retry_timer.data = d;
    d->handles_open = 2;
    docker_connect(d);
    return d;
}

void ev__docker_stop(ev__docker_t *d)
{
    if (d == NULL)
        return;
    d->stopping = true;
    if (d->easy) {
        curl_multi_remove_handle(d->multi, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
    }
    curl_multi_cleanup(d->multi);
    curl_global_cleanup();
    uv_timer_stop(&d->curl_timer);
    uv_timer_stop(&d->retry_timer);
    docker_handle_close(d, (uv_handle_t *)&d->curl_timer);
    docker_handle_close(d, (uv_handle_t *)&d->retry_timer);
}
