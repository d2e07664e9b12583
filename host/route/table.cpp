// Building a channel's route table, and the lookup: a binary search over its event types.
#include "route/table.h"

#include <algorithm>

namespace evh::route {
namespace {

bool contains(const Targets& targets, const plugin::Instance* in) {
  return std::any_of(targets.begin(), targets.end(), [in](const Target& t) { return t.plugin == in; });
}

void add(Targets& out, const config::Route& r, size_t ri, const Table::Find& find, const std::string& type,
         const Table::SeriesFor& series_for) {
  for (const auto& name : r.plugins) {
    plugin::Instance* in = find(name);
    if (in != nullptr && !contains(out, in)) {
      out.push_back(Target{in, ri, r.retry, r.idempotency_ttl_ms, series_for ? series_for(*in, type) : nullptr});
    }
  }
}

}  // namespace

Table::Table(const config::Channel& ch, const Find& find, const SeriesFor& series_for) {
  std::vector<std::string> types;
  for (const auto& r : ch.routes) {
    types.insert(types.end(), r.events.begin(), r.events.end());
  }
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  for (const auto& type : types) {
    Targets targets;
    for (size_t ri = 0; ri < ch.routes.size(); ++ri) {
      const auto& r = ch.routes[ri];
      if (r.events.empty() || std::find(r.events.begin(), r.events.end(), type) != r.events.end()) {
        // A type a wildcard route also takes is counted as that type.
        add(targets, r, ri, find, type, series_for);
      }
    }
    by_type_.emplace_back(type, std::move(targets));
  }
  for (size_t ri = 0; ri < ch.routes.size(); ++ri) {
    if (ch.routes[ri].events.empty()) {
      add(wildcard_, ch.routes[ri], ri, find, "*", series_for);
    }
  }
  for (const auto& r : ch.routes) {
    for (const auto& name : r.plugins) {
      plugin::Instance* in = find(name);
      if (in != nullptr && std::find(plugins_.begin(), plugins_.end(), in) == plugins_.end()) {
        plugins_.push_back(in);
      }
    }
  }
}

const Targets& Table::route(std::string_view event_type) const {
  auto it = std::lower_bound(by_type_.begin(), by_type_.end(), event_type,
                             [](const auto& entry, std::string_view type) { return entry.first < type; });
  if (it != by_type_.end() && it->first == event_type) {
    return it->second;
  }
  return wildcard_;
}

}  // namespace evh::route
