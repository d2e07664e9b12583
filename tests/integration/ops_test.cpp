// The ops listener of a real evhost against a real redis-server: /metrics in
// both formats (read by promtool), /healthz, /readyz, errors, its config and
// command-line flag, a stalled loop.
#include "support/ops_fixture.h"
#include "support/temp_file.h"

#include <evh/plugin.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

namespace evh::test {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kTextFormat = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8";

// `line` is a whole line of `text`.
bool hasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

std::string writeTemp(const std::string& stem, const std::string& suffix, const std::string& text) {
  const std::string path = freshTempFile(stem, suffix);
  std::ofstream(path) << text;
  return path;
}

// promtool check metrics (the text format 0.0.4, with its lint rules).
std::pair<int, std::string> promtoolCheck(const std::string& body) {
  const std::string path = writeTemp("evh-metrics", ".prom", body);
  auto result = runCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path});
  std::remove(path.c_str());
  return result;
}

// Prometheus 2.42's promtool reads OpenMetrics only to backfill, which wants
// a timestamp on every sample: one is added to each sample line, nothing
// else changes. Its parser is the one Prometheus scrapes with.
std::pair<int, std::string> promtoolCheckOpenMetrics(const std::string& body) {
  std::istringstream in(body);
  std::string stamped;
  for (std::string line; std::getline(in, line);) {
    stamped += line.empty() || line[0] == '#' ? line : line + " 1700000000";
    stamped += '\n';
  }
  const std::string path = writeTemp("evh-metrics", ".om", stamped);
  char dir[] = "/tmp/evh-blocks-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    return {-1, "mkdtemp failed"};
  }
  auto result = runCommand({"/usr/bin/promtool", "tsdb", "create-blocks-from", "openmetrics", path, dir});
  std::remove(path.c_str());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

class OpsTest : public OpsFixture {
 protected:
  // With kScriptedOrders: an inline handler that sleeps `ms`, holding the
  // loop that long.
  void holdTheLoop(int ms) {
    redis_.command({"PUBLISH", "test:orders",
                    R"({"eventId":"s1","eventType":"SLEEP_)" + std::to_string(ms) +
                        R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})"});
  }
};

// One Pub/Sub channel routed to the inline scripted plugin.
constexpr const char* kScriptedOrders = R"(
plugins:
  slow: {path: scripted}
channels:
  orders:
    routes: [{events: "*", plugins: [slow]}]
)";

constexpr const char* kRecorderChannels = R"(
plugins:
  a: {path: recorder, config: {tag: a}}
channels:
  orders:
    routes: [{events: "*", plugins: [a]}]
  jobs:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 200}
    routes: [{events: "*", plugins: [a]}]
)";

// evhost_build_info's line: the version CMake gave evhost, the ABI of plugin.h.
std::string buildInfoLine() {
  return "evhost_build_info{abi=\"" + std::to_string(EVH_ABI_MAJOR) + "." + std::to_string(EVH_ABI_MINOR) +
         "\",version=\"" EVH_VERSION "\"} 1";
}

