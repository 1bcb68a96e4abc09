/* Unit tests for registry/bundle/bundle.c: packing app directories, reading bundles,
 * and the exact messages for every hostile or broken bundle. */
/* nftw() is an XSI interface. */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bundle.h"
#include "tine_common.h"

static const char MANIFEST[] = "app: shop\n"
                               "functions:\n"
                               "  get_item: { handler: src/items.lua#get }\n"
                               "routes:\n"
                               "  - { method: GET, path: /items/:id, function: get_item }\n";

static const char ITEMS_LUA[] = "local M = {}\n"
                                "function M.get(req, ctx)\n"
                                "  return { status = 200, body = req.params.id }\n"
                                "end\n"
                                "return M\n";

/* ------------------------------------------------------------ temp dirs */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char *dir = xstrdup("/tmp/tine-test-bundle-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Writes dir/rel, creating parent directories. */
static void write_file(const char *dir, const char *rel, const char *data, size_t len, mode_t mode)
{
    char *path = xasprintf("%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", path, strerror(errno));
            *p = '/';
        }
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    free(path);
}

static void write_str(const char *dir, const char *rel, const char *s)
{
    write_file(dir, rel, s, strlen(s), 0644);
}

/* An app directory with a manifest, a handler and a few extras. */
static char *make_app_dir(void)
{
    char *dir = make_tmpdir();
    write_str(dir, "tine.yaml", MANIFEST);
    write_str(dir, "src/items.lua", ITEMS_LUA);
    write_str(dir, "src/lib/util.lua", "return { answer = 42 }\n");
    write_file(dir, "scripts/cleanup.sh", "#!/bin/sh\necho hi\n", 18, 0755);
    write_str(dir, "static/index.html", "<h1>shop</h1>\n");
    write_str(dir, ".git/config", "[core]\n");
    write_str(dir, ".env", "SECRET=1\n");
    write_str(dir, "src/.swp", "junk");
    return dir;
}

/* --------------------------------------------------- hand-made tar.gz */

typedef enum { E_FILE, E_DIR, E_SYMLINK, E_HARDLINK, E_CHR, E_FIFO } etype_t;

typedef struct {
    etype_t type;
    const char *path;
    const char *data; /* file contents; link target for links */
    size_t len;       /* 0 = strlen(data) */
} tentry_t;

typedef struct {
    char *data;
    size_t len;
} blob_t;

/* Builds a tar archive in memory by hand, so a test can write what no
 * well-behaved packer would. gzip selects the filter. */
