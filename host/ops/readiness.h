// Whether evhost is ready to take events -- and when not, why, one line per
// reason, for GET /readyz: an operator (or a Kubernetes probe) reading the
// body learns what to look at.
#pragma once

#include <string>
#include <vector>

namespace evh::ops {

struct Readiness {
  std::vector<std::string> not_ready;  // empty: ready

  bool ready() const noexcept { return not_ready.empty(); }
  // {"status":"ready"} or {"status":"not ready","reasons":["...", ...]}.
  std::string json() const;
};

}  // namespace evh::ops
