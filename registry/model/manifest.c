/* The manifest parser. A manifest (tine.yaml, or tine.json) is read with
 * libyaml's event API into a small tree whose every node knows its line and
 * column; the tree is then validated into a reg_manifest_t. JSON files are
 * first checked by jansson (so YAML-only syntax is refused in a .json file),
 * then read by libyaml too, since JSON is YAML flow syntax: that is how
 * semantic errors in JSON get real positions.
 *
 * Every error is one line: "file:line:col: key.path: what was expected".
 * Fed by users: nothing here aborts, every allocation failure is -ENOMEM. */
#include "model_internal.h"
#include "tine_common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MANIFEST_MAX_BYTES (1024 * 1024)
#define MANIFEST_MAX_DEPTH 32
#define MANIFEST_MAX_NODES 100000
#define MANIFEST_MAX_FUNCTIONS 1000
#define MANIFEST_MAX_ROUTES 1000
#define MANIFEST_MAX_TRIGGERS 1000
#define MANIFEST_MAX_ENV 256
#define MANIFEST_MAX_OUTBOUND 256
#define MANIFEST_MAX_PATH_LEN 1024

#define MEMORY_MIN_MB 16
#define MEMORY_MAX_MB 10240
#define TIMEOUT_MAX_MS (15u * 60u * 1000u)

/* ------------------------------------------------------------------ tree */

typedef enum { NODE_SCALAR, NODE_MAPPING, NODE_SEQUENCE } node_kind_t;

typedef struct node {
    node_kind_t kind;
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based, in characters */
    char *text;    /* scalars: NUL-terminated (may hold other NULs) */
    size_t text_len;
    bool plain;          /* scalars: unquoted, so subject to typing */
    struct node **items; /* mapping: key, value, key, value...; sequence: values */
    size_t len;
    size_t cap;
} node_t;

/* Frees n and its whole subtree (NULL is fine). */
static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->len; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

/* The number of key/value pairs of a mapping (items alternate key, value). */
static size_t map_pairs(const node_t *map)
{
    return map->len / 2;
}

static const node_t *map_key(const node_t *map, size_t i)
{
    return map->items[2 * i];
}

static const node_t *map_value(const node_t *map, size_t i)
{
    return map->items[2 * i + 1];
}

/* Whether the key node reads `name` exactly. */
static bool key_is(const node_t *key, const char *name)
{
    return key->text_len == strlen(name) && memcmp(key->text, name, key->text_len) == 0;
}

/* Returns the value stored under `name` in a mapping node, or NULL. */
static const node_t *map_get(const node_t *map, const char *name)
{
    for (size_t i = 0; i < map_pairs(map); i++)
        if (key_is(map_key(map, i), name))
            return map_value(map, i);
    return NULL;
}

/* --------------------------------------------------------------- context */

typedef struct {
    const char *filename;
    char *err;
    size_t errlen;
    char path[2048]; /* key path of the node being looked at */
    size_t path_len;
    char shown[4][256]; /* scratch for quoted values in messages */
    unsigned shown_next;
    size_t nodes;
} ctx_t;

/* Writes `s` quoted and escaped into out: one printable line, at most ~48
 * characters of content, never cutting a UTF-8 sequence in two. */
