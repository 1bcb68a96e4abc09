/* Bundles: the tar.gz an app is deployed as. Reading checks everything a
 * hostile upload could try (path escapes, links, devices, sizes, duplicate
 * names) before the manifest is parsed and every Lua file is compiled; packing
 * turns an app directory into a byte-identical tar.gz for identical input.
 *
 * Both sides are fed by users, so neither aborts: out-of-memory is -ENOMEM
 * (but in reg_bundle_identity, which the store calls on a bundle read). */
#define _GNU_SOURCE /* memmem */
#include "bundle_internal.h"
#include "tine_common.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUNDLE_DEFAULT_MAX_TOTAL ((size_t)64 << 20)
#define BUNDLE_DEFAULT_MAX_FILES ((size_t)10000)
/* Longer paths are certainly a mistake or an attack; materializing them
 * would hit PATH_MAX anyway. */
#define BUNDLE_MAX_PATH 1024

static const char *const manifest_names[] = {"tine.yaml", "tine.yml", "tine.json"};
#define MANIFEST_NAMES 3

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes a message into err (when there is room) and returns rc. */
static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Says "bundle: out of memory" in err; returns -ENOMEM. */
static int oom(char *err, size_t errlen)
{
    return set_err(err, errlen, -ENOMEM, "bundle: out of memory");
}

void reg_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(len ? data : (const void *)"", len, md);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* Daemon code (the store): the buffer aborts when out of memory. */
void reg_bundle_identity(const reg_bundle_t *b, char out[65])
{
    tine_buf_t buf;
    tine_buf_init(&buf);
    for (size_t i = 0; i < b->files_len; i++) {
        tine_buf_append(&buf, b->files[i].path, strlen(b->files[i].path) + 1);
        tine_buf_append(&buf, b->files[i].sha256, 64);
        tine_buf_append(&buf, "\n", 1);
    }
    reg_sha256_hex(buf.data ? buf.data : "", buf.len, out);
    tine_buf_dispose(&buf);
}

void reg_bundle_free(reg_bundle_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->files_len; i++) {
        free(b->files[i].path);
        free(b->files[i].data);
    }
    free(b->files);
    if (b->manifest)
        reg_manifest_free(b->manifest);
    free(b);
}

/* ---------------------------------------------------------------- reading */

/* Normalizes an entry path: drops a leading "./", empty and "." segments.
 * Returns a fresh string (possibly "" for the bundle root), or NULL with
 * *why set to a reason (or NULL for out-of-memory). */
static char *normalize_path(const char *in, const char **why)
{
    *why = NULL;
    if (in[0] == '/') {
        *why = "absolute paths are not allowed";
        return NULL;
    }
    size_t n = strlen(in);
    if (n > BUNDLE_MAX_PATH) {
        *why = "path longer than 1024 bytes";
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "control characters are not allowed in paths";
            return NULL;
        }
    }
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const char *p = in;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            *why = "path escapes the bundle";
            return NULL;
        }
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    out[o] = '\0';
    return out;
}

/* What a bundle entry of an unsupported type is, for the error message ("a
 * fifo", ...). */
static const char *filetype_name(mode_t type)
{
    switch (type) {
    case AE_IFCHR:
        return "a character device";
    case AE_IFBLK:
        return "a block device";
    case AE_IFIFO:
        return "a fifo";
    case AE_IFSOCK:
        return "a socket";
    default:
        return "of an unknown type";
    }
}

/* An entry name fit for a one-line message: control characters become "?"
 * and very long names are cut. */
static const char *display_name(const char *name, char out[256])
{
    size_t i = 0;
    for (; name[i] && i < 255; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
    if (name[i] && i >= 3)
        memcpy(out + i - 3, "...", 3);
    return out;
}

typedef struct {
    reg_bundle_file_t *files;
    size_t len;
    size_t cap;
    size_t total;
} file_list_t;

static void file_list_dispose(file_list_t *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->files[i].path);
        free(l->files[i].data);
    }
    free(l->files);
    memset(l, 0, sizeof(*l));
}

/* qsort order of bundle files: by path. */
static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const reg_bundle_file_t *)a)->path, ((const reg_bundle_file_t *)b)->path);
}

