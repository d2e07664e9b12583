/* audit_line: one event's audit line, the JSON object the file gets:
 * timestamp, auditedAt (now), eventId, eventType, userId, action,
 * correlationId, channel, and the payload's metadata (USER_ACTIVITY) or the
 * whole payload (any other event type), redacted by the copier's paths.
 * docs/plugins/audit.md shows the line. */
#pragma once

#include "audit_buf.h"
#include "audit_redact.h"

#include <evh/plugin.h>

#include <stddef.h>

/* Builds the event's line, '\n' included, in out (emptied first), redacting
 * with the copier, whose `redacted` it resets and then counts in. Returns 0,
 * or -1 with the reason in err: the payload is not JSON (an object), or
 * memory ran out (out->failed is then set). */
int audit_line_format(audit_buf* out, audit_copier* c, const evh_event* ev, char* err, size_t errlen);
