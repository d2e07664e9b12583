// Plugins' metrics are series of the stats registry, labelled with their
// instance's name, and go when the instance goes.
#include "ops/stats.h"
#include "plugin/registry.h"
#include "support/fake_host.h"
#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>

namespace evh::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

config::Plugin entry(const std::string& name, const std::string& library) {
  config::Plugin p;
  p.name = name;
  p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/" + library + ".so";
  p.config_json = "{}";
  p.config_dir = ".";
  return p;
}

class PluginMetricsTest : public ::testing::Test {
 protected:
  void handle(const char* instance, int times) {
    Instance* in = plugins_.find(instance);
    ASSERT_NE(in, nullptr);
    for (int i = 0; i < times; ++i) {
      evh_event ev = test::makeEvent("PRODUCT_CREATED");
      test::FakeCall call;
      ASSERT_EQ(in->handle(ev, call.handle()), EVH_OK);
    }
  }

  // The log lines of one instance, from now on.
  void captureLog(const char* instance) {
    plugins_.find(instance)->logger().sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
  }
  std::string logText() const { return log_.str(); }

  std::ostringstream log_;  // before plugins_: their loggers may write to it
  ops::Registry stats_;
  test::FakeServices services_;
  Registry plugins_{stats_};
};

TEST_F(PluginMetricsTest, EachInstancesMetricsAreSeriesLabelledWithItsName) {
  // ok_c counts what it handles in its counter "handled".
  plugins_.load({entry("first", "ok_c"), entry("second", "ok_c")}, {}, services_, "dev:");
  handle("first", 2);
  handle("second", 1);
  EXPECT_THAT(test::renderStats(stats_), HasSubstr("# HELP evhost_plugin_ok_c_handled_total events handled\n"
                                                   "# TYPE evhost_plugin_ok_c_handled_total counter\n"
                                                   "evhost_plugin_ok_c_handled_total{plugin=\"first\"} 2\n"
                                                   "evhost_plugin_ok_c_handled_total{plugin=\"second\"} 1\n"));
}

TEST_F(PluginMetricsTest, GaugesAndNamesEndingInTotal) {
  plugins_.load({entry("cpp", "ok_cpp")}, {}, services_, "dev:");
  Instance* in = plugins_.find("cpp");
  const evh_host_api& api = hostApi();
  evh_metric* depth =
      api.metric_register(in->cHandle(), evh_str{"queue_depth", 11}, EVH_METRIC_GAUGE, evh_str{"items queued", 12});
  evh_metric* sent = api.metric_register(in->cHandle(), evh_str{"sent_total", 10}, EVH_METRIC_COUNTER, evh_str{});
  api.metric_set(depth, 7);
  api.metric_add(depth, -3);
  api.metric_add(sent, 5);
  const std::string text = test::renderStats(stats_);
  EXPECT_THAT(text, HasSubstr("# TYPE evhost_plugin_ok_cpp_queue_depth gauge\n"
                              "evhost_plugin_ok_cpp_queue_depth{plugin=\"cpp\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evhost_plugin_ok_cpp_sent_total{plugin=\"cpp\"} 5\n"));  // not _total_total
}

TEST_F(PluginMetricsTest, AnInstancesSeriesGoWithIt) {
  plugins_.load({entry("first", "ok_c")}, {}, services_, "dev:");
  handle("first", 1);
  EXPECT_THAT(test::renderStats(stats_), HasSubstr("evhost_plugin_ok_c_handled_total{plugin=\"first\"} 1\n"));
  plugins_.unloadAll();
  EXPECT_THAT(test::renderStats(stats_), Not(HasSubstr("evhost_plugin_ok_c_handled_total")));
}

