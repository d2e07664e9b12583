// The OpenSSL client context for TLS to Redis, and the words for its failures.
#include "redis/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <utility>

namespace evh::redis {

std::string takeOpenSslErrors(const char* fallback) {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? std::string(fallback) : out;
}

TlsContext::TlsContext(TlsOptions options) : options_(std::move(options)) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    throw TlsError(options_.where + ": cannot make a TLS context: " + takeOpenSslErrors("out of memory"));
  }
  try {
    if (SSL_CTX_set_min_proto_version(ctx_, options_.min_version) != 1) {
      throw TlsError(options_.where + ".min_version: refused by OpenSSL: " + takeOpenSslErrors("unknown"));
    }
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (options_.ca_file.empty() && options_.ca_dir.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
        throw TlsError(options_.where + ": cannot load the system's CA certificates: " +
                       takeOpenSslErrors("unknown error") + " (set ca_file or ca_dir)");
      }
    } else {
      const char* file = options_.ca_file.empty() ? nullptr : options_.ca_file.c_str();
      const char* dir = options_.ca_dir.empty() ? nullptr : options_.ca_dir.c_str();
      if (SSL_CTX_load_verify_locations(ctx_, file, dir) != 1) {
        const std::string what = file != nullptr ? ".ca_file " + options_.ca_file : ".ca_dir " + options_.ca_dir;
        throw TlsError(options_.where + what +
                       ": cannot load CA certificates: " + takeOpenSslErrors("no certificate found"));
      }
    }
    if (!options_.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, options_.cert_file.c_str()) != 1) {
        throw TlsError(options_.where + ".cert_file " + options_.cert_file +
                       ": cannot load the client certificate: " + takeOpenSslErrors("unknown error"));
      }
      // A passphrase-protected key would make OpenSSL's default callback ask
      // for the passphrase on the terminal, holding start-up: none is given,
      // and the refusal says why.
      bool asked = false;
      SSL_CTX_set_default_passwd_cb(ctx_, [](char*, int, int, void* asked_flag) {
        *static_cast<bool*>(asked_flag) = true;
        return 0;
      });
      SSL_CTX_set_default_passwd_cb_userdata(ctx_, &asked);
      const int loaded = SSL_CTX_use_PrivateKey_file(ctx_, options_.key_file.c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_set_default_passwd_cb_userdata(ctx_, nullptr);
      SSL_CTX_set_default_passwd_cb(ctx_, nullptr);
      if (loaded != 1 && asked) {
        ERR_clear_error();
        throw TlsError(options_.where + ".key_file " + options_.key_file +
                       ": the private key is protected by a passphrase, which evhost cannot ask for: store it "
                       "decrypted (openssl pkey -in KEY -out NEW.key; chmod 600 NEW.key)");
      }
      if (loaded != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
          ERR_clear_error();
          throw TlsError(options_.where + ".key_file " + options_.key_file + ": does not match the certificate in " +
                         options_.cert_file);
        }
        throw TlsError(options_.where + ".key_file " + options_.key_file +
                       ": cannot load the private key: " + takeOpenSslErrors("unknown error"));
      }
      if (SSL_CTX_check_private_key(ctx_) != 1) {
        throw TlsError(options_.where + ".key_file " + options_.key_file + ": does not match the certificate in " +
                       options_.cert_file);
      }
    }
    SSL_CTX_set_verify(ctx_, options_.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  } catch (...) {
    SSL_CTX_free(ctx_);
    throw;
  }
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::string describeVerifyFailure(long verify_result, const std::string& server_name) {
  const std::string openssl = X509_verify_cert_error_string(verify_result);
  switch (verify_result) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "unknown CA: Redis's certificate is not signed by a CA evhost trusts (" + openssl +
             "; check redis.tls.ca_file / ca_dir)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return "wrong host name: Redis's certificate is not for \"" + server_name + "\" (" + openssl +
             "; connect by the name in the certificate, or set redis.tls.server_name)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "expired: Redis's certificate has expired (" + openssl + ")";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "not yet valid: Redis's certificate is not valid yet (" + openssl + "; check the clocks)";
    default:
      return "certificate refused: " + openssl;
  }
}

}  // namespace evh::redis
