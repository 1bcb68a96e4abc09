/* Tests of events/cloudevents.c: CloudEvents 1.0 validation and the HTTP
 * binding's structured, batch and binary modes. Every refusal names the
 * attribute; mutated input never crashes the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"
#include "tine_common.h"

static const char valid[] = "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/tools/x\",\"type\":\"demo.a\"}";

/* Validates a JSON text; returns the code and leaves the message in err. */
static int validate_text(const char *text, char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    int rc = ev_cloudevent_validate(j, err, errlen);
    json_decref(j);
    return rc;
}

static void expect_refused(const char *text, const char *message)
{
    char err[512] = "";
    int rc = validate_text(text, err, sizeof err);
    if (rc != TINE_EINVAL || strcmp(err, message) != 0)
        fail_msg("%s\n  got %d '%s'\n  want '%s'", text, rc, err, message);
}

static void expect_accepted(const char *text)
{
    char err[512] = "";
    if (validate_text(text, err, sizeof err) != 0)
        fail_msg("%s refused: %s", text, err);
}

static void test_accepts_valid_events(void **state)
{
    (void)state;
    expect_accepted(valid);
    expect_accepted("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66\","
                    "\"type\":\"t\",\"datacontenttype\":\"application/json; charset=utf-8\","
                    "\"dataschema\":\"https://example.com/s.json\",\"subject\":\"x\","
                    "\"time\":\"2026-01-02T15:04:05.123+01:00\",\"data\":{\"a\":[1,2]},"
                    "\"traceparent\":\"00-1-2-01\",\"seq\":42,\"flag\":true}");
    expect_accepted("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"docker://host/a%20b\",\"type\":\"t\","
                    "\"time\":\"2024-02-29T23:59:60Z\",\"data_base64\":\"YWJj\"}");
    expect_accepted("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"x\",\"type\":\"t\",\"data\":null}");
    /* Null attributes are absent. */
    json_t *j = json_loads("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"x\",\"type\":\"t\",\"subject\":null}", 0,
                           NULL);
    char err[256];
    assert_int_equal(ev_cloudevent_validate(j, err, sizeof err), 0);
    assert_null(json_object_get(j, "subject"));
    json_decref(j);
}

static void test_refuses_naming_the_attribute(void **state)
{
    (void)state;
    expect_refused("{\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\"}", "attribute 'specversion': required");
    expect_refused("{\"specversion\":\"1.0\",\"source\":\"/x\",\"type\":\"t\"}", "attribute 'id': required");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\"}", "attribute 'source': required");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\"}", "attribute 'type': required");
    expect_refused("{\"specversion\":1.0,\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\"}",
                   "attribute 'specversion': expected a string");
    expect_refused("{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\"}",
                   "attribute 'specversion': expected \"1.0\", got \"0.3\"");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/x\",\"type\":\"t\"}",
                   "attribute 'id': must not be empty");
    expect_refused("{\"specversion\":\"1.0\",\"id\":7,\"source\":\"/x\",\"type\":\"t\"}",
                   "attribute 'id': expected a string");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"a b\",\"type\":\"t\"}",
                   "attribute 'source': expected a URI-reference such as /my/tool or urn:x:y");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x%2\",\"type\":\"t\"}",
                   "attribute 'source': expected a URI-reference such as /my/tool or urn:x:y");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"\"}",
                   "attribute 'type': must not be empty");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"subject\":\"\"}",
                   "attribute 'subject': must not be empty");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"datacontenttype\":\"json\"}",
                   "attribute 'datacontenttype': expected a media type such as application/json");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"dataschema\":\"/rel\"}",
                   "attribute 'dataschema': expected an absolute URI");
    const char *bad_times[] = {"2026-01-02", "2026-13-02T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                               "2026-01-02T24:00:00Z", "2026-01-02T10:00:00", "2026-01-02T10:00:00.Z",
                               "2026-01-02T10:00:00+0100", "2026-01-02T10:00:00Zjunk", "yesterday"};
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"time\":\"%s\"}",
                 bad_times[i]);
        expect_refused(text, "attribute 'time': expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z");
    }
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"Big\":\"v\"}",
                   "attribute 'Big': extension names are 1 to 20 lower-case letters or digits");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"a_b\":\"v\"}",
                   "attribute 'a_b': extension names are 1 to 20 lower-case letters or digits");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\","
                   "\"abcdefghijklmnopqrstu\":\"v\"}",
                   "attribute 'abcdefghijklmnopqrstu': extension names are 1 to 20 lower-case letters or digits");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"ext\":{\"a\":1}}",
                   "attribute 'ext': expected a string, integer or boolean");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"data_base64\":\"abc\"}",
                   "attribute 'data_base64': expected a base64 string");
    expect_refused("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/x\",\"type\":\"t\",\"data_base64\":\"YQ==\","
                   "\"data\":1}",
                   "attribute 'data_base64': not allowed together with 'data'");
    char err[256];
    json_t *arr = json_array();
    assert_int_equal(ev_cloudevent_validate(arr, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "expected a CloudEvent: a JSON object with specversion, id, source and type");
    json_decref(arr);
}

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static void test_structured_and_batch(void **state)
{
    (void)state;
    json_t *evs = NULL;
    char err[512];
    const char *ct = "application/cloudevents+json; charset=UTF-8";
    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), NULL, 0, valid, strlen(valid), &evs, err, sizeof err), 0);
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "id")), "e1");
    json_decref(evs);

    const char *bct = "Application/CloudEvents-Batch+JSON";
    const char *batch = "[{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\"},"
                        "{\"specversion\":\"1.0\",\"id\":\"b\",\"source\":\"/x\",\"type\":\"t\"}]";
    assert_int_equal(ev_cloudevents_from_http(bct, strlen(bct), NULL, 0, batch, strlen(batch), &evs, err, sizeof err),
                     0);
    assert_int_equal(json_array_size(evs), 2);
    json_decref(evs);

    const char *bad = "[{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\"},"
                      "{\"specversion\":\"1.0\",\"id\":\"b\",\"type\":\"t\"}]";
    assert_int_equal(ev_cloudevents_from_http(bct, strlen(bct), NULL, 0, bad, strlen(bad), &evs, err, sizeof err),
                     TINE_EINVAL);
    assert_string_equal(err, "batch[1]: attribute 'source': required");
    assert_null(evs);
    assert_int_equal(ev_cloudevents_from_http(bct, strlen(bct), NULL, 0, "[]", 2, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "body: the batch holds no event");
    assert_int_equal(ev_cloudevents_from_http(bct, strlen(bct), NULL, 0, valid, strlen(valid), &evs, err, sizeof err),
                     TINE_EINVAL);
    assert_string_equal(err, "body: expected a JSON array of events (application/cloudevents-batch+json)");
    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), NULL, 0, "{\"a\":", 5, &evs, err, sizeof err),
                     TINE_EINVAL);
    assert_true(strncmp(err, "body: line 1 column", 19) == 0);
    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), NULL, 0, "", 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "body: empty; expected a JSON event");
}

