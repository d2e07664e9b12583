// YAML -> typed Config: evhost's schema, read with YamlReader so that every
// problem is reported with file:line and the dotted key path.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <system_error>
#include <utility>

#include "config/config.h"
#include "config/suggest.h"
#include "config/yaml_reader.h"

namespace evh::config {
namespace {

constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();

const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
const std::vector<std::string> kLogFormats = {"text", "json"};
const std::vector<std::string> kTransports = {"pubsub", "stream"};
const std::vector<std::string> kStreamStarts = {"beginning", "new"};
const std::vector<std::string> kJitters = {"none", "full", "equal"};
constexpr Jitter kJitterValues[] = {Jitter::None, Jitter::Full, Jitter::Equal};

// Environment variables that give defaults to root policy keys absent from
// the file (the plan's variables; a key in the file wins).
constexpr const char* kEnvRetryMaxAttempts = "RETRY_MAX_ATTEMPTS";
constexpr const char* kEnvRetryBaseDelay = "RETRY_BASE_DELAY";
constexpr const char* kEnvBreakerThreshold = "CIRCUIT_BREAKER_THRESHOLD";
constexpr const char* kEnvBreakerTimeout = "CIRCUIT_BREAKER_TIMEOUT";

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

bool isPluginNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

bool isEnvironmentChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

// Private inheritance: a Loader is implemented in terms of a YamlReader, and
// the schema below reads best with its helpers unqualified.
class Loader : private YamlReader {
 public:
  Loader(const std::string& file, std::string config_dir, const EnvLookup& env)
      : YamlReader(file, env), config_dir_(std::move(config_dir)), env_lookup_(env) {}

  LoadResult load(const std::string& yaml) {
    LoadResult result;
    try {
      parse(yaml);
    } catch (const YAML::ParserException& e) {
      // Nothing after a syntax error is trustworthy, so it is reported alone.
      std::string what = e.msg;
      if (what.find("alias") != std::string::npos) {
        // The likeliest cause in this schema is an unquoted `events: *`.
        what += " (a \"*\" value must be quoted: \"*\")";
      }
      result.errors.push_back(file() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                              ": YAML syntax error: " + what);
      return result;
    } catch (const std::exception& e) {
      error(YAML::Mark::null_mark(), "", std::string("cannot load configuration: ") + e.what());
    }
    result.errors = takeErrors();
    if (result.errors.empty()) {
      result.config = std::move(config_);
    }
    return result;
  }

 private:
  void parse(const std::string& yaml) {
    config_.file = file();
    config_.dead_letter.origin = Origin{file(), 0, "dead_letter"};
    const std::vector<YAML::Node> docs = YAML::LoadAll(yaml);
    if (docs.size() > 1) {
      error(docs[1].Mark(), "", "expected one YAML document, found " + std::to_string(docs.size()));
      return;
    }
    if (docs.empty() || docs[0].IsNull()) {
      error(YAML::Mark::null_mark(), "", "empty configuration");
      return;
    }
    const YAML::Node& root = docs[0];
    if (!root.IsMap()) {
      error(root.Mark(), "", "expected a map of top-level keys, got " + kindOf(root));
      return;
    }
    const Entry top{"", root, root, ""};
    readFields(top,
               {
                   {"environment", [this](const Entry& e) { readEnvironment(e); }},
                   {"redis", [this](const Entry& e) { readRedis(e); }},
                   {"plugins", [this](const Entry& e) { readPlugins(e); }},
                   {"channels", [this](const Entry& e) { readChannels(e); }},
                   {"limits", [this](const Entry& e) { readLimits(e); }},
                   {"logging", [this](const Entry& e) { readLogging(e); }},
                   {"retry", [this](const Entry& e) { readRetryKeys(e, root_retry_); }},
                   {"circuit_breaker", [this](const Entry& e) { readBreakerKeys(e, root_breaker_); }},
                   {"dead_letter", [this](const Entry& e) { readDeadLetter(e); }},
                   {"workers", [this](const Entry& e) { readInteger(e, config_.workers, 1, 256); }},
                   {"shutdown_timeout_ms",
                    [this](const Entry& e) { readInteger(e, config_.shutdown_timeout_ms, 0, kU32Max); }},
                   {"loop_stall_ms", [this](const Entry& e) { readInteger(e, config_.loop_stall_ms, 100, 3600000); }},
               });
    // After the walk: `retry:` and `circuit_breaker:` may come after the
    // routes and plugins that inherit from them.
    resolveRetry();
    resolveBreakers();
    checkPluginReferences();
  }

