// evhctl dlq against a real redis-server: list, show, remove, replay, purge, and their failures.
#include "support/evhost_process.h"
#include "support/pubsub_listener.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kKey = "test:jollyjet:events:dlq";
constexpr const char* kProductChannel = "test:jollyjet:events:product";

struct Spec {
  std::string id;
  std::string event_id;
  std::string event_type = "PRODUCT_CREATED";
  std::string plugin = "product";
  std::string reason = "exhausted";
  std::string timestamp = "2026-11-26T18:00:03.010Z";
};

// The original event of an entry, compact, as the replay must publish it.
std::string original(const Spec& s) {
  return R"({"eventId":")" + s.event_id + R"(","eventType":")" + s.event_type +
         R"(","timestamp":"2026-11-26T18:00:00.000Z","correlationId":"req-1","payload":{"id":"p-1","name":"Café ☕"}})";
}

// A dead-letter entry in the host's format.
std::string entry(const Spec& s) {
  return R"({"id":")" + s.id + R"(","reason":")" + s.reason + R"(","eventId":")" + s.event_id + R"(","eventType":")" +
         s.event_type +
         R"(","correlationId":"req-1","channel":"jollyjet:events:product","redisChannel":"test:jollyjet:events:product",)"
         R"("plugin":")" +
         s.plugin + R"(","error":{"name":")" + s.reason +
         R"(","message":"redis down"},"attempts":3,"retryCount":2,"firstAttemptAt":"2026-11-26T18:00:00.000Z",)"
         R"("lastAttemptAt":"2026-11-26T18:00:03.000Z","timestamp":")" +
         s.timestamp + R"(","originalEvent":)" + original(s) + "}";
}

// An undecodable message's entry: no originalEvent, the bytes in "raw".
std::string invalidEntry(const std::string& id, const std::string& raw_json_string) {
  return R"({"id":")" + id +
         R"(","reason":"invalid","eventId":"","eventType":"","channel":"jollyjet:events:product",)"
         R"("redisChannel":"test:jollyjet:events:product","plugin":"","error":{"name":"invalid","message":"not_json"},)"
         R"("attempts":0,"retryCount":0,"timestamp":"2026-11-26T18:00:05.000Z","raw":)" +
         raw_json_string + "}";
}

const Spec kOne{"dlq-1", "evt-1", "PRODUCT_CREATED", "product", "exhausted", "2026-11-26T18:00:01.000Z"};
const Spec kTwo{"dlq-2", "evt-2", "USER_ACTIVITY", "audit", "rejected", "2026-11-26T18:00:02.000Z"};
const Spec kThree{"dlq-3", "evt-longer-id-3", "PRODUCT_DELETED", "product", "timeout", "2026-11-26T18:00:03.000Z"};

std::vector<std::string> cliLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

class DlqCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-dlqcli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = writeConfig("evhost.yaml", redis_.port());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The deployment's YAML, as evhost would run it.
  std::string writeConfig(const std::string& name, uint16_t port,
                          const std::string& dlq_config = R"({key: "jollyjet:events:dlq"})", bool dead_letter = true) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << "environment: test\n"
                        << "redis: {port: " << port << "}\n"
                        << "plugins:\n"
                        << "  product: {path: product}\n"
                        << "  dlq: {path: dlq, config: " << dlq_config << "}\n"
                        << (dead_letter ? "dead_letter: {plugin: dlq}\n" : "");
    return path;
  }

  std::pair<int, std::string> dlq(std::vector<std::string> args, const std::string& config = {}) {
    std::vector<std::string> argv = {evhctlBin(), "dlq", "--config", config.empty() ? config_ : config};
    argv.insert(argv.end(), args.begin(), args.end());
    return evhctl(argv);
  }
  // Runs a command line, checking that it left no sanitizer report (in the
  // build-asan tree), whatever its exit code.
  static std::pair<int, std::string> evhctl(const std::vector<std::string>& argv) {
    auto result = runCommand(argv);
    for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      EXPECT_EQ(result.second.find(marker), std::string::npos) << "sanitizer report:\n" << result.second;
    }
    return result;
  }

  // LPUSHes the entries in order: the last one given is the newest.
  void seed(const std::vector<std::string>& oldest_first, const std::string& key = kKey) {
    for (const auto& e : oldest_first) {
      redis_.command({"LPUSH", key, e});
    }
  }

  std::vector<std::string> stored(const std::string& key = kKey) {
    std::vector<std::string> out;
    ReplyPtr r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  // A second connection subscribed to `channel`, as evhost would be.
  RedisConn subscribe(const std::string& channel) { return subscribeTo(redis_, channel); }

  RedisServer redis_;
  std::string dir_;
  std::string config_;
};

