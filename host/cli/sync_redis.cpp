// evhctl's blocking Redis client: connect with a timeout, the handshake, pipelines.
#include "cli/sync_redis.h"

#include "app/sources.h"
#include "redis/cluster_slots.h"

#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

namespace evh::cli {
namespace {

timeval toTimeval(long ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms % 1000) * 1000);
  return tv;
}

redis::Endpoint endpointOf(const config::Redis& cfg) {
  redis::Endpoint e;
  e.host = cfg.host;
  e.port = cfg.port;
  e.db = cfg.db;
  e.username = cfg.username;
  e.password = cfg.password;
  e.connect_timeout_ms = cfg.connect_timeout_ms;
  if (cfg.tls.enabled) {
    try {
      e.tls = app::tlsContextOf(cfg.tls);
    } catch (const redis::TlsError& err) {
      throw Failure(err.what());
    }
  }
  return e;
}

// How evhctl reaches a sentinel: its own credentials, and its own TLS or
// redis.tls's.
redis::Endpoint sentinelEndpointOf(const config::Redis& cfg) {
  redis::Endpoint e;
  e.username = cfg.sentinel.username;
  e.password = cfg.sentinel.password;
  e.connect_timeout_ms = cfg.connect_timeout_ms;
  const config::Tls& tls = cfg.sentinelTls();
  if (tls.enabled) {
    try {
      e.tls = app::tlsContextOf(tls);
    } catch (const redis::TlsError& err) {
      throw Failure(err.what());
    }
  }
  return e;
}

}  // namespace

redis::Address askSentinels(const config::Redis& cfg) {
  const redis::Endpoint endpoint = sentinelEndpointOf(cfg);
  std::string problems;
  for (const auto& node : cfg.sentinel.nodes) {
    const redis::Address at{node.host, node.port};
    std::string why;
    try {
      redis::StaticAddress address(at);
      SyncRedis sentinel(endpoint, address);
      ReplyPtr r = sentinel.run({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg.sentinel.master});
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
          r->element[1]->type == REDIS_REPLY_STRING) {
        const std::string port = replyText(r->element[1]);
        const int value = std::atoi(port.c_str());
        if (value > 0 && value < 65536) {
          return redis::Address{replyText(r->element[0]), static_cast<uint16_t>(value)};
        }
        why = "an answer that is not an address";
      } else if (r->type == REDIS_REPLY_NIL) {
        why = "it monitors no master named " + cfg.sentinel.master;
      } else if (r->type == REDIS_REPLY_ERROR) {
        why = replyText(r.get());
      } else {
        why = "an unexpected reply";
      }
      why = "sentinel " + at.describe() + ": " + why;
    } catch (const Failure& e) {
      why = e.what();
    }
    problems += "\n  " + why;
  }
  throw Failure("no sentinel says where master " + cfg.sentinel.master + " is:" + problems);
}

std::string replyText(const redisReply* r) { return r->str != nullptr ? std::string(r->str, r->len) : std::string(); }

SyncRedis::SyncRedis(const config::Redis& cfg) {
  if (cfg.sentinel.enabled()) {
    redis::StaticAddress master(askSentinels(cfg));
    redis::Endpoint e = endpointOf(cfg);
    e.require_master = true;  // a sentinel late to notice a failover may name a replica
    open(e, master);
    return;
  }
  if (cfg.cluster.enabled()) {
    // Any node answers; the ones that do not own a key redirect to the one
    // that does (pipeline()).
    cluster_ = true;
    endpoint_ = endpointOf(cfg);
    endpoint_.db = 0;
    std::string problems;
    for (const auto& node : cfg.cluster.nodes) {
      try {
        redis::StaticAddress at(redis::Address{node.host, node.port});
        open(endpoint_, at);
        return;
      } catch (const Failure& e) {
        problems += std::string("\n  ") + e.what();
      }
    }
    throw Failure("no node of the cluster (redis.cluster.nodes) answers:" + problems);
  }
  redis::StaticAddress address(redis::Address{cfg.host, cfg.port});
  open(endpointOf(cfg), address);
}