  // ---- top level ----------------------------------------------------------

  void readEnvironment(const Entry& e) {
    const std::optional<std::string> value = text(e, "a string");
    if (!value) {
      return;
    }
    if (!std::all_of(value->begin(), value->end(), isEnvironmentChar)) {
      error(valueMark(e), e.path,
            expectedGot("only letters, digits, \"_\", \".\" and \"-\"", gotValue(e.value.Scalar(), *value)));
      return;
    }
    config_.environment = *value;
  }

  void readRedis(const Entry& owner) {
    Redis& redis = config_.redis;
    std::optional<Entry> url;
    std::vector<Entry> explicit_keys;  // the keys a URL would also set
    std::optional<Entry> user_entry;
    const auto connection = [&](std::string& out) {
      return [&, target = &out](const Entry& e) {
        explicit_keys.push_back(e);
        readString(e, *target);
      };
    };
    readFields(
        owner,
        {
            {"url", [&](const Entry& e) { url = e; }},
            {"host", connection(redis.host)},
            {"port",
             [&](const Entry& e) {
               explicit_keys.push_back(e);
               readInteger(e, redis.port, 1, 65535);
             }},
            {"db",
             [&](const Entry& e) {
               explicit_keys.push_back(e);
               readInteger(e, redis.db, 0, static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));
             }},
            {"username",
             [&](const Entry& e) {
               explicit_keys.push_back(e);
               user_entry = e;
               readString(e, redis.username);
             }},
            {"password", connection(redis.password)},
            {"connect_timeout_ms", [&](const Entry& e) { readInteger(e, redis.connect_timeout_ms, 1, kU32Max); }},
            {"reconnect", [&](const Entry& e) { readBackoff(e); }},
            {"ping_interval_ms", [&](const Entry& e) { readInteger(e, redis.ping_interval_ms, 1, kU32Max); }},
            {"ping_timeout_ms", [&](const Entry& e) { readInteger(e, redis.ping_timeout_ms, 1, kU32Max); }},
        });

    if (url) {
      if (!explicit_keys.empty()) {
        // Two sources for one setting would make one of them silently lose.
        for (const Entry& e : explicit_keys) {
          error(e.key_node.Mark(), e.path,
                "cannot be combined with " + url->path + " (the URL sets host, port, db, username and password)");
        }
        return;
      }
      const std::optional<std::string> value = text(*url, "a redis:// URL");
      if (!value) {
        return;
      }
      std::string why;
      if (!parseRedisUrl(*value, redis, why)) {
        // The URL itself is not quoted: it may hold a password.
        error(valueMark(*url), url->path, "invalid URL: " + why);
        return;
      }
      user_entry = url;
    }
    if (!redis.username.empty() && redis.password.empty() && user_entry) {
      error(valueMark(*user_entry), user_entry->path, "a user name needs a password (AUTH <username> <password>)");
    }
  }

  void readBackoff(const Entry& owner) {
    Backoff& backoff = config_.redis.reconnect;
    std::optional<Entry> initial;
    std::optional<Entry> max;
    const size_t errors_before = errorCount();
    readFields(owner, {
                          {"initial_ms",
                           [&](const Entry& e) {
                             initial = e;
                             readInteger(e, backoff.initial_ms, 1, kU32Max);
                           }},
                          {"max_ms",
                           [&](const Entry& e) {
                             max = e;
                             readInteger(e, backoff.max_ms, 1, kU32Max);
                           }},
                          {"multiplier",
                           [&](const Entry& e) {
                             if (const std::optional<double> value = number(e, 1.0)) {
                               backoff.multiplier = *value;
                             }
                           }},
                      });
    // Compared only when both read cleanly: a default standing in for a bad
    // value would make a second, misleading error.
    if (errorCount() == errors_before && backoff.max_ms < backoff.initial_ms) {
      if (max) {
        error(valueMark(*max), max->path,
              "must be >= initial_ms (" + std::to_string(backoff.initial_ms) + "), got " +
                  std::to_string(backoff.max_ms));
      } else if (initial) {
        error(valueMark(*initial), initial->path,
              "must be <= max_ms (" + std::to_string(backoff.max_ms) + "), got " + std::to_string(backoff.initial_ms));
      }
    }
  }

