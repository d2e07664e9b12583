// What each ops path answers: GET /metrics, /healthz and /readyz as pure
// functions of what the loop said (or why it said nothing), one small
// function per endpoint, so that the HTTP glue (http_server.cpp) stays
// generic and each answer is testable without a socket. A new endpoint (the
// plan's /health/pubsub) is one more Endpoint value and one more function.
#pragma once

#include "ops/exposition.h"
#include "ops/readiness.h"
#include "ops/stats.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ops {

// The parts of a snapshot a request needs, as a bit set: each costs the
// loop something different (the series a collect and, for streams, Redis's
// answers; the pub/sub check a round trip through Redis, cached), so the
// loop computes only the parts some waiting request asked for.
using Parts = unsigned;
constexpr Parts kFamilies = 1;   // every series (GET /metrics)
constexpr Parts kReadiness = 2;  // GET /readyz
constexpr Parts kStatus = 4;     // GET /status's JSON
constexpr Parts kPubsub = 8;     // GET /health/pubsub's check

// The pub/sub check's answer (app::PubsubCheck): healthy, and its JSON.
struct PubsubHealth {
  bool healthy = false;
  std::string json;
};

// What the loop thread hands the ops thread: what only the loop may compute
// (readiness and the computed gauges read loop-owned state), the parts in
// `has`. `families` is filled on the ops thread (LoopAccess::collect) once
// the loop has computed the computed gauges, then shared, not copied, by
// every request waiting for the snapshot.
struct LoopSnapshot {
  Parts has = 0;
  std::shared_ptr<const Collection> families;  // kFamilies
  Readiness readiness;                         // kReadiness
  std::string status;                          // kStatus: GET /status's body (Server::status)
  PubsubHealth pubsub;                         // kPubsub
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
  bool allow_header = false;      // 405: send "Allow: GET, HEAD" (POST for /reload)
  bool bearer_challenge = false;  // 401: send "WWW-Authenticate: Bearer"
  uint32_t retry_after_s = 0;     // 503: send "Retry-After" with this when not 0
};

// How a reload ended, as POST /reload answers it.
enum class ReloadResult {
  Applied,    // 200
  Refused,    // 422: the file's problems kept the running configuration
  NotRun,     // 503: neither applied nor refused -- evhost is stopping, or the read could not start
  NotRunYet,  // 503 with Retry-After: evhost is still starting
};
// Told how a reload ended, once, with its JSON ({"result": "ok", "failed"
// or "not run", ...}). THREAD: loop.
using ReloadOutcome = std::function<void(ReloadResult result, std::string json)>;

enum class Endpoint { Metrics, Healthz, Readyz, Status, HealthPubsub, Reload, Other };

// What an endpoint needs of the loop (0: nothing; /healthz asks the
// watchdog instead, when there is one).
Parts partsOf(Endpoint endpoint) noexcept;

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
// Liveness from the watchdog's measure: 200 "ok" while the loop has turned
// within `limit_ms`, else 503 saying for how long it has not.
Response healthzResponse(uint64_t loop_silent_ms, uint32_t limit_ms);
// Readiness as JSON (ops::Readiness::json): 200 when ready, 503 when not --
// and when the loop did not answer, with that as the reason.
Response readyzResponse(const LoopAnswer& answer);
// 200 with the status JSON; 503 naming why the loop did not answer.
Response statusResponse(const LoopAnswer& answer);
// The pub/sub check as JSON: 200 when healthy; 503 when not, or when the
// loop did not answer (the JSON then says why).
Response pubsubResponse(const LoopAnswer& answer);
Response notFound();
// 405, with the methods `endpoint` takes (POST for /reload, else GET and
// HEAD) in Allow.
Response methodNotAllowed(Endpoint endpoint = Endpoint::Other);

// POST /reload's answer, with the reload's JSON: 200 when it was applied,
// 422 when it was refused (the JSON names every problem), 503 when it was
// not run (the JSON's "reason" says why; Retry-After while evhost starts).
Response reloadResponse(ReloadResult result, std::string json);
// 503 with {"result": "not run", "reason": `why`}: evhost could not run
// the reload (no loop to ask: it is stopping).
Response reloadNotRun(const std::string& why);
// 503 (text): the reload did not answer in time; its outcome is unknown
// here (it goes on; the log and GET /status say how it ends).
Response reloadUnanswered(const std::string& why);
// POST /reload without the ops token: 401 (none given: a Bearer challenge)
// or 403 (a wrong one, or no token configured and the client not on this
// host). `why` says which, never the token.
Response reloadRefused(int status, std::string why);

}  // namespace evh::ops
