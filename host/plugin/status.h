// evh_status as text, the one spelling used in logs and dead-letter entries.
#pragma once

#include <evh/plugin.h>

namespace evh::plugin {

// "ok", "retry", "reject", "pending"; "invalid-status" for anything else.
// (`error.name` of a rejected event's dead-letter entry is "reject"; its
// `reason` is "rejected" -- a reason, not a status: see docs/dlq.md.)
constexpr const char* statusText(evh_status s) noexcept {
  switch (s) {
    case EVH_OK:
      return "ok";
    case EVH_RETRY:
      return "retry";
    case EVH_REJECT:
      return "reject";
    case EVH_PENDING:
      return "pending";
    default:
      return "invalid-status";
  }
}

}  // namespace evh::plugin