TEST_F(DlqCliTest, ListShowsNewestFirstInAlignedColumns) {
  seed({entry(kOne), entry(kTwo), entry(kThree)});
  auto [code, out] = dlq({"list"});
  ASSERT_EQ(code, 0) << out;
  auto l = cliLines(out);
  ASSERT_EQ(l.size(), 4U) << out;
  EXPECT_EQ(l[0], "TIME                      EVENT ID         EVENT TYPE       PLUGIN   REASON");
  EXPECT_EQ(l[1], "2026-11-26T18:00:03.000Z  evt-longer-id-3  PRODUCT_DELETED  product  timeout");
  EXPECT_EQ(l[2], "2026-11-26T18:00:02.000Z  evt-2            USER_ACTIVITY    audit    rejected");
  EXPECT_EQ(l[3], "2026-11-26T18:00:01.000Z  evt-1            PRODUCT_CREATED  product  exhausted");
}

TEST_F(DlqCliTest, ListLimitShowsTheNewestAndSaysHowManyThereAre) {
  seed({entry(kOne), entry(kTwo), entry(kThree)});
  auto [code, out] = dlq({"list", "--limit", "2"});
  ASSERT_EQ(code, 0) << out;
  auto l = cliLines(out);
  ASSERT_EQ(l.size(), 4U) << out;
  EXPECT_THAT(l[1], HasSubstr("evt-longer-id-3"));
  EXPECT_THAT(l[2], HasSubstr("evt-2"));
  EXPECT_EQ(l[3], "(2 of 3 entries; --limit N shows more)");
}

