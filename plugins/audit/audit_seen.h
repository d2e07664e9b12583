/* audit_seen: the eventIds of the newest audit lines, so that an event
 * redelivered after a crash is not written a second time.
 *
 * Why a window of recent lines is enough: the audit line and the host's
 * idempotency mark (or the stream's XACK) cannot be one step, so a crash
 * between the two redelivers an event whose line is already in the file. An
 * event is at risk only while it is still in flight -- the host keeps it until
 * its mark is written (idempotent routes) or until it is acknowledged -- and
 * at most limits.max_in_flight events are in flight at a time. The lines at
 * risk are therefore the newest ones, at most max_in_flight of them (give or
 * take a few Pub/Sub lines written in the same moments), and a window of at
 * least max_in_flight lines covers them. docs/plugins/audit.md has the
 * details and the limits of the promise.
 *
 * The window is filled from the tail of the file (and of its last rotated
 * copy, "<file>.1") before the first line is written, then kept up to date
 * with every line written -- once it is in the file: lines of a batch that
 * failed are not remembered. THREAD: the plugin's writer thread only
 * (audit_writer.c). */
#pragma once

#include <stddef.h>

/* At most this many bytes are read from the end of the files when loading:
 * a window of huge lines is cut short rather than reading without end. */
#define AUDIT_SEEN_MAX_LOAD_BYTES ((size_t)64 << 20)

typedef struct audit_seen_id {
  char* ptr; /* malloc'ed; NULL: empty slot */
  size_t len;
} audit_seen_id;

typedef struct audit_seen {
  audit_seen_id* ring;
  size_t cap;  /* the window, in lines; 0: off */
  size_t next; /* the slot the next id goes to (the oldest one when full) */
} audit_seen;

/* An empty window of `cap` ids (0: off, nothing remembered). Returns 0, or -1
 * when out of memory. */
int audit_seen_init(audit_seen* s, size_t cap);
void audit_seen_free(audit_seen* s);

/* Remembers one eventId, forgetting the oldest when the window is full.
 * Out of memory: the id is not remembered (it only costs a possible
 * duplicate line after a crash). */
void audit_seen_add(audit_seen* s, const char* id, size_t len);

/* Whether the eventId is in the window. O(window): call it for redelivered
 * events only. */
int audit_seen_has(const audit_seen* s, const char* id, size_t len);

/* Fills the window from the newest lines of `path` and then "<path>.1",
 * oldest first: at most cap lines and AUDIT_SEEN_MAX_LOAD_BYTES bytes. A
 * missing file counts as empty; a line that is not a whole audit line (not
 * one valid JSON object with an "eventId" string: a fragment a crash left,
 * say) is skipped. Sets *loaded to the ids remembered and
 * *truncated when the byte bound stopped the reading early. Returns 0, or -1
 * with the reason in err (the window then holds what was read). */
int audit_seen_load(audit_seen* s, const char* path, size_t* loaded, int* truncated, char* err, size_t errlen);
