// evhctl publish against a real redis-server: wrapped and pass-through envelopes, PUBLISH and XADD, --count, errors.
#include "support/evhost_process.h"
#include "support/pubsub_listener.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using Json = nlohmann::ordered_json;

constexpr const char* kProduct = "test:jollyjet:events:product";
constexpr const char* kAudit = "test:jollyjet:events:audit";
constexpr const char* kOrders = "test:jollyjet:events:orders";
constexpr const char* kUuid = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// The deployment: a pattern channel first (never a default), then two
// pubsub channels and two streams.
std::string deployment(uint16_t port, const std::string& redis_extra = "") {
  return "environment: test\n"
         "redis: {host: 127.0.0.1, port: " +
         std::to_string(port) + redis_extra +
         "}\n"
         "plugins:\n"
         "  rec: {path: recorder}\n"
         "channels:\n"
         "  \"jollyjet:*\":\n"
         "    pattern: true\n"
         "    routes: [{plugins: [rec]}]\n"
         "  jollyjet:events:product:\n"
         "    routes: [{plugins: [rec]}]\n"
         "  jollyjet:events:orders:\n"
         "    transport: stream\n"
         "    routes: [{plugins: [rec]}]\n"
         "  jollyjet:events:audit:\n"
         "    routes: [{plugins: [rec]}]\n"
         "  jollyjet:events:shipments:\n"
         "    transport: stream\n"
         "    routes: [{plugins: [rec]}]\n";
}

const std::string kEnvelope =
    R"({"eventType":"PRODUCT_UPDATED", "eventId":"evt-9","timestamp":"2024-01-15T10:30:00.000Z",)"
    R"("payload":{"price":1.50,"big":12345678901234567890},"extra":[1,2]})";
const std::string kCloudEvent =
    R"({"specversion":"1.0","id":"ce-1","source":"/shop","type":"ORDER_PLACED","time":"2024-01-15T10:30:00Z",)"
    R"("correlationid":"req-3","data":{"orderId":"o-1"}})";

class PublishCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-pubcli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = write("evhost.yaml", deployment(redis_.port()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::pair<int, std::string> publish(std::vector<std::string> args, const std::string& config = {}) {
    std::vector<std::string> argv = {evhctlBin(), "publish", "--config", config.empty() ? config_ : config};
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
  // evhctl publish with stdin from `file`, and `args` after the config.
  std::pair<int, std::string> publishFromStdin(const std::string& file, std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "/bin/sh", "-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh", file, evhctlBin(), "publish", "--config", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    return evhctl(argv);
  }

  // A second connection subscribed to `channel`, as evhost would be.
  RedisConn subscribe(const std::string& channel) { return subscribeTo(redis_, channel); }

  // Every entry of a stream: {entry id, [field, value, ...]}.
  std::vector<std::pair<std::string, std::vector<std::string>>> xrange(const std::string& key) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    ReplyPtr r = redis_.command({"XRANGE", key, "-", "+"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      std::vector<std::string> fields;
      for (size_t f = 0; f < e->element[1]->elements; ++f) {
        fields.emplace_back(e->element[1]->element[f]->str, e->element[1]->element[f]->len);
      }
      out.emplace_back(std::string(e->element[0]->str, e->element[0]->len), std::move(fields));
    }
    return out;
  }
  long long xlen(const std::string& key) { return redis_.command({"XLEN", key})->integer; }

  RedisServer redis_;
  std::string dir_;
  std::string config_;
};

// "2024-01-15T10:30:00.123Z" -> ms since the epoch.
long long isoMs(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  return static_cast<long long>(timegm(&tm)) * 1000 + std::stoll(s.substr(20, 3));
}

long long nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(PublishCliTest, WrapsAPayloadInThePlanEnvelopeAndPublishesIt) {
  RedisConn sub = subscribe(kProduct);
  long long before = nowMs();
  auto [code, out] = publish({"--type", "PRODUCT_CREATED", "--correlation-id", "req-7", "--payload",
                              R"({"productId":"p-1","price":19.90,"tags":["a"]})"});
  long long after = nowMs();
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, MatchesRegex(std::string("published to test:jollyjet:events:product: 1 receiver \\(eventId ") +
                                kUuid + "\\)\n"));
  std::string message = nextMessageText(sub.get());
  Json j = Json::parse(message);
  std::vector<std::string> keys;
  for (const auto& item : j.items()) {
    keys.push_back(item.key());
  }
  EXPECT_THAT(keys, ElementsAre("eventId", "eventType", "timestamp", "correlationId", "payload"));
  const std::string id = j["eventId"].get<std::string>();
  EXPECT_TRUE(std::regex_match(id, std::regex(kUuid))) << id;
  EXPECT_THAT(out, HasSubstr(id));
  EXPECT_EQ(j["eventType"], "PRODUCT_CREATED");
  EXPECT_EQ(j["correlationId"], "req-7");
  const std::string ts = j["timestamp"].get<std::string>();
  ASSERT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << ts;
  EXPECT_GE(isoMs(ts), before - 1);
  EXPECT_LE(isoMs(ts), after + 1);
  // The payload goes in byte for byte (19.90 stays 19.90).
  EXPECT_THAT(message, HasSubstr(R"("payload":{"productId":"p-1","price":19.90,"tags":["a"]}})"));
}

TEST_F(PublishCliTest, GivenIdIsUsedAndNoCorrelationIdMeansNone) {
  RedisConn sub = subscribe(kProduct);
  auto [code, out] = publish({"--type", "PRODUCT_DELETED", "--id", "evt-42", "--payload", "{}"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "published to test:jollyjet:events:product: 1 receiver (eventId evt-42)\n");
  Json j = Json::parse(nextMessageText(sub.get()));
  EXPECT_EQ(j["eventId"], "evt-42");
  EXPECT_FALSE(j.contains("correlationId"));
  EXPECT_EQ(j["payload"], Json::object());
}

TEST_F(PublishCliTest, AFullEnvelopeIsSentUnchanged) {
  RedisConn sub = subscribe(kProduct);
  auto [code, out] = publish({"--payload", "  " + kEnvelope + "\n"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "published to test:jollyjet:events:product: 1 receiver (eventId evt-9)\n");
  EXPECT_EQ(nextMessageText(sub.get()), kEnvelope);

  // A CloudEvent, from a file.
  std::string file = write("ce.json", kCloudEvent + "\n");
  auto [code2, out2] = publish({"--file", file});
  ASSERT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, "published to test:jollyjet:events:product: 1 receiver (eventId ce-1)\n");
  EXPECT_EQ(nextMessageText(sub.get()), kCloudEvent);

  // A BATCH, from stdin: with - and with nothing (a pipe).
  std::string batch = R"({"type":"BATCH","messages":[)" + kEnvelope + "," + kCloudEvent + "]}";
  std::string batch_file = write("batch.json", batch);
  for (const auto& args : {std::vector<std::string>{"-"}, std::vector<std::string>{}}) {
    auto [code3, out3] = publishFromStdin(batch_file, args);
    ASSERT_EQ(code3, 0) << out3;
    EXPECT_EQ(out3, "published to test:jollyjet:events:product: 1 receiver\n");
    EXPECT_EQ(nextMessageText(sub.get()), batch);
  }
}

TEST_F(PublishCliTest, StreamXaddsTheEnvelopeInTheEventField) {
  auto [code, out] = publish({"--stream", "--type", "ORDER_PLACED", "--id", "o-1", "--payload", R"({"n":1})"});
  ASSERT_EQ(code, 0) << out;
  auto entries = xrange(kOrders);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(out, "added to test:jollyjet:events:orders: " + entries[0].first + " (eventId o-1)\n");
  ASSERT_EQ(entries[0].second.size(), 2U);
  EXPECT_EQ(entries[0].second[0], "event");
  Json j = Json::parse(entries[0].second[1]);
  EXPECT_EQ(j["eventId"], "o-1");
  EXPECT_EQ(j["eventType"], "ORDER_PLACED");
  EXPECT_EQ(j["payload"], Json::parse(R"({"n":1})"));

  // A full envelope, unchanged; an explicit channel.
  auto [code2, out2] = publish({"--stream", "--channel", "jollyjet:events:shipments", "--payload", kEnvelope});
  ASSERT_EQ(code2, 0) << out2;
  auto shipments = xrange("test:jollyjet:events:shipments");
  ASSERT_EQ(shipments.size(), 1U);
  EXPECT_THAT(shipments[0].second, ElementsAre("event", kEnvelope));
  EXPECT_EQ(xlen(kOrders), 1);
}

TEST_F(PublishCliTest, CountSendsThatManyEachWithAFreshEventId) {
  auto [code, out] = publish({"--stream", "--count", "2500", "--type", "LOAD", "--payload", R"({"i":1})"});
  ASSERT_EQ(code, 0) << out;
  auto entries = xrange(kOrders);
  ASSERT_EQ(entries.size(), 2500U);
  EXPECT_EQ(out, "added 2500 entries to test:jollyjet:events:orders: " + entries.front().first + " .. " +
                     entries.back().first + "\n");
  std::set<std::string> ids;
  for (const auto& e : entries) {
    ids.insert(Json::parse(e.second[1])["eventId"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 2500U);

  // Copies of a whole envelope get fresh ids too, and keep everything else.
  RedisConn sub = subscribe(kAudit);
  auto [code2, out2] = publish({"--channel", "jollyjet:events:audit", "--count", "3", "--payload", kEnvelope});
  ASSERT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, "published 3 events to test:jollyjet:events:audit: 1 receiver each\n");
  std::set<std::string> copies;
  for (int i = 0; i < 3; ++i) {
    Json j = Json::parse(nextMessageText(sub.get()));
    copies.insert(j["eventId"].get<std::string>());
    j.erase("eventId");
    Json original = Json::parse(kEnvelope);
    original.erase("eventId");
    EXPECT_EQ(j, original);
  }
  EXPECT_EQ(copies.size(), 3U);
  EXPECT_EQ(copies.count("evt-9"), 0U);
}

TEST_F(PublishCliTest, NobodySubscribedIsAWarningNotAFailure) {
  auto [code, out] = publish({"--type", "PRODUCT_CREATED", "--id", "e1", "--payload", "{}"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("published to test:jollyjet:events:product: 0 receivers (eventId e1)"));
  EXPECT_THAT(out, HasSubstr("warning: the event reached nobody subscribed to test:jollyjet:events:product (is "
                             "evhost running?)"));
}

TEST_F(PublishCliTest, ChannelOfTheOtherTransportOrUnknownIsWarnedAbout) {
  auto [code, out] = publish({"--channel", "jollyjet:events:orders", "--type", "T", "--payload", "{}"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("warning: channel jollyjet:events:orders is transport: stream"));
  auto [code2, out2] = publish({"--stream", "--channel", "nowhere", "--type", "T", "--payload", "{}"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("has no stream channel nowhere"));
  EXPECT_EQ(xlen("test:nowhere"), 1);
}

TEST_F(PublishCliTest, ConfigComesFromEvhConfigWhenNotGiven) {
  auto [code, out] = evhctl(
      {"/usr/bin/env", "EVH_CONFIG=" + config_, evhctlBin(), "publish", "--stream", "--type", "T", "--payload", "{}"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(xlen(kOrders), 1);
  auto [code2, out2] =
      evhctl({"/usr/bin/env", "-u", "EVH_CONFIG", evhctlBin(), "publish", "--type", "T", "--payload", "{}"});
  EXPECT_EQ(code2, 2) << out2;
  EXPECT_THAT(out2, HasSubstr("publish needs the evhost configuration: --config FILE (or EVH_CONFIG)"));
}

TEST_F(PublishCliTest, AuthenticatesAndSelectsTheDatabase) {
  RedisServer secured({"--requirepass", "s3cret"});
  std::string cfg = write("secured.yaml", deployment(secured.port(), ", password: s3cret, db: 3"));
  auto [code, out] = publish({"--stream", "--type", "T", "--payload", "{}"}, cfg);
  ASSERT_EQ(code, 0) << out;
  secured.command({"AUTH", "s3cret"});
  secured.command({"SELECT", "3"});
  EXPECT_EQ(secured.command({"XLEN", kOrders})->integer, 1);
  secured.command({"SELECT", "0"});
  EXPECT_EQ(secured.command({"XLEN", kOrders})->integer, 0);

  std::string wrong = write("wrong.yaml", deployment(secured.port(), ", password: nope"));
  auto [code2, out2] = publish({"--stream", "--type", "T", "--payload", "{}"}, wrong);
  EXPECT_EQ(code2, 1) << out2;
  // The words evhost logs for the same refusal (redis/handshake.h).
  EXPECT_THAT(out2, HasSubstr("Redis at 127.0.0.1:" + std::to_string(secured.port()) + ": AUTH failed: WRONGPASS"));
  EXPECT_THAT(out2, Not(HasSubstr("nope")));
}

TEST_F(PublishCliTest, NoChannelOfThatTransportIsAnError) {
  std::string only_pubsub = write("pubsub.yaml", "environment: test\nredis: {port: " + std::to_string(redis_.port()) +
                                                     "}\nplugins: {rec: {path: recorder}}\n"
                                                     "channels:\n  a: {routes: [{plugins: [rec]}]}\n");
  auto [code, out] = publish({"--stream", "--type", "T", "--payload", "{}"}, only_pubsub);
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("has no stream channel (transport: stream): name one with --channel NAME"));

  std::string only_stream =
      write("stream.yaml", "environment: test\nredis: {port: " + std::to_string(redis_.port()) +
                               "}\nplugins: {rec: {path: recorder}}\n"
                               "channels:\n  \"p*\": {pattern: true, routes: [{plugins: [rec]}]}\n"
                               "  s: {transport: stream, routes: [{plugins: [rec]}]}\n");
  auto [code2, out2] = publish({"--type", "T", "--payload", "{}"}, only_stream);
  EXPECT_EQ(code2, 2) << out2;
  EXPECT_THAT(out2, HasSubstr("has no pubsub channel: name one with --channel NAME"));
}

TEST_F(PublishCliTest, BadJsonIsRefusedAndNothingSent) {
  auto [code, out] = publish({"--stream", "--type", "T", "--payload", R"({"a":)"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("the JSON given with --payload is not valid JSON: parse error at line 1, column 6"));

  std::string file = write("bad.json", "{\"a\": 1,,}");
  auto [code2, out2] = publish({"--stream", "--type", "T", "--file", file});
  EXPECT_EQ(code2, 1) << out2;
  EXPECT_THAT(out2, HasSubstr(file + " is not valid JSON"));

  auto [code3, out3] = publish({"--stream", "--type", "T", "--payload", "[1,2]"});
  EXPECT_EQ(code3, 1) << out3;
  EXPECT_THAT(out3, HasSubstr("must be a JSON object"));

  std::string empty = write("empty.json", "\n");
  auto [code4, out4] = publishFromStdin(empty, {"--stream", "--type", "T", "-"});
  EXPECT_EQ(code4, 1) << out4;
  EXPECT_THAT(out4, HasSubstr("the JSON read from stdin is empty"));

  // An envelope evhost's decoder would refuse (no timestamp; a BATCH member
  // without source) is not sent either.
  auto [code5, out5] = publish({"--stream", "--payload", R"({"eventId":"x","eventType":"T","payload":{}})"});
  EXPECT_EQ(code5, 1) << out5;
  EXPECT_THAT(out5, HasSubstr(R"(evhost would refuse this message: missing field "timestamp" (reason=missing_field))"));
  auto [code6, out6] =
      publish({"--stream", "--payload", R"({"type":"BATCH","messages":[{"specversion":"1.0","id":"a","type":"T"}]})"});
  EXPECT_EQ(code6, 1) << out6;
  EXPECT_THAT(out6, HasSubstr("(BATCH member 0): missing field \"source\""));

  auto [code7, out7] = publish({"--stream", "--type", "T", "--file", dir_ + "/missing.json"});
  EXPECT_EQ(code7, 1) << out7;
  EXPECT_THAT(out7, HasSubstr("cannot read " + dir_ + "/missing.json: No such file or directory"));
  EXPECT_EQ(xlen(kOrders), 0);
}

TEST_F(PublishCliTest, APayloadNeedsATypeAndAnEnvelopeTakesNone) {
  auto [code, out] = publish({"--stream", "--payload", R"({"productId":"p-1"})"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("has no eventType, so it is the payload of a new envelope: give its event type with "
                             "--type TYPE"));
  auto [code2, out2] = publish({"--stream", "--type", "T", "--payload", kEnvelope});
  EXPECT_EQ(code2, 2) << out2;
  EXPECT_THAT(out2, HasSubstr("is already an envelope, sent as is"));
  EXPECT_EQ(xlen(kOrders), 0);
}

TEST_F(PublishCliTest, UnreachableRedisIsAClearFailure) {
  uint16_t port = 0;
  {
    RedisServer gone;
    port = gone.port();
  }
  std::string cfg = write("gone.yaml", deployment(port));
  auto [code, out] = publish({"--type", "T", "--payload", "{}"}, cfg);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("evhctl: cannot reach Redis at 127.0.0.1:" + std::to_string(port) + ": "));
}

TEST_F(PublishCliTest, BadArgumentsExitTwoWithUsage) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "evhctl: The following argument was not expected: --bogus\n"},
      {{"--count", "0", "--type", "T", "--payload", "{}"}, "evhctl: --count: Value 0 not in range 1 to 10000000\n"},
      {{"--count", "ten", "--type", "T", "--payload", "{}"}, "evhctl: --count: Value ten not in range 1 to 10000000\n"},
      {{"--id", "a", "--count", "2", "--type", "T", "--payload", "{}"},
       "evhctl: --id names one event; --count 2 sends each with a fresh eventId\n"},
      {{"--payload", "{}", "--file", "x.json"}, "evhctl: --file excludes --payload\n"},
      {{"--payload", "{}", "-"}, "evhctl: --payload excludes STDIN\n"},
      {{"--type"}, "evhctl: --type: 1 required TYPE missing\n"},
      {{"--type", "", "--payload", "{}"}, "evhctl: --type: needs a non-empty value\n"},
      {{"--stream=yes"}, "evhctl: stream was given a disallowed flag override\n"},
      {{"stray"}, "evhctl: STDIN: unexpected argument \"stray\" (a message goes in --payload JSON, --file FILE or -)"},
  };
  for (const auto& [args, message] : cases) {
    auto [code, out] = publish(args);
    EXPECT_EQ(code, 2) << out;
    EXPECT_THAT(out, HasSubstr(message));
    EXPECT_THAT(out, HasSubstr("Usage: evhctl publish [OPTIONS]"));
  }
  auto [code, out] = evhctl({evhctlBin(), "publish", "--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("XADD <env>:NAME * event JSON"));
  auto [code2, out2] = evhctl({evhctlBin(), "--help"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("  publish                     Send an event as any publisher would"));
  EXPECT_THAT(out2, Not(HasSubstr("--correlation-id")));  // publish's own options are in publish --help
  EXPECT_EQ(xlen(kOrders), 0);
}

}  // namespace
}  // namespace evh::test
