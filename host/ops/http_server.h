// The ops HTTP listener: GET /metrics, /healthz, /readyz, /health/pubsub and
// /status, and POST /reload (endpoints.h, reload_link.h),
// served by h2o (libh2o, its libuv flavour) on a thread and a libuv loop of
// its own, so that no client -- slow, idle, hostile -- can delay event
// handling: the evhost loop does one scrape per (coalesced) request and
// nothing else for it (loop_link.h).
//
// Bounded whatever the clients do:
//   - at most `max_connections` open connections; one more is accepted and
//     closed at once (evhost_ops_http_rejected_total);
//   - a request's head must arrive within `request_timeout_ms` of the
//     connection's first byte -- or of the previous response, on a
//     kept-alive connection -- else the connection is closed (slowloris,
//     idle connections); h2o's own bounds: a request head over about 400 KB
//     or 100 headers gets 400 and the connection is closed, a body over
//     16 KiB 413;
//   - HTTP/1.x only (no HTTP/2 upgrade), GET and HEAD only (else 405) but
//     for /reload, POST only; unknown paths 404;
//   - POST /reload needs `Authorization: Bearer <ops token>` when a token is
//     configured (401 without, 403 with a wrong one; compared in constant
//     time), and without a token is taken from this host only (403 from
//     another).
// Requests are counted in evhost_ops_http_requests_total{path,code}, path
// one of the endpoints or "other".
#pragma once

#include "ops/loop_link.h"
#include "ops/stats.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace evh::ops {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an IP address (IPv6 without brackets)
    uint16_t port = 9464;            // 0: any free port
    std::string where;               // where the address was set ("evhost.yaml:12: ops.listen"), for errors
    size_t max_connections = 64;
    uint32_t request_timeout_ms = 10000;
    LoopLink::Options loop;
    // Liveness: how long the evhost loop has not turned, as a watchdog off
    // the loop measures it (app::Watchdog::silentMs; THREAD: any). /healthz
    // fails once it passes liveness_timeout_ms. Unset: /healthz asks the loop
    // through the link like the other endpoints (listener-only tests).
    std::function<uint64_t()> loop_silent_ms;
    uint32_t liveness_timeout_ms = 1000;
    // POST /reload's bearer token (ops.token; "": none, loopback clients
    // only). Never logged.
    std::string token;
    // A reload not finished by then is answered 503 (it goes on).
    uint32_t reload_timeout_ms = 30000;
  };

  // Binds and listens on the calling thread, then starts the ops thread.
  // Throws std::runtime_error naming the address and `where` when it cannot
  // listen (address in use, not an address of this host). Registers the ops
  // series in `stats`. THREAD: the evhost loop, like stop() and the
  // destructor (a scrape posted to the loop relies on it).
  HttpServer(Options options, LoopAccess loop, Registry& stats);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port bound (the system's choice when 0 was asked for).
  uint16_t port() const noexcept;
  // "http://127.0.0.1:9464", "http://[::1]:9464".
  std::string url() const;

  // Stops accepting, answers the requests waiting for the loop with 503
  // ("evhost is stopping"), closes every connection, joins the ops thread and
  // frees every handle. Idempotent. THREAD: the evhost loop.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evh::ops
