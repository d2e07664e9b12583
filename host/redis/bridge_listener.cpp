// The local socket TLS connections' hiredis side connects to.
#include "redis/bridge_listener.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace evh::redis {

BridgeListener::BridgeListener() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/evhost-tls-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {  // mode 0700
    throw std::runtime_error("TLS bridge: cannot make a private folder from " + pattern + ": " + std::strerror(errno));
  }
  dir_ = buf.data();
  path_ = dir_ + "/bridge";
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sa.sun_path) {
    ::rmdir(dir_.c_str());
    throw std::runtime_error("TLS bridge: socket path too long: " + path_ + " (set TMPDIR to a shorter folder)");
  }
  std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 64) != 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) {
      ::close(fd_);
    }
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
    throw std::runtime_error("TLS bridge: cannot listen on " + path_ + ": " + why);
  }
}

BridgeListener::~BridgeListener() {
  ::close(fd_);
  ::unlink(path_.c_str());
  ::rmdir(dir_.c_str());
}

int BridgeListener::acceptOwn(std::string& error) const {
  for (;;) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = errno == EAGAIN || errno == EWOULDBLOCK ? "the local connection was not queued"
                                                      : std::string("accept: ") + std::strerror(errno);
      return -1;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == ::getpid()) {
      return fd;
    }
    ::close(fd);  // not ours: another process of this user connected
  }
}

}  // namespace evh::redis
