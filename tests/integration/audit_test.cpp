// The bundled audit plugin (plain C) run by the real evhost against a real
// redis-server: the audit file's lines (the plan's UserActivityEvent, ISO
// timestamps, redaction), rotation, each fsync mode, SIGKILL, the Redis
// stream, other event types, write failures and bad configs.
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
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kActivityChannel = "test:jollyjet:events:audit";
constexpr const char* kProductChannel = "test:jollyjet:events:product";

std::string pad(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "%03d", i);
  return b;
}

// The plan's UserActivityEvent (Step 1.1) as a publisher sends it, fields in
// the plan's order: eventId, eventType, an ISO-8601 timestamp, the optional
// correlationId, and payload {userId, action, metadata}. Every field has a
// fixed width, so every audit line has the same length.
std::string userActivity(int i, bool correlated = true) {
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

FileLines readLines(const std::string& path) {
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
std::vector<json> parseAll(const std::vector<std::string>& lines) {
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
std::map<std::string, long long> summary(const std::string& log) {
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

bool isIsoUtcMillis(const std::string& s) {
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
std::string orderLine(const std::string& id) {
  return R"({"timestamp":"2024-01-15T10:30:00.000Z","auditedAt":"2024-01-15T10:30:00.001Z","eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","userId":null,"action":null,"correlationId":null,)"
         R"("channel":"jollyjet:events:orders","payload":{"orderId":"o-1"}})";
}

std::string orderEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":"o-1"}})";
}

// The eventIds of an audit file's lines, in order.
std::vector<std::string> eventIds(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : readLines(path).lines) {
    json j = json::parse(line, nullptr, false);
    out.push_back(j.is_discarded() ? "(not JSON)" : j.value("eventId", std::string("?")));
  }
  return out;
}

// --------------------------------------------------------------------------
// The line

TEST_F(AuditTest, DefaultConfigWritesThePlansUserActivityEventsRedactedInPublishOrder) {
  EvhostProcess host(config());  // as in config/jollyjet.yaml: no config block
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("auditing to audit.jsonl (fsync: always; rotated at 104857600 bytes, keeping 5; "
                                    "redacting metadata.email, metadata.ip; skipping redelivered eventIds among "
                                    "the last 10000 lines)"));
  constexpr int kEvents = 10;
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i, /*correlated=*/i != 3));
  }
  // Published pretty-printed, with characters that need escaping: still one line.
  publish(kActivityChannel, R"({
    "eventId": "evt-pretty",
    "eventType": "USER_ACTIVITY",
    "timestamp": "2024-01-15T10:31:00.000Z",
    "correlationId": "req-pretty",
    "payload": {
      "userId": "user-\u00e9",
      "action": "profile.update",
      "metadata": {"email": "bob@example.com", "note": "caf\u00e9 \ud83d\ude00 \"quoted\"\nnext\tline",
                   "n": [1, 2.5e3, true, null]}
    }
  })");
  const std::string path = file(host);  // relative "audit.jsonl": evhost's working directory
  ASSERT_TRUE(eventually([&] { return hasLines(path, kEvents + 1); })) << host.log();

  FileLines f = readLines(path);
  ASSERT_EQ(f.lines.size(), static_cast<size_t>(kEvents + 1));
  EXPECT_TRUE(f.complete);
  std::vector<json> lines = parseAll(f.lines);
  const std::set<std::string> expected_keys = {"timestamp", "auditedAt",     "eventId", "eventType", "userId",
                                               "action",    "correlationId", "channel", "metadata"};
  for (int i = 0; i < kEvents; ++i) {
    const json& l = lines[static_cast<size_t>(i)];
    const std::string id = pad(i);
    std::set<std::string> keys;
    for (const auto& item : l.items()) {
      keys.insert(item.key());
    }
    EXPECT_EQ(keys, expected_keys) << f.lines[static_cast<size_t>(i)];
    EXPECT_EQ(l["eventId"], "evt-" + id);  // in publish order
    EXPECT_EQ(l["eventType"], "USER_ACTIVITY");
    EXPECT_EQ(l["timestamp"], "2024-01-15T10:30:00." + id + "Z");  // as sent
    EXPECT_TRUE(isIsoUtcMillis(l["auditedAt"].get<std::string>())) << l["auditedAt"];
    EXPECT_EQ(l["userId"], "user-" + id);
    EXPECT_EQ(l["action"], "login");
    if (i == 3) {
      EXPECT_TRUE(l["correlationId"].is_null());
    } else {
      EXPECT_EQ(l["correlationId"], "req-" + id);
    }
    EXPECT_EQ(l["channel"], "jollyjet:events:audit");
    // Redacted by default: metadata.email and metadata.ip. A path names one
    // place: the device's own "ip" is not metadata.ip.
    EXPECT_EQ(l["metadata"], json::parse(R"({"email":"[redacted]","ip":"[redacted]","plan":"pro",
                                             "device":{"os":"linux","ip":"10.0.0.1"}})"));
    EXPECT_EQ(f.lines[static_cast<size_t>(i)].find("@example.com"), std::string::npos) << "PII in the file";
    EXPECT_EQ(f.lines[static_cast<size_t>(i)].find("198.51.100.42"), std::string::npos) << "PII in the file";
  }
  const json& pretty = lines.back();
  EXPECT_EQ(pretty["eventId"], "evt-pretty");
  EXPECT_EQ(pretty["userId"], "user-\xc3\xa9");
  EXPECT_EQ(pretty["action"], "profile.update");
  EXPECT_EQ(pretty["metadata"]["email"], "[redacted]");
  EXPECT_FALSE(pretty["metadata"].contains("ip"));
  EXPECT_EQ(pretty["metadata"]["note"], "caf\xc3\xa9 \xf0\x9f\x98\x80 \"quoted\"\nnext\tline");
  EXPECT_EQ(pretty["metadata"]["n"], json::parse("[1, 2.5e3, true, null]"));

  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents + 1) << host.log();
  EXPECT_EQ(s["redacted"], 2 * kEvents + 1);
  EXPECT_EQ(s["write_errors"], 0);
}

