// Small helpers of the typed configuration.
#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <utility>

namespace evh::config {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Decodes %XX escapes; user names and passwords must escape ':', '@' and '/'.
bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;  // fewer than two characters follow the '%'
    }
    const int hi = hexValue(in[i + 1]);
    const int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// Parses an unsigned decimal with no sign, spaces or trailing text.
bool parseDecimal(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && out <= max;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Origin::describe() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  if (!key.empty()) {
    out += ": " + key;
  }
  return out;
}

int ConfigBlockMap::lineOf(std::string_view pointer) const {
  std::string at(pointer);
  while (!at.empty()) {
    if (auto it = lines.find(at); it != lines.end()) {
      return it->second;
    }
    const size_t slash = at.rfind('/');
    if (slash == std::string::npos) {
      break;  // not a JSON Pointer
    }
    at.erase(slash);  // the parent ("" at the top)
  }
  return line;
}

std::optional<std::string> processEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) {
    return std::nullopt;
  }
  return std::string(v);
}

bool parseRedisUrl(std::string_view url, Redis& out, std::string& error) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    error = "expected a URL of the form redis://[user[:password]@]host[:port][/db]";
    return false;
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  const bool tls = equalsIgnoreCase(scheme, "rediss");
  if (!tls && !equalsIgnoreCase(scheme, "redis")) {
    // Quoted only when it looks like a scheme: text before "://" may be
    // anything, a password included.
    const bool plain = !scheme.empty() && scheme.size() <= 16 && std::all_of(scheme.begin(), scheme.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
             c == '.';
    });
    error = "unsupported scheme" + (plain ? " \"" + std::string(scheme) + "\"" : std::string()) +
            " (redis:// or rediss:// for TLS)";
    return false;
  }
  std::string_view rest = url.substr(scheme_end + 3);

  // The last '@' ends the user info, so that an unescaped '@' or '/' in a
  // password still parses the way its author meant.
  std::string username;
  std::string password;
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    const bool user_ok = percentDecode(userinfo.substr(0, colon), username);
    const bool pass_ok = colon == std::string_view::npos || percentDecode(userinfo.substr(colon + 1), password);
    if (!user_ok || !pass_ok) {
      error = std::string("invalid percent-encoding in the ") + (user_ok ? "password" : "user name");
      return false;
    }
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "query strings and fragments are not supported";
    return false;
  }

  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "missing \"]\" after the IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      error = "unexpected text after the IPv6 address (expected \":PORT\")";
      return false;
    }
    has_port = !after.empty();
    port_text = has_port ? after.substr(1) : std::string_view();
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    has_port = colon != std::string_view::npos;
    port_text = has_port ? authority.substr(colon + 1) : std::string_view();
    if (port_text.find(':') != std::string_view::npos) {
      error = "an IPv6 address must be written in brackets, e.g. redis://[::1]:6379";
      return false;
    }
  }
  if (host.empty()) {
    error = "missing host";
    return false;
  }
  if (host.find_first_of(" \t\r\n") != std::string_view::npos) {
    error = "the host contains whitespace";
    return false;
  }

  uint64_t port = 6379;
  if (has_port && (!parseDecimal(port_text, 65535, port) || port == 0)) {
    // Never quoted: in "redis://user:password" (the "@host" forgotten) the
    // password stands where the port would.
    error = "invalid port (expected an integer in 1..65535; not shown, as it may be a password)";
    return false;
  }
  uint64_t db = 0;
  if (!path.empty() && !parseDecimal(path, static_cast<uint64_t>(std::numeric_limits<int32_t>::max()), db)) {
    error = "invalid database (expected an integer in 0..2147483647; not shown, as it may hold a password)";
    return false;
  }

  out.host = std::string(host);
  out.port = static_cast<uint16_t>(port);
  out.db = static_cast<uint32_t>(db);
  out.username = std::move(username);
  out.password = std::move(password);
  if (tls) {
    out.tls.enabled = true;
  }
  return true;
}

std::string Config::stateDir() const {
  if (!state_dir.empty()) {
    return state_dir;
  }
  const char* env = std::getenv("EVH_STATE_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(".");
}

std::string Ops::address() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool parseListenAddress(std::string_view text, Ops& out, std::string& error) {
  if (text.empty()) {
    out.enabled = false;
    return true;
  }
  const char* const form = "expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns the listener off";
  std::string_view host;
  std::string_view port_text;
  bool v6 = false;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      error = std::string("missing \"]\" after the IPv6 address (") + form + ")";
      return false;
    }
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (after.empty() || after.front() != ':') {
      error = std::string("no port after the address (") + form + ")";
      return false;
    }
    port_text = after.substr(1);
    v6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = std::string("no port (") + form + ")";
      return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      error = "an IPv6 address must be written in brackets, e.g. [::1]:9464";
      return false;
    }
  }
  if (host.empty()) {
    error = std::string("no host (") + form + "; 0.0.0.0 listens on every interface)";
    return false;
  }
  // An address, never a name: resolving one would make start-up depend on
  // DNS, and a name can stand for several addresses.
  const std::string host_text(host);
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host_text.c_str(), buf) != 1) {
    error = "\"" + host_text + "\" is not an " + (v6 ? "IPv6" : "IPv4") + " address (" + form + ")";
    return false;
  }
  uint64_t port = 0;
  if (!parseDecimal(port_text, 65535, port)) {
    error = "invalid port \"" + std::string(port_text) + "\" (expected an integer in 0..65535; 0 picks a free port)";
    return false;
  }
  out.enabled = true;
  out.host = host_text;
  out.port = static_cast<uint16_t>(port);
  return true;
}

}  // namespace evh::config