/* Index of the first file whose path is >= key in a sorted list. */
static size_t lower_bound(const file_list_t *l, const char *key)
{
    size_t lo = 0, hi = l->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->files[mid].path, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The file at path in the sorted list l, or NULL. */
static reg_bundle_file_t *find_file(const file_list_t *l, const char *path)
{
    size_t i = lower_bound(l, path);
    if (i < l->len && strcmp(l->files[i].path, path) == 0)
        return &l->files[i];
    return NULL;
}

/* Reads the data of the current entry (declared size `size`) into a fresh
 * NUL-terminated buffer. */
static int read_entry_data(struct archive *a, const char *path, size_t size, char **out, char *err, size_t errlen)
{
    char *data = malloc(size + 1);
    if (data == NULL)
        return oom(err, errlen);
    size_t got = 0;
    while (got < size) {
        la_ssize_t n = archive_read_data(a, data + got, size - got);
        if (n < 0) {
            free(data);
            return set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': %s", path, archive_error_string(a));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != size) {
        free(data);
        return set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': truncated (%zu of %zu bytes)", path, got, size);
    }
    data[size] = '\0';
    *out = data;
    return 0;
}

/* Reads every entry of the archive into l, checking types, paths and
 * limits. */
static int read_entries(struct archive *a, size_t max_total, size_t max_files, file_list_t *l, char *err,
                        size_t errlen)
{
    size_t dirs = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        /* ARCHIVE_RETRY (a damaged header skipped) counts as corrupt too. */
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return set_err(err, errlen, TINE_EINVAL, "bundle: corrupt archive: %s", archive_error_string(a));
        const char *name = archive_entry_pathname(e);
        if (name == NULL)
            return set_err(err, errlen, TINE_EINVAL, "bundle: an entry has no readable name");
        const char *why;
        char shown[256];
        char *path = normalize_path(name, &why);
        if (path == NULL) {
            if (why == NULL)
                return oom(err, errlen);
            return set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': %s", display_name(name, shown), why);
        }
        mode_t type = archive_entry_filetype(e);
        const char *bad = NULL;
        if (archive_entry_hardlink(e) != NULL)
            bad = "hard links are not allowed";
        else if (type == AE_IFLNK)
            bad = "symlinks are not allowed";
        else if (type == AE_IFDIR) {
            free(path);
            /* Directories carry nothing; they are only counted so a stream
             * of empty headers cannot keep the reader busy forever. */
            if (++dirs > max_files)
                return set_err(err, errlen, TINE_ETOOBIG, "bundle: more than %zu directories", max_files);
            continue;
        } else if (type != AE_IFREG) {
            int rc = set_err(err, errlen, TINE_EINVAL,
                             "bundle: entry '%s': only regular files and directories are allowed (this is %s)",
                             display_name(name, shown),
                             filetype_name(type));
            free(path);
            return rc;
        }
        if (bad == NULL && path[0] == '\0')
            bad = "a file needs a name";
        if (bad) {
            int rc = set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': %s", display_name(name, shown), bad);
            free(path);
            return rc;
        }
        if (l->len == max_files) {
            free(path);
            return set_err(err, errlen, TINE_ETOOBIG, "bundle: more than %zu files", max_files);
        }
        la_int64_t size64 = archive_entry_size(e);
        if (size64 < 0 || (uint64_t)size64 > (uint64_t)(max_total - l->total)) {
            int rc = set_err(err, errlen, TINE_ETOOBIG,
                             "bundle: entry '%s': the files add up to more than %zu bytes uncompressed", path,
                             max_total);
            free(path);
            return rc;
        }
        size_t size = (size_t)size64;
        if (l->len == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            reg_bundle_file_t *grown = realloc(l->files, cap * sizeof(*grown));
            if (grown == NULL) {
                free(path);
                return oom(err, errlen);
            }
            l->files = grown;
            l->cap = cap;
        }
        char *data = NULL;
        int rc = read_entry_data(a, path, size, &data, err, errlen);
        if (rc != 0) {
            free(path);
            return rc;
        }
        reg_bundle_file_t *f = &l->files[l->len++];
        f->path = path;
        f->data = data;
        f->len = size;
        reg_sha256_hex(data, size, f->sha256);
        l->total += size;
    }
}

/* Sorts the files and rejects a path given twice or used both as a file and
 * as a directory ("a" and "a/b"), which could not be written out. */
static int check_names(file_list_t *l, char *err, size_t errlen)
{
    qsort(l->files, l->len, sizeof(*l->files), file_cmp);
    char key[BUNDLE_MAX_PATH + 2];
    for (size_t i = 0; i < l->len; i++) {
        const char *p = l->files[i].path;
        if (i + 1 < l->len && strcmp(p, l->files[i + 1].path) == 0)
            return set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': duplicate path", p);
        size_t n = strlen(p);
        memcpy(key, p, n);
        key[n] = '/';
        key[n + 1] = '\0';
        size_t j = lower_bound(l, key);
        if (j < l->len && strncmp(l->files[j].path, key, n + 1) == 0)
            return set_err(err, errlen, TINE_EINVAL, "bundle: entry '%s': '%s' is both a file and a directory",
                           l->files[j].path, p);
    }
    return 0;
}

/* Finds the one manifest at the root of the bundle. */
static int find_manifest(const file_list_t *l, reg_bundle_file_t **out, char *err, size_t errlen)
{
    reg_bundle_file_t *found[MANIFEST_NAMES];
    size_t n = 0;
    for (size_t i = 0; i < MANIFEST_NAMES; i++) {
        reg_bundle_file_t *f = find_file(l, manifest_names[i]);
        if (f)
            found[n++] = f;
    }
    if (n == 0)
        return set_err(err, errlen, TINE_EINVAL, "bundle: no tine.yaml, tine.yml or tine.json at the root");
    if (n > 1)
        return set_err(err, errlen, TINE_EINVAL, "bundle: more than one manifest at the root: %s and %s",
                       found[0]->path, found[1]->path);
    *out = found[0];
    return 0;
}

/* Checks that every function's handler file is in the bundle. */
static int check_handlers(const file_list_t *l, const reg_manifest_t *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->functions_len; i++) {
        const reg_function_t *fn = &m->functions[i];
        const char *file = fn->handler_file ? fn->handler_file : "";
        /* The manifest may spell "./src/x.lua"; the bundle holds "src/x.lua". */
        const char *why;
        char *norm = normalize_path(file, &why);
        if (norm == NULL && why == NULL)
            return oom(err, errlen);
        int present = norm && norm[0] && find_file(l, norm) != NULL;
        free(norm);
        if (!present)
            return set_err(err, errlen, TINE_EINVAL, "bundle: functions.%s.handler: file '%s' is not in the bundle",
                           fn->name, file);
    }
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Compiles every ".lua" file in a bare Lua state (no libraries, nothing
 * run) so syntax errors surface at deploy, as "path:line: message". */
static int check_lua_syntax(const file_list_t *l, char *err, size_t errlen)
{
    lua_State *L = NULL;
    char *chunkname = NULL;
    int rc = 0;
    for (size_t i = 0; i < l->len && rc == 0; i++) {
        const reg_bundle_file_t *f = &l->files[i];
        if (!has_suffix(f->path, ".lua"))
            continue;
        /* LuaJIT bytecode starts with "\x1bLJ", PUC Lua's with "\x1bLua". */
        if (f->len > 0 && f->data[0] == '\x1b') {
            rc = set_err(err, errlen, TINE_EINVAL, "%s: precompiled chunks are not accepted", f->path);
            break;
        }
        if (L == NULL && (L = luaL_newstate()) == NULL) {
            rc = oom(err, errlen);
            break;
        }
        free(chunkname);
        size_t n = strlen(f->path);
        chunkname = malloc(n + 2);
        if (chunkname == NULL) {
            rc = oom(err, errlen);
            break;
        }
        chunkname[0] = '@';
        memcpy(chunkname + 1, f->path, n + 1);
        int r = luaL_loadbufferx(L, f->data, f->len, chunkname, "t");
        if (r == LUA_ERRMEM) {
            rc = oom(err, errlen);
        } else if (r != 0) {
            const char *msg = lua_tostring(L, -1);
            rc = set_err(err, errlen, TINE_EINVAL, "%s", msg ? msg : "syntax error");
        }
        lua_settop(L, 0);
    }
    free(chunkname);
    if (L)
        lua_close(L);
    return rc;
}

/* Refuses a Lua handler whose module certainly does not export the function
 * it names, or a Python handler whose module certainly does not define it at
 * top level, at the handler's place in the manifest. Nothing of the module
 * runs: see lua_exports.c and python_exports.c for what "certainly" means. */
static int check_exports(const file_list_t *l, const char *manifest_path, const reg_manifest_t *m, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < m->functions_len; i++) {
        const reg_function_t *fn = &m->functions[i];
        if (fn->runtime == REG_RUNTIME_EXEC || fn->handler_export == NULL)
            continue;
        const char *why;
        char *norm = normalize_path(fn->handler_file, &why);
        if (norm == NULL)
            return why ? 0 : oom(err, errlen); /* check_handlers reported bad paths */
        const reg_bundle_file_t *f = find_file(l, norm);
        free(norm);
        if (f == NULL)
            continue;
        bool missing = false;
        char exports[256];
        if (fn->runtime == REG_RUNTIME_NODE) {
            /* JavaScript binds names in too many ways to check more than
             * that the module names the export at all. */
            size_t xl = strlen(fn->handler_export);
            if (strcmp(fn->handler_export, "default") != 0 && memmem(f->data, f->len, fn->handler_export, xl) == NULL)
                return set_err(err, errlen, TINE_EINVAL,
                               "%s:%u:%u: functions.%s.handler: %s never mentions '%s' (expected exports.%s = ..., "
                               "module.exports = { %s } or export function %s)",
                               manifest_path, fn->handler_line, fn->handler_col, fn->name, f->path,
                               fn->handler_export, fn->handler_export, fn->handler_export, fn->handler_export);
            continue;
        }
        if (fn->runtime == REG_RUNTIME_PYTHON) {
            reg__python_export_check(f->data, f->len, fn->handler_export, &missing, exports, sizeof(exports));
            if (missing)
                return set_err(err, errlen, TINE_EINVAL,
                               "%s:%u:%u: functions.%s.handler: %s does not define '%s' at top level (%s%s%s)",
                               manifest_path, fn->handler_line, fn->handler_col, fn->name, f->path,
                               fn->handler_export, exports[0] ? "it defines: " : "no top-level def found; expected def ",
                               exports[0] ? exports : fn->handler_export, exports[0] ? "" : "(req, ctx): at column 0");
            continue;
        }
        if (reg__lua_export_check(f->data, f->len, fn->handler_export, &missing, exports, sizeof(exports)) != 0)
            return oom(err, errlen);
        if (missing)
            return set_err(err, errlen, TINE_EINVAL, "%s:%u:%u: functions.%s.handler: %s does not export '%s' (%s%s%s)",
                           manifest_path, fn->handler_line, fn->handler_col, fn->name, f->path, fn->handler_export,
                           exports[0] ? "it exports: "
                                      : "no exports found; a handler module returns a table of "
                                        "functions, e.g. local M = {} function M.",
                           exports[0] ? exports : fn->handler_export, exports[0] ? "" : "(req, ctx) ... end return M");
    }
    return 0;
}

