// The ops listener's h2o glue: its thread and loop, accepting (and refusing)
// connections, and the shutdown that closes every connection before h2o's
// context is disposed. Requests are http_requests.cpp's.
#include "ops/http_server.h"

#include "common/log.h"
#include "ops/http_server_impl.h"

#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace evh::ops {
namespace {

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

HttpServer::Impl::Impl(Options options, LoopAccess access, Registry& stats)
    : options_(std::move(options)), scope_(stats) {
  rejected_ = scope_.counter("evhost_ops_http_rejected_total",
                             "Connections to the ops listener closed at once: the most connections were open");
  connections_open_ = scope_.gauge("evhost_ops_http_connections", "Open connections to the ops listener");
  const Histogram scrape_seconds = scope_.histogram(
      "evhost_ops_scrape_seconds",
      "From the ops listener asking the event loop for a snapshot to having it: the wait for the loop, Redis's "
      "answers about streams, the collect (on the listener's thread)",
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

HttpServer::HttpServer(Options options, LoopAccess loop, Registry& stats)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(loop), stats)) {}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const noexcept { return impl_->port(); }

std::string HttpServer::url() const { return impl_->url(); }

void HttpServer::stop() { impl_->stop(); }

}  // namespace evh::ops
