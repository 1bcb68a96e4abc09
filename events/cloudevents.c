/* CloudEvents 1.0 as tine accepts them: validation of the JSON event format
 * and reading the HTTP protocol binding's three modes (structured, batch,
 * binary). Input comes from anyone holding the token: every path rejects
 * bad input with a message naming the attribute, never aborts. */
#include "events_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CE_NAME_MAX 20

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986 URI-reference: only unreserved, reserved and %HH; non-empty. */
static bool uri_reference_ok(const char *s, size_t len)
{
    static const char allowed[] = "-._~:/?#[]@!$&'()*+,;=";
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!is_alpha(c) && !is_digit(c) && (c == '\0' || strchr(allowed, c) == NULL)) {
            return false;
        }
    }
    return true;
}

/* An absolute URI: a scheme ([a-zA-Z][a-zA-Z0-9+.-]*) and ":" first. */
static bool uri_absolute_ok(const char *s, size_t len)
{
    if (!uri_reference_ok(s, len) || !is_alpha(s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (s[i] == ':')
            return true;
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' && s[i] != '.' && s[i] != '-')
            return false;
    }
    return false;
}

/* Reads exactly n digits at s into *out. */
static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[at + i]))
            return false;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time: 2026-01-02T15:04:05(.123)?(Z|+01:00). */
static bool rfc3339_ok(const char *s, size_t len)
{
    static const int mdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (!digits(s, len, 0, 4, &y) || len < 20 || s[4] != '-' || !digits(s, len, 5, 2, &mo) || s[7] != '-' ||
        !digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s, len, 11, 2, &h) ||
        s[13] != ':' || !digits(s, len, 14, 2, &mi) || s[16] != ':' || !digits(s, len, 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo] || h > 23 || mi > 59 || se > 60)
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z'))
        return i + 1 == len;
    int oh, om;
    if (i >= len || (s[i] != '+' && s[i] != '-') || !digits(s, len, i + 1, 2, &oh) || i + 3 >= len ||
        s[i + 3] != ':' || !digits(s, len, i + 4, 2, &om))
        return false;
    return oh <= 23 && om <= 59 && i + 6 == len;
}

/* Whether the len bytes at s are standard base64 with padding (length a
 * multiple of 4, = only at the end). */
static bool base64_ok(const char *s, size_t len)
{
    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '=') {
            /* Padding: only in the last two places, and only padding after. */
            if (i < len - 2)
                return false;
            for (size_t j = i; j < len; j++)
                if (s[j] != '=')
                    return false;
            return true;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/')
            return false;
    }
    return true;
}

/* A media type "type/subtype" with optional parameters. */
static bool media_type_ok(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    if (slash == NULL || slash == s || (size_t)(slash - s) + 1 >= len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Whether name is a CloudEvents attribute name: 1 to CE_NAME_MAX lower-case
 * letters and digits. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] >= 'a' && name[i] <= 'z') && !is_digit(name[i]))
            return false;
    return true;
}

/* A required or optional string attribute; "" is refused for required ones
 * and for the optional ones whose spec says non-empty. */
static int string_attr(json_t *ev, const char *name, bool required, const char **out, size_t *len, char *err,
                       size_t errlen)
{
    json_t *v = json_object_get(ev, name);
    *out = NULL;
    *len = 0;
    if (v == NULL) {
        if (required)
            return tine_fail(err, errlen, "attribute '%s': required", name);
        return 0;
    }
    if (!json_is_string(v))
        return tine_fail(err, errlen, "attribute '%s': expected a string", name);
    *out = json_string_value(v);
    *len = json_string_length(v);
    if (*len == 0)
        return tine_fail(err, errlen, "attribute '%s': must not be empty", name);
    if (memchr(*out, '\0', *len))
        return tine_fail(err, errlen, "attribute '%s': must not contain NUL", name);
    return 0;
}

