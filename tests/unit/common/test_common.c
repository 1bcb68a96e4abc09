/* Tests of common/common.c: the buffer, JSON quoting and file reading in
 * both out-of-memory policies (try_* gives -ENOMEM and leaves its arguments
 * as they were, the others abort with a log line), allocation failures
 * injected at every allocation in turn (alloc_fail.h); and
 * tine_buf_append_printable, what every text a function writes goes
 * through before tined's log, a record or an API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_fail.h"
#include "tine_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The printable form of n bytes of s. */
static void check_printable(const char *s, size_t n, const char *want)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "", 0);
    tine_buf_append_printable(&b, s, n);
    if (strcmp(b.data, want) != 0)
        fail_msg("for %zu bytes\nexpected: %s\n     got: %s", n, want, b.data);
    assert_true(tine_utf8_valid(b.data, b.len));
    for (size_t i = 0; i < b.len; i++) /* no control byte is left but TAB */
        assert_true((unsigned char)b.data[i] >= 0x20 || b.data[i] == '\t');
    tine_buf_dispose(&b);
}

#define CHECK(lit, want) check_printable(lit, sizeof(lit) - 1, want)

static void test_plain_text_is_kept(void **state)
{
    (void)state;
    CHECK("", "");
    CHECK("hello 42 nil", "hello 42 nil");
    CHECK("tab\tkept", "tab\tkept");
    CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK("back\\slash \"quoted\"", "back\\slash \"quoted\"");
    CHECK("\xc2\xa0nbsp", "\xc2\xa0nbsp"); /* U+00A0 is not a control character */
}

static void test_line_breaks_are_escaped(void **state)
{
    (void)state;
    CHECK("a\nb", "a\\nb");
    CHECK("a\r\nb\n", "a\\r\\nb\\n");
    CHECK("\n{\"level\":\"error\"}", "\\n{\"level\":\"error\"}");
}

