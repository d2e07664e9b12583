// The product plugin's integration tests' fixture: the plan's event shapes
// (envelopes of PRODUCT_CREATED, _UPDATED, _DELETED), a deployment of the
// bundled product plugin against a private redis-server, and readers of the
// Redis state it leaves. product_test.cpp, product_failure_test.cpp and
// product_config_test.cpp use it.
#pragma once

#include "support/evhost_process.h"
#include "support/pubsub_listener.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using OrderedJson = nlohmann::ordered_json;

inline constexpr const char* kProductChannel = "test:jollyjet:events:product";
inline constexpr const char* kNotifications = "test:jollyjet:events:notifications";

// The plan's envelope (Step 1.1): eventId, eventType, an ISO timestamp, an
// optional correlationId, payload. Key order as a publisher writes it.
inline std::string envelope(const std::string& id, const std::string& type, const OrderedJson& payload,
                            const std::string& correlation = "",
                            const std::string& timestamp = "2024-01-15T10:30:00.000Z") {
  OrderedJson e = {{"eventId", id}, {"eventType", type}, {"timestamp", timestamp}};
  if (!correlation.empty()) {
    e["correlationId"] = correlation;
  }
  e["payload"] = payload;
  return e.dump();
}

// ProductCreatedEvent.
inline std::string created(const std::string& id, const std::string& product, const std::string& name, double price,
                           const std::string& category, const std::string& correlation = "req-1") {
  return envelope(id, "PRODUCT_CREATED",
                  {{"productId", product}, {"name", name}, {"price", price}, {"category", category}}, correlation);
}

// ProductUpdatedEvent.
inline std::string updated(const std::string& id, const std::string& product, const OrderedJson& changes,
                           const std::string& correlation = "req-2",
                           const std::string& timestamp = "2024-01-16T08:00:00.000Z") {
  return envelope(id, "PRODUCT_UPDATED", {{"productId", product}, {"changes", changes}}, correlation, timestamp);
}

// ProductDeletedEvent.
inline std::string deleted(const std::string& id, const std::string& product,
                           const std::string& correlation = "req-3") {
  return envelope(id, "PRODUCT_DELETED", {{"productId", product}}, correlation, "2024-01-17T09:15:30.250Z");
}

inline constexpr const char* kDeadRecorder = "  dead: {path: recorder, config: {key: dlq, tag: dead}}\n";

class ProductTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-product-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A deployment with the product plugin (by bare name: the bundled one),
  // `product_config` as its YAML config block if any, and dead letters going
  // to the recorder "dead" (list "dlq").
  std::string config(const std::string& product_config = "",
                     const std::string& retry = "retry: {max_attempts: 3, base_delay_ms: 50, jitter: none}\n",
                     const std::string& events = "[PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED]") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << retry << "shutdown_timeout_ms: 5000\n"
      << "dead_letter: {plugin: dead, fallback_file: " << dir_ << "/fallback.jsonl}\n"
      << "plugins:\n"
      << "  product:\n    path: product\n"
      << (product_config.empty() ? "" : "    config: " + product_config + "\n") << kDeadRecorder << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - events: " << events << "\n"
      << "        plugins: [product]\n";
    return y.str();
  }

  // `yaml` (a config() text) with its route made idempotent: marks kept for
  // a minute.
  static std::string idempotent(std::string yaml) {
    const std::string route = "        plugins: [product]\n";
    yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
    return yaml;
  }

  void publish(const std::string& message) { redis_.command({"PUBLISH", kProductChannel, message}); }

  // A second connection subscribed to `channel` before anything is
  // published, as the admin dashboard would be.
  RedisConn subscribe(const std::string& channel = kNotifications) { return subscribeTo(redis_, channel); }

  static void waitSubscribed(const EvhostProcess& host) { ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log(); }

  std::map<std::string, std::string> hash(const std::string& key) {
    std::map<std::string, std::string> out;
    ReplyPtr r = redis_.command({"HGETALL", key});
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      out[std::string(r->element[i]->str, r->element[i]->len)] =
          std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    return out;
  }
  std::set<std::string> members(const std::string& key) {
    std::set<std::string> out;
    ReplyPtr r = redis_.command({"SMEMBERS", key});
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }
  bool exists(const std::string& key) { return redis_.command({"EXISTS", key})->integer == 1; }
  void setCache(const std::vector<std::string>& keys) {
    for (const auto& k : keys) {
      redis_.command({"SET", k, "cached"});
    }
  }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  // How many times Redis ran `command` since the last CONFIG RESETSTAT
  // (INFO commandstats; a script's own calls count too).
  long long commandCalls(const std::string& command) {
    ReplyPtr r = redis_.command({"INFO", "commandstats"});
    const std::string info(r->str, r->len);
    const std::string key = "cmdstat_" + command + ":calls=";
    const size_t at = info.find(key);
    return at == std::string::npos ? 0LL : std::stoll(info.substr(at + key.size()));
  }

  // The dead-letter entries the recorder "dead" stored, by eventId.
  std::map<std::string, json> deadLetters() {
    std::map<std::string, json> out;
    ReplyPtr r = redis_.command({"LRANGE", "dlq", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t pos = 0;
      for (int f = 0; f < 9; ++f) {
        pos = rec.find('|', pos) + 1;
      }
      json e = json::parse(rec.substr(pos));
      out[e["eventId"].get<std::string>()] = e;
    }
    return out;
  }

  RedisServer redis_;
  std::string dir_;
};

inline bool isIsoUtc(const json& v) {
  static const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return v.is_string() && std::regex_match(v.get<std::string>(), iso);
}

}  // namespace evh::test
