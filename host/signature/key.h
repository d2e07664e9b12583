// Signing keys: Standard Webhooks' secret text ("whsec_" and the key's bytes
// in base64) and the key ids an operator gives them for rotation.
#pragma once

#include <string>
#include <string_view>

namespace evh::signature {

struct Key {
  std::string id;      // the operator's name for it: logs and metrics say which key verified (never the key)
  std::string secret;  // the key's bytes (decoded)
};

// Decodes "whsec_<base64>" into the key's bytes (24 to 64 of them, as the
// scheme asks). Returns false with `why` set (never quoting the text).
bool decodeSecret(std::string_view text, std::string& secret, std::string& why);

}  // namespace evh::signature
