// The ops listener's h2o glue: its thread and loop, accepting (and refusing)
// connections, routing requests to the endpoints, and the shutdown that
// closes every connection before h2o's context is disposed.
#include "ops/http_server.h"

#include "common/log.h"
#include "config/sha256.h"
#include "loop/uv_handle.h"
#include "ops/build_info.h"
#include "ops/endpoints.h"
#include "ops/process_stats.h"
#include "ops/reload_link.h"

#include <h2o.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>

namespace evh::ops {
namespace {

// 127.0.0.0/8, ::1, or an IPv4-mapped loopback address.
bool isLoopback(const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
    return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
  }
  if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
    if (IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr)) {
      return true;
    }
    return IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr) && in6.sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// Nothing evhost serves takes a body: a larger one is refused (413) before
// it is buffered.
constexpr size_t kMaxRequestBody = 16 * 1024;
// The ops thread's niceness above the process's: when the cores are busy,
// the scheduler gives the event loop the CPU before rendering a scrape or
// serving a crowd of connections (nice 10 gets about a tenth of nice 0's
// share when they compete, and is preempted by it on wake-up).
constexpr int kOpsNiceness = 10;
// How long the shutdown waits for h2o to close its connections once their
// sockets are shut down (it takes one loop iteration or two).
constexpr uint64_t kDrainMs = 5000;

// 50 us .. 5 s: a scrape waits for the loop and, for streams, for Redis
// (at most 0.5 s: app::Scraper's budget).
const Buckets kScrapeBuckets{
    {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000}, 1e6};

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// libh2o 2.2 keeps the memory-pool chunks a thread frees in a free list of
// that thread's (`static __thread h2o_mem_recycle_t mempool_allocator` in
// lib/common/memory.c, at most 16 chunks of 4 KiB) and has no call to empty
// it: once the ops thread has ended they are unreachable, and LeakSanitizer
// reports them. Bounded, once per ops thread; only allocations made through
// h2o's recycling allocator are exempted. In the sanitizer builds only.
extern "C" __attribute__((visibility("default"), used)) const char* __lsan_default_suppressions() {
  return "leak:h2o_mem_alloc_recycle\n";
}
#endif

class HttpServer::Impl {
 public:
  Impl(Options options, LoopAccess access, Registry& stats);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  uint16_t port() const noexcept { return port_; }
  std::string url() const;
  void stop();

 private:
  // h2o's handler with the way back to this object (h2o allocates it, sized
  // by h2o_create_handler, and passes the h2o_handler_t part back).
  struct Handler {
    h2o_handler_t super;
    Impl* impl;
  };

  void listen();
  void run();
  void lowerPriority();
  void dispose();
  static void onConnection(uv_stream_t* server, int status);
  static void onConnectionClosed(uv_handle_t* handle);
  static int onRequest(h2o_handler_t* handler, h2o_req_t* req);
  static void onStop(uv_async_t* async);
  static void onDrainCheck(uv_timer_t* timer);
  void handle(h2o_req_t* req);
  void handleReload(h2o_req_t* req, std::string_view method);
  // Why POST /reload is refused to this request (token, or peer), if it is.
  std::optional<Response> refuseReload(h2o_req_t* req) const;
  void answer(h2o_req_t* req, Endpoint endpoint, Format format, const LoopAnswer& loop);
  void respond(h2o_req_t* req, Endpoint endpoint, const Response& response);
  Counter requests(Endpoint endpoint, int status);

  Options options_;
  Scope scope_;  // before every handle on its series
  Counter rejected_;
  Gauge connections_open_;
  uv_loop_t loop_{};
  h2o_globalconf_t config_{};
  h2o_context_t ctx_{};
  h2o_accept_ctx_t accept_{};
  std::unique_ptr<LoopLink> link_;
  std::unique_ptr<ReloadLink> reload_;  // null: no /reload (LoopAccess::reload unset)
  UvHandle<uv_tcp_t> listener_;
  UvHandle<uv_async_t> stop_;
  UvHandle<uv_timer_t> drain_;
  std::unordered_set<uv_tcp_t*> connections_;  // handed to h2o, not closed yet
  std::map<std::pair<Endpoint, int>, Counter> requests_;
  std::thread thread_;
  uint16_t port_ = 0;
  uint64_t drain_until_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;  // connections h2o never closed: nothing of the loop may be freed
  bool disposed_ = false;
};

