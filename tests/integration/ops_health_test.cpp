// GET /health/pubsub (a PING, a publish and the round trip back through
// evhost's subscriber, cached) and the readiness transitions the other ops
// tests do not walk: a stream's consumer group gone and not creatable, and
// draining after SIGTERM.
#include "support/ops_fixture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

std::string healthEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

class OpsHealthTest : public OpsFixture {
 protected:
  // A config for redis_ as the ACL user "evh" (password "pw"), with `ops`
  // and then `body`.
  std::string aclConfig(const std::string& ops, const std::string& body) const {
    return "environment: test\nredis: {host: 127.0.0.1, port: " + std::to_string(redis_.port()) +
           ", username: evh, password: pw, reconnect: {initial_ms: 50, max_ms: 200}}\n" + ops + body;
  }
  // How many PUBLISH commands Redis has run (INFO commandstats).
  long long publishes() {
    auto r = redis_.command({"INFO", "commandstats"});
    const std::string info(r->str, r->len);
    const auto at = info.find("cmdstat_publish:calls=");
    return at == std::string::npos ? 0 : std::stoll(info.substr(at + 22));
  }
};

constexpr const char* kPubsubDeployment = R"(
plugins:
  a: {path: recorder}
channels:
  orders:
    routes: [{events: "*", plugins: [a]}]
)";

TEST_F(OpsHealthTest, PubsubIsHealthyWhenATokenPublishedComesBackThroughTheSubscriber) {
  EvhostProcess host(config(kPubsubDeployment));
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  const HttpResponse r = httpGet(url + "/health/pubsub");
  ASSERT_EQ(r.status, 200) << r.body << host.log();
  EXPECT_EQ(r.content_type, "application/json");
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["status"], "healthy");
  EXPECT_EQ(j["redis"], "127.0.0.1:" + std::to_string(redis_.port()));
  EXPECT_THAT(j["channel"].get<std::string>(), StartsWith("test:evh:health:"));
  EXPECT_THAT(j["channel"].get<std::string>(), HasSubstr("-" + std::to_string(host.pid())));
  EXPECT_EQ(j["ping"]["ok"], true);
  EXPECT_EQ(j["publish"]["ok"], true);
  EXPECT_EQ(j["publish"]["receivers"], 1);  // evhost's own subscriber, nobody else
  EXPECT_EQ(j["subscriber"]["ok"], true);
  EXPECT_GT(j["subscriber"]["round_trip_ms"].get<double>(), 0.0);
  EXPECT_EQ(j["cache_seconds"], 5.0);

  // Cached: probes do not reach Redis again within cache_ms.
  const long long before = publishes();
  for (int i = 0; i < 20; ++i) {
    const HttpResponse again = httpGet(url + "/health/pubsub");
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(Json::parse(again.body)["checked_at"], j["checked_at"]);
  }
  EXPECT_EQ(publishes(), before);
  // The check's channel is not an event channel: nothing was routed.
  EXPECT_EQ(redis_.command({"LLEN", "seen"})->integer, 0);
}

TEST_F(OpsHealthTest, PubsubIsUnhealthyWhileRedisIsDownAndHealthyAgainAfter) {
  EvhostProcess host(config(
      kPubsubDeployment, "ops: {listen: \"127.0.0.1:0\", pubsub_check_cache_ms: 0, pubsub_check_timeout_ms: 500}\n"));
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/health/pubsub", 200).status, 200) << host.log();
  redis_.kill();
  const HttpResponse down = getUntilStatus(url + "/health/pubsub", 503);
  ASSERT_EQ(down.status, 503) << down.body;
  const Json j = Json::parse(down.body);
  EXPECT_EQ(j["status"], "unhealthy");
  EXPECT_EQ(j["ping"]["ok"], false);
  EXPECT_THAT(j["ping"]["error"].get<std::string>(), HasSubstr("is down")) << down.body;
  EXPECT_EQ(j["subscriber"]["ok"], false);
  redis_.restart();
  const HttpResponse up = getUntilStatus(url + "/health/pubsub", 200);
  EXPECT_EQ(up.status, 200) << up.body << host.log();
}

