// dlq_settings: parsing the dead-letter plugin's config (see dlq_settings.h):
// each key's type and bounds, and the spool file's folder.
#include "dlq_settings.h"

#include "dlq_spool.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

namespace dlq {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxLengthLimit = 100000000;
constexpr int64_t kMinFlushMs = 10;
constexpr int64_t kMaxFlushMs = 3600000;

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string shown(const Json& got) { return got.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Reads the key's value into `out`, or adds the problem and leaves `out` alone.
void integerIn(const Json& j, const std::string& key, int64_t lo, int64_t hi, int64_t& out, evh::ConfigErrors& errors) {
  const bool in_range = j.is_number_integer() &&
                        !(j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi)) &&
                        j.get<int64_t>() >= lo && j.get<int64_t>() <= hi;
  if (!in_range) {
    errors.add(evh::pointerJoin("", key),
               "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + shown(j));
    return;
  }
  out = j.get<int64_t>();
}

void nonEmptyString(const Json& j, const std::string& key, std::string& out, evh::ConfigErrors& errors) {
  if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
    errors.add(evh::pointerJoin("", key), "must be a non-empty string, got " + shown(j));
    return;
  }
  out = j.get<std::string>();
}

// A spool that could never be written is a deployment mistake: refuse to
// start rather than find out during the first Redis outage. Looks only.
void checkSpoolPath(const std::string& file, evh::ConfigErrors& errors) {
  const std::string where = "/spool_file";
  if (std::filesystem::path(file).filename().empty()) {
    errors.add(where, quote(file) + " does not name a file");
    return;
  }
  std::string dir = dirOf(file);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    errors.add(where, "folder " + quote(dir) + " of " + quote(file) + ": " + errnoText(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    errors.add(where, quote(dir) + " is not a folder");
  } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    errors.add(where, "folder " + quote(dir) + " is not writable: " + errnoText(errno));
  } else if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    errors.add(where, quote(file) + " exists and is not a regular file");
  }
}

}  // namespace

Settings parseSettings(std::string_view text, evh::ConfigErrors& errors) {
  Settings s;
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    errors.add("", "must be a map, got " + (j.is_discarded() ? std::string("text that is not JSON") : shown(j)));
    return s;
  }
  bool spool_ok = true;
  for (const auto& [name, value] : j.items()) {
    if (name == "key") {
      nonEmptyString(value, name, s.key, errors);
    } else if (name == "max_length") {
      integerIn(value, name, 1, kMaxLengthLimit, s.max_length, errors);
    } else if (name == "spool_file") {
      const size_t before = errors.size();
      nonEmptyString(value, name, s.spool_file, errors);
      spool_ok = errors.size() == before;
    } else if (name == "flush_interval_ms") {
      integerIn(value, name, kMinFlushMs, kMaxFlushMs, s.flush_interval_ms, errors);
    } else {
      errors.add(evh::pointerJoin("", name), "unknown key (known: key, max_length, spool_file, flush_interval_ms)");
    }
  }
  if (spool_ok) {
    checkSpoolPath(s.spool_file, errors);
  }
  return s;
}

Settings parseSettings(std::string_view text) {
  evh::ConfigErrors errors;
  Settings s = parseSettings(text, errors);
  errors.throwIfAny();
  return s;
}

}  // namespace dlq
