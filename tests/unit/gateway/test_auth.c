/* gateway/auth.c: the table of admin endpoints names the same endpoints and
 * permissions as docs/admin-api.md, the roles grant what docs/tenancy.md
 * says, and requests find their endpoint (or none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/source_file.h"
#include "auth.h"
#include "tine_common.h"

/* The cells of one table row "| a | b | c |" (at most max), trimmed. */
static size_t row_cells(const char *line, char cells[][256], size_t max)
{
    size_t n = 0;
    const char *p = line + 1;
    while (n < max) {
        const char *bar = p;
        /* "\|" inside a cell is not a separator */
        while (*bar && *bar != '\n' && !(*bar == '|' && bar[-1] != '\\'))
            bar++;
        if (*bar != '|')
            break;
        const char *a = p, *b = bar;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        snprintf(cells[n++], 256, "%.*s", (int)(b - a), a);
        p = bar + 1;
    }
    return n;
}

/* "`/_tine/v1/apps/{app}[?force=1]`" -> "apps/{app}" */
static void endpoint_path(const char *cell, char *out, size_t len)
{
    const char *p = strstr(cell, "/_tine/v1/");
    assert_non_null(p);
    p += strlen("/_tine/v1/");
    size_t n = strcspn(p, "[?`");
    snprintf(out, len, "%.*s", (int)n, p);
}

static gw_perm_t perm_of(const char *cell)
{
    for (int p = 0; p < GW_NPERMS; p++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "`%s`", gw__perm_name((gw_perm_t)p));
        if (strcmp(cell, quoted) == 0)
            return (gw_perm_t)p;
    }
    return GW_PERM_NONE;
}

/* Every row of the endpoint table of docs/admin-api.md is an endpoint of the
 * node's table with the same permission, and the node has no other. */
static void test_docs_list_every_endpoint(void **state)
{
    (void)state;
    char *doc = read_source("docs/admin-api.md");
    bool *seen = calloc(gw__nendpoints, sizeof(bool));
    size_t rows = 0;
    for (char *line = strstr(doc, "\n| "); line; line = strstr(line + 1, "\n| ")) {
        char cells[6][256];
        size_t n = row_cells(line + 1, cells, 6);
        if (n < 3 || strstr(cells[1], "/_tine/v1/") == NULL)
            continue;
        char path[256];
        endpoint_path(cells[1], path, sizeof path);
        size_t i = 0;
        while (i < gw__nendpoints &&
               !(strcmp(gw__endpoints[i].method, cells[0]) == 0 && strcmp(gw__endpoints[i].path, path) == 0))
            i++;
        if (i == gw__nendpoints)
            fail_msg("docs/admin-api.md lists %s %s, which gateway/auth.c's table does not have", cells[0], path);
        gw_perm_t want = gw__endpoints[i].perm;
        if (want == GW_PERM_NONE) {
            const char *expect = gw__endpoints[i].scope == GW_SCOPE_ANY_KEY ? "any key" : "—";
            if (strcmp(cells[2], expect) != 0)
                fail_msg("%s %s: docs say permission '%s', the table '%s'", cells[0], path, cells[2], expect);
        } else if (perm_of(cells[2]) != want) {
            fail_msg("%s %s: docs say permission %s, the table `%s`", cells[0], path, cells[2], gw__perm_name(want));
        }
        if (seen[i])
            fail_msg("docs/admin-api.md lists %s %s twice", cells[0], path);
        seen[i] = true;
        rows++;
    }
    for (size_t i = 0; i < gw__nendpoints; i++)
        if (!seen[i])
            fail_msg("gateway/auth.c has %s %s, which docs/admin-api.md does not list", gw__endpoints[i].method,
                     gw__endpoints[i].path);
    assert_int_equal(rows, gw__nendpoints);
    free(seen);
    free(doc);
}

