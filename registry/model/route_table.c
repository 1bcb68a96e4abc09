/* Route table: a trie of path segments matched on every HTTP request.
 *
 * Each node has sorted literal children, at most one ":param" child and at most
 * one "*rest" child; routes ending at a node are its endpoints, one per method.
 * Param names belong to the endpoint, not to the node, so "/a/:x/c" and
 * "/a/:y/d" share the ":param" node and still report their own names.
 *
 * Matching rules (the gateway relies on them):
 *  - Per segment a literal beats a ":param", which beats a "*rest"; when a more
 *    specific branch fails further down, matching backtracks and tries the next
 *    one, so "/a/:x/c" and "/a/b/d" both serve "/a/b/c" and "/a/b/d".
 *  - Path specificity is decided before the method: at the most specific node
 *    whose path matches, an exact method beats HEAD-served-by-GET, which beats
 *    ANY. A node that matches the path but has no route for the method does not
 *    stop the search (another branch may have the method); if no branch has
 *    it, *path_matched tells the caller to answer 405 rather than 404.
 *  - Trailing slashes are strict: "/items/" does not match "/items" (its last
 *    segment is empty) nor "/items/:id" (a :param never matches an empty
 *    segment). Declare both routes if both spellings must work.
 *  - A "*rest" matches one or more remaining segments: "/files/" followed by
 *    "*p" matches "/files/a/b" with p = "a/b"; it does not match "/files" or
 *    "/files/", and the rest may not start with an empty segment
 *    ("/files//x"). A bare "*" matches the same way but reports no param.
 *  - Literals are compared byte for byte, case-sensitively, and nothing is
 *    percent-decoded: params point into the caller's path as sent.
 *
 * Matching allocates nothing: captures live on the caller's stack. */
#include "app_model.h"
#include "tine_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Captures per route: every ":param" and the "*rest", named or bare. */
#define MAX_CAPTURES (REG_ROUTE_MAX_PARAMS + 1)

typedef struct {
    const char *name; /* into pattern; NULL for a bare "*" (captured, not reported) */
    size_t name_len;
} capture_name_t;

typedef struct {
    char *method;  /* upper case or "ANY"; owned */
    size_t method_len;
    char *pattern; /* owned copy; capture names point into it */
    void *data;
    capture_name_t names[MAX_CAPTURES];
    size_t ncaptures;
} endpoint_t;

typedef struct route_node route_node_t;

struct route_node {
    char *literal; /* this node's segment when it is a literal child; owned */
    size_t literal_len;
    route_node_t **literals; /* sorted by (length, bytes) for binary search */
    size_t nliterals;
    route_node_t *param;
    route_node_t *rest;
    endpoint_t *endpoints;
    size_t nendpoints;
};

struct reg_route_table {
    route_node_t root;
};

/* ------------------------------------------------------------ validation */

/* Whether c may appear as it is in a literal path segment (unreserved
 * characters of RFC 3986). */
static int is_literal_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '~' || c == '-';
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Writes a character for a message: printable ASCII as is, else \xNN. */
static void describe_char(unsigned char c, char out[8])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, 8, "%c", c);
    else
        snprintf(out, 8, "\\x%02x", c);
}

/* Writes a segment error, naming the segment by position (1-based) and as
 * written, and returns TINE_EINVAL. */
static int seg_error(char *err, size_t errlen, size_t segno, const char *seg, size_t seg_len, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Says in err that path segment segno (its text quoted) is wrong and why
 * (fmt); returns TINE_EINVAL. */
static int seg_error(char *err, size_t errlen, size_t segno, const char *seg, size_t seg_len, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "segment %zu '%.*s': ", segno, (int)seg_len, seg);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return TINE_EINVAL;
}

#define SEG_ERR(...) return seg_error(err, errlen, segno, seg, seg_len, __VA_ARGS__)

/* Validates a param or rest name (without its sigil). */
static int validate_name(const char *seg, size_t seg_len, size_t segno, const char *name, size_t name_len,
                         const char *what, char *err, size_t errlen)
{
    if (name_len == 0)
        SEG_ERR("%s name is empty", what);
    if (!is_name_start((unsigned char)name[0]))
        SEG_ERR("%s names start with a letter or _", what);
    for (size_t i = 1; i < name_len; i++)
        if (!is_name_char((unsigned char)name[i]))
            SEG_ERR("%s names contain only letters, digits and _", what);
    return 0;
}