TEST_F(AuditTest, RedactsNestedPathsInsideArraysAndByWildcard) {
  EvhostProcess host(config(R"(, config: {redact: [userId, metadata.address.street, metadata.devices.ip,
                                                    "metadata.sessions.*.token"]})"));
  waitSubscribed(host);
  publish(kActivityChannel, R"({"eventId":"e1","eventType":"USER_ACTIVITY","timestamp":"2024-01-15T10:30:00.000Z",
    "correlationId":"c1","payload":{"userId":"u-1","action":"checkout","metadata":{
      "email":"kept@example.com",
      "address":{"street":"1 Main St","city":"Oslo"},
      "devices":[{"ip":"192.0.2.1","os":"ios"},{"ip":{"v4":"192.0.2.2"},"os":"android"},"not-an-object"],
      "sessions":{"web":{"token":"t-web","ok":true},"app":{"token":["t","app"]}}}}})");
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), 1); })) << host.log();
  json l = parseAll(readLines(file(host)).lines).at(0);
  EXPECT_EQ(l["userId"], "[redacted]");
  EXPECT_EQ(l["action"], "checkout");
  EXPECT_EQ(l["metadata"], json::parse(R"({
      "email":"kept@example.com",
      "address":{"street":"[redacted]","city":"Oslo"},
      "devices":[{"ip":"[redacted]","os":"ios"},{"ip":"[redacted]","os":"android"},"not-an-object"],
      "sessions":{"web":{"token":"[redacted]","ok":true},"app":{"token":"[redacted]"}}})"))
      << l.dump();
  stop(host);
  EXPECT_EQ(summary(host.log())["redacted"], 6) << host.log();  // userId, street, 2 ips, 2 tokens
}

