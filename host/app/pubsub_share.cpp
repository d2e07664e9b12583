#include "app/pubsub_share.h"

#include "config/sha256.h"

#include <hiredis/hiredis.h>

#include <string>
#include <utility>
#include <vector>

namespace evh::app {
namespace {

// KEYS[1] the shared stream, KEYS[2] the message's seen-mark; ARGV[1] the
// message, ARGV[2] the window in seconds, ARGV[3] MAXLEN ("0": none).
// Returns 1 when added, 0 when the mark was there (a duplicate).
constexpr const char* kForward = R"(if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 0 end
if ARGV[3] == '0' then
  redis.call('XADD', KEYS[1], '*', 'event', ARGV[1])
else
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1])
end
return 1)";

// The seen-mark's key. Under a cluster the script's two keys must share a
// slot: the mark takes the stream's key as its hash tag -- or the stream's
// own hash tag, which "<stream>:seen:..." then starts with anyway. (A key
// with a '}' but no tag cannot be a tag's content: its forwards fail with
// CROSSSLOT, dead-lettered as share_failed; docs/config.md says so.)
std::string seenKey(const std::string& stream, bool cluster, const std::string& sha) {
  const size_t open = stream.find('{');
  const size_t close = open == std::string::npos ? std::string::npos : stream.find('}', open + 1);
  const bool tagged = close != std::string::npos && close > open + 1;
  if (!cluster || tagged || stream.find('}') != std::string::npos) {
    return stream + ":seen:" + sha;
  }
  return "{" + stream + "}:seen:" + sha;
}

}  // namespace

PubsubShare::PubsubShare(redis::CommandClient& commands, ingest::Pipeline& pipeline, ops::Registry& stats,
                         size_t max_waiting)
    : commands_(commands),
      pipeline_(pipeline),
      stats_(stats),
      max_waiting_(max_waiting),
      alive_(std::make_shared<PubsubShare*>(this)) {}

PubsubShare::~PubsubShare() { *alive_ = nullptr; }

PubsubShare::Series& PubsubShare::seriesOf(const runtime::Channel& ch) {
  auto it = series_.find(ch.name);
  if (it == series_.end()) {
    const char* help =
        "messages of a shared Pub/Sub channel this instance forwarded, by outcome: added to the "
        "shared stream, duplicate (another instance added it first), failed (dead-lettered)";
    auto outcome = [&](const char* o) {
      return stats_.counter("evhost_pubsub_shared_total", help, {{"channel", ch.name}, {"outcome", o}});
    };
    it = series_
             .emplace(ch.name,
                      std::make_unique<Series>(Series{outcome("added"), outcome("duplicate"), outcome("failed")}))
             .first;
  }
  return *it->second;
}

void PubsubShare::forward(const runtime::Channel& ch, std::string_view redis_channel, std::string_view payload) {
  Series& series = seriesOf(ch);
  if (waiting_ >= max_waiting_) {
    series.failed.inc();
    failed(ch.id, std::string(redis_channel), std::string(payload),
           std::to_string(waiting_) + " forwards wait for Redis already (limits.max_in_flight)");
    return;
  }
  std::vector<std::string> argv{"EVAL",
                                kForward,
                                "2",
                                ch.key,
                                seenKey(ch.key, commands_.cluster() != nullptr, sha256Hex(payload)),
                                std::string(payload),
                                std::to_string(ch.share_window_s),
                                std::to_string(ch.share_maxlen)};
  Series* s = &series;
  const bool sent = commands_.send(argv, [alive = alive_, s, id = ch.id, channel = std::string(redis_channel),
                                          message = argv[5]](evh_status status, const redisReply* reply) {
    PubsubShare* self = *alive;
    if (self == nullptr) {
      return;  // evhost is gone (the stop cancelled the call after the share went)
    }
    --self->waiting_;
    if (status == EVH_OK && reply != nullptr && reply->type == REDIS_REPLY_INTEGER) {
      (reply->integer == 1 ? s->added : s->duplicate).inc();
      return;
    }
    s->failed.inc();
    std::string why = status == EVH_ERR_CANCELLED ? "evhost stopped before Redis answered"
                      : status != EVH_OK          ? "the command connection was lost before Redis answered"
                      : reply != nullptr && reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                                                             : "an unexpected reply";
    self->failed(id, channel, message, "the forward into the shared stream failed: " + why);
  });
  if (!sent) {
    series.failed.inc();
    failed(ch.id, std::string(redis_channel), std::string(payload),
           "the forward into the shared stream failed: the command connection is down");
    return;
  }
  ++waiting_;
}

void PubsubShare::failed(runtime::ChannelId id, const std::string& redis_channel, const std::string& payload,
                         const std::string& why) {
  pipeline_.shareFailed(id, redis_channel, payload, why);  // logged there (throttled), counted, dead-lettered
}

}  // namespace evh::app
