/* The deploy-time check that a Python handler module defines the function a
 * manifest names (`src/app.py#handle`), without running any of it: tined
 * does not run user code at deploy, and the CLI checks the same way with no
 * Python at hand.
 *
 * The module is read with a scanner of our own that knows what hides code
 * from a reader: comments, string literals of every form (quotes, triple
 * quotes, prefixes, escapes), brackets that join lines, and backslash
 * continuations. It splits the module into logical lines, each with its
 * indentation, and looks at the ones that bind a name:
 *
 *   def NAME / async def NAME / class NAME
 *   NAME = ..., NAME: T = ..., A, NAME = ... (not ==, not +=)
 *   import NAME, import a.b (binds a), import x as NAME,
 *   from m import NAME, from m import x as NAME, from m import (..., NAME)
 *
 * A binding counts when it is at indentation 0, or inside a top-level `if`,
 * `try`, `with`, `for`, `while` or `match` block (a conditional definition
 * is still the module's); one inside a def or class is not. The module is
 * refused only when no binding of the export counts and nothing in it can
 * bind names the scanner cannot see: `from m import *`, `globals()`,
 * `vars()`, `setattr`, `exec`, `__dict__`, `sys.modules` or a module-level
 * `__getattr__`. A module the scanner cannot read to its end (an
 * unterminated string, brackets that do not balance) is accepted too:
 * Python itself reports it when the zygote imports it, as a load error
 * naming the function. */
#include "bundle_internal.h"
#include "tine_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *src;
    size_t len;
    size_t pos;
    int depth;       /* open brackets */
    bool unreadable; /* the scanner lost track: accept */
    bool dynamic;    /* something can bind names the scanner cannot see */
    bool found;      /* a binding of the export counts */
    const char *export;
    size_t export_len;
    char *names; /* the module's top-level def and class names, for the message */
    size_t names_cap;
    size_t names_len;
    /* the logical line being read */
    size_t line_start; /* where its first token begins */
    int indent;        /* columns before it */
    char top_kind[16]; /* the first word of the last logical line at indentation 0 */
} scan_t;

