// Hostile clients of the ops listener -- slowloris, a thousand idle
// connections, 1 MB request heads, odd methods, path traversal and garbage,
// 10,000 connections opened and dropped, a flood of requests from several
// threads -- against a real evhost handling real events meanwhile: every event
// published while it goes on is handled, /metrics answers once the clients
// go, and evhost's memory stays bounded.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

// How much evhost's peak resident memory may grow over what it used once
// started: the listener's worst case is 64 connections each holding a
// request head of up to h2o's ~400 KB (in a buffer of up to 512 KiB), plus
// what was being answered. Under AddressSanitizer (whose quarantine is made
// small for these tests, so that the peak is evhost's own memory) every
// allocation also has redzones and shadow memory.
const long kGrowthBoundKb = testedAsan() ? 128L * 1024 : 64L * 1024;

// A field of /proc/PID/status, in kB; -1 when absent.
long statusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return -1;
}

// A blocking connection to 127.0.0.1:port (send and receive time out after
// 10 s: a guard); -1 when connect fails.
int connectTo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
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

// Whether the peer has closed `fd` (or reset it); never blocks.
bool closedByPeer(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      return true;
    }
    if (n < 0) {
      return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
  }
}

uint16_t portOf(const std::string& url) { return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1))); }

// The value of a sample line "name value" in an exposition; -1 when absent.
double sample(const std::string& body, const std::string& name) {
  std::smatch m;
  if (std::regex_search(
          body, m, std::regex("\n" + std::regex_replace(name, std::regex(R"([{}\\])"), R"(\$&)") + " ([^\n]+)\n"))) {
    return std::stod(m[1].str());
  }
  return -1;
}

class OpsHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A thousand connections need a thousand descriptors here (evhost
    // closes what it refuses at once).
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096 && limit.rlim_max > limit.rlim_cur) {
      limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
      setrlimit(RLIMIT_NOFILE, &limit);
    }
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "ops: {listen: \"127.0.0.1:0\"}\n"
      << "plugins:\n  a: {path: recorder, config: {tag: a}}\n"
      << "channels:\n  orders:\n    routes: [{events: \"*\", plugins: [a]}]\n";
    const char* asan = std::getenv("ASAN_OPTIONS");
    host_ = std::make_unique<EvhostProcess>(
        y.str(), std::vector<std::string>{},
        std::vector<std::string>{
            "ASAN_OPTIONS=" + std::string(asan != nullptr && asan[0] != '\0' ? std::string(asan) + ":" : "") +
            "quarantine_size_mb=8"});
    ASSERT_TRUE(eventually([&] {
      url_ = opsUrl(*host_);
      return !url_.empty();
    })) << host_->log();
    port_ = portOf(url_);
    ASSERT_TRUE(host_->waitForLog("subscribed to test:orders")) << host_->log();
    ASSERT_EQ(httpGet(url_ + "/metrics").status, 200);  // everything allocated once
    baseline_kb_ = statusKb(host_->pid(), "VmRSS");
    ASSERT_GT(baseline_kb_, 0);
  }

  // Publishes events on its own Redis connection and thread, one every
  // 10 ms, until stop() (which returns how many).
  class Publisher {
   public:
    explicit Publisher(const RedisServer& redis) : conn_(redis.connect()) {
      thread_ = std::thread([this] {
        while (!stop_.load()) {
          const std::string id = "h" + std::to_string(sent_.load());
          ReplyPtr r(static_cast<redisReply*>(redisCommand(
              conn_.get(), "PUBLISH test:orders %s",
              (R"({"eventId":")" + id + R"(","eventType":"PING","timestamp":1705314600000,"payload":{}})").c_str())));
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            ++sent_;
          } else {
            ++lost_;  // not received by evhost (no subscriber): counted, and the test fails on it
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      });
    }
    ~Publisher() { stop(); }
    long stop() {
      stop_.store(true);
      if (thread_.joinable()) {
        thread_.join();
      }
      return sent_.load();
    }
    long lost() const { return lost_.load(); }

   private:
    RedisConn conn_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<long> sent_{0};
    std::atomic<long> lost_{0};
  };

  // Every event published is handled (a record each in "seen").
  void expectAllHandled(Publisher& publisher) {
    const long sent = publisher.stop();
    EXPECT_EQ(publisher.lost(), 0);
    EXPECT_GT(sent, 20);  // the hostile phase lasted a while
    EXPECT_TRUE(eventually(
        [&] {
          return redis_.command({"LLEN", "seen"})->integer == sent;
        },
        std::chrono::seconds(30)))
        << "handled " << redis_.command({"LLEN", "seen"})->integer << " of " << sent << "\n"
        << host_->log();
  }

  // /metrics answers again, and evhost's peak memory stayed bounded.
  HttpResponse expectRecovered() {
    HttpResponse r;
    EXPECT_TRUE(eventually([&] {
      r = httpGet(url_ + "/metrics");
      return r.status == 200;
    })) << r.status
        << " " << r.error;
    const long peak = statusKb(host_->pid(), "VmHWM");
    std::cout << "evhost memory: " << baseline_kb_ << " kB once started, peak " << peak << " kB\n";
    EXPECT_LT(peak, baseline_kb_ + kGrowthBoundKb);
    return r;
  }

  RedisServer redis_;
  std::unique_ptr<EvhostProcess> host_;
  std::string url_;
  uint16_t port_ = 0;
  long baseline_kb_ = 0;
};

