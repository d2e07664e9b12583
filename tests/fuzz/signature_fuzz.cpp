// Fuzzes signed messages (signature/): any bytes either verify -- and then
// the frame's views lie inside the message and OpenSSL's one-shot HMAC() (an
// independent path to the same MAC) agrees with a signature sent -- or fail
// with one of the fixed codes; a message evhost signed itself always
// verifies, and any one byte changed in its signed part never does; key
// text decodes to 24..64 bytes or is refused. Never a crash or UB.
#include "signature/frame.h"
#include "signature/key.h"
#include "signature/verifier.h"

#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using evh::signature::Verifier;

void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

const std::string kKey(32, 'k');
constexpr int64_t kNow = 1764763200;

bool knownCode(const char* failed) {
  for (const char* code : {"missing", "malformed", "stale", "future", "no_match"}) {
    if (std::strcmp(failed, code) == 0) {
      return true;
    }
  }
  return false;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Any bytes as a message.
void asMessage(Verifier& v, std::string_view msg) {
  const Verifier::Result r = v.verify(msg, kNow);
  if (!r.ok()) {
    require(knownCode(r.failed));
    return;
  }
  require(inside(r.frame.id, msg) && inside(r.frame.timestamp, msg) && inside(r.frame.body, msg));
  const std::string content =
      std::string(r.frame.id) + "." + std::string(r.frame.timestamp) + "." + std::string(r.frame.body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kKey.data(), static_cast<int>(kKey.size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &len);
  unsigned char b64[64];
  const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  require(r.frame.signatures.find(std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n))) !=
          std::string_view::npos);
}

// The bytes as a body evhost signs, then one byte of the result changed.
void asBody(Verifier& v, std::string_view body, uint8_t flip_at) {
  const std::string sig = evh::signature::signV1(kKey, "msg_fuzz", kNow, body);
  std::string msg = evh::signature::makeFrame("msg_fuzz", kNow, sig, body);
  const Verifier::Result r = v.verify(msg, kNow);
  require(r.ok() && r.frame.body == body);
  // A byte of the id, the timestamp, the signature or the body changed.
  const size_t at = flip_at % msg.size();
  msg[at] = static_cast<char>(msg[at] ^ 0x01);
  const Verifier::Result changed = v.verify(msg, kNow);
  if (changed.ok()) {
    // Only header bytes that do not change the signed content may change
    // (a header name's letter case, say: 'w' ^ 1 is 'v', not 'W').
    require(changed.frame.id == "msg_fuzz" && changed.frame.body == body && changed.frame.seconds == kNow);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  static Verifier verifier({evh::signature::Key{"k", kKey}}, 300);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 3) {
    case 0:
      asMessage(verifier, rest);
      break;
    case 1:
      asBody(verifier, rest, data[1]);
      break;
    default: {
      std::string secret;
      std::string why;
      if (evh::signature::decodeSecret(rest, secret, why)) {
        require(secret.size() >= 24 && secret.size() <= 64);
      } else {
        require(!why.empty());
      }
    }
  }
  return 0;
}
