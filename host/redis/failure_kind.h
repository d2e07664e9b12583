// Why a Redis connection failed, as a small fixed set of kinds: a metric
// label (evhost_redis_connect_failures_total{kind}), so that an operator's
// alert can tell "Redis is down" from "our password is wrong". The log line
// keeps the whole message.
#pragma once

#include <array>
#include <string_view>

namespace evh::redis {

// Every kind, in the order they are exported.
constexpr std::array<const char*, 9> kFailureKinds = {"dns",      "refused", "timeout", "auth", "handshake",
                                                      "protocol", "tls",     "closed",  "other"};

// The kind of a failure message of redis::Connection (its own wording, the
// handshake's, hiredis's errstr).
constexpr const char* failureKind(std::string_view why) noexcept {
  auto has = [why](std::string_view s) { return why.find(s) != std::string_view::npos; };
  if (why.substr(0, 14) == "cannot resolve") {
    return "dns";
  }
  // tls_bridge.cpp's messages; a handshake that ran out of time is a timeout.
  if (has("TLS") && !has("timeout_ms")) {
    return "tls";
  }
  if (has("refused")) {  // ECONNREFUSED: "Connection refused"
    return "refused";
  }
  if (has("timeout_ms") || has("timed out") || has("Timeout")) {
    return "timeout";
  }
  if (why.substr(0, 11) == "AUTH failed" || has("WRONGPASS") || has("NOAUTH") || has("NOPERM")) {
    return "auth";
  }
  if (has("protocol error") || has("Protocol error")) {
    return "protocol";
  }
  if (has(" failed: ")) {  // a handshake step Redis answered with an error (SELECT, PING: LOADING, ...)
    return "handshake";
  }
  if (why == "closed" || has("reset") || has("connection lost") || has("closed") || has("EOF")) {
    return "closed";
  }
  return "other";
}

}  // namespace evh::redis