HttpServer::Impl::Impl(Options options, LoopAccess access, Registry& stats)
    : options_(std::move(options)), scope_(stats) {
  rejected_ = scope_.counter("evhost_ops_http_rejected_total",
                             "Connections to the ops listener closed at once: the most connections were open");
  connections_open_ = scope_.gauge("evhost_ops_http_connections", "Open connections to the ops listener");
  const Histogram scrape_seconds = scope_.histogram(
      "evhost_ops_scrape_seconds",
      "From the ops listener asking the event loop for a snapshot to its answer: the wait for the loop, Redis's "
      "answers about streams, the collect",
      kScrapeBuckets);
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    throw std::runtime_error(std::string("ops listener: uv_loop_init: ") + uv_strerror(rc));
  }
  loop_.data = this;

  h2o_config_init(&config_);
  config_.server_name = h2o_iovec_init(H2O_STRLIT("evhost"));
  config_.max_request_entity_size = kMaxRequestBody;
  config_.http1.req_timeout = options_.request_timeout_ms;
  config_.http1.upgrade_to_http2 = 0;
  h2o_hostconf_t* host = h2o_config_register_host(&config_, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t* path = h2o_config_register_path(host, "/", 0);
  auto* handler = reinterpret_cast<Handler*>(h2o_create_handler(path, sizeof(Handler)));
  handler->super.on_req = &Impl::onRequest;
  handler->impl = this;
  h2o_context_init(&ctx_, &loop_, &config_);
  accept_.ctx = &ctx_;
  accept_.hosts = config_.hosts;

  try {
    if (access.reload) {
      reload_ =
          std::make_unique<ReloadLink>(&loop_, ReloadAccess{access.post, access.reload}, options_.reload_timeout_ms);
    }
    link_ = std::make_unique<LoopLink>(&loop_, std::move(access), options_.loop, scrape_seconds);
    stop_ = makeUvHandle<uv_async_t>(&loop_, uv_async_init, &Impl::onStop);
    drain_ = makeUvHandle<uv_timer_t>(&loop_, uv_timer_init);
    if (!stop_ || !drain_) {
      throw std::runtime_error("ops listener: cannot make its libuv handles");
    }
    listen();
  } catch (...) {
    dispose();  // on this thread: the ops thread never started
    h2o_config_dispose(&config_);
    throw;
  }
  thread_ = std::thread([this] { run(); });
}

HttpServer::Impl::~Impl() {
  stop();
  if (!abandoned_) {
    h2o_config_dispose(&config_);
  }
}

std::string HttpServer::Impl::url() const {
  const bool v6 = options_.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(port_);
}

void HttpServer::Impl::listen() {
  const std::string address =
      (options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host) + ":" +
      std::to_string(options_.port);
  const auto fail = [&](int rc) {
    throw std::runtime_error("ops listener: cannot listen on " + address + " (" + options_.where +
                             "): " + uv_strerror(rc) + "; give another address, or \"\" to turn the listener off");
  };
  sockaddr_storage addr{};
  int rc = options_.host.find(':') != std::string::npos
               ? uv_ip6_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in6*>(&addr))
               : uv_ip4_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) {
    fail(rc);
  }
  listener_ = makeUvHandle<uv_tcp_t>(&loop_, uv_tcp_init);
  if (!listener_) {
    throw std::runtime_error("ops listener: cannot make its libuv handles");
  }
  listener_->data = this;
  // libuv reports EADDRINUSE from uv_listen rather than uv_tcp_bind.
  rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), SOMAXCONN, &Impl::onConnection);
  }
  if (rc != 0) {
    fail(rc);
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  rc = uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  if (rc != 0) {
    fail(rc);
  }
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
}

