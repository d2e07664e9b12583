// The sd_notify sending thread and its queue.
#include "app/notify_sender.h"

#include "common/log.h"
#include "common/throttle.h"

#include <pthread.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace evh::app {

// Held by the sender and by its thread: a thread left behind at the end
// (its receiver never read) still has it.
struct NotifySender::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> states;
  std::optional<std::string> status;
  bool ping = false;
  bool quit = false;
  bool done = false;  // the thread has sent everything and returns

  bool idle() const { return states.empty() && !status && !ping; }

  // The next message, waiting for one; nullopt once there is none and the
  // thread may go. State changes first, in order, then the status line,
  // then the ping.
  std::optional<std::string> next(std::unique_lock<std::mutex>& lk) {
    cv.wait(lk, [this] { return quit || !idle(); });
    if (!states.empty()) {
      std::string m = std::move(states.front());
      states.pop_front();
      return m;
    }
    if (status) {
      std::string m = "STATUS=" + *status;
      status.reset();
      return m;
    }
    if (ping) {
      ping = false;
      return std::string("WATCHDOG=1");
    }
    return std::nullopt;
  }
};

void NotifySender::run(const std::shared_ptr<Shared>& shared) {
  pthread_setname_np(pthread_self(), "evh-notify");
  Throttle failures(60000);
  std::unique_lock<std::mutex> lk(shared->mu);
  while (std::optional<std::string> message = shared->next(lk)) {
    const bool quitting = shared->quit;
    lk.unlock();
    // unset_environment 0: evhost never changes its environment once threads
    // run (setenv/unsetenv race every getenv); the manager takes messages
    // from the main pid only (NotifyAccess=main), so a plugin's child that
    // inherits NOTIFY_SOCKET cannot speak for evhost.
    const int rc = sd_notify(0, message->c_str());
    if (rc < 0 && !quitting && failures.allow(uv_hrtime() / 1000000)) {
      log::host().warn("sd_notify to NOTIFY_SOCKET failed: {} (the service manager may not see evhost's state){}",
                       std::strerror(-rc),
                       failures.suppressed() > 0 ? fmt::format("; {} more since", failures.suppressed()) : "");
    }
    lk.lock();
  }
  shared->done = true;
  shared->cv.notify_all();
}

NotifySender::NotifySender() : shared_(std::make_shared<Shared>()) {
  std::thread([shared = shared_] { run(shared); }).detach();
}

NotifySender::~NotifySender() {
  std::unique_lock<std::mutex> lk(shared_->mu);
  shared_->quit = true;
  shared_->cv.notify_all();
  // Detached from the start, so that one stuck in a send is simply left
  // behind: it owns its share of the state, and no join can hang the exit.
  if (!shared_->cv.wait_for(lk, std::chrono::seconds(1), [this] { return shared_->done; })) {
    log::host().warn(
        "the service manager is not reading NOTIFY_SOCKET: leaving with one notification being sent and {} more "
        "not sent",
        shared_->states.size() + (shared_->status ? 1 : 0) + (shared_->ping ? 1 : 0));
  }
}

void NotifySender::state(std::string message) {
  std::lock_guard<std::mutex> lk(shared_->mu);
  shared_->states.push_back(std::move(message));
  shared_->status.reset();
  shared_->cv.notify_one();
}

void NotifySender::status(std::string line) {
  std::lock_guard<std::mutex> lk(shared_->mu);
  shared_->status = std::move(line);
  shared_->cv.notify_one();
}

void NotifySender::ping() {
  std::lock_guard<std::mutex> lk(shared_->mu);
  shared_->ping = true;
  shared_->cv.notify_one();
}

}  // namespace evh::app