static blob_t make_tar(const tentry_t *entries, size_t n, int gzip)
{
    size_t cap = 1 << 20;
    for (size_t i = 0; i < n; i++)
        cap += (entries[i].len ? entries[i].len : (entries[i].data ? strlen(entries[i].data) : 0)) + 4096;
    blob_t b = {xmalloc(cap), 0};
    struct archive *a = archive_write_new();
    if (gzip)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, b.data, cap, &b.len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        const tentry_t *t = &entries[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->path);
        archive_entry_set_perm(e, 0644);
        size_t len = t->len ? t->len : (t->data ? strlen(t->data) : 0);
        switch (t->type) {
        case E_FILE:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        case E_DIR:
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case E_SYMLINK:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, t->data);
            break;
        case E_HARDLINK:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, t->data);
            archive_entry_set_size(e, 0);
            break;
        case E_CHR:
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, makedev(1, 3));
            break;
        case E_FIFO:
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        }
        int r = archive_write_header(a, e);
        if (r < ARCHIVE_WARN)
            fail_msg("write_header %s: %s", t->path, archive_error_string(a));
        if (t->type == E_FILE && len > 0)
            assert_int_equal(archive_write_data(a, t->data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

/* A gzip'd tar of the given entries (tentry_t initializers). */
#define TGZ(...)                                                                                            \
    make_tar((const tentry_t[]){__VA_ARGS__}, sizeof((const tentry_t[]){__VA_ARGS__}) / sizeof(tentry_t), 1)

#define F(p, d) {E_FILE, (p), (d), 0}
#define OK_MANIFEST F("tine.yaml", MANIFEST)
#define OK_HANDLER F("src/items.lua", ITEMS_LUA)

/* Reads a bundle that must be rejected with rc and exactly `want`; checks
 * *out was not touched. */
static void expect_reject(blob_t b, const reg_bundle_limits_t *limits, int want_rc, const char *want)
{
    reg_bundle_t sentinel;
    reg_bundle_t *out = &sentinel;
    char err[512] = "";
    int rc = reg_bundle_read(b.data, b.len, limits, &out, err, sizeof(err));
    if (rc != want_rc)
        fail_msg("rc %d (%s), want %d; message: %s", rc, tine_strerror(rc), want_rc, err);
    assert_ptr_equal(out, &sentinel);
    assert_string_equal(err, want);
    free(b.data);
}

static reg_bundle_t *expect_accept(blob_t b, const reg_bundle_limits_t *limits)
{
    reg_bundle_t *out = NULL;
    char err[512] = "";
    int rc = reg_bundle_read(b.data, b.len, limits, &out, err, sizeof(err));
    free(b.data);
    if (rc != 0)
        fail_msg("rc %d: %s", rc, err);
    assert_non_null(out);
    return out;
}

static const reg_bundle_file_t *file_named(const reg_bundle_t *b, const char *path)
{
    for (size_t i = 0; i < b->files_len; i++)
        if (strcmp(b->files[i].path, path) == 0)
            return &b->files[i];
    return NULL;
}

/* ------------------------------------------------------------------ tests */

static void test_sha256_hex(void **state)
{
    (void)state;
    char hex[65];
    reg_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    reg_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_pack_and_read(void **state)
{
    (void)state;
    char *dir = make_app_dir();
    void *tgz = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = reg_bundle_pack_dir(dir, &tgz, &len, err, sizeof(err));
    if (rc != 0)
        fail_msg("pack: %s", err);
    assert_true(len > 20);
    assert_int_equal(((unsigned char *)tgz)[0], 0x1f); /* gzip magic */
    assert_int_equal(((unsigned char *)tgz)[1], 0x8b);

    reg_bundle_t *b = NULL;
    rc = reg_bundle_read(tgz, len, NULL, &b, err, sizeof(err));
    if (rc != 0)
        fail_msg("read: %s", err);
    /* Hidden names are skipped at every depth; files come sorted. */
    const char *want[] = {"scripts/cleanup.sh", "src/items.lua", "src/lib/util.lua", "static/index.html",
                          "tine.yaml"};
    assert_int_equal(b->files_len, 5);
    size_t total = 0;
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(b->files[i].path, want[i]);
        char hex[65];
        reg_sha256_hex(b->files[i].data, b->files[i].len, hex);
        assert_string_equal(b->files[i].sha256, hex);
        assert_int_equal(b->files[i].data[b->files[i].len], '\0');
        total += b->files[i].len;
    }
    assert_int_equal(b->total_len, total);
    const reg_bundle_file_t *items = file_named(b, "src/items.lua");
    assert_int_equal(items->len, strlen(ITEMS_LUA));
    assert_memory_equal(items->data, ITEMS_LUA, items->len);
    assert_string_equal(b->manifest_path, "tine.yaml");
    assert_ptr_equal(b->manifest_path, file_named(b, "tine.yaml")->path);
    assert_non_null(b->manifest);
    assert_string_equal(b->manifest->app, "shop");
    assert_int_equal(b->manifest->functions_len, 1);
    reg_bundle_free(b);
    reg_bundle_free(NULL);

    /* Modes are normalized to 0644: a version stores no modes, and an
     * export must give the bytes of the pack. */
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, tgz, len), ARCHIVE_OK);
    struct archive_entry *e;
    size_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(e);
        assert_int_equal(archive_entry_perm(e), 0644);
        assert_int_equal(archive_entry_mtime(e), 0);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_string_equal(p, want[n]);
        n++;
    }
    assert_int_equal(n, 5);
    archive_read_free(a);
    free(tgz);
    rm_rf(dir);
    free(dir);
}

/* The canonical pack of a bundle read back is the pack of the directory,
 * byte for byte, and the digest is its SHA-256; a bundle packed by another
 * tool (other modes, times, order) has the same digest. */
