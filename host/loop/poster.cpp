// Cross-thread posting onto the loop: a mutex-protected queue and uv_async_send.
#include "loop/poster.h"

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
    // uv_async_send is safe from any thread and coalesces; calling it under
    // the lock keeps close() from freeing the handle in between.
    uv_async_send(async_.get());
  }
  return true;
}

void Poster::drain() {
  std::vector<std::function<void()>> batch;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty()) {
        return;
      }
      batch.swap(queue_);
    }
    for (auto& fn : batch) {
      fn();
    }
    batch.clear();
  }
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

void Poster::onAsync(uv_async_t* h) { static_cast<Poster*>(h->data)->drain(); }

}  // namespace evh