TEST_F(AuditTest, OtherEventTypesRoutedToAuditCarryTheirRedactedPayload) {
  EvhostProcess host(config());
  waitSubscribed(host);
  // The plan's ProductCreatedEvent, and one whose payload has a user and PII.
  publish(kProductChannel, R"({"eventId":"p1","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z",
    "correlationId":"c-p1","payload":{"productId":"prod-1","name":"Kite","price":129.99,"category":"outdoor"}})");
  publish(kProductChannel, R"({"eventId":"p2","eventType":"PRODUCT_UPDATED","timestamp":"2024-01-15T10:30:01.000Z",
    "payload":{"productId":"prod-1","changes":{"price":99},"userId":"admin-7","action":"price-cut",
               "metadata":{"email":"admin@example.com","ip":"203.0.113.9","reason":"sale"}}})");
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), 2); })) << host.log();
  std::vector<json> lines = parseAll(readLines(file(host)).lines);
  ASSERT_EQ(lines.size(), 2U);

  const json& created = lines[0];
  EXPECT_EQ(created["eventType"], "PRODUCT_CREATED");
  EXPECT_EQ(created["channel"], "jollyjet:events:product");
  EXPECT_TRUE(created["userId"].is_null());
  EXPECT_TRUE(created["action"].is_null());
  EXPECT_EQ(created["correlationId"], "c-p1");
  EXPECT_FALSE(created.contains("metadata"));
  EXPECT_EQ(created["payload"],
            json::parse(R"({"productId":"prod-1","name":"Kite","price":129.99,"category":"outdoor"})"));

  const json& updated = lines[1];
  EXPECT_EQ(updated["eventType"], "PRODUCT_UPDATED");
  EXPECT_EQ(updated["userId"], "admin-7");
  EXPECT_EQ(updated["action"], "price-cut");
  EXPECT_TRUE(updated["correlationId"].is_null());
  EXPECT_EQ(updated["payload"], json::parse(R"({"productId":"prod-1","changes":{"price":99},"userId":"admin-7",
      "action":"price-cut","metadata":{"email":"[redacted]","ip":"[redacted]","reason":"sale"}})"));
}

// --------------------------------------------------------------------------
// Rotation

TEST_F(AuditTest, RotatesBySizeKeepingKOlderFilesAndDroppingTheOldest) {
  constexpr int kEvents = 30;
  constexpr long long kRotateBytes = 1000;
  EvhostProcess host(config(", config: {rotate_bytes: 1000, keep: 2, fsync: never}"));
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  const std::string last_id = "evt-" + pad(kEvents - 1);
  // Lines are written in order: the last one in the current file means all are done.
  ASSERT_TRUE(eventually([&] {
    auto f = readLines(file(host));
    return !f.lines.empty() && f.lines.back().find(last_id) != std::string::npos;
  })) << host.log();

  namespace fs = std::filesystem;
  ASSERT_TRUE(fs::exists(file(host, "audit.jsonl.1")));
  ASSERT_TRUE(fs::exists(file(host, "audit.jsonl.2")));
  EXPECT_FALSE(fs::exists(file(host, "audit.jsonl.3"))) << "keep: 2";
  FileLines oldest = readLines(file(host, "audit.jsonl.2"));
  FileLines older = readLines(file(host, "audit.jsonl.1"));
  FileLines current = readLines(file(host));
  for (const char* name : {"audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"}) {
    EXPECT_LE(static_cast<long long>(fs::file_size(file(host, name))), kRotateBytes) << name;
  }
  // Every line has the same length L, so a rotated file holds exactly
  // floor(1000 / L) lines and the current one between 1 and that many.
  const size_t line_bytes = current.lines.at(0).size() + 1;
  const size_t per_file = static_cast<size_t>(kRotateBytes) / line_bytes;
  ASSERT_GE(per_file, 1U);
  EXPECT_EQ(oldest.lines.size(), per_file);
  EXPECT_EQ(older.lines.size(), per_file);
  EXPECT_GE(current.lines.size(), 1U);
  EXPECT_LE(current.lines.size(), per_file);

  // Oldest to newest, the kept lines are the last published events, in order,
  // none missing: what was dropped is exactly the oldest files.
  std::vector<std::string> kept = oldest.lines;
  kept.insert(kept.end(), older.lines.begin(), older.lines.end());
  kept.insert(kept.end(), current.lines.begin(), current.lines.end());
  std::vector<json> parsed = parseAll(kept);
  const size_t dropped = kEvents - kept.size();
  EXPECT_GT(dropped, 0U);
  for (size_t i = 0; i < parsed.size(); ++i) {
    EXPECT_EQ(parsed[i]["eventId"], "evt-" + pad(static_cast<int>(dropped + i)));
    EXPECT_EQ(kept[i].size() + 1, line_bytes);
  }
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  const long long files_used = (kEvents + static_cast<long long>(per_file) - 1) / static_cast<long long>(per_file);
  EXPECT_EQ(s["rotations"], files_used - 1);
  EXPECT_EQ(host.countInLog("rotated audit file audit.jsonl (keeping 2 older files)"),
            static_cast<size_t>(files_used - 1));
}

