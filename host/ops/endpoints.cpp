// The answers of the ops endpoints.
#include "ops/endpoints.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace evh::ops {
namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

Response text(int status, std::string body) { return Response{status, kTextPlain, std::move(body), false}; }

}  // namespace

Endpoint endpointOf(std::string_view path) {
  if (path == "/metrics") {
    return Endpoint::Metrics;
  }
  if (path == "/healthz") {
    return Endpoint::Healthz;
  }
  if (path == "/readyz") {
    return Endpoint::Readyz;
  }
  if (path == "/status") {
    return Endpoint::Status;
  }
  if (path == "/health/pubsub") {
    return Endpoint::HealthPubsub;
  }
  if (path == "/reload") {
    return Endpoint::Reload;
  }
  return Endpoint::Other;
}

Parts partsOf(Endpoint endpoint) noexcept {
  switch (endpoint) {
    case Endpoint::Metrics:
      return kFamilies;
    case Endpoint::Readyz:
      return kReadiness;
    case Endpoint::Status:
      return kStatus;
    case Endpoint::HealthPubsub:
      return kPubsub;
    case Endpoint::Healthz:
    case Endpoint::Reload:
    case Endpoint::Other:
      break;
  }
  return 0;
}

const char* endpointLabel(Endpoint endpoint) noexcept {
  switch (endpoint) {
    case Endpoint::Metrics:
      return "/metrics";
    case Endpoint::Healthz:
      return "/healthz";
    case Endpoint::Readyz:
      return "/readyz";
    case Endpoint::Status:
      return "/status";
    case Endpoint::HealthPubsub:
      return "/health/pubsub";
    case Endpoint::Reload:
      return "/reload";
    case Endpoint::Other:
      break;
  }
  return "other";
}

const char* reasonPhrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 422:
      return "Unprocessable Content";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

Response metricsResponse(const LoopAnswer& answer, Format format, const std::vector<FamilySample>& own) {
  if (answer.snapshot == nullptr) {
    return text(503, answer.why_not + "; no metrics\n");
  }
  const Collection mine = collectionOf(own);
  std::vector<FamilyRef> families;
  const Collection* loop = answer.snapshot->families.get();
  families.reserve((loop != nullptr ? loop->shape->families.size() : 0) + mine.shape->families.size());
  for (const Collection* c : {loop, &mine}) {
    if (c != nullptr && c->shape) {
      for (const auto& [family, base] : c->shape->families) {
        families.push_back(FamilyRef{family.get(), c->values.data() + base});
      }
    }
  }
  // Stable: of two families with one name (a registry series named like a
  // process one), the registry's stays and the other goes -- an exposition
  // naming a family twice would be refused whole.
  std::stable_sort(families.begin(), families.end(),
                   [](const FamilyRef& a, const FamilyRef& b) { return a.family->name < b.family->name; });
  families.erase(std::unique(families.begin(), families.end(),
                             [](const FamilyRef& a, const FamilyRef& b) { return a.family->name == b.family->name; }),
                 families.end());
  return Response{200, contentType(format), render(families, format), false};
}

Response healthzResponse(const LoopAnswer& answer) {
  if (answer.snapshot == nullptr) {
    return text(503, answer.why_not + "\n");
  }
  return text(200, "ok\n");
}

Response healthzResponse(uint64_t loop_silent_ms, uint32_t limit_ms) {
  if (loop_silent_ms > limit_ms) {
    return text(503, "evhost's event loop has not turned for " + std::to_string(loop_silent_ms) +
                         " ms (ops.liveness_timeout_ms is " + std::to_string(limit_ms) + ")\n");
  }
  return text(200, "ok\n");
}

Response readyzResponse(const LoopAnswer& answer) {
  Readiness unanswered;
  const Readiness* r = answer.snapshot != nullptr ? &answer.snapshot->readiness : &unanswered;
  if (answer.snapshot == nullptr) {
    unanswered.not_ready.push_back(answer.why_not);
  }
  return Response{r->ready() ? 200 : 503, "application/json", r->json() + "\n", false};
}

Response statusResponse(const LoopAnswer& answer) {
  if (answer.snapshot == nullptr) {
    return text(503, answer.why_not + "\n");
  }
  return Response{200, "application/json", answer.snapshot->status + "\n", false};
}

Response pubsubResponse(const LoopAnswer& answer) {
  if (answer.snapshot == nullptr) {
    const nlohmann::json body{{"status", "unhealthy"}, {"error", answer.why_not}};
    return Response{503, "application/json", body.dump() + "\n", false};
  }
  const PubsubHealth& p = answer.snapshot->pubsub;
  return Response{p.healthy ? 200 : 503, "application/json", p.json + "\n", false};
}

Response notFound() {
  return text(404, "not found: evhost's ops endpoints are /metrics, /healthz, /readyz, /health/pubsub and /status\n");
}

Response methodNotAllowed(Endpoint endpoint) {
  Response r =
      text(405, endpoint == Endpoint::Reload ? "method not allowed: /reload takes POST only\n"
                                             : "method not allowed: this ops endpoint answers GET and HEAD only\n");
  r.allow_header = true;
  return r;
}

Response reloadResponse(ReloadResult result, std::string json) {
  Response r{200, "application/json", std::move(json) + "\n"};
  switch (result) {
    case ReloadResult::Applied:
      break;
    case ReloadResult::Refused:
      r.status = 422;
      break;
    case ReloadResult::NotRun:
      r.status = 503;
      break;
    case ReloadResult::NotRunYet:
      r.status = 503;
      r.retry_after_s = 1;  // evhost starts within seconds; the request may be repeated then
      break;
  }
  return r;
}

Response reloadNotRun(const std::string& why) {
  return reloadResponse(ReloadResult::NotRun, nlohmann::json{{"result", "not run"}, {"reason", why}}.dump());
}

Response reloadUnanswered(const std::string& why) { return text(503, why + "\n"); }

Response reloadRefused(int status, std::string why) {
  Response r = text(status, std::move(why) + "\n");
  r.bearer_challenge = status == 401;
  return r;
}

}  // namespace evh::ops