static void quote_into(char *out, size_t outlen, const char *s, size_t len)
{
    size_t o = 0;
    const size_t limit = 48;
    size_t shown_chars = 0;
    if (outlen < 16)
        return;
    out[o++] = '\'';
    for (size_t i = 0; i < len && o + 12 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) != 0x80 && shown_chars++ >= limit) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (ch == '\'' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch == '\n') {
            memcpy(out + o, "\\n", 2);
            o += 2;
        } else if (ch == '\t') {
            memcpy(out + o, "\\t", 2);
            o += 2;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    /* Drop a UTF-8 sequence left incomplete by running out of room. */
    size_t lead = o;
    while (lead > 1 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > 1 && (unsigned char)out[lead - 1] >= 0xC0) {
        unsigned char b = (unsigned char)out[lead - 1];
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        if (o - (lead - 1) < need)
            o = lead - 1;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/* Quotes a string for a message; the result lives until four more calls. */
static const char *show_text(ctx_t *c, const char *s, size_t len)
{
    char *slot = c->shown[c->shown_next++ % 4];
    quote_into(slot, sizeof c->shown[0], s, len);
    return slot;
}

/* Whether n is a plain (unquoted) YAML null: empty, ~, null, Null or NULL. */
static bool scalar_is_null(const node_t *n)
{
    if (n->kind != NODE_SCALAR || !n->plain)
        return false;
    return n->text_len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* Returns 1 or 0 for a plain true/false (YAML 1.2 core spellings), else -1. */
static int scalar_bool(const node_t *n)
{
    if (n->kind != NODE_SCALAR || !n->plain)
        return -1;
    if (strcmp(n->text, "true") == 0 || strcmp(n->text, "True") == 0 || strcmp(n->text, "TRUE") == 0)
        return 1;
    if (strcmp(n->text, "false") == 0 || strcmp(n->text, "False") == 0 || strcmp(n->text, "FALSE") == 0)
        return 0;
    return -1;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* True when a plain scalar is a number in JSON's grammar. */
static bool scalar_is_number(const node_t *n)
{
    if (n->kind != NODE_SCALAR || !n->plain || n->text_len == 0)
        return false;
    const char *p = n->text, *end = n->text + n->text_len;
    if (*p == '-')
        p++;
    if (p == end || !is_digit(*p))
        return false;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    }
    return p == end;
}

/* Names the type of a node for "expected X, got Y" messages. */
static const char *describe(ctx_t *c, const node_t *n)
{
    if (n->kind == NODE_MAPPING)
        return "a mapping";
    if (n->kind == NODE_SEQUENCE)
        return "a sequence";
    if (scalar_is_null(n))
        return "nothing (null)";
    if (scalar_bool(n) >= 0)
        return n->text[0] == 't' || n->text[0] == 'T' ? "the boolean true" : "the boolean false";
    if (scalar_is_number(n)) {
        char *slot = c->shown[c->shown_next++ % 4];
        snprintf(slot, sizeof c->shown[0], "the number %.40s", n->text);
        return slot;
    }
    return show_text(c, n->text, n->text_len);
}

/* Formats the one-line error "file:line:col: path: message" and returns
 * TINE_EINVAL. Control characters that slipped in become '?'. */
static int vfail_at(ctx_t *c, unsigned line, unsigned col, const char *fmt, va_list ap)
{
    if (c->err == NULL || c->errlen == 0)
        return TINE_EINVAL;
    int n = snprintf(c->err, c->errlen, "%s:%u:%u: ", c->filename, line, col);
    size_t off = n < 0 ? 0 : (size_t)n;
    if (off < c->errlen && c->path_len > 0) {
        n = snprintf(c->err + off, c->errlen - off, "%s: ", c->path);
        off += n < 0 ? 0 : (size_t)n;
    }
    if (off < c->errlen)
        vsnprintf(c->err + off, c->errlen - off, fmt, ap);
    tine_one_line(c->err);
    return TINE_EINVAL;
}

/* vfail_at with arguments: the error at line:col; returns TINE_EINVAL. */
static int fail_at(ctx_t *c, unsigned line, unsigned col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(ctx_t *c, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* vfail_at at the position of node n; returns TINE_EINVAL. */
static int fail(ctx_t *c, const node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ctx_t *c, const node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, n->line, n->col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Whether ch may appear in a key shown without quotes in a key path: letters,
 * digits, _ and -. */
static bool is_plain_key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '_' || ch == '-';
}

/* Appends a mapping key to the key path ("a.b", or a["quoted key"] for keys
 * that would read ambiguously); returns the length to restore with path_pop. */
static size_t path_push_key(ctx_t *c, const char *key, size_t len)
{
    size_t saved = c->path_len;
    bool simple = len > 0 && len <= 64;
    for (size_t i = 0; simple && i < len; i++)
        simple = is_plain_key_char(key[i]);
    char quoted[256];
    if (!simple)
        quote_into(quoted, sizeof quoted, key, len);
    size_t room = sizeof c->path - c->path_len;
    int n;
    if (simple)
        n = snprintf(c->path + c->path_len, room, "%s%.*s", c->path_len ? "." : "", (int)len, key);
    else
        n = snprintf(c->path + c->path_len, room, "[%s]", quoted);
    if (n > 0)
        c->path_len = (size_t)n < room ? c->path_len + (size_t)n : sizeof c->path - 1;
    return saved;
}

/* Appends "[index]" to the key path; returns the length to restore with
 * path_pop. */
static size_t path_push_index(ctx_t *c, size_t index)
{
    size_t saved = c->path_len;
    size_t room = sizeof c->path - c->path_len;
    int n = snprintf(c->path + c->path_len, room, "[%zu]", index);
    if (n > 0)
        c->path_len = (size_t)n < room ? c->path_len + (size_t)n : sizeof c->path - 1;
    return saved;
}

/* Restores the key path to the length `saved` that a path_push_* returned. */
static void path_pop(ctx_t *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

/* ------------------------------------------------------- building the tree */

/* Converts a byte offset into a 1-based line and column (in characters). */
static void offset_to_position(const char *data, size_t len, size_t offset, unsigned *line, unsigned *col)
{
    unsigned l = 1, k = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (data[i] == '\n') {
            l++;
            k = 1;
        } else if (((unsigned char)data[i] & 0xC0) != 0x80) {
            k++;
        }
    }
    *line = l;
    *col = k;
}

/* Turns a libyaml failure into an error message (or -ENOMEM). */
static int yaml_failure(ctx_t *c, const yaml_parser_t *p, const char *data, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    /* The key path of a node still being read would mislead: leave it out. */
    path_pop(c, 0);
    const char *problem = p->problem ? p->problem : "unreadable document";
    if (p->error == YAML_READER_ERROR) {
        unsigned line, col;
        offset_to_position(data, len, p->problem_offset, &line, &col);
        if (p->problem_value < 0)
            return fail_at(c, line, col, "syntax error: %s", problem);
        return fail_at(c, line, col, "syntax error: %s (byte 0x%02x)", problem, (unsigned)(p->problem_value & 0xff));
    }
    unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
    const char *hint = "";
    if (p->context && strcmp(p->context, "while scanning an alias") == 0)
        hint = "; a value starting with '*' must be quoted, e.g. cron: '*/5 * * * *'";
    if (p->context)
        return fail_at(c, line, col, "syntax error: %s (%s started at line %u, column %u)%s", problem, p->context,
                       (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1, hint);
    return fail_at(c, line, col, "syntax error: %s%s", problem, hint);
}

/* qsort order of key nodes: by text, then by position (so repeats sort after
 * the first). */
static int key_compare(const void *a, const void *b)
{
    const node_t *x = *(const node_t *const *)a, *y = *(const node_t *const *)b;
    size_t n = x->text_len < y->text_len ? x->text_len : y->text_len;
    int r = memcmp(x->text, y->text, n);
    if (r != 0)
        return r;
    if (x->text_len != y->text_len)
        return x->text_len < y->text_len ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

/* Whether node a starts before node b in the file. */
static bool position_before(const node_t *a, const node_t *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* Rejects a mapping holding the same key twice, naming the earliest repeat
 * and where the key was first given. The path is the mapping's. */
static int check_duplicate_keys(ctx_t *c, const node_t *map)
{
    size_t n = map_pairs(map);
    if (n < 2)
        return 0;
    const node_t **keys = malloc(n * sizeof *keys);
    if (keys == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        keys[i] = map_key(map, i);
    qsort(keys, n, sizeof *keys, key_compare);
    const node_t *repeat = NULL, *first = NULL;
    for (size_t i = 0; i + 1 < n; i++) {
        /* Sorted by (text, position): the first of each run is the original. */
        size_t j = i;
        while (j + 1 < n && keys[j + 1]->text_len == keys[i]->text_len &&
               memcmp(keys[j + 1]->text, keys[i]->text, keys[i]->text_len) == 0)
            j++;
        if (j > i && (repeat == NULL || position_before(keys[i + 1], repeat))) {
            repeat = keys[i + 1];
            first = keys[i];
        }
        i = j;
    }
    free(keys);
    if (repeat == NULL)
        return 0;
    size_t saved = path_push_key(c, repeat->text, repeat->text_len);
    int rc = fail(c, repeat, "duplicate key (first given at line %u, column %u)", first->line, first->col);
    path_pop(c, saved);
    return rc;
}

typedef struct {
    node_t *node;
    size_t saved_path;
} frame_t;

/* Pushes the path component naming the next child of `parent`. */
static size_t path_push_child(ctx_t *c, const node_t *parent)
{
    if (parent == NULL)
        return c->path_len;
    if (parent->kind == NODE_SEQUENCE)
        return path_push_index(c, parent->len);
    if (parent->len % 2 == 1) {
        const node_t *key = parent->items[parent->len - 1];
        return path_push_key(c, key->text, key->text_len);
    }
    return c->path_len;
}

/* Appends child to the items of parent (growing them). Returns 0 or -ENOMEM
 * (child then stays the caller's). */
static int attach(node_t *parent, node_t *child)
{
    if (parent->len == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node_t **items = realloc(parent->items, cap * sizeof *items);
        if (items == NULL)
            return -ENOMEM;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->len++] = child;
    return 0;
}

/* Handles one libyaml event: creates and attaches nodes, tracks nesting and
 * the key path. Sets *done at the end of the stream. */
static int handle_event(ctx_t *c, const yaml_event_t *ev, frame_t *stack, size_t *depth, node_t **root,
                        int *documents, bool *done)
{
    node_t *parent = *depth ? stack[*depth - 1].node : NULL;
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    const unsigned char *tag = NULL;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++*documents > 1)
            return fail_at(c, line, col, "only one YAML document is allowed in a manifest");
        return 0;
    case YAML_ALIAS_EVENT: {
        size_t saved = path_push_child(c, parent);
        const char *name = (const char *)ev->data.alias.anchor;
        int rc = fail_at(c, line, col, "aliases (*%.40s) are not allowed in a manifest; write the value out", name);
        path_pop(c, saved);
        return rc;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        frame_t *top = &stack[*depth - 1];
        int rc = top->node->kind == NODE_MAPPING ? check_duplicate_keys(c, top->node) : 0;
        path_pop(c, top->saved_path);
        --*depth;
        return rc;
    }
    case YAML_SCALAR_EVENT:
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        tag = ev->data.mapping_start.tag;
        break;
    }

    /* A scalar, sequence or mapping starts here. */
    bool is_key = parent && parent->kind == NODE_MAPPING && parent->len % 2 == 0;
    size_t saved = path_push_child(c, parent);
    int rc = 0;
    if (tag != NULL) {
        rc = fail_at(c, line, col, "YAML tags (%s) are not supported; quote the value to make it a string",
                     show_text(c, (const char *)tag, strlen((const char *)tag)));
    } else if (is_key && ev->type != YAML_SCALAR_EVENT) {
        rc = fail_at(c, line, col, "mapping keys must be plain strings, not %s",
                     ev->type == YAML_MAPPING_START_EVENT ? "mappings" : "sequences");
    } else if (ev->type != YAML_SCALAR_EVENT && *depth >= MANIFEST_MAX_DEPTH) {
        rc = fail_at(c, line, col, "nested deeper than %d levels", MANIFEST_MAX_DEPTH);
    } else if (++c->nodes > MANIFEST_MAX_NODES) {
        rc = fail_at(c, line, col, "more than %d values in one manifest", MANIFEST_MAX_NODES);
    }
    if (rc != 0) {
        path_pop(c, saved);
        return rc;
    }

    node_t *n = calloc(1, sizeof *n);
    if (n == NULL) {
        path_pop(c, saved);
        return -ENOMEM;
    }
    n->line = line;
    n->col = col;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = NODE_SCALAR;
        n->text_len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->text = malloc(n->text_len + 1);
        if (n->text == NULL) {
            free(n);
            path_pop(c, saved);
            return -ENOMEM;
        }
        memcpy(n->text, ev->data.scalar.value, n->text_len);
        n->text[n->text_len] = '\0';
    } else {
        n->kind = ev->type == YAML_MAPPING_START_EVENT ? NODE_MAPPING : NODE_SEQUENCE;
    }

    if (parent == NULL) {
        *root = n;
    } else if (attach(parent, n) != 0) {
        node_free(n);
        path_pop(c, saved);
        return -ENOMEM;
    }
    if (n->kind == NODE_SCALAR) {
        path_pop(c, saved);
        return 0;
    }
    stack[*depth].node = n;
    stack[*depth].saved_path = saved;
    ++*depth;
    return 0;
}

/* Reads a YAML (or JSON-as-YAML) document into a positioned tree. On success
 * *root is the tree (never NULL); on failure nothing is kept. */
static int build_tree(ctx_t *c, const char *data, size_t len, node_t **root_out)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    frame_t stack[MANIFEST_MAX_DEPTH + 1];
    size_t depth = 0;
    node_t *root = NULL;
    int documents = 0, rc = 0;
    bool done = false;
    while (rc == 0 && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failure(c, &parser, data, len);
            break;
        }
        rc = handle_event(c, &ev, stack, &depth, &root, &documents, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    path_pop(c, 0);
    if (rc == 0 && root == NULL) {
        unsigned line, col;
        offset_to_position(data, len, len, &line, &col);
        rc = fail_at(c, line, col, "the manifest is empty; expected a mapping with at least app and functions");
    }
    if (rc != 0) {
        node_free(root);
        return rc;
    }
    *root_out = root;
    return 0;
}

/* The value of the four hex digits at p, or 0x110000 (no code point) when one
 * is not a hex digit. */
static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = tine_hex_digit((unsigned char)p[i]);
        if (d < 0)
            return 0x110000;
        v = v << 4 | (unsigned)d;
    }
    return v;
}

static bool is_json_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Rewrites a document jansson accepted so that libyaml reads the same values
 * at the same lines and columns (out has the same length as in): tabs become
 * spaces; surrogate-pair escapes, which libyaml refuses, become \UXXXXXXXX
 * padded with spaces after the closing quote; whitespace between a key and
 * its ':' moves after the ':' since YAML wants a key and its ':' on one line. */
static void json_as_yaml_flow(const char *in, size_t len, char *out)
{
    static const char hexdigits[] = "0123456789ABCDEF";
    size_t i = 0, o = 0;
    while (i < len) {
        if (in[i] != '"') {
            out[o++] = in[i] == '\t' ? ' ' : in[i];
            i++;
            continue;
        }
        size_t pad = 0;
        out[o++] = in[i++];
        while (i < len && in[i] != '"') {
            if (in[i] != '\\' || i + 1 >= len) {
                out[o++] = in[i++];
                continue;
            }
            if (in[i + 1] == 'u' && i + 12 <= len && in[i + 6] == '\\' && in[i + 7] == 'u') {
                unsigned hi = hex4(in + i + 2), lo = hex4(in + i + 8);
                if (hi >= 0xD800 && hi <= 0xDBFF && lo >= 0xDC00 && lo <= 0xDFFF) {
                    unsigned cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    out[o++] = '\\';
                    out[o++] = 'U';
                    for (int shift = 28; shift >= 0; shift -= 4)
                        out[o++] = hexdigits[(cp >> shift) & 0xF];
                    i += 12;
                    pad += 2;
                    continue;
                }
            }
            out[o++] = in[i++];
            out[o++] = in[i++];
        }
        if (i < len)
            out[o++] = in[i++];
        size_t j = i;
        while (j < len && is_json_space(in[j]))
            j++;
        bool key_then_colon = j > i && j < len && in[j] == ':';
        if (key_then_colon)
            out[o++] = ':';
        for (; pad > 0; pad--)
            out[o++] = ' ';
        if (key_then_colon) {
            for (; i < j; i++)
                out[o++] = in[i] == '\t' ? ' ' : in[i];
            i++;
        }
    }
}

/* Whether a failed jansson parse says it ran out of memory. */
static bool json_error_is_memory(const json_error_t *e)
{
    return json_error_code(e) == json_error_out_of_memory || e->text[0] == '\0';
}

/* Checks JSON syntax strictly with jansson, then reads the document into a
 * positioned tree through libyaml.
 *
 * jansson (2.14) reports some allocation failures as syntax errors (a
 * string it cannot copy is an "invalid token") and takes no allocator per
 * call; the process's allocator is not this parser's to replace. A syntax
 * error is a function of the bytes, a failed allocation is not: an error is
 * believed only when a second parse of the same bytes gives the same one,
 * and errno is not ENOMEM (malloc's failure) after it. Anything else is
 * -ENOMEM. The second parse runs only for documents with an error. */
static int build_tree_json(ctx_t *c, const char *data, size_t len, node_t **root)
{
    json_error_t jerr, again;
    json_t *doc = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        if (json_error_is_memory(&jerr))
            return -ENOMEM;
        errno = 0;
        doc = json_loadb(data, len, JSON_DECODE_ANY, &again);
        if (doc != NULL || errno == ENOMEM || json_error_is_memory(&again) || again.position != jerr.position ||
            strcmp(again.text, jerr.text) != 0) {
            json_decref(doc);
            return -ENOMEM;
        }
        unsigned line = jerr.line > 0 ? (unsigned)jerr.line : 1, col = jerr.column > 0 ? (unsigned)jerr.column : 1;
        if (jerr.line <= 0 && jerr.position > 0)
            offset_to_position(data, len, (size_t)jerr.position, &line, &col);
        return fail_at(c, line, col, "syntax error: %s", jerr.text);
    }
    json_decref(doc);
    char *flow = malloc(len ? len : 1);
    if (flow == NULL)
        return -ENOMEM;
    json_as_yaml_flow(data, len, flow);
    int rc = build_tree(c, flow, len, root);
    free(flow);
    return rc;
}

/* --------------------------------------------------------- typed scalars */

/* Gets the text of a node that must be a string (a quoted scalar, or a plain
 * one that does not read as null, a boolean or a number). `what` completes
 * "expected ...". */
static int expect_string(ctx_t *c, const node_t *n, const char *what, const char **text, size_t *len)
{
    if (n->kind != NODE_SCALAR || scalar_is_null(n) || scalar_bool(n) >= 0 || scalar_is_number(n)) {
        const char *hint = n->kind == NODE_SCALAR && !scalar_is_null(n) ? " (quote it to make it a string)" : "";
        return fail(c, n, "expected %s, got %s%s", what, describe(c, n), hint);
    }
    if (memchr(n->text, '\0', n->text_len) != NULL)
        return fail(c, n, "expected %s without NUL characters", what);
    *text = n->text;
    *len = n->text_len;
    return 0;
}

/* A NUL-terminated copy of the len bytes at s, or NULL without memory. */
static char *copy_text(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Reads an integer in [min, max]. Accepts any JSON number of integral value
 * (128, 1.28e2), as JSON Schema's "integer" does. */
static int expect_uint(ctx_t *c, const node_t *n, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!scalar_is_number(n))
        return fail(c, n, "expected an integer %u..%u, got %s", min, max, describe(c, n));
    bool simple_integer = strspn(n->text + (n->text[0] == '-'), "0123456789") + (n->text[0] == '-') == n->text_len;
    if (simple_integer) {
        if (n->text[0] == '-' || n->text_len > 10 || strtoull(n->text, NULL, 10) < min ||
            strtoull(n->text, NULL, 10) > max)
            return fail(c, n, "%.40s is out of range %u..%u", n->text, min, max);
        *out = (uint32_t)strtoull(n->text, NULL, 10);
        return 0;
    }
    /* A fraction or an exponent: fine when the value is integral. */
    double v = strtod(n->text, NULL);
    bool integral = v > 1e15 || v < -1e15 || (double)(long long)v == v;
    if (!integral)
        return fail(c, n, "expected an integer %u..%u, got %.40s", min, max, n->text);
    if (!(v >= (double)min && v <= (double)max))
        return fail(c, n, "%.40s is out of range %u..%u", n->text, min, max);
    *out = (uint32_t)v;
    return 0;
}

/* Reads the boolean n into *out, or fails naming what n is. */
static int expect_bool(ctx_t *c, const node_t *n, bool *out)
{
    int b = scalar_bool(n);
    if (b < 0)
        return fail(c, n, "expected true or false, got %s", describe(c, n));
    *out = b == 1;
    return 0;
}

/* Parses "250ms", "3s", "2m", "1h", "1m30s" into milliseconds: one or more
 * <digits><unit> with units h, m, s, ms each at most once, largest first.
 * Returns TINE_EINVAL on anything else, including overflow. */
int reg_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const uint64_t unit_ms[] = {1, 1000, 60000, 3600000}; /* ms s m h */
    if (s == NULL || out_ms == NULL || *s == '\0')
        return TINE_EINVAL;
    uint64_t total = 0;
    int last_rank = 4;
    const char *p = s;
    while (*p) {
        if (!is_digit(*p))
            return TINE_EINVAL;
        uint64_t v = 0;
        for (; is_digit(*p); p++) {
            if (v > (UINT64_MAX - 9) / 10)
                return TINE_EINVAL;
            v = v * 10 + (uint64_t)(*p - '0');
        }
        int rank;
        if (p[0] == 'm' && p[1] == 's') {
            rank = 0;
            p += 2;
        } else if (*p == 's') {
            rank = 1;
            p++;
        } else if (*p == 'm') {
            rank = 2;
            p++;
        } else if (*p == 'h') {
            rank = 3;
            p++;
        } else {
            return TINE_EINVAL;
        }
        if (rank >= last_rank)
            return TINE_EINVAL;
        last_rank = rank;
        if (v > UINT64_MAX / unit_ms[rank] || total > UINT64_MAX - v * unit_ms[rank])
            return TINE_EINVAL;
        total += v * unit_ms[rank];
    }
    *out_ms = total;
    return 0;
}

#define DURATION_EXPECTED "expected a duration such as 500ms or 3s"

/* Reads a function timeout: a duration string within 1ms..15m. */
static int expect_timeout(ctx_t *c, const node_t *n, uint32_t *out)
{
    if (scalar_is_number(n))
        return fail(c, n, DURATION_EXPECTED ", got the bare number %.40s (add a unit)", n->text);
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a duration such as 500ms or 3s", &text, &len);
    if (rc != 0)
        return rc;
    uint64_t ms;
    if (reg_parse_duration_ms(text, &ms) != 0)
        return fail(c, n, DURATION_EXPECTED " (units h, m, s, ms), got %s", show_text(c, text, len));
    if (ms < 1 || ms > TIMEOUT_MAX_MS)
        return fail(c, n, "%s is out of range 1ms..15m", show_text(c, text, len));
    *out = (uint32_t)ms;
    return 0;
}

#define MEMORY_EXPECTED "expected megabytes as an integer 16..10240 or a size such as 128Mi, 512MB or 1Gi"

typedef struct {
    const char *unit;
    uint64_t mul;
} size_unit_t;

/* Reads "<digits><unit>" (no leading zero) with one of `units`: the number
 * times the unit's multiplier in *out, UINT64_MAX when it overflows. False
 * when the text is not of that form. */
static bool read_sized(const char *text, const size_unit_t *units, size_t nunits, uint64_t *out)
{
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || (text[0] == '0' && digits > 1))
        return false;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(text + digits, units[i].unit) != 0)
            continue;
        uint64_t v = digits > 9 ? UINT64_MAX : strtoull(text, NULL, 10);
        *out = v > UINT64_MAX / units[i].mul ? UINT64_MAX : v * units[i].mul;
        return true;
    }
    return false;
}

