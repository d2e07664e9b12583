// One TLS connection to Redis, bridged for hiredis: a TCP connection and an
// OpenSSL session (memory BIOs) on the loop, and the local end of the
// socket hiredis connected to (bridge_listener.h). Once deliverTo() is
// called, no payload crosses that socket: what Redis sends is decrypted and
// handed to the sink (the Connection feeds it to hiredis's reader), and the
// Connection hands send() what hiredis formatted (its output buffer). The
// local socket is kept only so that hiredis has a descriptor, and so that
// either side closing is seen by the other (a byte hiredis writes there
// itself ends the connection: it could be out of order with send()'s): hiredis sees the end of its
// socket exactly as it would see Redis close, and failure() tells why when
// TLS was the cause. Why not through the socket: that cost a copy, a write
// and hiredis's read each way per burst -- about a quarter of the CPU a TLS
// event took (docs/benchmarks/issue14-tls-and-signing.md, "Issue 14: TLS bytes handed to hiredis in
// process").
//
// Backpressure: pauseDelivery() stops reading Redis at once (what is
// already decrypted or buffered waits in the session), as hiredis not
// reading a plaintext socket would; Redis then buffers. When Redis does not
// read, send()'s bytes queue on the TCP handle.
//
// THREAD: loop. Owned by its redis::Connection, one per connection attempt.
#pragma once

#include "loop/uv_handle.h"
#include "redis/tls_context.h"

#include <openssl/ssl.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace evh::redis {

class TlsBridge {
 public:
  // Called once: with "" when the TLS session is up, or with why it could
  // not be (the bridge is then closed).
  using Connected = std::function<void(const std::string& why)>;

  // `server_name`: SNI and the name Redis's certificate must carry (an IP
  // address is checked against the certificate's IP entries, and not sent
  // as SNI).
  TlsBridge(uv_loop_t* loop, const TlsContext& tls, std::string server_name);
  ~TlsBridge();  // closes both sides; no callback runs after
  TlsBridge(const TlsBridge&) = delete;
  TlsBridge& operator=(const TlsBridge&) = delete;

  // TCP connect to `addr`, then the TLS handshake. False (and `done` never
  // runs) when it cannot even start; `why` says why.
  bool connect(const sockaddr* addr, Connected done, std::string& why);
  // Takes `local_fd` (the accepted end of hiredis's socket; owned from now
  // on, closed on failure too) and starts carrying bytes both ways.
  bool attach(int local_fd, std::string& why);
  // From now on, what Redis sends goes to `sink` (plaintext, in order, in
  // chunks of any size), not to the local socket; also what came before.
  // The sink may destroy the bridge (aliveToken() says so).
  using Sink = std::function<void(const char* data, size_t n)>;
  void deliverTo(Sink sink);
  // Encrypts `n` bytes and sends them to Redis. A failure closes the bridge
  // (failure() says why; hiredis then sees its socket end).
  void send(const char* data, size_t n);
  // Stop / resume handing the sink what Redis sends (a paused stream). A
  // resume delivers what waited from an idle callback, never from inside
  // the call.
  void pauseDelivery();
  void resumeDelivery();
  // False once the bridge is destroyed: a caller that runs the sink's
  // effects checks it before touching the bridge or its owner again.
  std::shared_ptr<const bool> aliveToken() const { return alive_; }
  // Why the connection ended on the TLS side ("" when it did not: hiredis
  // closed it, or it is still up).
  const std::string& failure() const noexcept { return failure_; }
  // Where a connection still not up is stuck, for the connect timeout's
  // message: the TCP connect, a server that answered the TLS hello with
  // nothing (a plaintext Redis port waits for a line that never comes), or
  // the handshake under way.
  std::string stuckAt() const;

 private:
  static void onTcpConnect(uv_connect_t* req, int status);
  static void onTcpRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void onLocalRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void onWritten(uv_write_t* req, int status);
  void handshakeStep();
  void fromRedis();  // decrypt what is buffered and hand it to the sink
  // Why SSL_read failed with `ssl_error` ("" for Redis closing the session).
  std::string readFailure(int ssl_error);
  void toRedis(const char* data, size_t n);
  bool flushToRedis();  // what OpenSSL wrote into its output BIO, to the TCP socket
  bool write(uv_stream_t* to, const char* data, size_t n);
  // The same for a buffer already owned (no copy).
  bool write(uv_stream_t* to, std::unique_ptr<char[]> data, size_t n);
  void closeBoth() noexcept;
  void fail(std::string why);  // records why, closes both sides, tells `done_` if still connecting
  std::string handshakeFailure(int ssl_error);

  uv_loop_t* loop_;
  std::string server_name_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // bytes from Redis, for OpenSSL (owned by ssl_)
  BIO* out_ = nullptr;  // bytes OpenSSL wrote, for Redis (owned by ssl_)
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_pipe_t> local_;
  uv_connect_t* connecting_ = nullptr;  // the TCP connect in flight (freed by its callback)
  Connected done_;
  bool handshaken_ = false;
  uint64_t received_ = 0;  // bytes from Redis so far
  bool closed_ = false;
  std::string failure_;
  Sink sink_;                      // deliverTo()'s; empty: what Redis sends waits in the session
  bool delivery_paused_ = false;   // pauseDelivery(): not reading Redis
  UvHandle<uv_idle_t> resume_;     // delivers what waited, after resumeDelivery()
  std::unique_ptr<char[]> plain_;  // what SSL_read decrypts into, for the sink
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::redis
