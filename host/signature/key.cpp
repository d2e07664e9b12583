// Decoding Standard Webhooks' secret text with libcrypto's base64.
#include "signature/key.h"

#include <openssl/evp.h>

#include <vector>

namespace evh::signature {

bool decodeSecret(std::string_view text, std::string& secret, std::string& why) {
  constexpr std::string_view kPrefix = "whsec_";
  const char* kMake = " (make one with: echo \"whsec_$(openssl rand -base64 32)\")";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    why = std::string("a signing key is written whsec_<base64 of 24 to 64 random bytes>") + kMake;
    return false;
  }
  const std::string_view b64 = text.substr(kPrefix.size());
  if (b64.empty() || b64.size() % 4 != 0 || b64.size() > 128) {
    why = std::string("the key after whsec_ is not padded base64 of 24 to 64 bytes") + kMake;
    return false;
  }
  std::vector<unsigned char> out(b64.size() / 4 * 3 + 1);
  // EVP_DecodeBlock refuses characters outside the alphabet; it counts '='
  // padding as zero bytes, taken off below.
  const int n =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  size_t pad = 0;
  if (b64.back() == '=') {
    pad = b64[b64.size() - 2] == '=' ? 2 : 1;
  }
  if (n < 0 || static_cast<size_t>(n) < pad) {
    why = std::string("the key after whsec_ is not base64") + kMake;
    return false;
  }
  const size_t len = static_cast<size_t>(n) - pad;
  if (len < 24 || len > 64) {
    why = "the key is " + std::to_string(len) + " bytes; Standard Webhooks keys are 24 to 64 bytes" + kMake;
    return false;
  }
  secret.assign(reinterpret_cast<const char*>(out.data()), len);
  return true;
}

}  // namespace evh::signature