/* Reads a memory size in MB: an integer, or digits with Mi/MB/Gi/GB (MB is
 * taken as MiB, GB as GiB), within 16..10240 MB. */
static int expect_memory(ctx_t *c, const node_t *n, uint32_t *out)
{
    if (scalar_is_number(n))
        return expect_uint(c, n, MEMORY_MIN_MB, MEMORY_MAX_MB, out);
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "megabytes as an integer 16..10240 or a size such as 128Mi or 1Gi", &text, &len);
    if (rc != 0)
        return rc;
    static const size_unit_t units[] = {{"Mi", 1}, {"MB", 1}, {"Gi", 1024}, {"GB", 1024}};
    uint64_t mb;
    if (!read_sized(text, units, sizeof units / sizeof units[0], &mb))
        return fail(c, n, MEMORY_EXPECTED ", got %s", show_text(c, text, len));
    if (mb < MEMORY_MIN_MB || mb > MEMORY_MAX_MB)
        return fail(c, n, "%s is out of range 16Mi..10240Mi (10Gi)", show_text(c, text, len));
    *out = (uint32_t)mb;
    return 0;
}

#define MAX_BODY_EXPECTED "expected bytes as an integer 0..6291456 or a size such as 512Ki or 6Mi"

/* Reads a request body limit in bytes: an integer, or digits with Ki/KiB or
 * Mi/MiB, at most REG_MAX_BODY_LIMIT (what the wire carries to a sandbox). */
static int expect_max_body(ctx_t *c, const node_t *n, uint32_t *out)
{
    if (scalar_is_number(n))
        return expect_uint(c, n, 0, REG_MAX_BODY_LIMIT, out);
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "bytes as an integer 0..6291456 or a size such as 512Ki or 6Mi", &text, &len);
    if (rc != 0)
        return rc;
    static const size_unit_t units[] = {{"Ki", 1024}, {"KiB", 1024}, {"Mi", 1024 * 1024}, {"MiB", 1024 * 1024}};
    uint64_t bytes;
    if (!read_sized(text, units, sizeof units / sizeof units[0], &bytes))
        return fail(c, n, MAX_BODY_EXPECTED ", got %s", show_text(c, text, len));
    if (bytes > REG_MAX_BODY_LIMIT)
        return fail(c, n, "%s is over 6Mi, the largest body a function can receive", show_text(c, text, len));
    *out = (uint32_t)bytes;
    return 0;
}

const char *reg_runtime_name(reg_runtime_t r)
{
    return r == REG_RUNTIME_EXEC ? "exec" : r == REG_RUNTIME_PYTHON ? "python" : r == REG_RUNTIME_NODE ? "node" : "lua";
}

/* Reads "lua", "python", "node" or "exec" into *out, or fails naming what n is. */
static int expect_runtime(ctx_t *c, const node_t *n, reg_runtime_t *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "lua, python, node or exec", &text, &len);
    if (rc != 0)
        return rc;
    if (strcmp(text, "lua") == 0)
        *out = REG_RUNTIME_LUA;
    else if (strcmp(text, "python") == 0)
        *out = REG_RUNTIME_PYTHON;
    else if (strcmp(text, "node") == 0)
        *out = REG_RUNTIME_NODE;
    else if (strcmp(text, "exec") == 0)
        *out = REG_RUNTIME_EXEC;
    else
        return fail(c, n, "expected lua, python, node or exec, got %s", show_text(c, text, len));
    return 0;
}

/* Checks every key of a mapping is one of `allowed`, naming the first that
 * is not and listing those that are. */
static int check_keys(ctx_t *c, const node_t *map, const char *const *allowed, size_t nallowed)
{
    for (size_t i = 0; i < map_pairs(map); i++) {
        const node_t *key = map_key(map, i);
        bool known = false;
        for (size_t k = 0; k < nallowed && !known; k++)
            known = key_is(key, allowed[k]);
        if (known)
            continue;
        char list[256];
        size_t off = 0;
        for (size_t k = 0; k < nallowed && off < sizeof list; k++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", k ? ", " : "", allowed[k]);
        size_t saved = path_push_key(c, key->text, key->text_len);
        int rc = fail(c, key, "unknown key; expected one of %s", list);
        path_pop(c, saved);
        return rc;
    }
    return 0;
}

/* Fails, saying `what` was expected, unless n is a mapping. */
static int expect_mapping(ctx_t *c, const node_t *n, const char *what)
{
    if (n->kind != NODE_MAPPING)
        return fail(c, n, "expected %s, got %s", what, describe(c, n));
    return 0;
}

/* A value reader for read_field: parses node `n` into `out`. */
typedef int (*field_reader_t)(ctx_t *c, const node_t *n, void *out);

/* Reads map[key] with `reader` when present, with the key on the path.
 * Stores the value node in *found (NULL when absent) if found is given. */
static int read_field(ctx_t *c, const node_t *map, const char *key, field_reader_t reader, void *out,
                      const node_t **found)
{
    const node_t *n = map_get(map, key);
    if (found)
        *found = n;
    if (n == NULL)
        return 0;
    size_t saved = path_push_key(c, key, strlen(key));
    int rc = reader(c, n, out);
    path_pop(c, saved);
    return rc;
}

/* Fails at the mapping, naming the required key it lacks. */
static int missing_key(ctx_t *c, const node_t *map, const char *key)
{
    return fail(c, map, "missing required key '%s'", key);
}

/* Field readers: each adapts one typed parser to field_reader_t. */

static int read_runtime(ctx_t *c, const node_t *n, void *out)
{
    return expect_runtime(c, n, out);
}

static int read_memory(ctx_t *c, const node_t *n, void *out)
{
    return expect_memory(c, n, out);
}

static int read_timeout(ctx_t *c, const node_t *n, void *out)
{
    return expect_timeout(c, n, out);
}

static int read_max_body(ctx_t *c, const node_t *n, void *out)
{
    return expect_max_body(c, n, out);
}

/* concurrency: an integer 1..1000. */
static int read_concurrency(ctx_t *c, const node_t *n, void *out)
{
    return expect_uint(c, n, 1, 1000, out);
}

/* warm: an integer 0..1000 (checked against concurrency later). */
static int read_warm(ctx_t *c, const node_t *n, void *out)
{
    return expect_uint(c, n, 0, 1000, out);
}

/* attempts of a trigger: an integer 1..100. */
static int read_attempts(ctx_t *c, const node_t *n, void *out)
{
    return expect_uint(c, n, 1, 100, out);
}

static int read_bool(ctx_t *c, const node_t *n, void *out)
{
    return expect_bool(c, n, out);
}

/* Copies any string (not null, a boolean or a number) into a new string. */
static int read_any_string(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a string", &text, &len);
    if (rc != 0)
        return rc;
    char *copy = copy_text(text, len);
    if (copy == NULL)
        return -ENOMEM;
    *(char **)out = copy;
    return 0;
}

/* ------------------------------------------------------------ app, host */

static bool is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || is_digit(ch);
}

