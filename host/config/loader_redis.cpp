// The `redis:` section: connection keys or one URL (never both), the password
// from a file, TLS and the reconnect backoff.
#include <limits>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/secret_file.h"

namespace evh::config {
void Loader::readRedis(const Entry& owner) {
  Redis& redis = config_.redis;
  std::optional<Entry> url;
  std::optional<Entry> sentinel;
  std::optional<Entry> cluster;
  std::optional<Entry> db;
  std::vector<Entry> explicit_keys;  // the keys a URL would also set
  std::optional<Entry> user_entry;
  std::optional<Entry> password_entry;  // a non-empty `password:`
  std::optional<Entry> password_file;   // a non-empty `password_file:`
  std::string password_path;
  bool password_from_url = false;
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
                    db = e;
                    readInteger(e, redis.db, 0, static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));
                  }},
                 {"username",
                  [&](const Entry& e) {
                    explicit_keys.push_back(e);
                    user_entry = e;
                    readString(e, redis.username);
                  }},
                 {"password",
                  [&](const Entry& e) {
                    explicit_keys.push_back(e);
                    readSecret(e, redis.password);
                    if (!redis.password.empty()) {
                      password_entry = e;
                    }
                  }},
                 {"password_file",
                  [&](const Entry& e) {
                    readString(e, password_path);
                    if (!password_path.empty()) {
                      password_file = e;
                      password_path = fromConfigDir(password_path);
                    }
                  }},
                 {"connect_timeout_ms", [&](const Entry& e) { readInteger(e, redis.connect_timeout_ms, 1, kU32Max); }},
                 {"reconnect", [&](const Entry& e) { readBackoff(e); }},
                 {"ping_interval_ms", [&](const Entry& e) { readInteger(e, redis.ping_interval_ms, 1, kU32Max); }},
                 {"ping_timeout_ms", [&](const Entry& e) { readInteger(e, redis.ping_timeout_ms, 1, kU32Max); }},
                 {"tls", [&](const Entry& e) { readTls(e, redis.tls); }},
                 {"sentinel", [&](const Entry& e) { sentinel = e; }},
                 {"cluster", [&](const Entry& e) { cluster = e; }},
             });

  if (cluster) {
    readCluster(*cluster);
    // The cluster's slot map says where each key is: a configured address
    // would be a second answer; and a cluster has database 0 only.
    if (sentinel) {
      error(sentinel->key_node.Mark(), sentinel->path,
            "cannot be combined with " + cluster->path +
                " (a Redis Cluster fails over by itself: its nodes say where each slot's master is)");
    }
    for (const Entry& e : explicit_keys) {
      if (e.key == "host" || e.key == "port") {
        error(e.key_node.Mark(), e.path,
              "cannot be combined with " + cluster->path +
                  " (the cluster's nodes say where each key is; list them in " + cluster->path + ".nodes)");
      }
    }
    if (db && redis.db != 0) {
      error(valueMark(*db), db->path, "must be 0 with " + cluster->path + " (a Redis Cluster has database 0 only)");
    }
    if (url) {
      error(url->key_node.Mark(), url->path,
            "cannot be combined with " + cluster->path +
                " (the cluster's nodes say where each key is; give username and password as keys)");
      return;
    }
  }

  if (sentinel) {
    readSentinel(*sentinel);
    // With Sentinel the sentinels say where the master is: a configured
    // address as well would be a second answer that silently loses.
    for (const Entry& e : explicit_keys) {
      if (e.key == "host" || e.key == "port") {
        error(e.key_node.Mark(), e.path,
              "cannot be combined with " + sentinel->path + " (the sentinels say where the master is)");
      }
    }
    if (url) {
      error(url->key_node.Mark(), url->path,
            "cannot be combined with " + sentinel->path +
                " (the sentinels say where the master is; give db, username and password as keys)");
      return;
    }
  }

  if (url) {
    if (!explicit_keys.empty()) {
      // Two sources for one setting would make one of them silently lose.
      for (const Entry& e : explicit_keys) {
        error(e.key_node.Mark(), e.path,
              "cannot be combined with " + url->path + " (the URL sets host, port, db, username and password)");
      }
      return;
    }
    const std::optional<std::string> value = text(*url, "a redis:// URL", Quoting::Never);
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
    if (redis.tls.enabled && redis.tls.origin.key.empty()) {  // rediss://
      redis.tls.origin = Origin{file(), valueMark(*url).line + 1, url->path};
    }
    if (!redis.password.empty()) {
      password_entry = url;
      password_from_url = true;
    }
  }
  if (password_file) {
    if (password_entry) {
      // One password from two places: neither may silently win.
      error(valueMark(*password_file), password_file->path,
            "cannot be combined with " + password_entry->path + " (line " +
                std::to_string(valueMark(*password_entry).line + 1) +
                (password_from_url ? ", a URL holding a password" : "") +
                "): both set the Redis password; give it in one place only");
      return;
    }
    if (!readPasswordFile(*password_file, redis.password)) {
      return;  // the unreadable file is the one error: no "needs a password" too
    }
  }
  if (!redis.username.empty() && redis.password.empty() && user_entry) {
    error(valueMark(*user_entry), user_entry->path, "a user name needs a password (AUTH <username> <password>)");
  }
}