  void readLimits(const Entry& owner) {
    Limits& limits = config_.limits;
    readFields(owner,
               {
                   {"max_message_bytes", [&](const Entry& e) { readInteger(e, limits.max_message_bytes, 1, kU32Max); }},
                   {"max_in_flight", [&](const Entry& e) { readInteger(e, limits.max_in_flight, 1, kU32Max); }},
                   {"max_json_depth", [&](const Entry& e) { readInteger(e, limits.max_json_depth, 1, kU32Max); }},
                   {"max_dead_letter_bytes",
                    [&](const Entry& e) { readInteger(e, limits.max_dead_letter_bytes, 65536, kU32Max); }},
               });
  }

  void readLogging(const Entry& owner) {
    Logging& logging = config_.logging;
    readFields(owner, {
                          {"level",
                           [&](const Entry& e) {
                             if (const std::optional<size_t> i = readChoice(e, kLogLevels)) {
                               logging.level = kLogLevels[*i];
                             }
                           }},
                          {"format",
                           [&](const Entry& e) {
                             if (const std::optional<size_t> i = readChoice(e, kLogFormats)) {
                               logging.format = *i == 0 ? LogFormat::Text : LogFormat::Json;
                             }
                           }},
                          {"debug_events", [&](const Entry& e) { readBool(e, logging.debug_events); }},
                      });
  }

  // ---- plugins ------------------------------------------------------------

  void readPlugins(const Entry& owner) {
    forEachEntry(owner, [&](const Entry& e) { readPlugin(e); });
  }

  void readPlugin(const Entry& owner) {
    // Counted as defined even when invalid, so that routes naming it do not
    // add a second, misleading error.
    defined_plugins_.push_back(owner.key);
    if (owner.key.empty() || !std::all_of(owner.key.begin(), owner.key.end(), isPluginNameChar)) {
      error(owner.key_node.Mark(), owner.path,
            "invalid plugin instance name " + quote(owner.key) + " (use lowercase letters, digits, \"_\" and \"-\")");
    }
    Plugin plugin;
    plugin.name = owner.key;
    plugin.config_json = "{}";
    plugin.config_dir = config_dir_;
    plugin.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
    bool has_path = false;
    const bool is_map =
        readFields(owner, {
                              {"path",
                               [&](const Entry& e) {
                                 has_path = true;
                                 readString(e, plugin.path);
                                 if (e.value.IsScalar() && plugin.path.empty()) {
                                   error(valueMark(e), e.path, "must not be empty");
                                 }
                               }},
                              {"config", [&](const Entry& e) { readPluginConfig(e, plugin); }},
                              {"timeout_ms", [&](const Entry& e) { readInteger(e, plugin.timeout_ms, 0, kU32Max); }},
                              {"circuit_breaker",
                               [&](const Entry& e) {
                                 plugin_breakers_.emplace_back(config_.plugins.size(), BreakerKeys{});
                                 readBreakerKeys(e, plugin_breakers_.back().second);
                               }},
                          });
    if (is_map && !has_path) {
      error(owner.key_node.Mark(), owner.path, "missing required key \"path\"");
    }
    config_.plugins.push_back(std::move(plugin));
  }

  void readPluginConfig(const Entry& e, Plugin& plugin) {
    if (!e.value.IsDefined() || e.value.IsNull()) {
      return;  // `config:` with nothing after it: the same as no block
    }
    if (std::optional<std::string> json = jsonText(e)) {
      plugin.config_json = std::move(*json);
    }
  }

  // ---- channels -----------------------------------------------------------

  void readChannels(const Entry& owner) {
    forEachEntry(owner, [&](const Entry& e) { readChannel(e); });
  }

  void readChannel(const Entry& owner) {
    const size_t channel_index = config_.channels.size();
    Channel channel;
    channel.name = owner.key;
    channel.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
    if (owner.key.empty()) {
      error(owner.key_node.Mark(), "channels", "a channel name must not be empty");
    }
    bool has_routes = false;
    std::optional<YAML::Mark> stream_block;
    const bool is_map = readFields(owner, {
                                              {"transport",
                                               [&](const Entry& e) {
                                                 if (std::optional<size_t> t = readChoice(e, kTransports)) {
                                                   channel.transport = *t == 0 ? Transport::PubSub : Transport::Stream;
                                                 }
                                               }},
                                              {"pattern", [&](const Entry& e) { readBool(e, channel.pattern); }},
                                              {"stream",
                                               [&](const Entry& e) {
                                                 stream_block = e.key_node.Mark();
                                                 readStream(e, channel.stream);
                                               }},
                                              {"routes",
                                               [&](const Entry& e) {
                                                 has_routes = true;
                                                 readRoutes(e, channel, channel_index);
                                               }},
                                          });
    if (is_map && !has_routes) {
      error(owner.key_node.Mark(), owner.path, "missing required key \"routes\"");
    }
    if (channel.transport == Transport::Stream && channel.pattern) {
      error(owner.key_node.Mark(), owner.path + ".pattern", "a stream channel cannot be a pattern");
    }
    if (channel.transport != Transport::Stream && stream_block) {
      error(*stream_block, owner.path + ".stream", "only for transport: stream");
    }
    config_.channels.push_back(std::move(channel));
  }

