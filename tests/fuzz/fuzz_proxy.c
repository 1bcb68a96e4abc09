/* libFuzzer driver: request heads an exec program sends to its egress proxy
 * (sandbox/exec_proxy.c, sbx__proxy_parse). The proxy runs as root in the
 * exec runner and its input comes from untrusted programs: it must never
 * read past what it got, and what it accepts must be consistent (a host of
 * allowed characters, a port, a head length within the input, and for plain
 * HTTP a rewritten head that ends the header block). */
#include "sandbox_internal.h"
#include "tine_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly `size` bytes: ASan catches any read past it. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    sbx_proxy_request_t req;
    tine_buf_t head;
    tine_buf_init(&head);
    char err[512];
    int rc = sbx__proxy_parse(buf, size, &req, &head, err, sizeof err);
    if (rc == 0) {
        if (req.head_len > size || req.head_len < 4 || req.port == 0 || req.host[0] == '\0' ||
            strspn(req.host, "abcdefghijklmnopqrstuvwxyz0123456789.-_:") != strlen(req.host))
            abort();
        if (!req.connect && (head.len < 4 || memcmp(head.data + head.len - 4, "\r\n\r\n", 4) != 0))
            abort();
        if (req.connect && head.len != 0)
            abort();
    } else if (rc != 1 && rc != 400 && rc != 431) {
        abort();
    }
    tine_buf_dispose(&head);
    free(buf);
    return 0;
}