static void test_control_characters_are_escaped(void **state)
{
    (void)state;
    CHECK("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    CHECK("nul\0here", "nul\\x00here");
    CHECK("bell\x07 del\x7f", "bell\\x07 del\\x7f");
    CHECK("c1 \xc2\x9b"
          "31m \xc2\x85",
          "c1 \\u009b31m \\u0085"); /* CSI and NEL as UTF-8 */
}

static void test_invalid_utf8_becomes_replacement(void **state)
{
    (void)state;
    CHECK("\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd");
    CHECK("cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd");         /* a sequence cut short */
    CHECK("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                 /* overlong '/' */
    CHECK("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    CHECK("\x9b"
          "31m",
          "\xef\xbf\xbd"
          "31m"); /* a raw 8-bit CSI */
}

/* ------------------------------------------------------------ buffers */

static void test_buf_appends(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    assert_int_equal(tine_buf_try_append(&b, "", 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(tine_buf_try_append(&b, "ab", 2), 0);
    assert_int_equal(tine_buf_try_appendf(&b, "-%d-%s", 42, "x"), 0);
    tine_buf_append(&b, "c", 1);
    tine_buf_appendf(&b, "%c", 'd');
    assert_int_equal(b.len, 9);
    assert_string_equal(b.data, "ab-42-xcd");
    for (int i = 0; i < 1000; i++) /* grows by doubling, stays NUL-terminated */
        assert_int_equal(tine_buf_try_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10009);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data + 9999, "0123456789", 10);
    tine_buf_dispose(&b);
    assert_null(b.data);
    assert_int_equal(b.len + b.cap, 0);
}

static void test_buf_growth(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    assert_int_equal(tine_buf_try_grow(&b, 1), 0);
    assert_int_equal(b.cap, 256); /* the smallest */
    assert_int_equal(tine_buf_try_grow(&b, 255), 0);
    assert_int_equal(b.cap, 256); /* 255 bytes and the NUL fit */
    assert_int_equal(tine_buf_try_grow(&b, 256), 0);
    assert_int_equal(b.cap, 512); /* doubles */
    assert_int_equal(tine_buf_try_grow(&b, 100000), 0);
    assert_int_equal(b.cap, 100001); /* a big need: what it needs, not a power of two beyond */
    tine_buf_dispose(&b);
}

static void test_buf_reset(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_reset(&b, 1024); /* on an empty buffer */
    assert_null(b.data);
    tine_buf_append(&b, "hello", 5);
    char *kept = b.data;
    tine_buf_reset(&b, 1024);
    assert_ptr_equal(b.data, kept); /* small: its memory is kept */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(tine_buf_try_grow(&b, 5000), 0);
    tine_buf_reset(&b, 1024);
    assert_null(b.data); /* grown past keep: given back */
    assert_int_equal(b.len + b.cap, 0);
}

/* Sizes that do not fit a size_t fail without calling the allocator (so
 * also under the sanitizers) and leave the buffer as it was. */
static void test_buf_sizes_beyond_size_t(void **state)
{
    (void)state;
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "keep", 4);
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(tine_buf_try_grow(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(tine_buf_try_grow(&b, SIZE_MAX - 4), -ENOMEM);
    assert_int_equal(tine_json_try_quote(&b, "x", SIZE_MAX - 1, 0), -ENOMEM);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    tine_buf_dispose(&b);
}

/* The aborting variants abort with a message, in a child. */
static void expect_abort(void (*fn)(void))
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    char msg[256] = "";
    ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
    close(pipefd[0]);
    msg[n > 0 ? n : 0] = '\0';
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    /* One JSON line of tine_log, built on the stack when nothing else can be
     * allocated. */
    json_t *line = json_loads(msg, 0, NULL);
    const char *level = json_string_value(json_object_get(line, "level"));
    const char *text = json_string_value(json_object_get(line, "msg"));
    if (level == NULL || strcmp(level, "error") != 0 || text == NULL || strncmp(text, "out of memory", 13) != 0)
        fail_msg("expected the out-of-memory log line, got: %s", msg);
    json_decref(line);
}

static void grow_beyond_size_t(void)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "x", 1);
    tine_buf_grow(&b, SIZE_MAX);
}

static void append_failing(void)
{
    tine_buf_t b;
    tine_buf_init(&b);
    alloc_fail_from(1);
    tine_buf_append(&b, "x", 1);
}

static void quote_failing(void)
{
    tine_buf_t b;
    tine_buf_init(&b);
    alloc_fail_from(1);
    tine_json_quote(&b, "x", 1);
}

static void read_failing(void)
{
    char *text;
    alloc_fail_from(1);
    tine_read_file("/proc/self/status", &text, NULL);
}

static void test_aborting_variants_abort(void **state)
{
    (void)state;
    expect_abort(grow_beyond_size_t);
    if (!ALLOC_FAIL_WORKS)
        return;
    expect_abort(append_failing);
    expect_abort(quote_failing);
    expect_abort(read_failing);
}

/* Makes a fresh directory from the template dir ("/tmp/...-XXXXXX") and
 * puts the path of `name` in it into path. */
static void temp_path(char *dir, const char *name, char *path, size_t size)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, size, "%s/%s", dir, name);
}

/* The steps of test_torture: each makes allocations and checks what it
 * got; at a failure every try_* call must say -ENOMEM and leave its
 * buffer as it was. Returns whether every step succeeded. */
