// Cross-thread posting onto the loop: a mutex-protected queue and an eventfd
// the loop polls (poster.h says why not uv_async_t).
#include "loop/poster.h"

#include "loop/io_phase.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace evh {

Poster::Poster(uv_loop_t* loop) {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) {
    throw std::runtime_error(std::string("cannot make the loop's eventfd: ") + std::strerror(errno));
  }
  poll_ = makeUvHandle<uv_poll_t>(loop, uv_poll_init, fd_);
  if (!poll_ || uv_poll_start(poll_.get(), UV_READABLE, &Poster::onReadable) != 0) {
    poll_.close();
    ::close(fd_);
    throw std::runtime_error("cannot poll the loop's eventfd");
  }
  poll_->data = this;
}

Poster::~Poster() {
  close();
  ::close(fd_);
}

bool Poster::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      return false;
    }
    queue_.push_back(std::move(fn));
  }
  wake();
  return true;
}

// A busy worker pool pays one eventfd write per wake-up of the loop, not per
// post. The loop clears woken_ before it takes the queue, so a post that
// finds it set is taken by the batch that wake-up runs.
void Poster::wake() {
  if (woken_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  const uint64_t one = 1;
  // Cannot fail but on EINTR: the counter would have to reach 2^64 - 1.
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
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
  if (!poll_) {
    return;
  }
  drain();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  drain();
  poll_.close();  // uv_close stops the polling at once; the fd stays open until the destructor
}

void Poster::onReadable(uv_poll_t* h, int status, int /*events*/) {
  auto* self = static_cast<Poster*>(h->data);
  uint64_t count = 0;
  // Resets the counter (non-blocking: EAGAIN when it is zero already).
  while (::read(self->fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  // An exchange, not a store: it reads the producers' exchange (every write
  // to woken_ is one), so their pushes happen before the batch taken below,
  // and a post after it finds woken_ false and writes again -- so what
  // arrives while this batch runs comes back on a later loop iteration,
  // after the loop has served its other handles.
  self->woken_.exchange(false, std::memory_order_acq_rel);
  (void)status;     // an eventfd reports no error; the queue is what counts
  IoPhaseScope io;  // Redis writes it asks for go out at the check phase
  self->runBatch();
}

}  // namespace evh
