// A small HTTP client for tests (libcurl), and where evhost said its ops
// listener is.
#pragma once

#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <chrono>
#include <string>
#include <vector>

namespace evh::test {

struct HttpResponse {
  long status = 0;               // 0: no response (see error)
  std::string content_type;      // the Content-Type header
  std::string allow;             // the Allow header
  std::string retry_after;       // the Retry-After header
  long content_length = -1;      // the Content-Length header, -1 when absent
  std::string content_encoding;  // the Content-Encoding header ("gzip")
  long wire_bytes = 0;           // the body's bytes as sent (before unpacking)
  std::string body;              // unpacked
  std::string error;             // curl's message when the request failed
};

// Asks for a gzip body (as Prometheus does); curl unpacks it into `body`.
inline const char* kAcceptGzip = "Accept-Encoding: gzip";

// One request on a fresh connection. `headers`: "Name: value" lines.
// THREAD: any (each call has its own handle).
HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::vector<std::string>& headers = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
inline HttpResponse httpGet(const std::string& url, const std::vector<std::string>& headers = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return httpRequest("GET", url, headers, timeout);
}

// The base URL of the "ops listening on http://HOST:PORT" line in `log`;
// empty when there is none.
std::string opsUrl(const std::string& log);

// The ops listener's base URL of `host`, once its log has the line: evhost
// writes its log off the loop, so the line may come a moment after what
// the test waited for elsewhere (in Redis, say). "" after the hang guard.
// Inline: only drivers that start evhost (support/evhost_process.cpp) use it.
inline std::string opsUrl(const EvhostProcess& host) {
  std::string url;
  eventually([&] {
    url = opsUrl(host.log());
    return !url.empty();
  });
  return url;
}

// What Prometheus 2.x sends as Accept when it scrapes.
inline const char* kPrometheusAccept =
    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

}  // namespace evh::test
