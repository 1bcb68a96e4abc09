/* The pure parts of the OpenWhisk API (openwhisk.h): names and kinds,
 * zip entries written below an action's directory, parameters merged, and
 * results and activation records in OpenWhisk's shape. No request, loop or
 * Redis here: tests/unit/gateway/test_openwhisk_model.c drives them. */
#include "openwhisk.h"

#include "tine_common.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gw_ow_kind_t gw_ow_kind_parse(const char *kind)
{
    if (kind == NULL)
        return GW_OW_KIND_UNKNOWN;
    if (strcmp(kind, "lua") == 0 || strcmp(kind, "lua:5.1") == 0 || strcmp(kind, "lua:default") == 0)
        return GW_OW_KIND_LUA;
    if (strcmp(kind, "python:3") == 0 || strcmp(kind, "python:default") == 0 ||
        (strncmp(kind, "python:3.", 9) == 0 && kind[9] >= '0' && kind[9] <= '9'))
        return GW_OW_KIND_PYTHON;
    if (strncmp(kind, "nodejs:", 7) == 0 && kind[7] != '\0')
        return GW_OW_KIND_NODE;
    if (strcmp(kind, "blackbox") == 0 || strcmp(kind, "native") == 0)
        return GW_OW_KIND_BLACKBOX;
    if (strcmp(kind, "sequence") == 0)
        return GW_OW_KIND_SEQUENCE;
    return GW_OW_KIND_UNKNOWN;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool gw_ow_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 256 || !name_char(s[0]) || s[len - 1] == ' ')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!name_char(s[i]) && s[i] != '@' && s[i] != '.' && s[i] != '-' && s[i] != ' ')
            return false;
    return true;
}

int gw_ow_zip_path_check(const char *path, char *err, size_t errlen)
{
    size_t len = strlen(path);
    if (len == 0)
        return tine_fail(err, errlen, "zip entry with an empty name");
    if (len > 1024)
        return tine_fail(err, errlen, "zip entry '%.64s...': a path longer than 1024 bytes", path);
    if (path[0] == '/')
        return tine_fail(err, errlen, "zip entry '%s': absolute paths are not allowed", path);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f)
            return tine_fail(err, errlen, "zip entry '%.*s...': a control character in its name", (int)i, path);
        if (c == '\\')
            return tine_fail(err, errlen, "zip entry '%s': backslashes are not allowed in paths", path);
    }
    /* Segment by segment; a trailing "/" (a directory) is allowed. */
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0)
            return tine_fail(err, errlen, "zip entry '%s': an empty path segment", path);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return tine_fail(err, errlen, "zip entry '%s': '.' and '..' are not allowed in paths", path);
        p += n;
        if (*p == '/')
            p++;
    }
    return 0;
}

/* Writes the data of the current entry of a to path; counts it in *total. */
static int write_entry(struct archive *a, const char *path, const char *name, size_t max_total, size_t *total,
                       char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return tine_fail(err, errlen, "zip entry '%s' appears twice", name);
        return tine_fail_errno(err, errlen, "zip entry '%s': cannot write it", name);
    }
    char buf[16384];
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            rc = tine_fail(err, errlen, "zip entry '%s': %s", name, archive_error_string(a));
            break;
        }
        if ((size_t)n > max_total - *total) {
            tine_fail(err, errlen, "zip: more than %zu bytes uncompressed", max_total);
            rc = TINE_ETOOBIG;
            break;
        }
        *total += (size_t)n;
        for (la_ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                rc = tine_fail_errno(err, errlen, "zip entry '%s': cannot write it", name);
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    close(fd);
    return rc;
}

int gw_ow_unzip(const void *zip, size_t len, const char *dir, size_t max_total, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    if (archive_read_open_memory(a, zip, len) != ARCHIVE_OK) {
        int rc = tine_fail(err, errlen, "exec.code: not a zip archive: %s", archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    size_t total = 0, files = 0;
    int rc = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = tine_fail(err, errlen, "exec.code: corrupt zip: %s", archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (name == NULL) {
            rc = tine_fail(err, errlen, "zip: an entry has no readable name");
            break;
        }
        if ((rc = gw_ow_zip_path_check(name, err, errlen)) != 0)
            break;
        mode_t type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e) != NULL || type == AE_IFLNK) {
            rc = tine_fail(err, errlen, "zip entry '%s': links are not allowed", name);
            break;
        }
        if (type != AE_IFREG && type != AE_IFDIR) {
            rc = tine_fail(err, errlen, "zip entry '%s': only files and directories are allowed", name);
            break;
        }
        if (++files > 10000) {
            tine_fail(err, errlen, "zip: more than 10000 entries");
            rc = TINE_ETOOBIG;
            break;
        }
        char *path = xasprintf("%s/%s", dir, name);
        size_t pl = strlen(path);
        while (pl > 0 && path[pl - 1] == '/')
            path[--pl] = '\0';
        char *slash = strrchr(path, '/');
        if (type == AE_IFDIR) {
            if (tine_mkdirs(path, 0755) != 0)
                rc = tine_fail_errno(err, errlen, "zip entry '%s': cannot create it", name);
        } else {
            *slash = '\0';
            int m = tine_mkdirs(path, 0755);
            *slash = '/';
            rc = m != 0 ? tine_fail_errno(err, errlen, "zip entry '%s': cannot create its directory", name)
                        : write_entry(a, path, name, max_total, &total, err, errlen);
        }
        free(path);
        if (rc)
            break;
    }
    archive_read_free(a);
    return rc;
}

json_t *gw_ow_kv_get(const json_t *kvs, const char *key)
{
    size_t i;
    json_t *kv;
    json_array_foreach(kvs, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        if (k && strcmp(k, key) == 0)
            return json_object_get(kv, "value");
    }
    return NULL;
}