int reg_bundle_read(const void *tgz, size_t len, const reg_bundle_limits_t *limits, reg_bundle_t **out, char *err,
                    size_t errlen)
{
    size_t max_total = limits && limits->max_total ? limits->max_total : BUNDLE_DEFAULT_MAX_TOTAL;
    size_t max_files = limits && limits->max_files ? limits->max_files : BUNDLE_DEFAULT_MAX_FILES;
    file_list_t l = {0};
    reg_manifest_t *m = NULL;
    int rc;

    if (tgz == NULL || len == 0)
        return set_err(err, errlen, TINE_EINVAL, "bundle: empty upload (expected a tar.gz)");
    struct archive *a = archive_read_new();
    if (a == NULL)
        return oom(err, errlen);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, tgz, len) != ARCHIVE_OK) {
        rc = set_err(err, errlen, TINE_EINVAL, "bundle: not a tar.gz archive (%s)", archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    /* Filter 0 is the outermost one; a plain tar has only "none". */
    if (archive_filter_count(a) < 2 || archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
        archive_read_free(a);
        return set_err(err, errlen, TINE_EINVAL, "bundle: not gzip-compressed (a bundle is a tar.gz)");
    }
    rc = read_entries(a, max_total, max_files, &l, err, errlen);
    archive_read_free(a);
    if (rc != 0)
        goto fail;
    if ((rc = check_names(&l, err, errlen)) != 0)
        goto fail;
    reg_bundle_file_t *mf = NULL;
    if ((rc = find_manifest(&l, &mf, err, errlen)) != 0)
        goto fail;
    /* Errors of the parser already name file:line:col; pass them through. */
    if ((rc = reg_manifest_parse(mf->path, mf->data, mf->len, &m, err, errlen)) != 0) {
        m = NULL;
        goto fail;
    }
    if ((rc = check_handlers(&l, m, err, errlen)) != 0)
        goto fail;
    if ((rc = check_lua_syntax(&l, err, errlen)) != 0)
        goto fail;
    if ((rc = check_exports(&l, mf->path, m, err, errlen)) != 0)
        goto fail;

    reg_bundle_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        rc = oom(err, errlen);
        goto fail;
    }
    b->files = l.files;
    b->files_len = l.len;
    b->total_len = l.total;
    b->manifest_path = mf->path;
    b->manifest = m;
    *out = b;
    return 0;

fail:
    if (m)
        reg_manifest_free(m);
    file_list_dispose(&l);
    return rc;
}