void HttpServer::Impl::run() {
  // A client gone before its answer is written makes the write fail with
  // EPIPE -- and raise SIGPIPE, whose default action ends the process,
  // unless the writing thread blocks it. Only this thread writes to clients.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  pthread_setname_np(pthread_self(), "evh-ops");  // what top -H and /proc/<pid>/task/*/comm show
  lowerPriority();
  uv_run(&loop_, UV_RUN_DEFAULT);  // until onDrainCheck stops it
  if (abandoned_) {
    return;
  }
  dispose();
}

// Linux's nice is per thread (PRIO_PROCESS with a thread id), and raising it
// needs no privilege.
void HttpServer::Impl::lowerPriority() {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && ::setpriority(PRIO_PROCESS, tid, std::min(now + kOpsNiceness, 19)) == 0) {
    return;
  }
  log::host().warn("ops listener: cannot lower its thread's CPU priority ({}); it competes with event handling",
                   std::strerror(errno));
}

// After uv_run has returned, never inside a callback: h2o_context_dispose
// runs the loop itself.
void HttpServer::Impl::dispose() {
  if (disposed_) {
    return;
  }
  disposed_ = true;
  if (link_) {
    link_->close();
  }
  if (reload_) {
    reload_->close();
  }
  listener_.close();
  stop_.close();
  drain_.close();
  h2o_context_dispose(&ctx_);
  uv_run(&loop_, UV_RUN_DEFAULT);  // every close callback
  if (uv_loop_close(&loop_) != 0) {
    log::host().error("ops listener: its loop closed with handles still open (a bug)");
  }
}

void HttpServer::Impl::stop() {
  if (!thread_.joinable()) {
    return;
  }
  uv_async_send(stop_.get());  // closed by the ops thread only after it ran onStop
  thread_.join();
}

void HttpServer::Impl::onStop(uv_async_t* async) {
  auto* self = static_cast<Impl*>(async->loop->data);
  self->stopping_ = true;
  self->listener_.close();
  self->stop_.close();
  // Requests waiting for the loop get their 503 first; then no connection
  // is kept alive after its answer (the flag h2o_context_request_shutdown
  // sets; that call would also start HTTP/2's graceful shutdown, whose
  // one-second timer outlives h2o_context_dispose)...
  self->link_->close();
  if (self->reload_) {
    self->reload_->close();
  }
  self->ctx_.shutdown_requested = 1;
  // ... and every socket is shut down under h2o, which then sees the end of
  // its reads (or a failed write) and closes the connection its usual way.
  // h2o 2.2 has no call to close its connections.
  for (uv_tcp_t* tcp : self->connections_) {
    uv_os_fd_t fd = -1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
      ::shutdown(fd, SHUT_RDWR);
    }
  }
  self->drain_until_ = uv_now(&self->loop_) + kDrainMs;
  uv_timer_start(self->drain_.get(), &Impl::onDrainCheck, 0, 5);
}

void HttpServer::Impl::onDrainCheck(uv_timer_t* timer) {
  auto* self = static_cast<Impl*>(timer->loop->data);
  if (!self->connections_.empty()) {
    if (uv_now(&self->loop_) < self->drain_until_) {
      return;
    }
    // Never seen: h2o closes a connection whose socket was shut down at its
    // next read or write. Freeing what it still uses would be worse than
    // leaving it, at the end of the process.
    log::host().error("ops listener: {} connection(s) still open {} ms after shutting them down; left as they are",
                      self->connections_.size(), kDrainMs);
    self->abandoned_ = true;
  }
  uv_timer_stop(timer);
  uv_stop(&self->loop_);
}

void HttpServer::Impl::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Impl*>(server->loop->data);
  if (status != 0) {
    return;  // libuv's own accept failure (EMFILE: it sheds the connection itself)
  }
  auto* tcp = new uv_tcp_t();
  if (uv_tcp_init(server->loop, tcp) != 0) {
    delete tcp;
    return;
  }
  const auto free_tcp = [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); };
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_tcp);
    return;
  }
  if (self->stopping_ || self->connections_.size() >= self->options_.max_connections) {
    // Accepted and closed at once (uv_close closes the socket now): the
    // client learns at once, and the backlog does not fill with it.
    self->rejected_.inc();
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_tcp);
    return;
  }
  uv_tcp_nodelay(tcp, 1);
  self->connections_.insert(tcp);
  self->connections_open_.set(static_cast<int64_t>(self->connections_.size()));
  h2o_accept(&self->accept_, h2o_uv_socket_create(reinterpret_cast<uv_stream_t*>(tcp), &Impl::onConnectionClosed));
}

