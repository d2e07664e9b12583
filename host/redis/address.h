// Where a connection dials: asked afresh at every connect, so that a
// reconnect goes wherever the master is now rather than to a fixed
// host:port.
#pragma once

#include "redis/endpoint.h"

#include <cstdint>
#include <string>
#include <utility>

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
// the configured host:port; Sentinel (issue 17) will ask its sentinels and
// drop its cached answer when told that an address failed. Shared by every
// connection to the same Redis (subscriber, commands, streams), so that one
// connection's failure makes the others look again too.
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
