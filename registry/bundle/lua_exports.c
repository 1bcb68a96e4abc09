/* The deploy-time check that a Lua handler module can export the function a
 * manifest names (`src/stats.lua#statz`), without running any of its code.
 *
 * The module is read with a Lua lexer of our own (the file already compiled,
 * so its tokens are well formed). A key of the table a module returns can
 * only come from the source text: an identifier (`function M.statz`,
 * `M.statz =`, `{ statz = f }`, `M:statz`), a string literal
 * (`M["statz"]`, with escapes decoded), or code that computes keys or
 * delegates: a computed key in an assignment or constructor (`M[k] = v`,
 * `{ [k] = v }`), `rawset`, `setmetatable` (an `__index`), `require` of
 * another module, `load`/`loadstring`/`dofile`/`loadfile`, function
 * environments (`setfenv`, `getfenv`, `module`, `_G`, `_ENV`). So the module
 * is refused only when the name appears nowhere in its code (comments do not
 * count) and none of those constructs appears: then no execution can
 * produce the export. Anything else is accepted, and a missing export is
 * still reported by the sandbox when it loads the handler (a 500 naming it).
 *
 * The module's apparent exports (`function M.x`, `M.x =`, keys of a
 * returned constructor) are listed for the message; they are a hint, not
 * part of the decision. */
#include "bundle_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { TK_EOF, TK_NAME, TK_STRING, TK_NUMBER, TK_OP } tk_kind_t;

typedef struct {
    tk_kind_t kind;
    const char *p; /* NAME, NUMBER, OP: the text in the source */
    size_t len;
    char *str; /* STRING: the decoded value (malloc'd, NUL-terminated) */
    size_t str_len;
} token_t;

typedef struct {
    const char *src;
    size_t len;
    size_t pos;
} lexer_t;

/* Whether c may start a Lua name: a letter, _ or (as LuaJIT allows) a byte of
 * UTF-8. */
static bool is_name_start(unsigned char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* At "[" "="* "[": returns the level (number of '=') and advances past the
 * opening bracket; -1 (nothing consumed) when it is not a long bracket. */
static int long_bracket_open(lexer_t *x)
{
    size_t i = x->pos + 1;
    int level = 0;
    while (i < x->len && x->src[i] == '=') {
        level++;
        i++;
    }
    if (i >= x->len || x->src[i] != '[')
        return -1;
    x->pos = i + 1;
    return level;
}

/* Skips to past the "]" "="*level "]" closing a long bracket; *start and
 * *end delimit the content. */
static void long_bracket_skip(lexer_t *x, int level, size_t *start, size_t *end)
{
    *start = x->pos;
    while (x->pos < x->len) {
        if (x->src[x->pos] == ']') {
            size_t i = x->pos + 1;
            int n = 0;
            while (i < x->len && x->src[i] == '=' && n < level) {
                n++;
                i++;
            }
            if (n == level && i < x->len && x->src[i] == ']') {
                *end = x->pos;
                x->pos = i + 1;
                return;
            }
        }
        x->pos++;
    }
    *end = x->len;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | ((cp >> 18) & 0x07));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads a quoted string (x->pos at the quote) and decodes its escapes as
 * LuaJIT does. The decoded value is never longer than the source text (a
 * \u{...} escape is at least as long as its UTF-8). */
static int read_quoted(lexer_t *x, token_t *t)
{
    char q = x->src[x->pos++];
    size_t start = x->pos;
    while (x->pos < x->len && x->src[x->pos] != q) {
        if (x->src[x->pos] == '\\')
            x->pos++;
        x->pos++;
    }
    size_t end = x->pos < x->len ? x->pos : x->len;
    x->pos = end + 1;
    char *o = malloc(end - start + 1);
    if (o == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)x->src[i];
        if (c != '\\' || i + 1 >= end) {
            o[n++] = (char)c;
            continue;
        }
        c = (unsigned char)x->src[++i];
        switch (c) {
        case 'a':
            o[n++] = '\a';
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'v':
            o[n++] = '\v';
            break;
        case 'x':
            if (i + 2 < end && tine_hex_digit((unsigned char)x->src[i + 1]) >= 0 &&
                tine_hex_digit((unsigned char)x->src[i + 2]) >= 0) {
                o[n++] = (char)(tine_hex_digit((unsigned char)x->src[i + 1]) * 16 +
                                tine_hex_digit((unsigned char)x->src[i + 2]));
                i += 2;
            }
            break;
        case 'z':
            while (i + 1 < end && is_space((unsigned char)x->src[i + 1]))
                i++;
            break;
        case 'u':
            if (i + 1 < end && x->src[i + 1] == '{') {
                unsigned long cp = 0;
                size_t j = i + 2;
                while (j < end && tine_hex_digit((unsigned char)x->src[j]) >= 0 && cp < 0x110000)
                    cp = cp * 16 + (unsigned long)tine_hex_digit((unsigned char)x->src[j++]);
                if (j < end && x->src[j] == '}' && cp < 0x110000) {
                    n += put_utf8(o + n, cp);
                    i = j;
                }
            }
            break;
        default:
            if (is_digit(c)) {
                unsigned v = c - '0';
                for (int k = 0; k < 2 && i + 1 < end && is_digit((unsigned char)x->src[i + 1]); k++)
                    v = v * 10 + (unsigned)(x->src[++i] - '0');
                o[n++] = (char)(v & 0xff);
            } else {
                o[n++] = (char)c; /* \\ \" \' and an escaped newline */
            }
        }
    }
    o[n] = '\0';
    t->kind = TK_STRING;
    t->str = o;
    t->str_len = n;
    return 0;
}