// h2o's socket closed (and freed its own part; handle->data pointed at it).
void HttpServer::Impl::onConnectionClosed(uv_handle_t* handle) {
  auto* self = static_cast<Impl*>(handle->loop->data);
  auto* tcp = reinterpret_cast<uv_tcp_t*>(handle);
  self->connections_.erase(tcp);
  self->connections_open_.set(static_cast<int64_t>(self->connections_.size()));
  delete tcp;
}

int HttpServer::Impl::onRequest(h2o_handler_t* handler, h2o_req_t* req) {
  Impl* self = reinterpret_cast<Handler*>(handler)->impl;
  try {
    self->handle(req);
  } catch (const std::exception& e) {
    // Before an answer was sent (every path answers last): a 500.
    log::host().error("ops listener: {}", e.what());
    self->respond(req, Endpoint::Other, Response{500, "text/plain; charset=utf-8", "internal error\n", false});
  }
  return 0;
}

void HttpServer::Impl::handle(h2o_req_t* req) {
  const Endpoint endpoint = endpointOf(std::string_view(req->path_normalized.base, req->path_normalized.len));
  if (endpoint == Endpoint::Other) {
    respond(req, endpoint, notFound());
    return;
  }
  const std::string_view method(req->method.base, req->method.len);
  if (endpoint == Endpoint::Reload) {
    handleReload(req, method);
    return;
  }
  if (method != "GET" && method != "HEAD") {
    respond(req, endpoint, methodNotAllowed());
    return;
  }
  Format format = Format::Prometheus;
  if (endpoint == Endpoint::Metrics) {
    const ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    if (i != -1) {
      const h2o_iovec_t& v = req->headers.entries[i].value;
      format = negotiate(std::string_view(v.base, v.len));
    }
  }
  if (endpoint == Endpoint::Healthz && options_.loop_silent_ms) {
    // Liveness is the watchdog's to measure, off the loop: a stalled loop
    // fails it within the bound, whatever the loop is stuck in.
    respond(req, endpoint, healthzResponse(options_.loop_silent_ms(), options_.liveness_timeout_ms));
    return;
  }
  // The request stays valid until answered: h2o reads nothing more from its
  // connection (nor times it out) while a handler has it.
  link_->get(partsOf(endpoint),
             [this, req, endpoint, format](const LoopAnswer& loop) { answer(req, endpoint, format, loop); });
}

void HttpServer::Impl::handleReload(h2o_req_t* req, std::string_view method) {
  if (!reload_) {
    respond(req, Endpoint::Reload, notFound());
    return;
  }
  if (method != "POST") {
    respond(req, Endpoint::Reload, methodNotAllowed(Endpoint::Reload));
    return;
  }
  if (std::optional<Response> refused = refuseReload(req)) {
    respond(req, Endpoint::Reload, *refused);
    return;
  }
  // The request stays valid until answered (as for a scrape).
  reload_->ask([this, req](const Response& r) { respond(req, Endpoint::Reload, r); });
}

