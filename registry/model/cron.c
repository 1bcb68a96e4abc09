/* Cron expressions of schedule triggers: five fields (minute hour
 * day-of-month month day-of-week), each a list of *, N or N-M with an optional
 * /step, months and weekdays also by name; or "@every <duration>" (at least
 * 1s); or one of @hourly @daily @midnight @weekly @monthly @yearly @annually.
 * reg_cron_validate checks an expression, reg_cron_next computes its next
 * firing time (UTC). */
#include "app_model.h"
#include "tine_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    unsigned min;
    unsigned max;
    const char *const *names; /* names[i] stands for the value names_base + i */
    unsigned names_base;
    size_t names_len;
} cron_field_t;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const cron_field_t cron_fields[5] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day of month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, month_names, 1, 12},
    {"day of week", 0, 7, weekday_names, 0, 7},
};

static const char *const shorthands[] = {"@hourly",  "@daily",  "@midnight", "@weekly",
                                         "@monthly", "@yearly", "@annually"};

#define CRON_FIELDS_EXPECTED "expected 5 fields (minute hour day-of-month month day-of-week)"
#define CRON_ITEM_EXPECTED "expected *, N or N-M (or a comma-separated list of them), each with an optional /step"

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Shows at most 32 bytes of a token in messages. */
static int shown_len(size_t len)
{
    return (int)(len > 32 ? 32 : len);
}

/* Parses one value of a field (a number or, for month and weekday, a
 * three-letter name in any case) into *out, range-checked. */
static int parse_value(const cron_field_t *f, int index, const char *s, size_t len, unsigned *out, char *err,
                       size_t errlen)
{
    if (len == 0)
        return tine_fail(err, errlen, "field %d (%s): a number is missing; " CRON_ITEM_EXPECTED, index, f->name);
    if (s[0] >= '0' && s[0] <= '9') {
        unsigned v = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return tine_fail(err, errlen, "field %d (%s): '%.*s' is not a number", index, f->name,
                                 shown_len(len), s);
            if (v < 100000)
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v < f->min || v > f->max)
            return tine_fail(err, errlen, "field %d (%s): %.*s is out of range %u-%u", index, f->name,
                             shown_len(len), s, f->min, f->max);
        *out = v;
        return 0;
    }
    for (size_t i = 0; f->names && len == 3 && i < f->names_len; i++) {
        if (lower(s[0]) == f->names[i][0] && lower(s[1]) == f->names[i][1] && lower(s[2]) == f->names[i][2]) {
            *out = f->names_base + (unsigned)i;
            return 0;
        }
    }
    if (f->names)
        return tine_fail(err, errlen, "field %d (%s): '%.*s' is neither a number %u-%u nor a name %s..%s", index,
                         f->name, shown_len(len), s, f->min, f->max, f->names[0], f->names[f->names_len - 1]);
    return tine_fail(err, errlen, "field %d (%s): '%.*s' is not a number; " CRON_ITEM_EXPECTED, index, f->name,
                     shown_len(len), s);
}

/* Parses one list item (*, N, N-M, each with an optional /step) and sets the
 * bits of the values it selects. */
static int parse_item(const cron_field_t *f, int index, const char *s, size_t len, uint64_t *bits, char *err,
                      size_t errlen)
{
    const char *slash = memchr(s, '/', len);
    size_t base_len = slash ? (size_t)(slash - s) : len;
    unsigned span = f->max - f->min + 1, step = 1, lo, hi;
    if (slash) {
        const char *st = slash + 1;
        size_t st_len = len - base_len - 1;
        unsigned v = 0;
        bool ok = st_len > 0;
        for (size_t i = 0; i < st_len && ok; i++) {
            ok = st[i] >= '0' && st[i] <= '9';
            if (ok && v < 100000)
                v = v * 10 + (unsigned)(st[i] - '0');
        }
        if (!ok || v < 1 || v > span)
            return tine_fail(err, errlen, "field %d (%s): step must be a number 1-%u, got '%.*s'", index, f->name,
                             span, shown_len(st_len), st);
        step = v;
    }
    if (base_len == 1 && s[0] == '*') {
        lo = f->min;
        hi = f->max;
    } else {
        const char *dash = memchr(s, '-', base_len);
        size_t lo_len = dash ? (size_t)(dash - s) : base_len;
        int rc = parse_value(f, index, s, lo_len, &lo, err, errlen);
        if (rc != 0)
            return rc;
        hi = slash ? f->max : lo; /* "N/step" runs from N to the end of the range */
        if (dash) {
            rc = parse_value(f, index, dash + 1, base_len - lo_len - 1, &hi, err, errlen);
            if (rc != 0)
                return rc;
            if (hi < lo)
                return tine_fail(err, errlen, "field %d (%s): range '%.*s' goes backwards", index, f->name,
                                 shown_len(base_len), s);
        }
    }
    for (unsigned v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
}

/* Parses a comma-separated field into a bit set of the values it selects. */
static int parse_field(int index, const char *s, size_t len, uint64_t *bits, char *err, size_t errlen)
{
    const cron_field_t *f = &cron_fields[index - 1];
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= '0' && ch <= '9') || (lower(ch) >= 'a' && lower(ch) <= 'z') || ch == '*' || ch == '-' ||
                  ch == '/' || ch == ',';
        if (!ok)
            return tine_fail(err, errlen, "field %d (%s): '%c' is not allowed; " CRON_ITEM_EXPECTED, index, f->name,
                             ch);
    }
    *bits = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        if (i == start)
            return tine_fail(err, errlen, "field %d (%s): empty item in list '%.*s'", index, f->name, shown_len(len),
                             s);
        int rc = parse_item(f, index, s + start, i - start, bits, err, errlen);
        if (rc != 0)
            return rc;
        start = i + 1;
    }
    return 0;
}

