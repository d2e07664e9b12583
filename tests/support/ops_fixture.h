// What the tests of a real evhost's ops listener share: a redis-server, a
// config that listens on a free port, the listener's URL from the log, and
// polling an endpoint until its answer says what is awaited.
#pragma once

#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace evh::test {

class OpsFixture : public ::testing::Test {
 protected:
  // A config for redis_ (environment "test", quick reconnects), the ops
  // listener on a free port (or `ops`), then `body`.
  std::string config(const std::string& body, const std::string& ops = "ops: {listen: \"127.0.0.1:0\"}\n") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis:\n  host: 127.0.0.1\n  port: " << redis_.port() << "\n"
      << "  reconnect: {initial_ms: 50, max_ms: 200}\n"
      << ops << body;
    return y.str();
  }

  // The listener's base URL, once evhost has logged it.
  static std::string urlOf(const EvhostProcess& host) {
    std::string url;
    EXPECT_TRUE(eventually([&] {
      url = opsUrl(host.log());
      return !url.empty();
    })) << host.log();
    return url;
  }

  // GET `url` until `pred` holds for the answer (a snapshot may be up to
  // 100 ms old); returns the last answer.
  template <class Pred>
  static HttpResponse getUntil(const std::string& url, Pred pred, const std::vector<std::string>& headers = {}) {
    HttpResponse r;
    eventually([&] {
      r = httpGet(url, headers);
      return pred(r);
    });
    return r;
  }
  // GET `url` until it answers `status`; returns the last answer.
  static HttpResponse getUntilStatus(const std::string& url, long status) {
    return getUntil(url, [status](const HttpResponse& r) { return r.status == status; });
  }

  RedisServer redis_;
};

}  // namespace evh::test