static void test_pack_round_trip_digest(void **state)
{
    (void)state;
    char *dir = make_app_dir();
    void *tgz = NULL, *again = NULL;
    size_t len = 0, alen = 0;
    char err[512] = "";
    assert_int_equal(reg_bundle_pack_dir(dir, &tgz, &len, err, sizeof(err)), 0);
    reg_bundle_t *b = NULL;
    if (reg_bundle_read(tgz, len, NULL, &b, err, sizeof(err)) != 0)
        fail_msg("read: %s", err);
    assert_int_equal(reg_bundle_pack(b, &again, &alen, err, sizeof(err)), 0);
    assert_int_equal(alen, len);
    assert_memory_equal(again, tgz, len);
    char digest[65], want[65];
    assert_int_equal(reg_bundle_digest(b, digest, err, sizeof(err)), 0);
    reg_sha256_hex(tgz, len, want);
    assert_string_equal(digest, want);
    reg_bundle_free(b);

    /* The same files written by hand in another order, with modes and times. */
    if (reg_bundle_read(tgz, len, NULL, &b, err, sizeof(err)) != 0)
        fail_msg("read: %s", err);
    tentry_t entries[16];
    char *paths[16];
    size_t n = 0;
    entries[n++] = (tentry_t){E_DIR, "./src/", NULL, 0};
    for (size_t i = b->files_len; i-- > 0 && n < 16;) {
        paths[n] = xasprintf("./%s", b->files[i].path);
        entries[n] = (tentry_t){E_FILE, paths[n], b->files[i].data, b->files[i].len};
        n++;
    }
    blob_t other = make_tar(entries, n, 1);
    for (size_t i = 1; i < n; i++)
        free(paths[i]);
    reg_bundle_free(b);
    assert_false(other.len == len && memcmp(other.data, tgz, len) == 0);
    if (reg_bundle_read(other.data, other.len, NULL, &b, err, sizeof(err)) != 0)
        fail_msg("read other: %s", err);
    assert_int_equal(reg_bundle_digest(b, digest, err, sizeof(err)), 0);
    assert_string_equal(digest, want);
    reg_bundle_free(b);
    free(other.data);
    free(again);
    free(tgz);
    rm_rf(dir);
    free(dir);
}

static void test_pack_is_deterministic(void **state)
{
    (void)state;
    char *dir = make_app_dir();
    void *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    char err[512] = "";
    assert_int_equal(reg_bundle_pack_dir(dir, &a, &alen, err, sizeof(err)), 0);
    /* Other times and another directory holding the same files. */
    char *path = xasprintf("%s/src/items.lua", dir);
    struct timespec ts[2] = {{12345, 0}, {12345, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    free(path);
    sleep(1);
    assert_int_equal(reg_bundle_pack_dir(dir, &b, &blen, err, sizeof(err)), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    free(b);

    char *dir2 = make_tmpdir();
    /* Written in another order, with another umask-like mode. */
    write_str(dir2, "static/index.html", "<h1>shop</h1>\n");
    write_file(dir2, "scripts/cleanup.sh", "#!/bin/sh\necho hi\n", 18, 0700);
    write_str(dir2, "src/lib/util.lua", "return { answer = 42 }\n");
    write_file(dir2, "src/items.lua", ITEMS_LUA, strlen(ITEMS_LUA), 0600);
    write_str(dir2, "tine.yaml", MANIFEST);
    assert_int_equal(reg_bundle_pack_dir(dir2, &b, &blen, err, sizeof(err)), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    free(a);
    free(b);
    rm_rf(dir);
    rm_rf(dir2);
    free(dir);
    free(dir2);
}

static void test_pack_errors(void **state)
{
    (void)state;
    char err[512] = "";
    void *out = (void *)&err;
    size_t out_len = 77;

    char *dir = make_tmpdir();
    write_str(dir, "src/items.lua", ITEMS_LUA);
    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), TINE_EINVAL);
    char *want = xasprintf("%s: no tine.yaml, tine.yml or tine.json", dir);
    assert_string_equal(err, want);
    free(want);

    /* A manifest in a subdirectory does not count. */
    write_str(dir, "sub/tine.yaml", MANIFEST);
    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), TINE_EINVAL);

    write_str(dir, "tine.yaml", MANIFEST);
    write_str(dir, "tine.json", "{}");
    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), TINE_EINVAL);
    want = xasprintf("%s: more than one manifest: tine.yaml and tine.json", dir);
    assert_string_equal(err, want);
    free(want);
    char *p = xasprintf("%s/tine.json", dir);
    unlink(p);
    free(p);

    p = xasprintf("%s/src/link.lua", dir);
    assert_int_equal(symlink("items.lua", p), 0);
    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), TINE_EINVAL);
    want = xasprintf("%s/src/link.lua: is a symlink (bundles hold regular files only)", dir);
    assert_string_equal(err, want);
    free(want);
    unlink(p);
    free(p);

    /* A hidden symlink is skipped like any hidden name. */
    p = xasprintf("%s/.current", dir);
    assert_int_equal(symlink("/etc", p), 0);
    free(p);
    p = xasprintf("%s/src/pipe", dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), TINE_EINVAL);
    want = xasprintf("%s/src/pipe: not a regular file", dir);
    assert_string_equal(err, want);
    free(want);
    unlink(p);
    free(p);

    assert_int_equal(reg_bundle_pack_dir("/nonexistent/tine-app", &out, &out_len, err, sizeof(err)), TINE_EINVAL);
    assert_string_equal(err, "/nonexistent/tine-app: no tine.yaml, tine.yml or tine.json");
    /* Failures leave the outputs alone. */
    assert_ptr_equal(out, (void *)&err);
    assert_int_equal(out_len, 77);

    assert_int_equal(reg_bundle_pack_dir(dir, &out, &out_len, err, sizeof(err)), 0);
    free(out);
    rm_rf(dir);
    free(dir);
}

