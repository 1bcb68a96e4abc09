/* Log triggers. Two sources of lines:
 *
 * - files on the node (source: file:/path), followed like `tail -F`: polled
 *   every 200 ms, read from the last position, rotation (a new inode under
 *   the name: the old file is read to its end first, then the new one from
 *   0) and truncation (size below the position: from 0) handled. The lines'
 *   events and the new position (tine:logpos:{node}:{path} = "dev ino
 *   offset") are written in one MULTI/EXEC, so after a restart no line is
 *   lost or read twice. A file never followed before is followed from its
 *   end; one that appears later from its start. Files must lie under a
 *   directory allowed by --log-paths, checked at deploy and again at open
 *   (on the opened descriptor, so a symlink swapped in later is caught).
 * - the log lines of a function of the app (source: function:NAME), handed
 *   over by the invoker's activation observer.
 *
 * Each line a trigger's filter accepts becomes an event tine.log.line meant
 * for that trigger's function. */
#include "events_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_POLL_MS 200
#define TAIL_CHUNK (64 * 1024) /* bytes read per step; a longer line is cut there */

typedef struct {
    char *app;
    char *function;
    size_t trigger;
    uint32_t attempts;
    ev_filter_t *filter;
} tail_target_t;

struct ev__follow {
    ev__follow_t *next;
    ev_events_t *ev;
    char *path;
    tail_target_t *targets;
    size_t ntargets;
    int fd; /* -1 while the file is not open */
    dev_t dev;
    ino_t ino;
    uint64_t offset; /* next byte to read; stored in Redis */
    /* The stored position, once read from Redis. */
    bool loaded;
    bool loading;
    bool had_position;
    dev_t pos_dev;
    ino_t pos_ino;
    uint64_t pos_offset;
    bool from_start; /* the next file opened is read from 0 (appeared or rotated) */
    bool busy;       /* a batch is being stored */
    bool removed;    /* no trigger wants it any more: freed once not busy */
    bool warned;
    char *buf;
};

static void follow_step(ev__follow_t *f);

/* ------------------------------------------------------------ path checks */

/* Resolves a path that may not exist yet: realpath of the longest existing
 * prefix, plus the rest. */
static bool resolve(const char *path, char *out, size_t outlen)
{
    char tmp[PATH_MAX];
    if (strlen(path) >= sizeof tmp)
        return false;
    if (realpath(path, out) != NULL)
        return true;
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    while (slash && slash != tmp) {
        *slash = '\0';
        char base[PATH_MAX];
        if (realpath(tmp, base) != NULL) {
            int n = snprintf(out, outlen, "%s/%s", strcmp(base, "/") == 0 ? "" : base, path + (slash - tmp) + 1);
            return n > 0 && (size_t)n < outlen;
        }
        slash = strrchr(tmp, '/');
    }
    snprintf(out, outlen, "%s", path);
    return true;
}

bool ev__log_path_allowed(const ev_events_t *ev, const char *path, char *resolved, size_t reslen, char *err,
                          size_t errlen)
{
    if (path[0] != '/' || strstr(path, "/../") || (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0)) {
        snprintf(err, errlen, "%s: expected an absolute path without '..'", path);
        return false;
    }
    if (ev == NULL || ev->nlog_dirs == 0) {
        snprintf(err, errlen,
                 "file %s: this node allows no log files (its operator can allow directories with --log-paths)", path);
        return false;
    }
    char res[PATH_MAX];
    if (!resolve(path, res, sizeof res)) {
        snprintf(err, errlen, "file %s: the path is too long", path);
        return false;
    }
    for (size_t i = 0; i < ev->nlog_dirs; i++) {
        const char *d = ev->log_dirs[i];
        size_t n = strlen(d);
        if (strcmp(d, "/") == 0 || (strncmp(res, d, n) == 0 && res[n] == '/' && res[n + 1] != '\0')) {
            if (resolved)
                snprintf(resolved, reslen, "%s", res);
            return true;
        }
    }
    tine_buf_t dirs;
    tine_buf_init(&dirs);
    for (size_t i = 0; i < ev->nlog_dirs; i++)
        tine_buf_appendf(&dirs, "%s%s", i ? ":" : "", ev->log_dirs[i]);
    tine_buf_append(&dirs, "", 1);
    if (strcmp(res, path) != 0)
        snprintf(err, errlen, "file %s resolves to %s, outside the directories this node allows for log files (%s)",
                 path, res, dirs.data);
    else
        snprintf(err, errlen, "file %s is outside the directories this node allows for log files (%s)", path,
                 dirs.data);
    tine_buf_dispose(&dirs);
    return false;
}

