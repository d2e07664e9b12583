// Plugins' metrics are series of the stats registry, labelled with their
// instance's name, and go when the instance goes.
#include "ops/stats.h"
#include "plugin/registry.h"
#include "support/fake_host.h"
#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace evh::plugin
