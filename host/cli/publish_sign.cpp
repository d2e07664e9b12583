// Signing what evhctl publish sends (see publish_sign.h).
#include "cli/publish_sign.h"

#include "cli/errors.h"
#include "cli/publish_message.h"
#include "common/clock.h"
#include "config/secret_file.h"
#include "signature/frame.h"
#include "signature/key.h"
#include "signature/verifier.h"

namespace evh::cli::publish {
namespace {

std::string keyOf(const std::string& key_file) {
  config::SecretRead read = config::readSecretFile(key_file);
  if (!read.value) {
    throw Failure("--sign: " + read.why);
  }
  std::string secret;
  std::string why;
  if (!signature::decodeSecret(*read.value, secret, why)) {
    throw Failure("--sign: " + key_file + ": " + why);
  }
  return secret;
}

// An eventId that can be a webhook-id as it is (visible ASCII, short).
bool usableAsId(const std::string& id) {
  if (id.empty() || id.size() > 256) {
    return false;
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

}  // namespace

Signer::Signer(const std::string& key_file) : mac_(keyOf(key_file)) {}

std::string Signer::sign(const std::string& body, const std::string& event_id) {
  const std::string id = usableAsId(event_id) ? event_id : "msg_" + newUuid();
  const auto ts = static_cast<int64_t>(wallMs() / 1000);
  const std::string ts_text = std::to_string(ts);
  signature::Digest d;
  if (!mac_.compute({id, ".", ts_text, ".", body}, d)) {
    throw Failure("--sign: libcrypto failed computing the HMAC");
  }
  return signature::makeFrame(id, ts, "v1," + signature::base64(d), body);
}

}  // namespace evh::cli::publish