/* A name of [a-z0-9-], 1..63, starting with a letter or digit, no trailing
 * '-': what app and namespace names are. `example` goes into the message of
 * a value that is not a string. */
static int read_dns_label(ctx_t *c, const node_t *n, const char *example, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, example, &text, &len);
    if (rc != 0)
        return rc;
    const char *q = show_text(c, text, len);
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum(text[i]) && text[i] != '-')
            return fail(c, n, "%s may hold only lowercase letters, digits and '-'", q);
    if (len == 0 || len > 63)
        return fail(c, n, "%s must be 1..63 characters long, not %zu", q, len);
    if (text[0] == '-')
        return fail(c, n, "%s must start with a letter or digit", q);
    if (text[len - 1] == '-')
        return fail(c, n, "%s must not end with '-'", q);
    return (*(char **)out = copy_text(text, len)) ? 0 : -ENOMEM;
}

static int read_app_name(ctx_t *c, const node_t *n, void *out)
{
    return read_dns_label(c, n, "an app name such as my-shop", out);
}

static int read_namespace(ctx_t *c, const node_t *n, void *out)
{
    return read_dns_label(c, n, "a namespace name such as team-a", out);
}

/* auth: public (the default) or key (callers need an API key). */
static int read_auth(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "public or key", &text, &len);
    if (rc != 0)
        return rc;
    if (len == 6 && memcmp(text, "public", 6) == 0)
        *(reg_auth_t *)out = REG_AUTH_PUBLIC;
    else if (len == 3 && memcmp(text, "key", 3) == 0)
        *(reg_auth_t *)out = REG_AUTH_KEY;
    else
        return fail(c, n, "expected public or key, got %s", show_text(c, text, len));
    return 0;
}

/* What is wrong with a lowercase DNS name (labels of [a-z0-9-], 1..63, no
 * '-' at either end, separated by single dots, 253 characters at most), or
 * NULL when nothing is. */
static const char *hostname_problem(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum(text[i]) && text[i] != '-' && text[i] != '.')
            return "is not a valid hostname: only lowercase letters, digits, '-' and '.' are allowed";
    if (len == 0 || len > 253)
        return "must be 1..253 characters long";
    size_t label_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        size_t label_len = i - label_start;
        if (label_len == 0)
            return "is not a valid hostname: empty label";
        if (label_len > 63)
            return "is not a valid hostname: a label is longer than 63 characters";
        if (text[label_start] == '-' || text[i - 1] == '-')
            return "is not a valid hostname: a label starts or ends with '-'";
        label_start = i + 1;
    }
    return NULL;
}

/* host: a lowercase DNS name. */
static int read_host(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a hostname such as shop.example.com", &text, &len);
    if (rc != 0)
        return rc;
    const char *problem = hostname_problem(text, len);
    if (problem != NULL)
        return fail(c, n, "%s %s", show_text(c, text, len), problem);
    return (*(char **)out = copy_text(text, len)) ? 0 : -ENOMEM;
}

/* ------------------------------------------------------- allow_outbound */

/* One allow_outbound entry, stored in lower case: "*", "*.example.com", a
 * host name, an IPv4 address, or an IPv6 address (brackets dropped). */
static int read_outbound_host(ctx_t *c, const node_t *n, char **out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a host such as api.example.com, \"*.example.com\" or \"*\"", &text, &len);
    if (rc != 0)
        return rc;
    const char *q = show_text(c, text, len);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    char *host = copy_text(text, len);
    if (host == NULL)
        return -ENOMEM;
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *problem = NULL;
    if (memchr(host, ':', len) != NULL) {
        unsigned char addr[16];
        if (inet_pton(AF_INET6, host, addr) != 1)
            problem = "is not a host: give a host name or an IP address without a port or scheme";
    } else if (strcmp(host, "*") != 0) {
        size_t skip = len > 2 && host[0] == '*' && host[1] == '.' ? 2 : 0; /* "*.domain" */
        if (strchr(host + skip, '*') != NULL)
            problem = "may use '*' only as a whole first label, as in \"*.example.com\"";
        else if (strspn(host + skip, "abcdefghijklmnopqrstuvwxyz0123456789-.") != len - skip)
            problem = "is not a host name: only letters, digits, '-' and '.' are allowed (no scheme, port or path)";
        else
            problem = hostname_problem(host + skip, len - skip);
    }
    if (problem != NULL) {
        free(host);
        return fail(c, n, "%s %s", q, problem);
    }
    *out = host;
    return 0;
}

/* allow_outbound: the hosts tine.http may reach (a sequence, maybe empty). */
static int read_allow_outbound(ctx_t *c, const node_t *n, void *out)
{
    reg_manifest_t *m = out;
    if (n->kind != NODE_SEQUENCE)
        return fail(c, n, "expected a list of hosts such as [api.example.com, \"*.example.org\"], got %s",
                    describe(c, n));
    if (n->len > MANIFEST_MAX_OUTBOUND)
        return fail(c, n, "%zu hosts; at most %d are allowed", n->len, MANIFEST_MAX_OUTBOUND);
    m->allow_outbound_set = true;
    if (n->len == 0)
        return 0;
    m->allow_outbound = calloc(n->len, sizeof(char *));
    if (m->allow_outbound == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n->len && rc == 0; i++) {
        size_t saved = path_push_index(c, i);
        rc = read_outbound_host(c, n->items[i], &m->allow_outbound[i]);
        path_pop(c, saved);
        if (rc == 0)
            m->allow_outbound_len++;
    }
    return rc;
}

/* ------------------------------------------------------------------ env */

/* Frees the len entries of env and the array. */
static void env_free(reg_kv_t *env, size_t len)
{
    for (size_t i = 0; env && i < len; i++) {
        free(env[i].key);
        free(env[i].value);
    }
    free(env);
}

/* qsort order of env entries: by name. */
static int kv_compare(const void *a, const void *b)
{
    return strcmp(((const reg_kv_t *)a)->key, ((const reg_kv_t *)b)->key);
}

/* Whether the len bytes at s make an environment variable name: letters,
 * digits and _, not starting with a digit. */
