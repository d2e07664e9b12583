// Where a connection dials: asked afresh at every connect, so that a
// reconnect goes wherever the master is now rather than to a fixed
// host:port.
#pragma once

#include "redis/endpoint.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evh::redis {

struct Address {
  std::string host;  // a name or a numeric IPv4/IPv6 address
  uint16_t port = 0;

  // host:port, an IPv6 literal in brackets ([::1]:6379), as config URLs write it.
  std::string describe() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
  bool operator==(const Address& o) const { return host == o.host && port == o.port; }
  bool operator!=(const Address& o) const { return !(*this == o); }
};

// Answers "where is the master now?". StaticAddress (below) always answers
// the configured host:port; SentinelAddress (sentinel.h) asks its sentinels,
// follows their +switch-master, and asks again when told that the master's
// address failed. Shared by every connection to the same Redis (subscriber,
// commands, streams), so that one connection's failure makes the others look
// again too.
// THREAD: whichever thread owns the connections asking (the loop for
// evhost's, the caller for evhctl's).
class AddressProvider {
 public:
  virtual ~AddressProvider() = default;
  // Asked before every connect attempt. Must not block the loop: a provider
  // that needs the network answers from what it knows and refreshes
  // asynchronously.
  virtual Address current() = 0;
  // The attempt at `address` failed, or a connection to it that was up was
  // lost: `why` as logged (never a secret).
  virtual void failed(const Address& address, const std::string& why) = 0;
  // While current() has no answer (host empty): why, for the connection's
  // log line ("asking the sentinels for master NAME").
  virtual std::string waitingFor() const { return "no address yet"; }
  // Whether a connection must confirm with ROLE that the node is a master
  // (a demoted one is left at once).
  virtual bool requiresMaster() const { return false; }
  // A command on a connection to `at`, which this provider named, was
  // answered with `error`: a Redis Cluster's redirect ("MOVED slot host:port" -- the
  // slot has a new master, which current() answers from now on -- or "ASK
  // ...": a slot being migrated). Returns whether it was one; false for any
  // other error, and always for providers that are not a cluster's.
  virtual bool redirected(std::string_view /*error*/, const Address& /*at*/) { return false; }

  // Connections watch for a changed answer (a failover): `changed` runs on
  // the provider's thread after current() changed. Returns the watch's id
  // for unwatch(); a Connection watches for its whole life.
  uint64_t watch(std::function<void()> changed) {
    watchers_.emplace_back(++last_watch_, std::move(changed));
    return last_watch_;
  }
  void unwatch(uint64_t id) {
    for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
      if (it->first == id) {
        watchers_.erase(it);
        return;
      }
    }
  }

 protected:
  // Tells every watcher; one that unwatches another meanwhile is safe.
  void notifyChanged() {
    std::vector<uint64_t> ids;
    for (const auto& w : watchers_) {
      ids.push_back(w.first);
    }
    for (uint64_t id : ids) {
      for (const auto& w : watchers_) {
        if (w.first == id) {
          const std::function<void()> fn = w.second;  // the call may unwatch it
          fn();
          break;
        }
      }
    }
  }

 private:
  std::vector<std::pair<uint64_t, std::function<void()>>> watchers_;
  uint64_t last_watch_ = 0;
};

// The configured host:port, whatever happens.
class StaticAddress final : public AddressProvider {
 public:
  explicit StaticAddress(Address address) : address_(std::move(address)) {}
  explicit StaticAddress(const Endpoint& e) : address_{e.host, e.port} {}
  Address current() override { return address_; }
  void failed(const Address&, const std::string&) override {}

 private:
  Address address_;
};

}  // namespace evh::redis
