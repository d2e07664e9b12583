// evhctl's TLS: a socket pair for hiredis, a pump thread for the session.
#include "cli/sync_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace evh::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd until `deadline`; false on timeout.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) {
      return true;
    }
    if (rc < 0 && errno != EINTR) {
      return true;  // the next call says what is wrong
    }
  }
}

bool writeAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

SyncTls::SyncTls(const redis::TlsContext& tls, const std::string& host, uint16_t port, const std::string& server_name,
                 uint32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve " + host + ": " + gai_strerror(rc));
  }
  sockaddr_storage addr{};
  const socklen_t len = found->ai_addrlen;
  std::memcpy(&addr, found->ai_addr, len);
  ::freeaddrinfo(found);
  tcp_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (tcp_ < 0) {
    throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  }
  try {
    if (::connect(tcp_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
      throw std::runtime_error(std::strerror(errno));
    }
    if (!waitFor(tcp_, POLLOUT, deadline)) {
      throw std::runtime_error("no connection within connect_timeout_ms=" + std::to_string(timeout_ms));
    }
    int err = 0;
    socklen_t err_len = sizeof err;
    getsockopt(tcp_, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      throw std::runtime_error(std::strerror(err));
    }
    ssl_ = SSL_new(tls.get());
    if (ssl_ == nullptr || SSL_set_fd(ssl_, tcp_) != 1) {
      throw std::runtime_error("cannot start a TLS session: " + redis::takeOpenSslErrors("out of memory"));
    }
    const std::string name = server_name.empty() ? host : server_name;
    unsigned char buf[16];
    if (inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
    } else {
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str()));
      SSL_set1_host(ssl_, name.c_str());
    }
    for (;;) {
      ERR_clear_error();
      const int rc = SSL_connect(ssl_);
      if (rc == 1) {
        break;
      }
      const int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!waitFor(tcp_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          throw std::runtime_error("no TLS handshake within connect_timeout_ms=" + std::to_string(timeout_ms) +
                                   " (a plaintext Redis port? redis.tls is on)");
        }
        continue;
      }
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        throw std::runtime_error("TLS handshake failed: " + redis::describeVerifyFailure(verify, name));
      }
      throw std::runtime_error("TLS handshake failed: " + redis::takeOpenSslErrors("the server closed the connection"));
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
    }
    hiredis_ = pair[0];
    local_ = pair[1];
    thread_ = std::thread([this] { pump(); });
  } catch (...) {
    SSL_free(ssl_);
    ::close(tcp_);
    throw;
  }
}

SyncTls::~SyncTls() {
  if (hiredis_ >= 0) {
    ::close(hiredis_);  // never taken: the pump sees the end
  }
  ::shutdown(local_, SHUT_RDWR);
  ::shutdown(tcp_, SHUT_RDWR);
  if (thread_.joinable()) {
    thread_.join();
  }
  ::close(local_);
  SSL_free(ssl_);
  ::close(tcp_);
}

int SyncTls::takeHiredisFd() noexcept {
  const int fd = hiredis_;
  hiredis_ = -1;
  return fd;
}

// Until either side ends: what hiredis writes goes into the session, what
// the session yields goes to hiredis. The session is this thread's alone.
// The TCP socket stays non-blocking: TLS 1.3 sends session tickets after
// the handshake, and a blocking SSL_read that consumed one would wait for
// application data while hiredis's request sits unsent (a deadlock).
void SyncTls::pump() noexcept {
  char buf[16 * 1024];
  for (;;) {
    pollfd p[2] = {{tcp_, POLLIN, 0}, {local_, POLLIN, 0}};
    if (SSL_pending(ssl_) == 0 && ::poll(p, 2, -1) < 0 && errno != EINTR) {
      return;
    }
    if (SSL_pending(ssl_) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        if (!writeAll(local_, buf, static_cast<size_t>(n))) {
          return;
        }
      } else if (const int e = SSL_get_error(ssl_, n); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        ::shutdown(local_, SHUT_RDWR);  // the session ended: hiredis sees the end
        return;
      }
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(local_, buf, sizeof buf);
      if (n <= 0) {
        return;  // hiredis closed its end
      }
      for (ssize_t off = 0; off < n;) {
        const int w = SSL_write(ssl_, buf + off, static_cast<int>(n - off));
        if (w > 0) {
          off += w;
          continue;
        }
        const int e = SSL_get_error(ssl_, w);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          ::shutdown(local_, SHUT_RDWR);
          return;
        }
        pollfd out{tcp_, static_cast<short>(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
        ::poll(&out, 1, -1);
      }
    }
  }
}

}  // namespace evh::cli
