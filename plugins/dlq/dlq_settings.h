// dlq_settings: the dead-letter plugin's settings, read from the instance's
// `config:` block (evhost hands it over as JSON text). docs/dlq.md describes
// every key. parseSettings() refuses anything it does not know, naming the
// key, and checks up front that the spool file could be written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dlq {

struct Settings {
  std::string key = "jollyjet:events:dlq";  // logical: the Redis key is env prefix + key
  int64_t max_length = 10000;
  std::string spool_file = "dlq-spool.jsonl";  // relative: to the process working directory
  int64_t flush_interval_ms = 1000;
};

// The settings in the JSON text; defaults for what is absent. Throws
// std::invalid_argument naming the key for a bad value, an unknown key or a
// spool file that could not be written.
Settings parseSettings(std::string_view text);

}  // namespace dlq
