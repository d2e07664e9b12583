// The ops thread's side of a scrape (coalescing, reuse, the deadline) and
// the function it posts to the loop.
#include "ops/loop_link.h"

#include "common/log.h"

#include <mutex>
#include <stdexcept>
#include <utility>

namespace evh::ops {

// What a posted scrape and the ops thread share. `wake` is the ops loop's
// async handle, usable (uv_async_send is thread-safe) while not null: close()
// nulls it under the mutex before closing the handle.
struct LoopLink::Mailbox {
  std::mutex mutex;
  uv_async_t* wake = nullptr;
  bool full = false;                           // an answer waits
  std::shared_ptr<const LoopSnapshot> answer;  // null with `full`: the scrape threw
  std::string error;

  bool open() {
    std::lock_guard<std::mutex> lock(mutex);
    return wake != nullptr;
  }
  void deliver(std::shared_ptr<const LoopSnapshot> snapshot, std::string why) {
    std::lock_guard<std::mutex> lock(mutex);
    if (wake != nullptr) {
      full = true;
      answer = std::move(snapshot);
      error = std::move(why);
      uv_async_send(wake);
    }
  }
};

LoopLink::LoopLink(uv_loop_t* ops_loop, LoopAccess access, Options options, Histogram scrape_seconds)
    : loop_(ops_loop),
      access_(std::move(access)),
      options_(options),
      scrape_seconds_(scrape_seconds),
      mailbox_(std::make_shared<Mailbox>()) {
  answered_ = makeUvHandle<uv_async_t>(loop_, uv_async_init, &LoopLink::onAnswer);
  timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  if (!answered_ || !timer_) {
    throw std::runtime_error("ops listener: cannot make its libuv handles");
  }
  answered_->data = this;
  timer_->data = this;
  mailbox_->wake = answered_.get();
}

LoopLink::~LoopLink() { close(); }

void LoopLink::get(Done done) {
  if (closed_) {
    done(LoopAnswer{nullptr, "evhost is stopping"});
    return;
  }
  if (last_ && uv_now(loop_) - last_at_ <= options_.reuse_ms) {
    done(LoopAnswer{last_.get(), std::string()});
    return;
  }
  if (stalled_) {
    // The scrape asked for is still outstanding on a loop that has not
    // answered it for timeout_ms: waiting again would only hold a
    // connection longer.
    done(LoopAnswer{nullptr, notAnswering()});
    return;
  }
  waiting_.push_back(std::move(done));
  if (!asking_) {
    ask();
  }
}

void LoopLink::ask() {
  asking_ = true;
  stalled_ = false;
  asked_at_ = uv_now(loop_);
  asked_ns_ = uv_hrtime();
  ++asked_;
  // Runs on the loop thread. It and the reply hold the mailbox, never this
  // object: they may run after the ops listener is gone (the poster drains
  // at shutdown; a scrape waits for Redis), and then do nothing -- a scrape
  // not started yet is not started, since its sources may be going too.
  auto run = [box = mailbox_, scrape = access_.scrape] {
    if (!box->open()) {
      return;
    }
    try {
      scrape([box](LoopSnapshot snapshot) {
        box->deliver(std::make_shared<const LoopSnapshot>(std::move(snapshot)), std::string());
      });
    } catch (const std::exception& e) {
      box->deliver(nullptr, e.what());
    }
  };
  if (!access_.post(std::move(run))) {
    asking_ = false;
    answerAll(LoopAnswer{nullptr, "evhost is stopping"});
    return;
  }
  uv_timer_start(timer_.get(), &LoopLink::onTimeout, options_.timeout_ms, 0);
}

void LoopLink::onAnswer(uv_async_t* async) {
  auto* self = static_cast<LoopLink*>(async->data);
  std::shared_ptr<const LoopSnapshot> snapshot;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(self->mailbox_->mutex);
    if (!self->mailbox_->full) {
      return;
    }
    self->mailbox_->full = false;
    snapshot = std::move(self->mailbox_->answer);
    error = std::move(self->mailbox_->error);
  }
  if (self->stalled_) {
    log::host().info("ops: the event loop answered again after {} ms", uv_now(self->loop_) - self->asked_at_);
  }
  self->asking_ = false;
  self->stalled_ = false;
  uv_timer_stop(self->timer_.get());
  self->scrape_seconds_.observe(static_cast<int64_t>((uv_hrtime() - self->asked_ns_) / 1000));
  if (!snapshot) {
    log::host().error("ops: collecting the metrics on the event loop failed: {}", error);
    self->answerAll(LoopAnswer{nullptr, "collecting on the event loop failed: " + error});
    return;
  }
  self->last_ = std::move(snapshot);
  self->last_at_ = uv_now(self->loop_);
  self->answerAll(LoopAnswer{self->last_.get(), std::string()});
}

void LoopLink::onTimeout(uv_timer_t* timer) {
  auto* self = static_cast<LoopLink*>(timer->data);
  self->stalled_ = true;
  log::host().warn(
      "ops: the event loop has not answered in {} ms: /metrics, /healthz and /readyz answer 503 until it does",
      self->options_.timeout_ms);
  self->answerAll(LoopAnswer{nullptr, self->notAnswering()});
}

void LoopLink::answerAll(const LoopAnswer& answer) {
  // Swapped out first: a callback may ask again.
  std::vector<Done> waiting;
  waiting.swap(waiting_);
  for (auto& done : waiting) {
    try {
      done(answer);
    } catch (const std::exception& e) {
      log::host().error("ops: answering a request failed: {}", e.what());
    }
  }
}

std::string LoopLink::notAnswering() const {
  return "evhost's event loop is not answering (no answer within " + std::to_string(options_.timeout_ms) + " ms)";
}

void LoopLink::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    mailbox_->wake = nullptr;
    mailbox_->full = false;
    mailbox_->answer.reset();
  }
  answerAll(LoopAnswer{nullptr, "evhost is stopping"});
  answered_.close();
  timer_.close();
}

}  // namespace evh::ops
