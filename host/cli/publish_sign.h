// evhctl publish --sign KEYFILE: each message sent as a signed message
// (Standard Webhooks, docs/signatures.md) -- its eventId as webhook-id (a
// fresh UUID for a BATCH), now as webhook-timestamp, one v1 signature.
#pragma once

#include "signature/hmac.h"

#include <string>

namespace evh::cli::publish {

class Signer {
 public:
  // Reads the key from `key_file` (private to its owner, whsec_<base64>).
  // Throws Failure naming the file and the rule, never the key.
  explicit Signer(const std::string& key_file);

  // The signed message around `body`; `event_id` may be "".
  std::string sign(const std::string& body, const std::string& event_id);

 private:
  signature::Hmac mac_;
};

}  // namespace evh::cli::publish