std::optional<Response> HttpServer::Impl::refuseReload(h2o_req_t* req) const {
  if (options_.token.empty()) {
    sockaddr_storage peer{};
    const socklen_t len = req->conn->callbacks->get_peername(req->conn, reinterpret_cast<sockaddr*>(&peer));
    if (len == 0 || !isLoopback(peer)) {
      return reloadRefused(403,
                           "POST /reload from another host needs an ops token: set ops.token_file in evhost's "
                           "configuration and send Authorization: Bearer <token>");
    }
    return std::nullopt;
  }
  const ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
  if (i == -1) {
    return reloadRefused(401, "POST /reload needs the ops token: Authorization: Bearer <token>");
  }
  const h2o_iovec_t& v = req->headers.entries[i].value;
  std::string_view given(v.base, v.len);
  constexpr std::string_view kScheme = "bearer ";
  if (given.size() < kScheme.size() || !h2o_lcstris(given.data(), kScheme.size(), kScheme.data(), kScheme.size())) {
    return reloadRefused(401, "POST /reload needs the ops token as a bearer token: Authorization: Bearer <token>");
  }
  given.remove_prefix(kScheme.size());
  // Digests of equal length, compared in constant time: neither the
  // token's bytes nor its length leak through the answer's timing.
  const std::string a = ::evh::sha256Hex(given);
  const std::string b = ::evh::sha256Hex(options_.token);
  if (CRYPTO_memcmp(a.data(), b.data(), a.size()) != 0) {
    return reloadRefused(403, "POST /reload: the ops token does not match");
  }
  return std::nullopt;
}

void HttpServer::Impl::answer(h2o_req_t* req, Endpoint endpoint, Format format, const LoopAnswer& loop) {
  switch (endpoint) {
    case Endpoint::Metrics: {
      std::vector<FamilySample> own;
      if (loop.snapshot != nullptr) {  // else a 503: nothing to read /proc for
        own = processFamilies();
        own.push_back(buildInfo());
      }
      respond(req, endpoint, metricsResponse(loop, format, own));
      return;
    }
    case Endpoint::Healthz:
      respond(req, endpoint, healthzResponse(loop));
      return;
    case Endpoint::Readyz:
      respond(req, endpoint, readyzResponse(loop));
      return;
    case Endpoint::Status:
      respond(req, endpoint, statusResponse(loop));
      return;
    case Endpoint::HealthPubsub:
      respond(req, endpoint, pubsubResponse(loop));
      return;
    case Endpoint::Reload:
    case Endpoint::Other:
      break;
  }
  respond(req, endpoint, notFound());
}

void HttpServer::Impl::respond(h2o_req_t* req, Endpoint endpoint, const Response& response) {
  requests(endpoint, response.status).inc();
  req->res.status = response.status;
  req->res.reason = reasonPhrase(response.status);
  const h2o_iovec_t type = h2o_strdup(&req->pool, response.content_type.data(), response.content_type.size());
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, nullptr, type.base, type.len);
  if (response.allow_header) {
    if (endpoint == Endpoint::Reload) {
      h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, nullptr, H2O_STRLIT("POST"));
    } else {
      h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, nullptr, H2O_STRLIT("GET, HEAD"));
    }
  }
  if (response.retry_after_s != 0) {
    const std::string seconds = std::to_string(response.retry_after_s);
    const h2o_iovec_t value = h2o_strdup(&req->pool, seconds.data(), seconds.size());
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, nullptr, value.base, value.len);
  }
  if (response.bearer_challenge) {
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, nullptr,
                   H2O_STRLIT("Bearer realm=\"evhost\""));
  }
  // Set explicitly: h2o_send_inline leaves it to the caller, and a HEAD
  // answer must carry the length its GET would have.
  req->res.content_length = response.body.size();
  h2o_send_inline(req, response.body.data(), response.body.size());
}

// Registered on first use, on the ops thread: the labels are bounded (five
// paths and "other", the few statuses evhost answers with).
Counter HttpServer::Impl::requests(Endpoint endpoint, int status) {
  const auto key = std::make_pair(endpoint, status);
  auto it = requests_.find(key);
  if (it == requests_.end()) {
    it = requests_
             .emplace(key, scope_.counter("evhost_ops_http_requests_total", "Requests the ops listener answered",
                                          {{"path", endpointLabel(endpoint)}, {"code", std::to_string(status)}}))
             .first;
  }
  return it->second;
}

HttpServer::HttpServer(Options options, LoopAccess loop, Registry& stats)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(loop), stats)) {}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const noexcept { return impl_->port(); }

std::string HttpServer::url() const { return impl_->url(); }

void HttpServer::stop() { impl_->stop(); }

}  // namespace evh::ops
