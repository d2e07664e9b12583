// evhctl's blocking Redis client: connect with a timeout, AUTH, SELECT, pipelines.
#include "cli/sync_redis.h"

#include <sys/time.h>
#include <cerrno>

namespace evh::cli {
namespace {

timeval toTimeval(long ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms % 1000) * 1000);
  return tv;
}

}  // namespace

std::string replyText(const redisReply* r) { return r->str != nullptr ? std::string(r->str, r->len) : std::string(); }

SyncRedis::SyncRedis(const config::Redis& cfg)
    : where_((cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host) + ":" +
             std::to_string(cfg.port)) {
  ctx_.reset(redisConnectWithTimeout(cfg.host.c_str(), cfg.port, toTimeval(static_cast<long>(cfg.connect_timeout_ms))));
  if (!ctx_) {
    throw Failure("cannot reach Redis at " + where_ + ": out of memory");
  }
  if (ctx_->err != 0) {
    throw Failure("cannot reach Redis at " + where_ + ": " + std::string(ctx_->errstr));
  }
  // A server that accepts but never answers must not hang the CLI.
  redisSetTimeout(ctx_.get(), toTimeval(kCommandTimeoutMs));
  if (!cfg.password.empty()) {
    std::vector<std::string> auth = cfg.username.empty() ? std::vector<std::string>{"AUTH", cfg.password}
                                                         : std::vector<std::string>{"AUTH", cfg.username, cfg.password};
    ReplyPtr r = run(auth);
    if (r->type == REDIS_REPLY_ERROR) {
      throw Failure("Redis at " + where_ + " refused AUTH" +
                    (cfg.username.empty() ? std::string() : " as user " + cfg.username) + ": " + replyText(r.get()));
    }
  }
  if (cfg.db != 0) {
    ReplyPtr r = run({"SELECT", std::to_string(cfg.db)});
    if (r->type == REDIS_REPLY_ERROR) {
      throw Failure("Redis at " + where_ + " refused SELECT " + std::to_string(cfg.db) + ": " + replyText(r.get()));
    }
  }
}

std::vector<ReplyPtr> SyncRedis::pipeline(const std::vector<std::vector<std::string>>& commands) {
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
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
      std::string why = ctx_->err != 0 ? std::string(ctx_->errstr) : std::string("no reply");
      if (ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        why = "no reply within " + std::to_string(kCommandTimeoutMs) + " ms";
      }
      throw Failure("Redis at " + where_ + ": " + argv[0] + " failed: " + why);
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
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
