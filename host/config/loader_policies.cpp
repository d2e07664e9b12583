// `retry:` and `circuit_breaker:` at the root, per route and per plugin, with the plan's environment defaults; merged
// after the walk, because the root maps may come after the routes and plugins that inherit from them, and checked
// where each value came from.
#include <string>

#include "config/loader.h"

namespace evh::config {
namespace {

const std::vector<std::string> kJitters = {"none", "full", "equal"};
constexpr Jitter kJitterValues[] = {Jitter::None, Jitter::Full, Jitter::Equal};

// Environment variables that give defaults to root policy keys absent from
// the file (the plan's variables; a key in the file wins).
constexpr const char* kEnvRetryMaxAttempts = "RETRY_MAX_ATTEMPTS";
constexpr const char* kEnvRetryBaseDelay = "RETRY_BASE_DELAY";
constexpr const char* kEnvBreakerThreshold = "CIRCUIT_BREAKER_THRESHOLD";
constexpr const char* kEnvBreakerTimeout = "CIRCUIT_BREAKER_TIMEOUT";

// "a.b" for "a.b.c"; "" for a name without a dot.
std::string parentKey(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

// Where `other`, the value `self` is compared with, came from, for a message
// about `self`: nothing when both are keys of the same map.
std::string fromText(const Source& other, const Source& self) {
  switch (other.kind) {
    case Source::Kind::Default:
      return ", the default";
    case Source::Kind::Env:
      return ", from " + other.name;
    case Source::Kind::File:
      break;
  }
  if (self.kind == Source::Kind::File && parentKey(other.name) == parentKey(self.name)) {
    return "";
  }
  return ", from " + other.name;
}

}  // namespace

Field Loader::integerField(const char* name, Setting<uint32_t>& setting, uint64_t min) {
  return {name, [this, &setting, min](const Entry& e) {
            setting.source = fileSource(e);
            if (const std::optional<uint64_t> value = integer(e, min, kU32Max)) {
              setting.value = static_cast<uint32_t>(*value);
            } else {
              setting.source.bad = true;
            }
          }};
}

void Loader::readRetryKeys(const Entry& owner, RetryKeys& keys) {
  readFields(owner, {
                        integerField("max_attempts", keys.max_attempts, 1),
                        integerField("base_delay_ms", keys.base_delay_ms, 0),
                        {"multiplier",
                         [&](const Entry& e) {
                           keys.multiplier.source = fileSource(e);
                           keys.multiplier.value = number(e, 1.0);
                           keys.multiplier.source.bad = !keys.multiplier.value;
                         }},
                        integerField("max_delay_ms", keys.max_delay_ms, 0),
                        {"jitter",
                         [&](const Entry& e) {
                           keys.jitter.source = fileSource(e);
                           if (const std::optional<size_t> i = readChoice(e, kJitters)) {
                             keys.jitter.value = kJitterValues[*i];
                           } else {
                             keys.jitter.source.bad = true;
                           }
                         }},
                    });
}

void Loader::readBreakerKeys(const Entry& owner, BreakerKeys& keys) {
  readFields(owner, {
                        integerField("threshold", keys.threshold, 1),
                        integerField("open_ms", keys.open_ms, 1),
                        integerField("half_open_max_calls", keys.half_open_max_calls, 1),
                        integerField("max_wait_ms", keys.max_wait_ms, 0),
                        integerField("max_waiting", keys.max_waiting, 0),
                    });
}

// The variable `var` as the value of a root key absent from the file. Set
// but empty counts as unset, as in ${VAR:-default}.
void Loader::readEnvDefault(Setting<uint32_t>& setting, const char* var, uint64_t min, const std::string& key) {
  if (setting.given()) {
    return;  // the file wins, and the variable is not even looked at
  }
  const std::optional<std::string> value = env_lookup_(var);
  if (!value || value->empty()) {
    return;
  }
  tookFromEnvironment(*value);
  setting.source = Source{Source::Kind::Env, YAML::Mark::null_mark(), var, false};
  const std::optional<int64_t> parsed = parseInt64(*value);
  if (!parsed || *parsed < 0 || static_cast<uint64_t>(*parsed) < min || static_cast<uint64_t>(*parsed) > kU32Max) {
    setting.source.bad = true;
    error(YAML::Mark::null_mark(), var,
          expectedGot("an integer in " + std::to_string(min) + ".." + std::to_string(kU32Max), quote(*value)) +
              envNote(key));
    return;
  }
  setting.value = static_cast<uint32_t>(*parsed);
}

// Merges `keys` into `policy` (and where base and max delay came from).
void Loader::applyRetryKeys(const RetryKeys& keys, RetryPolicy& policy, Source& base, Source& max) {
  keys.max_attempts.applyTo(policy.max_attempts);
  keys.base_delay_ms.applyTo(policy.base_delay_ms, &base);
  keys.multiplier.applyTo(policy.multiplier);
  keys.max_delay_ms.applyTo(policy.max_delay_ms, &max);
  keys.jitter.applyTo(policy.jitter);
}

void Loader::applyBreakerKeys(const BreakerKeys& keys, BreakerPolicy& policy) {
  keys.threshold.applyTo(policy.threshold);
  keys.open_ms.applyTo(policy.open_ms);
  keys.half_open_max_calls.applyTo(policy.half_open_max_calls);
  keys.max_wait_ms.applyTo(policy.max_wait_ms);
  keys.max_waiting.applyTo(policy.max_waiting);
}

// max_delay_ms >= base_delay_ms in a merged policy, reported at the key the
// map being checked gave: max_delay_ms when it gave that, else base_delay_ms.
void Loader::checkDelays(const RetryPolicy& policy, const Source& base, const Source& max, const RetryKeys& keys) {
  // A default standing in for a bad value would make a misleading error.
  if (base.bad || max.bad || policy.max_delay_ms >= policy.base_delay_ms) {
    return;
  }
  const std::string base_ms = std::to_string(policy.base_delay_ms);
  const std::string max_ms = std::to_string(policy.max_delay_ms);
  if (keys.max_delay_ms.given()) {
    error(max.mark, max.name, "must be >= base_delay_ms (" + base_ms + fromText(base, max) + "), got " + max_ms);
  } else if (keys.base_delay_ms.given()) {
    std::string what = "must be <= max_delay_ms (" + max_ms + fromText(max, base) + "), got " + base_ms;
    if (base.kind == Source::Kind::Env) {
      what += envNote("retry.base_delay_ms");
    }
    error(base.mark, base.name, what);
  }
}

void Loader::resolveRetry() {
  readEnvDefault(root_retry_.max_attempts, kEnvRetryMaxAttempts, 1, "retry.max_attempts");
  readEnvDefault(root_retry_.base_delay_ms, kEnvRetryBaseDelay, 0, "retry.base_delay_ms");
  RetryPolicy root;
  Source root_base;
  Source root_max;
  applyRetryKeys(root_retry_, root, root_base, root_max);
  checkDelays(root, root_base, root_max, root_retry_);
  config_.retry = root;
  for (Channel& channel : config_.channels) {
    for (Route& route : channel.routes) {
      route.retry = root;
    }
  }
  for (const RouteRetry& own : route_retries_) {
    RetryPolicy merged = root;
    Source base = root_base;
    Source max = root_max;
    applyRetryKeys(own.keys, merged, base, max);
    // A route that sets neither delay has the root's, already checked.
    checkDelays(merged, base, max, own.keys);
    if (own.channel < config_.channels.size() && own.route < config_.channels[own.channel].routes.size()) {
      config_.channels[own.channel].routes[own.route].retry = merged;
    }
  }
}

void Loader::resolveBreakers() {
  readEnvDefault(root_breaker_.threshold, kEnvBreakerThreshold, 1, "circuit_breaker.threshold");
  readEnvDefault(root_breaker_.open_ms, kEnvBreakerTimeout, 1, "circuit_breaker.open_ms");
  BreakerPolicy root;
  applyBreakerKeys(root_breaker_, root);
  config_.breaker = root;
  for (Plugin& plugin : config_.plugins) {
    plugin.breaker = root;
  }
  for (const auto& [index, keys] : plugin_breakers_) {
    if (index < config_.plugins.size()) {
      applyBreakerKeys(keys, config_.plugins[index].breaker);
    }
  }
}

}  // namespace evh::config
