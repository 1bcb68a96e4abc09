/* YAML documents as jansson values, for `tine test`'s declarative cases:
 * mappings become objects, sequences arrays, plain scalars null, booleans,
 * integers, reals or strings as YAML 1.2's core schema reads them, quoted
 * scalars strings. Anchors and aliases are refused. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "tine_common.h"

#define YAML_JSON_MAX_DEPTH 64

/* The value of a plain scalar as the core schema reads it. */
static json_t *plain_scalar(const char *s, size_t len)
{
    if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    char *end = NULL;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (end == s + len && errno == 0 && (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return json_integer(i);
    errno = 0;
    double d = strtod(s, &end);
    if (end == s + len && errno == 0 && (s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
        return json_real(d);
    return json_stringn(s, len);
}

/* Adds v (taken) to the container on top of the stack, under the pending
 * key for a mapping. Returns false (v freed) when a key is not a string. */
static bool add_value(json_t **stack, char **keys, size_t depth, json_t *v)
{
    json_t *top = stack[depth - 1];
    if (json_is_array(top))
        return json_array_append_new(top, v) == 0;
    if (keys[depth - 1] == NULL) { /* this value is a key */
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v) && !json_is_null(v)) {
            json_decref(v);
            return false;
        }
        keys[depth - 1] = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
        json_decref(v);
        return true;
    }
    json_object_set_new(top, keys[depth - 1], v);
    free(keys[depth - 1]);
    keys[depth - 1] = NULL;
    return true;
}

json_t *cli_yaml_load(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    json_t *stack[YAML_JSON_MAX_DEPTH + 1];
    char *keys[YAML_JSON_MAX_DEPTH + 1] = {0};
    size_t depth = 0;
    json_t *root = NULL;
    bool done = false, failed = false;
    while (!done && !failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(err, errlen, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1, p.problem_mark.column + 1,
                     p.problem ? p.problem : "not valid YAML");
            failed = true;
            break;
        }
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        json_t *v = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_END_EVENT:
            done = root != NULL;
            break;
        case YAML_ALIAS_EVENT:
            snprintf(err, errlen, "%s:%zu:%zu: aliases (*name) are not supported here", path, line, col);
            failed = true;
            break;
        case YAML_SCALAR_EVENT:
            v = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                    ? plain_scalar((const char *)ev.data.scalar.value, ev.data.scalar.length)
                    : json_stringn((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (v == NULL) {
                snprintf(err, errlen, "%s:%zu:%zu: not valid UTF-8", path, line, col);
                failed = true;
            } else if (depth == 0) {
                root = v;
            } else if (!add_value(stack, keys, depth, v)) {
                snprintf(err, errlen, "%s:%zu:%zu: a mapping key must be a scalar", path, line, col);
                failed = true;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == YAML_JSON_MAX_DEPTH) {
                snprintf(err, errlen, "%s:%zu:%zu: nested deeper than %d levels", path, line, col,
                         YAML_JSON_MAX_DEPTH);
                failed = true;
                break;
            }
            v = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            /* Where each mapping starts, for messages (the caller ignores the key). */
            if (ev.type == YAML_MAPPING_START_EVENT)
                json_object_set_new(v, CLI_YAML_LINE_KEY, json_integer((json_int_t)line));
            if (depth > 0 && !add_value(stack, keys, depth, json_incref(v))) {
                json_decref(v);
                snprintf(err, errlen, "%s:%zu:%zu: a mapping key must be a scalar", path, line, col);
                failed = true;
                break;
            }
            if (depth == 0)
                root = json_incref(v);
            stack[depth++] = v;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            json_decref(stack[--depth]);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (size_t i = 0; i < depth; i++) {
        json_decref(stack[i]);
        free(keys[i]);
    }
    if (failed) {
        json_decref(root);
        return NULL;
    }
    return root ? root : json_null();
}
