// Admission: the in-flight limit, stream capacity and dead-letter backpressure.
#include "ingest/admission.h"

#include "common/log.h"

#include <algorithm>

namespace evh::ingest {

Admission::Admission(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, Limits limits, Sources sources,
                     ops::Registry& stats)
    : loop_(loop),
      dispatcher_(dispatcher),
      limits_(limits),
      sources_(std::move(sources)),
      stats_(stats),
      pauses_(stats_.counter("evhost_ingest_pauses_total",
                             "times reading paused because dead-letter entries waiting to be stored passed "
                             "limits.max_dead_letter_bytes")) {
  timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  timer_->data = this;
  // Read on the loop thread at collection, like everything they read.
  stats_.computedGauge("evhost_ingest_paused", "1 while reading is paused for the dead-letter backlog",
                       [this] { return paused_ ? 1.0 : 0.0; });
  stats_.computedGauge("evhost_events_in_flight", "events between decode and their last outcome",
                       [this] { return static_cast<double>(dispatcher_.inFlight()); });
  stats_.computedGauge("evhost_dead_letter_backlog_bytes", "bytes of dead-letter entries made and not yet stored",
                       [this] { return static_cast<double>(dispatcher_.deadLetterBacklogBytes()); });
}

Admission::~Admission() { stats_.clear(); }  // the gauges read this

size_t Admission::streamCapacity(const route::Table& routes) const {
  if (paused_) {
    return 0;
  }
  const auto& plugins = routes.plugins();
  if (!plugins.empty() && std::all_of(plugins.begin(), plugins.end(),
                                      [this](const plugin::Instance* p) { return dispatcher_.breakerOpen(p); })) {
    return 0;
  }
  const size_t in = dispatcher_.inFlight();
  return in >= limits_.max_in_flight ? 0 : limits_.max_in_flight - in;
}

void Admission::checkDeadLetterBacklog() {
  if (paused_) {
    // A subscriber that reconnected meanwhile reads again: hold it back too.
    sources_.hold_pubsub();
    return;
  }
  if (stopped_ || dispatcher_.deadLetterBacklogBytes() <= limits_.max_dead_letter_bytes) {
    return;
  }
  // Shedding a flood costs memory too: each dead letter is kept until it is
  // stored. Past the limit, stop reading -- Pub/Sub (Redis holds the rest; its
  // pubsub output-buffer limit may then cut us off: that is logged as a gap)
  // and streams (their capacity is 0 meanwhile) -- and read again once half
  // of it is stored.
  paused_ = true;
  pauses_.inc();
  sources_.hold_pubsub();
  paused_at_ = uv_now(loop_);
  log::host().warn(
      "{} bytes of dead-letter entries wait to be stored (limits.max_dead_letter_bytes={}): reading paused until "
      "half of them are",
      dispatcher_.deadLetterBacklogBytes(), limits_.max_dead_letter_bytes);
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<Admission*>(t->data)->onTimer(); }, 5, 5);
}

void Admission::onTimer() {
  if (stopped_) {
    uv_timer_stop(timer_.get());
    return;
  }
  if (dispatcher_.deadLetterBacklogBytes() > limits_.max_dead_letter_bytes / 2) {
    return;
  }
  uv_timer_stop(timer_.get());
  paused_ = false;
  sources_.release();
  log::host().info("reading resumed after {} ms (dead-letter backlog {} bytes)", uv_now(loop_) - paused_at_,
                   dispatcher_.deadLetterBacklogBytes());
}

void Admission::stop() {
  stopped_ = true;
  uv_timer_stop(timer_.get());
}

}  // namespace evh::ingest
