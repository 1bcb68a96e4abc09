/* Secret boxes: a sealed value opens with its key, app and name only; the
 * same value seals differently each time; key files of 32 bytes or 64 hex
 * digits load, others are refused naming the file. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "secret_box.h"
#include "tine_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const unsigned char KEY[TINE_SECRET_KEY_LEN] = "0123456789abcdef0123456789abcdef";

static void test_seal_open(void **state)
{
    (void)state;
    tine_buf_t a, b, out;
    tine_buf_init(&a);
    tine_buf_init(&b);
    tine_buf_init(&out);
    const char *v = "hunter2-and-more";
    assert_int_equal(tine_secret_seal(KEY, "shop", "DB", v, strlen(v), &a), 0);
    assert_int_equal(tine_secret_seal(KEY, "shop", "DB", v, strlen(v), &b), 0);
    /* "tine1" + nonce + ciphertext + tag; random nonces: never equal. */
    assert_int_equal(a.len, 5 + 12 + strlen(v) + 16);
    assert_false(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    assert_null(memmem(a.data, a.len, v, strlen(v)));
    assert_int_equal(tine_secret_open(KEY, "shop", "DB", a.data, a.len, &out), 0);
    assert_int_equal(out.len, strlen(v));
    assert_memory_equal(out.data, v, out.len);

    /* Another key, app or name, a flipped bit, a cut: does not open. */
    unsigned char other[TINE_SECRET_KEY_LEN];
    memcpy(other, KEY, sizeof other);
    other[0] ^= 1;
    tine_buf_t none;
    tine_buf_init(&none);
    assert_int_equal(tine_secret_open(other, "shop", "DB", a.data, a.len, &none), TINE_EINVAL);
    assert_int_equal(tine_secret_open(KEY, "shop2", "DB", a.data, a.len, &none), TINE_EINVAL);
    assert_int_equal(tine_secret_open(KEY, "shop", "DB2", a.data, a.len, &none), TINE_EINVAL);
    assert_int_equal(tine_secret_open(KEY, "sho", "pDB", a.data, a.len, &none), TINE_EINVAL);
    a.data[20] ^= 0x40;
    assert_int_equal(tine_secret_open(KEY, "shop", "DB", a.data, a.len, &none), TINE_EINVAL);
    a.data[20] ^= 0x40;
    assert_int_equal(tine_secret_open(KEY, "shop", "DB", a.data, a.len - 1, &none), TINE_EINVAL);
    assert_int_equal(tine_secret_open(KEY, "shop", "DB", a.data, 10, &none), TINE_EINVAL);
    assert_int_equal(none.len, 0);
    tine_buf_dispose(&a);
    tine_buf_dispose(&b);
    tine_buf_dispose(&out);
    tine_buf_dispose(&none);
}

static char *write_tmp(const char *data, size_t len)
{
    char *path = xstrdup("/tmp/tine-secret-key.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_key_load(void **state)
{
    (void)state;
    unsigned char key[TINE_SECRET_KEY_LEN];
    char err[512];
    char *raw = write_tmp((const char *)KEY, sizeof KEY);
    assert_int_equal(tine_secret_key_load(raw, key, err, sizeof err), 0);
    assert_memory_equal(key, KEY, sizeof key);
    const char *hex = "  000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
    char *h = write_tmp(hex, strlen(hex));
    assert_int_equal(tine_secret_key_load(h, key, err, sizeof err), 0);
    for (int i = 0; i < TINE_SECRET_KEY_LEN; i++)
        assert_int_equal(key[i], i);
    char *bad = write_tmp("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eZZ", 64);
    assert_int_equal(tine_secret_key_load(bad, key, err, sizeof err), TINE_EINVAL);
    char *want = xasprintf("secrets key %s: expected 32 bytes or 64 hex digits", bad);
    assert_non_null(strstr(err, want));
    free(want);
    char *shortk = write_tmp("short\n", 6);
    assert_int_equal(tine_secret_key_load(shortk, key, err, sizeof err), TINE_EINVAL);
    assert_non_null(strstr(err, "got 6 bytes"));
    assert_true(tine_secret_key_load("/nonexistent/key", key, err, sizeof err) != 0);
    assert_non_null(strstr(err, "secrets key /nonexistent/key: cannot read it"));
    char *files[] = {raw, h, bad, shortk};
    for (int i = 0; i < 4; i++) {
        unlink(files[i]);
        free(files[i]);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_true(tine_secret_name_valid("DB_PASSWORD"));
    assert_true(tine_secret_name_valid("_x9"));
    assert_false(tine_secret_name_valid(""));
    assert_false(tine_secret_name_valid("9x"));
    assert_false(tine_secret_name_valid("a-b"));
    assert_false(tine_secret_name_valid("a/b"));
    char longname[130];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    assert_false(tine_secret_name_valid(longname));
    longname[128] = '\0';
    assert_true(tine_secret_name_valid(longname));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
