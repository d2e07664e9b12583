/* audit_stream: the optional copy of each audit line in a capped Redis
 * stream (XADD <prefix><stream.key> MAXLEN ~ <maxlen> * data <line>), sent
 * fire and forget after the line is in the file; a failing stream is logged
 * once per outage and counted, never answered with RETRY. */
#pragma once

#include "audit_plugin.h"

/* Adds a->line (without its '\n') to the stream. Does not wait: the reply,
 * on the loop thread, is only counted and logged. THREAD: handle()'s. */
void audit_stream_add(audit* a);