void Loader::readTls(const Entry& owner, Tls& tls) {
  tls.enabled = true;  // a tls: map turns it on, unless it says enabled: false
  tls.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  const auto path = [this](std::string& out) {
    return [this, &out](const Entry& e) {
      readString(e, out);
      out = fromConfigDir(out);
    };
  };
  std::optional<Entry> cert;
  std::optional<Entry> key;
  readFields(owner, {
                        {"enabled", [&](const Entry& e) { readBool(e, tls.enabled); }},
                        {"ca_file", path(tls.ca_file)},
                        {"ca_dir", path(tls.ca_dir)},
                        {"cert_file",
                         [&, read = path(tls.cert_file)](const Entry& e) {
                           cert = e;
                           read(e);
                         }},
                        {"key_file",
                         [&, read = path(tls.key_file)](const Entry& e) {
                           key = e;
                           read(e);
                         }},
                        {"server_name", [&](const Entry& e) { readString(e, tls.server_name); }},
                        {"min_version",
                         [&](const Entry& e) {
                           readString(e, tls.min_version);
                           if (tls.min_version != "1.2" && tls.min_version != "1.3") {
                             error(valueMark(e), e.path, "must be \"1.2\" or \"1.3\", got \"" + tls.min_version + "\"");
                           }
                         }},
                        {"verify", [&](const Entry& e) { readBool(e, tls.verify); }},
                    });
  // A certificate without its key (or the reverse) cannot be presented.
  if (cert && !key) {
    error(valueMark(*cert), cert->path, "needs key_file too (the client certificate's private key)");
  } else if (key && !cert) {
    error(valueMark(*key), key->path, "needs cert_file too (the certificate for this private key)");
  }
  // The private key is a secret: refused at load (so --check-config says so
  // too) when others may read it, with the chmod that fixes it.
  if (key && !tls.key_file.empty()) {
    if (const std::optional<SecretFileError> refused = checkSecretFile(tls.key_file)) {
      error(valueMark(*key), key->path, refused->why);
    }
  }
}

// Read here, before the loop runs, so that evhost and evhctl both get it and
// a refusal is a config error with its line. The message names the file and
// the rule, never the content.
bool Loader::readPasswordFile(const Entry& e, std::string& out) {
  std::string path;
  readString(e, path);
  if (path.empty()) {
    return true;
  }
  SecretRead read = readSecretFile(fromConfigDir(path));
  if (!read.value) {
    error(valueMark(e), e.path, read.why);
    return false;
  }
  out = std::move(*read.value);
  return true;
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
