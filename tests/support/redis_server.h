// A private redis-server on a free loopback port, for integration tests.
#pragma once

#include <hiredis/hiredis.h>

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace evh::test {

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisConn = std::unique_ptr<redisContext, RedisFree>;
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// A loopback port the kernel just handed out; free unless someone races us
// (then the server given it fails to start: try another).
uint16_t freePort();

class RedisServer {
 public:
  // Starts redis-server on a free port with `extra` arguments (e.g.
  // {"--appendonly", "yes"}); throws std::runtime_error if it cannot.
  explicit RedisServer(std::vector<std::string> extra = {});
  // With a config file holding `conf` (written in dir(), given first): a
  // sentinel is RedisServer({"--sentinel"}, "sentinel monitor ...").
  RedisServer(std::vector<std::string> extra, std::string conf);
  // A Redis Cluster node (redis_cluster.h): --cluster-enabled yes, its
  // nodes.conf in dir(), and its cluster bus on a second free port
  // (--cluster-port, Redis 7) rather than port + 10000, which may be taken
  // or past 65535 (the kernel hands out ports up to 60999). Both ports are
  // picked afresh at each attempt.
  struct ClusterNode {};
  RedisServer(ClusterNode, std::vector<std::string> extra);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  uint16_t busPort() const { return bus_port_; }  // 0 unless a ClusterNode
  const std::string& dir() const { return dir_; }

  // SIGKILL, no goodbye.
  void kill();
  // SIGTERM and wait.
  void stop();
  // SIGSTOP / SIGCONT: a server that keeps its sockets open but answers
  // nothing, as a half-open connection looks from the client.
  void freeze();
  void thaw();
  // Starts again on the same port (after kill or stop).
  void restart();
  bool running() const { return pid_ > 0; }

  // A new synchronous connection (tests only: the host never blocks).
  RedisConn connect() const;
  // Runs one command on a fresh-or-cached connection; throws on I/O error.
  ReplyPtr command(const std::vector<std::string>& argv);

 private:
  bool launch();

  void makeDir();

  std::vector<std::string> extra_;
  std::string conf_path_;  // "" without a config file
  std::string dir_;
  uint16_t port_ = 0;
  uint16_t bus_port_ = 0;
  pid_t pid_ = -1;
  RedisConn client_;
};

// Polls `pred` every few ms until it holds or `timeout` passes (a guard
// against hangs, not a timing assertion).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace evh::test

#include <thread>

template <class Pred>
bool evh::test::eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}
