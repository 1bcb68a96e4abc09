/* Container engine events (placeholder while being written). */
#include "events_internal.h"

ev__docker_t *ev__docker_start(ev_events_t *ev, const char *socket_path)
{
    return NULL;
}

void ev__docker_stop(ev__docker_t *d)
{
}
