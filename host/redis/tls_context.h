// TLS to Redis: the settings, and the OpenSSL context every connection's
// handshake starts from (CA, client certificate, minimum version,
// verification). Built once, before the loop runs: it reads the files.
//
// Debian 12's hiredis (0.14) speaks plaintext only, so a TLS connection is
// bridged (tls_bridge.h): hiredis connects to a private local socket
// (bridge_listener.h) and the bridge carries its bytes to and from the TLS
// session with Redis, on the loop. hiredis still formats every command and
// parses every reply; OpenSSL does all of TLS.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace evh::redis {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;               // PEM bundle of the CAs to trust; empty with ca_dir empty: the system's
  std::string ca_dir;                // a c_rehash'ed folder of CA certificates
  std::string cert_file;             // client certificate (PEM), for Redis's tls-auth-clients; with key_file
  std::string key_file;              // its private key (PEM)
  std::string server_name;           // SNI and the name the certificate must carry; empty: the host connected to
  int min_version = TLS1_2_VERSION;  // TLS1_2_VERSION or TLS1_3_VERSION
  bool verify = true;                // false: any certificate is taken (logged as a warning at every start)
  std::string where;                 // the config key, for messages ("cfg.yaml:4: redis.tls")
};

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// THREAD: built on the main thread before the loop runs; then used by the
// loop thread only (SSL_new from it is safe: the context is not changed).
class TlsContext {
 public:
  // Loads the CAs, the client certificate and key, and checks that they
  // match. Throws TlsError naming the key, the file and OpenSSL's reason.
  explicit TlsContext(TlsOptions options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const noexcept { return ctx_; }
  const TlsOptions& options() const noexcept { return options_; }

 private:
  TlsOptions options_;
  SSL_CTX* ctx_ = nullptr;
};

// OpenSSL's queued errors as one line ("...; ..."), and the queue cleared;
// `fallback` when there are none.
std::string takeOpenSslErrors(const char* fallback);

// Why a handshake's certificate check failed, for an operator: the kind
// first ("unknown CA", "wrong host name", "expired", ...), then OpenSSL's
// wording and what to check.
std::string describeVerifyFailure(long verify_result, const std::string& server_name);

}  // namespace evh::redis