/* Checks one path and, when `names` is given, records its captures in order.
 * Shared by reg_route_path_validate and reg_route_table_add so the two can
 * never disagree. */
static int parse_pattern(const char *path, capture_name_t *names, size_t *ncaptures, char *err, size_t errlen)
{
    if (path == NULL || path[0] != '/') {
        if (err && errlen)
            snprintf(err, errlen, "path '%s': must start with /", path ? path : "(null)");
        return TINE_EINVAL;
    }
    size_t count = 0, nparams = 0;
    if (path[1] == '\0') {
        if (ncaptures)
            *ncaptures = 0;
        return 0;
    }
    capture_name_t seen[MAX_CAPTURES];
    const char *p = path + 1;
    for (size_t segno = 1;; segno++) {
        const char *seg = p;
        const char *slash = strchr(seg, '/');
        size_t seg_len = slash ? (size_t)(slash - seg) : strlen(seg);
        int last = slash == NULL;
        if (seg_len == 0)
            SEG_ERR("empty segment (a double or trailing /)");
        if (seg[0] == ':' || seg[0] == '*') {
            int rest = seg[0] == '*';
            if (rest && !last)
                SEG_ERR("a *rest segment must be the last one");
            const char *name = seg + 1;
            size_t name_len = seg_len - 1;
            if (rest && name_len == 0) {
                /* Bare "*": matches the rest without naming it. */
                seen[count].name = NULL;
                seen[count].name_len = 0;
                count++;
            } else {
                int rc = validate_name(seg, seg_len, segno, name, name_len, rest ? "rest" : "parameter", err,
                                       errlen);
                if (rc != 0)
                    return rc;
                if (nparams == REG_ROUTE_MAX_PARAMS)
                    SEG_ERR("more than %d parameters", REG_ROUTE_MAX_PARAMS);
                for (size_t i = 0; i < count; i++)
                    if (seen[i].name && seen[i].name_len == name_len && memcmp(seen[i].name, name, name_len) == 0)
                        SEG_ERR("duplicate parameter name '%.*s'", (int)name_len, name);
                seen[count].name = name;
                seen[count].name_len = name_len;
                count++;
                nparams++;
            }
        } else {
            if ((seg_len == 1 && seg[0] == '.') || (seg_len == 2 && seg[0] == '.' && seg[1] == '.'))
                SEG_ERR("'.' and '..' segments are not allowed");
            for (size_t i = 0; i < seg_len; i++) {
                unsigned char c = (unsigned char)seg[i];
                if (c == '%') {
                    if (i + 2 >= seg_len || !is_hex((unsigned char)seg[i + 1]) || !is_hex((unsigned char)seg[i + 2]))
                        SEG_ERR("'%%' must be followed by two hex digits");
                    i += 2;
                } else if (!is_literal_char(c)) {
                    char d[8];
                    describe_char(c, d);
                    SEG_ERR("character '%s' is not allowed (literals use A-Z a-z 0-9 . _ ~ - and %%XX)", d);
                }
            }
        }
        if (last)
            break;
        p = slash + 1;
    }
    if (names)
        memcpy(names, seen, count * sizeof(*names));
    if (ncaptures)
        *ncaptures = count;
    return 0;
}

int reg_route_path_validate(const char *path, char *err, size_t errlen)
{
    return parse_pattern(path, NULL, NULL, err, errlen);
}

/* ------------------------------------------------------------------- trie */

reg_route_table_t *reg_route_table_new(void)
{
    return xcalloc(1, sizeof(reg_route_table_t));
}

/* Frees a node's contents and children (not the node itself). */
static void node_dispose(route_node_t *n)
{
    for (size_t i = 0; i < n->nliterals; i++) {
        node_dispose(n->literals[i]);
        free(n->literals[i]);
    }
    free(n->literals);
    if (n->param) {
        node_dispose(n->param);
        free(n->param);
    }
    if (n->rest) {
        node_dispose(n->rest);
        free(n->rest);
    }
    for (size_t i = 0; i < n->nendpoints; i++) {
        free(n->endpoints[i].method);
        free(n->endpoints[i].pattern);
    }
    free(n->endpoints);
    free(n->literal);
}