// Without a Pub/Sub channel there is no subscriber to come back through:
// PING and PUBLISH are checked, the round trip is said to be skipped.
TEST_F(OpsHealthTest, PubsubWithoutSubscriptionsChecksPingAndPublishOnly) {
  EvhostProcess host(config(R"(
plugins:
  a: {path: recorder}
channels:
  jobs:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 200}
    routes: [{events: "*", plugins: [a]}]
)"));
  const std::string url = urlOf(host);
  const HttpResponse r = getUntilStatus(url + "/health/pubsub", 200);
  ASSERT_EQ(r.status, 200) << r.body << host.log();
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["publish"]["receivers"], 0);
  EXPECT_EQ(j["subscriber"]["skipped"], "no Pub/Sub channel is configured");
}

// An ACL that does not grant the check's channel: the check says so, and
// readiness (which is about events) is not affected.
TEST_F(OpsHealthTest, ACheckChannelTheAclForbidsFailsTheCheckButNotReadiness) {
  auto r = redis_.command(
      {"ACL", "SETUSER", "evh", "on", ">pw", "resetchannels", "&test:orders", "resetkeys", "~*", "+@all"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << r->str;
  EvhostProcess host(aclConfig("ops: {listen: \"127.0.0.1:0\", pubsub_check_timeout_ms: 300}\n", kPubsubDeployment));
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  const HttpResponse check = httpGet(url + "/health/pubsub");
  EXPECT_EQ(check.status, 503) << check.body;
  const Json j = Json::parse(check.body);
  EXPECT_EQ(j["subscriber"]["ok"], false);
  EXPECT_THAT(j["subscriber"]["error"].get<std::string>(), HasSubstr("refused by Redis")) << check.body;
  EXPECT_THAT(j["publish"]["error"].get<std::string>(), HasSubstr("NOPERM")) << check.body;
  EXPECT_EQ(getUntilStatus(url + "/readyz", 200).status, 200);
}

// A stream whose consumer group is gone and cannot be made again (an
// operator destroyed it, and evhost's ACL user may no longer run XGROUP):
// not ready, naming the stream and why; ready again once it can be.
TEST_F(OpsHealthTest, AStreamGroupThatIsGoneMakesEvhostNotReadyUntilItIsBack) {
  auto r = redis_.command({"ACL", "SETUSER", "evh", "on", ">pw", "allchannels", "allkeys", "+@all"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << r->str;
  EvhostProcess host(aclConfig("ops: {listen: \"127.0.0.1:0\"}\n", R"(
plugins:
  a: {path: recorder}
channels:
  jobs:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 100}
    routes: [{events: "*", plugins: [a]}]
)"));
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  r = redis_.command({"ACL", "SETUSER", "evh", "-xgroup"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << r->str;
  redis_.command({"XGROUP", "DESTROY", "test:jobs", "workers"});
  const HttpResponse gone = getUntilStatus(url + "/readyz", 503);
  ASSERT_EQ(gone.status, 503) << host.log();
  EXPECT_THAT(gone.body, HasSubstr("stream test:jobs (group workers): consumer group cannot be created: NOPERM"))
      << gone.body;
  r = redis_.command({"ACL", "SETUSER", "evh", "+xgroup"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << r->str;
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  redis_.command({"XADD", "test:jobs", "*", "event", healthEvent("j1", "JOB")});
  EXPECT_TRUE(eventually([&] { return redis_.command({"LLEN", "seen"})->integer == 1; })) << host.log();
}

// After SIGTERM, while an event is still being handled: not ready
// ("draining"), the listener still answering; then evhost exits cleanly.
TEST_F(OpsHealthTest, DrainingAfterSigtermIsNotReady) {
  EvhostProcess host(config(R"(
shutdown_timeout_ms: 10000
plugins:
  slow: {path: scripted_serial}
channels:
  orders:
    routes: [{events: "*", plugins: [slow]}]
)"));
  const std::string url = urlOf(host);
  ASSERT_EQ(getUntilStatus(url + "/readyz", 200).status, 200) << host.log();
  redis_.command({"PUBLISH", "test:orders", healthEvent("s1", "SLEEP_3000")});
  ASSERT_TRUE(eventually([&] {
    return httpGet(url + "/metrics").body.find("\nevhost_events_in_flight 1\n") != std::string::npos;
  })) << host.log();
  host.signal(SIGTERM);
  const HttpResponse draining = getUntilStatus(url + "/readyz", 503);
  ASSERT_EQ(draining.status, 503) << host.log();
  EXPECT_THAT(draining.body, HasSubstr("draining: evhost is stopping and takes no new events"));
  EXPECT_EQ(httpGet(url + "/healthz").status, 200);  // alive all the while
  EXPECT_EQ(host.waitExit(), 0) << host.log();
}

}  // namespace
}  // namespace evh::test