static const char *const long_ops[] = {"...", "..", "==", "~=", "<=", ">=", "::", "<<", ">>", "//"};

/* Reads the next token into t (t->str is freed by the caller). Returns 0 or
 * -ENOMEM. */
static int next_token(lexer_t *x, token_t *t)
{
    memset(t, 0, sizeof(*t));
    for (;;) {
        while (x->pos < x->len && is_space((unsigned char)x->src[x->pos]))
            x->pos++;
        if (x->pos + 1 < x->len && x->src[x->pos] == '-' && x->src[x->pos + 1] == '-') {
            x->pos += 2;
            int level = x->pos < x->len && x->src[x->pos] == '[' ? long_bracket_open(x) : -1;
            if (level >= 0) {
                size_t s, e;
                long_bracket_skip(x, level, &s, &e);
            } else {
                while (x->pos < x->len && x->src[x->pos] != '\n')
                    x->pos++;
            }
            continue;
        }
        break;
    }
    if (x->pos >= x->len) {
        t->kind = TK_EOF;
        return 0;
    }
    const char *s = x->src + x->pos;
    unsigned char c = (unsigned char)*s;
    if (is_name_start(c)) {
        size_t i = x->pos;
        while (i < x->len && is_name_char((unsigned char)x->src[i]))
            i++;
        t->kind = TK_NAME;
        t->p = s;
        t->len = i - x->pos;
        x->pos = i;
        return 0;
    }
    if (is_digit(c) || (c == '.' && x->pos + 1 < x->len && is_digit((unsigned char)s[1]))) {
        /* Digits, letters (hex, exponents, LuaJIT's LL/ULL/i suffixes),
         * dots, and a sign right after an exponent mark. */
        bool hex = c == '0' && x->pos + 1 < x->len && (s[1] == 'x' || s[1] == 'X');
        size_t i = x->pos;
        while (i < x->len) {
            unsigned char d = (unsigned char)x->src[i];
            bool exp_sign = (d == '+' || d == '-') && i > x->pos && strchr(hex ? "pP" : "eE", x->src[i - 1]) != NULL;
            if (!is_name_char(d) && d != '.' && !exp_sign)
                break;
            i++;
        }
        t->kind = TK_NUMBER;
        t->p = s;
        t->len = i - x->pos;
        x->pos = i;
        return 0;
    }
    if (c == '"' || c == '\'')
        return read_quoted(x, t);
    if (c == '[') {
        size_t save = x->pos;
        int level = long_bracket_open(x);
        if (level >= 0) {
            size_t cs, ce;
            long_bracket_skip(x, level, &cs, &ce);
            /* A first newline right after the opening bracket is skipped. */
            if (cs < ce && x->src[cs] == '\r')
                cs++;
            if (cs < ce && x->src[cs] == '\n')
                cs++;
            char *o = malloc(ce - cs + 1);
            if (o == NULL)
                return -ENOMEM;
            memcpy(o, x->src + cs, ce - cs);
            o[ce - cs] = '\0';
            t->kind = TK_STRING;
            t->str = o;
            t->str_len = ce - cs;
            return 0;
        }
        x->pos = save;
    }
    t->kind = TK_OP;
    t->p = s;
    t->len = 1;
    for (size_t i = 0; i < sizeof(long_ops) / sizeof(long_ops[0]); i++) {
        size_t n = strlen(long_ops[i]);
        if (x->pos + n <= x->len && memcmp(s, long_ops[i], n) == 0) {
            t->len = n;
            break;
        }
    }
    x->pos += t->len;
    return 0;
}

