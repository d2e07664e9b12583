// The Pub/Sub check: PING, PUBLISH a token, wait for it to come back.
#include "app/pubsub_check.h"

#include "common/clock.h"

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <stdexcept>

namespace evh::app {
namespace {

// The text of an error reply, or what stopped the command.
std::string failure(evh_status status, const redisReply* reply) {
  if (status == EVH_ERR_UNAVAILABLE) {
    return "the command connection dropped before the reply";
  }
  if (status == EVH_ERR_CANCELLED) {
    return "evhost is stopping";
  }
  if (status != EVH_OK || reply == nullptr) {
    return "no reply";
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return std::string(reply->str, reply->len);
  }
  return "unexpected reply type " + std::to_string(reply->type);
}

}  // namespace

PubsubCheck::PubsubCheck(uv_loop_t* loop, redis::CommandClient& commands, std::string channel, bool round_trip,
                         SubscriberState subscriber_state, Options options)
    : loop_(loop),
      commands_(commands),
      channel_(std::move(channel)),
      round_trip_(round_trip),
      subscriber_state_(std::move(subscriber_state)),
      options_(options) {
  timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  if (!timer_) {
    throw std::runtime_error("pub/sub check: cannot make its timer");
  }
  timer_->data = this;
}

PubsubCheck::~PubsubCheck() {
  *alive_ = false;
  // Requests still waiting are the ops listener's, stopped before this.
  waiting_.clear();
}

void PubsubCheck::check(Done done) {
  if (have_answer_ && !running_ && uv_now(loop_) - ended_at_ <= options_.cache_ms) {
    done(answer_);
    return;
  }
  waiting_.push_back(std::move(done));
  if (!running_) {
    start();
  }
}

double PubsubCheck::sinceStartMs() const { return static_cast<double>(uv_hrtime() - started_ns_) / 1e6; }

void PubsubCheck::start() {
  running_ = true;
  ping_ = publish_ = back_ = Step{};
  receivers_ = -1;
  token_ = "evh-health " + std::to_string(::getpid()) + " " + std::to_string(++seq_);
  started_ns_ = uv_hrtime();
  checked_ms_ = wallMs();
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<PubsubCheck*>(t->data)->finish(); }, options_.timeout_ms, 0);
  if (!round_trip_) {
    back_ = Step{true, true, 0, std::string()};
  }
  // A reply counts for this check only: not after this object is gone, and
  // not for a later check when this one timed out first.
  auto guard = [this, alive = std::weak_ptr<bool>(alive_),
                seq = seq_](void (PubsubCheck::*step)(evh_status, const redisReply*)) {
    return [this, alive, seq, step](evh_status status, const redisReply* reply) {
      if (const auto a = alive.lock(); a && *a && seq == seq_) {
        (this->*step)(status, reply);
      }
    };
  };
  if (!commands_.send({"PING"}, guard(&PubsubCheck::onPing))) {
    ping_ = Step{true, false, 0, "the command connection (" + commands_.where() + ") is down"};
    publish_ = Step{true, false, 0, "not sent: the command connection is down"};
    finish();
    return;
  }
  if (!commands_.send({"PUBLISH", channel_, token_}, guard(&PubsubCheck::onPublish))) {
    publish_ = Step{true, false, 0, "the command connection (" + commands_.where() + ") is down"};
    settleIfDone();
  }
}

void PubsubCheck::onPing(evh_status status, const redisReply* reply) {
  if (!running_ || ping_.done) {
    return;  // a reply to a check that already timed out
  }
  const bool ok = status == EVH_OK && reply != nullptr && reply->type == REDIS_REPLY_STATUS;
  ping_ = Step{true, ok, sinceStartMs(), ok ? std::string() : failure(status, reply)};
  settleIfDone();
}

void PubsubCheck::onPublish(evh_status status, const redisReply* reply) {
  if (!running_ || publish_.done) {
    return;
  }
  const bool ok = status == EVH_OK && reply != nullptr && reply->type == REDIS_REPLY_INTEGER;
  publish_ = Step{true, ok, sinceStartMs(), ok ? std::string() : failure(status, reply)};
  if (ok) {
    receivers_ = reply->integer;
  }
  if (!ok && !back_.done) {
    std::string why = "nothing to bring back: the publish failed";
    if (std::string state = subscriber_state_ ? subscriber_state_() : std::string(); !state.empty()) {
      why += "; " + state;
    }
    back_ = Step{true, false, 0, std::move(why)};
  }
  settleIfDone();
}

void PubsubCheck::onMessage(std::string_view payload) {
  if (!running_ || back_.done || payload != token_) {
    return;  // a token of an earlier check, late
  }
  back_ = Step{true, true, sinceStartMs(), std::string()};
  settleIfDone();
}

void PubsubCheck::settleIfDone() {
  if (running_ && ping_.done && publish_.done && back_.done) {
    finish();
  }
}

void PubsubCheck::finish() {
  if (!running_) {
    return;
  }
  uv_timer_stop(timer_.get());
  const std::string late = "no answer within " + std::to_string(options_.timeout_ms) + " ms";
  for (Step* s : {&ping_, &publish_}) {
    if (!s->done) {
      *s = Step{true, false, 0, late};
    }
  }
  if (!back_.done) {
    std::string why = "the published token did not come back through the subscriber within " +
                      std::to_string(options_.timeout_ms) + " ms";
    if (std::string state = subscriber_state_ ? subscriber_state_() : std::string(); !state.empty()) {
      why += ": " + state;
    }
    back_ = Step{true, false, 0, std::move(why)};
  }
  running_ = false;
  ended_at_ = uv_now(loop_);
  answer_ = ops::PubsubHealth{ping_.ok && publish_.ok && back_.ok, json()};
  have_answer_ = true;
  std::vector<Done> waiting;
  waiting.swap(waiting_);
  for (auto& done : waiting) {
    done(answer_);
  }
}

std::string PubsubCheck::json() const {
  using Json = nlohmann::json;
  auto step = [](const Step& s, const char* ms_name) {
    Json j{{"ok", s.ok}};
    if (s.ok) {
      j[ms_name] = s.ms;
    } else {
      j["error"] = s.error;
    }
    return j;
  };
  Json out;
  out["status"] = ping_.ok && publish_.ok && back_.ok ? "healthy" : "unhealthy";
  out["checked_at"] = isoTime(checked_ms_);
  out["redis"] = commands_.where();
  out["channel"] = channel_;
  out["ping"] = step(ping_, "ms");
  Json publish = step(publish_, "ms");
  if (publish_.ok) {
    publish["receivers"] = receivers_;
  }
  out["publish"] = std::move(publish);
  if (round_trip_) {
    out["subscriber"] = step(back_, "round_trip_ms");
  } else {
    out["subscriber"] = Json{{"ok", true}, {"skipped", "no Pub/Sub channel is configured"}};
  }
  out["cache_seconds"] = static_cast<double>(options_.cache_ms) / 1000.0;
  // Redis's error texts: never let odd bytes break it.
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace evh::app