int ev_check_manifest(const ev_events_t *ev, const reg_manifest_t *m, const char *manifest_path, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < m->triggers_len; i++) {
        const reg_trigger_t *t = &m->triggers[i];
        if (t->on != REG_TRIGGER_LOG)
            continue;
        char e2[768];
        if (t->source && strncmp(t->source, "file:", 5) == 0 &&
            !ev__log_path_allowed(ev, t->source + 5, NULL, 0, e2, sizeof e2)) {
            snprintf(err, errlen, "%s: triggers[%zu].source: %s", manifest_path, i, e2);
            return TINE_EINVAL;
        }
        ev_filter_t *f = NULL;
        if (ev__filter_compile(t->filter, &f, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "%s: triggers[%zu].filter: %s", manifest_path, i, e2);
            return TINE_EINVAL;
        }
        ev__filter_free(f);
    }
    return 0;
}

/* Whether an open descriptor is a regular file under an allowed directory
 * (what it really is, whatever the path said). */
static bool fd_allowed(ev__follow_t *f, int fd, struct stat *st)
{
    char link[64], real[PATH_MAX], err[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || n <= 0) {
        if (!f->warned)
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("path", f->path),
                        "events: log source %s is not a regular file; not followed", f->path);
        f->warned = true;
        return false;
    }
    real[n] = '\0';
    if (!ev__log_path_allowed(f->ev, real, NULL, 0, err, sizeof err)) {
        if (!f->warned)
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("path", f->path), "events: log source %s: %s; not followed", f->path,
                        err);
        f->warned = true;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- following */

static void follow_free(ev__follow_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    for (size_t i = 0; i < f->ntargets; i++) {
        free(f->targets[i].app);
        free(f->targets[i].function);
        ev__filter_free(f->targets[i].filter);
    }
    free(f->targets);
    free(f->path);
    free(f->buf);
    free(f);
}

/* The Redis key of the followed position of f on this node, as a fresh
 * string. */
static char *pos_key(ev__follow_t *f)
{
    return xasprintf(RDS_KEY_LOGPOS_PREFIX "%s:%s", f->ev->node_id, f->path);
}

/* The stored position of f (dev ino offset) arrived: following starts from it
 * (none stored: from the end or start as planned); a follow removed meanwhile
 * is freed. */
static void on_position(void *priv, redisReply *reply)
{
    ev__follow_t *f = priv;
    redisReply *r = reply;
    f->loading = false;
    if (f->removed || f->ev->closing) {
        if (f->removed)
            follow_free(f);
        return;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return; /* asked again at the next poll */
    unsigned long long dev = 0, ino = 0, off = 0;
    if (r->type == REDIS_REPLY_STRING && sscanf(r->str, "%llu %llu %llu", &dev, &ino, &off) == 3) {
        f->had_position = true;
        f->pos_dev = (dev_t)dev;
        f->pos_ino = (ino_t)ino;
        f->pos_offset = off;
    }
    f->loaded = true;
    follow_step(f);
}

/* Opens the file and decides where to start reading. */
static bool follow_open(ev__follow_t *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            f->from_start = true; /* when it appears, it is all new */
        else if (!f->warned) {
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("path", f->path), "events: cannot open log source %s: %s", f->path,
                        strerror(errno));
            f->warned = true;
        }
        return false;
    }
    struct stat st;
    if (!fd_allowed(f, fd, &st)) {
        close(fd);
        return false;
    }
    f->warned = false;
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    if (f->had_position && f->pos_dev == st.st_dev && f->pos_ino == st.st_ino)
        f->offset = f->pos_offset <= (uint64_t)st.st_size ? f->pos_offset : 0;
    else if (f->had_position || f->from_start)
        f->offset = 0; /* rotated while we were away, or new */
    else
        f->offset = (uint64_t)st.st_size; /* followed for the first time: from now on */
    f->had_position = true;
    f->pos_dev = f->dev;
    f->pos_ino = f->ino;
    f->pos_offset = f->offset;
    f->from_start = false;
    return true;
}

/* A batch of lines: its events and the new position in one transaction,
 * which must be stored and confirmed by a replica (when the master has
 * one) before the position moves on here; else the same lines are sent
 * again (their event ids are the same: a function can tell). */
typedef struct {
    ev__follow_t *f;
    uint64_t new_offset;
    bool close_after; /* the rotated file is done */
    bool more;        /* the chunk was full: read on at once */
    int left;         /* answers due: the transaction's, the barrier's */
    bool ok;
} batch_t;

/* Both answers of a batch are in: when it was stored and confirmed the
 * follow moves past its lines and reads on while there is more; a follow
 * removed meanwhile is freed. */
