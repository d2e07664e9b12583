// Connection's TLS connect (redis.tls): the bridge first, then hiredis on
// the bridge's local socket; and the bytes between hiredis and the bridge,
// handed over in process. See tls_bridge.h and docs/architecture.md, "TLS
// to Redis".
#include "loop/io_phase.h"
#include "redis/bridge_listener.h"
#include "redis/connection.h"
#include "redis/hiredis_compat.h"

#include <hiredis/async.h>

namespace evh::redis {

// TLS: the TCP connection and the handshake first (tls_bridge.h); once the
// session is up, hiredis connects to the bridge's local socket and the
// connection goes on as a plaintext one would.
void Connection::startTls(const std::string& ip) {
  const std::string& name = endpoint_.tls->options().server_name;
  bridge_ = std::make_unique<TlsBridge>(loop_, *endpoint_.tls, name.empty() ? address_.host : name);
  sockaddr_storage addr{};
  const bool v6 = ip.find(':') != std::string::npos;
  const int rc = v6 ? uv_ip6_addr(ip.c_str(), address_.port, reinterpret_cast<sockaddr_in6*>(&addr))
                    : uv_ip4_addr(ip.c_str(), address_.port, reinterpret_cast<sockaddr_in*>(&addr));
  std::string why;
  if (rc != 0) {
    why = std::string("bad address ") + ip + ": " + uv_strerror(rc);
  } else if (bridge_->connect(
                 reinterpret_cast<const sockaddr*>(&addr), [this](const std::string& failed) { onTlsUp(failed); },
                 why)) {
    return;
  }
  fail(why);
}

void Connection::onTlsUp(const std::string& why) {
  if (!why.empty()) {
    fail(why);  // the bridge is closed; the next attempt replaces it
    return;
  }
  redisAsyncContext* ac = redisAsyncConnectUnix(endpoint_.bridge->path().c_str());
  if (ac == nullptr || ac->err != 0) {
    attachContext(ac);  // reports it
    return;
  }
  std::string error;
  const int fd = endpoint_.bridge->acceptOwn(error);
  // Nothing reaches hiredis before it has connected and sent the handshake
  // (onConnect resumes).
  bridge_->pauseDelivery();
  if (fd < 0 || !bridge_->attach(fd, error)) {
    redisAsyncFree(ac);
    fail("TLS bridge: " + error);
    return;
  }
  attachContext(ac);
  if (ac_ == ac) {
    bridge_->deliverTo([this](const char* data, size_t n) { onTlsPlaintext(data, n); });
  }
}

bool Connection::writeInProcess() {
  if (!bridge_ || ac_ == nullptr || !compat::connected(ac_)) {
    return false;  // plaintext; or hiredis waits for its socket to connect
  }
  if (inIoPhase()) {
    write_due_ = true;  // the check phase sends the burst (onCheck)
  } else {
    flushToBridge();
  }
  return true;
}

void Connection::flushToBridge() {
  if (ac_ == nullptr || !bridge_) {
    return;
  }
  const std::string_view out = compat::pendingOutput(ac_);
  if (!out.empty()) {
    bridge_->send(out.data(), out.size());  // a failure closes hiredis's socket: it sees why
    compat::consumeOutput(ac_);
  }
}

void Connection::onTlsPlaintext(const char* data, size_t n) {
  if (ac_ == nullptr) {
    return;
  }
  // The callbacks may stop or destroy this connection (and its bridge).
  const std::shared_ptr<const bool> alive = bridge_->aliveToken();
  compat::feedAndProcess(ac_, data, n);
  if (*alive) {
    checkReplyBound();
  }
}

}  // namespace evh::redis
