/* Filter patterns of log triggers, in the spirit of CloudWatch Logs filter
 * patterns: space-separated terms that must all appear in the line
 * (case-sensitive), "quoted phrases" (with \" and \\), -term / -"phrase" to
 * exclude, ?term for "at least one of these", and key=value / key!=value on
 * structured lines (a JSON object line, or the fields the source gives, such
 * as a function log line's level; a dotted key walks into objects; * globs
 * in the value). On a line that is neither, key=value is the literal text
 * "key=value" (logfmt). An empty pattern matches every line. */
#include "events_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_TERM, T_EXCLUDE, T_ANY, T_KEY_EQ, T_KEY_NE } term_kind_t;

typedef struct {
    term_kind_t kind;
    char *text; /* the term or phrase; for key terms the value */
    size_t len;
    char *key;     /* key terms: the dotted key */
    char *literal; /* key terms: "key=value" for unstructured lines */
} term_t;

struct ev_filter {
    term_t *terms;
    size_t n;
    bool has_any;
    bool has_keys;
};

void ev__filter_free(ev_filter_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->terms[i].text);
        free(f->terms[i].key);
        free(f->terms[i].literal);
    }
    free(f->terms);
    free(f);
}

/* Reads a quoted string starting at p[*i] == '"' into a new buffer;
 * advances *i past the closing quote. */
static int read_quoted(const char *p, size_t *i, char **out, size_t *out_len, char *err, size_t errlen)
{
    size_t start = *i;
    size_t j = start + 1;
    tine_buf_t b;
    tine_buf_init(&b);
    while (p[j] && p[j] != '"') {
        if (p[j] == '\\' && (p[j + 1] == '"' || p[j + 1] == '\\'))
            j++;
        tine_buf_append(&b, &p[j], 1);
        j++;
    }
    if (p[j] != '"') {
        tine_buf_dispose(&b);
        return tine_fail(err, errlen, "unterminated quote starting at column %zu", start + 1);
    }
    tine_buf_append(&b, "", 1);
    *out = b.data;
    *out_len = b.len - 1;
    *i = j + 1;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether c may be part of a key in a filter term: letters, digits and _ . -
 * $ @. */
static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-' || c == '$' || c == '@';
}

/* Appends term t to the filter, noting whether it has a bare word or key
 * terms. */
static void add_term(ev_filter_t *f, term_t t)
{
    f->terms = xrealloc(f->terms, (f->n + 1) * sizeof(*f->terms));
    f->terms[f->n++] = t;
    f->has_any |= t.kind == T_ANY;
    f->has_keys |= t.kind == T_KEY_EQ || t.kind == T_KEY_NE;
}

int ev__filter_compile(const char *pattern, ev_filter_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    ev_filter_t *f = xcalloc(1, sizeof(*f));
    const char *p = pattern ? pattern : "";
    size_t i = 0;
    while (p[i]) {
        if (is_space(p[i])) {
            i++;
            continue;
        }
        size_t col = i + 1;
        term_t t = {.kind = T_TERM};
        if (p[i] == '-' || p[i] == '?') {
            t.kind = p[i] == '-' ? T_EXCLUDE : T_ANY;
            i++;
            if (p[i] == '\0' || is_space(p[i])) {
                ev__filter_free(f);
                return tine_fail(err, errlen, "'%c' at column %zu must be followed by a term or a \"phrase\"",
                                   p[i - 1], col);
            }
        }
        if (p[i] == '"') {
            int rc = read_quoted(p, &i, &t.text, &t.len, err, errlen);
            if (rc != 0) {
                ev__filter_free(f);
                return rc;
            }
            if (t.len == 0) {
                free(t.text);
                ev__filter_free(f);
                return tine_fail(err, errlen, "empty phrase at column %zu", col);
            }
            if (p[i] && !is_space(p[i])) {
                free(t.text);
                ev__filter_free(f);
                return tine_fail(err, errlen, "column %zu: expected a space after the closing quote", i + 1);
            }
            add_term(f, t);
            continue;
        }
        size_t start = i;
        while (p[i] && !is_space(p[i]) && p[i] != '=' && !(p[i] == '!' && p[i + 1] == '='))
            i++;
        if (p[i] == '=' || p[i] == '!') {
            bool ne = p[i] == '!';
            size_t klen = i - start;
            if (t.kind != T_TERM) {
                ev__filter_free(f);
                return tine_fail(err, errlen, "column %zu: key=value cannot start with '-' or '?' (use key!=value)",
                                   col);
            }
            if (klen == 0) {
                ev__filter_free(f);
                return tine_fail(err, errlen, "column %zu: key=value needs a key before '%s'", col,
                                   ne ? "!=" : "=");
            }
            for (size_t k = start; k < i; k++) {
                if (!is_key_char(p[k])) {
                    ev__filter_free(f);
                    return tine_fail(err, errlen, "column %zu: '%c' is not allowed in a key", k + 1, p[k]);
                }
            }
            t.kind = ne ? T_KEY_NE : T_KEY_EQ;
            t.key = xstrndup(p + start, klen);
            i += ne ? 2 : 1;
            if (p[i] == '"') {
                int rc = read_quoted(p, &i, &t.text, &t.len, err, errlen);
                if (rc != 0) {
                    free(t.key);
                    ev__filter_free(f);
                    return rc;
                }
            } else {
                size_t vs = i;
                while (p[i] && !is_space(p[i]))
                    i++;
                t.text = xstrndup(p + vs, i - vs);
                t.len = i - vs;
            }
            const char *key = t.key[0] == '$' && t.key[1] == '.' ? t.key + 2 : t.key;
            t.literal = xasprintf("%s=%s", key, t.text);
            add_term(f, t);
            continue;
        }
        while (p[i] && !is_space(p[i]))
            i++;
        t.text = xstrndup(p + start, i - start);
        t.len = i - start;
        add_term(f, t);
    }
    *out = f;
    return 0;
}

