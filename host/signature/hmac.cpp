// HMAC-SHA256 over OpenSSL 3's EVP_MAC interface.
#include "signature/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <stdexcept>

namespace evh::signature {
namespace {

// Fetched once: fetching by name costs a lookup every time.
EVP_MAC* hmacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

void Hmac::Free::operator()(evp_mac_ctx_st* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }

Hmac::Hmac(std::string_view key) {
  EVP_MAC* mac = hmacAlgorithm();
  if (mac == nullptr) {
    throw std::runtime_error("libcrypto has no HMAC");
  }
  ctx_.reset(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx_ || EVP_MAC_init(ctx_.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1) {
    throw std::runtime_error("libcrypto could not key HMAC-SHA256");
  }
}

Hmac::~Hmac() = default;
Hmac::Hmac(Hmac&&) noexcept = default;
Hmac& Hmac::operator=(Hmac&&) noexcept = default;

bool Hmac::compute(std::initializer_list<std::string_view> parts, Digest& out) {
  // A null key re-initialises the context with the key it has.
  if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1) {
    return false;
  }
  for (std::string_view p : parts) {
    if (EVP_MAC_update(ctx_.get(), reinterpret_cast<const unsigned char*>(p.data()), p.size()) != 1) {
      return false;
    }
  }
  size_t len = 0;
  return EVP_MAC_final(ctx_.get(), out.data(), &len, out.size()) == 1 && len == out.size();
}

void base64(const Digest& d, Base64Digest& out) {
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), d.data(), static_cast<int>(d.size()));
}

std::string base64(const Digest& d) {
  std::string s(4 * ((d.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(s.data()), d.data(), static_cast<int>(d.size()));
  s.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return s;
}

}  // namespace evh::signature
