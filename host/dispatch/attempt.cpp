// The attempt / evh_call state machine.
#include "dispatch/attempt.h"

#include "dispatch/plugin_state.h"
#include "dispatch/worker_pool.h"
#include "plugin/status.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace evh::dispatch {

Attempt::Attempt(AttemptEvents& events, Poster& poster, std::shared_ptr<std::atomic<bool>> alive, Delivery* del,
                 std::string_view dead_letter_channel, std::string idempotency_key)
    : delivery(del),
      ps(del->ps),
      inflight(del->inflight),
      entry(del->entry),
      events_(events),
      poster_(poster),
      alive_(std::move(alive)),
      idempotency_key_(std::move(idempotency_key)) {
  call_ = ps->calls->open(this, slot_);
  if (inflight != nullptr) {
    ++inflight->attempts;
  }
  auto s = [](std::string_view v) { return evh_str{v.data(), v.size()}; };
  if (del->entry) {
    view.struct_size = sizeof(evh_event);
    view.attempt = 1;
    view.max_attempts = 1;
    view.channel = s(dead_letter_channel);
    view.redis_channel = s("");
    view.event_type = s("DEAD_LETTER");
    view.event_id = s(del->entry->id);
    view.correlation_id = s(del->entry->correlation_id);
    view.timestamp = s("");
    view.timestamp_ms = static_cast<int64_t>(wallMs());
    view.payload = view.envelope = view.raw = s(del->entry->json);
    view.delivery_id = s("");
    view.idempotency_key = s("");
  } else {
    inflight->event.fillView(view, del->attempt, del->maxAttempts());
    if (!idempotency_key_.empty()) {
      view.idempotency_key = s(idempotency_key_);
      view.idempotency_ttl_ms = static_cast<int64_t>(del->idempotency_ttl_ms);
    }
  }
}

Attempt::~Attempt() { ps->calls->release(*slot_); }

std::string_view Attempt::eventId() const noexcept {
  return inflight != nullptr ? inflight->event.eventId() : std::string_view(entry->id);
}

evh_status Attempt::callPlugin() {
  try {
    return ps->plugin->handle(view, call_);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(slot_->mutex);
    error_ = std::string("exception thrown through the C ABI: ") + e.what();
  } catch (...) {
    std::lock_guard<std::mutex> lock(slot_->mutex);
    error_ = "unknown exception thrown through the C ABI";
  }
  return EVH_RETRY;
}

void Attempt::setError(std::string_view msg) { error_.assign(msg); }

evh_status Attempt::complete(evh_status status, std::string_view msg) {
  if (state_ == Done || state_ == CompletedEarly) {
    return EVH_ERR_STATE;
  }
  completed_status_ = status;
  if (!msg.empty()) {
    error_.assign(msg);
  }
  plugin::CallOwner::endLocked(*slot_, plugin::CallEnd::Completed);
  if (state_ == Running) {
    state_ = CompletedEarly;  // afterReturn finishes it
    return EVH_OK;
  }
  state_ = Done;
  // Returned: finish on the loop. The alive flag drops completions that
  // arrive after abandon() or the dispatcher's end.
  if (!poster_.post([token = alive_, events = &events_, a = this, status] {
        if (token->load()) {
          events->completed(a, status);
        }
      })) {
    return EVH_ERR_CANCELLED;
  }
  return EVH_OK;
}

bool Attempt::afterReturn(evh_status& status) {
  bool bug = false;
  {
    std::lock_guard<std::mutex> lock(slot_->mutex);
    if (given_up.load(std::memory_order_relaxed)) {
      state_ = Done;  // its call ended at the timeout: the answer is only logged
      return true;
    }
    if (status == EVH_PENDING) {
      if (state_ != CompletedEarly) {
        state_ = Returned;  // complete() finishes it
        return false;
      }
      status = completed_status_;
    } else if (state_ == CompletedEarly) {
      bug = true;
    } else {
      plugin::CallOwner::endLocked(*slot_, plugin::CallEnd::Answered);
    }
    state_ = Done;
  }
  if (bug) {
    ps->plugin->logger().error(
        "plugin bug: complete() was called for a call whose handle() then answered {} (not PENDING); using the answer",
        plugin::statusText(status));
  }
  return true;
}

bool Attempt::workerReturned() {
  std::lock_guard<std::mutex> lock(slot_->mutex);
  returned_ = true;
  return stuck;
}

Attempt::GiveUp Attempt::giveUp() {
  std::lock_guard<std::mutex> lock(slot_->mutex);
  // An outcome already on its way to the loop wins over the timeout.
  if (state_ == Done || state_ == CompletedEarly) {
    return GiveUp::Lost;
  }
  plugin::CallOwner::endLocked(*slot_, plugin::CallEnd::TimedOut);
  given_up.store(true);
  delivery = nullptr;
  return state_ == Returned ? GiveUp::Idle : GiveUp::Running;
}

bool Attempt::markStuck(WorkerPool& pool, bool& replaced) {
  // Under the slot's mutex, so that the worker's unmarkStuck() (after
  // handle() returns) can never come before this markStuck().
  std::lock_guard<std::mutex> lock(slot_->mutex);
  if (returned_ || state_ != Running) {
    return false;  // handle() returned (PENDING, or its outcome is on its way): no thread held
  }
  stuck = true;
  replaced = pool.markStuck();
  return true;
}

void Attempt::abandon(plugin::CallEnd why) {
  timeout.close();
  delivery = nullptr;
  given_up.store(true);
  std::lock_guard<std::mutex> lock(slot_->mutex);
  plugin::CallOwner::endLocked(*slot_, why);
}

void Attempt::armTimeout(uv_loop_t* loop, uint64_t ms) {
  if (!timeout) {
    timeout = makeUvHandle<uv_timer_t>(loop, uv_timer_init);
    timeout->data = this;
  }
  uv_timer_start(
      timeout.get(),
      [](uv_timer_t* t) {
        auto* a = static_cast<Attempt*>(t->data);
        a->events_.timedOut(a);
      },
      ms, 0);
}

std::string Attempt::takeError() {
  std::lock_guard<std::mutex> lock(slot_->mutex);
  return std::move(error_);
}

}  // namespace evh::dispatch
