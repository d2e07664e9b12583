// The private local socket hiredis connects to when a connection goes over
// TLS (see tls_bridge.h): a Unix socket in a folder only evhost's user can
// enter (mkdtemp, 0700), made before the loop runs and removed with this
// object. hiredis 0.14 cannot be handed a connected descriptor, so it
// connects here, and the bridge takes the other end at once (accept right
// after the connect: a Unix socket's connect completes at once, so the
// connection is already queued).
#pragma once

#include <stdexcept>
#include <string>

namespace evh::redis {

class BridgeListener {
 public:
  // Makes the folder under $TMPDIR (or /tmp) and listens. Throws
  // std::runtime_error naming what failed. THREAD: main, before the loop runs.
  BridgeListener();
  ~BridgeListener();  // closes, removes the socket file and the folder
  BridgeListener(const BridgeListener&) = delete;
  BridgeListener& operator=(const BridgeListener&) = delete;

  const std::string& path() const noexcept { return path_; }
  // The connection queued by the connect just made in this process, or -1
  // with `error` set (another process's connections, from the same user
  // only -- the folder is 0700 -- are closed). Non-blocking. THREAD: loop.
  int acceptOwn(std::string& error) const;

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

}  // namespace evh::redis
