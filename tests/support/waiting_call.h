// A call handle for in-process plugin tests whose outcome may come later,
// from another thread: a plugin that answers EVH_PENDING and completes the
// call from a thread of its own (api->complete). FakeCall (fake_host.h)
// records without a lock, for plugins that answer on the calling thread.
#pragma once

#include "plugin/call_table.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace evh::test {

class WaitingCall final : public plugin::CallTarget {
 public:
  WaitingCall() : owner_(plugin::CallTable::process().join("waiting")) { handle_ = owner_.open(this, slot_); }
  ~WaitingCall() {
    owner_.release(*slot_);  // a completion after this answers EVH_ERR_STATE, not here
    plugin::CallTable::process().leave(owner_);
  }
  WaitingCall(const WaitingCall&) = delete;
  WaitingCall& operator=(const WaitingCall&) = delete;

  evh_call* handle() const noexcept { return handle_; }

  struct Outcome {
    evh_status status = EVH_PENDING;  // still EVH_PENDING: no outcome within the wait
    std::string message;
  };
  // The call's outcome: what handle() returned (`returned`, with the message
  // it set), or when that was EVH_PENDING, the completion -- waited for at
  // most `timeout`.
  Outcome outcome(evh_status returned, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (returned != EVH_PENDING) {
      return {returned, error_};
    }
    cv_.wait_for(lock, timeout, [this] { return completions_ > 0; });
    return completed_;
  }
  // How many times complete() was called: exactly once for a PENDING call.
  int completions() {
    std::lock_guard<std::mutex> lock(mutex_);
    return completions_;
  }

  void setError(std::string_view msg) override {
    std::lock_guard<std::mutex> lock(mutex_);
    error_.assign(msg);
  }
  evh_status complete(evh_status status, std::string_view msg) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (++completions_ > 1) {
      return EVH_ERR_STATE;
    }
    completed_ = {status, std::string(msg)};
    cv_.notify_all();
    return EVH_OK;
  }

 private:
  plugin::CallOwner& owner_;
  plugin::CallSlot* slot_ = nullptr;
  evh_call* handle_ = nullptr;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string error_;
  int completions_ = 0;
  Outcome completed_;
};

}  // namespace evh::test