/* Whether token t is of `kind` and reads `text`. */
static bool tok_is(const token_t *t, tk_kind_t kind, const char *text)
{
    size_t n = strlen(text);
    return t->kind == kind && t->len == n && memcmp(t->p, text, n) == 0;
}

static bool name_is(const token_t *t, const char *name)
{
    return tok_is(t, TK_NAME, name);
}

static bool op_is(const token_t *t, const char *op)
{
    return tok_is(t, TK_OP, op);
}

/* True when `word` occurs in s as a whole word (not inside a longer name). */
static bool has_word(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= len; i++) {
        if (memcmp(s + i, word, wl) != 0)
            continue;
        bool left = i == 0 || !is_name_char((unsigned char)s[i - 1]);
        bool right = i + wl == len || !is_name_char((unsigned char)s[i + wl]);
        if (left && right)
            return true;
    }
    return false;
}

/* Names whose use may add keys to a table or hand back another module's. */
static const char *const dynamic_names[] = {"rawset",  "setmetatable", "load",   "loadstring", "dofile", "loadfile",
                                            "setfenv", "getfenv",      "module", "_G",         "_ENV",   "debug"};

/* The tokens of the module, kept whole: the analysis looks back and ahead. */
typedef struct {
    token_t *v;
    size_t len;
    size_t cap;
} tokens_t;

static void tokens_dispose(tokens_t *ts)
{
    for (size_t i = 0; i < ts->len; i++)
        free(ts->v[i].str);
    free(ts->v);
}

/* Splits the len bytes of Lua source at src into ts (a first # line skipped),
 * up to and with TK_EOF. Returns 0, -ENOMEM or next_token's error. */
static int tokenize(const char *src, size_t len, tokens_t *ts)
{
    lexer_t x = {src, len, 0};
    /* A first line starting with '#' (a shebang) is skipped, as by LuaJIT. */
    if (len > 0 && src[0] == '#')
        while (x.pos < len && src[x.pos] != '\n')
            x.pos++;
    for (;;) {
        if (ts->len == ts->cap) {
            size_t cap = ts->cap ? ts->cap * 2 : 256;
            token_t *grown = realloc(ts->v, cap * sizeof(*grown));
            if (grown == NULL)
                return -ENOMEM;
            ts->v = grown;
            ts->cap = cap;
        }
        token_t *t = &ts->v[ts->len];
        int rc = next_token(&x, t);
        if (rc != 0)
            return rc;
        ts->len++;
        if (t->kind == TK_EOF)
            return 0;
    }
}

/* Adds a name to the comma-separated list (once; cut when full). */
static void list_add(char *list, size_t cap, const char *name, size_t len)
{
    size_t have = strlen(list);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && memcmp(p, name, len) == 0)
            return;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (have + len + 6 >= cap) {
        if (have + 4 < cap && (have < 3 || strcmp(list + have - 3, "...") != 0))
            snprintf(list + have, cap - have, "%s...", have ? ", " : "");
        return;
    }
    snprintf(list + have, cap - have, "%s%.*s", have ? ", " : "", (int)len, name);
}

/* The apparent exports: with `return NAME` last, the keys set on NAME
 * (`function NAME.x`, `function NAME:x`, `NAME.x =`, `NAME["x"] =`); with
 * `return { ... }` last, the constructor's keys. */