  void readStream(const Entry& owner, StreamOptions& out) {
    readFields(
        owner,
        {
            {"group", [&](const Entry& e) { readString(e, out.group); }},
            {"consumer", [&](const Entry& e) { readString(e, out.consumer); }},
            {"count", [&](const Entry& e) { readInteger(e, out.count, 1, 100000); }},
            {"block_ms", [&](const Entry& e) { readInteger(e, out.block_ms, 1, 600000); }},
            {"claim_idle_ms", [&](const Entry& e) { readInteger(e, out.claim_idle_ms, 1, 86400000); }},
            {"claim_interval_ms", [&](const Entry& e) { readInteger(e, out.claim_interval_ms, 0, 86400000); }},
            {"max_deliveries", [&](const Entry& e) { readInteger(e, out.max_deliveries, 1, 1000000); }},
            {"trim_maxlen", [&](const Entry& e) { readInteger(e, out.trim_maxlen, 0, UINT64_MAX >> 1); }},
            {"trim_max_age_ms", [&](const Entry& e) { readInteger(e, out.trim_max_age_ms, 0, uint64_t{1} << 42); }},
            {"trim_interval_ms", [&](const Entry& e) { readInteger(e, out.trim_interval_ms, 100, 86400000); }},
            {"start",
             [&](const Entry& e) {
               if (std::optional<size_t> c = readChoice(e, kStreamStarts)) {
                 out.from_beginning = *c == 0;
               }
             }},
        });
    if (out.group.empty()) {
      error(owner.key_node.Mark(), owner.path + ".group", "must not be empty");
    }
  }

  void readRoutes(const Entry& e, Channel& channel, size_t channel_index) {
    if (!e.value.IsSequence()) {
      error(valueMark(e), e.path, expectedGot("a list of routes", kindOf(e.value)));
      return;
    }
    if (e.value.size() == 0) {
      error(valueMark(e), e.path, "expected at least one route");
      return;
    }
    size_t index = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
      const YAML::Node item = *it;
      const Entry route_entry{"", item.Mark().is_null() ? e.key_node : item, item, indexKey(e.path, index)};
      channel.routes.push_back(readRoute(route_entry, channel_index, channel.routes.size()));
    }
  }

  Route readRoute(const Entry& owner, size_t channel_index, size_t route_index) {
    Route route;
    const YAML::Mark mark = valueMark(owner);
    route.origin = Origin{file(), mark.line + 1, owner.path};
    bool has_plugins = false;
    const bool is_map =
        readFields(owner, {
                              {"events", [&](const Entry& e) { readEvents(e, route); }},
                              {"plugins",
                               [&](const Entry& e) {
                                 has_plugins = true;
                                 readRoutePlugins(e, route);
                               }},
                              {"retry",
                               [&](const Entry& e) {
                                 route_retries_.push_back(RouteRetry{channel_index, route_index, RetryKeys{}});
                                 readRetryKeys(e, route_retries_.back().keys);
                               }},
                              {"idempotency",
                               [&](const Entry& e) {
                                 route.idempotency_ttl_ms = 86400000;  // a day unless ttl_ms says otherwise
                                 readFields(e, {{"ttl_ms", [&](const Entry& t) {
                                                   readInteger(t, route.idempotency_ttl_ms, 1, uint64_t{1} << 40);
                                                 }}});
                               }},
                          });
    if (is_map && !has_plugins) {
      error(mark, owner.path, "missing required key \"plugins\"");
    }
    return route;
  }

