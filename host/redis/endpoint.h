// Where and how to reach Redis, and how hard to try.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

namespace evh::redis {

class TlsContext;
class BridgeListener;
class AddressProvider;

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string username;                // ACL user; empty for the default user
  std::string password;                // empty: no AUTH
  uint32_t connect_timeout_ms = 2000;  // TCP connect + AUTH + SELECT
  uint32_t backoff_initial_ms = 100;
  uint32_t backoff_max_ms = 10000;
  double backoff_multiplier = 2.0;
  uint32_t ping_interval_ms = 3000;
  uint32_t ping_timeout_ms = 2000;
  // limits.max_message_bytes: the bounds on replies derive from it (see
  // replyBound()). The default matches the config's.
  uint64_t max_message_bytes = 1024 * 1024;
  // 0, or the bound on one bulk string of a reply once ready: a longer one is
  // refused from its length alone, before it is read (a stream's reading
  // connection, where one entry must not cost more than a small multiple
  // of max_message_bytes).
  uint64_t max_item_bytes = 0;
  // TLS (tls_context.h): both set, or neither (plaintext). Shared by every
  // connection of the process; built before the loop runs.
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<const BridgeListener> bridge;
  // Where to connect, when not host:port (Sentinel: sentinel.h). Shared by
  // every connection built from this endpoint; null: host:port.
  std::shared_ptr<AddressProvider> addresses;
  // ROLE must say "master" after the handshake (Sentinel: a demoted node is
  // left at once).
  bool require_master = false;

  std::string describe() const { return host + ":" + std::to_string(port); }
};

// How large one reply may grow while it is read (the bytes buffered for it
// plus the reply objects built so far) before the connection is dropped as a
// protocol error -- so that a broken or hostile server answering, say, an
// endless bulk string cannot grow the host without bound.
enum class ReplyKind {
  Handshake,  // +OK to AUTH and SELECT, +PONG: nothing legitimate is large
  Message,    // a Pub/Sub message
  Command     // stream reads and plugins' commands
};
inline constexpr uint64_t kHandshakeReplyBytes = 64 * 1024;
inline constexpr uint64_t kReplyFramingBytes = 64 * 1024;  // channel names, field names, headers
inline constexpr uint64_t kMinCommandReplyBytes = 64 * 1024 * 1024;
inline constexpr uint64_t kReadCountAllowance = 100;  // stream.count's default

inline uint64_t replyBound(ReplyKind kind, uint64_t max_message_bytes) {
  switch (kind) {
    case ReplyKind::Handshake:
      return kHandshakeReplyBytes;
    case ReplyKind::Message:
      // Twice the limit: a message somewhat too large still arrives whole and
      // is refused on its own (too_large, dead-lettered); only a larger one
      // costs the connection.
      return 2 * max_message_bytes + kReplyFramingBytes;
    case ReplyKind::Command:
      // A stream read of stream.count (default 100) entries of up to
      // max_message_bytes each, and never under 64 MiB for plugins' replies.
      return std::max(kMinCommandReplyBytes, kReadCountAllowance * (max_message_bytes + kReplyFramingBytes));
  }
  return kHandshakeReplyBytes;
}

}  // namespace evh::redis