static void batch_settle(batch_t *b)
{
    if (--b->left > 0)
        return;
    ev__follow_t *f = b->f;
    f->busy = false;
    bool ok = b->ok;
    if (ok) {
        f->offset = b->new_offset;
        f->pos_offset = b->new_offset;
        if (b->close_after && f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
            f->from_start = true;
        }
    }
    bool more = ok && (b->more || b->close_after);
    free(b);
    if (f->removed) {
        follow_free(f);
        return;
    }
    if (more && !f->ev->closing)
        follow_step(f);
}

/* The transaction's reply: stored, or why not (said). */
static void on_batch_stored(void *priv, redisReply *reply)
{
    batch_t *b = priv;
    redisReply *r = reply;
    b->ok = r && r->type == REDIS_REPLY_ARRAY;
    if (r && !b->ok && !b->f->ev->closing)
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("path", b->f->path), "events: cannot store lines of %s: %s", b->f->path,
                    r->type == REDIS_REPLY_ERROR ? r->str : "transaction aborted");
    batch_settle(b);
}

/* The barrier's answer: lines stored but not confirmed are sent again. */
static void on_batch_confirmed(void *priv, int rc, const char *why)
{
    batch_t *b = priv;
    if (rc != 0 && b->ok && !b->f->ev->closing)
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("path", b->f->path),
                    "events: lines of %s stored but not confirmed (%s); sending them again", b->f->path, why);
    if (rc != 0)
        b->ok = false;
    batch_settle(b);
}