static bool is_env_name(const char *s, size_t len)
{
    if (len == 0 || is_digit(s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_plain_key_char(s[i]) || s[i] == '-')
            return false;
    return true;
}

typedef struct {
    reg_kv_t *kv;
    size_t len;
} env_list_t;

/* Reads an env mapping NAME: scalar into a list sorted by name; values are
 * kept as written (numbers and booleans too). */
static int read_env(ctx_t *c, const node_t *n, void *out)
{
    env_list_t *list = out;
    int rc = expect_mapping(c, n, "a mapping of NAME: value");
    if (rc != 0)
        return rc;
    size_t count = map_pairs(n);
    if (count > MANIFEST_MAX_ENV)
        return fail(c, n, "%zu variables; at most %d are allowed", count, MANIFEST_MAX_ENV);
    reg_kv_t *kv = calloc(count ? count : 1, sizeof *kv);
    if (kv == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const node_t *key = map_key(n, i), *value = map_value(n, i);
        size_t saved = path_push_key(c, key->text, key->text_len);
        if (!is_env_name(key->text, key->text_len))
            rc = fail(c, key, "variable names must match [A-Za-z_][A-Za-z0-9_]*");
        else if (value->kind != NODE_SCALAR || scalar_is_null(value))
            rc = fail(c, value, "expected a string, number or boolean, got %s", describe(c, value));
        else if (memchr(value->text, '\0', value->text_len) != NULL)
            rc = fail(c, value, "expected a value without NUL characters");
        path_pop(c, saved);
        if (rc == 0) {
            kv[i].key = copy_text(key->text, key->text_len);
            kv[i].value = copy_text(value->text, value->text_len);
            if (kv[i].key == NULL || kv[i].value == NULL)
                rc = -ENOMEM;
        }
        if (rc != 0) {
            env_free(kv, count);
            return rc;
        }
    }
    qsort(kv, count, sizeof *kv, kv_compare);
    list->kv = kv;
    list->len = count;
    return 0;
}

/* Merges two sorted env lists into a new sorted list of copies; on equal
 * names the `over` value wins. */
static int env_merge(const reg_kv_t *base, size_t nbase, const reg_kv_t *over, size_t nover, reg_kv_t **out,
                     size_t *out_len)
{
    reg_kv_t *kv = calloc(nbase + nover ? nbase + nover : 1, sizeof *kv);
    if (kv == NULL)
        return -ENOMEM;
    size_t i = 0, j = 0, k = 0;
    while (i < nbase || j < nover) {
        const reg_kv_t *pick;
        if (j == nover) {
            pick = &base[i++];
        } else if (i == nbase) {
            pick = &over[j++];
        } else {
            int cmp = strcmp(base[i].key, over[j].key);
            if (cmp < 0) {
                pick = &base[i++];
            } else {
                pick = &over[j++];
                if (cmp == 0)
                    i++;
            }
        }
        kv[k].key = copy_text(pick->key, strlen(pick->key));
        kv[k].value = copy_text(pick->value, strlen(pick->value));
        k++;
        if (kv[k - 1].key == NULL || kv[k - 1].value == NULL) {
            env_free(kv, k);
            return -ENOMEM;
        }
    }
    *out = kv;
    *out_len = k;
    return 0;
}

/* ------------------------------------------------------------ functions */

typedef struct {
    reg_runtime_t runtime;
    uint32_t memory_mb;
    uint32_t timeout_ms;
    uint32_t concurrency;
    uint32_t warm;
    uint32_t max_body;
} fn_settings_t;

static const char *const settings_keys[] = {"runtime", "memory", "timeout", "concurrency", "warm", "max_body"};
static const char *const function_keys[] = {"handler", "runtime", "memory",   "timeout", "concurrency",
                                            "warm",    "env",     "network",  "max_body", "auth",
                                            "group"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Reads runtime, memory, timeout, concurrency, warm and max_body over `s`,
 * then checks warm <= concurrency; `defaults_name` says where inherited
 * values came from. */
static int read_settings(ctx_t *c, const node_t *map, fn_settings_t *s, const char *inherited_from)
{
    const node_t *conc_node, *warm_node;
    int rc;
    if ((rc = read_field(c, map, "runtime", read_runtime, &s->runtime, NULL)) != 0 ||
        (rc = read_field(c, map, "memory", read_memory, &s->memory_mb, NULL)) != 0 ||
        (rc = read_field(c, map, "timeout", read_timeout, &s->timeout_ms, NULL)) != 0 ||
        (rc = read_field(c, map, "concurrency", read_concurrency, &s->concurrency, &conc_node)) != 0 ||
        (rc = read_field(c, map, "warm", read_warm, &s->warm, &warm_node)) != 0 ||
        (rc = read_field(c, map, "max_body", read_max_body, &s->max_body, NULL)) != 0)
        return rc;
    if (s->warm <= s->concurrency)
        return 0;
    size_t saved;
    if (warm_node != NULL) {
        saved = path_push_key(c, "warm", 4);
        rc = fail(c, warm_node, "%u exceeds concurrency %u%s; warm must be 0..concurrency", s->warm, s->concurrency,
                  conc_node ? "" : inherited_from);
    } else {
        saved = path_push_key(c, "concurrency", 11);
        rc = fail(c, conc_node, "%u is below warm %u%s; warm must be 0..concurrency", s->concurrency, s->warm,
                  inherited_from);
    }
    path_pop(c, saved);
    return rc;
}

/* defaults: a mapping of function settings, the base of every function's own. */
static int read_defaults(ctx_t *c, const node_t *n, void *out)
{
    int rc = expect_mapping(c, n, "a mapping of runtime, memory, timeout, concurrency, warm, max_body");
    if (rc == 0)
        rc = check_keys(c, n, settings_keys, COUNT(settings_keys));
    if (rc == 0)
        rc = read_settings(c, n, out, " (the built-in default)");
    return rc;
}

/* Whether ch may start a Lua identifier: a letter or _. */
static bool is_ident_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

/* Whether the len bytes at s make a Lua identifier (keywords included). */
static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || !is_ident_start(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_ident_start(s[i]) && !is_digit(s[i]))
            return false;
    return true;
}

/* Whether the len bytes at s are one of the words in `words` (n of them). */
static bool is_one_of(const char *s, size_t len, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
            return true;
    return false;
}

/* Whether the len bytes at s are one of Lua's reserved words. */
static bool is_lua_keyword(const char *s, size_t len)
{
    static const char *const keywords[] = {"and",   "break", "do",     "else", "elseif", "end",   "false", "for",
                                           "function", "goto", "if",   "in",   "local",  "nil",   "not",   "or",
                                           "repeat", "return", "then", "true", "until",  "while"};
    return is_one_of(s, len, keywords, COUNT(keywords));
}

/* Whether the len bytes at s are one of Python's keywords (not the soft
 * ones: match, case, type and _ are names). */
static bool is_python_keyword(const char *s, size_t len)
{
    static const char *const keywords[] = {
        "False", "None",   "True",  "and",    "as",       "assert", "async",  "await", "break",
        "class", "continue", "def", "del",    "elif",     "else",   "except", "finally", "for",
        "from",  "global", "if",    "import", "in",       "is",     "lambda", "nonlocal", "not",
        "or",    "pass",   "raise", "return", "try",      "while",  "with",   "yield"};
    return is_one_of(s, len, keywords, COUNT(keywords));
}

/* Whether the file path (len bytes, already a sound relative path) names a
 * Python module the zygote can import by its dotted name: every directory
 * and the name before ".py" an identifier that is not a keyword. */
static bool is_python_module_path(const char *s, size_t len)
{
    size_t start = 0;
    len -= 3; /* ".py" */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        if (!is_identifier(s + start, i - start) || is_python_keyword(s + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

/* Checks a bundle-relative file path: relative, '/'-separated, no empty,
 * "." or ".." segments, no backslashes or control characters. Returns NULL
 * when fine, else what is wrong. */
static const char *relative_path_problem(const char *s, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > MANIFEST_MAX_PATH_LEN)
        return "is longer than 1024 characters";
    if (s[0] == '/')
        return "must be relative to the bundle root (no leading '/')";
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            return "must use '/' to separate directories, not backslashes";
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "must not contain control characters";
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        size_t seg = i - start;
        if (seg == 0)
            return "must not contain empty segments ('//' or a trailing '/')";
        if (seg == 1 && s[start] == '.')
            return "must not contain '.' segments";
        if (seg == 2 && s[start] == '.' && s[start + 1] == '.')
            return "must not contain '..' segments";
        start = i + 1;
    }
    return NULL;
}

/* Whether the file name (len bytes) ends in a Node module's extension:
 * .js, .mjs or .cjs. */
static bool is_node_file(const char *s, size_t len)
{
    static const char *const exts[] = {".js", ".mjs", ".cjs"};
    for (size_t i = 0; i < COUNT(exts); i++) {
        size_t n = strlen(exts[i]);
        if (len > n && memcmp(s + len - n, exts[i], n) == 0)
            return true;
    }
    return false;
}

/* Reads `handler` for the given runtime and fills handler, handler_file and
 * handler_export: lua wants path/file.lua#export, python path/file.py#export
 * (an importable module path), node path/file.js#export (.mjs, .cjs too;
 * the export may be `default`), exec a path without '#'. */
static int read_handler(ctx_t *c, const node_t *n, reg_function_t *f)
{
    const char *text;
    size_t len;
    bool lua = f->runtime == REG_RUNTIME_LUA, python = f->runtime == REG_RUNTIME_PYTHON;
    bool node = f->runtime == REG_RUNTIME_NODE;
    int rc = expect_string(c, n,
                           lua      ? "a handler such as src/items.lua#list"
                           : python ? "a handler such as src/app.py#handle"
                           : node   ? "a handler such as src/app.js#handle"
                                    : "a handler such as scripts/run.sh",
                           &text, &len);
    if (rc != 0)
        return rc;
    const char *q = show_text(c, text, len);
    const char *hash = memchr(text, '#', len);
    size_t file_len = hash ? (size_t)(hash - text) : len;
    if (node) {
        if (hash == NULL)
            return fail(c, n, "expected FILE.js#EXPORT such as src/app.js#handle, got %s", q);
        const char *export = hash + 1;
        size_t export_len = len - file_len - 1;
        if (!is_node_file(text, file_len))
            return fail(c, n, "the file of a node handler must end in .js, .mjs or .cjs, got %s", q);
        if (!is_identifier(export, export_len))
            return fail(c, n, "%s: the export after '#' must be a JavaScript identifier ([A-Za-z_][A-Za-z0-9_]*)", q);
        const char *problem = relative_path_problem(text, file_len);
        if (problem)
            return fail(c, n, "%s: the handler path %s", q, problem);
        f->handler_export = copy_text(export, export_len);
        if (f->handler_export == NULL)
            return -ENOMEM;
    } else if (lua || python) {
        const char *ext = lua ? ".lua" : ".py", *lang = lua ? "Lua" : "Python";
        size_t ext_len = strlen(ext);
        if (hash == NULL)
            return fail(c, n, "expected FILE%s#EXPORT such as %s, got %s", ext,
                        lua ? "src/items.lua#list" : "src/app.py#handle", q);
        const char *export = hash + 1;
        size_t export_len = len - file_len - 1;
        if (file_len < ext_len || memcmp(text + file_len - ext_len, ext, ext_len) != 0)
            return fail(c, n, "the file of a %s handler must end in %s, got %s", lua ? "lua" : "python", ext, q);
        if (!is_identifier(export, export_len))
            return fail(c, n, "%s: the export after '#' must be a %s identifier ([A-Za-z_][A-Za-z0-9_]*)", q, lang);
        if (lua ? is_lua_keyword(export, export_len) : is_python_keyword(export, export_len))
            return fail(c, n, "%s: the export after '#' is a %s keyword", q, lang);
        const char *problem = relative_path_problem(text, file_len);
        if (problem)
            return fail(c, n, "%s: the handler path %s", q, problem);
        if (python && !is_python_module_path(text, file_len))
            return fail(c, n,
                        "%s: the file of a python handler must be a module path: each directory and the name "
                        "before .py a Python identifier ([A-Za-z_][A-Za-z0-9_]*, not a keyword)",
                        q);
        f->handler_export = copy_text(export, export_len);
        if (f->handler_export == NULL)
            return -ENOMEM;
    } else {
        if (hash != NULL)
            return fail(c, n, "an exec handler is a file path without '#', got %s", q);
        const char *problem = relative_path_problem(text, len);
        if (problem)
            return fail(c, n, "%s: the handler path %s", q, problem);
    }
    f->handler = copy_text(text, len);
    f->handler_file = copy_text(text, file_len);
    return f->handler && f->handler_file ? 0 : -ENOMEM;
}

/* Whether the len bytes at s make a function name: 1 to 64 letters, digits, _
 * and -. */
static bool is_function_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_plain_key_char(s[i]))
            return false;
    return true;
}

/* group: NAME, a co-location group (a function name's alphabet). */
static int read_group(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a group name such as orders", &text, &len);
    if (rc != 0)
        return rc;
    if (!is_function_name(text, len))
        return fail(c, n, "group names must be 1..64 letters, digits, '_' or '-', got %s", show_text(c, text, len));
    *(char **)out = copy_text(text, len);
    return *(char **)out ? 0 : -ENOMEM;
}

/* Reads one function declaration into f (name already set) with the
 * defaults and the app env underneath. */
static int read_function(ctx_t *c, const node_t *n, const fn_settings_t *defaults, const env_list_t *app_env,
                         reg_function_t *f)
{
    int rc = expect_mapping(c, n, "a mapping with at least handler, e.g. { handler: src/items.lua#list }");
    if (rc == 0)
        rc = check_keys(c, n, function_keys, COUNT(function_keys));
    if (rc != 0)
        return rc;
    fn_settings_t s = *defaults;
    if ((rc = read_settings(c, n, &s, " (from defaults)")) != 0)
        return rc;
    f->runtime = s.runtime;
    f->memory_mb = s.memory_mb;
    f->timeout_ms = s.timeout_ms;
    f->concurrency = s.concurrency;
    f->warm = s.warm;
    f->max_body = s.max_body;

    const node_t *network_node;
    if ((rc = read_field(c, n, "network", read_bool, &f->network, &network_node)) != 0 ||
        (rc = read_field(c, n, "auth", read_auth, &f->auth, NULL)) != 0)
        return rc;
    if (f->network && f->runtime != REG_RUNTIME_EXEC) {
        size_t saved = path_push_key(c, "network", 7);
        rc = fail(c, network_node, "network access applies only to runtime exec; this function's runtime is %s",
                  reg_runtime_name(f->runtime));
        path_pop(c, saved);
        return rc;
    }
    const node_t *group_node;
    if ((rc = read_field(c, n, "group", read_group, &f->group, &group_node)) != 0)
        return rc;
    if (f->group != NULL && f->runtime != REG_RUNTIME_LUA) {
        size_t saved = path_push_key(c, "group", 5);
        rc = fail(c, group_node,
                  "co-location groups hold runtime lua functions only; function %s has runtime %s (drop group: or "
                  "make it runtime: lua)",
                  f->name, reg_runtime_name(f->runtime));
        path_pop(c, saved);
        return rc;
    }

    const node_t *handler = map_get(n, "handler");
    if (handler == NULL)
        return missing_key(c, n, "handler");
    size_t saved = path_push_key(c, "handler", 7);
    rc = read_handler(c, handler, f);
    path_pop(c, saved);
    if (rc != 0)
        return rc;
    f->handler_line = handler->line;
    f->handler_col = handler->col;

    env_list_t own = {NULL, 0};
    if ((rc = read_field(c, n, "env", read_env, &own, NULL)) != 0)
        return rc;
    rc = env_merge(app_env->kv, app_env->len, own.kv, own.len, &f->env, &f->env_len);
    env_free(own.kv, own.len);
    return rc;
}

