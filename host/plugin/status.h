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

// Every status code's name, for plugins (evh_host_api.status_text, ABI
// 1.1): "ok" ... "pending", "err_invalid" ... "err_state"; "unknown" for any
// other value.
constexpr const char* statusName(evh_status s) noexcept {
  switch (s) {
    case EVH_OK:
    case EVH_RETRY:
    case EVH_REJECT:
    case EVH_PENDING:
      return statusText(s);
    case EVH_ERR_INVALID:
      return "err_invalid";
    case EVH_ERR_NOMEM:
      return "err_nomem";
    case EVH_ERR_UNSUPPORTED:
      return "err_unsupported";
    case EVH_ERR_INTERNAL:
      return "err_internal";
    case EVH_ERR_UNAVAILABLE:
      return "err_unavailable";
    case EVH_ERR_CANCELLED:
      return "err_cancelled";
    case EVH_ERR_STATE:
      return "err_state";
    default:
      return "unknown";
  }
}

}  // namespace evh::plugin
