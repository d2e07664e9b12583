/* audit_redact: configured paths whose values are replaced by "[redacted]",
 * and the copier that applies them while re-emitting JSON.
 *
 * A path is a dotted list of object keys relative to the event's payload:
 * "metadata.email" is payload.metadata.email. Rules:
 *   - a segment matches one object key exactly (case-sensitive, compared
 *     after JSON unescaping); "*" matches any key at that level;
 *   - arrays are transparent: "metadata.devices.ip" also matches the "ip" of
 *     every object in an array payload.metadata.devices;
 *   - the value at the end of a path is replaced whole, whatever its type
 *     (a string, a number, an object...), by the string "[redacted]";
 *   - a key that itself contains a '.' cannot be named.
 * At most AUDIT_REDACT_MAX paths; one bit each in a uint64_t mask, which is
 * how the copier tracks which paths are still matching at each level. */
#pragma once

#include "audit_buf.h"

#include <evh/plugin.h>

#include <stddef.h>
#include <stdint.h>

#define AUDIT_REDACT_MAX 64u
#define AUDIT_REDACTED "\"[redacted]\""

typedef struct audit_redact_path {
  char* text;    /* the path as configured, NUL-terminated (for messages) */
  evh_str* segs; /* its segments, pointing into a second copy owned here */
  char* storage; /* that copy */
  size_t nsegs;
} audit_redact_path;

typedef struct audit_redactor {
  audit_redact_path paths[AUDIT_REDACT_MAX];
  size_t count;
} audit_redactor;

void audit_redactor_init(audit_redactor* r);
void audit_redactor_free(audit_redactor* r);

/* Adds a path (n bytes at s, not NUL-terminated). Returns 0, or -1 with a
 * reason in err (an empty segment, too many paths, out of memory). */
int audit_redactor_add(audit_redactor* r, const char* s, size_t n, char* err, size_t errlen);

/* The mask with every path active: where matching starts, at the payload. */
uint64_t audit_redact_all(const audit_redactor* r);

/* Matching one step down: for an object member with key `key` (decoded
 * bytes) at segment index `seg`, given the paths still active, returns the
 * paths that continue below the member, and sets *redact when a path ends
 * at it. */
uint64_t audit_redact_step(const audit_redactor* r, uint64_t active, size_t seg, const char* key, size_t key_len,
                           int* redact);

/* Reusable state of the copier (its scratch buffers). */
typedef struct audit_copier {
  const audit_redactor* r;
  audit_buf scratch; /* decoded keys and strings */
  unsigned redacted; /* values replaced so far; the caller resets it */
  /* When capture is set, audit_copy_redacted also notes where the top-level
   * object's "userId" and "action" members' values are in its input (the
   * last of each; {NULL, 0} for none): the audit line's own members, found
   * in the pass that copies the payload instead of a pass of their own. */
  int capture;
  evh_str user;
  evh_str action;
  audit_buf payload; /* the audit line's copy of a payload, before the line takes it */
  /* While copying: where the run of input not yet appended to the output
   * starts (see audit_copy_cut in audit_redact.c). */
  const char* span;
} audit_copier;

void audit_copier_init(audit_copier* c, const audit_redactor* r);
void audit_copier_free(audit_copier* c);

/* Appends `value` (JSON text) to out, compact (no whitespace, so always on
 * one line), strings re-escaped by audit_json_write_string, with every value
 * at an active path that ends below it replaced by "[redacted]". `active` and
 * `seg` say where matching stands: audit_redact_all() and 0 for a payload.
 * Returns 0, or -1 if `value` is not valid JSON (or nested deeper than
 * AUDIT_JSON_MAX_DEPTH) or memory ran out (then out->failed is set); out is
 * then incomplete. */
int audit_copy_redacted(audit_copier* c, audit_buf* out, evh_str value, uint64_t active, size_t seg);