TEST_F(PluginMetricsTest, AnotherHelpForASharedFamilyIsRefusedAlone) {
  plugins_.load({entry("first", "ok_c"), entry("second", "ok_c")}, {}, services_, "dev:");
  const evh_host_api& api = hostApi();
  evh_metric* a =
      api.metric_register(plugins_.find("first")->cHandle(), evh_str{"lag", 3}, EVH_METRIC_GAUGE, evh_str{"one", 3});
  evh_metric* b =
      api.metric_register(plugins_.find("second")->cHandle(), evh_str{"lag", 3}, EVH_METRIC_GAUGE, evh_str{"two", 3});
  EXPECT_NE(a, nullptr);
  EXPECT_EQ(b, nullptr);  // as plugin.h says for a clash; metric_add(NULL, ...) does nothing
  api.metric_add(b, 1);
  handle("second", 1);  // its other metrics still count
  EXPECT_EQ(test::metricValue(*plugins_.find("second"), "handled"), 1);
}

// ABI 1.1: metric_register_spec, metric_observe, status_text, health.

evh_metric_spec spec(evh_metric_kind kind, const char* name, const char* help) {
  evh_metric_spec sp{};
  sp.struct_size = sizeof(sp);
  sp.kind = kind;
  sp.name = evh_str{name, std::strlen(name)};
  sp.help = evh_str{help, std::strlen(help)};
  return sp;
}

evh_metric_label label(const char* name, const char* value) {
  return evh_metric_label{evh_str{name, std::strlen(name)}, evh_str{value, std::strlen(value)}};
}

TEST_F(PluginMetricsTest, LabelledSeriesAddTheirLabelsToThePluginLabel) {
  plugins_.load({entry("cpp", "ok_cpp")}, {}, services_, "dev:");
  handle("cpp", 2);  // ok_cpp counts by_type{type="other"} for PRODUCT_CREATED
  const std::string text = test::renderStats(stats_);
  EXPECT_THAT(text, HasSubstr("# TYPE evhost_plugin_ok_cpp_by_type_total counter\n"
                              "evhost_plugin_ok_cpp_by_type_total{plugin=\"cpp\",type=\"OK\"} 0\n"
                              "evhost_plugin_ok_cpp_by_type_total{plugin=\"cpp\",type=\"other\"} 2\n"));
}

TEST_F(PluginMetricsTest, AHistogramCountsObservationsInItsBuckets) {
  plugins_.load({entry("cpp", "ok_cpp")}, {}, services_, "dev:");
  handle("cpp", 3);  // ok_cpp observes 0.002 s per event in work_seconds {0.001, 0.005, 0.01}
  Instance* in = plugins_.find("cpp");
  const evh_host_api& api = hostApi();
  const double bounds[] = {0.001, 0.005, 0.01};
  evh_metric_spec sp = spec(EVH_METRIC_HISTOGRAM, "work_seconds", "work per event");
  sp.bucket_count = 3;
  sp.buckets = bounds;
  evh_metric* work = api.metric_register_spec(in->cHandle(), &sp);
  ASSERT_NE(work, nullptr);  // the same series as the plugin's
  api.metric_observe(work, 0.5);
  api.metric_observe(work, std::nan(""));  // ignored
  api.metric_observe(work, INFINITY);      // ignored
  const std::string text = test::renderStats(stats_);
  EXPECT_THAT(text, HasSubstr("# TYPE evhost_plugin_ok_cpp_work_seconds histogram\n"
                              "evhost_plugin_ok_cpp_work_seconds_bucket{plugin=\"cpp\",le=\"0.001\"} 0\n"
                              "evhost_plugin_ok_cpp_work_seconds_bucket{plugin=\"cpp\",le=\"0.005\"} 3\n"
                              "evhost_plugin_ok_cpp_work_seconds_bucket{plugin=\"cpp\",le=\"0.01\"} 3\n"
                              "evhost_plugin_ok_cpp_work_seconds_bucket{plugin=\"cpp\",le=\"+Inf\"} 4\n"
                              "evhost_plugin_ok_cpp_work_seconds_sum{plugin=\"cpp\"} 0.506\n"
                              "evhost_plugin_ok_cpp_work_seconds_count{plugin=\"cpp\"} 4\n"));
  // metric_observe on a counter does nothing; metric_add on a histogram neither.
  evh_metric* handled = api.metric_register(in->cHandle(), evh_str{"handled", 7}, EVH_METRIC_COUNTER, evh_str{});
  api.metric_observe(handled, 5);
  api.metric_add(work, 5);
  EXPECT_EQ(test::metricValue(*in, "handled"), 3);
  EXPECT_THAT(test::renderStats(stats_), HasSubstr("work_seconds_count{plugin=\"cpp\"} 4\n"));
}

