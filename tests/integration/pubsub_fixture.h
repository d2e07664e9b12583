// The Pub/Sub integration tests' fixture: a deployment on a private
// redis-server with the prefix "test:", the recorder plugin's records, and
// a plan-shaped PRODUCT_CREATED. pubsub_test.cpp and
// pubsub_resilience_test.cpp use it.
#pragma once

#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <string>
#include <vector>

namespace evh::test {

using ::testing::HasSubstr;

inline std::vector<std::string> split(const std::string& s, char sep, size_t max_parts) {
  std::vector<std::string> out;
  size_t start = 0;
  while (out.size() + 1 < max_parts) {
    size_t pos = s.find(sep, start);
    if (pos == std::string::npos) {
      break;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

// One record of the recorder test plugin.
struct Record {
  std::string tag, type, id, correlation, attempt, channel, redis_channel, timestamp, timestamp_ms, payload;
};

inline std::string productCreated(const std::string& id, const std::string& corr = "req-1") {
  return R"({"eventId":")" + id + R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z",)" +
         R"("correlationId":")" + corr +
         R"(","payload":{"productId":"p-1","name":"Mug","price":12.5,"category":"kitchen"}})";
}

class PubSubTest : public ::testing::Test {
 protected:
  // A deployment on the test redis with prefix "test:".
  std::string config(const std::string& body, const std::string& redis_extra = "",
                     const std::string& logging = "  level: info\n") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis:\n  host: 127.0.0.1\n  port: " << redis_.port() << "\n"
      << "  reconnect: {initial_ms: 50, max_ms: 400}\n  ping_interval_ms: 500\n  ping_timeout_ms: 500\n"
      << redis_extra << "logging:\n"
      << logging << body;
    return y.str();
  }

  void publish(const std::string& channel, const std::string& message) {
    redis_.command({"PUBLISH", "test:" + channel, message});
  }

  std::vector<Record> records(const std::string& key = "seen") {
    std::vector<Record> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      auto f = split(std::string(r->element[i]->str, r->element[i]->len), '|', 10);
      if (f.size() == 10) {
        out.push_back(Record{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]});
      }
    }
    return out;
  }

  long long llen(const std::string& key = "seen") { return redis_.command({"LLEN", key})->integer; }

  static void waitSubscribed(const EvhostProcess& host, size_t times = 1) {
    ASSERT_TRUE(eventually([&] { return host.countInLog("subscribed to") >= times; })) << host.log();
  }

  RedisServer redis_;
};

}  // namespace evh::test
