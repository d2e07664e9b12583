// Connection's TLS connect (redis.tls): the bridge first, then hiredis on
// the bridge's local socket. See tls_bridge.h and docs/architecture.md,
// "TLS to Redis".
#include "redis/bridge_listener.h"
#include "redis/connection.h"

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
  if (fd < 0 || !bridge_->attach(fd, error)) {
    redisAsyncFree(ac);
    fail("TLS bridge: " + error);
    return;
  }
  attachContext(ac);
}

}  // namespace evh::redis