  void readEvents(const Entry& e, Route& route) {
    const std::string expected = "a list of event types or \"*\"";
    if (e.value.IsScalar()) {
      const std::optional<std::string> value = text(e, expected);
      if (value && *value != "*") {
        error(
            valueMark(e), e.path,
            expectedGot(expected, gotValue(e.value.Scalar(), *value)) + " (write [" + *value + "] for a single type)");
      }
      return;  // "*": every type, which an empty list stands for
    }
    if (!e.value.IsSequence()) {
      error(valueMark(e), e.path, expectedGot(expected, kindOf(e.value)));
      return;
    }
    if (e.value.size() == 0) {
      error(valueMark(e), e.path, "expected at least one event type (\"*\" for every type)");
      return;
    }
    std::vector<std::string> events;
    bool every = false;
    size_t index = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
      const std::string path = indexKey(e.path, index);
      const YAML::Mark mark = it->Mark().is_null() ? valueMark(e) : it->Mark();
      std::optional<std::string> value = text(*it, mark, path, "an event type");
      if (!value) {
        continue;
      }
      if (value->empty()) {
        error(mark, path, "an event type must not be empty");
      } else if (*value == "*") {
        every = true;
      } else if (std::find(events.begin(), events.end(), *value) != events.end()) {
        error(mark, path, "duplicate event type " + quote(*value));
      } else {
        events.push_back(std::move(*value));
      }
    }
    if (every && !events.empty()) {
      error(valueMark(e), e.path, "\"*\" already matches every event type; list no others");
      return;
    }
    route.events = std::move(events);
  }

  void readRoutePlugins(const Entry& e, Route& route) {
    const std::string expected = "a non-empty list of plugin instance names";
    if (!e.value.IsSequence() || e.value.size() == 0) {
      error(valueMark(e), e.path, expectedGot(expected, e.value.IsSequence() ? "an empty list" : kindOf(e.value)));
      return;
    }
    size_t index = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
      const std::string path = indexKey(e.path, index);
      const YAML::Mark mark = it->Mark().is_null() ? valueMark(e) : it->Mark();
      std::optional<std::string> name = text(*it, mark, path, "a plugin instance name");
      if (!name) {
        continue;
      }
      if (name->empty()) {
        error(mark, path, "a plugin instance name must not be empty");
      } else if (std::find(route.plugins.begin(), route.plugins.end(), *name) != route.plugins.end()) {
        // Twice in one route would hand the same event to it twice.
        error(mark, path, "plugin " + quote(*name) + " is already listed in this route");
      } else {
        plugin_refs_.push_back(PluginRef{*name, mark, path});
        route.plugins.push_back(std::move(*name));
      }
    }
  }

  // ---- retry, circuit_breaker, dead_letter ------------------------------------

  static Source fileSource(const Entry& e) { return Source{Source::Kind::File, valueMark(e), e.path, false}; }

  Field integerField(const char* name, Setting<uint32_t>& setting, uint64_t min) {
    return {name, [this, &setting, min](const Entry& e) {
              setting.source = fileSource(e);
              if (const std::optional<uint64_t> value = integer(e, min, kU32Max)) {
                setting.value = static_cast<uint32_t>(*value);
              } else {
                setting.source.bad = true;
              }
            }};
  }

  void readRetryKeys(const Entry& owner, RetryKeys& keys) {
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

  void readBreakerKeys(const Entry& owner, BreakerKeys& keys) {
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
  void readEnvDefault(Setting<uint32_t>& setting, const char* var, uint64_t min, const std::string& key) {
    if (setting.given()) {
      return;  // the file wins, and the variable is not even looked at
    }
    const std::optional<std::string> value = env_lookup_(var);
    if (!value || value->empty()) {
      return;
    }
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

  static std::string envNote(const std::string& key) { return " (environment variable, the default of " + key + ")"; }

  // Merges `keys` into `policy` (and where base and max delay came from).
  static void applyRetryKeys(const RetryKeys& keys, RetryPolicy& policy, Source& base, Source& max) {
    keys.max_attempts.applyTo(policy.max_attempts);
    keys.base_delay_ms.applyTo(policy.base_delay_ms, &base);
    keys.multiplier.applyTo(policy.multiplier);
    keys.max_delay_ms.applyTo(policy.max_delay_ms, &max);
    keys.jitter.applyTo(policy.jitter);
  }

  static void applyBreakerKeys(const BreakerKeys& keys, BreakerPolicy& policy) {
    keys.threshold.applyTo(policy.threshold);
    keys.open_ms.applyTo(policy.open_ms);
    keys.half_open_max_calls.applyTo(policy.half_open_max_calls);
    keys.max_wait_ms.applyTo(policy.max_wait_ms);
    keys.max_waiting.applyTo(policy.max_waiting);
  }

  // max_delay_ms >= base_delay_ms in a merged policy, reported at the key the
  // map being checked gave: max_delay_ms when it gave that, else base_delay_ms.
  void checkDelays(const RetryPolicy& policy, const Source& base, const Source& max, const RetryKeys& keys) {
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

  void resolveRetry() {
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

  void resolveBreakers() {
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

  void readDeadLetter(const Entry& owner) {
    DeadLetter& dead_letter = config_.dead_letter;
    dead_letter.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
    readFields(owner, {
                          {"plugin",
                           [&](const Entry& e) {
                             const std::optional<std::string> name = text(e, "a plugin instance name");
                             if (!name) {
                               return;
                             }
                             dead_letter.plugin = *name;
                             if (!name->empty()) {  // empty: no dead-letter plugin, the file only
                               plugin_refs_.push_back(PluginRef{*name, valueMark(e), e.path});
                             }
                           }},
                          {"fallback_file",
                           [&](const Entry& e) {
                             readString(e, dead_letter.fallback_file);
                             if (e.value.IsScalar() && dead_letter.fallback_file.empty()) {
                               error(valueMark(e), e.path, "must not be empty");
                             }
                           }},
                          {"timeout_ms", [&](const Entry& e) { readInteger(e, dead_letter.timeout_ms, 1, kU32Max); }},
                          {"channel",
                           [&](const Entry& e) {
                             readString(e, dead_letter.channel);
                             if (e.value.IsScalar() && dead_letter.channel.empty()) {
                               error(valueMark(e), e.path, "must not be empty");
                             }
                           }},
                      });
  }

  void checkPluginReferences() {
    const std::set<std::string> defined(defined_plugins_.begin(), defined_plugins_.end());
    for (const PluginRef& ref : plugin_refs_) {
      if (defined.count(ref.name) != 0) {
        continue;
      }
      std::string what = "undefined plugin " + quote(ref.name);
      if (const std::optional<std::string> guess = closestMatch(ref.name, defined_plugins_)) {
        what += " (did you mean " + quote(*guess) + "?)";
      } else if (defined_plugins_.empty()) {
        what += " (no plugins are defined under \"plugins\")";
      } else {
        what += " (defined: " + joinList(defined_plugins_, ", ") + ")";
      }
      error(ref.mark, ref.path, what);
    }
  }

  // A route's own `retry:`, merged with the root's once that is known.
  struct RouteRetry {
    size_t channel;  // index in config_.channels
    size_t route;    // index in its routes
    RetryKeys keys;
  };

  std::string config_dir_;
  const EnvLookup& env_lookup_;
  Config config_;
  RetryKeys root_retry_;
  BreakerKeys root_breaker_;
  std::vector<RouteRetry> route_retries_;
  std::vector<std::pair<size_t, BreakerKeys>> plugin_breakers_;  // index in config_.plugins
  std::vector<std::string> defined_plugins_;                     // every key under `plugins:`, in file order
  std::vector<PluginRef> plugin_refs_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

LoadResult loadImpl(const std::string& yaml, const std::string& file_name, const std::string& config_dir,
                    const EnvLookup& env) {
  try {
    return Loader(file_name, config_dir, env).load(yaml);
  } catch (const std::exception& e) {
    // Loader::load reports its own failures; this is for running out of
    // memory while doing so, since the callers are promised no exceptions.
    LoadResult result;
    result.errors.push_back(file_name + ": cannot load configuration: " + e.what());
    return result;
  }
}

}  // namespace

LoadResult loadFile(const std::string& path, const EnvLookup& env) {
  std::string yaml;
  {
    const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
      const int err = errno;
      LoadResult result;
      result.errors.push_back(path + ": cannot read config file: " + std::generic_category().message(err));
      return result;
    }
    char buffer[8192];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
      yaml.append(buffer, n);
    }
    if (std::ferror(file.get()) != 0) {
      // fopen succeeds on a directory; the read is what fails (EISDIR).
      const int err = errno;
      LoadResult result;
      result.errors.push_back(path + ": cannot read config file: " + std::generic_category().message(err));
      return result;
    }
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) {
    absolute = path;  // no current directory: keep what was given
  }
  std::string dir = absolute.lexically_normal().parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  return loadImpl(yaml, path, dir, env);
}

LoadResult loadString(const std::string& yaml, const std::string& file_name, const EnvLookup& env) {
  std::string dir = std::filesystem::path(file_name).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  return loadImpl(yaml, file_name, dir, env);
}

}  // namespace evh::config
