// The ops listener's requests: each routed to its endpoint (404 and 405
// at once), POST /reload checked (token, peer), the loop's answer asked
// for and rendered, the answer sent and counted. THREAD: the ops thread.
#include "ops/http_server_impl.h"

#include "common/log.h"
#include "config/sha256.h"
#include "ops/build_info.h"
#include "ops/process_stats.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

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

}  // namespace

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

}  // namespace evh::ops
