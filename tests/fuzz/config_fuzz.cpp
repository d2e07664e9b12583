// Fuzzes the configuration loader: YAML text (any bytes) through the schema,
// `${VAR}` / `${VAR:-default}` / `$$` expansion and every check, into either a
// Config or a list of errors -- never an exception, a crash or a hang. The
// loader reads no file here (loadString) and sees only the variables below,
// never the process's environment.
#include "config/config.h"
#include "config/expand.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

namespace {

void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// The whole environment the loader may see: a few set, one empty, one that
// expands to YAML-looking text, and two of the policy defaults the loader reads (one of them invalid).
std::optional<std::string> env(const std::string& name) {
  static const std::map<std::string, std::string> kVars = {
      {"REDIS_HOST", "127.0.0.1"},
      {"REDIS_PORT", "6380"},
      {"REDIS_PASSWORD", "s3cr$t:{x}"},
      {"EMPTY", ""},
      {"NODE_ENV", "dev"},
      {"LOOKS_YAML", "a: [1, 2]\n- b"},
      {"RETRY_MAX_ATTEMPTS", "4"},
      {"CIRCUIT_BREAKER_THRESHOLD", "x"},
  };
  auto it = kVars.find(name);
  if (it == kVars.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const evh::config::LoadResult result = evh::config::loadString(text, "fuzz/evhost.yaml", env);
  // Exactly one of the two: a Config, or at least one error naming the file.
  require(result.config.has_value() != !result.errors.empty());
  for (const std::string& error : result.errors) {
    require(error.rfind("fuzz/evhost.yaml", 0) == 0);
  }
  // The expander alone, on the raw text (the loader only reaches it through
  // scalars that parsed).
  const evh::config::Expansion expanded = evh::config::expandVariables(text, env);
  for (const std::string& error : expanded.errors) {
    require(!error.empty());
  }
  return 0;
}