static void test_binary_mode(void **state)
{
    (void)state;
    json_t *evs = NULL;
    char err[512];
    const ev_header_t hs[] = {H("CE-SpecVersion", "1.0"), H("ce-id", "b1"), H("ce-source", "/a%2520b"),
                              H("ce-type", "demo.t"), H("ce-traceparent", "00-x"), H("accept", "*/*")};
    const char *ct = "application/json";
    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), hs, 6, "{\"k\":1}", 7, &evs, err, sizeof err), 0);
    json_t *e = json_array_get(evs, 0);
    assert_string_equal(json_string_value(json_object_get(e, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(e, "source")), "/a%20b");
    assert_string_equal(json_string_value(json_object_get(e, "traceparent")), "00-x");
    assert_string_equal(json_string_value(json_object_get(e, "datacontenttype")), "application/json");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "k")), 1);
    assert_null(json_object_get(e, "accept"));
    json_decref(evs);

    const char *tt = "text/plain";
    assert_int_equal(ev_cloudevents_from_http(tt, strlen(tt), hs, 4, "hi", 2, &evs, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "data")), "hi");
    json_decref(evs);

    const char *ot = "application/octet-stream";
    assert_int_equal(ev_cloudevents_from_http(ot, strlen(ot), hs, 4, "\x00\xff\x10", 3, &evs, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "data_base64")), "AP8Q");
    json_decref(evs);

    /* No content type, no body: an event without data. */
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, hs, 4, NULL, 0, &evs, err, sizeof err), 0);
    assert_null(json_object_get(json_array_get(evs, 0), "data"));
    json_decref(evs);

    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), hs, 4, "{bad", 4, &evs, err, sizeof err), TINE_EINVAL);
    assert_true(strncmp(err, "data: the body is not valid JSON (Content-Type application/json): line 1", 71) == 0);
    assert_int_equal(ev_cloudevents_from_http(ct, strlen(ct), hs + 1, 3, "{}", 2, &evs, err, sizeof err), TINE_EINVAL);
    assert_true(strncmp(err, "attribute 'specversion': required (binary mode", 46) == 0);
    const ev_header_t no_type[] = {H("ce-specversion", "1.0"), H("ce-id", "1"), H("ce-source", "/x")};
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, no_type, 3, NULL, 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "attribute 'type': required");
    const ev_header_t dct[] = {H("ce-specversion", "1.0"), H("ce-datacontenttype", "x/y")};
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, dct, 2, NULL, 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err,
                        "header 'ce-datacontenttype': not allowed in binary mode (the body is the data, Content-Type "
                        "its type)");
    const ev_header_t twice[] = {H("ce-specversion", "1.0"), H("ce-id", "1"), H("CE-ID", "2")};
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, twice, 3, NULL, 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "header 'ce-id': given twice");
    const ev_header_t longname[] = {H("ce-specversion", "1.0"), H("ce-abcdefghijklmnopqrstuvwxyz", "1")};
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, longname, 2, NULL, 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "header 'ce-abcdefghijklmnopqrstuvwxyz': extension names are 1 to 20 lower-case letters "
                             "or digits");
    const ev_header_t badutf[] = {H("ce-specversion", "1.0"), H("ce-id", "%ff%fe")};
    assert_int_equal(ev_cloudevents_from_http(NULL, 0, badutf, 2, NULL, 0, &evs, err, sizeof err), TINE_EINVAL);
    assert_string_equal(err, "header 'ce-id': the value is not valid UTF-8");
}