std::string event(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

TEST_F(OpsTest, MetricsCoverEverySubsystemInBothFormatsAndPassPromtool) {
  EvhostProcess host(config(kRecorderChannels));
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("subscribed to test:orders")) << host.log();
  ASSERT_TRUE(host.waitForLog("created consumer group workers")) << host.log();
  redis_.command({"PUBLISH", "test:orders", event("e1")});
  redis_.command({"XADD", "test:jobs", "*", "event", event("e2")});
  ASSERT_TRUE(eventually([&] { return redis_.command({"LLEN", "seen"})->integer == 2; })) << host.log();

  const HttpResponse text = getUntil(url + "/metrics", [](const HttpResponse& r) {
    return hasLine(r.body, "evhost_handler_calls_total{plugin=\"a\"} 2") &&
           hasLine(r.body, "evhost_stream_acked_total{channel=\"jobs\",group=\"workers\"} 1");
  });
  ASSERT_EQ(text.status, 200) << text.error << text.body;
  EXPECT_EQ(text.content_type, kTextFormat);
  for (const char* line : {
           "# TYPE evhost_messages_received_total counter",
           "evhost_messages_received_total{channel=\"orders\"} 1",
           "evhost_messages_received_total{channel=\"jobs\"} 1",
           "evhost_handler_calls_total{plugin=\"a\"} 2",
           "evhost_handler_outcomes_total{outcome=\"ok\",plugin=\"a\"} 2",
           "evhost_pubsub_subscribed{channel=\"orders\"} 1",
           "evhost_stream_acked_total{channel=\"jobs\",group=\"workers\"} 1",
           "evhost_redis_up{connection=\"commands\"} 1",
           "evhost_dead_letters_total{reason=\"rejected\"} 0",
           "evhost_ops_http_rejected_total 0",
           "# TYPE evhost_loop_iteration_seconds histogram",
           "# TYPE process_cpu_seconds_total counter",
           "# TYPE evhost_build_info gauge",
       }) {
    EXPECT_TRUE(hasLine(text.body, line)) << line << "\n" << text.body;
  }
  EXPECT_TRUE(hasLine(text.body, buildInfoLine())) << text.body;
  for (const char* family : {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                             "process_max_fds", "process_start_time_seconds", "evhost_workers_threads"}) {
    EXPECT_TRUE(std::regex_search(text.body, std::regex(std::string("\n") + family + " [0-9.e+]+\n"))) << family;
  }
  EXPECT_TRUE(std::regex_search(text.body, std::regex("\nevhost_event_latency_seconds_bucket\\{channel=\"orders\","
                                                      "le=\"\\+Inf\"\\} 1\n")));
  auto [rc, out] = promtoolCheck(text.body);
  EXPECT_EQ(rc, 0) << out << "\n" << text.body;

  const HttpResponse om = httpGet(url + "/metrics", {kPrometheusAccept});
  ASSERT_EQ(om.status, 200) << om.error;
  EXPECT_EQ(om.content_type, kOpenMetrics);
  EXPECT_THAT(om.body, EndsWith("\n# EOF\n"));
  for (const char* line : {
           "# TYPE evhost_messages_received counter",
           "evhost_messages_received_total{channel=\"orders\"} 1",
           "# TYPE evhost_build info",
           "# TYPE process_cpu_seconds counter",
       }) {
    EXPECT_TRUE(hasLine(om.body, line)) << line << "\n" << om.body;
  }
  EXPECT_TRUE(hasLine(om.body, buildInfoLine())) << om.body;
  std::tie(rc, out) = promtoolCheckOpenMetrics(om.body);
  EXPECT_EQ(rc, 0) << out << "\n" << om.body;
}

// Prometheus asks for gzip, and gets the exposition as it is: compressing
// each scrape on the ops thread made p99 at 50,000 events/s worse under a
// scrape every 100 ms (+31 % against -0.5 % over five runs each;
// docs/benchmarks/issue13-scrape-p99.md, "a scrape's cost, within runs"), while the bytes
// saved are a loopback's or a LAN's.
TEST_F(OpsTest, MetricsAreSentUncompressedEvenToClientsThatAcceptGzip) {
  EvhostProcess host(config(kRecorderChannels));
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("subscribed to test:orders")) << host.log();
  const HttpResponse r = httpGet(url + "/metrics", {kPrometheusAccept, kAcceptGzip});
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.content_encoding, "");
  EXPECT_EQ(r.wire_bytes, static_cast<long>(r.body.size()));
  EXPECT_EQ(r.content_type, kOpenMetrics);
  EXPECT_TRUE(hasLine(r.body, buildInfoLine())) << r.body;
}

