// The ops thread's side of a scrape (coalescing, reuse, the deadline) and
// the function it posts to the loop.
#include "ops/loop_link.h"

#include "common/log.h"

#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

namespace evh::ops {
namespace {

// A part asked for this recently is computed with any scrape.
constexpr uint64_t kRecentMs = 1000;

}  // namespace

// What a posted scrape and the ops thread share. `wake` is the ops loop's
// async handle, usable (uv_async_send is thread-safe) while not null: close()
// nulls it under the mutex before closing the handle.
struct LoopLink::Mailbox {
  std::mutex mutex;
  uv_async_t* wake = nullptr;
  // The parts the outstanding scrape is to compute: requests add theirs
  // until the loop starts it, which takes them.
  Parts wanted = 0;
  bool started = false;
  bool full = false;                     // an answer waits
  std::shared_ptr<LoopSnapshot> answer;  // null with `full`: the scrape threw
  std::string error;
  Parts answered = 0;  // the parts the answer was computed for

  // The parts to compute, or nullopt when the link is closed.
  std::optional<Parts> start() {
    std::lock_guard<std::mutex> lock(mutex);
    if (wake == nullptr) {
      return std::nullopt;
    }
    started = true;
    return wanted;
  }
  // Adds `parts` to a scrape not started yet; false when it has started.
  bool want(Parts parts) {
    std::lock_guard<std::mutex> lock(mutex);
    if (started) {
      return false;
    }
    wanted |= parts;
    return true;
  }
  void deliver(std::shared_ptr<LoopSnapshot> snapshot, std::string why, Parts parts) {
    std::lock_guard<std::mutex> lock(mutex);
    if (wake != nullptr) {
      full = true;
      answer = std::move(snapshot);
      error = std::move(why);
      answered = parts;
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

void LoopLink::get(Parts parts, Done done) {
  if (closed_) {
    done(LoopAnswer{nullptr, "evhost is stopping"});
    return;
  }
  const uint64_t now = uv_now(loop_);
  for (unsigned bit = 0; bit < kPartBits; ++bit) {
    if ((parts & (1U << bit)) != 0) {
      requested_at_[bit] = now;
    }
  }
  if (last_ && (last_->has & parts) == parts && now - last_at_ <= options_.reuse_ms) {
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
  waiting_.push_back(Waiter{parts, std::move(done)});
  if (!asking_) {
    ask(parts);
  } else {
    // Joins the outstanding scrape if the loop has not started it yet;
    // else it is asked again once that one is answered.
    mailbox_->want(parts);
  }
}

void LoopLink::ask(Parts parts) {
  // Everything the requests waiting now need, in one scrape -- and every
  // part asked for within the last second: under a flood of requests for
  // different endpoints one scrape serves them all (one per reuse_ms),
  // while a lone probe of /readyz now and then never costs a collect.
  for (const Waiter& w : waiting_) {
    parts |= w.parts;
  }
  const uint64_t now = uv_now(loop_);
  for (unsigned bit = 0; bit < kPartBits; ++bit) {
    if (requested_at_[bit] != 0 && now - requested_at_[bit] <= kRecentMs) {
      parts |= 1U << bit;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mailbox_->mutex);
    mailbox_->wanted = parts;
    mailbox_->started = false;
  }
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
    const std::optional<Parts> taken = box->start();
    if (!taken) {
      return;
    }
    try {
      scrape(*taken, [box, computed = *taken](LoopSnapshot snapshot) {
        box->deliver(std::make_shared<LoopSnapshot>(std::move(snapshot)), std::string(), computed);
      });
    } catch (const std::exception& e) {
      box->deliver(nullptr, e.what(), *taken);
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
  std::shared_ptr<LoopSnapshot> snapshot;
  std::string error;
  Parts answered = 0;
  {
    std::lock_guard<std::mutex> lock(self->mailbox_->mutex);
    if (!self->mailbox_->full) {
      return;
    }
    self->mailbox_->full = false;
    snapshot = std::move(self->mailbox_->answer);
    error = std::move(self->mailbox_->error);
    answered = self->mailbox_->answered;
  }
  if (self->stalled_) {
    log::host().info("ops: the event loop answered again after {} ms", uv_now(self->loop_) - self->asked_at_);
  }
  self->asking_ = false;
  self->stalled_ = false;
  uv_timer_stop(self->timer_.get());
  std::optional<std::string> collect_error;
  if (snapshot && (answered & kFamilies) != 0 && !snapshot->families && self->access_.collect) {
    try {
      snapshot->families = std::make_shared<const Collection>(self->access_.collect());
    } catch (const std::exception& e) {
      collect_error = e.what();
    }
  }
  // The collect included, wherever it ran.
  self->scrape_seconds_.observe(static_cast<int64_t>((uv_hrtime() - self->asked_ns_) / 1000));
  if (collect_error) {
    log::host().error("ops: collecting the metrics failed: {}", *collect_error);
    self->answerAll(LoopAnswer{nullptr, "collecting the metrics failed: " + *collect_error});
    return;
  }
  if (!snapshot) {
    log::host().error("ops: collecting the metrics on the event loop failed: {}", error);
    self->answerAll(LoopAnswer{nullptr, "collecting on the event loop failed: " + error});
    return;
  }
  self->last_ = std::move(snapshot);
  self->last_at_ = uv_now(self->loop_);
  // Those that came while it ran and need a part it lacks ask again.
  std::vector<Waiter> served;
  std::vector<Waiter> again;
  for (Waiter& w : self->waiting_) {
    ((answered & w.parts) == w.parts ? served : again).push_back(std::move(w));
  }
  self->waiting_ = std::move(served);
  self->answerAll(LoopAnswer{self->last_.get(), std::string()});
  if (!again.empty() && !self->closed_) {
    for (Waiter& w : again) {
      self->waiting_.push_back(std::move(w));
    }
    if (!self->asking_) {
      self->ask(0);
    }
  }
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
  std::vector<Waiter> waiting;
  waiting.swap(waiting_);
  for (auto& w : waiting) {
    try {
      w.done(answer);
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