SyncRedis::SyncRedis(const redis::Endpoint& endpoint, redis::AddressProvider& addresses) { open(endpoint, addresses); }

void SyncRedis::open(const redis::Endpoint& endpoint, redis::AddressProvider& addresses) {
  const redis::Address address = addresses.current();
  at_ = address;
  where_ = address.describe();
  try {
    if (endpoint.tls) {
      connectTls(*endpoint.tls, address, endpoint.connect_timeout_ms);
    } else {
      connect(address, endpoint.connect_timeout_ms);
    }
    budget_.bound = redis::replyBound(redis::ReplyKind::Handshake, 0);
    handshake(redis::Handshake(endpoint));
    budget_.bound = redis::replyBound(redis::ReplyKind::Command, endpoint.max_message_bytes);
  } catch (const Failure& e) {
    addresses.failed(address, e.what());
    throw;
  }
}

void SyncRedis::connectTls(const redis::TlsContext& tls, const redis::Address& address, uint32_t timeout_ms) {
  try {
    tls_ = std::make_unique<SyncTls>(tls, address.host, address.port, tls.options().server_name, timeout_ms);
  } catch (const std::runtime_error& e) {
    throw Failure("cannot reach Redis at " + where_ + ": " + e.what());
  }
  ctx_.reset(redisConnectFd(tls_->takeHiredisFd()));
  if (!ctx_ || ctx_->err != 0) {
    throw Failure("cannot reach Redis at " + where_ + ": " + (ctx_ ? std::string(ctx_->errstr) : "out of memory"));
  }
  redisSetTimeout(ctx_.get(), toTimeval(kCommandTimeoutMs));
  redis::compat::hookReader(ctx_.get(), &budget_);
}

void SyncRedis::connect(const redis::Address& address, uint32_t timeout_ms) {
  ctx_.reset(redisConnectWithTimeout(address.host.c_str(), address.port, toTimeval(static_cast<long>(timeout_ms))));
  if (!ctx_) {
    throw Failure("cannot reach Redis at " + where_ + ": out of memory");
  }
  if (ctx_->err != 0) {
    throw Failure("cannot reach Redis at " + where_ + ": " + std::string(ctx_->errstr));
  }
  // A server that accepts but never answers must not hang the CLI.
  redisSetTimeout(ctx_.get(), toTimeval(kCommandTimeoutMs));
  redis::compat::hookReader(ctx_.get(), &budget_);
}

// Pipelined, as evhost sends it; the first step that failed is reported
// (after a refused AUTH the later steps fail too, for want of it).
void SyncRedis::handshake(const redis::Handshake& handshake) {
  std::vector<std::vector<std::string>> commands;
  for (const auto& step : handshake.steps()) {
    commands.push_back(step.argv);
  }
  std::vector<ReplyPtr> replies = send(commands);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (std::string why = handshake.check(i, *replies[i], where_); !why.empty()) {
      throw Failure("Redis at " + where_ + ": " + why);
    }
  }
}

std::vector<ReplyPtr> SyncRedis::pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<ReplyPtr> replies = send(commands);
  for (int hops = 0; cluster_ && hops < 5; ++hops) {
    // The commands a node redirected to the first redirect's target go
    // there again -- only they (the others ran where they were), in order.
    std::optional<redis::Redirect> to;
    std::vector<size_t> again;
    for (size_t i = 0; i < replies.size(); ++i) {
      if (replies[i]->type != REDIS_REPLY_ERROR) {
        continue;
      }
      std::optional<redis::Redirect> r = redis::parseRedirect(replyText(replies[i].get()));
      if (!r) {
        continue;
      }
      if (r->to.host.empty()) {
        r->to.host = at_.host;  // the node does not know its own address
      }
      if (!to) {
        to = r;
      }
      if (r->kind == to->kind && r->to == to->to) {
        again.push_back(i);
      }
    }
    if (!to) {
      break;
    }
    ctx_.reset();
    tls_.reset();
    redis::StaticAddress at(to->to);
    open(endpoint_, at);
    const bool asking = to->kind == redis::Redirect::Ask;
    std::vector<std::vector<std::string>> resend;
    for (size_t i : again) {
      if (asking) {
        resend.push_back({"ASKING"});  // good for the one command after it
      }
      resend.push_back(commands[i]);
    }
    std::vector<ReplyPtr> got = send(resend);
    size_t k = 0;
    for (size_t i : again) {
      k += asking ? 1 : 0;  // ASKING's +OK
      replies[i] = std::move(got[k++]);
    }
  }
  return replies;
}

