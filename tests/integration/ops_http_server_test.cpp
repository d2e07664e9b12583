// ops::HttpServer in process, over loopback, with a loop thread of the
// test's own standing for evhost's: the stop with requests waiting and
// connections open, coalescing under concurrent requests, the connection
// limit, the request timeout, a failed bind, POST /reload's statuses.
#include "loop/poster.h"
#include "ops/http_server.h"
#include "support/http_client.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <utility>
#include <vector>

namespace evh::ops {
namespace {

using ::testing::HasSubstr;

// A libuv loop on a thread of its own, with a Poster: evhost's loop thread
// as the ops listener sees it.
class LoopThread {
 public:
  LoopThread() {
    uv_loop_init(&loop_);
    poster_ = std::make_unique<Poster>(&loop_);
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopThread() {
    call([this] { poster_->close(); });
    thread_.join();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  Poster& poster() { return *poster_; }

  // Runs `fn` on the loop thread and waits for it.
  template <class F>
  void call(F fn) {
    std::promise<void> done;
    poster_->post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<Poster> poster_;
  std::thread thread_;
};

int connectTo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Blocks (at most 10 s: SO_RCVTIMEO) until the peer closes `fd`; true if it did.
bool waitClosed(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return true;
    }
    if (n < 0) {
      return false;  // the guard's timeout
    }
  }
}

double gauge(const Registry& registry, const std::string& name) {
  for (const auto& f : registry.samples()) {
    if (f.name == name && !f.series.empty()) {
      return f.kind == Kind::Histogram ? static_cast<double>(f.series[0].count) : f.series[0].value;
    }
  }
  return -1;
}

class OpsHttpServerTest : public ::testing::Test {
 protected:
  // Builds the server on the loop thread, as evhost does.
  void start(HttpServer::Options options) {
    LoopAccess access;
    access.post = [this](std::function<void()> fn) { return loop_.poster().post(std::move(fn)); };
    access.scrape = [this](Parts parts, LoopAccess::Reply reply) {
      ++collects_;
      LoopSnapshot s;
      s.has = parts;
      s.readiness.not_ready = ready_.load() ? std::vector<std::string>{} : std::vector<std::string>{"not yet"};
      reply(std::move(s));
    };
    access.reload = reload_;
    loop_.call([&] { server_ = std::make_unique<HttpServer>(std::move(options), std::move(access), registry_); });
    url_ = server_->url();
  }
  void TearDown() override {
    loop_.call([this] { server_.reset(); });
  }