TEST_F(PluginMetricsTest, InvalidSpecsAreRefusedWithTheirReason) {
  plugins_.load({entry("c", "ok_c")}, {}, services_, "dev:");
  evh_host* h = plugins_.find("c")->cHandle();
  captureLog("c");
  const evh_host_api& api = hostApi();
  const double decreasing[] = {0.5, 0.1};
  const double same_at_1e6[] = {0.1, 0.1000000001};
  const double inf[] = {1, INFINITY};
  auto refused = [&](evh_metric_spec sp) { return api.metric_register_spec(h, &sp) == nullptr; };

  evh_metric_spec sp = spec(EVH_METRIC_HISTOGRAM, "h_seconds", "");
  EXPECT_TRUE(refused(sp));  // no buckets
  sp.bucket_count = 2;
  sp.buckets = decreasing;
  EXPECT_TRUE(refused(sp));
  sp.buckets = same_at_1e6;
  EXPECT_TRUE(refused(sp));
  sp.buckets = inf;
  EXPECT_TRUE(refused(sp));

  evh_metric_label reserved[] = {label("plugin", "x")};
  evh_metric_label le[] = {label("le", "1")};
  evh_metric_label upper[] = {label("Table", "x")};
  evh_metric_label control[] = {label("table", "a\nb")};
  evh_metric_label twice[] = {label("t", "a"), label("t", "b")};
  for (auto* ls : {reserved, le, upper, control}) {
    evh_metric_spec c = spec(EVH_METRIC_COUNTER, "c_total", "");
    c.labels = ls;
    c.label_count = 1;
    EXPECT_TRUE(refused(c)) << std::string(ls->name.ptr, ls->name.len);
  }
  evh_metric_spec t = spec(EVH_METRIC_COUNTER, "c_total", "");
  t.labels = twice;
  t.label_count = 2;
  EXPECT_TRUE(refused(t));
  t.labels = nullptr;  // label_count 2 with no labels
  EXPECT_TRUE(refused(t));

  evh_metric_spec g = spec(EVH_METRIC_GAUGE, "g", "");
  g.bucket_count = 2;  // buckets on a gauge
  g.buckets = decreasing;
  EXPECT_TRUE(refused(g));
  EXPECT_TRUE(refused(spec(42, "k", "")));  // unknown kind
  EXPECT_TRUE(refused(spec(EVH_METRIC_GAUGE, "Bad-Name", "")));
  EXPECT_EQ(api.metric_register(h, evh_str{"hist", 4}, EVH_METRIC_HISTOGRAM, evh_str{}), nullptr);  // needs the spec

  const std::string log = logText();
  EXPECT_THAT(log, HasSubstr("a histogram needs 1 to 32 buckets"));
  EXPECT_THAT(log, HasSubstr("buckets must increase strictly (at a resolution of 1e-6): bucket 1"));
  EXPECT_THAT(log, HasSubstr("bucket 1 is not a finite number"));
  EXPECT_THAT(log, HasSubstr("label name \"plugin\" is reserved"));
  EXPECT_THAT(log, HasSubstr("label name \"le\" is reserved"));
  EXPECT_THAT(log, HasSubstr("invalid label name"));
  EXPECT_THAT(log, HasSubstr("the value must be printable ASCII"));
  EXPECT_THAT(log, HasSubstr("label \"t\" given twice"));
  EXPECT_THAT(log, HasSubstr("buckets given for a counter or gauge"));
  EXPECT_THAT(log, HasSubstr("unknown kind 42"));
}

