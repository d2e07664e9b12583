// A producer at a steady rate, for tests that need load while something
// else happens (a reload, a failover): a thread of its own and a connection
// of its own send Redis commands -- XADD, PUBLISH -- at `rate` a second.
#pragma once

#include "support/redis_server.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {

// Sends `total` commands (argv_of(i) for i = 0, 1, ...) at `rate` a second
// from its own thread and connection: each turn, every command the clock
// says is due, pipelined, then their replies. `check` judges each reply
// (false: counted as refused).
class PacedProducer {
 public:
  using ArgvOf = std::function<std::vector<std::string>(size_t)>;
  using Check = std::function<bool(const redisReply&)>;

  PacedProducer(uint16_t port, int rate, size_t total, ArgvOf argv_of, Check check)
      : thread_([this, port, rate, total, argv_of = std::move(argv_of), check = std::move(check)] {
          run(port, rate, total, argv_of, check);
        }) {}
  ~PacedProducer() {
    stop_ = true;
    join();
  }
  PacedProducer(const PacedProducer&) = delete;
  PacedProducer& operator=(const PacedProducer&) = delete;

  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // Once joined:
  size_t sent() const { return sent_; }
  size_t refused() const { return refused_; }
  const std::string& error() const { return error_; }
  double seconds() const { return seconds_; }
  std::chrono::steady_clock::time_point started() const { return started_; }
  double rate() const { return seconds_ > 0 ? static_cast<double>(sent_) / seconds_ : 0; }

 private:
  void run(uint16_t port, int rate, size_t total, const ArgvOf& argv_of, const Check& check) {
    RedisConn c(redisConnect("127.0.0.1", port));
    if (!c || c->err != 0) {
      error_ = "cannot connect to redis";
      return;
    }
    constexpr size_t kMaxBatch = 2000;
    started_ = std::chrono::steady_clock::now();
    while (sent_ < total && !stop_) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      const size_t due = std::min(total, static_cast<size_t>(elapsed * rate));
      if (due <= sent_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      const size_t n = std::min(kMaxBatch, due - sent_);
      for (size_t i = sent_; i < sent_ + n; ++i) {
        const std::vector<std::string> argv = argv_of(i);
        std::vector<const char*> ptrs;
        std::vector<size_t> lens;
        for (const auto& a : argv) {
          ptrs.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data());
      }
      for (size_t i = 0; i < n; ++i) {
        void* raw = nullptr;
        if (redisGetReply(c.get(), &raw) != REDIS_OK || raw == nullptr) {
          error_ = std::string("redis connection error: ") + c->errstr;
          return;
        }
        ReplyPtr r(static_cast<redisReply*>(raw));
        refused_ += check(*r) ? 0 : 1;
      }
      sent_ += n;
    }
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  std::atomic<bool> stop_{false};
  size_t sent_ = 0;
  size_t refused_ = 0;
  double seconds_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::string error_;
  std::thread thread_;  // last: started once the rest is in place
};

}  // namespace evh::test
