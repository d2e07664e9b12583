// A real Prometheus (Debian's prometheus package) scrapes evhost's /metrics
// every second -- negotiating OpenMetrics, as Prometheus does -- and its
// query API returns evhost's series.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"

#include <evh/plugin.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace evh::test {
namespace {

constexpr const char* kPrometheus = "/usr/bin/prometheus";

// prometheus on a free loopback port with a temporary config and storage,
// killed (SIGTERM, then SIGKILL) when destroyed.
class Prometheus {
 public:
  explicit Prometheus(const std::string& target) {
    char tmpl[] = "/tmp/evh-prometheus-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    dir_ = tmpl;
    std::ofstream(dir_ + "/prometheus.yml") << "global:\n"
                                            << "  scrape_interval: 1s\n"
                                            << "  scrape_timeout: 1s\n"
                                            << "scrape_configs:\n"
                                            << "  - job_name: evhost\n"
                                            << "    static_configs:\n"
                                            << "      - targets: [\"" << target << "\"]\n";
    // The port may be taken between freePort() and prometheus binding it:
    // then it exits at once, and another port is tried.
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = freePort();
      launch();
      if (!eventually([&] { return !running() || httpGet(url() + "/-/ready").status == 200; },
                      std::chrono::seconds(60))) {
        break;
      }
      if (!running()) {
        pid_ = -1;
      }
    }
  }
  ~Prometheus() {
    if (running()) {
      ::kill(pid_, SIGTERM);
      if (!eventually([&] { return !running(); }, std::chrono::seconds(20))) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Prometheus(const Prometheus&) = delete;
  Prometheus& operator=(const Prometheus&) = delete;

  bool up() { return pid_ > 0 && running(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_ + "/prometheus.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The result of an instant query (data.result), or null.
  nlohmann::json query(const std::string& promql) {
    const HttpResponse r = httpGet(url() + "/api/v1/query?query=" + promql);
    if (r.status != 200) {
      return nullptr;
    }
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") {
      return nullptr;
    }
    return j["data"]["result"];
  }

 private:
  void launch() {
    const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
    const std::string storage = "--storage.tsdb.path=" + dir_ + "/data";
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    const std::string log_path = dir_ + "/prometheus.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execl(kPrometheus, kPrometheus, config.c_str(), storage.c_str(), listen.c_str(), "--log.level=warn",
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  bool running() {
    if (pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST(OpsPrometheusTest, PrometheusScrapesEvhost) {
  ASSERT_TRUE(std::filesystem::exists(kPrometheus)) << "the Debian package prometheus provides it";
  RedisServer redis;
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis.port() << "}\n"
    << "ops: {listen: \"127.0.0.1:0\"}\n"
    << "plugins:\n  a: {path: recorder, config: {tag: a}}\n"
    << "channels:\n  orders:\n    routes: [{events: \"*\", plugins: [a]}]\n";
  EvhostProcess host(y.str());
  std::string url;
  ASSERT_TRUE(eventually([&] {
    url = opsUrl(host);
    return !url.empty();
  })) << host.log();
  ASSERT_TRUE(host.waitForLog("subscribed to test:orders")) << host.log();
  redis.command({"PUBLISH", "test:orders",
                 R"({"eventId":"p1","eventType":"ORDER_PLACED","timestamp":1705314600000,"payload":{}})"});

  Prometheus prometheus(url.substr(std::string("http://").size()));
  ASSERT_TRUE(prometheus.up()) << prometheus.log();

  nlohmann::json result;
  ASSERT_TRUE(eventually(
      [&] {
        result = prometheus.query("evhost_build_info");
        return result.is_array() && !result.empty();
      },
      std::chrono::seconds(60)))
      << prometheus.log();
  ASSERT_EQ(result.size(), 1U) << result.dump();
  const nlohmann::json& metric = result[0]["metric"];
  EXPECT_EQ(metric.value("job", ""), "evhost");
  EXPECT_EQ(metric.value("version", ""), EVH_VERSION);
  EXPECT_EQ(metric.value("abi", ""), std::to_string(EVH_ABI_MAJOR) + "." + std::to_string(EVH_ABI_MINOR));
  EXPECT_EQ(result[0]["value"][1], "1");

  // The scrape is healthy, and counters and histograms came through whole.
  result = prometheus.query("up");
  ASSERT_TRUE(result.is_array() && result.size() == 1) << result.dump();
  EXPECT_EQ(result[0]["value"][1], "1");
  ASSERT_TRUE(eventually(
      [&] {
        result = prometheus.query("evhost_handler_calls_total");
        return result.is_array() && result.size() == 1 && result[0]["value"][1] == "1";
      },
      std::chrono::seconds(30)))
      << result.dump();
  EXPECT_EQ(result[0]["metric"].value("plugin", ""), "a");
  result = prometheus.query("evhost_loop_iteration_seconds_bucket%7Ble%3D%22%2BInf%22%7D");  // {le="+Inf"}
  ASSERT_TRUE(result.is_array() && result.size() == 1) << result.dump();
  // Prometheus asked for OpenMetrics and read it: the build info's family
  // is an info one, "evhost_build" (the text format 0.0.4 would have made
  // it the gauge "evhost_build_info").
  nlohmann::json metadata;
  ASSERT_TRUE(eventually([&] {
    metadata = nlohmann::json::parse(httpGet(prometheus.url() + "/api/v1/metadata").body, nullptr, false);
    return !metadata.is_discarded() && metadata["data"].contains("evhost_build");
  })) << metadata.dump();
  EXPECT_EQ(metadata["data"]["evhost_build"][0].value("type", ""), "info") << metadata["data"]["evhost_build"].dump();
  EXPECT_EQ(metadata["data"]["evhost_messages_received"][0].value("type", ""), "counter");
  result = prometheus.query("process_resident_memory_bytes");
  ASSERT_TRUE(result.is_array() && result.size() == 1) << result.dump();
  EXPECT_GT(std::stod(result[0]["value"][1].get<std::string>()), 1e6);
}

}  // namespace
}  // namespace evh::test
