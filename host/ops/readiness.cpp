// Readiness as the JSON body of /readyz.
#include "ops/readiness.h"

#include <nlohmann/json.hpp>

namespace evh::ops {

std::string Readiness::json() const {
  nlohmann::json body;
  body["status"] = ready() ? "ready" : "not ready";
  if (!ready()) {
    body["reasons"] = not_ready;
  }
  // Reasons quote what Redis said (an ACL refusal): never let odd bytes
  // make the body invalid.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace evh::ops