/* ---------------------------------------------------------------- packing */

typedef struct {
    char *rel;        /* path inside the bundle */
    char *full;       /* path on disk, or NULL: the data is in memory */
    const char *data; /* with full NULL: the contents (borrowed) */
    size_t len;
} pack_entry_t;

typedef struct {
    pack_entry_t *v;
    size_t len;
    size_t cap;
} pack_list_t;

static void pack_list_dispose(pack_list_t *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->v[i].rel);
        free(l->v[i].full);
    }
    free(l->v);
}

/* a "/" b as a fresh string, or NULL without memory. */
static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

/* Says "out of memory while packing" in err; returns -ENOMEM. */
static int pack_oom(char *err, size_t errlen)
{
    return set_err(err, errlen, -ENOMEM, "out of memory while packing");
}

/* Collects regular files below full (bundle path rel, "" at the top). */
static int walk_dir(const char *full, const char *rel, pack_list_t *l, char *err, size_t errlen)
{
    DIR *d = opendir(full);
    if (d == NULL)
        return set_err(err, errlen, -errno, "%s: %s", full, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        /* Hidden names, and the app's tests (tine test runs them here; a
         * node never needs them). */
        if (de->d_name[0] == '.' || (rel[0] == '\0' && strcmp(de->d_name, "tests") == 0))
            continue;
        char *cfull = join(full, de->d_name);
        char *crel = rel[0] ? join(rel, de->d_name) : strdup(de->d_name);
        if (cfull == NULL || crel == NULL) {
            free(cfull);
            free(crel);
            rc = pack_oom(err, errlen);
            break;
        }
        struct stat st;
        if (lstat(cfull, &st) != 0) {
            rc = set_err(err, errlen, -errno, "%s: %s", cfull, strerror(errno));
        } else if (S_ISLNK(st.st_mode)) {
            rc = set_err(err, errlen, TINE_EINVAL, "%s: is a symlink (bundles hold regular files only)", cfull);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(cfull, crel, l, err, errlen);
        } else if (!S_ISREG(st.st_mode)) {
            rc = set_err(err, errlen, TINE_EINVAL, "%s: not a regular file", cfull);
        } else {
            if (l->len == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 32;
                pack_entry_t *grown = realloc(l->v, cap * sizeof(*grown));
                if (grown == NULL) {
                    rc = pack_oom(err, errlen);
                } else {
                    l->v = grown;
                    l->cap = cap;
                }
            }
            if (rc == 0) {
                l->v[l->len].rel = crel;
                l->v[l->len].full = cfull;
                l->len++;
                continue;
            }
        }
        free(cfull);
        free(crel);
    }
    if (rc == 0 && errno != 0 && de == NULL)
        rc = set_err(err, errlen, -errno, "%s: %s", full, strerror(errno));
    closedir(d);
    return rc;
}