std::vector<ReplyPtr> SyncRedis::send(const std::vector<std::vector<std::string>>& commands) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& argv : commands) {
    ptrs.clear();
    lens.clear();
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK) {
      throw Failure("Redis at " + where_ + ": " + argv[0] + " failed: " + std::string(ctx_->errstr));
    }
  }
  std::vector<ReplyPtr> replies;
  for (const auto& argv : commands) {
    replies.emplace_back(static_cast<redisReply*>(readReply(argv[0])));
  }
  return replies;
}

void* SyncRedis::readReply(const std::string& command) {
  redisContext* c = ctx_.get();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReplyDeadlineMs);
  void* reply = nullptr;
  for (int written = 0; !written;) {
    if (redisBufferWrite(c, &written) != REDIS_OK) {
      throw readFailure(command, errno);
    }
  }
  if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
    throw readFailure(command, errno);
  }
  while (reply == nullptr) {
    if (redisBufferRead(c) != REDIS_OK || redisGetReplyFromReader(c, &reply) != REDIS_OK) {
      throw readFailure(command, errno);
    }
    if (reply != nullptr) {
      break;
    }
    // Each read is bounded by the socket's timeout, but a server dripping
    // bytes would never trip it; and an endless or huge reply is refused
    // as soon as it is over the bound (buffered bytes, objects built, or a
    // bulk string's declared length).
    const redis::compat::ReaderBuffer buf = redis::compat::readerBuffer(c);
    const uint64_t held = buf.buffered + (buf.mid_reply ? budget_.built : 0);
    if (held > budget_.bound || redis::compat::pendingBulkLength(c) > budget_.bound) {
      budget_.over = true;
      throw readFailure(command, 0);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Failure("Redis at " + where_ + ": " + command + " failed: no whole reply within " +
                    std::to_string(kReplyDeadlineMs) + " ms");
    }
  }
  return reply;
}

Failure SyncRedis::readFailure(const std::string& command, int saved_errno) const {
  std::string why;
  if (budget_.over) {
    why = "protocol error: reply larger than " + std::to_string(budget_.bound) + " bytes (" +
          (budget_.bound == redis::replyBound(redis::ReplyKind::Handshake, 0)
               ? "during the handshake"
               : "for a command: max(64 MiB, 100 x (limits.max_message_bytes + 64 KiB))") +
          ") from " + where_;
  } else if (std::string protocol = redis::compat::protocolError(ctx_->err, ctx_->errstr, where_); !protocol.empty()) {
    why = protocol;
  } else if (ctx_->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    why = "no reply within " + std::to_string(kCommandTimeoutMs) + " ms";
  } else {
    why = ctx_->err != 0 ? std::string(ctx_->errstr) : std::string("no reply");
  }
  return Failure("Redis at " + where_ + ": " + command + " failed: " + why);
}

ReplyPtr SyncRedis::run(const std::vector<std::string>& argv) { return std::move(pipeline({argv}).front()); }

ReplyPtr SyncRedis::must(const std::vector<std::string>& argv) {
  ReplyPtr r = run(argv);
  if (r->type == REDIS_REPLY_ERROR) {
    throw Failure(argv[0] + (argv.size() > 1 ? " " + argv[1] : std::string()) + ": " + replyText(r.get()));
  }
  return r;
}

long long SyncRedis::integer(const std::vector<std::string>& argv) {
  ReplyPtr r = must(argv);
  if (r->type != REDIS_REPLY_INTEGER) {
    throw Failure(argv[0] + ": unexpected reply type " + std::to_string(r->type));
  }
  return r->integer;
}

}  // namespace evh::cli
