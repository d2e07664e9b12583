// A stand-in for the service manager's end of sd_notify(3): an AF_UNIX
// datagram socket bound in a fresh folder (pass path() as NOTIFY_SOCKET),
// with a thread that reads every message as it comes -- so a sender is never
// held by a full queue -- and keeps it with the time it arrived.
#pragma once

#include "support/temp_file.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {

class NotifySocket {
 public:
  using Clock = std::chrono::steady_clock;
  struct Message {
    Clock::time_point at;
    std::string text;  // as sent: "READY=1\nSTATUS=..."

    // Whether one of its lines starts with `line` ("READY=1", "STATUS=",
    // "STATUS=not ready (").
    bool has(const std::string& line) const {
      size_t at_line = 0;
      while (at_line <= text.size()) {
        size_t end = text.find('\n', at_line);
        if (end == std::string::npos) {
          end = text.size();
        }
        const std::string one = text.substr(at_line, end - at_line);
        if (one.rfind(line, 0) == 0) {
          return true;
        }
        at_line = end + 1;
      }
      return false;
    }
    // The value of `key=` in it ("STATUS"), or "".
    std::string value(const std::string& key) const {
      const std::string prefix = key + "=";
      size_t at_line = 0;
      while (at_line < text.size()) {
        size_t end = text.find('\n', at_line);
        if (end == std::string::npos) {
          end = text.size();
        }
        if (text.compare(at_line, prefix.size(), prefix) == 0) {
          return text.substr(at_line + prefix.size(), end - at_line - prefix.size());
        }
        at_line = end + 1;
      }
      return "";
    }
  };

  NotifySocket() : path_(dir_.path() + "/notify") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("cannot bind " + path_ + ": " + std::strerror(errno));
    }
    reader_ = std::thread([this] { read(); });
  }
  ~NotifySocket() {
    quit_.store(true);
    reader_.join();
    ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const noexcept { return path_; }
  // "NOTIFY_SOCKET=<path>", for an environment.
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }

  std::vector<Message> messages() const {
    std::lock_guard<std::mutex> lk(mu_);
    return messages_;
  }
  // The messages that have `line` (Message::has).
  std::vector<Message> with(const std::string& line) const {
    std::vector<Message> out;
    for (auto& m : messages()) {
      if (m.has(line)) {
        out.push_back(m);
      }
    }
    return out;
  }
  // Waits (polling, at most `timeout`) for a message with `line` at index
  // `from` or later; returns its index.
  std::optional<size_t> waitFor(const std::string& line, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                size_t from = 0) const {
    const auto until = Clock::now() + timeout;
    do {
      {
        std::lock_guard<std::mutex> lk(mu_);
        for (size_t i = from; i < messages_.size(); ++i) {
          if (messages_[i].has(line)) {
            return i;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } while (Clock::now() < until);
    return std::nullopt;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return messages_.size();
  }

 private:
  void read() {
    char buf[4096];
    while (!quit_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        std::lock_guard<std::mutex> lk(mu_);
        messages_.push_back(Message{Clock::now(), std::string(buf, static_cast<size_t>(n))});
      }
    }
  }

  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> quit_{false};
  mutable std::mutex mu_;
  std::vector<Message> messages_;
  std::thread reader_;
};

}  // namespace evh::test
