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

[[noreturn]] void badValue(const std::string& key, const std::string& rule, const Json& got) {
  throw std::invalid_argument("config key " + quote(key) + ": " + rule + ", got " +
                              got.dump(-1, ' ', false, Json::error_handler_t::replace));
}

int64_t integerIn(const Json& j, const std::string& key, int64_t lo, int64_t hi) {
  std::string rule = "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!j.is_number_integer()) {
    badValue(key, rule, j);
  }
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    badValue(key, rule, j);
  }
  auto v = j.get<int64_t>();
  if (v < lo || v > hi) {
    badValue(key, rule, j);
  }
  return v;
}

std::string nonEmptyString(const Json& j, const std::string& key) {
  if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
    badValue(key, "must be a non-empty string", j);
  }
  return j.get<std::string>();
}

// A spool that could never be written is a deployment mistake: refuse to
// start rather than find out during the first Redis outage.
void checkSpoolPath(const std::string& file) {
  if (std::filesystem::path(file).filename().empty()) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(file) + " does not name a file");
  }
  std::string dir = dirOf(file);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw std::invalid_argument("config key \"spool_file\": folder " + quote(dir) + " of " + quote(file) + ": " +
                                errnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(dir) + " is not a folder");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::invalid_argument("config key \"spool_file\": folder " + quote(dir) +
                                " is not writable: " + errnoText(errno));
  }
  if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(file) + " exists and is not a regular file");
  }
}

}  // namespace

Settings parseSettings(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::invalid_argument("config must be a map (got " + std::string(text) + ")");
  }
  Settings s;
  for (const auto& [name, value] : j.items()) {
    if (name == "key") {
      s.key = nonEmptyString(value, name);
    } else if (name == "max_length") {
      s.max_length = integerIn(value, name, 1, kMaxLengthLimit);
    } else if (name == "spool_file") {
      s.spool_file = nonEmptyString(value, name);
    } else if (name == "flush_interval_ms") {
      s.flush_interval_ms = integerIn(value, name, kMinFlushMs, kMaxFlushMs);
    } else {
      throw std::invalid_argument("unknown config key " + quote(name) +
                                  " (known: key, max_length, spool_file, flush_interval_ms)");
    }
  }
  checkSpoolPath(s.spool_file);
  return s;
}

}  // namespace dlq
