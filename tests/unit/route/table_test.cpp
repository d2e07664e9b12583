// Route tables: exact and "*" routes, route order, one call per plugin; channels of a runtime, unknown ids.
#include "route/table.h"

#include "runtime/runtime.h"

#include "plugin/registry.h"
#include "support/fake_host.h"
#include "support/stats_text.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace evh::route {
namespace {

using Names = std::vector<std::pair<std::string, size_t>>;  // (plugin, route index) in call order

config::Route route(std::vector<std::string> events, std::vector<std::string> plugins) {
  config::Route r;
  r.events = std::move(events);
  r.plugins = std::move(plugins);
  return r;
}

config::Channel channel(const std::string& name, std::vector<config::Route> routes) {
  config::Channel c;
  c.name = name;
  c.routes = std::move(routes);
  return c;
}

class RouteTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<config::Plugin> entries;
    for (const char* n : {"a", "b", "c", "d"}) {
      config::Plugin p;
      p.name = n;
      p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_c.so";
      p.config_json = "{}";
      p.config_dir = ".";
      entries.push_back(std::move(p));
    }
    registry_.load(entries, {}, services_, "dev:");
  }

  // A runtime of these channels, routed by channel position.
  struct Routed {
    runtime::RuntimePtr rt;
    const Targets& route(size_t i, std::string_view type) const { return rt->channels().at(i).routes.route(type); }
    size_t channels() const { return rt->channels().size(); }
  };

  Routed make(const std::vector<config::Channel>& channels) {
    config::Config cfg;
    cfg.channels = channels;
    return Routed{runtime::Runtime::build(
        cfg, [this](const std::string& n) { return registry_.find(n); }, ids_, 1)};
  }

  static Names names(const Targets& targets) {
    Names out;
    for (const auto& t : targets) {
      out.emplace_back(t.plugin->name(), t.route);
    }
    return out;
  }

  test::FakeServices services_;
  plugin::Registry registry_;
  runtime::ChannelIds ids_;
};

