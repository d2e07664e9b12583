// Request/reply over the self-healing command connection.
#include "redis/command_client.h"

#include <hiredis/hiredis.h>

#include <memory>

namespace evh::redis {
namespace {

struct Request {
  CommandClient::ReplyFn fn;
  const bool* stopping;
  size_t* pending;
};

}  // namespace

CommandClient::CommandClient(uv_loop_t* loop, Endpoint endpoint)
    : conn_(loop, std::move(endpoint), "commands", Connection::Mode::Commands,
            Connection::Handlers{[this] { onReady(); }, nullptr, nullptr}) {}

CommandClient::CommandClient(uv_loop_t* loop, Endpoint endpoint, std::shared_ptr<ClusterMap> cluster)
    : conn_(loop, endpoint, "commands", Connection::Mode::Commands, Connection::Handlers{}),
      router_(std::make_unique<ClusterRouter>(loop, std::move(endpoint), std::move(cluster), [this] { onReady(); })) {}

CommandClient::~CommandClient() { stop(); }

void CommandClient::start() {
  if (router_) {
    router_->start();
  } else {
    conn_.start();
  }
}

void CommandClient::stop() {
  stopping_ = true;
  // Each runs every pending callback (as cancelled) before returning.
  if (router_) {
    router_->stop();
  }
  conn_.stop();
}

void CommandClient::reconfigure(Endpoint endpoint) {
  if (router_) {
    router_->reconfigure(std::move(endpoint));
  } else {
    conn_.reconfigure(std::move(endpoint));
  }
}

bool CommandClient::ready() const { return router_ ? router_->ready() : conn_.ready(); }

bool CommandClient::readyFor(std::string_view key) const { return router_ ? router_->readyFor(key) : conn_.ready(); }

bool CommandClient::up() const { return router_ ? router_->anyUp() : conn_.ready(); }

std::vector<const Connection*> CommandClient::connections() const {
  return router_ ? router_->connections() : std::vector<const Connection*>{&conn_};
}

std::string CommandClient::where() const {
  if (!router_) {
    return conn_.where();
  }
  std::string out = "cluster";
  for (const Connection* c : router_->connections()) {
    out += (out.size() == 7 ? " " : ", ") + c->where();
  }
  return out;
}

void CommandClient::exportStats(ops::Registry& stats) {
  if (router_) {
    router_->exportStats(stats);
  } else {
    conn_.exportStats(stats);
  }
}

uint64_t CommandClient::watchReady(std::function<void()> ready) {
  ready_watchers_.emplace_back(++last_watch_, std::move(ready));
  return last_watch_;
}

void CommandClient::unwatchReady(uint64_t id) {
  for (auto it = ready_watchers_.begin(); it != ready_watchers_.end(); ++it) {
    if (it->first == id) {
      ready_watchers_.erase(it);
      return;
    }
  }
}

void CommandClient::onReady() {
  // By id, not by iterator: a watcher may watch or unwatch (itself or
  // another) from its call.
  std::vector<uint64_t> ids;
  ids.reserve(ready_watchers_.size());
  for (const auto& w : ready_watchers_) {
    ids.push_back(w.first);
  }
  for (uint64_t id : ids) {
    for (const auto& w : ready_watchers_) {
      if (w.first == id) {
        const std::function<void()> fn = w.second;  // the call may unwatch it
        fn();
        break;
      }
    }
  }
}

bool CommandClient::send(const std::vector<std::string>& argv, ReplyFn fn) {
  if (argv.empty()) {
    return false;
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  return send(static_cast<int>(argv.size()), ptrs.data(), lens.data(), std::move(fn));
}

bool CommandClient::sendFew(std::initializer_list<std::string_view> argv, ReplyFn fn) {
  if (argv.size() == 0 || argv.size() > kFewArgs) {
    return false;
  }
  const char* ptrs[kFewArgs];
  size_t lens[kFewArgs];
  size_t n = 0;
  for (const std::string_view a : argv) {
    ptrs[n] = a.data();
    lens[n] = a.size();
    ++n;
  }
  return send(static_cast<int>(n), ptrs, lens, std::move(fn));
}

bool CommandClient::send(int argc, const char* const* argv, const size_t* lens, ReplyFn fn) {
  if (router_) {
    return router_->send(argc, argv, lens, std::move(fn));
  }
  if (argc <= 0 || !conn_.ready()) {
    return false;
  }
  auto req = std::make_unique<Request>(Request{std::move(fn), &stopping_, &pending_});
  // hiredis's argv parameter is not const-qualified; it only reads it.
  if (!conn_.command(argc, const_cast<const char**>(argv), lens, &CommandClient::onReply, req.get())) {
    return false;
  }
  req.release();  // owned by hiredis' callback list until onReply
  ++pending_;
  return true;
}

void CommandClient::onReply(redisAsyncContext* /*ac*/, void* reply, void* privdata) {
  std::unique_ptr<Request> req(static_cast<Request*>(privdata));
  --*req->pending;
  if (reply == nullptr) {
    req->fn(*req->stopping ? EVH_ERR_CANCELLED : EVH_ERR_UNAVAILABLE, nullptr);
    return;
  }
  req->fn(EVH_OK, static_cast<const redisReply*>(reply));
}

}  // namespace evh::redis
