// The verify and validate slots of the ingest pipeline: checks an event must
// pass after it is decoded and before it is routed. None are configured yet;
// signatures with replay protection (issue 14) and event contracts (schemas)
// plug in here, each as a Check.
#pragma once

#include "event/envelope.h"
#include "runtime/runtime.h"

#include <optional>
#include <string>

namespace evh::ingest {

// Why a check refused an event: `reason` is the dead-letter reason and the
// metrics label (a fixed code such as "bad_signature"), `detail` says which
// part failed -- never a secret.
struct Refusal {
  const char* reason;
  std::string detail;
};

class Check {
 public:
  virtual ~Check() = default;
  // A fixed name for logs and metrics, e.g. "signature".
  virtual const char* name() const noexcept = 0;
  // nullopt: the event passes. THREAD: loop; must not block.
  virtual std::optional<Refusal> check(const event::Event& ev, const runtime::Channel& ch) = 0;
};

}  // namespace evh::ingest
