/* audit_stream: the optional copy of each audit line in a capped Redis
 * stream (XADD <prefix><stream.key> MAXLEN ~ <maxlen> * data <line>), sent
 * fire and forget after the line is in the file; a failing stream is logged
 * once per outage and counted, never answered with RETRY. */
#pragma once

#include "audit_plugin.h"

/* Adds the line (len bytes, the last a '\n' it leaves out) to the stream.
 * Does not wait: the reply, on the loop thread, is only counted and logged.
 * THREAD: the writer's (audit_writer.c). */
void audit_stream_add(audit* a, const char* line, size_t len);
