// Where and how to reach Redis, and how hard to try.
#pragma once

#include <cstdint>
#include <string>

namespace evh::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string username;  // ACL user; empty for the default user
  std::string password;  // empty: no AUTH
  uint32_t connect_timeout_ms = 2000;   // TCP connect + AUTH + SELECT
  uint32_t backoff_initial_ms = 100;
  uint32_t backoff_max_ms = 10000;
  double backoff_multiplier = 2.0;
  uint32_t ping_interval_ms = 3000;
  uint32_t ping_timeout_ms = 2000;

  std::string describe() const { return host + ":" + std::to_string(port); }
};

}  // namespace evh::redis