TEST_F(OpsTest, HealthzAndTheWrongPathsAndMethods) {
  EvhostProcess host(config(kRecorderChannels));
  const std::string url = urlOf(host);
  HttpResponse r = httpGet(url + "/healthz");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "ok\n");

  r = httpGet(url + "/nowhere");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("/metrics, /healthz, /readyz, /health/pubsub and /status"));
  r = httpGet(url + "/health/pubsubx");
  EXPECT_EQ(r.status, 404);

  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    r = httpRequest(method, url + "/metrics");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(r.allow, "GET, HEAD") << method;
  }

  r = httpRequest("HEAD", url + "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, kTextFormat);
  EXPECT_GT(r.content_length, 1000);
  EXPECT_EQ(r.body, "");

  r = httpGet(url + "/metrics?name=x");  // a query string changes nothing
  EXPECT_EQ(r.status, 200);
  r = getUntil(url + "/metrics", [](const HttpResponse& x) {
    return hasLine(x.body, "evhost_ops_http_requests_total{code=\"405\",path=\"/metrics\"} 4");
  });
  EXPECT_TRUE(hasLine(r.body, "evhost_ops_http_requests_total{code=\"404\",path=\"other\"} 2")) << r.body;
  EXPECT_TRUE(hasLine(r.body, "evhost_ops_http_requests_total{code=\"200\",path=\"/healthz\"} 1")) << r.body;
}

TEST_F(OpsTest, ReadyzIs503NamingTheCommandConnectionUntilRedisIsUp) {
  redis_.stop();
  EvhostProcess host(config(kRecorderChannels));
  const std::string url = urlOf(host);
  HttpResponse r =
      getUntil(url + "/readyz", [](const HttpResponse& x) { return x.body.find("command") != std::string::npos; });
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_THAT(r.body, HasSubstr("\"status\":\"not ready\""));
  EXPECT_THAT(r.body, HasSubstr("redis command connection (127.0.0.1:" + std::to_string(redis_.port()) + ") is down"));
  EXPECT_EQ(httpGet(url + "/healthz").status, 200);  // alive all the same

  redis_.restart();
  r = getUntil(url + "/readyz", [](const HttpResponse& x) { return x.status == 200; });
  EXPECT_EQ(r.status, 200) << r.body << host.log();
  EXPECT_EQ(r.body, "{\"status\":\"ready\"}\n");
}

// The socket inodes of every TCP socket listening on this host.
std::vector<std::string> listeningInodes() {
  std::vector<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "0A") {
        out.push_back(inode);
      }
    }
  }
  return out;
}

// Whether process `pid` holds a listening TCP socket.
bool listens(pid_t pid) {
  const std::vector<std::string> listening = listeningInodes();
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) {
      const std::string inode = target.substr(8, target.size() - 9);
      if (std::find(listening.begin(), listening.end(), inode) != listening.end()) {
        return true;
      }
    }
  }
  return false;
}

TEST_F(OpsTest, AnEmptyListenAddressMeansNoListener) {
  EvhostProcess host(config(kRecorderChannels, "ops: {listen: \"\"}\n"));
  ASSERT_TRUE(host.waitForLog("evhost started")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("ops listener off (ops.listen is \"\")"));
  EXPECT_THAT(host.log(), Not(HasSubstr("ops listening")));
  EXPECT_FALSE(listens(host.pid()));
}

TEST_F(OpsTest, TheCommandLineOverridesTheFile) {
  EvhostProcess host(config(kRecorderChannels, "ops: {listen: \"\"}\n"), {"--ops-listen", "127.0.0.1:0"});
  const std::string url = urlOf(host);
  EXPECT_EQ(httpGet(url + "/healthz").status, 200);
  EXPECT_TRUE(listens(host.pid()));

  EvhostProcess off(config(kRecorderChannels), {"--ops-listen", ""});
  ASSERT_TRUE(off.waitForLog("evhost started")) << off.log();
  EXPECT_THAT(off.log(), HasSubstr("ops listener off (--ops-listen is \"\")"));
  EXPECT_FALSE(listens(off.pid()));
}

// The ops thread is named and runs 10 nice levels below the event loop, so
// that rendering a scrape or serving a crowd of connections yields the CPU
// to event handling.
TEST_F(OpsTest, TheOpsThreadIsNamedAndYieldsTheCpuToTheLoop) {
  EvhostProcess host(config(kRecorderChannels));
  const std::string url = urlOf(host);
  ASSERT_EQ(httpGet(url + "/healthz").status, 200);
  const auto niceOf = [](const std::filesystem::path& stat) {
    std::ifstream in(stat);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    for (int i = 3; i <= 19; ++i) {  // proc(5): nice is field 19
      fields >> field;
    }
    return std::stoi(field);
  };
  const std::filesystem::path proc = "/proc/" + std::to_string(host.pid());
  const int loop_nice = niceOf(proc / "stat");  // the main thread: the event loop
  std::vector<int> ops_nices;
  for (const auto& task : std::filesystem::directory_iterator(proc / "task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "evh-ops") {
      ops_nices.push_back(niceOf(task.path() / "stat"));
    }
  }
  EXPECT_EQ(ops_nices, std::vector<int>{std::min(loop_nice + 10, 19)});
}

