/* The Lua sandbox's outgoing frames (private to sandbox/).
 *
 * When invocations are pipelined, the answer of one is held while the next
 * is already waiting in the pipe, and the answers of a batch go out in one
 * write: the invoker gets them with one read, and neither process is woken
 * per answer. Held answers go out
 *   - before the sandbox blocks (no whole frame buffered, a host call),
 *   - when they pass OUTBOX_HOLD_BYTES,
 *   - before an invocation starts once the first was held OUTBOX_HOLD_US ago,
 *   - from a SIGPROF handler every OUTBOX_TICK_US of CPU time (in practice at
 *     the scheduler's tick, 1-10 ms), so an invocation that runs long does
 *     not keep the answers ahead of it back for more than a tick. A CPU-time
 *     timer costs nothing to keep armed: no hardware timer, and an idle
 *     sandbox uses no CPU so it is never woken by it.
 * The caller holds answers only of functions whose timeout is at least
 * OUTBOX_HOLD_MIN_TIMEOUT_MS: the invoker starts a pipelined call's timeout
 * when the call ahead of it answers, and a tick late must stay small beside
 * it.
 *
 * CPU time (the `aux` word of RESULT and ERROR frames) is read once per
 * write, not per invocation: the CPU the process used since the last read
 * is split over the invocations it served meanwhile in proportion to their
 * wall time (blocked time excluded). An invocation answered on its own gets
 * its exact CPU time.
 *
 * One outbox per process (the signal handler reaches it). Functions
 * returning int return 0 or -errno (a failed write fails every later call). */
#ifndef TINE_SANDBOX_OUTBOX_H
#define TINE_SANDBOX_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTBOX_HOLD_US 200u                /* see above */
#define OUTBOX_HOLD_BYTES (64u * 1024u)
#define OUTBOX_TICK_US 1000u
#define OUTBOX_HOLD_MIN_TIMEOUT_MS 50u

/* Installs the SIGPROF handler and starts its CPU-time timer (before the
 * system call filter, which allows neither). Without it (unit tests) a long
 * invocation keeps held answers back until it ends. */
void sbx_outbox_install(void);

/* Starts writing to fd, nothing held; CPU time is counted from here. */
void sbx_outbox_open(int fd);

/* An invocation starts running now (now_ns: CLOCK_MONOTONIC, tine_now_ns);
 * answers held for OUTBOX_HOLD_US go out first. */
int sbx_outbox_call_begin(uint64_t now_ns);

/* The running invocation resumes after blocking (a host call's reply came):
 * the blocked time is not counted as its wall time. */
void sbx_outbox_call_resume(void);

/* The answer (RESULT or ERROR) of the running invocation; its aux word is
 * its CPU time. Held when `hold` (another invocation waits) and it fits,
 * written at once with everything held otherwise. */
int sbx_outbox_answer(uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                      size_t body_len, bool hold);

/* Any other frame (LOG, HOSTCALL): behind the held frames when there are
 * any, written at once otherwise. */
int sbx_outbox_frame(uint8_t type, uint64_t id, const void *meta, size_t meta_len, const void *body,
                     size_t body_len);

/* Writes everything held. */
int sbx_outbox_flush(void);

/* From a fatal signal handler (SIGSYS) before the process exits: writes
 * what is held unless the interrupted code was in the middle of adding to
 * it. Async-signal-safe. */
void sbx_outbox_flush_from_signal(void);

#endif