static bool torture_steps(const char *dir)
{
    bool all = true;
    tine_buf_t b;
    tine_buf_init(&b);
    for (int i = 0; i < 200; i++) {
        size_t before = b.len;
        int rc = tine_buf_try_append(&b, "0123456789", 10);
        if (rc != 0) {
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(b.len, before);
            all = false;
        }
        if (b.data != NULL)
            assert_int_equal(b.data[b.len], '\0');
    }
    char snapshot[4096];
    size_t snap_len = b.len < sizeof snapshot ? b.len : sizeof snapshot;
    if (b.data)
        memcpy(snapshot, b.data, snap_len);

    size_t before = b.len;
    int rc = tine_buf_try_appendf(&b, "%0*d", 3000, 7);
    if (rc != 0) {
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(b.len, before);
        all = false;
    } else {
        assert_int_equal(b.len, before + 3000);
    }
    before = b.len;
    static const char text[] = "\"q\" \\ \n\t\x01 caf\xc3\xa9 \xff end, long enough to need more room than the "
                               "buffer has left after all that was appended before it";
    rc = tine_json_try_quote(&b, text, sizeof text - 1, 0);
    if (rc != 0) {
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(b.len, before);
        all = false;
    }
    before = b.len;
    char controls[3000]; /* six bytes out for each in: the buffer grows in the middle */
    memset(controls, 1, sizeof controls);
    rc = tine_json_try_quote(&b, controls, sizeof controls, 0);
    if (rc != 0) {
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(b.len, before);
        all = false;
    } else {
        assert_int_equal(b.len, before + 2 + 6 * sizeof controls);
    }
    if (b.data != NULL) {
        assert_memory_equal(b.data, snapshot, snap_len < b.len ? snap_len : b.len); /* what was there stays */
        assert_int_equal(b.data[b.len], '\0');
    }
    tine_buf_dispose(&b);

    char path[4200];
    snprintf(path, sizeof path, "%s/file", dir);
    char *data = (char *)0x1;
    size_t len = 7;
    rc = tine_try_read_file(path, &data, &len);
    if (rc != 0) {
        assert_int_equal(rc, -ENOMEM);
        assert_ptr_equal(data, (char *)0x1); /* left alone */
        assert_int_equal(len, 7);
        all = false;
    } else {
        assert_int_equal(len, 10000);
        free(data);
    }
    data = (char *)0x1;
    rc = tine_try_read_file("/proc/self/smaps", &data, &len); /* no size, and more than 4 KiB */
    if (rc != 0) {
        assert_int_equal(rc, -ENOMEM);
        assert_ptr_equal(data, (char *)0x1);
        all = false;
    } else {
        assert_true(len > 4096);
        assert_non_null(strstr(data, "Rss:"));
        free(data);
    }
    return all;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Every allocation of the steps fails in turn: -ENOMEM each time, the
 * buffers as they were, no block and no descriptor left behind. */
static void test_torture(void **state)
{
    (void)state;
    char dir[] = "/tmp/tine-common-XXXXXX", path[64];
    temp_path(dir, "file", path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        fputs("0123456789", f);
    fclose(f);

    assert_true(torture_steps(dir)); /* nothing failing: all succeed */
    if (!ALLOC_FAIL_WORKS) {
        print_message("allocation failures cannot be injected under the sanitizers: torture skipped\n");
    } else {
        int fds = count_fds();
        long n = 0;
        for (;; n++) {
            alloc_fail_nth(n);
            bool all = torture_steps(dir);
            bool hit = alloc_fail_hit();
            long live = alloc_live;
            alloc_fail_off();
            if (live != 0)
                fail_msg("%ld blocks left behind when allocation %ld failed", live, n);
            assert_int_equal(count_fds(), fds);
            if (!hit) {
                assert_true(all);
                break;
            }
            assert_false(all); /* the failure was reported */
        }
        assert_true(n > 5); /* the steps do allocate */
    }
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------- JSON quoting */

static void check_quote(const char *s, size_t n, unsigned flags, const char *want)
{
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "[", 1);
    assert_int_equal(tine_json_try_quote(&b, s, n, flags), 0);
    if (strcmp(b.data + 1, want) != 0)
        fail_msg("for %zu bytes\nexpected: %s\n     got: %s", n, want, b.data + 1);
    /* What it wrote is JSON, and reads back as s where s was valid UTF-8. */
    tine_buf_append(&b, "]", 1);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", b.data, err.text);
    if (tine_utf8_valid(s, n)) {
        assert_int_equal(json_string_length(json_array_get(j, 0)), n);
        assert_memory_equal(json_string_value(json_array_get(j, 0)), s, n);
    }
    json_decref(j);
    /* The aborting variant writes the same. */
    tine_buf_t c;
    tine_buf_init(&c);
    if (flags == 0) {
        tine_json_quote(&c, s, n);
        assert_string_equal(c.data, want);
    }
    tine_buf_dispose(&c);
    tine_buf_dispose(&b);
}

#define QUOTE(lit, want) check_quote(lit, sizeof(lit) - 1, 0, want)

/* The escaping documented in tine_common.h, one rule at a time. */
static void test_json_quote_escapes(void **state)
{
    (void)state;
    QUOTE("", "\"\"");
    QUOTE("plain text 42", "\"plain text 42\"");
    QUOTE("say \"hi\" \\ now", "\"say \\\"hi\\\" \\\\ now\"");
    QUOTE("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    QUOTE("nul\0 soh\x01 esc\x1b us\x1f", "\"nul\\u0000 soh\\u0001 esc\\u001b us\\u001f\"");
    QUOTE("del\x7f", "\"del\x7f\"");
    QUOTE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    QUOTE("ls\xe2\x80\xa8ps\xe2\x80\xa9", "\"ls\xe2\x80\xa8ps\xe2\x80\xa9\"");
    QUOTE("\xc2\x85 c1", "\"\xc2\x85 c1\""); /* valid UTF-8: as it is */
}

static void test_json_quote_invalid_utf8(void **state)
{
    (void)state;
    QUOTE("\xff", "\"\xef\xbf\xbd\"");
    QUOTE("a\xc3", "\"a\xef\xbf\xbd\"");                                     /* cut short */
    QUOTE("\xe2\x82x", "\"\xef\xbf\xbd\xef\xbf\xbdx\"");                     /* cut short, two bytes */
    QUOTE("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");                       /* overlong '/' */
    QUOTE("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");       /* a surrogate */
    QUOTE("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* above U+10FFFF */
    QUOTE("\x80 \"", "\"\xef\xbf\xbd \\\"\"");                                /* a stray continuation byte */

    /* TINE_JSON_STRICT: valid text as without it, invalid text refused with
     * the buffer as it was. */
    check_quote("caf\xc3\xa9\n", 6, TINE_JSON_STRICT, "\"caf\xc3\xa9\\n\"");
    tine_buf_t b;
    tine_buf_init(&b);
    tine_buf_append(&b, "kept", 4);
    assert_int_equal(tine_json_try_quote(&b, "ok \xff", 4, TINE_JSON_STRICT), TINE_EINVAL);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "kept");
    assert_int_equal(tine_json_try_quote(&b, "\xed\xa0\x80", 3, TINE_JSON_STRICT), TINE_EINVAL);
    assert_string_equal(b.data, "kept");
    tine_buf_dispose(&b);
}

/* ------------------------------------------------------ error messages */

static void test_fail_errno(void **state)
{
    (void)state;
    char err[64];
    errno = ENOENT;
    assert_int_equal(tine_fail_errno(err, sizeof err, "cannot open %s", "/x\ny"), -ENOENT);
    assert_string_equal(err, "cannot open /x?y: No such file or directory"); /* one line */
    errno = 0;
    assert_int_equal(tine_fail_errno(err, sizeof err, "odd"), -EIO);
    assert_string_equal(err, "odd: Input/output error");
    errno = EPERM;
    assert_int_equal(tine_fail_errno(err, 8, "a long message"), -EPERM);
    assert_string_equal(err, "a long "); /* cut, still terminated */
    assert_int_equal(tine_fail_errno(NULL, 0, "x"), -EPERM);
}

/* --------------------------------------------------------- file reading */

static void test_read_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/tine-common-XXXXXX", path[64];
    temp_path(dir, "f", path, sizeof path);
    char *data = NULL;
    size_t len = 99;

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tine_try_read_file(path, &data, &len), 0); /* empty: "" */
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    static char big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + 1);
    big[100] = '\0'; /* binary content is kept as it is */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
    close(fd);
    assert_int_equal(tine_try_read_file(path, &data, &len), 0);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(data, big, sizeof big);
    assert_int_equal(data[len], '\0');
    free(data);
    assert_int_equal(tine_read_file(path, &data, NULL), 0);
    assert_memory_equal(data, big, sizeof big);
    free(data);

    /* A pipe reports no size and ends when its writer closes it. */
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int w = open(fifo, O_WRONLY);
        for (int i = 0; i < 3; i++)
            if (write(w, big, sizeof big) != (ssize_t)sizeof big)
                _exit(1);
        _exit(0);
    }
    assert_int_equal(tine_try_read_file(fifo, &data, &len), 0);
    assert_int_equal(len, 3 * sizeof big);
    assert_memory_equal(data + 2 * sizeof big, big, sizeof big);
    free(data);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);

    data = (char *)0x1;
    assert_int_equal(tine_try_read_file(dir, &data, &len), -EISDIR);
    assert_int_equal(tine_try_read_file("/nonexistent/tine", &data, &len), -ENOENT);
    assert_ptr_equal(data, (char *)0x1);

    unlink(fifo);
    unlink(path);
    rmdir(dir);
}

