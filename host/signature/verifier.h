// Verifying a signed message (Standard Webhooks, v1 = HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>") against a channel's keys, and
// making one (evhctl publish --sign, tests, benchmarks).
#pragma once

#include "signature/frame.h"
#include "signature/hmac.h"
#include "signature/key.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evh::signature {

class Verifier {
 public:
  // tolerance_s: how far (past or future) a timestamp may be from the time
  // it is judged by. Throws std::runtime_error if libcrypto cannot key a
  // context.
  Verifier(std::vector<Key> keys, uint32_t tolerance_s);

  struct Result {
    // "": verified. Else a fixed code (a metrics label): missing, malformed,
    // stale, future, no_match.
    const char* failed = "";
    std::string detail;  // which part failed; never a key
    Frame frame;         // when verified (and for stale/future: its id and timestamp)
    size_t key = 0;      // the index of the key that matched, when verified
    bool ok() const noexcept { return failed[0] == '\0'; }
  };

  // now_s: the time the timestamp is judged by -- the receipt for Pub/Sub,
  // the time Redis added a stream entry. THREAD: one at a time (the keyed
  // contexts are reused); never blocks.
  Result verify(std::string_view message, int64_t now_s);

  const std::string& keyId(size_t i) const { return ids_[i]; }
  size_t keyCount() const noexcept { return ids_.size(); }
  uint32_t toleranceSeconds() const noexcept { return tolerance_s_; }

 private:
  std::vector<std::string> ids_;
  std::vector<Hmac> macs_;
  uint32_t tolerance_s_;
};

// "v1,<base64>" for the message parts under `secret`. Throws
// std::runtime_error if libcrypto fails.
std::string signV1(std::string_view secret, std::string_view id, int64_t timestamp_s, std::string_view body);

// The signed message: headers, blank line, body.
std::string makeFrame(std::string_view id, int64_t timestamp_s, std::string_view signatures, std::string_view body);

}  // namespace evh::signature