TEST_F(AuditTest, KeepZeroRotatesByStartingAFreshFile) {
  EvhostProcess host(config(", config: {rotate_bytes: 1, keep: 0}"));  // every line gets its own file
  waitSubscribed(host);
  for (int i = 0; i < 3; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] {
    auto f = readLines(file(host));
    return !f.lines.empty() && f.lines.back().find("evt-002") != std::string::npos;
  })) << host.log();
  FileLines f = readLines(file(host));
  ASSERT_EQ(f.lines.size(), 1U) << "a line longer than rotate_bytes is alone in its file";
  EXPECT_FALSE(std::filesystem::exists(file(host, "audit.jsonl.1")));
  stop(host);
  EXPECT_EQ(summary(host.log())["rotations"], 2) << host.log();
}

// --------------------------------------------------------------------------
// Durability

class AuditFsyncTest : public AuditTest, public ::testing::WithParamInterface<std::string> {};

// Each mode writes every line; the closing summary shows what it fsync'd:
// always -- once per batch of lines (group commit: lines queued while an
// fsync runs share the next one); never -- not at all; interval -- in the
// background (no event needed to trigger it), far fewer times than lines.
TEST_P(AuditFsyncTest, WritesEveryLineAndFsyncsAsTheModeSays) {
  const std::string mode = GetParam();
  constexpr int kEvents = 20;
  EvhostProcess host(config(", config: {fsync: " + mode + ", fsync_interval_ms: 100}"), {"--log-level", "debug"});
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("(fsync: " + mode + (mode == "interval" ? " every 100 ms" : "") + ";"));
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), kEvents); })) << host.log();
  if (mode == "interval") {
    // The flusher thread syncs the tail on its own once events stop.
    ASSERT_TRUE(host.waitForLog("audit lines of audit.jsonl (fsync: interval)")) << host.log();
  }
  std::vector<json> lines = parseAll(readLines(file(host)).lines);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(lines[static_cast<size_t>(i)]["eventId"], "evt-" + pad(i));
  }
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  if (mode == "always") {
    std::smatch m;
    const std::string log = host.log();
    ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(batches=(\d+))"))) << log;
    EXPECT_EQ(s["fsyncs"], std::stoll(m[1].str())) << "one fsync per batch";
    EXPECT_GE(s["fsyncs"], 1);
    EXPECT_LE(s["fsyncs"], kEvents);
  } else if (mode == "never") {
    EXPECT_EQ(s["fsyncs"], 0);
  } else {
    EXPECT_GE(s["fsyncs"], 1);
    EXPECT_LE(s["fsyncs"], kEvents);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, AuditFsyncTest, ::testing::Values("always", "interval", "never"));

TEST_F(AuditTest, IntervalModeDoesNotFsyncPerLineButAtShutdown) {
  constexpr int kEvents = 20;
  EvhostProcess host(config(", config: {fsync: interval, fsync_interval_ms: 3600000}"));
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), kEvents); })) << host.log();
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  EXPECT_EQ(s["fsyncs"], 1) << "one fsync, at the graceful stop";
}

// The acknowledgement is the contract: an event is answered OK only after
// its line is written (and, with fsync always, fsync'd: its batch's fsync). Killed with SIGKILL
// right after, evhost must not have lost any acknowledged line. (A process
// crash loses nothing in any mode -- written data is in the kernel's page
// cache; the modes differ only for an OS crash or power loss, which a test
// cannot stage.)
TEST_P(AuditFsyncTest, SigkillLosesNoAcknowledgedLine) {
  constexpr int kEvents = 40;
  EvhostProcess host(config(", config: {fsync: " + GetParam() + "}"), {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return host.countInLog("plugin=audit attempt=1 status=ok") == kEvents; })) << host.log();
  host.signal(SIGKILL);
  ASSERT_EQ(host.waitExit(), std::optional<int>(128 + SIGKILL));

  std::set<std::string> acknowledged;
  std::istringstream log(host.log());
  static const std::regex done(R"(stage=done eventId=(\S+) .*plugin=audit attempt=\d+ status=ok)");
  for (std::string line; std::getline(log, line);) {
    std::smatch m;
    if (std::regex_search(line, m, done)) {
      acknowledged.insert(m[1].str());
    }
  }
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kEvents));
  FileLines f = readLines(file(host));
  EXPECT_TRUE(f.complete);
  std::set<std::string> in_file;
  for (const json& l : parseAll(f.lines)) {
    in_file.insert(l["eventId"].get<std::string>());
  }
  EXPECT_EQ(in_file, acknowledged);
}

