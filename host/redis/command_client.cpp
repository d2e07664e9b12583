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

CommandClient::~CommandClient() { stop(); }

void CommandClient::start() { conn_.start(); }

void CommandClient::stop() {
  stopping_ = true;
  conn_.stop();  // runs every pending callback (as cancelled) before returning
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
  if (argv.empty() || !conn_.ready()) {
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

bool CommandClient::send(int argc, const char* const* argv, const size_t* lens, ReplyFn fn) {
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
