// QuietRedis: a fake Redis that answers evhost's and evhctl's connections
// as an idle Redis would (the handshake, subscriptions, empty stream reads)
// until a test arms it; then the connection it targets gets a hostile answer
// instead -- and so does every later one, reconnects included.
#pragma once

#include "support/fake_redis.h"

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {

// Which connection a client's socket is, known from its first command after
// the handshake (which ends with a PING): (P)SUBSCRIBE, XGROUP or
// XREADGROUP, or anything else.
enum class Role { Unknown, Subscriber, Stream, Commands };

// What a hostile answer is: `head` first, then forever `unit` (when set),
// or else nothing while the socket stays open.
struct Shape {
  const char* name;
  std::string head;
  std::string unit;
  const char* why;  // a regular expression the drop reason matches
};

// Test names and messages show a shape by its name.
inline void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

// The hostile answer goes to the first command of this role once armed
// (`command` empty: any command; Role::Subscriber: a push right after the
// subscription is confirmed), inside a Pub/Sub message for the subscriber.
struct Target {
  Role role;
  std::string command;
};

class QuietRedis {
 public:
  QuietRedis(Shape shape, Target target, std::string channel = "")
      : shape_(std::move(shape)),
        target_(std::move(target)),
        channel_(std::move(channel)),
        server_([this](int fd, const std::atomic<bool>& stop) { serve(fd, stop); }) {}

  uint16_t port() const { return server_.port(); }
  void arm() { armed_ = true; }
  // Connections of this role seen so far (past their first command).
  int seen(Role role) const { return seen_[static_cast<int>(role)]; }
  // Hostile answers sent so far.
  int hostile() const { return hostile_; }

 private:
  void serve(int fd, const std::atomic<bool>& stop) {
    CommandReader in(fd, stop);
    Role role = Role::Unknown;
    bool subscribed = false;
    bool handshaken = false;
    for (;;) {
      const auto argv = in.next(20);
      if (!argv) {
        if (role == Role::Subscriber && target_.role == Role::Subscriber && armed_) {
          break;  // the push goes out
        }
        continue;
      }
      if (argv->empty()) {
        return;
      }
      const std::string& cmd = argv->front();
      if (role == Role::Unknown && handshaken) {
        role = cmd == "SUBSCRIBE" || cmd == "PSUBSCRIBE" ? Role::Subscriber
               : cmd == "XGROUP" || cmd == "XREADGROUP"  ? Role::Stream
                                                         : Role::Commands;
        ++seen_[static_cast<int>(role)];
      }
      if (armed_ && role == target_.role && role != Role::Subscriber &&
          (target_.command.empty() || cmd == target_.command)) {
        break;
      }
      if (!FakeServer::writeAll(fd, answer(*argv, subscribed))) {
        return;
      }
      handshaken = handshaken || cmd == "PING";  // the handshake's last step
    }
    ++hostile_;
    const std::string prefix = role == Role::Subscriber ? "*3\r\n" + bulk("message") + bulk(channel_) : "";
    if (!FakeServer::writeAll(fd, prefix + shape_.head)) {
      return;
    }
    if (shape_.unit.empty()) {
      FakeServer::drain(fd, stop);
    } else {
      FakeServer::repeat(fd, stop, shape_.unit);
    }
  }

  // What an idle Redis answers.
  static std::string answer(const std::vector<std::string>& argv, bool& subscribed) {
    const std::string& cmd = argv.front();
    if (cmd == "PING") {
      return subscribed ? "*2\r\n" + bulk("pong") + bulk("") : "+PONG\r\n";
    }
    if ((cmd == "SUBSCRIBE" || cmd == "PSUBSCRIBE") && argv.size() > 1) {
      subscribed = true;
      return "*3\r\n" + bulk(cmd == "SUBSCRIBE" ? "subscribe" : "psubscribe") + bulk(argv[1]) + ":1\r\n";
    }
    if (cmd == "XREADGROUP") {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // as BLOCK would
      return "*-1\r\n";
    }
    if (cmd == "XAUTOCLAIM") {
      return "*3\r\n" + bulk("0-0") + "*0\r\n*0\r\n";
    }
    if (cmd == "XPENDING") {
      return argv.size() > 3 ? "*0\r\n" : "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n";
    }
    if (cmd == "XINFO" || cmd == "LRANGE") {
      return "*0\r\n";
    }
    if (cmd == "PUBLISH" || cmd == "XACK" || cmd == "LLEN") {
      return ":0\r\n";
    }
    return "+OK\r\n";
  }

  const Shape shape_;
  const Target target_;
  const std::string channel_;
  std::atomic<bool> armed_{false};
  std::atomic<int> seen_[4] = {};
  std::atomic<int> hostile_{0};
  FakeServer server_;  // last: its threads use the members above
};

}  // namespace evh::test