/* The value at a dotted key ("a.b.c", optionally "$.a.b") of a record. */
static json_t *lookup(json_t *record, const char *key)
{
    if (key[0] == '$' && key[1] == '.')
        key += 2;
    json_t *cur = record;
    const char *p = key;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        char part[256];
        if (n >= sizeof part)
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, part) : NULL;
        p += n;
        if (*p == '.')
            p++;
    }
    return cur;
}

/* Whether a record's value at t->key equals (glob) t->text. */
static bool key_matches(const term_t *t, json_t *record)
{
    json_t *v = lookup(record, t->key);
    if (v == NULL)
        return false;
    char buf[64];
    const char *s = buf;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        s = json_is_true(v) ? "true" : "false";
    else if (json_is_null(v))
        s = "null";
    else
        return false;
    return fnmatch(t->text, s, 0) == 0;
}

/* Whether the len bytes of line hold the nlen bytes of needle (always, for an
 * empty needle). */
static bool contains(const char *line, size_t len, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return true;
    /* memmem is a GNU extension; lines are short. */
    for (const char *p = line, *end = line + len; (size_t)(end - p) >= nlen;) {
        const char *hit = memchr(p, needle[0], (size_t)(end - p) - nlen + 1);
        if (hit == NULL)
            return false;
        if (memcmp(hit, needle, nlen) == 0)
            return true;
        p = hit + 1;
    }
    return false;
}

bool ev__filter_match(const ev_filter_t *f, const char *line, size_t len, json_t *fields)
{
    if (f == NULL || f->n == 0)
        return true;
    json_t *parsed = NULL;
    json_t *record = fields;
    if (f->has_keys) {
        size_t s = 0;
        while (s < len && is_space(line[s]))
            s++;
        if (s < len && line[s] == '{') {
            parsed = json_loadb(line + s, len - s, 0, NULL);
            if (json_is_object(parsed))
                record = parsed;
        }
    }
    bool ok = true, any_seen = false;
    for (size_t i = 0; i < f->n && ok; i++) {
        const term_t *t = &f->terms[i];
        switch (t->kind) {
        case T_TERM:
            ok = contains(line, len, t->text, t->len);
            break;
        case T_EXCLUDE:
            ok = !contains(line, len, t->text, t->len);
            break;
        case T_ANY:
            any_seen |= contains(line, len, t->text, t->len);
            break;
        case T_KEY_EQ:
            ok = record ? key_matches(t, record) : contains(line, len, t->literal, strlen(t->literal));
            break;
        case T_KEY_NE:
            ok = record ? !key_matches(t, record) : !contains(line, len, t->literal, strlen(t->literal));
            break;
        }
    }
    json_decref(parsed);
    return ok && (!f->has_any || any_seen);
}