/* tine_hex_digit: both cases, and every other byte refused. */
static void test_hex_digit(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdef", *upper = "ABCDEF";
    for (int i = 0; i < 16; i++)
        assert_int_equal(tine_hex_digit(digits[i]), i);
    for (int i = 0; i < 6; i++)
        assert_int_equal(tine_hex_digit(upper[i]), 10 + i);
    int accepted = 0;
    for (int c = 0; c < 256; c++)
        accepted += tine_hex_digit(c) >= 0;
    assert_int_equal(accepted, 22);
    assert_int_equal(tine_hex_digit('g'), -1);
    assert_int_equal(tine_hex_digit('/'), -1);
    assert_int_equal(tine_hex_digit(-1), -1);
}

static int int_cmp(const void *key, const void *element)
{
    int a = *(const int *)key, b = *(const int *)element;
    return (a > b) - (a < b);
}

/* tine_bsearch_pos: every element found at its index, every gap gives the
 * index that keeps the order, an empty array gives 0. */
static void test_bsearch_pos(void **state)
{
    (void)state;
    const int v[] = {2, 4, 6, 8, 10, 12, 14};
    const size_t n = sizeof(v) / sizeof(v[0]);
    bool found;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tine_bsearch_pos(&v[i], v, n, sizeof(v[0]), int_cmp, &found), i);
        assert_true(found);
        int gap = v[i] - 1;
        assert_int_equal(tine_bsearch_pos(&gap, v, n, sizeof(v[0]), int_cmp, &found), i);
        assert_false(found);
    }
    int past = 99;
    assert_int_equal(tine_bsearch_pos(&past, v, n, sizeof(v[0]), int_cmp, &found), n);
    assert_false(found);
    found = true;
    assert_int_equal(tine_bsearch_pos(&past, v, 0, sizeof(v[0]), int_cmp, &found), 0);
    assert_false(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_digit),
        cmocka_unit_test(test_bsearch_pos),
        cmocka_unit_test(test_buf_appends),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_reset),
        cmocka_unit_test(test_buf_sizes_beyond_size_t),
        cmocka_unit_test(test_aborting_variants_abort),
        cmocka_unit_test(test_torture),
        cmocka_unit_test(test_json_quote_escapes),
        cmocka_unit_test(test_json_quote_invalid_utf8),
        cmocka_unit_test(test_fail_errno),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_plain_text_is_kept),
        cmocka_unit_test(test_line_breaks_are_escaped),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement),
    };
    return cmocka_run_group_tests_name("common/common", tests, NULL, NULL);
}
