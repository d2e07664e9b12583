// Logical channel + eventType -> the ordered plugin instances that handle it.
#pragma once

#include "config/config.h"
#include "plugin/instance.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace evh::route {

// One plugin subscribed to an event by a route.
struct Target {
  plugin::Instance* plugin;
  size_t route;                      // index of the route in its channel
  const config::RetryPolicy* retry;  // the route's policy (owned by the config)
  uint64_t idempotency_ttl_ms = 0;   // the route's; 0: off
};
using Targets = std::vector<Target>;

class Router {
 public:
  // find(name) maps a plugin name of the config to its instance; every
  // name must resolve (the config loader has checked they are defined).
  template <class Find>
  Router(const std::vector<config::Channel>& channels, Find find) {
    for (const auto& ch : channels) {
      build(ch, [&](const std::string& n) -> plugin::Instance* { return find(n); });
    }
  }

  // The targets for an event on the channel at `channel_index` (its position
  // in the config), in call order; empty when nothing is routed. A plugin
  // named by several matching routes is called once, at its first place.
  const Targets& route(size_t channel_index, std::string_view event_type) const;

  size_t channels() const noexcept { return tables_.size(); }

 private:
  struct Table {
    std::vector<std::pair<std::string, Targets>> by_type;  // sorted by type
    Targets wildcard;                                      // types no route names
  };
  template <class Find>
  void build(const config::Channel& ch, Find find);

  std::vector<Table> tables_;
  Targets empty_;
};

template <class Find>
void Router::build(const config::Channel& ch, Find find) {
  Table t;
  auto add = [&](Targets& out, const config::Route& r, size_t ri) {
    for (const auto& name : r.plugins) {
      plugin::Instance* in = find(name);
      bool seen = false;
      for (const auto& x : out) {
        seen = seen || x.plugin == in;
      }
      if (in != nullptr && !seen) {
        out.push_back(Target{in, ri, &r.retry, r.idempotency_ttl_ms});
      }
    }
  };
  std::vector<std::string> types;
  for (const auto& r : ch.routes) {
    types.insert(types.end(), r.events.begin(), r.events.end());
  }
  for (const auto& type : types) {
    Targets targets;
    for (size_t ri = 0; ri < ch.routes.size(); ++ri) {
      const auto& r = ch.routes[ri];
      bool match = r.events.empty();
      for (const auto& e : r.events) {
        match = match || e == type;
      }
      if (match) {
        add(targets, r, ri);
      }
    }
    t.by_type.emplace_back(type, std::move(targets));
  }
  for (size_t ri = 0; ri < ch.routes.size(); ++ri) {
    if (ch.routes[ri].events.empty()) {
      add(t.wildcard, ch.routes[ri], ri);
    }
  }
  std::sort(t.by_type.begin(), t.by_type.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  t.by_type.erase(
      std::unique(t.by_type.begin(), t.by_type.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
      t.by_type.end());
  tables_.push_back(std::move(t));
}

}  // namespace evh::route