/* qsort order of the entries to pack: by path in the bundle. */
static int pack_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const pack_entry_t *)a)->rel, ((const pack_entry_t *)b)->rel);
}

/* Reads a regular file without following a symlink swapped in since the
 * walk. */
static int read_regular(const char *path, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *data = malloc(cap);
    if (data == NULL) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            char *grown = realloc(data, cap * 2);
            if (grown == NULL) {
                free(data);
                close(fd);
                return -ENOMEM;
            }
            data = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(data);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *out = data;
    *out_len = len;
    return 0;
}

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} mem_sink_t;

/* libarchive's write callback into memory: appends the n bytes (doubling,
 * from 16 KiB). Returns n, or -1 (libarchive's convention) with ENOMEM set on
 * the archive. */
static la_ssize_t sink_write(struct archive *a, void *client, const void *buf, size_t n)
{
    mem_sink_t *s = client;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n)
            cap *= 2;
        char *grown = realloc(s->data, cap);
        if (grown == NULL) {
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, n);
    s->len += n;
    return (la_ssize_t)n;
}

/* Writes the sorted entries as a deterministic tar.gz, the canonical form
 * of an artifact: no timestamps (in the tar headers nor in the gzip
 * header), owner 0, every mode 0644 (a version stores no modes, so an
 * export must give the same bytes as the pack it came from). `what` names
 * the source in messages. */