TEST_F(OpsTest, BadOpsAddressesStopEvhostWithTheKeyAndTheValue) {
  EvhostProcess file(config(kRecorderChannels, "ops:\n  listen: 127.0.0.1\n"));
  ASSERT_EQ(file.waitExit(), 1) << file.log();
  EXPECT_THAT(file.log(), HasSubstr("evhost.yaml:7: ops.listen: invalid address \"127.0.0.1\": no port"));

  EvhostProcess range(config(kRecorderChannels, "ops:\n  listen: 127.0.0.1:65536\n"));
  ASSERT_EQ(range.waitExit(), 1) << range.log();
  EXPECT_THAT(range.log(), HasSubstr("ops.listen: invalid address \"127.0.0.1:65536\": invalid port \"65536\""));

  EvhostProcess host(config(kRecorderChannels, "ops:\n  listen: evhost.local:9464\n"));
  ASSERT_EQ(host.waitExit(), 1) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("ops.listen: invalid address \"evhost.local:9464\": \"evhost.local\" is not an "
                                    "IPv4 address"));

  EvhostProcess flag(config(kRecorderChannels), {"--ops-listen", "127.0.0.1:x"});
  ASSERT_EQ(flag.waitExit(), 2) << flag.log();
  EXPECT_THAT(flag.log(), HasSubstr("evhost: --ops-listen: invalid address \"127.0.0.1:x\": invalid port \"x\""));
}

TEST_F(OpsTest, AnAddressInUseStopsStartUpNamingItAndTheKey) {
  // A listening socket of this test's on a port the kernel picked.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  EvhostProcess host(config(kRecorderChannels, "ops:\n  listen: " + taken + "\n"));
  ASSERT_EQ(host.waitExit(), 1) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("ops listener: cannot listen on " + taken + " (" + host.configPath() +
                                    ":7: ops.listen): address already in use"));
  EXPECT_THAT(host.log(), Not(HasSubstr("evhost started")));

  EvhostProcess flag(config(kRecorderChannels), {"--ops-listen", taken});
  ASSERT_EQ(flag.waitExit(), 1) << flag.log();
  EXPECT_THAT(flag.log(), HasSubstr("ops listener: cannot listen on " + taken +
                                    " (command line: --ops-listen): address already in use"));
  close(fd);
}

