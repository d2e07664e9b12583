// The standard process_* series of /metrics (the names every Prometheus
// client library exports), read from /proc/self when a scrape renders them --
// on the ops thread: reading files never happens on the loop.
#pragma once

#include "ops/stats.h"

#include <string_view>
#include <vector>

namespace evh::ops {

// What /proc/self/stat says about the process.
struct ProcStat {
  double cpu_seconds = 0;         // user + system time
  int64_t resident_bytes = 0;     // resident set size
  int64_t virtual_bytes = 0;      // virtual memory size
  double start_time_seconds = 0;  // since the Unix epoch
};

// Parses the text of /proc/self/stat. `ticks_per_second` is
// sysconf(_SC_CLK_TCK), `page_bytes` the page size, `boot_time` the btime of
// /proc/stat (seconds since the epoch). Returns false when the text does not
// have the fields (the command name in parentheses may hold spaces and
// parentheses of its own: fields are counted after the last ')').
bool parseProcStat(std::string_view stat, long ticks_per_second, long page_bytes, double boot_time, ProcStat& out);

// The families, as of now: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds. One whose
// source cannot be read is left out. THREAD: any but the loop (file I/O).
std::vector<FamilySample> processFamilies();

}  // namespace evh::ops