/* A small deterministic generator (xorshift). */
static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Mutates a copy of `seed`: flips, inserts interesting bytes, deletes,
 * truncates. */
static size_t mutate(const char *seed, char *out, size_t cap)
{
    size_t n = strlen(seed);
    memcpy(out, seed, n);
    static const char interesting[] = "{}[]\":,\\0-+.eE\x00\xff\xc3\x28 \n\t%Tz";
    int rounds = 1 + (int)(next_rand() % 6);
    for (int r = 0; r < rounds; r++) {
        size_t at = n ? next_rand() % n : 0;
        switch (next_rand() % 5) {
        case 0:
            if (n)
                out[at] ^= (char)(1u << (next_rand() % 8));
            break;
        case 1:
            if (n + 1 < cap) {
                memmove(out + at + 1, out + at, n - at);
                out[at] = interesting[next_rand() % (sizeof interesting - 1)];
                n++;
            }
            break;
        case 2:
            if (n) {
                memmove(out + at, out + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3:
            n = at;
            break;
        default:
            if (n)
                out[at] = interesting[next_rand() % (sizeof interesting - 1)];
            break;
        }
    }
    return n;
}

static void test_mutated_input_never_crashes(void **state)
{
    (void)state;
    const char *seeds[] = {
        valid,
        "[{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/x\",\"type\":\"t\",\"time\":\"2026-01-02T15:04:05Z\","
        "\"data_base64\":\"YWJj\"},{\"specversion\":\"1.0\",\"id\":\"b\",\"source\":\"urn:a\",\"type\":\"t\"}]",
        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/a%20\",\"type\":\"t\",\"time\":\"2026-01-02T15:04:05.1+01:00\","
        "\"dataschema\":\"http://x/y\",\"ext\":1,\"data\":{\"deep\":[[[]]]}}",
    };
    const char *types[] = {"application/cloudevents+json", "application/cloudevents-batch+json", "application/json",
                           "text/plain", NULL};
    char buf[1024];
    size_t accepted = 0, refused = 0;
    for (int i = 0; i < 30000; i++) {
        size_t n = mutate(seeds[next_rand() % 3], buf, sizeof buf);
        const char *ct = types[next_rand() % 5];
        /* Binary-mode headers, mutated too. */
        char hv[3][64];
        ev_header_t hs[3] = {{"ce-specversion", 14, hv[0], 0}, {"ce-id", 5, hv[1], 0}, {"ce-source", 9, hv[2], 0}};
        const char *hseed[3] = {"1.0", "id-1", "/src%2Fx"};
        for (int h = 0; h < 3; h++)
            hs[h].value_len = mutate(hseed[h], hv[h], sizeof hv[h]);
        json_t *evs = (json_t *)0x1;
        char err[512] = "";
        int rc = ev_cloudevents_from_http(ct, ct ? strlen(ct) : 0, hs, 3, buf, n, &evs, err, sizeof err);
        if (rc == 0) {
            accepted++;
            assert_true(json_is_array(evs) && json_array_size(evs) >= 1);
            /* What was accepted validates again. */
            for (size_t k = 0; k < json_array_size(evs); k++)
                assert_int_equal(ev_cloudevent_validate(json_array_get(evs, k), err, sizeof err), 0);
            json_decref(evs);
        } else {
            refused++;
            assert_int_equal(rc, TINE_EINVAL);
            assert_null(evs);
            assert_true(err[0] != '\0');
            for (const char *p = err; *p; p++)
                assert_true((unsigned char)*p >= 0x20);
        }
    }
    /* Both paths were exercised. */
    assert_true(accepted > 100);
    assert_true(refused > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid_events),
        cmocka_unit_test(test_refuses_naming_the_attribute),
        cmocka_unit_test(test_structured_and_batch),
        cmocka_unit_test(test_binary_mode),
        cmocka_unit_test(test_mutated_input_never_crashes),
    };
    return cmocka_run_group_tests_name("events/cloudevents", tests, NULL, NULL);
}
