// The TLS bridge between hiredis's local socket and Redis: see tls_bridge.h.
#include "redis/tls_bridge.h"

#include "loop/io_phase.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace evh::redis {
namespace {

constexpr size_t kReadSize = 64 * 1024;
// What fromRedis decrypts into before handing it to the sink: records are
// gathered, so that hiredis parses many records' replies in one round.
constexpr size_t kPlainBuffer = 64 * 1024;

struct WriteReq {
  uv_write_t req;
  std::unique_ptr<char[]> data;
};

void allocate(uv_handle_t*, size_t, uv_buf_t* buf) {
  // One read at a time per handle; the data is consumed (copied into the
  // other side's write) before the next read.
  thread_local char buffer[kReadSize];
  *buf = uv_buf_init(buffer, sizeof buffer);
}

bool isIpAddress(const std::string& name) {
  unsigned char ip[16];
  return inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
}

}  // namespace

TlsBridge::TlsBridge(uv_loop_t* loop, const TlsContext& tls, std::string server_name)
    : loop_(loop), server_name_(std::move(server_name)) {
  ERR_clear_error();
  ssl_ = SSL_new(tls.get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    ssl_ = nullptr;
    in_ = out_ = nullptr;
    return;  // connect() reports it
  }
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_connect_state(ssl_);
  if (isIpAddress(server_name_)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name_.c_str());
  } else {
    // SSL_set_tlsext_host_name, without the macro's C cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, server_name_.data());
    SSL_set1_host(ssl_, server_name_.c_str());
  }
}

TlsBridge::~TlsBridge() {
  *alive_ = false;
  closed_ = true;
  if (connecting_ != nullptr) {
    connecting_->data = nullptr;  // its callback frees it and touches nothing else
  }
  closeBoth();
  SSL_free(ssl_);  // frees the BIOs too
}

bool TlsBridge::connect(const sockaddr* addr, Connected done, std::string& why) {
  if (ssl_ == nullptr) {
    why = "cannot start a TLS session: " + takeOpenSslErrors("out of memory");
    return false;
  }
  tcp_ = makeUvHandle<uv_tcp_t>(loop_, uv_tcp_init);
  if (!tcp_) {
    why = "cannot make a TCP handle";
    return false;
  }
  tcp_->data = this;
  uv_tcp_nodelay(tcp_.get(), 1);
  auto* req = new uv_connect_t;
  req->data = this;
  if (const int rc = uv_tcp_connect(req, tcp_.get(), addr, &TlsBridge::onTcpConnect); rc != 0) {
    delete req;
    why = uv_strerror(rc);
    return false;
  }
  connecting_ = req;
  done_ = std::move(done);
  return true;
}

void TlsBridge::onTcpConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<TlsBridge*>(req->data);
  delete req;
  if (self == nullptr) {
    return;
  }
  self->connecting_ = nullptr;
  if (status != 0) {
    self->fail(std::string(uv_strerror(status)));  // "connection refused", ...
    return;
  }
  uv_tcp_keepalive(self->tcp_.get(), 1, 60);  // kernel-level half-open detection, as for plaintext
  uv_read_start(reinterpret_cast<uv_stream_t*>(self->tcp_.get()), allocate, &TlsBridge::onTcpRead);
  self->handshakeStep();
}

void TlsBridge::handshakeStep() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (!flushToRedis()) {
    return;
  }
  if (rc == 1) {
    handshaken_ = true;
    Connected done = std::move(done_);
    done_ = nullptr;
    done("");
    return;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return;  // more from Redis first
  }
  fail(handshakeFailure(err));
}

std::string TlsBridge::handshakeFailure(int ssl_error) {
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return "TLS handshake failed: " + describeVerifyFailure(verify, server_name_);
  }
  const unsigned long first = ERR_peek_error();
  const int reason = ERR_GET_REASON(first);
  if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
    ERR_clear_error();
    return "TLS handshake failed: the server does not speak TLS (a plaintext Redis port? redis.tls is on)";
  }
  if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
    return "TLS handshake failed: the server closed the connection (" + takeOpenSslErrors("no TLS answer") + ")";
  }
  return "TLS handshake failed: " + takeOpenSslErrors("unknown error");
}