// Killed in the middle of a burst, with the stream as the witness: the
// plugin XADDs a line only after it is in the file and fsync'd, so every
// line visible in the stream must be in the file, complete and identical.
// Only a last line of an event not yet acknowledged may be cut short.
TEST_F(AuditTest, SigkillMidBurstKeepsEveryLineTheStreamHasSeen) {
  constexpr int kEvents = 300;
  EvhostProcess host(config(", config: {fsync: always, stream: {key: jollyjet:audit}}"));
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] {
    return redis_->command({"XLEN", "test:jollyjet:audit"})->integer >= 30;
  })) << host.log();
  host.signal(SIGKILL);
  ASSERT_EQ(host.waitExit(), std::optional<int>(128 + SIGKILL));

  std::vector<std::string> streamed;
  auto r = redis_->command({"XRANGE", "test:jollyjet:audit", "-", "+"});
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* fields = r->element[i]->element[1];
    ASSERT_EQ(fields->elements, 2U);
    EXPECT_EQ(std::string(fields->element[0]->str), "data");
    streamed.emplace_back(fields->element[1]->str, fields->element[1]->len);
  }
  ASSERT_GE(streamed.size(), 30U);
  FileLines f = readLines(file(host));
  std::vector<std::string> whole = f.lines;
  if (!f.complete) {
    whole.pop_back();  // cut short by the kill: its event was never acknowledged
    EXPECT_EQ(std::find(streamed.begin(), streamed.end(), f.lines.back()), streamed.end());
  }
  std::vector<json> parsed = parseAll(whole);
  ASSERT_GE(whole.size(), streamed.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(whole[i], streamed[i]) << "stream entry " << i << " differs from file line " << i;
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    EXPECT_EQ(parsed[i]["eventId"], "evt-" + pad(static_cast<int>(i)));
  }
}

// A torn last line left by an earlier crash (power loss mid-write) is ended
// with a newline, so new lines stay lines of their own. Also: an absolute
// "file" path.
TEST_F(AuditTest, ATornLastLineFromAnEarlierCrashIsEndedBeforeNewLines) {
  const std::string path = dir_ + "/audit.jsonl";
  std::ofstream(path) << R"({"timestamp":"2024-01-15T10:29:59.000Z","eventId":"e)";
  EvhostProcess host(config(", config: {file: " + path + "}"));
  waitSubscribed(host);
  publish(kActivityChannel, userActivity(1));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 2); })) << host.log();
  FileLines f = readLines(path);
  ASSERT_EQ(f.lines.size(), 2U);
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.lines[0], R"({"timestamp":"2024-01-15T10:29:59.000Z","eventId":"e)");
  EXPECT_EQ(json::parse(f.lines[1])["eventId"], "evt-001");
}

// --------------------------------------------------------------------------
// Failures of the file

TEST_F(AuditTest, AFileMovedAwayIsReopenedAndAFailedWriteIsRetriedUntilItWorks) {
  EvhostProcess host(config(", config: {fsync: always}",
                            "retry: {max_attempts: 10, base_delay_ms: 200, multiplier: 1, jitter: none}\n"));
  waitSubscribed(host);
  const std::string path = file(host);
  publish(kActivityChannel, userActivity(0));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 1); })) << host.log();

  // An external log rotation (mv, no copytruncate): the next line goes to a
  // new file at the configured path.
  std::filesystem::rename(path, path + ".old");
  publish(kActivityChannel, userActivity(1));
  ASSERT_TRUE(host.waitForLog("audit file audit.jsonl was moved, removed or replaced by someone else")) << host.log();
  EXPECT_EQ(readLines(path).lines.size(), 1U);
  EXPECT_EQ(readLines(path + ".old").lines.size(), 1U);

  // The path becomes unwritable (a folder in the way): RETRY with the reason,
  // and once it is writable again the line is written -- once.
  std::filesystem::remove(path);
  std::filesystem::create_directory(path);
  publish(kActivityChannel, userActivity(2));
  ASSERT_TRUE(host.waitForLog("cannot open audit file \"audit.jsonl\": Is a directory; retrying in 200 ms"))
      << host.log();
  std::filesystem::remove(path);
  ASSERT_TRUE(eventually([&] { return hasLines(path, 1); })) << host.log();
  publish(kActivityChannel, userActivity(3));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 2); })) << host.log();
  std::vector<json> lines = parseAll(readLines(path).lines);
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0]["eventId"], "evt-002");
  EXPECT_EQ(lines[1]["eventId"], "evt-003");
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], 4);
  EXPECT_GE(s["write_errors"], 1);
}