static int write_tgz(const char *what, const pack_list_t *l, mem_sink_t *sink, char *err, size_t errlen)
{
    struct archive *a = archive_write_new();
    if (a == NULL)
        return pack_oom(err, errlen);
    int rc = 0;
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, sink, NULL, sink_write, NULL) != ARCHIVE_OK) {
        rc = set_err(err, errlen, TINE_EINVAL, "%s: cannot write bundle: %s", what, archive_error_string(a));
        archive_write_free(a);
        return rc;
    }
    for (size_t i = 0; i < l->len && rc == 0; i++) {
        char *data = NULL;
        size_t len = l->v[i].len;
        int r = l->v[i].full ? read_regular(l->v[i].full, &data, &len) : 0;
        if (r != 0) {
            rc = r == -ENOMEM ? pack_oom(err, errlen)
                              : set_err(err, errlen, r, "%s: %s", l->v[i].full, strerror(-r));
            break;
        }
        struct archive_entry *e = archive_entry_new();
        if (e == NULL) {
            free(data);
            rc = pack_oom(err, errlen);
            break;
        }
        archive_entry_set_pathname(e, l->v[i].rel);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (archive_write_header(a, e) < ARCHIVE_WARN ||
            (len > 0 && archive_write_data(a, data ? data : l->v[i].data, len) != (la_ssize_t)len))
            rc = set_err(err, errlen, TINE_EINVAL, "%s: cannot write bundle: %s",
                         l->v[i].full ? l->v[i].full : l->v[i].rel, archive_error_string(a));
        archive_entry_free(e);
        free(data);
    }
    if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
        rc = set_err(err, errlen, TINE_EINVAL, "%s: cannot write bundle: %s", what, archive_error_string(a));
    archive_write_free(a);
    return rc;
}

int reg_bundle_pack_dir(const char *dir, void **out, size_t *out_len, char *err, size_t errlen)
{
    const char *present[MANIFEST_NAMES];
    size_t npresent = 0;
    for (size_t i = 0; i < MANIFEST_NAMES; i++) {
        char *p = join(dir, manifest_names[i]);
        if (p == NULL)
            return pack_oom(err, errlen);
        struct stat st;
        if (lstat(p, &st) == 0)
            present[npresent++] = manifest_names[i];
        free(p);
    }
    if (npresent == 0)
        return set_err(err, errlen, TINE_EINVAL, "%s: no tine.yaml, tine.yml or tine.json", dir);
    if (npresent > 1)
        return set_err(err, errlen, TINE_EINVAL, "%s: more than one manifest: %s and %s", dir, present[0],
                       present[1]);

    pack_list_t l = {0};
    int rc = walk_dir(dir, "", &l, err, errlen);
    if (rc == 0) {
        qsort(l.v, l.len, sizeof(*l.v), pack_entry_cmp);
        mem_sink_t sink = {0};
        rc = write_tgz(dir, &l, &sink, err, errlen);
        if (rc == 0) {
            *out = sink.data;
            *out_len = sink.len;
        } else {
            free(sink.data);
        }
    }
    pack_list_dispose(&l);
    return rc;
}

int reg_bundle_pack(const reg_bundle_t *b, void **out, size_t *out_len, char *err, size_t errlen)
{
    pack_list_t l = {0};
    l.v = calloc(b->files_len ? b->files_len : 1, sizeof(*l.v));
    if (l.v == NULL)
        return pack_oom(err, errlen);
    /* b->files is sorted by path already (reg_bundle_read, the store). */
    for (size_t i = 0; i < b->files_len; i++)
        l.v[i] = (pack_entry_t){.rel = b->files[i].path, .data = b->files[i].data, .len = b->files[i].len};
    l.len = b->files_len;
    mem_sink_t sink = {0};
    int rc = write_tgz(b->manifest ? b->manifest->app : "bundle", &l, &sink, err, errlen);
    free(l.v); /* the strings are the bundle's */
    if (rc != 0) {
        free(sink.data);
        return rc;
    }
    *out = sink.data;
    *out_len = sink.len;
    return 0;
}

int reg_bundle_digest(const reg_bundle_t *b, char out[65], char *err, size_t errlen)
{
    void *tgz = NULL;
    size_t len = 0;
    int rc = reg_bundle_pack(b, &tgz, &len, err, errlen);
    if (rc == 0)
        reg_sha256_hex(tgz, len, out);
    free(tgz);
    return rc;
}