/* Reads the functions mapping (at least one) into m->functions. */
static int read_functions(ctx_t *c, const node_t *n, const fn_settings_t *defaults, const env_list_t *app_env,
                          reg_manifest_t *m)
{
    int rc = expect_mapping(c, n, "a mapping of function names to functions");
    if (rc != 0)
        return rc;
    size_t count = map_pairs(n);
    if (count == 0)
        return fail(c, n, "declare at least one function, e.g. hello: { handler: src/hello.lua#main }");
    if (count > MANIFEST_MAX_FUNCTIONS)
        return fail(c, n, "%zu functions; at most %d are allowed", count, MANIFEST_MAX_FUNCTIONS);
    m->functions = calloc(count, sizeof *m->functions);
    if (m->functions == NULL)
        return -ENOMEM;
    m->functions_len = count;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const node_t *key = map_key(n, i);
        size_t saved = path_push_key(c, key->text, key->text_len);
        if (!is_function_name(key->text, key->text_len))
            rc = fail(c, key, "function names must be 1..64 letters, digits, '_' or '-'");
        else if ((m->functions[i].name = copy_text(key->text, key->text_len)) == NULL)
            rc = -ENOMEM;
        else
            rc = read_function(c, map_value(n, i), defaults, app_env, &m->functions[i]);
        path_pop(c, saved);
    }
    return rc;
}

/* Fails with "no function named 'x' (declared: a, b, ...)". */
static int fail_no_function(ctx_t *c, const node_t *n, const reg_manifest_t *m, const char *name, size_t len)
{
    char list[512];
    size_t off = 0;
    for (size_t i = 0; i < m->functions_len && off < sizeof list; i++) {
        if (i == 10) {
            snprintf(list + off, sizeof list - off, ", ... %zu more", m->functions_len - 10);
            break;
        }
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", m->functions[i].name);
    }
    return fail(c, n, "no function named %s (declared: %s)", show_text(c, name, len), list);
}

/* Reads a `function:` reference, storing a copy of the name and its index. */
static int read_function_ref(ctx_t *c, const node_t *n, const reg_manifest_t *m, char **name, size_t *index)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "the name of a function", &text, &len);
    if (rc != 0)
        return rc;
    if (!reg_manifest_function_index(m, text, len, index))
        return fail_no_function(c, n, m, text, len);
    *name = copy_text(text, len);
    return *name ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- routes */

/* Checks a route path: it starts with '/' and fits, then the route table's
 * own rules (reg_route_path_validate), so that a manifest accepted here is
 * one the route table takes. Writes what is wrong into why. */
static int route_path_check(const char *path, size_t len, char *why, size_t whylen)
{
    if (len == 0 || path[0] != '/') {
        snprintf(why, whylen, "must start with '/'");
        return -1;
    }
    if (len > MANIFEST_MAX_PATH_LEN) {
        snprintf(why, whylen, "is longer than %d characters", MANIFEST_MAX_PATH_LEN);
        return -1;
    }
    char text[MANIFEST_MAX_PATH_LEN + 1];
    memcpy(text, path, len);
    text[len] = '\0';
    if (memchr(path, '\0', len) != NULL) {
        snprintf(why, whylen, "contains a NUL byte");
        return -1;
    }
    return reg_route_path_validate(text, why, whylen) == 0 ? 0 : -1;
}

/* True when two valid route paths have the same shape: the same literals
 * and params (of any name) and rests at the same places. */
static bool same_route_shape(const char *a, const char *b)
{
    while (*a && *b) {
        /* Both are at the start of a segment (just after a '/'). */
        if (*a != '/' || *b != '/')
            return false;
        a++;
        b++;
        if ((*a == ':' || *a == '*') && *a == *b) {
            a += strcspn(a, "/");
            b += strcspn(b, "/");
            continue;
        }
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la != lb || memcmp(a, b, la) != 0 || *a == ':' || *a == '*' || *b == ':' || *b == '*')
            return false;
        a += la;
        b += lb;
    }
    return *a == *b;
}

static const char *const route_keys[] = {"method", "path", "function"};
static const char *const route_optional_keys[] = {"method", "path", "function", "auth"};
static const char *const http_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY"};

/* A route's method: one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, ANY
 * in any case, stored upper case. */
static int read_method(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "an HTTP method", &text, &len);
    if (rc != 0)
        return rc;
    char upper[8];
    for (size_t i = 0; i < COUNT(http_methods); i++) {
        if (len != strlen(http_methods[i]))
            continue;
        for (size_t k = 0; k < len; k++)
            upper[k] = (char)(text[k] >= 'a' && text[k] <= 'z' ? text[k] - 32 : text[k]);
        if (memcmp(upper, http_methods[i], len) == 0)
            return (*(char **)out = copy_text(http_methods[i], len)) ? 0 : -ENOMEM;
    }
    return fail(c, n, "expected one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, ANY, got %s",
                show_text(c, text, len));
}

/* A route's path such as /items/:id, checked (route_path_check) and copied. */
static int read_route_path(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a route path such as /items/:id", &text, &len);
    if (rc != 0)
        return rc;
    char why[200];
    if (route_path_check(text, len, why, sizeof why) != 0)
        return fail(c, n, "%s %s", show_text(c, text, len), why);
    return (*(char **)out = copy_text(text, len)) ? 0 : -ENOMEM;
}

/* Reads one route of routes[index] and rejects a conflict with an earlier
 * one (same method, same shape). */
static int read_route(ctx_t *c, const node_t *n, reg_manifest_t *m, size_t index)
{
    reg_route_t *r = &m->routes[index];
    int rc = expect_mapping(c, n, "a mapping { method, path, function }");
    if (rc == 0)
        rc = check_keys(c, n, route_optional_keys, COUNT(route_optional_keys));
    for (size_t k = 0; k < COUNT(route_keys) && rc == 0; k++)
        if (map_get(n, route_keys[k]) == NULL)
            rc = missing_key(c, n, route_keys[k]);
    if (rc != 0 || (rc = read_field(c, n, "method", read_method, &r->method, NULL)) != 0 ||
        (rc = read_field(c, n, "path", read_route_path, &r->path, NULL)) != 0)
        return rc;
    size_t saved = path_push_key(c, "function", 8);
    rc = read_function_ref(c, map_get(n, "function"), m, &r->function, &r->function_index);
    path_pop(c, saved);
    if (rc != 0)
        return rc;
    /* A route is private when it or its function says so; it cannot make
     * a private function public. */
    const node_t *auth_node;
    r->auth = REG_AUTH_PUBLIC;
    if ((rc = read_field(c, n, "auth", read_auth, &r->auth, &auth_node)) != 0)
        return rc;
    if (m->functions[r->function_index].auth == REG_AUTH_KEY) {
        if (auth_node != NULL && r->auth == REG_AUTH_PUBLIC) {
            saved = path_push_key(c, "auth", 4);
            rc = fail(c, auth_node, "public, but function %s requires a key (functions.%s.auth: key)", r->function,
                      r->function);
            path_pop(c, saved);
            return rc;
        }
        r->auth = REG_AUTH_KEY;
    }
    for (size_t i = 0; i < index; i++) {
        const reg_route_t *earlier = &m->routes[i];
        if (strcmp(earlier->method, r->method) == 0 && same_route_shape(earlier->path, r->path))
            return fail(c, n, "%s %s conflicts with routes[%zu] (%s %s)", r->method, r->path, i, earlier->method,
                        earlier->path);
    }
    return 0;
}

/* routes: a sequence of at most MANIFEST_MAX_ROUTES routes, each read and
 * checked against the earlier ones. */
static int read_routes(ctx_t *c, const node_t *n, reg_manifest_t *m)
{
    if (n->kind != NODE_SEQUENCE)
        return fail(c, n, "expected a sequence of routes such as - { method: GET, path: /items, function: list }, "
                          "got %s",
                    describe(c, n));
    if (n->len > MANIFEST_MAX_ROUTES)
        return fail(c, n, "%zu routes; at most %d are allowed", n->len, MANIFEST_MAX_ROUTES);
    if (n->len == 0)
        return 0;
    m->routes = calloc(n->len, sizeof *m->routes);
    if (m->routes == NULL)
        return -ENOMEM;
    m->routes_len = n->len;
    int rc = 0;
    for (size_t i = 0; i < n->len && rc == 0; i++) {
        size_t saved = path_push_index(c, i);
        rc = read_route(c, n->items[i], m, i);
        path_pop(c, saved);
    }
    return rc;
}

/* -------------------------------------------------------------- triggers */

static const char *const log_trigger_keys[] = {"on", "function", "attempts", "source", "filter"};
static const char *const event_trigger_keys[] = {"on", "function", "attempts", "type", "source"};
static const char *const schedule_trigger_keys[] = {"on", "function", "attempts", "cron"};

/* Rejects keys that do not belong to the trigger's kind, saying whether the
 * key belongs to another kind or to none. */
