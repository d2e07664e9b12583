// The ops listener's implementation, shared by its two source files:
// http_server.cpp (the thread, its loop, accepting and refusing connections,
// the shutdown) and http_requests.cpp (routing a request to its endpoint and
// answering it). Private to host/ops.
#pragma once

#include "loop/uv_handle.h"
#include "ops/endpoints.h"
#include "ops/http_server.h"
#include "ops/reload_link.h"

#include <h2o.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>

namespace evh::ops {

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

}  // namespace evh::ops