// A deployment of a realistic size (10 plugins, 30 Pub/Sub channels, 4
// streams: about 2,000 samples) scraped every 120 ms -- past the 100 ms
// reuse, so each request is a scrape of the loop of its own (the streams'
// backlogs asked of Redis, then the collect) -- and its exposition is valid.
// How long a scrape takes from the listener's side is printed.
TEST_F(OpsTest, ARealisticDeploymentIsScrapedOncePerRequestAndPassesPromtool) {
  std::ostringstream body;
  body << "plugins:\n";
  for (int p = 0; p < 10; ++p) {
    body << "  p" << p << ": {path: recorder, config: {tag: p" << p << "}}\n";
  }
  body << "channels:\n";
  for (int c = 0; c < 30; ++c) {
    body << "  events:c" << c << ":\n    routes:\n";
    body << "      - {events: [A, B], plugins: [p" << c % 10 << ", p" << (c + 1) % 10 << "]}\n";
    body << "      - {events: \"*\", plugins: [p" << (c + 2) % 10 << "]}\n";
  }
  for (int s = 0; s < 4; ++s) {
    body << "  jobs:s" << s << ":\n    transport: stream\n    stream: {group: g, consumer: c, block_ms: 500}\n"
         << "    routes: [{events: \"*\", plugins: [p" << s << "]}]\n";
  }
  EvhostProcess host(config(body.str()));
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("subscribed to test:events:c0,")) << host.log();
  const auto value = [](const std::string& text, const std::string& name) {
    std::smatch m;
    return std::regex_search(text, m, std::regex("\n" + name + " ([^\n]+)\n")) ? std::stod(m[1].str()) : -1.0;
  };
  HttpResponse r = httpGet(url + "/metrics");
  const double before = value(r.body, "evhost_ops_scrape_seconds_count");
  constexpr int kScrapes = 30;
  for (int i = 0; i < kScrapes; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    r = httpGet(url + "/metrics");
    ASSERT_EQ(r.status, 200);
  }
  // The last request's own scrape is counted once its answer is in.
  const double count = value(r.body, "evhost_ops_scrape_seconds_count");
  EXPECT_EQ(count - before, kScrapes);
  size_t samples = 0;
  for (size_t at = r.body.find('\n'); at != std::string::npos; at = r.body.find('\n', at + 1)) {
    samples += at + 1 < r.body.size() && r.body[at + 1] != '#' ? 1 : 0;
  }
  std::cout << samples << " samples, " << r.body.size() << " bytes of exposition; a scrape took "
            << value(r.body, "evhost_ops_scrape_seconds_sum") / count * 1e6
            << " us on average from the listener's side\n";
  auto [rc, out] = promtoolCheck(r.body);
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(OpsTest, AStalledLoopGets503WhileTheListenerKeepsAnswering) {
  EvhostProcess host(config(kScriptedOrders));
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("subscribed to test:orders")) << host.log();
  ASSERT_EQ(httpGet(url + "/healthz").status, 200);
  // An inline handler that sleeps 6 s holds the loop that long.
  holdTheLoop(6000);
  ASSERT_TRUE(eventually([&] { return httpGet(url + "/healthz").status == 503; })) << host.log();
  // /metrics waits for the loop's answer up to the link's 3 s.
  HttpResponse r = httpGet(url + "/metrics");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("evhost's event loop is not answering (no answer within 3000 ms)"));
  r = httpGet(url + "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("evhost's event loop is not answering"));
  r = httpGet(url + "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("evhost's event loop has not turned for "));
  // The handler returns; the loop answers again.
  r = getUntil(url + "/healthz", [](const HttpResponse& x) { return x.status == 200; });
  EXPECT_EQ(r.status, 200) << host.log();
  EXPECT_TRUE(host.waitForLog("ops: the event loop has not answered in 3000 ms")) << host.log();
}

// Liveness is the watchdog's measure, off the loop: a loop held for 2 s by
// an inline handler fails /healthz (its bound is 1 s) while it is held --
// the request is answered at once, not after the loop comes back -- and
// passes again after.
TEST_F(OpsTest, ALoopHeldForTwoSecondsFailsHealthzAndRecovers) {
  EvhostProcess host(config(kScriptedOrders));
  const std::string url = urlOf(host);
  ASSERT_TRUE(host.waitForLog("subscribed to test:orders")) << host.log();
  ASSERT_EQ(httpGet(url + "/healthz").status, 200);
  const auto held_at = std::chrono::steady_clock::now();
  holdTheLoop(2000);
  HttpResponse failed;
  ASSERT_TRUE(eventually([&] {
    failed = httpGet(url + "/healthz");
    return failed.status == 503;
  })) << host.log();
  EXPECT_THAT(failed.body, HasSubstr("evhost's event loop has not turned for "));
  EXPECT_THAT(failed.body, HasSubstr("(ops.liveness_timeout_ms is 1000)"));
  // Failed while the loop was still held: within the handler's 2 s.
  EXPECT_LT(std::chrono::steady_clock::now() - held_at, std::chrono::milliseconds(2000));
  const HttpResponse back = getUntil(url + "/healthz", [](const HttpResponse& x) { return x.status == 200; });
  EXPECT_EQ(back.status, 200) << host.log();
  EXPECT_EQ(back.body, "ok\n");
}

}  // namespace
}  // namespace evh::test