static int check_trigger_keys(ctx_t *c, const node_t *n, const char *kind, const char *const *allowed,
                              size_t nallowed)
{
    static const char *const any_trigger_keys[] = {"on", "function", "attempts", "source", "filter", "type", "cron"};
    for (size_t i = 0; i < map_pairs(n); i++) {
        const node_t *key = map_key(n, i);
        bool ok = false, known = false;
        for (size_t k = 0; k < nallowed && !ok; k++)
            ok = key_is(key, allowed[k]);
        for (size_t k = 0; k < COUNT(any_trigger_keys) && !known; k++)
            known = key_is(key, any_trigger_keys[k]);
        if (ok)
            continue;
        char list[128];
        size_t off = 0;
        for (size_t k = 0; k < nallowed; k++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", k ? ", " : "", allowed[k]);
        size_t saved = path_push_key(c, key->text, key->text_len);
        int rc = known ? fail(c, key, "not allowed with on: %s; expected one of %s", kind, list)
                       : fail(c, key, "unknown key; expected one of %s", list);
        path_pop(c, saved);
        return rc;
    }
    return 0;
}

/* Reads a required string field (must be non-empty) into a new string. */
static int read_required_text(ctx_t *c, const node_t *map, const char *key, const char *what, const node_t **found,
                              char **out)
{
    const node_t *n = map_get(map, key);
    *found = n;
    if (n == NULL)
        return missing_key(c, map, key);
    const char *text;
    size_t len;
    size_t saved = path_push_key(c, key, strlen(key));
    int rc = expect_string(c, n, what, &text, &len);
    if (rc == 0 && len == 0)
        rc = fail(c, n, "expected %s, got an empty string", what);
    if (rc == 0 && (*out = copy_text(text, len)) == NULL)
        rc = -ENOMEM;
    path_pop(c, saved);
    return rc;
}

/* on: log — source is function:NAME (declared) or file:/absolute/path. */
static int read_log_trigger(ctx_t *c, const node_t *n, const reg_manifest_t *m, reg_trigger_t *t)
{
    const node_t *source;
    int rc = read_required_text(c, n, "source", "function:NAME or file:/absolute/path", &source, &t->source);
    if (rc != 0)
        return rc;
    size_t saved = path_push_key(c, "source", 6);
    const char *s = t->source;
    if (strncmp(s, "function:", 9) == 0) {
        if (!reg_manifest_function_index(m, s + 9, strlen(s + 9), &t->source_function_index))
            rc = fail_no_function(c, source, m, s + 9, strlen(s + 9));
    } else if (strncmp(s, "file:", 5) == 0) {
        const char *path = s + 5;
        size_t len = strlen(path);
        if (path[0] != '/' || len < 2)
            rc = fail(c, source, "%s: expected an absolute file path after file:", show_text(c, s, strlen(s)));
        else if (path[len - 1] == '/')
            rc = fail(c, source, "%s: expected a file, not a directory", show_text(c, s, strlen(s)));
        else if (strcmp(path, "/..") == 0 || strncmp(path, "/../", 4) == 0 || strstr(path, "/../") != NULL ||
                 (len >= 3 && strcmp(path + len - 3, "/..") == 0))
            rc = fail(c, source, "%s: the path must not contain '..' segments", show_text(c, s, strlen(s)));
        else
            for (size_t i = 0; i < len && rc == 0; i++)
                if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
                    rc = fail(c, source, "the path must not contain control characters");
    } else {
        rc = fail(c, source, "expected function:NAME or file:/absolute/path, got %s", show_text(c, s, strlen(s)));
    }
    path_pop(c, saved);
    if (rc == 0)
        rc = read_field(c, n, "filter", read_any_string, &t->filter, NULL);
    return rc;
}

/* on: event — type is a non-empty glob; source an optional non-empty glob. */
static int read_event_trigger(ctx_t *c, const node_t *n, reg_trigger_t *t)
{
    const node_t *found;
    int rc = read_required_text(c, n, "type", "an event type or glob such as container.die", &found, &t->type);
    if (rc == 0 && map_get(n, "source") != NULL)
        rc = read_required_text(c, n, "source", "an event source or glob such as docker*", &found, &t->source);
    return rc;
}

/* The cron of a schedule trigger, required and validated. */
static int read_schedule_trigger(ctx_t *c, const node_t *n, reg_trigger_t *t)
{
    const node_t *found;
    int rc = read_required_text(c, n, "cron", "a cron expression such as '*/5 * * * *' or '@every 30s'", &found,
                                &t->cron);
    if (rc != 0)
        return rc;
    char why[256];
    if (reg_cron_validate(t->cron, why, sizeof why) != 0) {
        size_t saved = path_push_key(c, "cron", 4);
        rc = fail(c, found, "%s", why);
        path_pop(c, saved);
    }
    return rc;
}

/* One trigger: its kind (on), the keys that kind allows, its function,
 * attempts (3 by default) and what the kind needs. */
static int read_trigger(ctx_t *c, const node_t *n, const reg_manifest_t *m, reg_trigger_t *t)
{
    int rc = expect_mapping(c, n, "a mapping such as { on: schedule, cron: '@every 1m', function: tick }");
    if (rc != 0)
        return rc;
    t->source_function_index = SIZE_MAX;
    const node_t *on = map_get(n, "on");
    if (on == NULL)
        return missing_key(c, n, "on");
    const char *kind;
    size_t kind_len;
    size_t saved = path_push_key(c, "on", 2);
    rc = expect_string(c, on, "log, event or schedule", &kind, &kind_len);
    if (rc == 0) {
        if (strcmp(kind, "log") == 0)
            t->on = REG_TRIGGER_LOG;
        else if (strcmp(kind, "event") == 0)
            t->on = REG_TRIGGER_EVENT;
        else if (strcmp(kind, "schedule") == 0)
            t->on = REG_TRIGGER_SCHEDULE;
        else
            rc = fail(c, on, "expected log, event or schedule, got %s", show_text(c, kind, kind_len));
    }
    path_pop(c, saved);
    if (rc != 0)
        return rc;

    if (t->on == REG_TRIGGER_LOG)
        rc = check_trigger_keys(c, n, "log", log_trigger_keys, COUNT(log_trigger_keys));
    else if (t->on == REG_TRIGGER_EVENT)
        rc = check_trigger_keys(c, n, "event", event_trigger_keys, COUNT(event_trigger_keys));
    else
        rc = check_trigger_keys(c, n, "schedule", schedule_trigger_keys, COUNT(schedule_trigger_keys));
    if (rc != 0)
        return rc;

    const node_t *function = map_get(n, "function");
    if (function == NULL)
        return missing_key(c, n, "function");
    saved = path_push_key(c, "function", 8);
    rc = read_function_ref(c, function, m, &t->function, &t->function_index);
    path_pop(c, saved);
    t->attempts = 3;
    if (rc == 0)
        rc = read_field(c, n, "attempts", read_attempts, &t->attempts, NULL);
    if (rc != 0)
        return rc;
    if (t->on == REG_TRIGGER_LOG)
        return read_log_trigger(c, n, m, t);
    if (t->on == REG_TRIGGER_EVENT)
        return read_event_trigger(c, n, t);
    return read_schedule_trigger(c, n, t);
}

/* triggers: a sequence of at most MANIFEST_MAX_TRIGGERS triggers. */
static int read_triggers(ctx_t *c, const node_t *n, reg_manifest_t *m)
{
    if (n->kind != NODE_SEQUENCE)
        return fail(c, n, "expected a sequence of triggers such as - { on: schedule, cron: '@every 1m', function: "
                          "tick }, got %s",
                    describe(c, n));
    if (n->len > MANIFEST_MAX_TRIGGERS)
        return fail(c, n, "%zu triggers; at most %d are allowed", n->len, MANIFEST_MAX_TRIGGERS);
    if (n->len == 0)
        return 0;
    m->triggers = calloc(n->len, sizeof *m->triggers);
    if (m->triggers == NULL)
        return -ENOMEM;
    m->triggers_len = n->len;
    int rc = 0;
    for (size_t i = 0; i < n->len && rc == 0; i++) {
        size_t saved = path_push_index(c, i);
        rc = read_trigger(c, n->items[i], m, &m->triggers[i]);
        path_pop(c, saved);
    }
    return rc;
}

/* ------------------------------------------------------------------ limits */

#define BYTES_EXPECTED "expected bytes as an integer or a size such as 512Ki, 1Mi, 64Mi or 1Gi"

/* A size in bytes within 1..max: an integer, or digits with Ki, Mi, Gi or Ti
 * (KiB, KB ... alike: all binary). `max_text` names max in messages. */
static int expect_bytes(ctx_t *c, const node_t *n, uint64_t max, const char *max_text, uint64_t *out)
{
    const char *text = n->text;
    size_t len = n->text_len;
    uint64_t mul = 1;
    if (!scalar_is_number(n)) {
        int rc = expect_string(c, n, "a size such as 1Mi or 64Mi", &text, &len);
        if (rc != 0)
            return rc;
        static const struct {
            const char *unit;
            uint64_t mul;
        } units[] = {{"Ki", 1ull << 10},  {"KiB", 1ull << 10}, {"KB", 1ull << 10},  {"Mi", 1ull << 20},
                     {"MiB", 1ull << 20}, {"MB", 1ull << 20},  {"Gi", 1ull << 30},  {"GiB", 1ull << 30},
                     {"GB", 1ull << 30},  {"Ti", 1ull << 40},  {"TiB", 1ull << 40}, {"TB", 1ull << 40}};
        size_t digits = strspn(text, "0123456789");
        mul = 0;
        for (size_t i = 0; i < COUNT(units) && digits > 0; i++)
            if (strcmp(text + digits, units[i].unit) == 0)
                mul = units[i].mul;
        if (mul == 0 || (text[0] == '0' && digits > 1))
            return fail(c, n, BYTES_EXPECTED ", got %s", show_text(c, text, len));
    } else if (strspn(text, "0123456789") != len) {
        return fail(c, n, BYTES_EXPECTED ", got %.40s", text);
    }
    uint64_t v = strspn(text, "0123456789") > 13 ? UINT64_MAX : strtoull(text, NULL, 10);
    uint64_t bytes = v > max / mul ? max + 1 : v * mul;
    if (bytes < 1 || bytes > max)
        return fail(c, n, "%s is out of range 1..%s", show_text(c, text, len), max_text);
    *out = bytes;
    return 0;
}

/* limits.kv_value_max: a size up to REG_KV_VALUE_MAX_LIMIT (6Mi). */
static int read_kv_value_max(ctx_t *c, const node_t *n, void *out)
{
    return expect_bytes(c, n, REG_KV_VALUE_MAX_LIMIT, "6Mi", out);
}

/* limits.kv_bytes_max: a size up to REG_KV_BYTES_MAX_LIMIT (1Ti). */
static int read_kv_bytes_max(ctx_t *c, const node_t *n, void *out)
{
    return expect_bytes(c, n, REG_KV_BYTES_MAX_LIMIT, "1Ti", out);
}

/* limits.kv_keys_max: an integer 1..REG_KV_KEYS_MAX_LIMIT, stored as a
 * uint64_t. */
static int read_kv_keys_max(ctx_t *c, const node_t *n, void *out)
{
    uint32_t v = 0;
    int rc = expect_uint(c, n, 1, REG_KV_KEYS_MAX_LIMIT, &v);
    *(uint64_t *)out = v;
    return rc;
}

static const char *const limits_keys[] = {"kv_value_max", "kv_keys_max", "kv_bytes_max"};

/* limits: the app's quotas on the node ({kv_value_max, kv_keys_max,
 * kv_bytes_max}, each optional). */
static int read_limits(ctx_t *c, const node_t *n, void *out)
{
    reg_manifest_t *m = out;
    int rc = expect_mapping(c, n, "a mapping of kv_value_max, kv_keys_max, kv_bytes_max");
    if (rc == 0)
        rc = check_keys(c, n, limits_keys, COUNT(limits_keys));
    if (rc == 0)
        rc = read_field(c, n, "kv_value_max", read_kv_value_max, &m->kv_value_max, NULL);
    if (rc == 0)
        rc = read_field(c, n, "kv_keys_max", read_kv_keys_max, &m->kv_keys_max, NULL);
    if (rc == 0)
        rc = read_field(c, n, "kv_bytes_max", read_kv_bytes_max, &m->kv_bytes_max, NULL);
    return rc;
}

/* ----------------------------------------------------------------- release */

/* release.client_header: an HTTP header name, stored in lower case. */
static int read_client_header(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    int rc = expect_string(c, n, "a header name such as x-tine-client", &text, &len);
    if (rc != 0)
        return rc;
    if (len == 0 || len > 64)
        return fail(c, n, "%s must be 1..64 characters long, not %zu", show_text(c, text, len), len);
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum((char)tolower((unsigned char)text[i])) && text[i] != '-' && text[i] != '_')
            return fail(c, n, "%s may hold only letters, digits, '-' and '_' (a header name)",
                        show_text(c, text, len));
    char *copy = copy_text(text, len);
    if (copy == NULL)
        return -ENOMEM;
    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    *(char **)out = copy;
    return 0;
}