static void apparent_exports(const tokens_t *ts, char *list, size_t cap)
{
    list[0] = '\0';
    /* The module's own return: the last one outside every function body.
     * Blocks are tracked by their keywords (while/for open theirs with do). */
    enum { MAX_DEPTH = 256 };
    bool is_function[MAX_DEPTH];
    size_t depth = 0, functions = 0, ret = SIZE_MAX;
    for (size_t i = 0; i + 1 < ts->len; i++) {
        const token_t *t = &ts->v[i];
        if (name_is(t, "function") || name_is(t, "if") || name_is(t, "do") || name_is(t, "repeat")) {
            if (depth < MAX_DEPTH)
                is_function[depth] = name_is(t, "function");
            functions += depth >= MAX_DEPTH || name_is(t, "function");
            depth++;
        } else if ((name_is(t, "end") || name_is(t, "until")) && depth > 0) {
            depth--;
            functions -= depth >= MAX_DEPTH || is_function[depth];
        } else if (name_is(t, "return") && functions == 0) {
            ret = i;
        }
    }
    if (ret == SIZE_MAX)
        return;
    const token_t *r = &ts->v[ret + 1];
    if (r->kind == TK_NAME) {
        for (size_t i = 0; i + 3 < ts->len; i++) {
            const token_t *a = &ts->v[i], *dot = &ts->v[i + 1], *key = &ts->v[i + 2], *after = &ts->v[i + 3];
            if (!(a->kind == TK_NAME && a->len == r->len && memcmp(a->p, r->p, r->len) == 0))
                continue;
            bool defined = i > 0 && name_is(&ts->v[i - 1], "function");
            if ((op_is(dot, ".") || op_is(dot, ":")) && key->kind == TK_NAME && (defined || op_is(after, "=")))
                list_add(list, cap, key->p, key->len);
            else if (op_is(dot, "[") && key->kind == TK_STRING && op_is(after, "]") && i + 4 < ts->len &&
                     op_is(&ts->v[i + 4], "="))
                list_add(list, cap, key->str, key->str_len);
        }
    } else if (op_is(r, "{")) {
        int depth = 0;
        for (size_t i = ret + 1; i < ts->len; i++) {
            const token_t *t = &ts->v[i];
            if (op_is(t, "{") || op_is(t, "(") || op_is(t, "["))
                depth++;
            else if (op_is(t, "}") || op_is(t, ")") || op_is(t, "]")) {
                if (--depth == 0)
                    break;
            } else if (depth == 1 && t->kind == TK_NAME && i + 1 < ts->len && op_is(&ts->v[i + 1], "=") &&
                       (op_is(&ts->v[i - 1], "{") || op_is(&ts->v[i - 1], ",") || op_is(&ts->v[i - 1], ";")))
                list_add(list, cap, t->p, t->len);
        }
    }
}

int reg__lua_export_check(const char *src, size_t len, const char *export, bool *missing, char *exports,
                          size_t exports_cap)
{
    *missing = false;
    if (exports_cap)
        exports[0] = '\0';
    tokens_t ts = {0};
    int rc = tokenize(src, len, &ts);
    if (rc != 0) {
        tokens_dispose(&ts);
        return rc;
    }
    bool mentioned = false, dynamic = false;
    for (size_t i = 0; i < ts.len && !mentioned && !dynamic; i++) {
        const token_t *t = &ts.v[i];
        if (t->kind == TK_STRING) {
            mentioned = has_word(t->str, t->str_len, export);
        } else if (t->kind == TK_NAME) {
            mentioned = name_is(t, export);
            for (size_t k = 0; k < sizeof(dynamic_names) / sizeof(dynamic_names[0]); k++)
                dynamic = dynamic || name_is(t, dynamic_names[k]);
            /* require "tine" is the SDK, which defines no handlers; any
             * other module may hand back (or fill) the returned table. */
            if (name_is(t, "require")) {
                const token_t *a = i + 1 < ts.len ? &ts.v[i + 1] : NULL;
                if (a && op_is(a, "(") && i + 2 < ts.len)
                    a = &ts.v[i + 2];
                dynamic = dynamic || a == NULL || a->kind != TK_STRING || strcmp(a->str, "tine") != 0;
            }
        } else if (op_is(t, "]") && i + 1 < ts.len && op_is(&ts.v[i + 1], "=")) {
            /* `x[key] = v` or `{ [key] = v }`: a key the code computes,
             * unless it is one literal (a string, seen above, or a number). */
            bool literal =
                i >= 2 && op_is(&ts.v[i - 2], "[") && (ts.v[i - 1].kind == TK_STRING || ts.v[i - 1].kind == TK_NUMBER);
            dynamic = !literal;
        }
    }
    if (!mentioned && !dynamic) {
        *missing = true;
        if (exports_cap)
            apparent_exports(&ts, exports, exports_cap);
    }
    tokens_dispose(&ts);
    return 0;
}