static void test_read_normalizes_and_skips_dirs(void **state)
{
    (void)state;
    reg_bundle_t *b = expect_accept(TGZ({E_DIR, "./", NULL, 0}, F("./tine.yaml", MANIFEST), {E_DIR, "./src/", NULL, 0},
                                        F("./src/items.lua", ITEMS_LUA), F("src//./notes.txt", "not lua (at all"),
                                        F("empty.lua", "")),
                                    NULL);
    assert_int_equal(b->files_len, 4);
    assert_string_equal(b->files[0].path, "empty.lua");
    assert_string_equal(b->files[1].path, "src/items.lua");
    assert_string_equal(b->files[2].path, "src/notes.txt");
    assert_string_equal(b->files[3].path, "tine.yaml");
    assert_int_equal(b->files[0].len, 0);
    assert_string_equal(b->files[0].sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(b->manifest_path, "tine.yaml");
    reg_bundle_free(b);

    /* Zero limits mean the defaults. */
    reg_bundle_limits_t zero = {0, 0};
    b = expect_accept(TGZ(OK_MANIFEST, OK_HANDLER), &zero);
    reg_bundle_free(b);
}

static void test_read_rejects_escapes_and_links(void **state)
{
    (void)state;
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("x/../../etc", "owned")), NULL, TINE_EINVAL,
                  "bundle: entry 'x/../../etc': path escapes the bundle");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("../up.lua", "return 1")), NULL, TINE_EINVAL,
                  "bundle: entry '../up.lua': path escapes the bundle");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("a/..", "x")), NULL, TINE_EINVAL,
                  "bundle: entry 'a/..': path escapes the bundle");
    expect_reject(TGZ(F("/etc/passwd", "root"), OK_MANIFEST, OK_HANDLER), NULL, TINE_EINVAL,
                  "bundle: entry '/etc/passwd': absolute paths are not allowed");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_SYMLINK, "src/evil.lua", "/etc/passwd", 0}), NULL, TINE_EINVAL,
                  "bundle: entry 'src/evil.lua': symlinks are not allowed");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_HARDLINK, "src/copy.lua", "src/items.lua", 0}), NULL,
                  TINE_EINVAL, "bundle: entry 'src/copy.lua': hard links are not allowed");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_CHR, "dev/null", NULL, 0}), NULL, TINE_EINVAL,
                  "bundle: entry 'dev/null': only regular files and directories are allowed (this is a "
                  "character device)");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_FIFO, "pipe", NULL, 0}), NULL, TINE_EINVAL,
                  "bundle: entry 'pipe': only regular files and directories are allowed (this is a fifo)");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("bad\nname", "x")), NULL, TINE_EINVAL,
                  "bundle: entry 'bad?name': control characters are not allowed in paths");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("./.", "x")), NULL, TINE_EINVAL,
                  "bundle: entry './.': a file needs a name");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("", "x")), NULL, TINE_EINVAL, "bundle: entry '': a file needs a name");
    /* A regular file named like a directory is read as one, and its data as
     * the next header: the archive is corrupt. */
    reg_bundle_t *out = NULL;
    char err[512] = "";
    blob_t b = TGZ(OK_MANIFEST, OK_HANDLER, F("./", "x"));
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    assert_null(out);
    assert_true(strncmp(err, "bundle: corrupt archive: ", 25) == 0);
    free(b.data);
}

