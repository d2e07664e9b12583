#include "plugin/publish_stats.h"

#include <uv.h>

#include <string_view>

namespace evh::plugin {
namespace {

// Microseconds, exported in seconds: a PUBLISH on loopback takes tens of
// microseconds; a slow or distant Redis, milliseconds to seconds.
const ops::Buckets kPublishBuckets{{50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000}, 1e6};

struct Pending {
  const PublishStats::Series* series;
  evh_reply_cb cb;
  void* user_data;
  spdlog::logger* log;
  uint64_t start_ns;
};

void onReply(void* ud, evh_status status, const evh_reply* reply) {
  auto* p = static_cast<Pending*>(ud);
  const bool ok = status == EVH_OK && reply != nullptr && reply->type != EVH_REPLY_ERROR;
  p->series->published.inc();
  if (!ok) {
    p->series->failed.inc();
  }
  p->series->seconds.observe(static_cast<int64_t>((uv_hrtime() - p->start_ns) / 1000));
  const evh_reply_cb cb = p->cb;
  void* user_data = p->user_data;
  spdlog::logger* log = p->log;
  delete p;
  if (cb != nullptr) {
    cb(user_data, status, reply);
  } else if (status != EVH_OK) {
    log->warn("redis PUBLISH: no reply ({})",
              status == EVH_ERR_CANCELLED ? "cancelled at shutdown" : "connection lost");
  } else if (!ok) {
    log->warn("redis PUBLISH: {}", std::string_view(reply->str.ptr, reply->str.len));
  }
}

}  // namespace

const PublishStats::Series& PublishStats::of(std::string_view channel) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = by_channel_.find(channel); it != by_channel_.end()) {
    return *it->second;
  }
  const std::string name = by_channel_.size() < kMaxChannels ? std::string(channel) : std::string("other");
  if (auto it = by_channel_.find(name); it != by_channel_.end()) {
    return *it->second;
  }
  const ops::Labels labels{{"channel", name}};
  auto series = std::make_unique<Series>(Series{
      scope_.sharedCounter("evhost_publish_total", "messages a plugin published through the host", labels),
      scope_.sharedCounter("evhost_publish_failures_total",
                           "of those, the ones not sent, unanswered (connection lost) or refused by Redis", labels),
      scope_.sharedHistogram("evhost_publish_duration_seconds", "from a plugin's publish to Redis's answer",
                             kPublishBuckets, labels)});
  const Series& out = *series;
  by_channel_.emplace(name, std::move(series));
  return out;
}

PublishStats::Wrapped PublishStats::wrap(const Series& series, evh_reply_cb cb, void* user_data, spdlog::logger& log) {
  return Wrapped{&onReply, new Pending{&series, cb, user_data, &log, uv_hrtime()}};
}

void PublishStats::abandon(void* wrapped_user_data) noexcept {
  auto* p = static_cast<Pending*>(wrapped_user_data);
  p->series->published.inc();
  p->series->failed.inc();
  delete p;
}

}  // namespace evh::plugin