void reg_route_table_free(reg_route_table_t *t)
{
    if (t == NULL)
        return;
    node_dispose(&t->root);
    free(t);
}

/* Order of literal segments: by length, then bytewise. */
static int literal_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Binary search among a node's literal children. Returns the child or NULL,
 * and the insertion index in *at. */
static route_node_t *find_literal(const route_node_t *n, const char *seg, size_t len, size_t *at)
{
    size_t lo = 0, hi = n->nliterals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const route_node_t *c = n->literals[mid];
        int cmp = literal_cmp(c->literal, c->literal_len, seg, len);
        if (cmp == 0) {
            if (at)
                *at = mid;
            return n->literals[mid];
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return NULL;
}

/* Returns the literal child for seg, creating it; NULL on out-of-memory. */
static route_node_t *literal_child(route_node_t *n, const char *seg, size_t len)
{
    size_t at;
    route_node_t *c = find_literal(n, seg, len, &at);
    if (c)
        return c;
    c = calloc(1, sizeof(*c));
    route_node_t **grown = realloc(n->literals, (n->nliterals + 1) * sizeof(*grown));
    char *lit = malloc(len + 1);
    if (c == NULL || grown == NULL || lit == NULL) {
        free(c);
        free(lit);
        if (grown)
            n->literals = grown;
        return NULL;
    }
    memcpy(lit, seg, len);
    lit[len] = '\0';
    c->literal = lit;
    c->literal_len = len;
    n->literals = grown;
    memmove(&n->literals[at + 1], &n->literals[at], (n->nliterals - at) * sizeof(*grown));
    n->literals[at] = c;
    n->nliterals++;
    return c;
}

/* The child in *slot (the parameter or wildcard child of a node), made empty
 * when there is none; NULL without memory. */
static route_node_t *special_child(route_node_t **slot)
{
    if (*slot == NULL)
        *slot = calloc(1, sizeof(route_node_t));
    return *slot;
}

int reg_route_table_add(reg_route_table_t *t, const char *method, const char *pattern, void *data, char *err,
                        size_t errlen)
{
    capture_name_t names[MAX_CAPTURES];
    size_t ncaptures = 0;
    if (method == NULL || method[0] == '\0') {
        if (err && errlen)
            snprintf(err, errlen, "route %s: method is empty", pattern ? pattern : "(null)");
        return TINE_EINVAL;
    }
    int rc = parse_pattern(pattern, NULL, NULL, err, errlen);
    if (rc != 0)
        return rc;

    route_node_t *n = &t->root;
    if (pattern[1] != '\0') {
        const char *p = pattern + 1;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            if (p[0] == ':')
                n = special_child(&n->param);
            else if (p[0] == '*')
                n = special_child(&n->rest);
            else
                n = literal_child(n, p, len);
            if (n == NULL)
                return -ENOMEM;
            if (slash == NULL)
                break;
            p = slash + 1;
        }
    }

    size_t method_len = strlen(method);
    for (size_t i = 0; i < n->nendpoints; i++) {
        const endpoint_t *e = &n->endpoints[i];
        if (e->method_len == method_len && memcmp(e->method, method, method_len) == 0) {
            if (err && errlen)
                snprintf(err, errlen, "route %s %s conflicts with %s %s (same method and path shape)", method,
                         pattern, e->method, e->pattern);
            return TINE_ECONFLICT;
        }
    }

    char *method_copy = strdup(method);
    char *pattern_copy = strdup(pattern);
    endpoint_t *grown = realloc(n->endpoints, (n->nendpoints + 1) * sizeof(*grown));
    if (grown)
        n->endpoints = grown;
    if (method_copy == NULL || pattern_copy == NULL || grown == NULL) {
        free(method_copy);
        free(pattern_copy);
        return -ENOMEM;
    }
    /* Parse the table's own copy so capture names point into memory it owns. */
    parse_pattern(pattern_copy, names, &ncaptures, NULL, 0);
    endpoint_t *e = &n->endpoints[n->nendpoints++];
    memset(e, 0, sizeof(*e));
    e->method = method_copy;
    e->method_len = method_len;
    e->pattern = pattern_copy;
    e->data = data;
    memcpy(e->names, names, ncaptures * sizeof(*names));
    e->ncaptures = ncaptures;
    return 0;
}