/* rollout.steps: 1..REG_ROLLOUT_MAX_STEPS percents, ascending, the last 100. */
static int read_rollout_steps(ctx_t *c, const node_t *n, void *out)
{
    reg_rollout_t *r = out;
    if (n->kind != NODE_SEQUENCE || n->len == 0)
        return fail(c, n, "expected a list of percents ending with 100, such as [5, 25, 50, 100], got %s",
                    describe(c, n));
    if (n->len > REG_ROLLOUT_MAX_STEPS)
        return fail(c, n, "%zu steps; at most %d are allowed", n->len, REG_ROLLOUT_MAX_STEPS);
    for (size_t i = 0; i < n->len; i++) {
        size_t saved = path_push_index(c, i);
        int rc = expect_uint(c, n->items[i], 1, 100, &r->steps[i]);
        if (rc == 0 && i > 0 && r->steps[i] <= r->steps[i - 1])
            rc = fail(c, n->items[i], "steps must grow: %u comes after %u", r->steps[i], r->steps[i - 1]);
        path_pop(c, saved);
        if (rc != 0)
            return rc;
    }
    r->nsteps = n->len;
    if (r->steps[r->nsteps - 1] != 100)
        return fail(c, n, "the last step must be 100 (every client on the new version), not %u",
                    r->steps[r->nsteps - 1]);
    return 0;
}

/* rollout.interval: a duration 1s..24h. */
static int read_rollout_interval(ctx_t *c, const node_t *n, void *out)
{
    const char *text;
    size_t len;
    if (scalar_is_number(n))
        return fail(c, n, "expected a duration such as 2s or 1m, got the bare number %.40s (add a unit)", n->text);
    int rc = expect_string(c, n, "a duration such as 2s or 1m", &text, &len);
    if (rc != 0)
        return rc;
    uint64_t ms;
    if (reg_parse_duration_ms(text, &ms) != 0)
        return fail(c, n, "expected a duration such as 2s or 1m (units h, m, s, ms), got %s", show_text(c, text, len));
    if (ms < 1000 || ms > 24u * 3600u * 1000u)
        return fail(c, n, "%s is out of range 1s..24h", show_text(c, text, len));
    *(uint64_t *)out = ms;
    return 0;
}

/* rollout.max_error_rate: a percent "1%", "0.5%" (two decimals at most),
 * 0%..100%, stored per 10 000. */
static int read_rollout_error_rate(ctx_t *c, const node_t *n, void *out)
{
    const char *text = n->text;
    size_t len = n->text_len;
    const char *what = "a percent such as 1% or 0.5%";
    if (n->kind != NODE_SCALAR || len < 2 || text[len - 1] != '%')
        return fail(c, n, "expected %s, got %s", what, describe(c, n));
    uint32_t whole = 0, frac = 0, fdigits = 0;
    size_t i = 0;
    for (; i < len - 1 && text[i] >= '0' && text[i] <= '9' && i < 3; i++)
        whole = whole * 10 + (uint32_t)(text[i] - '0');
    if (i == 0)
        return fail(c, n, "expected %s, got %s", what, describe(c, n));
    if (i < len - 1 && text[i] == '.') {
        for (i++; i < len - 1 && text[i] >= '0' && text[i] <= '9' && fdigits < 2; i++, fdigits++)
            frac = frac * 10 + (uint32_t)(text[i] - '0');
        if (fdigits == 0)
            return fail(c, n, "expected %s, got %s", what, describe(c, n));
    }
    if (i != len - 1)
        return fail(c, n, "expected %s (at most two decimals), got %s", what, describe(c, n));
    if (fdigits == 1)
        frac *= 10;
    uint32_t pm = whole * 100 + frac;
    if (pm > 10000)
        return fail(c, n, "%s is out of range 0%%..100%%", describe(c, n));
    *(uint32_t *)out = pm;
    return 0;
}

/* rollout.min_requests: an integer 1..1000000. */
static int read_rollout_min_requests(ctx_t *c, const node_t *n, void *out)
{
    return expect_uint(c, n, 1, 1000000, out);
}

static const char *const rollout_keys[] = {"steps", "interval", "max_error_rate", "max_p99", "min_requests"};

/* rollout: {steps, interval, max_error_rate, max_p99, min_requests}; steps
 * required (docs/releases.md). */
static int read_rollout(ctx_t *c, const node_t *n, void *out)
{
    reg_rollout_t *r = &((reg_manifest_t *)out)->rollout;
    int rc = expect_mapping(c, n, "a mapping of steps, interval, max_error_rate, max_p99, min_requests");
    if (rc == 0)
        rc = check_keys(c, n, rollout_keys, COUNT(rollout_keys));
    if (rc != 0)
        return rc;
    if (map_get(n, "steps") == NULL)
        return missing_key(c, n, "steps");
    *r = (reg_rollout_t){.set = true, .interval_ms = 60000, .max_error_permyriad = 100, .min_requests = 20};
    if ((rc = read_field(c, n, "steps", read_rollout_steps, r, NULL)) != 0 ||
        (rc = read_field(c, n, "interval", read_rollout_interval, &r->interval_ms, NULL)) != 0 ||
        (rc = read_field(c, n, "max_error_rate", read_rollout_error_rate, &r->max_error_permyriad, NULL)) != 0 ||
        (rc = read_field(c, n, "max_p99", read_timeout, &r->max_p99_ms, NULL)) != 0 ||
        (rc = read_field(c, n, "min_requests", read_rollout_min_requests, &r->min_requests, NULL)) != 0)
        return rc;
    return 0;
}

static const char *const release_keys[] = {"pin", "client_header"};

/* release: {pin, client_header}, each optional (docs/releases.md). */
static int read_release(ctx_t *c, const node_t *n, void *out)
{
    reg_manifest_t *m = out;
    int rc = expect_mapping(c, n, "a mapping of pin, client_header");
    if (rc == 0)
        rc = check_keys(c, n, release_keys, COUNT(release_keys));
    if (rc == 0)
        rc = read_field(c, n, "pin", read_bool, &m->release_pin, NULL);
    if (rc == 0)
        rc = read_field(c, n, "client_header", read_client_header, &m->release_client_header, NULL);
    return rc;
}

/* ---------------------------------------------------------------- manifest */

static const char *const top_keys[] = {"app",      "namespace",      "description", "host",
                                       "defaults", "env",            "functions",   "routes",
                                       "triggers", "allow_outbound", "limits",      "release",
                                       "rollout"};

/* Validates the whole tree into m, in dependency order: defaults and env
 * before functions, functions before routes and triggers. */
static int read_manifest(ctx_t *c, const node_t *root, reg_manifest_t *m)
{
    int rc = expect_mapping(c, root, "a mapping with at least app and functions at the top level");
    if (rc == 0)
        rc = check_keys(c, root, top_keys, COUNT(top_keys));
    if (rc != 0)
        return rc;
    if (map_get(root, "app") == NULL)
        return missing_key(c, root, "app");
    if (map_get(root, "functions") == NULL)
        return missing_key(c, root, "functions");

    fn_settings_t defaults = {REG_RUNTIME_LUA, 128, 3000, 10, 0, REG_MAX_BODY_LIMIT};
    env_list_t app_env = {NULL, 0};
    if ((rc = read_field(c, root, "app", read_app_name, &m->app, NULL)) != 0 ||
        (rc = read_field(c, root, "namespace", read_namespace, &m->namespace, NULL)) != 0 ||
        (rc = read_field(c, root, "description", read_any_string, &m->description, NULL)) != 0 ||
        (rc = read_field(c, root, "host", read_host, &m->host, NULL)) != 0 ||
        (rc = read_field(c, root, "defaults", read_defaults, &defaults, NULL)) != 0 ||
        (rc = read_field(c, root, "env", read_env, &app_env, NULL)) != 0)
        return rc;
    /* The manifest owns the app env from here on (freed with it on error). */
    m->env = app_env.kv;
    m->env_len = app_env.len;
    if (m->namespace == NULL && (m->namespace = copy_text(REG_DEFAULT_NAMESPACE, strlen(REG_DEFAULT_NAMESPACE))) == NULL)
        return -ENOMEM;
    if ((rc = read_field(c, root, "allow_outbound", read_allow_outbound, m, NULL)) != 0 ||
        (rc = read_field(c, root, "limits", read_limits, m, NULL)) != 0 ||
        (rc = read_field(c, root, "release", read_release, m, NULL)) != 0 ||
        (rc = read_field(c, root, "rollout", read_rollout, m, NULL)) != 0)
        return rc;

    size_t saved = path_push_key(c, "functions", 9);
    rc = read_functions(c, map_get(root, "functions"), &defaults, &app_env, m);
    path_pop(c, saved);
    if (rc == 0)
        rc = reg__manifest_index_functions(m);
    if (rc != 0)
        return rc;

    const node_t *routes = map_get(root, "routes");
    if (routes != NULL) {
        saved = path_push_key(c, "routes", 6);
        rc = read_routes(c, routes, m);
        path_pop(c, saved);
        if (rc != 0)
            return rc;
    }
    const node_t *triggers = map_get(root, "triggers");
    if (triggers != NULL) {
        saved = path_push_key(c, "triggers", 8);
        rc = read_triggers(c, triggers, m);
        path_pop(c, saved);
    }
    return rc;
}

/* Whether s ends with suffix. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int reg_manifest_parse(const char *filename, const char *data, size_t len, reg_manifest_t **out, char *err,
                       size_t errlen)
{
    if (out)
        *out = NULL;
    ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory while reading the manifest", filename ? filename : "manifest");
        return -ENOMEM;
    }
    c->filename = filename ? filename : "manifest";
    c->err = err;
    c->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';

    int rc;
    node_t *root = NULL;
    if (out == NULL || (data == NULL && len > 0)) {
        rc = fail_at(c, 1, 1, "internal error: no manifest data or output given");
    } else if (len > MANIFEST_MAX_BYTES) {
        unsigned line, col;
        offset_to_position(data, len, MANIFEST_MAX_BYTES, &line, &col);
        rc = fail_at(c, line, col, "the manifest is %zu bytes, larger than the 1 MiB limit", len);
    } else if (ends_with(c->filename, ".json")) {
        rc = build_tree_json(c, data ? data : "", len, &root);
    } else {
        rc = build_tree(c, data ? data : "", len, &root);
    }

    reg_manifest_t *m = NULL;
    if (rc == 0) {
        m = calloc(1, sizeof *m);
        rc = m ? read_manifest(c, root, m) : -ENOMEM;
    }
    node_free(root);
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "%s: out of memory while reading the manifest", c->filename);
    free(c);
    if (rc != 0) {
        reg_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void reg_manifest_free(reg_manifest_t *m)
{
    if (m == NULL)
        return;
    free(m->app);
    free(m->namespace);
    free(m->description);
    free(m->host);
    free(m->release_client_header);
    for (size_t i = 0; i < m->allow_outbound_len; i++)
        free(m->allow_outbound[i]);
    free(m->allow_outbound);
    env_free(m->env, m->env_len);
    for (size_t i = 0; m->functions && i < m->functions_len; i++) {
        reg_function_t *f = &m->functions[i];
        free(f->name);
        free(f->handler);
        free(f->handler_file);
        free(f->handler_export);
        free(f->group);
        env_free(f->env, f->env_len);
    }
    free(m->functions);
    for (size_t i = 0; m->routes && i < m->routes_len; i++) {
        free(m->routes[i].method);
        free(m->routes[i].path);
        free(m->routes[i].function);
    }
    free(m->routes);
    for (size_t i = 0; m->triggers && i < m->triggers_len; i++) {
        reg_trigger_t *t = &m->triggers[i];
        free(t->source);
        free(t->filter);
        free(t->type);
        free(t->cron);
        free(t->function);
    }
    free(m->triggers);
    free(m->_fn_slots);
    free(m);
}