TEST_F(RouteTableTest, ExactTypeRoutesCallPluginsInRouteOrder) {
  Routed r = make({channel(
      "orders", {route({"CREATED"}, {"b", "a"}), route({"UPDATED"}, {"d"}), route({"CREATED", "DELETED"}, {"c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"b", 0}, {"a", 0}, {"c", 2}}));
  EXPECT_EQ(names(r.route(0, "UPDATED")), (Names{{"d", 1}}));
  EXPECT_EQ(names(r.route(0, "DELETED")), (Names{{"c", 2}}));
}

TEST_F(RouteTableTest, ManyTypesAreEachFound) {
  // Types listed out of alphabetical order, one plugin each.
  Routed r =
      make({channel("x", {route({"T3"}, {"c"}), route({"T1"}, {"a"}), route({"T4"}, {"d"}), route({"T2"}, {"b"})})});
  EXPECT_EQ(names(r.route(0, "T1")), (Names{{"a", 1}}));
  EXPECT_EQ(names(r.route(0, "T2")), (Names{{"b", 3}}));
  EXPECT_EQ(names(r.route(0, "T3")), (Names{{"c", 0}}));
  EXPECT_EQ(names(r.route(0, "T4")), (Names{{"d", 2}}));
  EXPECT_TRUE(r.route(0, "T0").empty());
  EXPECT_TRUE(r.route(0, "T5").empty());
  EXPECT_TRUE(r.route(0, "t1").empty());  // types are case-sensitive
}

TEST_F(RouteTableTest, WildcardRouteTakesTypesNoRouteNames) {
  Routed r = make({channel("orders", {route({"CREATED"}, {"a"}), route({}, {"b", "c"})})});
  EXPECT_EQ(names(r.route(0, "SHIPPED")), (Names{{"b", 1}, {"c", 1}}));
  EXPECT_EQ(names(r.route(0, "")), (Names{{"b", 1}, {"c", 1}}));
}

TEST_F(RouteTableTest, NamedTypeAlsoGetsWildcardRoutesInRouteOrder) {
  Routed r = make({channel("orders", {route({}, {"a"}), route({"CREATED"}, {"b"}), route({}, {"c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 1}, {"c", 2}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"a", 0}, {"c", 2}}));
}

TEST_F(RouteTableTest, PluginNamedByTwoMatchingRoutesIsCalledOnceAtItsFirstPlace) {
  Routed r = make({channel(
      "orders", {route({"CREATED"}, {"a", "b"}), route({}, {"b", "c", "a"}), route({"CREATED"}, {"c", "d"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 0}, {"c", 1}, {"d", 2}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"b", 1}, {"c", 1}, {"a", 1}}));
}

TEST_F(RouteTableTest, PluginNamedTwiceInOneRouteIsCalledOnce) {
  Routed r = make({channel("orders", {route({"CREATED", "CREATED"}, {"a", "b", "a"}), route({}, {"c", "c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 0}, {"c", 1}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"c", 1}}));
}

TEST_F(RouteTableTest, ChannelsRouteIndependently) {
  Routed r = make({channel("orders", {route({"CREATED"}, {"a"})}), channel("users", {route({"CREATED"}, {"b"})}),
                   channel("audit", {route({}, {"c"})})});
  EXPECT_EQ(r.channels(), 3U);
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}}));
  EXPECT_EQ(names(r.route(1, "CREATED")), (Names{{"b", 0}}));
  EXPECT_EQ(names(r.route(2, "CREATED")), (Names{{"c", 0}}));
}

TEST_F(RouteTableTest, UnknownChannelIdHasNoChannel) {
  Routed r = make({channel("orders", {route({}, {"a"})})});
  const runtime::ChannelId id = r.rt->channels().at(0).id;
  EXPECT_EQ(r.rt->channel(id), &r.rt->channels().at(0));
  EXPECT_EQ(r.rt->channel(id + 1), nullptr);
  EXPECT_EQ(r.rt->channel(static_cast<runtime::ChannelId>(-1)), nullptr);
}

TEST_F(RouteTableTest, AChannelKeepsItsIdAcrossRuntimesAndANewOneGetsANewId) {
  Routed first = make({channel("orders", {route({}, {"a"})}), channel("users", {route({}, {"b"})})});
  // Reordered, one removed, one added: ids follow the names, not positions.
  Routed second = make({channel("audit", {route({}, {"c"})}), channel("orders", {route({}, {"d"})})});
  EXPECT_EQ(second.rt->channels().at(1).id, first.rt->channels().at(0).id);
  EXPECT_NE(second.rt->channels().at(0).id, first.rt->channels().at(0).id);
  EXPECT_NE(second.rt->channels().at(0).id, first.rt->channels().at(1).id);
  EXPECT_EQ(second.rt->channel(first.rt->channels().at(1).id), nullptr);  // users is gone
  EXPECT_EQ(names(second.route(1, "X")), (Names{{"d", 0}}));
}

TEST_F(RouteTableTest, TargetsCarryTheirRoutesPolicyByValue) {
  config::Channel ch = channel("orders", {route({"CREATED"}, {"a"})});
  ch.routes[0].retry.max_attempts = 7;
  ch.routes[0].idempotency_ttl_ms = 5000;
  Routed r = make({ch});
  ch.routes[0].retry.max_attempts = 1;  // the config it was built from changes (or goes): the table does not
  const Targets& t = r.route(0, "CREATED");
  ASSERT_EQ(t.size(), 1U);
  EXPECT_EQ(t[0].retry.max_attempts, 7U);
  EXPECT_EQ(t[0].idempotency_ttl_ms, 5000U);
}

TEST_F(RouteTableTest, TypeWithoutAMatchingRouteRoutesNowhere) {
  Routed r = make({channel("orders", {route({"CREATED"}, {"a"})}), channel("empty", {})});
  EXPECT_TRUE(r.route(0, "DELETED").empty());
  EXPECT_TRUE(r.route(1, "CREATED").empty());
}

TEST_F(RouteTableTest, TargetsPointAtTheConfiguredInstances) {
  Routed r = make({channel("orders", {route({"CREATED"}, {"d", "a"})})});
  const Targets& t = r.route(0, "CREATED");
  ASSERT_EQ(t.size(), 2U);
  EXPECT_EQ(t[0].plugin, registry_.find("d"));
  EXPECT_EQ(t[1].plugin, registry_.find("a"));
}

// Counting by event type: a series per (plugin, routed type), "*" for what a
// route without an event list takes; the same pair on two channels is one
// series; they go with the runtime.
TEST_F(RouteTableTest, TargetsCarryTheirPluginAndTypesSeries) {
  ops::Registry stats;
  config::Config cfg;
  cfg.channels = {channel("orders", {route({"CREATED"}, {"a", "b"}), route({}, {"c"})}),
                  channel("audit", {route({"CREATED"}, {"a"})})};
  auto rt = runtime::Runtime::build(
      cfg, [this](const std::string& n) { return registry_.find(n); }, ids_, 1, &stats);
  const Targets& created = rt->channels().at(0).routes.route("CREATED");
  ASSERT_EQ(created.size(), 3U);  // a, b, and c's wildcard route
  for (const auto& t : created) {
    ASSERT_NE(t.series, nullptr);
  }
  EXPECT_NE(created[0].series, created[1].series);
  EXPECT_EQ(rt->channels().at(1).routes.route("CREATED").at(0).series, created[0].series);
  created[2].series->calls.inc();  // c, for CREATED: counted as CREATED
  const Targets& other = rt->channels().at(0).routes.route("SHIPPED");
  ASSERT_EQ(other.size(), 1U);
  other[0].series->calls.inc(2);
  other[0].series->reject.inc();
  EXPECT_EQ(test::statValue(stats, "evhost_handler_calls_by_type_total", {{"event_type", "CREATED"}, {"plugin", "c"}}),
            1);
  EXPECT_EQ(test::statValue(stats, "evhost_handler_calls_by_type_total", {{"event_type", "*"}, {"plugin", "c"}}), 2);
  EXPECT_EQ(test::statValue(stats, "evhost_handler_outcomes_by_type_total",
                            {{"event_type", "*"}, {"outcome", "reject"}, {"plugin", "c"}}),
            1);
  rt.reset();
  EXPECT_TRUE(stats.samples().empty());
}

}  // namespace
}  // namespace evh::route