std::string TlsBridge::stuckAt() const {
  if (connecting_ != nullptr) {
    return "the TCP connect";
  }
  if (received_ == 0) {
    return "no answer to the TLS hello: is this a plaintext Redis port? (redis.tls is on)";
  }
  return "the TLS handshake";
}

bool TlsBridge::attach(int local_fd, std::string& why) {
  local_ = makeUvHandle<uv_pipe_t>(loop_, uv_pipe_init, 0);
  if (!local_) {
    ::close(local_fd);
    why = "cannot make a pipe handle";
    return false;
  }
  if (const int rc = uv_pipe_open(local_.get(), local_fd); rc != 0) {
    ::close(local_fd);
    why = std::string("uv_pipe_open: ") + uv_strerror(rc);
    return false;
  }
  local_->data = this;
  // Only its end (hiredis freed its context) is expected from here.
  uv_read_start(reinterpret_cast<uv_stream_t*>(local_.get()), allocate, &TlsBridge::onLocalRead);
  return true;
}

void TlsBridge::deliverTo(Sink sink) {
  sink_ = std::move(sink);
  plain_.reset(new char[kPlainBuffer]);
  fromRedis();  // what came with the end of the handshake
}

void TlsBridge::send(const char* data, size_t n) {
  if (!closed_) {
    toRedis(data, n);
  }
}

void TlsBridge::pauseDelivery() {
  if (delivery_paused_) {
    return;
  }
  delivery_paused_ = true;
  if (!closed_ && tcp_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
  }
}

void TlsBridge::resumeDelivery() {
  if (!delivery_paused_) {
    return;
  }
  delivery_paused_ = false;
  if (closed_ || !tcp_) {
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_.get()), allocate, &TlsBridge::onTcpRead);
  // What the session holds already is delivered soon, not from inside this
  // call (its caller is in the middle of something).
  if (!resume_) {
    resume_ = makeUvHandle<uv_idle_t>(loop_, uv_idle_init);
    if (!resume_) {
      fail("cannot make an idle handle");
      return;
    }
    resume_->data = this;
  }
  uv_idle_start(resume_.get(), [](uv_idle_t* h) {
    uv_idle_stop(h);
    auto* self = static_cast<TlsBridge*>(h->data);
    if (self != nullptr && !self->closed_) {
      self->fromRedis();  // not an I/O callback: its writes go out at once (loop/io_phase.h)
    }
  });
}

void TlsBridge::onTcpRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<TlsBridge*>(s->data);
  if (self == nullptr || self->closed_ || n == 0) {
    return;
  }
  if (n < 0) {
    self->fail(n == UV_EOF ? std::string()
                           : std::string("connection to Redis lost: ") + uv_strerror(static_cast<int>(n)));
    return;
  }
  self->received_ += static_cast<uint64_t>(n);
  BIO_write(self->in_, buf->base, static_cast<int>(n));
  // Replies handled from here may send commands: they wait for the check
  // phase and go out together (loop/io_phase.h).
  IoPhaseScope io;
  if (!self->handshaken_) {
    self->handshakeStep();
  } else {
    self->fromRedis();
  }
}

void TlsBridge::fromRedis() {
  if (!sink_) {
    return;  // waits in the session until deliverTo()
  }
  const std::shared_ptr<bool> alive = alive_;  // the sink may destroy the bridge
  while (!delivery_paused_ && !closed_) {
    // Decrypt what is buffered into one chunk, many records at once.
    size_t used = 0;
    int err = SSL_ERROR_NONE;
    while (used < kPlainBuffer) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, plain_.get() + used, static_cast<int>(kPlainBuffer - used));
      if (n <= 0) {
        err = SSL_get_error(ssl_, n);
        break;
      }
      used += static_cast<size_t>(n);
    }
    // Read the error now: what the sink does (commands sent) touches
    // OpenSSL's error queue.
    const bool failed = err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ;
    const std::string why = failed ? readFailure(err) : std::string();
    if (used > 0) {
      // A copy: the call may replace the sink or destroy the bridge (and
      // with it sink_) while it runs.
      const Sink sink = sink_;
      sink(plain_.get(), used);
      if (!*alive || closed_) {
        return;
      }
    }
    if (!flushToRedis()) {  // a key update or ticket may want an answer
      return;
    }
    if (failed) {
      fail(why);
      return;
    }
    if (err == SSL_ERROR_WANT_READ) {
      return;
    }
    // The chunk was full: more may be buffered.
  }
}