/* The roles table of docs/tenancy.md grants what the node's does. */
static void test_docs_roles_match(void **state)
{
    (void)state;
    char *doc = read_source("docs/tenancy.md");
    char *sec = strstr(doc, "\n### Roles\n");
    assert_non_null(sec);
    char *end = strstr(sec + 1, "\n## ");
    char cells[8][256];
    size_t header = row_cells(strstr(sec, "\n| ") + 1, cells, 8);
    assert_int_equal(header, 7);
    for (int r = 0; r < GW_NROLES; r++)
        assert_string_equal(cells[1 + r], gw__role_name((gw_role_t)r));
    bool listed[GW_NPERMS] = {false};
    for (char *line = strstr(sec, "\n| `"); line && (end == NULL || line < end); line = strstr(line + 1, "\n| `")) {
        size_t n = row_cells(line + 1, cells, 8);
        assert_int_equal(n, 7);
        gw_perm_t p = perm_of(cells[0]);
        if (p == GW_PERM_NONE)
            fail_msg("docs/tenancy.md: %s is not a permission of gateway/auth.c", cells[0]);
        listed[p] = true;
        for (int r = 0; r < GW_NROLES; r++) {
            bool docs = strcmp(cells[1 + r], "yes") == 0;
            if (docs != gw__role_allows((gw_role_t)r, p))
                fail_msg("%s of %s: docs/tenancy.md says %s, gateway/auth.c the opposite", cells[0],
                         gw__role_name((gw_role_t)r), cells[1 + r]);
        }
    }
    for (int p = 0; p < GW_NPERMS; p++)
        if (!listed[p])
            fail_msg("docs/tenancy.md does not list permission %s", gw__perm_name((gw_perm_t)p));
    free(doc);
}

/* Every endpoint that needs a key names a permission some role lacks
 * (cluster-admin excepted), and changes are audited. */
static void test_table_shape(void **state)
{
    (void)state;
    for (size_t i = 0; i < gw__nendpoints; i++) {
        const gw_endpoint_t *e = &gw__endpoints[i];
        if (e->scope == GW_SCOPE_PUBLIC || e->scope == GW_SCOPE_ANY_KEY) {
            assert_int_equal(e->perm, GW_PERM_NONE);
            continue;
        }
        assert_true(e->perm >= 0 && e->perm < GW_NPERMS);
        assert_true(gw__role_allows(GW_ROLE_CLUSTER_ADMIN, e->perm));
        if (strcmp(e->method, "GET") != 0 && e->perm != GW_PERM_FUNCTIONS_INVOKE && e->perm != GW_PERM_EVENTS_EMIT &&
            e->audit == NULL)
            fail_msg("%s %s changes something but writes no audit entry", e->method, e->path);
        if (strcmp(e->method, "GET") == 0 && e->audit != NULL)
            fail_msg("%s %s reads but is audited", e->method, e->path);
        if (strstr(e->path, "{app}"))
            assert_int_equal(e->scope, GW_SCOPE_APP);
    }
    assert_int_equal(gw__role_parse("deployer"), GW_ROLE_DEPLOYER);
    assert_int_equal(gw__role_parse("root"), GW_NROLES);
    assert_int_equal(gw__role_parse(NULL), GW_NROLES);
    assert_false(gw__role_allows(GW_ROLE_VIEWER, GW_PERM_FUNCTIONS_INVOKE));
    assert_true(gw__role_allows(GW_ROLE_INVOKER, GW_PERM_FUNCTIONS_INVOKE));
    assert_false(gw__role_allows(GW_ROLE_ADMIN, GW_PERM_NAMESPACES_MANAGE));
}

static const gw_endpoint_t *find(const char *method, const char *path, bool *known)
{
    h2o_iovec_t seg[8];
    size_t n = 0;
    for (const char *p = path; *p && n < 8;) {
        size_t len = strcspn(p, "/");
        seg[n++] = h2o_iovec_init(p, len);
        p += len;
        if (*p == '/')
            p++;
    }
    return gw__endpoint_find(method, strlen(method), seg, n, known);
}

static void test_endpoint_find(void **state)
{
    (void)state;
    bool known;
    const gw_endpoint_t *e = find("PUT", "apps/shop/functions/list/scale", &known);
    assert_non_null(e);
    assert_int_equal(e->perm, GW_PERM_SANDBOXES_SCALE);
    assert_string_equal(e->audit, "scale");
    e = find("GET", "apps/shop", &known);
    assert_int_equal(e->perm, GW_PERM_APPS_READ);
    e = find("DELETE", "apps/shop", &known);
    assert_int_equal(e->perm, GW_PERM_APPS_DELETE);
    assert_null(find("PATCH", "apps/shop", &known));
    assert_true(known);
    assert_null(find("GET", "apps/shop/no-such-thing", &known));
    assert_false(known);
    e = find("PUT", "apps/shop/secrets/DB_PASSWORD", &known);
    assert_int_equal(e->perm, GW_PERM_SECRETS_MANAGE);
    assert_string_equal(e->audit, "secret.set");
    assert_null(find("GET", "apps/shop/functions/x/invoke/more", &known));
    assert_false(known);
    e = find("GET", "health", &known);
    assert_int_equal(e->scope, GW_SCOPE_PUBLIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_list_every_endpoint),
        cmocka_unit_test(test_docs_roles_match),
        cmocka_unit_test(test_table_shape),
        cmocka_unit_test(test_endpoint_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