int ev_cloudevent_validate(json_t *event, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!json_is_object(event))
        return tine_fail(err, errlen, "expected a CloudEvent: a JSON object with specversion, id, source and type");
    /* "null" means absent (JSON event format, section 2.4). */
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(event, tmp, key, value)
    {
        if (json_is_null(value))
            json_object_del(event, key);
    }
    const char *s;
    size_t n;
    int rc;
    if ((rc = string_attr(event, "specversion", true, &s, &n, err, errlen)) != 0)
        return rc;
    if (n != 3 || memcmp(s, "1.0", 3) != 0)
        return tine_fail(err, errlen, "attribute 'specversion': expected \"1.0\", got \"%.*s\"", (int)(n > 16 ? 16 : n),
                       s);
    if ((rc = string_attr(event, "id", true, &s, &n, err, errlen)) != 0)
        return rc;
    if ((rc = string_attr(event, "source", true, &s, &n, err, errlen)) != 0)
        return rc;
    if (!uri_reference_ok(s, n))
        return tine_fail(err, errlen, "attribute 'source': expected a URI-reference such as /my/tool or urn:x:y");
    if ((rc = string_attr(event, "type", true, &s, &n, err, errlen)) != 0)
        return rc;
    if ((rc = string_attr(event, "datacontenttype", false, &s, &n, err, errlen)) != 0)
        return rc;
    if (s && !media_type_ok(s, n))
        return tine_fail(err, errlen, "attribute 'datacontenttype': expected a media type such as application/json");
    if ((rc = string_attr(event, "dataschema", false, &s, &n, err, errlen)) != 0)
        return rc;
    if (s && !uri_absolute_ok(s, n))
        return tine_fail(err, errlen, "attribute 'dataschema': expected an absolute URI");
    if ((rc = string_attr(event, "subject", false, &s, &n, err, errlen)) != 0)
        return rc;
    if ((rc = string_attr(event, "time", false, &s, &n, err, errlen)) != 0)
        return rc;
    if (s && !rfc3339_ok(s, n))
        return tine_fail(err, errlen,
                       "attribute 'time': expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z");
    json_t *b64 = json_object_get(event, "data_base64");
    if (b64) {
        if (json_object_get(event, "data"))
            return tine_fail(err, errlen, "attribute 'data_base64': not allowed together with 'data'");
        if (!json_is_string(b64) || !base64_ok(json_string_value(b64), json_string_length(b64)))
            return tine_fail(err, errlen, "attribute 'data_base64': expected a base64 string");
    }
    static const char *const known[] = {"specversion", "id",   "source",  "type", "datacontenttype", "dataschema",
                                        "subject",     "time", "data", "data_base64"};
    json_object_foreach(event, key, value)
    {
        bool is_known = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !is_known; i++)
            is_known = strcmp(key, known[i]) == 0;
        if (is_known)
            continue;
        if (!name_ok(key))
            return tine_fail(err, errlen,
                           "attribute '%.32s': extension names are 1 to 20 lower-case letters or digits", key);
        if (!json_is_string(value) && !json_is_integer(value) && !json_is_boolean(value))
            return tine_fail(err, errlen, "attribute '%s': expected a string, integer or boolean", key);
        const char *pin = strcmp(key, EV_PIN_ATTRIBUTE) == 0 ? json_string_value(value) : "a@1";
        const char *at = pin ? strrchr(pin, '@') : NULL;
        if (at == NULL || at == pin || at[1] == '\0' || at - pin > 200)
            return tine_fail(err, errlen,
                             "attribute '%s': expected APP@VERSION or APP@TAG (the version of the app whose "
                             "triggers get the event)",
                             key);
    }
    return 0;
}

