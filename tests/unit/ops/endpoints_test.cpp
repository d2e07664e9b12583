// What each ops path answers, without a socket.
#include "ops/endpoints.h"

#include <gtest/gtest.h>

namespace evh::ops {
namespace {

FamilySample gauge(std::string name, std::string help, int64_t v) {
  FamilySample f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.kind = Kind::Gauge;
  SeriesSample s;
  s.exact = v;
  s.value = static_cast<double>(v);
  f.series.push_back(s);
  return f;
}

class EndpointsTest : public ::testing::Test {
 protected:
  LoopAnswer answered() { return LoopAnswer{&snapshot_, ""}; }
  static LoopAnswer unanswered() {
    return LoopAnswer{nullptr, "evhost's event loop is not answering (no answer within 3000 ms)"};
  }
  LoopSnapshot snapshot_;
};

TEST_F(EndpointsTest, KnowsItsPathsAndLabelsEverythingElseOther) {
  EXPECT_EQ(endpointOf("/metrics"), Endpoint::Metrics);
  EXPECT_EQ(endpointOf("/healthz"), Endpoint::Healthz);
  EXPECT_EQ(endpointOf("/readyz"), Endpoint::Readyz);
  EXPECT_EQ(endpointOf("/status"), Endpoint::Status);
  EXPECT_EQ(endpointOf("/health/pubsub"), Endpoint::HealthPubsub);
  for (const char* other :
       {"/", "", "/metrics/", "/METRICS", "/metricsx", "/health/pubsub/", "/health", "/../metrics"}) {
    EXPECT_EQ(endpointOf(other), Endpoint::Other) << other;
  }
  EXPECT_STREQ(endpointLabel(Endpoint::Metrics), "/metrics");
  EXPECT_STREQ(endpointLabel(Endpoint::Healthz), "/healthz");
  EXPECT_STREQ(endpointLabel(Endpoint::Readyz), "/readyz");
  EXPECT_STREQ(endpointLabel(Endpoint::Status), "/status");
  EXPECT_STREQ(endpointLabel(Endpoint::HealthPubsub), "/health/pubsub");
  EXPECT_STREQ(endpointLabel(Endpoint::Other), "other");
}

TEST_F(EndpointsTest, MetricsMergesTheLoopsFamiliesWithItsOwnByNameOnce) {
  snapshot_.families = std::make_shared<const Collection>(
      collectionOf({gauge("evhost_b", "From the registry.", 2), gauge("process_open_fds", "Registry's.", 7)}));
  const std::vector<FamilySample> own = {gauge("process_open_fds", "Ops thread's.", 9), gauge("evhost_a", "A.", 1)};
  const Response r = metricsResponse(answered(), Format::Prometheus, own);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body,
            "# HELP evhost_a A.\n# TYPE evhost_a gauge\nevhost_a 1\n"
            "# HELP evhost_b From the registry.\n# TYPE evhost_b gauge\nevhost_b 2\n"
            "# HELP process_open_fds Registry's.\n# TYPE process_open_fds gauge\nprocess_open_fds 7\n");
}

TEST_F(EndpointsTest, MetricsInOpenMetrics) {
  snapshot_.families = std::make_shared<const Collection>(collectionOf({gauge("evhost_b", "B.", 2)}));
  const Response r = metricsResponse(answered(), Format::OpenMetrics, {});
  EXPECT_EQ(r.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(r.body, "# TYPE evhost_b gauge\n# HELP evhost_b B.\nevhost_b 2\n# EOF\n");
}

TEST_F(EndpointsTest, MetricsWithoutTheLoopIs503SayingWhy) {
  const Response r = metricsResponse(unanswered(), Format::Prometheus, {gauge("evhost_a", "A.", 1)});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "evhost's event loop is not answering (no answer within 3000 ms); no metrics\n");
}

TEST_F(EndpointsTest, HealthzIsOkWhenTheLoopAnswered) {
  EXPECT_EQ(healthzResponse(answered()).status, 200);
  EXPECT_EQ(healthzResponse(answered()).body, "ok\n");
  const Response r = healthzResponse(unanswered());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "evhost's event loop is not answering (no answer within 3000 ms)\n");
}

TEST_F(EndpointsTest, HealthzFromTheWatchdogFailsPastTheBound) {
  EXPECT_EQ(healthzResponse(0, 1000).status, 200);
  EXPECT_EQ(healthzResponse(1000, 1000).body, "ok\n");
  const Response r = healthzResponse(1001, 1000);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "evhost's event loop has not turned for 1001 ms (ops.liveness_timeout_ms is 1000)\n");
}

TEST_F(EndpointsTest, PubsubRendersTheChecksAnswer) {
  snapshot_.pubsub = PubsubHealth{true, R"({"status":"healthy"})"};
  Response r = pubsubResponse(answered());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"status\":\"healthy\"}\n");
  snapshot_.pubsub = PubsubHealth{false, R"({"status":"unhealthy"})"};
  EXPECT_EQ(pubsubResponse(answered()).status, 503);
  r = pubsubResponse(unanswered());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(
      r.body,
      "{\"error\":\"evhost's event loop is not answering (no answer within 3000 ms)\",\"status\":\"unhealthy\"}\n");
}

TEST_F(EndpointsTest, EachEndpointAsksTheLoopForItsPartOnly) {
  EXPECT_EQ(partsOf(Endpoint::Metrics), kFamilies);
  EXPECT_EQ(partsOf(Endpoint::Readyz), kReadiness);
  EXPECT_EQ(partsOf(Endpoint::Status), kStatus);
  EXPECT_EQ(partsOf(Endpoint::HealthPubsub), kPubsub);
  EXPECT_EQ(partsOf(Endpoint::Healthz), 0U);
}

TEST_F(EndpointsTest, ReadyzRendersReadiness) {
  Response r = readyzResponse(answered());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"status\":\"ready\"}\n");
  snapshot_.readiness.not_ready = {"redis command connection (127.0.0.1:1) is down"};
  r = readyzResponse(answered());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"reasons\":[\"redis command connection (127.0.0.1:1) is down\"],\"status\":\"not ready\"}\n");
  r = readyzResponse(LoopAnswer{nullptr, "evhost is stopping"});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"reasons\":[\"evhost is stopping\"],\"status\":\"not ready\"}\n");
}

TEST_F(EndpointsTest, NotFoundAndMethodNotAllowed) {
  EXPECT_EQ(notFound().status, 404);
  EXPECT_FALSE(notFound().allow_header);
  const Response r = methodNotAllowed();
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(r.allow_header);
  EXPECT_STREQ(reasonPhrase(405), "Method Not Allowed");
  EXPECT_STREQ(reasonPhrase(503), "Service Unavailable");
}

}  // namespace
}  // namespace evh::ops