static void test_read_rejects_duplicates(void **state)
{
    (void)state;
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("a.lua", "return 1"), F("./a.lua", "return 2")), NULL, TINE_EINVAL,
                  "bundle: entry 'a.lua': duplicate path");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("lib", "x"), F("lib.lua", "return 1"), F("lib/x.lua", "return 1")),
                  NULL, TINE_EINVAL, "bundle: entry 'lib/x.lua': 'lib' is both a file and a directory");
}

static void test_read_limits(void **state)
{
    (void)state;
    char big[101];
    memset(big, 'x', sizeof(big));
    reg_bundle_limits_t lim = {sizeof(MANIFEST) - 1 + sizeof(ITEMS_LUA) - 1 + 100, 0};
    /* Exactly at the limit is fine. */
    reg_bundle_t *b = expect_accept(TGZ(OK_MANIFEST, OK_HANDLER, {E_FILE, "big.bin", big, 100}), &lim);
    assert_int_equal(b->total_len, lim.max_total);
    reg_bundle_free(b);
    char *want = xasprintf("bundle: entry 'big.bin': the files add up to more than %zu bytes uncompressed",
                           lim.max_total);
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_FILE, "big.bin", big, 101}), &lim, TINE_ETOOBIG, want);
    free(want);

    reg_bundle_limits_t few = {0, 3};
    b = expect_accept(TGZ(OK_MANIFEST, OK_HANDLER, F("c.txt", "c")), &few);
    reg_bundle_free(b);
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("c.txt", "c"), F("d.txt", "d")), &few, TINE_ETOOBIG,
                  "bundle: more than 3 files");
    expect_reject(TGZ({E_DIR, "a/", NULL, 0}, {E_DIR, "b/", NULL, 0}, {E_DIR, "c/", NULL, 0}, {E_DIR, "d/", NULL, 0},
                      OK_MANIFEST, OK_HANDLER),
                  &few, TINE_ETOOBIG, "bundle: more than 3 directories");

    /* The default total limit: 64 MiB. A bundle of zeros compresses well. */
    size_t n = ((size_t)64 << 20) + 1;
    char *zeros = calloc(1, n);
    assert_non_null(zeros);
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_FILE, "zeros.bin", zeros, n}), NULL, TINE_ETOOBIG,
                  "bundle: entry 'zeros.bin': the files add up to more than 67108864 bytes uncompressed");
    free(zeros);
}