TEST_F(PluginMetricsTest, ASecondShapeForANameIsRefusedAndTheFirstKeepsCounting) {
  plugins_.load({entry("c", "ok_c")}, {}, services_, "dev:");
  evh_host* h = plugins_.find("c")->cHandle();
  captureLog("c");
  const evh_host_api& api = hostApi();
  evh_metric_label table[] = {label("table", "orders")};
  evh_metric_label other[] = {label("kind", "orders")};
  evh_metric_spec a = spec(EVH_METRIC_COUNTER, "rows_total", "rows written");
  a.labels = table;
  a.label_count = 1;
  evh_metric* rows = api.metric_register_spec(h, &a);
  ASSERT_NE(rows, nullptr);
  EXPECT_EQ(api.metric_register_spec(h, &a), rows);  // the same series again
  evh_metric_spec b = a;
  b.labels = other;  // the same name with other label names
  EXPECT_EQ(api.metric_register_spec(h, &b), nullptr);
  evh_metric_spec c = a;
  c.label_count = 0;  // or none
  EXPECT_EQ(api.metric_register_spec(h, &c), nullptr);
  api.metric_add(rows, 2);
  EXPECT_THAT(test::renderStats(stats_), HasSubstr("evhost_plugin_ok_c_rows_total{plugin=\"c\",table=\"orders\"} 2\n"));
  EXPECT_THAT(logText(), HasSubstr("registered before with another kind, help text, label names or buckets"));
}

TEST_F(PluginMetricsTest, AnInstanceHoldsAtMostAThousandSeries) {
  plugins_.load({entry("c", "ok_c")}, {}, services_, "dev:");
  evh_host* h = plugins_.find("c")->cHandle();
  captureLog("c");
  const evh_host_api& api = hostApi();
  int accepted = 1;  // ok_c's own "handled"
  for (int i = 0; i < 1200; ++i) {
    const std::string id = std::to_string(i);
    evh_metric_label l[] = {label("id", id.c_str())};
    evh_metric_spec sp = spec(EVH_METRIC_COUNTER, "by_id_total", "");
    sp.labels = l;
    sp.label_count = 1;
    accepted += api.metric_register_spec(h, &sp) != nullptr ? 1 : 0;
  }
  EXPECT_EQ(accepted, 1000);
  EXPECT_THAT(logText(), HasSubstr("this instance already has 1000 series"));
}

TEST_F(PluginMetricsTest, StatusTextNamesEveryStatus) {
  const evh_host_api& api = hostApi();
  EXPECT_STREQ(api.status_text(EVH_OK), "ok");
  EXPECT_STREQ(api.status_text(EVH_RETRY), "retry");
  EXPECT_STREQ(api.status_text(EVH_REJECT), "reject");
  EXPECT_STREQ(api.status_text(EVH_PENDING), "pending");
  EXPECT_STREQ(api.status_text(EVH_ERR_STATE), "err_state");
  EXPECT_STREQ(api.status_text(EVH_ERR_UNAVAILABLE), "err_unavailable");
  EXPECT_STREQ(api.status_text(12345), "unknown");
  EXPECT_STREQ(api.status_text(-1000), "unknown");
}

TEST_F(PluginMetricsTest, HealthComesFromThePluginsCallback) {
  config::Plugin down = entry("down", "ok_c");
  down.config_json = R"({"mode":"health_down"})";
  config::Plugin degraded = entry("degraded", "ok_c");
  degraded.config_json = R"({"mode":"health_degraded"})";
  config::Plugin throws = entry("throws", "ok_cpp");
  throws.config_json = R"({"mode":"health_throws"})";
  plugins_.load(
      {entry("fine", "ok_c"), down, degraded, entry("cpp", "ok_cpp"), throws, entry("old", "abi_older_minor")}, {},
      services_, "dev:");
  // Nothing asked yet: OK.
  EXPECT_EQ(plugins_.find("down")->health(), EVH_HEALTH_OK);
  auto check = [&](const char* name, evh_health expected, const std::string& detail) {
    plugin::Instance* in = plugins_.find(name);
    EXPECT_EQ(in->checkHealth(), expected) << name;
    // Kept for whoever reads it until the next check.
    EXPECT_EQ(in->health(), expected) << name;
    EXPECT_EQ(in->healthDetail(), detail) << name;
  };
  check("fine", EVH_HEALTH_OK, "");
  check("down", EVH_HEALTH_DOWN, "ok_c was told to be down");
  check("degraded", EVH_HEALTH_DEGRADED, "ok_c was told to be degraded");
  check("cpp", EVH_HEALTH_OK, "");  // Plugin::health's default
  check("throws", EVH_HEALTH_DOWN, "health() threw: database unreachable");
  check("old", EVH_HEALTH_OK, "");  // a 1.0 plugin has no callback
}

