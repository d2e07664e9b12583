// evhctl's HTTP client for a running evhost's ops listener (libcurl: a kept
// HTTP client with timeouts), shared by `status` and `reload`: where the
// listener is, one request, and the words for what went wrong.
#pragma once

#include "config/config.h"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace evh::cli {

// The ops listener's base URL ("http://127.0.0.1:9464"): `url` when given
// (trailing slashes dropped), else ops.listen of `config` (0.0.0.0 and ::
// asked on loopback). nullopt, after printing why on stderr as
// "evhctl <command>: ...", when the config cannot be loaded or turns the
// listener off.
std::optional<std::string> opsBaseUrl(const std::string& command, const std::string& config, std::string url,
                                      const std::optional<config::Config>& loaded);

struct OpsAnswer {
  long code = 0;     // the HTTP status; 0 when there was no answer
  std::string body;  // at most kMaxBodyBytes
};

// Answers larger than this are not evhost's.
constexpr size_t kMaxBodyBytes = 4 * 1024 * 1024;

// `method` `url` with `headers` ("Name: value"), within `timeout_ms`. The
// answer, or nullopt after printing why on stderr as
// "evhctl <command>: no answer from <url>: ... (is evhost running?)" (or
// that the answer was too large).
std::optional<OpsAnswer> opsRequest(const std::string& command, const std::string& method, const std::string& url,
                                    const std::vector<std::string>& headers = {}, long timeout_ms = 10000);

// At most the first 200 bytes of an answer, control bytes shown as '?':
// an error page is quoted, a terminal is never written to by a stranger.
std::string excerpt(const std::string& body);

}  // namespace evh::cli