TEST_F(DlqCliTest, ListOfNothingSaysEmpty) {
  auto [code, out] = dlq({"list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "(empty)\n");
}

TEST_F(DlqCliTest, ConfigComesFromEvhConfigWhenNotGiven) {
  seed({entry(kOne)});
  auto [code, out] = evhctl({"/usr/bin/env", "EVH_CONFIG=" + config_, evhctlBin(), "dlq", "list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("evt-1"));
  auto [code2, out2] = evhctl({evhctlBin(), "dlq", "-c", config_, "list"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("evt-1"));
}

TEST_F(DlqCliTest, FollowsTheKeyOfTheDeadLetterPlugin) {
  std::string custom = writeConfig("custom.yaml", redis_.port(), R"({key: "custom:dead"})");
  seed({entry(kOne)}, "test:custom:dead");
  seed({entry(kTwo)});
  auto [code, out] = dlq({"list"}, custom);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("evt-1"));
  EXPECT_THAT(out, Not(HasSubstr("evt-2")));
}

TEST_F(DlqCliTest, WithoutADeadLetterPluginUsesTheDefaultKey) {
  std::string plain = writeConfig("plain.yaml", redis_.port(), R"({key: "custom:dead"})", false);
  seed({entry(kOne)});
  auto [code, out] = dlq({"list"}, plain);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("evt-1"));
}

TEST_F(DlqCliTest, ShowPrintsEveryEntryWithThatEventIdAsJson) {
  Spec again = kOne;
  again.id = "dlq-4";
  again.reason = "timeout";
  seed({entry(kOne), entry(kTwo), entry(again)});
  auto [code, out] = dlq({"show", "evt-1"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("{\n  \"id\": \"dlq-4\",\n  \"reason\": \"timeout\",\n  \"eventId\": \"evt-1\","));
  EXPECT_THAT(out, HasSubstr("\"id\": \"dlq-1\""));
  EXPECT_THAT(out, HasSubstr("\"originalEvent\": {\n    \"eventId\": \"evt-1\""));
  EXPECT_THAT(out, HasSubstr("\"name\": \"Café ☕\""));
  EXPECT_THAT(out, Not(HasSubstr("dlq-2")));
  // By the entry's own id too.
  auto [code2, out2] = dlq({"show", "dlq-2"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("\"eventId\": \"evt-2\""));
}

TEST_F(DlqCliTest, UnknownEventIdIsAClearError) {
  seed({entry(kOne)});
  for (const char* cmd : {"show", "remove", "replay"}) {
    auto [code, out] = dlq({cmd, "evt-nope"});
    EXPECT_EQ(code, 1) << cmd << ": " << out;
    EXPECT_THAT(out, HasSubstr("evhctl: no dead-letter entry with eventId evt-nope")) << cmd;
  }
  EXPECT_THAT(stored(), ElementsAre(entry(kOne)));
}

TEST_F(DlqCliTest, RemoveDeletesOnlyThatEventsEntries) {
  seed({entry(kOne), entry(kTwo), entry(kThree)});
  auto [code, out] = dlq({"remove", "evt-2"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "removed 1 entry with eventId evt-2\n");
  EXPECT_THAT(stored(), ElementsAre(entry(kThree), entry(kOne)));
  auto [code2, out2] = dlq({"remove", "evt-2"});
  EXPECT_EQ(code2, 1) << out2;
}

TEST_F(DlqCliTest, ReplayPublishesTheOriginalEventThenRemovesTheEntry) {
  seed({entry(kOne), entry(kTwo)});
  RedisConn sub = subscribe(kProductChannel);
  auto [code, out] = dlq({"replay", "evt-1"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("replayed evt-1 PRODUCT_CREATED (exhausted) on test:jollyjet:events:product "
                             "(1 receiver); removed"));
  EXPECT_THAT(out, HasSubstr("1 replayed, 0 failed"));
  EXPECT_EQ(nextMessageText(sub.get()), original(kOne)) << "the original event, byte for byte";
  EXPECT_THAT(stored(), ElementsAre(entry(kTwo)));
}

TEST_F(DlqCliTest, ReplayAllWithReasonTakesOnlyThoseOldestFirst) {
  Spec four{"dlq-4", "evt-4", "PRODUCT_UPDATED", "product", "exhausted", "2026-11-26T18:00:04.000Z"};
  std::string bad = invalidEntry("dlq-5", R"("not json{")");
  seed({entry(kOne), entry(kTwo), entry(four), bad});
  RedisConn sub = subscribe(kProductChannel);
  auto [code, out] = dlq({"replay", "--all", "--reason", "exhausted"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("2 replayed, 0 failed"));
  EXPECT_EQ(nextMessageText(sub.get()), original(kOne));
  EXPECT_EQ(nextMessageText(sub.get()), original(four));
  EXPECT_THAT(stored(), ElementsAre(bad, entry(kTwo)));

  // An undecodable message goes out again as the bytes it was.
  auto [code2, out2] = dlq({"replay", "--all", "--reason", "invalid"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("replayed dlq-5"));
  EXPECT_EQ(nextMessageText(sub.get()), "not json{");
  EXPECT_THAT(stored(), ElementsAre(entry(kTwo)));

  auto [code3, out3] = dlq({"replay", "--all", "--reason", "overloaded"});
  EXPECT_EQ(code3, 1) << out3;
  EXPECT_THAT(out3, HasSubstr("evhctl: no dead-letter entries with reason overloaded"));
}

TEST_F(DlqCliTest, ReplayKeepsTheEntryWhenNobodyIsSubscribed) {
  seed({entry(kOne)});
  auto [code, out] = dlq({"replay", "evt-1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("nobody is subscribed to test:jollyjet:events:product (is evhost running?); kept"));
  EXPECT_THAT(out, HasSubstr("0 replayed, 1 failed"));
  EXPECT_THAT(stored(), ElementsAre(entry(kOne)));
}

TEST_F(DlqCliTest, PurgeNeedsYes) {
  seed({entry(kOne), entry(kTwo)});
  auto [code, out] = dlq({"purge"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("--yes"));
  EXPECT_EQ(stored().size(), 2U);
  auto [code2, out2] = dlq({"purge", "--yes"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, "purged test:jollyjet:events:dlq: 2 entries deleted\n");
  EXPECT_EQ(redis_.command({"EXISTS", kKey})->integer, 0);
}

TEST_F(DlqCliTest, UnreachableRedisIsAClearError) {
  uint16_t port = 0;
  {
    RedisServer gone;
    port = gone.port();
    gone.kill();  // nothing listens there now
  }
  std::string cfg = writeConfig("gone.yaml", port);
  auto [code, out] = dlq({"list"}, cfg);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("evhctl: cannot reach Redis at 127.0.0.1:" + std::to_string(port) + ": "));
}

TEST_F(DlqCliTest, CorruptEntriesAreSkippedWithAWarning) {
  seed({entry(kOne), "not json at all", "[1,2]", entry(kTwo)});
  auto [code, out] = dlq({"list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("warning: 2 entries of the dead-letter list are not valid JSON (skipped)"));
  EXPECT_THAT(out, HasSubstr("evt-2"));
  EXPECT_THAT(out, HasSubstr("evt-1"));
  auto [code2, out2] = dlq({"remove", "evt-1"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(stored(), ElementsAre(entry(kTwo), "[1,2]", "not json at all"));
}

TEST_F(DlqCliTest, InvalidConfigurationIsReportedWithFileAndLine) {
  std::string bad = dir_ + "/bad.yaml";
  std::ofstream(bad) << "environment: test\nredis: {prot: 1}\n";
  auto [code, out] = dlq({"list"}, bad);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr(bad + ":2: redis.prot: unknown key"));
}

// The whole path: evhost dead-letters through the real dlq plugin, evhctl
// lists the entry, and its replay reaches evhost again.
TEST_F(DlqCliTest, EvhostDeadLettersThroughThePluginAndReplayRedelivers) {
  std::ostringstream yaml;
  yaml << "environment: test\n"
       << "redis: {port: " << redis_.port() << "}\n"
       << "plugins:\n"
       << "  rec: {path: recorder, config: {key: seen, answer: {PRODUCT_CREATED: reject}}}\n"
       << "  dlq: {path: dlq, config: {spool_file: " << dir_ << "/spool.jsonl}}\n"
       << "channels:\n"
       << "  jollyjet:events:product:\n"
       << "    routes:\n"
       << "      - events: \"*\"\n"
       << "        plugins: [rec]\n"
       << "dead_letter: {plugin: dlq, fallback_file: " << dir_ << "/fallback.jsonl}\n";
  EvhostProcess host(yaml.str());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  redis_.command({"PUBLISH", kProductChannel, original(kOne)});
  ASSERT_TRUE(eventually([&] { return stored().size() == 1; })) << host.log();
  std::string first = stored()[0];

  auto [code, out] = evhctl({evhctlBin(), "dlq", "--config", host.configPath(), "list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("  evt-1     PRODUCT_CREATED  rec     rejected\n"));

  // The recorder rejects it again: a new entry, the old one gone.
  auto [code2, out2] = evhctl({evhctlBin(), "dlq", "--config", host.configPath(), "replay", "evt-1"});
  EXPECT_EQ(code2, 0) << out2;
  ASSERT_TRUE(eventually([&] { return stored().size() == 1 && stored()[0] != first; })) << host.log();
  auto [code3, out3] = evhctl({evhctlBin(), "dlq", "--config", host.configPath(), "show", "evt-1"});
  EXPECT_EQ(code3, 0) << out3;
  EXPECT_THAT(out3, HasSubstr("\"reason\": \"rejected\""));
  EXPECT_THAT(out3, HasSubstr("\"name\": \"Café ☕\""));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/fallback.jsonl")) << "the plugin took every entry";
}

TEST_F(DlqCliTest, BadArgumentsPrintUsage) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"frobnicate"}, "evhctl: The following argument was not expected: frobnicate\n"},
      {{}, "evhctl: dlq needs a command: list, show, remove, replay or purge\n"},
      {{"list", "--limit", "0"}, "evhctl: --limit: Value 0 not in range 1 to 999999999\n"},
      {{"list", "--limit"}, "evhctl: --limit: 1 required N missing\n"},
      {{"list", "extra"}, "evhctl: The following argument was not expected: extra\n"},
      {{"show"}, "evhctl: EVENTID is required\n"},
      {{"remove", "a", "b"}, "evhctl: The following argument was not expected: b\n"},
      {{"replay"}, "evhctl: dlq replay needs either one EVENTID or --all\n"},
      {{"replay", "evt-1", "--all"}, "evhctl: --all excludes EVENTID\n"},
      {{"list", "--yes"}, "evhctl: The following argument was not expected: --yes\n"},
      {{"list", "--bogus"}, "evhctl: The following argument was not expected: --bogus\n"},
      {{"purge"}, "evhctl: dlq purge deletes every dead-letter entry; run it with --yes to do so\n"},
  };
  for (const auto& [args, message] : cases) {
    auto [code, out] = dlq(args);
    EXPECT_EQ(code, 2) << message << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhctl dlq")) << message;
  }
  auto [code, out] = evhctl({"/usr/bin/env", "-u", "EVH_CONFIG", evhctlBin(), "dlq", "list"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("dlq needs the evhost configuration: --config FILE (or EVH_CONFIG)"));
  auto [code2, out2] = evhctl({evhctlBin(), "--help"});
  EXPECT_EQ(code2, 0);
  EXPECT_THAT(out2, HasSubstr("  dlq                         The dead-letter list: list, show, remove, replay, purge"));
  EXPECT_THAT(out2, HasSubstr("  plugin                      Plugin libraries: inspect"));
  // --config goes before the command (as dlq() does) or after it.
  auto [code3, out3] = evhctl({evhctlBin(), "dlq", "list", "--config", config_, "--limit", "1"});
  EXPECT_EQ(code3, 0) << out3;
  EXPECT_EQ(out3, "(empty)\n");
}

}  // namespace
}  // namespace evh::test