/* Adds the events of one line to the transaction in `a`. */
static void line_events(ev__follow_t *f, ev__args_t *a, const char *line, size_t len, uint64_t at)
{
    ev_events_t *ev = f->ev;
    while (len && (line[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < f->ntargets; i++) {
        tail_target_t *t = &f->targets[i];
        if (!ev__filter_match(t->filter, line, len, NULL))
            continue;
        char *id = xasprintf("log:%s:%ju:%ju:%" PRIu64 ":%s:%zu", ev->node_id, (uintmax_t)f->dev, (uintmax_t)f->ino,
                             at, t->app, t->trigger);
        char *source = xasprintf("file:%s", f->path);
        json_t *data = json_pack("{s:o, s:s, s:s, s:I}", "line", tine_json_text(line, len), "path", f->path, "node",
                                 ev->node_id, "offset", (json_int_t)at);
        json_t *event = ev__make_event(id, "tine.log.line", source, f->path, tine_now_unix_ms(), data);
        json_t *target = ev__target(t->app, t->function, "log", 1, t->attempts);
        char *text = json_dumps(event, JSON_COMPACT);
        char *ttext = json_dumps(target, JSON_COMPACT);
        ev__args_xadd(a, t->app, text, ttext);
        ev__send(ev->cmd, NULL, NULL, a);
        free(text);
        free(ttext);
        json_decref(target);
        json_decref(event);
        free(source);
        free(id);
    }
}

/* Reads what is new, and stores its events with the new position. */
static void follow_step(ev__follow_t *f)
{
    ev_events_t *ev = f->ev;
    if (f->busy || f->removed || ev->closing || !rds_async_connected(ev->cmd))
        return;
    if (!f->loaded) {
        if (!f->loading) {
            ev__args_t a = {0};
            ev__args_adds(&a, "GET");
            char *k = pos_key(f);
            ev__args_adds(&a, k);
            free(k);
            f->loading = ev__send(ev->cmd, on_position, f, &a) == 0;
        }
        return;
    }
    if (f->fd < 0 && !follow_open(f))
        return;
    if (f->buf == NULL)
        f->buf = xmalloc(TAIL_CHUNK);
    struct stat st, named;
    if (fstat(f->fd, &st) != 0)
        return;
    bool rotated = stat(f->path, &named) != 0 || named.st_ino != f->ino || named.st_dev != f->dev;
    if ((uint64_t)st.st_size < f->offset) {
        tine_log_kv(TINE_LOG_INFO, TINE_LOG_KV("path", f->path), "events: %s was truncated; reading it from the start",
                    f->path);
        f->offset = 0;
    }
    ssize_t n = pread(f->fd, f->buf, TAIL_CHUNK, (off_t)f->offset);
    if (n < 0)
        n = 0;
    /* Complete lines only, unless the file is done (rotated) or a line
     * fills the whole chunk. */
    size_t used = 0;
    for (size_t i = (size_t)n; i > 0 && used == 0; i--)
        if (f->buf[i - 1] == '\n')
            used = i;
    if (used == 0 && n == TAIL_CHUNK)
        used = (size_t)n;
    bool at_end = (size_t)n < TAIL_CHUNK;
    if (rotated && at_end && (size_t)n > used)
        used = (size_t)n; /* the old file's last line, without its newline */
    bool close_after = rotated && at_end;
    if (used == 0 && !close_after && f->offset == f->pos_offset)
        return;

    batch_t *b = xcalloc(1, sizeof(*b));
    b->f = f;
    b->new_offset = f->offset + used;
    b->close_after = close_after;
    b->more = !at_end;
    ev__args_t a = {0};
    ev__args_adds(&a, "MULTI");
    ev__send(ev->cmd, NULL, NULL, &a);
    for (size_t s = 0; s < used;) {
        const char *nl = memchr(f->buf + s, '\n', used - s);
        size_t e = nl ? (size_t)(nl - f->buf) : used;
        line_events(f, &a, f->buf + s, e - s, f->offset + s);
        s = e + 1;
    }
    char *k = pos_key(f);
    ev__args_adds(&a, "SET");
    ev__args_adds(&a, k);
    ev__args_addf(&a, "%ju %ju %" PRIu64, (uintmax_t)f->dev, (uintmax_t)f->ino, b->new_offset);
    ev__send(ev->cmd, NULL, NULL, &a);
    free(k);
    ev__args_adds(&a, "EXEC");
    f->busy = true;
    b->left = 2;
    if (ev__send(ev->cmd, on_batch_stored, b, &a) != 0) {
        f->busy = false;
        free(b);
        return;
    }
    if (rds_async_wait_replicas(ev->cmd, on_batch_confirmed, b) != 0)
        b->left = 1; /* the transaction's NULL answer settles it */
}

/* The poll timer: every followed file reads what it has new. */
static void on_tail_timer(uv_timer_t *t)
{
    ev_events_t *ev = t->data;
    for (ev__follow_t *f = ev->follows; f; f = f->next)
        follow_step(f);
}

/* The follower of a path, created when missing. */
static ev__follow_t *follow_get(ev_events_t *ev, const char *path)
{
    for (ev__follow_t *f = ev->follows; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            return f;
    ev__follow_t *f = xcalloc(1, sizeof(*f));
    f->ev = ev;
    f->path = xstrdup(path);
    f->fd = -1;
    f->next = ev->follows;
    ev->follows = f;
    return f;
}

/* Removes a follower: at once, or when its batch or position read is done. */
static void follow_drop(ev__follow_t *f, bool forget_position)
{
    ev_events_t *ev = f->ev;
    for (ev__follow_t **p = &ev->follows; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    if (forget_position && !ev->closing) {
        /* Followed again later, the file is read from its end then. */
        ev__args_t a = {0};
        ev__args_adds(&a, "DEL");
        char *k = pos_key(f);
        ev__args_adds(&a, k);
        free(k);
        ev__send(ev->cmd, NULL, NULL, &a);
    }
    if (f->busy || f->loading)
        f->removed = true;
    else
        follow_free(f);
}

void ev__logtail_app(ev_events_t *ev, const char *app, const reg_app_version_t *v)
{
    /* Drop this app's targets everywhere, then add the new version's. */
    for (ev__follow_t *f = ev->follows; f; f = f->next) {
        size_t o = 0;
        for (size_t i = 0; i < f->ntargets; i++) {
            if (strcmp(f->targets[i].app, app) == 0) {
                free(f->targets[i].app);
                free(f->targets[i].function);
                ev__filter_free(f->targets[i].filter);
            } else {
                f->targets[o++] = f->targets[i];
            }
        }
        f->ntargets = o;
    }
    for (size_t i = 0; v && i < v->manifest->triggers_len; i++) {
        const reg_trigger_t *t = &v->manifest->triggers[i];
        if (t->on != REG_TRIGGER_LOG || t->source == NULL || strncmp(t->source, "file:", 5) != 0)
            continue;
        char err[1024];
        ev_filter_t *filter = NULL;
        if (!ev__log_path_allowed(ev, t->source + 5, NULL, 0, err, sizeof err) ||
            ev__filter_compile(t->filter, &filter, err, sizeof err) != 0) {
            tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", app),
                        "events: %s triggers[%zu] not followed on this node: %s", app, i, err);
            continue;
        }
        ev__follow_t *f = follow_get(ev, t->source + 5);
        f->targets = xrealloc(f->targets, (f->ntargets + 1) * sizeof(*f->targets));
        f->targets[f->ntargets++] = (tail_target_t){xstrdup(app), xstrdup(t->function), i, t->attempts, filter};
    }
    for (ev__follow_t *f = ev->follows, *next; f; f = next) {
        next = f->next;
        if (f->ntargets == 0)
            follow_drop(f, true);
    }
    if (ev->follows && !uv_is_active((uv_handle_t *)&ev->tail_timer))
        uv_timer_start(&ev->tail_timer, on_tail_timer, 0, TAIL_POLL_MS);
}

void ev__logtail_init(ev_events_t *ev)
{
    ev__timer_init(ev, &ev->tail_timer);
}

void ev__logtail_stop(ev_events_t *ev)
{
    uv_timer_stop(&ev->tail_timer);
    ev__handle_close(ev, (uv_handle_t *)&ev->tail_timer);
    while (ev->follows)
        follow_drop(ev->follows, false);
}

/* -------------------------------------------------- function log source */

/* The append of a function log line event: an error is logged (the event is
 * lost). */
static void on_function_line_appended(void *priv, redisReply *reply)
{
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR)
        tine_log(TINE_LOG_WARN, "events: cannot store a function log line event: %s", r->str);
}

/* Appends the event of one function log line for one trigger. */
static void function_line(ev_events_t *ev, const inv_activation_t *a, const reg_trigger_t *t, size_t trigger,
                          size_t line_no, uint64_t when, const char *level, const char *msg)
{
    char *id = xasprintf("log:%s:%zu:%zu", a->invocation_id, line_no, trigger);
    char *source = xasprintf("tine://%s/function/%s", a->app, a->function);
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:I}", "line", msg, "level", level, "invocation_id",
                             a->invocation_id, "function", a->function, "version", (json_int_t)a->version);
    json_t *event = ev__make_event(id, "tine.log.line", source, a->function, when, data);
    json_t *target = ev__target(a->app, t->function, "log", 1, t->attempts);
    if (ev__append_one(ev, a->app, event, target, NULL, 0, on_function_line_appended, NULL) != 0)
        tine_log_kv(TINE_LOG_WARN, TINE_LOG_KV("app", a->app, "function", a->function),
                    "events: a log line of %s.%s was not turned into an event: redis is unreachable", a->app,
                    a->function);
    json_decref(target);
    json_decref(event);
    free(source);
    free(id);
}

