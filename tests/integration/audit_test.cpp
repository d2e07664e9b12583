// The bundled audit plugin (plain C) run by the real evhost against a real
// redis-server: the audit file's lines (the plan's UserActivityEvent, ISO
// timestamps, redaction), other event types, rotation and bad configs.
// Durability and the Redis stream are audit_durability_test.cpp's and
// audit_stream_test.cpp's.
#include "audit_fixture.h"

namespace evh::test {
namespace {

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
// Config

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
