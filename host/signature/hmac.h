// HMAC-SHA256 with OpenSSL's EVP_MAC, keyed once: each message re-initialises
// the keyed context instead of setting the key up again (no allocation per
// message).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

struct evp_mac_ctx_st;

namespace evh::signature {

using Digest = std::array<unsigned char, 32>;

class Hmac {
 public:
  // Throws std::runtime_error if libcrypto cannot make the context.
  explicit Hmac(std::string_view key);
  ~Hmac();
  Hmac(Hmac&&) noexcept;
  Hmac& operator=(Hmac&&) noexcept;
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  // The MAC of the parts, concatenated. False if libcrypto fails. THREAD:
  // one at a time (the context is reused).
  bool compute(std::initializer_list<std::string_view> parts, Digest& out);

 private:
  struct Free {
    void operator()(evp_mac_ctx_st* ctx) const noexcept;
  };
  std::unique_ptr<evp_mac_ctx_st, Free> ctx_;
};

// Standard base64 (with padding) of the digest: 44 characters.
using Base64Digest = std::array<char, 45>;  // with a terminating NUL
void base64(const Digest& d, Base64Digest& out);
std::string base64(const Digest& d);

}  // namespace evh::signature