// --------------------------------------------------------------------------
// The stream

TEST_F(AuditTest, StreamGetsEveryLineUnderThePrefixedKey) {
  EvhostProcess host(config(", config: {stream: {key: jollyjet:audit, maxlen: 1000}}"));
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("also XADD to stream test:jollyjet:audit MAXLEN ~ 1000"));
  for (int i = 0; i < 5; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  publish(kProductChannel, R"({"eventId":"p1","eventType":"PRODUCT_DELETED","timestamp":1705314600000,
                               "payload":{"productId":"prod-1"}})");
  ASSERT_TRUE(eventually([&] { return redis_->command({"XLEN", "test:jollyjet:audit"})->integer == 6; })) << host.log();
  EXPECT_EQ(redis_->command({"EXISTS", "jollyjet:audit"})->integer, 0) << "the key has the environment prefix";
  auto r = redis_->command({"XRANGE", "test:jollyjet:audit", "-", "+"});
  FileLines f = readLines(file(host));
  ASSERT_EQ(f.lines.size(), 6U);
  ASSERT_EQ(r->elements, 6U);
  for (size_t i = 0; i < 6; ++i) {
    const redisReply* fields = r->element[i]->element[1];
    ASSERT_EQ(fields->elements, 2U);
    EXPECT_EQ(std::string(fields->element[0]->str), "data");
    EXPECT_EQ(std::string(fields->element[1]->str, fields->element[1]->len), f.lines[i]);
  }
  json deleted = json::parse(f.lines[5]);
  EXPECT_EQ(deleted["eventType"], "PRODUCT_DELETED");
  EXPECT_EQ(deleted["timestamp"], "1705314600000");  // epoch ms as sent, as text
}

TEST_F(AuditTest, StreamIsCappedApproximatelyAtMaxlen) {
  // Small stream nodes, so that MAXLEN ~ (which trims whole nodes) trims
  // close to the limit.
  redis_ = std::make_unique<RedisServer>(std::vector<std::string>{"--stream-node-max-entries", "10"});
  EvhostProcess host(config(", config: {fsync: never, stream: {key: jollyjet:audit, maxlen: 10}}"));
  waitSubscribed(host);
  constexpr int kEvents = 100;
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  auto newest = [&] {
    auto r = redis_->command({"XREVRANGE", "test:jollyjet:audit", "+", "-", "COUNT", "1"});
    if (r->elements != 1) {
      return std::string();
    }
    const redisReply* v = r->element[0]->element[1]->element[1];
    return std::string(v->str, v->len);
  };
  ASSERT_TRUE(eventually([&] { return newest().find("evt-" + pad(kEvents - 1)) != std::string::npos; })) << host.log();
  long long len = redis_->command({"XLEN", "test:jollyjet:audit"})->integer;
  EXPECT_GE(len, 10);
  EXPECT_LE(len, 20);  // at most one node beyond maxlen
  EXPECT_EQ(readLines(file(host)).lines.size(), static_cast<size_t>(kEvents)) << "the file keeps everything";
}

TEST_F(AuditTest, StreamFailuresAreLoggedOnceWhileTheFileKeepsEveryLine) {
  redis_->command({"SET", "test:jollyjet:audit", "not a stream"});  // XADD answers WRONGTYPE
  EvhostProcess host(config(", config: {stream: {key: jollyjet:audit}}"));
  waitSubscribed(host);
  for (int i = 0; i < 3; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), 3); })) << host.log();
  // Redis's own count says when all three XADDs have run (and failed).
  ASSERT_TRUE(eventually([&] { return xaddCalls() == 3; })) << host.log();
  ASSERT_TRUE(host.waitForLog("cannot add audit lines to stream test:jollyjet:audit (WRONGTYPE")) << host.log();
  redis_->command({"DEL", "test:jollyjet:audit"});
  publish(kActivityChannel, userActivity(3));
  ASSERT_TRUE(host.waitForLog("XADD to stream test:jollyjet:audit works again; 3 audit lines did not reach it"))
      << host.log();
  EXPECT_EQ(host.countInLog("cannot add audit lines to stream"), 1U) << host.log();
  EXPECT_EQ(redis_->command({"XLEN", "test:jollyjet:audit"})->integer, 1);
  EXPECT_EQ(readLines(file(host)).lines.size(), 4U);
}