void ev_on_activation(ev_events_t *ev, const inv_activation_t *a)
{
    if (ev == NULL || ev->closing || a->app == NULL || a->function == NULL)
        return;
    reg_app_version_t *v = ev__app(ev, a->app);
    if (v == NULL)
        return;
    /* The call's function in the live version, looked up at the first
     * trigger following a function's lines (most apps have none). */
    size_t fn = SIZE_MAX;
    bool looked_up = false;
    for (size_t i = 0; i < v->manifest->triggers_len; i++) {
        const reg_trigger_t *t = &v->manifest->triggers[i];
        if (t->on != REG_TRIGGER_LOG || t->source_function_index == SIZE_MAX)
            continue;
        if (!looked_up) {
            looked_up = true;
            if (!reg_manifest_function_index(v->manifest, a->function, strlen(a->function), &fn))
                return;
        }
        if (t->source_function_index != fn)
            continue;
        /* A function following its own log lines would feed itself. */
        if (t->function_index == fn && a->trigger && strcmp(a->trigger, "log") == 0)
            continue;
        ev_filter_t *filter = NULL;
        char err[256];
        if (ev__filter_compile(t->filter, &filter, err, sizeof err) != 0)
            continue;
        size_t k;
        json_t *line;
        /* The function's own lines; tine's lines after them (the error and its
         * trace) would fire a trigger once per trace line: the failure is the
         * one line below instead. */
        json_array_foreach(a->logs, k, line)
        {
            if (k >= a->logs_function)
                break;
            const char *msg = json_string_value(json_object_get(line, "msg"));
            const char *level = json_string_value(json_object_get(line, "level"));
            if (msg == NULL)
                continue;
            json_t *fields = json_pack("{s:s}", "level", level ? level : "info");
            if (ev__filter_match(filter, msg, strlen(msg), fields))
                function_line(ev, a, t, i, k, (uint64_t)json_integer_value(json_object_get(line, "t")),
                              level ? level : "info", msg);
            json_decref(fields);
        }
        /* A failed invocation is an error line of its own. */
        if (a->code != 0 && a->error) {
            char *msg = xasprintf("ERROR %s failed: %s", a->function, a->error);
            json_t *fields = json_pack("{s:s}", "level", "error");
            if (ev__filter_match(filter, msg, strlen(msg), fields))
                function_line(ev, a, t, i, json_array_size(a->logs), tine_now_unix_ms(), "error", msg);
            json_decref(fields);
            free(msg);
        }
        ev__filter_free(filter);
    }
}
