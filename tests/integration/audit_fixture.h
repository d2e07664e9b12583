// The audit plugin's integration tests' fixture: the plan's
// UserActivityEvent as a publisher sends it, a deployment of the bundled
// audit plugin against a private redis-server, and readers of the audit file.
// audit_test.cpp, audit_durability_test.cpp and audit_stream_test.cpp use it.
#pragma once

#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

inline constexpr const char* kActivityChannel = "test:jollyjet:events:audit";
inline constexpr const char* kProductChannel = "test:jollyjet:events:product";

inline std::string pad(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "%03d", i);
  return b;
}

// The plan's UserActivityEvent (Step 1.1) as a publisher sends it, fields in
// the plan's order: eventId, eventType, an ISO-8601 timestamp, the optional
// correlationId, and payload {userId, action, metadata}. Every field has a
// fixed width, so every audit line has the same length.
inline std::string userActivity(int i, bool correlated = true) {
  const std::string id = pad(i);
  return R"({"eventId":"evt-)" + id + R"(","eventType":"USER_ACTIVITY","timestamp":"2024-01-15T10:30:00.)" + id +
         R"(Z",)" + (correlated ? R"("correlationId":"req-)" + id + R"(",)" : std::string()) +
         R"("payload":{"userId":"user-)" + id + R"(","action":"login","metadata":{"email":"alice-)" + id +
         R"(@example.com","ip":"198.51.100.42","plan":"pro","device":{"os":"linux","ip":"10.0.0.1"}}}})";
}

// What the audit file holds: its lines, and whether the last one ended with
// a newline.
struct FileLines {
  std::vector<std::string> lines;
  bool complete = true;
};

inline FileLines readLines(const std::string& path) {
  FileLines out;
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      out.lines.push_back(text.substr(pos));
      out.complete = false;
      break;
    }
    out.lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Every line parsed; a line that is not one JSON object fails the test.
inline std::vector<json> parseAll(const std::vector<std::string>& lines) {
  std::vector<json> out;
  for (const auto& line : lines) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.is_object()) << line;
    out.push_back(j);
  }
  return out;
}

// The counters from the plugin's closing summary line.
inline std::map<std::string, long long> summary(const std::string& log) {
  std::map<std::string, long long> out;
  std::smatch m;
  static const std::regex re(
      R"(closed audit file \S+: lines=(\d+) fsyncs=(\d+) rotations=(\d+) redacted=(\d+) write_errors=(\d+))");
  if (std::regex_search(log, m, re)) {
    const char* names[] = {"lines", "fsyncs", "rotations", "redacted", "write_errors"};
    for (size_t i = 0; i < 5; ++i) {
      out[names[i]] = std::stoll(m[i + 1].str());
    }
  }
  return out;
}

inline bool isIsoUtcMillis(const std::string& s) {
  static const std::regex re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return std::regex_match(s, re);
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-audit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A deployment like config/jollyjet.yaml: USER_ACTIVITY and the product
  // events routed to the instance "audit". `audit` is the rest of its YAML
  // mapping, e.g. ", config: {fsync: never}"; empty: no config block at all.
  std::string config(const std::string& audit = "", const std::string& root = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_->port() << "}\n"
      << "shutdown_timeout_ms: 5000\n"
      << "dead_letter: {fallback_file: " << dir_ << "/dead.jsonl}\n"
      << root << "plugins:\n"
      << "  audit: {path: audit" << audit << "}\n"
      << R"(channels:
  jollyjet:events:audit:
    routes:
      - events: [USER_ACTIVITY]
        plugins: [audit]
  jollyjet:events:product:
    routes:
      - events: [PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED]
        plugins: [audit]
)";
    return y.str();
  }

  void publish(const std::string& channel, const std::string& message) {
    redis_->command({"PUBLISH", channel, message});
  }

  static void waitSubscribed(const EvhostProcess& host) { ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log(); }
  static std::string file(const EvhostProcess& host, const std::string& name = "audit.jsonl") {
    return host.dir() + "/" + name;
  }
  static bool hasLines(const std::string& path, size_t n) { return readLines(path).lines.size() >= n; }
  static void stop(EvhostProcess& host) {
    host.signal(SIGTERM);
    ASSERT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  }

  // How many XADD commands Redis has run (INFO commandstats), failed ones included.
  long long xaddCalls() {
    auto r = redis_->command({"INFO", "commandstats"});
    std::string info(r->str, r->len);
    std::smatch m;
    static const std::regex re(R"(cmdstat_xadd:calls=(\d+))");
    return std::regex_search(info, m, re) ? std::stoll(m[1].str()) : 0;
  }

  std::unique_ptr<RedisServer> redis_ = std::make_unique<RedisServer>();
  std::string dir_;
};

// An audit line as the plugin writes it, for an ORDER_PLACED event.
inline std::string orderLine(const std::string& id) {
  return R"({"timestamp":"2024-01-15T10:30:00.000Z","auditedAt":"2024-01-15T10:30:00.001Z","eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","userId":null,"action":null,"correlationId":null,)"
         R"("channel":"jollyjet:events:orders","payload":{"orderId":"o-1"}})";
}

inline std::string orderEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":"o-1"}})";
}

// The eventIds of an audit file's lines, in order.
inline std::vector<std::string> eventIds(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : readLines(path).lines) {
    json j = json::parse(line, nullptr, false);
    out.push_back(j.is_discarded() ? "(not JSON)" : j.value("eventId", std::string("?")));
  }
  return out;
}

}  // namespace evh::test