// --------------------------------------------------------------------------
// Config

// --------------------------------------------------------------------------
// Redeliveries after a crash

class AuditRedeliveryTest : public AuditTest {
 protected:
  static constexpr const char* kStream = "test:jollyjet:events:orders";

  std::string streamConfig(const std::string& audit_config) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_->port() << "}\n"
      << "dead_letter: {fallback_file: " << dir_ << "/dead.jsonl}\n"
      << "plugins:\n  audit: {path: audit, config: {file: " << dir_ << "/audit.jsonl" << audit_config << "}}\n"
      << "channels:\n  jollyjet:events:orders:\n    transport: stream\n"
      << "    stream: {group: g, consumer: c1, block_ms: 100}\n"
      << "    routes: [{plugins: [audit]}]\n";
    return y.str();
  }

  // What a crash leaves behind: evt-a's line in the file and evt-b's in the
  // rotated one, both entries (and evt-c's, never written) still pending
  // for consumer c1; evt-d is new.
  void crashLeftovers() {
    std::ofstream(dir_ + "/audit.jsonl.1") << orderLine("evt-b") << "\n";
    std::ofstream(dir_ + "/audit.jsonl") << orderLine("evt-a") << "\n";
    redis_->command({"XGROUP", "CREATE", kStream, "g", "0", "MKSTREAM"});
    for (const char* id : {"evt-a", "evt-b", "evt-c"}) {
      redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    }
    ReplyPtr r = redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", kStream, ">"});
    ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(pending(), 3);
    redis_->command({"XADD", kStream, "*", "event", orderEvent("evt-d")});
  }

  long long pending() {
    ReplyPtr r = redis_->command({"XPENDING", kStream, "g"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
};

TEST_F(AuditRedeliveryTest, ARedeliveredEventWhoseLineIsInTheFileIsNotWrittenAgain) {
  crashLeftovers();
  EvhostProcess host(streamConfig(""));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 3); })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("remembered the eventIds of the last 2 lines of " + dir_ + "/audit.jsonl"));
  stop(host);
  // evt-a and evt-b were written before the crash; evt-c was pending but
  // never written; evt-d is new.
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), (std::vector<std::string>{"evt-a", "evt-c", "evt-d"}));
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl.1"), (std::vector<std::string>{"evt-b"}));
  EXPECT_THAT(host.log(), HasSubstr("redeliveries_skipped=2"));
}

// Many redelivered events in one batch, with repeats among themselves (the
// same eventId in two entries): each eventId is written once.
TEST_F(AuditRedeliveryTest, RepeatsAmongRedeliveredEventsAreWrittenOnce) {
  redis_->command({"XGROUP", "CREATE", kStream, "g", "0", "MKSTREAM"});
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "evt-" + std::to_string(i);
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
    want.push_back(id);
  }
  ReplyPtr r = redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "1000", "STREAMS", kStream, ">"});
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(pending(), 600);
  EvhostProcess host(streamConfig(""));
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  stop(host);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), want);
  EXPECT_THAT(host.log(), HasSubstr("redeliveries_skipped=300"));
}

TEST_F(AuditRedeliveryTest, WithTheWindowOffARedeliveredEventIsWrittenAgain) {
  crashLeftovers();
  EvhostProcess host(streamConfig(", dedup_window: 0"));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 5); })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("no check for redelivered eventIds"));
  stop(host);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"), (std::vector<std::string>{"evt-a", "evt-a", "evt-b", "evt-c", "evt-d"}));
}

