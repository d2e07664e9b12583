// The dispatcher's unfinished deliveries and attempts.
#include "dispatch/deliveries.h"

#include "dispatch/attempt.h"
#include "dispatch/dead_letter_sink.h"
#include "dispatch/plugin_state.h"

#include <unordered_set>

namespace evh::dispatch {

void Deliveries::add(Attempt* a) {
  linkInto(attempts_head_, a);
  ++attempts_;
}

void Deliveries::remove(Attempt* a) {
  unlinkFrom(attempts_head_, a);
  --attempts_;
}

std::vector<Delivery*> Deliveries::waitingOnTimers() const {
  std::vector<Delivery*> waiting;
  for (Delivery* d = deliveries_; d != nullptr; d = d->next) {
    if (d->wait == Delivery::Wait::Retry || d->wait == Delivery::Wait::Breaker) {
      waiting.push_back(d);
    }
  }
  return waiting;
}

std::unordered_map<PluginState*, size_t> Deliveries::abandonCalls() {
  std::unordered_map<PluginState*, size_t> per_plugin;
  for (Attempt* a = attempts_head_; a != nullptr; a = a->next) {
    a->abandon(plugin::CallEnd::Abandoned);
    ++per_plugin[a->ps];
  }
  return per_plugin;
}

Deliveries::Left Deliveries::writeUnfinished(DeadLetterSink& sink, const char* why, bool stop_timers) {
  Left left;
  std::unordered_set<const InFlight*> stream_events;
  for (Delivery* d = deliveries_; d != nullptr; d = d->next) {
    if (stop_timers) {
      d->retry_timer.close();
    }
    if (d->fromStream()) {
      if (d->entry) {
        ++left.stream_letters;
      } else {
        stream_events.insert(d->inflight);
      }
      continue;
    }
    if (d->entry) {
      sink.appendNow(d->entry->json);
    } else if (d->wait != Delivery::Wait::DeadLetter) {  // else its entry is on its way already
      const DeadLetterInfo info = DeadLetterInfo::because("abandoned")
                                      .withError("abandoned", why)
                                      .withPlugin(d->ps->plugin->name())
                                      .withAttempts(d->attempt, d->first_ms, d->last_ms);
      sink.appendNow(makeEntry(info, d->inflight->event).json);
    } else {
      continue;
    }
    ++left.written;
  }
  left.stream_events = stream_events.size();
  return left;
}

void Deliveries::freeAll() {
  while (attempts_head_ != nullptr) {
    Attempt* a = attempts_head_;
    remove(a);
    InFlight* f = a->inflight;
    a->abandon(plugin::CallEnd::Abandoned);
    delete a;
    if (f != nullptr) {
      --f->attempts;
      releaseEvent(f);  // finished events kept only for a given-up attempt
    }
  }
  while (deliveries_ != nullptr) {
    Delivery* d = deliveries_;
    remove(d);
    if (d->inflight != nullptr && --d->inflight->remaining == 0) {
      releaseEvent(d->inflight);
    }
    delete d;
  }
}

}  // namespace evh::dispatch
