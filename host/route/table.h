// One channel's routes: eventType -> the ordered plugin instances that handle it.
#pragma once

#include "config/config.h"
#include "ops/stats.h"
#include "plugin/instance.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evh::route {

// One plugin subscribed to an event by a route. Policies are copies: a
// table does not depend on the Config it was built from living on.
// The series one plugin's calls for one event type are counted in
// (evhost_handler_calls_by_type_total, evhost_handler_outcomes_by_type_total):
// event types as the routes name them -- bounded by the config --, "*" for
// the types a route without an event list takes.
struct TypeSeries {
  ops::Counter calls;
  ops::Counter ok;
  ops::Counter retry;
  ops::Counter reject;
  ops::Counter timeout;
  ops::Counter error;
};

struct Target {
  plugin::Instance* plugin;
  size_t route;                        // index of the route in its channel
  config::RetryPolicy retry;           // the route's policy
  uint64_t idempotency_ttl_ms = 0;     // the route's; 0: off
  const TypeSeries* series = nullptr;  // owned by the runtime; null: not counted by type
};
using Targets = std::vector<Target>;

// Immutable once built. THREAD: built anywhere, read on the loop.
class Table {
 public:
  // find(name) maps a plugin name of the config to its instance; every name
  // must resolve (the config loader has checked they are defined). A name
  // that does not is left out of the table.
  using Find = std::function<plugin::Instance*(const std::string& name)>;
  // The series of (plugin, event type) -- "*" for a route without an event
  // list; may return null. Empty: targets carry none.
  using SeriesFor = std::function<const TypeSeries*(plugin::Instance& plugin, const std::string& event_type)>;

  Table() = default;
  Table(const config::Channel& channel, const Find& find, const SeriesFor& series_for = {});

  // The targets for an event of this type, in call order; empty when
  // nothing is routed. A plugin named by several matching routes is called
  // once, at its first place.
  const Targets& route(std::string_view event_type) const;

  // Every plugin some route of the channel names, once each, in first-use order.
  const std::vector<plugin::Instance*>& plugins() const noexcept { return plugins_; }

 private:
  std::vector<std::pair<std::string, Targets>> by_type_;  // sorted by type
  Targets wildcard_;                                      // types no route names
  std::vector<plugin::Instance*> plugins_;
};

}  // namespace evh::route
