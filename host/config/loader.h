// The config loader's schema reader, shared by the files that read each part of the file: loader.cpp (entry points,
// top-level keys, limits, logging), loader_redis.cpp, loader_plugins.cpp (plugins, dead_letter), loader_channels.cpp
// (channels, streams, routes), loader_policies.cpp (retry and circuit_breaker, with their environment defaults) and
// loader_ops.cpp (the ops listener), loader_sentinel.cpp (redis.sentinel).
// Private to evh_config; the public interface is loadFile / loadString in config.h.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace evh::config {

inline constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();

// A plugin name used by a route, checked once every plugin is known, because
// `plugins:` may come after `channels:` in the file.
struct PluginRef {
  std::string name;
  YAML::Mark mark;
  std::string path;
};

// Where a policy value came from, so that a problem found in a merged policy
// points at the key (or variable) that set it.
struct Source {
  enum class Kind { Default, Env, File };
  Kind kind = Kind::Default;
  YAML::Mark mark = YAML::Mark::null_mark();  // File only
  std::string name;                           // File: dotted key path; Env: variable name
  bool bad = false;                           // given, but invalid (already reported)
};

// One key of a `retry:` or `circuit_breaker:` map.
template <class T>
struct Setting {
  std::optional<T> value;  // given and valid
  Source source;           // Default: not given here
  bool given() const { return source.kind != Source::Kind::Default; }
  // Overrides `out` with this key's value when it has one, and records in
  // `*where` that it came from here when the key was given (even invalid).
  void applyTo(T& out, Source* where = nullptr) const {
    if (value) {
      out = *value;
    }
    if (where != nullptr && given()) {
      *where = source;
    }
  }
};

// The keys one `retry:` map gives (root or route).
struct RetryKeys {
  Setting<uint32_t> max_attempts;
  Setting<uint32_t> base_delay_ms;
  Setting<double> multiplier;
  Setting<uint32_t> max_delay_ms;
  Setting<Jitter> jitter;
};

// The keys one `circuit_breaker:` map gives (root or plugin).
struct BreakerKeys {
  Setting<uint32_t> threshold;
  Setting<uint32_t> open_ms;
  Setting<uint32_t> half_open_max_calls;
  Setting<uint32_t> max_wait_ms;
  Setting<uint32_t> max_waiting;
};

// Private inheritance: a Loader is implemented in terms of a YamlReader, and
// the schema reads best with its helpers unqualified.
class Loader : private YamlReader {
 public:
  Loader(const std::string& file, std::string config_dir, const EnvLookup& env, LoadOptions options = {})
      : YamlReader(file, env), config_dir_(std::move(config_dir)), env_lookup_(env), options_(options) {}

  // Every problem in `yaml`, or the Config when there is none.
  LoadResult load(const std::string& yaml);

 private:
  // ---- top level -------------------------------------------------------------------
  void parse(const std::string& yaml);
  void readEnvironment(const Entry& e);
  void readLimits(const Entry& owner);
  void readLogging(const Entry& owner);

  // ---- redis (loader_redis.cpp) ----------------------------------------------------
  void readRedis(const Entry& owner);
  void readBackoff(const Entry& owner);
  void readTls(const Entry& owner, Tls& tls);
  // redis.sentinel (loader_sentinel.cpp).
  void readSentinel(const Entry& owner);
  // A list of host:port (`what`: "sentinel", "cluster node" -- for
  // messages), each node once; a port left out is default_port.
  std::vector<NodeAddress> readNodes(const Entry& e, const std::string& what, uint16_t default_port);
  // redis.cluster (loader_cluster.cpp).
  void readCluster(const Entry& owner);
  // A `password_file:` read into `out` (before the loop runs); refused
  // (naming the file and the rule, never the content) when unsafe.
  // False when the file was named but could not be read (already reported).
  bool readPasswordFile(const Entry& e, std::string& out);
  // A path from the file: relative ones are taken from the config file's
  // folder ("" stays "").
  std::string fromConfigDir(const std::string& path) const {
    return path.empty() || path.front() == '/' ? path : config_dir_ + "/" + path;
  }

  // ---- plugins and dead_letter (loader_plugins.cpp) --------------------------------
  void readPlugins(const Entry& owner);
  void readPlugin(const Entry& owner);
  void readPluginConfig(const Entry& e, Plugin& plugin);
  void readPluginPin(const Entry& e, Plugin& plugin);
  void readDeadLetter(const Entry& owner);
  void checkPluginReferences();

  // ---- channels, streams, routes (loader_channels.cpp) -----------------------------
  void readChannels(const Entry& owner);
  void readChannel(const Entry& owner);
  void readStream(const Entry& owner, StreamOptions& out);
  void readShare(const Entry& owner, Channel& channel);
  void readRoutes(const Entry& e, Channel& channel, size_t channel_index);
  Route readRoute(const Entry& owner, size_t channel_index, size_t route_index);
  void readEvents(const Entry& e, Route& route);
  void readRoutePlugins(const Entry& e, Route& route);

  // ---- signature (loader_signature.cpp) --------------------------------------------
  void readSignature(const Entry& owner, Signature& out);
  void readSigningKey(const Entry& owner, Signature& out);

  // ---- ops (loader_ops.cpp) ---------------------------------------------------------
  void readOps(const Entry& owner);

  // ---- retry and circuit_breaker, merged after the walk (loader_policies.cpp) ------
  static Source fileSource(const Entry& e) { return Source{Source::Kind::File, valueMark(e), e.path, false}; }
  Field integerField(const char* name, Setting<uint32_t>& setting, uint64_t min);
  void readRetryKeys(const Entry& owner, RetryKeys& keys);
  void readBreakerKeys(const Entry& owner, BreakerKeys& keys);
  // The variable `var` as the value of a root key absent from the file. Set
  // but empty counts as unset, as in ${VAR:-default}.
  void readEnvDefault(Setting<uint32_t>& setting, const char* var, uint64_t min, const std::string& key);
  static std::string envNote(const std::string& key) { return " (environment variable, the default of " + key + ")"; }
  // Merges `keys` into `policy` (and where base and max delay came from).
  static void applyRetryKeys(const RetryKeys& keys, RetryPolicy& policy, Source& base, Source& max);
  static void applyBreakerKeys(const BreakerKeys& keys, BreakerPolicy& policy);
  // max_delay_ms >= base_delay_ms in a merged policy, reported at the key the
  // map being checked gave: max_delay_ms when it gave that, else base_delay_ms.
  void checkDelays(const RetryPolicy& policy, const Source& base, const Source& max, const RetryKeys& keys);
  void resolveRetry();
  void resolveBreakers();

  // A route's own `retry:`, merged with the root's once that is known.
  struct RouteRetry {
    size_t channel;  // index in config_.channels
    size_t route;    // index in its routes
    RetryKeys keys;
  };

  std::string config_dir_;
  const EnvLookup& env_lookup_;
  LoadOptions options_;
  Config config_;
  RetryKeys root_retry_;
  BreakerKeys root_breaker_;
  std::vector<RouteRetry> route_retries_;
  std::vector<std::pair<size_t, BreakerKeys>> plugin_breakers_;  // index in config_.plugins
  std::vector<std::string> defined_plugins_;                     // every key under `plugins:`, in file order
  std::vector<PluginRef> plugin_refs_;
};

}  // namespace evh::config
