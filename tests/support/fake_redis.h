// Fake "Redis" servers for tests of a broken or hostile one: FakeServer, a
// loopback listener that runs a script on each connection; FakeRedis, one
// that answers evhost's connections as a quiet Redis would until a test arms
// a hostile answer; and the memory figures of a process (/proc/<pid>/status).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {

// A loopback listener that runs `script` on every accepted connection, each
// on its own thread, until destroyed.
class FakeServer {
 public:
  // script(fd, stop): talks to one client; returns when done or stop is set.
  using Script = std::function<void(int fd, const std::atomic<bool>& stop)>;

  explicit FakeServer(Script script) : script_(std::move(script)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listener_, 16) != 0 || getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("fake server: cannot listen on loopback");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~FakeServer() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) {
      shutdown(fd, SHUT_RDWR);  // unblocks a script in read() or write()
    }
    for (auto& t : clients_) {
      t.join();
    }
    for (int fd : fds_) {
      close(fd);
    }
    close(listener_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

  // Reads what arrives within a moment (the client's first command).
  static std::string readSome(int fd, const std::atomic<bool>& stop) {
    char buf[4096];
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
      }
    }
    return {};
  }
  static bool writeAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Writes `total` filler bytes (forever when 0) until the client goes.
  static void spew(int fd, const std::atomic<bool>& stop, uint64_t total = 0) {
    const std::string block(64 * 1024, 'x');
    for (uint64_t sent = 0; !stop && (total == 0 || sent < total); sent += block.size()) {
      if (!writeAll(fd, total == 0 ? block : block.substr(0, std::min<uint64_t>(block.size(), total - sent)))) {
        return;
      }
    }
  }
  // Writes `unit` over and over until the client goes.
  static void repeat(int fd, const std::atomic<bool>& stop, const std::string& unit) {
    std::string block;
    while (block.size() < 64 * 1024) {
      block += unit;
    }
    while (!stop && writeAll(fd, block)) {
    }
  }
  // Waits until the client closes (or stop), reading and dropping what it sends.
  static void drain(int fd, const std::atomic<bool>& stop) {
    char buf[4096];
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) > 0 && read(fd, buf, sizeof(buf)) <= 0) {
        return;
      }
    }
  }

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) {
        continue;
      }
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      clients_.emplace_back([this, fd] { script_(fd, stop_); });
    }
  }

  Script script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> clients_;
};

// A line of /proc/<pid>/status, in kB: "VmRSS:" (resident now) or "VmHWM:"
// (the peak). 0 when the process is gone.
inline uint64_t statusKb(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) {
      return std::stoull(line.substr(field.size()));
    }
  }
  return 0;
}
inline uint64_t peakRssKb(pid_t pid) { return statusKb(pid, "VmHWM:"); }
inline uint64_t rssKb(pid_t pid) { return statusKb(pid, "VmRSS:"); }

// In a sanitizer build, AddressSanitizer keeps freed memory in quarantine
// (256 MB by default): each dropped connection's buffer would count as
// evhost's. A small quarantine keeps the peak about evhost's own memory; a
// build without the sanitizer ignores the variable.
inline std::vector<std::string> smallQuarantine() {
  const char* asan = std::getenv("ASAN_OPTIONS");
  return {"ASAN_OPTIONS=" + std::string(asan != nullptr && asan[0] != '\0' ? std::string(asan) + ":" : "") +
          "quarantine_size_mb=8"};
}

// RESP as a server writes it.
inline std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

// One client's commands (RESP arrays of bulk strings) as they arrive.
class CommandReader {
 public:
  CommandReader(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}
  // The next command's arguments; empty once the client went away (or
  // stop); nullopt when none came within wait_ms (-1: wait as long as it takes).
  std::optional<std::vector<std::string>> next(int wait_ms = -1) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
      std::vector<std::string> argv;
      if (parse(argv)) {
        return argv;
      }
      if (stop_) {
        return std::vector<std::string>{};
      }
      if (wait_ms >= 0 && std::chrono::steady_clock::now() >= until) {
        return std::nullopt;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) {
        continue;
      }
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        return std::vector<std::string>{};
      }
      in_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  // One whole command off the front of in_, if there is one.
  bool parse(std::vector<std::string>& argv) {
    size_t pos = 0;
    auto line = [&](std::string& out) {
      const size_t end = in_.find("\r\n", pos);
      if (end == std::string::npos) {
        return false;
      }
      out = in_.substr(pos, end - pos);
      pos = end + 2;
      return true;
    };
    std::string head;
    if (!line(head) || head.empty() || head[0] != '*') {
      return false;
    }
    const long n = std::strtol(head.c_str() + 1, nullptr, 10);
    for (long i = 0; i < n; ++i) {
      std::string len;
      if (!line(len) || len.empty() || len[0] != '$') {
        return false;
      }
      const size_t size = std::strtoul(len.c_str() + 1, nullptr, 10);
      if (in_.size() < pos + size + 2) {
        return false;
      }
      argv.push_back(in_.substr(pos, size));
      pos += size + 2;
    }
    in_.erase(0, pos);
    return true;
  }

  int fd_;
  const std::atomic<bool>& stop_;
  std::string in_;
};

}  // namespace evh::test
