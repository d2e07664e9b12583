// The breaker gate: waiting deliveries, the breaker's timer, its log lines.
#include "dispatch/breaker_gate.h"

#include "dispatch/delivery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace evh::dispatch {

BreakerGate::BreakerGate(uv_loop_t* loop, const config::BreakerPolicy& policy, spdlog::logger& log,
                         PluginCounters& counters, GateEvents& events, const std::function<void()>& on_change)
    : loop_(loop), breaker_(policy), log_(log), counters_(counters), events_(events), on_change_(on_change) {
  timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  timer_->data = this;
}

bool BreakerGate::pass(Delivery* d) {
  // Behind others already waiting, or refused by the breaker: wait.
  if (!waiting_.empty() || !breaker_.tryAcquire(uv_now(loop_))) {
    note();
    return false;
  }
  d->trial = breaker_.halfOpen();
  note();
  return true;
}

BreakerGate::Queued BreakerGate::wait(Delivery* d, bool patient, std::string& why) {
  const config::BreakerPolicy& p = breaker_.policy();
  if (waiting_.size() >= p.max_waiting && !patient) {
    why = "circuit breaker open and max_waiting=" + std::to_string(p.max_waiting) + " events already wait";
    return Queued::Full;
  }
  d->wait = Delivery::Wait::Breaker;
  waiting_.push_back(Waiter{d, uv_now(loop_), patient});
  counters_.breaker_waiting.set(static_cast<int64_t>(waiting_.size()));
  arm();
  return Queued::Yes;
}

void BreakerGate::success(bool trial) {
  breaker_.onSuccess(trial);
  note();
}

void BreakerGate::failure(bool trial) {
  breaker_.onFailure(trial, uv_now(loop_));
  note();
}

void BreakerGate::note() {
  if (!breaker_.changed) {
    return;
  }
  breaker_.changed = false;
  const char* from = CircuitBreaker::name(counters_.breaker_state);
  counters_.breakerIs(breaker_.state());
  const config::BreakerPolicy& p = breaker_.policy();
  switch (breaker_.state()) {
    case CircuitBreaker::State::Open:
      log_.warn("circuit breaker {} -> OPEN: {} consecutive failure(s); calls wait {} ms", from, p.threshold,
                p.open_ms);
      break;
    case CircuitBreaker::State::HalfOpen:
      log_.info("circuit breaker {} -> HALF_OPEN: up to {} trial call(s)", from, p.half_open_max_calls);
      break;
    case CircuitBreaker::State::Closed:
      log_.info("circuit breaker {} -> CLOSED", from);
      break;
  }
  arm();
  if (on_change_) {
    on_change_();
  }
}

void BreakerGate::arm() {
  if (timer_off_ || closed_) {
    uv_timer_stop(timer_.get());
    return;
  }
  const uint64_t now = uv_now(loop_);
  uint64_t due = UINT64_MAX;
  if (breaker_.state() == CircuitBreaker::State::Open) {
    due = breaker_.reopenAtMs();
  }
  for (const Waiter& w : waiting_) {
    if (!w.patient) {
      due = std::min(due, w.since + breaker_.policy().max_wait_ms);
      break;  // FIFO: the first impatient one expires first
    }
  }
  if (due == UINT64_MAX) {
    uv_timer_stop(timer_.get());
    return;
  }
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<BreakerGate*>(t->data)->onTimer(); }, due > now ? due - now : 0, 0);
}

void BreakerGate::onTimer() {
  const uint64_t now = uv_now(loop_);
  const uint64_t max_wait_ms = breaker_.policy().max_wait_ms;
  breaker_.refresh(now);  // half-open on time even if no event comes to ask
  note();
  std::vector<Delivery*> expired;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (!it->patient && now - it->since >= max_wait_ms) {
      expired.push_back(it->d);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  counters_.breaker_waiting.set(static_cast<int64_t>(waiting_.size()));
  for (Delivery* d : expired) {
    d->wait = Delivery::Wait::None;
    events_.expired(d, "circuit breaker open for longer than max_wait_ms=" + std::to_string(max_wait_ms));
  }
  release();
  arm();
}

void BreakerGate::release() {
  // An inline call finishing at once comes back here through its outcome:
  // the outer call keeps releasing, so the stack never grows with the queue.
  if (releasing_ || closed_) {
    return;
  }
  releasing_ = true;
  while (!waiting_.empty() && breaker_.tryAcquire(uv_now(loop_))) {
    Delivery* d = waiting_.front().d;
    waiting_.pop_front();
    counters_.breaker_waiting.set(static_cast<int64_t>(waiting_.size()));
    d->wait = Delivery::Wait::None;
    d->trial = breaker_.halfOpen();
    note();
    events_.admitted(d);
  }
  releasing_ = false;
  note();
  arm();
}

bool BreakerGate::remove(Delivery* d) {
  auto it = std::find_if(waiting_.begin(), waiting_.end(), [d](const Waiter& w) { return w.d == d; });
  if (it == waiting_.end()) {
    return false;
  }
  waiting_.erase(it);
  counters_.breaker_waiting.set(static_cast<int64_t>(waiting_.size()));
  return true;
}

void BreakerGate::stopTimer() {
  timer_off_ = true;
  uv_timer_stop(timer_.get());
}

void BreakerGate::close() {
  closed_ = true;
  waiting_.clear();
  counters_.breaker_waiting.set(0);
  uv_timer_stop(timer_.get());
}

}  // namespace evh::dispatch
