// TLS for evhctl's blocking client. hiredis 0.14 has no TLS, but its
// blocking context can take a connected descriptor (redisConnectFd): one
// end of a socket pair, whose other end a pump thread carries to and from
// the TLS session with Redis (OpenSSL on the TCP socket). The handshake is
// made, and each refusal named, before hiredis sees anything -- with the
// same words as evhost's (redis/tls_context.h).
#pragma once

#include "redis/tls_context.h"

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace evh::cli {

class SyncTls {
 public:
  // Resolves `host`, then TCP connect and TLS handshake within
  // `timeout_ms`; `server_name` empty: `host`. Throws std::runtime_error
  // saying why (the TLS words of redis/tls_context.h).
  SyncTls(const redis::TlsContext& tls, const std::string& host, uint16_t port, const std::string& server_name,
          uint32_t timeout_ms);
  ~SyncTls();  // ends the pump (after hiredis closed its end) and the session
  SyncTls(const SyncTls&) = delete;
  SyncTls& operator=(const SyncTls&) = delete;

  // hiredis's end of the pair, once (hiredis owns and closes it).
  int takeHiredisFd() noexcept;

 private:
  void handshake(const std::string& server_name, uint32_t timeout_ms);
  void pump() noexcept;

  int tcp_ = -1;
  int local_ = -1;    // the pump's end
  int hiredis_ = -1;  // hiredis's end, until taken
  SSL* ssl_ = nullptr;
  std::thread thread_;
};

}  // namespace evh::cli
