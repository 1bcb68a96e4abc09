/* The pure parts of the OpenWhisk API (openwhisk_model.c): kinds, names,
 * zip paths and zips written below a directory, parameters, results and
 * activation records in OpenWhisk's shape. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openwhisk.h"
#include "tine_common.h"

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(gw_ow_kind_parse("lua"), GW_OW_KIND_LUA);
    assert_int_equal(gw_ow_kind_parse("python:3"), GW_OW_KIND_PYTHON);
    assert_int_equal(gw_ow_kind_parse("python:3.11"), GW_OW_KIND_PYTHON);
    assert_int_equal(gw_ow_kind_parse("nodejs:20"), GW_OW_KIND_NODE);
    assert_int_equal(gw_ow_kind_parse("nodejs:default"), GW_OW_KIND_NODE);
    assert_int_equal(gw_ow_kind_parse("blackbox"), GW_OW_KIND_BLACKBOX);
    assert_int_equal(gw_ow_kind_parse("native"), GW_OW_KIND_BLACKBOX);
    assert_int_equal(gw_ow_kind_parse("sequence"), GW_OW_KIND_SEQUENCE);
    assert_int_equal(gw_ow_kind_parse("python:2"), GW_OW_KIND_UNKNOWN);
    assert_int_equal(gw_ow_kind_parse("python:3."), GW_OW_KIND_UNKNOWN);
    assert_int_equal(gw_ow_kind_parse("nodejs:"), GW_OW_KIND_UNKNOWN);
    assert_int_equal(gw_ow_kind_parse("java:8"), GW_OW_KIND_UNKNOWN);
    assert_int_equal(gw_ow_kind_parse(""), GW_OW_KIND_UNKNOWN);
    assert_int_equal(gw_ow_kind_parse(NULL), GW_OW_KIND_UNKNOWN);
}

static void test_names(void **state)
{
    (void)state;
    const char *good[] = {"hello", "a", "_x", "hello world", "my-action.v2", "user@example"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(gw_ow_name_valid(good[i], strlen(good[i])));
    const char *bad[] = {"", "-x", " x", "x ", "a/b", "a\nb", "ü", ".hidden", "a\\b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(gw_ow_name_valid(bad[i], strlen(bad[i])));
    char longname[258];
    memset(longname, 'a', 257);
    longname[257] = '\0';
    assert_true(gw_ow_name_valid(longname, 256));
    assert_false(gw_ow_name_valid(longname, 257));
}

static void test_zip_paths(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(gw_ow_zip_path_check("__main__.py", err, sizeof err), 0);
    assert_int_equal(gw_ow_zip_path_check("lib/util/x.py", err, sizeof err), 0);
    assert_int_equal(gw_ow_zip_path_check("lib/", err, sizeof err), 0);
    assert_int_equal(gw_ow_zip_path_check("a..b/c", err, sizeof err), 0);
    struct {
        const char *path, *says;
    } bad[] = {
        {"/etc/passwd", "absolute"},   {"../x", "'..'"},         {"a/../../x", "'..'"}, {"a/./b", "'.'"},
        {"..", "'..'"},                {"a//b", "empty path"},   {"a\\..\\b", "backslash"},
        {"", "empty name"},            {"a\nb", "control"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_not_equal(gw_ow_zip_path_check(bad[i].path, err, sizeof err), 0);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("%s: expected '%s' in: %s", bad[i].path, bad[i].says, err);
    }
}

/* A zip in memory with the given entries (type 'f' file, 'd' dir, 'l' symlink). */
static void *make_zip(const char *const *paths, const char *types, size_t n, size_t *len)
{
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    size_t used = 0;
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, paths[i]);
        const char *data = "print('x')\n";
        if (types[i] == 'd') {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
        } else if (types[i] == 'l') {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, "/etc/passwd");
            archive_entry_set_perm(e, 0777);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)strlen(data));
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (types[i] == 'f')
            archive_write_data(a, data, strlen(data));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    *len = used;
    return buf;
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *ftw)
{
    (void)st, (void)f, (void)ftw;
    return remove(p);
}

