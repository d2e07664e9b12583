// A blocking Redis client for evhctl (a CLI may wait; the server never does).
#pragma once

#include "cli/errors.h"
#include "cli/sync_tls.h"
#include "config/config.h"
#include "redis/address.h"
#include "redis/endpoint.h"
#include "redis/handshake.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

namespace evh::cli {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

std::string replyText(const redisReply* r);

class SyncRedis {
 public:
  static constexpr long kCommandTimeoutMs = 10000;

  // Connects (connect_timeout_ms) to wherever `addresses` says and makes
  // the handshake evhost makes (redis/handshake.h: AUTH, SELECT, PING);
  // throws Failure naming host:port and what failed (never the password),
  // after telling `addresses` of the failure.
  SyncRedis(const redis::Endpoint& endpoint, redis::AddressProvider& addresses);
  // The configured host:port (redis::StaticAddress).
  explicit SyncRedis(const config::Redis& cfg);

  // Sends every command, then reads every reply (error replies included); a
  // lost connection or a timeout throws.
  std::vector<ReplyPtr> pipeline(const std::vector<std::vector<std::string>>& commands);
  // One command; an error reply is returned.
  ReplyPtr run(const std::vector<std::string>& argv);
  // One command; an error reply throws too.
  ReplyPtr must(const std::vector<std::string>& argv);
  long long integer(const std::vector<std::string>& argv);

 private:
  void open(const redis::Endpoint& endpoint, redis::AddressProvider& addresses);
  void connect(const redis::Address& address, uint32_t timeout_ms);
  void connectTls(const redis::TlsContext& tls, const redis::Address& address, uint32_t timeout_ms);
  void handshake(const redis::Handshake& handshake);

  struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::string where_;
  std::unique_ptr<SyncTls> tls_;  // TLS: the session under ctx_ (declared first: it outlives ctx_)
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

}  // namespace evh::cli