std::string TlsBridge::readFailure(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    return {};  // Redis closed the session cleanly
  }
  const unsigned long e = ERR_peek_error();
  if (ERR_GET_REASON(e) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
      ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) {
    ERR_clear_error();
    return "Redis refused the TLS session: it requires a client certificate (set redis.tls.cert_file and key_file)";
  }
  return "TLS error from Redis: " + takeOpenSslErrors("unknown error");
}

void TlsBridge::onLocalRead(uv_stream_t* s, ssize_t n, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<TlsBridge*>(s->data);
  if (self == nullptr || self->closed_ || n == 0) {
    return;
  }
  if (n < 0) {
    // hiredis closed its socket: the connection is over on purpose.
    SSL_shutdown(self->ssl_);
    self->flushToRedis();
    self->fail(std::string());
    return;
  }
  // Every byte for Redis goes through send(): the Connection takes hiredis's
  // output buffer. Bytes here mean hiredis wrote to its socket itself (its
  // poll's error path tells it the socket is writable): they may overtake,
  // or follow, commands send() carries, so which reply answers which
  // command is no longer known. The connection is ended: its commands fail
  // with a reason, and the owner reconnects.
  self->fail("TLS bridge: hiredis wrote " + std::to_string(n) +
             " byte(s) to its socket instead of handing them over (out of order with the commands sent): "
             "connection dropped");
}

void TlsBridge::toRedis(const char* data, size_t n) {
  while (n > 0) {
    ERR_clear_error();
    const int w = SSL_write(ssl_, data, static_cast<int>(n));
    if (w <= 0) {
      fail("TLS error writing to Redis: " + takeOpenSslErrors("unknown error"));
      return;
    }
    data += w;
    n -= static_cast<size_t>(w);
    if (!flushToRedis()) {
      return;
    }
  }
}

bool TlsBridge::flushToRedis() {
  char* data = nullptr;
  const long pending = BIO_get_mem_data(out_, &data);
  if (pending <= 0) {
    return true;
  }
  const bool ok = write(reinterpret_cast<uv_stream_t*>(tcp_.get()), data, static_cast<size_t>(pending));
  (void)BIO_reset(out_);
  return ok;
}

bool TlsBridge::write(uv_stream_t* to, const char* data, size_t n) {
  std::unique_ptr<char[]> copy(new char[n]);
  std::memcpy(copy.get(), data, n);
  return write(to, std::move(copy), n);
}

bool TlsBridge::write(uv_stream_t* to, std::unique_ptr<char[]> data, size_t n) {
  if (closed_) {
    return false;
  }
  auto* w = new WriteReq{};
  w->data = std::move(data);
  const uv_buf_t buf = uv_buf_init(w->data.get(), static_cast<unsigned>(n));
  if (const int rc = uv_write(&w->req, to, &buf, 1, &TlsBridge::onWritten); rc != 0) {
    delete w;
    fail(std::string("write: ") + uv_strerror(rc));
    return false;
  }
  return true;
}

void TlsBridge::onWritten(uv_write_t* req, int status) {
  std::unique_ptr<WriteReq> w(reinterpret_cast<WriteReq*>(req));
  auto* self = static_cast<TlsBridge*>(req->handle->data);
  if (self == nullptr || self->closed_) {
    return;
  }
  if (status != 0) {
    self->fail(std::string("write: ") + uv_strerror(status));
  }
}

void TlsBridge::closeBoth() noexcept {
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(tcp_.get()), reinterpret_cast<uv_handle_t*>(local_.get()),
                         reinterpret_cast<uv_handle_t*>(resume_.get())}) {
    if (h != nullptr) {
      h->data = nullptr;  // the write callbacks uv_close cancels see no bridge
    }
  }
  resume_.close();
  local_.close();
  tcp_.close();
}

void TlsBridge::fail(std::string why) {
  if (closed_) {
    return;
  }
  closed_ = true;
  failure_ = std::move(why);
  // Closing hiredis's side makes it see the end of its socket, as when
  // Redis closes a plaintext connection.
  closeBoth();
  if (done_) {
    Connected done = std::move(done_);
    done_ = nullptr;
    done(failure_.empty() ? "the server closed the connection during the TLS handshake" : failure_);
  }
}

}  // namespace evh::redis
