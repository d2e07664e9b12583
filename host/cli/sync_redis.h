// A blocking Redis client for evhctl (a CLI may wait; the server never does).
#pragma once

#include "cli/errors.h"
#include "cli/sync_tls.h"
#include "config/config.h"
#include "redis/address.h"
#include "redis/endpoint.h"
#include "redis/handshake.h"
#include "redis/hiredis_compat.h"

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

// redis.sentinel: asks each sentinel in turn where the master is; throws
// Failure naming every sentinel and why it did not say.
redis::Address askSentinels(const config::Redis& cfg);

class SyncRedis {
 public:
  static constexpr long kCommandTimeoutMs = 10000;  // each read
  // A whole reply: a server that drips bytes never trips the read timeout.
  static constexpr long kReplyDeadlineMs = 60000;

  // Connects (connect_timeout_ms) to wherever `addresses` says and makes
  // the handshake evhost makes (redis/handshake.h: AUTH, SELECT, PING);
  // throws Failure naming host:port and what failed (never the password),
  // after telling `addresses` of the failure.
  SyncRedis(const redis::Endpoint& endpoint, redis::AddressProvider& addresses);
  // The configured host:port (redis::StaticAddress), or the master the
  // sentinels name (redis.sentinel; its ROLE checked), or the first cluster
  // node that answers (redis.cluster).
  explicit SyncRedis(const config::Redis& cfg);

  // Sends every command, then reads every reply (error replies included); a
  // lost connection or a timeout throws. Under redis.cluster a node's
  // redirect (MOVED, ASK) is followed: the connection moves to the node
  // named and the commands redirected there are sent again, only they (up
  // to 5 moves) -- evhctl's pipelines touch one key's slot (one list, one
  // stream, or PUBLISHes, which any node takes).
  std::vector<ReplyPtr> pipeline(const std::vector<std::vector<std::string>>& commands);
  // One command; an error reply is returned.
  ReplyPtr run(const std::vector<std::string>& argv);
  // One command; an error reply throws too.
  ReplyPtr must(const std::vector<std::string>& argv);
  long long integer(const std::vector<std::string>& argv);

 private:
  void open(const redis::Endpoint& endpoint, redis::AddressProvider& addresses);
  std::vector<ReplyPtr> send(const std::vector<std::vector<std::string>>& commands);
  void connect(const redis::Address& address, uint32_t timeout_ms);
  void connectTls(const redis::TlsContext& tls, const redis::Address& address, uint32_t timeout_ms);
  void handshake(const redis::Handshake& handshake);
  // hiredis' redisGetReply, with the reply's bound and kReplyDeadlineMs
  // checked after every read.
  void* readReply(const std::string& command);
  Failure readFailure(const std::string& command, int saved_errno) const;

  struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::string where_;
  redis::Address at_;  // where_, as an address
  bool cluster_ = false;
  redis::Endpoint endpoint_;  // under a cluster: how to reach the node a redirect names
  // The bound on one reply (redis/endpoint.h's, as evhost's command
  // connection has it): 64 KiB in the handshake, then the Command bound.
  redis::compat::ReplyBudget budget_;
  std::unique_ptr<SyncTls> tls_;  // TLS: the session under ctx_ (declared first: it outlives ctx_)
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

}  // namespace evh::cli
