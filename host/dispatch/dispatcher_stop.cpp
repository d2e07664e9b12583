// Stopping the dispatcher: draining at a graceful stop, abandoning what is
// unfinished at the shutdown deadline, and the same for an exit while the
// loop thread is held in a plugin call.
#include "dispatch/dispatcher.h"

namespace evh::dispatch {

void Dispatcher::drain(std::function<void()> on_idle) {
  draining_ = true;
  on_idle_ = std::move(on_idle);
  // Waiting for a retry delay or a breaker would outlast any deadline: hand
  // those events to the dead-letter queue now, with what they failed with.
  for (Delivery* d : live_.waitingOnTimers()) {
    if (d->wait == Delivery::Wait::Breaker) {
      d->ps->gate->remove(d);
    } else {
      d->ps->counters.retry_waiting.add(-1);
    }
    d->retry_timer.close();
    d->wait = Delivery::Wait::None;
    deadLetterDelivery(d, "shutdown");
  }
  // Nothing waits for a breaker any more: its timer must not keep the loop
  // (and so the process) alive until the breaker would have half-opened.
  for (auto& [p, ps] : plugins_) {
    if (ps.gate) {
      ps.gate->stopTimer();
    }
  }
  checkIdle();
}

void Dispatcher::checkIdle() {
  if (!draining_ || !on_idle_ || in_flight_ != 0 || sink_.pending() != 0) {
    return;
  }
  // A handler a timeout gave up on may still run on a worker: idle means
  // none does (the shutdown deadline bounds the wait).
  for (const auto& [p, ps] : plugins_) {
    if (ps.lane.running() > 0) {
      return;
    }
  }
  auto fn = std::move(on_idle_);
  on_idle_ = nullptr;
  fn();
}

std::vector<std::string> Dispatcher::abandon() {
  abandoned_ = true;
  on_idle_ = nullptr;
  sink_.abandon();
  const auto per_plugin = live_.abandonCalls();  // a later complete() answers EVH_ERR_STATE
  // Completions and worker results arriving from now on are dropped.
  alive_->store(false);
  std::vector<std::string> out;
  for (auto& [ps, n] : per_plugin) {
    ps->counters.abandoned.inc(static_cast<int64_t>(n));
    const size_t queued = ps->lane.queued();
    out.push_back(ps->plugin->name() + ": " + std::to_string(n) + " call(s) unfinished (" +
                  std::to_string(ps->lane.running() - queued) + " running on workers, " + std::to_string(queued) +
                  " never started)");
  }
  // Nothing unfinished leaves without an entry (the writer is joined by the
  // destructor); stream entries stay pending.
  const Deliveries::Left left =
      live_.writeUnfinished(sink_, "evhost stopped at its shutdown deadline before this finished", true);
  for (auto& [p, ps] : plugins_) {
    ps.lane.clear();  // the attempts stay on the list, freed by the destructor
    if (ps.gate) {
      ps.gate->close();
    }
  }
  if (left.stream_events > 0 || left.stream_letters > 0) {
    out.push_back("streams: " + std::to_string(left.stream_events) + " unfinished event(s) and " +
                  std::to_string(left.stream_letters) +
                  " dead letter(s) not yet stored are left pending, not dead-lettered: delivered again at the next "
                  "start");
  }
  return out;
}

size_t Dispatcher::writeUnfinishedForExit() {
  if (sink_.closed()) {
    return 0;
  }
  // What abandon() writes, read-only: the loop thread is held where it is.
  const char* why = "evhost stopped at its shutdown deadline with its event loop stuck before this finished";
  const size_t n = live_.writeUnfinished(sink_, why, false).written;
  sink_.close();  // writes what is queued (entries made earlier too), joins its thread
  return n;
}

std::vector<const plugin::Instance*> Dispatcher::busyPlugins() const {
  std::vector<const plugin::Instance*> out;
  for (const auto& [p, ps] : plugins_) {
    if (ps.lane.busy()) {
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace evh::dispatch
