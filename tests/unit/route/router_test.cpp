// The router: exact and "*" routes, route order, one call per plugin, unknown channels and types.
#include "route/router.h"

#include "plugin/registry.h"
#include "support/fake_host.h"

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

class RouterTest : public ::testing::Test {
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

  Router make(const std::vector<config::Channel>& channels) {
    return Router(channels, [this](const std::string& n) { return registry_.find(n); });
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
};

TEST_F(RouterTest, ExactTypeRoutesCallPluginsInRouteOrder) {
  Router r = make({channel(
      "orders", {route({"CREATED"}, {"b", "a"}), route({"UPDATED"}, {"d"}), route({"CREATED", "DELETED"}, {"c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"b", 0}, {"a", 0}, {"c", 2}}));
  EXPECT_EQ(names(r.route(0, "UPDATED")), (Names{{"d", 1}}));
  EXPECT_EQ(names(r.route(0, "DELETED")), (Names{{"c", 2}}));
}

TEST_F(RouterTest, ManyTypesAreEachFound) {
  // Types listed out of alphabetical order, one plugin each.
  Router r =
      make({channel("x", {route({"T3"}, {"c"}), route({"T1"}, {"a"}), route({"T4"}, {"d"}), route({"T2"}, {"b"})})});
  EXPECT_EQ(names(r.route(0, "T1")), (Names{{"a", 1}}));
  EXPECT_EQ(names(r.route(0, "T2")), (Names{{"b", 3}}));
  EXPECT_EQ(names(r.route(0, "T3")), (Names{{"c", 0}}));
  EXPECT_EQ(names(r.route(0, "T4")), (Names{{"d", 2}}));
  EXPECT_TRUE(r.route(0, "T0").empty());
  EXPECT_TRUE(r.route(0, "T5").empty());
  EXPECT_TRUE(r.route(0, "t1").empty());  // types are case-sensitive
}

TEST_F(RouterTest, WildcardRouteTakesTypesNoRouteNames) {
  Router r = make({channel("orders", {route({"CREATED"}, {"a"}), route({}, {"b", "c"})})});
  EXPECT_EQ(names(r.route(0, "SHIPPED")), (Names{{"b", 1}, {"c", 1}}));
  EXPECT_EQ(names(r.route(0, "")), (Names{{"b", 1}, {"c", 1}}));
}

TEST_F(RouterTest, NamedTypeAlsoGetsWildcardRoutesInRouteOrder) {
  Router r = make({channel("orders", {route({}, {"a"}), route({"CREATED"}, {"b"}), route({}, {"c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 1}, {"c", 2}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"a", 0}, {"c", 2}}));
}

TEST_F(RouterTest, PluginNamedByTwoMatchingRoutesIsCalledOnceAtItsFirstPlace) {
  Router r = make({channel(
      "orders", {route({"CREATED"}, {"a", "b"}), route({}, {"b", "c", "a"}), route({"CREATED"}, {"c", "d"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 0}, {"c", 1}, {"d", 2}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"b", 1}, {"c", 1}, {"a", 1}}));
}

TEST_F(RouterTest, PluginNamedTwiceInOneRouteIsCalledOnce) {
  Router r = make({channel("orders", {route({"CREATED", "CREATED"}, {"a", "b", "a"}), route({}, {"c", "c"})})});
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}, {"b", 0}, {"c", 1}}));
  EXPECT_EQ(names(r.route(0, "OTHER")), (Names{{"c", 1}}));
}

TEST_F(RouterTest, ChannelsRouteIndependently) {
  Router r = make({channel("orders", {route({"CREATED"}, {"a"})}), channel("users", {route({"CREATED"}, {"b"})}),
                   channel("audit", {route({}, {"c"})})});
  EXPECT_EQ(r.channels(), 3U);
  EXPECT_EQ(names(r.route(0, "CREATED")), (Names{{"a", 0}}));
  EXPECT_EQ(names(r.route(1, "CREATED")), (Names{{"b", 0}}));
  EXPECT_EQ(names(r.route(2, "CREATED")), (Names{{"c", 0}}));
}

TEST_F(RouterTest, UnknownChannelIndexRoutesNowhere) {
  Router r = make({channel("orders", {route({}, {"a"})})});
  EXPECT_TRUE(r.route(1, "CREATED").empty());
  EXPECT_TRUE(r.route(static_cast<size_t>(-1), "CREATED").empty());
}

TEST_F(RouterTest, TypeWithoutAMatchingRouteRoutesNowhere) {
  Router r = make({channel("orders", {route({"CREATED"}, {"a"})}), channel("empty", {})});
  EXPECT_TRUE(r.route(0, "DELETED").empty());
  EXPECT_TRUE(r.route(1, "CREATED").empty());
}

TEST_F(RouterTest, TargetsPointAtTheConfiguredInstances) {
  Router r = make({channel("orders", {route({"CREATED"}, {"d", "a"})})});
  const Targets& t = r.route(0, "CREATED");
  ASSERT_EQ(t.size(), 2U);
  EXPECT_EQ(t[0].plugin, registry_.find("d"));
  EXPECT_EQ(t[1].plugin, registry_.find("a"));
}

}  // namespace
}  // namespace evh::route
