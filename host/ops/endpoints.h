// What each ops path answers: GET /metrics, /healthz and /readyz as pure
// functions of what the loop said (or why it said nothing), one small
// function per endpoint, so that the HTTP glue (http_server.cpp) stays
// generic and each answer is testable without a socket. A new endpoint (the
// plan's /health/pubsub) is one more Endpoint value and one more function.
#pragma once

#include "ops/exposition.h"
#include "ops/readiness.h"
#include "ops/stats.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ops {

// What the loop thread hands the ops thread per scrape: what only the loop
// may compute (computed gauges and readiness read loop-owned state). The
// families are shared, not copied: the loop's scraper hands the same
// snapshot to every scrape waiting for it.
struct LoopSnapshot {
  std::shared_ptr<const std::vector<FamilySample>> families;
  Readiness readiness;
  std::string status;  // GET /status's JSON body (Server::status)
};

// The loop's answer to a request: a snapshot, or why there is none.
struct LoopAnswer {
  const LoopSnapshot* snapshot = nullptr;  // null: see why_not
  std::string why_not;                     // "evhost's event loop is not answering ...", "evhost is stopping"
};

struct Response {
  int status = 200;
  std::string content_type;
  std::string body;
  bool allow_header = false;  // 405: send "Allow: GET, HEAD"
};

enum class Endpoint { Metrics, Healthz, Readyz, Status, Other };

// The endpoint of a request path (without its query string); Other for
// anything else (404).
Endpoint endpointOf(std::string_view path);
// The path label of evhost_ops_http_requests_total: the path, or "other" --
// never the request's own path, which a client chooses.
const char* endpointLabel(Endpoint endpoint) noexcept;
// The reason phrase of a status evhost answers with.
const char* reasonPhrase(int status) noexcept;

// 200 with every family of the snapshot and `own` (the ops thread's: process
// and build info) rendered in `format`, sorted by name, each name once; 503
// when the loop did not answer.
Response metricsResponse(const LoopAnswer& answer, Format format, const std::vector<FamilySample>& own);
// 200 "ok" when the loop answered; 503 naming why not.
Response healthzResponse(const LoopAnswer& answer);
// Readiness as JSON (ops::Readiness::json): 200 when ready, 503 when not --
// and when the loop did not answer, with that as the reason.
Response readyzResponse(const LoopAnswer& answer);
// 200 with the status JSON; 503 naming why the loop did not answer.
Response statusResponse(const LoopAnswer& answer);
Response notFound();
Response methodNotAllowed();

}  // namespace evh::ops