json_t *gw_ow_merge_params(const json_t *defaults, const json_t *call)
{
    json_t *out = json_object();
    size_t i;
    json_t *kv;
    json_array_foreach(defaults, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        json_t *v = json_object_get(kv, "value");
        if (k && v)
            json_object_set(out, k, v);
    }
    if (json_is_object(call))
        json_object_update(out, (json_t *)call);
    return out;
}

/* {"status","statusCode","success","result"}; takes result. */
static json_t *response(int code, json_t *result)
{
    static const char *const names[] = {"success", "application error", "action developer error",
                                        "whisk internal error"};
    return json_pack("{s:s, s:i, s:b, s:o}", "status", names[code], "statusCode", code, "success", code == 0,
                     "result", result);
}

json_t *gw_ow_response(int code, int status, const char *body, size_t body_len, const char *error,
                       uint32_t timeout_ms)
{
    if (code == TINE_ETIMEOUT || (code != 0 && status == 504)) {
        char msg[128];
        snprintf(msg, sizeof msg, "The action exceeded its time limits of %u milliseconds.", timeout_ms);
        return response(2, json_pack("{s:s}", "error", msg));
    }
    if (code == TINE_EHANDLER || code == TINE_ECRASH)
        return response(2, json_pack("{s:s}", "error", error ? error : "The action failed to run."));
    if (code != 0)
        return response(3, json_pack("{s:s}", "error", error ? error : tine_strerror(code)));
    json_t *result = body_len ? json_loadb(body, body_len, 0, NULL) : NULL;
    if (json_is_array(result) && json_array_size(result) == 0) {
        /* Lua cannot tell an empty dict from an empty list: {} comes as []. */
        json_decref(result);
        result = json_object();
    }
    if (!json_is_object(result)) {
        json_decref(result);
        return response(2, json_pack("{s:s}", "error", "The action did not produce a valid JSON response."));
    }
    if (status != 200)
        return response(2, result); /* the wrapper's own {"error"}: the contract was broken */
    return response(json_object_get(result, "error") ? 1 : 0, result);
}

/* Milliseconds of a record's field given in microseconds. */
static json_int_t ms_of(const json_t *rec, const char *field)
{
    return json_integer_value(json_object_get(rec, field)) / 1000;
}

/* Adds {"key": k, "value": v} (v taken) to the array. */
static void kv_add(json_t *kvs, const char *k, json_t *v)
{
    json_array_append_new(kvs, json_pack("{s:s, s:o}", "key", k, "value", v));
}

json_t *gw_ow_activation(const json_t *rec, const gw_ow_act_info_t *info)
{
    json_int_t start = json_integer_value(json_object_get(rec, "start_ms"));
    json_int_t duration = ms_of(rec, "duration_us"), wait = ms_of(rec, "queued_us");
    json_t *logs = json_array();
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(rec, "logs"), i, line)
    {
        char when[32];
        tine_fmt_rfc3339_ms((uint64_t)json_integer_value(json_object_get(line, "t")), when);
        const char *level = json_string_value(json_object_get(line, "level"));
        const char *msg = json_string_value(json_object_get(line, "msg"));
        char *text = xasprintf("%s %s: %s", when, level && strcmp(level, "error") == 0 ? "stderr" : "stdout",
                               msg ? msg : "");
        json_array_append_new(logs, json_string(text));
        free(text);
    }
    json_t *resp = info->response ? json_deep_copy(info->response) : NULL;
    if (resp == NULL) {
        const char *error = json_string_value(json_object_get(rec, "error"));
        /* The record has no result: only what it says of the outcome. */
        resp = error ? response(2, json_pack("{s:s}", "error", error)) : response(0, json_object());
    }
    json_t *ann = json_array();
    char *path = xasprintf("%s/%s", info->ns, info->name);
    kv_add(ann, "path", json_string(path));
    free(path);
    kv_add(ann, "waitTime", json_integer(wait));
    kv_add(ann, "kind", json_string(info->kind ? info->kind : ""));
    kv_add(ann, "timeout", json_boolean(json_integer_value(json_object_get(resp, "statusCode")) == 2 &&
                                        json_integer_value(json_object_get(rec, "status")) == 504));
    kv_add(ann, "limits",
           info->limits ? json_deep_copy(info->limits)
                        : json_pack("{s:I, s:I, s:i, s:i}", "timeout",
                                    json_integer_value(json_object_get(rec, "timeout_ms")), "memory",
                                    json_integer_value(json_object_get(rec, "memory_mb")), "logs", 10,
                                    "concurrency", 1));
    if (json_is_true(json_object_get(rec, "cold")))
        kv_add(ann, "initTime", json_integer(ms_of(rec, "cold_start_us")));
    if (info->cause)
        kv_add(ann, "causedBy", json_string("sequence"));
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:b}", "namespace", info->ns, "name",
                          info->name, "activationId", json_string_value(json_object_get(rec, "id")), "subject",
                          info->subject ? info->subject : info->ns, "start", start, "end", start + duration,
                          "duration", duration, "response", resp, "logs", logs, "annotations", ann, "publish", 0);
    char version[32];
    snprintf(version, sizeof version, "0.0.%lld", (long long)json_integer_value(json_object_get(rec, "version")));
    json_object_set_new(a, "version", json_string(version));
    if (info->cause)
        json_object_set_new(a, "cause", json_string(info->cause));
    return a;
}

bool gw_ow_count(const char *s, long max, long dflt, long *out)
{
    if (s == NULL || *s == '\0') {
        *out = dflt;
        return true;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max || s[0] == '+' || s[0] == ' ')
        return false;
    *out = v;
    return true;
}
