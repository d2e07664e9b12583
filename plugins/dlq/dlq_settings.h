// dlq_settings: the dead-letter plugin's settings, read from the instance's
// `config:` block (evhost hands it over as JSON text). docs/dlq.md describes
// every key. One parser serves validate_config (every problem, with where it
// is) and the constructor (refusing on any): an unknown key, a bad value, a
// spool file whose folder could not take it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <evh/plugin.hpp>

namespace dlq {

struct Settings {
  std::string key = "jollyjet:events:dlq";  // logical: the Redis key is env prefix + key
  int64_t max_length = 10000;
  std::string spool_file = "dlq-spool.jsonl";  // relative: to the process working directory
  int64_t flush_interval_ms = 1000;
};

// The settings in the JSON text; defaults for what is absent. Adds every
// problem to `errors` (JSON Pointer and message, see evh::ConfigErrors);
// with any, the settings are not to be used. Reads the file system (the
// spool file's folder), writes nothing.
Settings parseSettings(std::string_view text, evh::ConfigErrors& errors);

// The same, throwing std::invalid_argument with every problem (the constructor's).
Settings parseSettings(std::string_view text);

}  // namespace dlq