// The window is the newest lines, whoever wrote them: lines written since the
// start count, a line that is not an audit line does not, and a redelivered
// event that fell out of the window is written again.
TEST_F(AuditRedeliveryTest, TheWindowHoldsTheNewestLinesWrittenSinceTheStart) {
  std::ofstream(dir_ + "/audit.jsonl") << "not an audit line\n" << orderLine("evt-0") << "\n";
  EvhostProcess host(streamConfig(", dedup_window: 2"));
  for (const char* id : {"evt-1", "evt-2", "evt-3"}) {
    redis_->command({"XADD", kStream, "*", "event", orderEvent(id)});
  }
  ASSERT_TRUE(eventually([&] { return hasLines(dir_ + "/audit.jsonl", 5) && pending() == 0; })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("remembered the eventIds of the last 1 lines"));
  stop(host);
  // Redeliver evt-1 (out of the window of 2) and evt-3 (in it) as a crash
  // would: pending for c1 again.
  ReplyPtr all = redis_->command({"XRANGE", kStream, "-", "+"});
  ASSERT_EQ(all->elements, 3U);
  std::vector<std::string> entries;
  for (size_t i = 0; i < all->elements; ++i) {
    entries.emplace_back(all->element[i]->element[0]->str);
  }
  redis_->command({"XGROUP", "SETID", kStream, "g", "0"});
  redis_->command({"XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", kStream, ">"});
  redis_->command({"XACK", kStream, "g", entries[1]});
  ASSERT_EQ(pending(), 2);
  EvhostProcess again(streamConfig(", dedup_window: 2"));
  ASSERT_TRUE(eventually([&] { return pending() == 0 && hasLines(dir_ + "/audit.jsonl", 6); })) << again.log();
  stop(again);
  EXPECT_EQ(eventIds(dir_ + "/audit.jsonl"),
            (std::vector<std::string>{"(not JSON)", "evt-0", "evt-1", "evt-2", "evt-3", "evt-1"}));
}

// Refused by the plugin's validate_config before anything starts, every
// problem at its line in the YAML; what only opening the file finds, at init.
TEST_F(AuditTest, ABadConfigRefusesToStartWithThePluginsReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{fsnyc: always}",
       "plugin audit config /fsnyc: unknown key (known: file, redact, fsync, fsync_interval_ms, rotate_bytes, "
       "keep, stream, dedup_window, commit_delay_us)"},
      {"{dedup_window: -1}", "plugin audit config /dedup_window: must be an integer from 0 to 1000000, got -1"},
      {"{commit_delay_us: 100001}",
       "plugin audit config /commit_delay_us: must be an integer from 0 to 100000, got 100001"},
      {"{fsync: sometimes}",
       "plugin audit config /fsync: must be one of \"always\", \"interval\", \"never\", got \"sometimes\""},
      {"{redact: [metadata..email]}", "plugin audit config /redact/0: \"metadata..email\" has an empty segment"},
      {"{redact: metadata.email}", "plugin audit config /redact: must be a list of paths"},
      {"{keep: -1}", "plugin audit config /keep: must be an integer from 0 to 1000, got -1"},
      {"{fsync_interval_ms: 5}",
       "plugin audit config /fsync_interval_ms: must be an integer from 10 to 3600000, got 5"},
      {"{stream: {maxlen: 10}}", "plugin audit config /stream: needs a key"},
      {"{stream: {key: a, max_len: 10}}", "plugin audit config /stream/max_len: unknown key (known: key, maxlen)"},
      {"{file: /nonexistent-evh-dir/audit.jsonl}",
       "plugin audit config /file: folder \"/nonexistent-evh-dir\" of \"/nonexistent-evh-dir/audit.jsonl\": No such "
       "file or directory"},
  };
  for (const auto& [cfg, message] : cases) {
    EvhostProcess host(config(", config: " + cfg));
    ASSERT_EQ(host.waitExit(), std::optional<int>(1)) << cfg << "\n" << host.log();
    EXPECT_THAT(host.log(), HasSubstr(message)) << cfg << "\n" << host.log();
    EXPECT_THAT(host.log(), Not(HasSubstr("init failed"))) << cfg;
  }
}

// validate_config looks at the file without creating it: a folder where the
// file should be is refused up front, at the line of `file`.
TEST_F(AuditTest, AFolderWhereTheFileShouldBeIsRefusedUpFront) {
  const std::string folder = dir_ + "/a-folder.jsonl";
  std::filesystem::create_directory(folder);
  EvhostProcess host(config(", config: {file: " + folder + "}"));
  ASSERT_EQ(host.waitExit(), std::optional<int>(1)) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("plugin audit config /file: \"" + folder + "\" exists and is not a regular file"))
      << host.log();
}

}  // namespace
}  // namespace evh::test
