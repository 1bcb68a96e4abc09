/* Log triggers (placeholder while being written). */
#include "events_internal.h"
#include "tine_common.h"

#include <stdio.h>
#include <string.h>

void ev__logtail_init(ev_events_t *ev)
{
    ev__timer_init(ev, &ev->tail_timer);
}

void ev__logtail_app(ev_events_t *ev, const char *app, const reg_app_version_t *v)
{
}

void ev__logtail_stop(ev_events_t *ev)
{
    ev__handle_close(ev, (uv_handle_t *)&ev->tail_timer);
}

void ev_on_activation(ev_events_t *ev, const inv_activation_t *a)
{
}

int ev_check_manifest(const ev_events_t *ev, const reg_manifest_t *m, const char *manifest_path, char *err,
                      size_t errlen)
{
    return 0;
}