// What plugins publish through the host, per channel: published, failed,
// and the round trip.
TEST_F(PluginMetricsTest, PublishesAreCountedPerChannel) {
  plugins_.load({entry("c", "ok_c")}, {}, services_, "dev:");
  evh_host* h = plugins_.find("c")->cHandle();
  captureLog("c");
  const evh_host_api& api = hostApi();
  const evh_str orders{"orders", 6};
  const evh_str msg{"{}", 2};
  // Not connected: refused at once, a failure.
  EXPECT_EQ(api.publish(h, orders, msg, nullptr, nullptr), EVH_ERR_UNAVAILABLE);

  services_.accept = true;
  struct Answer {
    int calls = 0;
    evh_status status = EVH_OK;
  } first, second;
  auto record = [](void* ud, evh_status status, const evh_reply*) {
    auto* a = static_cast<Answer*>(ud);
    ++a->calls;
    a->status = status;
  };
  EXPECT_EQ(api.publish(h, orders, msg, record, &first), EVH_OK);
  EXPECT_EQ(api.publish(h, orders, msg, record, &second), EVH_OK);
  EXPECT_EQ(api.publish(h, orders, msg, nullptr, nullptr), EVH_OK);  // no callback of its own
  ASSERT_EQ(services_.callbacks.size(), 3U);
  evh_reply ok{};
  ok.struct_size = sizeof(ok);
  ok.type = EVH_REPLY_INTEGER;
  ok.integer = 1;
  evh_reply refused{};
  refused.struct_size = sizeof(refused);
  refused.type = EVH_REPLY_ERROR;
  refused.str = evh_str{"NOPERM no permissions", 21};
  services_.callbacks[0].first(services_.callbacks[0].second, EVH_OK, &ok);
  services_.callbacks[1].first(services_.callbacks[1].second, EVH_OK, &refused);
  services_.callbacks[2].first(services_.callbacks[2].second, EVH_ERR_UNAVAILABLE, nullptr);
  EXPECT_EQ(first.calls, 1);  // the plugin's callbacks, with its own data
  EXPECT_EQ(second.calls, 1);

  const ops::Labels labels{{"channel", "orders"}, {"plugin", "c"}};
  EXPECT_EQ(test::statValue(stats_, "evhost_publish_total", labels), 4);
  EXPECT_EQ(test::statValue(stats_, "evhost_publish_failures_total", labels), 3);
  EXPECT_THAT(test::renderStats(stats_),
              HasSubstr("evhost_publish_duration_seconds_count{channel=\"orders\",plugin=\"c\"} 3\n"));
  // Without a callback, a failure is the host's to log.
  EXPECT_THAT(logText(), HasSubstr("redis PUBLISH: no reply (connection lost)"));
}

TEST_F(PluginMetricsTest, PublishChannelsBeyondThirtyTwoAreCountedAsOther) {
  plugins_.load({entry("c", "ok_c")}, {}, services_, "dev:");
  evh_host* h = plugins_.find("c")->cHandle();
  for (int i = 0; i < 40; ++i) {
    const std::string ch = "ch" + std::to_string(i);
    hostApi().publish(h, evh_str{ch.data(), ch.size()}, evh_str{"{}", 2}, nullptr, nullptr);
  }
  EXPECT_EQ(test::statValue(stats_, "evhost_publish_total", {{"channel", "ch31"}, {"plugin", "c"}}), 1);
  EXPECT_EQ(test::statValue(stats_, "evhost_publish_total", {{"channel", "other"}, {"plugin", "c"}}), 8);
  EXPECT_THAT(test::renderStats(stats_), Not(HasSubstr("channel=\"ch32\"")));
}

}  // namespace
}  // namespace evh::plugin