TEST_F(OpsHostileTest, SlowlorisIsCutOffAtTheRequestTimeout) {
  Publisher publisher(redis_);
  // More than the 64 connections allowed, each sending its request head a
  // byte at a time, never finishing it.
  constexpr int kClients = 80;
  const std::string trickle = "GET /metrics HTTP/1.1\r\nHost: evhost\r\nX-Slow: ";
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = connectTo(port_);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  std::vector<bool> closed(kClients, false);
  int open = kClients;
  const auto start = std::chrono::steady_clock::now();
  // A guard: the listener closes them after 10 s.
  for (size_t sent = 0; open > 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(30); ++sent) {
    for (int i = 0; i < kClients; ++i) {
      if (closed[i]) {
        continue;
      }
      const char c = sent < trickle.size() ? trickle[sent] : 'a';
      if (send(fds[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 || closedByPeer(fds[i])) {
        closed[i] = true;
        --open;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::cout << "every slowloris connection closed by evhost after " << took.count() << " ms\n";
  EXPECT_EQ(open, 0) << "connections evhost still kept open after 30 s";
  for (int fd : fds) {
    close(fd);
  }
  expectAllHandled(publisher);
  const HttpResponse r = expectRecovered();
  EXPECT_GE(sample(r.body, "evhost_ops_http_rejected_total"), kClients - 64) << r.body;
}

TEST_F(OpsHostileTest, AThousandIdleConnectionsAreRefusedBeyondTheLimit) {
  Publisher publisher(redis_);
  constexpr int kClients = 1000;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = connectTo(port_);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    fds.push_back(fd);
  }
  // The ones beyond the limit are closed at once.
  int refused = 0;
  ASSERT_TRUE(eventually([&] {
    refused = 0;
    for (int fd : fds) {
      refused += closedByPeer(fd) ? 1 : 0;
    }
    return refused >= kClients - 64;
  })) << refused;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // held open meanwhile
  for (int fd : fds) {
    close(fd);
  }
  expectAllHandled(publisher);
  const HttpResponse r = expectRecovered();
  EXPECT_GE(sample(r.body, "evhost_ops_http_rejected_total"), kClients - 64) << r.body;
  EXPECT_TRUE(eventually([&] {
    return sample(httpGet(url_ + "/metrics").body, "evhost_ops_http_connections") == 1;  // the scrape's own
  }));
}

TEST_F(OpsHostileTest, OneMegabyteRequestHeadsGet400OrAreClosed) {
  Publisher publisher(redis_);
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: evhost\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  std::atomic<int> answered_400{0};
  std::atomic<int> cut_off{0};
  std::atomic<int> other{0};
  std::atomic<int> rounds{0};
  std::vector<std::thread> clients;
  // Eight clients at once, each sending heads again and again for 3 s.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int round = 0; round < 4 || std::chrono::steady_clock::now() < until; ++round) {
        ++rounds;
        const int fd = connectTo(port_);
        if (fd < 0) {
          ++other;
          continue;
        }
        size_t off = 0;
        while (off < head.size()) {
          const ssize_t n = send(fd, head.data() + off, head.size() - off, MSG_NOSIGNAL);
          if (n <= 0) {
            break;  // evhost stopped reading and closed: it has seen enough
          }
          off += static_cast<size_t>(n);
        }
        std::string reply;
        char buf[4096];
        for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
          reply.append(buf, static_cast<size_t>(n));
        }
        if (reply.rfind("HTTP/1.1 400", 0) == 0) {
          ++answered_400;
        } else if (reply.empty()) {
          ++cut_off;
        } else {
          ++other;
          ADD_FAILURE() << "unexpected answer: " << reply.substr(0, 200);
        }
        close(fd);
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  std::cout << "1 MB heads: " << rounds << " sent, " << answered_400 << " answered 400, " << cut_off
            << " closed without an answer\n";
  EXPECT_EQ(answered_400 + cut_off, rounds);
  EXPECT_EQ(other, 0);
  expectAllHandled(publisher);
  expectRecovered();
}

// One raw request on a fresh connection; the status line of the answer, or
// "" when the connection was closed without one.
std::string statusLineOf(uint16_t port, const std::string& request) {
  const int fd = connectTo(port);
  if (fd < 0) {
    return "connect failed";
  }
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[4096];
  for (ssize_t n; reply.find("\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

// Odd methods, paths that try to climb out of /, an absolute-form target,
// a TLS hello and plain garbage: each refused with a status (or the
// connection closed), never served, never a crash.
TEST_F(OpsHostileTest, OddMethodsTraversalAndGarbageAreRefused) {
  Publisher publisher(redis_);
  const std::pair<std::string, std::string> cases[] = {
      {"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
      {"DELETE /status HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
      {"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"GET /metrics/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"GET ..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"GET /metrics%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"GET http://elsewhere.example/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"},
  };
  const std::string garbage[] = {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                                 std::string("\r\n\r\n\r\n"), std::string(4096, '\0'),
                                 std::string("GET / HTTP/9.9\r\n\r\n")};
  // Again and again for a second, events flowing meanwhile.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  int rounds = 0;
  for (; rounds < 1 || std::chrono::steady_clock::now() < until; ++rounds) {
    for (const auto& [request, expected] : cases) {
      ASSERT_EQ(statusLineOf(port_, request), expected) << request;
    }
    // Not HTTP at all: a 400 (or 404, 505) or a closed connection, nothing else.
    for (const std::string& bytes : garbage) {
      const std::string line = statusLineOf(port_, bytes);
      ASSERT_TRUE(line.empty() || line.rfind("HTTP/1.1 400", 0) == 0 || line.rfind("HTTP/1.1 404", 0) == 0 ||
                  line.rfind("HTTP/1.1 505", 0) == 0)
          << line;
    }
  }
  std::cout << rounds << " rounds of odd requests\n";
  expectAllHandled(publisher);
  expectRecovered();
}

// 10,000 connections opened and dropped -- closed at once, reset, or closed
// half way through a request head -- leave nothing behind: every event is
// handled, memory stays bounded, the listener answers after.
TEST_F(OpsHostileTest, TenThousandConnectionsOpenedAndDroppedLeaveNothingBehind) {
  Publisher publisher(redis_);
  int opened = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (int i = 0; i < 10000 || std::chrono::steady_clock::now() < until; ++i) {
    const int fd = connectTo(port_);
    if (fd < 0) {
      continue;  // the backlog was full for a moment: that is the listener's right
    }
    ++opened;
    if (i % 3 == 1) {
      linger reset{1, 0};  // close() sends a RST
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    } else if (i % 3 == 2) {
      const std::string half = "GET /metrics HTTP/1.1\r\nHost: ev";
      send(fd, half.data(), half.size(), MSG_NOSIGNAL);
    }
    close(fd);
  }
  std::cout << opened << " connections opened and dropped\n";
  EXPECT_GT(opened, 9000);
  expectAllHandled(publisher);
  expectRecovered();
  // Every one of them closed: the only connection open is the scrape's own.
  HttpResponse r;
  EXPECT_TRUE(eventually([&] {
    r = httpGet(url_ + "/metrics");
    return sample(r.body, "evhost_ops_http_connections") == 1;
  })) << r.body;
}

TEST_F(OpsHostileTest, AFloodOfRequestsIsServedFromFewScrapesOfTheLoop) {
  const double scrapes_before = sample(httpGet(url_ + "/metrics").body, "evhost_ops_scrape_seconds_count");
  ASSERT_GE(scrapes_before, 0);
  Publisher publisher(redis_);
  // Four threads, each asking again as soon as it has its answer, for 3 s.
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::atomic<int> sent{0};
  std::vector<std::thread> clients;
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::seconds(3);
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      const char* paths[] = {"/metrics", "/healthz", "/readyz"};
      for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
        ++sent;
        const HttpResponse r = httpGet(url_ + paths[(i + t) % 3]);
        if (r.status == 200) {
          ++ok;
        } else {
          ADD_FAILURE() << r.status << " " << r.error << " " << r.body;
        }
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_EQ(ok, sent);
  expectAllHandled(publisher);
  const HttpResponse r = expectRecovered();
  // One scrape at a time, a snapshot reused for 100 ms: at most about one
  // scrape of the loop per 100 ms of flood, however many requests.
  const double scrapes = sample(r.body, "evhost_ops_scrape_seconds_count") - scrapes_before;
  std::cout << sent << " requests in " << took.count() << " ms took " << scrapes << " scrapes of the loop\n";
  EXPECT_LE(scrapes, static_cast<double>(took.count()) / 100 + 10);
}

}  // namespace
}  // namespace evh::test
