// Idempotency marks: the question before a call, the mark after OK.
#include "dispatch/idempotency.h"

#include <spdlog/spdlog.h>

namespace evh::dispatch {

std::string Idempotency::key(const std::string& plugin, std::string_view event_id) const {
  std::string k;
  k.reserve(prefix_.size() + plugin.size() + 1 + event_id.size());
  k.append(prefix_).append(plugin).append(1, ':').append(event_id);
  return k;
}

bool Idempotency::check(const std::string& key, std::function<void(bool seen)> seen) {
  return store_->check(key, [seen = std::move(seen)](std::optional<bool> marked) { seen(marked.value_or(false)); });
}

void Idempotency::mark(const std::string& key, uint64_t ttl_ms, spdlog::logger& log, std::string_view event_id,
                       std::function<void()> then) {
  const bool sent = store_->mark(key, ttl_ms, [&log, id = std::string(event_id), then](bool ok) {
    if (!ok) {
      log.warn("could not mark eventId={} as handled: a redelivery may apply it again", id);
    }
    then();
  });
  if (!sent) {
    log.warn("could not mark eventId={} as handled (Redis unavailable): a redelivery may apply it again", event_id);
    then();
  }
}

}  // namespace evh::dispatch