static void test_unzip(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tine-ow-unzip-XXXXXX";
    char *root = mkdtemp(tmpl);
    assert_non_null(root);
    char *dir = xasprintf("%s/code", root);
    assert_int_equal(tine_mkdirs(dir, 0755), 0);
    char err[256];
    size_t len;

    const char *good[] = {"pkg/", "pkg/mod.py", "__main__.py"};
    void *zip = make_zip(good, "dff", 3, &len);
    assert_int_equal(gw_ow_unzip(zip, len, dir, 1 << 20, err, sizeof err), 0);
    free(zip);
    char *p = xasprintf("%s/pkg/mod.py", dir);
    assert_int_equal(access(p, R_OK), 0);
    free(p);

    /* A path climbing out: refused, nothing written beside the directory. */
    const char *climb[] = {"ok.py", "../escaped.py"};
    char *d2 = xasprintf("%s/code2", root);
    assert_int_equal(tine_mkdirs(d2, 0755), 0);
    zip = make_zip(climb, "ff", 2, &len);
    assert_int_not_equal(gw_ow_unzip(zip, len, d2, 1 << 20, err, sizeof err), 0);
    assert_non_null(strstr(err, "../escaped.py"));
    free(zip);
    p = xasprintf("%s/escaped.py", root);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);

    /* A symlink: refused. */
    const char *link[] = {"passwd"};
    char *d3 = xasprintf("%s/code3", root);
    assert_int_equal(tine_mkdirs(d3, 0755), 0);
    zip = make_zip(link, "l", 1, &len);
    assert_int_not_equal(gw_ow_unzip(zip, len, d3, 1 << 20, err, sizeof err), 0);
    assert_non_null(strstr(err, "links are not allowed"));
    free(zip);

    /* Over the size limit: TINE_ETOOBIG. */
    const char *one[] = {"big.py"};
    char *d4 = xasprintf("%s/code4", root);
    assert_int_equal(tine_mkdirs(d4, 0755), 0);
    zip = make_zip(one, "f", 1, &len);
    assert_int_equal(gw_ow_unzip(zip, len, d4, 4, err, sizeof err), TINE_ETOOBIG);
    free(zip);

    /* Not a zip at all. */
    assert_int_not_equal(gw_ow_unzip("hello", 5, d4, 1 << 20, err, sizeof err), 0);

    free(dir);
    free(d2);
    free(d3);
    free(d4);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_merge_params(void **state)
{
    (void)state;
    json_t *defaults = json_loads("[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":\"x\"}]", 0, NULL);
    json_t *call = json_loads("{\"b\":\"y\",\"c\":true}", 0, NULL);
    json_t *m = gw_ow_merge_params(defaults, call);
    char *s = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"a\":1,\"b\":\"y\",\"c\":true}");
    free(s);
    json_decref(m);
    m = gw_ow_merge_params(NULL, NULL);
    assert_int_equal(json_object_size(m), 0);
    json_decref(m);
    assert_int_equal(json_integer_value(gw_ow_kv_get(defaults, "a")), 1);
    assert_null(gw_ow_kv_get(defaults, "z"));
    json_decref(defaults);
    json_decref(call);
}

/* gw_ow_response's statusCode and result, compact. */
static void expect_response(json_t *r, int code, const char *result)
{
    assert_int_equal(json_integer_value(json_object_get(r, "statusCode")), code);
    assert_int_equal(json_is_true(json_object_get(r, "success")), code == 0);
    char *s = json_dumps(json_object_get(r, "result"), JSON_SORT_KEYS | JSON_COMPACT);
    if (strcmp(s, result) != 0)
        fail_msg("result %s, expected %s", s, result);
    free(s);
    json_decref(r);
}

static void test_responses(void **state)
{
    (void)state;
    expect_response(gw_ow_response(0, 200, "{\"x\":1}", strlen("{\"x\":1}"), NULL, 1000), 0, "{\"x\":1}");
    expect_response(gw_ow_response(0, 200, "[]", strlen("[]"), NULL, 1000), 0, "{}");
    expect_response(gw_ow_response(0, 200, "{\"error\":\"no\"}", strlen("{\"error\":\"no\"}"), NULL, 1000), 1, "{\"error\":\"no\"}");
    expect_response(gw_ow_response(0, 502, "{\"error\":\"The action did not return a dictionary.\"}", strlen("{\"error\":\"The action did not return a dictionary.\"}"), NULL, 1000), 2,
                    "{\"error\":\"The action did not return a dictionary.\"}");
    expect_response(gw_ow_response(0, 200, "[1]", strlen("[1]"), NULL, 1000), 2,
                    "{\"error\":\"The action did not produce a valid JSON response.\"}");
    expect_response(gw_ow_response(0, 204, "", strlen(""), NULL, 1000), 2,
                    "{\"error\":\"The action did not produce a valid JSON response.\"}");
    expect_response(gw_ow_response(TINE_EHANDLER, 500, NULL, 0, "boom", 1000), 2, "{\"error\":\"boom\"}");
    expect_response(gw_ow_response(TINE_ETIMEOUT, 504, NULL, 0, "timed out", 1500), 2,
                    "{\"error\":\"The action exceeded its time limits of 1500 milliseconds.\"}");
    expect_response(gw_ow_response(TINE_EBUSY, 503, NULL, 0, "no sandbox", 1000), 3, "{\"error\":\"no sandbox\"}");
    json_t *r = gw_ow_response(0, 200, "{}", strlen("{}"), NULL, 1000);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "success");
    json_decref(r);
    r = gw_ow_response(0, 200, "{\"error\":1}", strlen("{\"error\":1}"), NULL, 1000);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "application error");
    json_decref(r);
}

