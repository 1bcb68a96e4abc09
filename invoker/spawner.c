/* The spawner: brokers blank processes from the zygote. Blanks are asked
 * for ahead of need (one per sandbox waiting for a process, plus
 * INV_SPARE_BLANKS spare ones, at most INV_MAX_BLANK_REQUESTS requests in
 * flight) and the zygote's answers are read on the loop (a uv_poll on its
 * control socket): tined never waits for a fork. A sandbox that starts
 * takes the spare, or waits on the spawner's list for the next answer,
 * oldest first. */
#include "invoker_internal.h"
#include "tine_common.h"

#include <errno.h>
#include <stdio.h>

static void on_zygote_readable(uv_poll_t *h, int status, int events);

/* Asks the zygote for blank processes: one per sandbox waiting for one, plus
 * INV_SPARE_BLANKS ready for the next cold start (not while a cold start
 * that took the spare is still on its way: inv__spawner_undefer). */
static void blanks_request(inv_invoker_t *inv)
{
    if (inv->closing || inv->zygote_gone)
        return;
    size_t want = inv->nwaiting + (inv->blank_failed || inv->spares_deferred ? 0 : INV_SPARE_BLANKS);
    while (inv->nspare + inv->blanks_requested < want && inv->blanks_requested < INV_MAX_BLANK_REQUESTS) {
        int r = sbx_zygote_request(inv->zygote, NULL);
        if (r == -EAGAIN)
            break; /* the socket is full: more are asked for as answers arrive */
        if (r != 0) {
            tine_log(TINE_LOG_ERROR, "cannot ask the zygote for a sandbox: %s", tine_strerror(r));
            break;
        }
        inv->blanks_requested++;
        inv->zygote_sent++;
    }
}

int inv__spawner_ask_python(inv_invoker_t *inv, const sbx_python_spec_t *spec, uint64_t *seq)
{
    if (inv->closing || inv->zygote_gone)
        return TINE_ECRASH;
    int r = sbx_zygote_request_python(inv->zygote, spec);
    if (r == 0)
        *seq = inv->zygote_sent++;
    return r;
}

void inv__spawner_start(inv_invoker_t *inv)
{
    tine_list_init(&inv->waiting);
    tine_list_init(&inv->pyzygotes);
    /* Answers of the zygote arrive on the loop; tined never waits for a fork. */
    if (uv_poll_init(inv->loop, &inv->zygote_poll, inv->zygote->control_fd) == 0) {
        inv->zygote_poll.data = inv;
        inv->zygote_polling = true;
        uv_poll_start(&inv->zygote_poll, UV_READABLE | UV_DISCONNECT, on_zygote_readable);
        blanks_request(inv);
    } else {
        tine_log(TINE_LOG_ERROR, "cannot watch the zygote's control socket");
        inv->zygote_gone = true;
    }
}

/* The zygote's poll handle closed: the invoker may be freed now. */
static void on_zygote_poll_closed(uv_handle_t *h)
{
    inv_invoker_t *inv = h->data;
    inv->zygote_polling = false;
    inv__maybe_free(inv);
}

void inv__spawner_stop(inv_invoker_t *inv)
{
    while (inv->nspare > 0)
        sbx_fds_close(inv->spare[--inv->nspare].fds); /* the blank exits on EOF */
    inv__python_stop(inv);
    if (inv->zygote_polling)
        uv_close((uv_handle_t *)&inv->zygote_poll, on_zygote_poll_closed);
}

void inv__spawner_give(inv_sandbox_t *s)
{
    if (INV_VERSION_RUNTIME(s->pool->fn)) {
        inv__python_give(s);
        return;
    }
    inv_invoker_t *inv = s->pool->inv;
    if (inv->nspare > 0) {
        inv_blank_t b = inv->spare[--inv->nspare];
        if (s->call) {
            /* A cold start: the spare's replacement is forked once its call
             * is answered, not while it loads (one core would run the fork
             * first). */
            s->defers_spare = true;
            inv->spares_deferred++;
        }
        inv__sandbox_attach_process(s, b.pid, b.fds);
    } else {
        tine_list_insert_tail(&inv->waiting, &s->wait_link);
        inv->nwaiting++;
    }
    blanks_request(inv);
}

void inv__spawner_forget(inv_sandbox_t *s)
{
    if (INV_VERSION_RUNTIME(s->pool->fn)) {
        inv__python_forget(s);
        return;
    }
    if (!tine_list_linked(&s->wait_link))
        return;
    tine_list_remove(&s->wait_link);
    s->pool->inv->nwaiting--;
}

void inv__spawner_undefer(inv_sandbox_t *s)
{
    if (!s->defers_spare)
        return;
    if (INV_VERSION_RUNTIME(s->pool->fn)) {
        inv__python_undefer(s);
        return;
    }
    s->defers_spare = false;
    s->pool->inv->spares_deferred--;
    blanks_request(s->pool->inv);
}

/* The sandbox waiting longest for a process, or NULL. */
static inv_sandbox_t *first_waiting(inv_invoker_t *inv)
{
    tine_list_t *l = tine_list_first(&inv->waiting);
    return l ? tine_list_entry(l, inv_sandbox_t, wait_link) : NULL;
}

/* The zygote is gone: nothing can start any more; who waits is told. */
static void zygote_lost(inv_invoker_t *inv)
{
    if (!inv->zygote_gone)
        tine_log(TINE_LOG_ERROR, "the zygote is gone; no new sandbox can start");
    inv->zygote_gone = true;
    inv->blanks_requested = 0;
    inv__python_zygote_lost(inv);
    if (inv->zygote_polling)
        uv_poll_stop(&inv->zygote_poll);
    inv_sandbox_t *s;
    while ((s = first_waiting(inv)) != NULL)
        inv__sandbox_start_failed(s, TINE_ECRASH, 503, "cannot start a sandbox: the zygote is gone");
}

/* Answers of the zygote: each blank goes to the oldest sandbox waiting for
 * a process, else to the spare list. */
static void on_zygote_readable(uv_poll_t *h, int status, int events)
{
    inv_invoker_t *inv = h->data;
    for (;;) {
        sbx_spawned_t got;
        int r = sbx_zygote_receive(inv->zygote, false, &got);
        if (r == -EAGAIN)
            break;
        if (r == 0 && inv__python_answer(inv, inv->zygote_read++, &got))
            continue;
        if (r != 0 || inv->blanks_requested == 0) {
            zygote_lost(inv);
            return;
        }
        inv->blanks_requested--;
        inv_sandbox_t *s = first_waiting(inv);
        if (got.error != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "cannot start a sandbox: the zygote could not fork: %s",
                     tine_strerror(got.error));
            tine_log(TINE_LOG_ERROR, "%s", msg);
            inv->blank_failed = true;
            if (s)
                inv__sandbox_start_failed(s, TINE_ECRASH, 503, msg);
            continue;
        }
        inv->blank_failed = false;
        if (inv->closing) {
            sbx_fds_close(got.fds); /* the blank exits on EOF */
        } else if (s) {
            inv__spawner_forget(s);
            inv__sandbox_attach_process(s, got.pid, got.fds);
        } else if (inv->nspare < INV_SPARE_BLANKS) {
            inv->spare[inv->nspare++] = (inv_blank_t){got.pid, got.fds};
        } else {
            sbx_fds_close(got.fds);
        }
    }
    if (status < 0 || (events & UV_DISCONNECT)) {
        zygote_lost(inv);
        return;
    }
    blanks_request(inv);
}