static void test_read_rejects_non_tgz(void **state)
{
    (void)state;
    const tentry_t plain[] = {OK_MANIFEST, OK_HANDLER};
    expect_reject(make_tar(plain, 2, 0), NULL, TINE_EINVAL, "bundle: not gzip-compressed (a bundle is a tar.gz)");

    reg_bundle_t *out = NULL;
    char err[512] = "";
    assert_int_equal(reg_bundle_read("", 0, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    assert_string_equal(err, "bundle: empty upload (expected a tar.gz)");
    const char junk[] = "this is not an archive, just some words that go on for a while.......";
    assert_int_equal(reg_bundle_read(junk, sizeof(junk), NULL, &out, err, sizeof(err)), TINE_EINVAL);
    assert_true(strncmp(err, "bundle: not a tar.gz archive (", 30) == 0);

    /* gzip around something that is not a tar. */
    char buf[4096];
    size_t used = 0;
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    assert_int_equal(archive_write_open_memory(a, buf, sizeof(buf), &used), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "x");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_write_header(a, e);
    archive_write_data(a, junk, sizeof(junk));
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    int rc = reg_bundle_read(buf, used, NULL, &out, err, sizeof(err));
    assert_int_equal(rc, TINE_EINVAL);
    assert_true(strncmp(err, "bundle: ", 8) == 0);
    assert_null(out);

    /* A truncated bundle. */
    blob_t b = TGZ(OK_MANIFEST, OK_HANDLER);
    rc = reg_bundle_read(b.data, b.len / 2, NULL, &out, err, sizeof(err));
    assert_int_equal(rc, TINE_EINVAL);
    assert_true(strncmp(err, "bundle: ", 8) == 0);
    assert_null(out);
    free(b.data);
}

static void test_read_manifest_rules(void **state)
{
    (void)state;
    expect_reject(TGZ(OK_HANDLER), NULL, TINE_EINVAL, "bundle: no tine.yaml, tine.yml or tine.json at the root");
    expect_reject(TGZ(OK_HANDLER, F("app/tine.yaml", MANIFEST)), NULL, TINE_EINVAL,
                  "bundle: no tine.yaml, tine.yml or tine.json at the root");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("tine.json", "{}")), NULL, TINE_EINVAL,
                  "bundle: more than one manifest at the root: tine.yaml and tine.json");
    expect_reject(TGZ(OK_MANIFEST, F("src/other.lua", "return {}")), NULL, TINE_EINVAL,
                  "bundle: functions.get_item.handler: file 'src/items.lua' is not in the bundle");

    /* tine.yml and tine.json are manifests too. */
    reg_bundle_t *b = expect_accept(TGZ(F("tine.yml", MANIFEST), OK_HANDLER), NULL);
    assert_string_equal(b->manifest_path, "tine.yml");
    reg_bundle_free(b);
    b = expect_accept(TGZ(F("tine.json", "{\"app\": \"shop\", \"functions\": {\"get_item\": "
                                         "{\"handler\": \"src/items.lua#get\"}}}"),
                          OK_HANDLER),
                      NULL);
    assert_string_equal(b->manifest_path, "tine.json");
    assert_string_equal(b->manifest->app, "shop");
    reg_bundle_free(b);

    /* Parser errors come through verbatim: they name the manifest file. */
    reg_bundle_t *out = NULL;
    char err[512] = "";
    blob_t bad = TGZ(F("tine.yaml", "app: shop\nfunctions:\n  f: { handler: a.lua#f, bogus: 1 }\n"),
                     F("a.lua", "return {}"));
    int rc = reg_bundle_read(bad.data, bad.len, NULL, &out, err, sizeof(err));
    free(bad.data);
    assert_int_equal(rc, TINE_EINVAL);
    assert_null(out);
    if (strncmp(err, "tine.yaml:3:", 12) != 0)
        fail_msg("manifest error not passed through: %s", err);
}

static void test_read_lua_checks(void **state)
{
    (void)state;
    expect_reject(TGZ(OK_MANIFEST, F("src/items.lua", "local M = {}\nfunction M.get(req, ctx)\n  x\nend\nreturn M\n")),
                  NULL, TINE_EINVAL, "src/items.lua:4: '=' expected near 'end'");
    /* Every .lua file is compiled, handler or not. */
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, F("src/lib/broken.lua", "return {\n")), NULL, TINE_EINVAL,
                  "src/lib/broken.lua:2: unexpected symbol near '<eof>'");
    expect_reject(TGZ(OK_MANIFEST, {E_FILE, "src/items.lua", "\x1bLJ\x02\x0a\x00\x01", 7}), NULL, TINE_EINVAL,
                  "src/items.lua: precompiled chunks are not accepted");
    expect_reject(TGZ(OK_MANIFEST, OK_HANDLER, {E_FILE, "src/x.lua", "\x1bLua\x51\x00", 6}), NULL, TINE_EINVAL,
                  "src/x.lua: precompiled chunks are not accepted");
    /* Nothing runs at deploy: a handler that would loop forever or call
     * os.exit is only compiled. */
    reg_bundle_t *b = expect_accept(
        TGZ(OK_MANIFEST, OK_HANDLER, F("src/loop.lua", "while true do end"), F("src/exit.lua", "os.exit(3)")),
        NULL);
    reg_bundle_free(b);
    /* Non-Lua files are not compiled. */
    b = expect_accept(TGZ(OK_MANIFEST, OK_HANDLER, F("README.md", "# this ( is not lua"),
                          {E_FILE, "data.bin", "\x1bLJ", 3}),
                      NULL);
    reg_bundle_free(b);
}

/* A manifest naming export `statz` of src/stats.lua (the handler value is at
 * line 3, column 21). */
static const char STATS_MANIFEST[] = "app: stats\n"
                                     "functions:\n"
                                     "  stats: { handler: src/stats.lua#statz }\n";

