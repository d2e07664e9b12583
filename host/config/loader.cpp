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

const std::vector<std::string> kLogLevels = {"trace", "debug", "info",    "warn",
                                             "error", "critical", "off"};
const std::vector<std::string> kLogFormats = {"text", "json"};
const std::vector<std::string> kTransports = {"pubsub"};

// A plugin name used by a route, checked once every plugin is known, because
// `plugins:` may come after `channels:` in the file.
struct PluginRef {
  std::string name;
  YAML::Mark mark;
  std::string path;
};

bool isPluginNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool isEnvironmentChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-';
}

// Private inheritance: a Loader is implemented in terms of a YamlReader, and
// the schema below reads best with its helpers unqualified.
class Loader : private YamlReader {
 public:
  Loader(const std::string& file, std::string config_dir, const EnvLookup& env)
      : YamlReader(file, env), config_dir_(std::move(config_dir)) {}

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
      result.errors.push_back(file() + ":" + std::to_string(e.mark.line + 1) + ":" +
                              std::to_string(e.mark.column + 1) + ": YAML syntax error: " + what);
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
                   {"workers", [this](const Entry& e) { readInteger(e, config_.workers, 1, 256); }},
                   {"shutdown_timeout_ms",
                    [this](const Entry& e) {
                      readInteger(e, config_.shutdown_timeout_ms, 0, kU32Max);
                    }},
               });
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
            expectedGot("only letters, digits, \"_\", \".\" and \"-\"",
                        gotValue(e.value.Scalar(), *value)));
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
    readFields(owner, {
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
        {"connect_timeout_ms",
         [&](const Entry& e) { readInteger(e, redis.connect_timeout_ms, 1, kU32Max); }},
        {"reconnect", [&](const Entry& e) { readBackoff(e); }},
        {"ping_interval_ms",
         [&](const Entry& e) { readInteger(e, redis.ping_interval_ms, 1, kU32Max); }},
        {"ping_timeout_ms",
         [&](const Entry& e) { readInteger(e, redis.ping_timeout_ms, 1, kU32Max); }},
    });

    if (url) {
      if (!explicit_keys.empty()) {
        // Two sources for one setting would make one of them silently lose.
        for (const Entry& e : explicit_keys) {
          error(e.key_node.Mark(), e.path,
                "cannot be combined with " + url->path +
                    " (the URL sets host, port, db, username and password)");
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
      error(valueMark(*user_entry), user_entry->path,
            "a user name needs a password (AUTH <username> <password>)");
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
              "must be <= max_ms (" + std::to_string(backoff.max_ms) + "), got " +
                  std::to_string(backoff.initial_ms));
      }
    }
  }

  void readLimits(const Entry& owner) {
    Limits& limits = config_.limits;
    readFields(owner, {
        {"max_message_bytes",
         [&](const Entry& e) { readInteger(e, limits.max_message_bytes, 1, kU32Max); }},
        {"max_in_flight",
         [&](const Entry& e) { readInteger(e, limits.max_in_flight, 1, kU32Max); }},
        {"max_json_depth",
         [&](const Entry& e) { readInteger(e, limits.max_json_depth, 1, kU32Max); }},
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
            "invalid plugin instance name " + quote(owner.key) +
                " (use lowercase letters, digits, \"_\" and \"-\")");
    }
    Plugin plugin;
    plugin.name = owner.key;
    plugin.config_json = "{}";
    plugin.config_dir = config_dir_;
    plugin.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
    bool has_path = false;
    const bool is_map = readFields(owner, {
        {"path",
         [&](const Entry& e) {
           has_path = true;
           readString(e, plugin.path);
           if (e.value.IsScalar() && plugin.path.empty()) {
             error(valueMark(e), e.path, "must not be empty");
           }
         }},
        {"config", [&](const Entry& e) { readPluginConfig(e, plugin); }},
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
    Channel channel;
    channel.name = owner.key;
    channel.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
    if (owner.key.empty()) {
      error(owner.key_node.Mark(), "channels", "a channel name must not be empty");
    }
    bool has_routes = false;
    const bool is_map = readFields(owner, {
        {"transport",
         [&](const Entry& e) {
           if (readChoice(e, kTransports)) {
             channel.transport = Transport::PubSub;
           }
         }},
        {"pattern", [&](const Entry& e) { readBool(e, channel.pattern); }},
        {"routes",
         [&](const Entry& e) {
           has_routes = true;
           readRoutes(e, channel);
         }},
    });
    if (is_map && !has_routes) {
      error(owner.key_node.Mark(), owner.path, "missing required key \"routes\"");
    }
    config_.channels.push_back(std::move(channel));
  }

  void readRoutes(const Entry& e, Channel& channel) {
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
      const Entry route_entry{"", item.Mark().is_null() ? e.key_node : item, item,
                              indexKey(e.path, index)};
      channel.routes.push_back(readRoute(route_entry));
    }
  }

  Route readRoute(const Entry& owner) {
    Route route;
    const YAML::Mark mark = valueMark(owner);
    route.origin = Origin{file(), mark.line + 1, owner.path};
    bool has_plugins = false;
    const bool is_map = readFields(owner, {
        {"events", [&](const Entry& e) { readEvents(e, route); }},
        {"plugins",
         [&](const Entry& e) {
           has_plugins = true;
           readRoutePlugins(e, route);
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
        error(valueMark(e), e.path,
              expectedGot(expected, gotValue(e.value.Scalar(), *value)) + " (write [" + *value +
                  "] for a single type)");
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
      error(valueMark(e), e.path,
            expectedGot(expected, e.value.IsSequence() ? "an empty list" : kindOf(e.value)));
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
      } else if (std::find(route.plugins.begin(), route.plugins.end(), *name) !=
                 route.plugins.end()) {
        // Twice in one route would hand the same event to it twice.
        error(mark, path, "plugin " + quote(*name) + " is already listed in this route");
      } else {
        plugin_refs_.push_back(PluginRef{*name, mark, path});
        route.plugins.push_back(std::move(*name));
      }
    }
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

  std::string config_dir_;
  Config config_;
  std::vector<std::string> defined_plugins_;  // every key under `plugins:`, in file order
  std::vector<PluginRef> plugin_refs_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

LoadResult loadImpl(const std::string& yaml, const std::string& file_name,
                    const std::string& config_dir, const EnvLookup& env) {
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
      result.errors.push_back(path + ": cannot read config file: " +
                              std::generic_category().message(err));
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
      result.errors.push_back(path + ": cannot read config file: " +
                              std::generic_category().message(err));
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

LoadResult loadString(const std::string& yaml, const std::string& file_name,
                      const EnvLookup& env) {
  std::string dir = std::filesystem::path(file_name).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  return loadImpl(yaml, file_name, dir, env);
}

}  // namespace evh::config
