/* audit_writer: group commit. handle() (on the loop thread) appends each
 * event's line to an in-memory queue and answers EVH_PENDING; the plugin's
 * writer thread takes everything queued at once -- a batch -- writes it with
 * one write(2) (more only when a rotation falls inside it), fsyncs it once
 * (fsync "always"), and only then completes each call: EVH_OK for the lines
 * now in the file, EVH_RETRY for the rest. So lines arriving while an fsync
 * runs share the next one, and an event is acknowledged only once its line
 * is as durable as the mode promises.
 *
 * The writer thread owns the file's lines, the window of seen eventIds
 * (which it loads before its first batch) and the copy to the Redis stream;
 * shutdown() stops it after it has written what is queued. */
#pragma once

#include "audit_plugin.h"

/* The queue refuses a line (EVH_RETRY, "audit queue full") while this many
 * bytes or lines wait for the writer: the disk cannot keep up, and the
 * route's retry policy is a better place to wait than evhost's memory. A
 * queue holding nothing always takes a line, however long. */
#define AUDIT_QUEUE_MAX_BYTES ((size_t)64 << 20)
#define AUDIT_QUEUE_MAX_LINES ((size_t)100000)

/* Starts the writer thread. Returns 0, or -1 (nothing to undo). */
int audit_start_writer(audit* a);

/* Wakes the writer to write what is queued (completing those calls), then
 * joins it. Nothing when it was not started. THREAD: shutdown()'s. */
void audit_stop_writer(audit* a);

/* Hands a->line (the event's formatted line) to the writer for `call`.
 * Returns EVH_PENDING (the writer completes the call), or EVH_RETRY with
 * the reason set on the call (queue full, out of memory). THREAD: handle()'s,
 * the loop thread. */
evh_status audit_enqueue(audit* a, const evh_event* ev, evh_call* call);

/* Frees a batch's memory (not its calls: there must be none left). */
void audit_batch_free(audit_batch* b);
