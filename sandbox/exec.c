/* The exec runner: hosts one invocation of a `runtime: exec` function. */
#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int sbx_exec_serve(int fd, const sbx_spec_t *spec)
{
    (void)spec;
    if (sbx_frame_write(fd, SBX_MSG_READY, 0, "{}", 2, NULL, 0) != 0)
        return 1;
    sbx_frame_hdr_t h;
    char *payload = NULL;
    if (sbx_frame_read(fd, &h, &payload, SBX_WIRE_MAX_FRAME) != 0 || h.type != SBX_MSG_INVOKE) {
        free(payload);
        return 1;
    }
    static const char msg[] = "{\"error\":\"the exec runtime is not available on this node yet\"}";
    sbx_frame_write(fd, SBX_MSG_ERROR, h.id, msg, strlen(msg), NULL, 0);
    free(payload);
    return 0;
}