/* Validates "@every <duration>" and the fixed shorthands. */
static int validate_shorthand(const char *expr, char *err, size_t errlen)
{
    size_t word = strcspn(expr, " \t");
    if (word == 6 && strncmp(expr, "@every", 6) == 0) {
        const char *d = expr + 6;
        while (is_blank(*d))
            d++;
        size_t dlen = strcspn(d, " \t");
        const char *rest = d + dlen;
        while (is_blank(*rest))
            rest++;
        if (dlen == 0)
            return tine_fail(err, errlen, "@every needs a duration such as 30s, 5m or 1h30m");
        if (*rest)
            return tine_fail(err, errlen, "@every takes one duration, found more after '%.*s'", shown_len(dlen), d);
        char buf[64];
        uint64_t ms;
        if (dlen >= sizeof buf)
            return tine_fail(err, errlen, "@every: '%.*s' is not a duration such as 30s or 5m", shown_len(dlen), d);
        memcpy(buf, d, dlen);
        buf[dlen] = '\0';
        if (reg_parse_duration_ms(buf, &ms) != 0)
            return tine_fail(err, errlen, "@every: '%s' is not a duration such as 30s or 5m (units h, m, s, ms)",
                             buf);
        if (ms < 1000)
            return tine_fail(err, errlen, "@every: %s is shorter than the minimum of 1s", buf);
        return 0;
    }
    for (size_t i = 0; i < sizeof shorthands / sizeof shorthands[0]; i++) {
        if (strlen(shorthands[i]) != word || strncmp(expr, shorthands[i], word) != 0)
            continue;
        const char *rest = expr + word;
        while (is_blank(*rest))
            rest++;
        if (*rest)
            return tine_fail(err, errlen, "%s takes no fields, found '%.*s'", shorthands[i],
                             shown_len(strlen(rest)), rest);
        return 0;
    }
    return tine_fail(err, errlen,
                     "unknown shorthand '%.*s'; expected @every <duration>, @hourly, @daily, @midnight, @weekly, "
                     "@monthly, @yearly or @annually",
                     shown_len(word), expr);
}

/* With the day of week unrestricted, a schedule whose days of month occur in
 * none of its months (e.g. "0 0 30 2 *") would never fire. */
