// Each plugin's series, registered once when the dispatcher takes it on.
#include "dispatch/counters.h"

namespace evh::dispatch {
namespace {

constexpr const char* kOutcomes = "evhost_handler_outcomes_total";
constexpr const char* kOutcomesHelp =
    "outcomes of handle() calls: ok, retry (answered RETRY), reject, timeout, error (an unknown status, a call "
    "refused while the plugin's calls are stuck)";

int64_t gaugeValue(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::Closed:
      return 0;
    case CircuitBreaker::State::HalfOpen:
      return 1;
    case CircuitBreaker::State::Open:
      return 2;
  }
  return 0;
}

// Microseconds, exported in seconds: from an inline handler's tens of
// microseconds to a slow one's seconds.
const ops::Buckets kDurationBuckets{
    {25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000},
    1e6};

}  // namespace

PluginCounters::PluginCounters(ops::Registry& stats, const std::string& plugin)
    : scope(stats, {{"plugin", plugin}}),
      calls(scope.counter("evhost_handler_calls_total", "handle() calls made, every attempt")),
      ok(scope.counter(kOutcomes, kOutcomesHelp, {{"outcome", "ok"}})),
      retry(scope.counter(kOutcomes, kOutcomesHelp, {{"outcome", "retry"}})),
      rejected(scope.counter(kOutcomes, kOutcomesHelp, {{"outcome", "reject"}})),
      timeouts(scope.counter(kOutcomes, kOutcomesHelp, {{"outcome", "timeout"}})),
      errors(scope.counter(kOutcomes, kOutcomesHelp, {{"outcome", "error"}})),
      stuck(scope.counter("evhost_handler_stuck_total",
                          "timed-out calls whose handle() was still running on a worker thread")),
      refused(scope.counter("evhost_handler_refused_total",
                            "calls refused without being made while the plugin's calls were stuck")),
      pending(scope.counter("evhost_handler_pending_total", "calls answered PENDING, completed later")),
      retried(scope.counter("evhost_handler_retries_scheduled_total", "retries scheduled after a failure")),
      dead_lettered(scope.counter("evhost_handler_dead_lettered_total", "events of this plugin dead-lettered")),
      abandoned(scope.counter("evhost_handler_abandoned_total", "calls unfinished at the shutdown deadline")),
      duplicates(scope.counter("evhost_handler_duplicates_skipped_total",
                               "events skipped as handled already (idempotent routes)")),
      breaker_transitions(scope.counter("evhost_breaker_transitions_total", "circuit breaker state changes")),
      breaker(scope.gauge("evhost_breaker_state", "circuit breaker state: 0 closed, 1 half-open, 2 open")),
      breaker_waiting(
          scope.gauge("evhost_breaker_waiting", "deliveries waiting for the plugin's breaker to let them through")),
      retry_waiting(scope.gauge("evhost_retry_waiting", "deliveries waiting for their retry delay to pass")),
      duration(scope.histogram("evhost_handler_duration_seconds",
                               "time from a call's start to its outcome: handle() itself, a blocking plugin's wait "
                               "for a worker, a PENDING call until it completes",
                               kDurationBuckets)) {}

void PluginCounters::breakerIs(CircuitBreaker::State state) noexcept {
  breaker_transitions.inc();
  breaker_state = state;
  breaker.set(gaugeValue(state));
}

PluginCounts PluginCounters::snapshot() const noexcept {
  auto v = [](const ops::Counter& c) { return static_cast<uint64_t>(c.value()); };
  PluginCounts out;
  out.calls = v(calls);
  out.ok = v(ok);
  out.retry = v(retry);
  out.rejected = v(rejected);
  out.timeouts = v(timeouts);
  out.errors = v(errors);
  out.stuck = v(stuck);
  out.refused = v(refused);
  out.pending = v(pending);
  out.retried = v(retried);
  out.dead_lettered = v(dead_lettered);
  out.abandoned = v(abandoned);
  out.duplicates = v(duplicates);
  out.breaker_transitions = v(breaker_transitions);
  out.breaker_state = breaker_state;
  out.breaker_waiting = breaker_waiting.value();
  out.retry_waiting = retry_waiting.value();
  return out;
}

}  // namespace evh::dispatch