static bool is_name_start(unsigned char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Whether the word at s (len bytes) is `w`. */
static bool word_is(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(s, w, len) == 0;
}

/* At a quote (or a string prefix followed by one): the length of the prefix
 * and whether it makes a raw string; -1 when s[at] does not start a string. */
static int string_prefix(const scan_t *x, size_t at, bool *raw)
{
    size_t i = at;
    *raw = false;
    while (i < x->len && i - at < 3 && strchr("rRbBuUfF", x->src[i]) != NULL) {
        if (x->src[i] == 'r' || x->src[i] == 'R')
            *raw = true;
        i++;
    }
    if (i < x->len && (x->src[i] == '"' || x->src[i] == '\''))
        return (int)(i - at);
    return -1;
}

/* Skips a string literal whose quote is at x->pos (the prefix already
 * passed). Marks the scan unreadable when it does not end. */
static void skip_string(scan_t *x, bool raw)
{
    char q = x->src[x->pos];
    bool triple = x->pos + 2 < x->len && x->src[x->pos + 1] == q && x->src[x->pos + 2] == q;
    x->pos += triple ? 3 : 1;
    while (x->pos < x->len) {
        char c = x->src[x->pos];
        if (c == '\\') { /* in a raw string too, a backslash keeps the quote after it in the string */
            x->pos += 2;
            continue;
        }
        if (c == q && (!triple || (x->pos + 2 < x->len && x->src[x->pos + 1] == q && x->src[x->pos + 2] == q))) {
            x->pos += triple ? 3 : 1;
            return;
        }
        if (c == '\n' && !triple)
            break; /* a one-line string cannot span lines */
        x->pos++;
    }
    (void)raw;
    x->unreadable = true;
}

/* Adds a top-level name to the list for the message (comma-separated; the
 * list is a hint: it stops when full). */
static void note_name(scan_t *x, const char *s, size_t len)
{
    if (x->names_len + len + 3 > x->names_cap)
        return;
    if (x->names_len > 0) {
        memcpy(x->names + x->names_len, ", ", 2);
        x->names_len += 2;
    }
    memcpy(x->names + x->names_len, s, len);
    x->names_len += len;
    x->names[x->names_len] = '\0';
}

/* A token of a logical line: a name, or one other character (strings and
 * numbers are read as '"' and '0'). */
typedef struct {
    char kind; /* 'n' name, '"' string, '0' number, else the character; 0 at the line's end */
    const char *p;
    size_t len;
} tok_t;

#define LINE_TOKENS 64 /* tokens of a logical line looked at; the rest are only scanned */

/* Whether a binding made at the current logical line counts for the module:
 * at indentation 0, or in a top-level block that is not a def or class. */
static bool binding_counts(const scan_t *x)
{
    if (x->indent == 0)
        return true;
    static const char *const blocks[] = {"if",   "elif", "else",  "try",   "except", "finally",
                                         "with", "for",  "while", "match", "case",   "async"};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (strcmp(x->top_kind, blocks[i]) == 0)
            return true;
    return false;
}

/* One name bound by the current logical line. */
static void bound(scan_t *x, const tok_t *t)
{
    if (t->len == x->export_len && memcmp(t->p, x->export, t->len) == 0 && binding_counts(x))
        x->found = true;
    if (word_is(t->p, t->len, "__getattr__") && binding_counts(x))
        x->dynamic = true; /* PEP 562: the module answers any attribute */
}

/* Whether the word at t is a keyword that opens a block holding module-level
 * statements (`if x: NAME = ...` on one line binds NAME for the module). */
static bool opens_module_block(const tok_t *t)
{
    static const char *const kw[] = {"if", "elif", "else", "try", "except", "finally", "with", "for", "while"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (t->kind == 'n' && word_is(t->p, t->len, kw[i]))
            return true;
    return false;
}

/* Looks at the tokens of one simple statement for the names it binds. */
static void statement(scan_t *x, const tok_t *t, size_t n)
{
    if (n == 0)
        return;
    size_t i = 0;
    if (opens_module_block(&t[0])) {
        /* The statement after the block's ':' (outside brackets), if any. */
        int depth = 0;
        for (i = 1; i < n; i++) {
            depth += t[i].kind == '(' || t[i].kind == '[' || t[i].kind == '{';
            depth -= t[i].kind == ')' || t[i].kind == ']' || t[i].kind == '}';
            if (depth == 0 && t[i].kind == ':')
                break;
        }
        if (i + 1 < n)
            statement(x, t + i + 1, n - i - 1);
        return;
    }
    if (t[0].kind == 'n' && word_is(t[0].p, t[0].len, "async"))
        i = 1;
    if (i < n && t[i].kind == 'n' && (word_is(t[i].p, t[i].len, "def") || word_is(t[i].p, t[i].len, "class"))) {
        if (i + 1 < n && t[i + 1].kind == 'n') {
            bound(x, &t[i + 1]);
            if (x->indent == 0)
                note_name(x, t[i + 1].p, t[i + 1].len);
        }
        return;
    }
    if (t[0].kind == 'n' && word_is(t[0].p, t[0].len, "import")) {
        /* import a.b.c [as d], e ... : binds d, else a */
        for (i = 1; i < n;) {
            size_t first = i;
            while (i < n && (t[i].kind == 'n' || t[i].kind == '.') && !word_is(t[i].p, t[i].len, "as"))
                i++;
            if (i + 1 < n && t[i].kind == 'n' && word_is(t[i].p, t[i].len, "as")) {
                bound(x, &t[i + 1]);
                i += 2;
            } else if (first < n && t[first].kind == 'n') {
                bound(x, &t[first]);
            }
            while (i < n && t[i].kind != ',')
                i++;
            i++;
        }
        return;
    }
    if (t[0].kind == 'n' && word_is(t[0].p, t[0].len, "from")) {
        for (i = 1; i < n && !(t[i].kind == 'n' && word_is(t[i].p, t[i].len, "import")); i++)
            ;
        for (i++; i < n; i++) {
            if (t[i].kind == '*')
                x->dynamic = true;
            if (t[i].kind != 'n' || word_is(t[i].p, t[i].len, "as"))
                continue;
            bool renamed = i + 2 < n && t[i + 1].kind == 'n' && word_is(t[i + 1].p, t[i + 1].len, "as");
            bound(x, renamed ? &t[i + 2] : &t[i]);
            if (renamed)
                i += 2;
        }
        return;
    }
    /* NAME [, NAME]* [: annotation] = ... : each NAME before the first '='
     * (not '==') is bound, as is NAME of NAME: T. Chained a = b = c binds
     * every target; only the first is looked at, which is enough here. */
    size_t names_end = 0;
    while (names_end < n && (t[names_end].kind == 'n' || t[names_end].kind == ',' || t[names_end].kind == '(' ||
                             t[names_end].kind == ')' || t[names_end].kind == '[' || t[names_end].kind == ']' ||
                             t[names_end].kind == '*'))
        names_end++;
    if (names_end == 0 || names_end >= n)
        return;
    bool assign = t[names_end].kind == '=' && !(names_end + 1 < n && t[names_end + 1].kind == '=');
    bool annotated = t[names_end].kind == ':' && names_end == 1;
    if (!assign && !annotated)
        return;
    for (i = 0; i < names_end; i++)
        if (t[i].kind == 'n')
            bound(x, &t[i]);
}

/* One logical line: the first word of a line at indentation 0 is what the
 * lines indented below it are in. */
static void logical_line(scan_t *x, const tok_t *t, size_t n)
{
    if (n == 0)
        return;
    if (x->indent == 0) {
        size_t k = t[0].kind == 'n' && t[0].len < sizeof x->top_kind ? t[0].len : 0;
        memcpy(x->top_kind, t[0].p, k);
        x->top_kind[k] = '\0';
    }
    statement(x, t, n);
}

/* Names anywhere in the code that can bind names the scanner cannot see. */
static bool is_dynamic_name(const char *s, size_t len)
{
    static const char *const dynamic[] = {"globals", "vars", "setattr", "exec", "__dict__", "modules", "__import__"};
    for (size_t i = 0; i < sizeof dynamic / sizeof dynamic[0]; i++)
        if (word_is(s, len, dynamic[i]))
            return true;
    return false;
}

/* Scans the whole module, one logical line at a time. */
static void scan(scan_t *x)
{
    tok_t toks[LINE_TOKENS];
    size_t ntok = 0;
    bool at_line_start = true;
    size_t col = 0;
    if (x->len >= 3 && memcmp(x->src, "\xEF\xBB\xBF", 3) == 0)
        x->pos = 3;
    while (x->pos < x->len && !x->unreadable) {
        unsigned char c = (unsigned char)x->src[x->pos];
        if (at_line_start) {
            /* Indentation of a new logical line; blank and comment-only lines
             * do not start one. */
            if (c == ' ' || c == '\t' || c == '\f') {
                col++;
                x->pos++;
                continue;
            }
            if (c == '\n' || c == '\r' || c == '#') {
                while (c == '#' && x->pos < x->len && x->src[x->pos] != '\n')
                    x->pos++;
                x->pos++;
                col = 0;
                continue;
            }
            at_line_start = false;
            x->indent = (int)col;
            x->line_start = x->pos;
            ntok = 0;
        }
        if (c == '#') {
            while (x->pos < x->len && x->src[x->pos] != '\n')
                x->pos++;
            continue;
        }
        if (c == '\\' && x->pos + 1 < x->len && (x->src[x->pos + 1] == '\n' || x->src[x->pos + 1] == '\r')) {
            x->pos += 2; /* a continuation joins the next line */
            if (x->pos < x->len && x->src[x->pos - 1] == '\r' && x->src[x->pos] == '\n')
                x->pos++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == ';') {
            x->pos++;
            if (x->depth > 0)
                continue; /* inside brackets a newline joins lines */
            logical_line(x, toks, ntok);
            ntok = 0;
            if (c == ';') { /* another statement on the same line, at the same indentation */
                x->line_start = x->pos;
                continue;
            }
            at_line_start = true;
            col = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\f') {
            x->pos++;
            continue;
        }
        bool raw;
        int prefix = string_prefix(x, x->pos, &raw);
        tok_t t = {0, x->src + x->pos, 1};
        if (prefix >= 0) {
            x->pos += (size_t)prefix;
            skip_string(x, raw);
            t.kind = '"';
        } else if (is_name_start(c)) {
            size_t start = x->pos;
            while (x->pos < x->len && is_name_char((unsigned char)x->src[x->pos]))
                x->pos++;
            t = (tok_t){'n', x->src + start, x->pos - start};
            if (is_dynamic_name(t.p, t.len))
                x->dynamic = true;
        } else if (c >= '0' && c <= '9') {
            while (x->pos < x->len && (is_name_char((unsigned char)x->src[x->pos]) || x->src[x->pos] == '.'))
                x->pos++;
            t.kind = '0';
        } else {
            if (c == '(' || c == '[' || c == '{')
                x->depth++;
            else if (c == ')' || c == ']' || c == '}')
                x->depth--;
            if (x->depth < 0)
                x->unreadable = true;
            /* Two-character operators that end in '=' are not assignments. */
            if (strchr("=!<>+-*/%&|^@:~", (char)c) && x->pos + 1 < x->len && x->src[x->pos + 1] == '=' && c != '=') {
                t.kind = 'o';
                x->pos += 2;
            } else {
                t.kind = (char)c;
                x->pos++;
            }
        }
        if (ntok < LINE_TOKENS)
            toks[ntok++] = t;
    }
    if (!x->unreadable && x->depth != 0)
        x->unreadable = true;
    if (!x->unreadable && !at_line_start)
        logical_line(x, toks, ntok);
}

void reg__python_export_check(const char *src, size_t len, const char *export, bool *missing, char *defined,
                              size_t defined_cap)
{
    *missing = false;
    if (defined_cap > 0)
        defined[0] = '\0';
    scan_t x = {
        .src = src,
        .len = len,
        .export = export,
        .export_len = strlen(export),
        .names = defined,
        .names_cap = defined_cap,
    };
    scan(&x);
    *missing = !x.found && !x.dynamic && !x.unreadable;
}
