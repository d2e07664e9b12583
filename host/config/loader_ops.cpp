// The `ops:` section: where the ops HTTP listener (/metrics, /healthz, /readyz,
// /health/pubsub, /status, POST /reload) listens, its health checks' bounds,
// and the token POST /reload needs.
#include <optional>
#include <string>

#include "config/loader.h"
#include "config/secret_file.h"

namespace evh::config {

void Loader::readOps(const Entry& owner) {
  std::optional<Entry> token_entry;
  std::optional<Entry> token_file;
  std::string token_path;
  readFields(owner, {
                        {"listen",
                         [&](const Entry& e) {
                           const std::optional<std::string> value =
                               text(e, "an address HOST:PORT, or \"\" to turn the listener off");
                           if (!value) {
                             return;
                           }
                           std::string why;
                           if (!parseListenAddress(*value, config_.ops, why)) {
                             error(valueMark(e), e.path,
                                   "invalid address " + gotValue(e.value.Scalar(), *value) + ": " + why);
                             return;
                           }
                           config_.ops.origin = Origin{file(), valueMark(e).line + 1, e.path};
                         }},
                        {"liveness_timeout_ms",
                         [this](const Entry& e) { readInteger(e, config_.ops.liveness_timeout_ms, 1000, 3600000); }},
                        {"pubsub_check_cache_ms",
                         [this](const Entry& e) { readInteger(e, config_.ops.pubsub_check_cache_ms, 0, 3600000); }},
                        {"pubsub_check_timeout_ms",
                         [this](const Entry& e) { readInteger(e, config_.ops.pubsub_check_timeout_ms, 10, 60000); }},
                        {"token",
                         [&](const Entry& e) {
                           readSecret(e, config_.ops.token);
                           if (!config_.ops.token.empty()) {
                             token_entry = e;
                           }
                         }},
                        {"token_file",
                         [&](const Entry& e) {
                           readString(e, token_path);
                           if (!token_path.empty()) {
                             token_file = e;
                             token_path = fromConfigDir(token_path);
                           }
                         }},
                    });
  if (!token_file) {
    return;
  }
  if (token_entry) {
    error(valueMark(*token_file), token_file->path,
          "cannot be combined with " + token_entry->path + " (line " +
              std::to_string(valueMark(*token_entry).line + 1) +
              "): both set the ops token; give it in one place only");
    return;
  }
  // Read at load, off the loop; the message names the file and the rule,
  // never the content.
  SecretRead read = readSecretFile(token_path);
  if (!read.value) {
    error(valueMark(*token_file), token_file->path, read.why);
    return;
  }
  config_.ops.token = std::move(*read.value);
}

}  // namespace evh::config