/* The media type of a Content-Type value, lower-cased, without parameters. */
static void media_type(const char *ct, size_t len, char *out, size_t outlen)
{
    size_t i = 0, o = 0;
    while (i < len && (ct[i] == ' ' || ct[i] == '\t'))
        i++;
    while (i < len && ct[i] != ';' && ct[i] != ' ' && ct[i] != '\t' && o + 1 < outlen) {
        char c = ct[i++];
        out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[o] = '\0';
}

/* Whether the media type mt is JSON: application/json, text/json or a +json
 * suffix. */
static bool is_json_media(const char *mt)
{
    size_t n = strlen(mt);
    return strcmp(mt, "application/json") == 0 || strcmp(mt, "text/json") == 0 ||
           (n > 5 && strcmp(mt + n - 5, "+json") == 0);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The standard base64 (padded) of the len bytes at p as a fresh string, or
 * NULL without memory. */
static char *base64_encode(const unsigned char *p, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Percent-decodes a header value (the binding encodes space, '"', '%' and
 * non-ASCII that way). Returns a new string or NULL on out-of-memory. */
static char *percent_decode(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Binary mode: attributes from ce-* headers, data from the body. */
static int from_binary(const char *mt, const char *ct, size_t ct_len, const ev_header_t *headers, size_t nheaders,
                       const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    json_t *ev = json_object();
    if (ev == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nheaders; i++) {
        const ev_header_t *h = &headers[i];
        if (h->name_len <= 3 || strncasecmp(h->name, "ce-", 3) != 0)
            continue;
        char name[CE_NAME_MAX + 2];
        size_t nl = h->name_len - 3;
        if (nl > CE_NAME_MAX) {
            json_decref(ev);
            return tine_fail(err, errlen,
                           "header '%.*s': extension names are 1 to 20 lower-case letters or digits",
                           (int)(h->name_len > 40 ? 40 : h->name_len), h->name);
        }
        for (size_t j = 0; j < nl; j++) {
            char c = h->name[3 + j];
            name[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        name[nl] = '\0';
        if (strcmp(name, "data") == 0 || strcmp(name, "data_base64") == 0 || strcmp(name, "datacontenttype") == 0) {
            json_decref(ev);
            return tine_fail(err, errlen, "header 'ce-%s': not allowed in binary mode (the body is the data%s)", name,
                           strcmp(name, "datacontenttype") == 0 ? ", Content-Type its type" : "");
        }
        size_t vlen = 0;
        char *v = percent_decode(h->value, h->value_len, &vlen);
        json_t *jv = v ? json_stringn(v, vlen) : NULL;
        free(v);
        if (jv == NULL) {
            json_decref(ev);
            return tine_fail(err, errlen, "header 'ce-%s': the value is not valid UTF-8", name);
        }
        if (json_object_get(ev, name)) {
            json_decref(jv);
            json_decref(ev);
            return tine_fail(err, errlen, "header 'ce-%s': given twice", name);
        }
        json_object_set_new(ev, name, jv);
    }
    if (json_object_get(ev, "specversion") == NULL) {
        json_decref(ev);
        return tine_fail(err, errlen,
                       "attribute 'specversion': required (binary mode: a ce-specversion header; structured mode: "
                       "Content-Type application/cloudevents+json)");
    }
    if (ct_len) {
        json_t *jct = json_stringn(ct, ct_len);
        if (jct == NULL) {
            json_decref(ev);
            return tine_fail(err, errlen, "header 'content-type': not valid UTF-8");
        }
        json_object_set_new(ev, "datacontenttype", jct);
    }
    if (len > 0) {
        json_t *data = NULL;
        if (is_json_media(mt)) {
            json_error_t jerr;
            data = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
            if (data == NULL) {
                json_decref(ev);
                return tine_fail(err, errlen, "data: the body is not valid JSON (Content-Type %s): line %d column %d: %s",
                               mt, jerr.line, jerr.column, jerr.text);
            }
            json_object_set_new(ev, "data", data);
        } else if (strncmp(mt, "text/", 5) == 0 && (data = json_stringn(body, len)) != NULL) {
            json_object_set_new(ev, "data", data);
        } else {
            char *b64 = base64_encode((const unsigned char *)body, len);
            if (b64 == NULL) {
                json_decref(ev);
                return -ENOMEM;
            }
            json_object_set_new(ev, "data_base64", json_string(b64));
            free(b64);
        }
    }
    int rc = ev_cloudevent_validate(ev, err, errlen);
    if (rc != 0) {
        json_decref(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

int ev_cloudevents_from_http(const char *content_type, size_t ct_len, const ev_header_t *headers, size_t nheaders,
                             const void *body, size_t len, json_t **events, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    *events = NULL;
    char mt[128];
    media_type(content_type ? content_type : "", content_type ? ct_len : 0, mt, sizeof mt);
    bool batch = strcmp(mt, "application/cloudevents-batch+json") == 0;
    bool structured = strcmp(mt, "application/cloudevents+json") == 0;
    json_t *arr = json_array();
    if (arr == NULL)
        return -ENOMEM;
    if (!batch && !structured) {
        json_t *ev = NULL;
        int rc = from_binary(mt, content_type, content_type ? ct_len : 0, headers, nheaders, body, len, &ev, err,
                             errlen);
        if (rc != 0) {
            json_decref(arr);
            return rc;
        }
        json_array_append_new(arr, ev);
        *events = arr;
        return 0;
    }
    json_error_t jerr;
    json_t *doc = len ? json_loadb(body, len, 0, &jerr) : NULL;
    if (doc == NULL) {
        json_decref(arr);
        if (len == 0)
            return tine_fail(err, errlen, "body: empty; expected %s", batch ? "a JSON array of events" : "a JSON event");
        return tine_fail(err, errlen, "body: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    }
    if (structured) {
        int rc = ev_cloudevent_validate(doc, err, errlen);
        if (rc != 0) {
            json_decref(doc);
            json_decref(arr);
            return rc;
        }
        json_array_append_new(arr, doc);
        *events = arr;
        return 0;
    }
    json_decref(arr);
    if (!json_is_array(doc)) {
        json_decref(doc);
        return tine_fail(err, errlen, "body: expected a JSON array of events (application/cloudevents-batch+json)");
    }
    if (json_array_size(doc) == 0) {
        json_decref(doc);
        return tine_fail(err, errlen, "body: the batch holds no event");
    }
    for (size_t i = 0; i < json_array_size(doc); i++) {
        char e2[512];
        int rc = ev_cloudevent_validate(json_array_get(doc, i), e2, sizeof e2);
        if (rc != 0) {
            json_decref(doc);
            return tine_fail(err, errlen, "batch[%zu]: %s", i, e2);
        }
    }
    *events = doc;
    return 0;
}
