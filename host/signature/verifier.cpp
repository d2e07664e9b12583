// Verification in the order that costs least first: the headers' form, the
// timestamp's window, then one HMAC per key, each compared in constant time
// with every v1 signature sent.
#include "signature/verifier.h"

#include <openssl/crypto.h>

#include <stdexcept>

namespace evh::signature {

Verifier::Verifier(std::vector<Key> keys, uint32_t tolerance_s) : tolerance_s_(tolerance_s) {
  for (Key& k : keys) {
    macs_.emplace_back(k.secret);
    ids_.push_back(std::move(k.id));
  }
}

Verifier::Result Verifier::verify(std::string_view message, int64_t now_s) {
  Result r;
  FrameError error;
  if (!parseFrame(message, r.frame, error)) {
    r.failed = error.what;
    r.detail = std::move(error.detail);
    return r;
  }
  const int64_t skew = now_s - r.frame.seconds;
  if (skew > static_cast<int64_t>(tolerance_s_)) {
    r.failed = "stale";
    r.detail =
        "webhook-timestamp is " + std::to_string(skew) + " s old (tolerance " + std::to_string(tolerance_s_) + " s)";
    return r;
  }
  if (-skew > static_cast<int64_t>(tolerance_s_)) {
    r.failed = "future";
    r.detail = "webhook-timestamp is " + std::to_string(-skew) + " s in the future (tolerance " +
               std::to_string(tolerance_s_) + " s)";
    return r;
  }
  Digest d;
  for (size_t k = 0; k < macs_.size(); ++k) {
    if (!macs_[k].compute({r.frame.id, ".", r.frame.timestamp, ".", r.frame.body}, d)) {
      r.failed = "no_match";
      r.detail = "libcrypto failed computing the HMAC";
      return r;
    }
    Base64Digest expected;
    base64(d, expected);
    const bool match = forEachV1(r.frame, [&](std::string_view sig) {
      return sig.size() == kV1SignatureChars && CRYPTO_memcmp(sig.data(), expected.data(), kV1SignatureChars) == 0;
    });
    if (match) {
      r.key = k;
      return r;
    }
  }
  r.failed = "no_match";
  r.detail = std::to_string(r.frame.v1_count) + " v1 signature(s), none made with any of the channel's " +
             std::to_string(macs_.size()) + " key(s) over this id, timestamp and body";
  return r;
}

std::string signV1(std::string_view secret, std::string_view id, int64_t timestamp_s, std::string_view body) {
  Hmac mac(secret);
  Digest d;
  const std::string ts = std::to_string(timestamp_s);
  if (!mac.compute({id, ".", ts, ".", body}, d)) {
    throw std::runtime_error("libcrypto failed computing the HMAC");
  }
  return "v1," + base64(d);
}

std::string makeFrame(std::string_view id, int64_t timestamp_s, std::string_view signatures, std::string_view body) {
  std::string out;
  out.reserve(64 + id.size() + signatures.size() + body.size());
  out.append("webhook-id: ").append(id).append("\nwebhook-timestamp: ").append(std::to_string(timestamp_s));
  out.append("\nwebhook-signature: ").append(signatures).append("\n\n").append(body);
  return out;
}

}  // namespace evh::signature
