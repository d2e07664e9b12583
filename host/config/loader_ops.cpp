// The `ops:` section: where the ops HTTP listener (/metrics, /healthz, /readyz,
// /health/pubsub, /status) listens, and its health checks' bounds.
#include <string>

#include "config/loader.h"

namespace evh::config {

void Loader::readOps(const Entry& owner) {
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
                    });
}

}  // namespace evh::config
