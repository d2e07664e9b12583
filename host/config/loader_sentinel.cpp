// The `redis.sentinel:` section: the master's name, the sentinels to ask,
// and how to authenticate to them (docs/config.md#sentinel); and the node
// lists it shares with `redis.cluster:` (loader_cluster.cpp).
#include <charconv>
#include <string>

#include "config/loader.h"

namespace evh::config {
namespace {

// "host:port", "host" (default_port), "[v6]:port" or "[v6]". Empty `why` on
// success.
NodeAddress parseNode(const std::string& text, uint16_t default_port, std::string& why) {
  NodeAddress node;
  node.port = default_port;
  std::string host = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) {
      why = "an IPv6 address needs its closing ]";
      return node;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        why = "expected :PORT after ]";
        return node;
      }
      port = text.substr(close + 2);
    }
  } else if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    if (text.find(':') != colon) {
      why = "an IPv6 address is written in brackets: [::1]:26379";
      return node;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    why = "the host is empty";
    return node;
  }
  node.host = host;
  if (port.empty() && text.back() == ':') {
    why = "the port is empty";
    return node;
  }
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      why = "the port must be an integer in 1..65535, got \"" + port + "\"";
      return node;
    }
    node.port = static_cast<uint16_t>(value);
  }
  return node;
}

}  // namespace

void Loader::readSentinel(const Entry& owner) {
  Sentinel& s = config_.redis.sentinel;
  s.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  std::optional<Entry> master;
  std::optional<Entry> nodes;
  std::optional<Entry> user;
  std::optional<Entry> password;
  std::optional<Entry> password_file;
  const bool is_map = readFields(owner, {
                                            {"master",
                                             [&](const Entry& e) {
                                               master = e;
                                               readString(e, s.master);
                                             }},
                                            {"nodes",
                                             [&](const Entry& e) {
                                               nodes = e;
                                               s.nodes = readNodes(e, "sentinel", 26379);
                                             }},
                                            {"username",
                                             [&](const Entry& e) {
                                               user = e;
                                               readString(e, s.username);
                                             }},
                                            {"password",
                                             [&](const Entry& e) {
                                               readSecret(e, s.password);
                                               if (!s.password.empty()) {
                                                 password = e;
                                               }
                                             }},
                                            {"password_file", [&](const Entry& e) { password_file = e; }},
                                            {"tls",
                                             [&](const Entry& e) {
                                               s.own_tls = true;
                                               readTls(e, s.tls);
                                             }},
                                        });
  if (!is_map) {
    return;
  }
  const YAML::Mark at = owner.key_node.Mark();
  if (!master) {
    error(at, owner.path + ".master", "is required: the name the sentinels monitor the master by");
  } else if (s.master.empty()) {
    error(valueMark(*master), master->path, "must not be empty");
  }
  if (!nodes) {
    error(at, owner.path + ".nodes", "is required: the sentinels to ask, as [host:port, ...]");
  }
  if (password_file) {
    if (password) {
      error(valueMark(*password_file), password_file->path,
            "cannot be combined with " + password->path + " (line " + std::to_string(valueMark(*password).line + 1) +
                "): both set the sentinels' password; give it in one place only");
    } else if (!readPasswordFile(*password_file, s.password)) {
      return;  // the unreadable file is the one error
    }
  }
  if (!s.username.empty() && s.password.empty() && user) {
    error(valueMark(*user), user->path, "a user name needs a password (AUTH <username> <password>)");
  }
}

std::vector<NodeAddress> Loader::readNodes(const Entry& e, const std::string& what, uint16_t default_port) {
  std::vector<NodeAddress> out;
  const std::string expected = "a list of " + what + "s as host:port";
  if (!e.value.IsSequence()) {
    error(valueMark(e), e.path, expectedGot(expected, kindOf(e.value)));
    return out;
  }
  if (e.value.size() == 0) {
    error(valueMark(e), e.path, "expected at least one " + what + " (host:port)");
    return out;
  }
  size_t index = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
    const std::string path = indexKey(e.path, index);
    const YAML::Mark mark = it->Mark().is_null() ? valueMark(e) : it->Mark();
    const std::optional<std::string> value = text(*it, mark, path, "a " + what + " as host:port");
    if (!value) {
      continue;
    }
    std::string why;
    NodeAddress node = parseNode(*value, default_port, why);
    if (!why.empty()) {
      error(mark, path, "invalid " + what + " address \"" + *value + "\": " + why);
      continue;
    }
    for (const NodeAddress& seen : out) {
      if (seen.host == node.host && seen.port == node.port) {
        error(mark, path, "\"" + *value + "\" is listed twice");
      }
    }
    out.push_back(std::move(node));
  }
  return out;
}

}  // namespace evh::config
