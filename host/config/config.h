// Typed configuration of one evhost deployment, loaded from YAML.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evh::config {

// Where a value came from, for error messages about it after loading.
struct Origin {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  std::string key;  // dotted key path, e.g. "channels.product.routes[0].plugins[1]"

  std::string describe() const;  // "file:line: key"
};

struct Backoff {
  uint32_t initial_ms = 100;
  uint32_t max_ms = 10000;
  double multiplier = 2.0;
};

struct Redis {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string username;  // empty: legacy AUTH <password>, or no AUTH when password is empty too
  std::string password;
  uint32_t connect_timeout_ms = 2000;
  Backoff reconnect;
  uint32_t ping_interval_ms = 3000;
  uint32_t ping_timeout_ms = 2000;
};

struct Plugin {
  std::string name;          // instance name: the key under `plugins:`
  std::string path;          // as written (bare name or path)
  std::string config_json;   // the `config:` block converted to JSON; "{}" when absent
  std::string config_dir;    // folder of the config file, for relative paths
  Origin origin;
};

enum class Transport { PubSub };

struct Route {
  std::vector<std::string> events;  // event types; empty means every type ("*")
  std::vector<std::string> plugins; // instance names, in call order
  Origin origin;
};

struct Channel {
  std::string name;       // the key under `channels:`: logical name, without prefix
  bool pattern = false;   // PSUBSCRIBE instead of SUBSCRIBE (glob in name)
  Transport transport = Transport::PubSub;
  std::vector<Route> routes;
  Origin origin;
};

struct Limits {
  uint32_t max_message_bytes = 1024 * 1024;
  uint32_t max_in_flight = 10000;
  uint32_t max_json_depth = 64;
};

enum class LogFormat { Text, Json };

struct Logging {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::Text;
  bool debug_events = false;  // log every stage of every event (DEBUG_EVENTS)
};

struct Config {
  std::string file;         // path as given
  std::string environment;  // e.g. "dev"; empty for no prefix
  std::string prefix() const { return environment.empty() ? std::string() : environment + ":"; }
  Redis redis;
  std::vector<Plugin> plugins;  // in file order (init order; shutdown is the reverse)
  std::vector<Channel> channels;
  Limits limits;
  Logging logging;
  uint32_t workers = 4;               // worker threads for blocking plugins
  uint32_t shutdown_timeout_ms = 10000;
};

// Parses redis://[user[:password]@]host[:port][/db] (user and password
// percent-decoded; host may be an [IPv6] literal) and sets host, port, db,
// username and password of `out` (port 6379 and db 0 when the URL omits them);
// the other fields are left alone. Returns false, with `error` set to a
// one-line reason and `out` untouched, when the URL is malformed.
bool parseRedisUrl(std::string_view url, Redis& out, std::string& error);

// Every problem found, each naming file:line and key; empty when valid.
struct LoadResult {
  std::optional<Config> config;
  std::vector<std::string> errors;
};

// Looks up environment variables for ${VAR} expansion; replaceable in tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> processEnv(const std::string& name);

LoadResult loadFile(const std::string& path, const EnvLookup& env = processEnv);
LoadResult loadString(const std::string& yaml, const std::string& file_name,
                      const EnvLookup& env = processEnv);

}  // namespace evh::config