/* --------------------------------------------------------------- matching */

typedef struct {
    const char *method;
    size_t method_len;
    int is_head;
    const char *path;
    size_t path_len;
    const char *values[MAX_CAPTURES];
    size_t value_lens[MAX_CAPTURES];
    size_t ncaptured;
    int path_matched;
} match_state_t;

/* Picks the endpoint of a node serving the request's method: exact, then
 * GET for HEAD, then ANY. NULL when none; notes the 405 case. */
static const endpoint_t *pick_endpoint(const route_node_t *n, match_state_t *st)
{
    const endpoint_t *get = NULL, *any = NULL;
    if (n->nendpoints == 0)
        return NULL;
    for (size_t i = 0; i < n->nendpoints; i++) {
        const endpoint_t *e = &n->endpoints[i];
        if (e->method_len == st->method_len && memcmp(e->method, st->method, st->method_len) == 0)
            return e;
        if (e->method_len == 3 && memcmp(e->method, "ANY", 3) == 0)
            any = e;
        else if (e->method_len == 3 && memcmp(e->method, "GET", 3) == 0)
            get = e;
    }
    if (st->is_head && get)
        return get;
    if (any)
        return any;
    st->path_matched = 1;
    return NULL;
}

/* Matches the path from `pos` (the index of the "/" before the next segment,
 * or path_len at the end) below node n, most specific branch first. */
static const endpoint_t *match_node(const route_node_t *n, match_state_t *st, size_t pos)
{
    if (pos == st->path_len)
        return pick_endpoint(n, st);
    size_t start = pos + 1;
    const char *seg = st->path + start;
    const char *slash = memchr(seg, '/', st->path_len - start);
    size_t end = slash ? (size_t)(slash - st->path) : st->path_len;
    size_t len = end - start;
    const endpoint_t *e;

    if (len > 0 && n->nliterals > 0) {
        const route_node_t *c = find_literal(n, seg, len, NULL);
        if (c && (e = match_node(c, st, end)) != NULL)
            return e;
    }
    if (len > 0 && n->param && st->ncaptured < MAX_CAPTURES) {
        st->values[st->ncaptured] = seg;
        st->value_lens[st->ncaptured] = len;
        st->ncaptured++;
        e = match_node(n->param, st, end);
        if (e)
            return e;
        st->ncaptured--;
    }
    if (len > 0 && n->rest && st->ncaptured < MAX_CAPTURES) {
        e = pick_endpoint(n->rest, st);
        if (e) {
            st->values[st->ncaptured] = seg;
            st->value_lens[st->ncaptured] = st->path_len - start;
            st->ncaptured++;
            return e;
        }
    }
    return NULL;
}

void *reg_route_table_match(const reg_route_table_t *t, const char *method, size_t method_len, const char *path,
                            size_t path_len, reg_route_param_t *params, size_t *nparams, int *path_matched)
{
    match_state_t st;
    st.method = method;
    st.method_len = method_len;
    st.is_head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    st.path = path;
    st.path_len = path_len;
    st.ncaptured = 0;
    st.path_matched = 0;

    const endpoint_t *e = NULL;
    if (path_len > 0 && path[0] == '/') {
        if (path_len == 1)
            e = pick_endpoint(&t->root, &st);
        else
            e = match_node(&t->root, &st, 0);
    }
    if (nparams)
        *nparams = 0;
    if (e == NULL) {
        if (path_matched)
            *path_matched = st.path_matched;
        return NULL;
    }
    if (path_matched)
        *path_matched = 1;
    size_t k = 0;
    for (size_t i = 0; i < e->ncaptures && i < st.ncaptured; i++) {
        if (e->names[i].name == NULL)
            continue;
        if (params) {
            params[k].name = e->names[i].name;
            params[k].name_len = e->names[i].name_len;
            params[k].value = st.values[i];
            params[k].value_len = st.value_lens[i];
        }
        k++;
    }
    if (nparams)
        *nparams = k;
    return e->data;
}
