// The `redis:` section: connection keys or one URL (never both), and the reconnect backoff.
#include <limits>
#include <string>
#include <vector>

#include "config/loader.h"

namespace evh::config {
void Loader::readRedis(const Entry& owner) {
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
  readFields(owner,
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

void Loader::readBackoff(const Entry& owner) {
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
      error(
          valueMark(*max), max->path,
          "must be >= initial_ms (" + std::to_string(backoff.initial_ms) + "), got " + std::to_string(backoff.max_ms));
    } else if (initial) {
      error(valueMark(*initial), initial->path,
            "must be <= max_ms (" + std::to_string(backoff.max_ms) + "), got " + std::to_string(backoff.initial_ms));
    }
  }
}

}  // namespace evh::config
