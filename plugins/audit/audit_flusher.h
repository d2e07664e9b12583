/* audit_flusher: the fsync "interval" thread, the plugin's own. With fsync:
 * interval, handle() only writes and this thread fsyncs the file every
 * fsync_interval_ms. init() starts it; shutdown() stops it before closing
 * the file. */
#pragma once

#include "audit_plugin.h"

/* Starts the thread. Returns 0, or -1 (nothing to undo). */
int audit_start_flusher(audit* a);
/* Stops the thread and waits for it; nothing when it was not started. */
void audit_stop_flusher(audit* a);
