// Route lookup: a binary search over a channel's event types.
#include "route/router.h"

#include <algorithm>

namespace evh::route {

const Targets& Router::route(size_t channel_index, std::string_view event_type) const {
  if (channel_index >= tables_.size()) {
    return empty_;
  }
  const Table& t = tables_[channel_index];
  auto it = std::lower_bound(t.by_type.begin(), t.by_type.end(), event_type,
                             [](const auto& entry, std::string_view type) { return entry.first < type; });
  if (it != t.by_type.end() && it->first == event_type) {
    return it->second;
  }
  return t.wildcard;
}

}  // namespace evh::route