/* The annotation `key` of an activation. */
static json_t *ann(json_t *act, const char *key)
{
    return gw_ow_kv_get(json_object_get(act, "annotations"), key);
}

static void test_activation(void **state)
{
    (void)state;
    json_t *rec = json_loads("{\"id\":\"0123456789abcdef0123456789abcdef\",\"start_ms\":1700000000000,\"version\":7,"
                             "\"duration_us\":12500,\"queued_us\":3000,\"cold\":true,\"cold_start_us\":4200,"
                             "\"memory_mb\":128,\"timeout_ms\":3000,\"status\":200,"
                             "\"logs\":[{\"t\":1700000000001,\"level\":\"info\",\"msg\":\"hi\"},"
                             "{\"t\":1700000000002,\"level\":\"error\",\"msg\":\"oops\"}]}",
                             0, NULL);
    assert_non_null(rec);
    json_t *resp = gw_ow_response(0, 200, "{\"ok\":true}", strlen("{\"ok\":true}"), NULL, 3000);
    gw_ow_act_info_t info = {"team-a", "pkg/hello", "lua", "key1", resp, NULL, NULL};
    json_t *a = gw_ow_activation(rec, &info);
    assert_string_equal(json_string_value(json_object_get(a, "activationId")), "0123456789abcdef0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(a, "namespace")), "team-a");
    assert_string_equal(json_string_value(json_object_get(a, "name")), "pkg/hello");
    assert_string_equal(json_string_value(json_object_get(a, "subject")), "key1");
    assert_string_equal(json_string_value(json_object_get(a, "version")), "0.0.7");
    assert_int_equal(json_integer_value(json_object_get(a, "start")), 1700000000000);
    assert_int_equal(json_integer_value(json_object_get(a, "duration")), 12);
    assert_int_equal(json_integer_value(json_object_get(a, "end")), 1700000000012);
    assert_true(json_is_true(json_object_get(json_object_get(a, "response"), "success")));
    json_t *logs = json_object_get(a, "logs");
    assert_int_equal(json_array_size(logs), 2);
    assert_string_equal(json_string_value(json_array_get(logs, 0)), "2023-11-14T22:13:20.001Z stdout: hi");
    assert_string_equal(json_string_value(json_array_get(logs, 1)), "2023-11-14T22:13:20.002Z stderr: oops");
    assert_int_equal(json_integer_value(ann(a, "waitTime")), 3);
    assert_int_equal(json_integer_value(ann(a, "initTime")), 4);
    assert_string_equal(json_string_value(ann(a, "kind")), "lua");
    assert_string_equal(json_string_value(ann(a, "path")), "team-a/pkg/hello");
    assert_int_equal(json_integer_value(json_object_get(ann(a, "limits"), "timeout")), 3000);
    assert_int_equal(json_integer_value(json_object_get(ann(a, "limits"), "memory")), 128);
    assert_true(json_is_false(ann(a, "timeout")));
    json_decref(a);
    json_decref(resp);

    /* A warm call has no initTime; a record without a result shows its error. */
    json_object_set_new(rec, "cold", json_false());
    json_object_set_new(rec, "error", json_string("function raised an error"));
    json_object_set_new(rec, "status", json_integer(504));
    gw_ow_act_info_t bare = {"team-a", "hello", "lua", NULL, NULL, NULL, NULL};
    a = gw_ow_activation(rec, &bare);
    assert_null(ann(a, "initTime"));
    assert_string_equal(json_string_value(json_object_get(a, "subject")), "team-a");
    json_t *r = json_object_get(a, "response");
    assert_false(json_is_true(json_object_get(r, "success")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "error")),
                        "function raised an error");
    assert_true(json_is_true(ann(a, "timeout")));
    json_decref(a);
    json_decref(rec);
}

static void test_counts(void **state)
{
    (void)state;
    long v;
    assert_true(gw_ow_count(NULL, 200, 30, &v));
    assert_int_equal(v, 30);
    assert_true(gw_ow_count("0", 200, 30, &v));
    assert_int_equal(v, 0);
    assert_true(gw_ow_count("200", 200, 30, &v));
    assert_int_equal(v, 200);
    assert_false(gw_ow_count("201", 200, 30, &v));
    assert_false(gw_ow_count("-1", 200, 30, &v));
    assert_false(gw_ow_count("1x", 200, 30, &v));
    assert_false(gw_ow_count("+1", 200, 30, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),     cmocka_unit_test(test_names),        cmocka_unit_test(test_zip_paths),
        cmocka_unit_test(test_unzip),     cmocka_unit_test(test_merge_params), cmocka_unit_test(test_responses),
        cmocka_unit_test(test_activation), cmocka_unit_test(test_counts),
    };
    return cmocka_run_group_tests_name("gateway/openwhisk_model", tests, NULL, NULL);
}
