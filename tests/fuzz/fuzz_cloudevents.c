/* libFuzzer driver: CloudEvents as the ingest endpoint reads them from HTTP
 * (POST /_tine/v1/events). The first input byte picks the content type
 * (structured, batch, binary JSON, binary text); in binary mode, lines
 * "name: value" up to an empty line become the request's ce-* headers and
 * the rest is the body. Every accepted event must pass validation again. */
#include "events.h"
#include "tine_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const types[] = {"application/cloudevents+json", "application/cloudevents-batch+json",
                                        "application/json; charset=utf-8", "text/plain"};
    const char *ct = types[data[0] % 4];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    ev_header_t headers[MAX_HEADERS];
    size_t nh = 0;
    if (data[0] % 4 >= 2) {
        while (p < end && nh < MAX_HEADERS) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *line_end = nl ? nl : end;
            if (line_end == p) { /* empty line: the body follows */
                p = nl ? nl + 1 : end;
                break;
            }
            const char *colon = memchr(p, ':', (size_t)(line_end - p));
            if (colon != NULL) {
                const char *v = colon + 1;
                while (v < line_end && *v == ' ')
                    v++;
                headers[nh++] = (ev_header_t){p, (size_t)(colon - p), v, (size_t)(line_end - v)};
            }
            p = nl ? nl + 1 : end;
        }
    }
    json_t *events = NULL;
    char err[512];
    int rc = ev_cloudevents_from_http(ct, strlen(ct), headers, nh, p, (size_t)(end - p), &events, err, sizeof err);
    if (rc == 0) {
        if (!json_is_array(events) || json_array_size(events) == 0)
            abort();
        for (size_t i = 0; i < json_array_size(events); i++)
            if (ev_cloudevent_validate(json_array_get(events, i), err, sizeof err) != 0)
                abort(); /* what was accepted must stay valid */
    } else if (events != NULL || err[0] == '\0') {
        abort(); /* a refusal says why and hands nothing out */
    }
    json_decref(events);
    return 0;
}
