// POST /reload's way to the loop and back: see reload_link.h.
#include "ops/reload_link.h"

#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace evh::ops {

// What the loop's answers and the ops thread share. `wake` is the ops
// loop's async handle, usable (uv_async_send is thread-safe) while not null:
// close() nulls it under the mutex before closing the handle.
struct ReloadLink::Mailbox {
  std::mutex mutex;
  uv_async_t* wake = nullptr;
  std::vector<std::pair<uint64_t, Response>> answers;

  void deliver(uint64_t id, Response response) {
    std::lock_guard<std::mutex> lock(mutex);
    if (wake != nullptr) {
      answers.emplace_back(id, std::move(response));
      uv_async_send(wake);
    }
  }
};

ReloadLink::ReloadLink(uv_loop_t* ops_loop, ReloadAccess access, uint32_t timeout_ms)
    : loop_(ops_loop), access_(std::move(access)), timeout_ms_(timeout_ms), mailbox_(std::make_shared<Mailbox>()) {
  async_ = makeUvHandle<uv_async_t>(loop_, uv_async_init, &ReloadLink::onAnswer);
  tick_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  if (!async_ || !tick_) {
    throw std::runtime_error("ops listener: cannot make the reload link's handles");
  }
  async_->data = this;
  tick_->data = this;
  mailbox_->wake = async_.get();
}

ReloadLink::~ReloadLink() { close(); }

void ReloadLink::ask(Done done) {
  if (closed_) {
    done(reloadNotRun("evhost is stopping"));
    return;
  }
  const uint64_t id = next_id_++;
  std::weak_ptr<Mailbox> mailbox = mailbox_;
  auto reload = access_.reload;
  const bool posted = access_.post([reload, mailbox, id] {
    reload([mailbox, id](ReloadResult result, std::string json) {
      if (auto m = mailbox.lock()) {
        m->deliver(id, reloadResponse(result, std::move(json)));
      }
    });
  });
  if (!posted) {
    done(reloadNotRun("evhost is stopping"));
    return;
  }
  waiting_.emplace(id, Waiter{std::move(done), uv_now(loop_) + timeout_ms_});
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(tick_.get())) == 0) {
    uv_timer_start(tick_.get(), &ReloadLink::onTick, 250, 250);
  }
}

void ReloadLink::onAnswer(uv_async_t* async) {
  auto* self = static_cast<ReloadLink*>(async->data);
  std::vector<std::pair<uint64_t, Response>> answers;
  {
    std::lock_guard<std::mutex> lock(self->mailbox_->mutex);
    answers.swap(self->mailbox_->answers);
  }
  for (auto& [id, response] : answers) {
    auto it = self->waiting_.find(id);
    if (it == self->waiting_.end()) {
      continue;  // answered 503 at its deadline already
    }
    Done done = std::move(it->second.done);
    self->waiting_.erase(it);
    done(response);
  }
  if (self->waiting_.empty()) {
    uv_timer_stop(self->tick_.get());
  }
}

void ReloadLink::onTick(uv_timer_t* timer) {
  auto* self = static_cast<ReloadLink*>(timer->data);
  const uint64_t now = uv_now(self->loop_);
  for (auto it = self->waiting_.begin(); it != self->waiting_.end();) {
    if (now < it->second.deadline_ms) {
      ++it;
      continue;
    }
    Done done = std::move(it->second.done);
    it = self->waiting_.erase(it);
    done(reloadUnanswered("the reload has not finished within " + std::to_string(self->timeout_ms_) +
                          " ms; it goes on: the log and GET /status say how it ends"));
  }
  if (self->waiting_.empty()) {
    uv_timer_stop(self->tick_.get());
  }
}

void ReloadLink::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    mailbox_->wake = nullptr;
    mailbox_->answers.clear();
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [id, w] : waiting) {
    w.done(reloadUnanswered("evhost is stopping: the reload's outcome is in the log"));
  }
  async_.close();
  tick_.close();
}

}  // namespace evh::ops
