// Cross-thread posting onto the loop: a mutex-protected queue and uv_async_send.
#include "loop/poster.h"

#include "loop/io_phase.h"

#include <stdexcept>

namespace evh {

Poster::Poster(uv_loop_t* loop) {
  async_ = makeUvHandle<uv_async_t>(loop, uv_async_init, &Poster::onAsync);
  if (!async_) {
    throw std::runtime_error("uv_async_init failed");
  }
  async_->data = this;
}

Poster::~Poster() { close(); }

bool Poster::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      return false;
    }
    queue_.push_back(std::move(fn));
    // Only the post that makes the queue non-empty wakes the loop: it takes
    // the whole queue when it runs (and comes back if more is left), so a
    // busy worker pool does not pay an eventfd write per post while holding
    // the lock. uv_async_send is safe from any thread; calling it under the
    // lock keeps close() from freeing the handle in between.
    if (queue_.size() == 1) {
      uv_async_send(async_.get());
    }
  }
  return true;
}

void Poster::drainUntilEmpty() {
  while (runBatch()) {
  }
}

void Poster::drain() { drainUntilEmpty(); }

// Runs what is queued now, not what arrives meanwhile: a busy producer
// thread must not keep the loop here for ever. Returns whether anything ran.
bool Poster::runBatch() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) {
      return false;
    }
    batch.swap(queue_);
  }
  for (auto& fn : batch) {
    fn();
  }
  return true;
}

void Poster::refuse() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
}

void Poster::close() {
  if (!async_) {
    return;
  }
  drain();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  drain();
  async_.close();
}

void Poster::onAsync(uv_async_t* h) {
  // One batch per wake-up; if more arrived while it ran, come back on the
  // next loop iteration, after the loop has served its other handles.
  auto* self = static_cast<Poster*>(h->data);
  {
    IoPhaseScope io;  // Redis writes it asks for go out at the check phase
    self->runBatch();
  }
  std::lock_guard<std::mutex> lock(self->mutex_);
  if (!self->queue_.empty() && self->async_.get() == h) {  // not closed by what just ran
    uv_async_send(h);
  }
}

}  // namespace evh