/* Reads a stats bundle whose module is `lua`: 0 when accepted, else the
 * message. */
static const char *stats_module(const char *lua, char *err, size_t errlen)
{
    blob_t b = TGZ(F("tine.yaml", STATS_MANIFEST), F("src/stats.lua", lua));
    reg_bundle_t *out = NULL;
    err[0] = '\0';
    int rc = reg_bundle_read(b.data, b.len, NULL, &out, err, errlen);
    free(b.data);
    reg_bundle_free(out);
    return rc == 0 ? NULL : err;
}

static void expect_export_refused(const char *lua, const char *want)
{
    char err[512];
    const char *msg = stats_module(lua, err, sizeof(err));
    if (msg == NULL)
        fail_msg("accepted a module without the export:\n%s", lua);
    assert_string_equal(msg, want);
}

static void expect_export_accepted(const char *lua)
{
    char err[512];
    const char *msg = stats_module(lua, err, sizeof(err));
    if (msg != NULL)
        fail_msg("refused a module that may export statz: %s\n%s", msg, lua);
}

static void test_read_export_check(void **state)
{
    (void)state;
    /* Certainly missing: refused at the handler's place in the manifest,
     * with what the module does export. */
    expect_export_refused("local M = {}\nfunction M.stats(req, ctx) return 'x' end\nfunction M.top() end\nreturn M\n",
                          "tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (it "
                          "exports: stats, top)");
    expect_export_refused("local tine = require \"tine\"\nlocal M = {}\nM.stats = function() end\n"
                          "M[\"top\"] = function() end\n-- statz is gone\nreturn M\n",
                          "tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (it "
                          "exports: stats, top)");
    expect_export_refused("local function stats() end\nreturn { stats = stats, ['x'] = 1, n = 2 }\n",
                          "tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (it "
                          "exports: stats, n)");
    expect_export_refused("local statzz = 1\n--[==[ statz ]==]\nreturn {}\n",
                          "tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (no "
                          "exports found; a handler module returns a table of functions, e.g. local M = {} "
                          "function M.statz(req, ctx) ... end return M)");
    expect_export_refused("#!/usr/bin/env luajit\nlocal tine = require('tine')\nreturn { get = function() "
                          "return tine.json.decode('[1]') end, t = {[1] = 2} }\n",
                          "tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (it "
                          "exports: get, t)");

    /* Every way a module can export statz is accepted. */
    expect_export_accepted("local M = {}\nfunction M.statz(req, ctx) return 'x' end\nreturn M\n");
    expect_export_accepted("local M = {}\nfunction M:statz() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM.statz = function() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM . --[[ spaced ]] statz = function() end\nreturn M\n");
    expect_export_accepted("local function statz() end\nreturn { statz = statz }\n");
    expect_export_accepted("local a = function() end\nreturn { [\"statz\"] = a }\n");
    expect_export_accepted("local M = {}\nM['statz'] = function() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM[\"\\115tatz\"] = function() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM[\"\\x73tatz\"] = function() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM[\"st\\z\n   atz\"] = function() end\nreturn M\n");
    expect_export_accepted("local M = {}\nM[ [[statz]] ] = function() end\nreturn M\n");
    expect_export_accepted("function statz() end\nreturn _G\n");
    /* Keys computed or inherited: accepted (the sandbox reports a missing
     * one when it loads the handler). */
    expect_export_accepted("local M = {}\nlocal k = 'sta' .. 'tz'\nM[k] = function() end\nreturn M\n");
    expect_export_accepted("local M, a = {}, {}\nM[a[1]] = 1\nreturn M\n");
    expect_export_accepted("local k = ('zta' .. 'ts'):reverse()\nreturn { [k] = function() end }\n");
    expect_export_accepted("local M = {}\nrawset(M, 'st' .. 'atz', print)\nreturn M\n");
    expect_export_accepted("return setmetatable({}, { __index = function() return print end })\n");
    expect_export_accepted("return require 'src.impl'\n");
    expect_export_accepted("local impl = require('impl')\nlocal M = {}\nfor k, v in pairs(impl) do M[k] = v "
                           "end\nreturn M\n");
    expect_export_accepted("return loadstring('return {}')()\n");
    expect_export_accepted("local M = {}\nsetfenv(1, M)\nreturn M\n");
    expect_export_accepted("local name = ...\nlocal M = {}\nM[name] = print\nreturn M\n");
    /* A mention in a string counts (it may become a key); in a comment it
     * does not. */
    expect_export_accepted("local M = {}\nlocal spec = '{\"statz\": 1}'\nreturn M\n");

    /* exec functions and handlers in a manifest of JSON are checked alike. */
    blob_t b = TGZ(F("tine.json", "{\"app\": \"stats\",\n \"functions\": {\"s\": {\"handler\": \"s.lua#statz\"}}}"),
                   F("s.lua", "return { stats = print }"));
    reg_bundle_t *out = NULL;
    char err[512];
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    free(b.data);
    assert_string_equal(err, "tine.json:2:33: functions.s.handler: s.lua does not export 'statz' (it exports: stats)");
    out = expect_accept(
        TGZ(F("tine.yaml", "app: x\nfunctions:\n  s: { runtime: exec, handler: run.sh }\n"), F("run.sh", "echo hi")),
        NULL);
    reg_bundle_free(out);

    /* A Python module that certainly does not define the function at top
     * level, and one that does. */
    static const char py_manifest[] = "app: py\nfunctions:\n  h: { runtime: python, handler: src/app.py#handle }\n";
    b = TGZ(F("tine.yaml", py_manifest), F("src/app.py", "def handler(req, ctx):\n    return 1\n"));
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    free(b.data);
    assert_string_equal(err, "tine.yaml:3:34: functions.h.handler: src/app.py does not define 'handle' at top level "
                             "(it defines: handler)");
    b = TGZ(F("tine.yaml", py_manifest), F("src/app.py", "import json\n"));
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    free(b.data);
    assert_string_equal(err, "tine.yaml:3:34: functions.h.handler: src/app.py does not define 'handle' at top level "
                             "(no top-level def found; expected def handle(req, ctx): at column 0)");
    b = TGZ(F("tine.yaml", py_manifest), F("src/other.py", "def handle(req, ctx):\n    return 1\n"));
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    free(b.data);
    assert_string_equal(err, "bundle: functions.h.handler: file 'src/app.py' is not in the bundle");
    out = expect_accept(TGZ(F("tine.yaml", py_manifest), F("src/app.py", "def handle(req, ctx):\n    return 1\n")),
                        NULL);
    reg_bundle_free(out);

    /* A Node module that never names the export; one that does; a default
     * export is not looked for. */
    static const char js_manifest[] = "app: js\nfunctions:\n  h: { runtime: node, handler: src/app.js#handle }\n";
    b = TGZ(F("tine.yaml", js_manifest), F("src/app.js", "exports.run = () => 1;\n"));
    assert_int_equal(reg_bundle_read(b.data, b.len, NULL, &out, err, sizeof(err)), TINE_EINVAL);
    free(b.data);
    assert_string_equal(err, "tine.yaml:3:32: functions.h.handler: src/app.js never mentions 'handle' (expected "
                             "exports.handle = ..., module.exports = { handle } or export function handle)");
    out = expect_accept(TGZ(F("tine.yaml", js_manifest), F("src/app.js", "exports.handle = () => 1;\n")), NULL);
    reg_bundle_free(out);
    out = expect_accept(TGZ(F("tine.yaml", "app: js\nfunctions:\n  h: { runtime: node, handler: m.mjs#default }\n"),
                            F("m.mjs", "export default () => 1;\n")),
                        NULL);
    reg_bundle_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_pack_and_read),
        cmocka_unit_test(test_pack_is_deterministic),
        cmocka_unit_test(test_pack_errors),
        cmocka_unit_test(test_read_normalizes_and_skips_dirs),
        cmocka_unit_test(test_read_rejects_escapes_and_links),
        cmocka_unit_test(test_read_rejects_duplicates),
        cmocka_unit_test(test_read_limits),
        cmocka_unit_test(test_pack_round_trip_digest),
        cmocka_unit_test(test_read_rejects_non_tgz),
        cmocka_unit_test(test_read_manifest_rules),
        cmocka_unit_test(test_read_lua_checks),
        cmocka_unit_test(test_read_export_check),
    };
    return cmocka_run_group_tests_name("registry/bundle/bundle", tests, NULL, NULL);
}