static bool some_day_exists(uint64_t dom_bits, uint64_t month_bits)
{
    static const unsigned days_in_month[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (unsigned m = 1; m <= 12; m++)
        if (month_bits & ((uint64_t)1 << m))
            for (unsigned d = 1; d <= days_in_month[m]; d++)
                if (dom_bits & ((uint64_t)1 << d))
                    return true;
    return false;
}

/* A parsed schedule: an interval for "@every", else the bit sets of the five
 * fields (shorthands expanded) and whether day of month / day of week were
 * restricted (cron fires on either when both are). */
typedef struct {
    uint64_t every_ms;
    uint64_t bits[5];
    bool dom_any;
    bool dow_any;
} cron_spec_t;

static int cron_parse(const char *expr, cron_spec_t *spec, char *err, size_t errlen);

/* Expands a fixed shorthand into the equivalent five fields. */
static const char *shorthand_fields(const char *expr)
{
    static const char *const map[][2] = {{"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
                                         {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
                                         {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
                                         {"@annually", "0 0 1 1 *"}};
    size_t word = strcspn(expr, " \t");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == word && strncmp(expr, map[i][0], word) == 0)
            return map[i][1];
    return NULL;
}

int reg_cron_validate(const char *expr, char *err, size_t errlen)
{
    cron_spec_t spec;
    return cron_parse(expr, &spec, err, errlen);
}

/* Parses a five-field expression, a shorthand (@hourly ...) or @every
 * <duration> into spec. Returns 0, or TINE_EINVAL with what is wrong in err. */
static int cron_parse(const char *expr, cron_spec_t *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    if (err && errlen)
        err[0] = '\0';
    if (expr == NULL)
        return tine_fail(err, errlen, "no cron expression; " CRON_FIELDS_EXPECTED " or @every <duration>");
    while (is_blank(*expr))
        expr++;
    if (*expr == '\0')
        return tine_fail(err, errlen, "empty cron expression; " CRON_FIELDS_EXPECTED " or @every <duration>");
    if (*expr == '@') {
        int rc = validate_shorthand(expr, err, errlen);
        if (rc != 0)
            return rc;
        const char *fields = shorthand_fields(expr);
        if (fields)
            return cron_parse(fields, spec, err, errlen);
        const char *d = expr + 6;
        while (is_blank(*d))
            d++;
        char buf[64];
        size_t dlen = strcspn(d, " \t");
        memcpy(buf, d, dlen); /* validate_shorthand checked dlen < sizeof buf */
        buf[dlen] = '\0';
        return reg_parse_duration_ms(buf, &spec->every_ms);
    }

    const char *fields[5];
    size_t lens[5];
    int count = 0;
    for (const char *p = expr; *p;) {
        size_t n = strcspn(p, " \t");
        if (count < 5) {
            fields[count] = p;
            lens[count] = n;
        }
        count++;
        p += n;
        while (is_blank(*p))
            p++;
    }
    if (count != 5)
        return tine_fail(err, errlen, CRON_FIELDS_EXPECTED ", got %d", count);

    uint64_t *bits = spec->bits;
    for (int i = 0; i < 5; i++) {
        int rc = parse_field(i + 1, fields[i], lens[i], &bits[i], err, errlen);
        if (rc != 0)
            return rc;
    }
    const uint64_t every_weekday = 0x7f; /* 0..6; 7 is Sunday again */
    bits[4] = (bits[4] | (bits[4] >> 7)) & every_weekday;
    bool weekday_any = bits[4] == every_weekday;
    if (weekday_any && !some_day_exists(bits[2], bits[3]))
        return tine_fail(err, errlen, "never fires: day of month '%.*s' does not occur in month '%.*s'",
                         shown_len(lens[2]), fields[2], shown_len(lens[3]), fields[3]);
    spec->dom_any = fields[2][0] == '*';
    spec->dow_any = fields[4][0] == '*';
    return 0;
}

/* Whether bit v of bits is set. */
static bool has(uint64_t bits, int v)
{
    return (bits >> v) & 1;
}

/* Whether a UTC day fires: with both day fields restricted, cron (vixie)
 * fires on either; otherwise the restricted one decides. */
static bool day_fires(const cron_spec_t *s, const struct tm *tm)
{
    bool dom = has(s->bits[2], tm->tm_mday), dow = has(s->bits[4], tm->tm_wday);
    if (!s->dom_any && !s->dow_any)
        return dom || dow;
    return dom && dow;
}

int reg_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms)
{
    cron_spec_t s;
    int rc = cron_parse(expr, &s, NULL, 0);
    if (rc != 0)
        return rc;
    if (after_ms < 0)
        after_ms = 0;
    if (s.every_ms) {
        /* Ticks at whole multiples of the interval since the epoch, so every
         * node computes the same ones. */
        *next_ms = (after_ms / (int64_t)s.every_ms + 1) * (int64_t)s.every_ms;
        return 0;
    }
    time_t t = (time_t)(after_ms / 60000 + 1) * 60;
    /* A schedule that fires at all does so within 8 years (Feb 29th). */
    for (int guard = 0; guard < 200000; guard++) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!has(s.bits[3], tm.tm_mon + 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!day_fires(&s, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!has(s.bits[1], tm.tm_hour)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
        } else if (!has(s.bits[0], tm.tm_min)) {
            tm.tm_min++;
            tm.tm_sec = 0;
        } else {
            *next_ms = (int64_t)t * 1000;
            return 0;
        }
        t = timegm(&tm);
    }
    return TINE_ENOTFOUND;
}