  Registry registry_;
  LoopThread loop_;  // after the registry: gone first
  std::unique_ptr<HttpServer> server_;
  std::string url_;
  std::atomic<int> collects_{0};
  std::atomic<bool> ready_{true};
  std::function<void(ReloadOutcome)> reload_;  // POST /reload's loop side, when set before start()
};

HttpServer::Options localhost() {
  HttpServer::Options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.where = "test";
  return o;
}

TEST_F(OpsHttpServerTest, StopAnswersTheWaitingWith503AndClosesEveryConnection) {
  HttpServer::Options o = localhost();
  o.loop.timeout_ms = 20000;  // requests wait for the loop, however long it is busy
  start(o);
  // Idle connections, and one in the middle of its request head.
  std::vector<int> idle;
  for (int i = 0; i < 10; ++i) {
    idle.push_back(connectTo(server_->port()));
    ASSERT_GE(idle.back(), 0);
  }
  ASSERT_EQ(send(idle[0], "GET /metr", 9, MSG_NOSIGNAL), 9);

  // The loop is busy; requests arrive and wait for it. Once released, the
  // busy loop stops the listener (stop() runs on the loop thread) before it
  // gets to the collect they queued behind it.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  loop_.poster().post([this, released] {
    released.wait();
    server_->stop();
  });
  std::vector<std::future<test::HttpResponse>> waiting;
  for (const char* path : {"/metrics", "/metrics", "/readyz", "/healthz", "/metrics"}) {
    waiting.push_back(std::async(std::launch::async, [this, path] { return test::httpGet(url_ + path); }));
  }
  ASSERT_TRUE(test::eventually([&] { return gauge(registry_, "evhost_ops_http_connections") == 15; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // their requests are read by now
  release.set_value();

  for (auto& f : waiting) {
    const test::HttpResponse r = f.get();
    EXPECT_EQ(r.status, 503) << r.error;
    EXPECT_THAT(r.body, HasSubstr("evhost is stopping"));
  }
  for (int fd : idle) {
    EXPECT_TRUE(waitClosed(fd));
    close(fd);
  }
  EXPECT_EQ(collects_.load(), 0);  // the collect queued behind the busy loop found the listener gone
  const int after = connectTo(server_->port());
  EXPECT_EQ(after, -1) << "still listening after stop()";
  if (after >= 0) {
    close(after);
  }
}

// Each way a reload ends has its status: applied 200, refused 422, not run
// 503 -- with Retry-After while evhost is starting, when asking again soon
// may work -- the loop's JSON as the body.
TEST_F(OpsHttpServerTest, PostReloadAnswersEachOutcomeWithItsStatus) {
  std::atomic<int> next{0};
  const std::vector<std::pair<ReloadResult, std::string>> answers = {
      {ReloadResult::Applied, R"({"result":"ok"})"},
      {ReloadResult::Refused, R"({"result":"failed"})"},
      {ReloadResult::NotRun, R"({"result":"not run","reason":"evhost is stopping"})"},
      {ReloadResult::NotRunYet, R"({"result":"not run","reason":"evhost is starting"})"},
  };
  reload_ = [&](ReloadOutcome done) {
    const auto& [result, json] = answers.at(static_cast<size_t>(next++));
    done(result, json);
  };
  start(localhost());
  const long expected[] = {200, 422, 503, 503};
  for (size_t i = 0; i < answers.size(); ++i) {
    const test::HttpResponse r = test::httpRequest("POST", url_ + "/reload");
    EXPECT_EQ(r.status, expected[i]) << i << ": " << r.body << r.error;
    EXPECT_EQ(r.content_type, "application/json") << i;
    EXPECT_EQ(r.body, answers[i].second + "\n") << i;
    EXPECT_EQ(r.retry_after, answers[i].first == ReloadResult::NotRunYet ? "1" : "") << i;
  }
}

TEST_F(OpsHttpServerTest, ConcurrentRequestsShareCollects) {
  start(localhost());
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  const auto begin = std::chrono::steady_clock::now();
  for (int t = 0; t < 32; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        ok += test::httpGet(url_ + "/metrics").status == 200 ? 1 : 0;
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_EQ(ok.load(), 640);
  EXPECT_LE(collects_.load(), took / 100 + 2) << "in " << took << " ms";
  EXPECT_EQ(gauge(registry_, "evhost_ops_scrape_seconds"), collects_.load());
}

TEST_F(OpsHttpServerTest, ConnectionsBeyondTheLimitAreClosedAtOnceAndCounted) {
  HttpServer::Options o = localhost();
  o.max_connections = 4;
  start(o);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(connectTo(server_->port()));
  }
  ASSERT_TRUE(test::eventually([&] { return gauge(registry_, "evhost_ops_http_connections") == 4; }));
  const int fifth = connectTo(server_->port());
  ASSERT_GE(fifth, 0);
  EXPECT_TRUE(waitClosed(fifth));
  close(fifth);
  EXPECT_TRUE(test::eventually([&] { return gauge(registry_, "evhost_ops_http_rejected_total") == 1; }));
  close(held[0]);
  EXPECT_TRUE(test::eventually([&] { return test::httpGet(url_ + "/healthz").status == 200; }));
  for (size_t i = 1; i < held.size(); ++i) {
    close(held[i]);
  }
}

TEST_F(OpsHttpServerTest, ARequestHeadNotSentInTimeClosesTheConnection) {
  HttpServer::Options o = localhost();
  o.request_timeout_ms = 300;
  start(o);
  const int slow = connectTo(server_->port());
  ASSERT_EQ(send(slow, "GET /metrics HTTP/1.1\r\nHost", 27, MSG_NOSIGNAL), 27);
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(waitClosed(slow));
  close(slow);
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  // A kept-alive connection idle after its answer goes the same way.
  const int idle = connectTo(server_->port());
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(idle, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  EXPECT_TRUE(waitClosed(idle));
  close(idle);
}

TEST_F(OpsHttpServerTest, ReadinessDecidesTheStatusOfReadyz) {
  start(localhost());
  ready_ = false;
  test::HttpResponse r = test::httpGet(url_ + "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"reasons\":[\"not yet\"],\"status\":\"not ready\"}\n");
  ready_ = true;
  EXPECT_TRUE(test::eventually([&] { return test::httpGet(url_ + "/readyz").status == 200; }));
}

TEST_F(OpsHttpServerTest, AnAddressInUseIsRefusedNamingItAndWhereItWasSet) {
  start(localhost());
  HttpServer::Options o = localhost();
  o.port = server_->port();
  o.where = "evhost.yaml:3: ops.listen";
  std::string error;
  loop_.call([&] {
    try {
      HttpServer second(o, LoopAccess{}, registry_);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  });
  EXPECT_EQ(error, "ops listener: cannot listen on 127.0.0.1:" + std::to_string(server_->port()) +
                       " (evhost.yaml:3: ops.listen): address already in use; give another address, or \"\" to turn "
                       "the listener off");
  EXPECT_EQ(test::httpGet(url_ + "/healthz").status, 200);  // the first one is unharmed
}

TEST_F(OpsHttpServerTest, ListensOnIpv6) {
  HttpServer::Options o = localhost();
  o.host = "::1";
  start(o);
  EXPECT_EQ(url_.rfind("http://[::1]:", 0), 0U) << url_;
  EXPECT_EQ(test::httpGet(url_ + "/healthz").status, 200);
}

}  // namespace
}  // namespace evh::ops
