/* redis/keys.h and the table "Redis keys" of docs/ARCHITECTURE.md name the
 * same keys: every key or prefix of the header is in the table, and every
 * key of the table is a key of the header or starts with one of its
 * prefixes (the literal part of a key, up to its first "{"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/source_file.h"
#include "tine_common.h"

typedef struct {
    char *items[128];
    size_t n;
} list_t;

static void add(list_t *l, const char *s, size_t len)
{
    assert_true(l->n < 128);
    l->items[l->n++] = xstrndup(s, len);
}

static void dispose(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
}

/* The string literals "tine:..." of keys.h. */
static void header_keys(list_t *keys)
{
    char *h = read_source("redis/keys.h");
    for (char *p = strstr(h, "#define RDS_"); p; p = strstr(p + 1, "#define RDS_")) {
        char *q = strchr(p, '"');
        char *eol = strchr(p, '\n');
        if (q == NULL || (eol && q > eol))
            continue;
        char *end = strchr(q + 1, '"');
        if (strncmp(q + 1, "tine:", 5) == 0)
            add(keys, q + 1, (size_t)(end - q - 1));
    }
    free(h);
}

/* The code spans of the first column of the table under "## Redis keys". */
static void table_keys(list_t *keys)
{
    char *doc = read_source("docs/ARCHITECTURE.md");
    char *sec = strstr(doc, "\n## Redis keys\n");
    assert_non_null(sec);
    char *end = strstr(sec + 1, "\n## ");
    for (char *line = strstr(sec, "\n| "); line && (end == NULL || line < end); line = strstr(line + 1, "\n| ")) {
        char *cell_end = strchr(line + 3, '|');
        for (char *p = line + 3; p < cell_end; p++) {
            if (*p != '`')
                continue;
            char *close = memchr(p + 1, '`', (size_t)(cell_end - p - 1));
            if (close == NULL)
                break;
            if (strncmp(p + 1, "tine:", 5) == 0)
                add(keys, p + 1, (size_t)(close - p - 1));
            p = close;
        }
    }
    free(doc);
}

static void test_header_and_table_agree(void **state)
{
    list_t header = {0}, table = {0};
    header_keys(&header);
    table_keys(&table);
    assert_true(header.n >= 15);
    assert_true(table.n >= 15);
    /* Every key of the header is in the table (a prefix: some key starts
     * with it). */
    for (size_t i = 0; i < header.n; i++) {
        const char *k = header.items[i];
        size_t kl = strlen(k);
        bool prefix = k[kl - 1] == ':';
        bool found = false;
        for (size_t j = 0; j < table.n && !found; j++)
            found = prefix ? strncmp(table.items[j], k, kl) == 0 && table.items[j][kl] == '{'
                           : strcmp(table.items[j], k) == 0;
        if (!found)
            fail_msg("keys.h names %s, which the table of docs/ARCHITECTURE.md does not", k);
    }
    /* Every key of the table comes from the header. */
    for (size_t j = 0; j < table.n; j++) {
        const char *t = table.items[j];
        size_t lit = strcspn(t, "{");
        bool found = false;
        for (size_t i = 0; i < header.n && !found; i++) {
            const char *k = header.items[i];
            size_t kl = strlen(k);
            found = k[kl - 1] == ':' ? lit >= kl && strncmp(t, k, kl) == 0 && t[kl] == '{' : strcmp(t, k) == 0;
        }
        if (!found)
            fail_msg("docs/ARCHITECTURE.md names %s, which redis/keys.h does not", t);
    }
    dispose(&header);
    dispose(&table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_table_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
